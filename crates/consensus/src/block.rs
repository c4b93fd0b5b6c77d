//! The block: what consensus orders.
//!
//! A block names its parent by digest and carries a batch of client
//! submissions, each a list of signed transactions in Hygeia's wire form
//! (canonical JSON, RFC 8785). Consensus itself only sees the block's
//! digest (SHA-256 of its encoding); the bytes travel on a channel of
//! their own ([`crate::application`]).
//!
//! Encoding (all integers big-endian), one form per block, so that
//! `encode(decode(bytes)) == bytes` for every accepted input:
//!
//! ```text
//! parent (32) | height (u64) | view (u64) | submissions (u32)
//! per submission: transactions (u32)
//! per transaction: length (u32) | bytes
//! ```

use hygeia_ledger::MAX_TX_BYTES;
use sha2::{Digest as _, Sha256};

/// A block digest (SHA-256).
pub type Digest = [u8; 32];

/// Most transactions one block carries.
pub const MAX_BLOCK_TXS: usize = 4096;
/// Most transactions in one submission.
pub const MAX_SUBMISSION_TXS: usize = 1024;
/// Most bytes of an encoded block (every transaction at its largest would
/// not fit: a proposer stops filling a block before this).
pub const MAX_BLOCK_BYTES: usize = 8 * 1024 * 1024;

/// Domain of the digest the chain starts from.
const GENESIS_DOMAIN: &[u8] = b"hygeia.consensus.genesis.v1\x00";

/// One block of the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// Digest of the block this one extends (the genesis digest for the
    /// first).
    pub parent: Digest,
    /// Number of blocks before this one since the chain started.
    pub height: u64,
    /// The consensus view it was proposed in: two proposals in different
    /// views never share a digest.
    pub view: u64,
    /// Client submissions in order; each is all or nothing.
    pub submissions: Vec<Vec<Vec<u8>>>,
}

/// Why bytes are not a block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("block truncated")]
    Truncated,
    #[error("block too large")]
    TooLarge,
    #[error("block has {0} trailing bytes")]
    Trailing(usize),
    #[error("empty submission in block")]
    EmptySubmission,
}

impl Block {
    /// The digest consensus votes on.
    pub fn digest(encoded: &[u8]) -> Digest {
        Sha256::digest(encoded).into()
    }

    /// Transactions in the block.
    pub fn tx_count(&self) -> usize {
        self.submissions.iter().map(Vec::len).sum()
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(52 + self.tx_count() * 512);
        out.extend_from_slice(&self.parent);
        out.extend_from_slice(&self.height.to_be_bytes());
        out.extend_from_slice(&self.view.to_be_bytes());
        out.extend_from_slice(&(self.submissions.len() as u32).to_be_bytes());
        for submission in &self.submissions {
            out.extend_from_slice(&(submission.len() as u32).to_be_bytes());
            for tx in submission {
                out.extend_from_slice(&(tx.len() as u32).to_be_bytes());
                out.extend_from_slice(tx);
            }
        }
        out
    }

    /// Parses a block received from a peer: bounded, no trailing bytes.
    /// Transactions are not parsed here (the application does that).
    pub fn decode(bytes: &[u8]) -> Result<Block, BlockError> {
        if bytes.len() > MAX_BLOCK_BYTES {
            return Err(BlockError::TooLarge);
        }
        let mut r = Reader(bytes);
        let parent: [u8; 32] = r.take(32)?.try_into().map_err(|_| BlockError::Truncated)?;
        let height = r.u64()?;
        let view = r.u64()?;
        let n = r.u32()? as usize;
        if n > MAX_BLOCK_TXS {
            return Err(BlockError::TooLarge);
        }
        let mut submissions = Vec::with_capacity(n);
        let mut total = 0usize;
        for _ in 0..n {
            let m = r.u32()? as usize;
            if m == 0 {
                return Err(BlockError::EmptySubmission);
            }
            total += m;
            if m > MAX_SUBMISSION_TXS || total > MAX_BLOCK_TXS {
                return Err(BlockError::TooLarge);
            }
            let mut txs = Vec::with_capacity(m);
            for _ in 0..m {
                let len = r.u32()? as usize;
                if len > MAX_TX_BYTES {
                    return Err(BlockError::TooLarge);
                }
                txs.push(r.take(len)?.to_vec());
            }
            submissions.push(txs);
        }
        if !r.0.is_empty() {
            return Err(BlockError::Trailing(r.0.len()));
        }
        Ok(Block {
            parent,
            height,
            view,
            submissions,
        })
    }
}

/// The digest the chain of a log starts from: it binds the log's size and
/// root when consensus starts, so nodes whose logs differ do not agree on
/// a first block.
pub fn genesis_digest(size: u64, root: &[u8; 32]) -> Digest {
    let mut hasher = Sha256::new();
    hasher.update(GENESIS_DOMAIN);
    hasher.update(size.to_be_bytes());
    hasher.update(root);
    hasher.finalize().into()
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], BlockError> {
        if self.0.len() < n {
            return Err(BlockError::Truncated);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, BlockError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, BlockError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Block {
        Block {
            parent: genesis_digest(1, &[7; 32]),
            height: 3,
            view: 9,
            submissions: vec![
                vec![b"{\"a\":1}".to_vec()],
                vec![b"x".to_vec(), b"yz".to_vec()],
            ],
        }
    }

    #[test]
    fn encoding_round_trips_and_is_canonical() {
        let block = sample();
        let bytes = block.encode();
        let back = Block::decode(&bytes).unwrap();
        assert_eq!(back, block);
        assert_eq!(back.encode(), bytes);
        assert_eq!(back.tx_count(), 3);
    }

    #[test]
    fn truncated_trailing_and_oversized_inputs_are_refused() {
        let bytes = sample().encode();
        for cut in 0..bytes.len() {
            assert!(
                Block::decode(&bytes[..cut]).is_err(),
                "prefix of {cut} bytes"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(Block::decode(&longer), Err(BlockError::Trailing(1)));
        let mut many = bytes[..48].to_vec();
        many.extend_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(Block::decode(&many), Err(BlockError::TooLarge));
        let mut empty = bytes[..48].to_vec();
        empty.extend_from_slice(&1u32.to_be_bytes());
        empty.extend_from_slice(&0u32.to_be_bytes());
        assert_eq!(Block::decode(&empty), Err(BlockError::EmptySubmission));
    }

    #[test]
    fn genesis_digest_binds_size_and_root() {
        assert_ne!(genesis_digest(1, &[0; 32]), genesis_digest(2, &[0; 32]));
        assert_ne!(genesis_digest(1, &[0; 32]), genesis_digest(1, &[1; 32]));
    }
}
