//! `tile/…` request paths: only the canonical spelling of a tile parses,
//! and every tile prints as a path that parses back to it.
#![no_main]

use hygeia_ledger::tiles::{TilePath, MAX_LEVEL, TILE_WIDTH};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(tile) = TilePath::parse(text) {
            assert_eq!(tile.to_string(), text);
            assert_eq!(TilePath::parse(&tile.to_string()), Ok(tile));
            assert!(tile.width >= 1 && u64::from(tile.width) <= TILE_WIDTH);
            assert!(tile.level.is_none_or(|l| l <= MAX_LEVEL));
        }
    }

    // The other direction: a tile built from the input's first bytes
    // prints as a path that parses back to the same tile.
    if let Some((head, _)) = data.split_first_chunk::<11>() {
        let level = match head[0] % (MAX_LEVEL + 2) {
            l if l <= MAX_LEVEL => Some(l),
            _ => None,
        };
        let index = u64::from_le_bytes(head[1..9].try_into().unwrap());
        let width = (u16::from_le_bytes([head[9], head[10]]) % TILE_WIDTH as u16) + 1;
        let tile = TilePath { level, index, width };
        assert_eq!(TilePath::parse(&tile.to_string()), Ok(tile), "{tile}");
    }
});
