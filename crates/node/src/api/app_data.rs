//! Small read-only JSON endpoints the web apps need, computed from the
//! committed log by a follower view (`crate::views`), never on the
//! sequencer's path:
//!
//! - `GET /v1/app/whoami` (signed): the identity my key acts for;
//! - `GET /v1/app/directory?q=` (public): organizations and their members;
//! - `GET /v1/app/access` (signed): the grants naming me or one of my
//!   organizations, and the records (metadata) each covers;
//! - `GET /v1/app/kpis` (public): the dashboards' figures;
//! - `GET /v1/app/ledger?type=&before=&limit=` (public): entries by type;
//! - `GET /v1/app/records/{id}` (public): a record's anchor (ledger
//!   metadata: patient, author, category, type, index, erasure);
//! - `GET /v1/app/records/{id}/provenance` (signed; the patient, a delegate
//!   or the author): the author's provenance signature, kept off the log.
//!
//! Everything but the provenance signature is on the public log already:
//! these endpoints save a browser from replaying the log, and tell a
//! stranger nothing the tiles do not.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::{Extension, Json};
use hygeia_ledger::store::Snapshot;
use hygeia_ledger::tiles::{encode_index, split_entries, TilePath};
use serde_json::{json, Value};

use super::auth::authenticate;
use super::error::ApiError;
use crate::node::{unix_now, Node};
use crate::views::{kpis, GrantView, LedgerView, RecordView};

/// Most entries one explorer page lists.
const MAX_LEDGER_PAGE: u64 = 100;
/// Most directory rows in one answer.
const MAX_DIRECTORY: usize = 200;

/// The follower view, shared by the endpoints of one router.
#[derive(Default)]
pub struct ViewCache(Mutex<LedgerView>);

impl ViewCache {
    /// The view caught up with `snapshot` (blocking: reads entry bundles).
    fn current(&self, snapshot: &Snapshot) -> Result<MutexGuard<'_, LedgerView>, ApiError> {
        let mut view = self
            .0
            .lock()
            .map_err(|_| ApiError::internal("the ledger view is poisoned"))?;
        let size = snapshot.size();
        while view.size < size {
            let bundle = view.size / 256;
            let width = (size - bundle * 256).min(256);
            let path = if width == 256 {
                format!("tile/entries/{}", encode_index(bundle))
            } else {
                format!("tile/entries/{}.p/{width}", encode_index(bundle))
            };
            let tile = TilePath::parse(&path).map_err(|e| ApiError::internal(e.0))?;
            let data = snapshot
                .tile(&tile)?
                .ok_or_else(|| ApiError::internal(format!("{path} is missing")))?;
            let entries = split_entries(&data).map_err(|e| ApiError::internal(e.to_string()))?;
            let before = view.size;
            for (i, entry) in entries.iter().enumerate() {
                let index = bundle * 256 + i as u64;
                if index == view.size && index < size {
                    view.apply(index, entry);
                }
            }
            if view.size == before {
                return Err(ApiError::internal(format!("{path} is short")));
            }
        }
        Ok(view)
    }
}

/// Runs `f` on the caught-up view and a snapshot, off the async runtime.
async fn with_view<T: Send + 'static>(
    node: Arc<Node>,
    cache: Arc<ViewCache>,
    f: impl FnOnce(&LedgerView, &Snapshot) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(move || {
        let snapshot = node.store.snapshot()?;
        let view = cache.current(&snapshot)?;
        f(&view, &snapshot)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
}

pub(crate) fn params(
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    known: &[&str],
) -> Result<HashMap<String, String>, ApiError> {
    let Query(query) = query.map_err(super::records::query_error)?;
    if let Some(unknown) = query.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            format!(
                "unknown parameter {:?}; this endpoint takes {}",
                unknown.chars().take(40).collect::<String>(),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ),
        ));
    }
    Ok(query)
}

pub(crate) fn number(query: &HashMap<String, String>, name: &str) -> Result<Option<u64>, ApiError> {
    query
        .get(name)
        .map(|v| {
            v.parse::<u64>().map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_parameter",
                    format!("{name} must be a non-negative integer"),
                )
            })
        })
        .transpose()
}

/// `GET /v1/app/directory?q=`.
pub async fn directory(
    State(node): State<Arc<Node>>,
    Extension(cache): Extension<Arc<ViewCache>>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let query = params(query, &["q"])?;
    let needle = query
        .get("q")
        .map(|q| q.trim().to_lowercase())
        .unwrap_or_default();
    if needle.len() > 200 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            "q is at most 200 characters",
        ));
    }
    with_view(node, cache, move |view, _| {
        let matches = |fields: &[&str]| {
            needle.is_empty() || fields.iter().any(|f| f.to_lowercase().contains(&needle))
        };
        let orgs: Vec<Value> = view
            .orgs
            .values()
            .filter(|o| matches(&[&o.did, &o.kind]))
            .take(MAX_DIRECTORY)
            .map(|o| json!(o))
            .collect();
        let people: Vec<Value> = view
            .members
            .iter()
            .filter(|(did, list)| {
                let mut fields: Vec<&str> = vec![did.as_str()];
                for m in list.iter() {
                    fields.push(&m.org);
                    fields.extend(m.roles.iter().map(String::as_str));
                    if let Some(kind) = view.orgs.get(&m.org) {
                        fields.push(&kind.kind);
                    }
                }
                matches(&fields)
            })
            .take(MAX_DIRECTORY)
            .map(|(did, list)| {
                json!({
                    "did": did,
                    "memberships": list,
                    "licence_registered": view.licence_holders.contains_key(did),
                })
            })
            .collect();
        Ok(Json(
            json!({"tree_size": view.size, "orgs": orgs, "people": people}),
        ))
    })
    .await
}

/// `GET /v1/app/whoami` (signed): the key that signed and the identity it
/// acts for (itself, or after a recovery the identity it was rotated
/// into). A retired key gets 403 `identity.key_retired`.
pub async fn whoami(
    State(node): State<Arc<Node>>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let who = authenticate(&node, &method, &uri, &headers)?;
    params(query, &[])?;
    Ok(Json(
        json!({"key": who.key.to_string(), "identity": who.did.to_string()}),
    ))
}

/// Whether a grant's scope covers a record (each non-empty set must match).
pub fn covers(grant: &GrantView, record: &RecordView) -> bool {
    let set = |name: &str| -> Vec<&str> {
        grant.scope[name]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    };
    let ok = |values: Vec<&str>, value: &str| values.is_empty() || values.contains(&value);
    record.patient == grant.patient
        && ok(set("categories"), &record.category)
        && ok(set("resource_types"), &record.resource_type)
        && ok(set("record_ids"), &record.commitment)
}

/// `GET /v1/app/access` (signed): what others granted me.
pub async fn my_access(
    State(node): State<Arc<Node>>,
    Extension(cache): Extension<Arc<ViewCache>>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let who = authenticate(&node, &method, &uri, &headers)?;
    params(query, &[])?;
    let me = who.did.to_string();
    let now = unix_now() as i64;
    with_view(node, cache, move |view, _| {
        let orgs = view.active_orgs(&me);
        let mut grants: Vec<&GrantView> = view.grants_to(&me);
        grants.sort_by_key(|g| std::cmp::Reverse(g.index));
        let grants: Vec<Value> = grants
            .into_iter()
            .map(|g| {
                let state = if g.revoked_at.is_some() {
                    "revoked"
                } else if now < g.not_before {
                    "not-yet"
                } else if now >= g.not_after {
                    "expired"
                } else {
                    "active"
                };
                let covered: Vec<&RecordView> = view
                    .records_of(&g.patient)
                    .filter(|r| r.erased_at.is_none() && covers(g, r))
                    .collect();
                json!({"grant": g, "state": state, "via_org": g.grantee != me, "records": covered})
            })
            .collect();
        Ok(Json(json!({
            "me": me,
            "orgs": orgs,
            "tree_size": view.size,
            "grants": grants,
        })))
    })
    .await
}

/// `GET /v1/app/kpis`.
pub async fn kpis(
    State(node): State<Arc<Node>>,
    Extension(cache): Extension<Arc<ViewCache>>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    params(query, &[])?;
    let now = unix_now() as i64;
    with_view(node, cache, move |view, _| {
        Ok(Json(json!({
            "tree_size": view.size,
            "computed_at": now,
            "figures": kpis::all(view, now),
        })))
    })
    .await
}

/// `GET /v1/app/ledger?type=&before=&limit=`: newest first.
pub async fn ledger(
    State(node): State<Arc<Node>>,
    Extension(cache): Extension<Arc<ViewCache>>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let query = params(query, &["type", "before", "limit"])?;
    let before = number(&query, "before")?;
    let limit = number(&query, "limit")?
        .unwrap_or(20)
        .clamp(1, MAX_LEDGER_PAGE) as usize;
    let tx_type = query.get("type").cloned().filter(|t| !t.is_empty());
    with_view(node, cache, move |view, snapshot| {
        let before = before.unwrap_or(view.size).min(view.size);
        let indexes: Vec<u64> = match &tx_type {
            Some(t) => view
                .by_type
                .get(t)
                .map(|list| {
                    let end = list.partition_point(|&i| i < before);
                    list[..end].iter().rev().take(limit).copied().collect()
                })
                .unwrap_or_default(),
            None => (0..before).rev().take(limit).collect(),
        };
        let mut entries = Vec::with_capacity(indexes.len());
        for index in indexes {
            let entry = snapshot
                .entry(index)?
                .ok_or_else(|| ApiError::internal(format!("entry {index} is missing")))?;
            let tx: Value = serde_json::from_slice(&entry).unwrap_or(Value::Null);
            entries.push(json!({
                "index": index,
                "type": tx["type"],
                "signer": tx["signer"],
                "leaf_hash": hex::encode(hygeia_ledger::merkle::leaf_hash(&entry).0),
                "entry": String::from_utf8_lossy(&entry),
            }));
        }
        let types: HashMap<&String, usize> =
            view.by_type.iter().map(|(t, l)| (t, l.len())).collect();
        Ok(Json(json!({
            "tree_size": view.size,
            "types": types,
            "entries": entries,
        })))
    })
    .await
}

fn record_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "record_not_found",
        "no record with that id is on the ledger",
    )
}

/// `GET /v1/app/records/{id}`: the record's `record` entry, as the view
/// read it (public on the log already).
pub async fn record(
    State(node): State<Arc<Node>>,
    Extension(cache): Extension<Arc<ViewCache>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    with_view(node, cache, move |view, _| {
        let record = view.records.get(&id).ok_or_else(record_not_found)?;
        Ok(Json(json!({"record": record, "tree_size": view.size})))
    })
    .await
}

/// `GET /v1/app/records/{id}/provenance` (signed).
pub async fn provenance(
    State(node): State<Arc<Node>>,
    Extension(cache): Extension<Arc<ViewCache>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let who = authenticate(&node, &method, &uri, &headers)?;
    let node_for_view = node.clone();
    let record = with_view(node_for_view, cache, move |view, _| {
        view.records.get(&id).cloned().ok_or_else(record_not_found)
    })
    .await?;
    if who.did.as_str() != record.author {
        super::records::require_patient_or_delegate(&node, &who.did, &record.patient)?;
    }
    let meta = node
        .custody
        .meta(&record.commitment)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(json!({
        "record": record,
        "media_type": meta.as_ref().map(|m| m.media_type.clone()),
        "size": meta.as_ref().map(|m| m.size),
        "provenance": meta.as_ref().map(|m| m.provenance.clone()),
        "signed_by": meta.as_ref().map(|m| m.author.clone()),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::tests::{entry, view};
    use serde_json::json;

    #[test]
    fn scope_sets_each_restrict() {
        let v = view(&[
            entry(
                "record",
                "node",
                json!({"commitment": "c1", "patient": "p", "author": "p", "category": "lab", "resource_type": "Observation"}),
            ),
            entry(
                "consent.grant",
                "p",
                json!({"patient": "p", "grantee": "d", "scope": {"categories": ["lab"], "resource_types": ["DiagnosticReport"]}, "actions": ["read"], "purpose": "TREAT", "not_before": 0, "not_after": 1}),
            ),
            entry(
                "consent.grant",
                "p",
                json!({"patient": "p", "grantee": "d", "scope": {"categories": ["lab"], "record_ids": []}, "actions": ["read"], "purpose": "TREAT", "not_before": 0, "not_after": 2}),
            ),
            entry(
                "consent.grant",
                "q",
                json!({"patient": "q", "grantee": "d", "scope": {"categories": ["lab"]}, "actions": ["read"], "purpose": "TREAT", "not_before": 0, "not_after": 3}),
            ),
        ]);
        let record = &v.records["c1"];
        let by_end = |end: i64| v.grants.values().find(|g| g.not_after == end).unwrap();
        assert!(!covers(by_end(1), record));
        assert!(covers(by_end(2), record));
        assert!(!covers(by_end(3), record), "another patient's grant");
    }
}
