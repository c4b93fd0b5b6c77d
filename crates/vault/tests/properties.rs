//! Property tests: every single-bit change is detected, and records of any
//! size (especially around chunk boundaries) round-trip.

use std::io::Read;
use std::sync::OnceLock;

use hygeia_vault::wrap::WRAPPED_KEY_LEN;
use hygeia_vault::{
    decrypt, encrypt, unwrap, wrap, BlobId, BlobStore, DataKey, Error, FsBlobStore, RecipientKey,
    WrappedKey, CHUNK_SIZE,
};
use proptest::prelude::*;

const MEDIA: &str = "application/fhir+json";
/// "HYGV" | version | media type length | media type | 19-byte nonce prefix.
const HEADER_LEN: usize = 6 + MEDIA.len() + 19;
const SEALED_CHUNK: usize = CHUNK_SIZE + 16;
const RECORD_LEN: usize = 2 * CHUNK_SIZE + 100;

struct Fixture {
    key: DataKey,
    ciphertext: Vec<u8>,
}

/// One three-chunk record, encrypted once for all cases.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let key = DataKey::generate().expect("rng");
        let plaintext: Vec<u8> = (0..RECORD_LEN).map(|i| (i % 241) as u8).collect();
        let mut ciphertext = Vec::new();
        encrypt(&key, MEDIA, &plaintext[..], &mut ciphertext).expect("encrypt");
        assert_eq!(ciphertext.len(), HEADER_LEN + RECORD_LEN + 3 * 16);
        Fixture { key, ciphertext }
    })
}

fn flipped(bytes: &[u8], bit: usize) -> Vec<u8> {
    let mut copy = bytes.to_vec();
    copy[bit / 8] ^= 1 << (bit % 8);
    copy
}

fn opens(key: &DataKey, ciphertext: &[u8]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    decrypt(key, ciphertext, &mut out)?;
    Ok(out)
}

/// Record sizes at and around 0, 1, 2 and 3 chunks.
fn boundary_len() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0),
        Just(1),
        Just(CHUNK_SIZE - 1),
        Just(CHUNK_SIZE),
        Just(CHUNK_SIZE + 1),
        Just(3 * CHUNK_SIZE + 5),
        (0usize..=3, 0usize..16)
            .prop_map(|(chunks, delta)| (chunks * CHUNK_SIZE + delta).saturating_sub(8)),
        0usize..4 * CHUNK_SIZE,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn any_bit_flip_anywhere_in_a_record_is_detected(bit in 0usize..(HEADER_LEN + RECORD_LEN + 48) * 8) {
        let f = fixture();
        prop_assert!(opens(&f.key, &flipped(&f.ciphertext, bit)).is_err());
    }

    #[test]
    fn any_bit_flip_in_any_chunk_is_detected(chunk in 0usize..3, offset in 0usize..SEALED_CHUNK, bit in 0usize..8) {
        let f = fixture();
        let start = HEADER_LEN + chunk * SEALED_CHUNK;
        let end = (start + SEALED_CHUNK).min(f.ciphertext.len());
        let position = start + offset % (end - start);
        let result = opens(&f.key, &flipped(&f.ciphertext, position * 8 + bit));
        prop_assert!(matches!(result, Err(Error::Authentication)));
    }

    /// The header is every chunk's associated data: flipping a bit of the
    /// media type, the version or the nonce prefix is refused.
    #[test]
    fn any_bit_flip_in_the_associated_data_is_detected(bit in 0usize..HEADER_LEN * 8) {
        let f = fixture();
        let tampered = flipped(&f.ciphertext, bit);
        let result = opens(&f.key, &tampered);
        prop_assert!(result.is_err());
        let media = &tampered[6..6 + MEDIA.len()];
        let in_media_type = (6 * 8..(6 + MEDIA.len()) * 8).contains(&bit);
        if in_media_type && media.iter().all(|b| (b' '..=b'~').contains(b)) {
            // Still a well-formed media type: only the AEAD can tell.
            prop_assert!(matches!(result, Err(Error::Authentication)));
        }
    }

    #[test]
    fn any_truncation_is_detected(len in 0usize..HEADER_LEN + RECORD_LEN + 48) {
        let f = fixture();
        prop_assert!(opens(&f.key, &f.ciphertext[..len]).is_err());
    }

    #[test]
    fn any_bit_flip_in_a_wrapped_key_is_detected(bit in 0usize..WRAPPED_KEY_LEN * 8) {
        let holder = RecipientKey::generate().expect("rng");
        let key = DataKey::generate().expect("rng");
        let record = BlobId::of(b"record");
        let wrapped = wrap(&key, &record, holder.public_key()).expect("wrap");
        let tampered = flipped(&wrapped.to_bytes(), bit);
        let result = WrappedKey::from_bytes(&tampered).and_then(|w| unwrap(&w, &record, &holder));
        prop_assert!(result.is_err());
    }

    #[test]
    fn any_bit_flip_in_a_stored_blob_is_detected(len in 1usize..5000, seed: u64, bit_seed: u64) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FsBlobStore::open(dir.path()).expect("open");
        let content: Vec<u8> = (0..len).map(|i| (seed.wrapping_mul(i as u64 + 1) >> 7) as u8).collect();
        let id = store.put(&mut &content[..]).expect("put");
        let path = store.path(&id);
        let bit = (bit_seed % (len as u64 * 8)) as usize;
        std::fs::write(&path, flipped(&content, bit)).expect("corrupt");
        let mut out = Vec::new();
        let err = store.get(&id).expect("get").read_to_end(&mut out).expect_err("corrupt");
        let is_corrupt = matches!(Error::from(err), Error::Corrupt { .. });
        prop_assert!(is_corrupt);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn records_of_any_size_round_trip(len in boundary_len(), seed: u8) {
        let key = DataKey::generate().expect("rng");
        let plaintext: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(seed | 1)).collect();
        let mut ciphertext = Vec::new();
        let written = encrypt(&key, MEDIA, &plaintext[..], &mut ciphertext).expect("encrypt");
        prop_assert_eq!(written as usize, ciphertext.len());
        let chunks = len.div_ceil(CHUNK_SIZE).max(1);
        prop_assert_eq!(ciphertext.len(), HEADER_LEN + len + 16 * chunks);
        let mut out = Vec::new();
        let info = decrypt(&key, &ciphertext[..], &mut out).expect("decrypt");
        prop_assert_eq!(info.plaintext_len as usize, len);
        prop_assert_eq!(out, plaintext);
    }

    /// Readers that hand out a few bytes at a time are handled like any other.
    #[test]
    fn short_reads_do_not_matter(len in boundary_len(), step in 1usize..5000) {
        let key = DataKey::generate().expect("rng");
        let plaintext: Vec<u8> = (0..len).map(|i| (i % 199) as u8).collect();
        let mut ciphertext = Vec::new();
        encrypt(&key, MEDIA, Trickle(&plaintext, step), &mut ciphertext).expect("encrypt");
        let mut out = Vec::new();
        decrypt(&key, Trickle(&ciphertext, step), &mut out).expect("decrypt");
        prop_assert_eq!(out, plaintext);
    }
}

/// A reader that returns at most `step` bytes per call.
struct Trickle<'a>(&'a [u8], usize);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.1).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}
