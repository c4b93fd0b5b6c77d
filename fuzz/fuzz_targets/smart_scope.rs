//! A token request's `scope` as a client sends it: arbitrary text to
//! `hygeia_auth::scope::Scopes::parse`.
#![no_main]

use hygeia_auth::scope::{Interaction, Reach, Scopes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(scopes) = Scopes::parse(text) else {
        return;
    };
    // The canonical form parses back to the same scopes.
    let printed = scopes.to_string();
    assert_eq!(Scopes::parse(&printed).as_ref(), Ok(&scopes), "{printed}");
    // Every resource scope without a query reaches what its letters name.
    for scope in scopes.resources().filter(|r| r.query.is_none()) {
        let resource_type = scope.resource_type.as_deref().unwrap_or("Observation");
        for interaction in Interaction::ALL {
            if scope.permissions.contains(interaction) {
                assert!(scopes.reach(interaction, resource_type).is_some());
            }
        }
    }
    // Nothing reaches a type no scope names.
    if scopes.resources().all(|r| r.resource_type.is_some()) {
        assert_eq!(scopes.reach(Interaction::Read, "NotAType"), None::<Reach>);
    }
});
