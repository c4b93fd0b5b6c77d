//! Finding 3 of the outside attack: a search that matched something the
//! requester may not see was logged and answered with an audit header, so
//! a fresh did:key rebuilt a non-consenting patient's family name, birth
//! date and gender from empty Bundles. A search must answer exactly the
//! same whether or not a denied resource matched, and leave nothing in
//! the log that depends on it.

use axum::http::Method;
use hygeia_identity::Keypair;
use serde_json::Value;

use super::{did, Answer, Net};

/// What the requester sees of a search answer, with the parts that depend
/// only on the query text it sent (the links' queries) set aside.
fn seen(answer: &Answer, _query_value: &str) -> (u16, Vec<(String, String)>, String) {
    let mut headers: Vec<(String, String)> = answer
        .headers
        .iter()
        .filter(|(name, _)| *name != "date" && *name != "content-length")
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("?").to_owned()))
        .collect();
    headers.sort();
    let mut body: Value = answer.json();
    if let Some(links) = body["link"].as_array_mut() {
        for link in links {
            let url = link["url"].as_str().unwrap_or("").to_owned();
            let path = url.split('?').next().unwrap_or("").to_owned();
            link["url"] = Value::String(path);
        }
    }
    (answer.status, headers, body.to_string())
}

async fn search(net: &Net, token: &str, path: &str) -> Answer {
    net.fhir(token, Method::GET, &format!("/fhir/{path}"), None)
        .await
}

/// The attackers: a fresh did:key, and a registered clinician with no
/// consent from the patient.
async fn attackers(net: &Net) -> Vec<(&'static str, String)> {
    let stranger = Keypair::generate();
    let admin = Keypair::generate();
    let clinician = Keypair::generate();
    net.member("did:web:clinic.example", &admin, &clinician, "clinician")
        .await;
    let mut out = Vec::new();
    for (who, key) in [("fresh did:key", &stranger), ("clinician", &clinician)] {
        out.push((who, net.token(key, "TREAT", None).await));
        out.push((who, net.token(key, "HOPERAT", None).await));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_answers_and_logs_the_same_whether_a_denied_resource_matched() {
    let net = Net::start();
    let victim = net.patient("v1", "Lovelace", "1815-12-10", "female").await;
    let commitment = net
        .node
        .fhir
        .store
        .current(&format!("Observation/{}", victim.observation))
        .unwrap()
        .latest
        .commitment;
    // (search that matches the victim's resources, value, value that
    // matches nothing)
    let pairs: &[(&str, &str, &str)] = &[
        ("Patient?family={}", "Lovelace", "Lovelacf"),
        ("Patient?family:exact={}", "Lovelace", "Lovelacf"),
        ("Patient?family={}", "Lov", "Lox"),
        ("Patient?name={}", "Ada", "Adb"),
        ("Patient?birthdate={}", "1815-12-10", "1815-12-11"),
        ("Patient?birthdate=ge{}", "1815", "1816"),
        ("Patient?gender={}", "female", "other"),
        ("Patient?_id={}", "v1", "v2"),
        (
            "Patient?identifier={}",
            &did(&victim.key),
            "did:key:z6MknotAkey",
        ),
        ("Observation?code=http://loinc.org|{}", "4548-4", "4548-5"),
        ("Observation?patient=Patient/{}", "v1", "v2"),
        ("Observation?subject=Patient/{}&_total=accurate", "v1", "v2"),
        ("Observation?patient={}&_summary=count", "v1", "v2"),
        ("Observation?date={}", "2025-03-04", "2025-03-05"),
        (
            "Observation?patient=Patient/{}&_include=Observation:patient",
            "v1",
            "v2",
        ),
        (
            "Patient?family={}&_count=1&_offset=0",
            "Lovelace",
            "Lovelacf",
        ),
    ];
    for (who, token) in attackers(&net).await {
        for (template, hit, miss) in pairs {
            let before = net.size();
            let matched = search(&net, &token, &template.replace("{}", hit)).await;
            let after_match = net.size();
            let unmatched = search(&net, &token, &template.replace("{}", miss)).await;
            let after_miss = net.size();
            assert_eq!(
                seen(&matched, hit),
                seen(&unmatched, miss),
                "{who}: {template} answers differently when a denied resource matches"
            );
            assert_eq!(matched.status, 200, "{}", matched.text());
            assert_eq!(
                (after_match - before, after_miss - after_match),
                (0, 0),
                "{who}: {template} logged something for denied matches"
            );
            assert!(
                matched.headers.get("hygeia-audit-index").is_none(),
                "{who}: {template}: an audit index for a search that disclosed nothing"
            );
        }
        // Nothing the requester may read names the patient or the record.
        for index in 0..net.size() {
            let event = net
                .fhir(
                    &token,
                    Method::GET,
                    &format!("/fhir/AuditEvent/{index}"),
                    None,
                )
                .await;
            assert!(
                !event.text().contains(&did(&victim.key)) && !event.text().contains(&commitment),
                "{who}: AuditEvent/{index} reveals the patient: {}",
                event.text()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_attack_that_rebuilt_a_patient_from_empty_bundles_fails() {
    let net = Net::start();
    let _victim = net.patient("v1", "Lovelace", "1815-12-10", "female").await;
    let stranger = Keypair::generate();
    let token = net.token(&stranger, "TREAT", None).await;
    let size = net.size();
    // Family name letter by letter, birth year by year, gender: every
    // answer must be the same as for a value nobody has.
    let mut answers = std::collections::BTreeSet::new();
    let mut tried = 0;
    let mut probe = |answer: Answer, value: &str| {
        tried += 1;
        answers.insert(seen(&answer, value));
    };
    for letter in 'a'..='z' {
        let value = format!("lo{letter}");
        probe(
            search(&net, &token, &format!("Patient?family={value}")).await,
            &value,
        );
    }
    for year in 1810..1820 {
        let value = year.to_string();
        probe(
            search(&net, &token, &format!("Patient?birthdate={value}")).await,
            &value,
        );
    }
    for gender in ["male", "female", "other", "unknown"] {
        probe(
            search(
                &net,
                &token,
                &format!("Patient?gender={gender}&family=lovelace"),
            )
            .await,
            gender,
        );
    }
    assert_eq!(tried, 40);
    assert_eq!(
        answers.len(),
        1,
        "the answers tell matching values apart: {answers:#?}"
    );
    assert_eq!(net.size(), size, "the probes grew the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_still_find_what_the_requester_may_read() {
    let net = Net::start();
    let victim = net.patient("v1", "Lovelace", "1815-12-10", "female").await;
    let other = net.patient("v2", "Babbage", "1791-12-26", "male").await;
    // The patient finds their own records, and the search is logged.
    let own = search(
        &net,
        &victim.token,
        "Observation?code=http://loinc.org|4548-4",
    )
    .await;
    assert_eq!(own.status, 200);
    assert_eq!(own.json()["total"], 1, "{}", own.text());
    assert!(own.headers.get("hygeia-audit-index").is_some());
    // A grantee sees exactly the granted patient's granted records.
    let reader = Keypair::generate();
    net.grant(
        &other.key,
        &reader,
        serde_json::json!({"categories": ["lab"]}),
        serde_json::json!(["read"]),
        "HOPERAT",
    )
    .await;
    let token = net.token(&reader, "HOPERAT", None).await;
    let found = search(&net, &token, "Observation?code=http://loinc.org|4548-4").await;
    assert_eq!(found.json()["total"], 1, "{}", found.text());
    assert_eq!(
        found.json()["entry"][0]["resource"]["id"],
        other.observation.as_str()
    );
    // The grant covers lab results only: the Patient resource stays hidden.
    let patients = search(&net, &token, "Patient?family=Babbage").await;
    assert_eq!(patients.json()["total"], 0, "{}", patients.text());
    // Directory resources are anyone's to find.
    let admin = Keypair::generate();
    let member = Keypair::generate();
    net.member("did:web:clinic.example", &admin, &member, "clinician")
        .await;
    let member_token = net.token(&member, "HOPERAT", None).await;
    let org = serde_json::json!({"resourceType": "Organization", "id": "o1", "name": "Clinic"});
    let put = net
        .fhir(
            &member_token,
            Method::PUT,
            "/fhir/Organization/o1",
            Some(&org),
        )
        .await;
    assert_eq!(put.status, 201, "{}", put.text());
    let stranger = net.token(&Keypair::generate(), "HOPERAT", None).await;
    let orgs = search(&net, &stranger, "Organization?name=clinic").await;
    assert_eq!(orgs.json()["total"], 1, "{}", orgs.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requester_reads_its_own_denials_without_the_patient_or_records() {
    let net = Net::start();
    let victim = net.patient("v1", "Lovelace", "1815-12-10", "female").await;
    let commitment = net
        .node
        .fhir
        .store
        .current(&format!("Observation/{}", victim.observation))
        .unwrap()
        .latest
        .commitment;
    let stranger = net.token(&Keypair::generate(), "TREAT", None).await;
    let denied = net
        .fhir(
            &stranger,
            Method::GET,
            &format!("/fhir/Observation/{}", victim.observation),
            None,
        )
        .await;
    assert_eq!(denied.status, 404);
    let index = net.size() - 1;
    let path = format!("/fhir/AuditEvent/{index}");
    // The requester sees that it was denied, not whose record it was.
    let own = net.fhir(&stranger, Method::GET, &path, None).await;
    assert_eq!(own.status, 200, "{}", own.text());
    assert_eq!(own.json()["outcome"]["code"]["code"], "4", "{}", own.text());
    assert!(
        !own.text().contains(&did(&victim.key)) && !own.text().contains(&commitment),
        "{}",
        own.text()
    );
    // The patient sees all of it.
    let theirs = net.fhir(&victim.token, Method::GET, &path, None).await;
    assert_eq!(theirs.status, 200, "{}", theirs.text());
    assert!(theirs.text().contains(&did(&victim.key)) && theirs.text().contains(&commitment));
}

/// A search decides once per (patient, resource type, category) only when
/// no grant names single records: with a grant naming one record, each
/// match is decided on its own and only the named one is found; with a
/// grant of the type, every match is found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_decisions_never_widen_a_grant_that_names_records() {
    let net = Net::start();
    let patient = net.patient("s1", "Hopper", "1906-12-09", "female").await;
    let second = net
        .fhir(
            &patient.token,
            Method::POST,
            "/fhir/Observation",
            Some(&super::observation("s1", "4548-4", 7.2)),
        )
        .await;
    assert_eq!(second.status, 201, "{}", second.text());
    let commitment = |id: &str| {
        net.node
            .fhir
            .store
            .current(&format!("Observation/{id}"))
            .unwrap()
            .latest
            .commitment
    };
    let named = Keypair::generate();
    net.grant(
        &patient.key,
        &named,
        serde_json::json!({"record_ids": [commitment(&patient.observation)]}),
        serde_json::json!(["read"]),
        "HOPERAT",
    )
    .await;
    let token = net.token(&named, "HOPERAT", None).await;
    let found = search(&net, &token, "Observation?patient=Patient/s1").await;
    assert_eq!(found.json()["total"], 1, "{}", found.text());
    assert_eq!(
        found.json()["entry"][0]["resource"]["id"],
        patient.observation.as_str()
    );
    let typed = Keypair::generate();
    net.grant(
        &patient.key,
        &typed,
        serde_json::json!({"resource_types": ["Observation"]}),
        serde_json::json!(["read"]),
        "HOPERAT",
    )
    .await;
    let token = net.token(&typed, "HOPERAT", None).await;
    let before = net.size();
    let found = search(&net, &token, "Observation?patient=Patient/s1").await;
    assert_eq!(found.json()["total"], 2, "{}", found.text());
    // One decision shared by both records, one event naming both.
    assert_eq!(net.size() - before, 1);
}
