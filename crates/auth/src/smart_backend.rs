//! SMART Backend Services for registered clients (docs/smart.md,
//! "Backend Services"): a service with an ES384 (ECDSA P-384) key, as the
//! SMART profile requires servers to accept, authenticates with an RFC 7523
//! client assertion whose `iss` and `sub` are its `client_id`.
//!
//! Every token on this node acts as a participant's did:key, resolved at
//! each use like any other signer. A registered client therefore names the
//! did:key it acts as (`acts_as`), and that key signs the registration: a
//! *binding* proof, Ed25519 over [`binding_message`] (the client id and the
//! RFC 7638 thumbprint of the client's public JWK). The operator writes the
//! registration file, but cannot make a client act as someone whose key did
//! not sign it; a registration whose proof fails stops the node at start.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hygeia_identity::{Did, Keypair, Signature};
use p384::ecdsa::signature::Verifier as _;
use p384::ecdsa::{Signature as EcSignature, VerifyingKey};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::token::assertion::{
    check_audience, check_times, jti, Claims, ASSERTION_CLOCK_SKEW_SECS,
};
use crate::token::jws::{self, json_object};
use crate::token::{JtiCache, TokenError};

/// What the acting key signs to bind a client key to itself.
pub const BINDING_CONTEXT: &str = "hygeia.smart.backend-key.v1";

/// A backend client as the clients file registers it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendClientEntry {
    pub client_id: String,
    pub name: String,
    /// The client's public key: a JWK with `kty` `EC`, `crv` `P-384`.
    pub jwk: Value,
    /// The did:key its tokens act as.
    pub acts_as: String,
    /// base64url Ed25519 signature by `acts_as` over [`binding_message`].
    pub binding: String,
    /// The HL7 v3 PurposeOfUse its tokens state; `TREAT` when absent.
    #[serde(default = "treatment")]
    pub purpose_of_use: String,
}

fn treatment() -> String {
    "TREAT".into()
}

/// A registered backend client whose binding verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendClient {
    pub client_id: String,
    pub name: String,
    pub key: VerifyingKey,
    /// RFC 7638 SHA-256 thumbprint of the public JWK, base64url.
    pub jkt: String,
    /// The `kid` of the registered JWK, if it has one.
    pub kid: Option<String>,
    pub acts_as: Did,
    pub purpose_of_use: String,
}

/// The bytes the acting key signs: the context, the client id and the
/// thumbprint, one per line (neither can hold a newline).
pub fn binding_message(client_id: &str, jkt: &str) -> Vec<u8> {
    format!("{BINDING_CONTEXT}\n{client_id}\n{jkt}").into_bytes()
}

/// Reads a public P-384 JWK: its key, its RFC 7638 thumbprint and its
/// `kid`. Private material (`d`) is refused: it does not belong in a
/// registration.
pub fn read_jwk(jwk: &Value) -> Result<(VerifyingKey, String, Option<String>), String> {
    let object = jwk.as_object().ok_or("the jwk must be a JSON object")?;
    let text = |name: &str| -> Result<&str, String> {
        object
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("the jwk's {name} must be a string"))
    };
    if text("kty")? != "EC" || text("crv")? != "P-384" {
        return Err("the jwk must have kty \"EC\" and crv \"P-384\" (ES384)".into());
    }
    if object.contains_key("d") {
        return Err("the jwk holds a private key (d): register the public key only".into());
    }
    if let Some(alg) = object.get("alg") {
        if alg != "ES384" {
            return Err(format!(
                "the jwk's alg, when given, must be \"ES384\", not {alg}"
            ));
        }
    }
    let (x, y) = (text("x")?, text("y")?);
    let coordinate = |name: &str, value: &str| -> Result<Vec<u8>, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(value)
            .map_err(|e| format!("the jwk's {name} is not unpadded base64url ({e})"))?;
        if bytes.len() != 48 {
            return Err(format!(
                "the jwk's {name} is {} bytes; a P-384 coordinate is 48",
                bytes.len()
            ));
        }
        Ok(bytes)
    };
    let mut point = vec![0x04];
    point.extend(coordinate("x", x)?);
    point.extend(coordinate("y", y)?);
    let key = VerifyingKey::from_sec1_bytes(&point)
        .map_err(|_| "the jwk's x and y are not a point of P-384".to_string())?;
    // RFC 7638 §3.2: the required members in lexicographic order, no
    // whitespace.
    let canonical = format!(r#"{{"crv":"P-384","kty":"EC","x":"{x}","y":"{y}"}}"#);
    let jkt = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
    let kid = match object.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(other) => return Err(format!("the jwk's kid must be a string, not {other}")),
    };
    Ok((key, jkt, kid))
}

impl BackendClient {
    /// Checks a registration: the JWK, and the binding signed by
    /// `acts_as` (the client id and name are checked with the app
    /// clients', [`crate::smart::Clients::from_json`]).
    pub fn from_entry(entry: BackendClientEntry) -> Result<BackendClient, String> {
        let id = &entry.client_id;
        let (key, jkt, kid) = read_jwk(&entry.jwk).map_err(|e| format!("{id}: {e}"))?;
        let acts_as: Did = entry
            .acts_as
            .parse()
            .map_err(|e| format!("{id}: acts_as must be an Ed25519 did:key ({e})"))?;
        let signature = URL_SAFE_NO_PAD
            .decode(&entry.binding)
            .ok()
            .and_then(|bytes| Signature::from_slice(&bytes).ok())
            .ok_or_else(|| format!("{id}: binding must be a base64url Ed25519 signature"))?;
        acts_as
            .public_key()
            .verify(&binding_message(id, &jkt), &signature)
            .map_err(|_| {
                format!(
                    "{id}: the binding does not verify with acts_as {}: have that key sign the \
                     registration (hygeia smart bind-client)",
                    acts_as.as_str()
                )
            })?;
        Ok(BackendClient {
            client_id: entry.client_id,
            name: entry.name,
            key,
            jkt,
            kid,
            acts_as,
            purpose_of_use: entry.purpose_of_use,
        })
    }
}

/// The registration of `client_id` for the public `jwk`, acting as `key`:
/// the entry to put in the clients file's `backend_clients`.
pub fn bind(key: &Keypair, client_id: &str, name: &str, jwk: &Value) -> Result<Value, String> {
    let (_, jkt, _) = read_jwk(jwk)?;
    let signature = key.sign(&binding_message(client_id, &jkt));
    Ok(json!({
        "client_id": client_id,
        "name": name,
        "jwk": jwk,
        "acts_as": key.did().as_str(),
        "binding": URL_SAFE_NO_PAD.encode(signature.to_bytes()),
    }))
}

/// Verifies an ES384 client assertion from a registered client and gives
/// it. The same checks, in the same order, as for did:key clients
/// ([`crate::token::verify_client_assertion`]), with `iss` and `sub` the
/// registered `client_id`, a `kid` (if sent) naming its key by its
/// registered `kid` or thumbprint, and the signature checked with its
/// registered P-384 key. Only a fully valid assertion spends its `jti`.
pub fn verify_backend_assertion<'c>(
    jwt: &str,
    lookup: impl Fn(&str) -> Option<&'c BackendClient>,
    audiences: &[&str],
    now: i64,
    seen: &JtiCache,
) -> Result<&'c BackendClient, TokenError> {
    let jws = jws::parse_es384(jwt)?;
    let claims: Claims = json_object(&jws.payload, "the payload")?;
    let iss = match &claims.iss {
        Some(Value::String(iss)) => iss.as_str(),
        None => return Err(TokenError::claims("iss is required: your client_id")),
        Some(other) => {
            return Err(TokenError::claims(format!(
                "iss must be a string, not {other}"
            )))
        }
    };
    let client = lookup(iss).ok_or_else(|| {
        TokenError::issuer(format!(
            "iss {iss:?} is not a registered backend client of this node"
        ))
    })?;
    match &claims.sub {
        Some(Value::String(sub)) if sub == iss => {}
        None => {
            return Err(TokenError::claims(
                "sub is required: the same client_id as iss",
            ))
        }
        Some(other) => {
            return Err(TokenError::issuer(format!(
                "sub must equal iss ({iss}), not {other}"
            )))
        }
    }
    match &jws.header.kid {
        None => {}
        Some(Value::String(kid))
            if *kid == client.jkt || client.kid.as_deref() == Some(kid.as_str()) => {}
        Some(other) => {
            return Err(TokenError::header(format!(
                "kid, when present, must be the registered key's kid or thumbprint {}, not {other}",
                client.jkt
            )))
        }
    }
    check_audience(claims.aud.as_ref(), audiences)?;
    let exp = check_times(&claims, now)?;
    let jti = jti(&claims)?;
    let signature =
        EcSignature::from_slice(&jws.signature).map_err(|_| TokenError::BadEs384Signature {
            client_id: iss.to_owned(),
        })?;
    client
        .key
        .verify(jws.signing_input.as_bytes(), &signature)
        .map_err(|_| TokenError::BadEs384Signature {
            client_id: iss.to_owned(),
        })?;
    // Registered ids live beside did:keys in one replay cache: a prefix a
    // did:key cannot have keeps them apart.
    seen.insert(
        &format!("client:{iss}"),
        jti,
        exp.saturating_add(ASSERTION_CLOCK_SKEW_SECS),
        now,
    )?;
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;
    use p384::ecdsa::signature::Signer as _;
    use p384::ecdsa::SigningKey;

    const AUD: &str = "https://node.example/auth/token";
    const NOW: i64 = 1_767_225_600;

    fn client_key(seed: u8) -> SigningKey {
        SigningKey::from_slice(&[seed; 48]).unwrap()
    }

    fn public_jwk(key: &SigningKey) -> Value {
        let point = key.verifying_key().to_sec1_bytes();
        assert_eq!((point.len(), point[0]), (97, 4));
        json!({
            "kty": "EC",
            "crv": "P-384",
            "x": URL_SAFE_NO_PAD.encode(&point[1..49]),
            "y": URL_SAFE_NO_PAD.encode(&point[49..]),
            "kid": "k1",
        })
    }

    fn registered(seed: u8, acting: &Keypair) -> BackendClient {
        let entry = bind(
            acting,
            "lab-sync",
            "Lab sync",
            &public_jwk(&client_key(seed)),
        )
        .unwrap();
        BackendClient::from_entry(serde_json::from_value(entry).unwrap()).unwrap()
    }

    fn assertion(key: &SigningKey, header: Value, claims: Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature: EcSignature = key.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }

    fn claims(jti: &str) -> Value {
        json!({"iss": "lab-sync", "sub": "lab-sync", "aud": AUD, "exp": NOW + 60, "jti": jti})
    }

    #[test]
    fn a_bound_client_authenticates_once_per_jti() {
        let acting = Keypair::from_seed(&[9; 32]);
        let client = registered(1, &acting);
        let lookup = |id: &str| (id == "lab-sync").then_some(&client);
        let seen = JtiCache::default();
        let jwt = assertion(
            &client_key(1),
            json!({"alg": "ES384", "kid": "k1"}),
            claims("a"),
        );
        let got = verify_backend_assertion(&jwt, lookup, &[AUD], NOW, &seen).unwrap();
        assert_eq!(got.acts_as, acting.did());
        assert_eq!(
            verify_backend_assertion(&jwt, lookup, &[AUD], NOW, &seen),
            Err(TokenError::Replay)
        );
    }

    #[test]
    fn bad_assertions_are_refused_with_invalid_client() {
        let acting = Keypair::from_seed(&[9; 32]);
        let client = registered(1, &acting);
        let lookup = |id: &str| (id == "lab-sync").then_some(&client);
        let seen = JtiCache::default();
        let es = json!({"alg": "ES384"});
        let cases = [
            // Signed by another P-384 key.
            assertion(&client_key(2), es.clone(), claims("b")),
            // Not registered.
            assertion(
                &client_key(1),
                es.clone(),
                json!({"iss": "other", "sub": "other", "aud": AUD, "exp": NOW + 60, "jti": "c"}),
            ),
            // Wrong audience, expired, kid of another key.
            assertion(
                &client_key(1),
                es.clone(),
                json!({"iss": "lab-sync", "sub": "lab-sync", "aud": "x", "exp": NOW + 60, "jti": "d"}),
            ),
            assertion(
                &client_key(1),
                es.clone(),
                json!({"iss": "lab-sync", "sub": "lab-sync", "aud": AUD, "exp": NOW - 600, "jti": "e"}),
            ),
            assertion(
                &client_key(1),
                json!({"alg": "ES384", "kid": "k2"}),
                claims("f"),
            ),
            // sub differs.
            assertion(
                &client_key(1),
                es.clone(),
                json!({"iss": "lab-sync", "sub": "x", "aud": AUD, "exp": NOW + 60, "jti": "g"}),
            ),
            // ES256 or none in the header.
            assertion(&client_key(1), json!({"alg": "ES256"}), claims("h")),
            assertion(&client_key(1), json!({"alg": "none"}), claims("i")),
        ];
        for jwt in cases {
            let e = verify_backend_assertion(&jwt, lookup, &[AUD], NOW, &seen).unwrap_err();
            assert_eq!((e.code(), e.http_status()), ("invalid_client", 401), "{e}");
        }
        // None of them spent a jti: a valid one with those jtis still works.
        let ok = assertion(&client_key(1), es, claims("b"));
        verify_backend_assertion(&ok, lookup, &[AUD], NOW, &seen).unwrap();
    }

    #[test]
    fn a_binding_by_another_key_or_for_another_client_is_refused() {
        let acting = Keypair::from_seed(&[9; 32]);
        let jwk = public_jwk(&client_key(1));
        let mut entry = bind(&acting, "lab-sync", "Lab sync", &jwk).unwrap();
        // The operator names another identity than the one that signed.
        let victim = Keypair::from_seed(&[10; 32]);
        entry["acts_as"] = victim.did().as_str().into();
        let e =
            BackendClient::from_entry(serde_json::from_value(entry.clone()).unwrap()).unwrap_err();
        assert!(e.contains("does not verify"), "{e}");
        // The same binding for another client id or another key.
        let mut renamed = bind(&acting, "lab-sync", "Lab sync", &jwk).unwrap();
        renamed["client_id"] = "other".into();
        assert!(BackendClient::from_entry(serde_json::from_value(renamed).unwrap()).is_err());
        let mut rekeyed = bind(&acting, "lab-sync", "Lab sync", &jwk).unwrap();
        rekeyed["jwk"] = public_jwk(&client_key(2));
        assert!(BackendClient::from_entry(serde_json::from_value(rekeyed).unwrap()).is_err());
    }

    #[test]
    fn jwks_that_are_not_public_p384_keys_are_refused() {
        let good = public_jwk(&client_key(1));
        let mut private = good.clone();
        private["d"] = "AAAA".into();
        let mut p256 = good.clone();
        p256["crv"] = "P-256".into();
        let mut short = good.clone();
        short["x"] = "AAAA".into();
        let mut off_curve = good.clone();
        off_curve["y"] = URL_SAFE_NO_PAD.encode([7u8; 48]).into();
        let mut rs = good.clone();
        rs["alg"] = "RS384".into();
        for bad in [
            private,
            p256,
            short,
            off_curve,
            rs,
            json!([]),
            json!({"kty": "EC"}),
        ] {
            assert!(read_jwk(&bad).is_err(), "{bad}");
        }
        assert!(read_jwk(&good).is_ok());
    }

    /// RFC 7638 §3.1's example is RSA; for EC the rule is the same: the
    /// thumbprint ignores optional members and member order.
    #[test]
    fn the_thumbprint_ignores_optional_members() {
        let good = public_jwk(&client_key(1));
        let mut bare = good.clone();
        bare.as_object_mut().unwrap().remove("kid");
        bare["use"] = "sig".into();
        assert_eq!(read_jwk(&good).unwrap().1, read_jwk(&bare).unwrap().1);
    }
}
