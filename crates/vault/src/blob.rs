//! Content-addressed storage of ciphertext.
//!
//! A blob is stored under the SHA-256 of its bytes ([`BlobId`]), computed
//! while it streams in. Reading it back re-computes the hash as it streams
//! out, and a blob that no longer matches its address ends in an error
//! ([`Error::Corrupt`]) rather than quietly handing back different bytes.
//!
//! The vault stores only ciphertext here; a record's [`BlobId`] is also its
//! identifier everywhere else (key wrapping, the key ring, commitments).

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;

use crate::durable;
use crate::error::{Error, Result};

/// The SHA-256 of a blob's bytes: its address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobId([u8; 32]);

impl BlobId {
    /// The address of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        BlobId(Sha256::digest(bytes).into())
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        BlobId(bytes)
    }
}

crate::digest::hex_digest!(BlobId, "blob id");

/// A blob being written. Nothing is visible under any address until
/// [`commit`](BlobWriter::commit) returns; dropping the writer instead
/// discards what was written.
pub trait BlobWriter: Write {
    /// Makes the blob durable and returns its address. When this returns,
    /// the blob survives a crash or power loss.
    fn commit(self: Box<Self>) -> Result<BlobId>;
}

/// Content-addressed blob storage.
pub trait BlobStore {
    /// Starts a streaming write.
    fn writer(&self) -> Result<Box<dyn BlobWriter + '_>>;

    /// Streams a blob from `source` and stores it durably.
    fn put(&self, source: &mut dyn Read) -> Result<BlobId> {
        let mut writer = self.writer()?;
        io::copy(source, &mut writer)?;
        writer.commit()
    }

    /// Opens a blob for streaming. The reader re-hashes what it returns and,
    /// if the blob is corrupt, fails at the end instead of reporting end of
    /// input (with an `io::Error` that converts into [`Error::Corrupt`]).
    /// Bytes are only known to be intact once the reader reached its end.
    fn get(&self, id: &BlobId) -> Result<Box<dyn Read + Send + '_>>;

    /// Whether a blob is stored under `id`.
    fn exists(&self, id: &BlobId) -> Result<bool>;

    /// Deletes a blob durably. Returns whether it existed.
    fn delete(&self, id: &BlobId) -> Result<bool>;
}

/// Blobs as files: `<root>/ab/cd/abcd…` (the first two bytes of the hex
/// address as two directory levels), staged in `<root>/tmp`.
///
/// Writes go to a temporary file, are flushed with `fsync`, renamed into
/// place and the directory is flushed, so an acknowledged blob is durable and
/// a crash never leaves a partial blob under an address. One process should
/// own a directory: [`open`](FsBlobStore::open) deletes staging files left
/// by interrupted writes.
#[derive(Debug, Clone)]
pub struct FsBlobStore {
    root: PathBuf,
    tmp: PathBuf,
    durability: durable::Durability,
}

impl FsBlobStore {
    /// Opens (creating if needed) a store rooted at `root`.
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        let tmp = durable::empty_tmp_dir(&root)?;
        Ok(FsBlobStore {
            root,
            tmp,
            durability: durable::Durability::Immediate,
        })
    }

    /// The same store, writing with [`durable::Durability::Deferred`]: a
    /// blob is durable only after [`durable::sync_filesystem`].
    pub fn deferred(mut self) -> Self {
        self.durability = durable::Durability::Deferred;
        self
    }

    /// Every blob stored (by the names of their files; for a migration).
    pub fn ids(&self) -> Result<Vec<BlobId>> {
        let mut ids = Vec::new();
        for level1 in fs::read_dir(&self.root)? {
            let level1 = level1?;
            if level1.file_name() == "tmp" || !level1.file_type()?.is_dir() {
                continue;
            }
            for level2 in fs::read_dir(level1.path())? {
                let level2 = level2?;
                if !level2.file_type()?.is_dir() {
                    continue;
                }
                for file in fs::read_dir(level2.path())? {
                    if let Some(id) = file?
                        .file_name()
                        .to_str()
                        .and_then(|n| BlobId::from_hex(n).ok())
                    {
                        ids.push(id);
                    }
                }
            }
        }
        Ok(ids)
    }

    /// Where the blob `id` lives.
    pub fn path(&self, id: &BlobId) -> PathBuf {
        let hex = id.to_hex();
        self.root.join(&hex[0..2]).join(&hex[2..4]).join(hex)
    }
}

struct FsBlobWriter<'a> {
    store: &'a FsBlobStore,
    file: NamedTempFile,
    hasher: Sha256,
}

impl Write for FsBlobWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl BlobWriter for FsBlobWriter<'_> {
    fn commit(self: Box<Self>) -> Result<BlobId> {
        let FsBlobWriter {
            store,
            mut file,
            hasher,
        } = *self;
        file.flush()?;
        let id = BlobId(hasher.finalize().into());
        // Same content, same address: replacing an existing blob is harmless
        // (and repairs it if it had rotted).
        durable::persist(file, &store.path(&id), store.durability)?;
        Ok(id)
    }
}

impl BlobStore for FsBlobStore {
    fn writer(&self) -> Result<Box<dyn BlobWriter + '_>> {
        Ok(Box::new(FsBlobWriter {
            store: self,
            file: NamedTempFile::new_in(&self.tmp)?,
            hasher: Sha256::new(),
        }))
    }

    fn get(&self, id: &BlobId) -> Result<Box<dyn Read + Send + '_>> {
        let file = match File::open(self.path(id)) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Err(Error::NotFound(*id)),
            Err(err) => return Err(err.into()),
        };
        Ok(Box::new(VerifyingReader {
            inner: BufReader::new(file),
            hasher: Sha256::new(),
            expected: *id,
            state: ReadState::Reading,
        }))
    }

    fn exists(&self, id: &BlobId) -> Result<bool> {
        Ok(self.path(id).try_exists()?)
    }

    fn delete(&self, id: &BlobId) -> Result<bool> {
        let path = self.path(id);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(err) => return Err(err.into()),
        }
        if let Some(dir) = path.parent() {
            durable::sync_dir(dir)?;
        }
        Ok(true)
    }
}

#[derive(Clone, Copy)]
enum ReadState {
    Reading,
    Verified,
    Corrupt(BlobId),
}

/// Hashes what passes through and checks the hash at end of input.
pub(crate) struct VerifyingReader<R> {
    inner: R,
    hasher: Sha256,
    expected: BlobId,
    state: ReadState,
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let ReadState::Corrupt(actual) = self.state {
            return Err(self.corrupt(actual));
        }
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.hasher.update(&buf[..n]);
        } else if !buf.is_empty() && matches!(self.state, ReadState::Reading) {
            let actual = BlobId(self.hasher.finalize_reset().into());
            if actual != self.expected {
                self.state = ReadState::Corrupt(actual);
                return Err(self.corrupt(actual));
            }
            self.state = ReadState::Verified;
        }
        Ok(n)
    }
}

impl<R> VerifyingReader<R> {
    pub(crate) fn new(inner: R, expected: BlobId) -> Self {
        VerifyingReader {
            inner,
            hasher: Sha256::new(),
            expected,
            state: ReadState::Reading,
        }
    }

    fn corrupt(&self, actual: BlobId) -> io::Error {
        Error::Corrupt {
            id: self.expected,
            actual,
        }
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(store: &FsBlobStore, id: &BlobId) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        store.get(id)?.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn put_get_exists_delete() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FsBlobStore::open(dir.path()).expect("open");
        let content = vec![42u8; 200_000];
        let id = store.put(&mut &content[..]).expect("put");
        assert_eq!(id, BlobId::of(&content));
        let hex = id.to_hex();
        let expected_path = dir.path().join(&hex[..2]).join(&hex[2..4]).join(&hex);
        assert_eq!(store.path(&id), expected_path);
        assert!(expected_path.is_file());
        assert!(store.exists(&id).expect("exists"));
        assert_eq!(read_all(&store, &id).expect("get"), content);

        // Storing the same bytes again gives the same address.
        assert_eq!(store.put(&mut &content[..]).expect("put again"), id);

        assert!(store.delete(&id).expect("delete"));
        assert!(!store.exists(&id).expect("exists"));
        assert!(!store.delete(&id).expect("delete again"));
        assert!(matches!(store.get(&id), Err(Error::NotFound(missing)) if missing == id));
    }

    #[test]
    fn empty_blob() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FsBlobStore::open(dir.path()).expect("open");
        let id = store.put(&mut io::empty()).expect("put");
        assert_eq!(
            id.to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(read_all(&store, &id).expect("get"), b"");
    }

    #[test]
    fn corruption_is_an_error_not_data() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FsBlobStore::open(dir.path()).expect("open");
        let id = store.put(&mut &b"ciphertext bytes"[..]).expect("put");
        let mut bytes = fs::read(store.path(&id)).expect("read");
        bytes[3] ^= 0x10;
        fs::write(store.path(&id), &bytes).expect("corrupt");

        let err = read_all(&store, &id).expect_err("corrupt blob must not read");
        assert!(
            matches!(err, Error::Corrupt { id: bad, .. } if bad == id),
            "{err}"
        );

        // A truncated blob too.
        fs::write(store.path(&id), b"ciphertext").expect("truncate");
        assert!(matches!(read_all(&store, &id), Err(Error::Corrupt { .. })));
    }

    #[test]
    fn nothing_is_visible_until_commit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FsBlobStore::open(dir.path()).expect("open");
        let mut writer = store.writer().expect("writer");
        writer.write_all(b"half a record").expect("write");
        let id = BlobId::of(b"half a record");
        assert!(!store.exists(&id).expect("exists"));
        drop(writer);
        assert!(!store.exists(&id).expect("exists"));
        assert_eq!(fs::read_dir(dir.path().join("tmp")).expect("ls").count(), 0);
    }

    #[test]
    fn open_removes_interrupted_writes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FsBlobStore::open(dir.path()).expect("open");
        let mut writer = store.writer().expect("writer");
        writer.write_all(b"interrupted").expect("write");
        // Simulate a crash: the staging file stays behind.
        std::mem::forget(writer);
        assert_eq!(fs::read_dir(dir.path().join("tmp")).expect("ls").count(), 1);
        FsBlobStore::open(dir.path()).expect("reopen");
        assert_eq!(fs::read_dir(dir.path().join("tmp")).expect("ls").count(), 0);
    }

    #[test]
    fn blob_ids_parse_and_print() {
        let id = BlobId::of(b"abc");
        let hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(id.to_string(), hex);
        assert_eq!(hex.parse::<BlobId>().expect("parse"), id);
        assert_eq!(BlobId::from_hex(&hex.to_uppercase()).expect("parse"), id);
        for bad in [
            "",
            "ab",
            &hex[1..],
            &format!("{hex}00"),
            &hex.replace('a', "g"),
        ] {
            assert!(BlobId::from_hex(bad).is_err(), "{bad}");
        }
    }
}
