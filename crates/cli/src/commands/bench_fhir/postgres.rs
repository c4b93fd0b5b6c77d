//! `hygeia bench fhir --postgres <dsn>`: the obvious alternative a hospital
//! would build, under the same load. The same synthetic resources (same
//! generator, same seed) are stored as JSONB in one PostgreSQL table with
//! B-tree and GIN indexes on the parameters the bench searches, and the
//! same reads and searches run from the same clients at the same
//! concurrency. PostgreSQL decides no consent and logs no access.
//!
//! What PostgreSQL is asked to do (BENCHMARKS.md quotes this):
//!
//! - ingest: each transaction Bundle is one SQL transaction, one
//!   `INSERT … SELECT FROM unnest(…) ON CONFLICT (type, id) DO UPDATE` of
//!   its entries, committed with `synchronous_commit = on` (durable when
//!   acknowledged, as the node's answers are). The Bundles' entries are
//!   split into (type, id, JSON text) before the clock starts, so
//!   PostgreSQL is not charged for parsing the Bundle; it parses each
//!   resource into JSONB and maintains the indexes.
//! - read: `SELECT resource::text FROM hygeia_bench_fhir WHERE type =
//!   'Observation' AND id = $1` (the primary key).
//! - search by code: the first page (20) in `_lastUpdated` order and the
//!   total, `… WHERE type = 'Observation' AND patient = $1 AND resource @>
//!   '{"code":{"coding":[{"system":"http://loinc.org","code":…}]}}' ORDER
//!   BY last_updated, id LIMIT 20` with `count(*) OVER ()`.
//! - search by date: the same with `AND obs_date >= '2020-01-01'`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{json, Value};

use super::{requests, targets, BenchPatient, FhirBenchArgs, Phase, Request, Target};

/// One Bundle entry: (resource type, id, resource JSON).
pub(super) type Row = (String, String, String);

/// The entries of each Bundle.
pub(super) fn rows(bundles: &[Value]) -> Vec<Vec<Row>> {
    bundles
        .iter()
        .map(|bundle| {
            bundle["entry"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|entry| {
                    let resource = &entry["resource"];
                    Some((
                        resource["resourceType"].as_str()?.to_owned(),
                        resource["id"].as_str()?.to_owned(),
                        resource.to_string(),
                    ))
                })
                .collect()
        })
        .collect()
}

/// The schema: index columns computed by PostgreSQL from the JSON
/// (generated columns), as a FHIR server on PostgreSQL would keep them.
const SCHEMA: &str = r#"
DROP TABLE IF EXISTS hygeia_bench_fhir;
CREATE OR REPLACE FUNCTION hygeia_bench_instant(text) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT $1::timestamptz';
CREATE TABLE hygeia_bench_fhir (
    type text NOT NULL,
    id text NOT NULL,
    resource jsonb NOT NULL,
    last_updated timestamptz NOT NULL DEFAULT clock_timestamp(),
    patient text GENERATED ALWAYS AS (
        CASE WHEN type = 'Patient' THEN 'Patient/' || id
             ELSE coalesce(resource->'subject'->>'reference', resource->'patient'->>'reference') END
    ) STORED,
    obs_date timestamptz GENERATED ALWAYS AS (
        hygeia_bench_instant(coalesce(resource->>'effectiveDateTime', resource->'effectivePeriod'->>'start'))
    ) STORED,
    PRIMARY KEY (type, id)
);
CREATE INDEX hygeia_bench_fhir_patient ON hygeia_bench_fhir (type, patient, last_updated, id);
CREATE INDEX hygeia_bench_fhir_date ON hygeia_bench_fhir (type, patient, obs_date);
CREATE INDEX hygeia_bench_fhir_json ON hygeia_bench_fhir USING gin (resource jsonb_path_ops);
"#;

const INSERT: &str = "INSERT INTO hygeia_bench_fhir (type, id, resource) \
     SELECT t, i, r::jsonb FROM unnest($1::text[], $2::text[], $3::text[]) AS u(t, i, r) \
     ON CONFLICT (type, id) DO UPDATE SET resource = excluded.resource, last_updated = clock_timestamp()";
const READ: &str =
    "SELECT resource::text FROM hygeia_bench_fhir WHERE type = 'Observation' AND id = $1";
const BY_CODE: &str = "SELECT resource::text, count(*) OVER () FROM hygeia_bench_fhir \
     WHERE type = 'Observation' AND patient = $1 AND resource @> $2::text::jsonb \
     ORDER BY last_updated, id LIMIT 20";
const BY_DATE: &str = "SELECT resource::text, count(*) OVER () FROM hygeia_bench_fhir \
     WHERE type = 'Observation' AND patient = $1 AND obs_date >= '2020-01-01T00:00:00Z' \
     ORDER BY last_updated, id LIMIT 20";

pub(super) fn run(
    args: &FhirBenchArgs,
    dsn: &str,
    patients: Vec<BenchPatient>,
) -> anyhow::Result<std::process::ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut phases = Vec::new();
    let clients = runtime.block_on(connect(dsn, args.clients))?;
    let version: String = runtime.block_on(async {
        Ok::<_, anyhow::Error>(
            clients[0]
                .query_one("SHOW server_version", &[])
                .await?
                .get(0),
        )
    })?;
    eprintln!("PostgreSQL {version}");
    if !args.skip_ingest {
        runtime.block_on(clients[0].batch_execute(SCHEMA))?;
        let phase = runtime.block_on(ingest(args, &clients, &patients))?;
        println!("{}", phase.line());
        phases.push(phase);
        runtime.block_on(clients[0].batch_execute("VACUUM ANALYZE hygeia_bench_fhir"))?;
    }
    let targets = targets(patients)?;
    for kind in ["read", "search"] {
        let phase = runtime.block_on(closed_loop(args, &clients, &targets, kind))?;
        println!("{}", phase.line());
        phases.push(phase);
    }
    println!();
    for phase in &phases {
        let mut line = phase.json();
        line["what"] = json!(format!("postgres fhir {}", phase.name));
        line["postgres"] = json!(version);
        println!("{line}");
    }
    let errors: usize = phases.iter().map(|p| p.errors).sum();
    Ok(if errors == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    })
}

/// One connection per client, each durable on commit.
async fn connect(dsn: &str, clients: usize) -> anyhow::Result<Vec<Arc<tokio_postgres::Client>>> {
    let mut all = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (client, connection) = tokio_postgres::connect(dsn, tokio_postgres::NoTls)
            .await
            .with_context(|| format!("cannot connect to PostgreSQL with {dsn:?}"))?;
        tokio::spawn(connection);
        client.batch_execute("SET synchronous_commit = on").await?;
        let mode: String = client
            .query_one("SHOW synchronous_commit", &[])
            .await?
            .get(0);
        anyhow::ensure!(mode == "on", "synchronous_commit is {mode}, not on");
        all.push(Arc::new(client));
    }
    Ok(all)
}

/// Each client's Bundles in order; patients dealt round robin (as the
/// node's ingest deals them).
async fn ingest(
    args: &FhirBenchArgs,
    clients: &[Arc<tokio_postgres::Client>],
    patients: &[BenchPatient],
) -> anyhow::Result<Phase> {
    let mut per_client: Vec<Vec<[Vec<String>; 3]>> = vec![Vec::new(); clients.len()];
    let mut resources = 0;
    let mut bundles = 0;
    for (i, patient) in patients.iter().enumerate() {
        for rows in &patient.rows {
            let mut columns: [Vec<String>; 3] = Default::default();
            for (t, id, json) in rows {
                columns[0].push(t.clone());
                columns[1].push(id.clone());
                columns[2].push(json.clone());
            }
            resources += rows.len();
            bundles += 1;
            per_client[i % clients.len()].push(columns);
        }
    }
    eprintln!(
        "ingesting {resources} resources in {bundles} transactions from {} clients…",
        clients.len()
    );
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (client, work) in clients.iter().cloned().zip(per_client) {
        tasks.push(tokio::spawn(async move {
            let insert = client.prepare(INSERT).await?;
            let mut latencies = Vec::with_capacity(work.len());
            let mut errors = 0usize;
            for [types, ids, jsons] in work {
                let sent = Instant::now();
                let result = async {
                    client.batch_execute("BEGIN").await?;
                    client.execute(&insert, &[&types, &ids, &jsons]).await?;
                    client.batch_execute("COMMIT").await
                }
                .await;
                match result {
                    Ok(()) => latencies.push(sent.elapsed()),
                    Err(e) => {
                        errors += 1;
                        if errors == 1 {
                            eprintln!("insert failed: {e}");
                        }
                        let _ = client.batch_execute("ROLLBACK").await;
                    }
                }
            }
            Ok::<_, anyhow::Error>((latencies, errors))
        }));
    }
    let (wall, latencies, errors) = gather(started, tasks).await?;
    Ok(Phase {
        name: "ingest",
        clients: args.clients,
        items: resources,
        unit: "resources",
        requests: bundles,
        errors,
        wall,
        latencies,
        extra: json!({"patients": patients.len(), "per_patient": args.per_patient, "per_bundle": args.per_bundle, "bundles": bundles}),
    }
    .finish())
}

async fn closed_loop(
    args: &FhirBenchArgs,
    clients: &[Arc<tokio_postgres::Client>],
    targets: &Arc<Vec<Target>>,
    kind: &'static str,
) -> anyhow::Result<Phase> {
    let unit = if kind == "read" { "reads" } else { "searches" };
    eprintln!(
        "{unit} for {} s from {} clients…",
        args.seconds,
        clients.len()
    );
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (c, client) in clients.iter().cloned().enumerate() {
        let work = requests(args.seed, c, kind, targets.clone(), deadline);
        tasks.push(tokio::spawn(async move {
            let read = client.prepare(READ).await?;
            let by_code = client.prepare(BY_CODE).await?;
            let by_date = client.prepare(BY_DATE).await?;
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            for request in work {
                let sent = Instant::now();
                let result = match request {
                    Request::Read(id) => client.query_opt(&read, &[&id]).await.map(|row| {
                        row.map(|row| row.get::<_, String>(0).len())
                            .unwrap_or_default()
                    }),
                    Request::Code { patient, code } => {
                        let filter = json!({"code": {"coding": [{"system": "http://loinc.org", "code": code}]}})
                            .to_string();
                        let patient = format!("Patient/{patient}");
                        client
                            .query(&by_code, &[&patient, &filter])
                            .await
                            .map(|rows| rows.iter().map(|r| r.get::<_, String>(0).len()).sum())
                    }
                    Request::Date { patient } => {
                        let patient = format!("Patient/{patient}");
                        client
                            .query(&by_date, &[&patient])
                            .await
                            .map(|rows| rows.iter().map(|r| r.get::<_, String>(0).len()).sum())
                    }
                };
                match result {
                    // An empty answer is an error, as a 404 is for the node.
                    Ok(bytes) if bytes > 0 => latencies.push(sent.elapsed()),
                    Ok(_) => errors += 1,
                    Err(e) => {
                        errors += 1;
                        if errors == 1 {
                            eprintln!("query failed: {e}");
                        }
                    }
                }
            }
            Ok::<_, anyhow::Error>((latencies, errors))
        }));
    }
    let (wall, latencies, errors) = gather(started, tasks).await?;
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
            json!({"request": "SELECT by primary key (type, id)"})
        } else {
            json!({"request": "patient + code (JSONB @>, GIN) and patient + date >= 2020-01-01 (B-tree), first 20 in last_updated order with count(*) OVER (), alternately"})
        },
    }
    .finish())
}

type Outcome = anyhow::Result<(Vec<Duration>, usize)>;

async fn gather(
    started: Instant,
    tasks: Vec<tokio::task::JoinHandle<Outcome>>,
) -> anyhow::Result<(Duration, Vec<Duration>, usize)> {
    let mut all = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (latencies, e) = task.await??;
        all.extend(latencies);
        errors += e;
    }
    Ok((started.elapsed(), all, errors))
}
