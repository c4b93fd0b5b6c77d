//! Synthetic FHIR R5 patients for demos, import tests and benchmarks.
//!
//! [`generate_patient`] draws one patient and a ten-year history of care
//! from a caller-supplied random number generator: the same generator
//! state always yields the same resources, byte for byte, so a seed names
//! a data set. Histories end on 2026-07-01T00:00:00Z (fixed, not today,
//! for the same reason) and reach back ten years or to birth.
//!
//! The content is clinically coherent rather than random: long-term
//! conditions (hypertension, diabetes, asthma, depression, ...) begin at
//! plausible ages, are recorded at a visit after they begin, are treated
//! with the usual drugs, and move the measurements that follow them
//! (HbA1c, blood pressure, LDL, eGFR, PHQ-9 ...) up before treatment and
//! back towards normal after. Children get their vaccines on schedule,
//! adults their screenings; short illnesses come with a diagnosis, perhaps
//! a prescription (avoiding penicillin for those allergic to it) and a
//! procedure. Codes are real SNOMED CT, LOINC, RxNorm, CVX and UCUM codes
//! embedded in the source; names and addresses come from sixteen countries.
//! Nothing refers to a real person: phone numbers are 555 numbers and
//! record numbers are issued under HL7's example OID.
//!
//! Ids are client-assigned and say what they name:
//! `syn-000123-1a2b3c4d` for the Patient (index, then 32 random bits), and
//! `syn-000123-1a2b3c4d-enc7`, `-cond2`, `-obs41`, `-med3`, `-alg1`,
//! `-imm5`, `-proc2` for the rest. References are literal (`Patient/<id>`,
//! `Encounter/<id>`, `Condition/<id>`, `MedicationRequest/<id>`) and
//! always resolve within the patient's own resources.
//!
//! [`transaction_bundles`] packs resources into FHIR transaction Bundles
//! of PUTs and [`to_ndjson`] writes them one per line, for `hygeia import`.

mod calendar;
mod codes;
mod engine;
mod people;

use serde_json::{json, Value};

/// One generated patient.
#[derive(Clone, Debug, PartialEq)]
pub struct SyntheticPatient {
    /// The Patient's logical id, e.g. `syn-000123-1a2b3c4d`.
    pub patient_id: String,
    /// The Patient first, then Encounters, Conditions, Observations,
    /// MedicationRequests, AllergyIntolerances, Immunizations and
    /// Procedures, each type in the order things happened. Every resource
    /// only refers to resources before it, so this order can be written
    /// as is to a server that checks references.
    pub resources: Vec<Value>,
}

/// Draws one patient and their history.
///
/// `index` numbers the patient within a data set and appears in every id
/// (`syn-<index, six digits or more>-<8 hex digits>...`), so patients
/// generated with distinct indexes never share an id. `did` is the
/// patient's DID (`did:key:...`); it is put into `Patient.identifier` as
/// `{"system": DID_IDENTIFIER_SYSTEM, "value": did}`, which is how the
/// node knows whose consent governs the records.
///
/// `target` is the number of resources returned, exactly, the Patient
/// included (0 is taken as 1: there is always the Patient). The history
/// is shaped to the target: a small target keeps a random selection of
/// the patient's visits over the whole ten years, a large one adds
/// follow-up visits and routine measurements.
pub fn generate_patient(
    rng: &mut impl rand::Rng,
    index: u64,
    did: &str,
    target: usize,
) -> SyntheticPatient {
    engine::generate(rng, index, did, target.max(1))
}

/// FHIR transaction Bundles (`"type": "transaction"`) of at most
/// `per_bundle` entries each (0 is taken as 1), in the order of
/// `resources`. Each entry PUTs its resource to `<resourceType>/<id>`, so
/// that loading the same data twice updates rather than duplicates it; a
/// resource without an id is POSTed to `<resourceType>` instead, and one
/// without a `resourceType` (not a FHIR resource) is left out.
///
/// Servers resolve references between the entries of one transaction,
/// but a reference to an earlier bundle needs that bundle loaded first:
/// pass resources in dependency order, as [`generate_patient`] returns
/// them, and load the bundles in order.
pub fn transaction_bundles(resources: &[Value], per_bundle: usize) -> Vec<Value> {
    let entries: Vec<Value> = resources.iter().filter_map(transaction_entry).collect();
    entries
        .chunks(per_bundle.max(1))
        .map(|chunk| json!({"resourceType": "Bundle", "type": "transaction", "entry": chunk}))
        .collect()
}

fn transaction_entry(resource: &Value) -> Option<Value> {
    let resource_type = resource.get("resourceType")?.as_str()?;
    let request = match resource.get("id").and_then(Value::as_str) {
        Some(id) => json!({"method": "PUT", "url": format!("{resource_type}/{id}")}),
        None => json!({"method": "POST", "url": resource_type}),
    };
    Some(json!({"resource": resource.clone(), "request": request}))
}

/// Newline-delimited JSON: each resource compact on its own line, each
/// line ended by `\n` (FHIR bulk data format, read by `hygeia import`).
pub fn to_ndjson(resources: &[Value]) -> String {
    let mut out = String::new();
    for resource in resources {
        // Compact JSON escapes every newline inside strings, so a resource
        // never spans lines.
        out.push_str(&resource.to_string());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::OnceLock;

    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;
    use crate::reference::is_valid_id;
    use crate::DID_IDENTIFIER_SYSTEM;

    const DID: &str = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK";

    fn patient(seed: u64, index: u64, target: usize) -> SyntheticPatient {
        let mut rng = StdRng::seed_from_u64(seed);
        generate_patient(&mut rng, index, DID, target)
    }

    /// Patients of every age and history size, from one generator as a
    /// data set would be made.
    fn cohort(count: u64, target: impl Fn(u64) -> usize) -> Vec<SyntheticPatient> {
        let mut rng = StdRng::seed_from_u64(7);
        (0..count)
            .map(|i| generate_patient(&mut rng, i, DID, target(i)))
            .collect()
    }

    /// Generated once and shared by the tests that only read it.
    fn varied() -> &'static [SyntheticPatient] {
        static VARIED: OnceLock<Vec<SyntheticPatient>> = OnceLock::new();
        VARIED.get_or_init(|| {
            const TARGETS: [usize; 12] = [1, 2, 3, 5, 8, 13, 30, 60, 100, 150, 250, 600];
            cohort(120, |i| TARGETS[i as usize % TARGETS.len()])
        })
    }

    fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
        v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
    }

    fn key(r: &Value) -> String {
        format!("{}/{}", str_at(r, "/resourceType"), str_at(r, "/id"))
    }

    /// Every `reference` string anywhere in `v`.
    fn references(v: &Value, found: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    match (k.as_str(), child) {
                        ("reference", Value::String(s)) => found.push(s.clone()),
                        _ => references(child, found),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| references(i, found)),
            _ => {}
        }
    }

    /// Every string that looks like a FHIR date or dateTime, with its path.
    fn dates(v: &Value, path: &str, found: &mut Vec<(String, String)>) {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    dates(child, &format!("{path}/{k}"), found);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    dates(child, &format!("{path}/{i}"), found);
                }
            }
            Value::String(s) => {
                let b = s.as_bytes();
                if s.len() >= 10
                    && b[4] == b'-'
                    && b[7] == b'-'
                    && b[..4].iter().all(u8::is_ascii_digit)
                {
                    found.push((path.to_owned(), s.clone()));
                }
            }
            _ => {}
        }
    }

    #[test]
    fn same_seed_same_patient() {
        for target in [1, 7, 100, 400] {
            assert_eq!(patient(42, 5, target), patient(42, 5, target));
        }
        let a = cohort(30, |_| 50);
        let b = cohort(30, |_| 50);
        assert_eq!(a, b);
        assert_eq!(to_ndjson(&a[3].resources), to_ndjson(&b[3].resources));
        assert_ne!(patient(42, 5, 100), patient(43, 5, 100));
    }

    #[test]
    fn exactly_target_resources() {
        for target in [1, 2, 3, 4, 5, 9, 17, 64, 100, 333, 1500] {
            for seed in 0..8 {
                let p = patient(seed, seed, target);
                assert_eq!(p.resources.len(), target, "seed {seed} target {target}");
            }
        }
        assert_eq!(patient(1, 1, 0).resources.len(), 1);
    }

    #[test]
    fn ids_are_valid_and_unique_across_patients() {
        let mut seen = BTreeSet::new();
        for p in varied() {
            assert!(is_valid_id(&p.patient_id), "{}", p.patient_id);
            for r in &p.resources {
                let id = str_at(r, "/id");
                assert!(is_valid_id(id), "{id}");
                assert!(id.starts_with(&p.patient_id), "{id}");
                assert!(seen.insert(key(r)), "duplicate {}", key(r));
            }
        }
    }

    #[test]
    fn references_resolve_to_earlier_resources_of_the_same_patient() {
        for p in varied() {
            let mut earlier = BTreeSet::new();
            for r in &p.resources {
                let mut found = Vec::new();
                references(r, &mut found);
                for reference in found {
                    assert!(
                        earlier.contains(&reference),
                        "{} refers to {reference}, not before it",
                        key(r)
                    );
                }
                earlier.insert(key(r));
            }
        }
    }

    #[test]
    fn patient_comes_first_with_did_and_record_number() {
        for p in varied() {
            let first = &p.resources[0];
            assert_eq!(str_at(first, "/resourceType"), "Patient");
            assert_eq!(str_at(first, "/id"), p.patient_id);
            let ids = first["identifier"].as_array().cloned().unwrap_or_default();
            assert!(ids
                .iter()
                .any(|i| i["system"] == DID_IDENTIFIER_SYSTEM && i["value"] == DID));
            assert!(ids.iter().any(
                |i| i["system"] == codes::MRN_SYSTEM && str_at(i, "/value").starts_with("MRN-")
            ));
            assert_eq!(first["active"], true);
            assert!(str_at(first, "/name/0/family").chars().count() > 1);
            assert!(str_at(first, "/telecom/0/value").starts_with("555-"));
            assert!(p.resources[1..]
                .iter()
                .all(|r| str_at(r, "/resourceType") != "Patient"));
        }
    }

    #[test]
    fn resources_come_in_dependency_order_by_type() {
        const ORDER: [&str; 8] = [
            "Patient",
            "Encounter",
            "Condition",
            "Observation",
            "MedicationRequest",
            "AllergyIntolerance",
            "Immunization",
            "Procedure",
        ];
        for p in varied() {
            let ranks: Vec<usize> = p
                .resources
                .iter()
                .map(|r| {
                    let t = str_at(r, "/resourceType");
                    ORDER.iter().position(|o| *o == t).unwrap_or(usize::MAX)
                })
                .collect();
            assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "{ranks:?}");
        }
    }

    #[test]
    fn dates_fall_between_birth_and_the_end_of_the_timeline() {
        for p in varied() {
            let birth = str_at(&p.resources[0], "/birthDate").to_owned();
            assert!(birth.as_str() <= "2026-07-01");
            for r in &p.resources[1..] {
                let mut found = Vec::new();
                dates(r, "", &mut found);
                for (path, d) in found {
                    if path == "/expirationDate" {
                        continue;
                    }
                    assert!(
                        d[..10] >= *birth,
                        "{} {path} {d} before birth {birth}",
                        key(r)
                    );
                    assert!(
                        d.as_str() <= "2026-07-01T00:00:00Z",
                        "{} {path} {d}",
                        key(r)
                    );
                    if d.len() > 10 {
                        assert!(d.ends_with('Z') && d.len() == 20, "{path} {d}");
                    }
                }
            }
        }
    }

    #[test]
    fn r5_shapes() {
        for p in varied() {
            for r in &p.resources {
                let has = |field: &str| r.get(field).is_some();
                match str_at(r, "/resourceType") {
                    "Encounter" => {
                        assert_eq!(r["status"], "completed");
                        assert!(r["class"].is_array() && has("actualPeriod") && !has("period"));
                        let class = str_at(r, "/class/0/coding/0/code");
                        assert!(["AMB", "EMER", "IMP", "VR"].contains(&class));
                        if has("reason") {
                            assert!(r
                                .pointer("/reason/0/value/0/concept/coding/0/code")
                                .is_some());
                        }
                    }
                    "Condition" => {
                        assert!(has("clinicalStatus") && has("verificationStatus"));
                        assert!(has("onsetDateTime") && has("recordedDate"));
                        let system = str_at(r, "/code/coding/0/system");
                        assert_eq!(system, codes::SNOMED);
                    }
                    "Observation" => {
                        assert_eq!(r["status"], "final");
                        assert_eq!(str_at(r, "/code/coding/0/system"), codes::LOINC);
                        let category = str_at(r, "/category/0/coding/0/code");
                        let valued = has("valueQuantity") || has("valueInteger");
                        match str_at(r, "/code/coding/0/code") {
                            "85354-9" => {
                                assert!(!valued);
                                assert_eq!(r["component"].as_array().map(Vec::len), Some(2));
                            }
                            _ => assert!(valued),
                        }
                        if category == "laboratory" {
                            let interpretation = str_at(r, "/interpretation/0/coding/0/code");
                            assert!(["H", "L", "N"].contains(&interpretation));
                        }
                        if has("valueQuantity") {
                            assert_eq!(str_at(r, "/valueQuantity/system"), codes::UCUM);
                        }
                    }
                    "MedicationRequest" => {
                        assert!(!has("medicationCodeableConcept"));
                        assert_eq!(
                            str_at(r, "/medication/concept/coding/0/system"),
                            codes::RXNORM
                        );
                        assert_eq!(r["intent"], "order");
                        assert!(["active", "completed"].contains(&str_at(r, "/status")));
                        assert!(
                            str_at(r, "/reason/0/reference/reference").starts_with("Condition/")
                        );
                        assert!(!str_at(r, "/dosageInstruction/0/text").is_empty());
                    }
                    "Immunization" => {
                        assert!(has("occurrenceDateTime") && has("patient"));
                        assert_eq!(str_at(r, "/vaccineCode/coding/0/system"), codes::CVX);
                    }
                    "AllergyIntolerance" => {
                        assert!(has("patient") && !has("recorder") && has("participant"));
                        assert!(r["type"].is_object());
                    }
                    "Procedure" => {
                        assert!(!has("performedDateTime") && !has("performedPeriod"));
                        assert!(has("occurrenceDateTime") || has("occurrencePeriod"));
                    }
                    "Patient" => {}
                    other => panic!("unexpected {other}"),
                }
            }
        }
    }

    #[test]
    fn prescriptions_follow_their_diagnosis() {
        for p in varied() {
            let recorded: BTreeMap<String, String> = p
                .resources
                .iter()
                .filter(|r| r["resourceType"] == "Condition")
                .map(|r| (key(r), str_at(r, "/recordedDate").to_owned()))
                .collect();
            for r in p
                .resources
                .iter()
                .filter(|r| r["resourceType"] == "MedicationRequest")
            {
                let condition = str_at(r, "/reason/0/reference/reference");
                let when = recorded.get(condition).map(String::as_str).unwrap_or("");
                assert!(!when.is_empty(), "{condition}");
                assert!(str_at(r, "/authoredOn") >= when);
            }
        }
    }

    #[test]
    fn measurements_follow_the_patient() {
        let patients = cohort(200, |_| 120);
        let mut diabetic = Vec::new();
        for p in &patients {
            let diabetes_onset = p
                .resources
                .iter()
                .find(|r| str_at(r, "/code/coding/0/code") == "44054006")
                .map(|r| str_at(r, "/onsetDateTime").to_owned());
            let mut body: BTreeMap<String, [f64; 3]> = BTreeMap::new();
            for r in p
                .resources
                .iter()
                .filter(|r| r["resourceType"] == "Observation")
            {
                let value = r.pointer("/valueQuantity/value").and_then(Value::as_f64);
                let encounter = str_at(r, "/encounter/reference").to_owned();
                let slot = match str_at(r, "/code/coding/0/code") {
                    "8302-2" => Some(0),
                    "29463-7" => Some(1),
                    "39156-5" => Some(2),
                    "4548-4" => {
                        let after_onset = diabetes_onset
                            .as_deref()
                            .is_some_and(|onset| str_at(r, "/effectiveDateTime") >= onset);
                        if after_onset {
                            diabetic.extend(value);
                        }
                        None
                    }
                    "85354-9" => {
                        let systolic = r.pointer("/component/0/valueQuantity/value");
                        let diastolic = r.pointer("/component/1/valueQuantity/value");
                        let (s, d) = (
                            systolic.and_then(Value::as_f64).unwrap_or(0.0),
                            diastolic.and_then(Value::as_f64).unwrap_or(0.0),
                        );
                        assert!(s > d && d > 0.0, "{s}/{d}");
                        None
                    }
                    _ => None,
                };
                if let (Some(slot), Some(value)) = (slot, value) {
                    body.entry(encounter).or_insert([0.0; 3])[slot] = value;
                }
            }
            // Weight, height and BMI of one visit agree.
            for [height, weight, bmi] in body.values() {
                if *height > 0.0 && *weight > 0.0 && *bmi > 0.0 {
                    let expected = weight / (height / 100.0).powi(2);
                    assert!((expected - bmi).abs() < 0.15, "{height} {weight} {bmi}");
                }
            }
        }
        assert!(diabetic.len() > 5, "too few diabetic HbA1c values");
        assert!(diabetic.iter().all(|v| *v >= 5.8), "{diabetic:?}");
    }

    #[test]
    fn bundles_are_ordered_puts_within_the_size_limit() {
        let p = patient(9, 9, 237);
        for per_bundle in [1, 10, 50, 237, 1000] {
            let bundles = transaction_bundles(&p.resources, per_bundle);
            assert_eq!(bundles.len(), 237usize.div_ceil(per_bundle));
            let mut unpacked = Vec::new();
            for bundle in &bundles {
                assert_eq!(bundle["resourceType"], "Bundle");
                assert_eq!(bundle["type"], "transaction");
                let entries = bundle["entry"].as_array().cloned().unwrap_or_default();
                assert!(!entries.is_empty() && entries.len() <= per_bundle);
                for entry in entries {
                    assert_eq!(entry["request"]["method"], "PUT");
                    assert_eq!(str_at(&entry, "/request/url"), key(&entry["resource"]));
                    unpacked.push(entry["resource"].clone());
                }
            }
            assert_eq!(unpacked, p.resources);
        }
        assert_eq!(transaction_bundles(&p.resources, 0).len(), 237);
        assert!(transaction_bundles(&[], 10).is_empty());
        let odd = [
            json!({"resourceType": "Observation", "status": "final"}),
            json!({"not": "a resource"}),
        ];
        let bundles = transaction_bundles(&odd, 10);
        assert_eq!(bundles.len(), 1);
        assert_eq!(bundles[0]["entry"][0]["request"]["method"], "POST");
        assert_eq!(bundles[0]["entry"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn ndjson_round_trips() {
        let p = patient(3, 3, 150);
        let text = to_ndjson(&p.resources);
        assert!(text.ends_with('\n'));
        assert_eq!(text.lines().count(), p.resources.len());
        let parsed: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or(Value::Null))
            .collect();
        assert_eq!(parsed, p.resources);
        assert_eq!(to_ndjson(&[]), "");
    }

    #[test]
    fn every_resource_validates() {
        for p in varied() {
            for r in &p.resources {
                let outcome = crate::validate::validate(r, None);
                assert!(outcome.is_ok(), "{}: {outcome:?}", key(r));
            }
        }
    }

    /// The mix of a benchmark-sized patient (`cargo test -p hygeia-fhir
    /// synthetic -- --nocapture` prints it).
    #[test]
    fn typical_mix_for_a_hundred() {
        let patients = cohort(300, |_| 100);
        let mut mix: BTreeMap<String, usize> = BTreeMap::new();
        for p in &patients {
            assert_eq!(p.resources.len(), 100);
            for r in &p.resources {
                *mix.entry(str_at(r, "/resourceType").to_owned())
                    .or_default() += 1;
            }
        }
        println!(
            "resources per patient at target 100 (mean of {}):",
            patients.len()
        );
        for (t, n) in &mix {
            println!("  {t:<20} {:5.1}", *n as f64 / patients.len() as f64);
        }
        for t in [
            "Patient",
            "Encounter",
            "Condition",
            "Observation",
            "MedicationRequest",
            "AllergyIntolerance",
            "Immunization",
            "Procedure",
        ] {
            assert!(mix.get(t).copied().unwrap_or(0) > 0, "no {t}");
        }
    }
}
