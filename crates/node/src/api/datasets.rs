//! Dataset manifests (docs/datasets.md): `GET /v1/datasets/{id}` serves a
//! manifest published with `dataset.publish` and its status, recomputed
//! from the replayed state: `valid`, or `flagged` with the members whose
//! record was erased or whose grant was revoked or expired since.
//!
//! Everything served is on the public log (the manifest's body, the
//! grants' revocations, the erasures, the ledger's clock), so anyone
//! replaying it gets the same answer; no patient DID is served.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

use super::error::ApiError;
use crate::node::Node;

/// `GET /v1/datasets/{id}`: the manifest and its status.
pub async fn dataset(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let committed = node.state.read();
    let state = &committed.state;
    let unknown = || ApiError::not_found(format!("no dataset {id}"));
    let dataset = state.datasets.get(&id).ok_or_else(unknown)?;
    let flagged = state.datasets.status(state, &id).ok_or_else(unknown)?;
    let status = if flagged.is_empty() {
        "valid"
    } else {
        "flagged"
    };
    Ok(Json(json!({
        "id": id,
        "researcher": dataset.researcher,
        "root": dataset.root,
        "count": dataset.count,
        "pseudonymisation": dataset.pseudonymisation,
        "members": *dataset.members,
        "published_at": dataset.published_at,
        "published_clock": dataset.clock,
        "clock": state.escrows.clock,
        "status": status,
        "flagged": flagged,
    })))
}
