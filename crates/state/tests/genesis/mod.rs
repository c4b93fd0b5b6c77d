//! Genesis and the custodian set, from every side: a log must start with
//! exactly one genesis, the custodian set it names (and only governance
//! changes) decides who signs `record` and `access`, and a stranger with a
//! fresh did:key can neither found a network nor join its custodians.

use hygeia_identity::Keypair;
use hygeia_ledger::tx::TxContext;
use hygeia_ledger::{SignedTx, TxBuilder};
use hygeia_state::network::{genesis_tx, Genesis, GENESIS, NETWORK_CUSTODIAN};
use hygeia_state::txs::registry;
use hygeia_state::LedgerState;
use serde_json::{json, Value};

use crate::security::fixture::licence_presentation;

const NETWORK: &str = "test.example/genesis";

fn did(key: &Keypair) -> String {
    key.did().to_string()
}

fn key(seed: u8) -> Keypair {
    Keypair::from_seed(&[seed; 32])
}

fn tx(signer: &Keypair, tx_type: &str, nonce: &str, body: Value) -> Result<SignedTx, String> {
    let modules = registry();
    let ctx = TxContext {
        network: NETWORK,
        modules: &modules,
    };
    let raw = TxBuilder {
        network: NETWORK,
        tx_type,
        nonce: nonce.into(),
        body,
    }
    .sign(signer);
    SignedTx::parse(&raw, &ctx).map_err(|e| e.code.as_str().to_owned())
}

fn genesis(founder: &Keypair, governance: &Keypair, custodians: &[&Keypair]) -> SignedTx {
    let modules = registry();
    let body = Genesis {
        governance: vec![did(governance)],
        custodians: custodians.iter().map(|k| did(k)).collect(),
        legacy: None,
    };
    genesis_tx(NETWORK, founder, &body, &modules).unwrap()
}

/// A network founded by node 1 with governance 2, replayed from nothing.
fn founded() -> (LedgerState, SignedTx) {
    let (node, governance) = (key(1), key(2));
    let g = genesis(&node, &governance, &[&node]);
    let mut state = LedgerState::empty();
    state.apply(0, &g).unwrap();
    (state, g)
}

fn record(signer: &Keypair, nonce: &str, commitment: u8) -> SignedTx {
    let patient = did(&key(20));
    tx(
        signer,
        "record",
        nonce,
        json!({"patient": patient, "author": patient, "category": "lab",
               "resource_type": "Observation", "commitment": format!("{commitment:02x}").repeat(32)}),
    )
    .unwrap()
}

fn access(signer: &Keypair, nonce: &str) -> SignedTx {
    tx(
        signer,
        "access",
        nonce,
        json!({"requester": did(&key(21)), "patient": did(&key(20)), "action": "read",
               "purpose": "TREAT", "records": [], "decision": "deny", "break_glass": false,
               "justified": false, "reasons": [], "grants": [], "governance_version": 0,
               "time": 1000}),
    )
    .unwrap()
}

fn custodian(signer: &Keypair, nonce: &str, body: Value) -> SignedTx {
    tx(signer, NETWORK_CUSTODIAN, nonce, body).unwrap()
}

fn code(result: Result<hygeia_state::Effect, hygeia_ledger::TxError>) -> String {
    result.unwrap_err().code.as_str().to_owned()
}

#[test]
fn genesis_names_the_network_from_the_log() {
    let (state, g) = founded();
    assert_eq!(
        state.network.id(),
        Some(hex::encode(g.leaf_hash().0).as_str())
    );
    assert_eq!(
        state.network.custodians().collect::<Vec<_>>(),
        vec![did(&key(1))]
    );
    assert_eq!(state.participants.governance(), Some(did(&key(2)).as_str()));
}

#[test]
fn a_log_without_genesis_is_refused() {
    let mut state = LedgerState::empty();
    let attest = tx(
        &key(1),
        "attest",
        "a",
        json!({"label": "node.start", "subject": format!("sha256:{}", "ab".repeat(32))}),
    )
    .unwrap();
    for first in [record(&key(1), "r", 1), attest] {
        assert_eq!(code(state.apply(0, &first)), "genesis.missing");
    }
    // Nor does a genesis anywhere but at leaf 0 found one.
    let g = genesis(&key(1), &key(2), &[&key(1)]);
    assert_eq!(code(state.apply(1, &g)), "genesis.not_first");
    assert!(!state.network.has_genesis());
}

#[test]
fn a_second_genesis_is_refused() {
    let (mut state, g) = founded();
    let other = genesis(&key(3), &key(3), &[&key(3)]);
    assert_eq!(code(state.apply(1, &other)), "genesis.exists");
    assert_eq!(code(state.apply(0, &g)), "genesis.exists");
    assert_eq!(
        state.network.custodians().collect::<Vec<_>>(),
        vec![did(&key(1))]
    );
}

#[test]
fn a_malformed_genesis_is_refused() {
    let node = key(1);
    let bodies = [
        json!({"governance": [], "custodians": []}),
        json!({"governance": [did(&key(2)), did(&key(3))], "custodians": [did(&node)]}),
        json!({"governance": [], "custodians": [did(&node), did(&node)]}),
        json!({"governance": ["did:web:gov.example"], "custodians": [did(&node)]}),
        json!({"governance": [], "custodians": [did(&node)], "network": "x"}),
        json!({"custodians": [did(&node)]}),
        json!([did(&node)]),
    ];
    for body in bodies {
        assert_eq!(
            tx(&node, GENESIS, "g", body.clone()).unwrap_err(),
            "schema_violation",
            "{body}"
        );
    }
    // Well formed, but signed by a key outside the custodian set it names.
    let g = genesis(&key(3), &key(2), &[&node]);
    let mut state = LedgerState::empty();
    assert_eq!(code(state.apply(0, &g)), "genesis.not_custodian");
    assert!(!state.network.has_genesis());
}

#[test]
fn record_and_access_outside_the_custodian_set_are_refused() {
    let (mut state, _) = founded();
    let outsider = key(7);
    assert_eq!(
        code(state.apply(1, &record(&outsider, "r", 1))),
        "custodian_only"
    );
    assert_eq!(
        code(state.apply(1, &access(&outsider, "x"))),
        "custodian_only"
    );
    assert_eq!(state.records.len(), 0);
    // The founding node, a custodian, may.
    state.apply(1, &record(&key(1), "r", 1)).unwrap();
    state.apply(2, &access(&key(1), "x")).unwrap();
    assert_eq!(state.records.len(), 1);
}

#[test]
fn a_stranger_can_neither_found_nor_join_the_custodians() {
    let (mut state, _) = founded();
    let stranger = Keypair::generate();
    let own = genesis(&stranger, &stranger, &[&stranger]);
    assert_eq!(code(state.apply(1, &own)), "genesis.exists");
    for body in [
        json!({"op": "add", "key": did(&stranger)}),
        json!({"op": "rotate", "key": did(&key(1)), "new_key": did(&stranger)}),
        json!({"op": "remove", "key": did(&key(1))}),
    ] {
        let change = custodian(&stranger, "c", body);
        assert_eq!(code(state.apply(1, &change)), "network.not_governance");
    }
    assert_eq!(
        state.network.custodians().collect::<Vec<_>>(),
        vec![did(&key(1))]
    );
    assert_eq!(
        code(state.apply(1, &record(&stranger, "r", 1))),
        "custodian_only"
    );
}

#[test]
fn a_node_key_rotation_not_signed_by_governance_is_refused() {
    let (mut state, _) = founded();
    let (node, new) = (key(1), key(8));
    let rotate = json!({"op": "rotate", "key": did(&node), "new_key": did(&new)});
    // Not by the node itself, nor by an organization's admin.
    for signer in [&node, &new, &key(5)] {
        let change = custodian(signer, "c", rotate.clone());
        assert_eq!(code(state.apply(1, &change)), "network.not_governance");
    }
    assert!(state.network.is_custodian(&did(&node)));
}

/// After a rotation by governance, the old key writes nothing, the new one
/// writes, and a fresh replay of the whole log reaches the same state.
#[test]
fn a_rotated_node_key_replays() {
    let (node, governance, new) = (key(1), key(2), key(8));
    let g = genesis(&node, &governance, &[&node]);
    let log = [
        g,
        record(&node, "r1", 1),
        custodian(
            &governance,
            "c1",
            json!({"op": "rotate", "key": did(&node), "new_key": did(&new)}),
        ),
        record(&new, "r2", 2),
        access(&new, "a1"),
    ];
    let mut state = LedgerState::empty();
    for (i, t) in log.iter().enumerate() {
        state.apply(i as u64, t).unwrap();
    }
    assert_eq!(
        code(state.apply(5, &record(&node, "r3", 3))),
        "custodian_only"
    );
    let mut replayed = LedgerState::empty();
    for (i, t) in log.iter().enumerate() {
        replayed.apply(i as u64, t).unwrap();
    }
    assert_eq!(replayed.network, state.network);
    assert_eq!(replayed.records.len(), 2);
    assert_eq!(
        state.network.custodians().collect::<Vec<_>>(),
        vec![did(&new)]
    );
}

/// A licence's key binding is addressed to the network (its id), not to a
/// node: one addressed to the founding node's DID is refused.
#[test]
fn a_licence_is_bound_to_the_network() {
    let (mut state, g) = founded();
    let (board, clinician) = (key(30), key(31));
    let network_id = hex::encode(g.leaf_hash().0);
    let to_node = licence_presentation(&board, &clinician, &did(&key(1)), &[]);
    let refused = tx(
        &clinician,
        "licence.register",
        "l1",
        json!({"presentation": to_node}),
    )
    .unwrap();
    assert_eq!(code(state.apply(1, &refused)), "licence.invalid");
    let to_network = licence_presentation(&board, &clinician, &network_id, &[]);
    let accepted = tx(
        &clinician,
        "licence.register",
        "l2",
        json!({"presentation": to_network}),
    )
    .unwrap();
    state.apply(1, &accepted).unwrap();
    assert_eq!(state.credentials.licences_of(&did(&clinician)).len(), 1);
}
mod replication;

mod validators;
