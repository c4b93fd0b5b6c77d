//! `hygeia device attest | send | show` and `hygeia adherence rule |
//! evaluate | show`: connected devices and adherence (docs/devices.md).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use hygeia_cli::licensing::copy_key;
use hygeia_identity::Keypair;
use hygeia_state::devices::batch::sign_observation;
use serde_json::{json, Value};

use super::did::{url_component, Resolver};
use crate::client::{json_or_refusal, Client};

#[derive(Subcommand)]
pub enum DeviceCommand {
    /// Bind an attested device to yourself (the patient)
    ///
    /// The device presents its manufacturer's device-attestation credential
    /// (an SD-JWT VC, `hygeia credential issue device`) with a key-binding
    /// JWT addressed to the network and naming you as its nonce, disclosing
    /// nothing; you sign the `device.attest` transaction. The manufacturer
    /// must be on the trust list for device attestations. With `--study`,
    /// you sign with your key for that study (a subject whose consent
    /// counts): the device's readings then flow to the trial only while
    /// your consent counts, and only inside your trial window.
    Attest {
        /// Your key file (the patient).
        #[arg(long, short)]
        key: PathBuf,
        /// The node to submit to.
        #[arg(long)]
        node: String,
        /// The device's key file (it signs the key-binding JWT).
        #[arg(long)]
        device_key: PathBuf,
        /// Readings taken before this date (YYYY-MM-DD, UTC) are refused.
        #[arg(long)]
        from: String,
        /// Readings taken on or after this date (YYYY-MM-DD, UTC) are refused.
        #[arg(long)]
        until: String,
        /// Bind the device for this study (its id): sign with your key for
        /// the study.
        #[arg(long)]
        study: Option<String>,
        /// The attestation as issued by the manufacturer.
        attestation: PathBuf,
    },
    /// Sign readings with the device's key and send them as one batch
    ///
    /// FILE holds FHIR R5 Observations: a JSON array, or a Bundle whose
    /// entries' resources are Observations. Each must name the device in
    /// `device` (`{"reference": "<device DID>"}`); each is signed as a
    /// detached JWS over its JCS form.
    Send {
        /// The device's key file.
        #[arg(long, short)]
        key: PathBuf,
        /// The node to send to.
        #[arg(long)]
        node: String,
        /// The Observations.
        file: PathBuf,
    },
    /// A device's binding and standing (for its patient, a delegate, or
    /// the device)
    Show {
        #[arg(long, short)]
        key: PathBuf,
        #[arg(long)]
        node: String,
        /// The device's DID.
        device: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Kind {
    Glucose,
    Spo2,
    Steps,
}

#[derive(Subcommand)]
pub enum AdherenceCommand {
    /// Define an adherence rule: a reading of KIND on at least
    /// MIN_PERCENT % of the days from START to END (inclusive)
    Rule {
        /// Your key file: you own the rule.
        #[arg(long, short)]
        key: PathBuf,
        #[arg(long)]
        node: String,
        /// The rule's id, 64 hex digits (say, the SHA-256 of the protocol
        /// text that states it).
        #[arg(long)]
        rule: String,
        #[arg(long, value_enum)]
        kind: Kind,
        /// First day, YYYY-MM-DD (UTC).
        #[arg(long)]
        start: String,
        /// Last day, YYYY-MM-DD (UTC).
        #[arg(long)]
        end: String,
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=100))]
        min_percent: u8,
        /// The study the rule belongs to (its id): only its sponsor defines
        /// it; it counts only the subjects' devices bound to the study, on
        /// the days of each subject's trial window.
        #[arg(long)]
        study: Option<String>,
    },
    /// Evaluate a rule for a subject (the rule's owner or the subject)
    ///
    /// The state machine evaluates it over the batches on the ledger and
    /// records the result; a met rule emits its event once.
    Evaluate {
        #[arg(long, short)]
        key: PathBuf,
        #[arg(long)]
        node: String,
        #[arg(long)]
        rule: String,
        /// The subject's did:key.
        #[arg(long)]
        subject: String,
    },
    /// The latest evaluation: days counted, disputed and missing
    Show {
        #[arg(long, short)]
        key: PathBuf,
        #[arg(long)]
        node: String,
        #[arg(long)]
        rule: String,
        #[arg(long)]
        subject: String,
    },
}

fn read_key(path: &Path) -> anyhow::Result<Keypair> {
    Keypair::read_key_file(path).with_context(|| format!("cannot use key file {}", path.display()))
}

fn print(value: &Value) -> anyhow::Result<ExitCode> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(ExitCode::SUCCESS)
}

/// The Unix day number of a `YYYY-MM-DD` date.
pub fn day_number(date: &str) -> anyhow::Result<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(date, &format)
        .with_context(|| format!("{date:?} is not a date YYYY-MM-DD"))?;
    Ok(date.midnight().assume_utc().unix_timestamp() / 86_400)
}

/// The Observations of a JSON array or a Bundle.
pub fn observations(document: Value) -> anyhow::Result<Vec<Value>> {
    match document {
        Value::Array(items) => Ok(items),
        Value::Object(ref o) if o.get("resourceType").and_then(Value::as_str) == Some("Bundle") => {
            Ok(o.get("entry")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|e| e.get("resource").cloned())
                .collect())
        }
        _ => anyhow::bail!("give a JSON array of Observations or a Bundle"),
    }
}

/// A batch of `observations` signed by `device`.
pub fn signed_batch(device: &Keypair, observations: &[Value]) -> Value {
    let readings: Vec<Value> = observations
        .iter()
        .map(|o| json!({"observation": o, "jws": sign_observation(device, o)}))
        .collect();
    json!({"device": device.did().to_string(), "readings": readings})
}

/// Binds `device` to `patient` on `node` with the issued attestation (for
/// `study`, if given: `patient` is then the subject's key for it).
pub fn attest(
    node: &str,
    patient: &Keypair,
    device: &Keypair,
    issued: &str,
    (from, until): (i64, i64),
    study: Option<&str>,
) -> anyhow::Result<Value> {
    let audience = super::node_info(node)?["network_id"]
        .as_str()
        .map(str::to_owned)
        .context("the node did not give its network id (network_id)")?;
    let resolver = Resolver::new(Some(node));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    // Presented by the device, bound to the patient (nonce).
    let presentation = {
        use hygeia_credentials::jws::SigningKey;
        use hygeia_credentials::sd_jwt::SdJwt;
        let held = SdJwt::parse(issued, &|iss: &str, h: &_| resolver.issuer_key(iss, h))
            .map_err(|e| anyhow::anyhow!("the attestation cannot be read: {}: {e}", e.code()))?;
        held.present_with_key_binding(
            &[],
            &audience,
            patient.did().as_str(),
            now,
            &SigningKey::from(copy_key(device)),
        )
        .map_err(|e| anyhow::anyhow!("the attestation cannot be presented: {e}"))?
    };
    let mut body = json!({"device": device.did().to_string(), "presentation": presentation, "from": from, "until": until});
    if let Some(study) = study {
        body["study"] = json!(study);
    }
    Client::with_key(node, copy_key(patient)).submit("device.attest", body)
}

/// Sends `observations` as one batch signed by `device`.
pub fn send(node: &str, device: &Keypair, observations: &[Value]) -> anyhow::Result<Value> {
    let body = serde_json::to_vec(&signed_batch(device, observations))?;
    let client = Client::with_key(node, copy_key(device));
    json_or_refusal(client.post_json("/v1/devices/batches", body)?)
}

pub fn run_device(command: DeviceCommand) -> anyhow::Result<ExitCode> {
    match command {
        DeviceCommand::Attest {
            key,
            node,
            device_key,
            from,
            until,
            study,
            attestation,
        } => {
            let issued = std::fs::read_to_string(&attestation)
                .with_context(|| format!("cannot read {}", attestation.display()))?;
            print(&attest(
                &node,
                &read_key(&key)?,
                &read_key(&device_key)?,
                issued.trim(),
                (day_number(&from)? * 86_400, day_number(&until)? * 86_400),
                study.as_deref(),
            )?)
        }
        DeviceCommand::Send { key, node, file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let document: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", file.display()))?;
            print(&send(&node, &read_key(&key)?, &observations(document)?)?)
        }
        DeviceCommand::Show { key, node, device } => {
            let client = Client::with_key(&node, read_key(&key)?);
            print(&client.get_json(&format!("/v1/devices/{}", url_component(&device)))?)
        }
    }
}

pub fn run_adherence(command: AdherenceCommand) -> anyhow::Result<ExitCode> {
    match command {
        AdherenceCommand::Rule {
            key,
            node,
            rule,
            kind,
            start,
            end,
            min_percent,
            study,
        } => {
            let kind = match kind {
                Kind::Glucose => "glucose",
                Kind::Spo2 => "spo2",
                Kind::Steps => "steps",
            };
            let mut body = json!({"rule": rule, "kind": kind, "start_day": day_number(&start)?, "end_day": day_number(&end)?, "min_percent": min_percent});
            if let Some(study) = study {
                body["study"] = json!(study);
            }
            let mut client = Client::with_key(&node, read_key(&key)?);
            print(&client.submit("adherence.rule", body)?)
        }
        AdherenceCommand::Evaluate {
            key,
            node,
            rule,
            subject,
        } => {
            let mut client = Client::with_key(&node, read_key(&key)?);
            print(&client.submit(
                "adherence.evaluate",
                json!({"rule": rule, "subject": subject}),
            )?)
        }
        AdherenceCommand::Show {
            key,
            node,
            rule,
            subject,
        } => {
            let client = Client::with_key(&node, read_key(&key)?);
            print(&client.get_json(&format!(
                "/v1/adherence/{}/{}",
                url_component(&rule),
                url_component(&subject)
            ))?)
        }
    }
}

/// A device attestation from `maker` (its did:key) for `device`, valid a
/// year from `now`, no status list: what a manufacturer issues.
pub fn issue_attestation(maker: &Keypair, device: &Keypair, now: i64) -> anyhow::Result<String> {
    use hygeia_credentials::credential_types::{Credential, DeviceAttestation, Issuance};
    use hygeia_credentials::jws::{SigningKey, VerifyingKey};
    let issuance = Issuance {
        issuer: maker.did().to_string(),
        issued_at: now - 86_400 * 30,
        expires_at: Some(now + 86_400 * 365),
        holder_key: VerifyingKey::from(device.public_key()),
        status: None,
        key_id: Some(maker.did().verification_method()),
    };
    Ok(Credential::DeviceAttestation(DeviceAttestation {
        subject: device.did(),
        model: "CGM-3 continuous glucose monitor".into(),
        firmware_version: "3.2.1".into(),
        serial_number: Some("CGM3-000042".into()),
        udi: None,
    })
    .issue(&issuance, &SigningKey::from(copy_key(maker)))?)
}

/// The demo's wearable: the governance trusts a manufacturer
/// (`device-maker`), the demo patient binds its wearable (`wearable`) for
/// the last week and the next twelve, the wearable sends a week of
/// readings (glucose three times a day, a daily SpO2 and step count; one
/// batch a day, values made up, a day without glucose), and the clinic's
/// admin defines a glucose rule (80 % of the week's days) and evaluates it.
/// Returns the batches' record ids and the evaluation.
pub fn seed_demo(
    url: &str,
    keys: &super::demo_records::DemoKeys,
) -> anyhow::Result<(Vec<String>, Value)> {
    use hygeia_credentials::credential_types::VCT_DEVICE_ATTESTATION;
    use hygeia_state::devices::batch::example_observation;
    use hygeia_state::devices::ReadingKind;
    let maker = keys.key("device-maker")?;
    let wearable = keys.key("wearable")?;
    let patient = keys.key("patient")?;
    let mut governance = Client::with_key(url, keys.key("governance")?);
    governance.submit(
        "trust.issuer",
        json!({"issuer": maker.did().to_string(), "credential_type": VCT_DEVICE_ATTESTATION, "op": "add"}),
    )?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let today = now / 86_400;
    let first = today - 7;
    let issued = issue_attestation(&maker, &wearable, now)?;
    attest(
        url,
        &patient,
        &wearable,
        &issued,
        (first * 86_400, (today + 84) * 86_400),
        None,
    )?;
    let device = wearable.did().to_string();
    let mut batches = Vec::new();
    for day in first..today {
        let at = |hour: i64| day * 86_400 + hour * 3600;
        let mut readings = Vec::new();
        // Day 4 of the week: the sensor was off, no glucose.
        if day != first + 3 {
            for (i, hour) in [8, 12, 19].into_iter().enumerate() {
                let value = 95.0 + ((day * 7 + i as i64 * 13) % 40) as f64;
                readings.push(example_observation(
                    &device,
                    ReadingKind::Glucose,
                    at(hour),
                    value,
                ));
            }
        }
        readings.push(example_observation(
            &device,
            ReadingKind::Spo2,
            at(7),
            96.0 + (day % 3) as f64,
        ));
        readings.push(example_observation(
            &device,
            ReadingKind::Steps,
            at(22),
            4000.0 + ((day * 997) % 5000) as f64,
        ));
        let answer = send(url, &wearable, &readings)
            .with_context(|| format!("seeding the demo wearable's day {day}"))?;
        batches.push(answer["record"].as_str().unwrap_or_default().to_owned());
    }
    let rule = hex::encode(<[u8; 32]>::from(<sha2::Sha256 as sha2::Digest>::digest(
        b"demo protocol: a glucose reading on at least 80 % of the days of the first week",
    )));
    let mut owner = Client::with_key(url, keys.key("clinic-admin")?);
    owner.submit(
        "adherence.rule",
        json!({"rule": rule, "kind": "glucose", "start_day": first, "end_day": today - 1, "min_percent": 80}),
    )?;
    owner.submit(
        "adherence.evaluate",
        json!({"rule": rule, "subject": patient.did().to_string()}),
    )?;
    let result = owner.get_json(&format!(
        "/v1/adherence/{rule}/{}",
        url_component(patient.did().as_str())
    ))?;
    Ok((batches, result))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_day_numbers() {
        assert_eq!(day_number("1970-01-02").unwrap(), 1);
        assert_eq!(day_number("2026-12-06").unwrap(), 20_793);
        assert!(day_number("2026-13-01").is_err());
    }

    #[test]
    fn observations_come_from_an_array_or_a_bundle() {
        let o = json!({"resourceType": "Observation"});
        assert_eq!(observations(json!([o])).unwrap().len(), 1);
        let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": o}, {"resource": o}]});
        assert_eq!(observations(bundle).unwrap().len(), 2);
        assert!(observations(json!({"resourceType": "Patient"})).is_err());
    }
}
