//! `hygeia dataset publish | status`: manifests of datasets assembled from
//! consented records (docs/datasets.md). `publish` builds the typed
//! `dataset.publish` body (members sorted, root and count computed), signs
//! it with the researcher's key and submits it; `status` shows what the
//! node recomputes from the ledger.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use hygeia_state::datasets::{members_root, DatasetMember, DatasetPublish};
use hygeia_state::registry::TxBody;
use serde_json::Value;

use super::did::{get_json, url_component};
use super::economy::tick;
use crate::client::Client;

/// The researcher's key and the node to submit to.
#[derive(Args)]
pub struct Signer {
    /// Your key file.
    #[arg(long, short)]
    key: PathBuf,
    /// The node to submit to.
    #[arg(long)]
    node: String,
}

#[derive(Subcommand)]
pub enum DatasetCommand {
    /// Publish a dataset's manifest: each member record with the HRESCH
    /// grant that covers it (your key, the grants' grantee)
    #[command(
        after_help = "Example: hygeia dataset publish --key researcher.key --node URL --pseudonymisation <sha256 hex> \\\n    --member <record commitment>:<grant id> --member <record commitment>:<grant id>"
    )]
    Publish {
        #[command(flatten)]
        signer: Signer,
        /// SHA-256 (hex) of the document describing the pseudonymisation.
        #[arg(long)]
        pseudonymisation: String,
        /// A member, `<record commitment>:<grant id>` (1 to 256).
        #[arg(long = "member", required = true)]
        members: Vec<String>,
    },
    /// Show a dataset's manifest and its status: valid, or flagged members
    Status {
        #[arg(long)]
        node: String,
        /// The dataset's id (the leaf hash `publish` printed).
        dataset: String,
    },
}

/// The `dataset.publish` body for `members` (`record:grant` each).
pub fn publish_body(pseudonymisation: &str, members: &[String]) -> anyhow::Result<DatasetPublish> {
    let mut parsed = Vec::with_capacity(members.len());
    for member in members {
        let Some((record, grant)) = member.split_once(':') else {
            bail!("--member {member:?}: expected <record commitment>:<grant id>");
        };
        parsed.push(DatasetMember {
            record: record.to_ascii_lowercase(),
            grant: grant.to_ascii_lowercase(),
        });
    }
    parsed.sort_by(|a, b| a.record.cmp(&b.record));
    let body = DatasetPublish {
        root: members_root(&parsed).unwrap_or_default(),
        count: u32::try_from(parsed.len()).unwrap_or(u32::MAX),
        pseudonymisation: pseudonymisation.to_ascii_lowercase(),
        members: parsed,
    };
    body.check()
        .map_err(|e| anyhow::anyhow!("the manifest is not valid: {e}"))?;
    Ok(body)
}

fn print(value: &Value) -> anyhow::Result<ExitCode> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(ExitCode::SUCCESS)
}

pub fn run(command: DatasetCommand) -> anyhow::Result<ExitCode> {
    match command {
        DatasetCommand::Publish {
            signer,
            pseudonymisation,
            members,
        } => {
            let body = publish_body(&pseudonymisation, &members)?;
            // Grants are judged by the ledger's clock: bring it up to date.
            tick(&signer.node)?;
            let mut client = Client::new(&signer.node, &signer.key)?;
            let body = serde_json::to_value(body).context("cannot encode the manifest")?;
            print(&client.submit("dataset.publish", body)?)
        }
        DatasetCommand::Status { node, dataset } => print(&get_json(
            &node,
            &format!("/v1/datasets/{}", url_component(&dataset)),
        )?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_sorts_the_members_and_computes_root_and_count() {
        let (a, b, g) = ("aa".repeat(32), "bb".repeat(32), "cc".repeat(32));
        let body =
            publish_body(&"ee".repeat(32), &[format!("{b}:{g}"), format!("{a}:{g}")]).unwrap();
        assert_eq!(body.count, 2);
        assert_eq!(body.members[0].record, a);
        assert_eq!(Some(body.root.clone()), members_root(&body.members));
        assert!(body.check().is_ok());
    }

    #[test]
    fn a_malformed_member_or_a_repeated_record_is_refused_before_signing() {
        let (a, g) = ("aa".repeat(32), "cc".repeat(32));
        let hash = "ee".repeat(32);
        assert!(publish_body(&hash, std::slice::from_ref(&a)).is_err());
        assert!(publish_body(&hash, &[format!("{a}:nothex")]).is_err());
        assert!(publish_body(&hash, &[format!("{a}:{g}"), format!("{a}:{g}")]).is_err());
        assert!(publish_body("short", &[format!("{a}:{g}")]).is_err());
    }
}
