//! The crate's strict unpadded base64url (`crate::base64url`) for binary
//! fields, with a length cap checked before decoding and `ZkError`s that
//! name the field.

use super::error::ZkError;

pub(crate) use crate::base64url::encode;

pub(crate) fn decode(text: &str, what: &str, max_len: usize) -> Result<Vec<u8>, ZkError> {
    // Four characters carry three bytes; refuse before allocating.
    if text.len() > max_len.div_ceil(3) * 4 {
        return Err(ZkError::malformed(format!("{what} is too long")));
    }
    crate::base64url::decode(text)
        .ok_or_else(|| ZkError::malformed(format!("{what} is not unpadded base64url")))
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
