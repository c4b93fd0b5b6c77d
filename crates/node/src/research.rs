//! Research eligibility studies the node tallies for researchers
//! (docs/zk.md, "Research eligibility over the node").
//!
//! A study is the researcher's [`Criteria`] and a [`Tally`] of the answers
//! patients sent through this node. The node sees who answers (it checks
//! each patient's research consent); the tally it hands the researcher
//! holds a count and per-study pseudonyms only.
//!
//! Studies are private node state, not ledger entries: the ledger is
//! readable by anyone and an entry would say who answered which study.
//! They are kept in `<data-dir>/research.redb` (two tables: each study's
//! researcher, criteria and issuer keys; each counted answer's patient,
//! enrolment token and credential commitment). Every value is sealed under
//! the vault ([`Sealer`]): its own data key encrypts it (the vault's STREAM
//! AEAD) and is wrapped under the store's key with the vault's group key
//! wrap, bound to the row it sits in; the store's key is kept in the vault's
//! key ring sealed to the node's custodial key, never in this file. A row's
//! key is the study id and, for an answer, a random id: the file names no
//! patient, token or commitment in the clear. Files written before (values
//! in clear JSON, answers keyed by patient) are sealed at the first start.
//! A study or an answer is
//! written there, durably, before the node acknowledges it, and memory is
//! rebuilt from the file at start: a restart keeps every study, every tally
//! and every "already answered". A file that does not read back stops the
//! start with an error naming it; it is never silently reset.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use hygeia_credentials::zk::{
    Criteria, EligibilityResponse, EnrolmentToken, Tally, TallyResult, TrustedIssuers, ZkError,
};
use hygeia_identity::PublicKey;
use hygeia_vault::group::{self, GroupId, GroupKey, GroupWrappedKey, GROUP_WRAPPED_KEY_LEN};
use hygeia_vault::{BlobId, DataKey, RecipientPublicKey};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

/// Most studies a node holds at once.
pub const MAX_STUDIES: usize = 10_000;

/// Most studies one researcher holds at once (each costs the node tens of
/// KiB); `DELETE /v1/research/studies/{id}` frees one.
pub const MAX_STUDIES_PER_RESEARCHER: usize = 16;

/// Before values were sealed: study id → [`StoredStudy`] as JSON.
const STUDIES: TableDefinition<&str, &[u8]> = TableDefinition::new("studies");
/// Before values were sealed: (study id, patient DID) → [`StoredAnswer`]
/// as JSON.
const ANSWERS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("answers");
/// study id → [`StoredStudy`] as JSON, sealed.
const SEALED_STUDIES: TableDefinition<&str, &[u8]> = TableDefinition::new("sealed_studies");
/// (study id, random row id) → [`SealedAnswer`] as JSON, sealed.
const SEALED_ANSWERS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("sealed_answers");

/// Seals and opens the store's values under a key of the vault's.
#[derive(Clone)]
pub struct Sealer {
    holder: RecipientPublicKey,
    group: GroupId,
    key: GroupKey,
}

/// The group id of the research store's key.
const SEALER_GROUP: &[u8] = b"hygeia-node/research-store/v1";

impl Sealer {
    /// Seals for `holder` (the node's custodial key) under `key`.
    pub fn new(holder: RecipientPublicKey, key: GroupKey) -> Sealer {
        Sealer {
            holder,
            group: GroupId::of(SEALER_GROUP),
            key,
        }
    }

    /// The name of the store's key in the vault's key ring.
    pub fn key_name() -> GroupId {
        GroupId::of(SEALER_GROUP)
    }

    /// What a row's value is bound to: its table and key.
    fn row(table: &str, key: &[&str]) -> BlobId {
        let mut bytes = table.as_bytes().to_vec();
        for part in key {
            bytes.push(0);
            bytes.extend_from_slice(part.as_bytes());
        }
        BlobId::of(&bytes)
    }

    fn seal(&self, row: &BlobId, plain: &[u8]) -> Result<Vec<u8>, hygeia_vault::Error> {
        let key = DataKey::generate()?;
        let wrapped = group::wrap(&key, row, &self.holder, &self.group, &self.key)?;
        let mut sealed = wrapped.to_bytes().to_vec();
        hygeia_vault::encrypt(&key, "application/json", plain, &mut sealed)?;
        Ok(sealed)
    }

    fn open(&self, row: &BlobId, sealed: &[u8]) -> Result<Vec<u8>, hygeia_vault::Error> {
        let (wrapped, ciphertext) = sealed
            .split_at_checked(GROUP_WRAPPED_KEY_LEN)
            .ok_or(hygeia_vault::Error::Format("sealed value"))?;
        let wrapped = GroupWrappedKey::from_bytes(wrapped)?;
        let key = group::unwrap(&wrapped, row, &self.holder, &self.key)?;
        let mut plain = Vec::new();
        hygeia_vault::decrypt(&key, ciphertext, &mut plain)?;
        Ok(plain)
    }
}

/// Why a study operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum ResearchError {
    #[error("a study {0:?} already exists on this node; choose another study id")]
    StudyExists(String),
    #[error("no study {0:?} on this node")]
    UnknownStudy(String),
    #[error("this node already holds {MAX_STUDIES} studies")]
    TooManyStudies,
    #[error("you already hold {MAX_STUDIES_PER_RESEARCHER} studies on this node; delete one you no longer need (DELETE /v1/research/studies/{{id}})")]
    TooManyOfYours,
    #[error("only the researcher who published study {0:?} may delete it")]
    NotOwner(String),
    #[error("you already answered study {0:?}: each patient is counted once")]
    AlreadyAnswered(String),
    #[error("{code}: {0}", code = .0.code())]
    Zk(#[from] ZkError),
    /// The study store could not be written: nothing was acknowledged or
    /// counted.
    #[error("the research store could not be written: {0}")]
    Store(String),
}

impl ResearchError {
    pub fn code(&self) -> &'static str {
        match self {
            ResearchError::StudyExists(_) => "research.study_exists",
            ResearchError::UnknownStudy(_) => "research.unknown_study",
            ResearchError::TooManyStudies => "research.too_many_studies",
            ResearchError::TooManyOfYours => "research.too_many_of_yours",
            ResearchError::NotOwner(_) => "research.not_study_owner",
            ResearchError::AlreadyAnswered(_) => "research.already_answered",
            ResearchError::Zk(e) => e.code(),
            ResearchError::Store(_) => "research.store_failed",
        }
    }
}

fn store_error(e: impl std::fmt::Display) -> ResearchError {
    ResearchError::Store(e.to_string())
}

/// The study store at `path` cannot be opened or does not read back.
#[derive(Debug, thiserror::Error)]
#[error("the research store {path}: {message}. It holds this node's research studies and the answers counted in them; restore it from a backup, or move it aside to start with no studies (every study, tally and \"already answered\" it held is then lost)")]
pub struct ResearchStoreError {
    pub path: String,
    pub message: String,
}

/// A study as the store keeps it.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredStudy {
    researcher: String,
    criteria: Criteria,
    /// Accepted issuer → its Ed25519 key, hex.
    issuers: BTreeMap<String, String>,
}

/// A counted answer as the sealed table keeps it: who answered, and what
/// the tally needs.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SealedAnswer {
    patient: String,
    #[serde(flatten)]
    answer: StoredAnswer,
}

/// A counted answer as the store keeps it: what the tally needs to count
/// it again without its proof.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredAnswer {
    token: EnrolmentToken,
    /// The answering credential's Pedersen commitment, hex.
    commitment: String,
}

struct Study {
    /// The identity that published it; only it reads the tally.
    researcher: String,
    tally: Tally<TrustedIssuers>,
    /// Identities whose answer counted. The node knows who answered
    /// anyway; keeping them lets it count each patient once, whatever
    /// credentials or secrets they hold.
    answered: HashSet<String>,
}

/// The studies this node runs, by study id, and the file that keeps them.
pub struct Studies {
    studies: Mutex<HashMap<String, Study>>,
    db: redb::Database,
    sealer: Sealer,
}

fn trusted(issuers: &[(String, PublicKey)]) -> TrustedIssuers {
    let mut trusted = TrustedIssuers::new();
    for (issuer, key) in issuers {
        trusted.trust(issuer.clone(), *key);
    }
    trusted
}

impl Studies {
    /// Opens (or creates) the store at `path` and rebuilds every study and
    /// tally from it. A file that is not a store, or an entry that does not
    /// read back, is an error: the node does not start on a partial view.
    pub fn open(path: &Path, sealer: Sealer) -> Result<Studies, ResearchStoreError> {
        let fail = |message: String| ResearchStoreError {
            path: path.display().to_string(),
            message,
        };
        // Created readable by the node's user only: it says who answered
        // which study.
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        options
            .open(path)
            .map_err(|e| fail(format!("cannot be opened ({e})")))?;
        let db =
            redb::Database::create(path).map_err(|e| fail(format!("cannot be opened ({e})")))?;
        Self::seal_clear_rows(&db, &sealer).map_err(fail)?;
        let studies = Self::load(&db, &sealer).map_err(fail)?;
        Ok(Studies {
            studies: Mutex::new(studies),
            db,
            sealer,
        })
    }

    /// Seals the rows of a file written before values were sealed, in one
    /// transaction, and drops the clear tables.
    fn seal_clear_rows(db: &redb::Database, sealer: &Sealer) -> Result<(), String> {
        let damaged = |what: String| format!("is damaged: {what}");
        let txn = db.begin_write().map_err(|e| damaged(e.to_string()))?;
        {
            let old_studies = txn
                .open_table(STUDIES)
                .map_err(|e| damaged(e.to_string()))?;
            let old_answers = txn
                .open_table(ANSWERS)
                .map_err(|e| damaged(e.to_string()))?;
            let mut studies = txn
                .open_table(SEALED_STUDIES)
                .map_err(|e| damaged(e.to_string()))?;
            let mut answers = txn
                .open_table(SEALED_ANSWERS)
                .map_err(|e| damaged(e.to_string()))?;
            for row in old_studies.iter().map_err(|e| damaged(e.to_string()))? {
                let (key, value) = row.map_err(|e| damaged(e.to_string()))?;
                let id = key.value();
                let sealed = sealer
                    .seal(&Sealer::row("studies", &[id]), value.value())
                    .map_err(|e| damaged(format!("study {id:?} cannot be sealed: {e}")))?;
                studies
                    .insert(id, sealed.as_slice())
                    .map_err(|e| damaged(e.to_string()))?;
            }
            for row in old_answers.iter().map_err(|e| damaged(e.to_string()))? {
                let (key, value) = row.map_err(|e| damaged(e.to_string()))?;
                let (id, patient) = key.value();
                let answer: StoredAnswer = serde_json::from_slice(value.value()).map_err(|e| {
                    damaged(format!("an answer to study {id:?} does not read back: {e}"))
                })?;
                let plain = serde_json::to_vec(&SealedAnswer {
                    patient: patient.to_owned(),
                    answer,
                })
                .map_err(|e| damaged(e.to_string()))?;
                let row_id = hex::encode(rand::random::<[u8; 16]>());
                let sealed = sealer
                    .seal(&Sealer::row("answers", &[id, &row_id]), &plain)
                    .map_err(|e| damaged(format!("an answer cannot be sealed: {e}")))?;
                answers
                    .insert((id, row_id.as_str()), sealed.as_slice())
                    .map_err(|e| damaged(e.to_string()))?;
            }
        }
        txn.delete_table(STUDIES)
            .map_err(|e| damaged(e.to_string()))?;
        txn.delete_table(ANSWERS)
            .map_err(|e| damaged(e.to_string()))?;
        txn.commit().map_err(|e| damaged(e.to_string()))
    }

    fn load(db: &redb::Database, sealer: &Sealer) -> Result<HashMap<String, Study>, String> {
        let damaged = |what: String| format!("is damaged: {what}");
        let txn = db.begin_read().map_err(|e| damaged(e.to_string()))?;
        let mut studies = HashMap::new();
        let table = txn
            .open_table(SEALED_STUDIES)
            .map_err(|e| damaged(e.to_string()))?;
        for row in table.iter().map_err(|e| damaged(e.to_string()))? {
            let (key, value) = row.map_err(|e| damaged(e.to_string()))?;
            let id = key.value().to_owned();
            let plain = sealer
                .open(&Sealer::row("studies", &[&id]), value.value())
                .map_err(|e| {
                    damaged(format!(
                        "study {id:?} does not open under the vault's key: {e}"
                    ))
                })?;
            let stored: StoredStudy = serde_json::from_slice(&plain)
                .map_err(|e| damaged(format!("study {id:?} does not read back: {e}")))?;
            if stored.criteria.study_id != id {
                return Err(damaged(format!(
                    "study {id:?} holds the criteria of study {:?}",
                    stored.criteria.study_id
                )));
            }
            let mut issuers = TrustedIssuers::new();
            for (issuer, key) in &stored.issuers {
                let key = <[u8; 32]>::try_from(hex::decode(key).unwrap_or_default().as_slice())
                    .ok()
                    .and_then(|bytes| PublicKey::from_bytes(&bytes).ok())
                    .ok_or_else(|| {
                        damaged(format!(
                            "study {id:?}: the key of issuer {issuer:?} is not an Ed25519 key"
                        ))
                    })?;
                issuers.trust(issuer.clone(), key);
            }
            studies.insert(
                id,
                Study {
                    researcher: stored.researcher,
                    tally: Tally::new(stored.criteria, issuers),
                    answered: HashSet::new(),
                },
            );
        }
        let table = txn
            .open_table(SEALED_ANSWERS)
            .map_err(|e| damaged(e.to_string()))?;
        for row in table.iter().map_err(|e| damaged(e.to_string()))? {
            let (key, value) = row.map_err(|e| damaged(e.to_string()))?;
            let (id, row_id) = key.value();
            let study = studies.get_mut(id).ok_or_else(|| {
                damaged(format!("an answer to study {id:?}, which it does not hold"))
            })?;
            let plain = sealer
                .open(&Sealer::row("answers", &[id, row_id]), value.value())
                .map_err(|e| {
                    damaged(format!(
                        "an answer to study {id:?} does not open under the vault's key: {e}"
                    ))
                })?;
            let SealedAnswer {
                patient,
                answer: stored,
            } = serde_json::from_slice(&plain).map_err(|e| {
                damaged(format!("an answer to study {id:?} does not read back: {e}"))
            })?;
            let commitment = <[u8; 32]>::try_from(
                hex::decode(&stored.commitment)
                    .unwrap_or_default()
                    .as_slice(),
            )
            .map_err(|_| {
                damaged(format!(
                    "an answer to study {id:?} has no 32-byte commitment"
                ))
            })?;
            study
                .tally
                .count_checked(stored.token, commitment)
                .map_err(|e| {
                    damaged(format!("an answer to study {id:?} is counted twice ({e})"))
                })?;
            if !study.answered.insert(patient) {
                return Err(damaged(format!("study {id:?} counts one patient twice")));
            }
        }
        Ok(studies)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Study>> {
        self.studies.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens a study. `issuers` holds the keys of its accepted issuers.
    /// Acknowledged (`Ok`) only once the study is durable.
    pub fn create(
        &self,
        researcher: &str,
        criteria: Criteria,
        issuers: Vec<(String, PublicKey)>,
    ) -> Result<(), ResearchError> {
        let mut studies = self.lock();
        let id = criteria.study_id.clone();
        if studies.contains_key(&id) {
            return Err(ResearchError::StudyExists(id));
        }
        let theirs = studies
            .values()
            .filter(|s| s.researcher == researcher)
            .count();
        if theirs >= MAX_STUDIES_PER_RESEARCHER {
            return Err(ResearchError::TooManyOfYours);
        }
        if studies.len() >= MAX_STUDIES {
            return Err(ResearchError::TooManyStudies);
        }
        let stored = StoredStudy {
            researcher: researcher.to_owned(),
            criteria,
            issuers: issuers
                .iter()
                .map(|(issuer, key)| (issuer.clone(), hex::encode(key.to_bytes())))
                .collect(),
        };
        let json = serde_json::to_vec(&stored).map_err(store_error)?;
        let sealed = self
            .sealer
            .seal(&Sealer::row("studies", &[&id]), &json)
            .map_err(store_error)?;
        let txn = self.db.begin_write().map_err(store_error)?;
        txn.open_table(SEALED_STUDIES)
            .map_err(store_error)?
            .insert(id.as_str(), sealed.as_slice())
            .map_err(store_error)?;
        txn.commit().map_err(store_error)?;
        studies.insert(
            id,
            Study {
                researcher: stored.researcher,
                tally: Tally::new(stored.criteria, trusted(&issuers)),
                answered: HashSet::new(),
            },
        );
        Ok(())
    }

    /// Deletes a study, its tally and its answers, for its researcher only.
    pub fn delete(&self, study_id: &str, researcher: &str) -> Result<(), ResearchError> {
        let mut studies = self.lock();
        let study = studies
            .get(study_id)
            .ok_or_else(|| ResearchError::UnknownStudy(study_id.to_owned()))?;
        if study.researcher != researcher {
            return Err(ResearchError::NotOwner(study_id.to_owned()));
        }
        let txn = self.db.begin_write().map_err(store_error)?;
        txn.open_table(SEALED_STUDIES)
            .map_err(store_error)?
            .remove(study_id)
            .map_err(store_error)?;
        txn.open_table(SEALED_ANSWERS)
            .map_err(store_error)?
            .retain(|(id, _), _| id != study_id)
            .map_err(store_error)?;
        txn.commit().map_err(store_error)?;
        studies.remove(study_id);
        Ok(())
    }

    /// The study's researcher and criteria.
    pub fn criteria(&self, study_id: &str) -> Result<(String, Criteria), ResearchError> {
        let studies = self.lock();
        let study = studies
            .get(study_id)
            .ok_or_else(|| ResearchError::UnknownStudy(study_id.to_owned()))?;
        Ok((study.researcher.clone(), study.tally.criteria().clone()))
    }

    /// Verifies `patient`'s answer and counts it, or says why not. `Ok`
    /// only once the answer is durable: checked, written, then counted.
    pub fn answer(
        &self,
        study_id: &str,
        patient: &str,
        response: &EligibilityResponse,
        now: u64,
    ) -> Result<(), ResearchError> {
        let mut studies = self.lock();
        let study = studies
            .get_mut(study_id)
            .ok_or_else(|| ResearchError::UnknownStudy(study_id.to_owned()))?;
        if study.answered.contains(patient) {
            return Err(ResearchError::AlreadyAnswered(study_id.to_owned()));
        }
        study.tally.check(response, now)?;
        let token = *response.enrolment_token();
        let commitment = response.presentation().credential().commitment().to_bytes();
        let stored = SealedAnswer {
            patient: patient.to_owned(),
            answer: StoredAnswer {
                token,
                commitment: hex::encode(commitment),
            },
        };
        let json = serde_json::to_vec(&stored).map_err(store_error)?;
        let row_id = hex::encode(rand::random::<[u8; 16]>());
        let sealed = self
            .sealer
            .seal(&Sealer::row("answers", &[study_id, &row_id]), &json)
            .map_err(store_error)?;
        let txn = self.db.begin_write().map_err(store_error)?;
        txn.open_table(SEALED_ANSWERS)
            .map_err(store_error)?
            .insert((study_id, row_id.as_str()), sealed.as_slice())
            .map_err(store_error)?;
        txn.commit().map_err(store_error)?;
        study.tally.count_checked(token, commitment)?;
        study.answered.insert(patient.to_owned());
        Ok(())
    }

    /// The studies `patient` answered, by study id: each one's researcher
    /// and criteria (for the patient's own wallet).
    pub fn answered_by(&self, patient: &str) -> Vec<(String, Criteria)> {
        let studies = self.lock();
        let mut mine: Vec<(String, Criteria)> = studies
            .values()
            .filter(|s| s.answered.contains(patient))
            .map(|s| (s.researcher.clone(), s.tally.criteria().clone()))
            .collect();
        mine.sort_by(|a, b| a.1.study_id.cmp(&b.1.study_id));
        mine
    }

    /// The tally, for `researcher` (`None` when the study is theirs not).
    pub fn tally(
        &self,
        study_id: &str,
        researcher: &str,
    ) -> Result<Option<TallyResult>, ResearchError> {
        let studies = self.lock();
        let study = studies
            .get(study_id)
            .ok_or_else(|| ResearchError::UnknownStudy(study_id.to_owned()))?;
        Ok((study.researcher == researcher).then(|| study.tally.result()))
    }
}

/// Where the store lives in a data directory.
pub fn store_path(data_dir: &Path) -> PathBuf {
    data_dir.join(crate::config::RESEARCH_FILE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hygeia_credentials::zk::hba1c::{hba1c_between, hba1c_claims};
    use hygeia_credentials::zk::{respond, CommittedAttributeCredential, PatientSecret};
    use hygeia_identity::Keypair;
    use hygeia_vault::RecipientKey;

    const NOW: u64 = 1_750_000_000;

    /// One sealer for every store of a test process (a node's is kept in
    /// its vault).
    fn sealer() -> Sealer {
        static SEALER: std::sync::OnceLock<Sealer> = std::sync::OnceLock::new();
        SEALER
            .get_or_init(|| {
                let holder = RecipientKey::generate().unwrap();
                Sealer::new(*holder.public_key(), DataKey::generate().unwrap())
            })
            .clone()
    }

    fn study(lab: &Keypair) -> (Studies, Criteria) {
        let dir = tempfile::tempdir().unwrap();
        let studies = Studies::open(&dir.path().join("research.redb"), sealer()).unwrap();
        // The open database keeps the file; the directory may go.
        study_in(studies, lab)
    }

    fn study_in(studies: Studies, lab: &Keypair) -> (Studies, Criteria) {
        let lab_did = lab.did().to_string();
        let criteria = Criteria::new(
            "s1",
            hba1c_between(65, 90).unwrap(),
            vec![lab_did.clone()],
            "did:key:researcher#s1",
        )
        .unwrap();
        studies
            .create(
                "did:key:researcher",
                criteria.clone(),
                vec![(lab_did, lab.public_key())],
            )
            .unwrap();
        (studies, criteria)
    }

    fn answer(lab: &Keypair, criteria: &Criteria, value: u64) -> EligibilityResponse {
        let claims = hba1c_claims(lab.did().as_str(), value, NOW - 10, NOW + 1000, None);
        let (credential, opening) = CommittedAttributeCredential::issue(lab, &claims).unwrap();
        respond(criteria, &credential, &opening, &PatientSecret::generate()).unwrap()
    }

    #[test]
    fn each_patient_counts_once_and_only_the_researcher_reads_the_tally() {
        let lab = Keypair::generate();
        let (studies, criteria) = study(&lab);
        studies
            .answer("s1", "did:key:p1", &answer(&lab, &criteria, 72), NOW)
            .unwrap();
        let again = studies
            .answer("s1", "did:key:p1", &answer(&lab, &criteria, 81), NOW)
            .unwrap_err();
        assert_eq!(again.code(), "research.already_answered");
        let result = studies.tally("s1", "did:key:researcher").unwrap().unwrap();
        assert_eq!(result.qualifying, 1);
        assert!(studies.tally("s1", "did:key:p1").unwrap().is_none());
    }

    #[test]
    fn a_researcher_holds_a_bounded_number_of_studies_and_deletes_them() {
        let lab = Keypair::generate();
        let (studies, criteria) = study(&lab);
        let issuers = || vec![(lab.did().to_string(), lab.public_key())];
        let with_id = |id: &str| {
            let mut c = criteria.clone();
            c.study_id = id.to_owned();
            c
        };
        for n in 1..MAX_STUDIES_PER_RESEARCHER {
            studies
                .create(
                    "did:key:researcher",
                    with_id(&format!("s{}", n + 1)),
                    issuers(),
                )
                .unwrap();
        }
        let full = studies
            .create("did:key:researcher", with_id("one-more"), issuers())
            .unwrap_err();
        assert_eq!(full.code(), "research.too_many_of_yours");
        // Another researcher is not held back.
        studies
            .create("did:key:other", with_id("theirs"), issuers())
            .unwrap();
        // Only the owner deletes; then there is room again.
        assert_eq!(
            studies.delete("s1", "did:key:other").unwrap_err().code(),
            "research.not_study_owner"
        );
        studies.delete("s1", "did:key:researcher").unwrap();
        assert_eq!(
            studies
                .delete("s1", "did:key:researcher")
                .unwrap_err()
                .code(),
            "research.unknown_study"
        );
        studies
            .create("did:key:researcher", with_id("one-more"), issuers())
            .unwrap();
    }

    #[test]
    fn refusals_have_codes() {
        let lab = Keypair::generate();
        let (studies, criteria) = study(&lab);
        let issuers = Vec::new();
        let err = studies
            .create("did:key:other", criteria.clone(), issuers)
            .unwrap_err();
        assert_eq!(err.code(), "research.study_exists");
        let response = answer(&lab, &criteria, 72);
        let err = studies
            .answer("nope", "did:key:p1", &response, NOW)
            .unwrap_err();
        assert_eq!(err.code(), "research.unknown_study");
        studies.answer("s1", "did:key:p1", &response, NOW).unwrap();
        // Someone else replaying that answer: the tally's duplicate check.
        let err = studies
            .answer("s1", "did:key:p2", &response, NOW)
            .unwrap_err();
        assert_eq!(err.code(), "eligibility-duplicate-token");
        assert!(err.to_string().starts_with("eligibility-duplicate-token: "));
    }

    #[test]
    fn studies_answers_and_tallies_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("research.redb");
        let lab = Keypair::generate();
        let (studies, criteria) = study_in(Studies::open(&path, sealer()).unwrap(), &lab);
        studies
            .answer("s1", "did:key:p1", &answer(&lab, &criteria, 72), NOW)
            .unwrap();
        let second = answer(&lab, &criteria, 80);
        studies.answer("s1", "did:key:p2", &second, NOW).unwrap();
        let before = studies.tally("s1", "did:key:researcher").unwrap().unwrap();
        assert_eq!(before.qualifying, 2);
        drop(studies);

        let studies = Studies::open(&path, sealer()).unwrap();
        let (researcher, kept) = studies.criteria("s1").unwrap();
        assert_eq!(researcher, "did:key:researcher");
        assert_eq!(kept, criteria, "the criteria, nonce included, are kept");
        let after = studies.tally("s1", "did:key:researcher").unwrap().unwrap();
        assert_eq!(after, before);
        // Who answered is remembered: a second answer is refused as before.
        let again = studies
            .answer("s1", "did:key:p1", &answer(&lab, &criteria, 75), NOW)
            .unwrap_err();
        assert_eq!(again.code(), "research.already_answered");
        // So is an answer already counted, replayed by someone else.
        let replayed = studies
            .answer("s1", "did:key:p3", &second, NOW)
            .unwrap_err();
        assert_eq!(replayed.code(), "eligibility-duplicate-token");
        // The issuer keys are kept: a new answer still verifies and counts.
        studies
            .answer("s1", "did:key:p3", &answer(&lab, &criteria, 66), NOW)
            .unwrap();
        assert_eq!(
            studies
                .tally("s1", "did:key:researcher")
                .unwrap()
                .unwrap()
                .qualifying,
            3
        );
        // A deleted study stays deleted, answers and all.
        studies.delete("s1", "did:key:researcher").unwrap();
        drop(studies);
        let studies = Studies::open(&path, sealer()).unwrap();
        assert_eq!(
            studies.criteria("s1").unwrap_err().code(),
            "research.unknown_study"
        );
        let (studies, criteria) = study_in(studies, &lab);
        studies
            .answer("s1", "did:key:p1", &answer(&lab, &criteria, 72), NOW)
            .unwrap();
    }

    #[test]
    fn a_refused_answer_is_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("research.redb");
        let lab = Keypair::generate();
        let (studies, criteria) = study_in(Studies::open(&path, sealer()).unwrap(), &lab);
        // An answer made for another study.
        let mut elsewhere = criteria.clone();
        elsewhere.study_id = "s2".into();
        let foreign = answer(&lab, &elsewhere, 72);
        let err = studies
            .answer("s1", "did:key:p1", &foreign, NOW)
            .unwrap_err();
        assert_eq!(err.code(), "eligibility-wrong-study");
        drop(studies);
        let studies = Studies::open(&path, sealer()).unwrap();
        studies
            .answer("s1", "did:key:p1", &answer(&lab, &criteria, 72), NOW)
            .unwrap();
    }

    #[test]
    fn a_damaged_store_stops_the_start_with_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        // Not a database at all.
        let path = dir.path().join("research.redb");
        std::fs::write(&path, vec![0x5a; 8192]).unwrap();
        let err = Studies::open(&path, sealer()).err().expect("refused");
        let text = err.to_string();
        assert!(text.contains("research.redb"), "{text}");
        assert!(text.contains("move it aside"), "{text}");
        // Nothing was reset: the file is as it was.
        assert_eq!(std::fs::read(&path).unwrap(), vec![0x5a; 8192]);

        // A database whose entries do not read back (sealed under the
        // store's key, or not sealed at all, or in the clear tables of a
        // file written before values were sealed).
        let cases: [(&str, &[u8], &str); 5] = [
            ("study", b"{not json", "does not read back"),
            ("answer-to-nothing", b"{}", "which it does not hold"),
            (
                "answer",
                b"{\"patient\":\"did:key:p1\",\"token\":\"x\",\"commitment\":\"00\"}",
                "does not read back",
            ),
            ("unsealed", b"{}", "does not open under the vault's key"),
            ("clear-study", b"{not json", "does not read back"),
        ];
        for (case, bytes, expected) in cases {
            let path = dir.path().join(format!("{case}.redb"));
            let lab = Keypair::generate();
            let (studies, _) = study_in(Studies::open(&path, sealer()).unwrap(), &lab);
            drop(studies);
            {
                let db = redb::Database::create(&path).unwrap();
                let txn = db.begin_write().unwrap();
                let seal = |row: BlobId| sealer().seal(&row, bytes).unwrap();
                match case {
                    "study" => {
                        let sealed = seal(Sealer::row("studies", &["s1"]));
                        txn.open_table(SEALED_STUDIES)
                            .unwrap()
                            .insert("s1", sealed.as_slice())
                            .unwrap();
                    }
                    "answer-to-nothing" => {
                        let sealed = seal(Sealer::row("answers", &["gone", "r1"]));
                        txn.open_table(SEALED_ANSWERS)
                            .unwrap()
                            .insert(("gone", "r1"), sealed.as_slice())
                            .unwrap();
                    }
                    "answer" => {
                        let sealed = seal(Sealer::row("answers", &["s1", "r1"]));
                        txn.open_table(SEALED_ANSWERS)
                            .unwrap()
                            .insert(("s1", "r1"), sealed.as_slice())
                            .unwrap();
                    }
                    "unsealed" => {
                        txn.open_table(SEALED_STUDIES)
                            .unwrap()
                            .insert("s1", bytes)
                            .unwrap();
                    }
                    _ => {
                        txn.open_table(STUDIES)
                            .unwrap()
                            .insert("s1", bytes)
                            .unwrap();
                    }
                }
                txn.commit().unwrap();
            }
            let err = Studies::open(&path, sealer()).err().expect("refused");
            let text = err.to_string();
            assert!(text.contains(expected), "{case}: {text}");
            assert!(text.contains(&format!("{case}.redb")), "{case}: {text}");
        }
    }

    /// The file names no patient, enrolment token, credential commitment,
    /// researcher or issuer in the clear, and what it holds opens only
    /// under the store's key.
    #[test]
    fn the_file_holds_no_answer_in_the_clear() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("research.redb");
        let lab = Keypair::generate();
        let (studies, criteria) = study_in(Studies::open(&path, sealer()).unwrap(), &lab);
        let patient = "did:key:z6MkpatientWhoseAnswerMustNotShow";
        let response = answer(&lab, &criteria, 72);
        studies.answer("s1", patient, &response, NOW).unwrap();
        drop(studies);
        let bytes = std::fs::read(&path).unwrap();
        let token = response.enrolment_token();
        let token_text = serde_json::to_string(token).unwrap();
        let commitment = response.presentation().credential().commitment().to_bytes();
        let needles: Vec<Vec<u8>> = vec![
            patient.as_bytes().to_vec(),
            token.as_bytes().to_vec(),
            token_text.trim_matches('"').as_bytes().to_vec(),
            commitment.to_vec(),
            hex::encode(commitment).into_bytes(),
            b"did:key:researcher".to_vec(),
            lab.did().as_str().as_bytes().to_vec(),
        ];
        for needle in &needles {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_slice()),
                "{} is in the file in the clear",
                String::from_utf8_lossy(needle)
            );
        }
        // It reads back under the store's key...
        let studies = Studies::open(&path, sealer()).unwrap();
        assert_eq!(studies.answered_by(patient).len(), 1);
        drop(studies);
        // ...and under no other.
        let holder = RecipientKey::generate().unwrap();
        let other = Sealer::new(*holder.public_key(), DataKey::generate().unwrap());
        let err = Studies::open(&path, other).err().expect("refused");
        assert!(
            err.to_string()
                .contains("does not open under the vault's key"),
            "{err}"
        );
    }

    /// A file written before values were sealed (clear JSON, answers keyed
    /// by patient) is sealed at the first start, and keeps every study and
    /// answer.
    #[test]
    fn a_file_from_before_sealing_is_sealed_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("research.redb");
        let lab = Keypair::generate();
        let (studies, criteria) = study_in(Studies::open(&path, sealer()).unwrap(), &lab);
        let patient = "did:key:z6MkpatientFromAnOldFile";
        studies
            .answer("s1", patient, &answer(&lab, &criteria, 72), NOW)
            .unwrap();
        let before = studies.tally("s1", "did:key:researcher").unwrap().unwrap();
        drop(studies);
        // Rewrite the file as the previous code kept it.
        {
            let db = redb::Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut studies = txn.open_table(SEALED_STUDIES).unwrap();
                let sealed = studies.remove("s1").unwrap().unwrap().value().to_vec();
                let plain = sealer()
                    .open(&Sealer::row("studies", &["s1"]), &sealed)
                    .unwrap();
                txn.open_table(STUDIES)
                    .unwrap()
                    .insert("s1", plain.as_slice())
                    .unwrap();
                let mut answers = txn.open_table(SEALED_ANSWERS).unwrap();
                let rows: Vec<(String, Vec<u8>)> = answers
                    .iter()
                    .unwrap()
                    .map(|row| {
                        let (key, value) = row.unwrap();
                        (key.value().1.to_owned(), value.value().to_vec())
                    })
                    .collect();
                assert_eq!(rows.len(), 1);
                let (row_id, sealed) = &rows[0];
                let plain = sealer()
                    .open(&Sealer::row("answers", &["s1", row_id]), sealed)
                    .unwrap();
                let mut json: serde_json::Value = serde_json::from_slice(&plain).unwrap();
                let patient = json["patient"].as_str().unwrap().to_owned();
                json.as_object_mut().unwrap().remove("patient");
                answers.remove(("s1", row_id.as_str())).unwrap();
                txn.open_table(ANSWERS)
                    .unwrap()
                    .insert(
                        ("s1", patient.as_str()),
                        serde_json::to_vec(&json).unwrap().as_slice(),
                    )
                    .unwrap();
            }
            txn.commit().unwrap();
        }
        let studies = Studies::open(&path, sealer()).unwrap();
        assert_eq!(
            studies.tally("s1", "did:key:researcher").unwrap().unwrap(),
            before
        );
        assert_eq!(
            studies
                .answer("s1", patient, &answer(&lab, &criteria, 75), NOW)
                .unwrap_err()
                .code(),
            "research.already_answered"
        );
        drop(studies);
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_read().unwrap();
        assert!(
            txn.open_table(STUDIES).is_err(),
            "the clear tables are gone"
        );
        assert!(txn.open_table(ANSWERS).is_err());
    }
}
