//! `GET /v1/audit?patient=`: who accessed or tried to access a patient's
//! data, break-glass first, each event with its inclusion proof in the
//! signed checkpoint returned alongside, so it can be checked offline.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::authenticate;
use super::error::ApiError;
use super::records::require_patient_or_delegate;
use crate::node::Node;

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

#[derive(Deserialize)]
pub struct AuditQuery {
    patient: String,
    limit: Option<usize>,
}

pub async fn feed(
    State(node): State<Arc<Node>>,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let who = authenticate(&node, &method, &uri, &headers)?;
    let Query(query) = query.map_err(super::records::query_error)?;
    require_patient_or_delegate(&node, &who.did, &query.patient)?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    // Break-glass first, then the newest.
    let (chosen, total): (Vec<(u64, bool)>, usize) = {
        let committed = node.state.read();
        let all = committed
            .accesses
            .get(&query.patient)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let flagged = all.iter().rev().filter(|a| a.break_glass);
        let others = all.iter().rev().filter(|a| !a.break_glass);
        let chosen = flagged
            .chain(others)
            .take(limit)
            .map(|a| (a.index, a.break_glass))
            .collect();
        (chosen, all.len())
    };
    let node_for_read = node.clone();
    let answer = tokio::task::spawn_blocking(move || -> Result<Value, ApiError> {
        let snapshot = node_for_read.store.snapshot()?;
        let size = snapshot.size();
        let checkpoint = snapshot
            .checkpoint()
            .map(|c| String::from_utf8_lossy(&c.note).into_owned())
            .unwrap_or_default();
        let mut events = Vec::with_capacity(chosen.len());
        for (index, break_glass) in chosen {
            let entry = snapshot
                .entry(index)?
                .ok_or_else(|| ApiError::internal(format!("access event {index} is missing")))?;
            let proof = snapshot.inclusion_proof(index, size)?;
            let leaf_hash = hygeia_ledger::merkle::leaf_hash(&entry);
            let leaf_hex = hex::encode(leaf_hash.0);
            let justification = if break_glass {
                node_for_read
                    .custody
                    .note(&leaf_hex)
                    .map_err(|e| ApiError::internal(e.to_string()))?
            } else {
                None
            };
            let tx: Value = serde_json::from_slice(&entry).unwrap_or(Value::Null);
            events.push(json!({
                "index": index,
                "leaf_hash": leaf_hex,
                "break_glass": break_glass,
                "event": tx["body"],
                "entry": String::from_utf8_lossy(&entry),
                "inclusion_proof": proof.iter().map(|h| hex::encode(h.0)).collect::<Vec<_>>(),
                "justification": justification,
            }));
        }
        Ok(json!({
            "tree_size": size,
            "checkpoint": checkpoint,
            "events": events,
        }))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    let mut answer = answer;
    answer["patient"] = json!(query.patient);
    answer["total"] = json!(total);
    Ok(Json(answer))
}
