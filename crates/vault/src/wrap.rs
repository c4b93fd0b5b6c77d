//! Wrapping data keys for their holders with HPKE (RFC 9180).
//!
//! A record's [`DataKey`] is given to each holder by sealing it to the
//! holder's X25519 public key with HPKE in base mode, with the suite
//! DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / ChaCha20-Poly1305
//! (`kem_id` 0x0020, `kdf_id` 0x0001, `aead_id` 0x0003), as implemented by
//! the `hpke` crate (rust-hpke). Its output for this suite is checked in the
//! tests against the RFC's published test vectors.
//!
//! The HPKE `info` string is [`WRAP_INFO_DOMAIN`] followed by the record's
//! 32-byte [`BlobId`] and the recipient's 32-byte public key, so a wrapped key
//! only opens for the record and the holder it was made for: it cannot be
//! replayed onto another record or presented as someone else's grant.
//!
//! A wrapped key is `version (1 byte, = 1) | enc (32 bytes) | sealed data key
//! (32 bytes + 16-byte tag)`: 81 bytes.

use std::fmt;

use hpke::aead::{Aead, AeadCtxR, ChaCha20Poly1305};
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::rand_core::{CryptoRng, RngCore};
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use rand_core::{OsRng, TryRngCore};
use zeroize::Zeroizing;

use crate::blob::BlobId;
use crate::error::{Error, Result};
use crate::stream::{DataKey, DATA_KEY_LEN};

type Kem = X25519HkdfSha256;
type Kdf = HkdfSha256;
type WrapAead = ChaCha20Poly1305;

/// First part of the HPKE `info` string of every wrapped key.
pub const WRAP_INFO_DOMAIN: &[u8] = b"hygeia-vault/wrap-data-key/v1";
/// Length of an encoded [`WrappedKey`].
pub const WRAPPED_KEY_LEN: usize = 1 + ENC_LEN + SEALED_LEN;
/// Length of an X25519 key, public or private.
pub const X25519_KEY_LEN: usize = 32;

const WRAPPED_KEY_VERSION: u8 = 1;
const ENC_LEN: usize = 32;
const SEALED_LEN: usize = DATA_KEY_LEN + 16;

/// A holder's X25519 public key, to which data keys are wrapped.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecipientPublicKey([u8; X25519_KEY_LEN]);

impl RecipientPublicKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let bytes = bytes
            .try_into()
            .map_err(|_| Error::Format("X25519 public key"))?;
        Ok(RecipientPublicKey(bytes))
    }

    pub fn from_array(bytes: [u8; X25519_KEY_LEN]) -> Self {
        RecipientPublicKey(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; X25519_KEY_LEN] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(text: &str) -> Result<Self> {
        let mut bytes = [0u8; X25519_KEY_LEN];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| Error::Format("X25519 public key"))?;
        Ok(RecipientPublicKey(bytes))
    }

    fn to_hpke(self) -> Result<<Kem as hpke::Kem>::PublicKey> {
        <Kem as hpke::Kem>::PublicKey::from_bytes(&self.0).map_err(|_| Error::Wrap)
    }
}

impl fmt::Debug for RecipientPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecipientPublicKey({})", self.to_hex())
    }
}

/// A holder's X25519 key pair. The private half is wiped from memory when
/// dropped and never printed.
#[derive(Clone)]
pub struct RecipientKey {
    secret: <Kem as hpke::Kem>::PrivateKey,
    public: RecipientPublicKey,
}

impl RecipientKey {
    /// A fresh key pair from the operating system's random number generator
    /// (RFC 9180 `DeriveKeyPair` on 32 random bytes).
    pub fn generate() -> Result<Self> {
        let mut ikm = Zeroizing::new([0u8; 32]);
        crate::fill_random(&mut ikm[..])?;
        Self::derive(&ikm[..])
    }

    /// RFC 9180 `DeriveKeyPair(ikm)` for DHKEM(X25519, HKDF-SHA256): the same
    /// input keying material always gives the same key pair. `ikm` must hold
    /// at least 256 bits of entropy; shorter input is refused.
    pub fn derive(ikm: &[u8]) -> Result<Self> {
        if ikm.len() < 32 {
            return Err(Error::Format("key material (fewer than 32 bytes)"));
        }
        let (secret, public) = Kem::derive_keypair(ikm);
        Ok(Self::from_parts(secret, &public))
    }

    /// A key pair from its 32-byte private key.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let secret = <Kem as hpke::Kem>::PrivateKey::from_bytes(bytes)
            .map_err(|_| Error::Format("X25519 private key"))?;
        let public = Kem::sk_to_pk(&secret);
        Ok(Self::from_parts(secret, &public))
    }

    fn from_parts(
        secret: <Kem as hpke::Kem>::PrivateKey,
        public: &<Kem as hpke::Kem>::PublicKey,
    ) -> Self {
        let mut bytes = [0u8; X25519_KEY_LEN];
        bytes.copy_from_slice(&public.to_bytes());
        RecipientKey {
            secret,
            public: RecipientPublicKey(bytes),
        }
    }

    /// The 32-byte private key.
    pub fn to_bytes(&self) -> Zeroizing<[u8; X25519_KEY_LEN]> {
        let mut bytes = Zeroizing::new([0u8; X25519_KEY_LEN]);
        bytes.copy_from_slice(&self.secret.to_bytes());
        bytes
    }

    pub fn public_key(&self) -> &RecipientPublicKey {
        &self.public
    }
}

impl fmt::Debug for RecipientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecipientKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// A data key sealed to one holder for one record.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey {
    enc: [u8; ENC_LEN],
    sealed: [u8; SEALED_LEN],
}

impl WrappedKey {
    pub fn to_bytes(&self) -> [u8; WRAPPED_KEY_LEN] {
        let mut bytes = [0u8; WRAPPED_KEY_LEN];
        bytes[0] = WRAPPED_KEY_VERSION;
        bytes[1..1 + ENC_LEN].copy_from_slice(&self.enc);
        bytes[1 + ENC_LEN..].copy_from_slice(&self.sealed);
        bytes
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != WRAPPED_KEY_LEN {
            return Err(Error::Format("wrapped key"));
        }
        if bytes[0] != WRAPPED_KEY_VERSION {
            return Err(Error::UnsupportedVersion(bytes[0]));
        }
        let mut key = WrappedKey {
            enc: [0; ENC_LEN],
            sealed: [0; SEALED_LEN],
        };
        key.enc.copy_from_slice(&bytes[1..1 + ENC_LEN]);
        key.sealed.copy_from_slice(&bytes[1 + ENC_LEN..]);
        Ok(key)
    }
}

impl fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WrappedKey({})", hex::encode(self.to_bytes()))
    }
}

/// Seals `key` to `recipient` for `record`.
pub fn wrap(key: &DataKey, record: &BlobId, recipient: &RecipientPublicKey) -> Result<WrappedKey> {
    // The OS generator is only unwrapped here, inside HPKE's encapsulation,
    // whose interface takes an infallible generator.
    let mut rng = OsRng.unwrap_err();
    let (enc, sealed) = seal::<WrapAead, _>(
        &recipient.to_hpke()?,
        &info(record, recipient),
        b"",
        key.as_bytes(),
        &mut rng,
    )?;
    let mut wrapped = WrappedKey {
        enc,
        sealed: [0; SEALED_LEN],
    };
    if sealed.len() != SEALED_LEN {
        return Err(Error::Wrap);
    }
    wrapped.sealed.copy_from_slice(&sealed);
    Ok(wrapped)
}

/// Opens a wrapped key with the holder's private key. Fails with
/// [`Error::Wrap`] if it was made for another holder or record, or modified.
pub fn unwrap(wrapped: &WrappedKey, record: &BlobId, holder: &RecipientKey) -> Result<DataKey> {
    let plaintext = open::<WrapAead>(
        &holder.secret,
        &wrapped.enc,
        &info(record, &holder.public),
        b"",
        &wrapped.sealed,
    )?;
    let bytes: [u8; DATA_KEY_LEN] = plaintext[..].try_into().map_err(|_| Error::Wrap)?;
    Ok(DataKey::from_bytes(bytes))
}

fn info(record: &BlobId, recipient: &RecipientPublicKey) -> Vec<u8> {
    [WRAP_INFO_DOMAIN, record.as_bytes(), recipient.as_bytes()].concat()
}

/// HPKE base-mode single-shot seal with this module's KEM and KDF.
fn seal<A: Aead, R: CryptoRng + RngCore>(
    recipient: &<Kem as hpke::Kem>::PublicKey,
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    rng: &mut R,
) -> Result<([u8; ENC_LEN], Vec<u8>)> {
    let (enc, ciphertext) = hpke::single_shot_seal::<A, Kdf, Kem, R>(
        &OpModeS::Base,
        recipient,
        info,
        plaintext,
        aad,
        rng,
    )
    .map_err(|_| Error::Wrap)?;
    let mut enc_bytes = [0u8; ENC_LEN];
    enc_bytes.copy_from_slice(&enc.to_bytes());
    Ok((enc_bytes, ciphertext))
}

/// HPKE base-mode receiver context with this module's KEM and KDF.
fn receiver<A: Aead>(
    secret: &<Kem as hpke::Kem>::PrivateKey,
    enc: &[u8],
    info: &[u8],
) -> Result<AeadCtxR<A, Kdf, Kem>> {
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(enc).map_err(|_| Error::Wrap)?;
    hpke::setup_receiver::<A, Kdf, Kem>(&OpModeR::Base, secret, &enc, info).map_err(|_| Error::Wrap)
}

/// HPKE base-mode single-shot open.
fn open<A: Aead>(
    secret: &<Kem as hpke::Kem>::PrivateKey,
    enc: &[u8],
    info: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let plaintext = receiver::<A>(secret, enc, info)?
        .open(ciphertext, aad)
        .map_err(|_| Error::Wrap)?;
    Ok(Zeroizing::new(plaintext))
}

#[cfg(test)]
mod rfc9180;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_and_unwraps() {
        let holder = RecipientKey::generate().expect("rng");
        let key = DataKey::generate().expect("rng");
        let record = BlobId::of(b"ciphertext");
        let wrapped = wrap(&key, &record, holder.public_key()).expect("wrap");
        let bytes = wrapped.to_bytes();
        assert_eq!(bytes.len(), WRAPPED_KEY_LEN);
        let parsed = WrappedKey::from_bytes(&bytes).expect("parse");
        assert_eq!(unwrap(&parsed, &record, &holder).expect("unwrap"), key);
    }

    #[test]
    fn bound_to_record_and_holder() {
        let holder = RecipientKey::generate().expect("rng");
        let other = RecipientKey::generate().expect("rng");
        let key = DataKey::generate().expect("rng");
        let record = BlobId::of(b"one");
        let wrapped = wrap(&key, &record, holder.public_key()).expect("wrap");
        let wrong_record = unwrap(&wrapped, &BlobId::of(b"two"), &holder);
        assert!(matches!(wrong_record, Err(Error::Wrap)));
        assert!(matches!(
            unwrap(&wrapped, &record, &other),
            Err(Error::Wrap)
        ));
    }

    #[test]
    fn key_pairs_round_trip() {
        let key = RecipientKey::generate().expect("rng");
        let again = RecipientKey::from_bytes(&key.to_bytes()[..]).expect("parse");
        assert_eq!(again.public_key(), key.public_key());
        let public = RecipientPublicKey::from_hex(&key.public_key().to_hex()).expect("hex");
        assert_eq!(&public, key.public_key());
        assert!(RecipientKey::from_bytes(&[0; 31]).is_err());
        assert!(RecipientPublicKey::from_bytes(&[0; 33]).is_err());
        assert!(RecipientKey::derive(&[0; 31]).is_err());
        assert!(!format!("{key:?}").contains(&hex::encode(&key.to_bytes()[..])));
    }

    #[test]
    fn low_order_public_keys_are_refused() {
        // The all-zero point gives an all-zero shared secret, which HPKE's
        // DHKEM rejects.
        let key = DataKey::generate().expect("rng");
        let zero = RecipientPublicKey::from_bytes(&[0; 32]).expect("32 bytes");
        assert!(matches!(
            wrap(&key, &BlobId::of(b""), &zero),
            Err(Error::Wrap)
        ));
    }

    #[test]
    fn wrapped_key_encoding_is_checked() {
        let holder = RecipientKey::generate().expect("rng");
        let wrapped = wrap(
            &DataKey::generate().expect("rng"),
            &BlobId::of(b""),
            holder.public_key(),
        )
        .expect("wrap");
        let mut bytes = wrapped.to_bytes().to_vec();
        bytes[0] = 9;
        assert!(matches!(
            WrappedKey::from_bytes(&bytes),
            Err(Error::UnsupportedVersion(9))
        ));
        assert!(WrappedKey::from_bytes(&bytes[..80]).is_err());
    }
}
