//! The resource types the node serves, what it lets clients do with each,
//! and where each names its patient.

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

/// A resource type the node serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceType {
    Patient,
    Practitioner,
    Organization,
    Encounter,
    Observation,
    Condition,
    AllergyIntolerance,
    MedicationRequest,
    Immunization,
    Procedure,
    DiagnosticReport,
    DocumentReference,
    Device,
    ResearchStudy,
    ResearchSubject,
    Group,
    Consent,
    Provenance,
    AuditEvent,
}

/// How the node holds a type, which decides who may see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holding {
    /// Health data about one patient, stored in the vault; every access is
    /// decided by the patient's consent.
    PatientData,
    /// Directory data (practitioners, organizations, devices, studies,
    /// groups), stored in the vault; any authenticated participant reads
    /// it, members of registered organizations write it.
    Directory,
    /// Generated from the ledger (grants, access events, record
    /// provenance); read and searched, never written as such.
    LedgerView,
}

impl ResourceType {
    pub const ALL: [ResourceType; 19] = [
        ResourceType::Patient,
        ResourceType::Practitioner,
        ResourceType::Organization,
        ResourceType::Encounter,
        ResourceType::Observation,
        ResourceType::Condition,
        ResourceType::AllergyIntolerance,
        ResourceType::MedicationRequest,
        ResourceType::Immunization,
        ResourceType::Procedure,
        ResourceType::DiagnosticReport,
        ResourceType::DocumentReference,
        ResourceType::Device,
        ResourceType::ResearchStudy,
        ResourceType::ResearchSubject,
        ResourceType::Group,
        ResourceType::Consent,
        ResourceType::Provenance,
        ResourceType::AuditEvent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Patient => "Patient",
            ResourceType::Practitioner => "Practitioner",
            ResourceType::Organization => "Organization",
            ResourceType::Encounter => "Encounter",
            ResourceType::Observation => "Observation",
            ResourceType::Condition => "Condition",
            ResourceType::AllergyIntolerance => "AllergyIntolerance",
            ResourceType::MedicationRequest => "MedicationRequest",
            ResourceType::Immunization => "Immunization",
            ResourceType::Procedure => "Procedure",
            ResourceType::DiagnosticReport => "DiagnosticReport",
            ResourceType::DocumentReference => "DocumentReference",
            ResourceType::Device => "Device",
            ResourceType::ResearchStudy => "ResearchStudy",
            ResourceType::ResearchSubject => "ResearchSubject",
            ResourceType::Group => "Group",
            ResourceType::Consent => "Consent",
            ResourceType::Provenance => "Provenance",
            ResourceType::AuditEvent => "AuditEvent",
        }
    }

    pub fn holding(self) -> Holding {
        match self {
            ResourceType::Practitioner
            | ResourceType::Organization
            | ResourceType::Device
            | ResourceType::ResearchStudy
            | ResourceType::Group => Holding::Directory,
            ResourceType::Consent | ResourceType::Provenance | ResourceType::AuditEvent => {
                Holding::LedgerView
            }
            _ => Holding::PatientData,
        }
    }

    /// The element that references the patient a resource is about
    /// (`None` for Patient itself and for types not about one patient).
    pub fn patient_element(self) -> Option<&'static str> {
        match self {
            ResourceType::Encounter
            | ResourceType::Observation
            | ResourceType::Condition
            | ResourceType::MedicationRequest
            | ResourceType::Procedure
            | ResourceType::DiagnosticReport
            | ResourceType::DocumentReference
            | ResourceType::ResearchSubject
            | ResourceType::Consent => Some("subject"),
            ResourceType::AllergyIntolerance | ResourceType::Immunization => Some("patient"),
            _ => None,
        }
    }

    /// Whether clients may create, update and delete it.
    pub fn is_writable(self) -> bool {
        self.holding() != Holding::LedgerView || self == ResourceType::Consent
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A resource type this node does not serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("resource type {0:?} is not supported by this server")]
pub struct UnsupportedType(pub String);

impl FromStr for ResourceType {
    type Err = UnsupportedType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ResourceType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnsupportedType(s.chars().take(64).collect()))
    }
}

/// The consent category of a resource: the code consent grants name in
/// their scope (`lab`, `vital-signs`, `mental-health`...), the same codes
/// the `/v1/records` API takes. A sensitivity label in `meta.security`
/// (HL7 v3 ActCode) wins, so a grant for `lab` never covers a psychiatric
/// note; then an Observation's or DiagnosticReport's category; otherwise the
/// resource type in kebab case (`medication-request`).
pub fn consent_category(resource_type: ResourceType, resource: &Value) -> String {
    if let Some(sensitive) = sensitivity(resource) {
        return sensitive.to_owned();
    }
    if resource_type.holding() == Holding::Directory {
        return "directory".to_owned();
    }
    if matches!(
        resource_type,
        ResourceType::Observation | ResourceType::DiagnosticReport
    ) {
        let codes = resource
            .get("category")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("coding").and_then(Value::as_array))
            .flatten()
            .filter_map(|c| c.get("code").and_then(Value::as_str));
        for code in codes {
            let mapped = match code {
                "laboratory" | "LAB" => Some("lab"),
                "vital-signs" => Some("vital-signs"),
                "imaging" | "RAD" => Some("imaging"),
                "social-history" => Some("social-history"),
                "survey" => Some("survey"),
                _ => None,
            };
            if let Some(mapped) = mapped {
                return mapped.to_owned();
            }
        }
    }
    kebab(resource_type.as_str())
}

/// Sensitivity labels (HL7 v3 ActCode, as used in `meta.security`) and the
/// category each puts a resource in.
const SENSITIVITY: [(&str, &str); 6] = [
    ("PSY", "mental-health"),
    ("PSYTHPN", "mental-health"),
    ("HIV", "hiv"),
    ("SUD", "substance-use"),
    ("ETH", "substance-use"),
    ("SDV", "sexual-violence"),
];

fn sensitivity(resource: &Value) -> Option<&'static str> {
    let labels = resource
        .get("meta")?
        .get("security")?
        .as_array()?
        .iter()
        .filter(|c| {
            c.get("system").and_then(Value::as_str)
                == Some("http://terminology.hl7.org/CodeSystem/v3-ActCode")
        })
        .filter_map(|c| c.get("code").and_then(Value::as_str));
    for label in labels {
        if let Some((_, category)) = SENSITIVITY.iter().find(|(code, _)| *code == label) {
            return Some(category);
        }
    }
    None
}

fn kebab(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in ResourceType::ALL {
            assert_eq!(t.as_str().parse::<ResourceType>(), Ok(t));
        }
        assert!("patient".parse::<ResourceType>().is_err());
        assert!("Medication".parse::<ResourceType>().is_err());
    }

    #[test]
    fn categories() {
        use serde_json::json;
        let lab = json!({"category": [{"coding": [{"code": "laboratory"}]}]});
        assert_eq!(consent_category(ResourceType::Observation, &lab), "lab");
        let psy = json!({"meta": {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"}]}, "category": [{"coding": [{"code": "laboratory"}]}]});
        assert_eq!(
            consent_category(ResourceType::Observation, &psy),
            "mental-health"
        );
        assert_eq!(
            consent_category(ResourceType::MedicationRequest, &json!({})),
            "medication-request"
        );
        assert_eq!(
            consent_category(ResourceType::Practitioner, &json!({})),
            "directory"
        );
        assert_eq!(
            consent_category(ResourceType::Patient, &json!({})),
            "patient"
        );
    }

    #[test]
    fn ledger_views_are_read_only_but_consent() {
        assert!(!ResourceType::AuditEvent.is_writable());
        assert!(!ResourceType::Provenance.is_writable());
        assert!(ResourceType::Consent.is_writable());
        assert!(ResourceType::Observation.is_writable());
    }
}
