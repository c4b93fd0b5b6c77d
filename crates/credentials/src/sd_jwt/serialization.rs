//! The two ways an SD-JWT travels (RFC 9901 §4 and §8.1): the compact
//! `<JWT>~<D1>~…~<Dn>~[<KB-JWT>]`, and the flattened JWS JSON
//! serialization with the disclosures and KB-JWT in the unprotected
//! header. The general JSON serialization (several signatures) is not
//! supported.

use serde_json::{json, Value};

use super::{SdJwtError, MAX_DISCLOSURES, MAX_PRESENTATION_LEN};
use crate::strict_json;

/// The pieces of an SD-JWT or SD-JWT+KB, as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Parts {
    pub(crate) issuer_jwt: String,
    pub(crate) disclosures: Vec<String>,
    pub(crate) kb_jwt: Option<String>,
}

impl Parts {
    /// Reads either serialization: JSON if the text starts with `{`.
    pub(crate) fn parse(text: &str) -> Result<Self, SdJwtError> {
        if text.len() > MAX_PRESENTATION_LEN {
            return Err(SdJwtError::TooLong(MAX_PRESENTATION_LEN));
        }
        let parts = if text.starts_with('{') {
            Self::parse_flattened_json(text)?
        } else {
            Self::parse_compact(text)?
        };
        if parts.disclosures.len() > MAX_DISCLOSURES {
            return Err(SdJwtError::Malformed("too many disclosures"));
        }
        Ok(parts)
    }

    fn parse_compact(text: &str) -> Result<Self, SdJwtError> {
        let mut pieces: Vec<&str> = text.split('~').collect();
        if pieces.len() < 2 {
            return Err(SdJwtError::Malformed("no '~' after the issuer-signed JWT"));
        }
        let last = pieces.pop().unwrap_or_default();
        let issuer_jwt = pieces.remove(0);
        if pieces.iter().any(|d| d.is_empty()) {
            return Err(SdJwtError::Malformed("an empty disclosure (\"~~\")"));
        }
        Ok(Parts {
            issuer_jwt: issuer_jwt.to_owned(),
            disclosures: pieces.into_iter().map(str::to_owned).collect(),
            kb_jwt: (!last.is_empty()).then(|| last.to_owned()),
        })
    }

    fn parse_flattened_json(text: &str) -> Result<Self, SdJwtError> {
        let object = strict_json::object_from_slice(text.as_bytes()).ok_or(
            SdJwtError::Malformed("not a JSON object with distinct member names"),
        )?;
        if object.contains_key("signatures") {
            return Err(SdJwtError::Malformed(
                "the general JWS JSON serialization is not supported",
            ));
        }
        let string = |name: &'static str| match object.get(name) {
            Some(Value::String(s)) => Ok(s.as_str()),
            _ => Err(SdJwtError::Malformed(
                "the JSON serialization lacks protected, payload or signature",
            )),
        };
        let issuer_jwt = format!(
            "{}.{}.{}",
            string("protected")?,
            string("payload")?,
            string("signature")?
        );
        let header = match object.get("header") {
            None => None,
            Some(Value::Object(header)) => Some(header),
            Some(_) => {
                return Err(SdJwtError::Malformed(
                    "the unprotected header is not an object",
                ))
            }
        };
        let disclosures = match header.and_then(|h| h.get("disclosures")) {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|d| match d {
                    Value::String(s) if !s.is_empty() => Ok(s.clone()),
                    _ => Err(SdJwtError::Malformed(
                        "a disclosure is not a non-empty string",
                    )),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(SdJwtError::Malformed("disclosures is not an array")),
        };
        let kb_jwt = match header.and_then(|h| h.get("kb_jwt")) {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(SdJwtError::Malformed("kb_jwt is not a string")),
        };
        Ok(Parts {
            issuer_jwt,
            disclosures,
            kb_jwt,
        })
    }

    /// The text a KB-JWT's `sd_hash` covers: the compact SD-JWT up to and
    /// including the `~` before the KB-JWT (for the JSON serialization, the
    /// equivalent compact form, RFC 9901 §8.1).
    pub(crate) fn sd_hash_input(&self) -> String {
        let mut out = String::with_capacity(
            self.issuer_jwt.len() + self.disclosures.iter().map(|d| d.len() + 1).sum::<usize>() + 1,
        );
        out.push_str(&self.issuer_jwt);
        out.push('~');
        for d in &self.disclosures {
            out.push_str(d);
            out.push('~');
        }
        out
    }

    pub(crate) fn to_compact(&self) -> String {
        let mut out = self.sd_hash_input();
        if let Some(kb) = &self.kb_jwt {
            out.push_str(kb);
        }
        out
    }

    fn to_flattened_json(&self) -> Result<String, SdJwtError> {
        let mut jwt = self.issuer_jwt.split('.');
        let (Some(protected), Some(payload), Some(signature), None) =
            (jwt.next(), jwt.next(), jwt.next(), jwt.next())
        else {
            return Err(SdJwtError::Malformed(
                "the issuer-signed JWT is not a compact JWS",
            ));
        };
        let mut header = json!({ "disclosures": self.disclosures });
        if let Some(kb) = &self.kb_jwt {
            header["kb_jwt"] = Value::String(kb.clone());
        }
        Ok(json!({
            "header": header,
            "payload": payload,
            "protected": protected,
            "signature": signature,
        })
        .to_string())
    }
}

/// Rewrites a compact SD-JWT or SD-JWT+KB in the flattened JWS JSON
/// serialization (RFC 9901 §8.1). The KB-JWT's `sd_hash` stays valid:
/// it is defined over the compact form either way.
pub fn to_flattened_json(compact: &str) -> Result<String, SdJwtError> {
    Parts::parse(compact)?.to_flattened_json()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_forms() {
        let p = Parts::parse("a.b.c~d1~d2~").unwrap();
        assert_eq!(p.disclosures, ["d1", "d2"]);
        assert_eq!(p.kb_jwt, None);
        assert_eq!(p.sd_hash_input(), "a.b.c~d1~d2~");
        let p = Parts::parse("a.b.c~x.y.z").unwrap();
        assert!(p.disclosures.is_empty());
        assert_eq!(p.kb_jwt.as_deref(), Some("x.y.z"));
        assert_eq!(p.to_compact(), "a.b.c~x.y.z");
        for bad in ["a.b.c", "a.b.c~~d~", "a.b.c~d~~"] {
            assert_eq!(
                Parts::parse(bad).unwrap_err().code(),
                "sd-jwt-malformed",
                "{bad}"
            );
        }
    }

    #[test]
    fn flattened_json_round_trips() {
        let compact = "a.b.c~d1~d2~x.y.z";
        let json = to_flattened_json(compact).unwrap();
        let parts = Parts::parse(&json).unwrap();
        assert_eq!(parts.to_compact(), compact);
        let general = r#"{"payload":"b","signatures":[]}"#;
        assert_eq!(
            Parts::parse(general).unwrap_err().code(),
            "sd-jwt-malformed"
        );
    }

    #[test]
    fn too_many_disclosures_or_bytes() {
        let many = format!("a.b.c~{}", "d~".repeat(MAX_DISCLOSURES + 1));
        assert_eq!(Parts::parse(&many).unwrap_err().code(), "sd-jwt-malformed");
        let long = "a".repeat(MAX_PRESENTATION_LEN + 1);
        assert_eq!(Parts::parse(&long).unwrap_err().code(), "sd-jwt-too-long");
    }
}
