//! Purposes of use: the HL7 v3 `PurposeOfUse` codes (code system
//! `http://terminology.hl7.org/CodeSystem/v3-ActReason`) that a consent grant
//! and an access request carry.
//!
//! The supported codes are those of HL7's `GeneralPurposeOfUse` value set.
//! Anything else is refused with [`UnknownPurpose`], never mapped to a
//! default.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The HL7 code system the codes belong to.
pub const PURPOSE_OF_USE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";

/// A supported HL7 v3 purpose-of-use code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PurposeOfUse {
    /// `TREAT`: provision of health care.
    Treatment,
    /// `ETREAT`: immediately needed health care for an emergent condition.
    /// A specialization of `TREAT`.
    EmergencyTreatment,
    /// `HPAYMT`: payment for the provision of health care.
    Payment,
    /// `HOPERAT`: administrative and contractual activities of health care.
    Operations,
    /// `HRESCH`: scientific investigations to obtain health care knowledge.
    Research,
    /// `PUBHLTH`: public health activities, e.g. reporting notifiable conditions.
    PublicHealth,
    /// `PATRQT`: in response to the patient's own request.
    PatientRequested,
    /// `COVERAGE`: coverage under a program or policy.
    Coverage,
    /// `HMARKT`: marketing of health care services and products.
    Marketing,
}

impl PurposeOfUse {
    /// Every supported code, in a fixed order.
    pub const ALL: [PurposeOfUse; 9] = [
        PurposeOfUse::Treatment,
        PurposeOfUse::EmergencyTreatment,
        PurposeOfUse::Payment,
        PurposeOfUse::Operations,
        PurposeOfUse::Research,
        PurposeOfUse::PublicHealth,
        PurposeOfUse::PatientRequested,
        PurposeOfUse::Coverage,
        PurposeOfUse::Marketing,
    ];

    /// The HL7 code, e.g. `"ETREAT"`.
    pub fn code(self) -> &'static str {
        match self {
            PurposeOfUse::Treatment => "TREAT",
            PurposeOfUse::EmergencyTreatment => "ETREAT",
            PurposeOfUse::Payment => "HPAYMT",
            PurposeOfUse::Operations => "HOPERAT",
            PurposeOfUse::Research => "HRESCH",
            PurposeOfUse::PublicHealth => "PUBHLTH",
            PurposeOfUse::PatientRequested => "PATRQT",
            PurposeOfUse::Coverage => "COVERAGE",
            PurposeOfUse::Marketing => "HMARKT",
        }
    }

    /// HL7's display name for the code.
    pub fn display(self) -> &'static str {
        match self {
            PurposeOfUse::Treatment => "treatment",
            PurposeOfUse::EmergencyTreatment => "emergency treatment",
            PurposeOfUse::Payment => "healthcare payment",
            PurposeOfUse::Operations => "healthcare operations",
            PurposeOfUse::Research => "healthcare research",
            PurposeOfUse::PublicHealth => "public health",
            PurposeOfUse::PatientRequested => "patient requested",
            PurposeOfUse::Coverage => "coverage under policy or program",
            PurposeOfUse::Marketing => "healthcare marketing",
        }
    }

    /// The codes a grant for this purpose covers: the code itself and its
    /// specializations among the supported codes. A grant for `TREAT` also
    /// covers `ETREAT`; every other code covers only itself.
    pub fn covered(self) -> &'static [PurposeOfUse] {
        match self {
            PurposeOfUse::Treatment => &[PurposeOfUse::Treatment, PurposeOfUse::EmergencyTreatment],
            PurposeOfUse::EmergencyTreatment => &[PurposeOfUse::EmergencyTreatment],
            PurposeOfUse::Payment => &[PurposeOfUse::Payment],
            PurposeOfUse::Operations => &[PurposeOfUse::Operations],
            PurposeOfUse::Research => &[PurposeOfUse::Research],
            PurposeOfUse::PublicHealth => &[PurposeOfUse::PublicHealth],
            PurposeOfUse::PatientRequested => &[PurposeOfUse::PatientRequested],
            PurposeOfUse::Coverage => &[PurposeOfUse::Coverage],
            PurposeOfUse::Marketing => &[PurposeOfUse::Marketing],
        }
    }
}

impl fmt::Display for PurposeOfUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A purpose-of-use code that is not one of the supported HL7 codes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown purpose of use {code:?}: expected one of the HL7 v3 codes \
     TREAT, ETREAT, HPAYMT, HOPERAT, HRESCH, PUBHLTH, PATRQT, COVERAGE, HMARKT"
)]
pub struct UnknownPurpose {
    /// The refused code, as given.
    pub code: String,
}

impl FromStr for PurposeOfUse {
    type Err = UnknownPurpose;

    /// Parses an HL7 code. Codes are case-sensitive, as HL7 defines them.
    fn from_str(code: &str) -> Result<Self, Self::Err> {
        PurposeOfUse::ALL
            .into_iter()
            .find(|p| p.code() == code)
            .ok_or_else(|| UnknownPurpose {
                code: code.to_owned(),
            })
    }
}

impl Serialize for PurposeOfUse {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for PurposeOfUse {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        code.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for p in PurposeOfUse::ALL {
            assert_eq!(p.code().parse::<PurposeOfUse>(), Ok(p));
            assert!(p.covered().contains(&p));
        }
    }

    #[test]
    fn required_codes_are_supported() {
        for code in [
            "TREAT", "ETREAT", "HPAYMT", "HRESCH", "HOPERAT", "PUBHLTH", "PATRQT",
        ] {
            assert!(code.parse::<PurposeOfUse>().is_ok(), "{code}");
        }
    }

    #[test]
    fn unknown_purpose_code_is_refused() {
        for code in ["", "treat", "BTG", "MARKETING", "TREAT "] {
            let err = code.parse::<PurposeOfUse>().unwrap_err();
            assert_eq!(err.code, code);
            assert!(err.to_string().contains("unknown purpose of use"));
        }
        let json = serde_json::from_str::<PurposeOfUse>("\"NOPE\"");
        assert!(json.is_err());
        assert_eq!(
            serde_json::from_str::<PurposeOfUse>("\"ETREAT\"").ok(),
            Some(PurposeOfUse::EmergencyTreatment)
        );
    }

    #[test]
    fn treatment_covers_emergency_treatment_only_one_way() {
        assert!(PurposeOfUse::Treatment
            .covered()
            .contains(&PurposeOfUse::EmergencyTreatment));
        assert!(!PurposeOfUse::EmergencyTreatment
            .covered()
            .contains(&PurposeOfUse::Treatment));
    }
}
