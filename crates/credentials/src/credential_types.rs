//! Hygeia's four credential types as SD-JWT VCs: typed claims, the
//! `vct` that names each, and which members are selectively disclosable.
//!
//! What stays plain and what is disclosable, and why:
//!
//! | type | plain | disclosable |
//! |---|---|---|
//! | clinician licence | `sub` (clinician did:key), `profession`, `jurisdiction` | `licence_number`, `specialty` |
//! | lab result | `sub` (patient DID) | `code`, `value`, `unit`, `effective` |
//! | device attestation | `sub` (device did:key), `model`, `firmware_version` | `serial_number`, `udi` |
//! | trial-site accreditation | `sub` (site organization DID), `study_id` | each element of `scope` |
//!
//! A licence is checked across borders as "a physician licensed in DE":
//! profession and jurisdiction are the point; the licence number (a
//! registry key that links presentations) and the specialty are shown only
//! when asked. A lab result says nothing by default: even which test was
//! done is health data. A device's model and firmware decide whether its
//! readings are trusted; its serial number and UDI identify one unit and
//! so the patient using it. A trial site shows the accreditation for the
//! study and only the parts of its scope a sponsor asks about.
//!
//! Checks on reading: `sub` is a DID (a did:key for people and devices),
//! `jurisdiction` is two upper-case ASCII letters (the ISO 3166-1 alpha-2
//! shape; the code list itself is not embedded), `code` has the LOINC
//! shape with a valid mod-10 check digit, `value` is a finite number,
//! `unit` a non-empty UCUM string (its grammar is not parsed),
//! `effective` a calendar date `YYYY-MM-DD`.

use hygeia_identity::Did;
use serde_json::{json, Map, Value};

use crate::jws::{SigningKey, VerifyingKey};
use crate::sd_jwt::{ClaimPath, IssueError, SdJwtBuilder, VerifiedSdJwt};

pub const VCT_CLINICIAN_LICENCE: &str = "https://hygeia.health/vct/clinician-licence/v1";
pub const VCT_LAB_RESULT: &str = "https://hygeia.health/vct/lab-result/v1";
pub const VCT_DEVICE_ATTESTATION: &str = "https://hygeia.health/vct/device-attestation/v1";
pub const VCT_TRIAL_SITE_ACCREDITATION: &str =
    "https://hygeia.health/vct/trial-site-accreditation/v1";

/// Which of the four types a credential is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CredentialKind {
    ClinicianLicence,
    LabResult,
    DeviceAttestation,
    TrialSiteAccreditation,
}

impl CredentialKind {
    pub const ALL: [CredentialKind; 4] = [
        CredentialKind::ClinicianLicence,
        CredentialKind::LabResult,
        CredentialKind::DeviceAttestation,
        CredentialKind::TrialSiteAccreditation,
    ];

    pub fn vct(self) -> &'static str {
        match self {
            CredentialKind::ClinicianLicence => VCT_CLINICIAN_LICENCE,
            CredentialKind::LabResult => VCT_LAB_RESULT,
            CredentialKind::DeviceAttestation => VCT_DEVICE_ATTESTATION,
            CredentialKind::TrialSiteAccreditation => VCT_TRIAL_SITE_ACCREDITATION,
        }
    }

    pub fn from_vct(vct: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.vct() == vct)
    }

    /// The top-level members issued as selectively disclosable (for
    /// `scope`, each of its elements).
    pub fn disclosable_members(self) -> &'static [&'static str] {
        match self {
            CredentialKind::ClinicianLicence => &["licence_number", "specialty"],
            CredentialKind::LabResult => &["code", "value", "unit", "effective"],
            CredentialKind::DeviceAttestation => &["serial_number", "udi"],
            CredentialKind::TrialSiteAccreditation => &["scope"],
        }
    }
}

/// Why typed claims were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("the credential type {0:?} is not one Hygeia knows")]
    UnknownType(String),
    #[error("the credential lacks the claim {0:?}")]
    MissingClaim(&'static str),
    #[error("the claim {0:?} is not valid: {1}")]
    BadClaim(&'static str, &'static str),
    #[error("the credential could not be issued: {0}")]
    Issue(#[from] IssueError),
}

impl CredentialError {
    pub fn code(&self) -> &'static str {
        match self {
            CredentialError::UnknownType(_) => "credential-unknown-type",
            CredentialError::MissingClaim(_) => "credential-missing-claim",
            CredentialError::BadClaim(..) => "credential-bad-claim",
            CredentialError::Issue(e) => e.code(),
        }
    }
}

/// A licensing board's attestation that a clinician may practise.
#[derive(Clone, Debug, PartialEq)]
pub struct ClinicianLicence {
    pub subject: Did,
    /// Withheld unless disclosed.
    pub licence_number: Option<String>,
    /// e.g. "physician", "nurse", "pharmacist".
    pub profession: String,
    /// Withheld unless disclosed.
    pub specialty: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub jurisdiction: String,
}

/// A laboratory's signed result for a patient.
#[derive(Clone, Debug, PartialEq)]
pub struct LabResult {
    pub subject: Did,
    /// LOINC code, e.g. "4548-4" (HbA1c).
    pub code: Option<String>,
    pub value: Option<f64>,
    /// UCUM unit, e.g. "%".
    pub unit: Option<String>,
    /// The date the result applies to, `YYYY-MM-DD`.
    pub effective: Option<String>,
}

/// A manufacturer's attestation of a device's identity and software.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceAttestation {
    pub subject: Did,
    pub model: String,
    pub firmware_version: String,
    pub serial_number: Option<String>,
    /// The GS1/HIBCC Unique Device Identifier, if the device has one.
    pub udi: Option<String>,
}

/// A sponsor's or accreditor's statement that a site may run a study.
#[derive(Clone, Debug, PartialEq)]
pub struct TrialSiteAccreditation {
    /// The site organization's DID (did:web or did:key).
    pub site: String,
    pub study_id: String,
    /// What the site is accredited for (e.g. "enrolment", "dosing");
    /// a presentation lists only the disclosed entries.
    pub scope: Vec<String>,
}

/// One of Hygeia's credentials, typed.
#[derive(Clone, Debug, PartialEq)]
pub enum Credential {
    ClinicianLicence(ClinicianLicence),
    LabResult(LabResult),
    DeviceAttestation(DeviceAttestation),
    TrialSiteAccreditation(TrialSiteAccreditation),
}

/// Who issues, when, for whom: the claims every type shares.
#[derive(Clone, Debug)]
pub struct Issuance {
    /// The issuer's identifier (`iss`), e.g. its did:web.
    pub issuer: String,
    pub issued_at: i64,
    pub expires_at: Option<i64>,
    /// The holder's key, put in `cnf` so presentations need key binding.
    pub holder_key: VerifyingKey,
    /// A status list reference (`status` claim), if revocable.
    pub status: Option<Value>,
    /// JOSE `kid` of the issuer's key.
    pub key_id: Option<String>,
}

impl Credential {
    pub fn kind(&self) -> CredentialKind {
        match self {
            Credential::ClinicianLicence(_) => CredentialKind::ClinicianLicence,
            Credential::LabResult(_) => CredentialKind::LabResult,
            Credential::DeviceAttestation(_) => CredentialKind::DeviceAttestation,
            Credential::TrialSiteAccreditation(_) => CredentialKind::TrialSiteAccreditation,
        }
    }

    /// The type's own claims (`sub` and the rest; absent options left out).
    pub fn to_claims(&self) -> Map<String, Value> {
        let mut claims = Map::new();
        let mut put = |name: &str, value: Option<Value>| {
            if let Some(value) = value {
                claims.insert(name.to_owned(), value);
            }
        };
        match self {
            Credential::ClinicianLicence(c) => {
                put("sub", Some(json!(c.subject.as_str())));
                put(
                    "licence_number",
                    c.licence_number.as_ref().map(|v| json!(v)),
                );
                put("profession", Some(json!(c.profession)));
                put("specialty", c.specialty.as_ref().map(|v| json!(v)));
                put("jurisdiction", Some(json!(c.jurisdiction)));
            }
            Credential::LabResult(c) => {
                put("sub", Some(json!(c.subject.as_str())));
                put("code", c.code.as_ref().map(|v| json!(v)));
                put("value", c.value.map(|v| json!(v)));
                put("unit", c.unit.as_ref().map(|v| json!(v)));
                put("effective", c.effective.as_ref().map(|v| json!(v)));
            }
            Credential::DeviceAttestation(c) => {
                put("sub", Some(json!(c.subject.as_str())));
                put("model", Some(json!(c.model)));
                put("firmware_version", Some(json!(c.firmware_version)));
                put("serial_number", c.serial_number.as_ref().map(|v| json!(v)));
                put("udi", c.udi.as_ref().map(|v| json!(v)));
            }
            Credential::TrialSiteAccreditation(c) => {
                put("sub", Some(json!(c.site)));
                put("study_id", Some(json!(c.study_id)));
                put("scope", Some(json!(c.scope)));
            }
        }
        claims
    }

    /// Reads the typed claims of a credential of type `vct`.
    pub fn from_claims(vct: &str, claims: &Map<String, Value>) -> Result<Self, CredentialError> {
        let kind = CredentialKind::from_vct(vct)
            .ok_or_else(|| CredentialError::UnknownType(vct.to_owned()))?;
        let c = Claims(claims);
        let credential = match kind {
            CredentialKind::ClinicianLicence => Credential::ClinicianLicence(ClinicianLicence {
                subject: c.did_key("sub")?,
                licence_number: c.optional_string("licence_number")?,
                profession: c.string("profession")?,
                specialty: c.optional_string("specialty")?,
                jurisdiction: check_jurisdiction(c.string("jurisdiction")?)?,
            }),
            CredentialKind::LabResult => Credential::LabResult(LabResult {
                subject: c.did_key("sub")?,
                code: c.optional_string("code")?.map(check_loinc).transpose()?,
                value: match claims.get("value") {
                    None => None,
                    Some(v) => Some(
                        v.as_f64()
                            .ok_or(CredentialError::BadClaim("value", "not a number"))?,
                    ),
                },
                unit: c
                    .optional_string("unit")?
                    .map(|u| {
                        if u.is_empty() {
                            Err(CredentialError::BadClaim("unit", "empty"))
                        } else {
                            Ok(u)
                        }
                    })
                    .transpose()?,
                effective: c
                    .optional_string("effective")?
                    .map(check_date)
                    .transpose()?,
            }),
            CredentialKind::DeviceAttestation => Credential::DeviceAttestation(DeviceAttestation {
                subject: c.did_key("sub")?,
                model: c.string("model")?,
                firmware_version: c.string("firmware_version")?,
                serial_number: c.optional_string("serial_number")?,
                udi: c.optional_string("udi")?,
            }),
            CredentialKind::TrialSiteAccreditation => {
                Credential::TrialSiteAccreditation(TrialSiteAccreditation {
                    site: check_did(c.string("sub")?)?,
                    study_id: c.string("study_id")?,
                    scope: match claims.get("scope") {
                        Some(Value::Array(items)) => items
                            .iter()
                            .map(|i| {
                                i.as_str()
                                    .map(str::to_owned)
                                    .ok_or(CredentialError::BadClaim(
                                        "scope",
                                        "not a list of strings",
                                    ))
                            })
                            .collect::<Result<_, _>>()?,
                        Some(_) => {
                            return Err(CredentialError::BadClaim("scope", "not a list of strings"))
                        }
                        None => return Err(CredentialError::MissingClaim("scope")),
                    },
                })
            }
        };
        Ok(credential)
    }

    /// Reads a verified presentation as a typed credential.
    pub fn from_verified(verified: &VerifiedSdJwt) -> Result<Self, CredentialError> {
        Self::from_claims(verified.vct(), verified.claims())
    }

    /// An [`SdJwtBuilder`] with this credential's claims, the shared
    /// claims and the type's disclosable members marked (add decoys or
    /// header members, then `issue`).
    pub fn builder(&self, issuance: &Issuance) -> Result<SdJwtBuilder, CredentialError> {
        // Validate by reading our own claims back.
        let own = self.to_claims();
        Self::from_claims(self.kind().vct(), &own)?;
        if let Credential::TrialSiteAccreditation(site) = self {
            if site.scope.is_empty() {
                return Err(CredentialError::BadClaim("scope", "empty"));
            }
        }
        let mut claims = Map::new();
        claims.insert("iss".into(), json!(issuance.issuer));
        claims.insert("vct".into(), json!(self.kind().vct()));
        claims.insert("iat".into(), json!(issuance.issued_at));
        if let Some(exp) = issuance.expires_at {
            claims.insert("exp".into(), json!(exp));
        }
        if let Some(status) = &issuance.status {
            claims.insert("status".into(), status.clone());
        }
        claims.extend(own);
        let mut builder = SdJwtBuilder::new(claims.clone()).holder_key(&issuance.holder_key);
        if let Some(kid) = &issuance.key_id {
            builder = builder.header("kid", json!(kid));
        }
        for member in self.kind().disclosable_members() {
            match claims.get(*member) {
                Some(Value::Array(_)) => {
                    builder = builder.disclosable(ClaimPath::keys(&[member]).any_index())
                }
                Some(_) => builder = builder.disclosable(ClaimPath::keys(&[member])),
                None => {}
            }
        }
        Ok(builder)
    }

    /// Issues this credential as an SD-JWT VC (compact, every disclosure
    /// included), with two decoy digests per object.
    pub fn issue(&self, issuance: &Issuance, key: &SigningKey) -> Result<String, CredentialError> {
        Ok(self.builder(issuance)?.decoys_per_object(2).issue(key)?)
    }
}

struct Claims<'a>(&'a Map<String, Value>);

impl Claims<'_> {
    fn optional_string(&self, name: &'static str) -> Result<Option<String>, CredentialError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(CredentialError::BadClaim(name, "not a string")),
        }
    }

    fn string(&self, name: &'static str) -> Result<String, CredentialError> {
        self.optional_string(name)?
            .ok_or(CredentialError::MissingClaim(name))
    }

    fn did_key(&self, name: &'static str) -> Result<Did, CredentialError> {
        self.string(name)?
            .parse()
            .map_err(|_| CredentialError::BadClaim(name, "not an Ed25519 did:key"))
    }
}

fn check_did(did: String) -> Result<String, CredentialError> {
    let mut parts = did.splitn(3, ':');
    let ok = parts.next() == Some("did")
        && parts.next().is_some_and(|m| {
            !m.is_empty()
                && m.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
        && parts.next().is_some_and(|id| !id.is_empty());
    if ok {
        Ok(did)
    } else {
        Err(CredentialError::BadClaim("sub", "not a DID"))
    }
}

fn check_jurisdiction(code: String) -> Result<String, CredentialError> {
    if code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(code)
    } else {
        Err(CredentialError::BadClaim(
            "jurisdiction",
            "not an ISO 3166-1 alpha-2 code",
        ))
    }
}

/// LOINC codes are digits, a hyphen and a mod-10 check digit.
fn check_loinc(code: String) -> Result<String, CredentialError> {
    let bad = || CredentialError::BadClaim("code", "not a LOINC code");
    let (body, check) = code.split_once('-').ok_or_else(bad)?;
    if body.is_empty() || body.len() > 7 || !body.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let [check] = check.as_bytes() else {
        return Err(bad());
    };
    if !check.is_ascii_digit() || loinc_check_digit(body) != check - b'0' {
        return Err(bad());
    }
    Ok(code)
}

/// The LOINC check digit: the Luhn mod-10 digit of the code's digits.
fn loinc_check_digit(body: &str) -> u8 {
    let mut sum = 0u32;
    for (i, b) in body.bytes().rev().enumerate() {
        let d = u32::from(b - b'0');
        sum += if i % 2 == 0 {
            let doubled = d * 2;
            doubled / 10 + doubled % 10
        } else {
            d
        };
    }
    ((10 - sum % 10) % 10) as u8
}

fn check_date(date: String) -> Result<String, CredentialError> {
    let bad = || CredentialError::BadClaim("effective", "not a date YYYY-MM-DD");
    let b = date.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(bad());
    }
    let number = |s: &str| {
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse::<u32>().ok())
            .flatten()
    };
    let (Some(year), Some(month), Some(day)) =
        (number(&date[..4]), number(&date[5..7]), number(&date[8..]))
    else {
        return Err(bad());
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    if day == 0 || day > days {
        return Err(bad());
    }
    Ok(date)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sd_jwt::{verify_presentation, SdJwt, VerifyOptions};
    use hygeia_identity::Keypair;

    fn licence(subject: Did) -> Credential {
        Credential::ClinicianLicence(ClinicianLicence {
            subject,
            licence_number: Some("DE-ÄK-12345".into()),
            profession: "physician".into(),
            specialty: Some("cardiology".into()),
            jurisdiction: "DE".into(),
        })
    }

    #[test]
    fn vct_round_trip() {
        for kind in CredentialKind::ALL {
            assert_eq!(CredentialKind::from_vct(kind.vct()), Some(kind));
        }
        assert_eq!(CredentialKind::from_vct("https://example/other"), None);
    }

    #[test]
    fn licence_issues_presents_and_parses() {
        let board = SigningKey::Ed25519(Keypair::from_seed(&[1; 32]));
        let clinician = Keypair::from_seed(&[2; 32]);
        let holder_key = VerifyingKey::Ed25519(clinician.public_key());
        let credential = licence(clinician.did());
        let issuance = Issuance {
            issuer: "did:web:board.example".into(),
            issued_at: 1_700_000_000,
            expires_at: Some(1_800_000_000),
            holder_key,
            status: Some(
                json!({"status_list": {"idx": 7, "uri": "https://board.example/status/1"}}),
            ),
            key_id: Some("key-1".into()),
        };
        let issued = credential.issue(&issuance, &board).unwrap();
        let board_key = board.verifying_key();
        let resolver = |iss: &str, header: &crate::jws::Header| {
            (iss == "did:web:board.example" && header.kid() == Some("key-1"))
                .then(|| board_key.clone())
        };
        let held = SdJwt::parse(&issued, &resolver).unwrap();
        assert_eq!(held.disclosable_paths().len(), 2);
        let full = Credential::from_claims(held.vct(), held.claims()).unwrap();
        assert_eq!(full, credential);

        let holder = SigningKey::Ed25519(clinician);
        let shown = held
            .present_with_key_binding(
                &[ClaimPath::keys(&["specialty"])],
                "did:web:clinic.example",
                "n-1",
                1_700_000_100,
                &holder,
            )
            .unwrap();
        let options =
            VerifyOptions::new(1_700_000_100).require_key_binding("did:web:clinic.example", "n-1");
        let verified = verify_presentation(&shown, &resolver, &options).unwrap();
        assert!(verified.status().is_some());
        let Credential::ClinicianLicence(seen) = Credential::from_verified(&verified).unwrap()
        else {
            panic!("wrong kind");
        };
        assert_eq!(seen.licence_number, None);
        assert_eq!(seen.specialty.as_deref(), Some("cardiology"));
        assert_eq!(seen.jurisdiction, "DE");
    }

    #[test]
    fn every_type_round_trips_through_issuance() {
        let issuer = SigningKey::generate_ed25519();
        let holder = Keypair::generate();
        let did = holder.did();
        let credentials = [
            licence(did.clone()),
            Credential::LabResult(LabResult {
                subject: did.clone(),
                code: Some("4548-4".into()),
                value: Some(6.4),
                unit: Some("%".into()),
                effective: Some("2024-02-29".into()),
            }),
            Credential::DeviceAttestation(DeviceAttestation {
                subject: did.clone(),
                model: "GlucoMeter 3".into(),
                firmware_version: "2.1.0".into(),
                serial_number: Some("SN-0042".into()),
                udi: Some("(01)00844588003288(21)SN-0042".into()),
            }),
            Credential::TrialSiteAccreditation(TrialSiteAccreditation {
                site: "did:web:site.example".into(),
                study_id: "NCT01234567".into(),
                scope: vec!["enrolment".into(), "dosing".into()],
            }),
        ];
        let issuer_key = issuer.verifying_key();
        let resolver = |_: &str, _: &crate::jws::Header| Some(issuer_key.clone());
        for credential in credentials {
            let issuance = Issuance {
                issuer: "did:web:issuer.example".into(),
                issued_at: 1,
                expires_at: None,
                holder_key: VerifyingKey::Ed25519(holder.public_key()),
                status: None,
                key_id: None,
            };
            let issued = credential.issue(&issuance, &issuer).unwrap();
            let held = SdJwt::parse(&issued, &resolver).unwrap();
            assert_eq!(
                Credential::from_claims(held.vct(), held.claims()).unwrap(),
                credential
            );
            // Presented with nothing disclosed, the plain members remain.
            let bare =
                verify_presentation(&held.present(&[]), &resolver, &VerifyOptions::new(2)).unwrap();
            for member in credential.kind().disclosable_members() {
                if *member != "scope" {
                    assert!(bare.claims().get(*member).is_none(), "{member} shown");
                }
            }
            assert_eq!(
                Credential::from_verified(&bare).unwrap().kind(),
                credential.kind()
            );
        }
    }

    #[test]
    fn bad_claims_are_refused() {
        let did = Keypair::from_seed(&[5; 32]).did();
        let base = || licence(did.clone()).to_claims();
        let cases: Vec<(&str, Map<String, Value>, &str)> = vec![
            (
                VCT_CLINICIAN_LICENCE,
                {
                    let mut c = base();
                    c.insert("jurisdiction".into(), json!("DEU"));
                    c
                },
                "credential-bad-claim",
            ),
            (
                VCT_CLINICIAN_LICENCE,
                {
                    let mut c = base();
                    c.remove("profession");
                    c
                },
                "credential-missing-claim",
            ),
            (
                VCT_CLINICIAN_LICENCE,
                {
                    let mut c = base();
                    c.insert("sub".into(), json!("did:web:x"));
                    c
                },
                "credential-bad-claim",
            ),
            ("https://example/x", base(), "credential-unknown-type"),
            (
                VCT_LAB_RESULT,
                Map::from_iter([
                    ("sub".into(), json!(did.as_str())),
                    ("code".into(), json!("4548-5")),
                ]),
                "credential-bad-claim",
            ),
            (
                VCT_LAB_RESULT,
                Map::from_iter([
                    ("sub".into(), json!(did.as_str())),
                    ("value".into(), json!("6.4")),
                ]),
                "credential-bad-claim",
            ),
            (
                VCT_LAB_RESULT,
                Map::from_iter([
                    ("sub".into(), json!(did.as_str())),
                    ("effective".into(), json!("2023-02-29")),
                ]),
                "credential-bad-claim",
            ),
            (
                VCT_TRIAL_SITE_ACCREDITATION,
                Map::from_iter([
                    ("sub".into(), json!("site")),
                    ("study_id".into(), json!("s")),
                    ("scope".into(), json!([])),
                ]),
                "credential-bad-claim",
            ),
        ];
        for (vct, claims, code) in cases {
            assert_eq!(
                Credential::from_claims(vct, &claims).unwrap_err().code(),
                code,
                "{claims:?}"
            );
        }
    }

    #[test]
    fn loinc_check_digits() {
        for good in ["4548-4", "2345-7", "718-7", "14749-6"] {
            assert!(check_loinc(good.into()).is_ok(), "{good}");
        }
        for bad in ["4548-3", "4548", "45a8-4", "-4", "4548-44"] {
            assert!(check_loinc(bad.into()).is_err(), "{bad}");
        }
    }
}
