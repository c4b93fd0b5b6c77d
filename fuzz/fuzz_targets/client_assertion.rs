//! A token request as a client sends it: arbitrary form bodies, and
//! arbitrary text as a client assertion, for did:key clients and for a
//! registered ES384 backend client. Nothing forged is ever accepted:
//! without the participant's or the registered client's key no assertion
//! verifies.
#![no_main]

use std::sync::OnceLock;

use hygeia_auth::smart::Clients;
use hygeia_auth::smart_backend::verify_backend_assertion;
use hygeia_auth::token::{verify_client_assertion, JtiCache, TokenRequest};
use libfuzzer_sys::fuzz_target;

const AUDIENCE: &str = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK";

/// One backend client registered with a P-384 public key (the generator
/// point: nobody fuzzing knows a key the fuzzer could find) and a binding
/// signed by a fixed did:key.
fn clients() -> &'static Clients {
    static CLIENTS: OnceLock<Clients> = OnceLock::new();
    CLIENTS.get_or_init(|| {
        let acting = hygeia_identity::Keypair::from_seed(&[7; 32]);
        let jwk = serde_json::json!({
            "kty": "EC", "crv": "P-384",
            "x": "qofKIr6LBTeOscce8yCtdG4dO2KLp5uYWfdB4IJUKjhVAvJdv1UpbDpUXjhydgq3",
            "y": "NhfeSpYmLG9dnpi_kpLcKfj0Hb0omhR86doxE7XwuMAKYLHOHX6BnXpDHXyQ6g5f",
        });
        let entry = hygeia_auth::smart_backend::bind(&acting, "svc", "Service", &jwk)
            .expect("the generator point is a P-384 key");
        Clients::from_json(serde_json::json!({ "backend_clients": [entry] }).to_string().as_bytes())
            .expect("a bound registration is accepted")
    })
}

fuzz_target!(|data: &[u8]| {
    let seen = JtiCache::new(64);
    if let Ok(request) = TokenRequest::from_form(data) {
        assert!(request
            .authenticate(clients(), &[AUDIENCE], 1_800_000_000, &seen)
            .is_err());
    }
    if let Ok(text) = std::str::from_utf8(data) {
        assert!(verify_client_assertion(text, &[AUDIENCE], 1_800_000_000, &seen).is_err());
        assert!(verify_backend_assertion(
            text,
            |id| clients().backend(id),
            &[AUDIENCE],
            1_800_000_000,
            &seen
        )
        .is_err());
    }
});
