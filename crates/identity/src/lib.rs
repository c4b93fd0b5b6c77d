//! Identities for Hygeia: Ed25519 keys, `did:key` identifiers and key files.
//!
//! This crate sits at the bottom of the workspace: it knows nothing of the
//! ledger, of health data or of HTTP.

pub mod did_key;
pub mod key_file;
pub mod keys;
pub mod recovery;

pub use did_key::{Did, DidError};
pub use key_file::KeyFileError;
pub use keys::{Keypair, PublicKey, Signature, SignatureError};
pub use recovery::{
    recover, split, GuardianShare, RecoveryError, RecoverySecret, ShareVerifier, SplitId,
};
