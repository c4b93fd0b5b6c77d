//! Properties of status lists: bits set are the bits read back, through
//! encoding and decoding; and no change to a signed status list
//! credential goes unnoticed.

use hygeia_credentials::data_integrity::resolve_did_key_method;
use hygeia_credentials::status_list::{StatusList, StatusPurpose, MIN_ENTRIES};
use hygeia_credentials::status_list_credential::StatusListCredential;
use hygeia_identity::Keypair;
use proptest::prelude::*;
use serde_json::{json, Value};
use time::macros::datetime;
use time::OffsetDateTime;

const NOW: OffsetDateTime = datetime!(2025-06-01 00:00 UTC);

fn key() -> Keypair {
    Keypair::from_seed(&[61; 32])
}

fn signed_list(revoked: &[usize]) -> Value {
    let mut list = StatusList::new(0).unwrap();
    for index in revoked {
        list.set(*index, true).unwrap();
    }
    StatusListCredential {
        id: "https://issuer.example/status/7".into(),
        issuer: key().did().to_string(),
        purpose: StatusPurpose::Revocation,
        list,
        valid_from: Some(datetime!(2025-05-01 00:00 UTC)),
        valid_until: Some(datetime!(2025-07-01 00:00 UTC)),
    }
    .issue(
        &key(),
        &key().did().verification_method(),
        datetime!(2025-05-01 00:00 UTC),
    )
    .unwrap()
}

/// Paths to every leaf of a JSON value, as object keys and array indexes.
fn leaves(value: &Value, path: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                path.push(json!(key));
                leaves(child, path, out);
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                path.push(json!(i));
                leaves(child, path, out);
                path.pop();
            }
        }
        _ => out.push(path.clone()),
    }
}

fn at<'a>(value: &'a mut Value, path: &[Value]) -> &'a mut Value {
    path.iter().fold(value, |v, step| match step {
        Value::String(key) => &mut v[key.as_str()],
        Value::Number(i) => &mut v[i.as_u64().unwrap() as usize],
        _ => unreachable!(),
    })
}

/// Changes one leaf: flips a character of a string (or appends one),
/// or replaces a non-string.
fn tamper(leaf: &mut Value, choice: usize) {
    match leaf {
        Value::String(text) if !text.is_empty() => {
            let mut chars: Vec<char> = text.chars().collect();
            let i = choice % chars.len();
            chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
            *text = chars.into_iter().collect();
        }
        Value::String(text) => text.push('x'),
        other => *other = json!("tampered"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn set_bits_survive_encoding(
        indexes in proptest::collection::btree_set(0..MIN_ENTRIES, 0..200),
        cleared in proptest::collection::vec(any::<proptest::sample::Index>(), 0..20),
    ) {
        let mut list = StatusList::new(0).unwrap();
        for index in &indexes {
            list.set(*index, true).unwrap();
        }
        let set: Vec<usize> = indexes.iter().copied().collect();
        let mut expected = indexes.clone();
        if !set.is_empty() {
            for pick in &cleared {
                let index = set[pick.index(set.len())];
                list.set(index, false).unwrap();
                expected.remove(&index);
            }
        }
        let decoded = StatusList::decode(&list.encode()).unwrap();
        prop_assert_eq!(&decoded, &list);
        prop_assert_eq!(decoded.count_set(), expected.len());
        for index in &set {
            prop_assert_eq!(decoded.get(*index).unwrap(), expected.contains(index));
        }
    }

    #[test]
    fn any_tampering_of_a_signed_list_is_refused(
        revoked in proptest::collection::vec(0..MIN_ENTRIES, 0..5),
        pick in any::<proptest::sample::Index>(),
        choice in any::<usize>(),
    ) {
        let signed = signed_list(&revoked);
        prop_assert!(StatusListCredential::verify(&signed, NOW, resolve_did_key_method).is_ok());
        let mut paths = Vec::new();
        leaves(&signed, &mut Vec::new(), &mut paths);
        let path = &paths[pick.index(paths.len())];
        let mut copy = signed.clone();
        tamper(at(&mut copy, path), choice);
        prop_assert_ne!(&copy, &signed);
        let result = StatusListCredential::verify(&copy, NOW, resolve_did_key_method);
        prop_assert!(result.is_err(), "accepted after changing {:?}", path);
    }

    #[test]
    fn a_flipped_bit_in_the_list_is_refused(
        revoked in proptest::collection::vec(0..MIN_ENTRIES, 0..5),
        flip in 0..MIN_ENTRIES,
    ) {
        let signed = signed_list(&revoked);
        let subject = &signed["credentialSubject"];
        let mut list = StatusList::decode(subject["encodedList"].as_str().unwrap()).unwrap();
        let bit = list.get(flip).unwrap();
        list.set(flip, !bit).unwrap();
        let mut copy = signed.clone();
        copy["credentialSubject"]["encodedList"] = json!(list.encode());
        let err = StatusListCredential::verify(&copy, NOW, resolve_did_key_method).unwrap_err();
        prop_assert_eq!(err.code(), "vc-bad-proof");
    }
}
