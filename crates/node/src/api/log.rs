//! The C2SP tlog-tiles read endpoints, served from the store (`/checkpoint`
//! is served with its cosignatures by `super::witness`).

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hygeia_ledger::tiles::TilePath;
use hygeia_ledger::Hash;
use serde_json::json;

use super::error::ApiError;
use crate::node::Node;

/// `GET /tile/<L>/<N>[.p/<W>]` and `GET /tile/entries/<N>[.p/<W>]`.
pub async fn tile(
    State(node): State<Arc<Node>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    // A path that is not UTF-8 cannot be a tile path either.
    let path = path.map(|Path(p)| p).unwrap_or_default();
    let full_path = format!("tile/{path}");
    let tile = TilePath::parse(&full_path).map_err(|_| {
        ApiError::not_found(format!(
            "{} is not a tile path; tiles are /tile/<L>/<N>[.p/<W>] and /tile/entries/<N>[.p/<W>]",
            full_path.chars().take(200).collect::<String>()
        ))
    })?;
    let snapshot = node.store.snapshot()?;
    let data = snapshot.tile(&tile)?.ok_or_else(|| {
        ApiError::not_found(format!(
            "{tile} is not in the log (tree size {})",
            snapshot.size()
        ))
    })?;
    // Full tiles never change; partial ones are replaced by wider ones.
    let cache = if tile.is_full() {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=60"
    };
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        data,
    )
        .into_response())
}

/// `GET /v1/transactions/{leaf_hash}`: a transaction and its place in the log.
pub async fn transaction(
    State(node): State<Arc<Node>>,
    hash: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(hash) =
        hash.map_err(|_| ApiError::bad_request("a leaf hash is 64 lowercase hex digits"))?;
    let leaf = parse_hash(&hash)?;
    let snapshot = node.store.snapshot()?;
    let index = snapshot
        .index_of(&leaf)?
        .ok_or_else(|| ApiError::not_found("no transaction with that leaf hash is in the log"))?;
    let entry = snapshot
        .entry(index)?
        .ok_or_else(|| ApiError::internal("indexed entry is missing"))?;
    let tx: serde_json::Value = serde_json::from_slice(&entry)
        .map_err(|e| ApiError::internal(format!("stored entry is not JSON: {e}")))?;
    Ok(Json(json!({
        "index": index,
        "leaf_hash": hex::encode(leaf.0),
        "transaction": tx,
    }))
    .into_response())
}

/// A leaf hash as 64 lowercase hex digits.
pub fn parse_hash(text: &str) -> Result<Hash, ApiError> {
    let bad = || ApiError::bad_request("a leaf hash is 64 lowercase hex digits");
    if text.len() != 64 || text.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(bad());
    }
    let bytes = hex::decode(text).map_err(|_| bad())?;
    Ok(Hash(bytes.try_into().map_err(|_| bad())?))
}
