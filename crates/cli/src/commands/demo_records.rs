//! The demo network: a clinic with a clinician, a lab with a technician, a
//! research institute with a researcher, and a patient whose synthetic
//! records (generated here, FHIR R5 JSON) are in the vault. Seeded through
//! the node's own HTTP API, signed with key files under `demo-keys/`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use hygeia_identity::Keypair;
use serde_json::{json, Value};

use crate::client::{Client, RecordUpload};

pub const CLINIC: &str = "did:web:clinic.example";
pub const LAB: &str = "did:web:lab.example";
pub const RESEARCH: &str = "did:web:research.example";
/// The key-file name of the demo's licensing board (a did:key issuer).
pub const BOARD: &str = "licensing-board";

/// The demo's people, by key-file name.
pub struct DemoKeys {
    pub dir: PathBuf,
}

impl DemoKeys {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.key"))
    }

    /// Loads `name`'s key, creating it on first use.
    pub fn key(&self, name: &str) -> anyhow::Result<Keypair> {
        let path = self.path(name);
        if path.exists() {
            Ok(Keypair::read_key_file(&path)?)
        } else {
            std::fs::create_dir_all(&self.dir)?;
            let key = Keypair::generate();
            key.write_key_file(&path)?;
            Ok(key)
        }
    }

    pub fn did(&self, name: &str) -> anyhow::Result<String> {
        Ok(self.key(name)?.did().to_string())
    }
}

/// A seeded record, for the banner.
pub struct SeededRecord {
    pub id: String,
    pub category: &'static str,
    pub what: &'static str,
}

/// Synthetic FHIR R5 resources for the demo patient: values are made up.
fn synthetic_records(
    patient: &str,
) -> Vec<(
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Value,
)> {
    let subject = json!({"identifier": {"system": "urn:ietf:rfc:3986", "value": patient}});
    vec![
        (
            "lab",
            "Observation",
            "lab",
            "HbA1c 6.4 %",
            json!({
                "resourceType": "Observation", "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
                "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4", "display": "Hemoglobin A1c/Hemoglobin.total in Blood"}]},
                "subject": subject, "effectiveDateTime": "2026-11-02T08:30:00Z",
                "valueQuantity": {"value": 6.4, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}
            }),
        ),
        (
            "lab",
            "Observation",
            "lab",
            "LDL cholesterol 2.9 mmol/L",
            json!({
                "resourceType": "Observation", "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
                "code": {"coding": [{"system": "http://loinc.org", "code": "18262-6", "display": "Cholesterol in LDL [Moles/volume] in Serum or Plasma by Direct assay"}]},
                "subject": subject, "effectiveDateTime": "2026-11-02T08:30:00Z",
                "valueQuantity": {"value": 2.9, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"}
            }),
        ),
        (
            "patient",
            "Observation",
            "mental-health",
            "PHQ-9 score 6",
            json!({
                "resourceType": "Observation", "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "survey"}]}],
                "code": {"coding": [{"system": "http://loinc.org", "code": "44261-6", "display": "Patient Health Questionnaire 9 item (PHQ-9) total score"}]},
                "subject": subject, "effectiveDateTime": "2026-10-20T14:00:00Z", "valueInteger": 6
            }),
        ),
        (
            "patient",
            "DiagnosticReport",
            "imaging",
            "chest X-ray report",
            json!({
                "resourceType": "DiagnosticReport", "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD"}]}],
                "code": {"coding": [{"system": "http://loinc.org", "code": "36643-5", "display": "XR Chest 2 Views"}]},
                "subject": subject, "effectiveDateTime": "2026-09-14T10:15:00Z",
                "conclusion": "Synthetic report: no acute findings."
            }),
        ),
    ]
}

fn submit(client: &mut Client, tx_type: &str, body: Value) -> anyhow::Result<Value> {
    client
        .submit(tx_type, body)
        .with_context(|| format!("seeding the demo: {tx_type}"))
}

/// The id of what a submission created: its entry's leaf hash (hex), as
/// the node answered it. Shared by every demo seeder.
pub(super) fn leaf_hash(answer: &Value) -> anyhow::Result<String> {
    Ok(answer["leaf_hash"]
        .as_str()
        .context("the node gave no leaf hash")?
        .to_owned())
}

/// Seeds the demo network through the node at `url`. Only run on a fresh
/// node; returns the records seeded.
pub fn seed(url: &str, keys: &DemoKeys, work_dir: &Path) -> anyhow::Result<Vec<SeededRecord>> {
    let mut governance = Client::with_key(url, keys.key("governance")?);
    let orgs = [
        (CLINIC, "clinic", "clinic"),
        (LAB, "lab", "lab"),
        (RESEARCH, "research", "research"),
    ];
    for (org, kind, admin) in orgs {
        let admin = keys.did(&format!("{admin}-admin"))?;
        submit(
            &mut governance,
            "org.register",
            json!({"org": org, "admin": admin, "kind": kind}),
        )?;
    }
    let members = [
        (CLINIC, "clinic-admin", "clinician", "clinician"),
        (LAB, "lab-admin", "lab", "lab-technician"),
        (RESEARCH, "research-admin", "researcher", "researcher"),
    ];
    for (org, admin, member, role) in members {
        let mut admin = Client::with_key(url, keys.key(admin)?);
        submit(
            &mut admin,
            "org.member",
            json!({"org": org, "member": keys.did(member)?, "roles": [role], "jurisdiction": "FR", "status": "active"}),
        )?;
    }
    // Reads and uploads for treatment need a licence: a licensing board,
    // trusted for French licences, licenses the clinician and the lab
    // technician, who register their licences.
    super::licence::license(
        url,
        &keys.key("governance")?,
        &keys.key(BOARD)?,
        "FR",
        &[
            (&keys.key("clinician")?, "physician"),
            (&keys.key("lab")?, "lab-technician"),
        ],
    )
    .context("seeding the demo: licences")?;
    // The patient lets the lab write lab results for a year.
    let patient_did = keys.did("patient")?;
    let mut patient = Client::with_key(url, keys.key("patient")?);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    submit(
        &mut patient,
        "consent.grant",
        json!({"patient": patient_did, "grantee": LAB, "scope": {"categories": ["lab"]}, "actions": ["write"], "purpose": "TREAT", "not_before": now - 60, "not_after": now + 365 * 86_400}),
    )?;
    std::fs::create_dir_all(work_dir)?;
    let mut seeded = Vec::new();
    for (i, (author, resource_type, category, what, resource)) in
        synthetic_records(&patient_did).into_iter().enumerate()
    {
        let author = Client::with_key(url, keys.key(author)?);
        let file = work_dir.join(format!("record-{i}.json"));
        std::fs::write(&file, serde_json::to_vec_pretty(&resource)?)?;
        let upload = RecordUpload {
            patient: &patient_did,
            category,
            resource_type,
            media_type: "application/fhir+json",
            purpose: "TREAT",
        };
        let answer = author
            .upload_record(&upload, &file)
            .with_context(|| format!("seeding the demo record {what}"))?;
        std::fs::remove_file(&file).ok();
        seeded.push(SeededRecord {
            id: answer["record"].as_str().unwrap_or_default().to_owned(),
            category,
            what,
        });
    }
    care_story(url, keys, work_dir).context("seeding the demo: a second patient's care")?;
    research_story(url, keys).context("seeding the demo: a research eligibility answer")?;
    let (batches, adherence) =
        super::device::seed_demo(url, keys).context("seeding the demo: an attested wearable")?;
    for id in batches {
        seeded.push(SeededRecord {
            id,
            category: "device",
            what: "a day of wearable readings, each signed by the device",
        });
    }
    tracing::info!(rule = %adherence["rule"], met = %adherence["met"], missing = %adherence["missing"], "demo adherence rule evaluated");
    Ok(seeded)
}

/// A second patient (`patient-2`), so the dashboards have figures from the
/// start: the lab uploads an HbA1c result, the clinician asks for it and is
/// denied, the patient grants, and the clinician reads it (a consent
/// obtained, and a recent result read rather than the test repeated). The
/// demo patient's own records stay without a grant to the clinician, for a
/// newcomer's walkthrough.
fn care_story(url: &str, keys: &DemoKeys, work_dir: &Path) -> anyhow::Result<()> {
    let patient_did = keys.did("patient-2")?;
    let mut patient = Client::with_key(url, keys.key("patient-2")?);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    submit(
        &mut patient,
        "consent.grant",
        json!({"patient": patient_did, "grantee": LAB, "scope": {"categories": ["lab"]}, "actions": ["write"], "purpose": "TREAT", "not_before": now - 60, "not_after": now + 365 * 86_400}),
    )?;
    let (_, resource_type, category, _, resource) = synthetic_records(&patient_did)
        .into_iter()
        .next()
        .context("a synthetic lab record")?;
    let file = work_dir.join("record-patient-2.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&resource)?)?;
    let lab = Client::with_key(url, keys.key("lab")?);
    let upload = RecordUpload {
        patient: &patient_did,
        category,
        resource_type,
        media_type: "application/fhir+json",
        purpose: "TREAT",
    };
    let answer = lab.upload_record(&upload, &file)?;
    std::fs::remove_file(&file).ok();
    let record = answer["record"].as_str().unwrap_or_default().to_owned();
    let clinician = Client::with_key(url, keys.key("clinician")?);
    let read = format!("/v1/records/{record}?purpose=TREAT");
    let denied = clinician.get(&read, &[])?.status();
    anyhow::ensure!(
        denied.as_u16() == 403,
        "the clinician's read before consent answered {denied}"
    );
    let clinician_did = keys.did("clinician")?;
    submit(
        &mut patient,
        "consent.grant",
        json!({"patient": patient_did, "grantee": clinician_did, "scope": {"categories": ["lab"]}, "actions": ["read"], "purpose": "TREAT", "not_before": now - 60, "not_after": now + 30 * 86_400}),
    )?;
    let permitted = clinician.get(&read, &[])?.status();
    anyhow::ensure!(
        permitted.is_success(),
        "the clinician's read after consent answered {permitted}"
    );
    Ok(())
}

/// The demo study a patient answered: the researcher counts patients whose
/// HbA1c is in [6.5 %, 9.0 %); the demo patient, holding the lab's
/// eligibility credential (7.2 %), consents to research with the
/// researcher and answers with a zero-knowledge proof. Their wallet lists
/// it under "My research answers"; the researcher's tally counts one.
pub const DEMO_STUDY: &str = "hba1c-registry-2026";

fn research_story(url: &str, keys: &DemoKeys) -> anyhow::Result<()> {
    use hygeia_credentials::zk::hba1c::hba1c_claims;
    use hygeia_credentials::zk::{respond, CommittedAttributeCredential, Criteria, PatientSecret};
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let lab = keys.key("lab")?;
    let lab_did = lab.did().to_string();
    let researcher = Client::with_key(url, keys.key("researcher")?);
    let published = researcher.post_json(
        "/v1/research/studies",
        serde_json::to_vec(&json!({
            "study_id": DEMO_STUDY, "attribute": "hba1c-percent-x10", "loinc": "4548-4",
            "range": {"min_inclusive": 65, "max_exclusive": 90}, "accepted_issuers": [lab_did],
        }))?,
    )?;
    let published = crate::client::json_or_refusal(published)?;
    let criteria: Criteria =
        serde_json::from_value(published["criteria"].clone()).context("the node's criteria")?;
    let patient_did = keys.did("patient")?;
    let mut patient = Client::with_key(url, keys.key("patient")?);
    let researcher_did = keys.did("researcher")?;
    submit(
        &mut patient,
        "consent.grant",
        json!({"patient": patient_did, "grantee": researcher_did, "scope": {"categories": ["lab"]}, "actions": ["read"], "purpose": "HRESCH", "not_before": now as i64 - 60, "not_after": now as i64 + 180 * 86_400}),
    )?;
    let claims = hba1c_claims(&lab_did, 72, now - 60, now + 90 * 86_400, None);
    let (credential, opening) = CommittedAttributeCredential::issue(&lab, &claims)
        .map_err(|e| anyhow::anyhow!("issuing the demo credential: {e}"))?;
    let response = respond(&criteria, &credential, &opening, &PatientSecret::generate())
        .map_err(|e| anyhow::anyhow!("answering the demo study: {e}"))?;
    let answered = patient.post_json(
        &format!("/v1/research/studies/{DEMO_STUDY}/responses"),
        response.to_json().into_bytes(),
    )?;
    crate::client::json_or_refusal(answered)?;
    Ok(())
}
