//! SD-JWT VC presentations (compact or flattened JSON) as a verifier and a
//! holder receive them: no input panics, every refusal has a code and a
//! reason, the compact and flattened JSON forms of one input are judged
//! alike, and nothing is accepted that the fixed issuer did not sign.
#![no_main]

use hygeia_credentials::jws::{Header, SigningKey, VerifyingKey};
use hygeia_credentials::sd_jwt::{to_flattened_json, verify_presentation, SdJwt, VerifyOptions};
use hygeia_identity::Keypair;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let issuer = SigningKey::Ed25519(Keypair::from_seed(&[3; 32])).verifying_key();
    let resolver = |iss: &str, _: &Header| -> Option<VerifyingKey> {
        (iss == "did:web:issuer.fuzz.example").then(|| issuer.clone())
    };
    let options = VerifyOptions::new(1_700_000_000)
        .require_key_binding("did:web:verifier.fuzz.example", "fuzz-nonce");
    let verdict = verify_presentation(text, &resolver, &options);
    match &verdict {
        Ok(verified) => {
            assert!(verified.key_bound());
            assert!(verified.claims().get("_sd").is_none());
            assert_eq!(
                verified.claims().get("vct").and_then(|v| v.as_str()),
                Some(verified.vct())
            );
        }
        Err(e) => {
            assert!(!e.code().is_empty());
            assert!(!e.reason().is_empty());
        }
    }
    // (Well below the size cap, so the longer JSON form stays under it.)
    if !text.starts_with('{') && text.len() < 64 * 1024 {
        if let Ok(json) = to_flattened_json(text) {
            let again = verify_presentation(&json, &resolver, &options);
            assert_eq!(
                again.as_ref().err().map(|e| e.code()),
                verdict.as_ref().err().map(|e| e.code())
            );
        }
    }
    if let Ok(held) = SdJwt::parse(text, &resolver) {
        if !text.starts_with('{') {
            let disclosures = text.split('~').count().saturating_sub(2);
            assert_eq!(held.disclosable_paths().len(), disclosures);
        }
        assert_eq!(
            held.claims().get("vct").and_then(|v| v.as_str()),
            Some(held.vct())
        );
    }
});
