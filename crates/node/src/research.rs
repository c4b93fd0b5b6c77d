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
//! enrolment token and credential commitment). A study or an answer is
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
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

/// Most studies a node holds at once.
pub const MAX_STUDIES: usize = 10_000;

/// Most studies one researcher holds at once (each costs the node tens of
/// KiB); `DELETE /v1/research/studies/{id}` frees one.
pub const MAX_STUDIES_PER_RESEARCHER: usize = 16;

/// study id → [`StoredStudy`] as JSON.
const STUDIES: TableDefinition<&str, &[u8]> = TableDefinition::new("studies");
/// (study id, patient DID) → [`StoredAnswer`] as JSON.
const ANSWERS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("answers");

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
    pub fn open(path: &Path) -> Result<Studies, ResearchStoreError> {
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
        let studies = Self::load(&db).map_err(fail)?;
        Ok(Studies {
            studies: Mutex::new(studies),
            db,
        })
    }

    fn load(db: &redb::Database) -> Result<HashMap<String, Study>, String> {
        let damaged = |what: String| format!("is damaged: {what}");
        let txn = db.begin_write().map_err(|e| damaged(e.to_string()))?;
        txn.open_table(STUDIES)
            .map_err(|e| damaged(e.to_string()))?;
        txn.open_table(ANSWERS)
            .map_err(|e| damaged(e.to_string()))?;
        txn.commit().map_err(|e| damaged(e.to_string()))?;
        let txn = db.begin_read().map_err(|e| damaged(e.to_string()))?;
        let mut studies = HashMap::new();
        let table = txn
            .open_table(STUDIES)
            .map_err(|e| damaged(e.to_string()))?;
        for row in table.iter().map_err(|e| damaged(e.to_string()))? {
            let (key, value) = row.map_err(|e| damaged(e.to_string()))?;
            let id = key.value().to_owned();
            let stored: StoredStudy = serde_json::from_slice(value.value())
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
            .open_table(ANSWERS)
            .map_err(|e| damaged(e.to_string()))?;
        for row in table.iter().map_err(|e| damaged(e.to_string()))? {
            let (key, value) = row.map_err(|e| damaged(e.to_string()))?;
            let (id, patient) = key.value();
            let study = studies.get_mut(id).ok_or_else(|| {
                damaged(format!("an answer to study {id:?}, which it does not hold"))
            })?;
            let stored: StoredAnswer = serde_json::from_slice(value.value()).map_err(|e| {
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
            if !study.answered.insert(patient.to_owned()) {
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
        let txn = self.db.begin_write().map_err(store_error)?;
        txn.open_table(STUDIES)
            .map_err(store_error)?
            .insert(id.as_str(), json.as_slice())
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
        txn.open_table(STUDIES)
            .map_err(store_error)?
            .remove(study_id)
            .map_err(store_error)?;
        txn.open_table(ANSWERS)
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
        let stored = StoredAnswer {
            token,
            commitment: hex::encode(commitment),
        };
        let json = serde_json::to_vec(&stored).map_err(store_error)?;
        let txn = self.db.begin_write().map_err(store_error)?;
        txn.open_table(ANSWERS)
            .map_err(store_error)?
            .insert((study_id, patient), json.as_slice())
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

    const NOW: u64 = 1_750_000_000;

    fn study(lab: &Keypair) -> (Studies, Criteria) {
        let dir = tempfile::tempdir().unwrap();
        let studies = Studies::open(&dir.path().join("research.redb")).unwrap();
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
        let (studies, criteria) = study_in(Studies::open(&path).unwrap(), &lab);
        studies
            .answer("s1", "did:key:p1", &answer(&lab, &criteria, 72), NOW)
            .unwrap();
        let second = answer(&lab, &criteria, 80);
        studies.answer("s1", "did:key:p2", &second, NOW).unwrap();
        let before = studies.tally("s1", "did:key:researcher").unwrap().unwrap();
        assert_eq!(before.qualifying, 2);
        drop(studies);

        let studies = Studies::open(&path).unwrap();
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
        let studies = Studies::open(&path).unwrap();
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
        let (studies, criteria) = study_in(Studies::open(&path).unwrap(), &lab);
        // An answer made for another study.
        let mut elsewhere = criteria.clone();
        elsewhere.study_id = "s2".into();
        let foreign = answer(&lab, &elsewhere, 72);
        let err = studies
            .answer("s1", "did:key:p1", &foreign, NOW)
            .unwrap_err();
        assert_eq!(err.code(), "eligibility-wrong-study");
        drop(studies);
        let studies = Studies::open(&path).unwrap();
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
        let err = Studies::open(&path).err().expect("refused");
        let text = err.to_string();
        assert!(text.contains("research.redb"), "{text}");
        assert!(text.contains("move it aside"), "{text}");
        // Nothing was reset: the file is as it was.
        assert_eq!(std::fs::read(&path).unwrap(), vec![0x5a; 8192]);

        // A database whose entries do not read back.
        let cases: [(&str, &[u8], &str); 3] = [
            ("study", b"{not json", "does not read back"),
            ("answer-to-nothing", b"{}", "which it does not hold"),
            (
                "answer",
                b"{\"token\":\"x\",\"commitment\":\"00\"}",
                "does not read back",
            ),
        ];
        for (case, bytes, expected) in cases {
            let path = dir.path().join(format!("{case}.redb"));
            let lab = Keypair::generate();
            let (studies, _) = study_in(Studies::open(&path).unwrap(), &lab);
            drop(studies);
            {
                let db = redb::Database::create(&path).unwrap();
                let txn = db.begin_write().unwrap();
                match case {
                    "study" => {
                        txn.open_table(STUDIES)
                            .unwrap()
                            .insert("s1", bytes)
                            .unwrap();
                    }
                    "answer-to-nothing" => {
                        txn.open_table(ANSWERS)
                            .unwrap()
                            .insert(("gone", "did:key:p1"), bytes)
                            .unwrap();
                    }
                    _ => {
                        txn.open_table(ANSWERS)
                            .unwrap()
                            .insert(("s1", "did:key:p1"), bytes)
                            .unwrap();
                    }
                }
                txn.commit().unwrap();
            }
            let err = Studies::open(&path).err().expect("refused");
            let text = err.to_string();
            assert!(text.contains(expected), "{case}: {text}");
            assert!(text.contains(&format!("{case}.redb")), "{case}: {text}");
        }
    }
}
