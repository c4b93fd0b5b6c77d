//! Issued access tokens and the sessions they stand for.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Mutex, MutexGuard};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// How long an access token is valid by default, in seconds (15 minutes).
/// The node decides: a [`Session`]'s `expires_at` is what counts.
pub const ACCESS_TOKEN_LIFETIME_SECS: i64 = 15 * 60;

/// What an access token stands for, fixed when it is issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The participant the client assertion authenticated (a did:key).
    pub did: String,
    /// The HL7 v3 PurposeOfUse code stated at issue time (e.g. `TREAT`).
    pub purpose: String,
    /// The break-glass justification stated at issue time, if any.
    pub break_glass: Option<String>,
    /// When the token stops being valid (Unix seconds, exclusive).
    pub expires_at: i64,
    /// The scopes granted, as sent back in the token response: every
    /// interaction must be within them (as well as allowed by consent).
    pub scope: crate::scope::Scopes,
}

/// The access tokens a node has issued. Thread-safe: share one store.
///
/// A token is 32 random bytes, base64url (43 characters). Only its
/// SHA-256 is kept, so the store (or a memory dump of it) cannot be used
/// to act as a client. Looking tokens up by their digest also means the
/// map's lookup time depends on the digest, which an attacker cannot steer
/// towards a real token, not on the secret itself.
pub struct TokenStore {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    sessions: HashMap<[u8; 32], Session>,
    /// (expires_at, digest), soonest first, for pruning. A revoked token's
    /// entry stays until its expiry and is then dropped harmlessly.
    by_expiry: BinaryHeap<Reverse<(i64, [u8; 32])>>,
    /// The latest `now` seen, so that [`TokenStore::issue`], which is not
    /// told the time, can prune too.
    latest_now: i64,
}

impl TokenStore {
    pub fn new() -> Self {
        TokenStore {
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Issues a new token for `session` and gives it; it is shown only
    /// this once.
    pub fn issue(&self, session: Session) -> String {
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        let token = URL_SAFE_NO_PAD.encode(bytes);
        let key = digest(&token);
        let mut inner = self.lock();
        let now = inner.latest_now;
        inner.prune(now);
        inner.by_expiry.push(Reverse((session.expires_at, key)));
        inner.sessions.insert(key, session);
        token
    }

    /// The session of `token` at `now` (Unix seconds), if it was issued
    /// here, has not been revoked and has not expired.
    pub fn lookup(&self, token: &str, now: i64) -> Option<Session> {
        let key = digest(token);
        let mut inner = self.lock();
        inner.latest_now = inner.latest_now.max(now);
        inner.prune(now);
        inner
            .sessions
            .get(&key)
            .filter(|session| now < session.expires_at)
            .cloned()
    }

    /// Revokes `token`; unknown tokens are ignored.
    pub fn revoke(&self, token: &str) {
        self.lock().sessions.remove(&digest(token));
    }

    /// Revokes the token whose SHA-256 is `digest` (see
    /// [`TokenStore::digest_of`]); unknown digests are ignored.
    pub fn revoke_digest(&self, digest: &[u8; 32]) {
        self.lock().sessions.remove(digest);
    }

    /// The digest a token is kept under: what to remember of a token in
    /// order to revoke it later without keeping the token itself.
    pub fn digest_of(token: &str) -> [u8; 32] {
        digest(token)
    }

    /// Drops the sessions expired at `now`. [`TokenStore::lookup`] and
    /// [`TokenStore::issue`] also do this as they go.
    pub fn prune(&self, now: i64) {
        let mut inner = self.lock();
        inner.latest_now = inner.latest_now.max(now);
        inner.prune(now);
    }

    /// How many tokens are held (some may have expired since the last
    /// pruning).
    pub fn len(&self) -> usize {
        self.lock().sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Each update is a single insert or remove: a poisoned lock still
        // guards consistent maps.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Default for TokenStore {
    fn default() -> Self {
        TokenStore::new()
    }
}

/// Shows the count only: digests are not secret, but there is nothing in
/// them worth printing.
impl std::fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenStore")
            .field("len", &self.len())
            .finish()
    }
}

impl Inner {
    fn prune(&mut self, now: i64) {
        while let Some(Reverse((expires_at, key))) = self.by_expiry.peek().copied() {
            if expires_at > now {
                break;
            }
            self.by_expiry.pop();
            self.sessions.remove(&key);
        }
    }
}

/// SHA-256 of the token as sent (its base64url text).
fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_767_225_600;

    fn session(expires_at: i64) -> Session {
        Session {
            did: "did:key:z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw".into(),
            purpose: "TREAT".into(),
            break_glass: None,
            expires_at,
            scope: "system/*.rs".parse().unwrap(),
        }
    }

    #[test]
    fn tokens_are_32_random_bytes_base64url() {
        let store = TokenStore::new();
        let a = store.issue(session(NOW + 900));
        let b = store.issue(session(NOW + 900));
        assert_ne!(a, b);
        for token in [&a, &b] {
            assert_eq!(URL_SAFE_NO_PAD.decode(token).unwrap().len(), 32);
        }
    }

    #[test]
    fn only_digests_are_stored() {
        let store = TokenStore::new();
        let token = store.issue(session(NOW + 900));
        let inner = store.lock();
        assert_eq!(inner.sessions.len(), 1);
        let (key, _) = inner.sessions.iter().next().unwrap();
        assert_eq!(key, &<[u8; 32]>::from(Sha256::digest(token.as_bytes())));
        let raw = URL_SAFE_NO_PAD.decode(&token).unwrap();
        assert_ne!(key.as_slice(), raw.as_slice());
        assert_ne!(key.as_slice(), &token.as_bytes()[..32]);
        drop(inner);
        assert!(!format!("{store:?}").contains(&token));
    }

    #[test]
    fn expired_sessions_are_pruned() {
        let store = TokenStore::new();
        let short = store.issue(session(NOW + 10));
        let long = store.issue(session(NOW + 900));
        assert!(store.lookup(&short, NOW + 9).is_some());
        assert!(store.lookup(&short, NOW + 10).is_none());
        assert_eq!(store.len(), 1);
        assert!(store.lookup(&long, NOW + 10).is_some());
        // issue prunes too, with the latest time seen.
        store.prune(NOW + 899);
        assert_eq!(store.len(), 1);
        assert!(store.lookup("unknown", NOW + 900).is_none());
        let fresh = store.issue(session(NOW + 1800));
        assert_eq!(store.len(), 1);
        assert!(store.lookup(&fresh, NOW + 900).is_some());
    }

    #[test]
    fn revoked_then_expired_leaves_nothing() {
        let store = TokenStore::new();
        let token = store.issue(session(NOW + 10));
        store.revoke(&token);
        assert!(store.lookup(&token, NOW).is_none());
        store.prune(NOW + 10);
        assert!(store.lock().by_expiry.is_empty());
    }
}
