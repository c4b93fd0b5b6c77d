//! Four organizations' nodes in commonware's deterministic runtime, over
//! its simulated p2p network: ordering, partition, a byzantine proposer,
//! garbage, equivocation.

// Node `i` uses key `i` and data directory `i`.
#![allow(clippy::needless_range_loop)]

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::Arc;
use std::time::Duration;

use commonware_consensus::simplex::mocks::conflicter::Conflicter;
use commonware_cryptography::{ed25519::PublicKey, Sha256, Signer as _};
use commonware_p2p::simulated::{self, Link, Network, Oracle};
use commonware_p2p::{Recipients, Sender as _};
use commonware_runtime::deterministic::{self, Context};
use commonware_runtime::{Clock, Quota, Runner, Spawner, Supervisor as _};
use commonware_utils::{probability, NZUsize, NZU32};
use hygeia_identity::Keypair;
use hygeia_ledger::store::LogWriter;
use hygeia_ledger::tx::TxContext;
use hygeia_ledger::{CheckpointSigner, LogStore, NoState, Orderer, SignedTx, TxBuilder};
use hygeia_state::network::{genesis_tx, Genesis};
use hygeia_state::testing::{did, modules, NETWORK};
use serde_json::json;

use crate::application::MAX_REMOTE_PENDING;
use crate::{start, BftOrderer, Channels, Config, Idle, Proposing, Timeouts};

mod idle;
mod same_nonce;

thread_local! {
    /// What the leaders of the nodes started on this thread do with
    /// nothing to order: an empty block at once unless a test says
    /// otherwise (many tests need blocks, and thousands of them).
    static IDLE: std::cell::Cell<Idle> = const { std::cell::Cell::new(Idle::ProposeEmpty(Duration::ZERO)) };
}

const ORIGIN: &str = "test.example/network";
const QUOTA: Quota = Quota::per_second(NZU32!(10_000));

/// The organizations' keys and the governance key, fixed so runs repeat.
struct Keys {
    nodes: Vec<Keypair>,
    governance: Keypair,
    genesis: SignedTx,
}

fn keys(n: u8) -> Keys {
    let nodes: Vec<Keypair> = (0..n).map(|i| Keypair::from_seed(&[i + 1; 32])).collect();
    let governance = Keypair::from_seed(&[0xee; 32]);
    let genesis = Genesis {
        governance: vec![did(&governance)],
        custodians: nodes.iter().map(did).collect(),
        legacy: None,
    };
    let genesis = genesis_tx(NETWORK, &nodes[0], &genesis, modules()).expect("genesis");
    Keys {
        nodes,
        governance,
        genesis,
    }
}

fn sign(key: &Keypair, tx_type: &str, nonce: &str, body: serde_json::Value) -> SignedTx {
    let raw = TxBuilder {
        network: NETWORK,
        tx_type,
        nonce: nonce.into(),
        body,
    }
    .sign(key);
    SignedTx::parse(
        &raw,
        &TxContext {
            network: NETWORK,
            modules: modules(),
        },
    )
    .expect("a well-formed transaction")
}

/// An organization registration the rules admit (signed by governance).
fn register(keys: &Keys, i: usize) -> SignedTx {
    let admin = Keypair::from_seed(&[(i % 200) as u8 + 20; 32]);
    sign(
        &keys.governance,
        "org.register",
        &format!("reg-{i}"),
        json!({"org": format!("did:web:org{i}.example"), "admin": did(&admin), "kind": "clinic"}),
    )
}

/// A registration the rules refuse: signed by a stranger.
fn forbidden(i: usize) -> SignedTx {
    let stranger = Keypair::from_seed(&[0x77; 32]);
    sign(
        &stranger,
        "org.register",
        &format!("evil-{i}"),
        json!({"org": format!("did:web:evil{i}.example"), "admin": did(&stranger), "kind": "clinic"}),
    )
}

fn public(key: &Keypair) -> PublicKey {
    crate::consensus_key(key).public_key()
}

struct Node {
    /// `None` for a log ordered by the single-node sequencer.
    orderer: Option<BftOrderer>,
    store: Arc<LogStore>,
    /// The application's and the engines' tasks (aborted to stop the node).
    tasks: Vec<commonware_runtime::Handle<()>>,
}

impl Node {
    fn bft(&self) -> &BftOrderer {
        self.orderer.as_ref().expect("a BFT node")
    }
}

async fn network(context: &Context, keys: &Keys) -> Oracle<PublicKey, Context> {
    network_with(context, keys, link()).await
}

/// The simulated network, every pair of nodes joined by `link`.
async fn network_with(context: &Context, keys: &Keys, link: Link) -> Oracle<PublicKey, Context> {
    let peers: Vec<PublicKey> = keys.nodes.iter().map(public).collect();
    let (network, oracle) = Network::new_with_peers(
        context.child("network"),
        simulated::Config {
            max_size: 1 << 20,
            max_peers_per_set: NZUsize!(8),
            disconnect_on_block: true,
            tracked_peer_sets: NZUsize!(1),
        },
        peers.clone(),
    )
    .await;
    network.start();
    for a in &peers {
        for b in &peers {
            if a != b {
                oracle
                    .add_link(a.clone(), b.clone(), link.clone())
                    .await
                    .unwrap();
            }
        }
    }
    oracle
}

fn link() -> Link {
    Link {
        latency: Duration::from_millis(10),
        jitter: Duration::from_millis(2),
        success_rate: probability!(1.0),
    }
}

type Registered = (
    simulated::Sender<PublicKey, Context>,
    simulated::Receiver<PublicKey>,
);

async fn register_channels(
    oracle: &Oracle<PublicKey, Context>,
    key: &PublicKey,
) -> Channels<simulated::Sender<PublicKey, Context>, simulated::Receiver<PublicKey>> {
    let control = oracle.control(key.clone());
    let mut channels: Vec<Registered> = Vec::new();
    for channel in 0..4 {
        channels.push(control.register(channel, QUOTA).await.unwrap());
    }
    let blocks = channels.pop().unwrap();
    let resolver = channels.pop().unwrap();
    let certificates = channels.pop().unwrap();
    let votes = channels.pop().unwrap();
    Channels {
        votes,
        certificates,
        resolver,
        blocks,
    }
}

/// A node's log: its genesis entry, written by the node's own writer (a
/// log that has entries is opened as it is).
fn open_log(dir: &Path, key: &Keypair, keys: &Keys) -> (Arc<LogStore>, LogWriter) {
    let store = Arc::new(LogStore::open(&dir.join("log.redb"), ORIGIN).unwrap());
    let signer =
        CheckpointSigner::new(ORIGIN, Keypair::from_seed(&key.as_dalek().to_bytes())).unwrap();
    let mut writer = LogWriter::open(store.clone(), signer).unwrap();
    if store.snapshot().unwrap().size() == 0 {
        let outcome = writer
            .append_batch(&[std::slice::from_ref(&keys.genesis)])
            .unwrap();
        assert!(outcome.results[0].is_ok());
    }
    (store, writer)
}

async fn start_node(
    context: &Context,
    oracle: &Oracle<PublicKey, Context>,
    keys: &Keys,
    i: usize,
    dir: &Path,
    proposing: Proposing,
) -> Node {
    start_node_limited(context, oracle, keys, i, dir, proposing, 1 << 20).await
}

/// A node whose clients may have at most `max_pending_txs` transactions
/// waiting.
async fn start_node_limited(
    context: &Context,
    oracle: &Oracle<PublicKey, Context>,
    keys: &Keys,
    i: usize,
    dir: &Path,
    proposing: Proposing,
    max_pending_txs: usize,
) -> Node {
    start_node_with(
        context,
        oracle,
        keys,
        i,
        dir,
        proposing,
        max_pending_txs,
        false,
    )
    .await
}

/// A node, cosigning the checkpoints it reaches for the others if `cosign`.
#[allow(clippy::too_many_arguments)]
async fn start_node_with(
    context: &Context,
    oracle: &Oracle<PublicKey, Context>,
    keys: &Keys,
    i: usize,
    dir: &Path,
    proposing: Proposing,
    max_pending_txs: usize,
    cosign: bool,
) -> Node {
    let key = &keys.nodes[i];
    let (store, writer) = open_log(dir, key, keys);
    let pk = public(key);
    let channels = register_channels(oracle, &pk).await;
    // Half the nodes start as the node process does, from the state it
    // replayed itself, so every test (restarts included) runs both paths.
    let replayed = (i % 2 == 1).then(|| {
        let ctx = hygeia_ledger::tx::TxContext {
            network: NETWORK,
            modules: modules(),
        };
        crate::replay(&store, &ctx).expect("the log replays").0
    });
    let (orderer, app, engine) = start(
        context.child("node").with_attribute("index", i),
        Config {
            key: Keypair::from_seed(&key.as_dalek().to_bytes()),
            network: NETWORK.into(),
            modules: modules(),
            store: store.clone(),
            writer,
            commit: Box::new(NoState),
            blocker: oracle.control(pk),
            partition: format!("consensus-{i}"),
            timeouts: Timeouts::default(),
            max_block_txs: 1024,
            proposing,
            chain: dir.join("chain"),
            idle: IDLE.get(),
            cosigner: cosign.then(|| {
                let key = Keypair::from_seed(&key.as_dalek().to_bytes());
                hygeia_ledger::cosignature::Cosigner::new(key.did().as_str(), key)
                    .expect("a cosigner")
            }),
            max_pending_txs,
            replayed,
            peer_sets: None,
            follow: true,
        },
        channels,
    )
    .expect("the node starts");
    Node {
        orderer: Some(orderer),
        store,
        tasks: vec![app, engine],
    }
}

fn size(node: &Node) -> u64 {
    node.store.snapshot().unwrap().size()
}

fn entries(node: &Node) -> Vec<Vec<u8>> {
    let snapshot = node.store.snapshot().unwrap();
    let mut out = Vec::new();
    snapshot
        .for_each_entry(|_, e| {
            out.push(e.to_vec());
            Ok(())
        })
        .unwrap();
    out
}

/// Every node's log has the same entries, and the same root at every size.
fn assert_identical(nodes: &[&Node]) {
    let first = entries(nodes[0]);
    for node in &nodes[1..] {
        assert_eq!(entries(node), first, "entries differ");
    }
    let snapshots: Vec<_> = nodes.iter().map(|n| n.store.snapshot().unwrap()).collect();
    for size in 1..=first.len() as u64 {
        let root = snapshots[0].root_at(size).unwrap();
        for s in &snapshots[1..] {
            assert_eq!(
                s.root_at(size).unwrap(),
                root,
                "roots differ at size {size}"
            );
        }
    }
}

async fn wait_for(context: &Context, limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = context.current() + limit;
    loop {
        if done() {
            return true;
        }
        if context.current() > deadline {
            return false;
        }
        context.sleep(Duration::from_millis(50)).await;
    }
}

/// Whether every one of `nodes` holds `entries` log entries within `secs`
/// seconds of simulated time.
async fn all_reach(context: &Context, nodes: &[Node], entries: u64, secs: u64) -> bool {
    wait_for(context, Duration::from_secs(secs), || {
        nodes.iter().all(|n| size(n) == entries)
    })
    .await
}

/// Starts the honest validators `which` on their data directories, one
/// after another.
async fn start_honest(
    context: &Context,
    oracle: &Oracle<PublicKey, Context>,
    keys: &Keys,
    dirs: &[tempfile::TempDir],
    which: std::ops::Range<usize>,
) -> Vec<Node> {
    let mut nodes = Vec::new();
    for i in which {
        nodes.push(start_node(context, oracle, keys, i, dirs[i].path(), Proposing::Honest).await);
    }
    nodes
}

/// One validator per key of `keys` on the simulated network (every pair joined by
/// `link`), each started with the proposing behaviour `proposing` gives
/// it; the data directories must outlive the nodes.
async fn start_nodes(
    context: &Context,
    keys: &Keys,
    link: Link,
    proposing: impl Fn(usize) -> Proposing,
) -> (
    Vec<Node>,
    Oracle<PublicKey, Context>,
    Vec<tempfile::TempDir>,
) {
    let dirs: Vec<_> = (0..keys.nodes.len()).map(|_| data_dir()).collect();
    let oracle = network_with(context, keys, link).await;
    let mut nodes = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        nodes.push(start_node(context, &oracle, keys, i, dir.path(), proposing(i)).await);
    }
    (nodes, oracle, dirs)
}

/// A node's data directory, in memory (`/dev/shm`) where there is one:
/// the nodes sync their chain, unfinalized blocks and log to disk as they
/// go, and on a busy disk those syncs, not the logic under test, would set
/// how long the simulation takes (a catch-up of thousands of blocks, each
/// voted on by three nodes, took half as long again). What a crash leaves
/// on disk is tested by writing it (torn records, a block kept out of the
/// log), not by the device.
fn data_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().unwrap()
}

fn runner(seed: u64) -> deterministic::Runner {
    deterministic::Runner::new(
        deterministic::Config::new()
            .with_seed(seed)
            .with_timeout(Some(Duration::from_secs(120))),
    )
}

#[test]
fn four_nodes_order_submissions_into_identical_logs() {
    runner(1).start(|context| async move {
        let keys = keys(4);
        let (nodes, _oracle, _dirs) =
            start_nodes(&context, &keys, link(), |_| Proposing::Honest).await;
        // 40 submissions, spread over the four nodes (a client may submit
        // to any node); one of them holds two transactions.
        let mut answers = Vec::new();
        for i in 0..40 {
            let mut txs = vec![register(&keys, i)];
            if i == 7 {
                txs.push(register(&keys, 1000));
            }
            let orderer = nodes[i % 4].bft().clone();
            answers.push(
                context
                    .child("client")
                    .spawn(move |_| async move { orderer.submit(txs).await }),
            );
        }
        let mut indexes = Vec::new();
        for answer in answers {
            let receipt = answer.await.unwrap().expect("acknowledged");
            assert!(receipt.checkpoint.size > receipt.first_index);
            indexes.push(receipt.first_index);
        }
        indexes.sort();
        indexes.dedup();
        assert_eq!(indexes.len(), 40, "every submission has its own place");
        // Acknowledged means durable on the answering node; the others
        // append the same blocks.
        assert!(all_reach(&context, &nodes, 42, 30).await);
        assert_identical(&nodes.iter().collect::<Vec<_>>());
        for node in &nodes {
            let seen = node.bft().observed();
            assert!(seen.faults.is_empty(), "{:?}", seen.faults);
            assert!(seen.halted.is_none());
            assert_eq!(node.bft().latest_checkpoint().size, 42);
        }
        // A replay of an ordered transaction is refused with its code.
        let again = nodes[1].bft().submit(vec![register(&keys, 3)]).await;
        match again {
            Err(hygeia_ledger::SubmitError::Rejected(e)) => assert_eq!(e.code.as_str(), "replay"),
            other => panic!("replay not refused: {other:?}"),
        }
        // A transaction the rules refuse is refused by an honest proposer
        // and never reaches any log.
        let refused = nodes[2].bft().submit(vec![forbidden(0)]).await;
        match refused {
            Err(hygeia_ledger::SubmitError::Rejected(e)) => {
                assert_eq!(e.code.as_str(), "org.not_governance")
            }
            other => panic!("forbidden transaction not refused: {other:?}"),
        }
        assert!(nodes.iter().all(|n| size(n) == 42));
    });
}

#[test]
fn a_partition_stops_progress_without_forking_and_healing_resumes_it() {
    runner(2).start(|context| async move {
        let keys = keys(4);
        let (nodes, oracle, _dirs) =
            start_nodes(&context, &keys, link(), |_| Proposing::Honest).await;
        let first = nodes[0]
            .bft()
            .submit(vec![register(&keys, 0)])
            .await
            .unwrap();
        assert_eq!(first.first_index, 1);
        assert!(all_reach(&context, &nodes, 2, 10).await);

        // Two and two: no side has a quorum (3 of 4).
        let pks: Vec<PublicKey> = keys.nodes.iter().map(public).collect();
        let side = |i: usize| i < 2;
        for a in 0..4 {
            for b in 0..4 {
                if a != b && side(a) != side(b) {
                    oracle
                        .remove_link(pks[a].clone(), pks[b].clone())
                        .await
                        .unwrap();
                }
            }
        }
        let mut waiting = Vec::new();
        for i in 0..8 {
            let orderer = nodes[i % 4].bft().clone();
            let tx = register(&keys, 100 + i);
            waiting.push(
                context
                    .child("client")
                    .spawn(move |_| async move { orderer.submit(vec![tx]).await }),
            );
        }
        context.sleep(Duration::from_secs(20)).await;
        for node in &nodes {
            assert_eq!(size(node), 2, "no progress without a quorum");
            assert!(node.bft().observed().halted.is_none());
        }

        // Heal: everything submitted during the partition is finalized,
        // and all logs agree.
        for a in 0..4 {
            for b in 0..4 {
                if a != b && side(a) != side(b) {
                    oracle
                        .add_link(pks[a].clone(), pks[b].clone(), link())
                        .await
                        .unwrap();
                }
            }
        }
        for answer in waiting {
            answer.await.unwrap().expect("acknowledged after healing");
        }
        assert!(all_reach(&context, &nodes, 10, 30).await);
        assert_identical(&nodes.iter().collect::<Vec<_>>());
    });
}

#[test]
fn a_block_with_a_refused_transaction_is_never_finalized() {
    runner(3).start(|context| async move {
        let keys = keys(4);
        let (nodes, _oracle, _dirs) = start_nodes(&context, &keys, link(), |i| {
            if i == 0 {
                Proposing::Unchecked
            } else {
                Proposing::Honest
            }
        })
        .await;
        // The byzantine node (0) puts a forbidden transaction, with a good
        // one, in its next block.
        let byzantine = nodes[0].bft().clone();
        let bad = forbidden(1);
        let bad_leaf = bad.leaf_hash();
        let good = register(&keys, 5);
        let _stuck = context
            .child("client")
            .spawn(move |_| async move { byzantine.submit(vec![bad]).await });
        let byzantine = nodes[0].bft().clone();
        let _other = context
            .child("client")
            .spawn(move |_| async move { byzantine.submit(vec![good]).await });
        // Honest nodes keep ordering their own submissions meanwhile.
        for i in 0..6 {
            nodes[1 + i % 3]
                .bft()
                .submit(vec![register(&keys, 10 + i)])
                .await
                .expect("honest submissions are ordered");
        }
        // The honest nodes refused the byzantine block(s)...
        let refused: Vec<_> = nodes[1..]
            .iter()
            .flat_map(|n| n.bft().observed().refused)
            .collect();
        assert!(!refused.is_empty(), "the byzantine block was refused");
        // ...no node ever finalized one of them...
        for node in &nodes {
            let appended = node.bft().observed().appended;
            for digest in &refused {
                assert!(appended.iter().all(|(_, d, _)| d != digest));
            }
        }
        // ...and the forbidden transaction is in no log.
        assert!(
            wait_for(&context, Duration::from_secs(10), || {
                let s = size(&nodes[1]);
                nodes.iter().all(|n| size(n) == s)
            })
            .await
        );
        for node in &nodes {
            assert_eq!(
                node.store.snapshot().unwrap().index_of(&bad_leaf).unwrap(),
                None
            );
        }
        assert_identical(&nodes.iter().collect::<Vec<_>>());
    });
}

#[test]
fn a_block_whose_transaction_bytes_were_never_seen_is_verified_and_refused() {
    runner(5).start(|context| async move {
        let keys = keys(4);
        let (nodes, _oracle, _dirs) = start_nodes(&context, &keys, link(), |i| {
            if i == 0 {
                Proposing::Forging
            } else {
                Proposing::Honest
            }
        })
        .await;
        // Clients submit to the byzantine node (0): it passes each
        // submission on as it should, so the honest nodes verify and keep
        // the genuine bytes, but its own blocks carry the same transactions
        // with a changed signature (same signer, same nonce, same body).
        let mut forged = Vec::new();
        let mut refused_why = Vec::new();
        for i in 0..40 {
            let tx = register(&keys, 100 + i);
            let mut raw = tx.canonical_bytes().to_vec();
            crate::application::forge(&mut raw);
            assert_ne!(raw, tx.canonical_bytes());
            forged.push(hygeia_ledger::merkle::leaf_hash(&raw));
            nodes[0]
                .bft()
                .submit(vec![tx])
                .await
                .expect("honest leaders order the genuine transaction");
            refused_why = nodes[1..]
                .iter()
                .flat_map(|n| n.bft().observed().refused_why)
                .collect();
            if !refused_why.is_empty() {
                break;
            }
        }
        // The honest nodes verified the forged bytes in full (they had never
        // seen them) and refused the block for its signature...
        assert!(
            !refused_why.is_empty(),
            "a forged block was proposed and refused"
        );
        assert!(
            refused_why
                .iter()
                .all(|why| why.contains("signature does not verify")),
            "{refused_why:?}"
        );
        // ...no forged transaction is in any log, and the logs agree.
        assert!(
            wait_for(&context, Duration::from_secs(10), || {
                let s = size(&nodes[1]);
                nodes.iter().all(|n| size(n) == s)
            })
            .await
        );
        for node in &nodes {
            let snapshot = node.store.snapshot().unwrap();
            for leaf in &forged {
                assert_eq!(snapshot.index_of(leaf).unwrap(), None);
            }
        }
        assert_identical(&nodes.iter().collect::<Vec<_>>());
    });
}

#[test]
fn a_node_sending_garbage_does_not_stop_the_others() {
    runner(4).start(|context| async move {
        let keys = keys(4);
        let dirs: Vec<_> = (0..4).map(|_| data_dir()).collect();
        let oracle = network(&context, &keys).await;
        // Node 0 runs no consensus: it sprays random bytes on every channel.
        let pk0 = public(&keys.nodes[0]);
        let channels = register_channels(&oracle, &pk0).await;
        let mut senders = [
            channels.votes.0,
            channels.certificates.0,
            channels.resolver.0,
            channels.blocks.0,
        ];
        context.child("garbage").spawn(move |context| async move {
            for round in 0u32..400 {
                for (c, sender) in senders.iter_mut().enumerate() {
                    let mut bytes =
                        vec![(round as u8).wrapping_mul(31); (round as usize * 7 + c) % 300 + 1];
                    bytes[0] = (round % 3) as u8; // sometimes a valid tag
                    let _ = sender.send(Recipients::All, bytes, false);
                }
                context.sleep(Duration::from_millis(25)).await;
            }
        });
        let nodes = start_honest(&context, &oracle, &keys, &dirs, 1..4).await;
        for i in 0..9 {
            nodes[i % 3]
                .bft()
                .submit(vec![register(&keys, i)])
                .await
                .expect("ordered despite the garbage");
        }
        assert!(all_reach(&context, &nodes, 10, 10).await);
        assert_identical(&nodes.iter().collect::<Vec<_>>());
        // The garbage was seen and its sender blocked.
        let garbage: u64 = nodes
            .iter()
            .map(|n| n.bft().observed().garbage.get(&pk0).copied().unwrap_or(0))
            .sum();
        assert!(garbage > 0, "garbage on the block channel was noticed");
        let blocked = oracle.blocked().await.unwrap();
        assert!(
            blocked.iter().any(|(_, b)| *b == pk0),
            "the sender was blocked"
        );
    });
}

#[test]
fn a_peer_filling_its_share_of_passed_on_submissions_does_not_starve_the_others() {
    runner(6).start(|context| async move {
        let keys = keys(4);
        let dirs: Vec<_> = (0..4).map(|_| data_dir()).collect();
        let oracle = network(&context, &keys).await;
        // Node 0 runs no consensus: it keeps passing on more well-signed
        // submissions (the rules refuse them, so they stay pending until
        // a node leads) than the whole pool of passed-on submissions holds.
        let pk0 = public(&keys.nodes[0]);
        let pk1 = public(&keys.nodes[1]);
        let channels = register_channels(&oracle, &pk0).await;
        let mut sender = channels.blocks.0;
        let flood: Vec<Vec<u8>> = (0..MAX_REMOTE_PENDING + 12)
            .map(|i| {
                let envelope = crate::wire::envelope(vec![forbidden(i).canonical_bytes().to_vec()]);
                let mut message = vec![crate::wire::TAG_SUBMISSION];
                message.extend_from_slice(&envelope.encode());
                message
            })
            .collect();
        context.child("flood").spawn(move |context| async move {
            for _ in 0..60 {
                for message in &flood {
                    let _ = sender.send(Recipients::All, message.clone(), false);
                }
                context.sleep(Duration::from_millis(50)).await;
            }
        });
        let nodes = start_honest(&context, &oracle, &keys, &dirs, 1..4).await;
        context.sleep(Duration::from_millis(200)).await;
        // Node 1's clients keep submitting; node 1 passes each submission
        // on, and the others take it into their pools: node 0's share is
        // full, node 1's is not.
        for i in 0..9 {
            nodes[0]
                .bft()
                .submit(vec![register(&keys, i)])
                .await
                .expect("ordered despite the flood");
        }
        assert!(all_reach(&context, &nodes, 10, 10).await);
        assert_identical(&nodes.iter().collect::<Vec<_>>());
        for node in &nodes[1..] {
            let dropped = node.bft().observed().dropped;
            assert!(
                dropped.get(&pk0).copied().unwrap_or(0) > 0,
                "node 0 went past its share"
            );
            assert_eq!(
                dropped.get(&pk1),
                None,
                "node 1's submissions were all taken"
            );
        }
    });
}

#[test]
fn an_equivocating_validator_is_reported_and_the_others_agree() {
    runner(5).start(|context| async move {
        let keys = keys(4);
        let dirs: Vec<_> = (0..4).map(|_| data_dir()).collect();
        let oracle = network(&context, &keys).await;
        // Node 0 signs two different notarize (and finalize) votes for
        // every proposal it sees: commonware's conflicter.
        let pk0 = public(&keys.nodes[0]);
        let channels = register_channels(&oracle, &pk0).await;
        let scheme = crate::scheme(
            NETWORK,
            &keys.nodes.iter().map(public).collect::<Vec<_>>(),
            &keys.nodes[0],
        )
        .expect("a validator");
        let conflicter: Conflicter<_, _, Sha256> = Conflicter::new(
            context.child("byzantine"),
            commonware_consensus::simplex::mocks::conflicter::Config { scheme },
        );
        // Engine messages travel on the subchannel of their epoch (0).
        let (muxer, mut votes) = commonware_p2p::utils::mux::Muxer::new(
            context.child("byzantine_votes"),
            channels.votes.0,
            channels.votes.1,
        );
        muxer.start();
        conflicter.start(votes.register(0).await.expect("subchannel 0"));
        let nodes = start_honest(&context, &oracle, &keys, &dirs, 1..4).await;
        for i in 0..6 {
            nodes[i % 3]
                .bft()
                .submit(vec![register(&keys, i)])
                .await
                .expect("ordered despite the equivocation");
        }
        assert!(all_reach(&context, &nodes, 7, 10).await);
        assert_identical(&nodes.iter().collect::<Vec<_>>());
        for node in &nodes {
            let faults = node.bft().observed().faults;
            assert!(
                faults
                    .iter()
                    .any(|(kind, _, who)| *kind == "conflicting_notarize" && *who == pk0),
                "equivocation reported: {faults:?}"
            );
            assert!(
                faults.iter().all(|(_, _, who)| *who == pk0),
                "only the equivocator is blamed"
            );
        }
    });
}

#[test]
fn a_key_outside_the_custodian_set_cannot_join() {
    runner(6).start(|context| async move {
        let keys = keys(4);
        let dir = data_dir();
        let oracle = network(&context, &keys).await;
        let outsider = Keypair::from_seed(&[0x55; 32]);
        let (store, writer) = open_log(dir.path(), &outsider, &keys);
        let pk = public(&outsider);
        let channels = register_channels(&oracle, &pk).await;
        let result = start(
            context.child("outsider"),
            Config {
                key: outsider,
                network: NETWORK.into(),
                modules: modules(),
                store,
                writer,
                commit: Box::new(NoState),
                blocker: oracle.control(pk),
                partition: "outsider".into(),
                timeouts: Timeouts::default(),
                max_block_txs: 16,
                proposing: Proposing::Honest,
                chain: dir.path().join("chain"),
                idle: Idle::ProposeEmpty(Duration::ZERO),
                cosigner: None,
                max_pending_txs: 1 << 20,
                replayed: None,
                peer_sets: None,
                follow: false,
            },
            channels,
        );
        assert!(matches!(result, Err(crate::StartError::NotAValidator)));
    });
}

/// Submits one at a time through the trait, whatever orders them.
async fn order_one_by_one(orderer: &dyn Orderer, txs: &[SignedTx]) -> Vec<u64> {
    let mut indexes = Vec::new();
    for tx in txs {
        let receipt = orderer.submit(vec![tx.clone()]).await.expect("ordered");
        indexes.push(receipt.first_index);
    }
    indexes
}

#[test]
fn the_sequencer_and_the_bft_orderer_give_the_same_log() {
    let keys = keys(4);
    let txs: Vec<SignedTx> = (0..12).map(|i| register(&keys, i)).collect();

    // The embedded default: one node, its sequencer.
    let single = data_dir();
    let (store, writer) = open_log(single.path(), &keys.nodes[0], &keys);
    let sequencer = hygeia_ledger::Sequencer::start(writer, hygeia_ledger::BatchConfig::default());
    let indexes = futures::executor::block_on(order_one_by_one(&sequencer, &txs));
    assert_eq!(indexes, (1..=12).collect::<Vec<u64>>());
    drop(sequencer);
    let reference = Node {
        orderer: None,
        store,
        tasks: Vec::new(),
    };

    // Four organizations, BFT: the same submissions through the same trait.
    runner(7).start(|context| async move {
        let (nodes, _oracle, _dirs) =
            start_nodes(&context, &keys, link(), |_| Proposing::Honest).await;
        let orderer: &dyn Orderer = nodes[2].bft();
        let indexes = order_one_by_one(orderer, &txs).await;
        assert_eq!(indexes, (1..=12).collect::<Vec<u64>>());
        assert!(all_reach(&context, &nodes, 13, 10).await);
        let mut all: Vec<&Node> = nodes.iter().collect();
        all.push(&reference);
        assert_identical(&all);
    });
}

#[test]
fn a_finalized_block_a_crash_kept_out_of_the_log_is_appended_at_start() {
    runner(9).start(|context| async move {
        let keys = keys(1);
        let dir = data_dir();
        // The chain file holds a finalized block whose entries never
        // reached the log (a crash between the two writes).
        let tx = register(&keys, 1);
        let genesis = crate::block::genesis_digest(1, &keys.genesis.leaf_hash().0);
        let block = crate::block::Block {
            parent: genesis,
            height: 1,
            view: 1,
            submissions: vec![vec![tx.canonical_bytes().to_vec()]],
        };
        let encoded = block.encode();
        let (mut chain, _) = crate::chain::Chain::open(&dir.path().join("chain"), genesis).unwrap();
        chain
            .append(crate::block::Block::digest(&encoded), &encoded, true)
            .unwrap();
        drop(chain);
        let oracle = network(&context, &keys).await;
        let node = start_node(&context, &oracle, &keys, 0, dir.path(), Proposing::Honest).await;
        let appended = wait_for(&context, Duration::from_secs(10), || {
            node.store.snapshot().unwrap().size() >= 2
        })
        .await;
        assert!(appended, "the finalized block was appended at start");
        assert_eq!(entries(&node)[1], tx.canonical_bytes().to_vec());
        assert_eq!(node.store.snapshot().unwrap().size(), 2, "appended once");
        assert!(node.bft().observed().halted.is_none());
        // (The engine's journal is empty here, unlike after a real crash,
        // where it knows the block was finalized: this node alone would
        // not propose past it, so ordering is not checked further.)
    });
}

#[test]
fn local_submissions_past_the_pending_limit_are_refused_as_overloaded() {
    runner(9).start(|context| async move {
        let keys = keys(4);
        let dirs: Vec<_> = (0..4).map(|_| data_dir()).collect();
        let oracle = network(&context, &keys).await;
        // Node 0 alone cannot finalize anything: its clients' submissions
        // wait. Its clients may have three transactions waiting.
        let first = start_node_limited(
            &context,
            &oracle,
            &keys,
            0,
            dirs[0].path(),
            Proposing::Honest,
            3,
        )
        .await;
        let mut answers = Vec::new();
        for txs in [
            vec![register(&keys, 1)],
            vec![register(&keys, 2), register(&keys, 3)],
        ] {
            let orderer = first.bft().clone();
            answers.push(
                context
                    .child("client")
                    .spawn(move |_| async move { orderer.submit(txs).await }),
            );
        }
        context.sleep(Duration::from_millis(100)).await;
        // A stranger's next submission is refused at once, whatever it is:
        // nothing of it is kept.
        let answer = Arc::new(std::sync::Mutex::new(None));
        let orderer = first.bft().clone();
        let kept = answer.clone();
        context.child("stranger").spawn(move |_| async move {
            let result = orderer.submit(vec![forbidden(1)]).await;
            *kept.lock().unwrap() = Some(result);
        });
        assert!(
            wait_for(&context, Duration::from_secs(5), || answer
                .lock()
                .unwrap()
                .is_some())
            .await,
            "a submission past the limit was queued"
        );
        match answer.lock().unwrap().take() {
            Some(Err(hygeia_ledger::SubmitError::Overloaded { queued })) => assert_eq!(queued, 3),
            other => panic!("not refused as overloaded: {other:?}"),
        }
        assert_eq!(size(&first), 1);
        // Once the others join, the waiting submissions are ordered, the
        // limit frees up, and a retry is taken.
        let mut nodes = vec![first];
        nodes.extend(start_honest(&context, &oracle, &keys, &dirs, 1..4).await);
        for answer in answers {
            answer.await.unwrap().expect("acknowledged");
        }
        let retry = nodes[0]
            .bft()
            .submit(vec![register(&keys, 4), register(&keys, 5)])
            .await
            .expect("taken once the queue has room");
        assert_eq!(retry.checkpoint.size, 6);
    });
}

/// A node whose stored log was changed behind its back (one entry replaced,
/// the size kept, so the start-up check passes) is found out by the peers'
/// cosignatures: its root differs from theirs at the same size, it stops
/// voting and appending and says why; the others name it and go on.
#[test]
fn a_node_whose_log_was_altered_stops_voting_and_the_others_go_on() {
    runner(11).start(|context| async move {
        let keys = keys(4);
        let dirs: Vec<_> = (0..4).map(|_| data_dir()).collect();
        let oracle = network(&context, &keys).await;
        let mut nodes = Vec::new();
        for i in 0..3 {
            nodes.push(
                start_node_with(
                    &context,
                    &oracle,
                    &keys,
                    i,
                    dirs[i].path(),
                    Proposing::Honest,
                    1 << 20,
                    true,
                )
                .await,
            );
        }
        nodes[0]
            .bft()
            .submit(vec![register(&keys, 1)])
            .await
            .expect("three of four finalize");
        assert!(all_reach(&context, &nodes, 2, 10).await);
        // The fourth organization's data directory: the finalized chain
        // (the same for every node), and a log of the same size whose
        // entry 1 is another transaction than the one the network ordered.
        std::fs::copy(dirs[0].path().join("chain"), dirs[3].path().join("chain")).unwrap();
        {
            let (_, mut writer) = open_log(dirs[3].path(), &keys.nodes[3], &keys);
            let outcome = writer
                .append_batch(&[std::slice::from_ref(&register(&keys, 99))])
                .unwrap();
            assert!(outcome.results[0].is_ok());
        }
        let altered = start_node_with(
            &context,
            &oracle,
            &keys,
            3,
            dirs[3].path(),
            Proposing::Honest,
            1 << 20,
            true,
        )
        .await;
        assert_eq!(size(&altered), 2, "the start-up check counts entries only");
        // The next checkpoints: the altered node's root differs from the
        // three others' at the same size.
        for i in 2..5 {
            nodes[i % 3]
                .bft()
                .submit(vec![register(&keys, i)])
                .await
                .expect("the network goes on");
        }
        assert!(
            wait_for(&context, Duration::from_secs(10), || altered
                .bft()
                .observed()
                .diverged
                .is_some())
            .await,
            "the altered node finds out"
        );
        let seen = altered.bft().observed();
        assert!(
            seen.diverged
                .as_deref()
                .unwrap_or("")
                .contains("differs from the network's"),
            "{:?}",
            seen.diverged
        );
        // It votes for nothing more: the next blocks are refused, and
        // finalized by the three others without it.
        let stuck = size(&altered);
        for i in 5..8 {
            nodes[i % 3]
                .bft()
                .submit(vec![register(&keys, i)])
                .await
                .expect("three honest nodes are a quorum");
        }
        assert!(
            wait_for(&context, Duration::from_secs(10), || altered
                .bft()
                .observed()
                .refused_why
                .iter()
                .any(|w| w.contains("differs from its peers")))
            .await,
            "it refuses to vote on top of its log"
        );
        assert_eq!(size(&altered), stuck, "it appends nothing more");
        assert!(all_reach(&context, &nodes, 8, 10).await);
        assert_identical(&nodes.iter().collect::<Vec<_>>());
        let altered_key = public(&keys.nodes[3]);
        for node in &nodes {
            let seen = node.bft().observed();
            assert!(seen.diverged.is_none(), "an honest node is not diverged");
            assert!(
                seen.diverging_peers.contains_key(&altered_key),
                "each honest node names the altered one: {:?}",
                seen.diverging_peers.keys().collect::<Vec<_>>()
            );
            assert_eq!(seen.diverging_peers.len(), 1, "and no one else");
        }
    });
}

/// A link fast enough for the other nodes to finalize thousands of empty
/// blocks in a few simulated seconds.
fn fast_link() -> Link {
    Link {
        latency: Duration::from_millis(1),
        jitter: Duration::ZERO,
        success_rate: probability!(1.0),
    }
}

/// Cuts node `i` off from the others, or joins it to them again.
async fn connect(oracle: &Oracle<PublicKey, Context>, keys: &Keys, i: usize, connected: bool) {
    let pks: Vec<PublicKey> = keys.nodes.iter().map(public).collect();
    for j in 0..pks.len() {
        if j == i {
            continue;
        }
        for (a, b) in [(i, j), (j, i)] {
            if connected {
                oracle
                    .add_link(pks[a].clone(), pks[b].clone(), fast_link())
                    .await
                    .unwrap();
            } else {
                oracle
                    .remove_link(pks[a].clone(), pks[b].clone())
                    .await
                    .unwrap();
            }
        }
    }
}

/// Height of the newest block a node appended.
fn height(node: &Node) -> u64 {
    node.bft()
        .observed()
        .appended
        .last()
        .map(|(_, _, h)| *h)
        .unwrap_or(0)
}

/// More blocks than a node keeps in memory above its last appended one
/// (the old limit of a catch-up, past which a node halted).
const FAR_BEHIND: u64 = 4096 + 1500;

/// Node 3 is cut off while the three others finalize more than
/// `FAR_BEHIND` blocks (a few with transactions); joined again, it fetches
/// the blocks it missed from its peers in batches of ancestors, staged on
/// disk, and ends with the others' log and finalized chain. With
/// `liar`, node 0 answers every request for ancestors with blocks that do
/// not hash to what was asked: node 3 drops them, blocks node 0, and
/// catches up from the two others.
fn catch_up_from_far_behind(seed: u64, liar: bool) {
    // Thousands of blocks take more simulated time than the other tests.
    let runner = deterministic::Runner::new(
        deterministic::Config::new()
            .with_seed(seed)
            .with_timeout(Some(Duration::from_secs(400))),
    );
    runner.start(|context| async move {
        let keys = keys(4);
        let (nodes, oracle, dirs) = start_nodes(&context, &keys, fast_link(), |i| {
            if liar && i == 0 {
                Proposing::MisleadingCatchUp
            } else {
                Proposing::Honest
            }
        })
        .await;
        nodes[1]
            .bft()
            .submit(vec![register(&keys, 1)])
            .await
            .expect("four nodes finalize");
        assert!(all_reach(&context, &nodes, 2, 10).await);
        connect(&oracle, &keys, 3, false).await;
        let left_at = height(&nodes[3]);
        // Transactions early in the outage, then empty blocks, then more
        // transactions at its end.
        for i in 2..5 {
            nodes[i % 3]
                .bft()
                .submit(vec![register(&keys, i)])
                .await
                .expect("three nodes finalize");
        }
        assert!(
            wait_for(&context, Duration::from_secs(200), || height(&nodes[0])
                > left_at + FAR_BEHIND)
            .await,
            "the three others went on"
        );
        for i in 5..8 {
            nodes[i % 3]
                .bft()
                .submit(vec![register(&keys, i)])
                .await
                .expect("three nodes finalize");
        }
        assert_eq!(size(&nodes[3]), 2, "node 3 was cut off");
        let behind = height(&nodes[0]) - height(&nodes[3]);
        assert!(behind > FAR_BEHIND, "{behind} blocks behind");

        connect(&oracle, &keys, 3, true).await;
        let target = height(&nodes[0]);
        assert!(
            wait_for(&context, Duration::from_secs(60), || height(&nodes[3])
                >= target
                && size(&nodes[3]) == 8)
            .await,
            "node 3 caught up: height {} of {target}, {:?}",
            height(&nodes[3]),
            nodes[3].bft().observed().halted
        );
        assert!(all_reach(&context, &nodes, 8, 10).await);
        assert_identical(&nodes.iter().collect::<Vec<_>>());
        // The same finalized chain: node 3's and node 0's files agree on
        // every block both hold, which covers everything node 3 missed.
        let mine = std::fs::read(dirs[3].path().join("chain")).unwrap();
        let theirs = std::fs::read(dirs[0].path().join("chain")).unwrap();
        let common = mine.len().min(theirs.len());
        assert_eq!(mine[..common], theirs[..common], "the chains differ");
        let (_, blocks) = crate::chain::Chain::open(
            &dirs[3].path().join("chain"),
            crate::block::genesis_digest(1, &keys.genesis.leaf_hash().0),
        )
        .unwrap();
        assert!(blocks.len() as u64 >= target);
        let seen = nodes[3].bft().observed();
        assert!(seen.halted.is_none(), "{:?}", seen.halted);
        assert!(
            seen.fetched > FAR_BEHIND,
            "fetched {} blocks in batches",
            seen.fetched
        );
        assert!(seen.caught_up >= 1);
        // Nothing is left staged.
        assert_eq!(
            std::fs::metadata(dirs[3].path().join(crate::STAGING_FILE))
                .unwrap()
                .len(),
            0
        );
        let pk0 = public(&keys.nodes[0]);
        let from_liar = seen.garbage.get(&pk0).copied().unwrap_or(0);
        if liar {
            assert!(from_liar > 0, "the wrong blocks were noticed");
        } else {
            assert!(seen.garbage.is_empty(), "{:?}", seen.garbage);
        }
        for node in &nodes[..3] {
            assert!(node.bft().observed().halted.is_none());
        }
    });
}

#[test]
fn a_node_far_behind_catches_up_from_batches_of_ancestors() {
    catch_up_from_far_behind(21, false);
}

#[test]
fn a_node_far_behind_catches_up_though_a_peer_answers_with_wrong_blocks() {
    catch_up_from_far_behind(22, true);
}

/// `network.validators` for `epoch`, naming nodes `members` (signed by
/// governance).
fn validators_change(keys: &Keys, epoch: u64, members: &[usize]) -> SignedTx {
    let validators: Vec<serde_json::Value> = members
        .iter()
        .map(|i| json!({"key": did(&keys.nodes[*i]), "address": format!("127.0.0.1:{}", 9100 + i)}))
        .collect();
    sign(
        &keys.governance,
        "network.validators",
        &format!("validators-{epoch}"),
        json!({"epoch": epoch, "validators": validators}),
    )
}

/// Stops a node: its application and engines, and with them its log.
async fn stop(context: &Context, node: Node) {
    for task in node.tasks {
        task.abort();
    }
    drop(node.orderer);
    drop(node.store);
    context.sleep(Duration::from_millis(100)).await;
}

/// Four validators; governance removes node 3 in epoch 1. Every node
/// appends the block holding the change; after it, nodes 0 to 2 finalize
/// on in epoch 1 and node 3, no longer a validator, appends nothing more
/// and takes no submission. With node 2 cut off, nodes 0 and 1 and the
/// removed node 3 (three of the old four, a quorum in epoch 0) finalize
/// nothing: node 3 no longer counts. Joined again, node 2 lets the three
/// finalize.
#[test]
fn governance_removes_a_validator_at_an_epoch_and_the_three_others_go_on() {
    runner(21).start(|context| async move {
        let keys = keys(4);
        let (nodes, oracle, _dirs) =
            start_nodes(&context, &keys, link(), |_| Proposing::Honest).await;
        nodes[0]
            .bft()
            .submit(vec![register(&keys, 1)])
            .await
            .expect("four nodes finalize");
        let change = nodes[1]
            .bft()
            .submit(vec![validators_change(&keys, 1, &[0, 1, 2])])
            .await
            .expect("the change is ordered");
        let boundary = change.checkpoint.size;
        assert!(
            wait_for(&context, Duration::from_secs(10), || nodes
                .iter()
                .all(|n| n.bft().observed().epoch == 1 && size(n) >= boundary))
            .await,
            "every node appends the change and moves to epoch 1"
        );
        for (i, node) in nodes.iter().enumerate() {
            assert_eq!(node.bft().observed().retired, i == 3, "node {i}");
        }
        for i in 2..8 {
            nodes[i % 3]
                .bft()
                .submit(vec![register(&keys, i)])
                .await
                .expect("the three validators of epoch 1 finalize");
        }
        assert!(all_reach(&context, &nodes[..3], boundary + 6, 10).await);
        assert_identical(&nodes[..3].iter().collect::<Vec<_>>());
        assert_eq!(
            size(&nodes[3]),
            boundary,
            "the removed node appends nothing more"
        );
        match nodes[3].bft().submit(vec![register(&keys, 100)]).await {
            Err(hygeia_ledger::SubmitError::ShuttingDown) => {}
            other => panic!("a removed validator took a submission: {other:?}"),
        }
        for node in &nodes {
            let seen = node.bft().observed();
            assert!(seen.halted.is_none(), "{:?}", seen.halted);
            assert!(seen.faults.is_empty(), "{:?}", seen.faults);
        }

        connect(&oracle, &keys, 2, false).await;
        let orderer = nodes[0].bft().clone();
        let late = register(&keys, 9);
        let waiting = context
            .child("client")
            .spawn(move |_| async move { orderer.submit(vec![late]).await });
        context.sleep(Duration::from_secs(5)).await;
        assert_eq!(
            size(&nodes[0]),
            boundary + 6,
            "nodes 0 and 1 with the removed node 3 are no quorum of epoch 1"
        );
        connect(&oracle, &keys, 2, true).await;
        waiting
            .await
            .unwrap()
            .expect("finalized once node 2 is back");
        assert!(all_reach(&context, &nodes[..3], boundary + 7, 10).await);
        assert_identical(&nodes[..3].iter().collect::<Vec<_>>());
    });
}

/// Five validators; governance removes node 4, so epoch 1 has four. A
/// node stopped after the change and started again replays its log into
/// epoch 1, runs that epoch's engine (its journal of epoch 1), and orders
/// with the others: the same log as theirs. Nodes 1 (started from the
/// state it replayed) and 2 (replayed by `start`) are restarted in turn.
#[test]
fn a_node_restarted_after_an_epoch_change_resumes_in_the_new_epoch() {
    runner(22).start(|context| async move {
        let keys = keys(5);
        let (mut nodes, oracle, dirs) =
            start_nodes(&context, &keys, link(), |_| Proposing::Honest).await;
        let change = nodes[0]
            .bft()
            .submit(vec![validators_change(&keys, 1, &[0, 1, 2, 3])])
            .await
            .expect("the change is ordered");
        let boundary = change.checkpoint.size;
        nodes[2]
            .bft()
            .submit(vec![register(&keys, 1)])
            .await
            .expect("epoch 1 finalizes");
        for i in [1, 2] {
            let placeholder = Node {
                orderer: None,
                store: nodes[0].store.clone(),
                tasks: Vec::new(),
            };
            let node = std::mem::replace(&mut nodes[i], placeholder);
            stop(&context, node).await;
            nodes[i] = start_node(
                &context,
                &oracle,
                &keys,
                i,
                dirs[i].path(),
                Proposing::Honest,
            )
            .await;
            assert_eq!(
                nodes[i].bft().observed().epoch,
                1,
                "node {i} starts in epoch 1"
            );
            nodes[i]
                .bft()
                .submit(vec![register(&keys, 10 + i)])
                .await
                .expect("the restarted node orders in epoch 1");
        }
        assert!(all_reach(&context, &nodes[..4], boundary + 3, 10).await);
        assert_identical(&nodes[..4].iter().collect::<Vec<_>>());
        assert_eq!(
            size(&nodes[4]),
            boundary,
            "the removed node appends nothing more"
        );
    });
}

/// Takes node `i` out of `nodes` (to stop it), leaving a placeholder.
fn take(nodes: &mut [Node], i: usize) -> Node {
    let placeholder = Node {
        orderer: None,
        store: nodes[0].store.clone(),
        tasks: Vec::new(),
    };
    std::mem::replace(&mut nodes[i], placeholder)
}

/// Orders a first submission with all four nodes, stops node 3, and has
/// the three others order governance's change to epoch 1 (the same four
/// validators); returns the log size at the end of epoch 0.
async fn end_epoch_0_without_node_3(context: &Context, keys: &Keys, nodes: &mut [Node]) -> u64 {
    nodes[0]
        .bft()
        .submit(vec![register(keys, 1)])
        .await
        .expect("four nodes finalize");
    let down = take(nodes, 3);
    stop(context, down).await;
    let change = nodes[1]
        .bft()
        .submit(vec![validators_change(keys, 1, &[0, 1, 2, 3])])
        .await
        .expect("the change is ordered by three of four");
    change.checkpoint.size
}

/// Four validators; node 3 is stopped, and while it is down governance
/// names the next set (the same four) and epoch 1 orders three more
/// submissions with the three others. Started again, node 3 is in epoch 0
/// by its log and no peer runs an engine of epoch 0: it asks a peer for
/// the end of epoch 0, verifies the certificate with epoch 0's set, fetches
/// and applies the blocks up to that end, moves to epoch 1, and then
/// orders a submission of its own with the others. With the request for an
/// epoch's end taken out, node 3 stays in epoch 0 and the test fails.
#[test]
fn a_node_down_while_its_epoch_ends_catches_up_into_the_next() {
    runner(23).start(|context| async move {
        let keys = keys(4);
        let (mut nodes, oracle, dirs) =
            start_nodes(&context, &keys, link(), |_| Proposing::Honest).await;
        let boundary = end_epoch_0_without_node_3(&context, &keys, &mut nodes).await;
        for i in 2..5 {
            nodes[i % 3]
                .bft()
                .submit(vec![register(&keys, i)])
                .await
                .expect("epoch 1 finalizes with three of its four");
        }
        assert!(
            wait_for(&context, Duration::from_secs(10), || {
                nodes[..3]
                    .iter()
                    .all(|n| n.bft().observed().epoch == 1 && size(n) == boundary + 3)
            })
            .await
        );
        nodes[3] = start_node(
            &context,
            &oracle,
            &keys,
            3,
            dirs[3].path(),
            Proposing::Honest,
        )
        .await;
        assert_eq!(nodes[3].bft().observed().epoch, 0, "epoch 0 by its log");
        assert!(size(&nodes[3]) < boundary);
        assert!(
            wait_for(&context, Duration::from_secs(30), || {
                nodes[3].bft().observed().epoch == 1 && size(&nodes[3]) == boundary + 3
            })
            .await,
            "node 3 catches up into epoch 1: {:?}",
            {
                let mut seen = nodes[3].bft().observed();
                seen.appended.clear();
                (seen, size(&nodes[3]))
            }
        );
        assert_eq!(nodes[3].bft().observed().epoch_ends_learned, 1);
        nodes[3]
            .bft()
            .submit(vec![register(&keys, 10)])
            .await
            .expect("node 3 orders in epoch 1 with the others");
        assert!(all_reach(&context, &nodes, boundary + 4, 10).await);
        assert_identical(&nodes.iter().collect::<Vec<_>>());
        for (i, node) in nodes.iter().enumerate() {
            let seen = node.bft().observed();
            assert!(seen.halted.is_none(), "node {i}: {:?}", seen.halted);
            assert!(seen.garbage.is_empty(), "node {i}: {:?}", seen.garbage);
            // Every node kept the end of epoch 0, node 3 the one it learned.
            assert!(dirs[i].path().join("epoch-0.end").exists(), "node {i}");
        }
    });
}

/// Keys of `n` organizations of which only the first `founders` are
/// custodians in the genesis (so the validators of epoch 0).
fn keys_founded_by(n: u8, founders: usize) -> Keys {
    let mut keys = keys(n);
    let genesis = Genesis {
        governance: vec![did(&keys.governance)],
        custodians: keys.nodes[..founders].iter().map(did).collect(),
        legacy: None,
    };
    keys.genesis = genesis_tx(NETWORK, &keys.nodes[0], &genesis, modules()).expect("genesis");
    keys
}

/// Four organizations found the network; a fifth is made a custodian in
/// epoch 0 and named, with the four, in the set of epoch 1 (five
/// validators: a quorum is four). Its node then starts from the genesis
/// alone: not a validator of epoch 0, it runs no engine, learns the end of
/// epoch 0 from a peer, applies every block up to it, and moves to epoch 1,
/// where it votes: with node 3 cut off, nodes 0 to 2 finalize only with
/// node 4's votes. Without the request for an epoch's end, node 4 stays at
/// the genesis and the test fails.
#[test]
fn an_organization_named_only_in_a_later_epoch_joins_from_genesis() {
    runner(24).start(|context| async move {
        let keys = keys_founded_by(5, 4);
        let dirs: Vec<_> = (0..5).map(|_| data_dir()).collect();
        let oracle = network_with(&context, &keys, link()).await;
        let mut nodes = start_honest(&context, &oracle, &keys, &dirs, 0..4).await;
        let custodian = sign(
            &keys.governance,
            "network.custodian",
            "custodian-4",
            json!({"op": "add", "key": did(&keys.nodes[4])}),
        );
        nodes[0]
            .bft()
            .submit(vec![custodian])
            .await
            .expect("the fifth organization becomes a custodian");
        let change = nodes[1]
            .bft()
            .submit(vec![validators_change(&keys, 1, &[0, 1, 2, 3, 4])])
            .await
            .expect("the change is ordered");
        let boundary = change.checkpoint.size;
        nodes[2]
            .bft()
            .submit(vec![register(&keys, 1)])
            .await
            .expect("epoch 1 finalizes with four of its five");
        nodes.push(
            start_node(
                &context,
                &oracle,
                &keys,
                4,
                dirs[4].path(),
                Proposing::Honest,
            )
            .await,
        );
        let seen = nodes[4].bft().observed();
        assert_eq!(
            (seen.epoch, seen.retired),
            (0, true),
            "a follower at genesis"
        );
        assert_eq!(size(&nodes[4]), 1);
        assert!(
            wait_for(&context, Duration::from_secs(30), || {
                let seen = nodes[4].bft().observed();
                seen.epoch == 1 && !seen.retired && size(&nodes[4]) == boundary + 1
            })
            .await,
            "node 4 catches up into epoch 1: {:?}",
            (nodes[4].bft().observed().epoch, size(&nodes[4]))
        );
        assert_eq!(nodes[4].bft().observed().epoch_ends_learned, 1);
        connect(&oracle, &keys, 3, false).await;
        nodes[4]
            .bft()
            .submit(vec![register(&keys, 2)])
            .await
            .expect("nodes 0 to 2 and node 4 are a quorum of epoch 1");
        let voters = [&nodes[0], &nodes[1], &nodes[2], &nodes[4]];
        assert!(
            wait_for(&context, Duration::from_secs(10), || voters
                .iter()
                .all(|n| size(n) == boundary + 2))
            .await
        );
        assert_identical(&voters);
    });
}

/// Node 0 answers every request for an epoch's end with a forged one (the
/// certificate's payload changed to another block, its signatures kept).
/// Node 3, down while epoch 0 ended, is started again with node 0 as its
/// only peer: it refuses the forged end (garbage, node 0 blocked), stays
/// in epoch 0 and appends nothing. Joined to nodes 1 and 2, it learns the
/// true end from them and catches up. With the certificate's verification
/// taken out, node 3 takes the forged block for the end of epoch 0, waits
/// for it forever, and the test fails.
#[test]
fn a_forged_end_of_epoch_does_not_move_a_node_behind() {
    runner(25).start(|context| async move {
        let keys = keys(4);
        let (mut nodes, oracle, dirs) = start_nodes(&context, &keys, link(), |i| {
            if i == 0 {
                Proposing::ForgingEpochEnd
            } else {
                Proposing::Honest
            }
        })
        .await;
        let boundary = end_epoch_0_without_node_3(&context, &keys, &mut nodes).await;
        nodes[2]
            .bft()
            .submit(vec![register(&keys, 2)])
            .await
            .expect("epoch 1 finalizes");
        // Node 3's only peer is the forger.
        connect(&oracle, &keys, 3, false).await;
        let pks: Vec<PublicKey> = keys.nodes.iter().map(public).collect();
        for (a, b) in [(0, 3), (3, 0)] {
            oracle
                .add_link(pks[a].clone(), pks[b].clone(), fast_link())
                .await
                .unwrap();
        }
        nodes[3] = start_node(
            &context,
            &oracle,
            &keys,
            3,
            dirs[3].path(),
            Proposing::Honest,
        )
        .await;
        let before = size(&nodes[3]);
        assert!(before < boundary);
        assert!(
            wait_for(&context, Duration::from_secs(10), || nodes[3]
                .bft()
                .observed()
                .garbage
                .contains_key(&pks[0]))
            .await,
            "the forged end is refused"
        );
        context.sleep(Duration::from_secs(5)).await;
        let seen = nodes[3].bft().observed();
        assert_eq!(seen.epoch, 0, "a forged end moves no node");
        assert_eq!(seen.epoch_ends_learned, 0);
        assert!(seen.halted.is_none(), "{:?}", seen.halted);
        assert_eq!(size(&nodes[3]), before);

        for (a, b) in [(0, 3), (3, 0)] {
            oracle
                .remove_link(pks[a].clone(), pks[b].clone())
                .await
                .unwrap();
        }
        connect(&oracle, &keys, 3, true).await;
        assert!(
            wait_for(&context, Duration::from_secs(30), || {
                nodes[3].bft().observed().epoch == 1 && size(&nodes[3]) == boundary + 1
            })
            .await,
            "node 3 catches up from the honest peers: {:?}",
            (nodes[3].bft().observed().epoch, size(&nodes[3]))
        );
        assert_identical(&nodes.iter().collect::<Vec<_>>());
    });
}

/// Has a client submit `count` registrations (numbered from `first`) to
/// node 0, one after another, stops node 1 `stop_after` into them (blocks
/// notarized but not yet finalized are in flight) and starts it again a
/// second later without its unfinalized-blocks file, so that it lacks the
/// blocks it voted for as a node that never received them does (with the
/// file it reads them back and fetches nothing). Returns the count of the
/// client's submissions ordered so far.
#[allow(clippy::too_many_arguments)]
async fn restart_node_1_under_load(
    context: &Context,
    oracle: &Oracle<PublicKey, Context>,
    keys: &Keys,
    nodes: &mut [Node],
    dirs: &[tempfile::TempDir],
    first: usize,
    count: usize,
    stop_after: Duration,
) -> Arc<AtomicUsize> {
    let ordered = Arc::new(AtomicUsize::new(0));
    let orderer = nodes[0].bft().clone();
    let txs: Vec<SignedTx> = (first..first + count).map(|i| register(keys, i)).collect();
    let counter = ordered.clone();
    context.child("client").spawn(move |_| async move {
        for tx in txs {
            if orderer.submit(vec![tx]).await.is_err() {
                return;
            }
            counter.fetch_add(1, AtomicOrdering::SeqCst);
        }
    });
    context.sleep(stop_after).await;
    assert!(
        ordered.load(AtomicOrdering::SeqCst) < count,
        "node 1 stops while the client still submits"
    );
    let down = take(nodes, 1);
    stop(context, down).await;
    std::fs::remove_file(dirs[1].path().join(crate::UNFINALIZED_FILE))
        .expect("node 1 voted for blocks, so it has the file");
    context.sleep(Duration::from_secs(1)).await;
    nodes[1] = start_node(context, oracle, keys, 1, dirs[1].path(), Proposing::Honest).await;
    ordered
}

/// Waits until the client of [`restart_node_1_under_load`] has `count`
/// submissions ordered and `nodes` hold `size_after` entries each, and
/// checks their logs are identical. Returns the blocks each node fetched
/// to check proposals and notarizations.
async fn ordered_after_the_restart(
    context: &Context,
    nodes: &[&Node],
    ordered: &AtomicUsize,
    count: usize,
    size_after: u64,
) -> Vec<u64> {
    let done = wait_for(context, Duration::from_secs(60), || {
        ordered.load(AtomicOrdering::SeqCst) == count && nodes.iter().all(|n| size(n) == size_after)
    })
    .await;
    assert!(
        done,
        "the network finalizes again after node 1's restart: {} of {count} ordered, sizes {:?}",
        ordered.load(AtomicOrdering::SeqCst),
        nodes.iter().map(|n| size(n)).collect::<Vec<_>>()
    );
    assert_identical(nodes);
    nodes
        .iter()
        .map(|node| {
            let seen = node.bft().observed();
            assert!(seen.halted.is_none(), "{:?}", seen.halted);
            assert!(seen.garbage.is_empty(), "{:?}", seen.garbage);
            seen.fetched_to_check
        })
        .collect()
}

/// Four founders; governance removes node 3 at epoch 1, whose three
/// validators are all needed for a quorum. Node 1 is stopped while a
/// client submits and started again without its unfinalized-blocks file:
/// its engine resumes from its journal, and the next proposals extend a
/// block it no longer has (finalized by the others with its vote, its
/// finalization never reported to it).
/// It fetches that block from a peer (kept only because it hashes to the
/// digest asked for), checks it, then the proposals on it, and votes.
/// Without the fetch it waits forever for the block, votes for nothing,
/// and nothing more is finalized (8 of 30 submissions ordered).
#[test]
fn a_restarted_validator_of_an_epoch_of_three_fetches_the_blocks_it_lost() {
    runner(26).start(|context| async move {
        let keys = keys(4);
        let (mut nodes, oracle, dirs) =
            start_nodes(&context, &keys, link(), |_| Proposing::Honest).await;
        let change = nodes[0]
            .bft()
            .submit(vec![validators_change(&keys, 1, &[0, 1, 2])])
            .await
            .expect("the change is ordered");
        let boundary = change.checkpoint.size;
        assert!(
            wait_for(&context, Duration::from_secs(10), || nodes[..3]
                .iter()
                .all(|n| n.bft().observed().epoch == 1 && size(n) >= boundary))
            .await
        );
        let count = 30;
        let ordered = restart_node_1_under_load(
            &context,
            &oracle,
            &keys,
            &mut nodes,
            &dirs,
            1,
            count,
            Duration::from_millis(700),
        )
        .await;
        assert_eq!(nodes[1].bft().observed().epoch, 1);
        let three = [&nodes[0], &nodes[1], &nodes[2]];
        let fetched =
            ordered_after_the_restart(&context, &three, &ordered, count, boundary + count as u64)
                .await;
        assert!(
            fetched[1] > 0,
            "node 1 fetched the block it lost: {fetched:?}"
        );
    });
}

/// Four validators; node 3 is stopped for good, so the three others are
/// all needed for a quorum. Node 1 is stopped while a client submits and
/// started again: the three finalize again. Without fetching the blocks a
/// check needs, node 1 stays one block behind and nothing more is
/// finalized (1 of 30 submissions ordered).
#[test]
fn a_restarted_validator_needed_for_a_quorum_of_four_fetches_the_blocks_it_lost() {
    runner(28).start(|context| async move {
        let keys = keys(4);
        let (mut nodes, oracle, dirs) =
            start_nodes(&context, &keys, link(), |_| Proposing::Honest).await;
        nodes[2]
            .bft()
            .submit(vec![register(&keys, 100)])
            .await
            .expect("four nodes finalize");
        let down = take(&mut nodes, 3);
        stop(&context, down).await;
        let start = size(&nodes[0]);
        let count = 30;
        let ordered = restart_node_1_under_load(
            &context,
            &oracle,
            &keys,
            &mut nodes,
            &dirs,
            1,
            count,
            Duration::from_millis(1050),
        )
        .await;
        let three = [&nodes[0], &nodes[1], &nodes[2]];
        let fetched =
            ordered_after_the_restart(&context, &three, &ordered, count, start + count as u64)
                .await;
        assert!(
            fetched[1] > 0,
            "node 1 fetched the block it lost: {fetched:?}"
        );
    });
}

/// A restarted node has its peers' cosignatures of its latest checkpoint
/// again within seconds, with nothing new ordered: each node sends its
/// newest cosignature every second, so `GET /checkpoint` on a restarted
/// node is quorum-cosigned again without waiting for the next block; and
/// after every node restarted, each cosigns its checkpoint again at start.
#[test]
fn a_restarted_node_has_its_peers_cosignatures_again_without_a_new_block() {
    runner(31).start(|context| async move {
        let keys = keys(4);
        let dirs: Vec<_> = (0..4).map(|_| data_dir()).collect();
        let oracle = network(&context, &keys).await;
        let mut nodes = Vec::new();
        for (i, dir) in dirs.iter().enumerate() {
            nodes.push(
                start_node_with(
                    &context,
                    &oracle,
                    &keys,
                    i,
                    dir.path(),
                    Proposing::Honest,
                    1 << 20,
                    true,
                )
                .await,
            );
        }
        nodes[0]
            .bft()
            .submit(vec![register(&keys, 1)])
            .await
            .expect("ordered");
        assert!(all_reach(&context, &nodes, 2, 10).await);
        let text = |node: &Node| {
            let checkpoint = node.store.snapshot().unwrap().checkpoint().unwrap().clone();
            hygeia_ledger::cosignature::CosignedNote::parse(&checkpoint.note)
                .unwrap()
                .text
        };
        let node = take(&mut nodes, 1);
        stop(&context, node).await;
        nodes[1] = start_node_with(
            &context,
            &oracle,
            &keys,
            1,
            dirs[1].path(),
            Proposing::Honest,
            1 << 20,
            true,
        )
        .await;
        let latest = text(&nodes[1]);
        assert!(
            wait_for(&context, Duration::from_secs(5), || {
                nodes[1].bft().peer_cosignatures(&latest).len() == 3
            })
            .await,
            "the restarted node holds {} peer cosignatures of its checkpoint",
            nodes[1].bft().peer_cosignatures(&latest).len(),
        );
        // Every node restarted: each cosigns its checkpoint again at start.
        for node in nodes.drain(..) {
            stop(&context, node).await;
        }
        for (i, dir) in dirs.iter().enumerate() {
            let node = start_node_with(
                &context,
                &oracle,
                &keys,
                i,
                dir.path(),
                Proposing::Honest,
                1 << 20,
                true,
            )
            .await;
            nodes.push(node);
        }
        assert!(
            wait_for(&context, Duration::from_secs(5), || {
                nodes
                    .iter()
                    .all(|node| node.bft().peer_cosignatures(&latest).len() == 3)
            })
            .await,
            "after every node restarted, they hold {:?} peer cosignatures",
            nodes
                .iter()
                .map(|node| node.bft().peer_cosignatures(&latest).len())
                .collect::<Vec<_>>()
        );
        assert!(
            nodes.iter().all(|node| size(node) == 2),
            "nothing new was ordered"
        );
    });
}

/// A transaction's index in the log and its bytes.
type Acknowledged = (u64, Vec<u8>);

/// Four validators order a client's submissions; all four are stopped at
/// once right after two of them (more than f = 1) certified a
/// notarization, and so voted to finalize its block, that no node has
/// finalized yet (the votes are on their way), and started again on their
/// storage. Their engines resume from their journals: the two cannot vote
/// to skip the view they voted to finalize, so the view cannot be
/// nullified and the next proposals must extend that block, which no node
/// holds in memory any more. The validators that voted for it read it
/// back from their unfinalized-blocks file (synced before each vote). The
/// network finalizes again, that block among the next ones, nothing
/// acknowledged is lost and the four logs are equal. Without the file,
/// nothing more is finalized.
#[test]
fn a_block_notarized_when_every_validator_restarts_is_finalized_after_it() {
    runner(34).start(|context| async move {
        let keys = keys(4);
        let (mut nodes, oracle, dirs) =
            start_nodes(&context, &keys, link(), |_| Proposing::Honest).await;
        // (index, bytes) of each submission acknowledged to the client.
        let acknowledged: Arc<std::sync::Mutex<Vec<Acknowledged>>> = Arc::default();
        let orderer = nodes[0].bft().clone();
        let txs: Vec<SignedTx> = (1..=40).map(|i| register(&keys, i)).collect();
        let acked = acknowledged.clone();
        context.child("client").spawn(move |_| async move {
            for tx in txs {
                let bytes = tx.canonical_bytes().to_vec();
                match orderer.submit(vec![tx]).await {
                    Ok(receipt) => acked.lock().unwrap().push((receipt.first_index, bytes)),
                    Err(_) => return,
                }
            }
        });
        assert!(
            wait_for(&context, Duration::from_secs(10), || acknowledged
                .lock()
                .unwrap()
                .len()
                >= 3)
            .await
        );
        let deadline = context.current() + Duration::from_secs(10);
        let notarized = loop {
            let seen: Vec<_> = nodes.iter().map(|n| n.bft().observed()).collect();
            let finalized: std::collections::HashSet<_> = seen
                .iter()
                .flat_map(|o| o.appended.iter().map(|(_, d, _)| *d))
                .collect();
            let certified: Vec<_> = seen.iter().filter_map(|o| o.certified).collect();
            let open = certified.iter().find(|(view, digest)| {
                !finalized.contains(digest)
                    && certified.iter().filter(|(v, _)| v == view).count() >= 2
            });
            if let Some((_, digest)) = open {
                break *digest;
            }
            assert!(
                context.current() < deadline,
                "no block certified by two nodes seen before its finalization"
            );
            context.sleep(Duration::from_millis(1)).await;
        };
        // All four at once: none finalizes it before it stops.
        for node in &mut nodes {
            for task in node.tasks.drain(..) {
                task.abort();
            }
        }
        for node in &nodes {
            let seen = node.bft().observed();
            assert!(
                !seen.appended.iter().any(|(_, d, _)| *d == notarized),
                "the block was not finalized before the stop"
            );
        }
        let before = acknowledged.lock().unwrap().clone();
        for node in nodes.drain(..) {
            drop(node.orderer);
            drop(node.store);
        }
        context.sleep(Duration::from_secs(1)).await;
        // Every validator that voted for it (a quorum) has it on disk.
        let kept = dirs
            .iter()
            .filter(|dir| {
                let path = dir.path().join(crate::UNFINALIZED_FILE);
                let (file, _) = crate::chain::Unfinalized::open(&path).unwrap();
                file.contains(&notarized.0)
            })
            .count();
        assert!(kept >= 3, "{kept} nodes kept the notarized block on disk");
        for (i, dir) in dirs.iter().enumerate() {
            nodes.push(start_node(&context, &oracle, &keys, i, dir.path(), Proposing::Honest).await);
        }
        let after = Arc::new(AtomicUsize::new(0));
        let orderer = nodes[2].bft().clone();
        let tx = register(&keys, 100);
        let done = after.clone();
        context.child("client_after").spawn(move |_| async move {
            if orderer.submit(vec![tx]).await.is_ok() {
                done.fetch_add(1, AtomicOrdering::SeqCst);
            }
        });
        let finalized_again = wait_for(&context, Duration::from_secs(15), || {
            after.load(AtomicOrdering::SeqCst) == 1
                && nodes.iter().all(|n| size(n) == size(&nodes[2]))
                && nodes.iter().all(|n| {
                    n.bft()
                        .observed()
                        .appended
                        .iter()
                        .any(|(_, d, _)| *d == notarized)
                })
        })
        .await;
        assert!(
            finalized_again,
            "the network finalizes again, the notarized block with it, after every validator restarted: {} of 1 new submission ordered, sizes {:?}, read back {:?}",
            after.load(AtomicOrdering::SeqCst),
            nodes.iter().map(size).collect::<Vec<_>>(),
            nodes.iter().map(|n| n.bft().observed().read_back).collect::<Vec<_>>(),
        );
        let all: Vec<&Node> = nodes.iter().collect();
        assert_identical(&all);
        let log = entries(&nodes[0]);
        for (index, bytes) in &before {
            assert_eq!(
                log.get(*index as usize),
                Some(bytes),
                "acknowledged entry {index} kept"
            );
        }
        let read_back: Vec<u64> = nodes.iter().map(|n| n.bft().observed().read_back).collect();
        assert!(
            read_back.iter().filter(|r| **r > 0).count() >= 3,
            "the nodes read back their unfinalized blocks at start: {read_back:?}"
        );
        for node in &nodes {
            let seen = node.bft().observed();
            assert!(seen.halted.is_none(), "{:?}", seen.halted);
            assert!(seen.garbage.is_empty(), "{:?}", seen.garbage);
        }
    });
}
