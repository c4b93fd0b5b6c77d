//! Research eligibility: a researcher counts the patients whose HbA1c is in
//! the prediabetes band, learning no DID and no value, and counts each
//! patient and each credential once.

use hygeia_credentials::zk::hba1c::{hba1c_between, hba1c_claims};
use hygeia_credentials::zk::{
    respond, CommittedAttributeCredential, Criteria, EligibilityResponse, EnrolmentToken, Opening,
    PatientSecret, Tally, TrustedIssuers, ZkError,
};
use hygeia_identity::Keypair;
use serde_json::Value;

const LAB: &str = "did:web:lab.example";
const UNLISTED_LAB: &str = "did:web:unlisted-lab.example";
const RESEARCHER: &str = "did:web:research.example";
const STUDY: &str = "prediabetes-prevention-2025";
const NOW: u64 = 1_750_000_000;

fn lab_key() -> Keypair {
    Keypair::from_seed(&[1; 32])
}

fn unlisted_key() -> Keypair {
    Keypair::from_seed(&[8; 32])
}

fn issuers() -> TrustedIssuers {
    TrustedIssuers::new()
        .with(LAB, lab_key().public_key())
        .with(UNLISTED_LAB, unlisted_key().public_key())
}

fn criteria() -> Criteria {
    Criteria::new(
        STUDY,
        hba1c_between(57, 65).unwrap(),
        vec![LAB.into()],
        RESEARCHER,
    )
    .unwrap()
}

/// An eligibility-form credential: no holder DID.
fn credential(value: u64) -> (CommittedAttributeCredential, Opening) {
    let claims = hba1c_claims(LAB, value, 1_700_000_000, 1_800_000_000, None);
    CommittedAttributeCredential::issue(&lab_key(), &claims).unwrap()
}

fn over_the_wire(response: &EligibilityResponse) -> EligibilityResponse {
    EligibilityResponse::parse(response.to_json().as_bytes()).unwrap()
}

fn code(result: Result<impl std::fmt::Debug, ZkError>) -> &'static str {
    result.unwrap_err().code()
}

#[test]
fn the_tally_counts_qualifying_patients_once_and_reveals_nothing_else() {
    let criteria = Criteria::parse(criteria().to_json().as_bytes()).unwrap();
    let mut tally = Tally::new(criteria.clone(), issuers());

    let patients: Vec<(PatientSecret, u64)> = [59, 60, 64, 70, 52]
        .into_iter()
        .enumerate()
        .map(|(i, value)| (PatientSecret::from_bytes([i as u8 + 10; 32]), value))
        .collect();
    let mut expected_tokens = Vec::new();
    let mut responses = Vec::new();
    let mut values = Vec::new();
    for (secret, value) in &patients {
        let (credential, opening) = credential(*value);
        values.push(*value);
        match respond(&criteria, &credential, &opening, secret) {
            Ok(response) => {
                tally.add(&over_the_wire(&response), NOW).unwrap();
                expected_tokens.push(EnrolmentToken::derive(secret, STUDY));
                responses.push(response);
            }
            Err(err) => {
                assert_eq!(err.code(), "zk-value-out-of-range");
                assert!(!(57..65).contains(value));
            }
        }
    }
    assert_eq!(responses.len(), 3);

    // The same answer again, or the same patient with a fresh credential.
    assert_eq!(
        code(tally.add(&responses[0], NOW)),
        "eligibility-duplicate-token"
    );
    let (again, again_opening) = credential(61);
    let second = respond(&criteria, &again, &again_opening, &patients[0].0).unwrap();
    assert_eq!(code(tally.add(&second, NOW)), "eligibility-duplicate-token");

    let result = tally.result();
    assert_eq!(result.study_id, STUDY);
    assert_eq!(result.qualifying, 3);
    expected_tokens.sort();
    assert_eq!(result.tokens, expected_tokens);

    // What the researcher publishes: the study, a count and pseudonyms.
    let published = serde_json::to_value(&result).unwrap();
    let mut keys: Vec<&str> = published
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["qualifying", "study_id", "tokens"]);
    let mut numbers = Vec::new();
    let mut strings = Vec::new();
    collect(&published, &mut numbers, &mut strings);
    assert_eq!(numbers, [3]);
    for text in &strings {
        assert!(!text.contains("did:"), "{text}");
        assert!(text == STUDY || text.len() == 43, "{text}");
    }
    let text = published.to_string();
    assert!(!text.contains("did:") && !text.contains(LAB));
    for value in values {
        assert!(!numbers.contains(&value));
    }
}

#[test]
fn a_credential_is_counted_once_whoever_sends_it() {
    let criteria = criteria();
    let mut tally = Tally::new(criteria.clone(), issuers());
    let (credential, opening) = credential(60);
    let first = respond(&criteria, &credential, &opening, &PatientSecret::generate()).unwrap();
    tally.add(&first, NOW).unwrap();
    let second = respond(&criteria, &credential, &opening, &PatientSecret::generate()).unwrap();
    assert_eq!(
        code(tally.add(&second, NOW)),
        "eligibility-duplicate-credential"
    );
    assert_eq!(tally.result().qualifying, 1);
}

#[test]
fn a_token_cannot_be_moved_onto_another_proof() {
    let criteria = criteria();
    let mut tally = Tally::new(criteria.clone(), issuers());
    let (credential, opening) = credential(60);
    let response = respond(&criteria, &credential, &opening, &PatientSecret::generate()).unwrap();
    let mut json: Value = serde_json::from_str(&response.to_json()).unwrap();
    json["enrolment_token"] =
        Value::String(EnrolmentToken::derive(&PatientSecret::generate(), STUDY).to_string());
    let moved = EligibilityResponse::parse(json.to_string().as_bytes()).unwrap();
    assert_eq!(code(tally.add(&moved, NOW)), "zk-proof-invalid");
    assert_eq!(tally.result().qualifying, 0);
}

#[test]
fn answers_outside_the_criteria_are_refused() {
    let criteria = criteria();
    let mut tally = Tally::new(criteria.clone(), issuers());
    let secret = PatientSecret::generate();

    // A credential naming its holder would tell the researcher who it is.
    let holder = Keypair::from_seed(&[2; 32]).did();
    let claims = hba1c_claims(LAB, 60, 1_700_000_000, 1_800_000_000, Some(holder));
    let (named, named_opening) = CommittedAttributeCredential::issue(&lab_key(), &claims).unwrap();
    assert_eq!(
        code(respond(&criteria, &named, &named_opening, &secret)),
        "eligibility-holder-present"
    );

    // A lab the study does not accept (even though its key is known).
    let claims = hba1c_claims(UNLISTED_LAB, 60, 1_700_000_000, 1_800_000_000, None);
    let (unlisted, unlisted_opening) =
        CommittedAttributeCredential::issue(&unlisted_key(), &claims).unwrap();
    assert_eq!(
        code(respond(&criteria, &unlisted, &unlisted_opening, &secret)),
        "eligibility-issuer-not-accepted"
    );
    let lenient = Criteria {
        accepted_issuers: vec![LAB.into(), UNLISTED_LAB.into()],
        ..criteria.clone()
    };
    let response = respond(&lenient, &unlisted, &unlisted_opening, &secret).unwrap();
    assert_eq!(
        code(tally.add(&response, NOW)),
        "eligibility-issuer-not-accepted"
    );

    // A patient outside the band answering a wider range of their own making.
    let (high, high_opening) = credential(70);
    let widened = Criteria {
        requirement: hba1c_between(57, 75).unwrap(),
        ..criteria.clone()
    };
    let response = respond(&widened, &high, &high_opening, &secret).unwrap();
    assert_eq!(code(tally.add(&response, NOW)), "zk-wrong-predicate");

    // An answer to another study, or to the same study with another nonce.
    let (good, good_opening) = credential(60);
    let other_study = Criteria {
        study_id: "other-study".into(),
        ..criteria.clone()
    };
    let response = respond(&other_study, &good, &good_opening, &secret).unwrap();
    assert_eq!(code(tally.add(&response, NOW)), "eligibility-wrong-study");
    let other_nonce = Criteria {
        challenge: hygeia_credentials::zk::Challenge::random(RESEARCHER),
        ..criteria.clone()
    };
    let response = respond(&other_nonce, &good, &good_opening, &secret).unwrap();
    assert_eq!(code(tally.add(&response, NOW)), "zk-wrong-challenge");

    // An expired credential.
    let response = respond(&criteria, &good, &good_opening, &secret).unwrap();
    assert_eq!(code(tally.add(&response, 1_800_000_000)), "zk-expired");

    assert_eq!(tally.result().qualifying, 0);
    tally.add(&response, NOW).unwrap();
    assert_eq!(tally.result().qualifying, 1);
}

#[test]
fn tokens_do_not_link_studies() {
    let secret = PatientSecret::from_bytes([3; 32]);
    let a = EnrolmentToken::derive(&secret, "study-a");
    let b = EnrolmentToken::derive(&secret, "study-b");
    assert_ne!(a, b);
    assert_eq!(a, EnrolmentToken::derive(&secret, "study-a"));
}

#[test]
fn malformed_responses_are_refused() {
    let criteria = criteria();
    let (credential, opening) = credential(60);
    let response = respond(&criteria, &credential, &opening, &PatientSecret::generate()).unwrap();
    let json = response.to_json();
    let token = response.enrolment_token().to_string();
    for bad in [
        json.replace(&token, "AAAA"),
        json.replacen('{', "{\"holder\":\"x\",", 1),
        json.replace(STUDY, ""),
        "null".to_string(),
    ] {
        assert_eq!(
            code(EligibilityResponse::parse(bad.as_bytes())),
            "zk-malformed",
            "{bad:.60}"
        );
    }
}

fn collect(value: &Value, numbers: &mut Vec<u64>, strings: &mut Vec<String>) {
    match value {
        Value::Number(n) => numbers.push(n.as_u64().unwrap()),
        Value::String(s) => strings.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| collect(v, numbers, strings)),
        Value::Object(map) => map.values().for_each(|v| collect(v, numbers, strings)),
        _ => {}
    }
}
