//! Authenticating requests that touch patient data (docs/auth.md).

use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use hygeia_auth::{AuthError, Authenticated, RequestHead};

use super::error::ApiError;
use crate::node::{unix_now, Node};

/// Verifies the request's RFC 9421 signature; on success its nonce is spent.
pub fn authenticate(
    node: &Node,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Authenticated, ApiError> {
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|n| n > 0);
    let head = RequestHead {
        method,
        path: uri.path(),
        query: uri.query(),
        headers,
        has_body,
    };
    node.auth.verify(&head, unix_now()).map_err(ApiError::from)
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::UNAUTHORIZED);
        let mut error = ApiError::new(status, e.code(), e.to_string());
        if status == StatusCode::UNAUTHORIZED {
            error.www_authenticate = true;
        }
        error
    }
}
