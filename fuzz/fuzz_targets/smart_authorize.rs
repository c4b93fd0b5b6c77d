//! SMART App Launch input from outside: an `/authorize` query string, a
//! code exchange's `code_verifier`, and an operator's `smart-clients.json`
//! (`hygeia_auth::smart`).
#![no_main]

use hygeia_auth::smart::{pkce_matches, AuthorizeParams, Clients};
use libfuzzer_sys::fuzz_target;

const CLIENTS: &[u8] = br#"{"clients":[{"client_id":"app","name":"App","redirect_uris":["https://app.example/cb","http://127.0.0.1:9/cb"]}]}"#;

fuzz_target!(|data: &[u8]| {
    let clients = Clients::from_json(CLIENTS).expect("the fixed clients file parses");
    // Any bytes as a clients file: refused or accepted, never a panic; an
    // accepted one has only well-formed redirect URIs.
    if let Ok(parsed) = Clients::from_json(data) {
        for client in parsed.iter() {
            for uri in &client.redirect_uris {
                assert!(hygeia_auth::smart::check_redirect_uri(uri).is_ok(), "{uri}");
            }
        }
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let params = AuthorizeParams::from_query(text);
    if let Ok((client, redirect)) = params.client(&clients) {
        // Only a registered redirect URI ever comes back.
        assert!(client.redirect_uris.contains(&redirect));
        if let Ok(request) = params.check(client, redirect, "http://node.test/fhir") {
            assert_eq!(request.code_challenge.len(), 43);
            assert!(request.scope.resources().all(|r| r.query.is_none()));
        }
    }
    // A verifier never matches a challenge that is not its own S256.
    let _ = pkce_matches(text, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
});
