//! What follows from the registry of transaction types: bad bodies for
//! every type it knows are refused when the transaction is parsed, with
//! `schema_violation`, before any rule of the state sees it; and the lists
//! of types kept in the docs name every type it knows. The list of types
//! comes from the registry, so a new type is covered without editing this
//! file.

use hygeia_identity::Keypair;
use hygeia_ledger::tx::TxContext;
use hygeia_ledger::{SignedTx, TxBuilder};
use hygeia_state::txs::registry;
use serde_json::{json, Value};

const NETWORK: &str = "bad-input.hygeia.test";

fn parse(tx_type: &str, body: Value) -> Result<SignedTx, hygeia_ledger::TxError> {
    let modules = registry();
    let ctx = TxContext {
        network: NETWORK,
        modules: &modules,
    };
    let raw = TxBuilder {
        network: NETWORK,
        tx_type,
        nonce: "n1".into(),
        body,
    }
    .sign(&Keypair::from_seed(&[7; 32]));
    SignedTx::parse(&raw, &ctx)
}

#[test]
fn a_body_that_fails_its_schema_is_refused_for_every_type() {
    let types = registry().types();
    assert!(types.len() >= 16, "the registry lists {types:?}");
    let bad_bodies = [
        json!(null),
        json!([]),
        json!("text"),
        json!(17),
        json!({}),
        json!({"unexpected_field": "did:key:z6Mkunexpected"}),
    ];
    for tx_type in types {
        for body in &bad_bodies {
            let error = parse(tx_type, body.clone())
                .err()
                .unwrap_or_else(|| panic!("{tx_type} accepted the body {body}"));
            assert_eq!(
                error.code.as_str(),
                "schema_violation",
                "{tx_type} with body {body}: {error}"
            );
        }
    }
}

#[test]
fn an_unregistered_type_is_refused() {
    let error = parse("payment.release", json!({})).unwrap_err();
    assert_eq!(error.code.as_str(), "unknown_type");
}

/// docs/records.md's table of what goes on the ledger (and the pages it
/// links for credentials and recovery) names every type but the ledger's
/// own `attest` (docs/transactions.md).
#[test]
fn the_ledger_table_in_the_docs_names_every_type() {
    let docs = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/records.md"
    ))
    .unwrap();
    let table: String = docs
        .split("## What exactly goes on the ledger")
        .nth(1)
        .unwrap()
        .lines()
        .skip_while(|l| !l.starts_with("| type"))
        .take_while(|l| l.starts_with('|'))
        .collect::<Vec<_>>()
        .join("\n");
    let missing: Vec<&str> = registry()
        .types()
        .into_iter()
        .filter(|t| *t != hygeia_ledger::attest::TX_TYPE)
        .filter(|t| !table.contains(&format!("`{t}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/records.md's table lacks {missing:?}"
    );
}
