//! Any change to a card's JWS, or to the digits of its QR code, is refused.

use hygeia_credentials::shc::{decode_qr, verify, Jwks};
use proptest::prelude::*;

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/vectors/smart-health-cards"
);
const NOW: i64 = 1_700_000_000;
const JWS_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";

fn jws() -> String {
    std::fs::read_to_string(format!("{DIR}/example-00-d-jws.txt"))
        .unwrap()
        .trim()
        .to_owned()
}

fn qr() -> String {
    std::fs::read_to_string(format!("{DIR}/example-00-f-qr-code-numeric-value-0.txt"))
        .unwrap()
        .trim()
        .to_owned()
}

fn trusted(_iss: &str) -> Option<Jwks> {
    let jwks = std::fs::read(format!("{DIR}/issuer/.well-known/jwks.json")).unwrap();
    Jwks::from_json(&jwks).ok()
}

#[test]
fn the_untampered_card_verifies() {
    assert!(verify(&jws(), &trusted, NOW).is_ok());
    assert_eq!(decode_qr(&[&qr()]).unwrap(), jws());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_replaced_character_is_refused(position in any::<prop::sample::Index>(), pick in any::<prop::sample::Index>()) {
        let original = jws();
        let mut bytes = original.clone().into_bytes();
        let at = position.index(bytes.len());
        let mut replacement = *pick.get(JWS_ALPHABET);
        if replacement == bytes[at] {
            replacement = if replacement == b'A' { b'B' } else { b'A' };
        }
        bytes[at] = replacement;
        let tampered = String::from_utf8(bytes).unwrap();
        prop_assert!(verify(&tampered, &trusted, NOW).is_err(), "accepted a change at {at}");
    }

    #[test]
    fn any_insertion_or_removal_is_refused(position in any::<prop::sample::Index>(), pick in any::<prop::sample::Index>(), insert in any::<bool>()) {
        let mut tampered = jws();
        let at = position.index(tampered.len());
        if insert {
            tampered.insert(at, char::from(*pick.get(JWS_ALPHABET)));
        } else {
            tampered.remove(at);
        }
        prop_assert!(verify(&tampered, &trusted, NOW).is_err());
    }

    #[test]
    fn any_changed_qr_digit_is_refused(position in any::<prop::sample::Index>(), digit in 0u8..9) {
        let original = qr();
        let mut bytes = original.into_bytes();
        let at = "shc:/".len() + position.index(bytes.len() - "shc:/".len());
        // Any digit but the one already there.
        let new = b'0' + (bytes[at] - b'0' + 1 + digit) % 10;
        bytes[at] = new;
        let tampered = String::from_utf8(bytes).unwrap();
        let accepted = decode_qr(&[&tampered])
            .ok()
            .and_then(|jws| verify(&jws, &trusted, NOW).ok());
        prop_assert!(accepted.is_none(), "accepted a digit change at {at}");
    }
}
