//! FHIR R5 Consent and Hygeia's ledger consent grants.
//!
//! A grant is signed by the patient (or a delegate) as a `consent.grant`
//! transaction; the node never signs one. So the mapping runs two ways:
//!
//! - [`consent_to_terms`]: on `POST /fhir/Consent`, the node computes the
//!   terms a Consent means and checks that the signed transaction sent along
//!   carries exactly those terms;
//! - [`terms_to_consent`]: on reads, every ledger grant is shown as a
//!   Consent, whose id is the grant id.
//!
//! Only one shape of Consent is understood: an active permit from one
//! patient to one actor, for stated actions, one purpose of use and one
//! closed period, over a non-empty scope. Anything else is refused with an
//! issue naming the element, never mapped in part: a Consent that said more
//! than the grant could hold would be enforced as something the patient did
//! not sign.
//!
//! | FHIR | grant |
//! |---|---|
//! | `subject` | `patient` (a DID) |
//! | `provision.actor.reference` | `grantee` (a DID) |
//! | `provision.action` (`consentaction`: `access`, `use`, `correct`) | `actions` (`read`, `read`, `write`) |
//! | `provision.purpose` (`v3-ActReason`) | `purpose` |
//! | `provision.period` or `Consent.period` | `[not_before, not_after)`, Unix seconds |
//! | `provision.resourceType` (`fhir-types`) | `scope.resource_types` |
//! | `provision.securityLabel` ([`CATEGORY_SYSTEM`]) | `scope.categories` |
//! | `provision.data` (`meaning` `instance`) | `scope.record_ids` (commitments) |
//! | `provision.extension` ([`JURISDICTION_EXTENSION`]) | `jurisdictions` |

use std::collections::BTreeSet;

use hygeia_policy::purpose::PURPOSE_OF_USE_SYSTEM;
use hygeia_policy::{is_country_code, is_did, Action, PurposeOfUse, Scope};
use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::audit::ledger_extensions;
use crate::outcome::Issue;
use crate::reference::{did_of_reference, did_reference};

/// LOINC, for the Consent category.
pub const LOINC_SYSTEM: &str = "http://loinc.org";
/// LOINC 59284-0, "Patient Consent": the category of every grant's Consent.
pub const PATIENT_CONSENT_CODE: &str = "59284-0";
/// The code system of `provision.action`.
pub const CONSENT_ACTION_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/consentaction";
/// The code system of `provision.resourceType` in R5.
pub const FHIR_TYPES_SYSTEM: &str = "http://hl7.org/fhir/fhir-types";
/// The R4 code system for resource types, still used by some R5 examples
/// (`Consent-consent-example-smartonfhir`); accepted on input with the
/// same codes, never produced.
pub const LEGACY_RESOURCE_TYPES_SYSTEM: &str = "http://hl7.org/fhir/resource-types";
/// Hygeia's record categories (`lab`, `mental-health`, ...), given as
/// `provision.securityLabel` codings.
pub const CATEGORY_SYSTEM: &str = "https://hygeia.health/fhir/CodeSystem/category";
/// The identifier system naming a record by its commitment (64 hex digits).
pub const RECORD_IDENTIFIER_SYSTEM: &str = "https://hygeia.health/fhir/NamingSystem/record";
/// An extension on `provision`, one per country (ISO 3166-1 alpha-2, in a
/// `valueCodeableConcept` of system [`ISO_3166_SYSTEM`]) the grantee must
/// act from. R5 Consent has no element for it, and a grant's jurisdictions
/// narrow it, so a Consent without them would overstate what was granted.
pub const JURISDICTION_EXTENSION: &str =
    "https://hygeia.health/fhir/StructureDefinition/grant-jurisdiction";
/// ISO 3166 country codes.
pub const ISO_3166_SYSTEM: &str = "urn:iso:std:iso:3166";
/// HL7 v3 participation types (the actor's role, `IRCP`).
pub const PARTICIPATION_TYPE_SYSTEM: &str =
    "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";

/// The terms of a consent grant: a `consent.grant` transaction's body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantTerms {
    /// The patient's DID.
    pub patient: String,
    /// The grantee's DID (a person, a device or an organization).
    pub grantee: String,
    pub scope: Scope,
    pub actions: BTreeSet<Action>,
    pub purpose: PurposeOfUse,
    /// Validity `[not_before, not_after)`, Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// ISO 3166-1 alpha-2 countries the grantee must act from; empty means
    /// anywhere. Part of the terms because it is part of what the patient
    /// signs: a Consent that left it out would say more than the grant.
    pub jurisdictions: BTreeSet<String>,
}

impl GrantTerms {
    /// The terms of a grant the policy engine knows (its id is dropped).
    pub fn from_grant(grant: &hygeia_policy::Grant) -> GrantTerms {
        GrantTerms {
            patient: grant.patient.clone(),
            grantee: grant.grantee.clone(),
            scope: grant.scope.clone(),
            actions: grant.actions.clone(),
            purpose: grant.purpose,
            not_before: grant.not_before,
            not_after: grant.not_after,
            jurisdictions: grant.jurisdictions.clone(),
        }
    }

    /// The grant these terms make under `id`.
    pub fn to_grant(&self, id: String) -> hygeia_policy::Grant {
        hygeia_policy::Grant {
            id,
            patient: self.patient.clone(),
            grantee: self.grantee.clone(),
            scope: self.scope.clone(),
            actions: self.actions.clone(),
            purpose: self.purpose,
            not_before: self.not_before,
            not_after: self.not_after,
            jurisdictions: self.jurisdictions.clone(),
        }
    }
}

/// Where a ledger event sits: its index in the log and the URL of its
/// inclusion proof. Shown on Consent, AuditEvent and Provenance through the
/// extensions of [`crate::audit`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerLink {
    pub index: u64,
    pub proof_url: String,
}

/// What the node knows that a Consent's references point to.
///
/// [`consent_to_terms`] reads the self-describing forms itself (a DID
/// identifier, see [`crate::reference::did_of_reference`]; a record
/// identifier, see [`record_of_reference`]), so a resolver only has to
/// answer for literal references. When both answer, they must agree.
pub trait Resolver {
    /// The DID a Reference names: either via `identifier` {system
    /// "urn:ietf:rfc:3986", value "did:..."} (see
    /// [`crate::reference::did_of_reference`]) or via a literal reference to
    /// a Patient/Practitioner/Organization on this server whose identifier
    /// holds a DID.
    fn did(&self, reference: &Value) -> Option<String>;
    /// The record id (ledger commitment, 64 hex) of the current version of
    /// a referenced resource (for `provision.data`).
    fn record(&self, reference: &Value) -> Option<String>;
}

/// A resolver that knows nothing beyond the self-describing identifier
/// forms: literal references resolve to nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct IdentifiersOnly;

impl Resolver for IdentifiersOnly {
    fn did(&self, reference: &Value) -> Option<String> {
        did_of_reference(reference).map(str::to_owned)
    }

    fn record(&self, reference: &Value) -> Option<String> {
        record_of_reference(reference).map(str::to_owned)
    }
}

/// A Reference naming a record by its commitment.
pub fn record_reference(commitment: &str) -> Value {
    json!({ "identifier": { "system": RECORD_IDENTIFIER_SYSTEM, "value": commitment } })
}

/// The commitment a Reference names through a record identifier, if it
/// does and the value is a commitment (64 lowercase hex digits).
pub fn record_of_reference(reference: &Value) -> Option<&str> {
    let identifier = reference.get("identifier")?;
    if identifier.get("system")?.as_str()? != RECORD_IDENTIFIER_SYSTEM {
        return None;
    }
    identifier
        .get("value")?
        .as_str()
        .filter(|v| is_commitment(v))
}

/// 64 lowercase hex digits, as the ledger writes commitments.
pub fn is_commitment(value: &str) -> bool {
    value.len() == 64
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A category code as the ledger accepts it: 1 to 64 characters of
/// `[a-z0-9._-]`, starting with a letter or digit.
fn is_category(code: &str) -> bool {
    code.len() <= 64
        && code
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

/// A FHIR resource type name as the ledger accepts it: an upper-case
/// letter then letters, at most 64.
fn is_resource_type_name(name: &str) -> bool {
    name.len() <= 64
        && name.bytes().next().is_some_and(|b| b.is_ascii_uppercase())
        && name.bytes().all(|b| b.is_ascii_alphabetic())
}

/// Top-level elements that say nothing the grant must hold: they are
/// accepted and ignored. (`grantor` is ignored because who may sign for the
/// patient is the ledger's rule, checked on the transaction's signer.)
const IGNORED_ELEMENTS: [&str; 15] = [
    "id",
    "meta",
    "language",
    "text",
    "identifier",
    "date",
    "grantor",
    "controller",
    "manager",
    "sourceAttachment",
    "sourceReference",
    "regulatoryBasis",
    "policyBasis",
    "category",
    "extension",
];

/// Elements of `provision` that R5 defines and a grant cannot hold.
const UNSUPPORTED_PROVISION_ELEMENTS: [(&str, &str); 7] = [
    (
        "provision",
        "nested provisions (exceptions) cannot be expressed by a grant; post one Consent per grant",
    ),
    (
        "expression",
        "computable expressions are not evaluated; state the scope with resourceType, securityLabel or data",
    ),
    (
        "dataPeriod",
        "a grant covers records whatever their clinical date",
    ),
    (
        "code",
        "a grant's scope is by resource type, category or record, not by clinical code",
    ),
    (
        "documentType",
        "a grant's scope is by resource type, category or record, not by document type",
    ),
    (
        "modifierExtension",
        "modifier extensions change the meaning of the provision and are not understood",
    ),
    (
        "type",
        "R5 provisions have no type (it was R4's permit or deny); use Consent.decision",
    ),
];

/// The terms a Consent means, or every reason it cannot be a grant.
///
/// The supported shape and its mapping are described in the module
/// documentation. Issues carry the FHIRPath of the element at fault and the
/// code `not-supported` (valid FHIR that a grant cannot hold), `required`
/// (a missing element) or `invalid` (a malformed or unresolvable value).
pub fn consent_to_terms(
    consent: &Value,
    resolver: &dyn Resolver,
) -> Result<GrantTerms, Vec<Issue>> {
    let Some(root) = consent.as_object() else {
        return Err(vec![Issue::error(
            "invalid",
            "a Consent must be a JSON object",
        )]);
    };
    let mut m = Mapper {
        resolver,
        issues: Vec::new(),
    };
    m.check_top_level(root);

    let status = root.get("status");
    match status.map(Value::as_str) {
        None => m.issue(
            "required",
            "Consent.status",
            "Consent.status is required; it must be active",
        ),
        Some(Some("active")) => {}
        Some(Some(other)) => m.issue(
            "not-supported",
            "Consent.status",
            format!("only an active Consent can be granted, not {other:?}; a grant is in force from the moment it is recorded"),
        ),
        Some(None) => m.issue("invalid", "Consent.status", "Consent.status must be a code"),
    }

    match root.get("decision").map(Value::as_str) {
        None => m.issue(
            "required",
            "Consent.decision",
            "Consent.decision is required; it must be permit",
        ),
        Some(Some("permit")) => {}
        Some(Some("deny")) => m.issue(
            "not-supported",
            "Consent.decision",
            "a deny Consent cannot be recorded: access is denied unless a grant permits it; revoke a grant to withdraw it",
        ),
        Some(_) => m.issue(
            "invalid",
            "Consent.decision",
            "Consent.decision must be permit or deny",
        ),
    }

    let patient = match root.get("subject") {
        None => {
            m.issue(
                "required",
                "Consent.subject",
                "Consent.subject is required: the patient whose records are granted",
            );
            None
        }
        Some(subject) => m.did(subject, "Consent.subject"),
    };

    let top_period = root
        .get("period")
        .and_then(|p| m.period(p, "Consent.period"));

    let provision = match root.get("provision") {
        None => {
            m.issue(
                "required",
                "Consent.provision",
                "Consent.provision is required: exactly one provision saying who may do what",
            );
            None
        }
        Some(Value::Array(provisions)) if provisions.len() == 1 => {
            provisions[0].as_object().or_else(|| {
                m.issue(
                    "invalid",
                    "Consent.provision[0]",
                    "a provision must be a JSON object",
                );
                None
            })
        }
        Some(Value::Array(provisions)) if provisions.is_empty() => {
            m.issue(
                "required",
                "Consent.provision",
                "exactly one provision is required",
            );
            None
        }
        Some(Value::Array(_)) => {
            m.issue(
                "not-supported",
                "Consent.provision",
                "exactly one provision is supported: one Consent is one grant",
            );
            None
        }
        Some(_) => {
            m.issue(
                "invalid",
                "Consent.provision",
                "Consent.provision must be an array",
            );
            None
        }
    };

    // A malformed Consent.period is reported where it is, not again as
    // a missing provision.period.
    let rule = provision.and_then(|p| m.provision(p, root.contains_key("period")));

    let grantee_top = root
        .get("grantee")
        .map(|g| m.reference_list_dids(g, "Consent.grantee"));

    let (Some(patient), Some(rule)) = (patient, rule) else {
        return Err(m.finish_err());
    };
    let Rule {
        grantee,
        actions,
        purpose,
        period: provision_period,
        scope,
        jurisdictions,
    } = rule;

    if let Some(Some(dids)) = grantee_top {
        if dids.iter().any(|d| *d != grantee) {
            m.issue(
                "invalid",
                "Consent.grantee",
                "Consent.grantee must name the same party as provision.actor",
            );
        }
    }
    if grantee == patient {
        m.issue(
            "invalid",
            "Consent.provision[0].actor[0].reference",
            "the grantee must differ from the patient, who reads their own records without a grant",
        );
    }
    let period = match (top_period, provision_period) {
        (Some(top), Some(inner)) if top != inner => {
            m.issue(
                "not-supported",
                "Consent.period",
                "Consent.period and provision.period differ; a grant has one validity period: give it once, or twice the same",
            );
            None
        }
        (Some(p), _) | (None, Some(p)) => Some(p),
        (None, None) => None,
    };
    if !m.issues.is_empty() {
        return Err(m.issues);
    }
    let Some((not_before, not_after)) = period else {
        return Err(m.finish_err());
    };
    Ok(GrantTerms {
        patient,
        grantee,
        scope,
        actions,
        purpose,
        not_before,
        not_after,
        jurisdictions,
    })
}

/// What one provision says.
struct Rule {
    grantee: String,
    actions: BTreeSet<Action>,
    purpose: PurposeOfUse,
    period: Option<(i64, i64)>,
    scope: Scope,
    jurisdictions: BTreeSet<String>,
}

struct Mapper<'a> {
    resolver: &'a dyn Resolver,
    issues: Vec<Issue>,
}

impl Mapper<'_> {
    fn issue(&mut self, code: &'static str, at: &str, diagnostics: impl Into<String>) {
        self.issues.push(Issue::error(code, diagnostics).at(at));
    }

    /// The issues found, or one saying that nothing was found, so that an
    /// `Err` is never empty.
    fn finish_err(mut self) -> Vec<Issue> {
        if self.issues.is_empty() {
            self.issues.push(Issue::error(
                "invalid",
                "the Consent could not be mapped to a grant",
            ));
        }
        self.issues
    }

    fn check_top_level(&mut self, root: &Map<String, Value>) {
        for key in root.keys() {
            let base = key.strip_prefix('_').unwrap_or(key);
            let handled = matches!(
                key.as_str(),
                "resourceType"
                    | "status"
                    | "subject"
                    | "decision"
                    | "provision"
                    | "period"
                    | "grantee"
            );
            if handled || IGNORED_ELEMENTS.contains(&base) {
                continue;
            }
            let why = match base {
                "modifierExtension" => {
                    "modifier extensions change the Consent's meaning and are not understood"
                }
                "implicitRules" => {
                    "implicit rules change the Consent's meaning and are not understood"
                }
                "contained" => {
                    "contained resources are not supported; reference participants by DID"
                }
                "policyText" => "a grant holds no policy text; its terms are the provision",
                "verification" => "verification records are not kept with grants",
                "status" | "decision" => "primitive extensions on this element are not understood",
                _ => "this element is not part of the supported Consent shape",
            };
            self.issue(
                "not-supported",
                &format!("Consent.{key}"),
                format!("Consent.{key} is not supported: {why}"),
            );
        }
        match root.get("resourceType").map(Value::as_str) {
            Some(Some("Consent")) => {}
            _ => self.issue(
                "invalid",
                "Consent.resourceType",
                "resourceType must be Consent",
            ),
        }
    }

    /// The DID a Reference names, from its identifier or the resolver; they
    /// must agree when both answer.
    fn did(&mut self, reference: &Value, at: &str) -> Option<String> {
        if !reference.is_object() {
            self.issue("invalid", at, format!("{at} must be a Reference"));
            return None;
        }
        let by_identifier = did_of_reference(reference).map(str::to_owned);
        let by_resolver = self.resolver.did(reference);
        let did = match (by_identifier, by_resolver) {
            (Some(a), Some(b)) if a != b => {
                self.issue(
                    "invalid",
                    at,
                    format!(
                        "{at} names two different DIDs: its identifier {a}, and another through its reference"
                    ),
                );
                return None;
            }
            (Some(did), _) | (None, Some(did)) => did,
            (None, None) => {
                self.issue(
                    "invalid",
                    at,
                    format!("{at} must name a DID: an identifier with system urn:ietf:rfc:3986 and a did: value, or a reference to a Patient, Practitioner or Organization on this server whose identifier holds one"),
                );
                return None;
            }
        };
        if is_did(&did) {
            Some(did)
        } else {
            self.issue("invalid", at, format!("{at}: {did:?} is not a valid DID"));
            None
        }
    }

    /// Every DID of a list of References (`Consent.grantee`).
    fn reference_list_dids(&mut self, list: &Value, at: &str) -> Option<Vec<String>> {
        let Some(items) = list.as_array() else {
            self.issue(
                "invalid",
                at,
                format!("{at} must be an array of References"),
            );
            return None;
        };
        let mut dids = Vec::new();
        for (i, item) in items.iter().enumerate() {
            dids.push(self.did(item, &format!("{at}[{i}]"))?);
        }
        Some(dids)
    }

    /// The commitment a `provision.data.reference` names.
    fn record(&mut self, reference: &Value, at: &str) -> Option<String> {
        if !reference.is_object() {
            self.issue("invalid", at, format!("{at} must be a Reference"));
            return None;
        }
        let by_identifier = record_of_reference(reference).map(str::to_owned);
        let by_resolver = self.resolver.record(reference);
        let record = match (by_identifier, by_resolver) {
            (Some(a), Some(b)) if a != b => {
                self.issue(
                    "invalid",
                    at,
                    format!(
                        "{at} names two different records: {a}, and another through its reference"
                    ),
                );
                return None;
            }
            (Some(r), _) | (None, Some(r)) => r,
            (None, None) => {
                self.issue(
                    "invalid",
                    at,
                    format!("{at} must name a record: an identifier with system {RECORD_IDENTIFIER_SYSTEM} and a commitment as value, or a reference to a current resource on this server"),
                );
                return None;
            }
        };
        if is_commitment(&record) {
            Some(record)
        } else {
            self.issue(
                "invalid",
                at,
                format!("{at}: a record id must be 64 lowercase hex digits"),
            );
            None
        }
    }

    /// A Period with both ends, in whole seconds, end after start.
    fn period(&mut self, period: &Value, at: &str) -> Option<(i64, i64)> {
        let Some(obj) = period.as_object() else {
            self.issue("invalid", at, format!("{at} must be a Period"));
            return None;
        };
        for key in obj.keys() {
            if !matches!(key.as_str(), "start" | "end" | "id") {
                self.issue(
                    "not-supported",
                    &format!("{at}.{key}"),
                    format!("{at}.{key} is not supported: a grant's period is its start and end"),
                );
            }
        }
        let mut bound = |name: &str| -> Option<i64> {
            let at = format!("{at}.{name}");
            match obj.get(name) {
                None => {
                    self.issue(
                        "required",
                        &at,
                        format!("{at} is required: a grant is valid for a closed period"),
                    );
                    None
                }
                Some(Value::String(s)) => match parse_date_time(s) {
                    Ok(t) => Some(t),
                    Err(why) => {
                        self.issue("invalid", &at, format!("{at}: {why}"));
                        None
                    }
                },
                Some(_) => {
                    self.issue("invalid", &at, format!("{at} must be a dateTime string"));
                    None
                }
            }
        };
        let start = bound("start");
        let end = bound("end");
        let (start, end) = (start?, end?);
        if end <= start {
            self.issue(
                "invalid",
                &format!("{at}.end"),
                format!("{at}.end must be after its start"),
            );
            return None;
        }
        Some((start, end))
    }

    fn provision(&mut self, p: &Map<String, Value>, has_top_period: bool) -> Option<Rule> {
        const AT: &str = "Consent.provision[0]";
        for key in p.keys() {
            if matches!(
                key.as_str(),
                "id" | "period"
                    | "actor"
                    | "action"
                    | "purpose"
                    | "resourceType"
                    | "securityLabel"
                    | "data"
                    | "extension"
            ) {
                continue;
            }
            let why = UNSUPPORTED_PROVISION_ELEMENTS
                .iter()
                .find(|(name, _)| name == key)
                .map_or(
                    "this element is not part of the supported Consent shape",
                    |(_, why)| why,
                );
            self.issue(
                "not-supported",
                &format!("{AT}.{key}"),
                format!("{AT}.{key} is not supported: {why}"),
            );
        }

        let period = match p.get("period") {
            Some(period) => self.period(period, &format!("{AT}.period")),
            None => {
                if !has_top_period {
                    self.issue(
                        "required",
                        &format!("{AT}.period"),
                        "a period is required, on the provision or on the Consent: a grant is valid from a start to an end",
                    );
                }
                None
            }
        };
        let grantee = self.actor(p.get("actor"));
        let actions = self.actions(p.get("action"));
        let purpose = self.purpose(p.get("purpose"));

        let mut scope = Scope::default();
        if let Some(types) = p.get("resourceType") {
            scope.resource_types = self.resource_types(types);
        }
        if let Some(labels) = p.get("securityLabel") {
            scope.categories = self.categories(labels);
        }
        if let Some(data) = p.get("data") {
            scope.record_ids = self.data(data);
        }
        let scope_given = ["resourceType", "securityLabel", "data"]
            .iter()
            .any(|k| p.contains_key(*k));
        if scope.is_empty() && !scope_given {
            self.issue(
                "required",
                AT,
                "a grant must say which records it covers: give provision.resourceType, provision.securityLabel (a category) or provision.data",
            );
        }
        let jurisdictions = match p.get("extension") {
            Some(ext) => self.jurisdictions(ext)?,
            None => BTreeSet::new(),
        };
        Some(Rule {
            grantee: grantee?,
            actions: actions?,
            purpose: purpose?,
            period,
            scope,
            jurisdictions,
        })
    }

    fn actor(&mut self, actor: Option<&Value>) -> Option<String> {
        const AT: &str = "Consent.provision[0].actor";
        let actor = match actor {
            None => {
                self.issue(
                    "required",
                    AT,
                    "exactly one actor is required: the party granted access",
                );
                return None;
            }
            Some(Value::Array(actors)) if actors.len() == 1 => &actors[0],
            Some(Value::Array(actors)) if actors.is_empty() => {
                self.issue("required", AT, "exactly one actor is required");
                return None;
            }
            Some(Value::Array(_)) => {
                self.issue(
                    "not-supported",
                    AT,
                    "exactly one actor is supported: a grant has one grantee (an organization's DID covers its members)",
                );
                return None;
            }
            Some(_) => {
                self.issue("invalid", AT, format!("{AT} must be an array"));
                return None;
            }
        };
        let at = format!("{AT}[0]");
        let Some(obj) = actor.as_object() else {
            self.issue("invalid", &at, format!("{at} must be an object"));
            return None;
        };
        for key in obj.keys() {
            if !matches!(key.as_str(), "id" | "role" | "reference") {
                self.issue(
                    "not-supported",
                    &format!("{at}.{key}"),
                    format!("{at}.{key} is not supported"),
                );
            }
        }
        // The role says how the actor takes part (recipient, custodian...);
        // a grant has only one kind of actor, so any role is read as
        // "the party granted access".
        if let Some(role) = obj.get("role") {
            if !role.is_object() {
                self.issue(
                    "invalid",
                    &format!("{at}.role"),
                    format!("{at}.role must be a CodeableConcept"),
                );
            }
        }
        match obj.get("reference") {
            Some(reference) => self.did(reference, &format!("{at}.reference")),
            None => {
                self.issue(
                    "required",
                    &format!("{at}.reference"),
                    "the actor's reference is required: the DID granted access",
                );
                None
            }
        }
    }

    fn actions(&mut self, action: Option<&Value>) -> Option<BTreeSet<Action>> {
        const AT: &str = "Consent.provision[0].action";
        let list = match action {
            None => {
                self.issue(
                    "required",
                    AT,
                    "at least one action is required (consentaction access, use or correct)",
                );
                return None;
            }
            Some(Value::Array(list)) if !list.is_empty() => list,
            Some(Value::Array(_)) => {
                self.issue("required", AT, "at least one action is required");
                return None;
            }
            Some(_) => {
                self.issue("invalid", AT, format!("{AT} must be an array"));
                return None;
            }
        };
        let mut actions = BTreeSet::new();
        let mut ok = true;
        for (i, concept) in list.iter().enumerate() {
            let at = format!("{AT}[{i}]");
            let Some(coding) = self.single_coding(concept, &at) else {
                ok = false;
                continue;
            };
            let at = format!("{at}.coding[0]");
            match coding_parts(coding) {
                Some((CONSENT_ACTION_SYSTEM, code)) => match code {
                    "access" | "use" => {
                        actions.insert(Action::Read);
                    }
                    "correct" => {
                        actions.insert(Action::Write);
                    }
                    "collect" | "disclose" => {
                        ok = false;
                        self.issue(
                            "not-supported",
                            &at,
                            format!("action {code:?} is not supported: a grant permits access or use (read) and correct (write)"),
                        );
                    }
                    other => {
                        ok = false;
                        self.issue(
                            "invalid",
                            &at,
                            format!("{other:?} is not a consentaction code"),
                        );
                    }
                },
                _ => {
                    ok = false;
                    self.issue(
                        "invalid",
                        &at,
                        format!(
                            "an action must be a coding of {CONSENT_ACTION_SYSTEM} with a code"
                        ),
                    );
                }
            }
        }
        ok.then_some(actions)
    }

    /// The one Coding of a CodeableConcept that must have exactly one:
    /// codings of one concept are translations of each other, and a second
    /// one this mapping cannot check would be a second meaning.
    fn single_coding<'v>(&mut self, concept: &'v Value, at: &str) -> Option<&'v Value> {
        let Some(obj) = concept.as_object() else {
            self.issue("invalid", at, format!("{at} must be a CodeableConcept"));
            return None;
        };
        for key in obj.keys() {
            if !matches!(key.as_str(), "id" | "coding" | "text") {
                self.issue(
                    "not-supported",
                    &format!("{at}.{key}"),
                    format!("{at}.{key} is not supported"),
                );
            }
        }
        match obj.get("coding") {
            Some(Value::Array(codings)) if codings.len() == 1 => Some(&codings[0]),
            Some(Value::Array(codings)) if codings.len() > 1 => {
                self.issue(
                    "not-supported",
                    &format!("{at}.coding"),
                    "exactly one coding per concept is supported",
                );
                None
            }
            _ => {
                self.issue(
                    "required",
                    &format!("{at}.coding"),
                    "exactly one coding is required",
                );
                None
            }
        }
    }

    fn purpose(&mut self, purpose: Option<&Value>) -> Option<PurposeOfUse> {
        const AT: &str = "Consent.provision[0].purpose";
        let coding = match purpose {
            None => {
                self.issue(
                    "required",
                    AT,
                    "exactly one purpose of use is required (v3-ActReason, e.g. TREAT)",
                );
                return None;
            }
            Some(Value::Array(list)) if list.len() == 1 => &list[0],
            Some(Value::Array(list)) if list.is_empty() => {
                self.issue("required", AT, "exactly one purpose of use is required");
                return None;
            }
            Some(Value::Array(_)) => {
                self.issue(
                    "not-supported",
                    AT,
                    "exactly one purpose of use is supported: a grant is for one purpose; post one Consent per purpose",
                );
                return None;
            }
            Some(_) => {
                self.issue("invalid", AT, format!("{AT} must be an array of Codings"));
                return None;
            }
        };
        let at = format!("{AT}[0]");
        match coding_parts(coding) {
            Some((PURPOSE_OF_USE_SYSTEM, code)) => match code.parse::<PurposeOfUse>() {
                Ok(purpose) => Some(purpose),
                Err(e) => {
                    self.issue("not-supported", &at, e.to_string());
                    None
                }
            },
            _ => {
                self.issue(
                    "invalid",
                    &at,
                    format!("the purpose must be a coding of {PURPOSE_OF_USE_SYSTEM} with a code"),
                );
                None
            }
        }
    }

    /// Codings of one system, checked by `valid`, as a set.
    fn coded_set(
        &mut self,
        list: &Value,
        at: &str,
        systems: &[&str],
        valid: fn(&str) -> bool,
        what: &str,
    ) -> BTreeSet<String> {
        let mut set = BTreeSet::new();
        let Some(items) = list.as_array() else {
            self.issue("invalid", at, format!("{at} must be an array of Codings"));
            return set;
        };
        if items.is_empty() {
            self.issue("invalid", at, format!("{at} must not be empty"));
        }
        for (i, coding) in items.iter().enumerate() {
            let at = format!("{at}[{i}]");
            match coding_parts(coding) {
                Some((system, code)) if systems.contains(&system) => {
                    if valid(code) {
                        set.insert(code.to_owned());
                    } else {
                        self.issue("invalid", &at, format!("{code:?} is not {what}"));
                    }
                }
                _ => self.issue(
                    "not-supported",
                    &at,
                    format!("only codings of {} are supported here", systems[0]),
                ),
            }
        }
        set
    }

    fn resource_types(&mut self, types: &Value) -> BTreeSet<String> {
        self.coded_set(
            types,
            "Consent.provision[0].resourceType",
            &[FHIR_TYPES_SYSTEM, LEGACY_RESOURCE_TYPES_SYSTEM],
            is_resource_type_name,
            "a FHIR resource type name",
        )
    }

    fn categories(&mut self, labels: &Value) -> BTreeSet<String> {
        self.coded_set(
            labels,
            "Consent.provision[0].securityLabel",
            &[CATEGORY_SYSTEM],
            is_category,
            "a category code (1 to 64 of [a-z0-9._-])",
        )
    }

    fn data(&mut self, data: &Value) -> BTreeSet<String> {
        const AT: &str = "Consent.provision[0].data";
        let mut records = BTreeSet::new();
        let Some(items) = data.as_array() else {
            self.issue("invalid", AT, format!("{AT} must be an array"));
            return records;
        };
        if items.is_empty() {
            self.issue("invalid", AT, format!("{AT} must not be empty"));
        }
        for (i, item) in items.iter().enumerate() {
            let at = format!("{AT}[{i}]");
            let Some(obj) = item.as_object() else {
                self.issue("invalid", &at, format!("{at} must be an object"));
                continue;
            };
            for key in obj.keys() {
                if !matches!(key.as_str(), "id" | "meaning" | "reference") {
                    self.issue(
                        "not-supported",
                        &format!("{at}.{key}"),
                        format!("{at}.{key} is not supported"),
                    );
                }
            }
            match obj.get("meaning").map(Value::as_str) {
                Some(Some("instance")) => {}
                Some(Some(meaning @ ("related" | "dependents" | "authoredby"))) => self.issue(
                    "not-supported",
                    &format!("{at}.meaning"),
                    format!("data meaning {meaning:?} is not supported: a grant names records themselves (instance)"),
                ),
                None => self.issue(
                    "required",
                    &format!("{at}.meaning"),
                    "data.meaning is required; it must be instance",
                ),
                Some(_) => self.issue(
                    "invalid",
                    &format!("{at}.meaning"),
                    "data.meaning must be instance, related, dependents or authoredby",
                ),
            }
            match obj.get("reference") {
                Some(reference) => {
                    if let Some(record) = self.record(reference, &format!("{at}.reference")) {
                        records.insert(record);
                    }
                }
                None => self.issue(
                    "required",
                    &format!("{at}.reference"),
                    "data.reference is required",
                ),
            }
        }
        records
    }

    fn jurisdictions(&mut self, extensions: &Value) -> Option<BTreeSet<String>> {
        const AT: &str = "Consent.provision[0].extension";
        let Some(items) = extensions.as_array() else {
            self.issue("invalid", AT, format!("{AT} must be an array"));
            return None;
        };
        let mut countries = BTreeSet::new();
        let mut ok = true;
        for (i, ext) in items.iter().enumerate() {
            let at = format!("{AT}[{i}]");
            if ext.get("url").and_then(Value::as_str) != Some(JURISDICTION_EXTENSION) {
                ok = false;
                self.issue(
                    "not-supported",
                    &at,
                    format!("the only extension understood on a provision is {JURISDICTION_EXTENSION}: an unknown one could narrow the grant in a way it would not hold"),
                );
                continue;
            }
            let code = ext
                .get("valueCodeableConcept")
                .and_then(|c| c.get("coding"))
                .and_then(Value::as_array)
                .filter(|codings| codings.len() == 1)
                .and_then(|codings| coding_parts(&codings[0]));
            match code {
                Some((ISO_3166_SYSTEM, code)) if is_country_code(code) => {
                    countries.insert(code.to_owned());
                }
                _ => {
                    ok = false;
                    self.issue(
                        "invalid",
                        &at,
                        format!("a jurisdiction must be a valueCodeableConcept with one coding of {ISO_3166_SYSTEM} holding an ISO 3166-1 alpha-2 code such as FR"),
                    );
                }
            }
        }
        ok.then_some(countries)
    }
}

/// `(system, code)` of a Coding that has both as strings.
fn coding_parts(coding: &Value) -> Option<(&str, &str)> {
    Some((
        coding.get("system")?.as_str()?,
        coding.get("code")?.as_str()?,
    ))
}

/// Unix seconds of a FHIR dateTime given to the second with a timezone
/// (`2026-03-01T09:00:00+01:00`). Partial dates are refused because a
/// grant's bounds are instants, and a day without a timezone is not one;
/// fractions of a second are refused unless zero, because the ledger keeps
/// whole seconds and rounding would move a bound.
pub(crate) fn parse_date_time(s: &str) -> Result<i64, String> {
    const SHAPE: &str =
        "must be a dateTime to the second with a timezone, e.g. 2026-03-01T09:00:00Z";
    let b = s.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        b.get(range)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    let shape = digits(0..4)
        && b.get(4) == Some(&b'-')
        && digits(5..7)
        && b.get(7) == Some(&b'-')
        && digits(8..10)
        && b.get(10) == Some(&b'T')
        && digits(11..13)
        && b.get(13) == Some(&b':')
        && digits(14..16)
        && b.get(16) == Some(&b':')
        && digits(17..19);
    if !shape {
        return Err(format!("{s:?} {SHAPE}"));
    }
    let mut zone = &s[19..];
    if let Some(fraction) = zone.strip_prefix('.') {
        let n = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 || n > 9 {
            return Err(format!("{s:?} has a malformed fraction of a second"));
        }
        if fraction[..n].bytes().any(|d| d != b'0') {
            return Err(format!(
                "{s:?} has a fraction of a second; grants are kept in whole seconds"
            ));
        }
        zone = &fraction[n..];
    }
    let zb = zone.as_bytes();
    let zone_ok = zone == "Z"
        || (zb.len() == 6
            && (zb[0] == b'+' || zb[0] == b'-')
            && zb[1..3].iter().all(u8::is_ascii_digit)
            && zb[3] == b':'
            && zb[4..6].iter().all(u8::is_ascii_digit));
    if !zone_ok {
        return Err(format!("{s:?} {SHAPE}"));
    }
    if &s[17..19] == "60" {
        return Err(format!(
            "{s:?} is a leap second, which Unix time cannot name"
        ));
    }
    if &s[0..4] == "0000" {
        return Err(format!("{s:?}: FHIR years start at 0001"));
    }
    let parsed = OffsetDateTime::parse(s, &Rfc3339)
        .map_err(|e| format!("{s:?} is not a valid date and time: {e}"))?;
    Ok(parsed.unix_timestamp())
}

/// A FHIR instant in UTC (`2026-03-01T08:00:00Z`), or `None` outside the
/// years 0001 to 9999 that FHIR can write.
pub(crate) fn format_instant(secs: i64) -> Option<String> {
    let t = OffsetDateTime::from_unix_timestamp(secs).ok()?;
    if t.year() < 1 {
        return None;
    }
    t.format(&Rfc3339).ok()
}

/// The FHIR date (UTC) of an instant.
fn format_date(secs: i64) -> Option<String> {
    format_instant(secs).and_then(|s| s.get(..10).map(str::to_owned))
}

/// A Period; a bound FHIR cannot write (beyond year 9999, before year 1) is
/// left out, which FHIR reads as open on that side, as such a bound is.
fn period_json(not_before: i64, not_after: i64) -> Value {
    let mut period = Map::new();
    if let Some(start) = format_instant(not_before) {
        period.insert("start".into(), Value::String(start));
    }
    if let Some(end) = format_instant(not_after) {
        period.insert("end".into(), Value::String(end));
    }
    Value::Object(period)
}

fn coding(system: &str, code: &str) -> Value {
    json!({ "system": system, "code": code })
}

/// A ledger grant as an R5 Consent.
///
/// `grant_id` (64 hex digits) is the Consent's id; `active` is whether the
/// grant is in force (neither revoked nor expired), shown as status
/// `active` or `inactive`. `date` is the day the grant takes effect, because
/// the ledger keeps no signing time. The period appears on the Consent and
/// on its provision, identically; a bound beyond what FHIR can write (after
/// year 9999) is left open. The ledger position is given by the extensions
/// of [`crate::audit::ledger_extensions`]. For terms that hold a valid
/// grant, [`consent_to_terms`] maps the result back to `terms`.
pub fn terms_to_consent(
    grant_id: &str,
    terms: &GrantTerms,
    active: bool,
    ledger: &LedgerLink,
) -> Value {
    let period = period_json(terms.not_before, terms.not_after);
    let mut provision = Map::new();
    if !terms.jurisdictions.is_empty() {
        let extensions: Vec<Value> = terms
            .jurisdictions
            .iter()
            .map(|country| {
                json!({
                    "url": JURISDICTION_EXTENSION,
                    "valueCodeableConcept": { "coding": [coding(ISO_3166_SYSTEM, country)] },
                })
            })
            .collect();
        provision.insert("extension".into(), Value::Array(extensions));
    }
    // A grant open on both sides FHIR can write ([i64::MIN, i64::MAX)) has
    // no Period to show: an empty one is not valid FHIR.
    let has_period = period.as_object().is_some_and(|p| !p.is_empty());
    if has_period {
        provision.insert("period".into(), period.clone());
    }
    provision.insert(
        "actor".into(),
        json!([{
            "role": { "coding": [{
                "system": PARTICIPATION_TYPE_SYSTEM,
                "code": "IRCP",
                "display": "information recipient",
            }] },
            "reference": did_reference(&terms.grantee),
        }]),
    );
    let actions: Vec<Value> = terms
        .actions
        .iter()
        .map(|action| {
            let (code, display) = match action {
                Action::Read => ("access", "Access"),
                Action::Write => ("correct", "Access and Correct"),
            };
            json!({ "coding": [{ "system": CONSENT_ACTION_SYSTEM, "code": code, "display": display }] })
        })
        .collect();
    provision.insert("action".into(), Value::Array(actions));
    if !terms.scope.categories.is_empty() {
        let labels = terms
            .scope
            .categories
            .iter()
            .map(|c| coding(CATEGORY_SYSTEM, c))
            .collect();
        provision.insert("securityLabel".into(), Value::Array(labels));
    }
    provision.insert(
        "purpose".into(),
        json!([{
            "system": PURPOSE_OF_USE_SYSTEM,
            "code": terms.purpose.code(),
            "display": terms.purpose.display(),
        }]),
    );
    if !terms.scope.resource_types.is_empty() {
        let types = terms
            .scope
            .resource_types
            .iter()
            .map(|t| coding(FHIR_TYPES_SYSTEM, t))
            .collect();
        provision.insert("resourceType".into(), Value::Array(types));
    }
    if !terms.scope.record_ids.is_empty() {
        let data = terms
            .scope
            .record_ids
            .iter()
            .map(|r| json!({ "meaning": "instance", "reference": record_reference(r) }))
            .collect();
        provision.insert("data".into(), Value::Array(data));
    }

    let mut consent = Map::new();
    consent.insert("resourceType".into(), json!("Consent"));
    consent.insert("id".into(), json!(grant_id));
    consent.insert("extension".into(), ledger_extensions(ledger));
    consent.insert(
        "status".into(),
        json!(if active { "active" } else { "inactive" }),
    );
    consent.insert(
        "category".into(),
        json!([{ "coding": [{
            "system": LOINC_SYSTEM,
            "code": PATIENT_CONSENT_CODE,
            "display": "Patient Consent",
        }] }]),
    );
    consent.insert("subject".into(), did_reference(&terms.patient));
    if let Some(date) = format_date(terms.not_before) {
        consent.insert("date".into(), json!(date));
    }
    if has_period {
        consent.insert("period".into(), period);
    }
    consent.insert("grantor".into(), json!([did_reference(&terms.patient)]));
    consent.insert("grantee".into(), json!([did_reference(&terms.grantee)]));
    consent.insert("decision".into(), json!("permit"));
    consent.insert("provision".into(), json!([Value::Object(provision)]));
    Value::Object(consent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PATIENT: &str = "did:key:z6MkqBCqMwNoeMgTBQ8sMFnsk86AJq3Jq3QjDtBLmM8rSdUs";
    const CLINICIAN: &str = "did:key:z6MkfihynfNmjGKrZDir3qT9AZ5ZVpsa33KsEgfy8AztxDCF";
    const RECORD: &str = "9e728862c635e8c3468f6dfbb70024e3c5f91d244632466af63c1e7ac462a1d0";

    fn link() -> LedgerLink {
        LedgerLink {
            index: 7,
            proof_url: "https://node.example/v1/proofs/7".into(),
        }
    }

    fn terms() -> GrantTerms {
        GrantTerms {
            patient: PATIENT.into(),
            grantee: CLINICIAN.into(),
            scope: Scope::categories(["lab"]),
            actions: [Action::Read].into(),
            purpose: PurposeOfUse::Treatment,
            not_before: 1_795_295_657,
            not_after: 1_797_887_657,
            jurisdictions: BTreeSet::new(),
        }
    }

    /// A Consent a client would post for `terms()`, written by hand.
    fn posted() -> Value {
        json!({
            "resourceType": "Consent",
            "status": "active",
            "category": [{"coding": [{"system": LOINC_SYSTEM, "code": PATIENT_CONSENT_CODE}]}],
            "subject": did_reference(PATIENT),
            "date": "2026-11-21",
            "decision": "permit",
            "provision": [{
                "period": {"start": "2026-11-21T21:14:17Z", "end": "2026-12-21T21:14:17Z"},
                "actor": [{"reference": did_reference(CLINICIAN)}],
                "action": [{"coding": [{"system": CONSENT_ACTION_SYSTEM, "code": "access"}]}],
                "purpose": [{"system": PURPOSE_OF_USE_SYSTEM, "code": "TREAT"}],
                "securityLabel": [{"system": CATEGORY_SYSTEM, "code": "lab"}],
            }],
        })
    }

    fn refused(consent: &Value) -> Vec<Issue> {
        consent_to_terms(consent, &IdentifiersOnly).expect_err("the Consent must be refused")
    }

    fn has(issues: &[Issue], code: &str, at: &str) -> bool {
        issues
            .iter()
            .any(|i| i.code == code && i.expression.as_deref() == Some(at))
    }

    #[test]
    fn a_hand_written_consent_maps_to_its_terms() {
        assert_eq!(consent_to_terms(&posted(), &IdentifiersOnly), Ok(terms()));
    }

    #[test]
    fn the_consent_of_a_grant_has_the_r5_shape() {
        let mut t = terms();
        t.scope.resource_types.insert("Observation".into());
        t.scope.record_ids.insert(RECORD.into());
        t.actions.insert(Action::Write);
        t.jurisdictions.insert("FR".into());
        let c = terms_to_consent(&"ab".repeat(32), &t, true, &link());
        assert_eq!(c["resourceType"], "Consent");
        assert_eq!(c["id"], "ab".repeat(32));
        assert_eq!(c["status"], "active");
        assert_eq!(c["decision"], "permit");
        assert_eq!(c["category"][0]["coding"][0]["code"], "59284-0");
        assert_eq!(c["subject"], did_reference(PATIENT));
        assert_eq!(c["grantor"][0], did_reference(PATIENT));
        assert_eq!(c["date"], "2026-11-21");
        let p = &c["provision"][0];
        assert_eq!(p["period"]["start"], "2026-11-21T21:14:17Z");
        assert_eq!(p["period"], c["period"]);
        assert_eq!(p["actor"][0]["role"]["coding"][0]["code"], "IRCP");
        assert_eq!(p["actor"][0]["reference"], did_reference(CLINICIAN));
        assert_eq!(p["action"][0]["coding"][0]["code"], "access");
        assert_eq!(p["action"][1]["coding"][0]["code"], "correct");
        assert_eq!(p["purpose"][0]["code"], "TREAT");
        assert_eq!(p["resourceType"][0]["system"], FHIR_TYPES_SYSTEM);
        assert_eq!(p["securityLabel"][0]["code"], "lab");
        assert_eq!(p["data"][0]["meaning"], "instance");
        assert_eq!(p["data"][0]["reference"], record_reference(RECORD));
        assert_eq!(p["extension"][0]["url"], JURISDICTION_EXTENSION);
        assert_eq!(
            p["extension"][0]["valueCodeableConcept"]["coding"][0]["code"],
            "FR"
        );
        let inactive = terms_to_consent("x", &t, false, &link());
        assert_eq!(inactive["status"], "inactive");
        assert_eq!(consent_to_terms(&c, &IdentifiersOnly), Ok(t));
    }

    #[test]
    fn periods_need_both_instants_with_a_timezone() {
        assert_eq!(parse_date_time("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_date_time("1970-01-01T01:00:00+01:00"), Ok(0));
        assert_eq!(parse_date_time("1970-01-01T00:00:00.000Z"), Ok(0));
        assert_eq!(
            parse_date_time("2016-06-23T17:02:33+10:00"),
            Ok(1_466_665_353)
        );
        for bad in [
            "2019-01-01",
            "2019-01",
            "2019-01-01T00:00Z",
            "2019-01-01T00:00:00",
            "2019-01-01t00:00:00Z",
            "2019-01-01T00:00:00.5Z",
            "2019-01-01T00:00:00.Z",
            "2016-12-31T23:59:60Z",
            "0000-01-01T00:00:00Z",
            "2019-02-30T00:00:00Z",
            "2019-01-01T00:00:00+1:00",
            "",
        ] {
            assert!(parse_date_time(bad).is_err(), "{bad}");
        }
        let mut c = posted();
        c["provision"][0]["period"] = json!({"start": "2026-01-01T00:00:00Z"});
        assert!(has(
            &refused(&c),
            "required",
            "Consent.provision[0].period.end"
        ));
        c["provision"][0]["period"] =
            json!({"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"});
        assert!(has(
            &refused(&c),
            "invalid",
            "Consent.provision[0].period.end"
        ));
        c["provision"][0]["period"] = json!({"start": "2026-01-01", "end": "2026-02-01"});
        assert!(has(
            &refused(&c),
            "invalid",
            "Consent.provision[0].period.start"
        ));
    }

    #[test]
    fn the_period_may_be_on_the_consent() {
        let mut c = posted();
        let period = c["provision"][0]["period"].take();
        c["provision"][0]
            .as_object_mut()
            .map(|p| p.remove("period"));
        c["period"] = period.clone();
        assert_eq!(consent_to_terms(&c, &IdentifiersOnly), Ok(terms()));
        c["provision"][0]["period"] = period;
        assert_eq!(consent_to_terms(&c, &IdentifiersOnly), Ok(terms()));
        c["period"]["end"] = json!("2027-01-01T00:00:00Z");
        assert!(has(&refused(&c), "not-supported", "Consent.period"));
        c.as_object_mut().map(|p| p.remove("period"));
        c["provision"][0]
            .as_object_mut()
            .map(|p| p.remove("period"));
        assert!(has(&refused(&c), "required", "Consent.provision[0].period"));
    }

    #[test]
    fn actions_map_to_read_and_write() {
        let mut c = posted();
        c["provision"][0]["action"] = json!([
            {"coding": [{"system": CONSENT_ACTION_SYSTEM, "code": "use"}]},
            {"coding": [{"system": CONSENT_ACTION_SYSTEM, "code": "correct"}], "text": "fix errors"},
        ]);
        let t = consent_to_terms(&c, &IdentifiersOnly).expect("maps");
        assert_eq!(t.actions, [Action::Read, Action::Write].into());
        for (action, code) in [
            (
                json!([{"coding": [{"system": CONSENT_ACTION_SYSTEM, "code": "disclose"}]}]),
                "not-supported",
            ),
            (
                json!([{"coding": [{"system": CONSENT_ACTION_SYSTEM, "code": "collect"}]}]),
                "not-supported",
            ),
            (
                json!([{"coding": [{"system": CONSENT_ACTION_SYSTEM, "code": "delete"}]}]),
                "invalid",
            ),
            (
                json!([{"coding": [{"system": "urn:local", "code": "access"}]}]),
                "invalid",
            ),
        ] {
            c["provision"][0]["action"] = action;
            assert!(
                has(
                    &refused(&c),
                    code,
                    "Consent.provision[0].action[0].coding[0]"
                ),
                "{code}"
            );
        }
        c["provision"][0]["action"] = json!([{"text": "read"}]);
        assert!(has(
            &refused(&c),
            "required",
            "Consent.provision[0].action[0].coding"
        ));
        c["provision"][0]["action"] = json!([]);
        assert!(has(&refused(&c), "required", "Consent.provision[0].action"));
    }

    #[test]
    fn purposes_are_one_known_code() {
        let mut c = posted();
        c["provision"][0]["purpose"] = json!([{"system": PURPOSE_OF_USE_SYSTEM, "code": "HRESCH"}]);
        assert_eq!(
            consent_to_terms(&c, &IdentifiersOnly).map(|t| t.purpose),
            Ok(PurposeOfUse::Research)
        );
        c["provision"][0]["purpose"] = json!([{"system": PURPOSE_OF_USE_SYSTEM, "code": "BTG"}]);
        assert!(has(
            &refused(&c),
            "not-supported",
            "Consent.provision[0].purpose[0]"
        ));
        c["provision"][0]["purpose"] = json!([{"system": "urn:other", "code": "TREAT"}]);
        assert!(has(
            &refused(&c),
            "invalid",
            "Consent.provision[0].purpose[0]"
        ));
        c["provision"][0]["purpose"] = json!([
            {"system": PURPOSE_OF_USE_SYSTEM, "code": "TREAT"},
            {"system": PURPOSE_OF_USE_SYSTEM, "code": "HPAYMT"}
        ]);
        assert!(has(
            &refused(&c),
            "not-supported",
            "Consent.provision[0].purpose"
        ));
    }

    #[test]
    fn scope_comes_from_types_categories_and_records() {
        let mut c = posted();
        c["provision"][0]
            .as_object_mut()
            .map(|p| p.remove("securityLabel"));
        assert!(has(&refused(&c), "required", "Consent.provision[0]"));
        c["provision"][0]["resourceType"] = json!([
            {"system": FHIR_TYPES_SYSTEM, "code": "Observation"},
            {"system": LEGACY_RESOURCE_TYPES_SYSTEM, "code": "DiagnosticReport"},
        ]);
        c["provision"][0]["data"] =
            json!([{"meaning": "instance", "reference": record_reference(RECORD)}]);
        let t = consent_to_terms(&c, &IdentifiersOnly).expect("maps");
        assert_eq!(
            t.scope,
            Scope {
                categories: BTreeSet::new(),
                resource_types: ["DiagnosticReport".to_owned(), "Observation".to_owned()].into(),
                record_ids: [RECORD.to_owned()].into(),
            }
        );
        c["provision"][0]["data"][0]["meaning"] = json!("related");
        assert!(has(
            &refused(&c),
            "not-supported",
            "Consent.provision[0].data[0].meaning"
        ));
        c["provision"][0]["data"] =
            json!([{"meaning": "instance", "reference": {"reference": "Observation/1"}}]);
        assert!(has(
            &refused(&c),
            "invalid",
            "Consent.provision[0].data[0].reference"
        ));
        c["provision"][0]["data"] = json!([]);
        assert!(has(&refused(&c), "invalid", "Consent.provision[0].data"));
        c["provision"][0].as_object_mut().map(|p| p.remove("data"));
        c["provision"][0]["resourceType"] =
            json!([{"system": FHIR_TYPES_SYSTEM, "code": "observation"}]);
        assert!(has(
            &refused(&c),
            "invalid",
            "Consent.provision[0].resourceType[0]"
        ));
        c["provision"][0]["resourceType"] =
            json!([{"system": FHIR_TYPES_SYSTEM, "code": "Observation"}]);
        c["provision"][0]["securityLabel"] = json!([{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]);
        assert!(has(
            &refused(&c),
            "not-supported",
            "Consent.provision[0].securityLabel[0]"
        ));
        c["provision"][0]["securityLabel"] =
            json!([{"system": CATEGORY_SYSTEM, "code": "Mental Health"}]);
        assert!(has(
            &refused(&c),
            "invalid",
            "Consent.provision[0].securityLabel[0]"
        ));
    }

    #[test]
    fn unsupported_elements_are_refused_not_dropped() {
        for (element, at) in [
            ("provision", "Consent.provision[0].provision"),
            ("expression", "Consent.provision[0].expression"),
            ("dataPeriod", "Consent.provision[0].dataPeriod"),
            ("code", "Consent.provision[0].code"),
            ("documentType", "Consent.provision[0].documentType"),
            (
                "modifierExtension",
                "Consent.provision[0].modifierExtension",
            ),
        ] {
            let mut c = posted();
            c["provision"][0][element] = json!([{}]);
            assert!(has(&refused(&c), "not-supported", at), "{element}");
        }
        for element in [
            "modifierExtension",
            "implicitRules",
            "contained",
            "policyText",
            "verification",
            "nonsense",
        ] {
            let mut c = posted();
            c[element] = json!([{}]);
            assert!(
                has(&refused(&c), "not-supported", &format!("Consent.{element}")),
                "{element}"
            );
        }
        let mut c = posted();
        c["provision"][0]["extension"] =
            json!([{"url": "https://example.org/ext", "valueString": "x"}]);
        assert!(has(
            &refused(&c),
            "not-supported",
            "Consent.provision[0].extension[0]"
        ));
        // Elements that do not change the grant are accepted and ignored.
        let mut c = posted();
        c["id"] = json!("anything");
        c["meta"] = json!({"versionId": "1"});
        c["identifier"] = json!([{"value": "x"}]);
        c["grantor"] = json!([{"reference": "RelatedPerson/peter"}]);
        c["controller"] = json!([{"reference": "Organization/f001"}]);
        c["regulatoryBasis"] = json!([{"text": "GDPR"}]);
        c["extension"] = json!([{"url": "https://example.org/note", "valueString": "x"}]);
        c["_date"] = json!({"id": "d"});
        c["provision"][0]["actor"][0]["role"] = json!({"text": "anyone"});
        assert_eq!(consent_to_terms(&c, &IdentifiersOnly), Ok(terms()));
    }

    #[test]
    fn status_decision_and_parties() {
        let mut c = posted();
        c["status"] = json!("draft");
        assert!(has(&refused(&c), "not-supported", "Consent.status"));
        let mut c = posted();
        c.as_object_mut().map(|o| o.remove("status"));
        assert!(has(&refused(&c), "required", "Consent.status"));
        let mut c = posted();
        c["decision"] = json!("deny");
        assert!(has(&refused(&c), "not-supported", "Consent.decision"));
        let mut c = posted();
        c["subject"] = json!({"reference": "Patient/123"});
        assert!(has(&refused(&c), "invalid", "Consent.subject"));
        let mut c = posted();
        c["provision"][0]["actor"][0]["reference"] = did_reference(PATIENT);
        assert!(has(
            &refused(&c),
            "invalid",
            "Consent.provision[0].actor[0].reference"
        ));
        let mut c = posted();
        c["provision"][0]["actor"] = json!([
            {"reference": did_reference(CLINICIAN)},
            {"reference": did_reference("did:web:clinic.example")}
        ]);
        assert!(has(
            &refused(&c),
            "not-supported",
            "Consent.provision[0].actor"
        ));
        let mut c = posted();
        c["provision"][0]["actor"][0]["role"] = json!("IRCP");
        assert!(has(
            &refused(&c),
            "invalid",
            "Consent.provision[0].actor[0].role"
        ));
        let mut c = posted();
        c["grantee"] = json!([did_reference(CLINICIAN)]);
        assert_eq!(consent_to_terms(&c, &IdentifiersOnly), Ok(terms()));
        c["grantee"] = json!([did_reference("did:web:other.example")]);
        assert!(has(&refused(&c), "invalid", "Consent.grantee"));
        let mut c = posted();
        c["provision"] = json!([posted()["provision"][0], posted()["provision"][0]]);
        assert!(has(&refused(&c), "not-supported", "Consent.provision"));
        assert!(consent_to_terms(&json!([]), &IdentifiersOnly).is_err());
        let mut c = posted();
        c["resourceType"] = json!("Contract");
        assert!(has(&refused(&c), "invalid", "Consent.resourceType"));
    }

    /// A server resolving literal references, as the node does.
    struct Directory;

    impl Resolver for Directory {
        fn did(&self, reference: &Value) -> Option<String> {
            match reference.get("reference")?.as_str()? {
                "Patient/p1" => Some(PATIENT.into()),
                "Practitioner/c1" => Some(CLINICIAN.into()),
                _ => None,
            }
        }

        fn record(&self, reference: &Value) -> Option<String> {
            (reference.get("reference")?.as_str()? == "Observation/o1").then(|| RECORD.into())
        }
    }

    #[test]
    fn literal_references_go_through_the_resolver() {
        let mut c = posted();
        c["subject"] = json!({"reference": "Patient/p1"});
        c["provision"][0]["actor"][0]["reference"] = json!({"reference": "Practitioner/c1"});
        c["provision"][0]["data"] =
            json!([{"meaning": "instance", "reference": {"reference": "Observation/o1"}}]);
        let t = consent_to_terms(&c, &Directory).expect("maps");
        assert_eq!(
            (t.patient.as_str(), t.grantee.as_str()),
            (PATIENT, CLINICIAN)
        );
        assert_eq!(t.scope.record_ids, [RECORD.to_owned()].into());
        // An identifier and a reference that disagree are refused.
        c["subject"] = json!({"reference": "Patient/p1", "identifier": {"system": crate::DID_IDENTIFIER_SYSTEM, "value": CLINICIAN}});
        assert!(has(
            &consent_to_terms(&c, &Directory).unwrap_err(),
            "invalid",
            "Consent.subject"
        ));
    }

    #[test]
    fn unwritable_bounds_are_left_open() {
        let t = GrantTerms {
            not_after: i64::MAX,
            ..terms()
        };
        let c = terms_to_consent("g", &t, true, &link());
        assert_eq!(c["period"]["start"], "2026-11-21T21:14:17Z");
        assert!(c["period"].get("end").is_none());
        assert!(has(
            &refused(&c),
            "required",
            "Consent.provision[0].period.end"
        ));
        let forever = GrantTerms {
            not_before: i64::MIN,
            not_after: i64::MAX,
            ..terms()
        };
        let c = terms_to_consent("g", &forever, true, &link());
        assert!(c.get("period").is_none() && c["provision"][0].get("period").is_none());
        assert!(c.get("date").is_none());
        assert_eq!(crate::validate::validate(&c, None).err(), None);
    }

    #[test]
    fn grants_convert_both_ways() {
        let t = GrantTerms {
            jurisdictions: ["FR".to_owned()].into(),
            ..terms()
        };
        let g = t.to_grant("g1".into());
        assert_eq!(g.validate(), Ok(()));
        assert_eq!(GrantTerms::from_grant(&g), t);
    }

    fn did() -> impl Strategy<Value = String> {
        prop_oneof![
            "z6Mk[1-9A-HJ-NP-Za-km-z]{44}".prop_map(|id| format!("did:key:{id}")),
            "[a-z]{1,12}\\.example(:[a-z0-9]{1,8})?".prop_map(|id| format!("did:web:{id}")),
        ]
    }

    /// Valid terms: the ledger's constraints, and bounds FHIR can write.
    fn valid_terms() -> impl Strategy<Value = GrantTerms> {
        // 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z.
        const FIRST: i64 = -62_135_596_800;
        const LAST: i64 = 253_402_300_799;
        let scope = (
            proptest::collection::btree_set("[a-z0-9][a-z0-9._-]{0,20}", 0..3),
            proptest::collection::btree_set("[A-Z][A-Za-z]{0,20}", 0..3),
            proptest::collection::btree_set("[0-9a-f]{64}", 0..3),
        )
            .prop_filter_map(
                "a scope covers something",
                |(categories, resource_types, record_ids)| {
                    let scope = Scope {
                        categories,
                        resource_types,
                        record_ids,
                    };
                    (!scope.is_empty()).then_some(scope)
                },
            );
        let actions = prop_oneof![
            Just(BTreeSet::from([Action::Read])),
            Just(BTreeSet::from([Action::Write])),
            Just(BTreeSet::from([Action::Read, Action::Write])),
        ];
        let purpose = proptest::sample::select(PurposeOfUse::ALL.to_vec());
        let countries = proptest::collection::btree_set(
            proptest::sample::select(vec!["FR", "DE", "US", "JP", "BR", "ZA"]),
            0..3,
        );
        let period = (FIRST..LAST).prop_flat_map(|start| (Just(start), start + 1..=LAST));
        (did(), did(), scope, actions, purpose, period, countries)
            .prop_filter("the grantee is not the patient", |(p, g, ..)| p != g)
            .prop_map(
                |(
                    patient,
                    grantee,
                    scope,
                    actions,
                    purpose,
                    (not_before, not_after),
                    countries,
                )| {
                    GrantTerms {
                        patient,
                        grantee,
                        scope,
                        actions,
                        purpose,
                        not_before,
                        not_after,
                        jurisdictions: countries.into_iter().map(str::to_owned).collect(),
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn terms_survive_a_round_trip(t in valid_terms(), active: bool, index: u64) {
            let g = t.to_grant("g".into());
            prop_assert_eq!(g.validate(), Ok(()));
            let link = LedgerLink { index, proof_url: format!("https://node.example/v1/proofs/{index}") };
            let consent = terms_to_consent(&"0f".repeat(32), &t, active, &link);
            // Round trip through bytes, as a client would see it.
            let text = serde_json::to_string(&consent).expect("serializes");
            let consent: Value = serde_json::from_str(&text).expect("parses");
            if active {
                prop_assert_eq!(consent_to_terms(&consent, &IdentifiersOnly), Ok(t));
            } else {
                // An inactive grant's Consent cannot be posted again as it is.
                let issues = consent_to_terms(&consent, &IdentifiersOnly).unwrap_err();
                prop_assert!(has(&issues, "not-supported", "Consent.status"));
            }
        }
    }
}
