//! Why a transaction was refused, with a stable machine-readable code.

/// Stable error codes. They are part of the public API: clients match on
/// them, so existing codes never change meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    MalformedJson,
    NonCanonical,
    SchemaViolation,
    UnsupportedVersion,
    UnknownType,
    WrongNetwork,
    BadSigner,
    BadSignature,
    Replay,
    TxTooLarge,
    /// The application state refuses the signer (a grant by someone who is
    /// not the patient). The code names the rule, e.g.
    /// `consent.not_patient_or_delegate`.
    Forbidden(&'static str),
    /// The application state has no such thing (a revocation of an unknown
    /// grant).
    NotFound(&'static str),
    /// The application state conflicts with the transaction (a stale
    /// governance version, an organization registered twice).
    Conflict(&'static str),
    /// Well-formed, but its content is invalid (a period that ends before
    /// it starts, an unknown purpose code).
    Invalid(&'static str),
}

impl ErrorCode {
    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorCode::MalformedJson => "malformed_json",
            ErrorCode::NonCanonical => "non_canonical",
            ErrorCode::SchemaViolation => "schema_violation",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::WrongNetwork => "wrong_network",
            ErrorCode::BadSigner => "bad_signer",
            ErrorCode::BadSignature => "bad_signature",
            ErrorCode::Replay => "replay",
            ErrorCode::TxTooLarge => "tx_too_large",
            ErrorCode::Forbidden(code)
            | ErrorCode::NotFound(code)
            | ErrorCode::Conflict(code)
            | ErrorCode::Invalid(code) => code,
        }
    }
}

/// A refused transaction: a code for programs, a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TxError {
    pub code: ErrorCode,
    pub message: String,
    /// Which transaction of a multi-transaction submission is to blame.
    pub position: Option<usize>,
}

impl TxError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        TxError {
            code,
            message: message.into(),
            position: None,
        }
    }

    pub fn at(mut self, position: usize) -> Self {
        self.position = Some(position);
        self
    }
}
