//! Compact JWS (RFC 7515) signing and verification for the two algorithms
//! Hygeia speaks: `EdDSA` over Ed25519 (RFC 8037) and `ES256` over P-256
//! (RFC 7518 §3.4, the signature as the 64-byte `r ‖ s`).
//!
//! Verification is deliberately narrow: the `alg` must be one of those two
//! and match the key (never `none`, never chosen by the token alone), a
//! `crit` header is refused (we understand no extensions), the protected
//! header may not repeat a member name, and the whole token is capped.
//! Ed25519 verification is strict (via `hygeia-identity`).

use hygeia_identity::{Keypair, PublicKey, Signature};
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use serde_json::{Map, Value};

use crate::{base64url, strict_json};

/// Longest compact JWS accepted, in bytes. Credentials are small; this
/// bounds the work an unauthenticated input can cause.
pub const MAX_JWS_LEN: usize = 256 * 1024;

/// A JWS signature algorithm this crate signs and verifies with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// Ed25519 (RFC 8037).
    EdDSA,
    /// ECDSA over P-256 with SHA-256 (RFC 7518 §3.4).
    ES256,
}

impl Algorithm {
    /// The `alg` header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::EdDSA => "EdDSA",
            Algorithm::ES256 => "ES256",
        }
    }

    /// The algorithm an `alg` header names, if it is on the allow-list.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "EdDSA" => Some(Algorithm::EdDSA),
            "ES256" => Some(Algorithm::ES256),
            _ => None,
        }
    }
}

/// A private key that signs JWS.
pub enum SigningKey {
    Ed25519(Keypair),
    P256(p256::ecdsa::SigningKey),
}

impl SigningKey {
    /// A fresh P-256 key from the operating system's random source.
    pub fn generate_p256() -> Self {
        use rand::RngCore;
        loop {
            let mut bytes = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            // Out-of-range scalars (probability ~2^-32) are drawn again.
            if let Ok(key) = p256::ecdsa::SigningKey::from_slice(&bytes) {
                return SigningKey::P256(key);
            }
        }
    }

    /// A fresh Ed25519 key from the operating system's random source.
    pub fn generate_ed25519() -> Self {
        SigningKey::Ed25519(Keypair::generate())
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            SigningKey::Ed25519(_) => Algorithm::EdDSA,
            SigningKey::P256(_) => Algorithm::ES256,
        }
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        match self {
            SigningKey::Ed25519(key) => VerifyingKey::Ed25519(key.public_key()),
            SigningKey::P256(key) => VerifyingKey::P256(*key.verifying_key()),
        }
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self {
            SigningKey::Ed25519(key) => key.sign(message).to_bytes().to_vec(),
            SigningKey::P256(key) => {
                let signature: p256::ecdsa::Signature = key.sign(message);
                signature.to_bytes().to_vec()
            }
        }
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.algorithm().as_str())
            .finish_non_exhaustive()
    }
}

impl From<Keypair> for SigningKey {
    fn from(key: Keypair) -> Self {
        SigningKey::Ed25519(key)
    }
}

/// A public key that verifies JWS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerifyingKey {
    Ed25519(PublicKey),
    P256(p256::ecdsa::VerifyingKey),
}

impl VerifyingKey {
    pub fn algorithm(&self) -> Algorithm {
        match self {
            VerifyingKey::Ed25519(_) => Algorithm::EdDSA,
            VerifyingKey::P256(_) => Algorithm::ES256,
        }
    }

    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), JwsError> {
        match self {
            VerifyingKey::Ed25519(key) => {
                let signature =
                    Signature::from_slice(signature).map_err(|_| JwsError::BadSignature)?;
                key.verify(message, &signature)
                    .map_err(|_| JwsError::BadSignature)
            }
            VerifyingKey::P256(key) => {
                // Exactly 64 bytes, r and s in [1, n): `from_slice` refuses
                // anything else, including DER.
                if signature.len() != 64 {
                    return Err(JwsError::BadSignature);
                }
                let signature = p256::ecdsa::Signature::from_slice(signature)
                    .map_err(|_| JwsError::BadSignature)?;
                key.verify(message, &signature)
                    .map_err(|_| JwsError::BadSignature)
            }
        }
    }
}

impl From<PublicKey> for VerifyingKey {
    fn from(key: PublicKey) -> Self {
        VerifyingKey::Ed25519(key)
    }
}

/// Why a JWS was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    #[error("the signed token is longer than {MAX_JWS_LEN} bytes")]
    TooLong,
    #[error("the signed token is not a compact JWS (three base64url parts separated by dots)")]
    Malformed,
    #[error("the signed token's header is not a JSON object with distinct member names")]
    BadHeader,
    #[error(
        "the signed token uses an algorithm that is not accepted ({0:?}); only EdDSA and ES256 are"
    )]
    UnsupportedAlgorithm(String),
    #[error("the signed token carries a critical header extension (crit), which is not supported")]
    CriticalHeader,
    #[error("the signed token's algorithm ({0}) does not match the verification key")]
    KeyMismatch(&'static str),
    #[error("the signature does not verify")]
    BadSignature,
}

impl JwsError {
    /// A stable identifier for this kind of refusal.
    pub fn code(&self) -> &'static str {
        match self {
            JwsError::TooLong => "jws-too-long",
            JwsError::Malformed => "jws-malformed",
            JwsError::BadHeader => "jws-bad-header",
            JwsError::UnsupportedAlgorithm(_) => "jws-unsupported-algorithm",
            JwsError::CriticalHeader => "jws-critical-header",
            JwsError::KeyMismatch(_) => "jws-key-algorithm-mismatch",
            JwsError::BadSignature => "jws-bad-signature",
        }
    }
}

/// A JWS protected header: a JSON object without repeated member names
/// whose `alg` is on the allow-list and that has no `crit`.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    members: Map<String, Value>,
    alg: Algorithm,
}

impl Header {
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The `typ` member, if it is a string.
    pub fn typ(&self) -> Option<&str> {
        self.members.get("typ").and_then(Value::as_str)
    }

    /// The `kid` member, if it is a string (RFC 7515 requires one; a key
    /// id of another JSON type is left for the caller to read with `get`).
    pub fn kid(&self) -> Option<&str> {
        self.members.get("kid").and_then(Value::as_str)
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.members.get(name)
    }

    pub fn as_map(&self) -> &Map<String, Value> {
        &self.members
    }
}

/// A compact JWS whose structure and header were checked but whose
/// signature was not: read the header (and, if need be, the payload) to
/// choose the key, then [`UnverifiedJws::verify`].
#[derive(Clone, Debug)]
pub struct UnverifiedJws {
    signing_input: String,
    header: Header,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

impl UnverifiedJws {
    pub fn parse(jws: &str) -> Result<Self, JwsError> {
        if jws.len() > MAX_JWS_LEN {
            return Err(JwsError::TooLong);
        }
        let mut parts = jws.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwsError::Malformed);
        };
        let header_bytes = base64url::decode(header_b64).ok_or(JwsError::Malformed)?;
        let payload = base64url::decode(payload_b64).ok_or(JwsError::Malformed)?;
        let signature = base64url::decode(signature_b64).ok_or(JwsError::Malformed)?;
        let members = strict_json::object_from_slice(&header_bytes).ok_or(JwsError::BadHeader)?;
        if members.contains_key("crit") {
            return Err(JwsError::CriticalHeader);
        }
        let alg = match members.get("alg") {
            Some(Value::String(name)) => Algorithm::from_name(name)
                .ok_or_else(|| JwsError::UnsupportedAlgorithm(name.clone()))?,
            Some(_) => return Err(JwsError::BadHeader),
            None => return Err(JwsError::UnsupportedAlgorithm(String::new())),
        };
        let signing_input_len = header_b64.len() + 1 + payload_b64.len();
        Ok(UnverifiedJws {
            signing_input: jws[..signing_input_len].to_owned(),
            header: Header { members, alg },
            payload,
            signature,
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The payload, which nothing vouches for yet: only to find the key
    /// (e.g. by `iss`), never to act on.
    pub fn payload_unverified(&self) -> &[u8] {
        &self.payload
    }

    pub fn verify(self, key: &VerifyingKey) -> Result<Verified, JwsError> {
        if key.algorithm() != self.header.alg {
            return Err(JwsError::KeyMismatch(self.header.alg.as_str()));
        }
        key.verify(self.signing_input.as_bytes(), &self.signature)?;
        Ok(Verified {
            header: self.header,
            payload: self.payload,
        })
    }
}

/// A JWS whose signature verified: only [`UnverifiedJws::verify`] (or
/// [`verify_compact`]) makes one.
#[derive(Clone, Debug)]
pub struct Verified {
    header: Header,
    payload: Vec<u8>,
}

impl Verified {
    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    pub fn into_parts(self) -> (Header, Vec<u8>) {
        (self.header, self.payload)
    }
}

/// Signs `payload` as a compact JWS. The `alg` member is set from the key,
/// whatever `header` said.
pub fn sign_compact(mut header: Map<String, Value>, payload: &[u8], key: &SigningKey) -> String {
    header.insert("alg".into(), Value::String(key.algorithm().as_str().into()));
    let header_json = Value::Object(header).to_string();
    let mut out = base64url::encode(header_json.as_bytes());
    out.push('.');
    out.push_str(&base64url::encode(payload));
    let signature = key.sign(out.as_bytes());
    out.push('.');
    out.push_str(&base64url::encode(&signature));
    out
}

/// Parses and verifies a compact JWS with a key known in advance.
pub fn verify_compact(jws: &str, key: &VerifyingKey) -> Result<Verified, JwsError> {
    UnverifiedJws::parse(jws)?.verify(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn header(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    fn both_keys() -> Vec<SigningKey> {
        vec![
            SigningKey::Ed25519(Keypair::from_seed(&[9; 32])),
            SigningKey::generate_p256(),
        ]
    }

    /// A compact JWS with an arbitrary header, signed correctly.
    fn sign_raw_header(header_json: &str, payload: &[u8], key: &SigningKey) -> String {
        let mut out = base64url::encode(header_json.as_bytes());
        out.push('.');
        out.push_str(&base64url::encode(payload));
        let signature = key.sign(out.as_bytes());
        out.push('.');
        out.push_str(&base64url::encode(&signature));
        out
    }

    #[test]
    fn signs_and_verifies_with_both_algorithms() {
        for key in both_keys() {
            let jws = sign_compact(
                header(json!({"typ": "JWT", "kid": "k1"})),
                b"{\"a\":1}",
                &key,
            );
            let verified = verify_compact(&jws, &key.verifying_key()).unwrap();
            assert_eq!(verified.payload(), b"{\"a\":1}");
            assert_eq!(verified.header().kid(), Some("k1"));
            assert_eq!(verified.header().typ(), Some("JWT"));
            assert_eq!(verified.header().algorithm(), key.algorithm());
            let signature = jws.rsplit('.').next().unwrap();
            assert_eq!(base64url::decode(signature).unwrap().len(), 64);
        }
    }

    #[test]
    fn a_different_key_or_payload_is_refused() {
        let key = SigningKey::generate_p256();
        let other = SigningKey::generate_p256();
        let jws = sign_compact(Map::new(), b"x", &key);
        assert_eq!(
            verify_compact(&jws, &other.verifying_key()).unwrap_err(),
            JwsError::BadSignature
        );
        let mut parts: Vec<&str> = jws.split('.').collect();
        let changed = base64url::encode(b"y");
        parts[1] = &changed;
        assert_eq!(
            verify_compact(&parts.join("."), &key.verifying_key())
                .unwrap_err()
                .code(),
            "jws-bad-signature"
        );
    }

    #[test]
    fn the_algorithm_must_match_the_key() {
        let ed = SigningKey::Ed25519(Keypair::from_seed(&[1; 32]));
        let ec = SigningKey::generate_p256();
        let jws = sign_compact(Map::new(), b"x", &ed);
        assert_eq!(
            verify_compact(&jws, &ec.verifying_key())
                .unwrap_err()
                .code(),
            "jws-key-algorithm-mismatch"
        );
        // An EdDSA signature relabelled ES256 does not verify either way.
        let relabelled = sign_raw_header(r#"{"alg":"ES256"}"#, b"x", &ed);
        assert_eq!(
            verify_compact(&relabelled, &ed.verifying_key())
                .unwrap_err()
                .code(),
            "jws-key-algorithm-mismatch"
        );
    }

    #[test]
    fn none_and_unknown_algorithms_are_refused() {
        let key = SigningKey::Ed25519(Keypair::from_seed(&[2; 32]));
        for header in [
            r#"{"alg":"none"}"#,
            r#"{"alg":"HS256"}"#,
            r#"{"alg":"RS256"}"#,
            r#"{}"#,
        ] {
            let jws = sign_raw_header(header, b"x", &key);
            assert_eq!(
                verify_compact(&jws, &key.verifying_key())
                    .unwrap_err()
                    .code(),
                "jws-unsupported-algorithm",
                "{header}"
            );
        }
        let unsigned = format!(
            "{}.{}.",
            base64url::encode(br#"{"alg":"none"}"#),
            base64url::encode(b"x")
        );
        assert_eq!(
            UnverifiedJws::parse(&unsigned).unwrap_err().code(),
            "jws-unsupported-algorithm"
        );
        let numeric = sign_raw_header(r#"{"alg":1}"#, b"x", &key);
        assert_eq!(
            UnverifiedJws::parse(&numeric).unwrap_err().code(),
            "jws-bad-header"
        );
    }

    #[test]
    fn crit_and_duplicate_members_are_refused() {
        let key = SigningKey::Ed25519(Keypair::from_seed(&[3; 32]));
        let crit = sign_raw_header(r#"{"alg":"EdDSA","crit":["b64"],"b64":false}"#, b"x", &key);
        assert_eq!(
            UnverifiedJws::parse(&crit).unwrap_err().code(),
            "jws-critical-header"
        );
        let duplicate = sign_raw_header(r#"{"alg":"EdDSA","alg":"none"}"#, b"x", &key);
        assert_eq!(
            UnverifiedJws::parse(&duplicate).unwrap_err().code(),
            "jws-bad-header"
        );
        let not_object = sign_raw_header(r#"["alg"]"#, b"x", &key);
        assert_eq!(
            UnverifiedJws::parse(&not_object).unwrap_err().code(),
            "jws-bad-header"
        );
    }

    #[test]
    fn structure_and_size_are_checked() {
        for text in ["", "a.b", "a.b.c.d", "e30.e30.e30=", "e30.e30.***"] {
            assert_eq!(
                UnverifiedJws::parse(text).unwrap_err().code(),
                "jws-malformed",
                "{text}"
            );
        }
        let long = "a".repeat(MAX_JWS_LEN + 1);
        assert_eq!(
            UnverifiedJws::parse(&long).unwrap_err().code(),
            "jws-too-long"
        );
    }

    #[test]
    fn es256_signatures_must_be_raw_64_bytes() {
        let key = SigningKey::generate_p256();
        let jws = sign_compact(Map::new(), b"x", &key);
        let (input, signature) = jws.rsplit_once('.').unwrap();
        let raw = base64url::decode(signature).unwrap();
        let sig = p256::ecdsa::Signature::from_slice(&raw).unwrap();
        let der = format!("{input}.{}", base64url::encode(sig.to_der().as_bytes()));
        assert_eq!(
            verify_compact(&der, &key.verifying_key())
                .unwrap_err()
                .code(),
            "jws-bad-signature"
        );
        let zero = format!("{input}.{}", base64url::encode(&[0u8; 64]));
        assert_eq!(
            verify_compact(&zero, &key.verifying_key())
                .unwrap_err()
                .code(),
            "jws-bad-signature"
        );
    }

    /// RFC 8037 appendix A.4: the Ed25519 JWS of "Example of Ed25519 signing".
    #[test]
    fn rfc8037_ed25519_example() {
        let seed = base64url::decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A").unwrap();
        let key = SigningKey::Ed25519(Keypair::from_seed(&seed.try_into().unwrap()));
        let expected = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
        let jws = sign_compact(Map::new(), b"Example of Ed25519 signing", &key);
        assert_eq!(jws, expected);
        assert!(verify_compact(expected, &key.verifying_key()).is_ok());
    }
}
