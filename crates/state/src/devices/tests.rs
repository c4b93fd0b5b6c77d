//! The rules of attested devices, reading batches and adherence: each
//! accepted case, and each refusal with its code and no change.

use std::cell::Cell;

use hygeia_credentials::credential_types::VCT_DEVICE_ATTESTATION;
use hygeia_credentials::status_list::{StatusList, StatusPurpose};
use hygeia_credentials::status_list_credential::StatusListCredential;
use hygeia_identity::Keypair;
use serde_json::{json, Value};

use super::*;
use crate::registry::{Registry, DOMAINS};
use crate::testing::{device_presentation, did, Network};

const DAY: i64 = DAY_SECS;

struct Fixture {
    net: Network,
    manufacturer: Keypair,
    device: Keypair,
    /// Start of the binding window: midnight UTC, a day-aligned start.
    start: i64,
}

fn fingerprint(state: &LedgerState) -> String {
    serde_json::to_string(state).unwrap()
}

fn list_id(manufacturer: &Keypair) -> String {
    format!(
        "https://maker.example{}",
        crate::credentials::list_path(&did(manufacturer), "devices")
    )
}

fn status_claim(manufacturer: &Keypair, index: usize) -> Value {
    json!({
        "type": "BitstringStatusListEntry",
        "statusPurpose": "revocation",
        "statusListIndex": index.to_string(),
        "statusListCredential": list_id(manufacturer),
    })
}

fn publish_list(f: &mut Fixture, revoked: &[usize]) -> Result<Effect, TxError> {
    let mut list = StatusList::new(0).unwrap();
    for i in revoked {
        list.set(*i, true).unwrap();
    }
    let created = time::OffsetDateTime::from_unix_timestamp(f.net.now - 3600).unwrap();
    let credential = StatusListCredential {
        id: list_id(&f.manufacturer),
        issuer: did(&f.manufacturer),
        purpose: StatusPurpose::Revocation,
        list,
        valid_from: Some(created),
        valid_until: None,
    }
    .issue(
        &f.manufacturer,
        &f.manufacturer.did().verification_method(),
        created,
    )
    .unwrap();
    let m = crate::testing::copy(&f.manufacturer);
    f.net
        .submit(&m, "status.list", json!({ "credential": credential }))
}

/// A network whose governance trusts a manufacturer for device
/// attestations, and a device bound to the cast's patient.
fn fixture(status: bool) -> Fixture {
    let mut net = Network::new();
    let manufacturer = Keypair::generate();
    let device = Keypair::generate();
    let governance = crate::testing::copy(&net.cast.governance);
    net.submit(
        &governance,
        "trust.issuer",
        json!({"issuer": did(&manufacturer), "credential_type": VCT_DEVICE_ATTESTATION, "jurisdictions": [], "op": "add"}),
    )
    .unwrap();
    let start = (net.now / DAY) * DAY;
    let mut f = Fixture {
        net,
        manufacturer,
        device,
        start,
    };
    if status {
        publish_list(&mut f, &[]).unwrap();
    }
    let claim = status.then(|| status_claim(&f.manufacturer, 5));
    let body = attest_body(&f, &f.device, claim);
    let patient = crate::testing::copy(&f.net.cast.patient);
    f.net.submit(&patient, DEVICE_ATTEST, body).unwrap();
    f
}

fn attest_body(f: &Fixture, device: &Keypair, status: Option<Value>) -> Value {
    let audience = f.net.state.network.id().unwrap().to_owned();
    json!({
        "device": did(device),
        "presentation": device_presentation(&f.manufacturer, device, &audience, &did(&f.net.cast.patient), f.net.now, status),
        "from": f.start,
        "until": f.start + 90 * DAY,
    })
}

/// A batch body over `days` (day offsets from the start), one glucose
/// reading at noon of each.
fn batch_body(f: &Fixture, days: &[i64], salt: u8) -> Value {
    let times: Vec<i64> = days.iter().map(|d| f.start + d * DAY + DAY / 2).collect();
    let readings: Vec<batch::SignedReading> = times
        .iter()
        .map(|&t| {
            let o = batch::example_observation(&did(&f.device), ReadingKind::Glucose, t, 123.25);
            batch::SignedReading {
                jws: batch::sign_observation(&f.device, &o),
                observation: o.as_object().unwrap().clone(),
            }
        })
        .collect();
    let parsed = batch::parse_batch(batch::SignedBatch {
        device: did(&f.device),
        readings,
    })
    .unwrap();
    parsed.verify().unwrap();
    let c = parsed.commit(&[salt; 32]);
    json!({
        "device": did(&f.device),
        "root": hex::encode(c.root),
        "count": parsed.readings.len(),
        "from": c.from,
        "to": c.to,
        "days": c.days,
        "commitment": hex::encode([salt; 32]),
    })
}

fn submit_batch(f: &mut Fixture, body: Value) -> Result<Effect, TxError> {
    let node = crate::testing::copy(&f.net.node);
    f.net.submit(&node, DEVICE_BATCH, body)
}

fn refused(f: &mut Fixture, key: &Keypair, tx_type: &str, body: Value, code: &str) {
    let before = fingerprint(&f.net.state);
    let next = f.net.next;
    let err = f.net.submit(key, tx_type, body).unwrap_err();
    assert_eq!(err.code.as_str(), code, "{}", err.message);
    assert_eq!(
        fingerprint(&f.net.state),
        before,
        "{code} changed the state"
    );
    assert_eq!(f.net.next, next);
}

#[test]
fn an_attested_device_commits_a_batch_as_one_record_of_its_patient() {
    let mut f = fixture(false);
    let device = f.net.state.devices.device(&did(&f.device)).unwrap();
    assert_eq!(device.patient, did(&f.net.cast.patient));
    assert_eq!(device.model, "GlucoMeter 3");
    let body = batch_body(&f, &[0, 1, 2], 1);
    submit_batch(&mut f, body.clone()).unwrap();
    let record = f.net.state.records.get(&"01".repeat(32)).unwrap();
    assert_eq!(record.patient, did(&f.net.cast.patient));
    assert_eq!(record.author, did(&f.device));
    assert_eq!(record.category, DEVICE_CATEGORY);
    let device = f.net.state.devices.device(&did(&f.device)).unwrap();
    assert_eq!((device.batches, device.readings), (1, 3));
    // The entry holds no value: only the root, count, window and days.
    let text = body.to_string();
    assert!(
        !text.contains("123.25") && !text.contains("mg/dL"),
        "{text}"
    );
}

#[test]
fn attestations_that_do_not_hold_are_refused_and_change_nothing() {
    let mut f = fixture(false);
    let patient = crate::testing::copy(&f.net.cast.patient);
    // The same device again.
    let again = attest_body(&f, &f.device, None);
    refused(&mut f, &patient, DEVICE_ATTEST, again, "device.exists");
    // A manufacturer the governance does not trust.
    let rogue = Keypair::generate();
    let other = Keypair::generate();
    let audience = f.net.state.network.id().unwrap().to_owned();
    let body = json!({
        "device": did(&other),
        "presentation": device_presentation(&rogue, &other, &audience, &did(&patient), f.net.now, None),
        "from": f.start, "until": f.start + DAY,
    });
    refused(
        &mut f,
        &patient,
        DEVICE_ATTEST,
        body,
        "device.untrusted_manufacturer",
    );
    // The attestation of one device claimed for another (impersonation).
    let mut body = attest_body(&f, &other, None);
    body["device"] = json!(did(&Keypair::generate()));
    refused(&mut f, &patient, DEVICE_ATTEST, body, "device.not_subject");
    // Presented for another patient: the key binding's nonce is theirs.
    let stranger = Keypair::generate();
    let body = attest_body(&f, &other, None);
    refused(
        &mut f,
        &stranger,
        DEVICE_ATTEST,
        body,
        "device.invalid_attestation",
    );
    // A licence is not a device attestation.
    let board = crate::testing::copy(&f.net.cast.board);
    let body = json!({
        "device": did(&other),
        "presentation": crate::testing::licence_presentation(&board, &other, &audience, f.net.now),
        "from": f.start, "until": f.start + DAY,
    });
    refused(
        &mut f,
        &patient,
        DEVICE_ATTEST,
        body,
        "device.invalid_attestation",
    );
    // The patient's own key is not a device.
    let body = attest_body(&f, &patient, None);
    refused(&mut f, &patient, DEVICE_ATTEST, body, "device.is_patient");
}

#[test]
fn a_presentation_disclosing_the_serial_number_is_refused() {
    use hygeia_credentials::jws::{SigningKey, VerifyingKey};
    use hygeia_credentials::sd_jwt::{ClaimPath, SdJwt};
    let mut f = fixture(false);
    let other = Keypair::generate();
    let key = VerifyingKey::from(f.manufacturer.public_key());
    let full = {
        use hygeia_credentials::credential_types::{Credential, DeviceAttestation, Issuance};
        Credential::DeviceAttestation(DeviceAttestation {
            subject: other.did(),
            model: "GlucoMeter 3".into(),
            firmware_version: "2.1.0".into(),
            serial_number: Some("SN-0042".into()),
            udi: None,
        })
        .issue(
            &Issuance {
                issuer: did(&f.manufacturer),
                issued_at: f.net.now,
                expires_at: None,
                holder_key: VerifyingKey::from(other.public_key()),
                status: None,
                key_id: Some(f.manufacturer.did().verification_method()),
            },
            &SigningKey::from(crate::testing::copy(&f.manufacturer)),
        )
        .unwrap()
    };
    let audience = f.net.state.network.id().unwrap().to_owned();
    let patient = crate::testing::copy(&f.net.cast.patient);
    let presented = SdJwt::parse(&full, &|_: &str, _: &_| Some(key.clone()))
        .unwrap()
        .present_with_key_binding(
            &[ClaimPath::keys(&["serial_number"])],
            &audience,
            &did(&patient),
            f.net.now,
            &SigningKey::from(crate::testing::copy(&other)),
        )
        .unwrap();
    let body = json!({"device": did(&other), "presentation": presented, "from": f.start, "until": f.start + DAY});
    refused(
        &mut f,
        &patient,
        DEVICE_ATTEST,
        body,
        "device.identifying_disclosure",
    );
}

#[test]
fn batches_that_do_not_hold_are_refused_and_change_nothing() {
    let mut f = fixture(false);
    let node = crate::testing::copy(&f.net.node);
    // Only a custodian commits a batch.
    let body = batch_body(&f, &[0], 1);
    let patient = crate::testing::copy(&f.net.cast.patient);
    refused(
        &mut f,
        &patient,
        DEVICE_BATCH,
        body.clone(),
        "custodian_only",
    );
    // An unknown device.
    let mut unknown = body.clone();
    unknown["device"] = json!(did(&Keypair::generate()));
    refused(&mut f, &node, DEVICE_BATCH, unknown, "device.unknown");
    // Readings outside the binding window.
    let late = batch_body(&f, &[90], 2);
    refused(
        &mut f,
        &node,
        DEVICE_BATCH,
        late,
        "device.reading_outside_window",
    );
    let early = batch_body(&f, &[-1], 3);
    refused(
        &mut f,
        &node,
        DEVICE_BATCH,
        early,
        "device.reading_outside_window",
    );
    // A replayed batch, and a batch overlapping the last one.
    let b = batch_body(&f, &[3, 4], 4);
    submit_batch(&mut f, b).unwrap();
    let b = batch_body(&f, &[3, 4], 4);
    refused(&mut f, &node, DEVICE_BATCH, b, "device.batch_replayed");
    let b = batch_body(&f, &[4, 5], 5);
    refused(&mut f, &node, DEVICE_BATCH, b, "device.batch_replayed");
    let b = batch_body(&f, &[1], 6);
    refused(&mut f, &node, DEVICE_BATCH, b, "device.batch_replayed");
    // Same root under a fresh window is still a replay.
    let mut same_root = batch_body(&f, &[6], 7);
    same_root["root"] = batch_body(&f, &[3, 4], 4)["root"].clone();
    refused(
        &mut f,
        &node,
        DEVICE_BATCH,
        same_root,
        "device.batch_replayed",
    );
    // A later batch goes in.
    let b = batch_body(&f, &[5], 8);
    submit_batch(&mut f, b).unwrap();
}

#[test]
fn oversized_or_inconsistent_batch_bodies_are_schema_violations() {
    let mut f = fixture(false);
    let node = crate::testing::copy(&f.net.node);
    let good = batch_body(&f, &[0, 1], 1);
    let mut too_many = good.clone();
    too_many["count"] = json!(MAX_BATCH_READINGS + 1);
    let mut day_outside = good.clone();
    day_outside["days"][0]["days"] = json!([(f.start / DAY) as u32 + 40]);
    let mut unsorted = good.clone();
    unsorted["days"][0]["days"] = json!([(f.start / DAY) as u32 + 1, (f.start / DAY) as u32]);
    let mut more_days_than_readings = good.clone();
    more_days_than_readings["count"] = json!(1);
    for body in [too_many, day_outside, unsorted, more_days_than_readings] {
        let before = fingerprint(&f.net.state);
        let err = f.net.sign(&node, DEVICE_BATCH, body).unwrap_err();
        assert_eq!(err.code.as_str(), "schema_violation");
        assert_eq!(fingerprint(&f.net.state), before);
    }
}

#[test]
fn a_revoked_attestation_stops_batches_and_disputes_its_days() {
    let mut f = fixture(true);
    let b = batch_body(&f, &[0, 1, 2], 1);
    submit_batch(&mut f, b).unwrap();
    let owner = Keypair::generate();
    let rule = "aa".repeat(32);
    let start_day = (f.start / DAY) as u32;
    f.net
        .submit(
            &owner,
            ADHERENCE_RULE,
            json!({"rule": rule, "kind": "glucose", "start_day": start_day, "end_day": start_day + 4, "min_percent": 60}),
        )
        .unwrap();
    // The manufacturer revokes the attestation (index 5).
    publish_list(&mut f, &[5]).unwrap();
    let node = crate::testing::copy(&f.net.node);
    let b = batch_body(&f, &[3], 2);
    refused(&mut f, &node, DEVICE_BATCH, b, "device.revoked");
    // Its days are shown as disputed, not counted: the rule is not met.
    let subject = did(&f.net.cast.patient);
    f.net
        .submit(
            &owner,
            ADHERENCE_EVALUATE,
            json!({"rule": rule, "subject": subject}),
        )
        .unwrap();
    let result = f.net.state.devices.result(&rule, &subject).unwrap();
    assert_eq!(result.counted, 0);
    assert_eq!(
        result.disputed,
        vec![start_day, start_day + 1, start_day + 2]
    );
    assert_eq!(result.missing, vec![start_day + 3, start_day + 4]);
    assert!(!result.met);
    // An unknown status (no list anchored) is refused too.
    let mut g = fixture(false);
    let other = Keypair::generate();
    let patient = crate::testing::copy(&g.net.cast.patient);
    let body = attest_body(&g, &other, Some(status_claim(&g.manufacturer, 1)));
    g.net.submit(&patient, DEVICE_ATTEST, body).unwrap();
    g.device = other;
    let node = crate::testing::copy(&g.net.node);
    let b = batch_body(&g, &[0], 1);
    refused(&mut g, &node, DEVICE_BATCH, b, "device.status_unknown");
    // A manufacturer removed from the trust list: refused.
    let governance = crate::testing::copy(&g.net.cast.governance);
    let manufacturer = did(&g.manufacturer);
    g.net
        .submit(&governance, "trust.issuer", json!({"issuer": manufacturer, "credential_type": VCT_DEVICE_ATTESTATION, "jurisdictions": [], "op": "remove"}))
        .unwrap();
    let b = batch_body(&g, &[0], 1);
    refused(
        &mut g,
        &node,
        DEVICE_BATCH,
        b,
        "device.untrusted_manufacturer",
    );
}

thread_local! {
    static MET: Cell<u32> = const { Cell::new(0) };
}

fn count_met(_: &mut LedgerState, _: &mut Cx<'_>, event: &AdherenceMet) -> Result<(), TxError> {
    assert_eq!(event.rule.len(), 64);
    MET.with(|m| m.set(m.get() + 1));
    Ok(())
}

fn listener(r: &mut Registry) {
    r.on::<AdherenceMet>(count_met);
}

#[test]
fn a_met_rule_emits_adherence_met_once_and_shows_missing_days() {
    let mut f = fixture(false);
    // Readings on 4 of 5 days; day 2 missing.
    let b = batch_body(&f, &[0, 1], 1);
    submit_batch(&mut f, b).unwrap();
    let b = batch_body(&f, &[3, 4], 2);
    submit_batch(&mut f, b).unwrap();
    let owner = Keypair::generate();
    let rule = "bb".repeat(32);
    let start_day = (f.start / DAY) as u32;
    f.net
        .submit(
            &owner,
            ADHERENCE_RULE,
            json!({"rule": rule, "kind": "glucose", "start_day": start_day, "end_day": start_day + 4, "min_percent": 80}),
        )
        .unwrap();
    let subject = did(&f.net.cast.patient);
    let mut domains = DOMAINS.to_vec();
    domains.push(("listener", listener));
    let registry = Registry::with_domains(&domains);
    let evaluate = json!({"rule": rule, "subject": subject});

    // A stranger may not evaluate; an unknown rule is refused.
    let stranger = Keypair::generate();
    refused(
        &mut f,
        &stranger,
        ADHERENCE_EVALUATE,
        evaluate.clone(),
        "adherence.not_allowed",
    );
    let unknown = json!({"rule": "cc".repeat(32), "subject": subject});
    refused(
        &mut f,
        &owner,
        ADHERENCE_EVALUATE,
        unknown,
        "adherence.unknown_rule",
    );
    let again =
        json!({"rule": rule, "kind": "steps", "start_day": 1, "end_day": 2, "min_percent": 1});
    refused(
        &mut f,
        &stranger,
        ADHERENCE_RULE,
        again,
        "adherence.rule_exists",
    );

    MET.with(|m| m.set(0));
    let tx = f
        .net
        .sign(&owner, ADHERENCE_EVALUATE, evaluate.clone())
        .unwrap();
    f.net.state.apply_with(&registry, f.net.next, &tx).unwrap();
    f.net.next += 1;
    assert_eq!(MET.with(Cell::get), 1);
    let result = f.net.state.devices.result(&rule, &subject).unwrap();
    assert_eq!((result.days, result.counted), (5, 4));
    assert_eq!(result.missing, vec![start_day + 2]);
    assert!(result.disputed.is_empty());
    assert!(result.met);

    // Evaluated again, by the subject this time: already met, no event.
    let patient = crate::testing::copy(&f.net.cast.patient);
    let before = fingerprint(&f.net.state);
    let tx = f.net.sign(&patient, ADHERENCE_EVALUATE, evaluate).unwrap();
    let err = f
        .net
        .state
        .apply_with(&registry, f.net.next, &tx)
        .unwrap_err();
    assert_eq!(err.code.as_str(), "adherence.already_met");
    assert_eq!(fingerprint(&f.net.state), before);
    assert_eq!(MET.with(Cell::get), 1);
}

#[test]
fn an_unmet_rule_is_recorded_and_can_be_met_later() {
    let mut f = fixture(false);
    let b = batch_body(&f, &[0], 1);
    submit_batch(&mut f, b).unwrap();
    let patient = crate::testing::copy(&f.net.cast.patient);
    let rule = "dd".repeat(32);
    let start_day = (f.start / DAY) as u32;
    f.net
        .submit(&patient, ADHERENCE_RULE, json!({"rule": rule, "kind": "glucose", "start_day": start_day, "end_day": start_day + 1, "min_percent": 100}))
        .unwrap();
    let evaluate = json!({"rule": rule, "subject": did(&patient)});
    f.net
        .submit(&patient, ADHERENCE_EVALUATE, evaluate.clone())
        .unwrap();
    let result = f.net.state.devices.result(&rule, &did(&patient)).unwrap();
    assert!(!result.met);
    assert_eq!(result.missing, vec![start_day + 1]);
    let b = batch_body(&f, &[1], 2);
    submit_batch(&mut f, b).unwrap();
    f.net
        .submit(&patient, ADHERENCE_EVALUATE, evaluate)
        .unwrap();
    assert!(
        f.net
            .state
            .devices
            .result(&rule, &did(&patient))
            .unwrap()
            .met
    );
}

/// The oncology trial's stipend: a sponsor escrows a participant's stipend
/// on its own adherence rule; the evaluation that finds the rule met pays
/// it in the same transaction, once. A look-alike rule (same kind and
/// window, another owner) reaches another milestone and pays nothing.
#[test]
fn a_met_rule_pays_the_stipend_its_sponsor_escrowed() {
    let mut f = fixture(false);
    let b = batch_body(&f, &[0, 1], 1);
    submit_batch(&mut f, b).unwrap();
    let sponsor = Keypair::generate();
    let governance = crate::testing::copy(&f.net.cast.governance);
    let subject = did(&f.net.cast.patient);
    f.net
        .submit(
            &governance,
            "unit.register",
            json!({"unit": "eur-cents", "issuer": did(&sponsor)}),
        )
        .unwrap();
    f.net
        .submit(
            &sponsor,
            "unit.mint",
            json!({"unit": "eur-cents", "to": did(&sponsor), "amount": 10_000}),
        )
        .unwrap();
    let rule = "dd".repeat(32);
    let start_day = (f.start / DAY) as u32;
    let milestone = milestone_id(&rule, &did(&sponsor), &subject);
    assert!(
        crate::escrow::check_milestone_id(&milestone).is_ok(),
        "{milestone}"
    );
    f.net
        .submit(
            &sponsor,
            "escrow.open",
            json!({"unit": "eur-cents", "amount": 2_500, "beneficiary": subject,
                   "condition": {"kind": "milestone", "id": milestone},
                   "refund_after": f.start + 365 * DAY}),
        )
        .unwrap();
    // A stranger's look-alike rule, met by the same readings, pays nothing.
    let stranger = Keypair::generate();
    let look_alike = "ee".repeat(32);
    for (owner, id) in [(&stranger, &look_alike), (&sponsor, &rule)] {
        f.net
            .submit(
                owner,
                ADHERENCE_RULE,
                json!({"rule": id, "kind": "glucose", "start_day": start_day, "end_day": start_day + 1, "min_percent": 100}),
            )
            .unwrap();
    }
    f.net
        .submit(
            &stranger,
            ADHERENCE_EVALUATE,
            json!({"rule": look_alike, "subject": subject}),
        )
        .unwrap();
    assert_eq!(f.net.state.accounts.balance("eur-cents", &subject), 0);
    f.net
        .submit(
            &sponsor,
            ADHERENCE_EVALUATE,
            json!({"rule": rule, "subject": subject}),
        )
        .unwrap();
    assert_eq!(f.net.state.accounts.balance("eur-cents", &subject), 2_500);
    assert_eq!(
        f.net.state.accounts.balance("eur-cents", &did(&sponsor)),
        7_500
    );
}
