//! The leaf-hash index: leaf hash → leaf index, for proofs and lookups by
//! transaction hash.
//!
//! It lives in its own database file beside the log and is filled in the
//! background from the level-0 hash tiles, which hold every leaf hash in
//! order. Keeping it off the sequencer's write path matters: random-key
//! B-tree inserts cost more than everything else a batch does. Lookups of
//! leaves the index has not reached yet scan those few tiles instead, so an
//! acknowledged transaction is findable at once. The index is derived data:
//! deleting the file only costs a rebuild.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use redb::{Database, ReadTransaction, ReadableDatabase, TableDefinition};

use crate::merkle::{Hash, HASH_SIZE};
use crate::store::{LogStore, Snapshot, StoreError};
use crate::tiles::TILE_WIDTH;

/// First 16 bytes of a leaf hash → leaf index. A 128-bit prefix keeps the
/// table small; a lookup confirms the full hash against the log.
const LEAF_INDEX: TableDefinition<&[u8; 16], u64> = TableDefinition::new("leaf_index");
const INDEX_META: TableDefinition<&str, u64> = TableDefinition::new("index_meta");
const INDEXED_SIZE: &str = "indexed_size";

/// Most unindexed leaves a lookup scans before answering "busy".
pub const MAX_TAIL_SCAN: u64 = 1 << 20;

/// `ledger.redb` → `ledger.index.redb`.
pub fn index_path(log_path: &Path) -> PathBuf {
    let stem = log_path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    log_path.with_file_name(format!("{stem}.index.redb"))
}

pub(crate) struct LeafIndex {
    db: Database,
}

pub(crate) struct IndexSnapshot {
    txn: ReadTransaction,
}

impl LeafIndex {
    pub(crate) fn open(path: &Path) -> Result<LeafIndex, StoreError> {
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        txn.open_table(LEAF_INDEX)?;
        txn.open_table(INDEX_META)?;
        txn.commit()?;
        Ok(LeafIndex { db })
    }

    pub(crate) fn snapshot(&self) -> Result<IndexSnapshot, StoreError> {
        Ok(IndexSnapshot {
            txn: self.db.begin_read()?,
        })
    }

    /// Indexes up to `max` leaves past the watermark, in one transaction.
    pub(crate) fn catch_up(&self, log: &Snapshot, max: u64) -> Result<u64, StoreError> {
        let from = self.snapshot()?.indexed_size();
        let size = log.size();
        if from >= size {
            return Ok(0);
        }
        let to = size.min(from.saturating_add(max));
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(LEAF_INDEX)?;
            let mut index = from;
            while index < to {
                let tile_index = index / TILE_WIDTH;
                let data = log.stored_hash_tile(0, tile_index)?.ok_or_else(|| {
                    StoreError::Corrupt(format!("missing hash tile 0/{tile_index}"))
                })?;
                let end = to.min((tile_index + 1) * TILE_WIDTH);
                for i in index..end {
                    let at = (i % TILE_WIDTH) as usize * HASH_SIZE;
                    let prefix: &[u8; 16] = data
                        .get(at..at + 16)
                        .and_then(|b| b.try_into().ok())
                        .ok_or_else(|| {
                        StoreError::Corrupt(format!("short hash tile 0/{tile_index}"))
                    })?;
                    table.insert(prefix, i)?;
                }
                index = end;
            }
            txn.open_table(INDEX_META)?.insert(INDEXED_SIZE, to)?;
        }
        txn.commit()?;
        Ok(to - from)
    }
}

impl IndexSnapshot {
    pub(crate) fn indexed_size(&self) -> u64 {
        self.txn
            .open_table(INDEX_META)
            .ok()
            .and_then(|t| t.get(INDEXED_SIZE).ok().flatten().map(|v| v.value()))
            .unwrap_or(0)
    }

    /// The candidate index for a leaf hash; the caller confirms it.
    pub(crate) fn lookup(&self, leaf: &Hash) -> Result<Option<u64>, StoreError> {
        let table = self.txn.open_table(LEAF_INDEX)?;
        let prefix: &[u8; 16] = leaf.0[..16].try_into().expect("a hash has 32 bytes");
        let found = table.get(prefix)?.map(|v| v.value());
        Ok(found)
    }
}

/// A background thread that keeps the leaf-hash index caught up.
pub struct LeafIndexer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl LeafIndexer {
    pub fn start(store: Arc<LogStore>) -> LeafIndexer {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("hygeia-indexer".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        match store.index_pending(1 << 16) {
                            Ok(0) => std::thread::sleep(Duration::from_millis(50)),
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "leaf-hash indexing failed; retrying");
                                std::thread::sleep(Duration::from_secs(1));
                            }
                        }
                    }
                })
                .expect("spawning the indexer thread")
        };
        LeafIndexer {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for LeafIndexer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
