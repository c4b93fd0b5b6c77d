//! Client assertions and access tokens: a good assertion verifies, every
//! refusal with its code, the token store, and an assertion made by an
//! independent implementation (Python `cryptography`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hygeia_auth::token::{
    client_assertion, verify_client_assertion, JtiCache, Session, TokenError, TokenRequest,
    TokenStore, ACCESS_TOKEN_LIFETIME_SECS, ASSERTION_TYPE, MAX_ASSERTION_LEN,
};
use hygeia_identity::{Did, Keypair};
use serde_json::{json, Value};

const AUD: &str = "https://node.example/auth/token";
/// 2026-01-01T00:00:00Z.
const NOW: i64 = 1_767_225_600;

fn key(n: u8) -> Keypair {
    Keypair::from_seed(&[n; 32])
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Good claims for `key`, to be altered by a test.
fn claims(key: &Keypair) -> Value {
    let did = key.did().to_string();
    json!({
        "iss": did,
        "sub": did,
        "aud": AUD,
        "iat": NOW,
        "exp": NOW + 120,
        "jti": "d2f1a7c4-6b7e-4c33-9a4e-0f1b2c3d4e5f",
    })
}

/// A compact JWS of `header` and `claims` signed by `key`, built by hand.
fn jws(header: &Value, claims: &Value, key: &Keypair) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = key.sign(input.as_bytes());
    format!("{input}.{}", b64(&signature.to_bytes()))
}

fn eddsa() -> Value {
    json!({"alg": "EdDSA", "typ": "JWT"})
}

fn verify(jwt: &str) -> Result<Did, TokenError> {
    verify_client_assertion(jwt, &[AUD], NOW, &JtiCache::default())
}

/// The refusal of `jwt`, checking that its code is `invalid_client`.
fn refused(jwt: &str) -> TokenError {
    let error = verify(jwt).expect_err("must be refused");
    assert_eq!(error.code(), "invalid_client", "{error}");
    assert_eq!(error.http_status(), 401);
    error
}

fn with(claims_of: &Keypair, change: impl FnOnce(&mut Value)) -> String {
    let mut claims = claims(claims_of);
    change(&mut claims);
    jws(&eddsa(), &claims, claims_of)
}

#[test]
fn a_good_assertion_verifies() {
    let k = key(1);
    assert_eq!(verify(&jws(&eddsa(), &claims(&k), &k)), Ok(k.did()));
    // Made by client_assertion, aud as an array, with a kid, no typ, no iat.
    assert_eq!(verify(&client_assertion(&k, AUD, NOW, 300)), Ok(k.did()));
    let jwt = with(&k, |c| c["aud"] = json!(["https://other.example", AUD]));
    assert_eq!(verify(&jwt), Ok(k.did()));
    let header = json!({"alg": "EdDSA", "kid": k.did().verification_method()});
    let mut c = claims(&k);
    c.as_object_mut().unwrap().remove("iat");
    assert_eq!(verify(&jws(&header, &c, &k)), Ok(k.did()));
}

#[test]
fn expired() {
    let jwt = with(&key(1), |c| c["exp"] = json!(NOW - 61));
    let e = refused(&jwt);
    assert!(matches!(e, TokenError::Expired { .. }), "{e:?}");
    assert!(e.to_string().contains("expired"), "{e}");
    // Within the clock skew it is still accepted.
    assert!(verify(&with(&key(1), |c| c["exp"] = json!(NOW - 60))).is_ok());
}

#[test]
fn exp_too_far_ahead() {
    let jwt = with(&key(1), |c| c["exp"] = json!(NOW + 3600));
    let e = refused(&jwt);
    assert!(matches!(e, TokenError::LifetimeTooLong { .. }), "{e:?}");
    assert!(e.to_string().contains("too far ahead"), "{e}");
}

#[test]
fn missing_exp() {
    let jwt = with(&key(1), |c| {
        c.as_object_mut().unwrap().remove("exp");
    });
    let e = refused(&jwt);
    assert!(
        matches!(e, TokenError::Claims(_)) && e.to_string().contains("exp"),
        "{e}"
    );
}

#[test]
fn iat_not_yet_valid() {
    let jwt = with(&key(1), |c| c["iat"] = json!(NOW + 120));
    let e = refused(&jwt);
    assert!(
        matches!(e, TokenError::NotYetValid { claim: "iat", .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("in the future"), "{e}");
}

#[test]
fn nbf_not_yet_valid() {
    let jwt = with(&key(1), |c| c["nbf"] = json!(NOW + 120));
    let e = refused(&jwt);
    assert!(
        matches!(e, TokenError::NotYetValid { claim: "nbf", .. }),
        "{e:?}"
    );
}

#[test]
fn wrong_audience() {
    for aud in [
        json!("https://other.example/auth/token"),
        json!(format!("{AUD}/")),
        json!([]),
    ] {
        let jwt = with(&key(1), |c| c["aud"] = aud);
        let e = refused(&jwt);
        assert!(matches!(e, TokenError::WrongAudience { .. }), "{e:?}");
        assert!(e.to_string().contains(AUD), "{e}");
    }
}

#[test]
fn alg_none() {
    // An unsecured JWT, with and without an (empty) signature segment.
    let k = key(1);
    let header = b64(br#"{"alg":"none"}"#);
    let payload = b64(claims(&k).to_string().as_bytes());
    let e = refused(&format!("{header}.{payload}."));
    assert!(matches!(e, TokenError::Header(_)), "{e:?}");
    assert!(e.to_string().contains("none"), "{e}");
    let signed = jws(&json!({"alg": "none"}), &claims(&k), &k);
    let e = refused(&signed);
    assert!(matches!(e, TokenError::Header(_)), "{e:?}");
    assert!(e.to_string().contains("none"), "{e}");
}

#[test]
fn alg_hs256() {
    // The classic confusion: an HMAC keyed with the public key.
    let k = key(1);
    let header = json!({"alg": "HS256", "typ": "JWT"});
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims(&k).to_string().as_bytes())
    );
    let mac = hmac_sha256(&k.public_key().to_bytes(), input.as_bytes());
    let e = refused(&format!("{input}.{}", b64(&mac)));
    assert!(matches!(e, TokenError::Header(_)), "{e:?}");
    assert!(e.to_string().contains("HS256"), "{e}");
    // Even with a 64-byte Ed25519 signature behind it.
    let e = refused(&jws(&header, &claims(&k), &k));
    assert!(matches!(e, TokenError::Header(_)), "{e:?}");
}

#[test]
fn alg_missing() {
    let k = key(1);
    let e = refused(&jws(&json!({"typ": "JWT"}), &claims(&k), &k));
    assert!(matches!(e, TokenError::Header(_)), "{e:?}");
    assert!(e.to_string().contains("alg is missing"), "{e}");
}

#[test]
fn crit_is_refused() {
    let k = key(1);
    let header = json!({"alg": "EdDSA", "crit": ["exp"], "exp": 1});
    let e = refused(&jws(&header, &claims(&k), &k));
    assert!(e.to_string().contains("crit"), "{e}");
}

#[test]
fn kid_of_another_key() {
    let k = key(1);
    let header = json!({"alg": "EdDSA", "kid": key(2).did().to_string()});
    let e = refused(&jws(&header, &claims(&k), &k));
    assert!(matches!(e, TokenError::Header(_)), "{e:?}");
}

#[test]
fn bad_signature() {
    let k = key(1);
    let jwt = jws(&eddsa(), &claims(&k), &k);
    let (input, signature) = jwt.rsplit_once('.').unwrap();
    let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
    bytes[10] ^= 0x01;
    let e = refused(&format!("{input}.{}", b64(&bytes)));
    assert!(matches!(e, TokenError::BadSignature { .. }), "{e:?}");
    assert!(e.to_string().contains("does not verify"), "{e}");
}

#[test]
fn tampered_payload() {
    let k = key(1);
    let jwt = jws(&eddsa(), &claims(&k), &k);
    let parts: Vec<&str> = jwt.split('.').collect();
    let mut c = claims(&k);
    c["jti"] = json!("another");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64(c.to_string().as_bytes()),
        parts[2]
    );
    assert!(matches!(refused(&forged), TokenError::BadSignature { .. }));
}

#[test]
fn signed_by_another_key_than_iss() {
    let (k, other) = (key(1), key(2));
    let jwt = jws(&eddsa(), &claims(&k), &other);
    let e = refused(&jwt);
    assert!(matches!(e, TokenError::BadSignature { .. }), "{e:?}");
    assert!(e.to_string().contains(k.did().as_str()), "{e}");
}

#[test]
fn iss_differs_from_sub() {
    let jwt = with(&key(1), |c| c["sub"] = json!(key(2).did().to_string()));
    let e = refused(&jwt);
    assert!(matches!(e, TokenError::Issuer(_)), "{e:?}");
    assert!(e.to_string().contains("sub must equal iss"), "{e}");
}

#[test]
fn iss_not_a_did_key() {
    for iss in [
        "did:web:clinic.example",
        "my-client",
        "did:key:z6MkNOTBASE58l0",
    ] {
        let jwt = with(&key(1), |c| {
            c["iss"] = json!(iss);
            c["sub"] = json!(iss);
        });
        let e = refused(&jwt);
        assert!(matches!(e, TokenError::Issuer(_)), "{iss}: {e:?}");
        assert!(e.to_string().contains("did:key"), "{e}");
    }
}

#[test]
fn missing_jti() {
    let jwt = with(&key(1), |c| {
        c.as_object_mut().unwrap().remove("jti");
    });
    let e = refused(&jwt);
    assert!(matches!(e, TokenError::Claims(_)), "{e:?}");
    assert!(e.to_string().contains("jti is required"), "{e}");
}

#[test]
fn jti_of_bad_size_or_type() {
    for jti in [json!(""), json!("x".repeat(129)), json!(7)] {
        let jwt = with(&key(1), |c| c["jti"] = jti);
        assert!(matches!(refused(&jwt), TokenError::Claims(_)));
    }
    let jwt = with(&key(1), |c| c["jti"] = json!("é".repeat(128)));
    assert!(verify(&jwt).is_ok(), "128 characters, more bytes");
}

#[test]
fn replayed_jti() {
    let k = key(1);
    let seen = JtiCache::default();
    let jwt = jws(&eddsa(), &claims(&k), &k);
    assert_eq!(
        verify_client_assertion(&jwt, &[AUD], NOW, &seen),
        Ok(k.did())
    );
    let e = verify_client_assertion(&jwt, &[AUD], NOW + 1, &seen).unwrap_err();
    assert_eq!(e, TokenError::Replay);
    assert_eq!(e.code(), "invalid_client");
    // Same jti in a new assertion (new exp): still a replay.
    let again = with(&k, |c| c["exp"] = json!(NOW + 200));
    assert_eq!(
        verify_client_assertion(&again, &[AUD], NOW + 2, &seen),
        Err(TokenError::Replay)
    );
    // Another issuer may use the same jti.
    let other = key(2);
    let theirs = jws(&eddsa(), &claims(&other), &other);
    assert!(verify_client_assertion(&theirs, &[AUD], NOW, &seen).is_ok());
}

#[test]
fn a_refused_assertion_does_not_spend_its_jti() {
    let k = key(1);
    let seen = JtiCache::default();
    let forged = jws(&eddsa(), &claims(&k), &key(2));
    assert!(verify_client_assertion(&forged, &[AUD], NOW, &seen).is_err());
    let good = jws(&eddsa(), &claims(&k), &k);
    assert!(verify_client_assertion(&good, &[AUD], NOW, &seen).is_ok());
}

#[test]
fn malformed_two_segments() {
    let k = key(1);
    let jwt = jws(&eddsa(), &claims(&k), &k);
    let (first_two, _) = jwt.rsplit_once('.').unwrap();
    let e = refused(first_two);
    assert!(matches!(e, TokenError::Malformed(_)), "{e:?}");
    assert!(e.to_string().contains("three"), "{e}");
}

#[test]
fn malformed_non_base64() {
    let k = key(1);
    let jwt = jws(&eddsa(), &claims(&k), &k);
    let parts: Vec<&str> = jwt.split('.').collect();
    for bad in [
        format!("{}!.{}.{}", parts[0], parts[1], parts[2]),
        format!("{}.{}.{}=", parts[0], parts[1], parts[2]),
        format!("{}.{}+/.{}", parts[0], parts[1], parts[2]),
    ] {
        let e = refused(&bad);
        assert!(matches!(e, TokenError::Malformed(_)), "{bad}: {e:?}");
        assert!(e.to_string().contains("base64url"), "{e}");
    }
}

#[test]
fn malformed_non_json_header() {
    let k = key(1);
    let input = format!(
        "{}.{}",
        b64(b"alg=EdDSA"),
        b64(claims(&k).to_string().as_bytes())
    );
    let jwt = format!("{input}.{}", b64(&k.sign(input.as_bytes()).to_bytes()));
    let e = refused(&jwt);
    assert!(matches!(e, TokenError::Malformed(_)), "{e:?}");
    assert!(e.to_string().contains("header is not a JSON object"), "{e}");
}

#[test]
fn malformed_non_json_payload() {
    let k = key(1);
    for payload in [&b"not json"[..], b"[1,2]", b"\xff\xfe"] {
        let input = format!("{}.{}", b64(eddsa().to_string().as_bytes()), b64(payload));
        let jwt = format!("{input}.{}", b64(&k.sign(input.as_bytes()).to_bytes()));
        let e = refused(&jwt);
        assert!(matches!(e, TokenError::Malformed(_)), "{e:?}");
        assert!(e.to_string().contains("payload"), "{e}");
    }
}

#[test]
fn a_claim_given_twice_is_malformed() {
    let k = key(1);
    let did = k.did();
    let payload = format!(
        r#"{{"iss":"{did}","sub":"{did}","aud":"https://evil.example","aud":"{AUD}","exp":{},"jti":"j"}}"#,
        NOW + 60
    );
    let input = format!(
        "{}.{}",
        b64(eddsa().to_string().as_bytes()),
        b64(payload.as_bytes())
    );
    let jwt = format!("{input}.{}", b64(&k.sign(input.as_bytes()).to_bytes()));
    assert!(matches!(refused(&jwt), TokenError::Malformed(_)));
}

#[test]
fn malformed_oversized() {
    let k = key(1);
    let jwt = with(&k, |c| c["padding"] = json!("x".repeat(MAX_ASSERTION_LEN)));
    let e = refused(&jwt);
    assert!(matches!(e, TokenError::Malformed(_)), "{e:?}");
    assert!(e.to_string().contains("at most 8192"), "{e}");
}

#[test]
fn the_form_request_end_to_end() {
    let k = key(1);
    let seen = JtiCache::default();
    let assertion = client_assertion(&k, AUD, NOW, 60);
    let body = format!(
        "grant_type=client_credentials&client_assertion_type={}&client_assertion={assertion}\
         &scope=system%2F*.rs&purpose_of_use=TREAT&client_id={}",
        ASSERTION_TYPE,
        k.did()
    );
    let request = TokenRequest::from_form(body.as_bytes()).unwrap();
    assert_eq!(
        request.authenticate_did_key(&[AUD], NOW, &seen),
        Ok(k.did())
    );
    // A client_id naming someone else is refused.
    let body = body.replace(&assertion, &client_assertion(&k, AUD, NOW, 60));
    let body = body.replace(k.did().as_str(), key(2).did().as_str());
    let request = TokenRequest::from_form(body.as_bytes()).unwrap();
    let e = request
        .authenticate_did_key(&[AUD], NOW, &seen)
        .unwrap_err();
    assert_eq!(e.code(), "invalid_client");
}

fn session(expires_at: i64) -> Session {
    Session {
        did: key(1).did().to_string(),
        purpose: "ETREAT".into(),
        break_glass: Some("unconscious patient in the ED".into()),
        expires_at,
        scope: "system/*.rs".parse().unwrap(),
    }
}

#[test]
fn issued_token_looks_up() {
    let store = TokenStore::new();
    let token = store.issue(session(NOW + ACCESS_TOKEN_LIFETIME_SECS));
    assert_eq!(token.len(), 43);
    assert_eq!(store.lookup(&token, NOW), Some(session(NOW + 900)));
    assert_eq!(store.len(), 1);
}

#[test]
fn expired_token_is_not_found() {
    let store = TokenStore::new();
    let token = store.issue(session(NOW + 900));
    assert!(store.lookup(&token, NOW + 899).is_some());
    assert_eq!(store.lookup(&token, NOW + 900), None);
    assert!(store.is_empty(), "pruned");
}

#[test]
fn revoked_token_is_not_found() {
    let store = TokenStore::new();
    let token = store.issue(session(NOW + 900));
    let other = store.issue(session(NOW + 900));
    store.revoke(&token);
    assert_eq!(store.lookup(&token, NOW), None);
    assert!(store.lookup(&other, NOW).is_some());
    assert_eq!(store.len(), 1);
}

#[test]
fn unknown_token_is_not_found() {
    let store = TokenStore::new();
    let token = store.issue(session(NOW + 900));
    assert_eq!(store.lookup("", NOW), None);
    assert_eq!(store.lookup(&format!("{token}x"), NOW), None);
    let mut flipped = token.into_bytes();
    flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
    assert_eq!(
        store.lookup(&String::from_utf8(flipped).unwrap(), NOW),
        None
    );
}

#[test]
fn the_store_is_shared_between_threads() {
    let store = std::sync::Arc::new(TokenStore::new());
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || {
                (0..50)
                    .map(|_| store.issue(session(NOW + 900)))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let tokens: Vec<String> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(store.len(), 200);
    assert!(tokens.iter().all(|t| store.lookup(t, NOW).is_some()));
}

/// HMAC-SHA256 (RFC 2104), for the algorithm-confusion test.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut block = [0u8; 64];
    block[..key.len()].copy_from_slice(key);
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// Python's `cryptography` (OpenSSL's Ed25519) and the standard library
/// build and check the assertion, sharing no code with this crate. Skipped
/// when `python3` or `cryptography` is missing (`scripts/test` installs it).
const PYTHON: &str = r##"
import base64, json, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

def b64u(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
def unb64u(s): return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
def b58(b):
    n, out = int.from_bytes(b, "big"), ""
    while n: n, r = divmod(n, 58); out = ALPHABET[r] + out
    return "1" * (len(b) - len(b.lstrip(b"\0"))) + out

mode, seed_hex, aud, now, other = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed_hex))
raw = key.public_key().public_bytes_raw()
did = "did:key:z" + b58(b"\xed\x01" + raw)
if mode == "make":
    header = {"alg": "EdDSA", "typ": "JWT", "kid": did + "#" + did[len("did:key:"):]}
    claims = {"iss": did, "sub": did, "aud": [aud], "exp": now + 240, "iat": now, "jti": "py-1"}
    signing_input = b64u(json.dumps(header).encode()) + "." + b64u(json.dumps(claims).encode())
    print(signing_input + "." + b64u(key.sign(signing_input.encode())))
else:
    h, p, s = other.split(".")
    pub = Ed25519PublicKey.from_public_bytes(raw)
    pub.verify(unb64u(s), (h + "." + p).encode())
    claims = json.loads(unb64u(p))
    assert json.loads(unb64u(h))["alg"] == "EdDSA"
    assert claims["iss"] == claims["sub"] == did, (claims, did)
    assert claims["aud"] == aud and now < claims["exp"] <= now + 300
    print("ok")
"##;

fn python(args: &[&str]) -> Option<String> {
    let available = std::process::Command::new("python3")
        .args(["-c", "import cryptography"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        eprintln!("skipped: python3 with cryptography is not available");
        return None;
    }
    let output = std::process::Command::new("python3")
        .args(["-c", PYTHON])
        .args(args)
        .output()
        .expect("run python3");
    assert!(
        output.status.success(),
        "python: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(String::from_utf8(output.stdout).unwrap().trim().to_string())
}

#[test]
fn an_assertion_made_by_python_verifies() {
    let seed = [0x42u8; 32];
    let now = NOW.to_string();
    let Some(jwt) = python(&["make", &hex(&seed), AUD, &now, ""]) else {
        return;
    };
    assert_eq!(verify(&jwt), Ok(Keypair::from_seed(&seed).did()));
    // And the (iss, jti) is spent for it too.
    let seen = JtiCache::default();
    assert!(verify_client_assertion(&jwt, &[AUD], NOW, &seen).is_ok());
    assert_eq!(
        verify_client_assertion(&jwt, &[AUD], NOW, &seen),
        Err(TokenError::Replay)
    );
}

#[test]
fn an_assertion_made_here_verifies_in_python() {
    let seed = [0x43u8; 32];
    let jwt = client_assertion(&Keypair::from_seed(&seed), AUD, NOW, 120);
    let now = NOW.to_string();
    if let Some(out) = python(&["check", &hex(&seed), AUD, &now, &jwt]) {
        assert_eq!(out, "ok");
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// docs/auth.md's example assertion: rebuilt from the RFC 8032 §7.1
/// TEST 1 key, verified, and quoted verbatim by the document.
#[test]
fn the_documented_example() {
    const DOC: &str = include_str!("../../../docs/auth.md");
    const HEADER: &str = r#"{"alg":"EdDSA","typ":"JWT"}"#;
    const PAYLOAD: &str = r#"{"iss":"did:key:z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw","sub":"did:key:z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw","aud":"https://node.example/auth/token","iat":1767225600,"exp":1767225720,"jti":"0f8c1e2a-5b7d-4e61-9c3a-8d2f4b6a1e90"}"#;
    let seed: [u8; 32] = (0..32)
        .map(|i| {
            u8::from_str_radix(
                &"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
                    [2 * i..2 * i + 2],
                16,
            )
            .unwrap()
        })
        .collect::<Vec<u8>>()
        .try_into()
        .unwrap();
    let k = Keypair::from_seed(&seed);
    let input = format!("{}.{}", b64(HEADER.as_bytes()), b64(PAYLOAD.as_bytes()));
    let jwt = format!("{input}.{}", b64(&k.sign(input.as_bytes()).to_bytes()));
    assert_eq!(verify(&jwt), Ok(k.did()));
    for quoted in [HEADER, PAYLOAD, jwt.as_str()] {
        assert!(DOC.contains(quoted), "docs/auth.md must quote:\n{quoted}");
    }
}
