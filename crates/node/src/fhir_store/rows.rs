//! How `fhir.redb` stores a version and a current resource: a compact
//! binary row whose repeated texts (DIDs, consent categories, parameter
//! names, code systems, codes, references) are numbers into one string
//! table, `strings`, written in the same file transaction as the rows that
//! first use them. A row costs tens of bytes instead of the kilobyte or so
//! of its JSON form, which repeated every DID and field name.
//!
//! Rows written before this format are JSON objects; they start with `{`,
//! a binary row with [`FORMAT`], so both are read (see
//! [`super::FhirStore::open`], which rewrites the old rows once).

use std::collections::HashMap;

use hygeia_fhir::date::DateRange;
use hygeia_fhir::search::{IndexEntry, ParamMap, Token};
use hygeia_fhir::types::ResourceType;

use super::{err, StoreError, Version};

/// The first byte of a binary row.
pub(super) const FORMAT: u8 = 1;

/// A record commitment as memory keeps it: the 32 bytes of a lowercase
/// hex SHA-256 (every commitment the node makes), or any other text as
/// written.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) enum Commitment {
    Digest([u8; 32]),
    Text(Box<str>),
}

impl Commitment {
    pub(super) fn of(text: &str) -> Commitment {
        match hex_32(text) {
            Some(bytes) => Commitment::Digest(bytes),
            None => Commitment::Text(text.into()),
        }
    }

    pub(super) fn text(&self) -> String {
        match self {
            Commitment::Digest(bytes) => hex::encode(bytes),
            Commitment::Text(text) => text.to_string(),
        }
    }
}

/// A [`Version`] as memory keeps it, its texts numbers into [`Strings`]
/// (the same numbers its row holds).
#[derive(Clone, Debug)]
pub(super) struct Latest {
    pub(super) version: u64,
    pub(super) last_updated: i64,
    pub(super) commitment: Commitment,
    pub(super) patient: u32,
    pub(super) category: u32,
    pub(super) author: u32,
    pub(super) deleted: bool,
}

impl Latest {
    /// The compact form of `version`; an error when a text is not in the
    /// table (a write interns its texts before memory sees them).
    pub(super) fn of(version: &Version, strings: &Strings) -> Result<Latest, StoreError> {
        let id = |text: &str| {
            strings
                .id(text)
                .ok_or_else(|| StoreError(format!("text {text:?} is not in the string table")))
        };
        Ok(Latest {
            version: version.version,
            last_updated: version.last_updated,
            commitment: Commitment::of(&version.commitment),
            patient: id(&version.patient)?,
            category: id(&version.category)?,
            author: id(&version.author)?,
            deleted: version.deleted,
        })
    }

    pub(super) fn version(&self, strings: &Strings) -> Version {
        Version {
            version: self.version,
            commitment: self.commitment.text(),
            last_updated: self.last_updated,
            deleted: self.deleted,
            patient: strings.resolve(self.patient).to_owned(),
            category: strings.resolve(self.category).to_owned(),
            author: strings.resolve(self.author).to_owned(),
        }
    }
}

/// The string table as loaded from the file: a text's number is its
/// position.
#[derive(Default)]
pub(super) struct Strings {
    texts: Vec<String>,
    ids: HashMap<String, u32>,
}

impl Strings {
    pub(super) fn len(&self) -> usize {
        self.texts.len()
    }

    /// Appends the next text (the table's rows are read in order).
    pub(super) fn push(&mut self, text: String) {
        let id = self.texts.len() as u32;
        self.ids.insert(text.clone(), id);
        self.texts.push(text);
    }

    /// Forgets every text from position `len` on (a write that failed).
    pub(super) fn truncate(&mut self, len: usize) {
        for text in self.texts.drain(len..) {
            self.ids.remove(&text);
        }
    }

    /// The number of a text the table holds.
    pub(super) fn id(&self, text: &str) -> Option<u32> {
        self.ids.get(text).copied()
    }

    /// The text of a number memory holds: memory takes its numbers from
    /// rows read through [`Strings::text`] or from texts interned by a
    /// committed write, so the table always holds them.
    pub(super) fn resolve(&self, id: u32) -> &str {
        debug_assert!((id as usize) < self.texts.len(), "string {id} not held");
        self.texts.get(id as usize).map_or("", String::as_str)
    }

    fn text(&self, id: u64) -> Result<&str, StoreError> {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.texts.get(i))
            .map(String::as_str)
            .ok_or_else(|| StoreError(format!("row names string {id}, which is not stored")))
    }

    /// The number of `text`, adding it (and to `added`) when new.
    pub(super) fn intern(&mut self, text: &str, added: &mut Vec<(u32, String)>) -> u32 {
        if let Some(id) = self.ids.get(text) {
            return *id;
        }
        let id = self.texts.len() as u32;
        self.push(text.to_owned());
        added.push((id, text.to_owned()));
        id
    }
}

/// Encodes rows, interning their texts.
pub(super) struct Encoder<'a> {
    pub(super) strings: &'a mut Strings,
    /// Texts added by this write, to store with its rows.
    pub(super) added: Vec<(u32, String)>,
}

impl Encoder<'_> {
    fn text(&mut self, out: &mut Vec<u8>, text: &str) {
        let id = self.strings.intern(text, &mut self.added);
        put_varint(out, u64::from(id));
    }

    fn version_fields(&mut self, out: &mut Vec<u8>, version: &Version) {
        put_varint(out, version.version);
        put_signed(out, version.last_updated);
        out.push(u8::from(version.deleted));
        match hex_32(&version.commitment) {
            Some(bytes) => {
                out.push(0);
                out.extend_from_slice(&bytes);
            }
            None => {
                out.push(1);
                put_varint(out, version.commitment.len() as u64);
                out.extend_from_slice(version.commitment.as_bytes());
            }
        }
        self.text(out, &version.patient);
        self.text(out, &version.category);
        self.text(out, &version.author);
    }

    /// A `versions` row.
    pub(super) fn version(&mut self, version: &Version) -> Vec<u8> {
        let mut out = vec![FORMAT];
        self.version_fields(&mut out, version);
        out
    }

    /// A `current` row: its latest version, then its search index.
    pub(super) fn current(&mut self, latest: &Version, index: &IndexEntry) -> Vec<u8> {
        let mut out = vec![FORMAT];
        self.version_fields(&mut out, latest);
        self.text(&mut out, index.resource_type.as_str());
        match index.last_updated {
            Some(ms) => {
                out.push(1);
                put_signed(&mut out, ms);
            }
            None => out.push(0),
        }
        self.tokens(&mut out, &index.tokens);
        put_varint(&mut out, index.dates.len() as u64);
        for (name, ranges) in &index.dates {
            self.text(&mut out, name);
            put_varint(&mut out, ranges.len() as u64);
            for range in ranges {
                put_signed(&mut out, range.start);
                put_signed(&mut out, range.end);
            }
        }
        self.texts(&mut out, &index.references);
        self.tokens(&mut out, &index.reference_identifiers);
        self.texts(&mut out, &index.strings);
        out
    }

    fn tokens(&mut self, out: &mut Vec<u8>, map: &ParamMap<Vec<Token>>) {
        put_varint(out, map.len() as u64);
        for (name, tokens) in map {
            self.text(out, name);
            put_varint(out, tokens.len() as u64);
            for token in tokens {
                match &token.system {
                    Some(system) => {
                        let id = self.strings.intern(system, &mut self.added);
                        put_varint(out, u64::from(id) + 1);
                    }
                    None => put_varint(out, 0),
                }
                self.text(out, &token.code);
            }
        }
    }

    fn texts(&mut self, out: &mut Vec<u8>, map: &ParamMap<Vec<String>>) {
        put_varint(out, map.len() as u64);
        for (name, values) in map {
            self.text(out, name);
            put_varint(out, values.len() as u64);
            for value in values {
                self.text(out, value);
            }
        }
    }
}

/// The version number a stored `current` row holds, without resolving
/// its texts (a write compares it with the version it brings).
pub(super) fn current_version_number(row: &[u8]) -> Result<u64, StoreError> {
    if row.first() == Some(&FORMAT) {
        Reader { rest: &row[1..] }.varint()
    } else {
        let current: super::Current = serde_json::from_slice(row).map_err(err)?;
        Ok(current.latest.version)
    }
}

/// A `versions` row, binary or JSON.
pub(super) fn decode_version(row: &[u8], strings: &Strings) -> Result<Version, StoreError> {
    if row.first() != Some(&FORMAT) {
        return serde_json::from_slice(row).map_err(err);
    }
    let mut reader = Reader { rest: &row[1..] };
    let latest = reader.latest(strings)?;
    reader.end()?;
    Ok(latest.version(strings))
}

/// A `versions` row as memory keeps it.
pub(super) fn decode_version_compact(row: &[u8], strings: &Strings) -> Result<Latest, StoreError> {
    if row.first() != Some(&FORMAT) {
        let version: Version = serde_json::from_slice(row).map_err(err)?;
        return Latest::of(&version, strings);
    }
    let mut reader = Reader { rest: &row[1..] };
    let latest = reader.latest(strings)?;
    reader.end()?;
    Ok(latest)
}

/// A `current` row, binary or JSON: its latest version and index.
pub(super) fn decode_current(
    row: &[u8],
    strings: &Strings,
) -> Result<(Version, IndexEntry), StoreError> {
    if row.first() != Some(&FORMAT) {
        let current: super::Current = serde_json::from_slice(row).map_err(err)?;
        return Ok((current.latest, current.index));
    }
    let (latest, index) = decode_current_compact(row, strings)?;
    Ok((latest.version(strings), index))
}

/// A `current` row as memory keeps it: its latest version with its texts
/// as numbers (no text copied), and its index.
pub(super) fn decode_current_compact(
    row: &[u8],
    strings: &Strings,
) -> Result<(Latest, IndexEntry), StoreError> {
    if row.first() != Some(&FORMAT) {
        let current: super::Current = serde_json::from_slice(row).map_err(err)?;
        let latest = Latest::of(&current.latest, strings)?;
        return Ok((latest, current.index));
    }
    let mut reader = Reader { rest: &row[1..] };
    let latest = reader.latest(strings)?;
    let resource_type: ResourceType = reader
        .text(strings)?
        .parse()
        .map_err(|_| StoreError("row names an unknown resource type".into()))?;
    let mut index = IndexEntry::new(resource_type);
    index.last_updated = match reader.byte()? {
        0 => None,
        _ => Some(reader.signed()?),
    };
    index.tokens = reader.tokens(strings)?;
    for _ in 0..reader.count()? {
        let name = reader.text(strings)?.to_owned();
        let count = reader.count()?;
        let mut ranges = Vec::with_capacity(count);
        for _ in 0..count {
            ranges.push(DateRange {
                start: reader.signed()?,
                end: reader.signed()?,
            });
        }
        index.dates.insert(name, ranges);
    }
    index.references = reader.texts(strings)?;
    index.reference_identifiers = reader.tokens(strings)?;
    index.strings = reader.texts(strings)?;
    reader.end()?;
    index.shrink_to_fit();
    Ok((latest, index))
}

struct Reader<'a> {
    rest: &'a [u8],
}

fn truncated() -> StoreError {
    StoreError("a stored row is truncated".into())
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, StoreError> {
        let (first, rest) = self.rest.split_first().ok_or_else(truncated)?;
        self.rest = rest;
        Ok(*first)
    }

    fn bytes(&mut self, len: usize) -> Result<&'a [u8], StoreError> {
        if self.rest.len() < len {
            return Err(truncated());
        }
        let (bytes, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(bytes)
    }

    fn varint(&mut self) -> Result<u64, StoreError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(StoreError("a stored row holds an overlong number".into()))
    }

    /// A count of items that follow, each at least a byte long.
    fn count(&mut self) -> Result<usize, StoreError> {
        let count = self.varint()?;
        usize::try_from(count)
            .ok()
            .filter(|c| *c <= self.rest.len())
            .ok_or_else(truncated)
    }

    fn signed(&mut self) -> Result<i64, StoreError> {
        let zigzag = self.varint()?;
        Ok(((zigzag >> 1) as i64) ^ -((zigzag & 1) as i64))
    }

    fn text<'s>(&mut self, strings: &'s Strings) -> Result<&'s str, StoreError> {
        let id = self.varint()?;
        strings.text(id)
    }

    /// The number of a text, checked to be in the table.
    fn text_id(&mut self, strings: &Strings) -> Result<u32, StoreError> {
        let id = self.varint()?;
        strings.text(id)?;
        // The table holds fewer than 2^32 texts.
        u32::try_from(id).map_err(err)
    }

    fn latest(&mut self, strings: &Strings) -> Result<Latest, StoreError> {
        let version = self.varint()?;
        let last_updated = self.signed()?;
        let deleted = self.byte()? != 0;
        let commitment = match self.byte()? {
            0 => {
                let mut digest = [0u8; 32];
                digest.copy_from_slice(self.bytes(32)?);
                Commitment::Digest(digest)
            }
            _ => {
                let len = self.count()?;
                let text = std::str::from_utf8(self.bytes(len)?).map_err(err)?;
                // A digest written as text still compares as one.
                Commitment::of(text)
            }
        };
        Ok(Latest {
            version,
            last_updated,
            commitment,
            patient: self.text_id(strings)?,
            category: self.text_id(strings)?,
            author: self.text_id(strings)?,
            deleted,
        })
    }

    fn tokens(&mut self, strings: &Strings) -> Result<ParamMap<Vec<Token>>, StoreError> {
        let mut map = ParamMap::new();
        for _ in 0..self.count()? {
            let name = self.text(strings)?.to_owned();
            let count = self.count()?;
            let mut tokens = Vec::with_capacity(count);
            for _ in 0..count {
                let system = match self.varint()? {
                    0 => None,
                    id => Some(strings.text(id - 1)?.to_owned()),
                };
                tokens.push(Token {
                    system,
                    code: self.text(strings)?.to_owned(),
                });
            }
            map.insert(name, tokens);
        }
        Ok(map)
    }

    fn texts(&mut self, strings: &Strings) -> Result<ParamMap<Vec<String>>, StoreError> {
        let mut map = ParamMap::new();
        for _ in 0..self.count()? {
            let name = self.text(strings)?.to_owned();
            let count = self.count()?;
            let mut values = Vec::with_capacity(count);
            for _ in 0..count {
                values.push(self.text(strings)?.to_owned());
            }
            map.insert(name, values);
        }
        Ok(map)
    }

    fn end(&self) -> Result<(), StoreError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(StoreError("a stored row has trailing bytes".into()))
        }
    }
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_signed(out: &mut Vec<u8>, value: i64) {
    put_varint(out, ((value << 1) ^ (value >> 63)) as u64);
}

/// The 32 bytes of a lowercase hex SHA-256, if that is what `text` is
/// (it is for every commitment the node makes; anything else is kept as
/// written).
fn hex_32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || text.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(text, &mut bytes).ok()?;
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(commitment: &str) -> Version {
        Version {
            version: 300,
            commitment: commitment.to_owned(),
            last_updated: 1_733_000_000_123,
            deleted: false,
            patient: "did:key:z6MkpatientXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX".into(),
            category: "lab".into(),
            author: "did:key:z6MkauthorYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYY".into(),
        }
    }

    fn index() -> IndexEntry {
        let observation = serde_json::json!({
            "resourceType": "Observation", "id": "o1", "status": "final",
            "meta": {"lastUpdated": "2026-12-01T10:00:00Z"},
            "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}, {"code": "local"}]},
            "subject": {"reference": "Patient/p1"},
            "effectivePeriod": {"start": "2020-01-01"},
            "performer": [{"identifier": {"system": "urn:x", "value": "dr-1"}}],
            "valueString": "Ünïcode text"
        });
        hygeia_fhir::search::extract(ResourceType::Observation, &observation)
    }

    #[test]
    fn rows_read_back_as_written_and_share_their_texts() {
        let mut strings = Strings::default();
        let mut encoder = Encoder {
            strings: &mut strings,
            added: Vec::new(),
        };
        let index = index();
        assert!(!index.tokens.is_empty() && !index.dates.is_empty());
        assert!(!index.references.is_empty());
        let hashed = version(&"ab".repeat(32));
        let other = version("not-hex");
        let current = encoder.current(&hashed, &index);
        let versions = [encoder.version(&hashed), encoder.version(&other)];
        let second = encoder.current(&hashed, &index);
        let added = encoder.added.len();
        assert_eq!(strings.len(), added);
        // The second row of the same resource added no text.
        assert_eq!(current, second);
        let json = serde_json::to_vec(&super::super::Current {
            resource_type: "Observation".into(),
            id: "o1".into(),
            latest: hashed.clone(),
            index: index.clone(),
        })
        .unwrap();
        assert!(
            current.len() * 5 < json.len(),
            "{} of {}",
            current.len(),
            json.len()
        );
        assert_eq!(
            decode_current(&current, &strings).unwrap(),
            (hashed.clone(), index.clone())
        );
        assert_eq!(current_version_number(&current).unwrap(), 300);
        assert_eq!(decode_version(&versions[0], &strings).unwrap(), hashed);
        assert_eq!(decode_version(&versions[1], &strings).unwrap(), other);
        // The JSON rows of before are still read.
        assert_eq!(
            decode_current(&json, &strings).unwrap(),
            (hashed.clone(), index)
        );
        assert_eq!(current_version_number(&json).unwrap(), 300);
        let json_version = serde_json::to_vec(&hashed).unwrap();
        assert_eq!(decode_version(&json_version, &strings).unwrap(), hashed);
    }

    #[test]
    fn damaged_rows_are_refused() {
        let mut strings = Strings::default();
        let mut encoder = Encoder {
            strings: &mut strings,
            added: Vec::new(),
        };
        let row = encoder.current(&version(&"cd".repeat(32)), &index());
        for cut in 1..row.len() {
            assert!(
                decode_current(&row[..cut], &strings).is_err(),
                "cut at {cut}"
            );
        }
        let mut longer = row.clone();
        longer.push(0);
        assert!(decode_current(&longer, &strings).is_err());
        // A text the table does not hold.
        let mut few = Strings::default();
        few.push("only one".into());
        assert!(decode_current(&row, &few).is_err());
    }
}
