//! Fixtures shared by the integration tests.

#![allow(dead_code)]

use std::collections::BTreeSet;

use hygeia_policy::{
    AccessRequest, Action, ConsentEvent, Grant, Licence, PurposeOfUse, RecordRef, Requester, Scope,
};

pub const PATIENT: &str = "did:key:zPatientAlice";
pub const OTHER_PATIENT: &str = "did:key:zPatientBob";
pub const CLINICIAN: &str = "did:key:zClinicianCarol";
pub const OTHER_CLINICIAN: &str = "did:key:zClinicianDan";
pub const HOSPITAL: &str = "did:web:hospital.example";
pub const GUARDIAN: &str = "did:key:zGuardianEve";

/// 2025-01-01T00:00:00Z.
pub const T0: i64 = 1_735_689_600;
pub const DAY: i64 = 86_400;

/// A 30-day TREAT read grant of lab records from `PATIENT` to `CLINICIAN`.
pub fn lab_grant(id: &str) -> Grant {
    Grant {
        id: id.to_owned(),
        patient: PATIENT.to_owned(),
        grantee: CLINICIAN.to_owned(),
        scope: Scope::categories(["lab"]),
        actions: [Action::Read].into(),
        purpose: PurposeOfUse::Treatment,
        not_before: T0,
        not_after: T0 + 30 * DAY,
        jurisdictions: BTreeSet::new(),
    }
}

pub fn grant_by(author: &str, grant: Grant) -> ConsentEvent {
    ConsentEvent::Grant {
        author: author.to_owned(),
        grant,
    }
}

pub fn revoke_by(author: &str, grant_id: &str) -> ConsentEvent {
    ConsentEvent::Revoke {
        author: author.to_owned(),
        grant_id: grant_id.to_owned(),
    }
}

pub fn clinician(did: &str) -> Requester {
    Requester {
        did: did.to_owned(),
        roles: ["clinician".to_owned()].into(),
        organizations: BTreeSet::new(),
        suspended: false,
        jurisdiction: Some("FR".to_owned()),
        licence: Some(Licence {
            jurisdiction: "FR".to_owned(),
            profession: "physician".to_owned(),
        }),
    }
}

/// `CLINICIAN` reading `PATIENT`'s lab Observation `obs-1` for TREAT one day
/// into the grant.
pub fn lab_read() -> AccessRequest {
    AccessRequest {
        requester: clinician(CLINICIAN),
        patient: PATIENT.to_owned(),
        action: Action::Read,
        purpose: PurposeOfUse::Treatment,
        record: RecordRef {
            id: "obs-1".to_owned(),
            resource_type: "Observation".to_owned(),
            category: Some("lab".to_owned()),
        },
        time: T0 + DAY,
        break_glass_justification: None,
    }
}
