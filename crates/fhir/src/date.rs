//! FHIR `date`, `dateTime` and `instant` values as ranges of instants.
//!
//! Search compares ranges, not points: `2023` denotes the whole year, so a
//! value is kept as the half-open range of milliseconds since the Unix epoch
//! (UTC) it covers, sized by the precision it was written with.
//!
//! Values without a time of day (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`) are taken
//! in UTC: the node serves many sites and has no one local time zone, and
//! a fixed choice keeps search results the same wherever they are computed.
//!
//! Calendar arithmetic is the `time` crate's; this module only checks the
//! lexical forms FHIR allows and measures precision.

use serde::{Deserialize, Serialize};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

const MS_PER_DAY: i64 = 86_400_000;

/// The half-open range `[start, end)` of instants a FHIR date, dateTime or
/// instant denotes, in milliseconds since the Unix epoch (UTC):
/// `"2023"` is `[2023-01-01T00:00Z, 2024-01-01T00:00Z)`,
/// `"2023-05-04T10:00:00Z"` is one second long.
///
/// Ranges taken from a Period may be open on one side: a missing start is
/// `i64::MIN`, a missing end `i64::MAX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DateRange {
    pub start: i64,
    pub end: i64,
}

impl DateRange {
    /// The one-millisecond range of an instant.
    pub fn point(ms: i64) -> DateRange {
        DateRange {
            start: ms,
            end: ms.saturating_add(1),
        }
    }

    /// Whether the two ranges share at least one instant.
    pub fn overlaps(&self, other: &DateRange) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// Whether `other` lies entirely within this range.
    pub fn contains(&self, other: &DateRange) -> bool {
        self.start <= other.start && other.end <= self.end
    }
}

/// A text that is not a FHIR date, dateTime or instant (or not a real day).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {text:?}")]
pub struct DateError {
    /// The offending text, cut to 64 characters.
    pub text: String,
    pub reason: &'static str,
}

fn err(text: &str, reason: &'static str) -> DateError {
    DateError {
        text: text.chars().take(64).collect(),
        reason,
    }
}

/// Parses `YYYY`, `YYYY-MM`, `YYYY-MM-DD`, `YYYY-MM-DDThh:mm:ss[.f+](Z|±hh:mm)`
/// and, for search values, `YYYY-MM-DDThh:mm(Z|±hh:mm)` into the range it
/// denotes. A time of day needs a zone (FHIR requires one); dates alone are
/// taken in UTC. Fractions are kept to the millisecond; their precision is
/// the number of digits written (`.5` is 100 ms long), at most 1 ms. A leap
/// second (`:60`) is the first millisecond of the next minute.
pub fn parse_date(text: &str) -> Result<DateRange, DateError> {
    let b = text.as_bytes();
    let year = digits(b, 0, 4).ok_or_else(|| err(text, "expected a four-digit year"))?;
    if year == 0 {
        return Err(err(text, "year 0000 does not exist"));
    }
    let year = i32::try_from(year).map_err(|_| err(text, "year out of range"))?;
    if b.len() == 4 {
        let start = day_ms(text, year, Month::January, 1)?;
        let last = day_ms(text, year, Month::December, 31)?;
        return Ok(DateRange {
            start,
            end: last + MS_PER_DAY,
        });
    }
    expect(b, 4, b'-', text)?;
    let month = digits(b, 5, 2)
        .and_then(|m| u8::try_from(m).ok())
        .and_then(|m| Month::try_from(m).ok())
        .ok_or_else(|| err(text, "expected a month 01 to 12"))?;
    if b.len() == 7 {
        let start = day_ms(text, year, month, 1)?;
        let last = day_ms(text, year, month, time::util::days_in_month(month, year))?;
        return Ok(DateRange {
            start,
            end: last + MS_PER_DAY,
        });
    }
    expect(b, 7, b'-', text)?;
    let day = digits(b, 8, 2)
        .and_then(|d| u8::try_from(d).ok())
        .ok_or_else(|| err(text, "expected a two-digit day"))?;
    let date = Date::from_calendar_date(year, month, day).map_err(|_| err(text, "no such day"))?;
    if b.len() == 10 {
        let start = ms_of(date, Time::MIDNIGHT, UtcOffset::UTC);
        return Ok(DateRange {
            start,
            end: start + MS_PER_DAY,
        });
    }
    expect(b, 10, b'T', text)?;
    parse_time_of_day(text, date)
}

/// The part after `T`: `hh:mm[:ss[.f+]]` and a zone.
fn parse_time_of_day(text: &str, date: Date) -> Result<DateRange, DateError> {
    let b = text.as_bytes();
    let hour = digits(b, 11, 2).ok_or_else(|| err(text, "expected hh:mm after T"))?;
    expect(b, 13, b':', text)?;
    let minute = digits(b, 14, 2).ok_or_else(|| err(text, "expected hh:mm after T"))?;
    let mut pos = 16;
    let mut second = 0;
    let mut millis = 0;
    // Precision of what was written, in ms: a minute, a second, or the
    // fraction's last digit.
    let mut precision = 60_000;
    if b.get(pos) == Some(&b':') {
        second = digits(b, pos + 1, 2).ok_or_else(|| err(text, "expected two-digit seconds"))?;
        pos += 3;
        precision = 1_000;
        if b.get(pos) == Some(&b'.') {
            let start = pos + 1;
            let len = b[start..].iter().take_while(|c| c.is_ascii_digit()).count();
            if len == 0 {
                return Err(err(text, "expected digits after the decimal point"));
            }
            // Only the first three digits are kept; more digits cannot
            // make the range shorter than the 1 ms unit ranges are kept in.
            let kept = len.min(3);
            let frac = digits(b, start, kept).ok_or_else(|| err(text, "bad fraction"))?;
            millis = frac * 10_i64.pow(3 - kept as u32);
            precision = 10_i64.pow(3 - kept as u32);
            pos = start + len;
        }
    }
    let offset = parse_zone(text, &b[pos..])?;
    // time has no leap seconds: `:60` is counted as the second after `:59`.
    let leap = second == 60;
    let time = Time::from_hms_milli(
        hour as u8,
        minute as u8,
        if leap { 59 } else { second as u8 },
        millis as u16,
    )
    .map_err(|_| err(text, "no such time of day"))?;
    let start = ms_of(date, time, offset) + if leap { 1_000 } else { 0 };
    Ok(DateRange {
        start,
        end: start + precision,
    })
}

/// `Z` or `±hh:mm` (at most 14 hours, as in FHIR), and nothing after it.
fn parse_zone(text: &str, zone: &[u8]) -> Result<UtcOffset, DateError> {
    match zone {
        [] => Err(err(text, "a time of day needs a zone (Z or ±hh:mm)")),
        [b'Z'] => Ok(UtcOffset::UTC),
        [sign @ (b'+' | b'-'), rest @ ..] if rest.len() == 5 && rest[2] == b':' => {
            let h = digits(rest, 0, 2).ok_or_else(|| err(text, "bad zone hours"))?;
            let m = digits(rest, 3, 2).ok_or_else(|| err(text, "bad zone minutes"))?;
            if h > 14 || m > 59 || (h == 14 && m > 0) {
                return Err(err(text, "zone offset out of range"));
            }
            let s: i8 = if *sign == b'-' { -1 } else { 1 };
            UtcOffset::from_hms(s * h as i8, s * m as i8, 0)
                .map_err(|_| err(text, "zone offset out of range"))
        }
        _ => Err(err(text, "expected a zone (Z or ±hh:mm) at the end")),
    }
}

/// The value of `len` ASCII digits at `at`, if they are all there.
fn digits(b: &[u8], at: usize, len: usize) -> Option<i64> {
    let s = b.get(at..at + len)?;
    s.iter().try_fold(0i64, |acc, c| {
        c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
    })
}

fn expect(b: &[u8], at: usize, want: u8, text: &str) -> Result<(), DateError> {
    if b.get(at) == Some(&want) {
        Ok(())
    } else {
        Err(err(
            text,
            "not a FHIR date (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss+zz:zz)",
        ))
    }
}

fn day_ms(text: &str, year: i32, month: Month, day: u8) -> Result<i64, DateError> {
    let date = Date::from_calendar_date(year, month, day).map_err(|_| err(text, "no such day"))?;
    Ok(ms_of(date, Time::MIDNIGHT, UtcOffset::UTC))
}

fn ms_of(date: Date, time: Time, offset: UtcOffset) -> i64 {
    let nanos = PrimitiveDateTime::new(date, time)
        .assume_offset(offset)
        .unix_timestamp_nanos();
    // Years 1..=9999 are a few hundred billion ms from the epoch: no overflow.
    (nanos / 1_000_000) as i64
}

/// The first millisecond FHIR can write (0001-01-01T00:00:00.000Z).
pub const MIN_INSTANT: i64 = -62_135_596_800_000;
/// The last millisecond FHIR can write (9999-12-31T23:59:59.999Z).
pub const MAX_INSTANT: i64 = 253_402_300_799_999;

/// An instant as RFC 3339 in UTC with milliseconds, e.g.
/// `2024-05-04T10:11:12.013Z`, for `meta.lastUpdated`. The fraction is
/// always written so that such strings sort as their instants do. Instants
/// outside the years 0001 to 9999 are clamped to them.
pub fn format_instant(ms: i64) -> String {
    let ms = ms.clamp(MIN_INSTANT, MAX_INSTANT);
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// The start of the range a date denotes: for `meta.lastUpdated` and other
/// instants, where the point in time matters, not the precision.
pub fn parse_instant(text: &str) -> Result<i64, DateError> {
    parse_date(text).map(|r| r.start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(text: &str) -> DateRange {
        parse_date(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    const Y2023: i64 = 1_672_531_200_000; // 2023-01-01T00:00:00Z

    #[test]
    fn precision_sets_the_range() {
        assert_eq!(
            r("2023"),
            DateRange {
                start: Y2023,
                end: 1_704_067_200_000
            }
        );
        let feb = r("2023-02");
        assert_eq!(feb.start, Y2023 + 31 * MS_PER_DAY);
        assert_eq!(feb.end - feb.start, 28 * MS_PER_DAY);
        assert_eq!(r("2024-02").end - r("2024-02").start, 29 * MS_PER_DAY);
        assert_eq!(r("2023-01-02").start, Y2023 + MS_PER_DAY);
        assert_eq!(r("2023-01-01T00:00Z").end - Y2023, 60_000);
        assert_eq!(r("2023-01-01T00:00:00Z").end - Y2023, 1_000);
        assert_eq!(r("2023-01-01T00:00:00.5Z").start, Y2023 + 500);
        assert_eq!(r("2023-01-01T00:00:00.5Z").end, Y2023 + 600);
        assert_eq!(r("2023-01-01T00:00:00.25Z").end, Y2023 + 260);
        assert_eq!(r("2023-01-01T00:00:00.123456Z").start, Y2023 + 123);
        assert_eq!(r("2023-01-01T00:00:00.123456Z").end, Y2023 + 124);
    }

    #[test]
    fn zones_shift_the_instant() {
        assert_eq!(r("2023-01-01T01:00:00+01:00").start, Y2023);
        assert_eq!(r("2022-12-31T19:30:00-04:30").start, Y2023);
        assert_eq!(r("2023-01-01T00:00:00-00:00").start, Y2023);
        assert_eq!(r("2023-01-01T00:00:00+14:00").start, Y2023 - 14 * 3_600_000);
        assert_eq!(r("2022-12-31T23:59:60Z").start, Y2023);
    }

    #[test]
    fn malformed_dates_are_refused() {
        for bad in [
            "",
            "23",
            "20233",
            "2023-",
            "2023-1",
            "2023-13",
            "2023-00",
            "2023-02-30",
            "2023-02-29",
            "0000",
            "2023-01-01T",
            "2023-01-01T10",
            "2023-01-01T10:00",
            "2023-01-01T10:00:00",
            "2023-01-01T25:00:00Z",
            "2023-01-01T10:61:00Z",
            "2023-01-01T10:00:00.Z",
            "2023-01-01T10:00:00+15:00",
            "2023-01-01T10:00:00+0100",
            "2023-01-01T10:00:00Zjunk",
            "2023-01-01 10:00:00Z",
            "2023/01/01",
            "+2023",
            "２０２３",
        ] {
            assert!(parse_date(bad).is_err(), "{bad:?}");
        }
        assert!(parse_date("2024-02-29").is_ok());
        assert!(parse_date("9999-12-31T23:59:59.999Z").is_ok());
        assert_eq!(r("9999").end, MAX_INSTANT + 1);
        assert_eq!(r("0001").start, MIN_INSTANT);
    }

    #[test]
    fn errors_are_short() {
        let long = "x".repeat(1000);
        assert_eq!(parse_date(&long).unwrap_err().text.chars().count(), 64);
    }

    #[test]
    fn instants_round_trip() {
        assert_eq!(format_instant(Y2023), "2023-01-01T00:00:00.000Z");
        assert_eq!(format_instant(Y2023 + 13), "2023-01-01T00:00:00.013Z");
        assert_eq!(format_instant(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(format_instant(i64::MAX), "9999-12-31T23:59:59.999Z");
        assert_eq!(format_instant(i64::MIN), "0001-01-01T00:00:00.000Z");
        for ms in [
            0,
            1,
            Y2023 + 86_399_999,
            1_715_000_000_123,
            MIN_INSTANT,
            MAX_INSTANT,
        ] {
            assert_eq!(parse_instant(&format_instant(ms)), Ok(ms));
            assert_eq!(r(&format_instant(ms)), DateRange::point(ms));
        }
    }

    #[test]
    fn range_relations() {
        let year = r("2023");
        let day = r("2023-06-01");
        assert!(year.contains(&day) && !day.contains(&year));
        assert!(year.overlaps(&day) && day.overlaps(&year));
        assert!(!year.overlaps(&r("2024")));
    }
}
