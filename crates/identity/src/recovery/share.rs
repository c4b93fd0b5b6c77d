//! One guardian's share: their index, the split it belongs to, and their
//! points on the secret and blinding polynomials.

use p256::elliptic_curve::subtle::ConstantTimeEq;
use p256::Scalar;
use serde::{Deserialize, Serialize};
use vsss_rs::{IdentifierPrimeField, Share as _};
use zeroize::{Zeroize, Zeroizing};

use super::encoding::{self, Format};
use super::group::{index_scalar, scalar_from_bytes, scalar_to_bytes, VsssShare, SCALAR_LEN};
use super::{RecoveryError, ShareVerifier, SplitId};

const FORMAT: Format = Format {
    name: "hygeia-recovery-share",
    what: "guardian share",
    max_len: 1024,
};

/// What guardian `index` keeps: `a(index)` and `b(index)`, the values of
/// the secret polynomial `a` (with `a(0)` the secret) and of the blinding
/// polynomial `b` at their index, and the id of the split.
///
/// Secret on its own only in the sense that `k` of them give the secret:
/// fewer than `k` reveal nothing about it. Wiped on drop; `Debug` prints
/// only the index and split.
#[derive(Clone)]
pub struct GuardianShare {
    split: SplitId,
    index: u8,
    value: Scalar,
    blinder: Scalar,
}

impl GuardianShare {
    pub(crate) fn new(split: SplitId, index: u8, value: Scalar, blinder: Scalar) -> Self {
        GuardianShare {
            split,
            index,
            value,
            blinder,
        }
    }

    /// The guardian's index, 1 to `n`.
    pub fn index(&self) -> u8 {
        self.index
    }

    /// The split this share belongs to.
    pub fn split_id(&self) -> SplitId {
        self.split
    }

    /// Checks that this share belongs to the verifier's split and lies on
    /// its committed polynomials. Needs no other share and reveals nothing
    /// about the secret.
    pub fn verify(&self, verifier: &ShareVerifier) -> Result<(), RecoveryError> {
        if self.split != verifier.id() {
            return Err(RecoveryError::WrongSplit {
                index: self.index,
                share_split: self.split,
                expected: verifier.id(),
            });
        }
        if usize::from(self.index) > verifier.guardians() {
            return Err(RecoveryError::ShareInvalid {
                index: self.index,
                reason: "the split has fewer guardians than this index",
            });
        }
        let (value, blinder) = self.vsss_shares();
        if !verifier.accepts(&value, &blinder) {
            return Err(RecoveryError::ShareInvalid {
                index: self.index,
                reason: "it does not match the split's commitments",
            });
        }
        Ok(())
    }

    /// The two evaluations in `vsss-rs`'s form, wiped on drop.
    pub(crate) fn vsss_shares(&self) -> (Zeroizing<VsssShare>, Zeroizing<VsssShare>) {
        let at = |y: Scalar| {
            Zeroizing::new(VsssShare::with_identifier_and_value(
                index_scalar(self.index),
                IdentifierPrimeField(y),
            ))
        };
        (at(self.value), at(self.blinder))
    }

    #[cfg(test)]
    pub(crate) fn values(&self) -> (Scalar, Scalar) {
        (self.value, self.blinder)
    }

    /// The versioned JSON text of this share, for the guardian's file.
    pub fn to_json(&self) -> Zeroizing<String> {
        let value = Zeroizing::new(encoding::encode(&scalar_to_bytes(&self.value)));
        let blinder = Zeroizing::new(encoding::encode(&scalar_to_bytes(&self.blinder)));
        encoding::to_text(&ShareWireOut {
            format: FORMAT.name,
            version: encoding::VERSION,
            split: &self.split.to_string(),
            index: self.index,
            value: &value,
            blinder: &blinder,
        })
    }

    /// Parses the text of [`to_json`](Self::to_json), strictly: unknown or
    /// duplicate members, an index outside 1 to 255 and values that are
    /// not canonical scalars are refused. Whether the share fits a split is
    /// [`verify`](Self::verify)'s question.
    pub fn from_json(text: &str) -> Result<Self, RecoveryError> {
        let wire: ShareWireIn = encoding::parse(text, FORMAT)?;
        let what = FORMAT.what;
        let split = SplitId::parse_in(what, &wire.split)?;
        let index = u8::try_from(wire.index)
            .ok()
            .filter(|i| *i != 0)
            .ok_or_else(|| {
                RecoveryError::malformed(
                    what,
                    format!("index {} is not a guardian index (1 to 255)", wire.index),
                )
            })?;
        let scalar = |field: &str, text: &str| {
            let bytes = encoding::decode_fixed::<SCALAR_LEN>(what, field, text)?;
            scalar_from_bytes(&bytes).ok_or_else(|| {
                RecoveryError::malformed(what, format!("{field} is not a canonical P-256 scalar"))
            })
        };
        let value = scalar("value", &wire.value)?;
        let blinder = scalar("blinder", &wire.blinder)?;
        Ok(GuardianShare::new(split, index, value, blinder))
    }
}

impl Drop for GuardianShare {
    fn drop(&mut self) {
        self.value.zeroize();
        self.blinder.zeroize();
    }
}

impl PartialEq for GuardianShare {
    fn eq(&self, other: &Self) -> bool {
        let same_values: bool =
            (self.value.ct_eq(&other.value) & self.blinder.ct_eq(&other.blinder)).into();
        same_values && self.split == other.split && self.index == other.index
    }
}

impl Eq for GuardianShare {}

impl std::fmt::Debug for GuardianShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardianShare")
            .field("split", &self.split)
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct ShareWireOut<'a> {
    format: &'a str,
    version: u64,
    split: &'a str,
    index: u8,
    value: &'a str,
    blinder: &'a str,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShareWireIn {
    #[allow(dead_code)] // checked by `encoding::parse`
    format: String,
    #[allow(dead_code)] // checked by `encoding::parse`
    version: u64,
    split: String,
    /// Wider than `u8` so an out-of-range index gets its own message.
    index: u64,
    value: String,
    blinder: String,
}

impl Drop for ShareWireIn {
    fn drop(&mut self) {
        self.value.zeroize();
        self.blinder.zeroize();
    }
}
