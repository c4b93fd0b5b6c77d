//! `hygeia verify`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use hygeia_identity::Keypair;
use hygeia_ledger::checkpoint::CheckpointVerifier;
use hygeia_ledger::verify::{verify_log, LogSource, StoreSource, VerifyOptions};
use hygeia_ledger::{CheckpointSigner, LogStore, ModuleRegistry};
use hygeia_node::config::{LEDGER_FILE, NODE_KEY_FILE};
use indicatif::{ProgressBar, ProgressStyle};

use crate::http_source::HttpSource;

#[derive(Args)]
pub struct VerifyArgs {
    /// A node's URL (http://…) or a node's data directory.
    target: String,
    /// A checkpoint saved earlier (e.g. with --save-checkpoint): the log must
    /// still contain exactly that tree as its prefix.
    #[arg(long)]
    since: Option<PathBuf>,
    /// The log's checkpoint verifier key (<origin>+<id>+<base64>). Without
    /// it, a URL's own /v1/node answer is trusted, and a data directory's
    /// node.key is used.
    #[arg(long)]
    key: Option<String>,
    /// After a successful check, save the verified checkpoint here.
    #[arg(long)]
    save_checkpoint: Option<PathBuf>,
    /// Bundles of 256 entries fetched and checked in parallel.
    #[arg(long, default_value_t = 32)]
    parallel: usize,
    /// Pin the network: the hex leaf hash of the log's genesis entry (its
    /// network id, `network_id` in GET /v1/node). The log must start with
    /// exactly that genesis.
    #[arg(long)]
    genesis: Option<String>,
    /// Optional pin: the network's governance did:key must be this one.
    /// (The rules come from the log's genesis entry; this only checks it.)
    #[arg(long)]
    governance: Option<String>,
    /// Optional pin: this node key must be in the custodian set the log
    /// ends with. (The rules come from the log; this only checks it.)
    #[arg(long)]
    node_did: Option<String>,
    /// A state snapshot file to check: it must be signed by the node, name
    /// a size and root the log has, and hold exactly the state the replay
    /// of the log up to that size gives. Repeatable. For a data directory
    /// without it, every snapshot in <data-dir>/snapshots is checked.
    #[arg(long)]
    snapshot: Vec<PathBuf>,
    /// Require at least N valid C2SP cosignatures (`cosignature/v1`) on the
    /// checkpoint, from the node keys of the custodian set the log names.
    /// A URL's /checkpoint carries them; a data directory's are those its
    /// node collected (witness.redb).
    #[arg(long)]
    quorum: Option<usize>,
}

/// A state snapshot to compare with the replay.
struct SnapshotCheck {
    path: PathBuf,
    /// The header's size and state digest, once its own checks passed.
    claim: Result<(u64, String), String>,
}

/// Reads `path` and runs the checks that need no replay: format,
/// signature, the log's size and root at that size, its own digest.
fn read_snapshot(
    path: PathBuf,
    network: &str,
    node: &str,
    view: &hygeia_ledger::store::Snapshot,
) -> SnapshotCheck {
    let claim = std::fs::read(&path)
        .map_err(|e| format!("cannot read it: {e}"))
        .and_then(|bytes| {
            hygeia_node::snapshots::check(&bytes, view, network, node)
                .map_err(|e| format!("{e} ({})", e.code()))?;
            let header = hygeia_state::snapshot::Unverified::parse(&bytes)
                .map_err(|e| e.to_string())?
                .header;
            Ok((header.size, header.state_digest))
        });
    SnapshotCheck { path, claim }
}

#[derive(Args)]
pub struct MigrateArgs {
    /// The node's data directory (the node must not be running).
    #[arg(long)]
    data_dir: PathBuf,
}

/// `hygeia migrate`.
pub fn migrate(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let done = hygeia_node::migrate::migrate(&args.data_dir)?;
    println!(
        "migrated {}: leaf 0 is now a genesis entry, followed by the {} entries of the old log (root {}), unchanged",
        args.data_dir.display(),
        done.entries,
        done.old_root
    );
    println!("network id: {}", done.network_id);
    println!("the old log is kept in {}", done.backup.display());
    println!(
        "check it with: hygeia verify {} --genesis {}",
        args.data_dir.display(),
        done.network_id
    );
    Ok(ExitCode::SUCCESS)
}

pub fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let is_url = args.target.starts_with("http://") || args.target.starts_with("https://");
    let since = args
        .since
        .as_ref()
        .map(|p| std::fs::read(p).with_context(|| format!("cannot read {}", p.display())))
        .transpose()?;
    let modules = hygeia_state::txs::registry();
    if is_url {
        anyhow::ensure!(
            args.snapshot.is_empty(),
            "--snapshot checks a snapshot against a data directory's log; give the data directory"
        );
        let info = super::node_info(&args.target)?;
        let key = match args.key.clone() {
            Some(key) => key,
            None => {
                let key = info["checkpoint_verifier_key"]
                    .as_str()
                    .context("the node did not give its checkpoint verifier key")?
                    .to_string();
                eprintln!("note: trusting the key the node reports ({key}); pin it with --key");
                key
            }
        };
        let verifier = CheckpointVerifier::new(&key)?;
        let source = HttpSource::new(&args.target)?;
        check(
            &source,
            &verifier,
            &modules,
            since.as_deref(),
            &args,
            Vec::new(),
            None,
        )
    } else {
        let dir = PathBuf::from(&args.target);
        let ledger = dir.join(LEDGER_FILE);
        anyhow::ensure!(
            ledger.exists(),
            "{} holds no {LEDGER_FILE}; is it a node's data directory?",
            dir.display()
        );
        let (store, origin) = LogStore::open_existing(&ledger)?;
        let key = match args.key.clone() {
            Some(key) => key,
            None => {
                let node_key = Keypair::read_key_file(&dir.join(NODE_KEY_FILE))?;
                CheckpointSigner::new(&origin, node_key)?.verifier_key()
            }
        };
        let verifier = CheckpointVerifier::new(&key)?;
        let snapshot = store.snapshot()?;
        // Snapshots are signed by the node that wrote them.
        let node_did = match &args.node_did {
            Some(did) => did.clone(),
            None => Keypair::read_key_file(&dir.join(NODE_KEY_FILE))?
                .did()
                .to_string(),
        };
        let files: Vec<PathBuf> = if args.snapshot.is_empty() {
            let mut found: Vec<PathBuf> =
                hygeia_node::snapshots::list(&dir.join(hygeia_node::config::SNAPSHOT_DIR))
                    .into_iter()
                    .map(|(_, path)| path)
                    .collect();
            found.reverse();
            found
        } else {
            args.snapshot.clone()
        };
        let snapshots = files
            .into_iter()
            .map(|path| read_snapshot(path, &origin, &node_did, &snapshot))
            .collect();
        // The cosigned checkpoint the node collected: it must be a
        // checkpoint of this very log.
        let cosigned = match args.quorum {
            None => None,
            Some(_) => Some(collected_checkpoint(&dir, &origin, &snapshot)?),
        };
        check(
            &StoreSource {
                snapshot: &snapshot,
            },
            &verifier,
            &modules,
            since.as_deref(),
            &args,
            snapshots,
            cosigned,
        )
    }
}

/// The cosigned checkpoint a node's data directory holds, checked to be
/// one of its log's (origin, and root at its size).
fn collected_checkpoint(
    dir: &std::path::Path,
    origin: &str,
    snapshot: &hygeia_ledger::store::Snapshot,
) -> anyhow::Result<Vec<u8>> {
    let note = hygeia_node::witness::read_collected(dir)
        .map_err(anyhow::Error::msg)?
        .context("the data directory holds no cosigned checkpoint (cosignature.none)")?;
    let ours = note.origin == origin
        && note.size <= snapshot.size()
        && snapshot.root_at(note.size).ok() == Some(note.root);
    anyhow::ensure!(
        ours,
        "the cosigned checkpoint held is not a checkpoint of this log (cosignature.not_this_log)"
    );
    Ok(note.to_bytes())
}

/// Checks `quorum` cosignatures on `note` from the custodian set the
/// replayed log names; the message to print, or the failure with its code.
pub fn check_quorum(
    note: &[u8],
    custodians: &[&str],
    quorum: usize,
) -> Result<String, hygeia_ledger::cosignature::CosignatureError> {
    use hygeia_ledger::cosignature::{CosignatureVerifier, CosignedNote};
    let note = CosignedNote::parse(note)?;
    let set: Vec<CosignatureVerifier> = custodians
        .iter()
        .map(|did| CosignatureVerifier::for_did(did))
        .collect::<Result<_, _>>()?;
    let found = note.check_quorum(&set, quorum)?;
    Ok(format!(
        "OK: checkpoint of size {} cosigned by {} of the {} custodians (quorum {quorum}): {}",
        note.size,
        found.valid.len(),
        set.len(),
        found
            .valid
            .iter()
            .map(|(name, _)| name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

fn check(
    source: &dyn LogSource,
    verifier: &CheckpointVerifier,
    modules: &ModuleRegistry,
    since: Option<&[u8]>,
    args: &VerifyArgs,
    snapshots: Vec<SnapshotCheck>,
    cosigned: Option<Vec<u8>>,
) -> anyhow::Result<ExitCode> {
    // The state the log defines, replayed entry by entry from nothing: leaf
    // 0 is the genesis entry that names the governance key and the
    // custodian set, and a transaction the rules would not have admitted
    // is as bad as a bad signature. The readers' view (with its access
    // index) is what snapshots hold.
    let state = std::sync::Mutex::new(hygeia_state::writer::Committed::new(
        hygeia_state::LedgerState::empty(),
    ));
    // Sizes at which a snapshot claims the state; the replay's digest at
    // each, taken before the entry of that index is applied.
    let wanted: std::collections::BTreeSet<u64> = snapshots
        .iter()
        .filter_map(|s| s.claim.as_ref().ok().map(|(size, _)| *size))
        .collect();
    let digests = std::sync::Mutex::new(std::collections::BTreeMap::<u64, String>::new());
    let take_digests = |upto: u64, state: &hygeia_state::writer::Committed| {
        let mut digests = digests.lock().unwrap_or_else(|p| p.into_inner());
        for size in wanted.range(..=upto) {
            if !digests.contains_key(size) {
                digests.insert(*size, hygeia_state::snapshot::state_digest(state));
            }
        }
    };
    // The custodian set as of a cosigned checkpoint older than the log
    // (a data directory's collected one): taken when the replay reaches
    // its size.
    let cosigned_size = cosigned
        .as_deref()
        .and_then(|note| hygeia_ledger::cosignature::CosignedNote::parse(note).ok())
        .map(|note| note.size);
    let custodians_at = std::sync::Mutex::new(None::<Vec<String>>);
    let replay = |index: u64, tx: &hygeia_ledger::SignedTx| -> Result<(), String> {
        let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
        if !wanted.is_empty() {
            take_digests(index, &state);
        }
        if cosigned_size == Some(index) {
            *custodians_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(
                state
                    .state
                    .network
                    .custodians()
                    .map(str::to_owned)
                    .collect(),
            );
        }
        state
            .apply(index, tx)
            .map(|_| ())
            .map_err(|e| format!("{} ({})", e.message, e.code.as_str()))
    };
    let started = Instant::now();
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} verifying [{bar:40}] {pos}/{len} entries ({per_sec}, eta {eta})",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    // The total is known once the checkpoint is read; fetch it for the bar.
    if let Ok(note) = source.checkpoint() {
        if let Ok((_, size, _)) = hygeia_ledger::checkpoint::parse_unverified(&note) {
            bar.set_length(size);
        }
    }
    let options = VerifyOptions {
        verifier,
        modules,
        since,
        parallel_bundles: args.parallel,
        replay: Some(&replay),
    };
    let result = verify_log(source, &options, &|done| bar.set_position(done));
    bar.finish_and_clear();
    let elapsed = started.elapsed();
    match result {
        Ok(report) => {
            let rate = report.entries as f64 / elapsed.as_secs_f64().max(1e-9);
            println!(
                "OK: {} entries verified in {:.2}s ({:.0} entries/s); root {}",
                report.entries,
                elapsed.as_secs_f64(),
                rate,
                hex::encode(report.checkpoint.root.0)
            );
            let mut snapshots_ok = true;
            {
                let state = state.lock().unwrap_or_else(|p| p.into_inner());
                take_digests(report.entries, &state);
                let digests = digests.lock().unwrap_or_else(|p| p.into_inner());
                for snapshot in &snapshots {
                    let path = snapshot.path.display();
                    match &snapshot.claim {
                        Err(e) => {
                            snapshots_ok = false;
                            println!("FAILED: snapshot {path}: {e}");
                        }
                        Ok((size, digest)) if digests.get(size) == Some(digest) => println!(
                            "OK: snapshot {path} equals the replay of the first {size} entries"
                        ),
                        Ok((size, _)) => {
                            snapshots_ok = false;
                            println!(
                                "FAILED: snapshot {path} holds another state than the replay of the first {size} entries"
                            );
                        }
                    }
                }
                let state = &state.state;
                if let Some(problem) = pins_broken(state, args) {
                    println!("FAILED: {problem}");
                    return Ok(ExitCode::from(1));
                }
                let network = &state.network;
                println!(
                    "OK: network id {} (genesis at leaf 0{}); governance {}; custodians {}",
                    network.id().unwrap_or("(none: empty log)"),
                    match network.legacy() {
                        Some(legacy) => format!(
                            ", then {} entries migrated from a log made before genesis",
                            legacy.entries
                        ),
                        None => String::new(),
                    },
                    state.participants.governance().unwrap_or("(none)"),
                    network.custodians().collect::<Vec<_>>().join(", "),
                );
                if let Some(quorum) = args.quorum {
                    let at = custodians_at
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .take();
                    let custodians: Vec<&str> = match &at {
                        Some(set) => set.iter().map(String::as_str).collect(),
                        None => network.custodians().collect(),
                    };
                    let note = cosigned.as_deref().unwrap_or(&report.checkpoint.note);
                    match check_quorum(note, &custodians, quorum) {
                        Ok(message) => println!("{message}"),
                        Err(e) => {
                            println!("FAILED: {e} ({})", e.code());
                            return Ok(ExitCode::from(1));
                        }
                    }
                }
                let erased = state.records.erased().count();
                println!(
                    "OK: every entry is admitted by the state rules on replay: {} records ({erased} erased), {} consent grants ({} in force)",
                    state.records.len(),
                    state.policy.consents().len(),
                    state.policy.consents().unrevoked_len(),
                );
            }
            if let Some(old) = report.grew_from {
                println!(
                    "OK: the log only grew since the saved checkpoint ({old} -> {} entries)",
                    report.entries
                );
            }
            if let Some(path) = &args.save_checkpoint {
                std::fs::write(path, &report.checkpoint.note)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                println!("saved the checkpoint to {}", path.display());
            }
            Ok(if snapshots_ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Err(e) => {
            println!("FAILED: {e}");
            if let Some(index) = e.bad_index() {
                println!("first bad entry: {index}");
            }
            Ok(ExitCode::from(1))
        }
    }
}

/// What the log's own genesis and custodian state contradicts among the
/// pins given on the command line.
fn pins_broken(state: &hygeia_state::LedgerState, args: &VerifyArgs) -> Option<String> {
    let network = &state.network;
    if let Some(pinned) = &args.genesis {
        if network.id() != Some(pinned.as_str()) {
            return Some(format!(
                "the log's genesis is {}, not the pinned {pinned}",
                network.id().unwrap_or("(none)")
            ));
        }
    }
    if let Some(pinned) = &args.governance {
        if state.participants.governance() != Some(pinned.as_str()) {
            return Some(format!(
                "the log's governance key is {}, not the pinned {pinned}",
                state.participants.governance().unwrap_or("(none)")
            ));
        }
    }
    if let Some(pinned) = &args.node_did {
        if !network.is_custodian(pinned) {
            return Some(format!("{pinned} is not in the log's custodian set"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::check_quorum;
    use hygeia_identity::Keypair;
    use hygeia_ledger::cosignature::{CosignedNote, Cosigner};
    use hygeia_ledger::CheckpointSigner;

    /// A checkpoint signed by the log and cosigned by `n` node keys.
    fn cosigned(n: usize) -> (CosignedNote, Vec<String>) {
        let log = CheckpointSigner::new("example.org/log", Keypair::generate()).unwrap();
        let mut note =
            CosignedNote::parse(&log.sign(5, hygeia_ledger::merkle::leaf_hash(b"l")).note).unwrap();
        let mut dids = Vec::new();
        for _ in 0..n {
            let key = Keypair::generate();
            dids.push(key.did().to_string());
            let cosigner = Cosigner::new(key.did().as_str(), key).unwrap();
            note.add(cosigner.cosign(&note.text, 1_700_000_000).unwrap());
        }
        (note, dids)
    }

    fn set(dids: &[String]) -> Vec<&str> {
        dids.iter().map(String::as_str).collect()
    }

    #[test]
    fn a_quorum_of_custodians_passes() {
        let (note, dids) = cosigned(3);
        let message = check_quorum(&note.to_bytes(), &set(&dids), 3).unwrap();
        assert!(
            message.contains("cosigned by 3 of the 3 custodians"),
            "{message}"
        );
    }

    #[test]
    fn too_few_cosignatures_fail_with_a_stable_code() {
        let (note, mut dids) = cosigned(2);
        dids.push(Keypair::generate().did().to_string());
        let err = check_quorum(&note.to_bytes(), &set(&dids), 3).unwrap_err();
        assert_eq!(err.code(), "cosignature.quorum_not_met");
    }

    #[test]
    fn a_tampered_cosignature_fails() {
        let (note, dids) = cosigned(3);
        let text = String::from_utf8(note.to_bytes()).unwrap();
        // Flip one base64 character inside the last cosignature.
        let at = text.len() - 10;
        let mut bytes = text.into_bytes();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        let err = check_quorum(&bytes, &set(&dids), 2).unwrap_err();
        assert_eq!(err.code(), "cosignature.invalid");
    }

    #[test]
    fn cosignatures_by_keys_outside_the_custodian_set_do_not_count() {
        let (note, dids) = cosigned(3);
        let err = check_quorum(&note.to_bytes(), &set(&dids[..1]), 2).unwrap_err();
        assert_eq!(err.code(), "cosignature.quorum_not_met");
        assert!(check_quorum(&note.to_bytes(), &set(&dids[..1]), 1).is_ok());
        assert_eq!(
            check_quorum(b"garbage", &set(&dids), 1).unwrap_err().code(),
            "cosignature.malformed"
        );
    }

    fn args(target: &std::path::Path, quorum: usize) -> super::VerifyArgs {
        super::VerifyArgs {
            target: target.display().to_string(),
            since: None,
            key: None,
            save_checkpoint: None,
            parallel: 4,
            genesis: None,
            governance: None,
            node_did: None,
            snapshot: Vec::new(),
            quorum: Some(quorum),
        }
    }

    /// A data directory whose node collected its own cosignature: quorum
    /// 1 of its one custodian passes, 2 fails; without any collected
    /// checkpoint, `--quorum` is an error.
    #[test]
    fn a_data_directorys_collected_checkpoint_is_checked() {
        use hygeia_node::{node::Node, NodeConfig};
        let dir = tempfile::tempdir().unwrap();
        let config = NodeConfig::new(
            dir.path().join("node"),
            "127.0.0.1:0".parse().unwrap(),
            "test.example/quorum".into(),
        );
        let data = config.data_dir.clone();
        let node = Node::open(config).unwrap();
        drop(node);
        assert!(super::run(args(&data, 1)).is_err(), "nothing collected yet");
        let node = Node::open(NodeConfig::new(
            data.clone(),
            "127.0.0.1:0".parse().unwrap(),
            "test.example/quorum".into(),
        ))
        .unwrap();
        let note = node.cosigned_checkpoint().unwrap();
        node.with_own_log(|own| node.witness.collect(&note, own))
            .unwrap();
        drop(node);
        assert_eq!(
            super::run(args(&data, 1)).unwrap(),
            std::process::ExitCode::SUCCESS
        );
        assert_eq!(
            super::run(args(&data, 2)).unwrap(),
            std::process::ExitCode::from(1)
        );
    }

    /// The custodian set is the one as of the cosigned checkpoint: a key
    /// rotated away after it still counts for it.
    #[test]
    fn the_custodian_set_is_taken_as_of_the_cosigned_checkpoint() {
        use hygeia_ledger::tx::TxContext;
        use hygeia_ledger::{SignedTx, TxBuilder};
        use hygeia_node::{node::Node, NodeConfig};
        const NETWORK: &str = "test.example/rotated";
        let dir = tempfile::tempdir().unwrap();
        let governance = Keypair::generate();
        let mut config = NodeConfig::new(
            dir.path().join("node"),
            "127.0.0.1:0".parse().unwrap(),
            NETWORK.into(),
        );
        config.governance = Some(governance.did().to_string());
        let data = config.data_dir.clone();
        let node = Node::open(config).unwrap();
        let note = node.cosigned_checkpoint().unwrap();
        node.with_own_log(|own| node.witness.collect(&note, own))
            .unwrap();
        // Rotate the node's key out of the custodian set afterwards.
        let raw = TxBuilder {
            network: NETWORK,
            tx_type: "network.custodian",
            nonce: "rotate-1".into(),
            body: serde_json::json!({
                "op": "rotate",
                "key": node.node_did,
                "new_key": Keypair::generate().did().to_string(),
            }),
        }
        .sign(&governance);
        let tx = SignedTx::parse(
            &raw,
            &TxContext {
                network: NETWORK,
                modules: &node.modules,
            },
        )
        .unwrap();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(node.sequencer.submit(vec![tx]))
            .unwrap();
        drop(node);
        assert_eq!(
            super::run(args(&data, 1)).unwrap(),
            std::process::ExitCode::SUCCESS
        );
    }
}
