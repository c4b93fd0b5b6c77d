//! The oncology trial over HTTP: a sponsor registers the protocol, the
//! ethics committee approves it, an accredited site is activated, a
//! participant consents with a study-only key, the site records
//! milestones and is paid from the sponsor's escrow; then an amendment
//! with re-consent: the next visit counts (and pays) only once the
//! participant consented to the new version. ResearchStudy and
//! ResearchSubject are read through /fhir. And what a stranger with a
//! fresh key can do to it.

use hygeia_credentials::credential_types::VCT_TRIAL_SITE_ACCREDITATION;
use hygeia_identity::Keypair;
use hygeia_state::trials::{milestone_id, VCT_ETHICS_COMMITTEE};
use serde_json::{json, Value};

use super::*;

const UNIT: &str = "eur-cents";

fn hash(n: u8) -> String {
    hex::encode([n; 32])
}

struct Trial {
    net: Net,
    cast: Cast,
    sponsor: Keypair,
    committee: Keypair,
    subject: Keypair,
    study: String,
}

impl Trial {
    /// Submits, expects the refusal `status`/`code`, and that the log did
    /// not grow.
    async fn refused(&self, key: &Keypair, tx_type: &str, body: Value, status: u16, code: &str) {
        let size = self.net.size();
        let answer = self.net.submit(key, tx_type, body).await;
        assert_eq!(answer.status, status, "{tx_type}: {}", answer.text());
        assert_eq!(answer.code(), code, "{tx_type}: {}", answer.text());
        assert_eq!(self.net.size(), size, "{tx_type} grew the log");
    }

    fn milestone(&self, milestone: &str) -> Value {
        json!({"study": self.study, "subject": did(&self.subject), "milestone": milestone})
    }

    fn consent(&self, version: &str, protocol: &str) -> Value {
        json!({"study": self.study, "site": CLINIC, "version": version,
               "protocol": protocol, "document": hash(0x11)})
    }

    async fn site_balance(&self) -> u64 {
        let account = self.net.get(&format!("/v1/accounts/{CLINIC}")).await;
        account.json()["balances"][UNIT].as_u64().unwrap_or(0)
    }
}

/// The network of `Net::network` (its organization, CLINIC, is the site,
/// its admin key signing for it), a sponsor with funds, a trusted
/// committee and site accreditor, the clock ticked, and a study
/// registered, approved, with CLINIC active and recruiting.
async fn trial() -> Trial {
    let (net, cast) = Net::network().await;
    let sponsor = Keypair::generate();
    let committee = Keypair::generate();
    let accreditor = Keypair::generate();
    for (issuer, vct) in [
        (&committee, VCT_ETHICS_COMMITTEE),
        (&accreditor, VCT_TRIAL_SITE_ACCREDITATION),
    ] {
        net.submit_ok(
            &cast.governance,
            "trust.issuer",
            json!({"issuer": did(issuer), "credential_type": vct, "jurisdictions": [], "op": "add"}),
        )
        .await;
    }
    net.submit_ok(
        &cast.governance,
        "unit.register",
        json!({"unit": UNIT, "issuer": did(&sponsor)}),
    )
    .await;
    net.submit_ok(
        &sponsor,
        "unit.mint",
        json!({"unit": UNIT, "to": did(&sponsor), "amount": 1_000_000}),
    )
    .await;
    let tick = net
        .send(Request::post("/v1/clock").body(Body::empty()).unwrap())
        .await;
    assert_eq!(tick.status, 201, "{}", tick.text());
    let registered = net
        .submit_ok(
            &sponsor,
            "study.register",
            json!({"protocol": hash(0xa1), "version": "1.0", "committee": did(&committee)}),
        )
        .await;
    let study = registered.json()["leaf_hash"].as_str().unwrap().to_owned();
    let t = Trial {
        net,
        cast,
        sponsor,
        committee,
        subject: Keypair::generate(),
        study,
    };
    // A stranger is no committee; the study's own committee approves.
    let stranger = Keypair::generate();
    let approve = json!({"study": t.study, "version": "1.0", "protocol": hash(0xa1)});
    t.refused(
        &stranger,
        "ethics.approve",
        approve.clone(),
        403,
        "trial.not_committee",
    )
    .await;
    t.net
        .submit_ok(&t.committee, "ethics.approve", approve)
        .await;
    let network_id = t
        .net
        .node
        .state
        .read()
        .state
        .network
        .id()
        .unwrap()
        .to_owned();
    let presentation = hygeia_state::testing::site_presentation(
        &accreditor,
        CLINIC,
        &t.cast.admin,
        &t.study,
        &network_id,
        now(),
        None,
    );
    let activate = json!({"study": t.study, "site": CLINIC, "presentation": presentation});
    t.refused(
        &stranger,
        "site.activate",
        activate.clone(),
        403,
        "trial.not_sponsor",
    )
    .await;
    t.net.submit_ok(&t.sponsor, "site.activate", activate).await;
    t.net
        .submit_ok(
            &t.sponsor,
            "study.progress",
            json!({"study": t.study, "state": "recruiting"}),
        )
        .await;
    t
}

#[tokio::test]
async fn the_oncology_trial_pays_the_site_after_re_consent_following_an_amendment() {
    let t = trial().await;
    let (site, subject) = (&t.cast.admin, &t.subject);
    t.net
        .submit_ok(subject, "econsent.give", t.consent("1.0", &hash(0xa1)))
        .await;
    // The sponsor escrows the site's fee for each milestone of this
    // subject (the ids are served with the subject, and computable).
    for (milestone, fee) in [
        ("enrolled", 50_000),
        ("visit-1", 20_000),
        ("visit-2", 20_000),
    ] {
        let id = milestone_id(&t.study, &did(subject), &milestone.parse().unwrap());
        t.net
            .submit_ok(
                &t.sponsor,
                "escrow.open",
                json!({"unit": UNIT, "amount": fee, "beneficiary": CLINIC,
                       "condition": {"kind": "milestone", "id": id}, "refund_after": now() + 365 * 86_400}),
            )
            .await;
    }
    for milestone in ["screened", "enrolled", "visit-1"] {
        t.net
            .submit_ok(site, "subject.milestone", t.milestone(milestone))
            .await;
    }
    assert_eq!(t.site_balance().await, 70_000);

    // The amendment, approved by the committee, asks for re-consent.
    t.net
        .submit_ok(
            &t.sponsor,
            "study.amend",
            json!({"study": t.study, "protocol": hash(0xa2), "version": "2.0", "reconsent": true}),
        )
        .await;
    t.net
        .submit_ok(
            &t.committee,
            "ethics.approve",
            json!({"study": t.study, "version": "2.0", "protocol": hash(0xa2)}),
        )
        .await;
    t.refused(
        site,
        "subject.milestone",
        t.milestone("visit-2"),
        409,
        "trial.reconsent_required",
    )
    .await;
    assert_eq!(t.site_balance().await, 70_000);
    t.refused(
        subject,
        "econsent.give",
        t.consent("1.0", &hash(0xa1)),
        409,
        "trial.version_superseded",
    )
    .await;
    t.net
        .submit_ok(subject, "econsent.give", t.consent("2.0", &hash(0xa2)))
        .await;
    t.net
        .submit_ok(site, "subject.milestone", t.milestone("visit-2"))
        .await;
    assert_eq!(t.site_balance().await, 90_000);
    // The primary endpoint is assessed: an event naming the endpoint and
    // the report's hash; the finding stays with the site.
    let endpoint = json!({"study": t.study, "subject": did(subject), "endpoint": "primary", "report": hash(0xe1)});
    t.refused(
        &t.sponsor,
        "subject.endpoint",
        endpoint.clone(),
        403,
        "trial.not_site",
    )
    .await;
    t.net.submit_ok(site, "subject.endpoint", endpoint).await;

    // The study and the subject as served.
    let study = t.net.get(&format!("/v1/studies/{}", t.study)).await;
    assert_eq!(study.status, 200, "{}", study.text());
    let study = study.json();
    assert_eq!(study["state"], "recruiting");
    assert_eq!(study["current_version"], "2.0");
    assert_eq!(study["enrolled"], 1);
    assert_eq!(study["sites"][0]["standing"], "valid");
    let listed = &study["subject_list"][0];
    assert_eq!(listed["state"], "on-study");
    assert_eq!(listed["consent_current"], true);
    assert_eq!(listed["milestones"].as_array().unwrap().len(), 4);
    assert_eq!(listed["endpoints"][0]["endpoint"], "primary");

    // FHIR: the study for any reader, the subject for its parties only.
    let sponsor_token = t.net.token(&t.sponsor, "HRESCH", None).await;
    let read = t
        .net
        .fhir(
            &sponsor_token,
            Method::GET,
            &format!("/fhir/ResearchStudy/{}", t.study),
            None,
        )
        .await;
    assert_eq!(read.status, 200, "{}", read.text());
    let resource = read.json();
    assert_eq!(resource["resourceType"], "ResearchStudy");
    assert_eq!(resource["version"], "2.0");
    let states: Vec<&str> = resource["progressStatus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["state"]["coding"][0]["code"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["in-review", "approved", "recruiting"]);
    hygeia_fhir::validate::validate(&resource, None).unwrap();
    let subject_id = crate::api::fhir::trials::subject_id(&t.study, &did(subject));
    let path = format!("/fhir/ResearchSubject/{subject_id}");
    for (key, status) in [(&t.sponsor, 200), (subject, 200), (site, 200)] {
        let token = t.net.token(key, "HRESCH", None).await;
        let read = t.net.fhir(&token, Method::GET, &path, None).await;
        assert_eq!(read.status, status, "{}", read.text());
        assert_eq!(
            read.json()["progress"][0]["subjectState"]["coding"][0]["code"],
            "on-study"
        );
    }
    let stranger = Keypair::generate();
    let token = t.net.token(&stranger, "HRESCH", None).await;
    let hidden = t.net.fhir(&token, Method::GET, &path, None).await;
    let unknown = t
        .net
        .fhir(
            &token,
            Method::GET,
            &format!(
                "/fhir/ResearchSubject/{}-{}",
                &t.study[..24],
                hash(0)[..32].to_owned()
            ),
            None,
        )
        .await;
    assert_eq!(hidden.status, 404);
    assert_eq!(unknown.status, 404);
    assert_eq!(hidden.issue(), unknown.issue());

    // No trial entry carries free text: every string of their bodies is a
    // DID, a SHA-256, a code, or the site's accreditation presentation
    // (an SD-JWT disclosing nothing but its issuer-signed claims).
    let mut entries = Vec::new();
    t.net
        .node
        .store
        .snapshot()
        .unwrap()
        .for_each_entry(|_, entry| {
            entries.push(entry.to_vec());
            Ok(())
        })
        .unwrap();
    let trial_types = ["study.", "ethics.", "site.", "econsent.", "subject."];
    let mut seen = 0;
    for entry in entries {
        let tx: Value = serde_json::from_slice(&entry).unwrap();
        let tx_type = tx["type"].as_str().unwrap_or_default();
        if !trial_types.iter().any(|p| tx_type.starts_with(p)) {
            continue;
        }
        seen += 1;
        for (field, value) in tx["body"].as_object().unwrap() {
            if field == "presentation" {
                continue;
            }
            let Some(text) = value.as_str() else {
                assert!(value.is_boolean(), "{tx_type}.{field}: {value}");
                continue;
            };
            let hex = text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit());
            let code = text.len() <= 64
                && text
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(&b));
            assert!(
                text.starts_with("did:") || hex || code,
                "{tx_type}.{field} holds {text:?}"
            );
        }
    }
    assert_eq!(seen, 13);
}

/// What a stranger with a fresh did:key can do to a running trial: nothing
/// it submits is admitted (each refusal has its code and the log does not
/// grow), and reading tells it only what the public log says.
#[tokio::test]
async fn a_stranger_can_neither_amend_approve_enrol_record_nor_withdraw_others() {
    let t = trial().await;
    t.net
        .submit_ok(&t.subject, "econsent.give", t.consent("1.0", &hash(0xa1)))
        .await;
    let stranger = Keypair::generate();
    t.refused(
        &stranger,
        "study.amend",
        json!({"study": t.study, "protocol": hash(0xb2), "version": "9", "reconsent": false}),
        403,
        "trial.not_sponsor",
    )
    .await;
    t.refused(
        &stranger,
        "study.progress",
        json!({"study": t.study, "state": "terminated"}),
        403,
        "trial.not_sponsor",
    )
    .await;
    t.refused(
        &stranger,
        "subject.milestone",
        t.milestone("screened"),
        403,
        "trial.not_site",
    )
    .await;
    t.refused(
        &stranger,
        "subject.deviation",
        json!({"study": t.study, "subject": did(&t.subject), "severity": "major", "report": hash(3)}),
        403,
        "trial.not_site",
    )
    .await;
    t.refused(
        &stranger,
        "econsent.withdraw",
        json!({"study": t.study}),
        403,
        "trial.not_subject",
    )
    .await;
    // A stranger consenting is a new subject like any participant; a
    // consent to a version that does not exist is refused.
    t.refused(
        &stranger,
        "econsent.give",
        t.consent("7.0", &hash(0xa1)),
        404,
        "trial.version_unknown",
    )
    .await;
    // Reading: an unknown study is 404; a ResearchStudy id that is no
    // ledger study reads the FHIR store, which has none either.
    assert_eq!(
        t.net.get(&format!("/v1/studies/{}", hash(9))).await.status,
        404
    );
    let token = t.net.token(&stranger, "HRESCH", None).await;
    let read = t
        .net
        .fhir(
            &token,
            Method::GET,
            &format!("/fhir/ResearchStudy/{}", hash(9)),
            None,
        )
        .await;
    assert_eq!(read.status, 404);
    // The subject withdraws at once; the site records nothing more.
    t.net
        .submit_ok(&t.subject, "econsent.withdraw", json!({"study": t.study}))
        .await;
    t.refused(
        &t.cast.admin,
        "subject.milestone",
        t.milestone("screened"),
        409,
        "trial.subject_ended",
    )
    .await;
}

/// The consent is backed by the subject's HRESCH grant to the sponsor: the
/// sponsor reads the subject's data under it, the ResearchSubject points
/// to it as a FHIR Consent, and the subject's withdrawal stops the reads
/// in the same transaction (the refusal itself logged).
#[tokio::test]
async fn withdrawal_revokes_the_grant_behind_the_consent_and_the_sponsor_reads_nothing_more() {
    let t = trial().await;
    let subject = did(&t.subject);
    let upload = t
        .net
        .upload(
            &t.subject,
            &subject,
            "lab",
            br#"{"resourceType":"Observation","id":"q1"}"#,
        )
        .await;
    assert_eq!(upload.status, 201, "{}", upload.text());
    let record = upload.json()["record"].as_str().unwrap().to_owned();
    let now = now();
    let grant = t
        .net
        .submit_ok(
            &t.subject,
            "consent.grant",
            json!({"patient": subject, "grantee": did(&t.sponsor), "scope": {"categories": ["lab"]},
                   "actions": ["read"], "purpose": "HRESCH", "not_before": now - 60, "not_after": now + 86_400}),
        )
        .await
        .json()["leaf_hash"]
        .as_str()
        .unwrap()
        .to_owned();

    // Someone else's grant cannot back this subject's consent.
    let mut body = t.consent("1.0", &hash(0xa1));
    let foreign = t
        .net
        .submit_ok(
            &t.cast.patient,
            "consent.grant",
            json!({"patient": did(&t.cast.patient), "grantee": did(&t.sponsor), "scope": {"categories": ["lab"]},
                   "actions": ["read"], "purpose": "HRESCH", "not_before": now - 60, "not_after": now + 86_400}),
        )
        .await
        .json()["leaf_hash"]
        .as_str()
        .unwrap()
        .to_owned();
    body["grants"] = json!([foreign]);
    t.refused(
        &t.subject,
        "econsent.give",
        body.clone(),
        403,
        "trial.grant_not_subjects",
    )
    .await;
    body["grants"] = json!([grant]);
    t.net.submit_ok(&t.subject, "econsent.give", body).await;

    let path = format!("/v1/records/{record}?purpose=HRESCH");
    let read = t.net.signed(&t.sponsor, Method::GET, &path, None).await;
    assert_eq!(read.status, 200, "{}", read.text());

    let token = t.net.token(&t.sponsor, "HRESCH", None).await;
    let id = crate::api::fhir::trials::subject_id(&t.study, &subject);
    let fhir = t
        .net
        .fhir(
            &token,
            Method::GET,
            &format!("/fhir/ResearchSubject/{id}"),
            None,
        )
        .await;
    assert_eq!(fhir.status, 200, "{}", fhir.text());
    assert_eq!(
        fhir.json()["consent"],
        json!([{"reference": format!("Consent/{grant}")}])
    );
    let shown = t
        .net
        .get(&format!("/v1/studies/{}/subjects/{subject}", t.study))
        .await;
    assert_eq!(
        shown.json()["grants"],
        json!([{"grant": grant, "active": true}])
    );

    t.net
        .submit_ok(&t.subject, "econsent.withdraw", json!({"study": t.study}))
        .await;
    let size = t.net.size();
    let denied = t.net.signed(&t.sponsor, Method::GET, &path, None).await;
    assert_eq!(denied.status, 403, "{}", denied.text());
    assert_eq!(t.net.size(), size + 1, "the refusal is logged");
    let shown = t
        .net
        .get(&format!("/v1/studies/{}/subjects/{subject}", t.study))
        .await;
    assert_eq!(
        shown.json()["grants"],
        json!([{"grant": grant, "active": false}])
    );
}

/// A batch from `device` with one glucose reading at each of `times`.
fn readings(device: &Keypair, times: &[i64]) -> Vec<u8> {
    use hygeia_state::devices::batch::{example_observation, sign_observation};
    use hygeia_state::devices::ReadingKind;
    let readings: Vec<Value> = times
        .iter()
        .map(|&t| {
            let o = example_observation(&did(device), ReadingKind::Glucose, t, 123.25);
            json!({"observation": o, "jws": sign_observation(device, &o)})
        })
        .collect();
    serde_json::to_vec(&json!({"device": did(device), "readings": readings})).unwrap()
}

/// The rest of the oncology chain over HTTP: the participant's wearable,
/// attested and bound to their study key for the study, streams signed
/// readings; the sponsor's adherence rule is met and releases the stipend
/// escrowed to the study key; after an amendment asking for re-consent
/// the wearable's batches are refused until the participant consents
/// again; readings from before the consent and after a withdrawal are
/// refused. The sponsor sees milestones and adherence, never a value or
/// who the participant is; no entry carries a reading.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trial_wearable_releases_the_stipend_and_stops_until_re_consent() {
    use hygeia_credentials::credential_types::VCT_DEVICE_ATTESTATION;
    use hygeia_state::devices::{day_of, milestone_id as adherence_milestone, DAY_SECS};
    use hygeia_state::testing::device_presentation;

    let t = trial().await;
    let (subject, sponsor) = (&t.subject, &t.sponsor);
    let manufacturer = Keypair::generate();
    let wearable = Keypair::generate();
    t.net
        .submit_ok(
            &t.cast.governance,
            "trust.issuer",
            json!({"issuer": did(&manufacturer), "credential_type": VCT_DEVICE_ATTESTATION, "jurisdictions": [], "op": "add"}),
        )
        .await;
    t.net
        .submit_ok(subject, "econsent.give", t.consent("1.0", &hash(0xa1)))
        .await;
    // The trial window opens at the ledger's clock at the consent.
    let clock = t.net.node.state.read().state.escrows.clock;
    assert!(clock > 0);
    let network_id = t
        .net
        .node
        .state
        .read()
        .state
        .network
        .id()
        .unwrap()
        .to_owned();
    let attest = |patient: &Keypair| {
        json!({
            "device": did(&wearable),
            "presentation": device_presentation(&manufacturer, &wearable, &network_id, &did(patient), now(), None),
            "from": (now() / DAY_SECS - 1) * DAY_SECS,
            "until": (now() / DAY_SECS + 90) * DAY_SECS,
            "study": t.study,
        })
    };
    // A stranger cannot bind a wearable to the study: it is no subject.
    let stranger = Keypair::generate();
    t.refused(
        &stranger,
        "device.attest",
        attest(&stranger),
        403,
        "trial.not_subject",
    )
    .await;
    // Nor can the sponsor (with the subject's presentation, or its own).
    t.refused(
        sponsor,
        "device.attest",
        attest(subject),
        403,
        "trial.not_subject",
    )
    .await;
    t.net
        .submit_ok(subject, "device.attest", attest(subject))
        .await;

    let send = |body: Vec<u8>| {
        let net = &t.net;
        let wearable = &wearable;
        async move {
            net.signed(wearable, Method::POST, "/v1/devices/batches", Some(body))
                .await
        }
    };
    // A reading from before the consent: outside the trial window.
    let size = t.net.size();
    let early = send(readings(&wearable, &[clock - 3600, clock + 1])).await;
    assert_eq!(
        (early.status, early.code()),
        (422, "device.outside_trial_window".into()),
        "{}",
        early.text()
    );
    assert_eq!(t.net.size(), size);
    let first = send(readings(&wearable, &[clock + 1, clock + 2])).await;
    assert_eq!(first.status, 201, "{}", first.text());

    // The sponsor's rule for the study: a reading on every day of the
    // first batch. Only the sponsor registers it.
    let rule = hash(0xe1);
    let rule_body = json!({"rule": rule, "kind": "glucose", "start_day": day_of(clock + 1),
                           "end_day": day_of(clock + 2), "min_percent": 100, "study": t.study});
    t.refused(
        &stranger,
        "adherence.rule",
        rule_body.clone(),
        403,
        "trial.not_sponsor",
    )
    .await;
    t.net.submit_ok(sponsor, "adherence.rule", rule_body).await;
    // The stipend, escrowed to the participant's study key.
    let id = adherence_milestone(&rule, &did(sponsor), &did(subject));
    t.net
        .submit_ok(
            sponsor,
            "escrow.open",
            json!({"unit": UNIT, "amount": 2_500, "beneficiary": did(subject),
                   "condition": {"kind": "milestone", "id": id}, "refund_after": now() + 365 * 86_400}),
        )
        .await;
    let evaluate = json!({"rule": rule, "subject": did(subject)});
    t.refused(
        &stranger,
        "adherence.evaluate",
        evaluate.clone(),
        403,
        "adherence.not_allowed",
    )
    .await;
    t.net
        .submit_ok(sponsor, "adherence.evaluate", evaluate)
        .await;
    let balance = |key: &Keypair| {
        let path = format!("/v1/accounts/{}", did(key));
        let net = &t.net;
        async move {
            net.get(&path).await.json()["balances"][UNIT]
                .as_u64()
                .unwrap_or(0)
        }
    };
    assert_eq!(balance(subject).await, 2_500);
    let result = t
        .net
        .signed_get(sponsor, &format!("/v1/adherence/{rule}/{}", did(subject)))
        .await;
    assert_eq!(result.status, 200, "{}", result.text());
    assert_eq!(result.json()["met"], true);

    // The amendment asks for re-consent: no new data flows until then.
    t.net
        .submit_ok(
            sponsor,
            "study.amend",
            json!({"study": t.study, "protocol": hash(0xa2), "version": "2.0", "reconsent": true}),
        )
        .await;
    t.net
        .submit_ok(
            &t.committee,
            "ethics.approve",
            json!({"study": t.study, "version": "2.0", "protocol": hash(0xa2)}),
        )
        .await;
    let size = t.net.size();
    let held = send(readings(&wearable, &[clock + 3])).await;
    assert_eq!(
        (held.status, held.code()),
        (409, "trial.reconsent_required".into()),
        "{}",
        held.text()
    );
    assert_eq!(t.net.size(), size);
    t.net
        .submit_ok(subject, "econsent.give", t.consent("2.0", &hash(0xa2)))
        .await;
    let after = send(readings(&wearable, &[clock + 3])).await;
    assert_eq!(after.status, 201, "{}", after.text());

    // The participant sees their wearable's binding to the study; the
    // sponsor does not see the wearable at all.
    let path = format!("/v1/devices/{}", did(&wearable));
    let own = t.net.signed_get(subject, &path).await;
    assert_eq!(own.status, 200, "{}", own.text());
    assert_eq!(own.json()["study"], json!(t.study));
    assert_eq!(own.json()["batches"], 2);
    assert_eq!(t.net.signed_get(sponsor, &path).await.status, 404);

    // What the sponsor sees of the study and the subject: milestones and
    // states, never a value, the wearable, or who the participant is.
    let study = t.net.get(&format!("/v1/studies/{}", t.study)).await;
    assert_eq!(study.status, 200, "{}", study.text());
    let token = t.net.token(sponsor, "HRESCH", None).await;
    let subject_id = crate::api::fhir::trials::subject_id(&t.study, &did(subject));
    let fhir = t
        .net
        .fhir(
            &token,
            Method::GET,
            &format!("/fhir/ResearchSubject/{subject_id}"),
            None,
        )
        .await;
    assert_eq!(fhir.status, 200, "{}", fhir.text());
    for view in [study.text(), fhir.text()] {
        for secret in [
            "123.25",
            "mg/dL",
            "valueQuantity",
            "Observation",
            did(&wearable).as_str(),
            did(&t.cast.patient).as_str(),
        ] {
            assert!(!view.contains(secret), "{secret:?} in {view}");
        }
    }

    // Withdrawal stops the data at once.
    t.net
        .submit_ok(subject, "econsent.withdraw", json!({"study": t.study}))
        .await;
    let size = t.net.size();
    let gone = send(readings(&wearable, &[clock + 4])).await;
    assert_eq!(
        (gone.status, gone.code()),
        (409, "trial.subject_withdrawn".into()),
        "{}",
        gone.text()
    );
    assert_eq!(t.net.size(), size);

    // No device or adherence entry holds a reading: only DIDs, hashes,
    // codes, numbers and the attestation presentation (serial withheld).
    let mut entries = Vec::new();
    t.net
        .node
        .store
        .snapshot()
        .unwrap()
        .for_each_entry(|_, entry| {
            entries.push(String::from_utf8(entry.to_vec()).unwrap());
            Ok(())
        })
        .unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for text in &entries {
        for phi in [
            "123.25",
            "mg/dL",
            "2339-0",
            "valueQuantity",
            "effectiveDateTime",
            "SN-0042",
        ] {
            assert!(!text.contains(phi), "{phi:?} in {text}");
        }
        let tx: Value = serde_json::from_str(text).unwrap();
        let tx_type = tx["type"].as_str().unwrap_or_default();
        if tx_type.starts_with("device.") || tx_type.starts_with("adherence.") {
            seen.insert(tx_type.to_owned());
            for (field, value) in tx["body"].as_object().unwrap() {
                if field == "presentation" || field == "days" {
                    continue;
                }
                if let Some(text) = value.as_str() {
                    let hex = text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit());
                    let code = text.len() <= 16 && text.bytes().all(|b| b.is_ascii_lowercase());
                    assert!(
                        text.starts_with("did:key:") || hex || code,
                        "{tx_type}.{field} holds {text:?}"
                    );
                } else {
                    assert!(value.is_number(), "{tx_type}.{field}: {value}");
                }
            }
        }
    }
    assert_eq!(seen.len(), 4, "{seen:?}");
}
