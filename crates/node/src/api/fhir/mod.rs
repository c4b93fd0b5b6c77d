//! The FHIR R5 REST API at `/fhir` (docs/fhir.md).
//!
//! Every interaction authenticates a bearer token (`POST /auth/token`),
//! every resource it touches is decided by the policy engine for the
//! token's requester and purpose, and every decision is an `access` event
//! on the ledger, durable before the answer leaves. Resources are vault
//! records; what is indexed for search lives in [`crate::fhir_store`].

mod bundle;
mod candidates;
mod consent;
mod decide;
mod devices;
mod export;
mod health_cards;
mod metadata;
mod read;
mod scopes;
pub mod trials;
mod views;
mod write;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hygeia_auth::token::Session;
use hygeia_fhir::outcome::{operation_outcome, Issue};
use hygeia_fhir::FHIR_JSON;
use hygeia_identity::Did;
use serde_json::Value;

use crate::node::{unix_now, Node};

pub use export::ExportJobs;
#[cfg(test)]
pub(crate) use export::{
    plan as export_plan, MAX_JOBS as MAX_EXPORT_JOBS,
    MAX_JOBS_PER_REQUESTER as MAX_EXPORT_JOBS_PER_REQUESTER,
};
pub use health_cards::request::{
    parse_request as parse_health_cards_request, IssueRequest as HealthCardsRequest,
};

/// Largest request body on `/fhir` (a resource or a Bundle).
pub const MAX_FHIR_BODY: usize = 16 << 20;
/// Most entries in one Bundle.
pub const MAX_BUNDLE_ENTRIES: usize = 1000;

pub fn routes() -> Router<Arc<Node>> {
    Router::new()
        .route("/fhir/metadata", get(metadata::capability_statement))
        .route("/fhir", post(bundle::process).get(read::system_search))
        .route(
            "/fhir/{resource_type}",
            get(read::search).post(write::create),
        )
        .route("/fhir/{resource_type}/_search", post(read::search_form))
        .route(
            "/fhir/{resource_type}/{id}",
            get(read::read).put(write::update).delete(write::delete),
        )
        .route(
            "/fhir/{resource_type}/{id}/{operation}",
            get(read::instance_operation).post(health_cards::instance_operation),
        )
        .route(
            "/fhir/{resource_type}/{id}/_history/{version}",
            get(read::vread),
        )
        .route(
            "/fhir-export/{job}",
            get(export::status).delete(export::cancel),
        )
        .route("/fhir-export/{job}/{file}", get(export::output))
        .layer(DefaultBodyLimit::max(MAX_FHIR_BODY))
}

/// A FHIR error: an HTTP status and an OperationOutcome.
#[derive(Debug)]
pub struct FhirError {
    pub status: StatusCode,
    pub issues: Vec<Issue>,
    /// A `WWW-Authenticate` challenge to answer with (RFC 6750 §3): an
    /// invalid token (401) or an insufficient scope (403).
    pub challenge: Option<&'static str>,
}

impl FhirError {
    pub fn new(status: StatusCode, issue: Issue) -> FhirError {
        FhirError {
            status,
            issues: vec![issue],
            challenge: None,
        }
    }

    pub fn many(status: StatusCode, issues: Vec<Issue>) -> FhirError {
        FhirError {
            status,
            issues,
            challenge: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> FhirError {
        FhirError::new(StatusCode::BAD_REQUEST, Issue::error(code, message))
    }

    /// A failure of the node itself: details (file names, what the host
    /// is short of) go to the node's log, the client gets an incident id.
    pub fn internal(message: impl std::fmt::Display) -> FhirError {
        let incident = crate::api::error::incident(&message.to_string());
        FhirError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            Issue::error(
                "exception",
                format!("internal error (incident {incident}); the node's log has the details"),
            ),
        )
    }

    pub fn not_supported(message: impl Into<String>) -> FhirError {
        FhirError::new(
            StatusCode::BAD_REQUEST,
            Issue::error("not-supported", message),
        )
    }

    /// An error of the signed-request API (its stable code first in the
    /// diagnostics) as an OperationOutcome.
    pub fn from_api(e: &crate::api::ApiError) -> FhirError {
        let code = match e.status {
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::NOT_FOUND => "not-found",
            StatusCode::CONFLICT => "conflict",
            s if s.is_server_error() => "exception",
            _ => "invalid",
        };
        FhirError::new(
            e.status,
            Issue::error(code, format!("{}: {}", e.code, e.message)),
        )
    }

    pub fn outcome(&self) -> Value {
        operation_outcome(&self.issues)
    }
}

impl IntoResponse for FhirError {
    fn into_response(self) -> Response {
        let mut response = fhir_json(self.status, &self.outcome());
        if let Some(challenge) = self.challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

impl From<crate::fhir_store::StoreError> for FhirError {
    fn from(e: crate::fhir_store::StoreError) -> Self {
        FhirError::internal(e)
    }
}

impl From<crate::custody::CustodyError> for FhirError {
    fn from(e: crate::custody::CustodyError) -> Self {
        FhirError::internal(e)
    }
}

/// A JSON body with the FHIR media type.
pub fn fhir_json(status: StatusCode, body: &Value) -> Response {
    fhir_bytes(status, serde_json::to_vec(body).unwrap_or_default())
}

pub fn fhir_bytes(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/fhir+json; charset=utf-8"),
    );
    response
}

/// The requester behind a request's bearer token.
pub fn authenticate(node: &Node, headers: &HeaderMap) -> Result<Session, FhirError> {
    let unauthorized = |message: &str| FhirError {
        status: StatusCode::UNAUTHORIZED,
        issues: vec![Issue::error("login", message.to_owned())],
        challenge: Some("Bearer realm=\"hygeia\", error=\"invalid_token\""),
    };
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| unauthorized("an access token is required: Authorization: Bearer <token> (POST /auth/token, docs/fhir.md)"))?
        .to_str()
        .map_err(|_| unauthorized("the Authorization header must be ASCII"))?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or_else(|| unauthorized("the Authorization header must be 'Bearer <token>'"))?;
    let mut session = node
        .tokens
        .lookup(token.trim(), unix_now() as i64)
        .ok_or_else(|| {
            unauthorized(
                "the access token is unknown or expired; get a new one at POST /auth/token",
            )
        })?;
    // The token was issued to a key; it acts for that key's identity now,
    // or not at all if a rotation retired the key since.
    let key = Did::parse_cached(&session.did).map_err(FhirError::internal)?;
    let identity = crate::api::auth::acting_identity(&node.state.read().state, &key)
        .map_err(|e| FhirError::from_api(&e))?;
    session.did = identity.to_string();
    Ok(session)
}

/// Refuses bodies that are not FHIR JSON (415).
pub fn require_fhir_json(headers: &HeaderMap) -> Result<(), FhirError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence == FHIR_JSON || essence == "application/json" {
        Ok(())
    } else {
        Err(FhirError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Issue::error(
                "not-supported",
                format!(
                    "Content-Type must be {FHIR_JSON} (or application/json), not {:?}",
                    content_type.chars().take(80).collect::<String>()
                ),
            ),
        ))
    }
}

/// Parses a request body as a JSON object.
pub fn parse_body(body: &[u8]) -> Result<Value, FhirError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        FhirError::bad_request("structure", format!("the body is not valid JSON: {e}"))
    })?;
    if !value.is_object() {
        return Err(FhirError::bad_request(
            "structure",
            "the body must be a JSON object (a FHIR resource)",
        ));
    }
    Ok(value)
}

/// The base URL clients use, for fullUrl and links: the `Host` the client
/// used (the node does not know its public name otherwise).
pub fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost");
    format!("http://{host}/fhir")
}

/// `Prefer: handling=strict|lenient` (lenient by default).
pub fn handling(headers: &HeaderMap) -> hygeia_fhir::search::Handling {
    let strict = headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .any(|p| p.trim().eq_ignore_ascii_case("handling=strict"));
    if strict {
        hygeia_fhir::search::Handling::Strict
    } else {
        hygeia_fhir::search::Handling::Lenient
    }
}
