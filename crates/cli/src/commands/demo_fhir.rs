//! The demo's FHIR data: synthetic patients (crates/fhir/src/synthetic),
//! each with their own key, each writing their own history through the
//! FHIR API with their own token, as transaction Bundles; then a few of
//! them grant the demo clinician read access to their lab results and
//! vital signs with a FHIR Consent. What was seeded is kept in
//! `<data>/demo-fhir.json` for the banner.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::Context;
use hygeia_fhir::reference::did_reference;
use hygeia_fhir::synthetic::{generate_patient, to_ndjson, transaction_bundles, SyntheticPatient};
use hygeia_identity::Keypair;
use hygeia_policy::PurposeOfUse;
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::{json, Value};

use super::demo_records::DemoKeys;
use super::fhir::{consent_resource, grant_consent, http_client, unix_now, FhirClient, NodeInfo};

/// Patients seeded by default.
pub const PATIENTS: usize = 25;
/// Resources per patient, the Patient included.
pub const RESOURCES_PER_PATIENT: usize = 60;
/// The first patients grant the clinician reads of their lab results and
/// vital signs (all but one when fewer are seeded).
pub const GRANTING: usize = 3;
/// Categories the grants cover.
pub const GRANTED_CATEGORIES: [&str; 2] = ["lab", "vital-signs"];
/// Days the grants last.
pub const GRANT_DAYS: i64 = 30;
/// The data set: the same seed draws the same histories.
const SEED: u64 = 2026;
/// HbA1c, the code the banner searches for first.
const HBA1C: &str = "4548-4";
/// Where the summary is kept.
pub const SUMMARY_FILE: &str = "demo-fhir.json";

fn patient_key_path(keys: &DemoKeys, number: usize) -> PathBuf {
    keys.dir
        .join("patients")
        .join(format!("patient-{number:02}.key"))
}

fn patient_key(keys: &DemoKeys, number: usize) -> anyhow::Result<Keypair> {
    let path = patient_key_path(keys, number);
    if path.exists() {
        return Keypair::read_key_file(&path)
            .with_context(|| format!("cannot use {}", path.display()));
    }
    std::fs::create_dir_all(path.parent().unwrap_or(&keys.dir))?;
    let key = Keypair::generate();
    key.write_key_file(&path)?;
    Ok(key)
}

/// Patient `number` (from 1) of the data set.
fn synthetic(number: usize, did: &str) -> SyntheticPatient {
    let mut rng = StdRng::seed_from_u64(SEED + number as u64);
    generate_patient(&mut rng, number as u64, did, RESOURCES_PER_PATIENT)
}

fn patient_name(patient: &Value) -> String {
    let name = &patient["name"][0];
    let given: Vec<&str> = name["given"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    format!(
        "{} {}",
        given.join(" "),
        name["family"].as_str().unwrap_or("")
    )
    .trim()
    .to_owned()
}

/// The LOINC codes of a patient's Observations of one category, most
/// frequent first.
fn observation_codes(resources: &[Value], category: &str) -> Vec<String> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for r in resources.iter().filter(|r| {
        r["resourceType"] == "Observation" && r["category"][0]["coding"][0]["code"] == category
    }) {
        if let Some(code) = r["code"]["coding"][0]["code"].as_str() {
            match counts.iter_mut().find(|(c, _)| c == code) {
                Some((_, n)) => *n += 1,
                None => counts.push((code.to_owned(), 1)),
            }
        }
    }
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    counts.into_iter().map(|(c, _)| c).collect()
}

/// The code to show for a patient: HbA1c if they have one, else their most
/// frequent lab test.
fn showcase_code(resources: &[Value]) -> Option<String> {
    let codes = observation_codes(resources, "laboratory");
    if codes.iter().any(|c| c == HBA1C) {
        return Some(HBA1C.to_owned());
    }
    codes.into_iter().next()
}

/// Seeds the FHIR data through the node at `url`; run once, on a fresh
/// node, after the demo network exists. Returns the summary it also saves.
pub fn seed(url: &str, keys: &DemoKeys, data_dir: &Path, count: usize) -> anyhow::Result<Value> {
    let started = Instant::now();
    let granting = GRANTING.min(count.saturating_sub(1)).max(1);
    let info = NodeInfo::fetch(url)?;
    let http = http_client()?;
    let mut patients = Vec::with_capacity(count);
    for number in 1..=count {
        let did = patient_key(keys, number)?.did().to_string();
        patients.push((number, did.clone(), synthetic(number, &did)));
    }
    let total: usize = patients.iter().map(|(_, _, p)| p.resources.len()).sum();
    let bar = ProgressBar::new((total + granting) as u64).with_style(
        ProgressStyle::with_template("seeding FHIR data [{bar:40}] {pos}/{len} ({msg})")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar.set_message(format!("{count} patients writing their records"));

    // Each patient writes their own history with their own token, several
    // patients at a time.
    let next = AtomicUsize::new(0);
    let failure: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let workers = std::thread::available_parallelism()
        .map_or(2, usize::from)
        .clamp(2, 6);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= patients.len() || failure.lock().map(|f| f.is_some()).unwrap_or(true) {
                    return;
                }
                let (number, _, patient) = &patients[i];
                let result = (|| -> anyhow::Result<()> {
                    let client = FhirClient::with_info(
                        url,
                        &info,
                        http.clone(),
                        patient_key(keys, *number)?,
                        PurposeOfUse::Treatment,
                        None,
                    )?;
                    for bundle in transaction_bundles(&patient.resources, 100) {
                        let entries = bundle["entry"].as_array().map_or(0, Vec::len);
                        client
                            .post_bundle(&serde_json::to_vec(&bundle)?)
                            .with_context(|| {
                                format!("seeding the demo: patient {number}'s records")
                            })?;
                        bar.inc(entries as u64);
                    }
                    Ok(())
                })();
                if let Err(e) = result {
                    if let Ok(mut f) = failure.lock() {
                        f.get_or_insert(e);
                    }
                    return;
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().ok().flatten() {
        bar.abandon();
        return Err(e);
    }

    // The first patients grant the clinician reads of lab results and vital
    // signs, each with a FHIR Consent that names them by their Patient
    // resource and the clinician by DID.
    bar.set_message("consent for the clinician");
    let clinician = keys.did("clinician")?;
    let now = unix_now();
    let mut summary = Vec::new();
    for (number, did, patient) in &patients {
        let mut grant = Value::Null;
        if *number <= granting {
            let client = FhirClient::with_info(
                url,
                &info,
                http.clone(),
                patient_key(keys, *number)?,
                PurposeOfUse::Treatment,
                None,
            )?;
            let consent = consent_resource(
                json!({"reference": format!("Patient/{}", patient.patient_id)}),
                did_reference(&clinician),
                &["access"],
                PurposeOfUse::Treatment,
                &GRANTED_CATEGORIES,
                now - 60,
                now + GRANT_DAYS * 86_400,
            );
            let created = grant_consent(&client, &consent)
                .with_context(|| format!("seeding the demo: patient {number}'s Consent"))?;
            grant = created["id"].clone();
            bar.inc(1);
        }
        summary.push(json!({
            "number": number,
            "id": patient.patient_id,
            "did": did,
            "name": patient_name(&patient.resources[0]),
            "key": patient_key_path(keys, *number),
            "resources": patient.resources.len(),
            "code": showcase_code(&patient.resources),
            "consent": grant,
        }));
    }
    bar.finish_and_clear();

    // One more patient, not imported: a file to try `hygeia import` with.
    let extra = count + 1;
    let extra_did = patient_key(keys, extra)?.did().to_string();
    let extra_patient = synthetic(extra, &extra_did);
    let files = data_dir.join("demo-fhir");
    std::fs::create_dir_all(&files)?;
    let import_file = files.join(format!("patient-{extra:02}.ndjson"));
    std::fs::write(&import_file, to_ndjson(&extra_patient.resources))?;

    let summary = json!({
        "patients": summary,
        "resources": total,
        "seconds": started.elapsed().as_secs_f64(),
        "clinician": clinician,
        "import": {
            "key": patient_key_path(keys, extra),
            "file": import_file,
            "patient": extra_patient.patient_id,
            "resources": extra_patient.resources.len(),
        },
    });
    std::fs::write(
        data_dir.join(SUMMARY_FILE),
        serde_json::to_vec_pretty(&summary)?,
    )?;
    Ok(summary)
}

/// The banner's FHIR section, from the saved summary (nothing if the data
/// directory was seeded without FHIR data). Writes a Consent for the first
/// patient without one, valid from now, to try granting.
/// A search, at `url`, by the lab code of one of the results of the
/// first patient who lets the clinician read them (no `patient=`: a node
/// that holds copies of a patient's results but not their Patient resource
/// cannot resolve the patient's id), from the summary the seeding wrote in
/// `data_dir`.
pub fn granted_code_search(url: &str, data_dir: &Path) -> Option<String> {
    let summary: Value =
        serde_json::from_slice(&std::fs::read(data_dir.join(SUMMARY_FILE)).ok()?).ok()?;
    let patients = summary["patients"].as_array()?;
    let code = patients.iter().find(|p| !p["consent"].is_null())?["code"].as_str()?;
    Some(format!(
        "{url}/fhir/Observation?code=http://loinc.org|{code}"
    ))
}

fn search_url(url: &str, patient: &Value) -> String {
    let id = patient["id"].as_str().unwrap_or("?");
    match patient["code"].as_str() {
        Some(code) => {
            format!("{url}/fhir/Observation?patient=Patient/{id}&code=http://loinc.org|{code}")
        }
        None => format!("{url}/fhir/Observation?patient=Patient/{id}"),
    }
}

pub fn print_banner(url: &str, data_dir: &Path, keys: &DemoKeys) {
    let Some(summary) = std::fs::read(data_dir.join(SUMMARY_FILE))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
    else {
        return;
    };
    let patients = summary["patients"].as_array().cloned().unwrap_or_default();
    let granting = patients.iter().filter(|p| !p["consent"].is_null()).count();
    let Some(granted) = patients.iter().find(|p| !p["consent"].is_null()) else {
        return;
    };
    let other = patients.iter().find(|p| p["consent"].is_null());
    let s = |v: &Value| v.as_str().unwrap_or("?").to_owned();
    let clinician_key = keys.path("clinician").display().to_string();
    let search = |p: &Value| search_url(url, p);

    println!(
        "FHIR R5 at {url}/fhir (docs/fhir.md): {} synthetic patients, {} resources, each written by the",
        patients.len(),
        summary["resources"]
    );
    println!(
        "patient with their own token; {} the clinician read lab results and vital signs",
        if granting == 1 {
            "patient 1 lets".to_owned()
        } else {
            format!("patients 1-{granting} let")
        }
    );
    println!(
        "({GRANT_DAYS}-day Consent, purpose TREAT). Patients' keys: {}",
        keys.dir.join("patients").display()
    );
    println!("  TOKEN=$(hygeia fhir token --node {url} --key {clinician_key})");
    println!(
        "  curl -s -H \"Authorization: Bearer $TOKEN\" '{}'   # {}: permitted",
        search(granted),
        s(&granted["name"])
    );
    if let Some(other) = other {
        println!(
            "  curl -s -H \"Authorization: Bearer $TOKEN\" '{}'   # {}: no consent, an empty Bundle",
            search(other),
            s(&other["name"])
        );
    }
    println!(
        "  PTOKEN=$(hygeia fhir token --node {url} --key {})",
        s(&granted["key"])
    );
    println!(
        "  curl -s -H \"Authorization: Bearer $PTOKEN\" '{url}/fhir/AuditEvent?patient=Patient/{}'   # who looked, with ledger proofs",
        s(&granted["id"])
    );
    if let Some(other) = other {
        let example = data_dir.join("demo-fhir").join(format!(
            "consent-patient-{:02}.json",
            other["number"].as_u64().unwrap_or(0)
        ));
        let now = unix_now();
        let consent = consent_resource(
            json!({"reference": format!("Patient/{}", s(&other["id"]))}),
            did_reference(&s(&summary["clinician"])),
            &["access"],
            PurposeOfUse::Treatment,
            &GRANTED_CATEGORIES,
            now - 60,
            now + GRANT_DAYS * 86_400,
        );
        let written = serde_json::to_vec_pretty(&consent)
            .ok()
            .and_then(|bytes| std::fs::write(&example, bytes).ok())
            .is_some();
        if written {
            println!(
                "  hygeia fhir consent grant --node {url} --key {} --consent {}   # then the second curl finds results",
                s(&other["key"]),
                example.display()
            );
        }
    }
    println!(
        "  hygeia shc export --node {url} --key {} --patient {} --type laboratory --out card.smart-health-card --qr qr.txt   # a SMART Health Card",
        s(&granted["key"]),
        s(&granted["id"])
    );
    println!("  hygeia shc verify --node {url} card.smart-health-card   # checked with {url}/.well-known/jwks.json");
    println!(
        "  hygeia import --node {url} --key {} {}   # {} more resources",
        s(&summary["import"]["key"]),
        s(&summary["import"]["file"]),
        summary["import"]["resources"]
    );
    println!();
}
