//! `hygeia licence register | show`: a clinician's licence on the ledger.
//! Reads and uploads for treatment (TREAT, ETREAT) of someone else's
//! records need one that counts now (docs/records.md, "Licences, trust
//! lists and status lists").

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use hygeia_cli::licensing::{copy_key, licence, registration, Issuer};
use hygeia_credentials::credential_types::VCT_CLINICIAN_LICENCE;
use hygeia_identity::Keypair;
use serde_json::{json, Value};

use super::did::{get_json, url_component, Resolver};
use crate::client::Client;

#[derive(Subcommand)]
pub enum LicenceCommand {
    /// Register your licence on a node
    ///
    /// Presents it with a key-binding JWT
    /// addressed to the network (aud = its network id, the hash of its
    /// genesis entry, as GET /v1/node gives it; nonce = your DID) and
    /// submits it as `licence.register`, signed with your key. The node
    /// checks the issuer's signature and that the licence is bound to your
    /// key and about you; trust, validity and status are checked at every
    /// decision.
    Register {
        /// Your key file: the key the licence is bound to.
        #[arg(long, short)]
        key: PathBuf,
        /// The node to register on.
        #[arg(long)]
        node: String,
        /// The licence as issued (an SD-JWT VC of type clinician licence).
        file: PathBuf,
    },
    /// Show a professional's licences and their standing now
    ///
    /// Each registered licence with its standing now: valid, untrusted-issuer, not-yet-valid, expired, revoked,
    /// suspended or status-unknown.
    Show {
        /// The node to ask.
        #[arg(long)]
        node: String,
        /// A key file whose DID to show, when DID is not given.
        #[arg(long, short)]
        key: Option<PathBuf>,
        /// The professional's DID.
        #[arg(required_unless_present = "key")]
        did: Option<String>,
    },
}

fn print(value: &Value) -> anyhow::Result<ExitCode> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(ExitCode::SUCCESS)
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

pub fn run(command: LicenceCommand) -> anyhow::Result<ExitCode> {
    match command {
        LicenceCommand::Register { key, node, file } => {
            let key = Keypair::read_key_file(&key)
                .with_context(|| format!("cannot use key file {}", key.display()))?;
            let issued = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            print(&register(&node, &key, issued.trim())?)
        }
        LicenceCommand::Show { node, key, did } => {
            let did = match (did, key) {
                (Some(did), _) => did,
                (None, Some(key)) => Keypair::read_key_file(&key)
                    .with_context(|| format!("cannot use key file {}", key.display()))?
                    .did()
                    .to_string(),
                (None, None) => anyhow::bail!("give a DID or --key"),
            };
            print(&get_json(
                &node,
                &format!("/v1/licences/{}", url_component(&did)),
            )?)
        }
    }
}

/// Registers an issued licence as `holder` on `node`; returns the node's
/// answer.
pub fn register(node: &str, holder: &Keypair, issued: &str) -> anyhow::Result<Value> {
    // Bound to the network, not to one node: every node replaying the log
    // admits it.
    let audience = super::node_info(node)?["network_id"]
        .as_str()
        .map(str::to_owned)
        .context("the node did not give its network id (network_id)")?;
    let resolver = Resolver::new(Some(node));
    let presentation = registration(
        issued,
        holder,
        &audience,
        unix_now(),
        &|iss: &str, h: &_| resolver.issuer_key(iss, h),
    )
    .map_err(|e| {
        let detail = resolver.failure.borrow().clone().unwrap_or_default();
        anyhow::anyhow!(
            "the licence cannot be presented: {}: {e} {detail}",
            e.code()
        )
    })?;
    Client::with_key(node, copy_key(holder))
        .submit("licence.register", json!({ "presentation": presentation }))
}

/// Makes `holders` licensed on `node`, for demos and benchmarks:
/// `governance` puts `board` (a did:key licensing board) on the trust list
/// for licences of `jurisdiction`, then the board licenses each holder in
/// its profession for a year and each registers its licence.
pub fn license(
    node: &str,
    governance: &Keypair,
    board: &Keypair,
    jurisdiction: &str,
    holders: &[(&Keypair, &str)],
) -> anyhow::Result<()> {
    let issuer = Issuer::did_key(board);
    Client::with_key(node, copy_key(governance))
        .submit(
            "trust.issuer",
            json!({"issuer": issuer.did, "credential_type": VCT_CLINICIAN_LICENCE,
                   "jurisdictions": [jurisdiction], "op": "add"}),
        )
        .context(
            "putting the licensing board on the trust list (is this the node's governance key?)",
        )?;
    let now = unix_now();
    for (holder, profession) in holders {
        let issued = issuer
            .issue(
                &licence(holder.did(), profession, jurisdiction),
                holder.public_key(),
                now - 60,
                Some(now + 365 * 86_400),
                &[],
            )
            .map_err(|e| anyhow::anyhow!("{}: {e}", e.code()))?;
        register(node, holder, &issued)
            .with_context(|| format!("registering the licence of {}", holder.did()))?;
    }
    Ok(())
}
