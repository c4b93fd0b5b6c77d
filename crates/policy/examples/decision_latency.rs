//! Decision latency with a large consent state.
//!
//! Builds 100,000 grants across 10,000 patients (10 each, to clinicians and
//! organizations), then times `PolicyEngine::decide` on 100,000 random
//! requests, one at a time, and prints the percentiles.
//!
//! ```sh
//! cargo run --release -p hygeia-policy --example decision_latency
//! ```
//!
//! Options: `--grants N`, `--patients N`, `--requests N`, `--seed N`.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use hygeia_policy::{
    AccessRequest, Action, ConsentEvent, Effect, Grant, PolicyEngine, PurposeOfUse, RecordRef,
    Requester, Scope,
};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

const CLINICIANS: usize = 5_000;
const ORGANIZATIONS: usize = 100;
const CATEGORIES: [&str; 5] = ["lab", "mental-health", "imaging", "medication", "genomics"];
const TYPES: [&str; 4] = [
    "Observation",
    "DiagnosticReport",
    "Condition",
    "MedicationRequest",
];
const COUNTRIES: [&str; 4] = ["FR", "DE", "US", "BE"];
const T0: i64 = 1_735_689_600;
const YEAR: i64 = 365 * 86_400;

struct Options {
    grants: usize,
    patients: usize,
    requests: usize,
    seed: u64,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        grants: 100_000,
        patients: 10_000,
        requests: 100_000,
        seed: 7,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let n: u64 = value
            .parse()
            .map_err(|_| format!("{flag}: not a number: {value}"))?;
        let n_usize = usize::try_from(n).map_err(|e| e.to_string())?;
        match flag.as_str() {
            "--grants" => o.grants = n_usize,
            "--patients" => o.patients = n_usize.max(1),
            "--requests" => o.requests = n_usize.max(1),
            "--seed" => o.seed = n,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(o)
}

fn patient(i: usize) -> String {
    format!("did:key:zPatient{i:06}")
}

fn clinician(i: usize) -> String {
    format!("did:key:zClinician{i:05}")
}

fn organization(i: usize) -> String {
    format!("did:web:org{i:03}.example")
}

/// Each clinician belongs to 0, 1 or 2 organizations, fixed by its number.
fn organizations_of(i: usize) -> BTreeSet<String> {
    (0..i % 3)
        .map(|k| organization((i * 7 + k * 31) % ORGANIZATIONS))
        .collect()
}

fn random_grant(rng: &mut StdRng, id: usize, patient_index: usize) -> Grant {
    let grantee = if rng.gen_bool(0.1) {
        organization(rng.gen_range(0..ORGANIZATIONS))
    } else {
        clinician(rng.gen_range(0..CLINICIANS))
    };
    let scope = match rng.gen_range(0..4) {
        0 => Scope::resource_types([*TYPES.choose(rng).unwrap_or(&"Observation")]),
        1 => Scope::record_ids((0..3).map(|_| format!("rec-{}", rng.gen_range(0..50)))),
        _ => Scope::categories(CATEGORIES.choose_multiple(rng, 2).copied()),
    };
    let actions = if rng.gen_bool(0.2) {
        [Action::Read, Action::Write].into()
    } else {
        [Action::Read].into()
    };
    let not_before = T0 + rng.gen_range(-YEAR..YEAR / 2);
    let jurisdictions = if rng.gen_bool(0.2) {
        COUNTRIES
            .choose_multiple(rng, 2)
            .map(|c| c.to_string())
            .collect()
    } else {
        BTreeSet::new()
    };
    Grant {
        id: format!("grant-{id:07}"),
        patient: patient(patient_index),
        grantee,
        scope,
        actions,
        purpose: *[
            PurposeOfUse::Treatment,
            PurposeOfUse::Treatment,
            PurposeOfUse::Research,
            PurposeOfUse::Payment,
        ]
        .choose(rng)
        .unwrap_or(&PurposeOfUse::Treatment),
        not_before,
        not_after: not_before + rng.gen_range(30 * 86_400..2 * YEAR),
        jurisdictions,
    }
}

fn random_request(
    rng: &mut StdRng,
    engine: &PolicyEngine,
    members: &HashMap<String, usize>,
    o: &Options,
) -> AccessRequest {
    let patient_index = rng.gen_range(0..o.patients);
    let patient_did = patient(patient_index);
    // Half the requests come from a grantee of the patient (or a member of a
    // grantee organization), half from any clinician.
    let mut grantees: Vec<String> = engine
        .consents()
        .grants_of(&patient_did)
        .map(|g| g.grantee.clone())
        .collect();
    // `grants_of` has no fixed order; the same seed must give the same run.
    grantees.sort();
    let clinician_index = match grantees.choose(rng) {
        Some(g) if rng.gen_bool(0.5) => g
            .strip_prefix("did:key:zClinician")
            .and_then(|n| n.parse().ok())
            // An organization: one of its members.
            .unwrap_or_else(|| members.get(g).copied().unwrap_or(0)),
        _ => rng.gen_range(0..CLINICIANS),
    };
    AccessRequest {
        requester: Requester {
            did: clinician(clinician_index),
            roles: ["clinician".to_owned()].into(),
            organizations: organizations_of(clinician_index),
            suspended: rng.gen_bool(0.01),
            jurisdiction: Some(COUNTRIES.choose(rng).unwrap_or(&"FR").to_string()),
            licence: Some(hygeia_policy::Licence {
                jurisdiction: "FR".to_owned(),
                profession: "physician".to_owned(),
            }),
        },
        patient: patient_did,
        action: if rng.gen_bool(0.9) {
            Action::Read
        } else {
            Action::Write
        },
        purpose: *[
            PurposeOfUse::Treatment,
            PurposeOfUse::EmergencyTreatment,
            PurposeOfUse::Research,
            PurposeOfUse::Payment,
        ]
        .choose(rng)
        .unwrap_or(&PurposeOfUse::Treatment),
        record: RecordRef {
            id: format!("rec-{}", rng.gen_range(0..50)),
            resource_type: TYPES.choose(rng).unwrap_or(&"Observation").to_string(),
            category: Some(CATEGORIES.choose(rng).unwrap_or(&"lab").to_string()),
        },
        time: T0 + rng.gen_range(0..YEAR / 2),
        break_glass_justification: rng
            .gen_bool(0.05)
            .then(|| "patient unconscious in the emergency department".to_owned()),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() -> Result<(), String> {
    let o = options()?;
    let mut rng = StdRng::seed_from_u64(o.seed);

    let started = Instant::now();
    let mut engine = PolicyEngine::new();
    for id in 0..o.grants {
        let patient_index = id % o.patients;
        let grant = random_grant(&mut rng, id, patient_index);
        let event = ConsentEvent::Grant {
            author: grant.patient.clone(),
            grant,
        };
        engine.apply(&event).map_err(|e| e.to_string())?;
    }
    println!(
        "state: {} unrevoked grants across {} patients, built in {:.2?}",
        engine.consents().unrevoked_len(),
        o.patients,
        started.elapsed()
    );

    let mut members = HashMap::new();
    for i in 0..CLINICIANS {
        for org in organizations_of(i) {
            members.entry(org).or_insert(i);
        }
    }
    let requests: Vec<AccessRequest> = (0..o.requests)
        .map(|_| random_request(&mut rng, &engine, &members, &o))
        .collect();
    let candidates: Vec<usize> = requests
        .iter()
        .map(|r| {
            std::iter::once(&r.requester.did)
                .chain(&r.requester.organizations)
                .map(|g| engine.consents().grants_between(&r.patient, g).count())
                .sum::<usize>()
        })
        .collect();

    // Warm up caches and lazily initialized statics.
    for r in requests.iter().take(1_000) {
        std::hint::black_box(engine.decide(r));
    }

    let mut latencies = Vec::with_capacity(requests.len());
    let mut by_candidates: [Vec<Duration>; 3] = Default::default();
    let (mut permits, mut break_glass, mut forbidden) = (0usize, 0usize, 0usize);
    let total = Instant::now();
    for (r, &n) in requests.iter().zip(&candidates) {
        let start = Instant::now();
        let decision = engine.decide(r);
        let elapsed = start.elapsed();
        latencies.push(elapsed);
        by_candidates[n.min(2)].push(elapsed);
        match decision.effect {
            Effect::Permit if decision.break_glass => break_glass += 1,
            Effect::Permit => permits += 1,
            Effect::Deny if !decision.reasons.is_empty() => forbidden += 1,
            Effect::Deny => {}
        }
        if !decision.errors.is_empty() {
            return Err(format!("evaluation errors: {:?}", decision.errors));
        }
    }
    let wall = total.elapsed();
    latencies.sort();
    let mean = wall / u32::try_from(requests.len()).map_err(|e| e.to_string())?;

    println!(
        "requests: {} (mean {:.2} candidate grants each); consent permits {}, break-glass {}, forbidden {}, default denies {}",
        requests.len(),
        candidates.iter().sum::<usize>() as f64 / requests.len() as f64,
        permits,
        break_glass,
        forbidden,
        requests.len() - permits - break_glass - forbidden
    );
    println!(
        "decide latency: p50 {:.1?}  p90 {:.1?}  p99 {:.1?}  p99.9 {:.1?}  max {:.1?}  mean {:.1?}",
        percentile(&latencies, 50.0),
        percentile(&latencies, 90.0),
        percentile(&latencies, 99.0),
        percentile(&latencies, 99.9),
        latencies.last().copied().unwrap_or_default(),
        mean,
    );
    for (n, group) in by_candidates.iter_mut().enumerate() {
        if group.is_empty() {
            continue;
        }
        group.sort();
        println!(
            "  with {}{} candidate grant(s): {} requests, p50 {:.1?}  p99 {:.1?}",
            n,
            if n == 2 { "+" } else { "" },
            group.len(),
            percentile(group, 50.0),
            percentile(group, 99.0),
        );
    }
    let p99 = percentile(&latencies, 99.0);
    println!(
        "goal p99 < 50 µs: {}",
        if p99 < Duration::from_micros(50) {
            "met"
        } else {
            "NOT met"
        }
    );
    Ok(())
}
