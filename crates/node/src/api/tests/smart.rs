//! SMART on FHIR (docs/smart.md): discovery, the App Launch authorization
//! code flow with PKCE, and every bad input of it, from the app's, the
//! person's and a stranger's side. Each refusal has its RFC 6749 code and
//! changes nothing: no code, no token, no ledger entry.

use axum::body::Body;
use axum::http::{header, Method, Request};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hygeia_identity::Keypair;
use serde_json::json;
use sha2::Digest;

use super::{now, Answer, Net};

const REDIRECT: &str = "http://127.0.0.1:9/callback";
const AUD: &str = "http://localhost/fhir";
const VERIFIER: &str = "a-verifier-of-at-least-43-characters-0123456789";

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

fn smart_net() -> Net {
    Net::with_config(|config| {
        std::fs::create_dir_all(&config.data_dir).unwrap();
        std::fs::write(
            config.data_dir.join(crate::config::SMART_CLIENTS_FILE),
            json!({"clients": [
                {"client_id": "patient-app", "name": "Patient app", "redirect_uris": [REDIRECT], "purpose_of_use": "PATRQT"},
                {"client_id": "clinic-app", "name": "Clinic app", "redirect_uris": ["https://clinic.example/cb"], "purpose_of_use": "TREAT"},
            ]})
            .to_string(),
        )
        .unwrap();
    })
}

fn authorize_query(client: &str, scope: &str, extra: &[(&str, &str)]) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    let challenge = challenge(VERIFIER);
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", client),
        ("redirect_uri", REDIRECT),
        ("scope", scope),
        ("state", "st-1"),
        ("aud", AUD),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    for (name, value) in extra {
        pairs.retain(|(n, _)| n != name);
        pairs.push((name, value));
    }
    for (n, v) in pairs {
        if !v.is_empty() {
            form.append_pair(n, v);
        }
    }
    format!("/authorize?{}", form.finish())
}

fn location(answer: &Answer) -> String {
    answer
        .headers
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

impl Net {
    /// Starts an authorization and gives the consent page's request id.
    async fn begin(&self, scope: &str) -> String {
        let answer = self.get(&authorize_query("patient-app", scope, &[])).await;
        assert_eq!(answer.status, 302, "{}", answer.text());
        let to = location(&answer);
        to.strip_prefix("/app/#/authorize/")
            .unwrap_or_else(|| panic!("{to}"))
            .to_owned()
    }

    /// The person approves with their key: the redirect's code.
    async fn approve(&self, key: &Keypair, id: &str) -> String {
        let answer = self
            .signed(
                key,
                Method::POST,
                &format!("/v1/smart/requests/{id}/approve"),
                None,
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        let redirect = answer.json()["redirect"].as_str().unwrap().to_owned();
        assert!(redirect.starts_with(REDIRECT), "{redirect}");
        let q = query_of(&redirect);
        assert_eq!(q["state"], "st-1");
        q["code"].clone()
    }

    async fn exchange(&self, pairs: &[(&str, &str)]) -> Answer {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "authorization_code");
        for (n, v) in pairs {
            form.append_pair(n, v);
        }
        self.send(
            Request::post("/auth/token")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(form.finish()))
                .unwrap(),
        )
        .await
    }

    async fn redeem(&self, code: &str, verifier: &str) -> Answer {
        self.exchange(&[
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
            ("client_id", "patient-app"),
        ])
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_lists_what_works_at_the_root_and_the_fhir_base() {
    let net = smart_net();
    for path in [
        "/.well-known/smart-configuration",
        "/fhir/.well-known/smart-configuration",
    ] {
        let answer = net.get(path).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        let c = answer.json();
        assert_eq!(c["authorization_endpoint"], "http://localhost/authorize");
        assert_eq!(c["token_endpoint"], "http://localhost/auth/token");
        assert_eq!(c["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(
            c["grant_types_supported"],
            json!(["authorization_code", "client_credentials"])
        );
        assert_eq!(
            c["token_endpoint_auth_signing_alg_values_supported"],
            json!(["EdDSA", "ES384"])
        );
        let caps: Vec<&str> = c["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        assert!(caps.contains(&"launch-standalone") && caps.contains(&"client-public"));
        for absent in [
            "launch-ehr",
            "sso-openid-connect",
            "permission-offline",
            "authorize-post",
        ] {
            assert!(!caps.contains(&absent), "{absent} is not supported");
        }
        // Every listed scope parses and is enforced by the scope module.
        for scope in c["scopes_supported"].as_array().unwrap() {
            scope
                .as_str()
                .unwrap()
                .parse::<hygeia_auth::scope::Scopes>()
                .unwrap();
        }
    }
    // Another origin may read it, and preflight the FHIR API.
    let answer = net
        .send(
            Request::options("/fhir/Patient/p1")
                .header(header::ORIGIN, "http://127.0.0.1:9")
                .header("access-control-request-method", "GET")
                .header("access-control-request-headers", "authorization")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(answer.status < 300, "{} {}", answer.status, answer.text());
    assert_eq!(answer.headers["access-control-allow-origin"], "*");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_app_launch_reads_the_patients_own_data() {
    let net = smart_net();
    let patient = net.patient("p1", "Lovelace", "1815-12-10", "female").await;
    let id = net
        .begin("launch/patient openid patient/Patient.rs patient/Observation.rs")
        .await;
    let shown = net.get(&format!("/v1/smart/requests/{id}")).await;
    assert_eq!(shown.status, 200, "{}", shown.text());
    assert_eq!(shown.json()["client_name"], "Patient app");
    let code = net.approve(&patient.key, &id).await;
    let token = net.redeem(&code, VERIFIER).await;
    assert_eq!(token.status, 200, "{}", token.text());
    let t = token.json();
    assert_eq!(t["patient"], "p1", "the launch context");
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(
        t["scope"], "launch/patient patient/Patient.rs patient/Observation.rs",
        "openid is not granted: no id token"
    );
    assert_eq!(token.headers["cache-control"], "no-store");
    let access = t["access_token"].as_str().unwrap();
    let read = net
        .fhir(
            access,
            Method::GET,
            &format!("/fhir/Observation/{}", patient.observation),
            None,
        )
        .await;
    assert_eq!(read.status, 200, "{}", read.text());
    // Scopes still bound it: no writes.
    let write = net
        .fhir(
            access,
            Method::DELETE,
            &format!("/fhir/Observation/{}", patient.observation),
            None,
        )
        .await;
    assert_eq!(write.status, 403, "{}", write.text());
    // The request was decided once: approving again finds nothing.
    let again = net
        .signed(
            &patient.key,
            Method::POST,
            &format!("/v1/smart/requests/{id}/approve"),
            None,
        )
        .await;
    assert_eq!(again.status, 404);
    assert_eq!(again.code(), "smart.unknown_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_wider_than_consent_give_a_token_whose_reads_consent_denies() {
    let net = smart_net();
    let patient = net.patient("p1", "Lovelace", "1815-12-10", "female").await;
    let clinician = Keypair::generate();
    let id = net.begin("user/*.cruds").await;
    let code = net.approve(&clinician, &id).await;
    let token = net.redeem(&code, VERIFIER).await;
    assert_eq!(token.status, 200, "{}", token.text());
    assert!(
        token.json().get("patient").is_none(),
        "no launch/patient asked"
    );
    let access = token.json()["access_token"].as_str().unwrap().to_owned();
    let size = net.size();
    let read = net
        .fhir(
            &access,
            Method::GET,
            &format!("/fhir/Observation/{}", patient.observation),
            None,
        )
        .await;
    assert_eq!(
        read.status,
        404,
        "consent denies what the scope allows: {}",
        read.text()
    );
    assert_eq!(net.size(), size + 1, "the deny is decided and logged");
    let audit = net
        .fhir(
            &patient.token,
            Method::GET,
            "/fhir/AuditEvent?patient=Patient/p1",
            None,
        )
        .await;
    assert!(
        audit.text().contains(&clinician.did().to_string()),
        "{}",
        audit.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_codes_verifiers_and_clients_are_refused_and_change_nothing() {
    let net = smart_net();
    let patient = net.patient("p1", "Lovelace", "1815-12-10", "female").await;
    let id = net.begin("patient/*.rs").await;
    let code = net.approve(&patient.key, &id).await;
    let size = net.size();
    let tokens = net.node.tokens.len();

    let wrong = "another-verifier-of-at-least-43-characters-0123";
    // (form, status, error, what the description says)
    type Case<'a> = (Vec<(&'a str, &'a str)>, u16, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", wrong),
                ("client_id", "patient-app"),
            ],
            400,
            "invalid_grant",
            "does not match",
        ),
        (
            vec![
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("client_id", "patient-app"),
            ],
            400,
            "invalid_request",
            "code_verifier is required",
        ),
        (
            vec![
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", "short"),
                ("client_id", "patient-app"),
            ],
            400,
            "invalid_grant",
            "43 to 128",
        ),
        (
            vec![
                ("code", &code),
                ("redirect_uri", "https://clinic.example/cb"),
                ("code_verifier", VERIFIER),
                ("client_id", "patient-app"),
            ],
            400,
            "invalid_grant",
            "redirect_uri",
        ),
        (
            vec![
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
                ("client_id", "clinic-app"),
            ],
            400,
            "invalid_grant",
            "another client",
        ),
        (
            vec![
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
                ("client_id", "stranger-app"),
            ],
            401,
            "invalid_client",
            "no client",
        ),
        (
            vec![
                ("code", "made-up"),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
                ("client_id", "patient-app"),
            ],
            400,
            "invalid_grant",
            "unknown or expired",
        ),
        (
            vec![
                ("code", &code),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
                ("client_id", "patient-app"),
            ],
            400,
            "invalid_request",
            "more than once",
        ),
    ];
    for (pairs, status, error, says) in cases {
        let answer = net.exchange(&pairs).await;
        assert_eq!(answer.status, status, "{pairs:?}: {}", answer.text());
        assert_eq!(answer.json()["error"], error, "{pairs:?}");
        let description = answer.json()["error_description"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(description.contains(says), "{description}");
        assert_eq!(net.node.tokens.len(), tokens, "no token");
    }
    assert_eq!(net.size(), size, "nothing on the ledger");

    // The rightful client still redeems it, once.
    let first = net.redeem(&code, VERIFIER).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let access = first.json()["access_token"].as_str().unwrap().to_owned();
    let obs = format!("/fhir/Observation/{}", patient.observation);
    assert_eq!(net.fhir(&access, Method::GET, &obs, None).await.status, 200);
    // A reused code is refused and revokes the token it gave.
    let reused = net.redeem(&code, VERIFIER).await;
    assert_eq!(reused.status, 400);
    assert_eq!(reused.json()["error"], "invalid_grant");
    let revoked = net.fhir(&access, Method::GET, &obs, None).await;
    assert_eq!(revoked.status, 401, "{}", revoked.text());
    assert!(revoked.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));

    // An expired code.
    let approval = hygeia_auth::smart::Approval {
        client_id: "patient-app".into(),
        redirect_uri: REDIRECT.into(),
        code_challenge: challenge(VERIFIER),
        did: patient.key.did().to_string(),
        scope: "patient/*.rs".parse().unwrap(),
        patient: None,
        purpose: "PATRQT".into(),
        expires_at: now() - 1,
    };
    let old = net
        .node
        .authorizations
        .issue_code(approval, now() - 61)
        .unwrap();
    let expired = net.redeem(&old, VERIFIER).await;
    assert_eq!(expired.json()["error"], "invalid_grant");
    assert!(expired.text().contains("expired"));

    // An expired token.
    let stale = net.node.tokens.issue(hygeia_auth::token::Session {
        did: patient.key.did().to_string(),
        purpose: "PATRQT".into(),
        break_glass: None,
        expires_at: now() - 1,
        scope: "patient/*.rs".parse().unwrap(),
    });
    assert_eq!(net.fhir(&stale, Method::GET, &obs, None).await.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_authorization_requests_are_answered_or_redirected_with_their_codes() {
    let net = smart_net();
    let (pending, ..) = net.node.authorizations.counts();
    // Errors about the client or the redirect URI are never redirected.
    for (query, status, error) in [
        (
            authorize_query("stranger-app", "patient/*.rs", &[]),
            401,
            "invalid_client",
        ),
        (
            authorize_query(
                "patient-app",
                "patient/*.rs",
                &[("redirect_uri", "http://127.0.0.1:9/elsewhere")],
            ),
            400,
            "invalid_request",
        ),
        (
            authorize_query(
                "patient-app",
                "patient/*.rs",
                &[("redirect_uri", "https://clinic.example/cb")],
            ),
            400,
            "invalid_request",
        ),
        (
            authorize_query("patient-app", "patient/*.rs", &[("redirect_uri", "")]),
            400,
            "invalid_request",
        ),
        (
            authorize_query("patient-app", "patient/*.rs", &[("client_id", "")]),
            400,
            "invalid_request",
        ),
    ] {
        let answer = net.get(&query).await;
        assert_eq!(answer.status, status, "{query}: {}", answer.text());
        assert_eq!(answer.json()["error"], error, "{query}");
        assert!(answer.headers.get(header::LOCATION).is_none());
    }
    // The others go back to the app with `error` and `state`.
    let plain = challenge(VERIFIER);
    for (extra, error) in [
        (
            vec![
                ("code_challenge_method", "plain"),
                ("code_challenge", VERIFIER),
            ],
            "invalid_request",
        ),
        (vec![("code_challenge_method", "")], "invalid_request"),
        (vec![("code_challenge", "")], "invalid_request"),
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (
            vec![("scope", "patient/Observation.rs?category=laboratory")],
            "invalid_scope",
        ),
        (vec![("scope", "nonsense")], "invalid_scope"),
        (
            vec![("aud", "https://elsewhere.example/fhir")],
            "invalid_request",
        ),
        (
            vec![
                ("code_challenge", plain.as_str()),
                ("state", "st-1"),
                ("response_type", "code"),
                ("aud", ""),
            ],
            "invalid_request",
        ),
    ] {
        let answer = net
            .get(&authorize_query("patient-app", "patient/*.rs", &extra))
            .await;
        assert_eq!(answer.status, 302, "{extra:?}: {}", answer.text());
        let to = location(&answer);
        assert!(to.starts_with(REDIRECT), "{to}");
        let q = query_of(&to);
        assert_eq!(q["error"], error, "{extra:?}");
        assert_eq!(q["state"], "st-1");
        assert!(!q.contains_key("code"));
    }
    assert_eq!(
        net.node.authorizations.counts().0,
        pending,
        "no request kept"
    );

    // Deciding needs the person's signature; a stranger's unsigned call,
    // or a made-up id, changes nothing.
    let id = net.begin("patient/*.rs").await;
    let unsigned = net
        .send(
            Request::post(format!("/v1/smart/requests/{id}/approve"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(unsigned.status, 401, "{}", unsigned.text());
    assert_eq!(unsigned.code(), "auth_missing");
    let person = Keypair::generate();
    let made_up = net
        .signed(
            &person,
            Method::POST,
            "/v1/smart/requests/made-up/approve",
            None,
        )
        .await;
    assert_eq!(made_up.status, 404);
    assert!(
        net.get(&format!("/v1/smart/requests/{id}")).await.status == 200,
        "still waiting"
    );
    // Declining sends the app access_denied, with its state, and no code.
    let denied = net
        .signed(
            &person,
            Method::POST,
            &format!("/v1/smart/requests/{id}/deny"),
            None,
        )
        .await;
    assert_eq!(denied.status, 200, "{}", denied.text());
    let q = query_of(denied.json()["redirect"].as_str().unwrap());
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "st-1");
    assert!(!q.contains_key("code"));
    assert_eq!(net.node.authorizations.counts().1, 0, "no code");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_retired_after_approval_gets_no_token() {
    use crate::state::txs::IdentityRotate;
    let net = smart_net();
    let patient = Keypair::generate();
    let recovery = Keypair::generate();
    net.submit_ok(
        &patient,
        "identity.recovery",
        json!({"recovery_key": recovery.did().to_string(), "threshold": 2,
               "guardians": ["did:key:g1", "did:key:g2"], "split": "00".repeat(32)}),
    )
    .await;
    let id = net.begin("patient/*.rs").await;
    let code = net.approve(&patient, &id).await;
    let new_key = Keypair::generate();
    let rotate = IdentityRotate::accepted_by(&patient.did().to_string(), &new_key);
    net.submit_ok(
        &recovery,
        "identity.rotate",
        serde_json::to_value(rotate).unwrap(),
    )
    .await;
    let refused = net.redeem(&code, VERIFIER).await;
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert_eq!(refused.json()["error"], "invalid_grant");
    assert!(
        refused.text().contains("identity.key_retired"),
        "{}",
        refused.text()
    );
}

/// `/authorize` is public: one source cannot fill the table of requests
/// waiting for a decision and lock other people out of their apps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_source_cannot_lock_others_out_of_authorization() {
    use crate::server::PeerAddr;
    use hygeia_auth::smart::MAX_PENDING_PER_SOURCE;
    let net = smart_net();
    let from = |ip: &str| {
        let mut request =
            axum::http::Request::get(authorize_query("patient-app", "patient/*.rs", &[]))
                .body(axum::body::Body::empty())
                .unwrap();
        request
            .extensions_mut()
            .insert(PeerAddr(ip.parse().unwrap()));
        request
    };
    for _ in 0..MAX_PENDING_PER_SOURCE {
        let answer = net.send(from("203.0.113.9")).await;
        assert!(location(&answer).starts_with("/app/#/authorize/"));
    }
    let refused = net.send(from("203.0.113.9")).await;
    assert_eq!(refused.status, 302, "{}", refused.text());
    let q = query_of(&location(&refused));
    assert_eq!(q["error"], "temporarily_unavailable");
    assert_eq!(q["state"], "st-1");
    assert_eq!(net.node.authorizations.counts().0, MAX_PENDING_PER_SOURCE);
    // Another address still gets its consent page.
    let answer = net.send(from("198.51.100.20")).await;
    assert!(location(&answer).starts_with("/app/#/authorize/"));
}

/// A fresh key approving its own requests cannot hoard the codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_key_cannot_hoard_authorization_codes() {
    use hygeia_auth::smart::MAX_CODES_PER_KEY;
    let net = smart_net();
    let stranger = Keypair::generate();
    for _ in 0..MAX_CODES_PER_KEY {
        let id = net.begin("patient/*.rs").await;
        net.approve(&stranger, &id).await;
    }
    let id = net.begin("patient/*.rs").await;
    let refused = net
        .signed(
            &stranger,
            Method::POST,
            &format!("/v1/smart/requests/{id}/approve"),
            None,
        )
        .await;
    assert_eq!(refused.status, 429, "{}", refused.text());
    assert_eq!(refused.json()["error"]["code"], "smart.too_many_codes");
    assert_eq!(net.node.authorizations.counts().1, MAX_CODES_PER_KEY);
}

#[test]
fn a_bad_clients_file_stops_the_node_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join(crate::config::SMART_CLIENTS_FILE),
        r#"{"clients":[{"client_id":"a","name":"A","redirect_uris":["http://evil.example/cb"]}]}"#,
    )
    .unwrap();
    let config =
        crate::NodeConfig::new(data, "127.0.0.1:0".parse().unwrap(), super::NETWORK.into());
    let error = crate::node::Node::open(config).err().expect("refused");
    assert!(error.to_string().contains("loopback"), "{error}");
    let _ = now();
}

/// A client-credentials token request with `assertion`.
async fn backend_token(net: &Net, assertion: &str) -> Answer {
    form_token(
        net,
        &[("client_assertion", assertion), ("scope", "system/*.rs")],
    )
    .await
}

/// SMART Backend Services: the assertion's `aud` is the token endpoint
/// URL. The node accepts it when its public URL is configured (and its DID
/// always); a URL taken from the request's `Host` is never an audience, so
/// an assertion made for another node cannot be spent here. Each refusal
/// is `invalid_client` and issues no token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_assertions_name_the_token_endpoint_url_or_the_node_did() {
    use hygeia_auth::token::client_assertion;
    let public = Net::with_config(|config| {
        config.public_url = Some("https://node.example".into());
    });
    let key = Keypair::generate();
    let url = "https://node.example/auth/token";
    let answer = public.get("/.well-known/smart-configuration").await.json();
    assert_eq!(answer["token_endpoint"], url);

    let ok = backend_token(&public, &client_assertion(&key, url, now(), 120)).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.json()["scope"], "system/*.rs");
    let ok = backend_token(
        &public,
        &client_assertion(&key, &public.node.node_did, now(), 120),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    let issued = public.node.tokens.len();

    let refused = |answer: Answer, what: &str| {
        assert_eq!(answer.status, 401, "{what}: {}", answer.text());
        assert_eq!(answer.json()["error"], "invalid_client", "{what}");
        assert_eq!(answer.headers[header::CACHE_CONTROL], "no-store", "{what}");
        answer.json()["error_description"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    // Another node's token endpoint, the URL with a trailing slash, the
    // FHIR base: wrong audiences.
    for aud in [
        "https://other.example/auth/token",
        "https://node.example/auth/token/",
        "https://node.example/fhir",
    ] {
        let why = refused(
            backend_token(&public, &client_assertion(&key, aud, now(), 120)).await,
            aud,
        );
        assert!(why.contains(url) && why.contains("aud"), "{why}");
    }
    // Expired (beyond the minute of skew), and a replayed jti.
    let old = client_assertion(&key, url, now() - 600, 120);
    let why = refused(backend_token(&public, &old).await, "expired");
    assert!(why.contains("expired"), "{why}");
    let once = client_assertion(&key, url, now(), 120);
    assert_eq!(backend_token(&public, &once).await.status, 200);
    let issued = issued + 1;
    let why = refused(backend_token(&public, &once).await, "replayed");
    assert!(why.contains("jti"), "{why}");
    assert_eq!(
        public.node.tokens.len(),
        issued,
        "no refusal issued a token"
    );

    // Without a configured public URL, the URL the request's Host gives is
    // no audience: only the node's DID is.
    let net = smart_net();
    let why = refused(
        backend_token(
            &net,
            &client_assertion(&key, "http://localhost/auth/token", now(), 120),
        )
        .await,
        "Host-derived URL",
    );
    assert!(why.contains(&net.node.node_did), "{why}");
    assert!(net.node.tokens.is_empty());
    let ok = backend_token(
        &net,
        &client_assertion(&key, &net.node.node_did, now(), 120),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
}

/// A backend service's P-384 key, its public JWK and an ES384 assertion
/// signed with it: what any JOSE library sends (the Python one in
/// docs/examples/smart_backend_client.py does the same).
mod es384 {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use p384::ecdsa::signature::Signer;
    use p384::ecdsa::{Signature, SigningKey};
    use serde_json::{json, Value};

    pub fn key(seed: u8) -> SigningKey {
        SigningKey::from_slice(&[seed; 48]).unwrap()
    }

    pub fn jwk(key: &SigningKey) -> Value {
        let point = key.verifying_key().to_sec1_bytes();
        json!({"kty": "EC", "crv": "P-384", "kid": "sync-1",
               "x": URL_SAFE_NO_PAD.encode(&point[1..49]),
               "y": URL_SAFE_NO_PAD.encode(&point[49..])})
    }

    pub fn assertion(key: &SigningKey, client_id: &str, aud: &str, jti: &str) -> String {
        let header = json!({"alg": "ES384", "typ": "JWT", "kid": "sync-1"});
        let claims = json!({"iss": client_id, "sub": client_id, "aud": aud,
                            "exp": super::now() + 120, "jti": jti});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature: Signature = key.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }
}

fn backend_net(acting: &Keypair, purpose: &str) -> Net {
    let mut entry = hygeia_auth::smart_backend::bind(
        acting,
        "lab-sync",
        "Lab results sync",
        &es384::jwk(&es384::key(1)),
    )
    .unwrap();
    entry["purpose_of_use"] = purpose.into();
    Net::with_config(move |config| {
        std::fs::create_dir_all(&config.data_dir).unwrap();
        std::fs::write(
            config.data_dir.join(crate::config::SMART_CLIENTS_FILE),
            json!({"backend_clients": [entry]}).to_string(),
        )
        .unwrap();
    })
}

async fn form_token(net: &Net, pairs: &[(&str, &str)]) -> Answer {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "client_credentials")
        .append_pair(
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        );
    for (n, v) in pairs {
        form.append_pair(n, v);
    }
    net.send(
        Request::post("/auth/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form.finish()))
            .unwrap(),
    )
    .await
}

/// SMART Backend Services with a registered ES384 key (the profile's
/// required algorithm): the token acts as the did:key that signed the
/// registration, states its registered purpose, and every bad assertion or
/// request is refused with its code and issues no token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_es384_backend_client_gets_a_token_acting_as_its_bound_key() {
    let acting = Keypair::generate();
    let net = backend_net(&acting, "TREAT");
    let aud = net.node.node_did.clone();
    let key = es384::key(1);

    let ok = form_token(
        &net,
        &[
            (
                "client_assertion",
                &es384::assertion(&key, "lab-sync", &aud, "j1"),
            ),
            ("scope", "system/Observation.rs"),
        ],
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.json()["scope"], "system/Observation.rs");
    let token = ok.json()["access_token"].as_str().unwrap().to_owned();
    let session = net.node.tokens.lookup(&token, now()).unwrap();
    assert_eq!(session.did, acting.did().as_str());
    assert_eq!(session.purpose, "TREAT");
    let issued = net.node.tokens.len();

    let refused = |answer: &Answer, status: u16, code: &str, what: &str| {
        assert_eq!(answer.status, status, "{what}: {}", answer.text());
        assert_eq!(answer.json()["error"], code, "{what}");
    };
    // Replayed; signed by another P-384 key; an unregistered client id.
    let replay = es384::assertion(&key, "lab-sync", &aud, "j1");
    refused(
        &form_token(&net, &[("client_assertion", &replay)]).await,
        401,
        "invalid_client",
        "replay",
    );
    let forged = es384::assertion(&es384::key(2), "lab-sync", &aud, "j2");
    refused(
        &form_token(&net, &[("client_assertion", &forged)]).await,
        401,
        "invalid_client",
        "forged",
    );
    let unknown = es384::assertion(&key, "other-sync", &aud, "j3");
    refused(
        &form_token(&net, &[("client_assertion", &unknown)]).await,
        401,
        "invalid_client",
        "unknown",
    );
    // A machine does not break glass, nor state another purpose.
    let a = es384::assertion(&key, "lab-sync", &aud, "j4");
    refused(
        &form_token(&net, &[("client_assertion", &a), ("break_glass", "urgent")]).await,
        400,
        "invalid_request",
        "break glass",
    );
    let a = es384::assertion(&key, "lab-sync", &aud, "j5");
    refused(
        &form_token(
            &net,
            &[("client_assertion", &a), ("purpose_of_use", "HRESCH")],
        )
        .await,
        400,
        "invalid_request",
        "purpose",
    );
    let a = es384::assertion(&key, "lab-sync", &aud, "j6");
    refused(
        &form_token(&net, &[("client_assertion", &a), ("client_id", "other")]).await,
        401,
        "invalid_client",
        "client_id",
    );
    assert_eq!(net.node.tokens.len(), issued, "no refusal issued a token");
}

/// The acting key retired (rotated by recovery): the registration it
/// signed gives no token any more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_client_bound_to_a_retired_key_gets_no_token() {
    use crate::state::txs::IdentityRotate;
    let acting = Keypair::generate();
    let recovery = Keypair::generate();
    let net = backend_net(&acting, "TREAT");
    let aud = net.node.node_did.clone();
    net.submit_ok(
        &acting,
        "identity.recovery",
        json!({"recovery_key": recovery.did().to_string(), "threshold": 2,
               "guardians": ["did:key:g1", "did:key:g2"], "split": "00".repeat(32)}),
    )
    .await;
    let new_key = Keypair::generate();
    let rotate = IdentityRotate::accepted_by(&acting.did().to_string(), &new_key);
    net.submit_ok(
        &recovery,
        "identity.rotate",
        serde_json::to_value(rotate).unwrap(),
    )
    .await;
    let a = es384::assertion(&es384::key(1), "lab-sync", &aud, "r1");
    let refused = form_token(&net, &[("client_assertion", &a)]).await;
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert_eq!(refused.json()["error"], "identity.key_retired");
}

/// A registration whose binding another key signed stops the node with a
/// message naming the fix: the operator cannot make a service act as
/// someone who did not sign.
#[test]
fn a_backend_registration_not_signed_by_its_acting_key_stops_the_node() {
    let signer = Keypair::generate();
    let victim = Keypair::generate();
    let mut entry = hygeia_auth::smart_backend::bind(
        &signer,
        "lab-sync",
        "Lab sync",
        &es384::jwk(&es384::key(1)),
    )
    .unwrap();
    entry["acts_as"] = victim.did().as_str().into();
    let text = json!({"backend_clients": [entry]}).to_string();
    let e = hygeia_auth::smart::Clients::from_json(text.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("does not verify"), "{e}");
    assert!(e.to_string().contains("bind-client"), "{e}");
}
