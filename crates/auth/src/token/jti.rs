//! Replay protection for client assertions: each (iss, jti) pair is
//! accepted once while its assertion could still be accepted.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::error::TokenError;

/// How many unexpired (iss, jti) pairs a [`JtiCache`] holds by default for
/// issuers without priority. An assertion lives at most about seven
/// minutes, so this allows a sustained 200 token requests a second in
/// about 6 MB.
pub const DEFAULT_JTI_CAPACITY: usize = 100_000;

/// How many unexpired pairs one issuer may hold by default: far more than
/// a client needs (one assertion per token, a token lasting minutes), far
/// fewer than the cache holds.
pub const DEFAULT_JTI_PER_ISSUER: usize = 256;

/// Which issuers get the cache's reserved room (a node gives it to the
/// participants it knows, so that fresh keys cannot crowd them out).
pub type Priority = Box<dyn Fn(&str) -> bool + Send + Sync>;

/// The (iss, jti) pairs of accepted client assertions, each kept until its
/// assertion can no longer be accepted (its `exp` plus the clock skew).
///
/// Bounded, per issuer and in total, and fair: one issuer holds at most
/// `per_issuer` unexpired pairs; issuers the [`Priority`] names share a
/// room of `reserved` pairs of their own, which other issuers (any number
/// of fresh keys) cannot fill; the others share `capacity`. Expired pairs
/// are pruned on every insertion. When an issuer's share or its room is
/// full a new assertion is refused ([`TokenError::Busy`]) rather than
/// evicting a pair that could then be replayed. Thread-safe: share one
/// cache among a node's handlers.
pub struct JtiCache {
    capacity: usize,
    reserved: usize,
    per_issuer: usize,
    priority: Option<Priority>,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// SHA-256(iss || 0x00 || jti), first 16 bytes → the pair. Hashing
    /// bounds the memory of a pair whatever the jti's length.
    pairs: HashMap<[u8; 16], Pair>,
    /// The same pairs, soonest expiry first, for pruning.
    by_expiry: BinaryHeap<Reverse<(i64, [u8; 16])>>,
    /// Unexpired pairs per issuer (SHA-256(iss), first 16 bytes).
    per_issuer: HashMap<[u8; 16], usize>,
    /// Unexpired pairs of issuers with and without priority.
    prioritized: usize,
    ordinary: usize,
}

#[derive(Clone, Copy)]
struct Pair {
    issuer: [u8; 16],
    prioritized: bool,
}

impl JtiCache {
    /// A cache holding at most `capacity` unexpired pairs (at least one),
    /// at most [`DEFAULT_JTI_PER_ISSUER`] per issuer, with no reserved
    /// room.
    pub fn new(capacity: usize) -> Self {
        JtiCache {
            capacity: capacity.max(1),
            reserved: 0,
            per_issuer: DEFAULT_JTI_PER_ISSUER,
            priority: None,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// A cache holding `capacity` pairs for issuers without priority,
    /// `reserved` more for issuers `priority` names, and at most
    /// `per_issuer` per issuer (each at least one).
    pub fn with_limits(
        capacity: usize,
        reserved: usize,
        per_issuer: usize,
        priority: impl Fn(&str) -> bool + Send + Sync + 'static,
    ) -> Self {
        JtiCache {
            capacity: capacity.max(1),
            reserved,
            per_issuer: per_issuer.max(1),
            priority: Some(Box::new(priority)),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// How many pairs are held (some may have expired since the last
    /// insertion).
    pub fn len(&self) -> usize {
        self.lock().pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records the pair until `keep_until`, refusing it if it is already
    /// held ([`TokenError::Replay`]), or if the issuer's share or its room
    /// is full ([`TokenError::Busy`]).
    pub(crate) fn insert(
        &self,
        iss: &str,
        jti: &str,
        keep_until: i64,
        now: i64,
    ) -> Result<(), TokenError> {
        let key = pair_key(iss, jti);
        let issuer = issuer_key(iss);
        // Asked before the lock: the priority may look at other state.
        let prioritized = self.reserved > 0 && self.priority.as_ref().is_some_and(|p| p(iss));
        let mut inner = self.lock();
        inner.prune(now);
        if inner.pairs.contains_key(&key) {
            return Err(TokenError::Replay);
        }
        if inner.per_issuer.get(&issuer).copied().unwrap_or(0) >= self.per_issuer {
            return Err(TokenError::Busy);
        }
        if prioritized {
            if inner.prioritized >= self.reserved {
                return Err(TokenError::Busy);
            }
            inner.prioritized += 1;
        } else {
            if inner.ordinary >= self.capacity {
                return Err(TokenError::Busy);
            }
            inner.ordinary += 1;
        }
        *inner.per_issuer.entry(issuer).or_default() += 1;
        inner.pairs.insert(
            key,
            Pair {
                issuer,
                prioritized,
            },
        );
        inner.by_expiry.push(Reverse((keep_until, key)));
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves the maps
        // consistent (each update completes before the next lock), so
        // keep going.
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
            .field("reserved", &self.reserved)
            .field("per_issuer", &self.per_issuer)
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
            if let Some(pair) = self.pairs.remove(&key) {
                if pair.prioritized {
                    self.prioritized -= 1;
                } else {
                    self.ordinary -= 1;
                }
                if let Some(count) = self.per_issuer.get_mut(&pair.issuer) {
                    *count -= 1;
                    if *count == 0 {
                        self.per_issuer.remove(&pair.issuer);
                    }
                }
            }
        }
    }
}

fn issuer_key(iss: &str) -> [u8; 16] {
    let digest = Sha256::digest(iss.as_bytes());
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
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
    fn one_issuer_holds_at_most_its_share() {
        let cache = JtiCache::with_limits(100, 0, 3, |_| false);
        for jti in ["1", "2", "3"] {
            assert_eq!(cache.insert("did:a", jti, 100, 0), Ok(()));
        }
        assert_eq!(cache.insert("did:a", "4", 100, 0), Err(TokenError::Busy));
        assert_eq!(cache.insert("did:b", "1", 100, 0), Ok(()));
        // Its pairs expiring free its share.
        assert_eq!(cache.insert("did:a", "4", 200, 101), Ok(()));
    }

    #[test]
    fn fresh_issuers_cannot_fill_the_room_of_known_ones() {
        let cache = JtiCache::with_limits(4, 2, 10, |iss| iss.starts_with("did:known"));
        for n in 0..4 {
            assert_eq!(cache.insert(&format!("did:fresh{n}"), "j", 100, 0), Ok(()));
        }
        assert_eq!(
            cache.insert("did:fresh9", "j", 100, 0),
            Err(TokenError::Busy)
        );
        assert_eq!(cache.insert("did:known1", "j", 100, 0), Ok(()));
        assert_eq!(cache.insert("did:known2", "j", 100, 0), Ok(()));
        assert_eq!(
            cache.insert("did:known3", "j", 100, 0),
            Err(TokenError::Busy)
        );
        // Expiry frees both rooms; replays are still refused until then.
        assert_eq!(
            cache.insert("did:known1", "j", 200, 50),
            Err(TokenError::Replay)
        );
        assert_eq!(cache.insert("did:fresh9", "j", 200, 101), Ok(()));
        assert_eq!(cache.insert("did:known3", "j", 200, 101), Ok(()));
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn separator_keeps_pairs_apart() {
        assert_ne!(pair_key("ab", "c"), pair_key("a", "bc"));
    }
}
