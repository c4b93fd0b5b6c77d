//! `hygeia tx`.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use hygeia_identity::Keypair;
use hygeia_ledger::TxBuilder;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{node_info, node_network, DEFAULT_NETWORK};

#[derive(Subcommand)]
pub enum TxCommand {
    /// Attest to a SHA-256 hash (of a file, or given) under a coded label.
    Attest {
        /// Your key file.
        #[arg(long, short)]
        key: PathBuf,
        /// A short code: lowercase letters, digits, '.', '_', '-'.
        #[arg(long)]
        label: String,
        /// Hash this file (streamed) and attest to its SHA-256.
        #[arg(long, conflicts_with = "subject", required_unless_present = "subject")]
        file: Option<PathBuf>,
        /// Attest to this hash: "sha256:" and 64 lowercase hex digits.
        #[arg(long)]
        subject: Option<String>,
        /// Node to submit to. Without it, the signed transaction is printed.
        #[arg(long)]
        node: Option<String>,
        /// Network name, when signing without --node.
        #[arg(long, default_value = DEFAULT_NETWORK)]
        network: String,
        /// Replay guard; must be new for your key. Default: time and randomness.
        #[arg(long)]
        nonce: Option<String>,
    },
    /// Submit a signed transaction from a file ('-' for standard input).
    Submit {
        #[arg(long)]
        node: String,
        file: PathBuf,
    },
}

pub fn run(command: TxCommand) -> anyhow::Result<ExitCode> {
    match command {
        TxCommand::Attest {
            key,
            label,
            file,
            subject,
            node,
            network,
            nonce,
        } => {
            let key = Keypair::read_key_file(&key)?;
            let subject = match (file, subject) {
                (Some(path), _) => format!("sha256:{}", hash_file(&path)?),
                (None, Some(subject)) => subject,
                (None, None) => anyhow::bail!("give --file or --subject"),
            };
            let network = match &node {
                Some(node) => node_network(&node_info(node)?)?,
                None => network,
            };
            let raw = TxBuilder {
                network: &network,
                tx_type: "attest",
                nonce: nonce.unwrap_or_else(fresh_nonce),
                body: json!({"label": label, "subject": subject}),
            }
            .sign(&key);
            match node {
                Some(node) => submit(&node, raw),
                None => {
                    println!("{}", String::from_utf8(raw)?);
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
        TxCommand::Submit { node, file } => {
            let mut raw = Vec::new();
            if file.as_os_str() == "-" {
                std::io::stdin().read_to_end(&mut raw)?;
            } else {
                raw = std::fs::read(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
            }
            while raw.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                raw.pop();
            }
            submit(&node, raw)
        }
    }
}

pub fn submit(node: &str, raw: Vec<u8>) -> anyhow::Result<ExitCode> {
    let url = format!("{}/v1/transactions", node.trim_end_matches('/'));
    let response = reqwest::blocking::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .body(raw)
        .send()
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let body: serde_json::Value = response.json().context("the node did not answer JSON")?;
    println!("{}", serde_json::to_string_pretty(&body)?);
    Ok(if status.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Milliseconds since the epoch and 64 random bits: unique without state.
pub fn fresh_nonce() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    format!("{millis}-{:016x}", rand::random::<u64>())
}

fn hash_file(path: &PathBuf) -> anyhow::Result<String> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(hex::encode(hasher.finalize()))
}
