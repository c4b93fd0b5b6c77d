//! Status check latency with Bitstring Status Lists.
//!
//! A 131,072-entry revocation list with 3,000 revoked entries is issued as
//! an `eddsa-jcs-2022` status list credential. Measured, as medians:
//!
//! - a cold check: parse the fetched credential bytes, verify its proof and
//!   validity, decode the list, look up one entry;
//! - the parts of it: JSON parse, `StatusList::decode` alone;
//! - a warm check: `check` against a cached `VerifiedStatusList`.
//!
//! Run with `cargo run --release -p hygeia-credentials --example status_list_bench`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use hygeia_credentials::data_integrity::resolve_did_key_method;
use hygeia_credentials::status_list::{StatusList, StatusListEntry, StatusPurpose, MIN_ENTRIES};
use hygeia_credentials::status_list_credential::{check, CredentialStatus, StatusListCredential};
use hygeia_identity::Keypair;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use time::macros::datetime;

const URL: &str = "https://issuer.example/status/1";
const REVOKED: usize = 3_000;
const COLD_RUNS: usize = 501;
const WARM_BATCHES: usize = 501;
const WARM_BATCH: usize = 1_000;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    // One untimed run warms caches (and the did:key parse cache, as in a
    // node that has seen the issuer before).
    black_box(f());
    median(
        (0..runs)
            .map(|_| {
                let start = Instant::now();
                black_box(f());
                start.elapsed()
            })
            .collect(),
    )
}

fn main() {
    let key = Keypair::from_seed(&[7; 32]);
    let mut rng = StdRng::seed_from_u64(42);
    let mut list = StatusList::new(MIN_ENTRIES).expect("list size");
    let mut revoked = Vec::with_capacity(REVOKED);
    while list.count_set() < REVOKED {
        let index = rng.gen_range(0..MIN_ENTRIES);
        if !list.get(index).expect("in range") {
            list.set(index, true).expect("in range");
            revoked.push(index);
        }
    }
    let issued = StatusListCredential {
        id: URL.into(),
        issuer: key.did().to_string(),
        purpose: StatusPurpose::Revocation,
        list,
        valid_from: Some(datetime!(2025-01-01 00:00 UTC)),
        valid_until: Some(datetime!(2026-01-01 00:00 UTC)),
    }
    .issue(
        &key,
        &key.did().verification_method(),
        datetime!(2025-01-01 00:00 UTC),
    )
    .expect("issue");
    let bytes = serde_json::to_vec(&issued).expect("serialize");
    let encoded = issued["credentialSubject"]["encodedList"]
        .as_str()
        .expect("encodedList")
        .to_string();
    let now = datetime!(2025-06-01 00:00 UTC);
    let revoked_entry = StatusListEntry::new(URL, StatusPurpose::Revocation, revoked[0]);

    println!(
        "list: {MIN_ENTRIES} entries, {REVOKED} revoked; encodedList {} bytes, credential {} bytes",
        encoded.len(),
        bytes.len()
    );

    let cold = time(COLD_RUNS, || {
        let credential: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        let verified =
            StatusListCredential::verify(&credential, now, resolve_did_key_method).expect("verify");
        check(&revoked_entry, &verified).expect("check")
    });
    let parse = time(COLD_RUNS, || {
        serde_json::from_slice::<serde_json::Value>(&bytes).expect("json")
    });
    let verify = time(COLD_RUNS, || {
        StatusListCredential::verify(&issued, now, resolve_did_key_method).expect("verify")
    });
    let decode = time(COLD_RUNS, || StatusList::decode(&encoded).expect("decode"));

    let cached =
        StatusListCredential::verify(&issued, now, resolve_did_key_method).expect("verify");
    assert_eq!(
        check(&revoked_entry, &cached).expect("check"),
        CredentialStatus::Revoked
    );
    let entries: Vec<StatusListEntry> = (0..WARM_BATCH)
        .map(|_| {
            StatusListEntry::new(
                URL,
                StatusPurpose::Revocation,
                rng.gen_range(0..MIN_ENTRIES),
            )
        })
        .collect();
    let warm_batch = time(WARM_BATCHES, || {
        entries
            .iter()
            .filter(|e| check(e, &cached) == Ok(CredentialStatus::Revoked))
            .count()
    });

    println!("median over {COLD_RUNS} runs:");
    println!(
        "  cold check (parse + verify proof and dates + decode + lookup): {:>9.1} µs",
        micros(cold)
    );
    println!(
        "    of which JSON parse of the credential:                     {:>9.1} µs",
        micros(parse)
    );
    println!(
        "    of which verify + decode (StatusListCredential::verify):   {:>9.1} µs",
        micros(verify)
    );
    println!(
        "    of which StatusList::decode alone:                         {:>9.1} µs",
        micros(decode)
    );
    println!(
        "  warm check (cached decoded list), per lookup:                 {:>9.1} ns",
        warm_batch.as_nanos() as f64 / WARM_BATCH as f64
    );
}

fn micros(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1_000.0
}
