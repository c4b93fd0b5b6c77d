//! `hygeia trial`: clinical trials (docs/trials.md). Each change is a
//! transaction signed with the user's key (sponsor, ethics committee, site
//! or subject) and submitted to the node. Documents (the protocol, the
//! signed consent, a deviation report) never leave the machine: the
//! commands put their SHA-256 on the ledger.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Value};

use super::did::{get_json, url_component};
use super::economy::tick;
use crate::client::{sha256_file, Client};

/// The key and node every submitting command takes.
#[derive(Args)]
pub struct Signer {
    /// Your key file.
    #[arg(long, short)]
    key: PathBuf,
    /// The node to submit to.
    #[arg(long)]
    node: String,
}

/// A study's progress states the sponsor sets (FHIR research-study-status).
#[derive(Clone, Copy, ValueEnum)]
pub enum State {
    Recruiting,
    TemporarilyClosedToAccrual,
    ClosedToAccrual,
    Completed,
    Terminated,
    Withdrawn,
}

impl State {
    fn code(self) -> &'static str {
        match self {
            State::Recruiting => "recruiting",
            State::TemporarilyClosedToAccrual => "temporarily-closed-to-accrual",
            State::ClosedToAccrual => "closed-to-accrual",
            State::Completed => "completed",
            State::Terminated => "terminated",
            State::Withdrawn => "withdrawn",
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Severity {
    Minor,
    Major,
}

#[derive(Subcommand)]
pub enum TrialCommand {
    /// Register a study: its protocol document's hash, version and ethics
    /// committee (the sponsor)
    #[command(
        after_help = "Example: hygeia trial register --key sponsor.key --node URL --protocol protocol-v1.pdf --version 1.0 --committee did:key:z6Mk...irb"
    )]
    Register {
        #[command(flatten)]
        signer: Signer,
        /// The protocol document (only its SHA-256 goes on the ledger).
        #[arg(long)]
        protocol: PathBuf,
        #[arg(long)]
        version: String,
        /// The ethics committee that approves the protocol.
        #[arg(long)]
        committee: String,
        /// The sponsoring organization's did:web, when your key is its admin key.
        #[arg(long)]
        sponsor: Option<String>,
    },
    /// Propose an amendment: a new protocol version (the sponsor)
    Amend {
        #[command(flatten)]
        signer: Signer,
        #[arg(long)]
        study: String,
        #[arg(long)]
        protocol: PathBuf,
        #[arg(long)]
        version: String,
        /// Subjects' consents to earlier versions still count (the
        /// amendment does not change what they agreed to).
        #[arg(long)]
        no_reconsent: bool,
    },
    /// Approve a protocol version (the study's ethics committee)
    Approve {
        #[command(flatten)]
        signer: Signer,
        #[arg(long)]
        study: String,
        #[arg(long)]
        version: String,
        /// The protocol document the committee read.
        #[arg(long)]
        protocol: PathBuf,
    },
    /// Move the study to another progress state (the sponsor)
    Progress {
        #[command(flatten)]
        signer: Signer,
        #[arg(long)]
        study: String,
        #[arg(long, value_enum)]
        state: State,
    },
    /// Activate a site with its accreditation presentation (the sponsor)
    #[command(
        after_help = "The site presents its accreditation to the network, with the study id as nonce:\n  hygeia credential present --key site.key --aud <network_id> --nonce <study id> accreditation.sdjwt > site.sdjwt"
    )]
    ActivateSite {
        #[command(flatten)]
        signer: Signer,
        #[arg(long)]
        study: String,
        /// The site's DID.
        #[arg(long)]
        site: String,
        /// The site's presentation (a file, or - for standard input).
        #[arg(long)]
        presentation: PathBuf,
    },
    /// Consent to the study's current protocol version at a site (the
    /// subject, with a key made for this study alone)
    Consent {
        #[command(flatten)]
        signer: Signer,
        #[arg(long)]
        study: String,
        #[arg(long)]
        site: String,
        #[arg(long)]
        version: String,
        /// The protocol document consented to.
        #[arg(long)]
        protocol: PathBuf,
        /// The signed consent document (only its SHA-256 goes on the ledger).
        #[arg(long)]
        document: PathBuf,
        /// A grant of yours (`hygeia consent grant … --purpose HRESCH`) to
        /// the sponsor or the site that backs this consent; repeat for
        /// both (at most 4). Withdrawing, or an amendment that asks you to
        /// consent again, revokes it. Without one, the sponsor and the
        /// site read none of your data.
        #[arg(long = "grant", value_name = "GRANT_ID")]
        grants: Vec<String>,
    },
    /// Withdraw from the study, at once (the subject)
    Withdraw {
        #[command(flatten)]
        signer: Signer,
        #[arg(long)]
        study: String,
    },
    /// Record a subject's milestone: screened, screen-failed, enrolled,
    /// visit-<n>, completed or withdrawn (the subject's site)
    Milestone {
        #[command(flatten)]
        signer: Signer,
        #[arg(long)]
        study: String,
        /// The subject's did:key.
        #[arg(long)]
        subject: String,
        milestone: String,
    },
    /// Record a protocol deviation (the subject's site)
    Deviation {
        #[command(flatten)]
        signer: Signer,
        #[arg(long)]
        study: String,
        #[arg(long)]
        subject: String,
        #[arg(long, value_enum)]
        severity: Severity,
        /// The deviation report (only its SHA-256 goes on the ledger).
        #[arg(long)]
        report: PathBuf,
    },
    /// Record that a protocol endpoint was assessed for a subject on study
    /// (the subject's site): which endpoint, and the assessment report's
    /// SHA-256; the finding stays with the site. A sponsor's escrow with
    /// milestone `trial/<study>/<subject short>/endpoint-<endpoint>` pays
    /// the site for it.
    Endpoint {
        #[command(flatten)]
        signer: Signer,
        #[arg(long)]
        study: String,
        #[arg(long)]
        subject: String,
        /// The endpoint's code in the protocol, e.g. `primary` or
        /// `progression-free-6m` (lower case, digits, `.`, `_`, `-`).
        #[arg(long)]
        endpoint: String,
        /// The assessment report (only its SHA-256 goes on the ledger).
        #[arg(long)]
        report: PathBuf,
    },
    /// Show a study, its sites and subjects
    Show {
        #[arg(long)]
        node: String,
        study: String,
    },
    /// List the studies
    List {
        #[arg(long)]
        node: String,
    },
}

/// Every study, following the node's pages (`after=` the last id of the
/// page before), with the ledger's clock as the node served it.
fn all_studies(node: &str) -> anyhow::Result<Value> {
    let mut studies = Vec::new();
    let mut path = "/v1/studies?limit=100".to_owned();
    loop {
        let page = get_json(node, &path)?;
        if let Some(list) = page["studies"].as_array() {
            studies.extend(list.iter().cloned());
        }
        match page["next"].as_str() {
            Some(after) => path = format!("/v1/studies?limit=100&after={after}"),
            None => return Ok(serde_json::json!({"studies": studies, "clock": page["clock"]})),
        }
    }
}

fn print(value: &Value) -> anyhow::Result<ExitCode> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(ExitCode::SUCCESS)
}

fn submit(signer: &Signer, tx_type: &str, body: Value) -> anyhow::Result<ExitCode> {
    let mut client = Client::new(&signer.node, &signer.key)?;
    print(&client.submit(tx_type, body)?)
}

fn digest(path: &Path) -> anyhow::Result<String> {
    Ok(hex::encode(sha256_file(path)?))
}

fn read_text(path: &Path) -> anyhow::Result<String> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read standard input")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?
    };
    Ok(text.trim().to_owned())
}

pub fn run(command: TrialCommand) -> anyhow::Result<ExitCode> {
    match command {
        TrialCommand::Register {
            signer,
            protocol,
            version,
            committee,
            sponsor,
        } => {
            let mut body =
                json!({"protocol": digest(&protocol)?, "version": version, "committee": committee});
            if let Some(sponsor) = sponsor {
                body["sponsor"] = json!(sponsor);
            }
            submit(&signer, "study.register", body)
        }
        TrialCommand::Amend {
            signer,
            study,
            protocol,
            version,
            no_reconsent,
        } => submit(
            &signer,
            "study.amend",
            json!({"study": study, "protocol": digest(&protocol)?, "version": version, "reconsent": !no_reconsent}),
        ),
        TrialCommand::Approve {
            signer,
            study,
            version,
            protocol,
        } => submit(
            &signer,
            "ethics.approve",
            json!({"study": study, "version": version, "protocol": digest(&protocol)?}),
        ),
        TrialCommand::Progress {
            signer,
            study,
            state,
        } => submit(
            &signer,
            "study.progress",
            json!({"study": study, "state": state.code()}),
        ),
        TrialCommand::ActivateSite {
            signer,
            study,
            site,
            presentation,
        } => {
            tick(&signer.node)?;
            let presentation = read_text(&presentation)?;
            submit(
                &signer,
                "site.activate",
                json!({"study": study, "site": site, "presentation": presentation}),
            )
        }
        TrialCommand::Consent {
            signer,
            study,
            site,
            version,
            protocol,
            document,
            grants,
        } => {
            tick(&signer.node)?;
            let mut body = json!({"study": study, "site": site, "version": version,
                                  "protocol": digest(&protocol)?, "document": digest(&document)?});
            if !grants.is_empty() {
                body["grants"] = json!(grants);
            }
            submit(&signer, "econsent.give", body)
        }
        TrialCommand::Withdraw { signer, study } => {
            submit(&signer, "econsent.withdraw", json!({"study": study}))
        }
        TrialCommand::Milestone {
            signer,
            study,
            subject,
            milestone,
        } => {
            tick(&signer.node)?;
            submit(
                &signer,
                "subject.milestone",
                json!({"study": study, "subject": subject, "milestone": milestone}),
            )
        }
        TrialCommand::Endpoint {
            signer,
            study,
            subject,
            endpoint,
            report,
        } => submit(
            &signer,
            "subject.endpoint",
            json!({"study": study, "subject": subject, "endpoint": endpoint, "report": digest(&report)?}),
        ),
        TrialCommand::Deviation {
            signer,
            study,
            subject,
            severity,
            report,
        } => {
            let severity = match severity {
                Severity::Minor => "minor",
                Severity::Major => "major",
            };
            submit(
                &signer,
                "subject.deviation",
                json!({"study": study, "subject": subject, "severity": severity, "report": digest(&report)?}),
            )
        }
        TrialCommand::Show { node, study } => print(&get_json(
            &node,
            &format!("/v1/studies/{}", url_component(&study)),
        )?),
        TrialCommand::List { node } => print(&all_studies(&node)?),
    }
}
