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
//! The consent is backed by ledger grants (a FHIR Consent each): the
//! subject's own `consent.grant`s, with purpose `HRESCH` and the read
//! action, to the study's sponsor or the consent's site, named in
//! `grants`. They are what lets the sponsor and the site read the
//! subject's data; a consent that names none shares nothing (deny by
//! default). Naming them ties them to the study: they are revoked in the
//! transaction that withdraws the subject, and in the approval of an
//! amendment that asks the subject to consent again, so the data stops
//! flowing at once and flows again only under the grants the new consent
//! names.
//!
//! `econsent.withdraw`, signed by the subject, takes effect at once and at
//! any time: the subject becomes `withdrawn`, no further milestone (and so
//! no payment) is recorded for it, and it cannot consent to the study
//! again.

use hygeia_ledger::{ErrorCode, TxError};
use hygeia_policy::{Action, PurposeOfUse};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::super::accounts::acts_for;
use super::super::consent::revoke;
use super::super::registry::{example_did, Cx, Registry, TxBody};
use super::super::txs::{check_code, check_did, check_hex32};
use super::super::{Effect, LedgerState};
use super::study::StudyState;
use super::subjects::{Subject, SubjectState};
use super::{conflict, forbidden, invalid};

pub const ECONSENT_GIVE: &str = "econsent.give";
pub const ECONSENT_WITHDRAW: &str = "econsent.withdraw";

/// Most grants one consent names.
pub const MAX_CONSENT_GRANTS: usize = 4;

/// Most grants a subject's consents name in all.
pub const MAX_SUBJECT_GRANTS: usize = 32;

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
    /// The ids of the signer's own `HRESCH` read grants to the sponsor or
    /// `site` that back this consent (at most [`MAX_CONSENT_GRANTS`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<String>,
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
            grants: vec!["34".repeat(32)],
        }
    }

    fn check(&self) -> Result<(), String> {
        check_hex32("study", &self.study)?;
        check_did("site", &self.site)?;
        check_code("version", &self.version)?;
        check_hex32("protocol", &self.protocol)?;
        check_hex32("document", &self.document)?;
        if self.grants.len() > MAX_CONSENT_GRANTS {
            return Err(format!(
                "econsent.give body: at most {MAX_CONSENT_GRANTS} grants"
            ));
        }
        for (i, grant) in self.grants.iter().enumerate() {
            check_hex32("grants", grant)?;
            if self.grants[..i].contains(grant) {
                return Err("econsent.give body: each grant once".into());
            }
        }
        Ok(())
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
        check_backing_grants(state, &cx.signer, &study.sponsor, &self.site, &self.grants)?;
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
        let mut subject = subject;
        for grant in self.grants {
            if subject.grants.contains(&grant) {
                return Err(conflict(
                    "trial.grant_already_named",
                    format!("grant {grant} backs an earlier consent of the subject"),
                ));
            }
            if subject.grants.len() >= MAX_SUBJECT_GRANTS {
                return Err(conflict(
                    "trial.too_many_grants",
                    format!("a subject's consents name at most {MAX_SUBJECT_GRANTS} grants"),
                ));
            }
            subject.grants.push(grant);
        }
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
        revoke_backing_grants(state, &cx.signer, &subject.grants)?;
        state.trials.put_subject(&self.study, &cx.signer, subject);
        Ok(Effect::None)
    }
}

/// Refuses, with a stable code, a consent backed by anything but the
/// subject's own unrevoked `HRESCH` read grants to the sponsor or the site.
fn check_backing_grants(
    state: &LedgerState,
    subject: &str,
    sponsor: &str,
    site: &str,
    grants: &[String],
) -> Result<(), TxError> {
    let consents = state.policy.consents();
    for id in grants {
        let Some(grant) = consents.get(id) else {
            return Err(TxError::new(
                ErrorCode::NotFound("trial.grant_unknown"),
                format!("no grant {id}"),
            ));
        };
        if grant.patient != subject {
            return Err(forbidden(
                "trial.grant_not_subjects",
                format!("grant {id} is not the subject's own"),
            ));
        }
        if consents.is_revoked(id) {
            return Err(conflict(
                "trial.grant_revoked",
                format!("grant {id} is revoked"),
            ));
        }
        let to_study = grant.grantee == sponsor || grant.grantee == site;
        if !to_study
            || grant.purpose != PurposeOfUse::Research
            || !grant.actions.contains(&Action::Read)
        {
            return Err(invalid(
                "trial.grant_not_for_study",
                format!("grant {id} is not a HRESCH read grant to the sponsor or the site"),
            ));
        }
    }
    Ok(())
}

/// Revokes, as the subject, those of `grants` not revoked yet: the
/// sponsor's and the site's reads of the subject's data stop with the
/// transaction that calls it.
pub(crate) fn revoke_backing_grants(
    state: &mut LedgerState,
    subject: &str,
    grants: &[String],
) -> Result<(), TxError> {
    for id in grants {
        if state.policy.consents().is_revoked(id) {
            continue;
        }
        revoke(state, subject, id)?;
    }
    Ok(())
}
