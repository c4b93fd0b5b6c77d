//! `hygeia status publish | set`: an issuer's Bitstring Status Lists,
//! anchored on the ledger (`status.list`) and served by the node at
//! `<node>/v1/status-lists/<issuer DID>/<name>`, the URL its credentials
//! name. Only issuers on the trust list anchor lists, and a list's id
//! lies under its issuer's DID (docs/credentials.md).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{ArgGroup, Subcommand};
use hygeia_cli::licensing::verification_method;
use hygeia_credentials::status_list::{StatusList, StatusPurpose};
use hygeia_credentials::status_list_credential::StatusListCredential;
use hygeia_identity::Keypair;
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::credential::Purpose;
use super::did::{get_json, Resolver};
use crate::client::Client;
use hygeia_node::state::credentials::{is_list_name, list_path, MAX_LIST_NAME_LEN};

#[derive(Subcommand)]
pub enum StatusCommand {
    /// Publish a new status list, every bit clear
    ///
    /// Signed (eddsa-jcs-2022)
    /// by your key for the issuer and anchored with `status.list`; the
    /// issuer must be on the network's trust list. Its id, which
    /// credentials name in --status-list, is
    /// `<node>/v1/status-lists/<issuer DID>/<name>` (printed as `list`).
    Publish {
        /// The issuer's key file (its did:key, or a current key of the
        /// organization given with --issuer).
        #[arg(long, short)]
        key: PathBuf,
        /// The node that anchors and serves the list.
        #[arg(long)]
        node: String,
        /// The list's name: letters, digits, '.', '_' and '-'.
        #[arg(long)]
        name: String,
        /// The issuer's DID. Default: the key's did:key.
        #[arg(long)]
        issuer: Option<String>,
        /// What a set bit means.
        #[arg(long, value_enum, default_value = "revocation")]
        purpose: Purpose,
    },
    /// Set or clear one credential's bit
    ///
    /// Fetches the list from the node,
    /// verifies it, flips the bit, signs the new version and submits it.
    /// The change counts from the batch that commits it.
    #[command(group(ArgGroup::new("state").required(true).args(["revoked", "suspended", "valid"])))]
    Set {
        /// The issuer's key file.
        #[arg(long, short)]
        key: PathBuf,
        /// The node that serves the list.
        #[arg(long)]
        node: String,
        /// The list's name, as published.
        #[arg(long)]
        name: String,
        /// The issuer's DID, as published. Default: the key's did:key.
        #[arg(long)]
        issuer: Option<String>,
        /// The credential's bit (its --status-index).
        #[arg(long)]
        index: usize,
        /// Revoke the credential, for good (a revocation list).
        #[arg(long)]
        revoked: bool,
        /// Suspend the credential (a suspension list).
        #[arg(long)]
        suspended: bool,
        /// Lift a suspension (clear the bit of a suspension list).
        #[arg(long)]
        valid: bool,
    },
}

fn check_name(name: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        is_list_name(name),
        "--name must be 1 to {MAX_LIST_NAME_LEN} letters, digits, '.', '_' or '-', not {name:?}"
    );
    Ok(())
}

/// Now, to the second: the credential's dates are written to the second.
fn now_seconds() -> anyhow::Result<OffsetDateTime> {
    Ok(OffsetDateTime::from_unix_timestamp(
        OffsetDateTime::now_utc().unix_timestamp(),
    )?)
}

fn read_key(path: &Path) -> anyhow::Result<Keypair> {
    Keypair::read_key_file(path).with_context(|| format!("cannot use key file {}", path.display()))
}

/// Signs a version of a list and submits it as `status.list`.
fn publish(node: &str, key: &Keypair, list: &StatusListCredential) -> anyhow::Result<Value> {
    let now = now_seconds()?;
    let credential = list
        .issue(key, &verification_method(&list.issuer, key), now)
        .map_err(|e| anyhow::anyhow!("{}: {e}", e.code()))?;
    let mut client = Client::with_key(node, hygeia_cli::licensing::copy_key(key));
    let mut answer = client.submit("status.list", json!({ "credential": credential }))?;
    answer["list"] = json!(list.id);
    Ok(answer)
}

pub fn run(command: StatusCommand) -> anyhow::Result<ExitCode> {
    let answer = match command {
        StatusCommand::Publish {
            key,
            node,
            name,
            issuer,
            purpose,
        } => {
            check_name(&name)?;
            let key = read_key(&key)?;
            let issuer = issuer.unwrap_or_else(|| key.did().to_string());
            // A new version with every bit clear would lift every
            // revocation in an existing list.
            let path = list_path(&issuer, &name);
            if get_json(&node, &path).is_ok() {
                anyhow::bail!(
                    "the node already serves {issuer}'s list {name}: change its bits with `hygeia status set`"
                );
            }
            let list = StatusListCredential {
                id: format!("{}{path}", node.trim_end_matches('/')),
                issuer,
                purpose: purpose.into(),
                list: StatusList::new(0)?,
                valid_from: Some(now_seconds()?),
                valid_until: None,
            };
            publish(&node, &key, &list)?
        }
        StatusCommand::Set {
            key,
            node,
            name,
            issuer,
            index,
            revoked,
            suspended,
            valid: _,
        } => {
            check_name(&name)?;
            let key = read_key(&key)?;
            let issuer = issuer.unwrap_or_else(|| key.did().to_string());
            let current = get_json(&node, &list_path(&issuer, &name))?;
            let resolver = Resolver::new(Some(&node));
            let verified =
                StatusListCredential::verify(&current, now_seconds()?, |m| resolver.method_key(m))
                    .map_err(|e| {
                        let detail = resolver.failure.borrow().clone().unwrap_or_default();
                        anyhow::anyhow!(
                            "the node's list does not verify: {}: {e} {detail}",
                            e.code()
                        )
                    })?;
            let purpose = verified.purpose();
            if revoked {
                anyhow::ensure!(
                    purpose == StatusPurpose::Revocation,
                    "{name} is a {} list: --revoked needs a revocation list",
                    purpose.as_str()
                );
            }
            if suspended {
                anyhow::ensure!(
                    purpose == StatusPurpose::Suspension,
                    "{name} is a {} list: --suspended needs a suspension list",
                    purpose.as_str()
                );
            }
            let mut bits = verified.list().clone();
            let set = revoked || suspended;
            if !set && purpose == StatusPurpose::Revocation && bits.get(index)? {
                anyhow::bail!(
                    "bit {index} of {name} is a revocation: a revoked credential stays revoked"
                );
            }
            bits.set(index, set)?;
            let list = StatusListCredential {
                id: verified.id().to_owned(),
                issuer: verified.issuer().to_owned(),
                purpose,
                list: bits,
                valid_from: Some(now_seconds()?),
                valid_until: None,
            };
            let mut answer = publish(&node, &key, &list)?;
            answer["index"] = json!(index);
            answer["set"] = json!(set);
            answer
        }
    };
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn list_names_are_codes() {
        for good in ["board-2026", "a", "x.y_z"] {
            assert!(super::check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "a/b", "a b", "é", "..", &"n".repeat(65)] {
            assert!(super::check_name(bad).is_err(), "{bad}");
        }
    }
}
