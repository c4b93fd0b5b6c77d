//! FHIR R5 for Hygeia: which resources the node serves and where each one's
//! patient is named ([`types`]), structural validation ([`validate`]),
//! search parameters, their index and query evaluation ([`search`]), FHIR
//! dates as instants and ranges ([`date`]), references ([`reference`]),
//! OperationOutcome ([`outcome`]), the mapping between FHIR Consent and
//! ledger consent grants ([`consent`]), AuditEvent and Provenance built from
//! ledger events ([`audit`]), and synthetic patients for demos and
//! benchmarks ([`synthetic`]).
//!
//! This crate knows JSON and FHIR, not the node: no storage, no HTTP.

pub mod audit;
pub mod consent;
pub mod date;
pub mod outcome;
pub mod reference;
pub mod search;
pub mod synthetic;
pub mod types;
pub mod validate;

/// The FHIR JSON media type.
pub const FHIR_JSON: &str = "application/fhir+json";

/// The FHIR version this crate speaks.
pub const FHIR_VERSION: &str = "5.0.0";

/// The identifier system under which a Patient, Practitioner or
/// Organization names its DID: RFC 3986 URIs (a DID is a URI).
pub const DID_IDENTIFIER_SYSTEM: &str = "urn:ietf:rfc:3986";
