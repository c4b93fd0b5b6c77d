//! Prove and verify times and proof size of the HbA1c two-sided predicate
//! (5.7 % ≤ HbA1c < 6.5 %: a 32-bit Bulletproof aggregated over two
//! commitments), on one thread.
//!
//! `cargo run --release -p hygeia-credentials --example zk_bench [ROUNDS]`

use std::time::{Duration, Instant};

use hygeia_credentials::zk::hba1c::{hba1c_between, hba1c_claims};
use hygeia_credentials::zk::{
    prove, verify, Challenge, CommittedAttributeCredential, RangePresentation, TrustedIssuers,
};
use hygeia_identity::Keypair;

const LAB: &str = "did:web:lab.example";
const NOW: u64 = 1_750_000_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rounds: usize = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 200,
    };
    let lab = Keypair::from_seed(&[1; 32]);
    let patient = Keypair::from_seed(&[2; 32]);
    let issuers = TrustedIssuers::new().with(LAB, lab.public_key());
    let requirement = hba1c_between(57, 65)?;
    let claims = hba1c_claims(LAB, 61, 1_700_000_000, 1_800_000_000, Some(patient.did()));
    let (credential, opening) = CommittedAttributeCredential::issue(&lab, &claims)?;
    let challenge = Challenge::random("did:web:care.example");

    // Warm up: generator tables are built on first use.
    let warm = prove(
        &credential,
        &opening,
        requirement.range,
        &challenge,
        Some(&patient),
    )?;
    verify(&warm, &issuers, &requirement, &challenge, NOW)?;

    let mut prove_times = Vec::with_capacity(rounds);
    let mut verify_times = Vec::with_capacity(rounds);
    let mut presentation: Option<RangePresentation> = None;
    for _ in 0..rounds {
        let start = Instant::now();
        let made = prove(
            &credential,
            &opening,
            requirement.range,
            &challenge,
            Some(&patient),
        )?;
        prove_times.push(start.elapsed());
        let start = Instant::now();
        verify(&made, &issuers, &requirement, &challenge, NOW)?;
        verify_times.push(start.elapsed());
        presentation = Some(made);
    }
    let Some(presentation) = presentation else {
        return Err("no rounds were run".into());
    };
    let wire = presentation.to_json();
    let start = Instant::now();
    for _ in 0..rounds {
        RangePresentation::parse(wire.as_bytes())?;
    }
    let parse_each = start.elapsed() / rounds as u32;

    println!(
        "predicate: {} ({}), {} rounds, one thread",
        requirement.range, requirement.attribute, rounds
    );
    println!(
        "prove   median {:>9.3} ms",
        millis(median(&mut prove_times))
    );
    println!(
        "verify  median {:>9.3} ms  (issuer and holder signatures and the proof)",
        millis(median(&mut verify_times))
    );
    println!("parse   mean   {:>9.3} ms", millis(parse_each));
    println!(
        "proof   {} bytes  (range {} bits x {} commitments)",
        presentation.proof_bytes().len(),
        requirement.range.proof_bits(),
        2
    );
    println!(
        "presentation JSON {} bytes (credential, challenge, proof and holder signature)",
        wire.len()
    );
    Ok(())
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
