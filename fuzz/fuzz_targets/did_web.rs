//! `did:web` identifiers (organizations, issuers): a parsed DID prints back
//! as the input, maps to an HTTPS URL on its own host, and the server-side
//! mapping from that document location gives the same DID back.
#![no_main]

use hygeia_identity::DidWeb;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(did) = text.parse::<DidWeb>() else {
        return;
    };
    assert_eq!(did.as_str(), text);
    assert_eq!(did.to_string().parse::<DidWeb>().as_ref(), Ok(&did));
    let path = did.document_path();
    assert!(path.ends_with("/did.json"));
    assert!(!path.contains("/../") && !path.contains("/./") && !path.contains("//"));
    let authority = match did.port() {
        Some(port) => format!("{}:{port}", did.host()),
        None => did.host().to_string(),
    };
    assert_eq!(did.document_url(), format!("https://{authority}{path}"));
    let back = DidWeb::from_document_location(did.host(), did.port(), &path);
    assert_eq!(back.as_ref(), Ok(&did));
});
