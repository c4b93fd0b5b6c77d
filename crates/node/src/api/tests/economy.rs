//! The diabetes program over HTTP: the governance key registers a unit,
//! the clinic (its issuer) mints, funds a care program's escrow and
//! publishes the goal "HbA1c < 7.0 %"; a lab issues an HbA1c credential;
//! the patient proves the goal and is paid once; a second claim is
//! refused; 7.4 % cannot be proved; no value reaches the ledger. And what
//! a stranger with a fresh key can do to it.

use hygeia_credentials::zk::{self, hba1c, CommittedAttributeCredential, Opening, Range};
use hygeia_identity::Keypair;
use serde_json::{json, Value};

use super::*;

const UNIT: &str = "gluco-token";

fn credential(
    lab: &Keypair,
    holder: &Keypair,
    x10: u64,
) -> (CommittedAttributeCredential, Opening) {
    let now = now() as u64;
    let claims = hba1c::hba1c_claims(
        &did(lab),
        x10,
        now - 86_400,
        now + 365 * 86_400,
        Some(holder.did()),
    );
    CommittedAttributeCredential::issue(lab, &claims).unwrap()
}

/// The challenge a program serves, as a zk challenge.
fn challenge_of(program: &Value) -> zk::Challenge {
    serde_json::from_value(program["challenge"].clone()).unwrap()
}

struct Program {
    net: Net,
    cast: Cast,
    lab: Keypair,
    id: String,
}

async fn program() -> Program {
    let (net, cast) = Net::network().await;
    net.submit_ok(
        &cast.governance,
        "unit.register",
        json!({"unit": UNIT, "issuer": CLINIC}),
    )
    .await;
    net.submit_ok(
        &cast.admin,
        "unit.mint",
        json!({"unit": UNIT, "to": CLINIC, "amount": 1000}),
    )
    .await;
    let tick = net
        .send(Request::post("/v1/clock").body(Body::empty()).unwrap())
        .await;
    assert_eq!(tick.status, 201, "{}", tick.text());
    let lab = Keypair::generate();
    let published = net
        .submit_ok(
            &cast.admin,
            "program.publish",
            json!({"org": CLINIC, "unit": UNIT, "reward": 50, "attribute": hba1c::HBA1C_ATTRIBUTE,
                   "loinc": hba1c::HBA1C_LOINC, "range": {"max_exclusive": 70},
                   "issuers": [did(&lab)], "start": now() - 3600, "period_secs": 90 * 86_400}),
        )
        .await;
    let id = published.json()["leaf_hash"].as_str().unwrap().to_owned();
    net.submit_ok(
        &cast.admin,
        "escrow.open",
        json!({"unit": UNIT, "amount": 500, "funder": CLINIC,
               "condition": {"kind": "proof", "program": id}, "refund_after": now() + 365 * 86_400}),
    )
    .await;
    Program { net, cast, lab, id }
}

#[tokio::test]
async fn the_diabetes_program_pays_a_proved_goal_once_and_the_ledger_holds_no_value() {
    let Program { net, cast, lab, id } = program().await;
    let served = net.get(&format!("/v1/programs/{id}")).await;
    assert_eq!(served.status, 200);
    let served = served.json();
    assert_eq!(served["fund"], 500);
    assert_eq!(served["requirement"]["range"]["max_exclusive"], 70);
    let challenge = challenge_of(&served);

    let (cred, opening) = credential(&lab, &cast.patient, 64);
    let presentation = zk::prove(
        &cred,
        &opening,
        Range::below(70).unwrap(),
        &challenge,
        Some(&cast.patient),
    )
    .unwrap();
    let claim = json!({"program": id, "presentation": presentation.to_json()});
    net.submit_ok(&cast.patient, "program.claim", claim.clone())
        .await;
    let account = net
        .get(&format!("/v1/accounts/{}", did(&cast.patient)))
        .await
        .json();
    assert_eq!(account["balances"][UNIT], 50);
    assert_eq!(
        net.get(&format!("/v1/programs/{id}")).await.json()["fund"],
        450
    );

    // The same claim again, and a fresh proof of the same credential.
    let size = net.size();
    let again = net.submit(&cast.patient, "program.claim", claim).await;
    assert_eq!(again.status, 409, "{}", again.text());
    assert_eq!(again.code(), "program.already_claimed");
    let fresh = zk::prove(
        &cred,
        &opening,
        Range::below(70).unwrap(),
        &challenge,
        Some(&cast.patient),
    )
    .unwrap();
    let answer = net
        .submit(
            &cast.patient,
            "program.claim",
            json!({"program": id, "presentation": fresh.to_json()}),
        )
        .await;
    assert_eq!(answer.code(), "program.already_claimed");
    assert_eq!(net.size(), size, "refused claims add nothing to the log");

    // 7.4 %: no proof can be made.
    let (high, high_opening) = credential(&lab, &cast.clinician, 74);
    let err = zk::prove(
        &high,
        &high_opening,
        Range::below(70).unwrap(),
        &challenge,
        Some(&cast.clinician),
    )
    .unwrap_err();
    assert_eq!(err.code(), "zk-value-out-of-range");

    // Nothing about the values (6.4 %, 7.4 %) is in any ledger entry.
    let mut entries = Vec::new();
    net.node
        .store
        .snapshot()
        .unwrap()
        .for_each_entry(|index, entry| {
            entries.push((index, entry.to_vec()));
            Ok(())
        })
        .unwrap();
    assert_eq!(entries.len() as u64, net.size());
    for (index, entry) in entries {
        let text = String::from_utf8(entry).unwrap();
        let parsed: Value = serde_json::from_str(&text).unwrap();
        let mut numbers = Vec::new();
        collect_numbers(&parsed, &mut numbers);
        for n in [64.0, 74.0, 6.4, 7.4] {
            assert!(!numbers.contains(&n), "entry {index} holds {n}: {text}");
        }
        assert!(!text.contains("\"value\""), "entry {index}: {text}");
    }
}

/// Every number in a JSON value, and in JSON text held in its strings
/// (a claim's presentation).
fn collect_numbers(value: &Value, out: &mut Vec<f64>) {
    match value {
        Value::Number(n) => out.extend(n.as_f64()),
        Value::String(s) if s.starts_with('{') => {
            if let Ok(inner) = serde_json::from_str::<Value>(s) {
                collect_numbers(&inner, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_numbers(v, out)),
        Value::Object(members) => members.values().for_each(|v| collect_numbers(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn a_stranger_can_neither_mint_move_release_claim_nor_flood_the_clock() {
    let Program { net, cast, lab, id } = program().await;
    let stranger = Keypair::generate();
    let size = net.size();
    for (tx_type, body, status, code) in [
        (
            "unit.register",
            json!({"unit": "evil-token", "issuer": did(&stranger)}),
            403,
            "unit.not_governance",
        ),
        (
            "unit.mint",
            json!({"unit": UNIT, "to": did(&stranger), "amount": 10}),
            403,
            "unit.not_issuer",
        ),
        (
            "unit.transfer",
            json!({"unit": UNIT, "from": CLINIC, "to": did(&stranger), "amount": 10}),
            403,
            "unit.not_holder",
        ),
        (
            "unit.transfer",
            json!({"unit": UNIT, "to": did(&cast.patient), "amount": 10}),
            422,
            "unit.insufficient_funds",
        ),
        (
            "clock.tick",
            json!({"time": now() + 10 * 365 * 86_400}),
            403,
            "custodian_only",
        ),
        (
            "program.publish",
            json!({"org": CLINIC, "unit": UNIT, "reward": 500, "attribute": hba1c::HBA1C_ATTRIBUTE,
                   "range": {"max_exclusive": 70}, "issuers": [did(&stranger)], "start": 0, "period_secs": 86_400}),
            403,
            "program.not_org",
        ),
    ] {
        let answer = net.submit(&stranger, tx_type, body).await;
        assert_eq!(answer.status, status, "{tx_type}: {}", answer.text());
        assert_eq!(answer.code(), code, "{tx_type}");
    }
    // The patient's presentation, copied and submitted by the stranger.
    let (cred, opening) = credential(&lab, &cast.patient, 60);
    let program = net.get(&format!("/v1/programs/{id}")).await.json();
    let presentation = zk::prove(
        &cred,
        &opening,
        Range::below(70).unwrap(),
        &challenge_of(&program),
        Some(&cast.patient),
    )
    .unwrap();
    let answer = net
        .submit(
            &stranger,
            "program.claim",
            json!({"program": id, "presentation": presentation.to_json()}),
        )
        .await;
    assert_eq!(answer.code(), "program.not_holder");
    // A credential the stranger issued to itself.
    let (own, own_opening) = credential(&stranger, &stranger, 50);
    let forged = zk::prove(
        &own,
        &own_opening,
        Range::below(70).unwrap(),
        &challenge_of(&program),
        Some(&stranger),
    )
    .unwrap();
    let answer = net
        .submit(
            &stranger,
            "program.claim",
            json!({"program": id, "presentation": forged.to_json()}),
        )
        .await;
    assert_eq!(answer.status, 422);
    assert_eq!(answer.code(), "program.proof_refused");
    assert_eq!(
        net.size(),
        size,
        "nothing the stranger sent reached the log"
    );
    // Asking the node to tick again at once writes nothing.
    for _ in 0..3 {
        let tick = net
            .send(Request::post("/v1/clock").body(Body::empty()).unwrap())
            .await;
        assert_eq!(tick.status, 200, "{}", tick.text());
        assert_eq!(tick.json()["ticked"], false);
    }
    assert_eq!(net.size(), size);
    assert_eq!(net.get("/v1/escrows/00").await.status, 404);
    assert_eq!(net.get("/v1/programs/00").await.status, 404);
    let units = net.get("/v1/units").await.json();
    assert_eq!(units["units"][0]["supply"], 1000);
}

/// A research-sharing programme over HTTP: a researcher publishes and
/// funds it, a patient grants HRESCH, the researcher reads the patient's
/// record twice, the clock moves, the patient claims and is paid by the
/// formula; a second claim at once, a stranger's claim and the
/// researcher's claim of the patient's grant are refused and change
/// nothing; the programme is served without the patient's DID.
#[tokio::test]
async fn a_sharing_programme_pays_the_patient_by_days_and_reads_once() {
    const DAY: i64 = 86_400;
    let (net, cast) = Net::network().await;
    let patient = did(&cast.patient);
    let researcher = Keypair::generate();
    net.submit_ok(
        &cast.governance,
        "unit.register",
        json!({"unit": UNIT, "issuer": CLINIC}),
    )
    .await;
    net.submit_ok(
        &cast.admin,
        "unit.mint",
        json!({"unit": UNIT, "to": did(&researcher), "amount": 300}),
    )
    .await;
    let uploaded = net
        .upload(
            &cast.patient,
            &patient,
            "lab",
            br#"{"resourceType":"Observation","id":"s","valueString":"sharing-secret-7731"}"#,
        )
        .await;
    assert_eq!(uploaded.status, 201, "{}", uploaded.text());
    let record = uploaded.json()["record"].as_str().unwrap().to_owned();
    // The programme and the grant began three days ago.
    let t0 = now();
    let id = net
        .submit_ok(
            &researcher,
            "sharing.publish",
            json!({"researcher": did(&researcher), "unit": UNIT, "per_day": 2, "per_access": 5,
                   "start": t0 - 3 * DAY}),
        )
        .await
        .json()["leaf_hash"]
        .as_str()
        .unwrap()
        .to_owned();
    net.submit_ok(
        &researcher,
        "escrow.open",
        json!({"unit": UNIT, "amount": 200, "condition": {"kind": "sharing", "program": id},
               "refund_after": t0 + 365 * DAY}),
    )
    .await;
    let grant = net
        .submit_ok(
            &cast.patient,
            "consent.grant",
            json!({"patient": patient, "grantee": did(&researcher), "scope": {"categories": ["lab"]},
                   "actions": ["read"], "purpose": "HRESCH", "not_before": t0 - 3 * DAY,
                   "not_after": t0 + 30 * DAY}),
        )
        .await
        .json()["leaf_hash"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..2 {
        let read = net
            .signed_get(&researcher, &format!("/v1/records/{record}?purpose=HRESCH"))
            .await;
        assert_eq!(read.status, 200, "{}", read.text());
    }
    let tick = net
        .send(Request::post("/v1/clock").body(Body::empty()).unwrap())
        .await;
    assert_eq!(tick.status, 201, "{}", tick.text());

    let served = net.get(&format!("/v1/sharing/{id}?grant={grant}")).await;
    assert_eq!(served.status, 200, "{}", served.text());
    assert!(
        !served.text().contains(&patient),
        "the patient's DID is served"
    );
    let served = served.json();
    assert_eq!(served["fund"], 200);
    // Two reads a moment apart count once (twice only if midnight UTC fell
    // between them).
    let counted = served["grant"]["counted_accesses"].as_u64().unwrap();
    assert!(counted == 1 || counted == 2, "{served}");
    let expected = 3 * 2 + 5 * counted;
    assert_eq!(served["grant"]["owed"]["days"], 3);
    assert_eq!(served["grant"]["owed"]["amount"], expected);

    // Strangers and the researcher claim nothing of the patient's grant.
    let stranger = Keypair::generate();
    let claim = json!({"program": id, "grant": grant});
    for key in [&stranger, &researcher] {
        net.refused_tx(
            key,
            "sharing.claim",
            claim.clone(),
            403,
            "sharing.not_patient",
        )
        .await;
    }
    net.refused_tx(
        &cast.patient,
        "sharing.claim",
        json!({"program": "ab".repeat(32), "grant": grant}),
        404,
        "sharing.unknown",
    )
    .await;

    net.submit_ok(&cast.patient, "sharing.claim", claim.clone())
        .await;
    let account = net.get(&format!("/v1/accounts/{patient}")).await.json();
    assert_eq!(account["balances"][UNIT], expected);
    net.refused_tx(
        &cast.patient,
        "sharing.claim",
        claim,
        409,
        "sharing.nothing_owed",
    )
    .await;
    let served = net.get(&format!("/v1/sharing/{id}")).await;
    assert!(!served.text().contains(&patient));
    let served = served.json();
    assert_eq!(served["claims"], 1);
    assert_eq!(served["paid"], expected);
    assert_eq!(served["fund"], 200 - expected);
    assert!(served.get("grant").is_none());
    // No entry holds the record's content; the claim's body is the
    // programme and the grant, nothing else.
    let mut claims = 0;
    net.node
        .store
        .snapshot()
        .unwrap()
        .for_each_entry(|index, entry| {
            let text = String::from_utf8(entry.to_vec()).unwrap();
            assert!(!text.contains("sharing-secret"), "entry {index}: {text}");
            let parsed: Value = serde_json::from_str(&text).unwrap();
            if parsed["type"] == "sharing.claim" {
                claims += 1;
                let keys: Vec<&String> = parsed["body"].as_object().unwrap().keys().collect();
                assert_eq!(keys, ["grant", "program"], "{text}");
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(claims, 1);
    assert_eq!(net.get("/v1/sharing/00").await.status, 404);
    assert_eq!(
        net.get(&format!("/v1/sharing/{id}?grant=00")).await.status,
        404
    );
}
