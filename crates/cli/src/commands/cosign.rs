//! `hygeia cosign`: the log's node asks its peers (other custodians of the
//! network, or any C2SP witness) to cosign its latest checkpoint at their
//! `POST /add-checkpoint`, and hands the cosignatures to the node
//! (`POST /v1/checkpoint/cosignatures`), which then serves them at
//! `GET /checkpoint`.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use hygeia_ledger::cosignature::{parse_signature_lines, AddCheckpoint, CosignedNote};
use hygeia_ledger::Hash;

#[derive(Args)]
pub struct CosignArgs {
    /// The log's node (http://…), whose latest checkpoint is cosigned.
    node: String,
    /// A witness to ask (its base URL; `/add-checkpoint` is appended).
    /// Repeatable.
    #[arg(long = "peer", required = true)]
    peers: Vec<String>,
}

pub fn run(args: CosignArgs) -> anyhow::Result<ExitCode> {
    let client = reqwest::blocking::Client::new();
    let node = args.node.trim_end_matches('/');
    let note = client
        .get(format!("{node}/checkpoint"))
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.bytes())
        .with_context(|| format!("cannot read {node}/checkpoint"))?
        .to_vec();
    let checkpoint = CosignedNote::parse(&note).context("the node's checkpoint")?;
    let mut lines = Vec::new();
    let mut failed = 0;
    for peer in &args.peers {
        match ask(
            &client,
            node,
            peer.trim_end_matches('/'),
            &note,
            &checkpoint,
        ) {
            Ok(answer) => {
                println!("{peer}: cosigned size {}", checkpoint.size);
                lines.extend_from_slice(&answer);
            }
            Err(e) => {
                failed += 1;
                println!("{peer}: FAILED: {e:#}");
            }
        }
    }
    if lines.is_empty() {
        println!("FAILED: no peer cosigned");
        return Ok(ExitCode::from(1));
    }
    let response = client
        .post(format!("{node}/v1/checkpoint/cosignatures"))
        .body([note.as_slice(), &lines].concat())
        .send()
        .with_context(|| format!("cannot reach {node}"))?;
    let status = response.status();
    let text = response.text().unwrap_or_default();
    anyhow::ensure!(
        status.is_success(),
        "{node} refused the cosignatures: {status} {text}"
    );
    println!("the node holds: {text}");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// One witness's cosignature lines: first with old size 0, then, on 409,
/// from the size the witness gives, with the node's consistency proof.
fn ask(
    client: &reqwest::blocking::Client,
    node: &str,
    peer: &str,
    note: &[u8],
    checkpoint: &CosignedNote,
) -> anyhow::Result<Vec<u8>> {
    let mut old = 0;
    for _ in 0..2 {
        let proof = if old == 0 || old == checkpoint.size {
            Vec::new()
        } else {
            consistency(client, node, old, checkpoint.size)?
        };
        let body = AddCheckpoint {
            old,
            proof,
            checkpoint: checkpoint.clone(),
            note: note.to_vec(),
        }
        .to_bytes();
        let response = client
            .post(format!("{peer}/add-checkpoint"))
            .body(body)
            .send()
            .with_context(|| format!("cannot reach {peer}"))?;
        let status = response.status();
        let bytes = response.bytes()?.to_vec();
        if status.is_success() {
            parse_signature_lines(&bytes).context("the witness's answer")?;
            return Ok(bytes);
        }
        if status.as_u16() == 409 {
            if let Some(size) = std::str::from_utf8(&bytes)
                .ok()
                .and_then(|t| t.trim_end().parse::<u64>().ok())
            {
                anyhow::ensure!(
                    size <= checkpoint.size,
                    "the witness has cosigned size {size}, ahead of the node's {}",
                    checkpoint.size
                );
                if size != old {
                    old = size;
                    continue;
                }
            }
        }
        anyhow::bail!("{status}: {}", String::from_utf8_lossy(&bytes).trim());
    }
    anyhow::bail!("the witness's size kept changing")
}

/// The node's RFC 9162 consistency proof from `from` to `to`.
fn consistency(
    client: &reqwest::blocking::Client,
    node: &str,
    from: u64,
    to: u64,
) -> anyhow::Result<Vec<Hash>> {
    let answer: serde_json::Value = client
        .get(format!("{node}/v1/proofs/consistency?from={from}&to={to}"))
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.json())
        .with_context(|| format!("cannot get a consistency proof from {node}"))?;
    answer["proof"]
        .as_array()
        .context("no proof in the answer")?
        .iter()
        .map(|h| {
            let bytes = hex::decode(h.as_str().unwrap_or_default())?;
            let hash: [u8; 32] = bytes
                .try_into()
                .map_err(|_| anyhow::anyhow!("a proof hash is 32 bytes"))?;
            Ok(Hash(hash))
        })
        .collect()
}
