//! Ed25519 key pairs and signatures.
//!
//! Verification is always strict (RFC 8032 canonical `S`, no small-order
//! keys), so one message and one key admit exactly one valid signature
//! encoding: a replayed transaction cannot be disguised by re-encoding its
//! signature.

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rand::rngs::OsRng;

use crate::did_key::Did;

/// Length of an Ed25519 signature in bytes.
pub const SIGNATURE_LEN: usize = 64;

/// A signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signature does not verify")]
pub struct SignatureError;

/// An Ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Signature(ed25519_dalek::Signature);

impl Signature {
    pub fn from_bytes(bytes: &[u8; SIGNATURE_LEN]) -> Self {
        Signature(ed25519_dalek::Signature::from_bytes(bytes))
    }

    /// Parses a signature from a slice, which must be exactly 64 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, SignatureError> {
        let array: &[u8; SIGNATURE_LEN] = bytes.try_into().map_err(|_| SignatureError)?;
        Ok(Self::from_bytes(array))
    }

    pub fn to_bytes(&self) -> [u8; SIGNATURE_LEN] {
        self.0.to_bytes()
    }
}

/// An Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Parses a 32-byte compressed Edwards point, refusing points that are
    /// not on the curve.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, SignatureError> {
        VerifyingKey::from_bytes(bytes)
            .map(PublicKey)
            .map_err(|_| SignatureError)
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    pub fn as_dalek(&self) -> &VerifyingKey {
        &self.0
    }

    /// Strict RFC 8032 verification.
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), SignatureError> {
        self.0
            .verify_strict(message, &signature.0)
            .map_err(|_| SignatureError)
    }

    pub fn did(&self) -> Did {
        Did::from_public_key(*self)
    }

    /// The X25519 public key of this Ed25519 key (the birational map of RFC
    /// 7748 §4.1, as the did:key method derives its key-agreement key), so a
    /// DID can receive data keys sealed with HPKE without a second key.
    pub fn to_x25519(&self) -> [u8; 32] {
        self.0.to_montgomery().to_bytes()
    }
}

/// An Ed25519 signing key with its public half.
///
/// The secret is zeroized on drop (ed25519-dalek's `zeroize` feature) and is
/// never printed by `Debug`.
pub struct Keypair(SigningKey);

impl Keypair {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Self {
        Keypair(SigningKey::generate(&mut OsRng))
    }

    /// A key from a 32-byte seed (RFC 8032 private key).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Keypair(SigningKey::from_bytes(seed))
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    pub fn did(&self) -> Did {
        self.public_key().did()
    }

    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.0.sign(message))
    }

    pub fn as_dalek(&self) -> &SigningKey {
        &self.0
    }

    /// The X25519 private key matching [`PublicKey::to_x25519`]: the
    /// clamping-ready scalar of the Ed25519 key (RFC 8032 §5.1.5).
    pub fn x25519_secret(&self) -> zeroize::Zeroizing<[u8; 32]> {
        zeroize::Zeroizing::new(self.0.to_scalar_bytes())
    }

    pub(crate) fn from_dalek(key: SigningKey) -> Self {
        Keypair(key)
    }
}

impl std::fmt::Debug for Keypair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keypair")
            .field("did", &self.did().to_string())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod x25519_tests {
    use super::*;

    #[test]
    fn x25519_secret_matches_the_public_key() {
        let key = Keypair::from_seed(&[7; 32]);
        let secret = x25519_dalek::StaticSecret::from(*key.x25519_secret());
        let public = x25519_dalek::PublicKey::from(&secret);
        assert_eq!(public.to_bytes(), key.public_key().to_x25519());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_round_trip() {
        let key = Keypair::generate();
        let sig = key.sign(b"hello");
        assert!(key.public_key().verify(b"hello", &sig).is_ok());
        assert!(key.public_key().verify(b"hellO", &sig).is_err());
    }

    #[test]
    fn a_signature_by_another_key_is_refused() {
        let a = Keypair::generate();
        let b = Keypair::generate();
        let sig = b.sign(b"m");
        assert!(a.public_key().verify(b"m", &sig).is_err());
    }

    #[test]
    fn rfc8032_test_1() {
        // RFC 8032 section 7.1, TEST 1 (empty message).
        let seed = hex32("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
        let key = Keypair::from_seed(&seed);
        assert_eq!(
            key.public_key().to_bytes(),
            hex32("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
        );
        let sig = key.sign(b"");
        let expected = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
        assert_eq!(to_hex(&sig.to_bytes()), expected);
    }

    fn hex32(s: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
            out[i] = u8::from_str_radix(std::str::from_utf8(chunk).unwrap(), 16).unwrap();
        }
        out
    }

    fn to_hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
