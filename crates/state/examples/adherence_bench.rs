//! Adherence evaluation at scale (BENCHMARKS.md §9.2): N participants, each
//! with an attested device and 90 days of `device.batch` entries (readings
//! on about 85 % of the days, decided by a fixed pseudo-random sequence),
//! one glucose rule over the 90 days; then the time to evaluate the rule
//! for every participant, twice:
//!
//! - `evaluate`: `LedgerState::evaluate_adherence` alone, for all N;
//! - `apply`: N signed `adherence.evaluate` transactions (parsed and their
//!   signatures checked before the clock starts) applied to the state, as
//!   the sequencer does: the rule, the result kept, `AdherenceMet` emitted.
//!
//! cargo run --release -p hygeia-state --example adherence_bench -- [N] [RUNS]

use std::time::Instant;

use hygeia_credentials::credential_types::VCT_DEVICE_ATTESTATION;
use hygeia_identity::Keypair;
use hygeia_state::devices::{DAY_SECS, DEVICE_ATTEST, DEVICE_BATCH};
use hygeia_state::testing::{copy, device_presentation, did, Network};
use serde_json::json;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let setup = Instant::now();
    let mut net = Network::new();
    let manufacturer = Keypair::from_seed(&[42; 32]);
    let governance = copy(&net.cast.governance);
    net.submit(
        &governance,
        "trust.issuer",
        json!({"issuer": did(&manufacturer), "credential_type": VCT_DEVICE_ATTESTATION, "op": "add"}),
    )
    .unwrap();
    let audience = net.state.network.id().unwrap().to_owned();
    let first_day = net.now / DAY_SECS - 91;
    let start = first_day * DAY_SECS;
    let node = copy(&net.node);
    let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut subjects = Vec::with_capacity(n);
    for i in 0..n {
        let patient = Keypair::generate();
        let device = Keypair::generate();
        let presentation = device_presentation(
            &manufacturer,
            &device,
            &audience,
            &did(&patient),
            net.now,
            None,
        );
        net.submit(
            &patient,
            DEVICE_ATTEST,
            json!({"device": did(&device), "presentation": presentation, "from": start, "until": start + 100 * DAY_SECS}),
        )
        .unwrap_or_else(|e| panic!("attest {i}: {e}"));
        // Three batches of 30 days.
        for part in 0..3i64 {
            let days: Vec<i64> = (part * 30..part * 30 + 30)
                .filter(|_| next() % 100 < 85)
                .map(|d| first_day + d)
                .collect();
            if days.is_empty() {
                continue;
            }
            let from = days[0] * DAY_SECS + 3600;
            let to = days[days.len() - 1] * DAY_SECS + 7200;
            let mut root = [0u8; 32];
            root[..8].copy_from_slice(&(i as u64).to_be_bytes());
            root[8..16].copy_from_slice(&(part as u64).to_be_bytes());
            let mut commitment = root;
            commitment[31] = 1;
            net.submit(
                &node,
                DEVICE_BATCH,
                json!({"device": did(&device), "root": hex::encode(root), "count": days.len() * 3,
                       "from": from, "to": to, "days": [{"kind": "glucose", "days": days}],
                       "commitment": hex::encode(commitment)}),
            )
            .unwrap_or_else(|e| panic!("batch {i}/{part}: {e}"));
        }
        subjects.push(did(&patient));
    }
    let owner = Keypair::generate();
    let rule = "ab".repeat(32);
    net.submit(
        &owner,
        "adherence.rule",
        json!({"rule": rule, "kind": "glucose", "start_day": first_day, "end_day": first_day + 89, "min_percent": 80}),
    )
    .unwrap();
    let txs: Vec<_> = subjects
        .iter()
        .map(|s| {
            net.sign(
                &owner,
                "adherence.evaluate",
                json!({"rule": rule, "subject": s}),
            )
            .unwrap()
        })
        .collect();
    println!(
        "set-up: {n} participants, {} log entries, {:.1} s",
        net.next,
        setup.elapsed().as_secs_f64()
    );
    let entry = net.state.devices.rule(&rule).unwrap().clone();
    for run in 0..runs {
        let t = Instant::now();
        let mut met = 0;
        for s in &subjects {
            met += usize::from(net.state.evaluate_adherence(&rule, &entry, s, 0).met);
        }
        let evaluate = t.elapsed();
        let mut state = net.state.clone();
        let t = Instant::now();
        for (i, tx) in txs.iter().enumerate() {
            state.apply(net.next + i as u64, tx).unwrap();
        }
        let apply = t.elapsed();
        println!(
            "run {run}: evaluate {n} × 90 days: {:.3} s ({met} met); apply {n} adherence.evaluate: {:.3} s",
            evaluate.as_secs_f64(),
            apply.as_secs_f64()
        );
    }
}
