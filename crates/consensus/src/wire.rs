//! The messages validators send one another on the block channel (p2p
//! channel 3), besides the engine's own channels: a tag byte, then the
//! message.
//!
//! ```text
//! 0 | block                  a proposed or asked-for block (crate::block)
//! 1 | digest (32)            a request for the block with that digest
//! 2 | envelope               a client submission passed on: a block-form
//!                            envelope (parent zero, height 0, view 0)
//!                            holding exactly that one submission
//! 3 | note                   a C2SP cosignature/v1 of a checkpoint: the
//!                            checkpoint note with one signature line
//! ```
//!
//! [`decode`] is what a node runs on every message a peer sends there
//! (fuzzed by `fuzz/fuzz_targets/consensus_message.rs`); it checks the
//! framing and bounds only: transactions are parsed and cosignatures
//! verified by the receiver. Blocks, requests and submissions have one
//! encoding each, so [`encode`] of a decoded one gives back its input.

use hygeia_ledger::cosignature::CosignedNote;

use crate::block::{Block, BlockError, Digest};

/// Tag of a block.
pub const TAG_BLOCK: u8 = 0;
/// Tag of a request for a block by digest.
pub const TAG_REQUEST: u8 = 1;
/// Tag of a client submission passed on to the other validators.
pub const TAG_SUBMISSION: u8 = 2;
/// Tag of a cosignature of a checkpoint.
pub const TAG_COSIGNATURE: u8 = 3;

/// One message of the block channel.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Block(Block),
    Request(Digest),
    /// The raw transactions of one submission (at least one).
    Submission(Vec<Vec<u8>>),
    Cosignature(CosignedNote),
}

/// Why bytes are not a message of the block channel.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("empty message")]
    Empty,
    #[error("unknown message tag {0}")]
    UnknownTag(u8),
    #[error("a block request holds a 32-byte digest")]
    BadRequest,
    #[error(transparent)]
    Block(#[from] BlockError),
    #[error("a passed-on submission is an envelope of exactly one submission")]
    BadEnvelope,
    #[error(transparent)]
    Cosignature(#[from] hygeia_ledger::cosignature::CosignatureError),
}

/// Decodes one message a peer sent on the block channel.
pub fn decode(bytes: &[u8]) -> Result<Message, WireError> {
    let (&tag, rest) = bytes.split_first().ok_or(WireError::Empty)?;
    match tag {
        TAG_BLOCK => Ok(Message::Block(Block::decode(rest)?)),
        TAG_REQUEST => {
            let digest: Digest = rest.try_into().map_err(|_| WireError::BadRequest)?;
            Ok(Message::Request(digest))
        }
        TAG_SUBMISSION => {
            let Block {
                parent,
                height,
                view,
                mut submissions,
            } = Block::decode(rest)?;
            if parent != [0; 32] || height != 0 || view != 0 || submissions.len() != 1 {
                return Err(WireError::BadEnvelope);
            }
            Ok(Message::Submission(
                submissions.pop().ok_or(WireError::BadEnvelope)?,
            ))
        }
        TAG_COSIGNATURE => Ok(Message::Cosignature(CosignedNote::parse(rest)?)),
        other => Err(WireError::UnknownTag(other)),
    }
}

/// Encodes a message for the block channel.
pub fn encode(message: &Message) -> Vec<u8> {
    let (tag, body) = match message {
        Message::Block(block) => (TAG_BLOCK, block.encode()),
        Message::Request(digest) => (TAG_REQUEST, digest.to_vec()),
        Message::Submission(txs) => (TAG_SUBMISSION, envelope(txs.clone()).encode()),
        Message::Cosignature(note) => (TAG_COSIGNATURE, note.to_bytes()),
    };
    let mut out = Vec::with_capacity(body.len() + 1);
    out.push(tag);
    out.extend_from_slice(&body);
    out
}

/// The block-form envelope of one passed-on submission.
pub fn envelope(txs: Vec<Vec<u8>>) -> Block {
    Block {
        parent: [0; 32],
        height: 0,
        view: 0,
        submissions: vec![txs],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_malformed_ones_are_refused() {
        let block = Block {
            parent: [7; 32],
            height: 3,
            view: 9,
            submissions: vec![vec![b"{}".to_vec()]],
        };
        for message in [
            Message::Block(block.clone()),
            Message::Request([5; 32]),
            Message::Submission(vec![b"{\"a\":1}".to_vec(), b"{}".to_vec()]),
        ] {
            let bytes = encode(&message);
            assert_eq!(decode(&bytes).unwrap(), message);
        }
        assert!(matches!(decode(b""), Err(WireError::Empty)));
        assert!(matches!(decode(&[9, 1, 2]), Err(WireError::UnknownTag(9))));
        assert!(matches!(
            decode(&[TAG_REQUEST; 32]),
            Err(WireError::BadRequest)
        ));
        // A submission envelope with a parent, or with two submissions.
        let mut bad = vec![TAG_SUBMISSION];
        bad.extend_from_slice(&block.encode());
        assert!(matches!(decode(&bad), Err(WireError::BadEnvelope)));
        let mut two = envelope(vec![b"{}".to_vec()]);
        two.submissions.push(vec![b"{}".to_vec()]);
        let mut bad = vec![TAG_SUBMISSION];
        bad.extend_from_slice(&two.encode());
        assert!(matches!(decode(&bad), Err(WireError::BadEnvelope)));
        assert!(matches!(
            decode(&[TAG_COSIGNATURE, b'x']),
            Err(WireError::Cosignature(_))
        ));
    }
}
