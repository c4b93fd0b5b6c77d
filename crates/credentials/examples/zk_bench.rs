//! Prove and verify times and proof sizes of range presentations, on one
//! thread. The headline is the HbA1c two-sided predicate
//! (5.7 % ≤ HbA1c < 6.5 %); other rows show each proof size the ranges of
//! `docs/zk.md` lead to.
//!
//! `cargo run --release -p hygeia-credentials --example zk_bench [ROUNDS]`

use std::time::{Duration, Instant};

use hygeia_credentials::zk::hba1c::hba1c_claims;
use hygeia_credentials::zk::{
    prove, verify, Challenge, CommittedAttributeCredential, Range, RangePresentation, Requirement,
    TrustedIssuers,
};
use hygeia_identity::Keypair;

const LAB: &str = "did:web:lab.example";
const NOW: u64 = 1_750_000_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rounds: usize = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 200,
    };
    if rounds == 0 {
        return Err("ROUNDS must be at least 1".into());
    }
    let cases = [
        (
            "HbA1c 5.7 % to 6.4 % (two-sided)",
            Range::between(57, 65)?,
            61,
        ),
        ("HbA1c below 7.0 %", Range::below(70)?, 64),
        ("birth date: at least 18", Range::below(45_000)?, 40_000),
        ("two-sided, 2^20 wide", Range::between(0, 1 << 20)?, 1 << 19),
        ("one-sided v >= min", Range::at_least(10), 1_000),
    ];
    println!("{rounds} rounds each, one thread, holder-bound credentials");
    println!(
        "{:<36} {:>8} {:>12} {:>12} {:>7}",
        "predicate", "n x m", "prove (ms)", "verify (ms)", "bytes"
    );
    for (name, range, value) in cases {
        let row = measure(range, value, rounds)?;
        println!(
            "{:<36} {:>8} {:>12.3} {:>12.3} {:>7}",
            name,
            format!("{} x {}", range.proof_bits(), row.commitments),
            millis(row.prove),
            millis(row.verify),
            row.proof_bytes
        );
        if let Some(json) = row.json_bytes {
            println!("{:<36} presentation JSON {json} bytes", "");
        }
    }
    Ok(())
}

struct Row {
    prove: Duration,
    verify: Duration,
    proof_bytes: usize,
    commitments: usize,
    json_bytes: Option<usize>,
}

fn measure(range: Range, value: u64, rounds: usize) -> Result<Row, Box<dyn std::error::Error>> {
    let lab = Keypair::from_seed(&[1; 32]);
    let patient = Keypair::from_seed(&[2; 32]);
    let issuers = TrustedIssuers::new().with(LAB, lab.public_key());
    let claims = hba1c_claims(
        LAB,
        value,
        1_700_000_000,
        1_800_000_000,
        Some(patient.did()),
    );
    let requirement = Requirement {
        attribute: claims.attribute.clone(),
        loinc: claims.loinc.clone(),
        range,
    };
    let (credential, opening) = CommittedAttributeCredential::issue(&lab, &claims)?;
    let challenge = Challenge::random("did:web:care.example");

    // Warm up: generator tables are built on first use.
    let warm = prove(&credential, &opening, range, &challenge, Some(&patient))?;
    verify(&warm, &issuers, &requirement, &challenge, NOW)?;

    let mut prove_times = Vec::with_capacity(rounds);
    let mut verify_times = Vec::with_capacity(rounds);
    let mut last: RangePresentation = warm;
    for _ in 0..rounds {
        let start = Instant::now();
        let made = prove(&credential, &opening, range, &challenge, Some(&patient))?;
        prove_times.push(start.elapsed());
        let start = Instant::now();
        verify(&made, &issuers, &requirement, &challenge, NOW)?;
        verify_times.push(start.elapsed());
        last = made;
    }
    let commitments =
        usize::from(range.min_inclusive().is_some()) + usize::from(range.max_exclusive().is_some());
    Ok(Row {
        prove: median(&mut prove_times),
        verify: median(&mut verify_times),
        proof_bytes: last.proof_bytes().len(),
        commitments,
        json_bytes: (commitments == 2 && range.proof_bits() == 8).then(|| last.to_json().len()),
    })
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
