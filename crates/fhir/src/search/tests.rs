//! Tests of the search module as a whole: parsing, semantics, the index.

use serde_json::{json, Value};

use super::*;
use crate::date::parse_date;
use crate::outcome::{Issue, Severity};
use crate::types::ResourceType::{self, *};

fn pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (n, v) = p.split_once('=').unwrap_or((p, ""));
            (n.to_owned(), v.to_owned())
        })
        .collect()
}

fn parse(rt: ResourceType, query: &str) -> SearchQuery {
    match parse_query(rt, &pairs(query), Handling::Strict) {
        Ok((q, _)) => q,
        Err(issues) => panic!("{query}: {issues:?}"),
    }
}

fn errors(rt: ResourceType, query: &str, handling: Handling) -> Vec<Issue> {
    match parse_query(rt, &pairs(query), handling) {
        Ok((q, w)) => panic!("{query}: accepted as {q:?} ({w:?})"),
        Err(issues) => issues,
    }
}

fn warnings(rt: ResourceType, query: &str) -> (SearchQuery, Vec<Issue>) {
    match parse_query(rt, &pairs(query), Handling::Lenient) {
        Ok(r) => r,
        Err(issues) => panic!("{query}: {issues:?}"),
    }
}

/// An index of resources, each given with its key's id; `meta.lastUpdated`
/// is set from the position unless the resource has one.
fn index(resources: &[(ResourceType, &str, Value)]) -> SearchIndex {
    let mut ix = SearchIndex::new();
    for (i, (rt, id, r)) in resources.iter().enumerate() {
        let mut r = r.clone();
        if r.pointer("/meta/lastUpdated").is_none() {
            r["meta"] = json!({"lastUpdated": crate::date::format_instant(1_700_000_000_000 + i as i64 * 1000)});
        }
        ix.upsert(&format!("{rt}/{id}"), extract(*rt, &r));
    }
    ix
}

/// Search, checked against the brute-force semantics.
fn search(ix: &SearchIndex, rt: ResourceType, query: &str) -> Vec<String> {
    let q = parse(rt, query);
    let found = ix.search(&q);
    let mut brute: Vec<(&str, &IndexEntry)> =
        ix.iter().filter(|(k, e)| matches(&q, k, e)).collect();
    brute.sort_by(|a, b| q.compare(*a, *b));
    let brute: Vec<String> = brute.into_iter().map(|(k, _)| k.to_owned()).collect();
    assert_eq!(found, brute, "{query}: index and brute force differ");
    found
}

fn ids(keys: &[String]) -> Vec<&str> {
    keys.iter()
        .map(|k| k.split_once('/').map_or("", |p| p.1))
        .collect()
}

fn observations() -> SearchIndex {
    index(&[
        (
            Observation,
            "1",
            json!({"status": "final", "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
                   "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2023-05-04",
                   "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}]}),
        ),
        (
            Observation,
            "2",
            json!({"status": "amended", "code": {"coding": [{"code": "29463-7"}]},
                   "subject": {"reference": "http://example.org/fhir/Patient/p2"}, "effectiveDateTime": "2023-05-04T10:00:00Z",
                   "encounter": {"reference": "Encounter/e1"}}),
        ),
        (
            Observation,
            "3",
            json!({"status": "final", "code": {"coding": [{"system": "http://snomed.info/sct", "code": "27113001"}]},
                   "subject": {"reference": "Group/p1"}, "effectivePeriod": {"start": "2022-12-30", "end": "2023-01-02"}}),
        ),
        (
            Observation,
            "4",
            json!({"status": "preliminary", "subject": {"reference": "Patient/p1"}}),
        ),
        (
            Patient,
            "p1",
            json!({"name": [{"family": "Chalmers", "given": ["Peter"]}], "birthDate": "1974-12-25", "gender": "male"}),
        ),
        (
            Patient,
            "p2",
            json!({"name": [{"family": "Çelik", "given": ["Zoë"]}], "birthDate": "1980", "gender": "female"}),
        ),
        (
            Encounter,
            "e1",
            json!({"status": "finished", "subject": {"reference": "Patient/p2"}}),
        ),
    ])
}

#[test]
fn tokens() {
    let ix = observations();
    let ob = Observation;
    assert_eq!(ids(&search(&ix, ob, "code=29463-7")), ["1", "2"]);
    assert_eq!(
        ids(&search(&ix, ob, "code=http://loinc.org|29463-7")),
        ["1"]
    );
    assert_eq!(ids(&search(&ix, ob, "code=|29463-7")), ["2"]);
    assert_eq!(ids(&search(&ix, ob, "code=http://snomed.info/sct|")), ["3"]);
    assert_eq!(ids(&search(&ix, ob, "code=27113001,|29463-7")), ["2", "3"]);
    assert_eq!(ids(&search(&ix, ob, "code:not=29463-7")), ["3", "4"]);
    assert_eq!(ids(&search(&ix, ob, "code:not=29463-7,27113001")), ["4"]);
    assert_eq!(ids(&search(&ix, ob, "status=final&code=29463-7")), ["1"]);
    assert_eq!(
        ids(&search(&ix, ob, "status=final&status=amended")),
        Vec::<&str>::new()
    );
    assert_eq!(
        ids(&search(&ix, ob, "status=final,amended")),
        ["1", "2", "3"]
    );
    assert_eq!(ids(&search(&ix, ob, "status:not=final")), ["2", "4"]);
    assert_eq!(ids(&search(&ix, ob, "category=vital-signs")), ["1"]);
    assert_eq!(ids(&search(&ix, ob, "code=nothing")), Vec::<&str>::new());
    assert_eq!(ids(&search(&ix, Patient, "gender=male")), ["p1"]);
}

#[test]
fn escaped_tokens() {
    let ix = index(&[(
        Patient,
        "1",
        json!({"identifier": [{"system": "urn:a|b", "value": "x,y"}]}),
    )]);
    assert_eq!(
        ids(&search(&ix, Patient, r"identifier=urn:a\|b|x\,y")),
        ["1"]
    );
    assert_eq!(ids(&search(&ix, Patient, r"identifier=x\,y")), ["1"]);
    assert!(search(&ix, Patient, r"identifier=x,y").is_empty());
    let q = parse(Patient, r"identifier=urn:a\|b|x\,y");
    assert_eq!(
        q.clauses[0].criterion,
        Criterion::Token {
            values: vec![TokenMatch::SystemCode("urn:a|b".into(), "x,y".into())],
            negate: false
        }
    );
}

#[test]
fn ids_and_missing() {
    let ix = observations();
    assert_eq!(ids(&search(&ix, Observation, "_id=2,3,9")), ["2", "3"]);
    assert_eq!(ids(&search(&ix, Observation, "_id:not=2,3")), ["1", "4"]);
    assert_eq!(ids(&search(&ix, Patient, "_id=1")), Vec::<&str>::new());
    assert_eq!(ids(&search(&ix, Observation, "code:missing=true")), ["4"]);
    assert_eq!(
        ids(&search(&ix, Observation, "encounter:missing=false")),
        ["2"]
    );
    assert_eq!(ids(&search(&ix, Observation, "date:missing=true")), ["4"]);
    assert_eq!(
        ids(&search(&ix, Observation, "patient:missing=true")),
        ["3"]
    );
}

#[test]
fn references() {
    let ix = observations();
    let ob = Observation;
    assert_eq!(ids(&search(&ix, ob, "patient=Patient/p1")), ["1", "4"]);
    assert_eq!(ids(&search(&ix, ob, "patient=p1")), ["1", "4"]);
    assert_eq!(
        ids(&search(
            &ix,
            ob,
            "patient=https://elsewhere/fhir/Patient/p2"
        )),
        ["2"]
    );
    assert_eq!(ids(&search(&ix, ob, "subject=p1")), ["1", "3", "4"]);
    assert_eq!(ids(&search(&ix, ob, "subject=Group/p1")), ["3"]);
    assert_eq!(ids(&search(&ix, ob, "subject:Patient=p1")), ["1", "4"]);
    assert_eq!(ids(&search(&ix, ob, "subject:Group=p1")), ["3"]);
    assert_eq!(
        ids(&search(&ix, ob, "subject=Patient/p1/_history/3")),
        ["1", "4"]
    );
    assert_eq!(
        ids(&search(&ix, ob, "patient=p1,p2&code=29463-7")),
        ["1", "2"]
    );
    assert_eq!(ids(&search(&ix, ob, "encounter=Encounter/e1")), ["2"]);
    assert_eq!(ids(&search(&ix, Encounter, "patient=p2")), ["e1"]);
}

#[test]
fn logical_references() {
    let did = "did:key:z6MkpTHR8VNsBxYAAWHut2Geadd9jSwuBV8xRoAnwWsdvktH";
    let ix = index(&[
        (
            Observation,
            "1",
            json!({"subject": {"identifier": {"system": "urn:ietf:rfc:3986", "value": did}}}),
        ),
        (
            Observation,
            "2",
            json!({"subject": {"type": "Group", "identifier": {"system": "urn:ietf:rfc:3986", "value": did}}}),
        ),
    ]);
    let q = format!("patient:identifier=urn:ietf:rfc:3986|{did}");
    assert_eq!(ids(&search(&ix, Observation, &q)), ["1"]);
    let q = format!("subject:identifier={did}");
    assert_eq!(ids(&search(&ix, Observation, &q)), ["1", "2"]);
}

#[test]
fn strings() {
    let ix = observations();
    assert_eq!(ids(&search(&ix, Patient, "name=chal")), ["p1"]);
    assert_eq!(ids(&search(&ix, Patient, "name=PET")), ["p1"]);
    assert_eq!(ids(&search(&ix, Patient, "family=celik")), ["p2"]);
    assert_eq!(ids(&search(&ix, Patient, "given=zoe")), ["p2"]);
    assert_eq!(ids(&search(&ix, Patient, "name=eter")), Vec::<&str>::new());
    assert_eq!(ids(&search(&ix, Patient, "name:contains=eter")), ["p1"]);
    assert_eq!(ids(&search(&ix, Patient, "family:exact=Chalmers")), ["p1"]);
    assert_eq!(
        ids(&search(&ix, Patient, "family:exact=chalmers")),
        Vec::<&str>::new()
    );
    assert_eq!(ids(&search(&ix, Patient, "family:exact=Çelik")), ["p2"]);
    assert_eq!(ids(&search(&ix, Patient, "family=x,ch")), ["p1"]);
    assert_eq!(ids(&search(&ix, Patient, "given=p&family=c")), ["p1"]);
}

#[test]
fn date_prefixes() {
    // Resource ranges: 1 = 2023-05-04 (a day), 2 = 2023-05-04T10:00:00Z (a
    // second), 3 = [2022-12-30, 2023-01-02], 4 = none.
    let ix = observations();
    let ob = Observation;
    let cases: &[(&str, &[&str])] = &[
        ("date=2023", &["1", "2"]),
        ("date=eq2023-05-04", &["1", "2"]),
        ("date=2023-05-04T10:00:00Z", &["2"]),
        ("date=2023-05-04T10:00Z", &["2"]),
        ("date=ne2023", &["3"]),
        ("date=gt2023-05-03", &["1", "2"]),
        ("date=gt2023-05-04", &[]),
        ("date=ge2023-05-04", &["1", "2"]),
        ("date=lt2023-05-04", &["3"]),
        ("date=lt2023-05-05", &["1", "2", "3"]),
        ("date=le2023-05-04", &["1", "2", "3"]),
        ("date=le2023-05-03", &["3"]),
        ("date=gt2022-12-31", &["1", "2", "3"]),
        ("date=sa2022-12-31", &["1", "2"]),
        ("date=sa2022-12-29", &["1", "2", "3"]),
        ("date=eb2023-01-03", &["3"]),
        ("date=eb2023-01-02", &[]),
        ("date=ap2023-05-05", &["1", "2"]),
        ("date=ap2023-05-06", &[]),
        ("date=ap2023-01-03", &["3"]),
        ("date=2022,2023-05-04T10:00:00Z", &["2"]),
        (
            "date=ge2023-01-01&date=lt2023-05-04T10:00:01Z",
            &["1", "2", "3"],
        ),
        (
            "date=ge2023-05-04T10:00:00Z&date=lt2023-05-04T10:00:01Z",
            &["1", "2"],
        ),
        ("date=ge2022&date=le2023", &["1", "2", "3"]),
    ];
    for (query, want) in cases {
        assert_eq!(ids(&search(&ix, ob, query)), *want, "{query}");
    }
    assert_eq!(ids(&search(&ix, Patient, "birthdate=1974-12-25")), ["p1"]);
    assert_eq!(ids(&search(&ix, Patient, "birthdate=lt1980")), ["p1"]);
    assert_eq!(
        ids(&search(&ix, Patient, "birthdate=1980-06")),
        Vec::<&str>::new()
    );
    // ap widens June by a day on each side, which overlaps all of 1980.
    assert_eq!(ids(&search(&ix, Patient, "birthdate=ap1980-06")), ["p2"]);
    assert_eq!(
        ids(&search(&ix, Patient, "birthdate=ap1981-01-02")),
        Vec::<&str>::new()
    );
}

#[test]
fn prefix_rules_on_open_periods() {
    let s = parse_date("2023").unwrap();
    let open_end = crate::date::DateRange {
        start: s.start + 1,
        end: i64::MAX,
    };
    assert!(!Prefix::Eq.test(&s, &open_end));
    assert!(Prefix::Gt.test(&s, &open_end) && Prefix::Ge.test(&s, &open_end));
    assert!(!Prefix::Lt.test(&s, &open_end) && !Prefix::Sa.test(&s, &open_end));
    let open_start = crate::date::DateRange {
        start: i64::MIN,
        end: s.end,
    };
    assert!(Prefix::Lt.test(&s, &open_start) && !Prefix::Eb.test(&s, &open_start));
    assert!(Prefix::Ap.test(&s, &open_start));
}

#[test]
fn last_updated() {
    let ix = index(&[
        (
            Patient,
            "a",
            json!({"meta": {"lastUpdated": "2024-01-02T00:00:00.000Z"}}),
        ),
        (
            Patient,
            "b",
            json!({"meta": {"lastUpdated": "2024-01-01T00:00:00.000Z"}}),
        ),
        (
            Patient,
            "c",
            json!({"meta": {"lastUpdated": "2024-01-01T00:00:00.000Z"}}),
        ),
        (Patient, "d", json!({"meta": {"lastUpdated": "not a date"}})),
    ]);
    assert_eq!(ids(&search(&ix, Patient, "")), ["b", "c", "a", "d"]);
    assert_eq!(
        ids(&search(&ix, Patient, "_sort=-_lastUpdated")),
        ["a", "b", "c", "d"]
    );
    assert_eq!(
        ids(&search(&ix, Patient, "_lastUpdated=2024-01-01")),
        ["b", "c"]
    );
    assert_eq!(
        ids(&search(&ix, Patient, "_lastUpdated=gt2024-01-01")),
        ["a"]
    );
    assert_eq!(
        ids(&search(&ix, Patient, "_lastUpdated:missing=true")),
        ["d"]
    );
    assert_eq!(ids(&search(&ix, Patient, "_id=a,b,d")), ["b", "a", "d"]);
    assert_eq!(
        ids(&search(&ix, Patient, "_id=a,b,d&_sort=-_lastUpdated")),
        ["a", "b", "d"]
    );
}

#[test]
fn sorting() {
    let ix = observations();
    let ob = Observation;
    assert_eq!(ids(&search(&ix, ob, "_sort=date")), ["3", "1", "2", "4"]);
    assert_eq!(ids(&search(&ix, ob, "_sort=-date")), ["1", "2", "3", "4"]);
    assert_eq!(
        ids(&search(&ix, ob, "_sort=status,-_id")),
        ["2", "3", "1", "4"]
    );
    assert_eq!(ids(&search(&ix, ob, "_sort=-_id")), ["4", "3", "2", "1"]);
    assert_eq!(ids(&search(&ix, ob, "_sort=code")), ["3", "1", "2", "4"]);
    assert_eq!(ids(&search(&ix, Patient, "_sort=family")), ["p2", "p1"]);
    assert_eq!(ids(&search(&ix, Patient, "_sort=-birthdate")), ["p2", "p1"]);
    assert_eq!(ids(&search(&ix, ob, "patient=p1&_sort=-date")), ["1", "4"]);
}

#[test]
fn includes() {
    let ix = observations();
    let q = parse(
        Observation,
        "_include=Observation:patient&_include=Observation:encounter",
    );
    let found = ix.search(&q);
    assert_eq!(
        ix.included(&found, &q.includes),
        ["Patient/p1", "Patient/p2", "Encounter/e1"]
    );
    let q = parse(Observation, "_include=Observation:subject:Group");
    assert!(
        ix.included(&ix.search(&q), &q.includes).is_empty(),
        "Group/p1 is not indexed"
    );
    let q = parse(Observation, "_id=2&_include=Observation:subject:Patient");
    assert_eq!(ix.included(&ix.search(&q), &q.includes), ["Patient/p2"]);
    assert_eq!(
        q.includes,
        [Include {
            source: Observation,
            param: "subject".into(),
            target: Some(Patient)
        }]
    );
}

#[test]
fn controls() {
    let q = parse(Observation, "");
    assert_eq!(
        (q.count, q.offset, q.total, q.summary_count),
        (DEFAULT_COUNT, 0, None, false)
    );
    let q = parse(
        Observation,
        "_count=5&_offset=10&_total=accurate&_summary=count&_format=json",
    );
    assert_eq!(
        (q.count, q.offset, q.total, q.summary_count),
        (5, 10, Some(TotalMode::Accurate), true)
    );
    assert!(q.count_only());
    let q = parse(
        Observation,
        "_count=0&_format=application/fhir+json&_summary=false",
    );
    assert!(q.count_only());
    let (q, w) = warnings(Observation, "_count=5000");
    assert_eq!(q.count, MAX_COUNT);
    assert_eq!(w.len(), 1);
    assert_eq!(
        parse(Observation, "_count=99999999999999999999999").count,
        MAX_COUNT
    );
    let q = parse(Observation, "_sort=-date,status,_id");
    assert_eq!(
        q.sort,
        [
            SortKey {
                param: "date".into(),
                descending: true
            },
            SortKey {
                param: "status".into(),
                descending: false
            },
            SortKey {
                param: "_id".into(),
                descending: false
            },
        ]
    );
}

#[test]
fn malformed_values_are_errors_under_any_handling() {
    let cases = [
        "date=2023-02-30",
        "date=2023-13",
        "date=xx2023",
        "date=Eq2023",
        "date=",
        "date=2023,",
        "date=2023-01-01T10:00",
        "code=",
        "code=|",
        "code=a|b|c",
        "code=a,,b",
        "_id=a%20b",
        "_id=",
        "patient=Practitioner/1",
        "patient=Location/1",
        "patient:Group=1",
        "subject=a/b/c",
        "performer=",
        "code:not=",
        "code:missing=yes",
        "_count=x",
        "_count=-1",
        "_count=",
        "_offset=1.5",
        "_total=all",
        "_summary=maybe",
        "_sort=",
        "_sort=date,,status",
        "_include=Observation",
        "_include=Observation:",
        "_include=:patient",
        "_format=xml",
        "_format=application/fhir+xml",
        "_count=1&_count=2",
        "_sort=date&_sort=status",
    ];
    for query in cases {
        for handling in [Handling::Strict, Handling::Lenient] {
            let issues = errors(Observation, query, handling);
            assert!(
                issues.iter().any(|i| i.severity == Severity::Error),
                "{query}: {issues:?}"
            );
            assert!(issues.iter().all(|i| i.expression.is_none()));
        }
    }
}

#[test]
fn unsupported_parameters_follow_handling() {
    let cases = [
        ("foo=bar", "foo"),
        ("_pretty=true", "_pretty"),
        ("vaccine-code=x", "vaccine-code"),
        ("code:text=weight", "code:text"),
        ("code:below=x", "code:below"),
        ("date:exact=2023", "date:exact"),
        ("subject:Nope=1", "subject:Nope"),
        ("subject.name=peter", "subject.name"),
        (
            "_has:Observation:patient:code=1",
            "_has:Observation:patient:code",
        ),
        ("_revinclude=Provenance:target", "_revinclude"),
        ("_include=*", "_include"),
        ("_include=Observation:code", "_include"),
        ("_include=Patient:organization", "_include"),
        ("_include=Location:x", "_include"),
        ("_include:iterate=Observation:patient", "_include:iterate"),
        ("_sort=foo", "_sort"),
        ("_sort=patient", "_sort"),
        ("_summary=true", "_summary"),
        ("_elements=code", "_elements"),
        ("_count:x=1", "_count:x"),
    ];
    for (query, name) in cases {
        let strict = errors(Observation, query, Handling::Strict);
        assert_eq!(strict.len(), 1, "{query}: {strict:?}");
        assert_eq!(strict[0].code, "not-supported", "{query}");
        assert!(
            strict[0].diagnostics.contains(&format!("{name:?}")),
            "{query}: {strict:?}"
        );
        let (q, w) = warnings(Observation, &format!("{query}&status=final"));
        assert_eq!(w.len(), 1, "{query}");
        assert_eq!(
            (w[0].severity, w[0].code),
            (Severity::Warning, "not-supported")
        );
        assert!(w[0].diagnostics.ends_with("ignored"), "{query}: {w:?}");
        assert_eq!(q.to_query_string(), "status=final&_count=20", "{query}");
    }
    // Only the unsupported sort key is dropped.
    let (q, _) = warnings(Observation, "_sort=foo,-date");
    assert_eq!(
        q.sort,
        [SortKey {
            param: "date".into(),
            descending: true
        }]
    );
}

#[test]
fn diagnostics_name_parameter_and_value_briefly() {
    let long = "9".repeat(300);
    let issues = errors(Observation, &format!("date={long}"), Handling::Lenient);
    let d = &issues[0].diagnostics;
    assert!(d.starts_with("\"date\"=\"999"), "{d}");
    assert!(d.chars().count() < 200, "{d}");
    let issues = errors(
        Observation,
        "code=&date=2023-02-30&foo=1",
        Handling::Lenient,
    );
    assert_eq!(issues.len(), 3);
    assert_eq!(issues[0].code, "value");
    assert_eq!(issues[1].code, "value");
    assert!(issues[1].diagnostics.contains("2023-02-30"));
    assert_eq!(issues[2].severity, Severity::Warning);
}

#[test]
fn query_strings_are_canonical_and_round_trip() {
    let cases = [
        ("status=final&code=http://loinc.org|1-8,|x,urn:s|&_count=10", "code=http://loinc.org%7C1-8,%7Cx,urn:s%7C&status=final&_count=10"),
        ("date=ge2023&date=lt2024-01-01T00:00:00%2B01:00", ""),
        ("patient=123&subject=Patient/9&encounter=e", "encounter=e&patient=Patient/123&subject=Patient/9&_count=20"),
        ("name:exact=Zoë,a\\,b&family:contains=x&given:missing=true", ""),
        ("code:not=a&_id:not=x&subject:identifier=s|v", ""),
        ("_sort=-date,_id&_offset=40&_include=Observation:subject:Patient&_total=estimate&_summary=count", "_sort=-date,_id&_count=20&_offset=40&_include=Observation:subject:Patient&_total=estimate&_summary=count"),
        ("code=a\\|b|c\\,d", ""),
    ];
    for (query, want) in cases {
        let rt = if query.contains("name") {
            Patient
        } else {
            Observation
        };
        let decoded: Vec<(String, String)> = pairs(query)
            .into_iter()
            .map(|(n, v)| (n, v.replace("%2B", "+")))
            .collect();
        let q = match parse_query(rt, &decoded, Handling::Strict) {
            Ok((q, _)) => q,
            Err(e) => panic!("{query}: {e:?}"),
        };
        let text = q.to_query_string();
        if !want.is_empty() {
            assert_eq!(text, want);
        }
        let again = parse_query(rt, &percent_decoded(&text), Handling::Strict)
            .unwrap_or_else(|e| panic!("{text}: {e:?}"))
            .0;
        let mut sorted = q.clone();
        sorted.clauses.sort_by(|a, b| a.param.cmp(&b.param));
        assert_eq!(again, sorted, "{text}");
        assert_eq!(again.to_query_string(), text);
    }
}

/// Decodes a query string as a server would (percent escapes; `+` is not
/// produced by `to_query_string`).
pub(crate) fn percent_decoded(text: &str) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' {
                if let Some(Ok(v)) = s.get(i + 1..i + 3).map(|h| u8::from_str_radix(h, 16)) {
                    out.push(v);
                    i += 3;
                    continue;
                }
            }
            out.push(b[i]);
            i += 1;
        }
        String::from_utf8(out).unwrap_or_default()
    }
    pairs(text)
        .into_iter()
        .map(|(n, v)| (decode(&n), decode(&v)))
        .collect()
}

#[test]
fn handling_from_prefer() {
    assert_eq!(Handling::from_prefer("handling=strict"), Handling::Strict);
    assert_eq!(
        Handling::from_prefer("return=minimal, handling=strict"),
        Handling::Strict
    );
    assert_eq!(
        Handling::from_prefer("respond-async; Handling=\"STRICT\""),
        Handling::Strict
    );
    assert_eq!(Handling::from_prefer("handling=lenient"), Handling::Lenient);
    assert_eq!(Handling::from_prefer(""), Handling::Lenient);
    assert_eq!(Handling::default(), Handling::Lenient);
}

#[test]
fn upsert_and_remove() {
    let mut ix = observations();
    assert_eq!(ix.len(), 7);
    assert_eq!(ix.len_of(Observation), 4);
    let q = parse(Observation, "code=29463-7");
    ix.upsert(
        "Observation/1",
        extract(
            Observation,
            &json!({"code": {"coding": [{"code": "other"}]}}),
        ),
    );
    assert_eq!(ids(&ix.search(&q)), ["2"]);
    assert_eq!(ix.len(), 7);
    ix.remove("Observation/2");
    ix.remove("Observation/2");
    assert!(ix.search(&q).is_empty());
    for key in [
        "Observation/1",
        "Observation/3",
        "Observation/4",
        "Patient/p1",
        "Patient/p2",
        "Encounter/e1",
    ] {
        ix.remove(key);
    }
    assert!(ix.is_empty());
    assert_eq!(ix, SearchIndex::new());
}

#[test]
fn other_types_have_their_r5_parameters() {
    let ix = index(&[
        (
            Condition,
            "c",
            json!({"code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]},
            "clinicalStatus": {"coding": [{"code": "active"}]}, "onsetDateTime": "2019", "recordedDate": "2020-02-02",
            "subject": {"reference": "Patient/p"}}),
        ),
        (
            AllergyIntolerance,
            "a",
            json!({"code": {"coding": [{"code": "nuts"}]}, "reaction": [{"substance": {"coding": [{"code": "peanut"}]}}],
            "recordedDate": "2021-01-01", "patient": {"reference": "Patient/p"}, "category": ["food"]}),
        ),
        (
            Immunization,
            "i",
            json!({"vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "140"}]},
            "occurrenceDateTime": "2022-10-01", "patient": {"reference": "Patient/p"}, "status": "completed"}),
        ),
        (
            MedicationRequest,
            "m",
            json!({"medication": {"concept": {"coding": [{"code": "rx1"}]}}, "authoredOn": "2022-03-03",
            "subject": {"reference": "Patient/p"}, "status": "active", "intent": "order"}),
        ),
        (
            DocumentReference,
            "d",
            json!({"type": {"coding": [{"code": "note"}]}, "date": "2022-01-01T00:00:00Z", "subject": {"reference": "Patient/p"}}),
        ),
        (
            Device,
            "v",
            json!({"type": [{"coding": [{"code": "pump"}]}], "status": "active"}),
        ),
        (
            ResearchSubject,
            "s",
            json!({"study": {"reference": "ResearchStudy/st"}, "subject": {"reference": "Patient/p"}}),
        ),
        (
            Group,
            "g",
            json!({"member": [{"entity": {"reference": "Patient/p"}}], "name": "Cohort A", "type": "person"}),
        ),
        (
            Organization,
            "o",
            json!({"name": "Health Level Seven", "alias": ["HL7"]}),
        ),
        (
            Practitioner,
            "pr",
            json!({"name": [{"family": "Careful", "given": ["Adam"]}]}),
        ),
        (
            Consent,
            "k",
            json!({"status": "active", "subject": {"reference": "Patient/p"}, "date": "2018-12-28"}),
        ),
        (
            AuditEvent,
            "ae",
            json!({"recorded": "2012-10-25T22:04:27+11:00", "patient": {"reference": "Patient/p"}, "action": "E"}),
        ),
        (
            Provenance,
            "pv",
            json!({"target": [{"reference": "Procedure/x/_history/1"}], "recorded": "2015-06-27T08:39:24+10:00"}),
        ),
        (
            Procedure,
            "x",
            json!({"code": {"coding": [{"code": "appendectomy"}]}, "occurrencePeriod": {"start": "2015-06-27"}, "subject": {"reference": "Patient/p"}}),
        ),
        (
            DiagnosticReport,
            "r",
            json!({"code": {"coding": [{"code": "cbc"}]}, "effectiveDateTime": "2015", "result": [{"reference": "Observation/o"}]}),
        ),
        (
            Encounter,
            "e",
            json!({"actualPeriod": {"start": "2015-01-01T10:00:00Z", "end": "2015-01-01T11:00:00Z"}, "class": [{"coding": [{"code": "AMB"}]}]}),
        ),
    ]);
    let one = |rt: ResourceType, q: &str, id: &str| {
        assert_eq!(ids(&search(&ix, rt, q)), [id], "{rt}?{q}")
    };
    one(Condition, "code=http://snomed.info/sct|44054006&clinical-status=active&onset-date=2019&recorded-date=2020&patient=p", "c");
    one(
        AllergyIntolerance,
        "code=peanut&date=2021&patient=p&category=food",
        "a",
    );
    one(AllergyIntolerance, "code=nuts", "a");
    one(Immunization, "vaccine-code=http://hl7.org/fhir/sid/cvx|140&date=2022-10&patient=Patient/p&status=completed", "i");
    one(
        MedicationRequest,
        "code=rx1&authoredon=2022-03-03&patient=p&subject=Patient/p&intent=order",
        "m",
    );
    one(DocumentReference, "type=note&date=2022&patient=p", "d");
    one(Device, "type=pump&status=active", "v");
    one(ResearchSubject, "study=ResearchStudy/st&patient=p", "s");
    one(Group, "member=Patient/p&name=cohort&type=person", "g");
    one(Organization, "name=hl7", "o");
    one(Organization, "name=health", "o");
    one(Practitioner, "family=care&given=adam", "pr");
    one(Consent, "patient=p&date=2018-12-28&status=active", "k");
    one(AuditEvent, "date=2012-10-25&patient=p&action=E", "ae");
    // 2015-06-27T08:39:24+10:00 is on 2015-06-26 in UTC, where dates are taken.
    one(Provenance, "target=Procedure/x&recorded=2015-06-26", "pv");
    one(Procedure, "date=ge2016&code=appendectomy", "x");
    one(DiagnosticReport, "result=Observation/o&date=2015", "r");
    one(Encounter, "date=2015-01-01&class=AMB", "e");
}
