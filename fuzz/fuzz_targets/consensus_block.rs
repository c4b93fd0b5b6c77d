//! Consensus blocks as received from another organization's node on the
//! block channel: decoding never panics, stays within its bounds, and an
//! accepted block re-encodes to exactly the bytes received (one encoding
//! per block, so its digest is well defined).
#![no_main]

use hygeia_consensus::block::{Block, MAX_BLOCK_TXS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(block) = Block::decode(data) {
        assert!(block.tx_count() <= MAX_BLOCK_TXS);
        assert_eq!(block.encode(), data);
        assert_eq!(Block::digest(&block.encode()), Block::digest(data));
    }
});
