//! Throughput of the vault's streaming encryption against the raw AEAD it is
//! built on (XChaCha20-Poly1305 from the same crate, one call over the whole
//! buffer), on the same data, for a small and an imaging-sized record.
//!
//! ```sh
//! cargo run --release -p hygeia-vault --example vault_throughput
//! ```

use std::time::{Duration, Instant};

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hygeia_vault::{decrypt, encrypt, unwrap, wrap, BlobId, DataKey, RecipientKey};

const MEDIA: &str = "application/dicom";
/// Each measurement repeats until it has run at least this long.
const MIN_TIME: Duration = Duration::from_millis(300);

fn main() -> Result<(), hygeia_vault::Error> {
    println!(
        "{:>8}  {:>10}  {:>12}  {:>12}  {:>6}",
        "size", "operation", "vault MB/s", "raw MB/s", "ratio"
    );
    for size in [4 * 1024, 64 * 1024 * 1024] {
        measure(size)?;
    }
    measure_wrapping()
}

/// Rounds of (vault, raw) measurements. Each round measures both back to
/// back, so a change in the machine's speed (a noisy neighbour, frequency
/// scaling) hits both sides of that round's ratio; the median over rounds
/// is reported.
const ROUNDS: usize = 9;

fn measure(size: usize) -> Result<(), hygeia_vault::Error> {
    let plaintext: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let key = DataKey::generate()?;
    let aead = XChaCha20Poly1305::new(key.as_bytes().into());
    let nonce = XNonce::default();
    let mut ciphertext = Vec::with_capacity(size + size / 4096 + 1024);
    let mut output = Vec::with_capacity(size);
    let mut buffer = plaintext.clone();
    let mut tag = Default::default();
    let mut sealed = Vec::new();
    let mut rounds = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        // The vault: STREAM over 64 KiB chunks, from a reader to a writer.
        let vault_encrypt = rate(size, || {
            ciphertext.clear();
            encrypt(&key, MEDIA, &plaintext[..], &mut ciphertext).map(|_| ())
        })?;
        // The raw AEAD: the whole buffer in one call (copied in first, as
        // the vault copies each chunk into its buffer).
        let raw_encrypt = rate(size, || {
            buffer.copy_from_slice(&plaintext);
            tag = aead
                .encrypt_in_place_detached(&nonce, MEDIA.as_bytes(), &mut buffer)
                .map_err(|_| hygeia_vault::Error::Authentication)?;
            Ok(())
        })?;
        sealed.clone_from(&buffer);
        let vault_decrypt = rate(size, || {
            output.clear();
            decrypt(&key, &ciphertext[..], &mut output).map(|_| ())
        })?;
        let raw_decrypt = rate(size, || {
            buffer.copy_from_slice(&sealed);
            aead.decrypt_in_place_detached(&nonce, MEDIA.as_bytes(), &mut buffer, &tag)
                .map_err(|_| hygeia_vault::Error::Authentication)
        })?;
        assert_eq!(output, plaintext);
        assert_eq!(buffer, plaintext);
        rounds.push([vault_encrypt, raw_encrypt, vault_decrypt, raw_decrypt]);
    }

    let label = human(size);
    for (operation, vault, raw) in [("encrypt", 0, 1), ("decrypt", 2, 3)] {
        let median = |mut values: Vec<f64>| {
            values.sort_by(f64::total_cmp);
            values[values.len() / 2]
        };
        let ratio = median(rounds.iter().map(|r| r[vault] / r[raw]).collect());
        println!(
            "{label:>8}  {operation:>10}  {:>12.1}  {:>12.1}  {ratio:>6.2}",
            median(rounds.iter().map(|r| r[vault]).collect()),
            median(rounds.iter().map(|r| r[raw]).collect()),
        );
    }
    Ok(())
}

fn measure_wrapping() -> Result<(), hygeia_vault::Error> {
    let holder = RecipientKey::generate()?;
    let key = DataKey::generate()?;
    let record = BlobId::of(b"record");
    let wrapped = wrap(&key, &record, holder.public_key())?;
    let per_second = |elapsed: Duration, count: u32| f64::from(count) / elapsed.as_secs_f64();
    let (elapsed, count) = repeat(|| wrap(&key, &record, holder.public_key()).map(|_| ()))?;
    println!("HPKE wrap:   {:.0} data keys/s", per_second(elapsed, count));
    let (elapsed, count) = repeat(|| unwrap(&wrapped, &record, &holder).map(|_| ()))?;
    println!("HPKE unwrap: {:.0} data keys/s", per_second(elapsed, count));
    Ok(())
}

/// Plaintext megabytes (10^6 bytes) per second.
fn rate(
    size: usize,
    run: impl FnMut() -> Result<(), hygeia_vault::Error>,
) -> Result<f64, hygeia_vault::Error> {
    let (elapsed, count) = repeat(run)?;
    Ok(size as f64 * f64::from(count) / elapsed.as_secs_f64() / 1e6)
}

fn repeat(
    mut run: impl FnMut() -> Result<(), hygeia_vault::Error>,
) -> Result<(Duration, u32), hygeia_vault::Error> {
    run()?; // warm up
    let start = Instant::now();
    let mut count = 0u32;
    while count < 3 || start.elapsed() < MIN_TIME {
        run()?;
        count += 1;
    }
    Ok((start.elapsed(), count))
}

fn human(size: usize) -> String {
    if size >= 1024 * 1024 {
        format!("{} MiB", size / (1024 * 1024))
    } else {
        format!("{} KiB", size / 1024)
    }
}
