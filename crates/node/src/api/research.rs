//! Research eligibility over the node (docs/zk.md, "Research eligibility
//! over the node"): a researcher publishes criteria, consenting patients
//! answer with zero-knowledge eligibility responses, and the researcher
//! reads a tally of pseudonyms.
//!
//! - `POST /v1/research/studies` (signed, a member with role `researcher`)
//! - `GET /v1/research/studies/{id}` (public: the criteria)
//! - `POST /v1/research/studies/{id}/responses` (signed, a patient with an
//!   active `HRESCH` grant to the researcher or its organization)
//! - `GET /v1/research/studies/{id}/tally` (signed, the study's researcher)
//! - `DELETE /v1/research/studies/{id}` (signed, the study's researcher)

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hygeia_credentials::zk::{Criteria, EligibilityResponse, Range, Requirement, ZkError};
use hygeia_identity::{Did, PublicKey};
use hygeia_policy::PurposeOfUse;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::auth::authenticate;
use super::error::ApiError;
use crate::node::{unix_now, Node};
use crate::research::ResearchError;
use crate::state::LedgerState;

/// Largest body of a study or an answer.
pub const MAX_RESEARCH_BODY: usize = hygeia_credentials::zk::eligibility::MAX_ELIGIBILITY_BYTES;

/// What a researcher publishes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewStudy {
    pub study_id: String,
    /// The attribute's name, e.g. `hba1c-percent-x10`.
    pub attribute: String,
    /// The LOINC code the credential must carry, e.g. `4548-4`.
    #[serde(default)]
    pub loinc: Option<String>,
    /// `{"min_inclusive": 65, "max_exclusive": 90}` (either may be absent).
    pub range: Range,
    /// DIDs of the issuers whose credentials count.
    pub accepted_issuers: Vec<String>,
}

impl From<ResearchError> for ApiError {
    fn from(e: ResearchError) -> Self {
        if let ResearchError::Store(_) = e {
            // Logged with an incident id; the client learns no detail.
            return ApiError::internal(e.to_string());
        }
        let status = match &e {
            ResearchError::StudyExists(_) | ResearchError::AlreadyAnswered(_) => {
                StatusCode::CONFLICT
            }
            ResearchError::UnknownStudy(_) => StatusCode::NOT_FOUND,
            ResearchError::TooManyStudies => StatusCode::SERVICE_UNAVAILABLE,
            ResearchError::TooManyOfYours => StatusCode::TOO_MANY_REQUESTS,
            ResearchError::NotOwner(_) => StatusCode::FORBIDDEN,
            ResearchError::Zk(zk) => zk_status(zk),
            ResearchError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.code(), e.to_string())
    }
}

fn zk_status(e: &ZkError) -> StatusCode {
    match e {
        ZkError::Malformed(_) => StatusCode::BAD_REQUEST,
        ZkError::EligibilityDuplicateToken | ZkError::EligibilityDuplicateCredential => {
            StatusCode::CONFLICT
        }
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

fn zk_error(e: ZkError) -> ApiError {
    ApiError::from(ResearchError::Zk(e))
}

/// The verifier identifier a study's proofs are bound to: the researcher
/// and the study, so a proof made for one study counts for no other.
pub fn study_verifier(researcher: &str, study_id: &str) -> String {
    format!("{researcher}#{study_id}")
}

/// Whether `did` may publish studies: an active member, with role
/// `researcher`, of some organization.
fn is_researcher(state: &LedgerState, did: &str) -> bool {
    let requester = state.participants.requester(did);
    !requester.suspended && requester.roles.contains("researcher")
}

/// Whether `patient` holds, at `now`, an unrevoked grant with purpose
/// `HRESCH` to `researcher` or to one of its organizations. A grant that
/// lists jurisdictions counts only if the researcher acts from one of them.
pub fn has_research_consent(
    state: &LedgerState,
    patient: &str,
    researcher: &str,
    now: i64,
) -> bool {
    let requester = state.participants.requester(researcher);
    let consents = state.policy.consents();
    std::iter::once(researcher)
        .chain(requester.organizations.iter().map(String::as_str))
        .flat_map(|grantee| consents.grants_between(patient, grantee))
        .any(|grant| {
            grant.purpose == PurposeOfUse::Research
                && grant.is_active_at(now)
                && (grant.jurisdictions.is_empty()
                    || requester
                        .jurisdiction
                        .as_ref()
                        .is_some_and(|j| grant.jurisdictions.contains(j)))
        })
}

/// The key each accepted issuer signs with: a did:key's own, or the admin
/// key of an organization registered on this network.
fn issuer_keys(
    state: &LedgerState,
    issuers: &[String],
) -> Result<Vec<(String, PublicKey)>, ApiError> {
    let mut trusted = Vec::new();
    for issuer in issuers {
        let key: Option<PublicKey> = if issuer.starts_with("did:key:") {
            Did::parse_cached(issuer).ok().map(|d| *d.public_key())
        } else {
            state
                .participants
                .org(issuer)
                .and_then(|org| Did::parse_cached(&org.admin).ok())
                .map(|d| *d.public_key())
        };
        let key = key.ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "research.unknown_issuer",
                format!(
                    "accepted issuer {:?} is neither a did:key nor an organization registered on this network",
                    issuer.chars().take(200).collect::<String>()
                ),
            )
        })?;
        trusted.push((issuer.clone(), key));
    }
    Ok(trusted)
}

/// Reads a study body into the criteria `researcher` publishes (with a
/// fresh nonce). Refuses bad JSON (400 `invalid_body`) and what the zk
/// library refuses (422, its code).
pub fn parse_study(body: &[u8], researcher: &str) -> Result<Criteria, ApiError> {
    let study: NewStudy = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!("a study is {{study_id, attribute, loinc?, range, accepted_issuers}}: {e}"),
        )
    })?;
    let requirement = Requirement::new(&study.attribute, study.loinc.as_deref(), study.range)
        .map_err(zk_error)?;
    Criteria::new(
        &study.study_id,
        requirement,
        study.accepted_issuers,
        &study_verifier(researcher, &study.study_id),
    )
    .map_err(zk_error)
}

fn check_body(who: &super::auth::Caller, body: &[u8]) -> Result<(), ApiError> {
    who.check_body(&Sha256::digest(body).into())
        .map_err(ApiError::from)
}

/// `POST /v1/research/studies`.
pub async fn create(
    State(node): State<Arc<Node>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let who = authenticate(&node, &method, &uri, &headers)?;
    check_body(&who, &body)?;
    let researcher = who.did.as_str();
    let criteria = parse_study(&body, researcher)?;
    let issuers = {
        let committed = node.state.read();
        if !is_researcher(&committed.state, researcher) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "research.not_researcher",
                "only an active member with the role researcher in a registered organization publishes studies",
            ));
        }
        issuer_keys(&committed.state, &criteria.accepted_issuers)?
    };
    node.research
        .create(researcher, criteria.clone(), issuers)?;
    tracing::info!(study = %criteria.study_id, "research study published");
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "study_id": criteria.study_id,
            "researcher": researcher,
            "criteria": criteria,
        })),
    )
        .into_response())
}

/// `GET /v1/research/studies/{id}`: what a patient needs to answer.
pub async fn criteria(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (researcher, criteria) = node.research.criteria(&id)?;
    Ok(Json(json!({
        "study_id": criteria.study_id,
        "researcher": researcher,
        "criteria": criteria,
    })))
}

/// `POST /v1/research/studies/{id}/responses`: a patient's answer.
pub async fn answer(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let who = authenticate(&node, &method, &uri, &headers)?;
    check_body(&who, &body)?;
    let patient = who.did.as_str();
    let (researcher, _) = node.research.criteria(&id)?;
    let now = unix_now();
    let consented =
        has_research_consent(&node.state.read().state, patient, &researcher, now as i64);
    if !consented {
        tracing::info!(study = %id, outcome = "research.no_consent", "eligibility answer refused");
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "research.no_consent",
            format!("answering needs an active consent grant with purpose HRESCH to {researcher} or its organization"),
        ));
    }
    let response = EligibilityResponse::parse(&body).map_err(zk_error)?;
    let study = id.clone();
    let patient = patient.to_owned();
    let node_for_work = node.clone();
    // Verifying a Bulletproof is CPU work: off the async workers.
    let counted = tokio::task::spawn_blocking(move || {
        node_for_work
            .research
            .answer(&study, &patient, &response, now)
            .map(|()| response.enrolment_token().to_string())
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?;
    match counted {
        Ok(token) => {
            tracing::info!(study = %id, outcome = "counted", "eligibility answer");
            Ok((
                StatusCode::CREATED,
                Json(json!({"study_id": id, "counted": true, "enrolment_token": token})),
            )
                .into_response())
        }
        Err(e) => {
            tracing::info!(study = %id, outcome = e.code(), "eligibility answer refused");
            Err(e.into())
        }
    }
}

/// `DELETE /v1/research/studies/{id}`: the study and its tally are
/// forgotten (signed, the study's researcher).
pub async fn delete(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let who = authenticate(&node, &method, &uri, &headers)?;
    node.research.delete(&id, who.did.as_str())?;
    tracing::info!(study = %id, "research study deleted");
    Ok((
        StatusCode::OK,
        Json(json!({"study_id": id, "deleted": true})),
    )
        .into_response())
}

/// `GET /v1/research/answers`: the studies the signer answered through this
/// node, for their wallet: each study's id, researcher and what was
/// proved. Only the signer's own; a stranger's key has answered nothing.
/// The node knows who answered anyway (it checks research consent); the
/// researcher never learns it from this.
pub async fn mine(
    State(node): State<Arc<Node>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let who = authenticate(&node, &method, &uri, &headers)?;
    let answers: Vec<serde_json::Value> = node
        .research
        .answered_by(who.did.as_str())
        .into_iter()
        .map(|(researcher, criteria)| {
            json!({
                "study_id": criteria.study_id,
                "researcher": researcher,
                "attribute": criteria.requirement.attribute,
                "loinc": criteria.requirement.loinc,
                "range": criteria.requirement.range,
                "proved": criteria.requirement.range.to_string(),
            })
        })
        .collect();
    Ok(Json(json!({ "answers": answers })))
}

/// `GET /v1/research/studies/{id}/tally`: the count and pseudonyms, for the
/// study's researcher only.
pub async fn tally(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let who = authenticate(&node, &method, &uri, &headers)?;
    let result = node.research.tally(&id, who.did.as_str())?.ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "research.not_study_owner",
            "only the researcher who published the study reads its tally",
        )
    })?;
    Ok(Json(
        serde_json::to_value(result).map_err(|e| ApiError::internal(e.to_string()))?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::txs::{ConsentGrant, OrgMember, OrgRegister};
    use hygeia_identity::Keypair;
    use serde_json::Value;

    const NOW: i64 = 1_750_000_000;

    struct World {
        state: LedgerState,
        researcher: String,
        patient: String,
    }

    fn world() -> World {
        let governance = Keypair::generate();
        let admin = Keypair::generate();
        let mut state = LedgerState::new(
            Keypair::generate().did().to_string(),
            Some(governance.did().to_string()),
        );
        let researcher = Keypair::generate().did().to_string();
        state
            .participants
            .register_org(
                governance.did().as_str(),
                0,
                &serde_json::from_value::<OrgRegister>(json!({
                    "org": "did:web:lab.example", "admin": admin.did().to_string(), "kind": "research"
                }))
                .unwrap(),
            )
            .unwrap();
        state
            .participants
            .set_member(
                admin.did().as_str(),
                &serde_json::from_value::<OrgMember>(json!({
                    "org": "did:web:lab.example", "member": researcher, "roles": ["researcher"],
                    "jurisdiction": "FR", "status": "active"
                }))
                .unwrap(),
            )
            .unwrap();
        World {
            state,
            researcher,
            patient: Keypair::generate().did().to_string(),
        }
    }

    fn grant(world: &mut World, grantee: &str, purpose: &str, extra: Value) {
        let mut body = json!({
            "patient": world.patient, "grantee": grantee,
            "scope": {"categories": ["lab"]}, "actions": ["read"], "purpose": purpose,
            "not_before": NOW - 60, "not_after": NOW + 86_400,
        });
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        let b: ConsentGrant = serde_json::from_value(body).unwrap();
        let id = format!("{:064x}", world.state.policy.consents().len() + 1);
        world
            .state
            .policy
            .apply(&hygeia_policy::ConsentEvent::Grant {
                author: world.patient.clone(),
                grant: b.to_grant(id).unwrap(),
            })
            .unwrap();
    }

    #[test]
    fn research_consent_is_an_active_hresch_grant_to_the_researcher_or_its_org() {
        let mut w = world();
        let (patient, researcher) = (w.patient.clone(), w.researcher.clone());
        assert!(!has_research_consent(&w.state, &patient, &researcher, NOW));
        grant(&mut w, &researcher, "TREAT", json!({}));
        assert!(!has_research_consent(&w.state, &patient, &researcher, NOW));
        grant(&mut w, "did:web:lab.example", "HRESCH", json!({}));
        assert!(has_research_consent(&w.state, &patient, &researcher, NOW));
        // Not before it starts, nor once it ended.
        assert!(!has_research_consent(
            &w.state,
            &patient,
            &researcher,
            NOW - 120
        ));
        assert!(!has_research_consent(
            &w.state,
            &patient,
            &researcher,
            NOW + 86_400
        ));
        // Another researcher is not covered.
        let other = Keypair::generate().did().to_string();
        assert!(!has_research_consent(&w.state, &patient, &other, NOW));
    }

    #[test]
    fn a_grant_outside_the_researchers_jurisdiction_does_not_count() {
        let mut w = world();
        let (patient, researcher) = (w.patient.clone(), w.researcher.clone());
        grant(
            &mut w,
            &researcher,
            "HRESCH",
            json!({"jurisdictions": ["DE"]}),
        );
        assert!(!has_research_consent(&w.state, &patient, &researcher, NOW));
        grant(
            &mut w,
            &researcher,
            "HRESCH",
            json!({"jurisdictions": ["FR"]}),
        );
        assert!(has_research_consent(&w.state, &patient, &researcher, NOW));
    }

    #[test]
    fn study_bodies_are_checked() {
        let ok = br#"{"study_id":"s1","attribute":"hba1c-percent-x10","loinc":"4548-4",
            "range":{"min_inclusive":65,"max_exclusive":90},"accepted_issuers":["did:web:lab.example"]}"#;
        let criteria = parse_study(ok, "did:key:r").unwrap();
        assert_eq!(criteria.challenge.verifier, "did:key:r#s1");
        let cases: [(&[u8], &str); 5] = [
            (b"not json", "invalid_body"),
            (br#"{"study_id":"s1","attribute":"a","range":{"max_exclusive":9},"accepted_issuers":["did:web:x"],"extra":1}"#, "invalid_body"),
            (br#"{"study_id":"s1","attribute":"a","range":{},"accepted_issuers":["did:web:x"]}"#, "invalid_body"),
            (br#"{"study_id":"s1","attribute":"Not An Attribute","range":{"max_exclusive":9},"accepted_issuers":["did:web:x"]}"#, "zk-invalid-claims"),
            (br#"{"study_id":"s1","attribute":"a","range":{"max_exclusive":9},"accepted_issuers":[]}"#, "zk-invalid-claims"),
        ];
        for (body, code) in cases {
            let err = parse_study(body, "did:key:r").unwrap_err();
            assert_eq!(err.code, code, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn only_active_researchers_publish() {
        let w = world();
        assert!(is_researcher(&w.state, &w.researcher));
        assert!(!is_researcher(&w.state, &w.patient));
    }

    #[test]
    fn issuers_must_resolve_to_a_key() {
        let w = world();
        let lab = Keypair::generate().did().to_string();
        assert!(issuer_keys(&w.state, &[lab, "did:web:lab.example".into()]).is_ok());
        let err = issuer_keys(&w.state, &["did:web:nowhere.example".into()]).unwrap_err();
        assert_eq!(err.code, "research.unknown_issuer");
    }
}
