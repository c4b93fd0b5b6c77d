//! The client side: the headers that authenticate a request.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use http::{HeaderMap, HeaderValue, Method};
use httpsig::prelude::HttpSignatureParams;
use hygeia_identity::Keypair;
use rand::rngs::OsRng;
use rand::RngCore;

use crate::base::{required_components, signature_base, RequestHead, CONTENT_DIGEST};
use crate::digest::content_digest_header;
use crate::error::AuthError;
use crate::nonce::check_nonce;

/// The label [`sign_request`] gives its signature. Verifiers accept any.
pub const SIGNATURE_LABEL: &str = "sig1";

/// The headers to add to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// The `Signature-Input` header value.
    pub signature_input: String,
    /// The `Signature` header value.
    pub signature: String,
    /// The `Content-Digest` header value, for a request with a body.
    pub content_digest: Option<String>,
}

impl SignedHeaders {
    /// Adds the headers to `headers`, replacing any earlier ones.
    pub fn apply(&self, headers: &mut HeaderMap) -> Result<(), AuthError> {
        let value = |text: &str| {
            HeaderValue::from_str(text)
                .map_err(|_| AuthError::malformed("signature header is not a valid header value"))
        };
        headers.insert("signature-input", value(&self.signature_input)?);
        headers.insert("signature", value(&self.signature)?);
        if let Some(digest) = &self.content_digest {
            headers.insert(CONTENT_DIGEST, value(digest)?);
        }
        Ok(())
    }
}

/// Signs a request: covers `@method`, `@path`, `@query` and, when
/// `body_sha256` is given (the request has a body), `content-digest`, with
/// `created`, `nonce` and `keyid` = the key's `did:key`.
///
/// `path_and_query` is the request target as sent (`/v1/x?a=1`).
/// Refuses a nonce outside the scheme's format ([`random_nonce`] makes
/// good ones) and a target that is not an absolute, percent-encoded path.
pub fn sign_request(
    key: &Keypair,
    method: &Method,
    path_and_query: &str,
    body_sha256: Option<[u8; 32]>,
    created: u64,
    nonce: &str,
) -> Result<SignedHeaders, AuthError> {
    check_nonce(nonce)?;
    if path_and_query.contains('#') {
        return Err(AuthError::malformed(
            "the request target must not contain a fragment",
        ));
    }
    let (path, query) = match path_and_query.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path_and_query, None),
    };
    let content_digest = body_sha256.as_ref().map(content_digest_header);
    let mut headers = HeaderMap::new();
    if let Some(digest) = &content_digest {
        let value = HeaderValue::from_str(digest)
            .map_err(|_| AuthError::digest("Content-Digest is not a valid header value"))?;
        headers.insert(CONTENT_DIGEST, value);
    }
    let head = RequestHead {
        method,
        path,
        query,
        headers: &headers,
        has_body: body_sha256.is_some(),
    };
    let params = HttpSignatureParams {
        created: Some(created),
        nonce: Some(nonce.to_string()),
        keyid: Some(key.did().as_str().to_string()),
        covered_components: required_components(head.has_body)?,
        ..Default::default()
    };
    let base = signature_base(&head, &params)?;
    let signature = key.sign(base.as_bytes());
    Ok(SignedHeaders {
        signature_input: format!("{SIGNATURE_LABEL}={params}"),
        signature: format!(
            "{SIGNATURE_LABEL}=:{}:",
            STANDARD.encode(signature.to_bytes())
        ),
        content_digest,
    })
}

/// A fresh nonce: 128 random bits from the operating system, base64url
/// (22 characters).
pub fn random_nonce() -> String {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_nonces_are_valid_and_differ() {
        let a = random_nonce();
        let b = random_nonce();
        assert_eq!(a.len(), 22);
        assert!(check_nonce(&a).is_ok());
        assert_ne!(a, b);
    }

    #[test]
    fn refuses_bad_nonces_and_targets() {
        let key = Keypair::from_seed(&[1; 32]);
        let nonce = random_nonce();
        let sign = |target: &str, nonce: &str| {
            sign_request(&key, &Method::GET, target, None, 1, nonce).map_err(|e| e.code())
        };
        assert!(sign("/v1/x?a=1", &nonce).is_ok());
        assert_eq!(sign("/v1/x", "short"), Err("auth_malformed"));
        assert_eq!(
            sign("/v1/x", "bad\"nonce-with-quote"),
            Err("auth_malformed")
        );
        assert_eq!(sign("v1/x", &nonce), Err("auth_malformed"));
        assert_eq!(sign("/v1/x#frag", &nonce), Err("auth_malformed"));
        assert_eq!(sign("/v1/x y", &nonce), Err("auth_malformed"));
    }
}
