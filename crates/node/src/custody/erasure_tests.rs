//! Erasure destroys every copy of a record's data key: a copy of the
//! ciphertext taken before (a backup, a replica) cannot be decrypted with
//! anything the node still stores or holds in memory (its custodial key,
//! the patient's group key, the patient's patient-copy generation, its
//! caches), nor with the patient's key.

use std::path::{Path, PathBuf};

use super::{Custody, RecordMeta};
use hygeia_identity::Keypair;
use hygeia_vault::group::{self, GroupId, GroupWrappedKey, GROUP_WRAPPED_KEY_LEN};
use hygeia_vault::wrap::WRAPPED_KEY_LEN;
use hygeia_vault::{
    BlobId, BlobStore, DataKey, FsBlobStore, FsKeyRing, KeyRing, RecipientKey, RecipientPublicKey,
    SegmentStore, SlotKeyRing, Vault, WrappedKey,
};

/// Every key-shaped byte string in `bytes` that opens `record` with one of
/// the keys given: an HPKE-wrapped key for `holders`, or a group-wrapped
/// key for one of `holders` (the node's copy, the patient's) under one of
/// `group_keys` (the patient's group key, patient-copy generations' keys).
fn keys_opening(
    bytes: &[u8],
    record: &BlobId,
    holders: &[&RecipientKey],
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
            for holder in holders {
                found += group_keys
                    .iter()
                    .filter(|k| group::unwrap(&w, record, holder.public_key(), k).is_ok())
                    .count();
            }
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
    let (blobs, keyring) = custody.stores();
    let vault = Vault::new(blobs.clone(), keyring.clone());
    let mut out = Vec::new();
    vault.open(&stored.blob, &patient_key, &mut out).unwrap();
    assert_eq!(out, plaintext);

    // A backup of the ciphertext, and every wrapped key as it was.
    let backup_dir = dir.path().join("backup");
    let backup = FsBlobStore::open(&backup_dir).unwrap();
    let (segment, ciphertext) = custody.stored_ciphertext(&stored.blob).unwrap();
    assert_eq!(backup.put(&mut &ciphertext[..]).unwrap(), stored.blob);
    let wrapped: Vec<Vec<u8>> = keyring
        .holders(&stored.blob)
        .unwrap()
        .iter()
        .map(|h| keyring.get_bytes(&stored.blob, h).unwrap().unwrap())
        .collect();
    // Both sit in the one key file, with the group key.
    let key_file = std::fs::read(keyring.path()).unwrap();
    for key in &wrapped {
        assert!(key_file.windows(key.len()).any(|w| w == key.as_slice()));
    }
    assert_eq!(
        wrapped.len(),
        2,
        "one wrapped key for the patient, one for the node"
    );
    assert!(
        wrapped.iter().all(|w| w.len() == GROUP_WRAPPED_KEY_LEN),
        "the node's copy is wrapped under the patient's group key, the \
         patient's under their patient-copy generation's key"
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
    // The patient's patient-copy generation: its key in memory, and in the
    // key ring sealed to the patient (they open it, the node does not).
    let copies = custody.cached_patient_copies();
    assert_eq!(copies.len(), 1);
    let (copy_patient, copy_group, copy_key) = copies[0].clone();
    assert_eq!(copy_patient, patient_public);
    let sealed_copy_key = keyring
        .get(&copy_group.slot(), &patient_public)
        .unwrap()
        .expect("the generation's key, sealed to the patient");
    assert!(
        hygeia_vault::unwrap(&sealed_copy_key, &copy_group.slot(), &patient_key).unwrap()
            == copy_key
    );
    assert!(hygeia_vault::unwrap(&sealed_copy_key, &copy_group.slot(), &custodial).is_err());
    let data_key = custody
        .cached_data_key(&stored.blob)
        .expect("the data key is cached after a read");
    let every_group_key = [group_key.clone(), copy_key.clone()];
    assert_eq!(
        keys_opening(
            &wrapped.concat(),
            &stored.blob,
            &[&custodial, &patient_key],
            &every_group_key,
        ),
        2
    );

    let erasure = custody.erase(&commitment).unwrap().unwrap();
    assert_eq!(erasure.wrapped_keys_destroyed, 2);
    assert!(erasure.ciphertext_deleted);
    assert_eq!(custody.holders(&meta).unwrap(), 0);

    // The backup cannot be opened with the node's custodial key (which the
    // node still holds) nor with the patient's key: no wrapped key is left.
    let from_backup = Vault::new(FsBlobStore::open(&backup_dir).unwrap(), keyring.clone());
    for holder in [&custodial, &patient_key] {
        let result = from_backup.open(&stored.blob, holder, &mut Vec::new());
        assert!(
            matches!(result, Err(hygeia_vault::Error::NoKey)),
            "{result:?}"
        );
    }
    // Nor by the node, whose memory still holds the patient's group key and
    // their patient-copy generation's key (both also still in the key ring:
    // they open the patient's other records): the data key left its cache,
    // and no wrapped copy is left to open.
    assert!(custody.cached_data_key(&stored.blob).is_none());
    assert!(custody
        .cached_group_keys()
        .iter()
        .any(|(id, key)| *id == group && *key == group_key));
    assert!(custody
        .cached_patient_copies()
        .iter()
        .any(|(_, id, key)| *id == copy_group && *key == copy_key));
    assert!(keyring
        .get(&copy_group.slot(), &patient_public)
        .unwrap()
        .is_some());
    // The patient opens nothing of it either: their copy is gone, though
    // the generation's key is not. (A copy of their wrapped key taken out
    // of the key ring before the erasure, a backup, still opens with the
    // generation's key, as the HPKE copy it replaces did with the
    // patient's key alone: the key ring is kept off backups.)
    let patient_copy = wrapped
        .iter()
        .map(|w| GroupWrappedKey::from_bytes(w).unwrap())
        .find(|w| *w.group() == copy_group)
        .expect("the patient's copy");
    assert!(
        group::unwrap(&patient_copy, &stored.blob, &patient_public, &copy_key).unwrap() == data_key
    );
    assert!(matches!(
        group::open_copy(&keyring, &stored.blob, &patient_key),
        Err(hygeia_vault::Error::NoKey)
    ));
    // The ciphertext's bytes stay in their segment until it is compacted:
    // erasure does not depend on removing them.
    assert!(!blobs.exists(&stored.blob).unwrap());
    let segment_bytes = std::fs::read(&segment).unwrap();
    assert!(segment_bytes
        .windows(ciphertext.len())
        .any(|w| w == ciphertext.as_slice()));
    // (The ciphertext put back in the store, so only keys are missing.)
    blobs.put(&mut &ciphertext[..]).unwrap();
    let result = custody.open_record(&meta, &mut Vec::new());
    assert!(
        matches!(
            result,
            Err(super::CustodyError::Vault(hygeia_vault::Error::NoKey))
        ),
        "{result:?}"
    );
    blobs.delete(&stored.blob).unwrap();
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
                &every_group_key,
            ),
            0,
            "a key opening the record survives in {}",
            file.display()
        );
    }
    // What linked the commitment to the ciphertext is gone too.
    assert!(custody.meta(&commitment).unwrap().is_none());
    // A compaction of the segment takes the ciphertext's bytes off the
    // data directory too, and leaves no key behind either.
    assert_eq!(custody.compact_all(), 1);
    for file in files_under(&vault_dir) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !bytes
                .windows(ciphertext.len())
                .any(|w| w == ciphertext.as_slice()),
            "the ciphertext survives compaction in {}",
            file.display()
        );
        assert_eq!(
            keys_opening(
                &bytes,
                &stored.blob,
                &[&custodial, &patient_key],
                &every_group_key,
            ),
            0
        );
    }
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
    // Sealed to the node's custodial key, as the code before group keys did.
    let (blobs, keyring) = custody.stores();
    let old = Vault::new(blobs, keyring);
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

/// The patient opens their records with nothing but their own key: one
/// written before patient-copy generations (sealed to them with HPKE), one
/// of the generation made by this process, and one of the new generation
/// a restart starts (the node cannot unseal the old one); another key
/// opens none, and an erased record opens for neither the node nor the
/// patient. A generation made for a deferred store is durable after
/// `sync`, one made for an immediate store at once.
#[test]
fn the_patient_opens_old_and_new_records_with_their_key_alone() {
    let dir = tempfile::tempdir().unwrap();
    let vault_dir = dir.path().join("vault");
    let custody = Custody::open(&vault_dir).unwrap();
    let patient = RecipientKey::generate().unwrap();
    let other = RecipientKey::generate().unwrap();
    let (blobs, keyring) = custody.stores();
    let old_blob = Vault::new(blobs, keyring)
        .store(
            "text/plain",
            &b"sealed to the patient"[..],
            &[*patient.public_key(), *custody.custodial_public()],
        )
        .unwrap();
    custody
        .save_meta(
            "old",
            &RecordMeta {
                blob: old_blob.to_hex(),
                salt: String::new(),
                media_type: "text/plain".into(),
                author: "did:example:old".into(),
                provenance: String::new(),
                size: 21,
            },
        )
        .unwrap();
    let deferred = custody
        .store_deferred("text/plain", &b"first generation"[..], patient.public_key())
        .unwrap();
    assert_eq!(
        custody.patient_copy_durable(patient.public_key()),
        Some(false)
    );
    custody.sync().unwrap();
    assert_eq!(
        custody.patient_copy_durable(patient.public_key()),
        Some(true)
    );
    let first = custody.cached_patient_copies()[0].1;
    let (first_commitment, first_meta) =
        store(&custody, patient.public_key(), b"first generation, again");
    assert_eq!(
        custody.cached_patient_copies()[0].1,
        first,
        "one generation"
    );
    // An immediate store for a patient with no generation makes its slot
    // durable before it returns.
    store(&custody, other.public_key(), b"another patient's");
    assert_eq!(custody.patient_copy_durable(other.public_key()), Some(true));
    drop(custody);

    let custody = Custody::open(&vault_dir).unwrap();
    assert!(custody.cached_patient_copies().is_empty());
    let (_, second_meta) = store(&custody, patient.public_key(), b"second generation");
    let second = custody.cached_patient_copies()[0].1;
    assert_ne!(second, first, "a restart starts a new generation");
    let (blobs, keyring) = custody.stores();
    let vault = Vault::new(blobs, keyring.clone());
    let records = [
        (old_blob, &b"sealed to the patient"[..], None),
        (deferred.blob, &b"first generation"[..], Some(first)),
        (
            BlobId::from_hex(&first_meta.blob).unwrap(),
            &b"first generation, again"[..],
            Some(first),
        ),
        (
            BlobId::from_hex(&second_meta.blob).unwrap(),
            &b"second generation"[..],
            Some(second),
        ),
    ];
    for (blob, text, generation) in &records {
        let copy = keyring
            .get_bytes(blob, patient.public_key())
            .unwrap()
            .unwrap();
        match generation {
            None => assert_eq!(copy.len(), WRAPPED_KEY_LEN),
            Some(g) => assert_eq!(GroupWrappedKey::from_bytes(&copy).unwrap().group(), g),
        }
        let mut out = Vec::new();
        vault.open(blob, &patient, &mut out).unwrap();
        assert_eq!(&out, text);
        assert!(matches!(
            vault.open(blob, &other, &mut Vec::new()),
            Err(hygeia_vault::Error::NoKey)
        ));
    }
    // Erased (the old format and the new): neither the node nor the
    // patient opens them, though both generations' keys are still there.
    custody.erase("old").unwrap().unwrap();
    custody.erase(&first_commitment).unwrap().unwrap();
    for blob in [old_blob, BlobId::from_hex(&first_meta.blob).unwrap()] {
        assert!(matches!(
            group::open_copy(&keyring, &blob, &patient),
            Err(hygeia_vault::Error::NoKey)
        ));
        assert_eq!(keyring.holders(&blob).unwrap().len(), 0);
    }
    for generation in [first, second] {
        assert!(keyring
            .get(&generation.slot(), patient.public_key())
            .unwrap()
            .is_some());
    }
    let mut out = Vec::new();
    vault.open(&deferred.blob, &patient, &mut out).unwrap();
    assert_eq!(out, b"first generation");
}

/// Stores `text` for `patient` and saves its metadata; returns its
/// commitment and metadata.
fn store(custody: &Custody, patient: &RecipientPublicKey, text: &[u8]) -> (String, RecordMeta) {
    let stored = custody.store("text/plain", text, patient).unwrap();
    let commitment = stored.commitment.to_hex();
    let meta = RecordMeta {
        blob: stored.blob.to_hex(),
        salt: stored.salt.to_hex(),
        media_type: "text/plain".into(),
        author: "did:example:author".into(),
        provenance: String::new(),
        size: text.len() as u64,
    };
    custody.save_meta(&commitment, &meta).unwrap();
    (commitment, meta)
}

/// Whether a live record among `live` has its node copy under `group`.
fn used_by(
    live: &[&str],
    group: &GroupId,
) -> impl FnOnce(&Custody) -> Result<bool, super::CustodyError> {
    let live: Vec<String> = live.iter().map(|c| c.to_string()).collect();
    let group = *group;
    move |custody| {
        for commitment in &live {
            if custody.record_group(commitment)? == Some(group) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// Once every record of a patient is erased, the patient's group key goes
/// too (from the key ring and from memory): nothing the node keeps — read
/// file by file, with its custodial key, the patient's key and the group
/// key as it was — opens any of the patient's records, nor a wrapped data
/// key copied out of the key ring before the erasure. Another patient's
/// records still open.
#[test]
fn erasing_all_of_a_patients_records_destroys_their_group_key() {
    use super::GroupErasure;
    let dir = tempfile::tempdir().unwrap();
    let vault_dir = dir.path().join("vault");
    let custody = Custody::open(&vault_dir).unwrap();
    let alice = RecipientKey::generate().unwrap();
    let bob = RecipientKey::generate().unwrap();
    let (a1, a1_meta) = store(&custody, alice.public_key(), b"alice's first record");
    let (a2, a2_meta) = store(&custody, alice.public_key(), b"alice's second record");
    let (_b1, b1_meta) = store(&custody, bob.public_key(), b"bob's record");
    let group_a = Custody::group_of(alice.public_key());
    let group_b = Custody::group_of(bob.public_key());
    assert_eq!(custody.record_group(&a1).unwrap(), Some(group_a));
    assert!(custody.group_key_stored(&group_a) && custody.group_key_stored(&group_b));
    let custodial = std::fs::read_to_string(vault_dir.join("custodial.key")).unwrap();
    let custodial = RecipientKey::from_bytes(&hex::decode(custodial.trim()).unwrap()).unwrap();
    let group_key_a = custody
        .cached_group_keys()
        .into_iter()
        .find(|(id, _)| *id == group_a)
        .unwrap()
        .1;
    let copy_key_a = custody
        .cached_patient_copies()
        .into_iter()
        .find(|(patient, _, _)| patient == alice.public_key())
        .unwrap()
        .2;
    // A copy of the node's wrapped key of Alice's first record, taken from
    // the key ring before any erasure (a backup, a replica).
    let a1_blob = BlobId::from_hex(&a1_meta.blob).unwrap();
    let a1_copy = custody
        .stores()
        .1
        .get_bytes(&a1_blob, custodial.public_key())
        .unwrap()
        .unwrap();
    let a1_copy = GroupWrappedKey::from_bytes(&a1_copy).unwrap();
    assert!(group::unwrap(&a1_copy, &a1_blob, custodial.public_key(), &group_key_a).is_ok());

    // The first erasure keeps the group key: the second record needs it.
    custody.erase(&a1).unwrap().unwrap();
    assert_eq!(
        custody
            .erase_group(&group_a, used_by(&[&a2], &group_a))
            .unwrap(),
        GroupErasure::InUse
    );
    assert!(custody.group_key_stored(&group_a));
    let mut out = Vec::new();
    custody.open_record(&a2_meta, &mut out).unwrap();
    assert_eq!(out, b"alice's second record");

    // A store under the group on its way to the ledger keeps it too.
    let pending = custody
        .store("text/plain", &b"on its way"[..], alice.public_key())
        .unwrap();
    let a2_group = custody.record_group(&a2).unwrap().unwrap();
    custody.erase(&a2).unwrap().unwrap();
    assert_eq!(
        custody
            .erase_group(&a2_group, used_by(&[], &group_a))
            .unwrap(),
        GroupErasure::StoreInFlight
    );
    assert!(custody.group_key_stored(&group_a));
    // (It did not reach the ledger.)
    custody.discard(&pending.blob).unwrap();
    drop(pending);

    // The last record erased: the group key is destroyed, on disk and in
    // memory; repeating is harmless.
    assert_eq!(
        custody
            .erase_group(&group_a, used_by(&[], &group_a))
            .unwrap(),
        GroupErasure::Destroyed(1)
    );
    assert_eq!(
        custody
            .erase_group(&group_a, used_by(&[], &group_a))
            .unwrap(),
        GroupErasure::Destroyed(0)
    );
    assert!(!custody.group_key_stored(&group_a));
    assert!(custody
        .cached_group_keys()
        .iter()
        .all(|(id, _)| *id != group_a));

    // Every file of the vault, read directly: nothing opens Alice's
    // records, with the custodial key, her key or the group key as it was,
    // and no wrapped copy of the group key is left.
    for file in files_under(&vault_dir) {
        let bytes = std::fs::read(&file).unwrap();
        for meta in [&a1_meta, &a2_meta] {
            assert_eq!(
                keys_opening(
                    &bytes,
                    &BlobId::from_hex(&meta.blob).unwrap(),
                    &[&custodial, &alice],
                    &[group_key_a.clone(), copy_key_a.clone()],
                ),
                0,
                "a key opening one of Alice's records survives in {}",
                file.display()
            );
        }
        assert_eq!(
            keys_opening(&bytes, &group_a.slot(), &[&custodial], &[]),
            0,
            "Alice's group key survives in {}",
            file.display()
        );
        assert!(
            !bytes.windows(32).any(|w| w == group_key_a.as_bytes()),
            "Alice's group key survives in clear in {}",
            file.display()
        );
    }
    // The copy taken before finds no group key to open it: the node's
    // ring has none for Alice, and a new store for her makes a new one.
    let (_a3, a3_meta) = store(&custody, alice.public_key(), b"alice, later");
    let new_key_a = custody
        .cached_group_keys()
        .into_iter()
        .find(|(id, _)| *id == group_a)
        .unwrap()
        .1;
    assert!(new_key_a != group_key_a);
    assert!(group::unwrap(&a1_copy, &a1_blob, custodial.public_key(), &new_key_a).is_err());
    let mut out = Vec::new();
    custody.open_record(&a3_meta, &mut out).unwrap();
    assert_eq!(out, b"alice, later");

    // Bob's record still opens, for the node (after a restart, from the
    // key ring) and for Bob.
    drop(custody);
    let custody = Custody::open(&vault_dir).unwrap();
    let mut out = Vec::new();
    custody.open_record(&b1_meta, &mut out).unwrap();
    assert_eq!(out, b"bob's record");
    let (blobs, keyring) = custody.stores();
    let vault = Vault::new(blobs, keyring);
    let mut out = Vec::new();
    vault
        .open(&BlobId::from_hex(&b1_meta.blob).unwrap(), &bob, &mut out)
        .unwrap();
    assert_eq!(out, b"bob's record");
}

/// Rewrites the vault of a closed node in the layout before segments
/// (`blobs/`, a file per ciphertext; `keyring/`, a file per wrapped key),
/// byte for byte what that code stored.
fn to_legacy_layout(vault_dir: &Path, blobs_of: &[BlobId]) {
    let segments = SegmentStore::open(vault_dir.join(super::SEGMENTS_DIR)).unwrap();
    let slots = SlotKeyRing::open(vault_dir.join(super::KEYS_DIR)).unwrap();
    let old_blobs = FsBlobStore::open(vault_dir.join("blobs")).unwrap();
    let old_keys = FsKeyRing::open(vault_dir.join("keyring")).unwrap();
    for blob in blobs_of {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut segments.get(blob).unwrap(), &mut bytes).unwrap();
        old_blobs.put(&mut &bytes[..]).unwrap();
    }
    for (record, holder) in slots.names() {
        let bytes = slots.get_bytes(&record, &holder).unwrap().unwrap();
        old_keys.put_bytes(&record, &holder, &bytes).unwrap();
    }
    drop((segments, slots));
    std::fs::remove_dir_all(vault_dir.join(super::SEGMENTS_DIR)).unwrap();
    std::fs::remove_dir_all(vault_dir.join(super::KEYS_DIR)).unwrap();
}

/// A data directory in the layout before segments is migrated at start:
/// its records (with a group key, and from before group keys) read for the
/// node and the patient, the old files are gone (the wrapped keys'
/// shredded), a migration interrupted half-way is finished at the next
/// start, and erasure then leaves nothing that opens an erased record.
#[test]
fn a_data_directory_in_the_old_layout_is_migrated_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let vault_dir = dir.path().join("vault");
    let custody = Custody::open(&vault_dir).unwrap();
    let patient = RecipientKey::generate().unwrap();
    let (new, new_meta) = store(&custody, patient.public_key(), b"with a group key");
    let (blobs, keyring) = custody.stores();
    let old_blob = Vault::new(blobs, keyring)
        .store(
            "text/plain",
            &b"before group keys"[..],
            &[*patient.public_key(), *custody.custodial_public()],
        )
        .unwrap();
    let old_meta = RecordMeta {
        blob: old_blob.to_hex(),
        ..new_meta.clone()
    };
    custody.save_meta("old", &old_meta).unwrap();
    let group = Custody::group_of(patient.public_key());
    let group_key = custody.cached_group_keys()[0].1.clone();
    let copy_key = custody.cached_patient_copies()[0].2.clone();
    let new_blob = BlobId::from_hex(&new_meta.blob).unwrap();
    drop(custody);
    to_legacy_layout(&vault_dir, &[new_blob, old_blob]);
    // Two keys for each record, the node's group key and the patient's
    // patient-copy generation's key.
    assert_eq!(files_under(&vault_dir.join("keyring/keys")).len(), 6);
    let old_key_files: Vec<Vec<u8>> = files_under(&vault_dir.join("keyring/keys"))
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    // A migration interrupted after it copied one key (and nothing else
    // durable): the next start copies the rest.
    {
        let slots = SlotKeyRing::open(vault_dir.join(super::KEYS_DIR)).unwrap();
        let old_keys = FsKeyRing::open(vault_dir.join("keyring")).unwrap();
        let holder = custody_public(&vault_dir);
        let bytes = old_keys.get_bytes(&new_blob, &holder).unwrap().unwrap();
        assert!(slots.put_bytes(&new_blob, &holder, &bytes).unwrap());
    }

    let custody = Custody::open(&vault_dir).unwrap();
    assert!(!vault_dir.join("blobs").exists() && !vault_dir.join("keyring").exists());
    for (meta, text) in [
        (&new_meta, &b"with a group key"[..]),
        (&old_meta, &b"before group keys"[..]),
    ] {
        let mut out = Vec::new();
        custody.open_record(meta, &mut out).unwrap();
        assert_eq!(out, text);
        let (blobs, keyring) = custody.stores();
        let mut out = Vec::new();
        Vault::new(blobs, keyring)
            .open(&BlobId::from_hex(&meta.blob).unwrap(), &patient, &mut out)
            .unwrap();
        assert_eq!(out, text);
    }
    assert_eq!(custody.record_group(&new).unwrap(), Some(group));
    // Two files of ciphertext and keys instead of eight.
    let files = files_under(&vault_dir);
    assert!(
        files.iter().all(
            |f| f.extension().is_some_and(|e| e == "seg" || e == "slots")
                || f.ends_with("custody.redb")
                || f.ends_with("custodial.key")
        ),
        "{files:?}"
    );

    // Erasing both: nothing left in any file opens them, nor any byte of
    // the old key files.
    custody.erase(&new).unwrap().unwrap();
    custody.erase("old").unwrap().unwrap();
    let custodial = std::fs::read_to_string(vault_dir.join("custodial.key")).unwrap();
    let custodial = RecipientKey::from_bytes(&hex::decode(custodial.trim()).unwrap()).unwrap();
    for file in files_under(&vault_dir) {
        let bytes = std::fs::read(&file).unwrap();
        for blob in [&new_blob, &old_blob] {
            assert_eq!(
                keys_opening(
                    &bytes,
                    blob,
                    &[&custodial, &patient],
                    &[group_key.clone(), copy_key.clone()],
                ),
                0,
                "a key opening an erased record survives in {}",
                file.display()
            );
        }
        for key in old_key_files
            .iter()
            .filter(|k| k.len() == GROUP_WRAPPED_KEY_LEN)
        {
            assert!(!bytes.windows(key.len()).any(|w| w == key.as_slice()));
        }
    }
}

fn custody_public(vault_dir: &Path) -> RecipientPublicKey {
    let custodial = std::fs::read_to_string(vault_dir.join("custodial.key")).unwrap();
    *RecipientKey::from_bytes(&hex::decode(custodial.trim()).unwrap())
        .unwrap()
        .public_key()
}
