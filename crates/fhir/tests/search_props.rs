//! Search, end to end: the index answers exactly what the brute-force
//! semantics answer, in the same order, however it was built; and the
//! published R5 examples are found by the searches they should be.

use std::collections::BTreeMap;
use std::time::Instant;

use hygeia_fhir::date::format_instant;
use hygeia_fhir::search::{
    extract, matches, parse_query, Handling, IndexEntry, SearchIndex, SearchQuery,
};
use hygeia_fhir::types::ResourceType;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde_json::{json, Value};

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/vectors/fhir-r5"
);

// ---------------------------------------------------------------- resources

const DATES: &[&str] = &[
    "2022-12-31",
    "2023",
    "2023-05",
    "2023-05-04",
    "2023-05-04T10:00:00Z",
    "2023-05-04T10:00:00.5+02:00",
    "2023-05-04T23:30:00-01:00",
    "2024-02-29",
];

fn date() -> impl Strategy<Value = &'static str> {
    prop::sample::select(DATES)
}

/// A date, dateTime or Period (possibly open), as JSON under `name[x]`.
fn effective(prefix: &'static str) -> impl Strategy<Value = Option<(String, Value)>> {
    prop_oneof![
        Just(None),
        date().prop_map(move |d| Some((format!("{prefix}DateTime"), json!(d)))),
        (prop::option::of(date()), prop::option::of(date())).prop_map(move |(s, e)| {
            let mut p = json!({});
            if let Some(s) = s {
                p["start"] = json!(s);
            }
            if let Some(e) = e {
                p["end"] = json!(e);
            }
            Some((format!("{prefix}Period"), p))
        }),
    ]
}

fn coding() -> impl Strategy<Value = Value> {
    (
        prop::option::of(prop::sample::select(&["urn:a", "urn:b"][..])),
        prop::sample::select(&["x", "y", "z"][..]),
    )
        .prop_map(|(s, c)| match s {
            Some(s) => json!({"system": s, "code": c}),
            None => json!({"code": c}),
        })
}

fn concept() -> impl Strategy<Value = Option<Value>> {
    prop::option::of(prop::collection::vec(coding(), 1..3).prop_map(|c| json!({"coding": c})))
}

fn subject() -> impl Strategy<Value = Option<Value>> {
    prop::option::of(
        prop::sample::select(
            &[
                "Patient/p0",
                "Patient/p1",
                "http://h/fhir/Patient/p2",
                "Group/p1",
                "Patient/p0/_history/2",
            ][..],
        )
        .prop_map(|r| json!({"reference": r})),
    )
}

/// Few distinct instants, so that `_lastUpdated` ties are common; some a
/// millisecond apart, so that off-by-one errors show.
fn last_updated() -> impl Strategy<Value = Option<i64>> {
    prop::option::weighted(
        0.9,
        (0..4i64, 0..2i64).prop_map(|(i, j)| 1_700_000_000_000 + i * 500 + j),
    )
}

fn set(r: &mut Value, name: &str, v: Option<Value>) {
    if let Some(v) = v {
        r[name] = v;
    }
}

fn observation() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(&["final", "amended", "preliminary"][..]),
        concept(),
        concept(),
        subject(),
        effective("effective"),
        last_updated(),
    )
        .prop_map(|(status, code, category, subject, eff, lu)| {
            let mut r = json!({"resourceType": "Observation", "status": status});
            set(&mut r, "code", code);
            set(&mut r, "category", category.map(|c| json!([c])));
            set(&mut r, "subject", subject);
            if let Some((k, v)) = eff {
                r[k] = v;
            }
            if let Some(lu) = lu {
                r["meta"] = json!({"lastUpdated": format_instant(lu)});
            }
            r
        })
}

fn condition() -> impl Strategy<Value = Value> {
    (
        concept(),
        prop::option::of(prop::sample::select(&["active", "resolved"][..])),
        subject(),
        effective("onset"),
        prop::option::of(date()),
        last_updated(),
    )
        .prop_map(|(code, clinical, subject, onset, recorded, lu)| {
            let mut r = json!({"resourceType": "Condition"});
            set(&mut r, "code", code);
            set(
                &mut r,
                "clinicalStatus",
                clinical.map(|c| json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": c}]})),
            );
            set(&mut r, "subject", subject);
            if let Some((k, v)) = onset {
                r[k] = v;
            }
            set(&mut r, "recordedDate", recorded.map(|d| json!(d)));
            if let Some(lu) = lu {
                r["meta"] = json!({"lastUpdated": format_instant(lu)});
            }
            r
        })
}

fn patient() -> impl Strategy<Value = Value> {
    let name = prop::sample::select(&["Ann", "ann", "Åsa", "Anders", "Bob", "bo"][..]);
    (
        prop::option::of(name.clone()),
        prop::collection::vec(name, 0..3),
        prop::option::of(date()),
        prop::option::of(prop::sample::select(&["male", "female", "other"][..])),
        last_updated(),
    )
        .prop_map(|(family, given, birth, gender, lu)| {
            let mut r = json!({"resourceType": "Patient", "name": [{"given": given}]});
            set(&mut r["name"][0], "family", family.map(|f| json!(f)));
            set(&mut r, "birthDate", birth.map(|d| json!(d)));
            set(&mut r, "gender", gender.map(|g| json!(g)));
            if let Some(lu) = lu {
                r["meta"] = json!({"lastUpdated": format_instant(lu)});
            }
            r
        })
}

/// Up to ~30 resources of three types, keyed `Type/<n>`; ids overlap
/// across types (and patients are named so that references hit them).
fn collection() -> impl Strategy<Value = Vec<(String, IndexEntry)>> {
    let one = prop_oneof![
        observation().prop_map(|r| (ResourceType::Observation, r)),
        condition().prop_map(|r| (ResourceType::Condition, r)),
        patient().prop_map(|r| (ResourceType::Patient, r)),
    ];
    prop::collection::vec((one, 0..4usize), 0..30).prop_map(|items| {
        let mut out = BTreeMap::new();
        for (i, ((rt, r), id)) in items.into_iter().enumerate() {
            let id = if rt == ResourceType::Patient {
                format!("p{id}")
            } else {
                i.to_string()
            };
            out.insert(format!("{rt}/{id}"), extract(rt, &r));
        }
        out.into_iter().collect()
    })
}

// ------------------------------------------------------------------ queries

fn token_value() -> impl Strategy<Value = String> {
    let system = prop::sample::select(&["urn:a", "urn:b", "urn:c"][..]);
    let code = prop::sample::select(&["x", "y", "z", "w"][..]);
    prop_oneof![
        code.clone().prop_map(str::to_owned),
        (system.clone(), code.clone()).prop_map(|(s, c)| format!("{s}|{c}")),
        code.prop_map(|c| format!("|{c}")),
        system.prop_map(|s| format!("{s}|")),
    ]
}

fn or_list(v: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    prop::collection::vec(v, 1..3).prop_map(|vs| vs.join(","))
}

fn date_value() -> impl Strategy<Value = String> {
    let prefix =
        prop::sample::select(&["", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"][..]);
    (prefix, date()).prop_map(|(p, d)| format!("{p}{d}"))
}

fn reference_value() -> impl Strategy<Value = String> {
    prop::sample::select(
        &[
            "Patient/p0",
            "p1",
            "Patient/p2",
            "Group/p1",
            "https://x/Patient/p1",
            "p3",
        ][..],
    )
    .prop_map(str::to_owned)
}

fn common_clause() -> BoxedStrategy<(String, String)> {
    prop_oneof![
        or_list(
            prop::sample::select(&["0", "1", "2", "p0", "p1", "9"][..]).prop_map(str::to_owned)
        )
        .prop_map(|v| ("_id".to_owned(), v)),
        or_list(prop::sample::select(&["1", "p1"][..]).prop_map(str::to_owned))
            .prop_map(|v| ("_id:not".to_owned(), v)),
        (
            prop::sample::select(&["", "gt", "lt", "ge", "le", "eq", "ne", "sa", "eb", "ap"][..]),
            0..5i64,
            0..2i64,
            any::<bool>(),
        )
            .prop_map(|(p, i, j, whole_seconds)| {
                let text = format_instant(1_700_000_000_000 + i * 500 + j);
                // Also at second precision (`…:20Z`): a 1 s range.
                let text = if whole_seconds {
                    format!("{}Z", &text[..19])
                } else {
                    text
                };
                ("_lastUpdated".to_owned(), format!("{p}{text}"))
            }),
    ]
    .boxed()
}

fn missing(names: &'static [&'static str]) -> impl Strategy<Value = (String, String)> {
    (prop::sample::select(names), any::<bool>())
        .prop_map(|(n, b)| (format!("{n}:missing"), b.to_string()))
}

fn clause(rt: ResourceType) -> BoxedStrategy<(String, String)> {
    match rt {
        ResourceType::Observation => prop_oneof![
            common_clause(),
            or_list(token_value()).prop_map(|v| ("code".to_owned(), v)),
            or_list(token_value()).prop_map(|v| ("code:not".to_owned(), v)),
            or_list(token_value()).prop_map(|v| ("category".to_owned(), v)),
            or_list(
                prop::sample::select(&["final", "amended", "cancelled"][..])
                    .prop_map(str::to_owned)
            )
            .prop_map(|v| ("status".to_owned(), v)),
            or_list(date_value()).prop_map(|v| ("date".to_owned(), v)),
            or_list(reference_value()).prop_map(|v| ("subject".to_owned(), v)),
            or_list(reference_value().prop_filter("patients only", |v| !v.starts_with("Group")))
                .prop_map(|v| ("patient".to_owned(), v)),
            missing(&["code", "date", "patient", "subject", "category"]),
        ]
        .boxed(),
        ResourceType::Condition => prop_oneof![
            common_clause(),
            or_list(token_value()).prop_map(|v| ("code".to_owned(), v)),
            or_list(
                prop::sample::select(
                    &[
                        "active",
                        "resolved",
                        "http://terminology.hl7.org/CodeSystem/condition-clinical|active"
                    ][..]
                )
                .prop_map(str::to_owned)
            )
            .prop_map(|v| ("clinical-status".to_owned(), v)),
            or_list(date_value()).prop_map(|v| ("onset-date".to_owned(), v)),
            or_list(date_value()).prop_map(|v| ("recorded-date".to_owned(), v)),
            or_list(reference_value()).prop_map(|v| ("subject".to_owned(), v)),
            missing(&["onset-date", "clinical-status"]),
        ]
        .boxed(),
        _ => prop_oneof![
            common_clause(),
            or_list(
                prop::sample::select(&["a", "An", "ÅS", "bo", "anders", "z"][..])
                    .prop_map(str::to_owned)
            )
            .prop_map(|v| ("name".to_owned(), v)),
            prop::sample::select(
                &[
                    "family",
                    "given",
                    "family:exact",
                    "given:contains",
                    "name:contains",
                    "name:exact"
                ][..]
            )
            .prop_flat_map(|n| {
                prop::sample::select(&["Ann", "ann", "s", "Åsa", "asa", "o"][..])
                    .prop_map(move |v| (n.to_owned(), v.to_owned()))
            }),
            or_list(date_value()).prop_map(|v| ("birthdate".to_owned(), v)),
            or_list(prop::sample::select(&["male", "female"][..]).prop_map(str::to_owned))
                .prop_map(|v| ("gender".to_owned(), v)),
            missing(&["gender", "birthdate", "family"]),
        ]
        .boxed(),
    }
}

fn sort(rt: ResourceType) -> impl Strategy<Value = Option<String>> {
    let keys: &'static [&'static str] = match rt {
        ResourceType::Observation => &[
            "_lastUpdated",
            "-_lastUpdated",
            "date",
            "-date",
            "status",
            "-code",
            "_id",
        ],
        ResourceType::Condition => &[
            "-onset-date",
            "recorded-date",
            "clinical-status",
            "-_lastUpdated",
        ],
        _ => &[
            "family",
            "-given",
            "birthdate",
            "-_id",
            "_lastUpdated",
            "-_lastUpdated",
        ],
    };
    prop::option::of(
        prop::collection::vec(prop::sample::select(keys), 1..3).prop_map(|k| k.join(",")),
    )
}

fn query() -> impl Strategy<Value = SearchQuery> {
    prop::sample::select(
        &[
            ResourceType::Observation,
            ResourceType::Condition,
            ResourceType::Patient,
        ][..],
    )
    .prop_flat_map(|rt| (Just(rt), prop::collection::vec(clause(rt), 0..4), sort(rt)))
    .prop_map(|(rt, mut params, sort)| {
        if let Some(s) = sort {
            params.push(("_sort".to_owned(), s));
        }
        match parse_query(rt, &params, Handling::Strict) {
            Ok((q, _)) => q,
            Err(e) => panic!("generated query refused: {params:?}: {e:?}"),
        }
    })
}

// ---------------------------------------------------------------- properties

fn brute_force(entries: &[(String, IndexEntry)], q: &SearchQuery) -> Vec<String> {
    let mut found: Vec<(&str, &IndexEntry)> = entries
        .iter()
        .filter(|(k, e)| matches(q, k, e))
        .map(|(k, e)| (k.as_str(), e))
        .collect();
    found.sort_by(|a, b| q.compare(*a, *b));
    found.into_iter().map(|(k, _)| k.to_owned()).collect()
}

fn build(entries: &[(String, IndexEntry)]) -> SearchIndex {
    let mut ix = SearchIndex::new();
    for (k, e) in entries {
        ix.upsert(k, e.clone());
    }
    ix
}

#[derive(Debug, Clone)]
enum Op {
    Upsert(usize, usize),
    Remove(usize),
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn index_answers_like_brute_force(entries in collection(), queries in prop::collection::vec(query(), 1..6)) {
        let ix = build(&entries);
        for q in &queries {
            prop_assert_eq!(ix.search(q), brute_force(&entries, q), "{}", q.to_query_string());
        }
    }

    #[test]
    fn query_strings_round_trip(q in query()) {
        let text = q.to_query_string();
        let pairs: Vec<(String, String)> = text
            .split('&')
            .map(|p| p.split_once('=').unwrap_or((p, "")))
            .map(|(n, v)| (decode(n), decode(v)))
            .collect();
        let (again, warnings) = parse_query(q.resource_type, &pairs, Handling::Strict)
            .map_err(|e| TestCaseError::fail(format!("{text}: {e:?}")))?;
        prop_assert!(warnings.is_empty());
        prop_assert_eq!(again.to_query_string(), text);
    }

    #[test]
    fn updates_keep_the_index_as_if_freshly_built(
        pool in collection(),
        ops in prop::collection::vec(
            prop_oneof![
                (0..30usize, 0..40usize).prop_map(|(e, k)| Op::Upsert(e, k)),
                (0..40usize).prop_map(Op::Remove),
            ],
            0..40,
        ),
        queries in prop::collection::vec(query(), 1..4),
    ) {
        prop_assume!(!pool.is_empty());
        // Keys are drawn from the pool's keys, each re-pointed at any entry
        // of the same type, so that updates change values under one key.
        let keys: Vec<&String> = pool.iter().map(|(k, _)| k).collect();
        let mut ix = SearchIndex::new();
        let mut model: BTreeMap<String, IndexEntry> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Upsert(e, k) => {
                    let key = keys[k % keys.len()];
                    let rt = key.split('/').next().unwrap_or_default();
                    let same_type: Vec<&IndexEntry> = pool
                        .iter()
                        .filter(|(k, _)| k.starts_with(&format!("{rt}/")))
                        .map(|(_, e)| e)
                        .collect();
                    let entry = same_type[e % same_type.len()].clone();
                    ix.upsert(key, entry.clone());
                    model.insert(key.clone(), entry);
                }
                Op::Remove(k) => {
                    let key = keys[k % keys.len()];
                    ix.remove(key);
                    model.remove(key);
                }
            }
        }
        let entries: Vec<(String, IndexEntry)> = model.into_iter().collect();
        let fresh = build(&entries);
        prop_assert_eq!(ix.len(), entries.len());
        prop_assert!(ix == fresh, "index differs from a fresh build");
        for q in &queries {
            prop_assert_eq!(ix.search(q), brute_force(&entries, q));
        }
    }
}

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

#[test]
fn entries_survive_json() {
    let mut runner = proptest::test_runner::TestRunner::default();
    let entries = collection()
        .new_tree(&mut runner)
        .map(|t| t.current())
        .unwrap_or_default();
    for (_, e) in entries {
        let text = serde_json::to_string(&e).unwrap_or_default();
        let back: IndexEntry =
            serde_json::from_str(&text).unwrap_or_else(|err| panic!("{text}: {err}"));
        assert_eq!(back, e);
    }
}

// ------------------------------------------------------------ R5 examples

fn example(file: &str) -> (ResourceType, String, IndexEntry) {
    let path = format!("{VECTORS}/{file}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let r: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    let rt: ResourceType = r["resourceType"]
        .as_str()
        .unwrap_or_default()
        .parse()
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let key = format!("{rt}/{}", r["id"].as_str().unwrap_or_default());
    (rt, key, extract(rt, &r))
}

/// Whether the example matches the query (and the index agrees).
fn finds(file: &str, query: &str) -> bool {
    let (rt, key, entry) = example(file);
    let params: Vec<(String, String)> = query
        .split('&')
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    let q = match parse_query(rt, &params, Handling::Strict) {
        Ok((q, _)) => q,
        Err(e) => panic!("{query}: {e:?}"),
    };
    let brute = matches(&q, &key, &entry);
    let mut ix = SearchIndex::new();
    ix.upsert(&key, entry);
    assert_eq!(ix.search(&q) == [key], brute, "{file}?{query}");
    brute
}

#[test]
fn r5_observation_example() {
    let f = "Observation-example.json";
    for q in [
        "code=http://loinc.org|29463-7",
        "code=29463-7",
        "code=http://snomed.info/sct|27113001",
        "code=http://loinc.org|",
        "status=final",
        "category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs",
        "patient=Patient/example",
        "patient=example",
        "subject=example",
        "encounter=Encounter/example",
        "date=2016-03-28",
        "date=2016",
        "date=ge2016-03-28&date=lt2016-03-29",
        "date=ap2016-03-27",
        "_id=example",
    ] {
        assert!(finds(f, q), "{q}");
    }
    for q in [
        "code=http://snomed.info/sct|29463-7",
        "code=|29463-7",
        "code:not=29463-7",
        "status=amended",
        "patient=other",
        "date=2016-03-28T12:00:00Z",
        "date=gt2016-03-28",
        "date=lt2016-03-28",
        "date:missing=true",
    ] {
        assert!(!finds(f, q), "{q}");
    }
}

#[test]
fn r5_patient_example() {
    let f = "Patient-example.json";
    for q in [
        "identifier=urn:oid:1.2.36.146.595.217.0.1|12345",
        "identifier=12345",
        "birthdate=1974-12-25",
        "birthdate=1974",
        "birthdate=lt1975",
        "gender=male",
        "active=true",
        "family=chalmers",
        "family=Windsor",
        "given=jim",
        "name=pet",
        "name:exact=Chalmers",
    ] {
        assert!(finds(f, q), "{q}");
    }
    for q in [
        "identifier=urn:oid:1.2.36.146.595.217.0.1|54321",
        "birthdate=1974-12-26",
        "birthdate=gt1974-12-25",
        "gender=female",
        "family=jim",
        "name:exact=chalmers",
    ] {
        assert!(!finds(f, q), "{q}");
    }
    let (_, _, e) = example(f);
    assert_eq!(
        e.dates["birthdate"][0],
        hygeia_fhir::date::parse_date("1974-12-25").unwrap_or_else(|e| panic!("{e}"))
    );
}

#[test]
fn r5_other_examples() {
    let cases: &[(&str, &[&str])] = &[
        (
            "Encounter-example.json",
            &[
                "status=in-progress",
                "class=IMP",
                "patient=example",
                "subject=Patient/example",
            ],
        ),
        (
            "Practitioner-example.json",
            &[
                "identifier=http://www.acme.org/practitioners|23",
                "family=care",
                "given=adam",
                "active=true",
            ],
        ),
        (
            "Organization-hl7.json",
            &["name=health%20level", "name=hl7"],
        ),
        (
            "Consent-consent-example-basic.json",
            &[
                "patient=example",
                "status=active",
                "date=2018-12-28",
                "category=http://loinc.org|59284-0",
                "controller=Organization/f001",
            ],
        ),
        (
            "Provenance-example.json",
            &[
                "target=Procedure/example",
                "agent=Practitioner/xcda-author",
                "entity=DocumentReference/example",
                "recorded=ge2015-06-26T22:39:24Z",
                "activity=3457005",
            ],
        ),
        (
            "AuditEvent-example.json",
            &[
                "date=ge2012-10-25",
                "action=E",
                "code=110120",
                "category=110100",
                "outcome=0",
            ],
        ),
    ];
    for (file, queries) in cases {
        for q in *queries {
            let q = q.replace("%20", " ");
            assert!(finds(file, &q), "{file}?{q}");
        }
    }
}

// ------------------------------------------------------------------ timing

/// Not a benchmark: a sanity check that typical searches over ~100,000
/// resources take well under a millisecond or so. Run with
/// `cargo test --release -p hygeia-fhir --test search_props -- --ignored --nocapture`.
#[test]
#[ignore]
fn timing_over_a_hundred_thousand_resources() {
    let patients = 2_000;
    let mut ix = SearchIndex::new();
    let started = Instant::now();
    let mut n = 0i64;
    for p in 0..patients {
        ix.upsert(
            &format!("Patient/p{p}"),
            extract(ResourceType::Patient, &json!({"name": [{"family": format!("Family{}", p % 300), "given": ["Given"]}],
                "birthDate": format!("19{:02}-01-01", p % 100), "meta": {"lastUpdated": format_instant(1_700_000_000_000 + n)}})),
        );
        n += 1;
        for o in 0..40 {
            let r = json!({
                "status": if o % 10 == 0 { "amended" } else { "final" },
                "code": {"coding": [{"system": "http://loinc.org", "code": format!("code-{}", o % 10)}]},
                "category": [{"coding": [{"code": if o % 2 == 0 { "vital-signs" } else { "laboratory" }}]}],
                "subject": {"reference": format!("Patient/p{p}")},
                "effectiveDateTime": format_instant(1_600_000_000_000 + (o * 86_400_000) + p as i64),
                "meta": {"lastUpdated": format_instant(1_700_000_000_000 + n)},
            });
            ix.upsert(
                &format!("Observation/o{p}-{o}"),
                extract(ResourceType::Observation, &r),
            );
            n += 1;
        }
        for c in 0..10 {
            let r = json!({
                "code": {"coding": [{"code": format!("cond-{}", (p + c) % 50)}]},
                "clinicalStatus": {"coding": [{"code": if c % 3 == 0 { "resolved" } else { "active" }}]},
                "subject": {"reference": format!("Patient/p{p}")},
                "onsetDateTime": format!("20{:02}", 10 + c),
                "meta": {"lastUpdated": format_instant(1_700_000_000_000 + n)},
            });
            ix.upsert(
                &format!("Condition/c{p}-{c}"),
                extract(ResourceType::Condition, &r),
            );
            n += 1;
        }
    }
    eprintln!("indexed {} resources in {:?}", ix.len(), started.elapsed());
    let cases: &[(&str, ResourceType, &str)] = &[
        (
            "patient's observations",
            ResourceType::Observation,
            "patient=Patient/p{i}",
        ),
        (
            "patient + code, by -date",
            ResourceType::Observation,
            "patient=p{i}&code=http://loinc.org|code-3&_sort=-date",
        ),
        (
            "patient + category + date",
            ResourceType::Observation,
            "patient=p{i}&category=vital-signs&date=ge2020-10",
        ),
        (
            "patient's active conditions",
            ResourceType::Condition,
            "patient=p{i}&clinical-status=active",
        ),
        (
            "patient by name",
            ResourceType::Patient,
            "family=family1{i}",
        ),
        ("by _id", ResourceType::Observation, "_id=o{i}-1,o{i}-2"),
        (
            "one code, all patients (8,000)",
            ResourceType::Observation,
            "code=code-{i}",
        ),
        (
            "recent changes (scan)",
            ResourceType::Observation,
            "_lastUpdated=gt2023-11-14T22:14:40Z",
        ),
        (
            "all observations, -_lastUpdated",
            ResourceType::Observation,
            "_sort=-_lastUpdated",
        ),
        (
            "all conditions by onset",
            ResourceType::Condition,
            "_sort=-onset-date",
        ),
    ];
    for (label, rt, template) in cases {
        let runs = 200;
        let started = Instant::now();
        let mut total = 0;
        for i in 0..runs {
            let text = template.replace("{i}", &(i % 10).to_string());
            let params: Vec<(String, String)> = text
                .split('&')
                .map(|p| p.split_once('=').unwrap_or((p, "")))
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
                .collect();
            let q = parse_query(*rt, &params, Handling::Strict)
                .map(|(q, _)| q)
                .unwrap_or_else(|e| panic!("{e:?}"));
            total += ix.search(&q).len();
        }
        eprintln!(
            "{label:>36}: {:>10.3?} per search, {} matches on average",
            started.elapsed() / runs,
            total / runs as usize
        );
    }
}
