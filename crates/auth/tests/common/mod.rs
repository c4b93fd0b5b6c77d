//! Helpers shared by the integration tests.

#![allow(dead_code)]

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::{HeaderMap, HeaderValue, Method};
use hygeia_auth::{sign_request, AuthError, Authenticated, RequestHead, Verifier, DEFAULT_WINDOW};
use hygeia_identity::Keypair;

/// The node started at this time in the tests.
pub const START: u64 = 1_767_225_600;
/// Requests are verified at this time unless a test says otherwise.
pub const NOW: u64 = START + 1_000;

pub fn key(n: u8) -> Keypair {
    Keypair::from_seed(&[n; 32])
}

pub fn verifier() -> Verifier {
    Verifier::new(DEFAULT_WINDOW, START)
}

/// A request as a server sees it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub has_body: bool,
}

impl Request {
    pub fn new(method: Method, target: &str, has_body: bool) -> Self {
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_string(), Some(q.to_string())),
            None => (target.to_string(), None),
        };
        Request {
            method,
            path,
            query,
            headers: HeaderMap::new(),
            has_body,
        }
    }

    /// This request, signed by `key` at `created` with `nonce`.
    pub fn signed(
        method: Method,
        target: &str,
        body: Option<&[u8]>,
        key: &Keypair,
        created: u64,
        nonce: &str,
    ) -> Self {
        let mut request = Request::new(method, target, body.is_some());
        let sha = body.map(sha256);
        sign_request(key, &request.method, target, sha, created, nonce)
            .expect("sign")
            .apply(&mut request.headers)
            .expect("headers");
        request
    }

    pub fn head(&self) -> RequestHead<'_> {
        RequestHead {
            method: &self.method,
            path: &self.path,
            query: self.query.as_deref(),
            headers: &self.headers,
            has_body: self.has_body,
        }
    }

    pub fn verify(&self, verifier: &Verifier, now: u64) -> Result<Authenticated, AuthError> {
        verifier.verify(&self.head(), now)
    }

    pub fn code(&self, verifier: &Verifier, now: u64) -> &'static str {
        match self.verify(verifier, now) {
            Ok(_) => "ok",
            Err(e) => e.code(),
        }
    }

    pub fn set(&mut self, name: &'static str, value: &str) {
        self.headers
            .insert(name, HeaderValue::from_str(value).expect("header value"));
    }
}

pub fn sha256(body: &[u8]) -> [u8; 32] {
    let mut digest = hygeia_auth::BodyDigest::new();
    digest.update(body);
    digest.finish()
}

/// Signs by hand, independently of the crate's signer: `lines` are the
/// component lines of the signature base (`"name": value`), `params` the
/// inner list written into `Signature-Input` under `label`.
pub fn sign_by_hand(
    request: &mut Request,
    key: &Keypair,
    label: &str,
    params: &str,
    lines: &[String],
) {
    let mut base = String::new();
    for line in lines {
        base.push_str(line);
        base.push('\n');
    }
    base.push_str("\"@signature-params\": ");
    base.push_str(params);
    let signature = key.sign(base.as_bytes());
    let input = format!("{label}={params}");
    let signature = format!("{label}=:{}:", STANDARD.encode(signature.to_bytes()));
    request.set("signature-input", &input);
    request.set("signature", &signature);
}

pub fn nonce(n: u32) -> String {
    format!("test-nonce-{n:08}")
}
