//! The worked example of docs/auth.md: rebuilt from the fixed key, verified,
//! and checked to be quoted verbatim in the document.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::{HeaderMap, Method};
use hygeia_auth::{sign_request, BodyDigest, RequestHead, Verifier, DEFAULT_WINDOW};
use hygeia_identity::{Keypair, Signature};

/// RFC 8032 section 7.1, TEST 1.
const SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const DID: &str = "did:key:z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw";
const CREATED: u64 = 1_767_225_600;

const GET_PATH: &str =
    "/v1/records/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const GET_NONCE: &str = "q9KXo1a2zT4vN8eB5wR7yU";
const GET_BASE: &str = r#""@method": GET
"@path": /v1/records/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
"@query": ?
"@signature-params": ("@method" "@path" "@query");created=1767225600;nonce="q9KXo1a2zT4vN8eB5wR7yU";keyid="did:key:z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw""#;
const GET_SIGNATURE_INPUT: &str = r#"sig1=("@method" "@path" "@query");created=1767225600;nonce="q9KXo1a2zT4vN8eB5wR7yU";keyid="did:key:z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw""#;
const GET_SIGNATURE: &str = "sig1=:z1Kz+wYQ1Ov+b4xl3UPOPnIt0nGdwy9siItl4MG5UD0Q1GX5ddOuaWPIYZ00p91Y4PZegrekzKBqVy+74CSvBg==:";

const POST_TARGET: &str = "/v1/records?dry_run=true";
const POST_BODY: &[u8] = br#"{"hello": "world"}"#;
const POST_NONCE: &str = "Yb2wM4tR8sK1pQ6zN0vJ3e";
const POST_CONTENT_DIGEST: &str = "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:";
const POST_BASE: &str = r#""@method": POST
"@path": /v1/records
"@query": ?dry_run=true
"content-digest": sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:
"@signature-params": ("@method" "@path" "@query" "content-digest");created=1767225600;nonce="Yb2wM4tR8sK1pQ6zN0vJ3e";keyid="did:key:z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw""#;
const POST_SIGNATURE_INPUT: &str = r#"sig1=("@method" "@path" "@query" "content-digest");created=1767225600;nonce="Yb2wM4tR8sK1pQ6zN0vJ3e";keyid="did:key:z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw""#;
const POST_SIGNATURE: &str = "sig1=:pprP/Qp/z6cGzWb2qh7HEaSnwxNDEwpFlZtEFlfF9Ho+QQYN2R22LanpB41/CLB5y7TNqcX7EbXtTRbQdHPOBw==:";

const DOC: &str = include_str!("../../../docs/auth.md");

fn key() -> Keypair {
    let mut seed = [0u8; 32];
    for (i, byte) in seed.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&SEED[2 * i..2 * i + 2], 16).unwrap();
    }
    Keypair::from_seed(&seed)
}

/// The signature header's value checked against the base by hand.
fn check_signature_over(base: &str, header: &str) {
    let b64 = header
        .strip_prefix("sig1=:")
        .unwrap()
        .strip_suffix(':')
        .unwrap();
    let signature = Signature::from_slice(&STANDARD.decode(b64).unwrap()).unwrap();
    assert!(key()
        .public_key()
        .verify(base.as_bytes(), &signature)
        .is_ok());
}

fn quoted(line: &str) {
    assert!(DOC.contains(line), "docs/auth.md must quote:\n{line}");
}

#[test]
fn get_example() {
    let key = key();
    assert_eq!(key.did().as_str(), DID);
    let signed = sign_request(&key, &Method::GET, GET_PATH, None, CREATED, GET_NONCE).unwrap();
    assert_eq!(signed.signature_input, GET_SIGNATURE_INPUT);
    assert_eq!(signed.signature, GET_SIGNATURE);
    assert_eq!(signed.content_digest, None);
    check_signature_over(GET_BASE, GET_SIGNATURE);

    let mut headers = HeaderMap::new();
    signed.apply(&mut headers).unwrap();
    let head = RequestHead {
        method: &Method::GET,
        path: GET_PATH,
        query: None,
        headers: &headers,
        has_body: false,
    };
    let auth = Verifier::new(DEFAULT_WINDOW, CREATED)
        .verify(&head, CREATED)
        .unwrap();
    assert_eq!(auth.did.as_str(), DID);

    quoted(SEED);
    quoted(DID);
    quoted(&format!("GET {GET_PATH}"));
    quoted(&format!("created={CREATED}"));
    quoted(&format!("nonce=\"{GET_NONCE}\""));
    quoted(&format!("```\n{GET_BASE}\n```"));
    quoted(&format!(
        "Signature-Input: {GET_SIGNATURE_INPUT}\nSignature: {GET_SIGNATURE}\n"
    ));
}

#[test]
fn post_example() {
    let key = key();
    let mut digest = BodyDigest::new();
    digest.update(POST_BODY);
    let sha = digest.finish();
    let signed = sign_request(
        &key,
        &Method::POST,
        POST_TARGET,
        Some(sha),
        CREATED,
        POST_NONCE,
    )
    .unwrap();
    assert_eq!(signed.content_digest.as_deref(), Some(POST_CONTENT_DIGEST));
    assert_eq!(signed.signature_input, POST_SIGNATURE_INPUT);
    assert_eq!(signed.signature, POST_SIGNATURE);
    check_signature_over(POST_BASE, POST_SIGNATURE);

    let mut headers = HeaderMap::new();
    signed.apply(&mut headers).unwrap();
    let head = RequestHead {
        method: &Method::POST,
        path: "/v1/records",
        query: Some("dry_run=true"),
        headers: &headers,
        has_body: true,
    };
    let auth = Verifier::new(DEFAULT_WINDOW, CREATED)
        .verify(&head, CREATED)
        .unwrap();
    assert!(auth.check_body(&sha).is_ok());

    quoted(&format!("POST {POST_TARGET}"));
    quoted(&format!("nonce=\"{POST_NONCE}\""));
    quoted(&format!("```\n{POST_BASE}\n```"));
    quoted(&format!(
        "Content-Digest: {POST_CONTENT_DIGEST}\nSignature-Input: {POST_SIGNATURE_INPUT}\nSignature: {POST_SIGNATURE}\n"
    ));
}
