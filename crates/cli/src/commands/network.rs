//! `hygeia network`: a multi-organization network's genesis (`init`) and
//! the governance change of its validator set at an epoch (`validators`).

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
    /// and validator, and a peers.json listing every node's key, p2p
    /// address and HTTP URL. Then start each node with
    /// `hygeia serve --data-dir DIR --peers DIR/peers.json --listen HTTP_ADDRESS`.
    Init(InitArgs),
    /// Name the validator set of the network's next epoch: a
    /// `network.validators` transaction, signed with the governance key and
    /// submitted to a node. The epoch changes after the block that holds
    /// it; a node left out stops voting then, and a node named anew must
    /// be a custodian of the genesis. Every validator of the next epoch is
    /// named, the ones that stay included (docs/network.md, "Membership
    /// changes at an epoch").
    Validators(ValidatorsArgs),
}

#[derive(Args)]
pub struct ValidatorsArgs {
    /// Node to submit to (any node of the network).
    #[arg(long)]
    pub node: String,
    /// The governance key file.
    #[arg(long, short)]
    pub key: PathBuf,
    /// The epoch the set is for. Default: the node's current epoch plus one.
    #[arg(long)]
    pub epoch: Option<u64>,
    /// One validator of the next epoch: its node's did:key and the p2p
    /// address its peers dial, DID@IP:PORT (a node's did:key is
    /// `hygeia key did --key DATA_DIR/node.key`). Repeat for each.
    #[arg(long = "validator", required = true, value_name = "DID@IP:PORT")]
    pub validators: Vec<String>,
}

#[derive(Args)]
pub struct InitArgs {
    /// Network name: the log's origin, and the `network` every transaction names.
    #[arg(long, default_value = DEFAULT_NETWORK)]
    pub network: String,
    /// The governance key's did:key (registers organizations).
    #[arg(long)]
    pub governance: Option<String>,
    /// One organization's node: DATA_DIR@P2P_ADDRESS, optionally followed
    /// by @HTTP_URL, the URL its HTTP API (`hygeia serve --listen`) is
    /// reached at by the other nodes (for example
    /// ./org1@127.0.0.1:9001@http://127.0.0.1:9011). The other nodes pull
    /// the records they are entitled to from that URL; a node given none
    /// holds records no other node can receive. Repeat for each node; four
    /// tolerate one faulty.
    #[arg(
        long = "node",
        required = true,
        value_name = "DATA_DIR@P2P_ADDRESS[@HTTP_URL]"
    )]
    pub nodes: Vec<String>,
}

pub fn run(command: NetworkCommand) -> anyhow::Result<ExitCode> {
    match command {
        NetworkCommand::Init(args) => {
            let nodes = parse_nodes(&args.nodes)?;
            let peers = init(&args.network, args.governance, &nodes)?;
            for (peer, node) in peers.peers.iter().zip(&nodes) {
                println!(
                    "{}  {}  p2p {}  api {}",
                    node.data_dir.display(),
                    peer.did,
                    peer.p2p,
                    peer.api.as_deref().unwrap_or("(none)")
                );
            }
            println!(
                "start each node with: hygeia serve --data-dir DATA_DIR --peers DATA_DIR/{} --listen HTTP_ADDRESS",
                hygeia_node::config::PEERS_FILE
            );
            Ok(ExitCode::SUCCESS)
        }
        NetworkCommand::Validators(args) => validators(args),
    }
}

fn validators(args: ValidatorsArgs) -> anyhow::Result<ExitCode> {
    let members = args
        .validators
        .iter()
        .map(|validator| parse_validator(validator))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let key = hygeia_identity::Keypair::read_key_file(&args.key)?;
    let info = super::node_info(&args.node)?;
    let network = super::node_network(&info)?;
    let epoch = match args.epoch {
        Some(epoch) => epoch,
        None => {
            let current = info["epoch"]
                .as_u64()
                .context("the node did not say its epoch: give --epoch")?;
            current + 1
        }
    };
    eprintln!(
        "naming {} validators for epoch {epoch} of {network}",
        members.len()
    );
    let raw = hygeia_ledger::TxBuilder {
        network: &network,
        tx_type: "network.validators",
        nonce: super::tx::fresh_nonce(),
        body: serde_json::json!({"epoch": epoch, "validators": members}),
    }
    .sign(&key);
    super::tx::submit(&args.node, raw)
}

/// Parses `DID@IP:PORT` into a `network.validators` member.
fn parse_validator(validator: &str) -> anyhow::Result<serde_json::Value> {
    let (did, address) = validator
        .rsplit_once('@')
        .with_context(|| format!("--validator {validator}: expected DID@IP:PORT"))?;
    hygeia_identity::Did::parse_cached(did)
        .map_err(|e| anyhow::anyhow!("--validator {validator}: {did} is not a did:key: {e}"))?;
    let address: SocketAddr = address.parse().with_context(|| {
        format!("--validator {validator}: {address} is not an IP address and port")
    })?;
    Ok(serde_json::json!({"key": did, "address": address.to_string()}))
}

/// Parses `DATA_DIR@P2P_ADDRESS[@HTTP_URL]` arguments.
pub fn parse_nodes(nodes: &[String]) -> anyhow::Result<Vec<InitNode>> {
    nodes.iter().map(|node| parse_node(node)).collect()
}

fn parse_node(node: &str) -> anyhow::Result<InitNode> {
    // The URL is the part after the last `@http://` or `@https://`; a data
    // directory may hold an `@`, a URL's scheme says where it starts.
    let (rest, api) = match ["@http://", "@https://"]
        .iter()
        .filter_map(|scheme| node.rfind(scheme))
        .max()
    {
        Some(at) => (&node[..at], Some(&node[at + 1..])),
        None => (node, None),
    };
    let (dir, address) = rest
        .rsplit_once('@')
        .with_context(|| format!("--node {node}: expected DATA_DIR@P2P_ADDRESS[@HTTP_URL]"))?;
    let p2p: SocketAddr = address
        .parse()
        .with_context(|| format!("--node {node}: {address} is not an IP address and port"))?;
    let api = api
        .map(|url| {
            let parsed = reqwest::Url::parse(url)
                .with_context(|| format!("--node {node}: {url} is not a URL"))?;
            anyhow::ensure!(
                parsed.host_str().is_some()
                    && parsed.query().is_none()
                    && parsed.fragment().is_none()
                    && parsed.username().is_empty()
                    && matches!(parsed.path(), "" | "/"),
                "--node {node}: the HTTP URL is a scheme, a host and a port, like http://127.0.0.1:9011"
            );
            Ok(url.trim_end_matches('/').to_owned())
        })
        .transpose()?;
    anyhow::ensure!(
        !dir.is_empty(),
        "--node {node}: the data directory is empty"
    );
    Ok(InitNode {
        data_dir: PathBuf::from(dir),
        p2p,
        api,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_validator_argument_is_a_did_key_and_an_ip_address() {
        let did = hygeia_identity::Keypair::generate().did().to_string();
        let member = parse_validator(&format!("{did}@127.0.0.1:7201")).unwrap();
        assert_eq!(
            member,
            serde_json::json!({"key": did, "address": "127.0.0.1:7201"})
        );
        for bad in [
            did.clone(),
            format!("{did}@localhost:7201"),
            format!("{did}@127.0.0.1"),
            "did:web:example.org@127.0.0.1:7201".to_owned(),
            "@127.0.0.1:7201".to_owned(),
        ] {
            assert!(parse_validator(&bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn a_node_argument_may_name_its_http_url() {
        let node = parse_node("./org1@127.0.0.1:9001@http://127.0.0.1:9011/").unwrap();
        assert_eq!(node.data_dir, PathBuf::from("./org1"));
        assert_eq!(node.p2p, "127.0.0.1:9001".parse().unwrap());
        assert_eq!(node.api.as_deref(), Some("http://127.0.0.1:9011"));
        let plain = parse_node("./a@b@127.0.0.1:9002").unwrap();
        assert_eq!(plain.data_dir, PathBuf::from("./a@b"));
        assert_eq!(plain.api, None);
        for bad in [
            "no-address-here",
            "./org1@127.0.0.1:9001@http://",
            "./org1@127.0.0.1:9001@http://h:1/path",
            "./org1@127.0.0.1:9001@http://u@h:1",
            "./org1@not-an-address@http://127.0.0.1:9011",
            "@127.0.0.1:9001",
        ] {
            let Err(error) = parse_node(bad) else {
                panic!("{bad} was accepted");
            };
            let error = error.to_string();
            assert!(
                error.starts_with(&format!("--node {bad}")),
                "{bad}: {error}"
            );
        }
    }
}
