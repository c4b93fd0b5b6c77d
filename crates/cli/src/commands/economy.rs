//! `hygeia unit | escrow | program | clock`: accounts, escrows and care
//! programs (docs/economy.md). Each change is a transaction signed with
//! the user's key and submitted to the node; the node only serves what the
//! ledger says.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use hygeia_credentials::zk::{self, Challenge};
use serde_json::{json, Value};

use super::did::{get_json, url_component};
use super::zk::{coded, read_credential, read_opening};
use crate::client::{json_or_refusal, Client};

/// The key and node every submitting command takes.
#[derive(Args)]
pub struct Signer {
    /// Your key file.
    #[arg(long, short)]
    pub key: PathBuf,
    /// The node to submit to.
    #[arg(long)]
    pub node: String,
}

#[derive(Subcommand)]
pub enum UnitCommand {
    /// Register a unit and its issuer (governance key only)
    #[command(
        after_help = "Example: hygeia unit register --key governance.key --node URL --unit gluco-token --issuer did:web:care.example"
    )]
    Register {
        #[command(flatten)]
        signer: Signer,
        /// The unit's code, e.g. gluco-token or eur-cents.
        #[arg(long)]
        unit: String,
        /// The DID that mints it (an organization mints with its admin key).
        #[arg(long)]
        issuer: String,
    },
    /// Mint an amount of a unit to a DID (the unit's issuer only)
    Mint {
        #[command(flatten)]
        signer: Signer,
        #[arg(long)]
        unit: String,
        #[arg(long)]
        to: String,
        /// In the unit's smallest denomination.
        #[arg(long)]
        amount: u64,
    },
    /// Move your funds (or your organization's, with --from) to a DID
    Transfer {
        #[command(flatten)]
        signer: Signer,
        #[arg(long)]
        unit: String,
        /// Whose funds (default: yours); an organization's did:web when your
        /// key is its admin key.
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: String,
        #[arg(long)]
        amount: u64,
    },
    /// Show a DID's balances and escrows
    Balance {
        #[arg(long)]
        node: String,
        did: String,
    },
    /// List the units, their issuers and supplies
    List {
        #[arg(long)]
        node: String,
    },
}

#[derive(Subcommand)]
pub enum EscrowCommand {
    /// Lock funds until a milestone, a deadline or a program's proofs
    /// release them; take back the rest after --refund-after
    #[command(
        after_help = "Examples:\n  hygeia escrow open --key sponsor.key --node URL --unit eur-cents --amount 5000 \\\n      --beneficiary did:key:z6Mk... --milestone trial-1/visit-2 --refund-after 1900000000\n  hygeia escrow open --key care-admin.key --node URL --funder did:web:care.example --unit gluco-token \\\n      --amount 1000 --program <program id> --refund-after 1900000000"
    )]
    Open(Box<OpenArgs>),
    /// Release a deadline escrow whose time has come (funder or beneficiary)
    Release {
        #[command(flatten)]
        signer: Signer,
        /// The escrow's id (the leaf hash of its escrow.open).
        escrow: String,
    },
    /// Take back what an escrow still locks, after its refund time (funder)
    Refund {
        #[command(flatten)]
        signer: Signer,
        escrow: String,
    },
    /// Show an escrow
    Show {
        #[arg(long)]
        node: String,
        escrow: String,
    },
}

#[derive(Args)]
pub struct OpenArgs {
    #[command(flatten)]
    signer: Signer,
    #[arg(long)]
    unit: String,
    #[arg(long)]
    amount: u64,
    /// Whose funds (default: yours; an organization's did:web when your
    /// key is its admin key).
    #[arg(long)]
    funder: Option<String>,
    /// Who receives the funds (not for --program).
    #[arg(long)]
    beneficiary: Option<String>,
    /// Released when a domain reports this milestone id.
    #[arg(long, group = "condition")]
    milestone: Option<String>,
    /// Released from this time (Unix seconds, by the ledger's clock).
    #[arg(long, group = "condition")]
    deadline: Option<i64>,
    /// Funds this care program: each accepted claim draws its reward.
    #[arg(long, group = "condition")]
    program: Option<String>,
    /// Funds this research-sharing programme: each accepted claim draws
    /// what the patient's grant earned.
    #[arg(long, group = "condition")]
    sharing: Option<String>,
    /// From this time (Unix seconds) you may take back what is left.
    #[arg(long)]
    refund_after: i64,
}

#[derive(Subcommand)]
pub enum ProgramCommand {
    /// Publish a care program's goal, e.g. HbA1c below 7.0 % (the
    /// organization's admin key)
    #[command(
        after_help = "Example: hygeia program publish --key care-admin.key --node URL --org did:web:care.example \\\n    --unit gluco-token --reward 50 --below 7.0 --issuer did:key:z6Mk...lab --period-days 90"
    )]
    Publish(Box<PublishArgs>),
    /// Prove a program's goal with your credential and claim its reward
    #[command(
        after_help = "Example: hygeia program claim --key patient.key --node URL --credential cred.json --opening opening.json <program id>"
    )]
    Claim {
        #[command(flatten)]
        signer: Signer,
        /// The credential, as the lab issued it (`hygeia zk issue --out`).
        #[arg(long)]
        credential: PathBuf,
        /// Its opening, your secret.
        #[arg(long)]
        opening: PathBuf,
        /// The program's id.
        program: String,
    },
    /// Show a program: goal, challenge, reward, fund and claims
    Show {
        #[arg(long)]
        node: String,
        program: String,
    },
    /// List the programs
    List {
        #[arg(long)]
        node: String,
    },
}

#[derive(Args)]
pub struct PublishArgs {
    #[command(flatten)]
    signer: Signer,
    /// The organization running the program.
    #[arg(long)]
    org: String,
    #[arg(long)]
    unit: String,
    /// Paid per accepted claim.
    #[arg(long)]
    reward: u64,
    /// The goal: HbA1c below this percentage, e.g. 7.0.
    #[arg(long, value_name = "PERCENT")]
    below: String,
    /// An issuer whose HbA1c credentials count (repeat): a did:key, or a
    /// registered organization's did:web.
    #[arg(long = "issuer", required = true)]
    issuers: Vec<String>,
    /// When the first period starts (Unix seconds; default: the ledger's
    /// clock, brought up to the node's time).
    #[arg(long)]
    start: Option<i64>,
    /// Length of a period: a patient is paid at most once per period.
    #[arg(long, default_value_t = 90)]
    period_days: u64,
}

pub(crate) fn print(value: &Value) -> anyhow::Result<ExitCode> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(ExitCode::SUCCESS)
}

fn submit(signer: &Signer, tx_type: &str, body: Value) -> anyhow::Result<ExitCode> {
    let mut client = Client::new(&signer.node, &signer.key)?;
    print(&client.submit(tx_type, body)?)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub fn run_unit(command: UnitCommand) -> anyhow::Result<ExitCode> {
    match command {
        UnitCommand::Register {
            signer,
            unit,
            issuer,
        } => submit(
            &signer,
            "unit.register",
            json!({"unit": unit, "issuer": issuer}),
        ),
        UnitCommand::Mint {
            signer,
            unit,
            to,
            amount,
        } => submit(
            &signer,
            "unit.mint",
            json!({"unit": unit, "to": to, "amount": amount}),
        ),
        UnitCommand::Transfer {
            signer,
            unit,
            from,
            to,
            amount,
        } => {
            let mut body = json!({"unit": unit, "to": to, "amount": amount});
            if let Some(from) = from {
                body["from"] = json!(from);
            }
            submit(&signer, "unit.transfer", body)
        }
        UnitCommand::Balance { node, did } => print(&get_json(
            &node,
            &format!("/v1/accounts/{}", url_component(&did)),
        )?),
        UnitCommand::List { node } => print(&get_json(&node, "/v1/units")?),
    }
}

/// The body of `escrow.open` from the command's arguments.
fn open_body(args: &OpenArgs) -> anyhow::Result<Value> {
    let condition = match (&args.milestone, args.deadline, &args.program, &args.sharing) {
        (Some(id), None, None, None) => json!({"kind": "milestone", "id": id}),
        (None, Some(at), None, None) => json!({"kind": "deadline", "at": at}),
        (None, None, Some(program), None) => json!({"kind": "proof", "program": program}),
        (None, None, None, Some(program)) => json!({"kind": "sharing", "program": program}),
        _ => anyhow::bail!("give one of --milestone, --deadline, --program or --sharing"),
    };
    let mut body = json!({"unit": args.unit, "amount": args.amount, "condition": condition,
                          "refund_after": args.refund_after});
    if let Some(funder) = &args.funder {
        body["funder"] = json!(funder);
    }
    if let Some(beneficiary) = &args.beneficiary {
        body["beneficiary"] = json!(beneficiary);
    }
    Ok(body)
}

pub fn run_escrow(command: EscrowCommand) -> anyhow::Result<ExitCode> {
    match command {
        EscrowCommand::Open(args) => submit(&args.signer, "escrow.open", open_body(&args)?),
        EscrowCommand::Release { signer, escrow } => {
            tick(&signer.node)?;
            submit(&signer, "escrow.release", json!({"escrow": escrow}))
        }
        EscrowCommand::Refund { signer, escrow } => {
            tick(&signer.node)?;
            submit(&signer, "escrow.refund", json!({"escrow": escrow}))
        }
        EscrowCommand::Show { node, escrow } => print(&get_json(
            &node,
            &format!("/v1/escrows/{}", url_component(&escrow)),
        )?),
    }
}

/// Asks the node to bring the ledger's clock up to its time.
pub fn tick(node: &str) -> anyhow::Result<Value> {
    let url = format!("{}/v1/clock", node.trim_end_matches('/'));
    let response = reqwest::blocking::Client::new()
        .post(&url)
        .send()
        .with_context(|| format!("cannot reach {url}"))?;
    json_or_refusal(response).with_context(|| format!("POST {url}"))
}

/// The body of `program.publish`.
fn publish_body(args: &PublishArgs) -> anyhow::Result<Value> {
    let below = zk::hba1c::parse_percent_x10(&args.below).map_err(coded)?;
    Ok(json!({
        "org": args.org, "unit": args.unit, "reward": args.reward,
        "attribute": zk::hba1c::HBA1C_ATTRIBUTE, "loinc": zk::hba1c::HBA1C_LOINC,
        "range": {"max_exclusive": below}, "issuers": args.issuers,
        "start": args.start.unwrap_or_else(now),
        "period_secs": args.period_days.saturating_mul(86_400),
    }))
}

/// Proves `program`'s goal (as the node serves it) with the credential,
/// and returns the `program.claim` body.
pub fn claim_body(
    program: &Value,
    credential: &zk::CommittedAttributeCredential,
    opening: &zk::Opening,
    key: &hygeia_identity::Keypair,
) -> anyhow::Result<Value> {
    let id = program["id"]
        .as_str()
        .context("the node's program has no id")?;
    let range: hygeia_state::programs::GoalRange =
        serde_json::from_value(program["requirement"]["range"].clone())
            .context("the node's program has no range")?;
    let range = range.to_range().map_err(anyhow::Error::msg)?;
    let challenge: Challenge = serde_json::from_value(program["challenge"].clone())
        .context("the node's program has no challenge")?;
    let presentation =
        zk::prove(credential, opening, range, &challenge, Some(key)).map_err(coded)?;
    Ok(json!({"program": id, "presentation": presentation.to_json()}))
}

pub fn run_program(command: ProgramCommand) -> anyhow::Result<ExitCode> {
    match command {
        ProgramCommand::Publish(args) => {
            let ticked = tick(&args.signer.node)?;
            let mut body = publish_body(&args)?;
            // By default the first period starts at the ledger's clock, not
            // at this machine's time: a start a second past the last tick
            // would refuse every claim until the next one.
            if let (None, Some(clock)) = (args.start, ticked["clock"].as_i64()) {
                body["start"] = json!(clock);
            }
            submit(&args.signer, "program.publish", body)
        }
        ProgramCommand::Claim {
            signer,
            credential,
            opening,
            program,
        } => {
            tick(&signer.node)?;
            let served = get_json(
                &signer.node,
                &format!("/v1/programs/{}", url_component(&program)),
            )?;
            let credential = read_credential(&credential)?;
            let opening = read_opening(&opening)?;
            let key = hygeia_identity::Keypair::read_key_file(&signer.key)
                .with_context(|| format!("cannot use key file {}", signer.key.display()))?;
            let body = claim_body(&served, &credential, &opening, &key)?;
            submit(&signer, "program.claim", body)
        }
        ProgramCommand::Show { node, program } => print(&get_json(
            &node,
            &format!("/v1/programs/{}", url_component(&program)),
        )?),
        ProgramCommand::List { node } => print(&get_json(&node, "/v1/programs")?),
    }
}

/// `hygeia clock`: show the ledger's clock, or ask the node to tick.
#[derive(Args)]
pub struct ClockArgs {
    #[arg(long)]
    node: String,
    /// Ask the node to attest its current time (at most once a minute).
    #[arg(long)]
    tick: bool,
}

pub fn run_clock(args: ClockArgs) -> anyhow::Result<ExitCode> {
    if args.tick {
        print(&tick(&args.node)?)
    } else {
        print(&get_json(&args.node, "/v1/clock")?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_condition_per_escrow() {
        let args = |milestone: Option<&str>, deadline: Option<i64>| OpenArgs {
            signer: Signer {
                key: "k".into(),
                node: "n".into(),
            },
            unit: "eur-cents".into(),
            amount: 5,
            funder: None,
            beneficiary: Some("did:key:z".into()),
            milestone: milestone.map(String::from),
            deadline,
            program: None,
            sharing: None,
            refund_after: 10,
        };
        let body = open_body(&args(Some("trial-1/visit-2"), None)).unwrap();
        assert_eq!(
            body["condition"],
            json!({"kind": "milestone", "id": "trial-1/visit-2"})
        );
        assert!(open_body(&args(None, None)).is_err());
        assert!(open_body(&args(Some("m"), Some(3))).is_err());
    }
}
