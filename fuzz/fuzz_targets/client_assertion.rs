//! A token request as a client sends it: arbitrary form bodies, and
//! arbitrary text as a client assertion. Nothing forged is ever accepted:
//! without the participant's key no assertion verifies.
#![no_main]

use hygeia_auth::token::{verify_client_assertion, JtiCache, TokenRequest};
use libfuzzer_sys::fuzz_target;

const AUDIENCE: &str = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK";

fuzz_target!(|data: &[u8]| {
    let seen = JtiCache::new(64);
    if let Ok(request) = TokenRequest::from_form(data) {
        assert!(request
            .authenticate(&[AUDIENCE], 1_800_000_000, &seen)
            .is_err());
    }
    if let Ok(text) = std::str::from_utf8(data) {
        assert!(verify_client_assertion(text, &[AUDIENCE], 1_800_000_000, &seen).is_err());
    }
});
