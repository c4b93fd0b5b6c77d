//! Hygeia's ledger: signed, canonical JSON transactions appended in durable
//! batches to an RFC 9162 Merkle tree that is stored and served as C2SP
//! `tlog-tiles`, with C2SP signed-note checkpoints.
//!
//! The crate knows nothing of health data or of HTTP. Transaction types are
//! registered by higher layers through [`TxModule`]; the generic `attest`
//! type lives here so the machinery can be exercised end to end.

pub mod attest;
pub mod checkpoint;
pub mod cosignature;
pub mod error;
pub mod index;
pub mod merkle;
pub mod module;
pub mod order;
pub mod proof;
pub mod sequencer;
pub mod state;
pub mod store;
pub mod tiles;
pub mod tx;
pub mod verify;

pub use checkpoint::{CheckpointSigner, SignedCheckpoint};
pub use error::{ErrorCode, TxError};
pub use merkle::Hash;
pub use module::{ModuleRegistry, ParsedBody, TxModule};
pub use order::Orderer;
pub use sequencer::{BatchConfig, Receipt, Sequencer, SubmitError};
pub use state::{NoState, StateMachine};
pub use store::{LogStore, StoreError};
pub use tx::{SignedTx, TxBuilder, MAX_TX_BYTES, SIGNING_DOMAIN, TX_VERSION};
