//! What can go wrong when splitting, checking or recovering a secret.

use super::SplitId;

/// A refusal, with a stable [`code`](RecoveryError::code) and a message a
/// guardian or patient can be shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecoveryError {
    #[error(
        "a threshold of {threshold} out of {guardians} guardians is not allowed: \
         it takes 2 <= threshold <= guardians <= 255"
    )]
    ThresholdInvalid { threshold: usize, guardians: usize },

    #[error(
        "{given} valid share(s) given, but this split needs {threshold}: \
         {missing} more guardian(s) must provide their share"
    )]
    NotEnoughShares {
        given: usize,
        threshold: usize,
        missing: usize,
    },

    #[error("the share of guardian {index} is given more than once")]
    DuplicateShare { index: u8 },

    #[error("the share of guardian {index} is not valid: {reason}")]
    ShareInvalid { index: u8, reason: &'static str },

    #[error(
        "the share of guardian {index} belongs to split {share_split}, not to split {expected}"
    )]
    WrongSplit {
        index: u8,
        share_split: SplitId,
        expected: SplitId,
    },

    #[error("malformed {what}: {detail}")]
    Malformed { what: &'static str, detail: String },
}

impl RecoveryError {
    /// A stable kebab-case code for programs and logs.
    pub fn code(&self) -> &'static str {
        match self {
            RecoveryError::ThresholdInvalid { .. } => "recovery-threshold-invalid",
            RecoveryError::NotEnoughShares { .. } => "recovery-not-enough-shares",
            RecoveryError::DuplicateShare { .. } => "recovery-duplicate-share",
            RecoveryError::ShareInvalid { .. } => "recovery-share-invalid",
            RecoveryError::WrongSplit { .. } => "recovery-wrong-split",
            RecoveryError::Malformed { .. } => "recovery-malformed",
        }
    }

    pub(crate) fn malformed(what: &'static str, detail: impl Into<String>) -> Self {
        RecoveryError::Malformed {
            what,
            detail: detail.into(),
        }
    }
}
