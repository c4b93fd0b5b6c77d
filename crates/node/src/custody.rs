//! The node as custodian of records: the vault in its data directory, the
//! node's custodial X25519 key, and what the node keeps about each record
//! off the ledger (its address, its commitment's salt, the author's
//! provenance signature).
//!
//! Layout under `<data-dir>/vault/`: `blobs/` (ciphertexts, content
//! addressed), `keyring/` (wrapped data keys, one file per holder),
//! `custody.redb` (record metadata and break-glass justifications) and
//! `custodial.key` (the node's X25519 private key, mode 0600).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use hygeia_vault::{
    BlobId, BlobStore, Commitment, DataKey, Erasure, FsBlobStore, FsKeyRing, KeyRing, RecipientKey,
    RecipientPublicKey, RecordInfo, Salt, Vault,
};
use redb::{ReadableDatabase, TableDefinition};
use serde::{Deserialize, Serialize};

/// commitment (hex) → [`RecordMeta`] as JSON.
const RECORDS: TableDefinition<&str, &[u8]> = TableDefinition::new("records");
/// leaf hash (hex) of an access event → its justification.
const NOTES: TableDefinition<&str, &str> = TableDefinition::new("justifications");

pub const CUSTODIAL_KEY_FILE: &str = "custodial.key";

#[derive(Debug, thiserror::Error)]
pub enum CustodyError {
    #[error(transparent)]
    Vault(#[from] hygeia_vault::Error),
    #[error("custody metadata: {0}")]
    Meta(String),
    #[error("custodial key file {path}: {message}")]
    Key { path: PathBuf, message: String },
}

fn meta_err(e: impl std::fmt::Display) -> CustodyError {
    CustodyError::Meta(e.to_string())
}

/// What the node keeps about a record, off the ledger.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RecordMeta {
    /// The ciphertext's address (hex SHA-256).
    pub blob: String,
    /// The salt of the record's commitment (hex).
    pub salt: String,
    pub media_type: String,
    pub author: String,
    /// The author's Ed25519 signature over the record (base64url), see
    /// docs/records.md.
    pub provenance: String,
    /// Plaintext length in bytes.
    pub size: u64,
}

/// A record just encrypted into the vault, not yet on the ledger.
pub struct Stored {
    pub blob: BlobId,
    pub commitment: Commitment,
    pub salt: Salt,
}

pub struct Custody {
    vault: Vault<FsBlobStore, FsKeyRing>,
    /// The same stores, writing without flushing each file: for batches
    /// made durable together by [`Custody::sync`] (a group commit).
    deferred: Vault<FsBlobStore, FsKeyRing>,
    dir: PathBuf,
    custodial: RecipientKey,
    meta: redb::Database,
    /// Data keys of recently read records, so a busy record is not
    /// unwrapped (an X25519 operation and a file read) on every read.
    /// Erasure removes a record's key from here before destroying the
    /// wrapped copies; the cache lives in memory only and is bounded.
    recent_keys: Mutex<RecentKeys>,
}

#[derive(Default)]
struct RecentKeys {
    keys: HashMap<BlobId, DataKey>,
    /// Records erased since start: their keys are never cached again, even
    /// by a read that unwrapped one just before it was destroyed.
    erased: std::collections::HashSet<BlobId>,
}

/// Most data keys kept in memory.
const RECENT_KEYS: usize = 4096;

impl Custody {
    pub fn open(dir: &Path) -> Result<Custody, CustodyError> {
        let blobs = FsBlobStore::open(dir.join("blobs"))?;
        let keys = FsKeyRing::open(dir.join("keyring"))?;
        let custodial = load_or_create_key(&dir.join(CUSTODIAL_KEY_FILE))?;
        let meta = redb::Database::create(dir.join("custody.redb")).map_err(meta_err)?;
        let txn = meta.begin_write().map_err(meta_err)?;
        txn.open_table(RECORDS).map_err(meta_err)?;
        txn.open_table(NOTES).map_err(meta_err)?;
        txn.commit().map_err(meta_err)?;
        Ok(Custody {
            deferred: Vault::new(blobs.clone().deferred(), keys.clone().deferred()),
            vault: Vault::new(blobs, keys),
            dir: dir.to_owned(),
            custodial,
            meta,
            recent_keys: Mutex::new(RecentKeys::default()),
        })
    }

    pub fn custodial_public(&self) -> &RecipientPublicKey {
        self.custodial.public_key()
    }

    /// Encrypts a record for the patient and the node and commits to it.
    pub fn store(
        &self,
        media_type: &str,
        plaintext: impl Read,
        patient: &RecipientPublicKey,
    ) -> Result<Stored, CustodyError> {
        self.store_in(&self.vault, media_type, plaintext, patient)
    }

    /// Like [`Custody::store`], but the files are not flushed: call
    /// [`Custody::sync`] before anything refers to the record durably.
    pub fn store_deferred(
        &self,
        media_type: &str,
        plaintext: impl Read,
        patient: &RecipientPublicKey,
    ) -> Result<Stored, CustodyError> {
        self.store_in(&self.deferred, media_type, plaintext, patient)
    }

    fn store_in(
        &self,
        vault: &Vault<FsBlobStore, FsKeyRing>,
        media_type: &str,
        plaintext: impl Read,
        patient: &RecipientPublicKey,
    ) -> Result<Stored, CustodyError> {
        let holders = [*patient, *self.custodial.public_key()];
        let blob = vault.store(media_type, plaintext, &holders)?;
        let (commitment, salt) = Commitment::commit(&blob)?;
        Ok(Stored {
            blob,
            commitment,
            salt,
        })
    }

    /// Makes every deferred write durable (one `syncfs`).
    pub fn sync(&self) -> Result<(), CustodyError> {
        hygeia_vault::sync_filesystem(&self.dir).map_err(|e| CustodyError::Vault(e.into()))
    }

    /// Saves the metadata of many records in one transaction.
    pub fn save_metas(&self, metas: &[(&str, &RecordMeta)]) -> Result<(), CustodyError> {
        let txn = self.meta.begin_write().map_err(meta_err)?;
        {
            let mut table = txn.open_table(RECORDS).map_err(meta_err)?;
            for (commitment, meta) in metas {
                let json = serde_json::to_vec(meta).map_err(meta_err)?;
                table
                    .insert(*commitment, json.as_slice())
                    .map_err(meta_err)?;
            }
        }
        txn.commit().map_err(meta_err)
    }

    /// Deletes what [`Custody::store`] wrote for a record that will not
    /// reach the ledger.
    pub fn discard(&self, blob: &BlobId) -> Result<(), CustodyError> {
        self.vault.erase(blob)?;
        Ok(())
    }

    pub fn save_meta(&self, commitment: &str, meta: &RecordMeta) -> Result<(), CustodyError> {
        let json = serde_json::to_vec(meta).map_err(meta_err)?;
        let txn = self.meta.begin_write().map_err(meta_err)?;
        txn.open_table(RECORDS)
            .map_err(meta_err)?
            .insert(commitment, json.as_slice())
            .map_err(meta_err)?;
        txn.commit().map_err(meta_err)
    }

    pub fn meta(&self, commitment: &str) -> Result<Option<RecordMeta>, CustodyError> {
        let txn = self.meta.begin_read().map_err(meta_err)?;
        let table = txn.open_table(RECORDS).map_err(meta_err)?;
        let Some(value) = table.get(commitment).map_err(meta_err)? else {
            return Ok(None);
        };
        serde_json::from_slice(value.value())
            .map(Some)
            .map_err(meta_err)
    }

    /// Decrypts a record with the node's custodial key into `output`.
    pub fn open_record(
        &self,
        meta: &RecordMeta,
        output: impl Write,
    ) -> Result<RecordInfo, CustodyError> {
        let blob = BlobId::from_hex(&meta.blob)?;
        let key = self.data_key(&blob)?;
        Ok(hygeia_vault::decrypt(
            &key,
            self.vault.blobs().get(&blob)?,
            output,
        )?)
    }

    fn data_key(&self, blob: &BlobId) -> Result<DataKey, CustodyError> {
        if let Some(key) = self.recent().keys.get(blob) {
            return Ok(key.clone());
        }
        let wrapped = self
            .vault
            .keys()
            .get(blob, self.custodial.public_key())?
            .ok_or(hygeia_vault::Error::NoKey)?;
        let key = hygeia_vault::unwrap(&wrapped, blob, &self.custodial)?;
        let mut recent = self.recent();
        if !recent.erased.contains(blob) {
            if recent.keys.len() >= RECENT_KEYS {
                recent.keys.clear();
            }
            recent.keys.insert(*blob, key.clone());
        }
        Ok(key)
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, RecentKeys> {
        self.recent_keys.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Crypto-shreds a record: every wrapped copy of its data key, then the
    /// local ciphertext, then what the node kept about it (the salt that
    /// links the commitment to the ciphertext, its address, media type and
    /// provenance). Safe to repeat.
    pub fn erase(&self, commitment: &str) -> Result<Option<Erasure>, CustodyError> {
        let Some(meta) = self.meta(commitment)? else {
            return Ok(None);
        };
        let blob = BlobId::from_hex(&meta.blob)?;
        {
            let mut recent = self.recent();
            recent.erased.insert(blob);
            recent.keys.remove(&blob);
        }
        let erasure = self.vault.erase(&blob)?;
        let txn = self.meta.begin_write().map_err(meta_err)?;
        txn.open_table(RECORDS)
            .map_err(meta_err)?
            .remove(commitment)
            .map_err(meta_err)?;
        txn.commit().map_err(meta_err)?;
        Ok(Some(erasure))
    }

    /// Whether any wrapped key for the record is left.
    pub fn holders(&self, meta: &RecordMeta) -> Result<usize, CustodyError> {
        let blob = BlobId::from_hex(&meta.blob)?;
        Ok(self.vault.keys().holders(&blob)?.len())
    }

    pub fn blob_path(&self, meta: &RecordMeta) -> Result<PathBuf, CustodyError> {
        Ok(self.vault.blobs().path(&BlobId::from_hex(&meta.blob)?))
    }

    pub fn blob_exists(&self, meta: &RecordMeta) -> Result<bool, CustodyError> {
        Ok(self.vault.blobs().exists(&BlobId::from_hex(&meta.blob)?)?)
    }

    pub fn save_note(&self, key: &str, justification: &str) -> Result<(), CustodyError> {
        let txn = self.meta.begin_write().map_err(meta_err)?;
        txn.open_table(NOTES)
            .map_err(meta_err)?
            .insert(key, justification)
            .map_err(meta_err)?;
        txn.commit().map_err(meta_err)
    }

    pub fn note(&self, key: &str) -> Result<Option<String>, CustodyError> {
        let txn = self.meta.begin_read().map_err(meta_err)?;
        let table = txn.open_table(NOTES).map_err(meta_err)?;
        Ok(table
            .get(key)
            .map_err(meta_err)?
            .map(|v| v.value().to_owned()))
    }
}

/// The custodial key: 32 bytes, hex, in a file only the node's user reads.
fn load_or_create_key(path: &Path) -> Result<RecipientKey, CustodyError> {
    let key_error = |message: String| CustodyError::Key {
        path: path.to_owned(),
        message,
    };
    if path.exists() {
        use std::os::unix::fs::PermissionsExt;
        let metadata = std::fs::metadata(path).map_err(|e| key_error(e.to_string()))?;
        if metadata.permissions().mode() & 0o077 != 0 {
            return Err(key_error(
                "readable by other users; chmod 600 it (and consider the key compromised)".into(),
            ));
        }
        let text = std::fs::read_to_string(path).map_err(|e| key_error(e.to_string()))?;
        let bytes = hex::decode(text.trim()).map_err(|e| key_error(e.to_string()))?;
        return RecipientKey::from_bytes(&bytes).map_err(|e| key_error(e.to_string()));
    }
    let key = RecipientKey::generate()?;
    let mut file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| key_error(e.to_string()))?
    };
    let text = zeroize::Zeroizing::new(hex::encode(*key.to_bytes()));
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| key_error(e.to_string()))?;
    Ok(key)
}

/// Erasure against every file the vault keeps (was the `erasure` test
/// binary; a unit test here links nothing more).
#[cfg(test)]
mod erasure_tests;
