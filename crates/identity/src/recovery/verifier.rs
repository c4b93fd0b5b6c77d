//! The public side of a split: Pedersen commitments to the two sharing
//! polynomials, which let each guardian check their share, and the split id
//! that names them.

use std::fmt;
use std::str::FromStr;

use p256::ProjectivePoint;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use vsss_rs::PedersenVerifierSet;

use super::encoding::{self, Format};
use super::group::{
    blinder_generator, point_from_bytes, point_to_bytes, secret_generator, GroupElement, VsssShare,
    POINT_LEN,
};
use super::{RecoveryError, MAX_GUARDIANS, MIN_THRESHOLD};

/// Domain separation for split ids.
const SPLIT_ID_DOMAIN: &[u8] = b"hygeia-recovery-split-v1";

const FORMAT: Format = Format {
    name: "hygeia-recovery-verifier",
    what: "share verifier",
    // 255 commitments of 44 characters with pretty-printing: about 14 KB.
    max_len: 32 * 1024,
};

/// Names one split: SHA-256 over the threshold, the number of guardians,
/// the generators and the commitments. Printed as unpadded base64url (43
/// characters).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SplitId([u8; 32]);

impl SplitId {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        SplitId(bytes)
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }
}

impl fmt::Display for SplitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&encoding::encode(&self.0))
    }
}

impl fmt::Debug for SplitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SplitId({self})")
    }
}

impl FromStr for SplitId {
    type Err = RecoveryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SplitId::parse_in("split id", s)
    }
}

impl SplitId {
    /// Parses the text form, naming `what` (the file it is read from) in errors.
    pub(crate) fn parse_in(what: &'static str, text: &str) -> Result<Self, RecoveryError> {
        encoding::decode_fixed::<32>(what, "the split id", text).map(|b| SplitId(*b))
    }
}

/// The public verification data of a split, safe to give every guardian
/// (and to publish): the threshold `k`, the number of guardians `n` and the
/// Pedersen commitments `C_j = g^{a_j} h^{b_j}` to the coefficients of the
/// secret polynomial `a` and the blinding polynomial `b`. Pedersen
/// commitments hide `a_0`, the secret, perfectly: they are consistent with
/// every possible secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ShareVerifier {
    threshold: u8,
    guardians: u8,
    /// `vsss-rs`'s layout: `[g, h, C_0, ..., C_{k-1}]`.
    set: Vec<GroupElement>,
    id: SplitId,
}

impl ShareVerifier {
    /// Builds a verifier from commitments under the standard generators.
    /// The caller guarantees `2 <= threshold <= guardians <= 255` and
    /// `commitments.len() == threshold`.
    pub(crate) fn new(threshold: u8, guardians: u8, commitments: &[ProjectivePoint]) -> Self {
        Self::with_blinder_generator(threshold, guardians, blinder_generator(), commitments)
    }

    /// As [`new`](Self::new) with another `h`: tests use an `h` of known
    /// discrete logarithm to exhibit the hiding property.
    pub(crate) fn with_blinder_generator(
        threshold: u8,
        guardians: u8,
        h: ProjectivePoint,
        commitments: &[ProjectivePoint],
    ) -> Self {
        let mut set = Vec::with_capacity(commitments.len() + 2);
        set.push(GroupElement::from(secret_generator()));
        set.push(GroupElement::from(h));
        set.extend(commitments.iter().copied().map(GroupElement::from));
        let id = split_id(threshold, guardians, &set);
        ShareVerifier {
            threshold,
            guardians,
            set,
            id,
        }
    }

    /// The id naming this split, which every share of it carries.
    pub fn id(&self) -> SplitId {
        self.id
    }

    /// `k`: how many shares recover the secret.
    pub fn threshold(&self) -> usize {
        usize::from(self.threshold)
    }

    /// `n`: how many guardians hold a share (indices 1 to `n`).
    pub fn guardians(&self) -> usize {
        usize::from(self.guardians)
    }

    /// Whether `(index, value, blinder)` lies on the committed polynomials:
    /// `g^value h^blinder == prod_j C_j^(index^j)`.
    pub(crate) fn accepts(&self, value: &VsssShare, blinder: &VsssShare) -> bool {
        PedersenVerifierSet::<VsssShare, GroupElement>::verify_share_and_blinder(
            &self.set, value, blinder,
        )
        .is_ok()
    }

    /// The versioned JSON text of this verifier.
    pub fn to_json(&self) -> String {
        let wire = VerifierWire {
            format: FORMAT.name.to_string(),
            version: encoding::VERSION,
            split: self.id.to_string(),
            threshold: self.threshold,
            guardians: self.guardians,
            commitments: self.set[2..]
                .iter()
                .map(|c| encoding::encode(&point_to_bytes(&c.0)))
                .collect(),
        };
        encoding::to_text(&wire).to_string()
    }

    /// Parses the text of [`to_json`](Self::to_json), strictly: the
    /// threshold and guardian count must be allowed, there must be exactly
    /// `threshold` canonical non-identity points, and the `split` member
    /// must be the id they hash to.
    pub fn from_json(text: &str) -> Result<Self, RecoveryError> {
        let wire: VerifierWire = encoding::parse(text, FORMAT)?;
        let what = FORMAT.what;
        if !(MIN_THRESHOLD..=usize::from(wire.guardians)).contains(&usize::from(wire.threshold)) {
            return Err(RecoveryError::malformed(
                what,
                format!(
                    "a threshold of {} out of {} guardians is not allowed",
                    wire.threshold, wire.guardians
                ),
            ));
        }
        if wire.commitments.len() != usize::from(wire.threshold) {
            return Err(RecoveryError::malformed(
                what,
                format!(
                    "{} commitment(s) for a threshold of {}: there must be one per coefficient",
                    wire.commitments.len(),
                    wire.threshold
                ),
            ));
        }
        let mut commitments = Vec::with_capacity(wire.commitments.len());
        for (j, text) in wire.commitments.iter().enumerate() {
            let bytes = encoding::decode_fixed::<POINT_LEN>(what, "a commitment", text)?;
            let point = point_from_bytes(&bytes).ok_or_else(|| {
                RecoveryError::malformed(
                    what,
                    format!("commitment {j} is not a canonical compressed P-256 point other than the identity"),
                )
            })?;
            commitments.push(point);
        }
        let verifier = ShareVerifier::new(wire.threshold, wire.guardians, &commitments);
        let stated = SplitId::parse_in(what, &wire.split)?;
        if stated != verifier.id {
            return Err(RecoveryError::malformed(
                what,
                format!(
                    "its split member says {stated} but its commitments hash to {}",
                    verifier.id
                ),
            ));
        }
        Ok(verifier)
    }
}

impl fmt::Debug for ShareVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShareVerifier")
            .field("id", &self.id)
            .field("threshold", &self.threshold)
            .field("guardians", &self.guardians)
            .finish_non_exhaustive()
    }
}

fn split_id(threshold: u8, guardians: u8, set: &[GroupElement]) -> SplitId {
    let mut hasher = Sha256::new();
    hasher.update(SPLIT_ID_DOMAIN);
    hasher.update([threshold, guardians]);
    for element in set {
        hasher.update(point_to_bytes(&element.0));
    }
    SplitId(hasher.finalize().into())
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifierWire {
    format: String,
    version: u64,
    split: String,
    threshold: u8,
    guardians: u8,
    commitments: Vec<String>,
}

// Guardian counts above 255 cannot be written: the wire type is a `u8`.
const _: () = assert!(MAX_GUARDIANS == u8::MAX as usize);
