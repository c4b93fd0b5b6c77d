//! The server side: checking a request's signature.

use std::sync::Mutex;
use std::time::Duration;

use http::HeaderMap;
use httpsig::prelude::message_component::{DerivedComponentName, HttpMessageComponentName};
use httpsig::prelude::{HttpSignatureHeaders, HttpSignatureParams};
use hygeia_identity::{Did, Signature};
use sfv::{BareItem, Dictionary, FieldType, ListEntry, Parser};

use crate::base::{component_id, required_components, signature_base, RequestHead, CONTENT_DIGEST};
use crate::digest::{empty_body_sha256, parse_content_digest};
use crate::error::AuthError;
use crate::nonce::{check_nonce, replay_key, ReplayCache};

/// How old a signature may be by default.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(300);

/// How far in the future `created` may be, for clients whose clock is ahead.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(30);

/// The only `alg` accepted, when it is given.
const ALG_ED25519: &str = "ed25519";

/// An authenticated request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// Who signed it.
    pub did: Did,
    /// The SHA-256 the body must have (from the signed `Content-Digest`),
    /// or `None` for a request without a body.
    pub body_sha256: Option<[u8; 32]>,
}

impl Authenticated {
    /// Checks the SHA-256 of the body the caller read against the signed
    /// `Content-Digest`. A request verified as having no body must have an
    /// empty one.
    pub fn check_body(&self, computed: &[u8; 32]) -> Result<(), AuthError> {
        let expected = self.body_sha256.unwrap_or_else(empty_body_sha256);
        if &expected == computed {
            Ok(())
        } else if self.body_sha256.is_none() {
            Err(AuthError::digest(
                "the request was signed as having no body but carries one: \
                 send Content-Digest and cover \"content-digest\" in the signature",
            ))
        } else {
            Err(AuthError::digest(
                "the body does not match its Content-Digest: compute sha-256 over the exact \
                 body bytes sent (after any content coding)",
            ))
        }
    }
}

/// Checks signed requests and remembers their nonces.
///
/// One verifier is shared by all of a node's request handlers.
#[derive(Debug)]
pub struct Verifier {
    window: u64,
    started_at: u64,
    nonces: Mutex<ReplayCache>,
}

impl Verifier {
    /// A verifier accepting signatures created up to `window` ago (and up
    /// to [`MAX_CLOCK_SKEW`] ahead), but none created before `started_at`
    /// (Unix seconds): nonces seen before then are not known.
    pub fn new(window: Duration, started_at: u64) -> Self {
        let window = window.as_secs();
        // A signature is acceptable for `window + skew` seconds, so its
        // nonce must be remembered at least that long.
        let period = window.saturating_add(MAX_CLOCK_SKEW.as_secs());
        Verifier {
            window,
            started_at,
            nonces: Mutex::new(ReplayCache::new(period, started_at)),
        }
    }

    /// Authenticates a request at time `now` (Unix seconds).
    ///
    /// On success the nonce is recorded; for a request with a body, the
    /// caller must then hash the body as it reads it and call
    /// [`Authenticated::check_body`].
    pub fn verify(&self, req: &RequestHead<'_>, now: u64) -> Result<Authenticated, AuthError> {
        let signed = parse_signature_headers(req.headers)?;
        let params = &signed.params;

        let keyid = params.keyid.as_deref().ok_or_else(|| {
            AuthError::malformed("the keyid parameter is required: set it to your did:key")
        })?;
        let did = Did::parse_cached(keyid)
            .map_err(|e| AuthError::malformed(format!("keyid must be an Ed25519 did:key: {e}")))?;
        if let Some(alg) = params.alg.as_deref() {
            if alg != ALG_ED25519 {
                return Err(AuthError::malformed(format!(
                    "alg must be \"ed25519\" (or left out), not \"{alg}\""
                )));
            }
        }
        let created = params.created.ok_or_else(|| {
            AuthError::malformed(
                "the created parameter is required: the signing time in Unix seconds",
            )
        })?;
        let nonce = params.nonce.as_deref().ok_or_else(|| {
            AuthError::malformed(
                "the nonce parameter is required: a new random string for every request",
            )
        })?;
        check_nonce(nonce)?;

        check_covered(params, req.has_body)?;
        let body_sha256 = if req.has_body {
            Some(content_digest(req.headers)?)
        } else {
            None
        };

        self.check_time(created, params.expires, now)?;

        let base = signature_base(req, params)?;
        let signature = Signature::from_slice(&signed.signature)
            .map_err(|_| AuthError::malformed("the signature must be 64 bytes (Ed25519)"))?;
        did.public_key()
            .verify(base.as_bytes(), &signature)
            .map_err(|_| AuthError::BadSignature)?;

        // Only now, with the signature good, is the nonce spent.
        let fresh = self
            .nonces
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(replay_key(keyid, nonce), now);
        if !fresh {
            return Err(AuthError::Replay);
        }
        Ok(Authenticated { did, body_sha256 })
    }

    fn check_time(&self, created: u64, expires: Option<u64>, now: u64) -> Result<(), AuthError> {
        let skew = MAX_CLOCK_SKEW.as_secs();
        if created < now.saturating_sub(self.window) {
            return Err(AuthError::expired(format!(
                "created ({created}) is more than {} s before the node's time ({now})",
                self.window
            )));
        }
        if created > now.saturating_add(skew) {
            return Err(AuthError::expired(format!(
                "created ({created}) is more than {skew} s after the node's time ({now}); check your clock"
            )));
        }
        if created < self.started_at {
            return Err(AuthError::expired(format!(
                "created ({created}) is before the node started ({})",
                self.started_at
            )));
        }
        if let Some(expires) = expires {
            if expires <= now {
                return Err(AuthError::expired(format!(
                    "expires ({expires}) has passed (node time {now})"
                )));
            }
        }
        Ok(())
    }

    #[cfg(test)]
    pub(crate) fn remembered_nonces(&self) -> usize {
        self.nonces
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }
}

/// The one signature of a request, parsed.
struct SignedRequest {
    params: HttpSignatureParams,
    signature: Vec<u8>,
}

/// All lines of a header joined as one field value (RFC 9110 section 5.3);
/// `None` when absent.
fn field_value(headers: &HeaderMap, name: &str) -> Result<Option<String>, AuthError> {
    let mut values = Vec::new();
    for value in headers.get_all(name) {
        let text = value
            .to_str()
            .map_err(|_| AuthError::malformed(format!("the {name} header is not visible ASCII")))?;
        values.push(text);
    }
    Ok((!values.is_empty()).then(|| values.join(", ")))
}

fn parse_signature_headers(headers: &HeaderMap) -> Result<SignedRequest, AuthError> {
    let input = field_value(headers, "signature-input")?;
    let signature = field_value(headers, "signature")?;
    let (Some(input), Some(signature)) = (input, signature) else {
        return Err(AuthError::Missing);
    };

    let input_dictionary: Dictionary = Parser::new(&input).parse().map_err(|e| {
        AuthError::malformed(format!(
            "Signature-Input is not a structured-field dictionary: {e}"
        ))
    })?;
    let signature_dictionary: Dictionary = Parser::new(&signature).parse().map_err(|e| {
        AuthError::malformed(format!(
            "Signature is not a structured-field dictionary: {e}"
        ))
    })?;
    if input_dictionary.len() != 1 || signature_dictionary.len() != 1 {
        return Err(AuthError::malformed(
            "send exactly one signature (one label in Signature-Input and Signature)",
        ));
    }
    let Some((label, input_entry)) = input_dictionary.first() else {
        return Err(AuthError::malformed("Signature-Input is empty"));
    };
    let signature_bytes = match signature_dictionary.get(label) {
        Some(ListEntry::Item(item)) => match &item.bare_item {
            BareItem::ByteSequence(bytes) => bytes.clone(),
            _ => {
                return Err(AuthError::malformed(
                    "the Signature value must be a byte sequence (:base64:)",
                ))
            }
        },
        Some(ListEntry::InnerList(_)) => {
            return Err(AuthError::malformed(
                "the Signature value must be a byte sequence (:base64:)",
            ))
        }
        None => {
            return Err(AuthError::malformed(format!(
                "Signature has no signature labelled \"{}\" as in Signature-Input",
                label.as_str()
            )))
        }
    };

    let parsed = HttpSignatureHeaders::try_parse(&signature, &input)
        .map_err(|e| AuthError::malformed(format!("signature headers: {e}")))?;
    let params = parsed
        .get(label.as_str())
        .map(|headers| headers.signature_params().clone())
        .ok_or_else(|| AuthError::malformed("Signature-Input does not parse"))?;

    // The signature base ends with the parameters exactly as received
    // (RFC 9421 section 2.3). httpsig writes them back in a fixed order,
    // without escapes, dropping parameters it does not know; refuse any
    // input it would not reproduce, so that the base we verify is the one
    // the RFC defines.
    let received: sfv::List = vec![input_entry.clone()];
    let received = received
        .serialize()
        .ok_or_else(|| AuthError::malformed("Signature-Input is empty"))?;
    if received != params.to_string() {
        return Err(AuthError::malformed(
            "Signature-Input must list string components, then only these parameters, in this \
             order: created, expires, nonce, alg, keyid, tag (created, nonce and keyid required; \
             integers for times, strings for the others)",
        ));
    }
    Ok(SignedRequest {
        params,
        signature: signature_bytes,
    })
}

/// The required components are all covered.
fn check_covered(params: &HttpSignatureParams, has_body: bool) -> Result<(), AuthError> {
    for required in required_components(has_body)? {
        if !params.covered_components.contains(&required) {
            let hint = if required == component_id(CONTENT_DIGEST)? {
                " (the request has a body: send Content-Digest and cover it)"
            } else {
                ""
            };
            return Err(AuthError::components(format!(
                "the signature must cover {required}{hint}; it must cover \"@method\", \"@path\", \
                 \"@query\", and \"content-digest\" when the request has a body"
            )));
        }
    }
    for id in &params.covered_components {
        if let HttpMessageComponentName::Derived(name) = &id.name {
            if !matches!(
                name,
                DerivedComponentName::Method
                    | DerivedComponentName::Path
                    | DerivedComponentName::Query
            ) {
                return Err(AuthError::components(format!(
                    "the derived component {id} is not supported; cover only \"@method\", \
                     \"@path\", \"@query\" and header fields"
                )));
            }
        }
    }
    Ok(())
}

fn content_digest(headers: &HeaderMap) -> Result<[u8; 32], AuthError> {
    let value = field_value(headers, CONTENT_DIGEST)
        .map_err(|_| AuthError::digest("the Content-Digest header is not visible ASCII"))?
        .ok_or_else(|| {
            AuthError::digest(
                "the request has a body but no Content-Digest header: send \
                 Content-Digest: sha-256=:<base64 of the body's SHA-256>:",
            )
        })?;
    parse_content_digest(&value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::{random_nonce, sign_request};
    use http::Method;
    use hygeia_identity::Keypair;

    /// A signed GET at `created` with a fresh nonce.
    fn signed_get(key: &Keypair, created: u64) -> HeaderMap {
        let mut headers = HeaderMap::new();
        sign_request(
            key,
            &Method::GET,
            "/v1/records/1",
            None,
            created,
            &random_nonce(),
        )
        .unwrap()
        .apply(&mut headers)
        .unwrap();
        headers
    }

    fn verify(
        verifier: &Verifier,
        headers: &HeaderMap,
        now: u64,
    ) -> Result<Authenticated, AuthError> {
        let req = RequestHead {
            method: &Method::GET,
            path: "/v1/records/1",
            query: None,
            headers,
            has_body: false,
        };
        verifier.verify(&req, now)
    }

    /// With a tiny window, a nonce stays refused after a rotation and the
    /// cache holds only the last two periods' nonces.
    #[test]
    fn rotation_keeps_nonces_long_enough_and_bounds_the_cache() {
        let window = Duration::from_secs(2);
        let period = 2 + MAX_CLOCK_SKEW.as_secs();
        let start = 1_000_000;
        let verifier = Verifier::new(window, start);
        let key = Keypair::from_seed(&[9; 32]);

        // Signed 30 s ahead (allowed skew), first seen at `start`.
        let early = signed_get(&key, start + 30);
        assert!(verify(&verifier, &early, start).is_ok());
        // Replayed at the last second its `created` is acceptable, after
        // one rotation: still refused.
        let last = start + 30 + 2;
        assert!(last >= start + period);
        assert_eq!(
            verify(&verifier, &early, last).unwrap_err(),
            AuthError::Replay
        );

        // Many periods of traffic: the cache never holds more than two.
        let per_period = 5;
        let mut now = start + 100;
        for _ in 0..20 {
            for _ in 0..per_period {
                let headers = signed_get(&key, now);
                assert!(verify(&verifier, &headers, now).is_ok());
            }
            assert!(verifier.remembered_nonces() <= 2 * per_period);
            now += period;
        }
        // After a quiet spell everything is forgotten.
        let headers = signed_get(&key, now + 10 * period);
        assert!(verify(&verifier, &headers, now + 10 * period).is_ok());
        assert_eq!(verifier.remembered_nonces(), 1);
    }

    #[test]
    fn verifier_is_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Verifier>();
    }
}
