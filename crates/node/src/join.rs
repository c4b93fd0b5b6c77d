//! The data directory of an organization's node joining a running network
//! (`hygeia network join`, docs/network.md "An organization joins"): the
//! network's genesis entry, checked against the network id the
//! organization was told out of band, at leaf 0 of a new log, and a peers
//! file naming epoch 0's nodes and this one. `hygeia serve` then starts it
//! as a follower that catches up from the genesis, epoch by epoch, and
//! votes once an epoch names its key.
//!
//! What a peer hands over is not trusted: the genesis entry counts only if
//! its leaf hash is the network id (it commits to the network's name, its
//! governance key and its founders), and the epoch 0 addresses only say
//! where to dial keys the genesis names (every connection is authenticated
//! with those keys). Everything after the genesis is fetched by consensus
//! and checked against quorum certificates.

use std::net::SocketAddr;
use std::path::Path;

use hygeia_identity::Keypair;
use hygeia_ledger::tx::TxContext;
use hygeia_ledger::SignedTx;

use crate::config::{NODE_KEY_FILE, PEERS_FILE};
use crate::ordering::{write_genesis_log, GenesisLogError, Peer, PeersFile};

/// Why a joining node's data directory was not made. Each message starts
/// with its stable code (`join.…`); nothing is written on any of them
/// but [`JoinError::Io`] and [`JoinError::Store`].
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("join.bad_network_id: {0} is not a network id (64 lowercase hex digits: the genesis entry's leaf hash, `network_id` in GET /v1/node)")]
    BadNetworkId(String),
    #[error("join.data_dir_not_empty: {dir} already holds {found}: a joining node starts from a new data directory (which may hold its node.key and nothing else)")]
    DataDirNotEmpty { dir: String, found: String },
    #[error("join.genesis_mismatch: the peer's genesis entry has the leaf hash {found}, not the network id {expected}: the peer is on another network, or lies")]
    GenesisMismatch { found: String, expected: String },
    #[error(
        "join.bad_genesis: the entry whose hash is the network id is not a valid genesis: {0}"
    )]
    BadGenesis(String),
    #[error("join.bad_peers: {0}")]
    BadPeers(String),
    #[error("join.founder: this node's key {0} is a founder of the network (a custodian of its genesis): its data directory is the one `hygeia network init` wrote")]
    Founder(String),
    #[error("join.io: {0}: {1}")]
    Io(String, std::io::Error),
    #[error("join.io: {0}")]
    Key(#[from] hygeia_identity::KeyFileError),
    #[error("join.io: {0}")]
    Store(#[from] hygeia_ledger::StoreError),
}

impl JoinError {
    /// The stable code the message starts with.
    pub fn code(&self) -> &'static str {
        match self {
            JoinError::BadNetworkId(_) => "join.bad_network_id",
            JoinError::DataDirNotEmpty { .. } => "join.data_dir_not_empty",
            JoinError::GenesisMismatch { .. } => "join.genesis_mismatch",
            JoinError::BadGenesis(_) => "join.bad_genesis",
            JoinError::BadPeers(_) => "join.bad_peers",
            JoinError::Founder(_) => "join.founder",
            JoinError::Io(..) | JoinError::Key(_) | JoinError::Store(_) => "join.io",
        }
    }
}

/// What a joining node's data directory is made from.
pub struct Joining<'a> {
    pub data_dir: &'a Path,
    /// The network id the organization was told (hex leaf hash of the
    /// genesis entry).
    pub network_id: &'a str,
    /// The entry a peer serves at leaf 0 of its log.
    pub genesis: &'a [u8],
    /// Epoch 0's nodes as the peer names them (its peers file): each
    /// genesis custodian's key, p2p address and HTTP URL.
    pub founders: &'a [Peer],
    /// Where this node's p2p listens (the address governance names for it
    /// in `network.validators`).
    pub p2p: SocketAddr,
    /// The URL of this node's HTTP API, for the other nodes.
    pub api: Option<String>,
}

/// The data directory made.
#[derive(Debug)]
pub struct Joined {
    /// The network's name, from its genesis.
    pub network: String,
    /// This node's key.
    pub did: String,
    pub peers: PeersFile,
}

/// Checks the network id before anything is fetched with it.
pub fn parse_network_id(id: &str) -> Result<[u8; 32], JoinError> {
    let bad = || JoinError::BadNetworkId(id.chars().take(100).collect());
    if id.len() != 64 || !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(bad());
    }
    let bytes = hex::decode(id).map_err(|_| bad())?;
    bytes.try_into().map_err(|_| bad())
}

/// Refuses a data directory that holds anything but a node key (a log, a
/// peers file, a vault: another node's, or this one's from an earlier
/// attempt).
pub fn check_data_dir(dir: &Path) -> Result<(), JoinError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(JoinError::Io(dir.display().to_string(), e)),
    };
    let mut found: Vec<String> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| JoinError::Io(dir.display().to_string(), e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name != NODE_KEY_FILE {
            found.push(name);
        }
    }
    if found.is_empty() {
        return Ok(());
    }
    found.sort();
    Err(JoinError::DataDirNotEmpty {
        dir: dir.display().to_string(),
        found: found.join(", "),
    })
}

/// What a peer handed over, checked: the network's genesis entry and its
/// founders' addresses.
#[derive(Debug)]
pub struct Handover {
    /// The network's name, from its genesis.
    pub network: String,
    pub genesis: SignedTx,
    /// The genesis custodians, in its order.
    pub founders: Vec<String>,
    /// One peer for each founder, in the same order.
    pub peers: Vec<Peer>,
}

/// Checks what a peer handed over (no file is touched): the genesis entry
/// must hash to `network_id` and be a valid genesis, and `named` must give
/// every founder one address of its own (entries for other keys are left
/// out).
pub fn check_handover(
    network_id: &str,
    genesis: &[u8],
    named: &[Peer],
) -> Result<Handover, JoinError> {
    let expected = parse_network_id(network_id)?;
    let found = hygeia_ledger::merkle::leaf_hash(genesis);
    if found.0 != expected {
        return Err(JoinError::GenesisMismatch {
            found: hex::encode(found.0),
            expected: network_id.to_owned(),
        });
    }
    // The hash matched: these are the network's bytes. They are still
    // checked as a node would check leaf 0 (a network id given by mistake
    // could name some other entry).
    let network = serde_json::from_slice::<serde_json::Value>(genesis)
        .ok()
        .and_then(|v| v["network"].as_str().map(str::to_owned))
        .ok_or_else(|| JoinError::BadGenesis("it names no network".into()))?;
    if !hygeia_state::network::is_genesis_entry(genesis) {
        return Err(JoinError::BadGenesis(
            "it is not a genesis transaction".into(),
        ));
    }
    let modules = hygeia_state::txs::registry();
    let ctx = TxContext {
        network: &network,
        modules: &modules,
    };
    let tx = SignedTx::parse(genesis, &ctx).map_err(|e| JoinError::BadGenesis(e.to_string()))?;
    let mut state = hygeia_state::LedgerState::empty();
    state
        .apply(0, &tx)
        .map_err(|e| JoinError::BadGenesis(e.to_string()))?;
    let founders: Vec<String> = state
        .network
        .founders()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let peers = founder_peers(&founders, named)?;
    Ok(Handover {
        network,
        genesis: tx,
        founders,
        peers,
    })
}

/// Checks what a peer handed over and writes the data directory: the node
/// key (created when missing), the log holding the genesis entry alone,
/// and the peers file (epoch 0's nodes, then this one).
pub fn join(joining: Joining<'_>) -> Result<Joined, JoinError> {
    parse_network_id(joining.network_id)?;
    check_data_dir(joining.data_dir)?;
    let Handover {
        network,
        genesis: tx,
        founders,
        mut peers,
    } = check_handover(joining.network_id, joining.genesis, joining.founders)?;

    let dir = joining.data_dir;
    let key_path = dir.join(NODE_KEY_FILE);
    let key = if key_path.exists() {
        Keypair::read_key_file(&key_path)?
    } else {
        Keypair::generate()
    };
    let did = key.did().to_string();
    if founders.contains(&did) {
        return Err(JoinError::Founder(did));
    }
    if peers.iter().any(|p| p.p2p == joining.p2p) {
        return Err(JoinError::BadPeers(format!(
            "this node's p2p address {} is a founder's",
            joining.p2p
        )));
    }
    if let Some(api) = &joining.api {
        check_api(api).map_err(|m| JoinError::BadPeers(format!("this node's {m}")))?;
    }
    peers.push(Peer {
        did: did.clone(),
        p2p: joining.p2p,
        api: joining.api.map(|a| a.trim_end_matches('/').to_owned()),
    });
    let peers = PeersFile {
        network: network.clone(),
        follow: true,
        peers,
    };
    let peers_json =
        serde_json::to_vec_pretty(&peers).map_err(|e| JoinError::BadPeers(e.to_string()))?;

    std::fs::create_dir_all(dir).map_err(|e| JoinError::Io(dir.display().to_string(), e))?;
    if !key_path.exists() {
        key.write_key_file(&key_path)?;
    }
    write_genesis_log(dir, &network, &key, &tx).map_err(|e| match e {
        GenesisLogError::Store(e) => JoinError::Store(e),
        GenesisLogError::Refused(why) => JoinError::BadGenesis(why),
    })?;
    // Written last: a directory without it was not finished.
    let path = dir.join(PEERS_FILE);
    std::fs::write(&path, &peers_json).map_err(|e| JoinError::Io(path.display().to_string(), e))?;
    Ok(Joined {
        network,
        did,
        peers,
    })
}

/// Epoch 0's nodes, in the genesis's order: every founder named once by
/// the peer, with an address; entries for other keys are left out (they
/// are not the peer's to add).
fn founder_peers(founders: &[String], named: &[Peer]) -> Result<Vec<Peer>, JoinError> {
    let mut peers = Vec::with_capacity(founders.len());
    for founder in founders {
        let mut matching = named.iter().filter(|p| &p.did == founder);
        let peer = matching.next().ok_or_else(|| {
            JoinError::BadPeers(format!(
                "the peer gives no p2p address for the founder {founder}"
            ))
        })?;
        if matching.next().is_some() {
            return Err(JoinError::BadPeers(format!(
                "the peer names the founder {founder} twice"
            )));
        }
        if let Some(api) = &peer.api {
            check_api(api).map_err(|m| JoinError::BadPeers(format!("{founder}'s {m}")))?;
        }
        if peers.iter().any(|p: &Peer| p.p2p == peer.p2p) {
            return Err(JoinError::BadPeers(format!(
                "the peer gives two founders the p2p address {}",
                peer.p2p
            )));
        }
        peers.push(peer.clone());
    }
    Ok(peers)
}

/// An HTTP API URL is a scheme, a host and a port.
fn check_api(api: &str) -> Result<(), String> {
    let url = reqwest::Url::parse(api).map_err(|_| format!("HTTP URL {api:?} is not a URL"))?;
    let plain = matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some()
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && matches!(url.path(), "" | "/");
    if plain {
        Ok(())
    } else {
        Err(format!(
            "HTTP URL {api:?} is not a scheme, a host and a port"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LEDGER_FILE;
    use hygeia_state::network::{genesis_tx, Genesis};

    const NETWORK: &str = "hospitals.example/net";

    struct Founded {
        keys: Vec<Keypair>,
        genesis: Vec<u8>,
        id: String,
        peers: Vec<Peer>,
    }

    fn found(seed: u8) -> Founded {
        let keys: Vec<Keypair> = (0..3)
            .map(|i| Keypair::from_seed(&[seed + i; 32]))
            .collect();
        let genesis = Genesis {
            governance: vec![Keypair::from_seed(&[99; 32]).did().to_string()],
            custodians: keys.iter().map(|k| k.did().to_string()).collect(),
            legacy: None,
        };
        let tx = genesis_tx(NETWORK, &keys[0], &genesis, &hygeia_state::txs::registry()).unwrap();
        let peers = keys
            .iter()
            .enumerate()
            .map(|(i, k)| Peer {
                did: k.did().to_string(),
                p2p: format!("127.0.0.1:{}", 9101 + i).parse().unwrap(),
                api: Some(format!("http://127.0.0.1:{}", 9201 + i)),
            })
            .collect();
        Founded {
            keys,
            genesis: tx.canonical_bytes().to_vec(),
            id: hex::encode(tx.leaf_hash().0),
            peers,
        }
    }

    fn joining<'a>(dir: &'a Path, net: &'a Founded, founders: &'a [Peer]) -> Joining<'a> {
        Joining {
            data_dir: dir,
            network_id: &net.id,
            genesis: &net.genesis,
            founders,
            p2p: "127.0.0.1:9105".parse().unwrap(),
            api: Some("http://127.0.0.1:9205/".into()),
        }
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    #[test]
    fn a_joining_node_holds_the_genesis_its_network_id_names_and_the_founders_addresses() {
        let net = found(1);
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("org5");
        // Its key made first (to give its DID to governance) is kept.
        std::fs::create_dir_all(&dir).unwrap();
        let key = Keypair::from_seed(&[50; 32]);
        key.write_key_file(&dir.join(NODE_KEY_FILE)).unwrap();
        // The peer lists its founders in another order and someone else.
        let mut named: Vec<Peer> = net.peers.iter().rev().cloned().collect();
        named.push(Peer {
            did: Keypair::from_seed(&[77; 32]).did().to_string(),
            p2p: "127.0.0.1:9999".parse().unwrap(),
            api: None,
        });
        let joined = join(joining(&dir, &net, &named)).unwrap();
        assert_eq!(joined.network, NETWORK);
        assert_eq!(joined.did, key.did().to_string());
        let written = listing(&dir);
        for name in [LEDGER_FILE, NODE_KEY_FILE, PEERS_FILE] {
            assert!(written.iter().any(|w| w == name), "{name}: {written:?}");
        }
        // The founders in the genesis's order, then this node; not the
        // stranger the peer added.
        let file = crate::ordering::read_peers(&dir.join(PEERS_FILE)).unwrap();
        assert_eq!(file.network, NETWORK);
        assert!(file.follow);
        let dids: Vec<&str> = file.peers.iter().map(|p| p.did.as_str()).collect();
        let mut want: Vec<String> = net.keys.iter().map(|k| k.did().to_string()).collect();
        want.push(key.did().to_string());
        assert_eq!(dids, want);
        let me = file.peers.last().unwrap();
        assert_eq!(me.p2p, "127.0.0.1:9105".parse().unwrap());
        assert_eq!(me.api.as_deref(), Some("http://127.0.0.1:9205"));
        assert_eq!(file.peers[0].api, net.peers[0].api);
        // The log holds the genesis entry alone, byte for byte.
        let store = hygeia_ledger::LogStore::open(&dir.join(LEDGER_FILE), NETWORK).unwrap();
        let snapshot = store.snapshot().unwrap();
        assert_eq!(snapshot.size(), 1);
        assert_eq!(snapshot.entry(0).unwrap().unwrap(), net.genesis);
        // A second join into it is refused.
        let again = join(joining(&dir, &net, &net.peers)).unwrap_err();
        assert_eq!(again.code(), "join.data_dir_not_empty", "{again}");
    }

    #[test]
    fn a_join_is_refused_with_its_code_and_writes_nothing() {
        let net = found(1);
        let other = found(11); // another network of the same name
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("org5");
        let refused = |joining: Joining<'_>, code: &str| {
            let before = listing(joining.data_dir);
            let dir = joining.data_dir.to_owned();
            let error = join(joining).unwrap_err();
            assert_eq!(error.code(), code, "{error}");
            assert!(error.to_string().starts_with(code), "{error}");
            assert_eq!(
                listing(&dir),
                before,
                "{code} wrote into the data directory"
            );
        };

        for bad in [
            "",
            "zz",
            &net.id[..63],
            &net.id.to_uppercase(),
            &format!("{}0", net.id),
        ] {
            let mut j = joining(&dir, &net, &net.peers);
            j.network_id = bad;
            refused(j, "join.bad_network_id");
        }
        // A peer handing over another network's genesis (same name, other
        // founders): its hash is not the id.
        let mut j = joining(&dir, &net, &other.peers);
        j.genesis = &other.genesis;
        refused(j, "join.genesis_mismatch");
        // An id that names an entry that is not a genesis.
        let attest = hygeia_ledger::TxBuilder {
            network: NETWORK,
            tx_type: "attest",
            nonce: "n1".into(),
            body: serde_json::json!({"label": "demo.note", "subject": format!("sha256:{}", "ab".repeat(32))}),
        }
        .sign(&net.keys[0]);
        let attest_id = hex::encode(hygeia_ledger::merkle::leaf_hash(&attest).0);
        let mut j = joining(&dir, &net, &net.peers);
        j.genesis = &attest;
        j.network_id = &attest_id;
        refused(j, "join.bad_genesis");

        // The founders' addresses: each founder once, with its own address.
        refused(joining(&dir, &net, &net.peers[1..]), "join.bad_peers");
        let mut twice = net.peers.clone();
        twice.push(net.peers[0].clone());
        refused(joining(&dir, &net, &twice), "join.bad_peers");
        let mut shared = net.peers.clone();
        shared[1].p2p = shared[0].p2p;
        refused(joining(&dir, &net, &shared), "join.bad_peers");
        let mut bad_api = net.peers.clone();
        bad_api[2].api = Some("file:///etc/passwd".into());
        refused(joining(&dir, &net, &bad_api), "join.bad_peers");
        let mut j = joining(&dir, &net, &net.peers);
        j.p2p = net.peers[1].p2p;
        refused(j, "join.bad_peers");
        let mut j = joining(&dir, &net, &net.peers);
        j.api = Some("http://127.0.0.1:9205/path".into());
        refused(j, "join.bad_peers");

        // A founder's own key: its directory is the one init wrote.
        std::fs::create_dir_all(&dir).unwrap();
        net.keys[1]
            .write_key_file(&dir.join(NODE_KEY_FILE))
            .unwrap();
        refused(joining(&dir, &net, &net.peers), "join.founder");
        // Anything but a node key in the directory.
        std::fs::write(dir.join(LEDGER_FILE), b"someone's log").unwrap();
        refused(joining(&dir, &net, &net.peers), "join.data_dir_not_empty");
        std::fs::remove_file(dir.join(LEDGER_FILE)).unwrap();
        std::fs::create_dir(dir.join("vault")).unwrap();
        refused(joining(&dir, &net, &net.peers), "join.data_dir_not_empty");
    }
}
