//! Replay protection for client assertions: each (iss, jti) pair is
//! accepted once while its assertion could still be accepted.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::error::TokenError;

/// How many unexpired (iss, jti) pairs a [`JtiCache`] holds by default.
/// An assertion lives at most about seven minutes, so this allows a
/// sustained 200 token requests a second in about 6 MB.
pub const DEFAULT_JTI_CAPACITY: usize = 100_000;

/// The (iss, jti) pairs of accepted client assertions, each kept until its
/// assertion can no longer be accepted (its `exp` plus the clock skew).
///
/// Bounded: expired pairs are pruned on every insertion, and when
/// `capacity` unexpired pairs are held a new assertion is refused
/// ([`TokenError::Busy`]) rather than evicting a pair that could then be
/// replayed. Thread-safe: share one cache among a node's handlers.
pub struct JtiCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// SHA-256(iss || 0x00 || jti), first 16 bytes → keep-until (Unix s).
    /// Hashing bounds the memory of a pair whatever the jti's length.
    until: HashMap<[u8; 16], i64>,
    /// The same pairs, soonest expiry first, for pruning.
    by_expiry: BinaryHeap<Reverse<(i64, [u8; 16])>>,
}

impl JtiCache {
    /// A cache holding at most `capacity` unexpired pairs (at least one).
    pub fn new(capacity: usize) -> Self {
        JtiCache {
            capacity: capacity.max(1),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// How many pairs are held (some may have expired since the last
    /// insertion).
    pub fn len(&self) -> usize {
        self.lock().until.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records the pair until `keep_until`, refusing it if it is already
    /// held ([`TokenError::Replay`]) or the cache is full.
    pub(crate) fn insert(
        &self,
        iss: &str,
        jti: &str,
        keep_until: i64,
        now: i64,
    ) -> Result<(), TokenError> {
        let key = pair_key(iss, jti);
        let mut inner = self.lock();
        inner.prune(now);
        if inner.until.contains_key(&key) {
            return Err(TokenError::Replay);
        }
        if inner.until.len() >= self.capacity {
            return Err(TokenError::Busy);
        }
        inner.until.insert(key, keep_until);
        inner.by_expiry.push(Reverse((keep_until, key)));
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves the maps
        // consistent (each update is one insert or remove), so keep going.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Default for JtiCache {
    fn default() -> Self {
        JtiCache::new(DEFAULT_JTI_CAPACITY)
    }
}

impl std::fmt::Debug for JtiCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JtiCache")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish()
    }
}

impl Inner {
    /// Drops the pairs whose assertions can no longer be accepted.
    fn prune(&mut self, now: i64) {
        while let Some(Reverse((until, key))) = self.by_expiry.peek().copied() {
            if until >= now {
                break;
            }
            self.by_expiry.pop();
            self.until.remove(&key);
        }
    }
}

/// The separator keeps ("ab", "c") and ("a", "bc") apart; a did:key has
/// no NUL.
fn pair_key(iss: &str, jti: &str) -> [u8; 16] {
    let mut hash = Sha256::new();
    hash.update(iss.as_bytes());
    hash.update([0u8]);
    hash.update(jti.as_bytes());
    let digest = hash.finalize();
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_is_accepted_once_until_it_expires() {
        let cache = JtiCache::new(10);
        assert_eq!(cache.insert("did:a", "1", 100, 50), Ok(()));
        assert_eq!(cache.insert("did:a", "1", 100, 60), Err(TokenError::Replay));
        // Same jti, other issuer; same issuer, other jti.
        assert_eq!(cache.insert("did:b", "1", 100, 60), Ok(()));
        assert_eq!(cache.insert("did:a", "2", 100, 60), Ok(()));
        // Still refused at keep-until itself, forgotten after.
        assert_eq!(
            cache.insert("did:a", "1", 200, 100),
            Err(TokenError::Replay)
        );
        assert_eq!(cache.insert("did:a", "1", 200, 101), Ok(()));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn full_refuses_instead_of_evicting() {
        let cache = JtiCache::new(2);
        assert_eq!(cache.insert("i", "1", 100, 0), Ok(()));
        assert_eq!(cache.insert("i", "2", 200, 0), Ok(()));
        assert_eq!(cache.insert("i", "3", 300, 0), Err(TokenError::Busy));
        // Once the first has expired there is room again, and the
        // unexpired one is still remembered.
        assert_eq!(cache.insert("i", "3", 300, 101), Ok(()));
        assert_eq!(cache.insert("i", "2", 300, 101), Err(TokenError::Replay));
    }

    #[test]
    fn separator_keeps_pairs_apart() {
        assert_ne!(pair_key("ab", "c"), pair_key("a", "bc"));
    }
}
