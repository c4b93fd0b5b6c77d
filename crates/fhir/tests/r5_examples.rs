//! The official FHIR R5 examples (`hl7.fhir.r5.examples` 5.0.0, copied to
//! the shared test vectors) against the validator: every served type
//! validates clean, other types are refused as not supported, and breaking
//! an example is always reported.

use std::path::PathBuf;
use std::sync::LazyLock;

use hygeia_fhir::types::ResourceType;
use hygeia_fhir::validate::validate;
use proptest::prelude::*;
use serde_json::{json, Value};

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/vectors/fhir-r5"
);

/// Every example: file name and parsed JSON.
fn examples() -> Examples {
    let mut files: Vec<PathBuf> = std::fs::read_dir(VECTORS)
        .expect("the FHIR R5 vectors")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).expect("readable vector");
            let value = serde_json::from_slice(&bytes).expect("JSON vector");
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            (name.into_owned(), value)
        })
        .collect()
}

fn type_name(example: &Value) -> &str {
    example["resourceType"].as_str().unwrap_or_default()
}

/// The examples of served types.
fn served() -> Examples {
    examples()
        .into_iter()
        .filter(|(_, v)| type_name(v).parse::<ResourceType>().is_ok())
        .collect()
}

#[test]
fn served_types_validate_clean() {
    let served = served();
    // 20 files, of which 6 are Bundles, Parameters, Permission, OperationOutcome.
    assert_eq!(served.len(), 14);
    for (name, example) in &served {
        let expected: ResourceType = type_name(example).parse().unwrap();
        assert_eq!(validate(example, None), Ok(expected), "{name}");
        assert_eq!(validate(example, Some(expected)), Ok(expected), "{name}");
    }
}

#[test]
fn other_types_are_not_supported() {
    let mut refused = Vec::new();
    for (name, example) in examples() {
        let t = type_name(&example).to_owned();
        if t.parse::<ResourceType>().is_ok() {
            continue;
        }
        let issues = validate(&example, None).expect_err(&name);
        assert_eq!(issues.len(), 1, "{name}");
        assert_eq!(issues[0].code, "not-supported", "{name}");
        assert_eq!(issues[0].expression.as_deref(), Some("resourceType"));
        refused.push(t);
    }
    refused.sort();
    refused.dedup();
    assert_eq!(
        refused,
        ["Bundle", "OperationOutcome", "Parameters", "Permission"]
    );
}

#[test]
fn the_type_in_the_url_must_match() {
    for (name, example) in served() {
        let other = if type_name(&example) == "Patient" {
            ResourceType::Observation
        } else {
            ResourceType::Patient
        };
        let issues = validate(&example, Some(other)).expect_err(&name);
        assert_eq!(issues.len(), 1, "{name}");
        assert_eq!(issues[0].code, "invalid");
        assert_eq!(issues[0].expression.as_deref(), Some("resourceType"));
    }
}

/// Required elements (R5 min 1) present in the examples, as JSON pointers,
/// with the FHIRPath a missing one is reported at.
const REQUIRED: &[(&str, &str, &str)] = &[
    ("Observation-example.json", "/status", "Observation.status"),
    ("Observation-example.json", "/code", "Observation.code"),
    ("Encounter-example.json", "/status", "Encounter.status"),
    (
        "Consent-consent-example-basic.json",
        "/status",
        "Consent.status",
    ),
    (
        "Consent-consent-example-notThis.json",
        "/provision/0/data/0/meaning",
        "Consent.provision[0].data[0].meaning",
    ),
    (
        "Consent-consent-example-notThis.json",
        "/provision/0/data/0/reference",
        "Consent.provision[0].data[0].reference",
    ),
    ("Provenance-example.json", "/target", "Provenance.target"),
    ("Provenance-example.json", "/agent", "Provenance.agent"),
    (
        "Provenance-example.json",
        "/agent/1/who",
        "Provenance.agent[1].who",
    ),
    (
        "Provenance-example.json",
        "/entity/0/role",
        "Provenance.entity[0].role",
    ),
    (
        "Provenance-example.json",
        "/entity/0/what",
        "Provenance.entity[0].what",
    ),
    ("AuditEvent-example.json", "/code", "AuditEvent.code"),
    (
        "AuditEvent-example.json",
        "/recorded",
        "AuditEvent.recorded",
    ),
    ("AuditEvent-example.json", "/agent", "AuditEvent.agent"),
    ("AuditEvent-example.json", "/source", "AuditEvent.source"),
    (
        "AuditEvent-example.json",
        "/agent/0/who",
        "AuditEvent.agent[0].who",
    ),
    (
        "AuditEvent-example.json",
        "/source/observer",
        "AuditEvent.source.observer",
    ),
    (
        "AuditEvent-example-breakglass-start.json",
        "/outcome/code",
        "AuditEvent.outcome.code",
    ),
    (
        "Practitioner-example.json",
        "/qualification/0/code",
        "Practitioner.qualification[0].code",
    ),
    (
        "Patient-example.json",
        "/_birthDate/extension/0/url",
        "Patient.birthDate.extension[0].url",
    ),
    ("Patient-example.json", "/text/div", "Patient.text.div"),
    (
        "Patient-example.json",
        "/text/status",
        "Patient.text.status",
    ),
    (
        "Organization-hl7.json",
        "/contact/0/extension/0/url",
        "Organization.contact[0].extension[0].url",
    ),
];

/// Removes the member `pointer` names.
fn remove(value: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
    let target = value.pointer_mut(parent).expect("the parent exists");
    target.as_object_mut().expect("an object").remove(key);
}

#[test]
fn removing_a_required_element_names_it() {
    let all = examples();
    for (file, pointer, expression) in REQUIRED {
        let (_, example) = all.iter().find(|(name, _)| name == file).expect(file);
        let mut broken = example.clone();
        remove(&mut broken, pointer);
        let issues = validate(&broken, None).expect_err(pointer);
        assert!(
            issues
                .iter()
                .any(|i| i.code == "required" && i.expression.as_deref() == Some(*expression)),
            "{file} without {pointer}: {issues:#?}"
        );
    }
}

/// JSON pointers of every member and array item under `value`.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    let children: Vec<(String, &Value)> = match value {
        Value::Object(obj) => obj
            .iter()
            .map(|(k, v)| {
                (
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    v,
                )
            })
            .collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("{at}/{i}"), v))
            .collect(),
        _ => return,
    };
    for (pointer, child) in children {
        pointers(child, pointer.clone(), out);
        out.push(pointer);
    }
}

/// A value of another JSON kind than `value`, which no element accepts in
/// its place: objects and arrays become numbers, numbers and booleans
/// strings, strings booleans.
fn other_kind(value: &Value) -> Value {
    match value {
        Value::Object(_) | Value::Array(_) => json!(7),
        Value::Number(_) | Value::Bool(_) => json!("x"),
        Value::String(_) | Value::Null => json!(true),
    }
}

/// The places in the served examples where any change of JSON kind must be
/// reported, as (example index, JSON pointer). Left out: `resourceType` (a
/// different failure, tested above) and what sits inside an Availability
/// extension value, a datatype checked only as an object.
fn mutable_places(served: &[(String, Value)]) -> Vec<(usize, String)> {
    let mut places = Vec::new();
    for (index, (_, example)) in served.iter().enumerate() {
        let mut all = Vec::new();
        pointers(example, String::new(), &mut all);
        places.extend(
            all.into_iter()
                .filter(|p| p != "/resourceType" && !p.contains("/valueAvailability/"))
                .map(|p| (index, p)),
        );
    }
    places
}

/// Examples by file name.
type Examples = Vec<(String, Value)>;

/// The served examples and the places to break them, read once.
static SERVED: LazyLock<(Examples, Vec<(usize, String)>)> = LazyLock::new(|| {
    let served = served();
    let places = mutable_places(&served);
    (served, places)
});

/// One way of breaking an example.
#[derive(Debug, Clone)]
enum Mutation {
    /// Give the value at a place another JSON kind.
    ChangeKind(prop::sample::Index),
    /// Remove one of the required elements in [`REQUIRED`].
    RemoveRequired(prop::sample::Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => any::<prop::sample::Index>().prop_map(Mutation::ChangeKind),
        1 => any::<prop::sample::Index>().prop_map(Mutation::RemoveRequired),
    ]
}

/// The broken example, and what was done to it.
fn apply(mutation: &Mutation) -> (Value, String) {
    let (served, places) = &*SERVED;
    match mutation {
        Mutation::ChangeKind(pick) => {
            let (index, pointer) = &places[pick.index(places.len())];
            let (name, example) = &served[*index];
            let mut broken = example.clone();
            let target = broken.pointer_mut(pointer).expect("the pointer exists");
            *target = other_kind(target);
            (broken, format!("{name}: kind changed at {pointer}"))
        }
        Mutation::RemoveRequired(pick) => {
            let (file, pointer, _) = REQUIRED[pick.index(REQUIRED.len())];
            let (_, example) = served.iter().find(|(name, _)| name == file).expect(file);
            let mut broken = example.clone();
            remove(&mut broken, pointer);
            (broken, format!("{file}: {pointer} removed"))
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn breaking_an_example_is_always_reported(mutation in mutation()) {
        let (broken, what) = apply(&mutation);
        let issues = validate(&broken, None);
        prop_assert!(issues.is_err(), "accepted: {}", what);
    }
}

#[test]
fn every_place_of_every_example_is_checked() {
    // The exhaustive version of the property above, for the kind changes.
    let (served, places) = &*SERVED;
    for (index, pointer) in places {
        let (name, example) = &served[*index];
        let mut broken = example.clone();
        let target = broken.pointer_mut(pointer).expect("the pointer exists");
        *target = other_kind(target);
        assert!(
            validate(&broken, None).is_err(),
            "{name}: {pointer} accepted"
        );
    }
}
