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
//! - [`data_integrity`], [`vc`], [`clinician_licence`]: W3C VC 2.0 with
//!   Data Integrity `eddsa-jcs-2022`.
//! - [`status_list`], [`status_list_credential`]: Bitstring Status Lists.
//! - [`shc`]: SMART Health Cards.
//! - [`zk`]: range predicates over issuer-signed commitments, and research
//!   eligibility.

mod base64url;
pub mod clinician_licence;
pub mod credential_types;
pub mod data_integrity;
pub mod jwk;
pub mod jws;
pub mod sd_jwt;
pub mod shc;
pub mod status_list;
pub mod status_list_credential;
mod strict_json;
pub mod vc;
pub mod zk;
