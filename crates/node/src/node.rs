//! A running node's state: its key, its log and its sequencer.

use std::sync::Arc;

use hygeia_identity::{KeyFileError, Keypair};
use hygeia_ledger::index::LeafIndexer;
use hygeia_ledger::store::LogWriter;
use hygeia_ledger::{CheckpointSigner, LogStore, ModuleRegistry, Sequencer, StoreError};

use crate::config::{NodeConfig, LEDGER_FILE, NODE_KEY_FILE};

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
    #[error("invalid network name: {0}")]
    Network(String),
}

/// The node's shared state, behind the HTTP handlers.
pub struct Node {
    pub config: NodeConfig,
    pub store: Arc<LogStore>,
    pub sequencer: Sequencer,
    pub modules: ModuleRegistry,
    pub node_did: String,
    pub verifier_key: String,
    /// Keeps the leaf-hash index caught up; stops with the node.
    _indexer: LeafIndexer,
}

impl Node {
    /// Opens the data directory, creating it, the node key and the log on
    /// first use.
    pub fn open(config: NodeConfig) -> Result<Node, NodeError> {
        let dir = &config.data_dir;
        std::fs::create_dir_all(dir).map_err(|source| NodeError::DataDir {
            path: dir.display().to_string(),
            source,
        })?;
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
        let signer = CheckpointSigner::new(&config.network, key)
            .map_err(|e| NodeError::Network(e.to_string()))?;
        let verifier_key = signer.verifier_key();
        let store = Arc::new(LogStore::open(&dir.join(LEDGER_FILE), &config.network)?);
        let writer = LogWriter::open(store.clone(), signer)?;
        let sequencer = Sequencer::start(writer, config.batch);
        let indexer = LeafIndexer::start(store.clone());
        Ok(Node {
            _indexer: indexer,
            config,
            store,
            sequencer,
            modules: ModuleRegistry::with_builtins(),
            node_did,
            verifier_key,
        })
    }
}

/// Serves the HTTP API on `listener` until `shutdown` resolves.
pub async fn serve(
    node: Arc<Node>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, crate::api::router(node))
        .with_graceful_shutdown(shutdown)
        .await
}
