//! Connected devices through the router: an attested wearable's signed
//! batch becomes one ledger entry and one encrypted record of its patient,
//! read under consent; every refusal has its code, and leaves the log and
//! the vault as they were; adherence is evaluated from the ledger.

use axum::http::Method;
use hygeia_credentials::credential_types::VCT_DEVICE_ATTESTATION;
use hygeia_identity::Keypair;
use hygeia_state::devices::batch::{example_observation, sign_observation, MAX_BATCH_BYTES};
use hygeia_state::devices::{ReadingKind, DAY_SECS};
use hygeia_state::testing::device_presentation;
use serde_json::{json, Value};

use super::{did, now, Cast, Net};

struct Wearable {
    net: Net,
    cast: Cast,
    device: Keypair,
    manufacturer: Keypair,
    /// Start of the binding window (midnight UTC, 10 days ago).
    start: i64,
}

async fn wearable() -> Wearable {
    let (net, cast) = Net::network().await;
    let manufacturer = Keypair::generate();
    let device = Keypair::generate();
    net.submit_ok(
        &cast.governance,
        "trust.issuer",
        json!({"issuer": did(&manufacturer), "credential_type": VCT_DEVICE_ATTESTATION, "jurisdictions": [], "op": "add"}),
    )
    .await;
    let start = (now() / DAY_SECS - 10) * DAY_SECS;
    let w = Wearable {
        net,
        cast,
        device,
        manufacturer,
        start,
    };
    let body = attest(&w, &w.device);
    w.net
        .submit_ok(&w.cast.patient, "device.attest", body)
        .await;
    w
}

fn network_id(net: &Net) -> String {
    net.node
        .state
        .read()
        .state
        .network
        .id()
        .unwrap_or_default()
        .to_owned()
}

fn attest(w: &Wearable, device: &Keypair) -> Value {
    json!({
        "device": did(device),
        "presentation": device_presentation(&w.manufacturer, device, &network_id(&w.net), &did(&w.cast.patient), now(), None),
        "from": w.start,
        "until": w.start + 90 * DAY_SECS,
    })
}

/// A batch from `key` naming `device`: one glucose reading at noon of each
/// day offset.
fn batch(device: &str, key: &Keypair, start: i64, days: &[i64]) -> Value {
    let readings: Vec<Value> = days
        .iter()
        .map(|d| {
            let o = example_observation(
                device,
                ReadingKind::Glucose,
                start + d * DAY_SECS + DAY_SECS / 2,
                123.25,
            );
            json!({"observation": o, "jws": sign_observation(key, &o)})
        })
        .collect();
    json!({"device": device, "readings": readings})
}

fn blobs(net: &Net) -> usize {
    net.node.custody.blob_count()
}

async fn send_batch(net: &Net, signer: &Keypair, body: &Value) -> super::Answer {
    net.signed(
        signer,
        Method::POST,
        "/v1/devices/batches",
        Some(serde_json::to_vec(body).unwrap()),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_batch_is_one_entry_and_one_record_read_under_consent() {
    let w = wearable().await;
    let size = w.net.size();
    let body = batch(&did(&w.device), &w.device, w.start, &[0, 1, 2]);
    let answer = send_batch(&w.net, &w.device, &body).await;
    assert_eq!(answer.status, 201, "{}", answer.text());
    assert_eq!(w.net.size(), size + 1, "one ledger entry per batch");
    let record = answer.json()["record"].as_str().unwrap().to_owned();
    assert_eq!(answer.json()["count"], 3);

    let record_entry = w
        .net
        .node
        .state
        .read()
        .state
        .records
        .get(&record)
        .unwrap()
        .clone();
    assert_eq!(record_entry.patient, did(&w.cast.patient));
    assert_eq!(record_entry.category, "device");

    // The patient reads it; the readings come back as signed.
    let read = w
        .net
        .signed(
            &w.cast.patient,
            Method::GET,
            &format!("/v1/records/{record}?purpose=PATRQT"),
            None,
        )
        .await;
    assert_eq!(read.status, 200, "{}", read.text());
    let document = read.json();
    assert_eq!(document["readings"].as_array().unwrap().len(), 3);
    assert_eq!(
        document["readings"][0]["observation"]["valueQuantity"]["value"],
        123.25
    );

    // A clinician without consent is refused; with a grant for the
    // device category, reads.
    let path = format!("/v1/records/{record}?purpose=TREAT");
    let denied = w
        .net
        .signed(&w.cast.clinician, Method::GET, &path, None)
        .await;
    assert_eq!(denied.status, 403, "{}", denied.text());
    w.net
        .grant(
            &w.cast.patient,
            &w.cast.clinician,
            json!({"categories": ["device"]}),
            json!(["read"]),
            "TREAT",
        )
        .await;
    let allowed = w
        .net
        .signed(&w.cast.clinician, Method::GET, &path, None)
        .await;
    assert_eq!(allowed.status, 200, "{}", allowed.text());

    // The device's standing, for its patient; a stranger learns nothing.
    let info = w
        .net
        .signed(
            &w.cast.patient,
            Method::GET,
            &format!("/v1/devices/{}", did(&w.device)),
            None,
        )
        .await;
    assert_eq!(info.status, 200, "{}", info.text());
    assert_eq!(info.json()["standing"], "valid");
    assert_eq!(info.json()["readings"], 3);
    let stranger = Keypair::generate();
    let hidden = w
        .net
        .signed(
            &stranger,
            Method::GET,
            &format!("/v1/devices/{}", did(&w.device)),
            None,
        )
        .await;
    let unknown = w
        .net
        .signed(
            &stranger,
            Method::GET,
            &format!("/v1/devices/{}", did(&Keypair::generate())),
            None,
        )
        .await;
    assert_eq!(
        (hidden.status, hidden.code()),
        (404, "device.unknown".into())
    );
    assert_eq!(hidden.text(), unknown.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_batches_have_codes_and_change_nothing() {
    let w = wearable().await;
    let device = did(&w.device);
    let good = batch(&device, &w.device, w.start, &[0, 1]);
    assert_eq!(send_batch(&w.net, &w.device, &good).await.status, 201);

    let stranger = Keypair::generate();
    let other = Keypair::generate();
    let body = attest(&w, &other);
    w.net
        .submit_ok(&w.cast.patient, "device.attest", body)
        .await;
    let mut tampered = batch(&device, &w.device, w.start, &[3]);
    tampered["readings"][0]["observation"]["valueQuantity"]["value"] = json!(40.0);
    let mut impersonated = batch(&device, &w.device, w.start, &[3, 4]);
    let o = impersonated["readings"][1]["observation"].clone();
    impersonated["readings"][1]["jws"] = json!(sign_observation(&stranger, &o));
    let oversized = {
        let mut b = batch(&device, &w.device, w.start, &[5]);
        let one = b["readings"][0].clone();
        b["readings"] = Value::Array(vec![one; 1001]);
        b
    };
    let future_time = now() + 3600;
    let future = {
        let o = example_observation(&device, ReadingKind::Glucose, future_time, 99.0);
        json!({"device": device, "readings": [{"observation": o, "jws": sign_observation(&w.device, &o)}]})
    };
    let cases: Vec<(&str, &Keypair, Value, u16, &str)> = vec![
        // A fresh did:key's own batch: not attested.
        (
            "unattested device",
            &stranger,
            batch(&did(&stranger), &stranger, w.start, &[3]),
            404,
            "device.unknown",
        ),
        // A stranger sends the wearable's batch.
        (
            "a stranger sends the batch",
            &stranger,
            batch(&device, &w.device, w.start, &[3]),
            404,
            "device.unknown",
        ),
        (
            "another device sends the batch",
            &other,
            batch(&device, &w.device, w.start, &[3]),
            403,
            "device.not_device",
        ),
        (
            "a changed value",
            &w.device,
            tampered,
            400,
            "device.bad_signature",
        ),
        (
            "a reading signed by another key",
            &w.device,
            impersonated,
            400,
            "device.bad_signature",
        ),
        (
            "the same batch again",
            &w.device,
            good.clone(),
            409,
            "device.batch_replayed",
        ),
        (
            "an earlier reading",
            &w.device,
            batch(&device, &w.device, w.start, &[1]),
            409,
            "device.batch_replayed",
        ),
        (
            "before the window",
            &w.device,
            batch(&device, &w.device, w.start, &[-1]),
            422,
            "device.reading_outside_window",
        ),
        (
            "in the future",
            &w.device,
            future,
            422,
            "device.reading_in_future",
        ),
        (
            "1001 readings",
            &w.device,
            oversized,
            413,
            "device.batch_too_large",
        ),
        (
            "not a batch",
            &w.device,
            json!({"device": device, "readings": [], "extra": 1}),
            400,
            "device.batch_malformed",
        ),
    ];
    for (label, signer, body, status, code) in cases {
        let size = w.net.size();
        let stored = blobs(&w.net);
        let answer = send_batch(&w.net, signer, &body).await;
        assert_eq!(
            (answer.status, answer.code()),
            (status, code.into()),
            "{label}: {}",
            answer.text()
        );
        assert_eq!(w.net.size(), size, "{label} grew the log");
        assert_eq!(blobs(&w.net), stored, "{label} left a blob");
    }
    // Over the byte limit: refused before it is read.
    let huge = vec![b' '; MAX_BATCH_BYTES + 1];
    let answer = w
        .net
        .signed(&w.device, Method::POST, "/v1/devices/batches", Some(huge))
        .await;
    assert_eq!(
        (answer.status, answer.code()),
        (413, "device.batch_too_large".into())
    );
    // Unsigned: refused by authentication.
    let answer = w
        .net
        .send(
            axum::http::Request::post("/v1/devices/batches")
                .header("content-type", "application/json")
                .body(axum::body::Body::from(serde_json::to_vec(&good).unwrap()))
                .unwrap(),
        )
        .await;
    assert_eq!(answer.status, 401, "{}", answer.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adherence_is_evaluated_from_the_ledger_with_missing_days_shown() {
    let w = wearable().await;
    let device = did(&w.device);
    let body = batch(&device, &w.device, w.start, &[0, 1, 2, 4]);
    assert_eq!(send_batch(&w.net, &w.device, &body).await.status, 201);
    let sponsor = Keypair::generate();
    let rule = "ab".repeat(32);
    let start_day = w.start / DAY_SECS;
    w.net
        .submit_ok(
            &sponsor,
            "adherence.rule",
            json!({"rule": rule, "kind": "glucose", "start_day": start_day, "end_day": start_day + 4, "min_percent": 80}),
        )
        .await;
    let subject = did(&w.cast.patient);
    // A stranger may not evaluate it.
    let stranger = Keypair::generate();
    let size = w.net.size();
    let refused = w
        .net
        .submit(
            &stranger,
            "adherence.evaluate",
            json!({"rule": rule, "subject": subject}),
        )
        .await;
    assert_eq!(
        (refused.status, refused.code()),
        (403, "adherence.not_allowed".into())
    );
    assert_eq!(w.net.size(), size);
    w.net
        .submit_ok(
            &sponsor,
            "adherence.evaluate",
            json!({"rule": rule, "subject": subject}),
        )
        .await;
    let path = format!("/v1/adherence/{rule}/{subject}");
    let result = w.net.signed(&sponsor, Method::GET, &path, None).await;
    assert_eq!(result.status, 200, "{}", result.text());
    let result = result.json();
    assert_eq!(result["met"], true);
    assert_eq!(result["counted"], 4);
    assert_eq!(result["missing"], json!([start_day + 3]));
    assert_eq!(result["disputed"], json!([]));
    // The subject sees it; a stranger gets what an unknown rule gets.
    assert_eq!(
        w.net
            .signed(&w.cast.patient, Method::GET, &path, None)
            .await
            .status,
        200
    );
    let hidden = w.net.signed(&stranger, Method::GET, &path, None).await;
    let unknown = w
        .net
        .signed(
            &stranger,
            Method::GET,
            &format!("/v1/adherence/{}/{subject}", "cd".repeat(32)),
            None,
        )
        .await;
    assert_eq!(hidden.status, 404);
    assert_eq!(hidden.text(), unknown.text());
}

/// No reading value, unit, code, serial number or Observation text reaches
/// the ledger: every entry of a log holding device attestations, batches,
/// an adherence rule and its evaluation is scanned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_reading_reaches_the_ledger() {
    let w = wearable().await;
    let device = did(&w.device);
    let body = batch(&device, &w.device, w.start, &[0, 1, 2]);
    assert_eq!(send_batch(&w.net, &w.device, &body).await.status, 201);
    let rule = "ef".repeat(32);
    let start_day = w.start / DAY_SECS;
    w.net
        .submit_ok(&w.cast.patient, "adherence.rule", json!({"rule": rule, "kind": "glucose", "start_day": start_day, "end_day": start_day + 2, "min_percent": 80}))
        .await;
    w.net
        .submit_ok(
            &w.cast.patient,
            "adherence.evaluate",
            json!({"rule": rule, "subject": did(&w.cast.patient)}),
        )
        .await;
    let mut entries = Vec::new();
    w.net
        .node
        .store
        .snapshot()
        .unwrap()
        .for_each_entry(|_, entry| {
            entries.push(String::from_utf8(entry.to_vec()).unwrap());
            Ok(())
        })
        .unwrap();
    assert_eq!(entries.len() as u64, w.net.size());
    let mut types = std::collections::BTreeSet::new();
    for (index, text) in entries.iter().enumerate() {
        let tx: Value = serde_json::from_str(text).unwrap();
        types.insert(tx["type"].as_str().unwrap().to_owned());
        for phi in [
            "123.25",
            "mg/dL",
            "2339-0",
            "Glucose",
            "SN-0042",
            "valueQuantity",
            "effectiveDateTime",
        ] {
            assert!(
                !text.contains(phi),
                "{phi:?} in ledger entry {index}: {text}"
            );
        }
    }
    for t in [
        "device.attest",
        "device.batch",
        "adherence.rule",
        "adherence.evaluate",
    ] {
        assert!(types.contains(t), "{t} not in the scanned log");
    }
}

/// The FHIR R5 Device of an attested device: read by its patient and by
/// the device, listed by `Device?patient=`, the id its readings
/// reference; a stranger cannot tell it from a made-up id; it turns
/// inactive when its manufacturer is no longer trusted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attested_device_reads_as_a_fhir_device() {
    let w = wearable().await;
    let device = did(&w.device);
    let id = device.strip_prefix("did:key:").unwrap().to_owned();
    let path = format!("/fhir/Device/{id}");

    // The readings reference Device/<id>; the device sends them.
    let body = batch(&device, &w.device, w.start, &[0]);
    assert_eq!(
        body["readings"][0]["observation"]["device"]["reference"],
        format!("Device/{id}")
    );
    assert_eq!(send_batch(&w.net, &w.device, &body).await.status, 201);

    let size = w.net.size();
    for key in [&w.cast.patient, &w.device] {
        let token = w.net.token(key, "PATRQT", None).await;
        let read = w.net.fhir(&token, Method::GET, &path, None).await;
        assert_eq!(read.status, 200, "{}", read.text());
        let resource = read.json();
        hygeia_fhir::validate::validate(&resource, Some(hygeia_fhir::types::ResourceType::Device))
            .unwrap();
        assert_eq!(resource["id"], id.as_str());
        assert_eq!(resource["status"], "active");
        assert_eq!(resource["identifier"][0]["value"], device);
        assert_eq!(resource["manufacturer"], did(&w.manufacturer));
        assert!(resource.get("serialNumber").is_none());
        assert!(resource.get("udiCarrier").is_none());
    }
    // Reading the ledger's view writes nothing to it.
    assert_eq!(w.net.size(), size);

    // Search: the patient's devices, for the patient; none for a stranger.
    let token = w.net.token(&w.cast.patient, "PATRQT", None).await;
    let search = w
        .net
        .fhir(
            &token,
            Method::GET,
            &format!("/fhir/Device?patient={}", did(&w.cast.patient)),
            None,
        )
        .await;
    assert_eq!(search.status, 200, "{}", search.text());
    assert_eq!(search.json()["total"], 1);
    assert_eq!(search.json()["entry"][0]["resource"]["id"], id.as_str());

    // A stranger: the real device and a made-up one answer alike.
    let stranger = Keypair::generate();
    let token = w.net.token(&stranger, "PATRQT", None).await;
    let hidden = w.net.fhir(&token, Method::GET, &path, None).await;
    let made_up = did(&Keypair::generate());
    let unknown = w
        .net
        .fhir(
            &token,
            Method::GET,
            &format!("/fhir/Device/{}", made_up.strip_prefix("did:key:").unwrap()),
            None,
        )
        .await;
    assert_eq!(hidden.status, 404, "{}", hidden.text());
    assert_eq!(unknown.status, 404);
    assert_eq!(
        hidden.issue().replace(&id, "ID"),
        unknown
            .issue()
            .replace(made_up.strip_prefix("did:key:").unwrap(), "ID")
    );
    let search = w
        .net
        .fhir(
            &token,
            Method::GET,
            &format!("/fhir/Device?patient={}", did(&w.cast.patient)),
            None,
        )
        .await;
    assert_eq!(search.status, 200);
    assert_eq!(search.json()["total"], 0);
    // An unknown parameter beside `patient` is refused when strict.
    let strict = w
        .net
        .fhir_with(
            &token,
            Method::GET,
            &format!("/fhir/Device?patient={}&model=x", did(&w.cast.patient)),
            None,
            &[("prefer", "handling=strict")],
        )
        .await;
    assert_eq!(strict.status, 400, "{}", strict.text());
    // Ids that are no did:key still read the FHIR store.
    let store = w
        .net
        .fhir(&token, Method::GET, "/fhir/Device/abc123", None)
        .await;
    assert_eq!(store.status, 404);

    // The manufacturer leaves the trust list: the device is inactive.
    w.net
        .submit_ok(
            &w.cast.governance,
            "trust.issuer",
            json!({"issuer": did(&w.manufacturer), "credential_type": VCT_DEVICE_ATTESTATION, "jurisdictions": [], "op": "remove"}),
        )
        .await;
    let token = w.net.token(&w.cast.patient, "PATRQT", None).await;
    let read = w.net.fhir(&token, Method::GET, &path, None).await;
    assert_eq!(read.status, 200, "{}", read.text());
    assert_eq!(read.json()["status"], "inactive");
}
