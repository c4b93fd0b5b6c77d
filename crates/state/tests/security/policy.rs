//! A governance policy cannot take the sequencer down (issue 10, finding
//! 9): the shapes that overflowed its stack are refused before Cedar
//! parses them, with a stable code, and change nothing.

use serde_json::json;

use super::fixture::*;

fn install(policies: String) -> String {
    let mut victims = Victims::new();
    let (mut state, next) = victims.state();
    let before = state.policy.governance().version();
    let t = tx(
        &victims.governance,
        "governance.policy",
        "deep",
        json!({"version": before + 1, "policies": policies}),
    )
    .expect("within the transaction size limit");
    assert!(t.canonical_bytes().len() <= hygeia_ledger::MAX_TX_BYTES);
    let error = state.apply(next, &t).unwrap_err();
    assert_eq!(state.policy.governance().version(), before);
    error.code.as_str().to_owned()
}

#[test]
fn thirty_thousand_parentheses_are_refused() {
    let policies = format!(
        "@id(\"deep\") permit (principal, action, resource) when {{ {}true{} }};",
        "(".repeat(30_000),
        ")".repeat(30_000)
    );
    assert_eq!(install(policies), "governance.too_deep");
}

#[test]
fn an_eight_thousand_term_chain_is_refused() {
    let policies = format!(
        "@id(\"long\") permit (principal, action, resource) when {{ {} }};",
        vec!["true"; 8_000].join("&&")
    );
    assert_eq!(install(policies), "governance.too_many_operators");
}
