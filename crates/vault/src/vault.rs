//! The vault: records encrypted into a [`BlobStore`], their data keys
//! wrapped per holder into a [`KeyRing`].

use std::io::{Read, Write};

use crate::blob::{BlobId, BlobStore};
use crate::error::{Error, Result};
use crate::group;
use crate::keyring::KeyRing;
use crate::stream::{self, DataKey, RecordInfo};
use crate::wrap::{self, RecipientKey, RecipientPublicKey};

/// Encrypted, content-addressed records with per-holder keys.
#[derive(Debug)]
pub struct Vault<B, K> {
    blobs: B,
    keys: K,
}

/// What [`Vault::erase`] destroyed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Erasure {
    /// Wrapped copies of the data key destroyed: after this, none is left.
    pub wrapped_keys_destroyed: usize,
    /// Whether the local ciphertext was there to delete. Copies elsewhere
    /// (replicas, backups) stay, unreadable.
    pub ciphertext_deleted: bool,
}

impl<B: BlobStore, K: KeyRing> Vault<B, K> {
    pub fn new(blobs: B, keys: K) -> Self {
        Vault { blobs, keys }
    }

    pub fn blobs(&self) -> &B {
        &self.blobs
    }

    pub fn keys(&self) -> &K {
        &self.keys
    }

    /// Encrypts a record under a fresh data key, stores the ciphertext and
    /// wraps the key for each holder. Returns the record's address. Once
    /// this returns, the ciphertext and every wrapped key are durable; if it
    /// fails part-way, at worst a ciphertext nobody can decrypt is left.
    pub fn store(
        &self,
        media_type: &str,
        plaintext: impl Read,
        holders: &[RecipientPublicKey],
    ) -> Result<BlobId> {
        if holders.is_empty() {
            return Err(Error::NoHolders);
        }
        let key = DataKey::generate()?;
        let mut writer = self.blobs.writer()?;
        stream::encrypt(&key, media_type, plaintext, &mut writer)?;
        let record = writer.commit()?;
        for holder in holders {
            let wrapped = wrap::wrap(&key, &record, holder)?;
            self.keys.put(&record, holder, &wrapped)?;
        }
        Ok(record)
    }

    /// Decrypts a record for one of its holders into `output`. As with
    /// [`stream::decrypt`], output written before an error must be
    /// discarded.
    pub fn open(
        &self,
        record: &BlobId,
        holder: &RecipientKey,
        output: impl Write,
    ) -> Result<RecordInfo> {
        let key = self.data_key(record, holder)?;
        stream::decrypt(&key, self.blobs.get(record)?, output)
    }

    /// Gives `to` access to a record that `by` already holds.
    /// Returns `false` if `to` already held it.
    pub fn grant(
        &self,
        record: &BlobId,
        by: &RecipientKey,
        to: &RecipientPublicKey,
    ) -> Result<bool> {
        let key = self.data_key(record, by)?;
        let wrapped = wrap::wrap(&key, record, to)?;
        self.keys.put(record, to, &wrapped)
    }

    /// Destroys one holder's wrapped key. It cannot take back a data key or
    /// plaintext the holder already obtained.
    pub fn revoke(&self, record: &BlobId, holder: &RecipientPublicKey) -> Result<bool> {
        self.keys.revoke(record, holder)
    }

    /// Crypto-shreds a record: destroys every wrapped key first (which alone
    /// makes every copy of the ciphertext undecryptable), then deletes the
    /// local ciphertext.
    pub fn erase(&self, record: &BlobId) -> Result<Erasure> {
        let wrapped_keys_destroyed = self.keys.erase(record)?;
        let ciphertext_deleted = self.blobs.delete(record)?;
        Ok(Erasure {
            wrapped_keys_destroyed,
            ciphertext_deleted,
        })
    }

    /// The holder's copy of the data key, sealed to them or wrapped under
    /// a group key sealed to them ([`group::open_copy`]).
    fn data_key(&self, record: &BlobId, holder: &RecipientKey) -> Result<DataKey> {
        group::open_copy(&self.keys, record, holder)
    }
}
