//! k-of-n recovery of a patient's identity.
//!
//! The patient's device draws a [`RecoverySecret`], registers the did:key of
//! its [`recovery_keypair`](RecoverySecret::recovery_keypair) on the ledger,
//! and [`split`]s the secret among `n` guardians with Pedersen verifiable
//! secret sharing (through `vsss-rs`, over P-256). Each guardian keeps a
//! [`GuardianShare`] and the public [`ShareVerifier`], and can check their
//! share alone. Any `k` valid shares [`recover`] the secret, hence the
//! recovery key; any `k - 1` shares, together with the verifier, are
//! consistent with every possible secret, so they reveal nothing about it.
//! See `docs/recovery.md`.
//!
//! ```
//! use hygeia_identity::{recover, split, GuardianShare, RecoverySecret, ShareVerifier};
//!
//! let secret = RecoverySecret::generate();
//! let recovery_did = secret.recovery_keypair().did();
//! let (shares, verifier) = split(&secret, 2, 3)?;
//! drop(secret);
//!
//! // Guardians keep text files and check them on their own.
//! let verifier = ShareVerifier::from_json(&verifier.to_json())?;
//! let files: Vec<String> = shares.iter().map(|s| s.to_json().to_string()).collect();
//! let third = GuardianShare::from_json(&files[2])?;
//! third.verify(&verifier)?;
//!
//! // Any two recover the recovery key.
//! let first = GuardianShare::from_json(&files[0])?;
//! let recovered = recover(&[third, first], &verifier)?;
//! assert_eq!(recovered.recovery_keypair().did(), recovery_did);
//! # Ok::<(), hygeia_identity::RecoveryError>(())
//! ```

mod dealer;
mod encoding;
mod error;
mod group;
mod secret;
mod share;
mod verifier;

pub use error::RecoveryError;
pub use secret::RecoverySecret;
pub use share::GuardianShare;
pub use verifier::{ShareVerifier, SplitId};

use p256::ProjectivePoint;
use vsss_rs::ReadableShareSet;
use zeroize::Zeroizing;

/// The smallest threshold: with one share there would be nothing to share.
pub const MIN_THRESHOLD: usize = 2;
/// The most guardians a secret can be split among (indices are one byte).
pub const MAX_GUARDIANS: usize = 255;

/// Splits `secret` among `guardians` guardians (indices 1 to `guardians`)
/// so that any `threshold` of their shares recover it and fewer reveal
/// nothing. Needs `2 <= threshold <= guardians <= 255`.
///
/// Returns the shares, in index order, for the patient's device to hand
/// out one per guardian, and the verifier to give to all of them.
pub fn split(
    secret: &RecoverySecret,
    threshold: usize,
    guardians: usize,
) -> Result<(Vec<GuardianShare>, ShareVerifier), RecoveryError> {
    split_with_blinder_generator(secret, threshold, guardians, group::blinder_generator())
}

/// [`split`] with another second generator `h`; tests use one whose
/// discrete logarithm they know.
pub(crate) fn split_with_blinder_generator(
    secret: &RecoverySecret,
    threshold: usize,
    guardians: usize,
    h: ProjectivePoint,
) -> Result<(Vec<GuardianShare>, ShareVerifier), RecoveryError> {
    let invalid = || RecoveryError::ThresholdInvalid {
        threshold,
        guardians,
    };
    if threshold < MIN_THRESHOLD || threshold > guardians {
        return Err(invalid());
    }
    let k = u8::try_from(threshold).map_err(|_| invalid())?;
    let n = u8::try_from(guardians).map_err(|_| invalid())?;
    let (dealt, commitments) = dealer::deal(secret.scalar(), k, n, h).ok_or_else(invalid)?;
    let verifier = ShareVerifier::with_blinder_generator(k, n, h, &commitments);
    let shares = dealt
        .iter()
        .map(|d| GuardianShare::new(verifier.id(), d.index, d.value, d.blinder))
        .collect();
    Ok((shares, verifier))
}

/// Recovers the secret from guardians' shares.
///
/// Refuses, in this order: a share of another split
/// (`recovery-wrong-split`), two shares of one guardian
/// (`recovery-duplicate-share`), a share that does not verify
/// (`recovery-share-invalid`, naming the guardian), and fewer shares than
/// the threshold (`recovery-not-enough-shares`, saying how many more).
/// Every share given must be valid: a bad one is reported, not skipped, so
/// that a guardian whose share was damaged or forged is found out.
pub fn recover(
    shares: &[GuardianShare],
    verifier: &ShareVerifier,
) -> Result<RecoverySecret, RecoveryError> {
    for share in shares {
        if share.split_id() != verifier.id() {
            return Err(RecoveryError::WrongSplit {
                index: share.index(),
                share_split: share.split_id(),
                expected: verifier.id(),
            });
        }
    }
    let mut seen = [false; MAX_GUARDIANS + 1];
    for share in shares {
        let slot = &mut seen[usize::from(share.index())];
        if *slot {
            return Err(RecoveryError::DuplicateShare {
                index: share.index(),
            });
        }
        *slot = true;
    }
    for share in shares {
        share.verify(verifier)?;
    }
    let threshold = verifier.threshold();
    if shares.len() < threshold {
        return Err(RecoveryError::NotEnoughShares {
            given: shares.len(),
            threshold,
            missing: threshold - shares.len(),
        });
    }
    // All shares verified, so under the commitments' binding they lie on
    // one polynomial of degree k - 1: any k of them determine it.
    let points: Zeroizing<Vec<_>> = Zeroizing::new(
        shares[..threshold]
            .iter()
            .map(|s| *s.vsss_shares().0)
            .collect(),
    );
    // `combine` refuses only duplicate or zero indices, both excluded above.
    let secret = Zeroizing::new(points.combine().map_err(|_| RecoveryError::ShareInvalid {
        index: shares[0].index(),
        reason: "the shares cannot be interpolated",
    })?);
    Ok(RecoverySecret::from_scalar(secret.0))
}

#[cfg(test)]
mod tests;
