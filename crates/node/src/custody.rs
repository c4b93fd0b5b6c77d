//! The node as custodian of records: the vault in its data directory, the
//! node's custodial X25519 key, and what the node keeps about each record
//! off the ledger (its address, its commitment's salt, the author's
//! provenance signature).
//!
//! Layout under `<data-dir>/vault/`: `segments/` (ciphertexts, content
//! addressed, packed in append-only segment files, see
//! [`hygeia_vault::segment`]), `keys/keys.slots` (wrapped data keys in
//! fixed slots, erased in place, see [`hygeia_vault::slots`]; the node's
//! copy wrapped under the patient's group key, which is itself kept there
//! sealed to the custodial key, and the patient's copy wrapped under the
//! key of a patient-copy generation, kept there sealed to the patient, see
//! [`hygeia_vault::group`]),
//! `custody.redb` (record metadata and break-glass justifications) and
//! `custodial.key` (the node's X25519 private key, mode 0600).
//!
//! A data directory written before segments (`blobs/`, a file per
//! ciphertext, and `keyring/`, a file per wrapped key) is migrated at
//! start: see [`migrate_legacy`].

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use hygeia_vault::group::{self, GroupId, GroupKey, GroupWrappedKey, GROUP_WRAPPED_KEY_VERSION};
use hygeia_vault::{
    BlobId, BlobStore, Commitment, DataKey, Erasure, FsBlobStore, FsKeyRing, KeyRing, RecipientKey,
    RecipientPublicKey, RecordInfo, Salt, SegmentStore, SlotKeyRing, Vault, WrappedKey,
};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

/// commitment ([`record_key`]: a hex commitment as its 32 bytes) →
/// [`RecordMeta`] ([`meta_row`]).
const RECORDS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("records_by_bytes");
/// commitment (hex text) → [`RecordMeta`]: files written before
/// [`RECORDS`]; its rows are moved into it at open ([`move_text_keyed_rows`]).
const LEGACY_RECORDS: TableDefinition<&str, &[u8]> = TableDefinition::new("records");
/// Rows of [`LEGACY_RECORDS`] moved per write transaction at open.
const MOVE_CHUNK: usize = 4096;

/// The key of a record's row: a commitment that is 64 lowercase hex digits
/// as the 32 bytes they spell (half the key, and every commitment the node
/// makes is one); any other text as `"text:"` and its bytes, one zero byte
/// added if that is 32 bytes long, so that no text's key is a 32-byte one.
fn record_key(commitment: &str) -> Vec<u8> {
    if let Some(bytes) = hex::decode(commitment)
        .ok()
        .filter(|b| b.len() == 32 && hex::encode(b) == commitment)
    {
        return bytes;
    }
    let mut key = b"text:".to_vec();
    key.extend_from_slice(commitment.as_bytes());
    if key.len() == 32 {
        key.push(0);
    }
    key
}

/// Moves the rows of a file written before [`RECORDS`] into it,
/// [`MOVE_CHUNK`] per write transaction (each row is in exactly one of the
/// two tables at every commit, and both are read: a crash in between
/// leaves the rest for the next start), then drops the old table.
fn move_text_keyed_rows(db: &redb::Database) -> Result<(), CustodyError> {
    let exists = match db
        .begin_read()
        .map_err(meta_err)?
        .open_table(LEGACY_RECORDS)
    {
        Ok(_) => true,
        Err(redb::TableError::TableDoesNotExist(_)) => false,
        Err(e) => return Err(meta_err(e)),
    };
    if !exists {
        return Ok(());
    }
    loop {
        let txn = db.begin_write().map_err(meta_err)?;
        let moved = {
            let mut old = txn.open_table(LEGACY_RECORDS).map_err(meta_err)?;
            let mut new = txn.open_table(RECORDS).map_err(meta_err)?;
            let mut moved = 0;
            while moved < MOVE_CHUNK {
                let Some((commitment, row)) = old.pop_first().map_err(meta_err)? else {
                    break;
                };
                new.insert(record_key(commitment.value()).as_slice(), row.value())
                    .map_err(meta_err)?;
                moved += 1;
            }
            moved
        };
        if moved == 0 {
            txn.delete_table(LEGACY_RECORDS).map_err(meta_err)?;
            txn.commit().map_err(meta_err)?;
            return Ok(());
        }
        txn.commit().map_err(meta_err)?;
        tracing::info!(rows = moved, "custody rows moved to byte keys");
    }
}
/// commitment (hex) → the holder's node key, for each copy received from
/// another node ([`replica`]): which of the records kept here are copies.
const REPLICAS: TableDefinition<&str, &str> = TableDefinition::new("replicas");
/// leaf hash (hex) of an access event → its justification.
const NOTES: TableDefinition<&str, &str> = TableDefinition::new("justifications");

pub const CUSTODIAL_KEY_FILE: &str = "custodial.key";
/// The ciphertexts' segments, under the vault directory.
pub const SEGMENTS_DIR: &str = "segments";
/// The wrapped keys' slot file's directory, under the vault directory.
pub const KEYS_DIR: &str = "keys";
/// The layout before segments: a file per ciphertext, a file per wrapped key.
const LEGACY_BLOBS: &str = "blobs";
const LEGACY_KEYRING: &str = "keyring";

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

/// What the node keeps about a record, off the ledger; also the `meta` of
/// a replica answer (`replica::ReplicaAnswer`), hence strict. The JSON rows
/// of `custody.redb` written before the binary form were this struct's
/// serialization, with exactly these fields.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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

/// Where a record's ciphertext is, and its plaintext's length: what
/// opening it needs of its [`RecordMeta`].
pub struct RecordLocation {
    pub blob: BlobId,
    pub size: u64,
}

impl RecordLocation {
    pub fn of(meta: &RecordMeta) -> Result<RecordLocation, CustodyError> {
        Ok(RecordLocation {
            blob: BlobId::from_hex(&meta.blob)?,
            size: meta.size,
        })
    }
}

/// A record just encrypted into the vault, not yet on the ledger.
pub struct Stored {
    pub blob: BlobId,
    pub commitment: Commitment,
    pub salt: Salt,
    /// Keeps the patient's group key from being destroyed while the record
    /// is on its way to the ledger: hold it (or the [`Stored`]) until the
    /// `record` transaction is committed or the record discarded.
    pub in_flight: InFlight,
}

/// Stores under each group not yet settled (on the ledger or discarded).
type InFlightCounts = Arc<Mutex<HashMap<GroupId, usize>>>;

/// A store under a patient's group key that has not settled yet; dropping
/// it settles it. While one is alive, [`Custody::erase_group`] keeps the
/// group key (the record it wrapped may be about to reach the ledger).
pub struct InFlight {
    counts: InFlightCounts,
    group: GroupId,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = counts.get_mut(&self.group) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.group);
            }
        }
    }
}

/// What [`Custody::erase_group`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupErasure {
    /// The group key is destroyed: its wrapped copy in the key ring (this
    /// many files shredded, 0 if none was left) and its copy in memory.
    Destroyed(usize),
    /// A live record still has its node copy wrapped under it: kept.
    InUse,
    /// A record stored under it has not settled: kept (destroyed at the
    /// next erasure of the patient's records or the next start).
    StoreInFlight,
}

pub struct Custody {
    vault: Vault<SegmentStore, SlotKeyRing>,
    /// The same stores, writing without flushing each file: for batches
    /// made durable together by [`Custody::sync`] (a group commit).
    deferred: Vault<SegmentStore, SlotKeyRing>,
    custodial: RecipientKey,
    meta: redb::Database,
    /// Data keys of recently read records, so a busy record is not
    /// unwrapped (an X25519 operation and a file read) on every read.
    /// Erasure removes a record's key from here before destroying the
    /// wrapped copies; the cache lives in memory only and is bounded.
    recent_keys: Mutex<RecentKeys>,
    /// Patients' group keys unwrapped (or made) since start: a record's
    /// node copy is wrapped under its patient's group key, so reading it
    /// costs an AEAD open, not an X25519 operation. Each entry says
    /// whether the key's file is known to be durable. Bounded.
    group_keys: Mutex<HashMap<GroupId, (GroupKey, bool)>>,
    /// Held while a group key is loaded or made, so two stores for the
    /// same new patient cannot make two keys.
    group_loading: Mutex<()>,
    /// Each patient's current patient-copy generation: the key that wraps
    /// the patient's copy of each new record's data key, sealed to the
    /// patient once per generation (one X25519 operation per patient and
    /// generation, not per record). Sealed to the patient only, it cannot
    /// be unsealed here after a restart: memory only, and a patient with
    /// none here gets a new generation. Bounded.
    patient_copies: Mutex<HashMap<RecipientPublicKey, PatientCopyGeneration>>,
    /// Held while a generation is made, so two stores for the same patient
    /// do not make two.
    patient_copy_making: Mutex<()>,
    /// Stores under each group key not yet settled ([`InFlight`]).
    in_flight: InFlightCounts,
    /// Shared by stores (from taking a group key to wrapping under it),
    /// exclusive for [`Custody::erase_group`]: a group key is never
    /// destroyed between a store taking it and the store counting itself in
    /// flight.
    group_gate: RwLock<()>,
}

/// Most group keys kept in memory (about 100 bytes each).
const GROUP_KEYS: usize = 1 << 20;

/// Most patients' patient-copy generations kept in memory (about 130
/// bytes each). Forgetting one costs the patient's next record a new
/// generation (one HPKE seal and one slot), nothing else.
const PATIENT_COPY_GENERATIONS: usize = GROUP_KEYS;

/// A generation of a patient's patient-copy group: its id (a random one,
/// [`GroupId::patient_copy_generation`]), its key, and whether the slot
/// holding the key sealed to the patient is known to be durable.
#[derive(Clone)]
struct PatientCopyGeneration {
    group: GroupId,
    key: GroupKey,
    durable: bool,
}

#[derive(Default)]
struct RecentKeys {
    keys: HashMap<BlobId, DataKey>,
    /// Records erased since start: their keys are never cached again, even
    /// by a read that unwrapped one just before it was destroyed.
    erased: std::collections::HashSet<BlobId>,
}

/// Most data keys kept in memory (about 80 bytes each).
const RECENT_KEYS: usize = 1 << 17;

impl Custody {
    pub fn open(dir: &Path) -> Result<Custody, CustodyError> {
        let blobs = SegmentStore::open(dir.join(SEGMENTS_DIR))?;
        let keys = SlotKeyRing::open(dir.join(KEYS_DIR))?;
        migrate_legacy(dir, &blobs, &keys)?;
        // Segments mostly taken by erased or discarded ciphertexts are
        // rewritten without them (erasure itself does not wait for this).
        let compacted = blobs.compact_sparse(0.5)?;
        if compacted > 0 {
            tracing::info!(segments = compacted, "vault segments compacted");
        }
        let custodial = load_or_create_key(&dir.join(CUSTODIAL_KEY_FILE))?;
        let meta = redb::Database::create(dir.join("custody.redb")).map_err(meta_err)?;
        let txn = meta.begin_write().map_err(meta_err)?;
        txn.open_table(RECORDS).map_err(meta_err)?;
        txn.open_table(REPLICAS).map_err(meta_err)?;
        txn.open_table(NOTES).map_err(meta_err)?;
        txn.commit().map_err(meta_err)?;
        move_text_keyed_rows(&meta)?;
        Ok(Custody {
            deferred: Vault::new(blobs.clone().deferred(), keys.clone().deferred()),
            vault: Vault::new(blobs, keys),
            custodial,
            meta,
            recent_keys: Mutex::new(RecentKeys::default()),
            group_keys: Mutex::new(HashMap::new()),
            group_loading: Mutex::new(()),
            patient_copies: Mutex::new(HashMap::new()),
            patient_copy_making: Mutex::new(()),
            in_flight: Arc::new(Mutex::new(HashMap::new())),
            group_gate: RwLock::new(()),
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
        vault: &Vault<SegmentStore, SlotKeyRing>,
        media_type: &str,
        plaintext: impl Read,
        patient: &RecipientPublicKey,
    ) -> Result<Stored, CustodyError> {
        // The patient's copy is wrapped under their current patient-copy
        // generation's key, sealed to them (they open it with nothing but
        // their own key: `hygeia_vault::group::open_copy`), so storing
        // costs no X25519 operation per record; the node's copy is wrapped
        // under the patient's group key (one X25519 unwrap per patient, not
        // one per record, when the node reads).
        let custodial = self.custodial.public_key();
        let key = DataKey::generate()?;
        let mut writer = vault.blobs().writer()?;
        hygeia_vault::encrypt(&key, media_type, plaintext, &mut writer)?;
        let blob = writer.commit()?;
        let deferred = std::ptr::eq(vault, &self.deferred);
        let generation = self.patient_copy_generation(patient, !deferred)?;
        let patient_copy = group::wrap(&key, &blob, patient, &generation.group, &generation.key)?;
        vault
            .keys()
            .put_bytes(&blob, patient, &patient_copy.to_bytes())?;
        let group = GroupId::of(patient.as_bytes());
        let _gate = self.group_gate.read().unwrap_or_else(|p| p.into_inner());
        let in_flight = self.enter(group);
        let group_key = self
            .group_key(&group, true, !deferred)?
            .ok_or(hygeia_vault::Error::NoKey)?;
        let node_copy = group::wrap(&key, &blob, custodial, &group, &group_key)?;
        vault
            .keys()
            .put_bytes(&blob, custodial, &node_copy.to_bytes())?;
        let (commitment, salt) = Commitment::commit(&blob)?;
        Ok(Stored {
            blob,
            commitment,
            salt,
            in_flight,
        })
    }

    /// The patient's current patient-copy generation, or a new one (its
    /// key sealed to the patient with HPKE and put in the key ring at its
    /// slot). As with group keys: one made for a deferred store is durable
    /// with the next [`Custody::sync`]; with `durable`, its slot is made
    /// durable before it is returned (an immediate store's patient copy
    /// must not refer to a key a crash could lose).
    fn patient_copy_generation(
        &self,
        patient: &RecipientPublicKey,
        durable: bool,
    ) -> Result<PatientCopyGeneration, CustodyError> {
        let current = self.patient_copies().get(patient).cloned();
        let current = match current {
            Some(current) => current,
            None => {
                let _making = self
                    .patient_copy_making
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                // (Bound first: the guard must not live through the making.)
                let made = self.patient_copies().get(patient).cloned();
                match made {
                    Some(current) => current,
                    None => self.new_patient_copy_generation(patient, durable)?,
                }
            }
        };
        if durable && !current.durable {
            self.sync()?;
        }
        Ok(current)
    }

    /// Starts a new patient-copy generation for `patient` (called with
    /// `patient_copy_making` held).
    fn new_patient_copy_generation(
        &self,
        patient: &RecipientPublicKey,
        durable: bool,
    ) -> Result<PatientCopyGeneration, CustodyError> {
        let group = GroupId::patient_copy_generation(patient)?;
        let key = GroupKey::generate()?;
        let sealed = group::seal_group_key(&group, &key, patient)?;
        let ring = if durable {
            self.vault.keys()
        } else {
            self.deferred.keys()
        };
        ring.put(&group.slot(), patient, &sealed)?;
        let generation = PatientCopyGeneration {
            group,
            key,
            durable,
        };
        let mut copies = self.patient_copies();
        if copies.len() >= PATIENT_COPY_GENERATIONS {
            copies.clear();
        }
        copies.insert(*patient, generation.clone());
        Ok(generation)
    }

    fn patient_copies(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<RecipientPublicKey, PatientCopyGeneration>> {
        self.patient_copies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a store under `group` in flight until the guard is dropped.
    fn enter(&self, group: GroupId) -> InFlight {
        *self
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(group)
            .or_insert(0) += 1;
        InFlight {
            counts: self.in_flight.clone(),
            group,
        }
    }

    /// The group whose key wraps the node's copy of a record's data key;
    /// `None` for an unknown or erased record, or one written before group
    /// keys (its node copy is sealed to the custodial key).
    pub fn record_group(&self, commitment: &str) -> Result<Option<GroupId>, CustodyError> {
        let Some(meta) = self.meta(commitment)? else {
            return Ok(None);
        };
        let blob = BlobId::from_hex(&meta.blob)?;
        let bytes = self
            .vault
            .keys()
            .get_bytes(&blob, self.custodial.public_key())?;
        match bytes {
            Some(bytes) if bytes.first() == Some(&GROUP_WRAPPED_KEY_VERSION) => {
                Ok(Some(*GroupWrappedKey::from_bytes(&bytes)?.group()))
            }
            _ => Ok(None),
        }
    }

    /// The key that seals the research store's values
    /// ([`crate::research::Sealer`]): made at first use, kept in the key
    /// ring sealed to the custodial key (durably before it is returned).
    pub fn research_sealer(&self) -> Result<crate::research::Sealer, CustodyError> {
        let key = self
            .group_key(&crate::research::Sealer::key_name(), true, true)?
            .ok_or(hygeia_vault::Error::NoKey)?;
        Ok(crate::research::Sealer::new(
            *self.custodial.public_key(),
            key,
        ))
    }

    /// The group of a patient's X25519 key.
    pub fn group_of(patient: &RecipientPublicKey) -> GroupId {
        GroupId::of(patient.as_bytes())
    }

    /// Crypto-shreds a patient's group key once nothing needs it: shreds
    /// its wrapped copy in the key ring and forgets the copy in memory, so
    /// no wrapped data key under it (a copy of the key ring taken before,
    /// a replica) opens any more. Kept while a store under it is in flight,
    /// or while `in_use` (asked with every store held off) says a live
    /// record's node copy is wrapped under it. Safe to repeat.
    pub fn erase_group(
        &self,
        group: &GroupId,
        in_use: impl FnOnce(&Custody) -> Result<bool, CustodyError>,
    ) -> Result<GroupErasure, CustodyError> {
        let _gate = self.group_gate.write().unwrap_or_else(|p| p.into_inner());
        if self
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(group)
        {
            return Ok(GroupErasure::StoreInFlight);
        }
        if in_use(self)? {
            return Ok(GroupErasure::InUse);
        }
        // Held so that no read loads the key from the ring into memory
        // between the two steps below.
        let _loading = self.group_loading.lock().unwrap_or_else(|p| p.into_inner());
        let destroyed = self.vault.keys().erase(&group.slot())?;
        self.groups().remove(group);
        Ok(GroupErasure::Destroyed(destroyed))
    }

    /// Makes every deferred write durable: one `fdatasync` of the segment
    /// being appended to, one of the key file (the group keys and
    /// patient-copy generations made for deferred stores included).
    pub fn sync(&self) -> Result<(), CustodyError> {
        let pending: Vec<GroupId> = self
            .groups()
            .iter()
            .filter(|(_, (_, durable))| !durable)
            .map(|(id, _)| *id)
            .collect();
        let pending_copies: Vec<(RecipientPublicKey, GroupId)> = self
            .patient_copies()
            .iter()
            .filter(|(_, generation)| !generation.durable)
            .map(|(patient, generation)| (*patient, generation.group))
            .collect();
        self.vault.blobs().sync()?;
        self.vault.keys().sync()?;
        {
            let mut groups = self.groups();
            for id in pending {
                if let Some(entry) = groups.get_mut(&id) {
                    entry.1 = true;
                }
            }
        }
        let mut copies = self.patient_copies();
        for (patient, group) in pending_copies {
            // (Only the generation whose slot was written before the flush.)
            if let Some(generation) = copies.get_mut(&patient) {
                if generation.group == group {
                    generation.durable = true;
                }
            }
        }
        Ok(())
    }

    fn groups(&self) -> std::sync::MutexGuard<'_, HashMap<GroupId, (GroupKey, bool)>> {
        self.group_keys.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A patient's group key: from memory, else unwrapped from the key
    /// ring (one HPKE open), else — with `create` — made and stored. A key
    /// made for a deferred store is durable with the next [`Custody::sync`];
    /// with `durable`, the key's file is made durable before it is returned
    /// (an immediate store must not refer to a key a crash could lose).
    fn group_key(
        &self,
        group: &GroupId,
        create: bool,
        durable: bool,
    ) -> Result<Option<GroupKey>, CustodyError> {
        let cached = self.groups().get(group).cloned();
        let cached = match cached {
            Some(entry) => Some(entry),
            None => {
                let _loading = self.group_loading.lock().unwrap_or_else(|p| p.into_inner());
                // (Bound first: the guard must not live through the load.)
                let loaded = self.groups().get(group).cloned();
                match loaded {
                    Some(entry) => Some(entry),
                    None => self.load_group_key(group, create, durable)?,
                }
            }
        };
        let Some((key, on_disk)) = cached else {
            return Ok(None);
        };
        if durable && !on_disk {
            self.sync()?;
        }
        Ok(Some(key))
    }

    /// [`Custody::group_key`] when it is not in memory (called with
    /// `group_loading` held).
    fn load_group_key(
        &self,
        group: &GroupId,
        create: bool,
        durable: bool,
    ) -> Result<Option<(GroupKey, bool)>, CustodyError> {
        let slot = group.slot();
        let custodial = self.custodial.public_key();
        let (key, on_disk) = match self.vault.keys().get(&slot, custodial)? {
            Some(wrapped) => (
                hygeia_vault::unwrap(&wrapped, &slot, &self.custodial)?,
                true,
            ),
            None if create => {
                let key = GroupKey::generate()?;
                let wrapped = hygeia_vault::wrap(&key, &slot, custodial)?;
                let ring = if durable {
                    self.vault.keys()
                } else {
                    self.deferred.keys()
                };
                ring.put(&slot, custodial, &wrapped)?;
                (key, durable)
            }
            None => return Ok(None),
        };
        let mut groups = self.groups();
        if groups.len() >= GROUP_KEYS {
            groups.clear();
        }
        groups.insert(*group, (key.clone(), on_disk));
        Ok(Some((key, on_disk)))
    }

    /// Saves the metadata of many records in one transaction.
    pub fn save_metas(&self, metas: &[(&str, &RecordMeta)]) -> Result<(), CustodyError> {
        let txn = self.meta.begin_write().map_err(meta_err)?;
        {
            let mut table = txn.open_table(RECORDS).map_err(meta_err)?;
            for (commitment, meta) in metas {
                table
                    .insert(
                        record_key(commitment).as_slice(),
                        meta_row::encode(meta).as_slice(),
                    )
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
        let row = meta_row::encode(meta);
        let txn = self.meta.begin_write().map_err(meta_err)?;
        txn.open_table(RECORDS)
            .map_err(meta_err)?
            .insert(record_key(commitment).as_slice(), row.as_slice())
            .map_err(meta_err)?;
        txn.commit().map_err(meta_err)
    }

    /// Saves a received copy's metadata and notes it as a copy of a record
    /// `holder` holds, in one transaction.
    fn save_replica_meta(
        &self,
        commitment: &str,
        meta: &RecordMeta,
        holder: &str,
    ) -> Result<(), CustodyError> {
        let row = meta_row::encode(meta);
        let txn = self.meta.begin_write().map_err(meta_err)?;
        txn.open_table(RECORDS)
            .map_err(meta_err)?
            .insert(record_key(commitment).as_slice(), row.as_slice())
            .map_err(meta_err)?;
        txn.open_table(REPLICAS)
            .map_err(meta_err)?
            .insert(commitment, holder)
            .map_err(meta_err)?;
        txn.commit().map_err(meta_err)
    }

    /// Notes a record kept here as a copy of one `holder` holds (a copy
    /// received before copies were noted as such).
    pub fn note_replica(&self, commitment: &str, holder: &str) -> Result<(), CustodyError> {
        let txn = self.meta.begin_write().map_err(meta_err)?;
        txn.open_table(REPLICAS)
            .map_err(meta_err)?
            .insert(commitment, holder)
            .map_err(meta_err)?;
        txn.commit().map_err(meta_err)
    }

    /// Whether the record kept here is a copy of another node's.
    pub fn is_replica(&self, commitment: &str) -> Result<bool, CustodyError> {
        let txn = self.meta.begin_read().map_err(meta_err)?;
        let table = txn.open_table(REPLICAS).map_err(meta_err)?;
        Ok(table.get(commitment).map_err(meta_err)?.is_some())
    }

    /// The copies of other nodes' records kept here: (commitment, holder).
    pub fn replicas(&self) -> Result<Vec<(String, String)>, CustodyError> {
        let txn = self.meta.begin_read().map_err(meta_err)?;
        let table = txn.open_table(REPLICAS).map_err(meta_err)?;
        let mut copies = Vec::new();
        for row in table.iter().map_err(meta_err)? {
            let (commitment, holder) = row.map_err(meta_err)?;
            copies.push((commitment.value().to_owned(), holder.value().to_owned()));
        }
        Ok(copies)
    }

    pub fn meta(&self, commitment: &str) -> Result<Option<RecordMeta>, CustodyError> {
        Ok(self.rows([commitment], meta_row::decode)?.pop().flatten())
    }

    /// Where several records are, in one read transaction (a search page
    /// opens up to its `_count` records); `None` for one not kept here.
    pub fn locations<'a>(
        &self,
        commitments: impl IntoIterator<Item = &'a str>,
    ) -> Result<Vec<Option<RecordLocation>>, CustodyError> {
        self.rows(commitments, meta_row::decode_location)
    }

    /// Several records' custody rows, decoded, in one read transaction.
    fn rows<'a, T>(
        &self,
        commitments: impl IntoIterator<Item = &'a str>,
        decode: fn(&[u8]) -> Result<T, CustodyError>,
    ) -> Result<Vec<Option<T>>, CustodyError> {
        let txn = self.meta.begin_read().map_err(meta_err)?;
        let table = txn.open_table(RECORDS).map_err(meta_err)?;
        commitments
            .into_iter()
            .map(|commitment| {
                match table
                    .get(record_key(commitment).as_slice())
                    .map_err(meta_err)?
                {
                    Some(value) => decode(value.value()).map(Some),
                    None => Ok(None),
                }
            })
            .collect()
    }

    /// Decrypts a record with the node's custodial key into `output`.
    pub fn open_record(
        &self,
        meta: &RecordMeta,
        output: impl Write,
    ) -> Result<RecordInfo, CustodyError> {
        self.open_at(&RecordLocation::of(meta)?, output)
    }

    /// [`Custody::open_record`] from its location alone.
    pub fn open_at(
        &self,
        location: &RecordLocation,
        output: impl Write,
    ) -> Result<RecordInfo, CustodyError> {
        let key = self.data_key(&location.blob)?;
        Ok(hygeia_vault::decrypt(
            &key,
            self.vault.blobs().get(&location.blob)?,
            output,
        )?)
    }

    fn data_key(&self, blob: &BlobId) -> Result<DataKey, CustodyError> {
        if let Some(key) = self.recent().keys.get(blob) {
            return Ok(key.clone());
        }
        let custodial = self.custodial.public_key();
        let bytes = self
            .vault
            .keys()
            .get_bytes(blob, custodial)?
            .ok_or(hygeia_vault::Error::NoKey)?;
        let key = if bytes.first() == Some(&GROUP_WRAPPED_KEY_VERSION) {
            let wrapped = GroupWrappedKey::from_bytes(&bytes)?;
            let group_key = self
                .group_key(wrapped.group(), false, false)?
                .ok_or(hygeia_vault::Error::NoKey)?;
            group::unwrap(&wrapped, blob, custodial, &group_key)?
        } else {
            // Written before group keys: sealed to the custodial key.
            let wrapped = WrappedKey::from_bytes(&bytes)?;
            hygeia_vault::unwrap(&wrapped, blob, &self.custodial)?
        };
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
            .remove(record_key(commitment).as_slice())
            .map_err(meta_err)?;
        txn.open_table(REPLICAS)
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

/// After a record of `patient` was erased: destroys the group key its node
/// copy was wrapped under (`group`, read before the erasure) unless a live
/// record of the patient still has its node copy under it.
pub(crate) fn shred_unused_group(
    custody: &Custody,
    state: &crate::state::writer::SharedState,
    patient: &str,
    group: &GroupId,
) -> Result<GroupErasure, CustodyError> {
    custody.erase_group(group, |custody| {
        let live: Vec<String> = state
            .read()
            .state
            .records
            .of_patient(patient)
            .filter(|r| r.erased_at.is_none())
            .map(|r| r.commitment.clone())
            .collect();
        for commitment in live {
            if custody.record_group(&commitment)? == Some(*group) {
                return Ok(true);
            }
        }
        Ok(false)
    })
}

/// At start-up, after the erased records' keys were destroyed again: the
/// group keys of every patient with an erased record (the groups of the
/// patient's own key and of every key rotated in or out) that no live
/// record of theirs needs, so that a crash between a record's erasure and
/// its group key's cannot leave the group key behind.
pub(crate) fn shred_unused_groups(
    custody: &Custody,
    state: &crate::state::writer::SharedState,
) -> Result<usize, CustodyError> {
    let candidates: Vec<(String, Vec<GroupId>)> = {
        let committed = state.read();
        let mut patients: Vec<&str> = committed
            .state
            .records
            .erased()
            .map(|r| r.patient.as_str())
            .collect();
        patients.sort_unstable();
        patients.dedup();
        patients
            .into_iter()
            .map(|patient| {
                let mut keys = vec![patient.to_owned()];
                for rotation in committed.state.identities.rotations(patient) {
                    keys.push(rotation.from.clone());
                    keys.push(rotation.to.clone());
                }
                let groups = keys
                    .iter()
                    .filter_map(|did| hygeia_identity::Did::parse_cached(did).ok())
                    .filter_map(|did| {
                        RecipientPublicKey::from_bytes(&did.public_key().to_x25519()).ok()
                    })
                    .map(|key| Custody::group_of(&key))
                    .collect();
                (patient.to_owned(), groups)
            })
            .collect()
    };
    let mut destroyed = 0;
    for (patient, groups) in candidates {
        for group in groups {
            if let GroupErasure::Destroyed(n) =
                shred_unused_group(custody, state, &patient, &group)?
            {
                destroyed += n;
            }
        }
    }
    Ok(destroyed)
}

#[cfg(test)]
impl Custody {
    /// The data key of `blob` if it is cached in memory.
    pub(crate) fn cached_data_key(&self, blob: &BlobId) -> Option<DataKey> {
        self.recent().keys.get(blob).cloned()
    }

    /// The group keys held in memory.
    pub(crate) fn cached_group_keys(&self) -> Vec<(GroupId, GroupKey)> {
        self.groups()
            .iter()
            .map(|(id, (key, _))| (*id, key.clone()))
            .collect()
    }

    /// The patient-copy generations held in memory: (patient, group, key).
    pub(crate) fn cached_patient_copies(&self) -> Vec<(RecipientPublicKey, GroupId, GroupKey)> {
        self.patient_copies()
            .iter()
            .map(|(patient, g)| (*patient, g.group, g.key.clone()))
            .collect()
    }

    /// Whether `patient`'s patient-copy generation in memory is known to
    /// be durable (`None`: no generation in memory).
    pub(crate) fn patient_copy_durable(&self, patient: &RecipientPublicKey) -> Option<bool> {
        self.patient_copies().get(patient).map(|g| g.durable)
    }

    /// The wrapped copy of `group`'s key in the key ring, as stored.
    pub(crate) fn stored_group_key(&self, group: &GroupId) -> Option<Vec<u8>> {
        self.vault
            .keys()
            .get_bytes(&group.slot(), self.custodial.public_key())
            .expect("key ring")
    }

    /// Puts a wrapped copy of `group`'s key back into the key ring (as a
    /// crash between a record's erasure and its group key's leaves it).
    pub(crate) fn restore_group_key(&self, group: &GroupId, bytes: &[u8]) {
        self.vault
            .keys()
            .put_bytes(&group.slot(), self.custodial.public_key(), bytes)
            .expect("key ring");
    }

    /// The ciphertext of `blob` as stored, and its segment file.
    pub(crate) fn stored_ciphertext(&self, blob: &BlobId) -> Option<(PathBuf, Vec<u8>)> {
        let (path, offset, len) = self.vault.blobs().location(blob)?;
        let bytes = std::fs::read(&path).expect("segment");
        let bytes = bytes[offset as usize..(offset + len) as usize].to_vec();
        Some((path, bytes))
    }

    /// How many ciphertexts the vault holds.
    pub(crate) fn blob_count(&self) -> usize {
        self.vault.blobs().count()
    }

    /// Makes every new ciphertext fail to be stored, as a full or failing
    /// disk does.
    pub(crate) fn fail_storage(&self) {
        self.vault.blobs().refuse_appends();
    }

    /// Closes the segment being appended to and compacts every segment
    /// that holds a deleted ciphertext.
    pub(crate) fn compact_all(&self) -> usize {
        self.vault.blobs().roll_now().expect("roll");
        self.vault.blobs().compact_sparse(1.0).expect("compact")
    }

    /// The vault's stores, for a test to read them as a patient would.
    pub(crate) fn stores(&self) -> (SegmentStore, SlotKeyRing) {
        (self.vault.blobs().clone(), self.vault.keys().clone())
    }

    /// Whether the key ring holds a wrapped copy of `group`'s key.
    pub(crate) fn group_key_stored(&self, group: &GroupId) -> bool {
        !self
            .vault
            .keys()
            .holders(&group.slot())
            .expect("key ring")
            .is_empty()
    }
}

/// Moves a data directory written before segments into the current layout:
/// every ciphertext of `blobs/` into a segment and every wrapped key of
/// `keyring/` into the slot file, flushed, and only then the old files
/// removed (each wrapped-key file shredded: overwritten with zeros,
/// flushed, unlinked). A crash at any point leaves the old files (or what
/// is left of them) to be migrated again at the next start: copying is
/// idempotent (a ciphertext is stored once under its address, a holder
/// keeps its first key), and nothing is erased before the node has started.
pub(crate) fn migrate_legacy(
    dir: &Path,
    blobs: &SegmentStore,
    keys: &SlotKeyRing,
) -> Result<(usize, usize), CustodyError> {
    let (blob_dir, key_dir) = (dir.join(LEGACY_BLOBS), dir.join(LEGACY_KEYRING));
    if !blob_dir.exists() && !key_dir.exists() {
        return Ok((0, 0));
    }
    let io = |e: std::io::Error| CustodyError::Vault(e.into());
    let (deferred_blobs, deferred_keys) = (blobs.clone().deferred(), keys.clone().deferred());
    let mut moved = (0, 0);
    let old_blobs = if blob_dir.exists() {
        let old = FsBlobStore::open(&blob_dir)?;
        for id in old.ids()? {
            if !deferred_blobs.exists(&id)? {
                // Re-verified against its address while it is copied.
                let mut writer = deferred_blobs.writer()?;
                std::io::copy(&mut old.get(&id)?, &mut writer).map_err(io)?;
                writer.commit()?;
                moved.0 += 1;
            }
        }
        Some(old)
    } else {
        None
    };
    let old_keys = if key_dir.exists() {
        let old = FsKeyRing::open(&key_dir)?;
        for record in old.records()? {
            for holder in old.holders(&record)? {
                if let Some(bytes) = old.get_bytes(&record, &holder)? {
                    if deferred_keys.put_bytes(&record, &holder, &bytes)? {
                        moved.1 += 1;
                    }
                }
            }
        }
        Some(old)
    } else {
        None
    };
    blobs.sync()?;
    keys.sync()?;
    if let Some(old) = old_keys {
        for record in old.records()? {
            old.erase(&record)?;
        }
        std::fs::remove_dir_all(&key_dir).map_err(io)?;
    }
    if old_blobs.is_some() {
        std::fs::remove_dir_all(&blob_dir).map_err(io)?;
    }
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io)?;
    tracing::info!(
        ciphertexts = moved.0,
        wrapped_keys = moved.1,
        "vault migrated to segments and a slot key file"
    );
    Ok(moved)
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

/// Copies of a record for another organization's node.
pub mod replica;

mod meta_row;

/// A `custody.redb` record row (binary, or the JSON of before).
pub fn decode_meta(row: &[u8]) -> Result<RecordMeta, CustodyError> {
    meta_row::decode(row)
}

/// Erasure against every file the vault keeps (was the `erasure` test
/// binary; a unit test here links nothing more).
#[cfg(test)]
mod erasure_tests;

#[cfg(test)]
mod record_key_tests {
    use super::*;

    fn meta(size: u64) -> RecordMeta {
        RecordMeta {
            blob: "0f".repeat(32),
            salt: "a1".repeat(32),
            media_type: "application/fhir+json".into(),
            author: "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK".into(),
            provenance: String::new(),
            size,
        }
    }

    #[test]
    fn a_hex_commitment_is_keyed_by_its_bytes_and_no_text_key_is_32_bytes() {
        let hex = "ab".repeat(32);
        assert_eq!(record_key(&hex), vec![0xab; 32]);
        // Upper case is not how the node writes one: kept as text.
        assert_eq!(record_key(&"AB".repeat(32)).len(), 5 + 64);
        assert_eq!(record_key("old"), b"text:old".to_vec());
        let awkward = "x".repeat(27);
        assert_eq!(record_key(&awkward).len(), 33);
    }

    /// A `custody.redb` keyed by text (before) is moved to byte keys at
    /// open: every row is found as before, the old table is dropped.
    #[test]
    fn text_keyed_rows_are_moved_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let vault_dir = dir.path().join("vault");
        drop(Custody::open(&vault_dir).unwrap());
        let hex = "cd".repeat(32);
        let rows: Vec<(String, RecordMeta)> = vec![
            (hex.clone(), meta(1)),
            ("old".into(), meta(2)),
            ("x".repeat(27), meta(3)),
        ];
        {
            let db = redb::Database::open(vault_dir.join("custody.redb")).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut old = txn.open_table(LEGACY_RECORDS).unwrap();
                for (commitment, meta) in &rows {
                    let json = serde_json::to_vec(meta).unwrap();
                    old.insert(commitment.as_str(), json.as_slice()).unwrap();
                }
            }
            txn.commit().unwrap();
        }
        let custody = Custody::open(&vault_dir).unwrap();
        for (commitment, meta) in &rows {
            assert_eq!(custody.meta(commitment).unwrap().unwrap().size, meta.size);
        }
        assert!(custody.meta(&"ef".repeat(32)).unwrap().is_none());
        let txn = custody.meta.begin_read().unwrap();
        assert!(matches!(
            txn.open_table(LEGACY_RECORDS),
            Err(redb::TableError::TableDoesNotExist(_))
        ));
        assert!(txn
            .open_table(RECORDS)
            .unwrap()
            .get(&[0xcd; 32][..])
            .unwrap()
            .is_some());
    }
}
