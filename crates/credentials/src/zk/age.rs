//! Age checks on a committed birth date: "at least N years old today"
//! without revealing the birth date.
//!
//! The birth date is committed as whole days since 1900-01-01. Being at
//! least `years` old on `today` means being born on or before the same
//! calendar day `years` earlier, so the statement is the one-sided range
//! `birth_days < cutoff_days + 1`. Someone born on 29 February comes of age
//! on 1 March in common years (the cutoff for a 29 February that does not
//! exist is 28 February).

use hygeia_identity::{Did, Keypair};
use time::{Date, Month};

use super::commitment::{AttributeClaims, CommittedAttributeCredential, Opening};
use super::error::ZkError;
use super::range::{prove, Challenge, Range, RangePresentation, Requirement};

/// Attribute name of a birth date credential.
pub const BIRTH_DATE_ATTRIBUTE: &str = "birth-date-days-since-1900";
/// LOINC 21112-8, "Birth date".
pub const BIRTH_DATE_LOINC: &str = "21112-8";

const EPOCH: Date = time::macros::date!(1900 - 01 - 01);

/// Whole days from 1900-01-01 to `date`; earlier dates are refused.
pub fn days_since_1900(date: Date) -> Result<u64, ZkError> {
    u64::try_from((date - EPOCH).whole_days())
        .map_err(|_| ZkError::InvalidClaims("dates before 1900-01-01 cannot be committed".into()))
}

/// The last birth date of someone who is at least `years` old on `today`.
pub fn latest_birth_date_for_age(years: u16, today: Date) -> Result<Date, ZkError> {
    let too_old = || ZkError::InvalidPredicate("the age reaches back before 1900");
    let year = today.year() - i32::from(years);
    if year < 1900 {
        return Err(too_old());
    }
    match Date::from_calendar_date(year, today.month(), today.day()) {
        Ok(date) => Ok(date),
        // Only 29 February can be missing.
        Err(_) => Date::from_calendar_date(year, Month::February, 28).map_err(|_| too_old()),
    }
}

/// What a verifier asks for: a birth date no later than
/// [`latest_birth_date_for_age`].
pub fn at_least_age_requirement(years: u16, today: Date) -> Result<Requirement, ZkError> {
    let cutoff = days_since_1900(latest_birth_date_for_age(years, today)?)?;
    Requirement::new(
        BIRTH_DATE_ATTRIBUTE,
        Some(BIRTH_DATE_LOINC),
        Range::below(cutoff + 1)?,
    )
}

/// Proves the holder is at least `years` old on `today` (the verifier must
/// use the same `today` in [`at_least_age_requirement`]).
pub fn prove_at_least_age(
    credential: &CommittedAttributeCredential,
    opening: &Opening,
    years: u16,
    today: Date,
    challenge: &Challenge,
    holder_key: Option<&Keypair>,
) -> Result<RangePresentation, ZkError> {
    let requirement = at_least_age_requirement(years, today)?;
    prove(
        credential,
        opening,
        requirement.range,
        challenge,
        holder_key,
    )
}

/// The claims of a birth date credential.
pub fn birth_date_claims(
    issuer: &str,
    birth_date: Date,
    issued_at: u64,
    expires_at: u64,
    holder: Option<Did>,
) -> Result<AttributeClaims, ZkError> {
    Ok(AttributeClaims {
        issuer: issuer.to_string(),
        attribute: BIRTH_DATE_ATTRIBUTE.to_string(),
        loinc: Some(BIRTH_DATE_LOINC.to_string()),
        value: days_since_1900(birth_date)?,
        issued_at,
        expires_at,
        holder,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn days_count_from_1900() {
        assert_eq!(days_since_1900(date!(1900 - 01 - 01)).unwrap(), 0);
        assert_eq!(days_since_1900(date!(1900 - 03 - 01)).unwrap(), 59);
        // 1970-01-01 is day 25567 (the spreadsheet serial 25569 counts an
        // extra day for a day 0 and the non-existent 1900-02-29).
        assert_eq!(days_since_1900(date!(1970 - 01 - 01)).unwrap(), 25567);
        assert_eq!(
            days_since_1900(date!(1899 - 12 - 31)).unwrap_err().code(),
            "zk-invalid-claims"
        );
    }

    #[test]
    fn cutoffs_follow_the_calendar() {
        assert_eq!(
            latest_birth_date_for_age(18, date!(2025 - 06 - 15)).unwrap(),
            date!(2007 - 06 - 15)
        );
        assert_eq!(
            latest_birth_date_for_age(18, date!(2024 - 02 - 29)).unwrap(),
            date!(2006 - 02 - 28)
        );
        assert_eq!(
            latest_birth_date_for_age(18, date!(2022 - 02 - 28)).unwrap(),
            date!(2004 - 02 - 28)
        );
        assert_eq!(
            latest_birth_date_for_age(200, date!(2025 - 01 - 01))
                .unwrap_err()
                .code(),
            "zk-invalid-predicate"
        );
    }

    #[test]
    fn the_requirement_is_one_sided_below_the_day_after_the_cutoff() {
        let requirement = at_least_age_requirement(18, date!(2025 - 06 - 15)).unwrap();
        let cutoff = days_since_1900(date!(2007 - 06 - 15)).unwrap();
        assert_eq!(requirement.range, Range::below(cutoff + 1).unwrap());
        assert!(requirement.range.contains(cutoff));
        assert!(!requirement.range.contains(cutoff + 1));
        assert_eq!(requirement.attribute, BIRTH_DATE_ATTRIBUTE);
    }
}
