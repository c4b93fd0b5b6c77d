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
