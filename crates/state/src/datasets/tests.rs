//! The rules of `dataset.publish`: each accepted case, each refusal with
//! its code and no change, and the status flags after a revocation, an
//! erasure and an expiry.

use hygeia_identity::Keypair;
use hygeia_ledger::SignedTx;
use serde_json::{json, Value};

use super::*;
use crate::testing::{copy, did, Network, CLINIC};

const NOW: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

struct Fixture {
    net: Network,
    researcher: Keypair,
    /// Two lab records of the patient, sorted by commitment.
    records: Vec<String>,
    /// The patient's HRESCH grant (lab, read) to the researcher.
    grant: String,
}

fn fingerprint(state: &LedgerState) -> String {
    serde_json::to_string(state).unwrap()
}

fn commitment(n: u8) -> String {
    hex::encode([n; 32])
}

/// Applies a signed transaction; returns its leaf hash (hex).
fn apply(net: &mut Network, tx: SignedTx) -> Result<String, TxError> {
    net.state.apply(net.next, &tx)?;
    net.next += 1;
    Ok(hex::encode(tx.leaf_hash().0))
}

fn submit(net: &mut Network, key: &Keypair, tx_type: &str, body: Value) -> Result<String, TxError> {
    let tx = net.sign(key, tx_type, body)?;
    apply(net, tx)
}

fn record(net: &mut Network, patient: &str, n: u8, category: &str) -> String {
    let node = copy(&net.node);
    let body = json!({"patient": patient, "author": did(&node), "category": category,
                      "resource_type": "Observation", "commitment": commitment(n)});
    submit(net, &node, "record", body).unwrap();
    commitment(n)
}

fn grant(net: &mut Network, grantee: &str, purpose: &str, from: i64, to: i64) -> String {
    let patient = copy(&net.cast.patient);
    let body = json!({"patient": did(&patient), "grantee": grantee,
                      "scope": {"categories": ["lab"]}, "actions": ["read"], "purpose": purpose,
                      "not_before": from, "not_after": to});
    submit(net, &patient, "consent.grant", body).unwrap()
}

fn tick(net: &mut Network, time: i64) {
    let node = copy(&net.node);
    submit(net, &node, "clock.tick", json!({ "time": time })).unwrap();
}

fn fixture() -> Fixture {
    let mut net = Network::at(NOW);
    let researcher = Keypair::generate();
    let patient = did(&net.cast.patient);
    let records = vec![
        record(&mut net, &patient, 1, "lab"),
        record(&mut net, &patient, 2, "lab"),
    ];
    let grant = grant(
        &mut net,
        &did(&researcher),
        "HRESCH",
        NOW - DAY,
        NOW + 30 * DAY,
    );
    tick(&mut net, NOW);
    Fixture {
        net,
        researcher,
        records,
        grant,
    }
}

/// A manifest body over `members` (sorted here), root and count computed.
fn manifest(members: &[(&str, &str)]) -> Value {
    let mut members: Vec<DatasetMember> = members
        .iter()
        .map(|(record, grant)| DatasetMember {
            record: (*record).into(),
            grant: (*grant).into(),
        })
        .collect();
    members.sort_by(|a, b| a.record.cmp(&b.record));
    json!({"root": members_root(&members).unwrap(), "count": members.len(),
           "pseudonymisation": "ef".repeat(32), "members": members})
}

fn both(f: &Fixture) -> Value {
    manifest(&[(&f.records[0], &f.grant), (&f.records[1], &f.grant)])
}

fn publish(f: &mut Fixture, key: &Keypair, body: Value) -> Result<String, TxError> {
    submit(&mut f.net, key, DATASET_PUBLISH, body)
}

/// Publishing `body` as `key` is refused with `code` and changes nothing.
fn refused(f: &mut Fixture, key: &Keypair, body: Value, code: &str) {
    let before = fingerprint(&f.net.state);
    let next = f.net.next;
    let err = publish(f, key, body).unwrap_err();
    assert_eq!(err.code.as_str(), code, "{err}");
    assert_eq!(fingerprint(&f.net.state), before);
    assert_eq!(f.net.next, next);
}

#[test]
fn a_manifest_of_covered_records_is_published_and_valid() {
    let mut f = fixture();
    let researcher = copy(&f.researcher);
    let body = both(&f);
    let id = publish(&mut f, &researcher, body.clone()).unwrap();
    let dataset = f.net.state.datasets.get(&id).unwrap();
    assert_eq!(dataset.researcher, did(&f.researcher));
    assert_eq!(dataset.count, 2);
    assert_eq!(dataset.root, body["root"]);
    assert_eq!(dataset.clock, NOW);
    assert_eq!(f.net.state.datasets.status(&f.net.state, &id), Some(vec![]));
    assert_eq!(f.net.state.datasets.status(&f.net.state, "00"), None);
}

#[test]
fn a_grant_to_the_researchers_organization_covers_its_members() {
    let mut f = fixture();
    let org_grant = grant(&mut f.net, CLINIC, "HRESCH", NOW - DAY, NOW + DAY);
    let clinician = copy(&f.net.cast.clinician);
    let body = manifest(&[(&f.records[0], &org_grant)]);
    // The cast's clinician is an active member of the clinic.
    publish(&mut f, &clinician, body.clone()).unwrap();
    // A stranger is not.
    let body = manifest(&[(&f.records[1], &org_grant)]);
    refused(&mut f, &Keypair::generate(), body, "dataset.not_grantee");
}

#[test]
fn a_stranger_publishes_nothing_and_learns_nothing_of_records() {
    let mut f = fixture();
    let stranger = Keypair::generate();
    // Someone else's grant: refused before any record is looked at, so
    // an existing and an unknown commitment give the same answer.
    for record in [f.records[0].clone(), commitment(0x77)] {
        let body = manifest(&[(&record, &f.grant)]);
        refused(&mut f, &stranger, body, "dataset.not_grantee");
    }
    let body = manifest(&[(&f.records[0], &commitment(0x55))]);
    refused(&mut f, &stranger, body, "dataset.unknown_grant");
}

#[test]
fn each_refusal_has_its_code_and_changes_nothing() {
    let mut f = fixture();
    let researcher = copy(&f.researcher);
    let me = did(&researcher);
    let patient = did(&f.net.cast.patient);
    // Unknown grant.
    let body = manifest(&[(&f.records[0], &commitment(0x55))]);
    refused(&mut f, &researcher, body, "dataset.unknown_grant");
    // A treatment grant is not a research grant.
    let treat = grant(&mut f.net, &me, "TREAT", NOW - DAY, NOW + DAY);
    let body = manifest(&[(&f.records[0], &treat)]);
    refused(&mut f, &researcher, body, "dataset.not_research");
    // Not yet active by the ledger's clock.
    let later = grant(&mut f.net, &me, "HRESCH", NOW + DAY, NOW + 2 * DAY);
    let body = manifest(&[(&f.records[0], &later)]);
    refused(&mut f, &researcher, body, "dataset.grant_inactive");
    // An unknown record, and a record outside the grant's scope.
    let imaging = record(&mut f.net, &patient, 3, "imaging");
    for record in [commitment(0x66), imaging] {
        let body = manifest(&[(&record, &f.grant)]);
        refused(&mut f, &researcher, body, "dataset.not_covered");
    }
    // A record of another patient.
    let other = did(&Keypair::generate());
    let theirs = record(&mut f.net, &other, 4, "lab");
    let body = manifest(&[(&theirs, &f.grant)]);
    refused(&mut f, &researcher, body, "dataset.not_covered");
    // An erased record.
    let erased = record(&mut f.net, &patient, 5, "lab");
    let p = copy(&f.net.cast.patient);
    submit(&mut f.net, &p, "record.erase", json!({ "record": erased })).unwrap();
    let body = manifest(&[(&f.records[0], &f.grant), (&erased, &f.grant)]);
    refused(&mut f, &researcher, body, "dataset.record_erased");
    // A revoked grant.
    let revoked = grant(&mut f.net, &me, "HRESCH", NOW - DAY, NOW + DAY);
    submit(
        &mut f.net,
        &p,
        "consent.revoke",
        json!({ "grant": revoked }),
    )
    .unwrap();
    let body = manifest(&[(&f.records[0], &revoked)]);
    refused(&mut f, &researcher, body, "dataset.grant_revoked");
    // The same manifest twice.
    let body = both(&f);
    publish(&mut f, &researcher, body.clone()).unwrap();
    refused(&mut f, &researcher, body, "dataset.duplicate");
}

#[test]
fn a_malformed_manifest_is_a_schema_violation() {
    let mut f = fixture();
    let researcher = copy(&f.researcher);
    let good = both(&f);
    let mut wrong_root = good.clone();
    wrong_root["root"] = json!(commitment(9));
    let mut wrong_count = good.clone();
    wrong_count["count"] = json!(3);
    let mut unsorted = good.clone();
    unsorted["members"].as_array_mut().unwrap().reverse();
    let mut repeated = manifest(&[(&f.records[0], &f.grant)]);
    let member = repeated["members"][0].clone();
    repeated["members"] = json!([member.clone(), member.clone()]);
    repeated["count"] = json!(2);
    let mut empty = good.clone();
    empty["members"] = json!([]);
    empty["count"] = json!(0);
    let many: Vec<(String, String)> = (0..=MAX_DATASET_MEMBERS)
        .map(|i| {
            (
                hex::encode([(i % 256) as u8, (i / 256) as u8].repeat(16)),
                f.grant.clone(),
            )
        })
        .collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(r, g)| (r.as_str(), g.as_str())).collect();
    let too_many = manifest(&many);
    // The largest manifest fits in one transaction.
    let largest = manifest(&many[..MAX_DATASET_MEMBERS]);
    let tx = f.net.sign(&researcher, DATASET_PUBLISH, largest).unwrap();
    assert!(serde_json::to_vec(tx.body()).unwrap().len() < hygeia_ledger::MAX_TX_BYTES);
    for body in [wrong_root, wrong_count, unsorted, repeated, empty, too_many] {
        let err = f.net.sign(&researcher, DATASET_PUBLISH, body).unwrap_err();
        assert_eq!(err.code.as_str(), "schema_violation", "{err}");
    }
}

#[test]
fn a_revocation_after_publication_is_flagged() {
    let mut f = fixture();
    let researcher = copy(&f.researcher);
    let own = grant(
        &mut f.net,
        &did(&researcher),
        "HRESCH",
        NOW - DAY,
        NOW + DAY,
    );
    let body = manifest(&[(&f.records[0], &f.grant), (&f.records[1], &own)]);
    let id = publish(&mut f, &researcher, body).unwrap();
    let p = copy(&f.net.cast.patient);
    submit(&mut f.net, &p, "consent.revoke", json!({ "grant": own })).unwrap();
    let flagged = f.net.state.datasets.status(&f.net.state, &id).unwrap();
    assert_eq!(
        flagged,
        vec![Flagged {
            index: 1,
            record: f.records[1].clone(),
            grant: own,
            reasons: vec![Flag::GrantRevoked],
        }]
    );
}

#[test]
fn an_erasure_or_an_expiry_after_publication_is_flagged() {
    let mut f = fixture();
    let researcher = copy(&f.researcher);
    let body = both(&f);
    let id = publish(&mut f, &researcher, body).unwrap();
    let p = copy(&f.net.cast.patient);
    let erased = f.records[0].clone();
    submit(&mut f.net, &p, "record.erase", json!({ "record": erased })).unwrap();
    let flagged = f.net.state.datasets.status(&f.net.state, &id).unwrap();
    assert_eq!(flagged.len(), 1);
    assert_eq!(
        (flagged[0].index, flagged[0].reasons.clone()),
        (0, vec![Flag::RecordErased])
    );
    // The grant ends; both members are flagged by the ledger's clock.
    tick(&mut f.net, NOW + 31 * DAY);
    let flagged = f.net.state.datasets.status(&f.net.state, &id).unwrap();
    let reasons: Vec<Vec<Flag>> = flagged.into_iter().map(|m| m.reasons).collect();
    assert_eq!(
        reasons,
        vec![
            vec![Flag::RecordErased, Flag::GrantExpired],
            vec![Flag::GrantExpired]
        ]
    );
}

#[test]
fn the_root_is_the_rfc_9162_root_of_the_pairs() {
    let members = vec![
        DatasetMember {
            record: commitment(1),
            grant: commitment(2),
        },
        DatasetMember {
            record: commitment(3),
            grant: commitment(4),
        },
    ];
    let leaf = |r: u8, g: u8| {
        let mut bytes = vec![r; 32];
        bytes.extend([g; 32]);
        hygeia_ledger::merkle::leaf_hash(&bytes)
    };
    let expected = hygeia_ledger::merkle::node_hash(leaf(1, 2), leaf(3, 4));
    assert_eq!(members_root(&members).unwrap(), hex::encode(expected.0));
    assert_eq!(
        members_root(&[DatasetMember {
            record: "zz".into(),
            grant: commitment(1)
        }]),
        None
    );
}
