//! Erasure destroys every copy of a record's data key: a copy of the
//! ciphertext taken before (a backup, a replica) cannot be decrypted with
//! anything the node still stores, nor with the patient's key.

use std::path::{Path, PathBuf};

use super::{Custody, RecordMeta};
use hygeia_identity::Keypair;
use hygeia_vault::{BlobId, FsBlobStore, FsKeyRing, RecipientKey, RecipientPublicKey, Vault};

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

#[test]
fn erased_records_cannot_be_decrypted_with_anything_left() {
    let dir = tempfile::tempdir().unwrap();
    let vault_dir = dir.path().join("vault");
    let custody = Custody::open(&vault_dir).unwrap();
    let patient = Keypair::generate();
    let patient_public = RecipientPublicKey::from_bytes(&patient.public_key().to_x25519()).unwrap();
    let plaintext = br#"{"resourceType":"Observation","valueQuantity":{"value":6.4}}"#;
    let stored = custody
        .store("application/fhir+json", &plaintext[..], &patient_public)
        .unwrap();
    let commitment = stored.commitment.to_hex();
    let meta = RecordMeta {
        blob: stored.blob.to_hex(),
        salt: stored.salt.to_hex(),
        media_type: "application/fhir+json".into(),
        author: patient.did().to_string(),
        provenance: String::new(),
        size: plaintext.len() as u64,
    };
    custody.save_meta(&commitment, &meta).unwrap();

    // Before: the node and the patient can both read it.
    let mut out = Vec::new();
    custody.open_record(&meta, &mut out).unwrap();
    assert_eq!(out, plaintext);
    let patient_key = RecipientKey::from_bytes(&*patient.x25519_secret()).unwrap();
    let keyring = FsKeyRing::open(vault_dir.join("keyring")).unwrap();
    let blobs = FsBlobStore::open(vault_dir.join("blobs")).unwrap();
    let vault = Vault::new(blobs, keyring.clone());
    let mut out = Vec::new();
    vault.open(&stored.blob, &patient_key, &mut out).unwrap();
    assert_eq!(out, plaintext);

    // A backup of the ciphertext, and every wrapped key as it was.
    let backup_dir = dir.path().join("backup");
    let backup = FsBlobStore::open(&backup_dir).unwrap();
    let ciphertext = std::fs::read(custody.blob_path(&meta).unwrap()).unwrap();
    use hygeia_vault::BlobStore;
    assert_eq!(backup.put(&mut &ciphertext[..]).unwrap(), stored.blob);
    let wrapped: Vec<Vec<u8>> = files_under(&vault_dir.join("keyring"))
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    assert_eq!(
        wrapped.len(),
        2,
        "one wrapped key for the patient, one for the node"
    );

    let erasure = custody.erase(&commitment).unwrap().unwrap();
    assert_eq!(erasure.wrapped_keys_destroyed, 2);
    assert!(erasure.ciphertext_deleted);
    assert_eq!(custody.holders(&meta).unwrap(), 0);

    // The backup cannot be opened with the node's custodial key (which the
    // node still holds) nor with the patient's key: no wrapped key is left.
    let from_backup = Vault::new(FsBlobStore::open(&backup_dir).unwrap(), keyring);
    let custodial = std::fs::read_to_string(vault_dir.join("custodial.key")).unwrap();
    let custodial = RecipientKey::from_bytes(&hex::decode(custodial.trim()).unwrap()).unwrap();
    for holder in [&custodial, &patient_key] {
        let result = from_backup.open(&stored.blob, holder, &mut Vec::new());
        assert!(
            matches!(result, Err(hygeia_vault::Error::NoKey)),
            "{result:?}"
        );
    }
    // And no byte string of any wrapped key survives anywhere in the node's
    // data directory.
    for file in files_under(&vault_dir) {
        let bytes = std::fs::read(&file).unwrap();
        for key in &wrapped {
            assert!(
                !bytes.windows(key.len()).any(|w| w == key.as_slice()),
                "a wrapped key survives in {}",
                file.display()
            );
        }
    }
    // What linked the commitment to the ciphertext is gone too.
    assert!(custody.meta(&commitment).unwrap().is_none());
    // Erasing again is harmless (a restart re-runs unfinished erasures).
    assert!(custody.erase(&commitment).unwrap().is_none());
    let _ = BlobId::from_hex(&meta.blob).unwrap();
}
