//! Wrapped data keys, kept apart from the ciphertext, and crypto-shredding.
//!
//! A record's data key exists in exactly two forms: in memory while the
//! record is encrypted or read, and as one [`WrappedKey`] per holder in the
//! key ring. It is never written in the clear, never stored with the
//! ciphertext, and never put on the ledger. So destroying every wrapped copy
//! ([`KeyRing::erase`]) leaves the ciphertext — wherever copies of it went:
//! replicas, backups, caches — as unreadable as random bytes. That is the
//! erasure this design promises (invariant 6): the ledger's salted commitment
//! still verifies, and nothing that remains can open the record.
//!
//! # What erasure relies on, and what it does not promise
//!
//! [`FsKeyRing`] overwrites each wrapped-key file with zeros, flushes it, then
//! unlinks it and flushes the directory. This removes the bytes from the
//! file system's view. It does **not** guarantee physical erasure: SSDs remap
//! writes (wear levelling), copy-on-write and journaling file systems (btrfs,
//! ZFS, APFS, ext4 with `data=journal`) write new blocks instead of
//! overwriting, and snapshots or backups of the key-ring directory keep old
//! copies. The design therefore relies on the key ring living on storage that
//! is itself encrypted and not snapshotted or backed up in the clear (for
//! example a dedicated volume with full-disk encryption), and on holders not
//! keeping unwrapped data keys: a holder who once opened a record may have
//! kept the plaintext, and no cryptography can take that back.
//!
//! Each wrapped key is sealed to a holder's X25519 key, so a copy of the key
//! ring is useless without the holders' private keys; erasure is about the
//! case where those keys are later compromised or compelled.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::blob::BlobId;
use crate::durable;
use crate::error::Result;
use crate::wrap::{RecipientPublicKey, WrappedKey};

/// Storage of the wrapped keys of each record, one per holder.
pub trait KeyRing {
    /// Stores `holder`'s wrapped key for `record`, durably. A holder keeps
    /// the first wrapped key stored for a record (a record's data key never
    /// changes, so any copy is as good): returns `false`, and writes
    /// nothing, when one is already there.
    fn put(&self, record: &BlobId, holder: &RecipientPublicKey, key: &WrappedKey) -> Result<bool>;

    /// The wrapped key of `holder` for `record`, if any: an HPKE
    /// [`WrappedKey`] only (a key in another encoding is refused with
    /// [`crate::Error::UnsupportedVersion`]).
    fn get(&self, record: &BlobId, holder: &RecipientPublicKey) -> Result<Option<WrappedKey>>;

    /// The stored bytes of `holder`'s key for `record`, whatever their
    /// encoding (the first byte is its version: 1 for a [`WrappedKey`], 2
    /// for a [`crate::group::GroupWrappedKey`]).
    fn get_bytes(&self, record: &BlobId, holder: &RecipientPublicKey) -> Result<Option<Vec<u8>>>;

    /// Who holds a wrapped key for `record`.
    fn holders(&self, record: &BlobId) -> Result<Vec<RecipientPublicKey>>;

    /// Destroys `holder`'s wrapped key for `record`. Returns whether there was one.
    fn revoke(&self, record: &BlobId, holder: &RecipientPublicKey) -> Result<bool>;

    /// Destroys every wrapped key of `record` (crypto-shredding). Returns how
    /// many were destroyed.
    fn erase(&self, record: &BlobId) -> Result<usize>;
}

/// A key ring in a directory: `<root>/keys/<record>/<holder>`, each file one
/// 81-byte wrapped key, staged in `<root>/tmp`. Keep `root` apart from the
/// blob store (a different directory, ideally a different volume).
#[derive(Debug, Clone)]
pub struct FsKeyRing {
    keys: PathBuf,
    tmp: PathBuf,
    durability: durable::Durability,
}

impl FsKeyRing {
    /// Opens (creating if needed) a key ring at `root`. Staging files left by
    /// interrupted writes hold wrapped keys, so they are shredded.
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        let keys = root.as_ref().join("keys");
        let tmp = root.as_ref().join("tmp");
        durable::create_dir_all(&keys)?;
        durable::create_dir_all(&tmp)?;
        shred_dir_files(&tmp)?;
        Ok(FsKeyRing {
            keys,
            tmp,
            durability: durable::Durability::Immediate,
        })
    }

    /// The same key ring, writing with [`durable::Durability::Deferred`]:
    /// a wrapped key is durable only after [`durable::sync_filesystem`].
    pub fn deferred(mut self) -> Self {
        self.durability = durable::Durability::Deferred;
        self
    }

    /// Every record with a directory of keys (for a migration).
    pub fn records(&self) -> Result<Vec<BlobId>> {
        let mut records = Vec::new();
        for entry in fs::read_dir(&self.keys)? {
            if let Some(id) = entry?
                .file_name()
                .to_str()
                .and_then(|n| BlobId::from_hex(n).ok())
            {
                records.push(id);
            }
        }
        Ok(records)
    }

    fn record_dir(&self, record: &BlobId) -> PathBuf {
        self.keys.join(record.to_hex())
    }

    fn key_path(&self, record: &BlobId, holder: &RecipientPublicKey) -> PathBuf {
        self.record_dir(record).join(holder.to_hex())
    }

    /// Like [`KeyRing::put`] for a key in another encoding (a
    /// [`crate::group::GroupWrappedKey`]): stored, shredded and erased like
    /// any wrapped key of the record. [`KeyRing::get`] refuses it
    /// ([`crate::Error::UnsupportedVersion`]); read it with
    /// [`KeyRing::get_bytes`].
    pub fn put_bytes(
        &self,
        record: &BlobId,
        holder: &RecipientPublicKey,
        bytes: &[u8],
    ) -> Result<bool> {
        let path = self.key_path(record, holder);
        if path.try_exists()? {
            return Ok(false);
        }
        durable::write_file(&self.tmp, &path, bytes, self.durability)?;
        Ok(true)
    }
}

impl KeyRing for FsKeyRing {
    fn put(&self, record: &BlobId, holder: &RecipientPublicKey, key: &WrappedKey) -> Result<bool> {
        let path = self.key_path(record, holder);
        if path.try_exists()? {
            return Ok(false);
        }
        durable::write_file(&self.tmp, &path, &key.to_bytes(), self.durability)?;
        Ok(true)
    }

    fn get(&self, record: &BlobId, holder: &RecipientPublicKey) -> Result<Option<WrappedKey>> {
        match fs::read(self.key_path(record, holder)) {
            Ok(bytes) => Ok(Some(WrappedKey::from_bytes(&bytes)?)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    fn get_bytes(&self, record: &BlobId, holder: &RecipientPublicKey) -> Result<Option<Vec<u8>>> {
        match fs::read(self.key_path(record, holder)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    fn holders(&self, record: &BlobId) -> Result<Vec<RecipientPublicKey>> {
        let entries = match fs::read_dir(self.record_dir(record)) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(err.into()),
        };
        let mut holders = Vec::new();
        for entry in entries {
            let name = entry?.file_name();
            if let Some(holder) = name
                .to_str()
                .and_then(|name| RecipientPublicKey::from_hex(name).ok())
            {
                holders.push(holder);
            }
        }
        holders.sort();
        Ok(holders)
    }

    fn revoke(&self, record: &BlobId, holder: &RecipientPublicKey) -> Result<bool> {
        Ok(durable::shred_file(&self.key_path(record, holder))?)
    }

    fn erase(&self, record: &BlobId) -> Result<usize> {
        let dir = self.record_dir(record);
        if !dir.try_exists()? {
            return Ok(0);
        }
        let destroyed = shred_dir_files(&dir)?;
        fs::remove_dir(&dir)?;
        durable::sync_dir(&self.keys)?;
        Ok(destroyed)
    }
}

/// Shreds every file directly in `dir`; returns how many.
fn shred_dir_files(dir: &Path) -> Result<usize> {
    let mut shredded = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() && durable::shred_file(&entry.path())? {
            shredded += 1;
        }
    }
    Ok(shredded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::DataKey;
    use crate::wrap::{unwrap, wrap, RecipientKey};

    #[test]
    fn put_get_holders_revoke_erase() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ring = FsKeyRing::open(dir.path()).expect("open");
        let record = BlobId::of(b"record");
        let key = DataKey::generate().expect("rng");
        let alice = RecipientKey::generate().expect("rng");
        let bob = RecipientKey::generate().expect("rng");

        assert_eq!(ring.holders(&record).expect("holders"), vec![]);
        for holder in [&alice, &bob] {
            let wrapped = wrap(&key, &record, holder.public_key()).expect("wrap");
            assert!(ring
                .put(&record, holder.public_key(), &wrapped)
                .expect("put"));
        }
        // A second grant to the same holder keeps the first copy.
        let again = wrap(&key, &record, alice.public_key()).expect("wrap");
        assert!(!ring.put(&record, alice.public_key(), &again).expect("put"));

        let mut expected = vec![*alice.public_key(), *bob.public_key()];
        expected.sort();
        assert_eq!(ring.holders(&record).expect("holders"), expected);
        let wrapped = ring
            .get(&record, bob.public_key())
            .expect("get")
            .expect("some");
        assert_eq!(unwrap(&wrapped, &record, &bob).expect("unwrap"), key);

        assert!(ring.revoke(&record, bob.public_key()).expect("revoke"));
        assert!(!ring
            .revoke(&record, bob.public_key())
            .expect("revoke again"));
        assert_eq!(ring.get(&record, bob.public_key()).expect("get"), None);
        assert_eq!(
            ring.holders(&record).expect("holders"),
            vec![*alice.public_key()]
        );

        assert_eq!(ring.erase(&record).expect("erase"), 1);
        assert_eq!(ring.holders(&record).expect("holders"), vec![]);
        assert_eq!(ring.get(&record, alice.public_key()).expect("get"), None);
        assert_eq!(ring.erase(&record).expect("erase again"), 0);
        assert_eq!(
            fs::read_dir(dir.path().join("keys")).expect("ls").count(),
            0
        );
    }

    #[test]
    fn open_shreds_interrupted_writes() {
        let dir = tempfile::tempdir().expect("tempdir");
        FsKeyRing::open(dir.path()).expect("open");
        let stale = dir.path().join("tmp").join(".tmpXYZ");
        fs::write(&stale, [1u8; 81]).expect("write");
        let witness = dir.path().join("witness");
        fs::hard_link(&stale, &witness).expect("link");
        FsKeyRing::open(dir.path()).expect("reopen");
        assert!(!stale.exists());
        assert_eq!(fs::read(&witness).expect("read"), vec![0u8; 81]);
    }
}
