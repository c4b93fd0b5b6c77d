//! A key hierarchy for a holder that reads many records of one group (the
//! node reading a patient's records): the group has one random 256-bit
//! [`GroupKey`], sealed to the holder with HPKE once ([`crate::wrap`]),
//! and each record's data key is wrapped under the group key with an AEAD
//! ([`GroupWrappedKey`]). Reading a group's records then costs one HPKE
//! (X25519) unwrap per group, not one per record: the group key is
//! unwrapped once and kept in memory.
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
use crate::stream::{DataKey, DATA_KEY_LEN};
use crate::wrap::RecipientPublicKey;

/// First part of the associated data of every group-wrapped key.
pub const GROUP_WRAP_DOMAIN: &[u8] = b"hygeia-vault/group-wrap-data-key/v1";
/// Domain of a group's id.
const GROUP_ID_DOMAIN: &[u8] = b"hygeia-vault/group-id/v1";
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wrap::RecipientKey;

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

    #[test]
    fn group_ids_are_domain_separated() {
        assert_ne!(GroupId::of(b"a"), GroupId::of(b"b"));
        assert_ne!(GroupId::of(b"a").slot(), BlobId::of(b"a"));
    }
}
