//! Every bad input of the records capability: a clear 4xx with a stable
//! code, no change to the state, and an audit event where it was an access
//! attempt. (Moved here from the CLI's end-to-end tests, which started a
//! node process for each.)

use axum::body::Body;
use axum::http::{header, Method, Request};
use futures_util::stream;
use hygeia_identity::Keypair;
use serde_json::json;

use super::clinic::Clinic;
use super::{did, signature_headers, upload_request, CLINIC};

/// Reads the record as `key` with `query`; returns (status, code) and how
/// many entries the attempt added to the log.
async fn read(net: &Clinic, key: &Keypair, query: &str) -> (u16, String, u64) {
    let before = net.size();
    let path = format!("/v1/records/{}{query}", net.record);
    let answer = net.net.signed_get(key, &path).await;
    let (status, code) = if answer.status == 200 {
        (200, String::new())
    } else {
        answer.refusal()
    };
    (status, code, net.size() - before)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_by_anyone_but_the_patient_or_a_delegate_are_refused() {
    let net = Clinic::start().await;
    let body = net.grant_body(&net.clinician);
    net.net
        .refused_tx(
            &net.researcher,
            "consent.grant",
            body.clone(),
            403,
            "consent.not_patient_or_delegate",
        )
        .await;
    // A registered delegate may.
    let guardian = Keypair::generate();
    net.net
        .submit_ok(
            &net.patient,
            "consent.delegate",
            json!({"patient": did(&net.patient), "delegate": did(&guardian), "op": "add"}),
        )
        .await;
    net.net.submit_ok(&guardian, "consent.grant", body).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_purpose_codes_are_refused() {
    let net = Clinic::start().await;
    let mut body = net.grant_body(&net.clinician);
    body["purpose"] = json!("SHOPPING");
    net.net
        .refused_tx(&net.patient, "consent.grant", body, 400, "schema_violation")
        .await;
    // A read stating an unknown purpose is refused before any decision.
    let (status, code, added) = read(&net, &net.clinician, "?purpose=SHOPPING").await;
    assert_eq!((status, code.as_str(), added), (400, "unknown_purpose", 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_of_unknown_or_foreign_grants_are_refused() {
    let net = Clinic::start().await;
    net.net
        .refused_tx(
            &net.patient,
            "consent.revoke",
            json!({"grant": "ab".repeat(32)}),
            404,
            "consent.unknown_grant",
        )
        .await;
    let grant_id = net.grant_to(&net.clinician).await;
    for key in [&net.other_patient, &net.clinician] {
        net.net
            .refused_tx(
                key,
                "consent.revoke",
                json!({"grant": grant_id}),
                403,
                "consent.foreign_grant",
            )
            .await;
    }
    // Still in force.
    let (status, _, _) = read(&net, &net.clinician, "?purpose=TREAT").await;
    assert_eq!(status, 200);
}

/// A GET of `path` with these headers.
async fn get_with(net: &Clinic, path: &str, headers: &[(&'static str, String)]) -> (u16, String) {
    let mut request = Request::get(path);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    net.net
        .send(request.body(Body::empty()).unwrap())
        .await
        .refusal()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_forged_tampered_and_replayed_requests_are_refused() {
    let net = Clinic::start().await;
    let before = net.size();
    let path = format!("/v1/records/{}?purpose=TREAT", net.record);

    let (status, code) = get_with(&net, &path, &[]).await;
    assert_eq!((status, code.as_str()), (401, "auth_missing"));

    // Signed by the clinician's key but claiming to be the patient.
    let mut headers = signature_headers(&net.clinician, &Method::GET, &path, None);
    headers[0].1 = headers[0]
        .1
        .replace(&did(&net.clinician), &did(&net.patient));
    let (status, code) = get_with(&net, &path, &headers).await;
    assert_eq!((status, code.as_str()), (401, "auth_bad_signature"));

    // Signed for one purpose, sent with another.
    let headers = signature_headers(&net.patient, &Method::GET, &path, None);
    let tampered = path.replace("TREAT", "ETREAT");
    let (status, code) = get_with(&net, &tampered, &headers).await;
    assert_eq!((status, code.as_str()), (401, "auth_bad_signature"));

    // Replayed: the same signed request twice.
    let headers = signature_headers(&net.patient, &Method::GET, &path, None);
    assert_eq!(get_with(&net, &path, &headers).await.0, 200);
    let after_first = net.size();
    let (status, code) = get_with(&net, &path, &headers).await;
    assert_eq!((status, code.as_str()), (401, "auth_replay"));
    // Only the genuine read was logged.
    assert_eq!(after_first, before + 1);
    assert_eq!(net.size(), after_first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_over_the_size_limit_are_refused() {
    let net = Clinic::with_config(|c| c.max_record_bytes = 1024).await;
    let before = net.size();
    let big = vec![b'x'; 4096];
    let patient = did(&net.patient);
    let answer = net.net.upload(&net.patient, &patient, "lab", &big).await;
    assert_eq!(answer.refusal(), (413, "record_too_large".to_owned()));
    assert_eq!(net.size(), before);
    // Streamed without a length, the limit is enforced as the body arrives.
    let path = "/v1/records?purpose=TREAT";
    let mut request = upload_request(&net.patient, &patient, "lab", &big, path);
    for (name, value) in signature_headers(&net.patient, &Method::POST, path, Some(&big)) {
        request = request.header(name, value);
    }
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.chunks(512).map(|c| Ok(c.to_vec())).collect();
    let request = request
        .body(Body::from_stream(stream::iter(chunks)))
        .unwrap();
    assert!(request.headers().get(header::CONTENT_LENGTH).is_none());
    let answer = net.net.send(request).await;
    assert_eq!(answer.refusal(), (413, "record_too_large".to_owned()));
    // The permitted attempt is logged; no record reached the ledger.
    let feed = net.feed().await;
    assert_eq!(feed["events"][0]["event"]["records"], json!([]));
    assert_eq!(net.records_listed().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_glass_needs_a_justification_and_a_clinician() {
    let net = Clinic::start().await;
    // No justification: denied, and the attempt is audited.
    let (status, code, added) = read(&net, &net.clinician, "?purpose=ETREAT&break_glass=").await;
    assert_eq!((status, code.as_str(), added), (403, "access_denied", 1));
    let (status, code, added) =
        read(&net, &net.clinician, "?purpose=ETREAT&break_glass=%20%20").await;
    assert_eq!((status, code.as_str(), added), (403, "access_denied", 1));
    // A researcher is not a clinician: denied and audited.
    let (status, code, added) =
        read(&net, &net.researcher, "?purpose=ETREAT&break_glass=urgent").await;
    assert_eq!((status, code.as_str(), added), (403, "access_denied", 1));
    // Purpose other than ETREAT: denied.
    let (status, code, _) = read(&net, &net.clinician, "?purpose=TREAT&break_glass=urgent").await;
    assert_eq!((status, code.as_str()), (403, "access_denied"));
    let feed = net.feed().await;
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
    )
    .await;
    assert_eq!((status, added), (200, 1));
    assert_eq!(net.feed().await["events"][0]["break_glass"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_clinician_is_refused_even_with_consent() {
    let net = Clinic::start().await;
    net.grant_to(&net.clinician).await;
    assert_eq!(read(&net, &net.clinician, "?purpose=TREAT").await.0, 200);
    net.net
        .submit_ok(
            &net.clinic_admin,
            "org.member",
            json!({"org": CLINIC, "member": did(&net.clinician), "roles": ["clinician"], "jurisdiction": "FR", "status": "suspended"}),
        )
        .await;
    let (status, code, added) = read(&net, &net.clinician, "?purpose=TREAT").await;
    assert_eq!((status, code.as_str(), added), (403, "access_denied", 1));
    let (status, _, _) = read(&net, &net.clinician, "?purpose=ETREAT&break_glass=urgent").await;
    assert_eq!(status, 403, "suspension overrides break-glass too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_entitled_signers_change_participants_records_and_policies() {
    let net = Clinic::start().await;
    let permit = "@id(\"x\") permit (principal, action, resource);";
    let cases = [
        (
            &net.clinician,
            "org.register",
            json!({"org": "did:web:rogue.example", "admin": did(&net.clinician), "kind": "clinic"}),
            403,
            "org.not_governance",
        ),
        (
            &net.governance,
            "org.register",
            json!({"org": CLINIC, "admin": did(&net.clinician), "kind": "clinic"}),
            409,
            "org.exists",
        ),
        (
            &net.clinician,
            "org.member",
            json!({"org": CLINIC, "member": did(&net.clinician), "roles": ["admin"], "status": "active"}),
            403,
            "org.not_admin",
        ),
        (
            &net.clinic_admin,
            "org.member",
            json!({"org": "did:web:nowhere.example", "member": did(&net.clinician), "roles": ["admin"], "status": "active"}),
            404,
            "org.unknown",
        ),
        (
            &net.clinician,
            "record.erase",
            json!({"record": net.record}),
            403,
            "record.erase_not_allowed",
        ),
        (
            &net.patient,
            "record.erase",
            json!({"record": "cd".repeat(32)}),
            404,
            "record.unknown",
        ),
        (
            &net.patient,
            "record",
            json!({"patient": did(&net.patient), "author": did(&net.patient), "category": "lab", "resource_type": "Observation", "commitment": "ef".repeat(32)}),
            403,
            "custodian_only",
        ),
        (
            &net.clinician,
            "governance.policy",
            json!({"version": 1, "policies": permit}),
            403,
            "governance.not_governance",
        ),
        (
            &net.governance,
            "governance.policy",
            json!({"version": 1, "policies": "this is not cedar"}),
            422,
            "governance.parse",
        ),
        (
            &net.governance,
            "governance.policy",
            json!({"version": 0, "policies": permit}),
            409,
            "governance.stale_version",
        ),
    ];
    for (key, tx_type, body, status, code) in cases {
        net.net.refused_tx(key, tx_type, body, status, code).await;
    }
    // Erasure twice: the second is a conflict.
    let erase = json!({"record": net.record});
    net.net
        .submit_ok(&net.patient, "record.erase", erase.clone())
        .await;
    net.net
        .refused_tx(
            &net.patient,
            "record.erase",
            erase,
            409,
            "record.already_erased",
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_malformed_record_ids_are_not_found() {
    let net = Clinic::start().await;
    for id in ["00".repeat(32), "not-a-record".to_owned()] {
        let answer = net
            .net
            .signed_get(&net.patient, &format!("/v1/records/{id}"))
            .await;
        assert_eq!(answer.refusal(), (404, "record_not_found".to_owned()));
    }
    // Listing someone else's records is refused.
    let answer = net
        .net
        .signed_get(
            &net.clinician,
            &format!("/v1/records?patient={}", did(&net.patient)),
        )
        .await;
    assert_eq!(answer.refusal(), (403, "not_patient".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_with_a_bad_provenance_signature_is_refused_and_not_kept() {
    let net = Clinic::start().await;
    let content = br#"{"resourceType":"Observation","status":"final"}"#;
    let path = "/v1/records";
    let patient = did(&net.patient);
    // Provenance signed over different content.
    let mut request = upload_request(&net.patient, &patient, "lab", b"other", path)
        .header(header::CONTENT_LENGTH, content.len());
    for (name, value) in signature_headers(&net.patient, &Method::POST, path, Some(content)) {
        request = request.header(name, value);
    }
    let answer = net
        .net
        .send(request.body(Body::from(content.to_vec())).unwrap())
        .await;
    assert_eq!(answer.refusal(), (400, "bad_provenance".to_owned()));
    assert_eq!(net.records_listed().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_query_strings_get_json_errors() {
    let net = Clinic::start().await;
    for path in [
        "/v1/records",
        "/v1/consents",
        "/v1/audit?patient=x&limit=many",
    ] {
        let answer = net.net.signed_get(&net.patient, path).await;
        assert_eq!(
            answer.refusal(),
            (400, "invalid_parameter".to_owned()),
            "{path}"
        );
    }
}

/// The web apps' endpoints (docs/apps.md) from a stranger's side: they
/// show nothing the public log does not, the author's provenance signature
/// only to the patient, and reading them never writes to the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_apps_endpoints_tell_a_stranger_nothing_the_log_does_not() {
    let net = Clinic::start().await;
    let stranger = Keypair::generate();
    let before = net.size();
    let provenance = format!("/v1/app/records/{}/provenance", net.record);
    for key in [&stranger, &net.clinician, &net.other_patient] {
        assert_eq!(
            net.net.signed_get(key, &provenance).await.refusal(),
            (403, "not_patient".to_owned())
        );
    }
    let answer = net.net.signed_get(&net.patient, &provenance).await;
    assert_eq!(answer.status, 200);
    let answer = answer.json();
    assert_eq!(answer["record"]["commitment"], net.record.as_str());
    assert_eq!(answer["signed_by"], did(&net.patient));
    assert_eq!(answer["provenance"].as_str().map(str::len), Some(86));

    let access = net.net.signed_get(&stranger, "/v1/app/access").await.json();
    assert_eq!(access["grants"], json!([]));
    assert_eq!(access["me"], did(&stranger));
    let me = net.net.signed_get(&stranger, "/v1/app/whoami").await.json();
    assert_eq!(me["identity"], did(&stranger));
    assert_eq!(
        net.net
            .signed_get(&stranger, "/v1/app/access?x=1")
            .await
            .refusal(),
        (400, "invalid_parameter".to_owned())
    );
    let unknown = net
        .net
        .get(&format!("/v1/app/records/{}", "0".repeat(64)))
        .await;
    assert_eq!(unknown.refusal(), (404, "record_not_found".to_owned()));
    let anchor = net
        .net
        .get(&format!("/v1/app/records/{}", net.record))
        .await
        .json();
    assert_eq!(anchor["record"]["category"], "lab");
    assert_eq!(net.size(), before, "the apps' reads never write");

    // Once the patient grants, the clinician sees the grant and the record
    // it covers; the stranger still sees nothing.
    net.grant_to(&net.clinician).await;
    let access = net
        .net
        .signed_get(&net.clinician, "/v1/app/access")
        .await
        .json();
    assert_eq!(access["grants"][0]["state"], "active");
    assert_eq!(
        access["grants"][0]["records"][0]["commitment"],
        net.record.as_str()
    );
    let access = net.net.signed_get(&stranger, "/v1/app/access").await.json();
    assert_eq!(access["grants"], json!([]));
}

/// Uploads `content` as `key` for themselves; the record's commitment.
async fn upload_own(net: &Clinic, key: &Keypair, content: &[u8]) -> String {
    let answer = net.net.upload(key, &did(key), "lab", content).await;
    assert_eq!(answer.status, 201, "{}", answer.text());
    answer.json()["record"].as_str().unwrap().to_owned()
}

/// The status of `key` reading `record` for themselves.
async fn read_own(net: &Clinic, key: &Keypair, record: &str) -> u16 {
    let path = format!("/v1/records/{record}?purpose=PATRQT");
    net.net.signed_get(key, &path).await.status
}

/// Erasing a patient's records through the ledger destroys the patient's
/// group key once the last of them is erased (not before: the others still
/// read), and only theirs: another patient's records still read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasing_a_patients_last_record_destroys_their_group_key() {
    use crate::custody::Custody;
    use hygeia_vault::RecipientPublicKey;
    let net = Clinic::start().await;
    let group_of = |key: &Keypair| {
        Custody::group_of(&RecipientPublicKey::from_bytes(&key.public_key().to_x25519()).unwrap())
    };
    let second = upload_own(
        &net,
        &net.patient,
        br#"{"resourceType":"Observation","id":"b"}"#,
    )
    .await;
    let others = upload_own(
        &net,
        &net.other_patient,
        br#"{"resourceType":"Observation"}"#,
    )
    .await;
    let custody = &net.net.node.custody;
    let (group, other_group) = (group_of(&net.patient), group_of(&net.other_patient));
    assert!(custody.group_key_stored(&group) && custody.group_key_stored(&other_group));

    net.net
        .submit_ok(&net.patient, "record.erase", json!({"record": net.record}))
        .await;
    assert!(
        custody.group_key_stored(&group),
        "the second record needs it"
    );
    assert_eq!(read_own(&net, &net.patient, &second).await, 200);

    // (The group key's slot as it was, to put back below.)
    let key_slot = custody.stored_group_key(&group).expect("stored");
    net.net
        .submit_ok(&net.patient, "record.erase", json!({"record": second}))
        .await;
    assert!(!custody.group_key_stored(&group));
    assert!(custody.stored_group_key(&group).is_none());
    assert!(custody
        .cached_group_keys()
        .iter()
        .all(|(id, _)| *id != group));
    assert_eq!(read_own(&net, &net.patient, &second).await, 410);
    assert!(custody.group_key_stored(&other_group));
    assert_eq!(read_own(&net, &net.other_patient, &others).await, 200);

    // A crash between a record's erasure and its group key's leaves the
    // group key's slot: the next start destroys it.
    custody.restore_group_key(&group, &key_slot);
    assert!(custody.group_key_stored(&group));
    let Clinic {
        net: restarted,
        other_patient,
        ..
    } = net;
    let restarted = restarted.restart();
    let custody = &restarted.node.custody;
    assert!(!custody.group_key_stored(&group));
    assert!(custody.group_key_stored(&other_group));
    let path = format!("/v1/records/{others}?purpose=PATRQT");
    assert_eq!(
        restarted.signed_get(&other_patient, &path).await.status,
        200
    );
}
