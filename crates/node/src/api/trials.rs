//! Clinical trials (docs/trials.md): what the ledger says about studies,
//! their sites and their subjects, read from the replayed state.
//!
//! Every change is a signed transaction the user submits to
//! `POST /v1/transactions` (`study.*`, `ethics.approve`, `site.activate`,
//! `econsent.*`, `subject.*`); these routes only read. Everything served
//! here can be recomputed by anyone who replays the public log: studies are
//! hashes, codes and DIDs, subjects are study-only did:keys, so serving it
//! tells a stranger nothing the log does not.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use hygeia_state::trials::{milestone_id, short_subject, Study, Subject};
use hygeia_state::LedgerState;

use super::error::ApiError;
use crate::node::Node;

pub(crate) fn study_json(state: &LedgerState, id: &str, s: &Study) -> Value {
    let versions: Vec<Value> = s
        .versions
        .iter()
        .map(|v| {
            json!({"version": v.version, "protocol": v.protocol, "reconsent": v.reconsent,
                   "proposed_at": v.proposed_at, "approved_at": v.approved_at})
        })
        .collect();
    let sites: Vec<Value> = s
        .sites
        .iter()
        .map(|(site, entry)| {
            json!({"site": site, "accreditor": entry.issuer, "activated_at": entry.activated_at,
                   "standing": state.site_standing(entry).code()})
        })
        .collect();
    let history: Vec<Value> = s
        .history
        .iter()
        .map(|(st, index)| json!({"state": st.code(), "index": index}))
        .collect();
    json!({
        "id": id, "sponsor": s.sponsor, "committee": s.committee, "state": s.state.code(),
        "current_version": s.current().map(|v| &v.version),
        "pending_version": s.pending().map(|v| &v.version),
        "versions": versions, "sites": sites, "history": history,
        "registered_at": s.registered_at, "subjects": s.subjects, "enrolled": s.enrolled,
    })
}

pub(crate) fn subject_json(
    state: &LedgerState,
    study_id: &str,
    study: &Study,
    did: &str,
    s: &Subject,
) -> Value {
    let version = |position: usize| study.versions.get(position).map(|v| v.version.clone());
    let milestones: Vec<Value> = s
        .milestones
        .iter()
        .map(|(m, index)| {
            json!({"milestone": m.to_string(), "index": index,
                   "escrow_milestone": milestone_id(study_id, did, m)})
        })
        .collect();
    let deviations: Vec<Value> = s
        .deviations
        .iter()
        .map(|d| json!({"severity": d.severity, "report": d.report, "index": d.index}))
        .collect();
    json!({
        "study": study_id, "subject": did, "short": short_subject(did), "site": s.site,
        "state": s.state.code(), "consented_version": version(s.consented_version),
        "consent_current": s.consented_version >= study.consent_floor(),
        "consents": s.consents.iter().map(|(p, doc, index)| json!({"version": version(*p), "document": doc, "index": index})).collect::<Vec<_>>(),
        "milestones": milestones, "deviations": deviations,
        "withdrawn_by_subject": s.withdrawn_by_subject,
        "grants": grants_json(state, s),
        "endpoints": s.endpoints.iter().map(|e| json!({"endpoint": e.endpoint, "report": e.report, "index": e.index})).collect::<Vec<_>>(),
    })
}

/// The grants backing a subject's consents, each with whether it still
/// lets data flow (unrevoked): ledger facts, public like the rest.
fn grants_json(state: &LedgerState, s: &Subject) -> Vec<Value> {
    let consents = state.policy.consents();
    s.grants
        .iter()
        .map(|grant| json!({"grant": grant, "active": !consents.is_revoked(grant)}))
        .collect()
}

/// Most studies one page of `GET /v1/studies` lists (as the ledger
/// explorer's pages, `GET /v1/app/ledger`).
const MAX_STUDY_PAGE: u64 = 100;
/// Studies on a page when `limit` is not given.
const DEFAULT_STUDY_PAGE: u64 = 20;

/// Whether `id` has the shape of a study id (a leaf hash: 64 lowercase hex).
fn is_study_id(id: &str) -> bool {
    id.len() == 64
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `GET /v1/studies?after=&limit=`: studies in the order of their ids, a
/// page at a time; `next` is the `after` of the next page (`null` on the
/// last one).
pub async fn studies(
    State(node): State<Arc<Node>>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let query = super::app_data::params(query, &["after", "limit"])?;
    let limit = super::app_data::number(&query, "limit")?
        .unwrap_or(DEFAULT_STUDY_PAGE)
        .clamp(1, MAX_STUDY_PAGE) as usize;
    let after = query.get("after").map(String::as_str);
    if after.is_some_and(|a| !is_study_id(a)) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            "after must be a study id (64 lowercase hex digits): the previous page's next",
        ));
    }
    let committed = node.state.read();
    let state = &committed.state;
    // Sorted by id; the cursor is the last id of the page before.
    let all = state.trials.studies();
    let start = after.map_or(0, |a| all.partition_point(|(id, _)| *id <= a));
    let rest = &all[start..];
    let page: Vec<Value> = rest
        .iter()
        .take(limit)
        .map(|(id, s)| study_json(state, id, s))
        .collect();
    let next = (rest.len() > limit).then(|| rest[limit - 1].0);
    Ok(Json(
        json!({"studies": page, "next": next, "clock": state.escrows.clock}),
    ))
}

/// `GET /v1/studies/{id}`: a study, its versions, sites and subjects.
pub async fn study(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let committed = node.state.read();
    let state = &committed.state;
    let s = state
        .trials
        .study(&id)
        .ok_or_else(|| ApiError::not_found(format!("no study {id}")))?;
    let mut body = study_json(state, &id, s);
    body["subject_list"] = state
        .trials
        .subjects_of(&id)
        .into_iter()
        .map(|(did, subject)| subject_json(state, &id, s, did, subject))
        .collect();
    Ok(Json(body))
}

/// `GET /v1/studies/{id}/subjects/{did}`: one subject's progress.
pub async fn subject(
    State(node): State<Arc<Node>>,
    Path((id, did)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let committed = node.state.read();
    let state = &committed.state;
    let found = state
        .trials
        .study(&id)
        .and_then(|s| state.trials.subject(&id, &did).map(|subject| (s, subject)));
    let (s, subject) =
        found.ok_or_else(|| ApiError::not_found(format!("no subject {did} in study {id}")))?;
    Ok(Json(subject_json(state, &id, s, &did, subject)))
}
