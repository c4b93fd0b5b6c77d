//! Every bad input of the records capability: a clear 4xx with a stable
//! code, no change to the state, and an audit event where it was an access
//! attempt.

use crate::common;

use common::signed::*;
use hygeia_identity::Keypair;
use reqwest::Method;
use serde_json::json;

/// Submits a transaction that must be refused with `code`, and checks the
/// log did not grow.
fn refused_tx(
    net: &Network,
    key: &Keypair,
    tx_type: &str,
    body: serde_json::Value,
    status: u16,
    code: &str,
) {
    let before = net.size();
    let (got, answer) = submit(&net.node, key, tx_type, body);
    assert_eq!(got, status, "{answer}");
    assert_eq!(answer["error"]["code"], code, "{answer}");
    assert!(!answer["error"]["message"].as_str().unwrap_or("").is_empty());
    assert_eq!(net.size(), before, "a refused transaction changed the log");
}

/// Reads the record as `key` with `query`; returns (status, code) and how
/// many entries the attempt added to the log.
fn read(net: &Network, key: &Keypair, query: &str) -> (u16, String, u64) {
    let before = net.size();
    let path = format!("/v1/records/{}{query}", net.record);
    let (status, code) = {
        let response = signed_get(&net.node, key, &path);
        let status = response.status().as_u16();
        if status == 200 {
            (status, String::new())
        } else {
            error_code(response)
        }
    };
    (status, code, net.size() - before)
}

#[test]
fn grants_by_anyone_but_the_patient_or_a_delegate_are_refused() {
    let net = Network::start(&[]);
    let body = net.grant_body(&net.clinician);
    refused_tx(
        &net,
        &net.researcher,
        "consent.grant",
        body.clone(),
        403,
        "consent.not_patient_or_delegate",
    );
    // A registered delegate may.
    let guardian = Keypair::generate();
    let (status, answer) = submit(
        &net.node,
        &net.patient,
        "consent.delegate",
        json!({"patient": did(&net.patient), "delegate": did(&guardian), "op": "add"}),
    );
    assert_eq!(status, 201, "{answer}");
    let (status, answer) = submit(&net.node, &guardian, "consent.grant", body);
    assert_eq!(status, 201, "{answer}");
}

#[test]
fn unknown_purpose_codes_are_refused() {
    let net = Network::start(&[]);
    let mut body = net.grant_body(&net.clinician);
    body["purpose"] = json!("SHOPPING");
    refused_tx(
        &net,
        &net.patient,
        "consent.grant",
        body,
        400,
        "schema_violation",
    );
    // A read stating an unknown purpose is refused before any decision.
    let (status, code, added) = read(&net, &net.clinician, "?purpose=SHOPPING");
    assert_eq!((status, code.as_str(), added), (400, "unknown_purpose", 0));
}

#[test]
fn revocations_of_unknown_or_foreign_grants_are_refused() {
    let net = Network::start(&[]);
    refused_tx(
        &net,
        &net.patient,
        "consent.revoke",
        json!({"grant": "ab".repeat(32)}),
        404,
        "consent.unknown_grant",
    );
    let (status, grant) = submit(
        &net.node,
        &net.patient,
        "consent.grant",
        net.grant_body(&net.clinician),
    );
    assert_eq!(status, 201);
    let grant_id = grant["leaf_hash"].as_str().unwrap();
    refused_tx(
        &net,
        &net.other_patient,
        "consent.revoke",
        json!({"grant": grant_id}),
        403,
        "consent.foreign_grant",
    );
    refused_tx(
        &net,
        &net.clinician,
        "consent.revoke",
        json!({"grant": grant_id}),
        403,
        "consent.foreign_grant",
    );
    // Still in force.
    let (status, _, _) = read(&net, &net.clinician, "?purpose=TREAT");
    assert_eq!(status, 200);
}

#[test]
fn unsigned_forged_tampered_and_replayed_requests_are_refused() {
    let net = Network::start(&[]);
    let before = net.size();
    let path = format!("/v1/records/{}?purpose=TREAT", net.record);
    let url = format!("{}{path}", net.node.url);
    let http = common::client();

    let (status, code) = error_code(http.get(&url).send().unwrap());
    assert_eq!((status, code.as_str()), (401, "auth_missing"));

    // Signed by the clinician's key but claiming to be the patient.
    let mut headers = signature_headers(&net.clinician, &Method::GET, &path, None);
    let patient_did = did(&net.patient);
    let clinician_did = did(&net.clinician);
    headers[0].1 = headers[0].1.replace(&clinician_did, &patient_did);
    let mut request = http.get(&url);
    for (name, value) in &headers {
        request = request.header(*name, value);
    }
    let (status, code) = error_code(request.send().unwrap());
    assert_eq!((status, code.as_str()), (401, "auth_bad_signature"));

    // Signed for one purpose, sent with another.
    let headers = signature_headers(&net.patient, &Method::GET, &path, None);
    let tampered = url.replace("TREAT", "ETREAT");
    let mut request = http.get(&tampered);
    for (name, value) in &headers {
        request = request.header(*name, value);
    }
    let (status, code) = error_code(request.send().unwrap());
    assert_eq!((status, code.as_str()), (401, "auth_bad_signature"));

    // Replayed: the same signed request twice.
    let headers = signature_headers(&net.patient, &Method::GET, &path, None);
    let send = || {
        let mut request = http.get(&url);
        for (name, value) in &headers {
            request = request.header(*name, value);
        }
        request.send().unwrap()
    };
    assert_eq!(send().status().as_u16(), 200);
    let after_first = net.size();
    let (status, code) = error_code(send());
    assert_eq!((status, code.as_str()), (401, "auth_replay"));
    // Only the genuine read was logged.
    assert_eq!(after_first, before + 1);
    assert_eq!(net.size(), after_first);
}

#[test]
fn records_over_the_size_limit_are_refused() {
    let net = Network::start(&["--max-record-bytes", "1024"]);
    let before = net.size();
    let big = vec![b'x'; 4096];
    let (status, code) = error_code(upload(
        &net.node,
        &net.patient,
        &did(&net.patient),
        "lab",
        &big,
    ));
    assert_eq!((status, code.as_str()), (413, "record_too_large"));
    assert_eq!(net.size(), before);
    // Streamed without a length, the limit is enforced as the body arrives.
    let path = "/v1/records?purpose=TREAT";
    let patient = did(&net.patient);
    let mut request = common::client()
        .post(format!("{}{path}", net.node.url))
        .header("hygeia-patient", &patient)
        .header("hygeia-category", "lab")
        .header("hygeia-resource-type", "Observation")
        .header("content-type", "application/fhir+json")
        .header(
            "hygeia-provenance",
            provenance(
                &net.patient,
                &patient,
                "lab",
                "Observation",
                "application/fhir+json",
                &big,
            ),
        )
        .body(reqwest::blocking::Body::new(std::io::Cursor::new(
            big.clone(),
        )));
    for (name, value) in signature_headers(&net.patient, &Method::POST, path, Some(&big)) {
        request = request.header(name, value);
    }
    let (status, code) = error_code(request.send().unwrap());
    assert_eq!((status, code.as_str()), (413, "record_too_large"));
    // The permitted attempt is logged; no record reached the ledger.
    let feed = net.feed();
    assert_eq!(feed["events"][0]["event"]["records"], json!([]));
    let list = signed_get(
        &net.node,
        &net.patient,
        &format!("/v1/records?patient={patient}"),
    );
    let list: serde_json::Value = list.json().unwrap();
    assert_eq!(list["records"].as_array().unwrap().len(), 1);
}

#[test]
fn break_glass_needs_a_justification_and_a_clinician() {
    let net = Network::start(&[]);
    // No justification: denied, and the attempt is audited.
    let (status, code, added) = read(&net, &net.clinician, "?purpose=ETREAT&break_glass=");
    assert_eq!((status, code.as_str(), added), (403, "access_denied", 1));
    let (status, code, added) = read(&net, &net.clinician, "?purpose=ETREAT&break_glass=%20%20");
    assert_eq!((status, code.as_str(), added), (403, "access_denied", 1));
    // A researcher is not a clinician: denied and audited.
    let (status, code, added) = read(&net, &net.researcher, "?purpose=ETREAT&break_glass=urgent");
    assert_eq!((status, code.as_str(), added), (403, "access_denied", 1));
    // Purpose other than ETREAT: denied.
    let (status, code, _) = read(&net, &net.clinician, "?purpose=TREAT&break_glass=urgent");
    assert_eq!((status, code.as_str()), (403, "access_denied"));
    let feed = net.feed();
    let events = feed["events"].as_array().unwrap();
    let denials = events
        .iter()
        .filter(|e| e["event"]["decision"] == "deny")
        .count();
    assert_eq!(denials, 4);
    // The genuine article works and is flagged.
    let (status, _, added) = read(
        &net,
        &net.clinician,
        "?purpose=ETREAT&break_glass=unconscious%20in%20the%20ER",
    );
    assert_eq!((status, added), (200, 1));
    assert_eq!(net.feed()["events"][0]["break_glass"], true);
}

#[test]
fn a_suspended_clinician_is_refused_even_with_consent() {
    let net = Network::start(&[]);
    let (status, _) = submit(
        &net.node,
        &net.patient,
        "consent.grant",
        net.grant_body(&net.clinician),
    );
    assert_eq!(status, 201);
    assert_eq!(read(&net, &net.clinician, "?purpose=TREAT").0, 200);
    let (status, _) = submit(
        &net.node,
        &net.clinic_admin,
        "org.member",
        json!({"org": "did:web:clinic.example", "member": did(&net.clinician), "roles": ["clinician"], "jurisdiction": "FR", "status": "suspended"}),
    );
    assert_eq!(status, 201);
    let (status, code, added) = read(&net, &net.clinician, "?purpose=TREAT");
    assert_eq!((status, code.as_str(), added), (403, "access_denied", 1));
    let (status, _, _) = read(&net, &net.clinician, "?purpose=ETREAT&break_glass=urgent");
    assert_eq!(status, 403, "suspension overrides break-glass too");
}

#[test]
fn only_entitled_signers_change_participants_records_and_policies() {
    let net = Network::start(&[]);
    refused_tx(
        &net,
        &net.clinician,
        "org.register",
        json!({"org": "did:web:rogue.example", "admin": did(&net.clinician), "kind": "clinic"}),
        403,
        "org.not_governance",
    );
    refused_tx(
        &net,
        &net.governance,
        "org.register",
        json!({"org": "did:web:clinic.example", "admin": did(&net.clinician), "kind": "clinic"}),
        409,
        "org.exists",
    );
    refused_tx(
        &net,
        &net.clinician,
        "org.member",
        json!({"org": "did:web:clinic.example", "member": did(&net.clinician), "roles": ["admin"], "status": "active"}),
        403,
        "org.not_admin",
    );
    refused_tx(
        &net,
        &net.clinic_admin,
        "org.member",
        json!({"org": "did:web:nowhere.example", "member": did(&net.clinician), "roles": ["admin"], "status": "active"}),
        404,
        "org.unknown",
    );
    refused_tx(
        &net,
        &net.clinician,
        "record.erase",
        json!({"record": net.record}),
        403,
        "record.erase_not_allowed",
    );
    refused_tx(
        &net,
        &net.patient,
        "record.erase",
        json!({"record": "cd".repeat(32)}),
        404,
        "record.unknown",
    );
    refused_tx(
        &net,
        &net.patient,
        "record",
        json!({"patient": did(&net.patient), "author": did(&net.patient), "category": "lab", "resource_type": "Observation", "commitment": "ef".repeat(32)}),
        403,
        "custodian_only",
    );
    refused_tx(
        &net,
        &net.clinician,
        "governance.policy",
        json!({"version": 1, "policies": "@id(\"x\") permit (principal, action, resource);"}),
        403,
        "governance.not_governance",
    );
    refused_tx(
        &net,
        &net.governance,
        "governance.policy",
        json!({"version": 1, "policies": "this is not cedar"}),
        422,
        "governance.parse",
    );
    refused_tx(
        &net,
        &net.governance,
        "governance.policy",
        json!({"version": 0, "policies": "@id(\"x\") permit (principal, action, resource);"}),
        409,
        "governance.stale_version",
    );
    // Erasure twice: the second is a conflict.
    let (status, _) = submit(
        &net.node,
        &net.patient,
        "record.erase",
        json!({"record": net.record}),
    );
    assert_eq!(status, 201);
    refused_tx(
        &net,
        &net.patient,
        "record.erase",
        json!({"record": net.record}),
        409,
        "record.already_erased",
    );
}

#[test]
fn unknown_and_malformed_record_ids_are_not_found() {
    let net = Network::start(&[]);
    for id in ["00".repeat(32), "not-a-record".to_owned()] {
        let response = signed_get(&net.node, &net.patient, &format!("/v1/records/{id}"));
        let (status, code) = error_code(response);
        assert_eq!((status, code.as_str()), (404, "record_not_found"));
    }
    // Listing someone else's records is refused.
    let response = signed_get(
        &net.node,
        &net.clinician,
        &format!("/v1/records?patient={}", did(&net.patient)),
    );
    assert_eq!(error_code(response), (403, "not_patient".to_owned()));
}

#[test]
fn an_upload_with_a_bad_provenance_signature_is_refused_and_not_kept() {
    let net = Network::start(&[]);
    let content = br#"{"resourceType":"Observation","status":"final"}"#;
    let path = "/v1/records";
    let patient = did(&net.patient);
    // Provenance signed over different content.
    let mut request = common::client()
        .post(format!("{}{path}", net.node.url))
        .header("hygeia-patient", &patient)
        .header("hygeia-category", "lab")
        .header("hygeia-resource-type", "Observation")
        .header("content-type", "application/fhir+json")
        .header(
            "hygeia-provenance",
            provenance(
                &net.patient,
                &patient,
                "lab",
                "Observation",
                "application/fhir+json",
                b"other",
            ),
        )
        .body(content.to_vec());
    for (name, value) in signature_headers(&net.patient, &Method::POST, path, Some(content)) {
        request = request.header(name, value);
    }
    let (status, code) = error_code(request.send().unwrap());
    assert_eq!((status, code.as_str()), (400, "bad_provenance"));
    let list: serde_json::Value = signed_get(
        &net.node,
        &net.patient,
        &format!("/v1/records?patient={patient}"),
    )
    .json()
    .unwrap();
    assert_eq!(list["records"].as_array().unwrap().len(), 1);
}

#[test]
fn bad_query_strings_get_json_errors() {
    let net = Network::start(&[]);
    for path in [
        "/v1/records",
        "/v1/consents",
        "/v1/audit?patient=x&limit=many",
    ] {
        let response = signed_get(&net.node, &net.patient, path);
        assert_eq!(
            error_code(response),
            (400, "invalid_parameter".to_owned()),
            "{path}"
        );
    }
}

/// The web apps' endpoints (docs/apps.md) from a stranger's side: they
/// show nothing the public log does not, the author's provenance signature
/// only to the patient, and reading them never writes to the log.
#[test]
fn the_apps_endpoints_tell_a_stranger_nothing_the_log_does_not() {
    let net = Network::start(&[]);
    let stranger = Keypair::generate();
    let before = net.size();
    let provenance = format!("/v1/app/records/{}/provenance", net.record);
    for key in [&stranger, &net.clinician, &net.other_patient] {
        assert_eq!(
            error_code(signed_get(&net.node, key, &provenance)),
            (403, "not_patient".to_owned())
        );
    }
    let response = signed_get(&net.node, &net.patient, &provenance);
    assert_eq!(response.status().as_u16(), 200);
    let answer: serde_json::Value = response.json().unwrap();
    assert_eq!(answer["record"]["commitment"], net.record.as_str());
    assert_eq!(answer["signed_by"], did(&net.patient));
    assert_eq!(answer["provenance"].as_str().map(str::len), Some(86));

    let access: serde_json::Value = signed_get(&net.node, &stranger, "/v1/app/access")
        .json()
        .unwrap();
    assert_eq!(access["grants"], json!([]));
    assert_eq!(access["me"], did(&stranger));
    let me: serde_json::Value = signed_get(&net.node, &stranger, "/v1/app/whoami")
        .json()
        .unwrap();
    assert_eq!(me["identity"], did(&stranger));
    assert_eq!(
        error_code(signed_get(&net.node, &stranger, "/v1/app/access?x=1")),
        (400, "invalid_parameter".to_owned())
    );
    let unknown = common::client()
        .get(format!(
            "{}/v1/app/records/{}",
            net.node.url,
            "0".repeat(64)
        ))
        .send()
        .unwrap();
    assert_eq!(error_code(unknown), (404, "record_not_found".to_owned()));
    let anchor: serde_json::Value = common::client()
        .get(format!("{}/v1/app/records/{}", net.node.url, net.record))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(anchor["record"]["category"], "lab");
    assert_eq!(net.size(), before, "the apps' reads never write");

    // Once the patient grants, the clinician sees the grant and the record
    // it covers; the stranger still sees nothing.
    let (status, answer) = submit(
        &net.node,
        &net.patient,
        "consent.grant",
        net.grant_body(&net.clinician),
    );
    assert_eq!(status, 201, "{answer}");
    let access: serde_json::Value = signed_get(&net.node, &net.clinician, "/v1/app/access")
        .json()
        .unwrap();
    assert_eq!(access["grants"][0]["state"], "active");
    assert_eq!(
        access["grants"][0]["records"][0]["commitment"],
        net.record.as_str()
    );
    let access: serde_json::Value = signed_get(&net.node, &stranger, "/v1/app/access")
        .json()
        .unwrap();
    assert_eq!(access["grants"], json!([]));
}
