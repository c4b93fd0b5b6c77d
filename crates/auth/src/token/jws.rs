//! JWS compact serialization (RFC 7515 §7.1), only as far as client
//! assertions need it: one Ed25519 signature, `alg` `EdDSA` (RFC 8037).
//!
//! Parsed here with `base64` and `serde_json` rather than with a JWT crate.
//! The format is three base64url segments, and every check that matters
//! for security is ours either way (the `alg` allow-list, `crit`, the size
//! cap, the claims, replay). What a crate would add is the signature
//! check, and that must be `hygeia-identity`'s strict Ed25519. The
//! RustCrypto backend of `jsonwebtoken` (11.1) would take the raw did:key
//! bytes (as a JWK `x`) but verifies with `ed25519-dalek`'s non-strict
//! `verify`, which accepts small-order keys, and it brings RSA, ECDSA and
//! HMAC code we would never call.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hygeia_identity::{Keypair, Signature};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::error::TokenError;

/// Longest client assertion accepted, in bytes. A did:key assertion is
/// about 500; the cap bounds the work done before the signature is checked.
pub const MAX_ASSERTION_LEN: usize = 8 * 1024;

/// The only `alg` accepted (RFC 8037: EdDSA, here always over Ed25519,
/// since the key is the issuer's Ed25519 did:key).
pub(crate) const ALG_EDDSA: &str = "EdDSA";

/// The `alg` of registered backend clients (SMART Backend Services requires
/// servers to accept it): ECDSA P-384 with SHA-384.
pub(crate) const ALG_ES384: &str = "ES384";

/// A compact JWS whose structure and header have been checked but whose
/// signature has not.
#[derive(Debug)]
pub(crate) struct UncheckedJws<'a> {
    pub header: Header,
    /// The decoded payload bytes.
    pub payload: Vec<u8>,
    /// `base64url(header) "." base64url(payload)` as received: what is signed.
    pub signing_input: &'a str,
    pub signature: Signature,
}

/// The header parameters the verifier looks at. Others are ignored, as
/// RFC 7515 §4 requires of parameters not listed in `crit`.
///
/// `present` keeps an explicit `null` distinct from absence, and the
/// derived deserializer refuses a parameter given twice, so a header cannot
/// mean one thing here and another to a different parser.
#[derive(Debug, Deserialize)]
pub(crate) struct Header {
    #[serde(default, deserialize_with = "present")]
    pub alg: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub typ: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub crit: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub kid: Option<Value>,
}

/// Parses `bytes` as a JSON object into `T`. The derived deserializer of a
/// struct also takes an array, filling the fields by position, so anything
/// but an object is refused first.
pub(crate) fn json_object<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, TokenError> {
    let first = bytes
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    let parsed = match first {
        Some(b'{') => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
        _ => Err("it does not start with '{'".to_string()),
    };
    parsed.map_err(|e| TokenError::malformed(format!("{what} is not a JSON object: {e}")))
}

/// Deserializes a field that is present (even as `null`) as `Some`.
pub(crate) fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// Splits and decodes a compact JWS and checks its header, for `alg`
/// `EdDSA` (a did:key client).
pub(crate) fn parse(jwt: &str) -> Result<UncheckedJws<'_>, TokenError> {
    let (header, payload, signing_input, signature_bytes) = split(jwt, ALG_EDDSA)?;
    let signature = Signature::from_slice(&signature_bytes).map_err(|_| {
        TokenError::malformed(format!(
            "the signature is {} bytes; an Ed25519 signature is 64",
            signature_bytes.len()
        ))
    })?;
    Ok(UncheckedJws {
        header,
        payload,
        signing_input,
        signature,
    })
}

/// A compact JWS with `alg` `ES384` (a registered backend client,
/// [`crate::smart_backend`]): structure and header checked, the signature
/// (`r || s`, 96 bytes, RFC 7518 §3.4) not yet.
#[derive(Debug)]
pub(crate) struct UncheckedEs384<'a> {
    pub header: Header,
    pub payload: Vec<u8>,
    pub signing_input: &'a str,
    pub signature: Vec<u8>,
}

/// Splits and decodes a compact JWS and checks its header, for `alg`
/// `ES384`.
pub(crate) fn parse_es384(jwt: &str) -> Result<UncheckedEs384<'_>, TokenError> {
    let (header, payload, signing_input, signature) = split(jwt, ALG_ES384)?;
    if signature.len() != 96 {
        return Err(TokenError::malformed(format!(
            "the signature is {} bytes; an ES384 signature is r || s, 96 bytes",
            signature.len()
        )));
    }
    Ok(UncheckedEs384 {
        header,
        payload,
        signing_input,
        signature,
    })
}

/// The `alg` a compact JWS's header names, if it names one as a string:
/// which verifier takes it. Nothing is trusted from it but that choice;
/// the verifier checks everything again.
pub(crate) fn peek_alg(jwt: &str) -> Option<String> {
    if jwt.len() > MAX_ASSERTION_LEN {
        return None;
    }
    let header_b64 = jwt.split('.').next()?;
    let bytes = URL_SAFE_NO_PAD.decode(header_b64).ok()?;
    let header: Header = json_object(&bytes, "the header").ok()?;
    match header.alg {
        Some(Value::String(alg)) => Some(alg),
        _ => None,
    }
}

type Parts<'a> = (Header, Vec<u8>, &'a str, Vec<u8>);

fn split<'a>(jwt: &'a str, alg: &str) -> Result<Parts<'a>, TokenError> {
    if jwt.len() > MAX_ASSERTION_LEN {
        return Err(TokenError::malformed(format!(
            "it is {} bytes long; at most {MAX_ASSERTION_LEN} are accepted",
            jwt.len()
        )));
    }
    let parts: Vec<&str> = jwt.split('.').collect();
    let [header_b64, payload_b64, signature_b64] = parts[..] else {
        return Err(TokenError::malformed(format!(
            "a JWS in compact serialization is three base64url segments separated by '.', \
             this has {}",
            parts.len()
        )));
    };
    // The header first, so that an unsecured JWT (`alg` "none", empty
    // signature) is told so rather than that its signature is missing.
    let header_bytes = decode_segment(header_b64, "header")?;
    let header: Header = json_object(&header_bytes, "the header")?;
    check_header(&header, alg)?;
    let payload = decode_segment(payload_b64, "payload")?;
    let signature = decode_segment(signature_b64, "signature")?;
    // The three segments and two dots: this slice is the first two
    // segments with the dot between them.
    let signing_input = &jwt[..header_b64.len() + 1 + payload_b64.len()];
    Ok((header, payload, signing_input, signature))
}

/// Unpadded base64url only (RFC 7515 §2): the engine refuses `=`, `+`,
/// `/`, whitespace and non-zero trailing bits, so each byte string has one
/// accepted encoding.
fn decode_segment(segment: &str, name: &str) -> Result<Vec<u8>, TokenError> {
    if segment.is_empty() {
        return Err(TokenError::malformed(format!(
            "the {name} segment is empty"
        )));
    }
    URL_SAFE_NO_PAD.decode(segment).map_err(|e| {
        TokenError::malformed(format!(
            "the {name} segment is not unpadded base64url ({e})"
        ))
    })
}

fn check_header(header: &Header, expected: &str) -> Result<(), TokenError> {
    const WHICH: &str =
        "\"EdDSA\" (Ed25519, a did:key client) or \"ES384\" (a registered backend client)";
    match &header.alg {
        None => {
            return Err(TokenError::header(format!(
                "alg is missing; it must be {WHICH}"
            )))
        }
        Some(Value::String(alg)) if alg == expected => {}
        Some(Value::String(alg)) if alg.eq_ignore_ascii_case("none") => {
            return Err(TokenError::header(format!(
                "alg \"none\" (an unsigned JWT) is refused; it must be {WHICH}"
            )))
        }
        Some(other) => {
            return Err(TokenError::header(format!(
                "alg must be {WHICH}, not {other}"
            )))
        }
    }
    if header.crit.is_some() {
        return Err(TokenError::header(
            "crit is not supported: this node implements no JWS extensions",
        ));
    }
    if let Some(typ) = &header.typ {
        // RFC 7515 §4.1.9: a media type, compared case-insensitively, with
        // "application/" optional.
        let ok = typ.as_str().is_some_and(|t| {
            t.eq_ignore_ascii_case("JWT") || t.eq_ignore_ascii_case("application/jwt")
        });
        if !ok {
            return Err(TokenError::header(format!(
                "typ must be \"JWT\" when present, not {typ}"
            )));
        }
    }
    Ok(())
}

/// The header [`sign`] writes.
const HEADER_JSON: &str = r#"{"alg":"EdDSA","typ":"JWT"}"#;

/// A compact JWS of `payload` (JSON text) signed by `key`, alg `EdDSA`.
pub(crate) fn sign(key: &Keypair, payload: &str) -> String {
    let mut out = URL_SAFE_NO_PAD.encode(HEADER_JSON);
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(payload, &mut out);
    let signature = key.sign(out.as_bytes());
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(signature.to_bytes(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn with_header(header: &str) -> String {
        format!(
            "{}.{}.{}",
            b64(header.as_bytes()),
            b64(b"{}"),
            b64(&[0; 64])
        )
    }

    fn code_of(jwt: &str) -> Result<(), String> {
        parse(jwt).map(|_| ()).map_err(|e| format!("{e:?}"))
    }

    #[test]
    fn signs_and_parses_back() {
        let key = Keypair::from_seed(&[7; 32]);
        let jwt = sign(&key, r#"{"a":1}"#);
        let jws = parse(&jwt).unwrap();
        assert_eq!(jws.payload, br#"{"a":1}"#);
        assert_eq!(jws.header.alg, Some(Value::String("EdDSA".into())));
        key.public_key()
            .verify(jws.signing_input.as_bytes(), &jws.signature)
            .unwrap();
        assert_eq!(jws.signing_input.matches('.').count(), 1);
    }

    #[test]
    fn header_rules() {
        assert!(code_of(&with_header(r#"{"alg":"EdDSA"}"#)).is_ok());
        assert!(code_of(&with_header(r#"{"alg":"EdDSA","typ":"jwt","x":1}"#)).is_ok());
        assert!(code_of(&with_header(r#"{"alg":"EdDSA","typ":"application/JWT"}"#)).is_ok());
        for refused in [
            r#"{}"#,
            r#"{"alg":null}"#,
            r#"{"alg":"none"}"#,
            r#"{"alg":"NONE"}"#,
            r#"{"alg":"HS256"}"#,
            r#"{"alg":"eddsa"}"#,
            r#"{"alg":"Ed25519"}"#,
            r#"{"alg":["EdDSA"]}"#,
            r#"{"alg":"EdDSA","crit":["exp"]}"#,
            r#"{"alg":"EdDSA","crit":null}"#,
            r#"{"alg":"EdDSA","typ":"JOSE+JSON"}"#,
            r#"{"alg":"EdDSA","typ":1}"#,
        ] {
            let e = parse(&with_header(refused)).unwrap_err();
            assert!(matches!(e, TokenError::Header(_)), "{refused}: {e:?}");
        }
    }

    #[test]
    fn header_must_be_an_object() {
        for header in [r#"["EdDSA"]"#, r#""EdDSA""#, "", " \n{"] {
            let jwt = format!("{}.e30.{}", b64(header.as_bytes()), b64(&[0; 64]));
            let e = parse(&jwt).unwrap_err();
            assert!(matches!(e, TokenError::Malformed(_)), "{header}: {e:?}");
        }
    }

    #[test]
    fn a_parameter_given_twice_is_malformed() {
        let e = parse(&with_header(r#"{"alg":"HS256","alg":"EdDSA"}"#)).unwrap_err();
        assert!(matches!(e, TokenError::Malformed(_)), "{e:?}");
    }

    #[test]
    fn segments_must_be_strict_base64url() {
        let good = with_header(r#"{"alg":"EdDSA"}"#);
        assert!(code_of(&good).is_ok());
        let (head, rest) = good.split_once('.').unwrap();
        for bad in [
            format!("{head}=.{rest}"),
            format!("{}.{rest}", head.replace('-', "+").replace('_', "/") + "+"),
            format!("{head} .{rest}"),
            format!(".{rest}"),
            format!("{head}.{rest}."),
            format!("{head}.{rest}").replacen('.', "..", 1),
        ] {
            let e = parse(&bad).unwrap_err();
            assert!(matches!(e, TokenError::Malformed(_)), "{bad}: {e:?}");
        }
    }

    #[test]
    fn non_canonical_trailing_bits_are_refused() {
        // "e30" is "{}"; "e31" decodes to the same bytes with a stray bit.
        let jwt = format!("{}.e31.{}", b64(br#"{"alg":"EdDSA"}"#), b64(&[0; 64]));
        assert!(matches!(parse(&jwt), Err(TokenError::Malformed(_))));
    }

    #[test]
    fn signature_must_be_64_bytes() {
        let jwt = format!("{}.e30.{}", b64(br#"{"alg":"EdDSA"}"#), b64(&[0; 63]));
        assert!(matches!(parse(&jwt), Err(TokenError::Malformed(_))));
    }

    #[test]
    fn oversized_is_refused_before_decoding() {
        let jwt = "a".repeat(MAX_ASSERTION_LEN + 1);
        let e = parse(&jwt).unwrap_err();
        assert!(e.to_string().contains("at most 8192"), "{e}");
    }
}
