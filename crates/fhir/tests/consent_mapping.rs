//! The Consent mapping against the R5 examples, and the ledger views
//! (Consent, AuditEvent, Provenance) against the structural validator.

use std::collections::BTreeSet;

use hygeia_fhir::audit::{audit_event, provenance, AccessView, Signer, VersionView};
use hygeia_fhir::consent::{
    consent_to_terms, terms_to_consent, GrantTerms, IdentifiersOnly, LedgerLink, Resolver,
};
use hygeia_fhir::outcome::Issue;
use hygeia_fhir::reference::did_reference;
use hygeia_fhir::types::ResourceType;
use hygeia_fhir::validate::validate;
use hygeia_policy::{Action, PurposeOfUse, Scope};
use serde_json::Value;

const PATIENT: &str = "did:key:z6MkqBCqMwNoeMgTBQ8sMFnsk86AJq3Jq3QjDtBLmM8rSdUs";
const CLINICIAN: &str = "did:key:z6MkfihynfNmjGKrZDir3qT9AZ5ZVpsa33KsEgfy8AztxDCF";
const CLINIC: &str = "did:web:clinic.example";
const NODE: &str = "did:key:z6MkfghLVSsjRdjjzbGQaZYjsfDpELjWM8FwEUm2teg9omPP";
const RECORD: &str = "9e728862c635e8c3468f6dfbb70024e3c5f91d244632466af63c1e7ac462a1d0";
const GRANT: &str = "25ced39419e63254e5ff6df0059fb6c64d7d09c973139297b5718dca65290877";

fn example(name: &str) -> Value {
    let path = format!(
        "{}/../../../shared/vectors/fhir-r5/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A server on which the examples' participants exist and have DIDs, so
/// that the examples are refused for their shape, not for unknown parties.
struct ExampleServer;

impl Resolver for ExampleServer {
    fn did(&self, reference: &Value) -> Option<String> {
        match reference.get("reference")?.as_str()? {
            "Patient/f001" | "Patient/example" | "Patient/xcda" => Some(PATIENT.into()),
            "Organization/f201" | "Organization/f001" => Some(CLINIC.into()),
            _ => IdentifiersOnly.did(reference),
        }
    }

    fn record(&self, reference: &Value) -> Option<String> {
        match reference.get("reference")?.as_str()? {
            "MedicationRequest/medrx0305" => Some(RECORD.into()),
            _ => IdentifiersOnly.record(reference),
        }
    }
}

/// The example's issues, as `(code, expression)`.
fn refusal(name: &str) -> Vec<(String, String)> {
    let issues: Vec<Issue> =
        consent_to_terms(&example(name), &ExampleServer).expect_err("the example must be refused");
    for issue in &issues {
        assert!(
            ["not-supported", "invalid", "required"].contains(&issue.code),
            "{name}: {issue:?}"
        );
        assert!(issue.expression.is_some(), "{name}: {issue:?}");
        assert!(!issue.diagnostics.is_empty(), "{name}: {issue:?}");
    }
    issues
        .into_iter()
        .map(|i| (i.code.to_owned(), i.expression.unwrap_or_default()))
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(c, e)| ((*c).to_owned(), (*e).to_owned()))
        .collect()
}

/// `consent-example-Emergency`: a deny, with a nested provision for
/// emergencies. A grant cannot say "deny" (access is denied unless a grant
/// permits it) nor carry exceptions; it has no action and no period either.
#[test]
fn emergency_example_is_refused_as_a_deny_with_exceptions() {
    assert_eq!(
        refusal("Consent-consent-example-Emergency.json"),
        pairs(&[
            ("not-supported", "Consent.decision"),
            ("not-supported", "Consent.provision[0].provision"),
            ("required", "Consent.provision[0].period"),
            ("required", "Consent.provision[0].action"),
            ("required", "Consent.provision[0].purpose"),
            ("required", "Consent.provision[0]"),
        ])
    );
}

/// `consent-example-basic`: a deny for everyone over a period given as
/// dates. Besides the decision, its period bounds are days, not instants,
/// and it names no actor, action, purpose or scope.
#[test]
fn basic_example_is_refused_as_a_deny_for_everyone() {
    assert_eq!(
        refusal("Consent-consent-example-basic.json"),
        pairs(&[
            ("not-supported", "Consent.decision"),
            ("invalid", "Consent.provision[0].period.start"),
            ("invalid", "Consent.provision[0].period.end"),
            ("required", "Consent.provision[0].actor"),
            ("required", "Consent.provision[0].action"),
            ("required", "Consent.provision[0].purpose"),
            ("required", "Consent.provision[0]"),
        ])
    );
}

/// `consent-example-notThis`: a permit whose data is `related` to a
/// prescription. A grant names records themselves (`instance`), and this
/// one has no actor, action, purpose or period.
#[test]
fn not_this_example_is_refused_for_related_data() {
    assert_eq!(
        refusal("Consent-consent-example-notThis.json"),
        pairs(&[
            ("required", "Consent.provision[0].period"),
            ("required", "Consent.provision[0].actor"),
            ("required", "Consent.provision[0].action"),
            ("required", "Consent.provision[0].purpose"),
            ("not-supported", "Consent.provision[0].data[0].meaning"),
        ])
    );
}

/// `consent-example-smartonfhir`: the grantee, actions and resource types
/// sit in a nested provision, which a grant cannot hold; the outer one has
/// only a period.
#[test]
fn smart_example_is_refused_for_its_nested_provision() {
    assert_eq!(
        refusal("Consent-consent-example-smartonfhir.json"),
        pairs(&[
            ("not-supported", "Consent.provision[0].provision"),
            ("required", "Consent.provision[0].actor"),
            ("required", "Consent.provision[0].action"),
            ("required", "Consent.provision[0].purpose"),
            ("required", "Consent.provision[0]"),
        ])
    );
}

/// The SMART example, flattened to the one provision a grant is (its
/// nested rule lifted up, an actor and a purpose added), maps: what was
/// refused was the shape, not the content.
#[test]
fn smart_example_flattened_maps() {
    let mut c = example("Consent-consent-example-smartonfhir.json");
    let inner = c["provision"][0]["provision"][0].clone();
    let provision = &mut c["provision"][0];
    if let Some(p) = provision.as_object_mut() {
        p.remove("provision");
    }
    provision["action"] = inner["action"].clone();
    provision["resourceType"] = inner["resourceType"].clone();
    provision["actor"] = serde_json::json!([{"reference": {"reference": "Organization/f001"}}]);
    provision["purpose"] = serde_json::json!([{
        "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
        "code": "TREAT"
    }]);
    let terms = consent_to_terms(&c, &ExampleServer).expect("the flattened example maps");
    assert_eq!(
        terms,
        GrantTerms {
            patient: PATIENT.into(),
            grantee: CLINIC.into(),
            scope: Scope::resource_types(["MedicationRequest"]),
            actions: [Action::Read, Action::Write].into(),
            purpose: PurposeOfUse::Treatment,
            // 2016-06-23T17:02:33+10:00 and half an hour later.
            not_before: 1_466_665_353,
            not_after: 1_466_667_153,
            jurisdictions: BTreeSet::new(),
        }
    );
}

fn assert_valid(resource: &Value, expected: ResourceType) {
    match validate(resource, None) {
        Ok(t) => assert_eq!(t, expected),
        Err(issues) => panic!(
            "{expected} does not validate: {issues:#?}\n{}",
            serde_json::to_string_pretty(resource).unwrap_or_default()
        ),
    }
}

fn link(index: u64) -> LedgerLink {
    LedgerLink {
        index,
        proof_url: format!("https://node.example/v1/transactions/{index}/proof"),
    }
}

#[test]
fn consents_of_grants_validate() {
    let narrow = GrantTerms {
        patient: PATIENT.into(),
        grantee: CLINICIAN.into(),
        scope: Scope::categories(["lab"]),
        actions: [Action::Read].into(),
        purpose: PurposeOfUse::Treatment,
        not_before: 1_795_295_657,
        not_after: 1_797_887_657,
        jurisdictions: BTreeSet::new(),
    };
    let wide = GrantTerms {
        grantee: CLINIC.into(),
        scope: Scope {
            categories: ["lab".to_owned(), "imaging".to_owned()].into(),
            resource_types: ["Observation".to_owned()].into(),
            record_ids: [RECORD.to_owned()].into(),
        },
        actions: [Action::Read, Action::Write].into(),
        jurisdictions: ["FR".to_owned()].into(),
        not_after: i64::MAX,
        ..narrow.clone()
    };
    for (terms, active) in [(&narrow, true), (&wide, false)] {
        let consent = terms_to_consent(GRANT, terms, active, &link(7));
        assert_valid(&consent, ResourceType::Consent);
    }
}

fn access(permitted: bool, break_glass: bool) -> AccessView {
    AccessView {
        index: 12,
        proof_url: "https://node.example/v1/transactions/12/proof".into(),
        requester: CLINICIAN.into(),
        patient: PATIENT.into(),
        action: Action::Read,
        interaction: "read".into(),
        purpose: if break_glass { "ETREAT" } else { "TREAT" }.into(),
        permitted,
        break_glass,
        justified: break_glass,
        reasons: match (permitted, break_glass) {
            (true, true) => vec!["break-glass-emergency-read".into()],
            (true, false) => vec!["consent-grant".into()],
            (false, _) => vec![],
        },
        grants: if permitted && !break_glass {
            vec![GRANT.into()]
        } else {
            vec![]
        },
        records: vec![RECORD.into()],
        node: NODE.into(),
        time: 1_795_295_660,
    }
}

#[test]
fn audit_events_validate() {
    for (permitted, break_glass) in [(true, false), (false, false), (true, true)] {
        let event = audit_event("12", &access(permitted, break_glass));
        assert_valid(&event, ResourceType::AuditEvent);
    }
    let search = AccessView {
        interaction: "search-type".into(),
        records: vec![],
        ..access(true, false)
    };
    assert_valid(&audit_event("13", &search), ResourceType::AuditEvent);
}

#[test]
fn provenances_validate() {
    let view = VersionView {
        target: "Observation/123/_history/2".into(),
        recorded: 1_795_295_655,
        author: PATIENT.into(),
        node: NODE.into(),
        signature:
            "SV_PD_y7MTmtXKZqdXepnQv4AhEUDcMaQPnqzmuXjhYhsoBSolepudhYNLk6LKjnxFmeQPeOmWzlvqXCKnn1Bw"
                .into(),
        signer: Signer::Author,
        commitment: RECORD.into(),
        ledger: link(3),
        activity: "create".into(),
    };
    assert_valid(&provenance("3", &view), ResourceType::Provenance);
}

/// What the ledger views name their participants with is the same DID
/// Reference the rest of the crate reads.
#[test]
fn views_name_participants_by_did() {
    let event = audit_event("12", &access(true, false));
    assert_eq!(event["agent"][0]["who"], did_reference(CLINICIAN));
    assert_eq!(
        hygeia_fhir::reference::did_of_reference(&event["patient"]),
        Some(PATIENT)
    );
}

/// The validator does look inside the views: an element R5 removed from
/// AuditEvent (`entity.type`, R4's) is refused, so the passes above mean
/// the views use R5's elements.
#[test]
fn the_validator_checks_the_views_elements() {
    let mut event = audit_event("12", &access(true, false));
    event["entity"][0]["type"] = serde_json::json!({
        "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
        "code": "1"
    });
    assert!(validate(&event, None).is_err());
}
