//! Range presentations end to end: issue, prove, serialize, parse, verify —
//! and every way of reusing or altering a presentation is refused.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hygeia_credentials::zk::age::{
    at_least_age_requirement, birth_date_claims, prove_at_least_age,
};
use hygeia_credentials::zk::commitment::CREDENTIAL_SIGNING_DOMAIN;
use hygeia_credentials::zk::hba1c::{hba1c_below, hba1c_between, hba1c_claims, parse_percent_x10};
use hygeia_credentials::zk::{
    prove, verify, verify_fresh, Challenge, CommittedAttributeCredential, NonceBook, Opening,
    RangePresentation, Requirement, TrustedIssuers, ZkError,
};
use hygeia_identity::Keypair;
use serde_json::Value;
use time::macros::date;

const LAB: &str = "did:web:lab.example";
const OTHER_LAB: &str = "did:web:other-lab.example";
const CARE_TEAM: &str = "did:web:care.example";
const ISSUED: u64 = 1_700_000_000;
const EXPIRES: u64 = 1_800_000_000;
const NOW: u64 = 1_750_000_000;

fn lab_key() -> Keypair {
    Keypair::from_seed(&[1; 32])
}

fn other_lab_key() -> Keypair {
    Keypair::from_seed(&[4; 32])
}

fn patient_key() -> Keypair {
    Keypair::from_seed(&[2; 32])
}

fn issuers() -> TrustedIssuers {
    TrustedIssuers::new()
        .with(LAB, lab_key().public_key())
        .with(OTHER_LAB, other_lab_key().public_key())
}

fn hba1c(percent: &str) -> (CommittedAttributeCredential, Opening) {
    let value = parse_percent_x10(percent).unwrap();
    let claims = hba1c_claims(LAB, value, ISSUED, EXPIRES, Some(patient_key().did()));
    CommittedAttributeCredential::issue(&lab_key(), &claims).unwrap()
}

fn below_7() -> Requirement {
    hba1c_below(70).unwrap()
}

fn present(percent: &str, requirement: &Requirement, challenge: &Challenge) -> RangePresentation {
    let (credential, opening) = hba1c(percent);
    prove(
        &credential,
        &opening,
        requirement.range,
        challenge,
        Some(&patient_key()),
    )
    .unwrap()
}

fn code(result: Result<impl std::fmt::Debug, ZkError>) -> &'static str {
    result.unwrap_err().code()
}

/// Parse, edit and re-serialize a presentation's JSON.
fn edit(presentation: &RangePresentation, change: impl FnOnce(&mut Value)) -> RangePresentation {
    let mut json: Value = serde_json::from_str(&presentation.to_json()).unwrap();
    change(&mut json);
    RangePresentation::parse(json.to_string().as_bytes()).unwrap()
}

/// Re-signs the credential inside a presentation's JSON with `key`, as an
/// issuer (or a forger holding `key`) would.
fn resign(json: &mut Value, key: &Keypair) {
    let credential = json["credential"].as_object_mut().unwrap();
    credential.remove("signature");
    let mut message = CREDENTIAL_SIGNING_DOMAIN.to_vec();
    message.extend(serde_json_canonicalizer::to_vec(&credential).unwrap());
    let signature = URL_SAFE_NO_PAD.encode(key.sign(&message).to_bytes());
    credential.insert("signature".into(), Value::String(signature));
}

#[test]
fn hba1c_6_4_is_proved_below_7_0() {
    let challenge = Challenge::random(CARE_TEAM);
    let presentation = present("6.4", &below_7(), &challenge);
    let wire = presentation.to_json();
    let parsed = RangePresentation::parse(wire.as_bytes()).unwrap();
    let verified = verify(&parsed, &issuers(), &below_7(), &challenge, NOW).unwrap();
    assert_eq!(verified.issuer(), LAB);
    assert_eq!(verified.attribute(), "hba1c-percent-x10");
    assert_eq!(verified.loinc(), Some("4548-4"));
    assert_eq!(verified.holder(), Some(&patient_key().did()));
    assert_eq!(verified.verifier(), CARE_TEAM);
    assert_eq!(parsed.proof_bytes().len(), 480);
    // The value is in neither the presentation nor what the verifier keeps.
    let kept = serde_json::to_string(&verified).unwrap();
    assert!(
        !kept.contains("64") && !wire.contains("\"value\""),
        "{kept}"
    );
}

#[test]
fn a_two_sided_proof_is_under_a_kibibyte() {
    let requirement = hba1c_between(57, 65).unwrap();
    let challenge = Challenge::random(CARE_TEAM);
    let presentation = present("6.0", &requirement, &challenge);
    verify(&presentation, &issuers(), &requirement, &challenge, NOW).unwrap();
    assert_eq!(presentation.proof_bytes().len(), 544);
    assert!(presentation.to_json().len() < 2048);
}

#[test]
fn the_holder_cannot_prove_a_false_range() {
    let challenge = Challenge::random(CARE_TEAM);
    for percent in ["7.0", "7.1", "12.0"] {
        let (credential, opening) = hba1c(percent);
        let result = prove(
            &credential,
            &opening,
            below_7().range,
            &challenge,
            Some(&patient_key()),
        );
        assert_eq!(code(result), "zk-value-out-of-range", "{percent}");
    }
    let (credential, opening) = hba1c("5.6");
    let prediabetes = hba1c_between(57, 65).unwrap().range;
    assert_eq!(
        code(prove(
            &credential,
            &opening,
            prediabetes,
            &challenge,
            Some(&patient_key())
        )),
        "zk-value-out-of-range"
    );
}

#[test]
fn age_18_holds_on_the_birthday_and_not_the_day_before() {
    let patient = patient_key();
    let claims = birth_date_claims(
        "did:web:registry.example",
        date!(2007 - 06 - 15),
        ISSUED,
        EXPIRES,
        Some(patient.did()),
    )
    .unwrap();
    let registry = Keypair::from_seed(&[6; 32]);
    let (credential, opening) = CommittedAttributeCredential::issue(&registry, &claims).unwrap();
    let issuers = TrustedIssuers::new().with("did:web:registry.example", registry.public_key());
    let challenge = Challenge::random("did:web:pharmacy.example");

    let birthday = date!(2025 - 06 - 15);
    let presentation = prove_at_least_age(
        &credential,
        &opening,
        18,
        birthday,
        &challenge,
        Some(&patient),
    )
    .unwrap();
    let requirement = at_least_age_requirement(18, birthday).unwrap();
    verify(&presentation, &issuers, &requirement, &challenge, NOW).unwrap();

    let day_before = date!(2025 - 06 - 14);
    let result = prove_at_least_age(
        &credential,
        &opening,
        18,
        day_before,
        &challenge,
        Some(&patient),
    );
    assert_eq!(code(result), "zk-value-out-of-range");
    // Nor does the birthday's proof pass for the day before.
    let requirement = at_least_age_requirement(18, day_before).unwrap();
    assert_eq!(
        code(verify(
            &presentation,
            &issuers,
            &requirement,
            &challenge,
            NOW
        )),
        "zk-wrong-predicate"
    );
}

/// Unbound credentials, so nothing but the proof stands in the way.
#[test]
fn a_proof_for_another_value_is_refused() {
    let challenge = Challenge::random(CARE_TEAM);
    let unbound = |value| {
        let claims = hba1c_claims(LAB, value, ISSUED, EXPIRES, None);
        let (credential, opening) =
            CommittedAttributeCredential::issue(&lab_key(), &claims).unwrap();
        prove(&credential, &opening, below_7().range, &challenge, None).unwrap()
    };
    let a = unbound(64);
    let b = unbound(50);
    let b_proof = Value::String(URL_SAFE_NO_PAD.encode(b.proof_bytes()));
    let a_with_b_proof = edit(&a, |json| json["proof"] = b_proof);
    assert_eq!(
        code(verify(
            &a_with_b_proof,
            &issuers(),
            &below_7(),
            &challenge,
            NOW
        )),
        "zk-proof-invalid"
    );
    let b_credential: Value = serde_json::from_str(&b.credential().to_json()).unwrap();
    let a_proof_on_b = edit(&a, |json| json["credential"] = b_credential);
    assert_eq!(
        code(verify(
            &a_proof_on_b,
            &issuers(),
            &below_7(),
            &challenge,
            NOW
        )),
        "zk-proof-invalid"
    );

    // Holder-bound: the holder's signature covers credential and proof.
    let c = present("6.4", &below_7(), &challenge);
    let d = present("5.0", &below_7(), &challenge);
    let d_proof = Value::String(URL_SAFE_NO_PAD.encode(d.proof_bytes()));
    let c_with_d_proof = edit(&c, |json| json["proof"] = d_proof);
    assert_eq!(
        code(verify(
            &c_with_d_proof,
            &issuers(),
            &below_7(),
            &challenge,
            NOW
        )),
        "zk-bad-holder-signature"
    );
}

#[test]
fn another_issuer_is_refused() {
    let challenge = Challenge::random(CARE_TEAM);
    let presentation = present("6.4", &below_7(), &challenge);
    // Re-signed by a key that is not the lab's.
    let forged = edit(&presentation, |json| {
        resign(json, &Keypair::from_seed(&[9; 32]))
    });
    assert_eq!(
        code(verify(&forged, &issuers(), &below_7(), &challenge, NOW)),
        "zk-bad-issuer-signature"
    );
    // Claimed by another trusted lab, validly signed by it: the proof was
    // made for the first lab's credential, and says so.
    let moved = edit(&presentation, |json| {
        json["credential"]["issuer"] = Value::String(OTHER_LAB.into());
        resign(json, &other_lab_key());
    });
    assert_eq!(moved.credential().issuer(), OTHER_LAB);
    assert!(matches!(
        code(verify(&moved, &issuers(), &below_7(), &challenge, NOW)),
        "zk-bad-holder-signature" | "zk-proof-invalid"
    ));
    // An issuer the verifier does not know.
    let unknown = TrustedIssuers::new().with(OTHER_LAB, other_lab_key().public_key());
    assert_eq!(
        code(verify(&presentation, &unknown, &below_7(), &challenge, NOW)),
        "zk-untrusted-issuer"
    );
}

#[test]
fn another_range_is_refused() {
    let challenge = Challenge::random(CARE_TEAM);
    let presentation = present("6.4", &below_7(), &challenge);
    let below_6_5 = hba1c_below(65).unwrap();
    assert_eq!(
        code(verify(
            &presentation,
            &issuers(),
            &below_6_5,
            &challenge,
            NOW
        )),
        "zk-wrong-predicate"
    );
    // Relabelled as a proof of the other range: the transcript disagrees.
    let relabelled = edit(&presentation, |json| {
        json["range"]["max_exclusive"] = 65.into()
    });
    assert!(matches!(
        code(verify(&relabelled, &issuers(), &below_6_5, &challenge, NOW)),
        "zk-bad-holder-signature" | "zk-proof-invalid"
    ));
}

#[test]
fn another_attribute_is_refused() {
    let challenge = Challenge::random(CARE_TEAM);
    let presentation = present("6.4", &below_7(), &challenge);
    let other = Requirement::new("ldl-mg-dl", None, below_7().range).unwrap();
    assert_eq!(
        code(verify(&presentation, &issuers(), &other, &challenge, NOW)),
        "zk-wrong-attribute"
    );
    let other_code =
        Requirement::new("hba1c-percent-x10", Some("17856-6"), below_7().range).unwrap();
    assert_eq!(
        code(verify(
            &presentation,
            &issuers(),
            &other_code,
            &challenge,
            NOW
        )),
        "zk-wrong-attribute"
    );
}

#[test]
fn another_nonce_or_verifier_is_refused() {
    let challenge = Challenge::random(CARE_TEAM);
    let presentation = present("6.4", &below_7(), &challenge);
    let other_nonce = Challenge {
        nonce: [0x55; 32],
        ..challenge.clone()
    };
    let other_verifier = Challenge {
        verifier: "did:web:insurer.example".into(),
        ..challenge.clone()
    };
    for other in [&other_nonce, &other_verifier] {
        assert_eq!(
            code(verify(&presentation, &issuers(), &below_7(), other, NOW)),
            "zk-wrong-challenge"
        );
        // Rewritten to claim the other challenge: the transcript disagrees.
        let rewritten = edit(&presentation, |json| {
            json["challenge"] = serde_json::to_value(other).unwrap();
        });
        assert!(matches!(
            code(verify(&rewritten, &issuers(), &below_7(), other, NOW)),
            "zk-bad-holder-signature" | "zk-proof-invalid"
        ));
    }
}

/// Without a holder signature in the way, the proof's transcript alone must
/// refuse a rewritten nonce, verifier, range or issuer.
#[test]
fn the_transcript_binds_the_statement_without_holder_binding() {
    let claims = hba1c_claims(LAB, 64, ISSUED, EXPIRES, None);
    let (credential, opening) = CommittedAttributeCredential::issue(&lab_key(), &claims).unwrap();
    let challenge = Challenge::random(CARE_TEAM);
    let presentation = prove(&credential, &opening, below_7().range, &challenge, None).unwrap();
    verify(&presentation, &issuers(), &below_7(), &challenge, NOW).unwrap();

    let other = Challenge {
        nonce: [0x55; 32],
        ..challenge.clone()
    };
    let rewritten = edit(&presentation, |json| {
        json["challenge"] = serde_json::to_value(&other).unwrap()
    });
    assert_eq!(
        code(verify(&rewritten, &issuers(), &below_7(), &other, NOW)),
        "zk-proof-invalid"
    );

    let other = Challenge {
        verifier: "did:web:insurer.example".into(),
        ..challenge.clone()
    };
    let rewritten = edit(&presentation, |json| {
        json["challenge"] = serde_json::to_value(&other).unwrap()
    });
    assert_eq!(
        code(verify(&rewritten, &issuers(), &below_7(), &other, NOW)),
        "zk-proof-invalid"
    );

    let below_6_5 = hba1c_below(65).unwrap();
    let rewritten = edit(&presentation, |json| {
        json["range"]["max_exclusive"] = 65.into()
    });
    assert_eq!(
        code(verify(&rewritten, &issuers(), &below_6_5, &challenge, NOW)),
        "zk-proof-invalid"
    );

    let moved = edit(&presentation, |json| {
        json["credential"]["issuer"] = Value::String(OTHER_LAB.into());
        resign(json, &other_lab_key());
    });
    assert_eq!(
        code(verify(&moved, &issuers(), &below_7(), &challenge, NOW)),
        "zk-proof-invalid"
    );

    let (other_credential, _) = CommittedAttributeCredential::issue(&lab_key(), &claims).unwrap();
    let other_credential: Value = serde_json::from_str(&other_credential.to_json()).unwrap();
    let swapped = edit(&presentation, |json| json["credential"] = other_credential);
    assert_eq!(
        code(verify(&swapped, &issuers(), &below_7(), &challenge, NOW)),
        "zk-proof-invalid"
    );
}

#[test]
fn a_nonce_is_good_once() {
    let mut book = NonceBook::new(CARE_TEAM, 300);
    let challenge = book.issue(NOW).unwrap();
    let presentation = present("6.4", &below_7(), &challenge);
    verify_fresh(&presentation, &issuers(), &below_7(), &mut book, NOW + 1).unwrap();
    assert_eq!(
        code(verify_fresh(
            &presentation,
            &issuers(),
            &below_7(),
            &mut book,
            NOW + 2
        )),
        "zk-nonce-reused"
    );

    let unsolicited = present("6.4", &below_7(), &Challenge::random(CARE_TEAM));
    assert_eq!(
        code(verify_fresh(
            &unsolicited,
            &issuers(),
            &below_7(),
            &mut book,
            NOW + 2
        )),
        "zk-nonce-unknown"
    );

    let late = book.issue(NOW).unwrap();
    let presentation = present("6.4", &below_7(), &late);
    assert_eq!(
        code(verify_fresh(
            &presentation,
            &issuers(),
            &below_7(),
            &mut book,
            NOW + 300
        )),
        "zk-nonce-expired"
    );
}

#[test]
fn an_expired_credential_is_refused() {
    let challenge = Challenge::random(CARE_TEAM);
    let presentation = present("6.4", &below_7(), &challenge);
    assert_eq!(
        code(verify(
            &presentation,
            &issuers(),
            &below_7(),
            &challenge,
            EXPIRES
        )),
        "zk-expired"
    );
    assert_eq!(
        code(verify(
            &presentation,
            &issuers(),
            &below_7(),
            &challenge,
            ISSUED - 1
        )),
        "zk-not-yet-valid"
    );
}

#[test]
fn malformed_presentations_are_refused() {
    let challenge = Challenge::random(CARE_TEAM);
    let presentation = present("6.4", &below_7(), &challenge);
    let json = presentation.to_json();
    let short_proof = URL_SAFE_NO_PAD.encode(&presentation.proof_bytes()[32..]);
    let cases = [
        json.replace("hygeia-range-presentation-v1", "other"),
        json.replace(
            &URL_SAFE_NO_PAD.encode(presentation.proof_bytes()),
            &short_proof,
        ),
        json.replacen('{', "{\"extra\":true,", 1),
        json.replace("\"max_exclusive\":70", "\"max_exclusive\":0"),
        json.replace("\"max_exclusive\":70", "\"max_exclusive\":70.0"),
        " ".repeat(9000),
        String::new(),
    ];
    for case in cases {
        assert_eq!(
            code(RangePresentation::parse(case.as_bytes())),
            "zk-malformed",
            "{case:.80}"
        );
    }
}

mod tampering {
    use super::*;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    fn fixture(holder_bound: bool) -> &'static (String, Challenge) {
        static BOUND: OnceLock<(String, Challenge)> = OnceLock::new();
        static UNBOUND: OnceLock<(String, Challenge)> = OnceLock::new();
        let cell = if holder_bound { &BOUND } else { &UNBOUND };
        cell.get_or_init(|| {
            let challenge = Challenge::random(CARE_TEAM);
            let requirement = hba1c_between(57, 65).unwrap();
            let holder = holder_bound.then(patient_key);
            let claims = hba1c_claims(LAB, 60, ISSUED, EXPIRES, holder.as_ref().map(Keypair::did));
            let (credential, opening) =
                CommittedAttributeCredential::issue(&lab_key(), &claims).unwrap();
            let presentation = prove(
                &credential,
                &opening,
                requirement.range,
                &challenge,
                holder.as_ref(),
            )
            .unwrap();
            (presentation.to_json(), challenge)
        })
    }

    fn accepted(bytes: &[u8], challenge: &Challenge) -> bool {
        let requirement = hba1c_between(57, 65).unwrap();
        RangePresentation::parse(bytes)
            .and_then(|p| verify(&p, &issuers(), &requirement, challenge, NOW))
            .is_ok()
    }

    #[test]
    fn the_untouched_fixtures_verify() {
        for bound in [true, false] {
            let (json, challenge) = fixture(bound);
            assert!(accepted(json.as_bytes(), challenge));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn changing_any_byte_is_refused(
            bound in any::<bool>(),
            index in any::<proptest::sample::Index>(),
            mask in 1u8..=255,
        ) {
            let (json, challenge) = fixture(bound);
            let mut bytes = json.clone().into_bytes();
            let i = index.index(bytes.len());
            bytes[i] ^= mask;
            prop_assert!(!accepted(&bytes, challenge), "byte {} ^ {:#x} accepted", i, mask);
        }

        #[test]
        fn arbitrary_bytes_never_parse_into_an_accepted_presentation(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let (_, challenge) = fixture(false);
            prop_assert!(!accepted(&bytes, challenge));
        }
    }
}
