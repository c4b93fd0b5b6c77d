//! Unpadded base64url (RFC 4648 §5), as JOSE and SD-JWT use it.
//!
//! Decoding is strict: no padding, no whitespace and no stray trailing
//! bits, so every byte string has exactly one accepted text form and a
//! changed character can never decode to the same bytes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

pub(crate) fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `None` when the text is not canonical unpadded base64url.
pub(crate) fn decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_non_canonical_text() {
        assert_eq!(encode(b"hi"), "aGk");
        assert_eq!(decode("aGk").as_deref(), Some(&b"hi"[..]));
        assert_eq!(decode("aGk="), None, "padding");
        assert_eq!(decode("aGl"), None, "stray trailing bits");
        assert_eq!(decode("aG+k"), None, "standard alphabet");
        assert_eq!(decode("a"), None, "impossible length");
    }
}
