//! The state is a deterministic replay of the log: whatever the batching,
//! the writer admits exactly what a fresh replay accepts, readers see the
//! same state, and a refused submission leaves nothing behind.

use hygeia_identity::Keypair;
use hygeia_ledger::tx::TxContext;
use hygeia_ledger::{SignedTx, StateMachine, TxBuilder};
use hygeia_state::registry::Registry;
use hygeia_state::txs::registry;
use hygeia_state::writer::{Committed, SharedState, StateWriter};
use hygeia_state::LedgerState;
use proptest::prelude::*;
use serde_json::{json, Value};

/// Every transaction type from every role against every other identity.
mod adversary;
/// Accounts, escrows and care programs.
mod economy;
/// Genesis, the custodian set and the network-bound licence audience.
mod genesis;
mod security;

const NETWORK: &str = "test.example/state";

struct Keys {
    node: Keypair,
    governance: Keypair,
    people: Vec<Keypair>,
}

fn keys() -> Keys {
    Keys {
        node: Keypair::from_seed(&[1; 32]),
        governance: Keypair::from_seed(&[2; 32]),
        people: (10..14).map(|i| Keypair::from_seed(&[i; 32])).collect(),
    }
}

#[derive(Debug, Clone)]
enum Op {
    Record {
        patient: usize,
        n: u8,
    },
    Erase {
        signer: usize,
        n: u8,
    },
    Grant {
        signer: usize,
        patient: usize,
        grantee: usize,
        start: i64,
        len: i64,
    },
    Revoke {
        signer: usize,
        grant: usize,
    },
    BreakGlass {
        requester: usize,
        patient: usize,
    },
    Org {
        signer_is_governance: bool,
        n: u8,
    },
    /// Any type the registry knows (by its place in `Registry::types`),
    /// from any signer: its example body with the test's own did:keys put
    /// in for the example's ones, so every type reaches the state.
    Example {
        tx_type: usize,
        signer: usize,
        dids: Vec<usize>,
    },
}

/// Who signs an [`Op::Example`]: the node, the governance key, then the
/// people; also the did:keys its body names.
fn actor(keys: &Keys, n: usize) -> &Keypair {
    match n % (keys.people.len() + 2) {
        0 => &keys.node,
        1 => &keys.governance,
        i => &keys.people[i - 2],
    }
}

/// `value` with its did:keys replaced, in order, by the actors `dids`
/// names.
fn put_dids(keys: &Keys, value: &mut Value, dids: &[usize], next: &mut usize) {
    match value {
        Value::String(text) if text.starts_with("did:key:") => {
            *text = did(actor(keys, dids.get(*next).copied().unwrap_or(*next)));
            *next += 1;
        }
        Value::Array(items) => items.iter_mut().for_each(|v| put_dids(keys, v, dids, next)),
        Value::Object(members) => members
            .values_mut()
            .for_each(|v| put_dids(keys, v, dids, next)),
        _ => {}
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..4usize, 0..6u8).prop_map(|(patient, n)| Op::Record { patient, n }),
        (0..5usize, 0..6u8).prop_map(|(signer, n)| Op::Erase { signer, n }),
        (0..4usize, 0..4usize, 0..4usize, -5..5i64, -2..10i64).prop_map(
            |(signer, patient, grantee, start, len)| Op::Grant {
                signer,
                patient,
                grantee,
                start,
                len
            }
        ),
        (0..4usize, 0..8usize).prop_map(|(signer, grant)| Op::Revoke { signer, grant }),
        (0..4usize, 0..4usize)
            .prop_map(|(requester, patient)| Op::BreakGlass { requester, patient }),
        (any::<bool>(), 0..3u8).prop_map(|(signer_is_governance, n)| Op::Org {
            signer_is_governance,
            n
        }),
        (
            0..Registry::global().types().count(),
            0..6usize,
            prop::collection::vec(0..6usize, 8)
        )
            .prop_map(|(tx_type, signer, dids)| Op::Example {
                tx_type,
                signer,
                dids
            }),
    ]
}

fn did(k: &Keypair) -> String {
    k.did().to_string()
}

fn commitment(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

/// Turns ops into signed transactions; grant ids are learned as they go.
fn build(keys: &Keys, ops: &[Op]) -> Vec<SignedTx> {
    let modules = registry();
    let ctx = TxContext {
        network: NETWORK,
        modules: &modules,
    };
    let mut grant_ids: Vec<String> = Vec::new();
    let mut txs = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let person = |n: usize| &keys.people[n % keys.people.len()];
        let (key, tx_type, body): (&Keypair, &str, Value) = match op {
            Op::Record { patient, n } => (
                &keys.node,
                "record",
                json!({"patient": did(person(*patient)), "author": did(person(*patient)), "category": "lab", "resource_type": "Observation", "commitment": commitment(*n)}),
            ),
            Op::Erase { signer, n } => {
                let key = if *signer == 4 {
                    &keys.governance
                } else {
                    person(*signer)
                };
                (key, "record.erase", json!({"record": commitment(*n)}))
            }
            Op::Grant {
                signer,
                patient,
                grantee,
                start,
                len,
            } => (
                person(*signer),
                "consent.grant",
                json!({"patient": did(person(*patient)), "grantee": did(person(*grantee)), "scope": {"categories": ["lab"]}, "actions": ["read"], "purpose": "TREAT", "not_before": start * 100, "not_after": (start + len) * 100}),
            ),
            Op::Revoke { signer, grant } => {
                let id = grant_ids
                    .get(*grant)
                    .cloned()
                    .unwrap_or_else(|| "ab".repeat(32));
                (person(*signer), "consent.revoke", json!({"grant": id}))
            }
            Op::BreakGlass { requester, patient } => (
                &keys.node,
                "access",
                json!({"requester": did(person(*requester)), "patient": did(person(*patient)), "action": "read", "purpose": "ETREAT", "records": [], "decision": "permit", "break_glass": true, "justified": true, "reasons": ["break-glass-emergency-read"], "grants": [], "governance_version": 0, "time": 1000}),
            ),
            Op::Org {
                signer_is_governance,
                n,
            } => (
                if *signer_is_governance {
                    &keys.governance
                } else {
                    &keys.people[0]
                },
                "org.register",
                json!({"org": format!("did:web:org{n}.example"), "admin": did(&keys.people[1]), "kind": "clinic"}),
            ),
            Op::Example {
                tx_type,
                signer,
                dids,
            } => {
                let entry = Registry::global().types().nth(*tx_type).unwrap();
                let mut body = entry.example();
                put_dids(keys, &mut body, dids, &mut 0);
                (actor(keys, *signer), entry.tx_type, body)
            }
        };
        let raw = TxBuilder {
            network: NETWORK,
            tx_type,
            nonce: format!("n{i}"),
            body,
        }
        .sign(key);
        let tx = SignedTx::parse(&raw, &ctx).unwrap();
        if tx_type == "consent.grant" {
            grant_ids.push(hex::encode(tx.leaf_hash().0));
        }
        txs.push(tx);
    }
    txs
}

/// Records (and whether erased), grant ids per patient, open break-glass
/// windows, registered organizations.
type Observed = (Vec<(String, bool)>, Vec<Vec<String>>, Vec<bool>, usize);

/// What readers can observe of a state.
fn observe(state: &LedgerState, keys: &Keys) -> Observed {
    let mut records: Vec<(String, bool)> = (0..6u8)
        .filter_map(|n| {
            state
                .records
                .get(&commitment(n))
                .map(|r| (r.commitment.clone(), r.erased_at.is_some()))
        })
        .collect();
    records.sort();
    let grants = keys
        .people
        .iter()
        .map(|p| {
            let mut ids: Vec<String> = state
                .policy
                .consents()
                .grants_of(&did(p))
                .map(|g| g.id.clone())
                .collect();
            ids.sort();
            ids
        })
        .collect();
    let windows = keys
        .people
        .iter()
        .flat_map(|r| keys.people.iter().map(move |p| (r, p)))
        .map(|(r, p)| state.break_glass_until(&did(r), &did(p), 1500).is_some())
        .collect();
    let orgs = (0..3u8)
        .filter(|n| {
            state
                .participants
                .org(&format!("did:web:org{n}.example"))
                .is_some()
        })
        .count();
    (records, grants, windows, orgs)
}

fn fresh(keys: &Keys) -> LedgerState {
    LedgerState::new(did(&keys.node), Some(did(&keys.governance)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn writer_and_replay_agree(ops in prop::collection::vec(op(), 1..40), cuts in prop::collection::vec(any::<bool>(), 40)) {
        writer_agrees_with_replay(&ops, &cuts)?;
    }
}

/// The writer, admitting `ops` one by one and committing where `cuts`
/// says, admits exactly what a fresh replay accepts, and readers see the
/// replay's state.
fn writer_agrees_with_replay(ops: &[Op], cuts: &[bool]) -> Result<(), TestCaseError> {
    let keys = keys();
    let txs = build(&keys, ops);
    let shared = SharedState::new(Committed::new(fresh(&keys)));
    let mut writer = StateWriter::new(shared.clone(), Box::new(|_| {}));
    let mut admitted = Vec::new();
    for (i, tx) in txs.iter().enumerate() {
        admitted.push(writer.admit(i as u64, std::slice::from_ref(tx)).is_ok());
        if cuts[i % cuts.len()] {
            writer.commit();
        }
    }
    writer.commit();

    let mut replayed = fresh(&keys);
    for (i, tx) in txs.iter().enumerate() {
        prop_assert_eq!(
            replayed.apply(i as u64, tx).is_ok(),
            admitted[i],
            "tx {} ({})",
            i,
            tx.tx_type()
        );
    }
    prop_assert_eq!(
        observe(&shared.read().state, &keys),
        observe(&replayed, &keys)
    );
    Ok(())
}

/// Every type the registry knows, from every signer, twice over (so a
/// second registration, rotation or grant meets the first): some are
/// admitted, and the writer agrees with the replay on each.
#[test]
fn every_registered_type_is_admitted_as_the_replay_accepts_it() {
    let types = Registry::global().types().count();
    let mut ops = Vec::new();
    for round in 0..2 {
        for signer in [1, 0, 2, 3, 4, 5] {
            for tx_type in 0..types {
                ops.push(Op::Example {
                    tx_type,
                    signer,
                    dids: vec![2 + round, 3, 4, 5, 2, 3, 4, 5],
                });
            }
        }
    }
    writer_agrees_with_replay(&ops, &[false, true, false]).unwrap();
    let keys = keys();
    let mut state = fresh(&keys);
    let accepted: std::collections::BTreeSet<&str> = build(&keys, &ops)
        .iter()
        .enumerate()
        .filter(|(i, tx)| state.apply(*i as u64, tx).is_ok())
        .map(|(_, tx)| Registry::global().get(tx.tx_type()).unwrap().tx_type)
        .collect();
    // The examples reach the state for most types (a rotation's proof,
    // a status list or a licence need real credentials and keys).
    assert!(accepted.len() >= 8, "only {accepted:?} were admitted");
}

#[test]
fn a_refused_submission_leaves_nothing_staged() {
    let keys = keys();
    let txs = build(
        &keys,
        &[
            Op::Record { patient: 0, n: 1 },
            Op::Grant {
                signer: 0,
                patient: 0,
                grantee: 1,
                start: 0,
                len: 5,
            },
            // Refused: not the patient.
            Op::Grant {
                signer: 3,
                patient: 0,
                grantee: 2,
                start: 0,
                len: 5,
            },
        ],
    );
    let shared = SharedState::new(Committed::new(fresh(&keys)));
    let mut writer = StateWriter::new(shared.clone(), Box::new(|_| {}));
    let error = writer.admit(0, &txs).unwrap_err();
    assert_eq!(error.position, Some(2));
    assert_eq!(error.code.as_str(), "consent.not_patient_or_delegate");
    writer.commit();
    {
        let committed = shared.read();
        assert!(committed.state.records.is_empty());
        assert_eq!(committed.state.policy.consents().len(), 0);
    }
    // The same first two alone are admitted afterwards.
    writer.admit(0, &txs[..2]).unwrap();
    writer.commit();
    assert_eq!(shared.read().state.records.len(), 1);
}

#[test]
fn nothing_is_visible_before_commit_and_abort_drops_it() {
    let keys = keys();
    let txs = build(
        &keys,
        &[
            Op::Record { patient: 0, n: 1 },
            Op::Record { patient: 0, n: 2 },
        ],
    );
    let shared = SharedState::new(Committed::new(fresh(&keys)));
    let mut writer = StateWriter::new(shared.clone(), Box::new(|_| {}));
    writer.admit(0, &txs[..1]).unwrap();
    assert!(
        shared.read().state.records.is_empty(),
        "visible before the batch is durable"
    );
    writer.abort();
    assert!(shared.read().state.records.is_empty());
    // After the abort the writer has forgotten it too: the same record is
    // admitted again, not refused as a duplicate.
    writer.admit(0, &txs[..1]).unwrap();
    writer.admit(1, &txs[1..]).unwrap();
    writer.commit();
    assert_eq!(shared.read().state.records.len(), 2);
}

#[test]
fn commit_hands_readers_the_admitted_state_and_its_effects() {
    let keys = keys();
    let txs = build(
        &keys,
        &[
            Op::Record { patient: 0, n: 1 },
            Op::BreakGlass {
                requester: 1,
                patient: 0,
            },
            Op::Record { patient: 0, n: 2 },
            Op::Erase { signer: 0, n: 1 },
            // Refused at its second transaction: record 2 exists.
            Op::Record { patient: 0, n: 3 },
            Op::Record { patient: 0, n: 2 },
        ],
    );
    let erased = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = erased.clone();
    let shared = SharedState::new(Committed::new(fresh(&keys)));
    let mut writer = StateWriter::new(
        shared.clone(),
        Box::new(move |c| seen.lock().unwrap().push(c.to_owned())),
    );
    writer.admit(0, &txs[..1]).unwrap();
    writer.commit();
    // A two-transaction submission on a state that readers share.
    writer.admit(1, &txs[1..3]).unwrap();
    writer.admit(3, &txs[3..4]).unwrap();
    let error = writer.admit(4, &txs[4..6]).unwrap_err();
    assert_eq!(error.position, Some(1));
    assert!(erased.lock().unwrap().is_empty(), "erased before durable");
    writer.commit();
    assert_eq!(*erased.lock().unwrap(), vec![commitment(1)]);
    let committed = shared.read();
    let records: Vec<(String, bool)> = {
        let mut r: Vec<_> = committed
            .state
            .records
            .all()
            .map(|r| (r.commitment.clone(), r.erased_at.is_some()))
            .collect();
        r.sort();
        r
    };
    assert_eq!(
        records,
        vec![(commitment(1), true), (commitment(2), false)],
        "the refused submission's first record is not there"
    );
    let accesses = &committed.accesses[&did(&keys.people[0])];
    assert_eq!(accesses.len(), 1);
    assert_eq!(accesses[0].index, 1);
    assert!(accesses[0].break_glass);
    assert!(committed
        .state
        .break_glass_until(&did(&keys.people[1]), &did(&keys.people[0]), 1500)
        .is_some());
    // A replay of what was admitted gives the same state.
    let mut replayed = fresh(&keys);
    for (i, tx) in txs[..4].iter().enumerate() {
        replayed.apply(i as u64, tx).unwrap();
    }
    assert_eq!(observe(&committed.state, &keys), observe(&replayed, &keys));
}
