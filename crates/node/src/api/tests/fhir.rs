//! The FHIR R5 API through the router: bearer tokens from client
//! assertions, consent enforced on every interaction, and the refusals of
//! bad input. (Moved here from the CLI's end-to-end tests, which started a
//! node process for each; the independent FHIR clients in Python stay
//! there, since they need a socket.)

use axum::body::Body;
use axum::http::{header, Method, Request};
use hygeia_identity::Keypair;
use serde_json::{json, Value};

use super::clinic::Clinic;
use super::{did, now, Answer, Net, FHIR_JSON};

/// A FHIR client holding a bearer token for one participant and purpose.
struct Client<'a> {
    net: &'a Net,
    token: String,
}

async fn login<'a>(net: &'a Net, key: &Keypair, purpose: &str) -> Client<'a> {
    let answer = net.token_request(key, &[("purpose_of_use", purpose)]).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let answer = answer.json();
    assert_eq!(answer["token_type"], "Bearer");
    Client {
        net,
        token: answer["access_token"].as_str().unwrap().to_owned(),
    }
}

impl Client<'_> {
    async fn request(&self, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        let answer = self
            .net
            .fhir(&self.token, method, &fhir_path(path), body)
            .await;
        (answer.status, answer.json())
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.request(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.request(Method::POST, path, Some(body)).await
    }

    async fn put(&self, path: &str, body: &Value) -> (u16, Value) {
        self.request(Method::PUT, path, Some(body)).await
    }

    /// A request with a raw body, a content type and other headers.
    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Answer {
        let mut request = Request::builder()
            .method(method)
            .uri(fhir_path(path).replace('|', "%7C"))
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header(header::CONTENT_LENGTH, body.len());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.net.send(request.body(Body::from(body)).unwrap()).await
    }
}

fn fhir_path(path: &str) -> String {
    if path.is_empty() {
        "/fhir".to_owned()
    } else if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/fhir/{path}")
    }
}

fn patient_resource(id: &str, patient: &Keypair) -> Value {
    json!({
        "resourceType": "Patient",
        "id": id,
        "identifier": [{ "system": "urn:ietf:rfc:3986", "value": did(patient) }],
        "name": [{ "family": "Chalmers", "given": ["Peter"] }],
        "gender": "male",
        "birthDate": "1974-12-25",
    })
}

use super::observation;

async fn grant(net: &Clinic, grantee: &Keypair, scope: Value, actions: Value) -> String {
    let now = now();
    let answer = net
        .net
        .submit_ok(
            &net.patient,
            "consent.grant",
            json!({
                "patient": did(&net.patient),
                "grantee": did(grantee),
                "scope": scope,
                "actions": actions,
                "purpose": "TREAT",
                "not_before": now - 60,
                "not_after": now + 86_400,
            }),
        )
        .await;
    answer.json()["leaf_hash"].as_str().unwrap().to_owned()
}

fn issue_codes(outcome: &Value) -> Vec<String> {
    outcome["issue"]
        .as_array()
        .map(|issues| {
            issues
                .iter()
                .map(|i| i["code"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_holds_across_every_interaction() {
    let net = Clinic::start().await;
    let patient = login(&net.net, &net.patient, "TREAT").await;
    let clinician = login(&net.net, &net.clinician, "TREAT").await;
    let researcher = login(&net.net, &net.researcher, "TREAT").await;

    // The patient writes their own Patient resource and a lab result.
    let (status, created) = patient
        .put("Patient/p1", &patient_resource("p1", &net.patient))
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["meta"]["versionId"], "1");
    let (status, obs) = patient
        .post("Observation", &observation("p1", "4548-4", 6.1))
        .await;
    assert_eq!(status, 201, "{obs}");
    let obs_id = obs["id"].as_str().unwrap().to_owned();

    // Without consent the clinician sees nothing, and a denial looks like
    // absence: the same 404 as an id that does not exist.
    let (denied, denied_body) = clinician.get(&format!("Observation/{obs_id}")).await;
    let (missing, missing_body) = clinician.get("Observation/does-not-exist").await;
    assert_eq!((denied, missing), (404, 404));
    assert_eq!(issue_codes(&denied_body), issue_codes(&missing_body));
    let (status, bundle) = clinician.get("Observation?patient=Patient/p1").await;
    assert_eq!(status, 200);
    assert_eq!(
        bundle["total"], 0,
        "a denied resource must not count: {bundle}"
    );
    assert!(bundle["entry"].as_array().unwrap().is_empty());
    let (status, _) = clinician
        .get(&format!("Observation/{obs_id}/_history"))
        .await;
    assert_eq!(status, 404);
    let (status, _) = clinician
        .get(&format!("Observation/{obs_id}/_history/1"))
        .await;
    assert_eq!(status, 404);

    // The patient grants lab reads to the clinician: now everything opens,
    // except what the grant does not cover (the Patient resource itself).
    grant(
        &net,
        &net.clinician,
        json!({"categories": ["lab"]}),
        json!(["read"]),
    )
    .await;
    let (status, read) = clinician.get(&format!("Observation/{obs_id}")).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["valueQuantity"]["value"], 6.1);
    let (status, bundle) = clinician
        .get("Observation?patient=Patient/p1&code=http://loinc.org|4548-4&_include=Observation:patient")
        .await;
    assert_eq!(status, 200);
    assert_eq!(bundle["total"], 1, "{bundle}");
    let modes: Vec<&str> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["search"]["mode"].as_str().unwrap())
        .collect();
    assert_eq!(
        modes,
        vec!["match"],
        "the Patient is not covered by a lab grant, so it is not included"
    );

    // The researcher (no grant) still sees nothing; the patient sees all.
    let (_, bundle) = researcher.get("Observation?patient=Patient/p1").await;
    assert_eq!(bundle["total"], 0);
    let (_, bundle) = patient
        .get("Observation?patient=Patient/p1&_include=Observation:patient")
        .await;
    assert_eq!(bundle["entry"].as_array().unwrap().len(), 2);

    // Writes need write consent: the clinician may not add to the record.
    let (status, outcome) = clinician
        .post("Observation", &observation("p1", "2339-0", 99.0))
        .await;
    assert_eq!(status, 403, "{outcome}");

    // Update with versioning: without If-Match an update just applies
    // (version 2); a stale If-Match is refused, the right one works.
    let mut changed = read.clone();
    changed["valueQuantity"]["value"] = json!(6.3);
    let (status, v2) = patient
        .put(&format!("Observation/{obs_id}"), &changed)
        .await;
    assert_eq!((status, v2["meta"]["versionId"].as_str()), (200, Some("2")));
    let path = format!("Observation/{obs_id}");
    let body = serde_json::to_vec(&changed).unwrap();
    let response = patient
        .send(
            Method::PUT,
            &path,
            &[("content-type", FHIR_JSON), ("if-match", "W/\"1\"")],
            body.clone(),
        )
        .await;
    assert_eq!(response.status, 412, "version 2 exists now");
    let response = patient
        .send(
            Method::PUT,
            &path,
            &[("content-type", FHIR_JSON), ("if-match", "W/\"2\"")],
            body,
        )
        .await;
    assert_eq!(response.status, 200);
    let (status, history) = clinician
        .get(&format!("Observation/{obs_id}/_history"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(history["entry"].as_array().unwrap().len(), 3);

    // Every access is an AuditEvent the patient can read, with its ledger
    // index and proof link; the clinician cannot read the patient's trail.
    let (status, audit) = patient.get("AuditEvent?patient=Patient/p1").await;
    assert_eq!(status, 200);
    let events = audit["entry"].as_array().unwrap();
    assert!(events.len() >= 8, "{audit}");
    let denied_reads = events
        .iter()
        .filter(|e| e["resource"]["outcome"]["code"]["code"] != "0")
        .count();
    assert!(
        denied_reads >= 3,
        "the clinician's refused reads are audited: {audit}"
    );
    let ext = events[0]["resource"]["extension"].to_string();
    assert!(
        ext.contains("ledger-index") && ext.contains("/v1/proofs/inclusion?index="),
        "{ext}"
    );
    let (_, theirs) = clinician.get("AuditEvent?patient=Patient/p1").await;
    assert_eq!(theirs["total"], 0);

    // Provenance of each version, from the ledger.
    let (status, provenance) = clinician
        .get(&format!("Provenance?target=Observation/{obs_id}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        provenance["entry"].as_array().unwrap().len(),
        3,
        "{provenance}"
    );

    // Revocation takes effect on the next read.
    let grants: Value = patient.get("Consent?patient=Patient/p1").await.1;
    let consent_id = grants["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    net.net
        .submit_ok(
            &net.patient,
            "consent.revoke",
            json!({ "grant": consent_id }),
        )
        .await;
    let (status, _) = clinician.get(&format!("Observation/{obs_id}")).await;
    assert_eq!(status, 404);
    let (_, consent) = patient.get(&format!("Consent/{consent_id}")).await;
    assert_eq!(consent["status"], "inactive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_are_atomic_and_bad_input_changes_nothing() {
    let net = Clinic::start().await;
    let patient = login(&net.net, &net.patient, "TREAT").await;
    let (status, _) = patient
        .put("Patient/p1", &patient_resource("p1", &net.patient))
        .await;
    assert_eq!(status, 201);
    let size = net.size();

    // One bad entry: nothing of the Bundle is applied.
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            { "fullUrl": "urn:uuid:1", "resource": observation("p1", "4548-4", 6.0), "request": { "method": "POST", "url": "Observation" } },
            { "resource": { "resourceType": "Observation", "subject": { "reference": "Patient/p1" } }, "request": { "method": "POST", "url": "Observation" } },
        ],
    });
    let (status, outcome) = patient.post("", &bundle).await;
    assert_eq!(status, 422, "{outcome}");
    assert!(outcome.to_string().contains("Bundle.entry[1]"), "{outcome}");
    assert_eq!(
        net.size(),
        size,
        "a refused transaction writes nothing to the ledger"
    );
    let (_, search) = patient.get("Observation?patient=p1").await;
    assert_eq!(search["total"], 0);

    // A good one applies whole, references between entries resolved.
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            { "fullUrl": "urn:uuid:enc", "resource": { "resourceType": "Encounter", "status": "completed", "subject": { "reference": "Patient/p1" } }, "request": { "method": "POST", "url": "Encounter" } },
            { "resource": { "resourceType": "Observation", "status": "final", "code": { "coding": [{ "system": "http://loinc.org", "code": "8867-4" }] }, "subject": { "reference": "Patient/p1" }, "encounter": { "reference": "urn:uuid:enc" } }, "request": { "method": "POST", "url": "Observation" } },
        ],
    });
    let (status, response) = patient.post("", &bundle).await;
    assert_eq!(status, 200, "{response}");
    assert_eq!(response["type"], "transaction-response");
    let (_, search) = patient
        .get("Observation?patient=p1&_include=Observation:encounter")
        .await;
    assert_eq!(search["total"], 1);
    assert_eq!(search["entry"].as_array().unwrap().len(), 2, "{search}");
    let encounter_ref = search["entry"][0]["resource"]["encounter"]["reference"]
        .as_str()
        .unwrap();
    assert!(encounter_ref.starts_with("Encounter/"), "{encounter_ref}");

    // Bad input, each with a clear OperationOutcome; none changes anything.
    let size = net.size();
    let send = |method: Method,
                path: &'static str,
                content_type: &'static str,
                body: String,
                prefer: Option<&'static str>| {
        let patient = &patient;
        async move {
            let mut headers = vec![("content-type", content_type)];
            if let Some(p) = prefer {
                headers.push(("prefer", p));
            }
            let answer = patient
                .send(method, path, &headers, body.into_bytes())
                .await;
            (answer.status, answer.json())
        }
    };
    let observation_text = observation("p1", "4548-4", 5.0).to_string();
    let cases: Vec<(&str, (u16, Value), u16, &str)> = vec![
        (
            "wrong content type",
            send(
                Method::POST,
                "Observation",
                "text/plain",
                observation_text.clone(),
                None,
            )
            .await,
            415,
            "not-supported",
        ),
        (
            "invalid JSON",
            send(
                Method::POST,
                "Observation",
                FHIR_JSON,
                "{\"resourceType\":".into(),
                None,
            )
            .await,
            400,
            "structure",
        ),
        (
            "wrong type for the URL",
            send(
                Method::POST,
                "Condition",
                FHIR_JSON,
                observation_text.clone(),
                None,
            )
            .await,
            422,
            "invalid",
        ),
        (
            "unknown type",
            send(Method::POST, "Spaceship", FHIR_JSON, "{}".into(), None).await,
            404,
            "not-supported",
        ),
        (
            "missing required element",
            send(
                Method::POST,
                "Observation",
                FHIR_JSON,
                r#"{"resourceType":"Observation","status":"final","subject":{"reference":"Patient/p1"}}"#.into(),
                None,
            )
            .await,
            422,
            "required",
        ),
        (
            "bad datatype",
            send(
                Method::POST,
                "Observation",
                FHIR_JSON,
                observation_text.replace("2025-03-04T09:30:00Z", "yesterday"),
                None,
            )
            .await,
            422,
            "value",
        ),
        (
            "unknown search parameter, strict",
            send(
                Method::GET,
                "Observation?colour=blue",
                FHIR_JSON,
                String::new(),
                Some("handling=strict"),
            )
            .await,
            400,
            "not-supported",
        ),
        (
            "malformed date",
            send(
                Method::GET,
                "Observation?date=ge2023-02-30",
                FHIR_JSON,
                String::new(),
                None,
            )
            .await,
            400,
            "value",
        ),
        (
            "malformed token",
            send(
                Method::GET,
                "Observation?code=",
                FHIR_JSON,
                String::new(),
                None,
            )
            .await,
            400,
            "value",
        ),
        (
            "not a transaction or batch",
            send(
                Method::POST,
                "",
                FHIR_JSON,
                r#"{"resourceType":"Bundle","type":"collection"}"#.into(),
                None,
            )
            .await,
            400,
            "not-supported",
        ),
    ];
    for (what, (status, outcome), expected_status, expected_code) in cases {
        assert_eq!(status, expected_status, "{what}: {outcome}");
        assert_eq!(outcome["resourceType"], "OperationOutcome", "{what}");
        assert!(
            issue_codes(&outcome).iter().any(|c| c == expected_code),
            "{what}: expected issue code {expected_code} in {outcome}"
        );
    }

    // An oversized Bundle is refused before anything is decided.
    let entry = json!({ "resource": observation("p1", "4548-4", 5.0), "request": { "method": "POST", "url": "Observation" } });
    let big =
        json!({ "resourceType": "Bundle", "type": "transaction", "entry": vec![entry; 1001] });
    let (status, outcome) = patient.post("", &big).await;
    assert_eq!(status, 413, "{outcome}");
    assert_eq!(net.size(), size, "bad input must change nothing");

    // A write for a Patient the node does not hold is a write the
    // requester may not make: refused like one for a patient it may not
    // write for, and the attempt is logged (docs/fhir.md, "Writes").
    let (status, outcome) = send(
        Method::POST,
        "Observation",
        FHIR_JSON,
        observation("nobody", "4548-4", 5.0).to_string(),
        None,
    )
    .await;
    assert_eq!(status, 403, "{outcome}");
    assert_eq!(issue_codes(&outcome), ["forbidden"], "{outcome}");
    assert_eq!(net.size(), size + 1, "the refused write is logged");

    // Lenient handling drops the unknown parameter with a warning.
    let (status, bundle) = send(
        Method::GET,
        "Observation?colour=blue",
        FHIR_JSON,
        String::new(),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(bundle.to_string().contains("colour"), "{bundle}");

    // No token, a forged token: 401 with a challenge.
    let response = net.net.get("/fhir/Patient/p1").await;
    assert_eq!(response.status, 401);
    assert!(response.headers.contains_key("www-authenticate"));
    let response = net
        .net
        .fhir("not-a-token", Method::GET, "/fhir/Patient/p1", None)
        .await;
    assert_eq!(response.status, 401);

    // A replayed client assertion gets no second token.
    let node_did = net.net.node.node_did.clone();
    let assertion = hygeia_auth::token::client_assertion(&net.patient, &node_did, now(), 120);
    let first = token_with_assertion(&net.net, &assertion).await;
    assert_eq!(first.status, 200);
    let second = token_with_assertion(&net.net, &assertion).await;
    assert_eq!(second.status, 401);
    // An assertion made for another audience is refused.
    let assertion =
        hygeia_auth::token::client_assertion(&net.patient, "did:key:z6MkOtherNode", now(), 120);
    let response = token_with_assertion(&net.net, &assertion).await;
    assert_eq!(response.status, 401);
}

/// `POST /auth/token` with this client assertion.
async fn token_with_assertion(net: &Net, assertion: &str) -> Answer {
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "client_credentials")
        .append_pair(
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        )
        .append_pair("client_assertion", assertion)
        .finish();
    net.send(
        Request::post("/auth/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form))
            .unwrap(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capability_statement_is_truthful() {
    let net = Clinic::start().await;
    let response = net.net.get("/fhir/metadata").await;
    assert_eq!(response.status, 200);
    let statement = response.json();
    assert_eq!(statement["fhirVersion"], "5.0.0");
    let resources = statement["rest"][0]["resource"].as_array().unwrap();
    assert_eq!(resources.len(), 19);
    let audit = resources
        .iter()
        .find(|r| r["type"] == "AuditEvent")
        .unwrap();
    let interactions: Vec<&str> = audit["interaction"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["code"].as_str().unwrap())
        .collect();
    assert_eq!(interactions, vec!["read", "search-type"]);
    // Every advertised search parameter of Observation is accepted in strict mode.
    let observation = resources
        .iter()
        .find(|r| r["type"] == "Observation")
        .unwrap();
    let patient = login(&net.net, &net.patient, "TREAT").await;
    for param in observation["searchParam"].as_array().unwrap() {
        let name = param["name"].as_str().unwrap();
        let value = match param["type"].as_str().unwrap() {
            "date" => "ge2020-01-01",
            "number" => "1",
            "reference" => "Patient/x",
            "special" if name == "_sort" => "_lastUpdated",
            "special" => "accurate",
            _ => "x",
        };
        let response = patient
            .send(
                Method::GET,
                &format!("Observation?{name}={value}"),
                &[("prefer", "handling=strict")],
                Vec::new(),
            )
            .await;
        assert_eq!(response.status, 200, "{name}: {}", response.text());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_patient_exports_their_record() {
    let net = Clinic::start().await;
    let patient = login(&net.net, &net.patient, "TREAT").await;
    let clinician = login(&net.net, &net.clinician, "TREAT").await;
    patient
        .put("Patient/p1", &patient_resource("p1", &net.patient))
        .await;
    for code in ["4548-4", "2339-0", "718-7"] {
        let (status, _) = patient
            .post("Observation", &observation("p1", code, 5.0))
            .await;
        assert_eq!(status, 201);
    }
    let kick = |client: &Client| {
        let token = client.token.clone();
        let net = &net.net;
        async move {
            net.fhir_with(
                &token,
                Method::GET,
                "/fhir/Patient/p1/$export",
                None,
                &[("prefer", "respond-async")],
            )
            .await
        }
    };
    // Without consent to read the Patient, the clinician cannot start one:
    // the same 404 as for a patient that does not exist.
    assert_eq!(kick(&clinician).await.status, 404);
    let response = kick(&patient).await;
    assert_eq!(response.status, 202);
    // An absolute URL; the router is reached by its path.
    let path_of = |url: &str| url[url.find("/fhir").expect("a FHIR URL")..].to_owned();
    let status_url = path_of(response.headers["content-location"].to_str().unwrap());
    let manifest: Value = loop {
        let r = patient
            .send(Method::GET, &status_url, &[], Vec::new())
            .await;
        match r.status {
            202 => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            200 => break r.json(),
            other => panic!("export status {other}: {}", r.text()),
        }
    };
    let outputs = manifest["output"].as_array().unwrap();
    let observations = outputs.iter().find(|o| o["type"] == "Observation").unwrap();
    let ndjson = patient
        .send(
            Method::GET,
            &path_of(observations["url"].as_str().unwrap()),
            &[],
            Vec::new(),
        )
        .await
        .text();
    assert_eq!(ndjson.lines().count(), 3);
    // Another requester cannot poll someone else's job.
    let r = clinician
        .send(Method::GET, &status_url, &[], Vec::new())
        .await;
    assert_eq!(r.status, 404);
}

fn r5_example(name: &str) -> Value {
    let path = format!(
        "{}/../../../shared/vectors/fhir-r5/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// What the server adds: the version id and the last-updated instant.
fn without_server_meta(mut resource: Value) -> Value {
    if let Some(meta) = resource.get_mut("meta").and_then(Value::as_object_mut) {
        meta.remove("versionId");
        meta.remove("lastUpdated");
    }
    resource
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r5_examples_round_trip() {
    let net = Clinic::start().await;
    let patient = login(&net.net, &net.patient, "TREAT").await;
    // Directory resources are written by members of registered organizations.
    let clinician = login(&net.net, &net.clinician, "TREAT").await;

    // The Patient example gains one identifier: the patient's DID, which
    // tells the node whose consent governs it (docs/fhir.md).
    let mut patient_example = r5_example("Patient-example");
    patient_example["identifier"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "system": "urn:ietf:rfc:3986", "value": did(&net.patient) }));
    let cases = [
        (
            &patient,
            patient_example,
            "Patient?_id=example&birthdate=1974-12-25",
        ),
        (
            &patient,
            r5_example("Observation-example"),
            "Observation?patient=Patient/example&code=http://loinc.org|29463-7",
        ),
        (
            &patient,
            r5_example("Encounter-example"),
            "Encounter?subject=Patient/example",
        ),
        (
            &clinician,
            r5_example("Practitioner-example"),
            "Practitioner?_id=example",
        ),
        (
            &clinician,
            r5_example("Organization-hl7"),
            "Organization?_id=hl7",
        ),
    ];
    for (client, example, search) in cases {
        let path = format!(
            "{}/{}",
            example["resourceType"].as_str().unwrap(),
            example["id"].as_str().unwrap()
        );
        let (status, created) = client.put(&path, &example).await;
        assert_eq!(status, 201, "{path}: {created}");
        let (status, read) = client.get(&path).await;
        assert_eq!(status, 200, "{path}: {read}");
        assert_eq!(
            without_server_meta(read.clone()),
            example,
            "{path} read back differs"
        );
        let (status, found) = client.get(search).await;
        assert_eq!(status, 200, "{search}: {found}");
        assert_eq!(found["total"], 1, "{search}: {found}");
        assert_eq!(found["entry"][0]["resource"], read, "{search}");
    }

    // The ledger views are not written as such; Consent examples are
    // refused without the patient's signed grant (or as shapes the ledger
    // cannot hold exactly), never half-applied.
    for name in ["AuditEvent-example", "Provenance-example"] {
        let example = r5_example(name);
        let (status, outcome) = patient
            .post(example["resourceType"].as_str().unwrap(), &example)
            .await;
        assert_eq!(status, 405, "{name}: {outcome}");
        assert_eq!(issue_codes(&outcome), vec!["not-supported"], "{name}");
    }
    let size = net.size();
    for name in [
        "Consent-consent-example-basic",
        "Consent-consent-example-notThis",
        "Consent-consent-example-Emergency",
        "Consent-consent-example-smartonfhir",
    ] {
        let (status, outcome) = patient.post("Consent", &r5_example(name)).await;
        assert_eq!(status, 422, "{name}: {outcome}");
        assert_eq!(outcome["resourceType"], "OperationOutcome");
    }
    assert_eq!(net.size(), size, "refused Consents change nothing");
}
