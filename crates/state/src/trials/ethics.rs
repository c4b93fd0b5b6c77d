//! Ethics approval of a protocol version. Type: `ethics.approve`.
//!
//! A protocol version counts only once the study's ethics committee
//! approved it: signed by the committee the sponsor named at
//! registration, which the governance must trust for
//! [`super::VCT_ETHICS_COMMITTEE`] on the trust list (`trust.issuer`, the
//! machinery that accredits licensing boards and manufacturers) at the
//! time of the approval; removing it from the trust list stops its later
//! approvals. The approval names the version and its protocol hash, so a
//! committee approves exactly the document it read. Approving the first
//! version moves the study from `in-review` to `approved`; approving an
//! amendment makes it the current version. Approving an amendment that
//! asks for re-consent revokes, in the same transaction, the grants that
//! backed the consents it supersedes ([`super::econsent`]): no subject's
//! data reaches the sponsor or a site until the subject consents again.

use hygeia_ledger::TxError;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::super::accounts::acts_for;
use super::super::registry::{Cx, Registry, TxBody};
use super::super::txs::{check_code, check_hex32};
use super::super::{Effect, LedgerState};
use super::econsent::revoke_backing_grants;
use super::study::StudyState;
use super::{conflict, forbidden, VCT_ETHICS_COMMITTEE};

pub const ETHICS_APPROVE: &str = "ethics.approve";

pub(crate) fn register(r: &mut Registry) {
    r.add::<EthicsApprove>();
}

/// The study's ethics committee approves one protocol version, named with
/// its document's hash.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EthicsApprove {
    pub study: String,
    pub version: String,
    pub protocol: String,
}

impl TxBody for EthicsApprove {
    const TYPE: &'static str = ETHICS_APPROVE;

    fn example() -> Self {
        EthicsApprove {
            study: "cd".repeat(32),
            version: "1.0".into(),
            protocol: "ab".repeat(32),
        }
    }

    fn check(&self) -> Result<(), String> {
        check_hex32("study", &self.study)?;
        check_code("version", &self.version)?;
        check_hex32("protocol", &self.protocol)
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        let study = state.trials.require_study(&self.study)?;
        if !acts_for(state, &cx.signer, &study.committee) {
            return Err(forbidden(
                "trial.not_committee",
                "only the study's ethics committee approves its protocol",
            ));
        }
        if state
            .credentials
            .trusted(&study.committee, VCT_ETHICS_COMMITTEE)
            .is_none()
        {
            return Err(forbidden(
                "trial.untrusted_committee",
                format!(
                    "{} is not on the trust list for ethics approvals",
                    study.committee
                ),
            ));
        }
        if study.state.is_final() {
            return Err(conflict(
                "trial.study_ended",
                format!("the study is {}", study.state.code()),
            ));
        }
        let Some(position) = study.position(&self.version) else {
            return Err(hygeia_ledger::TxError::new(
                hygeia_ledger::ErrorCode::NotFound("trial.version_unknown"),
                format!("the study has no version {}", self.version),
            ));
        };
        let version = &study.versions[position];
        if version.approved_at.is_some() {
            return Err(conflict(
                "trial.already_approved",
                format!("version {} is approved already", self.version),
            ));
        }
        if version.protocol != self.protocol {
            return Err(conflict(
                "trial.protocol_mismatch",
                format!("version {} is another protocol document", self.version),
            ));
        }
        let mut study = study.clone();
        study.versions[position].approved_at = Some(cx.index);
        if study.state == StudyState::InReview {
            study.set_state(StudyState::Approved, cx.index);
        }
        let floor = study.consent_floor();
        let superseded: Vec<(String, Vec<String>)> = state
            .trials
            .subjects_of(&self.study)
            .into_iter()
            .filter(|(_, s)| s.consented_version < floor && !s.grants.is_empty())
            .map(|(did, s)| (did.to_owned(), s.grants.clone()))
            .collect();
        for (subject, grants) in superseded {
            revoke_backing_grants(state, &subject, &grants)?;
        }
        state.trials.put_study(self.study, study);
        Ok(Effect::None)
    }
}
