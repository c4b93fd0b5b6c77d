//! `hygeia zk`: zero-knowledge range predicates (docs/zk.md). An issuer
//! (a lab, a registry) signs a commitment to a value; the holder proves
//! "HbA1c < 7.0 %" or "at least 18" to a verifier without revealing it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use hygeia_credentials::zk::age::{at_least_age_requirement, birth_date_claims};
use hygeia_credentials::zk::commitment::MAX_CREDENTIAL_BYTES;
use hygeia_credentials::zk::hba1c::{hba1c_below, hba1c_between, hba1c_claims, parse_percent_x10};
use hygeia_credentials::zk::range::MAX_PRESENTATION_BYTES;
use hygeia_credentials::zk::{
    prove, verify, Challenge, CommittedAttributeCredential, Opening, RangePresentation,
    Requirement, TrustedIssuers, ZkError,
};
use hygeia_identity::{Did, Keypair};
use serde_json::json;
use time::macros::format_description;
use time::{Date, OffsetDateTime};

use super::private_file::{read_limited, write_new};

/// Largest opening file.
const MAX_OPENING_BYTES: u64 = 256;

#[derive(Subcommand)]
pub enum ZkCommand {
    /// Issue a credential: sign a commitment to one value (as a lab or
    /// registry). The holder gets the credential and, privately, the
    /// opening; the value is never written into the credential.
    #[command(after_help = "Examples:\n  \
hygeia zk issue --key lab.key --attribute hba1c --value 6.4 --holder did:key:z6Mk... \\\n      --out cred.json --opening opening.json\n  \
hygeia zk issue --key lab.key --attribute hba1c --value 7.2 --eligibility \\\n      --out cred.json --opening opening.json   (for research answers: names no holder)\n  \
hygeia zk issue --key registry.key --attribute birth-date --value 1990-04-02 --holder did:key:z6Mk... \\\n      --out dob.json --opening dob-opening.json")]
    Issue(Box<IssueArgs>),
    /// Prove a range statement about a credential's value, for one
    /// verifier's challenge, without revealing the value.
    #[command(
        after_help = "Example: hygeia zk prove --credential cred.json --opening opening.json \\\n    --below 7.0 --verifier did:web:care.example --nonce <64 hex> --key patient.key --out p.json"
    )]
    Prove(Box<ProveArgs>),
    /// Verify a presentation against the statement and challenge you asked
    /// for, trusting only the issuers you name.
    #[command(
        after_help = "Example: hygeia zk verify --presentation p.json --issuer did:key:z6Mk...lab \\\n    --below 7.0 --verifier did:web:care.example --nonce <64 hex>"
    )]
    Verify(Box<VerifyArgs>),
    /// Print a fresh random nonce (64 hex digits) to challenge a holder with.
    Nonce,
}

/// The attribute a credential commits to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Attribute {
    /// HbA1c, a percentage with one decimal (LOINC 4548-4), e.g. 6.4
    Hba1c,
    /// A birth date, YYYY-MM-DD (LOINC 21112-8)
    BirthDate,
}

/// The statement to prove or check: exactly one of these.
#[derive(Args, Debug, Clone)]
#[group(required = true, multiple = false)]
pub struct Predicate {
    /// HbA1c below this percentage, e.g. 7.0
    #[arg(long, value_name = "PERCENT")]
    pub below: Option<String>,
    /// HbA1c in [LOW, HIGH), e.g. 6.5,9.0
    #[arg(long, value_name = "LOW,HIGH")]
    pub between: Option<String>,
    /// At least this many years old (a birth-date credential)
    #[arg(long, value_name = "YEARS")]
    pub at_least_age: Option<u16>,
}

impl Predicate {
    /// The requirement this predicate states; `today` anchors an age.
    pub fn requirement(&self, today: Option<&str>) -> anyhow::Result<Requirement> {
        if let Some(max) = &self.below {
            return hba1c_below(parse_percent_x10(max).map_err(coded)?).map_err(coded);
        }
        if let Some(range) = &self.between {
            let (low, high) = range
                .split_once(',')
                .context("--between takes LOW,HIGH, e.g. 6.5,9.0")?;
            return hba1c_between(
                parse_percent_x10(low.trim()).map_err(coded)?,
                parse_percent_x10(high.trim()).map_err(coded)?,
            )
            .map_err(coded);
        }
        if let Some(years) = self.at_least_age {
            return at_least_age_requirement(years, today_or(today)?).map_err(coded);
        }
        anyhow::bail!("give --below, --between or --at-least-age")
    }

    /// The attribute the predicate is about.
    pub fn attribute(&self) -> Attribute {
        if self.at_least_age.is_some() {
            Attribute::BirthDate
        } else {
            Attribute::Hba1c
        }
    }
}

#[derive(Args)]
pub struct IssueArgs {
    /// The issuer's key file.
    #[arg(long, short)]
    key: PathBuf,
    /// The issuer's DID (default: the key's did:key). An organization's
    /// did:web, when the key is one of its keys.
    #[arg(long)]
    issuer: Option<String>,
    /// What the credential is about.
    #[arg(long, value_enum)]
    attribute: Attribute,
    /// The value: a percentage like 6.4 (hba1c) or a date like 1990-04-02
    /// (birth-date).
    #[arg(long)]
    value: String,
    /// The holder's did:key: only that key can present the credential.
    #[arg(long, conflicts_with = "eligibility")]
    holder: Option<String>,
    /// Issue the eligibility form, which names no holder, for anonymous
    /// research answers (whoever holds the opening can present it).
    #[arg(long)]
    eligibility: bool,
    /// Days the credential stays valid.
    #[arg(long, default_value_t = 90)]
    valid_days: u64,
    /// Where to write the credential (public).
    #[arg(long)]
    out: PathBuf,
    /// Where to write the opening (secret; created with mode 0600, never
    /// overwritten).
    #[arg(long)]
    opening: PathBuf,
}

#[derive(Args)]
pub struct ProveArgs {
    /// The credential, as issued (`hygeia zk issue --out`).
    #[arg(long)]
    credential: PathBuf,
    /// Its opening, the holder's secret (`hygeia zk issue --opening`).
    #[arg(long)]
    opening: PathBuf,
    #[command(flatten)]
    predicate: Predicate,
    /// For --at-least-age: today's date, YYYY-MM-DD (default: today, UTC).
    /// Prover and verifier must agree on it.
    #[arg(long)]
    today: Option<String>,
    /// The verifier's identifier, from its challenge.
    #[arg(long)]
    verifier: String,
    /// The verifier's nonce, 64 hex digits.
    #[arg(long)]
    nonce: String,
    /// The holder's key file, when the credential names a holder.
    #[arg(long, short)]
    key: Option<PathBuf>,
    /// Where to write the presentation.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
pub struct VerifyArgs {
    /// The presentation the holder sent (`hygeia zk prove --out`).
    #[arg(long)]
    presentation: PathBuf,
    /// A trusted issuer: its did:key, or DID=did:key:... to trust that key
    /// for another DID such as a did:web (repeat).
    #[arg(long = "issuer", required = true)]
    issuers: Vec<String>,
    #[command(flatten)]
    predicate: Predicate,
    /// For --at-least-age: today's date, YYYY-MM-DD (default: today, UTC).
    #[arg(long)]
    today: Option<String>,
    /// Your verifier identifier, as in the challenge you sent.
    #[arg(long)]
    verifier: String,
    /// The nonce you sent, 64 hex digits.
    #[arg(long)]
    nonce: String,
}

pub fn run(command: ZkCommand) -> anyhow::Result<ExitCode> {
    match command {
        ZkCommand::Issue(args) => issue(*args),
        ZkCommand::Prove(args) => prove_cmd(*args),
        ZkCommand::Verify(args) => verify_cmd(*args),
        ZkCommand::Nonce => {
            let nonce: [u8; 32] = rand::random();
            println!("{}", hex::encode(nonce));
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A library refusal with its stable code in front.
pub fn coded(e: ZkError) -> anyhow::Error {
    anyhow::anyhow!("{}: {e}", e.code())
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn parse_date(text: &str) -> anyhow::Result<Date> {
    Date::parse(text, format_description!("[year]-[month]-[day]"))
        .with_context(|| format!("{text:?} is not a date like 1990-04-02"))
}

fn today_or(today: Option<&str>) -> anyhow::Result<Date> {
    match today {
        Some(text) => parse_date(text),
        None => Ok(OffsetDateTime::now_utc().date()),
    }
}

/// A 32-byte nonce from 64 hex digits.
pub fn parse_nonce(text: &str) -> anyhow::Result<[u8; 32]> {
    let bytes = hex::decode(text.trim()).context("--nonce must be 64 hex digits")?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| anyhow::anyhow!("--nonce must be 64 hex digits (32 bytes)"))
}

pub fn read_credential(path: &Path) -> anyhow::Result<CommittedAttributeCredential> {
    let bytes = read_limited(path, MAX_CREDENTIAL_BYTES as u64)?;
    CommittedAttributeCredential::parse(&bytes)
        .map_err(coded)
        .with_context(|| path.display().to_string())
}

pub fn read_opening(path: &Path) -> anyhow::Result<Opening> {
    let bytes = zeroize::Zeroizing::new(read_limited(path, MAX_OPENING_BYTES)?);
    Opening::parse(&bytes)
        .map_err(coded)
        .with_context(|| path.display().to_string())
}

fn issue(args: IssueArgs) -> anyhow::Result<ExitCode> {
    let key = Keypair::read_key_file(&args.key)
        .with_context(|| format!("cannot use key file {}", args.key.display()))?;
    let issuer = args.issuer.unwrap_or_else(|| key.did().to_string());
    anyhow::ensure!(
        args.holder.is_some() || args.eligibility,
        "say who holds the credential: --holder <did:key>, or --eligibility for one that names no holder"
    );
    let holder = args
        .holder
        .as_deref()
        .map(|h| {
            Did::parse_cached(h).with_context(|| format!("--holder must be a did:key, not {h:?}"))
        })
        .transpose()?;
    let issued_at = unix_now();
    let expires_at = issued_at.saturating_add(args.valid_days.saturating_mul(86_400));
    let claims = match args.attribute {
        Attribute::Hba1c => hba1c_claims(
            &issuer,
            parse_percent_x10(&args.value).map_err(coded)?,
            issued_at,
            expires_at,
            holder,
        ),
        Attribute::BirthDate => birth_date_claims(
            &issuer,
            parse_date(&args.value)?,
            issued_at,
            expires_at,
            holder,
        )
        .map_err(coded)?,
    };
    let (credential, opening) =
        CommittedAttributeCredential::issue(&key, &claims).map_err(coded)?;
    write_new(&args.opening, &opening.to_json())?;
    std::fs::write(&args.out, credential.to_json())
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "issuer": credential.issuer(),
            "attribute": credential.attribute(),
            "loinc": credential.loinc(),
            "holder": credential.holder().map(|d| d.to_string()),
            "expires_at": credential.expires_at(),
            "credential": args.out,
            "opening": args.opening,
        }))?
    );
    eprintln!(
        "give {} and, privately, {} to the holder; the opening is the secret that proves statements about the value",
        args.out.display(),
        args.opening.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Refuses a statement about another attribute than the credential's, with
/// the library's code, before any proving work.
fn check_attribute(
    credential: &CommittedAttributeCredential,
    requirement: &Requirement,
) -> anyhow::Result<()> {
    if credential.attribute() != requirement.attribute {
        return Err(coded(ZkError::WrongAttribute)).with_context(|| {
            format!(
                "the credential is about {}, the statement about {}",
                credential.attribute(),
                requirement.attribute
            )
        });
    }
    Ok(())
}

fn prove_cmd(args: ProveArgs) -> anyhow::Result<ExitCode> {
    let credential = read_credential(&args.credential)?;
    let opening = read_opening(&args.opening)?;
    let requirement = args.predicate.requirement(args.today.as_deref())?;
    check_attribute(&credential, &requirement)?;
    let challenge = Challenge {
        verifier: args.verifier,
        nonce: parse_nonce(&args.nonce)?,
    };
    let holder_key = args
        .key
        .as_deref()
        .map(|path| {
            Keypair::read_key_file(path)
                .with_context(|| format!("cannot use key file {}", path.display()))
        })
        .transpose()?;
    let presentation = prove(
        &credential,
        &opening,
        requirement.range,
        &challenge,
        holder_key.as_ref(),
    )
    .map_err(coded)?;
    std::fs::write(&args.out, presentation.to_json())
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "presentation": args.out,
            "statement": format!("{} {}", requirement.attribute, requirement.range),
            "verifier": challenge.verifier,
        }))?
    );
    Ok(ExitCode::SUCCESS)
}

/// `DID` (a did:key, trusted for itself) or `DID=did:key:...`.
fn trusted_issuers(specs: &[String]) -> anyhow::Result<TrustedIssuers> {
    let mut issuers = TrustedIssuers::new();
    for spec in specs {
        let (issuer, key) = spec.split_once('=').unwrap_or((spec, spec));
        let key = Did::parse_cached(key).with_context(|| {
            format!("--issuer {spec:?}: give a did:key, or DID=did:key:... for another kind of DID")
        })?;
        issuers.trust(issuer, *key.public_key());
    }
    Ok(issuers)
}

fn verify_cmd(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let bytes = read_limited(&args.presentation, MAX_PRESENTATION_BYTES as u64)?;
    let presentation = RangePresentation::parse(&bytes)
        .map_err(coded)
        .with_context(|| args.presentation.display().to_string())?;
    let issuers = trusted_issuers(&args.issuers)?;
    let requirement = args.predicate.requirement(args.today.as_deref())?;
    let challenge = Challenge {
        verifier: args.verifier,
        nonce: parse_nonce(&args.nonce)?,
    };
    let verified = verify(
        &presentation,
        &issuers,
        &requirement,
        &challenge,
        unix_now(),
    )
    .map_err(coded)?;
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "verified": true,
            "issuer": verified.issuer(),
            "attribute": verified.attribute(),
            "loinc": verified.loinc(),
            "statement": format!("{} {}", verified.attribute(), verified.range()),
            "holder": verified.holder().map(|d| d.to_string()),
            "verifier": verified.verifier(),
            "credential_expires_at": verified.credential_expires_at(),
        }))?
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hygeia_credentials::zk::hba1c::HBA1C_ATTRIBUTE;

    fn predicate(below: Option<&str>, between: Option<&str>, age: Option<u16>) -> Predicate {
        Predicate {
            below: below.map(str::to_owned),
            between: between.map(str::to_owned),
            at_least_age: age,
        }
    }

    #[test]
    fn predicates_become_requirements() {
        let below = predicate(Some("7.0"), None, None)
            .requirement(None)
            .unwrap();
        assert_eq!(below.attribute, HBA1C_ATTRIBUTE);
        assert!(below.range.contains(69) && !below.range.contains(70));
        let between = predicate(None, Some("6.5, 9.0"), None)
            .requirement(None)
            .unwrap();
        assert!(between.range.contains(65) && !between.range.contains(90));
        let age = predicate(None, None, Some(18))
            .requirement(Some("2025-06-01"))
            .unwrap();
        assert_eq!(age.attribute, "birth-date-days-since-1900");
        assert_eq!(
            predicate(None, None, Some(18)).attribute(),
            Attribute::BirthDate
        );
    }

    #[test]
    fn bad_predicates_say_why() {
        let err = predicate(Some("seven"), None, None)
            .requirement(None)
            .unwrap_err();
        assert!(err.to_string().starts_with("zk-invalid-claims"));
        let err = predicate(None, Some("9.0,6.5"), None)
            .requirement(None)
            .unwrap_err();
        assert!(err.to_string().starts_with("zk-invalid-predicate"));
        assert!(predicate(None, Some("6.5"), None)
            .requirement(None)
            .is_err());
        assert!(predicate(None, None, Some(18))
            .requirement(Some("June 1st"))
            .is_err());
    }

    #[test]
    fn nonces_are_64_hex_digits() {
        assert_eq!(parse_nonce(&"ab".repeat(32)).unwrap(), [0xab; 32]);
        assert!(parse_nonce("abcd").is_err());
        assert!(parse_nonce(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn issuers_are_did_keys_or_bound_to_one() {
        let key = Keypair::generate();
        let did = key.did().to_string();
        let issuers =
            trusted_issuers(&[did.clone(), format!("did:web:lab.example={did}")]).unwrap();
        use hygeia_credentials::zk::IssuerKeys;
        assert!(issuers.issuer_key(&did).is_some());
        assert!(issuers.issuer_key("did:web:lab.example").is_some());
        assert!(trusted_issuers(&["did:web:lab.example".into()]).is_err());
    }
}
