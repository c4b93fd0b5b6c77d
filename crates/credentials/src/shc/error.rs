//! Why a SMART Health Card was refused (or could not be made).

/// Everything that can go wrong reading, verifying or issuing a SMART
/// Health Card.
///
/// [`ShcError::code`] is stable and is what callers should match on; the
/// `Display` message is meant for the person holding the card and may
/// change.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ShcError {
    /// The scanned text is not a SMART Health Card QR code: no `shc:/`
    /// prefix, characters other than digits, an odd number of digits, a
    /// digit pair above 77, or multi-part numbering that is incomplete or
    /// inconsistent.
    #[error("this QR code is not a readable SMART Health Card: {0}")]
    MalformedQr(String),
    /// The card is not a JWS in compact serialization: not three
    /// dot-separated unpadded base64url parts, a header that is not a JSON
    /// object, or a signature that is not 64 bytes.
    #[error("this card is damaged or is not a SMART Health Card: {0}")]
    MalformedJws(String),
    /// The JWS header asks for something a SMART Health Card never uses:
    /// `alg` other than `ES256`, `zip` other than `DEF`, no `kid`, or
    /// `crit`.
    #[error("this card uses a format SMART Health Cards do not allow: {0}")]
    UnsupportedHeader(String),
    /// The card, or its decompressed contents, are larger than a verifier
    /// accepts.
    #[error("this card is too large to check: {0}")]
    TooLarge(String),
    /// The payload is not valid raw DEFLATE data.
    #[error("this card's contents could not be decompressed: {0}")]
    InflateFailed(String),
    /// The decompressed payload is not the JSON a health card carries
    /// (`iss`, `nbf`, `vc.type` with the health-card type,
    /// `vc.credentialSubject` with `fhirVersion` and a FHIR Bundle).
    #[error("this card's contents are not a valid SMART Health Card: {0}")]
    MalformedPayload(String),
    /// The issuer named in the card is not one this verifier trusts.
    #[error("this card was issued by {0:?}, which is not a trusted issuer")]
    UnknownIssuer(String),
    /// The issuer is trusted but has no signing key with the card's `kid`
    /// (the key may have been withdrawn, e.g. after a compromise).
    #[error("issuer {iss:?} has no signing key {kid:?}: the card cannot be checked")]
    UnknownKey { iss: String, kid: String },
    /// The ES256 signature does not verify with the issuer's key: the
    /// card was altered or not signed by this issuer.
    #[error("this card's signature is not valid: it was altered or not signed by its issuer")]
    BadSignature,
    /// `nbf` is later than now (beyond the allowed clock skew).
    #[error("this card is not valid yet (valid from {nbf}, now {now})")]
    NotYetValid { nbf: f64, now: i64 },
    /// `exp` is earlier than now (beyond the allowed clock skew).
    #[error("this card expired (at {exp}, now {now})")]
    Expired { exp: f64, now: i64 },
    /// A JWK or JWK Set is not a usable EC P-256 signing key (or set), a
    /// `kid` is not the key's RFC 7638 thumbprint, or a secret key does
    /// not match its public half.
    #[error("unusable issuer key: {0}")]
    MalformedJwk(String),
    /// A public key or key set carries the private member `d`: the issuer
    /// published its secret key, so the key must not be trusted.
    #[error(
        "issuer key {0:?} includes its private part (\"d\"): it must not be published or trusted"
    )]
    PrivateKeyPublished(String),
    /// A `.smart-health-card` file is not `{"verifiableCredential": [JWS, ...]}`.
    #[error("this is not a valid .smart-health-card file: {0}")]
    MalformedFile(String),
    /// Issuing: the input is not something a card can be made of (not a
    /// FHIR Bundle, an `iss` that is not an `https` URL without trailing
    /// `/`, an empty type).
    #[error("cannot issue this card: {0}")]
    InvalidIssuance(String),
}

impl ShcError {
    /// A stable, kebab-case identifier of the kind of failure.
    pub fn code(&self) -> &'static str {
        match self {
            ShcError::MalformedQr(_) => "shc-malformed-qr",
            ShcError::MalformedJws(_) => "shc-malformed-jws",
            ShcError::UnsupportedHeader(_) => "shc-unsupported-header",
            ShcError::TooLarge(_) => "shc-too-large",
            ShcError::InflateFailed(_) => "shc-inflate-failed",
            ShcError::MalformedPayload(_) => "shc-malformed-payload",
            ShcError::UnknownIssuer(_) => "shc-unknown-issuer",
            ShcError::UnknownKey { .. } => "shc-unknown-key",
            ShcError::BadSignature => "shc-bad-signature",
            ShcError::NotYetValid { .. } => "shc-not-yet-valid",
            ShcError::Expired { .. } => "shc-expired",
            ShcError::MalformedJwk(_) => "shc-malformed-jwk",
            ShcError::PrivateKeyPublished(_) => "shc-private-key-published",
            ShcError::MalformedFile(_) => "shc-malformed-file",
            ShcError::InvalidIssuance(_) => "shc-invalid-issuance",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_kebab_case() {
        let all = [
            ShcError::MalformedQr(String::new()),
            ShcError::MalformedJws(String::new()),
            ShcError::UnsupportedHeader(String::new()),
            ShcError::TooLarge(String::new()),
            ShcError::InflateFailed(String::new()),
            ShcError::MalformedPayload(String::new()),
            ShcError::UnknownIssuer(String::new()),
            ShcError::UnknownKey {
                iss: String::new(),
                kid: String::new(),
            },
            ShcError::BadSignature,
            ShcError::NotYetValid { nbf: 0.0, now: 0 },
            ShcError::Expired { exp: 0.0, now: 0 },
            ShcError::MalformedJwk(String::new()),
            ShcError::PrivateKeyPublished(String::new()),
            ShcError::MalformedFile(String::new()),
            ShcError::InvalidIssuance(String::new()),
        ];
        let mut codes: Vec<&str> = all.iter().map(ShcError::code).collect();
        for code in &codes {
            assert!(code.starts_with("shc-"));
            assert!(code.chars().all(|c| c.is_ascii_lowercase() || c == '-'));
        }
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
    }
}
