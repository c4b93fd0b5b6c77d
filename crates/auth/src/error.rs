//! Why a request was refused, with a stable code for clients.

/// A request's authentication was refused.
///
/// [`AuthError::code`] is stable and is what clients should match on;
/// the `Display` message says what to fix and may change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The request carries no `Signature-Input` or no `Signature` header.
    #[error(
        "this request must be signed: add RFC 9421 Signature-Input and Signature headers \
         made with your did:key (see docs/auth.md)"
    )]
    Missing,
    /// The signature headers do not parse or break one of the rules of the
    /// scheme (one signature, keyid a did:key, nonce format, `alg`).
    #[error("malformed request signature: {0}")]
    Malformed(String),
    /// A component the scheme requires is not covered, or a covered
    /// component is not in the request.
    #[error("the signature does not cover what it must: {0}")]
    Components(String),
    /// `created` is outside the accepted window, before the node started,
    /// or `expires` has passed.
    #[error("the signature is not fresh: {0}; sign the request again with the current time and a new nonce")]
    Expired(String),
    /// The signature does not verify with the key named by `keyid`.
    #[error(
        "the signature does not verify with the key named by keyid: sign with that key, over the \
         signature base built exactly as RFC 9421 section 2.5 says from this request's method, \
         path, query, covered headers and Signature-Input parameters"
    )]
    BadSignature,
    /// This key already used this nonce within the replay window.
    #[error("this nonce was already used with this key: use a new random nonce for every request")]
    Replay,
    /// The body does not match `Content-Digest`, or the header is missing
    /// or malformed on a request with a body.
    #[error("{0}")]
    DigestMismatch(String),
}

impl AuthError {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "auth_missing",
            AuthError::Malformed(_) => "auth_malformed",
            AuthError::Components(_) => "auth_components",
            AuthError::Expired(_) => "auth_expired",
            AuthError::BadSignature => "auth_bad_signature",
            AuthError::Replay => "auth_replay",
            AuthError::DigestMismatch(_) => "digest_mismatch",
        }
    }

    /// The HTTP status to answer with: 400 when the request itself is
    /// malformed, 401 when its authentication fails.
    pub fn http_status(&self) -> u16 {
        match self {
            AuthError::Malformed(_) | AuthError::DigestMismatch(_) => 400,
            AuthError::Missing
            | AuthError::Components(_)
            | AuthError::Expired(_)
            | AuthError::BadSignature
            | AuthError::Replay => 401,
        }
    }

    pub(crate) fn malformed(message: impl Into<String>) -> Self {
        AuthError::Malformed(message.into())
    }

    pub(crate) fn components(message: impl Into<String>) -> Self {
        AuthError::Components(message.into())
    }

    pub(crate) fn expired(message: impl Into<String>) -> Self {
        AuthError::Expired(message.into())
    }

    pub(crate) fn digest(message: impl Into<String>) -> Self {
        AuthError::DigestMismatch(message.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses() {
        let cases = [
            (AuthError::Missing, "auth_missing", 401),
            (AuthError::malformed("x"), "auth_malformed", 400),
            (AuthError::components("x"), "auth_components", 401),
            (AuthError::expired("x"), "auth_expired", 401),
            (AuthError::BadSignature, "auth_bad_signature", 401),
            (AuthError::Replay, "auth_replay", 401),
            (AuthError::digest("x"), "digest_mismatch", 400),
        ];
        for (error, code, status) in cases {
            assert_eq!(error.code(), code);
            assert_eq!(error.http_status(), status);
            assert!(!error.to_string().is_empty());
        }
    }
}
