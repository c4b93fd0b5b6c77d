//! ES256 compact JWS, as far as SMART Health Cards need it.
//!
//! Kept private to `shc` and small so it can be replaced by a shared JWS
//! module later without changing the card API.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256_shc::ecdsa::signature::{Signer, Verifier};
use p256_shc::ecdsa::{Signature, SigningKey, VerifyingKey};
use serde_json::{Map, Value};

use super::error::ShcError;

/// Length of a raw ES256 signature (`r || s`, RFC 7518 §3.4).
const SIGNATURE_LEN: usize = 64;

/// A compact JWS whose parts decode, not yet checked against any key.
pub(crate) struct UnverifiedJws<'a> {
    header: Map<String, Value>,
    signing_input: &'a str,
    payload: Vec<u8>,
    signature: [u8; SIGNATURE_LEN],
}

impl<'a> UnverifiedJws<'a> {
    /// Splits and decodes `header.payload.signature`. Base64url must be
    /// unpadded and canonical, so one JWS text has exactly one decoding.
    pub(crate) fn parse(jws: &'a str) -> Result<Self, ShcError> {
        let mut parts = jws.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(ShcError::MalformedJws(
                "a JWS has exactly three parts separated by '.'".into(),
            ));
        };
        let header_bytes = decode_part(header_b64, "header")?;
        let header = match serde_json::from_slice::<Value>(&header_bytes) {
            Ok(Value::Object(map)) => map,
            _ => {
                return Err(ShcError::MalformedJws(
                    "the header is not a JSON object".into(),
                ))
            }
        };
        let payload = decode_part(payload_b64, "payload")?;
        let signature: [u8; SIGNATURE_LEN] = decode_part(signature_b64, "signature")?
            .try_into()
            .map_err(|_| {
                ShcError::MalformedJws(format!("an ES256 signature is {SIGNATURE_LEN} bytes"))
            })?;
        let signing_input_len = header_b64.len() + 1 + payload_b64.len();
        let signing_input = jws.get(..signing_input_len).ok_or_else(|| {
            ShcError::MalformedJws("the signing input is not where it should be".into())
        })?;
        Ok(UnverifiedJws {
            header,
            signing_input,
            payload,
            signature,
        })
    }

    /// A header parameter's value if it is a string.
    pub(crate) fn header_str(&self, name: &str) -> Option<&str> {
        self.header.get(name).and_then(Value::as_str)
    }

    pub(crate) fn has_header(&self, name: &str) -> bool {
        self.header.contains_key(name)
    }

    /// The decoded payload bytes (still compressed for a health card).
    /// Not authenticated until [`UnverifiedJws::verify`] succeeds.
    pub(crate) fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Checks the ES256 signature over `header.payload`.
    pub(crate) fn verify(&self, key: &VerifyingKey) -> Result<(), ShcError> {
        let signature =
            Signature::from_slice(&self.signature).map_err(|_| ShcError::BadSignature)?;
        key.verify(self.signing_input.as_bytes(), &signature)
            .map_err(|_| ShcError::BadSignature)
    }
}

/// Signs `payload` under `header` (serialized as given) with ES256.
pub(crate) fn sign(header: &Value, payload: &[u8], key: &SigningKey) -> String {
    let mut jws = URL_SAFE_NO_PAD.encode(header.to_string());
    jws.push('.');
    URL_SAFE_NO_PAD.encode_string(payload, &mut jws);
    let signature: Signature = key.sign(jws.as_bytes());
    jws.push('.');
    URL_SAFE_NO_PAD.encode_string(signature.to_bytes(), &mut jws);
    jws
}

fn decode_part(part: &str, name: &str) -> Result<Vec<u8>, ShcError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| ShcError::MalformedJws(format!("the {name} is not unpadded base64url")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(byte: u8) -> SigningKey {
        SigningKey::from_slice(&[byte; 32]).unwrap()
    }

    #[test]
    fn sign_then_verify() {
        let jws = sign(&json!({"alg": "ES256"}), b"hello", &key(1));
        let parsed = UnverifiedJws::parse(&jws).unwrap();
        assert_eq!(parsed.payload(), b"hello");
        assert_eq!(parsed.header_str("alg"), Some("ES256"));
        parsed.verify(key(1).verifying_key()).unwrap();
        assert_eq!(
            parsed.verify(key(2).verifying_key()),
            Err(ShcError::BadSignature)
        );
    }

    #[test]
    fn malformed_compact_forms_are_refused() {
        let jws = sign(&json!({"alg": "ES256"}), b"x", &key(1));
        let (head, sig) = jws.rsplit_once('.').unwrap();
        let cases = [
            String::new(),
            "a.b".into(),
            format!("{jws}.x"),
            format!("{head}.{sig}="),
            format!("{head}.{}", &sig[..sig.len() - 2]),
            // Headers `[]` and `!!!`: not a JSON object, not base64url.
            format!("W10.eA.{sig}"),
            format!("!!!.eA.{sig}"),
        ];
        for case in cases {
            assert_eq!(
                UnverifiedJws::parse(&case).err().map(|e| e.code()),
                Some("shc-malformed-jws"),
                "{case}"
            );
        }
        // `{}` is a JSON object: the header rules are checked by `verify`.
        assert!(UnverifiedJws::parse(&format!("e30.eA.{sig}")).is_ok());
    }

    #[test]
    fn a_zero_signature_is_a_bad_signature() {
        let jws = sign(&json!({"alg": "ES256"}), b"x", &key(1));
        let (head, _) = jws.rsplit_once('.').unwrap();
        let zero = URL_SAFE_NO_PAD.encode([0u8; 64]);
        let forged = format!("{head}.{zero}");
        let parsed = UnverifiedJws::parse(&forged).unwrap();
        assert_eq!(
            parsed.verify(key(1).verifying_key()),
            Err(ShcError::BadSignature)
        );
    }
}
