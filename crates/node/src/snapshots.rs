//! State snapshots in the data directory: written in the background every
//! `snapshot_every` entries and at a clean shutdown, loaded at start-up so
//! only the tail of the log is replayed.
//!
//! Snapshots live in `<data-dir>/snapshots/state-<size>.snap` (the size
//! zero-padded to 20 digits). They are a cache: deleting any or all of them
//! while the node is stopped is always safe (the next start replays more
//! of the log). The file format and its checks are
//! [`hygeia_state::snapshot`]'s; what they protect against is in
//! `docs/threat-model.md` ("State snapshots").
//!
//! Policy: after each durable batch the writer looks at whether the
//! committed state crossed a multiple of `snapshot_every` entries since
//! the newest snapshot; if so, it copies the committed state (a clone under the
//! readers' lock, on the writer thread) and hands the copy to a background
//! thread that encodes, signs and writes it. If that thread is still busy
//! with the previous one, the writer does not wait: it tries again after
//! the next batch. The same check runs once at start-up (so a full replay
//! of a long log is followed by a snapshot), and a last snapshot is written
//! when the sequencer stops at a clean shutdown. The two newest snapshots
//! are kept. `snapshot_every = 0` writes none.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;

use hygeia_identity::Keypair;
use hygeia_ledger::store::Snapshot as LogView;
use hygeia_ledger::{LogStore, SignedTx, StateMachine, StoreError, TxError};
use hygeia_state::snapshot::{self, Header, SnapshotError, Unverified};
use hygeia_state::writer::{Committed, SharedState, StateWriter};

/// Snapshots kept in the directory; older ones are deleted after a new one
/// is written.
pub const KEEP: usize = 2;

const PREFIX: &str = "state-";
const SUFFIX: &str = ".snap";

/// The snapshot files in `dir`, newest (largest size) first. Files whose
/// names are not snapshot names are left alone.
pub fn list(dir: &Path) -> Vec<(u64, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(u64, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let size = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
            (size.len() == 20 && size.bytes().all(|b| b.is_ascii_digit()))
                .then(|| size.parse().ok())
                .flatten()
                .map(|size| (size, e.path()))
        })
        .collect();
    found.sort_unstable_by_key(|(size, _)| std::cmp::Reverse(*size));
    found
}

/// The file name of the snapshot covering `size` entries.
pub fn file_name(size: u64) -> String {
    format!("{PREFIX}{size:020}{SUFFIX}")
}

/// Checks a snapshot file against the log (`view`): its signature by
/// `node`, its network, that the log has its size and root, and its
/// digest; returns the size it covers and the state.
pub fn check(
    bytes: &[u8],
    view: &LogView,
    network: &str,
    node: &str,
) -> Result<(u64, Committed), SnapshotError> {
    let parsed = Unverified::parse(bytes)?;
    parsed.check_signature(network, node)?;
    parsed.check_log(view.size(), |size| {
        view.root_at(size).ok().map(|root| hex::encode(root.0))
    })?;
    let committed = parsed.decode()?;
    Ok((parsed.header.size, committed))
}

/// The newest snapshot in `dir` that passes [`check`]. Every snapshot that
/// does not is logged with a warning and ignored.
pub fn load_newest(
    dir: &Path,
    view: &LogView,
    network: &str,
    node: &str,
) -> Option<(u64, Committed, PathBuf)> {
    for (_, path) in list(dir) {
        let outcome = std::fs::read(&path)
            .map_err(|e| SnapshotError::Format(format!("cannot read it: {e}")))
            .and_then(|bytes| check(&bytes, view, network, node));
        match outcome {
            Ok((size, committed)) => return Some((size, committed, path)),
            Err(e) => tracing::warn!(
                path = %path.display(),
                code = e.code(),
                error = %e,
                "ignoring a state snapshot that does not check; the log will be replayed instead"
            ),
        }
    }
    None
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot write a snapshot in {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Writes snapshots of one node's state into one directory.
pub struct Snapshotter {
    dir: PathBuf,
    store: Arc<LogStore>,
    key: Keypair,
    network: String,
    node: String,
}

impl Snapshotter {
    pub fn new(dir: PathBuf, store: Arc<LogStore>, key: &Keypair, network: &str) -> Self {
        Snapshotter {
            dir,
            store,
            key: Keypair::from_seed(&key.as_dalek().to_bytes()),
            network: network.to_owned(),
            node: key.did().to_string(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the snapshot of `committed`, which covers the first `size`
    /// entries of the log (durably written ones), then deletes all but the
    /// [`KEEP`] newest. The file appears whole or not at all (written
    /// aside, synced, renamed).
    pub fn write(&self, size: u64, committed: &Committed) -> Result<PathBuf, WriteError> {
        let root = self.store.snapshot()?.root_at(size)?;
        let header = Header {
            network: self.network.clone(),
            node: self.node.clone(),
            size,
            root: hex::encode(root.0),
            state_digest: String::new(),
            stored_digest: String::new(),
            state_len: 0,
        };
        let bytes = snapshot::seal(header, &snapshot::encode(committed), &self.key);
        let io = |source| WriteError::Io {
            path: self.dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        let path = self.dir.join(file_name(size));
        let tmp = self.dir.join(format!("{}.tmp", file_name(size)));
        std::fs::write(&tmp, &bytes)
            .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
            .and_then(|()| std::fs::rename(&tmp, &path))
            .and_then(|()| std::fs::File::open(&self.dir)?.sync_all())
            .map_err(io)?;
        for (_, old) in list(&self.dir).into_iter().skip(KEEP) {
            if let Err(e) = std::fs::remove_file(&old) {
                tracing::warn!(path = %old.display(), error = %e, "cannot delete an old state snapshot");
            }
        }
        tracing::info!(path = %path.display(), size, bytes = bytes.len(), "state snapshot written");
        Ok(path)
    }
}

/// The node's [`StateMachine`]: the state writer, plus the snapshot policy
/// (module docs).
pub struct SnapshottingWriter {
    inner: StateWriter,
    shared: SharedState,
    snapshotter: Arc<Snapshotter>,
    every: u64,
    /// End of the last admitted submission (the log's size once the batch
    /// is durable).
    admitted_end: u64,
    /// Entries the committed state covers.
    covered: u64,
    /// Size of the newest snapshot handed to the worker.
    requested: u64,
    /// Size of the newest snapshot written (or loaded at start).
    written: Arc<AtomicU64>,
    /// Whether the worker waits for work: the state is copied only then.
    idle: Arc<AtomicBool>,
    worker: Option<Worker>,
    /// Told the log size the committed state covers after each commit
    /// (the replication follower waits on it, `crate::follower`).
    progress: Option<tokio::sync::watch::Sender<u64>>,
}

/// The background writer: its queue (a size and the state covering it)
/// and its thread.
type Worker = (SyncSender<(u64, Committed)>, JoinHandle<()>);

impl SnapshottingWriter {
    /// `covered`: the log size the committed state covers at start;
    /// `newest`: the size of the newest valid snapshot (0 if none).
    pub fn new(
        inner: StateWriter,
        shared: SharedState,
        snapshotter: Arc<Snapshotter>,
        every: u64,
        covered: u64,
        newest: u64,
    ) -> Self {
        let written = Arc::new(AtomicU64::new(newest));
        let idle = Arc::new(AtomicBool::new(true));
        let worker = (every > 0).then(|| {
            let (send, receive) = sync_channel::<(u64, Committed)>(1);
            let snapshotter = snapshotter.clone();
            let written = written.clone();
            let idle = idle.clone();
            let thread = std::thread::Builder::new()
                .name("hygeia-snapshot".into())
                .spawn(move || {
                    for (size, committed) in receive {
                        match snapshotter.write(size, &committed) {
                            Ok(_) => {
                                written.fetch_max(size, Ordering::AcqRel);
                            }
                            Err(e) => {
                                tracing::error!(size, error = %e, "cannot write a state snapshot")
                            }
                        }
                        idle.store(true, Ordering::Release);
                    }
                })
                .expect("spawning the snapshot thread");
            (send, thread)
        });
        let mut writer = SnapshottingWriter {
            inner,
            shared,
            snapshotter,
            every,
            admitted_end: covered,
            covered,
            requested: newest,
            written,
            idle,
            worker,
            progress: None,
        };
        writer.maybe_snapshot();
        writer
    }

    /// Publishes the log size the committed state covers on `progress`
    /// after each commit.
    pub fn with_progress(mut self, progress: tokio::sync::watch::Sender<u64>) -> Self {
        progress.send_replace(self.covered);
        self.progress = Some(progress);
        self
    }

    /// Hands a copy of the committed state to the worker if it crossed a
    /// multiple of `every` entries since the last one, and the worker is
    /// idle.
    ///
    /// Crossing a multiple, rather than being `every` past the last
    /// snapshot: nodes ordering one log commit at the same block
    /// boundaries, so they snapshot at the same sizes whatever their
    /// history of restarts, and a node catching up can find enough of them
    /// vouching for one state (`crate::catch_up`).
    fn maybe_snapshot(&mut self) {
        if self.every == 0 || self.covered / self.every <= self.requested / self.every {
            return;
        }
        let Some((send, _)) = &self.worker else {
            return;
        };
        // The state is copied only when the worker can take the copy at
        // once; otherwise the next batch tries again.
        if !self.idle.swap(false, Ordering::AcqRel) {
            return;
        }
        let copy = self.shared.read().clone();
        match send.try_send((self.covered, copy)) {
            Ok(()) => self.requested = self.covered,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.idle.store(true, Ordering::Release)
            }
        }
    }
}

impl StateMachine for SnapshottingWriter {
    fn admit(&mut self, first_index: u64, submission: &[SignedTx]) -> Result<(), TxError> {
        self.inner.admit(first_index, submission)?;
        self.admitted_end = first_index + submission.len() as u64;
        Ok(())
    }

    fn commit(&mut self) {
        self.inner.commit();
        self.covered = self.covered.max(self.admitted_end);
        if let Some(progress) = &self.progress {
            progress.send_if_modified(|seen| {
                let moved = *seen < self.covered;
                *seen = (*seen).max(self.covered);
                moved
            });
        }
        self.maybe_snapshot();
    }

    fn abort(&mut self) {
        self.inner.abort();
        self.admitted_end = self.covered;
    }
}

impl Drop for SnapshottingWriter {
    /// The sequencer stops (a clean shutdown): finish the snapshot under
    /// way, then write one of the final state if it is newer.
    fn drop(&mut self) {
        let Some((send, thread)) = self.worker.take() else {
            return;
        };
        drop(send);
        let _ = thread.join();
        if self.covered > self.written.load(Ordering::Acquire) {
            let copy = self.shared.read();
            if let Err(e) = self.snapshotter.write(self.covered, &copy) {
                tracing::error!(size = self.covered, error = %e, "cannot write the shutdown state snapshot");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{NodeConfig, LEDGER_FILE, NODE_KEY_FILE, SNAPSHOT_DIR};
    use crate::Node;
    use hygeia_ledger::tx::TxContext;
    use hygeia_ledger::TxBuilder;
    use serde_json::json;

    const NETWORK: &str = "snapshots.hygeia.test";

    fn config(dir: &Path, every: u64) -> NodeConfig {
        let mut config = NodeConfig::new(
            dir.to_path_buf(),
            "127.0.0.1:0".parse().unwrap(),
            NETWORK.to_owned(),
        );
        config.snapshot_every = every;
        config
    }

    fn did(key: &Keypair) -> String {
        key.did().to_string()
    }

    /// Submits records, consent grants, a break-glass access and attest
    /// entries, `rounds` times; `tag` keeps nonces and commitments apart.
    fn fill(node: &Node, tag: &str, rounds: usize) {
        let ctx = TxContext {
            network: NETWORK,
            modules: &node.modules,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        for round in 0..rounds {
            let patient = Keypair::generate();
            let clinician = Keypair::generate();
            let sign = |key: &Keypair, tx_type: &str, n: usize, body: serde_json::Value| {
                TxBuilder {
                    network: NETWORK,
                    tx_type,
                    nonce: format!("{tag}-{round}-{n}"),
                    body,
                }
                .sign_checked(key, &ctx)
                .unwrap()
            };
            let txs = vec![
                sign(
                    &node.key,
                    "record",
                    0,
                    json!({"patient": did(&patient), "author": did(&clinician), "category": "lab", "resource_type": "Observation", "commitment": format!("{:032x}{:032x}", tag.as_bytes()[0], round)}),
                ),
                sign(
                    &patient,
                    "consent.grant",
                    1,
                    json!({"patient": did(&patient), "grantee": did(&clinician), "scope": {"categories": ["lab"]}, "actions": ["read"], "purpose": "TREAT", "not_before": 0, "not_after": 4_000_000_000i64}),
                ),
                sign(
                    &node.key,
                    "access",
                    2,
                    json!({"requester": did(&clinician), "patient": did(&patient), "action": "read", "purpose": "ETREAT", "records": [], "decision": "permit", "break_glass": true, "justified": true, "reasons": ["break-glass-emergency-read"], "grants": [], "governance_version": 0, "time": 1000}),
                ),
                sign(
                    &clinician,
                    "attest",
                    3,
                    json!({"label": "test.event", "subject": format!("sha256:{:064x}", round)}),
                ),
            ];
            for tx in txs {
                runtime.block_on(node.sequencer.submit(vec![tx])).unwrap();
            }
        }
    }

    /// The state a plain replay of the node's whole log gives, as a digest.
    fn replayed_digest(node: &Node) -> String {
        let committed = crate::node::replay(
            &node.store.snapshot().unwrap(),
            &node.config,
            &hygeia_state::txs::registry(),
            None,
        )
        .unwrap();
        snapshot::state_digest(&committed)
    }

    fn digest_of(node: &Node) -> String {
        snapshot::state_digest(&node.state.read())
    }

    /// A log with a shutdown snapshot in `dir`; returns its size.
    fn log_with_snapshot(dir: &Path) -> u64 {
        let node = Node::open(config(dir, 1_000)).unwrap();
        fill(&node, "a", 5);
        let size = node.sequencer.latest_checkpoint().size;
        drop(node);
        assert_eq!(list(&dir.join(SNAPSHOT_DIR))[0].0, size);
        size
    }

    /// Starts the node (writing no snapshot) and checks that it replayed
    /// the whole log to the plain replay's state.
    fn assert_full_replay(dir: &Path) {
        let node = Node::open(config(dir, 0)).unwrap();
        assert_eq!(node.started_from_snapshot, None);
        assert_eq!(digest_of(&node), replayed_digest(&node));
    }

    /// Replaces the only snapshot with one signed by the node key that
    /// says `size` and `root`, holding the state `state_of` gives.
    fn forge(dir: &Path, size: u64, root: String) {
        let key = Keypair::read_key_file(&dir.join(NODE_KEY_FILE)).unwrap();
        let snapshots = dir.join(SNAPSHOT_DIR);
        let (_, path) = list(&snapshots).remove(0);
        let bytes = std::fs::read(&path).unwrap();
        let state = Unverified::parse(&bytes).unwrap().decode().unwrap();
        let header = Header {
            network: NETWORK.into(),
            node: did(&key),
            size,
            root,
            state_digest: String::new(),
            stored_digest: String::new(),
            state_len: 0,
        };
        std::fs::remove_file(&path).unwrap();
        std::fs::write(
            snapshots.join(file_name(size)),
            snapshot::seal(header, &snapshot::encode(&state), &key),
        )
        .unwrap();
    }

    #[test]
    fn a_restart_loads_the_snapshot_and_replays_only_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        let size = log_with_snapshot(dir.path());
        {
            let node = Node::open(config(dir.path(), 0)).unwrap();
            assert_eq!(node.started_from_snapshot, Some(size));
            assert_eq!(digest_of(&node), replayed_digest(&node));
            // The tail: more entries after the snapshot.
            fill(&node, "b", 3);
        }
        let node = Node::open(config(dir.path(), 0)).unwrap();
        assert_eq!(node.started_from_snapshot, Some(size));
        assert!(node.sequencer.latest_checkpoint().size > size);
        let digest = digest_of(&node);
        assert_eq!(digest, replayed_digest(&node));
        assert!(node.state.read().state.records.len() == 8);
        assert!(!node.state.read().accesses.is_empty());
        drop(node);
        // With snapshots on, the shutdown writes a newer one; two are kept.
        let node = Node::open(config(dir.path(), 1_000)).unwrap();
        let end = node.sequencer.latest_checkpoint().size;
        drop(node);
        let kept: Vec<u64> = list(&dir.path().join(SNAPSHOT_DIR))
            .into_iter()
            .map(|(size, _)| size)
            .collect();
        assert_eq!(kept, vec![end, size]);
    }

    /// A data directory whose snapshot was written in the first format
    /// (the state stored uncompressed) starts from it.
    #[test]
    fn a_first_format_snapshot_is_still_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let size = log_with_snapshot(dir.path());
        let key = Keypair::read_key_file(&dir.path().join(NODE_KEY_FILE)).unwrap();
        let (_, path) = list(&dir.path().join(SNAPSHOT_DIR)).remove(0);
        let bytes = std::fs::read(&path).unwrap();
        let parsed = Unverified::parse(&bytes).unwrap();
        let state = parsed.decode().unwrap();
        let old = snapshot::seal_v1(parsed.header.clone(), &snapshot::encode(&state), &key);
        assert!(old.starts_with(snapshot::MAGIC_V1.as_bytes()));
        assert!(old.len() > bytes.len());
        std::fs::write(&path, &old).unwrap();
        let node = Node::open(config(dir.path(), 0)).unwrap();
        assert_eq!(node.started_from_snapshot, Some(size));
        assert_eq!(digest_of(&node), replayed_digest(&node));
    }

    #[test]
    fn a_snapshot_with_one_byte_changed_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        log_with_snapshot(dir.path());
        let (_, path) = list(&dir.path().join(SNAPSHOT_DIR)).remove(0);
        let mut bytes = std::fs::read(&path).unwrap();
        // A byte of the state (after the three header lines).
        let at = bytes.len() - 10;
        bytes[at] ^= 0x20;
        std::fs::write(&path, &bytes).unwrap();
        {
            let store = LogStore::open(&dir.path().join(LEDGER_FILE), NETWORK).unwrap();
            let node = Keypair::read_key_file(&dir.path().join(NODE_KEY_FILE)).unwrap();
            let view = store.snapshot().unwrap();
            let err = check(&bytes, &view, NETWORK, node.did().as_str()).unwrap_err();
            assert_eq!(err.code(), "snapshot.digest");
        }
        assert_full_replay(dir.path());
    }

    #[test]
    fn a_snapshot_claiming_a_size_the_log_does_not_have_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let size = log_with_snapshot(dir.path());
        forge(dir.path(), size + 5, "00".repeat(32));
        assert_full_replay(dir.path());
    }

    #[test]
    fn a_snapshot_whose_root_does_not_match_the_log_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let size = log_with_snapshot(dir.path());
        forge(dir.path(), size - 1, "00".repeat(32));
        assert_full_replay(dir.path());
    }

    #[test]
    fn a_snapshot_from_another_log_is_ignored() {
        // Two logs with the same node key: the other log's snapshot is
        // signed correctly, but its root is not this log's.
        let ours = tempfile::tempdir().unwrap();
        let theirs = tempfile::tempdir().unwrap();
        log_with_snapshot(ours.path());
        std::fs::create_dir_all(theirs.path()).unwrap();
        std::fs::copy(
            ours.path().join(NODE_KEY_FILE),
            theirs.path().join(NODE_KEY_FILE),
        )
        .unwrap();
        let their_size = log_with_snapshot(theirs.path());
        let ours_dir = ours.path().join(SNAPSHOT_DIR);
        for (_, path) in list(&ours_dir) {
            std::fs::remove_file(path).unwrap();
        }
        std::fs::copy(
            theirs.path().join(SNAPSHOT_DIR).join(file_name(their_size)),
            ours_dir.join(file_name(their_size)),
        )
        .unwrap();
        assert_full_replay(ours.path());
        // Signed by another node's key: refused for its signature.
        let stranger = tempfile::tempdir().unwrap();
        let size = log_with_snapshot(stranger.path());
        std::fs::copy(
            stranger.path().join(SNAPSHOT_DIR).join(file_name(size)),
            ours_dir.join(file_name(size)),
        )
        .unwrap();
        assert_full_replay(ours.path());
    }

    #[test]
    fn a_newer_damaged_snapshot_falls_back_to_an_older_valid_one() {
        let dir = tempfile::tempdir().unwrap();
        let size = log_with_snapshot(dir.path());
        let snapshots = dir.path().join(SNAPSHOT_DIR);
        std::fs::write(snapshots.join(file_name(size + 100)), b"not a snapshot").unwrap();
        let node = Node::open(config(dir.path(), 0)).unwrap();
        assert_eq!(node.started_from_snapshot, Some(size));
        assert_eq!(digest_of(&node), replayed_digest(&node));
    }
}
