//! A key hierarchy for a holder of many records of one group: the group
//! has one random 256-bit [`GroupKey`], sealed to the holder with HPKE
//! once ([`crate::wrap`]), and each record's data key is wrapped under the
//! group key with an AEAD ([`GroupWrappedKey`]). The node reading a
//! patient's records then costs one HPKE (X25519) unwrap per group, not
//! one per record: the group key is unwrapped once and kept in memory.
//! The patient's own copies use the same hierarchy with the patient as
//! holder (a patient-copy generation, [`GroupId::patient_copy_generation`]):
//! whoever stores them keeps the generation's key in memory, so storing a
//! record costs no HPKE seal, and the patient opens any of their copies
//! with their private key alone ([`open_copy`]).
//!
//! The key wrap is XChaCha20-Poly1305 (the `chacha20poly1305` crate) with a
//! random 192-bit nonce; its associated data is [`GROUP_WRAP_DOMAIN`], the
//! record's [`BlobId`], the holder's public key and the group's id, so a
//! wrapped key opens only for the record, holder and group it was made for.
//! Encoded, it is `version (1 byte, = 2) | group id (32) | nonce (24) |
//! sealed data key (32 + 16-byte tag)`: 105 bytes.
//!
//! Erasure: a record's wrapped keys — these included — are destroyed with
//! it. The group key stays while it opens the group's other records, and
//! without the record's wrapped key it opens nothing of the erased record.
//! The group key itself is stored as an ordinary HPKE [`crate::WrappedKey`]
//! under the group's id ([`GroupId::slot`]) in the same key ring, so
//! [`crate::KeyRing::erase`] of that slot crypto-shreds it: its holder
//! (the node) does that once no record of the group is left, after which a
//! group-wrapped key copied out of the key ring earlier opens with nothing.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

use crate::blob::BlobId;
use crate::error::{Error, Result};
use crate::keyring::KeyRing;
use crate::stream::{DataKey, DATA_KEY_LEN};
use crate::wrap::{RecipientKey, RecipientPublicKey, WrappedKey};

/// First part of the associated data of every group-wrapped key.
pub const GROUP_WRAP_DOMAIN: &[u8] = b"hygeia-vault/group-wrap-data-key/v1";
/// Domain of a group's id.
const GROUP_ID_DOMAIN: &[u8] = b"hygeia-vault/group-id/v1";
/// Domain of the id of one generation of a patient-copy group
/// ([`GroupId::patient_copy_generation`]): apart from [`GROUP_ID_DOMAIN`],
/// so no generation's id is ever a node group's.
pub const PATIENT_COPY_GROUP_ID_DOMAIN: &[u8] = b"hygeia-vault/patient-copy-group-id/v1";
/// Random bytes in a patient-copy generation's id.
pub const PATIENT_COPY_GENERATION_LEN: usize = 16;
/// Length of an encoded [`GroupWrappedKey`].
pub const GROUP_WRAPPED_KEY_LEN: usize = 1 + 32 + NONCE_LEN + SEALED_LEN;
/// The version byte of a [`GroupWrappedKey`] (an HPKE `WrappedKey` has 1).
pub const GROUP_WRAPPED_KEY_VERSION: u8 = 2;

const NONCE_LEN: usize = 24;
const SEALED_LEN: usize = DATA_KEY_LEN + 16;

/// A group's key: a [`DataKey`] that wraps data keys rather than records.
pub type GroupKey = DataKey;

/// A group's id: SHA-256 of a domain and the group's name (for the node,
/// the patient's X25519 public key). Never a record's address (that is the
/// SHA-256 of a ciphertext).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct GroupId([u8; 32]);

impl GroupId {
    pub fn of(name: &[u8]) -> GroupId {
        GroupId(
            Sha256::new()
                .chain_update(GROUP_ID_DOMAIN)
                .chain_update(name)
                .finalize()
                .into(),
        )
    }

    /// A new generation of the group that wraps a holder's own copies of
    /// data keys (a patient's copies, whose group key is sealed to the
    /// patient, not to the node): SHA-256 of
    /// [`PATIENT_COPY_GROUP_ID_DOMAIN`], the holder's public key and
    /// [`PATIENT_COPY_GENERATION_LEN`] random bytes, so each generation has
    /// its own slot and its own group key.
    pub fn patient_copy_generation(holder: &RecipientPublicKey) -> Result<GroupId> {
        let mut generation = [0u8; PATIENT_COPY_GENERATION_LEN];
        crate::fill_random(&mut generation)?;
        Ok(GroupId(
            Sha256::new()
                .chain_update(PATIENT_COPY_GROUP_ID_DOMAIN)
                .chain_update(holder.as_bytes())
                .chain_update(generation)
                .finalize()
                .into(),
        ))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Where the group key is kept in a key ring: the slot of a "record"
    /// with this id, so it is sealed to holders like any data key.
    pub fn slot(&self) -> BlobId {
        BlobId::from_bytes(self.0)
    }
}

/// A data key wrapped under a group key for one holder and one record.
#[derive(Clone, PartialEq, Eq)]
pub struct GroupWrappedKey {
    group: GroupId,
    nonce: [u8; NONCE_LEN],
    sealed: [u8; SEALED_LEN],
}

impl GroupWrappedKey {
    /// The group whose key opens it (authenticated: changing it makes
    /// [`unwrap`] fail).
    pub fn group(&self) -> &GroupId {
        &self.group
    }

    pub fn to_bytes(&self) -> [u8; GROUP_WRAPPED_KEY_LEN] {
        let mut bytes = [0u8; GROUP_WRAPPED_KEY_LEN];
        bytes[0] = GROUP_WRAPPED_KEY_VERSION;
        bytes[1..33].copy_from_slice(&self.group.0);
        bytes[33..33 + NONCE_LEN].copy_from_slice(&self.nonce);
        bytes[33 + NONCE_LEN..].copy_from_slice(&self.sealed);
        bytes
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != GROUP_WRAPPED_KEY_LEN {
            return Err(Error::Format("group-wrapped key"));
        }
        if bytes[0] != GROUP_WRAPPED_KEY_VERSION {
            return Err(Error::UnsupportedVersion(bytes[0]));
        }
        let mut key = GroupWrappedKey {
            group: GroupId([0; 32]),
            nonce: [0; NONCE_LEN],
            sealed: [0; SEALED_LEN],
        };
        key.group.0.copy_from_slice(&bytes[1..33]);
        key.nonce.copy_from_slice(&bytes[33..33 + NONCE_LEN]);
        key.sealed.copy_from_slice(&bytes[33 + NONCE_LEN..]);
        Ok(key)
    }
}

impl std::fmt::Debug for GroupWrappedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GroupWrappedKey({})", hex::encode(self.to_bytes()))
    }
}

fn aad(record: &BlobId, holder: &RecipientPublicKey, group: &GroupId) -> Vec<u8> {
    [
        GROUP_WRAP_DOMAIN,
        record.as_bytes(),
        holder.as_bytes(),
        group.as_bytes(),
    ]
    .concat()
}

/// Wraps `key` (the data key of `record`) for `holder` under `group`'s key.
pub fn wrap(
    key: &DataKey,
    record: &BlobId,
    holder: &RecipientPublicKey,
    group: &GroupId,
    group_key: &GroupKey,
) -> Result<GroupWrappedKey> {
    let mut nonce = [0u8; NONCE_LEN];
    crate::fill_random(&mut nonce)?;
    let cipher = XChaCha20Poly1305::new(group_key.as_bytes().into());
    let sealed = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: key.as_bytes(),
                aad: &aad(record, holder, group),
            },
        )
        .map_err(|_| Error::Wrap)?;
    let sealed: [u8; SEALED_LEN] = sealed.try_into().map_err(|_| Error::Wrap)?;
    Ok(GroupWrappedKey {
        group: *group,
        nonce,
        sealed,
    })
}

/// Opens a group-wrapped key. Fails with [`Error::Wrap`] for another
/// record, holder, group or group key, or if anything was modified.
pub fn unwrap(
    wrapped: &GroupWrappedKey,
    record: &BlobId,
    holder: &RecipientPublicKey,
    group_key: &GroupKey,
) -> Result<DataKey> {
    let cipher = XChaCha20Poly1305::new(group_key.as_bytes().into());
    let plain = zeroize::Zeroizing::new(
        cipher
            .decrypt(
                XNonce::from_slice(&wrapped.nonce),
                Payload {
                    msg: &wrapped.sealed,
                    aad: &aad(record, holder, &wrapped.group),
                },
            )
            .map_err(|_| Error::Wrap)?,
    );
    let bytes: [u8; DATA_KEY_LEN] = plain[..].try_into().map_err(|_| Error::Wrap)?;
    Ok(DataKey::from_bytes(bytes))
}

/// Seals a new group key to `holder` (HPKE, one X25519 operation) for
/// the slot of `group`: store it with [`KeyRing::put`] at
/// [`GroupId::slot`] under `holder`.
pub fn seal_group_key(
    group: &GroupId,
    group_key: &GroupKey,
    holder: &RecipientPublicKey,
) -> Result<crate::WrappedKey> {
    crate::wrap::wrap(group_key, &group.slot(), holder)
}

/// The data key of `record` for `holder`, with nothing but the holder's
/// own private key and the key ring: the holder's copy of the data key is
/// either sealed to them with HPKE (version 1: a patient's copy written
/// before patient-copy groups, or any holder's copy made with
/// [`crate::wrap`]) or wrapped under a group key (version 2), which is then
/// read from the slot of its group, sealed to the same holder, and opened
/// first. Fails with [`Error::NoKey`] when either is missing (an erased
/// record), and [`Error::Wrap`] when a key does not open with the
/// holder's.
pub fn open_copy<K: KeyRing + ?Sized>(
    ring: &K,
    record: &BlobId,
    holder: &RecipientKey,
) -> Result<DataKey> {
    let bytes = ring
        .get_bytes(record, holder.public_key())?
        .ok_or(Error::NoKey)?;
    if bytes.first() != Some(&GROUP_WRAPPED_KEY_VERSION) {
        return crate::wrap::unwrap(&WrappedKey::from_bytes(&bytes)?, record, holder);
    }
    let wrapped = GroupWrappedKey::from_bytes(&bytes)?;
    let slot = wrapped.group().slot();
    let sealed = ring.get(&slot, holder.public_key())?.ok_or(Error::NoKey)?;
    let group_key = crate::wrap::unwrap(&sealed, &slot, holder)?;
    unwrap(&wrapped, record, holder.public_key(), &group_key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_and_opens_only_for_its_record_holder_group_and_key() {
        let key = DataKey::generate().expect("rng");
        let group_key = DataKey::generate().expect("rng");
        let record = BlobId::of(b"record");
        let holder = *RecipientKey::generate().expect("rng").public_key();
        let group = GroupId::of(b"patient");
        let wrapped = wrap(&key, &record, &holder, &group, &group_key).expect("wrap");
        let bytes = wrapped.to_bytes();
        assert_eq!(bytes.len(), GROUP_WRAPPED_KEY_LEN);
        let parsed = GroupWrappedKey::from_bytes(&bytes).expect("parse");
        assert_eq!(parsed, wrapped);
        assert_eq!(parsed.group(), &group);
        assert_eq!(
            unwrap(&parsed, &record, &holder, &group_key).expect("open"),
            key
        );

        let other_record = BlobId::of(b"other");
        let other_holder = *RecipientKey::generate().expect("rng").public_key();
        let other_key = DataKey::generate().expect("rng");
        assert!(matches!(
            unwrap(&parsed, &other_record, &holder, &group_key),
            Err(Error::Wrap)
        ));
        assert!(matches!(
            unwrap(&parsed, &record, &other_holder, &group_key),
            Err(Error::Wrap)
        ));
        assert!(matches!(
            unwrap(&parsed, &record, &holder, &other_key),
            Err(Error::Wrap)
        ));
        // Every bit of the encoding is authenticated (the version byte is
        // refused before that).
        for bit in 8..GROUP_WRAPPED_KEY_LEN * 8 {
            let mut tampered = bytes;
            tampered[bit / 8] ^= 1 << (bit % 8);
            let result = GroupWrappedKey::from_bytes(&tampered)
                .and_then(|w| unwrap(&w, &record, &holder, &group_key));
            assert!(matches!(result, Err(Error::Wrap)), "bit {bit}: {result:?}");
        }
        assert!(matches!(
            GroupWrappedKey::from_bytes(&bytes[1..]),
            Err(Error::Format(_))
        ));
        let mut v1 = bytes;
        v1[0] = 1;
        assert!(matches!(
            GroupWrappedKey::from_bytes(&v1),
            Err(Error::UnsupportedVersion(1))
        ));
    }

    /// A ring holding, for `patient`, an old-format record (HPKE) and a
    /// record of a patient-copy generation, the generation's key sealed to
    /// the patient in its slot.
    fn ring_with_both_formats(
        dir: &std::path::Path,
        patient: &RecipientKey,
    ) -> (
        crate::SlotKeyRing,
        [(BlobId, DataKey); 2],
        GroupId,
        GroupKey,
    ) {
        let ring = crate::SlotKeyRing::open(dir).expect("ring");
        let holder = patient.public_key();
        let (old, old_key) = (BlobId::of(b"old"), DataKey::generate().expect("rng"));
        ring.put(
            &old,
            holder,
            &crate::wrap(&old_key, &old, holder).expect("seal"),
        )
        .expect("put");
        let group = GroupId::patient_copy_generation(holder).expect("rng");
        let group_key = GroupKey::generate().expect("rng");
        ring.put(
            &group.slot(),
            holder,
            &seal_group_key(&group, &group_key, holder).expect("seal"),
        )
        .expect("put");
        let (new, new_key) = (BlobId::of(b"new"), DataKey::generate().expect("rng"));
        let copy = wrap(&new_key, &new, holder, &group, &group_key).expect("wrap");
        ring.put_bytes(&new, holder, &copy.to_bytes()).expect("put");
        (ring, [(old, old_key), (new, new_key)], group, group_key)
    }

    #[test]
    fn the_holder_opens_either_format_with_nothing_but_their_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let patient = RecipientKey::generate().expect("rng");
        let (ring, records, _, _) = ring_with_both_formats(dir.path(), &patient);
        for (record, key) in &records {
            assert_eq!(&open_copy(&ring, record, &patient).expect("open"), key);
        }
        // Someone else has no copy of theirs; and the patient's copies,
        // group key included, taken as theirs open with nothing.
        let other = RecipientKey::generate().expect("rng");
        for (record, _) in &records {
            assert!(matches!(
                open_copy(&ring, record, &other),
                Err(Error::NoKey)
            ));
        }
        let names = ring.names();
        for (record, holder) in names {
            let bytes = ring
                .get_bytes(&record, &holder)
                .expect("get")
                .expect("some");
            ring.put_bytes(&record, other.public_key(), &bytes)
                .expect("put");
        }
        for (record, _) in &records {
            assert!(matches!(open_copy(&ring, record, &other), Err(Error::Wrap)));
        }
        // A copy whose generation's key is gone opens with nothing.
        let new = records[1].0;
        let group = *GroupWrappedKey::from_bytes(
            &ring
                .get_bytes(&new, patient.public_key())
                .expect("get")
                .expect("some"),
        )
        .expect("parse")
        .group();
        ring.erase(&group.slot()).expect("erase");
        assert!(matches!(
            open_copy(&ring, &new, &patient),
            Err(Error::NoKey)
        ));
        // An erased record opens with nothing, in either format.
        let old = records[0].0;
        ring.erase(&old).expect("erase");
        assert!(matches!(
            open_copy(&ring, &old, &patient),
            Err(Error::NoKey)
        ));
    }

    #[test]
    fn a_generations_copy_opens_only_with_its_own_generations_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let patient = RecipientKey::generate().expect("rng");
        let holder = patient.public_key();
        let (ring, records, first, first_key) = ring_with_both_formats(dir.path(), &patient);
        let (record, _) = &records[1];
        let second = GroupId::patient_copy_generation(holder).expect("rng");
        assert_ne!(second, first);
        let second_key = GroupKey::generate().expect("rng");
        ring.put(
            &second.slot(),
            holder,
            &seal_group_key(&second, &second_key, holder).expect("seal"),
        )
        .expect("put");
        let copy = GroupWrappedKey::from_bytes(
            &ring.get_bytes(record, holder).expect("get").expect("some"),
        )
        .expect("parse");
        assert_eq!(copy.group(), &first);
        assert!(unwrap(&copy, record, holder, &first_key).is_ok());
        assert!(matches!(
            unwrap(&copy, record, holder, &second_key),
            Err(Error::Wrap)
        ));
        // Relabelled as the second generation's (whose key the ring holds
        // for the patient), it opens with neither key.
        let mut relabelled = copy.to_bytes();
        relabelled[1..33].copy_from_slice(second.as_bytes());
        let relabelled = GroupWrappedKey::from_bytes(&relabelled).expect("parse");
        for key in [&first_key, &second_key] {
            assert!(matches!(
                unwrap(&relabelled, record, holder, key),
                Err(Error::Wrap)
            ));
        }
        // A generation's id is neither a node group's nor another
        // generation's of the same patient.
        assert_ne!(first, GroupId::of(holder.as_bytes()));
    }

    #[test]
    fn group_ids_are_domain_separated() {
        assert_ne!(GroupId::of(b"a"), GroupId::of(b"b"));
        assert_ne!(GroupId::of(b"a").slot(), BlobId::of(b"a"));
    }
}
