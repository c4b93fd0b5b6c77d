//! Finding 5 of the outside attack: writes answered existence before
//! deciding. `DELETE`/`PUT` with `If-Match` on another patient's resource
//! answered 412 "current version is 1" (404 when missing); a `PUT` of an
//! existing id re-pointed at the attacker's own Patient answered 422
//! "cannot move"; a `PUT` pointed at the victim answered 404 for existing
//! and 403 for missing ids; none was logged. A write is decided first; a
//! resource the requester may not write answers exactly like a missing
//! one, and the attempt is logged.

use axum::http::Method;
use serde_json::{json, Value};

use super::{observation, Answer, Net};

/// Status and body with the resource ids the request named set aside.
fn shape(answer: &Answer, ids: &[&str]) -> (u16, String) {
    let mut text = answer.text();
    for id in ids {
        text = text.replace(id, "<id>");
    }
    (answer.status, text)
}

fn missing_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_the_requester_may_not_make_answers_like_a_missing_resource() {
    let net = Net::start();
    let victim = net.patient("v1", "Lovelace", "1815-12-10", "female").await;
    let attacker = net.patient("a1", "Mallory", "1990-01-01", "other").await;
    let existing = victim.observation.clone();
    let token = attacker.token.clone();
    let version_of = |id: &str| {
        net.node
            .fhir
            .store
            .current(&format!("Observation/{id}"))
            .map(|c| c.latest.version)
    };

    // Each case: the request on the victim's existing resource, and the
    // same request on an id that does not exist.
    struct Case {
        name: &'static str,
        method: Method,
        body: Option<fn(&str, &str) -> Value>,
        if_match: Option<&'static str>,
    }
    let at_victim: fn(&str, &str) -> Value = |id, _| {
        let mut o = observation("v1", "4548-4", 9.9);
        o["id"] = json!(id);
        o
    };
    let at_attacker: fn(&str, &str) -> Value = |id, _| {
        let mut o = observation("a1", "4548-4", 9.9);
        o["id"] = json!(id);
        o
    };
    let cases = [
        Case {
            name: "DELETE",
            method: Method::DELETE,
            body: None,
            if_match: None,
        },
        Case {
            name: "DELETE with If-Match",
            method: Method::DELETE,
            body: None,
            if_match: Some("W/\"1\""),
        },
        Case {
            name: "PUT with If-Match, pointed at the attacker's own Patient",
            method: Method::PUT,
            body: Some(at_attacker),
            if_match: Some("W/\"1\""),
        },
        Case {
            name: "PUT with If-Match, pointed at the victim",
            method: Method::PUT,
            body: Some(at_victim),
            if_match: Some("W/\"1\""),
        },
        Case {
            name: "PUT pointed at the victim",
            method: Method::PUT,
            body: Some(at_victim),
            if_match: None,
        },
    ];
    for case in &cases {
        let fresh = missing_id();
        let mut answers = Vec::new();
        for id in [existing.as_str(), fresh.as_str()] {
            let body = case.body.map(|b| b(id, ""));
            let headers: Vec<(&str, &str)> =
                case.if_match.iter().map(|v| ("if-match", *v)).collect();
            let before = net.size();
            let answer = net
                .fhir_with(
                    &token,
                    case.method.clone(),
                    &format!("/fhir/Observation/{id}"),
                    body.as_ref(),
                    &headers,
                )
                .await;
            assert_eq!(
                net.size(),
                before + 1,
                "{}: on {id} the attempt must be logged (one access event): {}",
                case.name,
                answer.text()
            );
            answers.push(shape(&answer, &[id]));
        }
        assert_eq!(
            answers[0], answers[1],
            "{}: existing and missing answer differently",
            case.name
        );
        assert!(
            matches!(answers[0].0, 403 | 404),
            "{}: {:?}",
            case.name,
            answers[0]
        );
        assert_eq!(version_of(&existing), Some(1), "{}", case.name);
        assert_eq!(version_of(&fresh), None, "{}", case.name);
    }

    // A PUT of the victim's id re-pointed at the attacker's own Patient:
    // a missing id would be created there, so an id taken by a resource
    // the attacker may not write answers as a create they may not make
    // (nothing of the resource: no version, no "cannot move").
    let before = net.size();
    let taken = net
        .fhir(
            &token,
            Method::PUT,
            &format!("/fhir/Observation/{existing}"),
            Some(&at_attacker(&existing, "")),
        )
        .await;
    assert_eq!(net.size(), before + 1, "logged: {}", taken.text());
    let fresh = missing_id();
    let refused_create = net
        .fhir(
            &token,
            Method::PUT,
            &format!("/fhir/Observation/{fresh}"),
            Some(&at_victim(&fresh, "")),
        )
        .await;
    assert_eq!(
        shape(&taken, &[&existing]),
        shape(&refused_create, &[&fresh]),
        "a taken id answers unlike a create the requester may not make"
    );
    assert_eq!(taken.status, 403);
    assert!(!taken.text().contains("version") && !taken.text().contains("move"));
    assert_eq!(version_of(&existing), Some(1));
    // The attacker's own write with a free id still works.
    let own = missing_id();
    let created = net
        .fhir(
            &token,
            Method::PUT,
            &format!("/fhir/Observation/{own}"),
            Some(&at_attacker(&own, "")),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compartment_reference_to_a_patient_one_may_not_write_for_answers_like_a_missing_one() {
    let net = Net::start();
    let _victim = net.patient("v1", "Lovelace", "1815-12-10", "female").await;
    let attacker = net.patient("a1", "Mallory", "1990-01-01", "other").await;
    let mut answers = Vec::new();
    for patient in ["v1", "nobody"] {
        let before = net.size();
        let answer = net
            .fhir(
                &attacker.token,
                Method::POST,
                "/fhir/Observation",
                Some(&observation(patient, "4548-4", 7.0)),
            )
            .await;
        assert_eq!(net.size(), before + 1, "logged: {}", answer.text());
        answers.push(shape(&answer, &[patient]));
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0].0, 403, "{:?}", answers[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_still_gets_precise_answers() {
    let net = Net::start();
    let patient = net.patient("p1", "Lovelace", "1815-12-10", "female").await;
    let path = format!("/fhir/Observation/{}", patient.observation);
    let mut changed = observation("p1", "4548-4", 6.5);
    changed["id"] = json!(patient.observation);
    let stale = net
        .fhir_with(
            &patient.token,
            Method::PUT,
            &path,
            Some(&changed),
            &[("if-match", "W/\"7\"")],
        )
        .await;
    assert_eq!(stale.status, 412, "{}", stale.text());
    let other = net.patient("p2", "Babbage", "1791-12-26", "male").await;
    let _ = other;
    let mut moved = observation("p2", "4548-4", 6.5);
    moved["id"] = json!(patient.observation);
    // The patient may not write p2's records: the move is refused as a
    // write they may not make.
    let answer = net
        .fhir(&patient.token, Method::PUT, &path, Some(&moved))
        .await;
    assert_eq!(answer.status, 403, "{}", answer.text());
    let updated = net
        .fhir_with(
            &patient.token,
            Method::PUT,
            &path,
            Some(&changed),
            &[("if-match", "W/\"1\"")],
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.text());
    let deleted = net.fhir(&patient.token, Method::DELETE, &path, None).await;
    assert_eq!(deleted.status, 200, "{}", deleted.text());
}
