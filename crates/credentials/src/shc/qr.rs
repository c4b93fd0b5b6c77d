//! The QR text form of a card: `shc:/` then two decimal digits per JWS
//! character (its code minus 45, the code of `-`), optionally split into
//! numbered parts `shc:/<part>/<count>/...` (a deprecated form that
//! readers must still accept, with parts scanned in any order).

use super::error::ShcError;
use super::MAX_JWS_LEN;

/// The URI scheme prefix every health card QR text starts with.
pub const QR_PREFIX: &str = "shc:/";
/// The longest JWS that fits a single version 22 QR code at error
/// correction level L.
pub const SINGLE_QR_MAX_JWS_LEN: usize = 1195;
/// The longest JWS part in one QR code of a multi-part card.
pub const QR_CHUNK_MAX_JWS_LEN: usize = 1191;

/// `ord(c) - 45` ranges over 0..=77 for the JWS alphabet (`-` to `z`).
const FIRST_CHAR: u8 = b'-';
const LAST_CHAR: u8 = b'z';
const MAX_PAIR: u8 = LAST_CHAR - FIRST_CHAR;

/// The QR texts for a JWS: one when it fits a single code, otherwise
/// parts of balanced length. Refuses characters outside the range a
/// compact JWS can contain.
pub fn encode_qr(jws: &str) -> Result<Vec<String>, ShcError> {
    if let Some(bad) = jws.bytes().find(|b| !(FIRST_CHAR..=LAST_CHAR).contains(b)) {
        return Err(ShcError::MalformedJws(format!(
            "character {:?} cannot appear in a JWS",
            char::from(bad)
        )));
    }
    Ok(encode_checked(jws))
}

/// [`encode_qr`] for text already known to be in the JWS alphabet.
pub(crate) fn encode_checked(jws: &str) -> Vec<String> {
    let bytes = jws.as_bytes();
    if bytes.len() <= SINGLE_QR_MAX_JWS_LEN {
        let mut text = String::with_capacity(QR_PREFIX.len() + 2 * bytes.len());
        text.push_str(QR_PREFIX);
        push_digits(&mut text, bytes);
        return vec![text];
    }
    let count = bytes.len().div_ceil(QR_CHUNK_MAX_JWS_LEN);
    // Balanced parts: the first `len % count` parts get one more character.
    let (base, longer) = (bytes.len() / count, bytes.len() % count);
    let mut parts = Vec::with_capacity(count);
    let mut start = 0;
    for index in 0..count {
        let len = base + usize::from(index < longer);
        let mut text = format!("{QR_PREFIX}{}/{count}/", index + 1);
        push_digits(&mut text, &bytes[start..start + len]);
        parts.push(text);
        start += len;
    }
    parts
}

fn push_digits(text: &mut String, bytes: &[u8]) {
    for &byte in bytes {
        let value = byte.saturating_sub(FIRST_CHAR);
        text.push(char::from(b'0' + value / 10 % 10));
        text.push(char::from(b'0' + value % 10));
    }
}

/// Reassembles the JWS from scanned QR texts: one unnumbered text, or every
/// part `1..=n` of a numbered set exactly once, in any order.
///
/// Surrounding whitespace is ignored and the scheme is matched without
/// regard to case (URI schemes are case-insensitive); everything else must
/// be exact.
pub fn decode_qr(texts: &[&str]) -> Result<String, ShcError> {
    let parts = texts
        .iter()
        .map(|text| QrPart::parse(text))
        .collect::<Result<Vec<_>, _>>()?;
    let total_digits: usize = parts.iter().map(|part| part.digits.len()).sum();
    if total_digits / 2 > MAX_JWS_LEN {
        return Err(ShcError::TooLarge(format!(
            "a card holds at most {MAX_JWS_LEN} characters"
        )));
    }
    let ordered = order_parts(&parts)?;
    let mut jws = String::with_capacity(total_digits / 2);
    for part in ordered {
        for pair in part.digits.as_bytes().chunks_exact(2) {
            // Digits and the pair bound were checked by `QrPart::parse`.
            let value = (pair[0] - b'0') * 10 + (pair[1] - b'0');
            jws.push(char::from(FIRST_CHAR + value));
        }
    }
    Ok(jws)
}

/// One scanned text, its prefix checked and its digits validated.
struct QrPart<'a> {
    /// `(part, count)` for a numbered part.
    position: Option<(usize, usize)>,
    digits: &'a str,
}

impl<'a> QrPart<'a> {
    fn parse(text: &'a str) -> Result<Self, ShcError> {
        let text = text.trim_ascii();
        let rest = match text.get(..QR_PREFIX.len()) {
            Some(prefix) if prefix.eq_ignore_ascii_case(QR_PREFIX) => &text[QR_PREFIX.len()..],
            _ => return Err(malformed("it does not start with \"shc:/\"")),
        };
        let (position, digits) = if rest.contains('/') {
            let mut fields = rest.splitn(3, '/');
            let (Some(part), Some(count), Some(digits)) =
                (fields.next(), fields.next(), fields.next())
            else {
                return Err(malformed(
                    "a numbered part looks like shc:/<part>/<count>/<digits>",
                ));
            };
            let (part, count) = (ordinal(part)?, ordinal(count)?);
            if count < 2 || part > count {
                return Err(malformed(&format!(
                    "part {part} of {count} is not a valid numbering"
                )));
            }
            (Some((part, count)), digits)
        } else {
            (None, rest)
        };
        if digits.is_empty() {
            return Err(malformed("it carries no data"));
        }
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed("after the prefix it must contain only digits"));
        }
        if digits.len() % 2 != 0 {
            return Err(malformed("it has an odd number of digits"));
        }
        if let Some(pair) = digits
            .as_bytes()
            .chunks_exact(2)
            .find(|pair| (pair[0] - b'0') * 10 + (pair[1] - b'0') > MAX_PAIR)
        {
            return Err(malformed(&format!(
                "digit pair {}{} is above {MAX_PAIR}",
                char::from(pair[0]),
                char::from(pair[1])
            )));
        }
        Ok(QrPart { position, digits })
    }
}

/// A part number or count: decimal, no sign, no leading zero, at least 1.
fn ordinal(text: &str) -> Result<usize, ShcError> {
    let well_formed = !text.is_empty()
        && text.len() <= 4
        && text.bytes().all(|b| b.is_ascii_digit())
        && !text.starts_with('0');
    well_formed
        .then(|| text.parse().ok())
        .flatten()
        .ok_or_else(|| malformed(&format!("{text:?} is not a part number")))
}

fn order_parts<'p, 'a>(parts: &'p [QrPart<'a>]) -> Result<Vec<&'p QrPart<'a>>, ShcError> {
    let numbered = |part: &QrPart| {
        part.position
            .ok_or_else(|| malformed("several QR codes were given but not all are numbered parts"))
    };
    match parts {
        [] => Err(malformed("no QR code was given")),
        [single @ QrPart { position: None, .. }] => Ok(vec![single]),
        [first, ..] => {
            let (_, count) = numbered(first)?;
            if parts.len() > count {
                return Err(malformed(&format!(
                    "{} QR codes were given for a card of {count} parts",
                    parts.len()
                )));
            }
            let mut slots: Vec<Option<&QrPart>> = vec![None; count];
            for part in parts {
                let (index, its_count) = numbered(part)?;
                if its_count != count {
                    return Err(malformed(&format!(
                        "the parts disagree on their number ({count} and {its_count})"
                    )));
                }
                // `index` is in 1..=count, checked by `QrPart::parse`.
                let slot = &mut slots[index - 1];
                if slot.is_some() {
                    return Err(malformed(&format!("part {index} was given twice")));
                }
                *slot = Some(part);
            }
            slots
                .into_iter()
                .enumerate()
                .map(|(i, slot)| {
                    slot.ok_or_else(|| malformed(&format!("part {} of {count} is missing", i + 1)))
                })
                .collect()
        }
    }
}

fn malformed(reason: &str) -> ShcError {
    ShcError::MalformedQr(reason.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_spec_example_character() {
        // 'X' is 88, encoded as 43.
        assert_eq!(encode_qr("X").unwrap(), vec!["shc:/43".to_owned()]);
        assert_eq!(decode_qr(&["shc:/43"]).unwrap(), "X");
        assert_eq!(encode_qr("-z").unwrap(), vec!["shc:/0077".to_owned()]);
    }

    #[test]
    fn long_jws_splits_into_balanced_parts() {
        let jws = "a".repeat(1200);
        let parts = encode_qr(&jws).unwrap();
        assert_eq!(parts.len(), 2);
        assert!(parts[0].starts_with("shc:/1/2/"));
        assert!(parts[1].starts_with("shc:/2/2/"));
        assert_eq!(parts[0].len(), "shc:/1/2/".len() + 2 * 600);
        let refs: Vec<&str> = parts.iter().rev().map(String::as_str).collect();
        assert_eq!(decode_qr(&refs).unwrap(), jws);

        let exact = "b".repeat(SINGLE_QR_MAX_JWS_LEN);
        assert_eq!(encode_qr(&exact).unwrap().len(), 1);
        let three = "c".repeat(2 * QR_CHUNK_MAX_JWS_LEN + 1);
        let parts = encode_qr(&three).unwrap();
        assert_eq!(parts.len(), 3);
        for part in &parts {
            let digits = part.rsplit('/').next().unwrap();
            assert!(digits.len() / 2 <= QR_CHUNK_MAX_JWS_LEN);
        }
    }

    #[test]
    fn characters_outside_the_jws_alphabet_are_not_encoded() {
        assert_eq!(encode_qr("a b").unwrap_err().code(), "shc-malformed-jws");
        assert_eq!(encode_qr("{").unwrap_err().code(), "shc-malformed-jws");
    }

    #[test]
    fn prefix_case_and_whitespace_are_tolerated() {
        assert_eq!(decode_qr(&["SHC:/43\n"]).unwrap(), "X");
        assert_eq!(decode_qr(&["  shc:/43"]).unwrap(), "X");
    }

    #[test]
    fn malformed_texts_are_refused() {
        let cases: &[&[&str]] = &[
            &[],
            &[""],
            &["shc:"],
            &["shc:/"],
            &["https://example.org"],
            &["shc:/4"],
            &["shc:/434"],
            &["shc:/78"],
            &["shc:/99"],
            &["shc:/4a"],
            &["shc:/43 43"],
            &["shc:/+43"],
            &["shc:/1/1/43"],
            &["shc:/0/2/43", "shc:/2/2/43"],
            &["shc:/01/2/43", "shc:/2/2/43"],
            &["shc:/3/2/43", "shc:/2/2/43"],
            &["shc:/1/2/43"],
            &["shc:/1/2/43", "shc:/1/2/43"],
            &["shc:/1/2/43", "shc:/2/3/43"],
            &["shc:/1/3/43", "shc:/2/3/43"],
            &["shc:/1/2/43", "shc:/43"],
            &["shc:/43", "shc:/43"],
            &["shc:/1/2/", "shc:/2/2/43"],
            &["shc:/1/2", "shc:/2/2/43"],
            &["shc:/1//43", "shc:/2/2/43"],
            &["shc:/1/2/4/3", "shc:/2/2/43"],
            &["shc:/99999/2/43", "shc:/2/2/43"],
        ];
        for case in cases {
            assert_eq!(
                decode_qr(case).map_err(|e| e.code()),
                Err("shc-malformed-qr"),
                "{case:?}"
            );
        }
    }

    #[test]
    fn an_oversized_text_is_refused_before_decoding() {
        let text = format!("shc:/{}", "10".repeat(MAX_JWS_LEN + 1));
        assert_eq!(decode_qr(&[&text]).unwrap_err().code(), "shc-too-large");
    }

    fn jws_text() -> impl Strategy<Value = String> {
        "[A-Za-z0-9_.-]{1,4000}"
    }

    proptest! {
        #[test]
        fn encoding_round_trips(jws in jws_text(), seed in any::<u64>()) {
            let parts = encode_qr(&jws).unwrap();
            prop_assert_eq!(parts.len() == 1, jws.len() <= SINGLE_QR_MAX_JWS_LEN);
            let mut refs: Vec<&str> = parts.iter().map(String::as_str).collect();
            // Parts may be scanned in any order.
            let len = refs.len();
            refs.rotate_left(usize::try_from(seed % len as u64).unwrap());
            prop_assert_eq!(decode_qr(&refs).unwrap(), jws);
        }

        #[test]
        fn every_jws_character_is_two_digits_at_most_77(c in 45u8..=122) {
            let text = char::from(c).to_string();
            let qr = encode_qr(&text).unwrap().remove(0);
            let digits = &qr[QR_PREFIX.len()..];
            prop_assert_eq!(digits.len(), 2);
            prop_assert!(digits.parse::<u8>().unwrap() <= 77);
            prop_assert_eq!(decode_qr(&[&qr]).unwrap(), text);
        }

        #[test]
        fn decoding_arbitrary_text_never_panics(texts in proptest::collection::vec(".{0,40}", 0..4)) {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let _ = decode_qr(&refs);
        }
    }
}
