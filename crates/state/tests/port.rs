//! The port is faithful: the log made by the state machine before it
//! became a crate of its own (tests/fixtures/port-v1, see its README)
//! replays through today's state machine to the same state, once migrated
//! (`hygeia migrate`: a genesis entry in front, the old entries replayed
//! under the rules they were admitted under).

#[path = "support/port_dump.rs"]
mod port_dump;

use hygeia_ledger::tx::TxContext;
use hygeia_ledger::SignedTx;
use hygeia_state::network::{genesis_tx, Genesis, Legacy, LEGACY_RULES_V1};
use hygeia_state::snapshot;
use hygeia_state::txs::registry;
use hygeia_state::writer::Committed;
use hygeia_state::LedgerState;
use serde_json::Value;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/port-v1");

fn read(name: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURE}/{name}")).unwrap()
}

/// The old log, migrated as `hygeia migrate` migrates it: a genesis
/// entry signed by the old node's key, recording the legacy prefix, then
/// the old entries byte for byte at leaves 1 to 42.
fn migrated(meta: &Value) -> (Vec<SignedTx>, Vec<SignedTx>) {
    let network = meta["network"].as_str().unwrap();
    let modules = registry();
    let ctx = TxContext {
        network,
        modules: &modules,
    };
    let old: Vec<SignedTx> = read("log.jsonl")
        .lines()
        .map(|line| SignedTx::parse(line.as_bytes(), &ctx).unwrap())
        .collect();
    assert_eq!(old.len() as u64, meta["entries"].as_u64().unwrap());
    let mut root = hygeia_ledger::merkle::RootBuilder::new();
    for tx in &old {
        root.push(tx.leaf_hash());
    }
    // The fixture's generator derived the node key from the seed [1; 32].
    let node = hygeia_identity::Keypair::from_seed(&[1; 32]);
    assert_eq!(node.did().to_string(), meta["node"].as_str().unwrap());
    let governance = meta["governance"].as_str().unwrap().to_owned();
    let genesis = Genesis {
        governance: vec![governance.clone()],
        custodians: vec![node.did().to_string()],
        legacy: Some(Legacy {
            entries: old.len() as u64,
            root: hex::encode(root.root().0),
            rules: LEGACY_RULES_V1.into(),
            node: node.did().to_string(),
            governance: Some(governance),
        }),
    };
    let genesis = genesis_tx(network, &node, &genesis, &modules).unwrap();
    let new = std::iter::once(genesis)
        .chain(old.iter().cloned())
        .collect();
    (old, new)
}

/// Adds one to every leaf index in a dump (not to bit indices or times):
/// the migrated log holds the old entries one leaf further on.
fn shift_leaf_indices(value: &mut Value, key: Option<&str>, parent: Option<&str>) {
    match value {
        Value::Number(n) => {
            let leaf = matches!(key, Some("index" | "registered_at" | "erased_at"))
                && parent != Some("status")
                || matches!(parent, Some("key_changes"));
            if leaf {
                *value = Value::from(n.as_u64().unwrap() + 1);
            }
        }
        Value::Array(items) => {
            for item in items {
                shift_leaf_indices(item, None, key.or(parent));
            }
        }
        Value::Object(members) => {
            for (k, v) in members.iter_mut() {
                shift_leaf_indices(v, Some(k.as_str()), key.or(parent));
            }
        }
        _ => {}
    }
}

#[test]
fn the_old_log_replays_through_the_migration_to_the_old_state() {
    let meta: Value = serde_json::from_str(&read("meta.json")).unwrap();
    let (old, new) = migrated(&meta);
    let mut state = LedgerState::empty();
    for (index, tx) in new.iter().enumerate() {
        state
            .apply(index as u64, tx)
            .unwrap_or_else(|e| panic!("entry {index} ({}) refused: {e}", tx.tx_type()));
    }

    let universe = port_dump::universe(&old);
    let got: Value = serde_json::from_str(&port_dump::dump_text(
        &state,
        &universe,
        meta["at"].as_i64().unwrap(),
    ))
    .unwrap();
    let mut want: Value = serde_json::from_str(&read("dump.json")).unwrap();
    // The old dump also hashed every bit of each status list; the state no
    // longer keeps bits no licence points at (see support/port_dump.rs).
    for list in want["status_lists"].as_array_mut().unwrap() {
        list.as_object_mut().unwrap().remove("bits_sha256");
    }
    shift_leaf_indices(&mut want, None, None);
    assert_eq!(got, want);
}

/// After the legacy prefix, today's rules apply again: a rotation
/// without a proof is refused, and so is a status list outside its
/// issuer's namespace, as in a log that was never migrated.
#[test]
fn after_the_legacy_prefix_the_current_rules_apply() {
    let meta: Value = serde_json::from_str(&read("meta.json")).unwrap();
    let (old, new) = migrated(&meta);
    let mut state = LedgerState::empty();
    for (index, tx) in new.iter().enumerate() {
        state.apply(index as u64, tx).unwrap();
    }
    let next = new.len() as u64;
    for (old_index, code) in [
        (37, "schema_violation"),
        (14, "status.id_outside_namespace"),
    ] {
        let e = state.apply(next, &old[old_index]).unwrap_err();
        assert_eq!(e.code.as_str(), code, "old entry {old_index}");
    }
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

/// Without the migration (today's rules from leaf 0 on, as
/// `LedgerState::new` sets them up for tests), the fixture pins exactly
/// where today's rules part from the old ones: every other entry is still
/// accepted. The migration replays these under the old rules instead.
#[test]
fn the_old_log_is_refused_only_where_the_rules_were_tightened() {
    let meta: Value = serde_json::from_str(&read("meta.json")).unwrap();
    let modules = registry();
    let ctx = TxContext {
        network: meta["network"].as_str().unwrap(),
        modules: &modules,
    };
    let mut state = LedgerState::new(
        meta["node"].as_str().unwrap().to_owned(),
        Some(meta["governance"].as_str().unwrap().to_owned()),
    );
    let mut refused = Vec::new();
    for (index, line) in read("log.jsonl").lines().enumerate() {
        let kind: Value = serde_json::from_str(line).unwrap();
        let outcome = SignedTx::parse(line.as_bytes(), &ctx)
            .and_then(|tx| state.apply(index as u64, &tx).map(|_| ()));
        if let Err(e) = outcome {
            refused.push(format!(
                "{index} {} {}",
                kind["type"].as_str().unwrap(),
                e.code.as_str()
            ));
        }
    }
    // Status list ids must now lie in their issuer's namespace (so the
    // licences pointing at them fail too), and a rotation needs the new
    // key's proof (so what the rotated key signs afterwards fails too).
    let expected = [
        "14 status.list status.id_outside_namespace",
        "15 status.list status.id_outside_namespace",
        "16 licence.register licence.bad_status",
        "17 licence.register licence.bad_status",
        "19 status.list status.id_outside_namespace",
        "37 identity.rotate schema_violation",
        "38 consent.grant consent.not_patient_or_delegate",
        "39 consent.delegate consent.delegate_change_unauthorized",
    ];
    assert_eq!(refused, expected);
}

/// The fixture's entries, replayed into a committed state (the readers'
/// view, with its access index); refused entries change nothing.
fn committed_from_fixture(range: std::ops::Range<usize>, into: Option<Committed>) -> Committed {
    let meta: Value = serde_json::from_str(&read("meta.json")).unwrap();
    let modules = registry();
    let ctx = TxContext {
        network: meta["network"].as_str().unwrap(),
        modules: &modules,
    };
    let mut committed = into.unwrap_or_else(|| {
        Committed::new(LedgerState::new(
            meta["node"].as_str().unwrap().to_owned(),
            Some(meta["governance"].as_str().unwrap().to_owned()),
        ))
    });
    for (index, line) in read("log.jsonl").lines().enumerate() {
        if range.contains(&index) {
            if let Ok(tx) = SignedTx::parse(line.as_bytes(), &ctx) {
                let _ = committed.apply(index as u64, &tx);
            }
        }
    }
    committed
}

/// A snapshot's encoding is canonical: two replays of the same log (whose
/// hash maps iterate in different orders) encode to the same bytes, a
/// decoded snapshot encodes to the bytes it was decoded from, and a state
/// resumed from a snapshot taken half-way and fed the rest of the log
/// equals the state of the whole replay.
#[test]
fn a_snapshot_of_every_type_is_canonical_and_resumes_to_the_same_state() {
    let entries = read("log.jsonl").lines().count();
    let whole = committed_from_fixture(0..entries, None);
    let again = committed_from_fixture(0..entries, None);
    let bytes = snapshot::encode(&whole);
    assert_eq!(bytes, snapshot::encode(&again));
    assert!(!whole.state.records.is_empty() && !whole.state.policy.consents().is_empty());
    assert!(!whole.accesses.is_empty(), "the fixture has access events");

    let decoded = snapshot::decode(&bytes).unwrap();
    assert_eq!(snapshot::encode(&decoded), bytes);

    for cut in [1, entries / 3, entries / 2, entries - 1] {
        let head = committed_from_fixture(0..cut, None);
        let resumed = snapshot::decode(&snapshot::encode(&head)).unwrap();
        let resumed = committed_from_fixture(cut..entries, Some(resumed));
        assert_eq!(
            snapshot::state_digest(&resumed),
            snapshot::state_digest(&whole),
            "resumed at {cut}"
        );
    }
}

/// A sealed snapshot is accepted only with the node's signature, its own
/// digest, and a log that has its size and root.
#[test]
fn a_sealed_snapshot_is_checked_before_it_is_decoded() {
    let entries = read("log.jsonl").lines().count();
    let whole = committed_from_fixture(0..entries, None);
    let key = hygeia_identity::Keypair::generate();
    let node = key.did().to_string();
    let header = snapshot::Header {
        network: "n.test".into(),
        node: node.clone(),
        size: 42,
        root: "ab".repeat(32),
        state_digest: String::new(),
        stored_digest: String::new(),
        state_len: 0,
    };
    let file = snapshot::seal(header, &snapshot::encode(&whole), &key);
    let parsed = snapshot::Unverified::parse(&file).unwrap();
    parsed.check_signature("n.test", &node).unwrap();
    parsed.check_log(42, |_| Some("ab".repeat(32))).unwrap();
    parsed.check_log(50, |_| Some("ab".repeat(32))).unwrap();
    let decoded = parsed.decode().unwrap();
    assert_eq!(
        snapshot::state_digest(&decoded),
        snapshot::state_digest(&whole)
    );

    let code = |e: snapshot::SnapshotError| e.code();
    assert_eq!(
        code(parsed.check_signature("other.test", &node).unwrap_err()),
        "snapshot.foreign"
    );
    let other = hygeia_identity::Keypair::generate().did().to_string();
    assert_eq!(
        code(parsed.check_signature("n.test", &other).unwrap_err()),
        "snapshot.foreign"
    );
    assert_eq!(
        code(parsed.check_log(41, |_| None).unwrap_err()),
        "snapshot.size"
    );
    assert_eq!(
        code(parsed.check_log(42, |_| Some("cd".repeat(32))).unwrap_err()),
        "snapshot.root"
    );

    // One byte of the state changed: the digest no longer matches.
    let mut damaged = file.clone();
    let last = damaged.len() - 2;
    damaged[last] ^= 0x01;
    let parsed = snapshot::Unverified::parse(&damaged).unwrap();
    parsed.check_signature("n.test", &node).unwrap();
    assert_eq!(code(parsed.decode().unwrap_err()), "snapshot.digest");

    // The header changed (a larger size claimed): the signature fails.
    // (The state is stored compressed, so the file is not text: the
    // header's bytes are edited in place.)
    let claim = b"\"size\":42";
    let at = file.windows(claim.len()).position(|w| w == claim).unwrap();
    let mut forged = file.clone();
    forged[at + claim.len() - 1] = b'3';
    let parsed = snapshot::Unverified::parse(&forged).unwrap();
    assert_eq!(parsed.header.size, 43);
    assert_eq!(
        code(parsed.check_signature("n.test", &node).unwrap_err()),
        "snapshot.signature"
    );

    // Signed by another key, under this node's name.
    let stranger = hygeia_identity::Keypair::generate();
    let header = snapshot::Header {
        network: "n.test".into(),
        node: node.clone(),
        size: 42,
        root: "ab".repeat(32),
        state_digest: String::new(),
        stored_digest: String::new(),
        state_len: 0,
    };
    let file = snapshot::seal(header, &snapshot::encode(&whole), &stranger);
    let parsed = snapshot::Unverified::parse(&file).unwrap();
    assert_eq!(
        code(parsed.check_signature("n.test", &node).unwrap_err()),
        "snapshot.signature"
    );

    for junk in [&b""[..], b"hello\n", b"hygeia-state-snapshot/1\n{}\n"] {
        assert_eq!(
            code(snapshot::Unverified::parse(junk).unwrap_err()),
            "snapshot.format"
        );
    }
}
