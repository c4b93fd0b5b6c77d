//! The one-line network over the router: `Net::network()` builds the cast
//! of `hygeia_state::testing` (governance, an organization, a licensed
//! clinician, a patient) through `POST /v1/transactions`; and behaviour
//! tests on it that need no node process (moved here from the CLI's
//! end-to-end tests, which started one for each).

use hygeia_identity::Keypair;
use serde_json::{json, Value};

use super::{did, now, Net, CLINIC};

/// A day's grant from `patient` to `grantee` to read lab results for
/// treatment.
fn grant_body(patient: &Keypair, grantee: &Keypair) -> Value {
    let now = now();
    json!({
        "patient": did(patient), "grantee": did(grantee),
        "scope": {"categories": ["lab"]}, "actions": ["read"], "purpose": "TREAT",
        "not_before": now - 60, "not_after": now + 30 * 86_400,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periods_that_end_before_they_start_are_refused() {
    let (net, cast) = Net::network().await;
    let mut body = grant_body(&cast.patient, &cast.clinician);
    body["not_after"] = body["not_before"].clone();
    net.refused_tx(
        &cast.patient,
        "consent.grant",
        body.clone(),
        422,
        "consent.invalid_period",
    )
    .await;
    body["not_after"] = json!(body["not_before"].as_i64().unwrap() - 86_400);
    net.refused_tx(
        &cast.patient,
        "consent.grant",
        body,
        422,
        "consent.invalid_period",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grantee_cannot_widen_its_own_grant() {
    let (net, cast) = Net::network().await;
    net.submit_ok(
        &cast.patient,
        "consent.grant",
        grant_body(&cast.patient, &cast.clinician),
    )
    .await;
    let mut wider = grant_body(&cast.patient, &cast.clinician);
    wider["scope"] = json!({"categories": ["lab", "mental-health"]});
    wider["actions"] = json!(["read", "write"]);
    net.refused_tx(
        &cast.clinician,
        "consent.grant",
        wider,
        403,
        "consent.grantee_widening",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_line_builds_a_network_with_a_licensed_clinician() {
    let (net, cast) = Net::network().await;
    assert_eq!(
        net.size(),
        5,
        "the genesis entry and four set-up transactions"
    );
    let licences = net
        .get(&format!("/v1/licences/{}", did(&cast.clinician)))
        .await;
    assert_eq!(licences.status, 200, "{}", licences.text());
    assert_eq!(licences.json()["licences"][0]["standing"], "valid");
    let patient = net
        .get(&format!("/v1/licences/{}", did(&cast.patient)))
        .await;
    assert_eq!(patient.json()["licences"], json!([]));
    // The organization is the governance key's: a stranger cannot
    // register another, and the log does not grow.
    let stranger = Keypair::generate();
    let refused = net
        .submit(
            &stranger,
            "org.register",
            json!({"org": "did:web:other.example", "admin": did(&stranger), "kind": "clinic"}),
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert_eq!(refused.code(), "org.not_governance");
    assert_eq!(net.size(), 5);
    // The admin of the cast's organization manages its members.
    net.submit_ok(
        &cast.admin,
        "org.member",
        json!({"org": CLINIC, "member": did(&stranger), "roles": ["nurse"], "jurisdiction": "FR", "status": "active"}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn free_text_in_a_grant_never_reaches_the_ledger() {
    let (net, cast) = Net::network().await;
    for scope in [
        json!({"categories": ["Free text, with spaces"]}),
        json!({"resource_types": ["not a type"]}),
        json!({"record_ids": ["not a record id"]}),
    ] {
        let mut body = grant_body(&cast.patient, &cast.clinician);
        body["scope"] = scope;
        net.refused_tx(
            &cast.patient,
            "consent.grant",
            body,
            400,
            "schema_violation",
        )
        .await;
    }
}

/// `network.validators` over HTTP: every signer but governance is refused
/// (403, the log does not grow), so no organization, clinician, patient or
/// stranger can name the next epoch's validators; governance can, once per
/// epoch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_governance_names_the_next_validator_set() {
    let (net, cast) = Net::network().await;
    let node = net.node.node_did.clone();
    let attacker = Keypair::generate();
    let sets = [
        json!({"epoch": 1, "validators": [{"key": did(&attacker), "address": "192.0.2.66:9101"}]}),
        json!({"epoch": 1, "validators": [{"key": node, "address": "192.0.2.66:9101"}]}),
    ];
    for signer in [
        &attacker,
        &cast.admin,
        &cast.clinician,
        &cast.patient,
        &cast.board,
    ] {
        for body in &sets {
            net.refused_tx(
                signer,
                "network.validators",
                body.clone(),
                403,
                "network.not_governance",
            )
            .await;
        }
    }
    // Governance: a key outside the custodian set is refused, the node's
    // key is accepted, and the same epoch cannot be named twice.
    net.refused_tx(
        &cast.governance,
        "network.validators",
        sets[0].clone(),
        422,
        "network.validator_not_custodian",
    )
    .await;
    let before = net.get("/v1/node").await.json();
    assert_eq!(before["epoch"], 0);
    assert!(before["validators"]
        .as_array()
        .is_some_and(|set| set.iter().any(|v| v["key"] == node.as_str())));
    net.submit_ok(&cast.governance, "network.validators", sets[1].clone())
        .await;
    let after = net.get("/v1/node").await.json();
    assert_eq!(after["epoch"], 1);
    assert_eq!(after["validators"], sets[1]["validators"]);
    net.refused_tx(
        &cast.governance,
        "network.validators",
        sets[1].clone(),
        409,
        "network.epoch_mismatch",
    )
    .await;
}
