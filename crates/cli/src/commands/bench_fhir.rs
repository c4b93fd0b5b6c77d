//! `hygeia bench fhir`: the FHIR API under load, with nothing registered
//! on the node but a licensing board. Patients (keys made here) write their
//! own synthetic histories as transaction Bundles with their own tokens,
//! each grants a bench clinician read access with a signed
//! `consent.grant`, then the licensed clinician reads and searches for a
//! fixed time. Requests go through the
//! request driver of `hygeia bench ingest` and `bench reads`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use hygeia_fhir::synthetic::{generate_patient, transaction_bundles};
use hygeia_identity::Keypair;
use hygeia_ledger::TxBuilder;
use hygeia_policy::PurposeOfUse;
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::bench::drive;
mod postgres;

use super::fhir::{fetch_token, http_client, unix_now, NodeInfo};

/// Benchmark the FHIR API: ingest, consent, read by id, search
///
/// The bench makes its own keys, one per patient, one for a clinician and
/// one for a licensing board, derived from --seed. Reads for treatment need
/// a licence: with the node's --governance-key, the bench puts its board on
/// the trust list and licenses its clinician first. Phases:
///
///   ingest   each patient gets a token and writes their own synthetic
///            history (--per-patient resources, the Patient first) as
///            transaction Bundles of --per-bundle entries; --clients
///            patients write at once. Reports resources/s over the wall
///            time (all resources / time), and p50/p99 Bundle latency.
///   consent  each patient grants the clinician reads of their
///            Observations (purpose TREAT, 7 days): consent.grant
///            transactions signed by the patients, POSTed to
///            /v1/transactions/batch in chunks of 500.
///   read     for --seconds, --clients clients each read a random
///            Observation of a random patient (GET /fhir/Observation/<id>)
///            with the clinician's token, one request after the other.
///   search   for --seconds, the same with searches, alternately
///            Observation?patient=Patient/<id>&code=http://loinc.org|<code>
///            (a code the patient has) and
///            Observation?patient=Patient/<id>&date=ge2020-01-01&_count=20.
///   denied-vs-missing (with --denied-vs-missing N)
///            a stranger (a fresh key with a valid token and no grant) asks,
///            one request at a time, for a patient's Observation it may not
///            see and for an id that does not exist, N pairs of each of
///            GET Observation/<id>, Provenance?target=Observation/<id> and
///            Observation/<id>/_history, interleaved, the order alternating,
///            after 50 warm-up pairs. Reports both medians, the difference,
///            the noise of the run, and whether the answers differed in
///            anything but time (they must not: both are the same 404).
///
/// Every request is a policy decision logged on the ledger before the answer
/// leaves, as in production.
///
/// With --postgres <dsn> instead of --node, the same data set goes into
/// PostgreSQL as JSONB (GIN and B-tree indexes on the searched parameters)
/// and the same reads and searches run against it from the same clients,
/// with no consent and no ledger: the side-by-side figure of BENCHMARKS.md
/// (bench/fhir-postgres.sh runs both). Each phase prints a line when it ends; at the
/// end, one JSON line per phase (requests/s, p50, p99 in ms, and the share of
/// answers that were not 2xx), for BENCHMARKS.md.
///
/// Tokens are fetched before each phase and last 15 minutes: a phase must
/// end within that (--seconds is at most 600).
#[derive(Args)]
#[command(verbatim_doc_comment)]
pub struct FhirBenchArgs {
    /// The node's URL.
    #[arg(
        long,
        required_unless_present = "postgres",
        conflicts_with = "postgres"
    )]
    node: Option<String>,
    /// Run against PostgreSQL instead of a node (libpq-style connection
    /// string): the table `hygeia_bench_fhir` is (re)created and loaded
    /// unless --skip-ingest.
    #[arg(long)]
    postgres: Option<String>,
    /// Patients, each with their own key and token.
    #[arg(long, default_value_t = 1000)]
    patients: usize,
    /// Resources per patient, the Patient included.
    #[arg(long, default_value_t = 100)]
    per_patient: usize,
    /// Entries per transaction Bundle (1 to 1000).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1000))]
    per_bundle: u64,
    /// Concurrent clients, each with its own connection.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Seconds each of the read and search phases runs (1 to 600).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=600))]
    seconds: u64,
    /// Skip the ingest and consent phases: reuse the patients, resources and
    /// grants of an earlier run with the same --seed, --patients and
    /// --per-patient (on the same node).
    #[arg(long)]
    skip_ingest: bool,
    /// The node's governance key file (the node runs with `--governance
    /// <its did:key>`): it trusts the bench's licensing board. Not needed
    /// with --skip-ingest, which reuses the licence of an earlier run.
    #[arg(long, required_unless_present_any = ["skip_ingest", "postgres"])]
    governance_key: Option<std::path::PathBuf>,
    /// Names the data set: keys and histories derive from it, so a run with
    /// the same seed finds the same patients and ids.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// After the search phase, time this many pairs of a denied and a
    /// missing read by a stranger (0: skip; at most 100,000).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=100_000))]
    denied_vs_missing: u64,
}

/// One patient of the data set.
struct BenchPatient {
    key: Keypair,
    id: String,
    /// (id, LOINC code) of each Observation.
    observations: Vec<(String, String)>,
    /// Transaction Bundles, serialized, with their entry counts.
    bundles: Vec<(Vec<u8>, usize)>,
    /// The same Bundles' entries as (type, id, resource JSON), for
    /// PostgreSQL (filled only with --postgres).
    rows: Vec<Vec<postgres::Row>>,
    /// The bytes of its resources' JSON as sent (each resource compact, as
    /// in its Bundle entry).
    resource_bytes: usize,
}

/// What reads and searches pick from: a patient's id, their Observation
/// ids and the distinct codes of those Observations.
struct Target {
    patient: String,
    observations: Vec<String>,
    codes: Vec<String>,
}

/// How one phase went.
struct Phase {
    name: &'static str,
    clients: usize,
    /// Items done (resources, grants, reads, searches).
    items: usize,
    unit: &'static str,
    requests: usize,
    errors: usize,
    wall: Duration,
    latencies: Vec<Duration>,
    extra: Value,
}

impl Phase {
    fn percentile(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let i =
            ((self.latencies.len() as f64 * p).ceil() as usize).clamp(1, self.latencies.len()) - 1;
        self.latencies[i].as_secs_f64() * 1000.0
    }

    fn finish(mut self) -> Phase {
        self.latencies.sort_unstable();
        self
    }

    fn line(&self) -> String {
        let seconds = self.wall.as_secs_f64().max(1e-9);
        format!(
            "fhir {}: C={} {} {} in {} requests, {:.2} s: {:.0} {}/s, {:.0} requests/s; latency p50 {:.2} ms, p99 {:.2} ms; not 2xx: {} ({:.2} %)",
            self.name,
            self.clients,
            self.items,
            self.unit,
            self.requests,
            seconds,
            self.items as f64 / seconds,
            self.unit,
            self.requests as f64 / seconds,
            self.percentile(0.50),
            self.percentile(0.99),
            self.errors,
            self.error_share() * 100.0,
        )
    }

    fn error_share(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
    }

    fn json(&self) -> Value {
        let seconds = self.wall.as_secs_f64().max(1e-9);
        let mut value = json!({
            "what": format!("hygeia fhir {}", self.name),
            "phase": self.name,
            "clients": self.clients,
            "unit": self.unit,
            "items": self.items,
            "requests": self.requests,
            "seconds": seconds,
            "per_sec": self.items as f64 / seconds,
            "requests_per_sec": self.requests as f64 / seconds,
            "p50_ms": self.percentile(0.50),
            "p99_ms": self.percentile(0.99),
            "not_2xx": self.errors,
            "not_2xx_share": self.error_share(),
        });
        if let (Some(object), Some(extra)) = (value.as_object_mut(), self.extra.as_object()) {
            object.extend(extra.clone());
        }
        value
    }
}

/// A key derived from the seed: the same run finds the same participants.
fn derived_key(seed: u64, who: &str) -> Keypair {
    let digest: [u8; 32] = Sha256::digest(format!("hygeia bench fhir {seed} {who}")).into();
    Keypair::from_seed(&digest)
}

fn derived_seed(seed: u64, index: usize) -> u64 {
    let digest = Sha256::digest(format!("hygeia bench fhir {seed} history {index}"));
    u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
}

fn bar(len: u64, what: &str) -> ProgressBar {
    ProgressBar::new(len).with_style(
        ProgressStyle::with_template(&format!(
            "{what} [{{bar:40}}] {{pos}}/{{len}} ({{per_sec}}, eta {{eta}})"
        ))
        .expect("static template")
        .progress_chars("=> "),
    )
}

pub fn run(args: FhirBenchArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::ensure!(
        args.patients > 0 && args.per_patient > 0 && args.clients > 0,
        "--patients, --per-patient and --clients must be positive"
    );
    let pg = args.postgres.is_some();

    eprintln!(
        "generating {} patients of {} resources (seed {})…",
        args.patients, args.per_patient, args.seed
    );
    let generating = bar(args.patients as u64, "generating");
    let patients: Vec<BenchPatient> = (0..args.patients)
        .into_par_iter()
        .map(|i| {
            let key = derived_key(args.seed, &format!("patient {i}"));
            let did = key.did().to_string();
            let mut rng = StdRng::seed_from_u64(derived_seed(args.seed, i));
            let patient = generate_patient(&mut rng, i as u64, &did, args.per_patient);
            let observations = patient
                .resources
                .iter()
                .filter(|r| r["resourceType"] == "Observation")
                .filter_map(|r| {
                    Some((
                        r["id"].as_str()?.to_owned(),
                        r["code"]["coding"][0]["code"].as_str()?.to_owned(),
                    ))
                })
                .collect();
            let rows = if args.skip_ingest || !pg {
                Vec::new()
            } else {
                postgres::rows(&transaction_bundles(
                    &patient.resources,
                    args.per_bundle as usize,
                ))
            };
            let bundles = if args.skip_ingest || pg {
                Vec::new()
            } else {
                transaction_bundles(&patient.resources, args.per_bundle as usize)
                    .iter()
                    .map(|b| {
                        let entries = b["entry"].as_array().map_or(0, Vec::len);
                        (serde_json::to_vec(b).expect("JSON serializes"), entries)
                    })
                    .collect()
            };
            let resource_bytes = patient
                .resources
                .iter()
                .map(|r| serde_json::to_vec(r).map_or(0, |b| b.len()))
                .sum();
            generating.inc(1);
            BenchPatient {
                key,
                id: patient.patient_id,
                observations,
                bundles,
                rows,
                resource_bytes,
            }
        })
        .collect();
    generating.finish_and_clear();
    if let Some(dsn) = &args.postgres {
        return postgres::run(&args, dsn, patients);
    }
    let base = args
        .node
        .as_deref()
        .context("--node or --postgres")?
        .trim_end_matches('/')
        .to_owned();
    let info = NodeInfo::fetch(&base)?;
    let clinician = derived_key(args.seed, "clinician");

    let mut phases = Vec::new();
    if let Some(path) = &args.governance_key {
        let governance = Keypair::read_key_file(path)
            .with_context(|| format!("cannot use key file {}", path.display()))?;
        eprintln!("licensing the clinician…");
        super::licence::license(
            &base,
            &governance,
            &derived_key(args.seed, "licensing board"),
            "FR",
            &[(&clinician, "physician")],
        )?;
    }
    if !args.skip_ingest {
        let phase = ingest(&args, &base, &info, &patients)?;
        println!("{}", phase.line());
        phases.push(phase);
        let phase = consent(&args, &base, &info, &patients, &clinician)?;
        println!("{}", phase.line());
        phases.push(phase);
    }

    let targets = targets(patients)?;
    let http = http_client()?;
    let token = fetch_token(
        &http,
        &base,
        &clinician,
        &info.node_did,
        PurposeOfUse::Treatment,
        None,
    )?
    .access_token;
    if args.skip_ingest {
        // The data must be there: a first read tells.
        let probe = &targets[0];
        let url = format!("{base}/fhir/Observation/{}", probe.observations[0]);
        let status = http
            .get(&url)
            .bearer_auth(&token)
            .send()
            .with_context(|| format!("cannot reach {base}"))?
            .status();
        anyhow::ensure!(
            status.is_success(),
            "--skip-ingest: the clinician cannot read {url} ({status}); run once without --skip-ingest with --seed {} --patients {} --per-patient {}",
            args.seed,
            args.patients,
            args.per_patient
        );
    }

    let phase = closed_loop(&args, &base, &token, &targets, "read")?;
    println!("{}", phase.line());
    phases.push(phase);
    let token = fetch_token(
        &http,
        &base,
        &clinician,
        &info.node_did,
        PurposeOfUse::Treatment,
        None,
    )?
    .access_token;
    let phase = closed_loop(&args, &base, &token, &targets, "search")?;
    println!("{}", phase.line());
    phases.push(phase);
    let timings = if args.denied_vs_missing > 0 {
        denied_vs_missing(&args, &base, &info, &targets)?
    } else {
        Vec::new()
    };

    println!();
    for phase in &phases {
        println!("{}", phase.json());
    }
    for timing in &timings {
        println!("{}", timing.json);
    }
    let errors: usize = phases.iter().map(|p| p.errors).sum::<usize>()
        + timings.iter().filter(|t| !t.answers_alike).count();
    Ok(if errors == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    })
}

/// What the read and search phases pick from.
fn targets(patients: Vec<BenchPatient>) -> anyhow::Result<Arc<Vec<Target>>> {
    let targets: Vec<Target> = patients
        .iter()
        .filter(|p| !p.observations.is_empty())
        .map(|p| {
            let mut codes: Vec<String> = p.observations.iter().map(|(_, c)| c.clone()).collect();
            codes.sort();
            codes.dedup();
            Target {
                patient: p.id.clone(),
                observations: p.observations.iter().map(|(id, _)| id.clone()).collect(),
                codes,
            }
        })
        .collect();
    anyhow::ensure!(
        !targets.is_empty(),
        "no patient has an Observation to read: raise --per-patient"
    );
    Ok(Arc::new(targets))
}

/// One read or search of the closed loop.
enum Request {
    /// `GET Observation/<id>`.
    Read(String),
    /// `Observation?patient=Patient/<patient>&code=http://loinc.org|<code>`.
    Code { patient: String, code: String },
    /// `Observation?patient=Patient/<patient>&date=ge2020-01-01&_count=20`.
    Date { patient: String },
}

/// Client `c`'s requests until `deadline`: the same sequence whatever the
/// target (node or PostgreSQL), from the seed.
fn requests(
    seed: u64,
    c: usize,
    kind: &'static str,
    targets: Arc<Vec<Target>>,
    deadline: Instant,
) -> impl Iterator<Item = Request> + Send + 'static {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(c as u64));
    let mut n = 0u64;
    std::iter::from_fn(move || {
        if Instant::now() >= deadline {
            return None;
        }
        n += 1;
        let target = &targets[rng.gen_range(0..targets.len())];
        Some(match kind {
            "read" => Request::Read(
                target.observations[rng.gen_range(0..target.observations.len())].clone(),
            ),
            _ if n % 2 == 1 => Request::Code {
                patient: target.patient.clone(),
                code: target.codes[rng.gen_range(0..target.codes.len())].clone(),
            },
            _ => Request::Date {
                patient: target.patient.clone(),
            },
        })
    })
}

/// Tokens for many keys at once (before a phase's clock starts).
fn tokens(base: &str, info: &NodeInfo, keys: &[&Keypair]) -> anyhow::Result<Vec<Arc<str>>> {
    let http = http_client()?;
    let progress = bar(keys.len() as u64, "tokens");
    let pool = rayon::ThreadPoolBuilder::new().num_threads(16).build()?;
    let tokens = pool.install(|| {
        keys.par_iter()
            .map(|key| {
                let token = fetch_token(
                    &http,
                    base,
                    key,
                    &info.node_did,
                    PurposeOfUse::Treatment,
                    None,
                )?;
                progress.inc(1);
                Ok(Arc::from(token.access_token.as_str()))
            })
            .collect::<anyhow::Result<Vec<_>>>()
    });
    progress.finish_and_clear();
    tokens
}

fn ingest(
    args: &FhirBenchArgs,
    base: &str,
    info: &NodeInfo,
    patients: &[BenchPatient],
) -> anyhow::Result<Phase> {
    eprintln!("getting {} patient tokens…", patients.len());
    let keys: Vec<&Keypair> = patients.iter().map(|p| &p.key).collect();
    let tokens = tokens(base, info, &keys)?;
    // A patient's Bundles go in order on one client (the first holds the
    // Patient the others refer to); patients are dealt round robin.
    let mut per_client: Vec<Vec<(Arc<str>, Vec<u8>)>> = vec![Vec::new(); args.clients];
    let mut resources = 0;
    let mut bundles = 0;
    for (i, (patient, token)) in patients.iter().zip(tokens).enumerate() {
        for (body, entries) in &patient.bundles {
            per_client[i % args.clients].push((token.clone(), body.clone()));
            resources += entries;
            bundles += 1;
        }
    }
    eprintln!(
        "ingesting {resources} resources in {bundles} transaction Bundles from {} clients…",
        args.clients
    );
    let url = format!("{base}/fhir");
    let (wall, latencies, errors) = drive(
        args.clients,
        per_client,
        None,
        move |client, (token, body): (Arc<str>, Vec<u8>)| {
            client
                .post(&url)
                .bearer_auth(&*token)
                .header("content-type", hygeia_fhir::FHIR_JSON)
                .body(body)
        },
    )?;
    Ok(Phase {
        name: "ingest",
        clients: args.clients,
        items: resources,
        unit: "resources",
        requests: bundles,
        errors,
        wall,
        latencies,
        extra: json!({"patients": patients.len(), "per_patient": args.per_patient, "per_bundle": args.per_bundle, "bundles": bundles,
            "resource_bytes": patients.iter().map(|p| p.resource_bytes).sum::<usize>()}),
    }
    .finish())
}

fn consent(
    args: &FhirBenchArgs,
    base: &str,
    info: &NodeInfo,
    patients: &[BenchPatient],
    clinician: &Keypair,
) -> anyhow::Result<Phase> {
    const CHUNK: usize = 500;
    let grantee = clinician.did().to_string();
    let now = unix_now();
    let signed: Vec<Vec<u8>> = patients
        .par_iter()
        .map(|p| {
            TxBuilder {
                network: &info.network,
                tx_type: "consent.grant",
                nonce: hygeia_auth::random_nonce(),
                body: json!({
                    "patient": p.key.did().to_string(),
                    "grantee": grantee,
                    "scope": {"resource_types": ["Observation"]},
                    "actions": ["read"],
                    "purpose": "TREAT",
                    "not_before": now - 60,
                    "not_after": now + 7 * 86_400,
                }),
            }
            .sign(&p.key)
        })
        .collect();
    let bodies: Vec<Vec<u8>> = signed
        .chunks(CHUNK)
        .map(|chunk| {
            let mut body = b"[".to_vec();
            for (i, tx) in chunk.iter().enumerate() {
                if i > 0 {
                    body.push(b',');
                }
                body.extend_from_slice(tx);
            }
            body.push(b']');
            body
        })
        .collect();
    let requests = bodies.len();
    let clients = args.clients.min(requests).max(1);
    let mut per_client: Vec<Vec<Vec<u8>>> = vec![Vec::new(); clients];
    for (i, body) in bodies.into_iter().enumerate() {
        per_client[i % clients].push(body);
    }
    eprintln!(
        "granting the clinician consent: {} consent.grant transactions…",
        signed.len()
    );
    let url = format!("{base}/v1/transactions/batch");
    let (wall, latencies, errors) =
        drive(clients, per_client, None, move |client, body: Vec<u8>| {
            client
                .post(&url)
                .header("content-type", "application/json")
                .body(body)
        })?;
    Ok(Phase {
        name: "consent",
        clients,
        items: signed.len(),
        unit: "grants",
        requests,
        errors,
        wall,
        latencies,
        extra: json!({"per_request": CHUNK}),
    }
    .finish())
}

/// How one kind of request compared, denied against missing.
struct Timing {
    json: Value,
    /// Every answer, denied or missing, had the same status and body.
    answers_alike: bool,
}

/// The denied-vs-missing phase: one client, each request timed alone.
fn denied_vs_missing(
    args: &FhirBenchArgs,
    base: &str,
    info: &NodeInfo,
    targets: &Arc<Vec<Target>>,
) -> anyhow::Result<Vec<Timing>> {
    const WARM_UP: u64 = 50;
    let pairs = args.denied_vs_missing;
    let http = http_client()?;
    let stranger = derived_key(args.seed, "stranger");
    let token = fetch_token(
        &http,
        base,
        &stranger,
        &info.node_did,
        PurposeOfUse::Treatment,
        None,
    )?
    .access_token;
    let mut rng = StdRng::seed_from_u64(derived_seed(args.seed, usize::MAX));
    type PathOf = fn(&str) -> String;
    let kinds: [(&str, PathOf); 3] = [
        ("GET Observation/<id>", |id| format!("Observation/{id}")),
        ("GET Provenance?target=Observation/<id>", |id| {
            format!("Provenance?target=Observation/{id}")
        }),
        ("GET Observation/<id>/_history", |id| {
            format!("Observation/{id}/_history")
        }),
    ];
    let mut timings = Vec::new();
    for (name, path) in kinds {
        eprintln!("denied vs missing: {name}, {pairs} pairs…");
        let progress = bar(WARM_UP + pairs, "pairs");
        let mut denied = Vec::with_capacity(pairs as usize);
        let mut missing = Vec::with_capacity(pairs as usize);
        // Status and body of every answer: a denied read must be answered
        // exactly as a missing one.
        let mut answers = std::collections::BTreeSet::new();
        for i in 0..WARM_UP + pairs {
            let target = &targets[rng.gen_range(0..targets.len())];
            let seen = &target.observations[rng.gen_range(0..target.observations.len())];
            let unknown = hex::encode(rng.gen::<[u8; 16]>());
            let mut order = [(true, seen.as_str()), (false, unknown.as_str())];
            if i % 2 == 1 {
                order.reverse();
            }
            for (is_denied, id) in order {
                let url = format!("{base}/fhir/{}", path(id));
                let started = Instant::now();
                let response = http
                    .get(&url)
                    .bearer_auth(&token)
                    .send()
                    .with_context(|| format!("cannot reach {url}"))?;
                let status = response.status().as_u16();
                let body = response.bytes().unwrap_or_default();
                let took = started.elapsed();
                // The id appears in neither answer; if it did, the two
                // bodies would differ by it alone, so it is taken out.
                let body = String::from_utf8_lossy(&body).replace(id, "<id>");
                answers.insert((status, body));
                if i >= WARM_UP {
                    if is_denied {
                        denied.push(took);
                    } else {
                        missing.push(took);
                    }
                }
            }
            progress.inc(1);
        }
        progress.finish_and_clear();
        let verdict = hygeia_node::timing::compare(&denied, &missing);
        let answers_alike = answers.len() == 1;
        let statuses: Vec<u16> = answers.iter().map(|(status, _)| *status).collect();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "denied vs missing, {name}: {}{}",
            verdict.report,
            if answers_alike {
                String::new()
            } else {
                format!("; FAILED: the answers differ (statuses {statuses:?})")
            }
        );
        timings.push(Timing {
            json: json!({
                "phase": "denied-vs-missing",
                "request": name,
                "pairs": pairs,
                "denied_median_ms": ms(verdict.medians.0),
                "missing_median_ms": ms(verdict.medians.1),
                "difference_ms": ms(verdict.medians.0.abs_diff(verdict.medians.1)),
                "tolerance_ms": ms(verdict.tolerance),
                "p_denied_slower": verdict.first_slower,
                "alike_within_noise": verdict.same,
                "answers_alike": answers_alike,
                "statuses": statuses,
            }),
            answers_alike,
        });
    }
    Ok(timings)
}

/// `--seconds` of reads or searches by the clinician, each client sending
/// its next request when the previous one is answered.
fn closed_loop(
    args: &FhirBenchArgs,
    base: &str,
    token: &str,
    targets: &Arc<Vec<Target>>,
    kind: &'static str,
) -> anyhow::Result<Phase> {
    let unit = if kind == "read" { "reads" } else { "searches" };
    eprintln!(
        "{unit} for {} s from {} clients…",
        args.seconds, args.clients
    );
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let per_client: Vec<_> = (0..args.clients)
        .map(|c| {
            let base = base.to_owned();
            requests(args.seed, c, kind, targets.clone(), deadline).map(move |r| match r {
                Request::Read(id) => format!("{base}/fhir/Observation/{id}"),
                Request::Code { patient, code } => format!(
                    "{base}/fhir/Observation?patient=Patient/{patient}&code=http://loinc.org%7C{code}"
                ),
                Request::Date { patient } => format!(
                    "{base}/fhir/Observation?patient=Patient/{patient}&date=ge2020-01-01&_count=20"
                ),
            })
        })
        .collect();
    let token: Arc<str> = Arc::from(token);
    let (wall, latencies, errors) = drive(
        args.clients,
        per_client,
        None,
        move |client, url: String| client.get(url).bearer_auth(&*token),
    )?;
    let requests = latencies.len() + errors;
    Ok(Phase {
        name: kind,
        clients: args.clients,
        items: requests,
        unit,
        requests,
        errors,
        wall,
        latencies,
        extra: if kind == "read" {
            json!({"request": "GET Observation/<id>"})
        } else {
            json!({"request": "Observation?patient=&code= and Observation?patient=&date=ge2020-01-01&_count=20, alternately"})
        },
    }
    .finish())
}
