//! Erasure destroys every copy of a record's data key: a copy of the
//! ciphertext taken before (a backup, a replica) cannot be decrypted with
//! anything the node still stores or holds in memory (its custodial key,
//! the patient's group key, its caches), nor with the patient's key.

use std::path::{Path, PathBuf};

use super::{Custody, RecordMeta};
use hygeia_identity::Keypair;
use hygeia_vault::group::{self, GroupId, GroupWrappedKey, GROUP_WRAPPED_KEY_LEN};
use hygeia_vault::wrap::WRAPPED_KEY_LEN;
use hygeia_vault::{
    BlobId, DataKey, FsBlobStore, FsKeyRing, KeyRing, RecipientKey, RecipientPublicKey, Vault,
    WrappedKey,
};

/// Every key-shaped byte string in `bytes` that opens `record` with one of
/// the keys given: an HPKE-wrapped key for `holders`, or a group-wrapped
/// key for `custodial` under one of `group_keys`.
fn keys_opening(
    bytes: &[u8],
    record: &BlobId,
    holders: &[&RecipientKey],
    custodial: &RecipientPublicKey,
    group_keys: &[DataKey],
) -> usize {
    let mut found = 0;
    for window in bytes.windows(WRAPPED_KEY_LEN) {
        if let Ok(w) = WrappedKey::from_bytes(window) {
            found += holders
                .iter()
                .filter(|h| hygeia_vault::unwrap(&w, record, h).is_ok())
                .count();
        }
    }
    for window in bytes.windows(GROUP_WRAPPED_KEY_LEN) {
        if let Ok(w) = GroupWrappedKey::from_bytes(window) {
            found += group_keys
                .iter()
                .filter(|k| group::unwrap(&w, record, custodial, k).is_ok())
                .count();
        }
    }
    found
}

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
    let record_keys = vault_dir
        .join("keyring")
        .join("keys")
        .join(stored.blob.to_hex());
    let wrapped: Vec<Vec<u8>> = files_under(&record_keys)
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    assert_eq!(
        wrapped.len(),
        2,
        "one wrapped key for the patient, one for the node"
    );
    assert!(
        wrapped.iter().any(|w| w.len() == GROUP_WRAPPED_KEY_LEN),
        "the node's copy is wrapped under the patient's group key"
    );
    // The node holds the patient's group key in memory and in its key ring
    // (it opens the patient's other records), and the record's data key in
    // its cache of recent keys.
    let custodial = std::fs::read_to_string(vault_dir.join("custodial.key")).unwrap();
    let custodial = RecipientKey::from_bytes(&hex::decode(custodial.trim()).unwrap()).unwrap();
    let group = GroupId::of(patient_public.as_bytes());
    let cached_groups = custody.cached_group_keys();
    assert_eq!(cached_groups.len(), 1);
    assert_eq!(cached_groups[0].0, group);
    let group_key = hygeia_vault::unwrap(
        &keyring
            .get(&group.slot(), custodial.public_key())
            .unwrap()
            .unwrap(),
        &group.slot(),
        &custodial,
    )
    .unwrap();
    assert!(group_key == cached_groups[0].1);
    let data_key = custody
        .cached_data_key(&stored.blob)
        .expect("the data key is cached after a read");
    assert_eq!(
        keys_opening(
            &wrapped.concat(),
            &stored.blob,
            &[&custodial, &patient_key],
            custodial.public_key(),
            std::slice::from_ref(&group_key),
        ),
        2
    );

    let erasure = custody.erase(&commitment).unwrap().unwrap();
    assert_eq!(erasure.wrapped_keys_destroyed, 2);
    assert!(erasure.ciphertext_deleted);
    assert_eq!(custody.holders(&meta).unwrap(), 0);

    // The backup cannot be opened with the node's custodial key (which the
    // node still holds) nor with the patient's key: no wrapped key is left.
    let from_backup = Vault::new(FsBlobStore::open(&backup_dir).unwrap(), keyring);
    for holder in [&custodial, &patient_key] {
        let result = from_backup.open(&stored.blob, holder, &mut Vec::new());
        assert!(
            matches!(result, Err(hygeia_vault::Error::NoKey)),
            "{result:?}"
        );
    }
    // Nor by the node, whose memory still holds the patient's group key:
    // the data key left its cache, and no wrapped copy is left to open.
    assert!(custody.cached_data_key(&stored.blob).is_none());
    assert!(custody
        .cached_group_keys()
        .iter()
        .any(|(id, key)| *id == group && *key == group_key));
    // (The ciphertext put back where it was, so only keys are missing.)
    std::fs::create_dir_all(custody.blob_path(&meta).unwrap().parent().unwrap()).unwrap();
    std::fs::write(custody.blob_path(&meta).unwrap(), &ciphertext).unwrap();
    let result = custody.open_record(&meta, &mut Vec::new());
    assert!(
        matches!(
            result,
            Err(super::CustodyError::Vault(hygeia_vault::Error::NoKey))
        ),
        "{result:?}"
    );
    std::fs::remove_file(custody.blob_path(&meta).unwrap()).unwrap();
    // And no byte string of any wrapped key survives anywhere in the node's
    // data directory, nor the data key itself, nor anything that opens the
    // record with any key the node or the patient holds (the group key
    // included).
    for file in files_under(&vault_dir) {
        let bytes = std::fs::read(&file).unwrap();
        for key in &wrapped {
            assert!(
                !bytes.windows(key.len()).any(|w| w == key.as_slice()),
                "a wrapped key survives in {}",
                file.display()
            );
        }
        assert!(
            !bytes.windows(32).any(|w| w == data_key.as_bytes()),
            "the data key survives in {}",
            file.display()
        );
        assert_eq!(
            keys_opening(
                &bytes,
                &stored.blob,
                &[&custodial, &patient_key],
                custodial.public_key(),
                std::slice::from_ref(&group_key),
            ),
            0,
            "a key opening the record survives in {}",
            file.display()
        );
    }
    // What linked the commitment to the ciphertext is gone too.
    assert!(custody.meta(&commitment).unwrap().is_none());
    // Erasing again is harmless (a restart re-runs unfinished erasures).
    assert!(custody.erase(&commitment).unwrap().is_none());
    let _ = BlobId::from_hex(&meta.blob).unwrap();
}

/// Records written before group keys (the node's copy sealed to its
/// custodial key with HPKE) are still read, and erased, as before.
#[test]
fn records_written_before_group_keys_still_open_and_erase() {
    let dir = tempfile::tempdir().unwrap();
    let vault_dir = dir.path().join("vault");
    let custody = Custody::open(&vault_dir).unwrap();
    let patient = RecipientKey::generate().unwrap();
    let plaintext = b"an old record";
    // The old layout, as the previous code wrote it.
    let old = Vault::new(
        FsBlobStore::open(vault_dir.join("blobs")).unwrap(),
        FsKeyRing::open(vault_dir.join("keyring")).unwrap(),
    );
    let blob = old
        .store(
            "text/plain",
            &plaintext[..],
            &[*patient.public_key(), *custody.custodial_public()],
        )
        .unwrap();
    let meta = RecordMeta {
        blob: blob.to_hex(),
        salt: String::new(),
        media_type: "text/plain".into(),
        author: "did:example:old".into(),
        provenance: String::new(),
        size: plaintext.len() as u64,
    };
    custody.save_meta("old", &meta).unwrap();
    let mut out = Vec::new();
    custody.open_record(&meta, &mut out).unwrap();
    assert_eq!(out, plaintext);
    assert!(
        custody.cached_group_keys().is_empty(),
        "no group key involved"
    );
    // A new record of the same patient uses the group key; both read.
    let stored = custody
        .store("text/plain", &b"a new record"[..], patient.public_key())
        .unwrap();
    let new_meta = RecordMeta {
        blob: stored.blob.to_hex(),
        ..meta.clone()
    };
    let mut out = Vec::new();
    custody.open_record(&new_meta, &mut out).unwrap();
    assert_eq!(out, b"a new record");
    // After a restart (nothing in memory), both still read.
    drop(custody);
    let custody = Custody::open(&vault_dir).unwrap();
    for (meta, text) in [(&meta, &plaintext[..]), (&new_meta, &b"a new record"[..])] {
        let mut out = Vec::new();
        custody.open_record(meta, &mut out).unwrap();
        assert_eq!(out, text);
    }
    let erasure = custody.erase("old").unwrap().unwrap();
    assert_eq!(erasure.wrapped_keys_destroyed, 2);
    assert!(custody.open_record(&meta, &mut Vec::new()).is_err());
}
