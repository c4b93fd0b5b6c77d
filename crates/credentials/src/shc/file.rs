//! The `.smart-health-card` file (media type
//! `application/smart-health-card`): `{"verifiableCredential": [JWS, ...]}`.

use serde_json::{json, Value};

use super::error::ShcError;

/// The JWS strings of a `.smart-health-card` file, in order. Each still
/// has to be [`verify`](super::verify)-ed.
pub fn parse_file(bytes: &[u8]) -> Result<Vec<String>, ShcError> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| ShcError::MalformedFile(format!("it is not JSON ({e})")))?;
    let credentials = value
        .get("verifiableCredential")
        .and_then(Value::as_array)
        .ok_or_else(|| ShcError::MalformedFile("it has no \"verifiableCredential\" list".into()))?;
    if credentials.is_empty() {
        return Err(ShcError::MalformedFile("it contains no card".into()));
    }
    credentials
        .iter()
        .map(|jws| {
            jws.as_str().map(str::to_owned).ok_or_else(|| {
                ShcError::MalformedFile(
                    "every entry of \"verifiableCredential\" is a JWS string".into(),
                )
            })
        })
        .collect()
}

/// A `.smart-health-card` file holding `jws`, in order.
pub fn file_json(jws: &[&str]) -> String {
    json!({ "verifiableCredential": jws }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let text = file_json(&["a.b.c", "d.e.f"]);
        assert_eq!(text, r#"{"verifiableCredential":["a.b.c","d.e.f"]}"#);
        assert_eq!(parse_file(text.as_bytes()).unwrap(), ["a.b.c", "d.e.f"]);
    }

    #[test]
    fn malformed_files() {
        for bad in [
            &b""[..],
            b"{",
            b"[]",
            b"{}",
            b"{\"verifiableCredential\": \"a.b.c\"}",
            b"{\"verifiableCredential\": []}",
            b"{\"verifiableCredential\": [1]}",
        ] {
            assert_eq!(
                parse_file(bad).unwrap_err().code(),
                "shc-malformed-file",
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
