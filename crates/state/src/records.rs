//! The records the ledger knows of: by commitment, and by patient.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
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

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Records {
    #[serde(with = "crate::snapshot::sorted_map")]
    by_commitment: HashMap<String, RecordEntry>,
    #[serde(with = "crate::snapshot::sorted_map")]
    by_patient: HashMap<String, Vec<String>>,
}

impl Records {
    pub fn get(&self, commitment: &str) -> Option<&RecordEntry> {
        self.by_commitment.get(commitment)
    }

    pub fn contains(&self, commitment: &str) -> bool {
        self.by_commitment.contains_key(commitment)
    }

    pub fn insert(&mut self, entry: RecordEntry) {
        self.by_patient
            .entry(entry.patient.clone())
            .or_default()
            .push(entry.commitment.clone());
        self.by_commitment.insert(entry.commitment.clone(), entry);
    }

    pub fn mark_erased(&mut self, commitment: &str, index: u64) {
        if let Some(entry) = self.by_commitment.get_mut(commitment) {
            entry.erased_at = Some(index);
        }
    }

    /// A patient's records, oldest first.
    pub fn of_patient<'a>(&'a self, patient: &str) -> impl Iterator<Item = &'a RecordEntry> + 'a {
        self.by_patient
            .get(patient)
            .into_iter()
            .flatten()
            .filter_map(|c| self.by_commitment.get(c))
    }

    /// Every record, in no particular order.
    pub fn all(&self) -> impl Iterator<Item = &RecordEntry> {
        self.by_commitment.values()
    }

    pub fn erased(&self) -> impl Iterator<Item = &RecordEntry> {
        self.by_commitment
            .values()
            .filter(|r| r.erased_at.is_some())
    }

    pub fn len(&self) -> usize {
        self.by_commitment.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_commitment.is_empty()
    }
}
