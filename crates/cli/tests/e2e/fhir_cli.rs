//! The FHIR commands end to end against a real node: `hygeia fhir token`,
//! `hygeia import` of synthetic NDJSON, and `hygeia fhir consent grant` and
//! `revoke` deciding what a grantee may read.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;

use hygeia_identity::Keypair;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::{json, Value};

fn new_key(dir: &Path, name: &str) -> (Keypair, String) {
    let path = dir.join(format!("{name}.key"));
    let key = Keypair::generate();
    key.write_key_file(&path).unwrap();
    (key, path.display().to_string())
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn token(node: &str, key: &str) -> String {
    let output = common::hygeia(&["fhir", "token", "--node", node, "--key", key]);
    assert!(output.status.success(), "{}", stderr(&output));
    let token = stdout(&output).trim().to_owned();
    assert!(
        !token.is_empty() && !token.contains(char::is_whitespace),
        "{token:?}"
    );
    token
}

/// GET with a bearer token: (status, JSON body).
fn get(node: &str, token: &str, path: &str) -> (u16, Value) {
    let response = common::client()
        .get(format!("{node}/fhir/{path}"))
        .bearer_auth(token)
        .send()
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

fn date_time(unix: i64) -> String {
    hygeia_fhir::date::format_instant(unix * 1000).replace(".000Z", "+00:00")
}

#[test]
fn token_import_and_consent_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let governance = Keypair::generate();
    let node = common::NodeProcess::start_with(
        &dir.path().join("node"),
        &["--governance", &governance.did().to_string()],
    );
    let url = node.url.clone();
    let (patient, patient_key) = new_key(dir.path(), "patient");
    let (clinician, clinician_key) = new_key(dir.path(), "clinician");
    // Reads for treatment need a licence from a trusted board.
    let board = Keypair::generate();
    common::signed::trust_licence_issuer(&node, &governance, &board.did().to_string(), &["FR"]);
    let (status, answer) = common::signed::register_licence(&node, &board, &clinician, "FR", None);
    assert_eq!(status, 201, "{answer}");
    let patient_did = patient.did().to_string();

    // `hygeia fhir token` prints a token, alone, that the FHIR API takes.
    let patient_token = token(&url, &patient_key);
    let (status, bundle) = get(&url, &patient_token, "Observation?_count=1");
    assert_eq!(status, 200, "{bundle}");
    assert_eq!(get(&url, "not-a-token", "Observation").0, 401);

    // A synthetic history as NDJSON, the Patient last: the import writes
    // Patients first, whatever the file's order.
    let mut rng = StdRng::seed_from_u64(7);
    let synthetic = hygeia_fhir::synthetic::generate_patient(&mut rng, 1, &patient_did, 40);
    let mut resources = synthetic.resources.clone();
    resources.rotate_left(1);
    let file = dir.path().join("history.ndjson");
    std::fs::write(&file, hygeia_fhir::synthetic::to_ndjson(&resources)).unwrap();
    let file = file.display().to_string();
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for r in &resources {
        *expected
            .entry(r["resourceType"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }

    // Someone without write consent is refused: the node's diagnostics are
    // shown, the exit is non-zero, and nothing was applied.
    let refused = common::hygeia(&[
        "import",
        &file,
        "--node",
        &url,
        "--key",
        &clinician_key,
        "--per-bundle",
        "15",
    ]);
    assert!(!refused.status.success());
    let text = stderr(&refused);
    assert!(text.contains("403") && text.contains("forbidden"), "{text}");
    assert!(
        text.contains("Bundle 1 of 3") && text.contains("0 Bundle(s) (0 resources) were applied"),
        "{text}"
    );

    let output = common::hygeia(&[
        "import",
        &file,
        "--node",
        &url,
        "--key",
        &patient_key,
        "--per-bundle",
        "15",
        "--json",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let summary: Value = serde_json::from_str(stdout(&output).trim()).unwrap();
    assert_eq!(summary["resources"], 40, "{summary}");
    assert_eq!(summary["bundles"], 3, "{summary}");
    for (resource_type, count) in &expected {
        assert_eq!(
            summary["types"][resource_type]["created"], *count,
            "{summary}"
        );
        assert_eq!(summary["types"][resource_type]["updated"], 0, "{summary}");
    }

    // What was imported is searchable.
    let observations = expected["Observation"];
    let (status, found) = get(
        &url,
        &patient_token,
        &format!(
            "Observation?patient=Patient/{}&_count=200",
            synthetic.patient_id
        ),
    );
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["total"], observations, "{found}");
    let observation = synthetic
        .resources
        .iter()
        .find(|r| r["resourceType"] == "Observation")
        .unwrap();
    let code = observation["code"]["coding"][0]["code"].as_str().unwrap();
    let (_, by_code) = get(
        &url,
        &patient_token,
        &format!(
            "Observation?patient=Patient/{}&code=http://loinc.org%7C{code}",
            synthetic.patient_id
        ),
    );
    assert!(by_code["total"].as_u64().unwrap() >= 1, "{by_code}");
    let observation_path = format!("Observation/{}", observation["id"].as_str().unwrap());

    // Without consent the clinician cannot read it.
    let clinician_token = token(&url, &clinician_key);
    assert_eq!(get(&url, &clinician_token, &observation_path).0, 404);

    // The patient grants Observation reads with a FHIR Consent.
    let now = common::signed::now() as i64;
    let did_reference =
        |did: &str| json!({"identifier": {"system": "urn:ietf:rfc:3986", "value": did}});
    let consent = json!({
        "resourceType": "Consent",
        "status": "active",
        "subject": did_reference(&patient_did),
        "decision": "permit",
        "provision": [{
            "period": {"start": date_time(now - 60), "end": date_time(now + 86_400)},
            "actor": [{"reference": did_reference(&clinician.did().to_string())}],
            "action": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": "access"}]}],
            "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}],
            "resourceType": [{"system": "http://hl7.org/fhir/fhir-types", "code": "Observation"}],
        }],
    });
    let consent_file = dir.path().join("consent.json");
    std::fs::write(&consent_file, consent.to_string()).unwrap();
    let consent_file = consent_file.display().to_string();

    // A Consent of a shape a grant cannot hold is refused before anything
    // is signed, naming the element.
    let mut unbounded = consent.clone();
    unbounded["provision"][0]
        .as_object_mut()
        .unwrap()
        .remove("period");
    let unbounded_file = dir.path().join("unbounded.json");
    std::fs::write(&unbounded_file, unbounded.to_string()).unwrap();
    let output = common::hygeia(&[
        "fhir",
        "consent",
        "grant",
        "--node",
        &url,
        "--key",
        &patient_key,
        "--consent",
        unbounded_file.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("Consent.provision[0].period"),
        "{}",
        stderr(&output)
    );

    let output = common::hygeia(&[
        "fhir",
        "consent",
        "grant",
        "--node",
        &url,
        "--key",
        &patient_key,
        "--consent",
        &consent_file,
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let created: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(created["resourceType"], "Consent");
    assert_eq!(created["status"], "active");
    let grant = created["id"].as_str().unwrap().to_owned();
    assert_eq!(grant.len(), 64, "{created}");

    let (status, read) = get(&url, &clinician_token, &observation_path);
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["id"], observation["id"]);

    // Revoked, it stops working at once.
    let output = common::hygeia(&[
        "fhir",
        "consent",
        "revoke",
        "--node",
        &url,
        "--key",
        &patient_key,
        "--id",
        &grant,
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(get(&url, &clinician_token, &observation_path).0, 404);
    let (status, consent) = get(&url, &patient_token, &format!("Consent/{grant}"));
    assert_eq!(status, 200, "{consent}");
    assert_eq!(consent["status"], "inactive");
}
