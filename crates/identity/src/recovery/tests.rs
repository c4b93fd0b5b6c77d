//! Splitting and recovering: every k-subset recovers, k − 1 shares are
//! refused and are consistent with any secret, bad shares are named.

use p256::{ProjectivePoint, Scalar};
use proptest::prelude::*;
use vsss_rs::{IdentifierPrimeField, ReadableShareSet, Share as _};

use super::group::{index_scalar, scalar_from_bytes, VsssShare};
use super::*;

/// Small (k, n) pairs, including the edges k = 2 and k = n.
const SMALL: &[(usize, usize)] = &[
    (2, 2),
    (2, 3),
    (3, 3),
    (2, 4),
    (3, 4),
    (4, 4),
    (2, 5),
    (3, 5),
    (4, 6),
];

/// Every subset of `0..n` of size `k`, in lexicographic order.
fn subsets(n: usize, k: usize) -> Vec<Vec<usize>> {
    fn extend(
        start: usize,
        n: usize,
        k: usize,
        current: &mut Vec<usize>,
        out: &mut Vec<Vec<usize>>,
    ) {
        if current.len() == k {
            out.push(current.clone());
            return;
        }
        for i in start..n {
            current.push(i);
            extend(i + 1, n, k, current, out);
            current.pop();
        }
    }
    let mut out = Vec::new();
    extend(0, n, k, &mut Vec::new(), &mut out);
    out
}

fn pick(shares: &[GuardianShare], positions: &[usize]) -> Vec<GuardianShare> {
    positions.iter().map(|&i| shares[i].clone()).collect()
}

fn scalar(bytes: [u8; 32]) -> Scalar {
    // Below the group order except with probability about 2^-32.
    scalar_from_bytes(&bytes).unwrap_or(Scalar::ONE)
}

#[test]
fn every_k_subset_recovers_the_secret_and_the_recovery_did() {
    for &(k, n) in SMALL {
        let secret = RecoverySecret::generate();
        let did = secret.recovery_keypair().did();
        let (shares, verifier) = split(&secret, k, n).unwrap();
        assert_eq!((verifier.threshold(), verifier.guardians()), (k, n));
        assert_eq!(shares.len(), n);
        for (i, share) in shares.iter().enumerate() {
            assert_eq!(usize::from(share.index()), i + 1);
            assert_eq!(share.split_id(), verifier.id());
            share.verify(&verifier).unwrap();
        }
        // Every subset of k or more shares, in any order.
        for size in k..=n {
            for positions in subsets(n, size) {
                let mut chosen = pick(&shares, &positions);
                let recovered = recover(&chosen, &verifier).unwrap();
                assert!(recovered == secret, "({k}, {n}) {positions:?}");
                assert_eq!(recovered.recovery_keypair().did(), did);
                chosen.reverse();
                assert!(recover(&chosen, &verifier).unwrap() == secret);
            }
        }
    }
}

#[test]
fn fewer_than_k_shares_are_refused_saying_how_many_more() {
    for &(k, n) in SMALL {
        let (shares, verifier) = split(&RecoverySecret::generate(), k, n).unwrap();
        for size in 0..k {
            for positions in subsets(n, size) {
                let err = recover(&pick(&shares, &positions), &verifier).unwrap_err();
                assert_eq!(err.code(), "recovery-not-enough-shares");
                assert_eq!(
                    err,
                    RecoveryError::NotEnoughShares {
                        given: size,
                        threshold: k,
                        missing: k - size,
                    }
                );
            }
        }
    }
    let (shares, verifier) = split(&RecoverySecret::generate(), 3, 5).unwrap();
    let message = recover(&shares[..1], &verifier).unwrap_err().to_string();
    assert!(message.contains("2 more"), "{message}");
}

/// A forged share for guardian `at` such that `kept` plus the forgery
/// recover `other`, built with the knowledge of `t = log_g h`.
///
/// The secret polynomial `a'` is fixed by the k − 1 kept values and
/// `a'(0) = other`; the crate's own Lagrange interpolation (`combine`) gives
/// its value at `at`: `other = A + λ·a'(at)`, where `A` interpolates the kept
/// values with 0 at `at` and `λ` interpolates 0s with 1 at `at`. The blinding
/// value then follows from the commitments: they fix
/// `P(x) = a(x) + t·b(x)` (as `g^{a(x)} h^{b(x)} = g^{P(x)}`), so
/// `b'(at) = (P(at) − a'(at)) / t`, with `P(at)` read off the real share.
fn forge(
    kept: &[GuardianShare],
    real_at: &GuardianShare,
    t: Scalar,
    other: Scalar,
) -> GuardianShare {
    let at = real_at.index();
    let interpolate = |points: Vec<(u8, Scalar)>| -> Scalar {
        let set: Vec<VsssShare> = points
            .into_iter()
            .map(|(i, y)| {
                VsssShare::with_identifier_and_value(index_scalar(i), IdentifierPrimeField(y))
            })
            .collect();
        set.combine().unwrap().0
    };
    let with_at = |y_kept: &dyn Fn(&GuardianShare) -> Scalar, y_at: Scalar| {
        let mut points: Vec<(u8, Scalar)> = kept.iter().map(|s| (s.index(), y_kept(s))).collect();
        points.push((at, y_at));
        points
    };
    let a = interpolate(with_at(&|s| s.values().0, Scalar::ZERO));
    let lambda = interpolate(with_at(&|_| Scalar::ZERO, Scalar::ONE));
    let value = (other - a) * lambda.invert().unwrap();
    let (real_value, real_blinder) = real_at.values();
    let committed = real_value + t * real_blinder;
    let blinder = (committed - value) * t.invert().unwrap();
    GuardianShare::new(real_at.split_id(), at, value, blinder)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// k − 1 shares reveal nothing: whatever other secret `s'` is named,
    /// the public verifier and the k − 1 shares a coalition holds are
    /// consistent with it.
    ///
    /// Shown constructively: a k-th share is built (see [`forge`]) that
    /// passes `verify` against the *same* published verifier and with the
    /// coalition's *unchanged* shares recovers `s'`. The construction is a
    /// bijection between candidate secrets and k-th shares, so every secret
    /// is explained by exactly one completion of the coalition's view: the
    /// view has the same distribution whatever the secret (Pedersen 1991,
    /// Theorem 4.4). Building the completion takes `t = log_g h`, so the
    /// test splits under `h = g^t` with `t` known; the real `h` is hashed to
    /// the curve and its logarithm is known to nobody, but the completions
    /// exist all the same, which is all that perfect hiding needs (knowing
    /// `t` only matters for binding, which guards guardians against a
    /// cheating dealer).
    #[test]
    fn k_minus_one_shares_are_consistent_with_any_secret(
        k in 2usize..=5,
        extra in 0usize..=2,
        t in any::<[u8; 32]>(),
        other in any::<[u8; 32]>(),
        choice in any::<prop::sample::Index>(),
    ) {
        let n = k + extra;
        let t = scalar(t);
        prop_assume!(t != Scalar::ZERO);
        let other = RecoverySecret::from_scalar(scalar(other));
        let secret = RecoverySecret::generate();
        let h = ProjectivePoint::GENERATOR * t;
        let (shares, verifier) = split_with_blinder_generator(&secret, k, n, h).unwrap();

        // The coalition: any k − 1 guardians; the forged share is for one
        // of the others.
        let coalitions = subsets(n, k - 1);
        let coalition = &coalitions[choice.index(coalitions.len())];
        let outsider = (0..n).find(|i| !coalition.contains(i)).unwrap();
        let kept = pick(&shares, coalition);

        let forged = forge(&kept, &shares[outsider], t, *other.scalar());
        prop_assert!(forged.verify(&verifier).is_ok());
        let mut completed = kept.clone();
        completed.push(forged);
        let recovered = recover(&completed, &verifier).unwrap();
        prop_assert!(recovered == other);
        prop_assert_eq!(
            recovered.recovery_keypair().did(),
            other.recovery_keypair().did()
        );
        // And the honest completion still gives the real secret.
        let mut honest = kept;
        honest.push(shares[outsider].clone());
        prop_assert!(recover(&honest, &verifier).unwrap() == secret);
    }

    /// Any change to a share's values or index is caught by `verify` and
    /// by `recover`, naming the guardian.
    #[test]
    fn a_tampered_share_is_refused_naming_the_guardian(
        k in 2usize..=4,
        extra in 0usize..=2,
        victim in any::<prop::sample::Index>(),
        delta in any::<[u8; 32]>(),
        what in 0u8..3,
    ) {
        let n = k + extra;
        let (shares, verifier) = split(&RecoverySecret::generate(), k, n).unwrap();
        let victim = victim.index(n);
        let delta = scalar(delta);
        prop_assume!(delta != Scalar::ZERO);
        let original = &shares[victim];
        let (value, blinder) = original.values();
        let tampered = match what {
            0 => GuardianShare::new(original.split_id(), original.index(), value + delta, blinder),
            1 => GuardianShare::new(original.split_id(), original.index(), value, blinder + delta),
            _ => {
                // The same values under another guardian's index.
                let other = u8::try_from((victim + 1) % n + 1).unwrap();
                GuardianShare::new(original.split_id(), other, value, blinder)
            }
        };
        let index = tampered.index();
        let err = tampered.verify(&verifier).unwrap_err();
        prop_assert_eq!(err.code(), "recovery-share-invalid");
        let named = matches!(err, RecoveryError::ShareInvalid { index: i, .. } if i == index);
        prop_assert!(named, "{:?}", err);

        let mut given: Vec<GuardianShare> = shares
            .iter()
            .filter(|s| s.index() != index)
            .cloned()
            .collect();
        given.push(tampered);
        let err = recover(&given, &verifier).unwrap_err();
        let named = matches!(err, RecoveryError::ShareInvalid { index: i, .. } if i == index);
        prop_assert!(named, "{:?}", err);
        let names_guardian = err.to_string().contains(&format!("guardian {index}"));
        prop_assert!(names_guardian, "{}", err);
    }
}

#[test]
fn thresholds_outside_two_to_n_to_255_are_refused() {
    let secret = RecoverySecret::generate();
    for (k, n) in [
        (0, 0),
        (1, 1),
        (1, 3),
        (0, 3),
        (4, 3),
        (2, 256),
        (256, 256),
        (300, 400),
    ] {
        let err = split(&secret, k, n).unwrap_err();
        assert_eq!(err.code(), "recovery-threshold-invalid", "({k}, {n})");
        assert_eq!(
            err,
            RecoveryError::ThresholdInvalid {
                threshold: k,
                guardians: n
            }
        );
    }
}

#[test]
fn the_largest_splits_are_allowed() {
    let secret = RecoverySecret::generate();
    let (shares, verifier) = split(&secret, 2, 255).unwrap();
    assert_eq!(shares.len(), 255);
    assert_eq!(shares[254].index(), 255);
    shares[254].verify(&verifier).unwrap();
    assert!(recover(&[shares[254].clone(), shares[0].clone()], &verifier).unwrap() == secret);

    let (shares, verifier) = split(&secret, 255, 255).unwrap();
    assert_eq!(verifier.threshold(), 255);
    shares[100].verify(&verifier).unwrap();
    let text = verifier.to_json();
    assert_eq!(ShareVerifier::from_json(&text).unwrap(), verifier);
}

#[test]
fn a_share_of_another_split_is_refused() {
    let secret = RecoverySecret::generate();
    let (shares, verifier) = split(&secret, 2, 3).unwrap();
    // Same secret, same guardians, new split: different id.
    let (other_shares, other_verifier) = split(&secret, 2, 3).unwrap();
    assert_ne!(verifier.id(), other_verifier.id());

    let err = other_shares[2].verify(&verifier).unwrap_err();
    assert_eq!(err.code(), "recovery-wrong-split");
    let err = recover(&[shares[0].clone(), other_shares[2].clone()], &verifier).unwrap_err();
    assert_eq!(
        err,
        RecoveryError::WrongSplit {
            index: 3,
            share_split: other_verifier.id(),
            expected: verifier.id(),
        }
    );
    assert!(err.to_string().contains("guardian 3"));

    // Relabelled with this split's id, its values still do not fit.
    let (value, blinder) = other_shares[2].values();
    let relabelled = GuardianShare::new(verifier.id(), 3, value, blinder);
    let err = recover(&[shares[0].clone(), relabelled], &verifier).unwrap_err();
    assert_eq!(err.code(), "recovery-share-invalid");
}

#[test]
fn a_guardian_given_twice_is_refused() {
    let (shares, verifier) = split(&RecoverySecret::generate(), 2, 3).unwrap();
    let err = recover(&[shares[1].clone(), shares[1].clone()], &verifier).unwrap_err();
    assert_eq!(err.code(), "recovery-duplicate-share");
    assert_eq!(err, RecoveryError::DuplicateShare { index: 2 });
    // Even with enough other shares.
    let given = [
        shares[0].clone(),
        shares[1].clone(),
        shares[2].clone(),
        shares[0].clone(),
    ];
    assert_eq!(
        recover(&given, &verifier).unwrap_err(),
        RecoveryError::DuplicateShare { index: 1 }
    );
}

#[test]
fn an_index_beyond_the_guardians_is_refused() {
    let (shares, verifier) = split(&RecoverySecret::generate(), 2, 3).unwrap();
    let (value, blinder) = shares[0].values();
    let stranger = GuardianShare::new(verifier.id(), 4, value, blinder);
    let err = stranger.verify(&verifier).unwrap_err();
    assert_eq!(err.code(), "recovery-share-invalid");
    assert!(matches!(err, RecoveryError::ShareInvalid { index: 4, .. }));
}

#[test]
fn debug_output_holds_no_share_values() {
    let (shares, verifier) = split(&RecoverySecret::generate(), 2, 2).unwrap();
    let shown = format!("{:?}", shares[0]);
    let text = shares[0].to_json();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    let encoded = value["value"].as_str().unwrap();
    assert!(!shown.contains(encoded), "{shown}");
    assert!(shown.contains(&verifier.id().to_string()));
}
