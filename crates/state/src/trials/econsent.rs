//! eConsent. Types: `econsent.give`, `econsent.withdraw`.
//!
//! A participant consents to one protocol version of a study, at one of
//! its active sites, with a did:key made for this study alone (the
//! subject's pseudonym; which person it is stays with the site). The
//! consent names the version and its protocol hash, and counts only for
//! the current approved version: a consent to an unknown, unapproved or
//! superseded version is refused. After an amendment approved with
//! `reconsent`, the subject's earlier consent no longer counts and no
//! further milestone is recorded for it until the subject consents to the
//! new version. The consent document itself (a FHIR Consent) stays in the
//! vault; the ledger holds its SHA-256.
//!
//! `econsent.withdraw`, signed by the subject, takes effect at once and at
//! any time: the subject becomes `withdrawn`, no further milestone (and so
//! no payment) is recorded for it, and it cannot consent to the study
//! again.

use hygeia_ledger::{ErrorCode, TxError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::super::accounts::acts_for;
use super::super::registry::{example_did, Cx, Registry, TxBody};
use super::super::txs::{check_code, check_did, check_hex32};
use super::super::{Effect, LedgerState};
use super::study::StudyState;
use super::subjects::{Subject, SubjectState};
use super::{conflict, forbidden, invalid};

pub const ECONSENT_GIVE: &str = "econsent.give";
pub const ECONSENT_WITHDRAW: &str = "econsent.withdraw";

pub(crate) fn register(r: &mut Registry) {
    r.add::<EconsentGive>();
    r.add::<EconsentWithdraw>();
}

/// The signer (the subject's did:key for this study) consents to
/// `version` of `study` (its protocol document's SHA-256 `protocol`) at
/// `site`; `document` is the SHA-256 of the signed consent document.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EconsentGive {
    pub study: String,
    pub site: String,
    pub version: String,
    pub protocol: String,
    pub document: String,
}

/// The signer (a subject of `study`) withdraws its consent.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EconsentWithdraw {
    pub study: String,
}

impl TxBody for EconsentGive {
    const TYPE: &'static str = ECONSENT_GIVE;

    fn example() -> Self {
        EconsentGive {
            study: "cd".repeat(32),
            site: example_did(6),
            version: "1.0".into(),
            protocol: "ab".repeat(32),
            document: "12".repeat(32),
        }
    }

    fn check(&self) -> Result<(), String> {
        check_hex32("study", &self.study)?;
        check_did("site", &self.site)?;
        check_code("version", &self.version)?;
        check_hex32("protocol", &self.protocol)?;
        check_hex32("document", &self.document)
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        let study = state.trials.require_study(&self.study)?;
        let party = acts_for(state, &cx.signer, &study.sponsor)
            || acts_for(state, &cx.signer, &study.committee)
            || study.sites.keys().any(|s| acts_for(state, &cx.signer, s));
        if party {
            return Err(invalid(
                "trial.subject_is_party",
                "the sponsor, the committee and the sites are not subjects of the study",
            ));
        }
        if study.state.is_final() {
            return Err(conflict(
                "trial.study_ended",
                format!("the study is {}", study.state.code()),
            ));
        }
        let Some(position) = study.position(&self.version) else {
            return Err(TxError::new(
                ErrorCode::NotFound("trial.version_unknown"),
                format!("the study has no version {}", self.version),
            ));
        };
        let version = &study.versions[position];
        if version.approved_at.is_none() {
            return Err(conflict(
                "trial.version_not_approved",
                format!("version {} awaits the committee's approval", self.version),
            ));
        }
        if study.current().map(|v| &v.version) != Some(&self.version) {
            return Err(conflict(
                "trial.version_superseded",
                format!("version {} is superseded by an amendment", self.version),
            ));
        }
        if version.protocol != self.protocol {
            return Err(conflict(
                "trial.protocol_mismatch",
                format!("version {} is another protocol document", self.version),
            ));
        }
        let Some(site) = study.sites.get(&self.site) else {
            return Err(TxError::new(
                ErrorCode::NotFound("trial.site_not_active"),
                format!("{} is not an active site of the study", self.site),
            ));
        };
        state.require_site_standing(site)?;
        let existing = state.trials.subject(&self.study, &cx.signer).cloned();
        let mut study = study.clone();
        let subject = match existing {
            None => {
                if study.state != StudyState::Recruiting {
                    return Err(conflict(
                        "trial.not_recruiting",
                        format!("the study is {}", study.state.code()),
                    ));
                }
                study.subjects = study.subjects.saturating_add(1);
                let mut subject = Subject::new(self.site, position, self.document, cx.index);
                subject.window_from = state.escrows.clock;
                subject
            }
            Some(mut subject) => {
                if subject.site != self.site {
                    return Err(conflict(
                        "trial.other_site",
                        "a subject consents again at its own site",
                    ));
                }
                if subject.state.is_final() {
                    return Err(conflict(
                        "trial.subject_ended",
                        format!("the subject is {}", subject.state.code()),
                    ));
                }
                if subject.consented_version == position {
                    return Err(conflict(
                        "trial.already_consented",
                        format!("the subject consented to version {} already", self.version),
                    ));
                }
                subject.consented_version = position;
                subject.consents.push((position, self.document, cx.index));
                subject
            }
        };
        state.trials.put_subject(&self.study, &cx.signer, subject);
        state.trials.put_study(self.study, study);
        Ok(Effect::None)
    }
}

impl TxBody for EconsentWithdraw {
    const TYPE: &'static str = ECONSENT_WITHDRAW;

    fn example() -> Self {
        EconsentWithdraw {
            study: "cd".repeat(32),
        }
    }

    fn check(&self) -> Result<(), String> {
        check_hex32("study", &self.study)
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        state.trials.require_study(&self.study)?;
        let Some(subject) = state.trials.subject(&self.study, &cx.signer) else {
            return Err(forbidden(
                "trial.not_subject",
                "only a subject of the study withdraws its own consent",
            ));
        };
        if subject.state == SubjectState::Withdrawn {
            return Err(conflict(
                "trial.already_withdrawn",
                "the subject has withdrawn already",
            ));
        }
        let mut subject = subject.clone();
        subject.set_state(SubjectState::Withdrawn, cx.index);
        subject.withdrawn_by_subject = true;
        subject.window_until = subject.window_until.or(Some(state.escrows.clock));
        state.trials.put_subject(&self.study, &cx.signer, subject);
        Ok(Effect::None)
    }
}
