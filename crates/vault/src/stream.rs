//! Record encryption: XChaCha20-Poly1305 in the STREAM construction.
//!
//! Every record has its own random 256-bit [`DataKey`]. The record is cut
//! into chunks of [`CHUNK_SIZE`] bytes of plaintext, and each chunk is sealed
//! with XChaCha20-Poly1305 under the STREAM construction of Hoang, Reyhanitabar,
//! Rogaway and Vizár ("Online Authenticated-Encryption and its Nonce-Reuse
//! Misuse-Resistance", 2015) as implemented by the RustCrypto `aead` crate
//! (`aead::stream::EncryptorBE32` / `DecryptorBE32`): the nonce of chunk `i`
//! is `prefix (19 bytes) || i (32-bit big-endian) || last-chunk flag (1 byte)`.
//! Because the position and the "last" flag are inside the nonce, a chunk
//! moved, dropped, duplicated or cut off, or data appended after the last
//! chunk, makes decryption fail. Neither side ever holds more than one chunk.
//!
//! Why XChaCha20-Poly1305 rather than AES-GCM: it is constant-time in
//! portable software (no reliance on AES instructions, which some edge
//! devices lack), its 192-bit nonce leaves room for a random 152-bit STREAM
//! prefix, and HPKE key wrapping uses ChaCha20-Poly1305 from the same
//! RustCrypto family, so one audited implementation covers both. Each data
//! key encrypts exactly one record, so the nonce prefix would not even need to
//! be random; it is anyway, as defence in depth.
//!
//! # Format (version 1)
//!
//! ```text
//! header  = "HYGV" | version (1 byte, = 1) | media type length (1 byte)
//!           | media type (printable ASCII) | nonce prefix (19 bytes)
//! body    = chunk* last-chunk
//! chunk   = 65,536 bytes of ciphertext | 16-byte tag
//! last    = 0..=65,536 bytes of ciphertext | 16-byte tag
//! ```
//!
//! The whole header is the associated data of every chunk, which binds the
//! media type and the format version to the content. The media type is
//! therefore readable by whoever holds the ciphertext; it is coded metadata
//! (for example `application/fhir+json`), never free text.
//!
//! # Using decrypted output
//!
//! Every chunk is authenticated before its plaintext is written, so what
//! [`decrypt`] writes is always an authentic prefix of the record. Whether it
//! is the *whole* record is only known when [`decrypt`] returns `Ok`: on an
//! error the output must be discarded (write to a temporary file and keep it
//! only on success).

use std::fmt;
use std::io::{self, Read, Write};

use chacha20poly1305::aead::stream::{DecryptorBE32, EncryptorBE32};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{Error, Result};

/// Plaintext bytes per chunk.
pub const CHUNK_SIZE: usize = 64 * 1024;
/// Poly1305 tag bytes added to every chunk.
pub const TAG_SIZE: usize = 16;
/// The record format version written by this code.
pub const FORMAT_VERSION: u8 = 1;
/// Longest media type accepted, in bytes.
pub const MAX_MEDIA_TYPE_LEN: usize = 255;
/// Length of a data key in bytes.
pub const DATA_KEY_LEN: usize = 32;

const MAGIC: [u8; 4] = *b"HYGV";
/// XChaCha20's 24-byte nonce minus STREAM-BE32's 5 bytes of counter and flag.
const NONCE_PREFIX_LEN: usize = 19;

/// A record's secret 256-bit data key. Wiped from memory when dropped; never
/// printed.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct DataKey([u8; DATA_KEY_LEN]);

impl DataKey {
    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> Result<Self> {
        let mut key = DataKey([0; DATA_KEY_LEN]);
        crate::fill_random(&mut key.0)?;
        Ok(key)
    }

    pub fn from_bytes(bytes: [u8; DATA_KEY_LEN]) -> Self {
        DataKey(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; DATA_KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(..)")
    }
}

/// What decryption learned about a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordInfo {
    /// The media type bound to the record when it was encrypted.
    pub media_type: String,
    /// Bytes of plaintext written.
    pub plaintext_len: u64,
}

/// The cleartext header; its encoding is the associated data of every chunk.
struct Header {
    bytes: Vec<u8>,
    media_type: String,
    nonce_prefix: [u8; NONCE_PREFIX_LEN],
}

impl Header {
    fn new(media_type: &str, nonce_prefix: [u8; NONCE_PREFIX_LEN]) -> Result<Self> {
        check_media_type(media_type.as_bytes())?;
        let mut bytes = Vec::with_capacity(6 + media_type.len() + NONCE_PREFIX_LEN);
        bytes.extend_from_slice(&MAGIC);
        bytes.push(FORMAT_VERSION);
        // Cannot truncate: check_media_type bounds the length by 255.
        bytes.push(media_type.len() as u8);
        bytes.extend_from_slice(media_type.as_bytes());
        bytes.extend_from_slice(&nonce_prefix);
        Ok(Header {
            bytes,
            media_type: media_type.to_owned(),
            nonce_prefix,
        })
    }

    fn read(input: &mut impl Read) -> Result<Self> {
        let mut fixed = [0u8; 6];
        read_header_part(input, &mut fixed)?;
        if fixed[..4] != MAGIC {
            return Err(Error::Format("record (not a vault record)"));
        }
        if fixed[4] != FORMAT_VERSION {
            return Err(Error::UnsupportedVersion(fixed[4]));
        }
        let mut media = vec![0u8; usize::from(fixed[5])];
        read_header_part(input, &mut media)?;
        check_media_type(&media)?;
        let media_type = String::from_utf8(media).map_err(|_| Error::MediaType)?;
        let mut nonce_prefix = [0u8; NONCE_PREFIX_LEN];
        read_header_part(input, &mut nonce_prefix)?;
        Header::new(&media_type, nonce_prefix)
    }
}

fn read_header_part(input: &mut impl Read, buf: &mut [u8]) -> Result<()> {
    input.read_exact(buf).map_err(|err| match err.kind() {
        io::ErrorKind::UnexpectedEof => Error::Format("record (truncated header)"),
        _ => Error::from(err),
    })
}

/// A media type is 1 to 255 bytes of printable ASCII (spaces allowed, for
/// parameters such as `; charset=utf-8`).
fn check_media_type(media_type: &[u8]) -> Result<()> {
    let printable = media_type.iter().all(|b| (b' '..=b'~').contains(b));
    if media_type.is_empty() || media_type.len() > MAX_MEDIA_TYPE_LEN || !printable {
        return Err(Error::MediaType);
    }
    Ok(())
}

/// Encrypts a record read from `input` and writes the ciphertext to
/// `output`, one chunk at a time. Returns the number of ciphertext bytes
/// written.
pub fn encrypt(
    key: &DataKey,
    media_type: &str,
    mut input: impl Read,
    mut output: impl Write,
) -> Result<u64> {
    // Nonces need to be unique, not secret: a thread-local CSPRNG (seeded
    // and periodically reseeded from the operating system) spares a system
    // call per record, which is a measurable share of encrypting a small one.
    let mut nonce_prefix = [0u8; NONCE_PREFIX_LEN];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut nonce_prefix);
    let header = Header::new(media_type, nonce_prefix)?;
    output.write_all(&header.bytes)?;
    let mut written = header.bytes.len() as u64;

    let aead = XChaCha20Poly1305::new(key.as_bytes().into());
    let mut encryptor = EncryptorBE32::from_aead(aead, (&header.nonce_prefix).into());
    let mut chunk = ChunkBuffer::new();
    while !chunk.read_next(&mut input, CHUNK_SIZE)? {
        encryptor
            .encrypt_next_in_place(&header.bytes, &mut chunk.bytes)
            .map_err(|_| TOO_LARGE)?;
        written += chunk.write_to(&mut output)?;
    }
    encryptor
        .encrypt_last_in_place(&header.bytes, &mut chunk.bytes)
        .map_err(|_| TOO_LARGE)?;
    written += chunk.write_to(&mut output)?;
    output.flush()?;
    Ok(written)
}

/// Sealing a chunk fails only when the 32-bit chunk counter would overflow.
const TOO_LARGE: Error = Error::Format("record (more than 2^32 - 1 chunks)");

/// Decrypts a record read from `input` and writes the plaintext to `output`,
/// one authenticated chunk at a time. See the module documentation for what
/// to do with the output when this fails.
pub fn decrypt(key: &DataKey, mut input: impl Read, mut output: impl Write) -> Result<RecordInfo> {
    let header = Header::read(&mut input)?;
    let aead = XChaCha20Poly1305::new(key.as_bytes().into());
    let mut decryptor = DecryptorBE32::from_aead(aead, (&header.nonce_prefix).into());
    let mut chunk = ChunkBuffer::new();
    let mut plaintext_len = 0u64;
    while !chunk.read_next(&mut input, CHUNK_SIZE + TAG_SIZE)? {
        decryptor
            .decrypt_next_in_place(&header.bytes, &mut chunk.bytes)
            .map_err(|_| Error::Authentication)?;
        plaintext_len += chunk.write_to(&mut output)?;
    }
    decryptor
        .decrypt_last_in_place(&header.bytes, &mut chunk.bytes)
        .map_err(|_| Error::Authentication)?;
    plaintext_len += chunk.write_to(&mut output)?;
    output.flush()?;
    Ok(RecordInfo {
        media_type: header.media_type,
        plaintext_len,
    })
}

/// The one chunk in memory, with one byte of look-ahead to tell the last
/// chunk from the others. It holds plaintext, so it is wiped when dropped —
/// as far as it was ever filled, since wiping all 64 KiB would cost more than
/// encrypting a small record.
struct ChunkBuffer {
    bytes: Vec<u8>,
    next: Option<u8>,
    used: usize,
}

impl ChunkBuffer {
    fn new() -> Self {
        ChunkBuffer {
            // A full sealed chunk, or a full plaintext chunk and its tag, plus
            // the look-ahead byte: never reallocates, so leaves no copies.
            bytes: Vec::with_capacity(CHUNK_SIZE + TAG_SIZE + 1),
            next: None,
            used: 0,
        }
    }

    /// Replaces the contents with the next `len` bytes of `input` (fewer
    /// only at its end). Returns whether this is the last chunk, which is
    /// the case when no byte follows it.
    fn read_next(&mut self, input: &mut impl Read, len: usize) -> io::Result<bool> {
        self.bytes.clear();
        self.bytes.extend(self.next.take());
        let wanted = (len + 1 - self.bytes.len()) as u64;
        input.by_ref().take(wanted).read_to_end(&mut self.bytes)?;
        self.used = self.used.max(self.bytes.len());
        if self.bytes.len() > len {
            self.next = self.bytes.pop();
            return Ok(false);
        }
        Ok(true)
    }

    /// Writes the (now sealed or opened) contents; returns how many bytes.
    fn write_to(&mut self, output: &mut impl Write) -> io::Result<u64> {
        self.used = self.used.max(self.bytes.len());
        output.write_all(&self.bytes)?;
        Ok(self.bytes.len() as u64)
    }
}

impl Drop for ChunkBuffer {
    fn drop(&mut self) {
        self.bytes.resize(self.used, 0);
        self.bytes.as_mut_slice().zeroize();
        self.next.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal(key: &DataKey, media_type: &str, plaintext: &[u8]) -> Vec<u8> {
        let mut ciphertext = Vec::new();
        let written = encrypt(key, media_type, plaintext, &mut ciphertext).expect("encrypt");
        assert_eq!(written, ciphertext.len() as u64);
        ciphertext
    }

    fn open(key: &DataKey, ciphertext: &[u8]) -> Result<Vec<u8>> {
        let mut plaintext = Vec::new();
        let info = decrypt(key, ciphertext, &mut plaintext)?;
        assert_eq!(info.plaintext_len, plaintext.len() as u64);
        Ok(plaintext)
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    const MEDIA: &str = "application/fhir+json";
    const HEADER_LEN: usize = 6 + MEDIA.len() + NONCE_PREFIX_LEN;
    const SEALED_CHUNK: usize = CHUNK_SIZE + TAG_SIZE;

    #[test]
    fn round_trips_at_chunk_boundaries() {
        let key = DataKey::generate().expect("rng");
        for len in [
            0,
            1,
            CHUNK_SIZE - 1,
            CHUNK_SIZE,
            CHUNK_SIZE + 1,
            3 * CHUNK_SIZE + 5,
        ] {
            let plaintext = data(len);
            let ciphertext = seal(&key, MEDIA, &plaintext);
            let chunks = len.div_ceil(CHUNK_SIZE).max(1);
            assert_eq!(
                ciphertext.len(),
                HEADER_LEN + len + chunks * TAG_SIZE,
                "{len}"
            );
            let mut out = Vec::new();
            let info = decrypt(&key, &ciphertext[..], &mut out).expect("decrypt");
            assert_eq!(out, plaintext, "{len}");
            assert_eq!(info.media_type, MEDIA);
        }
    }

    #[test]
    fn same_plaintext_encrypts_differently() {
        let key = DataKey::generate().expect("rng");
        assert_ne!(seal(&key, MEDIA, b"x"), seal(&key, MEDIA, b"x"));
    }

    #[test]
    fn wrong_key_fails() {
        let ciphertext = seal(&DataKey::generate().expect("rng"), MEDIA, b"HbA1c 6.4 %");
        let other = DataKey::generate().expect("rng");
        assert!(matches!(
            open(&other, &ciphertext),
            Err(Error::Authentication)
        ));
    }

    #[test]
    fn truncation_fails_everywhere() {
        let key = DataKey::generate().expect("rng");
        let ciphertext = seal(&key, MEDIA, &data(2 * CHUNK_SIZE + 10));
        // At every chunk boundary, inside chunks, inside the header, and to nothing.
        let cuts = [
            0,
            3,
            HEADER_LEN - 1,
            HEADER_LEN,
            HEADER_LEN + 1,
            HEADER_LEN + SEALED_CHUNK - 1,
            HEADER_LEN + SEALED_CHUNK,
            HEADER_LEN + 2 * SEALED_CHUNK,
            ciphertext.len() - 1,
        ];
        for cut in cuts {
            assert!(open(&key, &ciphertext[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn dropping_the_last_chunk_fails_even_when_chunks_are_full() {
        // 2 full chunks: the second one is "last"; dropping it leaves a
        // well-formed first chunk that was not sealed as last.
        let key = DataKey::generate().expect("rng");
        let ciphertext = seal(&key, MEDIA, &data(2 * CHUNK_SIZE));
        assert_eq!(ciphertext.len(), HEADER_LEN + 2 * SEALED_CHUNK);
        let first_only = &ciphertext[..HEADER_LEN + SEALED_CHUNK];
        assert!(matches!(open(&key, first_only), Err(Error::Authentication)));
    }

    #[test]
    fn reordering_duplicating_and_appending_fail() {
        let key = DataKey::generate().expect("rng");
        let ciphertext = seal(&key, MEDIA, &data(3 * CHUNK_SIZE + 5));
        let (header, body) = ciphertext.split_at(HEADER_LEN);
        let chunk = |i: usize| &body[i * SEALED_CHUNK..((i + 1) * SEALED_CHUNK).min(body.len())];

        let swapped = [header, chunk(1), chunk(0), chunk(2), chunk(3)].concat();
        assert!(matches!(open(&key, &swapped), Err(Error::Authentication)));

        let duplicated = [header, chunk(0), chunk(0), chunk(1), chunk(2), chunk(3)].concat();
        assert!(matches!(
            open(&key, &duplicated),
            Err(Error::Authentication)
        ));

        let skipped = [header, chunk(0), chunk(2), chunk(3)].concat();
        assert!(matches!(open(&key, &skipped), Err(Error::Authentication)));

        let appended = [&ciphertext[..], b"\0"].concat();
        assert!(matches!(open(&key, &appended), Err(Error::Authentication)));

        let appended_chunk = [&ciphertext[..], chunk(3)].concat();
        assert!(matches!(
            open(&key, &appended_chunk),
            Err(Error::Authentication)
        ));

        assert_eq!(
            open(&key, &ciphertext).expect("intact"),
            data(3 * CHUNK_SIZE + 5)
        );
    }

    #[test]
    fn media_type_is_bound() {
        let key = DataKey::generate().expect("rng");
        let ciphertext = seal(&key, "application/dicom", b"pixels");
        let relabelled = String::from_utf8_lossy(&ciphertext[..6 + 17])
            .replace("application/dicom", "application/dicon");
        let tampered = [relabelled.as_bytes(), &ciphertext[6 + 17..]].concat();
        assert_eq!(tampered.len(), ciphertext.len());
        assert!(matches!(open(&key, &tampered), Err(Error::Authentication)));
    }

    #[test]
    fn header_is_checked() {
        let key = DataKey::generate().expect("rng");
        let ciphertext = seal(&key, MEDIA, b"x");
        let mut other_version = ciphertext.clone();
        other_version[4] = 2;
        assert!(matches!(
            open(&key, &other_version),
            Err(Error::UnsupportedVersion(2))
        ));
        let mut bad_magic = ciphertext.clone();
        bad_magic[0] ^= 1;
        assert!(matches!(open(&key, &bad_magic), Err(Error::Format(_))));
        let mut bad_media = ciphertext;
        bad_media[6] = b'\n';
        assert!(matches!(open(&key, &bad_media), Err(Error::MediaType)));
    }

    #[test]
    fn media_types_are_validated() {
        let key = DataKey::generate().expect("rng");
        for bad in ["", "text/plain\n", "t\u{e9}xt/plain", &"a".repeat(256)] {
            let result = encrypt(&key, bad, &b"x"[..], Vec::new());
            assert!(matches!(result, Err(Error::MediaType)), "{bad:?}");
        }
        let longest = "a".repeat(MAX_MEDIA_TYPE_LEN);
        let ciphertext = seal(&key, &longest, b"x");
        let mut out = Vec::new();
        let info = decrypt(&key, &ciphertext[..], &mut out).expect("decrypt");
        assert_eq!(info.media_type, longest);
    }

    #[test]
    fn streams_between_files() {
        use std::io::{Seek, SeekFrom};
        // 4 MiB and a bit from a reader that is not a slice, through a file.
        let len = 4 * 1024 * 1024 + 3;
        let key = DataKey::generate().expect("rng");
        let mut file = tempfile::tempfile().expect("tempfile");
        let source = io::repeat(0x42).take(len as u64);
        let written = encrypt(&key, MEDIA, source, &mut file).expect("encrypt");
        assert_eq!(file.metadata().expect("stat").len(), written);
        file.seek(SeekFrom::Start(0)).expect("rewind");
        let mut sink = Counting(0);
        let info = decrypt(&key, &mut file, &mut sink).expect("decrypt");
        assert_eq!(info.plaintext_len, len as u64);
        assert_eq!(sink.0, len);
    }

    /// Counts what is written, checking it is all 0x42.
    struct Counting(usize);

    impl Write for Counting {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            assert!(buf.iter().all(|&b| b == 0x42));
            self.0 += buf.len();
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn data_key_does_not_print() {
        let key = DataKey::from_bytes([7; 32]);
        assert_eq!(format!("{key:?}"), "DataKey(..)");
    }
}
