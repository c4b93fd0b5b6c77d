//! SMART App Launch: the authorization code grant with PKCE (RFC 6749
//! §4.1, RFC 7636 `S256` only) for registered clients.
//!
//! - [`Clients`]: the clients a node's operator registered (a static file,
//!   never an HTTP call): each a `client_id`, a name shown on the consent
//!   page, the exact redirect URIs it may use and the purpose of use its
//!   tokens state.
//! - [`AuthorizationRequest`]: the `/authorize` query, checked in the order
//!   RFC 6749 §4.1.2.1 needs (client and redirect URI first: an error about
//!   them is never sent to the redirect URI).
//! - [`Authorizations`]: requests waiting on the person's consent page, and
//!   the short-lived single-use codes the approvals give, bound to client,
//!   redirect URI and PKCE challenge; a reused code revokes the token it
//!   gave (RFC 6749 §4.1.2).
//!
//! Pure: no HTTP, no clock of its own (every call is told `now`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::scope::Scopes;
use crate::smart_backend::{BackendClient, BackendClientEntry};
use crate::token::TokenStore;

/// How long a code is valid, in seconds (RFC 6749 §4.1.2 recommends at
/// most ten minutes; a client redeems it at once).
pub const CODE_LIFETIME_SECS: i64 = 60;
/// How long a request waits on the consent page, in seconds.
pub const REQUEST_LIFETIME_SECS: i64 = 600;
/// Most requests waiting for a decision, and most unredeemed codes: past
/// that, `/authorize` answers `temporarily_unavailable` rather than forget
/// one.
pub const MAX_PENDING: usize = 10_000;
/// Most requests one source (an IPv4 address, an IPv6 /64) may keep waiting:
/// `/authorize` is public, so without it one stranger could fill the table
/// and lock every other patient out of their apps for ten minutes.
pub const MAX_PENDING_PER_SOURCE: usize = 32;
/// Most unredeemed codes one approving key may hold: approvals are signed,
/// but a fresh did:key costs nothing.
pub const MAX_CODES_PER_KEY: usize = 16;
/// Longest `state` accepted (it is echoed in a URL).
pub const MAX_STATE_LEN: usize = 512;
/// Longest redirect URI a client may register.
pub const MAX_REDIRECT_URI_LEN: usize = 512;
/// The only PKCE method: plain would hand the verifier to whoever sees the
/// request.
pub const PKCE_METHOD: &str = "S256";

/// Why an authorization or code exchange was refused.
///
/// [`SmartError::code`] is the RFC 6749 §4.1.2.1 / §5.2 `error` (stable);
/// the `Display` text says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmartError {
    /// A parameter is missing, repeated or malformed (a `plain` PKCE
    /// method included).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// `client_id` names no registered client. Never redirected.
    #[error("unknown client: {0}")]
    UnknownClient(String),
    /// `redirect_uri` is not one the client registered. Never redirected.
    #[error("redirect_uri refused: {0}")]
    BadRedirectUri(String),
    /// `response_type` other than `code`.
    #[error("response_type must be \"code\", not {0:?}")]
    UnsupportedResponseType(String),
    /// A scope not in SMART syntax, unknown, or narrowed by a query.
    #[error("invalid scope: {0}")]
    InvalidScope(String),
    /// The person declined.
    #[error("the person declined to authorize this app")]
    AccessDenied,
    /// A code unknown, expired, already used, issued to another client or
    /// redirect URI, or a PKCE verifier that does not match.
    #[error("invalid grant: {0}")]
    InvalidGrant(String),
    /// Too many requests or codes outstanding.
    #[error("the authorization server is busy: try again in a minute")]
    Busy,
    /// Too many requests waiting from one source, or codes for one key.
    #[error("too many authorizations are waiting from here: finish or cancel one, or try again in ten minutes")]
    TooMany,
}

impl SmartError {
    /// The RFC 6749 error code.
    pub fn code(&self) -> &'static str {
        match self {
            SmartError::InvalidRequest(_) | SmartError::BadRedirectUri(_) => "invalid_request",
            SmartError::UnknownClient(_) => "invalid_client",
            SmartError::UnsupportedResponseType(_) => "unsupported_response_type",
            SmartError::InvalidScope(_) => "invalid_scope",
            SmartError::AccessDenied => "access_denied",
            SmartError::InvalidGrant(_) => "invalid_grant",
            SmartError::Busy | SmartError::TooMany => "temporarily_unavailable",
        }
    }

    /// The HTTP status of the error body (RFC 6749 §5.2).
    pub fn http_status(&self) -> u16 {
        match self {
            SmartError::UnknownClient(_) => 401,
            SmartError::Busy => 503,
            SmartError::TooMany => 429,
            _ => 400,
        }
    }

    /// `{"error": code, "error_description": message}`.
    pub fn to_oauth_json(&self) -> serde_json::Value {
        serde_json::json!({"error": self.code(), "error_description": self.to_string()})
    }
}

/// One registered client.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Client {
    /// 1 to 64 characters of `[A-Za-z0-9._-]`.
    pub client_id: String,
    /// Shown to the person on the consent page: 1 to 100 characters.
    pub name: String,
    /// The redirect URIs it may use, compared exactly.
    pub redirect_uris: Vec<String>,
    /// The HL7 v3 PurposeOfUse its tokens state (`PATRQT` for a patient's
    /// own app, `TREAT` for a clinician's); `TREAT` when absent.
    #[serde(default = "treatment")]
    pub purpose_of_use: String,
}

fn treatment() -> String {
    "TREAT".into()
}

/// The registered clients (`smart-clients.json`): apps that launch with a
/// person, and backend services ([`crate::smart_backend`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Clients {
    apps: BTreeMap<String, Client>,
    backend: BTreeMap<String, BackendClient>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientsFile {
    #[serde(default)]
    clients: Vec<Client>,
    #[serde(default)]
    backend_clients: Vec<BackendClientEntry>,
}

/// Why a clients file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SMART clients file refused: {0}")]
pub struct ClientsError(pub String);

impl Clients {
    /// Parses and checks `{"clients": [...]}`.
    pub fn from_json(bytes: &[u8]) -> Result<Clients, ClientsError> {
        let file: ClientsFile =
            serde_json::from_slice(bytes).map_err(|e| ClientsError(e.to_string()))?;
        let mut clients = Clients::default();
        let twice = |id: &str| ClientsError(format!("client_id {id:?} is registered twice"));
        for client in file.clients {
            check_client(&client)?;
            if clients.apps.contains_key(&client.client_id) {
                return Err(twice(&client.client_id));
            }
            clients.apps.insert(client.client_id.clone(), client);
        }
        for entry in file.backend_clients {
            check_id_and_name(&entry.client_id, &entry.name)?;
            check_purpose(&entry.client_id, &entry.purpose_of_use)?;
            let id = entry.client_id.clone();
            if clients.apps.contains_key(&id) || clients.backend.contains_key(&id) {
                return Err(twice(&id));
            }
            let client = BackendClient::from_entry(entry).map_err(ClientsError)?;
            clients.backend.insert(id, client);
        }
        Ok(clients)
    }

    /// The app (App Launch) client `client_id`.
    pub fn get(&self, client_id: &str) -> Option<&Client> {
        self.apps.get(client_id)
    }

    /// The backend services client `client_id`.
    pub fn backend(&self, client_id: &str) -> Option<&BackendClient> {
        self.backend.get(client_id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Client> {
        self.apps.values()
    }

    pub fn is_empty(&self) -> bool {
        self.apps.is_empty() && self.backend.is_empty()
    }
}

fn check_client(client: &Client) -> Result<(), ClientsError> {
    check_id_and_name(&client.client_id, &client.name)?;
    let id = &client.client_id;
    if client.redirect_uris.is_empty() {
        return Err(ClientsError(format!("{id}: redirect_uris is empty")));
    }
    for uri in &client.redirect_uris {
        check_redirect_uri(uri).map_err(|e| ClientsError(format!("{id}: {e}")))?;
    }
    check_purpose(id, &client.purpose_of_use)
}

fn check_purpose(id: &str, purpose: &str) -> Result<(), ClientsError> {
    if purpose.is_empty() || purpose.len() > 16 || !purpose.bytes().all(|b| b.is_ascii_uppercase())
    {
        return Err(ClientsError(format!(
            "{id}: purpose_of_use must be an HL7 v3 PurposeOfUse code such as TREAT or PATRQT"
        )));
    }
    Ok(())
}

fn check_id_and_name(id: &str, name: &str) -> Result<(), ClientsError> {
    if id.is_empty()
        || id.len() > 64
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(ClientsError(format!(
            "client_id {id:?} must be 1 to 64 characters of A-Z a-z 0-9 . _ -"
        )));
    }
    let name_chars = name.chars().count();
    if name_chars == 0 || name_chars > 100 || name.chars().any(char::is_control) {
        return Err(ClientsError(format!(
            "{id}: name must be 1 to 100 characters without control characters"
        )));
    }
    Ok(())
}

/// A redirect URI a client may register: `https://…`, or `http://` on a
/// loopback address (RFC 8252 §7.3); visible ASCII, no fragment (RFC 6749
/// §3.1.2), at most [`MAX_REDIRECT_URI_LEN`] bytes.
pub fn check_redirect_uri(uri: &str) -> Result<(), String> {
    if uri.len() > MAX_REDIRECT_URI_LEN || !uri.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "redirect URI {uri:?} must be at most {MAX_REDIRECT_URI_LEN} characters of visible ASCII"
        ));
    }
    if uri.contains('#') {
        return Err(format!("redirect URI {uri:?} must not have a fragment"));
    }
    let authority_of =
        |rest: &str| -> String { rest.split(['/', '?']).next().unwrap_or("").to_owned() };
    if let Some(rest) = uri.strip_prefix("https://") {
        let authority = authority_of(rest);
        if authority.is_empty() || authority.contains('@') {
            return Err(format!("redirect URI {uri:?} has no host"));
        }
        return Ok(());
    }
    if let Some(rest) = uri.strip_prefix("http://") {
        let authority = authority_of(rest);
        let host = if authority.starts_with("[::1]") {
            "[::1]"
        } else {
            authority.split(':').next().unwrap_or("")
        };
        if matches!(host, "127.0.0.1" | "localhost" | "[::1]") && !authority.contains('@') {
            return Ok(());
        }
    }
    Err(format!(
        "redirect URI {uri:?} must be https://, or http:// on a loopback address (127.0.0.1, [::1], localhost)"
    ))
}

/// A checked `/authorize` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: Scopes,
    pub state: String,
    pub aud: String,
    pub code_challenge: String,
}

/// The `/authorize` parameters, read before anything is decided.
#[derive(Debug, Default)]
pub struct AuthorizeParams {
    fields: BTreeMap<&'static str, String>,
    repeated: Option<String>,
}

const AUTHORIZE_PARAMS: [&str; 8] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "aud",
    "code_challenge",
    "code_challenge_method",
];

impl AuthorizeParams {
    /// Reads a query string (RFC 6749 §3.1: unknown parameters ignored,
    /// empty ones absent, none repeated).
    pub fn from_query(query: &str) -> AuthorizeParams {
        let mut params = AuthorizeParams::default();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            let Some(known) = AUTHORIZE_PARAMS.iter().find(|n| **n == name) else {
                continue;
            };
            if value.is_empty() {
                continue;
            }
            if params.fields.insert(known, value.into_owned()).is_some() {
                params.repeated.get_or_insert_with(|| (*known).to_owned());
            }
        }
        params
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }

    /// The client and redirect URI, checked first: their errors are
    /// answered to the browser, never sent to the redirect URI.
    pub fn client<'c>(&self, clients: &'c Clients) -> Result<(&'c Client, String), SmartError> {
        if let Some(name @ ("client_id" | "redirect_uri")) = self.repeated.as_deref() {
            return Err(SmartError::InvalidRequest(format!(
                "{name} is given more than once"
            )));
        }
        let client_id = self
            .get("client_id")
            .ok_or_else(|| SmartError::InvalidRequest("client_id is required".into()))?;
        let client = clients.get(client_id).ok_or_else(|| {
            SmartError::UnknownClient(format!(
                "no client {:?} is registered on this node; its operator registers clients (docs/smart.md)",
                client_id.chars().take(64).collect::<String>()
            ))
        })?;
        let redirect_uri = self
            .get("redirect_uri")
            .ok_or_else(|| SmartError::InvalidRequest("redirect_uri is required".into()))?;
        if !client.redirect_uris.iter().any(|r| r == redirect_uri) {
            return Err(SmartError::BadRedirectUri(format!(
                "{:?} is not a redirect URI registered for {}; redirect URIs are compared exactly",
                redirect_uri.chars().take(200).collect::<String>(),
                client.client_id
            )));
        }
        Ok((client, redirect_uri.to_owned()))
    }

    /// The rest of the request, once client and redirect URI are known
    /// good (its errors go to the redirect URI with `state`). `aud` must be
    /// `fhir_base` (SMART App Launch: the server refuses a request for
    /// another resource server).
    pub fn check(
        &self,
        client: &Client,
        redirect_uri: String,
        fhir_base: &str,
    ) -> Result<AuthorizationRequest, SmartError> {
        if let Some(name) = &self.repeated {
            return Err(SmartError::InvalidRequest(format!(
                "{name} is given more than once"
            )));
        }
        match self.get("response_type") {
            Some("code") => {}
            None => {
                return Err(SmartError::InvalidRequest(
                    "response_type is required: code".into(),
                ))
            }
            Some(other) => {
                return Err(SmartError::UnsupportedResponseType(
                    other.chars().take(64).collect(),
                ))
            }
        }
        let state = self.get("state").ok_or_else(|| {
            SmartError::InvalidRequest("state is required (SMART App Launch)".into())
        })?;
        if state.len() > MAX_STATE_LEN {
            return Err(SmartError::InvalidRequest(format!(
                "state must be at most {MAX_STATE_LEN} bytes"
            )));
        }
        let aud = self
            .get("aud")
            .ok_or_else(|| SmartError::InvalidRequest(format!("aud is required: {fhir_base}")))?;
        if aud.trim_end_matches('/') != fhir_base {
            return Err(SmartError::InvalidRequest(format!(
                "aud must be this server's FHIR base URL {fhir_base}"
            )));
        }
        match self.get("code_challenge_method") {
            Some(PKCE_METHOD) => {}
            None => {
                return Err(SmartError::InvalidRequest(
                    "code_challenge_method is required: S256 (PKCE)".into(),
                ))
            }
            Some(other) => {
                return Err(SmartError::InvalidRequest(format!(
                    "code_challenge_method must be S256, not {:?}: plain PKCE is not supported",
                    other.chars().take(32).collect::<String>()
                )))
            }
        }
        let code_challenge = self.get("code_challenge").ok_or_else(|| {
            SmartError::InvalidRequest("code_challenge is required (PKCE, S256)".into())
        })?;
        if code_challenge.len() != 43 || URL_SAFE_NO_PAD.decode(code_challenge).is_err() {
            return Err(SmartError::InvalidRequest(
                "code_challenge must be BASE64URL(SHA-256(code_verifier)), 43 characters".into(),
            ));
        }
        let scope_text = self
            .get("scope")
            .ok_or_else(|| SmartError::InvalidScope("scope is required".into()))?;
        let scope =
            Scopes::parse(scope_text).map_err(|e| SmartError::InvalidScope(e.to_string()))?;
        if let Some(narrowed) = scope.resources().find(|r| r.query.is_some()) {
            return Err(SmartError::InvalidScope(format!(
                "{narrowed}: scopes narrowed by a query are not supported by this node"
            )));
        }
        if scope.resources().next().is_none() {
            return Err(SmartError::InvalidScope(
                "ask for at least one resource scope, such as patient/Observation.rs".into(),
            ));
        }
        Ok(AuthorizationRequest {
            client_id: client.client_id.clone(),
            redirect_uri,
            scope,
            state: state.to_owned(),
            aud: fhir_base.to_owned(),
            code_challenge: code_challenge.to_owned(),
        })
    }
}

/// Whether `verifier` is a well-formed RFC 7636 code verifier whose S256
/// challenge is `challenge`.
pub fn pkce_matches(verifier: &str, challenge: &str) -> Result<(), SmartError> {
    if !(43..=128).contains(&verifier.len())
        || !verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    {
        return Err(SmartError::InvalidGrant(
            "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636)".into(),
        ));
    }
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    if computed != challenge {
        return Err(SmartError::InvalidGrant(
            "code_verifier does not match the code_challenge of the authorization request".into(),
        ));
    }
    Ok(())
}

/// What an approved request's code stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    /// The key that signed the approval (resolved to its identity at every
    /// use, like any token's).
    pub did: String,
    pub scope: Scopes,
    /// The FHIR Patient id of the launch context, if any.
    pub patient: Option<String>,
    pub purpose: String,
    pub expires_at: i64,
}

/// A request waiting on the consent page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub request: AuthorizationRequest,
    pub expires_at: i64,
    /// Where the request came from ([`source_of`]), for the per-source cap.
    pub source: String,
}

/// The bucket a peer address counts in: the address for IPv4, its /64
/// for IPv6 (one subscriber commonly holds a whole /64).
pub fn source_of(peer: std::net::IpAddr) -> String {
    match peer {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// Requests waiting for the person's decision and unredeemed codes.
#[derive(Default)]
pub struct Authorizations {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    pending: HashMap<String, Pending>,
    codes: HashMap<[u8; 32], Approval>,
    /// Codes redeemed, until they would have expired: the digest of the
    /// token each gave, revoked if the code comes back.
    used: HashMap<[u8; 32], ([u8; 32], i64)>,
}

fn random() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn digest(code: &str) -> [u8; 32] {
    Sha256::digest(code.as_bytes()).into()
}

impl Authorizations {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Keeps `request`, made from `source` ([`source_of`]), for the
    /// consent page; gives its id.
    pub fn begin(
        &self,
        request: AuthorizationRequest,
        source: &str,
        now: i64,
    ) -> Result<String, SmartError> {
        let mut inner = self.lock();
        inner.prune(now);
        if inner
            .pending
            .values()
            .filter(|p| p.source == source)
            .count()
            >= MAX_PENDING_PER_SOURCE
        {
            return Err(SmartError::TooMany);
        }
        if inner.pending.len() >= MAX_PENDING {
            return Err(SmartError::Busy);
        }
        let id = random();
        inner.pending.insert(
            id.clone(),
            Pending {
                request,
                expires_at: now + REQUEST_LIFETIME_SECS,
                source: source.to_owned(),
            },
        );
        Ok(id)
    }

    /// The request `id`, if it is still waiting.
    pub fn pending(&self, id: &str, now: i64) -> Option<Pending> {
        let mut inner = self.lock();
        inner.prune(now);
        inner.pending.get(id).cloned()
    }

    /// Takes the request `id` for a decision: it can be decided once.
    pub fn take(&self, id: &str, now: i64) -> Option<Pending> {
        let mut inner = self.lock();
        inner.prune(now);
        inner.pending.remove(id)
    }

    /// Issues a code for an approval; it is shown only this once.
    pub fn issue_code(&self, approval: Approval, now: i64) -> Result<String, SmartError> {
        let mut inner = self.lock();
        inner.prune(now);
        if inner
            .codes
            .values()
            .filter(|c| c.did == approval.did)
            .count()
            >= MAX_CODES_PER_KEY
        {
            return Err(SmartError::TooMany);
        }
        if inner.codes.len() >= MAX_PENDING {
            return Err(SmartError::Busy);
        }
        let code = random();
        inner.codes.insert(digest(&code), approval);
        Ok(code)
    }

    /// Redeems `code` for the client and redirect URI it was issued to,
    /// with the PKCE verifier of its challenge. A mismatch leaves the code
    /// as it was (its rightful client may still redeem it); a code already
    /// redeemed is refused and the token it gave revoked in `tokens`.
    pub fn redeem(
        &self,
        code: &str,
        client_id: &str,
        redirect_uri: &str,
        verifier: &str,
        now: i64,
        tokens: &TokenStore,
    ) -> Result<Approval, SmartError> {
        let key = digest(code);
        let mut inner = self.lock();
        inner.prune(now);
        if let Some((token, _)) = inner.used.get(&key) {
            tokens.revoke_digest(token);
            return Err(SmartError::InvalidGrant(
                "this code was already used; the token it gave is revoked: start the authorization again".into(),
            ));
        }
        let approval = inner.codes.get(&key).ok_or_else(|| {
            SmartError::InvalidGrant(
                "the code is unknown or expired (codes live 60 seconds): start the authorization again".into(),
            )
        })?;
        if approval.client_id != client_id {
            return Err(SmartError::InvalidGrant(
                "the code was issued to another client".into(),
            ));
        }
        if approval.redirect_uri != redirect_uri {
            return Err(SmartError::InvalidGrant(
                "redirect_uri must be the one of the authorization request".into(),
            ));
        }
        pkce_matches(verifier, &approval.code_challenge)?;
        let approval = inner
            .codes
            .remove(&key)
            .ok_or_else(|| SmartError::InvalidGrant("the code is unknown or expired".into()))?;
        Ok(approval)
    }

    /// Remembers that `code` gave `token` (until the code would have
    /// expired), so that its reuse revokes it.
    pub fn redeemed(&self, code: &str, token: &str, until: i64) {
        self.lock()
            .used
            .insert(digest(code), (TokenStore::digest_of(token), until));
    }

    #[doc(hidden)]
    /// Counts (pending, codes, used), for tests.
    pub fn counts(&self) -> (usize, usize, usize) {
        let inner = self.lock();
        (inner.pending.len(), inner.codes.len(), inner.used.len())
    }
}

impl Inner {
    fn prune(&mut self, now: i64) {
        self.pending.retain(|_, p| p.expires_at > now);
        self.codes.retain(|_, c| c.expires_at > now);
        self.used.retain(|_, (_, until)| *until > now);
    }
}

impl std::fmt::Debug for Authorizations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (pending, codes, used) = self.counts();
        f.debug_struct("Authorizations")
            .field("pending", &pending)
            .field("codes", &codes)
            .field("used", &used)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::Session;

    const NOW: i64 = 1_767_225_600;
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    // RFC 7636 Appendix B.
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn clients() -> Clients {
        Clients::from_json(
            br#"{"clients":[{"client_id":"app","name":"An app","redirect_uris":["https://app.example/cb"],"purpose_of_use":"PATRQT"}]}"#,
        )
        .unwrap()
    }

    fn query(extra: &[(&str, &str)], skip: &[&str]) -> String {
        let mut all = vec![
            ("response_type", "code"),
            ("client_id", "app"),
            ("redirect_uri", "https://app.example/cb"),
            ("scope", "launch/patient patient/Observation.rs"),
            ("state", "s1"),
            ("aud", "http://node.test/fhir"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ];
        all.retain(|(n, _)| !skip.contains(n));
        all.extend_from_slice(extra);
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (n, v) in all {
            form.append_pair(n, v);
        }
        form.finish()
    }

    fn check(q: &str) -> Result<AuthorizationRequest, SmartError> {
        let clients = clients();
        let params = AuthorizeParams::from_query(q);
        let (client, redirect) = params.client(&clients)?;
        params.check(client, redirect, "http://node.test/fhir")
    }

    #[test]
    fn rfc7636_appendix_b_verifier_matches() {
        pkce_matches(VERIFIER, CHALLENGE).unwrap();
        let wrong = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl";
        assert_eq!(
            pkce_matches(wrong, CHALLENGE).unwrap_err().code(),
            "invalid_grant"
        );
        assert_eq!(
            pkce_matches("short", CHALLENGE).unwrap_err().code(),
            "invalid_grant"
        );
        assert_eq!(
            pkce_matches("", CHALLENGE).unwrap_err().code(),
            "invalid_grant"
        );
    }

    #[test]
    fn a_good_request_is_read() {
        let r = check(&query(&[], &[])).unwrap();
        assert_eq!(r.client_id, "app");
        assert_eq!(r.state, "s1");
        assert_eq!(r.scope.to_string(), "launch/patient patient/Observation.rs");
    }

    #[test]
    fn client_and_redirect_errors_come_first() {
        // Unknown client, even with other errors: not redirectable.
        let e = check(&query(
            &[("client_id", "evil")],
            &["client_id", "response_type"],
        ))
        .unwrap_err();
        assert!(matches!(e, SmartError::UnknownClient(_)), "{e}");
        assert_eq!(e.code(), "invalid_client");
        let e = check(&query(
            &[("redirect_uri", "https://app.example/cb/x")],
            &["redirect_uri"],
        ))
        .unwrap_err();
        assert!(matches!(e, SmartError::BadRedirectUri(_)), "{e}");
        let e = check(&query(
            &[("redirect_uri", "https://evil.example/cb")],
            &["redirect_uri"],
        ))
        .unwrap_err();
        assert!(matches!(e, SmartError::BadRedirectUri(_)));
        let e = check(&query(&[], &["redirect_uri"])).unwrap_err();
        assert_eq!(e.code(), "invalid_request");
        let e = check(&query(&[("client_id", "app")], &[])).unwrap_err();
        assert_eq!(
            e,
            SmartError::InvalidRequest("client_id is given more than once".into())
        );
    }

    #[test]
    fn other_errors_have_their_codes() {
        let cases: Vec<(String, &str)> = vec![
            (
                query(
                    &[("code_challenge_method", "plain")],
                    &["code_challenge_method"],
                ),
                "invalid_request",
            ),
            (query(&[], &["code_challenge_method"]), "invalid_request"),
            (query(&[], &["code_challenge"]), "invalid_request"),
            (
                query(&[("code_challenge", "abc")], &["code_challenge"]),
                "invalid_request",
            ),
            (
                query(&[("response_type", "token")], &["response_type"]),
                "unsupported_response_type",
            ),
            (query(&[], &["state"]), "invalid_request"),
            (
                query(&[("aud", "https://other.example/fhir")], &["aud"]),
                "invalid_request",
            ),
            (query(&[], &["aud"]), "invalid_request"),
            (
                query(&[("scope", "patient/Nope!.rs")], &["scope"]),
                "invalid_scope",
            ),
            (
                query(&[("scope", "launch/patient")], &["scope"]),
                "invalid_scope",
            ),
            (
                query(
                    &[("scope", "patient/Observation.rs?category=x")],
                    &["scope"],
                ),
                "invalid_scope",
            ),
            (query(&[("state", "again")], &[]), "invalid_request"),
        ];
        for (q, code) in cases {
            assert_eq!(check(&q).unwrap_err().code(), code, "{q}");
        }
    }

    #[test]
    fn registered_redirect_uris_are_https_or_loopback() {
        for good in [
            "https://a.example/cb",
            "http://127.0.0.1:8080/cb",
            "http://localhost/x",
            "http://[::1]:9/cb",
        ] {
            check_redirect_uri(good).unwrap();
        }
        for bad in [
            "http://a.example/cb",
            "https://a.example/cb#frag",
            "javascript:alert(1)",
            "http://127.0.0.1.evil.example/cb",
            "http://localhost@evil.example/cb",
            "https:///cb",
            "https://a.example/c b",
        ] {
            assert!(check_redirect_uri(bad).is_err(), "{bad}");
        }
        assert!(Clients::from_json(br#"{"clients":[{"client_id":"a b","name":"x","redirect_uris":["https://a.example"]}]}"#).is_err());
        assert!(Clients::from_json(
            br#"{"clients":[{"client_id":"a","name":"x","redirect_uris":[]}]}"#
        )
        .is_err());
        assert!(Clients::from_json(br#"{"clients":[{"client_id":"a","name":"x","redirect_uris":["https://a"],"secret":"x"}]}"#).is_err());
        let dup = br#"{"clients":[{"client_id":"a","name":"x","redirect_uris":["https://a"]},{"client_id":"a","name":"y","redirect_uris":["https://b"]}]}"#;
        assert!(Clients::from_json(dup).is_err());
        let one = Clients::from_json(
            br#"{"clients":[{"client_id":"a","name":"x","redirect_uris":["https://a"]}]}"#,
        )
        .unwrap();
        assert_eq!(one.get("a").unwrap().purpose_of_use, "TREAT");
    }

    fn approval(expires_at: i64) -> Approval {
        Approval {
            client_id: "app".into(),
            redirect_uri: "https://app.example/cb".into(),
            code_challenge: CHALLENGE.into(),
            did: "did:key:z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw".into(),
            scope: "patient/Observation.rs".parse().unwrap(),
            patient: None,
            purpose: "PATRQT".into(),
            expires_at,
        }
    }

    #[test]
    fn codes_are_bound_single_use_and_expire() {
        let store = Authorizations::default();
        let tokens = TokenStore::new();
        let code = store
            .issue_code(approval(NOW + CODE_LIFETIME_SECS), NOW)
            .unwrap();
        let redeem = |client: &str, uri: &str, verifier: &str, now: i64| {
            store.redeem(&code, client, uri, verifier, now, &tokens)
        };
        // Mismatches refuse and leave the code redeemable.
        assert_eq!(
            redeem("other", "https://app.example/cb", VERIFIER, NOW)
                .unwrap_err()
                .code(),
            "invalid_grant"
        );
        assert_eq!(
            redeem("app", "https://app.example/other", VERIFIER, NOW)
                .unwrap_err()
                .code(),
            "invalid_grant"
        );
        let wrong = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl";
        assert_eq!(
            redeem("app", "https://app.example/cb", wrong, NOW)
                .unwrap_err()
                .code(),
            "invalid_grant"
        );
        assert_eq!(store.counts().1, 1);
        let approved = redeem("app", "https://app.example/cb", VERIFIER, NOW).unwrap();
        assert_eq!(approved.purpose, "PATRQT");
        let token = tokens.issue(Session {
            did: approved.did.clone(),
            purpose: approved.purpose.clone(),
            break_glass: None,
            expires_at: NOW + 900,
            scope: approved.scope.clone(),
        });
        store.redeemed(&code, &token, NOW + 900);
        assert!(tokens.lookup(&token, NOW).is_some());
        // Reuse: refused, and the token it gave is revoked.
        let e = redeem("app", "https://app.example/cb", VERIFIER, NOW + 1).unwrap_err();
        assert!(e.to_string().contains("already used"), "{e}");
        assert!(tokens.lookup(&token, NOW + 1).is_none());

        // An expired code is unknown.
        let late = store
            .issue_code(approval(NOW + CODE_LIFETIME_SECS), NOW)
            .unwrap();
        let e = store
            .redeem(
                &late,
                "app",
                "https://app.example/cb",
                VERIFIER,
                NOW + CODE_LIFETIME_SECS,
                &tokens,
            )
            .unwrap_err();
        assert!(e.to_string().contains("unknown or expired"), "{e}");
    }

    #[test]
    fn requests_are_decided_once_and_expire() {
        let store = Authorizations::default();
        let request = check(&query(&[], &[])).unwrap();
        let id = store.begin(request.clone(), "192.0.2.1", NOW).unwrap();
        assert_eq!(store.pending(&id, NOW).unwrap().request, request);
        assert!(store.take(&id, NOW).is_some());
        assert!(store.take(&id, NOW).is_none());
        let id = store.begin(request, "192.0.2.1", NOW).unwrap();
        assert!(store.pending(&id, NOW + REQUEST_LIFETIME_SECS).is_none());
    }

    #[test]
    fn one_source_cannot_fill_the_waiting_room() {
        let store = Authorizations::default();
        let request = check(&query(&[], &[])).unwrap();
        for _ in 0..MAX_PENDING_PER_SOURCE {
            store.begin(request.clone(), "198.51.100.7", NOW).unwrap();
        }
        let e = store
            .begin(request.clone(), "198.51.100.7", NOW)
            .unwrap_err();
        assert_eq!(e, SmartError::TooMany);
        assert_eq!(
            (e.code(), e.http_status()),
            ("temporarily_unavailable", 429)
        );
        assert_eq!(store.counts().0, MAX_PENDING_PER_SOURCE);
        // Everyone else still gets in; the flood's requests expire.
        store.begin(request.clone(), "192.0.2.1", NOW).unwrap();
        store
            .begin(request, "198.51.100.7", NOW + REQUEST_LIFETIME_SECS)
            .unwrap();
    }

    #[test]
    fn an_ipv6_subscriber_counts_as_one_source() {
        let a: std::net::IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: std::net::IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: std::net::IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(source_of(a), source_of(b));
        assert_ne!(source_of(a), source_of(c));
        let mapped: std::net::IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(source_of(mapped), "192.0.2.1");
    }

    #[test]
    fn one_key_cannot_hoard_codes() {
        let store = Authorizations::default();
        for _ in 0..MAX_CODES_PER_KEY {
            store
                .issue_code(approval(NOW + CODE_LIFETIME_SECS), NOW)
                .unwrap();
        }
        let e = store
            .issue_code(approval(NOW + CODE_LIFETIME_SECS), NOW)
            .unwrap_err();
        assert_eq!(e, SmartError::TooMany);
        let mut other = approval(NOW + CODE_LIFETIME_SECS);
        other.did = "did:key:z6MkOther".into();
        store.issue_code(other, NOW).unwrap();
    }
}
