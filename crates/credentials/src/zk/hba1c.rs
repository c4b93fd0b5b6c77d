//! HbA1c (LOINC 4548-4) as a committed attribute, in tenths of a percent:
//! 7.0 % is 70. The diabetes program's goal "HbA1c below 7.0 %" is
//! [`hba1c_below`]`(70)`.

use hygeia_identity::Did;

use super::commitment::AttributeClaims;
use super::error::ZkError;
use super::range::{Range, Requirement};

/// Attribute name of an HbA1c credential (value in tenths of a percent).
pub const HBA1C_ATTRIBUTE: &str = "hba1c-percent-x10";
/// LOINC 4548-4, "Hemoglobin A1c/Hemoglobin.total in Blood".
pub const HBA1C_LOINC: &str = "4548-4";

/// Reads a percentage with at most one decimal ("6.4", "7", "7.0") as
/// tenths of a percent.
pub fn parse_percent_x10(text: &str) -> Result<u64, ZkError> {
    let bad = || ZkError::InvalidClaims(format!("{text:?} is not a percentage like 6.4"));
    let (whole, tenths) = match text.split_once('.') {
        Some((whole, tenths)) if tenths.len() == 1 => (whole, tenths),
        Some(_) => return Err(bad()),
        None => (text, "0"),
    };
    let digits = |s: &str| !s.is_empty() && s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(tenths) {
        return Err(bad());
    }
    let whole: u64 = whole.parse().map_err(|_| bad())?;
    let tenths: u64 = tenths.parse().map_err(|_| bad())?;
    Ok(whole * 10 + tenths)
}

/// The claims of an HbA1c result credential.
pub fn hba1c_claims(
    issuer: &str,
    percent_x10: u64,
    issued_at: u64,
    expires_at: u64,
    holder: Option<Did>,
) -> AttributeClaims {
    AttributeClaims {
        issuer: issuer.to_string(),
        attribute: HBA1C_ATTRIBUTE.to_string(),
        loinc: Some(HBA1C_LOINC.to_string()),
        value: percent_x10,
        issued_at,
        expires_at,
        holder,
    }
}

/// "HbA1c < max" (in tenths of a percent).
pub fn hba1c_below(max_exclusive_x10: u64) -> Result<Requirement, ZkError> {
    Requirement::new(
        HBA1C_ATTRIBUTE,
        Some(HBA1C_LOINC),
        Range::below(max_exclusive_x10)?,
    )
}

/// "min ≤ HbA1c < max" (in tenths of a percent), e.g. the prediabetes band
/// 5.7 % to 6.4 % is `hba1c_between(57, 65)`.
pub fn hba1c_between(
    min_inclusive_x10: u64,
    max_exclusive_x10: u64,
) -> Result<Requirement, ZkError> {
    Requirement::new(
        HBA1C_ATTRIBUTE,
        Some(HBA1C_LOINC),
        Range::between(min_inclusive_x10, max_exclusive_x10)?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_read_as_tenths() {
        assert_eq!(parse_percent_x10("6.4").unwrap(), 64);
        assert_eq!(parse_percent_x10("7").unwrap(), 70);
        assert_eq!(parse_percent_x10("7.0").unwrap(), 70);
        assert_eq!(parse_percent_x10("12.5").unwrap(), 125);
        for bad in ["", "6.", ".4", "6.45", "-1", "6,4", "1e2", "1234"] {
            assert_eq!(
                parse_percent_x10(bad).unwrap_err().code(),
                "zk-invalid-claims",
                "{bad}"
            );
        }
    }

    #[test]
    fn requirements_name_the_attribute_and_code() {
        let below = hba1c_below(70).unwrap();
        assert_eq!(below.attribute, HBA1C_ATTRIBUTE);
        assert_eq!(below.loinc.as_deref(), Some(HBA1C_LOINC));
        assert!(below.range.contains(69) && !below.range.contains(70));
        assert!(hba1c_between(65, 57).is_err());
    }
}
