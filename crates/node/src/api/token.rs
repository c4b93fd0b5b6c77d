//! `POST /auth/token`: bearer tokens for FHIR clients (docs/auth.md,
//! "Bearer tokens for FHIR clients"). A client assertion signed with the
//! participant's did:key is exchanged for a 15-minute access token bound to
//! the stated purpose of use (and break-glass justification, if any).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hygeia_auth::scope::{Scope, Scopes};
use hygeia_auth::token::{
    ClientIdentity, Session, TokenError, TokenRequest, TokenResponse, ACCESS_TOKEN_LIFETIME_SECS,
};
use hygeia_policy::PurposeOfUse;

use super::auth::acting_identity;
use super::error::ApiError;
use crate::node::{unix_now, Node};

/// What a client assertion's `aud` may name: this node's DID, and, when
/// the operator configured the node's public URL, its token endpoint URL
/// (`<public-url>/auth/token`, what SMART Backend Services clients send).
/// Never a URL taken from the request: a client chooses its `Host` header,
/// so an assertion made for one node could then be spent at another.
pub fn audiences(node: &Node) -> Vec<String> {
    let mut audiences = vec![node.node_did.clone()];
    if let Some(url) = &node.config.public_url {
        audiences.push(token_endpoint(url));
    }
    audiences
}

/// The token endpoint's URL under a public URL.
pub fn token_endpoint(public_url: &str) -> String {
    format!("{}/auth/token", public_url.trim_end_matches('/'))
}

fn oauth_error(e: &TokenError) -> Response {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = (status, e.to_oauth_json()).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A refused identity as an OAuth error object (RFC 6749 §5.2 allows
/// extension codes): `{"error":"identity.key_retired", ...}`.
fn identity_error(e: &ApiError) -> Response {
    let mut response = (
        e.status,
        axum::Json(serde_json::json!({"error": e.code, "error_description": e.message})),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub async fn issue(State(node): State<Arc<Node>>, headers: HeaderMap, body: Bytes) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return oauth_error(&TokenError::InvalidRequest(
            "the token request must be application/x-www-form-urlencoded".into(),
        ));
    }
    // SMART App Launch: a code from the consent page (docs/smart.md).
    if super::smart::is_code_grant(&body) {
        return super::smart::exchange(&node, &body);
    }
    let request = match TokenRequest::from_form(&body) {
        Ok(r) => r,
        Err(e) => return oauth_error(&e),
    };
    let now = unix_now() as i64;
    let audiences = audiences(&node);
    let audiences: Vec<&str> = audiences.iter().map(String::as_str).collect();
    let client = match request.authenticate(&node.smart_clients, &audiences, now, &node.jtis) {
        Ok(client) => client,
        Err(e) => return oauth_error(&e),
    };
    let did = client.acting_key();
    // A retired key gets no token. The session keeps the signing key, not
    // the identity: each use resolves it again (`fhir::authenticate`), so a
    // token issued before a rotation stops working with it.
    if let Err(e) = acting_identity(&node.state.read().state, did) {
        return identity_error(&e);
    }
    let purpose = match purpose_of(&client, &request) {
        Ok(p) => p,
        Err(e) => return oauth_error(&e),
    };
    let scope = match granted(request.scope.as_ref()) {
        Ok(scope) => scope,
        Err(e) => return oauth_error(&e),
    };
    let token = node.tokens.issue(Session {
        did: did.as_str().to_owned(),
        purpose: purpose.code().to_owned(),
        break_glass: request.break_glass.clone(),
        expires_at: now + ACCESS_TOKEN_LIFETIME_SECS,
        scope: scope.clone(),
    });
    let mut response = (
        StatusCode::OK,
        axum::Json(TokenResponse::bearer(
            token,
            ACCESS_TOKEN_LIFETIME_SECS,
            scope.to_string(),
        )),
    )
        .into_response();
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// The purpose a token states. A did:key client states its own
/// (`TREAT` when silent). A registered backend client states the one it
/// was registered with, and cannot break glass: both were fixed when its
/// acting key signed the registration, not at each request.
fn purpose_of(
    client: &ClientIdentity<'_>,
    request: &TokenRequest,
) -> Result<PurposeOfUse, TokenError> {
    let (asked, registered) = match client {
        ClientIdentity::DidKey(_) => (request.purpose_of_use.as_deref(), None),
        ClientIdentity::Registered(c) => {
            if request.break_glass.is_some() {
                return Err(TokenError::InvalidRequest(
                    "a registered backend client cannot break glass: a person signs break-glass requests".into(),
                ));
            }
            let registered = c.purpose_of_use.as_str();
            if request
                .purpose_of_use
                .as_deref()
                .is_some_and(|p| p != registered)
            {
                return Err(TokenError::InvalidRequest(format!(
                    "purpose_of_use: this client is registered for {registered}"
                )));
            }
            (Some(registered), Some(registered))
        }
    };
    match asked {
        None => Ok(PurposeOfUse::Treatment),
        Some(code) => code.parse::<PurposeOfUse>().map_err(|e| {
            TokenError::InvalidRequest(match registered {
                Some(_) => format!("the registered purpose_of_use: {e}"),
                None => format!("purpose_of_use: {e}"),
            })
        }),
    }
}

/// What a client that asks for no scope gets: every interaction on every
/// type, within what consent allows (docs/auth.md, "Scopes").
pub const DEFAULT_SCOPE: &str = "system/*.cruds";

/// The scopes granted for those asked: the resource scopes (their
/// interactions enforced on every FHIR request); scopes about a launch, an
/// OpenID Connect id token or a refresh token mean nothing to the
/// client-credentials grant and are left out of the grant (RFC 6749 §3.3
/// lets a server grant less than asked, and the response says what it
/// granted). A resource scope narrowed by a query (`?category=…`) is
/// refused: this node cannot enforce one.
pub fn granted(asked: Option<&Scopes>) -> Result<Scopes, TokenError> {
    let Some(asked) = asked else {
        return DEFAULT_SCOPE
            .parse()
            .map_err(|e: hygeia_auth::scope::ScopeError| TokenError::InvalidScope(e.to_string()));
    };
    if let Some(narrowed) = asked.resources().find(|r| r.query.is_some()) {
        return Err(TokenError::InvalidScope(format!(
            "{narrowed}: scopes narrowed by a query are not supported by this node; ask for the scope without it"
        )));
    }
    Ok(Scopes::from_scopes(
        asked
            .iter()
            .filter(|s| matches!(s, Scope::Resource(_)))
            .cloned(),
    ))
}
