//! Governance policy text (a `governance.policy` body, signed by the
//! governance key): the bounds scan, then Cedar, never overflow the stack.
#![no_main]

use hygeia_policy::bounds::{self, MAX_NESTING, MAX_OPERATORS};
use hygeia_policy::GovernancePolicies;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let size = bounds::measure(text);
    let checked = bounds::check(text);
    assert_eq!(
        checked.is_ok(),
        size.nesting <= MAX_NESTING && size.operators <= MAX_OPERATORS
    );
    match GovernancePolicies::parse(1, text) {
        Ok(policies) => {
            assert!(checked.is_ok());
            assert!(!policies.policy_ids().is_empty());
        }
        Err(e) => {
            if let Err(bound) = checked {
                assert_eq!(e, bound, "the bounds decide before Cedar");
            }
        }
    }
});
