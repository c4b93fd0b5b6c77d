//! A `status.list` credential's `id` against its issuer's namespace: the
//! input is `id`, NUL, issuer, NUL, another issuer.
#![no_main]

use hygeia_node::state::credentials::{in_namespace, is_list_name, list_path};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.splitn(3, '\0');
    let id = parts.next().unwrap_or_default();
    let issuer = parts.next().unwrap_or_default();
    let other = parts.next().unwrap_or_default();
    if !in_namespace(id, issuer) {
        return;
    }
    // The id ends in the issuer's path and a valid name, with an origin.
    let (_, name) = id.rsplit_once('/').expect("a path");
    assert!(is_list_name(name));
    assert!(id.ends_with(&list_path(issuer, name)));
    assert!(id.starts_with("https://") || id.starts_with("http://"));
    assert!(!id.contains(['?', '#']));
    // Namespaces never overlap: no id lies in two issuers'.
    if other != issuer {
        assert!(!in_namespace(id, other), "{id} in {issuer} and {other}");
    }
});
