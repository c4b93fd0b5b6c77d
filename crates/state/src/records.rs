//! The records the ledger knows of: by commitment, and by patient.

use std::sync::Arc;

use imbl::{HashMap, Vector};

use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct RecordEntry {
    pub commitment: String,
    pub patient: String,
    pub author: String,
    pub category: String,
    pub resource_type: String,
    /// Leaf index of the `record` transaction.
    pub index: u64,
    /// Leaf index of the `record.erase` transaction, once erased.
    pub erased_at: Option<u64>,
}

/// Persistent maps (`imbl`): a clone is O(1) and shares every entry until
/// one side changes it, which copies only that entry's path (see
/// `writer.rs`). Entries sit behind an `Arc` so that copying a node copies
/// pointers; a patient's list is a persistent vector, so a patient with many
/// records costs O(log n) per new one, not a copy of the list.
#[derive(Clone, Debug, Default)]
pub struct Records {
    by_commitment: HashMap<String, Arc<RecordEntry>>,
    by_patient: HashMap<String, Vector<String>>,
}

impl Records {
    pub fn get(&self, commitment: &str) -> Option<&RecordEntry> {
        self.by_commitment.get(commitment).map(|entry| &**entry)
    }

    pub fn contains(&self, commitment: &str) -> bool {
        self.by_commitment.contains_key(commitment)
    }

    pub fn insert(&mut self, entry: RecordEntry) {
        self.by_patient
            .entry(entry.patient.clone())
            .or_default()
            .push_back(entry.commitment.clone());
        self.by_commitment
            .insert(entry.commitment.clone(), Arc::new(entry));
    }

    pub fn mark_erased(&mut self, commitment: &str, index: u64) {
        if let Some(entry) = self.by_commitment.get_mut(commitment) {
            Arc::make_mut(entry).erased_at = Some(index);
        }
    }

    /// A patient's records, oldest first.
    pub fn of_patient<'a>(&'a self, patient: &str) -> impl Iterator<Item = &'a RecordEntry> + 'a {
        self.by_patient
            .get(patient)
            .into_iter()
            .flatten()
            .filter_map(|c| self.get(c))
    }

    /// Every record, in no particular order.
    pub fn all(&self) -> impl Iterator<Item = &RecordEntry> {
        self.by_commitment.values().map(|entry| &**entry)
    }

    pub fn erased(&self) -> impl Iterator<Item = &RecordEntry> {
        self.all().filter(|r| r.erased_at.is_some())
    }

    pub fn len(&self) -> usize {
        self.by_commitment.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_commitment.is_empty()
    }
}
