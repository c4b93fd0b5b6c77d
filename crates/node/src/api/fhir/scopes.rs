//! SMART scopes at every FHIR interaction (docs/auth.md, "Scopes"): a
//! token may do only what its scopes name, on top of what consent allows,
//! never instead of it.
//!
//! Two checks. Before anything is looked up, the interaction on the
//! resource type must be covered by some scope ([`require`]): a refusal
//! depends on the token and the request alone (403 with
//! `WWW-Authenticate: Bearer error="insufficient_scope"`). Then every
//! decision about a resource ([`super::decide::decide`]) asks [`within`]:
//! a resource only `patient/` scopes cover must be the patient in
//! context's, or the decision is a deny, logged like any other.

use hygeia_auth::scope::{Interaction, Reach};
use hygeia_auth::token::Session;
use hygeia_fhir::outcome::Issue;
use hygeia_policy::Action;

use super::FhirError;
use crate::access::Decided;
use crate::state::txs::Verdict;

/// The reason a decision names when the token's scopes refused it.
pub const SCOPE_REASON: &str = "smart-scope";

/// The policy action of an interaction.
pub fn action(interaction: Interaction) -> Action {
    match interaction {
        Interaction::Read | Interaction::Search => Action::Read,
        Interaction::Create | Interaction::Update | Interaction::Delete => Action::Write,
    }
}

/// The patient in context of a token. The client-credentials grant has no
/// launch, so it is the requester's own identity: `patient/` scopes reach
/// the requester's own records only. (An EHR or standalone launch will set
/// it from the launch.)
pub fn patient_in_context(session: &Session) -> &str {
    &session.did
}

/// Refuses, before anything is looked up, an interaction on a type that no
/// scope of the token covers; otherwise says how far the scopes reach.
pub fn require(
    session: &Session,
    interaction: Interaction,
    resource_type: &str,
) -> Result<Reach, FhirError> {
    session
        .scope
        .reach(interaction, resource_type)
        .ok_or_else(|| {
            let mut error = FhirError::new(
                axum::http::StatusCode::FORBIDDEN,
                Issue::error(
                    "forbidden",
                    format!(
                        "the access token's scope ({}) does not allow {} of {}; ask for a token with a scope such as user/{}.{}",
                        session.scope,
                        interaction.name(),
                        resource_type.chars().take(64).collect::<String>(),
                        resource_type.chars().take(64).collect::<String>(),
                        interaction.letter(),
                    ),
                ),
            );
            error.challenge = Some("Bearer realm=\"hygeia\", error=\"insufficient_scope\"");
            error
        })
}

/// Whether the token's scopes reach `interaction` on a resource of
/// `resource_type` whose consent `patient` governs.
pub fn within(
    session: &Session,
    interaction: Interaction,
    resource_type: &str,
    patient: &str,
) -> bool {
    match session.scope.reach(interaction, resource_type) {
        Some(Reach::Anyone) => true,
        Some(Reach::PatientInContext) => patient == patient_in_context(session),
        None => false,
    }
}

/// A decision the scopes refused: a deny, naming [`SCOPE_REASON`].
pub fn out_of_scope(mut decided: Decided) -> Decided {
    decided.decision.effect = hygeia_policy::Effect::Deny;
    decided.decision.break_glass = false;
    decided.decision.reasons = vec![SCOPE_REASON.to_owned()];
    decided.decision.grants.clear();
    decided.event.decision = Verdict::Deny;
    decided.event.break_glass = false;
    decided.event.justified = false;
    decided.event.reasons = vec![SCOPE_REASON.to_owned()];
    decided.event.grants.clear();
    decided
}
