//! Research subjects' progress. Types: `subject.milestone`,
//! `subject.deviation`.
//!
//! A subject (the did:key that consented, [`super::econsent`]) moves
//! through FHIR R5 ResearchSubject `progress.subjectState` states as its
//! site records milestones: `screened` (candidate → eligible) or
//! `screen-failed` (→ ineligible), `enrolled` (eligible → on-study, while
//! the study recruits), `visit-<n>` (on-study, each visit number above the
//! last), `completed` (on-study → off-study) and `withdrawn` (the site
//! takes a subject off the study, from any state that has not ended).
//! Only a key acting for the subject's own site records them, while the
//! site's accreditation counts and the subject's consent is to the
//! current version (after an amendment with `reconsent`:
//! `trial.reconsent_required`). Each recorded milestone emits
//! [`MilestoneReached`] with [`super::milestone_id`], so a sponsor's
//! escrow waiting on it pays the site in the same transaction.
//!
//! Protocol deviations are events too: the site records its severity and
//! the SHA-256 of the deviation report (the report stays in the vault).

use std::fmt;
use std::str::FromStr;

use hygeia_ledger::{ErrorCode, TxError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::super::accounts::acts_for;
use super::super::escrow::MilestoneReached;
use super::super::registry::{example_did, Cx, Registry, TxBody};
use super::super::txs::{check_code, check_did_key, check_hex32};
use super::super::{Effect, LedgerState};
use super::study::StudyState;
use super::{conflict, forbidden, milestone_id};

pub const SUBJECT_MILESTONE: &str = "subject.milestone";
pub const SUBJECT_DEVIATION: &str = "subject.deviation";
pub const SUBJECT_ENDPOINT: &str = "subject.endpoint";

/// Highest visit number.
pub const MAX_VISIT: u16 = 999;
/// Most deviations recorded for one subject.
pub const MAX_DEVIATIONS: usize = 256;
/// Most endpoint assessments recorded for one subject.
pub const MAX_ENDPOINTS: usize = 64;

pub(crate) fn register(r: &mut Registry) {
    r.add::<SubjectMilestone>().emits::<MilestoneReached>();
    r.add::<SubjectDeviation>();
    r.add::<SubjectEndpoint>().emits::<MilestoneReached>();
}

/// Where a subject stands: FHIR R5 `research-subject-state` codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SubjectState {
    /// Consented, not yet screened.
    Candidate,
    Eligible,
    Ineligible,
    OnStudy,
    OffStudy,
    Withdrawn,
}

impl SubjectState {
    pub fn code(self) -> &'static str {
        match self {
            SubjectState::Candidate => "candidate",
            SubjectState::Eligible => "eligible",
            SubjectState::Ineligible => "ineligible",
            SubjectState::OnStudy => "on-study",
            SubjectState::OffStudy => "off-study",
            SubjectState::Withdrawn => "withdrawn",
        }
    }

    /// Whether nothing more happens to the subject in the study.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            SubjectState::Ineligible | SubjectState::OffStudy | SubjectState::Withdrawn
        )
    }
}

/// A milestone a site records: `screened`, `screen-failed`, `enrolled`,
/// `visit-<n>` (1 to 999), `completed`, `withdrawn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Milestone {
    Screened,
    ScreenFailed,
    Enrolled,
    Visit(u16),
    Completed,
    Withdrawn,
}

impl fmt::Display for Milestone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Milestone::Screened => f.write_str("screened"),
            Milestone::ScreenFailed => f.write_str("screen-failed"),
            Milestone::Enrolled => f.write_str("enrolled"),
            Milestone::Visit(n) => write!(f, "visit-{n}"),
            Milestone::Completed => f.write_str("completed"),
            Milestone::Withdrawn => f.write_str("withdrawn"),
        }
    }
}

impl FromStr for Milestone {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "milestone is screened, screen-failed, enrolled, visit-<1..{MAX_VISIT}>, completed or withdrawn, not {s:?}"
            )
        };
        Ok(match s {
            "screened" => Milestone::Screened,
            "screen-failed" => Milestone::ScreenFailed,
            "enrolled" => Milestone::Enrolled,
            "completed" => Milestone::Completed,
            "withdrawn" => Milestone::Withdrawn,
            other => {
                let digits = other.strip_prefix("visit-").ok_or_else(bad)?;
                if digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                let n: u16 = digits.parse().map_err(|_| bad())?;
                if n == 0 || n > MAX_VISIT {
                    return Err(bad());
                }
                Milestone::Visit(n)
            }
        })
    }
}

impl TryFrom<String> for Milestone {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Milestone> for String {
    fn from(m: Milestone) -> String {
        m.to_string()
    }
}

impl Serialize for Milestone {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Milestone {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// How grave a protocol deviation is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Minor,
    Major,
}

/// A deviation as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deviation {
    pub severity: Severity,
    /// SHA-256 of the deviation report.
    pub report: String,
    pub index: u64,
}

/// An endpoint assessment as recorded: which endpoint of the protocol,
/// the SHA-256 of the site's assessment report (the finding stays with the
/// site), and the leaf index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointAssessment {
    pub endpoint: String,
    pub report: String,
    pub index: u64,
}

/// A subject of a study.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    pub site: String,
    pub state: SubjectState,
    /// Position of the protocol version of its latest consent.
    pub consented_version: usize,
    /// (version position, consent document hash, leaf index) of each
    /// consent.
    pub consents: Vec<(usize, String, u64)>,
    /// (milestone, leaf index), in order.
    pub milestones: Vec<(Milestone, u64)>,
    /// (state, leaf index) of each change.
    pub history: Vec<(SubjectState, u64)>,
    pub last_visit: u16,
    pub deviations: Vec<Deviation>,
    /// Whether the subject withdrew its consent itself (rather than the
    /// site taking it off the study).
    pub withdrawn_by_subject: bool,
    /// The ledger's clock (`clock.tick`) at the subject's first consent:
    /// its trial window's start (readings of its trial devices,
    /// docs/devices.md).
    #[serde(default)]
    pub window_from: i64,
    /// The ledger's clock when the subject withdrew or its participation
    /// ended (ineligible, off-study, withdrawn): its trial window's end;
    /// `None` while the window is open.
    #[serde(default)]
    pub window_until: Option<i64>,
    /// The ids of the subject's own `HRESCH` grants that back its consents
    /// (to the sponsor or its site), in the order named: revoked when the
    /// subject withdraws or an amendment asks it to consent again.
    #[serde(default)]
    pub grants: Vec<String>,
    /// The endpoint assessments its site recorded, in order.
    #[serde(default)]
    pub endpoints: Vec<EndpointAssessment>,
}

impl Subject {
    pub(crate) fn new(site: String, version: usize, document: String, index: u64) -> Subject {
        Subject {
            site,
            state: SubjectState::Candidate,
            consented_version: version,
            consents: vec![(version, document, index)],
            milestones: Vec::new(),
            history: vec![(SubjectState::Candidate, index)],
            last_visit: 0,
            deviations: Vec::new(),
            withdrawn_by_subject: false,
            window_from: 0,
            window_until: None,
            grants: Vec::new(),
            endpoints: Vec::new(),
        }
    }

    pub(crate) fn set_state(&mut self, state: SubjectState, index: u64) {
        self.state = state;
        self.history.push((state, index));
    }
}

/// The subject's site records `milestone` for `subject` in `study`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubjectMilestone {
    pub study: String,
    pub subject: String,
    /// `screened`, `screen-failed`, `enrolled`, `visit-<n>`, `completed`
    /// or `withdrawn`.
    #[schemars(with = "String")]
    pub milestone: Milestone,
}

/// The subject's site records that `endpoint` (a code the protocol
/// defines, such as `primary` or `progression-free-6m`) was assessed for
/// the subject: the SHA-256 of the assessment report, never its finding.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubjectEndpoint {
    pub study: String,
    pub subject: String,
    pub endpoint: String,
    pub report: String,
}

/// The subject's site records a protocol deviation: its severity and the
/// SHA-256 of the report.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubjectDeviation {
    pub study: String,
    pub subject: String,
    pub severity: Severity,
    pub report: String,
}

/// The study and the subject, if the signer acts for the subject's site.
fn require_site_of<'a>(
    state: &'a LedgerState,
    signer: &str,
    study_id: &str,
    subject_id: &str,
) -> Result<(&'a super::Study, &'a Subject), TxError> {
    let study = state.trials.require_study(study_id)?;
    let Some(subject) = state.trials.subject(study_id, subject_id) else {
        return Err(TxError::new(
            ErrorCode::NotFound("trial.unknown_subject"),
            "no such subject in the study",
        ));
    };
    if !acts_for(state, signer, &subject.site) {
        return Err(forbidden(
            "trial.not_site",
            "only the subject's own site records its progress",
        ));
    }
    Ok((study, subject))
}

/// What a site's record about a subject (a milestone other than
/// withdrawal, an endpoint) needs beyond the site's key: the study not
/// ended, the site active and in good standing, and the subject's consent
/// counting (after an amendment asking for it, a re-consent).
fn require_running_under_consent(
    state: &LedgerState,
    study: &super::Study,
    subject: &Subject,
) -> Result<(), TxError> {
    if study.state.is_final() {
        return Err(conflict(
            "trial.study_ended",
            format!("the study is {}", study.state.code()),
        ));
    }
    // A study that has subjects has recruited: it is running until it
    // ends (the transition table never goes back).
    let Some(site) = study.sites.get(&subject.site) else {
        return Err(forbidden("trial.not_site", "the site is not active"));
    };
    state.require_site_standing(site)?;
    if subject.consented_version < study.consent_floor() {
        return Err(conflict(
            "trial.reconsent_required",
            "the subject must consent to the amended protocol first",
        ));
    }
    Ok(())
}

impl TxBody for SubjectMilestone {
    const TYPE: &'static str = SUBJECT_MILESTONE;

    fn example() -> Self {
        SubjectMilestone {
            study: "cd".repeat(32),
            subject: example_did(8),
            milestone: Milestone::Visit(2),
        }
    }

    fn check(&self) -> Result<(), String> {
        check_hex32("study", &self.study)?;
        check_did_key("subject", &self.subject)
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        let (study, subject) = require_site_of(state, &cx.signer, &self.study, &self.subject)?;
        if subject.state.is_final() {
            return Err(conflict(
                "trial.subject_ended",
                format!("the subject is {}", subject.state.code()),
            ));
        }
        let withdrawing = self.milestone == Milestone::Withdrawn;
        if !withdrawing {
            require_running_under_consent(state, study, subject)?;
        }
        use Milestone as M;
        use SubjectState as S;
        let next = match (self.milestone, subject.state) {
            (M::Screened, S::Candidate) => S::Eligible,
            (M::ScreenFailed, S::Candidate) => S::Ineligible,
            (M::Enrolled, S::Eligible) => {
                if study.state != StudyState::Recruiting {
                    return Err(conflict(
                        "trial.not_recruiting",
                        format!("the study is {}", study.state.code()),
                    ));
                }
                S::OnStudy
            }
            (M::Visit(n), S::OnStudy) if n > subject.last_visit => S::OnStudy,
            (M::Completed, S::OnStudy) => S::OffStudy,
            (M::Withdrawn, _) => S::Withdrawn,
            (milestone, current) => {
                return Err(conflict(
                    "trial.bad_transition",
                    format!("a subject {} cannot be {milestone}", current.code()),
                ))
            }
        };
        let mut study = study.clone();
        let mut subject = subject.clone();
        if self.milestone == M::Enrolled {
            study.enrolled = study.enrolled.saturating_add(1);
        }
        if let M::Visit(n) = self.milestone {
            subject.last_visit = n;
        }
        subject.milestones.push((self.milestone, cx.index));
        if next != subject.state {
            subject.set_state(next, cx.index);
        }
        if next.is_final() && subject.window_until.is_none() {
            subject.window_until = Some(state.escrows.clock);
        }
        state
            .trials
            .put_subject(&self.study, &self.subject, subject);
        let id = milestone_id(&self.study, &self.subject, &self.milestone);
        state.trials.put_study(self.study, study);
        cx.emit(MilestoneReached { id })?;
        Ok(Effect::None)
    }
}

impl TxBody for SubjectDeviation {
    const TYPE: &'static str = SUBJECT_DEVIATION;

    fn example() -> Self {
        SubjectDeviation {
            study: "cd".repeat(32),
            subject: example_did(8),
            severity: Severity::Minor,
            report: "34".repeat(32),
        }
    }

    fn check(&self) -> Result<(), String> {
        check_hex32("study", &self.study)?;
        check_did_key("subject", &self.subject)?;
        check_hex32("report", &self.report)
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        let (_, subject) = require_site_of(state, &cx.signer, &self.study, &self.subject)?;
        if subject.deviations.len() >= MAX_DEVIATIONS {
            return Err(conflict(
                "trial.too_many_deviations",
                format!("at most {MAX_DEVIATIONS} deviations are recorded for one subject"),
            ));
        }
        if subject.deviations.iter().any(|d| d.report == self.report) {
            return Err(conflict(
                "trial.deviation_exists",
                "this deviation report is recorded already",
            ));
        }
        let mut subject = subject.clone();
        subject.deviations.push(Deviation {
            severity: self.severity,
            report: self.report,
            index: cx.index,
        });
        state
            .trials
            .put_subject(&self.study, &self.subject, subject);
        Ok(Effect::None)
    }
}

/// The escrow milestone an endpoint assessment reaches:
/// `trial/<study>/<subject's short name>/endpoint-<endpoint>`, so a
/// sponsor may pay the site per assessment as per visit.
pub fn endpoint_milestone_id(study: &str, subject: &str, endpoint: &str) -> String {
    format!(
        "trial/{study}/{}/endpoint-{endpoint}",
        super::short_subject(subject)
    )
}

/// Longest endpoint code: its milestone id stays within
/// [`crate::escrow::MAX_MILESTONE_ID_LEN`].
pub const MAX_ENDPOINT_LEN: usize = 48;

impl TxBody for SubjectEndpoint {
    const TYPE: &'static str = SUBJECT_ENDPOINT;

    fn example() -> Self {
        SubjectEndpoint {
            study: "cd".repeat(32),
            subject: example_did(8),
            endpoint: "primary".into(),
            report: "56".repeat(32),
        }
    }

    fn check(&self) -> Result<(), String> {
        check_hex32("study", &self.study)?;
        check_did_key("subject", &self.subject)?;
        check_code("endpoint", &self.endpoint)?;
        if self.endpoint.len() > MAX_ENDPOINT_LEN {
            return Err(format!(
                "subject.endpoint body: endpoint is at most {MAX_ENDPOINT_LEN} characters"
            ));
        }
        check_hex32("report", &self.report)
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        let (study, subject) = require_site_of(state, &cx.signer, &self.study, &self.subject)?;
        // Only a subject on study is assessed, and only under a consent
        // that counts: after withdrawal nothing of it flows.
        if subject.state != SubjectState::OnStudy {
            return Err(conflict(
                "trial.not_on_study",
                format!(
                    "endpoints are assessed for a subject on study; this one is {}",
                    subject.state.code()
                ),
            ));
        }
        require_running_under_consent(state, study, subject)?;
        if subject.endpoints.iter().any(|e| e.report == self.report) {
            return Err(conflict(
                "trial.endpoint_exists",
                "this assessment report is recorded already",
            ));
        }
        if subject.endpoints.len() >= MAX_ENDPOINTS {
            return Err(conflict(
                "trial.too_many_endpoints",
                format!(
                    "at most {MAX_ENDPOINTS} endpoint assessments are recorded for one subject"
                ),
            ));
        }
        let mut subject = subject.clone();
        subject.endpoints.push(EndpointAssessment {
            endpoint: self.endpoint.clone(),
            report: self.report,
            index: cx.index,
        });
        state
            .trials
            .put_subject(&self.study, &self.subject, subject);
        let id = endpoint_milestone_id(&self.study, &self.subject, &self.endpoint);
        cx.emit(MilestoneReached { id })?;
        Ok(Effect::None)
    }
}
