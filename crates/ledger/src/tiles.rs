//! C2SP `tlog-tiles` paths and entry bundles.
//!
//! Tiles have height 8: a full tile holds 256 hashes (8 KiB), a full entry
//! bundle 256 entries. A partial tile or bundle at the right edge of the
//! tree is served as `.p/<W>`; its content is always a prefix of the full
//! one, so caches never hold contradicting bytes.

use std::fmt;

/// log2 of the tile width.
pub const TILE_HEIGHT: u8 = 8;
/// Hashes per full tile, entries per full bundle.
pub const TILE_WIDTH: u64 = 1 << TILE_HEIGHT;
/// Highest tile level we accept in a path: level 7 already spans 2^64 leaves.
pub const MAX_LEVEL: u8 = 7;

/// A tile or entry-bundle coordinate, parsed from and printed as a C2SP
/// path (`tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TilePath {
    /// `None` for an entry bundle, `Some(level)` for a hash tile.
    pub level: Option<u8>,
    pub index: u64,
    /// Number of hashes or entries; 256 for a full tile.
    pub width: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a tlog-tiles path: {0}")]
pub struct BadTilePath(pub String);

impl TilePath {
    pub fn is_entries(&self) -> bool {
        self.level.is_none()
    }

    pub fn is_full(&self) -> bool {
        u64::from(self.width) == TILE_WIDTH
    }

    /// Parses a path such as `tile/0/x001/234.p/17` or `tile/entries/000`.
    /// Only the canonical spelling is accepted, so one tile has one URL.
    pub fn parse(path: &str) -> Result<TilePath, BadTilePath> {
        let bad = || BadTilePath(path.chars().take(200).collect());
        let rest = path.strip_prefix("tile/").ok_or_else(bad)?;
        let (level_text, rest) = rest.split_once('/').ok_or_else(bad)?;
        let level = if level_text == "entries" {
            None
        } else {
            let level = parse_decimal(level_text).ok_or_else(bad)?;
            if level > u64::from(MAX_LEVEL) {
                return Err(bad());
            }
            Some(level as u8)
        };
        let (index_text, width) = match rest.split_once(".p/") {
            Some((index_text, width_text)) => {
                let width = parse_decimal(width_text).ok_or_else(bad)?;
                if width == 0 || width >= TILE_WIDTH {
                    return Err(bad());
                }
                (index_text, width as u16)
            }
            None => (rest, TILE_WIDTH as u16),
        };
        let index = parse_index(index_text).ok_or_else(bad)?;
        let tile = TilePath {
            level,
            index,
            width,
        };
        if tile.to_string() != path {
            return Err(bad());
        }
        Ok(tile)
    }
}

impl fmt::Display for TilePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.level {
            Some(level) => write!(f, "tile/{level}/")?,
            None => f.write_str("tile/entries/")?,
        }
        f.write_str(&encode_index(self.index))?;
        if !self.is_full() {
            write!(f, ".p/{}", self.width)?;
        }
        Ok(())
    }
}

/// `1234067` → `x001/x234/067`.
pub fn encode_index(mut index: u64) -> String {
    let mut groups = vec![format!("{:03}", index % 1000)];
    index /= 1000;
    while index > 0 {
        groups.push(format!("x{:03}", index % 1000));
        index /= 1000;
    }
    groups.reverse();
    groups.join("/")
}

fn parse_index(text: &str) -> Option<u64> {
    let mut index: u64 = 0;
    let mut groups = text.split('/').peekable();
    while let Some(group) = groups.next() {
        let digits = if groups.peek().is_some() {
            group.strip_prefix('x')?
        } else {
            group
        };
        if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        index = index
            .checked_mul(1000)?
            .checked_add(digits.parse::<u64>().ok()?)?;
    }
    Some(index)
}

fn parse_decimal(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if text.len() > 1 && text.starts_with('0') {
        return None;
    }
    text.parse().ok()
}

/// Appends one entry to a bundle: a big-endian 16-bit length, then the bytes.
pub fn push_entry(bundle: &mut Vec<u8>, entry: &[u8]) {
    let len = u16::try_from(entry.len()).expect("entries are at most 65535 bytes");
    bundle.extend_from_slice(&len.to_be_bytes());
    bundle.extend_from_slice(entry);
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("entry bundle is truncated inside entry {0}")]
    Truncated(usize),
    #[error("entry bundle holds {found} entries, expected {expected}")]
    WrongCount { found: usize, expected: usize },
}

/// Splits an entry bundle into its entries.
pub fn split_entries(bundle: &[u8]) -> Result<Vec<&[u8]>, BundleError> {
    let mut entries = Vec::new();
    let mut rest = bundle;
    while !rest.is_empty() {
        let n = entries.len();
        let (len, tail) = rest
            .split_first_chunk::<2>()
            .ok_or(BundleError::Truncated(n))?;
        let len = usize::from(u16::from_be_bytes(*len));
        if tail.len() < len {
            return Err(BundleError::Truncated(n));
        }
        let (entry, tail) = tail.split_at(len);
        entries.push(entry);
        rest = tail;
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const EXAMPLES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/vectors/c2sp/tlog-tiles-examples.json"
    );

    #[test]
    fn c2sp_index_encoding_example() {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(EXAMPLES).unwrap()).unwrap();
        for case in v["tile_index_path_encoding"].as_array().unwrap() {
            let index = case["index"].as_u64().unwrap();
            let encoded = case["path_element"].as_str().unwrap();
            assert_eq!(encode_index(index), encoded);
            assert_eq!(parse_index(encoded), Some(index));
        }
    }

    #[test]
    fn paths_round_trip() {
        for text in [
            "tile/0/000",
            "tile/0/x001/x234/067",
            "tile/2/001.p/17",
            "tile/entries/000.p/1",
            "tile/entries/x999/999",
        ] {
            assert_eq!(TilePath::parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn refuses_non_canonical_and_malformed_paths() {
        for text in [
            "tile/0/1",
            "tile/0/0001",
            "tile/00/000",
            "tile/0/x000/001",
            "tile/0/001/002",
            "tile/0/000.p/0",
            "tile/0/000.p/256",
            "tile/0/000.p/010",
            "tile/8/000",
            "tile/data/000",
            "tile/0/x99999999999999999999/000",
            "tile/0/x018/x446/x744/x073/x709/x551/x616/000",
            "checkpoint",
            "tile/0/",
            "tile/entries/abc",
        ] {
            assert!(TilePath::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn bundles_round_trip_and_refuse_truncation() {
        let mut bundle = Vec::new();
        push_entry(&mut bundle, b"first");
        push_entry(&mut bundle, b"");
        push_entry(&mut bundle, &[7u8; 300]);
        let entries = split_entries(&bundle).unwrap();
        assert_eq!(entries, vec![&b"first"[..], &b""[..], &[7u8; 300][..]]);
        assert_eq!(
            split_entries(&bundle[..bundle.len() - 1]),
            Err(BundleError::Truncated(2))
        );
        assert_eq!(split_entries(&[0u8]), Err(BundleError::Truncated(0)));
    }

    proptest::proptest! {
        #[test]
        fn any_index_round_trips(index in proptest::num::u64::ANY, width in 1u16..=256, level in proptest::option::of(0u8..=MAX_LEVEL)) {
            let tile = TilePath { level, index, width };
            proptest::prop_assert_eq!(TilePath::parse(&tile.to_string()), Ok(tile));
        }

        #[test]
        fn arbitrary_paths_never_panic(text in "tile/[0-9a-z./]{0,60}") {
            let _ = TilePath::parse(&text);
        }
    }
}
