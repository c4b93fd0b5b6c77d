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
//! 4 | digest (32) | count    a request for the block with that digest and
//!     (u32)                  up to count - 1 of its ancestors, newest
//!                            first (1 ≤ count ≤ MAX_ANCESTORS)
//! 5 | blocks (u32)           consecutive blocks, newest first, each the
//!     per block: length      parent of the one before (finalized ones, or
//!     (u32) | block          unfinalized ones the sender holds): the
//!                            answer to a tag 4 request (at least one
//!                            block, at most MAX_ANCESTORS, the whole
//!                            message at most MAX_ANCESTORS_MESSAGE_BYTES)
//! 6 | epoch (u64)            a request for the end of that epoch
//! 7 | epoch (u64) | height   the end of an epoch: its last block (the one
//!     (u64) | digest (32) |  whose entries changed the validator set), and
//!     certificate            the finalization certificate of that block by
//!                            the epoch's validators (commonware's encoding,
//!                            1 to MAX_EPOCH_CERTIFICATE_BYTES bytes, checked
//!                            by the receiver, not here)
//! 8 | epoch (u64)            "not yet": the sender has not finished that
//!                            epoch
//! ```
//!
//! [`decode`] is what a node runs on every message a peer sends there
//! (fuzzed by `fuzz/fuzz_targets/consensus_message.rs`); it checks the
//! framing and bounds only: transactions are parsed and cosignatures
//! verified by the receiver. Blocks, requests and submissions have one
//! encoding each, so [`encode`] of a decoded one gives back its input.

use hygeia_ledger::cosignature::CosignedNote;

use crate::block::{Block, BlockError, Digest, MAX_BLOCK_BYTES};

/// Tag of a block.
pub const TAG_BLOCK: u8 = 0;
/// Tag of a request for a block by digest.
pub const TAG_REQUEST: u8 = 1;
/// Tag of a client submission passed on to the other validators.
pub const TAG_SUBMISSION: u8 = 2;
/// Tag of a cosignature of a checkpoint.
pub const TAG_COSIGNATURE: u8 = 3;
/// Tag of a request for a block and its ancestors.
pub const TAG_ANCESTORS_REQUEST: u8 = 4;
/// Tag of consecutive ancestors, the answer to [`TAG_ANCESTORS_REQUEST`].
pub const TAG_ANCESTORS: u8 = 5;

/// Tag of a request for the end of an epoch.
pub const TAG_EPOCH_END_REQUEST: u8 = 6;
/// Tag of the end of an epoch, the answer to [`TAG_EPOCH_END_REQUEST`].
pub const TAG_EPOCH_END: u8 = 7;
/// Tag of "that epoch has not ended here", the other answer to
/// [`TAG_EPOCH_END_REQUEST`].
pub const TAG_EPOCH_NOT_ENDED: u8 = 8;

/// Most bytes of the finalization certificate in an epoch's end: the
/// certificate of the largest validator set (64, one Ed25519 signature
/// each, about 4.2 KiB with the signer bitmap and the proposal) fits with
/// room to spare.
pub const MAX_EPOCH_CERTIFICATE_BYTES: usize = 8192;

/// Most blocks one request for ancestors asks for, and one answer holds.
pub const MAX_ANCESTORS: u32 = 1024;
/// Most bytes of one answer with ancestors, tag included: one block at its
/// largest with its framing fits (the p2p layer takes messages of
/// `MAX_BLOCK_BYTES + 1024` bytes, `crate::net`), so a peer can always
/// answer with at least the block asked for.
pub const MAX_ANCESTORS_MESSAGE_BYTES: usize = MAX_BLOCK_BYTES + 64;

/// One message of the block channel.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Block(Block),
    Request(Digest),
    /// The raw transactions of one submission (at least one).
    Submission(Vec<Vec<u8>>),
    Cosignature(CosignedNote),
    /// A request for the block `digest` and up to `count - 1` of its
    /// ancestors.
    AncestorsRequest {
        digest: Digest,
        count: u32,
    },
    /// Consecutive blocks, newest first, as their encodings (the receiver
    /// hashes them to check them against what it asked for).
    Ancestors(Vec<Vec<u8>>),
    /// A request for the end of `epoch`.
    EpochEndRequest {
        epoch: u64,
    },
    /// The end of an epoch, as its sender claims it.
    EpochEnd(EpochEnd),
    /// The sender has not finished `epoch`.
    EpochNotEnded {
        epoch: u64,
    },
}

/// The end of an epoch: its last block and that block's finalization
/// certificate, as one node stores it and sends it to another. Nothing in
/// it is trusted until the certificate is verified against the epoch's
/// validator set (`crate::application`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochEnd {
    pub epoch: u64,
    /// Height of the last block (a hint: how many blocks to ask for).
    pub height: u64,
    /// Digest of the last block.
    pub digest: Digest,
    /// Its finalization certificate (commonware `Finalization`, encoded).
    pub certificate: Vec<u8>,
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
    #[error(
        "a request for ancestors holds a 32-byte digest and a count from 1 to {MAX_ANCESTORS}"
    )]
    BadAncestorsRequest,
    #[error("an answer with ancestors holds 1 to {MAX_ANCESTORS} framed blocks in at most {MAX_ANCESTORS_MESSAGE_BYTES} bytes")]
    BadAncestors,
    #[error("a request for an epoch's end, or a \"not yet\", holds an 8-byte epoch")]
    BadEpochRequest,
    #[error("an epoch's end holds an epoch, a height, a 32-byte digest and a certificate of 1 to {MAX_EPOCH_CERTIFICATE_BYTES} bytes")]
    BadEpochEnd,
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
        TAG_ANCESTORS_REQUEST => {
            let (digest, count) = rest
                .split_first_chunk::<32>()
                .ok_or(WireError::BadAncestorsRequest)?;
            let count: [u8; 4] = count
                .try_into()
                .map_err(|_| WireError::BadAncestorsRequest)?;
            let count = u32::from_be_bytes(count);
            if count == 0 || count > MAX_ANCESTORS {
                return Err(WireError::BadAncestorsRequest);
            }
            Ok(Message::AncestorsRequest {
                digest: *digest,
                count,
            })
        }
        TAG_ANCESTORS => decode_ancestors(bytes.len(), rest),
        TAG_EPOCH_END_REQUEST => Ok(Message::EpochEndRequest {
            epoch: decode_epoch(rest)?,
        }),
        TAG_EPOCH_NOT_ENDED => Ok(Message::EpochNotEnded {
            epoch: decode_epoch(rest)?,
        }),
        TAG_EPOCH_END => decode_epoch_end(rest).map(Message::EpochEnd),
        other => Err(WireError::UnknownTag(other)),
    }
}

/// The epoch of a request for an epoch's end or of a "not yet": exactly
/// eight bytes.
fn decode_epoch(rest: &[u8]) -> Result<u64, WireError> {
    let epoch: [u8; 8] = rest.try_into().map_err(|_| WireError::BadEpochRequest)?;
    Ok(u64::from_be_bytes(epoch))
}

/// An epoch's end: fixed fields, then the certificate (the rest, bounded).
fn decode_epoch_end(rest: &[u8]) -> Result<EpochEnd, WireError> {
    let (epoch, rest) = rest
        .split_first_chunk::<8>()
        .ok_or(WireError::BadEpochEnd)?;
    let (height, rest) = rest
        .split_first_chunk::<8>()
        .ok_or(WireError::BadEpochEnd)?;
    let (digest, certificate) = rest
        .split_first_chunk::<32>()
        .ok_or(WireError::BadEpochEnd)?;
    if certificate.is_empty() || certificate.len() > MAX_EPOCH_CERTIFICATE_BYTES {
        return Err(WireError::BadEpochEnd);
    }
    Ok(EpochEnd {
        epoch: u64::from_be_bytes(*epoch),
        height: u64::from_be_bytes(*height),
        digest: *digest,
        certificate: certificate.to_vec(),
    })
}

/// The blocks of an answer with ancestors: framing and bounds checked
/// before anything is allocated, and every block decodes.
fn decode_ancestors(total: usize, rest: &[u8]) -> Result<Message, WireError> {
    if total > MAX_ANCESTORS_MESSAGE_BYTES {
        return Err(WireError::BadAncestors);
    }
    let (count, mut rest) = rest
        .split_first_chunk::<4>()
        .ok_or(WireError::BadAncestors)?;
    let count = u32::from_be_bytes(*count);
    if count == 0 || count > MAX_ANCESTORS {
        return Err(WireError::BadAncestors);
    }
    // Each block takes at least its 4-byte length: a count the bytes
    // cannot hold is refused before the vector is sized.
    if (count as usize) * 4 > rest.len() {
        return Err(WireError::BadAncestors);
    }
    let mut blocks = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let (len, tail) = rest
            .split_first_chunk::<4>()
            .ok_or(WireError::BadAncestors)?;
        let len = u32::from_be_bytes(*len) as usize;
        if len > tail.len() {
            return Err(WireError::BadAncestors);
        }
        let (encoded, tail) = tail.split_at(len);
        Block::decode(encoded)?;
        blocks.push(encoded.to_vec());
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(WireError::BadAncestors);
    }
    Ok(Message::Ancestors(blocks))
}

/// An answer with ancestors: as many of `blocks` (encodings, newest
/// first) as fit in [`MAX_ANCESTORS_MESSAGE_BYTES`] and [`MAX_ANCESTORS`],
/// always the first. `None` if there are none.
pub fn encode_ancestors<'a>(blocks: impl IntoIterator<Item = &'a [u8]>) -> Option<Vec<u8>> {
    let mut out = vec![TAG_ANCESTORS, 0, 0, 0, 0];
    let mut count = 0u32;
    for encoded in blocks {
        if count == MAX_ANCESTORS || out.len() + 4 + encoded.len() > MAX_ANCESTORS_MESSAGE_BYTES {
            break;
        }
        out.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
        out.extend_from_slice(encoded);
        count += 1;
    }
    if count == 0 {
        return None;
    }
    out[1..5].copy_from_slice(&count.to_be_bytes());
    Some(out)
}

/// Encodes a message for the block channel.
pub fn encode(message: &Message) -> Vec<u8> {
    let (tag, body) = match message {
        Message::Block(block) => (TAG_BLOCK, block.encode()),
        Message::Request(digest) => (TAG_REQUEST, digest.to_vec()),
        Message::Submission(txs) => (TAG_SUBMISSION, envelope(txs.clone()).encode()),
        Message::Cosignature(note) => (TAG_COSIGNATURE, note.to_bytes()),
        Message::AncestorsRequest { digest, count } => {
            let mut body = digest.to_vec();
            body.extend_from_slice(&count.to_be_bytes());
            (TAG_ANCESTORS_REQUEST, body)
        }
        Message::Ancestors(blocks) => {
            let mut body = (blocks.len() as u32).to_be_bytes().to_vec();
            for encoded in blocks {
                body.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
                body.extend_from_slice(encoded);
            }
            (TAG_ANCESTORS, body)
        }
        Message::EpochEndRequest { epoch } => (TAG_EPOCH_END_REQUEST, epoch.to_be_bytes().to_vec()),
        Message::EpochNotEnded { epoch } => (TAG_EPOCH_NOT_ENDED, epoch.to_be_bytes().to_vec()),
        Message::EpochEnd(end) => {
            let mut body = Vec::with_capacity(48 + end.certificate.len());
            body.extend_from_slice(&end.epoch.to_be_bytes());
            body.extend_from_slice(&end.height.to_be_bytes());
            body.extend_from_slice(&end.digest);
            body.extend_from_slice(&end.certificate);
            (TAG_EPOCH_END, body)
        }
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

    #[test]
    fn ancestor_requests_and_answers_round_trip_and_are_bounded() {
        let request = Message::AncestorsRequest {
            digest: [4; 32],
            count: MAX_ANCESTORS,
        };
        assert_eq!(decode(&encode(&request)).unwrap(), request);
        for count in [0, MAX_ANCESTORS + 1] {
            let bytes = encode(&Message::AncestorsRequest {
                digest: [4; 32],
                count,
            });
            assert!(matches!(
                decode(&bytes),
                Err(WireError::BadAncestorsRequest)
            ));
        }
        assert!(matches!(
            decode(&[TAG_ANCESTORS_REQUEST; 33]),
            Err(WireError::BadAncestorsRequest)
        ));

        let a = Block {
            parent: [1; 32],
            height: 2,
            view: 2,
            submissions: vec![],
        }
        .encode();
        let b = Block {
            parent: [0; 32],
            height: 1,
            view: 1,
            submissions: vec![vec![b"{}".to_vec()]],
        }
        .encode();
        let answer = encode_ancestors([a.as_slice(), b.as_slice()]).unwrap();
        assert_eq!(
            decode(&answer).unwrap(),
            Message::Ancestors(vec![a.clone(), b.clone()])
        );
        assert_eq!(encode(&decode(&answer).unwrap()), answer);
        assert_eq!(encode_ancestors(std::iter::empty()), None);
        // Never more than MAX_ANCESTORS blocks in one answer.
        let many = encode_ancestors(std::iter::repeat_n(a.as_slice(), 5000)).unwrap();
        match decode(&many).unwrap() {
            Message::Ancestors(blocks) => assert_eq!(blocks.len(), MAX_ANCESTORS as usize),
            other => panic!("{other:?}"),
        }
        // A count larger than the bytes hold, a zero count, a truncated
        // block, trailing bytes, an undecodable block, too many bytes.
        let mut huge = vec![TAG_ANCESTORS];
        huge.extend_from_slice(&MAX_ANCESTORS.to_be_bytes());
        huge.extend_from_slice(&[0; 16]);
        assert!(matches!(decode(&huge), Err(WireError::BadAncestors)));
        assert!(matches!(
            decode(&[TAG_ANCESTORS, 0, 0, 0, 0]),
            Err(WireError::BadAncestors)
        ));
        assert!(matches!(
            decode(&answer[..answer.len() - 1]),
            Err(WireError::BadAncestors)
        ));
        let mut longer = answer.clone();
        longer.push(0);
        assert!(matches!(decode(&longer), Err(WireError::BadAncestors)));
        let mut broken = vec![TAG_ANCESTORS, 0, 0, 0, 1, 0, 0, 0, 3];
        broken.extend_from_slice(b"abc");
        assert!(matches!(decode(&broken), Err(WireError::Block(_))));
        let mut oversized = vec![TAG_ANCESTORS, 0, 0, 0, 1];
        oversized.resize(MAX_ANCESTORS_MESSAGE_BYTES + 1, 0);
        assert!(matches!(decode(&oversized), Err(WireError::BadAncestors)));
    }

    #[test]
    fn epoch_end_messages_round_trip_and_are_bounded() {
        let end = EpochEnd {
            epoch: 3,
            height: 77,
            digest: [9; 32],
            certificate: vec![1, 2, 3],
        };
        for message in [
            Message::EpochEndRequest { epoch: 3 },
            Message::EpochNotEnded { epoch: u64::MAX },
            Message::EpochEnd(end.clone()),
        ] {
            let bytes = encode(&message);
            assert_eq!(decode(&bytes).unwrap(), message);
        }
        // A request or a "not yet" of other than eight bytes.
        for tag in [TAG_EPOCH_END_REQUEST, TAG_EPOCH_NOT_ENDED] {
            for len in [0, 7, 9] {
                let mut bytes = vec![tag];
                bytes.resize(1 + len, 1);
                assert!(matches!(decode(&bytes), Err(WireError::BadEpochRequest)));
            }
        }
        // No certificate, a certificate too large, fixed fields cut short.
        let bare = encode(&Message::EpochEnd(EpochEnd {
            certificate: Vec::new(),
            ..end.clone()
        }));
        assert!(matches!(decode(&bare), Err(WireError::BadEpochEnd)));
        let largest = Message::EpochEnd(EpochEnd {
            certificate: vec![7; MAX_EPOCH_CERTIFICATE_BYTES],
            ..end.clone()
        });
        assert_eq!(decode(&encode(&largest)).unwrap(), largest);
        let mut oversized = encode(&largest);
        oversized.push(7);
        assert!(matches!(decode(&oversized), Err(WireError::BadEpochEnd)));
        assert!(matches!(decode(&bare[..20]), Err(WireError::BadEpochEnd)));
    }
}
