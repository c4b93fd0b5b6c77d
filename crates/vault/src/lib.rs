//! The vault: encrypted, content-addressed storage of health records (the
//! Data layer).
//!
//! - [`stream`]: each record is encrypted under its own random 256-bit
//!   [`DataKey`] with XChaCha20-Poly1305 in the STREAM construction, in
//!   64 KiB chunks, from any `Read` to any `Write`.
//! - [`blob`]: the ciphertext is stored under its SHA-256 ([`BlobId`]),
//!   durably, and re-verified when read.
//! - [`wrap`](mod@wrap): the data key is sealed to each holder's X25519 key with HPKE
//!   (RFC 9180), bound to the record and the holder.
//! - [`group`]: a key hierarchy for a holder of a group's records (the
//!   node, a patient's; the patient, their own): one HPKE seal or unwrap
//!   per group, then an AEAD key wrap per record.
//! - [`keyring`]: wrapped keys live apart from the ciphertext; erasing a
//!   record destroys them all (crypto-shredding).
//! - [`segment`]: the ciphertexts packed into append-only segment files,
//!   and [`slots`]: the wrapped keys in fixed slots of one file, erased in
//!   place (the layout the node uses; [`blob::FsBlobStore`] and
//!   [`keyring::FsKeyRing`] keep a file each).
//! - [`commitment`]: the salted commitment that goes on the ledger in place
//!   of anything about the record.
//! - [`vault`]: the above put together.
//!
//! This crate sits below the ledger and the node and knows nothing of them.

pub mod blob;
pub mod commitment;
mod digest;
mod durable;
pub use durable::{sync_filesystem, Durability};
pub mod error;
pub mod group;
pub mod keyring;
pub mod segment;
pub mod slots;
pub mod stream;
pub mod vault;
pub mod wrap;

pub use blob::{BlobId, BlobStore, BlobWriter, FsBlobStore};
pub use commitment::{Commitment, Salt};
pub use error::{Error, Result};
pub use keyring::{FsKeyRing, KeyRing};
pub use segment::SegmentStore;
pub use slots::SlotKeyRing;
pub use stream::{decrypt, encrypt, DataKey, RecordInfo, CHUNK_SIZE};
pub use vault::{Erasure, Vault};
pub use wrap::{unwrap, wrap, RecipientKey, RecipientPublicKey, WrappedKey};

/// Fills `buf` from the operating system's random number generator.
fn fill_random(buf: &mut [u8]) -> Result<()> {
    use rand_core::TryRngCore;
    rand_core::OsRng.try_fill_bytes(buf).map_err(|_| Error::Rng)
}
