//! Strict text encodings shared by share and verifier files: a JSON object
//! naming its format and version, byte fields in unpadded base64url.
//!
//! Parsing first reads only `format` and `version`, so a file of another
//! kind or a later version is refused as such rather than for its unknown
//! fields, then reads the whole object refusing unknown and duplicate fields.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::RecoveryError;

/// The one version of both encodings.
pub(crate) const VERSION: u64 = 1;

/// What a file is, as its `format` member says.
#[derive(Clone, Copy)]
pub(crate) struct Format {
    /// The value of the `format` member.
    pub name: &'static str,
    /// How errors name it.
    pub what: &'static str,
    /// Longest accepted text, checked before anything is parsed.
    pub max_len: usize,
}

#[derive(Deserialize)]
struct Envelope {
    format: String,
    version: u64,
}

/// Parses `text` as a `T` of the given format, version [`VERSION`].
pub(crate) fn parse<T: DeserializeOwned>(text: &str, format: Format) -> Result<T, RecoveryError> {
    let what = format.what;
    if text.len() > format.max_len {
        return Err(RecoveryError::malformed(
            what,
            format!(
                "{} bytes is longer than the {} bytes allowed",
                text.len(),
                format.max_len
            ),
        ));
    }
    let envelope: Envelope = serde_json::from_str(text).map_err(|e| {
        RecoveryError::malformed(what, format!("not a {} JSON object: {e}", format.name))
    })?;
    if envelope.format != format.name {
        return Err(RecoveryError::malformed(
            what,
            format!(
                "its format is {:?}, expected {:?}",
                envelope.format, format.name
            ),
        ));
    }
    if envelope.version != VERSION {
        return Err(RecoveryError::malformed(
            what,
            format!(
                "version {} is not supported (only version {VERSION})",
                envelope.version
            ),
        ));
    }
    serde_json::from_str(text).map_err(|e| RecoveryError::malformed(what, e.to_string()))
}

/// Decodes an unpadded base64url field of exactly `N` bytes. The result is
/// wiped on drop, as some fields are secret.
pub(crate) fn decode_fixed<const N: usize>(
    what: &'static str,
    field: &str,
    text: &str,
) -> Result<Zeroizing<[u8; N]>, RecoveryError> {
    // Unpadded base64 of N bytes is exactly this long; checking first keeps
    // a long field from being decoded at all.
    let expected_len = (N * 4).div_ceil(3);
    if text.len() != expected_len {
        return Err(RecoveryError::malformed(
            what,
            format!("{field} must be {expected_len} characters of unpadded base64url ({N} bytes)"),
        ));
    }
    let decoded = Zeroizing::new(URL_SAFE_NO_PAD.decode(text).map_err(|e| {
        RecoveryError::malformed(what, format!("{field} is not unpadded base64url: {e}"))
    })?);
    let mut out = Zeroizing::new([0u8; N]);
    if decoded.len() != N {
        return Err(RecoveryError::malformed(
            what,
            format!("{field} must hold {N} bytes"),
        ));
    }
    out.copy_from_slice(&decoded);
    Ok(out)
}

pub(crate) fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Pretty JSON with a final newline, for a file a person may open.
pub(crate) fn to_text<T: serde::Serialize>(value: &T) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(512));
    // Serializing a struct of strings and integers into a String cannot
    // fail; an empty text would be refused by the parser if it ever did.
    if let Ok(text) = serde_json::to_string_pretty(value) {
        out.push_str(&text);
        let mut text = text;
        zeroize::Zeroize::zeroize(&mut text);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_fields_are_strict() {
        let good = encode(&[7u8; 32]);
        assert_eq!(*decode_fixed::<32>("t", "f", &good).unwrap(), [7u8; 32]);
        // Padding, standard alphabet, wrong length and non-canonical final
        // characters are all refused.
        for bad in [
            format!("{good}="),
            good.replace('-', "+").replace('_', "/"),
            good[..42].to_string(),
            format!("{}B", &good[..42]),
        ] {
            if bad == good {
                continue;
            }
            let err = decode_fixed::<32>("t", "f", &bad).unwrap_err();
            assert_eq!(err.code(), "recovery-malformed", "{bad}");
        }
    }
}
