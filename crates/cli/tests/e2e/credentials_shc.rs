//! SMART Health Cards end to end: a real node issues cards at
//! `$health-cards-issue` under consent, publishes its key set at
//! `/.well-known/jwks.json`, and `hygeia shc export|verify` hand the cards
//! out and check them — and refuse tampered ones with their codes.

use crate::common;

use std::path::Path;

use common::signed::{did, login, now, submit, Network};
use hygeia_credentials::shc::{self, Jwks};
use hygeia_identity::Keypair;
use reqwest::blocking::Response;
use serde_json::{json, Value};

const FHIR_JSON: &str = "application/fhir+json";
const ISSUER: &str = "https://test.example/log";
const IMMUNIZATION: &str = "https://smarthealth.cards#immunization";
const LABORATORY: &str = "https://smarthealth.cards#laboratory";

fn answer(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(json!({ "raw": text })),
    )
}

fn send(
    net: &Network,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: &Value,
) -> (u16, Value) {
    answer(
        common::client()
            .request(method, format!("{}/fhir/{path}", net.node.url))
            .bearer_auth(token)
            .header("content-type", FHIR_JSON)
            .body(serde_json::to_vec(body).unwrap())
            .send()
            .unwrap(),
    )
}

fn post(net: &Network, token: &str, path: &str, body: &Value) -> (u16, Value) {
    send(net, token, reqwest::Method::POST, path, body)
}

/// `$health-cards-issue` for Patient/p1 with these credentialTypes.
fn issue(net: &Network, token: &str, types: &[&str], since: Option<&str>) -> (u16, Value) {
    let mut parameter: Vec<Value> = types
        .iter()
        .map(|t| json!({"name": "credentialType", "valueUri": t}))
        .collect();
    if let Some(since) = since {
        parameter.push(json!({"name": "_since", "valueDateTime": since}));
    }
    post(
        net,
        token,
        "Patient/p1/$health-cards-issue",
        &json!({"resourceType": "Parameters", "parameter": parameter}),
    )
}

/// The verifiableCredential values of a `$health-cards-issue` answer.
fn cards(parameters: &Value) -> Vec<String> {
    parameters["parameter"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["name"] == "verifiableCredential")
        .map(|p| p["valueString"].as_str().unwrap().to_owned())
        .collect()
}

fn node_jwks(net: &Network) -> Jwks {
    let bytes = net.node.get("/.well-known/jwks.json").bytes().unwrap();
    Jwks::from_json(&bytes).unwrap()
}

/// Verifies with the node's key set, trusting only the node's issuer URL.
fn verify(net: &Network, jws: &str) -> shc::VerifiedHealthCard {
    let jwks = node_jwks(net);
    shc::verify(
        jws,
        &|iss| (iss == ISSUER).then(|| jwks.clone()),
        now() as i64,
    )
    .unwrap()
}

fn resource_types(card: &shc::VerifiedHealthCard) -> Vec<String> {
    card.fhir_bundle()["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["resourceType"].as_str().unwrap().to_owned())
        .collect()
}

fn patient_resource(patient: &Keypair) -> Value {
    json!({
        "resourceType": "Patient",
        "id": "p1",
        "identifier": [{ "system": "urn:ietf:rfc:3986", "value": did(patient) }],
        "name": [{ "family": "Anyperson", "given": ["John", "B."] }],
        "gender": "male",
        "birthDate": "1951-01-20",
        "address": [{ "city": "Nowhere" }],
    })
}

fn immunization() -> Value {
    json!({
        "resourceType": "Immunization",
        "status": "completed",
        "vaccineCode": { "coding": [{ "system": "http://hl7.org/fhir/sid/cvx", "code": "207" }] },
        "patient": { "reference": "Patient/p1" },
        "occurrenceDateTime": "2021-01-01",
        "lotNumber": "0000001",
        "note": [{ "text": "a private remark that must not reach the card" }],
    })
}

fn observation(category: &str, code: &str, value: f64) -> Value {
    json!({
        "resourceType": "Observation",
        "status": "final",
        "category": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": category }] }],
        "code": { "coding": [{ "system": "http://loinc.org", "code": code }] },
        "subject": { "reference": "Patient/p1" },
        "effectiveDateTime": "2025-03-04T09:30:00Z",
        "valueQuantity": { "value": value, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%" },
    })
}

fn grant(net: &Network, grantee: &Keypair, categories: &[&str]) {
    let now = now() as i64;
    let (status, answer) = submit(
        &net.node,
        &net.patient,
        "consent.grant",
        json!({
            "patient": did(&net.patient),
            "grantee": did(grantee),
            "scope": {"categories": categories},
            "actions": ["read"],
            "purpose": "TREAT",
            "not_before": now - 60,
            "not_after": now + 86_400,
        }),
    );
    assert_eq!(status, 201, "{answer}");
}

/// A patient with a Patient resource, an immunization, a lab result and a
/// vital sign (which no lab card may carry). Returns the patient's token
/// and the immunization's and lab result's ids.
fn seed(net: &Network) -> (String, String, String) {
    let token = login(net, &net.patient, "TREAT");
    let (status, created) = send(
        net,
        &token,
        reqwest::Method::PUT,
        "Patient/p1",
        &patient_resource(&net.patient),
    );
    assert_eq!(status, 201, "{created}");
    let (status, imm) = post(net, &token, "Immunization", &immunization());
    assert_eq!(status, 201, "{imm}");
    let (status, lab) = post(
        net,
        &token,
        "Observation",
        &observation("laboratory", "4548-4", 6.1),
    );
    assert_eq!(status, 201, "{lab}");
    let (status, vital) = post(
        net,
        &token,
        "Observation",
        &observation("vital-signs", "8867-4", 60.0),
    );
    assert_eq!(status, 201, "{vital}");
    (
        token,
        imm["id"].as_str().unwrap().to_owned(),
        lab["id"].as_str().unwrap().to_owned(),
    )
}

fn hygeia_ok(args: &[&str]) -> String {
    let out = common::hygeia(args);
    assert!(
        out.status.success(),
        "hygeia {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `hygeia shc verify`, expecting a refusal: (exit code, stdout).
fn refused(args: &[&str]) -> (i32, String) {
    let out = common::hygeia(args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn write_key(dir: &Path, name: &str, key: &Keypair) -> String {
    let path = dir.join(name);
    Keypair::from_seed(&key.as_dalek().to_bytes())
        .write_key_file(&path)
        .unwrap();
    path.display().to_string()
}

#[test]
fn the_patient_exports_cards_that_verify_with_the_nodes_keys() {
    let net = Network::start(&[]);
    let (token, imm_id, lab_id) = seed(&net);

    // An immunization card: the Patient (name and birth date only) and the
    // Immunization, minified, signed by the key the node publishes.
    let (status, parameters) = issue(&net, &token, &[IMMUNIZATION], None);
    assert_eq!(status, 200, "{parameters}");
    assert_eq!(parameters["resourceType"], "Parameters");
    let issued = cards(&parameters);
    assert_eq!(issued.len(), 1, "{parameters}");
    let card = verify(&net, &issued[0]);
    assert_eq!(card.iss(), ISSUER);
    assert!(card.has_type(IMMUNIZATION), "{:?}", card.types());
    assert!(!card.has_type(LABORATORY));
    assert_eq!(resource_types(&card), ["Patient", "Immunization"]);
    let bundle = card.fhir_bundle();
    assert_eq!(
        bundle["entry"][0]["resource"],
        json!({
            "resourceType": "Patient",
            "name": [{ "family": "Anyperson", "given": ["John", "B."] }],
            "birthDate": "1951-01-20",
        }),
        "no identifier (the patient's DID), address or gender on a card"
    );
    let vaccination = &bundle["entry"][1]["resource"];
    assert_eq!(vaccination["patient"]["reference"], "resource:0");
    assert_eq!(vaccination["vaccineCode"]["coding"][0]["code"], "207");
    assert!(vaccination.get("note").is_none() && vaccination.get("id").is_none());
    let links: Vec<String> = parameters["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "resourceLink")
        .map(|p| p["part"][2]["valueUri"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(links.len(), 2);
    assert!(links[0].ends_with("/fhir/Patient/p1"), "{links:?}");
    assert!(
        links[1].ends_with(&format!("/fhir/Immunization/{imm_id}")),
        "{links:?}"
    );

    // A lab card holds lab results, not vital signs; both types together
    // hold both kinds (several credentialTypes are a logical AND).
    let (_, parameters) = issue(&net, &token, &[LABORATORY], None);
    let card = verify(&net, &cards(&parameters)[0]);
    assert_eq!(resource_types(&card), ["Patient", "Observation"]);
    assert_eq!(
        card.fhir_bundle()["entry"][1]["resource"]["code"]["coding"][0]["code"],
        "4548-4"
    );
    let (_, parameters) = issue(&net, &token, &["Immunization", "Observation"], None);
    let card = verify(&net, &cards(&parameters)[0]);
    assert_eq!(
        resource_types(&card),
        ["Patient", "Immunization", "Observation"]
    );
    assert!(card.has_type(IMMUNIZATION) && card.has_type(LABORATORY));
    // COVID-19 only: CVX 207 is a COVID-19 vaccine; HbA1c is no COVID test.
    let (_, parameters) = issue(&net, &token, &["https://smarthealth.cards#covid19"], None);
    let card = verify(&net, &cards(&parameters)[0]);
    assert_eq!(resource_types(&card), ["Patient", "Immunization"]);
    assert!(card.has_type("https://smarthealth.cards#covid19"));

    // Nothing updated since a future date: a Parameters without parameters.
    let (status, parameters) = issue(&net, &token, &[IMMUNIZATION], Some("2999"));
    assert_eq!(status, 200);
    assert_eq!(parameters, json!({"resourceType": "Parameters"}));

    // The CLI: export, then check the file and the QR text.
    let dir = tempfile::tempdir().unwrap();
    let key = write_key(dir.path(), "patient.key", &net.patient);
    let file = dir.path().join("card.smart-health-card");
    let qr = dir.path().join("qr.txt");
    let out = hygeia_ok(&[
        "shc",
        "export",
        "--key",
        &key,
        "--node",
        &net.node.url,
        "--patient",
        "p1",
        "--type",
        "immunization",
        "--out",
        file.to_str().unwrap(),
        "--qr",
        qr.to_str().unwrap(),
    ]);
    assert!(
        out.contains(ISSUER) && out.contains("Immunization"),
        "{out}"
    );
    let jws = shc::parse_file(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(jws.len(), 1);
    let qr_text = std::fs::read_to_string(&qr).unwrap();
    let lines: Vec<&str> = qr_text.lines().collect();
    assert_eq!(lines.len(), 1, "a small card fits one QR code");
    assert!(lines[0].starts_with("shc:/"));
    assert_eq!(
        shc::decode_qr(&lines).unwrap(),
        jws[0],
        "the QR holds the same JWS"
    );
    verify(&net, &jws[0]);

    for input in [&file, &qr] {
        let out = hygeia_ok(&[
            "shc",
            "verify",
            "--node",
            &net.node.url,
            input.to_str().unwrap(),
        ]);
        assert!(out.starts_with("valid SMART Health Card"), "{out}");
        assert!(out.contains(&format!("issuer: {ISSUER}")), "{out}");
        assert!(out.contains(IMMUNIZATION), "{out}");
        assert!(out.contains("issued (nbf): "), "{out}");
        assert!(
            out.contains("Immunization  http://hl7.org/fhir/sid/cvx|207"),
            "{out}"
        );
        assert!(out.contains("Patient  Anyperson, John B."), "{out}");
    }
    // With a key set held locally, pinned to the issuer.
    let jwks_file = dir.path().join("jwks.json");
    std::fs::write(
        &jwks_file,
        net.node.get("/.well-known/jwks.json").bytes().unwrap(),
    )
    .unwrap();
    let jwks_path = jwks_file.to_str().unwrap();
    hygeia_ok(&[
        "shc",
        "verify",
        "--jwks",
        jwks_path,
        "--issuer",
        ISSUER,
        qr.to_str().unwrap(),
    ]);
    let (code, out) = refused(&[
        "shc",
        "verify",
        "--jwks",
        jwks_path,
        "--issuer",
        "https://other.example",
        qr.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("refused: shc-unknown-issuer"), "{out}");

    // Tampered QR text: one character of the signature changed.
    let sig_char = jws[0].len() - 20;
    let original = jws[0].as_bytes()[sig_char];
    let replacement = if original == b'A' { b'B' } else { b'A' };
    let pair = |c: u8| format!("{:02}", c - b'-');
    let at = "shc:/".len() + 2 * sig_char;
    assert_eq!(&lines[0][at..at + 2], pair(original));
    let tampered_qr = format!(
        "{}{}{}",
        &lines[0][..at],
        pair(replacement),
        &lines[0][at + 2..]
    );
    let tampered_qr_file = dir.path().join("tampered-qr.txt");
    std::fs::write(&tampered_qr_file, &tampered_qr).unwrap();
    let (code, out) = refused(&[
        "shc",
        "verify",
        "--node",
        &net.node.url,
        tampered_qr_file.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("refused: shc-bad-signature"), "{out}");
    // Not a QR code a card can be read from at all.
    std::fs::write(&tampered_qr_file, format!("{}99", lines[0])).unwrap();
    let (code, out) = refused(&[
        "shc",
        "verify",
        "--node",
        &net.node.url,
        tampered_qr_file.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("refused: shc-malformed-qr"), "{out}");

    // Tampered file: the payload of another genuine card under this card's
    // signature.
    let (_, parameters) = issue(&net, &token, &[LABORATORY], None);
    let other = cards(&parameters).remove(0);
    let mine: Vec<&str> = jws[0].split('.').collect();
    let theirs: Vec<&str> = other.split('.').collect();
    let forged = format!("{}.{}.{}", mine[0], theirs[1], mine[2]);
    let forged_file = dir.path().join("forged.smart-health-card");
    std::fs::write(&forged_file, shc::file_json(&[&forged])).unwrap();
    let (code, out) = refused(&[
        "shc",
        "verify",
        "--node",
        &net.node.url,
        forged_file.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("refused: shc-bad-signature"), "{out}");
    std::fs::write(&forged_file, r#"{"verifiableCredential": "not a list"}"#).unwrap();
    let (code, out) = refused(&[
        "shc",
        "verify",
        "--node",
        &net.node.url,
        forged_file.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("refused: shc-malformed-file"), "{out}");

    // Every decision was logged: the patient's own exports (the CLI's
    // purpose is PATRQT) name the Patient and the Immunization.
    let feed = net.feed();
    let exported = feed["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"]["purpose"] == "PATRQT" && e["event"]["decision"] == "permit")
        .map(|e| e["event"]["records"].as_array().unwrap().len())
        .max();
    assert_eq!(exported, Some(2), "{feed}");
    let _ = lab_id;
}

#[test]
fn a_requester_exports_only_what_they_may_read() {
    let net = Network::start(&[]);
    let (_, _, lab_id) = seed(&net);
    let dir = tempfile::tempdir().unwrap();

    // No consent: the Patient is not theirs to read, and the answer is the
    // same 404 as for a Patient that does not exist. No card, no content.
    let clinician = login(&net, &net.clinician, "TREAT");
    let (status, denied) = issue(&net, &clinician, &[IMMUNIZATION], None);
    assert_eq!(status, 404, "{denied}");
    let (status, missing) = post(
        &net,
        &clinician,
        "Patient/nobody/$health-cards-issue",
        &json!({"resourceType": "Parameters", "parameter": [{"name": "credentialType", "valueUri": IMMUNIZATION}]}),
    );
    assert_eq!(status, 404);
    assert_eq!(denied["issue"][0]["code"], missing["issue"][0]["code"]);
    assert!(!denied.to_string().contains("Anyperson"));
    let key = write_key(dir.path(), "clinician.key", &net.clinician);
    let file = dir.path().join("card.smart-health-card");
    let out = common::hygeia(&[
        "shc",
        "export",
        "--key",
        &key,
        "--node",
        &net.node.url,
        "--patient",
        "p1",
        "--type",
        "immunization",
        "--purpose",
        "TREAT",
        "--out",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("404"));
    assert!(!file.exists());

    // The denial is on the ledger, in the patient's feed.
    let feed = net.feed();
    assert!(
        feed["events"].as_array().unwrap().iter().any(|e| {
            e["event"]["requester"] == did(&net.clinician) && e["event"]["decision"] == "deny"
        }),
        "{feed}"
    );

    // A grant of the Patient and lab results: a lab card, and nothing of the
    // immunization — not on a lab card, and no immunization card at all.
    grant(&net, &net.clinician, &["patient", "lab"]);
    let (status, parameters) = issue(&net, &clinician, &[LABORATORY], None);
    assert_eq!(status, 200, "{parameters}");
    let card = verify(&net, &cards(&parameters)[0]);
    assert_eq!(resource_types(&card), ["Patient", "Observation"]);
    let links = parameters.to_string();
    assert!(links.contains(&format!("Observation/{lab_id}")));
    let (status, parameters) = issue(&net, &clinician, &[IMMUNIZATION], None);
    assert_eq!(status, 200);
    assert_eq!(
        parameters,
        json!({"resourceType": "Parameters"}),
        "denied resources are left out"
    );
    let (_, parameters) = issue(&net, &clinician, &[IMMUNIZATION, LABORATORY], None);
    assert_eq!(
        parameters,
        json!({"resourceType": "Parameters"}),
        "a card must hold every kind asked for; the immunization is not theirs"
    );
    let (_, parameters) = issue(
        &net,
        &clinician,
        &["https://smarthealth.cards#health-card"],
        None,
    );
    let card = verify(&net, &cards(&parameters)[0]);
    assert_eq!(resource_types(&card), ["Patient", "Observation"]);
    assert!(!parameters.to_string().contains("Immunization"));
}

#[test]
fn the_issuer_key_outlives_restarts_and_the_public_url_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let kid = |node: &common::NodeProcess| {
        let jwks: Value = node.get("/.well-known/jwks.json").json().unwrap();
        jwks["keys"][0]["kid"].as_str().unwrap().to_owned()
    };
    let first = {
        let node = common::NodeProcess::start_with(
            &data,
            &["--public-url", "https://cards.example.org/hygeia"],
        );
        let info: Value = node.get("/v1/node").json().unwrap();
        assert_eq!(
            info["health_cards"]["issuer"],
            "https://cards.example.org/hygeia"
        );
        kid(&node)
    };
    let node = common::NodeProcess::start(&data);
    assert_eq!(
        kid(&node),
        first,
        "the key made at the first start is reused"
    );
    drop(node);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("shc-issuer.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    for bad in ["http://cards.example.org", "https://cards.example.org/"] {
        let out = common::hygeia(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--network",
            common::NETWORK,
            "--data-dir",
            data.to_str().unwrap(),
            "--public-url",
            bad,
        ]);
        assert!(!out.status.success(), "{bad} accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--public-url"), "{stderr}");
    }
}
