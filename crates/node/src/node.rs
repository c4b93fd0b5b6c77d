//! A running node: its key, its log, its state, its vault and its sequencer.

use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use hygeia_auth::Verifier;
use hygeia_identity::{KeyFileError, Keypair};
use hygeia_ledger::index::LeafIndexer;
use hygeia_ledger::store::LogWriter;
use hygeia_ledger::tx::TxContext;
use hygeia_ledger::{CheckpointSigner, LogStore, ModuleRegistry, Sequencer, SignedTx, StoreError};
use serde::{Deserialize, Serialize};

use crate::config::{
    NodeConfig, FHIR_FILE, LEDGER_FILE, NETWORK_FILE, NODE_KEY_FILE, SNAPSHOT_DIR, VAULT_DIR,
};
use crate::custody::{Custody, CustodyError};
use crate::state::writer::{Committed, SharedState, StateWriter};
use crate::state::{may_change_state, network, txs, LedgerState};

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot use data directory {path}: {source}")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Key(#[from] KeyFileError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Custody(#[from] CustodyError),
    #[error("invalid network name: {0}")]
    Network(String),
    #[error("{0}")]
    Governance(String),
    #[error("the FHIR store: {0}")]
    Fhir(String),
    #[error(transparent)]
    Research(#[from] crate::research::ResearchStoreError),
    #[error(transparent)]
    HealthCards(#[from] crate::health_cards::IssuerError),
    #[error("{0}")]
    SmartClients(String),
    #[error("the log does not replay: entry {index}: {message}")]
    Replay { index: u64, message: String },
    #[error("{dir} holds a log made before logs began with a genesis entry (leaf 0 is {found:?}); migrate it with `hygeia migrate --data-dir {dir}` (the old log is kept as a backup), then start again")]
    NotMigrated { dir: String, found: String },
}

/// The network's founding facts, written at the first start.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct NetworkFile {
    network: String,
    governance: Option<String>,
}

/// The node's shared state, behind the HTTP handlers.
pub struct Node {
    pub config: NodeConfig,
    pub store: Arc<LogStore>,
    /// Orders the log: the embedded sequencer, or the BFT orderer shared
    /// with the other organizations' nodes (`crate::ordering`).
    pub sequencer: crate::ordering::Ordering,
    pub modules: ModuleRegistry,
    pub node_did: String,
    pub verifier_key: String,
    /// Signs the node's own transactions (`record`, `access`).
    pub key: Keypair,
    pub state: SharedState,
    pub custody: Arc<Custody>,
    pub auth: Verifier,
    /// Bearer tokens issued at `POST /auth/token`, and the client
    /// assertion ids already spent.
    pub tokens: hygeia_auth::token::TokenStore,
    pub jtis: hygeia_auth::token::JtiCache,
    /// The FHIR API's store, commit clock and export jobs.
    pub fhir: Arc<crate::fhir_store::FhirService>,
    /// Signs the SMART Health Cards issued at
    /// `$health-cards-issue`; its key set is at `/.well-known/jwks.json`.
    pub health_cards: crate::health_cards::HealthCardIssuer,
    /// Research eligibility studies and their tallies, kept durably in
    /// `research.redb` (private node state, never on the ledger; docs/zk.md).
    pub research: crate::research::Studies,
    /// The SMART clients registered in `smart-clients.json`, and the
    /// authorization requests and codes in flight (docs/smart.md).
    pub smart_clients: hygeia_auth::smart::Clients,
    pub authorizations: hygeia_auth::smart::Authorizations,
    /// The size of the state snapshot the start-up loaded (and replayed the
    /// log after), or `None` when it replayed the whole log.
    pub started_from_snapshot: Option<u64>,
    /// Cosigns the own log's checkpoints and witnesses logs at
    /// `POST /add-checkpoint` (`crate::witness`).
    pub witness: crate::witness::Witness,
    /// The log size the committed state covers, updated after each
    /// durable batch or appended block (the replication follower,
    /// `crate::follower`, wakes on it).
    pub committed_size: tokio::sync::watch::Receiver<u64>,
    /// Keeps the leaf-hash index caught up; stops with the node.
    _indexer: LeafIndexer,
}

/// How long each part of opening a data directory took. A large one takes
/// a while (the state, the FHIR search index and the commitment maps are
/// rebuilt in memory): a part that takes a second or more is logged when
/// it ends, as progress, and all of them once the directory is open.
struct StartPhases {
    started: std::time::Instant,
    last: std::time::Instant,
    done: Vec<(&'static str, u128)>,
}

impl StartPhases {
    fn new() -> StartPhases {
        let now = std::time::Instant::now();
        StartPhases {
            started: now,
            last: now,
            done: Vec::new(),
        }
    }

    fn done(&mut self, phase: &'static str) {
        let now = std::time::Instant::now();
        let millis = now.duration_since(self.last).as_millis();
        self.last = now;
        if millis >= 1000 {
            tracing::info!(phase, millis, "start-up: part done");
        }
        self.done.push((phase, millis));
    }

    fn finish(self, dir: &std::path::Path) {
        let phases: Vec<String> = self
            .done
            .iter()
            .map(|(phase, millis)| format!("{phase} {millis} ms"))
            .collect();
        tracing::info!(
            data_dir = %dir.display(),
            millis = self.started.elapsed().as_millis(),
            phases = %phases.join(", "),
            "data directory opened"
        );
    }
}

impl Node {
    /// Opens the data directory, creating it, the node key and the log on
    /// first use, and replays the log into the state.
    pub fn open(mut config: NodeConfig) -> Result<Node, NodeError> {
        let mut phases = StartPhases::new();
        let dir = config.data_dir.clone();
        let io_error = |source| NodeError::DataDir {
            path: dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(io_error)?;
        config.governance = settle_governance(&dir, &config)?;
        let key_path = dir.join(NODE_KEY_FILE);
        let key = if key_path.exists() {
            Keypair::read_key_file(&key_path)?
        } else {
            let key = Keypair::generate();
            key.write_key_file(&key_path)?;
            tracing::info!(path = %key_path.display(), did = %key.did(), "created the node key");
            key
        };
        let node_did = key.did().to_string();
        let health_cards = crate::health_cards::HealthCardIssuer::open(&dir, &config)?;
        let signer = CheckpointSigner::new(
            &config.network,
            Keypair::from_seed(&key.as_dalek().to_bytes()),
        )
        .map_err(|e| NodeError::Network(e.to_string()))?;
        let verifier_key = signer.verifier_key();
        let store = Arc::new(LogStore::open(&dir.join(LEDGER_FILE), &config.network)?);
        let modules = txs::registry();
        phases.done("log");
        let mut writer = LogWriter::open(store.clone(), signer)?;
        if writer.checkpoint().size == 0 {
            if config.peers.is_some() {
                return Err(NodeError::Network(format!(
                    "{} holds no log: a node of a multi-organization network starts from the genesis `hygeia network init` wrote",
                    dir.display()
                )));
            }
            write_genesis(&mut writer, &config, &key, &modules)?;
        }
        let first = store.snapshot()?.entry(0)?.unwrap_or_default();
        if !network::is_genesis_entry(&first) {
            let found = serde_json::from_slice::<serde_json::Value>(&first)
                .ok()
                .and_then(|v| v["type"].as_str().map(str::to_owned))
                .unwrap_or_else(|| "unreadable".into());
            return Err(NodeError::NotMigrated {
                dir: dir.display().to_string(),
                found,
            });
        }

        let custody = Arc::new(Custody::open(&dir.join(VAULT_DIR))?);
        let research = crate::research::Studies::open(
            &crate::research::store_path(&dir),
            custody.research_sealer()?,
        )?;
        phases.done("vault");
        let view = store.snapshot()?;
        let snapshot_dir = dir.join(SNAPSHOT_DIR);
        let loaded =
            crate::snapshots::load_newest(&snapshot_dir, &view, &config.network, &node_did);
        let loaded_snapshot = loaded.as_ref().map(|(size, _, _)| *size);
        let newest_snapshot = loaded_snapshot.unwrap_or(0);
        let committed = replay(&view, &config, &modules, loaded)?;
        let covered = view.size();
        drop(view);
        phases.done("state");
        // The rules come from the log: its governance key, and whether
        // this node's key may sign records and access events.
        config.governance = committed.state.participants.governance().map(str::to_owned);
        if !committed.state.network.is_custodian(&node_did) {
            tracing::warn!(
                node = %node_did,
                "this node's key is not in the network's custodian set: it cannot write records or access events"
            );
        }
        // An erasure is durable before its keys are destroyed; finish any
        // that a crash interrupted.
        for record in committed.state.records.erased() {
            custody.erase(&record.commitment)?;
        }
        let state = SharedState::new(committed);
        // And any group key left only for records now erased.
        crate::custody::shred_unused_groups(&custody, &state)?;
        phases.done("erasures");
        let on_erased = {
            let custody = custody.clone();
            let state = state.clone();
            Box::new(move |commitment: &str| {
                // Read before the record's keys go: its node copy names it.
                let group = custody.record_group(commitment);
                if let Err(e) = custody.erase(commitment) {
                    tracing::error!(commitment, error = %e, "erasure is on the ledger but its keys could not be destroyed; they will be at the next start");
                    return;
                }
                let patient = state
                    .read()
                    .state
                    .records
                    .get(commitment)
                    .map(|r| r.patient.clone());
                let shredded = match (group, patient) {
                    (Ok(Some(group)), Some(patient)) => {
                        crate::custody::shred_unused_group(&custody, &state, &patient, &group)
                    }
                    (Ok(_), _) => return,
                    (Err(e), _) => Err(e),
                };
                match shredded {
                    Ok(outcome) => {
                        tracing::debug!(commitment, ?outcome, "patient's group key after erasure")
                    }
                    Err(e) => {
                        tracing::error!(commitment, error = %e, "a record is erased but its patient's group key could not be checked or destroyed; it will be at the next start")
                    }
                }
            })
        };
        let snapshotter = Arc::new(crate::snapshots::Snapshotter::new(
            snapshot_dir,
            store.clone(),
            &key,
            &config.network,
        ));
        let (progress, committed_size) = tokio::sync::watch::channel(covered);
        let commit = Box::new(
            crate::snapshots::SnapshottingWriter::new(
                StateWriter::new(state.clone(), on_erased),
                state.clone(),
                snapshotter,
                config.snapshot_every,
                covered,
                newest_snapshot,
            )
            .with_progress(progress),
        );
        let sequencer = match &config.peers {
            None => crate::ordering::Ordering::Local(Sequencer::start_with_state(
                writer,
                config.batch,
                commit,
            )),
            Some(peers) => crate::ordering::Ordering::Bft(start_bft(
                &dir,
                &config,
                peers,
                &key,
                OrderedLog {
                    store: store.clone(),
                    writer,
                    commit,
                    replayed: state.read().state.clone(),
                },
            )?),
        };
        phases.done("ordering");
        let indexer = LeafIndexer::start(store.clone());
        let auth = Verifier::new(config.auth_window, unix_now());
        phases.done("leaf index");
        let fhir_store = crate::fhir_store::FhirStore::open(&dir.join(FHIR_FILE))
            .map_err(|e| NodeError::Fhir(e.to_string()))?;
        phases.done("fhir store");
        let repaired =
            crate::fhir_store::repair(&fhir_store, &custody, &state.read().state.records)
                .map_err(|e| NodeError::Fhir(e.to_string()))?;
        if repaired > 0 {
            tracing::warn!(
                repaired,
                "indexed FHIR versions a crash left out of the FHIR store"
            );
        }
        phases.done("fhir repair");
        let fhir = Arc::new(crate::fhir_store::FhirService {
            store: fhir_store,
            exports: Default::default(),
        });
        // Participants the node knows (members of an organization, patients
        // with records here) keep room in the replay cache that fresh keys
        // cannot take (docs/auth.md, "Replay").
        let jtis = {
            let (state, fhir) = (state.clone(), fhir.clone());
            hygeia_auth::token::JtiCache::with_limits(
                config.jti_capacity,
                config.jti_capacity,
                hygeia_auth::token::DEFAULT_JTI_PER_ISSUER,
                move |iss| {
                    !state.read().state.participants.memberships(iss).is_empty()
                        || fhir.store.holds_patient(iss)
                },
            )
        };
        let smart_clients = load_smart_clients(&dir)?;
        let witness = crate::witness::Witness::open(&dir, &config.network, &key)
            .map_err(NodeError::Network)?;
        phases.done("rest");
        phases.finish(&dir);
        Ok(Node {
            committed_size,
            witness,
            smart_clients,
            authorizations: Default::default(),
            tokens: hygeia_auth::token::TokenStore::new(),
            jtis,
            fhir,
            health_cards,
            research,
            started_from_snapshot: loaded_snapshot,
            _indexer: indexer,
            config,
            store,
            sequencer,
            modules,
            node_did,
            verifier_key,
            key,
            state,
            custody,
            auth,
        })
    }
}

/// The log consensus appends to, its state machine, and the state the
/// node replayed from it at start (so consensus does not replay it again).
struct OrderedLog {
    store: Arc<LogStore>,
    writer: LogWriter,
    commit: Box<dyn hygeia_ledger::StateMachine>,
    replayed: LedgerState,
}

/// Starts this node's part of the organizations' network: consensus over
/// authenticated p2p to the peers in `peers` (docs/network.md).
fn start_bft(
    dir: &Path,
    config: &NodeConfig,
    peers: &crate::ordering::PeersFile,
    key: &Keypair,
    log: OrderedLog,
) -> Result<hygeia_consensus::BftOrderer, NodeError> {
    let OrderedLog {
        store,
        writer,
        commit,
        replayed,
    } = log;
    let bad = |m: String| NodeError::Network(format!("the peers file: {m}"));
    if peers.network != config.network {
        return Err(bad(format!(
            "it is for network {}, this node is on {}",
            peers.network, config.network
        )));
    }
    let me = key.did().to_string();
    let mut listen = None;
    let mut keys = Vec::new();
    for peer in &peers.peers {
        let public = hygeia_consensus::net::peer_key(&peer.did)
            .ok_or_else(|| bad(format!("{} is not an Ed25519 did:key", peer.did)))?;
        if peer.did == me {
            listen = Some(peer.p2p);
        }
        keys.push((public, peer.p2p));
    }
    let listen = listen.ok_or_else(|| bad(format!("this node ({me}) is not in it")))?;
    // One registry for the life of the process (the engine holds it).
    let modules: &'static ModuleRegistry = Box::leak(Box::new(txs::registry()));
    let consensus = dir.join(crate::config::CONSENSUS_DIR);
    let timeouts = hygeia_consensus::Timeouts::default();
    let orderer = hygeia_consensus::net::spawn(
        hygeia_consensus::Config {
            key: Keypair::from_seed(&key.as_dalek().to_bytes()),
            network: config.network.clone(),
            modules,
            store,
            writer,
            commit,
            blocker: (),
            partition: "engine".into(),
            timeouts,
            max_block_txs: hygeia_consensus::block::MAX_BLOCK_TXS,
            proposing: hygeia_consensus::Proposing::Honest,
            chain: consensus.join(crate::config::CHAIN_FILE),
            // An idle network stores no empty blocks: a leader with
            // nothing to order takes a submission for its whole view, then
            // lets the view be nullified (docs/network.md, "An idle
            // network").
            idle: hygeia_consensus::Idle::ProposeNothing(timeouts.leader),
            // The same bound as the single-node sequencer's queue.
            max_pending_txs: config.batch.max_queued_txs,
            // Replayed once, by the node, a moment ago.
            replayed: Some(replayed),
            // net::spawn tells its p2p layer of each epoch's validators.
            peer_sets: None,
            // A node made by `hygeia network join` starts though its key
            // is not in its log's current set, follows the network and
            // votes once an epoch names it; any other node outside the
            // current set is refused.
            follow: peers.follow,
            cosigner: Some(
                hygeia_ledger::cosignature::Cosigner::new(
                    &me,
                    Keypair::from_seed(&key.as_dalek().to_bytes()),
                )
                .map_err(|e| NodeError::Network(e.to_string()))?,
            ),
        },
        hygeia_consensus::net::Network {
            listen,
            peers: keys,
            storage: consensus.join("engine"),
            threads: 2,
        },
    )
    .map_err(|e| NodeError::Network(e.to_string()))?;
    tracing::info!(%listen, peers = peers.peers.len(), "ordering with the organizations' network (BFT)");
    Ok(orderer)
}

/// Current Unix time in seconds.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The governance DID is fixed at network creation: the first start
/// records it; later starts must agree (or say nothing).
fn settle_governance(dir: &Path, config: &NodeConfig) -> Result<Option<String>, NodeError> {
    let path = dir.join(NETWORK_FILE);
    let io_error = |source| NodeError::DataDir {
        path: path.display().to_string(),
        source,
    };
    if let Some(did) = &config.governance {
        hygeia_identity::Did::parse_cached(did).map_err(|e| {
            NodeError::Governance(format!("the governance key must be a did:key: {e}"))
        })?;
    }
    if path.exists() {
        let text = std::fs::read_to_string(&path).map_err(io_error)?;
        let file: NetworkFile = serde_json::from_str(&text)
            .map_err(|e| NodeError::Governance(format!("{} is damaged: {e}", path.display())))?;
        if config.governance.is_some() && config.governance != file.governance {
            return Err(NodeError::Governance(format!(
                "this network's governance key is {}; it was fixed when the network was created and cannot be changed here",
                file.governance.as_deref().unwrap_or("(none)")
            )));
        }
        return Ok(file.governance);
    }
    let file = NetworkFile {
        network: config.network.clone(),
        governance: config.governance.clone(),
    };
    let text =
        serde_json::to_string_pretty(&file).map_err(|e| NodeError::Governance(e.to_string()))?;
    let tmp = dir.join(format!("{NETWORK_FILE}.tmp"));
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(io_error)?;
    if config.governance.is_none() {
        tracing::warn!("no governance key: organizations cannot be registered on this network");
    }
    Ok(file.governance)
}

/// A new log's leaf 0: the genesis entry, signed by this (founding) node,
/// naming the governance key and this node as the only custodian.
fn write_genesis(
    writer: &mut LogWriter,
    config: &NodeConfig,
    key: &Keypair,
    modules: &ModuleRegistry,
) -> Result<(), NodeError> {
    let genesis = network::Genesis {
        governance: config.governance.iter().cloned().collect(),
        custodians: vec![key.did().to_string()],
        legacy: None,
    };
    let tx = network::genesis_tx(&config.network, key, &genesis, modules)
        .map_err(|e| NodeError::Network(e.to_string()))?;
    let outcome = writer.append_batch(&[std::slice::from_ref(&tx)])?;
    match outcome.results.first() {
        Some(Ok(0)) => {
            tracing::info!(
                network = %config.network,
                id = %hex::encode(tx.leaf_hash().0),
                "wrote the genesis entry of a new network"
            );
            Ok(())
        }
        other => Err(NodeError::Network(format!(
            "the genesis entry was not written at leaf 0: {other:?}"
        ))),
    }
}

/// Rebuilds the state from the log: every entry that can change it, with
/// its signature checked, in order, starting from nothing: leaf 0 is the
/// genesis entry that names the network's rules. With a snapshot (checked
/// against this log, `crate::snapshots`), from the snapshot's state and
/// only the entries after it.
pub(crate) fn replay(
    snapshot: &hygeia_ledger::store::Snapshot,
    config: &NodeConfig,
    modules: &ModuleRegistry,
    loaded: Option<(u64, Committed, std::path::PathBuf)>,
) -> Result<Committed, NodeError> {
    let (start, mut committed) = match loaded {
        Some((size, committed, path)) => {
            tracing::info!(path = %path.display(), size, "state loaded from a snapshot; replaying the entries after it");
            (size, committed)
        }
        None => (0, Committed::new(LedgerState::empty())),
    };
    let ctx = TxContext {
        network: &config.network,
        modules,
    };
    let mut pending: Vec<(u64, Vec<u8>)> = Vec::new();
    let flush =
        |pending: &mut Vec<(u64, Vec<u8>)>, committed: &mut Committed| -> Result<(), NodeError> {
            let raws: Vec<&[u8]> = pending.iter().map(|(_, raw)| raw.as_slice()).collect();
            let txs: Vec<SignedTx> =
                SignedTx::parse_many(&raws, &ctx).map_err(|(position, e)| NodeError::Replay {
                    index: pending[position].0,
                    message: e.to_string(),
                })?;
            for ((index, _), tx) in pending.iter().zip(&txs) {
                committed.apply(*index, tx).map_err(|e| NodeError::Replay {
                    index: *index,
                    message: format!("{} ({})", e, e.code.as_str()),
                })?;
            }
            pending.clear();
            Ok(())
        };
    let started = std::time::Instant::now();
    let mut replay_error = None;
    snapshot
        .for_each_entry_from(start, |index, entry| {
            if may_change_state(entry) {
                pending.push((index, entry.to_vec()));
                if pending.len() >= 4096 {
                    if let Err(e) = flush(&mut pending, &mut committed) {
                        replay_error = Some(e);
                        return Err(StoreError::Corrupt("replay stopped".into()));
                    }
                }
            }
            Ok(())
        })
        .map_err(|e| replay_error.take().unwrap_or(NodeError::Store(e)))?;
    if let Some(e) = replay_error {
        return Err(e);
    }
    flush(&mut pending, &mut committed)?;
    tracing::info!(
        entries = snapshot.size(),
        from_snapshot = start,
        records = committed.state.records.len(),
        millis = started.elapsed().as_millis() as u64,
        "state replayed from the log"
    );
    Ok(committed)
}

/// Reads `smart-clients.json` if the operator wrote one: every client
/// checked, and its purpose of use one the policy engine knows.
fn load_smart_clients(dir: &std::path::Path) -> Result<hygeia_auth::smart::Clients, NodeError> {
    let path = dir.join(crate::config::SMART_CLIENTS_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Default::default()),
        Err(source) => {
            return Err(NodeError::DataDir {
                path: path.display().to_string(),
                source,
            })
        }
    };
    let clients = hygeia_auth::smart::Clients::from_json(&bytes)
        .map_err(|e| NodeError::SmartClients(format!("{}: {e}", path.display())))?;
    for client in clients.iter() {
        client
            .purpose_of_use
            .parse::<hygeia_policy::PurposeOfUse>()
            .map_err(|e| {
                NodeError::SmartClients(format!(
                    "{}: {}: purpose_of_use: {e}",
                    path.display(),
                    client.client_id
                ))
            })?;
    }
    tracing::info!(clients = clients.iter().count(), "SMART clients registered");
    Ok(clients)
}
