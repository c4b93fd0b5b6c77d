//! Multicodec key prefixes and the multibase forms built on them, as used by
//! `did:key` and by `Multikey` verification methods: base58btc (`z`) of an
//! unsigned-varint codec number followed by the raw public key.

/// `ed25519-pub`.
pub const ED25519_PUB: u64 = 0xed;
/// `x25519-pub`.
pub const X25519_PUB: u64 = 0xec;

/// Multibase prefix of base58btc.
pub const BASE58BTC: char = 'z';

/// The registry name of a public-key codec, so an error can say which key
/// type it met (the did:key test vectors carry all of these).
pub fn key_codec_name(codec: u64) -> &'static str {
    match codec {
        ED25519_PUB => "Ed25519",
        X25519_PUB => "X25519",
        0xe7 => "secp256k1",
        0xea => "BLS12-381 G1",
        0xeb => "BLS12-381 G2",
        0xee => "BLS12-381 G1+G2",
        0x1200 => "P-256",
        0x1201 => "P-384",
        0x1202 => "P-521",
        0x1205 => "RSA",
        _ => "unknown",
    }
}

/// Splits an unsigned-varint codec number off the front of `bytes`.
/// Refuses non-minimal encodings (a trailing zero continuation group), so
/// each codec has exactly one prefix.
pub fn split_codec(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut value: u64 = 0;
    // Multicodec varints are at most 9 bytes (63 bits).
    for (i, &byte) in bytes.iter().enumerate().take(9) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            if i > 0 && byte == 0 {
                return None;
            }
            return Some((value, &bytes[i + 1..]));
        }
    }
    None
}

fn push_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// `z` + base58btc(varint(codec) ‖ key): the `publicKeyMultibase` of a
/// Multikey, and the method-specific id of a did:key.
pub fn encode_key(codec: u64, key: &[u8; 32]) -> String {
    let mut bytes = Vec::with_capacity(42);
    push_varint(&mut bytes, codec);
    bytes.extend_from_slice(key);
    format!("{BASE58BTC}{}", bs58::encode(bytes).into_string())
}

/// Decodes a multibase multicodec 32-byte key, returning its codec; `None`
/// for any other encoding or length, and for non-canonical text.
pub fn decode_key(text: &str) -> Option<(u64, [u8; 32])> {
    let encoded = text.strip_prefix(BASE58BTC)?;
    // Guards the quadratic base58 decoder; a 32-byte key takes 48 digits.
    if encoded.len() > 64 {
        return None;
    }
    let bytes = bs58::decode(encoded).into_vec().ok()?;
    let (codec, key) = split_codec(&bytes)?;
    let key: [u8; 32] = key.try_into().ok()?;
    (encode_key(codec, &key) == text).then_some((codec, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_split_and_refuse_padding() {
        assert_eq!(split_codec(&[0xed, 0x01, 7]), Some((0xed, &[7u8][..])));
        assert_eq!(split_codec(&[0xe7, 0x01]), Some((0xe7, &[][..])));
        assert_eq!(split_codec(&[0x80, 0x24]), Some((0x1200, &[][..])));
        assert_eq!(split_codec(&[0x05]), Some((5, &[][..])));
        // 0xed 0x81 0x00 encodes 0xed with a padding group.
        assert_eq!(split_codec(&[0xed, 0x81, 0x00]), None);
        assert_eq!(split_codec(&[0xed]), None);
        assert_eq!(split_codec(&[]), None);
        assert_eq!(split_codec(&[0xff; 12]), None);
    }

    #[test]
    fn keys_round_trip_with_their_codec() {
        let key = [9u8; 32];
        let text = encode_key(X25519_PUB, &key);
        assert!(text.starts_with("z6LS"));
        assert_eq!(decode_key(&text), Some((X25519_PUB, key)));
        let ed = encode_key(ED25519_PUB, &key);
        assert!(ed.starts_with("z6Mk"));
        assert_eq!(decode_key(&ed), Some((ED25519_PUB, key)));
        assert_eq!(decode_key(&text.replacen('z', "z1", 1)), None);
        assert_eq!(decode_key("m6LS"), None);
        assert_eq!(decode_key(&text[..text.len() - 1]), None);
    }
}
