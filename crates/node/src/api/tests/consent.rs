//! Finding 4 of the outside attack: `POST /fhir/Consent` resolved
//! `Patient/<id>` and `data` references by decrypting them, with no access
//! decision, and on a mismatch echoed the resolved patient DID and record
//! commitments in its 422; nothing was logged. References are now resolved
//! only as far as the requester may read them (each decision logged), and
//! no resolved value is echoed.

use axum::http::Method;
use base64::Engine;
use hygeia_identity::Keypair;
use hygeia_ledger::TxBuilder;
use serde_json::{json, Value};

use super::{did, now, Net, NETWORK};

fn date_time(unix: i64) -> String {
    hygeia_fhir::date::format_instant(unix * 1000).replace(".000Z", "Z")
}

fn consent(subject: &str, record: &str, grantee: &str) -> Value {
    let now = now();
    json!({
        "resourceType": "Consent",
        "status": "active",
        "subject": {"reference": subject},
        "decision": "permit",
        "provision": [{
            "period": {"start": date_time(now - 60), "end": date_time(now + 86_400)},
            "actor": [{"reference": {"identifier": {"system": "urn:ietf:rfc:3986", "value": grantee}}}],
            "action": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": "access"}]}],
            "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}],
            "data": [{"meaning": "instance", "reference": {"reference": record}}],
        }],
    })
}

/// `X-Provenance` carrying a `consent.grant` signed by `key`.
fn provenance(key: &Keypair, body: Value) -> String {
    let raw = TxBuilder {
        network: NETWORK,
        tx_type: "consent.grant",
        nonce: hygeia_auth::random_nonce(),
        body,
    }
    .sign(key);
    json!({
        "resourceType": "Provenance",
        "signature": [{"data": base64::engine::general_purpose::STANDARD.encode(raw)}],
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consent_naming_what_one_may_not_read_answers_like_one_naming_nothing() {
    let net = Net::start();
    let victim = net.patient("v1", "Lovelace", "1815-12-10", "female").await;
    let victim_commitment = net
        .node
        .fhir
        .store
        .current(&format!("Observation/{}", victim.observation))
        .unwrap()
        .latest
        .commitment;
    let attacker = Keypair::generate();
    let token = net.token(&attacker, "TREAT", None).await;
    let grantee = did(&Keypair::generate());
    let now = now();
    // The attacker signs what they can: a grant of their own.
    let signed = json!({
        "patient": did(&attacker), "grantee": grantee,
        "scope": {"record_ids": ["00".repeat(32)]}, "actions": ["read"], "purpose": "TREAT",
        "not_before": now - 60, "not_after": now + 86_400,
    });
    let missing_obs = hex::encode(rand::random::<[u8; 16]>());
    let mut answers = Vec::new();
    for (subject, record) in [
        (
            "Patient/v1".to_owned(),
            format!("Observation/{}", victim.observation),
        ),
        (
            "Patient/v9".to_owned(),
            format!("Observation/{missing_obs}"),
        ),
    ] {
        let before = net.size();
        let answer = net
            .fhir_with(
                &token,
                Method::POST,
                "/fhir/Consent",
                Some(&consent(&subject, &record, &grantee)),
                &[("x-provenance", &provenance(&attacker, signed.clone()))],
            )
            .await;
        let text = answer.text();
        assert!(
            !text.contains(&did(&victim.key)) && !text.contains(&victim_commitment),
            "the answer echoes what the references resolve to: {text}"
        );
        let logged = net.size() - before;
        answers.push((
            answer.status,
            text.replace(&victim.observation, "<id>")
                .replace(&missing_obs, "<id>")
                .replace("Patient/v1", "<patient>")
                .replace("Patient/v9", "<patient>"),
            logged,
        ));
    }
    assert_eq!(answers[0], answers[1], "existing and missing differ");
    assert_eq!(answers[0].0, 422, "{:?}", answers[0]);
    assert!(
        answers[0].2 >= 1,
        "the read decisions on the references are logged: {:?}",
        answers[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_patient_still_records_a_consent_with_local_references() {
    let net = Net::start();
    let patient = net.patient("p1", "Lovelace", "1815-12-10", "female").await;
    let commitment = net
        .node
        .fhir
        .store
        .current(&format!("Observation/{}", patient.observation))
        .unwrap()
        .latest
        .commitment;
    let grantee = did(&Keypair::generate());
    let resource = consent(
        "Patient/p1",
        &format!("Observation/{}", patient.observation),
        &grantee,
    );
    let now_s = now();
    let period = &resource["provision"][0]["period"];
    let parse = |t: &Value| {
        hygeia_fhir::date::parse_date(t.as_str().unwrap())
            .unwrap()
            .start
            / 1000
    };
    let _ = now_s;
    let signed = json!({
        "patient": did(&patient.key), "grantee": grantee,
        "scope": {"record_ids": [commitment]}, "actions": ["read"], "purpose": "TREAT",
        "not_before": parse(&period["start"]), "not_after": parse(&period["end"]),
    });
    let answer = net
        .fhir_with(
            &patient.token,
            Method::POST,
            "/fhir/Consent",
            Some(&resource),
            &[("x-provenance", &provenance(&patient.key, signed))],
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.text());
}
