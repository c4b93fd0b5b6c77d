//! A request head as the node's record API receives it, through
//! `hygeia_auth::Verifier::verify` (RFC 9421 signature, RFC 9530
//! `Content-Digest`). It must never panic; a request it accepts is accepted
//! once only (the nonce is spent) and says whether it has a body.
//!
//! The input is split on `\n`:
//!
//! 0. control bytes: byte 0 is flags (bit 0: the request has a body;
//!    bits 1, 2, 3: leave out `Signature-Input`, `Signature`,
//!    `Content-Digest`), bytes 1–2 a little-endian `i16` added to
//!    [`CREATED`] to give the verifier's clock;
//! 1. the method;
//! 2. the request target, `path` or `path?query`;
//! 3. the `Signature-Input` value, 4. the `Signature` value,
//!    5. the `Content-Digest` value (a missing line: no header);
//! 6. and on: further header lines `name:value`.
//!
//! Headers are built only from values `HeaderValue::from_bytes` accepts
//! (what `http` lets a server see); others are left out.
#![no_main]

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use hygeia_auth::{AuthError, RequestHead, Verifier, DEFAULT_WINDOW};
use libfuzzer_sys::fuzz_target;

/// When the verifier started (Unix seconds).
const STARTED_AT: u64 = 1_700_000_000;
/// When the seed requests were signed.
const CREATED: u64 = STARTED_AT + 60;
/// Most extra header lines read.
const MAX_EXTRA_HEADERS: usize = 16;

fuzz_target!(|data: &[u8]| {
    let mut lines = data.split(|&b| b == b'\n');
    let control = lines.next().unwrap_or_default();
    let flags = control.first().copied().unwrap_or(0);
    let delta = i16::from_le_bytes([
        control.get(1).copied().unwrap_or(0),
        control.get(2).copied().unwrap_or(0),
    ]);
    let now = CREATED.saturating_add_signed(i64::from(delta));
    let has_body = flags & 1 != 0;

    let method = match lines.next() {
        Some(m) => match Method::from_bytes(m) {
            Ok(method) => method,
            Err(_) => return,
        },
        None => Method::GET,
    };
    let Ok(target) = std::str::from_utf8(lines.next().unwrap_or(b"/")) else {
        return;
    };
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };

    let mut headers = HeaderMap::new();
    for (i, name) in ["signature-input", "signature", "content-digest"]
        .into_iter()
        .enumerate()
    {
        let Some(value) = lines.next() else { break };
        if flags & (2 << i) != 0 {
            continue;
        }
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(name, value);
        }
    }
    for line in lines.take(MAX_EXTRA_HEADERS) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            headers.append(name, value);
        }
    }

    let req = RequestHead {
        method: &method,
        path,
        query,
        headers: &headers,
        has_body,
    };
    let verifier = Verifier::new(DEFAULT_WINDOW, STARTED_AT);
    let first = verifier.verify(&req, now);
    if let Err(e) = &first {
        // Every refusal has a stable code and an HTTP status.
        assert!(!e.code().is_empty());
        assert!((400..600).contains(&e.http_status()), "{e:?}");
    }
    if let Ok(auth) = first {
        assert_eq!(auth.body_sha256.is_some(), has_body);
        assert_eq!(auth.did.as_str(), auth.did.to_string());
        // The nonce is spent: the same request again is a replay.
        assert_eq!(verifier.verify(&req, now), Err(AuthError::Replay));
        // A verifier started later knows nothing of this nonce, but the
        // signature predates it.
        let later = Verifier::new(Duration::from_secs(3600), now.saturating_add(31));
        assert!(later.verify(&req, now.saturating_add(31)).is_err());
    }
});
