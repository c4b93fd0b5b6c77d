//! Who may see what: patients' consent grants and delegates, and the
//! governance policies they are decided under (the policy engine's state,
//! `LedgerState::policy`). Types: `consent.grant`, `consent.revoke`,
//! `consent.delegate`, `governance.policy`.

use hygeia_ledger::{ErrorCode, TxError};
use hygeia_policy::{ConsentError, ConsentEvent, GovernanceError};

use super::registry::{example_did, Cx, Registry, TxBody};
use super::txs::{
    check_code, check_country, check_did, check_did_key, check_hex32, check_purpose,
    check_resource_type, ConsentDelegate, ConsentGrant, ConsentRevoke, DelegateOp,
    GovernancePolicy, CONSENT_DELEGATE, CONSENT_GRANT, CONSENT_REVOKE, GOVERNANCE_POLICY,
};
use super::{Effect, LedgerState};

/// Registers the types of this domain.
pub(crate) fn register(r: &mut Registry) {
    r.add::<ConsentGrant>();
    r.add::<ConsentRevoke>();
    r.add::<ConsentDelegate>();
    r.add::<GovernancePolicy>();
}

impl TxBody for ConsentGrant {
    const TYPE: &'static str = CONSENT_GRANT;

    fn example() -> Self {
        ConsentGrant {
            patient: example_did(4),
            grantee: example_did(2),
            scope: hygeia_policy::Scope::categories(["lab"]),
            actions: [hygeia_policy::Action::Read].into(),
            purpose: "TREAT".into(),
            not_before: 1_800_000_000,
            not_after: 1_900_000_000,
            jurisdictions: Default::default(),
        }
    }

    fn check(&self) -> Result<(), String> {
        check_did_key("patient", &self.patient)?;
        check_did("grantee", &self.grantee)?;
        check_purpose(&self.purpose)?;
        // Scope values are codes and ids, never free text.
        for category in &self.scope.categories {
            check_code("scope.categories[]", category)?;
        }
        for resource_type in &self.scope.resource_types {
            check_resource_type(resource_type)?;
        }
        for record in &self.scope.record_ids {
            check_hex32("scope.record_ids[]", record)?;
        }
        for country in &self.jurisdictions {
            check_country("jurisdictions", country)?;
        }
        Ok(())
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        let grant = self
            .to_grant(hex::encode(cx.tx.leaf_hash().0))
            .map_err(|e| TxError::new(ErrorCode::Invalid("consent.unknown_purpose"), e))?;
        consent(
            state,
            ConsentEvent::Grant {
                author: cx.signer.clone(),
                grant,
            },
        )
    }
}

impl TxBody for ConsentRevoke {
    const TYPE: &'static str = CONSENT_REVOKE;

    fn example() -> Self {
        ConsentRevoke {
            grant: "cd".repeat(32),
        }
    }

    fn check(&self) -> Result<(), String> {
        check_hex32("grant", &self.grant)
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        revoke(state, &cx.signer, &self.grant)?;
        Ok(Effect::None)
    }
}

impl TxBody for ConsentDelegate {
    const TYPE: &'static str = CONSENT_DELEGATE;

    fn example() -> Self {
        ConsentDelegate {
            patient: example_did(4),
            delegate: example_did(5),
            op: DelegateOp::Add,
        }
    }

    fn check(&self) -> Result<(), String> {
        check_did_key("patient", &self.patient)?;
        check_did_key("delegate", &self.delegate)
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        let (author, patient, delegate) = (cx.signer.clone(), self.patient, self.delegate);
        consent(
            state,
            match self.op {
                DelegateOp::Add => ConsentEvent::RegisterDelegate {
                    author,
                    patient,
                    delegate,
                },
                DelegateOp::Remove => ConsentEvent::RemoveDelegate {
                    author,
                    patient,
                    delegate,
                },
            },
        )
    }
}

impl TxBody for GovernancePolicy {
    const TYPE: &'static str = GOVERNANCE_POLICY;

    fn example() -> Self {
        GovernancePolicy {
            version: 1,
            policies: r#"@id("example.own-records") permit (principal, action, resource) when { principal == resource.patient };"#.into(),
        }
    }

    fn check(&self) -> Result<(), String> {
        if self.policies.trim().is_empty() {
            return Err("governance.policy body: policies must not be empty".into());
        }
        Ok(())
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        if !state.participants.is_governance(&cx.signer) {
            return Err(TxError::new(
                ErrorCode::Forbidden("governance.not_governance"),
                "only the network's governance key installs governance policies",
            ));
        }
        state
            .policy
            .install_governance(self.version, &self.policies)
            .map_err(governance_error)?;
        Ok(Effect::None)
    }
}

/// Revokes `grant` as `author` (the patient or a delegate): every path
/// that revokes a grant (`consent.revoke`, and a trial's withdrawal or
/// re-consent amendment) goes through here, so that when it ended is
/// recorded for research-sharing payouts ([`crate::sharing`]).
pub(crate) fn revoke(state: &mut LedgerState, author: &str, grant: &str) -> Result<(), TxError> {
    consent(
        state,
        ConsentEvent::Revoke {
            author: author.to_owned(),
            grant_id: grant.to_owned(),
        },
    )?;
    super::sharing::note_revoked(state, grant);
    Ok(())
}

fn consent(state: &mut LedgerState, event: ConsentEvent) -> Result<Effect, TxError> {
    state.policy.apply(&event).map_err(consent_error)?;
    Ok(Effect::None)
}

pub(crate) fn consent_error(e: ConsentError) -> TxError {
    let code = e.code();
    let kind = match e {
        ConsentError::NotPatientOrDelegate { .. }
        | ConsentError::GranteeWidening { .. }
        | ConsentError::ForeignGrant { .. }
        | ConsentError::DelegateChangeUnauthorized { .. } => ErrorCode::Forbidden(code),
        ConsentError::UnknownGrant { .. } | ConsentError::UnknownDelegate { .. } => {
            ErrorCode::NotFound(code)
        }
        ConsentError::DuplicateGrant { .. }
        | ConsentError::AlreadyRevoked { .. }
        | ConsentError::DuplicateDelegate { .. } => ErrorCode::Conflict(code),
        _ => ErrorCode::Invalid(code),
    };
    TxError::new(kind, e.to_string())
}

fn governance_error(e: GovernanceError) -> TxError {
    let code = e.code();
    let kind = match e {
        GovernanceError::StaleVersion { .. } => ErrorCode::Conflict(code),
        _ => ErrorCode::Invalid(code),
    };
    TxError::new(kind, e.to_string())
}
