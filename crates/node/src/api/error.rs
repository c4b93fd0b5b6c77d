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

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
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
            SubmitError::Storage(_) | SubmitError::ShuttingDown => ApiError::new(
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
            StoreError::Corrupt(_) => {
                tracing::error!(error = %e, "stored log is damaged");
                ApiError::internal(e.to_string())
            }
            other => {
                tracing::error!(error = %other, "storage error");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage_unavailable",
                    other.to_string(),
                )
            }
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
