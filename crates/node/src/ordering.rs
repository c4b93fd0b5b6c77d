//! What orders this node's log: the embedded single-node sequencer (the
//! default), or the BFT orderer shared with the other organizations'
//! nodes (`hygeia serve --peers`, docs/network.md).

use std::net::SocketAddr;
use std::sync::Arc;

use hygeia_consensus::BftOrderer;
use hygeia_ledger::tx::UnverifiedTx;
use hygeia_ledger::{Orderer, Receipt, Sequencer, SignedCheckpoint, SignedTx, SubmitError};
use serde::{Deserialize, Serialize};

/// The peers file `hygeia network init` writes into every node's data
/// directory: the network's organizations' node keys and p2p addresses.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeersFile {
    /// The network name (the log's origin).
    pub network: String,
    /// Set by `hygeia network join`: this node joined after the genesis,
    /// so it starts even though its key is not a validator of its log's
    /// current epoch, follows the network (catching up from its peers,
    /// epoch by epoch) and votes once an epoch names it. Without it, a key
    /// outside the current set does not start.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub follow: bool,
    pub peers: Vec<Peer>,
}

/// One organization's node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Peer {
    /// The node key's did:key (a custodian of the genesis).
    pub did: String,
    /// Where its consensus p2p listens.
    pub p2p: SocketAddr,
    /// Where its HTTP API listens, for people and clients (not used by
    /// consensus).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<String>,
}

/// The node's orderer.
pub enum Ordering {
    /// This node orders its own log.
    Local(Sequencer),
    /// The organizations' nodes order one log together.
    Bft(BftOrderer),
}

impl Ordering {
    /// Orders verified transactions; answers once they are durable here.
    pub async fn submit(&self, txs: Vec<SignedTx>) -> Result<Receipt, SubmitError> {
        match self {
            Ordering::Local(sequencer) => sequencer.submit(txs).await,
            Ordering::Bft(bft) => Orderer::submit(bft, txs).await,
        }
    }

    /// Checks the signatures, then orders.
    pub async fn submit_unverified(&self, txs: Vec<UnverifiedTx>) -> Result<Receipt, SubmitError> {
        match self {
            Ordering::Local(sequencer) => sequencer.submit_unverified(txs).await,
            Ordering::Bft(bft) => {
                let txs = tokio::task::spawn_blocking(move || hygeia_ledger::tx::verify_all(txs))
                    .await
                    .map_err(|_| SubmitError::ShuttingDown)?
                    .map_err(|(position, e)| SubmitError::Rejected(e.at(position)))?;
                Orderer::submit(bft, txs).await
            }
        }
    }

    /// The latest durable signed checkpoint of the local log.
    pub fn latest_checkpoint(&self) -> Arc<SignedCheckpoint> {
        match self {
            Ordering::Local(sequencer) => sequencer.latest_checkpoint(),
            Ordering::Bft(bft) => bft.latest_checkpoint(),
        }
    }
}

/// Why a network could not be initialized.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error(transparent)]
    Key(#[from] hygeia_identity::KeyFileError),
    #[error(transparent)]
    Store(#[from] hygeia_ledger::StoreError),
    #[error("{0}")]
    Invalid(String),
}

/// One node of a network being initialized.
pub struct InitNode {
    pub data_dir: std::path::PathBuf,
    pub p2p: SocketAddr,
    pub api: Option<String>,
}

/// Writes a new network's genesis into each node's data directory (the
/// node key is created there if missing): the same genesis entry at leaf
/// 0 of every log, naming every node key as custodian (validator) and
/// `governance`, signed by the first node's key; and the peers file.
/// Refuses a data directory that already holds a log. Returns the peers.
pub fn init(
    network: &str,
    governance: Option<String>,
    nodes: &[InitNode],
) -> Result<PeersFile, InitError> {
    use crate::config::{LEDGER_FILE, NODE_KEY_FILE, PEERS_FILE};
    use hygeia_identity::Keypair;
    if nodes.is_empty() {
        return Err(InitError::Invalid(
            "a network needs at least one node".into(),
        ));
    }
    if let Some(did) = &governance {
        hygeia_identity::Did::parse_cached(did).map_err(|e| {
            InitError::Invalid(format!("the governance key must be a did:key: {e}"))
        })?;
    }
    let mut keys = Vec::new();
    for node in nodes {
        let dir = &node.data_dir;
        std::fs::create_dir_all(dir).map_err(|e| InitError::Io(dir.display().to_string(), e))?;
        if dir.join(LEDGER_FILE).exists() {
            return Err(InitError::Invalid(format!(
                "{} already holds a log: a network is initialized into new data directories",
                dir.display()
            )));
        }
        let path = dir.join(NODE_KEY_FILE);
        let key = if path.exists() {
            Keypair::read_key_file(&path)?
        } else {
            let key = Keypair::generate();
            key.write_key_file(&path)?;
            key
        };
        keys.push(key);
    }
    let dids: Vec<String> = keys.iter().map(|k| k.did().to_string()).collect();
    let mut seen = std::collections::HashSet::new();
    for (did, node) in dids.iter().zip(nodes) {
        if !seen.insert(did.clone()) || !seen.insert(node.p2p.to_string()) {
            return Err(InitError::Invalid(format!(
                "{} repeats a node key or a p2p address",
                node.data_dir.display()
            )));
        }
    }
    let modules = crate::state::txs::registry();
    let genesis = crate::state::network::Genesis {
        governance: governance.into_iter().collect(),
        custodians: dids.clone(),
        legacy: None,
    };
    let tx = crate::state::network::genesis_tx(network, &keys[0], &genesis, &modules)
        .map_err(|e| InitError::Invalid(e.to_string()))?;
    let peers = PeersFile {
        network: network.to_owned(),
        follow: false,
        peers: dids
            .iter()
            .zip(nodes)
            .map(|(did, node)| Peer {
                did: did.clone(),
                p2p: node.p2p,
                api: node.api.clone(),
            })
            .collect(),
    };
    let peers_json =
        serde_json::to_vec_pretty(&peers).map_err(|e| InitError::Invalid(e.to_string()))?;
    for (key, node) in keys.iter().zip(nodes) {
        let dir = &node.data_dir;
        write_genesis_log(dir, network, key, &tx).map_err(|e| match e {
            GenesisLogError::Store(e) => InitError::from(e),
            GenesisLogError::Refused(why) => InitError::Invalid(why),
        })?;
        let path = dir.join(PEERS_FILE);
        std::fs::write(&path, &peers_json)
            .map_err(|e| InitError::Io(path.display().to_string(), e))?;
    }
    Ok(peers)
}

/// Why a new log holding a genesis could not be written.
pub(crate) enum GenesisLogError {
    Store(hygeia_ledger::StoreError),
    /// The network name is no checkpoint origin, or the entry did not
    /// land at leaf 0 (the directory held a log already).
    Refused(String),
}

/// Writes `genesis` as leaf 0 of a new log in `dir`, its checkpoints
/// signed with `key` (the node's): the start of a founder's data
/// directory (`network init`) and of a joiner's (`network join`).
pub(crate) fn write_genesis_log(
    dir: &std::path::Path,
    network: &str,
    key: &hygeia_identity::Keypair,
    genesis: &SignedTx,
) -> Result<(), GenesisLogError> {
    use crate::config::LEDGER_FILE;
    use hygeia_identity::Keypair;
    let store = Arc::new(
        hygeia_ledger::LogStore::open(&dir.join(LEDGER_FILE), network)
            .map_err(GenesisLogError::Store)?,
    );
    let signer = hygeia_ledger::CheckpointSigner::new(
        network,
        Keypair::from_seed(&key.as_dalek().to_bytes()),
    )
    .map_err(|e| GenesisLogError::Refused(e.to_string()))?;
    let mut writer =
        hygeia_ledger::store::LogWriter::open(store, signer).map_err(GenesisLogError::Store)?;
    let outcome = writer
        .append_batch(&[std::slice::from_ref(genesis)])
        .map_err(GenesisLogError::Store)?;
    if !matches!(outcome.results.first(), Some(Ok(0))) {
        return Err(GenesisLogError::Refused(format!(
            "the genesis entry was not written at leaf 0 in {}",
            dir.display()
        )));
    }
    Ok(())
}

/// Reads a peers file.
pub fn read_peers(path: &std::path::Path) -> Result<PeersFile, InitError> {
    let bytes = std::fs::read(path).map_err(|e| InitError::Io(path.display().to_string(), e))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| InitError::Invalid(format!("{}: {e}", path.display())))
}
