//! Patient-controlled records from the command line: `hygeia record`,
//! `consent`, `org`, `governance` and `audit`. Every command signs with the
//! user's key file: requests with RFC 9421 signatures, ledger changes as
//! transactions.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use base64::Engine;
use clap::Subcommand;
use hygeia_ledger::checkpoint::CheckpointVerifier;
use hygeia_ledger::proof::verify_inclusion;
use hygeia_ledger::tx::TxContext;
use hygeia_ledger::{Hash, SignedTx};
use serde_json::{json, Value};

use crate::client::{json_or_refusal, Client, RecordUpload};

const DEFAULT_NODE: &str = "http://127.0.0.1:7000";

#[derive(Subcommand)]
pub enum RecordCommand {
    /// Upload a record for a patient (you are its author; the file streams).
    Put {
        #[arg(long, short)]
        key: PathBuf,
        #[arg(long, default_value = DEFAULT_NODE)]
        node: String,
        /// The patient's did:key (default: you).
        #[arg(long)]
        patient: Option<String>,
        /// Category code, e.g. lab, mental-health, imaging.
        #[arg(long)]
        category: String,
        /// FHIR resource type, e.g. Observation.
        #[arg(long = "type", default_value = "Observation")]
        resource_type: String,
        /// Media type of the file.
        #[arg(long, default_value = "application/fhir+json")]
        media_type: String,
        /// HL7 purpose of use.
        #[arg(long, default_value = "TREAT")]
        purpose: String,
        file: PathBuf,
    },
    /// Read a record. The decision is logged before you get an answer.
    Get {
        #[arg(long, short)]
        key: PathBuf,
        #[arg(long, default_value = DEFAULT_NODE)]
        node: String,
        /// HL7 purpose of use: TREAT, ETREAT, HPAYMT, HRESCH, ...
        #[arg(long, default_value = "TREAT")]
        purpose: String,
        /// Break-glass: read without consent in an emergency (purpose ETREAT,
        /// registered clinicians only), with this written justification.
        #[arg(long)]
        break_glass: Option<String>,
        /// Write the record here instead of standard output.
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// The record id (its commitment).
        record: String,
    },
    /// List a patient's records (you must be the patient or a delegate).
    List {
        #[arg(long, short)]
        key: PathBuf,
        #[arg(long, default_value = DEFAULT_NODE)]
        node: String,
        #[arg(long)]
        patient: Option<String>,
    },
    /// Erase a record: every copy of its key is destroyed; reads get 410.
    Erase {
        #[arg(long, short)]
        key: PathBuf,
        #[arg(long, default_value = DEFAULT_NODE)]
        node: String,
        record: String,
    },
}

#[derive(Subcommand)]
pub enum ConsentCommand {
    /// Grant access to your records (or, as a delegate, a patient's).
    Grant(Box<GrantArgs>),
    /// Revoke a grant by id; it stops working in the batch that commits this.
    Revoke {
        #[arg(long, short)]
        key: PathBuf,
        #[arg(long, default_value = DEFAULT_NODE)]
        node: String,
        grant: String,
    },
    /// Register (or remove) a delegate, e.g. a guardian, who may grant and
    /// revoke for the patient. Signed by the patient (or the governance key).
    Delegate {
        #[arg(long, short)]
        key: PathBuf,
        #[arg(long, default_value = DEFAULT_NODE)]
        node: String,
        /// The patient (default: you).
        #[arg(long)]
        patient: Option<String>,
        /// The delegate's did:key.
        #[arg(long)]
        delegate: String,
        /// Remove the delegate instead.
        #[arg(long)]
        remove: bool,
    },
    /// List a patient's grants.
    List {
        #[arg(long, short)]
        key: PathBuf,
        #[arg(long, default_value = DEFAULT_NODE)]
        node: String,
        #[arg(long)]
        patient: Option<String>,
    },
}

#[derive(clap::Args)]
pub struct GrantArgs {
    #[arg(long, short)]
    key: PathBuf,
    #[arg(long, default_value = DEFAULT_NODE)]
    node: String,
    /// The patient (default: you).
    #[arg(long)]
    patient: Option<String>,
    /// Who may access: a person's did:key or an organization's DID.
    #[arg(long)]
    to: String,
    /// Record categories covered (repeat or comma-separate).
    #[arg(long, value_delimiter = ',')]
    categories: Vec<String>,
    /// FHIR resource types covered.
    #[arg(long = "types", value_delimiter = ',')]
    resource_types: Vec<String>,
    /// Specific records covered, by id.
    #[arg(long, value_delimiter = ',')]
    records: Vec<String>,
    /// read, write
    #[arg(long, value_delimiter = ',', default_value = "read")]
    actions: Vec<String>,
    /// HL7 purpose of use the grantee must state.
    #[arg(long, default_value = "TREAT")]
    purpose: String,
    /// Valid for this many days from now.
    #[arg(long, default_value_t = 30, conflicts_with = "until")]
    days: i64,
    /// Start of validity (Unix seconds; default now).
    #[arg(long)]
    from: Option<i64>,
    /// End of validity (Unix seconds).
    #[arg(long)]
    until: Option<i64>,
    /// Countries (ISO 3166-1 alpha-2) the grantee must act from.
    #[arg(long, value_delimiter = ',')]
    jurisdictions: Vec<String>,
}

#[derive(Subcommand)]
pub enum OrgCommand {
    /// Register an organization (governance key only).
    Register {
        #[arg(long, short)]
        key: PathBuf,
        #[arg(long, default_value = DEFAULT_NODE)]
        node: String,
        /// The organization's DID, e.g. did:web:clinic.example.
        #[arg(long)]
        org: String,
        /// The did:key that administers it.
        #[arg(long)]
        admin: String,
        /// clinic, hospital, lab, payer, research, pharmacy, manufacturer, regulator
        #[arg(long)]
        kind: String,
    },
    /// Add, update, suspend or remove a member (the organization's admin key).
    Member {
        #[arg(long, short)]
        key: PathBuf,
        #[arg(long, default_value = DEFAULT_NODE)]
        node: String,
        #[arg(long)]
        org: String,
        #[arg(long)]
        member: String,
        /// clinician, nurse, lab-technician, pharmacist, researcher, payer-agent, device, admin
        #[arg(long = "role", value_delimiter = ',')]
        roles: Vec<String>,
        /// ISO 3166-1 alpha-2 country the member acts from.
        #[arg(long)]
        jurisdiction: Option<String>,
        /// active, suspended, removed
        #[arg(long, default_value = "active")]
        status: String,
    },
    /// Replace the keys that speak for an organization
    ///
    /// Submits `org.keys`, signed
    /// by its current admin key (or the governance key when that is lost).
    /// Its did:web document then lists only the new keys; credentials
    /// signed with a key it no longer lists stop verifying.
    Keys {
        /// The current admin key file (or the governance key).
        #[arg(long, short)]
        key: PathBuf,
        /// The node to submit to.
        #[arg(long, default_value = DEFAULT_NODE)]
        node: String,
        /// The organization's DID, e.g. did:web:hospital.example:orgs:acme.
        #[arg(long)]
        org: String,
        /// The new admin key's did:key.
        #[arg(long)]
        admin: String,
        /// did:keys that may sign credentials for it besides the admin key
        /// (repeat or comma-separate).
        #[arg(long, value_delimiter = ',')]
        assertion: Vec<String>,
    },
}

#[derive(Subcommand)]
pub enum GovernanceCommand {
    /// Install a Cedar governance policy set (governance key only).
    Install {
        #[arg(long, short)]
        key: PathBuf,
        #[arg(long, default_value = DEFAULT_NODE)]
        node: String,
        /// Must be above the installed version.
        #[arg(long)]
        version: u64,
        /// The Cedar policies.
        file: PathBuf,
    },
}

#[derive(clap::Args)]
pub struct AuditArgs {
    #[arg(long, short)]
    key: PathBuf,
    #[arg(long, default_value = DEFAULT_NODE)]
    node: String,
    /// The patient (default: you).
    #[arg(long)]
    patient: Option<String>,
    /// The log's checkpoint verifier key (C2SP vkey). Without it, the key the
    /// node reports is used (trust on first use).
    #[arg(long)]
    verifier_key: Option<String>,
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Print the verified answer as JSON.
    #[arg(long)]
    json: bool,
}

fn print(value: &Value) -> anyhow::Result<ExitCode> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(ExitCode::SUCCESS)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `?a=x&b=y`, URL-encoded.
fn query(pairs: &[(&str, &str)]) -> String {
    let encoded: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect();
    format!("?{}", encoded.join("&"))
}

fn urlencode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

pub fn run_record(command: RecordCommand) -> anyhow::Result<ExitCode> {
    match command {
        RecordCommand::Put {
            key,
            node,
            patient,
            category,
            resource_type,
            media_type,
            purpose,
            file,
        } => {
            let client = Client::new(&node, &key)?;
            let patient = patient.unwrap_or_else(|| client.did());
            anyhow::ensure!(
                purpose.bytes().all(|b| b.is_ascii_alphabetic()),
                "--purpose must be an HL7 purpose-of-use code such as TREAT"
            );
            let upload = RecordUpload {
                patient: &patient,
                category: &category,
                resource_type: &resource_type,
                media_type: &media_type,
                purpose: &purpose,
            };
            print(&client.upload_record(&upload, &file)?)
        }
        RecordCommand::Get {
            key,
            node,
            purpose,
            break_glass,
            out,
            record,
        } => {
            let client = Client::new(&node, &key)?;
            let mut params = vec![("purpose", purpose.as_str())];
            if let Some(j) = &break_glass {
                params.push(("break_glass", j.as_str()));
            }
            let mut response =
                client.get(&format!("/v1/records/{record}{}", query(&params)), &[])?;
            if !response.status().is_success() {
                json_or_refusal(response)?;
                bail!("the node refused");
            }
            let decision = response
                .headers()
                .get("hygeia-decision")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("permit")
                .to_owned();
            let audit = response
                .headers()
                .get("hygeia-audit-index")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("?")
                .to_owned();
            match out {
                Some(path) => {
                    let mut file = std::fs::File::create(&path)
                        .with_context(|| format!("cannot create {}", path.display()))?;
                    response.copy_to(&mut file)?;
                    file.sync_all()?;
                }
                None => {
                    let mut stdout = std::io::stdout().lock();
                    response.copy_to(&mut stdout)?;
                    stdout.flush()?;
                }
            }
            eprintln!("decision: {decision}; logged at index {audit}");
            Ok(ExitCode::SUCCESS)
        }
        RecordCommand::List { key, node, patient } => {
            let client = Client::new(&node, &key)?;
            let patient = patient.unwrap_or_else(|| client.did());
            print(&client.get_json(&format!("/v1/records{}", query(&[("patient", &patient)])))?)
        }
        RecordCommand::Erase { key, node, record } => {
            let mut client = Client::new(&node, &key)?;
            print(&client.submit("record.erase", json!({ "record": record }))?)
        }
    }
}

pub fn run_consent(command: ConsentCommand) -> anyhow::Result<ExitCode> {
    match command {
        ConsentCommand::Grant(args) => {
            let GrantArgs {
                key,
                node,
                patient,
                to,
                categories,
                resource_types,
                records,
                actions,
                purpose,
                days,
                from,
                until,
                jurisdictions,
            } = *args;
            let mut client = Client::new(&node, &key)?;
            let patient = patient.unwrap_or_else(|| client.did());
            let not_before = from.unwrap_or_else(now);
            let not_after = until.unwrap_or(not_before.saturating_add(days.saturating_mul(86_400)));
            let mut body = json!({
                "patient": patient,
                "grantee": to,
                "scope": {
                    "categories": categories,
                    "resource_types": resource_types,
                    "record_ids": records,
                },
                "actions": actions,
                "purpose": purpose,
                "not_before": not_before,
                "not_after": not_after,
            });
            if !jurisdictions.is_empty() {
                body["jurisdictions"] = json!(jurisdictions);
            }
            let mut answer = client.submit("consent.grant", body)?;
            answer["grant"] = answer["leaf_hash"].clone();
            print(&answer)
        }
        ConsentCommand::Delegate {
            key,
            node,
            patient,
            delegate,
            remove,
        } => {
            let mut client = Client::new(&node, &key)?;
            let patient = patient.unwrap_or_else(|| client.did());
            let op = if remove { "remove" } else { "add" };
            print(&client.submit(
                "consent.delegate",
                json!({"patient": patient, "delegate": delegate, "op": op}),
            )?)
        }
        ConsentCommand::Revoke { key, node, grant } => {
            let mut client = Client::new(&node, &key)?;
            print(&client.submit("consent.revoke", json!({ "grant": grant }))?)
        }
        ConsentCommand::List { key, node, patient } => {
            let client = Client::new(&node, &key)?;
            let patient = patient.unwrap_or_else(|| client.did());
            print(&client.get_json(&format!("/v1/consents{}", query(&[("patient", &patient)])))?)
        }
    }
}

pub fn run_org(command: OrgCommand) -> anyhow::Result<ExitCode> {
    match command {
        OrgCommand::Register {
            key,
            node,
            org,
            admin,
            kind,
        } => {
            let mut client = Client::new(&node, &key)?;
            print(&client.submit(
                "org.register",
                json!({"org": org, "admin": admin, "kind": kind}),
            )?)
        }
        OrgCommand::Member {
            key,
            node,
            org,
            member,
            roles,
            jurisdiction,
            status,
        } => {
            let mut client = Client::new(&node, &key)?;
            let mut body = json!({"org": org, "member": member, "roles": roles, "status": status});
            if let Some(j) = jurisdiction {
                body["jurisdiction"] = json!(j);
            }
            print(&client.submit("org.member", body)?)
        }
        OrgCommand::Keys {
            key,
            node,
            org,
            admin,
            assertion,
        } => {
            let mut client = Client::new(&node, &key)?;
            let mut body = json!({"org": org, "admin": admin});
            if !assertion.is_empty() {
                body["assertion"] = json!(assertion);
            }
            print(&client.submit("org.keys", body)?)
        }
    }
}

pub fn run_governance(command: GovernanceCommand) -> anyhow::Result<ExitCode> {
    match command {
        GovernanceCommand::Install {
            key,
            node,
            version,
            file,
        } => {
            let policies = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let mut client = Client::new(&node, &key)?;
            print(&client.submit(
                "governance.policy",
                json!({"version": version, "policies": policies}),
            )?)
        }
    }
}

/// `hygeia audit`: fetches a patient's access log and checks every event
/// offline: the checkpoint's signature, each event's inclusion proof, the
/// node's signature on each event, and that each names this patient.
pub fn run_audit(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.node, &args.key)?;
    let patient = args.patient.clone().unwrap_or_else(|| client.did());
    let info = super::node_info(&args.node)?;
    let vkey = match &args.verifier_key {
        Some(vkey) => vkey.clone(),
        None => {
            eprintln!("note: using the verifier key the node reports; pass --verifier-key to check against one you trust");
            info["checkpoint_verifier_key"]
                .as_str()
                .context("the node did not report its verifier key")?
                .to_owned()
        }
    };
    // The node signs its events with its checkpoint key: a trusted verifier
    // key names the node too.
    let node_did = did_of_verifier_key(&vkey)?;
    let feed = client.get_json(&format!(
        "/v1/audit{}",
        query(&[("patient", &patient), ("limit", &args.limit.to_string())])
    ))?;
    let verified = verify_feed(&feed, &vkey, &node_did, &patient)?;
    if args.json {
        return print(&feed);
    }
    use std::fmt::Write as _;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{} access events about {patient} ({} shown, break-glass first), all verified against checkpoint {}:",
        feed["total"], verified, feed["tree_size"]
    );
    for event in feed["events"].as_array().into_iter().flatten() {
        // Shown from the verified entry, not from the node's summary of it.
        let entry: Value = serde_json::from_str(event["entry"].as_str().unwrap_or("null"))?;
        let e = &entry["body"];
        let flag = if e["break_glass"] == json!(true) {
            "BREAK-GLASS "
        } else {
            ""
        };
        let reasons = e["reasons"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "no policy permits (deny by default)".into());
        let _ = writeln!(
            text,
            "  #{:<8} {flag}{} {} by {} for {} at unix time {}: {reasons}; {} record(s)",
            event["index"],
            e["decision"].as_str().unwrap_or("?"),
            e["action"].as_str().unwrap_or("?"),
            e["requester"].as_str().unwrap_or("?"),
            e["purpose"].as_str().unwrap_or("?"),
            e["time"],
            e["records"].as_array().map_or(0, Vec::len),
        );
        if let Some(j) = event["justification"].as_str() {
            let _ = writeln!(text, "             justification: {j}");
        }
    }
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(ExitCode::SUCCESS)
}

/// The did:key of a C2SP Ed25519 verifier key (`<name>+<id>+<base64 of
/// 0x01 || public key>`).
pub fn did_of_verifier_key(vkey: &str) -> anyhow::Result<String> {
    // The name holds no '+', the key id is 8 hex digits, and the base64 of
    // the key may itself contain '+': split off the first two parts only.
    let encoded = vkey.splitn(3, '+').nth(2).unwrap_or_default();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .context("the verifier key's key part is not base64")?;
    anyhow::ensure!(
        bytes.len() == 33 && bytes[0] == 0x01,
        "not an Ed25519 verifier key"
    );
    let mut public = [0u8; 32];
    public.copy_from_slice(&bytes[1..]);
    let key = hygeia_identity::PublicKey::from_bytes(&public)
        .map_err(|_| anyhow::anyhow!("the verifier key holds no valid Ed25519 key"))?;
    Ok(key.did().to_string())
}

/// Checks a feed offline; returns how many events it verified.
pub fn verify_feed(
    feed: &Value,
    vkey: &str,
    node_did: &str,
    patient: &str,
) -> anyhow::Result<usize> {
    let verifier =
        CheckpointVerifier::new(vkey).map_err(|e| anyhow::anyhow!("bad verifier key: {e}"))?;
    let note = feed["checkpoint"]
        .as_str()
        .context("no checkpoint in the answer")?;
    let checkpoint = verifier
        .verify(note.as_bytes())
        .map_err(|e| anyhow::anyhow!("the checkpoint does not verify: {e}"))?;
    let modules = hygeia_state::txs::registry();
    let ctx = TxContext {
        network: verifier.origin(),
        modules: &modules,
    };
    let mut count = 0;
    for event in feed["events"].as_array().into_iter().flatten() {
        let index = event["index"].as_u64().context("event without index")?;
        let entry = event["entry"].as_str().context("event without entry")?;
        let tx = SignedTx::parse(entry.as_bytes(), &ctx)
            .map_err(|e| anyhow::anyhow!("event {index} is not a valid transaction: {e}"))?;
        if tx.signer().as_str() != node_did || tx.tx_type() != "access" {
            bail!("event {index} is not an access event signed by the node");
        }
        if tx.body()["patient"].as_str() != Some(patient) {
            bail!("event {index} is about another patient");
        }
        let proof: Vec<Hash> = event["inclusion_proof"]
            .as_array()
            .context("event without proof")?
            .iter()
            .map(|h| {
                let bytes = hex::decode(h.as_str().unwrap_or(""))?;
                let array: [u8; 32] = bytes
                    .try_into()
                    .map_err(|_| anyhow::anyhow!("proof hash is not 32 bytes"))?;
                Ok(Hash(array))
            })
            .collect::<anyhow::Result<_>>()?;
        verify_inclusion(
            tx.leaf_hash(),
            index,
            checkpoint.size,
            &proof,
            checkpoint.root,
        )
        .map_err(|e| anyhow::anyhow!("event {index}: {e}"))?;
        count += 1;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use hygeia_identity::Keypair;
    use hygeia_ledger::CheckpointSigner;

    /// Whatever characters the key's base64 holds ('+' included).
    #[test]
    fn the_node_did_comes_from_its_verifier_key() {
        for seed in 0..64u8 {
            let key = Keypair::from_seed(&[seed; 32]);
            let did = key.did().to_string();
            let vkey = CheckpointSigner::new("example.org/log", key)
                .unwrap()
                .verifier_key();
            assert_eq!(super::did_of_verifier_key(&vkey).unwrap(), did, "{vkey}");
        }
    }
}
