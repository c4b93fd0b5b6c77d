//! Calendar arithmetic on Unix seconds in UTC. The generator needs ages,
//! day boundaries and FHIR `dateTime` strings, nothing more, and doing it
//! with integers keeps every step total and deterministic.

pub(super) const MINUTE: i64 = 60;
pub(super) const HOUR: i64 = 3_600;
pub(super) const DAY: i64 = 86_400;
/// A mean Gregorian year, for ages and rates.
pub(super) const YEAR: i64 = 31_556_952;

/// Where every synthetic history ends: 2026-07-01T00:00:00Z. Fixed rather
/// than read from a clock, so that a seed always yields the same records.
pub(super) const END: i64 = days_from_civil(2026, 7, 1) * DAY;

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// algorithm).
pub(super) const fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = (if y >= 0 { y } else { y - 399 }) / 400;
    let yoe = y - era * 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month, day) of a day number from [`days_from_civil`].
pub(super) const fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = (if z >= 0 { z } else { z - 146_096 }) / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + if month <= 2 { 1 } else { 0 };
    (year, month, day)
}

/// `YYYY-MM-DDThh:mm:ssZ`.
pub(super) fn date_time(t: i64) -> String {
    let (year, month, day) = civil_from_days(t.div_euclid(DAY));
    let s = t.rem_euclid(DAY);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        s / HOUR,
        s % HOUR / MINUTE,
        s % MINUTE
    )
}

/// `YYYY-MM-DD`.
pub(super) fn date(t: i64) -> String {
    let (year, month, day) = civil_from_days(t.div_euclid(DAY));
    format!("{year:04}-{month:02}-{day:02}")
}

pub(super) fn year_month(t: i64) -> (i64, i64) {
    let (year, month, _) = civil_from_days(t.div_euclid(DAY));
    (year, month)
}

/// Midnight UTC of the day `t` falls on.
pub(super) fn day_start(t: i64) -> i64 {
    t - t.rem_euclid(DAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trips() {
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(date_time(END), "2026-07-01T00:00:00Z");
        assert_eq!(date_time(951_827_696), "2000-02-29T12:34:56Z");
        assert_eq!(date(-1), "1969-12-31");
    }
}
