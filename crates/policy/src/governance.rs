//! The governance policy set: versioned Cedar text, validated against the
//! Hygeia schema, that decides every access.
//!
//! The node accepts new text only from the governance key; this module only
//! checks that the text is a valid, uniquely named Cedar policy set and that
//! its version goes up.

use std::collections::BTreeSet;
use std::str::FromStr;
use std::sync::OnceLock;

use cedar_policy::{Policy, PolicyId, PolicySet, Schema, ValidationMode, Validator};
use serde_json::Value;

use crate::error::GovernanceError;

/// The Cedar schema (human-readable syntax) that governance policies are
/// validated against.
pub const SCHEMA: &str = include_str!("../policies/hygeia.cedarschema");

/// The default governance policies, installed as version 0.
pub const DEFAULT_POLICIES: &str = include_str!("../policies/default.cedar");

/// The annotation that marks a permit policy as break-glass: decisions that
/// only such policies permitted are flagged.
pub const BREAK_GLASS_ANNOTATION: &str = "break_glass";

/// The annotation that names a policy. Every governance policy must have one.
pub const ID_ANNOTATION: &str = "id";

/// The parsed schema.
pub fn schema() -> &'static Schema {
    static SCHEMA_CELL: OnceLock<Schema> = OnceLock::new();
    SCHEMA_CELL.get_or_init(|| {
        // The schema is a constant of this crate, parsed by its tests.
        let (schema, _warnings) =
            Schema::from_cedarschema_str(SCHEMA).expect("the built-in Cedar schema parses");
        schema
    })
}

fn validator() -> &'static Validator {
    static VALIDATOR: OnceLock<Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| Validator::new(schema().clone()))
}

/// A validated governance policy set and its version.
#[derive(Clone, Debug)]
pub struct GovernancePolicies {
    version: u64,
    text: String,
    set: PolicySet,
    /// The policies that may read `context.grant`: evaluated once per
    /// candidate grant (and once without).
    per_grant: PolicySet,
    /// The others, whose outcome cannot depend on the grant: evaluated once
    /// per request.
    grant_independent: PolicySet,
    break_glass: BTreeSet<String>,
    /// Whether the text names a `Hygeia::Record` entity ([`names_records`]).
    names_records: bool,
    /// Whether the per-grant policies are among those whose meaning
    /// `crate::prefilter` knows, so that candidate grants that cannot
    /// change a decision skip their Cedar evaluation.
    prefilter: bool,
    /// Whether some policy names the grant entity type (an entity literal
    /// such as `Hygeia::Grant::"g1"`, or an `is` test): then a grant's
    /// entity may be read other than as `context.grant`, and every
    /// candidate grant's entity is given to Cedar.
    names_grant_type: bool,
}

/// Whether Cedar text names a `Hygeia::Record` entity (conservatively:
/// any `Record::"` once whitespace is removed, comments included).
pub fn names_records(cedar: &str) -> bool {
    let compact: String = cedar.split_whitespace().collect();
    compact.contains("Record::\"")
}

impl GovernancePolicies {
    /// Parses `text`, names each policy by its `@id` annotation and
    /// validates the set against [`SCHEMA`] in Cedar's strict mode.
    ///
    /// Refused: text nesting brackets or holding operators beyond
    /// [`crate::bounds`] (before Cedar reads it), text that does not parse
    /// or validate (with Cedar's errors), a policy without `@id`, two
    /// policies with the same `@id`, templates, and an empty set.
    pub fn parse(version: u64, text: &str) -> Result<Self, GovernanceError> {
        crate::bounds::check(text)?;
        let parsed = PolicySet::from_str(text).map_err(|errors| GovernanceError::Parse {
            message: join(errors.iter()),
        })?;
        if parsed.templates().next().is_some() {
            return Err(GovernanceError::Template);
        }
        let mut set = PolicySet::new();
        let mut per_grant = PolicySet::new();
        let mut grant_independent = PolicySet::new();
        let mut break_glass = BTreeSet::new();
        for policy in parsed.policies() {
            let Some(id) = policy.annotation(ID_ANNOTATION) else {
                return Err(GovernanceError::MissingId {
                    policy: policy.to_string(),
                });
            };
            if policy.annotation(BREAK_GLASS_ANNOTATION).is_some() {
                break_glass.insert(id.to_owned());
            }
            let named = policy.new_id(PolicyId::new(id));
            set.add(named.clone())
                .map_err(|_| GovernanceError::DuplicateId { id: id.to_owned() })?;
            let part = if may_read_grant(&named) {
                &mut per_grant
            } else {
                &mut grant_independent
            };
            part.add(named)
                .map_err(|_| GovernanceError::DuplicateId { id: id.to_owned() })?;
        }
        if set.is_empty() {
            return Err(GovernanceError::Empty);
        }
        let result = validator().validate(&set, ValidationMode::Strict);
        if !result.validation_passed() {
            return Err(GovernanceError::Validation {
                message: join(result.validation_errors()),
            });
        }
        let prefilter = crate::prefilter::applies_to(per_grant.policies());
        let names_grant_type = set
            .policies()
            .any(|p| p.to_json().map_or(true, |json| mentions(&json, GRANT_TYPE)));
        Ok(GovernancePolicies {
            version,
            text: text.to_owned(),
            set,
            per_grant,
            grant_independent,
            break_glass,
            names_records: names_records(text),
            prefilter,
            names_grant_type,
        })
    }

    /// The default policies ([`DEFAULT_POLICIES`]) as version 0.
    pub fn default_policies() -> Self {
        static DEFAULT: OnceLock<GovernancePolicies> = OnceLock::new();
        DEFAULT
            .get_or_init(|| {
                // A constant of this crate, validated by its tests.
                GovernancePolicies::parse(0, DEFAULT_POLICIES)
                    .expect("the default governance policies validate")
            })
            .clone()
    }

    /// The version this set was installed as.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The Cedar text, exactly as installed.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether the text names a `Hygeia::Record` entity ([`names_records`]),
    /// worked out once when the set was parsed.
    pub fn names_records(&self) -> bool {
        self.names_records
    }

    /// The policy ids, sorted.
    pub fn policy_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.set.policies().map(|p| p.id().to_string()).collect();
        ids.sort();
        ids
    }

    /// Whether the policy `id` carries the break-glass annotation.
    pub fn is_break_glass(&self, id: &str) -> bool {
        self.break_glass.contains(id)
    }

    /// Whether policy `id` was found to read `context.grant`.
    pub fn is_per_grant(&self, id: &str) -> bool {
        self.per_grant.policy(&PolicyId::new(id)).is_some()
    }

    /// Whether candidate grants are checked by `crate::prefilter` before
    /// Cedar.
    pub(crate) fn prefilter_applies(&self) -> bool {
        self.prefilter
    }

    /// Whether some policy names the grant entity type (see the field).
    pub(crate) fn names_grant_type(&self) -> bool {
        self.names_grant_type
    }

    /// The whole set.
    pub(crate) fn policy_set(&self) -> &PolicySet {
        &self.set
    }

    pub(crate) fn per_grant(&self) -> &PolicySet {
        &self.per_grant
    }

    pub(crate) fn grant_independent(&self) -> &PolicySet {
        &self.grant_independent
    }
}

/// Whether `policy` may read `context.grant`. Sound, not exact: a policy is
/// grant-independent only if every use of `context` in it is an attribute
/// access or `has` test on an attribute other than `grant`; anything else
/// (the context as a value, a policy that does not convert to JSON) counts
/// as reading the grant.
fn may_read_grant(policy: &Policy) -> bool {
    match policy.to_json() {
        Ok(json) => reads_grant(&json),
        Err(_) => true,
    }
}

/// The grant entity type's name, as Cedar's JSON form of a policy spells it.
const GRANT_TYPE: &str = "Hygeia::Grant";

/// Whether `name` occurs in `v` as a string or a key.
fn mentions(v: &Value, name: &str) -> bool {
    match v {
        Value::String(s) => s == name,
        Value::Array(items) => items.iter().any(|i| mentions(i, name)),
        Value::Object(map) => map.iter().any(|(k, v)| k == name || mentions(v, name)),
        _ => false,
    }
}

fn join<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    items.map(|i| i.to_string()).collect::<Vec<_>>().join("; ")
}

fn is_context_var(v: &Value) -> bool {
    v.get("Var").and_then(Value::as_str) == Some("context")
}

fn reads_grant(v: &Value) -> bool {
    match v {
        Value::Object(map) => {
            if is_context_var(v) {
                // `context` used as a whole.
                return true;
            }
            for op in [".", "has"] {
                if let Some(access) = map.get(op) {
                    if access.get("left").is_some_and(is_context_var) {
                        let attr = match access.get("attr") {
                            Some(Value::String(a)) => Some(a.as_str()),
                            Some(Value::Array(path)) => path.first().and_then(Value::as_str),
                            _ => None,
                        };
                        return attr.is_none_or(|a| a == "grant");
                    }
                }
            }
            map.values().any(reads_grant)
        }
        Value::Array(items) => items.iter().any(reads_grant),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_and_default_policies_are_valid() {
        let _ = schema();
        let p = GovernancePolicies::default_policies();
        assert_eq!(p.version(), 0);
        assert_eq!(
            p.policy_ids(),
            vec![
                "break-glass-emergency-read",
                "consent-grant",
                "directory-read",
                "directory-write",
                "forbid-outside-grant-jurisdiction",
                "forbid-suspended-requester",
                "forbid-treatment-without-licence",
                "patient-own-records",
            ]
        );
        assert!(p.is_break_glass("break-glass-emergency-read"));
        assert!(!p.is_break_glass("consent-grant"));
        assert!(p.is_per_grant("consent-grant"));
        assert!(p.is_per_grant("forbid-outside-grant-jurisdiction"));
        assert!(!p.is_per_grant("forbid-suspended-requester"));
        assert!(!p.is_per_grant("forbid-treatment-without-licence"));
        assert!(!p.is_per_grant("break-glass-emergency-read"));
        assert_eq!(p.text(), DEFAULT_POLICIES);
    }

    #[test]
    fn unparsable_text_is_refused_with_cedars_error() {
        let err = GovernancePolicies::parse(1, "permit(principal, action, resource").unwrap_err();
        assert_eq!(err.code(), "governance.parse");
        assert!(err.to_string().contains("unexpected end of input"), "{err}");
    }

    #[test]
    fn policies_that_do_not_validate_are_refused_with_cedars_error() {
        // No such attribute in the schema.
        let text = r#"@id("bad") permit(principal, action, resource) when { principal.age > 18 };"#;
        let err = GovernancePolicies::parse(1, text).unwrap_err();
        assert_eq!(err.code(), "governance.validation");
        assert!(err.to_string().contains("age"), "{err}");
        // No such entity type.
        let text = r#"@id("bad") permit(principal == Hygeia::User::"x", action, resource);"#;
        let err = GovernancePolicies::parse(1, text).unwrap_err();
        assert_eq!(err.code(), "governance.validation");
        // Comparing a Long to a String.
        let text =
            r#"@id("bad") forbid(principal, action, resource) when { context.time == "now" };"#;
        assert_eq!(
            GovernancePolicies::parse(1, text).unwrap_err().code(),
            "governance.validation"
        );
    }

    #[test]
    fn ids_are_required_and_unique() {
        let text = "permit(principal, action, resource);";
        assert_eq!(
            GovernancePolicies::parse(1, text).unwrap_err().code(),
            "governance.missing_id"
        );
        let text = r#"@id("a") permit(principal, action, resource);
                      @id("a") forbid(principal, action, resource);"#;
        assert_eq!(
            GovernancePolicies::parse(1, text).unwrap_err().code(),
            "governance.duplicate_id"
        );
        assert_eq!(
            GovernancePolicies::parse(1, "// nothing")
                .unwrap_err()
                .code(),
            "governance.empty"
        );
        let text = r#"@id("t") permit(principal == ?principal, action, resource);"#;
        assert_eq!(
            GovernancePolicies::parse(1, text).unwrap_err().code(),
            "governance.template"
        );
    }

    #[test]
    fn policies_reading_the_grant_are_found() {
        let cases = [
            (r#"context has grant"#, true),
            (r#"context.grant.notAfter > 0"#, true),
            (r#"context["grant"].notAfter > 0"#, true),
            (r#"context has grant.notAfter"#, true),
            (r#"context == context"#, true),
            (r#"[context].contains(context)"#, true),
            (r#"context.time > 0 && context.purpose == "TREAT""#, false),
            (r#"context has justification && principal.suspended"#, false),
            (r#"resource.patient == principal"#, false),
        ];
        for (condition, expected) in cases {
            let text = format!("permit(principal, action, resource) when {{ {condition} }};");
            let policy: Policy = text.parse().unwrap();
            assert_eq!(may_read_grant(&policy), expected, "{condition}");
        }
        let text = r#"@id("p") permit(principal, action, resource)
                      when { context has grant && context.grant.notAfter > context.time };
                      @id("q") forbid(principal, action, resource)
                      when { context has justification };"#;
        let p = GovernancePolicies::parse(1, text).unwrap();
        assert!(p.is_per_grant("p"));
        assert!(!p.is_per_grant("q"));
    }

    #[test]
    fn policies_naming_the_grant_type_are_found() {
        assert!(!GovernancePolicies::default_policies().names_grant_type());
        for condition in [
            r#"Hygeia::Grant::"g1".notAfter < context.time"#,
            r#"context has grant && context.grant is Hygeia::Grant"#,
        ] {
            let text =
                format!(r#"@id("p") forbid(principal, action, resource) when {{ {condition} }};"#);
            let p = GovernancePolicies::parse(1, &text).unwrap();
            assert!(p.names_grant_type(), "{condition}");
        }
    }

    #[test]
    fn a_valid_custom_set_is_accepted() {
        let text = r#"
            @id("public-health-reporting")
            permit(principal in Hygeia::Agent::"did:web:health.gov.example",
                   action == Hygeia::Action::"read", resource)
            when { context.purpose == "PUBHLTH" && resource has category
                   && resource.category == "notifiable" };
        "#;
        let p = GovernancePolicies::parse(7, text).unwrap();
        assert_eq!(p.version(), 7);
        assert_eq!(p.policy_ids(), vec!["public-health-reporting"]);
    }
}
