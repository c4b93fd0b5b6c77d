//! The one error type of the vault.

use std::io;

use crate::blob::BlobId;

/// Everything that can go wrong in the vault.
///
/// Authentication failures are deliberately coarse: a wrong key, a flipped
/// bit, a truncated, extended or reordered record all give
/// [`Error::Authentication`], so an attacker learns nothing from which check
/// failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing failed.
    #[error("i/o: {0}")]
    Io(#[source] io::Error),

    /// The operating system's random number generator failed.
    #[error("the system random number generator failed")]
    Rng,

    /// Malformed input: not a vault record, a wrapped key or an identifier.
    #[error("malformed {0}")]
    Format(&'static str),

    /// A record or wrapped key written by a format version this code does not know.
    #[error("unsupported format version {0}")]
    UnsupportedVersion(u8),

    /// A media type that is empty, too long or not printable ASCII.
    #[error("invalid media type")]
    MediaType,

    /// Decryption failed: wrong key, or the ciphertext was modified,
    /// truncated, extended or reordered.
    #[error("authentication failed: wrong key, or the data was tampered with or truncated")]
    Authentication,

    /// A stored blob no longer hashes to its address.
    #[error("blob {id} is corrupt: its content hashes to {actual}")]
    Corrupt { id: BlobId, actual: BlobId },

    /// No blob is stored under this address.
    #[error("no blob {0}")]
    NotFound(BlobId),

    /// The key ring holds no wrapped key for this record and holder: it was
    /// never granted, has been revoked, or the record was erased.
    #[error("no key for this record and holder")]
    NoKey,

    /// A record must be readable by at least one holder.
    #[error("a record needs at least one holder")]
    NoHolders,

    /// HPKE key wrapping or unwrapping failed (bad public key, wrong
    /// recipient, wrong record, or a modified wrapped key).
    #[error("key wrapping failed")]
    Wrap,
}

/// A convenient alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<io::Error> for Error {
    /// Unpacks vault errors that travelled through an `io::Error` (a blob
    /// reader reports corruption that way, since `Read` can only return
    /// `io::Error`).
    fn from(err: io::Error) -> Self {
        match err.downcast::<Error>() {
            Ok(vault) => vault,
            Err(err) => Error::Io(err),
        }
    }
}

impl From<Error> for io::Error {
    fn from(err: Error) -> Self {
        match err {
            Error::Io(err) => err,
            Error::NotFound(_) => io::Error::new(io::ErrorKind::NotFound, err),
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}
