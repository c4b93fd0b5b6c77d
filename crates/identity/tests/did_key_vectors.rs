//! did:key resolution against the W3C CCG did-method-key test vectors
//! (../shared/vectors/did-key, README section 2): the resolved document
//! must equal the published one, member for member.

use hygeia_identity::{resolve_did_key_as, DidDocument, DidKey, KeyFormat, Relationship};
use serde_json::Value;

fn vectors(name: &str) -> serde_json::Map<String, Value> {
    let path = format!(
        "{}/../../../shared/vectors/did-key/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).expect("shared vectors present");
    match serde_json::from_str(&text).expect("vector JSON") {
        Value::Object(map) => map,
        _ => panic!("{name}: not an object"),
    }
}

/// The vectors use the 2018/2019 suites (base58) or `JsonWebKey2020`;
/// the context tells which.
fn format_of(document: &Value) -> KeyFormat {
    let contexts = document["@context"].to_string();
    if contexts.contains("jws-2020") {
        KeyFormat::JsonWebKey2020
    } else {
        KeyFormat::Suite2018
    }
}

fn assert_resolves_to(did: &str, expected: &Value) {
    let resolved = resolve_did_key_as(did, format_of(expected)).unwrap();
    assert_eq!(&serde_json::to_value(&resolved).unwrap(), expected, "{did}");
    // The document type reads the published document back unchanged.
    let read: DidDocument = serde_json::from_value(expected.clone()).unwrap();
    assert_eq!(read, resolved, "{did}");
}

#[test]
fn ed25519_documents_match_the_vectors() {
    let vectors = vectors("ed25519-x25519.json");
    assert_eq!(vectors.len(), 5);
    for (did, vector) in &vectors {
        let expected = &vector["didDocument"];
        assert_resolves_to(did, expected);

        // The published key agreement key is the one derived from the
        // Ed25519 key, and the signing key is authorized for assertions.
        let parsed: DidKey = did.parse().unwrap();
        let document: DidDocument = serde_json::from_value(expected.clone()).unwrap();
        let agreement_id = expected["keyAgreement"][0].as_str().unwrap();
        assert_eq!(
            document.x25519_key(agreement_id),
            Ok(parsed.x25519_public_key())
        );
        let signer = parsed.as_signer().unwrap();
        assert_eq!(
            document.ed25519_key(&signer.verification_method(), Relationship::AssertionMethod),
            Ok(*signer.public_key())
        );
    }
}

#[test]
fn x25519_documents_match_the_vectors() {
    let file = vectors("x25519.json");
    let Some(Value::Object(documents)) = file.get("didDocument") else {
        panic!("x25519.json: no didDocument map");
    };
    assert_eq!(documents.len(), 4);
    for (did, expected) in documents {
        assert_resolves_to(did, expected);
        let parsed: DidKey = did.parse().unwrap();
        assert!(parsed.as_signer().is_none());
    }
}

#[test]
fn other_key_types_are_refused_as_unsupported() {
    let mut seen = 0;
    for name in [
        "secp256k1.json",
        "bls12381.json",
        "nist-curves.json",
        "rsa.json",
    ] {
        for did in vectors(name).keys() {
            let err = did.parse::<DidKey>().unwrap_err();
            assert_eq!(err.code(), "unsupported-key-type", "{did}");
            assert!(err.to_string().contains("are supported"), "{err}");
            seen += 1;
        }
    }
    assert!(seen >= 15, "{seen} unsupported vectors");
}

#[test]
fn unsupported_key_types_are_named() {
    let cases: [(&str, &[&str]); 4] = [
        ("secp256k1.json", &["secp256k1"]),
        ("bls12381.json", &["BLS12-381 G2", "BLS12-381 G1+G2"]),
        ("nist-curves.json", &["P-256", "P-384", "P-521"]),
        ("rsa.json", &["RSA"]),
    ];
    for (file, names) in cases {
        let mut found: Vec<&str> = Vec::new();
        for did in vectors(file).keys() {
            let message = did.parse::<DidKey>().unwrap_err().to_string();
            let name = names
                .iter()
                .find(|n| message.contains(&format!("a {n} key")));
            found.push(name.unwrap_or_else(|| panic!("{file}: {message}")));
        }
        for name in names {
            assert!(found.contains(name), "{file}: no {name} key");
        }
    }
}
