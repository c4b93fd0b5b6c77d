//! `hygeia sharing publish | claim | show`: research-sharing programmes
//! (docs/sharing.md). A researcher publishes rates and funds them with
//! `hygeia escrow open --sharing <id>`; a patient claims what their HRESCH
//! grant to the researcher earned. The node computes nothing on its own:
//! the ledger's rules pay.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::did::{get_json, url_component};
use super::economy::{print, tick, Signer};
use crate::client::Client;

const FORMULA: &str =
    "How a claim is paid (computed by the ledger's rules, the same on every node):

  per_day    x whole days the grant was active (once the researcher has
               read under it at least once), counted
               from  max(grant's not_before, programme start, end of the days
                     already paid to you by this programme)
               to    min(ledger clock, grant's not_after, time it was revoked)
  + per_access x accesses under the grant not yet paid

An access counts when the node logged a permitted HRESCH read citing your
grant, and at most one counts a day for a researcher and a patient, so
reading more pays no more. Only whole days are paid; the rest of a day
carries over. A claim pays only what is new since the last one: a second
claim at once is refused (sharing.nothing_owed). If the programme's fund
holds less than what is owed, the claim is refused (sharing.unfunded) and
nothing is lost: claim again once the researcher tops it up.";

#[derive(Subcommand)]
pub enum SharingCommand {
    /// Publish a research-sharing programme (the researcher's key, or an
    /// organization's admin key with --researcher <did:web>)
    #[command(
        after_help = "Example: hygeia sharing publish --key researcher.key --node URL --unit share-token --per-day 2 --per-access 5\nThen fund it: hygeia escrow open --key researcher.key --node URL --unit share-token --amount 500 \\\n    --sharing <programme id> --refund-after <unix time>\n\n"
    )]
    Publish(Box<PublishArgs>),
    /// Claim what your HRESCH grant to the programme's researcher earned
    #[command(
        long_about = "Claim what your HRESCH grant to the programme's researcher earned since your last claim; the amount is paid to you (the grant's patient), also when a registered delegate signs.",
        after_help = FORMULA
    )]
    Claim {
        #[command(flatten)]
        signer: Signer,
        /// The grant (the leaf hash of your consent.grant).
        #[arg(long)]
        grant: String,
        /// The programme's id.
        program: String,
    },
    /// Show a programme: rates, fund, claims, what it paid; with --grant,
    /// what that grant was paid and is owed now
    #[command(after_help = FORMULA)]
    Show {
        #[arg(long)]
        node: String,
        /// An HRESCH grant to the programme's researcher.
        #[arg(long)]
        grant: Option<String>,
        program: String,
    },
}

#[derive(Args)]
#[command(after_help = FORMULA)]
pub struct PublishArgs {
    #[command(flatten)]
    signer: Signer,
    /// Whose programme (default: your key's did:key); an organization's
    /// did:web when your key is its admin key. Patients' grants name it.
    #[arg(long)]
    researcher: Option<String>,
    #[arg(long)]
    unit: String,
    /// Paid per whole day a patient's grant was active.
    #[arg(long, default_value_t = 0)]
    per_day: u64,
    /// Paid per counted access (at most one a day per patient).
    #[arg(long, default_value_t = 0)]
    per_access: u64,
    /// No day before this time (Unix seconds) is paid; default: the
    /// ledger's clock when published.
    #[arg(long)]
    start: Option<i64>,
}

fn show_path(program: &str, grant: Option<&str>) -> String {
    let mut path = format!("/v1/sharing/{}", url_component(program));
    if let Some(grant) = grant {
        path.push_str(&format!("?grant={}", url_component(grant)));
    }
    path
}

pub fn run(command: SharingCommand) -> anyhow::Result<ExitCode> {
    match command {
        SharingCommand::Publish(args) => {
            let researcher = match &args.researcher {
                Some(r) => r.clone(),
                None => hygeia_identity::Keypair::read_key_file(&args.signer.key)
                    .with_context(|| format!("cannot use key file {}", args.signer.key.display()))?
                    .did()
                    .to_string(),
            };
            let mut body = json!({"researcher": researcher, "unit": args.unit,
                                  "per_day": args.per_day, "per_access": args.per_access});
            if let Some(start) = args.start {
                body["start"] = json!(start);
            }
            tick(&args.signer.node)?;
            let mut client = Client::new(&args.signer.node, &args.signer.key)?;
            print(&client.submit("sharing.publish", body)?)
        }
        SharingCommand::Claim {
            signer,
            grant,
            program,
        } => {
            // The clock first: days are counted up to the ledger's clock.
            tick(&signer.node)?;
            let path = show_path(&program, Some(&grant));
            let before = get_json(&signer.node, &path)?;
            let mut client = Client::new(&signer.node, &signer.key)?;
            let receipt =
                client.submit("sharing.claim", json!({"program": program, "grant": grant}))?;
            // What this claim paid: the grant's totals after, less before.
            let after = get_json(&signer.node, &path)?;
            let delta = |field: &str| {
                let total = |v: &Value| v["grant"]["paid"][field].as_u64().unwrap_or(0);
                total(&after).saturating_sub(total(&before))
            };
            let paid: Value = json!({
                "paid": delta("amount"), "unit": after["unit"], "days": delta("days"),
                "accesses": delta("accesses"), "receipt": receipt,
            });
            print(&paid)
        }
        SharingCommand::Show {
            node,
            grant,
            program,
        } => print(&get_json(&node, &show_path(&program, grant.as_deref()))?),
    }
}
