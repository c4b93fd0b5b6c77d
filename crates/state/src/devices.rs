//! Connected devices and adherence. Types: `device.attest`, `device.batch`,
//! `adherence.rule` and `adherence.evaluate`.
//!
//! A device is a did:key. Its patient binds it with `device.attest`: the
//! body carries the manufacturer's device-attestation credential (an SD-JWT
//! VC, [`VCT_DEVICE_ATTESTATION`]) presented by the device itself, its
//! key-binding JWT addressed to the network and naming the patient as its
//! nonce, so both the device and the patient agreed to the binding. The
//! manufacturer must be on the trust list for that type; its status list
//! can revoke or suspend the attestation, which is checked again for every
//! batch.
//!
//! Readings (FHIR R5 Observations signed by the device key, see [`batch`])
//! reach the ledger only as one `device.batch` per batch, signed by a
//! custodian after it checked every signature: the Merkle root over the
//! readings' salted commitments, their count, the device, the time window
//! and, per kind of reading, the days that have one. Never a value. The
//! batch itself is one encrypted record in the vault, for the bound
//! patient, read under consent like any other record.
//!
//! Adherence rules ("a glucose reading on at least 80 % of the days between
//! two dates") are evaluated here, by the state machine, over the days the
//! batches recorded: anyone holding the log re-runs the same evaluation.
//! A day counted only by a device whose attestation is now revoked,
//! suspended, of unknown status or from a manufacturer no longer trusted
//! is shown as disputed, never counted; a day without any reading is shown
//! as missing. A met rule emits [`AdherenceMet`] once per rule and subject.

pub mod batch;
pub mod trial;

use std::collections::BTreeSet;
use std::sync::Arc;

use hygeia_credentials::credential_types::VCT_DEVICE_ATTESTATION;
use hygeia_ledger::{ErrorCode, TxError};
use imbl::{HashMap, Vector};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::accounts::acts_for;
use super::credentials::{issuer_header_key, status_refs, LicenceStanding, StatusRef};
use super::escrow::MilestoneReached;
use super::records::RecordEntry;
use super::registry::{example_did, Cx, Registry, TxBody};
use super::txs::{check_did_key, check_hex32};
use super::{Effect, LedgerState};

pub const DEVICE_ATTEST: &str = "device.attest";
pub const DEVICE_BATCH: &str = "device.batch";
pub const ADHERENCE_RULE: &str = "adherence.rule";
pub const ADHERENCE_EVALUATE: &str = "adherence.evaluate";

/// The record category of a batch of device readings.
pub const DEVICE_CATEGORY: &str = "device";
/// Most readings in one batch.
pub const MAX_BATCH_READINGS: u32 = 1000;
/// Longest binding window and longest adherence rule window, in days.
pub const MAX_WINDOW_DAYS: u32 = 3660;
/// Seconds in a day (UTC days, Unix day numbers).
pub const DAY_SECS: i64 = 86_400;

/// What a reading measures, from its LOINC code ([`batch::kind_of`]).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ReadingKind {
    Glucose,
    Spo2,
    Steps,
}

impl ReadingKind {
    pub fn code(self) -> &'static str {
        match self {
            ReadingKind::Glucose => "glucose",
            ReadingKind::Spo2 => "spo2",
            ReadingKind::Steps => "steps",
        }
    }
}

/// A patient binds an attested device (a did:key) to themselves, for the
/// readings taken within a window. Signed by the patient; the presentation
/// is the manufacturer's device-attestation SD-JWT VC, presented by the
/// device (key binding to the network, nonce the patient's DID), with no
/// serial number or UDI disclosed.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceAttest {
    /// The device's did:key: the credential's subject and holder key.
    pub device: String,
    /// The compact SD-JWT VC presentation with key binding.
    pub presentation: String,
    /// Readings taken before this time (Unix seconds) are refused.
    pub from: i64,
    /// Readings taken at or after this time are refused.
    pub until: i64,
    /// The study the device is bound for (its id): the signer is the
    /// subject's did:key for that study, whose consent counts now; the
    /// device's batches then flow only while the subject's consent counts
    /// and only inside its trial window ([`trial`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub study: Option<String>,
}

/// One batch of signed readings from an attested device, committed by a
/// custodian that checked each reading's signature: a Merkle root over the
/// readings' salted commitments, the count, the time window, and the days
/// that have a reading, per kind. The batch is one encrypted record in the
/// vault (`commitment`), for the device's patient.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceBatch {
    pub device: String,
    /// RFC 9162 Merkle root over the readings' commitments (hex).
    pub root: String,
    /// How many readings the batch holds.
    pub count: u32,
    /// Earliest reading time (Unix seconds).
    pub from: i64,
    /// Latest reading time (Unix seconds).
    pub to: i64,
    /// Per kind, the Unix day numbers with at least one reading, ascending.
    pub days: Vec<KindDays>,
    /// The vault commitment to the encrypted batch (a record).
    pub commitment: String,
}

/// The days of one kind of reading.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KindDays {
    pub kind: ReadingKind,
    pub days: Vec<u32>,
}

/// An adherence rule: a reading of `kind` on at least `min_percent` % of
/// the days from `start_day` to `end_day` (Unix day numbers, inclusive).
/// Its signer owns it.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdherenceRule {
    /// The rule's id (hex, 32 bytes; say, the hash of the protocol text
    /// that states it).
    pub rule: String,
    pub kind: ReadingKind,
    pub start_day: u32,
    pub end_day: u32,
    pub min_percent: u8,
    /// The study the rule belongs to (its id): only the study's sponsor
    /// registers it, and it owns it; it counts only the readings of a
    /// subject's devices bound to the study, on the days of the subject's
    /// trial window ([`trial`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub study: Option<String>,
}

/// Evaluates an adherence rule for a subject over the batches on the
/// ledger, and records the result; signed by the rule's owner or the
/// subject. A met rule emits `AdherenceMet`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdherenceEvaluate {
    pub rule: String,
    /// The patient's did:key (pseudonymous).
    pub subject: String,
}

/// Emitted when an adherence rule is met for a subject, once per rule and
/// subject. `subject` is the patient's pseudonymous did:key; `rule` the
/// rule's id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdherenceMet {
    pub rule: String,
    pub subject: String,
}

/// The escrow milestone a met rule reaches
/// ([`crate::escrow`], condition `{"kind":"milestone","id":…}`):
/// `adherence/<rule>/<owner>/<subject>`, the owner and the subject as the
/// first 32 hex digits of the SHA-256 of their DIDs. Only this domain
/// emits ids under `adherence/`, and the id names the rule's owner: a
/// sponsor who funds a participant's stipend on its own rule cannot be
/// paid out by a look-alike rule someone else registered.
pub fn milestone_id(rule: &str, owner: &str, subject: &str) -> String {
    use sha2::{Digest, Sha256};
    let short = |did: &str| hex::encode(&Sha256::digest(did.as_bytes())[..16]);
    format!("adherence/{rule}/{}/{}", short(owner), short(subject))
}

/// A bound device, as verified when it was attested.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeviceEntry {
    pub device: String,
    pub patient: String,
    /// The manufacturer (the credential's issuer).
    pub issuer: String,
    pub model: String,
    pub firmware_version: String,
    pub not_before: Option<i64>,
    pub not_after: Option<i64>,
    pub status: Vec<StatusRef>,
    pub from: i64,
    pub until: i64,
    /// Leaf index of the `device.attest`.
    pub index: u64,
    /// The latest reading time of its last batch: a later batch starts
    /// after it.
    pub last_to: Option<i64>,
    pub batches: u64,
    pub readings: u64,
    /// (kind, day) → how many batches have a reading that day.
    #[serde(with = "crate::snapshot::sorted_map")]
    pub days: HashMap<(ReadingKind, u32), u32>,
    /// The study the device is bound for, if any.
    #[serde(default)]
    pub study: Option<String>,
}

/// Why a device's readings do not count.
pub type DeviceStanding = LicenceStanding;

/// The result of the latest evaluation of a rule for a subject.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdherenceResult {
    pub rule: String,
    pub subject: String,
    /// Days in the rule's window.
    pub days: u32,
    /// Days with a reading from a device in good standing.
    pub counted: u32,
    /// Days whose only readings come from a device no longer in good
    /// standing: shown, not counted.
    pub disputed: Vec<u32>,
    /// Days without any reading.
    pub missing: Vec<u32>,
    pub met: bool,
    /// Leaf index of the evaluation.
    pub index: u64,
}

/// A rule as registered.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RuleEntry {
    pub owner: String,
    pub kind: ReadingKind,
    pub start_day: u32,
    pub end_day: u32,
    pub min_percent: u8,
    pub index: u64,
    /// The study the rule belongs to, if any (its owner is the study's
    /// sponsor).
    #[serde(default)]
    pub study: Option<String>,
}

/// Persistent maps (`imbl`), entries behind an `Arc`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Devices {
    #[serde(with = "crate::snapshot::sorted_map")]
    devices: HashMap<String, Arc<DeviceEntry>>,
    /// Patient → their devices, in binding order.
    #[serde(with = "crate::snapshot::sorted_map")]
    by_patient: HashMap<String, Vector<String>>,
    /// Batch roots seen: the same batch is never committed twice.
    #[serde(with = "crate::snapshot::sorted_set")]
    roots: imbl::HashSet<String>,
    #[serde(with = "crate::snapshot::sorted_map")]
    rules: HashMap<String, Arc<RuleEntry>>,
    /// (rule, subject) → latest result.
    #[serde(with = "crate::snapshot::sorted_map")]
    results: HashMap<(String, String), Arc<AdherenceResult>>,
}

impl Devices {
    pub fn device(&self, device: &str) -> Option<&DeviceEntry> {
        self.devices.get(device).map(|d| &**d)
    }

    pub fn of_patient<'a>(&'a self, patient: &str) -> impl Iterator<Item = &'a DeviceEntry> + 'a {
        self.by_patient
            .get(patient)
            .into_iter()
            .flatten()
            .filter_map(|d| self.device(d))
    }

    pub fn rule(&self, rule: &str) -> Option<&RuleEntry> {
        self.rules.get(rule).map(|r| &**r)
    }

    pub fn result(&self, rule: &str, subject: &str) -> Option<&AdherenceResult> {
        self.results
            .get(&(rule.to_owned(), subject.to_owned()))
            .map(|r| &**r)
    }

    pub fn len(&self) -> usize {
        self.devices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }
}

impl LedgerState {
    /// Whether `device`'s readings taken at `time` count: its
    /// manufacturer is trusted for device attestations, the attestation is
    /// valid at `time` and its status lists say neither revoked nor
    /// suspended.
    pub fn device_standing(&self, device: &DeviceEntry, time: i64) -> DeviceStanding {
        if self
            .credentials
            .trusted(&device.issuer, VCT_DEVICE_ATTESTATION)
            .is_none()
        {
            return LicenceStanding::UntrustedIssuer;
        }
        if device.not_before.is_some_and(|nbf| time < nbf) {
            return LicenceStanding::NotYetValid;
        }
        if device.not_after.is_some_and(|exp| time >= exp) {
            return LicenceStanding::Expired;
        }
        self.credentials
            .status_standing(&device.issuer, &device.status)
    }

    /// Evaluates `rule` for `subject` over the batches applied so far.
    pub fn evaluate_adherence(
        &self,
        rule_id: &str,
        rule: &RuleEntry,
        subject: &str,
        index: u64,
    ) -> AdherenceResult {
        // A study's rule counts the subject's devices of that study, on
        // the days of its trial window; any other rule, no trial device.
        let window = match rule.study.as_deref() {
            Some(study) => self
                .trials
                .subject(study, subject)
                .map_or((1, 0), trial::window_days),
            None => (0, u32::MAX),
        };
        // Per device: whether its readings count now (revocation and trust
        // are read now; expiry was checked at each batch's readings).
        let devices: Vec<(&DeviceEntry, bool)> = self
            .devices
            .of_patient(subject)
            .filter(|d| d.study == rule.study)
            .map(|d| {
                let standing = self.device_standing(d, d.last_to.unwrap_or(d.from));
                (d, standing == LicenceStanding::Valid)
            })
            .collect();
        let mut counted = 0;
        let mut disputed = Vec::new();
        let mut missing = Vec::new();
        for day in rule.start_day..=rule.end_day {
            if day < window.0 || day > window.1 {
                missing.push(day);
                continue;
            }
            let mut seen_good = false;
            let mut seen_bad = false;
            for (device, good) in &devices {
                if device.days.contains_key(&(rule.kind, day)) {
                    if *good {
                        seen_good = true;
                        break;
                    }
                    seen_bad = true;
                }
            }
            if seen_good {
                counted += 1;
            } else if seen_bad {
                disputed.push(day);
            } else {
                missing.push(day);
            }
        }
        let days = rule.end_day - rule.start_day + 1;
        AdherenceResult {
            rule: rule_id.to_owned(),
            subject: subject.to_owned(),
            days,
            counted,
            disputed,
            missing,
            met: u64::from(counted) * 100 >= u64::from(rule.min_percent) * u64::from(days),
            index,
        }
    }
}

/// Registers the types of this domain.
pub(crate) fn register(r: &mut Registry) {
    r.add::<DeviceAttest>();
    r.add::<DeviceBatch>();
    r.add::<AdherenceRule>();
    r.add::<AdherenceEvaluate>()
        .emits::<AdherenceMet>()
        .emits::<MilestoneReached>();
}

fn invalid(code: &'static str, message: impl Into<String>) -> TxError {
    TxError::new(ErrorCode::Invalid(code), message)
}

fn check_window(from: i64, until: i64) -> Result<(), String> {
    if from < 0 || until <= from {
        return Err("the window's start is before its end, and not before 1970".into());
    }
    if (until - from) / DAY_SECS > i64::from(MAX_WINDOW_DAYS) {
        return Err(format!("a window is at most {MAX_WINDOW_DAYS} days"));
    }
    Ok(())
}

impl TxBody for DeviceAttest {
    const TYPE: &'static str = DEVICE_ATTEST;

    fn example() -> Self {
        DeviceAttest {
            device: example_did(7),
            presentation: "eyJhbGciOiJFZERTQSJ9.e30.c2ln~".into(),
            from: 1_800_000_000,
            until: 1_800_000_000 + 90 * DAY_SECS,
            study: Some("cd".repeat(32)),
        }
    }

    fn check(&self) -> Result<(), String> {
        check_did_key("device", &self.device)?;
        if self.presentation.is_empty() || self.presentation.contains(char::is_whitespace) {
            return Err("device.attest body: presentation must be a compact SD-JWT".into());
        }
        if let Some(study) = &self.study {
            check_hex32("study", study)?;
        }
        check_window(self.from, self.until)
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        use hygeia_credentials::credential_types::{Credential, CredentialKind};
        use hygeia_credentials::jws::VerifyingKey;
        use hygeia_credentials::sd_jwt::{verify_presentation, VerifyOptions};
        if state.devices.devices.contains_key(&self.device) {
            return Err(TxError::new(
                ErrorCode::Conflict("device.exists"),
                format!("device {} is already bound", self.device),
            ));
        }
        if self.device == cx.signer || self.device == cx.key {
            return Err(invalid(
                "device.is_patient",
                "a device has a key of its own, not its patient's",
            ));
        }
        if let Some(study) = &self.study {
            trial::require_consenting(state, study, &cx.signer)?;
        }
        let participants = &state.participants;
        let resolver = |issuer: &str, header: &hygeia_credentials::jws::Header| {
            issuer_header_key(participants, issuer, header)
        };
        let audience = state.network.id().unwrap_or_default().to_owned();
        let mut options = VerifyOptions::new(0).require_key_binding(&audience, &cx.signer);
        // Validity is checked against each batch's readings instead, so
        // replay gives the same answer whenever it runs.
        options.clock_skew_secs = i64::MAX;
        options.kb_max_age_secs = i64::MAX;
        let verified =
            verify_presentation(&self.presentation, &resolver, &options).map_err(|e| {
                invalid(
                    "device.invalid_attestation",
                    format!("{}: {}", e.code(), e.reason()),
                )
            })?;
        if verified.vct() != VCT_DEVICE_ATTESTATION {
            return Err(invalid(
                "device.wrong_type",
                format!(
                    "a device attestation has vct {VCT_DEVICE_ATTESTATION}, not {}",
                    verified.vct()
                ),
            ));
        }
        if state
            .credentials
            .trusted(verified.issuer(), VCT_DEVICE_ATTESTATION)
            .is_none()
        {
            return Err(TxError::new(
                ErrorCode::Forbidden("device.untrusted_manufacturer"),
                format!(
                    "{} is not on the trust list for device attestations",
                    verified.issuer()
                ),
            ));
        }
        let Ok(Credential::DeviceAttestation(attestation)) = Credential::from_verified(&verified)
        else {
            return Err(invalid(
                "device.invalid_attestation",
                "the claims are not a device attestation",
            ));
        };
        if attestation.subject.as_str() != self.device {
            return Err(TxError::new(
                ErrorCode::Forbidden("device.not_subject"),
                "the attestation is about another device",
            ));
        }
        let device_key = hygeia_identity::Did::parse_cached(&self.device)
            .map_err(|e| invalid("device.invalid_attestation", e.to_string()))?;
        if verified.holder_key() != Some(&VerifyingKey::from(*device_key.public_key())) {
            return Err(TxError::new(
                ErrorCode::Forbidden("device.not_subject"),
                "the attestation is bound (cnf) to another key than the device's",
            ));
        }
        // A serial number or UDI identifies one unit, and so its patient:
        // never on the ledger.
        for member in CredentialKind::DeviceAttestation.disclosable_members() {
            if verified.claims().contains_key(*member) {
                return Err(invalid(
                    "device.identifying_disclosure",
                    format!("the presentation discloses {member}; present it without"),
                ));
            }
        }
        let status = status_refs(&verified, "device.bad_status", true)?;
        let claims = verified.claims();
        let time = |name: &str| claims.get(name).and_then(|v| v.as_i64());
        let entry = DeviceEntry {
            device: self.device.clone(),
            patient: cx.signer.clone(),
            issuer: verified.issuer().to_owned(),
            model: attestation.model,
            firmware_version: attestation.firmware_version,
            not_before: time("nbf"),
            not_after: time("exp"),
            status,
            from: self.from,
            until: self.until,
            index: cx.index,
            last_to: None,
            batches: 0,
            readings: 0,
            days: HashMap::new(),
            study: self.study,
        };
        state.identities.note_known(&entry.issuer);
        state.credentials.reference_status(&entry.status);
        state
            .devices
            .by_patient
            .entry(cx.signer.clone())
            .or_default()
            .push_back(self.device.clone());
        state.devices.devices.insert(self.device, Arc::new(entry));
        Ok(Effect::None)
    }
}

impl TxBody for DeviceBatch {
    const TYPE: &'static str = DEVICE_BATCH;

    fn example() -> Self {
        DeviceBatch {
            device: example_did(7),
            root: "ab".repeat(32),
            count: 2,
            from: 1_800_000_000,
            to: 1_800_000_600,
            days: vec![KindDays {
                kind: ReadingKind::Glucose,
                days: vec![1_800_000_000 / DAY_SECS as u32],
            }],
            commitment: "cd".repeat(32),
        }
    }

    fn check(&self) -> Result<(), String> {
        check_did_key("device", &self.device)?;
        check_hex32("root", &self.root)?;
        check_hex32("commitment", &self.commitment)?;
        if self.count == 0 || self.count > MAX_BATCH_READINGS {
            return Err(format!(
                "device.batch body: 1 to {MAX_BATCH_READINGS} readings"
            ));
        }
        if self.from < 0 || self.to < self.from {
            return Err("device.batch body: from is at or before to".into());
        }
        let (first, last) = (self.from / DAY_SECS, self.to / DAY_SECS);
        let mut kinds = BTreeSet::new();
        let mut total = 0usize;
        for entry in &self.days {
            if !kinds.insert(entry.kind) {
                return Err("device.batch body: each kind once in days".into());
            }
            if entry.days.is_empty() || !entry.days.windows(2).all(|w| w[0] < w[1]) {
                return Err("device.batch body: days are ascending, at least one".into());
            }
            if entry
                .days
                .iter()
                .any(|&d| i64::from(d) < first || i64::from(d) > last)
            {
                return Err("device.batch body: every day lies between from and to".into());
            }
            total += entry.days.len();
        }
        if self.days.is_empty() || total > self.count as usize {
            return Err("device.batch body: at least one day, at most one per reading".into());
        }
        Ok(())
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        state.require_custodian(cx.index, cx.key, &cx.signer, DEVICE_BATCH)?;
        let device = state.devices.device(&self.device).ok_or_else(|| {
            TxError::new(
                ErrorCode::NotFound("device.unknown"),
                format!("no attested device {}", self.device),
            )
        })?;
        check_batch_admissible(state, device, &self)?;
        if state.devices.roots.contains(&self.root) {
            return Err(replayed());
        }
        if state.records.contains(&self.commitment) {
            return Err(TxError::new(
                ErrorCode::Conflict("record.exists"),
                format!("record {} is already on the ledger", self.commitment),
            ));
        }
        let patient = device.patient.clone();
        state.records.insert(RecordEntry {
            commitment: self.commitment,
            patient,
            author: self.device.clone(),
            category: DEVICE_CATEGORY.into(),
            resource_type: "Observation".into(),
            index: cx.index,
            erased_at: None,
            node: None,
        })?;
        state.devices.roots.insert(self.root);
        if let Some(entry) = state.devices.devices.get_mut(&self.device) {
            let entry = Arc::make_mut(entry);
            entry.last_to = Some(self.to);
            entry.batches += 1;
            entry.readings += u64::from(self.count);
            for kind in &self.days {
                for &day in &kind.days {
                    *entry.days.entry((kind.kind, day)).or_insert(0) += 1;
                }
            }
        }
        Ok(Effect::None)
    }
}

fn replayed() -> TxError {
    TxError::new(
        ErrorCode::Conflict("device.batch_replayed"),
        "this batch, or readings at or before the end of the device's last batch, was already committed",
    )
}

/// The state's checks of a batch from `device` (the node runs them before
/// it checks any signature): the device in good standing at the batch's
/// readings, the readings inside its binding window, and after its last
/// batch.
pub fn check_batch_admissible(
    state: &LedgerState,
    device: &DeviceEntry,
    batch: &DeviceBatch,
) -> Result<(), TxError> {
    for time in [batch.from, batch.to] {
        match state.device_standing(device, time) {
            LicenceStanding::Valid => {}
            LicenceStanding::UntrustedIssuer => {
                return Err(TxError::new(
                    ErrorCode::Forbidden("device.untrusted_manufacturer"),
                    "the device's manufacturer is no longer trusted for device attestations",
                ))
            }
            LicenceStanding::Revoked => {
                return Err(TxError::new(
                    ErrorCode::Forbidden("device.revoked"),
                    "the device's attestation is revoked",
                ))
            }
            LicenceStanding::Suspended => {
                return Err(TxError::new(
                    ErrorCode::Forbidden("device.suspended"),
                    "the device's attestation is suspended",
                ))
            }
            LicenceStanding::StatusUnknown => {
                return Err(TxError::new(
                    ErrorCode::Forbidden("device.status_unknown"),
                    "the status list of the device's attestation is not anchored",
                ))
            }
            LicenceStanding::NotYetValid | LicenceStanding::Expired => {
                return Err(invalid(
                    "device.reading_outside_window",
                    "readings lie outside the attestation's validity",
                ))
            }
        }
    }
    if batch.from < device.from || batch.to >= device.until {
        return Err(invalid(
            "device.reading_outside_window",
            format!(
                "readings lie outside the device's window [{}, {})",
                device.from, device.until
            ),
        ));
    }
    trial::check_batch(state, device, batch)?;
    if device.last_to.is_some_and(|last| batch.from <= last) {
        return Err(replayed());
    }
    Ok(())
}

impl TxBody for AdherenceRule {
    const TYPE: &'static str = ADHERENCE_RULE;

    fn example() -> Self {
        AdherenceRule {
            rule: "ef".repeat(32),
            kind: ReadingKind::Glucose,
            start_day: 20_833,
            end_day: 20_922,
            min_percent: 80,
            study: Some("cd".repeat(32)),
        }
    }

    fn check(&self) -> Result<(), String> {
        check_hex32("rule", &self.rule)?;
        if self.end_day < self.start_day || self.end_day - self.start_day >= MAX_WINDOW_DAYS {
            return Err(format!(
                "adherence.rule body: start_day ≤ end_day, at most {MAX_WINDOW_DAYS} days"
            ));
        }
        if self.min_percent == 0 || self.min_percent > 100 {
            return Err("adherence.rule body: min_percent is 1 to 100".into());
        }
        if let Some(study) = &self.study {
            check_hex32("study", study)?;
        }
        Ok(())
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        if state.devices.rules.contains_key(&self.rule) {
            return Err(TxError::new(
                ErrorCode::Conflict("adherence.rule_exists"),
                format!("rule {} exists", self.rule),
            ));
        }
        // A study's rule is its sponsor's (a key acting for it signs).
        let owner = match &self.study {
            Some(id) => {
                let study = state.trials.require_study(id)?;
                super::trials::study::require_sponsor(state, study, &cx.signer)?;
                study.sponsor.clone()
            }
            None => cx.signer.clone(),
        };
        state.devices.rules.insert(
            self.rule,
            Arc::new(RuleEntry {
                owner,
                kind: self.kind,
                start_day: self.start_day,
                end_day: self.end_day,
                min_percent: self.min_percent,
                index: cx.index,
                study: self.study,
            }),
        );
        Ok(Effect::None)
    }
}

impl TxBody for AdherenceEvaluate {
    const TYPE: &'static str = ADHERENCE_EVALUATE;

    fn example() -> Self {
        AdherenceEvaluate {
            rule: "ef".repeat(32),
            subject: example_did(4),
        }
    }

    fn check(&self) -> Result<(), String> {
        check_hex32("rule", &self.rule)?;
        check_did_key("subject", &self.subject)
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        let rule = state.devices.rule(&self.rule).ok_or_else(|| {
            TxError::new(
                ErrorCode::NotFound("adherence.unknown_rule"),
                format!("no rule {}", self.rule),
            )
        })?;
        if !acts_for(state, &cx.signer, &rule.owner) && cx.signer != self.subject {
            return Err(TxError::new(
                ErrorCode::Forbidden("adherence.not_allowed"),
                "only the rule's owner or its subject evaluates it",
            ));
        }
        if let Some(study) = &rule.study {
            // A study's rule is evaluated for a subject of that study
            // alone, and never for one that withdrew.
            match state.trials.subject(study, &self.subject) {
                None => {
                    return Err(TxError::new(
                        ErrorCode::Forbidden("trial.not_subject"),
                        "the rule belongs to a study this subject is not a subject of",
                    ))
                }
                Some(s) if s.state == super::trials::SubjectState::Withdrawn => {
                    return Err(TxError::new(
                        ErrorCode::Conflict("trial.subject_withdrawn"),
                        "the subject has withdrawn: it is not evaluated",
                    ))
                }
                Some(_) => {}
            }
        }
        if state
            .devices
            .result(&self.rule, &self.subject)
            .is_some_and(|r| r.met)
        {
            return Err(TxError::new(
                ErrorCode::Conflict("adherence.already_met"),
                "the rule is already met for this subject",
            ));
        }
        let owner = rule.owner.clone();
        let result = state.evaluate_adherence(&self.rule, rule, &self.subject, cx.index);
        let met = result.met;
        state
            .devices
            .results
            .insert((self.rule.clone(), self.subject.clone()), Arc::new(result));
        if met {
            cx.emit(MilestoneReached {
                id: milestone_id(&self.rule, &owner, &self.subject),
            })?;
            cx.emit(AdherenceMet {
                rule: self.rule,
                subject: self.subject,
            })?;
        }
        Ok(Effect::None)
    }
}

/// The Unix day number of `time` (Unix seconds, UTC).
pub fn day_of(time: i64) -> u32 {
    u32::try_from(time.div_euclid(DAY_SECS)).unwrap_or(0)
}

#[cfg(test)]
mod tests;
