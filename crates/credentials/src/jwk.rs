//! JSON Web Keys (RFC 7517) for the keys JWS here uses: `OKP`/`Ed25519`
//! (RFC 8037) and `EC`/`P-256` (RFC 7518 §6.2), and their RFC 7638
//! thumbprints.
//!
//! Importing a public key refuses any private member: a JWK carrying `d`
//! where a public key is expected means someone leaked a secret, and
//! accepting it silently would hide that.

use hygeia_identity::{Keypair, PublicKey};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::base64url;
use crate::jws::{SigningKey, VerifyingKey};

/// Members that only a private JWK has (RFC 7518 §6.2.2, §6.3.2, §6.4).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Why a JWK was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwkError {
    #[error("the key is not a JSON object")]
    NotAnObject,
    #[error("the key type or curve is not supported (only OKP/Ed25519 and EC/P-256 are)")]
    Unsupported,
    #[error("the key carries private key material where a public key was expected")]
    PrivateMaterial,
    #[error("the key lacks the member {0:?} or it is not base64url of the right length")]
    BadMember(&'static str),
    #[error("the key is not a valid point on its curve")]
    BadPoint,
    #[error("the private key does not match its public members")]
    Inconsistent,
}

impl JwkError {
    pub fn code(&self) -> &'static str {
        match self {
            JwkError::NotAnObject => "jwk-not-an-object",
            JwkError::Unsupported => "jwk-unsupported",
            JwkError::PrivateMaterial => "jwk-private-material",
            JwkError::BadMember(_) => "jwk-bad-member",
            JwkError::BadPoint => "jwk-bad-point",
            JwkError::Inconsistent => "jwk-inconsistent",
        }
    }
}

/// The public JWK of a key: only `kty`, `crv`, `x` (and `y`).
pub fn to_jwk(key: &VerifyingKey) -> Value {
    match key {
        VerifyingKey::Ed25519(key) => json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": base64url::encode(&key.to_bytes()),
        }),
        VerifyingKey::P256(key) => {
            let point = key.to_sec1_point(false);
            let bytes = point.as_bytes();
            // Uncompressed SEC1: 0x04 ‖ x (32) ‖ y (32).
            json!({
                "kty": "EC",
                "crv": "P-256",
                "x": base64url::encode(&bytes[1..33]),
                "y": base64url::encode(&bytes[33..65]),
            })
        }
    }
}

/// Reads a public JWK. Members other than the key's own (`kid`, `use`,
/// `alg`, …) are ignored; private members are refused.
pub fn from_jwk(jwk: &Value) -> Result<VerifyingKey, JwkError> {
    let members = jwk.as_object().ok_or(JwkError::NotAnObject)?;
    if PRIVATE_MEMBERS
        .iter()
        .any(|name| members.contains_key(*name))
    {
        return Err(JwkError::PrivateMaterial);
    }
    public_key(members)
}

fn public_key(members: &Map<String, Value>) -> Result<VerifyingKey, JwkError> {
    let kty = members.get("kty").and_then(Value::as_str);
    let crv = members.get("crv").and_then(Value::as_str);
    match (kty, crv) {
        (Some("OKP"), Some("Ed25519")) => {
            let x: [u8; 32] = coordinate(members, "x")?;
            PublicKey::from_bytes(&x)
                .map(VerifyingKey::Ed25519)
                .map_err(|_| JwkError::BadPoint)
        }
        (Some("EC"), Some("P-256")) => {
            let x: [u8; 32] = coordinate(members, "x")?;
            let y: [u8; 32] = coordinate(members, "y")?;
            let mut sec1 = [0u8; 65];
            sec1[0] = 0x04;
            sec1[1..33].copy_from_slice(&x);
            sec1[33..].copy_from_slice(&y);
            p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
                .map(VerifyingKey::P256)
                .map_err(|_| JwkError::BadPoint)
        }
        _ => Err(JwkError::Unsupported),
    }
}

fn coordinate<const N: usize>(
    members: &Map<String, Value>,
    name: &'static str,
) -> Result<[u8; N], JwkError> {
    members
        .get(name)
        .and_then(Value::as_str)
        .and_then(base64url::decode)
        .and_then(|bytes| <[u8; N]>::try_from(bytes).ok())
        .ok_or(JwkError::BadMember(name))
}

/// Reads a private JWK (with `d`), checking that its public members
/// belong to it. For key files and test fixtures; keys in credentials are
/// always public.
pub fn signing_key_from_jwk(jwk: &Value) -> Result<SigningKey, JwkError> {
    let members = jwk.as_object().ok_or(JwkError::NotAnObject)?;
    let public = public_key(members)?;
    let d: [u8; 32] = coordinate(members, "d")?;
    let key = match public {
        VerifyingKey::Ed25519(_) => SigningKey::Ed25519(Keypair::from_seed(&d)),
        VerifyingKey::P256(_) => {
            let key =
                p256::ecdsa::SigningKey::from_slice(&d).map_err(|_| JwkError::BadMember("d"))?;
            SigningKey::P256(key)
        }
    };
    if key.verifying_key() != public {
        return Err(JwkError::Inconsistent);
    }
    Ok(key)
}

/// The RFC 7638 thumbprint: base64url SHA-256 of the required members in
/// lexicographic order, without whitespace.
pub fn thumbprint(key: &VerifyingKey) -> String {
    let jwk = to_jwk(key);
    let field = |name: &str| {
        jwk.get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let canonical = match key {
        VerifyingKey::Ed25519(_) => format!(
            r#"{{"crv":"{}","kty":"{}","x":"{}"}}"#,
            field("crv"),
            field("kty"),
            field("x")
        ),
        VerifyingKey::P256(_) => format!(
            r#"{{"crv":"{}","kty":"{}","x":"{}","y":"{}"}}"#,
            field("crv"),
            field("kty"),
            field("x"),
            field("y")
        ),
    };
    base64url::encode(&Sha256::digest(canonical.as_bytes()))
}

impl VerifyingKey {
    /// See [`to_jwk`].
    pub fn to_jwk(&self) -> Value {
        to_jwk(self)
    }

    /// See [`from_jwk`].
    pub fn from_jwk(jwk: &Value) -> Result<Self, JwkError> {
        from_jwk(jwk)
    }

    /// See [`thumbprint`].
    pub fn jwk_thumbprint(&self) -> String {
        thumbprint(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8037 appendix A.1–A.3.
    const RFC8037_PRIVATE: &str = r#"{"kty":"OKP","crv":"Ed25519",
        "d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
        "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;

    #[test]
    fn rfc8037_key_and_thumbprint() {
        let private: Value = serde_json::from_str(RFC8037_PRIVATE).unwrap();
        let key = signing_key_from_jwk(&private).unwrap();
        let public = key.verifying_key();
        assert_eq!(
            public.to_jwk()["x"],
            "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
        );
        assert_eq!(
            public.jwk_thumbprint(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
        assert_eq!(
            from_jwk(&private).unwrap_err().code(),
            "jwk-private-material"
        );
    }

    #[test]
    fn p256_round_trip_and_private_key_check() {
        // The holder key of the SD-JWT test vectors (settings.yml).
        let private = json!({"kty": "EC", "crv": "P-256",
            "d": "5K5SCos8zf9zRemGGUl6yfok-_NiiryNZsvANWMhF-I",
            "x": "TCAER19Zvu3OHF4j4W4vfSVoHIP1ILilDls7vCeGemc",
            "y": "ZxjiWWbZMQGHVWKVQ4hbSIirsVfuecCE6t4jT9F2HZQ"});
        let key = signing_key_from_jwk(&private).unwrap();
        let public = key.verifying_key().to_jwk();
        assert_eq!(public["x"], private["x"]);
        assert_eq!(public["y"], private["y"]);
        assert_eq!(from_jwk(&public).unwrap(), key.verifying_key());
        let mut wrong = private.clone();
        wrong["d"] = json!("Ur2bNKuBPOrAaxsRnbSH6hIhmNTxSGXshDSUD1a1y7g");
        assert_eq!(
            signing_key_from_jwk(&wrong).unwrap_err().code(),
            "jwk-inconsistent"
        );
    }

    #[test]
    fn bad_keys_are_refused() {
        let cases = [
            (json!("x"), "jwk-not-an-object"),
            (
                json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"}),
                "jwk-unsupported",
            ),
            (
                json!({"kty": "EC", "crv": "P-384", "x": "", "y": ""}),
                "jwk-unsupported",
            ),
            (
                json!({"kty": "OKP", "crv": "X25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}),
                "jwk-unsupported",
            ),
            (json!({"kty": "OKP", "crv": "Ed25519"}), "jwk-bad-member"),
            (
                json!({"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}),
                "jwk-bad-member",
            ),
            (
                json!({"kty": "EC", "crv": "P-256", "x": "TCAER19Zvu3OHF4j4W4vfSVoHIP1ILilDls7vCeGemc",
                    "y": "TCAER19Zvu3OHF4j4W4vfSVoHIP1ILilDls7vCeGemc"}),
                "jwk-bad-point",
            ),
            (
                json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "k": "x"}),
                "jwk-private-material",
            ),
        ];
        for (jwk, code) in cases {
            assert_eq!(from_jwk(&jwk).unwrap_err().code(), code, "{jwk}");
        }
    }

    #[test]
    fn extra_public_members_are_ignored() {
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "kid": "a", "use": "sig", "alg": "EdDSA",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
        assert!(from_jwk(&jwk).is_ok());
    }
}
