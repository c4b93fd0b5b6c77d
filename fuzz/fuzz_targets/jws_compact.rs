//! Compact JWS: no input panics; a parsed token's algorithm is EdDSA or
//! ES256 and matches its header; a key of the other algorithm is refused
//! as a mismatch; nothing verifies under the fixed keys unless signed by
//! them.
#![no_main]

use hygeia_credentials::jwk::signing_key_from_jwk;
use hygeia_credentials::jws::{verify_compact, Algorithm, JwsError, SigningKey, UnverifiedJws};
use hygeia_identity::Keypair;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let ed = SigningKey::Ed25519(Keypair::from_seed(&[3; 32])).verifying_key();
    let p256 = signing_key_from_jwk(&serde_json::json!({
        "kty": "EC", "crv": "P-256",
        "d": "5K5SCos8zf9zRemGGUl6yfok-_NiiryNZsvANWMhF-I",
        "x": "TCAER19Zvu3OHF4j4W4vfSVoHIP1ILilDls7vCeGemc",
        "y": "ZxjiWWbZMQGHVWKVQ4hbSIirsVfuecCE6t4jT9F2HZQ"
    }))
    .expect("fixed key")
    .verifying_key();
    let Ok(parsed) = UnverifiedJws::parse(text) else {
        assert!(verify_compact(text, &ed).is_err());
        return;
    };
    let alg = parsed.header().algorithm();
    assert_eq!(
        parsed.header().get("alg").and_then(|a| a.as_str()),
        Some(alg.as_str())
    );
    assert!(parsed.header().get("crit").is_none());
    let (right, wrong) = match alg {
        Algorithm::EdDSA => (&ed, &p256),
        Algorithm::ES256 => (&p256, &ed),
    };
    assert!(matches!(
        verify_compact(text, wrong),
        Err(JwsError::KeyMismatch(_))
    ));
    if let Ok(verified) = parsed.verify(right) {
        assert_eq!(verified.header().algorithm(), alg);
    }
});
