//! `hygeia fhir`: the node's FHIR R5 API from the command line
//! (docs/fhir.md). Bearer tokens come from a client assertion signed with
//! the user's key file (docs/auth.md, "Bearer tokens for FHIR clients");
//! Consent resources go with the patient's signed `consent.grant` or
//! `consent.revoke` in `X-Provenance`.
//!
//! [`FhirClient`] is shared by `hygeia import`, the demo and `hygeia bench
//! fhir`: it fetches and renews its token, and turns every refusal into an
//! error that shows the node's OperationOutcome.

use std::cell::RefCell;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context};
use base64::Engine;
use clap::{Args, Subcommand};
use hygeia_fhir::consent::{
    consent_to_terms, is_commitment, record_of_reference, GrantTerms, Resolver,
};
use hygeia_fhir::outcome::Issue;
use hygeia_fhir::reference::{did_of_reference, did_of_resource, parse_local};
use hygeia_fhir::types::ResourceType;
use hygeia_fhir::{DID_IDENTIFIER_SYSTEM, FHIR_JSON};
use hygeia_identity::Keypair;
use hygeia_ledger::TxBuilder;
use hygeia_policy::PurposeOfUse;
use reqwest::blocking::{Client as Http, Response};
use reqwest::Method;
use serde_json::{json, Value};

/// The node used when `--node` is not given.
pub const DEFAULT_NODE: &str = "http://127.0.0.1:7000";
/// RFC 7523's client assertion type.
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// How long a client assertion lives: it is spent at once.
const ASSERTION_LIFETIME_SECS: i64 = 120;
/// Tokens last 15 minutes; one older than this is replaced before use.
const TOKEN_RENEW_AFTER: Duration = Duration::from_secs(10 * 60);
/// ASTM E1762 signature types, and "Author's Signature" among them.
const SIGNATURE_TYPE_SYSTEM: &str = "urn:iso-astm:E1762-95:2013";
const AUTHOR_SIGNATURE: &str = "1.2.840.10065.1.12.1.1";

#[derive(Subcommand)]
pub enum FhirCommand {
    /// Get a bearer token for the FHIR API; prints only the token
    ///
    /// Signs a client assertion with your key (RFC 7523; its audience is the
    /// node's DID, read from GET /v1/node), exchanges it at POST /auth/token
    /// and prints the access token alone on standard output:
    ///
    ///   TOKEN=$(hygeia fhir token --key me.key --node http://127.0.0.1:7000)
    ///   curl -H "Authorization: Bearer $TOKEN" \
    ///     'http://127.0.0.1:7000/fhir/Observation?patient=Patient/p1'
    ///
    /// The token lasts 15 minutes. Every decision made for it uses its
    /// purpose of use, and its break-glass justification if it has one: a
    /// break-glass token (--purpose ETREAT, registered clinicians only) reads
    /// without consent, and each such read is flagged in the patient's
    /// AuditEvents.
    #[command(verbatim_doc_comment)]
    Token(TokenArgs),
    /// Grant or revoke consent as FHIR Consent resources, signed with your key
    ///
    /// A grant is the patient's own signed consent.grant transaction: the
    /// node never signs one. These commands map the Consent to the grant it
    /// means (docs/fhir.md, "Consent as FHIR Consent"), sign it with your key
    /// (the patient's, or a registered delegate's) and send both.
    #[command(subcommand, verbatim_doc_comment)]
    Consent(FhirConsentCommand),
}

#[derive(Args)]
pub struct TokenArgs {
    /// Your key file (its did:key is the token's requester).
    #[arg(long, short)]
    key: PathBuf,
    /// The node's URL.
    #[arg(long, default_value = DEFAULT_NODE)]
    node: String,
    /// HL7 v3 purpose of use the token carries: TREAT, ETREAT, HPAYMT,
    /// HOPERAT, HRESCH, PUBHLTH, PATRQT, COVERAGE, HMARKT.
    #[arg(long, default_value = "TREAT", value_parser = parse_purpose)]
    purpose: PurposeOfUse,
    /// Break-glass: a written justification for emergency reads without
    /// consent (with --purpose ETREAT; registered clinicians only; audited).
    #[arg(long)]
    break_glass: Option<String>,
    /// Print the whole token response (JSON) instead of the token alone.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
pub enum FhirConsentCommand {
    /// Grant: POST a Consent to /fhir/Consent with your signed consent.grant
    ///
    /// The Consent must have the supported shape (docs/fhir.md):
    ///   status active; decision permit; subject the patient;
    ///   exactly one provision, with
    ///     one actor (the grantee),
    ///     actions from http://terminology.hl7.org/CodeSystem/consentaction
    ///       (access = read, correct = write),
    ///     one purpose from http://terminology.hl7.org/CodeSystem/v3-ActReason,
    ///     a period with start and end (to the second, with a timezone;
    ///       on the provision or the Consent),
    ///     and a scope: resourceType, securityLabel (a Hygeia category from
    ///       https://hygeia.health/fhir/CodeSystem/category, e.g. lab) or data.
    ///
    /// Parties are named by DID, as an identifier
    ///   {"system": "urn:ietf:rfc:3986", "value": "did:key:..."}
    /// or by a literal reference (Patient/<id>, Practitioner/<id>,
    /// Organization/<id>) to a resource on the node whose identifier holds the
    /// DID; such references are read from the node with your token.
    ///
    /// Prints the created Consent. Its id is the grant id, which `revoke` takes.
    #[command(verbatim_doc_comment)]
    Grant(ConsentGrantArgs),
    /// Revoke a grant: DELETE /fhir/Consent/<id> with your signed consent.revoke
    ///
    /// The grant stops working in the batch that commits the revocation; the
    /// Consent then reads back with status inactive.
    #[command(verbatim_doc_comment)]
    Revoke(ConsentRevokeArgs),
}

#[derive(Args)]
pub struct ConsentGrantArgs {
    /// The key of the patient (or of a delegate registered for them).
    #[arg(long, short)]
    key: PathBuf,
    /// The node's URL.
    #[arg(long, default_value = DEFAULT_NODE)]
    node: String,
    /// The Consent resource (JSON file; '-' reads standard input).
    #[arg(long)]
    consent: PathBuf,
    /// Print the grant the Consent maps to and do not submit it.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Args)]
pub struct ConsentRevokeArgs {
    /// The key of the patient (or of a delegate registered for them).
    #[arg(long, short)]
    key: PathBuf,
    /// The node's URL.
    #[arg(long, default_value = DEFAULT_NODE)]
    node: String,
    /// The grant id: the Consent's id, 64 hex digits.
    #[arg(long)]
    id: String,
}

pub fn run(command: FhirCommand) -> anyhow::Result<ExitCode> {
    match command {
        FhirCommand::Token(args) => token(args),
        FhirCommand::Consent(FhirConsentCommand::Grant(args)) => consent_grant(args),
        FhirCommand::Consent(FhirConsentCommand::Revoke(args)) => consent_revoke(args),
    }
}

/// A purpose-of-use code, for `--purpose`.
pub fn parse_purpose(code: &str) -> Result<PurposeOfUse, String> {
    code.parse::<PurposeOfUse>().map_err(|e| e.to_string())
}

pub fn read_key(path: &Path) -> anyhow::Result<Keypair> {
    Keypair::read_key_file(path).with_context(|| format!("cannot use key file {}", path.display()))
}

/// A file's bytes, or standard input's for `-`.
pub fn read_input(path: &Path) -> anyhow::Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("cannot read standard input")?;
        Ok(bytes)
    } else {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    }
}

/// Writes a line to standard output; a closed pipe (`| head`) is not an
/// error worth a panic.
pub fn print_line(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.write_all(b"\n"))
        .and_then(|()| stdout.flush());
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A FHIR dateTime to the second in UTC (`2026-03-01T09:00:00Z`), as
/// Consent periods need.
pub fn date_time(unix_secs: i64) -> String {
    hygeia_fhir::date::format_instant(unix_secs.saturating_mul(1000)).replace(".000Z", "Z")
}

/// The blocking HTTP client of the FHIR commands.
pub fn http_client() -> anyhow::Result<Http> {
    Ok(Http::builder().timeout(Duration::from_secs(600)).build()?)
}

/// What a node says about itself that FHIR clients need.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    /// The audience of client assertions.
    pub node_did: String,
    /// The `network` every transaction names.
    pub network: String,
}

impl NodeInfo {
    pub fn fetch(node: &str) -> anyhow::Result<NodeInfo> {
        let info = super::node_info(node)?;
        Ok(NodeInfo {
            node_did: info["node_did"]
                .as_str()
                .context("the node did not say its DID (node_did in GET /v1/node)")?
                .to_owned(),
            network: super::node_network(&info)?,
        })
    }
}

/// A token response (RFC 6749 §5.1).
#[derive(Clone, Debug)]
pub struct Token {
    pub access_token: String,
    pub expires_in: i64,
    pub scope: String,
}

/// Gets a bearer token for `key` at `node`: a client assertion for the
/// node's DID, exchanged at `POST /auth/token` for the given purpose (and
/// break-glass justification).
pub fn fetch_token(
    http: &Http,
    node: &str,
    key: &Keypair,
    node_did: &str,
    purpose: PurposeOfUse,
    break_glass: Option<&str>,
) -> anyhow::Result<Token> {
    let assertion =
        hygeia_auth::token::client_assertion(key, node_did, unix_now(), ASSERTION_LIFETIME_SECS);
    let mut form = vec![
        ("grant_type", "client_credentials".to_owned()),
        ("client_assertion_type", ASSERTION_TYPE.to_owned()),
        ("client_assertion", assertion),
        ("purpose_of_use", purpose.code().to_owned()),
    ];
    if let Some(justification) = break_glass {
        form.push(("break_glass", justification.to_owned()));
    }
    let url = format!("{}/auth/token", node.trim_end_matches('/'));
    let response = http
        .post(&url)
        .form(&form)
        .send()
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let text = response.text().unwrap_or_default();
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if !status.is_success() {
        match (body["error"].as_str(), body["error_description"].as_str()) {
            (Some(error), description) => bail!(
                "the node refused a token for {}: {status}: {error}: {}",
                key.did(),
                description.unwrap_or("")
            ),
            _ => bail!(
                "the node refused a token for {}: {status}: {}",
                key.did(),
                snippet(&text)
            ),
        }
    }
    Ok(Token {
        access_token: body["access_token"]
            .as_str()
            .context("the token response has no access_token")?
            .to_owned(),
        expires_in: body["expires_in"].as_i64().unwrap_or(0),
        scope: body["scope"].as_str().unwrap_or("").to_owned(),
    })
}

fn snippet(text: &str) -> String {
    let text = text.trim();
    if text.chars().count() > 300 {
        format!("{}…", text.chars().take(300).collect::<String>())
    } else {
        text.to_owned()
    }
}

/// A refusal by the FHIR API, with the issues of its OperationOutcome.
#[derive(Debug)]
pub struct FhirRefused {
    pub status: u16,
    pub reason: String,
    /// The OperationOutcome (or whatever JSON came back).
    pub outcome: Value,
    /// The body, when it was not JSON.
    pub text: String,
}

impl std::fmt::Display for FhirRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the node answered {} {}", self.status, self.reason)?;
        let issues = outcome_lines(&self.outcome);
        if issues.is_empty() {
            if !self.text.trim().is_empty() {
                write!(f, ": {}", snippet(&self.text))?;
            }
        } else {
            for line in issues {
                write!(f, "\n  {line}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for FhirRefused {}

/// One line per issue of an OperationOutcome: severity, code, where, why.
pub fn outcome_lines(outcome: &Value) -> Vec<String> {
    outcome["issue"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|issue| {
            let mut line = format!(
                "{} {}",
                issue["severity"].as_str().unwrap_or("error"),
                issue["code"].as_str().unwrap_or("?")
            );
            let at: Vec<&str> = issue["expression"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            if !at.is_empty() {
                line.push_str(&format!(" at {}", at.join(", ")));
            }
            if let Some(text) = issue["diagnostics"]
                .as_str()
                .or_else(|| issue["details"]["text"].as_str())
            {
                line.push_str(&format!(": {text}"));
            }
            line
        })
        .collect()
}

/// Issues found here (before anything is sent), one per line.
pub fn issue_lines(issues: &[Issue]) -> String {
    let outcome = hygeia_fhir::outcome::operation_outcome(issues);
    outcome_lines(&outcome)
        .into_iter()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The JSON of a success, or a [`FhirRefused`].
pub fn json_or_outcome(response: Response) -> anyhow::Result<Value> {
    let status = response.status();
    let text = response.text().context("the node's answer was cut off")?;
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if status.is_success() {
        if body.is_null() && !text.trim().is_empty() {
            bail!(
                "the node answered {status} with a body that is not JSON: {}",
                snippet(&text)
            );
        }
        return Ok(body);
    }
    Err(FhirRefused {
        status: status.as_u16(),
        reason: status.canonical_reason().unwrap_or("").to_owned(),
        outcome: body,
        text,
    }
    .into())
}

/// A client of a node's FHIR API with a bearer token for one key and
/// purpose of use, renewed before it expires.
pub struct FhirClient {
    base: String,
    http: Http,
    key: Keypair,
    pub node: NodeInfo,
    purpose: PurposeOfUse,
    break_glass: Option<String>,
    token: Mutex<(String, Instant)>,
}

impl FhirClient {
    /// Asks the node who it is, then gets a token.
    pub fn connect(
        node: &str,
        key: Keypair,
        purpose: PurposeOfUse,
        break_glass: Option<String>,
    ) -> anyhow::Result<FhirClient> {
        let info = NodeInfo::fetch(node)?;
        FhirClient::with_info(node, &info, http_client()?, key, purpose, break_glass)
    }

    /// Gets a token, with what is already known of the node.
    pub fn with_info(
        node: &str,
        info: &NodeInfo,
        http: Http,
        key: Keypair,
        purpose: PurposeOfUse,
        break_glass: Option<String>,
    ) -> anyhow::Result<FhirClient> {
        let base = node.trim_end_matches('/').to_owned();
        let token = fetch_token(
            &http,
            &base,
            &key,
            &info.node_did,
            purpose,
            break_glass.as_deref(),
        )?;
        Ok(FhirClient {
            base,
            http,
            key,
            node: info.clone(),
            purpose,
            break_glass,
            token: Mutex::new((token.access_token, Instant::now())),
        })
    }

    pub fn did(&self) -> String {
        self.key.did().to_string()
    }

    /// The FHIR base URL, `<node>/fhir`.
    pub fn fhir_base(&self) -> String {
        format!("{}/fhir", self.base)
    }

    /// The current token, renewed if it is old.
    pub fn token(&self) -> anyhow::Result<String> {
        let mut token = self.token.lock().unwrap_or_else(|e| e.into_inner());
        if token.1.elapsed() >= TOKEN_RENEW_AFTER {
            *token = (self.fetch()?, Instant::now());
        }
        Ok(token.0.clone())
    }

    fn renew(&self) -> anyhow::Result<String> {
        let mut token = self.token.lock().unwrap_or_else(|e| e.into_inner());
        *token = (self.fetch()?, Instant::now());
        Ok(token.0.clone())
    }

    fn fetch(&self) -> anyhow::Result<String> {
        Ok(fetch_token(
            &self.http,
            &self.base,
            &self.key,
            &self.node.node_did,
            self.purpose,
            self.break_glass.as_deref(),
        )?
        .access_token)
    }

    /// Sends a request to `path` (from the node's root, e.g. `/fhir/Patient/1`)
    /// with the token; a 401 (token expired early, node restarted) gets one
    /// retry with a new token.
    pub fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
        headers: &[(&str, String)],
    ) -> anyhow::Result<Response> {
        let attempt = |token: &str| {
            let mut request = self
                .http
                .request(method.clone(), format!("{}{path}", self.base))
                .bearer_auth(token)
                .header("accept", FHIR_JSON);
            if let Some(body) = body {
                request = request
                    .header("content-type", FHIR_JSON)
                    .body(body.to_vec());
            }
            for (name, value) in headers {
                request = request.header(*name, value);
            }
            request
                .send()
                .with_context(|| format!("cannot reach {}", self.base))
        };
        let response = attempt(&self.token()?)?;
        if response.status().as_u16() == 401 {
            return attempt(&self.renew()?);
        }
        Ok(response)
    }

    /// A FHIR interaction whose answer is JSON; refusals are errors that
    /// show the OperationOutcome.
    pub fn fhir(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, String)],
    ) -> anyhow::Result<Value> {
        let bytes = body.map(serde_json::to_vec).transpose()?;
        json_or_outcome(self.send(method, path, bytes.as_deref(), headers)?)
    }

    pub fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.fhir(Method::GET, path, None, &[])
    }

    /// POSTs a transaction or batch Bundle (already serialized) to `/fhir`.
    pub fn post_bundle(&self, bundle: &[u8]) -> anyhow::Result<Value> {
        json_or_outcome(self.send(Method::POST, "/fhir", Some(bundle), &[])?)
    }

    /// Signs a transaction for this node's network with the client's key.
    pub fn sign(&self, tx_type: &str, body: Value) -> Vec<u8> {
        TxBuilder {
            network: &self.node.network,
            tx_type,
            nonce: hygeia_auth::random_nonce(),
            body,
        }
        .sign(&self.key)
    }
}

fn token(args: TokenArgs) -> anyhow::Result<ExitCode> {
    let key = read_key(&args.key)?;
    let info = NodeInfo::fetch(&args.node)?;
    let token = fetch_token(
        &http_client()?,
        &args.node,
        &key,
        &info.node_did,
        args.purpose,
        args.break_glass.as_deref(),
    )?;
    if args.json {
        print_line(
            &json!({"access_token": token.access_token, "token_type": "Bearer", "expires_in": token.expires_in, "scope": token.scope})
            .to_string(),
        );
    } else {
        print_line(&token.access_token);
        if std::io::stderr().is_terminal() {
            eprintln!(
                "token for {} (purpose {}{}), valid {} s",
                key.did(),
                args.purpose,
                if args.break_glass.is_some() {
                    ", break-glass"
                } else {
                    ""
                },
                token.expires_in
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// An error on one line, its OperationOutcome issues separated by `;`.
fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}").replace("\n  ", "; ")
}

/// Resolves a Consent's literal references by reading them from the node
/// with the signer's token, as the node itself will.
struct NodeResolver<'a> {
    client: &'a FhirClient,
    /// Why references did not resolve, to explain the mapper's issues.
    notes: RefCell<Vec<String>>,
}

impl NodeResolver<'_> {
    fn note(&self, text: String) {
        self.notes.borrow_mut().push(text);
    }

    fn fetch(&self, reference: &Value) -> Option<(String, Value)> {
        let text = reference.get("reference")?.as_str()?;
        let Some(target) = parse_local(text, Some(&self.client.fhir_base())) else {
            self.note(format!(
                "{text:?} is not a reference to a resource on this node (Type/id)"
            ));
            return None;
        };
        let key = target.key();
        match self.client.get(&format!("/fhir/{key}")) {
            Ok(resource) => Some((key, resource)),
            Err(e) => {
                self.note(format!("reading {key}: {}", one_line(&e)));
                None
            }
        }
    }
}

impl Resolver for NodeResolver<'_> {
    fn did(&self, reference: &Value) -> Option<String> {
        if let Some(did) = did_of_reference(reference) {
            return Some(did.to_owned());
        }
        let text = reference.get("reference")?.as_str()?;
        let target = parse_local(text, Some(&self.client.fhir_base()));
        if let Some(target) = &target {
            if !matches!(
                target.resource_type,
                ResourceType::Patient | ResourceType::Practitioner | ResourceType::Organization
            ) {
                self.note(format!(
                    "{text}: only a Patient, Practitioner or Organization names a party"
                ));
                return None;
            }
        }
        let (key, resource) = self.fetch(reference)?;
        match did_of_resource(&resource) {
            Some(did) => Some(did.to_owned()),
            None => {
                self.note(format!(
                    "{key} has no identifier with system {DID_IDENTIFIER_SYSTEM} holding a DID"
                ));
                None
            }
        }
    }

    fn record(&self, reference: &Value) -> Option<String> {
        if let Some(record) = record_of_reference(reference) {
            return Some(record.to_owned());
        }
        let (key, resource) = self.fetch(reference)?;
        let version = resource["meta"]["versionId"].as_str()?.to_owned();
        let provenance = match self.client.get(&format!("/fhir/Provenance?target={key}")) {
            Ok(bundle) => bundle,
            Err(e) => {
                self.note(format!("reading the Provenance of {key}: {}", one_line(&e)));
                return None;
            }
        };
        let current = format!("{key}/_history/{version}");
        let found = provenance["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|e| e["resource"]["target"].as_array().into_iter().flatten())
            .find(|t| {
                t["reference"]
                    .as_str()
                    .is_some_and(|r| r == current || r.ends_with(&format!("/{current}")))
            })
            .and_then(record_of_reference);
        if found.is_none() {
            self.note(format!("no record id found for {current}"));
        }
        found.map(str::to_owned)
    }
}

/// The grant a Consent means, with references resolved through the node.
pub fn consent_terms(client: &FhirClient, consent: &Value) -> anyhow::Result<GrantTerms> {
    if let Err(issues) = hygeia_fhir::validate::validate(consent, Some(ResourceType::Consent)) {
        bail!(
            "the Consent is not a valid FHIR R5 Consent:\n{}",
            issue_lines(&issues)
        );
    }
    let resolver = NodeResolver {
        client,
        notes: RefCell::new(Vec::new()),
    };
    consent_to_terms(consent, &resolver).map_err(|issues| {
        let mut text = format!(
            "the Consent cannot be recorded as a grant (docs/fhir.md, \"Consent as FHIR Consent\"):\n{}",
            issue_lines(&issues)
        );
        for note in resolver.notes.borrow().iter() {
            text.push_str(&format!("\n  note: {note}"));
        }
        anyhow!(text)
    })
}

/// The body of the `consent.grant` transaction carrying `terms`, as the
/// node expects it (the ledger's `ConsentGrant`).
pub fn grant_body(terms: &GrantTerms) -> anyhow::Result<Value> {
    let mut body = json!({
        "patient": terms.patient,
        "grantee": terms.grantee,
        "scope": serde_json::to_value(&terms.scope)?,
        "actions": serde_json::to_value(&terms.actions)?,
        "purpose": terms.purpose.code(),
        "not_before": terms.not_before,
        "not_after": terms.not_after,
    });
    if !terms.jurisdictions.is_empty() {
        body["jurisdictions"] = json!(terms.jurisdictions);
    }
    Ok(body)
}

/// The `X-Provenance` header carrying a signed transaction: a compact
/// Provenance whose `signature[0].data` is the transaction, base64.
pub fn provenance_header(signer_did: &str, target: &str, signed_tx: &[u8]) -> String {
    let who = json!({"identifier": {"system": DID_IDENTIFIER_SYSTEM, "value": signer_did}});
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let when = hygeia_fhir::date::format_instant(now_ms);
    json!({
        "resourceType": "Provenance",
        "recorded": when,
        "target": [{"reference": target}],
        "agent": [{"who": who}],
        "signature": [{
            "type": [{"system": SIGNATURE_TYPE_SYSTEM, "code": AUTHOR_SIGNATURE}],
            "when": when,
            "who": who,
            "sigFormat": "application/json",
            "data": base64::engine::general_purpose::STANDARD.encode(signed_tx),
        }],
    })
    .to_string()
}

/// Records a Consent as a grant signed by the client's key: maps it, signs
/// the `consent.grant`, POSTs both. Returns the created Consent (its id is
/// the grant id).
pub fn grant_consent(client: &FhirClient, consent: &Value) -> anyhow::Result<Value> {
    let terms = consent_terms(client, consent)?;
    let raw = client.sign("consent.grant", grant_body(&terms)?);
    let header = provenance_header(&client.did(), "Consent", &raw);
    let created = client
        .fhir(
            Method::POST,
            "/fhir/Consent",
            Some(consent),
            &[("x-provenance", header)],
        )
        .context("the node refused the Consent")?;
    let expected = hex::encode(hygeia_ledger::merkle::leaf_hash(&raw).0);
    if created["id"].as_str() != Some(expected.as_str()) {
        eprintln!(
            "warning: the created Consent's id {} is not the signed grant's id {expected}",
            created["id"]
        );
    }
    Ok(created)
}

/// Revokes grant `id` with a `consent.revoke` signed by the client's key.
pub fn revoke_consent(client: &FhirClient, id: &str) -> anyhow::Result<Value> {
    if !is_commitment(id) {
        bail!("{id:?} is not a grant id: a grant id (the Consent's id) is 64 lowercase hex digits");
    }
    let raw = client.sign("consent.revoke", json!({ "grant": id }));
    let header = provenance_header(&client.did(), &format!("Consent/{id}"), &raw);
    client
        .fhir(
            Method::DELETE,
            &format!("/fhir/Consent/{id}"),
            None,
            &[("x-provenance", header)],
        )
        .with_context(|| format!("the node refused to revoke Consent/{id}"))
}

fn consent_grant(args: ConsentGrantArgs) -> anyhow::Result<ExitCode> {
    let bytes = read_input(&args.consent)?;
    let consent: Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not JSON", args.consent.display()))?;
    let client = FhirClient::connect(
        &args.node,
        read_key(&args.key)?,
        PurposeOfUse::Treatment,
        None,
    )?;
    if args.dry_run {
        let terms = consent_terms(&client, &consent)?;
        print_line(&serde_json::to_string_pretty(&grant_body(&terms)?)?);
        eprintln!("not submitted (--dry-run): this is the consent.grant body the Consent maps to");
        return Ok(ExitCode::SUCCESS);
    }
    let created = grant_consent(&client, &consent)?;
    print_line(&serde_json::to_string_pretty(&created)?);
    eprintln!(
        "granted: Consent/{} (revoke with: hygeia fhir consent revoke --id {})",
        created["id"].as_str().unwrap_or("?"),
        created["id"].as_str().unwrap_or("?")
    );
    Ok(ExitCode::SUCCESS)
}

fn consent_revoke(args: ConsentRevokeArgs) -> anyhow::Result<ExitCode> {
    if !is_commitment(&args.id) {
        bail!(
            "--id {:?} is not a grant id: a grant id (the Consent's id) is 64 lowercase hex digits",
            args.id
        );
    }
    let client = FhirClient::connect(
        &args.node,
        read_key(&args.key)?,
        PurposeOfUse::Treatment,
        None,
    )?;
    let outcome = revoke_consent(&client, &args.id)?;
    print_line(&serde_json::to_string_pretty(&outcome)?);
    Ok(ExitCode::SUCCESS)
}

/// A Consent of the supported shape: `subject` (the patient) permits
/// `grantee` the `actions` (consentaction codes: access, correct) for
/// `purpose` from `start` to `end` (Unix seconds), over records of the
/// given Hygeia `categories`.
pub fn consent_resource(
    subject: Value,
    grantee: Value,
    actions: &[&str],
    purpose: PurposeOfUse,
    categories: &[&str],
    start: i64,
    end: i64,
) -> Value {
    use hygeia_fhir::consent::{CATEGORY_SYSTEM, CONSENT_ACTION_SYSTEM};
    json!({
        "resourceType": "Consent",
        "status": "active",
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}]}],
        "subject": subject,
        "decision": "permit",
        "provision": [{
            "period": {"start": date_time(start), "end": date_time(end)},
            "actor": [{
                "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP", "display": "information recipient"}]},
                "reference": grantee,
            }],
            "action": actions
                .iter()
                .map(|a| json!({"coding": [{"system": CONSENT_ACTION_SYSTEM, "code": a}]}))
                .collect::<Vec<_>>(),
            "purpose": [{"system": hygeia_policy::PURPOSE_OF_USE_SYSTEM, "code": purpose.code(), "display": purpose.display()}],
            "securityLabel": categories
                .iter()
                .map(|c| json!({"system": CATEGORY_SYSTEM, "code": c}))
                .collect::<Vec<_>>(),
        }],
    })
}
