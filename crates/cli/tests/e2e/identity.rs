//! Identity after recovery, research eligibility over the node, and
//! zero-knowledge proofs from the command line, end to end: a real node,
//! the `hygeia` CLI, HTTP underneath.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::signed::{did, error_code, now, signature_headers, signed_get, submit, Network};
use common::{client, hygeia, NodeProcess};
use hygeia_credentials::zk::{
    respond, CommittedAttributeCredential, Criteria, EnrolmentToken, Opening, PatientSecret,
};
use hygeia_identity::Keypair;
use reqwest::blocking::Response;
use reqwest::Method;
use serde_json::{json, Value};

fn ok_json(output: Output) -> Value {
    assert!(
        output.status.success(),
        "hygeia failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

fn refused(output: Output, code: &str) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !output.status.success(),
        "expected a refusal with {code}, got: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(stderr.contains(code), "expected {code} in: {stderr}");
    stderr
}

fn key_file(dir: &Path, name: &str, key: &Keypair) -> PathBuf {
    let path = dir.join(format!("{name}.key"));
    key.write_key_file(&path).unwrap();
    path
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn signed_post(node: &NodeProcess, key: &Keypair, path: &str, body: &[u8]) -> Response {
    let mut request = client()
        .post(format!("{}{path}", node.url))
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (name, value) in signature_headers(key, &Method::POST, path, Some(body)) {
        request = request.header(name, value);
    }
    request.send().unwrap()
}

// ---------------------------------------------------------------- recovery

#[test]
fn a_lost_device_is_replaced_through_guardians() {
    let net = Network::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let url = net.node.url.as_str();
    let patient_did = did(&net.patient);
    let patient_key = key_file(dir.path(), "patient", &net.patient);
    let guardians: Vec<String> = (0..3).map(|_| did(&Keypair::generate())).collect();
    let out_dir = dir.path().join("guardians");

    // 2-of-3 recovery, set up from the patient's device.
    let mut args = vec![
        "recovery",
        "setup",
        "--key",
        s(&patient_key),
        "--node",
        url,
        "--threshold",
        "2",
        "--out-dir",
        s(&out_dir),
    ];
    for guardian in &guardians {
        args.extend(["--guardian", guardian.as_str()]);
    }
    let setup = ok_json(hygeia(&args));
    let recovery_key = setup["recovery_key"].as_str().unwrap().to_owned();
    assert_eq!(setup["guardians"].as_array().unwrap().len(), 3);
    for i in 1..=3 {
        assert!(out_dir.join(format!("share-{i}.json")).exists());
    }
    let verifier = out_dir.join("verifier.json");
    // The shares are handed out; nothing on disk holds the secret itself.
    let share = |i: usize| out_dir.join(format!("share-{i}.json"));
    let setup_text = serde_json::to_string(&setup).unwrap();
    assert!(!setup_text.contains("\"secret\""));

    // The device is lost.
    std::fs::remove_file(&patient_key).unwrap();
    let new_key_path = dir.path().join("phone2.key");

    // One guardian alone cannot recover.
    refused(
        hygeia(&[
            "recovery",
            "recover",
            "--node",
            url,
            "--verifier",
            s(&verifier),
            "--share",
            s(&share(2)),
            "--identity",
            &patient_did,
            "--new-key",
            s(&new_key_path),
        ]),
        "recovery-not-enough-shares",
    );
    assert!(!new_key_path.exists());

    // A damaged share is named.
    let damaged = dir.path().join("damaged.json");
    let mut text: Value = serde_json::from_slice(&std::fs::read(share(3)).unwrap()).unwrap();
    let own = text["value"].as_str().unwrap().to_owned();
    let other: Value = serde_json::from_slice(&std::fs::read(share(1)).unwrap()).unwrap();
    assert_ne!(own, other["value"].as_str().unwrap());
    text["value"] = other["value"].clone();
    std::fs::write(&damaged, serde_json::to_vec(&text).unwrap()).unwrap();
    refused(
        hygeia(&[
            "recovery",
            "recover",
            "--node",
            url,
            "--verifier",
            s(&verifier),
            "--share",
            s(&share(1)),
            "--share",
            s(&damaged),
            "--identity",
            &patient_did,
            "--new-key",
            s(&new_key_path),
        ]),
        "recovery-share-invalid",
    );

    // A stranger cannot move the identity.
    let stranger = Keypair::generate();
    let (status, answer) = submit(
        &net.node,
        &stranger,
        "identity.rotate",
        serde_json::to_value(hygeia_node::state::txs::IdentityRotate::accepted_by(
            &patient_did,
            &Keypair::generate(),
        ))
        .unwrap(),
    );
    assert_eq!(status, 403, "{answer}");
    assert_eq!(answer["error"]["code"], "identity.rotate_not_allowed");

    // Two guardians move it to a new key.
    let rotated = ok_json(hygeia(&[
        "recovery",
        "recover",
        "--node",
        url,
        "--verifier",
        s(&verifier),
        "--share",
        s(&share(1)),
        "--share",
        s(&share(3)),
        "--identity",
        &patient_did,
        "--new-key",
        s(&new_key_path),
    ]));
    let new_key = Keypair::read_key_file(&new_key_path).unwrap();
    assert_eq!(rotated["new_key"], did(&new_key));
    assert_eq!(rotated["identity"], patient_did.as_str());

    // The new key reads the patient's record (as the patient: the record
    // and its access event name the identity) ...
    let read = hygeia(&[
        "record",
        "get",
        "--key",
        s(&new_key_path),
        "--node",
        url,
        &net.record,
    ]);
    assert!(
        read.status.success(),
        "{}",
        String::from_utf8_lossy(&read.stderr)
    );
    assert_eq!(read.stdout, br#"{"resourceType":"Observation"}"#);
    let list = signed_get(
        &net.node,
        &new_key,
        &format!("/v1/records?patient={patient_did}"),
    );
    assert_eq!(list.status().as_u16(), 200);
    let list: Value = list.json().unwrap();
    assert_eq!(list["records"][0]["commitment"], net.record.as_str());

    // ... and its audit feed, where that read is the newest event.
    let feed = signed_get(
        &net.node,
        &new_key,
        &format!("/v1/audit?patient={patient_did}"),
    );
    assert_eq!(feed.status().as_u16(), 200);
    let feed: Value = feed.json().unwrap();
    let newest = &feed["events"][0]["event"];
    assert_eq!(newest["requester"], patient_did.as_str());
    assert_eq!(newest["action"], "read");
    assert_eq!(newest["decision"], "permit");

    // The new key signs ledger changes for the identity too.
    let (status, answer) = submit(
        &net.node,
        &new_key,
        "consent.grant",
        net.grant_body(&net.clinician),
    );
    assert_eq!(status, 201, "{answer}");

    // The old key is refused, for requests and for transactions.
    let response = signed_get(
        &net.node,
        &net.patient,
        &format!("/v1/records?patient={patient_did}"),
    );
    assert_eq!(error_code(response), (403, "identity.key_retired".into()));
    let response = signed_get(
        &net.node,
        &net.patient,
        &format!("/v1/records/{}", net.record),
    );
    assert_eq!(error_code(response), (403, "identity.key_retired".into()));
    let (status, answer) = submit(
        &net.node,
        &net.patient,
        "consent.grant",
        net.grant_body(&net.clinician),
    );
    assert_eq!(status, 403, "{answer}");
    assert_eq!(answer["error"]["code"], "identity.key_retired");
    // Nor can it take the identity back.
    let (status, answer) = submit(
        &net.node,
        &net.patient,
        "identity.rotate",
        serde_json::to_value(hygeia_node::state::txs::IdentityRotate::accepted_by(
            &patient_did,
            &Keypair::generate(),
        ))
        .unwrap(),
    );
    assert_eq!(status, 403, "{answer}");

    // The DID's history shows the registration and the rotation.
    let history: Value = net
        .node
        .get(&format!("/v1/dids/{patient_did}/history"))
        .json()
        .unwrap();
    let entries = history["entries"].as_array().unwrap();
    let types: Vec<&str> = entries.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(types, ["identity.recovery", "identity.rotate"], "{history}");
    assert_eq!(entries[0]["recovery_key"], recovery_key.as_str());
    assert_eq!(entries[1]["from"], patient_did.as_str());
    assert_eq!(entries[1]["to"], did(&new_key));
}

// ---------------------------------------------------------------- research

struct Patient {
    key: Keypair,
    key_path: PathBuf,
    credential: PathBuf,
    opening: PathBuf,
    secret: PathBuf,
}

fn issue(
    dir: &Path,
    lab_key: &Path,
    name: &str,
    value: &str,
    extra: &[&str],
) -> (PathBuf, PathBuf) {
    let credential = dir.join(format!("{name}-cred.json"));
    let opening = dir.join(format!("{name}-opening.json"));
    let mut args = vec![
        "zk",
        "issue",
        "--key",
        s(lab_key),
        "--attribute",
        "hba1c",
        "--value",
        value,
        "--out",
        s(&credential),
        "--opening",
        s(&opening),
    ];
    args.extend_from_slice(extra);
    let issued = ok_json(hygeia(&args));
    assert!(issued["holder"].is_null() || !extra.contains(&"--eligibility"));
    (credential, opening)
}

fn research_grant(net: &Network, patient: &Keypair, grantee: &str, purpose: &str) {
    let now = now() as i64;
    let (status, answer) = submit(
        &net.node,
        patient,
        "consent.grant",
        json!({
            "patient": did(patient),
            "grantee": grantee,
            "scope": {"categories": ["lab"]},
            "actions": ["read"],
            "purpose": purpose,
            "not_before": now - 60,
            "not_after": now + 86_400,
        }),
    );
    assert_eq!(status, 201, "{answer}");
}

fn answer_args<'a>(url: &'a str, study: &'a str, p: &'a Patient) -> Vec<&'a str> {
    vec![
        "research",
        "answer",
        "--key",
        s(&p.key_path),
        "--node",
        url,
        "--study",
        study,
        "--credential",
        s(&p.credential),
        "--opening",
        s(&p.opening),
        "--secret",
        s(&p.secret),
    ]
}

#[test]
fn researchers_count_eligible_patients_without_learning_who() {
    let net = Network::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let url = net.node.url.as_str();
    let study = "prevention-2025";
    let lab = Keypair::generate();
    let lab_key = key_file(dir.path(), "lab", &lab);
    let researcher_key = key_file(dir.path(), "researcher", &net.researcher);

    // The researcher publishes the criteria: 6.5 % <= HbA1c < 9.0 %.
    let published = ok_json(hygeia(&[
        "research",
        "publish",
        "--key",
        s(&researcher_key),
        "--node",
        url,
        "--study",
        study,
        "--attribute",
        "hba1c",
        "--between",
        "6.5,9.0",
        "--issuer",
        &did(&lab),
    ]));
    assert_eq!(published["study_id"], study);
    // Only researchers publish; a study id is taken once.
    let patient_key = key_file(dir.path(), "first-patient", &net.patient);
    refused(
        hygeia(&[
            "research",
            "publish",
            "--key",
            s(&patient_key),
            "--node",
            url,
            "--study",
            "other",
            "--between",
            "6.5,9.0",
            "--issuer",
            &did(&lab),
        ]),
        "research.not_researcher",
    );
    refused(
        hygeia(&[
            "research",
            "publish",
            "--key",
            s(&researcher_key),
            "--node",
            url,
            "--study",
            study,
            "--between",
            "6.5,9.0",
            "--issuer",
            &did(&lab),
        ]),
        "research.study_exists",
    );

    // The criteria are public: ranges, issuers, challenge.
    let criteria: Value = net
        .node
        .get(&format!("/v1/research/studies/{study}"))
        .json()
        .unwrap();
    assert_eq!(
        criteria["criteria"]["requirement"]["range"],
        json!({"min_inclusive": 65, "max_exclusive": 90})
    );
    assert_eq!(criteria["criteria"]["accepted_issuers"], json!([did(&lab)]));

    // Three patients with lab-issued eligibility credentials and research
    // consent (one to the researcher's organization), one without consent.
    let patient = |name: &str, value: &str| {
        let key = Keypair::generate();
        let key_path = key_file(dir.path(), name, &key);
        let (credential, opening) = issue(dir.path(), &lab_key, name, value, &["--eligibility"]);
        Patient {
            key,
            key_path,
            credential,
            opening,
            secret: dir.path().join(format!("{name}.secret")),
        }
    };
    let low = patient("low", "6.0");
    let mid = patient("mid", "7.2");
    let high = patient("high", "8.1");
    let unconsented = patient("unconsented", "7.5");
    research_grant(&net, &low.key, &did(&net.researcher), "HRESCH");
    research_grant(&net, &mid.key, &did(&net.researcher), "HRESCH");
    research_grant(&net, &high.key, "did:web:lab.example", "HRESCH");
    // A treatment grant is no research consent.
    research_grant(&net, &unconsented.key, &did(&net.researcher), "TREAT");

    let counted = ok_json(hygeia(&answer_args(url, study, &mid)));
    assert_eq!(counted["counted"], true);
    ok_json(hygeia(&answer_args(url, study, &high)));
    // 6.0 % is outside the range: the wallet cannot prove it.
    refused(
        hygeia(&answer_args(url, study, &low)),
        "zk-value-out-of-range",
    );
    refused(
        hygeia(&answer_args(url, study, &unconsented)),
        "research.no_consent",
    );
    let stderr = refused(hygeia(&answer_args(url, study, &unconsented)), "403");
    assert!(stderr.contains("HRESCH"), "{stderr}");
    // Answering twice: 409.
    let stderr = refused(
        hygeia(&answer_args(url, study, &mid)),
        "research.already_answered",
    );
    assert!(stderr.contains("409"), "{stderr}");

    // What reaches the node, built with the library, to check its refusals.
    let criteria = Criteria::parse(&serde_json::to_vec(&criteria["criteria"]).unwrap()).unwrap();
    let path = format!("/v1/research/studies/{study}/responses");
    let read = |p: &Path| std::fs::read(p).unwrap();
    // Someone else's credential (copied) under a fresh pseudonym: 409.
    let copied = respond(
        &criteria,
        &CommittedAttributeCredential::parse(&read(&mid.credential)).unwrap(),
        &Opening::parse(&read(&mid.opening)).unwrap(),
        &PatientSecret::generate(),
    )
    .unwrap();
    let response = signed_post(&net.node, &low.key, &path, copied.to_json().as_bytes());
    assert_eq!(
        error_code(response),
        (409, "eligibility-duplicate-credential".into())
    );
    // A tampered answer: the pseudonym swapped after proving.
    let (credential, opening) = issue(dir.path(), &lab_key, "fresh", "7.0", &["--eligibility"]);
    let honest = respond(
        &criteria,
        &CommittedAttributeCredential::parse(&read(&credential)).unwrap(),
        &Opening::parse(&read(&opening)).unwrap(),
        &PatientSecret::generate(),
    )
    .unwrap();
    let mut tampered: Value = serde_json::from_str(&honest.to_json()).unwrap();
    tampered["enrolment_token"] =
        json!(EnrolmentToken::derive(&PatientSecret::generate(), study).to_string());
    let response = signed_post(
        &net.node,
        &low.key,
        &path,
        &serde_json::to_vec(&tampered).unwrap(),
    );
    assert_eq!(error_code(response), (422, "zk-proof-invalid".into()));
    // Without research consent, the node does not even look at the answer.
    let response = signed_post(
        &net.node,
        &unconsented.key,
        &path,
        honest.to_json().as_bytes(),
    );
    assert_eq!(error_code(response), (403, "research.no_consent".into()));

    // The tally: a count and pseudonyms, nobody's DID, no value.
    let tally = hygeia(&[
        "research",
        "tally",
        "--key",
        s(&researcher_key),
        "--node",
        url,
        "--study",
        study,
    ]);
    let text = String::from_utf8(tally.stdout.clone()).unwrap();
    let tally = ok_json(tally);
    assert_eq!(tally["qualifying"], 2);
    assert_eq!(tally["tokens"].as_array().unwrap().len(), 2);
    let mut members: Vec<&str> = tally
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    members.sort_unstable();
    assert_eq!(members, ["qualifying", "study_id", "tokens"]);
    assert!(!text.contains("did:"), "{text}");
    for value in ["7.2", "8.1", "6.0", "hba1c", "commitment"] {
        assert!(!text.contains(value), "{value} in {text}");
    }
    for token in tally["tokens"].as_array().unwrap() {
        assert_eq!(token.as_str().unwrap().len(), 43);
    }
    // Only the study's researcher reads it.
    refused(
        hygeia(&[
            "research",
            "tally",
            "--key",
            s(&mid.key_path),
            "--node",
            url,
            "--study",
            study,
        ]),
        "research.not_study_owner",
    );
}

// ---------------------------------------------------------------------- zk

#[test]
fn zk_prove_and_verify_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let lab = Keypair::generate();
    let lab_key = key_file(dir.path(), "lab", &lab);
    let holder = Keypair::generate();
    let holder_key = key_file(dir.path(), "holder", &holder);
    let (credential, opening) = issue(
        dir.path(),
        &lab_key,
        "bound",
        "6.4",
        &["--holder", &did(&holder)],
    );
    let nonce = hygeia(&["zk", "nonce"]);
    let nonce = String::from_utf8(nonce.stdout).unwrap().trim().to_owned();
    assert_eq!(nonce.len(), 64);
    let verifier = "did:web:care.example";
    let presentation = dir.path().join("p.json");
    let prove = |predicate: &[&str], key: Option<&Path>, out: &Path| {
        let mut args = vec![
            "zk",
            "prove",
            "--credential",
            s(&credential),
            "--opening",
            s(&opening),
            "--verifier",
            verifier,
            "--nonce",
            nonce.as_str(),
            "--out",
            s(out),
        ];
        args.extend_from_slice(predicate);
        if let Some(key) = key {
            args.extend(["--key", s(key)]);
        }
        hygeia(&args)
    };
    ok_json(prove(&["--below", "7.0"], Some(&holder_key), &presentation));
    let text = std::fs::read_to_string(&presentation).unwrap();
    assert!(!text.contains("\"value\"") && !text.contains("blinding"));

    let verify = |nonce: &str, issuer: &str, predicate: &[&str]| {
        let mut args = vec![
            "zk",
            "verify",
            "--presentation",
            s(&presentation),
            "--issuer",
            issuer,
            "--verifier",
            verifier,
            "--nonce",
            nonce,
        ];
        args.extend_from_slice(predicate);
        hygeia(&args)
    };
    let verified = ok_json(verify(&nonce, &did(&lab), &["--below", "7.0"]));
    assert_eq!(verified["verified"], true);
    assert_eq!(verified["holder"], did(&holder));
    assert_eq!(verified["loinc"], "4548-4");

    // Refusals, each with its code.
    let other_nonce = "00".repeat(32);
    refused(
        verify(&other_nonce, &did(&lab), &["--below", "7.0"]),
        "zk-wrong-challenge",
    );
    refused(
        verify(&nonce, &did(&Keypair::generate()), &["--below", "7.0"]),
        "zk-untrusted-issuer",
    );
    refused(
        verify(&nonce, &did(&lab), &["--below", "6.5"]),
        "zk-wrong-predicate",
    );
    let elsewhere = dir.path().join("q.json");
    refused(
        prove(&["--below", "6.0"], Some(&holder_key), &elsewhere),
        "zk-value-out-of-range",
    );
    refused(
        prove(&["--below", "7.0"], None, &elsewhere),
        "zk-holder-key-required",
    );
    refused(
        prove(&["--at-least-age", "18"], Some(&holder_key), &elsewhere),
        "zk-wrong-attribute",
    );
    assert!(!elsewhere.exists());

    // A birth date: "at least 18" without the date.
    let dob = dir.path().join("dob.json");
    let dob_opening = dir.path().join("dob-opening.json");
    ok_json(hygeia(&[
        "zk",
        "issue",
        "--key",
        s(&lab_key),
        "--attribute",
        "birth-date",
        "--value",
        "1990-04-02",
        "--holder",
        &did(&holder),
        "--out",
        s(&dob),
        "--opening",
        s(&dob_opening),
    ]));
    let age = dir.path().join("age.json");
    let age_args = |years: &str| {
        vec![
            "zk".to_owned(),
            "prove".into(),
            "--credential".into(),
            s(&dob).into(),
            "--opening".into(),
            s(&dob_opening).into(),
            "--at-least-age".into(),
            years.into(),
            "--today".into(),
            "2025-06-01".into(),
            "--verifier".into(),
            verifier.into(),
            "--nonce".into(),
            nonce.clone(),
            "--key".into(),
            s(&holder_key).into(),
            "--out".into(),
            s(&age).into(),
        ]
    };
    let run = |args: Vec<String>| hygeia(&args.iter().map(String::as_str).collect::<Vec<_>>());
    ok_json(run(age_args("18")));
    ok_json(hygeia(&[
        "zk",
        "verify",
        "--presentation",
        s(&age),
        "--issuer",
        &did(&lab),
        "--at-least-age",
        "18",
        "--today",
        "2025-06-01",
        "--verifier",
        verifier,
        "--nonce",
        &nonce,
    ]));
    std::fs::remove_file(&age).unwrap();
    refused(run(age_args("40")), "zk-value-out-of-range");

    // An opening is never overwritten.
    refused(
        hygeia(&[
            "zk",
            "issue",
            "--key",
            s(&lab_key),
            "--attribute",
            "hba1c",
            "--value",
            "5.0",
            "--eligibility",
            "--out",
            s(&dir.path().join("x.json")),
            "--opening",
            s(&opening),
        ]),
        "never overwritten",
    );
}
