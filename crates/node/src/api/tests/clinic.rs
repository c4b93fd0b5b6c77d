//! A records network on a node in process, for the behaviour tests that
//! once started a node process each (the CLI's end-to-end tests): the cast
//! of [`Net::network`] (governance, a clinic with its admin and a licensed
//! clinician, a patient), a lab of the same admin with a researcher,
//! another patient, and one lab result the patient uploaded.

use axum::http::Method;
use hygeia_identity::Keypair;
use serde_json::{json, Value};

use super::{did, now, Answer, Cast, Net};
use crate::NodeConfig;

/// The lab of the network, where the researcher works.
pub const LAB: &str = "did:web:lab.example";

pub struct Clinic {
    pub net: Net,
    pub governance: Keypair,
    /// Admin of both the cast's clinic and [`LAB`].
    pub clinic_admin: Keypair,
    /// A licensed, active clinician of the cast's clinic.
    pub clinician: Keypair,
    /// An active researcher of [`LAB`] (no licence).
    pub researcher: Keypair,
    pub patient: Keypair,
    /// A patient with nothing on the node.
    pub other_patient: Keypair,
    /// The licensing board on the trust list for `FR`.
    pub board: Keypair,
    /// The commitment of the patient's lab result.
    pub record: String,
}

impl Clinic {
    pub async fn start() -> Clinic {
        Clinic::with_config(|_| {}).await
    }

    pub async fn with_config(change: impl FnOnce(&mut NodeConfig)) -> Clinic {
        let (net, cast) = Net::network_with(change).await;
        let Cast {
            governance,
            admin,
            board,
            clinician,
            patient,
        } = cast;
        let researcher = Keypair::generate();
        net.submit_ok(
            &governance,
            "org.register",
            json!({"org": LAB, "admin": did(&admin), "kind": "lab"}),
        )
        .await;
        net.submit_ok(
            &admin,
            "org.member",
            json!({"org": LAB, "member": did(&researcher), "roles": ["researcher"], "jurisdiction": "FR", "status": "active"}),
        )
        .await;
        let upload = net
            .upload(
                &patient,
                &did(&patient),
                "lab",
                br#"{"resourceType":"Observation"}"#,
            )
            .await;
        assert_eq!(upload.status, 201, "{}", upload.text());
        let record = upload.json()["record"].as_str().unwrap().to_owned();
        Clinic {
            net,
            governance,
            clinic_admin: admin,
            clinician,
            researcher,
            patient,
            other_patient: Keypair::generate(),
            board,
            record,
        }
    }

    /// A grant body from the patient to `grantee` for lab reads, for
    /// treatment, for 30 days.
    pub fn grant_body(&self, grantee: &Keypair) -> Value {
        let now = now();
        json!({
            "patient": did(&self.patient),
            "grantee": did(grantee),
            "scope": {"categories": ["lab"]},
            "actions": ["read"],
            "purpose": "TREAT",
            "not_before": now - 60,
            "not_after": now + 30 * 86_400,
        })
    }

    /// Grants `grantee` [`Clinic::grant_body`]; the grant's id.
    pub async fn grant_to(&self, grantee: &Keypair) -> String {
        let answer = self
            .net
            .submit_ok(&self.patient, "consent.grant", self.grant_body(grantee))
            .await;
        answer.json()["leaf_hash"].as_str().unwrap().to_owned()
    }

    pub fn size(&self) -> u64 {
        self.net.size()
    }

    /// The patient's FHIR chart: `Patient/p1` (with an address), an
    /// immunization and an HbA1c result, written with the patient's own
    /// token (purpose TREAT), which is returned.
    pub async fn fhir_chart(&self) -> String {
        let token = self.net.token(&self.patient, "TREAT", None).await;
        let mut patient =
            super::patient_resource("p1", &self.patient, "Anyperson", "1951-01-20", "male");
        patient["name"][0]["given"] = json!(["John", "B."]);
        patient["address"] = json!([{ "city": "Nowhere" }]);
        let put = self
            .net
            .fhir(&token, Method::PUT, "/fhir/Patient/p1", Some(&patient))
            .await;
        assert_eq!(put.status, 201, "{}", put.text());
        for (path, resource) in [
            ("/fhir/Immunization", super::immunization("p1")),
            ("/fhir/Observation", super::observation("p1", "4548-4", 6.1)),
        ] {
            let created = self
                .net
                .fhir(&token, Method::POST, path, Some(&resource))
                .await;
            assert_eq!(created.status, 201, "{path}: {}", created.text());
        }
        token
    }

    /// How many records the patient's own list shows.
    pub async fn records_listed(&self) -> usize {
        let path = format!("/v1/records?patient={}", did(&self.patient));
        let list = self.net.signed_get(&self.patient, &path).await.json();
        list["records"].as_array().map_or(0, Vec::len)
    }

    /// The access events about the patient, newest first (break-glass first).
    pub async fn feed(&self) -> Value {
        let path = format!("/v1/audit?patient={}", did(&self.patient));
        let answer = self.net.signed_get(&self.patient, &path).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        answer.json()
    }
}

impl Answer {
    /// `(status, error code)`, the code empty where there is none.
    pub fn refusal(&self) -> (u16, String) {
        (self.status, self.code())
    }
}
