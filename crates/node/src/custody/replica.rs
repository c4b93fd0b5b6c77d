//! Copies of a record for another organization's node (docs/network.md,
//! "Replication to entitled nodes"): the holder hands out the ciphertext
//! with the data key sealed (HPKE) to the receiving node's custodial key,
//! bound to the record and that key as every wrapped key is; the receiver
//! checks the copy and keeps it as its own, so it serves and erases it
//! like any record it holds.

use std::io::Read;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hygeia_identity::{Did, Signature};
use hygeia_state::identities::Identities;
use hygeia_state::records::RecordEntry;
use hygeia_vault::{BlobId, BlobStore, Commitment, KeyRing, RecipientPublicKey, Salt, WrappedKey};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{Custody, CustodyError, RecordMeta};

/// The holder's answer to `GET /v1/replicas/{id}` (`crate::api::replicas`),
/// as the receiving node reads it. Strict: a field it does not know, at the
/// top or in `meta`, is refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicaAnswer {
    pub record: String,
    /// What the holder keeps about the record off the ledger, as it keeps it.
    pub meta: RecordMeta,
    /// Base64 (standard alphabet, padded).
    pub ciphertext: String,
    /// Hex.
    pub wrapped_key: String,
    pub sha256: String,
    /// Leaf index of the `record.replicate` event.
    pub index: u64,
}

impl ReplicaAnswer {
    /// Reads an answer's JSON bytes, refusing anything that is not one.
    pub fn parse(bytes: &[u8]) -> Result<ReplicaAnswer, ReplicaError> {
        serde_json::from_slice(bytes).map_err(|e| ReplicaError::Malformed(e.to_string()))
    }

    /// The copy the answer carries; refuses one whose `sha256` is not the
    /// digest of what it carries (the digest the holder logged).
    pub fn into_replica(self) -> Result<Replica, ReplicaError> {
        let ciphertext = STANDARD
            .decode(self.ciphertext.as_bytes())
            .map_err(|_| ReplicaError::Malformed("ciphertext is not base64".into()))?;
        let wrapped = hex::decode(&self.wrapped_key)
            .ok()
            .and_then(|bytes| WrappedKey::from_bytes(&bytes).ok())
            .ok_or_else(|| ReplicaError::Malformed("wrapped_key is not a wrapped key".into()))?;
        let replica = Replica {
            meta: self.meta,
            ciphertext,
            wrapped,
        };
        if replica.digest() != self.sha256 {
            return Err(ReplicaError::Malformed(
                "sha256 is not the digest of the ciphertext and wrapped key".into(),
            ));
        }
        Ok(replica)
    }
}

/// A record as one node sends it to another.
#[derive(Clone, Debug)]
pub struct Replica {
    pub meta: RecordMeta,
    /// The ciphertext, as stored (its SHA-256 is `meta.blob`).
    pub ciphertext: Vec<u8>,
    /// The data key sealed to the receiving node's custodial key.
    pub wrapped: WrappedKey,
}

impl Replica {
    /// SHA-256 (hex) of what was sent: the ciphertext, then the wrapped
    /// key. The `record.replicate` event carries it.
    pub fn digest(&self) -> String {
        let mut hash = Sha256::new();
        hash.update(&self.ciphertext);
        hash.update(self.wrapped.to_bytes());
        hex::encode(hash.finalize())
    }
}

/// Why a received copy was not kept.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    #[error("the ciphertext does not hash to the record's address")]
    Address,
    #[error("the record's commitment does not open to the ciphertext's address")]
    Commitment,
    #[error("the data key is not sealed to this node's custodial key for this record")]
    Key,
    #[error("the data key does not decrypt the ciphertext")]
    Decrypt,
    #[error("the copy does not match the record on the ledger: {0}")]
    Ledger(&'static str),
    #[error("the provenance signature is not the author's over this record")]
    Provenance,
    #[error("not a replica answer: {0}")]
    Malformed(String),
    #[error(transparent)]
    Custody(#[from] CustodyError),
}

impl Custody {
    /// A copy of `commitment` for the node whose custodial key is `to`;
    /// `None` for a record this node does not hold.
    pub fn replica_for(
        &self,
        commitment: &str,
        to: &RecipientPublicKey,
    ) -> Result<Option<Replica>, CustodyError> {
        let Some(meta) = self.meta(commitment)? else {
            return Ok(None);
        };
        let blob = BlobId::from_hex(&meta.blob)?;
        let key = self.data_key(&blob)?;
        let mut ciphertext = Vec::new();
        self.vault
            .blobs()
            .get(&blob)?
            .read_to_end(&mut ciphertext)
            .map_err(|e| CustodyError::Vault(e.into()))?;
        let wrapped = hygeia_vault::wrap(&key, &blob, to)?;
        Ok(Some(Replica {
            meta,
            ciphertext,
            wrapped,
        }))
    }

    /// Keeps a copy received from the holder of `record` (its entry on
    /// the ledger), after checking that the ciphertext is the one the
    /// commitment names, that the data key opens with this node's custodial
    /// key and decrypts the whole ciphertext (an authenticated encryption:
    /// a key that is not the record's fails), that the plaintext is the
    /// size the copy claims, that the author is the ledger's and that a
    /// provenance signature, when the copy has one, is `author_key`'s (the
    /// key that acted for the author when the record was ordered:
    /// [`author_key`]) over the record's ledger metadata, media type and
    /// plaintext. The key is kept as sent, sealed to the custodial key, so
    /// erasing the record ([`Custody::erase`]) destroys it as any other.
    pub fn store_replica(
        &self,
        record: &RecordEntry,
        author_key: &str,
        replica: &Replica,
    ) -> Result<(), ReplicaError> {
        let commitment = record.commitment.as_str();
        let blob = BlobId::from_hex(&replica.meta.blob).map_err(|_| ReplicaError::Address)?;
        if BlobId::of(&replica.ciphertext) != blob {
            return Err(ReplicaError::Address);
        }
        let salt = Salt::from_hex(&replica.meta.salt).map_err(|_| ReplicaError::Commitment)?;
        if Commitment::with_salt(&salt, &blob).to_hex() != commitment {
            return Err(ReplicaError::Commitment);
        }
        if replica.meta.author != record.author {
            return Err(ReplicaError::Ledger("author"));
        }
        let key = hygeia_vault::unwrap(&replica.wrapped, &blob, &self.custodial)
            .map_err(|_| ReplicaError::Key)?;
        let mut counted = CountingSink::default();
        hygeia_vault::decrypt(&key, replica.ciphertext.as_slice(), &mut counted)
            .map_err(|_| ReplicaError::Decrypt)?;
        if counted.bytes != replica.meta.size {
            return Err(ReplicaError::Ledger("size"));
        }
        check_provenance(
            record,
            author_key,
            &replica.meta,
            &counted.sha256.finalize().into(),
        )?;
        let mut writer = self.vault.blobs().writer().map_err(CustodyError::from)?;
        std::io::Write::write_all(&mut writer, &replica.ciphertext)
            .map_err(|e| CustodyError::Vault(e.into()))?;
        let written = writer.commit().map_err(CustodyError::from)?;
        if written != blob {
            return Err(ReplicaError::Address);
        }
        self.vault
            .keys()
            .put(&blob, self.custodial.public_key(), &replica.wrapped)
            .map_err(CustodyError::from)?;
        self.save_replica_meta(
            commitment,
            &replica.meta,
            record.node.as_deref().unwrap_or_default(),
        )?;
        Ok(())
    }
}

/// The key that acted for `record`'s author when the record was ordered:
/// the author's own did:key, or the key the last `identity.rotate` before
/// the record moved it to (the key that signed the upload and its
/// provenance, docs/records.md).
pub fn author_key(identities: &Identities, record: &RecordEntry) -> String {
    identities
        .rotations(&record.author)
        .iter()
        .filter(|rotation| rotation.index < record.index)
        .max_by_key(|rotation| rotation.index)
        .map_or_else(|| record.author.clone(), |rotation| rotation.to.clone())
}

/// A copy's provenance signature, when it has one, must be `author_key`'s
/// over the record as the ledger describes it, with the media type the
/// copy claims and the plaintext it decrypts to. Records written without
/// one (through the FHIR API, or a device's batch) carry an empty one.
fn check_provenance(
    record: &RecordEntry,
    author_key: &str,
    meta: &RecordMeta,
    content_sha256: &[u8; 32],
) -> Result<(), ReplicaError> {
    if meta.provenance.is_empty() {
        return Ok(());
    }
    let signature = URL_SAFE_NO_PAD
        .decode(meta.provenance.as_bytes())
        .ok()
        .and_then(|bytes| Signature::from_slice(&bytes).ok())
        .ok_or(ReplicaError::Provenance)?;
    let key = Did::parse_cached(author_key).map_err(|_| ReplicaError::Provenance)?;
    let message = crate::api::records::provenance_message(
        &record.patient,
        &record.category,
        &record.resource_type,
        &meta.media_type,
        content_sha256,
    );
    key.public_key()
        .verify(&message, &signature)
        .map_err(|_| ReplicaError::Provenance)
}

/// Counts and hashes what is written and keeps nothing: a received copy is
/// decrypted once to check it, without its plaintext touching memory for
/// longer than a chunk.
#[derive(Default)]
struct CountingSink {
    bytes: u64,
    sha256: Sha256,
}

impl std::io::Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes += buf.len() as u64;
        self.sha256.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
