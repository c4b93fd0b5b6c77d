//! The demo's oncology trial (docs/trials.md): a sponsor registers a study
//! (protocol 1.0) whose ethics committee and site accreditor the
//! governance trusts; the committee approves; the clinic is activated as
//! the site with its accreditation and the study recruits. Five
//! participants consent with study-only keys and stand at different
//! milestones; the sponsor escrows the site's fees per milestone. Then an
//! amendment (2.0, re-consent required) is approved: one subject
//! re-consents and its next visit pays the site; another has not yet, so
//! its next milestone waits. That first subject's wearable is bound to the
//! study with its study key: its signed readings meet the sponsor's
//! adherence rule, which releases the stipend escrowed to the study key.

use std::path::Path;

use anyhow::Context;
use hygeia_credentials::credential_types::{
    Credential, Issuance, TrialSiteAccreditation, VCT_TRIAL_SITE_ACCREDITATION,
};
use hygeia_credentials::jws::{SigningKey, VerifyingKey};
use hygeia_credentials::sd_jwt::SdJwt;
use hygeia_identity::Keypair;
use hygeia_state::trials::{milestone_id, VCT_ETHICS_COMMITTEE};
use serde_json::{json, Value};

use super::demo_records::{leaf_hash, DemoKeys, CLINIC};
use crate::client::Client;

/// The trial's settlement unit.
pub const UNIT: &str = "eur-cents";

fn submit(client: &mut Client, tx_type: &str, body: Value) -> anyhow::Result<Value> {
    client
        .submit(tx_type, body)
        .with_context(|| format!("seeding the demo trial: {tx_type}"))
}

/// The subject's HRESCH read grant to its site, for a year, that backs
/// its consent (the sponsor reads no values); its id.
fn research_grant(subject: &mut Client, did: &str, site: &str, now: i64) -> anyhow::Result<String> {
    let granted = submit(
        subject,
        "consent.grant",
        json!({"patient": did, "grantee": site, "scope": {"categories": ["device", "lab"]},
               "actions": ["read"], "purpose": "HRESCH",
               "not_before": now - 60, "not_after": now + 365 * 86_400}),
    )?;
    leaf_hash(&granted)
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

fn copy(key: &Keypair) -> Keypair {
    Keypair::from_seed(&key.as_dalek().to_bytes())
}

/// The clinic's accreditation for `study`, issued by `accreditor` to the
/// clinic's admin key and presented to the network with the study as
/// nonce.
fn accreditation(
    accreditor: &Keypair,
    admin: &Keypair,
    study: &str,
    audience: &str,
    now: i64,
) -> anyhow::Result<String> {
    let issuance = Issuance {
        issuer: accreditor.did().to_string(),
        issued_at: now - 86_400,
        expires_at: Some(now + 2 * 365 * 86_400),
        holder_key: VerifyingKey::from(admin.public_key()),
        status: None,
        key_id: Some(accreditor.did().verification_method()),
    };
    let issued = Credential::TrialSiteAccreditation(TrialSiteAccreditation {
        site: CLINIC.into(),
        study_id: study.into(),
        scope: vec!["enrolment".into(), "oncology".into()],
    })
    .issue(&issuance, &SigningKey::from(copy(accreditor)))
    .map_err(|e| anyhow::anyhow!("the demo accreditation: {e}"))?;
    let key = VerifyingKey::from(accreditor.public_key());
    SdJwt::parse(&issued, &|_: &str, _: &_| Some(key.clone()))
        .map_err(|e| anyhow::anyhow!("the demo accreditation: {e}"))?
        .present_with_key_binding(&[], audience, study, now, &SigningKey::from(copy(admin)))
        .map_err(|e| anyhow::anyhow!("the demo accreditation: {e}"))
}

/// Seeds the trial through the node at `url`; returns the study's id.
pub fn seed(url: &str, keys: &DemoKeys, work_dir: &Path) -> anyhow::Result<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let audience = super::node_info(url)?["network_id"]
        .as_str()
        .context("the node gave no network_id")?
        .to_owned();
    let mut governance = Client::with_key(url, keys.key("governance")?);
    let (sponsor_key, committee_key, accreditor_key) = (
        keys.key("trial-sponsor")?,
        keys.key("ethics-committee")?,
        keys.key("site-accreditor")?,
    );
    let sponsor_did = sponsor_key.did().to_string();
    for (issuer, vct) in [
        (&committee_key, VCT_ETHICS_COMMITTEE),
        (&accreditor_key, VCT_TRIAL_SITE_ACCREDITATION),
    ] {
        submit(
            &mut governance,
            "trust.issuer",
            json!({"issuer": issuer.did().to_string(), "credential_type": vct, "jurisdictions": [], "op": "add"}),
        )?;
    }
    submit(
        &mut governance,
        "unit.register",
        json!({"unit": UNIT, "issuer": sponsor_did}),
    )?;
    let mut sponsor = Client::with_key(url, copy(&sponsor_key));
    let mut committee = Client::with_key(url, copy(&committee_key));
    let admin = keys.key("clinic-admin")?;
    let mut site = Client::with_key(url, copy(&admin));
    submit(
        &mut sponsor,
        "unit.mint",
        json!({"unit": UNIT, "to": sponsor_did, "amount": 5_000_000}),
    )?;
    // The protocol documents stay here; the ledger gets their SHA-256.
    std::fs::create_dir_all(work_dir)?;
    let v1 = b"Demo oncology protocol, version 1.0 (synthetic).\n".to_vec();
    let v2 = b"Demo oncology protocol, version 2.0 (synthetic): an added imaging visit.\n".to_vec();
    std::fs::write(work_dir.join("oncology-protocol-1.0.txt"), &v1)?;
    std::fs::write(work_dir.join("oncology-protocol-2.0.txt"), &v2)?;
    let (p1, p2) = (sha256_hex(&v1), sha256_hex(&v2));
    let registered = submit(
        &mut sponsor,
        "study.register",
        json!({"protocol": p1, "version": "1.0", "committee": committee_key.did().to_string()}),
    )?;
    let study = leaf_hash(&registered)?;
    submit(
        &mut committee,
        "ethics.approve",
        json!({"study": study, "version": "1.0", "protocol": p1}),
    )?;
    let presentation = accreditation(&accreditor_key, &admin, &study, &audience, now)?;
    submit(
        &mut sponsor,
        "site.activate",
        json!({"study": study, "site": CLINIC, "presentation": presentation}),
    )?;
    submit(
        &mut sponsor,
        "study.progress",
        json!({"study": study, "state": "recruiting"}),
    )?;
    // Five participants, each with a key for this study alone, at
    // different milestones.
    let plans: [&[&str]; 5] = [
        &["screened", "enrolled", "visit-1", "visit-2"],
        &["screened", "enrolled", "visit-1"],
        &["screened"],
        &["screen-failed"],
        &["screened", "enrolled"],
    ];
    let mut subjects = Vec::new();
    for (i, plan) in plans.iter().enumerate() {
        let key = keys.key(&format!("trial-subject-{}", i + 1))?;
        let did = key.did().to_string();
        let mut subject = Client::with_key(url, copy(&key));
        let grant = research_grant(&mut subject, &did, CLINIC, now)?;
        submit(
            &mut subject,
            "econsent.give",
            json!({"study": study, "site": CLINIC, "version": "1.0", "protocol": p1,
                   "document": sha256_hex(format!("consent {i} 1.0").as_bytes()),
                   "grants": [grant]}),
        )?;
        // The sponsor escrows the site's fee for each planned milestone,
        // and for the next visit.
        for milestone in plan.iter().copied().chain(["visit-3"]) {
            let fee = if milestone == "enrolled" {
                50_000
            } else {
                20_000
            };
            let id = milestone_id(
                &study,
                &did,
                &milestone.parse().map_err(anyhow::Error::msg)?,
            );
            submit(
                &mut sponsor,
                "escrow.open",
                json!({"unit": UNIT, "amount": fee, "beneficiary": CLINIC,
                       "condition": {"kind": "milestone", "id": id}, "refund_after": now + 365 * 86_400}),
            )?;
        }
        for milestone in plan.iter() {
            submit(
                &mut site,
                "subject.milestone",
                json!({"study": study, "subject": did, "milestone": milestone}),
            )?;
        }
        subjects.push((subject, did));
    }
    // A minor deviation at subject 2's first visit.
    submit(
        &mut site,
        "subject.deviation",
        json!({"study": study, "subject": subjects[1].1, "severity": "minor",
               "report": sha256_hex(b"visit window exceeded by one day")}),
    )?;
    // Subject 5 withdraws.
    submit(
        &mut subjects[4].0,
        "econsent.withdraw",
        json!({"study": study}),
    )?;
    // The amendment, approved with re-consent: subject 1 re-consents and
    // visit 3 pays the site; subject 2 has not re-consented yet.
    submit(
        &mut sponsor,
        "study.amend",
        json!({"study": study, "protocol": p2, "version": "2.0", "reconsent": true}),
    )?;
    submit(
        &mut committee,
        "ethics.approve",
        json!({"study": study, "version": "2.0", "protocol": p2}),
    )?;
    // The approval revoked the grants behind the 1.0 consents; subject 1's
    // new consent names a new one.
    let did = subjects[0].1.clone();
    let grant = research_grant(&mut subjects[0].0, &did, CLINIC, now)?;
    submit(
        &mut subjects[0].0,
        "econsent.give",
        json!({"study": study, "site": CLINIC, "version": "2.0", "protocol": p2,
               "document": sha256_hex(b"consent 0 2.0"), "grants": [grant]}),
    )?;
    submit(
        &mut site,
        "subject.milestone",
        json!({"study": study, "subject": did, "milestone": "visit-3"}),
    )?;
    // Its primary endpoint assessed at that visit: the report stays with
    // the site, its hash is the event.
    submit(
        &mut site,
        "subject.endpoint",
        json!({"study": study, "subject": did, "endpoint": "primary",
               "report": sha256_hex(b"primary endpoint assessment, subject 1, visit 3 (synthetic)")}),
    )?;
    seed_wearable(url, keys, &study, &mut sponsor, now)?;
    Ok(study)
}

/// Subject 1's wearable, bound to the study with its study key (the
/// manufacturer `device-maker` is trusted by the records' seeding, which
/// runs first): three batches of signed glucose readings since the
/// ledger's clock (the trial window opened at the consent, at that clock
/// or before), the sponsor's rule for the study (a reading on every day
/// since), the stipend escrowed to the study key, and the evaluation that
/// meets the rule and releases it.
fn seed_wearable(
    url: &str,
    keys: &DemoKeys,
    study: &str,
    sponsor: &mut Client,
    now: i64,
) -> anyhow::Result<()> {
    use hygeia_state::devices::batch::example_observation;
    use hygeia_state::devices::{day_of, milestone_id as adherence_milestone, ReadingKind};
    let subject = keys.key("trial-subject-1")?;
    let maker = keys.key("device-maker")?;
    let wearable = keys.key("trial-wearable")?;
    let clock = sponsor.get_json("/v1/clock")?["clock"]
        .as_i64()
        .context("the node gave no clock")?;
    let issued = super::device::issue_attestation(&maker, &wearable, now)?;
    let today = now / 86_400;
    super::device::attest(
        url,
        &subject,
        &wearable,
        &issued,
        ((today - 1) * 86_400, (today + 90) * 86_400),
        Some(study),
    )
    .context("seeding the demo trial: the wearable")?;
    let device = wearable.did().to_string();
    let times: Vec<i64> = (1..=6).map(|k| clock + 30 * k).collect();
    for (i, pair) in times.chunks(2).enumerate() {
        let readings: Vec<Value> = pair
            .iter()
            .enumerate()
            .map(|(j, &t)| {
                let value = 104.0 + (i * 7 + j * 11) as f64;
                example_observation(&device, ReadingKind::Glucose, t, value)
            })
            .collect();
        super::device::send(url, &wearable, &readings)
            .with_context(|| format!("seeding the demo trial: the wearable's batch {}", i + 1))?;
    }
    let rule = sha256_hex(
        b"demo oncology protocol 2.0: a wearable glucose reading on every day since consent",
    );
    submit(
        sponsor,
        "adherence.rule",
        json!({"rule": rule, "kind": "glucose", "start_day": day_of(times[0]),
               "end_day": day_of(times[5]), "min_percent": 100, "study": study}),
    )?;
    let subject_did = subject.did().to_string();
    let id = adherence_milestone(&rule, &sponsor.did(), &subject_did);
    submit(
        sponsor,
        "escrow.open",
        json!({"unit": UNIT, "amount": 10_000, "beneficiary": subject_did,
               "condition": {"kind": "milestone", "id": id}, "refund_after": now + 365 * 86_400}),
    )?;
    submit(
        sponsor,
        "adherence.evaluate",
        json!({"rule": rule, "subject": subject_did}),
    )?;
    Ok(())
}
