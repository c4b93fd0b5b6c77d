//! `hygeia smart`: registering SMART Backend Services clients
//! (docs/smart.md, "Backend Services").

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use super::fhir::read_key;

#[derive(Subcommand)]
pub enum SmartCommand {
    /// Sign the registration of a backend service's ES384 key
    ///
    /// Prints the entry to add to the node's smart-clients.json under
    /// "backend_clients". The service's tokens act as the identity of
    /// --key, which signs the entry (the binding): the node refuses an
    /// entry whose binding does not verify, so no operator can make a
    /// service act as someone who did not sign. Redo it after a key
    /// rotation: a binding by a retired key gives no token.
    BindClient {
        /// The key file of the identity the service acts as.
        #[arg(long)]
        key: PathBuf,
        /// The client_id the service puts in iss and sub (1 to 64 of
        /// A-Z a-z 0-9 . _ -).
        #[arg(long)]
        client_id: String,
        /// A name for people reading the file and the logs.
        #[arg(long)]
        name: String,
        /// The service's public key as a JWK file (kty EC, crv P-384).
        #[arg(long)]
        jwk: PathBuf,
        /// The HL7 v3 PurposeOfUse its tokens state.
        #[arg(long, default_value = "TREAT")]
        purpose_of_use: String,
    },
}

pub fn run(command: SmartCommand) -> anyhow::Result<ExitCode> {
    match command {
        SmartCommand::BindClient {
            key,
            client_id,
            name,
            jwk,
            purpose_of_use,
        } => {
            let key = read_key(&key)?;
            let text = std::fs::read(&jwk)
                .with_context(|| format!("cannot read the JWK file {}", jwk.display()))?;
            let jwk_value: serde_json::Value = serde_json::from_slice(&text)
                .with_context(|| format!("{} is not JSON", jwk.display()))?;
            let mut entry = hygeia_auth::smart_backend::bind(&key, &client_id, &name, &jwk_value)
                .map_err(|e| anyhow::anyhow!("{}: {e}", jwk.display()))?;
            entry["purpose_of_use"] = purpose_of_use.into();
            // Checked as the node will check it, so a bad id or name is
            // told here rather than at the node's start.
            let file = serde_json::json!({ "backend_clients": [entry] });
            hygeia_auth::smart::Clients::from_json(file.to_string().as_bytes())
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{}", serde_json::to_string_pretty(&entry)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}
