//! The log end to end in process: append in batches, serve tiles, prove,
//! reopen, verify, detect tampering.

use std::sync::Arc;

use hygeia_identity::Keypair;
use hygeia_ledger::checkpoint::CheckpointVerifier;
use hygeia_ledger::merkle::{leaf_hash, RootBuilder};
use hygeia_ledger::proof::{verify_consistency, verify_inclusion};
use hygeia_ledger::store::LogWriter;
use hygeia_ledger::tiles::TilePath;
use hygeia_ledger::tx::TxContext;
use hygeia_ledger::verify::{verify_log, StoreSource, VerifyError, VerifyOptions};
use hygeia_ledger::{CheckpointSigner, ErrorCode, LogStore, ModuleRegistry, SignedTx, TxBuilder};
use serde_json::json;

const ORIGIN: &str = "test.example/log";

fn node_key() -> Keypair {
    Keypair::from_seed(&[9u8; 32])
}

fn signed(key: &Keypair, nonce: u64) -> SignedTx {
    let raw = TxBuilder {
        network: ORIGIN,
        tx_type: "attest",
        nonce: format!("n{nonce}"),
        body: json!({"label": "test", "subject": format!("sha256:{:064x}", nonce)}),
    }
    .sign(key);
    let modules = ModuleRegistry::with_builtins();
    SignedTx::parse(
        &raw,
        &TxContext {
            network: ORIGIN,
            modules: &modules,
        },
    )
    .unwrap()
}

fn open(dir: &std::path::Path) -> (Arc<LogStore>, LogWriter) {
    let store = Arc::new(LogStore::open(&dir.join("log.redb"), ORIGIN).unwrap());
    let signer = CheckpointSigner::new(ORIGIN, node_key()).unwrap();
    let writer = LogWriter::open(store.clone(), signer).unwrap();
    (store, writer)
}

fn verifier() -> CheckpointVerifier {
    CheckpointVerifier::new(
        &CheckpointSigner::new(ORIGIN, node_key())
            .unwrap()
            .verifier_key(),
    )
    .unwrap()
}

#[test]
fn appends_proves_reopens_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let key = Keypair::generate();
    let txs: Vec<SignedTx> = (0..1300).map(|i| signed(&key, i)).collect();
    let mut roots = vec![RootBuilder::new().root()];
    let mut builder = RootBuilder::new();
    for tx in &txs {
        builder.push(tx.leaf_hash());
        roots.push(builder.root());
    }

    // Batches of awkward sizes, across a reopen in the middle.
    let cuts = [0usize, 1, 2, 255, 256, 257, 600, 700, 1023, 1300];
    let (mut store, mut writer) = open(dir.path());
    for pair in cuts.windows(2) {
        if pair[0] == 600 {
            drop(writer);
            drop(store);
            (store, writer) = open(dir.path());
            assert_eq!(writer.checkpoint().size, 600);
        }
        let slice = &txs[pair[0]..pair[1]];
        let outcome = writer.append_batch(&[slice]).unwrap();
        assert_eq!(outcome.results[0].as_ref().unwrap(), &(pair[0] as u64));
        assert_eq!(outcome.checkpoint.size, pair[1] as u64);
        assert_eq!(
            outcome.checkpoint.root, roots[pair[1]],
            "root after {}",
            pair[1]
        );
    }

    let snapshot = store.snapshot().unwrap();
    assert_eq!(snapshot.size(), 1300);
    for size in [1u64, 2, 255, 256, 257, 700, 1300] {
        assert_eq!(snapshot.root_at(size).unwrap(), roots[size as usize]);
        for index in [0, size / 3, size - 1] {
            let proof = snapshot.inclusion_proof(index, size).unwrap();
            verify_inclusion(
                txs[index as usize].leaf_hash(),
                index,
                size,
                &proof,
                roots[size as usize],
            )
            .unwrap();
        }
        for old in [1u64, size / 2 + 1, size] {
            let proof = snapshot.consistency_proof(old, size).unwrap();
            verify_consistency(old, roots[old as usize], size, roots[size as usize], &proof)
                .unwrap();
        }
    }
    assert!(snapshot.inclusion_proof(1300, 1300).is_err());
    assert!(snapshot.inclusion_proof(0, 1301).is_err());
    assert!(snapshot.consistency_proof(0, 10).is_err());
    assert!(snapshot.consistency_proof(11, 10).is_err());
    assert_eq!(snapshot.index_of(&txs[777].leaf_hash()).unwrap(), Some(777));
    assert_eq!(
        snapshot.entry(5).unwrap().unwrap(),
        txs[5].canonical_bytes()
    );

    // Tiles: full and partial, and nothing beyond the tree.
    let tile = |s: &str| snapshot.tile(&TilePath::parse(s).unwrap()).unwrap();
    let level0 = tile("tile/0/000").unwrap();
    assert_eq!(&level0[..32], &txs[0].leaf_hash().0);
    assert_eq!(tile("tile/0/005.p/20").unwrap().len(), 20 * 32);
    assert!(tile("tile/0/005").is_none());
    assert!(tile("tile/0/005.p/21").is_none());
    assert_eq!(
        tile("tile/0/004.p/3").unwrap(),
        tile("tile/0/004").unwrap()[..96].to_vec()
    );
    assert_eq!(tile("tile/1/000.p/5").unwrap().len(), 5 * 32);
    assert!(tile("tile/2/000.p/1").is_none());
    assert!(tile("tile/entries/005.p/20").is_some());
    assert!(tile("tile/entries/006.p/1").is_none());

    let modules = ModuleRegistry::with_builtins();
    let verifier = verifier();
    let old_note = snapshot.checkpoint().unwrap().note.clone();
    let report = verify_log(
        &StoreSource {
            snapshot: &snapshot,
        },
        &VerifyOptions {
            verifier: &verifier,
            modules: &modules,
            since: Some(&old_note),
            parallel_bundles: 4,
            replay: None,
        },
        &|_| {},
    )
    .unwrap();
    assert_eq!(report.entries, 1300);
}

#[test]
fn refuses_replays_per_submission() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, mut writer) = open(dir.path());
    let key = Keypair::generate();
    let a = signed(&key, 1);
    let b = signed(&key, 2);
    writer.append_batch(&[std::slice::from_ref(&a)]).unwrap();
    // A replay, a duplicate inside one submission, a duplicate across two
    // submissions of one batch: each refused whole, the rest accepted.
    let outcome = writer
        .append_batch(&[
            &[b.clone(), a.clone()],
            &[b.clone(), b.clone()],
            std::slice::from_ref(&b),
            std::slice::from_ref(&b),
        ])
        .unwrap();
    let codes: Vec<Option<ErrorCode>> = outcome
        .results
        .iter()
        .map(|r| r.as_ref().err().map(|e| e.code))
        .collect();
    assert_eq!(
        codes,
        vec![
            Some(ErrorCode::Replay),
            Some(ErrorCode::Replay),
            None,
            Some(ErrorCode::Replay)
        ]
    );
    assert_eq!(outcome.checkpoint.size, 2);
    // A batch with nothing accepted changes nothing.
    let outcome = writer.append_batch(&[&[a]]).unwrap();
    assert_eq!(outcome.checkpoint.size, 2);
}

#[test]
fn verify_names_a_tampered_entry() {
    let dir = tempfile::tempdir().unwrap();
    let key = Keypair::generate();
    let txs: Vec<SignedTx> = (0..600).map(|i| signed(&key, i)).collect();
    {
        let (_store, mut writer) = open(dir.path());
        writer.append_batch(&[&txs]).unwrap();
    }
    let (store, _) = LogStore::open_existing(&dir.path().join("log.redb")).unwrap();
    let modules = ModuleRegistry::with_builtins();
    let verifier = verifier();
    let options = VerifyOptions {
        verifier: &verifier,
        modules: &modules,
        since: None,
        parallel_bundles: 2,
        replay: None,
    };

    // Another well-signed transaction in place of entry 300: signatures pass,
    // the hash tiles do not.
    let forged = signed(&key, 100_000);
    store
        .tamper_with_entry(300, forged.canonical_bytes())
        .unwrap();
    let snapshot = store.snapshot().unwrap();
    let err = verify_log(
        &StoreSource {
            snapshot: &snapshot,
        },
        &options,
        &|_| {},
    )
    .unwrap_err();
    assert_eq!(err.bad_index(), Some(300), "{err}");
    drop(snapshot);

    // One changed byte in entry 301: its signature fails.
    let mut changed = txs[301].canonical_bytes().to_vec();
    let pos = changed.iter().position(|&b| b == b'n').unwrap();
    changed[pos] = b'm';
    store
        .tamper_with_entry(300, txs[300].canonical_bytes())
        .unwrap();
    store.tamper_with_entry(301, &changed).unwrap();
    let snapshot = store.snapshot().unwrap();
    let err = verify_log(
        &StoreSource {
            snapshot: &snapshot,
        },
        &options,
        &|_| {},
    )
    .unwrap_err();
    assert!(
        matches!(err, VerifyError::BadEntry { index: 301, .. }),
        "{err}"
    );
}

#[test]
fn leaf_hash_is_rfc6962() {
    // SHA-256(0x00 || "L123456"), from RFC 6962 test data.
    assert_eq!(
        hex::encode(leaf_hash(b"L123456").0),
        "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
    );
}

/// Reading from an index on (a restart after a state snapshot) visits
/// exactly the entries from that index to the end, across bundle edges.
#[test]
fn entries_are_read_from_any_index_to_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let key = Keypair::generate();
    let txs: Vec<SignedTx> = (0..600).map(|i| signed(&key, i)).collect();
    let (store, mut writer) = open(dir.path());
    writer.append_batch(&[&txs]).unwrap();
    let view = store.snapshot().unwrap();
    for start in [0u64, 1, 255, 256, 257, 511, 512, 599, 600, 700] {
        let mut seen = Vec::new();
        view.for_each_entry_from(start, |index, entry| {
            seen.push((index, entry.to_vec()));
            Ok(())
        })
        .unwrap();
        let expected: Vec<(u64, Vec<u8>)> = (start.min(600)..600)
            .map(|i| (i, txs[i as usize].canonical_bytes().to_vec()))
            .collect();
        assert_eq!(seen, expected, "from {start}");
    }
}
