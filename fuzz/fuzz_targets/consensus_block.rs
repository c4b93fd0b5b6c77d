//! Consensus blocks as received from another organization's node on the
//! block channel: decoding never panics, stays within its bounds, and an
//! accepted block re-encodes to exactly the bytes received (one encoding
//! per block, so its digest is well defined). The same bytes read as a
//! page of a peer's finalized chain file (`GET /v1/network/chain`, read by
//! `hygeia network catch-up`): framing never panics or reads past the page.
#![no_main]

use hygeia_consensus::block::{Block, MAX_BLOCK_TXS};
use hygeia_consensus::chain::frame_at;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(block) = Block::decode(data) {
        assert!(block.tx_count() <= MAX_BLOCK_TXS);
        assert_eq!(block.encode(), data);
        assert_eq!(Block::digest(&block.encode()), Block::digest(data));
    }
    let mut offset = 0usize;
    while let Some((len, Some(record))) = frame_at(data, offset) {
        assert_eq!(record.len(), len);
        assert!(offset + 4 + len <= data.len());
        let _ = Block::decode(record);
        offset += 4 + len;
    }
});
