//! Dataset manifests over HTTP: a researcher publishes a manifest of a
//! patient's consented lab records, anyone reads it as `valid`; a
//! stranger cannot publish the same records; a revocation and an erasure
//! later flag the members they touch. No patient DID is served.

use hygeia_identity::Keypair;
use hygeia_state::datasets::{members_root, DatasetMember};
use serde_json::{json, Value};

use super::*;

fn manifest(mut members: Vec<DatasetMember>) -> Value {
    members.sort_by(|a, b| a.record.cmp(&b.record));
    json!({"root": members_root(&members).unwrap(), "count": members.len(),
           "pseudonymisation": "ef".repeat(32), "members": members})
}

#[tokio::test]
async fn a_published_manifest_is_valid_until_a_revocation_or_an_erasure_flags_it() {
    let (net, cast) = Net::network().await;
    let patient = did(&cast.patient);
    let researcher = Keypair::generate();
    let mut records = Vec::new();
    for content in [
        &br#"{"resourceType":"Observation","id":"a"}"#[..],
        br#"{"resourceType":"Observation","id":"b"}"#,
    ] {
        let answer = net.upload(&cast.patient, &patient, "lab", content).await;
        assert_eq!(answer.status, 201, "{}", answer.text());
        records.push(answer.json()["record"].as_str().unwrap().to_owned());
    }
    let now = now();
    let grant = net
        .submit_ok(
            &cast.patient,
            "consent.grant",
            json!({"patient": patient, "grantee": did(&researcher), "scope": {"categories": ["lab"]},
                   "actions": ["read"], "purpose": "HRESCH", "not_before": now - 60, "not_after": now + 86_400}),
        )
        .await
        .json()["leaf_hash"]
        .as_str()
        .unwrap()
        .to_owned();
    let tick = net
        .send(Request::post("/v1/clock").body(Body::empty()).unwrap())
        .await;
    assert_eq!(tick.status, 201, "{}", tick.text());
    let body = manifest(
        records
            .iter()
            .map(|record| DatasetMember {
                record: record.clone(),
                grant: grant.clone(),
            })
            .collect(),
    );
    // A stranger with a fresh key publishes nothing with someone else's
    // grant, and the log does not grow.
    let stranger = Keypair::generate();
    net.refused_tx(
        &stranger,
        "dataset.publish",
        body.clone(),
        403,
        "dataset.not_grantee",
    )
    .await;
    let id = net
        .submit_ok(&researcher, "dataset.publish", body.clone())
        .await
        .json()["leaf_hash"]
        .as_str()
        .unwrap()
        .to_owned();
    let read = net.get(&format!("/v1/datasets/{id}")).await;
    assert_eq!(read.status, 200, "{}", read.text());
    let manifest = read.json();
    assert_eq!(manifest["status"], "valid");
    assert_eq!(manifest["root"], body["root"]);
    assert_eq!(manifest["count"], 2);
    assert_eq!(manifest["members"], body["members"]);
    assert_eq!(manifest["researcher"], did(&researcher));
    assert_eq!(manifest["flagged"], json!([]));
    assert!(
        !read.text().contains(&patient),
        "the patient's DID is served"
    );
    assert_eq!(net.get("/v1/datasets/00").await.status, 404);
    // The ledger entry itself names no patient and holds no content.
    let entry = net.get(&format!("/v1/transactions/{id}")).await;
    assert_eq!(entry.status, 200, "{}", entry.text());
    assert!(!entry.text().contains(&patient));
    assert!(!entry.text().contains("Observation"));

    // The patient erases one record: its member is flagged.
    let erased = records.iter().min().unwrap().clone();
    net.submit_ok(&cast.patient, "record.erase", json!({ "record": erased }))
        .await;
    let manifest = net.get(&format!("/v1/datasets/{id}")).await.json();
    assert_eq!(manifest["status"], "flagged");
    assert_eq!(
        manifest["flagged"],
        json!([{"index": 0, "record": erased, "grant": grant, "reasons": ["record_erased"]}])
    );
    // Then revokes the grant: both members are flagged.
    net.submit_ok(&cast.patient, "consent.revoke", json!({ "grant": grant }))
        .await;
    let read = net.get(&format!("/v1/datasets/{id}")).await;
    let manifest = read.json();
    let reasons: Vec<Value> = manifest["flagged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["reasons"].clone())
        .collect();
    assert_eq!(
        reasons,
        [
            json!(["record_erased", "grant_revoked"]),
            json!(["grant_revoked"])
        ]
    );
    assert!(
        !read.text().contains(&patient),
        "the patient's DID is served"
    );
}
