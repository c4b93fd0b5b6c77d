//! Finding 9 of the outside attack: a token's `scope` was echoed but not
//! enforced (a `system/Patient.r` token created and deleted Observations).
//! SMART scopes now bound every FHIR interaction, on top of consent.

use axum::http::Method;
use hygeia_identity::Keypair;
use serde_json::json;

use super::{observation, Net};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_read_token_cannot_create_or_delete_observations() {
    let net = Net::start();
    let patient = net.patient("p1", "Lovelace", "1815-12-10", "female").await;
    let narrow = net
        .token(&patient.key, "PATRQT", Some("system/Patient.r"))
        .await;
    let obs_path = format!("/fhir/Observation/{}", patient.observation);
    let size = net.size();

    let created = net
        .fhir(
            &narrow,
            Method::POST,
            "/fhir/Observation",
            Some(&observation("p1", "4548-4", 5.0)),
        )
        .await;
    assert_eq!(created.status, 403, "{}", created.text());
    assert_eq!(created.issue(), "forbidden");
    assert!(created
        .headers
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("insufficient_scope")));
    let deleted = net.fhir(&narrow, Method::DELETE, &obs_path, None).await;
    assert_eq!(deleted.status, 403, "{}", deleted.text());
    let mut changed = observation("p1", "4548-4", 5.5);
    changed["id"] = json!(patient.observation);
    let updated = net
        .fhir(&narrow, Method::PUT, &obs_path, Some(&changed))
        .await;
    assert_eq!(updated.status, 403, "{}", updated.text());
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": observation("p1", "4548-4", 5.0), "request": {"method": "POST", "url": "Observation"}},
    ]});
    let in_bundle = net
        .fhir(&narrow, Method::POST, "/fhir", Some(&bundle))
        .await;
    assert_eq!(in_bundle.status, 403, "{}", in_bundle.text());
    let read_obs = net.fhir(&narrow, Method::GET, &obs_path, None).await;
    assert_eq!(read_obs.status, 403, "no read of Observations either");
    let searched = net
        .fhir(&narrow, Method::GET, "/fhir/Patient?family=Lovelace", None)
        .await;
    assert_eq!(searched.status, 403, "r does not include s");
    assert_eq!(net.size(), size, "refused by scope before any decision");
    assert_eq!(
        net.node
            .fhir
            .store
            .current(&format!("Observation/{}", patient.observation))
            .map(|c| (c.latest.version, c.latest.deleted)),
        Some((1, false))
    );

    // What the scope names still works.
    let read = net
        .fhir(&narrow, Method::GET, "/fhir/Patient/p1", None)
        .await;
    assert_eq!(read.status, 200, "{}", read.text());
    // And a token with write scopes writes.
    let writer = net
        .token(&patient.key, "PATRQT", Some("user/Observation.cud"))
        .await;
    let created = net
        .fhir(
            &writer,
            Method::POST,
            "/fhir/Observation",
            Some(&observation("p1", "4548-4", 5.0)),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patient_scopes_reach_only_the_patient_in_context() {
    let net = Net::start();
    let patient = net.patient("p1", "Lovelace", "1815-12-10", "female").await;
    let reader = Keypair::generate();
    net.grant(
        &patient.key,
        &reader,
        json!({"categories": ["lab"]}),
        json!(["read"]),
        "HOPERAT",
    )
    .await;
    let obs_path = format!("/fhir/Observation/{}", patient.observation);
    // With a user scope the grant opens the record; with a patient scope
    // (the reader's own records only) it does not, and the refusal is a
    // logged decision naming the scope.
    let user = net
        .token(&reader, "HOPERAT", Some("user/Observation.rs"))
        .await;
    assert_eq!(
        net.fhir(&user, Method::GET, &obs_path, None).await.status,
        200
    );
    let own = net
        .token(&reader, "HOPERAT", Some("patient/Observation.rs"))
        .await;
    let size = net.size();
    let refused = net.fhir(&own, Method::GET, &obs_path, None).await;
    assert_eq!(refused.status, 404, "{}", refused.text());
    assert_eq!(net.size(), size + 1, "the refusal is logged");
    let found = net
        .fhir(
            &own,
            Method::GET,
            "/fhir/Observation?code=http://loinc.org|4548-4",
            None,
        )
        .await;
    assert_eq!(found.json()["total"], 0, "{}", found.text());
    let found = net
        .fhir(
            &user,
            Method::GET,
            "/fhir/Observation?code=http://loinc.org|4548-4",
            None,
        )
        .await;
    assert_eq!(found.json()["total"], 1, "{}", found.text());
    // The patient's own patient-scoped token reads their own record.
    let mine = net
        .token(&patient.key, "PATRQT", Some("patient/*.read"))
        .await;
    assert_eq!(
        net.fhir(&mine, Method::GET, &obs_path, None).await.status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_endpoint_grants_scopes_it_can_enforce() {
    let net = Net::start();
    let key = Keypair::generate();
    let granted = |answer: super::Answer| {
        assert_eq!(answer.status, 200, "{}", answer.text());
        answer.json()["scope"].as_str().unwrap_or("").to_owned()
    };
    assert_eq!(
        granted(net.token_request(&key, &[]).await),
        "system/*.cruds"
    );
    assert_eq!(
        granted(
            net.token_request(
                &key,
                &[(
                    "scope",
                    "patient/Observation.read launch/patient openid fhirUser offline_access"
                )]
            )
            .await
        ),
        "patient/Observation.rs"
    );
    assert_eq!(
        granted(
            net.token_request(&key, &[("scope", "user/*.write system/Patient.*")])
                .await
        ),
        "user/*.cud system/Patient.cruds"
    );
    for refused in [
        "user/Observation.rs?category=laboratory",
        "admin",
        "user/Observation.sr",
        "user/observation.rs",
    ] {
        let answer = net.token_request(&key, &[("scope", refused)]).await;
        assert_eq!(answer.status, 400, "{refused}: {}", answer.text());
        assert_eq!(answer.json()["error"], "invalid_scope", "{refused}");
    }
}
