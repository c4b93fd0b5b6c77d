//! Versions the FHIR store learns from the vault rather than from a FHIR
//! write: those a crash kept out of it ([`repair`], at every start), and
//! copies of FHIR resources another organization's node sent this one
//! ([`index_received`], as the replication follower keeps each;
//! [`forget_destroyed`] when it destroys them again).
//!
//! Such a version is read back from its record's plaintext, so its
//! `Type/id` and version number are whatever the record's writer put in
//! it. A FHIR write checks consent on what it replaces; nothing here can,
//! so a version read back is indexed only where it cannot take the place
//! of anyone else's resource: its `Type/id` is new here, or every version
//! already known under it is governed by the same patient, is held by the
//! same node (the ledger's `record` entry says which), and has another
//! version number. Otherwise it is left out of the FHIR store (with a
//! warning) and is still served by `GET /v1/records/{id}`. Without this
//! rule, a record of another node, or one uploaded through
//! `/v1/records` with a FHIR media type, could carry the id of another
//! patient's resource and a higher `meta.versionId`, and become its current
//! version here.

use std::collections::HashMap;

use hygeia_fhir::search::IndexEntry;
use hygeia_fhir::types::ResourceType;
use hygeia_state::records::{RecordEntry, Records};

use super::{err, FhirStore, NewVersion, StoreError, Version, TOMBSTONE_TAG};
use crate::custody::Custody;

/// Indexes FHIR versions whose `record` transactions are durable but which
/// a crash kept from reaching this store (the window between the commit
/// and [`FhirStore::record`]), and copies received before copies were
/// indexed on arrival. Reads them back from the vault. Returns how many
/// were indexed.
pub fn repair(
    store: &FhirStore,
    custody: &Custody,
    records: &Records,
) -> Result<usize, StoreError> {
    let mut missing: Vec<&RecordEntry> = records
        .all()
        .filter(|r| r.erased_at.is_none() && !store.knows(&r.commitment))
        .collect();
    missing.sort_by_key(|r| r.index);
    index(store, custody, records, &missing)
}

/// Indexes a copy of a FHIR resource the replication follower has just
/// kept. `Ok(false)`: not a FHIR resource, known already, or refused by
/// the rule above.
pub fn index_received(
    store: &FhirStore,
    custody: &Custody,
    records: &Records,
    commitment: &str,
) -> Result<bool, StoreError> {
    let Some(record) = records.get(commitment) else {
        return Ok(false);
    };
    if store.knows(commitment) {
        return Ok(false);
    }
    Ok(index(store, custody, records, &[record])? == 1)
}

/// After copies were destroyed (the node is no longer entitled to them),
/// removes the resources they were versions of from the FHIR store, then
/// indexes again the versions of those resources the vault still holds.
/// Returns how many versions are no longer indexed.
pub fn forget_destroyed(
    store: &FhirStore,
    custody: &Custody,
    records: &Records,
    destroyed: &[String],
) -> Result<usize, StoreError> {
    let mut keys = Vec::new();
    for commitment in destroyed {
        if let Some((key, _)) = store.locate(commitment)? {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    if keys.is_empty() {
        return Ok(0);
    }
    let removed = store.forget(&keys)?;
    let mut held = Vec::new();
    for commitment in &removed {
        if custody.meta(commitment).map_err(err)?.is_some() {
            if let Some(record) = records.get(commitment) {
                held.push(record);
            }
        }
    }
    held.sort_by_key(|r| r.index);
    let indexed = index(store, custody, records, &held)?;
    Ok(removed.len() - indexed)
}

/// Reads `entries` back from the vault, in order, and records the ones the
/// rule admits in one write.
fn index(
    store: &FhirStore,
    custody: &Custody,
    records: &Records,
    entries: &[&RecordEntry],
) -> Result<usize, StoreError> {
    // Versions admitted by this call, by key: the rule holds among them too.
    let mut admitted: HashMap<String, Vec<(Version, Option<String>)>> = HashMap::new();
    let mut versions = Vec::new();
    for record in entries {
        let Some(new) = read_back(custody, record)? else {
            continue;
        };
        let key = format!("{}/{}", new.resource_type, new.id);
        let holder = record.node.clone();
        let mut known: Vec<(Version, Option<String>)> = store
            .versions(&key)?
            .into_iter()
            .map(|v| {
                let node = records.get(&v.commitment).and_then(|r| r.node.clone());
                (v, node)
            })
            .collect();
        known.extend(admitted.get(&key).into_iter().flatten().cloned());
        let conflict = known.iter().find(|(v, node)| {
            v.patient != new.version.patient || *node != holder || v.version == new.version.version
        });
        if let Some((v, _)) = conflict {
            tracing::warn!(
                record = %record.commitment,
                resource = %key,
                version = new.version.version,
                known = %v.commitment,
                "a FHIR version read back from the vault would take the place of another patient's, another node's or an existing version: not indexed (GET /v1/records serves it)"
            );
            continue;
        }
        admitted
            .entry(key)
            .or_default()
            .push((new.version.clone(), holder));
        versions.push(new);
    }
    store.record(&versions)?;
    Ok(versions.len())
}

/// The FHIR version a vault record holds (`None`: not a valid FHIR
/// resource with an id, or no longer held).
fn read_back(custody: &Custody, record: &RecordEntry) -> Result<Option<NewVersion>, StoreError> {
    let Some(meta) = custody.meta(&record.commitment).map_err(err)? else {
        return Ok(None);
    };
    if meta.media_type != hygeia_fhir::FHIR_JSON {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    custody.open_record(&meta, &mut bytes).map_err(err)?;
    let Ok(resource) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Ok(None);
    };
    let Some(resource_type) = resource
        .get("resourceType")
        .and_then(serde_json::Value::as_str)
        .and_then(|t| t.parse::<ResourceType>().ok())
    else {
        return Ok(None);
    };
    let Some(id) = resource["id"].as_str().filter(|id| !id.is_empty()) else {
        return Ok(None);
    };
    let version: u64 = resource["meta"]["versionId"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let last_updated = resource["meta"]["lastUpdated"]
        .as_str()
        .and_then(|t| hygeia_fhir::date::parse_date(t).ok())
        .map_or(0, |r| r.start);
    let deleted = resource["meta"]["tag"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|t| t["system"] == TOMBSTONE_TAG.0 && t["code"] == TOMBSTONE_TAG.1);
    // A version's plaintext is outside input when another node wrote it:
    // indexed only if it is a valid resource of its type, as a FHIR write
    // checks (a deletion's tombstone is not one, and is not searched).
    let index = if deleted {
        IndexEntry::new(resource_type)
    } else if hygeia_fhir::validate::validate(&resource, Some(resource_type)).is_ok() {
        hygeia_fhir::search::extract(resource_type, &resource)
    } else {
        return Ok(None);
    };
    Ok(Some(NewVersion {
        resource_type,
        id: id.to_owned(),
        version: Version {
            version,
            commitment: record.commitment.clone(),
            last_updated,
            deleted,
            patient: record.patient.clone(),
            category: record.category.clone(),
            author: record.author.clone(),
        },
        index,
    }))
}
