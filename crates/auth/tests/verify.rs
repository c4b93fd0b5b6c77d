//! Sign, verify, and every refusal with its code.

mod common;

use common::*;
use http::{HeaderValue, Method};
use hygeia_auth::{AuthError, Verifier, DEFAULT_WINDOW};
use hygeia_identity::Keypair;

const TARGET: &str = "/v1/records/1";

fn get(created: u64, nonce: &str) -> Request {
    Request::signed(Method::GET, TARGET, None, &key(1), created, nonce)
}

/// A GET of `TARGET` signed by hand with these covered component lines
/// and parameters (after the inner list).
fn by_hand(key: &Keypair, covered: &[&str], params: &str) -> Request {
    let mut request = Request::new(Method::GET, TARGET, false);
    let lines: Vec<String> = covered
        .iter()
        .map(|name| {
            let value = match *name {
                "@method" => "GET".to_string(),
                "@path" => TARGET.to_string(),
                "@query" => "?".to_string(),
                header => request.headers[header].to_str().unwrap().to_string(),
            };
            format!("\"{name}\": {value}")
        })
        .collect();
    let inner: Vec<String> = covered.iter().map(|n| format!("\"{n}\"")).collect();
    let params = format!("({}){params}", inner.join(" "));
    sign_by_hand(&mut request, key, "sig1", &params, &lines);
    request
}

fn standard_params(key: &Keypair, nonce: &str) -> String {
    format!(";created={NOW};nonce=\"{nonce}\";keyid=\"{}\"", key.did())
}

const REQUIRED: [&str; 3] = ["@method", "@path", "@query"];

#[test]
fn round_trip_without_body() {
    let verifier = verifier();
    let request = get(NOW, &nonce(1));
    let auth = request.verify(&verifier, NOW).unwrap();
    assert_eq!(auth.did, key(1).did());
    assert_eq!(auth.body_sha256, None);
    assert!(auth.check_body(&sha256(b"")).is_ok());
    assert_eq!(
        auth.check_body(&sha256(b"x")).unwrap_err().code(),
        "digest_mismatch"
    );
}

#[test]
fn round_trip_with_body_and_query() {
    let verifier = verifier();
    let body = br#"{"grant":"x"}"#;
    let request = Request::signed(
        Method::POST,
        "/v1/consents?dry_run=true&x=%20",
        Some(body),
        &key(2),
        NOW,
        &nonce(2),
    );
    let auth = request.verify(&verifier, NOW).unwrap();
    assert_eq!(auth.did, key(2).did());
    assert_eq!(auth.body_sha256, Some(sha256(body)));
    assert!(auth.check_body(&sha256(body)).is_ok());
    let error = auth.check_body(&sha256(b"{}")).unwrap_err();
    assert_eq!(
        (error.code(), error.http_status()),
        ("digest_mismatch", 400)
    );
}

#[test]
fn hand_signed_requests_verify_and_any_label_is_accepted() {
    let verifier = verifier();
    let k = key(3);
    assert_eq!(
        by_hand(&k, &REQUIRED, &standard_params(&k, &nonce(3))).code(&verifier, NOW),
        "ok"
    );

    // Any order of components, and an extra header the request carries.
    let mut request = Request::new(Method::GET, TARGET, false);
    request.set("x-request-id", "abc");
    let params = format!(
        "(\"x-request-id\" \"@query\" \"@method\" \"@path\"){}",
        standard_params(&k, &nonce(4))
    );
    let lines = [
        "\"x-request-id\": abc",
        "\"@query\": ?",
        "\"@method\": GET",
        &format!("\"@path\": {TARGET}"),
    ]
    .map(String::from);
    sign_by_hand(&mut request, &k, "hygeia-b1", &params, &lines);
    assert_eq!(request.code(&verifier, NOW), "ok");

    // The same, without the header it covers.
    request.headers.remove("x-request-id");
    assert_eq!(request.code(&verifier, NOW), "auth_components");

    // alg, when given, must be ed25519.
    let params = format!(
        ";created={NOW};nonce=\"{}\";alg=\"ed25519\";keyid=\"{}\"",
        nonce(5),
        k.did()
    );
    assert_eq!(by_hand(&k, &REQUIRED, &params).code(&verifier, NOW), "ok");
}

#[test]
fn missing_headers() {
    let verifier = verifier();
    let bare = Request::new(Method::GET, TARGET, false);
    let error = bare.verify(&verifier, NOW).unwrap_err();
    assert_eq!(error, AuthError::Missing);
    assert_eq!((error.code(), error.http_status()), ("auth_missing", 401));

    let mut only_input = get(NOW, &nonce(1));
    only_input.headers.remove("signature");
    assert_eq!(only_input.code(&verifier, NOW), "auth_missing");
    let mut only_signature = get(NOW, &nonce(2));
    only_signature.headers.remove("signature-input");
    assert_eq!(only_signature.code(&verifier, NOW), "auth_missing");
}

#[test]
fn malformed_headers() {
    let verifier = verifier();
    let good = get(NOW, &nonce(1));
    let input = good.headers["signature-input"]
        .to_str()
        .unwrap()
        .to_string();
    let signature = good.headers["signature"].to_str().unwrap().to_string();
    let cases: Vec<(&str, String, String)> = vec![
        (
            "garbage input",
            "not a dictionary ((".into(),
            signature.clone(),
        ),
        ("garbage signature", input.clone(), "sig1=not-bytes".into()),
        (
            "label mismatch",
            input.clone(),
            signature.replace("sig1=", "other="),
        ),
        (
            "inner list not a list",
            "sig1=:AAAA:".into(),
            signature.clone(),
        ),
        ("signature too short", input.clone(), "sig1=:AAAA:".into()),
        ("empty", String::new(), String::new()),
    ];
    for (what, input, signature) in cases {
        let mut request = good.clone();
        request.set("signature-input", &input);
        request.set("signature", &signature);
        let error = request.verify(&verifier, NOW).unwrap_err();
        assert_eq!(
            (error.code(), error.http_status()),
            ("auth_malformed", 400),
            "{what}: {error}"
        );
    }
}

#[test]
fn two_signatures_are_refused() {
    let verifier = verifier();
    let a = get(NOW, &nonce(1));
    let b = get(NOW, &nonce(2));
    // b's headers under another label.
    let a_value = |h: &str| a.headers[h].to_str().unwrap().to_string();
    let b_value = |h: &str| b.headers[h].to_str().unwrap().replace("sig1=", "sig2=");

    // In one field line each.
    let mut both = a.clone();
    for header in ["signature-input", "signature"] {
        both.set(header, &format!("{}, {}", a_value(header), b_value(header)));
    }
    assert_eq!(both.code(&verifier, NOW), "auth_malformed");

    // In two field lines each.
    let mut lines = a.clone();
    for header in ["signature-input", "signature"] {
        lines
            .headers
            .append(header, HeaderValue::from_str(&b_value(header)).unwrap());
    }
    assert_eq!(lines.code(&verifier, NOW), "auth_malformed");

    // Neither spent a nonce: the first request alone still verifies.
    assert_eq!(a.code(&verifier, NOW), "ok");
}

#[test]
fn each_required_component_must_be_covered() {
    let verifier = verifier();
    let k = key(1);
    for (i, left_out) in REQUIRED.iter().enumerate() {
        let covered: Vec<&str> = REQUIRED.iter().copied().filter(|c| c != left_out).collect();
        let request = by_hand(&k, &covered, &standard_params(&k, &nonce(i as u32)));
        let error = request.verify(&verifier, NOW).unwrap_err();
        assert_eq!(
            (error.code(), error.http_status()),
            ("auth_components", 401),
            "{left_out}"
        );
        assert!(error.to_string().contains(left_out), "{error}");
    }
}

#[test]
fn content_digest_must_be_covered_when_there_is_a_body() {
    let verifier = verifier();
    let k = key(1);
    // Signed as bodyless (no content-digest), but the request has a body.
    let mut request = by_hand(&k, &REQUIRED, &standard_params(&k, &nonce(1)));
    request.has_body = true;
    request.set(
        "content-digest",
        &hygeia_auth::content_digest_header(&sha256(b"x")),
    );
    let error = request.verify(&verifier, NOW).unwrap_err();
    assert_eq!(error.code(), "auth_components");
    assert!(error.to_string().contains("content-digest"), "{error}");
}

#[test]
fn content_digest_header_missing_or_malformed() {
    let verifier = verifier();
    let signed = Request::signed(Method::PUT, TARGET, Some(b"body"), &key(1), NOW, &nonce(1));

    let mut missing = signed.clone();
    missing.headers.remove("content-digest");
    let error = missing.verify(&verifier, NOW).unwrap_err();
    assert_eq!(
        (error.code(), error.http_status()),
        ("digest_mismatch", 400)
    );

    let mut malformed = signed.clone();
    malformed.set("content-digest", "sha-256=:AAAA:");
    assert_eq!(malformed.code(&verifier, NOW), "digest_mismatch");

    // A different, well-formed digest breaks the signature.
    let mut other = signed.clone();
    other.set(
        "content-digest",
        &hygeia_auth::content_digest_header(&sha256(b"other")),
    );
    assert_eq!(other.code(&verifier, NOW), "auth_bad_signature");

    assert_eq!(signed.code(&verifier, NOW), "ok");
}

#[test]
fn keyid_of_another_did_does_not_verify() {
    let verifier = verifier();
    let signer = key(1);
    let other = key(2);
    let request = by_hand(&signer, &REQUIRED, &standard_params(&other, &nonce(1)));
    let error = request.verify(&verifier, NOW).unwrap_err();
    assert_eq!(
        (error.code(), error.http_status()),
        ("auth_bad_signature", 401)
    );
}

#[test]
fn tampered_method_path_or_query_does_not_verify() {
    let verifier = verifier();
    let base = Request::signed(
        Method::GET,
        "/v1/records/1?view=full",
        None,
        &key(1),
        NOW,
        &nonce(1),
    );
    let mut method = base.clone();
    method.method = Method::DELETE;
    let mut path = base.clone();
    path.path = "/v1/records/2".into();
    let mut query = base.clone();
    query.query = Some("view=summary".into());
    let mut no_query = base.clone();
    no_query.query = None;
    for (what, request) in [
        ("method", method),
        ("path", path),
        ("query", query),
        ("no query", no_query),
    ] {
        assert_eq!(request.code(&verifier, NOW), "auth_bad_signature", "{what}");
    }
    assert_eq!(base.code(&verifier, NOW), "ok");
}

#[test]
fn created_must_be_within_the_window_and_after_start() {
    let verifier = verifier();
    let window = DEFAULT_WINDOW.as_secs();
    let cases = [
        (NOW - window - 1, "auth_expired"),
        (NOW - window, "ok"),
        (NOW + 31, "auth_expired"),
        (NOW + 30, "ok"),
        (NOW, "ok"),
    ];
    for (i, (created, code)) in cases.into_iter().enumerate() {
        let request = get(created, &nonce(i as u32));
        assert_eq!(request.code(&verifier, NOW), code, "created {created}");
    }
    let error = get(NOW - window - 1, &nonce(99))
        .verify(&verifier, NOW)
        .unwrap_err();
    assert_eq!(error.http_status(), 401);

    // Signed before the node started, though within the window.
    let verifier = Verifier::new(DEFAULT_WINDOW, START);
    assert_eq!(
        get(START - 1, &nonce(100)).code(&verifier, START + 10),
        "auth_expired"
    );
    assert_eq!(get(START, &nonce(101)).code(&verifier, START + 10), "ok");
}

#[test]
fn expires_must_be_in_the_future() {
    let verifier = verifier();
    let k = key(1);
    let params = |expires: u64, n: u32| {
        format!(
            ";created={NOW};expires={expires};nonce=\"{}\";keyid=\"{}\"",
            nonce(n),
            k.did()
        )
    };
    assert_eq!(
        by_hand(&k, &REQUIRED, &params(NOW - 1, 1)).code(&verifier, NOW),
        "auth_expired"
    );
    assert_eq!(
        by_hand(&k, &REQUIRED, &params(NOW, 2)).code(&verifier, NOW),
        "auth_expired"
    );
    assert_eq!(
        by_hand(&k, &REQUIRED, &params(NOW + 60, 3)).code(&verifier, NOW),
        "ok"
    );
}

#[test]
fn a_nonce_is_used_once_per_key() {
    let verifier = verifier();
    let request = get(NOW, &nonce(1));
    assert_eq!(request.code(&verifier, NOW), "ok");
    let error = request.verify(&verifier, NOW + 1).unwrap_err();
    assert_eq!((error.code(), error.http_status()), ("auth_replay", 401));
    // Re-signed with the same nonce, even for another target: still a replay.
    let again = Request::signed(Method::GET, "/v1/other", None, &key(1), NOW, &nonce(1));
    assert_eq!(again.code(&verifier, NOW + 2), "auth_replay");
    // Another key may use the same nonce.
    let other = Request::signed(Method::GET, TARGET, None, &key(2), NOW, &nonce(1));
    assert_eq!(other.code(&verifier, NOW + 2), "ok");
}

#[test]
fn a_forged_signature_does_not_burn_the_nonce() {
    let verifier = verifier();
    let genuine = get(NOW, &nonce(1));
    // The attacker reuses the genuine Signature-Input (and its nonce) with
    // a signature of its own.
    let mut forged = genuine.clone();
    let forger = by_hand(&key(7), &REQUIRED, &standard_params(&key(1), &nonce(1)));
    forged.set("signature", forger.headers["signature"].to_str().unwrap());
    assert_eq!(forged.code(&verifier, NOW), "auth_bad_signature");
    // The same with a tampered path.
    let mut tampered = genuine.clone();
    tampered.path = "/v1/records/2".into();
    assert_eq!(tampered.code(&verifier, NOW), "auth_bad_signature");
    // The genuine request still goes through, once.
    assert_eq!(genuine.code(&verifier, NOW), "ok");
    assert_eq!(genuine.code(&verifier, NOW), "auth_replay");
}

#[test]
fn alg_other_than_ed25519_is_malformed() {
    let verifier = verifier();
    let k = key(1);
    for (n, alg) in ["rsa-pss-sha512", "hmac-sha256", "ED25519"]
        .into_iter()
        .enumerate()
    {
        let params = format!(
            ";created={NOW};nonce=\"{}\";alg=\"{alg}\";keyid=\"{}\"",
            nonce(n as u32),
            k.did()
        );
        let error = by_hand(&k, &REQUIRED, &params)
            .verify(&verifier, NOW)
            .unwrap_err();
        assert_eq!(error.code(), "auth_malformed", "{alg}");
        assert!(error.to_string().contains("ed25519"), "{error}");
    }
}

#[test]
fn keyid_must_be_an_ed25519_did_key() {
    let verifier = verifier();
    let k = key(1);
    for keyid in [
        "test-key-ed25519",
        "did:web:hospital.example",
        // An X25519 did:key (W3C CCG vectors).
        "did:key:z6LShs9GGnqk85isEBzzshkuVWrVKsRp24GnDuHk8QWkARMW",
        "did:key:zBad",
    ] {
        let params = format!(";created={NOW};nonce=\"{}\";keyid=\"{keyid}\"", nonce(1));
        let error = by_hand(&k, &REQUIRED, &params)
            .verify(&verifier, NOW)
            .unwrap_err();
        assert_eq!(error.code(), "auth_malformed", "{keyid}");
    }
}

#[test]
fn required_parameters_and_nonce_format() {
    let verifier = verifier();
    let k = key(1);
    let did = k.did();
    let cases = [
        ("no keyid", format!(";created={NOW};nonce=\"{}\"", nonce(1))),
        (
            "no created",
            format!(";nonce=\"{}\";keyid=\"{did}\"", nonce(1)),
        ),
        ("no nonce", format!(";created={NOW};keyid=\"{did}\"")),
        (
            "short nonce",
            format!(";created={NOW};nonce=\"abc\";keyid=\"{did}\""),
        ),
        (
            "nonce with a dot",
            format!(";created={NOW};nonce=\"aaaaaaaaaaaaaaaa.\";keyid=\"{did}\""),
        ),
        (
            "long nonce",
            format!(
                ";created={NOW};nonce=\"{}\";keyid=\"{did}\"",
                "a".repeat(129)
            ),
        ),
        (
            "token nonce",
            format!(";created={NOW};nonce=aaaaaaaaaaaaaaaaaaaa;keyid=\"{did}\""),
        ),
        (
            "string created",
            format!(";created=\"{NOW}\";nonce=\"{}\";keyid=\"{did}\"", nonce(1)),
        ),
        (
            "negative created",
            format!(";created=-1;nonce=\"{}\";keyid=\"{did}\"", nonce(1)),
        ),
        // Correctly signed, but in an order httpsig would not reproduce.
        (
            "keyid before nonce",
            format!(";created={NOW};keyid=\"{did}\";nonce=\"{}\"", nonce(1)),
        ),
        (
            "unknown parameter",
            format!(";created={NOW};nonce=\"{}\";keyid=\"{did}\";x=1", nonce(1)),
        ),
    ];
    for (what, params) in cases {
        let error = by_hand(&k, &REQUIRED, &params)
            .verify(&verifier, NOW)
            .unwrap_err();
        assert_eq!(error.code(), "auth_malformed", "{what}: {error}");
    }
    let longest = format!(
        ";created={NOW};nonce=\"{}\";keyid=\"{did}\"",
        "a".repeat(128)
    );
    assert_eq!(by_hand(&k, &REQUIRED, &longest).code(&verifier, NOW), "ok");
}

#[test]
fn unsupported_derived_components_are_refused() {
    let verifier = verifier();
    let k = key(1);
    let mut request = Request::new(Method::GET, TARGET, false);
    let params = format!(
        "(\"@method\" \"@path\" \"@query\" \"@authority\"){}",
        standard_params(&k, &nonce(1))
    );
    let lines = [
        "\"@method\": GET".to_string(),
        format!("\"@path\": {TARGET}"),
        "\"@query\": ?".to_string(),
        "\"@authority\": example.com".to_string(),
    ];
    sign_by_hand(&mut request, &k, "sig1", &params, &lines);
    assert_eq!(request.code(&verifier, NOW), "auth_components");
}
