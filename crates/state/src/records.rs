//! The records the ledger knows of: by commitment, and by patient. Types:
//! `record` and `record.erase`, and `access`, the logged decisions about a
//! patient's records (with the break-glass windows they open).

use std::sync::Arc;

use imbl::Vector;

use hygeia_ledger::{ErrorCode, TxError};
use serde::{Deserialize, Serialize};

use super::layered::LayeredMap;
use super::registry::{example_did, Cx, Registry, TxBody};
use super::txs::{
    check_code, check_did, check_did_key, check_hex32, check_purpose, check_resource_type, Access,
    RecordBody, RecordErase, Verdict, ACCESS, MAX_CODE_LEN, MAX_RECORDS_PER_ACCESS, RECORD,
    RECORD_ERASE,
};
use super::{Effect, LedgerState, BREAK_GLASS_WINDOW_SECS};

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
    /// The node that holds it: the key that signed its `record` (none for
    /// a device's batch, which no node replicates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// Persistent collections (`imbl`): a clone is O(1) and shares every node
/// until one side changes it, which copies only the nodes on that change's
/// path (see `writer.rs`).
///
/// The writer shares its state with the readers after every commit, so the
/// next upload copies a path in each index. What a copy costs decides how
/// admission scales with the state: a node holding `String`s or `Arc`s
/// touches one heap allocation per sibling (a cache miss each once the state
/// outgrows the cache), while a node of plain bytes is one `memcpy`. So the
/// two hash indexes hold only fixed-size values (a commitment's 32 bytes, a
/// digest of the patient's DID, positions in `entries`) and are layered
/// (`layered.rs`) so that new keys land in a small trie that stays in cache.
/// The entries themselves sit in a persistent vector in the order they
/// reached the ledger, where a new one copies only the tail, which is
/// recent and hot.
///
/// Serialized (snapshots, the state digest) exactly as the two maps it
/// replaced: `by_commitment` (commitment → entry) and `by_patient` (DID →
/// commitments, oldest first), each a sorted sequence of pairs.
#[derive(Clone, Debug, Default)]
pub struct Records {
    entries: Vector<Arc<RecordEntry>>,
    by_commitment: LayeredMap<[u8; 32], u32>,
    by_patient: LayeredMap<[u8; 32], Vector<u32>>,
}

/// A commitment's bytes; `None` for a string that is not 64 lowercase hex
/// digits, which no record can have (`check_hex32`).
fn commitment_key(commitment: &str) -> Option<[u8; 32]> {
    if commitment.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let mut key = [0u8; 32];
    hex::decode_to_slice(commitment, &mut key).ok()?;
    Some(key)
}

fn patient_key(patient: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(patient.as_bytes()).into()
}

impl Records {
    fn position(&self, commitment: &str) -> Option<u32> {
        self.by_commitment
            .get(&commitment_key(commitment)?)
            .copied()
    }

    pub fn get(&self, commitment: &str) -> Option<&RecordEntry> {
        let position = self.position(commitment)?;
        self.entries.get(position as usize).map(|entry| &**entry)
    }

    pub fn contains(&self, commitment: &str) -> bool {
        self.position(commitment).is_some()
    }

    /// Adds a record the rules admitted. Its commitment is 64 lowercase hex
    /// digits and not yet known (`RecordBody::check` and `apply`).
    pub fn insert(&mut self, entry: RecordEntry) -> Result<(), TxError> {
        let key = commitment_key(&entry.commitment).ok_or_else(|| {
            TxError::new(
                ErrorCode::SchemaViolation,
                "commitment must be 64 lowercase hex digits",
            )
        })?;
        let position = u32::try_from(self.entries.len()).map_err(|_| {
            TxError::new(
                ErrorCode::Conflict("records.full"),
                "the ledger holds as many records as it can index",
            )
        })?;
        let patient = patient_key(&entry.patient);
        let mut list = self.by_patient.get(&patient).cloned().unwrap_or_default();
        list.push_back(position);
        self.by_patient.insert(patient, list);
        self.by_commitment.insert(key, position);
        self.entries.push_back(Arc::new(entry));
        Ok(())
    }

    pub fn mark_erased(&mut self, commitment: &str, index: u64) {
        if let Some(position) = self.position(commitment) {
            if let Some(entry) = self.entries.get_mut(position as usize) {
                Arc::make_mut(entry).erased_at = Some(index);
            }
        }
    }

    /// A patient's records, oldest first.
    pub fn of_patient<'a>(
        &'a self,
        patient: &'a str,
    ) -> impl Iterator<Item = &'a RecordEntry> + 'a {
        self.by_patient
            .get(&patient_key(patient))
            .into_iter()
            .flatten()
            .filter_map(|&position| self.entries.get(position as usize))
            .map(|entry| &**entry)
            // A digest names one DID; checking it costs nothing and keeps
            // the answer exact whatever the digest.
            .filter(move |entry| entry.patient == patient)
    }

    /// Every record, in the order they reached the ledger.
    pub fn all(&self) -> impl Iterator<Item = &RecordEntry> {
        self.entries.iter().map(|entry| &**entry)
    }

    pub fn erased(&self) -> impl Iterator<Item = &RecordEntry> {
        self.all().filter(|r| r.erased_at.is_some())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The serialized form: the two maps `Records` held before it indexed by
/// fixed-size keys, so snapshots and state digests did not change.
#[derive(Serialize)]
struct RecordsOut<'a> {
    by_commitment: Vec<(&'a str, &'a RecordEntry)>,
    by_patient: Vec<(&'a str, Vec<&'a str>)>,
}

#[derive(Deserialize)]
struct RecordsIn {
    by_commitment: Vec<(String, RecordEntry)>,
    by_patient: Vec<(String, Vec<String>)>,
}

impl Serialize for Records {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut by_commitment: Vec<(&str, &RecordEntry)> =
            self.all().map(|e| (e.commitment.as_str(), e)).collect();
        by_commitment.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut patients: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        for entry in self.all() {
            patients
                .entry(entry.patient.as_str())
                .or_default()
                .push(entry.commitment.as_str());
        }
        RecordsOut {
            by_commitment,
            by_patient: patients.into_iter().collect(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Records {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let form = RecordsIn::deserialize(deserializer)?;
        let mut entries: Vec<RecordEntry> =
            form.by_commitment.into_iter().map(|(_, e)| e).collect();
        // Records reach the ledger in log order, so leaf index order is the
        // order they were inserted in.
        entries.sort_by_key(|e| e.index);
        let mut records = Records::default();
        for entry in entries {
            if records.contains(&entry.commitment) {
                return Err(D::Error::custom("a record commitment appears twice"));
            }
            records
                .insert(entry)
                .map_err(|e| D::Error::custom(e.to_string()))?;
        }
        // The per-patient index is derived; a form whose copy disagrees
        // with the entries is damaged, not a state to trust.
        let expected: usize = form.by_patient.iter().map(|(_, c)| c.len()).sum();
        let consistent = expected == records.len()
            && form.by_patient.iter().all(|(patient, commitments)| {
                records
                    .of_patient(patient)
                    .map(|e| e.commitment.as_str())
                    .eq(commitments.iter().map(String::as_str))
            });
        if !consistent {
            return Err(D::Error::custom(
                "records: the per-patient index does not match the records",
            ));
        }
        Ok(records)
    }
}

/// Registers the types of this domain.
pub(crate) fn register(r: &mut Registry) {
    r.add::<RecordBody>();
    r.add::<RecordErase>();
    r.add::<Access>();
}

impl TxBody for RecordBody {
    const TYPE: &'static str = RECORD;

    fn example() -> Self {
        RecordBody {
            patient: example_did(4),
            author: example_did(2),
            category: "lab".into(),
            resource_type: "Observation".into(),
            commitment: "ab".repeat(32),
        }
    }

    fn check(&self) -> Result<(), String> {
        check_did_key("patient", &self.patient)?;
        check_did_key("author", &self.author)?;
        check_code("category", &self.category)?;
        check_resource_type(&self.resource_type)?;
        check_hex32("commitment", &self.commitment)
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        state.require_custodian(cx.index, cx.key, &cx.signer, RECORD)?;
        if state.records.contains(&self.commitment) {
            return Err(TxError::new(
                ErrorCode::Conflict("record.exists"),
                format!("record {} is already on the ledger", self.commitment),
            ));
        }
        state.records.insert(RecordEntry {
            commitment: self.commitment,
            patient: self.patient,
            author: self.author,
            category: self.category,
            resource_type: self.resource_type,
            index: cx.index,
            erased_at: None,
            node: Some(cx.key.to_owned()),
        })?;
        Ok(Effect::None)
    }
}

impl TxBody for RecordErase {
    const TYPE: &'static str = RECORD_ERASE;

    fn example() -> Self {
        RecordErase {
            record: "ab".repeat(32),
        }
    }

    fn check(&self) -> Result<(), String> {
        check_hex32("record", &self.record)
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        let signer = cx.signer.as_str();
        let record = state.records.get(&self.record).ok_or_else(|| {
            TxError::new(
                ErrorCode::NotFound("record.unknown"),
                format!("no record {} on the ledger", self.record),
            )
        })?;
        if record.erased_at.is_some() {
            return Err(TxError::new(
                ErrorCode::Conflict("record.already_erased"),
                format!("record {} is already erased", self.record),
            ));
        }
        let consents = state.policy.consents();
        let allowed = signer == record.patient
            || consents.is_delegate(&record.patient, signer)
            || state.participants.is_governance(signer);
        if !allowed {
            return Err(TxError::new(
                ErrorCode::Forbidden("record.erase_not_allowed"),
                "only the patient, a registered delegate or the governance key erases a record",
            ));
        }
        state.records.mark_erased(&self.record, cx.index);
        Ok(Effect::Erased {
            commitment: self.record,
        })
    }
}

impl TxBody for Access {
    const TYPE: &'static str = ACCESS;

    fn example() -> Self {
        Access {
            requester: example_did(2),
            patient: example_did(4),
            action: hygeia_policy::Action::Read,
            purpose: "TREAT".into(),
            records: vec!["ab".repeat(32)],
            decision: Verdict::Permit,
            break_glass: false,
            justified: false,
            reasons: vec!["hygeia.consent".into()],
            grants: vec!["cd".repeat(32)],
            governance_version: 1,
            time: 1_800_000_000,
        }
    }

    fn check(&self) -> Result<(), String> {
        check_did("requester", &self.requester)?;
        check_did_key("patient", &self.patient)?;
        check_purpose(&self.purpose)?;
        if self.records.len() > MAX_RECORDS_PER_ACCESS {
            return Err(format!(
                "access body: at most {MAX_RECORDS_PER_ACCESS} records"
            ));
        }
        for record in &self.records {
            check_hex32("records[]", record)?;
        }
        for code in self.reasons.iter().chain(&self.grants) {
            if code.is_empty()
                || code.len() > MAX_CODE_LEN * 2
                || code.chars().any(char::is_whitespace)
            {
                return Err("access body: reasons and grants are ids, not text".into());
            }
        }
        Ok(())
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        state.require_custodian(cx.index, cx.key, &cx.signer, ACCESS)?;
        if self.break_glass && self.justified && self.decision == Verdict::Permit {
            state.break_glass.insert(
                (self.requester.clone(), self.patient.clone()),
                self.time.saturating_add(BREAK_GLASS_WINDOW_SECS),
            );
        }
        super::sharing::note_access(state, &self);
        Ok(Effect::Accessed {
            patient: self.patient,
            break_glass: self.break_glass,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(commitment: u8, patient: &str, index: u64) -> RecordEntry {
        RecordEntry {
            commitment: hex::encode([commitment; 32]),
            patient: patient.into(),
            author: patient.into(),
            category: "lab".into(),
            resource_type: "Observation".into(),
            index,
            erased_at: None,
            node: None,
        }
    }

    fn sample() -> Records {
        let mut records = Records::default();
        records.insert(entry(0xbb, "did:key:zB", 1)).unwrap();
        records.insert(entry(0xaa, "did:key:zB", 2)).unwrap();
        records.insert(entry(0xcc, "did:key:zA", 3)).unwrap();
        records.mark_erased(&hex::encode([0xaa; 32]), 4);
        records
    }

    #[test]
    fn serializes_as_the_two_sorted_maps_it_replaced() {
        let json = serde_json::to_value(sample()).unwrap();
        let (a, b, c) = (
            hex::encode([0xaa; 32]),
            hex::encode([0xbb; 32]),
            hex::encode([0xcc; 32]),
        );
        let keys: Vec<&str> = json["by_commitment"]
            .as_array()
            .unwrap()
            .iter()
            .map(|pair| pair[0].as_str().unwrap())
            .collect();
        assert_eq!(keys, [a.as_str(), b.as_str(), c.as_str()]);
        assert_eq!(json["by_commitment"][0][1]["erased_at"], 4);
        assert_eq!(
            json["by_patient"],
            serde_json::json!([["did:key:zA", [c]], ["did:key:zB", [b, a]]])
        );
        let back: Records = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(serde_json::to_value(&back).unwrap(), json);
        let order: Vec<u64> = back.of_patient("did:key:zB").map(|e| e.index).collect();
        assert_eq!(order, [1, 2]);
    }

    #[test]
    fn a_form_whose_patient_index_disagrees_is_refused() {
        let mut json = serde_json::to_value(sample()).unwrap();
        json["by_patient"][1][1] = serde_json::json!([hex::encode([0xaa; 32])]);
        assert!(serde_json::from_value::<Records>(json).is_err());
        let mut twice = serde_json::to_value(sample()).unwrap();
        let first = twice["by_commitment"][0].clone();
        twice["by_commitment"].as_array_mut().unwrap().push(first);
        assert!(serde_json::from_value::<Records>(twice).is_err());
    }

    #[test]
    fn only_lowercase_hex_commitments_are_found() {
        let records = sample();
        assert!(records.contains(&hex::encode([0xaa; 32])));
        assert!(!records.contains(&hex::encode([0xaa; 32]).to_uppercase()));
        assert!(!records.contains("not hex"));
        assert!(Records::default().insert(entry(1, "did:key:zA", 1)).is_ok());
        let mut bad = entry(1, "did:key:zA", 1);
        bad.commitment = "AB".repeat(32);
        assert!(Records::default().insert(bad).is_err());
    }
}
