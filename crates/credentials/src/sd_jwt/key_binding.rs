//! Key binding JWTs (RFC 9901 §4.3): the holder's signature over the
//! verifier's audience and nonce and a hash of exactly the presented
//! SD-JWT, showing that whoever presents the credential holds its key.

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::{numeric_date, SdJwtError, KB_JWT_TYP};
use crate::jws::{sign_compact, SigningKey, UnverifiedJws, VerifyingKey};
use crate::{base64url, strict_json};

/// What the verifier expects a KB-JWT to say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyBindingExpectation {
    /// The verifier's identifier, as it asked the holder to use it.
    pub audience: String,
    /// The fresh nonce the verifier handed out for this presentation.
    pub nonce: String,
}

pub(crate) fn sd_hash(sd_hash_input: &str) -> String {
    base64url::encode(&Sha256::digest(sd_hash_input.as_bytes()))
}

pub(crate) fn create(
    sd_hash_input: &str,
    audience: &str,
    nonce: &str,
    issued_at: i64,
    key: &SigningKey,
) -> String {
    let mut header = Map::new();
    header.insert("typ".into(), Value::String(KB_JWT_TYP.into()));
    let payload = json!({
        "iat": issued_at,
        "aud": audience,
        "nonce": nonce,
        "sd_hash": sd_hash(sd_hash_input),
    });
    sign_compact(header, payload.to_string().as_bytes(), key)
}

pub(crate) struct Freshness {
    pub(crate) now: i64,
    pub(crate) skew: i64,
    pub(crate) max_age: i64,
}

pub(crate) fn verify(
    kb_jwt: &str,
    holder_key: &VerifyingKey,
    sd_hash_input: &str,
    expected: Option<&KeyBindingExpectation>,
    freshness: &Freshness,
) -> Result<(), SdJwtError> {
    let jws = UnverifiedJws::parse(kb_jwt).map_err(SdJwtError::KbJws)?;
    if jws.header().typ() != Some(KB_JWT_TYP) {
        return Err(SdJwtError::KbWrongType);
    }
    let verified = jws.verify(holder_key).map_err(SdJwtError::KbJws)?;
    let claims = strict_json::object_from_slice(verified.payload()).ok_or(
        SdJwtError::KbMalformed("the payload is not a JSON object with distinct member names"),
    )?;
    let string = |name: &'static str, missing: &'static str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .ok_or(SdJwtError::KbMalformed(missing))
    };
    if string("sd_hash", "sd_hash is missing")? != sd_hash(sd_hash_input) {
        return Err(SdJwtError::KbSdHashMismatch);
    }
    let iat = claims
        .get("iat")
        .and_then(numeric_date)
        .ok_or(SdJwtError::KbMalformed("iat is missing or not a number"))?;
    let too_old = iat
        < freshness
            .now
            .saturating_sub(freshness.max_age.saturating_add(freshness.skew));
    let in_future = iat > freshness.now.saturating_add(freshness.skew);
    if too_old || in_future {
        return Err(SdJwtError::KbStale);
    }
    let nonce = string("nonce", "nonce is missing")?;
    let audience = string("aud", "aud is missing or not a string")?;
    if let Some(expected) = expected {
        if nonce != expected.nonce {
            return Err(SdJwtError::KbWrongNonce);
        }
        if audience != expected.audience {
            return Err(SdJwtError::KbWrongAudience);
        }
    }
    Ok(())
}
