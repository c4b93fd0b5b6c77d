//! `attest`: a signer attests to a SHA-256 hash under a short coded label.
//!
//! Body: `{"label": "<code>", "subject": "sha256:<64 lowercase hex>"}`.
//! The label is a code (lowercase letters, digits, `.`, `_`, `-`, at most 64
//! characters), never free text, so nothing personal can ride on it.

use serde::Deserialize;
use serde_json::Value;

use crate::module::TxModule;

pub const TX_TYPE: &str = "attest";
pub const MAX_LABEL_LEN: usize = 64;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AttestBody {
    label: String,
    subject: String,
}

pub struct Attest;

impl TxModule for Attest {
    fn tx_type(&self) -> &'static str {
        TX_TYPE
    }

    fn check_body(&self, body: &Value) -> Result<(), String> {
        let body = AttestBody::deserialize(body)
            .map_err(|e| format!("attest body: {e}; expected {{\"label\", \"subject\"}}"))?;
        check_label(&body.label)?;
        check_subject(&body.subject)
    }
}

pub fn check_label(label: &str) -> Result<(), String> {
    let valid_start = label
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let valid_chars = label
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if label.len() > MAX_LABEL_LEN || !valid_start || !valid_chars {
        return Err(format!(
            "attest label must be a code of 1 to {MAX_LABEL_LEN} characters from [a-z0-9._-], starting with a letter or digit"
        ));
    }
    Ok(())
}

pub fn check_subject(subject: &str) -> Result<(), String> {
    let hex = subject.strip_prefix("sha256:").ok_or_else(|| {
        "attest subject must be \"sha256:\" followed by 64 lowercase hex digits".to_string()
    })?;
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(
            "attest subject must be \"sha256:\" followed by 64 lowercase hex digits".into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_a_well_formed_body() {
        let body = json!({"label": "lab.result", "subject": format!("sha256:{}", "ab".repeat(32))});
        assert!(Attest.check_body(&body).is_ok());
    }

    #[test]
    fn refuses_free_text_labels_and_bad_hashes() {
        let subject = format!("sha256:{}", "ab".repeat(32));
        for label in ["", "Lab Result", "jane doe", &"a".repeat(65), ".x"] {
            let body = json!({"label": label, "subject": subject});
            assert!(Attest.check_body(&body).is_err(), "{label:?}");
        }
        for subject in ["abc", "sha256:XYZ", &format!("sha256:{}", "AB".repeat(32))] {
            let body = json!({"label": "x", "subject": subject});
            assert!(Attest.check_body(&body).is_err(), "{subject:?}");
        }
        let extra = json!({"label": "x", "subject": subject, "note": "free text"});
        assert!(Attest.check_body(&extra).is_err());
    }
}
