//! `did:key` identifiers (transaction signers, API parameters): only the
//! canonical text of an Ed25519 did:key parses, and it prints back as is.
//! `Did::parse_cached`, which the transaction parser uses, must agree.
//! Resolution (`DidKey`, `resolve_did_key`) accepts exactly the Ed25519
//! signers plus X25519 keys, and the document names the key it came from.
#![no_main]

use hygeia_identity::{resolve_did_key, Did, DidKey, Relationship};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = text.parse::<Did>();
    // The cache in front of the parser answers exactly as the parser does,
    // whether or not it has seen the text before.
    assert_eq!(Did::parse_cached(text), parsed);
    assert_eq!(Did::parse_cached(text), parsed);
    if let Ok(did) = &parsed {
        assert_eq!(did.to_string(), text);
        assert_eq!(did.as_str(), text);
        assert_eq!(did.to_string().parse::<Did>().as_ref(), Ok(did));
        assert_eq!(&did.public_key().did(), did);
    }

    let resolved = text.parse::<DidKey>();
    match (&resolved, &parsed) {
        (Ok(DidKey::Ed25519(signer)), Ok(did)) => assert_eq!(signer, did),
        (Ok(DidKey::Ed25519(_)), Err(_)) => panic!("a signer that `Did` refuses"),
        (Ok(DidKey::X25519(_)), Ok(_)) => panic!("an X25519 key parsed as a signer"),
        (Err(_), Ok(_)) if text.len() <= 2048 => panic!("a signer that does not resolve"),
        _ => {}
    }
    let document = resolve_did_key(text);
    assert_eq!(document.is_ok(), resolved.is_ok());
    if let (Ok(document), Ok(key)) = (document, resolved) {
        assert_eq!(document.id, text);
        assert_eq!(key.to_string(), text);
        if let DidKey::Ed25519(did) = key {
            let vm = did.verification_method();
            let found = document.ed25519_key(&vm, Relationship::AssertionMethod);
            assert_eq!(found.as_ref(), Ok(did.public_key()));
        }
    }
});
