//! Splitting with `vsss-rs`'s Pedersen scheme, in containers that wipe the
//! polynomials and shares when dropped (`vsss-rs`'s own `Vec`-backed result
//! leaves them in freed memory).

use p256::{ProjectivePoint, Scalar};
use vsss_rs::pedersen::PedersenOptions;
use vsss_rs::{
    IdentifierPrimeField, Pedersen, PedersenResult, Polynomial, Shamir, Share, WriteableShareSet,
};
use zeroize::Zeroize;

use super::group::{index_scalar, os_rng, secret_generator, GroupElement, VsssShare};

/// Polynomial coefficients or shares, wiped on drop.
#[derive(Default)]
pub(crate) struct Wiped(Vec<VsssShare>);

impl Drop for Wiped {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl AsRef<[VsssShare]> for Wiped {
    fn as_ref(&self) -> &[VsssShare] {
        &self.0
    }
}

impl AsMut<[VsssShare]> for Wiped {
    fn as_mut(&mut self) -> &mut [VsssShare] {
        &mut self.0
    }
}

impl Polynomial<VsssShare> for Wiped {
    fn create(size_hint: usize) -> Self {
        Wiped(vec![VsssShare::default(); size_hint])
    }

    fn coefficients(&self) -> &[VsssShare] {
        &self.0
    }

    fn coefficients_mut(&mut self) -> &mut [VsssShare] {
        &mut self.0
    }
}

impl WriteableShareSet<VsssShare> for Wiped {
    fn create(size_hint: usize) -> Self {
        Wiped(vec![VsssShare::default(); size_hint])
    }
}

/// The dealer's output. Only the Pedersen commitments and the shares are
/// used; the Feldman commitments (`g^{a_j}`, which would expose `g^secret`)
/// and the blinder are dropped unpublished.
pub(crate) struct Dealt {
    blinder: IdentifierPrimeField<Scalar>,
    secret_shares: Wiped,
    blinder_shares: Wiped,
    feldman: Vec<GroupElement>,
    pedersen: Vec<GroupElement>,
}

impl Drop for Dealt {
    fn drop(&mut self) {
        self.blinder.zeroize();
    }
}

impl PedersenResult<VsssShare, GroupElement> for Dealt {
    type ShareSet = Wiped;
    type FeldmanVerifierSet = Vec<GroupElement>;
    type PedersenVerifierSet = Vec<GroupElement>;

    fn new(
        blinder: IdentifierPrimeField<Scalar>,
        secret_shares: Wiped,
        blinder_shares: Wiped,
        feldman: Vec<GroupElement>,
        pedersen: Vec<GroupElement>,
    ) -> Self {
        Dealt {
            blinder,
            secret_shares,
            blinder_shares,
            feldman,
            pedersen,
        }
    }

    fn blinder(&self) -> &IdentifierPrimeField<Scalar> {
        &self.blinder
    }

    fn secret_shares(&self) -> &Wiped {
        &self.secret_shares
    }

    fn blinder_shares(&self) -> &Wiped {
        &self.blinder_shares
    }

    fn feldman_verifier_set(&self) -> &Vec<GroupElement> {
        &self.feldman
    }

    fn pedersen_verifier_set(&self) -> &Vec<GroupElement> {
        &self.pedersen
    }
}

struct Dealer;

impl Shamir<VsssShare> for Dealer {
    type InnerPolynomial = Wiped;
    type ShareSet = Wiped;
}

impl Pedersen<VsssShare, GroupElement> for Dealer {
    type FeldmanVerifierSet = Vec<GroupElement>;
    type PedersenVerifierSet = Vec<GroupElement>;
    type PedersenResult = Dealt;
}

/// One guardian's evaluations, as the dealer produced them.
pub(crate) struct DealtShare {
    pub index: u8,
    pub value: Scalar,
    pub blinder: Scalar,
}

impl Drop for DealtShare {
    fn drop(&mut self) {
        self.value.zeroize();
        self.blinder.zeroize();
    }
}

/// Pedersen VSS of `secret` with threshold `k` to guardians `1..=n` under
/// generators `g` (the base point) and `h`: returns each guardian's
/// evaluations and the commitments `C_0..C_{k-1}`. The caller has checked
/// `2 <= k <= n <= 255`; `None` only if `vsss-rs` refuses anyway.
pub(crate) fn deal(
    secret: &Scalar,
    threshold: u8,
    guardians: u8,
    h: ProjectivePoint,
) -> Option<(Vec<DealtShare>, Vec<ProjectivePoint>)> {
    let secret = Wiped(vec![VsssShare::with_identifier_and_value(
        IdentifierPrimeField::default(),
        IdentifierPrimeField(*secret),
    )]);
    let options = PedersenOptions::<VsssShare, GroupElement> {
        secret: secret.0[0].value(),
        blinder: None,
        secret_generator: Some(GroupElement::from(secret_generator())),
        blinder_generator: Some(GroupElement::from(h)),
    };
    let dealt = Dealer::split_secret_with_participant_ids_iter_and_blind_verifiers(
        usize::from(threshold),
        usize::from(guardians),
        &options,
        os_rng(),
        (1..=guardians).map(index_scalar),
    )
    .ok()?;
    let shares = (1..=guardians)
        .zip(dealt.secret_shares.0.iter().zip(&dealt.blinder_shares.0))
        .map(|(index, (value, blinder))| DealtShare {
            index,
            value: value.value().0,
            blinder: blinder.value().0,
        })
        .collect();
    let commitments = dealt
        .pedersen_verifier_set()
        .iter()
        .skip(2)
        .map(|c| c.0)
        .collect();
    Some((shares, commitments))
}
