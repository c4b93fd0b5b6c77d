//! Building the FHIR Bundle a card carries, minified as the spec asks of
//! cards meant for QR codes: short `resource:N` URIs for entries and
//! references, and no element a verifier does not need (`Resource.id`,
//! `Resource.meta` other than `meta.security`, `DomainResource.text`,
//! `CodeableConcept.text`, `Coding.display`).

use std::collections::HashMap;

use serde_json::{json, Map, Value};

/// A `collection` Bundle of `resources`, entry `i` with `fullUrl`
/// `resource:i`, references between the resources rewritten to those
/// URIs, and the resources minified.
///
/// A reference is recognised as naming resource `i` when it is
/// `Type/id` (relative, or absolute ending in `/Type/id`, optionally with
/// `/_history/<version>`) or `urn:uuid:<id>`, where `Type` and `id` are
/// resource `i`'s `resourceType` and `id`. Other references (contained
/// `#id`, resources not in the list) are kept as they are.
///
/// Without types, `CodeableConcept` and `Coding` are recognised by shape:
/// an object with a `coding` array is a `CodeableConcept` (its `text` is
/// dropped; a concept with only `text` keeps it, since it would otherwise
/// say nothing), the objects in a `coding` array and a `valueCoding` are
/// `Coding`s (their `display` is dropped). `display` on a `Reference` is
/// kept, as in the spec's examples. Contained resources keep their `id`,
/// which `#id` references need.
pub fn bundle_from_resources(resources: Vec<Value>) -> Value {
    let names = ResourceNames::of(&resources);
    let entries: Vec<Value> = resources
        .into_iter()
        .enumerate()
        .map(|(index, mut resource)| {
            names.rewrite_references(&mut resource);
            if let Value::Object(map) = &mut resource {
                minify_resource(map);
                map.remove("id");
            }
            json!({ "fullUrl": format!("resource:{index}"), "resource": resource })
        })
        .collect();
    json!({ "resourceType": "Bundle", "type": "collection", "entry": entries })
}

/// `Type/id` and `urn:uuid:id` of each resource, to its `resource:N` URI.
struct ResourceNames(HashMap<String, String>);

impl ResourceNames {
    fn of(resources: &[Value]) -> Self {
        let mut names = HashMap::new();
        for (index, resource) in resources.iter().enumerate() {
            let kind = resource.get("resourceType").and_then(Value::as_str);
            let id = resource.get("id").and_then(Value::as_str);
            if let (Some(kind), Some(id)) = (kind, id) {
                let short = format!("resource:{index}");
                // The first resource with a name keeps it.
                names
                    .entry(format!("{kind}/{id}"))
                    .or_insert_with(|| short.clone());
                names.entry(format!("urn:uuid:{id}")).or_insert(short);
            }
        }
        ResourceNames(names)
    }

    fn resolve(&self, reference: &str) -> Option<&String> {
        if reference.starts_with("urn:") {
            return self.0.get(reference);
        }
        let unversioned = reference
            .split_once("/_history/")
            .map_or(reference, |(base, _)| base);
        let mut segments = unversioned.rsplitn(3, '/');
        let (Some(id), Some(kind)) = (segments.next(), segments.next()) else {
            return None;
        };
        self.0.get(&format!("{kind}/{id}"))
    }

    fn rewrite_references(&self, value: &mut Value) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(reference)) = map.get_mut("reference") {
                    if let Some(short) = self.resolve(reference) {
                        reference.clone_from(short);
                    }
                }
                map.values_mut()
                    .for_each(|child| self.rewrite_references(child));
            }
            Value::Array(items) => items
                .iter_mut()
                .for_each(|child| self.rewrite_references(child)),
            _ => {}
        }
    }
}

/// Drops `meta` (but `meta.security`) and `text` of a resource, then
/// minifies its elements (including contained resources).
fn minify_resource(resource: &mut Map<String, Value>) {
    resource.remove("text");
    let security = resource
        .remove("meta")
        .and_then(|mut meta| meta.get_mut("security").map(Value::take));
    if let Some(security) = security {
        resource.insert("meta".into(), json!({ "security": security }));
    }
    for (name, value) in resource.iter_mut() {
        if name == "contained" {
            if let Value::Array(contained) = value {
                for inner in contained.iter_mut().filter_map(Value::as_object_mut) {
                    minify_resource(inner);
                }
            }
        } else {
            minify_element(value);
        }
    }
}

fn minify_element(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(codings)) = map.get_mut("coding") {
                codings
                    .iter_mut()
                    .filter_map(Value::as_object_mut)
                    .for_each(|coding| {
                        coding.remove("display");
                    });
                map.remove("text");
            }
            if let Some(Value::Object(coding)) = map.get_mut("valueCoding") {
                coding.remove("display");
            }
            map.values_mut().for_each(minify_element);
        }
        Value::Array(items) => items.iter_mut().for_each(minify_element),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_become_resource_uris_and_the_bundle_is_minified() {
        let patient = json!({
            "resourceType": "Patient",
            "id": "p1",
            "meta": {"versionId": "3", "lastUpdated": "2024-01-01T00:00:00Z"},
            "text": {"status": "generated", "div": "<div>John</div>"},
            "name": [{"family": "Anyperson", "given": ["John"]}],
            "birthDate": "1951-01-20"
        });
        let immunization = json!({
            "resourceType": "Immunization",
            "id": "i1",
            "meta": {"security": [{"system": "s", "code": "IDENTITY_ASSURANCE_LEVEL"}], "versionId": "1"},
            "status": "completed",
            "vaccineCode": {
                "coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "207", "display": "Moderna"}],
                "text": "COVID-19 vaccine"
            },
            "patient": {"reference": "Patient/p1"},
            "performer": [{"actor": {"display": "ABC General Hospital"}}],
            "reasonCode": [{"text": "only text"}],
            "extension": [{"url": "u", "valueCoding": {"code": "c", "display": "shown"}}]
        });
        let observation = json!({
            "resourceType": "Observation",
            "id": "o1",
            "subject": {"reference": "https://ehr.example.org/fhir/Patient/p1/_history/3"},
            "focus": [{"reference": "urn:uuid:i1"}],
            "hasMember": [{"reference": "Observation/elsewhere"}],
            "specimen": {"reference": "#s"},
            "contained": [{"resourceType": "Specimen", "id": "s", "text": {"div": "x"}}]
        });
        let bundle = bundle_from_resources(vec![patient, immunization, observation]);
        assert_eq!(
            bundle,
            json!({
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [
                    {"fullUrl": "resource:0", "resource": {
                        "resourceType": "Patient",
                        "name": [{"family": "Anyperson", "given": ["John"]}],
                        "birthDate": "1951-01-20"
                    }},
                    {"fullUrl": "resource:1", "resource": {
                        "resourceType": "Immunization",
                        "meta": {"security": [{"system": "s", "code": "IDENTITY_ASSURANCE_LEVEL"}]},
                        "status": "completed",
                        "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "207"}]},
                        "patient": {"reference": "resource:0"},
                        "performer": [{"actor": {"display": "ABC General Hospital"}}],
                        "reasonCode": [{"text": "only text"}],
                        "extension": [{"url": "u", "valueCoding": {"code": "c"}}]
                    }},
                    {"fullUrl": "resource:2", "resource": {
                        "resourceType": "Observation",
                        "subject": {"reference": "resource:0"},
                        "focus": [{"reference": "resource:1"}],
                        "hasMember": [{"reference": "Observation/elsewhere"}],
                        "specimen": {"reference": "#s"},
                        "contained": [{"resourceType": "Specimen", "id": "s"}]
                    }}
                ]
            })
        );
    }

    #[test]
    fn an_empty_list_is_an_empty_collection() {
        assert_eq!(
            bundle_from_resources(Vec::new()),
            json!({"resourceType": "Bundle", "type": "collection", "entry": []})
        );
    }
}
