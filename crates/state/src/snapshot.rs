//! Snapshots of the committed state: what a restart loads instead of
//! replaying the whole log, and what `hygeia verify` checks against a
//! replay.
//!
//! A snapshot file is
//!
//! ```text
//! hygeia-state-snapshot/2\n
//! <header: one line of JSON>\n
//! <Ed25519 signature by the node key, base64url, over the magic line and the header line>\n
//! <the state: JSON, every map in key order, as one zstd frame>
//! ```
//!
//! The header names the network, the node, the tree size the state covers,
//! the root hash of the log at that size, the SHA-256 digest of the state
//! bytes (the JSON, uncompressed: the value `hygeia verify` compares with a
//! replay), the SHA-256 digest of the bytes as stored (the zstd frame) and
//! the length of the JSON. A snapshot is a cache and is never trusted by
//! itself: a loader checks the signature (the node's own key), the stored
//! digest before it decompresses anything, decompresses at most the signed
//! length, checks the state digest, and that the log it is about to extend
//! has that root at that size (see `docs/threat-model.md`, "State
//! snapshots").
//!
//! Files of the first format (`hygeia-state-snapshot/1`: the same header
//! without the stored digest and length, the JSON stored as it is) are
//! still read and checked the same way; new snapshots are always written
//! in the second.
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
pub const MAGIC: &str = "hygeia-state-snapshot/2";

/// The first line of the format before the state was stored compressed.
/// Such files are still read (and checked exactly as before), never
/// written.
pub const MAGIC_V1: &str = "hygeia-state-snapshot/1";

/// zstd level of the stored state: the JSON repeats every DID and field
/// name, so even a fast level keeps about a sixth of it.
const ZSTD_LEVEL: i32 = 3;

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
    /// `sha256:<hex>` of the state bytes (the canonical JSON, uncompressed).
    pub state_digest: String,
    /// `sha256:<hex>` of the state as stored in the file (its zstd frame);
    /// empty in the first format, which stores the JSON itself.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stored_digest: String,
    /// Length of the state bytes once decompressed: decompression stops
    /// there. Zero in the first format.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub state_len: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
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

fn signed_message(magic: &str, header_line: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(magic.len() + 1 + header_line.len());
    message.extend_from_slice(magic.as_bytes());
    message.push(b'\n');
    message.extend_from_slice(header_line);
    message
}

fn assemble(magic: &str, header: &Header, stored: &[u8], key: &Keypair) -> Vec<u8> {
    let header_line = serde_json::to_vec(header).expect("the header serializes");
    let signature = key.sign(&signed_message(magic, &header_line));
    let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature.to_bytes());
    let mut out = Vec::with_capacity(header_line.len() + stored.len() + 200);
    out.extend_from_slice(magic.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(&header_line);
    out.push(b'\n');
    out.extend_from_slice(signature.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(stored);
    out
}

/// A snapshot file's bytes: `header` (whose digests and length are set
/// here) signed by `key`, followed by `state` (from [`encode`]),
/// compressed.
pub fn seal(mut header: Header, state: &[u8], key: &Keypair) -> Vec<u8> {
    let stored = zstd::bulk::compress(state, ZSTD_LEVEL).expect("zstd compresses in memory");
    header.state_digest = digest(state);
    header.stored_digest = digest(&stored);
    header.state_len = state.len() as u64;
    assemble(MAGIC, &header, &stored, key)
}

/// A snapshot file in the first format (`hygeia-state-snapshot/1`, the
/// state stored uncompressed), as nodes wrote it before: for tests that
/// check such files are still read.
#[cfg(any(test, feature = "testing"))]
pub fn seal_v1(mut header: Header, state: &[u8], key: &Keypair) -> Vec<u8> {
    header.state_digest = digest(state);
    header.stored_digest = String::new();
    header.state_len = 0;
    assemble(MAGIC_V1, &header, state, key)
}

/// How the state section of a file is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stored {
    /// `hygeia-state-snapshot/1`: the JSON itself.
    Plain,
    /// `hygeia-state-snapshot/2`: one zstd frame of the JSON.
    Zstd,
}

/// A snapshot file split into its parts; nothing in it is checked yet.
#[derive(Debug)]
pub struct Unverified<'a> {
    pub header: Header,
    magic: &'static str,
    stored_as: Stored,
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
        let first = next_line(&mut bytes, "format")?;
        let (magic, stored_as) = if first == MAGIC.as_bytes() {
            (MAGIC, Stored::Zstd)
        } else if first == MAGIC_V1.as_bytes() {
            (MAGIC_V1, Stored::Plain)
        } else {
            return Err(SnapshotError::Format(format!(
                "its first line is neither {MAGIC:?} nor {MAGIC_V1:?}"
            )));
        };
        let header_line = next_line(&mut bytes, "header")?;
        let header: Header = serde_json::from_slice(header_line)
            .map_err(|e| SnapshotError::Format(format!("its header: {e}")))?;
        let compressed_fields = !header.stored_digest.is_empty() || header.state_len != 0;
        match stored_as {
            Stored::Plain if compressed_fields => {
                return Err(SnapshotError::Format(format!(
                    "a {MAGIC_V1:?} header has no stored digest or state length"
                )))
            }
            Stored::Zstd if header.stored_digest.is_empty() || header.state_len == 0 => {
                return Err(SnapshotError::Format(format!(
                    "a {MAGIC:?} header needs its stored digest and state length"
                )))
            }
            _ => {}
        }
        let signature = next_line(&mut bytes, "signature")?;
        Ok(Unverified {
            header,
            magic,
            stored_as,
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
            .verify(&signed_message(self.magic, self.header_line), &signature)
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

    /// Checks the stored bytes' digest, decompresses them (no further
    /// than the signed length), checks the state's digest, then decodes
    /// it. A first-format file has only the state's digest to check.
    pub fn decode(&self) -> Result<Committed, SnapshotError> {
        match self.stored_as {
            Stored::Plain => {
                check_digest(self.state, &self.header.state_digest)?;
                decode(self.state)
            }
            Stored::Zstd => {
                check_digest(self.state, &self.header.stored_digest)?;
                let capacity = usize::try_from(self.header.state_len).map_err(|_| {
                    SnapshotError::Decode("its state is too long for this machine".into())
                })?;
                let state = zstd::bulk::decompress(self.state, capacity).map_err(|e| {
                    SnapshotError::Decode(format!("its state does not decompress: {e}"))
                })?;
                if state.len() as u64 != self.header.state_len {
                    return Err(SnapshotError::Decode(format!(
                        "its state decompresses to {} bytes, not the {} its header says",
                        state.len(),
                        self.header.state_len
                    )));
                }
                check_digest(&state, &self.header.state_digest)?;
                decode(&state)
            }
        }
    }
}

fn check_digest(bytes: &[u8], expected: &str) -> Result<(), SnapshotError> {
    let actual = digest(bytes);
    if actual != expected {
        return Err(SnapshotError::Digest {
            expected: expected.to_owned(),
            actual,
        });
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::AccessRef;
    use crate::LedgerState;

    fn state(key: &Keypair) -> Committed {
        let mut committed = Committed::new(LedgerState::new(key.did().to_string(), None));
        for n in 0..200u64 {
            committed.accesses.insert(
                format!("did:example:patient-{n}"),
                vec![AccessRef {
                    index: n,
                    break_glass: n % 7 == 0,
                }],
            );
        }
        committed
    }

    fn header(key: &Keypair) -> Header {
        Header {
            network: "n.test".into(),
            node: key.did().to_string(),
            size: 7,
            root: "ab".repeat(32),
            state_digest: String::new(),
            stored_digest: String::new(),
            state_len: 0,
        }
    }

    /// Where the stored state starts: after the third newline.
    fn state_offset(file: &[u8]) -> usize {
        file.iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(2)
            .map(|(at, _)| at + 1)
            .unwrap()
    }

    #[test]
    fn a_sealed_state_is_stored_compressed_and_decodes_to_the_same_state() {
        let key = Keypair::generate();
        let committed = state(&key);
        let json = encode(&committed);
        let file = seal(header(&key), &json, &key);
        assert!(file.starts_with(b"hygeia-state-snapshot/2\n"));
        let stored = &file[state_offset(&file)..];
        assert!(
            stored.len() * 4 < json.len(),
            "{} stored bytes for {} bytes of state",
            stored.len(),
            json.len()
        );
        let parsed = Unverified::parse(&file).unwrap();
        assert_eq!(parsed.header.state_digest, digest(&json));
        assert_eq!(parsed.header.stored_digest, digest(stored));
        assert_eq!(parsed.header.state_len, json.len() as u64);
        parsed
            .check_signature("n.test", &key.did().to_string())
            .unwrap();
        assert_eq!(encode(&parsed.decode().unwrap()), json);
    }

    #[test]
    fn a_first_format_file_is_still_read_and_checked() {
        let key = Keypair::generate();
        let committed = state(&key);
        let json = encode(&committed);
        let file = seal_v1(header(&key), &json, &key);
        assert!(file.ends_with(&json));
        let parsed = Unverified::parse(&file).unwrap();
        parsed
            .check_signature("n.test", &key.did().to_string())
            .unwrap();
        assert_eq!(encode(&parsed.decode().unwrap()), json);

        let mut damaged = file.clone();
        let at = damaged.len() - 5;
        damaged[at] ^= 0x01;
        let parsed = Unverified::parse(&damaged).unwrap();
        assert_eq!(parsed.decode().unwrap_err().code(), "snapshot.digest");

        // A first-format file signed as a second-format one (or the other
        // way round) does not check: the first line is signed too.
        let relabelled = [MAGIC.as_bytes(), &file[MAGIC_V1.len()..]].concat();
        assert_eq!(
            Unverified::parse(&relabelled).unwrap_err().code(),
            "snapshot.format"
        );
    }

    #[test]
    fn a_header_and_a_format_that_disagree_are_refused() {
        let key = Keypair::generate();
        let json = encode(&state(&key));
        // The second format's header under the first format's line.
        let mut sealed = header(&key);
        sealed.stored_digest = digest(b"x");
        sealed.state_len = 1;
        let file = assemble(MAGIC_V1, &sealed, &json, &key);
        assert_eq!(
            Unverified::parse(&file).unwrap_err().code(),
            "snapshot.format"
        );
        // The first format's header under the second format's line.
        let mut plain = header(&key);
        plain.state_digest = digest(&json);
        let file = assemble(MAGIC, &plain, &json, &key);
        assert_eq!(
            Unverified::parse(&file).unwrap_err().code(),
            "snapshot.format"
        );
        // Signed under one line, presented under the other.
        let file = seal(header(&key), &json, &key);
        let parsed = Unverified::parse(&file).unwrap();
        let swapped = Unverified {
            magic: MAGIC_V1,
            ..parsed
        };
        assert_eq!(
            swapped
                .check_signature("n.test", &key.did().to_string())
                .unwrap_err()
                .code(),
            "snapshot.signature"
        );
    }

    /// The stored digest matches (the node signed it), but what it
    /// decompresses to does not: a wrong state digest, or a wrong length.
    #[test]
    fn what_the_stored_bytes_decompress_to_is_checked_too() {
        let key = Keypair::generate();
        let json = encode(&state(&key));
        let stored = zstd::bulk::compress(&json, ZSTD_LEVEL).unwrap();
        let sealed = |state_digest: String, state_len: u64| {
            let mut header = header(&key);
            header.state_digest = state_digest;
            header.stored_digest = digest(&stored);
            header.state_len = state_len;
            assemble(MAGIC, &header, &stored, &key)
        };
        let right = sealed(digest(&json), json.len() as u64);
        Unverified::parse(&right).unwrap().decode().unwrap();

        let wrong_digest = sealed(digest(b"another state"), json.len() as u64);
        let error = Unverified::parse(&wrong_digest)
            .unwrap()
            .decode()
            .unwrap_err();
        assert_eq!(error.code(), "snapshot.digest");

        for state_len in [json.len() as u64 - 1, json.len() as u64 + 1] {
            let file = sealed(digest(&json), state_len);
            let error = Unverified::parse(&file).unwrap().decode().unwrap_err();
            assert_eq!(error.code(), "snapshot.decode", "state_len {state_len}");
        }

        // One stored byte changed: refused before anything is decompressed.
        let mut damaged = right.clone();
        let at = state_offset(&damaged) + 20;
        damaged[at] ^= 0x01;
        let error = Unverified::parse(&damaged).unwrap().decode().unwrap_err();
        assert_eq!(error.code(), "snapshot.digest");
    }
}
