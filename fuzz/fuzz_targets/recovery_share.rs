//! Guardian share and share verifier files (`hygeia_identity::recovery`):
//! the input is a verifier text and a share text separated by a NUL byte,
//! or, without one, a share text checked against a fixed 2-of-3 verifier.
//! Parsing never panics; what parses prints back to text that parses to the
//! same value; one share, valid or not, never recovers anything.
#![no_main]

use hygeia_identity::{recover, GuardianShare, ShareVerifier};
use libfuzzer_sys::fuzz_target;

/// The verifier of the 2-of-3 split stored with the identity crate's tests.
const FIXED_VERIFIER: &str =
    include_str!("../../crates/identity/tests/data/recovery-2-of-3/verifier.json");

fn parse_verifier(text: &str) -> Option<ShareVerifier> {
    let verifier = ShareVerifier::from_json(text).ok()?;
    let again = ShareVerifier::from_json(&verifier.to_json()).expect("a printed verifier parses");
    assert_eq!(again, verifier);
    Some(verifier)
}

fn parse_share(text: &str) -> Option<GuardianShare> {
    let share = GuardianShare::from_json(text).ok()?;
    let again = GuardianShare::from_json(&share.to_json()).expect("a printed share parses");
    assert_eq!(again, share);
    Some(share)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (verifier, share) = match text.split_once('\0') {
        Some((verifier, share)) => (parse_verifier(verifier), parse_share(share)),
        None => {
            // The whole input is also tried as a verifier.
            parse_verifier(text);
            (parse_verifier(FIXED_VERIFIER), parse_share(text))
        }
    };
    let (Some(verifier), Some(share)) = (verifier, share) else {
        return;
    };
    // One share is never enough (every threshold is at least 2): recovery
    // refuses it exactly as verification does, or for being alone.
    let verified = share.verify(&verifier);
    let alone = recover(std::slice::from_ref(&share), &verifier).unwrap_err();
    match &verified {
        Ok(()) => assert_eq!(alone.code(), "recovery-not-enough-shares"),
        Err(err) => assert_eq!(&alone, err),
    }
    // The same share twice is a duplicate, unless it is of another split.
    let same_split = share.split_id() == verifier.id();
    let twice = [share.clone(), share];
    let err = recover(&twice, &verifier).unwrap_err();
    let expected = if same_split {
        "recovery-duplicate-share"
    } else {
        "recovery-wrong-split"
    };
    assert_eq!(err.code(), expected);
});
