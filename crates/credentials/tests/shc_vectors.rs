//! SMART Health Cards against the spec's published examples
//! (vectors/smart-health-cards, README section 5): QR text → JWS, JWS →
//! verified card, `.smart-health-card` files, and cards re-issued with the
//! published test-only issuer key.

use hygeia_credentials::shc::{
    bundle_from_resources, decode_qr, issue, parse_file, verify, IssuerKey, Jwks, ShcError,
    HEALTH_CARD_TYPE,
};
use serde_json::Value;

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/vectors/smart-health-cards"
);
const EXAMPLES: [&str; 3] = ["00", "02", "03"];
const ISS: &str = "https://spec.smarthealth.cards/examples/issuer";
const SIGNING_KID: &str = "3Kfdg-XwP-7gXyywtUfUADwBumDOPKMQx-iELL11W9s";
/// After every example's `nbf` (2023-06-22) and before example 03's
/// `exp` (2024-06-21).
const NOW: i64 = 1_700_000_000;

fn read(name: &str) -> String {
    std::fs::read_to_string(format!("{DIR}/{name}")).unwrap()
}

fn json(name: &str) -> Value {
    serde_json::from_str(&read(name)).unwrap()
}

fn jws(example: &str) -> String {
    read(&format!("example-{example}-d-jws.txt"))
        .trim()
        .to_owned()
}

fn qr_texts(example: &str) -> Vec<String> {
    (0..)
        .map(|i| format!("{DIR}/example-{example}-f-qr-code-numeric-value-{i}.txt"))
        .map_while(|path| std::fs::read_to_string(path).ok())
        .collect()
}

fn published_jwks() -> Jwks {
    Jwks::from_json(read("issuer/.well-known/jwks.json").as_bytes()).unwrap()
}

fn trust_example_issuer(iss: &str) -> Option<Jwks> {
    (iss == ISS).then(published_jwks)
}

fn private_keys() -> Vec<Value> {
    json("issuer/issuer.jwks.private.json")["keys"]
        .as_array()
        .unwrap()
        .clone()
}

fn code<T: std::fmt::Debug>(result: Result<T, ShcError>) -> &'static str {
    result.unwrap_err().code()
}

#[test]
fn qr_texts_decode_to_the_jws() {
    for example in EXAMPLES {
        let texts = qr_texts(example);
        assert!(!texts.is_empty());
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        assert_eq!(decode_qr(&refs).unwrap(), jws(example), "example {example}");
    }
    assert_eq!(qr_texts("02").len(), 3);
}

#[test]
fn multi_part_qr_texts_may_come_in_any_order() {
    let texts = qr_texts("02");
    let order = [&texts[2], &texts[0], &texts[1]].map(String::as_str);
    assert_eq!(decode_qr(&order).unwrap(), jws("02"));
}

#[test]
fn published_cards_verify() {
    for example in EXAMPLES {
        let card = verify(&jws(example), &trust_example_issuer, NOW).unwrap();
        let payload = json(&format!("example-{example}-c-jws-payload-minified.json"));
        assert_eq!(card.iss(), ISS);
        assert_eq!(card.kid(), SIGNING_KID);
        assert_eq!(card.nbf(), payload["nbf"].as_f64().unwrap());
        assert_eq!(card.exp(), payload["exp"].as_f64());
        assert_eq!(card.rid(), payload["vc"]["rid"].as_str());
        assert_eq!(card.types(), [HEALTH_CARD_TYPE]);
        assert_eq!(card.fhir_version(), "4.0.1");
        assert_eq!(
            card.fhir_bundle(),
            &payload["vc"]["credentialSubject"]["fhirBundle"]
        );
        assert_eq!(
            card.fhir_bundle(),
            &json(&format!("example-{example}-a-fhirBundle.json"))
        );
    }
}

#[test]
fn published_files_hold_the_jws() {
    for example in EXAMPLES {
        let file = read(&format!("example-{example}-e-file.smart-health-card"));
        assert_eq!(parse_file(file.as_bytes()).unwrap(), [jws(example)]);
    }
}

#[test]
fn the_published_key_set() {
    let jwks = published_jwks();
    // The plain key and the one with an X.509 chain; both kids are their
    // RFC 7638 thumbprints (checked on import).
    assert_eq!(jwks.keys().len(), 2);
    assert!(jwks.get(SIGNING_KID).is_some());
    assert!(jwks
        .get("EBKOr72QQDcTBUuVzAzkfBTGew0ZA16GuWty64nS-sw")
        .is_some());
}

#[test]
fn the_private_key_set_is_refused_as_a_public_one() {
    let private = read("issuer/issuer.jwks.private.json");
    assert_eq!(
        code(Jwks::from_json(private.as_bytes())),
        "shc-private-key-published"
    );
}

#[test]
fn reissued_cards_verify_with_the_published_keys() {
    for jwk in private_keys() {
        let Ok(key) = IssuerKey::from_private_jwk(&jwk) else {
            // The encryption key (use: enc, alg: ECDH-ES) cannot sign.
            assert_eq!(jwk["use"], "enc");
            assert_eq!(code(IssuerKey::from_private_jwk(&jwk)), "shc-malformed-jwk");
            continue;
        };
        assert_eq!(key.kid(), jwk["kid"]);
        for example in EXAMPLES {
            let bundle = json(&format!("example-{example}-a-fhirBundle.json"));
            let card = issue(&bundle, &[], ISS, 1_687_450_764, &key).unwrap();
            let verified = verify(card.jws(), &trust_example_issuer, NOW).unwrap();
            assert_eq!(verified.kid(), key.kid());
            assert_eq!(verified.fhir_bundle(), &bundle);
            assert_eq!(verified.nbf(), 1_687_450_764.0);

            let texts = card.to_qr_numeric();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            assert_eq!(decode_qr(&refs).unwrap(), card.jws());
            assert_eq!(texts.len() == 1, card.jws().len() <= 1195);
            assert_eq!(
                parse_file(card.to_file_json().as_bytes()).unwrap(),
                [card.jws()]
            );
        }
    }
}

#[test]
fn the_resource_list_of_a_minified_example_rebuilds_the_same_bundle() {
    for example in EXAMPLES {
        let bundle = json(&format!("example-{example}-a-fhirBundle.json"));
        let resources: Vec<Value> = bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| entry["resource"].clone())
            .collect();
        let rebuilt = bundle_from_resources(resources);
        assert_eq!(rebuilt, bundle, "example {example}");
    }
}

#[test]
fn example_03_has_expired_by_now() {
    // Its exp is 2024-06-21; 2026 is later.
    assert_eq!(
        code(verify(&jws("03"), &trust_example_issuer, 1_780_000_000)),
        "shc-expired"
    );
    assert!(verify(&jws("00"), &trust_example_issuer, 1_780_000_000).is_ok());
}

#[test]
fn a_card_used_before_its_issuance_is_not_yet_valid() {
    assert_eq!(
        code(verify(&jws("00"), &trust_example_issuer, 1_600_000_000)),
        "shc-not-yet-valid"
    );
}

#[test]
fn an_untrusted_issuer_is_refused() {
    assert_eq!(
        code(verify(&jws("00"), &|_| None, NOW)),
        "shc-unknown-issuer"
    );
}

#[test]
fn a_key_set_without_the_signing_key_is_refused() {
    let other = IssuerKey::generate();
    assert_eq!(
        code(verify(&jws("00"), &|_| Some(other.jwks()), NOW)),
        "shc-unknown-key"
    );
}

#[test]
fn a_payload_swapped_in_from_another_card_is_a_bad_signature() {
    let (header, rest) = jws("00")
        .split_once('.')
        .map(|(h, r)| (h.to_owned(), r.to_owned()))
        .unwrap();
    let signature = rest.rsplit_once('.').unwrap().1.to_owned();
    let other_payload = jws("03").split('.').nth(1).unwrap().to_owned();
    let spliced = format!("{header}.{other_payload}.{signature}");
    assert_eq!(
        code(verify(&spliced, &trust_example_issuer, NOW)),
        "shc-bad-signature"
    );
}

#[test]
fn damaged_qr_texts_are_refused() {
    let single = qr_texts("00").remove(0);
    let single = single.trim();
    let odd = &single[..single.len() - 1];
    let high_pair = format!("shc:/78{}", &single["shc:/".len() + 2..]);
    let letters = single.replacen('5', "S", 1);
    let no_prefix = &single["shc:/".len()..];
    for text in [odd, high_pair.as_str(), letters.as_str(), no_prefix] {
        assert_eq!(code(decode_qr(&[text])), "shc-malformed-qr");
    }

    let parts = qr_texts("02");
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    for broken in [
        vec![refs[0], refs[1]],
        vec![refs[0], refs[1], refs[1]],
        vec![refs[0], refs[2], refs[1], refs[1]],
        vec![refs[0], refs[1], single],
        vec![refs[1]],
    ] {
        assert_eq!(code(decode_qr(&broken)), "shc-malformed-qr");
    }
}

#[test]
fn a_damaged_jws_is_refused() {
    let jws = jws("00");
    assert_eq!(
        code(verify(
            &jws.replacen('.', "", 1),
            &trust_example_issuer,
            NOW
        )),
        "shc-malformed-jws"
    );
    assert_eq!(
        code(verify(&format!("{jws}="), &trust_example_issuer, NOW)),
        "shc-malformed-jws"
    );
    let (head, _) = jws.rsplit_once('.').unwrap();
    assert_eq!(
        code(verify(&format!("{head}.AAAA"), &trust_example_issuer, NOW)),
        "shc-malformed-jws"
    );
}
