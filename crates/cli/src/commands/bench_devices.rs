//! `hygeia bench devices`: signed device readings ingested per second over
//! HTTP, in batches (BENCHMARKS.md §9.1).
//!
//! Set-up (not timed): a manufacturer of the bench's own is put on the
//! trust list with the node's governance key, and D devices are attested,
//! each bound to a patient of its own. Every reading is signed before the
//! clock starts (the devices' work, not the node's). Timed: the D devices
//! send their batches at once, each one batch after the other on its own
//! connection; the node parses each batch, checks every reading's
//! signature, encrypts the batch into the vault and commits one ledger
//! entry per batch before it answers. Then, in the same run, the same
//! batches are parsed and verified in this process alone (no HTTP, vault or
//! ledger), for the ceiling of signature checking on this machine.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use hygeia_credentials::credential_types::VCT_DEVICE_ATTESTATION;
use hygeia_identity::Keypair;
use hygeia_state::devices::batch::example_observation;
use hygeia_state::devices::ReadingKind;
use rayon::prelude::*;
use serde_json::json;

use crate::client::{json_or_refusal, Client};

#[derive(Args)]
pub struct DeviceBenchArgs {
    #[arg(long)]
    node: String,
    /// The node's governance key file (start the node with `--governance
    /// <its did:key>`): it trusts the bench's manufacturer.
    #[arg(long)]
    governance_key: PathBuf,
    /// Devices sending at once, each on its own connection.
    #[arg(long, default_value_t = 8)]
    devices: usize,
    /// Batches each device sends, one after the other.
    #[arg(long, default_value_t = 10)]
    batches: usize,
    /// Readings per batch (at most 1,000).
    #[arg(long, default_value_t = 1000)]
    readings: usize,
}

pub fn run(args: DeviceBenchArgs) -> anyhow::Result<ExitCode> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let governance = Keypair::read_key_file(&args.governance_key)
        .with_context(|| format!("cannot use {}", args.governance_key.display()))?;
    let maker = Keypair::generate();
    Client::with_key(&args.node, governance).submit(
        "trust.issuer",
        json!({"issuer": maker.did().to_string(), "credential_type": VCT_DEVICE_ATTESTATION, "op": "add"}),
    )?;
    let start = now - 29 * 86_400;
    let per_device = args.batches * args.readings;
    let step = (28 * 86_400 / per_device.max(1) as i64).max(1);
    let mut devices = Vec::new();
    for _ in 0..args.devices {
        let patient = Keypair::generate();
        let device = Keypair::generate();
        let issued = super::device::issue_attestation(&maker, &device, now)?;
        super::device::attest(
            &args.node,
            &patient,
            &device,
            &issued,
            (start, now + 86_400),
            None,
        )?;
        devices.push(device);
    }
    let signing = Instant::now();
    let bodies: Vec<Vec<Vec<u8>>> = devices
        .par_iter()
        .map(|device| {
            let did = device.did().to_string();
            (0..args.batches)
                .map(|b| {
                    let observations: Vec<serde_json::Value> = (0..args.readings)
                        .map(|r| {
                            let i = (b * args.readings + r) as i64;
                            example_observation(
                                &did,
                                ReadingKind::Glucose,
                                start + 3600 + i * step,
                                80.0 + (i % 90) as f64,
                            )
                        })
                        .collect();
                    serde_json::to_vec(&super::device::signed_batch(device, &observations))
                        .expect("a batch serializes")
                })
                .collect()
        })
        .collect();
    let total = args.devices * per_device;
    let bytes: usize = bodies.iter().flatten().map(Vec::len).sum();
    println!(
        "signed {total} readings in {} batches ({:.1} MiB) in {:.1} s (not timed)",
        args.devices * args.batches,
        bytes as f64 / (1 << 20) as f64,
        signing.elapsed().as_secs_f64()
    );

    let clock = Instant::now();
    let latencies: Vec<Vec<f64>> = std::thread::scope(|scope| {
        let handles: Vec<_> = devices
            .iter()
            .zip(&bodies)
            .map(|(device, batches)| {
                let node = args.node.clone();
                scope.spawn(move || -> anyhow::Result<Vec<f64>> {
                    let client = Client::with_key(&node, hygeia_cli::licensing::copy_key(device));
                    let mut latencies = Vec::new();
                    for body in batches {
                        let t = Instant::now();
                        json_or_refusal(client.post_json("/v1/devices/batches", body.clone())?)?;
                        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                    Ok(latencies)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a sender thread"))
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    let elapsed = clock.elapsed().as_secs_f64();
    let mut all: Vec<f64> = latencies.into_iter().flatten().collect();
    all.sort_by(f64::total_cmp);
    let p = |q: f64| all[((all.len() - 1) as f64 * q).round() as usize];
    println!(
        "over HTTP: {total} readings in {elapsed:.2} s = {:.0} readings/s ({:.1} batches/s); batch latency p50 {:.0} ms, p99 {:.0} ms",
        total as f64 / elapsed,
        all.len() as f64 / elapsed,
        p(0.5),
        p(0.99)
    );

    let clock = Instant::now();
    let parsed: Vec<_> = bodies
        .iter()
        .flatten()
        .map(|body| hygeia_state::devices::batch::parse(body))
        .collect::<Result<_, _>>()?;
    let parse = clock.elapsed().as_secs_f64();
    let clock = Instant::now();
    for batch in &parsed {
        batch.verify()?;
    }
    let verify = clock.elapsed().as_secs_f64();
    println!(
        "in process, same batches: parse {:.0} readings/s, verify (parallel) {:.0} readings/s, both {:.0} readings/s",
        total as f64 / parse,
        total as f64 / verify,
        total as f64 / (parse + verify)
    );
    Ok(ExitCode::SUCCESS)
}
