//! `hygeia credential issue | present | verify`: Hygeia's four credential
//! types as SD-JWT VCs (and a clinician licence as a W3C VC 2.0 with an
//! `eddsa-jcs-2022` proof), from the issuer's, the holder's and the
//! verifier's side.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use hygeia_cli::licensing::{signing_key, verification_method, Issuer};
use hygeia_credentials::clinician_licence::{
    verify_clinician_licence, ClinicianLicence as VcLicence, ClinicianLicenceCredential,
    CLINICIAN_LICENCE_CREDENTIAL,
};
use hygeia_credentials::credential_types::{
    ClinicianLicence, Credential, CredentialError, DeviceAttestation, LabResult,
    TrialSiteAccreditation, VCT_CLINICIAN_LICENCE,
};
use hygeia_credentials::sd_jwt::{
    verify_presentation, ClaimPath, PathSegment, SdJwt, SdJwtError, VerifyOptions,
};
use hygeia_credentials::status_list::{StatusListEntry, StatusListError, StatusPurpose};
use hygeia_credentials::status_list_credential::{
    check_issued_by, CredentialStatus, StatusListCredential,
};
use hygeia_credentials::vc::{verify_credential, VcError};
use hygeia_identity::{Did, Keypair};
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::did::{get_json, Resolver};

#[derive(Subcommand)]
pub enum CredentialCommand {
    /// Issue a credential (as its issuer)
    ///
    /// An SD-JWT VC bound to the
    /// holder's key (or, for a licence, a W3C VC 2.0 with --format vc).
    Issue(Box<IssueArgs>),
    /// Present a credential you hold
    ///
    /// Choose which selectively disclosable
    /// claims to show and, for a verifier's request, add a key-binding JWT
    /// signed with your key. The presentation goes to standard output.
    Present(PresentArgs),
    /// Verify a credential or presentation
    ///
    /// Checks the issuer's signature, key
    /// binding, validity window and, with --node, whether the node trusts
    /// the issuer for this type and the credential's status bits. Prints a
    /// JSON verdict, or `refused: <code>: <reason>` and exits with 1.
    Verify(VerifyArgs),
}

/// The credential types Hygeia issues.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// A clinician's licence to practise (a licensing board issues it).
    Licence,
    /// A laboratory result for a patient.
    LabResult,
    /// A device's identity and software, attested by its maker.
    Device,
    /// A trial site's accreditation for a study.
    TrialSite,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// SD-JWT VC (RFC 9901), compact.
    SdJwt,
    /// W3C VC 2.0 JSON secured with Data Integrity eddsa-jcs-2022
    /// (licences only).
    Vc,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Purpose {
    /// A set bit voids the credential for good.
    Revocation,
    /// A set bit puts the credential on hold until it is cleared.
    Suspension,
}

impl From<Purpose> for StatusPurpose {
    fn from(purpose: Purpose) -> Self {
        match purpose {
            Purpose::Revocation => StatusPurpose::Revocation,
            Purpose::Suspension => StatusPurpose::Suspension,
        }
    }
}

#[derive(Args)]
pub struct IssueArgs {
    /// What to issue.
    #[arg(value_enum)]
    kind: Kind,
    /// The issuer's key file.
    #[arg(long, short)]
    key: PathBuf,
    /// The holder's did:key: the credential is bound (cnf) to its key, and
    /// it is the subject (sub), except for a trial site (see --site).
    #[arg(long)]
    holder: String,
    /// The issuer's DID. Default: the key's did:key. May be an
    /// organization's did:web whose current key is --key; the credential
    /// then names the key as `<did:web>#<its did:key multibase>`.
    #[arg(long)]
    issuer: Option<String>,
    /// Days the credential is valid from now.
    #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(i64).range(1..=36_500))]
    valid_days: i64,
    /// URL of a status list credential holding a bit for this credential
    /// (e.g. <node>/v1/status-lists/<issuer DID>/<name>, as `hygeia status
    /// publish` prints it).
    /// Repeat with --status-index (and --status-purpose) for each list.
    #[arg(long = "status-list", requires = "status_indexes")]
    status_lists: Vec<String>,
    /// The credential's bit in the --status-list of the same position.
    #[arg(long = "status-index", requires = "status_lists")]
    status_indexes: Vec<usize>,
    /// What a set bit means, per --status-list (default: revocation).
    #[arg(long = "status-purpose", value_enum)]
    status_purposes: Vec<Purpose>,
    /// sd-jwt, or vc (a licence as a W3C VC 2.0, eddsa-jcs-2022).
    #[arg(long, value_enum, default_value = "sd-jwt")]
    format: Format,
    /// Write the credential here instead of standard output.
    #[arg(long, short)]
    out: Option<PathBuf>,

    /// Licence: the registry number (selectively disclosable).
    #[arg(long, help_heading = "Licence")]
    licence_number: Option<String>,
    /// Licence: the profession, e.g. physician, nurse, pharmacist.
    #[arg(long, help_heading = "Licence")]
    profession: Option<String>,
    /// Licence: the specialty, e.g. cardiology (selectively disclosable).
    #[arg(long, help_heading = "Licence")]
    specialty: Option<String>,
    /// Licence: the country it applies in (ISO 3166-1 alpha-2, e.g. FR).
    #[arg(long, help_heading = "Licence")]
    jurisdiction: Option<String>,

    /// Lab result: the LOINC code, e.g. 4548-4 (HbA1c).
    #[arg(long, help_heading = "Lab result")]
    loinc: Option<String>,
    /// Lab result: the value.
    #[arg(long, help_heading = "Lab result", allow_negative_numbers = true)]
    value: Option<f64>,
    /// Lab result: the UCUM unit, e.g. %.
    #[arg(long, help_heading = "Lab result")]
    unit: Option<String>,
    /// Lab result: the date it applies to, YYYY-MM-DD.
    #[arg(long, help_heading = "Lab result")]
    effective: Option<String>,

    /// Device: its Unique Device Identifier (selectively disclosable).
    #[arg(long, help_heading = "Device")]
    udi: Option<String>,
    /// Device: its serial number (selectively disclosable).
    #[arg(long, help_heading = "Device")]
    serial: Option<String>,
    /// Device: its model.
    #[arg(long, help_heading = "Device")]
    model: Option<String>,
    /// Device: its firmware version.
    #[arg(long, help_heading = "Device")]
    firmware: Option<String>,

    /// Trial site: the study's id, e.g. NCT01234567.
    #[arg(long, help_heading = "Trial site")]
    study: Option<String>,
    /// Trial site: the site organization's DID (default: --holder).
    #[arg(long, help_heading = "Trial site")]
    site: Option<String>,
    /// Trial site: what it is accredited for, e.g. enrolment,dosing (each
    /// element selectively disclosable).
    #[arg(long, help_heading = "Trial site", value_delimiter = ',')]
    scope: Vec<String>,
}

#[derive(Args)]
pub struct PresentArgs {
    /// Your key file: the key the credential is bound to.
    #[arg(long, short)]
    key: PathBuf,
    /// Selectively disclosable claims to show, e.g. licence_number,specialty.
    /// The others stay hidden; plain claims are always shown.
    #[arg(long, value_delimiter = ',')]
    disclose: Vec<String>,
    /// The verifier the presentation is for (key-binding `aud`); with --nonce.
    #[arg(long, requires = "nonce")]
    aud: Option<String>,
    /// The verifier's challenge (key-binding `nonce`); with --aud.
    #[arg(long, requires = "aud")]
    nonce: Option<String>,
    /// A node to resolve a did:web issuer through (did:key issuers need none).
    #[arg(long)]
    node: Option<String>,
    /// The issued credential (an SD-JWT, as `credential issue` wrote it).
    file: PathBuf,
}

#[derive(Args)]
pub struct VerifyArgs {
    /// A node to check against: resolves did:web issuers, and checks the
    /// trust list and the credential's status lists. Without it, only
    /// did:key issuers verify and neither trust nor status is checked.
    #[arg(long)]
    node: Option<String>,
    /// Require key binding for this verifier (`aud`); with --nonce.
    #[arg(long, requires = "nonce")]
    aud: Option<String>,
    /// Require key binding with this challenge (`nonce`); with --aud.
    #[arg(long, requires = "aud")]
    nonce: Option<String>,
    /// The credential or presentation: an SD-JWT (compact or JSON) or a
    /// W3C VC 2.0 JSON; '-' reads standard input.
    file: PathBuf,
}

pub fn run(command: CredentialCommand) -> anyhow::Result<ExitCode> {
    match command {
        CredentialCommand::Issue(args) => issue(*args),
        CredentialCommand::Present(args) => present(args),
        CredentialCommand::Verify(args) => verify(args),
    }
}

fn unix_now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn required<T>(value: Option<T>, flag: &str, kind: &str) -> anyhow::Result<T> {
    value.with_context(|| format!("{flag} is required for a {kind}"))
}

fn parse_did_key(field: &str, did: &str) -> anyhow::Result<Did> {
    Did::parse_cached(did).map_err(|e| anyhow::anyhow!("{field} must be an Ed25519 did:key: {e}"))
}

/// The status entries of --status-list/--status-index/--status-purpose.
fn status_entries(args: &IssueArgs) -> anyhow::Result<Vec<StatusListEntry>> {
    let n = args.status_lists.len();
    anyhow::ensure!(
        args.status_indexes.len() == n,
        "give one --status-index per --status-list"
    );
    anyhow::ensure!(
        args.status_purposes.is_empty() || args.status_purposes.len() == n,
        "give one --status-purpose per --status-list, or none (revocation)"
    );
    Ok((0..n)
        .map(|i| {
            let purpose = args
                .status_purposes
                .get(i)
                .copied()
                .unwrap_or(Purpose::Revocation);
            StatusListEntry::new(
                args.status_lists[i].clone(),
                purpose.into(),
                args.status_indexes[i],
            )
        })
        .collect())
}

fn typed_credential(args: &IssueArgs, holder: &Did) -> anyhow::Result<Credential> {
    Ok(match args.kind {
        Kind::Licence => Credential::ClinicianLicence(ClinicianLicence {
            subject: holder.clone(),
            licence_number: args.licence_number.clone(),
            profession: required(args.profession.clone(), "--profession", "licence")?,
            specialty: args.specialty.clone(),
            jurisdiction: required(args.jurisdiction.clone(), "--jurisdiction", "licence")?,
        }),
        Kind::LabResult => Credential::LabResult(LabResult {
            subject: holder.clone(),
            code: args.loinc.clone(),
            value: args.value,
            unit: args.unit.clone(),
            effective: args.effective.clone(),
        }),
        Kind::Device => Credential::DeviceAttestation(DeviceAttestation {
            subject: holder.clone(),
            model: required(args.model.clone(), "--model", "device attestation")?,
            firmware_version: required(args.firmware.clone(), "--firmware", "device attestation")?,
            serial_number: args.serial.clone(),
            udi: args.udi.clone(),
        }),
        Kind::TrialSite => Credential::TrialSiteAccreditation(TrialSiteAccreditation {
            site: args
                .site
                .clone()
                .unwrap_or_else(|| holder.as_str().to_owned()),
            study_id: required(args.study.clone(), "--study", "trial-site accreditation")?,
            scope: args.scope.clone(),
        }),
    })
}

fn issue(args: IssueArgs) -> anyhow::Result<ExitCode> {
    let key = Keypair::read_key_file(&args.key)
        .with_context(|| format!("cannot use key file {}", args.key.display()))?;
    let holder = parse_did_key("--holder", &args.holder)?;
    let issuer = args.issuer.clone().unwrap_or_else(|| key.did().to_string());
    anyhow::ensure!(
        issuer == key.did().as_str() || issuer.starts_with("did:web:"),
        "--issuer must be the key's own did:key or an organization's did:web"
    );
    let status = status_entries(&args)?;
    let now = OffsetDateTime::now_utc();
    let until = now + time::Duration::days(args.valid_days);
    let text = match args.format {
        Format::SdJwt => {
            let credential = typed_credential(&args, &holder)?;
            let issued = Issuer {
                key: &key,
                did: issuer,
            }
            .issue(
                &credential,
                *holder.public_key(),
                now.unix_timestamp(),
                Some(until.unix_timestamp()),
                &status,
            )
            .map_err(|e| anyhow::anyhow!("{}: {e}", e.code()))?;
            format!("{issued}\n")
        }
        Format::Vc => {
            anyhow::ensure!(
                args.kind == Kind::Licence,
                "--format vc issues licences only; the other types are SD-JWT VCs"
            );
            let credential = ClinicianLicenceCredential {
                id: Some(format!("urn:uuid:{}", random_uuid())),
                issuer: issuer.clone(),
                valid_from: now,
                valid_until: until,
                licence: VcLicence {
                    subject: holder.clone(),
                    licence_number: required(
                        args.licence_number.clone(),
                        "--licence-number",
                        "W3C VC licence",
                    )?,
                    profession: required(args.profession.clone(), "--profession", "licence")?,
                    specialty: args.specialty.clone(),
                    jurisdiction: required(args.jurisdiction.clone(), "--jurisdiction", "licence")?,
                },
                status,
            };
            let issued = credential
                .issue(&key, &verification_method(&issuer, &key), now)
                .map_err(|e| anyhow::anyhow!("{}: {e}", e.code()))?;
            format!("{}\n", serde_json::to_string_pretty(&issued)?)
        }
    };
    match args.out {
        Some(path) => std::fs::write(&path, text)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// A version 4 UUID from the operating system's random source.
fn random_uuid() -> String {
    let mut bytes: [u8; 16] = rand::random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

fn read_input(file: &Path) -> anyhow::Result<String> {
    let mut text = String::new();
    if file.as_os_str() == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read standard input")?;
    } else {
        text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
    }
    Ok(text.trim().to_owned())
}

fn present(args: PresentArgs) -> anyhow::Result<ExitCode> {
    let key = Keypair::read_key_file(&args.key)
        .with_context(|| format!("cannot use key file {}", args.key.display()))?;
    let issued = read_input(&args.file)?;
    let resolver = Resolver::new(args.node.as_deref());
    let held = SdJwt::parse(&issued, &|iss: &str, h: &_| resolver.issuer_key(iss, h))
        .map_err(|e| refusal_of_sd_jwt(e, &resolver))?;
    let mut selection = Vec::new();
    for name in &args.disclose {
        let disclosable = held
            .disclosable_paths()
            .iter()
            .any(|p| matches!(p.segments().first(), Some(PathSegment::Key(k)) if k == name));
        if disclosable {
            selection.push(ClaimPath::keys(&[name]));
        } else if !held.claims().contains_key(name) {
            bail!("the credential has no claim {name:?}");
        }
    }
    let shown = match (&args.aud, &args.nonce) {
        (Some(aud), Some(nonce)) => held
            .present_with_key_binding(&selection, aud, nonce, unix_now(), &signing_key(&key))
            .map_err(|e| anyhow::anyhow!("{}: {e}", e.code()))?,
        _ => held.present(&selection),
    };
    println!("{shown}");
    Ok(ExitCode::SUCCESS)
}

/// Why a credential was refused; [`Refusal::code`] is stable.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("{0}")]
    SdJwt(SdJwtError),
    #[error("the issuer {issuer:?} has no key for this credential: {detail}")]
    UnknownIssuer { issuer: String, detail: String },
    #[error("{0}")]
    Claims(#[from] CredentialError),
    #[error("{0}")]
    Vc(#[from] VcError),
    #[error("{0}")]
    Status(#[from] StatusListError),
    #[error("key binding was asked for, but a W3C VC carries none: present an SD-JWT")]
    NoKeyBinding,
    #[error("the node does not trust {issuer} for {credential_type}{detail}")]
    Untrusted {
        issuer: String,
        credential_type: String,
        detail: String,
    },
    #[error("the credential is revoked (bit {index} of {list})")]
    Revoked { list: String, index: usize },
    #[error("the credential is suspended (bit {index} of {list})")]
    Suspended { list: String, index: usize },
    #[error("the status list {list} cannot be checked: {reason}")]
    StatusUnavailable { list: String, reason: String },
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::SdJwt(e) => e.code(),
            Refusal::UnknownIssuer { .. } => "sd-jwt-unknown-issuer",
            Refusal::Claims(e) => e.code(),
            Refusal::Vc(e) => e.code(),
            Refusal::Status(e) => e.code(),
            Refusal::NoKeyBinding => "vc-no-key-binding",
            Refusal::Untrusted { .. } => "untrusted-issuer",
            Refusal::Revoked { .. } => "revoked",
            Refusal::Suspended { .. } => "suspended",
            Refusal::StatusUnavailable { .. } => "status-unavailable",
        }
    }
}

fn refusal_of_sd_jwt(error: SdJwtError, resolver: &Resolver) -> Refusal {
    match error {
        SdJwtError::UnknownIssuer(issuer) => Refusal::UnknownIssuer {
            issuer,
            detail: resolver
                .failure
                .borrow()
                .clone()
                .unwrap_or_else(|| "it names no key its DID document lists".into()),
        },
        other => Refusal::SdJwt(other),
    }
}

/// What verified, before trust and status.
struct Checked {
    format: &'static str,
    issuer: String,
    /// The SD-JWT VC type, or the type a W3C VC maps to on the trust list.
    vct: Option<String>,
    claims: Value,
    key_bound: bool,
    /// The licence's jurisdiction, for the trust list's countries.
    jurisdiction: Option<String>,
    status: Vec<StatusListEntry>,
}

fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let text = read_input(&args.file)?;
    let resolver = Resolver::new(args.node.as_deref());
    let verdict = (|| -> Result<Value, Refusal> {
        let checked = if text.starts_with('{') && text.contains("\"@context\"") {
            if args.aud.is_some() {
                return Err(Refusal::NoKeyBinding);
            }
            check_vc(&text, &resolver)?
        } else {
            check_sd_jwt(&text, &args, &resolver)?
        };
        let (trusted, status) = match &args.node {
            None => (Value::Null, json!("unchecked")),
            Some(node) => {
                check_trust(node, &checked)?;
                (json!(true), check_status(node, &checked, &resolver)?)
            }
        };
        Ok(json!({
            "valid": true,
            "format": checked.format,
            "issuer": checked.issuer,
            "vct": checked.vct,
            "key_bound": checked.key_bound,
            "trusted": trusted,
            "status": status,
            "claims": checked.claims,
        }))
    })();
    match verdict {
        Ok(verdict) => {
            println!("{}", serde_json::to_string_pretty(&verdict)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(refusal) => {
            println!("refused: {}: {refusal}", refusal.code());
            Ok(ExitCode::from(1))
        }
    }
}

fn check_sd_jwt(text: &str, args: &VerifyArgs, resolver: &Resolver) -> Result<Checked, Refusal> {
    let mut options = VerifyOptions::new(unix_now());
    if let (Some(aud), Some(nonce)) = (&args.aud, &args.nonce) {
        options = options.require_key_binding(aud, nonce);
    }
    let verified = verify_presentation(
        text,
        &|iss: &str, h: &_| resolver.issuer_key(iss, h),
        &options,
    )
    .map_err(|e| refusal_of_sd_jwt(e, resolver))?;
    let typed = Credential::from_verified(&verified)?;
    let jurisdiction = match &typed {
        Credential::ClinicianLicence(l) => Some(l.jurisdiction.clone()),
        _ => None,
    };
    let status = match verified.status() {
        None => Vec::new(),
        Some(value) => StatusListEntry::all_from_json(value)?,
    };
    Ok(Checked {
        format: "sd-jwt",
        issuer: verified.issuer().to_owned(),
        vct: Some(verified.vct().to_owned()),
        claims: verified.claims_value(),
        key_bound: verified.key_bound(),
        jurisdiction,
        status,
    })
}

fn check_vc(text: &str, resolver: &Resolver) -> Result<Checked, Refusal> {
    let credential: Value =
        serde_json::from_str(text).map_err(|e| VcError::Malformed(format!("not JSON: {e}")))?;
    let now = OffsetDateTime::now_utc();
    let resolve = |method: &str| resolver.method_key(method);
    let is_licence = credential["type"]
        .as_array()
        .is_some_and(|types| types.iter().any(|t| t == CLINICIAN_LICENCE_CREDENTIAL));
    if is_licence {
        let verified = verify_clinician_licence(&credential, now, resolve)?;
        return Ok(Checked {
            format: "vc",
            issuer: verified.issuer().to_owned(),
            // The same attestation as the SD-JWT VC licence: the trust
            // list names its issuers under that type.
            vct: Some(VCT_CLINICIAN_LICENCE.to_owned()),
            claims: verified.credential().subject().clone(),
            key_bound: false,
            jurisdiction: Some(verified.licence().jurisdiction.clone()),
            status: verified.status().to_vec(),
        });
    }
    let verified = verify_credential(&credential, now, resolve)?;
    let status = match verified.status() {
        None => Vec::new(),
        Some(value) => StatusListEntry::all_from_json(value)?,
    };
    Ok(Checked {
        format: "vc",
        issuer: verified.issuer().to_owned(),
        vct: None,
        claims: verified.subject().clone(),
        key_bound: false,
        jurisdiction: None,
        status,
    })
}

/// Whether the node's trust list names the issuer for this type (and, for
/// a licence, for its country).
fn check_trust(node: &str, checked: &Checked) -> Result<(), Refusal> {
    let untrusted = |detail: String| Refusal::Untrusted {
        issuer: checked.issuer.clone(),
        credential_type: checked
            .vct
            .clone()
            .unwrap_or_else(|| "this credential type".into()),
        detail,
    };
    let Some(vct) = &checked.vct else {
        return Err(untrusted(
            ": the trust list names types by their vct, and this VC has none".into(),
        ));
    };
    let list = get_json(node, "/v1/trust-list")
        .map_err(|e| untrusted(format!(": the trust list cannot be read ({e:#})")))?;
    let entry = list["issuers"].as_array().into_iter().flatten().find(|e| {
        e["issuer"].as_str() == Some(checked.issuer.as_str())
            && e["credential_type"].as_str() == Some(vct.as_str())
    });
    let Some(entry) = entry else {
        return Err(untrusted(String::new()));
    };
    let countries: Vec<&str> = entry["jurisdictions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if let Some(country) = &checked.jurisdiction {
        if !countries.is_empty() && !countries.contains(&country.as_str()) {
            return Err(untrusted(format!(
                " in {country} (only in {})",
                countries.join(", ")
            )));
        }
    }
    Ok(())
}

/// Reads each status bit from the list the node anchored, after verifying
/// the list credential and that the credential's own issuer issued it.
fn check_status(node: &str, checked: &Checked, resolver: &Resolver) -> Result<Value, Refusal> {
    if checked.status.is_empty() {
        return Ok(json!("none"));
    }
    let now = OffsetDateTime::now_utc();
    for entry in &checked.status {
        let unavailable = |reason: String| Refusal::StatusUnavailable {
            list: entry.list_credential.clone(),
            reason,
        };
        let path = format!(
            "/v1/status-lists?id={}",
            super::did::url_component(&entry.list_credential)
        );
        let credential = get_json(node, &path).map_err(|e| unavailable(format!("{e:#}")))?;
        let list = StatusListCredential::verify(&credential, now, |m| resolver.method_key(m))?;
        match check_issued_by(entry, &checked.issuer, &list)? {
            CredentialStatus::Valid => {}
            CredentialStatus::Revoked => {
                return Err(Refusal::Revoked {
                    list: entry.list_credential.clone(),
                    index: entry.index,
                })
            }
            CredentialStatus::Suspended => {
                return Err(Refusal::Suspended {
                    list: entry.list_credential.clone(),
                    index: entry.index,
                })
            }
        }
    }
    Ok(json!("valid"))
}
