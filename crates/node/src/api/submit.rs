//! Transaction submission: one per request, or many in one request.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use hygeia_ledger::tx::{TxContext, UnverifiedTx};
use hygeia_ledger::{Receipt, MAX_TX_BYTES};
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::error::ApiError;
use crate::node::Node;

/// Batch bodies at least this large are parsed off the async workers.
const BLOCKING_PARSE_BYTES: usize = 64 << 10;

/// `POST /v1/transactions`: the body is one canonical transaction.
pub async fn one(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    check_json_content_type(&headers)?;
    let body = body.map_err(|e| body_error(e, MAX_TX_BYTES, "a transaction"))?;
    let ctx = TxContext {
        network: &node.config.network,
        modules: &node.modules,
    };
    let tx = UnverifiedTx::parse(&body, &ctx)?;
    // A position only means something within a batch.
    let receipt = node
        .sequencer
        .submit_unverified(vec![tx])
        .await
        .map_err(|e| ApiError {
            position: None,
            ..ApiError::from(e)
        })?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "index": receipt.first_index,
            "leaf_hash": hex::encode(receipt.leaf_hashes[0].0),
            "tree_size": receipt.checkpoint.size,
            "checkpoint": checkpoint_text(&receipt),
        })),
    ))
}

/// `POST /v1/transactions/batch`: the body is a JSON array of canonical
/// transactions, accepted or refused as a whole.
pub async fn batch(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    check_json_content_type(&headers)?;
    let limit = node.config.max_batch_body_bytes;
    let body = body.map_err(|e| body_error(e, limit, "a batch"))?;
    let txs = if body.len() >= BLOCKING_PARSE_BYTES {
        let node = node.clone();
        let body = body.clone();
        tokio::task::spawn_blocking(move || parse_batch(&node, &body))
            .await
            .map_err(|e| ApiError::internal(format!("parsing task failed: {e}")))??
    } else {
        parse_batch(&node, &body)?
    };
    let count = txs.len();
    let receipt = node.sequencer.submit_unverified(txs).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "first_index": receipt.first_index,
            "count": count,
            "leaf_hashes": receipt.leaf_hashes.iter().map(|h| hex::encode(h.0)).collect::<Vec<_>>(),
            "tree_size": receipt.checkpoint.size,
            "checkpoint": checkpoint_text(&receipt),
        })),
    ))
}

/// Splits a batch body into transactions and checks each one's form; the
/// signatures are checked by the sequencer's verifier stage.
fn parse_batch(node: &Node, body: &[u8]) -> Result<Vec<UnverifiedTx>, ApiError> {
    let raws: Vec<&RawValue> = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("a batch must be a JSON array of transactions: {e}"),
        )
    })?;
    if raws.is_empty() {
        return Err(ApiError::bad_request(
            "a batch must hold at least one transaction",
        ));
    }
    if raws.len() > node.config.max_batch_txs {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!(
                "a batch holds at most {} transactions; this one holds {}",
                node.config.max_batch_txs,
                raws.len()
            ),
        ));
    }
    let ctx = TxContext {
        network: &node.config.network,
        modules: &node.modules,
    };
    raws.iter()
        .enumerate()
        .map(|(position, raw)| {
            UnverifiedTx::parse(raw.get().as_bytes(), &ctx)
                .map_err(|e| ApiError::from(e.at(position)))
        })
        .collect()
}

fn checkpoint_text(receipt: &Receipt) -> String {
    String::from_utf8_lossy(&receipt.checkpoint.note).into_owned()
}

/// A body may come without a content type (curl -d sends a form type, which
/// we refuse), but one that names a type must name JSON.
fn check_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = value
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json" {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "send transactions as application/json, not {:?}",
                value.to_str().unwrap_or("?")
            ),
        ))
    }
}

fn body_error(e: BytesRejection, limit: usize, what: &str) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        let code = if what == "a transaction" {
            "tx_too_large"
        } else {
            "body_too_large"
        };
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            code,
            format!("{what} may be at most {limit} bytes"),
        )
    } else {
        ApiError::bad_request(format!("could not read the request body: {e}"))
    }
}
