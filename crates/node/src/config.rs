//! Node configuration.

use std::net::SocketAddr;
use std::path::PathBuf;

use hygeia_ledger::BatchConfig;

/// Everything a node needs to start.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Holds `node.key`, `shc-issuer.key`, `ledger.redb` and the rest
    /// (README.md, "Data directory").
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
    /// The governance key's DID, fixed when the network is created (the
    /// first start of this data directory) and recorded in `network.json`.
    pub governance: Option<String>,
    /// Largest record accepted by `POST /v1/records`, in bytes.
    pub max_record_bytes: u64,
    /// How old a signed request may be (RFC 9421 `created`), and how long
    /// its nonce is remembered.
    pub auth_window: std::time::Duration,
    /// The `https` URL this node is reached at from outside, without a
    /// trailing `/`: the `iss` of the SMART Health Cards it issues, whose
    /// `/.well-known/jwks.json` must serve the node's issuer key set.
    /// `https://<network>` when not given. SMART discovery lists its
    /// endpoints under it, and a client assertion's `aud` may be
    /// `<public_url>/auth/token` (`api::token::audiences`).
    pub public_url: Option<String>,
    /// How many connections the server takes and how long it waits for
    /// them (`crate::server`).
    pub connections: crate::server::ConnectionLimits,
    /// Unexpired client-assertion ids remembered for participants the node
    /// does not know (and as many again for those it knows).
    pub jti_capacity: usize,
    /// A state snapshot is written when the committed state is this many
    /// entries past the newest one, and at a clean shutdown; 0 writes none
    /// (`crate::snapshots`).
    pub snapshot_every: u64,
    /// The organizations' network this node orders its log with (`hygeia
    /// serve --peers`); `None` orders it alone with the embedded
    /// sequencer.
    pub peers: Option<crate::ordering::PeersFile>,
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
            governance: None,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            auth_window: std::time::Duration::from_secs(300),
            public_url: None,
            connections: Default::default(),
            jti_capacity: hygeia_auth::token::DEFAULT_JTI_CAPACITY,
            snapshot_every: DEFAULT_SNAPSHOT_EVERY,
            peers: None,
        }
    }
}

pub const NODE_KEY_FILE: &str = "node.key";
/// The organizations' network: the peers file `hygeia network init`
/// writes, and (under `consensus/`) the finalized chain and the
/// consensus engine's journal.
pub const PEERS_FILE: &str = "peers.json";
pub const CONSENSUS_DIR: &str = "consensus";
/// The finalized chain, in [`CONSENSUS_DIR`] (`hygeia_consensus::chain`).
pub const CHAIN_FILE: &str = "finalized.blocks";
/// The SMART clients the operator registered (docs/smart.md), read at
/// start; absent means none.
pub const SMART_CLIENTS_FILE: &str = "smart-clients.json";
/// The SMART Health Card issuer's P-256 key, a private JWK (mode 0600).
pub const SHC_ISSUER_KEY_FILE: &str = "shc-issuer.key";
pub const LEDGER_FILE: &str = "ledger.redb";
pub const NETWORK_FILE: &str = "network.json";
pub const VAULT_DIR: &str = "vault";
/// State snapshots, a cache of the replayed state (`crate::snapshots`).
pub const SNAPSHOT_DIR: &str = "snapshots";
/// Entries between periodic state snapshots.
pub const DEFAULT_SNAPSHOT_EVERY: u64 = 1_000_000;
/// The FHIR versions and search index (see `fhir_store`).
pub const FHIR_FILE: &str = "fhir.redb";
/// Research studies and the answers counted in them (private node state,
/// crate::research).
pub const RESEARCH_FILE: &str = "research.redb";
/// 1 GiB: imaging studies fit; records stream, so memory does not grow.
pub const DEFAULT_MAX_RECORD_BYTES: u64 = 1 << 30;
