//! Messages another organization's node sends on the block channel (a
//! block, a block request, a passed-on submission, a cosignature):
//! decoding never panics, and an accepted message re-encodes to exactly
//! the bytes received, except a cosignature, whose note re-encodes to a
//! note that decodes to the same cosignature.
#![no_main]

use hygeia_consensus::block::{MAX_BLOCK_TXS, MAX_SUBMISSION_TXS};
use hygeia_consensus::wire::{decode, encode, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(message) = decode(data) else {
        return;
    };
    let again = encode(&message);
    match &message {
        Message::Cosignature(_) => {
            let decoded = decode(&again).expect("a re-encoded cosignature decodes");
            assert_eq!(decoded, message);
        }
        Message::Block(block) => {
            assert!(block.tx_count() <= MAX_BLOCK_TXS);
            assert_eq!(again, data);
        }
        Message::Submission(txs) => {
            assert!(!txs.is_empty() && txs.len() <= MAX_SUBMISSION_TXS);
            assert_eq!(again, data);
        }
        Message::Request(_) => assert_eq!(again, data),
    }
});
