//! Cosigned checkpoints and the C2SP tlog-witness endpoint
//! (`crate::witness`, docs/witness.md).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::error::ApiError;
use crate::node::{unix_now, Node};
use crate::witness::{OwnLog, WitnessError};

/// Runs `f` with the node's own log on a blocking thread (the witness
/// writes with fsync).
async fn with_own<R: Send + 'static>(
    node: Arc<Node>,
    f: impl FnOnce(&Node, &OwnLog) -> Result<R, WitnessError> + Send + 'static,
) -> Result<Result<R, WitnessError>, ApiError> {
    tokio::task::spawn_blocking(move || node.with_own_log(|own| f(&node, own)))
        .await
        .map_err(|e| ApiError::internal(format!("witness task failed: {e}")))
}

fn witness_error(e: WitnessError) -> ApiError {
    let status = match &e {
        WitnessError::Malformed(_) | WitnessError::OldTooLarge { .. } => StatusCode::BAD_REQUEST,
        WitnessError::UnknownOrigin(_) => StatusCode::NOT_FOUND,
        WitnessError::UnknownKey(_) => StatusCode::FORBIDDEN,
        WitnessError::Conflict(_) | WitnessError::Fork(_) => StatusCode::CONFLICT,
        WitnessError::BadProof | WitnessError::BadCosignature(_) => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        WitnessError::Storage(e) => return ApiError::storage_unavailable(e),
    };
    ApiError::new(status, e.code(), e.to_string())
}

/// `GET /checkpoint`: the latest signed checkpoint, with this node's
/// cosignature and the custodians' cosignatures collected for it.
pub async fn checkpoint(State(node): State<Arc<Node>>) -> Result<Response, ApiError> {
    let note = tokio::task::spawn_blocking(move || node.cosigned_checkpoint())
        .await
        .map_err(|e| ApiError::internal(format!("witness task failed: {e}")))?
        .map_err(witness_error)?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        note,
    )
        .into_response())
}

/// `POST /add-checkpoint` (C2SP tlog-witness).
pub async fn add_checkpoint(State(node): State<Arc<Node>>, body: Bytes) -> Response {
    let result = with_own(node, move |node, own| {
        node.witness.add_checkpoint(&body, own, unix_now())
    })
    .await;
    let result = match result {
        Ok(result) => result,
        Err(e) => return e.into_response(),
    };
    match result {
        Ok(lines) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            )],
            lines,
        )
            .into_response(),
        // The spec's answer: the latest cosigned size, as text/x.tlog.size.
        Err(WitnessError::Conflict(size)) => {
            tracing::info!(size, "add-checkpoint: old size is not the latest cosigned");
            (
                StatusCode::CONFLICT,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/x.tlog.size"),
                )],
                format!("{size}\n"),
            )
                .into_response()
        }
        Err(e) => {
            tracing::info!(code = e.code(), "add-checkpoint refused");
            witness_error(e).into_response()
        }
    }
}

/// `POST /v1/checkpoint/cosignatures`: a checkpoint of this node's log
/// with cosignatures by custodians, kept to be served with it.
pub async fn collect(
    State(node): State<Arc<Node>>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (size, held) = with_own(node, move |node, own| node.witness.collect(&body, own))
        .await?
        .map_err(witness_error)?;
    Ok(Json(json!({ "size": size, "cosignatures": held })))
}
