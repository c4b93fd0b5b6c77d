//! C2SP tlog-witness `add-checkpoint` bodies and cosigned notes, as a
//! stranger sends them to `POST /add-checkpoint` and
//! `POST /v1/checkpoint/cosignatures`: parsing must never panic, a parsed
//! request prints back as its input, and a quorum check of a cosigned note
//! never accepts a cosignature it cannot verify.
#![no_main]

use std::sync::LazyLock;

use hygeia_identity::Keypair;
use hygeia_ledger::cosignature::{
    parse_signature_lines, AddCheckpoint, CosignatureVerifier, CosignedNote, Cosigner,
};
use libfuzzer_sys::fuzz_target;

/// The fixed fuzzing cosigner (seed `[4; 32]`, name its did:key), which
/// also cosigned the seeds.
static COSIGNER: LazyLock<Cosigner> = LazyLock::new(|| {
    let key = Keypair::from_seed(&[4u8; 32]);
    Cosigner::new(key.did().as_str(), key).unwrap()
});
static SET: LazyLock<Vec<CosignatureVerifier>> = LazyLock::new(|| vec![COSIGNER.verifier()]);

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = AddCheckpoint::parse(data) {
        assert_eq!(request.to_bytes(), data);
        assert!(request.proof.len() <= 63);
        check_note(&request.checkpoint);
    }
    if let Ok(note) = CosignedNote::parse(data) {
        assert_eq!(note.to_bytes(), data);
        check_note(&note);
    }
    if let Ok(lines) = parse_signature_lines(data) {
        assert!(!lines.is_empty());
    }
});

fn check_note(note: &CosignedNote) {
    match note.check_quorum(&SET, 1) {
        Ok(quorum) => {
            // Then the cosignature verifies on its own, and re-signing at
            // its time gives the same line (Ed25519 is deterministic).
            let (_, time) = quorum.valid[0];
            let line = COSIGNER.cosign(&note.text, time).unwrap();
            assert!(note.signatures.iter().any(|s| *s == line));
        }
        Err(e) => assert!(e.code().starts_with("cosignature.")),
    }
}
