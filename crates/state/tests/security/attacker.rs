//! The property: whatever an attacker signs with the keys it holds (fresh
//! did:keys, and whatever they can become on their own: a patient of its
//! own data, a self-declared issuer, an identity with a recovery key),
//! applied to a network of others, no one else's standing changes — their
//! key mapping, grants, delegates, records, memberships, licences,
//! recovery registration, organization or status list — and each of them
//! can still act as themselves afterwards.
//!
//! The attacker's transactions are drawn over every type the registry
//! knows, with bodies naming the victims; a type added later without a
//! body here fails the test.

use std::sync::OnceLock;

use hygeia_credentials::credential_types::VCT_CLINICIAN_LICENCE;
use hygeia_credentials::status_list::{StatusListEntry, StatusPurpose};
use hygeia_identity::Keypair;
use hygeia_ledger::SignedTx;
use proptest::prelude::*;
use serde_json::{json, Value};

use super::fixture::*;

/// Keys the attacker holds: three identities, a key it may register as a
/// recovery key, and four fresh keys to rotate its identities to.
fn attacker_keys() -> &'static [Keypair] {
    static KEYS: OnceLock<Vec<Keypair>> = OnceLock::new();
    KEYS.get_or_init(|| (100..108).map(|n| Keypair::from_seed(&[n; 32])).collect())
}

/// Credentials the attacker can make, built once: per attacker key,
/// status lists and licence presentations it can sign.
struct Arsenal {
    lists: Vec<Vec<Value>>,
    presentations: Vec<Vec<String>>,
}

fn arsenal(victims: &Victims) -> &'static Arsenal {
    static ARSENAL: OnceLock<Arsenal> = OnceLock::new();
    ARSENAL.get_or_init(|| {
        let keys = attacker_keys();
        let board = did(&victims.board);
        let node = did(&victims.node);
        let all: Vec<usize> = (0..64).collect();
        let on_board_list = [StatusListEntry::new(
            victims.list.clone(),
            StatusPurpose::Suspension,
            victims.bit,
        )];
        let mut lists = Vec::new();
        let mut presentations = Vec::new();
        for (i, me) in keys.iter().enumerate() {
            let accomplice = &keys[(i + 1) % keys.len()];
            lists.push(vec![
                // The board's list, signed by the attacker under the board's name.
                status_list(me, &board, &victims.list, StatusPurpose::Revocation, &all),
                // Its own list under the board's list id (squatting).
                status_list(me, &did(me), &victims.list, StatusPurpose::Revocation, &all),
                // Under the board's namespace, a name the board has not used.
                status_list(
                    me,
                    &did(me),
                    &list_id(&board, "board-2027"),
                    StatusPurpose::Revocation,
                    &all,
                ),
                // Its own namespace.
                status_list(
                    me,
                    &did(me),
                    &list_id(&did(me), "mine"),
                    StatusPurpose::Suspension,
                    &all,
                ),
            ]);
            presentations.push(vec![
                // The clinician's own registration, copied from the log.
                licence_presentation(&victims.board, &victims.clinician, &node, &[]),
                // A licence an accomplice issues it, pointing at the
                // board's list.
                licence_presentation(accomplice, me, &node, &on_board_list),
                // A licence about the clinician, bound to the attacker's key.
                licence_about(accomplice, &victims.clinician.did(), me, &node, &[]),
                // A licence it issues itself.
                licence_presentation(me, me, &node, &[]),
            ]);
        }
        Arsenal {
            lists,
            presentations,
        }
    })
}

/// One attacker transaction: who signs, which type, and the choices its
/// body makes.
#[derive(Debug, Clone)]
struct Attack {
    signer: usize,
    tx_type: usize,
    picks: [usize; 4],
}

/// Rotations are drawn four times as often as other types: they are how
/// keys change hands.
const EXTRA_ROTATIONS: usize = 3;

fn attack() -> impl Strategy<Value = Attack> {
    let types = modules().types().len();
    (
        0..attacker_keys().len(),
        0..types + EXTRA_ROTATIONS,
        prop::array::uniform4(0..1000usize),
    )
        .prop_map(|(signer, tx_type, picks)| Attack {
            signer,
            tx_type,
            picks,
        })
}

/// What bodies can name.
struct Pools {
    victims: Vec<String>,
    dids: Vec<String>,
    orgs: Vec<String>,
    commitments: Vec<String>,
    grants: Vec<String>,
}

fn pick<T: Clone>(pool: &[T], choice: usize) -> T {
    pool[choice % pool.len()].clone()
}

/// The body of an attacker's `tx_type` transaction, signed by the
/// attacker key `signer` (number `me` of [`attacker_keys`]) acting for
/// `identity`. Every DID a body names is the attacker's own identity a
/// third of the time, and otherwise anyone's.
fn body(
    tx_type: &str,
    p: [usize; 4],
    pools: &Pools,
    arsenal: &Arsenal,
    me: usize,
    identity: &str,
) -> Value {
    let signer = &attacker_keys()[me];
    let did_at = |i: usize| {
        if p[i].is_multiple_of(3) {
            identity.to_owned()
        } else {
            pick(&pools.dids, p[i] / 3)
        }
    };
    let flag = |i: usize| p[i].is_multiple_of(2);
    match tx_type {
        "attest" => {
            json!({"label": "lab.result", "subject": format!("sha256:{}", commitment(p[0] as u8))})
        }
        "org.register" => {
            json!({"org": pick(&pools.orgs, p[0]), "admin": did_at(1), "kind": "clinic"})
        }
        "org.member" => json!({
            "org": pick(&pools.orgs, p[0]), "member": did_at(1),
            "roles": [pick(&["clinician", "admin", "researcher"], p[2])],
            "jurisdiction": "FR",
            "status": pick(&["active", "suspended", "removed"], p[3]),
        }),
        "governance.policy" => json!({
            "version": p[0] % 3 + 1,
            "policies": "@id(\"everyone\") permit (principal, action, resource);",
        }),
        "record" => json!({
            "patient": did_at(0), "author": did_at(1), "category": "lab",
            "resource_type": "Observation", "commitment": pick(&pools.commitments, p[2]),
        }),
        "record.erase" => json!({"record": pick(&pools.commitments, p[0])}),
        "consent.grant" => json!({
            "patient": did_at(0), "grantee": did_at(1), "scope": {"categories": ["lab"]},
            "actions": ["read", "write"], "purpose": "TREAT", "not_before": 0, "not_after": NOW * 2,
        }),
        "consent.revoke" => json!({"grant": pick(&pools.grants, p[0])}),
        "consent.delegate" => json!({
            "patient": did_at(0), "delegate": did_at(1),
            "op": if flag(2) { "add" } else { "remove" },
        }),
        "access" => json!({
            "requester": did_at(0), "patient": did_at(1), "action": "read", "purpose": "ETREAT",
            "records": [pick(&pools.commitments, p[2])], "decision": "permit", "break_glass": true,
            "justified": true, "reasons": ["break-glass-emergency-read"], "grants": [],
            "governance_version": 0, "time": NOW,
        }),
        "org.keys" => {
            json!({"org": pick(&pools.orgs, p[0]), "admin": did_at(1), "assertion": [did_at(2)]})
        }
        "trust.issuer" => json!({
            "issuer": did_at(0), "credential_type": VCT_CLINICIAN_LICENCE,
            "op": if flag(1) { "add" } else { "remove" },
        }),
        "status.list" => json!({"credential": pick(&arsenal.lists[me], p[0])}),
        "licence.register" => json!({"presentation": pick(&arsenal.presentations[me], p[0])}),
        "identity.recovery" => json!({
            "recovery_key": did_at(0), "threshold": 2, "guardians": [did_at(1), did_at(2)],
            "split": "cd".repeat(32),
        }),
        "identity.rotate" => {
            // Mostly of its own identity; to a victim's key or to one of
            // its own keys (which then signs its acceptance; otherwise the
            // attacker's key signs it).
            let subject = if p[0].is_multiple_of(3) {
                pick(&pools.dids, p[0] / 3)
            } else {
                identity.to_owned()
            };
            let new_key = if p[1].is_multiple_of(2) {
                pick(&pools.victims, p[1] / 2)
            } else {
                did(&attacker_keys()[(p[1] / 2) % attacker_keys().len()])
            };
            let acceptor = attacker_keys()
                .iter()
                .find(|k| did(k) == new_key)
                .unwrap_or(signer);
            let mut body = rotate_body(&subject, &new_key, acceptor);
            if p[3].is_multiple_of(3) {
                // As bodies were before a rotation needed the new key's
                // acceptance.
                body.as_object_mut().map(|b| b.remove("proof"));
            }
            body
        }
        "device.attest" => json!({
            "device": did_at(0), "presentation": pick(&arsenal.presentations[me], p[1]),
            "from": NOW, "until": NOW + 86_400,
        }),
        "device.batch" => json!({
            "device": did_at(0), "root": pick(&pools.commitments, p[1]), "count": 1,
            "from": NOW, "to": NOW, "days": [{"kind": "glucose", "days": [NOW / 86_400]}],
            "commitment": pick(&pools.commitments, p[2]),
        }),
        "adherence.rule" => json!({
            "rule": pick(&pools.commitments, p[0]), "kind": "glucose",
            "start_day": NOW / 86_400, "end_day": NOW / 86_400 + 1, "min_percent": 50,
        }),
        "adherence.evaluate" => {
            json!({"rule": pick(&pools.commitments, p[0]), "subject": did_at(1)})
        }
        "genesis" => json!({"governance": [did_at(0)], "custodians": [did_at(1)]}),
        "network.custodian" => match p[2] % 3 {
            0 => json!({"op": "add", "key": did_at(0)}),
            1 => json!({"op": "remove", "key": did_at(0)}),
            _ => json!({"op": "rotate", "key": did_at(0), "new_key": did_at(1)}),
        },
        "network.node" => json!({"org": pick(&pools.orgs, p[0]), "node": did_at(1)}),
        "network.validators" => json!({
            "epoch": p[0] % 3,
            "validators": [{"key": did_at(1), "address": format!("127.0.0.1:{}", 1024 + p[2] % 1000)}],
        }),
        "record.replicate" => json!({
            "record": pick(&pools.commitments, p[0]), "from": did_at(1), "to": did_at(2),
            "sha256": commitment(p[3] as u8), "time": NOW,
        }),
        "unit.register" => json!({"unit": "gluco-token", "issuer": did_at(0)}),
        "unit.mint" => json!({"unit": "gluco-token", "to": did_at(0), "amount": p[1] % 1000 + 1}),
        "unit.transfer" => json!({
            "unit": "gluco-token", "from": if flag(2) { CLINIC.to_owned() } else { did_at(0) },
            "to": did_at(1), "amount": p[3] % 100 + 1,
        }),
        "escrow.open" => json!({
            "unit": "gluco-token", "amount": p[3] % 100 + 1,
            "funder": if flag(2) { CLINIC.to_owned() } else { did_at(0) },
            "beneficiary": did_at(1), "condition": {"kind": "milestone", "id": "m"},
            "refund_after": NOW + 10,
        }),
        "escrow.release" | "escrow.refund" => json!({"escrow": pick(&pools.grants, p[0])}),
        "clock.tick" => json!({"time": NOW + 10 * 86_400}),
        "program.publish" => json!({
            "org": pick(&pools.orgs, p[0]), "unit": "gluco-token", "reward": 10,
            "attribute": "hba1c-percent-x10", "range": {"max_exclusive": 70},
            "issuers": [did_at(1)], "start": NOW, "period_secs": 86_400,
        }),
        "program.claim" => json!({"program": pick(&pools.grants, p[0]), "presentation": "{}"}),
        "sharing.publish" => json!({
            "researcher": pick(&pools.orgs, p[0]), "unit": "gluco-token", "per_day": 10,
            "per_access": 10,
        }),
        "sharing.claim" => {
            json!({"program": pick(&pools.grants, p[0]), "grant": pick(&pools.grants, p[1])})
        }
        "study.register" => json!({
            "protocol": pick(&pools.commitments, p[0]), "version": "1", "committee": did_at(1),
        }),
        "study.amend" => json!({
            "study": pick(&pools.grants, p[0]), "protocol": pick(&pools.commitments, p[1]),
            "version": "2", "reconsent": flag(2),
        }),
        "study.progress" => json!({"study": pick(&pools.grants, p[0]), "state": "terminated"}),
        "ethics.approve" => json!({
            "study": pick(&pools.grants, p[0]), "version": "1", "protocol": pick(&pools.commitments, p[1]),
        }),
        "site.activate" => json!({
            "study": pick(&pools.grants, p[0]), "site": did_at(1), "presentation": "e30.e30.c2ln~",
        }),
        "econsent.give" => json!({
            "study": pick(&pools.grants, p[0]), "site": did_at(1), "version": "1",
            "protocol": pick(&pools.commitments, p[1]), "document": pick(&pools.commitments, p[3]),
        }),
        "econsent.withdraw" => json!({"study": pick(&pools.grants, p[0])}),
        "subject.milestone" => json!({
            "study": pick(&pools.grants, p[0]), "subject": did_at(1), "milestone": "enrolled",
        }),
        "subject.deviation" => json!({
            "study": pick(&pools.grants, p[0]), "subject": did_at(1), "severity": "major",
            "report": pick(&pools.commitments, p[1]),
        }),
        "subject.endpoint" => json!({
            "study": pick(&pools.grants, p[0]), "subject": did_at(1), "endpoint": "primary",
            "report": pick(&pools.commitments, p[1]),
        }),
        "dataset.publish" => {
            let members = vec![hygeia_state::datasets::DatasetMember {
                record: pick(&pools.commitments, p[0]),
                grant: pick(&pools.grants, p[1]),
            }];
            let root = hygeia_state::datasets::members_root(&members).unwrap_or_default();
            json!({"root": root, "count": 1, "pseudonymisation": pick(&pools.commitments, p[2]),
                   "members": members})
        }
        other => panic!("no attacker body for transaction type {other:?}: add one here"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn an_attacker_changes_no_one_elses_standing(attacks in prop::collection::vec(attack(), 1..24)) {
        let mut victims = Victims::new();
        let (mut state, mut next) = victims.state();
        let before = victims.standing(&state);
        let types = modules().types();
        let keys = attacker_keys();
        let arsenal = arsenal(&victims);
        let mut dids = victims.dids();
        dids.extend(keys.iter().map(did));
        let mut pools = Pools {
            victims: victims.dids(),
            dids,
            orgs: vec![CLINIC.to_owned(), "did:web:evil.example".to_owned()],
            commitments: vec![commitment(1), commitment(2), commitment(0x30), commitment(0x31)],
            grants: vec![victims.grant.clone(), victims.escrow.clone(), "ab".repeat(32)],
        };
        let mut admitted = Vec::new();
        for (i, a) in attacks.iter().enumerate() {
            let signer = &keys[a.signer];
            let tx_type = types.get(a.tx_type).copied().unwrap_or("identity.rotate");
            let identity = state.identities.identity_of(&did(signer)).unwrap_or_else(|_| did(signer));
            let body = body(tx_type, a.picks, &pools, arsenal, a.signer, &identity);
            let Ok(signed): Result<SignedTx, _> = tx(signer, tx_type, &format!("attack-{i}"), body) else {
                continue;
            };
            if state.apply(next, &signed).is_ok() {
                next += 1;
                admitted.push(tx_type);
                if tx_type == "consent.grant" {
                    pools.grants.push(hex::encode(signed.leaf_hash().0));
                }
            }
        }
        prop_assert_eq!(victims.standing(&state), before, "after admitting {:?}", admitted);
        if let Err(e) = victims.still_act(&state, next) {
            prop_assert!(false, "after admitting {:?}: {}", admitted, e);
        }
    }
}

/// Every type the registry knows has an attacker body.
#[test]
fn every_transaction_type_is_attacked() {
    let victims = Victims::new();
    let pools = Pools {
        victims: victims.dids(),
        dids: victims.dids(),
        orgs: vec![CLINIC.to_owned()],
        commitments: vec![commitment(1)],
        grants: vec!["ab".repeat(32)],
    };
    let arsenal = arsenal(&victims);
    for tx_type in modules().types() {
        let _ = body(
            tx_type,
            [0; 4],
            &pools,
            arsenal,
            0,
            &did(&attacker_keys()[0]),
        );
    }
}
