//! The nonce format and the replay cache.

use std::collections::HashSet;

use sha2::{Digest, Sha256};

use crate::error::AuthError;

pub(crate) const NONCE_MIN: usize = 16;
pub(crate) const NONCE_MAX: usize = 128;

/// A nonce is 16 to 128 characters from `[A-Za-z0-9_-]`.
pub(crate) fn check_nonce(nonce: &str) -> Result<(), AuthError> {
    let ok = (NONCE_MIN..=NONCE_MAX).contains(&nonce.len())
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(AuthError::malformed(format!(
            "nonce must be {NONCE_MIN} to {NONCE_MAX} characters from [A-Za-z0-9_-]"
        )))
    }
}

/// The cache key of a (keyid, nonce) pair:
/// SHA-256(keyid || 0x00 || nonce), first 16 bytes.
pub(crate) fn replay_key(keyid: &str, nonce: &str) -> [u8; 16] {
    let mut hash = Sha256::new();
    hash.update(keyid.as_bytes());
    hash.update([0u8]);
    hash.update(nonce.as_bytes());
    let digest = hash.finalize();
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

/// (keyid, nonce) pairs seen recently, in two generations.
///
/// A pair is kept for at least one `period` after it is recorded: it goes
/// into `current`, moves to `previous` at the next rotation, and is dropped
/// at the one after, and rotations are at least `period` apart. So memory
/// holds at most the pairs of the last two periods.
#[derive(Debug)]
pub(crate) struct ReplayCache {
    period: u64,
    generation_start: u64,
    current: HashSet<[u8; 16]>,
    previous: HashSet<[u8; 16]>,
}

impl ReplayCache {
    pub(crate) fn new(period: u64, start: u64) -> Self {
        ReplayCache {
            period: period.max(1),
            generation_start: start,
            current: HashSet::new(),
            previous: HashSet::new(),
        }
    }

    fn rotate(&mut self, now: u64) {
        if now < self.generation_start.saturating_add(self.period) {
            return;
        }
        if now
            >= self
                .generation_start
                .saturating_add(self.period.saturating_mul(2))
        {
            // Everything in both generations is older than one period.
            self.current.clear();
            self.previous.clear();
        } else {
            self.previous = std::mem::take(&mut self.current);
        }
        self.generation_start = now;
    }

    /// Records `key`; false if it was already there (a replay).
    pub(crate) fn insert(&mut self, key: [u8; 16], now: u64) -> bool {
        self.rotate(now);
        if self.previous.contains(&key) {
            return false;
        }
        self.current.insert(key)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_format() {
        assert!(check_nonce(&"a".repeat(16)).is_ok());
        assert!(check_nonce(&"Z9_-".repeat(32)).is_ok());
        assert!(check_nonce(&"a".repeat(15)).is_err());
        assert!(check_nonce(&"a".repeat(129)).is_err());
        assert!(check_nonce("aaaaaaaaaaaaaaa=").is_err());
        assert!(check_nonce("aaaaaaaaaaaaaaa\u{e9}").is_err());
        assert!(check_nonce("aaaaaaaa aaaaaaaa").is_err());
    }

    #[test]
    fn replay_key_separates_keyid_from_nonce() {
        assert_ne!(replay_key("ab", "c"), replay_key("a", "bc"));
        assert_eq!(replay_key("a", "b"), replay_key("a", "b"));
    }

    #[test]
    fn kept_for_at_least_one_period_and_bounded() {
        let mut cache = ReplayCache::new(10, 1000);
        assert!(cache.insert([1; 16], 1009));
        // Rotated once at 1010: still known.
        assert!(!cache.insert([1; 16], 1010));
        // Rotated again at 1020: now older than one period, forgotten.
        assert!(cache.insert([2; 16], 1020));
        assert!(cache.insert([1; 16], 1020));
        // A long pause clears both generations.
        assert!(cache.insert([3; 16], 1100));
        assert_eq!(cache.len(), 1);
    }
}
