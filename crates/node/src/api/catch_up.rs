//! What a node that fell behind fetches from this one to catch up from a
//! state snapshot instead of replaying every block (`crate::catch_up`,
//! docs/network.md "Catch-up from a state snapshot"): the heads of this
//! node's state snapshots, one snapshot whole, and its finalized chain.
//!
//! All three are public, like the log's tiles: the state is a function of
//! the log (no PHI is on either), and the finalized chain holds the log's
//! entries in blocks.

use std::io::Read;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use crate::config::{CHAIN_FILE, CONSENSUS_DIR, SNAPSHOT_DIR};
use crate::node::Node;

/// Most bytes of the finalized chain one answer carries: one block at its
/// largest fits.
pub const CHAIN_PAGE: u64 = hygeia_consensus::block::MAX_BLOCK_BYTES as u64 + 4;

/// Most bytes of a snapshot file's head (magic, header and signature
/// lines) this node reads to answer.
const MAX_HEAD: usize = 4096;

/// The first three lines of a snapshot file (magic, header, signature),
/// or `None` when it has fewer within [`MAX_HEAD`] bytes.
fn head(path: &std::path::Path) -> Option<String> {
    let mut buffer = vec![0u8; MAX_HEAD];
    let mut file = std::fs::File::open(path).ok()?;
    let mut read = 0;
    while read < buffer.len() {
        match file.read(&mut buffer[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(_) => return None,
        }
    }
    let bytes = &buffer[..read];
    let mut end = 0;
    for _ in 0..3 {
        end += bytes[end..].iter().position(|b| *b == b'\n')? + 1;
    }
    String::from_utf8(bytes[..end].to_vec()).ok()
}

/// `GET /v1/network/snapshots`: the head of each state snapshot this node
/// keeps, newest first. A head is the snapshot's first three lines: its
/// format, its header (network, node, size, log root, state digest) and
/// the node key's signature over both.
pub async fn snapshots(State(node): State<Arc<Node>>) -> Result<Response, ApiError> {
    let dir = node.config.data_dir.join(SNAPSHOT_DIR);
    let heads = tokio::task::spawn_blocking(move || {
        crate::snapshots::list(&dir)
            .into_iter()
            .filter_map(|(size, path)| Some(json!({"size": size, "head": head(&path)?})))
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(json!({ "snapshots": heads })).into_response())
}

/// `GET /v1/network/snapshots/{size}`: the whole snapshot file covering
/// `size` entries.
pub async fn snapshot(
    State(node): State<Arc<Node>>,
    size: Result<Path<u64>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(size) = size.map_err(|_| {
        ApiError::bad_request("a snapshot is named by the log size it covers, a number")
    })?;
    let path = node
        .config
        .data_dir
        .join(SNAPSHOT_DIR)
        .join(crate::snapshots::file_name(size));
    // Streamed: a snapshot of a large state is hundreds of megabytes. An
    // open file outlives its deletion when a newer snapshot replaces it.
    match tokio::fs::File::open(&path).await {
        Ok(file) => {
            let length = file
                .metadata()
                .await
                .map_err(ApiError::storage_unavailable)?
                .len();
            Ok((
                [
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/octet-stream"),
                    ),
                    (header::CONTENT_LENGTH, HeaderValue::from(length)),
                ],
                axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(file)),
            )
                .into_response())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "snapshot_not_found",
            format!("this node keeps no state snapshot of size {size} (GET /v1/network/snapshots lists those it keeps)"),
        )),
        Err(e) => Err(ApiError::storage_unavailable(e)),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainQuery {
    offset: u64,
}

/// `GET /v1/network/chain?offset=N`: the bytes of this node's finalized
/// chain file from `offset`, at most [`CHAIN_PAGE`] of them (none past its
/// end), with the file's length in `hygeia-chain-length`. Every node of a
/// network holds the same file, so offsets mean the same everywhere; the
/// last record of an answer may be cut, and the reader asks again from
/// where the last whole one ends.
pub async fn chain(
    State(node): State<Arc<Node>>,
    query: Result<Query<ChainQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| {
        ApiError::bad_request(format!("expected ?offset=<bytes into the chain file>: {e}"))
    })?;
    let path = node.config.data_dir.join(CONSENSUS_DIR).join(CHAIN_FILE);
    let read = tokio::task::spawn_blocking(move || -> std::io::Result<(u64, Vec<u8>)> {
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            // A node alone keeps no chain.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, Vec::new())),
            Err(e) => return Err(e),
        };
        let length = file.metadata()?.len();
        let want = length.saturating_sub(query.offset).min(CHAIN_PAGE) as usize;
        let mut bytes = vec![0u8; want];
        file.read_exact_at(&mut bytes, query.offset.min(length))?;
        Ok((length, bytes))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?;
    let (length, bytes) = read.map_err(ApiError::storage_unavailable)?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (
                header::HeaderName::from_static("hygeia-chain-length"),
                HeaderValue::from(length),
            ),
        ],
        bytes,
    )
        .into_response())
}
