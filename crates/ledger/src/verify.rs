//! Offline verification of a whole log.
//!
//! Given a source of tiles (a URL or a data directory, both serving the
//! C2SP tlog-tiles layout) and the log's pinned checkpoint key, the verifier
//! checks the checkpoint signature, re-checks every transaction (canonical
//! form, schema, signature, replay), recomputes every hash tile and the
//! root, and, given an earlier checkpoint, proves the log only grew. It
//! stops at the first bad entry and names its index.

use std::collections::HashSet;

use rayon::prelude::*;
use tlog_tiles::Tile;

use crate::checkpoint::{CheckpointError, CheckpointVerifier, SignedCheckpoint};
use crate::merkle::{Hash, RootBuilder, HASH_SIZE};
use crate::module::ModuleRegistry;
use crate::tiles::{split_entries, TilePath, TILE_WIDTH};
use crate::tx::{verify_all, SignedTx, TxContext, UnverifiedTx};

/// Where tiles come from.
pub trait LogSource: Sync {
    /// The latest signed checkpoint, as served at `/checkpoint`.
    fn checkpoint(&self) -> Result<Vec<u8>, String>;
    /// A hash tile or entry bundle, as served at `/<path>`.
    fn tile(&self, path: &TilePath) -> Result<Vec<u8>, String>;
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("could not read the log: {0}")]
    Source(String),
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    #[error("entry {index} is bad: {reason}")]
    BadEntry { index: u64, reason: String },
    #[error("hash tile {path} does not match the entries (first differing hash at leaf-level index {index})")]
    BadTile { path: String, index: u64 },
    #[error("the entries hash to a root that differs from the checkpoint's (size {size})")]
    RootMismatch { size: u64 },
    #[error("the log did not only grow: {0}")]
    NotAppendOnly(String),
}

impl VerifyError {
    /// The index of the first bad entry, when one is to blame.
    pub fn bad_index(&self) -> Option<u64> {
        match self {
            VerifyError::BadEntry { index, .. } | VerifyError::BadTile { index, .. } => {
                Some(*index)
            }
            _ => None,
        }
    }
}

/// What a successful verification established.
#[derive(Debug, Clone)]
pub struct VerifyReport {
    pub checkpoint: SignedCheckpoint,
    pub entries: u64,
    /// The size of the earlier checkpoint that was shown to be a prefix.
    pub grew_from: Option<u64>,
}

/// Applies one transaction (leaf index, transaction) to a replayed state,
/// or says why the state refuses it.
pub type ReplayFn<'a> = dyn Fn(u64, &SignedTx) -> Result<(), String> + Sync + 'a;

pub struct VerifyOptions<'a> {
    pub verifier: &'a CheckpointVerifier,
    pub modules: &'a ModuleRegistry,
    /// An earlier checkpoint (signed note) that must be a prefix of the log.
    pub since: Option<&'a [u8]>,
    /// Bundles fetched and checked in parallel.
    pub parallel_bundles: usize,
    /// Called with every transaction in log order, to replay the state the
    /// log defines (invariant 2): an entry the state refuses is reported as
    /// bad, like a bad signature.
    pub replay: Option<&'a ReplayFn<'a>>,
}

/// Verifies the whole log; `progress` is called with the number of entries
/// checked so far.
pub fn verify_log(
    source: &dyn LogSource,
    options: &VerifyOptions<'_>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<VerifyReport, VerifyError> {
    let note = source.checkpoint().map_err(VerifyError::Source)?;
    let checkpoint = options.verifier.verify(&note)?;
    let since = match options.since {
        Some(old) => {
            let old = options.verifier.verify(old)?;
            if old.size > checkpoint.size {
                return Err(VerifyError::NotAppendOnly(format!(
                    "the saved checkpoint has {} entries but the log now has only {}",
                    old.size, checkpoint.size
                )));
            }
            Some(old)
        }
        None => None,
    };
    let ctx = TxContext {
        network: options.verifier.origin(),
        modules: options.modules,
    };

    let size = checkpoint.size;
    let keep_txs = options.replay.is_some();
    let bundles = size.div_ceil(TILE_WIDTH);
    let mut root = RootBuilder::new();
    let mut tiles = TileChecker::new(size);
    let mut replay_keys: HashSet<[u8; 16]> = HashSet::new();
    let chunk = options.parallel_bundles.max(1) as u64;
    let mut first = 0;
    while first < bundles {
        let last = (first + chunk).min(bundles);
        let checked: Vec<Result<Vec<CheckedEntry>, VerifyError>> = (first..last)
            .into_par_iter()
            .map(|b| check_bundle(source, &ctx, b, size, keep_txs))
            .collect();
        for (b, result) in (first..last).zip(checked) {
            let leaves = result?;
            for (i, (replay_key, leaf, tx)) in leaves.into_iter().enumerate() {
                let index = b * TILE_WIDTH + i as u64;
                if let (Some(replay), Some(tx)) = (options.replay, tx) {
                    replay(index, &tx).map_err(|reason| VerifyError::BadEntry {
                        index,
                        reason: format!("the state refuses it: {reason}"),
                    })?;
                }
                if !replay_keys.insert(replay_key) {
                    return Err(VerifyError::BadEntry {
                        index,
                        reason: "replay: its signer already used this nonce earlier in the log"
                            .into(),
                    });
                }
                root.push(leaf);
                tiles.push(source, leaf)?;
                if let Some(old) = &since {
                    if root.size() == old.size && root.root() != old.root {
                        return Err(VerifyError::NotAppendOnly(format!(
                            "the first {} entries no longer hash to the saved checkpoint's root",
                            old.size
                        )));
                    }
                }
            }
        }
        progress(root.size());
        first = last;
    }
    tiles.finish(source)?;
    if root.root() != checkpoint.root {
        return Err(VerifyError::RootMismatch { size });
    }
    Ok(VerifyReport {
        grew_from: since.map(|s| s.size),
        entries: size,
        checkpoint,
    })
}

/// An entry that passed its checks: its replay key (truncated), its leaf
/// hash, and the transaction when the state is replayed.
type CheckedEntry = ([u8; 16], Hash, Option<SignedTx>);

/// Fetches bundle `b`, checks every transaction in it, and returns each
/// entry's replay key (truncated) and leaf hash.
fn check_bundle(
    source: &dyn LogSource,
    ctx: &TxContext<'_>,
    b: u64,
    size: u64,
    keep_txs: bool,
) -> Result<Vec<CheckedEntry>, VerifyError> {
    let width = (size - b * TILE_WIDTH).min(TILE_WIDTH);
    let path = TilePath {
        level: None,
        index: b,
        width: width as u16,
    };
    let first_index = b * TILE_WIDTH;
    let bundle = source.tile(&path).map_err(VerifyError::Source)?;
    let entries = split_entries(&bundle).map_err(|e| VerifyError::BadEntry {
        index: first_index,
        reason: format!("{path}: {e}"),
    })?;
    if entries.len() as u64 != width {
        return Err(VerifyError::BadEntry {
            index: first_index + (entries.len() as u64).min(width),
            reason: format!("{path} holds {} entries, expected {width}", entries.len()),
        });
    }
    let parsed = entries
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            UnverifiedTx::parse(entry, ctx).map_err(|e| VerifyError::BadEntry {
                index: first_index + i as u64,
                reason: format!("{}: {}", e.code.as_str(), e.message),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let txs = verify_all(parsed).map_err(|(i, e)| VerifyError::BadEntry {
        index: first_index + i as u64,
        reason: format!("{}: {}", e.code.as_str(), e.message),
    })?;
    Ok(txs
        .into_iter()
        .map(|tx| {
            let mut short = [0u8; 16];
            short.copy_from_slice(&tx.replay_key()[..16]);
            let leaf = tx.leaf_hash();
            (short, leaf, keep_txs.then_some(tx))
        })
        .collect())
}

/// Rebuilds every hash tile from the leaves and compares it with the served
/// one, so that proofs served from those tiles can be trusted too.
struct TileChecker {
    size: u64,
    /// Hashes of the tile being filled at each level.
    pending: Vec<Vec<u8>>,
    /// Tiles already completed at each level.
    completed: Vec<u64>,
}

impl TileChecker {
    fn new(size: u64) -> Self {
        TileChecker {
            size,
            pending: Vec::new(),
            completed: Vec::new(),
        }
    }

    fn push(&mut self, source: &dyn LogSource, leaf: Hash) -> Result<(), VerifyError> {
        let mut level = 0usize;
        let mut hash = leaf;
        loop {
            if self.pending.len() <= level {
                self.pending.push(Vec::new());
                self.completed.push(0);
            }
            self.pending[level].extend_from_slice(&hash.0);
            if self.pending[level].len() < TILE_WIDTH as usize * HASH_SIZE {
                return Ok(());
            }
            let data = std::mem::take(&mut self.pending[level]);
            let index = self.completed[level];
            self.completed[level] += 1;
            self.compare(source, level as u8, index, &data)?;
            hash = Tile::subtree_hash(&data);
            level += 1;
        }
    }

    fn finish(&mut self, source: &dyn LogSource) -> Result<(), VerifyError> {
        for level in 0..self.pending.len() {
            if !self.pending[level].is_empty() {
                let data = std::mem::take(&mut self.pending[level]);
                self.compare(source, level as u8, self.completed[level], &data)?;
            }
        }
        Ok(())
    }

    fn compare(
        &self,
        source: &dyn LogSource,
        level: u8,
        index: u64,
        expected: &[u8],
    ) -> Result<(), VerifyError> {
        let path = TilePath {
            level: Some(level),
            index,
            width: (expected.len() / HASH_SIZE) as u16,
        };
        let served = source.tile(&path).map_err(VerifyError::Source)?;
        if served != expected {
            let position = served
                .chunks(HASH_SIZE)
                .zip(expected.chunks(HASH_SIZE))
                .position(|(a, b)| a != b)
                .unwrap_or(served.len().min(expected.len()) / HASH_SIZE)
                as u64;
            let leaf_index = ((index * TILE_WIDTH) + position) << (8 * u32::from(level));
            return Err(VerifyError::BadTile {
                path: path.to_string(),
                index: leaf_index.min(self.size.saturating_sub(1)),
            });
        }
        Ok(())
    }
}

/// Reads tiles straight from a data directory's store.
pub struct StoreSource<'a> {
    pub snapshot: &'a crate::store::Snapshot,
}

impl LogSource for StoreSource<'_> {
    fn checkpoint(&self) -> Result<Vec<u8>, String> {
        self.snapshot
            .checkpoint()
            .map(|c| c.note.clone())
            .ok_or_else(|| "the data directory has no checkpoint yet".to_string())
    }

    fn tile(&self, path: &TilePath) -> Result<Vec<u8>, String> {
        self.snapshot
            .tile(path)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{path} is not in the log"))
    }
}
