//! The resource types the node serves, what it lets clients do with each,
//! and where each names its patient.

use std::fmt;
use std::str::FromStr;

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
    fn ledger_views_are_read_only_but_consent() {
        assert!(!ResourceType::AuditEvent.is_writable());
        assert!(!ResourceType::Provenance.is_writable());
        assert!(ResourceType::Consent.is_writable());
        assert!(ResourceType::Observation.is_writable());
    }
}
