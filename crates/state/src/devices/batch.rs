//! The wire format of a batch of signed device readings, its parser, the
//! signature checks and the commitments a `device.batch` entry carries.
//!
//! A batch is JSON (`application/json`, at most [`MAX_BATCH_BYTES`]):
//!
//! ```json
//! {"device": "did:key:z6Mk…",
//!  "readings": [{"observation": { …FHIR R5 Observation… }, "jws": "eyJhbGciOiJFZERTQSJ9..<sig>"}]}
//! ```
//!
//! Each reading's `jws` is a JWS with a detached payload (RFC 7515
//! appendix F) in compact form, `BASE64URL(header) ".." BASE64URL(sig)`:
//! the header is `{"alg":"EdDSA"}` (an optional `kid` must be the device's
//! verification method; `b64` and `crit` are refused), and the payload is
//! the RFC 8785 (JCS) canonical form of the Observation. Any JOSE library
//! verifies it by putting `BASE64URL(JCS(observation))` back between the
//! dots. Signatures are checked strictly (RFC 8032, as the ledger does).
//!
//! The Observation must be `resourceType` `Observation`, name the device in
//! `device` (a `reference` to `Device/<`[`device_fhir_id`]`>` or to the
//! device DID itself, an `identifier` whose `value` is the device DID, or
//! both, each naming the same device), carry a LOINC code Hygeia knows ([`kind_of`]), an
//! `effectiveDateTime` with a time and a zone (RFC 3339), and a numeric
//! `valueQuantity.value`.
//!
//! A reading's commitment is `SHA-256(`[`READING_COMMITMENT_DOMAIN`]` ‖
//! salt ‖ index (u32, big-endian) ‖ jws ‖ 0x00 ‖ JCS(observation))`, with a
//! random 32-byte salt per batch that is kept, with the batch, in the vault
//! only: the ledger's root reveals nothing of small value spaces such as
//! glucose readings. The root is the RFC 9162 Merkle tree hash over the
//! commitments (each the tree's leaf data).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hygeia_identity::{Did, PublicKey, Signature};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::{day_of, KindDays, ReadingKind, MAX_BATCH_READINGS};

/// Largest batch body, in bytes.
pub const MAX_BATCH_BYTES: usize = 2 << 20;
/// Largest Observation, in canonical bytes.
pub const MAX_OBSERVATION_BYTES: usize = 8 << 10;
/// Domain separation of a reading's commitment.
pub const READING_COMMITMENT_DOMAIN: &[u8] = b"hygeia.device.reading.v1\x00";

/// A batch as sent.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedBatch {
    pub device: String,
    pub readings: Vec<SignedReading>,
}

/// One reading as sent: the Observation and the device's detached JWS.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedReading {
    pub observation: Map<String, Value>,
    pub jws: String,
}

/// Why a batch was refused, with its stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("a batch is at most {MAX_BATCH_BYTES} bytes and {MAX_BATCH_READINGS} readings")]
    TooLarge,
    #[error("the batch is not a device batch: {0}")]
    Malformed(String),
    #[error("reading {index}: {reason}")]
    BadReading { index: usize, reason: String },
    #[error("reading {index} names another device than the batch's")]
    WrongDevice { index: usize },
    #[error("reading {index} has no LOINC code Hygeia knows for device readings")]
    UnknownCode { index: usize },
    #[error("reading {index}: the signature is not the device's over this Observation")]
    BadSignature { index: usize },
}

impl BatchError {
    pub fn code(&self) -> &'static str {
        match self {
            BatchError::TooLarge => "device.batch_too_large",
            BatchError::Malformed(_) => "device.batch_malformed",
            BatchError::BadReading { .. } => "device.bad_reading",
            BatchError::WrongDevice { .. } => "device.wrong_device",
            BatchError::UnknownCode { .. } => "device.unknown_code",
            BatchError::BadSignature { .. } => "device.bad_signature",
        }
    }
}

/// A reading parsed and canonicalized, its signature not yet checked.
#[derive(Clone, Debug)]
pub struct ParsedReading {
    pub kind: ReadingKind,
    /// `effectiveDateTime`, Unix seconds.
    pub time: i64,
    pub jws: String,
    /// JCS of the Observation.
    pub canonical: Vec<u8>,
    /// `BASE64URL(header) "." BASE64URL(JCS)`.
    signing_input: Vec<u8>,
    signature: Signature,
}

/// A parsed batch: the device and its readings.
#[derive(Clone, Debug)]
pub struct ParsedBatch {
    pub device: Did,
    pub readings: Vec<ParsedReading>,
}

/// What a `device.batch` entry commits to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    pub commitments: Vec<[u8; 32]>,
    pub root: [u8; 32],
    pub from: i64,
    pub to: i64,
    pub days: Vec<KindDays>,
}

/// The kind of reading a LOINC code names, for the codes Hygeia knows:
/// glucose (2339-0, 2345-7, 15074-8, 14743-9, 41653-7), oxygen saturation
/// (59408-5, 2708-6) and step counts (55423-8, 41950-7).
pub fn kind_of(loinc: &str) -> Option<ReadingKind> {
    match loinc {
        "2339-0" | "2345-7" | "15074-8" | "14743-9" | "41653-7" => Some(ReadingKind::Glucose),
        "59408-5" | "2708-6" => Some(ReadingKind::Spo2),
        "55423-8" | "41950-7" => Some(ReadingKind::Steps),
        _ => None,
    }
}

/// Parses a batch body: its shape, each Observation, each JWS's form (not
/// its signature: see [`ParsedBatch::verify`]).
pub fn parse(bytes: &[u8]) -> Result<ParsedBatch, BatchError> {
    if bytes.len() > MAX_BATCH_BYTES {
        return Err(BatchError::TooLarge);
    }
    let batch: SignedBatch =
        serde_json::from_slice(bytes).map_err(|e| BatchError::Malformed(e.to_string()))?;
    parse_batch(batch)
}

/// [`parse`] of a batch already read as JSON.
pub fn parse_batch(batch: SignedBatch) -> Result<ParsedBatch, BatchError> {
    if batch.readings.is_empty() {
        return Err(BatchError::Malformed(
            "a batch has at least one reading".into(),
        ));
    }
    if batch.readings.len() > MAX_BATCH_READINGS as usize {
        return Err(BatchError::TooLarge);
    }
    let device = Did::parse_cached(&batch.device)
        .map_err(|e| BatchError::Malformed(format!("device must be a did:key: {e}")))?;
    let method = device.verification_method();
    // Headers are checked once each (a device sends the same one), then
    // the readings are parsed and canonicalized in parallel.
    let mut checked: Vec<&str> = Vec::new();
    for (index, reading) in batch.readings.iter().enumerate() {
        let header = reading.jws.split('.').next().unwrap_or_default();
        if !checked.contains(&header) {
            check_header(header, &method).map_err(|reason| BatchError::BadReading {
                index,
                reason: reason.to_owned(),
            })?;
            checked.push(header);
        }
    }
    let parse =
        |(index, reading): (usize, SignedReading)| parse_reading(index, reading, device.as_str());
    let readings: Vec<ParsedReading> = if batch.readings.len() < 16 {
        batch
            .readings
            .into_iter()
            .enumerate()
            .map(parse)
            .collect::<Result<_, _>>()?
    } else {
        use rayon::prelude::*;
        batch
            .readings
            .into_par_iter()
            .enumerate()
            .with_min_len(32)
            .map(parse)
            .collect::<Result<_, _>>()?
    };
    Ok(ParsedBatch { device, readings })
}

fn parse_reading(
    index: usize,
    reading: SignedReading,
    device: &str,
) -> Result<ParsedReading, BatchError> {
    let bad = |reason: &str| BatchError::BadReading {
        index,
        reason: reason.to_owned(),
    };
    let o = &reading.observation;
    if o.get("resourceType").and_then(Value::as_str) != Some("Observation") {
        return Err(bad("resourceType must be Observation"));
    }
    if !o.get("device").is_some_and(|d| names_device(d, device)) {
        return Err(BatchError::WrongDevice { index });
    }
    let kind = o
        .get("code")
        .and_then(|c| c.get("coding"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| c.get("system").and_then(Value::as_str) == Some("http://loinc.org"))
        .find_map(|c| c.get("code").and_then(Value::as_str).and_then(kind_of))
        .ok_or(BatchError::UnknownCode { index })?;
    let time = o
        .get("effectiveDateTime")
        .and_then(Value::as_str)
        .and_then(hygeia_credentials::data_integrity::parse_date_time)
        .ok_or_else(|| bad("effectiveDateTime must be a date-time with a time zone"))?
        .unix_timestamp();
    if time < 0 {
        return Err(bad("effectiveDateTime before 1970"));
    }
    if !o
        .get("valueQuantity")
        .and_then(|q| q.get("value"))
        .is_some_and(Value::is_number)
    {
        return Err(bad("valueQuantity.value must be a number"));
    }
    let canonical = serde_json_canonicalizer::to_vec(&reading.observation)
        .map_err(|e| bad(&format!("cannot canonicalize: {e}")))?;
    if canonical.len() > MAX_OBSERVATION_BYTES {
        return Err(bad("the Observation is over 8 KiB"));
    }
    let (header, rest) = reading
        .jws
        .split_once('.')
        .ok_or_else(|| bad("jws must be BASE64URL(header)..BASE64URL(signature)"))?;
    let signature = rest
        .strip_prefix('.')
        .filter(|s| !s.contains('.'))
        .and_then(|s| URL_SAFE_NO_PAD.decode(s).ok())
        .and_then(|b| Signature::from_slice(&b).ok())
        .ok_or_else(|| bad("jws must be BASE64URL(header)..BASE64URL(Ed25519 signature)"))?;
    let mut signing_input = Vec::with_capacity(header.len() + 1 + canonical.len() * 4 / 3 + 4);
    signing_input.extend_from_slice(header.as_bytes());
    signing_input.push(b'.');
    let mut payload = String::with_capacity(canonical.len() * 4 / 3 + 4);
    URL_SAFE_NO_PAD.encode_string(&canonical, &mut payload);
    signing_input.extend_from_slice(payload.as_bytes());
    Ok(ParsedReading {
        kind,
        time,
        jws: reading.jws,
        canonical,
        signing_input,
        signature,
    })
}

fn check_header(header: &str, method: &str) -> Result<(), &'static str> {
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| "the JWS header is not base64url")?;
    let header: Map<String, Value> =
        serde_json::from_slice(&bytes).map_err(|_| "the JWS header is not a JSON object")?;
    if header.get("alg").and_then(Value::as_str) != Some("EdDSA") {
        return Err("the JWS alg must be EdDSA");
    }
    if header.contains_key("b64") || header.contains_key("crit") {
        return Err("the JWS header may not carry b64 or crit");
    }
    if let Some(kid) = header.get("kid") {
        if kid.as_str() != Some(method) {
            return Err("the JWS kid must be the device's verification method");
        }
    }
    Ok(())
}

impl ParsedBatch {
    /// Checks every reading's signature against the device key, strictly
    /// and in parallel (rayon; call it off the async runtime's workers).
    /// Names the first bad reading.
    pub fn verify(&self) -> Result<(), BatchError> {
        use rayon::prelude::*;
        let key: &PublicKey = self.device.public_key();
        let check = |r: &ParsedReading| key.verify(&r.signing_input, &r.signature).is_ok();
        let ok: Vec<bool> = if self.readings.len() < 16 {
            self.readings.iter().map(check).collect()
        } else {
            self.readings
                .par_iter()
                .with_min_len(32)
                .map(check)
                .collect()
        };
        match ok.iter().position(|ok| !ok) {
            Some(index) => Err(BatchError::BadSignature { index }),
            None => Ok(()),
        }
    }

    /// The commitments, root, window and days of the batch under `salt`.
    pub fn commit(&self, salt: &[u8; 32]) -> Committed {
        let commitments: Vec<[u8; 32]> = self
            .readings
            .iter()
            .enumerate()
            .map(|(i, r)| reading_commitment(salt, i as u32, &r.jws, &r.canonical))
            .collect();
        let mut tree = hygeia_ledger::merkle::RootBuilder::new();
        for c in &commitments {
            tree.push(hygeia_ledger::merkle::leaf_hash(c));
        }
        let from = self.readings.iter().map(|r| r.time).min().unwrap_or(0);
        let to = self.readings.iter().map(|r| r.time).max().unwrap_or(0);
        let mut days: std::collections::BTreeMap<ReadingKind, std::collections::BTreeSet<u32>> =
            Default::default();
        for r in &self.readings {
            days.entry(r.kind).or_default().insert(day_of(r.time));
        }
        Committed {
            commitments,
            root: tree.root().0,
            from,
            to,
            days: days
                .into_iter()
                .map(|(kind, days)| KindDays {
                    kind,
                    days: days.into_iter().collect(),
                })
                .collect(),
        }
    }
}

/// One reading's commitment (see the module's documentation).
pub fn reading_commitment(salt: &[u8; 32], index: u32, jws: &str, canonical: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(READING_COMMITMENT_DOMAIN);
    h.update(salt);
    h.update(index.to_be_bytes());
    h.update(jws.as_bytes());
    h.update([0]);
    h.update(canonical);
    h.finalize().into()
}

/// A device's FHIR id: the method-specific identifier of its did:key
/// (`z6Mk…`, letters and digits), so `Device/<id>` names one device and is
/// the device's DID read back with `did:key:` in front.
pub fn device_fhir_id(did: &str) -> Option<&str> {
    did.strip_prefix("did:key:").filter(|id| {
        !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

/// The device DID a FHIR `Device` id names, if it is a did:key's
/// identifier (an Ed25519 key; anything else is no device's id).
pub fn device_of_fhir_id(id: &str) -> Option<String> {
    let did = format!("did:key:{id}");
    (device_fhir_id(&did).is_some() && did.parse::<Did>().is_ok()).then_some(did)
}

/// Whether an Observation's `device` Reference names `device`: by
/// `reference` (`Device/<id>` or the DID) and/or by `identifier.value`
/// (the DID); each one present must name it, and one must be present.
fn names_device(reference: &Value, device: &str) -> bool {
    let literal = reference.get("reference").map(|r| {
        r.as_str().is_some_and(|r| {
            r == device
                || r.strip_prefix("Device/")
                    .is_some_and(|id| Some(id) == device_fhir_id(device))
        })
    });
    let logical = reference
        .get("identifier")
        .map(|i| i.get("value").and_then(Value::as_str) == Some(device));
    match (literal, logical) {
        (None, None) => false,
        (a, b) => a.unwrap_or(true) && b.unwrap_or(true),
    }
}

/// Signs an Observation as a device does: the detached JWS of its JCS form.
pub fn sign_observation(key: &hygeia_identity::Keypair, observation: &Value) -> String {
    const HEADER: &str = "eyJhbGciOiJFZERTQSJ9"; // {"alg":"EdDSA"}
    let canonical =
        serde_json_canonicalizer::to_vec(observation).expect("a JSON value canonicalizes");
    let input = format!("{HEADER}.{}", URL_SAFE_NO_PAD.encode(canonical));
    let signature = key.sign(input.as_bytes());
    format!("{HEADER}..{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

/// A FHIR R5 Observation of `kind` from `device` at `time`, for tests, the
/// demo and benchmarks.
pub fn example_observation(device: &str, kind: ReadingKind, time: i64, value: f64) -> Value {
    let (code, display, unit) = match kind {
        ReadingKind::Glucose => ("2339-0", "Glucose [Mass/volume] in Blood", "mg/dL"),
        ReadingKind::Spo2 => (
            "59408-5",
            "Oxygen saturation in Arterial blood by Pulse oximetry",
            "%",
        ),
        ReadingKind::Steps => (
            "55423-8",
            "Number of steps in unspecified time Pedometer",
            "{steps}",
        ),
    };
    let when = time::OffsetDateTime::from_unix_timestamp(time)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    serde_json::json!({
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
        "device": device_reference(device),
    })
}

/// The `device` Reference of a reading: the literal `Device/<id>` that
/// `GET /fhir/Device/{id}` serves (docs/fhir.md), and the DID as its
/// identifier.
pub fn device_reference(device: &str) -> Value {
    match device_fhir_id(device) {
        Some(id) => serde_json::json!({
            "reference": format!("Device/{id}"),
            "identifier": {"system": "urn:ietf:rfc:3986", "value": device},
        }),
        None => serde_json::json!({"reference": device}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hygeia_identity::Keypair;
    use serde_json::json;

    fn batch(key: &Keypair, n: usize) -> Value {
        let device = key.did().to_string();
        let readings: Vec<Value> = (0..n)
            .map(|i| {
                let o = example_observation(
                    &device,
                    ReadingKind::Glucose,
                    1_800_000_000 + i as i64 * 3600,
                    100.0 + i as f64,
                );
                json!({"jws": sign_observation(key, &o), "observation": o})
            })
            .collect();
        json!({"device": device, "readings": readings})
    }

    fn parse_value(v: &Value) -> Result<ParsedBatch, BatchError> {
        parse(&serde_json::to_vec(v).unwrap())
    }

    #[test]
    fn a_signed_batch_parses_verifies_and_commits() {
        let key = Keypair::generate();
        let parsed = parse_value(&batch(&key, 40)).unwrap();
        parsed.verify().unwrap();
        let c = parsed.commit(&[1; 32]);
        assert_eq!(c.commitments.len(), 40);
        assert_eq!(c.from, 1_800_000_000);
        assert_eq!(c.to, 1_800_000_000 + 39 * 3600);
        assert_eq!(c.days.len(), 1);
        assert_eq!(c.days[0].days.len(), 2);
        // Another salt, other commitments and root.
        assert_ne!(parsed.commit(&[2; 32]).root, c.root);
    }

    #[test]
    fn the_jws_is_a_standard_detached_eddsa_jws() {
        // Any JOSE verifier: put BASE64URL(JCS(observation)) between the dots.
        let key = Keypair::from_seed(&[9; 32]);
        let o = example_observation(&key.did().to_string(), ReadingKind::Spo2, 0, 97.0);
        let jws = sign_observation(&key, &o);
        let (h, s) = jws.split_once("..").unwrap();
        let payload = URL_SAFE_NO_PAD.encode(serde_json_canonicalizer::to_vec(&o).unwrap());
        let compact = format!("{h}.{payload}.{s}");
        let sig = URL_SAFE_NO_PAD.decode(s).unwrap();
        key.public_key()
            .verify(
                compact.rsplit_once('.').unwrap().0.as_bytes(),
                &Signature::from_slice(&sig).unwrap(),
            )
            .unwrap();
        assert_eq!(
            URL_SAFE_NO_PAD.decode(h).unwrap(),
            br#"{"alg":"EdDSA"}"#.to_vec()
        );
    }

    /// A batch signed by an independent implementation (Python's
    /// `cryptography` Ed25519 and the `jcs` package, the fuzz seed
    /// `signed-three-kinds.json`) verifies; its tampered copy does not.
    #[test]
    fn a_batch_signed_by_an_independent_implementation_verifies() {
        let seeds = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fuzz/seeds/device_batch/"
        );
        let good = std::fs::read(format!("{seeds}signed-three-kinds.json")).unwrap();
        let parsed = parse(&good).unwrap();
        parsed.verify().unwrap();
        let kinds: Vec<ReadingKind> = parsed.readings.iter().map(|r| r.kind).collect();
        assert_eq!(
            kinds,
            [ReadingKind::Glucose, ReadingKind::Spo2, ReadingKind::Steps]
        );
        // 09:00+01:00 is 08:00 UTC.
        assert_eq!(parsed.readings[1].time - parsed.readings[0].time, 0);
        let tampered = std::fs::read(format!("{seeds}tampered-value.json")).unwrap();
        assert_eq!(
            parse(&tampered).unwrap().verify(),
            Err(BatchError::BadSignature { index: 0 })
        );
        let wrong = std::fs::read(format!("{seeds}wrong-device.json")).unwrap();
        assert_eq!(parse(&wrong).unwrap_err().code(), "device.wrong_device");
    }

    /// A reading names its device by `Device/<id>`, by the DID (as
    /// readings did before the FHIR Device view), by identifier, or by
    /// both; anything naming another device, or two different ones, is
    /// refused.
    #[test]
    fn a_reading_names_its_device_by_fhir_id_or_did() {
        let key = Keypair::generate();
        let device = key.did().to_string();
        let id = device_fhir_id(&device).unwrap();
        assert!(id.starts_with("z6Mk"));
        assert_eq!(device_of_fhir_id(id).as_deref(), Some(device.as_str()));
        assert_eq!(device_of_fhir_id("not-an-id"), None);
        assert_eq!(device_of_fhir_id("abc123"), None);
        assert_eq!(device_of_fhir_id(&format!("{id}#x")), None);
        let other = Keypair::generate().did().to_string();
        let other_id = device_fhir_id(&other).unwrap().to_owned();
        let ident = |v: &str| json!({"system": "urn:ietf:rfc:3986", "value": v});
        let cases = [
            (device_reference(&device), true),
            (json!({"reference": device}), true),
            (json!({"reference": format!("Device/{id}")}), true),
            (json!({"identifier": ident(&device)}), true),
            (json!({"reference": format!("Device/{other_id}")}), false),
            (
                json!({"reference": format!("Device/{id}"), "identifier": ident(&other)}),
                false,
            ),
            (
                json!({"reference": format!("Device/{other_id}"), "identifier": ident(&device)}),
                false,
            ),
            (json!({"reference": format!("Device/{device}")}), false),
            (json!({"reference": 7}), false),
            (json!({"display": device}), false),
        ];
        for (reference, accepted) in cases {
            let mut o = example_observation(&device, ReadingKind::Spo2, 1_800_000_000, 97.0);
            o["device"] = reference.clone();
            let b = json!({"device": device, "readings": [{"observation": o, "jws": sign_observation(&key, &o)}]});
            match parse_value(&b) {
                Ok(parsed) => {
                    assert!(accepted, "{reference}");
                    parsed.verify().unwrap();
                }
                Err(e) => {
                    assert!(!accepted, "{reference}: {e}");
                    assert_eq!(e.code(), "device.wrong_device");
                }
            }
        }
    }

    #[test]
    fn a_changed_value_or_another_key_is_a_bad_signature() {
        let key = Keypair::generate();
        let mut b = batch(&key, 20);
        b["readings"][7]["observation"]["valueQuantity"]["value"] = json!(55.0);
        assert_eq!(
            parse_value(&b).unwrap().verify(),
            Err(BatchError::BadSignature { index: 7 })
        );
        // Impersonation: readings signed by another key under this device.
        let other = Keypair::generate();
        let mut b = batch(&key, 3);
        let o = b["readings"][1]["observation"].clone();
        b["readings"][1]["jws"] = json!(sign_observation(&other, &o));
        assert_eq!(
            parse_value(&b).unwrap().verify(),
            Err(BatchError::BadSignature { index: 1 })
        );
    }

    #[test]
    fn malformed_batches_are_refused_with_their_codes() {
        let key = Keypair::generate();
        let good = batch(&key, 2);
        let cases: Vec<(Value, &str)> = vec![
            (
                json!({"device": key.did().to_string(), "readings": []}),
                "device.batch_malformed",
            ),
            (
                json!({"device": "did:web:x", "readings": good["readings"]}),
                "device.batch_malformed",
            ),
            (
                json!({"device": key.did().to_string(), "readings": good["readings"], "x": 1}),
                "device.batch_malformed",
            ),
            (
                batch(&key, MAX_BATCH_READINGS as usize + 1),
                "device.batch_too_large",
            ),
            (
                {
                    let mut b = good.clone();
                    b["readings"][0]["observation"]["device"] =
                        json!({"reference": Keypair::generate().did().to_string()});
                    b
                },
                "device.wrong_device",
            ),
            (
                {
                    let mut b = good.clone();
                    b["readings"][0]["observation"]["code"]["coding"][0]["code"] = json!("1234-5");
                    b
                },
                "device.unknown_code",
            ),
            (
                {
                    let mut b = good.clone();
                    b["readings"][0]["observation"]["effectiveDateTime"] = json!("2026-01-01");
                    b
                },
                "device.bad_reading",
            ),
            (
                {
                    let mut b = good.clone();
                    b["readings"][0]["observation"]["valueQuantity"] = json!({"value": "high"});
                    b
                },
                "device.bad_reading",
            ),
            (
                {
                    let mut b = good.clone();
                    b["readings"][0]["observation"]["resourceType"] = json!("Patient");
                    b
                },
                "device.bad_reading",
            ),
            (
                {
                    let mut b = good.clone();
                    b["readings"][0]["jws"] = json!("eyJhbGciOiJIUzI1NiJ9..AAAA");
                    b
                },
                "device.bad_reading",
            ),
            (
                {
                    let mut b = good.clone();
                    let s = b["readings"][0]["jws"]
                        .as_str()
                        .unwrap()
                        .replace("..", ".e30.");
                    b["readings"][0]["jws"] = json!(s);
                    b
                },
                "device.bad_reading",
            ),
        ];
        for (body, code) in cases {
            let err = parse_value(&body).unwrap_err();
            assert_eq!(err.code(), code, "{err}");
        }
        assert_eq!(
            parse(&vec![b' '; MAX_BATCH_BYTES + 1]).unwrap_err().code(),
            "device.batch_too_large"
        );
        // A header other than EdDSA, or with b64, is refused.
        let o = good["readings"][0]["observation"].clone();
        for header in [
            json!({"alg": "none"}),
            json!({"alg": "EdDSA", "b64": false}),
            json!({"alg": "EdDSA", "kid": "did:key:other#x"}),
        ] {
            let h = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap());
            let sig = good["readings"][0]["jws"]
                .as_str()
                .unwrap()
                .split_once("..")
                .unwrap()
                .1
                .to_owned();
            let b = json!({"device": key.did().to_string(), "readings": [{"observation": o, "jws": format!("{h}..{sig}")}]});
            assert_eq!(parse_value(&b).unwrap_err().code(), "device.bad_reading");
        }
    }
}
