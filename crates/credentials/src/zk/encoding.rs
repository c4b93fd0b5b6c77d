//! Unpadded base64url for binary fields, decoded strictly: the engine
//! refuses padding and non-zero trailing bits, so every byte string has one
//! text form and a changed character is never silently ignored.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::error::ZkError;

pub(crate) fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn decode(text: &str, what: &str, max_len: usize) -> Result<Vec<u8>, ZkError> {
    // Four characters carry three bytes; refuse before allocating.
    if text.len() > max_len.div_ceil(3) * 4 {
        return Err(ZkError::malformed(format!("{what} is too long")));
    }
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| ZkError::malformed(format!("{what} is not unpadded base64url")))
}

pub(crate) fn decode_array<const N: usize>(text: &str, what: &str) -> Result<[u8; N], ZkError> {
    let bytes = decode(text, what, N)?;
    bytes
        .try_into()
        .map_err(|_| ZkError::malformed(format!("{what} must be {N} bytes")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_other_forms() {
        let bytes = [0xfbu8, 0xff, 0x01];
        let text = encode(&bytes);
        assert_eq!(text, "-_8B");
        assert_eq!(decode_array::<3>(&text, "x").unwrap(), bytes);
        assert_eq!(decode("+/8B", "x", 3).unwrap_err().code(), "zk-malformed");
        assert_eq!(decode("AQ==", "x", 3).unwrap_err().code(), "zk-malformed");
        // "AR" has non-zero trailing bits: another spelling of "AQ".
        assert_eq!(decode("AR", "x", 3).unwrap_err().code(), "zk-malformed");
        assert_eq!(
            decode_array::<2>("AQ", "x").unwrap_err().code(),
            "zk-malformed"
        );
        assert_eq!(
            decode("AAAAAAAA", "x", 3).unwrap_err().code(),
            "zk-malformed"
        );
    }
}
