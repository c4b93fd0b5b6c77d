//! SMART Health Cards (<https://spec.smarthealth.cards>, v1.4): FHIR
//! Bundles signed by an issuer as a compact JWS (`alg: ES256`,
//! `zip: DEF`, `kid` = RFC 7638 thumbprint), over a raw-DEFLATE-compressed
//! JSON payload `{iss, nbf, vc: {type, credentialSubject: {fhirVersion,
//! fhirBundle}}}`; handed out as `.smart-health-card` files or as QR codes
//! (`shc:/` and two digits per character).
//!
//! Issuing: [`bundle_from_resources`] → [`issue`] → [`HealthCard`].
//! Verifying: [`decode_qr`] or [`parse_file`] → [`verify`] →
//! [`VerifiedHealthCard`]. The caller decides which issuers to trust and
//! supplies their key sets ([`Jwks`], from `<iss>/.well-known/jwks.json`).

mod bundle;
mod deflate;
mod error;
mod file;
mod issue;
mod jwk;
mod jws;
mod qr;
mod verify;

pub use bundle::bundle_from_resources;
pub use error::ShcError;
pub use file::{file_json, parse_file};
pub use issue::{issue, HealthCard};
pub use jwk::{EcPublicJwk, IssuerKey, Jwks};
pub use qr::{decode_qr, encode_qr, QR_CHUNK_MAX_JWS_LEN, QR_PREFIX, SINGLE_QR_MAX_JWS_LEN};
pub use verify::{verify, VerifiedHealthCard};

/// The credential type every health card carries in `vc.type`.
pub const HEALTH_CARD_TYPE: &str = "https://smarthealth.cards#health-card";

/// The FHIR version written into issued cards (`fhirVersion`).
pub const FHIR_VERSION: &str = "4.0.1";

/// The longest JWS [`verify`] and [`decode_qr`] accept (a file-borne card
/// can be far larger than a QR code's 1195 characters).
pub const MAX_JWS_LEN: usize = 256 * 1024;

/// The most bytes a card's payload may decompress to: the bound that makes
/// decompression safe against DEFLATE bombs.
pub const MAX_PAYLOAD_LEN: usize = 1024 * 1024;

/// Clock difference allowed when checking `nbf` and `exp`.
pub const CLOCK_SKEW_SECS: i64 = 60;
