//! A node's consensus in production: commonware's tokio runtime and its
//! authenticated p2p network (`authenticated::lookup`: a fixed set of
//! organizations at known addresses, each connection authenticated by the
//! organizations' node keys and encrypted).
//!
//! The runtime runs on a thread of its own; the returned [`BftOrderer`]
//! is used from any other runtime (its answers travel on channels).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use commonware_cryptography::ed25519::PublicKey;
use commonware_cryptography::ChaCha20Poly1305;
use commonware_p2p::authenticated::lookup;
use commonware_p2p::{Address, AddressableManager as _};
use commonware_runtime::{Quota, Runner as _, Supervisor as _};
use commonware_stream::cups::{self, Cups};
use commonware_stream::sake::{self, Sake};
use commonware_utils::ordered::Map;
use commonware_utils::{NZUsize, NZU32};

use crate::block::MAX_BLOCK_BYTES;
use crate::{consensus_key, start, BftOrderer, Channels, Config, StartError};

/// Domain of the p2p handshake: connections of one network never count
/// in another.
const P2P_NAMESPACE_PREFIX: &[u8] = b"hygeia.p2p.v1\x00";

/// Messages a peer may send per second on each channel.
const QUOTA: Quota = Quota::per_second(NZU32!(10_000));

/// Where this node listens and where the others are.
pub struct Network {
    /// This node's p2p address (its entry in the peers file).
    pub listen: SocketAddr,
    /// Every validator's consensus key and p2p address, this node's too.
    pub peers: Vec<(PublicKey, SocketAddr)>,
    /// The engine's vote journal lives here.
    pub storage: PathBuf,
    /// Worker threads of the consensus runtime.
    pub threads: usize,
}

/// Why the network could not start.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("the peers list names a key twice")]
    DuplicatePeer,
    #[error("the peers list does not name every validator of the current epoch (missing {0})")]
    MissingValidator(String),
    #[error("the peers list names {0}, which is not a validator of the current epoch")]
    NotAValidator(String),
    #[error("the consensus thread: {0}")]
    Thread(String),
}

/// Starts this node's p2p network and consensus on a tokio runtime of its
/// own thread, and returns its orderer once the engine runs.
pub fn spawn(cfg: Config<()>, net: Network) -> Result<BftOrderer, NetworkError> {
    // Every validator has an address and nobody else does: a peer that is
    // not a validator is never dialled and its connections are refused.
    let ctx = hygeia_ledger::tx::TxContext {
        network: &cfg.network,
        modules: cfg.modules,
    };
    let replayed = match &cfg.replayed {
        Some(_) => None,
        None => Some(crate::replay(&cfg.store, &ctx)?.0),
    };
    let state = cfg
        .replayed
        .as_ref()
        .or(replayed.as_ref())
        .ok_or(StartError::NoGenesis)?;
    let validators = crate::validators(state)?;
    // After a `network.validators`, the log names each validator's
    // address: the peers file's addresses count only in epoch 0.
    let mut net = net;
    if state.network.epoch() > 0 {
        net.peers = state
            .network
            .validators()
            .iter()
            .filter_map(|v| Some((peer_key(&v.key)?, v.address.parse().ok()?)))
            .collect();
    }
    let epoch = state.network.epoch();
    drop(replayed);
    for (key, _) in &net.peers {
        if !validators.contains(key) {
            return Err(NetworkError::NotAValidator(key.to_string()));
        }
    }
    for key in &validators {
        if !net.peers.iter().any(|(k, _)| k == key) {
            return Err(NetworkError::MissingValidator(key.to_string()));
        }
    }
    let peers: Map<PublicKey, Address> = Map::try_from(
        net.peers
            .iter()
            .map(|(k, a)| (k.clone(), Address::Symmetric(*a)))
            .collect::<Vec<_>>(),
    )
    .map_err(|_| NetworkError::DuplicatePeer)?;
    let (answer, answered) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("consensus".into())
        .spawn(move || {
            let runner = commonware_runtime::tokio::Runner::new(
                commonware_runtime::tokio::Config::new()
                    .with_worker_threads(net.threads.max(1))
                    .with_storage_directory(net.storage)
                    .with_tcp_nodelay(Some(true)),
            );
            runner.start(|context| async move {
                let signer = consensus_key(&cfg.key);
                let handshake = Cups::<_, ChaCha20Poly1305>::new(
                    Sake {
                        signer,
                        synchrony_bound: Duration::from_secs(5),
                        max_handshake_age: Duration::from_secs(10),
                        version: sake::Version::V1,
                    },
                    cups::Version::V1,
                );
                let mut namespace = P2P_NAMESPACE_PREFIX.to_vec();
                namespace.extend_from_slice(cfg.network.as_bytes());
                // `local` allows private and loopback addresses and
                // reconnects quickly; connections are still authenticated
                // and limited to the validators.
                let p2p = lookup::Config::local(
                    handshake,
                    &namespace,
                    net.listen,
                    NZUsize!(peers.len().max(1)),
                    (MAX_BLOCK_BYTES + 1024) as u32,
                    NZUsize!(4096),
                );
                let (mut network, mut oracle) = lookup::Network::new(context.child("p2p"), p2p);
                let _ = oracle.track(epoch, peers);
                let mut tracker = oracle.clone();
                let peer_sets: crate::PeerSetUpdate = Box::new(move |epoch, peers| {
                    let peers: Vec<(PublicKey, Address)> = peers
                        .into_iter()
                        .map(|(k, a)| (k, Address::Symmetric(a)))
                        .collect();
                    match Map::try_from(peers) {
                        Ok(peers) => {
                            let _ = tracker.track(epoch, peers);
                        }
                        Err(_) => tracing::error!(epoch, "a validator set names a key twice"),
                    }
                });
                let channels = Channels {
                    votes: network.register(0, QUOTA),
                    certificates: network.register(1, QUOTA),
                    resolver: network.register(2, QUOTA),
                    blocks: network.register(3, QUOTA),
                };
                network.start();
                let cfg = Config {
                    key: cfg.key,
                    network: cfg.network,
                    modules: cfg.modules,
                    store: cfg.store,
                    writer: cfg.writer,
                    commit: cfg.commit,
                    blocker: oracle,
                    partition: cfg.partition,
                    timeouts: cfg.timeouts,
                    max_block_txs: cfg.max_block_txs,
                    proposing: cfg.proposing,
                    chain: cfg.chain,
                    idle_wait: cfg.idle_wait,
                    cosigner: cfg.cosigner,
                    max_pending_txs: cfg.max_pending_txs,
                    replayed: cfg.replayed,
                    peer_sets: Some(peer_sets),
                    follow: false,
                };
                match start(context.child("consensus"), cfg, channels) {
                    Ok((orderer, app, engine)) => {
                        let _ = answer.send(Ok(orderer));
                        let _ = app.await;
                        let _ = engine.await;
                        tracing::error!("the consensus engine stopped");
                    }
                    Err(e) => {
                        let _ = answer.send(Err(NetworkError::Start(e)));
                    }
                }
            })
        })
        .map_err(|e| NetworkError::Thread(e.to_string()))?;
    answered
        .recv()
        .map_err(|_| NetworkError::Thread("it stopped before the engine started".into()))?
}

/// The consensus key of a did:key (an organization's node key).
pub fn peer_key(did: &str) -> Option<PublicKey> {
    use commonware_codec::DecodeExt;
    let did = hygeia_identity::Did::parse_cached(did).ok()?;
    PublicKey::decode(did.public_key().to_bytes().to_vec()).ok()
}
