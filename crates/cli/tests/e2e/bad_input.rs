//! Bad input that needs the `hygeia` command itself: an old data directory
//! refused at start and migrated, and `hygeia verify` naming a bad entry.
//! (Bad input over HTTP is tested through the router in crates/node:
//! `api::tests::submissions`.)

use crate::common;

use common::{hygeia, NETWORK};
use hygeia_identity::Keypair;
use hygeia_ledger::TxBuilder;
use serde_json::{json, Value};

/// A data directory made before logs began with a genesis entry: the
/// log of crates/state/tests/fixtures/port-v1, written by the code of its
/// time, with its node key (seed [1; 32]) and network.json.
fn old_data_directory(dir: &std::path::Path) -> (String, usize) {
    use hygeia_ledger::store::LogWriter;
    use hygeia_ledger::tx::TxContext;
    use hygeia_ledger::{CheckpointSigner, LogStore, SignedTx};
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../state/tests/fixtures/port-v1"
    );
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{fixture}/meta.json")).unwrap())
            .unwrap();
    let network = meta["network"].as_str().unwrap().to_owned();
    let node = Keypair::from_seed(&[1; 32]);
    node.write_key_file(&dir.join("node.key")).unwrap();
    std::fs::write(
        dir.join("network.json"),
        json!({"network": network, "governance": meta["governance"]}).to_string(),
    )
    .unwrap();
    let modules = hygeia_state::txs::registry();
    let ctx = TxContext {
        network: &network,
        modules: &modules,
    };
    let txs: Vec<SignedTx> = std::fs::read_to_string(format!("{fixture}/log.jsonl"))
        .unwrap()
        .lines()
        .map(|line| SignedTx::parse(line.as_bytes(), &ctx).unwrap())
        .collect();
    let store = std::sync::Arc::new(LogStore::open(&dir.join("ledger.redb"), &network).unwrap());
    let signer = CheckpointSigner::new(&network, Keypair::from_seed(&[1; 32])).unwrap();
    let mut writer = LogWriter::open(store, signer).unwrap();
    let submissions: Vec<&[SignedTx]> = txs.iter().map(std::slice::from_ref).collect();
    writer.append_batch(&submissions).unwrap();
    (network, txs.len())
}

#[test]
fn an_old_data_directory_is_refused_then_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let (network, entries) = old_data_directory(dir.path());
    let data_dir = dir.path().to_str().unwrap();

    let refused = hygeia(&[
        "serve",
        "--data-dir",
        data_dir,
        "--network",
        &network,
        "--listen",
        "127.0.0.1:0",
    ]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains(&format!("hygeia migrate --data-dir {data_dir}")),
        "{stderr}"
    );

    let migrated = hygeia(&["migrate", "--data-dir", data_dir]);
    let stdout = String::from_utf8_lossy(&migrated.stdout);
    assert!(
        migrated.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    let network_id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("network id: "))
        .expect("the migration prints the network id")
        .to_owned();
    assert!(dir.path().join("pre-genesis-backup/ledger.redb").exists());

    // The new log verifies from nothing but itself, its old entries under
    // the rules they were admitted under, and pinned to its genesis.
    let verified = hygeia(&["verify", data_dir, "--genesis", &network_id]);
    let stdout = String::from_utf8_lossy(&verified.stdout);
    assert!(verified.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!("OK: {} entries verified", entries + 1)),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{entries} entries migrated")),
        "{stdout}"
    );
    let wrong = hygeia(&["verify", data_dir, "--genesis", &"00".repeat(32)]);
    assert!(!wrong.status.success());

    // Migrating twice is refused and changes nothing.
    let again = hygeia(&["migrate", "--data-dir", data_dir]);
    assert!(!again.status.success());
    let still = hygeia(&["verify", data_dir, "--genesis", &network_id]);
    assert!(still.status.success());
}

/// `hygeia verify` needs nothing but the log: a `record` signed by a key
/// outside the custodian set, or a log with no genesis, is named with its
/// index and the rule's code.
#[test]
fn verify_names_an_entry_signed_outside_the_custodian_set() {
    use hygeia_ledger::store::LogWriter;
    use hygeia_ledger::tx::TxContext;
    use hygeia_ledger::{CheckpointSigner, LogStore, SignedTx};
    use hygeia_state::network::{genesis_tx, Genesis};
    let modules = hygeia_state::txs::registry();
    let ctx = TxContext {
        network: NETWORK,
        modules: &modules,
    };
    let node = Keypair::generate();
    let stranger = Keypair::generate();
    let patient = stranger.did().to_string();
    let record = TxBuilder {
        network: NETWORK,
        tx_type: "record",
        nonce: "r".into(),
        body: json!({"patient": patient, "author": patient, "category": "lab",
                     "resource_type": "Observation", "commitment": "ab".repeat(32)}),
    }
    .sign(&stranger);
    let record = SignedTx::parse(&record, &ctx).unwrap();
    let genesis = Genesis {
        governance: vec![],
        custodians: vec![node.did().to_string()],
        legacy: None,
    };
    let genesis = genesis_tx(NETWORK, &node, &genesis, &modules).unwrap();
    for (log, bad, code) in [
        (vec![genesis, record.clone()], 1, "custodian_only"),
        (vec![record], 0, "genesis.missing"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        node.write_key_file(&dir.path().join("node.key")).unwrap();
        let store =
            std::sync::Arc::new(LogStore::open(&dir.path().join("ledger.redb"), NETWORK).unwrap());
        let signer =
            CheckpointSigner::new(NETWORK, Keypair::from_seed(&node.as_dalek().to_bytes()))
                .unwrap();
        let mut writer = LogWriter::open(store, signer).unwrap();
        let submissions: Vec<&[SignedTx]> = log.iter().map(std::slice::from_ref).collect();
        writer.append_batch(&submissions).unwrap();
        drop(writer);
        let out = hygeia(&["verify", dir.path().to_str().unwrap()]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{stdout}");
        assert!(
            stdout.contains(&format!("first bad entry: {bad}")),
            "{stdout}"
        );
        assert!(stdout.contains(code), "{stdout}");
    }
}
