//! The secret that guardians hold in shares, and the recovery key derived
//! from it.

use p256::elliptic_curve::subtle::ConstantTimeEq;
use p256::elliptic_curve::Field;
use p256::Scalar;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use super::group::{os_rng, scalar_from_bytes, scalar_to_bytes, SCALAR_LEN};
use super::RecoveryError;
use crate::keys::Keypair;

/// Domain separation for the recovery key: the same secret must never
/// serve as key material for anything else.
const RECOVERY_KEY_DOMAIN: &[u8] = b"hygeia-recovery-key-v1";

/// A uniformly random P-256 scalar, split among guardians and recovered
/// from enough of their shares. Its only use is
/// [`recovery_keypair`](RecoverySecret::recovery_keypair).
///
/// Wiped from memory on drop; `Debug` never prints it; comparison is in
/// constant time.
pub struct RecoverySecret(Scalar);

impl RecoverySecret {
    /// A fresh secret from the operating system's random source.
    pub fn generate() -> Self {
        RecoverySecret(Scalar::random(&mut os_rng()))
    }

    /// The Ed25519 recovery key: its seed is
    /// `SHA-256("hygeia-recovery-key-v1" || secret)`, the secret being its
    /// 32-byte big-endian encoding. The patient registers this key's
    /// did:key on the ledger; guardians never see it unless enough of them
    /// pool their shares.
    pub fn recovery_keypair(&self) -> Keypair {
        let bytes = self.to_bytes();
        let mut hasher = Sha256::new();
        hasher.update(RECOVERY_KEY_DOMAIN);
        hasher.update(bytes.as_slice());
        let mut seed = Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(&hasher.finalize());
        Keypair::from_seed(&seed)
    }

    /// The canonical 32-byte big-endian encoding of the secret.
    pub fn to_bytes(&self) -> Zeroizing<[u8; SCALAR_LEN]> {
        Zeroizing::new(scalar_to_bytes(&self.0))
    }

    /// Reads a canonical encoding (a value below the P-256 group order).
    pub fn from_bytes(bytes: &[u8; SCALAR_LEN]) -> Result<Self, RecoveryError> {
        scalar_from_bytes(bytes).map(RecoverySecret).ok_or_else(|| {
            RecoveryError::malformed(
                "recovery secret",
                "not a canonical P-256 scalar (32 big-endian bytes below the group order)",
            )
        })
    }

    pub(crate) fn from_scalar(scalar: Scalar) -> Self {
        RecoverySecret(scalar)
    }

    pub(crate) fn scalar(&self) -> &Scalar {
        &self.0
    }
}

impl Drop for RecoverySecret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl PartialEq for RecoverySecret {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for RecoverySecret {}

impl std::fmt::Debug for RecoverySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecoverySecret").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recovery_key_is_sha256_of_domain_and_secret() {
        let secret = RecoverySecret::from_bytes(&[0x11; 32]).unwrap();
        let mut expected = Sha256::new();
        expected.update(b"hygeia-recovery-key-v1");
        expected.update([0x11; 32]);
        let seed: [u8; 32] = expected.finalize().into();
        assert_eq!(
            secret.recovery_keypair().did(),
            Keypair::from_seed(&seed).did()
        );
        // Not the secret used directly as a seed.
        assert_ne!(
            secret.recovery_keypair().did(),
            Keypair::from_seed(&[0x11; 32]).did()
        );
    }

    #[test]
    fn secrets_are_fresh_and_round_trip() {
        let a = RecoverySecret::generate();
        let b = RecoverySecret::generate();
        assert_ne!(a, b);
        assert_ne!(a.recovery_keypair().did(), b.recovery_keypair().did());
        let again = RecoverySecret::from_bytes(&a.to_bytes()).unwrap();
        assert_eq!(again, a);
        assert_eq!(again.recovery_keypair().did(), a.recovery_keypair().did());
    }

    #[test]
    fn a_non_canonical_secret_is_malformed() {
        let err = RecoverySecret::from_bytes(&[0xff; 32]).unwrap_err();
        assert_eq!(err.code(), "recovery-malformed");
    }

    #[test]
    fn debug_does_not_print_the_secret() {
        let secret = RecoverySecret::from_bytes(&[0x22; 32]).unwrap();
        let shown = format!("{secret:?}");
        assert!(!shown.contains("22"), "{shown}");
    }
}
