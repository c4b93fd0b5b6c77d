//! The finalized chain on disk: every block this node appended (empty ones
//! too), in order, in one append-only file next to the log.
//!
//! A block is written here before its transactions are written to the
//! log, and synced first when it has any, so after a crash the file holds
//! every block whose entries reached the log, and possibly the next one
//! (which the node then appends at start). Empty blocks are written
//! without a sync: losing a tail of them changes no log, and the node
//! fetches them again from its peers. Peers that fell behind (a restarted
//! node) are served finalized blocks from this file.
//!
//! Record format: a 4-byte big-endian length, then the block's encoding
//! ([`Block::encode`]). A torn last record is cut off at open.
//!
//! [`Staging`] is the other file here: finalized blocks fetched from peers
//! while catching up, kept on disk until they reach the last appended
//! block, then appended to the chain oldest first.
//!
//! [`Unfinalized`] is the third: the blocks this node proposed or voted
//! for and that are not finalized yet, each synced before the vote, so a
//! network whose every validator restarts still has them.
//!
//! [`EpochEnds`] keeps, one small file per epoch (`epoch-<e>.end`), the
//! end of every epoch this node finished: the epoch's last block and its
//! finalization certificate, for peers that were not there when it ended.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::block::{Block, Digest, MAX_BLOCK_BYTES};

/// Why the finalized chain cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("the finalized chain {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the finalized chain {0} is damaged: {1}")]
    Corrupt(String, String),
    #[error("blocks fetched to catch up would take more than {0} bytes on disk")]
    StagingFull(u64),
}

/// The record at `offset` of bytes framed as the chain file is (a 4-byte
/// big-endian length, then that many bytes): `None` when the length is
/// torn; its length and `None` when the record is.
pub fn frame_at(bytes: &[u8], offset: usize) -> Option<(usize, Option<&[u8]>)> {
    let len = bytes.get(offset..offset.checked_add(4)?)?;
    let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
    let start = offset + 4;
    Some((len, bytes.get(start..start.checked_add(len)?)))
}

/// Opens (creating it and its directory) a file of framed records for
/// appending, with what it holds.
fn open_for_append(path: &Path) -> Result<(File, Vec<u8>), ChainError> {
    let io = |source| ChainError::Io {
        path: path.display().to_string(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .map_err(io)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(io)?;
    Ok((file, bytes))
}

/// The finalized blocks of this node, on disk, indexed by digest.
pub struct Chain {
    path: PathBuf,
    file: File,
    /// Digest → (offset of the encoding, its length).
    index: HashMap<Digest, (u64, u32)>,
    end: u64,
}

impl Chain {
    /// Opens (creating) the chain at `path`: the blocks in it, oldest
    /// first, each checked to extend the one before (the first extends
    /// `genesis`).
    pub fn open(path: &Path, genesis: Digest) -> Result<(Chain, Vec<(Digest, Block)>), ChainError> {
        let io = |source| ChainError::Io {
            path: path.display().to_string(),
            source,
        };
        let (file, bytes) = open_for_append(path)?;
        let mut index = HashMap::new();
        let mut blocks = Vec::new();
        let mut offset = 0usize;
        let mut parent = genesis;
        while offset < bytes.len() {
            let Some((len, encoded)) = frame_at(&bytes, offset) else {
                break; // torn length
            };
            let start = offset + 4;
            if len > MAX_BLOCK_BYTES {
                return Err(ChainError::Corrupt(
                    path.display().to_string(),
                    format!("record at {offset} is {len} bytes"),
                ));
            }
            let Some(encoded) = encoded else {
                break; // torn record
            };
            let block = Block::decode(encoded).map_err(|e| {
                ChainError::Corrupt(path.display().to_string(), format!("at {offset}: {e}"))
            })?;
            if block.parent != parent {
                return Err(ChainError::Corrupt(
                    path.display().to_string(),
                    format!("block at {offset} does not extend the block before it"),
                ));
            }
            let digest = Block::digest(encoded);
            index.insert(digest, (start as u64, len as u32));
            parent = digest;
            blocks.push((digest, block));
            offset = start + len;
        }
        if offset < bytes.len() {
            tracing::warn!(path = %path.display(), at = offset, "cutting a torn last block off the finalized chain");
            file.set_len(offset as u64).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        Ok((
            Chain {
                path: path.to_path_buf(),
                file,
                index,
                end: offset as u64,
            },
            blocks,
        ))
    }

    /// Whether `digest` is a block of the chain.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.index.contains_key(digest)
    }

    /// Appends a finalized block; `sync` makes it durable before returning.
    pub fn append(&mut self, digest: Digest, encoded: &[u8], sync: bool) -> Result<(), ChainError> {
        if self.contains(&digest) {
            return Ok(());
        }
        let io = |source| ChainError::Io {
            path: self.path.display().to_string(),
            source,
        };
        let mut record = Vec::with_capacity(encoded.len() + 4);
        record.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
        record.extend_from_slice(encoded);
        self.file.write_all(&record).map_err(io)?;
        if sync {
            self.file.sync_data().map_err(io)?;
        }
        self.index
            .insert(digest, (self.end + 4, encoded.len() as u32));
        self.end += record.len() as u64;
        Ok(())
    }

    /// The encoding of the finalized block `digest`, if this node has it.
    pub fn read(&self, digest: &Digest) -> Option<Vec<u8>> {
        let (offset, len) = *self.index.get(digest)?;
        let mut bytes = vec![0; len as usize];
        self.file.read_exact_at(&mut bytes, offset).ok()?;
        Some(bytes)
    }
}

/// Most bytes of blocks staged for one catch-up (64 GiB): about 1.2
/// billion empty blocks (an idle network, which stores one every ten
/// minutes or so, never gets near it), or 8,192 blocks at the largest. Past it the node stops appending and
/// says why (it is then restored from a copy of another node's data
/// directory).
pub const MAX_STAGED_BYTES: u64 = 64 << 30;

/// Finalized blocks fetched from peers while catching up, on disk, newest
/// first (the order they are fetched in, walking parent links back), read
/// back oldest first. Nothing of it is kept in memory but its length: a
/// node far behind holds any number of blocks (up to `max_bytes`).
///
/// It is emptied at open: after a crash the blocks are fetched again (they
/// were never appended, so the chain and the log are as they were).
///
/// Record format: a 4-byte big-endian length, the block's encoding, the
/// same length again (so the file is read from its end).
pub struct Staging {
    path: PathBuf,
    file: File,
    /// End of the last record staged and not taken back.
    end: u64,
    max_bytes: u64,
}

impl Staging {
    /// Opens (creating, emptying) the staging file at `path`.
    pub fn open(path: &Path, max_bytes: u64) -> Result<Staging, ChainError> {
        let io = |source| ChainError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(io)?;
        Ok(Staging {
            path: path.to_path_buf(),
            file,
            end: 0,
            max_bytes,
        })
    }

    fn io(&self, source: std::io::Error) -> ChainError {
        ChainError::Io {
            path: self.path.display().to_string(),
            source,
        }
    }

    /// Bytes staged.
    pub fn bytes(&self) -> u64 {
        self.end
    }

    /// Stages a block's encoding (not synced: staged blocks are fetched
    /// again after a crash). Past `max_bytes`, refused.
    pub fn push(&mut self, encoded: &[u8]) -> Result<(), ChainError> {
        let len = (encoded.len() as u32).to_be_bytes();
        let record = encoded.len() as u64 + 8;
        if self.end + record > self.max_bytes {
            return Err(ChainError::StagingFull(self.max_bytes));
        }
        let mut bytes = Vec::with_capacity(encoded.len() + 8);
        bytes.extend_from_slice(&len);
        bytes.extend_from_slice(encoded);
        bytes.extend_from_slice(&len);
        self.file
            .write_all_at(&bytes, self.end)
            .map_err(|e| self.io(e))?;
        self.end += record;
        Ok(())
    }

    /// Takes back the last block staged (the oldest fetched), if any.
    pub fn pop(&mut self) -> Result<Option<Vec<u8>>, ChainError> {
        if self.end == 0 {
            return Ok(None);
        }
        let damaged = |why: &str| ChainError::Corrupt(self.path.display().to_string(), why.into());
        let mut len = [0u8; 4];
        let at = self
            .end
            .checked_sub(4)
            .ok_or_else(|| damaged("torn length"))?;
        self.file
            .read_exact_at(&mut len, at)
            .map_err(|e| self.io(e))?;
        let len = u32::from_be_bytes(len) as u64;
        let start = at
            .checked_sub(len)
            .filter(|s| *s >= 4 && len as usize <= MAX_BLOCK_BYTES)
            .ok_or_else(|| damaged("bad record length"))?;
        let mut encoded = vec![0; len as usize];
        self.file
            .read_exact_at(&mut encoded, start)
            .map_err(|e| self.io(e))?;
        self.end = start - 4;
        Ok(Some(encoded))
    }

    /// Empties the file.
    pub fn reset(&mut self) -> Result<(), ChainError> {
        self.file.set_len(0).map_err(|e| self.io(e))?;
        self.end = 0;
        Ok(())
    }
}

/// Most records of the unfinalized-blocks file before it is pruned
/// (about three minutes of an idle network's empty blocks).
pub const PRUNE_RECORDS: usize = 1024;
/// Most bytes of the unfinalized-blocks file before it is pruned.
pub const PRUNE_BYTES: u64 = 64 << 20;

/// Where a block's record is in the unfinalized-blocks file.
#[derive(Debug, Clone, Copy)]
struct UnfinalizedRecord {
    height: u64,
    /// Offset of the record's length prefix.
    offset: u64,
    /// Bytes after the length prefix (digest and encoding).
    len: u32,
}

/// The blocks this node proposed or voted for (notarize or finalize) that
/// may not be finalized yet, on disk. A block is appended and synced
/// before the node hands its digest to the engine or answers the engine's
/// check with a vote: if every validator restarts while a block is
/// notarized and not finalized, the next proposals must extend that
/// block, and at least the validators that voted for it still have it.
///
/// Read back at start, its blocks are only candidates, as if a peer had
/// sent them: they are executed on their parent's state before any vote,
/// as any block is.
///
/// Record format: the finalized chain's framing (a 4-byte big-endian
/// length, then that many bytes), the bytes being the block's digest (32
/// bytes) then its encoding ([`Block::encode`]). A torn last record, or a
/// length no record can have, is cut off at open with what follows it; a
/// record whose encoding does not decode or does not hash to its digest
/// is skipped with a warning (and dropped at the next prune).
///
/// Pruned when it holds more than [`PRUNE_RECORDS`] records or
/// [`PRUNE_BYTES`] bytes (or twice what the last prune kept, if more):
/// rewritten (a temporary file, synced, renamed) with only the blocks
/// above the last finalized height (those at or below it are in the
/// finalized chain, or on a branch that can no longer be finalized).
pub struct Unfinalized {
    path: PathBuf,
    file: File,
    records: HashMap<Digest, UnfinalizedRecord>,
    end: u64,
    prune_records: usize,
    prune_bytes: u64,
    /// The thresholds after a prune at least.
    min_records: usize,
    min_bytes: u64,
}

/// A block read back from the unfinalized-blocks file: its digest (checked
/// against its encoding), the block, and its encoding.
pub type StoredBlock = (Digest, Block, Vec<u8>);

impl Unfinalized {
    /// Opens (creating) the file at `path`, with the blocks in it that
    /// decode and hash to their recorded digest, in the order written.
    pub fn open(path: &Path) -> Result<(Unfinalized, Vec<StoredBlock>), ChainError> {
        Self::open_with_limits(path, PRUNE_RECORDS, PRUNE_BYTES)
    }

    /// As [`Unfinalized::open`], pruned past `records` records or `bytes`
    /// bytes.
    pub fn open_with_limits(
        path: &Path,
        records: usize,
        bytes: u64,
    ) -> Result<(Unfinalized, Vec<StoredBlock>), ChainError> {
        let io = |source| ChainError::Io {
            path: path.display().to_string(),
            source,
        };
        // A prune a crash interrupted: the file it was replacing is whole.
        let _ = std::fs::remove_file(Self::temporary(path));
        let (file, content) = open_for_append(path)?;
        let mut index = HashMap::new();
        let mut blocks = Vec::new();
        let mut offset = 0usize;
        while offset < content.len() {
            let Some((len, record)) = frame_at(&content, offset) else {
                break; // torn length
            };
            if !(32..=MAX_BLOCK_BYTES + 32).contains(&len) {
                // Nothing after it can be framed.
                tracing::warn!(path = %path.display(), at = offset, len, "a record of the unfinalized blocks has a length no block has: cutting it off with what follows");
                break;
            }
            let start = offset + 4;
            let Some(record) = record else {
                break; // torn record
            };
            let (digest, encoded) = record.split_at(32);
            let mut recorded = [0u8; 32];
            recorded.copy_from_slice(digest);
            let at = offset as u64;
            offset = start + len;
            if Block::digest(encoded) != recorded {
                tracing::warn!(path = %path.display(), at, "an unfinalized block does not hash to its recorded digest: skipped");
                continue;
            }
            let block = match Block::decode(encoded) {
                Ok(block) => block,
                Err(e) => {
                    tracing::warn!(path = %path.display(), at, error = %e, "an unfinalized block does not decode: skipped");
                    continue;
                }
            };
            if index.contains_key(&recorded) {
                continue;
            }
            index.insert(
                recorded,
                UnfinalizedRecord {
                    height: block.height,
                    offset: at,
                    len: len as u32,
                },
            );
            blocks.push((recorded, block, encoded.to_vec()));
        }
        if offset < content.len() {
            tracing::warn!(path = %path.display(), at = offset, "cutting a torn tail off the unfinalized blocks");
            file.set_len(offset as u64).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        // The base limits: the first prune then sets them from what it keeps.
        let unfinalized = Unfinalized {
            path: path.to_path_buf(),
            file,
            records: index,
            end: offset as u64,
            prune_records: records,
            prune_bytes: bytes,
            min_records: records,
            min_bytes: bytes,
        };
        Ok((unfinalized, blocks))
    }

    fn temporary(path: &Path) -> PathBuf {
        let mut name = path.as_os_str().to_owned();
        name.push(".tmp");
        PathBuf::from(name)
    }

    fn io(&self, source: std::io::Error) -> ChainError {
        ChainError::Io {
            path: self.path.display().to_string(),
            source,
        }
    }

    /// Prune again only past twice what is kept, so a file that stays
    /// large (a long stall with many unfinalized blocks) is not rewritten
    /// at every finalized block.
    fn set_thresholds(&mut self) {
        self.prune_records = self.min_records.max(self.records.len().saturating_mul(2));
        self.prune_bytes = self.min_bytes.max(self.end.saturating_mul(2));
    }

    /// Whether `digest` is in the file.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.records.contains_key(digest)
    }

    /// Blocks in the file (finalized ones not pruned yet included).
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the file holds no block.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Bytes of the file.
    pub fn bytes(&self) -> u64 {
        self.end
    }

    /// Appends the block `digest` at `height` and syncs it, unless it is
    /// in the file already: `Ok(true)` if it was written.
    pub fn append(
        &mut self,
        digest: Digest,
        height: u64,
        encoded: &[u8],
    ) -> Result<bool, ChainError> {
        if self.contains(&digest) {
            return Ok(false);
        }
        let len = 32 + encoded.len();
        let mut record = Vec::with_capacity(len + 4);
        record.extend_from_slice(&(len as u32).to_be_bytes());
        record.extend_from_slice(&digest);
        record.extend_from_slice(encoded);
        if let Err(e) = self
            .file
            .write_all(&record)
            .and_then(|()| self.file.sync_data())
        {
            // A part written: cut off so the next record is framed.
            let _ = self.file.set_len(self.end);
            return Err(self.io(e));
        }
        self.records.insert(
            digest,
            UnfinalizedRecord {
                height,
                offset: self.end,
                len: len as u32,
            },
        );
        self.end += record.len() as u64;
        Ok(true)
    }

    /// Once the file holds more than its thresholds, rewrites it with only
    /// the blocks above `finalized` (the last finalized height): written
    /// to a temporary file, synced, renamed over the file. `Ok(true)` if
    /// it was rewritten.
    pub fn prune(&mut self, finalized: u64) -> Result<bool, ChainError> {
        if self.records.len() <= self.prune_records && self.end <= self.prune_bytes {
            return Ok(false);
        }
        let mut kept: Vec<(Digest, UnfinalizedRecord)> = self
            .records
            .iter()
            .filter(|(_, r)| r.height > finalized)
            .map(|(d, r)| (*d, *r))
            .collect();
        kept.sort_by_key(|(_, r)| r.offset);
        let temporary = Self::temporary(&self.path);
        let _ = std::fs::remove_file(&temporary);
        // Opened to append: once renamed, it is the file appended to.
        let mut out = OpenOptions::new()
            .read(true)
            .append(true)
            .create_new(true)
            .open(&temporary)
            .map_err(|e| self.io(e))?;
        let mut records = HashMap::with_capacity(kept.len());
        let mut end = 0u64;
        for (digest, record) in kept {
            let mut bytes = vec![0u8; record.len as usize + 4];
            self.file
                .read_exact_at(&mut bytes, record.offset)
                .map_err(|e| self.io(e))?;
            out.write_all(&bytes).map_err(|e| self.io(e))?;
            records.insert(
                digest,
                UnfinalizedRecord {
                    offset: end,
                    ..record
                },
            );
            end += bytes.len() as u64;
        }
        out.sync_all().map_err(|e| self.io(e))?;
        std::fs::rename(&temporary, &self.path).map_err(|e| self.io(e))?;
        self.file = out;
        self.records = records;
        self.end = end;
        self.set_thresholds();
        // The rename itself made durable.
        let dir = self
            .path
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        File::open(dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| self.io(e))?;
        Ok(true)
    }
}

/// The ends of the epochs this node finished ([`crate::wire::EpochEnd`]),
/// one file each, in the chain's directory. Each file holds the end's
/// wire encoding (tag included), so it is read back with the same strict
/// decoder as a peer's message; it is written to a temporary file, synced
/// and renamed, so a crash leaves the whole end or none.
pub struct EpochEnds {
    dir: PathBuf,
    ends: std::collections::BTreeMap<u64, crate::wire::EpochEnd>,
}

impl EpochEnds {
    /// The ends stored in `dir` for the epochs before `epoch` (the node's
    /// current one). A missing file is a missing end (a node that finished
    /// an epoch before ends were kept, or crashed between the epoch's last
    /// block and the end's write); a damaged one is an error.
    pub fn open(dir: &Path, epoch: u64) -> Result<EpochEnds, ChainError> {
        let mut ends = std::collections::BTreeMap::new();
        for e in 0..epoch {
            let path = Self::path_in(dir, e);
            let bytes = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(ChainError::Io {
                        path: path.display().to_string(),
                        source,
                    })
                }
            };
            match crate::wire::decode(&bytes) {
                Ok(crate::wire::Message::EpochEnd(end)) if end.epoch == e => {
                    ends.insert(e, end);
                }
                _ => {
                    return Err(ChainError::Corrupt(
                        path.display().to_string(),
                        "not the end of its epoch".into(),
                    ))
                }
            }
        }
        Ok(EpochEnds {
            dir: dir.to_path_buf(),
            ends,
        })
    }

    fn path_in(dir: &Path, epoch: u64) -> PathBuf {
        dir.join(format!("epoch-{epoch}.end"))
    }

    /// The end of `epoch`, if this node finished it and kept it.
    pub fn get(&self, epoch: u64) -> Option<&crate::wire::EpochEnd> {
        self.ends.get(&epoch)
    }

    /// Stores the end of an epoch durably.
    pub fn put(&mut self, end: crate::wire::EpochEnd) -> Result<(), ChainError> {
        let path = Self::path_in(&self.dir, end.epoch);
        let io = |source| ChainError::Io {
            path: path.display().to_string(),
            source,
        };
        let temporary = path.with_extension("end.tmp");
        let bytes = crate::wire::encode(&crate::wire::Message::EpochEnd(end.clone()));
        let mut file = File::create(&temporary).map_err(io)?;
        file.write_all(&bytes).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&temporary, &path).map_err(io)?;
        File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(io)?;
        self.ends.insert(end.epoch, end);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_blocks_come_back_oldest_first_and_the_limit_holds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("staging");
        std::fs::write(&path, b"left over from before a crash").unwrap();
        let (_, a) = block([7; 32], 1, 1);
        let (_, b) = block([8; 32], 2, 0);
        let limit = (a.len() + b.len() + 16) as u64;
        let mut staging = Staging::open(&path, limit).unwrap();
        assert_eq!(staging.bytes(), 0, "emptied at open");
        assert_eq!(staging.pop().unwrap(), None);
        staging.push(&b).unwrap();
        staging.push(&a).unwrap();
        assert!(matches!(
            staging.push(&a),
            Err(ChainError::StagingFull(l)) if l == limit
        ));
        assert_eq!(staging.pop().unwrap(), Some(a.clone()));
        staging.push(&a).unwrap();
        assert_eq!(staging.pop().unwrap(), Some(a));
        assert_eq!(staging.pop().unwrap(), Some(b.clone()));
        assert_eq!(staging.pop().unwrap(), None);
        staging.push(&b).unwrap();
        staging.reset().unwrap();
        assert_eq!(staging.pop().unwrap(), None);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    }

    fn block(parent: Digest, height: u64, txs: usize) -> (Digest, Vec<u8>) {
        let encoded = Block {
            parent,
            height,
            view: height,
            submissions: if txs == 0 {
                vec![]
            } else {
                vec![vec![b"tx".to_vec(); txs]]
            },
        }
        .encode();
        (Block::digest(&encoded), encoded)
    }

    #[test]
    fn reopens_what_it_wrote_and_cuts_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chain");
        let genesis = [7; 32];
        let (mut chain, blocks) = Chain::open(&path, genesis).unwrap();
        assert!(blocks.is_empty());
        let (a, ea) = block(genesis, 1, 2);
        let (b, eb) = block(a, 2, 0);
        chain.append(a, &ea, true).unwrap();
        chain.append(b, &eb, false).unwrap();
        assert_eq!(chain.read(&a).unwrap(), ea);
        assert_eq!(chain.read(&b).unwrap(), eb);
        drop(chain);
        // A torn record at the end.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&[0, 0, 0, 200, 1, 2]).unwrap();
        drop(file);
        let (chain, blocks) = Chain::open(&path, genesis).unwrap();
        assert_eq!(blocks.iter().map(|(d, _)| *d).collect::<Vec<_>>(), [a, b]);
        assert_eq!(chain.read(&b).unwrap(), eb);
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            (ea.len() + eb.len() + 8) as u64
        );
    }

    #[test]
    fn refuses_a_chain_that_does_not_link() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chain");
        let (mut chain, _) = Chain::open(&path, [7; 32]).unwrap();
        let (a, ea) = block([9; 32], 1, 1);
        chain.append(a, &ea, true).unwrap();
        drop(chain);
        assert!(matches!(
            Chain::open(&path, [7; 32]),
            Err(ChainError::Corrupt(..))
        ));
    }

    #[test]
    fn epoch_ends_survive_a_reopen_and_a_damaged_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let end = crate::wire::EpochEnd {
            epoch: 1,
            height: 12,
            digest: [3; 32],
            certificate: vec![5; 40],
        };
        let mut ends = EpochEnds::open(dir.path(), 3).unwrap();
        assert!(ends.get(1).is_none());
        ends.put(end.clone()).unwrap();
        assert_eq!(ends.get(1), Some(&end));
        let again = EpochEnds::open(dir.path(), 3).unwrap();
        assert_eq!(again.get(1), Some(&end));
        assert!(again.get(0).is_none(), "epoch 0's end was never kept");
        // Only the epochs before the current one are read.
        assert!(EpochEnds::open(dir.path(), 1).unwrap().get(1).is_none());
        std::fs::write(dir.path().join("epoch-1.end"), b"garbage").unwrap();
        assert!(matches!(
            EpochEnds::open(dir.path(), 3),
            Err(ChainError::Corrupt(..))
        ));
        // The end of another epoch under this epoch's name.
        let other = crate::wire::encode(&crate::wire::Message::EpochEnd(crate::wire::EpochEnd {
            epoch: 2,
            ..end
        }));
        std::fs::write(dir.path().join("epoch-1.end"), other).unwrap();
        assert!(matches!(
            EpochEnds::open(dir.path(), 3),
            Err(ChainError::Corrupt(..))
        ));
    }

    fn stored_digests(stored: &[StoredBlock]) -> Vec<Digest> {
        stored.iter().map(|(d, ..)| *d).collect()
    }

    #[test]
    fn unfinalized_blocks_come_back_once_each_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("unfinalized.blocks");
        let (mut file, stored) = Unfinalized::open(&path).unwrap();
        assert!(stored.is_empty() && file.is_empty());
        let (a, ea) = block([7; 32], 1, 2);
        let (b, eb) = block(a, 2, 0);
        assert!(file.append(a, 1, &ea).unwrap());
        assert!(file.append(b, 2, &eb).unwrap());
        assert!(!file.append(a, 1, &ea).unwrap(), "a block is written once");
        let whole = (ea.len() + eb.len() + 2 * 36) as u64;
        assert_eq!(file.bytes(), whole);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), whole);
        drop(file);
        // A record torn by a crash in the middle of its write.
        let mut raw = OpenOptions::new().append(true).open(&path).unwrap();
        raw.write_all(&[0, 0, 0, 200, 1, 2, 3]).unwrap();
        drop(raw);
        let (mut file, stored) = Unfinalized::open(&path).unwrap();
        assert_eq!(stored_digests(&stored), [a, b]);
        assert_eq!(stored[0].2, ea);
        assert_eq!(stored[1].1.height, 2);
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            whole,
            "torn tail cut"
        );
        assert!(file.contains(&a) && file.contains(&b));
        // Written after the cut, read back after it.
        let (c, ec) = block(b, 3, 1);
        assert!(file.append(c, 3, &ec).unwrap());
        drop(file);
        let (_, stored) = Unfinalized::open(&path).unwrap();
        assert_eq!(stored_digests(&stored), [a, b, c]);
    }

    #[test]
    fn an_unfinalized_block_that_does_not_hash_to_its_digest_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("unfinalized.blocks");
        let (mut file, _) = Unfinalized::open(&path).unwrap();
        let (a, ea) = block([7; 32], 1, 2);
        let (b, eb) = block(a, 2, 1);
        let (c, ec) = block(b, 3, 0);
        file.append(a, 1, &ea).unwrap();
        file.append(b, 2, &eb).unwrap();
        file.append(c, 3, &ec).unwrap();
        drop(file);
        // One byte of b's encoding changed on disk (its last byte).
        let mut bytes = std::fs::read(&path).unwrap();
        let at = 36 + ea.len() + 36 + eb.len() - 1;
        bytes[at] ^= 0x01;
        // And a record whose digest matches but whose bytes are no block.
        let junk = b"no block at all".to_vec();
        bytes.extend_from_slice(&((32 + junk.len()) as u32).to_be_bytes());
        bytes.extend_from_slice(&Block::digest(&junk));
        bytes.extend_from_slice(&junk);
        std::fs::write(&path, &bytes).unwrap();
        let (file, stored) = Unfinalized::open(&path).unwrap();
        assert_eq!(
            stored_digests(&stored),
            [a, c],
            "b and the junk are skipped"
        );
        assert!(!file.contains(&b));
        assert_eq!(file.bytes(), bytes.len() as u64, "skipped, not cut");
    }

    #[test]
    fn an_unfinalized_blocks_file_of_garbage_opens_without_a_block() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("unfinalized.blocks");
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for round in 0..64 {
            let len = (round * 37) % 700;
            let garbage: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            std::fs::write(&path, &garbage).unwrap();
            let (mut file, stored) = Unfinalized::open(&path).unwrap();
            assert!(stored.is_empty(), "round {round}");
            // Still usable: what is written next comes back.
            let (a, ea) = block([7; 32], 1, 1);
            file.append(a, 1, &ea).unwrap();
            drop(file);
            let (_, stored) = Unfinalized::open(&path).unwrap();
            assert_eq!(stored_digests(&stored), [a], "round {round}");
        }
        // A length no block has, then a whole record: cut from the length.
        let (a, ea) = block([7; 32], 1, 1);
        let mut bytes = u32::MAX.to_be_bytes().to_vec();
        bytes.extend_from_slice(&((32 + ea.len()) as u32).to_be_bytes());
        bytes.extend_from_slice(&a);
        bytes.extend_from_slice(&ea);
        std::fs::write(&path, &bytes).unwrap();
        let (file, stored) = Unfinalized::open(&path).unwrap();
        assert!(stored.is_empty());
        assert_eq!(file.bytes(), 0);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    }

    #[test]
    fn unfinalized_blocks_are_pruned_past_the_limit_to_those_above_the_finalized_height() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("unfinalized.blocks");
        let (mut file, _) = Unfinalized::open_with_limits(&path, 4, 1 << 20).unwrap();
        let mut blocks = Vec::new();
        let mut parent = [7; 32];
        for height in 1..=6 {
            let (digest, encoded) = block(parent, height, (height % 2) as usize);
            parent = digest;
            blocks.push((digest, encoded));
        }
        for (height, (digest, encoded)) in blocks.iter().enumerate().take(4) {
            file.append(*digest, height as u64 + 1, encoded).unwrap();
        }
        assert!(!file.prune(2).unwrap(), "at the limit: not rewritten");
        assert_eq!(file.len(), 4);
        file.append(blocks[4].0, 5, &blocks[4].1).unwrap();
        assert!(file.prune(2).unwrap(), "past the limit: rewritten");
        assert_eq!(file.len(), 3, "heights 3 to 5 kept");
        assert!(!file.contains(&blocks[0].0) && !file.contains(&blocks[1].0));
        let kept: u64 = blocks[2..5].iter().map(|(_, e)| e.len() as u64 + 36).sum();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), kept);
        assert!(!dir.path().join("unfinalized.blocks.tmp").exists());
        // Appends after a prune land in the new file.
        file.append(blocks[5].0, 6, &blocks[5].1).unwrap();
        assert!(
            !file.prune(5).unwrap(),
            "four records: not past the limit again yet"
        );
        drop(file);
        let (mut file, stored) = Unfinalized::open_with_limits(&path, 4, 1 << 20).unwrap();
        let digests: Vec<Digest> = blocks[2..].iter().map(|(d, _)| *d).collect();
        assert_eq!(stored_digests(&stored), digests);
        // Everything at or below the finalized height goes; a block pruned
        // away may be written again (it is then new to the file).
        file.append(blocks[0].0, 1, &blocks[0].1).unwrap();
        assert!(file.prune(6).unwrap());
        assert!(file.is_empty());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        // A prune that keeps much raises the limit, so a file that stays
        // large is not rewritten at every finalized block.
        for (height, (digest, encoded)) in blocks.iter().enumerate() {
            file.append(*digest, height as u64 + 1, encoded).unwrap();
        }
        assert!(file.prune(0).unwrap());
        assert_eq!(file.len(), 6);
        file.append(block([1; 32], 9, 0).0, 9, &block([1; 32], 9, 0).1)
            .unwrap();
        assert!(!file.prune(0).unwrap(), "7 records: under twice the 6 kept");
    }
}
