//! `hygeia research`: counting eligible patients without learning who they
//! are (docs/zk.md, "Research eligibility over the node").

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use hygeia_credentials::zk::{respond, Criteria, PatientSecret};
use serde_json::{json, Value};

use super::private_file::{read_limited, write_new};
use super::zk::{coded, read_credential, read_opening, Attribute, Predicate};
use crate::client::{json_or_refusal, Client};

const DEFAULT_NODE: &str = "http://127.0.0.1:7000";

#[derive(Subcommand)]
pub enum ResearchCommand {
    /// Publish a study's eligibility criteria (as a researcher: an active
    /// member with role researcher). Patients answer with zero-knowledge
    /// proofs; you get a count and per-study pseudonyms, never who or what.
    #[command(
        after_help = "Example: hygeia research publish --key researcher.key \\\n    --study diabetes-2025 --attribute hba1c --between 6.5,9.0 --issuer did:key:z6Mk...lab"
    )]
    Publish(Box<PublishArgs>),
    /// Answer a study as a patient, with an eligibility-form credential
    /// (one issued with --eligibility). Needs your active research consent
    /// (a grant with purpose HRESCH to the researcher or its organization).
    #[command(
        after_help = "Example: hygeia research answer --key patient.key --study diabetes-2025 \\\n    --credential cred.json --opening opening.json --secret research.secret"
    )]
    Answer(Box<AnswerArgs>),
    /// Read a study's tally (the study's researcher only): how many
    /// qualify, and their enrolment pseudonyms.
    Tally {
        /// The researcher's key file (the one that published the study).
        #[arg(long, short)]
        key: PathBuf,
        #[arg(long, default_value = DEFAULT_NODE)]
        node: String,
        /// The study's id.
        #[arg(long)]
        study: String,
    },
}

#[derive(Args)]
pub struct PublishArgs {
    /// The researcher's key file.
    #[arg(long, short)]
    key: PathBuf,
    #[arg(long, default_value = DEFAULT_NODE)]
    node: String,
    /// The study's id: 1 to 128 visible ASCII characters.
    #[arg(long)]
    study: String,
    /// What the criteria are about.
    #[arg(long, value_enum, default_value = "hba1c")]
    attribute: Attribute,
    #[command(flatten)]
    predicate: Predicate,
    /// For --at-least-age: today's date, YYYY-MM-DD (default: today, UTC).
    #[arg(long)]
    today: Option<String>,
    /// An issuer whose credentials count (repeat): a did:key, or the did:web
    /// of an organization registered on the network.
    #[arg(long = "issuer", required = true)]
    issuers: Vec<String>,
}

#[derive(Args)]
pub struct AnswerArgs {
    /// Your key file: the node checks your research consent with it (the
    /// researcher never sees who you are).
    #[arg(long, short)]
    key: PathBuf,
    #[arg(long, default_value = DEFAULT_NODE)]
    node: String,
    /// The study's id.
    #[arg(long)]
    study: String,
    /// An eligibility-form credential (it names no holder).
    #[arg(long)]
    credential: PathBuf,
    /// Its opening (your secret).
    #[arg(long)]
    opening: PathBuf,
    /// Your research secret, from which your per-study pseudonyms derive
    /// (created, mode 0600, if missing). Keep it: the same secret gives
    /// the same pseudonym when you later come forward to enrol.
    #[arg(long)]
    secret: PathBuf,
}

pub fn run(command: ResearchCommand) -> anyhow::Result<ExitCode> {
    match command {
        ResearchCommand::Publish(args) => publish(*args),
        ResearchCommand::Answer(args) => answer(*args),
        ResearchCommand::Tally { key, node, study } => {
            let client = Client::new(&node, &key)?;
            print(&client.get_json(&format!("{}/tally", study_path(&study)))?)
        }
    }
}

fn print(value: &Value) -> anyhow::Result<ExitCode> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(ExitCode::SUCCESS)
}

/// `/v1/research/studies/<id>`, the id percent-encoded as one segment.
fn study_path(study: &str) -> String {
    let mut out = String::from("/v1/research/studies/");
    for byte in study.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn publish(args: PublishArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.predicate.attribute() == args.attribute,
        "--at-least-age is about --attribute birth-date, --below and --between about hba1c"
    );
    let requirement = args.predicate.requirement(args.today.as_deref())?;
    let client = Client::new(&args.node, &args.key)?;
    let body = json!({
        "study_id": args.study,
        "attribute": requirement.attribute,
        "loinc": requirement.loinc,
        "range": requirement.range,
        "accepted_issuers": args.issuers,
    });
    let response = client.post_json("/v1/research/studies", serde_json::to_vec(&body)?)?;
    print(&json_or_refusal(response)?)
}

/// The patient's research secret: read, or created on first use.
fn research_secret(path: &Path) -> anyhow::Result<PatientSecret> {
    if !path.exists() {
        let secret = PatientSecret::generate();
        let text = zeroize::Zeroizing::new(format!("{}\n", hex::encode(&secret.to_bytes()[..])));
        write_new(path, &text)?;
        eprintln!("created your research secret in {}", path.display());
        return Ok(secret);
    }
    let text = zeroize::Zeroizing::new(read_limited(path, 128)?);
    let bytes = zeroize::Zeroizing::new(
        hex::decode(String::from_utf8_lossy(&text).trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
            .with_context(|| format!("{} must hold 64 hex digits", path.display()))?,
    );
    Ok(PatientSecret::from_bytes(*bytes))
}

fn answer(args: AnswerArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.node, &args.key)?;
    let credential = read_credential(&args.credential)?;
    let opening = read_opening(&args.opening)?;
    let secret = research_secret(&args.secret)?;
    let path = study_path(&args.study);
    let study = client.get_json(&path)?;
    let criteria = Criteria::parse(&serde_json::to_vec(&study["criteria"])?)
        .map_err(coded)
        .context("the node's criteria")?;
    anyhow::ensure!(
        criteria.study_id == args.study,
        "the node answered with the criteria of study {:?}",
        criteria.study_id
    );
    let response = respond(&criteria, &credential, &opening, &secret).map_err(coded)?;
    let answer = client.post_json(
        &format!("{path}/responses"),
        response.to_json().into_bytes(),
    )?;
    print(&json_or_refusal(answer)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn study_ids_are_one_path_segment() {
        assert_eq!(study_path("s-1"), "/v1/research/studies/s-1");
        assert_eq!(study_path("a/b?c#d"), "/v1/research/studies/a%2Fb%3Fc%23d");
    }

    #[test]
    fn the_secret_is_created_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("research.secret");
        let first = research_secret(&path).unwrap();
        let again = research_secret(&path).unwrap();
        assert_eq!(*first.to_bytes(), *again.to_bytes());
        std::fs::write(dir.path().join("bad"), "xyz").unwrap();
        assert!(research_secret(&dir.path().join("bad")).is_err());
    }
}
