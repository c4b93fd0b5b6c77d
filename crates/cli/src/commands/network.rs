//! `hygeia network init`: a multi-organization network's genesis.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use hygeia_node::ordering::{init, InitNode};

use super::DEFAULT_NETWORK;

#[derive(Subcommand)]
pub enum NetworkCommand {
    /// Write a new network's genesis into each organization's node data
    /// directory (creating its node key if missing): the same genesis
    /// entry at leaf 0 of every log, naming every node key as a custodian
    /// and validator, and a peers.json listing every node's key and p2p
    /// address. Then start each node with
    /// `hygeia serve --data-dir DIR --peers DIR/peers.json`.
    Init(InitArgs),
}

#[derive(Args)]
pub struct InitArgs {
    /// Network name: the log's origin, and the `network` every transaction names.
    #[arg(long, default_value = DEFAULT_NETWORK)]
    pub network: String,
    /// The governance key's did:key (registers organizations).
    #[arg(long)]
    pub governance: Option<String>,
    /// One organization's node: DATA_DIR@P2P_ADDRESS (for example
    /// ./org1@127.0.0.1:9001). Repeat for each; four tolerate one faulty.
    #[arg(long = "node", required = true, value_name = "DATA_DIR@P2P_ADDRESS")]
    pub nodes: Vec<String>,
}

pub fn run(command: NetworkCommand) -> anyhow::Result<ExitCode> {
    match command {
        NetworkCommand::Init(args) => {
            let nodes = parse_nodes(&args.nodes)?;
            let peers = init(&args.network, args.governance, &nodes)?;
            for (peer, node) in peers.peers.iter().zip(&nodes) {
                println!(
                    "{}  {}  p2p {}",
                    node.data_dir.display(),
                    peer.did,
                    peer.p2p
                );
            }
            println!(
                "start each node with: hygeia serve --data-dir DATA_DIR --peers DATA_DIR/{} --listen HTTP_ADDRESS",
                hygeia_node::config::PEERS_FILE
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Parses `DATA_DIR@P2P_ADDRESS` arguments.
pub fn parse_nodes(nodes: &[String]) -> anyhow::Result<Vec<InitNode>> {
    nodes
        .iter()
        .map(|node| {
            let (dir, address) = node
                .rsplit_once('@')
                .with_context(|| format!("--node {node}: expected DATA_DIR@P2P_ADDRESS"))?;
            let p2p: SocketAddr = address.parse().with_context(|| {
                format!("--node {node}: {address} is not an IP address and port")
            })?;
            Ok(InitNode {
                data_dir: PathBuf::from(dir),
                p2p,
                api: None,
            })
        })
        .collect()
}
