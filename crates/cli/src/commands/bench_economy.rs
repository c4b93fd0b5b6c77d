//! `hygeia bench transfers`: durable token transfers per second over HTTP
//! (BENCHMARKS.md). The governance key registers a unit issued by a fresh
//! key, which mints to each client; then every client sends transfers of
//! one unit to the next client, pre-signed before the clock starts, in
//! batches, and waits for each acknowledgement (the batch is on disk).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use hygeia_identity::Keypair;
use hygeia_ledger::TxBuilder;
use rayon::prelude::*;
use serde_json::json;

use super::{node_info, node_network};
use crate::client::Client;

#[derive(Args)]
pub struct TransferArgs {
    #[arg(long)]
    node: String,
    /// The node's governance key file (it registers the bench's unit).
    #[arg(long)]
    governance_key: PathBuf,
    /// Concurrent clients, each with its own connection and key.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Transfers in all.
    #[arg(long, default_value_t = 200_000)]
    count: usize,
    /// Transfers per request: 1 uses POST /v1/transactions, more uses /batch.
    #[arg(long, default_value_t = 1000)]
    batch_size: usize,
    /// Print one JSON line instead of text.
    #[arg(long)]
    json: bool,
}

pub fn transfers(args: TransferArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.clients > 1 && args.batch_size > 0 && args.count > 0,
        "at least two clients; count and batch size positive"
    );
    let network = node_network(&node_info(&args.node)?)?;
    let run_id = format!("{:08x}", rand::random::<u32>());
    let unit = format!("bench-{run_id}");
    let issuer = Keypair::generate();
    let keys: Vec<Keypair> = (0..args.clients).map(|_| Keypair::generate()).collect();
    let mut governance = Client::new(&args.node, &args.governance_key)?;
    governance.submit(
        "unit.register",
        json!({"unit": unit, "issuer": issuer.did().to_string()}),
    )?;
    let mut minter = Client::with_key(&args.node, issuer);
    let per = args.count.div_ceil(args.clients);
    for key in &keys {
        minter.submit(
            "unit.mint",
            json!({"unit": unit, "to": key.did().to_string(), "amount": per}),
        )?;
    }
    eprintln!("signing {} transfers ahead of time…", args.count);
    let dids: Vec<String> = keys.iter().map(|k| k.did().to_string()).collect();
    let signed: Vec<Vec<Vec<u8>>> = keys
        .par_iter()
        .enumerate()
        .map(|(c, key)| {
            let mine = args.count / args.clients + usize::from(c < args.count % args.clients);
            let to = &dids[(c + 1) % dids.len()];
            (0..mine)
                .map(|i| {
                    TxBuilder {
                        network: &network,
                        tx_type: "unit.transfer",
                        nonce: format!("bench-{run_id}-{i}"),
                        body: json!({"unit": unit, "to": to, "amount": 1}),
                    }
                    .sign(key)
                })
                .collect()
        })
        .collect();
    super::bench::submit_presigned(
        &args.node,
        args.clients,
        signed,
        args.batch_size,
        "unit.transfer",
        args.json,
    )
}
