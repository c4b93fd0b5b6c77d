//! A batch of transactions, as `POST` takes them: the input is split on
//! `\n` (canonical JSON never holds a raw newline) and checked with
//! `SignedTx::parse_many`, and with `signature_checks` as the sequencer does
//! for transactions from several submissions. Checking signatures together
//! must agree with checking each transaction on its own.
#![no_main]

use std::sync::LazyLock;

use hygeia_ledger::tx::{signature_checks, TxContext, UnverifiedTx};
use hygeia_ledger::{ModuleRegistry, SignedTx};
use libfuzzer_sys::fuzz_target;

const NETWORK: &str = "fuzz.example/log";
const MAX_BATCH: usize = 32;

static MODULES: LazyLock<ModuleRegistry> = LazyLock::new(ModuleRegistry::with_builtins);

fuzz_target!(|data: &[u8]| {
    let ctx = TxContext {
        network: NETWORK,
        modules: &MODULES,
    };
    let raws: Vec<&[u8]> = data.split(|&b| b == b'\n').take(MAX_BATCH).collect();

    // The sequencer's path: parsed one by one, signatures checked together.
    let parsed: Result<Vec<UnverifiedTx>, _> =
        raws.iter().map(|raw| UnverifiedTx::parse(raw, &ctx)).collect();
    if let Ok(parsed) = parsed {
        let refs: Vec<&UnverifiedTx> = parsed.iter().collect();
        let batch = signature_checks(&refs).iter().all(|&ok| ok);
        let alone: Vec<bool> = raws.iter().map(|raw| SignedTx::parse(raw, &ctx).is_ok()).collect();
        assert_eq!(
            batch,
            alone.iter().all(|&ok| ok),
            "signature_checks says {batch}, one by one: {alone:?}"
        );
    }

    match SignedTx::parse_many(&raws, &ctx) {
        Ok(txs) => {
            assert_eq!(txs.len(), raws.len());
            for (i, (tx, raw)) in txs.iter().zip(&raws).enumerate() {
                assert_eq!(tx.canonical_bytes(), *raw);
                // A batch is accepted only if every member is accepted alone.
                if let Err(e) = SignedTx::parse(raw, &ctx) {
                    panic!("parse_many accepted transaction {i}, which parse refuses: {e:?}");
                }
            }
        }
        Err((i, e)) => {
            assert!(i < raws.len(), "error position {i} out of range");
            // Everything before the reported position passed the checks
            // that come before the signature.
            for (j, raw) in raws[..i].iter().enumerate() {
                assert!(
                    UnverifiedTx::parse(raw, &ctx).is_ok(),
                    "transaction {j} is bad but {i} was reported"
                );
            }
            // The reported transaction is refused alone, for the same reason.
            match SignedTx::parse(raws[i], &ctx) {
                Ok(_) => panic!("parse_many refused transaction {i} ({e:?}), which parse accepts"),
                Err(alone) => assert_eq!(alone.code, e.code),
            }
        }
    }
});
