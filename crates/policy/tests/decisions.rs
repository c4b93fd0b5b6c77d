//! One test per rule of the default governance policies and of consent.

mod common;

use common::*;
use hygeia_policy::{
    AccessRequest, Action, ConsentEvent, Decision, Effect, Licence, PolicyEngine, PurposeOfUse,
    Requester, Scope,
};

const CONSENT: &str = "consent-grant";
const JURISDICTION: &str = "forbid-outside-grant-jurisdiction";
const SUSPENDED: &str = "forbid-suspended-requester";
const BREAK_GLASS: &str = "break-glass-emergency-read";
const NO_LICENCE: &str = "forbid-treatment-without-licence";

fn engine_with(events: &[ConsentEvent]) -> PolicyEngine {
    let mut engine = PolicyEngine::new();
    for event in events {
        engine.apply(event).unwrap();
    }
    engine
}

fn assert_permit(d: &Decision, reasons: &[&str], grants: &[&str]) {
    assert_eq!(d.effect, Effect::Permit, "{d:?}");
    assert!(!d.break_glass, "{d:?}");
    assert_eq!(d.reasons, reasons, "{d:?}");
    assert_eq!(d.grants, grants, "{d:?}");
    assert!(d.errors.is_empty(), "{d:?}");
}

fn assert_deny(d: &Decision, reasons: &[&str]) {
    assert_eq!(d.effect, Effect::Deny, "{d:?}");
    assert!(!d.break_glass, "{d:?}");
    assert_eq!(d.reasons, reasons, "{d:?}");
    assert!(d.grants.is_empty(), "{d:?}");
    assert!(d.errors.is_empty(), "{d:?}");
}

fn with(f: impl FnOnce(&mut AccessRequest)) -> AccessRequest {
    let mut r = lab_read();
    f(&mut r);
    r
}

#[test]
fn permit_with_an_active_matching_grant() {
    let engine = engine_with(&[grant_by(PATIENT, lab_grant("g1"))]);
    let d = engine.decide(&lab_read());
    assert_permit(&d, &[CONSENT], &["g1"]);
    assert_eq!(d.governance_version, 0);
}

#[test]
fn deny_by_default_without_a_grant() {
    let engine = PolicyEngine::new();
    let d = engine.decide(&lab_read());
    assert_deny(&d, &[]);
    assert!(d.is_default_deny());
    // A grant to someone else, or from another patient, does not help.
    let mut other = lab_grant("g1");
    other.grantee = OTHER_CLINICIAN.to_owned();
    let mut foreign = lab_grant("g2");
    foreign.patient = OTHER_PATIENT.to_owned();
    let engine = engine_with(&[grant_by(PATIENT, other), grant_by(OTHER_PATIENT, foreign)]);
    assert_deny(&engine.decide(&lab_read()), &[]);
}

#[test]
fn deny_after_revocation() {
    let mut engine = engine_with(&[grant_by(PATIENT, lab_grant("g1"))]);
    assert!(engine.decide(&lab_read()).is_permit());
    engine.apply(&revoke_by(PATIENT, "g1")).unwrap();
    assert_deny(&engine.decide(&lab_read()), &[]);
}

#[test]
fn deny_after_expiry_and_before_start() {
    let engine = engine_with(&[grant_by(PATIENT, lab_grant("g1"))]);
    let last_second = with(|r| r.time = T0 + 30 * DAY - 1);
    assert!(engine.decide(&last_second).is_permit());
    let expired = with(|r| r.time = T0 + 30 * DAY);
    assert_deny(&engine.decide(&expired), &[]);
    let first_second = with(|r| r.time = T0);
    assert!(engine.decide(&first_second).is_permit());
    let too_early = with(|r| r.time = T0 - 1);
    assert_deny(&engine.decide(&too_early), &[]);
}

#[test]
fn deny_outside_the_category_scope() {
    let engine = engine_with(&[grant_by(PATIENT, lab_grant("g1"))]);
    let mental = with(|r| r.record.category = Some("mental-health".to_owned()));
    assert_deny(&engine.decide(&mental), &[]);
    let uncategorized = with(|r| r.record.category = None);
    assert_deny(&engine.decide(&uncategorized), &[]);
}

#[test]
fn resource_type_and_record_scopes() {
    let mut by_type = lab_grant("types");
    by_type.scope = Scope::resource_types(["Observation"]);
    let mut by_record = lab_grant("records");
    by_record.grantee = OTHER_CLINICIAN.to_owned();
    by_record.scope = Scope::record_ids(["obs-1"]);
    let engine = engine_with(&[grant_by(PATIENT, by_type), grant_by(PATIENT, by_record)]);

    assert_permit(&engine.decide(&lab_read()), &[CONSENT], &["types"]);
    let condition = with(|r| r.record.resource_type = "Condition".to_owned());
    assert_deny(&engine.decide(&condition), &[]);

    let other = |id: &str| {
        with(|r| {
            r.requester = clinician(OTHER_CLINICIAN);
            r.record.id = id.to_owned();
        })
    };
    assert_permit(&engine.decide(&other("obs-1")), &[CONSENT], &["records"]);
    assert_deny(&engine.decide(&other("obs-2")), &[]);
}

#[test]
fn scope_sets_combine_as_an_intersection() {
    let mut g = lab_grant("g1");
    g.scope = Scope {
        categories: ["lab".to_owned()].into(),
        resource_types: ["Observation".to_owned()].into(),
        ..Scope::default()
    };
    let engine = engine_with(&[grant_by(PATIENT, g)]);
    assert!(engine.decide(&lab_read()).is_permit());
    let lab_report = with(|r| r.record.resource_type = "DiagnosticReport".to_owned());
    assert_deny(&engine.decide(&lab_report), &[]);
    let mental_obs = with(|r| r.record.category = Some("mental-health".to_owned()));
    assert_deny(&engine.decide(&mental_obs), &[]);
}

#[test]
fn deny_for_an_action_or_purpose_not_granted() {
    let engine = engine_with(&[grant_by(PATIENT, lab_grant("g1"))]);
    let write = with(|r| r.action = Action::Write);
    assert_deny(&engine.decide(&write), &[]);
    let research = with(|r| r.purpose = PurposeOfUse::Research);
    assert_deny(&engine.decide(&research), &[]);
    // TREAT covers its specialization ETREAT.
    let emergency = with(|r| r.purpose = PurposeOfUse::EmergencyTreatment);
    assert_permit(&engine.decide(&emergency), &[CONSENT], &["g1"]);

    let mut writer = lab_grant("g2");
    writer.actions = [Action::Write].into();
    writer.purpose = PurposeOfUse::EmergencyTreatment;
    let engine = engine_with(&[grant_by(PATIENT, writer)]);
    let write_emergency = with(|r| {
        r.action = Action::Write;
        r.purpose = PurposeOfUse::EmergencyTreatment;
    });
    assert_permit(&engine.decide(&write_emergency), &[CONSENT], &["g2"]);
    // ETREAT does not cover TREAT.
    let write_treat = with(|r| r.action = Action::Write);
    assert_deny(&engine.decide(&write_treat), &[]);
}

#[test]
fn jurisdiction_forbid_overrides_the_grant() {
    let mut g = lab_grant("g1");
    g.jurisdictions = ["FR".to_owned(), "BE".to_owned()].into();
    let engine = engine_with(&[grant_by(PATIENT, g)]);
    assert_permit(&engine.decide(&lab_read()), &[CONSENT], &["g1"]);
    let from_us = with(|r| r.requester.jurisdiction = Some("US".to_owned()));
    assert_deny(&engine.decide(&from_us), &[JURISDICTION]);
    let from_nowhere = with(|r| r.requester.jurisdiction = None);
    assert_deny(&engine.decide(&from_nowhere), &[JURISDICTION]);
    // The forbid fires on the grant whatever the record: it is named even
    // when the grant would not have covered the record anyway.
    let mental = with(|r| {
        r.requester.jurisdiction = Some("US".to_owned());
        r.record.category = Some("mental-health".to_owned());
    });
    assert_deny(&engine.decide(&mental), &[JURISDICTION]);
}

#[test]
fn an_unrestricted_grant_still_applies_beside_a_restricted_one() {
    let mut restricted = lab_grant("g1");
    restricted.jurisdictions = ["FR".to_owned()].into();
    let engine = engine_with(&[
        grant_by(PATIENT, restricted),
        grant_by(PATIENT, lab_grant("g2")),
    ]);
    let from_us = with(|r| r.requester.jurisdiction = Some("US".to_owned()));
    assert_permit(&engine.decide(&from_us), &[CONSENT], &["g2"]);
    assert_permit(&engine.decide(&lab_read()), &[CONSENT], &["g1", "g2"]);
}

#[test]
fn suspended_clinician_is_forbidden_even_with_a_grant() {
    let engine = engine_with(&[grant_by(PATIENT, lab_grant("g1"))]);
    let suspended = with(|r| r.requester.suspended = true);
    assert_deny(&engine.decide(&suspended), &[SUSPENDED]);
    // Break-glass does not help either.
    let emergency = with(|r| {
        r.requester.suspended = true;
        r.purpose = PurposeOfUse::EmergencyTreatment;
        r.break_glass_justification = Some("cardiac arrest".to_owned());
    });
    assert_deny(&engine.decide(&emergency), &[SUSPENDED]);
}

fn break_glass_read() -> AccessRequest {
    with(|r| {
        r.requester = clinician(OTHER_CLINICIAN);
        r.purpose = PurposeOfUse::EmergencyTreatment;
        r.record.category = Some("mental-health".to_owned());
        r.break_glass_justification = Some("unconscious patient in the ER".to_owned());
    })
}

#[test]
fn break_glass_is_permitted_and_flagged_for_a_clinician_with_justification() {
    let engine = engine_with(&[grant_by(PATIENT, lab_grant("g1"))]);
    let d = engine.decide(&break_glass_read());
    assert_eq!(d.effect, Effect::Permit);
    assert!(d.break_glass);
    assert_eq!(d.reasons, [BREAK_GLASS]);
    assert!(d.grants.is_empty());
    // With no consent state at all, too.
    assert!(PolicyEngine::new().decide(&break_glass_read()).break_glass);
}

#[test]
fn break_glass_is_refused_without_justification_or_for_a_non_clinician() {
    let engine = PolicyEngine::new();
    let mut no_justification = break_glass_read();
    no_justification.break_glass_justification = None;
    assert_deny(&engine.decide(&no_justification), &[]);
    for blank in ["", "   ", "\n\t"] {
        let mut r = break_glass_read();
        r.break_glass_justification = Some(blank.to_owned());
        assert_deny(&engine.decide(&r), &[]);
    }
    let mut not_clinician = break_glass_read();
    not_clinician.requester.roles = ["billing".to_owned()].into();
    assert_deny(&engine.decide(&not_clinician), &[]);
    let mut not_emergency = break_glass_read();
    not_emergency.purpose = PurposeOfUse::Treatment;
    assert_deny(&engine.decide(&not_emergency), &[]);
    let mut write = break_glass_read();
    write.action = Action::Write;
    assert_deny(&engine.decide(&write), &[]);
}

#[test]
fn treatment_needs_a_licence_even_with_consent() {
    let engine = engine_with(&[grant_by(PATIENT, lab_grant("g1"))]);
    let unlicensed = with(|r| r.requester.licence = None);
    assert_deny(&engine.decide(&unlicensed), &[NO_LICENCE]);
    // A licence from another country counts: which issuers are trusted for
    // which countries is the node's trust list, not the policy's concern.
    let foreign = with(|r| {
        r.requester.licence = Some(Licence {
            jurisdiction: "DE".to_owned(),
            profession: "physician".to_owned(),
        })
    });
    assert_permit(&engine.decide(&foreign), &[CONSENT], &["g1"]);
}

#[test]
fn break_glass_needs_a_licence() {
    let mut unlicensed = break_glass_read();
    unlicensed.requester.licence = None;
    assert_deny(&PolicyEngine::new().decide(&unlicensed), &[NO_LICENCE]);
}

#[test]
fn purposes_other_than_treatment_and_the_patient_need_no_licence() {
    let mut grant = lab_grant("g1");
    grant.purpose = PurposeOfUse::Research;
    let engine = engine_with(&[grant_by(PATIENT, grant)]);
    let research = with(|r| {
        r.requester.licence = None;
        r.purpose = PurposeOfUse::Research;
    });
    assert_permit(&engine.decide(&research), &[CONSENT], &["g1"]);
    let own = with(|r| {
        r.requester = Requester {
            did: PATIENT.to_owned(),
            ..Requester::default()
        };
    });
    assert!(engine.decide(&own).is_permit());
}

#[test]
fn consent_is_preferred_to_break_glass() {
    let engine = engine_with(&[grant_by(PATIENT, lab_grant("g1"))]);
    let r = with(|r| {
        r.purpose = PurposeOfUse::EmergencyTreatment;
        r.break_glass_justification = Some("just in case".to_owned());
    });
    assert_permit(&engine.decide(&r), &[CONSENT], &["g1"]);
}

#[test]
fn break_glass_passes_a_grant_jurisdiction_restriction() {
    // The restriction vetoes that grant, not an emergency read that does not
    // rest on it.
    let mut g = lab_grant("g1");
    g.jurisdictions = ["FR".to_owned()].into();
    let engine = engine_with(&[grant_by(PATIENT, g)]);
    let r = with(|r| {
        r.requester.jurisdiction = Some("US".to_owned());
        r.purpose = PurposeOfUse::EmergencyTreatment;
        r.break_glass_justification = Some("unconscious patient".to_owned());
    });
    let d = engine.decide(&r);
    assert!(d.is_permit() && d.break_glass, "{d:?}");
    assert_eq!(d.reasons, [BREAK_GLASS]);
}

#[test]
fn a_grant_to_an_organization_covers_its_members_only() {
    let mut g = lab_grant("org");
    g.grantee = HOSPITAL.to_owned();
    let engine = engine_with(&[grant_by(PATIENT, g)]);
    let member = with(|r| {
        r.requester = clinician(OTHER_CLINICIAN);
        r.requester.organizations = [HOSPITAL.to_owned()].into();
    });
    assert_permit(&engine.decide(&member), &[CONSENT], &["org"]);
    let outsider = with(|r| r.requester = clinician(OTHER_CLINICIAN));
    assert_deny(&engine.decide(&outsider), &[]);
}

#[test]
fn a_delegates_grant_counts_as_the_patients() {
    let engine = engine_with(&[
        ConsentEvent::RegisterDelegate {
            author: PATIENT.to_owned(),
            patient: PATIENT.to_owned(),
            delegate: GUARDIAN.to_owned(),
        },
        grant_by(GUARDIAN, lab_grant("g1")),
    ]);
    assert_permit(&engine.decide(&lab_read()), &[CONSENT], &["g1"]);
}

#[test]
fn refused_events_change_no_decision() {
    let mut engine = PolicyEngine::new();
    // The grantee granting itself access.
    let err = engine
        .apply(&grant_by(CLINICIAN, lab_grant("g1")))
        .unwrap_err();
    assert_eq!(err.code(), "consent.grantee_widening");
    assert_deny(&engine.decide(&lab_read()), &[]);
    engine.apply(&grant_by(PATIENT, lab_grant("g1"))).unwrap();
    // Another patient revoking it.
    let err = engine.apply(&revoke_by(OTHER_PATIENT, "g1")).unwrap_err();
    assert_eq!(err.code(), "consent.foreign_grant");
    assert!(engine.decide(&lab_read()).is_permit());
}

#[test]
fn governance_policies_are_versioned_and_validated() {
    let mut engine = engine_with(&[grant_by(PATIENT, lab_grant("g1"))]);
    // Not validated: refused with Cedar's error, nothing changes.
    let bad =
        r#"@id("x") permit(principal, action, resource) when { resource.owner == principal };"#;
    let err = engine.install_governance(1, bad).unwrap_err();
    assert_eq!(err.code(), "governance.validation");
    assert_eq!(engine.governance().version(), 0);

    // A moratorium on writes, on top of the defaults.
    let text = format!(
        "{}\n@id(\"write-moratorium\")\nforbid(principal, action == Hygeia::Action::\"write\", resource);\n",
        hygeia_policy::governance::DEFAULT_POLICIES
    );
    engine.install_governance(3, &text).unwrap();
    assert_eq!(engine.governance().version(), 3);
    let d = engine.decide(&lab_read());
    assert_permit(&d, &[CONSENT], &["g1"]);
    assert_eq!(d.governance_version, 3);

    let mut writer = lab_grant("g2");
    writer.actions = [Action::Write].into();
    engine.apply(&grant_by(PATIENT, writer)).unwrap();
    let write = with(|r| r.action = Action::Write);
    assert_deny(&engine.decide(&write), &["write-moratorium"]);

    let err = engine.install_governance(3, &text).unwrap_err();
    assert_eq!(err.code(), "governance.stale_version");
    let err = engine.install_governance(2, &text).unwrap_err();
    assert_eq!(err.code(), "governance.stale_version");
}

#[test]
fn governance_can_drop_break_glass() {
    let mut engine = PolicyEngine::new();
    assert!(engine.decide(&break_glass_read()).is_permit());
    let without: String = hygeia_policy::governance::DEFAULT_POLICIES
        .split("@id(\"break-glass-emergency-read\")")
        .next()
        .unwrap_or_default()
        .to_owned();
    engine.install_governance(1, &without).unwrap();
    assert_deny(&engine.decide(&break_glass_read()), &[]);
}

#[test]
fn decisions_serialize_for_the_log() {
    let engine = engine_with(&[grant_by(PATIENT, lab_grant("g1"))]);
    let json = serde_json::to_value(engine.decide(&lab_read())).unwrap();
    assert_eq!(json["effect"], "permit");
    assert_eq!(json["reasons"][0], CONSENT);
    assert_eq!(json["grants"][0], "g1");
    let request: AccessRequest =
        serde_json::from_value(serde_json::to_value(lab_read()).unwrap()).unwrap();
    assert_eq!(request, lab_read());
}

#[test]
fn patients_read_their_own_records_and_governance_can_change_that() {
    let mut engine = PolicyEngine::new();
    let own = with(|r| {
        r.requester = clinician(PATIENT);
        r.requester.roles.clear();
    });
    assert_permit(&engine.decide(&own), &["patient-own-records"], &[]);
    // A governance set without the rule takes it away.
    let text = hygeia_policy::governance::DEFAULT_POLICIES.replace(
        "@id(\"patient-own-records\")\npermit (principal, action, resource)\nwhen { principal == resource.patient };",
        "",
    );
    assert_ne!(text, hygeia_policy::governance::DEFAULT_POLICIES);
    engine.install_governance(1, &text).unwrap();
    assert_deny(&engine.decide(&own), &[]);
    assert_deny(&engine.decide(&lab_read()), &[]);
}
