//! Authenticating requests that touch patient data (docs/auth.md), and
//! resolving the key that signed them to the identity it acts for
//! (docs/recovery.md): after a recovery a new key acts for the patient's
//! identity, and the keys it replaced act for no one.

use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use hygeia_auth::{AuthError, Authenticated, RequestHead};
use hygeia_identity::Did;

use super::error::ApiError;
use crate::node::{unix_now, Node};
use crate::state::LedgerState;

/// A request whose signature verified, and who it acts for.
#[derive(Debug)]
pub struct Caller {
    /// The identity the request acts for: the signing key's own did:key,
    /// or, after a rotation, the identity the key was rotated into. Access
    /// decisions, listings and ledger events name this.
    pub did: Did,
    /// The key that signed the request. Other signatures the caller makes
    /// in the same request (a record's provenance) verify with this key.
    pub key: Did,
    signed: Authenticated,
}

impl Caller {
    /// Checks the body the handler read against the signed `Content-Digest`.
    pub fn check_body(&self, computed: &[u8; 32]) -> Result<(), AuthError> {
        self.signed.check_body(computed)
    }
}

/// Verifies the request's RFC 9421 signature (on success its nonce is
/// spent), then resolves the signing key with [`acting_identity`].
pub fn authenticate(
    node: &Node,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Caller, ApiError> {
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
    let signed = node.auth.verify(&head, unix_now())?;
    let did = acting_identity(&node.state.read().state, &signed.did)?;
    Ok(Caller {
        did,
        key: signed.did.clone(),
        signed,
    })
}

/// The identity `key` acts for in the committed state: its own did:key
/// unless an `identity.rotate` moved it; a retired key is refused (403
/// `identity.key_retired`). Every authenticated entry point (signed
/// requests, bearer tokens at issue and at use) goes through this.
pub fn acting_identity(state: &LedgerState, key: &Did) -> Result<Did, ApiError> {
    let identity = state.identities.identity_of(key.as_str())?;
    if identity == key.as_str() {
        return Ok(key.clone());
    }
    Did::parse_cached(&identity)
        .map_err(|e| ApiError::internal(format!("identity {identity} is not a did:key: {e}")))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::txs::{IdentityRecovery, IdentityRotate};
    use hygeia_identity::Keypair;

    fn did(key: &Keypair) -> Did {
        key.did()
    }

    /// A state in which `patient` registered `recovery` and, if `rotate_to`
    /// is given, the recovery key moved the identity to it.
    fn state(patient: &Keypair, recovery: &Keypair, rotate_to: Option<&Keypair>) -> LedgerState {
        let mut state = LedgerState::new(did(&Keypair::generate()).to_string(), None);
        state.identities.register_recovery(
            did(patient).as_str(),
            1,
            &IdentityRecovery {
                recovery_key: did(recovery).to_string(),
                threshold: 2,
                guardians: vec!["did:key:g1".into(), "did:key:g2".into()],
                split: "00".repeat(32),
            },
        );
        if let Some(new_key) = rotate_to {
            state
                .identities
                .rotate(
                    did(recovery).as_str(),
                    2,
                    &IdentityRotate::accepted_by(did(patient).as_str(), new_key),
                )
                .unwrap();
        }
        state
    }

    #[test]
    fn a_key_never_rotated_acts_as_itself() {
        let (patient, recovery) = (Keypair::generate(), Keypair::generate());
        let state = state(&patient, &recovery, None);
        assert_eq!(
            acting_identity(&state, &did(&patient)).unwrap(),
            did(&patient)
        );
        let stranger = Keypair::generate();
        assert_eq!(
            acting_identity(&state, &did(&stranger)).unwrap(),
            did(&stranger)
        );
    }

    #[test]
    fn a_rotated_in_key_acts_as_the_identity() {
        let (patient, recovery, new_key) = (
            Keypair::generate(),
            Keypair::generate(),
            Keypair::generate(),
        );
        let state = state(&patient, &recovery, Some(&new_key));
        assert_eq!(
            acting_identity(&state, &did(&new_key)).unwrap(),
            did(&patient)
        );
    }

    #[test]
    fn a_retired_key_is_refused_with_403() {
        let (patient, recovery, new_key) = (
            Keypair::generate(),
            Keypair::generate(),
            Keypair::generate(),
        );
        let state = state(&patient, &recovery, Some(&new_key));
        let err = acting_identity(&state, &did(&patient)).unwrap_err();
        assert_eq!(err.status, StatusCode::FORBIDDEN);
        assert_eq!(err.code, "identity.key_retired");
    }
}
