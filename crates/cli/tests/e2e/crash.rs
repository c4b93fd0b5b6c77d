//! Crash safety: SIGKILL the node under load, again and again; every
//! acknowledged transaction survives, no batch is half-visible, and the log
//! verifies. Then tamper with one stored entry and see `verify` name it.

use crate::common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{attest, batch_body, client, hygeia, NodeProcess};
use hygeia_identity::Keypair;
use hygeia_ledger::merkle::leaf_hash;
use rand::{Rng, SeedableRng};

/// A submission that was sent: its leaf hashes, and its first index if the
/// node acknowledged it.
struct Sent {
    leaves: Vec<String>,
    acked_index: Option<u64>,
}

fn load(url: String, stop: Arc<AtomicBool>, sent: Arc<Mutex<Vec<Sent>>>, seed: u64) {
    let key = Keypair::generate();
    let client = client();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut nonce = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let n = if rng.gen_bool(0.5) {
            1
        } else {
            rng.gen_range(2..40)
        };
        let txs: Vec<Vec<u8>> = (0..n)
            .map(|_| {
                nonce += 1;
                attest(&key, &format!("crash-{seed}-{nonce}"))
            })
            .collect();
        let leaves: Vec<String> = txs.iter().map(|t| hex::encode(leaf_hash(t).0)).collect();
        let (path, body) = if n == 1 {
            ("/v1/transactions", txs[0].clone())
        } else {
            ("/v1/transactions/batch", batch_body(&txs))
        };
        let answer = client
            .post(format!("{url}{path}"))
            .header("content-type", "application/json")
            .body(body)
            .send();
        let acked_index = match answer {
            Ok(r) if r.status().as_u16() == 201 => {
                let v: serde_json::Value = r.json().expect("receipt JSON");
                Some(
                    v["index"]
                        .as_u64()
                        .or(v["first_index"].as_u64())
                        .expect("index in receipt"),
                )
            }
            Ok(r) => panic!(
                "unexpected answer under load: {} {:?}",
                r.status(),
                r.text()
            ),
            Err(_) => None, // the node died mid-request: not acknowledged
        };
        sent.lock().unwrap().push(Sent {
            leaves,
            acked_index,
        });
        if acked_index.is_none() {
            return;
        }
    }
}

#[test]
fn sigkill_under_load_loses_no_acknowledged_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let seed: u64 = rand::random();
    eprintln!("crash test seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let sent = Arc::new(Mutex::new(Vec::new()));
    for round in 0..5u64 {
        let mut node = NodeProcess::start(dir.path());
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..6)
            .map(|w| {
                let (url, stop, sent) = (node.url.clone(), stop.clone(), sent.clone());
                std::thread::spawn(move || load(url, stop, sent, seed ^ (round * 100 + w)))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(rng.gen_range(150..900)));
        node.kill();
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.join().expect("load thread");
        }
    }

    let node = NodeProcess::start(dir.path());
    let size = node.tree_size();
    let sent = sent.lock().unwrap();
    let acked = sent.iter().filter(|s| s.acked_index.is_some()).count();
    assert!(
        acked > 20,
        "the load generator got only {acked} acknowledgements"
    );
    let mut present_unacked = 0;
    for submission in sent.iter() {
        let indexes: Vec<Option<u64>> = submission
            .leaves
            .iter()
            .map(|leaf| {
                let r = node.get(&format!("/v1/transactions/{leaf}"));
                match r.status().as_u16() {
                    200 => Some(
                        r.json::<serde_json::Value>().unwrap()["index"]
                            .as_u64()
                            .unwrap(),
                    ),
                    404 => None,
                    other => panic!("lookup answered {other}"),
                }
            })
            .collect();
        if let Some(first) = submission.acked_index {
            let expected: Vec<Option<u64>> =
                (0..indexes.len() as u64).map(|i| Some(first + i)).collect();
            assert_eq!(
                indexes, expected,
                "an acknowledged submission is missing or moved"
            );
        } else {
            // Not acknowledged: all of it or none of it, never part.
            let present = indexes.iter().filter(|i| i.is_some()).count();
            assert!(
                present == 0 || present == indexes.len(),
                "a submission is half in the log"
            );
            present_unacked += usize::from(present > 0);
        }
    }
    eprintln!("{size} entries, {acked} acknowledged submissions, {present_unacked} durable but unacknowledged");

    let out = hygeia(&["verify", &node.url]);
    assert!(
        out.status.success(),
        "verify failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    drop(node);
    let out = hygeia(&["verify", dir.path().to_str().unwrap()]);
    assert!(
        out.status.success(),
        "verify of the data directory failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn verify_names_an_entry_rewritten_behind_the_nodes_back() {
    let dir = tempfile::tempdir().unwrap();
    let key = Keypair::generate();
    {
        let node = NodeProcess::start(dir.path());
        let txs: Vec<Vec<u8>> = (0..300).map(|i| attest(&key, &format!("t{i}"))).collect();
        assert_eq!(
            node.post_json("/v1/transactions/batch", batch_body(&txs))
                .status()
                .as_u16(),
            201
        );
        let out = hygeia(&["verify", &node.url]);
        assert!(out.status.success());
    }
    // Rewrite entry 123 with another validly signed transaction.
    let ledger = dir.path().join("ledger.redb");
    {
        let (store, _) = hygeia_ledger::LogStore::open_existing(&ledger).unwrap();
        store
            .tamper_with_entry(123, &attest(&key, "forged"))
            .unwrap();
    }
    let out = hygeia(&["verify", dir.path().to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("first bad entry: 123"), "{stdout}");

    // Served over HTTP, the same damage is found the same way.
    let node = NodeProcess::start(dir.path());
    let out = hygeia(&["verify", &node.url]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("first bad entry: 123"), "{stdout}");
}

/// `hygeia verify` compares the node's state snapshots with the replay of
/// the log up to their size: the node's own passes; one with a byte
/// changed, and one properly signed but holding another state, fail.
#[test]
fn verify_checks_state_snapshots_against_the_replay() {
    use hygeia_state::snapshot;
    let dir = tempfile::tempdir().unwrap();
    let key = Keypair::generate();
    let file = dir
        .path()
        .join("snapshots")
        .join(hygeia_node::snapshots::file_name(301));
    {
        let node = NodeProcess::start_with(dir.path(), &["--snapshot-every", "100"]);
        let txs: Vec<Vec<u8>> = (0..300).map(|i| attest(&key, &format!("s{i}"))).collect();
        assert_eq!(
            node.post_json("/v1/transactions/batch", batch_body(&txs))
                .status()
                .as_u16(),
            201
        );
        // Leaf 0 is the genesis entry: the batch ends at size 301, where
        // the snapshot is written, in the background after the batch.
        let waited = std::time::Instant::now();
        while !file.exists() {
            assert!(waited.elapsed() < Duration::from_secs(30), "no snapshot");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let target = dir.path().to_str().unwrap();
    // Every snapshot in the data directory, by default.
    let out = hygeia(&["verify", target]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("equals the replay of the first 301 entries"),
        "{stdout}"
    );

    // One byte of the state changed.
    let good = std::fs::read(&file).unwrap();
    let mut damaged = good.clone();
    let at = damaged.len() - 3;
    damaged[at] ^= 0x04;
    let damaged_file = dir.path().join("damaged.snap");
    std::fs::write(&damaged_file, &damaged).unwrap();
    let out = hygeia(&[
        "verify",
        target,
        "--snapshot",
        damaged_file.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("snapshot.digest"), "{stdout}");

    // Signed by the node key, naming the log's size and root, but holding
    // a state the log does not give.
    let parsed = snapshot::Unverified::parse(&good).unwrap();
    let mut state = parsed.decode().unwrap();
    state.accesses.insert(
        "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK".into(),
        Vec::new(),
    );
    let node_key = Keypair::read_key_file(&dir.path().join("node.key")).unwrap();
    let forged = snapshot::seal(parsed.header.clone(), &snapshot::encode(&state), &node_key);
    let forged_file = dir.path().join("forged.snap");
    std::fs::write(&forged_file, forged).unwrap();
    let out = hygeia(&[
        "verify",
        target,
        "--snapshot",
        forged_file.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("holds another state than the replay of the first 301 entries"),
        "{stdout}"
    );

    // The good one, named explicitly, still passes.
    let out = hygeia(&["verify", target, "--snapshot", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// One patient's transaction Bundles, POSTed in order until the node dies;
/// returns the entries' URLs (`Type/id`) of each acknowledged Bundle.
fn fhir_load(url: String, token: String, bundles: Vec<serde_json::Value>) -> Vec<Vec<String>> {
    let client = client();
    let mut acked = Vec::new();
    for bundle in bundles {
        let entries: Vec<String> = bundle["entry"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| e["request"]["url"].as_str().expect("url").to_owned())
            .collect();
        let answer = client
            .post(format!("{url}/fhir"))
            .bearer_auth(&token)
            .header("content-type", "application/fhir+json")
            .body(bundle.to_string())
            .send();
        match answer {
            Ok(r) if r.status().as_u16() == 200 => acked.push(entries),
            Ok(r) => panic!(
                "unexpected answer under load: {} {:?}",
                r.status(),
                r.text()
            ),
            Err(_) => break, // the node died mid-request: not acknowledged
        }
    }
    acked
}

/// SIGKILL during FHIR ingest: every resource of an acknowledged
/// transaction Bundle reads back after the restart (its ciphertext from a
/// vault segment, its keys from the slot file, its `record` entry in the
/// log), though the node was killed with Bundles in flight, again and
/// again (each start cuts what a kill left half-appended).
#[test]
fn sigkill_during_fhir_ingest_loses_no_acknowledged_resource() {
    use common::signed::{did, login, Network};
    use hygeia_fhir::synthetic::{generate_patient, transaction_bundles};
    let mut net = Network::start(&[]);
    let governance = did(&net.governance);
    let seed: u64 = rand::random();
    eprintln!("FHIR crash test seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut patients = Vec::new();
    let mut acked: Vec<(usize, Vec<String>)> = Vec::new();
    for round in 0..3u64 {
        let workers: Vec<_> = (0..3u64)
            .map(|w| {
                let key = Keypair::generate();
                let mut gen = rand::rngs::StdRng::seed_from_u64(seed ^ (round * 10 + w));
                let patient = generate_patient(&mut gen, round * 10 + w, &did(&key), 400);
                let bundles = transaction_bundles(&patient.resources, 20);
                let token = login(&net, &key, "TREAT");
                patients.push(key);
                let (url, n) = (net.node.url.clone(), patients.len() - 1);
                std::thread::spawn(move || (n, fhir_load(url, token, bundles)))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(rng.gen_range(300..1500)));
        net.node.kill();
        for w in workers {
            let (n, bundles) = w.join().expect("load thread");
            acked.extend(bundles.into_iter().map(|b| (n, b)));
        }
        net.node =
            NodeProcess::start_with(&net.node.data_dir, &["--governance", governance.as_str()]);
    }
    let resources: usize = acked.iter().map(|(_, b)| b.len()).sum();
    assert!(
        acked.len() >= 3,
        "only {} Bundles were acknowledged",
        acked.len()
    );
    let tokens: Vec<String> = patients
        .iter()
        .map(|key| login(&net, key, "TREAT"))
        .collect();
    let client = client();
    for (n, entries) in &acked {
        for entry in entries {
            let r = client
                .get(format!("{}/fhir/{entry}", net.node.url))
                .bearer_auth(&tokens[*n])
                .send()
                .expect("GET");
            let status = r.status().as_u16();
            let text = r.text().expect("body");
            assert_eq!(status, 200, "acknowledged {entry} is lost: {text}");
            let body: serde_json::Value = serde_json::from_str(&text).expect("JSON");
            assert_eq!(
                format!(
                    "{}/{}",
                    body["resourceType"].as_str().unwrap_or(""),
                    body["id"].as_str().unwrap_or("")
                ),
                *entry
            );
        }
    }
    eprintln!(
        "{} acknowledged Bundles ({resources} resources) read back after 3 kills",
        acked.len()
    );
}
