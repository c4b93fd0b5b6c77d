//! The verifier's record of the nonces it handed out, so that each
//! presentation is accepted at most once.

use std::collections::HashMap;

use rand::rngs::OsRng;
use rand::RngCore;

use super::error::ZkError;
use super::range::Challenge;

/// Default bound on nonces remembered at once.
pub const DEFAULT_NONCE_CAPACITY: usize = 100_000;

#[derive(Debug, Clone, Copy)]
enum NonceState {
    Outstanding { expires_at: u64 },
    Used { expires_at: u64 },
}

impl NonceState {
    fn expires_at(self) -> u64 {
        match self {
            NonceState::Outstanding { expires_at } | NonceState::Used { expires_at } => expires_at,
        }
    }
}

/// Issues random nonces that live `lifetime_secs` and can each be consumed
/// once. A used nonce is remembered until it would have expired, so a replay
/// is told apart from a forgery (`zk-nonce-reused` vs `zk-nonce-unknown`);
/// after that it is forgotten and a replay is `zk-nonce-unknown`.
#[derive(Debug)]
pub struct NonceBook {
    verifier: String,
    lifetime_secs: u64,
    capacity: usize,
    entries: HashMap<[u8; 32], NonceState>,
}

impl NonceBook {
    pub fn new(verifier: impl Into<String>, lifetime_secs: u64) -> Self {
        Self::with_capacity(verifier, lifetime_secs, DEFAULT_NONCE_CAPACITY)
    }

    pub fn with_capacity(verifier: impl Into<String>, lifetime_secs: u64, capacity: usize) -> Self {
        NonceBook {
            verifier: verifier.into(),
            lifetime_secs,
            capacity,
            entries: HashMap::new(),
        }
    }

    pub fn verifier(&self) -> &str {
        &self.verifier
    }

    /// A fresh challenge for this verifier, valid until `now + lifetime`.
    pub fn issue(&mut self, now: u64) -> Result<Challenge, ZkError> {
        if self.entries.len() >= self.capacity {
            self.entries.retain(|_, state| state.expires_at() > now);
            if self.entries.len() >= self.capacity {
                return Err(ZkError::NonceBookFull);
            }
        }
        let mut nonce = [0u8; 32];
        OsRng.fill_bytes(&mut nonce);
        self.entries.insert(
            nonce,
            NonceState::Outstanding {
                expires_at: now.saturating_add(self.lifetime_secs),
            },
        );
        Ok(Challenge {
            verifier: self.verifier.clone(),
            nonce,
        })
    }

    /// Marks `challenge`'s nonce used, refusing one this book did not issue
    /// (or issued for another verifier), one already used, or one expired.
    pub fn consume(&mut self, challenge: &Challenge, now: u64) -> Result<(), ZkError> {
        if challenge.verifier != self.verifier {
            return Err(ZkError::NonceUnknown);
        }
        let state = self
            .entries
            .get_mut(&challenge.nonce)
            .ok_or(ZkError::NonceUnknown)?;
        match *state {
            NonceState::Used { .. } => Err(ZkError::NonceReused),
            NonceState::Outstanding { expires_at } if now >= expires_at => {
                self.entries.remove(&challenge.nonce);
                Err(ZkError::NonceExpired)
            }
            NonceState::Outstanding { expires_at } => {
                *state = NonceState::Used { expires_at };
                Ok(())
            }
        }
    }

    /// How many nonces are remembered (outstanding or used, not yet purged).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERIFIER: &str = "did:web:care.example";

    #[test]
    fn each_nonce_is_good_once() {
        let mut book = NonceBook::new(VERIFIER, 300);
        let challenge = book.issue(1000).unwrap();
        assert_eq!(challenge.verifier, VERIFIER);
        book.consume(&challenge, 1001).unwrap();
        assert_eq!(
            book.consume(&challenge, 1002).unwrap_err().code(),
            "zk-nonce-reused"
        );
    }

    #[test]
    fn unknown_foreign_and_expired_nonces_are_refused() {
        let mut book = NonceBook::new(VERIFIER, 300);
        let issued = book.issue(1000).unwrap();
        let made_up = Challenge {
            verifier: VERIFIER.into(),
            nonce: [7; 32],
        };
        assert_eq!(
            book.consume(&made_up, 1001).unwrap_err().code(),
            "zk-nonce-unknown"
        );
        let elsewhere = Challenge {
            verifier: "did:web:other.example".into(),
            nonce: issued.nonce,
        };
        assert_eq!(
            book.consume(&elsewhere, 1001).unwrap_err().code(),
            "zk-nonce-unknown"
        );
        assert_eq!(
            book.consume(&issued, 1300).unwrap_err().code(),
            "zk-nonce-expired"
        );
        assert_eq!(
            book.consume(&issued, 1301).unwrap_err().code(),
            "zk-nonce-unknown"
        );
    }

    #[test]
    fn the_book_is_bounded_and_purges_expired_nonces() {
        let mut book = NonceBook::with_capacity(VERIFIER, 10, 2);
        let first = book.issue(0).unwrap();
        book.issue(0).unwrap();
        assert_eq!(book.issue(5).unwrap_err().code(), "zk-nonce-book-full");
        book.consume(&first, 5).unwrap();
        // Used or not, both expire at 10 and make room.
        book.issue(10).unwrap();
        assert_eq!(book.len(), 1);
    }

    #[test]
    fn nonces_differ() {
        let mut book = NonceBook::new(VERIFIER, 10);
        let a = book.issue(0).unwrap();
        let b = book.issue(0).unwrap();
        assert_ne!(a.nonce, b.nonce);
    }
}
