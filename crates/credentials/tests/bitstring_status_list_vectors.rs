//! Bitstring Status List against the examples of the W3C specification
//! (../shared/vectors/bitstring-status-list, README section 4): the example
//! `encodedList` decodes to 131,072 clear bits (bit 94567 included), the
//! example entries parse, and the example list credential, once signed,
//! verifies and answers status checks.

use hygeia_credentials::data_integrity::{add_proof, resolve_did_key_method, ProofOptions};
use hygeia_credentials::status_list::{StatusList, StatusListEntry, StatusPurpose, MIN_ENTRIES};
use hygeia_credentials::status_list_credential::{
    check, check_issued_by, CredentialStatus, StatusListCredential,
};
use hygeia_identity::Keypair;
use serde_json::{json, Value};
use time::macros::datetime;

fn vector(name: &str) -> Value {
    let path = format!(
        "{}/../../../shared/vectors/bitstring-status-list/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("vector JSON")
}

const EXAMPLE_LIST: &str = "uH4sIAAAAAAAAA-3BMQEAAADCoPVPbQwfoAAAAAAAAAAAAAAAAAAAAIC3AYbSVKsAQAAA";

#[test]
fn the_example_encoded_list_is_131072_clear_bits() {
    for name in [
        "example-status-list-credential.json",
        "example-status-list-credential-examples-context.json",
    ] {
        let credential = vector(name);
        let encoded = credential["credentialSubject"]["encodedList"]
            .as_str()
            .unwrap();
        assert_eq!(encoded, EXAMPLE_LIST, "{name}");
        let list = StatusList::decode(encoded).unwrap();
        assert_eq!(list.len(), MIN_ENTRIES);
        assert_eq!(list.count_set(), 0);
        assert_eq!(list.get(94_567), Ok(false));
        assert_eq!(list.get(0), Ok(false));
        assert_eq!(list.get(MIN_ENTRIES - 1), Ok(false));
        assert_eq!(
            list.get(MIN_ENTRIES).unwrap_err().code(),
            "status-index-out-of-range"
        );
        // Our encoding of the same bits decodes to the same list.
        assert_eq!(StatusList::decode(&list.encode()).unwrap(), list);
    }
}

#[test]
fn the_example_entries_parse() {
    let revocable = vector("example-revocable-vc.json");
    let entries = StatusListEntry::all_from_json(&revocable["credentialStatus"]).unwrap();
    assert_eq!(
        entries,
        [StatusListEntry {
            id: Some("https://example.com/credentials/status/3#94567".into()),
            purpose: StatusPurpose::Revocation,
            index: 94_567,
            list_credential: "https://example.com/credentials/status/3".into(),
        }]
    );
    assert_eq!(entries[0].to_json(), revocable["credentialStatus"]);

    let two = vector("example-vc-two-status-entries.json");
    let entries = StatusListEntry::all_from_json(&two["credentialStatus"]).unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1].purpose, StatusPurpose::Suspension);
    assert_eq!(entries[1].index, 23_452);
    assert_eq!(
        entries[1].list_credential,
        "https://example.com/credentials/status/4"
    );
}

/// The example list credential, signed by a did:key standing in for the
/// example issuer (`did:example:12345` has no key anyone could use).
fn signed_example(key: &Keypair, edit: impl Fn(&mut Value)) -> Value {
    let mut credential = vector("example-status-list-credential.json");
    credential["issuer"] = json!(key.did().as_str());
    edit(&mut credential);
    let options = ProofOptions::assertion(
        key.did().verification_method(),
        datetime!(2021-04-05 14:27:40 UTC),
    );
    add_proof(&credential, options, key).unwrap()
}

#[test]
fn the_example_list_credential_verifies_and_answers() {
    let key = Keypair::from_seed(&[51; 32]);
    let now = datetime!(2025-01-01 00:00 UTC);
    let list =
        StatusListCredential::verify(&signed_example(&key, |_| {}), now, resolve_did_key_method)
            .unwrap();
    assert_eq!(list.id(), "https://example.com/credentials/status/3");
    assert_eq!(list.purpose(), StatusPurpose::Revocation);

    let revocable = vector("example-revocable-vc.json");
    let entry = StatusListEntry::from_json(&revocable["credentialStatus"]).unwrap();
    assert_eq!(check(&entry, &list), Ok(CredentialStatus::Valid));
    assert_eq!(
        check_issued_by(&entry, key.did().as_str(), &list),
        Ok(CredentialStatus::Valid)
    );
    // The example credential names `did:example:12345` as its issuer.
    let issuer = revocable["issuer"].as_str().unwrap();
    let err = check_issued_by(&entry, issuer, &list).unwrap_err();
    assert_eq!(err.code(), "status-issuer-mismatch");

    // The second example's suspension entry points to another list.
    let two = vector("example-vc-two-status-entries.json");
    let entries = StatusListEntry::all_from_json(&two["credentialStatus"]).unwrap();
    assert_eq!(check(&entries[0], &list), Ok(CredentialStatus::Valid));
    assert_eq!(
        check(&entries[1], &list).unwrap_err().code(),
        "status-list-url-mismatch"
    );
}

#[test]
fn a_revoked_bit_in_the_example_list_is_reported() {
    let key = Keypair::from_seed(&[52; 32]);
    let mut bits = StatusList::decode(EXAMPLE_LIST).unwrap();
    bits.set(94_567, true).unwrap();
    let encoded = bits.encode();
    let signed = signed_example(&key, |c| {
        c["credentialSubject"]["encodedList"] = json!(encoded)
    });
    let list = StatusListCredential::verify(
        &signed,
        datetime!(2025-01-01 00:00 UTC),
        resolve_did_key_method,
    )
    .unwrap();
    let entry =
        StatusListEntry::from_json(&vector("example-revocable-vc.json")["credentialStatus"])
            .unwrap();
    assert_eq!(check(&entry, &list), Ok(CredentialStatus::Revoked));
}
