//! The token endpoint's request and response bodies, and the
//! `Authorization: Bearer` header of the requests that use a token.

use hygeia_identity::Did;
use serde::Serialize;

use super::assertion::verify_client_assertion;
use super::error::TokenError;
use super::jti::JtiCache;
use super::jws::{peek_alg, ALG_ES384, MAX_ASSERTION_LEN};
use crate::scope::{Scopes, MAX_SCOPE_LEN};
use crate::smart::Clients;
use crate::smart_backend::{verify_backend_assertion, BackendClient};

/// The only grant type: the client authenticates as itself.
pub const GRANT_TYPE: &str = "client_credentials";

/// The client assertion type of RFC 7523 §2.2.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Longest form body accepted, in bytes: an assertion at its cap, percent-
/// encoded where base64url needs none, plus the other parameters.
pub const MAX_FORM_LEN: usize = MAX_ASSERTION_LEN + 8 * 1024;

const MAX_PURPOSE_LEN: usize = 64;
const MAX_BREAK_GLASS_CHARS: usize = 1000;

/// A token request (`POST /auth/token`, `application/x-www-form-urlencoded`)
/// whose parameters are well-formed; the assertion is not verified yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// The client assertion JWT.
    pub client_assertion: String,
    /// `client_id`, if sent (RFC 7521 §4.2: optional; must then be `iss`).
    pub client_id: Option<String>,
    /// The requested scopes, if sent (SMART App Launch scopes, see
    /// [`crate::scope`]).
    pub scope: Option<Scopes>,
    /// The stated HL7 v3 PurposeOfUse code, if sent, unparsed: the node
    /// knows the codes it accepts.
    pub purpose_of_use: Option<String>,
    /// A break-glass justification, if sent.
    pub break_glass: Option<String>,
}

impl TokenRequest {
    /// Parses a form-encoded body.
    pub fn from_form(body: &[u8]) -> Result<Self, TokenError> {
        if body.len() > MAX_FORM_LEN {
            return Err(TokenError::request(format!(
                "the body is {} bytes; at most {MAX_FORM_LEN} are accepted",
                body.len()
            )));
        }
        Self::from_pairs(form_urlencoded::parse(body))
    }

    /// Parses already-decoded form parameters.
    ///
    /// RFC 6749 §3.2 and §3.1: a parameter may not be repeated, one sent
    /// without a value counts as absent, and unknown ones are ignored.
    pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Result<Self, TokenError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut fields = Fields::default();
        for (name, value) in pairs {
            let slot = match name.as_ref() {
                "grant_type" => &mut fields.grant_type,
                "client_assertion_type" => &mut fields.client_assertion_type,
                "client_assertion" => &mut fields.client_assertion,
                "client_id" => &mut fields.client_id,
                "scope" => &mut fields.scope,
                "purpose_of_use" => &mut fields.purpose_of_use,
                "break_glass" => &mut fields.break_glass,
                _ => continue,
            };
            if slot.is_some() {
                return Err(TokenError::request(format!(
                    "{} is given more than once",
                    name.as_ref()
                )));
            }
            let value = value.as_ref();
            if !value.is_empty() {
                *slot = Some(value.to_string());
            }
        }
        fields.check()
    }

    /// Verifies the client assertion and that `client_id`, if sent, names
    /// the same client: an `ES384` assertion from a backend client
    /// registered in `clients` ([`verify_backend_assertion`]), anything else
    /// as a did:key client's ([`verify_client_assertion`]).
    pub fn authenticate<'c>(
        &self,
        clients: &'c Clients,
        audiences: &[&str],
        now: i64,
        seen: &JtiCache,
    ) -> Result<ClientIdentity<'c>, TokenError> {
        if peek_alg(&self.client_assertion).as_deref() == Some(ALG_ES384) {
            let client = verify_backend_assertion(
                &self.client_assertion,
                |id| clients.backend(id),
                audiences,
                now,
                seen,
            )?;
            if let Some(client_id) = &self.client_id {
                if *client_id != client.client_id {
                    return Err(TokenError::issuer(format!(
                        "client_id, when sent, must equal the client assertion's iss {}",
                        client.client_id
                    )));
                }
            }
            return Ok(ClientIdentity::Registered(client));
        }
        self.authenticate_did_key(audiences, now, seen)
            .map(|did| ClientIdentity::DidKey(Box::new(did)))
    }

    /// Verifies a did:key client's assertion (see
    /// [`verify_client_assertion`]) and that `client_id`, if sent, names
    /// the same participant.
    pub fn authenticate_did_key(
        &self,
        audiences: &[&str],
        now: i64,
        seen: &JtiCache,
    ) -> Result<Did, TokenError> {
        let did = verify_client_assertion(&self.client_assertion, audiences, now, seen)?;
        // Checked after the assertion: the jti it spends is the client's
        // own, and anyone holding the assertion could have used it anyway.
        match &self.client_id {
            Some(client_id) if client_id != did.as_str() => Err(TokenError::issuer(format!(
                "client_id, when sent, must equal the client assertion's iss {did}"
            ))),
            _ => Ok(did),
        }
    }
}

/// Who a token request authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientIdentity<'c> {
    /// A participant, by its did:key.
    DidKey(Box<Did>),
    /// A registered backend client, acting as its bound did:key.
    Registered(&'c BackendClient),
}

impl ClientIdentity<'_> {
    /// The did:key the token acts as.
    pub fn acting_key(&self) -> &Did {
        match self {
            ClientIdentity::DidKey(did) => did,
            ClientIdentity::Registered(client) => &client.acts_as,
        }
    }
}

#[derive(Default)]
struct Fields {
    grant_type: Option<String>,
    client_assertion_type: Option<String>,
    client_assertion: Option<String>,
    client_id: Option<String>,
    scope: Option<String>,
    purpose_of_use: Option<String>,
    break_glass: Option<String>,
}

impl Fields {
    fn check(self) -> Result<TokenRequest, TokenError> {
        match self.grant_type.as_deref() {
            None => {
                return Err(TokenError::request(format!(
                    "grant_type is required: \"{GRANT_TYPE}\""
                )))
            }
            Some(GRANT_TYPE) => {}
            Some(other) => return Err(TokenError::UnsupportedGrantType(other.to_string())),
        }
        match self.client_assertion_type.as_deref() {
            None => {
                return Err(TokenError::request(format!(
                    "client_assertion_type is required: \"{ASSERTION_TYPE}\""
                )))
            }
            Some(ASSERTION_TYPE) => {}
            // RFC 6749 §5.2: an unsupported authentication method is
            // invalid_client.
            Some(other) => return Err(TokenError::UnsupportedAssertionType(other.to_string())),
        }
        let client_assertion = self.client_assertion.ok_or_else(|| {
            TokenError::request("client_assertion is required: a JWT signed with your did:key")
        })?;
        let scope = match &self.scope {
            Some(text) => Some(check_scope(text)?),
            None => None,
        };
        if let Some(purpose) = &self.purpose_of_use {
            let ok = purpose.len() <= MAX_PURPOSE_LEN
                && purpose
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
            if !ok {
                return Err(TokenError::request(format!(
                    "purpose_of_use must be an HL7 v3 PurposeOfUse code such as TREAT \
                     (at most {MAX_PURPOSE_LEN} letters, digits, '_', '-', '.')"
                )));
            }
        }
        if let Some(reason) = &self.break_glass {
            let ok = reason.chars().count() <= MAX_BREAK_GLASS_CHARS
                && !reason.trim().is_empty()
                && !reason.chars().any(char::is_control);
            if !ok {
                return Err(TokenError::request(format!(
                    "break_glass must be a justification of 1 to {MAX_BREAK_GLASS_CHARS} \
                     characters, without control characters"
                )));
            }
        }
        Ok(TokenRequest {
            client_assertion,
            client_id: self.client_id,
            scope,
            purpose_of_use: self.purpose_of_use,
            break_glass: self.break_glass,
        })
    }
}

/// RFC 6749 §3.3: scope tokens of `%x21 / %x23-5B / %x5D-7E`, separated by
/// single spaces; each one a scope [`Scopes::parse`] knows.
fn check_scope(scope: &str) -> Result<Scopes, TokenError> {
    let token_ok = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
    };
    if scope.len() > MAX_SCOPE_LEN || !scope.split(' ').all(token_ok) {
        return Err(TokenError::InvalidScope(format!(
            "scope must be at most {MAX_SCOPE_LEN} characters of scope tokens (visible ASCII \
             except '\"' and '\\') separated by single spaces"
        )));
    }
    Scopes::parse(scope).map_err(|e| TokenError::InvalidScope(e.to_string()))
}

/// The successful token response (RFC 6749 §5.1), to be sent as JSON with
/// `Cache-Control: no-store`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the token expires.
    pub expires_in: i64,
    pub scope: String,
}

impl TokenResponse {
    pub fn bearer(access_token: String, expires_in: i64, scope: String) -> Self {
        TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in,
            scope,
        }
    }
}

/// The token in an `Authorization` header value, if it is
/// `Bearer <token>` (RFC 6750 §2.1: scheme case-insensitive, token in the
/// `b64token` characters).
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("Bearer") {
        return None;
    }
    let token = token.trim_start_matches(' ');
    let body = token.trim_end_matches('=');
    let ok = !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        });
    ok.then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(extra: &str) -> String {
        format!(
            "grant_type=client_credentials&client_assertion_type={}&client_assertion=a.b.c{extra}",
            ASSERTION_TYPE.replace(':', "%3A")
        )
    }

    fn code(body: &str) -> Result<TokenRequest, &'static str> {
        TokenRequest::from_form(body.as_bytes()).map_err(|e| e.code())
    }

    #[test]
    fn a_complete_request_parses() {
        let request = code(&form(
            "&scope=system%2F*.rs+system%2FPatient.read&purpose_of_use=ETREAT\
             &break_glass=unconscious+patient%2C+ED&unknown=1&client_id=",
        ))
        .unwrap();
        assert_eq!(request.client_assertion, "a.b.c");
        assert_eq!(
            request.scope.map(|s| s.to_string()).as_deref(),
            Some("system/*.rs system/Patient.rs")
        );
        assert_eq!(request.purpose_of_use.as_deref(), Some("ETREAT"));
        assert_eq!(
            request.break_glass.as_deref(),
            Some("unconscious patient, ED")
        );
        assert_eq!(request.client_id, None, "an empty value counts as absent");
    }

    #[test]
    fn refusals() {
        assert_eq!(
            code("grant_type=password&client_assertion=x"),
            Err("unsupported_grant_type")
        );
        assert_eq!(code("client_assertion=x"), Err("invalid_request"));
        assert_eq!(
            code("grant_type=client_credentials&client_assertion=x"),
            Err("invalid_request")
        );
        assert_eq!(
            code("grant_type=client_credentials&client_assertion_type=saml&client_assertion=x"),
            Err("invalid_client")
        );
        assert_eq!(
            code(&form("").replace("&client_assertion=a.b.c", "")),
            Err("invalid_request")
        );
        assert_eq!(code(&form("&scope=a&scope=b")), Err("invalid_request"));
        assert_eq!(
            code(&form("&client_assertion=d.e.f")),
            Err("invalid_request")
        );
        assert_eq!(code(&form("&scope=a++b")), Err("invalid_scope"));
        assert_eq!(code(&form("&scope=a%22b")), Err("invalid_scope"));
        assert_eq!(code(&form("&scope=admin")), Err("invalid_scope"));
        assert_eq!(
            code(&form("&scope=user%2FPatient.sr")),
            Err("invalid_scope")
        );
        assert_eq!(
            code(&form("&purpose_of_use=TRE+AT")),
            Err("invalid_request")
        );
        assert_eq!(code(&form("&break_glass=+++")), Err("invalid_request"));
        assert_eq!(code(&form("&break_glass=a%0Ab")), Err("invalid_request"));
        let long = "x".repeat(MAX_FORM_LEN);
        assert_eq!(code(&form(&format!("&pad={long}"))), Err("invalid_request"));
    }

    #[test]
    fn bearer_header() {
        assert_eq!(bearer_token("Bearer abc-_.~+/=="), Some("abc-_.~+/=="));
        assert_eq!(bearer_token("bearer  abc"), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer a b"), None);
        assert_eq!(bearer_token("Bearer a=b"), None);
    }

    #[test]
    fn response_json() {
        let response = TokenResponse::bearer("t".into(), 900, "system/*.rs".into());
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            serde_json::json!({
                "access_token": "t",
                "token_type": "Bearer",
                "expires_in": 900,
                "scope": "system/*.rs",
            })
        );
    }
}
