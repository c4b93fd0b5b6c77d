//! The published RFC 9180 test vectors for DHKEM(X25519, HKDF-SHA256) with
//! HKDF-SHA256 and AES-128-GCM or ChaCha20-Poly1305, all four modes
//! (`../shared/vectors/hpke`).
//!
//! Every entry: `DeriveKeyPair` on `ikmR`, `ikmE` (and `ikmS`) gives the
//! published keys; decapsulating `enc` with `skRm` opens all 257 ciphertexts
//! and reproduces the 3 exports; encapsulating with the published ephemeral
//! key reproduces `enc` and all 257 ciphertexts. Base-mode entries also go
//! through this module's own `seal`/`open`, which `wrap`/`unwrap` use.

use hpke::aead::{Aead, AesGcm128, ChaCha20Poly1305};
use hpke::rand_core::{CryptoRng, RngCore};
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, PskBundle};
use serde_json::Value;

use super::*;

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/vectors/hpke/rfc9180-x25519-sha256-aes128gcm-chacha20poly1305.json"
);

fn entries() -> Vec<Value> {
    let text = std::fs::read_to_string(VECTORS).expect("read the RFC 9180 vectors");
    let entries: Vec<Value> = serde_json::from_str(&text).expect("parse the vectors");
    assert_eq!(entries.len(), 8);
    entries
}

fn field(entry: &Value, name: &str) -> Vec<u8> {
    let text = entry[name]
        .as_str()
        .unwrap_or_else(|| panic!("field {name}"));
    hex::decode(text).expect("hex")
}

fn has(entry: &Value, name: &str) -> bool {
    entry.get(name).is_some()
}

/// Hands out exactly the given bytes: makes HPKE's "random" ephemeral key
/// the one the vector was computed with (`gen_keypair` derives the key pair
/// from 32 bytes drawn from the generator).
struct FixedRng(Vec<u8>);

impl RngCore for FixedRng {
    fn next_u32(&mut self) -> u32 {
        let mut bytes = [0; 4];
        self.fill_bytes(&mut bytes);
        u32::from_le_bytes(bytes)
    }

    fn next_u64(&mut self) -> u64 {
        let mut bytes = [0; 8];
        self.fill_bytes(&mut bytes);
        u64::from_le_bytes(bytes)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        assert!(dest.len() <= self.0.len(), "fixed randomness exhausted");
        let rest = self.0.split_off(dest.len());
        dest.copy_from_slice(&self.0);
        self.0 = rest;
    }
}

impl CryptoRng for FixedRng {}

fn check_derived_key(entry: &Value, ikm: &str, sk: &str, pk: &str) {
    let key = RecipientKey::derive(&field(entry, ikm)).expect("derive");
    assert_eq!(key.to_bytes().to_vec(), field(entry, sk), "{sk}");
    assert_eq!(
        key.public_key().as_bytes().to_vec(),
        field(entry, pk),
        "{pk}"
    );
}

#[test]
fn derive_key_pair_matches_every_entry() {
    for entry in entries() {
        check_derived_key(&entry, "ikmR", "skRm", "pkRm");
        check_derived_key(&entry, "ikmE", "skEm", "pkEm");
        if has(&entry, "ikmS") {
            check_derived_key(&entry, "ikmS", "skSm", "pkSm");
        }
        // The published private key also gives the published public key.
        let from_sk = RecipientKey::from_bytes(&field(&entry, "skRm")).expect("skRm");
        assert_eq!(
            from_sk.public_key().as_bytes().to_vec(),
            field(&entry, "pkRm")
        );
    }
}

#[test]
fn every_entry_opens_seals_and_exports() {
    let mut counts = [0usize; 4];
    for entry in entries() {
        assert_eq!(entry["kem_id"], 32);
        assert_eq!(entry["kdf_id"], 1);
        match entry["aead_id"].as_u64() {
            Some(1) => check_entry::<AesGcm128>(&entry),
            Some(3) => check_entry::<ChaCha20Poly1305>(&entry),
            other => panic!("unexpected aead_id {other:?}"),
        }
        let mode = entry["mode"].as_u64().expect("mode") as usize;
        counts[mode] += 1;
    }
    // Both AEADs in each of base, psk, auth and auth_psk.
    assert_eq!(counts, [2, 2, 2, 2]);
}

fn check_entry<A: Aead>(entry: &Value) {
    let mode = entry["mode"].as_u64().expect("mode");
    let info = field(entry, "info");
    let enc = field(entry, "enc");
    let recipient = RecipientKey::from_bytes(&field(entry, "skRm")).expect("skRm");
    let pk_recipient =
        <Kem as hpke::Kem>::PublicKey::from_bytes(&field(entry, "pkRm")).expect("pkRm");
    let (psk, psk_id) = if has(entry, "psk") {
        (field(entry, "psk"), field(entry, "psk_id"))
    } else {
        (Vec::new(), Vec::new())
    };
    let sender = has(entry, "ikmS").then(|| Kem::derive_keypair(&field(entry, "ikmS")));
    let bundle = || PskBundle::new(&psk, &psk_id).expect("psk bundle");

    let mode_r = match (mode, &sender) {
        (0, None) => OpModeR::Base,
        (1, None) => OpModeR::Psk(bundle()),
        (2, Some((_, pk))) => OpModeR::Auth(pk.clone()),
        (3, Some((_, pk))) => OpModeR::AuthPsk(pk.clone(), bundle()),
        _ => panic!("inconsistent entry for mode {mode}"),
    };
    let mode_s = match (mode, &sender) {
        (0, None) => OpModeS::Base,
        (1, None) => OpModeS::Psk(bundle()),
        (2, Some(pair)) => OpModeS::Auth(pair.clone()),
        (3, Some(pair)) => OpModeS::AuthPsk(pair.clone(), bundle()),
        _ => panic!("inconsistent entry for mode {mode}"),
    };

    // Receiver: decapsulate `enc`, open every ciphertext in sequence.
    let encapped = <Kem as hpke::Kem>::EncappedKey::from_bytes(&enc).expect("enc");
    let mut opener =
        hpke::setup_receiver::<A, Kdf, Kem>(&mode_r, &recipient.secret, &encapped, &info)
            .expect("setup_receiver");
    let encryptions = entry["encryptions"].as_array().expect("encryptions");
    assert_eq!(encryptions.len(), 257);
    for (seq, encryption) in encryptions.iter().enumerate() {
        let opened = opener
            .open(&field(encryption, "ct"), &field(encryption, "aad"))
            .unwrap_or_else(|err| panic!("open #{seq}: {err}"));
        assert_eq!(opened, field(encryption, "pt"), "open #{seq}");
    }

    // Exports.
    let exports = entry["exports"].as_array().expect("exports");
    assert_eq!(exports.len(), 3);
    for export in exports {
        let len = export["L"].as_u64().expect("L") as usize;
        let mut out = vec![0u8; len];
        opener
            .export(&field(export, "exporter_context"), &mut out)
            .expect("export");
        assert_eq!(out, field(export, "exported_value"));
    }

    // Sender: with the published ephemeral key, reproduce `enc` and every
    // ciphertext.
    let mut rng = FixedRng(field(entry, "ikmE"));
    let (encapped, mut sealer) =
        hpke::setup_sender::<A, Kdf, Kem, _>(&mode_s, &pk_recipient, &info, &mut rng)
            .expect("setup_sender");
    assert_eq!(encapped.to_bytes().to_vec(), enc);
    for (seq, encryption) in encryptions.iter().enumerate() {
        let sealed = sealer
            .seal(&field(encryption, "pt"), &field(encryption, "aad"))
            .expect("seal");
        assert_eq!(sealed, field(encryption, "ct"), "seal #{seq}");
    }
    for export in exports {
        let len = export["L"].as_u64().expect("L") as usize;
        let mut out = vec![0u8; len];
        sealer
            .export(&field(export, "exporter_context"), &mut out)
            .expect("export");
        assert_eq!(out, field(export, "exported_value"));
    }

    // This module's own base-mode seal and open (used by wrap and unwrap)
    // agree with the first encryption.
    if mode == 0 {
        let first = &encryptions[0];
        let mut rng = FixedRng(field(entry, "ikmE"));
        let (own_enc, own_ct) = seal::<A, _>(
            &pk_recipient,
            &info,
            &field(first, "aad"),
            &field(first, "pt"),
            &mut rng,
        )
        .expect("seal");
        assert_eq!(own_enc.to_vec(), enc);
        assert_eq!(own_ct, field(first, "ct"));
        let opened = open::<A>(
            &recipient.secret,
            &enc,
            &info,
            &field(first, "aad"),
            &field(first, "ct"),
        )
        .expect("open");
        assert_eq!(opened.to_vec(), field(first, "pt"));

        let mut exported = [0u8; 32];
        receiver::<A>(&recipient.secret, &enc, &info)
            .expect("receiver")
            .export(&field(&exports[0], "exporter_context"), &mut exported)
            .expect("export");
        assert_eq!(exported.to_vec(), field(&exports[0], "exported_value"));
    }
}
