//! How `custody.redb` stores a [`RecordMeta`]: a binary row in which the
//! hex addresses, the base64url signature and the author's `did:key` are
//! kept as the bytes they spell, a common media type as a one-byte code,
//! lengths and the size as varints (a row of [`FORMAT`] 2). Rows written
//! before are still read: JSON objects (they start with `{`) and binary
//! rows of format 1 (four-byte lengths, an eight-byte size, the author
//! and media type as text).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use hygeia_vault::blob::BlobId;

use super::{meta_err, CustodyError, RecordLocation, RecordMeta};

/// The first byte of a binary row written now.
const FORMAT: u8 = 2;
/// The first byte of a binary row of before: each text with a four-byte
/// length, the size in eight bytes.
const FORMAT_1: u8 = 1;

/// How a text field is kept.
const AS_TEXT: u8 = 0;
const AS_HEX: u8 = 1;
const AS_BASE64URL: u8 = 2;
/// A `did:key:z…`: the bytes its base58btc spells.
const AS_DID_KEY: u8 = 3;
/// One of [`MEDIA_TYPES`]: its position, in place of a length.
const AS_MEDIA_TYPE: u8 = 4;

const DID_KEY_PREFIX: &str = "did:key:z";
/// Media types kept as a code (append only: a code is its position).
const MEDIA_TYPES: [&str; 3] = [
    "application/fhir+json",
    "application/json",
    "application/pdf",
];

pub(super) fn encode(meta: &RecordMeta) -> Vec<u8> {
    let mut out = vec![FORMAT];
    for text in [
        &meta.blob,
        &meta.salt,
        &meta.media_type,
        &meta.author,
        &meta.provenance,
    ] {
        put_text(&mut out, text);
    }
    put_varint(&mut out, meta.size);
    out
}

pub(super) fn decode(row: &[u8]) -> Result<RecordMeta, CustodyError> {
    let Some(mut reader) = Reader::binary(row) else {
        return serde_json::from_slice(row).map_err(meta_err);
    };
    let meta = RecordMeta {
        blob: reader.text()?,
        salt: reader.text()?,
        media_type: reader.text()?,
        author: reader.text()?,
        provenance: reader.text()?,
        size: reader.size()?,
    };
    reader.end()?;
    Ok(meta)
}

/// The ciphertext's address and the plaintext's length of a row: what
/// opening the record needs, read without spelling the other fields (the
/// author's `did:key` alone is a base58 encoding).
pub(super) fn decode_location(row: &[u8]) -> Result<RecordLocation, CustodyError> {
    let Some(mut reader) = Reader::binary(row) else {
        return decode(row).and_then(|meta| RecordLocation::of(&meta));
    };
    let blob = match reader.raw_text()? {
        (AS_HEX, bytes) => <[u8; 32]>::try_from(bytes)
            .map(BlobId::from_bytes)
            .map_err(|_| damaged("blob address"))?,
        (form, bytes) => BlobId::from_hex(&spell(form, reader.format, bytes)?)?,
    };
    // The salt, the media type, the author and the provenance.
    for _ in 0..4 {
        reader.raw_text()?;
    }
    let size = reader.size()?;
    reader.end()?;
    Ok(RecordLocation { blob, size })
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Lowercase hex, unpadded base64url or a `did:key` as the bytes they
/// spell, when that gives back exactly `text`; a known media type as its
/// code; anything else as written.
fn put_text(out: &mut Vec<u8>, text: &str) {
    if let Some(code) = MEDIA_TYPES.iter().position(|m| *m == text) {
        out.push(AS_MEDIA_TYPE);
        out.push(code as u8);
        return;
    }
    let (form, bytes) = if let Some(bytes) = text
        .strip_prefix(DID_KEY_PREFIX)
        .and_then(|b58| bs58::decode(b58).into_vec().ok())
        .filter(|b| format!("{DID_KEY_PREFIX}{}", bs58::encode(b).into_string()) == text)
    {
        (AS_DID_KEY, bytes)
    } else if let Some(bytes) = hex::decode(text).ok().filter(|b| hex::encode(b) == text) {
        (AS_HEX, bytes)
    } else if let Some(bytes) = URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .filter(|b| URL_SAFE_NO_PAD.encode(b) == text)
    {
        (AS_BASE64URL, bytes)
    } else {
        (AS_TEXT, text.as_bytes().to_vec())
    };
    out.push(form);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(&bytes);
}

fn damaged(what: &str) -> CustodyError {
    CustodyError::Meta(format!("a stored record row is damaged: {what}"))
}

struct Reader<'a> {
    rest: &'a [u8],
    format: u8,
}

impl<'a> Reader<'a> {
    /// A reader of a binary row; `None` for a row kept as JSON.
    fn binary(row: &'a [u8]) -> Option<Reader<'a>> {
        match row.split_first() {
            Some((format @ (&FORMAT | &FORMAT_1), rest)) => Some(Reader {
                rest,
                format: *format,
            }),
            _ => None,
        }
    }

    /// The plaintext's length, the row's last field.
    fn size(&mut self) -> Result<u64, CustodyError> {
        if self.format == FORMAT_1 {
            Ok(u64::from_le_bytes(
                self.bytes(8)?.try_into().map_err(|_| damaged("size"))?,
            ))
        } else {
            self.varint()
        }
    }

    /// Checks that nothing follows the last field.
    fn end(self) -> Result<(), CustodyError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(damaged("trailing bytes"))
        }
    }

    fn bytes(&mut self, len: usize) -> Result<&'a [u8], CustodyError> {
        if self.rest.len() < len {
            return Err(damaged("truncated"));
        }
        let (bytes, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(bytes)
    }

    fn varint(&mut self) -> Result<u64, CustodyError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.bytes(1)?[0];
            value |= u64::from(byte & 0x7f)
                .checked_shl(shift)
                .filter(|v| v >> shift == u64::from(byte & 0x7f))
                .ok_or_else(|| damaged("varint"))?;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(damaged("varint"))
    }

    /// A text field as stored: its form and its bytes (a media type's
    /// code is its one byte).
    fn raw_text(&mut self) -> Result<(u8, &'a [u8]), CustodyError> {
        let form = self.bytes(1)?[0];
        let known = match self.format {
            FORMAT => form <= AS_MEDIA_TYPE,
            _ => form <= AS_BASE64URL,
        };
        if !known {
            return Err(damaged("unknown text form"));
        }
        if self.format == FORMAT && form == AS_MEDIA_TYPE {
            let code = self.bytes(1)?;
            if usize::from(code[0]) >= MEDIA_TYPES.len() {
                return Err(damaged("unknown media type code"));
            }
            return Ok((form, code));
        }
        let len = if self.format == FORMAT_1 {
            u64::from(u32::from_le_bytes(
                self.bytes(4)?.try_into().map_err(|_| damaged("length"))?,
            ))
        } else {
            self.varint()?
        };
        let len = usize::try_from(len).map_err(|_| damaged("length"))?;
        Ok((form, self.bytes(len)?))
    }

    fn text(&mut self) -> Result<String, CustodyError> {
        let (form, bytes) = self.raw_text()?;
        spell(form, self.format, bytes)
    }
}

/// The text a stored field spells.
fn spell(form: u8, format: u8, bytes: &[u8]) -> Result<String, CustodyError> {
    match form {
        AS_MEDIA_TYPE if format == FORMAT => bytes
            .first()
            .and_then(|code| MEDIA_TYPES.get(*code as usize))
            .map(|m| (*m).to_owned())
            .ok_or_else(|| damaged("unknown media type code")),
        AS_TEXT => String::from_utf8(bytes.to_vec()).map_err(|_| damaged("text")),
        AS_HEX => Ok(hex::encode(bytes)),
        AS_BASE64URL => Ok(URL_SAFE_NO_PAD.encode(bytes)),
        AS_DID_KEY if format == FORMAT => Ok(format!(
            "{DID_KEY_PREFIX}{}",
            bs58::encode(bytes).into_string()
        )),
        _ => Err(damaged("unknown text form")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> RecordMeta {
        RecordMeta {
            blob: "0f".repeat(32),
            salt: "a1".repeat(32),
            media_type: "application/fhir+json".into(),
            author: "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK".into(),
            provenance: URL_SAFE_NO_PAD.encode([7u8; 64]),
            size: 1234,
        }
    }

    fn same(a: &RecordMeta, b: &RecordMeta) -> bool {
        serde_json::to_value(a).unwrap() == serde_json::to_value(b).unwrap()
    }

    #[test]
    fn rows_read_back_as_written_and_json_rows_still_read() {
        let meta = meta();
        let row = encode(&meta);
        let json = serde_json::to_vec(&meta).unwrap();
        assert!(
            row.len() * 3 < json.len() * 2,
            "{} of {}",
            row.len(),
            json.len()
        );
        assert!(same(&decode(&row).unwrap(), &meta));
        assert!(same(&decode(&json).unwrap(), &meta));
        // Texts that only look like hex or base64url are kept as written.
        let odd = RecordMeta {
            blob: "0F".repeat(32),
            salt: "abc".into(),
            media_type: String::new(),
            provenance: "not base64!".into(),
            ..meta
        };
        assert!(same(&decode(&encode(&odd)).unwrap(), &odd));
    }

    /// What opening a record reads is what the whole row says, in every
    /// form a row can take.
    #[test]
    fn a_location_is_the_rows_blob_and_size() {
        let odd = RecordMeta {
            author: "did:key:z0OIl".into(),
            media_type: "text/plain".into(),
            size: u64::MAX,
            ..meta()
        };
        for meta in [meta(), odd] {
            for row in [
                encode(&meta),
                format_1(&meta),
                serde_json::to_vec(&meta).unwrap(),
            ]
            .iter()
            .filter(|row| decode(row).is_ok())
            {
                let location = decode_location(row).unwrap();
                assert_eq!(location.blob.to_hex(), meta.blob);
                assert_eq!(location.size, meta.size);
            }
        }
        // A blob address kept as text (not lowercase hex) reads as the
        // whole row's would; one that is no address is refused.
        let upper = RecordMeta {
            blob: "0F".repeat(32),
            ..meta()
        };
        let location = decode_location(&encode(&upper)).unwrap();
        assert_eq!(location.blob, RecordLocation::of(&upper).unwrap().blob);
        let not_an_address = RecordMeta {
            blob: "not hex".into(),
            ..meta()
        };
        assert!(decode(&encode(&not_an_address)).is_ok());
        assert!(decode_location(&encode(&not_an_address)).is_err());
    }

    /// The row as format 1 wrote it (four-byte lengths, the size in eight
    /// bytes, the author and media type as text).
    fn format_1(meta: &RecordMeta) -> Vec<u8> {
        let mut out = vec![FORMAT_1];
        for (form, bytes) in [
            (AS_HEX, hex::decode(&meta.blob).unwrap()),
            (AS_HEX, hex::decode(&meta.salt).unwrap()),
            (AS_TEXT, meta.media_type.as_bytes().to_vec()),
            (AS_TEXT, meta.author.as_bytes().to_vec()),
            (
                AS_BASE64URL,
                URL_SAFE_NO_PAD.decode(&meta.provenance).unwrap(),
            ),
        ] {
            out.push(form);
            out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            out.extend_from_slice(&bytes);
        }
        out.extend_from_slice(&meta.size.to_le_bytes());
        out
    }

    /// The author's did:key and a common media type cost their bytes and a
    /// code; rows of format 1 still read.
    #[test]
    fn rows_keep_a_did_key_as_its_bytes_and_format_1_rows_still_read() {
        let meta = meta();
        let old = format_1(&meta);
        let row = encode(&meta);
        // blob, salt, signature and the key's 34 bytes, one byte each of
        // form and length, a code for the media type, a two-byte size.
        assert_eq!(row.len(), 1 + 3 * 2 + 32 + 32 + 64 + 2 + 2 + 34 + 2);
        assert!(row.len() + 60 < old.len(), "{} of {}", row.len(), old.len());
        assert!(same(&decode(&row).unwrap(), &meta));
        assert!(same(&decode(&old).unwrap(), &meta));
        // Not base58 (0, O, I, l), an uncommon media type: kept as text.
        let odd = RecordMeta {
            author: "did:key:z0OIl".into(),
            media_type: "text/plain".into(),
            size: u64::MAX,
            ..meta
        };
        let row = encode(&odd);
        assert!(same(&decode(&row).unwrap(), &odd));
        assert_eq!(decode(&format_1(&odd)).unwrap().size, u64::MAX);
        // A format 1 row does not know the new forms.
        let mut old = format_1(&odd);
        let author_form = 1 + 2 * (5 + 32) + 5 + "text/plain".len();
        assert_eq!(old[author_form], AS_TEXT);
        old[author_form] = AS_DID_KEY;
        assert!(decode(&old).is_err());
    }

    #[test]
    fn damaged_rows_are_refused() {
        let row = encode(&meta());
        for cut in 1..row.len() {
            assert!(decode(&row[..cut]).is_err(), "cut at {cut}");
            assert!(decode_location(&row[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = row.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
        assert!(decode_location(&longer).is_err());
        let mut unknown = row.clone();
        unknown[1] = 9;
        assert!(decode(&unknown).is_err());
        assert!(decode_location(&unknown).is_err());
        // A media type code past the list.
        let media = 1 + 2 * (2 + 32);
        assert_eq!(row[media], AS_MEDIA_TYPE);
        let mut unknown = row;
        unknown[media + 1] = MEDIA_TYPES.len() as u8;
        assert!(decode(&unknown).is_err());
        assert!(decode_location(&unknown).is_err());
    }
}
