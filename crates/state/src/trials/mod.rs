//! Clinical trials: studies and their protocol versions, ethics approvals,
//! accredited sites, eConsent bound to a protocol version, and research
//! subjects' milestones and deviations (docs/trials.md). One module per
//! concept:
//!
//! - [`study`]: `study.register`, `study.amend`, `study.progress` (the
//!   sponsor's; FHIR R5 ResearchStudy `progressStatus`);
//! - [`ethics`]: `ethics.approve` (an accredited ethics committee's);
//! - [`sites`]: `site.activate` (the sponsor's, with the site's
//!   trial-site accreditation);
//! - [`econsent`]: `econsent.give`, `econsent.withdraw` (the subject's);
//! - [`subjects`]: `subject.milestone`, `subject.deviation`,
//!   `subject.endpoint` (the site's;
//!   FHIR R5 ResearchSubject `progress`), which pay sites through escrow
//!   milestones ([`crate::escrow::MilestoneReached`]).
//!
//! No PHI reaches the ledger: a study is a protocol document's SHA-256, a
//! version code and DIDs; a subject is a did:key the participant makes for
//! this study alone (a pseudonym: who it is stays with the site, off the
//! ledger); milestones, deviations and consents are codes, hashes and
//! leaf indices.

pub mod econsent;
pub mod ethics;
pub mod sites;
pub mod study;
pub mod subjects;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use hygeia_ledger::{ErrorCode, TxError};
use imbl::{HashMap, OrdMap};
use serde::{Deserialize, Serialize};

use super::registry::Registry;

pub use sites::SiteEntry;
pub use study::{ProtocolVersion, Study, StudyState};
pub use subjects::{
    endpoint_milestone_id, Deviation, EndpointAssessment, Milestone, Subject, SubjectState,
};

/// The credential type the governance puts an ethics committee on the
/// trust list for (`trust.issuer`): the committee's approvals count.
pub const VCT_ETHICS_COMMITTEE: &str = "https://hygeia.health/vct/ethics-committee/v1";

/// Registers the types of the trial domain, concept by concept.
pub(crate) fn register(r: &mut Registry) {
    study::register(r);
    ethics::register(r);
    sites::register(r);
    econsent::register(r);
    subjects::register(r);
}

/// Studies and their subjects. Persistent maps (`imbl`), entries behind
/// an `Arc`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Trials {
    #[serde(with = "crate::snapshot::sorted_map")]
    studies: HashMap<String, Arc<Study>>,
    /// (study, subject did:key) → the subject; ordered, so that a study's
    /// subjects are one range.
    #[serde(with = "subject_map")]
    subjects: OrdMap<(String, String), Arc<Subject>>,
}

/// The subjects as a sequence of pairs, in key order (as
/// `snapshot::sorted_map` writes hash maps).
mod subject_map {
    use std::sync::Arc;

    use imbl::OrdMap;
    use serde::{Deserialize, Deserializer, Serializer};

    use super::Subject;

    type Map = OrdMap<(String, String), Arc<Subject>>;

    pub fn serialize<S: Serializer>(map: &Map, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(map.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Map, D::Error> {
        let entries: Vec<((String, String), Arc<Subject>)> = Vec::deserialize(deserializer)?;
        Ok(entries.into_iter().collect())
    }
}

impl Trials {
    pub fn study(&self, id: &str) -> Option<&Study> {
        self.studies.get(id).map(|s| &**s)
    }

    /// Every study, sorted by id.
    pub fn studies(&self) -> Vec<(&str, &Study)> {
        let mut all: Vec<(&str, &Study)> = self
            .studies
            .iter()
            .map(|(k, v)| (k.as_str(), &**v))
            .collect();
        all.sort_by(|a, b| a.0.cmp(b.0));
        all
    }

    pub fn subject(&self, study: &str, subject: &str) -> Option<&Subject> {
        self.subjects
            .get(&(study.to_owned(), subject.to_owned()))
            .map(|s| &**s)
    }

    /// The subjects of `study`, sorted by their did:key: one range of the
    /// ordered map, whatever other studies hold.
    pub fn subjects_of(&self, study: &str) -> Vec<(&str, &Subject)> {
        self.subjects
            .range((study.to_owned(), String::new())..)
            .take_while(|((s, _), _)| s == study)
            .map(|((_, d), v)| (d.as_str(), &**v))
            .collect()
    }

    pub(crate) fn require_study(&self, id: &str) -> Result<&Study, TxError> {
        self.study(id).ok_or_else(|| {
            TxError::new(
                ErrorCode::NotFound("trial.unknown_study"),
                format!("no study {id}"),
            )
        })
    }

    pub(crate) fn put_study(&mut self, id: String, study: Study) {
        self.studies.insert(id, Arc::new(study));
    }

    pub(crate) fn put_subject(&mut self, study: &str, subject: &str, entry: Subject) {
        self.subjects
            .insert((study.to_owned(), subject.to_owned()), Arc::new(entry));
    }
}

/// The escrow milestone a subject's milestone reaches
/// (condition `{"kind":"milestone","id":…}`):
/// `trial/<study>/<subject>/<milestone>`, the subject as the first 32 hex
/// digits of the SHA-256 of its did:key. Only this domain emits ids under
/// `trial/`, and only for a milestone the subject's own active,
/// accredited site recorded in the study the id names.
pub fn milestone_id(study: &str, subject: &str, milestone: &Milestone) -> String {
    format!("trial/{study}/{}/{milestone}", short_subject(subject))
}

/// A subject's short name: the first 32 hex digits of the SHA-256 of its
/// did:key (in milestone ids and FHIR ResearchSubject ids).
pub fn short_subject(subject: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(subject.as_bytes())[..16])
}

fn forbidden(code: &'static str, message: impl Into<String>) -> TxError {
    TxError::new(ErrorCode::Forbidden(code), message)
}

fn conflict(code: &'static str, message: impl Into<String>) -> TxError {
    TxError::new(ErrorCode::Conflict(code), message)
}

fn invalid(code: &'static str, message: impl Into<String>) -> TxError {
    TxError::new(ErrorCode::Invalid(code), message)
}
