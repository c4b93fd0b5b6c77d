//! EC P-256 JSON Web Keys (RFC 7517/7518) for health card issuers: public
//! keys and key sets as published at `<iss>/.well-known/jwks.json`, their
//! RFC 7638 thumbprints (the `kid`), and the issuer's signing key.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256_shc::ecdsa::{SigningKey, VerifyingKey};
use p256_shc::EncodedPoint;
use rand::rngs::OsRng;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::error::ShcError;

/// Length of a P-256 coordinate or secret scalar.
const COORDINATE_LEN: usize = 32;

/// A P-256 public signing key as a JWK, identified by its thumbprint.
#[derive(Clone, PartialEq, Eq)]
pub struct EcPublicJwk {
    key: VerifyingKey,
    kid: String,
    x: String,
    y: String,
}

impl EcPublicJwk {
    fn from_verifying_key(key: VerifyingKey) -> Self {
        let point = key.to_encoded_point(false);
        // An uncompressed point always has both coordinates.
        let x = point.x().map(|x| URL_SAFE_NO_PAD.encode(x));
        let y = point.y().map(|y| URL_SAFE_NO_PAD.encode(y));
        let (x, y) = (x.unwrap_or_default(), y.unwrap_or_default());
        let kid = thumbprint(&x, &y);
        EcPublicJwk { key, kid, x, y }
    }

    /// Reads one public JWK. It must be `kty: EC`, `crv: P-256` with `x`
    /// and `y` on the curve; `use` and `alg`, if present, must be `sig`
    /// and `ES256`; `kid`, if present, must be the RFC 7638 thumbprint.
    /// A key carrying the private member `d` is refused.
    pub fn from_json(value: &Value) -> Result<Self, ShcError> {
        let jwk = value
            .as_object()
            .ok_or_else(|| ShcError::MalformedJwk("a JWK is a JSON object".into()))?;
        if jwk.contains_key("d") {
            let kid = jwk.get("kid").and_then(Value::as_str).unwrap_or("");
            return Err(ShcError::PrivateKeyPublished(kid.to_owned()));
        }
        expect_member(jwk, "kty", "EC")?;
        expect_member(jwk, "crv", "P-256")?;
        if jwk.contains_key("use") {
            expect_member(jwk, "use", "sig")?;
        }
        if jwk.contains_key("alg") {
            expect_member(jwk, "alg", "ES256")?;
        }
        let x = coordinate(jwk, "x")?;
        let y = coordinate(jwk, "y")?;
        let point = EncodedPoint::from_affine_coordinates(&x.into(), &y.into(), false);
        let key = VerifyingKey::from_encoded_point(&point)
            .map_err(|_| ShcError::MalformedJwk("x and y are not a point on P-256".into()))?;
        let parsed = Self::from_verifying_key(key);
        if let Some(kid) = jwk.get("kid") {
            if kid.as_str() != Some(parsed.kid.as_str()) {
                return Err(ShcError::MalformedJwk(format!(
                    "kid {kid} is not the key's RFC 7638 thumbprint {:?}",
                    parsed.kid
                )));
            }
        }
        Ok(parsed)
    }

    /// The `kid`: base64url SHA-256 JWK thumbprint (RFC 7638).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWK as an issuer publishes it (`kty`, `kid`, `use`, `alg`,
    /// `crv`, `x`, `y`).
    pub fn to_json(&self) -> Value {
        json!({
            "kty": "EC",
            "kid": self.kid,
            "use": "sig",
            "alg": "ES256",
            "crv": "P-256",
            "x": self.x,
            "y": self.y,
        })
    }

    pub(crate) fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }
}

impl std::fmt::Debug for EcPublicJwk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EcPublicJwk")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// An issuer's signing keys (a JWK Set), looked up by `kid`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Jwks {
    keys: Vec<EcPublicJwk>,
}

impl Jwks {
    pub fn new(keys: Vec<EcPublicJwk>) -> Self {
        let mut set = Jwks::default();
        for key in keys {
            if set.get(key.kid()).is_none() {
                set.keys.push(key);
            }
        }
        set
    }

    /// Reads `{"keys": [...]}` as published at `.well-known/jwks.json`.
    ///
    /// Signing keys are the entries with `kty: EC`, `use: sig` and
    /// `alg: ES256` (the spec's filter); others (e.g. encryption keys) are
    /// skipped. A signing key that is malformed, or whose `kid` is not its
    /// thumbprint, fails the whole set, and so does any entry carrying a
    /// private `d`: a set that publishes a secret key is not trustworthy.
    /// Entries that repeat a key (one per X.509 chain) collapse into one.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ShcError> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| ShcError::MalformedJwk(format!("the JWK Set is not JSON: {e}")))?;
        Self::from_value(&value)
    }

    /// As [`Jwks::from_json`], from parsed JSON.
    pub fn from_value(value: &Value) -> Result<Self, ShcError> {
        let entries = value
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| ShcError::MalformedJwk("a JWK Set has a \"keys\" array".into()))?;
        let mut keys: Vec<EcPublicJwk> = Vec::new();
        for entry in entries {
            if entry.get("d").is_some() {
                let kid = entry.get("kid").and_then(Value::as_str).unwrap_or("");
                return Err(ShcError::PrivateKeyPublished(kid.to_owned()));
            }
            let is_signing_key = entry.get("kty").and_then(Value::as_str) == Some("EC")
                && entry.get("use").and_then(Value::as_str) == Some("sig")
                && entry.get("alg").and_then(Value::as_str) == Some("ES256");
            if !is_signing_key {
                continue;
            }
            let key = EcPublicJwk::from_json(entry)?;
            if entry.get("kid").is_none() {
                return Err(ShcError::MalformedJwk(
                    "a signing key in a JWK Set has a kid".into(),
                ));
            }
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        Ok(Jwks { keys })
    }

    pub fn get(&self, kid: &str) -> Option<&EcPublicJwk> {
        self.keys.iter().find(|key| key.kid == kid)
    }

    pub fn keys(&self) -> &[EcPublicJwk] {
        &self.keys
    }

    /// `{"keys": [...]}`, ready to serve at `.well-known/jwks.json`.
    pub fn to_json(&self) -> Value {
        json!({ "keys": self.keys.iter().map(EcPublicJwk::to_json).collect::<Vec<_>>() })
    }
}

/// An issuer's P-256 signing key. The secret is zeroized on drop and never
/// printed by `Debug`.
#[derive(Clone)]
pub struct IssuerKey {
    signing: SigningKey,
    public: EcPublicJwk,
}

impl IssuerKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Self {
        Self::from_signing_key(SigningKey::random(&mut OsRng))
    }

    /// A key from its 32-byte secret scalar (big-endian, as in JWK `d`).
    pub fn from_secret_bytes(bytes: &[u8]) -> Result<Self, ShcError> {
        if bytes.len() != COORDINATE_LEN {
            return Err(ShcError::MalformedJwk(format!(
                "a P-256 secret key is {COORDINATE_LEN} bytes"
            )));
        }
        SigningKey::from_slice(bytes)
            .map(Self::from_signing_key)
            .map_err(|_| ShcError::MalformedJwk("not a valid P-256 secret key".into()))
    }

    /// A key from a private JWK (with `d`), such as a test issuer's. The
    /// public part must match `d`.
    pub fn from_private_jwk(value: &Value) -> Result<Self, ShcError> {
        let jwk = value
            .as_object()
            .ok_or_else(|| ShcError::MalformedJwk("a JWK is a JSON object".into()))?;
        let d = Zeroizing::new(
            jwk.get("d")
                .and_then(Value::as_str)
                .and_then(|d| URL_SAFE_NO_PAD.decode(d).ok())
                .ok_or_else(|| {
                    ShcError::MalformedJwk("a private JWK has a base64url \"d\"".into())
                })?,
        );
        let key = Self::from_secret_bytes(&d)?;
        let mut public = jwk.clone();
        public.remove("d");
        let stated = EcPublicJwk::from_json(&Value::Object(public))?;
        if stated != key.public {
            return Err(ShcError::MalformedJwk(
                "the private key does not match its x and y".into(),
            ));
        }
        Ok(key)
    }

    /// The secret scalar, for storing the key.
    pub fn secret_bytes(&self) -> Zeroizing<[u8; COORDINATE_LEN]> {
        Zeroizing::new(self.signing.to_bytes().into())
    }

    pub fn kid(&self) -> &str {
        self.public.kid()
    }

    pub fn public_jwk(&self) -> &EcPublicJwk {
        &self.public
    }

    /// The key set to publish at `<iss>/.well-known/jwks.json`.
    pub fn jwks(&self) -> Jwks {
        Jwks::new(vec![self.public.clone()])
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    fn from_signing_key(signing: SigningKey) -> Self {
        let public = EcPublicJwk::from_verifying_key(*signing.verifying_key());
        IssuerKey { signing, public }
    }
}

impl std::fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerKey")
            .field("kid", &self.public.kid)
            .finish_non_exhaustive()
    }
}

/// RFC 7638: SHA-256 over the required members in lexicographic order,
/// without whitespace. Base64url coordinates need no JSON escaping.
fn thumbprint(x: &str, y: &str) -> String {
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

fn expect_member(jwk: &Map<String, Value>, name: &str, expected: &str) -> Result<(), ShcError> {
    match jwk.get(name).and_then(Value::as_str) {
        Some(value) if value == expected => Ok(()),
        _ => Err(ShcError::MalformedJwk(format!(
            "{name} must be {expected:?} for a health card signing key"
        ))),
    }
}

fn coordinate(jwk: &Map<String, Value>, name: &str) -> Result<[u8; COORDINATE_LEN], ShcError> {
    jwk.get(name)
        .and_then(Value::as_str)
        .and_then(|text| URL_SAFE_NO_PAD.decode(text).ok())
        .and_then(|bytes| <[u8; COORDINATE_LEN]>::try_from(bytes).ok())
        .ok_or_else(|| {
            ShcError::MalformedJwk(format!(
                "{name} must be {COORDINATE_LEN} bytes of unpadded base64url"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer() -> IssuerKey {
        IssuerKey::from_secret_bytes(&[9; 32]).unwrap()
    }

    #[test]
    fn rfc7638_thumbprint_of_the_published_jwk() {
        let key = issuer();
        let jwk = key.public_jwk().to_json();
        let canonical = serde_json_canonicalizer::to_string(&json!({
            "crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"], "y": jwk["y"],
        }))
        .unwrap();
        let expected = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
        assert_eq!(key.kid(), expected);
        assert_eq!(jwk["kid"], expected);
    }

    #[test]
    fn public_jwk_round_trips() {
        let key = issuer();
        let jwk = EcPublicJwk::from_json(&key.public_jwk().to_json()).unwrap();
        assert_eq!(&jwk, key.public_jwk());
        let set = Jwks::from_value(&key.jwks().to_json()).unwrap();
        assert_eq!(set.get(key.kid()), Some(key.public_jwk()));
    }

    #[test]
    fn secret_bytes_round_trip() {
        let key = IssuerKey::generate();
        let again = IssuerKey::from_secret_bytes(key.secret_bytes().as_slice()).unwrap();
        assert_eq!(again.kid(), key.kid());
    }

    #[test]
    fn a_private_member_is_refused() {
        let key = issuer();
        let mut jwk = key.public_jwk().to_json();
        jwk["d"] = json!(URL_SAFE_NO_PAD.encode(key.secret_bytes().as_slice()));
        let err = EcPublicJwk::from_json(&jwk).unwrap_err();
        assert_eq!(err.code(), "shc-private-key-published");
        let err = Jwks::from_value(&json!({ "keys": [jwk.clone()] })).unwrap_err();
        assert_eq!(err.code(), "shc-private-key-published");
        // ... even on an entry that is not a signing key.
        jwk["use"] = json!("enc");
        let err = Jwks::from_value(&json!({ "keys": [jwk] })).unwrap_err();
        assert_eq!(err.code(), "shc-private-key-published");
    }

    #[test]
    fn a_private_jwk_loads_and_must_match() {
        let key = issuer();
        let mut jwk = key.public_jwk().to_json();
        jwk["d"] = json!(URL_SAFE_NO_PAD.encode(key.secret_bytes().as_slice()));
        assert_eq!(IssuerKey::from_private_jwk(&jwk).unwrap().kid(), key.kid());
        jwk["d"] = json!(URL_SAFE_NO_PAD.encode([8u8; 32]));
        let err = IssuerKey::from_private_jwk(&jwk).unwrap_err();
        assert_eq!(err.code(), "shc-malformed-jwk");
    }

    #[test]
    fn bad_public_jwks_are_refused() {
        let good = issuer().public_jwk().to_json();
        let mut cases = Vec::new();
        for (name, value) in [
            ("kty", json!("OKP")),
            ("crv", json!("P-384")),
            ("use", json!("enc")),
            ("alg", json!("ES384")),
            ("kid", json!("not-the-thumbprint")),
            ("x", json!("AAAA")),
            ("y", json!(URL_SAFE_NO_PAD.encode([1u8; 32]))),
        ] {
            let mut jwk = good.clone();
            jwk[name] = value;
            cases.push(jwk);
        }
        cases.push(json!("not an object"));
        for jwk in cases {
            assert_eq!(
                EcPublicJwk::from_json(&jwk).unwrap_err().code(),
                "shc-malformed-jwk",
                "{jwk}"
            );
        }
    }

    #[test]
    fn jwks_skips_non_signing_keys_and_refuses_broken_signing_keys() {
        let good = issuer().public_jwk().to_json();
        let mut enc = good.clone();
        enc["use"] = json!("enc");
        enc["alg"] = json!("ECDH-ES");
        let set = Jwks::from_value(&json!({ "keys": [enc, good.clone(), good.clone()] })).unwrap();
        assert_eq!(set.keys().len(), 1);

        let mut wrong_kid = good.clone();
        wrong_kid["kid"] = json!("x");
        let err = Jwks::from_value(&json!({ "keys": [wrong_kid] })).unwrap_err();
        assert_eq!(err.code(), "shc-malformed-jwk");

        let mut no_kid = good;
        no_kid.as_object_mut().unwrap().remove("kid");
        let err = Jwks::from_value(&json!({ "keys": [no_kid] })).unwrap_err();
        assert_eq!(err.code(), "shc-malformed-jwk");

        for bad in [&b"[]"[..], b"{}", b"{\"keys\": 1}", b"nope"] {
            assert_eq!(
                Jwks::from_json(bad).unwrap_err().code(),
                "shc-malformed-jwk"
            );
        }
    }

    #[test]
    fn debug_does_not_print_the_secret() {
        let key = issuer();
        let shown = format!("{key:?}");
        assert!(shown.contains(key.kid()));
        let d = URL_SAFE_NO_PAD.encode(key.secret_bytes().as_slice());
        assert!(!shown.contains(&d));
    }
}
