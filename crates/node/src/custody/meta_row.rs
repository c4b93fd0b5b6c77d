//! How `custody.redb` stores a [`RecordMeta`]: a binary row in which the
//! hex addresses and the base64url signature are kept as the bytes they
//! spell (about half the size of the JSON object of before). Rows written
//! before start with `{` and are still read; a binary row starts with
//! [`FORMAT`].

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::{meta_err, CustodyError, RecordMeta};

/// The first byte of a binary row.
const FORMAT: u8 = 1;

/// How a text field is kept.
const AS_TEXT: u8 = 0;
const AS_HEX: u8 = 1;
const AS_BASE64URL: u8 = 2;

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
    out.extend_from_slice(&meta.size.to_le_bytes());
    out
}

pub(super) fn decode(row: &[u8]) -> Result<RecordMeta, CustodyError> {
    let Some(rest) = row.strip_prefix(&[FORMAT]) else {
        return serde_json::from_slice(row).map_err(meta_err);
    };
    let mut reader = Reader { rest };
    let meta = RecordMeta {
        blob: reader.text()?,
        salt: reader.text()?,
        media_type: reader.text()?,
        author: reader.text()?,
        provenance: reader.text()?,
        size: u64::from_le_bytes(reader.bytes(8)?.try_into().map_err(|_| damaged("size"))?),
    };
    if !reader.rest.is_empty() {
        return Err(damaged("trailing bytes"));
    }
    Ok(meta)
}

/// Lowercase hex or unpadded base64url as the bytes they spell, when that
/// gives back exactly `text`; anything else as written.
fn put_text(out: &mut Vec<u8>, text: &str) {
    let (form, bytes) =
        if let Some(bytes) = hex::decode(text).ok().filter(|b| hex::encode(b) == text) {
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
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(&bytes);
}

fn damaged(what: &str) -> CustodyError {
    CustodyError::Meta(format!("a stored record row is damaged: {what}"))
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, len: usize) -> Result<&'a [u8], CustodyError> {
        if self.rest.len() < len {
            return Err(damaged("truncated"));
        }
        let (bytes, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(bytes)
    }

    fn text(&mut self) -> Result<String, CustodyError> {
        let form = self.bytes(1)?[0];
        let len = u32::from_le_bytes(self.bytes(4)?.try_into().map_err(|_| damaged("length"))?);
        let bytes = self.bytes(len as usize)?;
        match form {
            AS_TEXT => String::from_utf8(bytes.to_vec()).map_err(|_| damaged("text")),
            AS_HEX => Ok(hex::encode(bytes)),
            AS_BASE64URL => Ok(URL_SAFE_NO_PAD.encode(bytes)),
            _ => Err(damaged("unknown text form")),
        }
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

    #[test]
    fn damaged_rows_are_refused() {
        let row = encode(&meta());
        for cut in 1..row.len() {
            assert!(decode(&row[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = row.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
        let mut unknown = row;
        unknown[1] = 9;
        assert!(decode(&unknown).is_err());
    }
}
