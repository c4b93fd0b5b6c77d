//! Which key acts for which identity, after recoveries.
//!
//! A patient's identity is the did:key they first used: records, grants and
//! access events name it for good. When the device holding that key is
//! lost, the patient's guardians recover the registered recovery key
//! (docs/recovery.md), which signs an `identity.rotate`: from then on a new
//! key acts for the identity, and every key it ever used before is retired,
//! so a stolen device can do nothing.
//!
//! A rotation must never make a key that already stands for someone act
//! for someone else: the new key must be unknown to the log (no admitted
//! transaction signed by it or naming it, see [`Identities::note_known`])
//! and must itself sign its acceptance (`proof`), so neither a key already
//! in use nor a key someone merely knows of can be captured.
//!
//! Types: `identity.recovery`, `identity.rotate`.

use imbl::{HashMap, HashSet};

use hygeia_ledger::{ErrorCode, TxError};
use serde::{Deserialize, Serialize};

use super::registry::{example_did, Cx, Registry, SignedAs, TxBody};
use super::txs::{
    check_did, check_did_key, check_hex32, IdentityRecovery, IdentityRotate, IdentityRotateV1,
    IDENTITY_RECOVERY, IDENTITY_ROTATE,
};
use super::{Effect, LedgerState};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RecoveryEntry {
    pub recovery_key: String,
    pub threshold: u8,
    pub guardians: Vec<String>,
    pub split: String,
    /// Leaf index of the `identity.recovery` transaction.
    pub index: u64,
}

/// One change of the key acting for an identity.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Rotation {
    pub from: String,
    pub to: String,
    /// Leaf index of the `identity.rotate` transaction.
    pub index: u64,
}

/// Persistent maps and set (`imbl`): a clone is O(1) and shares every
/// entry until one side changes it (see `writer.rs`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Identities {
    #[serde(with = "crate::snapshot::sorted_map")]
    recovery: HashMap<String, RecoveryEntry>,
    /// Identity → the key acting for it, for rotated identities only.
    #[serde(with = "crate::snapshot::sorted_map")]
    current: HashMap<String, String>,
    /// Key → identity it acts for, for keys other than the identity's own.
    #[serde(with = "crate::snapshot::sorted_map")]
    acting: HashMap<String, String>,
    /// Retired key → the identity it used to act for.
    #[serde(with = "crate::snapshot::sorted_map")]
    retired: HashMap<String, String>,
    #[serde(with = "crate::snapshot::sorted_map")]
    rotations: HashMap<String, Vec<Rotation>>,
    /// Every did:key the log has named: the signers of admitted
    /// transactions, every did:key their bodies name, the node and the
    /// governance key. None of them may become another identity's key.
    #[serde(with = "crate::snapshot::sorted_set")]
    known: HashSet<String>,
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

    /// Remembers that the log named `did` (a signer, or a DID in an
    /// admitted body). Only did:keys can become an identity's key, so
    /// only they are kept; a DID URL counts for its DID.
    pub fn note_known(&mut self, did: &str) {
        let did = did.split_once('#').map_or(did, |(d, _)| d);
        // No did:key is longer (an Ed25519 one is 56 characters).
        const MAX_DID_KEY_LEN: usize = 128;
        if did.starts_with("did:key:") && did.len() <= MAX_DID_KEY_LEN && !self.known.contains(did)
        {
            self.known.insert(did.to_owned());
        }
    }

    /// Whether the log ever named `did` (see [`Identities::note_known`]).
    pub fn is_known(&self, did: &str) -> bool {
        self.known.contains(did)
    }

    /// How many did:keys the log has named.
    pub fn known_len(&self) -> usize {
        self.known.len()
    }

    /// `identity.rotate`, signed by `key` (not resolved: the recovery key
    /// acts for no identity; it may only rotate).
    ///
    /// Refused, in this order: a retired signing key
    /// (`identity.key_retired`); a subject that is not an identity but a
    /// key acting, or retired, for another one (`identity.not_an_identity`);
    /// a signer that is neither the subject's registered recovery key nor
    /// its current key (`identity.rotate_not_allowed`); a new key that is,
    /// acts, acted, recovers or was ever named for anyone
    /// (`identity.key_in_use`); a new key that did not sign its acceptance
    /// (`identity.new_key_not_proven`).
    pub fn rotate(&mut self, key: &str, index: u64, body: &IdentityRotate) -> Result<(), TxError> {
        let subject = body.subject.as_str();
        if let Some(identity) = self.retired.get(key) {
            return Err(TxError::new(
                ErrorCode::Forbidden("identity.key_retired"),
                format!("this key was replaced by a key rotation of {identity} and signs nothing"),
            ));
        }
        let foreign = |owner: Option<&String>| owner.is_some_and(|o| o != subject);
        if foreign(self.acting.get(subject)) || foreign(self.retired.get(subject)) {
            return Err(TxError::new(
                ErrorCode::Conflict("identity.not_an_identity"),
                format!("{subject} is a key of another identity, not an identity of its own"),
            ));
        }
        let current = self.authorize_rotation(key, subject)?;
        let new_key = body.new_key.as_str();
        let taken = self.known.contains(new_key) || self.acts_or_recovers(subject, new_key);
        if taken {
            return Err(TxError::new(
                ErrorCode::Conflict("identity.key_in_use"),
                format!(
                    "{new_key} already appears on the ledger (as an identity, a key, a recovery key or in a transaction) and cannot become {subject}'s key"
                ),
            ));
        }
        body.verify_proof().map_err(|reason| {
            TxError::new(ErrorCode::Forbidden("identity.new_key_not_proven"), reason)
        })?;
        self.install(subject, current, new_key, index);
        Ok(())
    }

    /// Whether `key` may rotate `subject`: it is `subject`'s registered
    /// recovery key or its current key (`identity.rotate_not_allowed`
    /// otherwise). Returns the current key. The same under both rules.
    fn authorize_rotation(&self, key: &str, subject: &str) -> Result<String, TxError> {
        let current = self.current_key(subject).to_owned();
        let by_recovery = self
            .recovery
            .get(subject)
            .is_some_and(|r| r.recovery_key == key);
        if by_recovery || key == current {
            Ok(current)
        } else {
            Err(TxError::new(
                ErrorCode::Forbidden("identity.rotate_not_allowed"),
                format!("only {subject}'s registered recovery key or its current key rotates it"),
            ))
        }
    }

    /// Whether `new_key` is `subject` itself, or acts, acted or recovers
    /// for an identity: refused as a new key under both rules.
    fn acts_or_recovers(&self, subject: &str, new_key: &str) -> bool {
        new_key == subject
            || self.retired.contains_key(new_key)
            || self.acting.contains_key(new_key)
            || self.current.contains_key(new_key)
            || self.recovery.values().any(|r| r.recovery_key == new_key)
    }

    /// Makes `new_key` act for `subject` from leaf `index` on, retiring
    /// `current`, and records the rotation. The same under both rules.
    fn install(&mut self, subject: &str, current: String, new_key: &str, index: u64) {
        self.acting.remove(&current);
        self.retired.insert(current.clone(), subject.to_owned());
        self.acting.insert(new_key.to_owned(), subject.to_owned());
        self.current.insert(subject.to_owned(), new_key.to_owned());
        self.known.insert(new_key.to_owned());
        self.rotations
            .entry(subject.to_owned())
            .or_default()
            .push(Rotation {
                from: current,
                to: new_key.to_owned(),
                index,
            });
    }
}

/// Registers the types of this domain.
pub(crate) fn register(r: &mut Registry) {
    r.add::<IdentityRecovery>();
    r.add::<IdentityRotate>().or_legacy(|body| {
        let b: IdentityRotateV1 = crate::txs::parse_body(IDENTITY_ROTATE, body)?;
        check_did_key("subject", &b.subject)?;
        check_did_key("new_key", &b.new_key)
    });
}

impl TxBody for IdentityRecovery {
    const TYPE: &'static str = IDENTITY_RECOVERY;

    fn example() -> Self {
        IdentityRecovery {
            recovery_key: example_did(6),
            threshold: 2,
            guardians: vec![example_did(7), example_did(8), example_did(9)],
            split: "ef".repeat(32),
        }
    }

    fn check(&self) -> Result<(), String> {
        check_did_key("recovery_key", &self.recovery_key)?;
        let n = self.guardians.len();
        if self.threshold < 2 || usize::from(self.threshold) > n || n > 255 {
            return Err(format!(
                "identity.recovery body: need 2 <= threshold <= guardians <= 255, not {} of {n}",
                self.threshold
            ));
        }
        for guardian in &self.guardians {
            check_did("guardians[]", guardian)?;
        }
        check_hex32("split", &self.split)
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        state
            .identities
            .register_recovery(&cx.signer, cx.index, &self);
        Ok(Effect::None)
    }
}

impl TxBody for IdentityRotate {
    const TYPE: &'static str = IDENTITY_ROTATE;
    /// Signed by a recovery key, which acts for no identity.
    const SIGNED_AS: SignedAs = SignedAs::Key;

    fn example() -> Self {
        IdentityRotate::accepted_by(
            &example_did(4),
            &hygeia_identity::Keypair::from_seed(&[10; 32]),
        )
    }

    fn check(&self) -> Result<(), String> {
        check_did_key("subject", &self.subject)?;
        check_did_key("new_key", &self.new_key)?;
        let signature_len = self.proof.len() == 86
            && self
                .proof
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_');
        if !signature_len {
            return Err(
                "identity.rotate body: proof must be a 64-byte signature in unpadded base64url"
                    .into(),
            );
        }
        Ok(())
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        state.identities.rotate(cx.key, cx.index, &self)?;
        Ok(Effect::None)
    }
}

impl Identities {
    /// `identity.rotate` under the rules before genesis
    /// ([`crate::network::Rules::V1`]), for a migrated log's legacy prefix
    /// only: no proof from the new key, and a new key is refused only if
    /// it acts, acted or recovers for an identity.
    pub fn rotate_v1(
        &mut self,
        key: &str,
        index: u64,
        body: &IdentityRotateV1,
    ) -> Result<(), TxError> {
        let subject = body.subject.as_str();
        let current = self.authorize_rotation(key, subject)?;
        let new_key = body.new_key.as_str();
        let taken = self.acts_or_recovers(subject, new_key);
        if taken {
            return Err(TxError::new(
                ErrorCode::Conflict("identity.key_in_use"),
                format!("{new_key} already acts, acted or recovers for an identity"),
            ));
        }
        self.install(subject, current, new_key, index);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hygeia_identity::Keypair;

    struct Keys {
        patient: Keypair,
        recovery: Keypair,
        new: Keypair,
    }

    fn did(key: &Keypair) -> String {
        key.did().to_string()
    }

    fn registered() -> (Identities, Keys) {
        let keys = Keys {
            patient: Keypair::generate(),
            recovery: Keypair::generate(),
            new: Keypair::generate(),
        };
        let mut ids = Identities::default();
        ids.register_recovery(
            &did(&keys.patient),
            1,
            &IdentityRecovery {
                recovery_key: did(&keys.recovery),
                threshold: 2,
                guardians: vec!["did:key:g1".into(), "did:key:g2".into()],
                split: "00".repeat(32),
            },
        );
        (ids, keys)
    }

    #[test]
    fn recovery_key_moves_the_identity_and_retires_the_old_key() {
        let (mut ids, k) = registered();
        let patient = did(&k.patient);
        ids.rotate(
            &did(&k.recovery),
            2,
            &IdentityRotate::accepted_by(&patient, &k.new),
        )
        .unwrap();
        assert_eq!(ids.identity_of(&did(&k.new)).unwrap(), patient);
        assert_eq!(ids.current_key(&patient), did(&k.new));
        let err = ids.identity_of(&patient).unwrap_err();
        assert_eq!(err.code.as_str(), "identity.key_retired");
        assert_eq!(ids.rotations(&patient).len(), 1);
        assert!(ids.is_known(&did(&k.new)));
    }

    #[test]
    fn only_the_recovery_or_current_key_rotates() {
        let (mut ids, k) = registered();
        let patient = did(&k.patient);
        let stranger = Keypair::generate();
        let err = ids
            .rotate(
                &did(&stranger),
                2,
                &IdentityRotate::accepted_by(&patient, &k.new),
            )
            .unwrap_err();
        assert_eq!(err.code.as_str(), "identity.rotate_not_allowed");
        // The lost device's key is retired after a rotation: it signs
        // nothing, not even a rotation back.
        ids.rotate(
            &did(&k.recovery),
            2,
            &IdentityRotate::accepted_by(&patient, &k.new),
        )
        .unwrap();
        let thief = Keypair::generate();
        let err = ids
            .rotate(&patient, 3, &IdentityRotate::accepted_by(&patient, &thief))
            .unwrap_err();
        assert_eq!(err.code.as_str(), "identity.key_retired");
    }

    #[test]
    fn a_key_cannot_be_reused() {
        let (mut ids, k) = registered();
        let patient = did(&k.patient);
        ids.rotate(
            &did(&k.recovery),
            2,
            &IdentityRotate::accepted_by(&patient, &k.new),
        )
        .unwrap();
        let new = did(&k.new);
        for key in [&k.patient, &k.recovery] {
            let err = ids
                .rotate(&new, 3, &IdentityRotate::accepted_by(&patient, key))
                .unwrap_err();
            assert_eq!(err.code.as_str(), "identity.key_in_use");
        }
    }

    #[test]
    fn a_known_key_never_becomes_another_identitys_key() {
        let (mut ids, k) = registered();
        let clinician = Keypair::generate();
        ids.note_known(&format!("{}#{}", did(&clinician), "key-1"));
        assert!(ids.is_known(&did(&clinician)));
        // Even with the clinician's own acceptance.
        let err = ids
            .rotate(
                &did(&k.recovery),
                2,
                &IdentityRotate::accepted_by(&did(&k.patient), &clinician),
            )
            .unwrap_err();
        assert_eq!(err.code.as_str(), "identity.key_in_use");
        assert_eq!(ids.current_key(&did(&k.patient)), did(&k.patient));
        assert_eq!(ids.identity_of(&did(&clinician)).unwrap(), did(&clinician));
    }

    #[test]
    fn the_new_key_must_accept() {
        let (mut ids, k) = registered();
        let patient = did(&k.patient);
        let mut rotation = IdentityRotate::accepted_by(&patient, &k.new);
        // Someone else's signature, or the new key's for another subject.
        let other = IdentityRotate::accepted_by(&patient, &Keypair::generate());
        let elsewhere = IdentityRotate::accepted_by(&did(&Keypair::generate()), &k.new);
        for proof in [other.proof, elsewhere.proof, "A".repeat(86)] {
            rotation.proof = proof;
            let err = ids.rotate(&did(&k.recovery), 2, &rotation).unwrap_err();
            assert_eq!(err.code.as_str(), "identity.new_key_not_proven");
        }
        assert!(ids.rotations(&patient).is_empty());
        assert!(!ids.is_known(&did(&k.new)));
    }

    #[test]
    fn a_key_of_another_identity_is_no_subject() {
        let (mut ids, k) = registered();
        let patient = did(&k.patient);
        ids.rotate(
            &did(&k.recovery),
            2,
            &IdentityRotate::accepted_by(&patient, &k.new),
        )
        .unwrap();
        // The rotated-in key cannot split itself off as an identity of its
        // own, nor can the retired one.
        let new = did(&k.new);
        let err = ids
            .rotate(
                &new,
                3,
                &IdentityRotate::accepted_by(&new, &Keypair::generate()),
            )
            .unwrap_err();
        assert_eq!(err.code.as_str(), "identity.not_an_identity");
        let newer = Keypair::generate();
        ids.rotate(&new, 3, &IdentityRotate::accepted_by(&patient, &newer))
            .unwrap();
        let err = ids
            .rotate(
                &new,
                4,
                &IdentityRotate::accepted_by(&new, &Keypair::generate()),
            )
            .unwrap_err();
        assert_eq!(err.code.as_str(), "identity.key_retired");
        assert_eq!(ids.identity_of(&did(&newer)).unwrap(), patient);
        assert_eq!(ids.current_key(&patient), did(&newer));
    }

    /// The rules before genesis share the authorization and the key
    /// installation with today's, and differ only where they must: no
    /// proof from the new key, and a key merely named on the log may
    /// become one.
    #[test]
    fn the_old_rules_authorize_and_install_like_todays() {
        let (mut ids, k) = registered();
        let patient = did(&k.patient);
        let v1 = |new_key: &Keypair| IdentityRotateV1 {
            subject: patient.clone(),
            new_key: did(new_key),
        };
        let stranger = Keypair::generate();
        let err = ids.rotate_v1(&did(&stranger), 2, &v1(&k.new)).unwrap_err();
        assert_eq!(err.code.as_str(), "identity.rotate_not_allowed");
        let err = ids
            .rotate_v1(&did(&k.recovery), 2, &v1(&k.recovery))
            .unwrap_err();
        assert_eq!(err.code.as_str(), "identity.key_in_use");
        ids.note_known(&did(&k.new));
        ids.rotate_v1(&did(&k.recovery), 3, &v1(&k.new)).unwrap();
        assert_eq!(ids.current_key(&patient), did(&k.new));
        assert_eq!(ids.identity_of(&did(&k.new)).unwrap(), patient);
        let err = ids.identity_of(&patient).unwrap_err();
        assert_eq!(err.code.as_str(), "identity.key_retired");
        assert_eq!(ids.rotations(&patient)[0].index, 3);
        // The new key rotates on as the current key; the old one cannot.
        let next = Keypair::generate();
        let err = ids.rotate_v1(&patient, 4, &v1(&next)).unwrap_err();
        assert_eq!(err.code.as_str(), "identity.rotate_not_allowed");
        ids.rotate_v1(&did(&k.new), 4, &v1(&next)).unwrap();
        assert_eq!(ids.rotations(&patient).len(), 2);
    }
}
