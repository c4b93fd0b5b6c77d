//! Devices and adherence inside a trial: a wearable bound to a subject of
//! the study, its batches checked against the subject's consent and trial
//! window, the sponsor's rule paying the subject's stipend; and each
//! refusal with its code and no change, from a stranger's side too.

use hygeia_credentials::credential_types::{VCT_DEVICE_ATTESTATION, VCT_TRIAL_SITE_ACCREDITATION};
use hygeia_identity::Keypair;
use serde_json::{json, Value};

use super::super::{batch, milestone_id, ReadingKind, DAY_SECS};
use crate::testing::{copy, device_presentation, did, site_presentation, Network};
use crate::trials::VCT_ETHICS_COMMITTEE;
use crate::LedgerState;

const DAY: i64 = DAY_SECS;
const UNIT: &str = "eur-cents";

fn hash(n: u8) -> String {
    hex::encode([n; 32])
}

fn fingerprint(state: &LedgerState) -> String {
    serde_json::to_string(state).unwrap()
}

struct Fixture {
    net: Network,
    sponsor: Keypair,
    committee: Keypair,
    site: Keypair,
    manufacturer: Keypair,
    /// The participant's did:key for this study.
    subject: Keypair,
    device: Keypair,
    study: String,
    /// Midnight UTC, ten days ago: the device's binding window starts
    /// here; the ledger's clock stood at day 1, 06:00, at the consent.
    start: i64,
    salt: u8,
}

impl Fixture {
    fn ok(&mut self, key: &Keypair, tx_type: &str, body: Value) {
        if let Err(e) = self.net.submit(key, tx_type, body) {
            panic!("{tx_type}: {e}");
        }
    }

    fn refused(&mut self, key: &Keypair, tx_type: &str, body: Value, code: &str) {
        let before = fingerprint(&self.net.state);
        let next = self.net.next;
        let err = self.net.submit(key, tx_type, body).expect_err(tx_type);
        assert_eq!(err.code.as_str(), code, "{tx_type}: {}", err.message);
        assert_eq!(
            fingerprint(&self.net.state),
            before,
            "{tx_type} ({code}) changed the state"
        );
        assert_eq!(self.net.next, next);
    }

    fn attest(&self, patient: &Keypair, device: &Keypair, study: Option<&str>) -> Value {
        let audience = self.net.state.network.id().unwrap().to_owned();
        let mut body = json!({
            "device": did(device),
            "presentation": device_presentation(&self.manufacturer, device, &audience, &did(patient), self.start, None),
            "from": self.start,
            "until": self.start + 90 * DAY,
        });
        if let Some(study) = study {
            body["study"] = json!(study);
        }
        body
    }

    /// A batch from `device` with one glucose reading at noon of each day
    /// offset.
    fn batch(&mut self, device: &Keypair, days: &[i64]) -> Value {
        self.salt += 1;
        let readings: Vec<batch::SignedReading> = days
            .iter()
            .map(|d| {
                let t = self.start + d * DAY + DAY / 2;
                let o = batch::example_observation(&did(device), ReadingKind::Glucose, t, 123.25);
                batch::SignedReading {
                    jws: batch::sign_observation(device, &o),
                    observation: o.as_object().unwrap().clone(),
                }
            })
            .collect();
        let parsed = batch::parse_batch(batch::SignedBatch {
            device: did(device),
            readings,
        })
        .unwrap();
        let c = parsed.commit(&[self.salt; 32]);
        json!({
            "device": did(device),
            "root": hex::encode(c.root),
            "count": parsed.readings.len(),
            "from": c.from,
            "to": c.to,
            "days": c.days,
            "commitment": hex::encode([self.salt; 32]),
        })
    }

    fn send(&mut self, device: &Keypair, days: &[i64]) {
        let body = self.batch(device, days);
        let node = copy(&self.net.node);
        self.ok(&node, "device.batch", body);
    }

    fn send_refused(&mut self, device: &Keypair, days: &[i64], code: &str) {
        let body = self.batch(device, days);
        let node = copy(&self.net.node);
        self.refused(&node, "device.batch", body, code);
    }

    fn tick(&mut self, time: i64) {
        let node = copy(&self.net.node);
        self.ok(&node, "clock.tick", json!({ "time": time }));
    }

    fn consent(&mut self, key: &Keypair, version: &str, protocol: &str) {
        let body = json!({"study": self.study, "site": did(&self.site), "version": version,
                          "protocol": protocol, "document": hash(0x11)});
        self.ok(key, "econsent.give", body);
    }

    fn rule(&self, rule: &str, first: i64, last: i64, study: Option<&str>) -> Value {
        let day0 = self.start / DAY;
        let mut body = json!({"rule": rule, "kind": "glucose", "start_day": day0 + first,
                              "end_day": day0 + last, "min_percent": 100});
        if let Some(study) = study {
            body["study"] = json!(study);
        }
        body
    }

    fn register_study(&mut self, protocol: &str) -> String {
        let sponsor = copy(&self.sponsor);
        let committee = copy(&self.committee);
        let site = copy(&self.site);
        let tx = self
            .net
            .sign(
                &sponsor,
                "study.register",
                json!({"protocol": protocol, "version": "1.0", "committee": did(&committee)}),
            )
            .unwrap();
        self.net.state.apply(self.net.next, &tx).unwrap();
        self.net.next += 1;
        let study = hex::encode(tx.leaf_hash().0);
        self.ok(
            &committee,
            "ethics.approve",
            json!({"study": study, "version": "1.0", "protocol": protocol}),
        );
        let audience = self.net.state.network.id().unwrap().to_owned();
        let presentation = site_presentation(
            &self.accreditor(),
            &did(&site),
            &site,
            &study,
            &audience,
            self.start,
            None,
        );
        self.ok(
            &sponsor,
            "site.activate",
            json!({"study": study, "site": did(&site), "presentation": presentation}),
        );
        self.ok(
            &sponsor,
            "study.progress",
            json!({"study": study, "state": "recruiting"}),
        );
        study
    }

    fn accreditor(&self) -> Keypair {
        Keypair::from_seed(&[0x5a; 32])
    }
}

/// A recruiting study with an accredited site, a trusted manufacturer, a
/// sponsor with funds; the clock at day 1, 06:00 when the subject
/// consents, and the subject's wearable bound to the study.
fn fixture() -> Fixture {
    let net = Network::new();
    let start = (net.now / DAY - 10) * DAY;
    let mut f = Fixture {
        net,
        sponsor: Keypair::generate(),
        committee: Keypair::generate(),
        site: Keypair::generate(),
        manufacturer: Keypair::generate(),
        subject: Keypair::generate(),
        device: Keypair::generate(),
        study: String::new(),
        start,
        salt: 0,
    };
    let governance = copy(&f.net.cast.governance);
    for (issuer, vct) in [
        (did(&f.committee), VCT_ETHICS_COMMITTEE),
        (did(&f.accreditor()), VCT_TRIAL_SITE_ACCREDITATION),
        (did(&f.manufacturer), VCT_DEVICE_ATTESTATION),
    ] {
        f.ok(
            &governance,
            "trust.issuer",
            json!({"issuer": issuer, "credential_type": vct, "jurisdictions": [], "op": "add"}),
        );
    }
    let sponsor = copy(&f.sponsor);
    f.ok(
        &governance,
        "unit.register",
        json!({"unit": UNIT, "issuer": did(&sponsor)}),
    );
    f.ok(
        &sponsor,
        "unit.mint",
        json!({"unit": UNIT, "to": did(&sponsor), "amount": 1_000_000}),
    );
    f.tick(start + DAY + DAY / 4);
    f.study = f.register_study(&hash(0xa1));
    let subject = copy(&f.subject);
    f.consent(&subject, "1.0", &hash(0xa1));
    let body = f.attest(&subject, &f.device, Some(&f.study.clone()));
    f.ok(&subject, "device.attest", body);
    f
}

/// The chain: a trial wearable's batches → the sponsor's rule met → the
/// stipend escrowed to the subject's did:key released; an amendment with
/// re-consent stops the data until the subject consents again.
#[test]
fn a_trial_wearable_pays_the_stipend_and_stops_until_re_consent() {
    let mut f = fixture();
    let (sponsor, subject, device, committee) = (
        copy(&f.sponsor),
        copy(&f.subject),
        copy(&f.device),
        copy(&f.committee),
    );
    let entry = f.net.state.devices.device(&did(&device)).unwrap();
    assert_eq!(entry.study.as_deref(), Some(f.study.as_str()));
    assert_eq!(entry.patient, did(&subject));
    let window = f
        .net
        .state
        .trials
        .subject(&f.study, &did(&subject))
        .unwrap();
    assert_eq!(window.window_from, f.start + DAY + DAY / 4);
    assert_eq!(window.window_until, None);

    f.send(&device, &[1, 2, 3]);
    let rule = hash(0xe1);
    let study = f.study.clone();
    f.ok(
        &sponsor,
        "adherence.rule",
        f.rule(&rule, 1, 3, Some(&study)),
    );
    let entry = f.net.state.devices.rule(&rule).unwrap();
    assert_eq!(entry.owner, did(&sponsor));
    // The sponsor's stipend, escrowed to the subject's did:key.
    let id = milestone_id(&rule, &did(&sponsor), &did(&subject));
    let refund_after = f.net.now + 365 * DAY;
    f.ok(
        &sponsor,
        "escrow.open",
        json!({"unit": UNIT, "amount": 5_000, "beneficiary": did(&subject),
               "condition": {"kind": "milestone", "id": id}, "refund_after": refund_after}),
    );
    f.ok(
        &sponsor,
        "adherence.evaluate",
        json!({"rule": rule, "subject": did(&subject)}),
    );
    let result = f.net.state.devices.result(&rule, &did(&subject)).unwrap();
    assert!(result.met, "{result:?}");
    assert_eq!(f.net.state.accounts.balance(UNIT, &did(&subject)), 5_000);

    // The amendment asks for re-consent: no new data flows until then.
    f.ok(
        &sponsor,
        "study.amend",
        json!({"study": study, "protocol": hash(0xa2), "version": "2.0", "reconsent": true}),
    );
    // Proposed only: the data still flows.
    f.send(&device, &[4]);
    f.ok(
        &committee,
        "ethics.approve",
        json!({"study": study, "version": "2.0", "protocol": hash(0xa2)}),
    );
    f.send_refused(&device, &[5], "trial.reconsent_required");
    // Nor can the subject bind another device meanwhile.
    let other = Keypair::generate();
    let body = f.attest(&subject, &other, Some(&study));
    f.refused(&subject, "device.attest", body, "trial.reconsent_required");
    f.consent(&subject, "2.0", &hash(0xa2));
    f.send(&device, &[5]);
    let entry = f.net.state.devices.device(&did(&device)).unwrap();
    assert_eq!((entry.batches, entry.readings), (3, 5));
}

#[test]
fn readings_outside_the_trial_window_are_refused() {
    let mut f = fixture();
    let device = copy(&f.device);
    // Day 0 is in the device's binding window but before the consent.
    f.send_refused(&device, &[0, 1], "device.outside_trial_window");
    f.send_refused(&device, &[0], "device.outside_trial_window");
    // Day 1 06:00 is the consent; noon of day 1 is inside.
    f.send(&device, &[1]);
}

#[test]
fn a_withdrawn_subject_sends_nothing_and_is_not_evaluated() {
    let mut f = fixture();
    let (sponsor, subject, device) = (copy(&f.sponsor), copy(&f.subject), copy(&f.device));
    f.send(&device, &[1, 2]);
    let rule = hash(0xe2);
    let study = f.study.clone();
    f.ok(
        &sponsor,
        "adherence.rule",
        f.rule(&rule, 1, 2, Some(&study)),
    );
    f.tick(f.start + 3 * DAY);
    f.ok(&subject, "econsent.withdraw", json!({ "study": study }));
    let s = f.net.state.trials.subject(&study, &did(&subject)).unwrap();
    assert_eq!(s.window_until, Some(f.start + 3 * DAY));
    f.send_refused(&device, &[4], "trial.subject_withdrawn");
    let evaluate = json!({"rule": rule, "subject": did(&subject)});
    f.refused(
        &sponsor,
        "adherence.evaluate",
        evaluate.clone(),
        "trial.subject_withdrawn",
    );
    f.refused(
        &subject,
        "adherence.evaluate",
        evaluate,
        "trial.subject_withdrawn",
    );
    let other = Keypair::generate();
    let body = f.attest(&subject, &other, Some(&study));
    f.refused(&subject, "device.attest", body, "trial.subject_withdrawn");
}

/// A subject whose participation ended (completed: off-study) sends no
/// more; its evaluation counts only the days of its window, so readings
/// dated after the end do not count.
#[test]
fn an_ended_subject_sends_nothing_and_later_days_do_not_count() {
    let mut f = fixture();
    let (sponsor, subject, device, site) = (
        copy(&f.sponsor),
        copy(&f.subject),
        copy(&f.device),
        copy(&f.site),
    );
    let study = f.study.clone();
    for m in ["screened", "enrolled"] {
        f.ok(
            &site,
            "subject.milestone",
            json!({"study": study, "subject": did(&subject), "milestone": m}),
        );
    }
    // Readings of days 1 to 4, sent while the clock stood at day 1.
    f.send(&device, &[1, 2, 3, 4]);
    f.tick(f.start + 2 * DAY + DAY / 2);
    f.ok(
        &site,
        "subject.milestone",
        json!({"study": study, "subject": did(&subject), "milestone": "completed"}),
    );
    f.send_refused(&device, &[5], "trial.subject_ended");
    let rule = hash(0xe3);
    f.ok(
        &sponsor,
        "adherence.rule",
        f.rule(&rule, 1, 4, Some(&study)),
    );
    f.ok(
        &sponsor,
        "adherence.evaluate",
        json!({"rule": rule, "subject": did(&subject)}),
    );
    let result = f.net.state.devices.result(&rule, &did(&subject)).unwrap();
    let day0 = (f.start / DAY) as u32;
    assert_eq!(result.counted, 2, "{result:?}");
    assert_eq!(result.missing, [day0 + 3, day0 + 4]);
    assert!(!result.met);
}

/// What a stranger (or another study's sponsor or subject) can do: bind
/// no device to a study it is no subject of, register no rule for a
/// study it does not sponsor, evaluate no rule of a study for someone
/// outside it, and learn nothing of the trial's data through a rule of
/// its own; the subject's stipend goes only to the subject.
#[test]
fn strangers_can_neither_bind_register_evaluate_nor_drain() {
    let mut f = fixture();
    let (sponsor, subject, device) = (copy(&f.sponsor), copy(&f.subject), copy(&f.device));
    let study = f.study.clone();
    f.send(&device, &[1, 2]);
    let stranger = Keypair::generate();
    // A stranger binds a device to the study for itself: no subject.
    let gadget = Keypair::generate();
    let body = f.attest(&stranger, &gadget, Some(&study));
    f.refused(&stranger, "device.attest", body, "trial.not_subject");
    // ... or signs the subject's binding (the key binding names the
    // subject): the subject's consent does not make it the stranger's.
    let body = f.attest(&subject, &gadget, Some(&study));
    f.refused(&stranger, "device.attest", body, "trial.not_subject");
    // The sponsor is no subject either.
    let body = f.attest(&sponsor, &gadget, Some(&study));
    f.refused(&sponsor, "device.attest", body, "trial.not_subject");
    // An unknown study.
    let body = f.attest(&subject, &gadget, Some(&hash(0x99)));
    f.refused(&subject, "device.attest", body, "trial.unknown_study");
    // A malformed study id is refused by the schema.
    let mut body = f.attest(&subject, &gadget, None);
    body["study"] = json!("not-a-study");
    let err = f.net.submit(&subject, "device.attest", body).unwrap_err();
    assert_eq!(err.code.as_str(), "schema_violation", "{}", err.message);

    // A rule for someone else's study.
    let rule = hash(0xe4);
    f.refused(
        &stranger,
        "adherence.rule",
        f.rule(&rule, 1, 2, Some(&study)),
        "trial.not_sponsor",
    );
    f.refused(
        &subject,
        "adherence.rule",
        f.rule(&rule, 1, 2, Some(&study)),
        "trial.not_sponsor",
    );
    f.refused(
        &sponsor,
        "adherence.rule",
        f.rule(&rule, 1, 2, Some(&hash(0x99))),
        "trial.unknown_study",
    );
    f.ok(
        &sponsor,
        "adherence.rule",
        f.rule(&rule, 1, 2, Some(&study)),
    );
    let evaluate = json!({"rule": rule, "subject": did(&subject)});
    f.refused(
        &stranger,
        "adherence.evaluate",
        evaluate,
        "adherence.not_allowed",
    );

    // A second study of the same sponsor, and its own subject: the first
    // study's rule is not evaluated for it, by anyone.
    let second = f.register_study(&hash(0xb1));
    let outsider = Keypair::generate();
    let body = json!({"study": second, "site": did(&f.site), "version": "1.0",
                      "protocol": hash(0xb1), "document": hash(0x12)});
    f.ok(&outsider, "econsent.give", body);
    let evaluate = json!({"rule": rule, "subject": did(&outsider)});
    f.refused(
        &sponsor,
        "adherence.evaluate",
        evaluate.clone(),
        "trial.not_subject",
    );
    f.refused(
        &outsider,
        "adherence.evaluate",
        evaluate,
        "trial.not_subject",
    );
    // Nor may the second study's subject bind a device to the first.
    let body = f.attest(&outsider, &gadget, Some(&study));
    f.refused(&outsider, "device.attest", body, "trial.not_subject");

    // A stranger's own rule (of no study) counts no trial device: it
    // learns nothing of the subject's readings, and its milestone is not
    // the sponsor's.
    let own = hash(0xe5);
    f.ok(&stranger, "adherence.rule", f.rule(&own, 1, 2, None));
    f.ok(
        &stranger,
        "adherence.evaluate",
        json!({"rule": own, "subject": did(&subject)}),
    );
    let result = f.net.state.devices.result(&own, &did(&subject)).unwrap();
    assert_eq!((result.counted, result.met), (0, false), "{result:?}");

    // The sponsor's stipend escrow pays the subject alone, once, and only
    // on the sponsor's rule met; nobody releases it early or by hand.
    let id = milestone_id(&rule, &did(&sponsor), &did(&subject));
    let refund_after = f.net.now + 365 * DAY;
    let escrow = f
        .net
        .sign(
            &sponsor,
            "escrow.open",
            json!({"unit": UNIT, "amount": 5_000, "beneficiary": did(&subject),
                   "condition": {"kind": "milestone", "id": id}, "refund_after": refund_after}),
        )
        .unwrap();
    f.net.state.apply(f.net.next, &escrow).unwrap();
    f.net.next += 1;
    let escrow_id = hex::encode(escrow.leaf_hash().0);
    for (key, code) in [
        (&stranger, "escrow.not_party"),
        (&subject, "escrow.condition_unmet"),
    ] {
        f.refused(key, "escrow.release", json!({ "escrow": escrow_id }), code);
    }
    // A look-alike rule of the stranger's with the same window, met over
    // the stranger's own wearable, reaches another milestone id.
    let stranger_device = Keypair::generate();
    let body = f.attest(&stranger, &stranger_device, None);
    f.ok(&stranger, "device.attest", body);
    let look_alike = hash(0xe6);
    f.ok(&stranger, "adherence.rule", f.rule(&look_alike, 1, 2, None));
    f.send(&stranger_device, &[1, 2]);
    f.ok(
        &stranger,
        "adherence.evaluate",
        json!({"rule": look_alike, "subject": did(&stranger)}),
    );
    assert!(
        f.net
            .state
            .devices
            .result(&look_alike, &did(&stranger))
            .unwrap()
            .met
    );
    assert_eq!(f.net.state.accounts.balance(UNIT, &did(&subject)), 0);
    assert_eq!(f.net.state.accounts.balance(UNIT, &did(&stranger)), 0);
    // The subject's own evaluation of the sponsor's rule pays the
    // subject; a second evaluation is refused and pays nothing more.
    f.ok(
        &subject,
        "adherence.evaluate",
        json!({"rule": rule, "subject": did(&subject)}),
    );
    assert_eq!(f.net.state.accounts.balance(UNIT, &did(&subject)), 5_000);
    f.refused(
        &subject,
        "adherence.evaluate",
        json!({"rule": rule, "subject": did(&subject)}),
        "adherence.already_met",
    );
    assert_eq!(f.net.state.accounts.balance(UNIT, &did(&subject)), 5_000);
}

/// A subject's device bound outside the study does not count for the
/// study's rules, and the study's device does not count outside it.
#[test]
fn only_the_study_devices_count_for_the_study_rule() {
    let mut f = fixture();
    let (sponsor, subject, device) = (copy(&f.sponsor), copy(&f.subject), copy(&f.device));
    let study = f.study.clone();
    let private = Keypair::generate();
    let body = f.attest(&subject, &private, None);
    f.ok(&subject, "device.attest", body);
    f.send(&private, &[1, 2, 3]);
    f.send(&device, &[1, 2]);
    let rule = hash(0xe7);
    f.ok(
        &sponsor,
        "adherence.rule",
        f.rule(&rule, 1, 3, Some(&study)),
    );
    f.ok(
        &sponsor,
        "adherence.evaluate",
        json!({"rule": rule, "subject": did(&subject)}),
    );
    let result = f.net.state.devices.result(&rule, &did(&subject)).unwrap();
    assert_eq!(result.counted, 2, "{result:?}");
    let day0 = (f.start / DAY) as u32;
    assert_eq!(result.missing, [day0 + 3]);
    // The subject's own rule over the same days counts its own device.
    let own = hash(0xe8);
    f.ok(&subject, "adherence.rule", f.rule(&own, 1, 3, None));
    f.ok(
        &subject,
        "adherence.evaluate",
        json!({"rule": own, "subject": did(&subject)}),
    );
    assert!(
        f.net
            .state
            .devices
            .result(&own, &did(&subject))
            .unwrap()
            .met
    );
}

/// Log entries and snapshots from before the trial fields still parse.
#[test]
fn entries_without_a_study_still_parse() {
    use super::super::{AdherenceRule, DeviceAttest};
    let attest: DeviceAttest = serde_json::from_value(json!({
        "device": did(&Keypair::generate()), "presentation": "a~", "from": 0, "until": 86_400,
    }))
    .unwrap();
    assert_eq!(attest.study, None);
    let rule: AdherenceRule = serde_json::from_value(json!({
        "rule": hash(1), "kind": "glucose", "start_day": 1, "end_day": 2, "min_percent": 80,
    }))
    .unwrap();
    assert_eq!(rule.study, None);
    // And without the field, the body serializes as before.
    assert!(!serde_json::to_string(&rule).unwrap().contains("study"));
    // Unknown fields are still refused.
    assert!(serde_json::from_value::<AdherenceRule>(json!({
        "rule": hash(1), "kind": "glucose", "start_day": 1, "end_day": 2, "min_percent": 80, "studies": [],
    }))
    .is_err());
}
