//! A signature whose `R` carries a small torsion component verifies under
//! Ed25519 batch verification about half the time, but never under strict
//! verification, nor in OpenSSL or Python's `cryptography`. Found by the
//! `tx_batch` fuzz target; the log must refuse it every time.

use hygeia_ledger::tx::{signature_checks, TxContext, UnverifiedTx};
use hygeia_ledger::{ErrorCode, ModuleRegistry, SignedTx};

const INPUT: &[u8] = include_bytes!("data/torsion-r-batch");

#[test]
fn a_torsion_component_in_r_is_always_refused() {
    let modules = ModuleRegistry::with_builtins();
    let ctx = TxContext {
        network: "fuzz.example/log",
        modules: &modules,
    };
    let raws: Vec<&[u8]> = INPUT
        .split(|&b| b == b'\n')
        .filter(|r| !r.is_empty())
        .collect();
    assert_eq!(raws.len(), 2);
    assert!(SignedTx::parse(raws[0], &ctx).is_ok());
    assert_eq!(
        SignedTx::parse(raws[1], &ctx).unwrap_err().code,
        ErrorCode::BadSignature
    );
    // Batch verification draws random weights; strict checks have none to draw.
    for _ in 0..64 {
        let (position, e) = SignedTx::parse_many(&raws, &ctx).unwrap_err();
        assert_eq!((position, e.code), (1, ErrorCode::BadSignature));
        let parsed: Vec<UnverifiedTx> = raws
            .iter()
            .map(|r| UnverifiedTx::parse(r, &ctx).unwrap())
            .collect();
        let refs: Vec<&UnverifiedTx> = parsed.iter().collect();
        assert_eq!(signature_checks(&refs), vec![true, false]);
    }
}
