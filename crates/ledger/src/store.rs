//! The log on disk, in `redb`.
//!
//! The storage format is the public format: hash tiles and entry bundles are
//! stored exactly as C2SP `tlog-tiles` serves them, keyed by their
//! coordinates, and the latest signed checkpoint is stored in the same write
//! transaction as the tiles it commits to. A reader therefore always sees a
//! checkpoint together with every tile it covers, and a crash can only leave
//! the state of the last committed batch.

use std::path::Path;

use redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction,
};
use tlog_tiles::{HashReader, Tile};

use crate::checkpoint::{CheckpointSigner, SignedCheckpoint};
use crate::error::{ErrorCode, TxError};
use crate::merkle::{empty_root, Hash, HASH_SIZE};
use crate::state::{NoState, StateMachine};
use crate::tiles::{push_entry, split_entries, TilePath, TILE_HEIGHT, TILE_WIDTH};
use crate::tx::SignedTx;

/// `(level, index)` → hash tile bytes (full, or the right-edge partial).
const HASH_TILES: TableDefinition<(u8, u64), &[u8]> = TableDefinition::new("tlog_hash_tiles");
/// bundle index → entry bundle bytes as served: in a log written before
/// [`EDGE_ENTRIES`], the right-edge partial (moved into [`EDGE_ENTRIES`]
/// when a writer opens the log), and in a log written before
/// packed bundles, full bundles until [`LogStore::open`] packs them.
const ENTRY_BUNDLES: TableDefinition<u64, &[u8]> = TableDefinition::new("tlog_entry_bundles");
/// leaf index → entry, for the entries of the right-edge partial bundle.
/// A batch inserts only its own entries: rewriting the whole partial bundle
/// at every batch wrote up to 256 entries (hundreds of KB of `access`
/// events) per group commit. When the bundle fills it is packed into
/// [`PACKED_PIECES`] and its rows removed, in the same write transaction,
/// so each entry is in exactly one of the two tables at every commit.
const EDGE_ENTRIES: TableDefinition<u64, &[u8]> = TableDefinition::new("tlog_edge_entries");
/// (bundle index, piece) → a piece of a full entry bundle, zstd-compressed.
/// A full bundle never changes, so it is compressed once, when it fills;
/// its entries (canonical JSON repeating field names, DIDs and types) take
/// a fraction of the space, and a read gives back exactly the bytes that
/// were appended. The compressed bundle is cut into [`PIECE_LEN`]-byte
/// pieces so that each piece fills one page: redb gives a value larger than
/// a page a run of pages rounded up to a power of two, so a whole bundle of
/// 38 KB took 64 KB.
const PACKED_PIECES: TableDefinition<(u64, u32), &[u8]> =
    TableDefinition::new("tlog_entry_bundles_zstd_pieces");
/// A piece of a packed bundle: with its key and the page's header it fits
/// one 4 KiB redb page.
const PIECE_LEN: usize = 4000;
/// bundle index → a full entry bundle, zstd-compressed, whole: logs written
/// before [`PACKED_PIECES`]. Read as they are, and moved into pieces when a
/// writer opens the log.
const LEGACY_PACKED_BUNDLES: TableDefinition<u64, &[u8]> =
    TableDefinition::new("tlog_entry_bundles_zstd");
/// zstd's default level: a full bundle compresses in about a millisecond.
const BUNDLE_ZSTD_LEVEL: i32 = 3;
/// Full bundles of an older log packed per write transaction at start.
const PACK_CHUNK: usize = 256;
/// `SHA-256(signer)[..8] || nonce` → leaf index: the replay guard. Keys
/// start with the signer so that one signer's nonces sit together: a batch
/// dirties one page per busy signer rather than one per transaction.
const REPLAY_GUARD: TableDefinition<&[u8], u64> = TableDefinition::new("replay_guard");
/// Singletons, e.g. the latest signed checkpoint.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

const CHECKPOINT_KEY: &str = "checkpoint";
const ORIGIN_KEY: &str = "origin";

const TILE_BYTES: usize = TILE_WIDTH as usize * HASH_SIZE;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage error: {0}")]
    Storage(String),
    #[error("the data directory belongs to log {found:?}, not {expected:?}")]
    WrongOrigin { expected: String, found: String },
    #[error("the stored log is damaged: {0}")]
    Corrupt(String),
    #[error("{0}")]
    OutOfRange(String),
    #[error("{0}")]
    Busy(String),
}

macro_rules! storage_from {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Storage(e.to_string())
            }
        }
    )*};
}
storage_from!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// The log's database, and beside it the leaf-hash index.
pub struct LogStore {
    db: Database,
    index: crate::index::LeafIndex,
}

impl LogStore {
    /// Opens (or creates) the log at `path` for the log named `origin`.
    pub fn open(path: &Path, origin: &str) -> Result<LogStore, StoreError> {
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        {
            txn.open_table(HASH_TILES)?;
            txn.open_table(ENTRY_BUNDLES)?;
            txn.open_table(PACKED_PIECES)?;
            txn.open_table(EDGE_ENTRIES)?;
            txn.open_table(REPLAY_GUARD)?;
            let mut meta = txn.open_table(META)?;
            let stored = meta.get(ORIGIN_KEY)?.map(|v| v.value().to_vec());
            match stored {
                Some(found) if found != origin.as_bytes() => {
                    return Err(StoreError::WrongOrigin {
                        expected: origin.to_string(),
                        found: String::from_utf8_lossy(&found).into_owned(),
                    })
                }
                Some(_) => {}
                None => {
                    meta.insert(ORIGIN_KEY, origin.as_bytes())?;
                }
            }
        }
        txn.commit()?;
        pack_full_bundles(&db)?;
        cut_packed_bundles(&db)?;
        let index = crate::index::LeafIndex::open(&crate::index::index_path(path))?;
        Ok(LogStore { db, index })
    }

    /// Opens an existing log without knowing its origin (for offline checks).
    pub fn open_existing(path: &Path) -> Result<(LogStore, String), StoreError> {
        if !path.exists() {
            return Err(StoreError::Storage(format!(
                "{} does not exist",
                path.display()
            )));
        }
        let db = Database::create(path)?;
        let txn = db.begin_read()?;
        let origin = {
            let meta = txn.open_table(META)?;
            let origin = meta
                .get(ORIGIN_KEY)?
                .ok_or_else(|| StoreError::Corrupt("no origin recorded".into()))?;
            String::from_utf8_lossy(origin.value()).into_owned()
        };
        drop(txn);
        let index = crate::index::LeafIndex::open(&crate::index::index_path(path))?;
        Ok((LogStore { db, index }, origin))
    }

    /// A consistent read-only view of the log as of its latest checkpoint.
    pub fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let txn = self.db.begin_read()?;
        let checkpoint = {
            let meta = txn.open_table(META)?;
            let note = meta.get(CHECKPOINT_KEY)?.map(|v| v.value().to_vec());
            match note {
                None => None,
                Some(note) => {
                    let (_, size, root) = crate::checkpoint::parse_unverified(&note)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    Some(SignedCheckpoint { size, root, note })
                }
            }
        };
        let index = self.index.snapshot()?;
        Ok(Snapshot {
            txn,
            checkpoint,
            index,
        })
    }

    /// Adds up to `max` not yet indexed leaves to the leaf-hash index;
    /// returns how many. The index is derived from the hash tiles alone, so
    /// it can always be rebuilt and never holds anything the log does not.
    pub fn index_pending(&self, max: u64) -> Result<u64, StoreError> {
        let snapshot = self.snapshot()?;
        self.index.catch_up(&snapshot, max)
    }

    /// Rewrites one stored entry in place, bypassing every check. Exists only
    /// so tests can show that tampering is detected.
    #[doc(hidden)]
    pub fn tamper_with_entry(&self, index: u64, replacement: &[u8]) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut edge = txn.open_table(EDGE_ENTRIES)?;
            if edge.get(index)?.is_some() {
                edge.insert(index, replacement)?;
                drop(edge);
                txn.commit()?;
                return Ok(());
            }
            let bundle_index = index / TILE_WIDTH;
            let mut pieces = txn.open_table(PACKED_PIECES)?;
            let mut bundles = txn.open_table(ENTRY_BUNDLES)?;
            let stored_packed = read_packed(&pieces, bundle_index)?;
            let bundle = match &stored_packed {
                Some(data) => data.clone(),
                None => bundles
                    .get(bundle_index)?
                    .ok_or_else(|| StoreError::OutOfRange(format!("no entry {index}")))?
                    .value()
                    .to_vec(),
            };
            let entries = split_entries(&bundle).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let position = (index % TILE_WIDTH) as usize;
            if position >= entries.len() {
                return Err(StoreError::OutOfRange(format!("no entry {index}")));
            }
            let mut rebuilt = Vec::new();
            for (i, entry) in entries.iter().enumerate() {
                push_entry(
                    &mut rebuilt,
                    if i == position { replacement } else { entry },
                );
            }
            if stored_packed.is_some() {
                insert_packed(&mut pieces, bundle_index, &rebuilt)?;
            } else {
                bundles.insert(bundle_index, rebuilt.as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }
}

/// A read-only view of the log at one checkpoint.
pub struct Snapshot {
    txn: ReadTransaction,
    checkpoint: Option<SignedCheckpoint>,
    index: crate::index::IndexSnapshot,
}

impl Snapshot {
    pub fn checkpoint(&self) -> Option<&SignedCheckpoint> {
        self.checkpoint.as_ref()
    }

    pub fn size(&self) -> u64 {
        self.checkpoint.as_ref().map_or(0, |c| c.size)
    }

    pub fn root(&self) -> Hash {
        self.checkpoint.as_ref().map_or_else(empty_root, |c| c.root)
    }

    /// The bytes of a tile or entry bundle, if the tree at this checkpoint
    /// has it (a partial tile only at its exact width, or as a prefix of the
    /// full one).
    pub fn tile(&self, path: &TilePath) -> Result<Option<Vec<u8>>, StoreError> {
        let width = u64::from(path.width);
        let count = match path.level {
            Some(level) => self.size() >> (u32::from(level) * u32::from(TILE_HEIGHT)),
            None => self.size(),
        };
        let Some(end) = path
            .index
            .checked_mul(TILE_WIDTH)
            .and_then(|s| s.checked_add(width))
        else {
            return Ok(None);
        };
        if end > count {
            return Ok(None);
        }
        match path.level {
            Some(level) => {
                let Some(data) = read_hash_tile(&self.txn, level, path.index)? else {
                    return Err(StoreError::Corrupt(format!("missing hash tile {path}")));
                };
                let len = width as usize * HASH_SIZE;
                if data.len() < len {
                    return Err(StoreError::Corrupt(format!("short hash tile {path}")));
                }
                Ok(Some(data[..len].to_vec()))
            }
            None => {
                let Some(mut bundle) = BundleReader::new(&self.txn)?.bundle(path.index)? else {
                    return Err(StoreError::Corrupt(format!("missing entry bundle {path}")));
                };
                let len = prefix_of_bundle(&bundle, width as usize)
                    .map_err(StoreError::Corrupt)?
                    .len();
                bundle.truncate(len);
                Ok(Some(bundle))
            }
        }
    }

    /// Calls `visit` with every entry of the log, in order, one bundle read
    /// at a time.
    pub fn for_each_entry(
        &self,
        visit: impl FnMut(u64, &[u8]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.for_each_entry_from(0, visit)
    }

    /// Calls `visit` with every entry from index `start` to the end of the
    /// log, in order, one bundle read at a time.
    pub fn for_each_entry_from(
        &self,
        start: u64,
        mut visit: impl FnMut(u64, &[u8]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let size = self.size();
        let bundles = BundleReader::new(&self.txn)?;
        let mut index = start;
        while index < size {
            let bundle = bundles.bundle(index / TILE_WIDTH)?.ok_or_else(|| {
                StoreError::Corrupt(format!("missing entry bundle for entry {index}"))
            })?;
            let entries = split_entries(&bundle).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let skip = (index % TILE_WIDTH) as usize;
            for entry in entries.into_iter().skip(skip) {
                if index >= size {
                    break;
                }
                visit(index, entry)?;
                index += 1;
            }
            if index < size && !index.is_multiple_of(TILE_WIDTH) {
                return Err(StoreError::Corrupt(format!(
                    "entry bundle {} is short",
                    index / TILE_WIDTH
                )));
            }
        }
        Ok(())
    }

    /// One log entry by index.
    pub fn entry(&self, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        if index >= self.size() {
            return Ok(None);
        }
        let reader = BundleReader::new(&self.txn)?;
        if let Some(entry) = reader.edge_entry(index)? {
            return Ok(Some(entry));
        }
        let Some(bundle) = reader.bundle(index / TILE_WIDTH)? else {
            return Err(StoreError::Corrupt(format!(
                "missing entry bundle for entry {index}"
            )));
        };
        let entries = split_entries(&bundle).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let entry = entries
            .get((index % TILE_WIDTH) as usize)
            .ok_or_else(|| StoreError::Corrupt(format!("entry {index} missing from its bundle")))?;
        Ok(Some(entry.to_vec()))
    }

    /// The leaf index of a transaction, by its leaf hash: from the index,
    /// or, for the newest leaves the index has not reached yet, by scanning
    /// their hash tiles.
    pub fn index_of(&self, leaf_hash: &Hash) -> Result<Option<u64>, StoreError> {
        let size = self.size();
        if let Some(index) = self.index.lookup(leaf_hash)? {
            if index < size && self.leaf_hash_at(index)? == *leaf_hash {
                return Ok(Some(index));
            }
        }
        let from = self.index.indexed_size().min(size);
        if size - from > crate::index::MAX_TAIL_SCAN {
            return Err(StoreError::Busy(format!(
                "the leaf-hash index is catching up ({} of {size} leaves indexed); retry shortly",
                from
            )));
        }
        let mut index = from;
        while index < size {
            let tile_index = index / TILE_WIDTH;
            let data = read_hash_tile(&self.txn, 0, tile_index)?
                .ok_or_else(|| StoreError::Corrupt(format!("missing hash tile 0/{tile_index}")))?;
            let end = size.min((tile_index + 1) * TILE_WIDTH);
            for i in index..end {
                let at = (i % TILE_WIDTH) as usize * HASH_SIZE;
                if data.get(at..at + HASH_SIZE) == Some(&leaf_hash.0[..]) {
                    return Ok(Some(i));
                }
            }
            index = end;
        }
        Ok(None)
    }

    /// The leaf hash at `index`, from its level-0 hash tile.
    pub fn leaf_hash_at(&self, index: u64) -> Result<Hash, StoreError> {
        let data = read_hash_tile(&self.txn, 0, index / TILE_WIDTH)?
            .ok_or_else(|| StoreError::Corrupt(format!("missing hash tile for leaf {index}")))?;
        let at = (index % TILE_WIDTH) as usize * HASH_SIZE;
        let bytes = data
            .get(at..at + HASH_SIZE)
            .ok_or_else(|| StoreError::Corrupt(format!("short hash tile for leaf {index}")))?;
        Ok(Hash(bytes.try_into().expect("slice of HASH_SIZE")))
    }

    /// The hash tile `(level, index)` as stored (full or partial).
    pub(crate) fn stored_hash_tile(
        &self,
        level: u8,
        index: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        read_hash_tile(&self.txn, level, index)
    }

    /// The root of the tree of the first `size` entries.
    pub fn root_at(&self, size: u64) -> Result<Hash, StoreError> {
        self.check_size(size)?;
        tlog_tiles::tree_hash(size, &self.hash_reader()).map_err(proof_error)
    }

    /// RFC 9162 inclusion proof of leaf `index` in the tree of `size` leaves.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, StoreError> {
        self.check_size(size)?;
        if index >= size {
            return Err(StoreError::OutOfRange(format!(
                "leaf index {index} is not in a tree of size {size}"
            )));
        }
        tlog_tiles::prove_record(size, index, &self.hash_reader()).map_err(proof_error)
    }

    /// RFC 9162 consistency proof from the tree of `old_size` leaves to the
    /// tree of `new_size` leaves.
    pub fn consistency_proof(&self, old_size: u64, new_size: u64) -> Result<Vec<Hash>, StoreError> {
        self.check_size(new_size)?;
        if old_size == 0 || old_size > new_size {
            return Err(StoreError::OutOfRange(format!(
                "a consistency proof needs 0 < old size <= new size; got {old_size} and {new_size}"
            )));
        }
        tlog_tiles::prove_tree(new_size, old_size, &self.hash_reader()).map_err(proof_error)
    }

    fn check_size(&self, size: u64) -> Result<(), StoreError> {
        if size > self.size() {
            return Err(StoreError::OutOfRange(format!(
                "tree size {size} is beyond the current size {}",
                self.size()
            )));
        }
        Ok(())
    }

    fn hash_reader(&self) -> TiledHashReader<'_, ReadTransaction> {
        TiledHashReader {
            txn: &self.txn,
            edge: None,
        }
    }
}

fn proof_error(e: tlog_tiles::Error) -> StoreError {
    StoreError::Corrupt(format!("cannot build proof: {e}"))
}

/// Reads entry bundles, packed, whole or as edge entries, in one read
/// transaction.
struct BundleReader {
    /// `None` in a log last written before packed pieces, opened read-only.
    pieces: Option<redb::ReadOnlyTable<(u64, u32), &'static [u8]>>,
    /// `None` in a log last written before packed bundles or after they
    /// were cut into pieces, opened read-only.
    packed: Option<redb::ReadOnlyTable<u64, &'static [u8]>>,
    raw: redb::ReadOnlyTable<u64, &'static [u8]>,
    /// `None` in a log last written before edge entries, opened read-only.
    edge: Option<redb::ReadOnlyTable<u64, &'static [u8]>>,
}

fn optional_table(
    txn: &ReadTransaction,
    table: TableDefinition<u64, &'static [u8]>,
) -> Result<Option<redb::ReadOnlyTable<u64, &'static [u8]>>, StoreError> {
    match txn.open_table(table) {
        Ok(table) => Ok(Some(table)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

impl BundleReader {
    fn new(txn: &ReadTransaction) -> Result<BundleReader, StoreError> {
        let pieces = match txn.open_table(PACKED_PIECES) {
            Ok(table) => Some(table),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(e.into()),
        };
        Ok(BundleReader {
            pieces,
            packed: optional_table(txn, LEGACY_PACKED_BUNDLES)?,
            raw: txn.open_table(ENTRY_BUNDLES)?,
            edge: optional_table(txn, EDGE_ENTRIES)?,
        })
    }

    /// The bundle's bytes as served (full, or the right-edge partial).
    fn bundle(&self, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(pieces) = &self.pieces {
            if let Some(bundle) = read_packed(pieces, index)? {
                return Ok(Some(bundle));
            }
        }
        if let Some(packed) = &self.packed {
            if let Some(data) = packed.get(index)? {
                return unpack_bundle(data.value()).map(Some);
            }
        }
        if let Some(data) = self.raw.get(index)? {
            return Ok(Some(data.value().to_vec()));
        }
        let Some(edge) = &self.edge else {
            return Ok(None);
        };
        let first = index.saturating_mul(TILE_WIDTH);
        let mut bundle = Vec::new();
        let mut found = false;
        for row in edge.range(first..first.saturating_add(TILE_WIDTH))? {
            let (_, entry) = row?;
            push_entry(&mut bundle, entry.value());
            found = true;
        }
        Ok(found.then_some(bundle))
    }

    /// An entry of the right-edge partial bundle, without assembling it.
    fn edge_entry(&self, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(edge) = &self.edge else {
            return Ok(None);
        };
        Ok(edge.get(index)?.map(|v| v.value().to_vec()))
    }
}

fn pack_bundle(bundle: &[u8]) -> Result<Vec<u8>, StoreError> {
    zstd::bulk::compress(bundle, BUNDLE_ZSTD_LEVEL)
        .map_err(|e| StoreError::Storage(format!("cannot compress an entry bundle: {e}")))
}

fn unpack_bundle(packed: &[u8]) -> Result<Vec<u8>, StoreError> {
    zstd::stream::decode_all(packed)
        .map_err(|e| StoreError::Corrupt(format!("a packed entry bundle does not decompress: {e}")))
}

/// Stores the full bundle `index` packed, in [`PACKED_PIECES`].
fn insert_packed(
    pieces: &mut redb::Table<(u64, u32), &[u8]>,
    index: u64,
    bundle: &[u8],
) -> Result<(), StoreError> {
    insert_pieces(pieces, index, &pack_bundle(bundle)?)
}

/// Stores a packed bundle's bytes in pieces.
fn insert_pieces(
    pieces: &mut redb::Table<(u64, u32), &[u8]>,
    index: u64,
    packed: &[u8],
) -> Result<(), StoreError> {
    for (n, piece) in packed.chunks(PIECE_LEN).enumerate() {
        let n = u32::try_from(n)
            .map_err(|_| StoreError::Storage(format!("entry bundle {index} too large to store")))?;
        pieces.insert((index, n), piece)?;
    }
    Ok(())
}

/// The full bundle `index` as served, from its pieces.
fn read_packed(
    pieces: &impl ReadableTable<(u64, u32), &'static [u8]>,
    index: u64,
) -> Result<Option<Vec<u8>>, StoreError> {
    let mut packed = Vec::new();
    let mut expected = 0u32;
    for row in pieces.range((index, 0)..=(index, u32::MAX))? {
        let (key, piece) = row?;
        if key.value().1 != expected {
            return Err(StoreError::Corrupt(format!(
                "packed entry bundle {index}: piece {} where {expected} was expected",
                key.value().1
            )));
        }
        packed.extend_from_slice(piece.value());
        expected += 1;
    }
    if expected == 0 {
        return Ok(None);
    }
    unpack_bundle(&packed).map(Some)
}

/// Cuts the whole packed bundles of a log written before [`PACKED_PIECES`]
/// into pieces, [`PACK_CHUNK`] per write transaction, each bundle in
/// exactly one of the two tables at every commit (as
/// [`pack_full_bundles`]); the old table is dropped once empty.
fn cut_packed_bundles(db: &Database) -> Result<(), StoreError> {
    let exists = match db.begin_read()?.open_table(LEGACY_PACKED_BUNDLES) {
        Ok(_) => true,
        Err(redb::TableError::TableDoesNotExist(_)) => false,
        Err(e) => return Err(e.into()),
    };
    if !exists {
        return Ok(());
    }
    loop {
        let txn = db.begin_write()?;
        let moved = {
            let mut legacy = txn.open_table(LEGACY_PACKED_BUNDLES)?;
            let mut pieces = txn.open_table(PACKED_PIECES)?;
            let mut moved = 0;
            while moved < PACK_CHUNK {
                let Some((index, packed)) = legacy.pop_first()? else {
                    break;
                };
                insert_pieces(&mut pieces, index.value(), packed.value())?;
                moved += 1;
            }
            moved
        };
        if moved == 0 {
            txn.delete_table(LEGACY_PACKED_BUNDLES)?;
            txn.commit()?;
            return Ok(());
        }
        txn.commit()?;
        tracing::info!(bundles = moved, "packed entry bundles cut into pieces");
    }
}

/// Moves the full bundles a log written before packed bundles keeps
/// uncompressed into [`PACKED_PIECES`], [`PACK_CHUNK`] per write transaction: each bundle
/// is in exactly one of the two tables at every commit, so a crash in the
/// middle leaves a log that reads the same and finishes at the next start.
fn pack_full_bundles(db: &Database) -> Result<(), StoreError> {
    loop {
        let full: Vec<u64> = {
            let txn = db.begin_read()?;
            let raw = txn.open_table(ENTRY_BUNDLES)?;
            let mut full = Vec::new();
            for row in raw.iter()? {
                let (index, bundle) = row?;
                let count = split_entries(bundle.value())
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?
                    .len();
                if count as u64 == TILE_WIDTH {
                    full.push(index.value());
                    if full.len() == PACK_CHUNK {
                        break;
                    }
                }
            }
            full
        };
        if full.is_empty() {
            return Ok(());
        }
        let txn = db.begin_write()?;
        {
            let mut raw = txn.open_table(ENTRY_BUNDLES)?;
            let mut pieces = txn.open_table(PACKED_PIECES)?;
            for index in &full {
                let bundle = raw
                    .remove(*index)?
                    .ok_or_else(|| StoreError::Corrupt(format!("entry bundle {index} vanished")))?
                    .value()
                    .to_vec();
                insert_packed(&mut pieces, *index, &bundle)?;
            }
        }
        txn.commit()?;
        tracing::info!(bundles = full.len(), "entry bundles packed");
    }
}

/// Moves the right-edge partial bundle of a log written before
/// [`EDGE_ENTRIES`] into it, one row per entry, in one write transaction.
fn move_partial_bundle(db: &Database, edge: &Edge) -> Result<(), StoreError> {
    let bundle_index = edge.size / TILE_WIDTH;
    let first = bundle_index * TILE_WIDTH;
    let txn = db.begin_write()?;
    {
        let mut rows = txn.open_table(EDGE_ENTRIES)?;
        let entries =
            split_entries(&edge.bundle).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        for (offset, entry) in entries.into_iter().enumerate() {
            rows.insert(first + offset as u64, entry)?;
        }
        txn.open_table(ENTRY_BUNDLES)?.remove(bundle_index)?;
    }
    txn.commit()?;
    Ok(())
}

/// The first `width` entries of a bundle.
fn prefix_of_bundle(bundle: &[u8], width: usize) -> Result<&[u8], String> {
    let mut offset = 0;
    for i in 0..width {
        let len = bundle
            .get(offset..offset + 2)
            .ok_or_else(|| format!("entry bundle truncated before entry {i}"))?;
        offset += 2 + usize::from(u16::from_be_bytes([len[0], len[1]]));
        if offset > bundle.len() {
            return Err(format!("entry bundle truncated inside entry {i}"));
        }
    }
    Ok(&bundle[..offset])
}

/// Read access to hash tiles from either kind of redb transaction.
trait TileTable {
    fn hash_tile(&self, level: u8, index: u64) -> Result<Option<Vec<u8>>, StoreError>;
}

impl TileTable for ReadTransaction {
    fn hash_tile(&self, level: u8, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        read_hash_tile(self, level, index)
    }
}

impl TileTable for WriteTransaction {
    fn hash_tile(&self, level: u8, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let table = self.open_table(HASH_TILES)?;
        let data = table.get((level, index))?.map(|v| v.value().to_vec());
        Ok(data)
    }
}

fn read_hash_tile(
    txn: &ReadTransaction,
    level: u8,
    index: u64,
) -> Result<Option<Vec<u8>>, StoreError> {
    let table = txn.open_table(HASH_TILES)?;
    let data = table.get((level, index))?.map(|v| v.value().to_vec());
    Ok(data)
}

/// Serves `tlog_tiles` stored-hash reads from hash tiles: from the in-memory
/// right edge when given, else from the database.
struct TiledHashReader<'a, T: TileTable> {
    txn: &'a T,
    edge: Option<&'a Edge>,
}

impl<T: TileTable> HashReader for TiledHashReader<'_, T> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        let mut cache: Option<((u8, u64), Vec<u8>)> = None;
        let mut hashes = Vec::with_capacity(indexes.len());
        for &stored_index in indexes {
            let tile = Tile::from_index(TILE_HEIGHT, stored_index);
            let key = (tile.level(), tile.level_index());
            if cache.as_ref().map(|(k, _)| *k) != Some(key) {
                let data = self
                    .edge
                    .and_then(|edge| edge.hash_tile(key.0, key.1))
                    .map(|d| Ok(Some(d.to_vec())))
                    .unwrap_or_else(|| self.txn.hash_tile(key.0, key.1))
                    .map_err(|e| tlog_tiles::Error::InvalidInput(e.to_string()))?
                    .ok_or(tlog_tiles::Error::IndexesNotInTree)?;
                cache = Some((key, data));
            }
            let data = &cache.as_ref().expect("filled above").1;
            hashes.push(tile.hash_at_index(data, stored_index)?);
        }
        Ok(hashes)
    }
}

/// The right edge of the tree: the partial hash tile of every level and the
/// partial entry bundle. Everything left of it is immutable on disk.
#[derive(Clone, Debug, Default)]
struct Edge {
    size: u64,
    /// `tiles[level]`: hashes of the partial tile at that level.
    tiles: Vec<Vec<u8>>,
    dirty: Vec<bool>,
    bundle: Vec<u8>,
    bundle_len: u64,
}

impl Edge {
    fn level_count(&self, level: u8) -> u64 {
        self.size >> (u32::from(level) * u32::from(TILE_HEIGHT))
    }

    /// The edge tile at `level` if it is the tile `index`.
    fn hash_tile(&self, level: u8, index: u64) -> Option<&[u8]> {
        let data = self.tiles.get(usize::from(level))?;
        (!data.is_empty() && self.level_count(level) / TILE_WIDTH == index)
            .then_some(data.as_slice())
    }

    fn push_hash(&mut self, level: u8, hash: Hash, full_tiles: &mut Vec<((u8, u64), Vec<u8>)>) {
        let l = usize::from(level);
        if self.tiles.len() <= l {
            self.tiles.resize(l + 1, Vec::new());
            self.dirty.resize(l + 1, false);
        }
        self.tiles[l].extend_from_slice(&hash.0);
        self.dirty[l] = true;
        if self.tiles[l].len() == TILE_BYTES {
            let data = std::mem::take(&mut self.tiles[l]);
            self.dirty[l] = false;
            let parent = Tile::subtree_hash(&data);
            let index = self.level_count(level) / TILE_WIDTH - 1;
            full_tiles.push(((level, index), data));
            self.push_hash(level + 1, parent, full_tiles);
        }
    }
}

/// The single writer of the log. Owned by the sequencer.
pub struct LogWriter {
    store: std::sync::Arc<LogStore>,
    signer: CheckpointSigner,
    edge: Edge,
    checkpoint: SignedCheckpoint,
    /// Where the next batch fails, to test the rollback of a batch whose
    /// write did not become durable.
    #[cfg(test)]
    fail_next: Option<FailAt>,
}

/// A point in [`LogWriter::append_batch_inner`] at which a test makes the
/// batch fail as a storage error would.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FailAt {
    /// Once every submission is admitted and staged, before the tiles.
    AfterStaging,
    /// With everything written into the transaction but the commit.
    BeforeCommit,
}

/// What happened to each submission of a batch.
pub struct BatchOutcome {
    /// Per submission: the index of its first entry, or why it was refused.
    pub results: Vec<Result<u64, TxError>>,
    /// The checkpoint that includes every accepted entry.
    pub checkpoint: SignedCheckpoint,
}

impl LogWriter {
    /// Loads the right edge of the log from its latest checkpoint; an empty
    /// log gets a signed checkpoint of size 0.
    pub fn open(
        store: std::sync::Arc<LogStore>,
        signer: CheckpointSigner,
    ) -> Result<LogWriter, StoreError> {
        let snapshot = store.snapshot()?;
        let mut edge = Edge::default();
        // The edge bundle is stored whole, as a log written before
        // [`EDGE_ENTRIES`] kept it.
        let mut legacy_partial = false;
        let checkpoint = match snapshot.checkpoint() {
            Some(checkpoint) => {
                edge.size = checkpoint.size;
                for level in 0u8.. {
                    let count = edge.level_count(level);
                    if count == 0 {
                        break;
                    }
                    let width = (count % TILE_WIDTH) as usize;
                    let mut data = Vec::new();
                    if width > 0 {
                        let stored = read_hash_tile(&snapshot.txn, level, count / TILE_WIDTH)?
                            .ok_or_else(|| {
                                StoreError::Corrupt(format!("missing edge tile at level {level}"))
                            })?;
                        data = stored
                            .get(..width * HASH_SIZE)
                            .ok_or_else(|| {
                                StoreError::Corrupt(format!("short edge tile at level {level}"))
                            })?
                            .to_vec();
                    }
                    edge.tiles.push(data);
                    edge.dirty.push(false);
                }
                let width = (edge.size % TILE_WIDTH) as usize;
                if width > 0 {
                    let bundle_index = edge.size / TILE_WIDTH;
                    legacy_partial = snapshot
                        .txn
                        .open_table(ENTRY_BUNDLES)?
                        .get(bundle_index)?
                        .is_some();
                    let stored = BundleReader::new(&snapshot.txn)?
                        .bundle(bundle_index)?
                        .ok_or_else(|| StoreError::Corrupt("missing edge entry bundle".into()))?;
                    edge.bundle = prefix_of_bundle(&stored, width)
                        .map_err(StoreError::Corrupt)?
                        .to_vec();
                    edge.bundle_len = width as u64;
                }
                let root = tlog_tiles::tree_hash(
                    edge.size,
                    &TiledHashReader {
                        txn: &snapshot.txn,
                        edge: Some(&edge),
                    },
                )
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                if root != checkpoint.root {
                    return Err(StoreError::Corrupt(
                        "the stored tiles do not hash to the stored checkpoint".into(),
                    ));
                }
                checkpoint.clone()
            }
            None => {
                drop(snapshot);
                let checkpoint = signer.sign(0, empty_root());
                let txn = store.db.begin_write()?;
                txn.open_table(META)?
                    .insert(CHECKPOINT_KEY, checkpoint.note.as_slice())?;
                txn.commit()?;
                checkpoint
            }
        };
        if legacy_partial {
            move_partial_bundle(&store.db, &edge)?;
        }
        Ok(LogWriter {
            store,
            signer,
            edge,
            checkpoint,
            #[cfg(test)]
            fail_next: None,
        })
    }

    pub fn checkpoint(&self) -> &SignedCheckpoint {
        &self.checkpoint
    }

    pub fn signer(&self) -> &CheckpointSigner {
        &self.signer
    }

    /// Appends a batch of submissions in one durable write transaction.
    ///
    /// A submission is all or nothing: if any of its transactions is a
    /// replay, none of it is appended. Returns only after the batch is on
    /// disk; on a storage error nothing of the batch is visible and the
    /// in-memory state is rolled back.
    pub fn append_batch(
        &mut self,
        submissions: &[&[SignedTx]],
    ) -> Result<BatchOutcome, StoreError> {
        self.append_batch_with(submissions, &mut NoState)
    }

    /// Like [`LogWriter::append_batch`], with each submission that is not a
    /// replay also admitted by `state` (in log order) before it is
    /// appended. `state` is told whether the batch became durable.
    pub fn append_batch_with(
        &mut self,
        submissions: &[&[SignedTx]],
        state: &mut dyn StateMachine,
    ) -> Result<BatchOutcome, StoreError> {
        // The edge without its entry bundle, which a batch only appends to
        // (or takes whole when it fills): copying the bundle at every batch
        // cost as much as writing it.
        let saved_edge = Edge {
            size: self.edge.size,
            tiles: self.edge.tiles.clone(),
            dirty: self.edge.dirty.clone(),
            bundle: Vec::new(),
            bundle_len: self.edge.bundle_len,
        };
        let saved_bundle_bytes = self.edge.bundle.len();
        let mut full_bundles = Vec::new();
        match self.append_batch_inner(submissions, state, &mut full_bundles) {
            Ok(outcome) => {
                state.commit();
                self.checkpoint = outcome.checkpoint.clone();
                Ok(outcome)
            }
            Err(e) => {
                state.abort();
                // The bundle as it was: the first one this batch filled
                // began with it, or else it is still the edge's.
                let mut bundle = match full_bundles.into_iter().next() {
                    Some((_, first_filled)) => first_filled,
                    None => std::mem::take(&mut self.edge.bundle),
                };
                bundle.truncate(saved_bundle_bytes);
                self.edge = Edge {
                    bundle,
                    ..saved_edge
                };
                Err(e)
            }
        }
    }

    fn append_batch_inner(
        &mut self,
        submissions: &[&[SignedTx]],
        state: &mut dyn StateMachine,
        full_bundles: &mut Vec<(u64, Vec<u8>)>,
    ) -> Result<BatchOutcome, StoreError> {
        let txn = self.store.db.begin_write()?;
        let mut results = Vec::with_capacity(submissions.len());
        let mut full_tiles = Vec::new();
        let batch_start = self.edge.size;
        // (leaf index, entry) of every entry this batch appends.
        let mut appended: Vec<(u64, &[u8])> = Vec::new();
        {
            let mut replay = txn.open_table(REPLAY_GUARD)?;
            let mut seen_in_batch = std::collections::HashSet::new();
            for submission in submissions {
                if let Some(e) = find_replay(submission, &replay, &seen_in_batch)? {
                    results.push(Err(e));
                    continue;
                }
                if let Err(e) = state.admit(self.edge.size, submission) {
                    results.push(Err(e));
                    continue;
                }
                results.push(Ok(self.edge.size));
                for tx in submission.iter() {
                    let key = replay_guard_key(tx);
                    let index = self.edge.size;
                    replay.insert(key.as_slice(), index)?;
                    seen_in_batch.insert(key);
                    appended.push((index, tx.canonical_bytes()));
                    push_entry(&mut self.edge.bundle, tx.canonical_bytes());
                    self.edge.bundle_len += 1;
                    self.edge.size += 1;
                    if self.edge.bundle_len == TILE_WIDTH {
                        full_bundles.push((
                            self.edge.size / TILE_WIDTH - 1,
                            std::mem::take(&mut self.edge.bundle),
                        ));
                        self.edge.bundle_len = 0;
                    }
                    self.edge.push_hash(0, tx.leaf_hash(), &mut full_tiles);
                }
            }
        }
        if results.iter().all(|r| r.is_err()) {
            txn.abort()?;
            return Ok(BatchOutcome {
                results,
                checkpoint: self.checkpoint.clone(),
            });
        }
        #[cfg(test)]
        self.injected_failure(FailAt::AfterStaging)?;
        {
            let mut tiles = txn.open_table(HASH_TILES)?;
            for ((level, index), data) in &full_tiles {
                tiles.insert((*level, *index), data.as_slice())?;
            }
            for level in 0..self.edge.tiles.len() {
                if self.edge.dirty[level] && !self.edge.tiles[level].is_empty() {
                    let level_u8 = level as u8;
                    let index = self.edge.level_count(level_u8) / TILE_WIDTH;
                    tiles.insert((level_u8, index), self.edge.tiles[level].as_slice())?;
                }
                self.edge.dirty[level] = false;
            }
            let mut pieces = txn.open_table(PACKED_PIECES)?;
            let mut edge_rows = txn.open_table(EDGE_ENTRIES)?;
            for (index, data) in full_bundles.iter() {
                insert_packed(&mut pieces, *index, data)?;
                // Its entries that earlier batches left as edge rows.
                let first = index * TILE_WIDTH;
                for leaf in first..batch_start.max(first).min(first + TILE_WIDTH) {
                    edge_rows.remove(leaf)?;
                }
            }
            let partial_start = self.edge.size - self.edge.bundle_len;
            for (leaf, entry) in appended.iter().filter(|(leaf, _)| *leaf >= partial_start) {
                edge_rows.insert(*leaf, *entry)?;
            }
        }
        let root = tlog_tiles::tree_hash(
            self.edge.size,
            &TiledHashReader {
                txn: &txn,
                edge: Some(&self.edge),
            },
        )
        .map_err(|e| StoreError::Corrupt(format!("cannot compute the new root: {e}")))?;
        let checkpoint = self.signer.sign(self.edge.size, root);
        txn.open_table(META)?
            .insert(CHECKPOINT_KEY, checkpoint.note.as_slice())?;
        #[cfg(test)]
        self.injected_failure(FailAt::BeforeCommit)?;
        txn.commit()?;
        Ok(BatchOutcome {
            results,
            checkpoint,
        })
    }

    #[cfg(test)]
    fn injected_failure(&mut self, here: FailAt) -> Result<(), StoreError> {
        if self.fail_next == Some(here) {
            self.fail_next = None;
            return Err(StoreError::Storage(format!("injected failure {here:?}")));
        }
        Ok(())
    }
}

/// The first transaction of a submission that repeats a (signer, nonce)
/// already in the log, in this batch, or earlier in the same submission.
fn find_replay(
    submission: &[SignedTx],
    replay: &redb::Table<&[u8], u64>,
    seen_in_batch: &std::collections::HashSet<Vec<u8>>,
) -> Result<Option<TxError>, StoreError> {
    let mut seen_here = std::collections::HashSet::new();
    for (position, tx) in submission.iter().enumerate() {
        let key = replay_guard_key(tx);
        let earlier = replay.get(key.as_slice())?.map(|v| v.value());
        if earlier.is_some() || seen_in_batch.contains(&key) || !seen_here.insert(key.clone()) {
            let at = earlier.map_or_else(String::new, |i| format!(" (first used at index {i})"));
            return Ok(Some(
                TxError::new(
                    ErrorCode::Replay,
                    format!(
                        "signer {} already used nonce {:?}{at}; sign a new transaction with a fresh nonce",
                        tx.signer(),
                        tx.nonce()
                    ),
                )
                .at(position),
            ));
        }
    }
    Ok(None)
}

/// The replay guard's key for a transaction: `SHA-256(signer)[..8] || nonce`.
fn replay_guard_key(tx: &SignedTx) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut key = Vec::with_capacity(8 + tx.nonce().len());
    key.extend_from_slice(&Sha256::digest(tx.signer().as_str().as_bytes())[..8]);
    key.extend_from_slice(tx.nonce().as_bytes());
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tx::{TxBuilder, TxContext};
    use crate::ModuleRegistry;
    use hygeia_identity::Keypair;

    const ORIGIN: &str = "test.example/log";

    fn signed(key: &Keypair, nonce: u64) -> SignedTx {
        let raw = TxBuilder {
            network: ORIGIN,
            tx_type: "attest",
            nonce: format!("n{nonce}"),
            body: serde_json::json!({"label": "test", "subject": format!("sha256:{nonce:064x}")}),
        }
        .sign(key);
        let modules = ModuleRegistry::with_builtins();
        SignedTx::parse(
            &raw,
            &TxContext {
                network: ORIGIN,
                modules: &modules,
            },
        )
        .unwrap()
    }

    fn writer(path: &Path) -> (std::sync::Arc<LogStore>, LogWriter) {
        let store = std::sync::Arc::new(LogStore::open(path, ORIGIN).unwrap());
        let signer = CheckpointSigner::new(ORIGIN, Keypair::from_seed(&[9u8; 32])).unwrap();
        let writer = LogWriter::open(store.clone(), signer).unwrap();
        (store, writer)
    }

    /// (packed, raw) bundle indexes as stored.
    fn stored_bundles(store: &LogStore) -> (Vec<u64>, Vec<u64>) {
        let txn = store.db.begin_read().unwrap();
        let mut packed: Vec<u64> = piece_keys(&txn).into_iter().map(|(b, _)| b).collect();
        packed.dedup();
        (packed, keys(txn.open_table(ENTRY_BUNDLES).unwrap()))
    }

    fn piece_keys(txn: &ReadTransaction) -> Vec<(u64, u32)> {
        txn.open_table(PACKED_PIECES)
            .unwrap()
            .iter()
            .unwrap()
            .map(|row| row.unwrap().0.value())
            .collect()
    }

    fn keys(table: redb::ReadOnlyTable<u64, &'static [u8]>) -> Vec<u64> {
        table
            .iter()
            .unwrap()
            .map(|row| row.unwrap().0.value())
            .collect()
    }

    /// The leaf indexes stored as edge entries.
    fn edge_rows(store: &LogStore) -> Vec<u64> {
        let txn = store.db.begin_read().unwrap();
        keys(txn.open_table(EDGE_ENTRIES).unwrap())
    }

    fn all_entries(store: &LogStore) -> Vec<Vec<u8>> {
        let mut entries = Vec::new();
        store
            .snapshot()
            .unwrap()
            .for_each_entry(|_, entry| {
                entries.push(entry.to_vec());
                Ok(())
            })
            .unwrap();
        entries
    }

    /// Full bundles are stored compressed, the right edge one row per
    /// entry, and every read gives back the appended bytes.
    #[test]
    fn full_bundles_are_packed_and_read_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.redb");
        let key = Keypair::generate();
        let txs: Vec<SignedTx> = (0..600).map(|i| signed(&key, i)).collect();
        let (store, mut writer) = writer(&path);
        for chunk in txs.chunks(70) {
            writer.append_batch(&[chunk]).unwrap();
        }
        assert_eq!(stored_bundles(&store), (vec![0, 1], vec![]));
        assert_eq!(edge_rows(&store), (512..600).collect::<Vec<u64>>());
        let txn = store.db.begin_read().unwrap();
        let pieces = txn.open_table(PACKED_PIECES).unwrap();
        let mut stored = 0;
        let mut count = 0;
        for row in pieces.range((0, 0)..(1, 0)).unwrap() {
            let len = row.unwrap().1.value().len();
            assert!(len <= PIECE_LEN);
            stored += len;
            count += 1;
        }
        // Cut into pieces that each fit a page.
        assert_eq!(count, stored.div_ceil(PIECE_LEN));
        assert!(count > 1, "{stored} bytes in one piece");
        let mut served = Vec::new();
        for tx in &txs[..256] {
            push_entry(&mut served, tx.canonical_bytes());
        }
        assert!(stored * 2 < served.len(), "{stored} of {}", served.len());
        let snapshot = store.snapshot().unwrap();
        let tile = |s: &str| snapshot.tile(&TilePath::parse(s).unwrap()).unwrap();
        assert_eq!(tile("tile/entries/000").unwrap(), served);
        let mut prefix = Vec::new();
        for tx in &txs[..3] {
            push_entry(&mut prefix, tx.canonical_bytes());
        }
        assert_eq!(tile("tile/entries/000.p/3").unwrap(), prefix);
        let expected: Vec<Vec<u8>> = txs.iter().map(|t| t.canonical_bytes().to_vec()).collect();
        assert_eq!(all_entries(&store), expected);
        assert_eq!(
            snapshot.entry(300).unwrap().unwrap(),
            txs[300].canonical_bytes()
        );
        assert_eq!(
            snapshot.entry(550).unwrap().unwrap(),
            txs[550].canonical_bytes()
        );
        let mut edge = Vec::new();
        for tx in &txs[512..522] {
            push_entry(&mut edge, tx.canonical_bytes());
        }
        assert_eq!(tile("tile/entries/002.p/10").unwrap(), edge);
        // A writer opened again goes on from the edge rows.
        let root = writer.checkpoint().root;
        drop(snapshot);
        drop(writer);
        let signer = CheckpointSigner::new(ORIGIN, Keypair::from_seed(&[9u8; 32])).unwrap();
        let mut writer = LogWriter::open(store.clone(), signer).unwrap();
        assert_eq!(writer.checkpoint().root, root);
        let more: Vec<SignedTx> = (600..800).map(|i| signed(&key, i)).collect();
        writer.append_batch(&[&more[..]]).unwrap();
        assert_eq!(stored_bundles(&store), (vec![0, 1, 2], vec![]));
        assert_eq!(edge_rows(&store), (768..800).collect::<Vec<u64>>());
        let expected: Vec<Vec<u8>> = txs
            .iter()
            .chain(&more)
            .map(|t| t.canonical_bytes().to_vec())
            .collect();
        assert_eq!(all_entries(&store), expected);
    }

    /// A log written before packed bundles (every bundle uncompressed) is
    /// read as it is and packed at its next open, entries and root intact.
    #[test]
    fn an_unpacked_log_is_packed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.redb");
        let key = Keypair::generate();
        let txs: Vec<SignedTx> = (0..700).map(|i| signed(&key, i)).collect();
        let expected: Vec<Vec<u8>> = txs.iter().map(|t| t.canonical_bytes().to_vec()).collect();
        let root = {
            let (store, mut writer) = writer(&path);
            writer.append_batch(&[&txs[..]]).unwrap();
            // Back to the old layout: full bundles uncompressed, the edge
            // bundle whole.
            let txn = store.db.begin_write().unwrap();
            {
                let mut pieces = txn.open_table(PACKED_PIECES).unwrap();
                let mut raw = txn.open_table(ENTRY_BUNDLES).unwrap();
                for index in [0u64, 1] {
                    let data = read_packed(&pieces, index).unwrap().unwrap();
                    pieces
                        .retain_in((index, 0)..=(index, u32::MAX), |_, _| false)
                        .unwrap();
                    raw.insert(index, data.as_slice()).unwrap();
                }
                let mut rows = txn.open_table(EDGE_ENTRIES).unwrap();
                let mut partial = Vec::new();
                for leaf in 512..700u64 {
                    let entry = rows.remove(leaf).unwrap().unwrap().value().to_vec();
                    push_entry(&mut partial, &entry);
                }
                raw.insert(2, partial.as_slice()).unwrap();
            }
            txn.commit().unwrap();
            assert_eq!(stored_bundles(&store), (vec![], vec![0, 1, 2]));
            assert!(edge_rows(&store).is_empty());
            assert_eq!(all_entries(&store), expected);
            writer.checkpoint().root
        };
        let (store, mut writer) = writer(&path);
        assert_eq!(stored_bundles(&store), (vec![0, 1], vec![]));
        assert_eq!(edge_rows(&store), (512..700).collect::<Vec<u64>>());
        assert_eq!(all_entries(&store), expected);
        assert_eq!(writer.checkpoint().root, root);
        let more: Vec<SignedTx> = (700..800).map(|i| signed(&key, i)).collect();
        writer.append_batch(&[&more[..]]).unwrap();
        assert_eq!(stored_bundles(&store), (vec![0, 1, 2], vec![]));
        assert_eq!(edge_rows(&store), (768..800).collect::<Vec<u64>>());
        assert_eq!(all_entries(&store).len(), 800);
    }

    #[test]
    fn a_damaged_packed_bundle_is_reported_as_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.redb");
        let key = Keypair::generate();
        let txs: Vec<SignedTx> = (0..300).map(|i| signed(&key, i)).collect();
        let (store, mut writer) = writer(&path);
        writer.append_batch(&[&txs[..]]).unwrap();
        let txn = store.db.begin_write().unwrap();
        txn.open_table(PACKED_PIECES)
            .unwrap()
            .insert((0, 0), b"not zstd".as_slice())
            .unwrap();
        txn.commit().unwrap();
        let error = store.snapshot().unwrap().entry(3).unwrap_err();
        assert!(matches!(error, StoreError::Corrupt(_)), "{error}");
        // A piece missing in the middle is named.
        let txn = store.db.begin_write().unwrap();
        txn.open_table(PACKED_PIECES)
            .unwrap()
            .remove((0, 1))
            .unwrap();
        txn.commit().unwrap();
        let error = store.snapshot().unwrap().entry(3).unwrap_err();
        assert!(
            matches!(&error, StoreError::Corrupt(m) if m.contains("piece 2 where 1")),
            "{error}"
        );
    }

    /// A log whose full bundles are packed whole (before pieces) reads as
    /// it is, opened read-only, and its bundles are cut into pieces when a
    /// writer opens it, byte for byte, the old table dropped.
    #[test]
    fn whole_packed_bundles_are_read_and_cut_into_pieces_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.redb");
        let key = Keypair::generate();
        let txs: Vec<SignedTx> = (0..600).map(|i| signed(&key, i)).collect();
        let expected: Vec<Vec<u8>> = txs.iter().map(|t| t.canonical_bytes().to_vec()).collect();
        let (root, packed_bytes) = {
            let (store, mut writer) = writer(&path);
            writer.append_batch(&[&txs[..]]).unwrap();
            // Back to whole packed bundles.
            let txn = store.db.begin_write().unwrap();
            let mut packed_bytes = Vec::new();
            {
                let mut pieces = txn.open_table(PACKED_PIECES).unwrap();
                let mut whole = txn.open_table(LEGACY_PACKED_BUNDLES).unwrap();
                for index in [0u64, 1] {
                    let mut packed = Vec::new();
                    for row in pieces.range((index, 0)..=(index, u32::MAX)).unwrap() {
                        packed.extend_from_slice(row.unwrap().1.value());
                    }
                    pieces
                        .retain_in((index, 0)..=(index, u32::MAX), |_, _| false)
                        .unwrap();
                    whole.insert(index, packed.as_slice()).unwrap();
                    packed_bytes.push(packed);
                }
            }
            txn.commit().unwrap();
            assert_eq!(stored_bundles(&store), (vec![], vec![]));
            assert_eq!(all_entries(&store), expected);
            (writer.checkpoint().root, packed_bytes)
        };
        let (read_only, _) = LogStore::open_existing(&path).unwrap();
        assert_eq!(all_entries(&read_only), expected);
        drop(read_only);
        let (store, writer) = writer(&path);
        assert_eq!(stored_bundles(&store), (vec![0, 1], vec![]));
        assert_eq!(all_entries(&store), expected);
        assert_eq!(writer.checkpoint().root, root);
        let txn = store.db.begin_read().unwrap();
        assert!(matches!(
            txn.open_table(LEGACY_PACKED_BUNDLES),
            Err(redb::TableError::TableDoesNotExist(_))
        ));
        // The compressed bytes were moved, not compressed again.
        let pieces = txn.open_table(PACKED_PIECES).unwrap();
        for (index, packed) in packed_bytes.iter().enumerate() {
            let mut moved = Vec::new();
            for row in pieces
                .range((index as u64, 0)..=(index as u64, u32::MAX))
                .unwrap()
            {
                moved.extend_from_slice(row.unwrap().1.value());
            }
            assert_eq!(&moved, packed);
        }
    }

    /// A state machine that counts what it was told.
    #[derive(Default)]
    struct Counting {
        staged: usize,
        committed: usize,
        aborted: usize,
    }

    impl StateMachine for Counting {
        fn admit(&mut self, _first_index: u64, submission: &[SignedTx]) -> Result<(), TxError> {
            self.staged += submission.len();
            Ok(())
        }
        fn commit(&mut self) {
            self.committed += std::mem::take(&mut self.staged);
        }
        fn abort(&mut self) {
            self.aborted += std::mem::take(&mut self.staged);
        }
    }

    /// Every row the log keeps, table by table, as bytes.
    fn durable_rows(store: &LogStore) -> Vec<(&'static str, Vec<u8>, Vec<u8>)> {
        let txn = store.db.begin_read().unwrap();
        let mut rows = Vec::new();
        if let Ok(table) = txn.open_table(HASH_TILES) {
            for row in table.iter().unwrap() {
                let (key, value) = row.unwrap();
                let (level, index) = key.value();
                let mut key = vec![level];
                key.extend_from_slice(&index.to_be_bytes());
                rows.push(("hash tiles", key, value.value().to_vec()));
            }
        }
        if let Ok(table) = txn.open_table(PACKED_PIECES) {
            for row in table.iter().unwrap() {
                let (key, value) = row.unwrap();
                let (bundle, piece) = key.value();
                let mut key = bundle.to_be_bytes().to_vec();
                key.extend_from_slice(&piece.to_be_bytes());
                rows.push(("packed pieces", key, value.value().to_vec()));
            }
        }
        for (name, table) in [
            ("bundles", ENTRY_BUNDLES),
            ("edge", EDGE_ENTRIES),
            ("packed", LEGACY_PACKED_BUNDLES),
        ] {
            if let Ok(table) = txn.open_table(table) {
                for row in table.iter().unwrap() {
                    let (key, value) = row.unwrap();
                    rows.push((
                        name,
                        key.value().to_be_bytes().to_vec(),
                        value.value().to_vec(),
                    ));
                }
            }
        }
        if let Ok(table) = txn.open_table(REPLAY_GUARD) {
            for row in table.iter().unwrap() {
                let (key, value) = row.unwrap();
                rows.push((
                    "replay",
                    key.value().to_vec(),
                    value.value().to_be_bytes().to_vec(),
                ));
            }
        }
        if let Ok(table) = txn.open_table(META) {
            for row in table.iter().unwrap() {
                let (key, value) = row.unwrap();
                rows.push((
                    "meta",
                    key.value().as_bytes().to_vec(),
                    value.value().to_vec(),
                ));
            }
        }
        rows
    }

    /// Transactions signed once for every case of the property below.
    fn pool() -> &'static [SignedTx] {
        static POOL: std::sync::OnceLock<Vec<SignedTx>> = std::sync::OnceLock::new();
        POOL.get_or_init(|| {
            let key = Keypair::from_seed(&[7u8; 32]);
            (0..2_400).map(|i| signed(&key, i)).collect()
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 24,
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// A batch whose write fails (wherever it fails, whether or not it
        /// fills a bundle or crosses into the next one) changes nothing:
        /// the state machine is told to abort, the writer's checkpoint is
        /// the one before it, and the same batch sent again gives a log
        /// byte for byte the one that never saw the failure, also once
        /// reopened.
        #[test]
        fn a_batch_that_fails_to_commit_changes_nothing(
            batches in proptest::collection::vec(
                (
                    1usize..300,
                    1usize..4,
                    proptest::option::of(proptest::prop_oneof![
                        proptest::strategy::Just(FailAt::AfterStaging),
                        proptest::strategy::Just(FailAt::BeforeCommit),
                    ]),
                ),
                1..8,
            )
        ) {
            let dir = tempfile::tempdir().unwrap();
            let (faulty_store, mut faulty) = writer(&dir.path().join("faulty.redb"));
            let (clean_store, mut clean) = writer(&dir.path().join("clean.redb"));
            let mut told = Counting::default();
            let mut next = 0;
            for (entries, parts, fail) in batches {
                let txs = &pool()[next..next + entries];
                next += entries;
                let submissions: Vec<&[SignedTx]> = txs.chunks(entries.div_ceil(parts)).collect();
                if let Some(at) = fail {
                    let before = faulty.checkpoint().clone();
                    let aborted = told.aborted;
                    faulty.fail_next = Some(at);
                    let error = faulty.append_batch_with(&submissions, &mut told).err();
                    proptest::prop_assert!(
                        matches!(error, Some(StoreError::Storage(_))),
                        "{:?}", error.map(|e| e.to_string())
                    );
                    proptest::prop_assert_eq!(told.aborted - aborted, entries);
                    proptest::prop_assert_eq!(faulty.checkpoint(), &before);
                    proptest::prop_assert_eq!(durable_rows(&faulty_store), durable_rows(&clean_store));
                }
                let outcome = faulty.append_batch_with(&submissions, &mut told).unwrap();
                proptest::prop_assert!(outcome.results.iter().all(Result::is_ok));
                clean.append_batch(&submissions).unwrap();
                proptest::prop_assert_eq!(faulty.checkpoint(), clean.checkpoint());
            }
            proptest::prop_assert_eq!(told.committed, next);
            let rows = durable_rows(&clean_store);
            proptest::prop_assert_eq!(durable_rows(&faulty_store), rows.clone());
            proptest::prop_assert_eq!(all_entries(&faulty_store).len(), next);
            let checkpoint = clean.checkpoint().clone();
            drop(faulty);
            drop(faulty_store);
            let (reopened_store, reopened) = writer(&dir.path().join("faulty.redb"));
            proptest::prop_assert_eq!(reopened.checkpoint(), &checkpoint);
            proptest::prop_assert_eq!(durable_rows(&reopened_store), rows);
        }
    }
}
