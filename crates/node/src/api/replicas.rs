//! `GET /v1/replicas/{id}?to=<X25519 hex>`: a copy of a record this node
//! holds, for the node of an organization a patient's grant entitles
//! (docs/network.md, "Replication to entitled nodes").
//!
//! The request is signed (docs/auth.md) by the receiving node's key; `to`
//! is that node's custodial X25519 public key (covered by the signature,
//! as the whole query is). This node decides from its own replayed state
//! ([`hygeia_state::replication::entitled`]): it holds the record, the
//! record is not erased, the signer is the node of an organization, and an
//! active grant of the patient covers the record for that organization or
//! one of its active members. Anyone else gets the 404 an unknown id gets,
//! and the refusal is logged (`tracing`, target `hygeia::replication`): a
//! stranger can make the public log grow by nothing. A permitted transfer
//! is logged on the ledger first (`record.replicate`: the commitment, the
//! two node keys, the SHA-256 of what is sent), and answered once durable.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hygeia_vault::RecipientPublicKey;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::authenticate;
use super::error::ApiError;
use super::records::query_error;
use crate::access::sign;
use crate::node::{unix_now, Node};
use crate::state::replication::{self, RecordReplicate, RECORD_REPLICATE};
use crate::state::txs;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicaQuery {
    /// The receiving node's custodial X25519 public key, 64 hex digits.
    to: String,
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "record_not_found",
        format!(
            "no record {:?} on this node",
            id.chars().take(80).collect::<String>()
        ),
    )
}

/// A refusal: logged by this node (not on the ledger, so a stranger grows
/// no public log), answered as an unknown id.
fn refuse(id: &str, requester: &impl std::fmt::Display, code: &str, why: &'static str) -> ApiError {
    tracing::info!(target: "hygeia::replication", record = %id, %requester, code, "{why}");
    not_found(id)
}

/// `GET /v1/replicas/{id}`.
pub async fn replica(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
    query: Result<Query<ReplicaQuery>, QueryRejection>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let who = authenticate(&node, &method, &uri, &headers)?;
    let Query(query) = query.map_err(query_error)?;
    let to = RecipientPublicKey::from_hex(&query.to).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            "to must be an X25519 public key, 64 hex digits",
        )
    })?;
    if txs::check_hex32("record id", &id).is_err() {
        return Err(not_found(&id));
    }
    // Never before the ledger's clock: `record.replicate` refuses a
    // decision time a custodian's `clock.tick` has already passed.
    let (now, decision) = {
        let committed = node.state.read();
        let now = (unix_now() as i64).max(committed.state.escrows.clock);
        let decision =
            replication::entitled(&committed.state, &id, &node.node_did, who.key.as_str(), now);
        (now, decision)
    };
    if let Err(refused) = decision {
        return Err(refuse(
            &id,
            &who.key,
            refused.code.as_str(),
            "replica refused",
        ));
    }
    let custody = node.custody.clone();
    let record = id.clone();
    let replica = tokio::task::spawn_blocking(move || custody.replica_for(&record, &to))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(e.to_string()))?
        .ok_or_else(|| {
            ApiError::internal(format!(
                "record {id} is held by this node on the ledger but not in its vault"
            ))
        })?;
    let event = RecordReplicate {
        record: id.clone(),
        from: node.node_did.clone(),
        to: who.key.to_string(),
        sha256: replica.digest(),
        time: now,
    };
    let body = serde_json::to_value(&event).map_err(|e| ApiError::internal(e.to_string()))?;
    let tx = sign(&node, RECORD_REPLICATE, body).map_err(ApiError::from)?;
    let receipt = match node.sequencer.submit(vec![tx]).await {
        Ok(receipt) => receipt,
        // Revoked or erased between the decision and the ledger: refused
        // like any other.
        Err(hygeia_ledger::SubmitError::Rejected(refused)) => {
            return Err(refuse(
                &id,
                &who.key,
                refused.code.as_str(),
                "replica refused at ordering",
            ));
        }
        Err(e) => return Err(ApiError::from(e)),
    };
    tracing::info!(
        target: "hygeia::replication",
        record = %id,
        to = %who.key,
        index = receipt.first_index,
        "replica sent"
    );
    let meta = &replica.meta;
    Ok(Json(json!({
        "record": id,
        "meta": meta,
        "ciphertext": STANDARD.encode(&replica.ciphertext),
        "wrapped_key": hex::encode(replica.wrapped.to_bytes()),
        "sha256": event.sha256,
        "index": receipt.first_index,
    })))
}
