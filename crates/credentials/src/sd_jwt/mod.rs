//! SD-JWT VCs: Selective Disclosure for JWTs (RFC 9901) in the SD-JWT VC
//! profile (media type `application/dc+sd-jwt`, header `typ: dc+sd-jwt`,
//! claim `vct`), signed with EdDSA or ES256, digests with SHA-256.
//!
//! - issuer: [`SdJwtBuilder`] marks disclosable members and array
//!   elements (nesting allowed) and signs;
//! - holder: [`SdJwt`] reads the issued credential and presents chosen
//!   claims, with a KB-JWT for one verifier;
//! - verifier: [`verify_presentation`] checks everything and returns a
//!   [`VerifiedSdJwt`].

mod disclosure;
mod error;
mod holder;
mod issuer;
mod key_binding;
mod path;
mod process;
mod serialization;
mod verifier;

pub use error::{IssueError, SdJwtError};
pub use holder::SdJwt;
pub use issuer::SdJwtBuilder;
pub use key_binding::KeyBindingExpectation;
pub use path::{ClaimPath, PathSegment};
pub use serialization::to_flattened_json;
pub use verifier::{verify_presentation, IssuerKeyResolver, VerifiedSdJwt, VerifyOptions};

use serde_json::Value;

/// The media type of an SD-JWT VC.
pub const MEDIA_TYPE: &str = "application/dc+sd-jwt";
/// The JOSE `typ` of the issuer-signed JWT.
pub const TYP: &str = "dc+sd-jwt";
/// The JOSE `typ` of a key binding JWT.
pub const KB_JWT_TYP: &str = "kb+jwt";
/// The only digest algorithm used and accepted.
pub const SD_ALG: &str = "sha-256";
/// Longest presentation accepted, in bytes.
pub const MAX_PRESENTATION_LEN: usize = crate::jws::MAX_JWS_LEN;
/// Most disclosures accepted in one presentation.
pub const MAX_DISCLOSURES: usize = 1024;

const SD_KEY: &str = "_sd";
const SD_ALG_KEY: &str = "_sd_alg";
const ARRAY_ELEMENT_KEY: &str = "...";

/// Top-level claims that SD-JWT VC requires to be plain: a verifier must
/// see who issued what kind of credential, when it is valid, to whom it
/// is bound and where its status lives.
const NOT_DISCLOSABLE: [&str; 7] = ["iss", "nbf", "exp", "cnf", "vct", "vct#integrity", "status"];

/// A JWT NumericDate as whole seconds (fractions are dropped).
fn numeric_date(value: &Value) -> Option<i64> {
    if let Some(n) = value.as_i64() {
        return Some(n);
    }
    let f = value.as_f64()?;
    (f.is_finite() && f.abs() < 1e15).then(|| f.trunc() as i64)
}
