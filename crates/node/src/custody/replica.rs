//! Copies of a record for another organization's node (docs/network.md,
//! "Replication to entitled nodes"): the holder hands out the ciphertext
//! with the data key sealed (HPKE) to the receiving node's custodial key,
//! bound to the record and that key as every wrapped key is; the receiver
//! checks the copy and keeps it as its own, so it serves and erases it
//! like any record it holds.

use std::io::Read;

use hygeia_vault::{BlobId, BlobStore, Commitment, KeyRing, RecipientPublicKey, Salt, WrappedKey};
use sha2::{Digest, Sha256};

use super::{Custody, CustodyError, RecordMeta};

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

    /// Keeps a copy received from the holder of `commitment`, after
    /// checking that the ciphertext is the one the commitment names and
    /// that the data key opens with this node's custodial key. The key is
    /// kept as sent, sealed to the custodial key, so erasing the record
    /// ([`Custody::erase`]) destroys it as any other.
    pub fn store_replica(&self, commitment: &str, replica: &Replica) -> Result<(), ReplicaError> {
        let blob = BlobId::from_hex(&replica.meta.blob).map_err(|_| ReplicaError::Address)?;
        if BlobId::of(&replica.ciphertext) != blob {
            return Err(ReplicaError::Address);
        }
        let salt = Salt::from_hex(&replica.meta.salt).map_err(|_| ReplicaError::Commitment)?;
        if Commitment::with_salt(&salt, &blob).to_hex() != commitment {
            return Err(ReplicaError::Commitment);
        }
        hygeia_vault::unwrap(&replica.wrapped, &blob, &self.custodial)
            .map_err(|_| ReplicaError::Key)?;
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
        self.save_meta(commitment, &replica.meta)?;
        Ok(())
    }
}
