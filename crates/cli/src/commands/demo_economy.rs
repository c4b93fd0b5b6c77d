//! The demo's care program (docs/economy.md): the governance key registers
//! the clinic's incentive token; the clinic mints, publishes "HbA1c below
//! 7.0 %" (lab results signed by the demo lab count) and funds it; the lab
//! issues HbA1c credentials; `patient-2` (6.4 %) claims and is paid. The
//! demo patient's credential (6.1 %) is left unclaimed in the data
//! directory for the README's walkthrough, next to a 7.4 % one for which
//! no proof can be made. A milestone escrow waits for a trial visit.

use std::path::Path;

use anyhow::Context;
use hygeia_credentials::zk::{hba1c, CommittedAttributeCredential};
use serde_json::{json, Value};

use super::demo_records::{leaf_hash, DemoKeys};
use super::demo_records::{CLINIC, LAB};
use super::economy::{claim_body, tick};
use crate::client::Client;

/// The demo's unit.
pub const UNIT: &str = "gluco-token";

fn submit(client: &mut Client, tx_type: &str, body: Value) -> anyhow::Result<Value> {
    client
        .submit(tx_type, body)
        .with_context(|| format!("seeding the demo program: {tx_type}"))
}

/// Seeds the program through the node at `url`; returns its id.
pub fn seed(url: &str, keys: &DemoKeys, work_dir: &Path) -> anyhow::Result<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    tick(url)?;
    let mut governance = Client::with_key(url, keys.key("governance")?);
    submit(
        &mut governance,
        "unit.register",
        json!({"unit": UNIT, "issuer": CLINIC}),
    )?;
    let mut clinic = Client::with_key(url, keys.key("clinic-admin")?);
    submit(
        &mut clinic,
        "unit.mint",
        json!({"unit": UNIT, "to": CLINIC, "amount": 10_000}),
    )?;
    let published = submit(
        &mut clinic,
        "program.publish",
        json!({"org": CLINIC, "unit": UNIT, "reward": 50, "attribute": hba1c::HBA1C_ATTRIBUTE,
               "loinc": hba1c::HBA1C_LOINC, "range": {"max_exclusive": 70}, "issuers": [LAB],
               "start": now - 86_400, "period_secs": 90 * 86_400}),
    )?;
    let program = leaf_hash(&published)?;
    submit(
        &mut clinic,
        "escrow.open",
        json!({"unit": UNIT, "amount": 5_000, "funder": CLINIC,
               "condition": {"kind": "proof", "program": program}, "refund_after": now + 365 * 86_400}),
    )?;
    // A trial visit's stipend for patient-2, waiting for its milestone.
    submit(
        &mut clinic,
        "escrow.open",
        json!({"unit": UNIT, "amount": 200, "funder": CLINIC, "beneficiary": keys.did("patient-2")?,
               "condition": {"kind": "milestone", "id": "demo-trial/visit-2"},
               "refund_after": now + 180 * 86_400}),
    )?;
    // The lab (its admin key signs for did:web:lab.example) issues HbA1c
    // results as committed credentials.
    let lab = keys.key("lab-admin")?;
    std::fs::create_dir_all(work_dir)?;
    let issue = |holder: &str, x10: u64| -> anyhow::Result<_> {
        let claims = hba1c::hba1c_claims(
            LAB,
            x10,
            (now - 86_400) as u64,
            (now + 180 * 86_400) as u64,
            Some(keys.key(holder)?.did()),
        );
        CommittedAttributeCredential::issue(&lab, &claims).map_err(super::zk::coded)
    };
    let (credential, opening) = issue("patient-2", 64)?;
    let served: Value = super::did::get_json(url, &format!("/v1/programs/{program}"))?;
    let body = claim_body(&served, &credential, &opening, &keys.key("patient-2")?)?;
    let mut patient2 = Client::with_key(url, keys.key("patient-2")?);
    submit(&mut patient2, "program.claim", body)?;
    for (name, x10) in [("hba1c-patient", 61), ("hba1c-patient-high", 74)] {
        let (credential, opening) = issue("patient", x10)?;
        std::fs::write(work_dir.join(format!("{name}.json")), credential.to_json())?;
        let path = work_dir.join(format!("{name}.opening.json"));
        super::private_file::write_new(&path, &opening.to_json())?;
    }
    Ok(program)
}
