//! The values a resource holds for its search parameters.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::param_map::ParamMap;
use super::params::{params, ParamDef, ParamKind};
use crate::date::{parse_date, parse_instant, DateRange};
use crate::reference::is_valid_id;
use crate::types::ResourceType;

/// A coded value: a Coding's system and code, an Identifier's system and
/// value, or a primitive (`code`, `boolean`, `string`) with no system.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Token {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    pub code: String,
}

impl Token {
    pub fn new(system: Option<&str>, code: &str) -> Token {
        Token {
            system: system.map(str::to_owned),
            code: code.to_owned(),
        }
    }
}

/// What one resource version holds for the search parameters of its type,
/// keyed by parameter name. Values are sorted and deduplicated; parameters
/// without values are absent. The node stores it (as JSON) beside the
/// version it was extracted from and gives it to [`super::SearchIndex`].
///
/// `_id` is not held here: it is the id in the key the entry is indexed
/// under (`"Observation/123"`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    #[serde(with = "resource_type_name")]
    pub resource_type: ResourceType,
    /// `meta.lastUpdated` in ms since the epoch, when present and valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<i64>,
    /// Token parameters.
    #[serde(default, skip_serializing_if = "ParamMap::is_empty")]
    pub tokens: ParamMap<Vec<Token>>,
    /// Date parameters, as ranges (Periods may be open-ended).
    #[serde(default, skip_serializing_if = "ParamMap::is_empty")]
    pub dates: ParamMap<Vec<DateRange>>,
    /// Reference parameters: keys (`"Patient/123"`) of resources of a type
    /// this server serves, whether written relative, absolute or versioned.
    #[serde(default, skip_serializing_if = "ParamMap::is_empty")]
    pub references: ParamMap<Vec<String>>,
    /// Reference parameters: identifiers of logical references
    /// (`{"identifier": {...}}`), searched with `:identifier`.
    #[serde(default, skip_serializing_if = "ParamMap::is_empty")]
    pub reference_identifiers: ParamMap<Vec<Token>>,
    /// String parameters, as written (normalized when compared).
    #[serde(default, skip_serializing_if = "ParamMap::is_empty")]
    pub strings: ParamMap<Vec<String>>,
}

impl IndexEntry {
    /// An entry with no values.
    pub fn new(resource_type: ResourceType) -> IndexEntry {
        IndexEntry {
            resource_type,
            last_updated: None,
            tokens: ParamMap::new(),
            dates: ParamMap::new(),
            references: ParamMap::new(),
            reference_identifiers: ParamMap::new(),
            strings: ParamMap::new(),
        }
    }

    /// Frees the spare capacity left by building the entry (a node keeps
    /// one per current resource).
    pub fn shrink_to_fit(&mut self) {
        self.tokens.shrink_to_fit();
        self.dates.shrink_to_fit();
        self.references.shrink_to_fit();
        self.reference_identifiers.shrink_to_fit();
        self.strings.shrink_to_fit();
    }

    /// Whether the entry holds any value for the parameter `name`.
    pub fn has_values(&self, name: &str) -> bool {
        match name {
            "_id" => true,
            "_lastUpdated" => self.last_updated.is_some(),
            _ => {
                self.tokens.contains_key(name)
                    || self.dates.contains_key(name)
                    || self.references.contains_key(name)
                    || self.reference_identifiers.contains_key(name)
                    || self.strings.contains_key(name)
            }
        }
    }
}

/// `ResourceType` as its name in JSON.
mod resource_type_name {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    use crate::types::ResourceType;

    pub fn serialize<S: Serializer>(rt: &ResourceType, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(rt.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ResourceType, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(D::Error::custom)
    }
}

/// The search values of `resource`, a resource of type `rt` (its current
/// version; `meta.lastUpdated` should already be set). Values that do not
/// parse (a malformed date, a reference to a type this server does not
/// serve, a contained `#ref`) are left out rather than refused: validation
/// is not search's job.
pub fn extract(rt: ResourceType, resource: &Value) -> IndexEntry {
    let mut entry = IndexEntry::new(rt);
    entry.last_updated = resource
        .get("meta")
        .and_then(|m| m.get("lastUpdated"))
        .and_then(Value::as_str)
        .and_then(|s| parse_instant(s).ok());
    for def in params(rt) {
        let mut nodes = Vec::new();
        for path in def.paths {
            walk(resource, path, &mut nodes);
        }
        if nodes.is_empty() {
            continue;
        }
        let name = def.name.to_owned();
        match def.kind {
            ParamKind::Token => {
                let mut out = Vec::new();
                nodes.iter().for_each(|n| tokens_of(n, &mut out));
                insert(&mut entry.tokens, name, out);
            }
            ParamKind::Date => {
                let mut out = Vec::new();
                nodes.iter().for_each(|n| dates_of(n, &mut out));
                insert(&mut entry.dates, name, out);
            }
            ParamKind::String => {
                let mut out = Vec::new();
                nodes.iter().for_each(|n| strings_of(n, &mut out));
                insert(&mut entry.strings, name, out);
            }
            ParamKind::Reference => {
                let (mut keys, mut ids) = (Vec::new(), Vec::new());
                nodes
                    .iter()
                    .for_each(|n| references_of(def, n, &mut keys, &mut ids));
                insert(&mut entry.references, name.clone(), keys);
                insert(&mut entry.reference_identifiers, name, ids);
            }
        }
    }
    entry.shrink_to_fit();
    entry
}

fn insert<T: Ord>(map: &mut ParamMap<Vec<T>>, name: String, mut values: Vec<T>) {
    if values.is_empty() {
        return;
    }
    values.sort();
    values.dedup();
    values.shrink_to_fit();
    map.insert(name, values);
}

/// The nodes at a dotted path, arrays flattened.
fn walk<'a>(root: &'a Value, path: &str, out: &mut Vec<&'a Value>) {
    let mut current = vec![root];
    for segment in path.split('.') {
        let mut next = Vec::new();
        for node in current {
            match node.get(segment) {
                Some(Value::Array(items)) => next.extend(items.iter()),
                Some(Value::Null) | None => {}
                Some(value) => next.push(value),
            }
        }
        current = next;
    }
    out.extend(current);
}

/// Tokens of a primitive, Coding, CodeableConcept, CodeableReference or
/// Identifier (recognised by shape: the parameter table says which
/// elements, the element's JSON says which type it is).
fn tokens_of(node: &Value, out: &mut Vec<Token>) {
    match node {
        Value::String(s) if !s.is_empty() => out.push(Token::new(None, s)),
        Value::Bool(b) => out.push(Token::new(None, if *b { "true" } else { "false" })),
        Value::Object(o) => {
            if let Some(concept) = o.get("concept") {
                tokens_of(concept, out);
            }
            let system = o
                .get("system")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty());
            if let Some(Value::Array(codings)) = o.get("coding") {
                codings.iter().for_each(|c| tokens_of(c, out));
            } else if let Some(code) = o.get("code").and_then(Value::as_str) {
                if !code.is_empty() {
                    out.push(Token::new(system, code));
                }
            } else if let Some(value) = o.get("value").and_then(Value::as_str) {
                if !value.is_empty() {
                    out.push(Token::new(system, value));
                }
            }
        }
        _ => {}
    }
}

/// Ranges of a date/dateTime/instant, Period or Timing (its events).
fn dates_of(node: &Value, out: &mut Vec<DateRange>) {
    match node {
        Value::String(s) => out.extend(parse_date(s).ok()),
        Value::Object(o) => {
            if let Some(events) = o.get("event") {
                let events = events.as_array().map(Vec::as_slice).unwrap_or_default();
                out.extend(
                    events
                        .iter()
                        .filter_map(Value::as_str)
                        .filter_map(|s| parse_date(s).ok()),
                );
                return;
            }
            let bound = |name: &str| o.get(name).and_then(Value::as_str).map(parse_date);
            let (start, end) = match (bound("start"), bound("end")) {
                (None, None) | (Some(Err(_)), _) | (_, Some(Err(_))) => return,
                (start, end) => (start, end),
            };
            let start = start.and_then(Result::ok).map_or(i64::MIN, |r| r.start);
            let end = end.and_then(Result::ok).map_or(i64::MAX, |r| r.end);
            if start < end {
                out.push(DateRange { start, end });
            }
        }
        _ => {}
    }
}

/// Strings of a string primitive or a HumanName's parts.
fn strings_of(node: &Value, out: &mut Vec<String>) {
    match node {
        Value::String(s) if !s.is_empty() => out.push(s.clone()),
        Value::Object(o) => {
            for part in ["text", "family", "given", "prefix", "suffix"] {
                match o.get(part) {
                    Some(Value::String(s)) if !s.is_empty() => out.push(s.clone()),
                    Some(Value::Array(items)) => out.extend(
                        items
                            .iter()
                            .filter_map(Value::as_str)
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned),
                    ),
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

/// Keys and identifiers a Reference names, restricted to the parameter's
/// target type if it has one.
fn references_of(def: &ParamDef, node: &Value, keys: &mut Vec<String>, ids: &mut Vec<Token>) {
    let Some(o) = node.as_object() else {
        return;
    };
    if let Some((rt, key)) = o
        .get("reference")
        .and_then(Value::as_str)
        .and_then(reference_key)
    {
        if def.target.is_none_or(|t| t == rt) {
            keys.push(key);
        }
    }
    if let Some(identifier) = o.get("identifier") {
        let declared = o.get("type").and_then(Value::as_str);
        if def
            .target
            .is_none_or(|t| declared.is_none_or(|d| d == t.as_str()))
        {
            tokens_of(identifier, ids);
        }
    }
}

/// The key (`Type/id`) a literal reference names, written relative
/// (`Patient/1`), absolute (`https://host/fhir/Patient/1`) or versioned
/// (`…/_history/2`), if its type is one this server serves.
pub(crate) fn reference_key(reference: &str) -> Option<(ResourceType, String)> {
    let mut parts: Vec<&str> = reference.split('/').collect();
    if parts.len() >= 4 && parts[parts.len() - 2] == "_history" {
        parts.truncate(parts.len() - 2);
    }
    let [.., type_name, id] = parts.as_slice() else {
        return None;
    };
    let rt: ResourceType = type_name.parse().ok()?;
    is_valid_id(id).then(|| (rt, format!("{rt}/{id}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reference_keys() {
        let key = |s| reference_key(s).map(|(_, k)| k);
        assert_eq!(key("Patient/1"), Some("Patient/1".into()));
        assert_eq!(key("http://h/fhir/Patient/1"), Some("Patient/1".into()));
        assert_eq!(key("Patient/1/_history/3"), Some("Patient/1".into()));
        assert_eq!(
            key("https://h/Observation/x.y/_history/2"),
            Some("Observation/x.y".into())
        );
        for bad in [
            "",
            "1",
            "#c1",
            "Location/1",
            "Patient/",
            "Patient/a b",
            "urn:uuid:1",
        ] {
            assert_eq!(key(bad), None, "{bad}");
        }
    }

    #[test]
    fn shapes() {
        let r = json!({
            "resourceType": "Observation",
            "meta": {"lastUpdated": "2024-01-01T00:00:00.000Z"},
            "status": "final",
            "identifier": [{"system": "urn:s", "value": "v1"}, {"value": "v2"}],
            "category": [{"coding": [{"system": "urn:c", "code": "lab"}]}, {"text": "only text"}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "1-8"}, {"code": "x"}, {"system": "urn:nocode"}]},
            "subject": {"reference": "https://h/fhir/Patient/p1/_history/4"},
            "encounter": {"reference": "Location/1"},
            "performer": [{"reference": "Practitioner/d"}, {"identifier": {"system": "urn:ietf:rfc:3986", "value": "did:key:z"}}],
            "effectivePeriod": {"start": "2023-05", "end": "2023-06-02"},
            "valueCodeableConcept": {"coding": [{"system": "urn:v", "code": "pos"}]}
        });
        let e = extract(ResourceType::Observation, &r);
        assert_eq!(e.last_updated, Some(1_704_067_200_000));
        assert_eq!(e.tokens["status"], [Token::new(None, "final")]);
        assert_eq!(
            e.tokens["identifier"],
            [Token::new(None, "v2"), Token::new(Some("urn:s"), "v1")]
        );
        assert_eq!(e.tokens["category"], [Token::new(Some("urn:c"), "lab")]);
        assert_eq!(
            e.tokens["code"],
            [
                Token::new(None, "x"),
                Token::new(Some("http://loinc.org"), "1-8")
            ]
        );
        assert_eq!(
            e.tokens["value-concept"],
            [Token::new(Some("urn:v"), "pos")]
        );
        assert_eq!(e.references["subject"], ["Patient/p1"]);
        assert_eq!(e.references["patient"], ["Patient/p1"]);
        assert!(!e.references.contains_key("encounter"));
        assert_eq!(e.references["performer"], ["Practitioner/d"]);
        assert_eq!(
            e.reference_identifiers["performer"],
            [Token::new(Some("urn:ietf:rfc:3986"), "did:key:z")]
        );
        let d = e.dates["date"][0];
        assert_eq!(d.start, parse_date("2023-05").unwrap().start);
        assert_eq!(d.end, parse_date("2023-06-02").unwrap().end);
        assert!(e.has_values("patient") && !e.has_values("encounter"));
    }

    #[test]
    fn patient_restricts_to_patients() {
        let r = json!({
            "subject": {"reference": "Group/g"},
            "encounter": {"reference": "Encounter/e"},
        });
        let e = extract(ResourceType::Observation, &r);
        assert_eq!(e.references["subject"], ["Group/g"]);
        assert!(!e.references.contains_key("patient"));
        let logical = json!({"subject": {"type": "Group", "identifier": {"value": "g"}}});
        let e = extract(ResourceType::Observation, &logical);
        assert!(e.reference_identifiers.contains_key("subject"));
        assert!(!e.reference_identifiers.contains_key("patient"));
    }

    #[test]
    fn periods_and_timings() {
        let open = json!({"onsetPeriod": {"start": "2020"}, "abatementPeriod": {"end": "2021"}, "recordedDate": "bad"});
        let e = extract(ResourceType::Condition, &open);
        assert_eq!(e.dates["onset-date"][0].end, i64::MAX);
        assert_eq!(e.dates["abatement-date"][0].start, i64::MIN);
        assert!(!e.dates.contains_key("recorded-date"));
        let t = json!({"occurrenceTiming": {"event": ["2020-01-01", "2020-01-02", "nope"]}});
        assert_eq!(extract(ResourceType::Procedure, &t).dates["date"].len(), 2);
        let bad = json!({"occurrencePeriod": {"start": "2021", "end": "junk"}});
        assert!(extract(ResourceType::Procedure, &bad).dates.is_empty());
    }

    #[test]
    fn names_and_codeable_references() {
        let p = json!({"name": [{"family": "Chalmers", "given": ["Peter", "James"], "text": ""}]});
        let e = extract(ResourceType::Patient, &p);
        assert_eq!(e.strings["name"], ["Chalmers", "James", "Peter"]);
        assert_eq!(e.strings["family"], ["Chalmers"]);
        assert_eq!(e.strings["given"], ["James", "Peter"]);
        let m =
            json!({"medication": {"concept": {"coding": [{"system": "urn:rx", "code": "42"}]}}});
        let e = extract(ResourceType::MedicationRequest, &m);
        assert_eq!(e.tokens["code"], [Token::new(Some("urn:rx"), "42")]);
        let a = json!({"active": false});
        assert_eq!(
            extract(ResourceType::Patient, &a).tokens["active"],
            [Token::new(None, "false")]
        );
    }

    #[test]
    fn json_round_trip() {
        let r = json!({"status": "final", "subject": {"reference": "Patient/1"}, "effectiveDateTime": "2020"});
        let e = extract(ResourceType::Observation, &r);
        let text = serde_json::to_string(&e).unwrap();
        assert!(text.contains("\"resource_type\":\"Observation\""));
        let back: IndexEntry = serde_json::from_str(&text).unwrap();
        assert_eq!(back, e);
        assert!(serde_json::from_str::<IndexEntry>(r#"{"resource_type":"Nope"}"#).is_err());
    }
}
