//! Authenticated HTTP requests for Hygeia.
//!
//! A request that touches patient data is signed by its sender's `did:key`
//! with RFC 9421 HTTP Message Signatures (Ed25519), covering the method,
//! path, query and, for a request with a body, its RFC 9530
//! `Content-Digest`. The contract clients implement is `docs/auth.md`.
//!
//! - Client: [`sign_request`] gives the headers to add.
//! - Server: one shared [`Verifier`]; [`Verifier::verify`] checks a
//!   request's head and gives the signer's DID and the SHA-256 its body
//!   must have, which [`Authenticated::check_body`] checks once the body
//!   has been read (hashed on the way with [`BodyDigest`]).
//!
//! Every refusal is an [`AuthError`] with a stable code and HTTP status.
//!
//! Standard FHIR clients, which cannot sign requests, use bearer tokens
//! instead ([`token`]): a did:key-signed client assertion (RFC 7523) is
//! exchanged for a short-lived access token, whose SMART scopes
//! ([`scope`]) bound what it may do.
//!
//! Browser and patient apps use SMART App Launch ([`smart`]): the
//! authorization code grant with PKCE, for clients the operator registered.
//!
//! `httpsig` parses the headers and builds the signature base;
//! `hygeia-identity`'s strict Ed25519 checks the signature.

#![forbid(unsafe_code)]

mod base;
mod digest;
mod error;
mod nonce;
pub mod scope;
mod sign;
pub mod smart;
pub mod smart_backend;
pub mod token;
mod verify;

pub use base::RequestHead;
pub use digest::{content_digest_header, BodyDigest};
pub use error::AuthError;
pub use sign::{random_nonce, sign_request, SignedHeaders, SIGNATURE_LABEL};
pub use token::{
    client_assertion, verify_client_assertion, JtiCache, Session, TokenError, TokenStore,
};
pub use verify::{Authenticated, Verifier, DEFAULT_WINDOW, MAX_CLOCK_SKEW};
