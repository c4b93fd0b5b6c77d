//! SMART on FHIR (docs/smart.md): discovery, the App Launch authorization
//! code flow with PKCE, and the code exchange at `POST /auth/token`.
//!
//! `GET /authorize` checks the request and sends the browser to the
//! consent page (`/app/#/authorize/<id>`), where the person signs in with
//! their key and approves or declines (`POST /v1/smart/requests/{id}/…`,
//! RFC 9421 signed). An approval gives a 60-second single-use code bound to
//! the client, its redirect URI and the PKCE challenge; the app exchanges
//! it for an access token whose scopes are enforced on top of consent at
//! every FHIR interaction (`fhir::scopes`), never instead of it.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hygeia_auth::scope::Scope;
use hygeia_auth::smart::{Approval, AuthorizeParams, SmartError, CODE_LIFETIME_SECS, PKCE_METHOD};
use hygeia_auth::token::{Session, ACCESS_TOKEN_LIFETIME_SECS};
use hygeia_policy::PurposeOfUse;
use serde_json::{json, Value};

use super::auth::{acting_identity, authenticate};
use super::error::ApiError;
use crate::node::{unix_now, Node};
use crate::server::PeerAddr;

/// The origin clients reach this node at: `public_url` if the operator set
/// it, otherwise the request's `Host` (as the FHIR API's links).
fn origin(node: &Node, headers: &HeaderMap) -> String {
    match &node.config.public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => super::fhir::base_url(headers)
            .trim_end_matches("/fhir")
            .to_owned(),
    }
}

fn no_store(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

fn oauth_error(e: &SmartError) -> Response {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    no_store((status, axum::Json(e.to_oauth_json())).into_response())
}

/// The resource scopes this node enforces, as discovery lists them.
const SCOPES_SUPPORTED: [&str; 10] = [
    "launch/patient",
    "patient/*.cruds",
    "patient/*.rs",
    "user/*.cruds",
    "user/*.rs",
    "system/*.cruds",
    "system/*.rs",
    "patient/*.read",
    "user/*.read",
    "system/*.read",
];

/// `GET /.well-known/smart-configuration` (at the root and at the FHIR
/// base): what this node supports, and nothing it does not.
pub async fn configuration(State(node): State<Arc<Node>>, headers: HeaderMap) -> Response {
    let origin = origin(&node, &headers);
    let body = json!({
        "authorization_endpoint": format!("{origin}/authorize"),
        "token_endpoint": format!("{origin}/auth/token"),
        "grant_types_supported": ["authorization_code", "client_credentials"],
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": [PKCE_METHOD],
        "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["EdDSA", "ES384"],
        "scopes_supported": SCOPES_SUPPORTED,
        "capabilities": [
            "launch-standalone",
            "client-public",
            "client-confidential-asymmetric",
            "context-standalone-patient",
            "permission-patient",
            "permission-user",
            "permission-v1",
            "permission-v2",
        ],
    });
    let mut response = (StatusCode::OK, axum::Json(body)).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

/// `redirect_uri` with `params` added to its query.
fn redirect_to(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        form.append_pair(name, value);
    }
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    format!("{redirect_uri}{separator}{}", form.finish())
}

fn found(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => no_store((StatusCode::FOUND, [(header::LOCATION, value)]).into_response()),
        Err(_) => oauth_error(&SmartError::InvalidRequest(
            "the redirect URI cannot be sent back".into(),
        )),
    }
}

/// `GET /authorize`: checks the request and sends the browser to the
/// consent page. An unknown client or unregistered redirect URI is
/// answered here (RFC 6749 §4.1.2.1: never redirected); other errors go to
/// the redirect URI with `error` and `state`.
pub async fn authorize(
    State(node): State<Arc<Node>>,
    peer: Option<axum::Extension<PeerAddr>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let params = AuthorizeParams::from_query(uri.query().unwrap_or(""));
    let (client, redirect_uri) = match params.client(&node.smart_clients) {
        Ok(found) => found,
        Err(e) => return oauth_error(&e),
    };
    let fhir_base = format!("{}/fhir", origin(&node, &headers));
    let state = uri
        .query()
        .and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(n, _)| n == "state")
                .map(|(_, v)| v.into_owned())
        })
        .filter(|s| s.len() <= hygeia_auth::smart::MAX_STATE_LEN);
    let refuse = |e: SmartError| {
        let description = e.to_string();
        let mut out = vec![("error", e.code()), ("error_description", &description)];
        if let Some(state) = &state {
            out.push(("state", state));
        }
        found(&redirect_to(&redirect_uri, &out))
    };
    let request = match params.check(client, redirect_uri.clone(), &fhir_base) {
        Ok(request) => request,
        Err(e) => return refuse(e),
    };
    // Requests served without a socket (in-process callers) share one
    // bucket.
    let source = peer.map_or_else(
        || "in-process".to_owned(),
        |axum::Extension(PeerAddr(ip))| hygeia_auth::smart::source_of(ip),
    );
    match node
        .authorizations
        .begin(request, &source, unix_now() as i64)
    {
        Ok(id) => found(&format!("/app/#/authorize/{id}")),
        Err(e) => refuse(e),
    }
}

fn unknown_request() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "smart.unknown_request",
        "this authorization request is unknown, expired (they wait 10 minutes) or already decided: go back to the app and start again",
    )
}

/// `GET /v1/smart/requests/{id}`: what the consent page shows. Public:
/// the id is a 256-bit secret of the browser that was sent here, and the
/// answer holds only the app's registration and the scopes it asks for.
pub async fn request(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let pending = node
        .authorizations
        .pending(&id, unix_now() as i64)
        .ok_or_else(unknown_request)?;
    let r = &pending.request;
    let client = node
        .smart_clients
        .get(&r.client_id)
        .ok_or_else(unknown_request)?;
    Ok(no_store(
        axum::Json(json!({
            "client_id": client.client_id,
            "client_name": client.name,
            "redirect_uri": r.redirect_uri,
            "purpose_of_use": client.purpose_of_use,
            "scope": r.scope.to_string(),
            "scopes": r.scope.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            "expires_at": pending.expires_at,
        }))
        .into_response(),
    ))
}

/// The FHIR Patient id of `did`'s own Patient resource on this node.
fn own_patient(node: &Node, did: &str) -> Option<String> {
    node.fhir
        .store
        .of_patient(did)
        .into_iter()
        .find(|c| c.resource_type == "Patient")
        .map(|c| c.id)
}

/// `POST /v1/smart/requests/{id}/approve` and `/deny`, signed by the
/// person's key (RFC 9421): the request is decided once. Answers where to
/// send the browser: the app's redirect URI with a code, or with
/// `error=access_denied`.
pub async fn decide(
    State(node): State<Arc<Node>>,
    Path((id, decision)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let approve = match decision.as_str() {
        "approve" => true,
        "deny" => false,
        _ => return Err(ApiError::not_found("use /approve or /deny")),
    };
    let caller = authenticate(&node, &method, &uri, &headers)?;
    let now = unix_now() as i64;
    let pending = node
        .authorizations
        .take(&id, now)
        .ok_or_else(unknown_request)?;
    let r = pending.request;
    let client = node
        .smart_clients
        .get(&r.client_id)
        .ok_or_else(unknown_request)?;
    let redirect = if approve {
        let patient = if r.scope.contains(&Scope::LaunchPatient) {
            own_patient(&node, caller.did.as_str())
        } else {
            None
        };
        // Granted: the resource scopes asked for, and the launch context
        // when there is one. No id token, no refresh token.
        let scope = hygeia_auth::scope::Scopes::from_scopes(
            r.scope
                .iter()
                .filter(|s| {
                    matches!(s, Scope::Resource(_))
                        || (**s == Scope::LaunchPatient && patient.is_some())
                })
                .cloned(),
        );
        let code = node
            .authorizations
            .issue_code(
                Approval {
                    client_id: r.client_id.clone(),
                    redirect_uri: r.redirect_uri.clone(),
                    code_challenge: r.code_challenge.clone(),
                    did: caller.key.to_string(),
                    scope,
                    patient,
                    purpose: client.purpose_of_use.clone(),
                    expires_at: now + CODE_LIFETIME_SECS,
                },
                now,
            )
            .map_err(|e| match e {
                SmartError::TooMany => ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "smart.too_many_codes",
                    "this key already holds 16 codes no app has redeemed yet: wait a minute and try again",
                ),
                e => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", e.to_string()),
            })?;
        tracing::info!(client = %r.client_id, did = %caller.did, "SMART app authorized");
        redirect_to(&r.redirect_uri, &[("code", &code), ("state", &r.state)])
    } else {
        tracing::info!(client = %r.client_id, did = %caller.did, "SMART app declined");
        let description = SmartError::AccessDenied.to_string();
        redirect_to(
            &r.redirect_uri,
            &[
                ("error", "access_denied"),
                ("error_description", &description),
                ("state", &r.state),
            ],
        )
    };
    Ok(no_store(
        axum::Json(json!({ "redirect": redirect })).into_response(),
    ))
}

/// Whether a token request is for the authorization code grant.
pub fn is_code_grant(body: &[u8]) -> bool {
    form_urlencoded::parse(body).any(|(n, v)| n == "grant_type" && v == "authorization_code")
}

/// `POST /auth/token` with `grant_type=authorization_code` (RFC 6749
/// §4.1.3, public clients with PKCE).
pub fn exchange(node: &Node, body: &[u8]) -> Response {
    match try_exchange(node, body) {
        Ok(response) => response,
        Err(e) => oauth_error(&e),
    }
}

fn try_exchange(node: &Node, body: &[u8]) -> Result<Response, SmartError> {
    let mut fields: [(&str, Option<String>); 4] = [
        ("code", None),
        ("redirect_uri", None),
        ("code_verifier", None),
        ("client_id", None),
    ];
    for (name, value) in form_urlencoded::parse(body) {
        if let Some((_, slot)) = fields.iter_mut().find(|(n, _)| *n == name) {
            if slot.is_some() {
                return Err(SmartError::InvalidRequest(format!(
                    "{name} is given more than once"
                )));
            }
            if !value.is_empty() {
                *slot = Some(value.into_owned());
            }
        }
    }
    let [(_, code), (_, redirect_uri), (_, verifier), (_, client_id)] = fields;
    let client_id = client_id.ok_or_else(|| {
        SmartError::InvalidRequest("client_id is required (a public client names itself)".into())
    })?;
    let code = code.ok_or_else(|| SmartError::InvalidRequest("code is required".into()))?;
    let redirect_uri = redirect_uri
        .ok_or_else(|| SmartError::InvalidRequest("redirect_uri is required".into()))?;
    let verifier = verifier.ok_or_else(|| {
        SmartError::InvalidRequest("code_verifier is required (PKCE, S256)".into())
    })?;
    if node.smart_clients.get(&client_id).is_none() {
        return Err(SmartError::UnknownClient(format!(
            "no client {:?} is registered on this node",
            client_id.chars().take(64).collect::<String>()
        )));
    }
    let now = unix_now() as i64;
    let approval = node.authorizations.redeem(
        &code,
        &client_id,
        &redirect_uri,
        &verifier,
        now,
        &node.tokens,
    )?;
    // A key retired since the approval gets no token.
    let key = hygeia_identity::Did::parse_cached(&approval.did)
        .map_err(|_| SmartError::InvalidGrant("the approving key is not a did:key".into()))?;
    acting_identity(&node.state.read().state, &key)
        .map_err(|e| SmartError::InvalidGrant(format!("{}: {}", e.code, e.message)))?;
    let purpose = approval
        .purpose
        .parse::<PurposeOfUse>()
        .map_err(|e| SmartError::InvalidGrant(format!("the client's purpose_of_use: {e}")))?;
    let expires_at = now + ACCESS_TOKEN_LIFETIME_SECS;
    let token = node.tokens.issue(Session {
        did: approval.did.clone(),
        purpose: purpose.code().to_owned(),
        break_glass: None,
        expires_at,
        scope: approval.scope.clone(),
    });
    node.authorizations
        .redeemed(&code, &token, now + ACCESS_TOKEN_LIFETIME_SECS);
    let mut answer: Value = json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": ACCESS_TOKEN_LIFETIME_SECS,
        "scope": approval.scope.to_string(),
    });
    if let Some(patient) = &approval.patient {
        answer["patient"] = json!(patient);
    }
    Ok(no_store(
        (StatusCode::OK, axum::Json(answer)).into_response(),
    ))
}
