//! Node configuration.

use std::net::SocketAddr;
use std::path::PathBuf;

use hygeia_ledger::BatchConfig;

/// Everything a node needs to start.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Holds `node.key` and `ledger.redb`.
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// The network's name: the log's origin and the `network` every
    /// transaction must name. A schema-less URL by C2SP convention.
    pub network: String,
    pub batch: BatchConfig,
    /// Largest request body for a batch submission.
    pub max_batch_body_bytes: usize,
    /// Most transactions in one batch submission.
    pub max_batch_txs: usize,
}

impl NodeConfig {
    pub fn new(data_dir: PathBuf, listen: SocketAddr, network: String) -> Self {
        NodeConfig {
            data_dir,
            listen,
            network,
            batch: BatchConfig::default(),
            max_batch_body_bytes: 32 << 20,
            max_batch_txs: 10_000,
        }
    }
}

pub const NODE_KEY_FILE: &str = "node.key";
pub const LEDGER_FILE: &str = "ledger.redb";
