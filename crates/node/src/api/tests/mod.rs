//! Behaviour tests of the HTTP API, in process: a node in a temporary
//! directory and its router, driven as clients drive it (tower `oneshot`,
//! no sockets), from the attacker's side as much as the user's.

mod clinic;
mod connections;
mod consent;
mod credentials;
mod datasets;
mod devices;
mod economy;
mod exhaustion;
mod fhir;
mod health_cards;
mod network;
mod records;
mod rejections;
mod replication;
mod research;
mod scopes;
mod search_oracle;
mod smart;
mod studies;
mod submissions;
mod timing;
mod trials;
mod witness;
mod writes;

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, Method, Request};
use axum::Router;
use hygeia_identity::Keypair;
use hygeia_ledger::TxBuilder;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::node::Node;
use crate::NodeConfig;

pub const NETWORK: &str = "test.example/api";
pub const FHIR_JSON: &str = "application/fhir+json";

/// A node and the keys of a small network: a governance key, and a patient
/// with a Patient resource and a lab result written through FHIR.
pub struct Net {
    pub node: Arc<Node>,
    pub app: Router,
    pub governance: Keypair,
    _dir: tempfile::TempDir,
}

/// The cast of `hygeia_state::testing` on a node: see [`Net::network`].
pub use hygeia_state::testing::{Cast, CLINIC};

/// An answer: status, headers and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| json!({ "raw": String::from_utf8_lossy(&self.body).into_owned() }))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first issue code of an OperationOutcome.
    pub fn issue(&self) -> String {
        self.json()["issue"][0]["code"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    /// The code of a `{"error": {"code"}}` answer.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }
}

pub fn did(key: &Keypair) -> String {
    key.did().to_string()
}

/// The RFC 9421 signature headers of a request by `key`, as `(name,
/// value)` pairs (with `content-digest` when there is a body).
pub fn signature_headers(
    key: &Keypair,
    method: &Method,
    path_and_query: &str,
    body: Option<&[u8]>,
) -> Vec<(&'static str, String)> {
    use sha2::Digest;
    let digest = body.map(|b| <[u8; 32]>::from(sha2::Sha256::digest(b)));
    let signed = hygeia_auth::sign_request(
        key,
        method,
        path_and_query,
        digest,
        now() as u64,
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

/// The provenance signature an author puts on a record.
pub fn provenance(
    author: &Keypair,
    patient: &str,
    category: &str,
    resource_type: &str,
    media_type: &str,
    content: &[u8],
) -> String {
    use base64::Engine;
    use sha2::Digest;
    let message = crate::api::records::provenance_message(
        patient,
        category,
        resource_type,
        media_type,
        &sha2::Sha256::digest(content).into(),
    );
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(author.sign(&message).to_bytes())
}

/// A record upload to `path` without its body and signature: the record
/// headers and the author's provenance signature over `signed_content`.
pub fn upload_request(
    author: &Keypair,
    patient: &str,
    category: &str,
    signed_content: &[u8],
    path: &str,
) -> axum::http::request::Builder {
    let media_type = "application/fhir+json";
    Request::post(path)
        .header("hygeia-patient", patient)
        .header("hygeia-category", category)
        .header("hygeia-resource-type", "Observation")
        .header(header::CONTENT_TYPE, media_type)
        .header(
            "hygeia-provenance",
            provenance(
                author,
                patient,
                category,
                "Observation",
                media_type,
                signed_content,
            ),
        )
}

pub fn now() -> i64 {
    crate::node::unix_now() as i64
}

impl Net {
    pub fn start() -> Net {
        Net::with_config(|_| {})
    }

    /// A node with a governance key, an organization ([`CLINIC`]) and its
    /// admin, a licensed clinician member of it and a patient, all set up
    /// through the router: the state crate's one-line network
    /// (`hygeia_state::testing`), over HTTP.
    pub async fn network() -> (Net, Cast) {
        Net::network_with(|_| {}).await
    }

    /// [`Net::network`] on a node whose configuration `change` adjusts.
    pub async fn network_with(change: impl FnOnce(&mut NodeConfig)) -> (Net, Cast) {
        let cast = Cast::new();
        let net = Net::with_governance(hygeia_state::testing::copy(&cast.governance), change);
        // A licence's key binding is addressed to the network (the id of
        // its genesis entry), not to one node.
        let network_id = net
            .node
            .state
            .read()
            .state
            .network
            .id()
            .unwrap_or_default()
            .to_owned();
        for step in cast.setup(&network_id, now()) {
            net.submit_ok(step.signer, step.tx_type, step.body).await;
        }
        (net, cast)
    }

    pub fn with_config(change: impl FnOnce(&mut NodeConfig)) -> Net {
        Net::with_governance(Keypair::generate(), change)
    }

    fn with_governance(governance: Keypair, change: impl FnOnce(&mut NodeConfig)) -> Net {
        let dir = tempfile::tempdir().unwrap();
        let mut config = NodeConfig::new(
            dir.path().join("node"),
            "127.0.0.1:0".parse().unwrap(),
            NETWORK.to_owned(),
        );
        config.governance = Some(did(&governance));
        change(&mut config);
        let node = Arc::new(Node::open(config).unwrap());
        let app = super::router(node.clone());
        Net {
            node,
            app,
            governance,
            _dir: dir,
        }
    }

    /// Stops the node and opens it again from its data directory, as a
    /// restart does (in process: the same files, a fresh `Node`).
    pub fn restart(self) -> Net {
        let Net {
            node,
            app,
            governance,
            _dir,
        } = self;
        let config = node.config.clone();
        drop(app);
        let node = Arc::into_inner(node).expect("no request holds the node");
        drop(node);
        let node = Arc::new(Node::open(config).expect("the node opens again"));
        Net {
            app: super::router(node.clone()),
            node,
            governance,
            _dir,
        }
    }

    pub async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        Answer {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(Request::get(path).body(Body::empty()).unwrap())
            .await
    }

    /// The log's size.
    pub fn size(&self) -> u64 {
        self.node.sequencer.latest_checkpoint().size
    }

    /// Signs and submits a transaction.
    pub async fn submit(&self, key: &Keypair, tx_type: &str, body: Value) -> Answer {
        let raw = TxBuilder {
            network: NETWORK,
            tx_type,
            nonce: hygeia_auth::random_nonce(),
            body,
        }
        .sign(key);
        self.send(
            Request::post("/v1/transactions")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(raw))
                .unwrap(),
        )
        .await
    }

    /// Submits a transaction that must be refused with `status` and
    /// `code` and a message, and checks the log did not grow.
    pub async fn refused_tx(
        &self,
        key: &Keypair,
        tx_type: &str,
        body: Value,
        status: u16,
        code: &str,
    ) {
        let before = self.size();
        let answer = self.submit(key, tx_type, body).await;
        assert_eq!(answer.status, status, "{}", answer.text());
        assert_eq!(answer.code(), code, "{}", answer.text());
        assert!(!answer.json()["error"]["message"]
            .as_str()
            .unwrap_or("")
            .is_empty());
        assert_eq!(self.size(), before, "a refused transaction changed the log");
    }

    /// Submits and expects 201.
    pub async fn submit_ok(&self, key: &Keypair, tx_type: &str, body: Value) -> Answer {
        let answer = self.submit(key, tx_type, body).await;
        assert_eq!(answer.status, 201, "{tx_type}: {}", answer.text());
        answer
    }

    /// Asks for a bearer token; the raw answer.
    pub async fn token_request(&self, key: &Keypair, extra: &[(&str, &str)]) -> Answer {
        let assertion = hygeia_auth::token::client_assertion(key, &self.node.node_did, now(), 120);
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "client_credentials")
            .append_pair(
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            )
            .append_pair("client_assertion", &assertion);
        for (name, value) in extra {
            form.append_pair(name, value);
        }
        self.send(
            Request::post("/auth/token")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(form.finish()))
                .unwrap(),
        )
        .await
    }

    /// A bearer token for `key` with `purpose` (and `scope`, if given).
    pub async fn token(&self, key: &Keypair, purpose: &str, scope: Option<&str>) -> String {
        let mut extra = vec![("purpose_of_use", purpose)];
        if let Some(scope) = scope {
            extra.push(("scope", scope));
        }
        let answer = self.token_request(key, &extra).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        answer.json()["access_token"].as_str().unwrap().to_owned()
    }

    /// A FHIR request with a bearer token.
    pub async fn fhir(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Answer {
        self.fhir_with(token, method, path, body, &[]).await
    }

    pub async fn fhir_with(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = Request::builder()
            .method(method)
            .uri(path.replace('|', "%7C"))
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let body = match body {
            Some(body) => {
                request = request.header(header::CONTENT_TYPE, FHIR_JSON);
                Body::from(serde_json::to_vec(body).unwrap())
            }
            None => Body::empty(),
        };
        self.send(request.body(body).unwrap()).await
    }

    /// A request signed by `key` (RFC 9421), with a JSON body if given.
    pub async fn signed(
        &self,
        key: &Keypair,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Answer {
        let mut request = Request::builder().method(method.clone()).uri(path);
        for (name, value) in signature_headers(key, &method, path, body.as_deref()) {
            request = request.header(name, value);
        }
        let body = match body {
            Some(body) => {
                request = request
                    .header(header::CONTENT_TYPE, "application/json")
                    .header(header::CONTENT_LENGTH, body.len());
                Body::from(body)
            }
            None => Body::empty(),
        };
        self.send(request.body(body).unwrap()).await
    }

    /// A GET signed by `key`.
    pub async fn signed_get(&self, key: &Keypair, path: &str) -> Answer {
        self.signed(key, Method::GET, path, None).await
    }

    /// Uploads `content` (an Observation) as `author` for `patient` in
    /// `category`, with the author's provenance signature; the raw answer.
    pub async fn upload(
        &self,
        author: &Keypair,
        patient: &str,
        category: &str,
        content: &[u8],
    ) -> Answer {
        let path = "/v1/records?purpose=TREAT";
        let mut request = upload_request(author, patient, category, content, path)
            .header(header::CONTENT_LENGTH, content.len());
        for (name, value) in signature_headers(author, &Method::POST, path, Some(content)) {
            request = request.header(name, value);
        }
        self.send(request.body(Body::from(content.to_vec())).unwrap())
            .await
    }

    /// Registers `org` with `admin`, and `member` in it with `role`.
    pub async fn member(&self, org: &str, admin: &Keypair, member: &Keypair, role: &str) {
        self.submit_ok(
            &self.governance,
            "org.register",
            json!({"org": org, "admin": did(admin), "kind": "clinic"}),
        )
        .await;
        self.submit_ok(
            admin,
            "org.member",
            json!({"org": org, "member": did(member), "roles": [role], "jurisdiction": "FR", "status": "active"}),
        )
        .await;
    }

    /// A grant from `patient` to `grantee` of `actions` on `scope` for
    /// `purpose`, valid for a day.
    pub async fn grant(
        &self,
        patient: &Keypair,
        grantee: &Keypair,
        scope: Value,
        actions: Value,
        purpose: &str,
    ) {
        let now = now();
        self.submit_ok(
            patient,
            "consent.grant",
            json!({
                "patient": did(patient), "grantee": did(grantee), "scope": scope,
                "actions": actions, "purpose": purpose,
                "not_before": now - 60, "not_after": now + 86_400,
            }),
        )
        .await;
    }
}

/// A patient who wrote, through FHIR, a Patient resource (`Patient/<id>`)
/// and a lab result.
pub struct Patient {
    pub key: Keypair,
    pub token: String,
    pub observation: String,
}

pub fn patient_resource(id: &str, key: &Keypair, family: &str, birth: &str, gender: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "id": id,
        "identifier": [{ "system": "urn:ietf:rfc:3986", "value": did(key) }],
        "name": [{ "family": family, "given": ["Ada"] }],
        "gender": gender,
        "birthDate": birth,
    })
}

pub fn observation(patient_id: &str, code: &str, value: f64) -> Value {
    json!({
        "resourceType": "Observation",
        "status": "final",
        "category": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory" }] }],
        "code": { "coding": [{ "system": "http://loinc.org", "code": code }] },
        "subject": { "reference": format!("Patient/{patient_id}") },
        "effectiveDateTime": "2025-03-04T09:30:00Z",
        "valueQuantity": { "value": value, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%" },
    })
}

/// A completed COVID-19 vaccination (CVX 207) of `Patient/<patient_id>`,
/// with a lot number and a free-text note.
pub fn immunization(patient_id: &str) -> Value {
    json!({
        "resourceType": "Immunization",
        "status": "completed",
        "vaccineCode": { "coding": [{ "system": "http://hl7.org/fhir/sid/cvx", "code": "207" }] },
        "patient": { "reference": format!("Patient/{patient_id}") },
        "occurrenceDateTime": "2021-01-01",
        "lotNumber": "0000001",
        "note": [{ "text": "a private remark that must not reach the card" }],
    })
}

impl Net {
    /// A new patient `Patient/<id>` (family name, birth date, gender) with
    /// one HbA1c result.
    pub async fn patient(&self, id: &str, family: &str, birth: &str, gender: &str) -> Patient {
        let key = Keypair::generate();
        let token = self.token(&key, "PATRQT", None).await;
        let put = self
            .fhir(
                &token,
                Method::PUT,
                &format!("/fhir/Patient/{id}"),
                Some(&patient_resource(id, &key, family, birth, gender)),
            )
            .await;
        assert_eq!(put.status, 201, "{}", put.text());
        let obs = self
            .fhir(
                &token,
                Method::POST,
                "/fhir/Observation",
                Some(&observation(id, "4548-4", 6.1)),
            )
            .await;
        assert_eq!(obs.status, 201, "{}", obs.text());
        let observation = obs.json()["id"].as_str().unwrap().to_owned();
        Patient {
            key,
            token,
            observation,
        }
    }
}
