//! Inclusion and consistency proofs.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use serde_json::{json, Value};

use super::error::ApiError;
use super::log::parse_hash;
use crate::node::Node;

/// `GET /v1/proofs/inclusion?index=N|hash=H[&size=T]`.
pub async fn inclusion(
    State(node): State<Arc<Node>>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) =
        query.map_err(|e| ApiError::bad_request(format!("malformed query string: {e}")))?;
    only_known(&query, &["index", "hash", "size"])?;
    let snapshot = node.store.snapshot()?;
    let size = optional_u64(&query, "size")?.unwrap_or(snapshot.size());
    let (index, leaf) = match (query.get("index"), query.get("hash")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request("give either index or hash, not both"))
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "give index=<leaf index> or hash=<leaf hash hex>",
            ))
        }
        (Some(_), None) => {
            let index = optional_u64(&query, "index")?.unwrap_or_default();
            if index >= size {
                return Err(ApiError::out_of_range(format!(
                    "leaf index {index} is not in a tree of size {size}"
                )));
            }
            (index, None)
        }
        (None, Some(hash)) => {
            let leaf = parse_hash(hash)?;
            let index = snapshot.index_of(&leaf)?.ok_or_else(|| {
                ApiError::not_found("no transaction with that leaf hash is in the log")
            })?;
            if index >= size {
                return Err(ApiError::out_of_range(format!(
                    "that transaction is leaf {index}, not in a tree of size {size}"
                )));
            }
            (index, Some(leaf))
        }
    };
    let proof = snapshot.inclusion_proof(index, size)?;
    let root = snapshot.root_at(size)?;
    let leaf = match leaf {
        Some(leaf) => leaf,
        None => {
            let entry = snapshot
                .entry(index)?
                .ok_or_else(|| ApiError::internal("entry missing"))?;
            hygeia_ledger::merkle::leaf_hash(&entry)
        }
    };
    Ok(Json(json!({
        "index": index,
        "tree_size": size,
        "leaf_hash": hex::encode(leaf.0),
        "root_hash": hex::encode(root.0),
        "proof": proof.iter().map(|h| hex::encode(h.0)).collect::<Vec<_>>(),
        "checkpoint": String::from_utf8_lossy(&snapshot.checkpoint().map(|c| c.note.clone()).unwrap_or_default()),
    })))
}

/// `GET /v1/proofs/consistency?from=M&to=N`.
pub async fn consistency(
    State(node): State<Arc<Node>>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) =
        query.map_err(|e| ApiError::bad_request(format!("malformed query string: {e}")))?;
    only_known(&query, &["from", "to"])?;
    let snapshot = node.store.snapshot()?;
    let from = optional_u64(&query, "from")?
        .ok_or_else(|| ApiError::bad_request("give from=<old tree size>"))?;
    let to = optional_u64(&query, "to")?.unwrap_or(snapshot.size());
    let proof = snapshot.consistency_proof(from, to)?;
    Ok(Json(json!({
        "from": from,
        "to": to,
        "from_root": hex::encode(snapshot.root_at(from)?.0),
        "to_root": hex::encode(snapshot.root_at(to)?.0),
        "proof": proof.iter().map(|h| hex::encode(h.0)).collect::<Vec<_>>(),
        "checkpoint": String::from_utf8_lossy(&snapshot.checkpoint().map(|c| c.note.clone()).unwrap_or_default()),
    })))
}

fn optional_u64(query: &HashMap<String, String>, name: &str) -> Result<Option<u64>, ApiError> {
    query
        .get(name)
        .map(|v| {
            v.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!(
                    "{name} must be a non-negative integer, not {:?}",
                    v.chars().take(40).collect::<String>()
                ))
            })
        })
        .transpose()
}

fn only_known(query: &HashMap<String, String>, known: &[&str]) -> Result<(), ApiError> {
    match query.keys().find(|k| !known.contains(&k.as_str())) {
        Some(unknown) => Err(ApiError::bad_request(format!(
            "unknown parameter {:?}; this endpoint takes {}",
            unknown.chars().take(40).collect::<String>(),
            known.join(", ")
        ))),
        None => Ok(()),
    }
}
