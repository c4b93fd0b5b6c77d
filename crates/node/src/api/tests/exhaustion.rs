//! Findings 8 and 9 of the outside attack: tables one key could fill for
//! everyone — the `$export` job table (64 jobs node-wide, finished ones
//! kept an hour), the client-assertion replay cache (one node-wide cache
//! fresh keys could fill, after which every client got 503), research
//! studies (no delete, no per-researcher bound) — and a Group export whose
//! progress counted resources its requester may not see.

use std::time::Duration;

use axum::http::Method;
use hygeia_identity::Keypair;
use serde_json::{json, Value};

use super::{did, now, Answer, Net};

/// A Group (directory resource, anyone may read it) listing `members`,
/// written by a registered member.
async fn group(net: &Net, id: &str, members: &[&str]) {
    let admin = Keypair::generate();
    let writer = Keypair::generate();
    net.member("did:web:registry.example", &admin, &writer, "admin")
        .await;
    let token = net.token(&writer, "HOPERAT", None).await;
    let members: Vec<Value> = members
        .iter()
        .map(|p| json!({"entity": {"reference": format!("Patient/{p}")}}))
        .collect();
    let resource = json!({"resourceType": "Group", "id": id, "type": "person", "membership": "enumerated", "member": members});
    let put = net
        .fhir(
            &token,
            Method::PUT,
            &format!("/fhir/Group/{id}"),
            Some(&resource),
        )
        .await;
    assert_eq!(put.status, 201, "{}", put.text());
}

async fn kick_off(net: &Net, token: &str, group: &str) -> Answer {
    net.fhir_with(
        token,
        Method::GET,
        &format!("/fhir/Group/{group}/$export"),
        None,
        &[("prefer", "respond-async")],
    )
    .await
}

fn job_path(answer: &Answer) -> String {
    let location = answer.headers["content-location"].to_str().unwrap();
    location[location.find("/fhir-export/").unwrap()..].to_owned()
}

/// Waits until every job answers 200 (finished).
async fn finished(net: &Net, token: &str, jobs: &[String]) {
    for job in jobs {
        for _ in 0..200 {
            if net.fhir(token, Method::GET, job, None).await.status == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_jobs_are_bounded_per_requester_and_fair() {
    let net = Net::start();
    net.patient("v1", "Lovelace", "1815-12-10", "female").await;
    group(&net, "g1", &["v1"]).await;
    let per = crate::api::fhir::MAX_EXPORT_JOBS_PER_REQUESTER;
    let all = crate::api::fhir::MAX_EXPORT_JOBS;

    // One key holds a bounded number of jobs, running or finished.
    let hog = net.token(&Keypair::generate(), "HOPERAT", None).await;
    let mut jobs = Vec::new();
    for _ in 0..per {
        let answer = kick_off(&net, &hog, "g1").await;
        assert_eq!(answer.status, 202, "{}", answer.text());
        jobs.push(job_path(&answer));
    }
    finished(&net, &hog, &jobs).await;
    let refused = kick_off(&net, &hog, "g1").await;
    assert_eq!(refused.status, 429, "{}", refused.text());
    assert_eq!(refused.issue(), "too-costly");
    // Deleting one makes room for it again.
    assert_eq!(
        net.fhir(&hog, Method::DELETE, &jobs[0], None).await.status,
        202
    );
    assert_eq!(kick_off(&net, &hog, "g1").await.status, 202);

    // Many keys filling the node-wide table with finished jobs do not keep
    // a newcomer out: the oldest finished job of the biggest holder goes.
    for _ in 0..all / per {
        let token = net.token(&Keypair::generate(), "HOPERAT", None).await;
        let mut theirs = Vec::new();
        for _ in 0..per {
            let answer = kick_off(&net, &token, "g1").await;
            assert_eq!(answer.status, 202, "{}", answer.text());
            theirs.push(job_path(&answer));
        }
        finished(&net, &token, &theirs).await;
    }
    assert_eq!(net.node.fhir.exports.len(), all);
    let newcomer = net.token(&Keypair::generate(), "HOPERAT", None).await;
    let answer = kick_off(&net, &newcomer, "g1").await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    assert_eq!(net.node.fhir.exports.len(), all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_export_counts_only_what_its_requester_may_see() {
    let net = Net::start();
    let victim = net.patient("v1", "Lovelace", "1815-12-10", "female").await;
    group(&net, "g1", &["v1"]).await;
    let session = |token: &str| net.node.tokens.lookup(token, now()).unwrap();
    let members = vec![did(&victim.key)];

    // A stranger's export of the Group plans nothing of the patient: its
    // progress counts 0, and nothing is decided or logged for it.
    let stranger = net.token(&Keypair::generate(), "HOPERAT", None).await;
    let (resources, events) =
        crate::api::fhir::export_plan(&net.node, &session(&stranger), &members, None).unwrap();
    assert_eq!((resources.len(), events.len()), (0, 0));
    // The patient's own export plans their two resources.
    let (resources, events) =
        crate::api::fhir::export_plan(&net.node, &session(&victim.token), &members, None).unwrap();
    assert_eq!((resources.len(), events.len()), (2, 2));

    // The job itself, end to end: the manifest lists nothing, and no event
    // names the patient.
    let size = net.size();
    let answer = kick_off(&net, &stranger, "g1").await;
    assert_eq!(answer.status, 202);
    let job = job_path(&answer);
    finished(&net, &stranger, std::slice::from_ref(&job)).await;
    let manifest = net.fhir(&stranger, Method::GET, &job, None).await;
    assert_eq!(manifest.json()["output"], json!([]), "{}", manifest.text());
    assert_eq!(net.size(), size + 1, "only the read of the Group is logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_keys_cannot_fill_the_replay_cache_for_everyone() {
    let net = Net::with_config(|c| c.jti_capacity = 8);
    // Known participants: a registered member, and a patient with records.
    let admin = Keypair::generate();
    let member = Keypair::generate();
    net.member("did:web:clinic.example", &admin, &member, "clinician")
        .await;
    let patient = net.patient("p1", "Lovelace", "1815-12-10", "female").await;
    // Fresh keys fill the room strangers share (the patient's first token,
    // taken before it had records, is in it too).
    let mut filled = 1;
    while filled < 8 {
        let answer = net.token_request(&Keypair::generate(), &[]).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        filled += 1;
    }
    let refused = net.token_request(&Keypair::generate(), &[]).await;
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(refused.json()["error"], "temporarily_unavailable");
    // Those the node knows still get tokens.
    assert_eq!(net.token_request(&member, &[]).await.status, 200);
    assert_eq!(net.token_request(&patient.key, &[]).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_key_holds_a_bounded_share_of_the_replay_cache() {
    let net = Net::with_config(|c| c.jti_capacity = 1000);
    let greedy = Keypair::generate();
    let share = hygeia_auth::token::DEFAULT_JTI_PER_ISSUER;
    for n in 0..share {
        let answer = net.token_request(&greedy, &[]).await;
        assert_eq!(answer.status, 200, "token {n}: {}", answer.text());
    }
    let refused = net.token_request(&greedy, &[]).await;
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(
        net.token_request(&Keypair::generate(), &[]).await.status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_researcher_holds_a_bounded_number_of_studies_and_deletes_them() {
    let net = Net::start();
    let admin = Keypair::generate();
    let researcher = Keypair::generate();
    net.member("did:web:lab.example", &admin, &researcher, "researcher")
        .await;
    let issuer = did(&Keypair::generate());
    let study = |id: &str| {
        serde_json::to_vec(&json!({
            "study_id": id, "attribute": "hba1c-percent-x10", "loinc": "4548-4",
            "range": {"min_inclusive": 65, "max_exclusive": 90}, "accepted_issuers": [issuer],
        }))
        .unwrap()
    };
    let cap = crate::research::MAX_STUDIES_PER_RESEARCHER;
    for n in 0..cap {
        let answer = net
            .signed(
                &researcher,
                Method::POST,
                "/v1/research/studies",
                Some(study(&format!("s{n}"))),
            )
            .await;
        assert_eq!(answer.status, 201, "{}", answer.text());
    }
    let refused = net
        .signed(
            &researcher,
            Method::POST,
            "/v1/research/studies",
            Some(study("one-more")),
        )
        .await;
    assert_eq!(refused.status, 429, "{}", refused.text());
    assert_eq!(refused.code(), "research.too_many_of_yours");
    // Only the researcher deletes; then there is room again.
    let stranger = Keypair::generate();
    let not_theirs = net
        .signed(&stranger, Method::DELETE, "/v1/research/studies/s0", None)
        .await;
    assert_eq!(not_theirs.status, 403, "{}", not_theirs.text());
    let deleted = net
        .signed(&researcher, Method::DELETE, "/v1/research/studies/s0", None)
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    assert_eq!(net.get("/v1/research/studies/s0").await.status, 404);
    let again = net
        .signed(
            &researcher,
            Method::POST,
            "/v1/research/studies",
            Some(study("one-more")),
        )
        .await;
    assert_eq!(again.status, 201, "{}", again.text());
}
