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
use crate::timing::compare;

/// Requests of each kind, after the warm-up.
const SAMPLES: usize = 240;
const WARM_UP: usize = 20;

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
