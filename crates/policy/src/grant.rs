//! Consent grants: who may do what with which of a patient's records, why,
//! when and from where.

use std::collections::BTreeSet;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::ConsentError;
use crate::jurisdiction::is_country_code;
use crate::purpose::PurposeOfUse;

/// What a request does to a record.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Read a record.
    Read,
    /// Write (create or update) a record.
    Write,
}

impl Action {
    /// Both actions.
    pub const ALL: [Action; 2] = [Action::Read, Action::Write];

    /// `"read"` or `"write"`: the Cedar action id and the grant's wording.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Write => "write",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which of the patient's records a grant covers.
///
/// Each non-empty set restricts the grant; a record is covered when it
/// matches every non-empty set. `{categories: [lab]}` covers every lab
/// record; `{categories: [lab], resource_types: [Observation]}` only lab
/// Observations. A scope with every set empty is refused: a grant must say
/// what it covers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    /// Record categories, e.g. `"lab"`, `"mental-health"`. A record without
    /// a category is not covered when this set is non-empty.
    #[serde(default)]
    pub categories: BTreeSet<String>,
    /// FHIR resource types, e.g. `"Observation"`.
    #[serde(default)]
    pub resource_types: BTreeSet<String>,
    /// Specific record ids.
    #[serde(default)]
    pub record_ids: BTreeSet<String>,
}

impl Scope {
    /// A scope of record categories.
    pub fn categories<I: IntoIterator<Item = S>, S: Into<String>>(categories: I) -> Self {
        Scope {
            categories: categories.into_iter().map(Into::into).collect(),
            ..Scope::default()
        }
    }

    /// A scope of FHIR resource types.
    pub fn resource_types<I: IntoIterator<Item = S>, S: Into<String>>(types: I) -> Self {
        Scope {
            resource_types: types.into_iter().map(Into::into).collect(),
            ..Scope::default()
        }
    }

    /// A scope of specific records.
    pub fn record_ids<I: IntoIterator<Item = S>, S: Into<String>>(ids: I) -> Self {
        Scope {
            record_ids: ids.into_iter().map(Into::into).collect(),
            ..Scope::default()
        }
    }

    /// Whether no set restricts anything.
    pub fn is_empty(&self) -> bool {
        self.categories.is_empty() && self.resource_types.is_empty() && self.record_ids.is_empty()
    }
}

/// A consent grant, as recorded on the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Grant {
    /// The grant's id, unique in the network (the node uses the id of the
    /// transaction that carried it).
    pub id: String,
    /// The patient whose records are covered.
    pub patient: String,
    /// Who is granted access: a person's or device's DID, or an
    /// organization's DID, which means every member of the organization.
    pub grantee: String,
    /// Which records.
    pub scope: Scope,
    /// What the grantee may do.
    pub actions: BTreeSet<Action>,
    /// Why: the purpose the grantee must state. A grant for `TREAT` also
    /// covers `ETREAT` (see [`PurposeOfUse::covered`]).
    pub purpose: PurposeOfUse,
    /// Start of validity, Unix seconds, inclusive.
    pub not_before: i64,
    /// End of validity, Unix seconds, exclusive. Expiry needs no event:
    /// decisions take the decision time as input.
    pub not_after: i64,
    /// Countries (ISO 3166-1 alpha-2) the grantee must be in. Empty means
    /// no constraint.
    #[serde(default)]
    pub jurisdictions: BTreeSet<String>,
}

impl Grant {
    /// Whether `time` (Unix seconds) lies in `[not_before, not_after)`.
    pub fn is_active_at(&self, time: i64) -> bool {
        self.not_before <= time && time < self.not_after
    }

    /// Checks everything about the grant that does not depend on the state:
    /// DIDs, the validity period, the scope, the actions and the
    /// jurisdictions.
    pub fn validate(&self) -> Result<(), ConsentError> {
        if self.id.is_empty() {
            return Err(ConsentError::EmptyGrantId);
        }
        check_did("patient", &self.patient)?;
        check_did("grantee", &self.grantee)?;
        if self.not_after <= self.not_before {
            return Err(ConsentError::InvalidPeriod {
                not_before: self.not_before,
                not_after: self.not_after,
            });
        }
        if self.scope.is_empty() {
            return Err(ConsentError::EmptyScope);
        }
        let scope_values = self
            .scope
            .categories
            .iter()
            .chain(&self.scope.resource_types)
            .chain(&self.scope.record_ids);
        for value in scope_values {
            if value.is_empty() {
                return Err(ConsentError::InvalidScopeValue {
                    value: value.clone(),
                });
            }
        }
        if self.actions.is_empty() {
            return Err(ConsentError::NoActions);
        }
        if let Some(code) = self.jurisdictions.iter().find(|c| !is_country_code(c)) {
            return Err(ConsentError::InvalidJurisdiction { code: code.clone() });
        }
        Ok(())
    }
}

/// Whether `s` is a syntactically valid DID (W3C DID Core §3.1):
/// `did:` method-name `:` method-specific-id, with a lower-case alphanumeric
/// method name and an id of unreserved characters, `:` and `%`-escapes.
pub fn is_did(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("did:") else {
        return false;
    };
    let Some((method, id)) = rest.split_once(':') else {
        return false;
    };
    let method_ok = !method.is_empty()
        && method
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let id_ok = !id.is_empty()
        && !id.ends_with(':')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'%'));
    method_ok && id_ok
}

pub(crate) fn check_did(field: &'static str, did: &str) -> Result<(), ConsentError> {
    if is_did(did) {
        Ok(())
    } else {
        Err(ConsentError::InvalidDid {
            field,
            did: did.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> Grant {
        Grant {
            id: "g1".into(),
            patient: "did:key:z6MkPatient".into(),
            grantee: "did:web:clinic.example".into(),
            scope: Scope::categories(["lab"]),
            actions: [Action::Read].into(),
            purpose: PurposeOfUse::Treatment,
            not_before: 100,
            not_after: 200,
            jurisdictions: BTreeSet::new(),
        }
    }

    #[test]
    fn valid_grant_passes() {
        assert_eq!(grant().validate(), Ok(()));
    }

    #[test]
    fn period_ending_before_start_is_refused() {
        let g = Grant {
            not_before: 200,
            not_after: 100,
            ..grant()
        };
        let err = g.validate().unwrap_err();
        assert_eq!(err.code(), "consent.invalid_period");
        let empty = Grant {
            not_before: 150,
            not_after: 150,
            ..grant()
        };
        assert_eq!(
            empty.validate().unwrap_err().code(),
            "consent.invalid_period"
        );
    }

    #[test]
    fn period_is_half_open() {
        let g = grant();
        assert!(!g.is_active_at(99));
        assert!(g.is_active_at(100));
        assert!(g.is_active_at(199));
        assert!(!g.is_active_at(200));
    }

    #[test]
    fn other_invalid_grants_are_refused() {
        let cases: Vec<(Grant, &str)> = vec![
            (
                Grant {
                    id: String::new(),
                    ..grant()
                },
                "consent.empty_grant_id",
            ),
            (
                Grant {
                    patient: "alice".into(),
                    ..grant()
                },
                "consent.invalid_did",
            ),
            (
                Grant {
                    scope: Scope::default(),
                    ..grant()
                },
                "consent.empty_scope",
            ),
            (
                Grant {
                    scope: Scope::categories([""]),
                    ..grant()
                },
                "consent.invalid_scope_value",
            ),
            (
                Grant {
                    actions: BTreeSet::new(),
                    ..grant()
                },
                "consent.no_actions",
            ),
            (
                Grant {
                    jurisdictions: ["FR".to_owned(), "XX".to_owned()].into(),
                    ..grant()
                },
                "consent.invalid_jurisdiction",
            ),
        ];
        for (g, code) in cases {
            assert_eq!(g.validate().unwrap_err().code(), code);
        }
    }

    #[test]
    fn did_syntax() {
        for ok in [
            "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK",
            "did:web:hospital.example",
            "did:web:example.com%3A8443:org:unit",
        ] {
            assert!(is_did(ok), "{ok}");
        }
        for bad in [
            "",
            "did:",
            "did:key",
            "did:key:",
            "did:KEY:abc",
            "did::abc",
            "key:abc",
            "did:web:a b",
            "did:web:abc:",
        ] {
            assert!(!is_did(bad), "{bad}");
        }
    }

    #[test]
    fn unknown_purpose_in_json_is_refused() {
        let json = r#"{"id":"g","patient":"did:key:p","grantee":"did:key:c",
            "scope":{"categories":["lab"]},"actions":["read"],"purpose":"SNOOP",
            "not_before":0,"not_after":10}"#;
        let err = serde_json::from_str::<Grant>(json).unwrap_err();
        assert!(err.to_string().contains("unknown purpose of use"), "{err}");
        let ok = json.replace("SNOOP", "HRESCH");
        let g: Grant = serde_json::from_str(&ok).unwrap();
        assert_eq!(g.purpose, PurposeOfUse::Research);
    }
}
