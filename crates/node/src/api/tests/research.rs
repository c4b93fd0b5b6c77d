//! Research eligibility across a restart: studies, answers and tallies are
//! private node state kept in `research.redb` (crate::research), so an
//! acknowledged answer survives and a patient who answered is still
//! refused a second answer.

use axum::http::Method;
use hygeia_credentials::zk::hba1c::hba1c_claims;
use hygeia_credentials::zk::{respond, CommittedAttributeCredential, Criteria, PatientSecret};
use hygeia_identity::Keypair;
use serde_json::{json, Value};

use super::{did, now, Answer, Net};

const STUDY: &str = "hba1c-2026";

/// An answer to `criteria` from a patient holding a lab credential with
/// HbA1c `value` (in tenths of a percent).
fn answer_body(lab: &Keypair, criteria: &Criteria, value: u64) -> Vec<u8> {
    let now = now() as u64;
    let claims = hba1c_claims(lab.did().as_str(), value, now - 10, now + 86_400, None);
    let (credential, opening) = CommittedAttributeCredential::issue(lab, &claims).unwrap();
    respond(criteria, &credential, &opening, &PatientSecret::generate())
        .unwrap()
        .to_json()
        .into_bytes()
}

async fn answer(net: &Net, patient: &Keypair, body: Vec<u8>) -> Answer {
    net.signed(
        patient,
        Method::POST,
        &format!("/v1/research/studies/{STUDY}/responses"),
        Some(body),
    )
    .await
}

async fn tally(net: &Net, researcher: &Keypair) -> Value {
    let tally = net
        .signed(
            researcher,
            Method::GET,
            &format!("/v1/research/studies/{STUDY}/tally"),
            None,
        )
        .await;
    assert_eq!(tally.status, 200, "{}", tally.text());
    tally.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_and_tallies_survive_a_restart() {
    let net = Net::start();
    let (admin, researcher, lab) = (
        Keypair::generate(),
        Keypair::generate(),
        Keypair::generate(),
    );
    net.member("did:web:lab.example", &admin, &researcher, "researcher")
        .await;
    let published = net
        .signed(
            &researcher,
            Method::POST,
            "/v1/research/studies",
            Some(
                serde_json::to_vec(&json!({
                    "study_id": STUDY, "attribute": "hba1c-percent-x10", "loinc": "4548-4",
                    "range": {"min_inclusive": 65, "max_exclusive": 90}, "accepted_issuers": [did(&lab)],
                }))
                .unwrap(),
            ),
        )
        .await;
    assert_eq!(published.status, 201, "{}", published.text());
    let criteria: Criteria = serde_json::from_value(published.json()["criteria"].clone()).unwrap();
    let (first, second) = (Keypair::generate(), Keypair::generate());
    for patient in [&first, &second] {
        net.grant(
            patient,
            &researcher,
            json!({"categories": ["lab"]}),
            json!(["read"]),
            "HRESCH",
        )
        .await;
    }
    let counted = answer(&net, &first, answer_body(&lab, &criteria, 72)).await;
    assert_eq!(counted.status, 201, "{}", counted.text());
    // The patient sees their answer in their wallet; nobody else does.
    let mine = net
        .signed(&first, Method::GET, "/v1/research/answers", None)
        .await;
    assert_eq!(mine.status, 200, "{}", mine.text());
    let answers = mine.json()["answers"].clone();
    assert_eq!(answers.as_array().unwrap().len(), 1, "{answers}");
    assert_eq!(answers[0]["study_id"], STUDY);
    assert_eq!(answers[0]["researcher"], did(&researcher));
    assert_eq!(answers[0]["proved"], "65 ≤ v < 90");
    for other in [&second, &researcher, &Keypair::generate()] {
        let theirs = net
            .signed(other, Method::GET, "/v1/research/answers", None)
            .await;
        assert_eq!(theirs.json()["answers"], json!([]), "{}", theirs.text());
    }
    let unsigned = net.get("/v1/research/answers").await;
    assert_eq!(unsigned.status, 401, "{}", unsigned.text());
    let size = net.size();
    let before = tally(&net, &researcher).await;
    assert_eq!(before["qualifying"], 1);

    let net = net.restart();
    // Nothing about the study or its answers is on the public log.
    assert_eq!(net.size(), size);
    let kept = net.get(&format!("/v1/research/studies/{STUDY}")).await;
    assert_eq!(kept.status, 200, "{}", kept.text());
    assert_eq!(kept.json()["criteria"], published.json()["criteria"]);
    assert_eq!(tally(&net, &researcher).await, before);
    // The patient who answered is refused as before the restart.
    let again = answer(&net, &first, answer_body(&lab, &criteria, 80)).await;
    assert_eq!(again.status, 409, "{}", again.text());
    assert_eq!(again.code(), "research.already_answered");
    // Another patient's answer still verifies against the kept issuer key
    // and counts.
    let counted = answer(&net, &second, answer_body(&lab, &criteria, 66)).await;
    assert_eq!(counted.status, 201, "{}", counted.text());
    let after = tally(&net, &researcher).await;
    assert_eq!(after["qualifying"], 2);
    let net = net.restart();
    assert_eq!(tally(&net, &researcher).await, after);
    let mine = net
        .signed(&first, Method::GET, "/v1/research/answers", None)
        .await;
    assert_eq!(
        mine.json()["answers"][0]["study_id"],
        STUDY,
        "{}",
        mine.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_research_store_stops_the_start() {
    let net = Net::start();
    let config = net.node.config.clone();
    let path = crate::research::store_path(&config.data_dir);
    drop(net.app);
    drop(std::sync::Arc::into_inner(net.node).expect("no request holds the node"));
    std::fs::write(&path, b"not a database, and long enough to not be empty").unwrap();
    let err = match crate::node::Node::open(config) {
        Ok(_) => panic!("a node opened on a damaged research store"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("research.redb"), "{err}");
    assert!(err.contains("move it aside"), "{err}");
    // Not reset: the file is still what it was.
    assert_eq!(
        std::fs::read(&path).unwrap(),
        b"not a database, and long enough to not be empty"
    );
}
