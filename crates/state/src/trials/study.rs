//! A study and its protocol versions. Types: `study.register`,
//! `study.amend`, `study.progress`.
//!
//! A sponsor registers a study with the SHA-256 of its protocol document
//! (the document itself stays in the vault or with the sponsor), a version
//! code and the ethics committee that must approve it; the study's id is
//! the leaf hash of the `study.register` entry. Each amendment is a new
//! protocol version, proposed by the sponsor, that takes effect only when
//! the study's committee approves it ([`super::ethics`]); until then the
//! previous approved version stays current. The study's progress follows
//! FHIR R5 ResearchStudy `progressStatus` codes, through a transition
//! table ([`StudyState::may_become`]).

use std::collections::BTreeMap;

use hygeia_ledger::TxError;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::super::accounts::acts_for;
use super::super::registry::{example_did, Cx, Registry, TxBody};
use super::super::txs::{check_code, check_did, check_hex32};
use super::super::{Effect, LedgerState};
use super::sites::SiteEntry;
use super::{conflict, forbidden, invalid};

pub const STUDY_REGISTER: &str = "study.register";
pub const STUDY_AMEND: &str = "study.amend";
pub const STUDY_PROGRESS: &str = "study.progress";

/// Most protocol versions one study has.
pub const MAX_VERSIONS: usize = 64;

pub(crate) fn register(r: &mut Registry) {
    r.add::<StudyRegister>();
    r.add::<StudyAmend>();
    r.add::<StudyProgress>();
}

/// Where a study stands: FHIR R5 `research-study-status` codes.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum StudyState {
    /// Registered; its first protocol version awaits the committee.
    InReview,
    /// The committee approved the first protocol version.
    Approved,
    /// Sites enrol participants.
    Recruiting,
    /// No enrolment for now; subjects on study continue.
    TemporarilyClosedToAccrual,
    /// No more enrolment; subjects on study continue.
    ClosedToAccrual,
    /// Ended as planned.
    Completed,
    /// Stopped early.
    Terminated,
    /// Withdrawn before it started.
    Withdrawn,
}

impl StudyState {
    /// The FHIR code.
    pub fn code(self) -> &'static str {
        match self {
            StudyState::InReview => "in-review",
            StudyState::Approved => "approved",
            StudyState::Recruiting => "recruiting",
            StudyState::TemporarilyClosedToAccrual => "temporarily-closed-to-accrual",
            StudyState::ClosedToAccrual => "closed-to-accrual",
            StudyState::Completed => "completed",
            StudyState::Terminated => "terminated",
            StudyState::Withdrawn => "withdrawn",
        }
    }

    /// The FHIR display text.
    pub fn display(self) -> &'static str {
        match self {
            StudyState::InReview => "In Review",
            StudyState::Approved => "Approved",
            StudyState::Recruiting => "Recruiting",
            StudyState::TemporarilyClosedToAccrual => "Temporarily Closed to Accrual",
            StudyState::ClosedToAccrual => "Closed to Accrual",
            StudyState::Completed => "Completed",
            StudyState::Terminated => "Terminated",
            StudyState::Withdrawn => "Withdrawn",
        }
    }

    /// Whether the study has ended: nothing more happens in it.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            StudyState::Completed | StudyState::Terminated | StudyState::Withdrawn
        )
    }

    /// Whether subjects on study may go on (visits, completion).
    pub fn is_running(self) -> bool {
        matches!(
            self,
            StudyState::Recruiting
                | StudyState::TemporarilyClosedToAccrual
                | StudyState::ClosedToAccrual
        )
    }

    /// The sponsor's transition table. `approved` is reached only by the
    /// committee's approval of the first version, never by the sponsor.
    pub fn may_become(self, to: StudyState) -> bool {
        use StudyState::*;
        matches!(
            (self, to),
            (InReview, Withdrawn)
                | (Approved, Recruiting | Withdrawn)
                | (Recruiting, TemporarilyClosedToAccrual | ClosedToAccrual)
                | (TemporarilyClosedToAccrual, Recruiting | ClosedToAccrual)
                | (ClosedToAccrual, Completed)
                | (
                    Approved | Recruiting | TemporarilyClosedToAccrual | ClosedToAccrual,
                    Terminated
                )
        )
    }
}

/// One protocol version of a study.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtocolVersion {
    pub version: String,
    /// SHA-256 of the protocol document, hex.
    pub protocol: String,
    /// Whether subjects who consented to an earlier version must consent
    /// again before further milestones count.
    pub reconsent: bool,
    /// Leaf index of the `study.register` or `study.amend`.
    pub proposed_at: u64,
    /// Leaf index of the committee's `ethics.approve`.
    pub approved_at: Option<u64>,
}

/// A study as the ledger holds it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Study {
    pub sponsor: String,
    /// The ethics committee whose approval a protocol version needs.
    pub committee: String,
    pub state: StudyState,
    /// Every version, in proposal order: approved ones, then at most one
    /// pending amendment.
    pub versions: Vec<ProtocolVersion>,
    /// Site DID → its activation.
    pub sites: BTreeMap<String, SiteEntry>,
    /// Leaf index of the `study.register`.
    pub registered_at: u64,
    /// (state, leaf index) of each change, the first one `in-review`.
    pub history: Vec<(StudyState, u64)>,
    /// Subjects who consented, and who were enrolled.
    pub subjects: u32,
    pub enrolled: u32,
}

impl Study {
    /// The current approved version, if any.
    pub fn current(&self) -> Option<&ProtocolVersion> {
        self.versions.iter().rev().find(|v| v.approved_at.is_some())
    }

    /// The amendment awaiting the committee, if any.
    pub fn pending(&self) -> Option<&ProtocolVersion> {
        self.versions.last().filter(|v| v.approved_at.is_none())
    }

    /// The position of `version` among the versions.
    pub fn position(&self, version: &str) -> Option<usize> {
        self.versions.iter().position(|v| v.version == version)
    }

    /// The position of the latest approved version asking for re-consent
    /// (the first version always does): a consent to an earlier version
    /// no longer counts.
    pub fn consent_floor(&self) -> usize {
        self.versions
            .iter()
            .rposition(|v| v.approved_at.is_some() && v.reconsent)
            .unwrap_or(0)
    }

    pub(crate) fn set_state(&mut self, state: StudyState, index: u64) {
        self.state = state;
        self.history.push((state, index));
    }
}

/// Registers a study: the sponsor (the signer, or an organization whose
/// admin key signs), the SHA-256 of the protocol document, its version
/// code and the ethics committee that approves it. The study's id is the
/// entry's leaf hash; it starts `in-review`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StudyRegister {
    pub protocol: String,
    pub version: String,
    pub committee: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sponsor: Option<String>,
}

/// Proposes a new protocol version of a study (the sponsor's); it takes
/// effect when the study's committee approves it. `reconsent`: subjects
/// must consent to it before further milestones count.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StudyAmend {
    pub study: String,
    pub protocol: String,
    pub version: String,
    pub reconsent: bool,
}

/// Moves a study to another `progressStatus` state (the sponsor's), by
/// the transition table of docs/trials.md.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StudyProgress {
    pub study: String,
    pub state: StudyState,
}

/// The sponsor of `study`, if the signer acts for it.
pub(crate) fn require_sponsor(
    state: &LedgerState,
    study: &Study,
    signer: &str,
) -> Result<(), TxError> {
    if acts_for(state, signer, &study.sponsor) {
        Ok(())
    } else {
        Err(forbidden(
            "trial.not_sponsor",
            "only the study's sponsor changes the study",
        ))
    }
}

fn require_open(study: &Study) -> Result<(), TxError> {
    if study.state.is_final() {
        return Err(conflict(
            "trial.study_ended",
            format!("the study is {}", study.state.code()),
        ));
    }
    Ok(())
}

impl TxBody for StudyRegister {
    const TYPE: &'static str = STUDY_REGISTER;

    fn example() -> Self {
        StudyRegister {
            protocol: "ab".repeat(32),
            version: "1.0".into(),
            committee: example_did(5),
            sponsor: None,
        }
    }

    fn check(&self) -> Result<(), String> {
        check_hex32("protocol", &self.protocol)?;
        check_code("version", &self.version)?;
        check_did("committee", &self.committee)?;
        if let Some(sponsor) = &self.sponsor {
            check_did("sponsor", sponsor)?;
        }
        Ok(())
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        let sponsor = self.sponsor.clone().unwrap_or_else(|| cx.signer.clone());
        if !acts_for(state, &cx.signer, &sponsor) {
            return Err(forbidden(
                "trial.not_sponsor",
                format!("only {sponsor}'s key registers a study in its name"),
            ));
        }
        if self.committee == sponsor || acts_for(state, &cx.signer, &self.committee) {
            return Err(invalid(
                "trial.committee_is_sponsor",
                "a study's ethics committee is independent of its sponsor",
            ));
        }
        let id = hex::encode(cx.tx.leaf_hash().0);
        state.trials.put_study(
            id,
            Study {
                sponsor,
                committee: self.committee,
                state: StudyState::InReview,
                versions: vec![ProtocolVersion {
                    version: self.version,
                    protocol: self.protocol,
                    reconsent: true,
                    proposed_at: cx.index,
                    approved_at: None,
                }],
                sites: BTreeMap::new(),
                registered_at: cx.index,
                history: vec![(StudyState::InReview, cx.index)],
                subjects: 0,
                enrolled: 0,
            },
        );
        Ok(Effect::None)
    }
}

impl TxBody for StudyAmend {
    const TYPE: &'static str = STUDY_AMEND;

    fn example() -> Self {
        StudyAmend {
            study: "cd".repeat(32),
            protocol: "ef".repeat(32),
            version: "2.0".into(),
            reconsent: true,
        }
    }

    fn check(&self) -> Result<(), String> {
        check_hex32("study", &self.study)?;
        check_hex32("protocol", &self.protocol)?;
        check_code("version", &self.version)
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        let study = state.trials.require_study(&self.study)?;
        require_sponsor(state, study, &cx.signer)?;
        require_open(study)?;
        if let Some(pending) = study.pending() {
            return Err(conflict(
                "trial.amendment_pending",
                format!(
                    "version {} awaits the committee's approval",
                    pending.version
                ),
            ));
        }
        if study.position(&self.version).is_some() {
            return Err(conflict(
                "trial.version_exists",
                format!("the study has a version {} already", self.version),
            ));
        }
        if study.versions.iter().any(|v| v.protocol == self.protocol) {
            return Err(conflict(
                "trial.protocol_exists",
                "an amendment changes the protocol document",
            ));
        }
        if study.versions.len() >= MAX_VERSIONS {
            return Err(conflict(
                "trial.too_many_versions",
                format!("a study has at most {MAX_VERSIONS} protocol versions"),
            ));
        }
        let mut study = study.clone();
        study.versions.push(ProtocolVersion {
            version: self.version,
            protocol: self.protocol,
            reconsent: self.reconsent,
            proposed_at: cx.index,
            approved_at: None,
        });
        state.trials.put_study(self.study, study);
        Ok(Effect::None)
    }
}

impl TxBody for StudyProgress {
    const TYPE: &'static str = STUDY_PROGRESS;

    fn example() -> Self {
        StudyProgress {
            study: "cd".repeat(32),
            state: StudyState::Recruiting,
        }
    }

    fn check(&self) -> Result<(), String> {
        check_hex32("study", &self.study)
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        let study = state.trials.require_study(&self.study)?;
        require_sponsor(state, study, &cx.signer)?;
        if !study.state.may_become(self.state) {
            return Err(conflict(
                "trial.bad_transition",
                format!(
                    "a study {} does not become {}",
                    study.state.code(),
                    self.state.code()
                ),
            ));
        }
        let mut study = study.clone();
        study.set_state(self.state, cx.index);
        state.trials.put_study(self.study, study);
        Ok(Effect::None)
    }
}
