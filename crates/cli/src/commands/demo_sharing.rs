//! The demo's research-sharing programme (docs/sharing.md): the
//! governance key registers the research institute's `share-token`; the
//! institute mints, publishes a programme (2 a day of consent, 5 a counted
//! access) that started a week ago, and funds it; `patient-2` grants the
//! institute a research read of their lab results from the same time; the
//! lab uploads a result of theirs, the institute's researcher reads it
//! (days count only once a grant was used) and `patient-2` claims: the
//! whole days since, up to the ledger's clock, and the read are paid.

use std::path::Path;

use anyhow::Context;
use serde_json::{json, Value};

use super::demo_records::{leaf_hash, DemoKeys, RESEARCH};
use super::economy::tick;
use crate::client::{Client, RecordUpload};

/// The demo's research-sharing unit.
pub const UNIT: &str = "share-token";

fn submit(client: &mut Client, tx_type: &str, body: Value) -> anyhow::Result<Value> {
    client
        .submit(tx_type, body)
        .with_context(|| format!("seeding the demo sharing programme: {tx_type}"))
}

/// Seeds the programme through the node at `url`; returns its id.
pub fn seed(url: &str, keys: &DemoKeys, work_dir: &Path) -> anyhow::Result<String> {
    const DAY: i64 = 86_400;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let since = now - 7 * DAY;
    let mut governance = Client::with_key(url, keys.key("governance")?);
    submit(
        &mut governance,
        "unit.register",
        json!({"unit": UNIT, "issuer": RESEARCH}),
    )?;
    let mut institute = Client::with_key(url, keys.key("research-admin")?);
    submit(
        &mut institute,
        "unit.mint",
        json!({"unit": UNIT, "to": RESEARCH, "amount": 5_000}),
    )?;
    let program = leaf_hash(&submit(
        &mut institute,
        "sharing.publish",
        json!({"researcher": RESEARCH, "unit": UNIT, "per_day": 2, "per_access": 5, "start": since}),
    )?)?;
    submit(
        &mut institute,
        "escrow.open",
        json!({"unit": UNIT, "amount": 1_000, "funder": RESEARCH,
               "condition": {"kind": "sharing", "program": program},
               "refund_after": now + 365 * DAY}),
    )?;
    let patient_did = keys.did("patient-2")?;
    let mut patient = Client::with_key(url, keys.key("patient-2")?);
    let grant = submit(
        &mut patient,
        "consent.grant",
        json!({"patient": patient_did, "grantee": RESEARCH, "scope": {"categories": ["lab"]},
               "actions": ["read"], "purpose": "HRESCH", "not_before": since,
               "not_after": now + 180 * DAY}),
    )?;
    let grant = leaf_hash(&grant)?;
    // A synthetic result of patient-2's, uploaded by the lab (which holds
    // their write grant), read by the institute's researcher for research.
    std::fs::create_dir_all(work_dir)?;
    let file = work_dir.join("sharing-record.json");
    let resource = json!({"resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}], "text": "Glucose"},
        "subject": {"identifier": {"system": "urn:ietf:rfc:3986", "value": patient_did}},
        "valueQuantity": {"value": 5.4, "unit": "mmol/L"}});
    std::fs::write(&file, serde_json::to_vec_pretty(&resource)?)?;
    let lab = Client::with_key(url, keys.key("lab")?);
    let uploaded = lab.upload_record(
        &RecordUpload {
            patient: &patient_did,
            category: "lab",
            resource_type: "Observation",
            media_type: "application/fhir+json",
            purpose: "TREAT",
        },
        &file,
    )?;
    std::fs::remove_file(&file).ok();
    let record = uploaded["record"]
        .as_str()
        .context("the node gave no record id")?;
    let researcher = Client::with_key(url, keys.key("researcher")?);
    let read = researcher
        .get(&format!("/v1/records/{record}?purpose=HRESCH"), &[])?
        .status();
    anyhow::ensure!(
        read.is_success(),
        "the researcher's read under the grant answered {read}"
    );
    tick(url)?;
    submit(
        &mut patient,
        "sharing.claim",
        json!({"program": program, "grant": grant}),
    )?;
    Ok(program)
}
