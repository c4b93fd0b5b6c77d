//! Ciphertexts packed into append-only segment files instead of a file each.
//!
//! A [`SegmentStore`] keeps `<root>/<n>.seg` (`n` from 0, 16 decimal
//! digits); only the last segment is appended to, and it is rolled (flushed
//! and left alone) once it reaches [`SEGMENT_SIZE`]. Each entry is
//!
//! ```text
//! magic "HYSG" (4) | kind (1) | length (8, LE) | blob id (32) | check (8) | data (length)
//! ```
//!
//! where `check` is the first 8 bytes of SHA-256 over the kind, length and
//! id. A blob entry (kind 1) holds the ciphertext, whose SHA-256 is its id;
//! a deletion (kind 2, no data) hides an earlier blob entry of the same id.
//!
//! The index (blob id → segment, offset, length) lives in memory and is
//! rebuilt at [`open`](SegmentStore::open) by reading the segments: it is
//! never written anywhere, so it cannot point at anything the segments do
//! not hold. Entries of the last segment are re-hashed at open, and the
//! segment is cut at the first entry that is incomplete or does not hash to
//! its id (a write torn by a crash, never acknowledged). Every read
//! re-hashes the blob ([`crate::blob::BlobStore::get`]).
//!
//! Durability: an append is flushed with one `fdatasync` of the segment
//! ([`Durability::Immediate`]), or later, together with other appends, by
//! [`SegmentStore::sync`] ([`Durability::Deferred`]). A segment is flushed
//! before the next one is created, and the directory after it is.
//!
//! Deleting a blob appends a deletion entry: the ciphertext's bytes stay in
//! the segment. That is what erasure by key destruction allows (a
//! ciphertext is as unreadable as random bytes once every wrapped copy of
//! its key is gone, wherever copies of it went). A compaction
//! ([`SegmentStore::compact`]) reclaims the space: it copies a full
//! segment's live blobs to the end of the last one, flushes them, points
//! the index at the copies and removes the old segment file, deleted
//! blobs' bytes with it. Erasure does not depend on it.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;

use crate::blob::{BlobId, BlobStore, BlobWriter, VerifyingReader};
use crate::durable::{self, Durability};
use crate::error::{Error, Result};

/// A segment is rolled once it holds this many bytes.
pub const SEGMENT_SIZE: u64 = 64 << 20;
/// What a writer buffers in memory before it spills to a temporary file.
const MEMORY_BUFFER: usize = 4 << 20;

const MAGIC: &[u8; 4] = b"HYSG";
const KIND_BLOB: u8 = 1;
const KIND_DELETE: u8 = 2;
/// Bytes of an entry's header.
pub const HEADER_LEN: u64 = 4 + 1 + 8 + 32 + 8;

/// Where a blob's bytes are.
#[derive(Clone, Copy, Debug)]
struct Location {
    segment: u64,
    offset: u64,
    len: u64,
}

struct Active {
    number: u64,
    /// Shared so that a flush runs without holding the appender.
    file: Arc<File>,
    len: u64,
    /// Set when an append failed and could not be undone: the segment's
    /// tail is unknown, so nothing more is appended until a restart.
    broken: bool,
}

struct Inner {
    root: PathBuf,
    tmp: PathBuf,
    index: RwLock<HashMap<BlobId, Location>>,
    /// Held by a compaction throughout and by a deletion: a blob deleted
    /// while its segment is compacted must not be copied after its
    /// deletion entry (which would bring it back at the next start).
    maintenance: Mutex<()>,
    active: Mutex<Active>,
    /// Segment files open for reading, by number, so that a read is one
    /// `pread`, not an `open`, reads and a `close`. A handle is only added
    /// under the index's read lock for a segment the index points into,
    /// and a compaction removes its segment's handle after moving the
    /// index off it, so no handle outlives its file's last live blob.
    readers: RwLock<HashMap<u64, Arc<File>>>,
}

/// Content-addressed blob storage in append-only segment files. Clones
/// share the same files, index and appender.
#[derive(Clone)]
pub struct SegmentStore {
    inner: Arc<Inner>,
    durability: Durability,
}

impl std::fmt::Debug for SegmentStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentStore")
            .field("root", &self.inner.root)
            .field("durability", &self.durability)
            .finish()
    }
}

/// Blobs up to this size are read with one `pread` into memory.
const READ_WHOLE_UP_TO: u64 = 1 << 20;

fn segment_path(root: &Path, number: u64) -> PathBuf {
    root.join(format!("{number:016}.seg"))
}

fn check(kind: u8, len: u64, id: &BlobId) -> [u8; 8] {
    let digest = Sha256::new()
        .chain_update([kind])
        .chain_update(len.to_le_bytes())
        .chain_update(id.as_bytes())
        .finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

fn header(kind: u8, len: u64, id: &BlobId) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..4].copy_from_slice(MAGIC);
    h[4] = kind;
    h[5..13].copy_from_slice(&len.to_le_bytes());
    h[13..45].copy_from_slice(id.as_bytes());
    h[45..].copy_from_slice(&check(kind, len, id));
    h
}

/// A parsed header, or `None` if it is not a valid one.
fn parse_header(h: &[u8; HEADER_LEN as usize]) -> Option<(u8, u64, BlobId)> {
    if &h[..4] != MAGIC || !matches!(h[4], KIND_BLOB | KIND_DELETE) {
        return None;
    }
    let len = u64::from_le_bytes(h[5..13].try_into().ok()?);
    let id = BlobId::from_bytes(h[13..45].try_into().ok()?);
    if h[45..] != check(h[4], len, &id) || (h[4] == KIND_DELETE && len != 0) {
        return None;
    }
    Some((h[4], len, id))
}

impl SegmentStore {
    /// Opens (creating if needed) a store rooted at `root`: reads every
    /// segment into the index and cuts the last one after its last intact
    /// entry. One process should own a directory.
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        let tmp = durable::empty_tmp_dir(&root)?;
        let mut numbers = Vec::new();
        for entry in fs::read_dir(&root)? {
            let name = entry?.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(n) = name
                .strip_suffix(".seg")
                .and_then(|n| n.parse::<u64>().ok())
            {
                numbers.push(n);
            }
        }
        numbers.sort_unstable();
        let mut index = HashMap::new();
        let last = numbers.last().copied();
        for &n in &numbers {
            let path = segment_path(&root, n);
            let verify = Some(n) == last;
            let end = scan(&path, n, verify, &mut index)?;
            if verify {
                let file = OpenOptions::new().write(true).open(&path)?;
                if file.metadata()?.len() != end {
                    // A torn tail: never acknowledged (nothing durable
                    // referred to it before the segment was flushed).
                    file.set_len(end)?;
                    file.sync_all()?;
                }
            }
        }
        let number = last.unwrap_or(0);
        let path = segment_path(&root, number);
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)?;
        if last.is_none() {
            file.sync_all()?;
            durable::sync_dir(&root)?;
        }
        let len = file.metadata()?.len();
        Ok(SegmentStore {
            inner: Arc::new(Inner {
                root,
                tmp,
                index: RwLock::new(index),
                maintenance: Mutex::new(()),
                active: Mutex::new(Active {
                    number,
                    file: Arc::new(file),
                    len,
                    broken: false,
                }),
                readers: RwLock::new(HashMap::new()),
            }),
            durability: Durability::Immediate,
        })
    }

    /// The same store, appending with [`Durability::Deferred`]: a blob is
    /// durable only after [`SegmentStore::sync`].
    pub fn deferred(mut self) -> Self {
        self.durability = Durability::Deferred;
        self
    }

    /// Flushes every append made so far (one `fdatasync` of the segment
    /// being appended to; earlier segments were flushed when rolled).
    pub fn sync(&self) -> Result<()> {
        let file = self.active().file.clone();
        file.sync_data()?;
        Ok(())
    }

    /// The segment files, oldest first.
    pub fn segment_paths(&self) -> Result<Vec<PathBuf>> {
        let active = self.active().number;
        Ok((0..=active)
            .map(|n| segment_path(&self.inner.root, n))
            .filter(|p| p.exists())
            .collect())
    }

    /// How many blobs are stored (deleted ones not counted).
    pub fn count(&self) -> usize {
        self.inner
            .index
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// An open handle on the segment holding `id`, with the blob's offset
    /// and length in it.
    fn reader(&self, id: &BlobId) -> Result<(Arc<File>, u64, u64)> {
        let index = self.inner.index.read().unwrap_or_else(|p| p.into_inner());
        let location = *index.get(id).ok_or(Error::NotFound(*id))?;
        let cached = self
            .inner
            .readers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&location.segment)
            .cloned();
        let file = match cached {
            Some(file) => file,
            None => {
                // Opened with the index still read-locked: a compaction
                // cannot move the blob and remove the file meanwhile.
                let file = Arc::new(File::open(segment_path(
                    &self.inner.root,
                    location.segment,
                ))?);
                self.inner
                    .readers
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(location.segment, file.clone());
                file
            }
        };
        Ok((file, location.offset, location.len))
    }

    /// Where `id`'s bytes are: the segment file, the offset and the length.
    pub fn location(&self, id: &BlobId) -> Option<(PathBuf, u64, u64)> {
        let index = self.inner.index.read().unwrap_or_else(|p| p.into_inner());
        index
            .get(id)
            .map(|l| (segment_path(&self.inner.root, l.segment), l.offset, l.len))
    }

    /// Refuses every append from now on, as after an append that failed
    /// and could not be taken back (until the next open). For tests of how
    /// callers report a failing disk.
    #[doc(hidden)]
    pub fn refuse_appends(&self) {
        self.active().broken = true;
    }

    /// Closes the segment being appended to (flushed) and starts the next,
    /// so that the closed one can be compacted.
    pub fn roll_now(&self) -> Result<()> {
        let mut active = self.active();
        if active.len > 0 {
            self.roll(&mut active)?;
        }
        Ok(())
    }

    /// For each closed segment: its number, its size and the bytes of it
    /// that live blobs use.
    pub fn usage(&self) -> Result<Vec<(u64, u64, u64)>> {
        let active = self.active().number;
        let mut live: HashMap<u64, u64> = HashMap::new();
        for location in self
            .inner
            .index
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
        {
            *live.entry(location.segment).or_default() += HEADER_LEN + location.len;
        }
        let mut usage = Vec::new();
        for n in 0..active {
            let path = segment_path(&self.inner.root, n);
            match fs::metadata(&path) {
                Ok(meta) => usage.push((n, meta.len(), live.get(&n).copied().unwrap_or(0))),
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(err.into()),
            }
        }
        Ok(usage)
    }

    /// Compacts every closed segment of which less than `live_fraction`
    /// is used by live blobs; returns how many segments were compacted.
    pub fn compact_sparse(&self, live_fraction: f64) -> Result<usize> {
        let mut compacted = 0;
        for (n, size, live) in self.usage()? {
            if (live as f64) < live_fraction * size as f64 {
                self.compact(n)?;
                compacted += 1;
            }
        }
        Ok(compacted)
    }

    /// Rewrites a closed segment without its deleted blobs: its live blobs
    /// are appended to the last segment and flushed, the index points at
    /// the copies, and the old file is removed (and the directory flushed).
    /// A crash in between leaves both copies, which is harmless: the later
    /// one is indexed at the next start. A deletion entry is carried over
    /// while an older segment may still hold the blob it hides.
    pub fn compact(&self, segment: u64) -> Result<()> {
        let _maintenance = self
            .inner
            .maintenance
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if segment >= self.active().number {
            return Err(Error::Format("segment (still being appended to)"));
        }
        let path = segment_path(&self.inner.root, segment);
        let mut entries = HashMap::new();
        let mut deletions = Vec::new();
        scan_entries(&path, &mut |kind, id, offset, len| {
            match kind {
                KIND_BLOB => {
                    entries.insert(id, (offset, len));
                }
                _ => deletions.push(id),
            };
        })?;
        let older = self.usage()?.iter().any(|(n, _, _)| *n < segment);
        let deferred = SegmentStore {
            inner: self.inner.clone(),
            durability: Durability::Deferred,
        };
        let source = File::open(&path)?;
        let mut moved = Vec::new();
        for (id, (offset, len)) in entries {
            let live = self
                .inner
                .index
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .get(&id)
                .is_some_and(|l| l.segment == segment && l.offset == offset);
            if live {
                let mut reader = SegmentReader {
                    file: Arc::new(source.try_clone()?),
                    offset,
                    left: len,
                };
                let location = deferred.append(KIND_BLOB, &id, len, &mut reader)?;
                moved.push((id, offset, location));
            }
        }
        if older {
            for id in deletions {
                if !self.exists(&id)? {
                    deferred.append(KIND_DELETE, &id, 0, &mut io::empty())?;
                }
            }
        }
        self.sync()?;
        {
            let mut index = self.index();
            for (id, old_offset, location) in moved {
                if let Some(current) = index.get_mut(&id) {
                    if current.segment == segment && current.offset == old_offset {
                        *current = location;
                    }
                }
            }
        }
        drop(source);
        self.inner
            .readers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&segment);
        fs::remove_file(&path)?;
        durable::sync_dir(&self.inner.root)?;
        Ok(())
    }

    fn active(&self) -> std::sync::MutexGuard<'_, Active> {
        self.inner.active.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends one entry (header and data) to the active segment, rolling
    /// it first if it is full; returns where the data went.
    fn append(&self, kind: u8, id: &BlobId, len: u64, data: &mut dyn Read) -> Result<Location> {
        let mut active = self.active();
        if active.broken {
            return Err(Error::Io(io::Error::other(
                "an earlier append failed; restart to recover the segment",
            )));
        }
        if active.len >= SEGMENT_SIZE {
            self.roll(&mut active)?;
        }
        let start = active.len;
        let written = (|| -> io::Result<()> {
            let capacity = (HEADER_LEN + len).min(64 << 10) as usize;
            let mut out = io::BufWriter::with_capacity(capacity, &*active.file);
            out.write_all(&header(kind, len, id))?;
            let copied = io::copy(&mut data.take(len), &mut out)?;
            if copied != len {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "blob shorter than announced",
                ));
            }
            out.flush()?;
            Ok(())
        })();
        if let Err(err) = written {
            // Take the partial entry back, so later appends do not follow
            // garbage (which would cut them off at the next start).
            if active.file.set_len(start).is_err() {
                active.broken = true;
            }
            return Err(err.into());
        }
        active.len = start + HEADER_LEN + len;
        let location = Location {
            segment: active.number,
            offset: start + HEADER_LEN,
            len,
        };
        if self.durability == Durability::Immediate {
            // Flushed without holding the appender: other appends go on
            // meanwhile, and one flush may cover several of them.
            let file = active.file.clone();
            drop(active);
            file.sync_data()?;
        }
        Ok(location)
    }

    /// Flushes the full segment and starts the next one.
    fn roll(&self, active: &mut Active) -> Result<()> {
        active.file.sync_data()?;
        let number = active.number + 1;
        let path = segment_path(&self.inner.root, number);
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)?;
        file.sync_all()?;
        durable::sync_dir(&self.inner.root)?;
        active.len = file.metadata()?.len();
        active.file = Arc::new(file);
        active.number = number;
        Ok(())
    }

    fn index(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<BlobId, Location>> {
        self.inner.index.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// Reads a segment's entries into `index`; with `verify`, re-hashes each
/// blob and stops at the first entry that is incomplete or wrong. Returns
/// where the intact entries end.
fn scan(
    path: &Path,
    segment: u64,
    verify: bool,
    index: &mut HashMap<BlobId, Location>,
) -> Result<u64> {
    let file = File::open(path)?;
    let size = file.metadata()?.len();
    let mut reader = BufReader::with_capacity(256 << 10, file);
    let mut offset = 0u64;
    loop {
        if size - offset < HEADER_LEN {
            break;
        }
        let mut h = [0u8; HEADER_LEN as usize];
        reader.read_exact(&mut h)?;
        let Some((kind, len, id)) = parse_header(&h) else {
            break;
        };
        let data_at = offset + HEADER_LEN;
        if size - data_at < len {
            break;
        }
        if verify && kind == KIND_BLOB {
            let mut hasher = Sha256::new();
            let mut left = len;
            let mut buf = vec![0u8; 64 << 10];
            while left > 0 {
                let n = left.min(buf.len() as u64) as usize;
                reader.read_exact(&mut buf[..n])?;
                hasher.update(&buf[..n]);
                left -= n as u64;
            }
            if BlobId::from_bytes(hasher.finalize().into()) != id {
                break;
            }
        } else if len > 0 {
            let skip = i64::try_from(len).map_err(|_| Error::Format("segment entry"))?;
            reader.seek_relative(skip)?;
        }
        match kind {
            KIND_BLOB => {
                index.insert(
                    id,
                    Location {
                        segment,
                        offset: data_at,
                        len,
                    },
                );
            }
            _ => {
                index.remove(&id);
            }
        }
        offset = data_at + len;
    }
    if !verify && offset != size {
        return Err(Error::Format("segment (damaged before its end)"));
    }
    Ok(offset)
}

/// Calls `each(kind, id, data offset, length)` for every entry of a closed
/// segment.
fn scan_entries(path: &Path, each: &mut dyn FnMut(u8, BlobId, u64, u64)) -> Result<()> {
    let file = File::open(path)?;
    let size = file.metadata()?.len();
    let mut reader = BufReader::with_capacity(64 << 10, file);
    let mut offset = 0u64;
    while size - offset >= HEADER_LEN {
        let mut h = [0u8; HEADER_LEN as usize];
        reader.read_exact(&mut h)?;
        let (kind, len, id) = parse_header(&h).ok_or(Error::Format("segment entry"))?;
        let data_at = offset + HEADER_LEN;
        if size - data_at < len {
            return Err(Error::Format("segment entry"));
        }
        each(kind, id, data_at, len);
        reader.seek_relative(i64::try_from(len).map_err(|_| Error::Format("segment entry"))?)?;
        offset = data_at + len;
    }
    Ok(())
}

/// A blob being written: in memory, or in a temporary file once large.
enum Buffer {
    Memory(Vec<u8>),
    File(NamedTempFile),
}

struct SegmentWriter<'a> {
    store: &'a SegmentStore,
    buffer: Buffer,
    len: u64,
    hasher: Sha256,
}

impl Write for SegmentWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Buffer::Memory(bytes) = &self.buffer {
            if bytes.len() + buf.len() > MEMORY_BUFFER {
                let mut file = NamedTempFile::new_in(&self.store.inner.tmp)?;
                file.write_all(bytes)?;
                self.buffer = Buffer::File(file);
            }
        }
        let n = match &mut self.buffer {
            Buffer::Memory(bytes) => {
                bytes.extend_from_slice(buf);
                buf.len()
            }
            Buffer::File(file) => file.write(buf)?,
        };
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl BlobWriter for SegmentWriter<'_> {
    fn commit(self: Box<Self>) -> Result<BlobId> {
        let SegmentWriter {
            store,
            buffer,
            len,
            hasher,
        } = *self;
        let id = BlobId::from_bytes(hasher.finalize().into());
        if store.exists(&id)? {
            // Same content, same address (a fresh data key makes this
            // practically never happen for records). Still flushed: the
            // earlier copy may be a deferred one not yet durable.
            if store.durability == Durability::Immediate {
                store.sync()?;
            }
            return Ok(id);
        }
        let location = match buffer {
            Buffer::Memory(bytes) => store.append(KIND_BLOB, &id, len, &mut bytes.as_slice())?,
            Buffer::File(mut file) => {
                file.flush()?;
                let mut file = file.reopen()?;
                file.seek(SeekFrom::Start(0))?;
                store.append(KIND_BLOB, &id, len, &mut file)?
            }
        };
        store.index().insert(id, location);
        Ok(id)
    }
}

/// Reads one blob's bytes out of its segment.
struct SegmentReader {
    file: Arc<File>,
    offset: u64,
    left: u64,
}

impl Read for SegmentReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = (buf.len() as u64).min(self.left) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.offset)?;
        self.offset += n as u64;
        self.left -= n as u64;
        Ok(n)
    }
}

impl BlobStore for SegmentStore {
    fn writer(&self) -> Result<Box<dyn BlobWriter + '_>> {
        Ok(Box::new(SegmentWriter {
            store: self,
            buffer: Buffer::Memory(Vec::new()),
            len: 0,
            hasher: Sha256::new(),
        }))
    }

    fn get(&self, id: &BlobId) -> Result<Box<dyn Read + Send + '_>> {
        let (file, offset, len) = self.reader(id)?;
        if len <= READ_WHOLE_UP_TO {
            // Small blobs (a FHIR resource): one `pread` of the whole entry.
            let mut bytes = vec![0u8; len as usize];
            file.read_exact_at(&mut bytes, offset)?;
            return Ok(Box::new(VerifyingReader::new(io::Cursor::new(bytes), *id)));
        }
        Ok(Box::new(VerifyingReader::new(
            BufReader::with_capacity(
                64 << 10,
                SegmentReader {
                    file,
                    offset,
                    left: len,
                },
            ),
            *id,
        )))
    }

    fn exists(&self, id: &BlobId) -> Result<bool> {
        let index = self.inner.index.read().unwrap_or_else(|p| p.into_inner());
        Ok(index.contains_key(id))
    }

    fn delete(&self, id: &BlobId) -> Result<bool> {
        let _maintenance = self
            .inner
            .maintenance
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if !self.exists(id)? {
            return Ok(false);
        }
        self.append(KIND_DELETE, id, 0, &mut io::empty())?;
        Ok(self.index().remove(id).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(store: &SegmentStore, id: &BlobId) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        store.get(id)?.read_to_end(&mut out)?;
        Ok(out)
    }

    fn segments(dir: &Path) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = fs::read_dir(dir)
            .expect("ls")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "seg"))
            .collect();
        paths.sort();
        paths
    }

    #[test]
    fn put_get_delete_and_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SegmentStore::open(dir.path()).expect("open");
        let big = vec![7u8; MEMORY_BUFFER + 1000];
        let small = b"ciphertext bytes".to_vec();
        let empty = Vec::new();
        let ids: Vec<BlobId> = [&big, &small, &empty]
            .iter()
            .map(|c| store.put(&mut c.as_slice()).expect("put"))
            .collect();
        assert_eq!(ids[0], BlobId::of(&big));
        assert_eq!(ids[1], BlobId::of(&small));
        assert_eq!(store.put(&mut small.as_slice()).expect("again"), ids[1]);
        for (id, content) in ids.iter().zip([&big, &small, &empty]) {
            assert_eq!(&read_all(&store, id).expect("get"), content);
        }
        assert!(store.delete(&ids[1]).expect("delete"));
        assert!(!store.delete(&ids[1]).expect("delete again"));
        assert!(matches!(store.get(&ids[1]), Err(Error::NotFound(_))));
        // One segment holds them all; nothing is left in tmp.
        assert_eq!(segments(dir.path()).len(), 1);
        assert_eq!(fs::read_dir(dir.path().join("tmp")).expect("ls").count(), 0);

        drop(store);
        let store = SegmentStore::open(dir.path()).expect("reopen");
        assert_eq!(read_all(&store, &ids[0]).expect("get"), big);
        assert!(!store.exists(&ids[1]).expect("exists"));
        assert_eq!(read_all(&store, &ids[2]).expect("get"), empty);
        // Put back after a deletion: visible again, also after a restart.
        store.put(&mut small.as_slice()).expect("put back");
        drop(store);
        let store = SegmentStore::open(dir.path()).expect("reopen");
        assert_eq!(read_all(&store, &ids[1]).expect("get"), small);
    }

    #[test]
    fn segments_roll_and_a_deferred_append_is_flushed_by_sync() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SegmentStore::open(dir.path()).expect("open").deferred();
        let chunk = vec![1u8; (SEGMENT_SIZE / 2) as usize];
        let mut ids = Vec::new();
        for i in 0..3u8 {
            let mut content = chunk.clone();
            content[0] = i;
            ids.push(store.put(&mut content.as_slice()).expect("put"));
        }
        store.sync().expect("sync");
        assert_eq!(segments(dir.path()).len(), 2);
        drop(store);
        let store = SegmentStore::open(dir.path()).expect("reopen");
        for (i, id) in ids.iter().enumerate() {
            let bytes = read_all(&store, id).expect("get");
            assert_eq!(bytes[0], i as u8);
            assert_eq!(bytes.len(), chunk.len());
        }
    }

    #[test]
    fn corruption_is_an_error_not_data() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SegmentStore::open(dir.path()).expect("open");
        let id = store.put(&mut &b"ciphertext bytes"[..]).expect("put");
        let (path, offset, _) = store.location(&id).expect("stored");
        let mut bytes = fs::read(&path).expect("read");
        bytes[offset as usize + 3] ^= 0x10;
        fs::write(&path, &bytes).expect("corrupt");
        let err = read_all(&store, &id).expect_err("corrupt blob must not read");
        assert!(
            matches!(err, Error::Corrupt { id: bad, .. } if bad == id),
            "{err}"
        );
    }

    /// A crash mid-append leaves a torn entry at the end of the segment:
    /// the next start cuts it off (the blob was never acknowledged) and
    /// keeps everything before it; appends continue from there.
    #[test]
    fn a_torn_tail_is_cut_at_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SegmentStore::open(dir.path()).expect("open");
        let kept = store.put(&mut &b"acknowledged"[..]).expect("put");
        let torn = store
            .put(&mut &b"written when the power went"[..])
            .expect("put");
        let (path, _, _) = store.location(&torn).expect("stored");
        drop(store);
        let full = fs::read(&path).expect("read");
        let acknowledged_end = HEADER_LEN as usize + b"acknowledged".len();
        // Every way the second entry can be torn: cut anywhere, or with its
        // data (or its header) not written (zeros, as a file system may
        // leave them).
        let mut variants: Vec<Vec<u8>> = (acknowledged_end..full.len())
            .map(|cut| full[..cut].to_vec())
            .collect();
        let mut zeroed_data = full.clone();
        zeroed_data[acknowledged_end + HEADER_LEN as usize..].fill(0);
        variants.push(zeroed_data);
        let mut zeroed_header = full.clone();
        zeroed_header[acknowledged_end..acknowledged_end + HEADER_LEN as usize].fill(0);
        variants.push(zeroed_header);
        for bytes in variants {
            fs::write(&path, &bytes).expect("tear");
            let store = SegmentStore::open(dir.path()).expect("reopen");
            assert_eq!(
                read_all(&store, &kept).expect("kept"),
                b"acknowledged",
                "{} bytes",
                bytes.len()
            );
            assert!(!store.exists(&torn).expect("exists"));
            assert_eq!(
                fs::metadata(&path).expect("stat").len(),
                acknowledged_end as u64
            );
            let again = store.put(&mut &b"after the crash"[..]).expect("put");
            drop(store);
            let store = SegmentStore::open(dir.path()).expect("reopen");
            assert_eq!(read_all(&store, &again).expect("get"), b"after the crash");
            assert_eq!(read_all(&store, &kept).expect("get"), b"acknowledged");
        }
    }

    /// A segment that is not the last one was flushed whole before the next
    /// was made: damage there is refused at start, not silently cut.
    #[test]
    fn damage_in_an_earlier_segment_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SegmentStore::open(dir.path()).expect("open");
        store.put(&mut &b"one"[..]).expect("put");
        drop(store);
        let first = segments(dir.path())[0].clone();
        let second = dir.path().join(format!("{:016}.seg", 1));
        fs::write(&second, b"").expect("second segment");
        let mut bytes = fs::read(&first).expect("read");
        bytes.truncate(bytes.len() - 1);
        fs::write(&first, &bytes).expect("truncate");
        assert!(matches!(
            SegmentStore::open(dir.path()),
            Err(Error::Format(_))
        ));
    }

    /// Compaction drops deleted blobs' bytes from the disk and keeps the
    /// live ones readable, also after a restart; a deletion whose blob
    /// sits in an older segment stays in force.
    #[test]
    fn compaction_drops_deleted_blobs_and_keeps_the_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SegmentStore::open(dir.path()).expect("open");
        let old = store.put(&mut &b"in the oldest segment"[..]).expect("put");
        store.roll_now().expect("roll");
        let kept = store.put(&mut &b"kept ciphertext"[..]).expect("put");
        let erased = store.put(&mut &b"erased ciphertext"[..]).expect("put");
        assert!(store.delete(&erased).expect("delete"));
        assert!(store.delete(&old).expect("delete"));
        store.roll_now().expect("roll");
        let usage = store.usage().expect("usage");
        assert_eq!(usage.len(), 2);
        assert!(matches!(store.compact(2), Err(Error::Format(_))));
        store.compact(1).expect("compact");
        assert!(!dir.path().join(format!("{:016}.seg", 1)).exists());
        for file in segments(dir.path()) {
            let bytes = fs::read(file).expect("read");
            assert!(!bytes.windows(17).any(|w| w == b"erased ciphertext"));
        }
        assert_eq!(read_all(&store, &kept).expect("get"), b"kept ciphertext");
        assert!(!store.exists(&erased).expect("exists"));
        drop(store);
        let store = SegmentStore::open(dir.path()).expect("reopen");
        assert_eq!(read_all(&store, &kept).expect("get"), b"kept ciphertext");
        assert!(!store.exists(&erased).expect("exists"));
        // The deletion of the blob in segment 0 was carried over.
        assert!(!store.exists(&old).expect("exists"));
        assert_eq!(store.compact_sparse(0.5).expect("compact"), 1);
        let store2 = SegmentStore::open(dir.path()).expect("reopen");
        assert!(!store2.exists(&old).expect("exists"));
        assert_eq!(read_all(&store2, &kept).expect("get"), b"kept ciphertext");
        for file in segments(dir.path()) {
            let bytes = fs::read(file).expect("read");
            assert!(!bytes.windows(21).any(|w| w == b"in the oldest segment"));
        }
    }

    #[test]
    fn a_compacted_segment_keeps_no_open_handle() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SegmentStore::open(dir.path()).expect("open");
        let kept = store.put(&mut &b"kept ciphertext"[..]).expect("put");
        let erased = store.put(&mut &b"erased ciphertext"[..]).expect("put");
        assert_eq!(read_all(&store, &kept).expect("get"), b"kept ciphertext");
        assert_eq!(
            read_all(&store, &erased).expect("get"),
            b"erased ciphertext"
        );
        let open = |store: &SegmentStore| -> Vec<u64> {
            let mut numbers: Vec<u64> = store
                .inner
                .readers
                .read()
                .expect("readers")
                .keys()
                .copied()
                .collect();
            numbers.sort_unstable();
            numbers
        };
        assert_eq!(open(&store), vec![0], "a read keeps its segment open");
        assert!(store.delete(&erased).expect("delete"));
        store.roll_now().expect("roll");
        store.compact(0).expect("compact");
        assert!(!dir.path().join(format!("{:016}.seg", 0)).exists());
        assert!(
            open(&store).is_empty(),
            "the removed segment's handle is dropped with it"
        );
        assert_eq!(read_all(&store, &kept).expect("get"), b"kept ciphertext");
        assert!(matches!(read_all(&store, &erased), Err(Error::NotFound(_))));
        assert_eq!(open(&store), vec![1]);
    }

    #[test]
    fn an_interrupted_writer_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SegmentStore::open(dir.path()).expect("open");
        let mut writer = store.writer().expect("writer");
        writer.write_all(b"half a record").expect("write");
        drop(writer);
        assert!(!store.exists(&BlobId::of(b"half a record")).expect("exists"));
        assert_eq!(
            fs::metadata(&segments(dir.path())[0]).expect("stat").len(),
            0
        );
    }
}
