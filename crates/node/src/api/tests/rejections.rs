//! Findings 6 and 9 of the outside attack: some 413s (and other refusals
//! the framework writes itself) were plain text instead of the JSON error
//! shape, and a failing file system put a server path in an answer.

use axum::body::Body;
use axum::http::{header, Method, Request};
use hygeia_identity::Keypair;
use serde_json::Value;

use super::{observation, Answer, Net};

fn is_json(answer: &Answer) -> bool {
    answer
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| {
            t.starts_with("application/json") || t.starts_with("application/fhir+json")
        })
        && serde_json::from_slice::<Value>(&answer.body).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_is_json_with_a_stable_code() {
    let net = Net::with_config(|c| c.max_batch_body_bytes = 1024);
    let token = net.token(&Keypair::generate(), "TREAT", None).await;
    let big = |n: usize| Body::from(vec![b' '; n]);

    // (request, status, where the stable code is)
    let cases: Vec<(Request<Body>, u16, &str)> = vec![
        (
            Request::post("/fhir/Observation")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header(header::CONTENT_TYPE, "application/fhir+json")
                .body(big(crate::api::fhir::MAX_FHIR_BODY + 1))
                .unwrap(),
            413,
            "/issue/0/code",
        ),
        (
            Request::post("/fhir")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header(header::CONTENT_TYPE, "application/fhir+json")
                .body(big(crate::api::fhir::MAX_FHIR_BODY + 1))
                .unwrap(),
            413,
            "/issue/0/code",
        ),
        (
            Request::post("/auth/token")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(big(hygeia_auth::token::MAX_FORM_LEN + 1))
                .unwrap(),
            413,
            "/error",
        ),
        (
            Request::post("/v1/research/studies")
                .header(header::CONTENT_TYPE, "application/json")
                .body(big(crate::api::research::MAX_RESEARCH_BODY + 1))
                .unwrap(),
            413,
            "/error/code",
        ),
        (
            Request::post("/v1/transactions/batch")
                .header(header::CONTENT_TYPE, "application/json")
                .body(big(2048))
                .unwrap(),
            413,
            "/error/code",
        ),
        (
            Request::post("/v1/transactions")
                .header(header::CONTENT_TYPE, "application/json")
                .body(big(hygeia_ledger::MAX_TX_BYTES + 1))
                .unwrap(),
            413,
            "/error/code",
        ),
        (
            Request::get("/fhir/Observation/%FF%FE")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
            400,
            "/issue/0/code",
        ),
        (
            Request::get("/v1/dids/%FF%FE").body(Body::empty()).unwrap(),
            400,
            "/error/code",
        ),
        (
            Request::get("/v1/research/studies/%C0")
                .body(Body::empty())
                .unwrap(),
            400,
            "/error/code",
        ),
    ];
    for (request, status, code_at) in cases {
        let what = format!("{} {}", request.method(), request.uri());
        let answer = net.send(request).await;
        assert_eq!(answer.status, status, "{what}: {}", answer.text());
        assert!(
            is_json(&answer),
            "{what}: not JSON: {:?} {}",
            answer.headers,
            answer.text()
        );
        let code = answer
            .json()
            .pointer(code_at)
            .cloned()
            .unwrap_or(Value::Null);
        assert!(
            code.as_str()
                .is_some_and(|c| !c.is_empty() && !c.contains(' ')),
            "{what}: no stable code at {code_at}: {}",
            answer.text()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_file_system_is_reported_without_its_paths() {
    let net = Net::start();
    let patient = net.patient("p1", "Lovelace", "1815-12-10", "female").await;
    // Every new record fails to be stored, as when the disk is full.
    net.node.custody.fail_storage();
    let answer = net
        .fhir(
            &patient.token,
            Method::POST,
            "/fhir/Observation",
            Some(&observation("p1", "4548-4", 6.0)),
        )
        .await;
    assert!(answer.status >= 500, "{}", answer.text());
    assert!(is_json(&answer), "{}", answer.text());
    let root = net.node.config.data_dir.display().to_string();
    let text = answer.text();
    assert!(
        !text.contains(&root) && !text.contains("segment") && !text.contains("vault"),
        "the answer names server files: {text}"
    );
    assert!(text.contains("incident"), "{text}");
}

/// Records, FHIR resources and refusals are never left in a browser's or a
/// proxy's cache; what is meant to be cached keeps its own policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_not_cached_unless_they_say_so() {
    let net = Net::start();
    let patient = net
        .patient("cache-1", "Cachet", "1970-01-01", "female")
        .await;
    let read = net
        .fhir(
            &patient.token,
            Method::GET,
            &format!("/fhir/Observation/{}", patient.observation),
            None,
        )
        .await;
    assert_eq!(read.status, 200, "{}", read.text());
    let missing = net.get("/v1/no-such-endpoint").await;
    for answer in [&read, &missing] {
        assert_eq!(
            answer.headers.get(header::CACHE_CONTROL).unwrap(),
            "no-store"
        );
    }
    let keys = net.get("/.well-known/jwks.json").await;
    assert_eq!(
        keys.headers.get(header::CACHE_CONTROL).unwrap(),
        "public, max-age=3600"
    );
}
