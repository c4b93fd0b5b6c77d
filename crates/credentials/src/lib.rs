//! Verifiable credentials: issuing, holding and verifying attested facts
//! (a clinician's licence, a lab result, a device's provenance, a trial
//! site's accreditation) in the formats wallets and verifiers speak.
//!
//! This crate sits above `hygeia-identity` (keys and DIDs) and knows
//! nothing of the ledger, of storage or of HTTP: the node decides which
//! issuers it trusts and where status lists live.

pub mod shc;
pub mod clinician_licence;
pub mod data_integrity;
pub mod status_list;
pub mod status_list_credential;
pub mod vc;
pub mod zk;
