//! Candidate grants that cannot change a decision, found before Cedar.
//!
//! A candidate grant's path is the policies that may read `context.grant`,
//! evaluated with that grant. When those policies are (a subset of) the two
//! default ones below, unchanged, a grant that is outside its period, or does
//! not cover the purpose, the action or the record, satisfies no permit
//! among them; and when the requester also acts from one of the grant's
//! countries (or the grant names none), it satisfies no forbid either.
//! Neither policy can err on the entities this crate builds (every attribute
//! they read is present or guarded by `has`). Such a path's own evaluation is
//! then known without Cedar: nothing satisfied, no error.
//!
//! Every other grant, and every grant under any other per-grant policy, is
//! put to Cedar. The equivalence is checked by a property test against the
//! evaluation of the whole policy set on every path
//! (`engine::tests::prefiltered_decisions_equal_every_path_through_cedar`).

use std::str::FromStr;
use std::sync::OnceLock;

use cedar_policy::{Policy, PolicySet};
use serde_json::Value;

use crate::engine::AccessRequest;
use crate::grant::Grant;

/// The per-grant policies whose meaning [`cannot_decide`] encodes, exactly as
/// `policies/default.cedar` has them (whitespace and comments aside: they
/// are compared as Cedar's JSON form).
const KNOWN_PER_GRANT_POLICIES: &str = r#"
@id("consent-grant")
permit (principal, action, resource)
when {
  context has grant &&
  context.grant.notBefore <= context.time &&
  context.time < context.grant.notAfter &&
  context.grant.purposes.contains(context.purpose) &&
  ((action == Hygeia::Action::"read" && context.grant.actions.contains("read")) ||
   (action == Hygeia::Action::"write" && context.grant.actions.contains("write"))) &&
  context.grant.patient == resource.patient &&
  principal in context.grant.grantee &&
  (context.grant.categories.isEmpty() ||
   (resource has category && context.grant.categories.contains(resource.category))) &&
  (context.grant.resourceTypes.isEmpty() ||
   context.grant.resourceTypes.contains(resource.resourceType)) &&
  (context.grant.records.isEmpty() || context.grant.records.contains(resource))
};

@id("forbid-outside-grant-jurisdiction")
forbid (principal, action, resource)
when {
  context has grant &&
  !context.grant.jurisdictions.isEmpty() &&
  !(principal has jurisdiction &&
    context.grant.jurisdictions.contains(principal.jurisdiction))
};
"#;

fn known_per_grant_policies() -> &'static [Value] {
    static KNOWN: OnceLock<Vec<Value>> = OnceLock::new();
    KNOWN.get_or_init(|| {
        // A constant of this crate; its tests check it matches the defaults.
        PolicySet::from_str(KNOWN_PER_GRANT_POLICIES)
            .map(|set| set.policies().filter_map(|p| p.to_json().ok()).collect())
            .unwrap_or_default()
    })
}

/// Whether every one of `per_grant` is one of the known per-grant policies,
/// unchanged (same `@id`, same annotations, same body).
pub(crate) fn applies_to<'a>(per_grant: impl IntoIterator<Item = &'a Policy>) -> bool {
    let known = known_per_grant_policies();
    !known.is_empty()
        && per_grant
            .into_iter()
            .all(|policy| policy.to_json().is_ok_and(|json| known.contains(&json)))
}

/// Whether, under the known per-grant policies, `grant` satisfies none of
/// them for `request`: `consent-grant` is false and
/// `forbid-outside-grant-jurisdiction` is false. `grant` must be a candidate
/// of the request (from its patient, to the requester or one of its
/// organizations), as [`crate::PolicyEngine::decide`] finds them.
pub(crate) fn cannot_decide(grant: &Grant, request: &AccessRequest) -> bool {
    cannot_permit(grant, request) && cannot_forbid(grant, request)
}

/// `consent-grant` is a conjunction; any conjunct that is false makes it
/// false. The patient and grantee conjuncts hold for every candidate.
fn cannot_permit(grant: &Grant, request: &AccessRequest) -> bool {
    let scope = &grant.scope;
    let record = &request.record;
    !grant.is_active_at(request.time)
        || !grant.purpose.covered().contains(&request.purpose)
        || !grant.actions.contains(&request.action)
        || (!scope.categories.is_empty()
            && !record
                .category
                .as_ref()
                .is_some_and(|c| scope.categories.contains(c)))
        || (!scope.resource_types.is_empty()
            && !scope.resource_types.contains(&record.resource_type))
        || (!scope.record_ids.is_empty() && !scope.record_ids.contains(&record.id))
}

fn cannot_forbid(grant: &Grant, request: &AccessRequest) -> bool {
    grant.jurisdictions.is_empty()
        || request
            .requester
            .jurisdiction
            .as_ref()
            .is_some_and(|j| grant.jurisdictions.contains(j))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::governance::GovernancePolicies;

    /// The known policies are the defaults' per-grant policies: if
    /// `default.cedar` changes them, this fails rather than the prefilter
    /// silently turning itself off.
    #[test]
    fn known_policies_are_the_default_per_grant_policies() {
        assert_eq!(known_per_grant_policies().len(), 2);
        let defaults = GovernancePolicies::default_policies();
        assert!(defaults.prefilter_applies());
        let mut ids: Vec<_> = defaults
            .per_grant()
            .policies()
            .map(|p| p.id().to_string())
            .collect();
        ids.sort();
        assert_eq!(ids, ["consent-grant", "forbid-outside-grant-jurisdiction"]);
    }

    #[test]
    fn other_per_grant_policies_turn_it_off() {
        let without_jurisdiction = crate::governance::DEFAULT_POLICIES.replace(
            "@id(\"forbid-outside-grant-jurisdiction\")\nforbid",
            "@id(\"forbid-outside-grant-jurisdiction\")\npermit",
        );
        assert_ne!(without_jurisdiction, crate::governance::DEFAULT_POLICIES);
        let p = GovernancePolicies::parse(1, &without_jurisdiction).unwrap();
        assert!(!p.prefilter_applies(), "a changed effect");
        let looser = crate::governance::DEFAULT_POLICIES
            .replace("context.grant.purposes.contains(context.purpose) &&", "");
        let p = GovernancePolicies::parse(1, &looser).unwrap();
        assert!(!p.prefilter_applies(), "a changed condition");
        let extra = format!(
            "{}\n@id(\"no-research-through-grants\") forbid (principal, action, resource) \
             when {{ context has grant && context.purpose == \"HRESCH\" }};",
            crate::governance::DEFAULT_POLICIES
        );
        let p = GovernancePolicies::parse(1, &extra).unwrap();
        assert!(!p.prefilter_applies(), "another per-grant policy");
        let renamed = crate::governance::DEFAULT_POLICIES
            .replace("@id(\"consent-grant\")", "@id(\"consent\")");
        let p = GovernancePolicies::parse(1, &renamed).unwrap();
        assert!(!p.prefilter_applies(), "another id");
        let no_grant_policies = r#"@id("p") permit (principal, action, resource)
            when { principal == resource.patient };"#;
        let p = GovernancePolicies::parse(1, no_grant_policies).unwrap();
        assert!(p.prefilter_applies(), "no per-grant policy at all");
    }
}
