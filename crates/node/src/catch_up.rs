//! Catch-up from a state snapshot: a node that was down for long installs
//! the state its peers vouch for, and the blocks and log entries up to it,
//! instead of executing every block it missed (docs/network.md, "Catch-up
//! from a state snapshot").
//!
//! Run on a stopped node's data directory (`hygeia network catch-up`),
//! before `hygeia serve`; the node then catches up the rest block by block
//! as before. Nothing a single peer says is trusted:
//!
//! - **Which state.** Each node writes a state snapshot when its log
//!   crosses a multiple of its snapshot interval (`crate::snapshots`), and
//!   nodes ordering one log cross it at the same block boundary, so their
//!   snapshots of that size are byte-identical states. A snapshot's head
//!   (size, log root at that size, digest of the state) is signed by the
//!   key of the node that wrote it. A size counts only when at least f + 1
//!   validators of the set this node's own log names (f = ⌊(n − 1)/3⌋)
//!   signed heads with the same root and the same state digest: at least
//!   one of them is honest, and an honest node signs only its own log and
//!   the state that log replays to.
//! - **The entries.** The finalized chain is fetched from this node's own
//!   last block on (every node holds the same chain file); each block must
//!   extend the one before, and the log the entries make must have the
//!   vouched root at the vouched size, ending exactly at a block. Entries
//!   are parsed (format, network, canonical form), not their signatures
//!   checked nor the rules applied: the root says they are the network's.
//! - **The state.** The snapshot must have the vouched digest (checked on
//!   the bytes before and after decompression).
//!
//! Everything is checked before anything is written. Then the blocks are
//! appended to the chain file (synced), the entries to the log, and the
//! snapshot written again under this node's own key. A crash in between
//! leaves a directory the node starts from: blocks in the chain and not in
//! the log are appended (executed) at start, and a log past its newest
//! snapshot is replayed from that snapshot.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek, Write};
use std::path::Path;
use std::sync::Arc;

use hygeia_consensus::block::{self, Block};
use hygeia_consensus::chain::frame_at;
use hygeia_identity::Keypair;
use hygeia_ledger::merkle::RootBuilder;
use hygeia_ledger::store::LogWriter;
use hygeia_ledger::tx::TxContext;
use hygeia_ledger::tx::UnverifiedTx;
use hygeia_ledger::{CheckpointSigner, LogStore, SignedTx};
use hygeia_state::snapshot::Unverified;
use hygeia_state::writer::Committed;

use crate::config::{
    NodeConfig, CHAIN_FILE, CONSENSUS_DIR, LEDGER_FILE, NODE_KEY_FILE, PEERS_FILE, SNAPSHOT_DIR,
};

/// Why a catch-up from a snapshot did not happen. Nothing was written
/// unless the error says so.
#[derive(Debug, thiserror::Error)]
pub enum CatchUpError {
    /// The data directory cannot be used: not a network node's, in use
    /// by a running node, or damaged.
    #[error("catch_up.data_dir: {0}")]
    DataDir(String),
    /// No snapshot size is vouched for by enough validators, or none is
    /// past this node's log.
    #[error("catch_up.no_quorum: {0}")]
    NoQuorum(String),
    /// A peer's answer does not check (the peer is faulty, or its chain
    /// moved on while it was read: try again).
    #[error("catch_up.peer_answer: {0}")]
    PeerAnswer(String),
    /// Writing what was checked failed; the directory is left as a crash
    /// would leave it (see the module docs).
    #[error("catch_up.write: {0}")]
    Write(String),
}

/// What a node's HTTP API answers for a catch-up (`crate::api::catch_up`).
pub trait Source {
    /// The heads of the snapshots the node at `api` keeps.
    fn snapshot_heads(&self, api: &str) -> Result<Vec<String>, String>;
    /// The snapshot of `size` entries, whole.
    fn snapshot(&self, api: &str, size: u64) -> Result<Vec<u8>, String>;
    /// Bytes of the finalized chain file from `offset` (none past its end).
    fn chain(&self, api: &str, offset: u64) -> Result<Vec<u8>, String>;
}

/// What a catch-up did.
#[derive(Debug, Clone)]
pub struct Installed {
    /// Log size before and after.
    pub from_size: u64,
    pub size: u64,
    /// Blocks appended to the chain file.
    pub blocks: u64,
    /// The validators whose heads vouched for the state.
    pub vouched_by: Vec<String>,
    /// The peer the snapshot and the chain came from.
    pub fetched_from: String,
}

/// A stage of the catch-up, for a progress display.
pub enum Progress<'a> {
    Heads {
        peers: usize,
    },
    Chosen {
        size: u64,
        vouched_by: usize,
        needed: usize,
    },
    Chain {
        entries: u64,
        of: u64,
    },
    Snapshot {
        bytes: u64,
    },
    Writing,
    Note(&'a str),
}

/// One snapshot head, as it was signed.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Vouched {
    size: u64,
    root: String,
    state_digest: String,
}

/// The staging file of fetched blocks, gone however the catch-up ends.
struct RemovedOnDrop<'a>(&'a Path);

impl Drop for RemovedOnDrop<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.0);
    }
}

fn data_dir_error(e: impl std::fmt::Display) -> CatchUpError {
    CatchUpError::DataDir(e.to_string())
}

/// Catches the stopped node in `data_dir` up to the newest state snapshot
/// its peers vouch for. See the module docs.
pub fn catch_up(
    data_dir: &Path,
    source: &dyn Source,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Installed, CatchUpError> {
    let peers = crate::ordering::read_peers(&data_dir.join(PEERS_FILE))
        .map_err(|e| CatchUpError::DataDir(format!("not a network node's data directory ({e})")))?;
    let key = Keypair::read_key_file(&data_dir.join(NODE_KEY_FILE)).map_err(data_dir_error)?;
    let me = key.did().to_string();
    let (store, network) = LogStore::open_existing(&data_dir.join(LEDGER_FILE)).map_err(|e| {
        CatchUpError::DataDir(format!(
            "cannot open the log (is the node still running? stop it first): {e}"
        ))
    })?;
    if network != peers.network {
        return Err(CatchUpError::DataDir(format!(
            "the log is of network {network}, the peers file of {}",
            peers.network
        )));
    }
    let store = Arc::new(store);
    let modules = crate::state::txs::registry();
    let view = store.snapshot().map_err(data_dir_error)?;
    let own_size = view.size();
    // The validator set, and where the peers answer, from this node's own
    // log (and its peers file).
    let config = NodeConfig::new(
        data_dir.to_path_buf(),
        "127.0.0.1:0".parse().expect("an address"),
        network.clone(),
    );
    let loaded = crate::snapshots::load_newest(&data_dir.join(SNAPSHOT_DIR), &view, &network, &me);
    let own = crate::node::replay(&view, &config, &modules, loaded).map_err(data_dir_error)?;
    let validators: BTreeSet<String> = own
        .state
        .network
        .validator_keys()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let needed = validators.len().saturating_sub(1) / 3 + 1;
    let mut apis: BTreeMap<String, String> = BTreeMap::new();
    for peer in &peers.peers {
        if let Some(api) = &peer.api {
            apis.insert(peer.did.clone(), api.trim_end_matches('/').to_owned());
        }
    }
    for validator in own.state.network.validators() {
        if let Some(api) = &validator.api {
            apis.entry(validator.key.clone())
                .or_insert_with(|| api.trim_end_matches('/').to_owned());
        }
    }
    apis.remove(&me);
    drop(own);
    drop(view);

    // Which size enough validators vouch for.
    progress(Progress::Heads { peers: apis.len() });
    let mut vouched: BTreeMap<Vouched, BTreeMap<String, String>> = BTreeMap::new();
    for (peer, api) in &apis {
        let heads = match source.snapshot_heads(api) {
            Ok(heads) => heads,
            Err(e) => {
                progress(Progress::Note(&format!("{peer} at {api}: {e}")));
                continue;
            }
        };
        for head in heads {
            let Ok(parsed) = Unverified::parse(head.as_bytes()) else {
                continue;
            };
            let signer = parsed.header.node.clone();
            if !validators.contains(&signer) || parsed.check_signature(&network, &signer).is_err() {
                continue;
            }
            let key = Vouched {
                size: parsed.header.size,
                root: parsed.header.root.clone(),
                state_digest: parsed.header.state_digest.clone(),
            };
            // The signer's own node serves it best; any peer holding it will do.
            let holders = vouched.entry(key).or_default();
            if signer == *peer || !holders.contains_key(&signer) {
                holders.insert(signer, api.clone());
            }
        }
    }
    let Some((chosen, holders)) = vouched
        .into_iter()
        .filter(|(v, signers)| signers.len() >= needed && v.size > own_size)
        .max_by_key(|(v, _)| v.size)
    else {
        return Err(CatchUpError::NoQuorum(format!(
            "no state snapshot past this log's {own_size} entries is vouched for by {needed} of the {} validators this log names; `hygeia serve` catches up block by block",
            validators.len()
        )));
    };
    progress(Progress::Chosen {
        size: chosen.size,
        vouched_by: holders.len(),
        needed,
    });

    // The chain from this node's last block to the block ending at the
    // chosen size, checked, staged in a file; and the root its entries make.
    let chain_path = data_dir.join(CONSENSUS_DIR).join(CHAIN_FILE);
    // A node that never ran (just made by `network init` or `join`) has
    // no chain file yet.
    let own_chain = match std::fs::read(&chain_path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return Err(CatchUpError::DataDir(format!(
                "cannot read the finalized chain {}: {e}",
                chain_path.display()
            )))
        }
    };
    let store_view = store.snapshot().map_err(data_dir_error)?;
    let first = store_view.leaf_hash_at(0).map_err(data_dir_error)?;
    let mut parent = block::genesis_digest(1, &first.0);
    let mut offset = 0usize;
    let mut chained = 1u64;
    while let Some((_, Some(encoded))) = frame_at(&own_chain, offset) {
        let block = Block::decode(encoded).map_err(data_dir_error)?;
        if block.parent != parent {
            return Err(CatchUpError::DataDir(
                "the finalized chain does not link: start the node once, or restore it".into(),
            ));
        }
        parent = Block::digest(encoded);
        chained += block.tx_count() as u64;
        offset += 4 + encoded.len();
    }
    if chained != own_size {
        return Err(CatchUpError::DataDir(format!(
            "the finalized chain holds {chained} entries and the log {own_size}: start the node once so it appends what a crash left out"
        )));
    }
    let mut root = RootBuilder::new();
    for index in 0..own_size {
        root.push(store_view.leaf_hash_at(index).map_err(data_dir_error)?);
    }
    drop(store_view);

    let ctx = TxContext {
        network: &network,
        modules: &modules,
    };
    let staging_path = data_dir.join(CONSENSUS_DIR).join("catch-up.chain.tmp");
    std::fs::create_dir_all(data_dir.join(CONSENSUS_DIR)).map_err(data_dir_error)?;
    let _staged_file = RemovedOnDrop(&staging_path);
    // From each peer holding the vouched snapshot in turn, until one's
    // chain and snapshot check: a faulty peer can relay good heads and
    // send bad bytes.
    let mut apis: Vec<(&String, &String)> = holders.iter().collect();
    apis.sort_by(|a, b| a.1.cmp(b.1));
    apis.dedup_by(|a, b| a.1 == b.1);
    let mut fetched = None;
    let mut refusals = Vec::new();
    for (peer, api) in apis {
        let from = Fetch {
            source,
            api,
            ctx: &ctx,
            chosen: &chosen,
            vouchers: holders.len(),
        };
        match from.checked(&staging_path, offset as u64, parent, root.clone(), progress) {
            Ok((blocks, committed)) => {
                fetched = Some((format!("{peer} at {api}"), blocks, committed));
                break;
            }
            Err(CatchUpError::PeerAnswer(why)) => {
                progress(Progress::Note(&why));
                refusals.push(why);
            }
            Err(e) => return Err(e),
        }
    }
    let Some((fetched_from, blocks, committed)) = fetched else {
        return Err(CatchUpError::PeerAnswer(refusals.join("; ")));
    };

    // Everything checked: write the chain, the log, the snapshot.
    progress(Progress::Writing);
    let write_error = |e: &dyn std::fmt::Display| CatchUpError::Write(e.to_string());
    let mut chain = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&chain_path)
        .map_err(|e| write_error(&e))?;
    // A torn tail of the chain file (cut at the next open anyway) first.
    chain.set_len(offset as u64).map_err(|e| write_error(&e))?;
    let mut staged = std::fs::File::open(&staging_path).map_err(|e| write_error(&e))?;
    std::io::copy(&mut staged, &mut chain).map_err(|e| write_error(&e))?;
    chain.sync_all().map_err(|e| write_error(&e))?;
    drop(chain);
    let signer = CheckpointSigner::new(&network, Keypair::from_seed(&key.as_dalek().to_bytes()))
        .map_err(|e| write_error(&e))?;
    let mut writer = LogWriter::open(store.clone(), signer).map_err(|e| write_error(&e))?;
    staged
        .seek(std::io::SeekFrom::Start(0))
        .map_err(|e| write_error(&e))?;
    let mut staged = std::io::BufReader::new(staged);
    let mut encoded = Vec::new();
    for _ in 0..blocks {
        let mut len = [0u8; 4];
        staged.read_exact(&mut len).map_err(|e| write_error(&e))?;
        encoded.resize(u32::from_be_bytes(len) as usize, 0);
        staged
            .read_exact(&mut encoded)
            .map_err(|e| write_error(&e))?;
        let block = Block::decode(&encoded).map_err(|e| write_error(&e))?;
        if block.submissions.is_empty() {
            continue;
        }
        let mut submissions: Vec<Vec<SignedTx>> = Vec::with_capacity(block.submissions.len());
        for submission in &block.submissions {
            let txs = submission
                .iter()
                .map(|raw| UnverifiedTx::parse(raw, &ctx).map(UnverifiedTx::into_vouched_for))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    CatchUpError::Write(format!(
                        "an entry of block {} does not parse: {e}",
                        block.height
                    ))
                })?;
            submissions.push(txs);
        }
        let batch: Vec<&[SignedTx]> = submissions.iter().map(Vec::as_slice).collect();
        let outcome = writer.append_batch(&batch).map_err(|e| write_error(&e))?;
        if let Some(Err(e)) = outcome.results.iter().find(|r| r.is_err()) {
            return Err(CatchUpError::Write(format!(
                "the log refused an entry of block {}: {e}",
                block.height
            )));
        }
    }
    let written = writer.checkpoint().size;
    if written != chosen.size {
        return Err(CatchUpError::Write(format!(
            "the log holds {written} entries, not {}",
            chosen.size
        )));
    }
    let snapshotter = crate::snapshots::Snapshotter::new(
        data_dir.join(SNAPSHOT_DIR),
        store.clone(),
        &key,
        &network,
    );
    snapshotter
        .write(chosen.size, &committed)
        .map_err(|e| write_error(&e))?;
    Ok(Installed {
        from_size: own_size,
        size: chosen.size,
        blocks,
        vouched_by: holders.into_keys().collect(),
        fetched_from,
    })
}

/// One peer's chain and snapshot, fetched and checked against what the
/// validators vouch for.
struct Fetch<'a> {
    source: &'a dyn Source,
    api: &'a str,
    ctx: &'a TxContext<'a>,
    chosen: &'a Vouched,
    /// How many validators vouch for it (for messages).
    vouchers: usize,
}

impl Fetch<'_> {
    /// Stages in `staging_path` the blocks from `offset` of the peer's
    /// chain (the first extending `parent`) up to the vouched size,
    /// checks that their entries are transactions and make, after the
    /// leaves in `root`, the vouched root; then fetches and checks the
    /// snapshot. Returns how many blocks were staged, and the state.
    fn checked(
        &self,
        staging_path: &Path,
        offset: u64,
        mut parent: block::Digest,
        mut root: RootBuilder,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<(u64, Committed), CatchUpError> {
        let api = self.api;
        let chosen = self.chosen;
        let mut staging = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(staging_path)
            .map_err(data_dir_error)?;
        let mut fetched_offset = offset;
        let mut pending: Vec<u8> = Vec::new();
        let mut blocks = 0u64;
        while root.size() < chosen.size {
            let page = self
                .source
                .chain(api, fetched_offset + pending.len() as u64)
                .map_err(CatchUpError::PeerAnswer)?;
            if page.is_empty() {
                return Err(CatchUpError::PeerAnswer(format!(
                    "{api}'s finalized chain ends at {} entries, before the {} its snapshot covers",
                    root.size(),
                    chosen.size
                )));
            }
            pending.extend_from_slice(&page);
            let mut at = 0usize;
            while let Some((len, Some(encoded))) = frame_at(&pending, at) {
                if len > block::MAX_BLOCK_BYTES {
                    return Err(CatchUpError::PeerAnswer(format!(
                        "{api}'s chain has a record of {len} bytes"
                    )));
                }
                let block = Block::decode(encoded)
                    .map_err(|e| CatchUpError::PeerAnswer(format!("{api}'s chain: {e}")))?;
                if block.parent != parent {
                    return Err(CatchUpError::PeerAnswer(format!(
                        "{api}'s chain does not extend this node's at height {}",
                        block.height
                    )));
                }
                for submission in &block.submissions {
                    for raw in submission {
                        // Checked now, so nothing is written of a chain whose
                        // entries the log would refuse (parsed again to write).
                        UnverifiedTx::parse(raw, self.ctx).map_err(|e| {
                            CatchUpError::PeerAnswer(format!(
                                "an entry of block {} from {api} is not a transaction: {e}",
                                block.height
                            ))
                        })?;
                        root.push(hygeia_ledger::merkle::leaf_hash(raw));
                    }
                }
                parent = Block::digest(encoded);
                staging
                    .write_all(&pending[at..at + 4 + len])
                    .map_err(data_dir_error)?;
                at += 4 + len;
                blocks += 1;
                progress(Progress::Chain {
                    entries: root.size(),
                    of: chosen.size,
                });
                if root.size() >= chosen.size {
                    break;
                }
            }
            fetched_offset += at as u64;
            pending.drain(..at);
        }
        if root.size() != chosen.size {
            return Err(CatchUpError::PeerAnswer(format!(
                "no block of {api}'s chain ends at {} entries (one ends at {})",
                chosen.size,
                root.size()
            )));
        }
        if hex::encode(root.root().0) != chosen.root {
            return Err(CatchUpError::PeerAnswer(format!(
                "the entries {api} sent make another log than the one {} validators vouch for at {} entries",
                self.vouchers, chosen.size
            )));
        }
        staging.sync_all().map_err(data_dir_error)?;

        // The state, checked against the vouched digest.
        let bytes = self
            .source
            .snapshot(api, chosen.size)
            .map_err(CatchUpError::PeerAnswer)?;
        progress(Progress::Snapshot {
            bytes: bytes.len() as u64,
        });
        let parsed = Unverified::parse(&bytes)
            .map_err(|e| CatchUpError::PeerAnswer(format!("{api}'s snapshot: {e}")))?;
        if parsed.header.size != chosen.size || parsed.header.state_digest != chosen.state_digest {
            return Err(CatchUpError::PeerAnswer(format!(
                "{api}'s snapshot is not the one vouched for"
            )));
        }
        let committed = parsed
            .decode()
            .map_err(|e| CatchUpError::PeerAnswer(format!("{api}'s snapshot: {e}")))?;
        Ok((blocks, committed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ordering::{init, InitNode};
    use hygeia_state::snapshot::{seal, Header};
    use hygeia_state::writer::Committed;
    use hygeia_state::LedgerState;
    use std::collections::HashMap;

    /// Peers that answer from memory: snapshot heads and files, and a
    /// chain file, by API URL.
    #[derive(Default)]
    struct Fake {
        snapshots: HashMap<String, Vec<Vec<u8>>>,
        /// What a peer sends when asked for a snapshot whole, if not the
        /// one whose head it listed.
        sent_instead: HashMap<String, Vec<u8>>,
        chain: Vec<u8>,
        /// A peer whose chain is this instead.
        chain_instead: HashMap<String, Vec<u8>>,
    }

    impl Source for Fake {
        fn snapshot_heads(&self, api: &str) -> Result<Vec<String>, String> {
            Ok(self
                .snapshots
                .get(api)
                .into_iter()
                .flatten()
                .map(|file| {
                    let text = String::from_utf8_lossy(file);
                    let head: Vec<&str> = text.splitn(4, '\n').take(3).collect();
                    format!("{}\n", head.join("\n"))
                })
                .collect())
        }

        fn snapshot(&self, api: &str, size: u64) -> Result<Vec<u8>, String> {
            if let Some(file) = self.sent_instead.get(api) {
                return Ok(file.clone());
            }
            self.snapshots
                .get(api)
                .into_iter()
                .flatten()
                .find(|f| Unverified::parse(f).unwrap().header.size == size)
                .cloned()
                .ok_or_else(|| "404".to_owned())
        }

        fn chain(&self, api: &str, offset: u64) -> Result<Vec<u8>, String> {
            let chain = self.chain_instead.get(api).unwrap_or(&self.chain);
            Ok(chain.get(offset as usize..).unwrap_or_default().to_vec())
        }
    }

    const NETWORK: &str = "catch-up.hygeia.test";

    /// Four founders' directories (node 0 catches up), their keys, the
    /// first block after the genesis (two attestations) framed as in a
    /// chain file, the root of the log it makes (3 entries), and leaf 0.
    fn network() -> (
        tempfile::TempDir,
        Vec<Keypair>,
        Vec<u8>,
        String,
        hygeia_ledger::Hash,
    ) {
        let root = tempfile::tempdir().unwrap();
        let nodes: Vec<InitNode> = (0..4)
            .map(|i| InitNode {
                data_dir: root.path().join(format!("org-{i}")),
                p2p: format!("127.0.0.1:{}", 7301 + i).parse().unwrap(),
                api: Some(format!("http://peer{i}.test")),
            })
            .collect();
        init(NETWORK, None, &nodes).unwrap();
        let keys: Vec<Keypair> = nodes
            .iter()
            .map(|n| Keypair::read_key_file(&n.data_dir.join(NODE_KEY_FILE)).unwrap())
            .collect();
        let (store, _) = LogStore::open_existing(&nodes[0].data_dir.join(LEDGER_FILE)).unwrap();
        let leaf0 = store.snapshot().unwrap().leaf_hash_at(0).unwrap();
        let signer = Keypair::generate();
        let attestations: Vec<Vec<u8>> = (0..2)
            .map(|i| {
                hygeia_ledger::TxBuilder {
                    network: NETWORK,
                    tx_type: "attest",
                    nonce: format!("a-{i}"),
                    body: serde_json::json!({"label": "test.event", "subject": format!("sha256:{}", "ab".repeat(32))}),
                }
                .sign(&signer)
            })
            .collect();
        let (chain, log_root) = chain_of(leaf0, attestations);
        (root, keys, chain, log_root, leaf0)
    }

    /// One block of `entries` after the genesis, framed, and the root of
    /// the log they make after leaf 0.
    fn chain_of(leaf0: hygeia_ledger::Hash, entries: Vec<Vec<u8>>) -> (Vec<u8>, String) {
        let mut root = RootBuilder::new();
        root.push(leaf0);
        for entry in &entries {
            root.push(hygeia_ledger::merkle::leaf_hash(entry));
        }
        let encoded = Block {
            parent: block::genesis_digest(1, &leaf0.0),
            height: 1,
            view: 1,
            submissions: vec![entries],
        }
        .encode();
        let mut chain = (encoded.len() as u32).to_be_bytes().to_vec();
        chain.extend_from_slice(&encoded);
        (chain, hex::encode(root.root().0))
    }

    fn snapshot_by(key: &Keypair, size: u64, root: &str) -> Vec<u8> {
        let header = Header {
            network: NETWORK.into(),
            node: key.did().to_string(),
            size,
            root: root.into(),
            state_digest: String::new(),
            stored_digest: String::new(),
            state_len: 0,
        };
        let state = hygeia_state::snapshot::encode(&Committed::new(LedgerState::empty()));
        seal(header, &state, key)
    }

    /// Every refusal: its code, and the directory as it was.
    #[test]
    fn what_does_not_check_is_refused_and_nothing_is_written() {
        let (root, keys, chain, log_root, leaf0) = network();
        let dir = root.path().join("org-0");
        let log_size = || {
            let (store, _) = LogStore::open_existing(&dir.join(LEDGER_FILE)).unwrap();
            store.snapshot().unwrap().size()
        };
        let vouched = |signers: &[usize], size: u64, root: &str| {
            let mut fake = Fake {
                chain: chain.clone(),
                ..Fake::default()
            };
            for i in signers {
                fake.snapshots.insert(
                    format!("http://peer{i}.test"),
                    vec![snapshot_by(&keys[*i], size, root)],
                );
            }
            fake
        };
        let stranger = Keypair::generate();
        let mut by_stranger = Fake {
            chain: chain.clone(),
            ..Fake::default()
        };
        by_stranger.snapshots.insert(
            "http://peer1.test".into(),
            vec![
                snapshot_by(&stranger, 3, &log_root),
                snapshot_by(&stranger, 3, &log_root),
            ],
        );
        let mut garbage_chain = vouched(&[1, 2], 3, &log_root);
        garbage_chain.chain = vec![0, 0, 0, 5, 1, 2, 3, 4, 5];
        let mut unlinked = vouched(&[1, 2], 3, &log_root);
        unlinked.chain[4] ^= 1; // the first byte of the block's parent
        let mut short_chain = vouched(&[1, 2], 3, &log_root);
        short_chain.chain.clear();
        // The peers list the vouched head, then send another state whole.
        let mut other_state = vouched(&[1, 2], 3, &log_root);
        let mut other = Committed::new(LedgerState::empty());
        other.accesses.insert("did:key:z".into(), Vec::new());
        for i in [1, 2] {
            let api = format!("http://peer{i}.test");
            let mut header = Unverified::parse(&other_state.snapshots[&api][0])
                .unwrap()
                .header;
            header.state_digest = String::new();
            let forged = seal(header, &hygeia_state::snapshot::encode(&other), &keys[i]);
            other_state.sent_instead.insert(api, forged);
        }
        // Entries that make the vouched root but are not transactions.
        let (chain_of_junk, root_of_junk) =
            chain_of(leaf0, vec![b"entry-1".to_vec(), b"entry-2".to_vec()]);
        let mut not_transactions = vouched(&[1, 2], 3, &root_of_junk);
        not_transactions.chain = chain_of_junk;
        let cases: Vec<(&str, Fake, &str, &str)> = vec![
            (
                "one validator vouches (f + 1 = 2 needed)",
                vouched(&[1], 3, &log_root),
                "catch_up.no_quorum",
                "vouched for by 2 of the 4",
            ),
            (
                "a key outside the validator set",
                by_stranger,
                "catch_up.no_quorum",
                "vouched for by 2 of the 4",
            ),
            (
                "nothing past this log's size",
                vouched(&[1, 2, 3], 1, &log_root),
                "catch_up.no_quorum",
                "past this log's 1 entries",
            ),
            (
                "a root the chain's entries do not make",
                vouched(&[1, 2], 3, &"ab".repeat(32)),
                "catch_up.peer_answer",
                "make another log",
            ),
            (
                "a size no block ends at",
                vouched(&[1, 2], 2, &log_root),
                "catch_up.peer_answer",
                "no block of",
            ),
            (
                "a chain that is not blocks",
                garbage_chain,
                "catch_up.peer_answer",
                "chain:",
            ),
            (
                "a chain that does not extend this node's",
                unlinked,
                "catch_up.peer_answer",
                "does not extend",
            ),
            (
                "a chain that ends before the size",
                short_chain,
                "catch_up.peer_answer",
                "ends at 1 entries",
            ),
            (
                "a snapshot of another state",
                other_state,
                "catch_up.peer_answer",
                "snapshot",
            ),
            (
                "entries that are not transactions",
                not_transactions,
                "catch_up.peer_answer",
                "is not a transaction",
            ),
        ];
        for (what, fake, code, needle) in cases {
            let refused = catch_up(&dir, &fake, &mut |_| {}).expect_err(what);
            let refused = refused.to_string();
            assert!(refused.starts_with(code), "{what}: {refused}");
            assert!(refused.contains(needle), "{what}: {refused}");
            assert_eq!(log_size(), 1, "{what}: the log holds the genesis alone");
            assert!(!dir.join(CONSENSUS_DIR).join(CHAIN_FILE).exists(), "{what}");
            assert!(
                !dir.join(CONSENSUS_DIR).join("catch-up.chain.tmp").exists(),
                "{what}"
            );
            assert!(
                crate::snapshots::list(&dir.join(SNAPSHOT_DIR)).is_empty(),
                "{what}"
            );
        }
        // Not a network node's directory.
        let alone = tempfile::tempdir().unwrap();
        let refused = catch_up(alone.path(), &Fake::default(), &mut |_| {}).unwrap_err();
        assert!(
            refused.to_string().starts_with("catch_up.data_dir"),
            "{refused}"
        );
    }

    /// Vouched for by two of four validators (f + 1), checked: the block is
    /// in the chain file, its entries in the log, and the state in a
    /// snapshot this node's own start accepts.
    #[test]
    fn a_vouched_state_and_the_chain_to_it_are_installed() {
        let (root, keys, chain, log_root, _) = network();
        let dir = root.path().join("org-0");
        let mut fake = Fake {
            chain: chain.clone(),
            ..Fake::default()
        };
        for i in [2, 3] {
            fake.snapshots.insert(
                format!("http://peer{i}.test"),
                vec![snapshot_by(&keys[i], 3, &log_root)],
            );
        }
        // The first peer asked sends a chain that does not link: the
        // next one holding the snapshot is asked.
        fake.chain_instead
            .insert("http://peer2.test".into(), vec![0, 0, 0, 1, 0]);
        let mut stages = 0;
        let mut notes = Vec::new();
        let installed = catch_up(&dir, &fake, &mut |p| {
            stages += 1;
            if let Progress::Note(note) = p {
                notes.push(note.to_owned());
            }
        })
        .unwrap();
        assert!(stages >= 4, "progress is shown");
        assert!(
            installed.fetched_from.ends_with("http://peer3.test"),
            "{installed:?}"
        );
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].starts_with("http://peer2.test's chain"),
            "{notes:?}"
        );
        assert_eq!(
            (installed.from_size, installed.size, installed.blocks),
            (1, 3, 1)
        );
        assert_eq!(installed.vouched_by.len(), 2);
        assert_eq!(
            std::fs::read(dir.join(CONSENSUS_DIR).join(CHAIN_FILE)).unwrap(),
            chain
        );
        let (store, _) = LogStore::open_existing(&dir.join(LEDGER_FILE)).unwrap();
        let view = store.snapshot().unwrap();
        assert_eq!(view.size(), 3);
        assert_eq!(hex::encode(view.root().0), log_root);
        let me = keys[0].did().to_string();
        let (size, _, _) =
            crate::snapshots::load_newest(&dir.join(SNAPSHOT_DIR), &view, NETWORK, &me)
                .expect("a snapshot of this node's own");
        assert_eq!(size, 3);
        assert!(!dir.join(CONSENSUS_DIR).join("catch-up.chain.tmp").exists());
    }
}
