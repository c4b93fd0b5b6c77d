//! SMART Health Cards through the router: `$health-cards-issue` refuses
//! bad requests with their OperationOutcome codes, the key set is public
//! with no private part, and the CapabilityStatement lists the operation.
//! (Moved here from the CLI's end-to-end tests, which started a node
//! process; the `hygeia shc` commands are still tested there.)

use axum::http::Method;
use hygeia_credentials::shc::Jwks;
use serde_json::{json, Value};

use super::clinic::Clinic;
use super::{Net, NETWORK};

const IMMUNIZATION: &str = "https://smarthealth.cards#immunization";

async fn post(net: &Net, token: &str, path: &str, body: &Value) -> (u16, Value) {
    let answer = net
        .fhir(token, Method::POST, &format!("/fhir/{path}"), Some(body))
        .await;
    (answer.status, answer.json())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_key_set_and_capability() {
    let clinic = Clinic::start().await;
    let token = clinic.fhir_chart().await;
    let net = &clinic.net;

    // Unknown credentialType: 400 with an OperationOutcome naming it.
    let (status, outcome) = post(
        net,
        &token,
        "Patient/p1/$health-cards-issue",
        &json!({"resourceType": "Parameters", "parameter": [
            {"name": "credentialType", "valueUri": "https://smarthealth.cards#dog"}]}),
    )
    .await;
    assert_eq!(status, 400, "{outcome}");
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    assert_eq!(outcome["issue"][0]["code"], "not-supported");
    let text = outcome["issue"][0]["diagnostics"].as_str().unwrap();
    assert!(
        text.contains("#dog") && text.contains(IMMUNIZATION),
        "{text}"
    );
    for (body, code) in [
        (json!({"resourceType": "Parameters"}), "required"),
        (json!({"resourceType": "Patient"}), "invalid"),
        (
            json!({"resourceType": "Parameters", "parameter": [
                {"name": "credentialType", "valueUri": IMMUNIZATION},
                {"name": "_since", "valueDateTime": "yesterday"}]}),
            "value",
        ),
    ] {
        let (status, outcome) = post(net, &token, "Patient/p1/$health-cards-issue", &body).await;
        assert_eq!(
            (status, outcome["issue"][0]["code"].as_str()),
            (400, Some(code)),
            "{outcome}"
        );
    }
    let (status, outcome) = post(
        net,
        &token,
        "Observation/x/$health-cards-issue",
        &json!({"resourceType": "Parameters"}),
    )
    .await;
    assert_eq!(
        (status, outcome["issue"][0]["code"].as_str()),
        (400, Some("not-supported"))
    );
    let (status, _) = post(
        net,
        &token,
        "Patient/p1/$everything",
        &json!({"resourceType": "Parameters"}),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = post(
        net,
        "not-a-token",
        "Patient/p1/$health-cards-issue",
        &json!({}),
    )
    .await;
    assert_eq!(status, 401);

    // The key set: public, cacheable, EC P-256 signing keys, no private part.
    let response = net.get("/.well-known/jwks.json").await;
    assert_eq!(response.status, 200);
    let header = |name: &str| {
        response
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    assert!(header("content-type").starts_with("application/json"));
    assert!(
        header("cache-control").contains("max-age"),
        "{}",
        header("cache-control")
    );
    assert_eq!(header("access-control-allow-origin"), "*");
    let jwks = response.json();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    for key in keys {
        let members: Vec<&str> = key
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(
                !members.contains(&private),
                "private member {private} published: {key}"
            );
        }
        assert_eq!(
            (&key["kty"], &key["crv"], &key["use"], &key["alg"]),
            (
                &json!("EC"),
                &json!("P-256"),
                &json!("sig"),
                &json!("ES256")
            )
        );
    }
    Jwks::from_json(&response.body).unwrap();
    let info = net.get("/v1/node").await.json();
    assert_eq!(info["health_cards"]["issuer"], format!("https://{NETWORK}"));

    // The CapabilityStatement lists the operation on Patient.
    let metadata = net.get("/fhir/metadata").await.json();
    let patient = metadata["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Patient")
        .unwrap();
    assert!(
        patient["operation"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["name"] == "health-cards-issue"),
        "{patient}"
    );
}
