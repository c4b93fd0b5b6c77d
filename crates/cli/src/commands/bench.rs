//! `hygeia bench`: load generators. Transactions are signed before the clock
//! starts, so what is measured is the node (or PostgreSQL), not the signer.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Subcommand};
use hygeia_identity::Keypair;
use hygeia_ledger::store::LogWriter;
use hygeia_ledger::tx::TxContext;
use hygeia_ledger::{CheckpointSigner, LogStore, ModuleRegistry, SignedTx, TxBuilder};
use hygeia_node::config::{LEDGER_FILE, NODE_KEY_FILE};
use indicatif::ProgressBar;
use rayon::prelude::*;
use serde_json::json;

use super::{node_info, node_network};

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Submit pre-signed transactions to a node over HTTP from concurrent clients.
    Ingest(IngestArgs),
    /// Insert the same signed events into PostgreSQL, one INSERT per event.
    Postgres(PostgresArgs),
    /// Fill a data directory in process (no HTTP) to a given size, e.g. 10 million.
    Fill(FillArgs),
    /// Time `hygeia serve` on a data directory from launch until it answers
    /// GET /v1/node, with its state snapshot or with a full replay.
    Startup(StartupArgs),
    /// Measure inclusion and consistency proof latency over HTTP.
    Proofs(ProofArgs),
    /// Permitted record reads over HTTP: signed request, decision, durable
    /// audit event, decryption.
    Reads(ReadArgs),
    Fhir(super::bench_fhir::FhirBenchArgs),
    /// Signed device readings ingested per second over HTTP, in batches.
    Devices(super::bench_devices::DeviceBenchArgs),
    /// Durable token transfers (unit.transfer) over HTTP, pre-signed,
    /// from concurrent clients, in batches.
    Transfers(super::bench_economy::TransferArgs),
    /// Where a stopped node's data directory puts its bytes: files (size
    /// and allocated), redb tables (rows, stored bytes, pages) and the
    /// plaintext of the records it holds. Prints one JSON object.
    Disk(DiskArgs),
}

#[derive(Args)]
pub struct DiskArgs {
    /// The data directory of a stopped node.
    #[arg(long)]
    data_dir: PathBuf,
}

fn disk(args: DiskArgs) -> anyhow::Result<ExitCode> {
    let report = hygeia_node::disk_report::report(&args.data_dir)?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub struct ReadArgs {
    #[arg(long)]
    node: String,
    /// The node's governance key file: reads for treatment need a licence,
    /// so the bench puts a licensing board of its own on the trust list
    /// and licenses its reader (start the node with `--governance <its
    /// did:key>`).
    #[arg(long)]
    governance_key: PathBuf,
    /// Concurrent clients, each with its own connection.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Reads in all.
    #[arg(long, default_value_t = 50_000)]
    count: usize,
    /// Size of each record in bytes.
    #[arg(long, default_value_t = 4096)]
    record_bytes: usize,
    /// Distinct records read (round robin).
    #[arg(long, default_value_t = 64)]
    records: usize,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct IngestArgs {
    #[arg(long)]
    node: String,
    /// Concurrent clients, each with its own connection and key.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Transactions in all.
    #[arg(long, default_value_t = 100_000)]
    count: usize,
    /// Transactions per request: 1 uses POST /v1/transactions, more uses /batch.
    #[arg(long, default_value_t = 1)]
    batch_size: usize,
    /// Print one JSON line instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct PostgresArgs {
    /// libpq-style connection string.
    #[arg(
        long,
        default_value = "host=/var/run/postgresql user=postgres dbname=postgres"
    )]
    dsn: String,
    #[arg(long, default_value_t = 16)]
    clients: usize,
    #[arg(long, default_value_t = 20_000)]
    count: usize,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct FillArgs {
    #[arg(long)]
    data_dir: PathBuf,
    #[arg(long, default_value = super::DEFAULT_NETWORK)]
    network: String,
    #[arg(long, default_value_t = 10_000_000)]
    count: u64,
}

#[derive(Args)]
pub struct StartupArgs {
    #[arg(long)]
    data_dir: PathBuf,
    #[arg(long, default_value = super::DEFAULT_NETWORK)]
    network: String,
    /// Timed starts; the median is reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Start without a snapshot: <data-dir>/snapshots is deleted before
    /// each start and none is written (--snapshot-every 0), so the node
    /// replays the whole log. Without it, one untimed start and clean stop
    /// first writes a snapshot if there is none.
    #[arg(long)]
    full_replay: bool,
}

#[derive(Args)]
pub struct ProofArgs {
    #[arg(long)]
    node: String,
    /// Requests per proof kind.
    #[arg(long, default_value_t = 20_000)]
    samples: usize,
    #[arg(long, default_value_t = 8)]
    clients: usize,
    #[arg(long)]
    json: bool,
}

pub fn run(command: BenchCommand) -> anyhow::Result<ExitCode> {
    match command {
        BenchCommand::Ingest(args) => ingest(args),
        BenchCommand::Postgres(args) => postgres(args),
        BenchCommand::Fill(args) => fill(args),
        BenchCommand::Startup(args) => startup(args),
        BenchCommand::Proofs(args) => proofs(args),
        BenchCommand::Reads(args) => reads(args),
        BenchCommand::Fhir(args) => super::bench_fhir::run(args),
        BenchCommand::Devices(args) => super::bench_devices::run(args),
        BenchCommand::Transfers(args) => super::bench_economy::transfers(args),
        BenchCommand::Disk(args) => disk(args),
    }
}

/// `count` attest transactions from `signers` keys, signed in parallel.
/// Returns them grouped per signer.
fn presign(network: &str, signers: usize, count: usize) -> Vec<Vec<Vec<u8>>> {
    let run_id = format!("{:08x}", rand::random::<u32>());
    (0..signers)
        .into_par_iter()
        .map(|s| {
            let key = Keypair::generate();
            let per = count / signers + usize::from(s < count % signers);
            (0..per)
                .map(|i| {
                    TxBuilder {
                        network,
                        tx_type: "attest",
                        nonce: format!("bench-{run_id}-{i}"),
                        body: json!({"label": "bench.event", "subject": format!("sha256:{:032x}{:032x}", s, i)}),
                    }
                    .sign(&key)
                })
                .collect()
        })
        .collect()
}

/// Sends each client's requests in order on its own task, all clients at
/// once; returns the wall time, the latency of every success and the number
/// of failures (the first one is printed). With `expected_len`, a success
/// must also carry a body of exactly that length. A client's requests may
/// be a list or an iterator that makes them as it goes (a closed loop that
/// runs until a deadline).
pub(super) fn drive<R: Send + 'static, I>(
    clients: usize,
    per_client: Vec<I>,
    expected_len: Option<usize>,
    build: impl Fn(&reqwest::Client, R) -> reqwest::RequestBuilder + Send + Sync + Clone + 'static,
) -> anyhow::Result<(Duration, Vec<Duration>, usize)>
where
    I: IntoIterator<Item = R>,
    I::IntoIter: Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(clients)
            .timeout(Duration::from_secs(120))
            .build()?;
        let started = Instant::now();
        let mut tasks = Vec::new();
        for requests in per_client {
            let requests = requests.into_iter();
            let client = client.clone();
            let build = build.clone();
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(requests.size_hint().0);
                let mut errors = 0usize;
                for request in requests {
                    let sent = Instant::now();
                    match build(&client, request).send().await {
                        Ok(r) if r.status().is_success() => match r.bytes().await {
                            Ok(body) if expected_len.is_none_or(|n| body.len() == n) => {
                                latencies.push(sent.elapsed())
                            }
                            _ => errors += 1,
                        },
                        Ok(r) => {
                            errors += 1;
                            if errors == 1 {
                                eprintln!(
                                    "error answer: {} {}",
                                    r.status(),
                                    r.text().await.unwrap_or_default()
                                );
                            }
                        }
                        Err(e) => {
                            errors += 1;
                            if errors == 1 {
                                eprintln!("request failed: {e}");
                            }
                        }
                    }
                }
                (latencies, errors)
            }));
        }
        let (all, errors) = gather(tasks).await?;
        Ok((started.elapsed(), all, errors))
    })
}

/// Waits for every client task and pools their latencies and error counts.
async fn gather(
    tasks: Vec<tokio::task::JoinHandle<(Vec<Duration>, usize)>>,
) -> anyhow::Result<(Vec<Duration>, usize)> {
    let mut all = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (latencies, e) = task.await?;
        all.extend(latencies);
        errors += e;
    }
    Ok((all, errors))
}

pub(super) struct Summary {
    pub(super) what: String,
    /// What one item is: "tx" for ingest, "proof" for proofs.
    pub(super) unit: &'static str,
    pub(super) clients: usize,
    pub(super) transactions: usize,
    pub(super) requests: usize,
    pub(super) errors: usize,
    pub(super) wall: Duration,
    pub(super) latencies: Vec<Duration>,
}

impl Summary {
    pub(super) fn print(mut self, json_output: bool) {
        self.latencies.sort_unstable();
        let pct = |p: f64| -> f64 {
            if self.latencies.is_empty() {
                return 0.0;
            }
            let i = ((self.latencies.len() as f64 * p).ceil() as usize)
                .clamp(1, self.latencies.len())
                - 1;
            self.latencies[i].as_secs_f64() * 1000.0
        };
        let rate = self.transactions as f64 / self.wall.as_secs_f64();
        if json_output {
            println!(
                "{}",
                json!({
                    "what": self.what, "clients": self.clients, "transactions": self.transactions,
                    "requests": self.requests, "errors": self.errors, "seconds": self.wall.as_secs_f64(),
                    "unit": self.unit, "per_sec": rate, "tx_per_sec": rate, "p50_ms": pct(0.50), "p99_ms": pct(0.99),
                })
            );
        } else {
            println!(
                "{}: C={} {} {unit} in {} requests, {:.2}s: {:.0} {unit}/s; latency per request p50 {:.2} ms, p99 {:.2} ms; errors {}",
                self.what, self.clients, self.transactions, self.requests, self.wall.as_secs_f64(), rate,
                pct(0.50), pct(0.99), self.errors, unit = self.unit
            );
        }
    }
}

fn ingest(args: IngestArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.clients > 0 && args.batch_size > 0 && args.count > 0,
        "clients, count and batch size must be positive"
    );
    let network = node_network(&node_info(&args.node)?)?;
    eprintln!("signing {} transactions ahead of time…", args.count);
    let signed = presign(&network, args.clients, args.count);
    submit_presigned(
        &args.node,
        args.clients,
        signed,
        args.batch_size,
        "hygeia",
        args.json,
    )
}

/// Sends each client's pre-signed transactions (`per_client`) to `node`
/// from `clients` concurrent clients, one per request or `batch` per
/// `/v1/transactions/batch` request, and prints the summary as `what`.
pub(super) fn submit_presigned(
    node: &str,
    clients: usize,
    per_client: Vec<Vec<Vec<u8>>>,
    batch: usize,
    what: &str,
    json_output: bool,
) -> anyhow::Result<ExitCode> {
    let transactions: usize = per_client.iter().map(Vec::len).sum();
    // Each client's requests: bodies ready to send.
    let requests: Vec<Vec<Vec<u8>>> = per_client
        .into_iter()
        .map(|txs| {
            if batch == 1 {
                txs
            } else {
                txs.chunks(batch)
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
                    .collect()
            }
        })
        .collect();
    let url = if batch == 1 {
        format!("{}/v1/transactions", node.trim_end_matches('/'))
    } else {
        format!("{}/v1/transactions/batch", node.trim_end_matches('/'))
    };
    let total_requests: usize = requests.iter().map(Vec::len).sum();
    let (wall, latencies, errors) = drive(clients, requests, None, move |client, body| {
        client
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
    })?;
    Summary {
        what: if batch == 1 {
            format!("{what} single")
        } else {
            format!("{what} batch of {batch}")
        },
        unit: "tx",
        clients,
        transactions,
        requests: total_requests,
        errors,
        wall,
        latencies,
    }
    .print(json_output);
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn postgres(args: PostgresArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.clients > 0 && args.count > 0,
        "clients and count must be positive"
    );
    eprintln!("signing {} events ahead of time…", args.count);
    let signed = presign(super::DEFAULT_NETWORK, args.clients, args.count);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (wall, latencies, errors) = runtime.block_on(async move {
        let (setup, connection) = tokio_postgres::connect(&args.dsn, tokio_postgres::NoTls)
            .await
            .with_context(|| format!("cannot connect to PostgreSQL with {:?}", args.dsn))?;
        tokio::spawn(connection);
        setup
            .batch_execute(
                "DROP TABLE IF EXISTS hygeia_bench_events;
                 CREATE TABLE hygeia_bench_events (
                     id bigserial PRIMARY KEY,
                     leaf_hash bytea NOT NULL UNIQUE,
                     signer text NOT NULL,
                     nonce text NOT NULL,
                     tx bytea NOT NULL,
                     UNIQUE (signer, nonce));",
            )
            .await?;
        let mut clients = Vec::new();
        for _ in 0..args.clients {
            let (client, connection) = tokio_postgres::connect(&args.dsn, tokio_postgres::NoTls).await?;
            tokio::spawn(connection);
            client.batch_execute("SET synchronous_commit = on").await?;
            let mode: String = client.query_one("SHOW synchronous_commit", &[]).await?.get(0);
            anyhow::ensure!(mode == "on", "synchronous_commit is {mode}, not on");
            clients.push(client);
        }
        let started = Instant::now();
        let mut tasks = Vec::new();
        for (client, events) in clients.into_iter().zip(signed) {
            tasks.push(tokio::spawn(async move {
                let insert = client
                    .prepare("INSERT INTO hygeia_bench_events (leaf_hash, signer, nonce, tx) VALUES ($1, $2, $3, $4)")
                    .await?;
                let mut latencies = Vec::with_capacity(events.len());
                let mut errors = 0usize;
                for tx in events {
                    let value: serde_json::Value = serde_json::from_slice(&tx)?;
                    let leaf = hygeia_ledger::merkle::leaf_hash(&tx).0.to_vec();
                    let signer = value["signer"].as_str().unwrap_or_default().to_string();
                    let nonce = value["nonce"].as_str().unwrap_or_default().to_string();
                    let sent = Instant::now();
                    match client.execute(&insert, &[&leaf, &signer, &nonce, &tx]).await {
                        Ok(_) => latencies.push(sent.elapsed()),
                        Err(e) => {
                            errors += 1;
                            if errors == 1 {
                                eprintln!("insert failed: {e}");
                            }
                        }
                    }
                }
                Ok::<_, anyhow::Error>((latencies, errors))
            }));
        }
        let mut all = Vec::new();
        let mut errors = 0;
        for task in tasks {
            let (latencies, e) = task.await??;
            all.extend(latencies);
            errors += e;
        }
        Ok::<_, anyhow::Error>((started.elapsed(), all, errors))
    })?;
    Summary {
        what: "postgres insert".into(),
        unit: "tx",
        clients: args.clients,
        transactions: args.count,
        requests: args.count,
        errors,
        wall,
        latencies,
    }
    .print(args.json);
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn fill(args: FillArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.data_dir)?;
    let key_path = args.data_dir.join(NODE_KEY_FILE);
    let node_key = if key_path.exists() {
        Keypair::read_key_file(&key_path)?
    } else {
        let key = Keypair::generate();
        key.write_key_file(&key_path)?;
        key
    };
    let store = Arc::new(LogStore::open(
        &args.data_dir.join(LEDGER_FILE),
        &args.network,
    )?);
    let genesis_key = Keypair::from_seed(&node_key.as_dalek().to_bytes());
    let mut writer = LogWriter::open(store, CheckpointSigner::new(&args.network, node_key)?)?;
    let modules = ModuleRegistry::with_builtins();
    if writer.checkpoint().size == 0 {
        // Leaf 0 of every log is its genesis entry (the node refuses a log
        // without one): written as `hygeia serve` writes it on a new data
        // directory, with this node as the only custodian and no governance.
        let genesis = hygeia_state::network::Genesis {
            governance: Vec::new(),
            custodians: vec![genesis_key.did().to_string()],
            legacy: None,
        };
        let tx = hygeia_state::network::genesis_tx(
            &args.network,
            &genesis_key,
            &genesis,
            &hygeia_state::txs::registry(),
        )
        .map_err(|e| anyhow::anyhow!("cannot sign the genesis entry: {e}"))?;
        let outcome = writer.append_batch(&[std::slice::from_ref(&tx)])?;
        anyhow::ensure!(
            matches!(outcome.results.first(), Some(Ok(0))),
            "the genesis entry was not written at leaf 0"
        );
    }
    let start = writer.checkpoint().size;
    anyhow::ensure!(start <= args.count, "the log already holds {start} entries");
    let bar = ProgressBar::new(args.count);
    bar.set_position(start);
    let signers: Vec<Keypair> = (0..64).map(|_| Keypair::generate()).collect();
    let run_id = format!("{:08x}", rand::random::<u32>());
    const CHUNK: u64 = 50_000;
    let mut done = start;
    while done < args.count {
        let n = CHUNK.min(args.count - done);
        let raws: Vec<Vec<u8>> = (done..done + n)
            .into_par_iter()
            .map(|i| {
                TxBuilder {
                    network: &args.network,
                    tx_type: "attest",
                    nonce: format!("fill-{run_id}-{i}"),
                    body: json!({"label": "bench.event", "subject": format!("sha256:{:064x}", i)}),
                }
                .sign(&signers[(i % 64) as usize])
            })
            .collect();
        // Every transaction is checked as the node would, signatures in
        // batches, before it is appended.
        let ctx = TxContext {
            network: &args.network,
            modules: &modules,
        };
        let txs: Vec<SignedTx> = raws
            .par_chunks(1024)
            .map(|chunk| {
                let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
                SignedTx::parse_many(&refs, &ctx)
                    .map_err(|(i, e)| anyhow::anyhow!("transaction {i}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect();
        for batch in txs.chunks(10_000) {
            writer.append_batch(&[batch])?;
        }
        done += n;
        bar.set_position(done);
    }
    bar.finish_and_clear();
    println!(
        "filled {} to {} entries",
        args.data_dir.display(),
        writer.checkpoint().size
    );
    Ok(ExitCode::SUCCESS)
}

/// Launches `hygeia serve` on `dir`; returns the process, its URL and the
/// time from launch until it answered GET /v1/node.
fn launch(
    dir: &std::path::Path,
    network: &str,
    snapshot_every: u64,
) -> anyhow::Result<(std::process::Child, Duration)> {
    use std::io::BufRead;
    let started = Instant::now();
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .arg("serve")
        .arg("--data-dir")
        .arg(dir)
        .args(["--listen", "127.0.0.1:0", "--network", network])
        .args(["--snapshot-every", &snapshot_every.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = std::io::BufReader::new(stdout).lines();
    let url = loop {
        let Some(line) = lines.next() else {
            let status = child.wait()?;
            anyhow::bail!("the node exited before it listened ({status})");
        };
        if let Some(url) = line?.strip_prefix("listening on ") {
            break url.to_owned();
        }
    };
    while node_info(&url).is_err() {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "{url} did not answer"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let elapsed = started.elapsed();
    // Keep reading its output so it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Ok((child, elapsed))
}

/// Stops a node the way an operator does (SIGTERM: a clean shutdown).
fn stop(mut child: std::process::Child) -> anyhow::Result<()> {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    anyhow::ensure!(status.success(), "kill -TERM failed");
    let status = child.wait()?;
    anyhow::ensure!(status.success(), "the node stopped with {status}");
    Ok(())
}

fn startup(args: StartupArgs) -> anyhow::Result<ExitCode> {
    let snapshots = args.data_dir.join(hygeia_node::config::SNAPSHOT_DIR);
    let every = hygeia_node::config::DEFAULT_SNAPSHOT_EVERY;
    if !args.full_replay && hygeia_node::snapshots::list(&snapshots).is_empty() {
        println!("no snapshot yet: one untimed start and clean stop writes it");
        let (child, elapsed) = launch(&args.data_dir, &args.network, every)?;
        println!("  (that start took {:.3} s)", elapsed.as_secs_f64());
        stop(child)?;
    }
    let mut times = Vec::with_capacity(args.runs);
    for run in 1..=args.runs {
        if args.full_replay && snapshots.exists() {
            std::fs::remove_dir_all(&snapshots)?;
        }
        let (child, elapsed) = launch(
            &args.data_dir,
            &args.network,
            if args.full_replay { 0 } else { every },
        )?;
        stop(child)?;
        println!("run {run}: answered after {:.3} s", elapsed.as_secs_f64());
        times.push(elapsed);
    }
    anyhow::ensure!(!times.is_empty(), "--runs must be at least 1");
    times.sort();
    let median = times[times.len() / 2];
    let newest = hygeia_node::snapshots::list(&snapshots)
        .first()
        .map(|(size, _)| size.to_string())
        .unwrap_or_else(|| "none".into());
    println!(
        "start-up ({}), {} runs: median {:.3} s, min {:.3} s, max {:.3} s; newest snapshot covers {newest} entries",
        if args.full_replay { "full replay" } else { "from the snapshot" },
        times.len(),
        median.as_secs_f64(),
        times[0].as_secs_f64(),
        times[times.len() - 1].as_secs_f64(),
    );
    Ok(ExitCode::SUCCESS)
}

fn proofs(args: ProofArgs) -> anyhow::Result<ExitCode> {
    let info = node_info(&args.node)?;
    let size = info["tree_size"].as_u64().context("tree_size")?;
    anyhow::ensure!(size >= 2, "the log needs at least 2 entries");
    let base = args.node.trim_end_matches('/').to_string();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    for kind in ["inclusion", "consistency"] {
        let urls: Vec<String> = (0..args.samples)
            .map(|_| {
                if kind == "inclusion" {
                    format!(
                        "{base}/v1/proofs/inclusion?index={}&size={size}",
                        rand::random::<u64>() % size
                    )
                } else {
                    format!(
                        "{base}/v1/proofs/consistency?from={}&to={size}",
                        1 + rand::random::<u64>() % (size - 1)
                    )
                }
            })
            .collect();
        let clients = args.clients.max(1);
        let (wall, latencies, errors) = runtime.block_on(async {
            let client = reqwest::Client::new();
            let started = Instant::now();
            let mut tasks = Vec::new();
            for part in urls.chunks(urls.len().div_ceil(clients)) {
                let part = part.to_vec();
                let client = client.clone();
                tasks.push(tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    let mut errors = 0usize;
                    for url in part {
                        let sent = Instant::now();
                        match client.get(&url).send().await {
                            Ok(r) if r.status().is_success() => {
                                let _ = r.bytes().await;
                                latencies.push(sent.elapsed());
                            }
                            _ => errors += 1,
                        }
                    }
                    (latencies, errors)
                }));
            }
            let (all, errors) = gather(tasks).await?;
            Ok::<_, anyhow::Error>((started.elapsed(), all, errors))
        })?;
        Summary {
            what: format!("{kind} proof at size {size}"),
            unit: "proof",
            clients,
            transactions: args.samples,
            requests: args.samples,
            errors,
            wall,
            latencies,
        }
        .print(args.json);
    }
    Ok(ExitCode::SUCCESS)
}

/// A patient uploads `records` records and grants a reader TREAT reads of
/// them; then `clients` clients read them. Requests are signed before the
/// clock starts (their `created` stays inside the node's window for five
/// minutes, longer than a run).
fn reads(args: ReadArgs) -> anyhow::Result<ExitCode> {
    use crate::client::{Client, RecordUpload};
    anyhow::ensure!(
        args.clients > 0 && args.count > 0 && args.records > 0,
        "clients, count and records must be positive"
    );
    let patient = Keypair::generate();
    let patient_did = patient.did().to_string();
    let mut patient = Client::with_key(&args.node, patient);
    let reader = Keypair::generate();
    let governance = Keypair::read_key_file(&args.governance_key)
        .with_context(|| format!("cannot use key file {}", args.governance_key.display()))?;
    eprintln!("licensing the reader…");
    super::licence::license(
        &args.node,
        &governance,
        &Keypair::generate(),
        "FR",
        &[(&reader, "physician")],
    )?;
    eprintln!(
        "uploading {} records of {} bytes…",
        args.records, args.record_bytes
    );
    let work = tempfile::tempdir()?;
    let mut ids = Vec::new();
    for i in 0..args.records {
        let mut content = format!(
            "{{\"resourceType\":\"Observation\",\"id\":\"bench-{i}\",\"note\":[{{\"text\":\""
        )
        .into_bytes();
        while content.len() < args.record_bytes.saturating_sub(5) {
            content.push(b'a' + (content.len() % 26) as u8);
        }
        content.extend_from_slice(b"\"}]}");
        content.resize(args.record_bytes.max(content.len()), b' ');
        let file = work.path().join("record.json");
        std::fs::write(&file, &content)?;
        let upload = RecordUpload {
            patient: &patient_did,
            category: "lab",
            resource_type: "Observation",
            media_type: "application/fhir+json",
            purpose: "TREAT",
        };
        let answer = patient.upload_record(&upload, &file)?;
        ids.push(
            answer["record"]
                .as_str()
                .context("no record id")?
                .to_owned(),
        );
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    patient.submit(
        "consent.grant",
        json!({"patient": patient_did, "grantee": reader.did().to_string(), "scope": {"categories": ["lab"]},
               "actions": ["read"], "purpose": "TREAT", "not_before": now as i64 - 60, "not_after": now as i64 + 86_400}),
    )?;
    eprintln!("signing {} requests ahead of time…", args.count);
    let base = args.node.trim_end_matches('/').to_owned();
    let signed: Vec<(String, String, String)> = (0..args.count)
        .into_par_iter()
        .map(|i| {
            let path = format!("/v1/records/{}?purpose=TREAT", ids[i % ids.len()]);
            let headers = hygeia_auth::sign_request(
                &reader,
                &reqwest::Method::GET,
                &path,
                None,
                now,
                &hygeia_auth::random_nonce(),
            )
            .expect("a well-formed path and nonce");
            (
                format!("{base}{path}"),
                headers.signature_input,
                headers.signature,
            )
        })
        .collect();
    let mut per_client: Vec<Vec<(String, String, String)>> = vec![Vec::new(); args.clients];
    for (i, request) in signed.into_iter().enumerate() {
        per_client[i % args.clients].push(request);
    }
    let expected = args.record_bytes;
    let (wall, latencies, errors) = drive(
        args.clients,
        per_client,
        Some(expected),
        |client, (url, input, signature): (String, String, String)| {
            client
                .get(url)
                .header("signature-input", input)
                .header("signature", signature)
        },
    )?;
    Summary {
        what: format!("hygeia reads of {} B", args.record_bytes),
        unit: "read",
        clients: args.clients,
        transactions: args.count,
        requests: args.count,
        errors,
        wall,
        latencies,
    }
    .print(args.json);
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
