//! What of a stored resource goes into a card.
//!
//! Cards carry as little as a verifier needs (the specification's data
//! minimization, and the patient's privacy: a card is shown to strangers),
//! and they are FHIR R4 (`fhirVersion` 4.0.1) while this server stores R5.
//! So each resource is cut down to a fixed list of elements that mean the
//! same in both versions; everything else (narrative, notes, identifiers,
//! references to resources not on the card) is left out.

use serde_json::{json, Map, Value};

use super::request::Kind;

/// Patient: who the card is about, and nothing else.
const PATIENT_ELEMENTS: &[&str] = &["name", "birthDate"];

const IMMUNIZATION_ELEMENTS: &[&str] = &[
    "status",
    "vaccineCode",
    "occurrenceDateTime",
    "occurrenceString",
    "lotNumber",
    "isSubpotent",
];

const OBSERVATION_ELEMENTS: &[&str] = &[
    "status",
    "category",
    "code",
    "effectiveDateTime",
    "effectivePeriod",
    "effectiveInstant",
    "issued",
    "valueQuantity",
    "valueCodeableConcept",
    "valueString",
    "valueBoolean",
    "valueInteger",
    "valueRange",
    "valueRatio",
    "valueTime",
    "valueDateTime",
    "valuePeriod",
    "dataAbsentReason",
    "interpretation",
    "referenceRange",
    "component",
];

/// The card's Patient: `resourceType`, `id` (for references; the bundle
/// drops it), name and birth date.
pub fn patient(resource: &Value, id: &str) -> Value {
    let mut out = keep(resource, PATIENT_ELEMENTS);
    out.insert("resourceType".into(), json!("Patient"));
    out.insert("id".into(), json!(id));
    Value::Object(out)
}

/// A card entry of `kind` whose patient is `Patient/<patient_id>`.
pub fn entry(kind: Kind, resource: &Value, id: &str, patient_id: &str) -> Value {
    let (resource_type, elements, compartment) = match kind {
        Kind::Immunization => ("Immunization", IMMUNIZATION_ELEMENTS, "patient"),
        Kind::Laboratory => ("Observation", OBSERVATION_ELEMENTS, "subject"),
    };
    let mut out = keep(resource, elements);
    out.insert("resourceType".into(), json!(resource_type));
    out.insert("id".into(), json!(id));
    // The stored reference may be absolute or versioned; on the card it
    // names the card's Patient (which the bundle turns into `resource:0`).
    out.insert(
        compartment.into(),
        json!({ "reference": format!("Patient/{patient_id}") }),
    );
    if let Some(performers) = performers(resource) {
        out.insert("performer".into(), performers);
    }
    Value::Object(out)
}

/// `elements` of `resource`, and `meta.security` (sensitivity labels a
/// verifier must respect).
fn keep(resource: &Value, elements: &[&str]) -> Map<String, Value> {
    let mut out = Map::new();
    for name in elements {
        if let Some(value) = resource.get(*name) {
            out.insert((*name).to_owned(), value.clone());
        }
    }
    if let Some(security) = resource.pointer("/meta/security") {
        out.insert("meta".into(), json!({ "security": security }));
    }
    out
}

/// Performers by name only: their references point at resources that are
/// not on the card. Immunization and Observation both have
/// `performer[].actor` (R5) or `performer[]` (Observation) as References.
fn performers(resource: &Value) -> Option<Value> {
    let named: Vec<Value> = resource
        .get("performer")?
        .as_array()?
        .iter()
        .filter_map(|performer| {
            let display = performer
                .pointer("/actor/display")
                .or_else(|| performer.get("display"))?
                .as_str()?;
            Some(match resource.get("resourceType").and_then(Value::as_str) {
                Some("Observation") => json!({ "display": display }),
                _ => json!({ "actor": { "display": display } }),
            })
        })
        .collect();
    (!named.is_empty()).then_some(Value::Array(named))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patient_is_cut_to_name_and_birth_date() {
        let stored = json!({
            "resourceType": "Patient",
            "id": "p1",
            "meta": {"versionId": "3"},
            "text": {"status": "generated", "div": "<div>x</div>"},
            "identifier": [{"system": "urn:ietf:rfc:3986", "value": "did:key:z6Mk"}],
            "name": [{"family": "Anyperson", "given": ["John", "B."]}],
            "gender": "male",
            "birthDate": "1951-01-20",
            "address": [{"city": "Nowhere"}],
            "telecom": [{"system": "phone", "value": "555"}]
        });
        assert_eq!(
            patient(&stored, "p1"),
            json!({
                "resourceType": "Patient",
                "id": "p1",
                "name": [{"family": "Anyperson", "given": ["John", "B."]}],
                "birthDate": "1951-01-20"
            })
        );
    }

    #[test]
    fn an_immunization_keeps_what_a_verifier_needs() {
        let stored = json!({
            "resourceType": "Immunization",
            "id": "i1",
            "meta": {"versionId": "1", "security": [{"system": "s", "code": "c"}]},
            "identifier": [{"value": "internal-42"}],
            "status": "completed",
            "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "207"}]},
            "patient": {"reference": "https://node.example/fhir/Patient/p1/_history/2"},
            "encounter": {"reference": "Encounter/e1"},
            "occurrenceDateTime": "2021-01-01",
            "lotNumber": "0000001",
            "note": [{"text": "patient anxious"}],
            "performer": [
                {"actor": {"reference": "Organization/o1", "display": "ABC General Hospital"}},
                {"actor": {"reference": "Practitioner/x"}}
            ]
        });
        assert_eq!(
            entry(Kind::Immunization, &stored, "i1", "p1"),
            json!({
                "resourceType": "Immunization",
                "id": "i1",
                "meta": {"security": [{"system": "s", "code": "c"}]},
                "status": "completed",
                "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "207"}]},
                "patient": {"reference": "Patient/p1"},
                "occurrenceDateTime": "2021-01-01",
                "lotNumber": "0000001",
                "performer": [{"actor": {"display": "ABC General Hospital"}}]
            })
        );
    }

    #[test]
    fn a_lab_result_keeps_its_code_value_and_time() {
        let stored = json!({
            "resourceType": "Observation",
            "id": "o1",
            "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
            "subject": {"reference": "Patient/p1"},
            "specimen": {"reference": "Specimen/s1"},
            "effectiveDateTime": "2025-03-04T09:30:00Z",
            "valueQuantity": {"value": 6.1, "unit": "%"},
            "note": [{"text": "free text"}],
            "performer": [{"reference": "Organization/lab", "display": "Lab"}]
        });
        assert_eq!(
            entry(Kind::Laboratory, &stored, "o1", "p1"),
            json!({
                "resourceType": "Observation",
                "id": "o1",
                "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
                "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
                "subject": {"reference": "Patient/p1"},
                "effectiveDateTime": "2025-03-04T09:30:00Z",
                "valueQuantity": {"value": 6.1, "unit": "%"},
                "performer": [{"display": "Lab"}]
            })
        );
    }
}
