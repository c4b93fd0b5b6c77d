//! Salted commitments to records, the only trace of a record on the ledger.
//!
//! `commitment = SHA-256(COMMITMENT_DOMAIN || salt || ciphertext hash)`, with a
//! 32-byte random salt and the record's 32-byte [`BlobId`]; every part has a
//! fixed length, so the encoding is unambiguous. Written as 64 hex digits.
//!
//! # What it reveals
//!
//! Nothing, without the salt. The salt has 256 bits of entropy, so nobody
//! can test a guess ("is this the commitment to blob X?") without it, and
//! two commitments to the same record with different salts look unrelated.
//! Even with the salt, the commitment only names a ciphertext, which is
//! encrypted under a random per-record key. Whoever holds the salt and the
//! ciphertext hash can later prove which record the ledger entry meant
//! ([`Commitment::verifies`]); after the record is erased, dropping the salt
//! as well leaves an entry that still verifies as part of the ledger but no
//! longer points at anything.
//!
//! The salt is secret-ish metadata: keep it with the record's off-ledger
//! data, never on the ledger.

use std::fmt;

use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::blob::BlobId;
use crate::error::{Error, Result};

/// Domain separation prefix of every commitment.
pub const COMMITMENT_DOMAIN: &[u8] = b"hygeia-vault/record-commitment/v1";
/// Length of a salt in bytes.
pub const SALT_LEN: usize = 32;

/// A commitment's random salt.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Salt([u8; SALT_LEN]);

impl Salt {
    /// A fresh salt from the operating system's random number generator.
    pub fn generate() -> Result<Self> {
        let mut salt = Salt([0; SALT_LEN]);
        crate::fill_random(&mut salt.0)?;
        Ok(salt)
    }

    pub fn from_bytes(bytes: [u8; SALT_LEN]) -> Self {
        Salt(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; SALT_LEN] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(text: &str) -> Result<Self> {
        let mut bytes = [0u8; SALT_LEN];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| Error::Format("salt"))?;
        Ok(Salt(bytes))
    }
}

impl fmt::Debug for Salt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Salt(..)")
    }
}

/// A salted commitment to a record's ciphertext hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Commitment([u8; 32]);

impl Commitment {
    /// Commits to `record` with a fresh salt; returns both.
    pub fn commit(record: &BlobId) -> Result<(Commitment, Salt)> {
        let salt = Salt::generate()?;
        Ok((Commitment::with_salt(&salt, record), salt))
    }

    /// The commitment to `record` under `salt`.
    pub fn with_salt(salt: &Salt, record: &BlobId) -> Commitment {
        let mut hasher = Sha256::new();
        hasher.update(COMMITMENT_DOMAIN);
        hasher.update(salt.as_bytes());
        hasher.update(record.as_bytes());
        Commitment(hasher.finalize().into())
    }

    /// Whether this commits to `record` under `salt`.
    pub fn verifies(&self, salt: &Salt, record: &BlobId) -> bool {
        Commitment::with_salt(salt, record) == *self
    }
}

crate::digest::hex_digest!(Commitment, "commitment");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_sha256_of_domain_salt_and_hash() {
        let salt = Salt::from_bytes([0x11; 32]);
        let record = BlobId::from_bytes([0x22; 32]);
        let expected = Sha256::digest([COMMITMENT_DOMAIN, &[0x11; 32], &[0x22; 32]].concat());
        let commitment = Commitment::with_salt(&salt, &record);
        assert_eq!(commitment.as_bytes()[..], expected[..]);
        assert_eq!(commitment.to_hex().len(), 64);
        assert_eq!(
            commitment.to_string().parse::<Commitment>().expect("parse"),
            commitment
        );
    }

    #[test]
    fn verifies_only_with_its_salt_and_record() {
        let record = BlobId::of(b"ciphertext");
        let (commitment, salt) = Commitment::commit(&record).expect("rng");
        assert!(commitment.verifies(&salt, &record));
        assert!(!commitment.verifies(&salt, &BlobId::of(b"other")));
        assert!(!commitment.verifies(&Salt::generate().expect("rng"), &record));
        let again = Salt::from_hex(&salt.to_hex()).expect("hex");
        assert!(commitment.verifies(&again, &record));
    }

    #[test]
    fn same_record_different_salts_look_unrelated() {
        let record = BlobId::of(b"ciphertext");
        let (a, _) = Commitment::commit(&record).expect("rng");
        let (b, _) = Commitment::commit(&record).expect("rng");
        assert_ne!(a, b);
        assert_eq!(format!("{:?}", Salt::from_bytes([1; 32])), "Salt(..)");
    }
}
