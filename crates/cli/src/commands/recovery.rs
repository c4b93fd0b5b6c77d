//! `hygeia recovery`: guardian key recovery (docs/recovery.md).
//!
//! `setup` splits a fresh recovery secret among guardians and registers the
//! recovery key on the ledger (`identity.recovery`, signed by the patient).
//! `recover` rebuilds the secret from `k` guardians' shares, derives the
//! recovery key, creates a new device key and moves the identity to it
//! (`identity.rotate`, signed by the recovery key).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use hygeia_identity::{
    recover, split, GuardianShare, Keypair, RecoveryError, RecoverySecret, ShareVerifier,
};
use serde_json::{json, Value};

use super::private_file::{read_limited, write_new};
use crate::client::Client;

const DEFAULT_NODE: &str = "http://127.0.0.1:7000";
/// Largest share and verifier files (docs/recovery.md, "Files").
const MAX_SHARE_BYTES: u64 = 1024;
const MAX_VERIFIER_BYTES: u64 = 32 << 10;

#[derive(Subcommand)]
pub enum RecoveryCommand {
    /// Split a new recovery key among guardians and register it on the
    /// ledger. Any THRESHOLD of the guardians can later move your identity
    /// to a new key; fewer learn nothing. Writes DIR/share-<i>.json (give
    /// each to guardian i, privately, then delete it here) and
    /// DIR/verifier.json (give it to every guardian). The secret itself is
    /// never written.
    #[command(after_help = "Example: hygeia recovery setup --key patient.key \\
    --threshold 2 --guardian did:key:z6Mk...a --guardian did:key:z6Mk...b \\
    --guardian did:key:z6Mk...c --out-dir guardians/\n\n\
Setting up again registers a new recovery key; shares of the earlier split then stop working.")]
    Setup {
        /// Your key file (the key acting for your identity now).
        #[arg(long, short)]
        key: PathBuf,
        #[arg(long, default_value = DEFAULT_NODE)]
        node: String,
        /// How many guardians it takes to recover (at least 2).
        #[arg(long)]
        threshold: usize,
        /// A guardian's DID, in share order (repeat for each guardian).
        #[arg(long = "guardian", required = true)]
        guardians: Vec<String>,
        /// A new or empty directory for the share and verifier files.
        #[arg(long)]
        out_dir: PathBuf,
    },
    /// Recover an identity from guardians' shares: rebuild the recovery
    /// key, create a new key file and move the identity to it. The old key
    /// is retired from then on.
    #[command(after_help = "Example: hygeia recovery recover \\
    --verifier verifier.json --share share-1.json --share share-3.json \\
    --identity did:key:z6Mk...patient --new-key phone2.key\n\n\
Afterwards, set up recovery again: the guardians who pooled their shares know the old recovery key.")]
    Recover {
        #[arg(long, default_value = DEFAULT_NODE)]
        node: String,
        /// The split's verifier.json (any guardian has it).
        #[arg(long)]
        verifier: PathBuf,
        /// A guardian's share file (repeat; as many as the threshold).
        #[arg(long = "share", required = true)]
        shares: Vec<PathBuf>,
        /// The identity to recover: the did:key the patient first used.
        #[arg(long)]
        identity: String,
        /// Where to create the new key file (must not exist).
        #[arg(long)]
        new_key: PathBuf,
    },
}

pub fn run(command: RecoveryCommand) -> anyhow::Result<ExitCode> {
    match command {
        RecoveryCommand::Setup {
            key,
            node,
            threshold,
            guardians,
            out_dir,
        } => setup(&key, &node, threshold, &guardians, &out_dir),
        RecoveryCommand::Recover {
            node,
            verifier,
            shares,
            identity,
            new_key,
        } => recover_identity(&node, &verifier, &shares, &identity, &new_key),
    }
}

/// A library refusal with its stable code in front.
fn coded(e: RecoveryError) -> anyhow::Error {
    anyhow::anyhow!("{}: {e}", e.code())
}

fn setup(
    key: &Path,
    node: &str,
    threshold: usize,
    guardians: &[String],
    out_dir: &Path,
) -> anyhow::Result<ExitCode> {
    let mut client = Client::new(node, key)?;
    for (i, guardian) in guardians.iter().enumerate() {
        anyhow::ensure!(
            !guardians[..i].contains(guardian),
            "guardian {guardian} is given twice; each guardian holds one share"
        );
    }
    let secret = RecoverySecret::generate();
    let recovery_did = secret.recovery_keypair().did().to_string();
    let (shares, verifier) = split(&secret, threshold, guardians.len()).map_err(coded)?;
    drop(secret);

    // The files first: a recovery key registered without its shares on
    // disk could never be used.
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let verifier_path = out_dir.join("verifier.json");
    write_new(&verifier_path, &verifier.to_json())?;
    let mut handed = Vec::with_capacity(shares.len());
    for (share, guardian) in shares.iter().zip(guardians) {
        let path = out_dir.join(format!("share-{}.json", share.index()));
        write_new(&path, &share.to_json())?;
        handed.push(json!({"index": share.index(), "guardian": guardian, "share": path}));
    }
    drop(shares);

    let split_hex = hex::encode(verifier.id().to_bytes());
    let body = json!({
        "recovery_key": recovery_did,
        "threshold": threshold,
        "guardians": guardians,
        "split": split_hex,
    });
    let mut answer = client.submit("identity.recovery", body).with_context(|| {
        format!(
            "the recovery key was not registered; the files in {} are of no use and can be deleted",
            out_dir.display()
        )
    })?;
    answer["recovery_key"] = json!(recovery_did);
    answer["split"] = json!(split_hex);
    answer["threshold"] = json!(threshold);
    answer["verifier"] = json!(verifier_path);
    answer["guardians"] = Value::Array(handed);
    println!("{}", serde_json::to_string_pretty(&answer)?);
    eprintln!(
        "registered recovery key {recovery_did} ({threshold} of {} guardians).",
        guardians.len()
    );
    eprintln!(
        "Give each guardian, privately, their share-<i>.json, and every guardian {}.",
        verifier_path.display()
    );
    eprintln!("Then delete the share files from this device: together, {threshold} of them recover your identity.");
    Ok(ExitCode::SUCCESS)
}

fn recover_identity(
    node: &str,
    verifier_path: &Path,
    share_paths: &[PathBuf],
    identity: &str,
    new_key_path: &Path,
) -> anyhow::Result<ExitCode> {
    let identity_did = hygeia_identity::Did::parse_cached(identity)
        .with_context(|| format!("--identity must be the patient's did:key, not {identity:?}"))?;
    let verifier_text = String::from_utf8(read_limited(verifier_path, MAX_VERIFIER_BYTES)?)
        .with_context(|| format!("{} is not UTF-8", verifier_path.display()))?;
    let verifier = ShareVerifier::from_json(&verifier_text)
        .map_err(coded)
        .with_context(|| format!("{}", verifier_path.display()))?;
    let mut shares = Vec::with_capacity(share_paths.len());
    for path in share_paths {
        let text = String::from_utf8(read_limited(path, MAX_SHARE_BYTES)?)
            .with_context(|| format!("{} is not UTF-8", path.display()))?;
        shares.push(
            GuardianShare::from_json(&text)
                .map_err(coded)
                .with_context(|| format!("{}", path.display()))?,
        );
    }
    let secret = recover(&shares, &verifier).map_err(coded)?;
    drop(shares);
    let recovery_key = secret.recovery_keypair();
    drop(secret);
    let recovery_did = recovery_key.did().to_string();
    registered_key_matches(node, identity, &recovery_did)?;

    // The new key reaches the disk before the ledger points at it: an
    // identity moved to a key nobody holds would be lost.
    let new_key = Keypair::generate();
    new_key
        .write_key_file(new_key_path)
        .with_context(|| format!("cannot create the new key file {}", new_key_path.display()))?;
    let new_did = new_key.did().to_string();
    let mut client = Client::with_key(node, recovery_key);
    // The new key signs its acceptance: a rotation names only a key its
    // submitter holds.
    let rotation =
        hygeia_node::state::txs::IdentityRotate::accepted_by(identity_did.as_str(), &new_key);
    let mut answer = client
        .submit("identity.rotate", serde_json::to_value(&rotation)?)
        .with_context(|| {
            format!(
                "the identity was not moved; {} does not act for it",
                new_key_path.display()
            )
        })?;
    answer["identity"] = json!(identity);
    answer["new_key"] = json!(new_did);
    answer["key_file"] = json!(new_key_path);
    println!("{}", serde_json::to_string_pretty(&answer)?);
    eprintln!(
        "{identity} now acts through {new_did} ({}); the old key is retired.",
        new_key_path.display()
    );
    eprintln!("Set up recovery again: the guardians who helped now know this recovery key.");
    Ok(ExitCode::SUCCESS)
}

/// Compares the recovered key with the one the ledger registered for the
/// identity, so that shares of another patient's (or an outdated) split
/// are reported as such rather than as a refused rotation.
fn registered_key_matches(node: &str, identity: &str, recovered: &str) -> anyhow::Result<()> {
    let url = format!("{}/v1/dids/{identity}/history", node.trim_end_matches('/'));
    let response = reqwest::blocking::get(&url).with_context(|| format!("cannot reach {url}"))?;
    if !response.status().is_success() {
        // No history: the node will say why it refuses the rotation.
        return Ok(());
    }
    let history: Value = response
        .json()
        .with_context(|| format!("{url} did not answer JSON"))?;
    let registered = history["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .rev()
        .filter(|e| e["type"] == "identity.recovery")
        .find_map(|e| e["recovery_key"].as_str());
    match registered {
        Some(key) if key != recovered => anyhow::bail!(
            "these shares recover {recovered}, but {identity}'s registered recovery key is {key}: \
             they belong to another split (an earlier setup, or another patient)"
        ),
        _ => Ok(()),
    }
}
