//! `hygeia shc`: SMART Health Cards (<https://spec.smarthealth.cards>) —
//! export a patient's card from a node (`$health-cards-issue`, decided and
//! logged like reads), and verify a card file or QR text offline against
//! an issuer's key set.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{ArgGroup, Args, Subcommand};
use hygeia_credentials::shc::{self, Jwks, ShcError, VerifiedHealthCard};
use hygeia_policy::PurposeOfUse;
use reqwest::Method;
use serde_json::{json, Value};

use super::fhir::{
    http_client, parse_purpose, print_line, read_input, read_key, unix_now, FhirClient,
    DEFAULT_NODE,
};

const IMMUNIZATION: &str = "https://smarthealth.cards#immunization";
const LABORATORY: &str = "https://smarthealth.cards#laboratory";
const COVID19: &str = "https://smarthealth.cards#covid19";

#[derive(Subcommand)]
pub enum ShcCommand {
    /// Export a patient's SMART Health Card from a node
    ///
    /// Gets a bearer token with your key, calls
    /// POST /fhir/Patient/<id>/$health-cards-issue and writes the card as a
    /// .smart-health-card file and as QR text (shc:/...), then checks the
    /// card against the node's published key set and prints what it holds.
    ///
    /// The card holds the Patient (name and birth date only) and the
    /// resources of the requested kinds you may read: the node decides each
    /// like a read and logs every decision on the ledger, so in practice a
    /// patient exports their own card. Several --type are a logical AND: the
    /// card holds them all, or no card is made.
    ///
    ///   hygeia shc export --key patient.key --node http://127.0.0.1:7000 \
    ///     --patient p1 --type immunization --out card.smart-health-card --qr qr.txt
    ///
    /// Without --out and --qr the file is printed on standard output.
    /// Exit status: 0 a card was written, 1 no card (nothing of that kind you
    /// may read), 2 an error (a Patient you may not read answers 404, as if
    /// it did not exist).
    #[command(verbatim_doc_comment)]
    Export(ExportArgs),
    /// Verify a SMART Health Card: file, QR text or JWS
    ///
    /// Reads a .smart-health-card file, a text file of QR contents (shc:/...,
    /// one QR per line; parts of a multi-part card on consecutive lines,
    /// cards separated by a blank line) or a bare JWS ('-' reads standard
    /// input), checks each card's ES256 signature with the trusted issuer's
    /// key set and its validity period, and prints its issuer, types, issue
    /// time and the resources it holds (by type and code).
    ///
    /// Trust one issuer:
    ///   --node <url>   the issuer named by the node (GET /v1/node) with the
    ///                  key set it serves at /.well-known/jwks.json
    ///   --jwks <file>  a key set you hold (its issuer pinned with --issuer,
    ///                  or whichever issuer the card names)
    ///
    ///   hygeia shc verify --node http://127.0.0.1:7000 card.smart-health-card
    ///   hygeia shc verify --jwks issuer-jwks.json --issuer https://issuer.example qr.txt
    ///
    /// A refusal prints its stable code and reason, e.g.
    ///   refused: shc-bad-signature: this card's signature is not valid ...
    /// Exit status: 0 every card verified, 1 a card was refused, 2 an error
    /// (unreadable input, unreachable node, unusable key set).
    #[command(verbatim_doc_comment)]
    Verify(VerifyArgs),
}

#[derive(Args)]
pub struct ExportArgs {
    /// Your key file (the token's requester; usually the patient's key).
    #[arg(long, short)]
    key: PathBuf,
    /// The node's URL.
    #[arg(long, default_value = DEFAULT_NODE)]
    node: String,
    /// The Patient resource's id on the node (Patient/<id>).
    #[arg(long)]
    patient: String,
    /// What the card holds: immunization, laboratory (lab results), covid19
    /// (COVID-19 vaccines and tests only), or a credentialType URI. Repeat
    /// for a card holding several (all of them, or no card).
    #[arg(long = "type", value_name = "TYPE", required = true, value_parser = parse_card_type)]
    types: Vec<String>,
    /// Only resources updated at or after this FHIR dateTime (2021, 2021-03,
    /// 2021-03-01, 2021-03-01T09:00:00Z).
    #[arg(long)]
    since: Option<String>,
    /// Purpose of use the token carries (HL7 v3): PATRQT (patient request),
    /// TREAT, ...; every decision is logged with it.
    #[arg(long, default_value = "PATRQT", value_parser = parse_purpose)]
    purpose: PurposeOfUse,
    /// Write the .smart-health-card file here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write the QR text (shc:/..., one line per QR code) here.
    #[arg(long)]
    qr: Option<PathBuf>,
}

#[derive(Args)]
#[command(group(ArgGroup::new("trust").required(true).args(["jwks", "node"])))]
pub struct VerifyArgs {
    /// A JWK Set file (as served at <issuer>/.well-known/jwks.json).
    #[arg(long)]
    jwks: Option<PathBuf>,
    /// With --jwks: the only issuer (iss) to accept.
    #[arg(long, requires = "jwks")]
    issuer: Option<String>,
    /// Trust the issuer of this node: its URL (GET /v1/node and
    /// /.well-known/jwks.json are fetched from it).
    #[arg(long)]
    node: Option<String>,
    /// The card: a .smart-health-card file, QR text or a JWS; '-' for
    /// standard input.
    input: PathBuf,
}

pub fn run(command: ShcCommand) -> anyhow::Result<ExitCode> {
    match command {
        ShcCommand::Export(args) => export(args),
        ShcCommand::Verify(args) => verify(args),
    }
}

/// `--type`: a short name, or a URI (or resource type) passed as it is.
fn parse_card_type(text: &str) -> Result<String, String> {
    match text {
        "immunization" => Ok(IMMUNIZATION.into()),
        "laboratory" | "lab" => Ok(LABORATORY.into()),
        "covid19" => Ok(COVID19.into()),
        uri if uri.contains(':') || uri.starts_with(|c: char| c.is_ascii_uppercase()) => {
            Ok(uri.into())
        }
        other => Err(format!(
            "{other:?} is not a card type: immunization, laboratory, covid19, or a credentialType URI"
        )),
    }
}

/// An issuer trusted for verification, and its key set.
struct Trust {
    /// `None`: whichever issuer the card names (keys given by the user).
    issuer: Option<String>,
    jwks: Jwks,
    source: String,
}

impl Trust {
    fn keys_for(&self, iss: &str) -> Option<Jwks> {
        match &self.issuer {
            Some(trusted) if trusted != iss => None,
            _ => Some(self.jwks.clone()),
        }
    }

    /// The node's issuer URL and the key set it serves.
    fn of_node(node: &str) -> anyhow::Result<Trust> {
        let node = node.trim_end_matches('/');
        let info = super::node_info(node)?;
        let issuer = info["health_cards"]["issuer"]
            .as_str()
            .context("the node does not say its health-card issuer (health_cards.issuer in GET /v1/node)")?
            .to_owned();
        let url = format!("{node}/.well-known/jwks.json");
        let response = http_client()?
            .get(&url)
            .send()
            .with_context(|| format!("cannot reach {url}"))?;
        if !response.status().is_success() {
            bail!("{url} answered {}", response.status());
        }
        let bytes = response.bytes().context("the key set was cut off")?;
        let jwks = Jwks::from_json(&bytes)
            .map_err(|e| anyhow::anyhow!("{url} is not a usable key set: {} ({})", e, e.code()))?;
        Ok(Trust {
            issuer: Some(issuer),
            jwks,
            source: url,
        })
    }

    fn of_file(path: &Path, issuer: Option<String>) -> anyhow::Result<Trust> {
        let bytes = read_input(path)?;
        let jwks = Jwks::from_json(&bytes).map_err(|e| {
            anyhow::anyhow!(
                "{} is not a usable key set: {} ({})",
                path.display(),
                e,
                e.code()
            )
        })?;
        Ok(Trust {
            issuer,
            jwks,
            source: path.display().to_string(),
        })
    }
}

fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let id_ok = !args.patient.is_empty()
        && args.patient.len() <= 64
        && args
            .patient
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if !id_ok {
        bail!(
            "--patient takes a FHIR id (letters, digits, '-' and '.', at most 64), not {:?}",
            args.patient
        );
    }
    let key = read_key(&args.key)?;
    let client = FhirClient::connect(&args.node, key, args.purpose, None)?;
    let mut parameter: Vec<Value> = args
        .types
        .iter()
        .map(|t| json!({ "name": "credentialType", "valueUri": t }))
        .collect();
    if let Some(since) = &args.since {
        parameter.push(json!({ "name": "_since", "valueDateTime": since }));
    }
    let body = json!({ "resourceType": "Parameters", "parameter": parameter });
    let answer = client.fhir(
        Method::POST,
        &format!("/fhir/Patient/{}/$health-cards-issue", args.patient),
        Some(&body),
        &[],
    )?;
    let cards: Vec<String> = answer["parameter"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["name"] == "verifiableCredential")
        .filter_map(|p| p["valueString"].as_str().map(str::to_owned))
        .collect();
    if cards.is_empty() {
        eprintln!(
            "no card: the node has nothing of that kind that {} may read for Patient/{} (or not all of the kinds asked for)",
            client.did(),
            args.patient
        );
        return Ok(ExitCode::from(1));
    }

    // A card is only worth handing out if it verifies with the key set the
    // node publishes.
    let trust = Trust::of_node(&args.node)?;
    let now = unix_now();
    let mut verified = Vec::with_capacity(cards.len());
    for jws in &cards {
        let card = shc::verify(jws, &|iss| trust.keys_for(iss), now).map_err(|e| {
            anyhow::anyhow!(
                "the node's card does not verify with its own key set ({}): {} ({})",
                trust.source,
                e,
                e.code()
            )
        })?;
        verified.push(card);
    }

    let refs: Vec<&str> = cards.iter().map(String::as_str).collect();
    let file = shc::file_json(&refs);
    let qr_groups: Vec<Vec<String>> = cards
        .iter()
        .map(|jws| shc::encode_qr(jws).map_err(|e| anyhow::anyhow!("{e}")))
        .collect::<anyhow::Result<_>>()?;
    let to_stdout = args.out.is_none() && args.qr.is_none();
    if let Some(path) = &args.out {
        std::fs::write(path, &file).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &args.qr {
        let text: String = qr_groups
            .iter()
            .map(|parts| parts.join("\n") + "\n")
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let summary = |line: String| {
        if to_stdout {
            eprintln!("{line}");
        } else {
            print_line(&line);
        }
    };
    for (index, card) in verified.iter().enumerate() {
        summary(format!(
            "card {} of {} for Patient/{}, verified with {}",
            index + 1,
            verified.len(),
            args.patient,
            trust.source
        ));
        for line in describe(card) {
            summary(format!("  {line}"));
        }
        let parts = &qr_groups[index];
        summary(format!(
            "  QR: {} ({} characters of JWS)",
            if parts.len() == 1 {
                "1 code".to_owned()
            } else {
                format!("{} codes (multi-part)", parts.len())
            },
            cards[index].len()
        ));
    }
    if let Some(path) = &args.out {
        summary(format!("wrote {}", path.display()));
    }
    if let Some(path) = &args.qr {
        summary(format!("wrote {}", path.display()));
    }
    if to_stdout {
        print_line(&file);
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let trust = match (&args.node, &args.jwks) {
        (Some(node), _) => Trust::of_node(node)?,
        (None, Some(path)) => Trust::of_file(path, args.issuer.clone())?,
        (None, None) => bail!("give --node or --jwks: the issuer to trust"),
    };
    let bytes = read_input(&args.input)?;
    let text = String::from_utf8(bytes)
        .with_context(|| format!("{} is not text", args.input.display()))?;
    let cards = read_cards(&text);
    let now = unix_now();
    let mut refused = 0;
    for (index, card) in cards.iter().enumerate() {
        if cards.len() > 1 {
            print_line(&format!("card {} of {}:", index + 1, cards.len()));
        }
        let outcome = card
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|jws| shc::verify(jws, &|iss| trust.keys_for(iss), now));
        match outcome {
            Ok(card) => {
                print_line(&format!(
                    "valid SMART Health Card (key set: {})",
                    trust.source
                ));
                for line in describe(&card) {
                    print_line(&format!("  {line}"));
                }
            }
            Err(e) => {
                refused += 1;
                print_line(&format!("refused: {}: {e}", e.code()));
            }
        }
    }
    Ok(if refused == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The cards in a file's text: QR texts (groups separated by blank
/// lines), a `.smart-health-card` file, or one bare JWS.
fn read_cards(text: &str) -> Vec<Result<String, ShcError>> {
    let trimmed = text.trim();
    if trimmed
        .get(..shc::QR_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(shc::QR_PREFIX))
    {
        let mut groups: Vec<Vec<&str>> = vec![Vec::new()];
        for line in trimmed.lines().map(str::trim) {
            match (line.is_empty(), groups.last_mut()) {
                (true, Some(last)) if !last.is_empty() => groups.push(Vec::new()),
                (false, Some(last)) => last.push(line),
                _ => {}
            }
        }
        return groups
            .into_iter()
            .filter(|g| !g.is_empty())
            .map(|g| shc::decode_qr(&g))
            .collect();
    }
    if trimmed.starts_with('{') {
        return match shc::parse_file(trimmed.as_bytes()) {
            Ok(list) => list.into_iter().map(Ok).collect(),
            Err(e) => vec![Err(e)],
        };
    }
    vec![Ok(trimmed.to_owned())]
}

/// What a verified card says, one line each.
fn describe(card: &VerifiedHealthCard) -> Vec<String> {
    let mut lines = vec![
        format!("issuer: {}", card.iss()),
        format!("key: {}", card.kid()),
        format!("types: {}", card.types().join(", ")),
        format!("issued (nbf): {}", instant(card.nbf())),
    ];
    if let Some(exp) = card.exp() {
        lines.push(format!("expires: {}", instant(exp)));
    }
    let entries: Vec<&Value> = card.fhir_bundle()["entry"]
        .as_array()
        .map(|e| e.iter().collect())
        .unwrap_or_default();
    lines.push(format!(
        "FHIR {}, {} resource{}:",
        card.fhir_version(),
        entries.len(),
        if entries.len() == 1 { "" } else { "s" }
    ));
    for entry in entries {
        lines.push(format!(
            "  {} {}",
            entry["fullUrl"].as_str().unwrap_or("?"),
            resource_line(&entry["resource"])
        ));
    }
    lines
}

fn instant(seconds: f64) -> String {
    let ms = (seconds * 1000.0) as i64;
    format!(
        "{} ({seconds})",
        hygeia_fhir::date::format_instant(ms).replace(".000Z", "Z")
    )
}

/// `Type code [value] [date]` of one bundled resource.
fn resource_line(resource: &Value) -> String {
    let kind = resource["resourceType"].as_str().unwrap_or("?");
    let mut parts = vec![kind.to_owned()];
    match kind {
        "Patient" => {
            let name = &resource["name"][0];
            let given: Vec<&str> = name["given"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let family = name["family"].as_str().unwrap_or("");
            parts.push(format!("{family}, {}", given.join(" ")));
            if let Some(born) = resource["birthDate"].as_str() {
                parts.push(format!("born {born}"));
            }
        }
        _ => {
            let concept = match kind {
                "Immunization" => &resource["vaccineCode"],
                _ => &resource["code"],
            };
            parts.push(coding(concept));
            if let Some(value) = value_text(resource) {
                parts.push(format!("= {value}"));
            }
            if let Some(date) = resource["occurrenceDateTime"]
                .as_str()
                .or_else(|| resource["effectiveDateTime"].as_str())
            {
                parts.push(date.to_owned());
            }
        }
    }
    parts.join("  ")
}

fn coding(concept: &Value) -> String {
    let codings: Vec<String> = concept["coding"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            format!(
                "{}|{}",
                c["system"].as_str().unwrap_or(""),
                c["code"].as_str().unwrap_or("?")
            )
        })
        .collect();
    if codings.is_empty() {
        concept["text"].as_str().unwrap_or("(no code)").to_owned()
    } else {
        codings.join(", ")
    }
}

fn value_text(resource: &Value) -> Option<String> {
    if let Some(q) = resource.get("valueQuantity") {
        let unit = q["unit"]
            .as_str()
            .or_else(|| q["code"].as_str())
            .unwrap_or("");
        return Some(format!("{} {unit}", q["value"]).trim_end().to_owned());
    }
    if let Some(c) = resource.get("valueCodeableConcept") {
        return Some(coding(c));
    }
    for name in ["valueString", "valueBoolean", "valueInteger"] {
        if let Some(v) = resource.get(name) {
            return Some(v.as_str().map_or_else(|| v.to_string(), str::to_owned));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_types() {
        assert_eq!(parse_card_type("immunization").unwrap(), IMMUNIZATION);
        assert_eq!(parse_card_type("lab").unwrap(), LABORATORY);
        assert_eq!(parse_card_type("covid19").unwrap(), COVID19);
        assert_eq!(parse_card_type("Immunization").unwrap(), "Immunization");
        assert_eq!(
            parse_card_type("https://smarthealth.cards#x").unwrap(),
            "https://smarthealth.cards#x"
        );
        assert!(parse_card_type("imunization").is_err());
    }

    #[test]
    fn inputs_are_recognised() {
        let qr = shc::encode_qr("a.b.c").unwrap().remove(0);
        let cards = read_cards(&format!("{qr}\n\n{qr}\n"));
        assert_eq!(cards.len(), 2);
        assert_eq!(cards[0].as_deref(), Ok("a.b.c"));
        let cards = read_cards(&shc::file_json(&["a.b.c", "d.e.f"]));
        assert_eq!(cards.len(), 2);
        assert_eq!(read_cards(" a.b.c\n"), vec![Ok("a.b.c".to_owned())]);
        let broken = read_cards("shc:/5");
        assert_eq!(broken[0].as_ref().unwrap_err().code(), "shc-malformed-qr");
        let broken = read_cards("{\"verifiableCredential\": []}");
        assert_eq!(broken[0].as_ref().unwrap_err().code(), "shc-malformed-file");
    }

    #[test]
    fn resources_are_described_by_type_and_code() {
        let line = resource_line(&json!({
            "resourceType": "Observation",
            "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
            "valueQuantity": {"value": 6.1, "unit": "%"},
            "effectiveDateTime": "2025-03-04"
        }));
        assert_eq!(
            line,
            "Observation  http://loinc.org|4548-4  = 6.1 %  2025-03-04"
        );
        let line = resource_line(&json!({
            "resourceType": "Patient",
            "name": [{"family": "Anyperson", "given": ["John", "B."]}],
            "birthDate": "1951-01-20"
        }));
        assert_eq!(line, "Patient  Anyperson, John B.  born 1951-01-20");
    }
}
