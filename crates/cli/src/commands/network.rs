//! `hygeia network`: a multi-organization network's genesis (`init`), an
//! organization's node joining it later (`join`), governance's changes
//! of its custodian set (`custodian`) and of its validator set at an epoch
//! (`validators`), and a stopped node's catch-up from a state snapshot its
//! peers vouch for (`catch-up`).

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
    /// Make the data directory of an organization's node that joins a
    /// running network (docs/network.md, "An organization joins"). It
    /// fetches the network's genesis entry from a node of the network and
    /// checks it against the network id you were told by the founders (the
    /// genesis entry's leaf hash, `network_id` in GET /v1/node): a node that
    /// hands over another network's genesis is refused
    /// (join.genesis_mismatch). It also takes from that node the p2p
    /// addresses of epoch 0's nodes, whose keys the genesis names. It writes
    /// the node key (if the directory has none), the log holding the
    /// genesis alone, and DATA_DIR/peers.json; nothing else is fetched or
    /// trusted: the rest of the log comes later from consensus, checked
    /// against the validators' quorum certificates.
    ///
    /// Then: governance adds this node's key as a custodian (`hygeia network
    /// custodian --add DID`) and names it, with the --p2p address, in the
    /// next epoch's validator set (`hygeia network validators`); start the
    /// node with `hygeia serve --data-dir DATA_DIR --peers
    /// DATA_DIR/peers.json --listen HTTP_ADDRESS`. It follows the network
    /// from the genesis, catching up epoch by epoch, and votes from the
    /// epoch that names it. Started before governance names it, it waits:
    /// the validators accept its connections only from then on.
    ///
    /// Refused, writing nothing: join.bad_network_id, join.bad_url,
    /// join.data_dir_not_empty (anything but a node.key in DATA_DIR),
    /// join.peer_unreachable, join.peer_answer (not a node of a network,
    /// or an answer that does not parse), join.genesis_mismatch,
    /// join.bad_genesis, join.bad_peers (the node does not give every
    /// founder an address), join.founder (this key founded the network).
    Join(JoinArgs),
    /// Change the network's custodian set (the node keys that may sign
    /// `record` and `access`, and that governance may name as validators):
    /// a `network.custodian` transaction signed with the governance key.
    /// A key added here orders the log only once `hygeia network
    /// validators` names it for an epoch.
    Custodian(CustodianArgs),
    /// Catch a stopped node that was down for long up to the newest state
    /// snapshot its peers vouch for, instead of executing every block it
    /// missed (docs/network.md, "Catch-up from a state snapshot"); then
    /// start it with `hygeia serve` as before, which catches up the rest
    /// block by block.
    ///
    /// It asks every peer (peers.json, and the API URLs the validator set
    /// names) for the heads of the state snapshots it keeps, and takes the
    /// newest size for which at least f + 1 of the n validators this
    /// node's log names signed the same log root and state digest. It
    /// fetches the finalized chain from this node's last block to that
    /// size and the snapshot from one of them, and checks that the blocks
    /// link, that their entries make that root and that the snapshot has
    /// that digest, before writing anything. Each node writes a snapshot
    /// when its log crosses a multiple of `serve --snapshot-every`, so the
    /// network's nodes must use the same interval.
    ///
    /// Refused: catch_up.data_dir (not a stopped network node's
    /// directory), catch_up.no_quorum (no size enough validators vouch for
    /// past this log), catch_up.peer_answer (a peer's chain or snapshot
    /// does not check), catch_up.write.
    CatchUp(CatchUpArgs),
}

#[derive(Args)]
pub struct CatchUpArgs {
    /// The stopped node's data directory.
    #[arg(long)]
    pub data_dir: PathBuf,
}

#[derive(Args)]
pub struct JoinArgs {
    /// The new node's data directory: absent, empty, or holding only its
    /// node.key (made with `hygeia key new --out DATA_DIR/node.key`, say,
    /// to give its did:key to governance first).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// The HTTP URL of any node of the network (its `hygeia serve
    /// --listen`), for example http://127.0.0.1:7211. It is not trusted:
    /// what it hands over is checked.
    #[arg(long, value_name = "URL")]
    pub from: String,
    /// The network id, as the founders told it (not as the --from node
    /// says it): 64 hex digits, the leaf hash of the genesis entry.
    #[arg(long, value_name = "HEX")]
    pub network_id: String,
    /// Where this node's p2p will listen, IP:PORT: the address governance
    /// names for it in `hygeia network validators --validator DID@IP:PORT`.
    #[arg(long, value_name = "IP:PORT")]
    pub p2p: SocketAddr,
    /// The URL of this node's HTTP API as the other nodes reach it
    /// (written into its peers.json; governance names it in the validator
    /// set too, so the founders' nodes find it).
    #[arg(long, value_name = "URL")]
    pub api: Option<String>,
}

#[derive(Args)]
pub struct CustodianArgs {
    /// Node to submit to (any node of the network).
    #[arg(long)]
    pub node: String,
    /// The governance key file.
    #[arg(long, short)]
    pub key: PathBuf,
    /// The did:key to add (a node's did:key is `hygeia key show --key
    /// DATA_DIR/node.key`).
    #[arg(
        long,
        value_name = "DID",
        conflicts_with = "remove",
        required_unless_present = "remove"
    )]
    pub add: Option<String>,
    /// The did:key to remove.
    #[arg(long, value_name = "DID")]
    pub remove: Option<String>,
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
    /// One validator of the next epoch: its node's did:key, the p2p
    /// address its peers dial and, optionally, its HTTP API's URL, which
    /// the other organizations' nodes pull its records from:
    /// DID@IP:PORT[@HTTP_URL] (a node's did:key is
    /// `hygeia key did --key DATA_DIR/node.key`). Repeat for each. A node
    /// that joined after the genesis should name its URL: the founders'
    /// peers files do not know it.
    #[arg(
        long = "validator",
        required = true,
        value_name = "DID@IP:PORT[@HTTP_URL]"
    )]
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
        NetworkCommand::Join(args) => join(args),
        NetworkCommand::Custodian(args) => custodian(args),
        NetworkCommand::CatchUp(args) => catch_up(args),
    }
}

/// Most bytes of a peer's `GET /v1/node` answer read (a few KiB in
/// practice; a lying peer does not make the joiner hold more).
const MAX_NODE_INFO_BYTES: u64 = 1 << 20;
/// An entry bundle of one entry: its 2-byte length and at most 65,535 bytes.
const MAX_ONE_ENTRY_BUNDLE: u64 = 2 + u16::MAX as u64;

fn join(args: JoinArgs) -> anyhow::Result<ExitCode> {
    use hygeia_node::join::{check_data_dir, parse_network_id, Joining};
    // Checked before the peer is asked anything.
    parse_network_id(&args.network_id)?;
    check_data_dir(&args.data_dir)?;
    let from = peer_url(&args.from)?;
    let (founders, genesis) = fetch_from_peer(&from)?;
    let joined = hygeia_node::join::join(Joining {
        data_dir: &args.data_dir,
        network_id: &args.network_id,
        genesis: &genesis,
        founders: &founders,
        p2p: args.p2p,
        api: args.api.clone(),
    })?;
    let api = args.api.as_deref();
    let dir = args.data_dir.display();
    println!("network {} ({})", joined.network, args.network_id);
    println!("node key {}", joined.did);
    println!(
        "wrote {dir}: the genesis at leaf 0 and {} (epoch 0's {} nodes, then this one at p2p {})",
        hygeia_node::config::PEERS_FILE,
        joined.peers.peers.len() - 1,
        args.p2p
    );
    println!(
        "next: governance adds it (hygeia network custodian --add {did}) and names it          (hygeia network validators ... --validator {did}@{p2p}{api}); then start it with          hygeia serve --data-dir {dir} --peers {dir}/{peers} --listen HTTP_ADDRESS",
        did = joined.did,
        p2p = args.p2p,
        api = api.map(|api| format!("@{api}")).unwrap_or_default(),
        peers = hygeia_node::config::PEERS_FILE,
    );
    Ok(ExitCode::SUCCESS)
}

/// Most bytes of a peer's list of snapshot heads.
const MAX_HEADS_BYTES: u64 = 1 << 20;
/// Most bytes of a state snapshot fetched whole.
const MAX_SNAPSHOT_BYTES: u64 = 8 << 30;

/// A peer's answers over HTTP, for `network catch-up`.
struct HttpSource(reqwest::blocking::Client);

impl HttpSource {
    fn get(&self, url: &str, limit: u64) -> Result<Vec<u8>, String> {
        use std::io::Read;
        let response = self.0.get(url).send().map_err(|e| format!("{url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("{url} answered {}", response.status()));
        }
        let mut body = Vec::new();
        response
            .take(limit + 1)
            .read_to_end(&mut body)
            .map_err(|e| format!("{url}: {e}"))?;
        if body.len() as u64 > limit {
            return Err(format!("{url} answered more than {limit} bytes"));
        }
        Ok(body)
    }
}

impl hygeia_node::catch_up::Source for HttpSource {
    fn snapshot_heads(&self, api: &str) -> Result<Vec<String>, String> {
        let url = format!("{api}/v1/network/snapshots");
        let body: serde_json::Value = serde_json::from_slice(&self.get(&url, MAX_HEADS_BYTES)?)
            .map_err(|e| format!("{url}: not JSON: {e}"))?;
        Ok(body["snapshots"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["head"].as_str().map(str::to_owned))
            .collect())
    }

    fn snapshot(&self, api: &str, size: u64) -> Result<Vec<u8>, String> {
        self.get(
            &format!("{api}/v1/network/snapshots/{size}"),
            MAX_SNAPSHOT_BYTES,
        )
    }

    fn chain(&self, api: &str, offset: u64) -> Result<Vec<u8>, String> {
        self.get(
            &format!("{api}/v1/network/chain?offset={offset}"),
            hygeia_node::api::CHAIN_PAGE,
        )
    }
}

fn catch_up(args: CatchUpArgs) -> anyhow::Result<ExitCode> {
    let client = reqwest::blocking::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .timeout(std::time::Duration::from_secs(600))
        .build()?;
    let mut last_shown = std::time::Instant::now();
    let installed =
        hygeia_node::catch_up::catch_up(&args.data_dir, &HttpSource(client), &mut |progress| {
            show(progress, &mut last_shown)
        })?;
    println!(
        "caught up from {} to {} entries ({} blocks), the state vouched for by {} validators, fetched from {}",
        installed.from_size,
        installed.size,
        installed.blocks,
        installed.vouched_by.len(),
        installed.fetched_from
    );
    println!(
        "next: hygeia serve --data-dir {} --peers {}/{} ... catches up the rest block by block",
        args.data_dir.display(),
        args.data_dir.display(),
        hygeia_node::config::PEERS_FILE
    );
    Ok(ExitCode::SUCCESS)
}

/// Prints a stage of `network catch-up` (the chain's progress once a
/// second at most).
fn show(progress: hygeia_node::catch_up::Progress<'_>, last_shown: &mut std::time::Instant) {
    use hygeia_node::catch_up::Progress;
    match progress {
        Progress::Heads { peers } => {
            eprintln!("asking {peers} peers for the state snapshots they keep")
        }
        Progress::Chosen {
            size,
            vouched_by,
            needed,
        } => eprintln!(
            "the state at {size} entries is vouched for by {vouched_by} validators ({needed} needed)"
        ),
        Progress::Chain { entries, of } => {
            if last_shown.elapsed() >= std::time::Duration::from_secs(1) || entries == of {
                eprintln!("finalized chain: {entries} of {of} entries");
                *last_shown = std::time::Instant::now();
            }
        }
        Progress::Snapshot { bytes } => eprintln!("state snapshot: {bytes} bytes, checked"),
        Progress::Writing => eprintln!("writing the chain, the log and the snapshot"),
        Progress::Note(note) => eprintln!("note: {note}"),
    }
}

/// The peer's base URL: a scheme, a host and a port.
fn peer_url(from: &str) -> anyhow::Result<String> {
    let parsed = reqwest::Url::parse(from)
        .map_err(|e| anyhow::anyhow!("join.bad_url: --from {from} is not a URL: {e}"))?;
    anyhow::ensure!(
        matches!(parsed.scheme(), "http" | "https")
            && parsed.host_str().is_some()
            && parsed.query().is_none()
            && parsed.fragment().is_none(),
        "join.bad_url: --from {from} is not an http(s) URL of a node, like http://127.0.0.1:7211"
    );
    Ok(from.trim_end_matches('/').to_owned())
}

/// Epoch 0's nodes as the peer names them, and the entry at leaf 0 of its
/// log; neither is trusted here (`hygeia_node::join::join` checks them).
fn fetch_from_peer(from: &str) -> anyhow::Result<(Vec<hygeia_node::ordering::Peer>, Vec<u8>)> {
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()?;
    let get = |path: &str, limit: u64| -> anyhow::Result<Vec<u8>> {
        use std::io::Read;
        let url = format!("{from}{path}");
        let response = client
            .get(&url)
            .send()
            .map_err(|e| anyhow::anyhow!("join.peer_unreachable: {url}: {e}"))?;
        anyhow::ensure!(
            response.status().is_success(),
            "join.peer_answer: {url} answered {}",
            response.status()
        );
        let mut body = Vec::new();
        response
            .take(limit + 1)
            .read_to_end(&mut body)
            .map_err(|e| anyhow::anyhow!("join.peer_unreachable: {url}: {e}"))?;
        anyhow::ensure!(
            body.len() as u64 <= limit,
            "join.peer_answer: {url} answered more than {limit} bytes"
        );
        Ok(body)
    };
    let info: serde_json::Value = serde_json::from_slice(&get("/v1/node", MAX_NODE_INFO_BYTES)?)
        .map_err(|e| anyhow::anyhow!("join.peer_answer: {from}/v1/node is not JSON: {e}"))?;
    anyhow::ensure!(
        !info["peers"].is_null(),
        "join.peer_answer: {from} names no peers: it is not a node of a multi-organization network (or runs a version without `peers` in /v1/node)"
    );
    let founders: Vec<hygeia_node::ordering::Peer> = serde_json::from_value(info["peers"].clone())
        .map_err(|e| anyhow::anyhow!("join.peer_answer: {from}/v1/node: peers: {e}"))?;
    // Leaf 0 alone: a partial bundle of width 1 is a prefix of the first
    // bundle, served whatever the log's size.
    let bundle = get("/tile/entries/000.p/1", MAX_ONE_ENTRY_BUNDLE)?;
    let entries = hygeia_ledger::tiles::split_entries(&bundle)
        .map_err(|e| anyhow::anyhow!("join.peer_answer: {from}/tile/entries/000.p/1: {e}"))?;
    let [genesis] = entries.as_slice() else {
        anyhow::bail!(
            "join.peer_answer: {from}/tile/entries/000.p/1 holds {} entries, not 1",
            entries.len()
        );
    };
    Ok((founders, genesis.to_vec()))
}

fn custodian(args: CustodianArgs) -> anyhow::Result<ExitCode> {
    let (op, did) = match (&args.add, &args.remove) {
        (Some(did), None) => ("add", did),
        (None, Some(did)) => ("remove", did),
        _ => anyhow::bail!("give --add DID or --remove DID"),
    };
    hygeia_identity::Did::parse_cached(did)
        .map_err(|e| anyhow::anyhow!("{did} is not a did:key: {e}"))?;
    let key = hygeia_identity::Keypair::read_key_file(&args.key)?;
    let network = super::node_network(&super::node_info(&args.node)?)?;
    let raw = hygeia_ledger::TxBuilder {
        network: &network,
        tx_type: "network.custodian",
        nonce: super::tx::fresh_nonce(),
        body: serde_json::json!({"op": op, "key": did}),
    }
    .sign(&key);
    super::tx::submit(&args.node, raw)
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

/// Parses `DID@IP:PORT[@HTTP_URL]` into a `network.validators` member.
fn parse_validator(validator: &str) -> anyhow::Result<serde_json::Value> {
    let (did, rest) = validator
        .split_once('@')
        .with_context(|| format!("--validator {validator}: expected DID@IP:PORT[@HTTP_URL]"))?;
    let (address, api) = match rest.split_once('@') {
        Some((address, api)) => (address, Some(api)),
        None => (rest, None),
    };
    hygeia_identity::Did::parse_cached(did)
        .map_err(|e| anyhow::anyhow!("--validator {validator}: {did} is not a did:key: {e}"))?;
    let address: SocketAddr = address.parse().with_context(|| {
        format!("--validator {validator}: {address} is not an IP address and port")
    })?;
    let mut member = serde_json::json!({"key": did, "address": address.to_string()});
    if let Some(api) = api {
        member["api"] = parse_api_url(api, &format!("--validator {validator}"))?.into();
    }
    Ok(member)
}

/// A node's HTTP API base URL: a scheme, a host and a port, no path.
fn parse_api_url(url: &str, what: &str) -> anyhow::Result<String> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("{what}: {url} is not a URL"))?;
    anyhow::ensure!(
        matches!(parsed.scheme(), "http" | "https")
            && parsed.host_str().is_some()
            && parsed.query().is_none()
            && parsed.fragment().is_none()
            && parsed.username().is_empty()
            && matches!(parsed.path(), "" | "/"),
        "{what}: the HTTP URL is a scheme, a host and a port, like http://127.0.0.1:9011"
    );
    Ok(url.trim_end_matches('/').to_owned())
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
        .map(|url| parse_api_url(url, &format!("--node {node}")))
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
        let member =
            parse_validator(&format!("{did}@127.0.0.1:7201@http://127.0.0.1:7211/")).unwrap();
        assert_eq!(
            member,
            serde_json::json!({"key": did, "address": "127.0.0.1:7201", "api": "http://127.0.0.1:7211"})
        );
        for bad in [
            format!("{did}@127.0.0.1:7201@ftp://127.0.0.1:7211"),
            format!("{did}@127.0.0.1:7201@http://127.0.0.1:7211/path"),
            format!("{did}@127.0.0.1:7201@"),
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
