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

use crate::config::{NodeConfig, FHIR_FILE, LEDGER_FILE, NETWORK_FILE, NODE_KEY_FILE, VAULT_DIR};
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
    HealthCards(#[from] crate::health_cards::IssuerError),
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
    pub sequencer: Sequencer,
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
    /// Research eligibility studies and their tallies, in memory only
    /// (a restart forgets them; docs/zk.md).
    pub research: crate::research::Studies,
    /// Keeps the leaf-hash index caught up; stops with the node.
    _indexer: LeafIndexer,
}

impl Node {
    /// Opens the data directory, creating it, the node key and the log on
    /// first use, and replays the log into the state.
    pub fn open(mut config: NodeConfig) -> Result<Node, NodeError> {
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
        let mut writer = LogWriter::open(store.clone(), signer)?;
        if writer.checkpoint().size == 0 {
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
        let committed = replay(&store, &config, &modules)?;
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
        let on_erased = {
            let custody = custody.clone();
            Box::new(move |commitment: &str| {
                if let Err(e) = custody.erase(commitment) {
                    tracing::error!(commitment, error = %e, "erasure is on the ledger but its keys could not be destroyed; they will be at the next start");
                }
            })
        };
        let sequencer = Sequencer::start_with_state(
            writer,
            config.batch,
            Box::new(StateWriter::new(state.clone(), on_erased)),
        );
        let indexer = LeafIndexer::start(store.clone());
        let auth = Verifier::new(config.auth_window, unix_now());
        let fhir_store = crate::fhir_store::FhirStore::open(&dir.join(FHIR_FILE))
            .map_err(|e| NodeError::Fhir(e.to_string()))?;
        let repaired =
            crate::fhir_store::repair(&fhir_store, &custody, &state.read().state.records)
                .map_err(|e| NodeError::Fhir(e.to_string()))?;
        if repaired > 0 {
            tracing::warn!(
                repaired,
                "indexed FHIR versions a crash left out of the FHIR store"
            );
        }
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
        Ok(Node {
            tokens: hygeia_auth::token::TokenStore::new(),
            jtis,
            fhir,
            health_cards,
            research: Default::default(),
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
/// genesis entry that names the network's rules.
fn replay(
    store: &LogStore,
    config: &NodeConfig,
    modules: &ModuleRegistry,
) -> Result<Committed, NodeError> {
    let mut committed = Committed::new(LedgerState::empty());
    let snapshot = store.snapshot()?;
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
        .for_each_entry(|index, entry| {
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
        records = committed.state.records.len(),
        millis = started.elapsed().as_millis() as u64,
        "state replayed from the log"
    );
    Ok(committed)
}
