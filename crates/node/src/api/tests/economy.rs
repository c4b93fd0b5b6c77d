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
