//! Why a token request was refused, with the OAuth 2.0 error code to send.

/// A token request or client assertion was refused.
///
/// [`TokenError::code`] is the RFC 6749 §5.2 `error` value (stable; what
/// clients match on). The `Display` message names what is wrong and goes in
/// `error_description`; it may change. Every problem with the client
/// assertion is `invalid_client`, as RFC 7521 §4.2.1 requires.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// `grant_type` is not `client_credentials`.
    #[error("grant_type must be \"client_credentials\", not {0:?}")]
    UnsupportedGrantType(String),
    /// A parameter is missing, repeated, too long or not in its format.
    #[error("invalid token request: {0}")]
    InvalidRequest(String),
    /// `scope` is not a space-separated list of RFC 6749 scope tokens.
    #[error("invalid scope: {0}")]
    InvalidScope(String),
    /// `client_assertion_type` is not the JWT bearer type.
    #[error(
        "client_assertion_type must be \"urn:ietf:params:oauth:client-assertion-type:jwt-bearer\", \
         not {0:?}"
    )]
    UnsupportedAssertionType(String),
    /// The assertion is not a JWS in compact serialization, a segment is
    /// not unpadded base64url, the header or payload is not a JSON object,
    /// or the assertion is too long.
    #[error("malformed client assertion: {0}")]
    Malformed(String),
    /// The JWS header is refused: `alg` not `EdDSA` (including `none`,
    /// HMAC and a missing `alg`), `crit` present, `typ` not `JWT`, or a
    /// `kid` that does not name the issuer's key.
    #[error("client assertion header refused: {0}")]
    Header(String),
    /// A required claim is missing or a claim has the wrong type or size.
    #[error("client assertion claims refused: {0}")]
    Claims(String),
    /// `iss` is not an Ed25519 `did:key`, or `sub` differs from `iss`.
    #[error("client assertion issuer refused: {0}")]
    Issuer(String),
    /// `aud` does not name this token endpoint.
    #[error(
        "the client assertion's aud must be (or contain) {expected}: the node's DID (node_did \
         from GET /v1/node) or, when the node has a public URL, its token endpoint URL"
    )]
    WrongAudience {
        /// The audiences the node accepts, quoted, joined with " or ".
        expected: String,
    },
    /// `exp` is in the past (beyond the allowed clock skew).
    #[error(
        "the client assertion expired at {exp} (now {now}, {skew} s of clock skew allowed): \
         make a new one"
    )]
    Expired { exp: i64, now: i64, skew: i64 },
    /// `exp` is further ahead than an assertion may live.
    #[error(
        "the client assertion's exp {exp} is too far ahead: at most {max} s after now ({now}) \
         plus {skew} s of clock skew"
    )]
    LifetimeTooLong {
        exp: i64,
        now: i64,
        max: i64,
        skew: i64,
    },
    /// `iat` or `nbf` is in the future (beyond the allowed clock skew).
    #[error("the client assertion's {claim} {value} is in the future (now {now}, {skew} s of clock skew allowed)")]
    NotYetValid {
        claim: &'static str,
        value: i64,
        now: i64,
        skew: i64,
    },
    /// The signature does not verify with the key of `iss`.
    #[error(
        "the client assertion's signature does not verify with the key of iss {iss}: sign \
         base64url(header) \".\" base64url(payload) with that did:key's Ed25519 key (RFC 8032)"
    )]
    BadSignature { iss: String },
    /// The ES384 signature of a registered client's assertion does not
    /// verify with its registered key.
    #[error(
        "the client assertion's signature does not verify with the key registered for client \
         {client_id}: sign base64url(header) \".\" base64url(payload) with ES384 (ECDSA P-384, \
         SHA-384; r || s, RFC 7518 §3.4)"
    )]
    BadEs384Signature { client_id: String },
    /// This issuer already used this `jti` in an assertion that has not
    /// expired.
    #[error("this jti was already used by this issuer: use a new jti for every client assertion")]
    Replay,
    /// Too many assertions are still within their lifetime to remember
    /// another; accepting it unremembered would allow its replay.
    #[error("the token endpoint is busy: try again in a minute")]
    Busy,
}

impl TokenError {
    /// The RFC 6749 §5.2 error code.
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::UnsupportedGrantType(_) => "unsupported_grant_type",
            TokenError::InvalidRequest(_) => "invalid_request",
            TokenError::InvalidScope(_) => "invalid_scope",
            TokenError::UnsupportedAssertionType(_)
            | TokenError::Malformed(_)
            | TokenError::Header(_)
            | TokenError::Claims(_)
            | TokenError::Issuer(_)
            | TokenError::WrongAudience { .. }
            | TokenError::Expired { .. }
            | TokenError::LifetimeTooLong { .. }
            | TokenError::NotYetValid { .. }
            | TokenError::BadSignature { .. }
            | TokenError::BadEs384Signature { .. }
            | TokenError::Replay => "invalid_client",
            // RFC 6749 defines it for the authorization endpoint; it is the
            // closest registered code and what clients already retry on.
            TokenError::Busy => "temporarily_unavailable",
        }
    }

    /// The HTTP status to answer with: 401 when client authentication
    /// failed, 503 when busy, 400 otherwise (RFC 6749 §5.2).
    pub fn http_status(&self) -> u16 {
        match self.code() {
            "invalid_client" => 401,
            "temporarily_unavailable" => 503,
            _ => 400,
        }
    }

    /// The RFC 6749 §5.2 JSON error body:
    /// `{"error": code, "error_description": message}`.
    pub fn to_oauth_json(&self) -> String {
        serde_json::json!({
            "error": self.code(),
            "error_description": self.to_string(),
        })
        .to_string()
    }

    pub(crate) fn request(message: impl Into<String>) -> Self {
        TokenError::InvalidRequest(message.into())
    }

    pub(crate) fn malformed(message: impl Into<String>) -> Self {
        TokenError::Malformed(message.into())
    }

    pub(crate) fn header(message: impl Into<String>) -> Self {
        TokenError::Header(message.into())
    }

    pub(crate) fn claims(message: impl Into<String>) -> Self {
        TokenError::Claims(message.into())
    }

    pub(crate) fn issuer(message: impl Into<String>) -> Self {
        TokenError::Issuer(message.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses() {
        let cases = [
            (
                TokenError::UnsupportedGrantType("password".into()),
                "unsupported_grant_type",
                400,
            ),
            (TokenError::request("x"), "invalid_request", 400),
            (TokenError::InvalidScope("x".into()), "invalid_scope", 400),
            (
                TokenError::UnsupportedAssertionType("x".into()),
                "invalid_client",
                401,
            ),
            (TokenError::malformed("x"), "invalid_client", 401),
            (TokenError::Replay, "invalid_client", 401),
            (TokenError::Busy, "temporarily_unavailable", 503),
        ];
        for (error, code, status) in cases {
            assert_eq!(error.code(), code);
            assert_eq!(error.http_status(), status);
            let body: serde_json::Value = serde_json::from_str(&error.to_oauth_json()).unwrap();
            assert_eq!(body["error"], code);
            assert_eq!(body["error_description"], error.to_string());
        }
    }
}
