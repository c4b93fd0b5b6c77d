//! Which key acts for which identity, after recoveries.
//!
//! A patient's identity is the did:key they first used: records, grants and
//! access events name it for good. When the device holding that key is
//! lost, the patient's guardians recover the registered recovery key
//! (docs/recovery.md), which signs an `identity.rotate`: from then on a new
//! key acts for the identity, and every key it ever used before is retired,
//! so a stolen device can do nothing.

use std::collections::HashMap;

use hygeia_ledger::{ErrorCode, TxError};
use serde::Serialize;

use super::txs::{IdentityRecovery, IdentityRotate};

#[derive(Clone, Debug, Serialize)]
pub struct RecoveryEntry {
    pub recovery_key: String,
    pub threshold: u8,
    pub guardians: Vec<String>,
    pub split: String,
    /// Leaf index of the `identity.recovery` transaction.
    pub index: u64,
}

/// One change of the key acting for an identity.
#[derive(Clone, Debug, Serialize)]
pub struct Rotation {
    pub from: String,
    pub to: String,
    /// Leaf index of the `identity.rotate` transaction.
    pub index: u64,
}

#[derive(Clone, Debug, Default)]
pub struct Identities {
    recovery: HashMap<String, RecoveryEntry>,
    /// Identity → the key acting for it, for rotated identities only.
    current: HashMap<String, String>,
    /// Key → identity it acts for, for keys other than the identity's own.
    acting: HashMap<String, String>,
    /// Retired key → the identity it used to act for.
    retired: HashMap<String, String>,
    rotations: HashMap<String, Vec<Rotation>>,
}

impl Identities {
    /// The identity a signing key acts for: its own did:key unless a
    /// rotation says otherwise. A retired key acts for no one.
    pub fn identity_of(&self, key: &str) -> Result<String, TxError> {
        if let Some(identity) = self.retired.get(key) {
            return Err(TxError::new(
                ErrorCode::Forbidden("identity.key_retired"),
                format!(
                    "this key was replaced by a key rotation of {identity} and acts for no one"
                ),
            ));
        }
        Ok(self
            .acting
            .get(key)
            .cloned()
            .unwrap_or_else(|| key.to_owned()))
    }

    /// The key that signs for `identity` now.
    pub fn current_key<'a>(&'a self, identity: &'a str) -> &'a str {
        self.current.get(identity).map_or(identity, String::as_str)
    }

    pub fn recovery(&self, identity: &str) -> Option<&RecoveryEntry> {
        self.recovery.get(identity)
    }

    pub fn rotations(&self, identity: &str) -> &[Rotation] {
        self.rotations.get(identity).map_or(&[], Vec::as_slice)
    }

    /// `identity.recovery`, signed by `identity` (already resolved from its
    /// signing key). Registering again replaces the previous registration.
    pub fn register_recovery(&mut self, identity: &str, index: u64, body: &IdentityRecovery) {
        self.recovery.insert(
            identity.to_owned(),
            RecoveryEntry {
                recovery_key: body.recovery_key.clone(),
                threshold: body.threshold,
                guardians: body.guardians.clone(),
                split: body.split.clone(),
                index,
            },
        );
    }

    /// `identity.rotate`, signed by `key` (not resolved: the recovery key
    /// acts for no identity; it may only rotate).
    pub fn rotate(&mut self, key: &str, index: u64, body: &IdentityRotate) -> Result<(), TxError> {
        let subject = body.subject.as_str();
        let current = self.current_key(subject).to_owned();
        let by_recovery = self
            .recovery
            .get(subject)
            .is_some_and(|r| r.recovery_key == key);
        if !(by_recovery || key == current) {
            return Err(TxError::new(
                ErrorCode::Forbidden("identity.rotate_not_allowed"),
                format!("only {subject}'s registered recovery key or its current key rotates it"),
            ));
        }
        let new_key = body.new_key.as_str();
        let taken = new_key == subject
            || self.retired.contains_key(new_key)
            || self.acting.contains_key(new_key)
            || self.current.contains_key(new_key);
        if taken || self.recovery.values().any(|r| r.recovery_key == new_key) {
            return Err(TxError::new(
                ErrorCode::Conflict("identity.key_in_use"),
                format!("{new_key} already acts, acted or recovers for an identity"),
            ));
        }
        self.acting.remove(&current);
        self.retired.insert(current.clone(), subject.to_owned());
        self.acting.insert(new_key.to_owned(), subject.to_owned());
        self.current.insert(subject.to_owned(), new_key.to_owned());
        self.rotations
            .entry(subject.to_owned())
            .or_default()
            .push(Rotation {
                from: current,
                to: new_key.to_owned(),
                index,
            });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATIENT: &str = "did:key:patient";
    const RECOVERY: &str = "did:key:recovery";
    const NEW: &str = "did:key:new";

    fn registered() -> Identities {
        let mut ids = Identities::default();
        ids.register_recovery(
            PATIENT,
            1,
            &IdentityRecovery {
                recovery_key: RECOVERY.into(),
                threshold: 2,
                guardians: vec!["did:key:g1".into(), "did:key:g2".into()],
                split: "00".repeat(32),
            },
        );
        ids
    }

    fn rotate_to(new_key: &str) -> IdentityRotate {
        IdentityRotate {
            subject: PATIENT.into(),
            new_key: new_key.into(),
        }
    }

    #[test]
    fn recovery_key_moves_the_identity_and_retires_the_old_key() {
        let mut ids = registered();
        ids.rotate(RECOVERY, 2, &rotate_to(NEW)).unwrap();
        assert_eq!(ids.identity_of(NEW).unwrap(), PATIENT);
        assert_eq!(ids.current_key(PATIENT), NEW);
        let err = ids.identity_of(PATIENT).unwrap_err();
        assert_eq!(err.code.as_str(), "identity.key_retired");
        assert_eq!(ids.rotations(PATIENT).len(), 1);
    }

    #[test]
    fn only_the_recovery_or_current_key_rotates() {
        let mut ids = registered();
        let err = ids
            .rotate("did:key:stranger", 2, &rotate_to(NEW))
            .unwrap_err();
        assert_eq!(err.code.as_str(), "identity.rotate_not_allowed");
        // The lost device's key is retired after a rotation: it cannot
        // rotate back.
        ids.rotate(RECOVERY, 2, &rotate_to(NEW)).unwrap();
        let err = ids
            .rotate(PATIENT, 3, &rotate_to("did:key:thief"))
            .unwrap_err();
        assert_eq!(err.code.as_str(), "identity.rotate_not_allowed");
    }

    #[test]
    fn a_key_cannot_be_reused() {
        let mut ids = registered();
        ids.rotate(RECOVERY, 2, &rotate_to(NEW)).unwrap();
        let err = ids.rotate(NEW, 3, &rotate_to(PATIENT)).unwrap_err();
        assert_eq!(err.code.as_str(), "identity.key_in_use");
        let err = ids.rotate(NEW, 3, &rotate_to(RECOVERY)).unwrap_err();
        assert_eq!(err.code.as_str(), "identity.key_in_use");
    }
}
