//! The port is faithful: the log made by the state machine before it
//! became a crate of its own (tests/fixtures/port-v1, see its README)
//! replays through today's state machine to the same state.

#[path = "support/port_dump.rs"]
mod port_dump;

use hygeia_ledger::tx::TxContext;
use hygeia_ledger::SignedTx;
use hygeia_state::txs::registry;
use hygeia_state::LedgerState;
use serde_json::Value;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/port-v1");

fn read(name: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURE}/{name}")).unwrap()
}

#[test]
fn the_old_log_replays_to_the_old_state() {
    let meta: Value = serde_json::from_str(&read("meta.json")).unwrap();
    let network = meta["network"].as_str().unwrap();
    let modules = registry();
    let ctx = TxContext {
        network,
        modules: &modules,
    };
    let txs: Vec<SignedTx> = read("log.jsonl")
        .lines()
        .map(|line| SignedTx::parse(line.as_bytes(), &ctx).unwrap())
        .collect();
    assert_eq!(txs.len() as u64, meta["entries"].as_u64().unwrap());

    let mut state = LedgerState::new(
        meta["node"].as_str().unwrap().to_owned(),
        Some(meta["governance"].as_str().unwrap().to_owned()),
    );
    for (index, tx) in txs.iter().enumerate() {
        state
            .apply(index as u64, tx)
            .unwrap_or_else(|e| panic!("entry {index} ({}) refused: {e}", tx.tx_type()));
    }

    let universe = port_dump::universe(&txs);
    let got: Value = serde_json::from_str(&port_dump::dump_text(
        &state,
        &universe,
        meta["at"].as_i64().unwrap(),
    ))
    .unwrap();
    let want: Value = serde_json::from_str(&read("dump.json")).unwrap();
    assert_eq!(got, want);
}

/// The fixture holds every type the registry knew when it was made (16),
/// and every one of them is still registered: the port dropped none. A
/// type added later is not in this fixture; its own tests cover it.
#[test]
fn the_fixture_covers_every_type_of_its_time() {
    let mut seen: Vec<String> = read("log.jsonl")
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            v["type"].as_str().unwrap().to_owned()
        })
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 16, "{seen:?}");
    let known = registry().types();
    let dropped: Vec<&String> = seen
        .iter()
        .filter(|t| !known.contains(&t.as_str()))
        .collect();
    assert!(dropped.is_empty(), "no longer registered: {dropped:?}");
}
