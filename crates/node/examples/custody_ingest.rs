//! CPU per record of the vault work of a FHIR ingest: `store_deferred` of
//! a FHIR-sized resource for one of many patients, with a `sync` (the
//! group commit) after every 100, as a transaction Bundle of 100 does.
//!
//! `cargo run -p hygeia-node --example custody_ingest [records] [patients]`
//! (defaults 3000 and 300). Reports the CPU time of this thread (from
//! `/proc/thread-self/schedstat`, so other processes' load counts for
//! less than in wall time) per record, over rounds after a first warm one.

use std::time::Instant;

use hygeia_node::custody::Custody;
use hygeia_vault::RecipientKey;

const BUNDLE: usize = 100;
/// Key wraps timed for the comparison at the end.
const WRAPS: usize = 5000;

fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let records: usize = args.next().map_or(Ok(3000), |a| a.parse())?;
    let patients: usize = args.next().map_or(Ok(300), |a| a.parse())?;
    let dir = tempfile::tempdir()?;
    let custody = Custody::open(dir.path())?;
    let keys: Vec<_> = (0..patients)
        .map(|_| RecipientKey::generate().map(|k| *k.public_key()))
        .collect::<Result<_, _>>()?;
    let body = format!(
        r#"{{"resourceType":"Observation","status":"final","code":{{"coding":[{{"system":"http://loinc.org","code":"4548-4"}}]}},"valueQuantity":{{"value":6.4,"unit":"%"}},"note":"{}"}}"#,
        "x".repeat(700)
    );
    // A first round (every patient's keys made once), not counted.
    let mut held = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        held.push(custody.store_deferred("application/fhir+json", body.as_bytes(), key)?);
        if i % BUNDLE == BUNDLE - 1 {
            custody.sync()?;
            held.clear();
        }
    }
    custody.sync()?;
    held.clear();
    let (cpu, wall) = (thread_cpu_ns(), Instant::now());
    let mut in_sync = 0u64;
    for i in 0..records {
        let key = &keys[i % patients];
        held.push(custody.store_deferred("application/fhir+json", body.as_bytes(), key)?);
        if i % BUNDLE == BUNDLE - 1 {
            let before = thread_cpu_ns();
            custody.sync()?;
            in_sync += thread_cpu_ns() - before;
            held.clear();
        }
    }
    let (cpu, wall) = (thread_cpu_ns() - cpu, wall.elapsed());
    println!(
        "{records} records, {patients} patients: {:.1} µs CPU per record ({:.1} µs of it in sync), {:.1} µs wall",
        cpu as f64 / records as f64 / 1e3,
        in_sync as f64 / records as f64 / 1e3,
        wall.as_secs_f64() * 1e6 / records as f64,
    );
    // What one key wrap costs here, for comparison: an HPKE seal (one
    // X25519 key generation and one agreement) and a group key wrap.
    let (record, data_key) = (
        hygeia_vault::BlobId::of(b"record"),
        hygeia_vault::DataKey::generate()?,
    );
    let group = hygeia_vault::group::GroupId::of(b"group");
    let cpu = thread_cpu_ns();
    for key in keys.iter().cycle().take(WRAPS) {
        hygeia_vault::wrap(&data_key, &record, key)?;
    }
    let hpke = thread_cpu_ns() - cpu;
    let cpu = thread_cpu_ns();
    for key in keys.iter().cycle().take(WRAPS) {
        hygeia_vault::group::wrap(&data_key, &record, key, &group, &data_key)?;
    }
    let aead = thread_cpu_ns() - cpu;
    let n = WRAPS as f64;
    println!(
        "one HPKE seal: {:.1} µs CPU; one group key wrap: {:.1} µs CPU",
        hpke as f64 / n / 1e3,
        aead as f64 / n / 1e3
    );
    Ok(())
}
