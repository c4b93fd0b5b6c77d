//! Why a zero-knowledge predicate was refused, with a stable code per reason.

/// A refusal from issuing, proving, verifying or tallying.
///
/// [`ZkError::code`] is stable (kebab-case) and safe to return to a client;
/// the message can be shown to a person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZkError {
    #[error("the issuer's signature on the credential does not verify")]
    BadIssuerSignature,
    #[error("the credential's issuer {0} is not trusted for this check")]
    UntrustedIssuer(String),
    #[error("the credential expired")]
    Expired,
    #[error("the credential is not valid yet")]
    NotYetValid,
    #[error("the zero-knowledge proof does not verify")]
    ProofInvalid,
    #[error("the presentation proves another range than the one asked for")]
    WrongPredicate,
    #[error("the presentation is about another attribute than the one asked for")]
    WrongAttribute,
    #[error("the presentation answers another challenge (verifier or nonce) than this one")]
    WrongChallenge,
    #[error("this nonce was not issued by this verifier")]
    NonceUnknown,
    #[error("this nonce was already used; ask for a new one")]
    NonceReused,
    #[error("this nonce expired; ask for a new one")]
    NonceExpired,
    #[error("too many nonces are outstanding; try again later")]
    NonceBookFull,
    #[error("malformed: {0}")]
    Malformed(String),
    #[error("the value is outside the range, so the statement cannot be proved")]
    ValueOutOfRange,
    #[error("the opening does not match the credential's commitment")]
    OpeningMismatch,
    #[error("invalid range: {0}")]
    InvalidPredicate(&'static str),
    #[error("invalid claims: {0}")]
    InvalidClaims(String),
    #[error("the credential names a holder, so the holder's key must sign the presentation")]
    HolderKeyRequired,
    #[error("the key given is not the credential's holder key")]
    HolderKeyMismatch,
    #[error("the holder's signature on the presentation does not verify")]
    BadHolderSignature,
    #[error("the proof could not be made")]
    ProvingFailed,
    #[error("this enrolment token was already counted")]
    EligibilityDuplicateToken,
    #[error("this credential was already counted")]
    EligibilityDuplicateCredential,
    #[error("the credential's issuer {0} is not accepted by this study")]
    EligibilityIssuerNotAccepted(String),
    #[error(
        "the credential names its holder; eligibility answers must not reveal who the patient is"
    )]
    EligibilityHolderPresent,
    #[error("the answer is for another study")]
    EligibilityWrongStudy,
}

impl ZkError {
    /// A stable, kebab-case code for this refusal.
    pub fn code(&self) -> &'static str {
        match self {
            ZkError::BadIssuerSignature => "zk-bad-issuer-signature",
            ZkError::UntrustedIssuer(_) => "zk-untrusted-issuer",
            ZkError::Expired => "zk-expired",
            ZkError::NotYetValid => "zk-not-yet-valid",
            ZkError::ProofInvalid => "zk-proof-invalid",
            ZkError::WrongPredicate => "zk-wrong-predicate",
            ZkError::WrongAttribute => "zk-wrong-attribute",
            ZkError::WrongChallenge => "zk-wrong-challenge",
            ZkError::NonceUnknown => "zk-nonce-unknown",
            ZkError::NonceReused => "zk-nonce-reused",
            ZkError::NonceExpired => "zk-nonce-expired",
            ZkError::NonceBookFull => "zk-nonce-book-full",
            ZkError::Malformed(_) => "zk-malformed",
            ZkError::ValueOutOfRange => "zk-value-out-of-range",
            ZkError::OpeningMismatch => "zk-opening-mismatch",
            ZkError::InvalidPredicate(_) => "zk-invalid-predicate",
            ZkError::InvalidClaims(_) => "zk-invalid-claims",
            ZkError::HolderKeyRequired => "zk-holder-key-required",
            ZkError::HolderKeyMismatch => "zk-holder-key-mismatch",
            ZkError::BadHolderSignature => "zk-bad-holder-signature",
            ZkError::ProvingFailed => "zk-proving-failed",
            ZkError::EligibilityDuplicateToken => "eligibility-duplicate-token",
            ZkError::EligibilityDuplicateCredential => "eligibility-duplicate-credential",
            ZkError::EligibilityIssuerNotAccepted(_) => "eligibility-issuer-not-accepted",
            ZkError::EligibilityHolderPresent => "eligibility-holder-present",
            ZkError::EligibilityWrongStudy => "eligibility-wrong-study",
        }
    }

    pub(crate) fn malformed(what: impl Into<String>) -> Self {
        ZkError::Malformed(what.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_kebab_case_and_distinct() {
        let all = [
            ZkError::BadIssuerSignature,
            ZkError::UntrustedIssuer(String::new()),
            ZkError::Expired,
            ZkError::NotYetValid,
            ZkError::ProofInvalid,
            ZkError::WrongPredicate,
            ZkError::WrongAttribute,
            ZkError::WrongChallenge,
            ZkError::NonceUnknown,
            ZkError::NonceReused,
            ZkError::NonceExpired,
            ZkError::NonceBookFull,
            ZkError::Malformed(String::new()),
            ZkError::ValueOutOfRange,
            ZkError::OpeningMismatch,
            ZkError::InvalidPredicate(""),
            ZkError::InvalidClaims(String::new()),
            ZkError::HolderKeyRequired,
            ZkError::HolderKeyMismatch,
            ZkError::BadHolderSignature,
            ZkError::ProvingFailed,
            ZkError::EligibilityDuplicateToken,
            ZkError::EligibilityDuplicateCredential,
            ZkError::EligibilityIssuerNotAccepted(String::new()),
            ZkError::EligibilityHolderPresent,
            ZkError::EligibilityWrongStudy,
        ];
        let mut codes: Vec<&str> = all.iter().map(ZkError::code).collect();
        for code in &codes {
            assert!(code.chars().all(|c| c.is_ascii_lowercase() || c == '-'));
        }
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
    }
}
