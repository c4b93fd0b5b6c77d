//! `hygeia import`: loads FHIR resources into a node through its FHIR API,
//! as transaction Bundles written with the importer's token.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use hygeia_fhir::types::ResourceType;
use hygeia_policy::PurposeOfUse;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use super::fhir::{
    outcome_lines, parse_purpose, print_line, read_input, read_key, FhirClient, DEFAULT_NODE,
};

/// Import FHIR resources (a Bundle, one resource, or NDJSON) as transactions
///
/// The file is read whole, checked, then written with your token (you are
/// the author of every version written):
///
/// - a .json file holding a transaction or batch Bundle is POSTed to /fhir
///   as it is (at most 1,000 entries);
///
/// - a .json file holding a Bundle of another type (collection, searchset,
///   document...) or a single resource: its resources are written as
///   transactions, as for NDJSON;
///
/// - a .ndjson file (FHIR bulk data: one resource per line, e.g. from
///   $export): resources are grouped into transaction Bundles of
///   --per-bundle entries; each entry is PUT Type/id when the resource has an
///   id (so importing the same file again updates, it does not duplicate)
///   and POST Type otherwise.
///
/// Directory resources (Organization, Practitioner, Device, ResearchStudy)
/// are written first, then Patients, then the rest in file order, and Groups
/// last, so that references point to resources already written. Each Bundle
/// is all or nothing; on a refused Bundle the import stops, prints the
/// node's OperationOutcome and says how many Bundles were applied before it.
///
/// A patient may write their own records; anyone else needs a write
/// (correct) grant from each patient, and directory writes need membership
/// of a registered organization. '-' reads standard input (JSON or NDJSON).
#[derive(Args)]
#[command(verbatim_doc_comment)]
pub struct ImportArgs {
    /// A .json file (a Bundle or one resource) or a .ndjson file (one
    /// resource per line); '-' reads standard input.
    file: PathBuf,
    /// Your key file: you write, and author, every resource.
    #[arg(long, short)]
    key: PathBuf,
    /// The node's URL.
    #[arg(long, default_value = DEFAULT_NODE)]
    node: String,
    /// HL7 v3 purpose of use of the writes.
    #[arg(long, default_value = "TREAT", value_parser = parse_purpose)]
    purpose: PurposeOfUse,
    /// Entries per transaction Bundle (1 to 1000).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1000))]
    per_bundle: u64,
    /// Print the summary as one JSON line.
    #[arg(long)]
    json: bool,
}

/// What the input asks for.
enum Plan {
    /// A transaction or batch Bundle, sent as it is.
    AsIs { bundle: Value, kind: String },
    /// Resources to write as transactions, in order.
    Resources(Vec<Value>),
}

/// Written resources per type: (created, updated).
type Counts = BTreeMap<String, (u64, u64)>;

pub fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let bytes = read_input(&args.file)?;
    let plan = plan(&args.file, &bytes)?;
    drop(bytes);
    let key = read_key(&args.key)?;
    let client = FhirClient::connect(&args.node, key, args.purpose, None)?;
    let started = Instant::now();
    let mut counts = Counts::new();
    let (bundles, failed) = match plan {
        Plan::AsIs { bundle, kind } => {
            let failed = send_as_is(&client, &bundle, &kind, &mut counts)?;
            (1, failed)
        }
        Plan::Resources(resources) => {
            let bundles =
                write_resources(&client, resources, args.per_bundle as usize, &mut counts)?;
            (bundles, 0)
        }
    };
    print_summary(&counts, bundles, started.elapsed(), args.json);
    if failed > 0 {
        bail!("the node refused {failed} entries of the batch (listed above); the others were written");
    }
    Ok(ExitCode::SUCCESS)
}

fn is_ndjson(path: &Path) -> Option<bool> {
    match path.extension().and_then(|e| e.to_str()) {
        Some(ext) if ext.eq_ignore_ascii_case("ndjson") || ext.eq_ignore_ascii_case("jsonl") => {
            Some(true)
        }
        Some(ext) if ext.eq_ignore_ascii_case("json") => Some(false),
        _ => None,
    }
}

fn plan(path: &Path, bytes: &[u8]) -> anyhow::Result<Plan> {
    let name = path.display();
    let text = std::str::from_utf8(bytes).with_context(|| format!("{name} is not UTF-8 text"))?;
    let ndjson = match is_ndjson(path) {
        Some(ndjson) => ndjson,
        // Standard input or another extension: one JSON value is JSON,
        // anything else is read as NDJSON.
        None => serde_json::from_str::<Value>(text).is_err(),
    };
    let resources = if ndjson {
        let mut resources = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let value: Value = serde_json::from_str(line)
                .with_context(|| format!("{name}, line {}: not JSON", i + 1))?;
            check_resource(&value).with_context(|| format!("{name}, line {}", i + 1))?;
            resources.push(value);
        }
        resources
    } else {
        let value: Value =
            serde_json::from_str(text).with_context(|| format!("{name} is not JSON"))?;
        if value["resourceType"] == "Bundle" {
            let kind = value["type"].as_str().unwrap_or("").to_owned();
            if kind == "transaction" || kind == "batch" {
                return Ok(Plan::AsIs {
                    bundle: value,
                    kind,
                });
            }
            let mut resources = Vec::new();
            for (i, entry) in value["entry"].as_array().into_iter().flatten().enumerate() {
                let Some(resource) = entry.get("resource") else {
                    continue;
                };
                check_resource(resource).with_context(|| format!("{name}: Bundle.entry[{i}]"))?;
                resources.push(resource.clone());
            }
            resources
        } else {
            check_resource(&value).with_context(|| format!("{name}"))?;
            vec![value]
        }
    };
    if resources.is_empty() {
        bail!("{name} holds no resources");
    }
    Ok(Plan::Resources(order(resources)))
}

/// Refuses what the node would refuse for sure, before anything is sent.
fn check_resource(resource: &Value) -> anyhow::Result<()> {
    let Some(name) = resource.get("resourceType").and_then(Value::as_str) else {
        bail!("not a FHIR resource (no resourceType)");
    };
    let resource_type: ResourceType = name
        .parse()
        .map_err(|e: hygeia_fhir::types::UnsupportedType| anyhow::anyhow!("{e}"))?;
    match resource_type {
        ResourceType::Consent => bail!(
            "a Consent cannot be imported: it is the patient's signed grant; use `hygeia fhir consent grant`"
        ),
        ResourceType::AuditEvent | ResourceType::Provenance => bail!(
            "{name} cannot be written: the node generates it from the ledger"
        ),
        _ => {}
    }
    if let Err(issues) = hygeia_fhir::validate::validate(resource, Some(resource_type)) {
        let id = resource["id"].as_str().unwrap_or("(no id)");
        bail!(
            "{name}/{id} is not valid (nothing was sent):\n{}",
            super::fhir::issue_lines(&issues)
        );
    }
    Ok(())
}

/// Write order: what others refer to first. Within a rank, file order.
fn order(mut resources: Vec<Value>) -> Vec<Value> {
    fn rank(resource: &Value) -> u8 {
        match resource["resourceType"].as_str().unwrap_or("") {
            "Organization" | "Practitioner" | "Device" | "ResearchStudy" => 0,
            "Patient" => 1,
            "Group" => 3,
            _ => 2,
        }
    }
    resources.sort_by_key(rank);
    resources
}

/// A bar over resources (drawn only on a terminal), ticking while a
/// Bundle is being written.
fn progress(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template(
            "importing [{bar:40}] {pos}/{len} resources ({per_sec}, {elapsed}, eta {eta})",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(250));
    bar
}

/// The resource type named by an entry (its request URL, or its resource).
fn entry_type(entry: &Value) -> String {
    entry["resource"]["resourceType"]
        .as_str()
        .or_else(|| {
            entry["request"]["url"]
                .as_str()
                .and_then(|u| u.trim_matches('/').split('/').next())
        })
        .unwrap_or("?")
        .to_owned()
}

/// Adds the entries of a response to the counts; returns the refused
/// entries (batch) as (position, status, outcome).
fn count_response(
    sent: &[Value],
    response: &Value,
    counts: &mut Counts,
) -> Vec<(usize, String, Value)> {
    let mut refused = Vec::new();
    let answers = response["entry"].as_array().cloned().unwrap_or_default();
    for (i, entry) in sent.iter().enumerate() {
        let status = answers
            .get(i)
            .and_then(|a| a["response"]["status"].as_str())
            .unwrap_or("")
            .to_owned();
        if status.starts_with("201") {
            counts.entry(entry_type(entry)).or_default().0 += 1;
        } else if status.starts_with('2') {
            counts.entry(entry_type(entry)).or_default().1 += 1;
        } else {
            refused.push((
                i,
                status,
                answers
                    .get(i)
                    .map(|a| a["response"]["outcome"].clone())
                    .unwrap_or(Value::Null),
            ));
        }
    }
    refused
}

/// Sends a transaction or batch Bundle as it is; returns how many entries
/// of a batch were refused.
fn send_as_is(
    client: &FhirClient,
    bundle: &Value,
    kind: &str,
    counts: &mut Counts,
) -> anyhow::Result<usize> {
    let entries = bundle["entry"].as_array().cloned().unwrap_or_default();
    let bar = progress(entries.len() as u64);
    let answer = client.post_bundle(&serde_json::to_vec(bundle)?);
    bar.finish_and_clear();
    let answer = answer.with_context(|| {
        format!(
            "the {kind} Bundle ({} entries) was refused{}",
            entries.len(),
            if kind == "transaction" {
                "; nothing of it was applied"
            } else {
                ""
            }
        )
    })?;
    let refused = count_response(&entries, &answer, counts);
    for (i, status, outcome) in &refused {
        eprintln!("Bundle.entry[{i}] ({}): {status}", entry_type(&entries[*i]));
        for line in outcome_lines(outcome) {
            eprintln!("  {line}");
        }
    }
    Ok(refused.len())
}

/// Writes resources as transactions of `per_bundle` entries, in order;
/// returns the number of Bundles.
fn write_resources(
    client: &FhirClient,
    resources: Vec<Value>,
    per_bundle: usize,
    counts: &mut Counts,
) -> anyhow::Result<usize> {
    let total = resources.len();
    let bundles = hygeia_fhir::synthetic::transaction_bundles(&resources, per_bundle);
    drop(resources);
    let count = bundles.len();
    let bar = progress(total as u64);
    let mut written = 0usize;
    for (n, bundle) in bundles.iter().enumerate() {
        let entries = bundle["entry"].as_array().cloned().unwrap_or_default();
        match client.post_bundle(&serde_json::to_vec(bundle)?) {
            Ok(answer) => {
                count_response(&entries, &answer, counts);
            }
            Err(e) => {
                bar.finish_and_clear();
                let first = entries.first().map(entry_key).unwrap_or_default();
                bail!(
                    "Bundle {} of {count} (resources {}-{} of {total}, starting with {first}) was refused: {e:#}\n\
                     Nothing of that Bundle was applied; {n} Bundle(s) ({written} resources) were applied before it.\n\
                     Fix the input and import again: resources with an id are PUT, so those already written are updated, not duplicated.",
                    n + 1,
                    written + 1,
                    written + entries.len(),
                );
            }
        }
        written += entries.len();
        bar.inc(entries.len() as u64);
    }
    bar.finish_and_clear();
    Ok(count)
}

fn entry_key(entry: &Value) -> String {
    format!(
        "{}/{}",
        entry_type(entry),
        entry["resource"]["id"].as_str().unwrap_or("(new)")
    )
}

fn print_summary(counts: &Counts, bundles: usize, elapsed: Duration, json_output: bool) {
    let resources: u64 = counts.values().map(|(c, u)| c + u).sum();
    let seconds = elapsed.as_secs_f64();
    let rate = resources as f64 / seconds.max(1e-9);
    if json_output {
        let types: serde_json::Map<String, Value> = counts
            .iter()
            .map(|(t, (c, u))| (t.clone(), json!({"created": c, "updated": u})))
            .collect();
        print_line(
            &json!({"resources": resources, "bundles": bundles, "seconds": seconds, "per_sec": rate, "types": types})
                .to_string(),
        );
        return;
    }
    let mut text = format!(
        "imported {resources} resource(s) in {bundles} Bundle(s), {seconds:.1} s ({rate:.0} resources/s)"
    );
    for (resource_type, (created, updated)) in counts {
        text.push_str(&format!(
            "\n  {resource_type:<20} {:>7}  ({created} created, {updated} updated)",
            created + updated
        ));
    }
    print_line(&text);
}
