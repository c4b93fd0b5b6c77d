//! Text helpers for search: string normalization, FHIR search-value
//! escaping, query-string encoding, and short quotes for diagnostics.

/// A string as string search compares it: lower case, with the accents of
/// Latin letters removed (`Chalmers`, `chälmers` → `chalmers`) and control
/// characters dropped. Letters outside Latin-1 and Latin Extended-A keep
/// their accents unless written with combining marks, which are dropped.
pub fn normalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().flat_map(char::to_lowercase) {
        match fold(c) {
            Fold::Keep => out.push(c),
            Fold::Drop => {}
            Fold::One(f) => out.push(f),
            Fold::Two(a, b) => {
                out.push(a);
                out.push(b);
            }
        }
    }
    out
}

enum Fold {
    Keep,
    Drop,
    One(char),
    Two(char, char),
}

/// Base letters of accented lower-case Latin letters.
fn fold(c: char) -> Fold {
    use Fold::*;
    match c {
        c if c.is_control() => Drop,
        '\u{0300}'..='\u{036f}' => Drop, // combining diacritical marks
        'à'..='å' | 'ā' | 'ă' | 'ą' => One('a'),
        'æ' => Two('a', 'e'),
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => One('c'),
        'ð' | 'ď' | 'đ' => One('d'),
        'è'..='ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => One('e'),
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => One('g'),
        'ĥ' | 'ħ' => One('h'),
        'ì'..='ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => One('i'),
        'ĳ' => Two('i', 'j'),
        'ĵ' => One('j'),
        'ķ' | 'ĸ' => One('k'),
        'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => One('l'),
        'ñ' | 'ń' | 'ņ' | 'ň' | 'ŉ' | 'ŋ' => One('n'),
        'ò'..='ö' | 'ø' | 'ō' | 'ŏ' | 'ő' => One('o'),
        'œ' => Two('o', 'e'),
        'ŕ' | 'ŗ' | 'ř' => One('r'),
        'ś' | 'ŝ' | 'ş' | 'š' | 'ſ' => One('s'),
        'ß' => Two('s', 's'),
        'ţ' | 'ť' | 'ŧ' => One('t'),
        'þ' => Two('t', 'h'),
        'ù'..='ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => One('u'),
        'ŵ' => One('w'),
        'ý' | 'ÿ' | 'ŷ' => One('y'),
        'ź' | 'ż' | 'ž' => One('z'),
        _ => Keep,
    }
}

/// Splits a search value on `sep` where it is not escaped with `\`,
/// keeping escapes as written (so that a part can be split again on
/// another separator: `a\|b|c` on `,` then on `|`).
pub(crate) fn split_raw(value: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in value.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(&value[start..i]);
            start = i + c.len_utf8();
        }
    }
    parts.push(&value[start..]);
    parts
}

/// Undoes the escapes FHIR defines (`\,`, `\|`, `\$`, `\\`); a backslash
/// before any other character stays as written.
pub(crate) fn unescape(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    let mut chars = part.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(e @ (',' | '|' | '$' | '\\')) => out.push(e),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// [`split_raw`], each part unescaped.
#[cfg(test)]
pub(crate) fn split_unescaped(value: &str, sep: char) -> Vec<String> {
    split_raw(value, sep).into_iter().map(unescape).collect()
}

/// The inverse of [`unescape`].
pub(crate) fn escape(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    for c in part.chars() {
        if matches!(c, ',' | '|' | '$' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Percent-encodes for a query-string name or value: everything but
/// unreserved characters and `:/,` (legal in a query and kept for
/// readability of links) is encoded, `+` and `|` included.
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':' | b'/' | b',')
        {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A value quoted for a diagnostic, cut to 64 characters.
pub(crate) fn shown(value: &str) -> String {
    let mut quoted: String = value.chars().take(64).collect();
    if value.chars().nth(64).is_some() {
        quoted.push('…');
    }
    format!("{quoted:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization() {
        assert_eq!(normalize("Chalmers"), "chalmers");
        assert_eq!(normalize("du Marché"), "du marche");
        assert_eq!(normalize("ÆSØ Łódź Straße"), "aeso lodz strasse");
        assert_eq!(normalize("Zoe\u{0308}"), "zoe");
        assert_eq!(normalize("a\u{0}b"), "ab");
        assert_eq!(normalize("Ωμέγα"), "ωμέγα");
    }

    #[test]
    fn escapes() {
        assert_eq!(split_unescaped(r"a,b\,c,\\,", ','), ["a", "b,c", "\\", ""]);
        assert_eq!(split_unescaped(r"s\|x|c", '|'), ["s|x", "c"]);
        assert_eq!(split_unescaped(r"a\nb\", ','), [r"a\nb\"]);
        let raw = split_raw(r"a\|b|c,d\,e", ',');
        assert_eq!(raw, [r"a\|b|c", r"d\,e"]);
        assert_eq!(split_unescaped(raw[0], '|'), ["a|b", "c"]);
        for s in ["", "a,b", r"x\y", "p|q$r", r"\\,"] {
            assert_eq!(split_unescaped(&escape(s), ','), [s]);
            assert_eq!(split_unescaped(&escape(s), '|'), [s]);
        }
    }

    #[test]
    fn encoding_and_quotes() {
        assert_eq!(
            percent_encode("http://loinc.org|1 2+é"),
            "http://loinc.org%7C1%202%2B%C3%A9"
        );
        assert_eq!(shown("abc"), "\"abc\"");
        assert_eq!(shown(&"x".repeat(100)), format!("\"{}…\"", "x".repeat(64)));
    }
}
