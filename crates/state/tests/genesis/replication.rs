//! `network.node` and `record.replicate`: which node is an organization's,
//! and the hash-only trace of a record sent to an entitled node. Every
//! refusal has its code and changes nothing.

use hygeia_identity::Keypair;
use hygeia_ledger::SignedTx;
use hygeia_state::replication::{NETWORK_NODE, RECORD_REPLICATE};
use hygeia_state::LedgerState;
use serde_json::{json, Value};

use super::{code, did, genesis, key, tx};

const ORG_A: &str = "did:web:a.example";
const ORG_B: &str = "did:web:b.example";
const ORG_C: &str = "did:web:c.example";
const NOW: i64 = 1_800_000_000;

/// Nodes 1, 3, 4 (custodians) of organizations A, B, C; governance 2;
/// patient 20; clinician 21, a member of B; node 1 holds record 0x11 (lab)
/// and 0x12 (note).
struct World {
    state: LedgerState,
    next: u64,
}

fn node_a() -> Keypair {
    key(1)
}
fn node_b() -> Keypair {
    key(3)
}
fn node_c() -> Keypair {
    key(4)
}
fn governance() -> Keypair {
    key(2)
}
fn patient() -> Keypair {
    key(20)
}
fn clinician() -> Keypair {
    key(21)
}
fn record_id(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

impl World {
    fn new() -> World {
        let (a, b, c) = (node_a(), node_b(), node_c());
        let mut state = LedgerState::empty();
        state
            .apply(0, &genesis(&a, &governance(), &[&a, &b, &c]))
            .unwrap();
        let mut world = World { state, next: 1 };
        for (org, admin) in [(ORG_A, 10), (ORG_B, 11), (ORG_C, 12)] {
            world
                .ok(
                    &governance(),
                    "org.register",
                    json!({"org": org, "admin": did(&key(admin)), "kind": "hospital"}),
                )
                .unwrap();
        }
        world
            .ok(
                &key(11),
                "org.member",
                json!({"org": ORG_B, "member": did(&clinician()), "roles": ["clinician"], "status": "active"}),
            )
            .unwrap();
        for (n, category) in [(0x11, "lab"), (0x12, "note")] {
            world
                .ok(
                    &a,
                    "record",
                    json!({"patient": did(&patient()), "author": did(&patient()), "category": category,
                           "resource_type": "Observation", "commitment": record_id(n)}),
                )
                .unwrap();
        }
        world
    }

    fn sign(&mut self, signer: &Keypair, tx_type: &str, body: Value) -> SignedTx {
        let nonce = format!("n{}", self.next);
        tx(signer, tx_type, &nonce, body).unwrap()
    }

    fn ok(
        &mut self,
        signer: &Keypair,
        tx_type: &str,
        body: Value,
    ) -> Result<hygeia_state::Effect, hygeia_ledger::TxError> {
        let signed = self.sign(signer, tx_type, body);
        let result = self.state.apply(self.next, &signed);
        if result.is_ok() {
            self.next += 1;
        }
        result
    }

    fn bind_all(&mut self) {
        for (org, node) in [(ORG_A, node_a()), (ORG_B, node_b()), (ORG_C, node_c())] {
            self.ok(
                &governance(),
                NETWORK_NODE,
                json!({"org": org, "node": did(&node)}),
            )
            .unwrap();
        }
    }

    /// The patient grants `grantee` reading lab records; returns the grant id.
    fn grant(&mut self, grantee: &str) -> String {
        let signed = self.sign(
            &patient(),
            "consent.grant",
            json!({"patient": did(&patient()), "grantee": grantee, "scope": {"categories": ["lab"]},
                   "actions": ["read"], "purpose": "TREAT", "not_before": 0, "not_after": NOW * 2}),
        );
        self.state.apply(self.next, &signed).unwrap();
        self.next += 1;
        hex::encode(signed.leaf_hash().0)
    }

    /// Refused with `expected`, and the state unchanged.
    fn refused(&mut self, signer: &Keypair, tx_type: &str, body: Value, expected: &str) {
        let before = serde_json::to_value(&self.state).unwrap();
        let signed = self.sign(signer, tx_type, body);
        assert_eq!(code(self.state.apply(self.next, &signed)), expected);
        assert_eq!(serde_json::to_value(&self.state).unwrap(), before);
    }
}

fn replicate(record: &str, from: &Keypair, to: &Keypair) -> Value {
    json!({"record": record, "from": did(from), "to": did(to), "sha256": "cd".repeat(32), "time": NOW})
}

#[test]
fn an_organization_is_bound_to_its_node_by_governance() {
    let mut w = World::new();
    w.bind_all();
    let r = &w.state.replication;
    assert_eq!(r.node_of(ORG_B), Some(did(&node_b()).as_str()));
    assert_eq!(r.org_of(&did(&node_c())), Some(ORG_C));
    // Rebinding replaces the organization's node.
    w.ok(
        &governance(),
        "network.custodian",
        json!({"op": "add", "key": did(&key(5))}),
    )
    .unwrap();
    w.ok(
        &governance(),
        NETWORK_NODE,
        json!({"org": ORG_C, "node": did(&key(5))}),
    )
    .unwrap();
    let r = &w.state.replication;
    assert_eq!(r.node_of(ORG_C), Some(did(&key(5)).as_str()));
    assert_eq!(r.org_of(&did(&node_c())), None);
}

#[test]
fn bad_bindings_are_refused_and_change_nothing() {
    let mut w = World::new();
    w.bind_all();
    let cases = [
        // Only governance binds, not the node, not the organization's admin.
        (
            node_b(),
            json!({"org": ORG_B, "node": did(&node_a())}),
            "network.not_governance",
        ),
        (
            key(11),
            json!({"org": ORG_B, "node": did(&key(11))}),
            "network.not_governance",
        ),
        (
            governance(),
            json!({"org": "did:web:nobody.example", "node": did(&node_b())}),
            "org.unknown",
        ),
        // A stranger's key cannot be made an organization's node.
        (
            governance(),
            json!({"org": ORG_B, "node": did(&key(66))}),
            "network.node_not_custodian",
        ),
        // A node serves one organization.
        (
            governance(),
            json!({"org": ORG_B, "node": did(&node_a())}),
            "network.node_bound",
        ),
    ];
    for (signer, body, expected) in cases {
        w.refused(&signer, NETWORK_NODE, body, expected);
    }
}

#[test]
fn the_holder_replicates_to_the_node_of_an_entitled_member_only() {
    let mut w = World::new();
    w.bind_all();
    let lab = record_id(0x11);
    // No grant yet.
    w.refused(
        &node_a(),
        RECORD_REPLICATE,
        replicate(&lab, &node_a(), &node_b()),
        "replicate.not_entitled",
    );
    let grant = w.grant(&did(&clinician()));
    w.ok(
        &node_a(),
        RECORD_REPLICATE,
        replicate(&lab, &node_a(), &node_b()),
    )
    .unwrap();
    assert_eq!(
        w.state.replication.replicas_of(&lab).collect::<Vec<_>>(),
        [did(&node_b())]
    );
    // The grant covers lab records, not notes; and B's grant is not C's.
    let note = record_id(0x12);
    w.refused(
        &node_a(),
        RECORD_REPLICATE,
        replicate(&note, &node_a(), &node_b()),
        "replicate.not_entitled",
    );
    w.refused(
        &node_a(),
        RECORD_REPLICATE,
        replicate(&lab, &node_a(), &node_c()),
        "replicate.not_entitled",
    );
    // Once revoked, no further transfer.
    w.ok(&patient(), "consent.revoke", json!({"grant": grant}))
        .unwrap();
    w.refused(
        &node_a(),
        RECORD_REPLICATE,
        replicate(&lab, &node_a(), &node_b()),
        "replicate.not_entitled",
    );
}

#[test]
fn a_grant_to_the_organization_itself_entitles_its_node() {
    let mut w = World::new();
    w.bind_all();
    w.grant(ORG_C);
    let lab = record_id(0x11);
    w.ok(
        &node_a(),
        RECORD_REPLICATE,
        replicate(&lab, &node_a(), &node_c()),
    )
    .unwrap();
    w.refused(
        &node_a(),
        RECORD_REPLICATE,
        replicate(&lab, &node_a(), &node_b()),
        "replicate.not_entitled",
    );
}

#[test]
fn every_refusal_of_a_replication_has_its_code_and_changes_nothing() {
    let mut w = World::new();
    w.grant(&did(&clinician()));
    let lab = record_id(0x11);
    // B is not bound to any organization yet.
    w.refused(
        &node_a(),
        RECORD_REPLICATE,
        replicate(&lab, &node_a(), &node_b()),
        "replicate.node_unbound",
    );
    w.bind_all();
    let stranger = key(66);
    let cases = [
        // A stranger, even naming itself as sender, is no custodian.
        (
            key(66),
            replicate(&lab, &stranger, &node_b()),
            "custodian_only",
        ),
        // A custodian signing for another node.
        (
            node_c(),
            replicate(&lab, &node_a(), &node_b()),
            "replicate.not_sender",
        ),
        // A node that does not hold the record cannot send it.
        (
            node_c(),
            replicate(&lab, &node_c(), &node_b()),
            "replicate.not_holder",
        ),
        (
            node_a(),
            replicate(&record_id(0x99), &node_a(), &node_b()),
            "record.unknown",
        ),
        // Sending to itself.
        (
            node_a(),
            replicate(&lab, &node_a(), &node_a()),
            "replicate.to_self",
        ),
        // Receiving node: a custodian bound to no organization.
        (
            node_a(),
            replicate(&lab, &node_a(), &stranger),
            "replicate.node_unbound",
        ),
    ];
    for (signer, body, expected) in cases {
        w.refused(&signer, RECORD_REPLICATE, body, expected);
    }
    // An expired grant (decision time past not_after) entitles no one.
    let mut late = replicate(&lab, &node_a(), &node_b());
    late["time"] = json!(NOW * 3);
    w.refused(&node_a(), RECORD_REPLICATE, late, "replicate.not_entitled");
    // A decision time before the ledger's clock: a transfer cannot be
    // back-dated to before a grant expired.
    w.ok(&node_c(), "clock.tick", json!({"time": NOW + 10}))
        .unwrap();
    let mut early = replicate(&lab, &node_a(), &node_b());
    early["time"] = json!(NOW + 9);
    w.refused(
        &node_a(),
        RECORD_REPLICATE,
        early,
        "replicate.time_before_clock",
    );
    let mut on_time = replicate(&lab, &node_a(), &node_b());
    on_time["time"] = json!(NOW + 10);
    w.ok(&node_a(), RECORD_REPLICATE, on_time).unwrap();
    // Erased: no transfer.
    w.ok(&patient(), "record.erase", json!({"record": lab}))
        .unwrap();
    let mut after_erasure = replicate(&lab, &node_a(), &node_b());
    after_erasure["time"] = json!(NOW + 10);
    w.refused(
        &node_a(),
        RECORD_REPLICATE,
        after_erasure,
        "record.already_erased",
    );
}
