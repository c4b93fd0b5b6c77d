//! Messages another organization's node sends on the block channel (a
//! block, a block request, a passed-on submission, a cosignature, a
//! request for ancestors, an answer with ancestors, a request for an
//! epoch's end, an epoch's end, a "not yet"):
//! decoding never panics, and an accepted message re-encodes to exactly
//! the bytes received, except a cosignature, whose note re-encodes to a
//! note that decodes to the same cosignature.
#![no_main]

use hygeia_consensus::block::{Block, MAX_BLOCK_TXS, MAX_SUBMISSION_TXS};
use hygeia_consensus::wire::{
    decode, encode, Message, MAX_ANCESTORS, MAX_ANCESTORS_MESSAGE_BYTES,
    MAX_EPOCH_CERTIFICATE_BYTES,
};
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
        Message::AncestorsRequest { count, .. } => {
            assert!((1..=MAX_ANCESTORS).contains(count));
            assert_eq!(again, data);
        }
        Message::Ancestors(blocks) => {
            assert!(!blocks.is_empty() && blocks.len() <= MAX_ANCESTORS as usize);
            assert!(data.len() <= MAX_ANCESTORS_MESSAGE_BYTES);
            for encoded in blocks {
                assert!(Block::decode(encoded).is_ok());
            }
            assert_eq!(again, data);
        }
        Message::EpochEndRequest { .. } | Message::EpochNotEnded { .. } => {
            assert_eq!(data.len(), 9);
            assert_eq!(again, data);
        }
        Message::EpochEnd(end) => {
            assert!(
                !end.certificate.is_empty()
                    && end.certificate.len() <= MAX_EPOCH_CERTIFICATE_BYTES
            );
            assert_eq!(again, data);
        }
    }
});
