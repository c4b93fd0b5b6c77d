//! The records the ledger knows of: by commitment, and by patient. Types:
//! `record` and `record.erase`, and `access`, the logged decisions about a
//! patient's records (with the break-glass windows they open).

use std::sync::Arc;

use imbl::{HashMap, Vector};

use hygeia_ledger::{ErrorCode, TxError};
use serde::{Deserialize, Serialize};

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
}

/// Persistent maps (`imbl`): a clone is O(1) and shares every entry until
/// one side changes it, which copies only that entry's path (see
/// `writer.rs`). Entries sit behind an `Arc` so that copying a node copies
/// pointers; a patient's list is a persistent vector, so a patient with many
/// records costs O(log n) per new one, not a copy of the list.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Records {
    #[serde(with = "crate::snapshot::sorted_map")]
    by_commitment: HashMap<String, Arc<RecordEntry>>,
    #[serde(with = "crate::snapshot::sorted_map")]
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
        });
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
        Ok(Effect::Accessed {
            patient: self.patient,
            break_glass: self.break_glass,
        })
    }
}
