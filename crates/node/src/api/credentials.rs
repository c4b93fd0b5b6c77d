//! Identity and credential state, served to anyone who verifies: DID
//! documents (did:key computed, did:web of registered organizations from
//! the ledger, with their key history), the trust list, the status lists
//! issuers anchored, and the standing of registered licences.
//!
//! None of it is health data: organizations, professionals, issuers and
//! bits. Everything is read from the committed state, so it agrees with
//! what a verifier replaying the log would compute.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hygeia_identity::{DidDocument, DidWeb};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use crate::node::{unix_now, Node};
use crate::state::participants::Org;

/// The media type of a DID document (DID Core §6.2).
const DID_JSON: &str = "application/did+json";
/// The media type of a W3C VC 2.0 credential secured with Data Integrity.
const VC_JSON: &str = "application/vc";

/// `GET /v1/dids/{did}`: resolves a did:key (computed) or a did:web of an
/// organization registered on this network (from the ledger).
pub async fn resolve(State(node): State<Arc<Node>>, Path(did): Path<String>) -> Response {
    match resolve_document(&node, &did) {
        Ok((document, metadata)) => json_with_type(
            DID_JSON,
            json!({
                "didDocument": document,
                "didDocumentMetadata": metadata,
                "didResolutionMetadata": {"contentType": DID_JSON},
            }),
        ),
        Err(e) => e.into_response(),
    }
}

/// `GET /orgs/{name}/did.json`: the did:web method's own URL for
/// `did:web:<host>:orgs:<name>`, where `<host>` is this node's host as the
/// client addressed it.
pub async fn did_web_document(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let Some(host) = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty())
    else {
        return ApiError::bad_request("a did:web document is addressed by its host: send Host")
            .into_response();
    };
    let did = format!("did:web:{}:orgs:{name}", host.replace(':', "%3A"));
    match resolve_document(&node, &did) {
        Ok((document, _)) => json_with_type(DID_JSON, document),
        Err(e) => e.into_response(),
    }
}

/// `GET /v1/dids/{did}/history`: every ledger entry that set the keys of a
/// did:web organization or rotated a recovered identity, oldest first,
/// each with the link to its inclusion proof.
pub async fn history(State(node): State<Arc<Node>>, Path(did): Path<String>) -> Response {
    let tree_size = node.sequencer.latest_checkpoint().size;
    let committed = node.state.read();
    let state = &committed.state;
    let proof = |index: u64| format!("/v1/proofs/inclusion?index={index}&size={tree_size}");
    if let Some(org) = state.participants.org(&did) {
        let entries: Vec<Value> = std::iter::once(("org.register", org.registered_at))
            .chain(org.key_changes.iter().map(|i| ("org.keys", *i)))
            .map(|(kind, index)| json!({"type": kind, "index": index, "inclusion_proof": proof(index)}))
            .collect();
        return Json(json!({"did": did, "tree_size": tree_size, "entries": entries}))
            .into_response();
    }
    let rotations = state.identities.rotations(&did);
    if rotations.is_empty() && state.identities.recovery(&did).is_none() {
        return ApiError::not_found(format!("no key history for {did} on this ledger"))
            .into_response();
    }
    let entries: Vec<Value> = state
        .identities
        .recovery(&did)
        .map(|r| json!({"type": "identity.recovery", "index": r.index, "recovery_key": r.recovery_key, "inclusion_proof": proof(r.index)}))
        .into_iter()
        .chain(rotations.iter().map(|r| {
            json!({"type": "identity.rotate", "index": r.index, "from": r.from, "to": r.to, "inclusion_proof": proof(r.index)})
        }))
        .collect();
    Json(json!({"did": did, "tree_size": tree_size, "entries": entries})).into_response()
}

/// `GET /v1/trust-list`: which issuers are trusted for which credential
/// types (and, for licences, which countries).
pub async fn trust_list(State(node): State<Arc<Node>>) -> Json<Value> {
    let tree_size = node.sequencer.latest_checkpoint().size;
    let committed = node.state.read();
    let entries = committed.state.credentials.trust_list();
    Json(json!({"tree_size": tree_size, "issuers": entries}))
}

#[derive(Deserialize)]
pub struct ListQuery {
    id: Option<String>,
}

/// `GET /v1/status-lists?id=<url>`: the latest anchored version of a
/// status list credential, exactly as its issuer signed it; without `id`,
/// the ids of all lists.
pub async fn status_list(State(node): State<Arc<Node>>, Query(q): Query<ListQuery>) -> Response {
    let committed = node.state.read();
    let credentials = &committed.state.credentials;
    match q.id {
        None => Json(json!({"lists": credentials.list_ids()})).into_response(),
        Some(id) => match credentials.list(&id) {
            Some(list) => {
                // The credential's JSON text, as anchored.
                let mut response = (
                    [(header::CONTENT_TYPE, VC_JSON)],
                    list.credential.to_string(),
                )
                    .into_response();
                if let Ok(v) = list.index.to_string().parse() {
                    response.headers_mut().insert("x-ledger-index", v);
                }
                response
            }
            None => {
                ApiError::not_found(format!("no status list {id} on this ledger")).into_response()
            }
        },
    }
}

/// `GET /v1/status-lists/{issuer}/{name}`: the same, for the list whose
/// id ends in `/v1/status-lists/{issuer}/{name}` (the URL `hygeia status
/// publish` gives it on this node; `{issuer}` is the issuer's DID, a `%`
/// in it written `%25`).
pub async fn status_list_by_name(
    State(node): State<Arc<Node>>,
    Path((issuer, name)): Path<(String, String)>,
) -> Response {
    let suffix = crate::state::credentials::list_path(&issuer, &name);
    let id = {
        let committed = node.state.read();
        committed
            .state
            .credentials
            .list_ids()
            .into_iter()
            .find(|id| id.ends_with(&suffix))
            .map(str::to_owned)
    };
    status_list(
        State(node),
        Query(ListQuery {
            id: id.or(Some(suffix)),
        }),
    )
    .await
}

/// `GET /v1/licences/{did}`: the licences a professional registered, each
/// with its standing now (valid, expired, revoked, suspended, untrusted
/// issuer).
///
/// A did:key must be a valid Ed25519 one and any other DID must have DID
/// syntax (400 `did.invalid` otherwise); only did:keys hold licences.
pub async fn licences(State(node): State<Arc<Node>>, Path(did): Path<String>) -> Response {
    if did.starts_with("did:key:") {
        if let Err(e) = hygeia_identity::Did::parse_cached(&did) {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "did.invalid",
                format!("{}: {e}", e.code()),
            )
            .into_response();
        }
    } else if !hygeia_policy::is_did(&did) {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "did.invalid",
            format!("{did:?} is not a DID"),
        )
        .into_response();
    }
    let committed = node.state.read();
    let credentials = &committed.state.credentials;
    let now = i64::try_from(unix_now()).unwrap_or(i64::MAX);
    let licences: Vec<Value> = credentials
        .licences_of(&did)
        .iter()
        .map(|l| {
            let mut v = serde_json::to_value(l).unwrap_or(Value::Null);
            if let Some(o) = v.as_object_mut() {
                o.insert(
                    "standing".into(),
                    json!(credentials.standing(l, now).code()),
                );
            }
            v
        })
        .collect();
    Json(json!({"holder": did, "time": now, "licences": licences})).into_response()
}

/// The DID document of `did` and its metadata.
fn resolve_document(node: &Node, did: &str) -> Result<(Value, Value), ApiError> {
    if did.starts_with("did:key:") {
        let document = hygeia_identity::resolve_did_key(did).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "did.invalid",
                format!("{}: {e}", e.code()),
            )
        })?;
        let committed = node.state.read();
        let identities = &committed.state.identities;
        let mut metadata = json!({});
        if let Err(e) = identities.identity_of(did) {
            metadata = json!({"deactivated": true, "reason": e.message});
        }
        return Ok((to_value(&document)?, metadata));
    }
    if !did.starts_with("did:web:") {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "did.unsupported_method",
            "this node resolves did:key and the did:web of organizations registered on its network",
        ));
    }
    let did_web: DidWeb = did.parse().map_err(|e: hygeia_identity::DidWebError| {
        ApiError::new(StatusCode::BAD_REQUEST, "did.invalid", e.to_string())
    })?;
    let committed = node.state.read();
    let org = committed.state.participants.org(did).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "did.not_found",
            format!("{did} is not an organization registered on this network"),
        )
    })?;
    let document = org_document(&did_web, org)?;
    let version = org.key_changes.last().copied().unwrap_or(org.registered_at);
    Ok((
        to_value(&document)?,
        json!({"versionId": version.to_string(), "created_index": org.registered_at}),
    ))
}

/// An organization's document: its current keys, the admin key first,
/// each under the fragment `#<its did:key's multibase>` (so credentials
/// name the exact key, and a rotated-away key resolves to nothing).
fn org_document(did: &DidWeb, org: &Org) -> Result<DidDocument, ApiError> {
    let mut builder = did.document_builder();
    for key in org.keys() {
        let parsed = hygeia_identity::Did::parse_cached(key)
            .map_err(|e| ApiError::internal(format!("stored key {key}: {e}")))?;
        let fragment = key.strip_prefix("did:key:").unwrap_or(key);
        builder = builder.key_with_id(fragment, *parsed.public_key());
    }
    builder
        .build()
        .map_err(|e| ApiError::internal(e.to_string()))
}

fn to_value(document: &DidDocument) -> Result<Value, ApiError> {
    serde_json::to_value(document).map_err(|e| ApiError::internal(e.to_string()))
}

fn json_with_type(content_type: &'static str, body: Value) -> Response {
    ([(header::CONTENT_TYPE, content_type)], Json(body)).into_response()
}
