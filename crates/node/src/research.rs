//! Research eligibility studies the node tallies for researchers
//! (docs/zk.md, "Research eligibility over the node").
//!
//! A study is the researcher's [`Criteria`] and a [`Tally`] of the answers
//! patients sent through this node. The node sees who answers (it checks
//! each patient's research consent); the tally it hands the researcher
//! holds a count and per-study pseudonyms only.
//!
//! Studies live in the node's memory, not on the ledger: a restart forgets
//! every study and its tally, and researchers publish again. Nothing about
//! a study or an answer reaches the ledger, because the ledger is readable
//! by anyone and an entry would say who answered.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use hygeia_credentials::zk::{
    Criteria, EligibilityResponse, Tally, TallyResult, TrustedIssuers, ZkError,
};

/// Most studies a node holds at once.
pub const MAX_STUDIES: usize = 10_000;

/// Most studies one researcher holds at once (each costs the node tens of
/// KiB); `DELETE /v1/research/studies/{id}` frees one.
pub const MAX_STUDIES_PER_RESEARCHER: usize = 16;

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
        }
    }
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

/// The studies this node runs, by study id.
#[derive(Default)]
pub struct Studies {
    studies: Mutex<HashMap<String, Study>>,
}

impl Studies {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Study>> {
        self.studies.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens a study. `issuers` holds the keys of its accepted issuers.
    pub fn create(
        &self,
        researcher: &str,
        criteria: Criteria,
        issuers: TrustedIssuers,
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
        studies.insert(
            id,
            Study {
                researcher: researcher.to_owned(),
                tally: Tally::new(criteria, issuers),
                answered: HashSet::new(),
            },
        );
        Ok(())
    }

    /// Deletes a study and its tally, for its researcher only.
    pub fn delete(&self, study_id: &str, researcher: &str) -> Result<(), ResearchError> {
        let mut studies = self.lock();
        let study = studies
            .get(study_id)
            .ok_or_else(|| ResearchError::UnknownStudy(study_id.to_owned()))?;
        if study.researcher != researcher {
            return Err(ResearchError::NotOwner(study_id.to_owned()));
        }
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

    /// Verifies `patient`'s answer and counts it, or says why not.
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
        study.tally.add(response, now)?;
        study.answered.insert(patient.to_owned());
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use hygeia_credentials::zk::hba1c::{hba1c_between, hba1c_claims};
    use hygeia_credentials::zk::{respond, CommittedAttributeCredential, PatientSecret};
    use hygeia_identity::Keypair;

    const NOW: u64 = 1_750_000_000;

    fn study(lab: &Keypair) -> (Studies, Criteria) {
        let lab_did = lab.did().to_string();
        let criteria = Criteria::new(
            "s1",
            hba1c_between(65, 90).unwrap(),
            vec![lab_did.clone()],
            "did:key:researcher#s1",
        )
        .unwrap();
        let studies = Studies::default();
        let issuers = TrustedIssuers::new().with(lab_did, lab.public_key());
        studies
            .create("did:key:researcher", criteria.clone(), issuers)
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
        let issuers = || TrustedIssuers::new().with(lab.did().to_string(), lab.public_key());
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
        let issuers = TrustedIssuers::new();
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
}
