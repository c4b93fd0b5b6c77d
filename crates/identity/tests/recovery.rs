//! Key recovery through the public API: share and verifier files, their
//! strict parsing, and a stored 2-of-3 split that must keep recovering the
//! same recovery did:key.

use hygeia_identity::{recover, split, GuardianShare, RecoverySecret, ShareVerifier};
use proptest::prelude::*;
use serde_json::{json, Value};

const STORED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/recovery-2-of-3");

fn stored(name: &str) -> String {
    std::fs::read_to_string(format!("{STORED}/{name}")).unwrap()
}

fn stored_shares() -> Vec<GuardianShare> {
    (1..=3)
        .map(|i| GuardianShare::from_json(&stored(&format!("share{i}.json"))).unwrap())
        .collect()
}

/// Files written by version 1 keep parsing, verifying and recovering the
/// did:key that was registered for them.
#[test]
fn a_stored_split_recovers_its_recovery_did() {
    let verifier = ShareVerifier::from_json(&stored("verifier.json")).unwrap();
    let did = stored("recovery-did.txt");
    let shares = stored_shares();
    assert_eq!((verifier.threshold(), verifier.guardians()), (2, 3));
    for share in &shares {
        share.verify(&verifier).unwrap();
    }
    for pair in [[0, 1], [0, 2], [1, 2], [2, 0]] {
        let given = [shares[pair[0]].clone(), shares[pair[1]].clone()];
        let secret = recover(&given, &verifier).unwrap();
        assert_eq!(secret.recovery_keypair().did().to_string(), did.trim());
    }
    // The files print back exactly as stored.
    assert_eq!(verifier.to_json(), stored("verifier.json"));
    assert_eq!(*shares[0].to_json(), stored("share1.json"));
}

#[test]
fn guardians_keep_files_and_recover_from_them() {
    let dir = tempfile::tempdir().unwrap();
    let secret = RecoverySecret::generate();
    let did = secret.recovery_keypair().did();
    let (shares, verifier) = split(&secret, 3, 5).unwrap();
    drop(secret);
    std::fs::write(dir.path().join("verifier.json"), verifier.to_json()).unwrap();
    for share in &shares {
        let path = dir.path().join(format!("share-{}.json", share.index()));
        std::fs::write(path, share.to_json().as_bytes()).unwrap();
    }

    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
    let verifier = ShareVerifier::from_json(&read("verifier.json")).unwrap();
    // Each guardian checks their own file against the verifier alone.
    for i in 1..=5 {
        let share = GuardianShare::from_json(&read(&format!("share-{i}.json"))).unwrap();
        share.verify(&verifier).unwrap();
    }
    let given: Vec<GuardianShare> = [5, 2, 4]
        .iter()
        .map(|i| GuardianShare::from_json(&read(&format!("share-{i}.json"))).unwrap())
        .collect();
    assert_eq!(
        recover(&given, &verifier).unwrap().recovery_keypair().did(),
        did
    );
    let err = recover(&given[..2], &verifier).unwrap_err();
    assert_eq!(err.code(), "recovery-not-enough-shares");
}

fn share_json() -> Value {
    serde_json::from_str(&stored("share1.json")).unwrap()
}

fn verifier_json() -> Value {
    serde_json::from_str(&stored("verifier.json")).unwrap()
}

fn with(mut value: Value, key: &str, new: Value) -> String {
    value[key] = new;
    value.to_string()
}

fn without(mut value: Value, key: &str) -> String {
    value.as_object_mut().unwrap().remove(key);
    value.to_string()
}

fn assert_malformed_share(text: &str) {
    match GuardianShare::from_json(text) {
        Ok(share) => panic!("accepted {text}: {share:?}"),
        Err(err) => assert_eq!(err.code(), "recovery-malformed", "{text}: {err}"),
    }
}

fn assert_malformed_verifier(text: &str) {
    match ShareVerifier::from_json(text) {
        Ok(verifier) => panic!("accepted {text}: {verifier:?}"),
        Err(err) => assert_eq!(err.code(), "recovery-malformed", "{text}: {err}"),
    }
}

#[test]
fn malformed_share_files_are_refused() {
    let share = share_json();
    let value = share["value"].as_str().unwrap().to_string();
    let cases = [
        String::new(),
        "not json".to_string(),
        "[]".to_string(),
        "{}".to_string(),
        with(share.clone(), "format", json!("hygeia-recovery-verifier")),
        with(share.clone(), "version", json!(2)),
        with(share.clone(), "version", json!("1")),
        with(share.clone(), "extra", json!(1)),
        without(share.clone(), "blinder"),
        without(share.clone(), "split"),
        with(share.clone(), "index", json!(0)),
        with(share.clone(), "index", json!(256)),
        with(share.clone(), "index", json!(-1)),
        with(share.clone(), "index", json!(1.5)),
        with(share.clone(), "value", json!(format!("{value}="))),
        with(share.clone(), "value", json!(value[1..].to_string())),
        with(
            share.clone(),
            "value",
            json!(value.replace(['-', '_'], "+")),
        ),
        // Not below the group order.
        with(
            share.clone(),
            "value",
            json!(format!("{}8", "_".repeat(42))),
        ),
        with(share.clone(), "blinder", json!(null)),
        with(share.clone(), "split", json!("short")),
        // A duplicated member.
        stored("share1.json").replacen("\"index\": 1,", "\"index\": 1,\n  \"index\": 2,", 1),
        // Longer than any share file.
        format!("{}{}", stored("share1.json"), " ".repeat(2000)),
    ];
    for text in &cases {
        assert_malformed_share(text);
    }
}

#[test]
fn malformed_verifier_files_are_refused() {
    let verifier = verifier_json();
    let commitments = verifier["commitments"].clone();
    let first = commitments[0].as_str().unwrap().to_string();
    // The identity, and a point's x with the wrong SEC1 tag.
    let identity = "A".repeat(44);
    let bad_tag = format!("BA{}", &first[2..]);
    let cases = [
        String::new(),
        "{".to_string(),
        with(verifier.clone(), "format", json!("hygeia-recovery-share")),
        without(verifier.clone(), "format"),
        with(verifier.clone(), "version", json!(0)),
        with(verifier.clone(), "unknown", json!([])),
        with(verifier.clone(), "threshold", json!(1)),
        with(verifier.clone(), "threshold", json!(4)),
        with(verifier.clone(), "guardians", json!(256)),
        with(verifier.clone(), "threshold", json!(3)),
        with(verifier.clone(), "commitments", json!([first])),
        with(verifier.clone(), "commitments", json!([first, identity])),
        with(verifier.clone(), "commitments", json!([first, bad_tag])),
        with(verifier.clone(), "commitments", json!([first, first[..43]])),
        // A split id that is not what the commitments hash to.
        with(verifier.clone(), "split", json!("A".repeat(43))),
        // Swapped commitments hash to another id.
        with(
            verifier.clone(),
            "commitments",
            json!([commitments[1], commitments[0]]),
        ),
        format!("{}{}", stored("verifier.json"), " ".repeat(40_000)),
    ];
    for text in &cases {
        assert_malformed_verifier(text);
    }
}

#[test]
fn split_ids_parse_strictly() {
    let verifier = ShareVerifier::from_json(&stored("verifier.json")).unwrap();
    let text = verifier.id().to_string();
    assert_eq!(text.len(), 43);
    assert_eq!(
        text.parse::<hygeia_identity::SplitId>().unwrap(),
        verifier.id()
    );
    for bad in [format!("{text}="), text[1..].to_string(), String::new()] {
        let err = bad.parse::<hygeia_identity::SplitId>().unwrap_err();
        assert_eq!(err.code(), "recovery-malformed");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Every share and verifier prints to text that parses back to it.
    #[test]
    fn encodings_round_trip(k in 2usize..=6, extra in 0usize..=4) {
        let (shares, verifier) = split(&RecoverySecret::generate(), k, k + extra).unwrap();
        let parsed = ShareVerifier::from_json(&verifier.to_json()).unwrap();
        prop_assert_eq!(&parsed, &verifier);
        prop_assert_eq!(parsed.id(), verifier.id());
        for share in &shares {
            let back = GuardianShare::from_json(&share.to_json()).unwrap();
            prop_assert_eq!(&back, share);
            prop_assert!(back.verify(&parsed).is_ok());
        }
    }

    /// Changing any one byte of a share file either makes it unreadable or
    /// leaves a share that is the same or fails verification: no edit
    /// yields a different share that passes.
    #[test]
    fn an_edited_share_file_never_passes_as_another_share(
        position in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let verifier = ShareVerifier::from_json(&stored("verifier.json")).unwrap();
        let original = stored("share2.json");
        let mut bytes = original.clone().into_bytes();
        let at = position.index(bytes.len());
        bytes[at] = byte;
        let Ok(text) = String::from_utf8(bytes) else { return Ok(()); };
        if let Ok(edited) = GuardianShare::from_json(&text) {
            let same = edited == GuardianShare::from_json(&original).unwrap();
            prop_assert!(same || edited.verify(&verifier).is_err(), "{}", text);
        }
    }
}
