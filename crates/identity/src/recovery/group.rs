//! The prime-order group the shares live in: NIST P-256 through the
//! RustCrypto `p256` crate, the types `vsss-rs` works with, the canonical
//! byte encodings of scalars and points, and the second Pedersen generator.

use std::sync::LazyLock;

use getrandom::rand_core::UnwrapErr;
use getrandom::SysRng;
use p256::elliptic_curve::group::GroupEncoding;
use p256::elliptic_curve::{Group, PrimeField};
use p256::hash2curve::GroupDigest;
use p256::{NistP256, ProjectivePoint, Scalar};
use vsss_rs::{DefaultShare, IdentifierPrimeField, ValueGroup};

/// One evaluation of a sharing polynomial, as `vsss-rs` holds it: the
/// guardian index as a field element and the value at that index.
pub(crate) type VsssShare =
    DefaultShare<IdentifierPrimeField<Scalar>, IdentifierPrimeField<Scalar>>;

/// A group element in `vsss-rs`'s wrapper: a generator or a commitment.
pub(crate) type GroupElement = ValueGroup<ProjectivePoint>;

/// Length of a canonical scalar (big-endian, reduced below the group order).
pub(crate) const SCALAR_LEN: usize = 32;
/// Length of a compressed SEC1 point.
pub(crate) const POINT_LEN: usize = 33;

/// RFC 9380 domain separation tag for the second generator.
const BLINDER_GENERATOR_DST: &[u8] = b"HYGEIA-RECOVERY-V1-P256_XMD:SHA-256_SSWU_RO_";

/// The second Pedersen generator `h`, hashed to the curve (RFC 9380,
/// `P256_XMD:SHA-256_SSWU_RO_`) so that nobody knows its discrete logarithm
/// to the base point. A dealer who knew it could hand out shares that pass
/// verification but do not fit one polynomial; letting `vsss-rs` draw `h`
/// at random would give the dealer exactly that knowledge.
pub(crate) fn blinder_generator() -> ProjectivePoint {
    static H: LazyLock<ProjectivePoint> = LazyLock::new(|| {
        // The message and tag are constants well inside RFC 9380's limits,
        // so `expand_message_xmd` cannot fail; the fallback only keeps this
        // free of a panic path and would make every verification fail.
        NistP256::hash_from_bytes(&[b"pedersen-blinder-generator"], &[BLINDER_GENERATOR_DST])
            .unwrap_or(ProjectivePoint::IDENTITY)
    });
    *H
}

/// The base point `g` of P-256, the generator the secret is committed under.
pub(crate) fn secret_generator() -> ProjectivePoint {
    ProjectivePoint::GENERATOR
}

/// The operating system's random source, in the `rand_core` version that
/// `vsss-rs` and `p256` use. A failing system RNG panics, as it does for
/// `Keypair::generate`: there is no safe way to go on without randomness.
pub(crate) fn os_rng() -> UnwrapErr<SysRng> {
    UnwrapErr(SysRng)
}

/// The field element for a guardian index (1 to 255).
pub(crate) fn index_scalar(index: u8) -> IdentifierPrimeField<Scalar> {
    IdentifierPrimeField(Scalar::from(u64::from(index)))
}

pub(crate) fn scalar_to_bytes(scalar: &Scalar) -> [u8; SCALAR_LEN] {
    scalar.to_repr().into()
}

/// Parses a scalar, refusing encodings of values at or above the group
/// order, so every scalar has exactly one encoding.
pub(crate) fn scalar_from_bytes(bytes: &[u8; SCALAR_LEN]) -> Option<Scalar> {
    Option::from(Scalar::from_repr((*bytes).into()))
}

pub(crate) fn point_to_bytes(point: &ProjectivePoint) -> [u8; POINT_LEN] {
    point.to_bytes().into()
}

/// Parses a compressed point, refusing the identity, points off the curve
/// and any encoding that does not print back byte for byte.
pub(crate) fn point_from_bytes(bytes: &[u8; POINT_LEN]) -> Option<ProjectivePoint> {
    let point: ProjectivePoint = Option::from(ProjectivePoint::from_bytes(&(*bytes).into()))?;
    let identity: bool = point.is_identity().into();
    if identity || point_to_bytes(&point) != *bytes {
        return None;
    }
    Some(point)
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::elliptic_curve::Field;

    #[test]
    fn the_blinder_generator_is_a_fixed_point_other_than_g() {
        let h = blinder_generator();
        assert_ne!(h, ProjectivePoint::IDENTITY);
        assert_ne!(h, secret_generator());
        assert_eq!(h, blinder_generator());
    }

    #[test]
    fn scalars_round_trip_and_refuse_the_group_order() {
        let s = Scalar::random(&mut os_rng());
        assert_eq!(scalar_from_bytes(&scalar_to_bytes(&s)), Some(s));
        // n, the group order of P-256, is not a canonical scalar.
        let order: [u8; 32] = [
            0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2,
            0xfc, 0x63, 0x25, 0x51,
        ];
        assert_eq!(scalar_from_bytes(&order), None);
        assert_eq!(scalar_from_bytes(&[0xff; 32]), None);
    }

    #[test]
    fn points_round_trip_and_refuse_identity_and_junk() {
        let p = secret_generator() * Scalar::from(7u64);
        assert_eq!(point_from_bytes(&point_to_bytes(&p)), Some(p));
        assert_eq!(point_from_bytes(&[0u8; POINT_LEN]), None);
        let mut bad = point_to_bytes(&p);
        bad[0] = 0x04;
        assert_eq!(point_from_bytes(&bad), None);
    }
}
