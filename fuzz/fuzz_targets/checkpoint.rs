//! Checkpoints (signed notes) as fetched from a node or a witness: parsing
//! without and with the signature check must never panic, and a verified
//! checkpoint reads the same either way.
#![no_main]

use std::sync::LazyLock;

use hygeia_identity::Keypair;
use hygeia_ledger::checkpoint::{parse_unverified, CheckpointVerifier};
use hygeia_ledger::CheckpointSigner;
use libfuzzer_sys::fuzz_target;

const ORIGIN: &str = "fuzz.example/log";

/// The verifier key for the fixed fuzzing key (seed `[3; 32]`), which also
/// signed the seed checkpoints.
static VKEY: LazyLock<String> = LazyLock::new(|| {
    CheckpointSigner::new(ORIGIN, Keypair::from_seed(&[3u8; 32]))
        .unwrap()
        .verifier_key()
});

thread_local! {
    static VERIFIER: CheckpointVerifier = CheckpointVerifier::new(&VKEY).unwrap();
}

fuzz_target!(|data: &[u8]| {
    let unverified = parse_unverified(data);
    let verified = VERIFIER.with(|v| v.verify(data));
    if let Ok(cp) = verified {
        assert_eq!(cp.note, data);
        let (origin, size, root) = unverified.expect("a verified checkpoint parses unverified");
        assert_eq!(origin, ORIGIN);
        assert_eq!((size, root), (cp.size, cp.root));
    }
});
