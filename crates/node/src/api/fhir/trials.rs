//! ResearchStudy and ResearchSubject: FHIR R5 views of the trial state on
//! the ledger (docs/trials.md).
//!
//! A study registered on the ledger is read as `ResearchStudy/<study id>`
//! (the 64 hex digits of its `study.register` leaf hash): its
//! `progressStatus` is the history of its states (research-study-status
//! codes), `version` its current approved protocol version, the protocol
//! document's SHA-256 an identifier, the sponsor and the ethics committee
//! associated parties, its sites references by DID. A study is public on
//! the ledger, so any authenticated client with a read scope reads it.
//!
//! A subject is read as `ResearchSubject/<first 24 hex of the study
//! id>-<its short name>` ([`short_subject`]), only by the subject's own
//! key, the sponsor or the subject's site (anyone else gets the same 404
//! as for an unknown id): `progress` carries its state
//! (research-subject-state) and each milestone, `consent` the ledger's
//! consent entries.

use hygeia_auth::token::Session;
use hygeia_state::accounts::acts_for;
use hygeia_state::trials::{short_subject, Milestone, Study, StudyState, Subject};
use hygeia_state::LedgerState;
use serde_json::{json, Value};

use super::decide;
use super::FhirError;
use crate::node::Node;

/// The system of study identifiers.
pub const STUDY_SYSTEM: &str = "urn:hygeia:study";
/// The system of protocol document hashes.
pub const PROTOCOL_SYSTEM: &str = "urn:hygeia:protocol-sha256";
const STATUS_SYSTEM: &str = "http://hl7.org/fhir/research-study-status";
const PARTY_SYSTEM: &str = "http://hl7.org/fhir/research-study-party-role";
const SUBJECT_STATE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/research-subject-state";
const STATE_TYPE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/research-subject-state-type";
const MILESTONE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/research-subject-milestone";
const DID_SYSTEM: &str = "urn:ietf:rfc:3986";

fn did_reference(did: &str) -> Value {
    json!({"identifier": {"system": DID_SYSTEM, "value": did}})
}

fn publication_status(state: StudyState) -> &'static str {
    match state {
        StudyState::InReview => "draft",
        s if s.is_final() => "retired",
        _ => "active",
    }
}

/// A ledger study as a FHIR R5 ResearchStudy.
pub fn research_study(id: &str, study: &Study) -> Value {
    // Every state the study went through, in order: all actual (none
    // anticipated), the last one current.
    let progress: Vec<Value> = study
        .history
        .iter()
        .map(|(state, _)| {
            json!({
                "state": {"coding": [{"system": STATUS_SYSTEM, "code": state.code(), "display": state.display()}]},
                "actual": true,
            })
        })
        .collect();
    let shown = study.current().or(study.versions.first());
    let mut identifier = vec![json!({"use": "official", "system": STUDY_SYSTEM, "value": id})];
    if let Some(v) = shown {
        identifier.push(json!({"system": PROTOCOL_SYSTEM, "value": v.protocol}));
    }
    let party = |code: &str, did: &str| json!({"role": {"coding": [{"system": PARTY_SYSTEM, "code": code}]}, "party": did_reference(did)});
    let sites: Vec<Value> = study.sites.keys().map(|s| did_reference(s)).collect();
    let mut resource = json!({
        "resourceType": "ResearchStudy",
        "id": id,
        "identifier": identifier,
        "status": publication_status(study.state),
        "associatedParty": [party("sponsor", &study.sponsor), party("irb", &study.committee)],
        "progressStatus": progress,
        "recruitment": {"actualNumber": study.enrolled},
    });
    if let Some(v) = shown {
        resource["version"] = json!(v.version);
    }
    if !sites.is_empty() {
        resource["site"] = json!(sites);
    }
    resource
}

fn coding(system: &str, code: &str) -> Value {
    json!({"coding": [{"system": system, "code": code}]})
}

/// A ledger subject as a FHIR R5 ResearchSubject.
pub fn research_subject(study_id: &str, did: &str, subject: &Subject) -> Value {
    let mut progress = vec![json!({
        "type": coding(STATE_TYPE_SYSTEM, "Enrollment"),
        "subjectState": coding(SUBJECT_STATE_SYSTEM, subject.state.code()),
    })];
    for (milestone, _) in &subject.milestones {
        // The code system's milestones are SignUp, Screened and
        // Randomized; visits and the rest are Hygeia's codes.
        let (system, code) = match milestone {
            Milestone::Screened => (MILESTONE_SYSTEM, "Screened".to_owned()),
            Milestone::Enrolled => (MILESTONE_SYSTEM, "SignUp".to_owned()),
            other => (
                "https://hygeia.health/fhir/CodeSystem/trial-milestone",
                other.to_string(),
            ),
        };
        progress.push(json!({
            "type": coding(STATE_TYPE_SYSTEM, "Milestone"),
            "milestone": coding(system, &code),
        }));
    }
    // Endpoint assessments are milestones of Hygeia's code system, the
    // endpoint's code after `endpoint-`: which endpoint, never the finding.
    for assessment in &subject.endpoints {
        progress.push(json!({
            "type": coding(STATE_TYPE_SYSTEM, "Milestone"),
            "milestone": coding(
                "https://hygeia.health/fhir/CodeSystem/trial-milestone",
                &format!("endpoint-{}", assessment.endpoint),
            ),
        }));
    }
    let active = !subject.state.is_final();
    let mut resource = json!({
        "resourceType": "ResearchSubject",
        "id": subject_id(study_id, did),
        "identifier": [{"system": DID_SYSTEM, "value": did}],
        "status": if active { "active" } else { "retired" },
        "progress": progress,
        "study": {"reference": format!("ResearchStudy/{study_id}")},
        "subject": did_reference(did),
    });
    // The grants backing the consents, as the FHIR Consents they are
    // served as (FHIR has no empty lists).
    if !subject.grants.is_empty() {
        resource["consent"] = subject
            .grants
            .iter()
            .map(|grant| json!({"reference": format!("Consent/{grant}")}))
            .collect();
    }
    resource
}

/// A subject's FHIR id.
pub fn subject_id(study_id: &str, did: &str) -> String {
    format!(
        "{}-{}",
        &study_id[..24.min(study_id.len())],
        short_subject(did)
    )
}

/// Whether `id` names a ledger study (64 lowercase hex digits) that exists.
pub fn study_of<'a>(state: &'a LedgerState, id: &str) -> Option<&'a Study> {
    state.trials.study(id)
}

/// `GET /fhir/ResearchStudy/{id}` for a ledger study, if `id` is one.
pub fn read_study(node: &Node, id: &str) -> Option<Value> {
    let committed = node.state.read();
    study_of(&committed.state, id).map(|s| research_study(id, s))
}

/// Whether `id` has the shape of a ledger subject's id.
pub fn is_subject_id(id: &str) -> bool {
    id.len() == 57
        && id.as_bytes()[24] == b'-'
        && id
            .bytes()
            .enumerate()
            .all(|(i, b)| i == 24 || b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `GET /fhir/ResearchSubject/{id}` for a ledger subject: only the
/// subject's key, the sponsor and the subject's site see it; anyone else
/// gets the 404 of an unknown id.
pub fn read_subject(node: &Node, session: &Session, id: &str) -> Result<Value, FhirError> {
    let committed = node.state.read();
    let state = &committed.state;
    let (prefix, short) = id.split_at(24);
    let short = &short[1..];
    for (study_id, study) in state.trials.studies() {
        if !study_id.starts_with(prefix) {
            continue;
        }
        for (did, subject) in state.trials.subjects_of(study_id) {
            if short_subject(did) != short {
                continue;
            }
            let reader = &session.did;
            let allowed = reader == did
                || acts_for(state, reader, &study.sponsor)
                || acts_for(state, reader, &subject.site);
            if allowed {
                return Ok(research_subject(study_id, did, subject));
            }
        }
    }
    Err(decide::not_found(&format!("ResearchSubject/{id}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the R5 example does, ours does: the same code systems in
    /// `progressStatus` and ResearchSubject `progress`, and each resource
    /// passes the validator the FHIR API uses.
    #[test]
    fn views_follow_the_r5_examples_and_validate() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/vectors/fhir-r5-workflows"
        );
        let read = |name: &str| -> Value {
            serde_json::from_str(&std::fs::read_to_string(format!("{dir}/{name}")).unwrap())
                .unwrap()
        };
        let example = read("ResearchStudy-example-ctgov-study-record.json");
        let system = example["progressStatus"][0]["state"]["coding"][0]["system"].clone();
        assert_eq!(system, STATUS_SYSTEM);
        hygeia_fhir::validate::validate(&example, None).unwrap();
        let subject_example = read("ResearchSubject-example-crossover-placebo-to-drug.json");
        assert_eq!(
            subject_example["progress"][1]["subjectState"]["coding"][0]["system"],
            SUBJECT_STATE_SYSTEM
        );
        assert_eq!(
            subject_example["progress"][0]["type"]["coding"][0]["system"],
            STATE_TYPE_SYSTEM
        );

        let study = Study {
            sponsor: "did:web:pharma.example".into(),
            committee: "did:web:irb.example".into(),
            state: StudyState::Recruiting,
            versions: vec![hygeia_state::trials::ProtocolVersion {
                version: "1.0".into(),
                protocol: "ab".repeat(32),
                reconsent: true,
                proposed_at: 3,
                approved_at: Some(4),
            }],
            sites: Default::default(),
            registered_at: 3,
            history: vec![
                (StudyState::InReview, 3),
                (StudyState::Approved, 4),
                (StudyState::Recruiting, 5),
            ],
            subjects: 1,
            enrolled: 1,
        };
        let id = "cd".repeat(32);
        let resource = research_study(&id, &study);
        hygeia_fhir::validate::validate(&resource, None).unwrap();
        assert_eq!(
            resource["progressStatus"][2]["state"]["coding"][0]["code"],
            "recruiting"
        );
        assert_eq!(resource["version"], "1.0");
        assert_eq!(resource["status"], "active");

        let subject = Subject {
            site: "did:web:site.example".into(),
            state: hygeia_state::trials::SubjectState::OnStudy,
            consented_version: 0,
            consents: vec![(0, "12".repeat(32), 6)],
            milestones: vec![
                (Milestone::Screened, 7),
                (Milestone::Enrolled, 8),
                (Milestone::Visit(1), 9),
            ],
            history: Vec::new(),
            last_visit: 1,
            deviations: Vec::new(),
            withdrawn_by_subject: false,
            window_from: 0,
            window_until: None,
            grants: vec!["34".repeat(32)],
            endpoints: vec![hygeia_state::trials::EndpointAssessment {
                endpoint: "primary".into(),
                report: "56".repeat(32),
                index: 10,
            }],
        };
        let did = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK";
        let resource = research_subject(&id, did, &subject);
        hygeia_fhir::validate::validate(&resource, None).unwrap();
        assert!(is_subject_id(resource["id"].as_str().unwrap()));
        assert_eq!(
            resource["progress"][0]["subjectState"]["coding"][0]["code"],
            "on-study"
        );
        assert_eq!(
            resource["progress"][2]["milestone"]["coding"][0]["code"],
            "SignUp"
        );
        assert_eq!(
            resource["progress"][4]["milestone"]["coding"][0]["code"],
            "endpoint-primary"
        );
        assert_eq!(
            resource["consent"][0]["reference"],
            format!("Consent/{}", "34".repeat(32))
        );
    }
}
