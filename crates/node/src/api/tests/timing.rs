//! Finding 9 of the outside attack: a read of a resource the requester may
//! not see and a read of one that does not exist answered alike, but not
//! in the same time (medians 2.3 vs 3.2 ms; `Provenance?target=` 2–3 vs
//! 1 ms), so timing told them apart.
//!
//! Not a benchmark: the test compares the two kinds of request measured
//! interleaved in the same run, against the noise of that run, so that a
//! loaded machine widens the tolerance instead of failing the test.

use std::time::{Duration, Instant};

use axum::http::Method;
use hygeia_identity::Keypair;

use super::Net;

/// Requests of each kind, after the warm-up.
const SAMPLES: usize = 240;
const WARM_UP: usize = 20;

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn quartiles(samples: &[Duration]) -> (Duration, Duration) {
    let mut sorted = samples.to_vec();
    sorted.sort();
    (sorted[sorted.len() / 4], sorted[sorted.len() * 3 / 4])
}

/// The share of (denied, missing) pairs in which the denied one took
/// longer (ties count half): 0.5 when neither is systematically slower.
fn superiority(a: &[Duration], b: &[Duration]) -> f64 {
    let mut wins = 0.0;
    for x in a {
        for y in b {
            if x > y {
                wins += 1.0;
            } else if x == y {
                wins += 0.5;
            }
        }
    }
    wins / (a.len() * b.len()) as f64
}

struct Verdict {
    report: String,
    same: bool,
}

/// Compares two interleaved series. They differ when the difference of
/// the medians exceeds the noise measured in this run — the spread of each
/// side (a quarter of the smaller interquartile range), the disagreement
/// between the medians of each side's odd and even requests (twice it),
/// and 100 µs for a quiet machine — *and* one side is systematically
/// slower: a random request of one kind outlasts one of the other in more
/// than 60 % (or less than 40 %) of pairs, where sampling noise moves that
/// share by about 2.5 points. A path that does less work (no decision, no
/// durable log) differs by a whole commit, far beyond both. Two criteria,
/// because commit times are often bimodal (a median may jump between the
/// modes by chance) and a loaded machine widens every spread.
fn compare(denied: &[Duration], missing: &[Duration]) -> Verdict {
    let halves = |s: &[Duration]| {
        let mut odd: Vec<Duration> = s.iter().skip(1).step_by(2).copied().collect();
        let mut even: Vec<Duration> = s.iter().step_by(2).copied().collect();
        let (a, b) = (median(&mut odd), median(&mut even));
        a.abs_diff(b)
    };
    let (mut d, mut m) = (denied.to_vec(), missing.to_vec());
    let (md, mm) = (median(&mut d), median(&mut m));
    let ((d1, d3), (m1, m3)) = (quartiles(denied), quartiles(missing));
    let spread = (d3 - d1).min(m3 - m1);
    let split = halves(denied).max(halves(missing));
    let tolerance = (spread / 4).max(split * 2).max(Duration::from_micros(100));
    let difference = md.abs_diff(mm);
    let p = superiority(denied, missing);
    Verdict {
        report: format!(
            "denied median {md:?} (IQR {d1:?}–{d3:?}), missing median {mm:?} (IQR {m1:?}–{m3:?}); \
             difference {difference:?}, tolerance {tolerance:?} (spread/4 {:?}, 2×split-half {:?}); \
             P(denied slower) {p:.2}",
            spread / 4,
            split * 2
        ),
        same: difference <= tolerance || (p - 0.5).abs() <= 0.1,
    }
}

async fn timed(net: &Net, token: &str, path: &str) -> (Duration, u16) {
    let started = Instant::now();
    let answer = net.fhir(token, Method::GET, path, None).await;
    (started.elapsed(), answer.status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_and_missing_reads_take_the_same_time() {
    let net = Net::start();
    let victim = net.patient("v1", "Lovelace", "1815-12-10", "female").await;
    let stranger = Keypair::generate();
    let token = net.token(&stranger, "TREAT", None).await;
    let missing_id = hex::encode(rand::random::<[u8; 16]>());
    let cases = [
        (
            format!("/fhir/Observation/{}", victim.observation),
            format!("/fhir/Observation/{missing_id}"),
        ),
        (
            format!("/fhir/Provenance?target=Observation/{}", victim.observation),
            format!("/fhir/Provenance?target=Observation/{missing_id}"),
        ),
        (
            format!("/fhir/Observation/{}/_history", victim.observation),
            format!("/fhir/Observation/{missing_id}/_history"),
        ),
    ];
    let mut failures = Vec::new();
    for (denied_path, missing_path) in &cases {
        let mut denied = Vec::with_capacity(SAMPLES);
        let mut missing = Vec::with_capacity(SAMPLES);
        let mut statuses = std::collections::BTreeSet::new();
        for i in 0..WARM_UP + SAMPLES {
            // Alternate which goes first, so that neither always follows
            // the other's commit.
            let order = if i % 2 == 0 {
                [(true, denied_path), (false, missing_path)]
            } else {
                [(false, missing_path), (true, denied_path)]
            };
            for (is_denied, path) in order {
                let (took, status) = timed(&net, &token, path).await;
                statuses.insert((is_denied, status));
                if i >= WARM_UP {
                    if is_denied {
                        denied.push(took);
                    } else {
                        missing.push(took);
                    }
                }
            }
        }
        let verdict = compare(&denied, &missing);
        eprintln!("{denied_path} vs {missing_path}: {}", verdict.report);
        let statuses: Vec<u16> = statuses.iter().map(|(_, s)| *s).collect();
        assert!(
            statuses.windows(2).all(|w| w[0] == w[1]),
            "{denied_path}: denied and missing answer differently: {statuses:?}"
        );
        if !verdict.same {
            failures.push(format!("{denied_path}: {}", verdict.report));
        }
    }
    assert!(
        failures.is_empty(),
        "denied and missing reads take different times:\n{}",
        failures.join("\n")
    );
}

#[test]
fn the_comparison_tells_a_commit_apart_from_noise() {
    // Two series with the same distribution (a jittery 2 ms) agree; one
    // with an extra millisecond does not.
    let series = |base: u64, seed: u64| -> Vec<Duration> {
        let mut x = seed;
        (0..SAMPLES)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                Duration::from_micros(base + (x >> 33) % 600)
            })
            .collect()
    };
    assert!(compare(&series(2000, 1), &series(2000, 2)).same);
    assert!(!compare(&series(3000, 1), &series(2000, 2)).same);
}
