//! Why an SD-JWT, a presentation or its key binding was refused.

use crate::jwk::JwkError;
use crate::jws::JwsError;

/// A refusal while reading or verifying an SD-JWT (VC) or its KB-JWT.
/// [`SdJwtError::code`] is stable; the message can be shown to a person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdJwtError {
    #[error("the credential is longer than {0} bytes")]
    TooLong(usize),
    #[error("the credential is malformed: {0}")]
    Malformed(&'static str),
    #[error("the issuer's signed token was refused: {0}")]
    IssuerJws(JwsError),
    #[error("the credential's type header is {0:?}, not \"dc+sd-jwt\"")]
    WrongType(String),
    #[error("the credential lacks the claim {0:?} or it has the wrong type")]
    MissingClaim(&'static str),
    #[error("the issuer {0:?} is not known or has no key for this credential")]
    UnknownIssuer(String),
    #[error("the credential's digest algorithm {0:?} is not supported (only sha-256 is)")]
    UnsupportedHashAlgorithm(String),
    #[error("a disclosure is not base64url of a JSON array [salt, name, value] or [salt, value]")]
    DisclosureMalformed,
    #[error("the same disclosure is presented twice")]
    DisclosureDuplicate,
    #[error("a digest appears more than once in the credential")]
    DigestDuplicate,
    #[error("a disclosure matches no digest in the credential (it was altered, or belongs to another credential)")]
    DisclosureUnreferenced,
    #[error("a digest refers to a disclosure of the wrong kind (an array element where an object member was expected, or the reverse)")]
    DigestMismatch,
    #[error("the credential uses the reserved claim name {0:?}")]
    ReservedClaimName(String),
    #[error("the claim {0:?} is both plain and disclosed, or disclosed twice")]
    ClaimCollision(String),
    #[error("the claim {0:?} must not be selectively disclosable")]
    ClaimNotDisclosable(String),
    #[error("the credential nests claims too deeply")]
    TooDeep,
    #[error("the credential has expired")]
    Expired,
    #[error("the credential is not valid yet")]
    NotYetValid,
    #[error("the credential's holder key (cnf) is unusable: {0}")]
    BadHolderKey(JwkError),
    #[error("key binding was required but the credential names no holder key (cnf)")]
    MissingHolderKey,
    #[error("key binding was required but the presentation has no key binding token")]
    KbMissing,
    #[error("the key binding token was refused: {0}")]
    KbJws(JwsError),
    #[error("the key binding token is malformed: {0}")]
    KbMalformed(&'static str),
    #[error("the key binding token's type header is not \"kb+jwt\"")]
    KbWrongType,
    #[error("the key binding token was made for another request (nonce differs)")]
    KbWrongNonce,
    #[error("the key binding token was made for another verifier (aud differs)")]
    KbWrongAudience,
    #[error("the key binding token does not cover this presentation (sd_hash differs)")]
    KbSdHashMismatch,
    #[error("the key binding token was not made just now (iat too old or in the future)")]
    KbStale,
    #[error("the key offered for key binding is not the credential's holder key")]
    KbHolderKeyMismatch,
}

impl SdJwtError {
    pub fn code(&self) -> &'static str {
        use SdJwtError::*;
        match self {
            TooLong(_) => "sd-jwt-too-long",
            Malformed(_) => "sd-jwt-malformed",
            IssuerJws(e) => match e {
                JwsError::TooLong => "sd-jwt-too-long",
                JwsError::Malformed | JwsError::BadHeader => "sd-jwt-malformed",
                JwsError::UnsupportedAlgorithm(_) => "sd-jwt-unsupported-algorithm",
                JwsError::CriticalHeader => "sd-jwt-critical-header",
                JwsError::KeyMismatch(_) | JwsError::BadSignature => "sd-jwt-bad-signature",
            },
            WrongType(_) => "sd-jwt-wrong-type",
            MissingClaim(_) => "sd-jwt-missing-claim",
            UnknownIssuer(_) => "sd-jwt-unknown-issuer",
            UnsupportedHashAlgorithm(_) => "sd-jwt-unsupported-hash-alg",
            DisclosureMalformed => "sd-jwt-disclosure-malformed",
            DisclosureDuplicate => "sd-jwt-disclosure-duplicate",
            DigestDuplicate => "sd-jwt-digest-duplicate",
            DisclosureUnreferenced => "sd-jwt-disclosure-unreferenced",
            DigestMismatch => "sd-jwt-digest-mismatch",
            ReservedClaimName(_) => "sd-jwt-reserved-claim-name",
            ClaimCollision(_) => "sd-jwt-claim-collision",
            ClaimNotDisclosable(_) => "sd-jwt-claim-not-disclosable",
            TooDeep => "sd-jwt-too-deep",
            Expired => "sd-jwt-expired",
            NotYetValid => "sd-jwt-not-yet-valid",
            BadHolderKey(_) => "sd-jwt-bad-holder-key",
            MissingHolderKey => "sd-jwt-missing-holder-key",
            KbMissing => "kb-jwt-missing",
            KbJws(e) => match e {
                JwsError::TooLong | JwsError::Malformed | JwsError::BadHeader => "kb-jwt-malformed",
                JwsError::UnsupportedAlgorithm(_) => "kb-jwt-unsupported-algorithm",
                JwsError::CriticalHeader => "kb-jwt-critical-header",
                JwsError::KeyMismatch(_) | JwsError::BadSignature => "kb-jwt-bad-signature",
            },
            KbMalformed(_) => "kb-jwt-malformed",
            KbWrongType => "kb-jwt-wrong-type",
            KbWrongNonce => "kb-jwt-wrong-nonce",
            KbWrongAudience => "kb-jwt-wrong-audience",
            KbSdHashMismatch => "kb-jwt-sd-hash-mismatch",
            KbStale => "kb-jwt-stale",
            KbHolderKeyMismatch => "kb-jwt-holder-key-mismatch",
        }
    }

    /// A sentence a verifier can show to a person.
    pub fn reason(&self) -> String {
        self.to_string()
    }
}

/// A refusal while issuing: the claims or the marks do not make a valid
/// SD-JWT VC.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssueError {
    #[error("no claim at {0} to make selectively disclosable")]
    NoSuchClaim(String),
    #[error("the claims use the reserved name {0:?}")]
    ReservedClaimName(String),
    #[error("the claim {0:?} must stay plain in an SD-JWT VC")]
    ClaimNotDisclosable(String),
    #[error("the claims lack {0:?} (a string)")]
    MissingClaim(&'static str),
}

impl IssueError {
    pub fn code(&self) -> &'static str {
        match self {
            IssueError::NoSuchClaim(_) => "sd-jwt-issue-no-such-claim",
            IssueError::ReservedClaimName(_) => "sd-jwt-issue-reserved-claim-name",
            IssueError::ClaimNotDisclosable(_) => "sd-jwt-issue-claim-not-disclosable",
            IssueError::MissingClaim(_) => "sd-jwt-issue-missing-claim",
        }
    }
}
