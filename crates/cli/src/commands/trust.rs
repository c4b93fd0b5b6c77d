//! `hygeia trust add | remove | list`: the network's trust list, which
//! names the issuers trusted for each credential type (`trust.issuer`,
//! signed by the governance key).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use hygeia_credentials::credential_types::{
    VCT_CLINICIAN_LICENCE, VCT_DEVICE_ATTESTATION, VCT_LAB_RESULT, VCT_TRIAL_SITE_ACCREDITATION,
};
use serde_json::json;

use super::did::get_json;
use crate::client::Client;

#[derive(Subcommand)]
pub enum TrustCommand {
    /// Put an issuer on the trust list for a credential type
    ///
    /// Governance key only. Adding it again replaces its countries.
    Add(AddArgs),
    /// Take an issuer off the trust list for a credential type
    ///
    /// Governance key only. Licences it issued stop counting at the next decision.
    Remove(RemoveArgs),
    /// Show the trust list.
    List {
        /// The node to ask.
        #[arg(long)]
        node: String,
    },
}

#[derive(Args)]
pub struct Target {
    /// The governance key file.
    #[arg(long, short)]
    key: PathBuf,
    /// The node to submit to.
    #[arg(long)]
    node: String,
    /// The issuer's DID (a did:key, or an organization's did:web).
    #[arg(long)]
    issuer: String,
    /// The credential type: licence, lab-result, device, trial-site, ethics-committee, or
    /// a vct URL (https://…).
    #[arg(long = "type")]
    credential_type: String,
}

#[derive(Args)]
pub struct AddArgs {
    #[command(flatten)]
    target: Target,
    /// For licences: the countries (ISO 3166-1 alpha-2) whose licences the
    /// issuer is trusted for, e.g. FR,DE. None: any.
    #[arg(long, value_delimiter = ',')]
    jurisdiction: Vec<String>,
}

#[derive(Args)]
pub struct RemoveArgs {
    #[command(flatten)]
    target: Target,
}

/// The vct of a credential type given by name or as a URL.
pub fn credential_type(text: &str) -> anyhow::Result<String> {
    Ok(match text {
        "licence" | "clinician-licence" => VCT_CLINICIAN_LICENCE.to_owned(),
        "lab-result" => VCT_LAB_RESULT.to_owned(),
        "device" | "device-attestation" => VCT_DEVICE_ATTESTATION.to_owned(),
        "trial-site" | "trial-site-accreditation" => VCT_TRIAL_SITE_ACCREDITATION.to_owned(),
        "ethics-committee" => hygeia_state::trials::VCT_ETHICS_COMMITTEE.to_owned(),
        url if url.starts_with("https://") => url.to_owned(),
        other => anyhow::bail!(
            "--type {other:?}: use licence, lab-result, device, trial-site, ethics-committee or a vct URL (https://…)"
        ),
    })
}

fn submit(target: &Target, op: &str, jurisdictions: &[String]) -> anyhow::Result<ExitCode> {
    let mut body = json!({
        "issuer": target.issuer,
        "credential_type": credential_type(&target.credential_type)?,
        "op": op,
    });
    if !jurisdictions.is_empty() {
        body["jurisdictions"] = json!(jurisdictions);
    }
    let mut client = Client::new(&target.node, &target.key)?;
    let answer = client.submit("trust.issuer", body)?;
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(ExitCode::SUCCESS)
}

pub fn run(command: TrustCommand) -> anyhow::Result<ExitCode> {
    match command {
        TrustCommand::Add(args) => submit(&args.target, "add", &args.jurisdiction),
        TrustCommand::Remove(args) => submit(&args.target, "remove", &[]),
        TrustCommand::List { node } => {
            let list = get_json(&node, "/v1/trust-list")?;
            println!("{}", serde_json::to_string_pretty(&list)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_by_name_or_url() {
        assert_eq!(credential_type("licence").unwrap(), VCT_CLINICIAN_LICENCE);
        assert_eq!(credential_type("device").unwrap(), VCT_DEVICE_ATTESTATION);
        assert_eq!(
            credential_type("https://example.org/vct/x").unwrap(),
            "https://example.org/vct/x"
        );
        assert!(credential_type("passport").is_err());
        assert!(credential_type("http://example.org/vct/x").is_err());
    }
}
