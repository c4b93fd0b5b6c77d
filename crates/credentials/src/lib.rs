//! Verifiable credentials: issuing, holding and verifying attested facts
//! (a clinician's licence, a lab result, a device's provenance, a trial
//! site's accreditation) in the formats wallets and verifiers speak.
//!
//! This crate sits above `hygeia-identity` (keys and DIDs) and knows
//! nothing of the ledger, of storage or of HTTP: the node decides which
//! issuers it trusts and where status lists live.
//!
//! - [`jws`], [`jwk`]: compact JWS with EdDSA and ES256, and JSON Web Keys.
//! - [`sd_jwt`]: SD-JWT VCs (RFC 9901, `application/dc+sd-jwt`): issuance,
//!   presentation with key binding, verification.
//! - [`credential_types`]: Hygeia's four credential types on top of SD-JWT VC.

mod base64url;
pub mod credential_types;
pub mod jwk;
pub mod jws;
pub mod sd_jwt;
mod strict_json;
