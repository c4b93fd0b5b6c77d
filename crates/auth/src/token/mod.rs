//! Bearer tokens for FHIR clients, which cannot sign their requests.
//!
//! The client authenticates to the token endpoint (`POST /auth/token`)
//! SMART Backend Services style (RFC 7523 client assertions): a short-lived
//! JWT signed with its did:key's Ed25519 key. The node checks it with
//! [`verify_client_assertion`] (or [`TokenRequest::authenticate`]), records
//! a [`Session`] in its [`TokenStore`] and answers a [`TokenResponse`].
//! Later requests carry `Authorization: Bearer <token>` ([`bearer_token`]),
//! and the node finds the session with [`TokenStore::lookup`].
//!
//! The contract clients implement is in `docs/auth.md`.

pub(crate) mod assertion;
mod error;
mod jti;
pub(crate) mod jws;
mod request;
mod store;

pub use assertion::{
    client_assertion, verify_client_assertion, ASSERTION_CLOCK_SKEW_SECS,
    MAX_ASSERTION_LIFETIME_SECS, MAX_JTI_CHARS,
};
pub use error::TokenError;
pub use jti::{JtiCache, Priority, DEFAULT_JTI_CAPACITY, DEFAULT_JTI_PER_ISSUER};
pub use jws::MAX_ASSERTION_LEN;
pub use request::{
    bearer_token, ClientIdentity, TokenRequest, TokenResponse, ASSERTION_TYPE, GRANT_TYPE,
    MAX_FORM_LEN,
};
pub use store::{Session, TokenStore, ACCESS_TOKEN_LIFETIME_SECS};
