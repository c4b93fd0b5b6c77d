//! Research-sharing programmes (crates/state/src/sharing.rs): the payout
//! formula, each refusal with its code and no change, the caps against
//! self-dealing, and a property test over random sequences of accesses,
//! revocations, ticks and claims.

use hygeia_identity::Keypair;
use hygeia_state::sharing::DAY_SECS;
use hygeia_state::testing::{copy, did, Network, CLINIC};
use proptest::prelude::*;
use serde_json::{json, Value};

use super::{assert_conserved, balance, funded, refused, run, tick, T0, UNIT};

const PER_DAY: u64 = 2;
const PER_ACCESS: u64 = 5;

struct Setup {
    net: Network,
    researcher: Keypair,
    patient: Keypair,
    program: String,
}

/// `funded()` plus a researcher (did:key) holding 500, a programme of
/// theirs starting at T0 and funded with `fund`.
fn setup(fund: u64) -> Setup {
    let mut net = funded();
    let researcher = Keypair::generate();
    let admin = copy(&net.cast.admin);
    let patient = copy(&net.cast.patient);
    run(
        &mut net,
        &admin,
        "unit.mint",
        json!({"unit": UNIT, "to": did(&researcher), "amount": 500}),
    )
    .unwrap();
    let program = run(
        &mut net,
        &researcher,
        "sharing.publish",
        json!({"researcher": did(&researcher), "unit": UNIT, "per_day": PER_DAY,
               "per_access": PER_ACCESS, "start": T0}),
    )
    .unwrap();
    if fund > 0 {
        open_fund(&mut net, &researcher, &program, fund);
    }
    Setup {
        net,
        researcher,
        patient,
        program,
    }
}

fn open_fund(net: &mut Network, researcher: &Keypair, program: &str, amount: u64) -> String {
    run(
        net,
        researcher,
        "escrow.open",
        json!({"unit": UNIT, "amount": amount, "condition": {"kind": "sharing", "program": program},
               "refund_after": T0 + 1000 * DAY_SECS}),
    )
    .unwrap()
}

fn grant(
    net: &mut Network,
    patient: &Keypair,
    grantee: &str,
    purpose: &str,
    not_before: i64,
    not_after: i64,
) -> String {
    run(
        net,
        patient,
        "consent.grant",
        json!({"patient": did(patient), "grantee": grantee, "scope": {"categories": ["lab"]},
               "actions": ["read"], "purpose": purpose, "not_before": not_before,
               "not_after": not_after}),
    )
    .unwrap()
}

/// The node logs a permitted HRESCH read by `requester` under `grants`.
fn access(net: &mut Network, requester: &str, patient: &str, grants: &[&str], time: i64) {
    let node = copy(&net.node);
    run(
        net,
        &node,
        "access",
        json!({"requester": requester, "patient": patient, "action": "read", "purpose": "HRESCH",
               "records": [], "decision": "permit", "break_glass": false, "justified": false,
               "reasons": ["hygeia.consent"], "grants": grants, "governance_version": 1,
               "time": time}),
    )
    .unwrap();
}

fn claim(net: &mut Network, key: &Keypair, program: &str, grant: &str) -> Result<String, String> {
    run(
        net,
        key,
        "sharing.claim",
        json!({"program": program, "grant": grant}),
    )
    .map_err(|e| e.code.as_str().to_owned())
}

fn claim_body(program: &str, grant: &str) -> Value {
    json!({"program": program, "grant": grant})
}

#[test]
fn a_claim_pays_whole_days_and_accesses_once_and_the_rest_later() {
    let Setup {
        mut net,
        researcher,
        patient,
        program,
    } = setup(300);
    let (r, p) = (did(&researcher), did(&patient));
    let g = grant(&mut net, &patient, &r, "HRESCH", T0, T0 + 30 * DAY_SECS);
    access(&mut net, &r, &p, &[&g], T0 + 10);
    access(&mut net, &r, &p, &[&g], T0 + DAY_SECS + 10);
    // Three days and a half later.
    tick(&mut net, T0 + 3 * DAY_SECS + DAY_SECS / 2);
    let before = balance(&net, &p);
    claim(&mut net, &patient, &program, &g).unwrap();
    assert_eq!(balance(&net, &p) - before, 3 * PER_DAY + 2 * PER_ACCESS);
    // Nothing new: refused, nothing changes.
    refused(
        &mut net,
        &patient,
        "sharing.claim",
        claim_body(&program, &g),
        "sharing.nothing_owed",
    );
    // The half day carried over: another half makes a whole one.
    tick(&mut net, T0 + 4 * DAY_SECS);
    claim(&mut net, &patient, &program, &g).unwrap();
    assert_eq!(balance(&net, &p) - before, 4 * PER_DAY + 2 * PER_ACCESS);
    let paid = net.state.sharing.claims_of(&program, &g);
    assert_eq!((paid.days, paid.accesses, paid.claims), (4, 2, 2));
    let prog = net.state.sharing.get(&program).unwrap();
    assert_eq!((prog.claims, prog.paid), (2, 4 * PER_DAY + 2 * PER_ACCESS));
    assert_eq!(
        net.state.escrows.program_balance(&program),
        300 - 4 * PER_DAY - 2 * PER_ACCESS
    );
    assert_conserved(&net.state);
}

#[test]
fn revocation_and_expiry_end_the_days_and_the_start_begins_them() {
    let Setup {
        mut net,
        researcher,
        patient,
        program,
    } = setup(300);
    let r = did(&researcher);
    // Granted from before the programme's start: days count from T0.
    let g = grant(
        &mut net,
        &patient,
        &r,
        "HRESCH",
        T0 - 5 * DAY_SECS,
        T0 + 5 * DAY_SECS,
    );
    access(&mut net, &r, &did(&patient), &[&g], T0 + 10);
    tick(&mut net, T0 + 2 * DAY_SECS + 100);
    run(&mut net, &patient, "consent.revoke", json!({"grant": g})).unwrap();
    assert_eq!(
        net.state.sharing.usage(&g).revoked_at,
        Some(T0 + 2 * DAY_SECS + 100)
    );
    tick(&mut net, T0 + 20 * DAY_SECS);
    let before = balance(&net, &did(&patient));
    claim(&mut net, &patient, &program, &g).unwrap();
    assert_eq!(
        balance(&net, &did(&patient)) - before,
        2 * PER_DAY + PER_ACCESS
    );
    // A revoked grant still gets what it earned, once.
    assert_eq!(
        claim(&mut net, &patient, &program, &g),
        Err("sharing.nothing_owed".into())
    );
    // Expiry: a grant ending at T0 + 21 days pays up to then.
    let g2 = grant(
        &mut net,
        &patient,
        &r,
        "HRESCH",
        T0 + 20 * DAY_SECS,
        T0 + 21 * DAY_SECS,
    );
    tick(&mut net, T0 + 40 * DAY_SECS);
    // Unused, it earns nothing (anyone can grant; only reads make a grant
    // earn); one read, and its day is paid.
    assert_eq!(
        claim(&mut net, &patient, &program, &g2),
        Err("sharing.nothing_owed".into())
    );
    access(
        &mut net,
        &r,
        &did(&patient),
        &[&g2],
        T0 + 20 * DAY_SECS + 10,
    );
    let before = balance(&net, &did(&patient));
    claim(&mut net, &patient, &program, &g2).unwrap();
    assert_eq!(balance(&net, &did(&patient)) - before, PER_DAY + PER_ACCESS);
}

#[test]
fn reading_a_thousand_times_a_day_counts_once_and_many_grants_pay_each_day_once() {
    let Setup {
        mut net,
        researcher,
        patient,
        program,
    } = setup(500);
    let (r, p) = (did(&researcher), did(&patient));
    // Self-dealing: the researcher reads the same patient over and over,
    // and the patient holds three overlapping grants to them.
    let grants: Vec<String> = (0..3)
        .map(|i| grant(&mut net, &patient, &r, "HRESCH", T0 + i, T0 + 30 * DAY_SECS))
        .collect();
    for i in 0..200 {
        let g = &grants[i % 3];
        access(&mut net, &r, &p, &[g, &grants[0]], T0 + 100 + i as i64);
    }
    // One access counted for the day, whatever the grant it went through.
    let counted: u64 = grants
        .iter()
        .map(|g| net.state.sharing.usage(g).accesses)
        .sum();
    assert_eq!(counted, 1);
    tick(&mut net, T0 + 2 * DAY_SECS + 10);
    let before = balance(&net, &p);
    for g in &grants {
        let _ = claim(&mut net, &patient, &program, g);
    }
    // Two days paid once (from the first grant's start), one access.
    assert_eq!(balance(&net, &p) - before, 2 * PER_DAY + PER_ACCESS);
    for g in &grants {
        assert_eq!(
            claim(&mut net, &patient, &program, g),
            Err("sharing.nothing_owed".into())
        );
    }
}

#[test]
fn claims_are_refused_for_the_wrong_party_grant_or_programme_and_a_short_fund() {
    let Setup {
        mut net,
        researcher,
        patient,
        program,
    } = setup(0);
    let (r, p) = (did(&researcher), did(&patient));
    let stranger = Keypair::generate();
    let clinician = copy(&net.cast.clinician);
    let g = grant(&mut net, &patient, &r, "HRESCH", T0, T0 + 30 * DAY_SECS);
    let treat = grant(&mut net, &patient, &r, "TREAT", T0, T0 + 30 * DAY_SECS);
    let elsewhere = grant(
        &mut net,
        &patient,
        &did(&clinician),
        "HRESCH",
        T0,
        T0 + 30 * DAY_SECS,
    );
    access(&mut net, &r, &p, &[&g], T0 + 10);
    tick(&mut net, T0 + 10 * DAY_SECS);
    let cases = [
        (&patient, "cd".repeat(32), g.clone(), "sharing.unknown"),
        (
            &patient,
            program.clone(),
            "cd".repeat(32),
            "sharing.unknown_grant",
        ),
        (&stranger, program.clone(), g.clone(), "sharing.not_patient"),
        (
            &researcher,
            program.clone(),
            g.clone(),
            "sharing.not_patient",
        ),
        (
            &patient,
            program.clone(),
            treat.clone(),
            "sharing.wrong_purpose",
        ),
        (
            &patient,
            program.clone(),
            elsewhere.clone(),
            "sharing.wrong_grantee",
        ),
        // Owed 25, nothing funded.
        (&patient, program.clone(), g.clone(), "sharing.unfunded"),
    ];
    for (key, prog, grant, code) in cases {
        refused(
            &mut net,
            key,
            "sharing.claim",
            claim_body(&prog, &grant),
            code,
        );
    }
    // A fund short of what is owed pays nothing; a top-up pays it all,
    // drawn from both escrows.
    let first = open_fund(&mut net, &researcher, &program, 15);
    refused(
        &mut net,
        &patient,
        "sharing.claim",
        claim_body(&program, &g),
        "sharing.unfunded",
    );
    open_fund(&mut net, &researcher, &program, 15);
    let before = balance(&net, &p);
    claim(&mut net, &patient, &program, &g).unwrap();
    assert_eq!(balance(&net, &p) - before, 10 * PER_DAY + PER_ACCESS);
    assert_eq!(net.state.escrows.program_balance(&program), 5);
    let _ = first;
    // A registered delegate claims for the patient; the patient is paid.
    let delegate = Keypair::generate();
    run(
        &mut net,
        &patient,
        "consent.delegate",
        json!({"patient": p, "delegate": did(&delegate), "op": "add"}),
    )
    .unwrap();
    tick(&mut net, T0 + 12 * DAY_SECS);
    claim(&mut net, &delegate, &program, &g).unwrap();
    assert_eq!(balance(&net, &p) - before, 12 * PER_DAY + PER_ACCESS);
    assert_eq!(balance(&net, &did(&delegate)), 0);
    assert_conserved(&net.state);
}

#[test]
fn only_the_researcher_publishes_and_funds_its_programme() {
    let Setup {
        mut net,
        researcher,
        patient,
        program,
    } = setup(0);
    let admin = copy(&net.cast.admin);
    refused(
        &mut net,
        &patient,
        "sharing.publish",
        json!({"researcher": did(&researcher), "unit": UNIT, "per_day": 1, "per_access": 1}),
        "sharing.not_researcher",
    );
    refused(
        &mut net,
        &researcher,
        "sharing.publish",
        json!({"researcher": did(&researcher), "unit": "no-such-unit", "per_day": 1, "per_access": 1}),
        "unit.unknown",
    );
    // An organization's admin publishes for it, and funds it.
    let org_program = run(
        &mut net,
        &admin,
        "sharing.publish",
        json!({"researcher": CLINIC, "unit": UNIT, "per_day": 1, "per_access": 0}),
    )
    .unwrap();
    assert_eq!(net.state.sharing.get(&org_program).unwrap().start, T0);
    run(
        &mut net,
        &admin,
        "escrow.open",
        json!({"unit": UNIT, "amount": 10, "funder": CLINIC,
               "condition": {"kind": "sharing", "program": org_program},
               "refund_after": T0 + 100}),
    )
    .unwrap();
    for (key, body, code) in [
        (
            &patient,
            json!({"unit": UNIT, "amount": 10, "condition": {"kind": "sharing", "program": program},
                   "refund_after": T0 + 100}),
            "escrow.not_program_owner",
        ),
        (
            &researcher,
            json!({"unit": UNIT, "amount": 10, "condition": {"kind": "sharing", "program": "ef".repeat(32)},
                   "refund_after": T0 + 100}),
            "sharing.unknown",
        ),
    ] {
        refused(&mut net, key, "escrow.open", body, code);
    }
    for body in [
        json!({"researcher": did(&researcher), "unit": UNIT, "per_day": 0, "per_access": 0}),
        json!({"researcher": "bob", "unit": UNIT, "per_day": 1, "per_access": 1}),
        json!({"researcher": did(&researcher), "unit": UNIT, "per_day": 1, "per_access": 1, "start": -1}),
        json!({"researcher": did(&researcher), "unit": UNIT, "per_day": 1, "per_access": 1, "extra": 1}),
    ] {
        let err = net.sign(&researcher, "sharing.publish", body).unwrap_err();
        assert_eq!(err.code, hygeia_ledger::ErrorCode::SchemaViolation);
    }
    let err = net
        .sign(
            &researcher,
            "escrow.open",
            json!({"unit": UNIT, "amount": 10, "beneficiary": CLINIC,
                   "condition": {"kind": "sharing", "program": program}, "refund_after": T0 + 100}),
        )
        .unwrap_err();
    assert_eq!(err.code, hygeia_ledger::ErrorCode::SchemaViolation);
}

#[test]
fn fresh_dids_granting_consent_earn_nothing_until_the_researcher_reads() {
    let Setup {
        mut net,
        researcher,
        program,
        ..
    } = setup(100);
    let r = did(&researcher);
    // A hundred sybils grant the researcher consent a year back.
    let sybils: Vec<(Keypair, String)> = (0..100)
        .map(|_| {
            let key = Keypair::generate();
            let g = grant(&mut net, &key, &r, "HRESCH", T0, T0 + 365 * DAY_SECS);
            (key, g)
        })
        .collect();
    tick(&mut net, T0 + 300 * DAY_SECS);
    for (key, g) in &sybils {
        refused(
            &mut net,
            key,
            "sharing.claim",
            claim_body(&program, g),
            "sharing.nothing_owed",
        );
    }
    assert_eq!(net.state.escrows.program_balance(&program), 100);
}

#[derive(Clone, Debug)]
enum Op {
    /// A permitted read under the patient's grant `grant`, `offset`
    /// seconds after the clock.
    Access {
        grant: usize,
        offset: i64,
    },
    Revoke {
        grant: usize,
    },
    Tick {
        secs: i64,
    },
    Claim {
        grant: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, 0..2 * DAY_SECS).prop_map(|(grant, offset)| Op::Access { grant, offset }),
        1 => (0..3usize).prop_map(|grant| Op::Revoke { grant }),
        3 => (1..3 * DAY_SECS).prop_map(|secs| Op::Tick { secs }),
        3 => (0..3usize).prop_map(|grant| Op::Claim { grant }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Three HRESCH grants to the researcher: two of patient A that
    /// overlap, one of patient B. Whatever happens, the fund is never
    /// overdrawn; B is paid exactly the formula (whole days from the start
    /// to min(clock at the claim, not_after, revocation), plus accesses
    /// counted once a day); A is never paid a day twice across its two
    /// grants nor more accesses than days it was read on.
    #[test]
    fn payouts_follow_the_formula_and_never_pay_twice(ops in prop::collection::vec(op(), 1..40)) {
        let Setup { mut net, researcher, patient, program } = setup(0);
        let fund = 120u64;
        open_fund(&mut net, &researcher, &program, fund);
        let r = did(&researcher);
        let other = Keypair::generate();
        let owners = [copy(&patient), copy(&patient), copy(&other)];
        let windows = [
            (T0, T0 + 6 * DAY_SECS),
            (T0 + DAY_SECS + 7, T0 + 9 * DAY_SECS),
            (T0 + 300, T0 + 8 * DAY_SECS),
        ];
        let grants: Vec<String> = (0..3)
            .map(|i| grant(&mut net, &owners[i], &r, "HRESCH", windows[i].0, windows[i].1))
            .collect();
        let mut clock = T0;
        let mut revoked: [Option<i64>; 3] = [None; 3];
        // Per patient (0: A, 1: B): the last day an access was counted,
        // and the accesses counted.
        let mut last_day: [Option<i64>; 2] = [None; 2];
        let mut counted = [0u64; 2];
        let mut b_counted_at_claim = 0u64;
        let (a, b) = (did(&patient), did(&other));
        let start = [balance(&net, &a), balance(&net, &b)];
        for op in ops {
            match op {
                Op::Access { grant: i, offset } => {
                    if revoked[i].is_some() {
                        continue;
                    }
                    let who = usize::from(i == 2);
                    let time = clock + offset;
                    access(&mut net, &r, &did(&owners[i]), &[&grants[i]], time);
                    let day = time.div_euclid(DAY_SECS);
                    if last_day[who].is_none_or(|last| last < day) {
                        last_day[who] = Some(day);
                        counted[who] += 1;
                    }
                }
                Op::Revoke { grant: i } => {
                    if revoked[i].is_none() {
                        run(&mut net, &owners[i], "consent.revoke", json!({"grant": grants[i]})).unwrap();
                        revoked[i] = Some(clock);
                    }
                }
                Op::Tick { secs } => {
                    clock += secs;
                    tick(&mut net, clock);
                }
                Op::Claim { grant: i } => {
                    let before = serde_json::to_vec(&net.state).unwrap();
                    let outcome = claim(&mut net, &owners[i], &program, &grants[i]);
                    if let Err(code) = &outcome {
                        prop_assert!(
                            ["sharing.nothing_owed", "sharing.unfunded"].contains(&code.as_str()),
                            "{code}"
                        );
                        prop_assert_eq!(serde_json::to_vec(&net.state).unwrap(), before);
                    } else if i == 2 {
                        b_counted_at_claim = counted[1];
                        let end = clock.min(windows[2].1).min(revoked[2].unwrap_or(i64::MAX));
                        // Days count once the grant was read at least once.
                        let days = if counted[1] > 0 {
                            u64::try_from((end - windows[2].0).max(0) / DAY_SECS).unwrap()
                        } else {
                            0
                        };
                        let paid = balance(&net, &b) - start[1];
                        prop_assert_eq!(paid, PER_DAY * days + PER_ACCESS * counted[1]);
                    }
                    // Immediately again: nothing new is owed.
                    prop_assert_eq!(
                        claim(&mut net, &owners[i], &program, &grants[i]).err(),
                        Some(if outcome.is_ok() { "sharing.nothing_owed".to_owned() }
                             else { outcome.clone().unwrap_err() })
                    );
                }
            }
            let paid_a = balance(&net, &a) - start[0];
            let paid_b = balance(&net, &b) - start[1];
            let prog = net.state.sharing.get(&program).unwrap();
            prop_assert_eq!(prog.paid, paid_a + paid_b);
            prop_assert!(prog.paid <= fund);
            prop_assert_eq!(net.state.escrows.program_balance(&program), fund - prog.paid);
            // A: its days across both grants at most the union's whole
            // days up to the clock; its accesses at most those counted.
            let days_a: u64 = (0..2).map(|i| net.state.sharing.claims_of(&program, &grants[i]).days).sum();
            let union_end = clock.min(windows[1].1);
            prop_assert!(days_a <= u64::try_from((union_end - T0).max(0) / DAY_SECS).unwrap());
            let accesses_a: u64 = (0..2).map(|i| net.state.sharing.claims_of(&program, &grants[i]).accesses).sum();
            prop_assert!(accesses_a <= counted[0]);
            prop_assert_eq!(paid_a, PER_DAY * days_a + PER_ACCESS * accesses_a);
            prop_assert_eq!(net.state.sharing.claims_of(&program, &grants[2]).accesses, b_counted_at_claim);
            assert_conserved(&net.state);
        }
    }
}
