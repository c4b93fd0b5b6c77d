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

use commonware_cryptography::ed25519::{PrivateKey, PublicKey};
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

/// Messages a peer may send per second on each channel, and at once.
/// commonware allocates each channel's inbound queue up front for one
/// burst from every peer of every tracked set ([`MAX_PEERS_PER_SET`] × 4
/// sets): a burst of 512 keeps that near what a burst of 10,000 from the
/// four peers of a first set took (about 130,000 slots per channel), while
/// the rate stays 10,000 a second.
const QUOTA: Quota = Quota::per_second(NZU32!(10_000)).allow_burst(NZU32!(512));

/// Most keys in one epoch's peer set as the p2p layer counts them: the
/// largest validator set governance can name, plus this node when it
/// follows without being in it. commonware panics on tracking a larger
/// set, so the bound is the protocol's, not the first set's size (a
/// network of four may name five in a later epoch).
const MAX_PEERS_PER_SET: usize = hygeia_state::network::MAX_CUSTODIANS + 1;

/// Where this node listens and where the others are.
pub struct Network {
    /// This node's p2p address (its entry in the peers file).
    pub listen: SocketAddr,
    /// Every validator's consensus key and p2p address, this node's too.
    /// A node started to follow ([`Config::follow`]) may name itself here
    /// without being a validator (its own entry is where it listens).
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
    // A follower (an organization joining in a later epoch) is in no set
    // of its log yet: its peers file names the validators and itself.
    let me = commonware_cryptography::Signer::public_key(&consensus_key(&cfg.key));
    for (key, _) in &net.peers {
        let follower_itself = cfg.follow && *key == me;
        if !validators.contains(key) && !follower_itself {
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
                let p2p = p2p_config(consensus_key(&cfg.key), &cfg.network, net.listen);
                let (mut network, mut oracle) = lookup::Network::new(context.child("p2p"), p2p);
                // Each later epoch's set is tracked as the log reaches it
                // (`peer_sets`, below): a follower catching up from the
                // genesis dials epoch after epoch's validators.
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
                    idle: cfg.idle,
                    cosigner: cfg.cosigner,
                    max_pending_txs: cfg.max_pending_txs,
                    replayed: cfg.replayed,
                    peer_sets: Some(peer_sets),
                    follow: cfg.follow,
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

/// The p2p layer's configuration: connections authenticated with the node
/// keys on this network's namespace and encrypted.
fn p2p_config(
    signer: PrivateKey,
    network: &str,
    listen: SocketAddr,
) -> lookup::Config<Cups<Sake<PrivateKey>, ChaCha20Poly1305>> {
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
    namespace.extend_from_slice(network.as_bytes());
    // `local` allows private and loopback addresses and reconnects
    // quickly; connections are still authenticated and limited to the
    // validators.
    lookup::Config::local(
        handshake,
        &namespace,
        listen,
        NZUsize!(MAX_PEERS_PER_SET),
        (MAX_BLOCK_BYTES + 1024) as u32,
        NZUsize!(4096),
    )
}

/// The consensus key of a did:key (an organization's node key).
pub fn peer_key(did: &str) -> Option<PublicKey> {
    use commonware_codec::DecodeExt;
    let did = hygeia_identity::Did::parse_cached(did).ok()?;
    PublicKey::decode(did.public_key().to_bytes().to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_cryptography::Signer as _;
    use commonware_runtime::deterministic;

    /// A network founded by four may name up to 64 validators in a later
    /// epoch, and a node following it is one more: the p2p layer takes
    /// such a set (commonware panics on tracking a set larger than the
    /// bound it was configured with, which was once the peers file's size).
    #[test]
    fn the_p2p_layer_takes_the_largest_set_governance_can_name() {
        deterministic::Runner::default().start(|context| async move {
            let key = |seed: u8| consensus_key(&hygeia_identity::Keypair::from_seed(&[seed; 32]));
            let listen = SocketAddr::from(([127, 0, 0, 1], 9100));
            let (_network, mut oracle) = lookup::Network::new(
                context.child("p2p"),
                p2p_config(key(0), "test.example/net", listen),
            );
            let largest = hygeia_state::network::MAX_CUSTODIANS as u8;
            let set = |seeds: std::ops::RangeInclusive<u8>| {
                let peers: Vec<(PublicKey, Address)> = seeds
                    .map(|i| {
                        let address = SocketAddr::from(([127, 0, 0, 1], 9100 + u16::from(i)));
                        (key(i).public_key(), Address::Symmetric(address))
                    })
                    .collect();
                Map::try_from(peers).expect("distinct keys")
            };
            // Epoch 0: four founders, this node among them.
            let _ = oracle.track(0, set(0..=3));
            // A later epoch: the largest set, without this node (it follows).
            let _ = oracle.track(1, set(1..=largest));
        });
    }
}
