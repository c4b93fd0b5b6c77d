//! Scanned SMART Health Card QR texts and card JWS text: the input split
//! on `\n` (at most 8 texts) to `decode_qr`, and the JWS it yields, and
//! the whole input as a JWS, to `verify` with one trusted issuer
//! (`https://fuzz.example/issuer`, key `IssuerKey::from_secret_bytes(&[7; 32])`)
//! at 1800000000.
#![no_main]

use std::sync::LazyLock;

use hygeia_credentials::shc::{
    decode_qr, encode_qr, verify, IssuerKey, Jwks, CLOCK_SKEW_SECS, HEALTH_CARD_TYPE,
};
use libfuzzer_sys::fuzz_target;

const ISS: &str = "https://fuzz.example/issuer";
const NOW: i64 = 1_800_000_000;

static JWKS: LazyLock<Jwks> = LazyLock::new(|| {
    IssuerKey::from_secret_bytes(&[7; 32])
        .map(|key| key.jwks())
        .unwrap_or_default()
});

fn trusted(iss: &str) -> Option<Jwks> {
    (iss == ISS).then(|| JWKS.clone())
}

fn check(jws: &str) {
    match verify(jws, &trusted, NOW) {
        Ok(card) => {
            assert_eq!(card.iss(), ISS);
            assert!(card.nbf() <= (NOW + CLOCK_SKEW_SECS) as f64);
            assert!(card.has_type(HEALTH_CARD_TYPE));
            assert_eq!(card.fhir_bundle()["resourceType"], "Bundle");
        }
        Err(error) => assert!(error.code().starts_with("shc-")),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let texts: Vec<&str> = text.split('\n').take(8).collect();
    if let Ok(jws) = decode_qr(&texts) {
        // Whatever decodes is in the QR alphabet and survives re-encoding.
        let again = encode_qr(&jws).expect("a decoded JWS re-encodes");
        let again: Vec<&str> = again.iter().map(String::as_str).collect();
        assert_eq!(decode_qr(&again).as_deref(), Ok(jws.as_str()));
        check(&jws);
    }
    check(text);
});
