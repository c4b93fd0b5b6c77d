//! Decisions: a request, the consent state and the governance policies in;
//! permit or deny, and the policies that decided, out.
//!
//! Cedar never sees the whole consent state. The grants are indexed by
//! (patient, grantee) in [`ConsentState`]; for a request only the grants from
//! its patient to the requester or to one of the requester's organizations
//! become Cedar entities (built once, when the grant was applied). Each such
//! grant is a *path* to a decision, evaluated with the grant as
//! `context.grant`; one more path has no grant, for the policies that do not
//! rest on consent (break-glass, governance-wide permits). Each path is
//! decided with Cedar's semantics (a satisfied forbid denies; else a
//! satisfied permit allows; else deny), and the request is permitted when one
//! path is. So a forbid that does not depend on the grant (suspension) fires
//! on every path and denies everything, while a forbid about a grant
//! (jurisdiction) vetoes that grant's path only.
//!
//! The path without a grant is the whole policy set, evaluated once. Policies
//! that cannot read `context.grant` decide the same on every path (see
//! [`GovernancePolicies::is_per_grant`]); their outcome is read off that
//! evaluation, and only the others are evaluated on each grant's path. When
//! those are the default per-grant policies, a candidate grant that can
//! satisfy none of them (see `crate::prefilter`) is not put to Cedar: its
//! path is known to add nothing of its own.

use std::collections::BTreeSet;
use std::sync::Arc;

use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, Entity, PolicySet, Request,
    RestrictedExpression, Schema,
};
use serde::{Deserialize, Serialize};

use crate::entities::{names, principal_entity, record_entity};
use crate::error::{ConsentError, GovernanceError};
use crate::governance::{schema, GovernancePolicies};
use crate::grant::{Action, Grant};
use crate::prefilter;
use crate::purpose::PurposeOfUse;
use crate::state::{ConsentEvent, ConsentState};

/// Who is asking.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requester {
    /// The requester's DID.
    pub did: String,
    /// Roles from its verified credentials, e.g. `"clinician"`.
    #[serde(default)]
    pub roles: BTreeSet<String>,
    /// DIDs of the organizations it is a member of. A grant to an
    /// organization covers its members.
    #[serde(default)]
    pub organizations: BTreeSet<String>,
    /// Whether its licence or membership is suspended.
    #[serde(default)]
    pub suspended: bool,
    /// ISO 3166-1 alpha-2 country it acts from, when known.
    #[serde(default)]
    pub jurisdiction: Option<String>,
    /// A professional licence the node verified for the requester: valid at
    /// the decision time, not revoked or suspended, from an issuer on the
    /// trust list. Treatment and break-glass need one.
    #[serde(default)]
    pub licence: Option<Licence>,
}

/// The facts of a verified licence that policies may use.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Licence {
    /// ISO 3166-1 alpha-2 country that licensed the requester.
    pub jurisdiction: String,
    /// The licensed profession, e.g. `"physician"`, `"nurse"`.
    pub profession: String,
}

/// The record asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordRef {
    /// The record id.
    pub id: String,
    /// Its FHIR resource type, e.g. `"Observation"`.
    pub resource_type: String,
    /// Its category, e.g. `"lab"`, if it has one.
    #[serde(default)]
    pub category: Option<String>,
}

/// An access request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRequest {
    /// Who asks.
    pub requester: Requester,
    /// Whose record.
    pub patient: String,
    /// What for: read or write.
    pub action: Action,
    /// Why: the stated purpose of use.
    pub purpose: PurposeOfUse,
    /// Which record.
    pub record: RecordRef,
    /// Decision time, Unix seconds.
    pub time: i64,
    /// Break-glass justification. Blank counts as absent.
    #[serde(default)]
    pub break_glass_justification: Option<String>,
}

/// Permit or deny.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// Access allowed.
    Permit,
    /// Access refused.
    Deny,
}

/// The outcome of [`PolicyEngine::decide`], to be logged whatever it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Permit or deny.
    pub effect: Effect,
    /// Permitted only by break-glass policies: to be audited and shown to
    /// the patient first.
    pub break_glass: bool,
    /// Ids of the policies that decided, sorted: the permits that applied
    /// for a permit, the forbids that fired for a deny. Empty for a deny
    /// means deny by default: no policy permitted.
    pub reasons: Vec<String>,
    /// Ids of the consent grants whose evaluation permitted (for a permit
    /// not through break-glass): the requester's own grants first, then its
    /// organizations', each in the order granted.
    pub grants: Vec<String>,
    /// The version of the governance policies that decided.
    pub governance_version: u64,
    /// Errors met while evaluating (a policy that errs does not apply; a
    /// request that cannot be put to Cedar is denied). Empty normally.
    pub errors: Vec<String>,
}

impl Decision {
    /// Whether access is allowed.
    pub fn is_permit(&self) -> bool {
        self.effect == Effect::Permit
    }

    /// Whether this is a deny because nothing permitted (no forbid fired).
    pub fn is_default_deny(&self) -> bool {
        self.effect == Effect::Deny && self.reasons.is_empty()
    }
}

/// The consent state and the governance policies, and the decisions they
/// make. The node feeds it ledger events in order; every node that feeds it
/// the same events makes the same decisions.
///
/// Cloning it is cheap whatever the number of grants: the consent state is
/// made of persistent maps and the governance policies are shared, so a
/// clone copies pointers (see [`ConsentState`]).
#[derive(Clone, Debug)]
pub struct PolicyEngine {
    governance: Arc<GovernancePolicies>,
    consents: ConsentState,
    authorizer: Authorizer,
}

impl Default for PolicyEngine {
    fn default() -> Self {
        Self::new()
    }
}

impl PolicyEngine {
    /// The default governance policies and no consent.
    pub fn new() -> Self {
        Self::with_state(GovernancePolicies::default_policies(), ConsentState::new())
    }

    /// An engine over existing governance policies and consent state.
    pub fn with_state(governance: GovernancePolicies, consents: ConsentState) -> Self {
        PolicyEngine {
            governance: Arc::new(governance),
            consents,
            authorizer: Authorizer::new(),
        }
    }

    /// The installed governance policies.
    pub fn governance(&self) -> &GovernancePolicies {
        &self.governance
    }

    /// The consent state.
    pub fn consents(&self) -> &ConsentState {
        &self.consents
    }

    /// Applies a consent event (see [`ConsentState::apply`]).
    pub fn apply(&mut self, event: &ConsentEvent) -> Result<(), ConsentError> {
        self.consents.apply(event)
    }

    /// Installs a governance policy set. `version` must be above the
    /// installed one; the text must parse and validate (see
    /// [`GovernancePolicies::parse`]). On refusal nothing changes.
    pub fn install_governance(&mut self, version: u64, text: &str) -> Result<(), GovernanceError> {
        if version <= self.governance.version() {
            return Err(GovernanceError::StaleVersion {
                version,
                installed: self.governance.version(),
            });
        }
        self.governance = Arc::new(GovernancePolicies::parse(version, text)?);
        Ok(())
    }

    /// Decides a request at `request.time`.
    pub fn decide(&self, request: &AccessRequest) -> Decision {
        let mut grantees: Vec<&str> = vec![request.requester.did.as_str()];
        grantees.extend(
            request
                .requester
                .organizations
                .iter()
                .map(String::as_str)
                .filter(|org| *org != request.requester.did),
        );
        let candidates: Vec<(&Grant, &Entity)> = grantees
            .iter()
            .flat_map(|grantee| self.consents.candidates(&request.patient, grantee))
            .collect();
        match self.evaluate(request, &candidates) {
            Ok(decision) => decision,
            Err(error) => Decision {
                effect: Effect::Deny,
                break_glass: false,
                reasons: Vec::new(),
                grants: Vec::new(),
                governance_version: self.governance.version(),
                errors: vec![error],
            },
        }
    }

    fn evaluate(
        &self,
        request: &AccessRequest,
        candidates: &[(&Grant, &Entity)],
    ) -> Result<Decision, String> {
        let names = names();
        // Debug builds (and so the tests) check every request and entity
        // against the schema; release builds trust this module.
        let schema: Option<&Schema> = if cfg!(debug_assertions) {
            Some(schema())
        } else {
            None
        };
        let principal = principal_entity(&request.requester)?;
        let resource = record_entity(request)?;
        let (principal_uid, resource_uid) = (principal.uid(), resource.uid());
        let action = names.action(request.action);
        let grant_uids: Vec<_> = candidates.iter().map(|(_, e)| e.uid()).collect();
        // Which candidate grants go to Cedar: all, unless the prefilter
        // shows a grant can satisfy no per-grant policy.
        let prefilter = self.governance.prefilter_applies();
        let to_cedar: Vec<bool> = candidates
            .iter()
            .map(|(grant, _)| !(prefilter && prefilter::cannot_decide(grant, request)))
            .collect();
        // A grant's entity is read only as `context.grant`, unless a policy
        // names the grant type: then every candidate's entity is given.
        let all_grant_entities = self.governance.names_grant_type();
        let entities = Entities::from_entities(
            [principal, resource].into_iter().chain(
                candidates
                    .iter()
                    .zip(&to_cedar)
                    .filter(|(_, to_cedar)| all_grant_entities || **to_cedar)
                    .map(|((_, e), _)| (*e).clone()),
            ),
            schema,
        )
        .map_err(|e| e.to_string())?;

        let justification = request
            .break_glass_justification
            .as_deref()
            .map(str::trim)
            .filter(|j| !j.is_empty());
        let context = |grant: Option<&cedar_policy::EntityUid>| {
            let mut pairs = vec![
                (
                    "time".to_owned(),
                    RestrictedExpression::new_long(request.time),
                ),
                (
                    "purpose".to_owned(),
                    RestrictedExpression::new_string(request.purpose.code().to_owned()),
                ),
            ];
            if let Some(uid) = grant {
                pairs.push((
                    "grant".to_owned(),
                    RestrictedExpression::new_entity_uid(uid.clone()),
                ));
            }
            if let Some(j) = justification {
                pairs.push((
                    "justification".to_owned(),
                    RestrictedExpression::new_string(j.to_owned()),
                ));
            }
            let context = Context::from_pairs(pairs).map_err(|e| e.to_string())?;
            Request::new(
                principal_uid.clone(),
                action.clone(),
                resource_uid.clone(),
                context,
                schema,
            )
            .map_err(|e| e.to_string())
        };
        let evaluate = |request: &Request, policies: &PolicySet| {
            let response = self.authorizer.is_authorized(request, policies, &entities);
            let diagnostics = response.diagnostics();
            Outcome {
                allowed: response.decision() == CedarDecision::Allow,
                reasons: diagnostics.reason().map(|id| id.to_string()).collect(),
                errors: diagnostics.errors().map(|e| e.to_string()).collect(),
            }
        };

        // The path without a grant: the whole set, once.
        let without_grant = context(None)?;
        let whole = evaluate(&without_grant, self.governance.policy_set());
        let mut paths: Vec<Path> = Vec::with_capacity(candidates.len() + 1);
        if !candidates.is_empty() {
            // The policies that cannot read the grant decide the same on
            // every path: their outcome is read off the whole set's when it
            // can be, else evaluated once. The others, once per candidate
            // grant, unless the prefilter shows the grant satisfies none.
            let shared = match self.grant_independent_outcome(&whole) {
                Some(shared) => shared,
                None => evaluate(&without_grant, self.governance.grant_independent()),
            };
            let per_grant = self.governance.per_grant();
            for ((uid, (grant, _)), to_cedar) in grant_uids.iter().zip(candidates).zip(to_cedar) {
                let own = if to_cedar {
                    evaluate(&context(Some(uid))?, per_grant)
                } else {
                    Outcome::nothing()
                };
                paths.push(Path::merge(&shared, own, Some(grant.id.as_str())));
            }
        }
        paths.push(Path {
            allowed: whole.allowed,
            grant: None,
            reasons: whole.reasons,
            errors: whole.errors,
        });
        Ok(self.combine(paths))
    }

    /// The outcome of the grant-independent policies without a grant, from
    /// the whole set's: Cedar names the satisfied permits when it allows and
    /// the satisfied forbids when it denies, so the part among the
    /// grant-independent policies is known, except when only per-grant
    /// forbids fired (then which grant-independent permits hold is not
    /// said: `None`). The errors are the whole set's: a path's errors only
    /// join the decision's, which include the whole set's anyway.
    fn grant_independent_outcome(&self, whole: &Outcome) -> Option<Outcome> {
        let independent: Vec<String> = whole
            .reasons
            .iter()
            .filter(|id| !self.governance.is_per_grant(id))
            .cloned()
            .collect();
        if !whole.allowed && independent.is_empty() && !whole.reasons.is_empty() {
            return None;
        }
        Some(Outcome {
            // Allowed: the independent permits, if any. Denied: the
            // independent forbids, or none at all (then no permit held).
            allowed: whole.allowed && !independent.is_empty(),
            reasons: independent,
            errors: whole.errors.clone(),
        })
    }

    /// Combines the evaluations: a permit through consent or any policy not
    /// marked break-glass wins over a break-glass permit, which wins over a
    /// deny.
    fn combine(&self, paths: Vec<Path<'_>>) -> Decision {
        let is_break_glass = |id: &String| self.governance.is_break_glass(id);
        let mut errors: BTreeSet<String> = BTreeSet::new();
        for path in &paths {
            errors.extend(path.errors.iter().cloned());
        }
        let ordinary: Vec<&Path> = paths
            .iter()
            .filter(|p| p.allowed && !p.reasons.iter().all(is_break_glass))
            .collect();
        let (effect, break_glass, reasons, grants) = if !ordinary.is_empty() {
            let reasons: BTreeSet<String> = ordinary
                .iter()
                .flat_map(|p| p.reasons.iter())
                .filter(|id| !is_break_glass(id))
                .cloned()
                .collect();
            let grants = ordinary.iter().filter_map(|p| p.grant).map(str::to_owned);
            (Effect::Permit, false, reasons, grants.collect())
        } else if paths.iter().any(|p| p.allowed) {
            let reasons = paths
                .iter()
                .filter(|p| p.allowed)
                .flat_map(|p| p.reasons.iter().cloned())
                .collect();
            (Effect::Permit, true, reasons, Vec::new())
        } else {
            // Cedar's reasons for a deny are the forbids that fired.
            let reasons = paths
                .iter()
                .flat_map(|p| p.reasons.iter().cloned())
                .collect();
            (Effect::Deny, false, reasons, Vec::new())
        };
        Decision {
            effect,
            break_glass,
            reasons: reasons.into_iter().collect(),
            grants,
            governance_version: self.governance.version(),
            errors: errors.into_iter().collect(),
        }
    }
}

/// What Cedar said about a request and a policy set.
struct Outcome {
    allowed: bool,
    /// The satisfied permits if allowed; the satisfied forbids (possibly
    /// none) if denied.
    reasons: Vec<String>,
    errors: Vec<String>,
}

/// One way to a decision: with one candidate grant, or with none.
struct Path<'a> {
    allowed: bool,
    grant: Option<&'a str>,
    reasons: Vec<String>,
    errors: Vec<String>,
}

impl<'a> Path<'a> {
    /// Cedar's decision over the union of two disjoint policy sets, from its
    /// decisions over each: any satisfied forbid denies, naming every
    /// satisfied forbid; otherwise any satisfied permit allows, naming every
    /// satisfied permit; otherwise deny.
    fn merge(shared: &Outcome, own: Outcome, grant: Option<&'a str>) -> Path<'a> {
        let mut errors = shared.errors.clone();
        errors.extend(own.errors.iter().cloned());
        let denied_by: Vec<String> = shared.forbids().chain(own.forbids()).cloned().collect();
        if !denied_by.is_empty() {
            return Path {
                allowed: false,
                grant,
                reasons: denied_by,
                errors,
            };
        }
        let reasons: Vec<String> = shared.permits().chain(own.permits()).cloned().collect();
        Path {
            allowed: !reasons.is_empty(),
            grant,
            reasons,
            errors,
        }
    }
}

impl Outcome {
    /// No policy satisfied, no error.
    fn nothing() -> Outcome {
        Outcome {
            allowed: false,
            reasons: Vec::new(),
            errors: Vec::new(),
        }
    }

    fn forbids(&self) -> impl Iterator<Item = &String> {
        self.reasons.iter().filter(|_| !self.allowed)
    }

    fn permits(&self) -> impl Iterator<Item = &String> {
        self.reasons.iter().filter(|_| self.allowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grant::Scope;
    use rand::rngs::StdRng;
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};

    /// The straightforward evaluation: the whole policy set on every path.
    fn decide_unsplit(engine: &PolicyEngine, request: &AccessRequest) -> Decision {
        let mut grantees = vec![request.requester.did.as_str()];
        grantees.extend(request.requester.organizations.iter().map(String::as_str));
        let candidates: Vec<(&Grant, &Entity)> = grantees
            .iter()
            .flat_map(|g| engine.consents.candidates(&request.patient, g))
            .collect();
        let principal = principal_entity(&request.requester).unwrap();
        let resource = record_entity(request).unwrap();
        let (p, r) = (principal.uid(), resource.uid());
        let entities = Entities::from_entities(
            [principal, resource]
                .into_iter()
                .chain(candidates.iter().map(|(_, e)| (*e).clone())),
            None,
        )
        .unwrap();
        let mut paths = Vec::new();
        let grants = std::iter::once(None).chain(candidates.iter().map(Some));
        for grant in grants {
            let mut pairs = vec![
                (
                    "time".to_owned(),
                    RestrictedExpression::new_long(request.time),
                ),
                (
                    "purpose".to_owned(),
                    RestrictedExpression::new_string(request.purpose.code().to_owned()),
                ),
            ];
            if let Some((_, e)) = grant {
                pairs.push((
                    "grant".to_owned(),
                    RestrictedExpression::new_entity_uid(e.uid()),
                ));
            }
            if let Some(j) = request
                .break_glass_justification
                .as_deref()
                .map(str::trim)
                .filter(|j| !j.is_empty())
            {
                pairs.push((
                    "justification".to_owned(),
                    RestrictedExpression::new_string(j.to_owned()),
                ));
            }
            let cedar_request = Request::new(
                p.clone(),
                names().action(request.action),
                r.clone(),
                Context::from_pairs(pairs).unwrap(),
                None,
            )
            .unwrap();
            let response = engine.authorizer.is_authorized(
                &cedar_request,
                engine.governance.policy_set(),
                &entities,
            );
            let mut reasons: Vec<String> = response
                .diagnostics()
                .reason()
                .map(|id| id.to_string())
                .collect();
            reasons.sort();
            paths.push(Path {
                allowed: response.decision() == CedarDecision::Allow,
                grant: grant.map(|(g, _)| g.id.as_str()),
                reasons,
                errors: response
                    .diagnostics()
                    .errors()
                    .map(|e| e.to_string())
                    .collect(),
            });
        }
        engine.combine(paths)
    }

    const EXTRA_POLICIES: &str = r#"
        @id("operations-read")
        permit (principal, action == Hygeia::Action::"read", resource)
        when { context.purpose == "HOPERAT" && principal.roles.contains("operator") };

        @id("no-research-through-grants")
        forbid (principal, action, resource)
        when { context has grant && context.purpose == "HRESCH" };

        @id("no-writes-without-grant")
        forbid (principal, action == Hygeia::Action::"write", resource)
        unless { context has grant };

        @id("no-billing-staff")
        forbid (principal, action, resource)
        when { principal.roles.contains("billing") && !principal.roles.contains("clinician") };
    "#;

    const DIDS: [&str; 4] = [
        "did:key:zA",
        "did:key:zB",
        "did:key:zC",
        "did:web:org.example",
    ];

    fn random_state(rng: &mut StdRng) -> ConsentState {
        let mut state = ConsentState::new();
        for i in 0..40 {
            let patient = DIDS[rng.gen_range(0..2)];
            let grant = Grant {
                id: format!("g{i}"),
                patient: patient.to_owned(),
                grantee: DIDS.choose(rng).copied().unwrap_or(DIDS[0]).to_owned(),
                scope: Scope::categories([["lab", "imaging"][rng.gen_range(0..2)]]),
                actions: [[Action::Read, Action::Write][rng.gen_range(0..2)]].into(),
                purpose: PurposeOfUse::ALL[rng.gen_range(0..5)],
                not_before: rng.gen_range(0..50),
                not_after: rng.gen_range(50..100),
                jurisdictions: if rng.gen_bool(0.3) {
                    ["FR".to_owned()].into()
                } else {
                    BTreeSet::new()
                },
            };
            let _ = state.apply(&ConsentEvent::Grant {
                author: patient.to_owned(),
                grant,
            });
        }
        state
    }

    fn random_request(rng: &mut StdRng) -> AccessRequest {
        let roles = ["clinician", "billing", "operator"];
        AccessRequest {
            requester: Requester {
                did: DIDS[rng.gen_range(0..3)].to_owned(),
                roles: roles
                    .iter()
                    .filter(|_| rng.gen_bool(0.5))
                    .map(|r| r.to_string())
                    .collect(),
                organizations: if rng.gen_bool(0.5) {
                    [DIDS[3].to_owned()].into()
                } else {
                    BTreeSet::new()
                },
                suspended: rng.gen_bool(0.1),
                jurisdiction: ["FR", "US"].choose(rng).map(|s| s.to_string()),
                licence: rng.gen_bool(0.7).then(|| Licence {
                    jurisdiction: "FR".to_owned(),
                    profession: "physician".to_owned(),
                }),
            },
            patient: DIDS[rng.gen_range(0..2)].to_owned(),
            action: [Action::Read, Action::Write][rng.gen_range(0..2)],
            purpose: PurposeOfUse::ALL[rng.gen_range(0..PurposeOfUse::ALL.len())],
            record: RecordRef {
                id: "r".to_owned(),
                resource_type: "Observation".to_owned(),
                category: ["lab", "imaging"].choose(rng).map(|s| s.to_string()),
            },
            time: rng.gen_range(0..110),
            break_glass_justification: rng.gen_bool(0.3).then(|| "emergency".to_owned()),
        }
    }

    mod prefiltered {
        use super::*;
        use proptest::collection::{btree_set, vec};
        use proptest::option;
        use proptest::prelude::*;
        use proptest::sample::select;

        const PATIENTS: [&str; 2] = ["did:key:zA", "did:key:zB"];
        const GRANTEES: [&str; 4] = [
            "did:key:zB",
            "did:key:zC",
            "did:key:zD",
            "did:web:org.example",
        ];

        fn strings(pool: &'static [&'static str]) -> impl Strategy<Value = BTreeSet<String>> {
            btree_set(select(pool).prop_map(str::to_owned), 0..=pool.len())
        }

        /// A grant, and whether its patient revokes it right away. Periods
        /// start and end on both sides of the requests' times.
        fn grant(id: usize) -> impl Strategy<Value = (Grant, bool)> {
            (
                (select(PATIENTS.to_vec()), select(GRANTEES.to_vec())),
                (
                    strings(&["lab", "imaging"]),
                    strings(&["Observation", "Condition"]),
                    strings(&["r0", "r1"]),
                ),
                btree_set(select(Action::ALL.to_vec()), 1..=2),
                select(PurposeOfUse::ALL.to_vec()),
                (0i64..60, 1i64..60),
                strings(&["FR", "US"]),
                prop::bool::weighted(0.15),
            )
                .prop_filter("a grant names its scope", |(_, (c, t, r), ..)| {
                    !(c.is_empty() && t.is_empty() && r.is_empty())
                })
                .prop_map(
                    move |(
                        (patient, grantee),
                        (categories, resource_types, record_ids),
                        actions,
                        purpose,
                        (start, length),
                        jurisdictions,
                        revoked,
                    )| {
                        let grant = Grant {
                            id: format!("g{id}"),
                            patient: patient.to_owned(),
                            grantee: grantee.to_owned(),
                            scope: Scope {
                                categories,
                                resource_types,
                                record_ids,
                            },
                            actions,
                            purpose,
                            not_before: start,
                            not_after: start + length,
                            jurisdictions,
                        };
                        (grant, revoked)
                    },
                )
        }

        fn grants() -> impl Strategy<Value = Vec<(Grant, bool)>> {
            (0usize..30).prop_flat_map(|n| (0..n).map(grant).collect::<Vec<_>>())
        }

        fn request() -> impl Strategy<Value = AccessRequest> {
            (
                (
                    select(["did:key:zA", "did:key:zB", "did:key:zC", "did:key:zD"].to_vec()),
                    strings(&["clinician", "billing", "operator"]),
                    prop::bool::ANY,
                    prop::bool::weighted(0.1),
                    option::of(select(["FR", "US", "DE"].to_vec())),
                    prop::bool::weighted(0.8),
                ),
                select(PATIENTS.to_vec()),
                select(Action::ALL.to_vec()),
                select(PurposeOfUse::ALL.to_vec()),
                (
                    select(["r0", "r1", "r2"].to_vec()),
                    select(["Observation", "Condition"].to_vec()),
                    option::of(select(["lab", "imaging", "directory"].to_vec())),
                ),
                -5i64..125,
                option::of(select(["", "  ", "unconscious"].to_vec())),
            )
                .prop_map(
                    |(
                        (did, roles, in_org, suspended, jurisdiction, licensed),
                        patient,
                        action,
                        purpose,
                        (id, resource_type, category),
                        time,
                        justification,
                    )| AccessRequest {
                        requester: Requester {
                            did: did.to_owned(),
                            roles,
                            organizations: if in_org {
                                ["did:web:org.example".to_owned()].into()
                            } else {
                                BTreeSet::new()
                            },
                            suspended,
                            jurisdiction: jurisdiction.map(str::to_owned),
                            licence: licensed.then(|| Licence {
                                jurisdiction: "FR".to_owned(),
                                profession: "physician".to_owned(),
                            }),
                        },
                        patient: patient.to_owned(),
                        action,
                        purpose,
                        record: RecordRef {
                            id: id.to_owned(),
                            resource_type: resource_type.to_owned(),
                            category: category.map(str::to_owned),
                        },
                        time,
                        break_glass_justification: justification.map(str::to_owned),
                    },
                )
        }

        /// Governance sets under which the prefilter applies (the defaults;
        /// the defaults without the jurisdiction forbid; the defaults with
        /// grant-independent additions) and under which it does not (other
        /// per-grant policies, including forbids that fire without a grant,
        /// and a changed consent policy).
        fn governance_texts() -> Vec<(String, bool)> {
            let defaults = crate::governance::DEFAULT_POLICIES;
            let no_jurisdiction = defaults.replace(
                "!context.grant.jurisdictions.isEmpty() &&",
                "false && !context.grant.jurisdictions.isEmpty() &&",
            );
            let without_jurisdiction = {
                let start = defaults
                    .find("@id(\"forbid-outside-grant-jurisdiction\")")
                    .unwrap_or(0);
                let end = defaults[start..]
                    .find("};")
                    .map_or(start, |i| start + i + 2);
                format!("{}{}", &defaults[..start], &defaults[end..])
            };
            let independent_extras = r#"
                @id("operations-read")
                permit (principal, action == Hygeia::Action::"read", resource)
                when { context.purpose == "HOPERAT" && principal.roles.contains("operator") };
                @id("no-billing-staff")
                forbid (principal, action, resource)
                when { principal.roles.contains("billing") && !principal.roles.contains("clinician") };
            "#;
            let looser = defaults.replace("context.time < context.grant.notAfter &&", "");
            // Grant-independent, yet reads a grant's entity when it is among
            // the request's (and errs when it is not).
            let names_a_grant = format!(
                "{defaults}\n@id(\"grant-literal\") forbid (principal, action, resource) \
                 when {{ Hygeia::Grant::\"g3\".notAfter < context.time }};"
            );
            vec![
                (defaults.to_owned(), true),
                (without_jurisdiction, true),
                (format!("{defaults}\n{independent_extras}"), true),
                (format!("{defaults}\n{EXTRA_POLICIES}"), false),
                (EXTRA_POLICIES.to_owned(), false),
                (no_jurisdiction, false),
                (looser, false),
                (names_a_grant, true),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(96))]

            /// Skipping Cedar for candidate grants the prefilter rules out,
            /// and reading the grant-independent outcome off the whole
            /// set's, decide exactly as the whole set evaluated on every
            /// path: effect, flag, reasons, grants and errors.
            #[test]
            fn prefiltered_decisions_equal_every_path_through_cedar(
                grants in grants(),
                requests in vec(request(), 1..24),
            ) {
                let mut state = ConsentState::new();
                for (grant, revoked) in grants {
                    let patient = grant.patient.clone();
                    let id = grant.id.clone();
                    state
                        .apply(&ConsentEvent::Grant { author: patient.clone(), grant })
                        .map_err(|e| TestCaseError::fail(e.to_string()))?;
                    if revoked {
                        state
                            .apply(&ConsentEvent::Revoke { author: patient, grant_id: id })
                            .map_err(|e| TestCaseError::fail(e.to_string()))?;
                    }
                }
                for (version, (text, prefilter)) in governance_texts().into_iter().enumerate() {
                    let governance = GovernancePolicies::parse(version as u64 + 1, &text)
                        .map_err(|e| TestCaseError::fail(e.to_string()))?;
                    prop_assert_eq!(governance.prefilter_applies(), prefilter, "{}", text);
                    let engine = PolicyEngine::with_state(governance, state.clone());
                    for request in &requests {
                        let mut fast = engine.decide(request);
                        fast.reasons.sort();
                        let whole = decide_unsplit(&engine, request);
                        prop_assert_eq!(&fast, &whole, "{:?}\n{}", request, text);
                    }
                }
            }
        }

        /// The generated cases reach what the property is about: candidate
        /// grants skipped by the prefilter, candidate grants put to Cedar,
        /// and permits through consent and through break-glass.
        #[test]
        fn generated_cases_reach_skipped_and_evaluated_grants() {
            use proptest::strategy::ValueTree;
            use proptest::test_runner::TestRunner;
            let mut runner = TestRunner::deterministic();
            let strategy = (grants(), vec(request(), 24));
            let engine_defaults = PolicyEngine::new();
            let (mut skipped, mut evaluated, mut consent, mut break_glass) = (0, 0, 0, 0);
            for _ in 0..200 {
                let Ok(tree) = strategy.new_tree(&mut runner) else {
                    continue;
                };
                let (grants, requests) = tree.current();
                let mut engine = engine_defaults.clone();
                for (grant, _) in grants {
                    let author = grant.patient.clone();
                    let _ = engine.apply(&ConsentEvent::Grant { author, grant });
                }
                for r in &requests {
                    for grantee in
                        std::iter::once(&r.requester.did).chain(&r.requester.organizations)
                    {
                        for (grant, _) in engine.consents.candidates(&r.patient, grantee) {
                            if prefilter::cannot_decide(grant, r) {
                                skipped += 1;
                            } else {
                                evaluated += 1;
                            }
                        }
                    }
                    let d = engine.decide(r);
                    consent += usize::from(d.is_permit() && !d.break_glass);
                    break_glass += usize::from(d.break_glass);
                }
            }
            for (what, n) in [
                ("skipped", skipped),
                ("evaluated", evaluated),
                ("consent permits", consent),
                ("break-glass permits", break_glass),
            ] {
                assert!(n >= 10, "{what}: only {n}");
            }
        }
    }

    /// Evaluating the grant-independent policies once per request decides
    /// exactly as evaluating the whole set on every path, whatever the
    /// governance policies.
    #[test]
    fn split_evaluation_decides_as_the_whole_set() {
        let with_extras = format!(
            "{}\n{}",
            crate::governance::DEFAULT_POLICIES,
            EXTRA_POLICIES
        );
        let only_extras = EXTRA_POLICIES.to_owned();
        let mut rng = StdRng::seed_from_u64(11);
        let mut permits = 0;
        for (version, text) in [(1, with_extras), (2, only_extras)] {
            let mut engine = PolicyEngine::with_state(
                GovernancePolicies::default_policies(),
                random_state(&mut rng),
            );
            engine.install_governance(version, &text).unwrap();
            for (id, expected) in [
                ("operations-read", false),
                ("no-research-through-grants", true),
                ("no-writes-without-grant", true),
                ("no-billing-staff", false),
            ] {
                assert_eq!(engine.governance().is_per_grant(id), expected, "{id}");
            }
            for _ in 0..2000 {
                let request = random_request(&mut rng);
                let mut split = engine.decide(&request);
                split.reasons.sort();
                let whole = decide_unsplit(&engine, &request);
                assert_eq!(split, whole, "{request:?}");
                permits += usize::from(split.is_permit());
            }
        }
        assert!(permits > 100, "too few permits to mean anything: {permits}");
    }
}

/// A policy engine as a snapshot stores it: the governance policies as
/// installed (version and Cedar text) and the consent state. The Cedar
/// policy set and authorizer are rebuilt from the text on load, through the
/// same parse and validation as at installation.
#[derive(Serialize)]
struct EngineSnapshotRef<'a> {
    governance_version: u64,
    governance_text: &'a str,
    consents: &'a ConsentState,
}

#[derive(Deserialize)]
struct EngineSnapshot {
    governance_version: u64,
    governance_text: String,
    consents: ConsentState,
}

impl Serialize for PolicyEngine {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        EngineSnapshotRef {
            governance_version: self.governance.version(),
            governance_text: self.governance.text(),
            consents: &self.consents,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for PolicyEngine {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let snapshot = EngineSnapshot::deserialize(deserializer)?;
        let defaults = GovernancePolicies::default_policies();
        let governance = if snapshot.governance_version == defaults.version()
            && snapshot.governance_text == defaults.text()
        {
            defaults
        } else {
            GovernancePolicies::parse(snapshot.governance_version, &snapshot.governance_text)
                .map_err(serde::de::Error::custom)?
        };
        Ok(PolicyEngine::with_state(governance, snapshot.consents))
    }
}
