//! W3C Bitstring Status List v1.0: the bitstring (one bit per credential,
//! `statusSize` 1), its `encodedList` form, and the `credentialStatus`
//! entries that point into it.
//!
//! `encodedList` is multibase base64url (`u`, no padding) of the GZIP of
//! the bitstring; index 0 is the most significant bit of the first byte.
//! Decoding stops at [`MAX_DECODED_BYTES`], so a small compressed list
//! cannot expand into gigabytes.

use std::io::Read;

use base64::Engine;
use flate2::bufread::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::{Map, Value};

use crate::vc::VcError;

/// The smallest list: 16 KiB of bits, so one credential's index hides
/// among at least 131,072 (the specification's privacy minimum).
pub const MIN_ENTRIES: usize = 131_072;
/// The largest decoded bitstring accepted (16 MiB, 134,217,728 entries).
pub const MAX_DECODED_BYTES: usize = 16 * 1024 * 1024;
/// The longest `encodedList` read: base64 of a little more than the
/// largest list (GZIP never grows data by more than a few bytes per 16 KiB).
const MAX_ENCODED_LEN: usize = (MAX_DECODED_BYTES + MAX_DECODED_BYTES / 1024 + 64) / 3 * 4 + 4;
const MULTIBASE_BASE64URL: char = 'u';
const ENTRY_TYPE: &str = "BitstringStatusListEntry";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusListError {
    #[error("the status list is not valid encodedList data: {0}")]
    Malformed(&'static str),
    #[error("the status list decodes to more than the {limit} bytes accepted")]
    TooLarge { limit: usize },
    #[error("the status list has fewer than {MIN_ENTRIES} entries")]
    TooShort,
    #[error("status index {index} is outside the list of {len} entries")]
    IndexOutOfRange { index: usize, len: usize },
    #[error("the credentialStatus entry is malformed: {0}")]
    EntryMalformed(String),
    #[error("the status type {0:?} is not supported (only BitstringStatusListEntry)")]
    UnsupportedType(String),
    #[error("the status purpose {0:?} is not supported (only revocation and suspension)")]
    UnsupportedPurpose(String),
    #[error("only statusSize 1 is supported")]
    UnsupportedSize,
    #[error("the entry's purpose is {entry}, the list's is {list}")]
    PurposeMismatch {
        entry: &'static str,
        list: &'static str,
    },
    #[error("the entry points to the list {entry}, not to {list}")]
    ListUrlMismatch { entry: String, list: String },
    #[error("the status list was issued by {list}, the credential by {credential}")]
    IssuerMismatch { list: String, credential: String },
    #[error("the status list credential is not valid: {0}")]
    Credential(VcError),
}

impl StatusListError {
    /// A stable code naming the failure, for APIs and logs.
    pub fn code(&self) -> &'static str {
        match self {
            StatusListError::Malformed(_) => "status-list-malformed",
            StatusListError::TooLarge { .. } => "status-list-too-large",
            StatusListError::TooShort => "status-list-too-short",
            StatusListError::IndexOutOfRange { .. } => "status-index-out-of-range",
            StatusListError::EntryMalformed(_) => "status-entry-malformed",
            StatusListError::UnsupportedType(_) => "status-unsupported-type",
            StatusListError::UnsupportedPurpose(_) => "status-unsupported-purpose",
            StatusListError::UnsupportedSize => "status-unsupported-size",
            StatusListError::PurposeMismatch { .. } => "status-purpose-mismatch",
            StatusListError::ListUrlMismatch { .. } => "status-list-url-mismatch",
            StatusListError::IssuerMismatch { .. } => "status-issuer-mismatch",
            // The credential's own failure says more than a generic code.
            StatusListError::Credential(error) => error.code(),
        }
    }
}

impl From<VcError> for StatusListError {
    fn from(error: VcError) -> Self {
        StatusListError::Credential(error)
    }
}

/// What a set bit means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusPurpose {
    /// Permanent: the credential is void.
    Revocation,
    /// Reversible: the credential is on hold.
    Suspension,
}

impl StatusPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            StatusPurpose::Revocation => "revocation",
            StatusPurpose::Suspension => "suspension",
        }
    }

    pub fn parse(text: &str) -> Result<Self, StatusListError> {
        match text {
            "revocation" => Ok(StatusPurpose::Revocation),
            "suspension" => Ok(StatusPurpose::Suspension),
            other => Err(StatusListError::UnsupportedPurpose(other.to_string())),
        }
    }
}

/// A bitstring of credential statuses, one bit each.
#[derive(Clone, PartialEq, Eq)]
pub struct StatusList {
    bits: Vec<u8>,
}

impl StatusList {
    /// An all-clear list of at least `entries` entries, and never fewer
    /// than [`MIN_ENTRIES`] (rounded up to whole bytes).
    pub fn new(entries: usize) -> Result<Self, StatusListError> {
        let bytes = entries.max(MIN_ENTRIES).div_ceil(8);
        if bytes > MAX_DECODED_BYTES {
            return Err(StatusListError::TooLarge {
                limit: MAX_DECODED_BYTES,
            });
        }
        Ok(StatusList {
            bits: vec![0; bytes],
        })
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.bits.len() * 8
    }

    /// Always false: a list has at least [`MIN_ENTRIES`] entries.
    pub fn is_empty(&self) -> bool {
        self.bits.is_empty()
    }

    pub fn get(&self, index: usize) -> Result<bool, StatusListError> {
        let (byte, mask) = self.position(index)?;
        Ok(self.bits[byte] & mask != 0)
    }

    pub fn set(&mut self, index: usize, value: bool) -> Result<(), StatusListError> {
        let (byte, mask) = self.position(index)?;
        if value {
            self.bits[byte] |= mask;
        } else {
            self.bits[byte] &= !mask;
        }
        Ok(())
    }

    /// How many entries are set.
    pub fn count_set(&self) -> usize {
        self.bits.iter().map(|b| b.count_ones() as usize).sum()
    }

    fn position(&self, index: usize) -> Result<(usize, u8), StatusListError> {
        if index >= self.len() {
            return Err(StatusListError::IndexOutOfRange {
                index,
                len: self.len(),
            });
        }
        Ok((index / 8, 0x80 >> (index % 8)))
    }

    /// The `encodedList` text: `u` + base64url(GZIP(bits)), no padding.
    pub fn encode(&self) -> String {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        // Writing to a Vec cannot fail.
        let compressed = std::io::Write::write_all(&mut encoder, &self.bits)
            .and_then(|_| encoder.finish())
            .unwrap_or_default();
        let mut text = String::with_capacity(compressed.len() * 4 / 3 + 2);
        text.push(MULTIBASE_BASE64URL);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(&compressed, &mut text);
        text
    }

    /// Reads an `encodedList`, refusing lists that decode to more than
    /// [`MAX_DECODED_BYTES`] (without inflating further) or to fewer than
    /// [`MIN_ENTRIES`] entries, and data after the GZIP member.
    pub fn decode(encoded: &str) -> Result<Self, StatusListError> {
        Self::decode_limited(encoded, MAX_DECODED_BYTES)
    }

    /// [`StatusList::decode`] with a lower cap: lists decoding to more than
    /// `max_bytes` (at most [`MAX_DECODED_BYTES`]) are refused with
    /// `status-list-too-large`, having inflated no more than that.
    pub fn decode_limited(encoded: &str, max_bytes: usize) -> Result<Self, StatusListError> {
        let max_bytes = max_bytes.min(MAX_DECODED_BYTES);
        let too_large = StatusListError::TooLarge { limit: max_bytes };
        // base64 of GZIP: never much longer than the data it holds.
        let max_encoded = (max_bytes + max_bytes / 1024 + 64) / 3 * 4 + 4;
        if encoded.len() > max_encoded.min(MAX_ENCODED_LEN) {
            return Err(too_large);
        }
        let base64 =
            encoded
                .strip_prefix(MULTIBASE_BASE64URL)
                .ok_or(StatusListError::Malformed(
                    "it must be multibase base64url (start with 'u')",
                ))?;
        let compressed = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(base64)
            .map_err(|_| StatusListError::Malformed("not base64url without padding"))?;
        let mut decoder = GzDecoder::new(compressed.as_slice()).take(max_bytes as u64 + 1);
        let mut bits = Vec::new();
        decoder
            .read_to_end(&mut bits)
            .map_err(|_| StatusListError::Malformed("not GZIP data"))?;
        if bits.len() > max_bytes {
            return Err(too_large);
        }
        if !decoder.into_inner().into_inner().is_empty() {
            return Err(StatusListError::Malformed("data after the GZIP member"));
        }
        if bits.len() * 8 < MIN_ENTRIES {
            return Err(StatusListError::TooShort);
        }
        Ok(StatusList { bits })
    }
}

impl std::fmt::Debug for StatusList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusList")
            .field("entries", &self.len())
            .field("set", &self.count_set())
            .finish()
    }
}

/// A `credentialStatus` entry of type `BitstringStatusListEntry`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StatusListEntry {
    pub id: Option<String>,
    pub purpose: StatusPurpose,
    pub index: usize,
    /// URL of the status list credential (its `id`).
    pub list_credential: String,
}

impl StatusListEntry {
    /// An entry with the conventional id `<list>#<index>`.
    pub fn new(list_credential: impl Into<String>, purpose: StatusPurpose, index: usize) -> Self {
        let list_credential = list_credential.into();
        StatusListEntry {
            id: Some(format!("{list_credential}#{index}")),
            purpose,
            index,
            list_credential,
        }
    }

    pub fn to_json(&self) -> Value {
        let mut entry = Map::new();
        if let Some(id) = &self.id {
            entry.insert("id".into(), id.clone().into());
        }
        entry.insert("type".into(), ENTRY_TYPE.into());
        entry.insert("statusPurpose".into(), self.purpose.as_str().into());
        entry.insert("statusListIndex".into(), self.index.to_string().into());
        entry.insert(
            "statusListCredential".into(),
            self.list_credential.clone().into(),
        );
        Value::Object(entry)
    }

    pub fn from_json(value: &Value) -> Result<Self, StatusListError> {
        let bad = |reason: &str| StatusListError::EntryMalformed(reason.to_string());
        let entry = value.as_object().ok_or_else(|| bad("not an object"))?;
        let text = |name: &str| match entry.get(name) {
            Some(Value::String(text)) => Ok(text.as_str()),
            Some(_) => Err(bad(&format!("{name} is not a string"))),
            None => Err(bad(&format!("{name} is missing"))),
        };
        let entry_type = text("type")?;
        if entry_type != ENTRY_TYPE {
            return Err(StatusListError::UnsupportedType(entry_type.to_string()));
        }
        let purpose = StatusPurpose::parse(text("statusPurpose")?)?;
        let index = parse_index(text("statusListIndex")?)
            .ok_or_else(|| bad("statusListIndex is not a decimal number below 2^27"))?;
        let list_credential = text("statusListCredential")?;
        if list_credential.is_empty() || list_credential.contains(char::is_whitespace) {
            return Err(bad("statusListCredential is not a URL"));
        }
        if let Some(size) = entry.get("statusSize") {
            if size.as_u64() != Some(1) {
                return Err(StatusListError::UnsupportedSize);
            }
        }
        let id = match entry.get("id") {
            None => None,
            Some(Value::String(id)) if !id.is_empty() => Some(id.clone()),
            Some(_) => return Err(bad("id is not a URL")),
        };
        Ok(StatusListEntry {
            id,
            purpose,
            index,
            list_credential: list_credential.to_string(),
        })
    }

    /// The entries of a `credentialStatus` value: one object, or a list.
    pub fn all_from_json(status: &Value) -> Result<Vec<Self>, StatusListError> {
        match status {
            Value::Array(entries) => entries.iter().map(Self::from_json).collect(),
            single => Ok(vec![Self::from_json(single)?]),
        }
    }
}

/// A canonical decimal (no sign, no leading zeros) small enough to index
/// the largest list.
fn parse_index(text: &str) -> Option<usize> {
    let canonical = !text.is_empty()
        && text.len() <= 10
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    let index: usize = text.parse().ok().filter(|_| canonical)?;
    (index < MAX_DECODED_BYTES * 8).then_some(index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bits_are_numbered_from_the_most_significant() {
        let mut list = StatusList::new(0).unwrap();
        assert_eq!(list.len(), MIN_ENTRIES);
        list.set(0, true).unwrap();
        list.set(9, true).unwrap();
        assert_eq!(&list.bits[..2], &[0x80, 0x40]);
        assert!(list.get(9).unwrap());
        list.set(9, false).unwrap();
        assert!(!list.get(9).unwrap());
        assert_eq!(list.count_set(), 1);
    }

    #[test]
    fn sizes_are_bounded() {
        assert_eq!(
            StatusList::new(MIN_ENTRIES + 1).unwrap().len(),
            MIN_ENTRIES + 8
        );
        assert_eq!(
            StatusList::new(MAX_DECODED_BYTES * 8 + 1)
                .unwrap_err()
                .code(),
            "status-list-too-large"
        );
        let list = StatusList::new(0).unwrap();
        let err = list.get(MIN_ENTRIES).unwrap_err();
        assert_eq!(err.code(), "status-index-out-of-range");
        let mut list = list;
        assert_eq!(
            list.set(usize::MAX, true).unwrap_err().code(),
            "status-index-out-of-range"
        );
    }

    #[test]
    fn encoding_round_trips() {
        let mut list = StatusList::new(0).unwrap();
        for index in [0, 7, 8, 94_567, MIN_ENTRIES - 1] {
            list.set(index, true).unwrap();
        }
        let encoded = list.encode();
        assert!(encoded.starts_with("uH4sI"));
        assert_eq!(StatusList::decode(&encoded).unwrap(), list);
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
        std::io::Write::write_all(&mut encoder, bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn multibase(bytes: &[u8]) -> String {
        format!(
            "u{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        )
    }

    #[test]
    fn refuses_bad_encodings_with_codes() {
        let good = StatusList::new(0).unwrap().encode();
        let cases = [
            (good[1..].to_string(), "status-list-malformed"),
            (format!("z{}", &good[1..]), "status-list-malformed"),
            (format!("{good}="), "status-list-malformed"),
            (good.replace('-', "+"), "status-list-malformed"),
            ("u".to_string(), "status-list-malformed"),
            (multibase(b"not gzip at all"), "status-list-malformed"),
            (multibase(&gzip(&[0; 1024])), "status-list-too-short"),
            (multibase(&gzip(&[])), "status-list-too-short"),
            (
                "u".to_string() + &"A".repeat(MAX_ENCODED_LEN),
                "status-list-too-large",
            ),
        ];
        for (text, code) in cases {
            let shown = &text[..text.len().min(40)];
            assert_eq!(
                StatusList::decode(&text).unwrap_err().code(),
                code,
                "{shown}"
            );
        }
        // Trailing data, and a second GZIP member.
        let mut compressed = gzip(&[0; MIN_ENTRIES / 8]);
        let member = compressed.clone();
        compressed.push(0);
        assert_eq!(
            StatusList::decode(&multibase(&compressed))
                .unwrap_err()
                .code(),
            "status-list-malformed"
        );
        let mut two = member.clone();
        two.extend_from_slice(&member);
        assert_eq!(
            StatusList::decode(&multibase(&two)).unwrap_err().code(),
            "status-list-malformed"
        );
        // A truncated member and a flipped CRC.
        let truncated = &member[..member.len() - 4];
        assert_eq!(
            StatusList::decode(&multibase(truncated))
                .unwrap_err()
                .code(),
            "status-list-malformed"
        );
        let mut bad_crc = member.clone();
        let at = bad_crc.len() - 8;
        bad_crc[at] ^= 1;
        assert_eq!(
            StatusList::decode(&multibase(&bad_crc)).unwrap_err().code(),
            "status-list-malformed"
        );
    }

    #[test]
    fn a_zip_bomb_stops_at_the_cap() {
        // 64 MiB of zeros compress to about 64 KiB.
        let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..64 {
            std::io::Write::write_all(&mut encoder, &chunk).unwrap();
        }
        let bomb = multibase(&encoder.finish().unwrap());
        assert!(bomb.len() < 200_000);
        assert_eq!(
            StatusList::decode(&bomb).unwrap_err().code(),
            "status-list-too-large"
        );
        // Exactly at the cap is accepted.
        let max = multibase(&gzip(&vec![0; MAX_DECODED_BYTES]));
        assert_eq!(
            StatusList::decode(&max).unwrap().len(),
            MAX_DECODED_BYTES * 8
        );
    }

    #[test]
    fn a_lower_cap_stops_decoding_there() {
        let cap = 1 << 20;
        let at_cap = multibase(&gzip(&vec![0x55; cap]));
        assert_eq!(
            StatusList::decode_limited(&at_cap, cap).unwrap().len(),
            cap * 8
        );
        let over = multibase(&gzip(&vec![0x55; cap + 1]));
        let err = StatusList::decode_limited(&over, cap).unwrap_err();
        assert_eq!(err.code(), "status-list-too-large");
        assert!(err.to_string().contains("1048576"), "{err}");
        // The cap never rises above the library's own.
        let max = multibase(&gzip(&vec![0; MAX_DECODED_BYTES]));
        assert!(StatusList::decode_limited(&max, usize::MAX).is_ok());
        // Text too long to hold a list under the cap is refused unread.
        let long = "u".to_string() + &"A".repeat(cap * 2);
        assert_eq!(
            StatusList::decode_limited(&long, cap).unwrap_err().code(),
            "status-list-too-large"
        );
    }

    #[test]
    fn entries_round_trip() {
        let entry = StatusListEntry::new(
            "https://example.com/status/3",
            StatusPurpose::Suspension,
            42,
        );
        let json = entry.to_json();
        assert_eq!(json["id"], "https://example.com/status/3#42");
        assert_eq!(json["statusListIndex"], "42");
        assert_eq!(StatusListEntry::from_json(&json).unwrap(), entry);
        assert_eq!(
            StatusListEntry::all_from_json(&json!([json, json]))
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn refuses_bad_entries_with_codes() {
        let good =
            StatusListEntry::new("https://example.com/status/3", StatusPurpose::Revocation, 7)
                .to_json();
        let with = |name: &str, value: Value| {
            let mut entry = good.clone();
            entry[name] = value;
            StatusListEntry::from_json(&entry).unwrap_err().code()
        };
        let without = |name: &str| {
            let mut entry = good.clone();
            entry.as_object_mut().unwrap().remove(name);
            StatusListEntry::from_json(&entry).unwrap_err().code()
        };
        assert_eq!(
            with("type", json!("StatusList2021Entry")),
            "status-unsupported-type"
        );
        assert_eq!(
            with("statusPurpose", json!("refresh")),
            "status-unsupported-purpose"
        );
        assert_eq!(
            with("statusPurpose", json!("message")),
            "status-unsupported-purpose"
        );
        assert_eq!(with("statusSize", json!(2)), "status-unsupported-size");
        for index in [
            json!(7),
            json!("-1"),
            json!("+7"),
            json!("07"),
            json!("7.0"),
            json!(""),
            json!("99999999999"),
            json!("134217728"),
        ] {
            assert_eq!(
                with("statusListIndex", index.clone()),
                "status-entry-malformed",
                "{index}"
            );
        }
        assert_eq!(
            with("statusListCredential", json!("")),
            "status-entry-malformed"
        );
        assert_eq!(
            with("statusListCredential", json!("https://a b")),
            "status-entry-malformed"
        );
        assert_eq!(with("id", json!(1)), "status-entry-malformed");
        for name in [
            "type",
            "statusPurpose",
            "statusListIndex",
            "statusListCredential",
        ] {
            assert_eq!(without(name), "status-entry-malformed", "{name}");
        }
        assert_eq!(
            StatusListEntry::from_json(&json!("x")).unwrap_err().code(),
            "status-entry-malformed"
        );
        assert!(StatusListEntry::from_json(&with_size_one(&good)).is_ok());
        assert_eq!(parse_index("134217727"), Some(134_217_727));
        assert_eq!(parse_index("0"), Some(0));
    }

    fn with_size_one(entry: &Value) -> Value {
        let mut entry = entry.clone();
        entry["statusSize"] = json!(1);
        entry
    }
}
