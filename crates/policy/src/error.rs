//! Refusals. Each has a stable machine-readable code (`code()`), which the
//! node records and clients match on; the messages may change.

use crate::purpose::UnknownPurpose;

/// Why a consent event (grant, revocation, delegate registration) was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConsentError {
    /// A grant with an empty id.
    #[error("the grant id is empty")]
    EmptyGrantId,
    /// A DID that is not syntactically a DID.
    #[error("{field} {did:?} is not a DID")]
    InvalidDid {
        /// Which field held it.
        field: &'static str,
        /// The value.
        did: String,
    },
    /// A validity period that ends before (or when) it starts.
    #[error("validity period [{not_before}, {not_after}) ends before it starts")]
    InvalidPeriod {
        /// Start, Unix seconds.
        not_before: i64,
        /// End, Unix seconds.
        not_after: i64,
    },
    /// A purpose-of-use code that is not a supported HL7 code.
    #[error(transparent)]
    UnknownPurpose(#[from] UnknownPurpose),
    /// A scope that names no category, resource type or record.
    #[error("the scope names no category, resource type or record")]
    EmptyScope,
    /// An empty string in a scope.
    #[error("scope value {value:?} is empty")]
    InvalidScopeValue {
        /// The value.
        value: String,
    },
    /// A grant without any action.
    #[error("the grant allows no action")]
    NoActions,
    /// A jurisdiction that is not an ISO 3166-1 alpha-2 country code.
    #[error("jurisdiction {code:?} is not an ISO 3166-1 alpha-2 country code")]
    InvalidJurisdiction {
        /// The value.
        code: String,
    },
    /// A grant id already used (by an active or a revoked grant).
    #[error("grant {grant_id:?} already exists")]
    DuplicateGrant {
        /// The id.
        grant_id: String,
    },
    /// A grant authored by someone who is neither the patient nor one of the
    /// patient's registered delegates.
    #[error("{author} may not grant access to the records of {patient}: only the patient or a registered delegate may")]
    NotPatientOrDelegate {
        /// The author.
        author: String,
        /// The patient.
        patient: String,
    },
    /// A grantee granting itself access (widening its own grant): the
    /// author is the grantee, or a grantee of one of the patient's active
    /// grants, and neither the patient nor a delegate.
    #[error("{author} is a grantee of {patient} and may not widen its own access")]
    GranteeWidening {
        /// The author.
        author: String,
        /// The patient.
        patient: String,
    },
    /// A revocation of a grant id never granted.
    #[error("grant {grant_id:?} does not exist")]
    UnknownGrant {
        /// The id.
        grant_id: String,
    },
    /// A revocation by someone who is neither the grant's patient nor one of
    /// that patient's delegates.
    #[error("{author} may not revoke grant {grant_id:?}, which belongs to another patient")]
    ForeignGrant {
        /// The id.
        grant_id: String,
        /// The author.
        author: String,
    },
    /// A revocation of a grant already revoked.
    #[error("grant {grant_id:?} is already revoked")]
    AlreadyRevoked {
        /// The id.
        grant_id: String,
    },
    /// A delegate registration or removal by someone who is neither the
    /// patient nor a registrar.
    #[error("{author} may not change the delegates of {patient}")]
    DelegateChangeUnauthorized {
        /// The author.
        author: String,
        /// The patient.
        patient: String,
    },
    /// A patient registering itself as its own delegate.
    #[error("{patient} cannot be its own delegate")]
    SelfDelegate {
        /// The patient.
        patient: String,
    },
    /// A delegate registered twice.
    #[error("{delegate} is already a delegate of {patient}")]
    DuplicateDelegate {
        /// The patient.
        patient: String,
        /// The delegate.
        delegate: String,
    },
    /// A grant Cedar cannot represent (not expected for any valid grant).
    #[error("the grant cannot be represented in Cedar: {message}")]
    Cedar {
        /// Cedar's error.
        message: String,
    },
    /// A removal of a delegate that is not registered.
    #[error("{delegate} is not a delegate of {patient}")]
    UnknownDelegate {
        /// The patient.
        patient: String,
        /// The delegate.
        delegate: String,
    },
}

impl ConsentError {
    /// The stable code of the refusal, e.g. `"consent.foreign_grant"`.
    pub fn code(&self) -> &'static str {
        match self {
            ConsentError::EmptyGrantId => "consent.empty_grant_id",
            ConsentError::InvalidDid { .. } => "consent.invalid_did",
            ConsentError::InvalidPeriod { .. } => "consent.invalid_period",
            ConsentError::UnknownPurpose(_) => "consent.unknown_purpose",
            ConsentError::EmptyScope => "consent.empty_scope",
            ConsentError::InvalidScopeValue { .. } => "consent.invalid_scope_value",
            ConsentError::NoActions => "consent.no_actions",
            ConsentError::InvalidJurisdiction { .. } => "consent.invalid_jurisdiction",
            ConsentError::DuplicateGrant { .. } => "consent.duplicate_grant",
            ConsentError::NotPatientOrDelegate { .. } => "consent.not_patient_or_delegate",
            ConsentError::GranteeWidening { .. } => "consent.grantee_widening",
            ConsentError::UnknownGrant { .. } => "consent.unknown_grant",
            ConsentError::ForeignGrant { .. } => "consent.foreign_grant",
            ConsentError::AlreadyRevoked { .. } => "consent.already_revoked",
            ConsentError::DelegateChangeUnauthorized { .. } => {
                "consent.delegate_change_unauthorized"
            }
            ConsentError::SelfDelegate { .. } => "consent.self_delegate",
            ConsentError::DuplicateDelegate { .. } => "consent.duplicate_delegate",
            ConsentError::UnknownDelegate { .. } => "consent.unknown_delegate",
            ConsentError::Cedar { .. } => "consent.cedar",
        }
    }
}

/// Why a governance policy set was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GovernanceError {
    /// The text is not Cedar.
    #[error("governance policies do not parse: {message}")]
    Parse {
        /// Cedar's parse errors.
        message: String,
    },
    /// The policies do not validate against the schema.
    #[error("governance policies do not validate against the schema: {message}")]
    Validation {
        /// Cedar's validation errors.
        message: String,
    },
    /// A policy without an `@id("...")` annotation.
    #[error("a governance policy has no @id annotation: {policy}")]
    MissingId {
        /// The policy's text.
        policy: String,
    },
    /// Two policies with the same `@id`.
    #[error("two governance policies share the id {id:?}")]
    DuplicateId {
        /// The id.
        id: String,
    },
    /// Templates (policies with slots) are not accepted.
    #[error("governance policies may not contain templates (policies with slots)")]
    Template,
    /// The set contains no policy at all.
    #[error("the governance policy set is empty")]
    Empty,
    /// Brackets nested deeper than [`crate::bounds::MAX_NESTING`].
    #[error("governance policies nest brackets more than {limit} deep")]
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// A policy with more operators than [`crate::bounds::MAX_OPERATORS`].
    #[error(
        "a governance policy holds more than {limit} operators; split it into several policies"
    )]
    TooManyOperators {
        /// The limit.
        limit: usize,
    },
    /// A version not above the installed one.
    #[error("governance version {version} is not above the installed version {installed}")]
    StaleVersion {
        /// The refused version.
        version: u64,
        /// The installed version.
        installed: u64,
    },
}

impl GovernanceError {
    /// The stable code of the refusal, e.g. `"governance.validation"`.
    pub fn code(&self) -> &'static str {
        match self {
            GovernanceError::Parse { .. } => "governance.parse",
            GovernanceError::Validation { .. } => "governance.validation",
            GovernanceError::MissingId { .. } => "governance.missing_id",
            GovernanceError::DuplicateId { .. } => "governance.duplicate_id",
            GovernanceError::Template => "governance.template",
            GovernanceError::Empty => "governance.empty",
            GovernanceError::StaleVersion { .. } => "governance.stale_version",
            GovernanceError::TooDeep { .. } => "governance.too_deep",
            GovernanceError::TooManyOperators { .. } => "governance.too_many_operators",
        }
    }
}
