//! `hygeia serve` and `hygeia demo`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use hygeia_identity::Keypair;
use hygeia_ledger::tx::TxContext;
use hygeia_ledger::{SignedTx, TxBuilder};
use hygeia_node::{Node, NodeConfig};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::demo_fhir;
use super::demo_records::{self, DemoKeys};
use super::DEFAULT_NETWORK;

#[derive(Args)]
pub struct ServeArgs {
    /// Data directory: holds node.key (the checkpoint signer) and ledger.redb.
    #[arg(long, default_value = "./hygeia-data")]
    pub data_dir: PathBuf,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:7000")]
    pub listen: SocketAddr,
    /// Network name: the log's origin, and the `network` every transaction names.
    #[arg(long, default_value = DEFAULT_NETWORK)]
    pub network: String,
    /// Most transactions per durable batch.
    #[arg(long, default_value_t = 8192)]
    pub max_batch: usize,
    /// Microseconds the sequencer waits for more work before writing a batch
    /// (0: write whatever is queued; batches grow while the disk is busy).
    #[arg(long, default_value_t = 0)]
    pub batch_wait_us: u64,
    /// The governance key's did:key: registers organizations and installs
    /// governance policies. Fixed at the first start of a data directory.
    #[arg(long)]
    pub governance: Option<String>,
    /// Largest record accepted, in bytes.
    #[arg(long, default_value_t = hygeia_node::config::DEFAULT_MAX_RECORD_BYTES)]
    pub max_record_bytes: u64,
    /// The https URL this node is reached at from outside, without a
    /// trailing '/': the issuer (iss) of the SMART Health Cards it signs.
    /// Verifiers fetch <URL>/.well-known/jwks.json, so that address must
    /// reach this node's /.well-known/jwks.json. Default: https://<network>.
    /// SMART discovery lists its endpoints under it, and backend clients'
    /// assertions may name <URL>/auth/token as their aud.
    #[arg(long)]
    pub public_url: Option<String>,
    /// Most connections served at once; past them a few more are answered
    /// 503 (health checks still answered), the rest closed. Keep it under
    /// the process's file-descriptor limit (ulimit -n).
    #[arg(long, default_value_t = hygeia_node::server::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Seconds a connection may take to send a request's header, and may
    /// stay idle between requests.
    #[arg(long, default_value_t = 10)]
    pub header_timeout_secs: u64,
    /// Write a state snapshot (<data-dir>/snapshots) when the log crosses a
    /// multiple of this many entries, and at a clean shutdown, so a restart
    /// replays only the log after it. The nodes of a network should use one
    /// value: they then snapshot at the same sizes, which a node catching
    /// up installs (`hygeia network catch-up`). 0: write none.
    #[arg(long, default_value_t = hygeia_node::config::DEFAULT_SNAPSHOT_EVERY)]
    pub snapshot_every: u64,
    /// Order the log with the other organizations' nodes named in this
    /// peers file (written by `hygeia network init`, or by `hygeia network
    /// join` for a node that joins later: that one follows the network
    /// from its genesis and votes once an epoch names it; the network
    /// name is taken from it) instead of alone (docs/network.md).
    #[arg(long)]
    pub peers: Option<PathBuf>,
}

#[derive(Args)]
pub struct DemoArgs {
    /// Data directory for the demo node (created; reused if it exists).
    #[arg(long, default_value = "./hygeia-demo")]
    pub data_dir: PathBuf,
    #[arg(long, default_value = "127.0.0.1:7000")]
    pub listen: SocketAddr,
    /// Synthetic patients who write their FHIR records through the FHIR API
    /// at the first start (60 resources each; the first three grant the
    /// clinician reads). 0 seeds no FHIR data.
    #[arg(long, default_value_t = demo_fhir::PATIENTS)]
    pub fhir_patients: usize,
    /// The https URL this node is reached at from outside, without a
    /// trailing '/': the issuer (iss) of the SMART Health Cards it signs.
    /// Verifiers fetch <URL>/.well-known/jwks.json, so that address must
    /// reach this node's /.well-known/jwks.json. Default: https://<network>.
    #[arg(long)]
    pub public_url: Option<String>,
    /// Start this many organizations' nodes instead, ordering one log
    /// together (BFT, docs/network.md), with HTTP on consecutive ports
    /// from --listen and p2p 100 ports above. The demo data is seeded
    /// through the first node at the first start (--fhir-patients of them
    /// write FHIR records), and every node orders it.
    #[arg(long)]
    pub nodes: Option<usize>,
}

pub fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    run_node(args, None)
}

pub fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    if let Some(nodes) = args.nodes {
        return demo_network(&args.data_dir, args.listen, nodes, args.fhir_patients);
    }
    run_node(
        ServeArgs {
            data_dir: args.data_dir,
            listen: args.listen,
            network: DEFAULT_NETWORK.to_string(),
            max_batch: 8192,
            batch_wait_us: 0,
            governance: None,
            max_record_bytes: hygeia_node::config::DEFAULT_MAX_RECORD_BYTES,
            public_url: args.public_url,
            max_connections: hygeia_node::server::DEFAULT_MAX_CONNECTIONS,
            header_timeout_secs: 10,
            snapshot_every: hygeia_node::config::DEFAULT_SNAPSHOT_EVERY,
            peers: None,
        },
        Some(args.fhir_patients),
    )
}

/// Runs a node; `demo` (the number of FHIR patients to seed) makes it the
/// demo node.
fn run_node(args: ServeArgs, demo: Option<usize>) -> anyhow::Result<ExitCode> {
    let fhir_patients = demo.unwrap_or(0);
    let demo = demo.is_some();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let mut config = NodeConfig::new(args.data_dir.clone(), args.listen, args.network.clone());
        config.batch.max_batch_txs = args.max_batch.max(1);
        config.batch.max_wait = Duration::from_micros(args.batch_wait_us);
        config.governance = args.governance.clone();
        config.max_record_bytes = args.max_record_bytes;
        config.public_url = args.public_url.clone();
        config.connections.max_connections = args.max_connections.max(1);
        config.connections.header_read_timeout = Duration::from_secs(args.header_timeout_secs.max(1));
        config.snapshot_every = args.snapshot_every;
        if let Some(path) = &args.peers {
            let peers = hygeia_node::ordering::read_peers(path)?;
            config.network = peers.network.clone();
            config.peers = Some(peers);
        }
        let demo_keys = DemoKeys {
            dir: args.data_dir.join("demo-keys"),
        };
        if demo {
            // The demo network's governance key is one of the demo's keys.
            config.governance = Some(demo_keys.did("governance")?);
            register_demo_smart_client(&args.data_dir)?;
        }
        let node = Arc::new(
            Node::open(config).with_context(|| format!("cannot open the node in {}", args.data_dir.display()))?,
        );
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {} (is another node running there? try --listen 127.0.0.1:0)", args.listen))?;
        let address = listener.local_addr()?;
        let url = format!("http://{address}");
        let data_dir = std::fs::canonicalize(&args.data_dir).unwrap_or(args.data_dir.clone());
        let server = tokio::spawn(hygeia_node::serve(node.clone(), listener, shutdown_signal()));
        // With peers: pulls the records this node's organization is
        // entitled to from the nodes that hold them (docs/network.md).
        let follower = hygeia_node::follower::spawn(node.clone());
        if demo {
            // A new log holds its genesis entry only.
            let fresh = node.sequencer.latest_checkpoint().size <= 1;
            let seeded = seed_demo(&node, &data_dir).await?;
            let records_file = data_dir.join("demo-records.json");
            if fresh {
                let seed_url = url.clone();
                let work = data_dir.join("demo-work");
                let keys = DemoKeys { dir: demo_keys.dir.clone() };
                let fhir_dir = data_dir.clone();
                let records = tokio::task::spawn_blocking(move || {
                    let records = demo_records::seed(&seed_url, &keys, &work)?;
                    super::demo_economy::seed(&seed_url, &keys, &work)?;
                    super::demo_sharing::seed(&seed_url, &keys, &work)?;
                    super::demo_trials::seed(&seed_url, &keys, &work)?;
                    let dataset = super::demo_datasets::seed(&seed_url, &keys, &work)?;
                    std::fs::write(work.join(DEMO_DATASET_FILE), &dataset)?;
                    if fhir_patients > 0 {
                        demo_fhir::seed(&seed_url, &keys, &fhir_dir, fhir_patients)?;
                    }
                    anyhow::Ok(records)
                })
                .await??;
                let listed: Vec<serde_json::Value> = records
                    .iter()
                    .map(|r| json!({"id": r.id, "category": r.category, "what": r.what}))
                    .collect();
                std::fs::write(&records_file, serde_json::to_vec_pretty(&listed)?)?;
            }
            let records: Vec<serde_json::Value> = std::fs::read(&records_file)
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                .unwrap_or_default();
            print_demo_banner(&node, &url, &data_dir, seeded, &records);
            demo_fhir::print_banner(&url, &data_dir, &demo_keys);
        }
        // Tests and scripts read this line to learn the port.
        println!("listening on {url}");
        println!("data directory: {}", data_dir.display());
        std::io::stdout().flush().ok();
        tracing::info!(%url, data_dir = %data_dir.display(), network = %node.config.network, "node started");
        server.await??;
        if let Some(follower) = follower {
            follower.abort();
            let _ = follower.await;
        }
        // The last handle stops the sequencer, which writes the shutdown
        // state snapshot (hygeia_node::snapshots).
        match Arc::try_unwrap(node) {
            Ok(node) => drop(node),
            Err(_) => tracing::warn!("the node is still in use at shutdown; no shutdown snapshot"),
        }
        tracing::info!("node stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// `hygeia demo --nodes N`: N organizations' nodes on this machine, one
/// process each, ordering one log together; stops them all at Ctrl-C.
/// The demo network's snapshot interval (entries).
const DEMO_NETWORK_SNAPSHOT_EVERY: u64 = 200;

fn demo_network(
    base: &Path,
    listen: SocketAddr,
    n: usize,
    fhir_patients: usize,
) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        (1..=32).contains(&n),
        "--nodes takes 1 to 32 (four tolerate one faulty node)"
    );
    let ip = listen.ip();
    let http = |i: usize| SocketAddr::new(ip, listen.port() + i as u16);
    let dirs: Vec<PathBuf> = (1..=n).map(|i| base.join(format!("org-{i}"))).collect();
    // The demo's participants, the governance key among them, are shared by
    // the organizations: the genesis names that governance key.
    let keys = DemoKeys {
        dir: base.join("demo-keys"),
    };
    let fresh = !dirs[0].join(hygeia_node::config::PEERS_FILE).exists();
    if fresh {
        let nodes: Vec<hygeia_node::ordering::InitNode> = dirs
            .iter()
            .enumerate()
            .map(|(i, dir)| hygeia_node::ordering::InitNode {
                data_dir: dir.clone(),
                p2p: SocketAddr::new(ip, listen.port() + 100 + i as u16),
                api: Some(format!("http://{}", http(i))),
            })
            .collect();
        hygeia_node::ordering::init(DEFAULT_NETWORK, Some(keys.did("governance")?), &nodes)?;
        // Only the first node's patients sign in with the demo app.
        register_demo_smart_client(&dirs[0])?;
    }
    let exe = std::env::current_exe()?;
    let mut children = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        // Each node's log lines go to a file of its own, so the banner and
        // the seeding progress stay readable.
        let log_path = dir.join("node.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("cannot open {}", log_path.display()))?;
        let child = std::process::Command::new(&exe)
            .arg("serve")
            .arg("--data-dir")
            .arg(dir)
            .arg("--peers")
            .arg(dir.join(hygeia_node::config::PEERS_FILE))
            .arg("--listen")
            .arg(http(i).to_string())
            // Every node snapshots its state where the log crosses a
            // multiple of this, so the demo's log leaves snapshots that a
            // node catching up could install (`hygeia network catch-up`).
            .arg("--snapshot-every")
            .arg(DEMO_NETWORK_SNAPSHOT_EVERY.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start the node in {}", dir.display()))?;
        children.push(child);
    }
    // Print the URLs once every node answers.
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    for i in 0..n {
        let url = format!("http://{}/v1/health", http(i));
        while !client
            .get(&url)
            .send()
            .is_ok_and(|r| r.status().is_success())
        {
            // A node that stopped at start (a port taken, a data directory
            // it refuses) says why in its log: show it rather than wait.
            let stopped = children[i].try_wait().ok().flatten();
            if stopped.is_some() || std::time::Instant::now() > deadline {
                for mut child in children {
                    let _ = child.kill();
                }
                let log = dirs[i].join("node.log");
                let tail: Vec<String> = std::fs::read_to_string(&log)
                    .unwrap_or_default()
                    .lines()
                    .rev()
                    .take(5)
                    .map(str::to_owned)
                    .collect();
                let tail: Vec<String> = tail.into_iter().rev().collect();
                match stopped {
                    Some(status) => anyhow::bail!(
                        "the node of org-{} stopped at start ({status}); the end of {}:\n{}",
                        i + 1,
                        log.display(),
                        tail.join("\n")
                    ),
                    None => anyhow::bail!(
                        "the node at http://{} did not answer within 60 s; the end of {}:\n{}",
                        http(i),
                        log.display(),
                        tail.join("\n")
                    ),
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    // Seeded at the first start only: a network made by an earlier version
    // (whose genesis names no governance key) is started as it is.
    let seeded = base.join("demo-network-seeded.json");
    if fresh && !seeded.exists() {
        let urls: Vec<String> = (0..n).map(|i| format!("http://{}", http(i))).collect();
        if let Err(error) = seed_network(&urls, &dirs[0], &keys, base, fhir_patients) {
            for mut child in children {
                let _ = child.kill();
            }
            return Err(error.context("seeding the demo data through org-1's node"));
        }
    }
    let sizes: Vec<String> = (0..n)
        .map(|i| {
            client
                .get(format!("http://{}/checkpoint", http(i)))
                .send()
                .and_then(|r| r.text())
                .ok()
                .and_then(|note| note.lines().nth(1).map(str::to_owned))
                .unwrap_or_else(|| "?".into())
        })
        .collect();
    println!("Hygeia demo network: {n} organizations' nodes ordering one log (BFT)");
    for (i, dir) in dirs.iter().enumerate() {
        println!(
            "  org-{}: http://{}   data directory {}   (log: node.log there)",
            i + 1,
            http(i),
            dir.display()
        );
    }
    println!("  log sizes: {}", sizes.join(", "));
    if let Ok(bytes) = std::fs::read(&seeded) {
        if let Ok(summary) = serde_json::from_slice::<serde_json::Value>(&bytes) {
            println!(
                "  seeded through org-1: {} records, {} FHIR resources of {} patients, a trial, a research-sharing programme",
                summary["records"], summary["fhir_resources"], summary["fhir_patients"]
            );
        }
    }
    let replicated = std::fs::read(&seeded)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|summary| summary["replicated"].as_str().map(str::to_owned));
    if let Some(record) = &replicated {
        println!(
            "  record {record} (patient-2's HbA1c, granted to the clinic's clinician) held by org-1, replicated to org-2"
        );
    }
    let epoch_leaf = std::fs::read(&seeded)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|summary| summary["epoch_leaf"].as_u64());
    if let Some(leaf) = epoch_leaf {
        println!(
            "  epoch 1 since leaf {leaf}: governance named the {n} nodes again, with their p2p addresses, as its validators (network.validators)"
        );
    }
    println!("  demo keys: {}", keys.dir.display());
    println!();
    println!("Try, in another terminal:");
    println!("  hygeia key new --out alice.key");
    println!(
        "  hygeia tx attest --node http://{} --key alice.key --label demo --subject sha256:$(echo hello | sha256sum | cut -c1-64)",
        http(0)
    );
    for i in 0..n {
        println!("  curl -s http://{}/checkpoint", http(i));
    }
    println!(
        "  hygeia verify http://{} --quorum {}   # the whole log, and its checkpoint cosigned by a quorum of the organizations",
        http(n - 1),
        2 * ((n - 1) / 3) + 1
    );
    println!(
        "  curl -s http://{}/v1/studies   # the demo trial, ordered by every node",
        http(n - 1)
    );
    if epoch_leaf.is_some() {
        println!(
            "  curl -s http://{}/v1/node   # the network's epoch and its validators (hygeia network validators --help changes them)",
            http(n - 1)
        );
    }
    println!(
        "  curl -s http://{}/v1/network/snapshots   # the state snapshots a node signs every {DEMO_NETWORK_SNAPSHOT_EVERY} entries: a node that was down installs one f + 1 organizations vouch for (hygeia network catch-up --help)",
        http(0)
    );
    if let Some(record) = &replicated {
        println!(
            "  hygeia record get --node http://{} --key {} {record}   # the clinic's clinician, served by the clinic's node (org-2) from its copy",
            http(1),
            keys.path("clinician").display()
        );
    }
    let org2 = format!("http://{}", http(1));
    if let Some(search) = demo_fhir::granted_code_search(&org2, &dirs[0]) {
        println!(
            "  TOKEN=$(hygeia fhir token --node {org2} --key {})",
            keys.path("clinician").display()
        );
        println!(
            "  curl -s -H \"Authorization: Bearer $TOKEN\" '{search}'   # the same clinician through org-2's FHIR API: the copies org-2 received of the granted results"
        );
    }
    println!("Ctrl-C stops every node.");
    std::io::stdout().flush().ok();
    let mut failed = false;
    for mut child in children {
        failed |= !child.wait().map(|s| s.success()).unwrap_or(false);
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Seeds the demo data through the first node of the demo network, once:
/// every submission is ordered by all the nodes, so each of them holds it.
/// With two nodes or more, the lab is org-1's organization and the clinic
/// org-2's (`network.node`): patient-2's HbA1c, which the lab uploaded at
/// org-1 and patient-2 lets the clinic's clinician read, goes to org-2's
/// node by itself (docs/network.md, "Replication to entitled nodes").
fn seed_network(
    urls: &[String],
    first_dir: &Path,
    keys: &DemoKeys,
    base: &Path,
    fhir_patients: usize,
) -> anyhow::Result<()> {
    let url = urls[0].as_str();
    println!("seeding the demo data through {url} (each transaction is ordered by every node) ...");
    std::io::stdout().flush().ok();
    let work = base.join("demo-work");
    let records = demo_records::seed(url, keys, &work)?;
    let replicated = if urls.len() >= 2 {
        Some(bind_and_replicate(urls, first_dir, keys).context("replicating a record to org-2")?)
    } else {
        None
    };
    super::demo_economy::seed(url, keys, &work)?;
    super::demo_sharing::seed(url, keys, &work)?;
    super::demo_trials::seed(url, keys, &work)?;
    let dataset = super::demo_datasets::seed(url, keys, &work)?;
    std::fs::write(work.join(DEMO_DATASET_FILE), &dataset)?;
    let fhir = if fhir_patients > 0 {
        demo_fhir::seed(url, keys, &base.join("org-1"), fhir_patients)?
    } else {
        serde_json::Value::Null
    };
    let epoch_leaf = if urls.len() >= 2 {
        Some(name_the_validators_again(urls, first_dir, keys).context("changing the epoch")?)
    } else {
        None
    };
    let summary = json!({
        "node": url,
        "records": records.len(),
        "fhir_patients": fhir_patients,
        "fhir_resources": fhir["resources"].as_u64().unwrap_or(0),
        "replicated": replicated,
        "epoch_leaf": epoch_leaf,
    });
    let path = base.join("demo-network-seeded.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&summary)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Binds the lab to org-1's node and the clinic to org-2's, then waits
/// until org-2's node holds patient-2's lab record (its clinician was
/// granted it); returns the record's id.
fn bind_and_replicate(
    urls: &[String],
    first_dir: &Path,
    keys: &DemoKeys,
) -> anyhow::Result<String> {
    use crate::client::Client;
    let peers =
        hygeia_node::ordering::read_peers(&first_dir.join(hygeia_node::config::PEERS_FILE))?;
    let mut governance = Client::with_key(&urls[0], keys.key("governance")?);
    for (org, peer) in [
        (demo_records::LAB, &peers.peers[0]),
        (demo_records::CLINIC, &peers.peers[1]),
    ] {
        governance
            .submit("network.node", json!({"org": org, "node": peer.did}))
            .with_context(|| format!("binding {org} to its node"))?;
    }
    let patient = keys.did("patient-2")?;
    let listing = format!("/v1/records?patient={patient}");
    let record = Client::with_key(&urls[0], keys.key("patient-2")?).get_json(&listing)?["records"]
        [0]["commitment"]
        .as_str()
        .context("patient-2 has a record")?
        .to_owned();
    let at_org2 = Client::with_key(&urls[1], keys.key("patient-2")?);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let held = at_org2.get_json(&listing).ok().is_some_and(|answer| {
            answer["records"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|r| r["commitment"] == record.as_str() && r["held_here"] == true)
        });
        if held {
            return Ok(record);
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "org-2's node did not pull record {record} within 30 s (see org-2/node.log)"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Governance names every node of the demo, with its p2p address, as a
/// validator of epoch 1 (`network.validators`), so the network shows an
/// epoch change: every node stops epoch 0's consensus engine after the
/// block that holds it and goes on in epoch 1's. Waits until every node
/// says epoch 1; returns the transaction's leaf index.
fn name_the_validators_again(
    urls: &[String],
    first_dir: &Path,
    keys: &DemoKeys,
) -> anyhow::Result<u64> {
    use crate::client::Client;
    let peers =
        hygeia_node::ordering::read_peers(&first_dir.join(hygeia_node::config::PEERS_FILE))?;
    let validators: Vec<serde_json::Value> = peers
        .peers
        .iter()
        .map(|peer| json!({"key": peer.did, "address": peer.p2p.to_string()}))
        .collect();
    let receipt = Client::with_key(&urls[0], keys.key("governance")?).submit(
        "network.validators",
        json!({"epoch": 1, "validators": validators}),
    )?;
    let leaf = receipt["index"]
        .as_u64()
        .context("the node did not say the transaction's leaf index")?;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    for url in urls {
        while crate::commands::node_info(url)
            .ok()
            .and_then(|info| info["epoch"].as_u64())
            != Some(1)
        {
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "the node at {url} did not reach epoch 1 within 30 s (see its node.log)"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    Ok(leaf)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

/// The demo's participants, each with a key file under `<data>/demo-keys`.
const DEMO_PARTICIPANTS: [(&str, &[&str]); 4] = [
    ("lab", &["lab.result", "lab.panel"]),
    ("clinic", &["encounter.note", "imaging.report"]),
    ("device", &["device.reading", "cold-chain.reading"]),
    ("researcher", &["study.protocol", "study.milestone"]),
];

/// Seeds an empty log with attestations over synthetic documents generated
/// here. Only hashes reach the log. Returns how many were added.
async fn seed_demo(node: &Node, data_dir: &Path) -> anyhow::Result<u64> {
    // Only a new log (its genesis entry alone) is seeded.
    if node.sequencer.latest_checkpoint().size > 1 {
        return Ok(0);
    }
    let keys_dir = data_dir.join("demo-keys");
    std::fs::create_dir_all(&keys_dir)?;
    let ctx = TxContext {
        network: &node.config.network,
        modules: &node.modules,
    };
    let mut added = 0;
    for (name, labels) in DEMO_PARTICIPANTS {
        let path = keys_dir.join(format!("{name}.key"));
        let key = if path.exists() {
            Keypair::read_key_file(&path)?
        } else {
            let key = Keypair::generate();
            key.write_key_file(&path)?;
            key
        };
        let mut txs = Vec::new();
        for i in 0..250u32 {
            let label = labels[i as usize % labels.len()];
            let document =
                format!("synthetic {label} #{i} generated for the Hygeia demo by {name}");
            let raw = TxBuilder {
                network: &node.config.network,
                tx_type: "attest",
                nonce: format!("demo-{i}"),
                body: json!({"label": label, "subject": format!("sha256:{}", hex::encode(Sha256::digest(document)))}),
            }
            .sign(&key);
            txs.push(SignedTx::parse(&raw, &ctx)?);
        }
        added += txs.len() as u64;
        node.sequencer.submit(txs).await?;
    }
    Ok(added)
}

fn print_demo_banner(
    node: &Node,
    url: &str,
    data_dir: &Path,
    seeded: u64,
    records: &[serde_json::Value],
) {
    let size = node.sequencer.latest_checkpoint().size;
    let keys = data_dir.join("demo-keys");
    let key = |name: &str| keys.join(format!("{name}.key")).display().to_string();
    let did = |name: &str| {
        Keypair::read_key_file(&keys.join(format!("{name}.key")))
            .map(|k| k.did().to_string())
            .unwrap_or_else(|_| "?".into())
    };
    println!("Hygeia demo node");
    println!("  URL:            {url}");
    println!("  data directory: {}", data_dir.display());
    let network_id = node
        .state
        .read()
        .state
        .network
        .id()
        .unwrap_or_default()
        .to_owned();
    println!("  network:        {}", node.config.network);
    println!("  network id:     {network_id} (the genesis entry's hash, leaf 0)");
    println!("  node DID:       {}", node.node_did);
    println!("  verifier key:   {}", node.verifier_key);
    if seeded > 0 {
        println!("  log:            {size} entries (seeded {seeded} demo attestations, a clinic, a lab, a research institute and a patient)");
    } else {
        println!("  log:            {size} entries (existing data directory reused)");
    }
    println!(
        "  keys:           {} (governance, clinic-admin, clinician, lab, researcher, patient, ...)",
        keys.display()
    );
    println!("  patient:        {}", did("patient"));
    println!(
        "  clinician:      {} (did:web:clinic.example, FR)",
        did("clinician")
    );
    println!(
        "  licensing board: {} (trusted for FR licences; licensed the clinician and the lab technician)",
        did(demo_records::BOARD)
    );
    let programs = node
        .state
        .read()
        .state
        .programs
        .all()
        .into_iter()
        .map(|(id, _)| id.to_owned())
        .collect::<Vec<_>>();
    if let Some(program) = programs.first() {
        let work = data_dir.join("demo-work");
        println!("  care program:   {program} (HbA1c < 7.0 %, 50 gluco-token per claim; patient-2 was paid)");
        println!(
            "    hygeia program claim --node {url} --key {} --credential {} --opening {} {program}",
            key("patient"),
            work.join("hba1c-patient.json").display(),
            work.join("hba1c-patient.opening.json").display()
        );
    }
    let sharing = node
        .state
        .read()
        .state
        .sharing
        .all()
        .into_iter()
        .map(|(id, p)| (id.to_owned(), p.paid))
        .next();
    if let Some((program, paid)) = sharing {
        println!("  research sharing: {program} (2 share-token a day of HRESCH consent, 5 a counted read; patient-2 was paid {paid})");
        println!("    hygeia sharing show --node {url} {program}");
    }
    println!("  patient's records (synthetic):");
    for record in records {
        println!(
            "    {}  {:<14} {}",
            record["id"].as_str().unwrap_or("?"),
            record["category"].as_str().unwrap_or("?"),
            record["what"].as_str().unwrap_or("?")
        );
    }
    let lab = records
        .iter()
        .find(|r| r["category"] == "lab")
        .and_then(|r| r["id"].as_str())
        .unwrap_or("<lab-record-id>");
    let mental = records
        .iter()
        .find(|r| r["category"] == "mental-health")
        .and_then(|r| r["id"].as_str())
        .unwrap_or("<mental-health-record-id>");
    println!();
    println!("Try, in another terminal (hygeia = cargo run --release --bin hygeia --):");
    println!(
        "  hygeia record get --node {url} --key {} {lab}            # denied: no consent yet",
        key("clinician")
    );
    println!(
        "  hygeia consent grant --node {url} --key {} --to {} --categories lab --purpose TREAT --days 30",
        key("patient"),
        did("clinician")
    );
    println!(
        "  hygeia record get --node {url} --key {} {lab}            # permitted",
        key("clinician")
    );
    println!(
        "  hygeia record get --node {url} --key {} {mental}         # denied: out of scope",
        key("clinician")
    );
    println!(
        "  hygeia record get --node {url} --key {} --purpose ETREAT --break-glass 'unconscious in the ER' {mental}",
        key("clinician")
    );
    println!("  hygeia audit --node {url} --key {}                        # who looked, verified offline", key("patient"));
    println!(
        "  hygeia licence show --node {url} {}   # the clinician's licence and its standing",
        did("clinician")
    );
    println!(
        "  hygeia record erase --node {url} --key {} {mental}",
        key("patient")
    );
    if let Ok(dataset) = std::fs::read_to_string(data_dir.join("demo-work").join(DEMO_DATASET_FILE))
    {
        println!("  hygeia dataset status --node {url} {}   # a research dataset; one member's consent was revoked since", dataset.trim());
    }
    println!("  hygeia verify {url} --genesis {network_id}   # the whole log, from its genesis");
    println!("  hygeia verify {url} --quorum 1   # and its checkpoint cosigned by the custodian (docs/witness.md)");
    println!("  open {url}/openapi.json for the whole API; docs/records.md explains the rules");
    println!();
    println!("Or in a browser (docs/apps.md):");
    println!("  start:          {url}/app/  (create a key, or import a key file: click 'Or import a key file')");
    println!(
        "  patient wallet: {url}/app/#/wallet   sign in by importing {}",
        key("patient")
    );
    println!(
        "  clinician:      {url}/app/#/portal   sign in by importing {} (in another browser profile or a private window, or switch keys on Start)",
        key("clinician")
    );
    println!("  dashboards:     {url}/app/#/dashboard   ledger explorer: {url}/app/#/ledger   (no key needed)");
    println!();
    println!("SMART on FHIR apps (docs/smart.md):");
    println!(
        "  configuration:  {url}/fhir/.well-known/smart-configuration   (FHIR base {url}/fhir)"
    );
    println!(
        "  demo client:    client_id {DEMO_SMART_CLIENT}, redirect URI {DEMO_SMART_REDIRECT} (PKCE S256; registered in {})",
        data_dir.join(hygeia_node::config::SMART_CLIENTS_FILE).display()
    );
    println!();
}

/// Where the demo keeps its dataset's id (under `demo-work`), for the banner.
const DEMO_DATASET_FILE: &str = "dataset-id.txt";

/// The SMART client the demo registers: a public app on the person's own
/// machine (docs/smart.md, "Registering a client").
const DEMO_SMART_CLIENT: &str = "hygeia-demo-app";
const DEMO_SMART_REDIRECT: &str = "http://localhost:9000/callback.html";

/// Registers the demo's SMART client, unless the operator already wrote a
/// clients file.
fn register_demo_smart_client(data_dir: &Path) -> anyhow::Result<()> {
    let path = data_dir.join(hygeia_node::config::SMART_CLIENTS_FILE);
    if path.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(data_dir)?;
    let clients = serde_json::json!({"clients": [{
        "client_id": DEMO_SMART_CLIENT,
        "name": "Hygeia demo app",
        "redirect_uris": [DEMO_SMART_REDIRECT],
        "purpose_of_use": "PATRQT",
    }]});
    std::fs::write(&path, serde_json::to_vec_pretty(&clients)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
