//! The search parameters the node supports, with FHIR R5 names and the
//! elements each reads. Paths are JSON element names from the resource
//! root, dot-separated; arrays met on the way are flattened. Choice
//! elements (`effective[x]`) are listed by the JSON names of the choices
//! the parameter's R5 expression covers (`effectiveDateTime`,
//! `effectivePeriod`...).

use crate::types::ResourceType;

/// The type of a search parameter, which decides its value syntax,
/// modifiers and comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParamKind {
    /// Codes and identifiers: `[system|]code`; `:not`, `:missing`.
    Token,
    /// Dates compared as ranges with a prefix (`ge2023`); `:missing`.
    Date,
    /// References to resources on this server (`Patient/123`); `:missing`,
    /// `:identifier`, `:[Type]`.
    Reference,
    /// Case- and accent-insensitive prefix match; `:exact`, `:contains`,
    /// `:missing`.
    String,
}

/// One search parameter of one resource type.
#[derive(Debug, PartialEq, Eq)]
pub struct ParamDef {
    /// The R5 name, as written in a query (`clinical-status`).
    pub name: &'static str,
    pub kind: ParamKind,
    /// Element paths it reads (see the module comment).
    pub paths: &'static [&'static str],
    /// Only references to this type count (`patient`: the subject when it
    /// is a Patient).
    pub target: Option<ResourceType>,
}

const fn token(name: &'static str, paths: &'static [&'static str]) -> ParamDef {
    ParamDef {
        name,
        kind: ParamKind::Token,
        paths,
        target: None,
    }
}

const fn date(name: &'static str, paths: &'static [&'static str]) -> ParamDef {
    ParamDef {
        name,
        kind: ParamKind::Date,
        paths,
        target: None,
    }
}

const fn reference(name: &'static str, paths: &'static [&'static str]) -> ParamDef {
    ParamDef {
        name,
        kind: ParamKind::Reference,
        paths,
        target: None,
    }
}

const fn string(name: &'static str, paths: &'static [&'static str]) -> ParamDef {
    ParamDef {
        name,
        kind: ParamKind::String,
        paths,
        target: None,
    }
}

/// `patient`: the element, counted only where it references a Patient.
const fn patient(path: &'static [&'static str]) -> ParamDef {
    ParamDef {
        name: "patient",
        kind: ParamKind::Reference,
        paths: path,
        target: Some(ResourceType::Patient),
    }
}

/// Parameters every type has. Their values are not read through `paths`:
/// `_id` is the id in the key the entry is indexed under, `_lastUpdated`
/// is [`super::IndexEntry::last_updated`].
const COMMON: &[ParamDef] = &[
    token("_id", &["id"]),
    date("_lastUpdated", &["meta.lastUpdated"]),
];

const IDENTIFIER: ParamDef = token("identifier", &["identifier"]);
const STATUS: ParamDef = token("status", &["status"]);
const CATEGORY: ParamDef = token("category", &["category"]);
const CODE: ParamDef = token("code", &["code"]);
const SUBJECT: ParamDef = reference("subject", &["subject"]);
const PATIENT_SUBJECT: ParamDef = patient(&["subject"]);
const PATIENT_PATIENT: ParamDef = patient(&["patient"]);
const ENCOUNTER: ParamDef = reference("encounter", &["encounter"]);
const NAME: ParamDef = string("name", &["name"]);
const FAMILY: ParamDef = string("family", &["name.family"]);
const GIVEN: ParamDef = string("given", &["name.given"]);
const GENDER: ParamDef = token("gender", &["gender"]);
const ACTIVE: ParamDef = token("active", &["active"]);

const PATIENT: &[ParamDef] = &[
    IDENTIFIER,
    NAME,
    FAMILY,
    GIVEN,
    date("birthdate", &["birthDate"]),
    GENDER,
    ACTIVE,
    date("death-date", &["deceasedDateTime"]),
    reference("general-practitioner", &["generalPractitioner"]),
    reference("organization", &["managingOrganization"]),
];

const PRACTITIONER: &[ParamDef] = &[IDENTIFIER, NAME, FAMILY, GIVEN, GENDER, ACTIVE];

const ORGANIZATION: &[ParamDef] = &[
    IDENTIFIER,
    string("name", &["name", "alias"]),
    ACTIVE,
    token("type", &["type"]),
    reference("partof", &["partOf"]),
];

const ENCOUNTER_PARAMS: &[ParamDef] = &[
    IDENTIFIER,
    STATUS,
    token("class", &["class"]),
    token("type", &["type"]),
    date("date", &["actualPeriod"]),
    PATIENT_SUBJECT,
    SUBJECT,
    reference("participant", &["participant.actor"]),
    reference("service-provider", &["serviceProvider"]),
];

const OBSERVATION: &[ParamDef] = &[
    IDENTIFIER,
    STATUS,
    CATEGORY,
    CODE,
    token("component-code", &["component.code"]),
    token("value-concept", &["valueCodeableConcept"]),
    date(
        "date",
        &[
            "effectiveDateTime",
            "effectivePeriod",
            "effectiveTiming",
            "effectiveInstant",
        ],
    ),
    PATIENT_SUBJECT,
    SUBJECT,
    ENCOUNTER,
    reference("performer", &["performer"]),
];

const CONDITION: &[ParamDef] = &[
    IDENTIFIER,
    CODE,
    CATEGORY,
    token("clinical-status", &["clinicalStatus"]),
    token("verification-status", &["verificationStatus"]),
    token("severity", &["severity"]),
    token("body-site", &["bodySite"]),
    date("onset-date", &["onsetDateTime", "onsetPeriod"]),
    date("abatement-date", &["abatementDateTime", "abatementPeriod"]),
    date("recorded-date", &["recordedDate"]),
    PATIENT_SUBJECT,
    SUBJECT,
    ENCOUNTER,
];

const ALLERGY_INTOLERANCE: &[ParamDef] = &[
    IDENTIFIER,
    token("code", &["code", "reaction.substance"]),
    CATEGORY,
    token("clinical-status", &["clinicalStatus"]),
    token("verification-status", &["verificationStatus"]),
    token("criticality", &["criticality"]),
    token("type", &["type"]),
    date("date", &["recordedDate"]),
    date("last-date", &["lastOccurrence"]),
    PATIENT_PATIENT,
];

const MEDICATION_REQUEST: &[ParamDef] = &[
    IDENTIFIER,
    STATUS,
    token("intent", &["intent"]),
    CATEGORY,
    token("priority", &["priority"]),
    token("code", &["medication.concept"]),
    reference("medication", &["medication.reference"]),
    date("authoredon", &["authoredOn"]),
    PATIENT_SUBJECT,
    SUBJECT,
    ENCOUNTER,
    reference("requester", &["requester"]),
];

const IMMUNIZATION: &[ParamDef] = &[
    IDENTIFIER,
    STATUS,
    token("status-reason", &["statusReason"]),
    token("vaccine-code", &["vaccineCode"]),
    token("reason-code", &["reason.concept"]),
    date("date", &["occurrenceDateTime"]),
    string("lot-number", &["lotNumber"]),
    PATIENT_PATIENT,
    reference("performer", &["performer.actor"]),
];

const PROCEDURE: &[ParamDef] = &[
    IDENTIFIER,
    STATUS,
    CATEGORY,
    CODE,
    token("reason-code", &["reason.concept"]),
    date(
        "date",
        &["occurrenceDateTime", "occurrencePeriod", "occurrenceTiming"],
    ),
    PATIENT_SUBJECT,
    SUBJECT,
    ENCOUNTER,
    reference("performer", &["performer.actor"]),
];

const DIAGNOSTIC_REPORT: &[ParamDef] = &[
    IDENTIFIER,
    STATUS,
    CATEGORY,
    CODE,
    token("conclusion", &["conclusionCode"]),
    date("date", &["effectiveDateTime", "effectivePeriod"]),
    date("issued", &["issued"]),
    PATIENT_SUBJECT,
    SUBJECT,
    ENCOUNTER,
    reference("performer", &["performer"]),
    reference("result", &["result"]),
];

const DOCUMENT_REFERENCE: &[ParamDef] = &[
    IDENTIFIER,
    STATUS,
    token("doc-status", &["docStatus"]),
    token("type", &["type"]),
    CATEGORY,
    date("date", &["date"]),
    date("period", &["period"]),
    PATIENT_SUBJECT,
    SUBJECT,
    reference("author", &["author"]),
    reference("context", &["context"]),
];

const DEVICE: &[ParamDef] = &[
    IDENTIFIER,
    STATUS,
    token("type", &["type"]),
    string("device-name", &["name.value"]),
    string("manufacturer", &["manufacturer"]),
    string("model", &["modelNumber"]),
    reference("organization", &["owner"]),
];

const RESEARCH_STUDY: &[ParamDef] = &[
    IDENTIFIER,
    STATUS,
    string("title", &["title"]),
    token("condition", &["condition"]),
];

const RESEARCH_SUBJECT: &[ParamDef] = &[
    IDENTIFIER,
    STATUS,
    date("date", &["period"]),
    PATIENT_SUBJECT,
    SUBJECT,
    reference("study", &["study"]),
];

const GROUP: &[ParamDef] = &[
    IDENTIFIER,
    token("type", &["type"]),
    token("code", &["code"]),
    token("membership", &["membership"]),
    NAME,
    reference("member", &["member.entity"]),
    reference("managing-entity", &["managingEntity"]),
];

const CONSENT: &[ParamDef] = &[
    IDENTIFIER,
    STATUS,
    CATEGORY,
    date("date", &["date"]),
    date("period", &["period"]),
    PATIENT_SUBJECT,
    SUBJECT,
    reference("grantee", &["grantee"]),
    reference("controller", &["controller"]),
    reference("manager", &["manager"]),
    reference("actor", &["provision.actor.reference"]),
    token("action", &["provision.action"]),
    token("purpose", &["provision.purpose"]),
];

const PROVENANCE: &[ParamDef] = &[
    date("recorded", &["recorded"]),
    date("when", &["occurredDateTime"]),
    reference("target", &["target"]),
    reference("agent", &["agent.who"]),
    reference("entity", &["entity.what"]),
    PATIENT_PATIENT,
    ENCOUNTER,
    token("activity", &["activity"]),
];

const AUDIT_EVENT: &[ParamDef] = &[
    date("date", &["recorded"]),
    token("action", &["action"]),
    CODE,
    CATEGORY,
    token("outcome", &["outcome.code"]),
    token("purpose", &["authorization", "agent.authorization"]),
    PATIENT_PATIENT,
    reference("agent", &["agent.who"]),
    reference("entity", &["entity.what"]),
    reference("source", &["source.observer"]),
    ENCOUNTER,
];

/// The type-specific search parameters of `rt` (without `_id` and
/// `_lastUpdated`, which every type has; see [`param`]).
pub fn params(rt: ResourceType) -> &'static [ParamDef] {
    match rt {
        ResourceType::Patient => PATIENT,
        ResourceType::Practitioner => PRACTITIONER,
        ResourceType::Organization => ORGANIZATION,
        ResourceType::Encounter => ENCOUNTER_PARAMS,
        ResourceType::Observation => OBSERVATION,
        ResourceType::Condition => CONDITION,
        ResourceType::AllergyIntolerance => ALLERGY_INTOLERANCE,
        ResourceType::MedicationRequest => MEDICATION_REQUEST,
        ResourceType::Immunization => IMMUNIZATION,
        ResourceType::Procedure => PROCEDURE,
        ResourceType::DiagnosticReport => DIAGNOSTIC_REPORT,
        ResourceType::DocumentReference => DOCUMENT_REFERENCE,
        ResourceType::Device => DEVICE,
        ResourceType::ResearchStudy => RESEARCH_STUDY,
        ResourceType::ResearchSubject => RESEARCH_SUBJECT,
        ResourceType::Group => GROUP,
        ResourceType::Consent => CONSENT,
        ResourceType::Provenance => PROVENANCE,
        ResourceType::AuditEvent => AUDIT_EVENT,
    }
}

/// The parameter `name` of `rt`, including `_id` and `_lastUpdated`.
pub fn param(rt: ResourceType, name: &str) -> Option<&'static ParamDef> {
    COMMON.iter().chain(params(rt)).find(|p| p.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique_per_type() {
        for rt in ResourceType::ALL {
            let mut seen = HashSet::new();
            for p in COMMON.iter().chain(params(rt)) {
                assert!(seen.insert(p.name), "{rt}: {} twice", p.name);
                assert!(!p.paths.is_empty());
            }
        }
    }

    #[test]
    fn patient_parameters_follow_the_patient_element() {
        for rt in ResourceType::ALL {
            let Some(element) = rt.patient_element() else {
                continue;
            };
            let p = param(rt, "patient").unwrap_or_else(|| panic!("{rt} has no patient"));
            assert_eq!(p.paths, [element], "{rt}");
            assert_eq!(p.target, Some(ResourceType::Patient));
            // R5 names `subject` only where the element is called so.
            assert_eq!(param(rt, "subject").is_some(), element == "subject", "{rt}");
        }
    }

    #[test]
    fn r5_names() {
        let kind = |rt, name| param(rt, name).map(|p| p.kind);
        assert_eq!(
            kind(ResourceType::Immunization, "vaccine-code"),
            Some(ParamKind::Token)
        );
        assert_eq!(kind(ResourceType::Immunization, "code"), None);
        assert_eq!(
            kind(ResourceType::Condition, "onset-date"),
            Some(ParamKind::Date)
        );
        assert_eq!(kind(ResourceType::Condition, "status"), None);
        assert_eq!(
            kind(ResourceType::MedicationRequest, "authoredon"),
            Some(ParamKind::Date)
        );
        assert_eq!(
            kind(ResourceType::DocumentReference, "type"),
            Some(ParamKind::Token)
        );
        assert_eq!(
            kind(ResourceType::ResearchSubject, "study"),
            Some(ParamKind::Reference)
        );
        assert_eq!(
            kind(ResourceType::Group, "member"),
            Some(ParamKind::Reference)
        );
        assert_eq!(
            kind(ResourceType::Organization, "name"),
            Some(ParamKind::String)
        );
        assert_eq!(
            kind(ResourceType::Device, "_lastUpdated"),
            Some(ParamKind::Date)
        );
    }
}
