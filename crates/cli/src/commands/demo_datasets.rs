//! The demo's dataset (docs/datasets.md): three patients each upload a
//! synthetic HbA1c result and grant the researcher a research (`HRESCH`)
//! read of their lab results; the researcher publishes a manifest over the
//! three records; then the second patient revokes their grant, so the
//! dataset's status is `flagged` with that member (`grant_revoked`).

use std::path::Path;

use anyhow::Context;
use serde_json::{json, Value};

use super::dataset::publish_body;
use super::demo_records::{leaf_hash, DemoKeys};
use crate::client::{Client, RecordUpload};

/// How many patients the demo dataset draws from.
const MEMBERS: usize = 3;

fn submit(client: &mut Client, tx_type: &str, body: Value) -> anyhow::Result<Value> {
    client
        .submit(tx_type, body)
        .with_context(|| format!("seeding the demo dataset: {tx_type}"))
}

/// Seeds the dataset through the node at `url`; returns its id.
pub fn seed(url: &str, keys: &DemoKeys, work_dir: &Path) -> anyhow::Result<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let researcher_did = keys.did("researcher")?;
    std::fs::create_dir_all(work_dir)?;
    let mut members = Vec::new();
    let mut grants = Vec::new();
    for i in 1..=MEMBERS {
        let name = format!("cohort-patient-{i}");
        let did = keys.did(&name)?;
        let mut patient = Client::with_key(url, keys.key(&name)?);
        let value = 6.0 + i as f64 * 0.4;
        let resource = json!({
            "resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4", "display": "Hemoglobin A1c/Hemoglobin.total in Blood"}]},
            "subject": {"identifier": {"system": "urn:ietf:rfc:3986", "value": did}},
            "valueQuantity": {"value": value, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}
        });
        let file = work_dir.join(format!("{name}.json"));
        std::fs::write(&file, serde_json::to_vec_pretty(&resource)?)?;
        let upload = RecordUpload {
            patient: &did,
            category: "lab",
            resource_type: "Observation",
            media_type: "application/fhir+json",
            purpose: "TREAT",
        };
        let answer = patient
            .upload_record(&upload, &file)
            .with_context(|| format!("seeding the demo dataset: {name}'s record"))?;
        std::fs::remove_file(&file).ok();
        let record = answer["record"]
            .as_str()
            .context("the node gave no record id")?
            .to_owned();
        let granted = submit(
            &mut patient,
            "consent.grant",
            json!({"patient": did, "grantee": researcher_did, "scope": {"categories": ["lab"]}, "actions": ["read"], "purpose": "HRESCH", "not_before": now - 60, "not_after": now + 180 * 86_400}),
        )?;
        let grant = leaf_hash(&granted)?;
        members.push(format!("{record}:{grant}"));
        grants.push((patient, grant));
    }
    // Grants are judged by the ledger's clock: bring it up to date.
    super::economy::tick(url)?;
    let method = b"Demo pseudonymisation: subject identifiers replaced by random study numbers; dates shifted per patient.\n";
    let pseudonymisation = {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(method))
    };
    let body = publish_body(&pseudonymisation, &members)?;
    let mut researcher = Client::with_key(url, keys.key("researcher")?);
    let published = submit(
        &mut researcher,
        "dataset.publish",
        serde_json::to_value(body)?,
    )?;
    let dataset = leaf_hash(&published)?;
    // The second patient withdraws their consent afterwards: the dataset
    // stays on the ledger, and its status flags that member.
    let (patient, grant) = &mut grants[1];
    submit(patient, "consent.revoke", json!({ "grant": grant }))?;
    Ok(dataset)
}
