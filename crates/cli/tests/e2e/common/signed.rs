//! Signed requests and transactions against a node, for record tests.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hygeia_credentials::credential_types::{
    ClinicianLicence, Credential, Issuance, VCT_CLINICIAN_LICENCE,
};
use hygeia_credentials::jws::{SigningKey, VerifyingKey};
use hygeia_identity::Keypair;
use hygeia_ledger::TxBuilder;
use reqwest::blocking::Response;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{client, NodeProcess, NETWORK};

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn did(key: &Keypair) -> String {
    key.did().to_string()
}

/// Signs and submits a transaction; returns (status, answer).
pub fn submit(node: &NodeProcess, key: &Keypair, tx_type: &str, body: Value) -> (u16, Value) {
    let raw = TxBuilder {
        network: NETWORK,
        tx_type,
        nonce: hygeia_auth::random_nonce(),
        body,
    }
    .sign(key);
    let leaf = hex::encode(hygeia_ledger::merkle::leaf_hash(&raw).0);
    let response = node.post_json("/v1/transactions", raw);
    let status = response.status().as_u16();
    let mut answer: Value = response.json().unwrap_or(Value::Null);
    answer["leaf_hash"] = json!(leaf);
    (status, answer)
}

/// The signature headers of a request, as `(name, value)` pairs.
pub fn signature_headers(
    key: &Keypair,
    method: &Method,
    path_and_query: &str,
    body: Option<&[u8]>,
) -> Vec<(&'static str, String)> {
    let digest = body.map(|b| <[u8; 32]>::from(Sha256::digest(b)));
    let signed = hygeia_auth::sign_request(
        key,
        method,
        path_and_query,
        digest,
        now(),
        &hygeia_auth::random_nonce(),
    )
    .unwrap();
    let mut headers = vec![
        ("signature-input", signed.signature_input),
        ("signature", signed.signature),
    ];
    if let Some(d) = signed.content_digest {
        headers.push(("content-digest", d));
    }
    headers
}

pub fn signed_get(node: &NodeProcess, key: &Keypair, path_and_query: &str) -> Response {
    let mut request = client().get(format!("{}{path_and_query}", node.url));
    for (name, value) in signature_headers(key, &Method::GET, path_and_query, None) {
        request = request.header(name, value);
    }
    request.send().unwrap()
}

/// The provenance signature an author puts on a record.
pub fn provenance(
    author: &Keypair,
    patient: &str,
    category: &str,
    resource_type: &str,
    media_type: &str,
    content: &[u8],
) -> String {
    let message = hygeia_node::api::records::provenance_message(
        patient,
        category,
        resource_type,
        media_type,
        &Sha256::digest(content).into(),
    );
    URL_SAFE_NO_PAD.encode(author.sign(&message).to_bytes())
}

/// Uploads a record as `author` for `patient`; returns the response.
pub fn upload(
    node: &NodeProcess,
    author: &Keypair,
    patient: &str,
    category: &str,
    content: &[u8],
) -> Response {
    let path = "/v1/records?purpose=TREAT";
    let mut request = client()
        .post(format!("{}{path}", node.url))
        .header("hygeia-patient", patient)
        .header("hygeia-category", category)
        .header("hygeia-resource-type", "Observation")
        .header("content-type", "application/fhir+json")
        .header(
            "hygeia-provenance",
            provenance(
                author,
                patient,
                category,
                "Observation",
                "application/fhir+json",
                content,
            ),
        )
        .body(content.to_vec());
    for (name, value) in signature_headers(author, &Method::POST, path, Some(content)) {
        request = request.header(name, value);
    }
    request.send().unwrap()
}

pub fn error_code(response: Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().unwrap_or(Value::Null);
    (
        status,
        body["error"]["code"].as_str().unwrap_or("").to_owned(),
    )
}

/// A network with a clinic, its clinician, a lab with a researcher, and a
/// patient with a lab result on the node.
pub struct Network {
    pub node: NodeProcess,
    pub governance: Keypair,
    pub clinic_admin: Keypair,
    pub clinician: Keypair,
    pub researcher: Keypair,
    pub patient: Keypair,
    pub other_patient: Keypair,
    pub record: String,
    /// The licensing board (a did:key) that licensed the clinician.
    pub board: Keypair,
    _dir: tempfile::TempDir,
}

impl Network {
    pub fn start(extra: &[&str]) -> Network {
        Self::start_prepared(extra, |_, _| {})
    }

    /// Like [`Network::start`], with `prepare` given the node's data
    /// directory and the patient's key before the node starts (to write
    /// files the node reads at start).
    pub fn start_prepared(
        extra: &[&str],
        prepare: impl FnOnce(&std::path::Path, &Keypair),
    ) -> Network {
        let dir = tempfile::tempdir().unwrap();
        let governance = Keypair::generate();
        let clinic_admin = Keypair::generate();
        let clinician = Keypair::generate();
        let researcher = Keypair::generate();
        let patient = Keypair::generate();
        let other_patient = Keypair::generate();
        let gov = did(&governance);
        let mut args = vec!["--governance", gov.as_str()];
        args.extend_from_slice(extra);
        let data_dir = dir.path().join("node");
        std::fs::create_dir_all(&data_dir).unwrap();
        prepare(&data_dir, &patient);
        let node = NodeProcess::start_with(&data_dir, &args);
        for (org, kind) in [
            ("did:web:clinic.example", "clinic"),
            ("did:web:lab.example", "lab"),
        ] {
            let (status, answer) = submit(
                &node,
                &governance,
                "org.register",
                json!({"org": org, "admin": did(&clinic_admin), "kind": kind}),
            );
            assert_eq!(status, 201, "{answer}");
        }
        let members = [
            ("did:web:clinic.example", &clinician, "clinician"),
            ("did:web:lab.example", &researcher, "researcher"),
        ];
        for (org, member, role) in members {
            let (status, answer) = submit(
                &node,
                &clinic_admin,
                "org.member",
                json!({"org": org, "member": did(member), "roles": [role], "jurisdiction": "FR", "status": "active"}),
            );
            assert_eq!(status, 201, "{answer}");
        }
        let board = Keypair::generate();
        trust_licence_issuer(&node, &governance, &did(&board), &["FR"]);
        let (status, answer) = register_licence(&node, &board, &clinician, "FR", None);
        assert_eq!(status, 201, "{answer}");
        let response = upload(
            &node,
            &patient,
            &did(&patient),
            "lab",
            br#"{"resourceType":"Observation"}"#,
        );
        assert_eq!(response.status().as_u16(), 201);
        let answer: Value = response.json().unwrap();
        let record = answer["record"].as_str().unwrap().to_owned();
        Network {
            node,
            governance,
            clinic_admin,
            clinician,
            researcher,
            patient,
            other_patient,
            record,
            board,
            _dir: dir,
        }
    }

    /// A grant body from the patient to `grantee` for lab reads.
    pub fn grant_body(&self, grantee: &Keypair) -> Value {
        let now = now() as i64;
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

    pub fn size(&self) -> u64 {
        self.node.tree_size()
    }

    /// The access events about the patient, newest first (break-glass first).
    pub fn feed(&self) -> Value {
        let path = format!("/v1/audit?patient={}", did(&self.patient));
        let response = signed_get(&self.node, &self.patient, &path);
        assert_eq!(response.status().as_u16(), 200);
        response.json().unwrap()
    }
}

pub fn node_did(net: &Network) -> String {
    let info: Value = net.node.get("/v1/node").json().unwrap();
    info["node_did"].as_str().unwrap().to_owned()
}

/// A bearer token for `key` with purpose `purpose`.
pub fn login(net: &Network, key: &Keypair, purpose: &str) -> String {
    let assertion = hygeia_auth::token::client_assertion(key, &node_did(net), now() as i64, 120);
    let response = client()
        .post(format!("{}/auth/token", net.node.url))
        .form(&[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion.as_str()),
            ("purpose_of_use", purpose),
        ])
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let answer: Value = response.json().unwrap();
    answer["access_token"].as_str().unwrap().to_owned()
}

/// Puts `issuer` on the trust list for clinician licences of `countries`.
pub fn trust_licence_issuer(
    node: &NodeProcess,
    governance: &Keypair,
    issuer: &str,
    countries: &[&str],
) {
    let (status, answer) = submit(
        node,
        governance,
        "trust.issuer",
        json!({"issuer": issuer, "credential_type": VCT_CLINICIAN_LICENCE, "jurisdictions": countries, "op": "add"}),
    );
    assert_eq!(status, 201, "{answer}");
}

/// A clinician licence SD-JWT VC from `board` for `clinician`, licensed in
/// `country`, bound to the clinician's key.
pub fn licence(
    board: &Keypair,
    clinician: &Keypair,
    country: &str,
    status: Option<Value>,
) -> String {
    let now = now() as i64;
    let credential = Credential::ClinicianLicence(ClinicianLicence {
        subject: clinician.did(),
        licence_number: Some("RPPS-10101010101".to_owned()),
        profession: "physician".to_owned(),
        specialty: Some("cardiology".to_owned()),
        jurisdiction: country.to_owned(),
    });
    let issuance = Issuance {
        issuer: did(board),
        issued_at: now - 60,
        expires_at: Some(now + 365 * 86_400),
        holder_key: VerifyingKey::from(clinician.public_key()),
        status,
        key_id: None,
    };
    let signer = SigningKey::from(Keypair::from_seed(&board.as_dalek().to_bytes()));
    credential.issue(&issuance, &signer).unwrap()
}

/// The presentation `licence.register` takes, built as `hygeia licence
/// register` builds it (nothing extra disclosed, a key-binding JWT for the
/// node with the holder's DID as nonce). The issuer must be a did:key.
pub fn registration(node: &NodeProcess, issued: &str, holder: &Keypair) -> String {
    // A licence's key binding is addressed to the network (its id).
    let network_id = node.get("/v1/node").json::<Value>().unwrap()["network_id"]
        .as_str()
        .unwrap()
        .to_owned();
    hygeia_cli::licensing::registration(
        issued,
        holder,
        &network_id,
        now() as i64,
        &hygeia_cli::licensing::did_key_issuer_key,
    )
    .unwrap()
}

/// Issues a licence and registers it as the clinician.
pub fn register_licence(
    node: &NodeProcess,
    board: &Keypair,
    clinician: &Keypair,
    country: &str,
    status: Option<Value>,
) -> (u16, Value) {
    let issued = licence(board, clinician, country, status);
    let presentation = registration(node, &issued, clinician);
    submit(
        node,
        clinician,
        "licence.register",
        json!({"presentation": presentation}),
    )
}
