//! What the node keeps to serve FHIR, off the ledger and outside the vault:
//! for each resource, its versions (which vault record holds each one) and
//! the search index of its current version.
//!
//! The resources themselves are vault records (encrypted, anchored by a
//! `record` transaction each); this store holds only the index values that
//! search needs and the bookkeeping that maps `Type/id/_history/n` to a
//! record. docs/fhir.md lists exactly what that is, and why the data
//! directory must be protected like the database of any EHR.
//!
//! `<data-dir>/fhir.redb` holds four tables, as compact binary rows whose
//! repeated texts are numbers into a string table ([`rows`]); memory holds
//! the current versions and the search index, rebuilt from the file at
//! start. A version
//! reaches this store only after its `record` transaction is durable; a
//! crash in between is repaired at start by [`FhirStore::missing`] and
//! re-indexing from the vault.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use hygeia_fhir::search::{IndexEntry, SearchIndex, SearchQuery};
use hygeia_fhir::types::ResourceType;
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle};
use serde::{Deserialize, Serialize};

mod from_vault;
mod rows;

pub use from_vault::{forget_destroyed, index_received, repair};

/// `Type/id` → its latest [`Version`] and search index ([`rows`]; JSON in
/// files written before).
const CURRENT: TableDefinition<&str, &[u8]> = TableDefinition::new("current");
/// `Type/id#<version, 20 digits>` → [`Version`] ([`rows`]; JSON before),
/// for the versions that are not current: a current version is kept once,
/// in its `current` row, and moves here when a newer one replaces it.
/// Files written before kept every version here, the current one too;
/// both read alike (a version found in both places is the same version).
const VERSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("versions");
/// record commitment → `Type/id#<version>`, in files written before the
/// map from commitments to versions was rebuilt at start from `current`
/// and `versions` (which hold every version's commitment): dropped at
/// open, freeing its pages.
const LEGACY_COMMITMENTS: TableDefinition<&str, &str> = TableDefinition::new("commitments");
/// number → text, for the texts the rows name by number.
const STRINGS: TableDefinition<u32, &str> = TableDefinition::new("strings");
/// JSON rows of an older file rewritten per write transaction at start.
const REWRITE_CHUNK: usize = 4096;

#[derive(Debug, thiserror::Error)]
#[error("FHIR store: {0}")]
pub struct StoreError(String);

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

/// One version of a resource.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Version {
    pub version: u64,
    /// The vault record (and ledger commitment) holding this version.
    pub commitment: String,
    /// `meta.lastUpdated`, milliseconds since the epoch.
    pub last_updated: i64,
    /// A deletion: the record holds a tombstone, not the resource.
    pub deleted: bool,
    /// Whose consent governs it (the node's DID for directory resources).
    pub patient: String,
    /// Its consent category.
    pub category: String,
    /// Who wrote it.
    pub author: String,
}

/// The current version of a resource and its search index.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Current {
    pub resource_type: String,
    pub id: String,
    pub latest: Version,
    /// The index of the current version (empty when deleted). Only the
    /// stored copy holds it: in memory it lives in the search index.
    pub index: IndexEntry,
}

impl Current {
    pub fn key(&self) -> String {
        format!("{}/{}", self.resource_type, self.id)
    }
}

/// A version about to be recorded.
#[derive(Clone, Debug)]
pub struct NewVersion {
    pub resource_type: ResourceType,
    pub id: String,
    pub version: Version,
    pub index: IndexEntry,
}

pub struct FhirStore {
    db: redb::Database,
    memory: RwLock<Memory>,
    /// The string table of the rows, as committed (and, during a write,
    /// the texts that write adds: see [`FhirStore::record`]).
    strings: RwLock<rows::Strings>,
    /// One [`FhirStore::record`] at a time: it numbers new texts.
    recording: Mutex<()>,
    /// Keys with a write in flight: a second concurrent write to the same
    /// resource is refused rather than racing it to the same version.
    writing: Mutex<HashSet<String>>,
    commits: std::sync::atomic::AtomicU64,
}

/// One commit in this many is flushed to disk. redb reuses the pages a
/// commit frees only after a durable commit, so every commit in between
/// leaves the B-tree pages it rewrote as garbage that grows the file: at
/// 64 the file was about half garbage after ingest (docs/fhir.md).
const DURABLE_EVERY: u64 = 8;

/// What memory holds for a million resources is mostly this, so it is
/// kept compact: each key is allocated once (`Arc<str>`, shared by the
/// maps and the search index), a version's texts are numbers into the
/// store's string table and its commitment 32 bytes; [`Current`]s are
/// made from it when asked for.
#[derive(Default)]
struct Memory {
    current: HashMap<Arc<str>, Held>,
    index: SearchIndex,
    /// Every version's record commitment → its resource key and version.
    commitments: HashMap<rows::Commitment, (Arc<str>, u64)>,
    /// Patient DID → resource type → keys of its current, undeleted
    /// resources: the candidates of a search restricted to some patients.
    by_patient: HashMap<String, HashMap<String, BTreeSet<Arc<str>>>>,
}

/// The current version of a resource as memory keeps it.
#[derive(Clone, Debug)]
struct Held {
    latest: rows::Latest,
    /// The type of its search index (its key's).
    resource_type: ResourceType,
}

impl Held {
    fn current(&self, key: &str, strings: &rows::Strings) -> Current {
        let (resource_type, id) = key.split_once('/').unwrap_or((key, ""));
        Current {
            resource_type: resource_type.to_owned(),
            id: id.to_owned(),
            latest: self.latest.version(strings),
            index: IndexEntry::new(self.resource_type),
        }
    }
}

/// Holds the keys of a write in flight until dropped.
pub struct WriteLease<'a> {
    store: &'a FhirStore,
    keys: Vec<String>,
}

impl Drop for WriteLease<'_> {
    fn drop(&mut self) {
        let mut writing = self.store.writing.lock().unwrap_or_else(|p| p.into_inner());
        for key in &self.keys {
            writing.remove(key);
        }
    }
}

fn version_key(key: &str, version: u64) -> String {
    format!("{key}#{version:020}")
}

impl FhirStore {
    pub fn open(path: &Path) -> Result<FhirStore, StoreError> {
        let db = redb::Database::create(path).map_err(err)?;
        let txn = db.begin_write().map_err(err)?;
        txn.open_table(CURRENT).map_err(err)?;
        txn.open_table(VERSIONS).map_err(err)?;
        txn.open_table(STRINGS).map_err(err)?;
        // Everything it held is in `current` and `versions`.
        if txn.delete_table(LEGACY_COMMITMENTS).map_err(err)? {
            tracing::info!("FHIR store: the commitments table of before dropped");
        }
        txn.commit().map_err(err)?;
        let mut strings = rows::Strings::default();
        {
            let txn = db.begin_read().map_err(err)?;
            let table = txn.open_table(STRINGS).map_err(err)?;
            for row in table.iter().map_err(err)? {
                let (id, text) = row.map_err(err)?;
                if id.value() as usize != strings.len() {
                    return Err(StoreError(format!(
                        "string table: text {} stored where {} was expected",
                        id.value(),
                        strings.len()
                    )));
                }
                strings.push(text.value().to_owned());
            }
        }
        rewrite_json_rows(&db, &mut strings)?;
        let mut memory = Memory::default();
        {
            let txn = db.begin_read().map_err(err)?;
            let table = txn.open_table(CURRENT).map_err(err)?;
            let versions = txn.open_table(VERSIONS).map_err(err)?;
            let resources = usize::try_from(table.len().map_err(err)?).unwrap_or(0);
            let history = usize::try_from(versions.len().map_err(err)?).unwrap_or(0);
            memory.current.reserve(resources);
            memory
                .commitments
                .reserve(resources.saturating_add(history));
            for row in table.iter().map_err(err)? {
                let (key, value) = row.map_err(err)?;
                let key = key.value();
                let (latest, index) = rows::decode_current_compact(value.value(), &strings)?;
                if !key.contains('/') {
                    return Err(StoreError(format!("bad resource key {key:?}")));
                }
                let (commitment, version) = (latest.commitment.clone(), latest.version);
                let key = memory.insert(Arc::from(key), latest, index, &strings);
                memory.commitments.insert(commitment, (key, version));
            }
            for row in versions.iter().map_err(err)? {
                let (key, value) = row.map_err(err)?;
                let version = rows::decode_version_compact(value.value(), &strings)?;
                let Some((resource, _)) = key.value().rsplit_once('#') else {
                    return Err(StoreError(format!("bad version key {:?}", key.value())));
                };
                let resource = memory.shared_key(resource);
                memory
                    .commitments
                    .insert(version.commitment, (resource, version.version));
            }
        }
        Ok(FhirStore {
            db,
            memory: RwLock::new(memory),
            strings: RwLock::new(strings),
            recording: Mutex::new(()),
            writing: Mutex::new(HashSet::new()),
            commits: Default::default(),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Memory> {
        self.memory.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The string table; taken after `memory` when both are held (never
    /// the other way round).
    fn strings(&self) -> std::sync::RwLockReadGuard<'_, rows::Strings> {
        self.strings.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Reserves `keys` for one write; `None` when one is being written.
    pub fn lease(&self, keys: &[String]) -> Option<WriteLease<'_>> {
        let mut writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        if keys.iter().any(|k| writing.contains(k)) {
            return None;
        }
        let unique: HashSet<&String> = keys.iter().collect();
        if unique.len() != keys.len() {
            return None;
        }
        writing.extend(keys.iter().cloned());
        Some(WriteLease {
            store: self,
            keys: keys.to_vec(),
        })
    }

    pub fn current(&self, key: &str) -> Option<Current> {
        let memory = self.read();
        let held = memory.current.get(key)?;
        Some(held.current(key, &self.strings()))
    }

    pub fn len(&self) -> usize {
        self.read().current.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a vault record is a FHIR version known here.
    pub fn knows(&self, commitment: &str) -> bool {
        self.read()
            .commitments
            .contains_key(&rows::Commitment::of(commitment))
    }

    /// The keys matching a search, in its sort order, with their current
    /// versions.
    pub fn search(&self, query: &SearchQuery) -> Vec<Current> {
        let memory = self.read();
        let strings = self.strings();
        memory
            .index
            .search(query)
            .into_iter()
            .filter_map(|key| Some(memory.current.get(key.as_str())?.current(&key, &strings)))
            .collect()
    }

    /// The current versions the `_include`s of a page reference.
    pub fn included(
        &self,
        keys: &[String],
        includes: &[hygeia_fhir::search::Include],
    ) -> Vec<Current> {
        let memory = self.read();
        let strings = self.strings();
        memory
            .index
            .included(keys, includes)
            .into_iter()
            .filter_map(|key| Some(memory.current.get(key.as_str())?.current(&key, &strings)))
            .collect()
    }

    /// The current, undeleted resources whose consent `patient` governs,
    /// by type and id.
    pub fn of_patient(&self, patient: &str) -> Vec<Current> {
        let memory = self.read();
        let Some(by_type) = memory.by_patient.get(patient) else {
            return Vec::new();
        };
        let strings = self.strings();
        let mut types: Vec<&String> = by_type.keys().collect();
        types.sort();
        types
            .into_iter()
            .flat_map(|t| by_type[t].iter())
            .filter_map(|key| Some(memory.current.get(key)?.current(key, &strings)))
            .collect()
    }

    /// Whether `patient` governs any current, undeleted resource here.
    pub fn holds_patient(&self, patient: &str) -> bool {
        self.read().by_patient.contains_key(patient)
    }

    /// How many current, undeleted resources of `resource_type` the
    /// `patients` hold.
    pub fn count_within(&self, resource_type: ResourceType, patients: &BTreeSet<String>) -> usize {
        let memory = self.read();
        patients
            .iter()
            .filter_map(|p| memory.by_patient.get(p))
            .filter_map(|by_type| by_type.get(resource_type.as_str()))
            .map(BTreeSet::len)
            .sum()
    }

    /// A search over the resources of `patients` only, in the query's
    /// order: what the search would find if the node held nothing else.
    /// Its work depends on those patients' resources alone.
    pub fn search_within(&self, query: &SearchQuery, patients: &BTreeSet<String>) -> Vec<Current> {
        let memory = self.read();
        let mut hits: Vec<(&str, &IndexEntry)> = patients
            .iter()
            .filter_map(|p| memory.by_patient.get(p))
            .filter_map(|by_type| by_type.get(query.resource_type.as_str()))
            .flatten()
            .filter_map(|key| memory.index.get(key).map(|e| (key.as_ref(), e)))
            .filter(|(key, entry)| hygeia_fhir::search::matches(query, key, entry))
            .collect();
        hits.sort_by(|a, b| query.compare(*a, *b));
        let strings = self.strings();
        hits.into_iter()
            .filter_map(|(key, _)| Some(memory.current.get(key)?.current(key, &strings)))
            .collect()
    }

    /// Every version of a resource, newest first.
    pub fn versions(&self, key: &str) -> Result<Vec<Version>, StoreError> {
        // The current version before the file: a write commits the
        // replaced version into `versions` before it changes memory, so
        // whatever this reads, no version is missed.
        let latest = {
            let memory = self.read();
            let held = memory.current.get(key);
            held.map(|h| h.latest.version(&self.strings()))
        };
        let txn = self.db.begin_read().map_err(err)?;
        let table = txn.open_table(VERSIONS).map_err(err)?;
        let start = format!("{key}#");
        let end = format!("{key}$");
        let mut versions = Vec::new();
        let strings = self.strings();
        for row in table.range(start.as_str()..end.as_str()).map_err(err)? {
            let (_, value) = row.map_err(err)?;
            versions.push(rows::decode_version(value.value(), &strings)?);
        }
        if let Some(latest) = latest {
            if !versions.iter().any(|v| v.version == latest.version) {
                versions.push(latest);
            }
        }
        versions.sort_by_key(|v| std::cmp::Reverse(v.version));
        Ok(versions)
    }

    pub fn version(&self, key: &str, version: u64) -> Result<Option<Version>, StoreError> {
        {
            let memory = self.read();
            if let Some(held) = memory.current.get(key) {
                if held.latest.version == version {
                    return Ok(Some(held.latest.version(&self.strings())));
                }
            }
        }
        let txn = self.db.begin_read().map_err(err)?;
        let table = txn.open_table(VERSIONS).map_err(err)?;
        let Some(value) = table.get(version_key(key, version).as_str()).map_err(err)? else {
            return Ok(None);
        };
        rows::decode_version(value.value(), &self.strings()).map(Some)
    }

    /// Which resource version a vault record holds.
    pub fn locate(&self, commitment: &str) -> Result<Option<(String, u64)>, StoreError> {
        let memory = self.read();
        let found = memory.commitments.get(&rows::Commitment::of(commitment));
        Ok(found.map(|(key, version)| (key.to_string(), *version)))
    }

    /// Records versions whose `record` transactions are durable, in one
    /// file transaction. A version older than the one stored (a repair
    /// replaying history) is kept as history without becoming current.
    pub fn record(&self, versions: &[NewVersion]) -> Result<(), StoreError> {
        let _recording = self.recording.lock().unwrap_or_else(|p| p.into_inner());
        // New texts are numbered in memory before the commit, so that a
        // reader of a committed row always finds its texts; a failed write
        // forgets them again (no other write runs meanwhile).
        let known = self.strings.read().unwrap_or_else(|p| p.into_inner()).len();
        let result = self.record_numbering(versions);
        if result.is_err() {
            self.strings
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .truncate(known);
        }
        let changed = result?;
        let mut memory = self.memory.write().unwrap_or_else(|p| p.into_inner());
        let strings = self.strings();
        for (new, (key, current)) in versions.iter().zip(changed) {
            let commitment = rows::Commitment::of(&new.version.commitment);
            let key = match current {
                Some(current) => {
                    let latest = rows::Latest::of(&current.latest, &strings)?;
                    memory.insert(Arc::from(key), latest, current.index, &strings)
                }
                None => memory.shared_key(&key),
            };
            memory
                .commitments
                .insert(commitment, (key, new.version.version));
        }
        Ok(())
    }

    /// Removes every version of `keys` (their `current` and `versions`
    /// rows, and what memory holds of them) in one file transaction, and
    /// returns the record commitments those versions named, oldest first.
    /// For copies another node sent, which this node no longer holds:
    /// see [`forget_destroyed`].
    pub fn forget(&self, keys: &[String]) -> Result<Vec<String>, StoreError> {
        let _recording = self.recording.lock().unwrap_or_else(|p| p.into_inner());
        let mut removed = Vec::new();
        for key in keys {
            let mut versions = self.versions(key)?;
            versions.reverse();
            removed.extend(versions.into_iter().map(|v| (key.clone(), v)));
        }
        let txn = self.db.begin_write().map_err(err)?;
        {
            let mut current_table = txn.open_table(CURRENT).map_err(err)?;
            let mut version_table = txn.open_table(VERSIONS).map_err(err)?;
            for key in keys {
                current_table.remove(key.as_str()).map_err(err)?;
            }
            for (key, version) in &removed {
                version_table
                    .remove(version_key(key, version.version).as_str())
                    .map_err(err)?;
            }
        }
        txn.commit().map_err(err)?;
        let mut memory = self.memory.write().unwrap_or_else(|p| p.into_inner());
        let strings = self.strings();
        for key in keys {
            memory.remove(key, &strings);
        }
        for (_, version) in &removed {
            memory
                .commitments
                .remove(&rows::Commitment::of(&version.commitment));
        }
        Ok(removed.into_iter().map(|(_, v)| v.commitment).collect())
    }

    /// The file transaction of [`FhirStore::record`]; what became current.
    fn record_numbering(
        &self,
        versions: &[NewVersion],
    ) -> Result<Vec<(String, Option<Current>)>, StoreError> {
        let mut txn = self.db.begin_write().map_err(err)?;
        // Everything here can be rebuilt from the vault and the ledger
        // ([`repair`] runs at every start), so most commits skip the
        // flush; one in [`DURABLE_EVERY`] makes the file catch up.
        let count = self
            .commits
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if !count.is_multiple_of(DURABLE_EVERY) {
            txn.set_durability(redb::Durability::None).map_err(err)?;
        }
        let mut changed = Vec::with_capacity(versions.len());
        {
            let mut strings = self.strings.write().unwrap_or_else(|p| p.into_inner());
            let mut encoder = rows::Encoder {
                strings: &mut strings,
                added: Vec::new(),
            };
            let mut current_table = txn.open_table(CURRENT).map_err(err)?;
            let mut version_table = txn.open_table(VERSIONS).map_err(err)?;
            for new in versions {
                let key = format!("{}/{}", new.resource_type, new.id);
                // The version it replaces, if it is newer than the stored one.
                let (newer, replaced) = match current_table.get(key.as_str()).map_err(err)? {
                    Some(existing) => {
                        if rows::current_version_number(existing.value())? < new.version.version {
                            let (old, _) =
                                rows::decode_current(existing.value(), &*encoder.strings)?;
                            (true, Some(old))
                        } else {
                            (false, None)
                        }
                    }
                    None => (true, None),
                };
                // A current version is kept in its `current` row only;
                // the one it replaces, and an older one recorded late (a
                // repair), are history.
                let history = if newer {
                    replaced
                } else {
                    Some(new.version.clone())
                };
                if let Some(old) = history {
                    version_table
                        .insert(
                            version_key(&key, old.version).as_str(),
                            encoder.version(&old).as_slice(),
                        )
                        .map_err(err)?;
                }
                if newer {
                    let row = encoder.current(&new.version, &new.index);
                    current_table
                        .insert(key.as_str(), row.as_slice())
                        .map_err(err)?;
                    let current = Current {
                        resource_type: new.resource_type.as_str().to_owned(),
                        id: new.id.clone(),
                        latest: new.version.clone(),
                        index: new.index.clone(),
                    };
                    changed.push((key, Some(current)));
                } else {
                    changed.push((key, None));
                }
            }
            let mut table = txn.open_table(STRINGS).map_err(err)?;
            for (id, text) in &encoder.added {
                table.insert(*id, text.as_str()).map_err(err)?;
            }
        }
        txn.commit().map_err(err)?;
        Ok(changed)
    }
}

/// Rewrites the JSON rows of a file written before [`rows`] in the binary
/// form, [`REWRITE_CHUNK`] rows per write transaction (each commits its
/// texts with its rows, so a crash in between leaves rows of both forms,
/// which read alike, and the next start goes on).
fn rewrite_json_rows(db: &redb::Database, strings: &mut rows::Strings) -> Result<(), StoreError> {
    for table in [CURRENT, VERSIONS] {
        loop {
            let old: Vec<(String, Vec<u8>)> = {
                let txn = db.begin_read().map_err(err)?;
                let stored = txn.open_table(table).map_err(err)?;
                let mut old = Vec::new();
                for row in stored.iter().map_err(err)? {
                    let (key, value) = row.map_err(err)?;
                    if value.value().first() != Some(&rows::FORMAT) {
                        old.push((key.value().to_owned(), value.value().to_vec()));
                        if old.len() == REWRITE_CHUNK {
                            break;
                        }
                    }
                }
                old
            };
            if old.is_empty() {
                break;
            }
            let known = strings.len();
            let mut encoder = rows::Encoder {
                strings: &mut *strings,
                added: Vec::new(),
            };
            let mut encoded = Vec::with_capacity(old.len());
            for (key, json) in &old {
                let row = if table.name() == CURRENT.name() {
                    let (latest, index) = rows::decode_current(json, &*encoder.strings)?;
                    encoder.current(&latest, &index)
                } else {
                    let version = rows::decode_version(json, &*encoder.strings)?;
                    encoder.version(&version)
                };
                encoded.push((key, row));
            }
            let added = std::mem::take(&mut encoder.added);
            if let Err(e) = write_rows(db, table, &encoded, &added) {
                strings.truncate(known);
                return Err(e);
            }
            tracing::info!(
                rows = encoded.len(),
                table = table.name(),
                "FHIR store rows rewritten"
            );
        }
    }
    Ok(())
}

fn write_rows(
    db: &redb::Database,
    table: TableDefinition<&str, &[u8]>,
    encoded: &[(&String, Vec<u8>)],
    added: &[(u32, String)],
) -> Result<(), StoreError> {
    let txn = db.begin_write().map_err(err)?;
    {
        let mut rows_table = txn.open_table(table).map_err(err)?;
        for (key, row) in encoded {
            rows_table
                .insert(key.as_str(), row.as_slice())
                .map_err(err)?;
        }
        let mut texts = txn.open_table(STRINGS).map_err(err)?;
        for (id, text) in added {
            texts.insert(*id, text.as_str()).map_err(err)?;
        }
    }
    txn.commit().map_err(err)
}

/// Drops `key` from the list of `previous`'s patient.
fn unlist(
    by_patient: &mut HashMap<String, HashMap<String, BTreeSet<Arc<str>>>>,
    key: &str,
    previous: &Held,
    strings: &rows::Strings,
) {
    let patient = strings.resolve(previous.latest.patient);
    let resource_type = key.split_once('/').map_or(key, |(t, _)| t);
    let emptied = match by_patient.get_mut(patient) {
        Some(by_type) => {
            if let Some(keys) = by_type.get_mut(resource_type) {
                keys.remove(key);
                if keys.is_empty() {
                    by_type.remove(resource_type);
                }
            }
            by_type.is_empty()
        }
        None => false,
    };
    if emptied {
        by_patient.remove(patient);
    }
}

impl Memory {
    /// The allocation of `key` memory holds already, or a new one.
    fn shared_key(&self, key: &str) -> Arc<str> {
        match self.current.get_key_value(key) {
            Some((shared, _)) => shared.clone(),
            None => Arc::from(key),
        }
    }

    /// Drops `key`'s current version from the search index and the
    /// patient lists.
    fn remove(&mut self, key: &str, strings: &rows::Strings) {
        let Some(previous) = self.current.remove(key) else {
            return;
        };
        self.index.remove(key);
        unlist(&mut self.by_patient, key, &previous, strings);
    }

    /// Makes `latest` (with its search index `entry`) the current version
    /// of `key`; returns the allocation of the key memory keeps.
    fn insert(
        &mut self,
        key: Arc<str>,
        latest: rows::Latest,
        entry: IndexEntry,
        strings: &rows::Strings,
    ) -> Arc<str> {
        let held = Held {
            latest,
            resource_type: entry.resource_type,
        };
        // The key allocation memory holds already, kept.
        let key = match self.current.get_key_value(&*key) {
            Some((shared, previous)) => {
                let shared = shared.clone();
                unlist(&mut self.by_patient, &shared, previous, strings);
                shared
            }
            None => key,
        };
        if held.latest.deleted {
            self.index.remove(&key);
        } else {
            self.index.upsert_shared(key.clone(), entry);
            // Looked up before allocating: most inserts find both lists.
            let patient = strings.resolve(held.latest.patient);
            if !self.by_patient.contains_key(patient) {
                self.by_patient.insert(patient.to_owned(), HashMap::new());
            }
            let by_type = self.by_patient.get_mut(patient).expect("inserted above");
            let resource_type = key.split_once('/').map_or(&*key, |(t, _)| t);
            if !by_type.contains_key(resource_type) {
                by_type.insert(resource_type.to_owned(), BTreeSet::new());
            }
            if let Some(keys) = by_type.get_mut(resource_type) {
                keys.insert(key.clone());
            }
        }
        self.current.insert(key.clone(), held);
        key
    }
}

/// The node's FHIR service state: the store and the bulk-export jobs.
pub struct FhirService {
    pub store: FhirStore,
    pub exports: crate::api::fhir::ExportJobs,
}

/// The tag a deletion's tombstone carries, so the store can be rebuilt
/// from the vault alone.
pub const TOMBSTONE_TAG: (&str, &str) =
    ("https://hygeia.health/fhir/CodeSystem/version", "deleted");

#[cfg(test)]
mod tests {
    use super::*;

    fn new_version(id: &str, version: u64, patient: &str) -> NewVersion {
        let resource = serde_json::json!({
            "resourceType": "Observation", "id": id, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
            "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": "2021-03-04"
        });
        NewVersion {
            resource_type: ResourceType::Observation,
            id: id.to_owned(),
            version: Version {
                version,
                commitment: format!("{:064x}", version * 1000 + id.len() as u64),
                last_updated: 1_700_000_000_000 + version as i64,
                deleted: false,
                patient: patient.to_owned(),
                category: "lab".into(),
                author: "did:key:z6Mkauthor".into(),
            },
            index: hygeia_fhir::search::extract(ResourceType::Observation, &resource),
        }
    }

    fn parse(params: &[(&str, &str)]) -> SearchQuery {
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        hygeia_fhir::search::parse_query(
            ResourceType::Observation,
            &params,
            hygeia_fhir::search::Handling::Strict,
        )
        .unwrap()
        .0
    }

    fn row_formats(path: &Path) -> Vec<u8> {
        let db = redb::Database::open(path).unwrap();
        let txn = db.begin_read().unwrap();
        let mut firsts = Vec::new();
        for table in [CURRENT, VERSIONS] {
            for row in txn.open_table(table).unwrap().iter().unwrap() {
                firsts.push(row.unwrap().1.value()[0]);
            }
        }
        firsts
    }

    /// What is written is what is read after a restart, in the binary rows.
    #[test]
    fn versions_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fhir.redb");
        let first = new_version("o1", 1, "did:key:z6Mkpatient");
        let second = new_version("o1", 2, "did:key:z6Mkpatient");
        {
            let store = FhirStore::open(&path).unwrap();
            store.record(std::slice::from_ref(&first)).unwrap();
            store.record(std::slice::from_ref(&second)).unwrap();
            // Replayed history does not become current.
            store.record(std::slice::from_ref(&first)).unwrap();
        }
        assert!(row_formats(&path).iter().all(|f| *f == rows::FORMAT));
        let store = FhirStore::open(&path).unwrap();
        let current = store.current("Observation/o1").unwrap();
        assert_eq!(current.latest, second.version);
        assert_eq!(
            store.versions("Observation/o1").unwrap(),
            vec![second.version.clone(), first.version.clone()]
        );
        assert_eq!(
            store.locate(&first.version.commitment).unwrap(),
            Some(("Observation/o1".to_owned(), 1))
        );
        let query = parse(&[
            ("code", "http://loinc.org|4548-4"),
            ("date", "ge2021-01-01"),
        ]);
        let found = store.search(&query);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].key(), "Observation/o1");
    }

    /// A file written with JSON rows is read, and rewritten to binary rows
    /// at open without changing what it says.
    #[test]
    fn json_rows_of_before_are_rewritten_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fhir.redb");
        let versions = [
            new_version("o1", 1, "did:key:z6Mkone"),
            new_version("o1", 2, "did:key:z6Mkone"),
            new_version("o22", 1, "did:key:z6Mktwo"),
        ];
        {
            let db = redb::Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut current = txn.open_table(CURRENT).unwrap();
                let mut history = txn.open_table(VERSIONS).unwrap();
                let mut commitments = txn.open_table(LEGACY_COMMITMENTS).unwrap();
                for new in &versions {
                    let key = format!("Observation/{}", new.id);
                    let vkey = version_key(&key, new.version.version);
                    history
                        .insert(
                            vkey.as_str(),
                            serde_json::to_vec(&new.version).unwrap().as_slice(),
                        )
                        .unwrap();
                    commitments
                        .insert(new.version.commitment.as_str(), vkey.as_str())
                        .unwrap();
                    let row = Current {
                        resource_type: "Observation".into(),
                        id: new.id.clone(),
                        latest: new.version.clone(),
                        index: new.index.clone(),
                    };
                    current
                        .insert(key.as_str(), serde_json::to_vec(&row).unwrap().as_slice())
                        .unwrap();
                }
            }
            txn.commit().unwrap();
        }
        assert!(row_formats(&path).iter().all(|f| *f == b'{'));
        {
            let store = FhirStore::open(&path).unwrap();
            assert_eq!(store.len(), 2);
            assert_eq!(
                store.current("Observation/o1").unwrap().latest,
                versions[1].version
            );
        }
        assert!(row_formats(&path).iter().all(|f| *f == rows::FORMAT));
        let store = FhirStore::open(&path).unwrap();
        assert_eq!(
            store.current("Observation/o22").unwrap().latest,
            versions[2].version
        );
        assert_eq!(
            store.versions("Observation/o1").unwrap(),
            vec![versions[1].version.clone(), versions[0].version.clone()]
        );
        assert_eq!(store.of_patient("did:key:z6Mkone").len(), 1);
        let query = parse(&[("code", "4548-4")]);
        assert_eq!(store.search(&query).len(), 2);
        // The commitments table of before is gone; what it said is kept.
        assert!(table_names(&store)
            .iter()
            .all(|name| name != LEGACY_COMMITMENTS.name()));
        for new in &versions {
            let key = format!("Observation/{}", new.id);
            assert_eq!(
                store.locate(&new.version.commitment).unwrap(),
                Some((key.clone(), new.version.version))
            );
            assert_eq!(
                store.version(&key, new.version.version).unwrap(),
                Some(new.version.clone())
            );
            assert!(store.knows(&new.version.commitment));
        }
    }

    /// Memory keeps a commitment as 32 bytes only when it is a lowercase
    /// hex digest: any other text reads back as written, and a digest is
    /// not found under another spelling.
    #[test]
    fn commitments_read_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fhir.redb");
        let mut upper = new_version("o1", 1, "did:key:z6Mkpatient");
        upper.version.commitment = "AB".repeat(32);
        let mut other = new_version("o2", 1, "did:key:z6Mkpatient");
        other.version.commitment = format!("sha256:{}", "cd".repeat(32));
        let lower = new_version("o3", 1, "did:key:z6Mkpatient");
        for reopen in [false, true] {
            let store = FhirStore::open(&path).unwrap();
            if !reopen {
                store
                    .record(&[upper.clone(), other.clone(), lower.clone()])
                    .unwrap();
            }
            for new in [&upper, &other, &lower] {
                let key = format!("Observation/{}", new.id);
                assert_eq!(store.current(&key).unwrap().latest, new.version);
                assert_eq!(
                    store.locate(&new.version.commitment).unwrap(),
                    Some((key, 1))
                );
            }
            assert!(!store.knows(&"ab".repeat(32)));
            assert!(!store.knows(&lower.version.commitment.to_uppercase()));
            assert!(!store.knows(&"cd".repeat(32)));
        }
    }

    /// A resource's key is allocated once: the map of current versions,
    /// the commitment map, the patient lists and the search index share it.
    #[test]
    fn memory_holds_each_key_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fhir.redb");
        let first = new_version("o1", 1, "did:key:z6Mkpatient");
        let second = new_version("o1", 2, "did:key:z6Mkpatient");
        for reopen in [false, true] {
            let store = FhirStore::open(&path).unwrap();
            if !reopen {
                store.record(std::slice::from_ref(&first)).unwrap();
                store.record(std::slice::from_ref(&second)).unwrap();
            }
            let memory = store.read();
            let (key, _) = memory.current.get_key_value("Observation/o1").unwrap();
            for new in [&first, &second] {
                let commitment = rows::Commitment::of(&new.version.commitment);
                assert!(Arc::ptr_eq(key, &memory.commitments[&commitment].0));
            }
            let listed = &memory.by_patient["did:key:z6Mkpatient"]["Observation"];
            assert!(Arc::ptr_eq(key, listed.get("Observation/o1").unwrap()));
            // The map, the commitments (two), the patient list and the
            // index's entries, order, key order and lists.
            assert!(Arc::strong_count(key) > 5, "{}", Arc::strong_count(key));
        }
    }

    fn table_names(store: &FhirStore) -> Vec<String> {
        let txn = store.db.begin_read().unwrap();
        txn.list_tables()
            .unwrap()
            .map(|t| t.name().to_owned())
            .collect()
    }

    fn history_keys(store: &FhirStore) -> Vec<String> {
        let txn = store.db.begin_read().unwrap();
        let table = txn.open_table(VERSIONS).unwrap();
        table
            .iter()
            .unwrap()
            .map(|row| row.unwrap().0.value().to_owned())
            .collect()
    }

    /// A current version is stored once (its `current` row), and moves to
    /// `versions` when replaced; no commitment table is written. Every
    /// version is still found by number and by commitment, before and
    /// after a reopen.
    #[test]
    fn each_version_is_stored_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fhir.redb");
        let all: Vec<NewVersion> = (1..=3)
            .map(|v| new_version("o1", v, "did:key:z6Mkpatient"))
            .collect();
        let other = new_version("o22", 1, "did:key:z6Mkpatient");
        let check = |store: &FhirStore| {
            assert_eq!(
                store.versions("Observation/o1").unwrap(),
                all.iter()
                    .rev()
                    .map(|n| n.version.clone())
                    .collect::<Vec<_>>()
            );
            for new in all.iter().chain([&other]) {
                let key = format!("Observation/{}", new.id);
                assert_eq!(
                    store.version(&key, new.version.version).unwrap(),
                    Some(new.version.clone())
                );
                assert_eq!(
                    store.locate(&new.version.commitment).unwrap(),
                    Some((key, new.version.version))
                );
                assert!(store.knows(&new.version.commitment));
            }
            assert_eq!(store.version("Observation/o1", 4).unwrap(), None);
            assert_eq!(store.locate(&format!("{:064x}", 9)).unwrap(), None);
        };
        {
            let store = FhirStore::open(&path).unwrap();
            store.record(std::slice::from_ref(&all[0])).unwrap();
            store.record(std::slice::from_ref(&other)).unwrap();
            assert!(history_keys(&store).is_empty());
            store.record(&all[1..]).unwrap();
            check(&store);
        }
        let store = FhirStore::open(&path).unwrap();
        assert_eq!(
            history_keys(&store),
            vec![
                version_key("Observation/o1", 1),
                version_key("Observation/o1", 2)
            ]
        );
        check(&store);
        assert!(table_names(&store)
            .iter()
            .all(|name| name != LEGACY_COMMITMENTS.name()));
    }
}
