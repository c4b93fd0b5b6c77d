//! Cosigned checkpoints and the C2SP tlog-witness `add-checkpoint`
//! endpoint, from the log's, the peer's and a stranger's side.

use axum::body::Body;
use axum::http::{header, Request};
use hygeia_identity::Keypair;
use hygeia_ledger::checkpoint::CheckpointSigner;
use hygeia_ledger::cosignature::{
    parse_signature_lines, AddCheckpoint, CosignatureVerifier, CosignedNote,
};
use hygeia_ledger::merkle::{leaf_hash, node_hash, Hash};
use serde_json::json;

use super::{did, Answer, Net, NETWORK};

const OUTSIDE: &str = "outside.example/log";

/// A log outside the network, kept in memory: its leaves and its key.
struct Outside {
    leaves: Vec<Hash>,
    seed: [u8; 32],
    signer: CheckpointSigner,
}

impl Outside {
    fn new() -> Outside {
        let seed = rand::random::<[u8; 32]>();
        Outside {
            leaves: Vec::new(),
            seed,
            signer: CheckpointSigner::new(OUTSIDE, Keypair::from_seed(&seed)).unwrap(),
        }
    }

    fn grow(&mut self, to: usize, salt: &str) {
        while self.leaves.len() < to {
            let n = self.leaves.len();
            self.leaves.push(leaf_hash(format!("{salt}{n}").as_bytes()));
        }
    }

    fn checkpoint(&self, size: usize) -> Vec<u8> {
        self.signer
            .sign(size as u64, root(&self.leaves[..size]))
            .note
    }

    /// An `add-checkpoint` body from `old` to `size`.
    fn request(&self, old: usize, size: usize) -> Vec<u8> {
        let proof = if old == 0 || old == size {
            Vec::new()
        } else {
            subproof(old, &self.leaves[..size], true)
        };
        body(old as u64, &proof, &self.checkpoint(size))
    }
}

fn body(old: u64, proof: &[Hash], note: &[u8]) -> Vec<u8> {
    let checkpoint = CosignedNote::parse(note).unwrap();
    AddCheckpoint {
        old,
        proof: proof.to_vec(),
        checkpoint,
        note: note.to_vec(),
    }
    .to_bytes()
}

/// RFC 9162 MTH.
fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => hygeia_ledger::merkle::empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(root(&leaves[..k]), root(&leaves[k..]))
        }
    }
}

fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// RFC 9162 SUBPROOF(m, D[n], b), the test's own independent prover.
fn subproof(m: usize, leaves: &[Hash], complete: bool) -> Vec<Hash> {
    let n = leaves.len();
    if m == n {
        return if complete {
            Vec::new()
        } else {
            vec![root(leaves)]
        };
    }
    let k = split(n);
    if m <= k {
        let mut proof = subproof(m, &leaves[..k], complete);
        proof.push(root(&leaves[k..]));
        proof
    } else {
        let mut proof = subproof(m - k, &leaves[k..], false);
        proof.push(root(&leaves[..k]));
        proof
    }
}

/// A node witnessing [`OUTSIDE`], whose key the test holds.
fn witness_for(outside: &Outside) -> Net {
    let vkey = outside.signer.verifier_key();
    Net::with_config(move |config| {
        std::fs::create_dir_all(&config.data_dir).unwrap();
        std::fs::write(
            config.data_dir.join(crate::witness::WITNESS_LOGS_FILE),
            format!("# an outside log\n{vkey}\n"),
        )
        .unwrap();
    })
}

async fn add(net: &Net, body: Vec<u8>) -> Answer {
    net.send(
        Request::post("/add-checkpoint")
            .body(Body::from(body))
            .unwrap(),
    )
    .await
}

fn cosigner(net: &Net) -> CosignatureVerifier {
    CosignatureVerifier::for_did(&net.node.node_did).unwrap()
}

/// 409 with the latest cosigned size as `text/x.tlog.size`.
fn assert_conflict(answer: &Answer, size: u64) {
    assert_eq!(answer.status, 409, "{}", answer.text());
    assert_eq!(answer.headers[header::CONTENT_TYPE], "text/x.tlog.size");
    assert_eq!(answer.text(), format!("{size}\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_carries_the_nodes_own_cosignature() {
    let net = Net::start();
    let answer = net.get("/checkpoint").await;
    assert_eq!(answer.status, 200);
    let note = CosignedNote::parse(&answer.body).unwrap();
    assert_eq!(note.size, net.size());
    let quorum = note.check_quorum(&[cosigner(&net)], 1).unwrap();
    assert_eq!(quorum.valid.len(), 1);
    // The log's own signature still verifies as before.
    hygeia_ledger::checkpoint::CheckpointVerifier::new(&net.node.verifier_key)
        .unwrap()
        .verify(&answer.body)
        .unwrap();
    // The node's cosigner key is published.
    let info = net.get("/v1/node").await.json();
    assert_eq!(
        info["cosigner_key"].as_str().unwrap(),
        cosigner(&net).vkey()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn witnesses_an_outside_log_by_the_specs_status_codes() {
    let mut log = Outside::new();
    log.grow(10, "a");
    let net = witness_for(&log);
    let verifier = cosigner(&net);

    // First contact: old size 0, no proof.
    let answer = add(&net, log.request(0, 3)).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let lines = parse_signature_lines(&answer.body).unwrap();
    assert_eq!(lines.len(), 1);
    let note = CosignedNote::parse(&log.checkpoint(3)).unwrap();
    verifier.verify(&note.text, &lines[0]).unwrap();

    // A client that does not know the size learns it.
    assert_conflict(&add(&net, log.request(0, 5)).await, 3);
    // Growth with a consistency proof.
    assert_eq!(add(&net, log.request(3, 7)).await.status, 200);
    // The same checkpoint again is fine (and cosigned again).
    assert_eq!(add(&net, log.request(7, 7)).await.status, 200);
    // Old size above the checkpoint's: 400.
    let answer = add(&net, body(7, &[], &log.checkpoint(5))).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (400, "witness.old_size_too_large")
    );
    // A rollback: a smaller checkpoint with the old size it had.
    assert_conflict(&add(&net, log.request(3, 5)).await, 7);

    // A fork signed by the log's own key: same size, another root.
    let mut fork = Outside {
        leaves: log.leaves.clone(),
        seed: log.seed,
        signer: CheckpointSigner::new(OUTSIDE, Keypair::from_seed(&log.seed)).unwrap(),
    };
    fork.leaves[6] = leaf_hash(b"rewritten");
    let answer = add(&net, fork.request(7, 7)).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (409, "witness.root_mismatch")
    );
    // A fork that grows: its proof does not lead from the cosigned root.
    let answer = add(&net, fork.request(7, 9)).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (422, "witness.bad_proof")
    );
    // A proof of the wrong length or for other sizes.
    let mut proof = subproof(3, &log.leaves[..9], true);
    let answer = add(&net, body(7, &proof, &log.checkpoint(9))).await;
    assert_eq!(answer.status, 422);
    proof.clear();
    let answer = add(&net, body(7, &proof, &log.checkpoint(9))).await;
    assert_eq!(answer.status, 422);
    // None of that moved the witness.
    assert_conflict(&add(&net, log.request(0, 9)).await, 7);

    // Unknown origin: 404. Known origin, unknown key: 403.
    let stranger = CheckpointSigner::new("stranger.example/log", Keypair::generate()).unwrap();
    let note = stranger.sign(1, leaf_hash(b"s")).note;
    let answer = add(&net, body(0, &[], &note)).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (404, "witness.unknown_origin")
    );
    let impostor = CheckpointSigner::new(OUTSIDE, Keypair::generate()).unwrap();
    let note = impostor.sign(9, root(&log.leaves[..9])).note;
    let answer = add(&net, body(7, &subproof(7, &log.leaves[..9], true), &note)).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (403, "witness.unknown_key")
    );

    // Acknowledged means durable: after a restart the witness is at 7.
    let net = net.restart();
    assert_conflict(&add(&net, log.request(0, 9)).await, 7);
    assert_eq!(add(&net, log.request(7, 10)).await.status, 200);
}

/// The spec's race: concurrent requests from the same old size. Only one
/// may pass; the others learn the new size. Without an atomic check and
/// update, several would be cosigned and the last write could roll the
/// witness back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_cannot_roll_the_witness_back() {
    let mut log = Outside::new();
    log.grow(20, "r");
    let net = std::sync::Arc::new(witness_for(&log));
    let mut tasks = Vec::new();
    for size in 1..=20 {
        let (net, body) = (net.clone(), log.request(0, size));
        tasks.push(tokio::spawn(async move { (size, add(&net, body).await) }));
    }
    let mut cosigned = Vec::new();
    for task in tasks {
        let (size, answer) = task.await.unwrap();
        match answer.status {
            200 => cosigned.push(size as u64),
            409 => {}
            other => panic!("{other}: {}", answer.text()),
        }
    }
    assert_eq!(cosigned.len(), 1, "{cosigned:?}");
    assert_conflict(&add(&net, log.request(0, 20)).await, cosigned[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_oversized_bodies_are_refused_and_change_nothing() {
    let mut log = Outside::new();
    log.grow(4, "g");
    let net = witness_for(&log);
    assert_eq!(add(&net, log.request(0, 2)).await.status, 200);
    let note = log.checkpoint(4);
    let mut cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"old 2\n".to_vec(),
        b"\xff\xfe\x00garbage".to_vec(),
        [b"old 02\n\n".as_slice(), &note].concat(),
        [b"old 2\nnot-base64\n\n".as_slice(), &note].concat(),
        [b"old 2\n\n".as_slice(), b"outside.example/log\n4\n\n"].concat(),
        [
            b"old 2\n".as_slice(),
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
                .repeat(64)
                .as_bytes(),
            b"\n",
            &note,
        ]
        .concat(),
    ];
    // A checkpoint line with an absurd size or a note past the limit.
    cases.push(body_raw(
        "old 2\n\noutside.example/log\n99999999999999999999999\nAAAA\n\n",
    ));
    for case in cases {
        let answer = add(&net, case.clone()).await;
        assert_eq!(
            answer.status,
            400,
            "{:?}: {}",
            String::from_utf8_lossy(&case),
            answer.text()
        );
        assert_eq!(answer.code(), "witness.malformed");
    }
    let huge = vec![b'a'; hygeia_ledger::cosignature::MAX_ADD_CHECKPOINT + 1];
    assert_eq!(add(&net, huge).await.status, 413);
    assert_conflict(&add(&net, log.request(0, 4)).await, 2);
}

fn body_raw(text: &str) -> Vec<u8> {
    text.as_bytes().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_cannot_make_a_node_cosign_a_fork_of_its_own_log() {
    let (net, _cast) = Net::network().await;
    let size = net.size();
    let own = net.node.sequencer.latest_checkpoint();
    // A stranger's key is not a custodian: 403.
    let stranger = CheckpointSigner::new(NETWORK, Keypair::generate()).unwrap();
    let answer = add(&net, body(size, &[], &stranger.sign(size, own.root).note)).await;
    assert_eq!(answer.status, 403, "{}", answer.text());
    // Even the custodian's own key cannot get another root cosigned: the
    // witness counts its own log as observed.
    let custodian =
        CheckpointSigner::new(NETWORK, hygeia_state::testing::copy(&net.node.key)).unwrap();
    assert_conflict(&add(&net, body(0, &[], &own.note)).await, size);
    let answer = add(
        &net,
        body(size, &[], &custodian.sign(size, leaf_hash(b"x")).note),
    )
    .await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (409, "witness.root_mismatch")
    );
    let answer = add(
        &net,
        body(
            size,
            &[leaf_hash(b"p")],
            &custodian.sign(size + 5, leaf_hash(b"x")).note,
        ),
    )
    .await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (422, "witness.bad_proof")
    );
    // Its own latest checkpoint, as the log's node sends it: cosigned.
    let answer = add(&net, body(size, &[], &own.note)).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    // No write happened to the log.
    assert_eq!(net.size(), size);
}

/// Two custodians of one network (the second holding a copy of the
/// first's log, as a replica does): the log's node asks its peer to
/// witness its checkpoint, and serves both cosignatures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_custodians_cosignature_is_collected_and_served() {
    let (net, cast) = Net::network().await;
    let peer_key = Keypair::generate();
    net.submit_ok(
        &cast.governance,
        "network.custodian",
        json!({"op": "add", "key": did(&peer_key)}),
    )
    .await;
    // The peer: the same log, its own node key.
    let peer_dir = tempfile::tempdir().unwrap();
    for file in [crate::config::LEDGER_FILE, crate::config::NETWORK_FILE] {
        std::fs::copy(
            net.node.config.data_dir.join(file),
            peer_dir.path().join(file),
        )
        .unwrap();
    }
    peer_key
        .write_key_file(&peer_dir.path().join(crate::config::NODE_KEY_FILE))
        .unwrap();
    let mut config = net.node.config.clone();
    config.data_dir = peer_dir.path().to_path_buf();
    config.governance = None;
    let peer_node = std::sync::Arc::new(crate::node::Node::open(config).unwrap());
    let peer = Net {
        app: crate::api::router(peer_node.clone()),
        node: peer_node,
        governance: hygeia_state::testing::copy(&cast.governance),
        _dir: tempfile::tempdir().unwrap(),
    };
    assert_eq!(peer.size(), net.size());

    let custodians: Vec<CosignatureVerifier> = net
        .node
        .state
        .read()
        .state
        .network
        .custodians()
        .map(|d| CosignatureVerifier::for_did(d).unwrap())
        .collect();
    assert_eq!(custodians.len(), 2);
    let served = net.get("/checkpoint").await.body;
    let note = CosignedNote::parse(&served).unwrap();
    assert_eq!(
        note.check_quorum(&custodians, 2).unwrap_err().code(),
        "cosignature.quorum_not_met"
    );

    // The log's node submits its checkpoint to the peer's witness.
    let answer = add(&peer, body(0, &[], &served)).await;
    assert_conflict(&answer, note.size);
    let answer = add(&peer, body(note.size, &[], &served)).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let lines = answer.body.to_vec();

    let collect = |body: Vec<u8>| {
        net.send(
            Request::post("/v1/checkpoint/cosignatures")
                .body(Body::from(body))
                .unwrap(),
        )
    };
    // A tampered line by a custodian is refused whole.
    let mut tampered = CosignedNote::parse(&[served.as_ref(), &lines].concat()).unwrap();
    let sig = tampered.signatures.pop().unwrap();
    let mut bytes = sig.signature().to_vec();
    bytes[20] ^= 1;
    tampered.add(signed_note::Signature::new(sig.name().to_owned(), sig.id(), bytes).unwrap());
    let answer = collect(tampered.to_bytes()).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (422, "cosignature.invalid")
    );
    // A checkpoint that is not this log's: refused.
    let stranger = CheckpointSigner::new(NETWORK, Keypair::generate()).unwrap();
    let answer = collect(stranger.sign(note.size, leaf_hash(b"f")).note).await;
    assert_eq!(answer.status, 409, "{}", answer.text());

    // The real answer is kept, and served with the checkpoint.
    let answer = collect([served.as_ref(), &lines].concat()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["cosignatures"], 2);
    let served = net.get("/checkpoint").await.body;
    let quorum = CosignedNote::parse(&served)
        .unwrap()
        .check_quorum(&custodians, 2)
        .unwrap();
    assert_eq!(quorum.valid.len(), 2);
    // A cosignature by a key outside the custodian set is not kept.
    let outsider = Keypair::generate();
    let outsider =
        hygeia_ledger::cosignature::Cosigner::new(outsider.did().as_str(), outsider).unwrap();
    let mut with_outsider = CosignedNote::parse(&served).unwrap();
    with_outsider.add(outsider.cosign(&with_outsider.text, 1).unwrap());
    let answer = collect(with_outsider.to_bytes()).await;
    assert_eq!(answer.json()["cosignatures"], 2, "{}", answer.text());
    // Durable: after a restart the collected cosignature is still served.
    let net = net.restart();
    let served = net.get("/checkpoint").await.body;
    CosignedNote::parse(&served)
        .unwrap()
        .check_quorum(&custodians, 2)
        .unwrap();
}
