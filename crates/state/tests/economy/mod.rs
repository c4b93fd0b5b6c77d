//! Accounts, escrows and care programs (crates/state/src/accounts.rs,
//! escrow.rs, programs.rs): each refusal with its code and no change, the
//! milestone reaction, the diabetes incentive end to end in the state, and
//! property tests over random sequences (conservation of supply, no
//! overdraft, each escrow ended at most once).

use hygeia_credentials::zk::{self, hba1c, CommittedAttributeCredential, Opening, Range};
use hygeia_identity::Keypair;
use hygeia_ledger::{ErrorCode, SignedTx, TxError};
use hygeia_state::accounts::MAX_AMOUNT;
use hygeia_state::escrow::{EscrowStatus, MilestoneReached};
use hygeia_state::registry::{example_did, Cx, Registry, TxBody, DOMAINS};
use hygeia_state::testing::{did, Network, CLINIC};
use hygeia_state::{programs, Effect, LedgerState};
use proptest::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

mod sharing;

const UNIT: &str = "gluco-token";
/// The ledger's clock in these tests.
const T0: i64 = 1_800_000_000;

/// Signs and applies at the next index with `registry`; returns the
/// transaction's leaf hash (the id of an escrow or program it opens).
fn run_with(
    net: &mut Network,
    registry: &Registry,
    key: &Keypair,
    tx_type: &str,
    body: Value,
) -> Result<String, TxError> {
    let tx: SignedTx = if std::ptr::eq(registry, Registry::global()) {
        net.sign(key, tx_type, body)?
    } else {
        let raw = hygeia_ledger::TxBuilder {
            network: hygeia_state::testing::NETWORK,
            tx_type,
            nonce: format!("r{}", net.next),
            body,
        }
        .sign(key);
        let modules = registry.modules();
        SignedTx::parse(
            &raw,
            &hygeia_ledger::tx::TxContext {
                network: hygeia_state::testing::NETWORK,
                modules: &modules,
            },
        )?
    };
    net.state.apply_with(registry, net.next, &tx)?;
    net.next += 1;
    Ok(hex::encode(tx.leaf_hash().0))
}

fn run(net: &mut Network, key: &Keypair, tx_type: &str, body: Value) -> Result<String, TxError> {
    run_with(net, Registry::global(), key, tx_type, body)
}

/// Refused with `code`, and the state is exactly as before.
fn refused(net: &mut Network, key: &Keypair, tx_type: &str, body: Value, code: &str) {
    let before = serde_json::to_vec(&net.state).unwrap();
    let next = net.next;
    let err = run(net, key, tx_type, body).expect_err(code);
    assert_eq!(err.code.as_str(), code, "{err:?}");
    assert_eq!(net.next, next);
    assert_eq!(
        serde_json::to_vec(&net.state).unwrap(),
        before,
        "{code} changed the state"
    );
}

fn tick(net: &mut Network, time: i64) {
    let node = hygeia_state::testing::copy(&net.node);
    run(net, &node, "clock.tick", json!({"time": time})).expect("tick");
}

/// A network with the unit registered (issuer: the clinic), 1,000 minted
/// to the clinic and 100 to the patient, and the clock at T0.
fn funded() -> Network {
    let mut net = Network::at(T0);
    let governance = hygeia_state::testing::copy(&net.cast.governance);
    let admin = hygeia_state::testing::copy(&net.cast.admin);
    let patient = did(&net.cast.patient);
    run(
        &mut net,
        &governance,
        "unit.register",
        json!({"unit": UNIT, "issuer": CLINIC}),
    )
    .unwrap();
    run(
        &mut net,
        &admin,
        "unit.mint",
        json!({"unit": UNIT, "to": CLINIC, "amount": 1000}),
    )
    .unwrap();
    run(
        &mut net,
        &admin,
        "unit.mint",
        json!({"unit": UNIT, "to": patient, "amount": 100}),
    )
    .unwrap();
    tick(&mut net, T0);
    net
}

fn balance(net: &Network, holder: &str) -> u64 {
    net.state.accounts.balance(UNIT, holder)
}

fn assert_conserved(state: &LedgerState) {
    for (unit, u) in state.accounts.units() {
        assert_eq!(
            state.accounts.total_balances(unit) + state.escrows.total_locked(unit),
            u128::from(u.supply),
            "supply of {unit}"
        );
    }
}

#[test]
fn units_are_registered_by_governance_and_minted_by_their_issuer_only() {
    let mut net = funded();
    let stranger = Keypair::generate();
    let admin = hygeia_state::testing::copy(&net.cast.admin);
    let patient = hygeia_state::testing::copy(&net.cast.patient);
    let governance = hygeia_state::testing::copy(&net.cast.governance);
    assert_eq!(balance(&net, CLINIC), 1000);
    assert_eq!(balance(&net, &did(&patient)), 100);
    assert_eq!(net.state.accounts.unit(UNIT).unwrap().supply, 1100);
    for key in [&stranger, &admin, &patient] {
        refused(
            &mut net,
            key,
            "unit.register",
            json!({"unit": "eur-cents", "issuer": did(key)}),
            "unit.not_governance",
        );
    }
    refused(
        &mut net,
        &governance,
        "unit.register",
        json!({"unit": UNIT, "issuer": did(&stranger)}),
        "unit.exists",
    );
    for key in [&stranger, &patient, &governance] {
        refused(
            &mut net,
            key,
            "unit.mint",
            json!({"unit": UNIT, "to": did(key), "amount": 5}),
            "unit.not_issuer",
        );
    }
    refused(
        &mut net,
        &admin,
        "unit.mint",
        json!({"unit": "eur-cents", "to": CLINIC, "amount": 5}),
        "unit.unknown",
    );
    refused(
        &mut net,
        &admin,
        "unit.mint",
        json!({"unit": UNIT, "to": CLINIC, "amount": MAX_AMOUNT}),
        "unit.overflow",
    );
    for body in [
        json!({"unit": UNIT, "to": CLINIC, "amount": 0}),
        json!({"unit": "Not A Code", "to": CLINIC, "amount": 1}),
        json!({"unit": UNIT, "to": "alice", "amount": 1}),
        json!({"unit": UNIT, "to": CLINIC, "amount": -1}),
        json!({"unit": UNIT, "to": CLINIC, "amount": MAX_AMOUNT + 1}),
    ] {
        let err = net.sign(&admin, "unit.mint", body).unwrap_err();
        assert_eq!(err.code, ErrorCode::SchemaViolation);
    }
    assert_conserved(&net.state);
}

#[test]
fn transfers_move_the_holders_own_funds_and_never_overdraw() {
    let mut net = funded();
    let patient = hygeia_state::testing::copy(&net.cast.patient);
    let admin = hygeia_state::testing::copy(&net.cast.admin);
    let clinician = did(&net.cast.clinician);
    let stranger = Keypair::generate();
    run(
        &mut net,
        &patient,
        "unit.transfer",
        json!({"unit": UNIT, "to": clinician, "amount": 60}),
    )
    .unwrap();
    assert_eq!(balance(&net, &did(&patient)), 40);
    assert_eq!(balance(&net, &clinician), 60);
    // A double spend: the second transfer of the same funds overdraws.
    refused(
        &mut net,
        &patient,
        "unit.transfer",
        json!({"unit": UNIT, "to": clinician, "amount": 60}),
        "unit.insufficient_funds",
    );
    // An organization's admin key moves the organization's funds.
    run(
        &mut net,
        &admin,
        "unit.transfer",
        json!({"unit": UNIT, "from": CLINIC, "to": did(&patient), "amount": 10}),
    )
    .unwrap();
    // No one moves another's funds.
    refused(
        &mut net,
        &stranger,
        "unit.transfer",
        json!({"unit": UNIT, "from": did(&patient), "to": did(&stranger), "amount": 1}),
        "unit.not_holder",
    );
    refused(
        &mut net,
        &patient,
        "unit.transfer",
        json!({"unit": UNIT, "from": CLINIC, "to": did(&patient), "amount": 1}),
        "unit.not_holder",
    );
    refused(
        &mut net,
        &stranger,
        "unit.transfer",
        json!({"unit": UNIT, "to": did(&patient), "amount": 1}),
        "unit.insufficient_funds",
    );
    refused(
        &mut net,
        &patient,
        "unit.transfer",
        json!({"unit": UNIT, "to": did(&patient), "amount": 1}),
        "unit.self_transfer",
    );
    refused(
        &mut net,
        &patient,
        "unit.transfer",
        json!({"unit": "eur-cents", "to": clinician, "amount": 1}),
        "unit.unknown",
    );
    // A replayed transaction is the ledger's to refuse (its nonce), but
    // applied again to the state it is simply another spend.
    assert_conserved(&net.state);
}

/// A domain that emits the milestone event, as the devices domain will.
mod milestones {
    use super::*;

    /// `test.adherence`: an adherence rule met.
    #[derive(Clone, Serialize, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct Adherence {
        pub milestone: String,
    }

    pub fn register(r: &mut Registry) {
        r.add::<Adherence>().emits::<MilestoneReached>();
    }

    impl TxBody for Adherence {
        const TYPE: &'static str = "test.adherence";

        fn example() -> Self {
            Adherence {
                milestone: "trial-1/visit-2".into(),
            }
        }

        fn apply(self, _: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
            let _ = example_did(1);
            cx.emit(MilestoneReached { id: self.milestone })?;
            Ok(Effect::None)
        }
    }
}

fn with_milestones() -> Registry {
    let mut domains = DOMAINS.to_vec();
    domains.push(("milestones", milestones::register));
    Registry::with_domains(&domains)
}

#[test]
fn a_milestone_releases_its_escrows_once_in_the_same_transaction() {
    let registry = with_milestones();
    let mut net = funded();
    let admin = hygeia_state::testing::copy(&net.cast.admin);
    let patient = did(&net.cast.patient);
    let open = |amount: u64, id: &str| {
        json!({"unit": UNIT, "amount": amount, "funder": CLINIC, "beneficiary": patient,
               "condition": {"kind": "milestone", "id": id}, "refund_after": T0 + 1000})
    };
    let a = run(&mut net, &admin, "escrow.open", open(30, "trial-1/visit-2")).unwrap();
    let b = run(&mut net, &admin, "escrow.open", open(20, "trial-1/visit-2")).unwrap();
    let c = run(&mut net, &admin, "escrow.open", open(5, "trial-1/visit-3")).unwrap();
    assert_eq!(balance(&net, CLINIC), 945);
    // Not by hand.
    refused(
        &mut net,
        &admin,
        "escrow.release",
        json!({"escrow": a}),
        "escrow.condition_unmet",
    );
    let anyone = Keypair::generate();
    run_with(
        &mut net,
        &registry,
        &anyone,
        "test.adherence",
        json!({"milestone": "trial-1/visit-2"}),
    )
    .unwrap();
    assert_eq!(balance(&net, &patient), 150);
    for id in [&a, &b] {
        assert_eq!(
            net.state.escrows.get(id).unwrap().status,
            EscrowStatus::Released
        );
    }
    assert_eq!(
        net.state.escrows.get(&c).unwrap().status,
        EscrowStatus::Locked
    );
    // The milestone again releases nothing more.
    run_with(
        &mut net,
        &registry,
        &anyone,
        "test.adherence",
        json!({"milestone": "trial-1/visit-2"}),
    )
    .unwrap();
    assert_eq!(balance(&net, &patient), 150);
    refused(
        &mut net,
        &admin,
        "escrow.refund",
        json!({"escrow": a}),
        "escrow.settled",
    );
    assert_conserved(&net.state);
}

#[test]
fn deadline_escrows_release_on_time_to_the_parties_and_refund_after() {
    let mut net = funded();
    let admin = hygeia_state::testing::copy(&net.cast.admin);
    let patient_key = hygeia_state::testing::copy(&net.cast.patient);
    let patient = did(&patient_key);
    let stranger = Keypair::generate();
    let deadline = |amount: u64| {
        json!({"unit": UNIT, "amount": amount, "funder": CLINIC, "beneficiary": patient,
               "condition": {"kind": "deadline", "at": T0 + 100}, "refund_after": T0 + 200})
    };
    let a = run(&mut net, &admin, "escrow.open", deadline(40)).unwrap();
    let b = run(&mut net, &admin, "escrow.open", deadline(7)).unwrap();
    refused(
        &mut net,
        &patient_key,
        "escrow.release",
        json!({"escrow": a}),
        "escrow.condition_unmet",
    );
    refused(
        &mut net,
        &admin,
        "escrow.refund",
        json!({"escrow": a}),
        "escrow.refund_too_early",
    );
    tick(&mut net, T0 + 100);
    refused(
        &mut net,
        &stranger,
        "escrow.release",
        json!({"escrow": a}),
        "escrow.not_party",
    );
    run(
        &mut net,
        &patient_key,
        "escrow.release",
        json!({"escrow": a}),
    )
    .unwrap();
    assert_eq!(balance(&net, &patient), 140);
    refused(
        &mut net,
        &patient_key,
        "escrow.release",
        json!({"escrow": a}),
        "escrow.settled",
    );
    refused(
        &mut net,
        &admin,
        "escrow.refund",
        json!({"escrow": a}),
        "escrow.settled",
    );
    tick(&mut net, T0 + 200);
    refused(
        &mut net,
        &patient_key,
        "escrow.refund",
        json!({"escrow": b}),
        "escrow.not_funder",
    );
    run(&mut net, &admin, "escrow.refund", json!({"escrow": b})).unwrap();
    assert_eq!(balance(&net, CLINIC), 1000 - 40);
    refused(
        &mut net,
        &patient_key,
        "escrow.release",
        json!({"escrow": b}),
        "escrow.settled",
    );
    refused(
        &mut net,
        &admin,
        "escrow.refund",
        json!({"escrow": b}),
        "escrow.settled",
    );
    refused(
        &mut net,
        &admin,
        "escrow.refund",
        json!({"escrow": "00".repeat(32)}),
        "escrow.unknown",
    );
    assert_conserved(&net.state);
}

#[test]
fn escrows_lock_only_the_funders_own_funds() {
    let mut net = funded();
    let admin = hygeia_state::testing::copy(&net.cast.admin);
    let patient_key = hygeia_state::testing::copy(&net.cast.patient);
    let patient = did(&patient_key);
    let stranger = Keypair::generate();
    let body = |funder: &str, amount: u64, refund_after: i64| {
        json!({"unit": UNIT, "amount": amount, "funder": funder, "beneficiary": did(&stranger),
               "condition": {"kind": "milestone", "id": "m"}, "refund_after": refund_after})
    };
    refused(
        &mut net,
        &stranger,
        "escrow.open",
        body(&patient, 10, T0 + 10),
        "escrow.not_funder",
    );
    refused(
        &mut net,
        &stranger,
        "escrow.open",
        body(CLINIC, 10, T0 + 10),
        "escrow.not_funder",
    );
    refused(
        &mut net,
        &patient_key,
        "escrow.open",
        body(&patient, 101, T0 + 10),
        "unit.insufficient_funds",
    );
    refused(
        &mut net,
        &patient_key,
        "escrow.open",
        body(&patient, 10, T0),
        "escrow.refund_in_past",
    );
    refused(
        &mut net,
        &admin,
        "escrow.open",
        json!({"unit": UNIT, "amount": 10, "funder": CLINIC,
               "condition": {"kind": "proof", "program": "ab".repeat(32)}, "refund_after": T0 + 10}),
        "program.unknown",
    );
    for bad in [
        // No beneficiary for a milestone; one for a proof escrow.
        json!({"unit": UNIT, "amount": 1, "condition": {"kind": "milestone", "id": "m"}, "refund_after": T0 + 10}),
        json!({"unit": UNIT, "amount": 1, "beneficiary": patient, "condition": {"kind": "proof", "program": "ab".repeat(32)}, "refund_after": T0 + 10}),
        // A refund before the release deadline.
        json!({"unit": UNIT, "amount": 1, "beneficiary": patient, "condition": {"kind": "deadline", "at": T0 + 10}, "refund_after": T0 + 10}),
        json!({"unit": UNIT, "amount": 1, "beneficiary": patient, "condition": {"kind": "milestone", "id": "Free text"}, "refund_after": T0 + 10}),
        json!({"unit": UNIT, "amount": 1, "beneficiary": patient, "condition": {"kind": "someday"}, "refund_after": T0 + 10}),
    ] {
        let err = net.sign(&patient_key, "escrow.open", bad).unwrap_err();
        assert_eq!(err.code, ErrorCode::SchemaViolation);
    }
    assert_conserved(&net.state);
}

#[test]
fn only_a_custodian_moves_the_clock_and_only_forward() {
    let mut net = funded();
    let governance = hygeia_state::testing::copy(&net.cast.governance);
    let node = hygeia_state::testing::copy(&net.node);
    refused(
        &mut net,
        &governance,
        "clock.tick",
        json!({"time": T0 + 5}),
        "custodian_only",
    );
    refused(
        &mut net,
        &node,
        "clock.tick",
        json!({"time": T0}),
        "clock.not_later",
    );
    tick(&mut net, T0 + 5);
    assert_eq!(net.state.escrows.clock, T0 + 5);
}

/// The lab, the program and a patient's HbA1c credential.
struct Diabetes {
    net: Network,
    lab: Keypair,
    program: String,
}

fn diabetes() -> Diabetes {
    let mut net = funded();
    let admin = hygeia_state::testing::copy(&net.cast.admin);
    let lab = Keypair::generate();
    let program = run(
        &mut net,
        &admin,
        "program.publish",
        json!({"org": CLINIC, "unit": UNIT, "reward": 50, "attribute": hba1c::HBA1C_ATTRIBUTE,
               "loinc": hba1c::HBA1C_LOINC, "range": {"max_exclusive": 70},
               "issuers": [did(&lab)], "start": T0, "period_secs": 90 * 86_400}),
    )
    .unwrap();
    run(
        &mut net,
        &admin,
        "escrow.open",
        json!({"unit": UNIT, "amount": 120, "funder": CLINIC,
               "condition": {"kind": "proof", "program": program}, "refund_after": T0 + 400 * 86_400}),
    )
    .unwrap();
    Diabetes { net, lab, program }
}

fn hba1c_credential(
    lab: &Keypair,
    holder: &Keypair,
    x10: u64,
) -> (CommittedAttributeCredential, Opening) {
    let claims = hba1c::hba1c_claims(
        &did(lab),
        x10,
        (T0 - 86_400) as u64,
        (T0 + 365 * 86_400) as u64,
        Some(holder.did()),
    );
    CommittedAttributeCredential::issue(lab, &claims).unwrap()
}

fn claim(
    program: &str,
    credential: &CommittedAttributeCredential,
    opening: &Opening,
    holder: &Keypair,
) -> Value {
    let presentation = zk::prove(
        credential,
        opening,
        Range::below(70).unwrap(),
        &programs::challenge(program),
        Some(holder),
    )
    .unwrap();
    json!({"program": program, "presentation": presentation.to_json()})
}

#[test]
fn the_diabetes_incentive_is_paid_once_per_credential_and_period() {
    let Diabetes {
        mut net,
        lab,
        program,
    } = diabetes();
    let patient = hygeia_state::testing::copy(&net.cast.patient);
    assert_eq!(net.state.escrows.program_balance(&program), 120);
    let (credential, opening) = hba1c_credential(&lab, &patient, 64);
    let body = claim(&program, &credential, &opening, &patient);
    // Nothing about the value is in what reaches the ledger.
    let text = body.to_string();
    assert!(
        !text.contains("\"value\"") && !text.contains(":64") && !text.contains("6.4"),
        "{text}"
    );
    run(&mut net, &patient, "program.claim", body.clone()).unwrap();
    assert_eq!(balance(&net, &did(&patient)), 150);
    assert_eq!(net.state.escrows.program_balance(&program), 70);
    // The same proof again, or a fresh proof over the same credential.
    refused(
        &mut net,
        &patient,
        "program.claim",
        body,
        "program.already_claimed",
    );
    let again = claim(&program, &credential, &opening, &patient);
    refused(
        &mut net,
        &patient,
        "program.claim",
        again,
        "program.already_claimed",
    );
    // A second credential in the same period.
    let (second, second_opening) = hba1c_credential(&lab, &patient, 61);
    let body = claim(&program, &second, &second_opening, &patient);
    refused(
        &mut net,
        &patient,
        "program.claim",
        body.clone(),
        "program.already_claimed",
    );
    // In the next period it pays.
    tick(&mut net, T0 + 90 * 86_400);
    run(&mut net, &patient, "program.claim", body).unwrap();
    assert_eq!(balance(&net, &did(&patient)), 200);
    // 20 left: not enough for a reward.
    let other = Keypair::generate();
    let (third, third_opening) = hba1c_credential(&lab, &other, 55);
    refused(
        &mut net,
        &other,
        "program.claim",
        claim(&program, &third, &third_opening, &other),
        "program.unfunded",
    );
    assert_conserved(&net.state);
}

#[test]
fn a_proof_for_7_4_percent_cannot_be_made_nor_forged() {
    let Diabetes {
        mut net,
        lab,
        program,
    } = diabetes();
    let patient = hygeia_state::testing::copy(&net.cast.patient);
    let (credential, opening) = hba1c_credential(&lab, &patient, 74);
    let err = zk::prove(
        &credential,
        &opening,
        Range::below(70).unwrap(),
        &programs::challenge(&program),
        Some(&patient),
    )
    .unwrap_err();
    assert_eq!(err.code(), "zk-value-out-of-range");
    // A true statement about a wider range does not meet the goal.
    let wider = zk::prove(
        &credential,
        &opening,
        Range::below(80).unwrap(),
        &programs::challenge(&program),
        Some(&patient),
    )
    .unwrap();
    refused(
        &mut net,
        &patient,
        "program.claim",
        json!({"program": program, "presentation": wider.to_json()}),
        "program.proof_refused",
    );
}

#[test]
fn claims_are_refused_from_the_wrong_party_issuer_or_challenge() {
    let Diabetes {
        mut net,
        lab,
        program,
    } = diabetes();
    let patient = hygeia_state::testing::copy(&net.cast.patient);
    let stranger = Keypair::generate();
    let (credential, opening) = hba1c_credential(&lab, &patient, 64);
    let body = claim(&program, &credential, &opening, &patient);
    // Someone else submits the patient's presentation.
    refused(
        &mut net,
        &stranger,
        "program.claim",
        body,
        "program.not_holder",
    );
    // A lab the program does not accept.
    let rogue = Keypair::generate();
    let (forged, forged_opening) = hba1c_credential(&rogue, &stranger, 50);
    refused(
        &mut net,
        &stranger,
        "program.claim",
        claim(&program, &forged, &forged_opening, &stranger),
        "program.proof_refused",
    );
    // A proof made for another verifier.
    let other = zk::Challenge {
        verifier: "did:web:research.example".into(),
        nonce: [7; 32],
    };
    let elsewhere = zk::prove(
        &credential,
        &opening,
        Range::below(70).unwrap(),
        &other,
        Some(&patient),
    )
    .unwrap();
    refused(
        &mut net,
        &patient,
        "program.claim",
        json!({"program": program, "presentation": elsewhere.to_json()}),
        "program.proof_refused",
    );
    // A bearer credential (no holder).
    let claims = hba1c::hba1c_claims(
        &did(&lab),
        60,
        (T0 - 86_400) as u64,
        (T0 + 86_400) as u64,
        None,
    );
    let (bearer, bearer_opening) = CommittedAttributeCredential::issue(&lab, &claims).unwrap();
    let p = zk::prove(
        &bearer,
        &bearer_opening,
        Range::below(70).unwrap(),
        &programs::challenge(&program),
        None,
    )
    .unwrap();
    refused(
        &mut net,
        &patient,
        "program.claim",
        json!({"program": program, "presentation": p.to_json()}),
        "program.holder_required",
    );
    refused(
        &mut net,
        &patient,
        "program.claim",
        json!({"program": program, "presentation": "{\"type\":1}"}),
        "program.bad_presentation",
    );
    refused(
        &mut net,
        &patient,
        "program.claim",
        json!({"program": "00".repeat(32), "presentation": "{}"}),
        "program.unknown",
    );
    // Only the organization publishes and funds its programs.
    refused(
        &mut net,
        &stranger,
        "program.publish",
        json!({"org": CLINIC, "unit": UNIT, "reward": 50, "attribute": hba1c::HBA1C_ATTRIBUTE,
               "range": {"max_exclusive": 70}, "issuers": [did(&stranger)], "start": T0, "period_secs": 86_400}),
        "program.not_org",
    );
    let stranger_program = run(
        &mut net,
        &stranger,
        "program.publish",
        json!({"org": did(&stranger), "unit": UNIT, "reward": 1, "attribute": hba1c::HBA1C_ATTRIBUTE,
               "range": {"max_exclusive": 70}, "issuers": [did(&stranger)], "start": T0, "period_secs": 86_400}),
    )
    .unwrap();
    let admin = hygeia_state::testing::copy(&net.cast.admin);
    refused(
        &mut net,
        &admin,
        "escrow.open",
        json!({"unit": UNIT, "amount": 10, "funder": CLINIC,
               "condition": {"kind": "proof", "program": stranger_program}, "refund_after": T0 + 10}),
        "escrow.not_program_owner",
    );
}

// ---- property tests ----

#[derive(Clone, Debug)]
enum Op {
    Mint {
        to: usize,
        amount: u64,
    },
    Transfer {
        from: usize,
        to: usize,
        amount: u64,
    },
    OpenMilestone {
        funder: usize,
        to: usize,
        amount: u64,
        milestone: u8,
    },
    OpenDeadline {
        funder: usize,
        to: usize,
        amount: u64,
        at: i64,
    },
    Milestone {
        id: u8,
    },
    Release {
        by: usize,
        escrow: usize,
    },
    Refund {
        by: usize,
        escrow: usize,
    },
    Tick {
        secs: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let amount = prop_oneof![1u64..200, Just(MAX_AMOUNT), Just(MAX_AMOUNT / 2)];
    prop_oneof![
        (0..4usize, amount.clone()).prop_map(|(to, amount)| Op::Mint { to, amount }),
        (0..4usize, 0..4usize, amount.clone()).prop_map(|(from, to, amount)| Op::Transfer {
            from,
            to,
            amount
        }),
        (0..4usize, 0..4usize, amount.clone(), 0..3u8).prop_map(
            |(funder, to, amount, milestone)| {
                Op::OpenMilestone {
                    funder,
                    to,
                    amount,
                    milestone,
                }
            }
        ),
        (0..4usize, 0..4usize, amount, 0..50i64).prop_map(|(funder, to, amount, at)| {
            Op::OpenDeadline {
                funder,
                to,
                amount,
                at,
            }
        }),
        (0..3u8).prop_map(|id| Op::Milestone { id }),
        (0..4usize, 0..8usize).prop_map(|(by, escrow)| Op::Release { by, escrow }),
        (0..4usize, 0..8usize).prop_map(|(by, escrow)| Op::Refund { by, escrow }),
        (1..40i64).prop_map(|secs| Op::Tick { secs }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn random_sequences_conserve_supply_and_end_each_escrow_at_most_once(
        ops in prop::collection::vec(op(), 1..40)
    ) {
        let registry = with_milestones();
        let mut net = Network::at(T0);
        let governance = hygeia_state::testing::copy(&net.cast.governance);
        let issuer = Keypair::generate();
        let people: Vec<Keypair> = (0..4).map(|_| Keypair::generate()).collect();
        let node = hygeia_state::testing::copy(&net.node);
        run(&mut net, &governance, "unit.register", json!({"unit": UNIT, "issuer": did(&issuer)})).unwrap();
        run(&mut net, &node, "clock.tick", json!({"time": T0})).unwrap();
        let mut clock = T0;
        let mut escrows: Vec<String> = Vec::new();
        // escrow id → how many times it ended.
        let mut ended: std::collections::BTreeMap<String, u32> = Default::default();
        for op in ops {
            let supply_before = net.state.accounts.unit(UNIT).map(|u| u.supply).unwrap_or(0);
            let (key, tx_type, body) = match op {
                Op::Mint { to, amount } => (&issuer, "unit.mint", json!({"unit": UNIT, "to": did(&people[to]), "amount": amount})),
                Op::Transfer { from, to, amount } => (&people[from], "unit.transfer", json!({"unit": UNIT, "to": did(&people[to]), "amount": amount})),
                Op::OpenMilestone { funder, to, amount, milestone } => (&people[funder], "escrow.open", json!({"unit": UNIT, "amount": amount, "beneficiary": did(&people[to]), "condition": {"kind": "milestone", "id": format!("m{milestone}")}, "refund_after": clock + 30})),
                Op::OpenDeadline { funder, to, amount, at } => (&people[funder], "escrow.open", json!({"unit": UNIT, "amount": amount, "beneficiary": did(&people[to]), "condition": {"kind": "deadline", "at": clock + at}, "refund_after": clock + at + 10})),
                Op::Milestone { id } => (&issuer, "test.adherence", json!({"milestone": format!("m{id}")})),
                Op::Release { by, escrow } => match escrows.get(escrow) {
                    Some(id) => (&people[by], "escrow.release", json!({"escrow": id})),
                    None => continue,
                },
                Op::Refund { by, escrow } => match escrows.get(escrow) {
                    Some(id) => (&people[by], "escrow.refund", json!({"escrow": id})),
                    None => continue,
                },
                Op::Tick { secs } => {
                    clock += secs;
                    (&node, "clock.tick", json!({"time": clock}))
                }
            };
            let locked_before: Vec<(String, EscrowStatus)> = escrows
                .iter()
                .map(|id| (id.clone(), net.state.escrows.get(id).unwrap().status))
                .collect();
            let result = run_with(&mut net, &registry, key, tx_type, body);
            if let (Ok(id), "escrow.open") = (&result, tx_type) {
                escrows.push(id.clone());
            }
            for (id, was) in locked_before {
                let now = net.state.escrows.get(&id).unwrap().status;
                if was == EscrowStatus::Locked && now != EscrowStatus::Locked {
                    *ended.entry(id.clone()).or_default() += 1;
                }
                // Once ended, never locked again.
                prop_assert!(!(was != EscrowStatus::Locked && now == EscrowStatus::Locked));
            }
            // Only minting changes the supply.
            let supply = net.state.accounts.unit(UNIT).map(|u| u.supply).unwrap_or(0);
            if tx_type != "unit.mint" || result.is_err() {
                prop_assert_eq!(supply, supply_before);
            }
            // Conservation: balances plus locked funds are the supply.
            prop_assert_eq!(
                net.state.accounts.total_balances(UNIT) + net.state.escrows.total_locked(UNIT),
                u128::from(supply)
            );
            // An ended escrow locks nothing.
            for (_, e) in net.state.escrows.all() {
                prop_assert!(e.status == EscrowStatus::Locked || e.locked == 0);
            }
        }
        prop_assert!(ended.values().all(|n| *n == 1));
    }
}

/// The ledger's clock trails real time by up to a tick interval: a
/// credential the lab issued a minute after the last tick is already good
/// for a claim, one "issued" beyond the allowed lag is not yet valid.
#[test]
fn a_credential_issued_since_the_last_tick_is_valid_within_the_clock_lag() {
    let Diabetes {
        mut net,
        lab,
        program,
    } = diabetes();
    let patient = hygeia_state::testing::copy(&net.cast.patient);
    let clock = net.state.escrows.clock as u64;
    let issued_at = |at: u64| {
        let claims = hba1c::hba1c_claims(&did(&lab), 64, at, at + 86_400, Some(patient.did()));
        CommittedAttributeCredential::issue(&lab, &claims).unwrap()
    };
    let lag = programs::CLOCK_LAG_SECS;
    let (early, early_opening) = issued_at(clock + lag + 1);
    let body = claim(&program, &early, &early_opening, &patient);
    let err = run(&mut net, &patient, "program.claim", body).unwrap_err();
    assert_eq!(err.code.as_str(), "program.proof_refused");
    assert!(err.message.contains("zk-not-yet-valid"), "{err:?}");
    let (fresh, fresh_opening) = issued_at(clock + 60);
    let body = claim(&program, &fresh, &fresh_opening, &patient);
    run(&mut net, &patient, "program.claim", body).unwrap();
}
