//! `hygeia proof`: fetch a proof from a node and check it locally against
//! the node's signed checkpoint.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use hygeia_ledger::checkpoint::CheckpointVerifier;
use hygeia_ledger::proof::{verify_consistency, verify_inclusion};
use hygeia_ledger::Hash;

#[derive(Subcommand)]
pub enum ProofCommand {
    /// Prove that a transaction (by leaf index or leaf hash) is in the log.
    Inclusion {
        #[arg(long)]
        node: String,
        #[arg(long, conflicts_with = "hash", required_unless_present = "hash")]
        index: Option<u64>,
        #[arg(long)]
        hash: Option<String>,
        /// The checkpoint verifier key; default: the one the node reports.
        #[arg(long)]
        key: Option<String>,
    },
    /// Prove that the log of size FROM is a prefix of the current log.
    Consistency {
        #[arg(long)]
        node: String,
        #[arg(long)]
        from: u64,
        #[arg(long)]
        key: Option<String>,
    },
}

pub fn run(command: ProofCommand) -> anyhow::Result<ExitCode> {
    match command {
        ProofCommand::Inclusion {
            node,
            index,
            hash,
            key,
        } => {
            let query = match (index, hash) {
                (Some(i), _) => format!("index={i}"),
                (None, Some(h)) => format!("hash={h}"),
                (None, None) => anyhow::bail!("give --index or --hash"),
            };
            let (proof, checkpoint) = fetch(&node, &format!("v1/proofs/inclusion?{query}"), key)?;
            let leaf = hash_field(&proof, "leaf_hash")?;
            let index = proof["index"].as_u64().context("index")?;
            verify_inclusion(
                leaf,
                index,
                checkpoint.size,
                &hashes(&proof)?,
                checkpoint.root,
            )?;
            println!(
                "OK: leaf {index} ({}) is in the signed tree of size {}",
                hex::encode(leaf.0),
                checkpoint.size
            );
        }
        ProofCommand::Consistency { node, from, key } => {
            let (proof, checkpoint) =
                fetch(&node, &format!("v1/proofs/consistency?from={from}"), key)?;
            let old_root = hash_field(&proof, "from_root")?;
            verify_consistency(
                from,
                old_root,
                checkpoint.size,
                checkpoint.root,
                &hashes(&proof)?,
            )?;
            println!(
                "OK: the tree of size {from} (root {}) is a prefix of the signed tree of size {}",
                hex::encode(old_root.0),
                checkpoint.size
            );
            println!("note: compare that root with the one you saved for size {from}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn fetch(
    node: &str,
    path: &str,
    key: Option<String>,
) -> anyhow::Result<(serde_json::Value, hygeia_ledger::SignedCheckpoint)> {
    let key = match key {
        Some(key) => key,
        None => super::node_info(node)?["checkpoint_verifier_key"]
            .as_str()
            .context("no verifier key")?
            .to_string(),
    };
    let url = format!("{}/{path}", node.trim_end_matches('/'));
    let response = reqwest::blocking::get(&url).with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let body: serde_json::Value = response.json().context("not JSON")?;
    anyhow::ensure!(status.is_success(), "{url}: {status}: {body}");
    let note = body["checkpoint"]
        .as_str()
        .context("no checkpoint in the answer")?;
    let checkpoint = CheckpointVerifier::new(&key)?.verify(note.as_bytes())?;
    Ok((body, checkpoint))
}

fn hash_field(body: &serde_json::Value, name: &str) -> anyhow::Result<Hash> {
    parse(body[name].as_str().with_context(|| format!("no {name}"))?)
}

fn hashes(body: &serde_json::Value) -> anyhow::Result<Vec<Hash>> {
    body["proof"]
        .as_array()
        .context("no proof")?
        .iter()
        .map(|h| parse(h.as_str().context("proof hash")?))
        .collect()
}

fn parse(hex_text: &str) -> anyhow::Result<Hash> {
    let bytes: [u8; 32] = hex::decode(hex_text)?
        .try_into()
        .map_err(|_| anyhow::anyhow!("a hash is 32 bytes"))?;
    Ok(Hash(bytes))
}
