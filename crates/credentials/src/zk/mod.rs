//! Zero-knowledge range predicates bound to an issuer's signature:
//! "HbA1c < 7.0 %", "at least 18 years old", "5.7 % ≤ HbA1c < 6.5 %"
//! proved without revealing the value (see `docs/zk.md`).
//!
//! - [`commitment`]: an issuer signs a Pedersen commitment to one integer
//!   attribute; the holder keeps the opening.
//! - [`range`]: Bulletproofs range proofs over the signed commitment, bound
//!   to the credential, the statement and the verifier's challenge.
//! - [`nonce`]: the verifier's single-use nonces.
//! - [`age`], [`hba1c`]: helpers for the two attributes the scenarios use.
//! - [`eligibility`]: counting qualifying patients for a study under
//!   per-study pseudonyms.

pub mod age;
pub mod commitment;
pub mod eligibility;
mod encoding;
pub mod error;
pub mod hba1c;
pub mod issuers;
pub mod nonce;
pub mod range;

pub use commitment::{AttributeClaims, CommittedAttributeCredential, Opening};
pub use eligibility::{
    respond, Criteria, EligibilityResponse, EnrolmentToken, PatientSecret, Tally, TallyResult,
};
pub use error::ZkError;
pub use issuers::{IssuerKeys, TrustedIssuers};
pub use nonce::NonceBook;
pub use range::{
    prove, verify, verify_fresh, Challenge, Range, RangePresentation, Requirement,
    VerifiedPredicate,
};
