//! The vault end to end: store, open, grant, revoke, and crypto-shredding.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use hygeia_vault::{
    decrypt, unwrap, BlobStore, Commitment, DataKey, Erasure, Error, FsBlobStore, FsKeyRing,
    KeyRing, RecipientKey, Vault, WrappedKey, CHUNK_SIZE,
};

type FsVault = Vault<FsBlobStore, FsKeyRing>;

fn vault(dir: &Path) -> FsVault {
    Vault::new(
        FsBlobStore::open(dir.join("blobs")).expect("blob store"),
        FsKeyRing::open(dir.join("keys")).expect("key ring"),
    )
}

fn record(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 253) as u8 ^ 0x5a).collect()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn store_open_grant_revoke() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = vault(dir.path());
    let patient = RecipientKey::generate().expect("rng");
    let clinic = RecipientKey::generate().expect("rng");
    let stranger = RecipientKey::generate().expect("rng");
    let plaintext = record(3 * CHUNK_SIZE + 5);

    let id = vault
        .store(
            "application/fhir+json",
            &plaintext[..],
            &[*patient.public_key()],
        )
        .expect("store");
    let raw = fs::read(vault.blobs().path(&id)).expect("raw ciphertext");
    assert_eq!(hygeia_vault::BlobId::of(&raw), id);
    let probe = &plaintext[..64];
    assert!(
        !raw.windows(64).any(|w| w == probe),
        "plaintext in the blob"
    );

    let mut out = Vec::new();
    let info = vault.open(&id, &patient, &mut out).expect("open");
    assert_eq!(out, plaintext);
    assert_eq!(info.media_type, "application/fhir+json");

    assert!(matches!(
        vault.open(&id, &clinic, Vec::new()),
        Err(Error::NoKey)
    ));
    assert!(vault
        .grant(&id, &patient, clinic.public_key())
        .expect("grant"));
    let mut out = Vec::new();
    vault.open(&id, &clinic, &mut out).expect("clinic opens");
    assert_eq!(out, plaintext);

    // Only a holder can grant.
    let denied = vault.grant(&id, &stranger, stranger.public_key());
    assert!(matches!(denied, Err(Error::NoKey)));

    assert!(vault.revoke(&id, clinic.public_key()).expect("revoke"));
    assert!(matches!(
        vault.open(&id, &clinic, Vec::new()),
        Err(Error::NoKey)
    ));
    vault
        .open(&id, &patient, Vec::new())
        .expect("patient still opens");

    assert!(matches!(
        vault.store("text/plain", &b"x"[..], &[]),
        Err(Error::NoHolders)
    ));
}

#[test]
fn a_corrupted_blob_does_not_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = vault(dir.path());
    let patient = RecipientKey::generate().expect("rng");
    let id = vault
        .store(
            "application/dicom",
            &record(100_000)[..],
            &[*patient.public_key()],
        )
        .expect("store");
    let path = vault.blobs().path(&id);
    let mut bytes = fs::read(&path).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&path, bytes).expect("corrupt");
    let err = vault.open(&id, &patient, Vec::new()).expect_err("corrupt");
    // The AEAD notices before the hash check at end of input does.
    assert!(
        matches!(err, Error::Authentication | Error::Corrupt { .. }),
        "{err}"
    );
    let mut reader = vault.blobs().get(&id).expect("get");
    let err = reader.read_to_end(&mut Vec::new()).expect_err("hash check");
    assert!(matches!(Error::from(err), Error::Corrupt { .. }));
}

/// After erasure, the ciphertext (here: a replica kept elsewhere, and
/// everything the vault's directories still hold) cannot be decrypted with
/// anything the vault still has.
#[test]
fn erasure_leaves_nothing_that_decrypts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = vault(dir.path());
    let holders: Vec<RecipientKey> = (0..3)
        .map(|_| RecipientKey::generate().expect("rng"))
        .collect();
    let plaintext = record(2 * CHUNK_SIZE + 17);
    let id = vault
        .store(
            "application/fhir+json",
            &plaintext[..],
            &[*holders[0].public_key(), *holders[1].public_key()],
        )
        .expect("store");
    vault
        .grant(&id, &holders[0], holders[2].public_key())
        .expect("grant");
    let (commitment, salt) = Commitment::commit(&id).expect("rng");

    // What an observer could have kept: the ciphertext (a replica) and, for
    // the test's own check, the data key itself.
    let replica = fs::read(vault.blobs().path(&id)).expect("ciphertext");
    fs::write(dir.path().join("replica"), &replica).expect("keep a replica");
    let wrapped = vault
        .keys()
        .get(&id, holders[0].public_key())
        .expect("get")
        .expect("wrapped");
    let data_key = unwrap(&wrapped, &id, &holders[0]).expect("unwrap");
    let mut check = Vec::new();
    decrypt(&data_key, &replica[..], &mut check).expect("replica decrypts with the key");
    assert_eq!(check, plaintext);

    let erasure = vault.erase(&id).expect("erase");
    assert_eq!(
        erasure,
        Erasure {
            wrapped_keys_destroyed: 3,
            ciphertext_deleted: true
        }
    );

    // No holder can open it, and the key ring has nothing for it.
    for holder in &holders {
        assert!(matches!(
            vault.open(&id, holder, Vec::new()),
            Err(Error::NoKey)
        ));
    }
    assert!(vault.keys().holders(&id).expect("holders").is_empty());

    // Nothing left — the replica and whatever the vault's directories still
    // hold — is the data key or opens to it.
    let remaining = files_under(dir.path());
    assert_eq!(remaining, vec![dir.path().join("replica")]);
    for path in &remaining {
        let bytes = fs::read(path).expect("read");
        assert!(
            !bytes.windows(32).any(|w| w == data_key.as_bytes()),
            "{} holds the data key",
            path.display()
        );
        for window in bytes.windows(hygeia_vault::wrap::WRAPPED_KEY_LEN) {
            if let Ok(candidate) = WrappedKey::from_bytes(window) {
                for holder in &holders {
                    assert!(unwrap(&candidate, &id, holder).is_err());
                }
            }
        }
    }

    // The replica is intact, yet no key the vault holds opens it: the
    // holders' private keys open nothing, and no stored bytes are a key.
    for holder in &holders {
        let as_data_key = DataKey::from_bytes(*holder.to_bytes());
        assert!(decrypt(&as_data_key, &replica[..], Vec::new()).is_err());
    }

    // The ledger's commitment still verifies against the record's address.
    assert!(commitment.verifies(&salt, &id));
}

#[test]
fn key_ring_and_blobs_live_apart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = vault(dir.path());
    let holder = RecipientKey::generate().expect("rng");
    let id = vault
        .store("text/plain", &b"note"[..], &[*holder.public_key()])
        .expect("store");
    let blob_files = files_under(&dir.path().join("blobs"));
    assert_eq!(blob_files, vec![vault.blobs().path(&id)]);
    let key_files = files_under(&dir.path().join("keys"));
    assert_eq!(key_files.len(), 1);
    assert_eq!(
        fs::read(&key_files[0]).expect("read").len(),
        hygeia_vault::wrap::WRAPPED_KEY_LEN
    );
}
