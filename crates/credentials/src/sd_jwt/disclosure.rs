//! Disclosures (RFC 9901 §4.2): base64url of the JSON array
//! `[salt, name, value]` (an object member) or `[salt, value]` (an array
//! element), and their digests.

use rand::RngCore;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{SdJwtError, ARRAY_ELEMENT_KEY, SD_KEY};
use crate::{base64url, strict_json};

/// Salt length: 128 bits, as RFC 9901 §9.3 recommends.
const SALT_LEN: usize = 16;

#[derive(Clone, Debug)]
pub(crate) struct Disclosure {
    pub(crate) encoded: String,
    pub(crate) digest: String,
    /// `Some` for an object member, `None` for an array element.
    pub(crate) name: Option<String>,
    pub(crate) value: Value,
}

/// The digest an SD-JWT uses to refer to a disclosure (or a decoy): the
/// base64url SHA-256 of its ASCII text.
pub(crate) fn digest(encoded: &str) -> String {
    base64url::encode(&Sha256::digest(encoded.as_bytes()))
}

pub(crate) fn fresh_salt() -> String {
    let mut salt = [0u8; SALT_LEN];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    base64url::encode(&salt)
}

impl Disclosure {
    pub(crate) fn new(name: Option<&str>, value: Value) -> Self {
        let salt = Value::String(fresh_salt());
        let array = match name {
            Some(name) => vec![salt, Value::String(name.to_owned()), value.clone()],
            None => vec![salt, value.clone()],
        };
        let encoded = base64url::encode(Value::Array(array).to_string().as_bytes());
        Disclosure {
            digest: digest(&encoded),
            encoded,
            name: name.map(str::to_owned),
            value,
        }
    }

    pub(crate) fn parse(encoded: &str) -> Result<Self, SdJwtError> {
        let bytes = base64url::decode(encoded).ok_or(SdJwtError::DisclosureMalformed)?;
        let Some(Value::Array(mut items)) = strict_json::from_slice(&bytes) else {
            return Err(SdJwtError::DisclosureMalformed);
        };
        if !items.first().is_some_and(Value::is_string) {
            return Err(SdJwtError::DisclosureMalformed);
        }
        let (name, value) = match items.len() {
            2 => (None, items.swap_remove(1)),
            3 => {
                let value = items.swap_remove(2);
                let Value::String(name) = items.swap_remove(1) else {
                    return Err(SdJwtError::DisclosureMalformed);
                };
                if name == SD_KEY || name == ARRAY_ELEMENT_KEY {
                    return Err(SdJwtError::ReservedClaimName(name));
                }
                (Some(name), value)
            }
            _ => return Err(SdJwtError::DisclosureMalformed),
        };
        Ok(Disclosure {
            digest: digest(encoded),
            encoded: encoded.to_owned(),
            name,
            value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// RFC 9901 §4.2.1: the disclosure of `given_name` and its digest.
    #[test]
    fn rfc9901_example_digest() {
        let encoded = "WyJfMjZiYzRMVC1hYzZxMktJNmNCVzVlcyIsICJmYW1pbHlfbmFtZSIsICJNw7ZiaXVzIl0";
        let d = Disclosure::parse(encoded).unwrap();
        assert_eq!(d.name.as_deref(), Some("family_name"));
        assert_eq!(d.value, json!("Möbius"));
        assert_eq!(d.digest, "X9yH0Ajrdm1Oij4tWso9UzzKJvPoDxwmuEcO3XAdRC0");
    }

    #[test]
    fn fresh_disclosures_parse_back() {
        let d = Disclosure::new(Some("a"), json!({"b": [1, null]}));
        let parsed = Disclosure::parse(&d.encoded).unwrap();
        assert_eq!(
            (parsed.name, parsed.value, parsed.digest),
            (d.name, d.value, d.digest)
        );
        let e = Disclosure::new(None, json!(3.5));
        assert_eq!(Disclosure::parse(&e.encoded).unwrap().name, None);
        assert_ne!(
            Disclosure::new(None, json!(1)).digest,
            Disclosure::new(None, json!(1)).digest
        );
    }

    #[test]
    fn malformed_disclosures_are_refused() {
        for json in [
            r#"["s"]"#,
            r#"["s","a","b","c"]"#,
            r#"[1,"a",2]"#,
            r#"["s",1,2]"#,
            r#"{"a":1}"#,
            "[\"s\",{\"a\":1,\"a\":2}]",
        ] {
            let encoded = base64url::encode(json.as_bytes());
            assert_eq!(
                Disclosure::parse(&encoded).unwrap_err().code(),
                "sd-jwt-disclosure-malformed",
                "{json}"
            );
        }
        assert_eq!(
            Disclosure::parse("***").unwrap_err().code(),
            "sd-jwt-disclosure-malformed"
        );
        for name in ["_sd", "..."] {
            let encoded = base64url::encode(json!(["s", name, 1]).to_string().as_bytes());
            assert_eq!(
                Disclosure::parse(&encoded).unwrap_err().code(),
                "sd-jwt-reserved-claim-name"
            );
        }
    }
}
