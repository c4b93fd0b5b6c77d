//! `did:key` identifiers (transaction signers, API parameters): only the
//! canonical text of an Ed25519 did:key parses, and it prints back as is.
//! `Did::parse_cached`, which the transaction parser uses, must agree.
#![no_main]

use hygeia_identity::Did;
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
    if let Ok(did) = parsed {
        assert_eq!(did.to_string(), text);
        assert_eq!(did.as_str(), text);
        assert_eq!(did.to_string().parse::<Did>().as_ref(), Ok(&did));
        assert_eq!(did.public_key().did(), did);
    }
});
