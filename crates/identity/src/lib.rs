//! Identities for Hygeia: Ed25519 keys, `did:key` and `did:web` identifiers,
//! DID documents and key files.
//!
//! This crate sits at the bottom of the workspace: it knows nothing of the
//! ledger, of health data or of HTTP.

pub mod did_document;
pub mod did_key;
pub mod did_key_document;
pub mod did_web;
pub mod key_file;
pub mod keys;
mod multicodec;
pub mod recovery;

pub use did_document::{DidDocument, DidDocumentError, Relationship};
pub use did_key::{Did, DidError};
pub use did_key_document::{resolve_did_key, resolve_did_key_as, DidKey, KeyFormat};
pub use did_web::{DidWeb, DidWebError};
pub use key_file::KeyFileError;
pub use keys::{Keypair, PublicKey, Signature, SignatureError};
pub use recovery::{
    recover, split, GuardianShare, RecoveryError, RecoverySecret, ShareVerifier, SplitId,
};
