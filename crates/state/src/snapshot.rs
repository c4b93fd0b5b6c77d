//! Snapshots of the committed state: what a restart loads instead of
//! replaying the whole log, and what `hygeia verify` checks against a
//! replay.
//!
//! A snapshot file is
//!
//! ```text
//! hygeia-state-snapshot/1\n
//! <header: one line of JSON>\n
//! <Ed25519 signature by the node key, base64url, over the magic line and the header line>\n
//! <the state: JSON, every map in key order>
//! ```
//!
//! The header names the network, the node, the tree size the state covers,
//! the root hash of the log at that size and the SHA-256 digest of the
//! state bytes. A snapshot is a cache and is never trusted by itself: a
//! loader checks the signature (the node's own key), the digest, and that
//! the log it is about to extend has that root at that size (see
//! `docs/threat-model.md`, "State snapshots").
//!
//! The encoding is canonical: struct fields in declaration order and every
//! hash map or set written as a sequence sorted by key ([`sorted_map`],
//! [`sorted_set`]), so one state has one encoding and one digest, whatever
//! order its maps were filled in. Every field of the state is serialized by
//! derive: a field of a type that cannot be serialized does not compile,
//! so no field is ever silently left out.

use std::fmt::Write as _;

use base64::Engine as _;
use hygeia_identity::{Did, Keypair, Signature};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::writer::Committed;

/// The first line of every snapshot file. A change of the state's encoding
/// or of a rule's meaning bumps it: older snapshots are then ignored (and
/// the log replayed in full), never misread.
pub const MAGIC: &str = "hygeia-state-snapshot/1";

/// Why a snapshot was not used. Every one of them means: replay the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotError {
    /// Not a snapshot file, or one of another format version.
    Format(String),
    /// The header's signature is not the node key's.
    Signature,
    /// The state bytes do not have the digest the header names.
    Digest { expected: String, actual: String },
    /// The header names another network or node.
    Foreign(String),
    /// The log does not have the size the snapshot claims.
    Size { size: u64, log_size: u64 },
    /// The log's root at that size is not the one the snapshot names.
    Root { size: u64 },
    /// The state bytes do not decode.
    Decode(String),
}

impl SnapshotError {
    /// A stable code for logs and tests.
    pub fn code(&self) -> &'static str {
        match self {
            SnapshotError::Format(_) => "snapshot.format",
            SnapshotError::Signature => "snapshot.signature",
            SnapshotError::Digest { .. } => "snapshot.digest",
            SnapshotError::Foreign(_) => "snapshot.foreign",
            SnapshotError::Size { .. } => "snapshot.size",
            SnapshotError::Root { .. } => "snapshot.root",
            SnapshotError::Decode(_) => "snapshot.decode",
        }
    }
}

impl std::fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnapshotError::Format(why) => write!(f, "not a state snapshot: {why}"),
            SnapshotError::Signature => write!(f, "its signature is not the node key's"),
            SnapshotError::Digest { expected, actual } => write!(
                f,
                "its state has digest {actual}, but its header says {expected}"
            ),
            SnapshotError::Foreign(why) => write!(f, "it belongs to another log: {why}"),
            SnapshotError::Size { size, log_size } => write!(
                f,
                "it covers {size} entries, but the log has only {log_size}"
            ),
            SnapshotError::Root { size } => write!(
                f,
                "the log's root at size {size} is not the one it names (another log, or a rewritten one)"
            ),
            SnapshotError::Decode(why) => write!(f, "its state does not decode: {why}"),
        }
    }
}

impl std::error::Error for SnapshotError {}

/// What a snapshot says about itself (its second line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// The log's origin (network name).
    pub network: String,
    /// The node whose key signed it.
    pub node: String,
    /// Entries of the log the state covers: entries `0..size`.
    pub size: u64,
    /// Hex root hash of the log at `size`.
    pub root: String,
    /// `sha256:<hex>` of the state bytes.
    pub state_digest: String,
}

/// The canonical encoding of a committed state.
pub fn encode(committed: &Committed) -> Vec<u8> {
    // Every map key is a string or is written as a sorted sequence, so
    // serialization cannot fail.
    serde_json::to_vec(committed).expect("the state serializes")
}

/// Decodes a state written by [`encode`].
pub fn decode(bytes: &[u8]) -> Result<Committed, SnapshotError> {
    serde_json::from_slice(bytes).map_err(|e| SnapshotError::Decode(e.to_string()))
}

/// `sha256:<hex>` of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for byte in hash {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// The digest of a state's canonical encoding: two states are equal for
/// every purpose of the rules exactly when their digests are.
pub fn state_digest(committed: &Committed) -> String {
    digest(&encode(committed))
}

fn signed_message(header_line: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(MAGIC.len() + 1 + header_line.len());
    message.extend_from_slice(MAGIC.as_bytes());
    message.push(b'\n');
    message.extend_from_slice(header_line);
    message
}

/// A snapshot file's bytes: `header` (whose `state_digest` is set here)
/// signed by `key`, followed by `state` (from [`encode`]).
pub fn seal(mut header: Header, state: &[u8], key: &Keypair) -> Vec<u8> {
    header.state_digest = digest(state);
    let header_line = serde_json::to_vec(&header).expect("the header serializes");
    let signature = key.sign(&signed_message(&header_line));
    let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature.to_bytes());
    let mut out = Vec::with_capacity(header_line.len() + state.len() + 200);
    out.extend_from_slice(MAGIC.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(&header_line);
    out.push(b'\n');
    out.extend_from_slice(signature.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(state);
    out
}

/// A snapshot file split into its parts; nothing in it is checked yet.
#[derive(Debug)]
pub struct Unverified<'a> {
    pub header: Header,
    header_line: &'a [u8],
    signature: &'a [u8],
    state: &'a [u8],
}

fn next_line<'a>(bytes: &mut &'a [u8], what: &str) -> Result<&'a [u8], SnapshotError> {
    let end = bytes
        .iter()
        .position(|b| *b == b'\n')
        .ok_or_else(|| SnapshotError::Format(format!("no {what} line")))?;
    let line = &bytes[..end];
    *bytes = &bytes[end + 1..];
    Ok(line)
}

impl<'a> Unverified<'a> {
    pub fn parse(mut bytes: &'a [u8]) -> Result<Self, SnapshotError> {
        let magic = next_line(&mut bytes, "format")?;
        if magic != MAGIC.as_bytes() {
            return Err(SnapshotError::Format(format!(
                "its first line is not {MAGIC:?}"
            )));
        }
        let header_line = next_line(&mut bytes, "header")?;
        let header: Header = serde_json::from_slice(header_line)
            .map_err(|e| SnapshotError::Format(format!("its header: {e}")))?;
        let signature = next_line(&mut bytes, "signature")?;
        Ok(Unverified {
            header,
            header_line,
            signature,
            state: bytes,
        })
    }

    /// Checks the header names `network` and `node`, and carries `node`'s
    /// signature.
    pub fn check_signature(&self, network: &str, node: &str) -> Result<(), SnapshotError> {
        if self.header.network != network {
            return Err(SnapshotError::Foreign(format!(
                "it is of network {:?}, not {network:?}",
                self.header.network
            )));
        }
        if self.header.node != node {
            return Err(SnapshotError::Foreign(format!(
                "it was written by {}, not by {node}",
                self.header.node
            )));
        }
        let did = Did::parse_cached(node).map_err(|_| SnapshotError::Signature)?;
        let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(self.signature)
            .ok()
            .and_then(|bytes| Signature::from_slice(&bytes).ok())
            .ok_or(SnapshotError::Signature)?;
        did.public_key()
            .verify(&signed_message(self.header_line), &signature)
            .map_err(|_| SnapshotError::Signature)
    }

    /// Checks the log has the snapshot's size and, at that size, its root.
    /// `root_at(size)` gives the log's root at `size` (hex), or `None` when
    /// the log is shorter.
    pub fn check_log(
        &self,
        log_size: u64,
        root_at: impl FnOnce(u64) -> Option<String>,
    ) -> Result<(), SnapshotError> {
        let size = self.header.size;
        if size > log_size {
            return Err(SnapshotError::Size { size, log_size });
        }
        match root_at(size) {
            Some(root) if root == self.header.root => Ok(()),
            Some(_) => Err(SnapshotError::Root { size }),
            None => Err(SnapshotError::Size { size, log_size }),
        }
    }

    /// Checks the state's digest, then decodes it.
    pub fn decode(&self) -> Result<Committed, SnapshotError> {
        let actual = digest(self.state);
        if actual != self.header.state_digest {
            return Err(SnapshotError::Digest {
                expected: self.header.state_digest.clone(),
                actual,
            });
        }
        decode(self.state)
    }
}

/// `#[serde(with = "…")]` for a hash map: written as a sequence of
/// `(key, value)` sorted by key, so its encoding does not depend on the
/// map's iteration order. Works for any map that iterates as `(&K, &V)`
/// and collects from `(K, V)`.
pub mod sorted_map {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<M, K, V, S>(map: &M, serializer: S) -> Result<S::Ok, S::Error>
    where
        for<'a> &'a M: IntoIterator<Item = (&'a K, &'a V)>,
        K: Ord + Serialize,
        V: Serialize,
        S: Serializer,
    {
        let mut entries: Vec<(&K, &V)> = map.into_iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        serializer.collect_seq(entries)
    }

    pub fn deserialize<'de, M, K, V, D>(deserializer: D) -> Result<M, D::Error>
    where
        M: FromIterator<(K, V)>,
        K: Deserialize<'de>,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        let entries: Vec<(K, V)> = Vec::deserialize(deserializer)?;
        Ok(entries.into_iter().collect())
    }
}

/// `#[serde(with = "…")]` for a hash set: written as a sorted sequence.
pub mod sorted_set {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<C, T, S>(set: &C, serializer: S) -> Result<S::Ok, S::Error>
    where
        for<'a> &'a C: IntoIterator<Item = &'a T>,
        T: Ord + Serialize,
        S: Serializer,
    {
        let mut items: Vec<&T> = set.into_iter().collect();
        items.sort_unstable();
        serializer.collect_seq(items)
    }

    /// The item type is the collection's own (`C::Item`), so that a set
    /// that collects from anything convertible (`imbl`) still has one.
    pub fn deserialize<'de, C, D>(deserializer: D) -> Result<C, D::Error>
    where
        C: IntoIterator + FromIterator<<C as IntoIterator>::Item>,
        <C as IntoIterator>::Item: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        let items: Vec<<C as IntoIterator>::Item> = Vec::deserialize(deserializer)?;
        Ok(items.into_iter().collect())
    }
}

/// `#[serde(with = "…")]` for an `Arc<str>`, written as a string.
pub mod arc_str {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(text: &Arc<str>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Arc<str>, D::Error> {
        Ok(Arc::from(String::deserialize(deserializer)?))
    }
}
