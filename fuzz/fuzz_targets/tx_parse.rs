//! A transaction as it arrives from outside: arbitrary bytes through the
//! full check (JSON, canonical form, schema, network, signature).
#![no_main]

use std::sync::LazyLock;

use hygeia_ledger::merkle::leaf_hash;
use hygeia_ledger::tx::{TxContext, UnverifiedTx};
use hygeia_ledger::{ModuleRegistry, SignedTx};
use libfuzzer_sys::fuzz_target;

const NETWORK: &str = "fuzz.example/log";

static MODULES: LazyLock<ModuleRegistry> = LazyLock::new(ModuleRegistry::with_builtins);

fuzz_target!(|data: &[u8]| {
    let ctx = TxContext {
        network: NETWORK,
        modules: &MODULES,
    };
    match SignedTx::parse(data, &ctx) {
        Ok(tx) => {
            // A parsed transaction is always canonical: its log entry is
            // exactly the bytes that came in.
            assert_eq!(tx.canonical_bytes(), data);
            assert_eq!(tx.leaf_hash(), leaf_hash(data));
            // The signer it names is a did:key that reads back as itself.
            assert_eq!(
                tx.signer().as_str().parse::<hygeia_identity::Did>().as_ref(),
                Ok(tx.signer())
            );
        }
        Err(full) => {
            // Whatever failed before the signature check must fail the same
            // way without it.
            if let Err(structural) = UnverifiedTx::parse(data, &ctx) {
                assert_eq!(structural.code, full.code);
            }
        }
    }
});
