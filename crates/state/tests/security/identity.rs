//! `identity.rotate` cannot make another identity's key act for the
//! attacker (issue 10, finding 1).

use hygeia_identity::Keypair;

use super::fixture::*;

/// A fresh key rotates its own identity to `victim`'s key: refused with
/// `identity.key_in_use`, and nothing about anyone changes.
fn hijack_is_refused(victim: impl Fn(&Victims) -> String) {
    let mut victims = Victims::new();
    let (mut state, next) = victims.state();
    let before = victims.standing(&state);
    let attacker = Keypair::generate();
    let rotate = tx(
        &attacker,
        "identity.rotate",
        "hijack",
        rotate_body(&did(&attacker), &victim(&victims), &attacker),
    )
    .unwrap();
    let error = state
        .apply(next, &rotate)
        .expect_err("a rotation to another identity's key was admitted");
    assert_eq!(error.code.as_str(), "identity.key_in_use", "{error}");
    assert_eq!(victims.standing(&state), before);
    victims.still_act(&state, next + 1).unwrap();
}

#[test]
fn rotating_to_the_nodes_key_is_refused() {
    hijack_is_refused(|v| did(&v.node));
}

#[test]
fn rotating_to_a_patients_key_is_refused() {
    hijack_is_refused(|v| did(&v.patient));
}

#[test]
fn rotating_to_a_clinicians_key_is_refused() {
    hijack_is_refused(|v| did(&v.clinician));
}

#[test]
fn rotating_to_the_governance_key_is_refused() {
    hijack_is_refused(|v| did(&v.governance));
}
