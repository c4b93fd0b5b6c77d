//! `network.validators`: the validator set of the next epoch, named by
//! governance. Epoch 0's set is the genesis custodian set; each accepted
//! change moves the state one epoch on; every refusal has its code and
//! changes nothing.

use hygeia_identity::Keypair;
use hygeia_ledger::SignedTx;
use hygeia_state::network::NETWORK_VALIDATORS;
use hygeia_state::LedgerState;
use serde_json::{json, Value};

use super::{code, custodian, did, genesis, key, tx};

fn validators_tx(signer: &Keypair, nonce: &str, body: Value) -> SignedTx {
    tx(signer, NETWORK_VALIDATORS, nonce, body).unwrap()
}

fn member(k: &Keypair, port: u16) -> Value {
    json!({"key": did(k), "address": format!("127.0.0.1:{port}")})
}

/// Nodes 1, 3, 4, 5 founded by node 1, governance 2.
fn four() -> LedgerState {
    let (a, b, c, d) = (key(1), key(3), key(4), key(5));
    let mut state = LedgerState::empty();
    state
        .apply(0, &genesis(&a, &key(2), &[&a, &b, &c, &d]))
        .unwrap();
    state
}

#[test]
fn epoch_zero_is_the_genesis_custodian_set() {
    let mut state = four();
    assert_eq!(state.network.epoch(), 0);
    let genesis_set: Vec<String> = [1, 3, 4, 5].iter().map(|s| did(&key(*s))).collect();
    assert_eq!(state.network.validator_keys(), genesis_set);
    // A custodian added later is not a validator until a set names it.
    let added = custodian(&key(2), "c", json!({"op": "add", "key": did(&key(6))}));
    state.apply(1, &added).unwrap();
    assert_eq!(state.network.validator_keys(), genesis_set);
    assert!(state.network.validators().is_empty());
}

#[test]
fn governance_names_the_next_epochs_set_and_it_takes_effect_at_its_leaf() {
    let mut state = four();
    let set = json!({"epoch": 1, "validators": [member(&key(1), 9101), member(&key(3), 9102), member(&key(4), 9103)]});
    state.apply(1, &validators_tx(&key(2), "v1", set)).unwrap();
    assert_eq!(state.network.epoch(), 1);
    assert_eq!(state.network.epoch_leaf(), 1);
    assert_eq!(
        state.network.validator_keys(),
        vec![did(&key(1)), did(&key(3)), did(&key(4))]
    );
    assert_eq!(state.network.validators()[1].address, "127.0.0.1:9102");
    // The next change names epoch 2; a new custodian may join.
    state
        .apply(
            2,
            &custodian(&key(2), "c", json!({"op": "add", "key": did(&key(6))})),
        )
        .unwrap();
    let set = json!({"epoch": 2, "validators": [member(&key(1), 9101), member(&key(6), 9106)]});
    state.apply(3, &validators_tx(&key(2), "v2", set)).unwrap();
    assert_eq!(state.network.epoch(), 2);
    assert_eq!(state.network.epoch_leaf(), 3);
    assert_eq!(
        state.network.validator_keys(),
        vec![did(&key(1)), did(&key(6))]
    );
}

#[test]
fn bad_validator_sets_are_refused_and_change_nothing() {
    let state = four();
    let (a, b) = (key(1), key(3));
    let cases = [
        (
            json!({"epoch": 0, "validators": [member(&a, 9101)]}),
            "network.epoch_mismatch",
        ),
        (
            json!({"epoch": 2, "validators": [member(&a, 9101)]}),
            "network.epoch_mismatch",
        ),
        (
            json!({"epoch": 1, "validators": []}),
            "network.validators_empty",
        ),
        (
            json!({"epoch": 1, "validators": [member(&a, 9101), member(&a, 9102)]}),
            "network.validator_duplicate",
        ),
        (
            json!({"epoch": 1, "validators": [member(&a, 9101), member(&b, 9101)]}),
            "network.validator_duplicate",
        ),
        (
            json!({"epoch": 1, "validators": [member(&a, 9101), member(&key(9), 9109)]}),
            "network.validator_not_custodian",
        ),
        (
            json!({"epoch": 1, "validators": (0..65u16).map(|i| member(&key(1), 10_000 + i)).collect::<Vec<_>>()}),
            "network.too_many_validators",
        ),
    ];
    for (body, expected) in cases {
        let mut after = state.clone();
        let refused = after.apply(1, &validators_tx(&key(2), "v", body.clone()));
        assert_eq!(code(refused), expected, "{body}");
        assert_eq!(after.network, state.network, "{body}");
    }
}

#[test]
fn only_governance_changes_the_validator_set() {
    let state = four();
    let stranger = Keypair::generate();
    let body = json!({"epoch": 1, "validators": [member(&stranger, 9109)]});
    // Not a validator, not the founding node, not a stranger.
    for signer in [&key(1), &key(3), &stranger] {
        let mut after = state.clone();
        let refused = after.apply(1, &validators_tx(signer, "v", body.clone()));
        assert_eq!(code(refused), "network.not_governance");
        assert_eq!(after.network, state.network);
    }
}

#[test]
fn malformed_validator_bodies_are_refused_at_parse() {
    let governance = key(2);
    for body in [
        json!({"epoch": 1, "validators": [{"key": "did:web:x.example", "address": "127.0.0.1:1"}]}),
        json!({"epoch": 1, "validators": [{"key": did(&key(1)), "address": "node.example:9101"}]}),
        json!({"epoch": 1, "validators": [{"key": did(&key(1))}]}),
        json!({"epoch": -1, "validators": [member(&key(1), 1)]}),
        json!({"epoch": 1, "validators": [member(&key(1), 1)], "extra": true}),
        with_api(&key(1), "ftp://node.example"),
        with_api(&key(1), "http://"),
        with_api(&key(1), "http:///path"),
        with_api(&key(1), "https://node.example/?q=1"),
        with_api(&key(1), "https://node.example/#f"),
        with_api(&key(1), "https://user@node.example"),
        with_api(&key(1), "https://node .example"),
        with_api(&key(1), &format!("https://{}.example", "a".repeat(250))),
        json!({"epoch": 1, "validators": [{"key": did(&key(1)), "address": "127.0.0.1:1", "api": 7}]}),
    ] {
        assert!(
            tx(&governance, NETWORK_VALIDATORS, "v", body.clone()).is_err(),
            "{body}"
        );
    }
}

fn with_api(k: &Keypair, api: &str) -> Value {
    json!({"epoch": 1, "validators": [{"key": did(k), "address": "127.0.0.1:9101", "api": api}]})
}

/// A validator may name where its HTTP API answers: the set keeps it, so
/// nodes that did not found the network with it find it from the log.
#[test]
fn a_validator_may_name_its_api_url() {
    let mut state = four();
    let mut first = member(&key(1), 9101);
    first["api"] = json!("https://node1.example:8443");
    let set = json!({"epoch": 1, "validators": [first, member(&key(3), 9102)]});
    state.apply(1, &validators_tx(&key(2), "v1", set)).unwrap();
    let validators = state.network.validators();
    assert_eq!(
        validators[0].api.as_deref(),
        Some("https://node1.example:8443")
    );
    assert_eq!(validators[1].api, None);
}

/// A replay of the same log reaches the same epoch and set.
#[test]
fn an_epoch_change_replays() {
    let (a, b, c, d, governance) = (key(1), key(3), key(4), key(5), key(2));
    let log = [
        genesis(&a, &governance, &[&a, &b, &c, &d]),
        validators_tx(
            &governance,
            "v1",
            json!({"epoch": 1, "validators": [member(&a, 9101), member(&b, 9102), member(&c, 9103)]}),
        ),
    ];
    let mut first = LedgerState::empty();
    let mut second = LedgerState::empty();
    for (i, t) in log.iter().enumerate() {
        first.apply(i as u64, t).unwrap();
        second.apply(i as u64, t).unwrap();
    }
    assert_eq!(first.network, second.network);
    assert_eq!(second.network.epoch(), 1);
}
