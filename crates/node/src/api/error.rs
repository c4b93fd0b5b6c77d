//! JSON errors with stable codes.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hygeia_ledger::{ErrorCode, StoreError, SubmitError, TxError};
use serde_json::json;

/// An error answer: `{"error": {"code", "message", "position"?}}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Which transaction of a batch submission was refused.
    pub position: Option<usize>,
    /// Extra members of the error object (an access refusal's audit index).
    pub details: Option<Box<serde_json::Map<String, serde_json::Value>>>,
    /// Answer with `WWW-Authenticate` (a 401).
    pub www_authenticate: bool,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            position: None,
            details: None,
            www_authenticate: false,
        }
    }

    pub fn with_detail(mut self, key: &str, value: serde_json::Value) -> Self {
        self.details
            .get_or_insert_with(Default::default)
            .insert(key.to_owned(), value);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn out_of_range(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "out_of_range", message)
    }

    /// A failure of the node itself. The details (which may name files,
    /// or say how the host is failing) go to the node's log under an
    /// incident id; the client gets only that id.
    pub fn internal(message: impl Into<String>) -> Self {
        let incident = incident(&message.into());
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("internal error (incident {incident}); the node's log has the details"),
        )
    }

    /// Storage the node needs is failing (a full disk, no file handles
    /// left): 503, details logged as for [`ApiError::internal`].
    pub fn storage_unavailable(message: impl std::fmt::Display) -> Self {
        let incident = incident(&message.to_string());
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_unavailable",
            format!("the node's storage is unavailable; retry later (incident {incident})"),
        )
    }
}

/// Logs a failure's details and gives the id a client may quote.
pub fn incident(details: &str) -> String {
    let incident = hex::encode(rand::random::<[u8; 6]>());
    tracing::error!(%incident, error = %details, "request failed");
    incident
}

impl From<TxError> for ApiError {
    fn from(e: TxError) -> Self {
        let status = match e.code {
            ErrorCode::Replay => StatusCode::CONFLICT,
            ErrorCode::TxTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::Forbidden(_) => StatusCode::FORBIDDEN,
            ErrorCode::NotFound(_) => StatusCode::NOT_FOUND,
            ErrorCode::Conflict(_) => StatusCode::CONFLICT,
            ErrorCode::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError {
            status,
            code: e.code.as_str(),
            message: e.message,
            position: e.position,
            details: None,
            www_authenticate: false,
        }
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::Rejected(tx) => tx.into(),
            SubmitError::Overloaded { .. } => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", e.to_string())
            }
            SubmitError::Storage(_) => ApiError::storage_unavailable(e),
            SubmitError::ShuttingDown => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                e.to_string(),
            ),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::OutOfRange(message) => ApiError::out_of_range(message),
            StoreError::Busy(message) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", message)
            }
            StoreError::Corrupt(_) => ApiError::internal(format!("stored log is damaged: {e}")),
            other => ApiError::storage_unavailable(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(position) = self.position {
            error["position"] = json!(position);
        }
        for (key, value) in self.details.map(|d| *d).unwrap_or_default() {
            error[key] = value;
        }
        let mut response = (self.status, axum::Json(json!({ "error": error }))).into_response();
        if self.www_authenticate {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Signature"),
            );
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!(
        "no such endpoint: {}; see /openapi.json for the API",
        uri.path().chars().take(200).collect::<String>()
    ))
}

pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{method} is not allowed on {}; see /openapi.json",
            uri.path().chars().take(200).collect::<String>()
        ),
    )
}

/// The stable code of an error the framework answers by itself (a body
/// over its route's limit, a path or query that does not parse).
fn framework_code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    }
}

/// The FHIR issue code of the same.
fn framework_issue(status: StatusCode) -> &'static str {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => "too-costly",
        StatusCode::UNSUPPORTED_MEDIA_TYPE | StatusCode::METHOD_NOT_ALLOWED => "not-supported",
        StatusCode::NOT_FOUND => "not-found",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        s if s.is_server_error() => "exception",
        _ => "structure",
    }
}

/// Answers that do not say how they may be cached are not cached: records,
/// FHIR resources, audit feeds and decisions must not stay in a browser's or
/// a proxy's cache (a cached answer can outlive a revocation or an erasure).
/// Answers meant to be cached (tiles, the apps' assets, key sets) set their
/// own `Cache-Control`.
pub async fn no_store_by_default(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// Makes every error answer JSON with a stable code, including those the
/// framework writes as plain text (its extractors' rejections: a body
/// over the route's limit, a path segment that is not UTF-8, a stalled
/// body): `{"error": {"code", "message"}}` on the node's API, an
/// OperationOutcome under `/fhir`, an OAuth error at `/auth/token`.
pub async fn json_errors(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let status = response.status();
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/plain"));
    if !(plain && (status.is_client_error() || status.is_server_error())) {
        return response;
    }
    let text = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let message = if text.trim().is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text.trim().chars().take(300).collect()
    };
    if path == "/fhir" || path.starts_with("/fhir/") || path.starts_with("/fhir-export/") {
        let issue = hygeia_fhir::outcome::Issue::error(framework_issue(status), message);
        return crate::api::fhir::FhirError::new(status, issue).into_response();
    }
    if path == "/auth/token" {
        let mut response = (
            status,
            axum::Json(json!({"error": "invalid_request", "error_description": message})),
        )
            .into_response();
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return response;
    }
    ApiError::new(status, framework_code(status), message).into_response()
}
