//! A canonical dump of the replicated state, made only through the state's
//! public accessors, so the same function can read the state before and
//! after the state machine moved to its own crate.
//!
//! The accessors answer per DID or per id, so the dump asks them about
//! every DID and every grant id named anywhere in the log (the universe).

use std::collections::BTreeSet;

use hygeia_ledger::SignedTx;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use hygeia_state::LedgerState;

/// Every DID named in the log (signers and any string in a body that is
/// a DID) and the id of every grant.
pub struct Universe {
    pub dids: BTreeSet<String>,
    pub grant_ids: BTreeSet<String>,
}

fn strings(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::String(s) if s.starts_with("did:") => {
            out.insert(s.clone());
        }
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

pub fn universe(txs: &[SignedTx]) -> Universe {
    let mut dids = BTreeSet::new();
    let mut grant_ids = BTreeSet::new();
    for tx in txs {
        dids.insert(tx.signer().to_string());
        strings(tx.body(), &mut dids);
        if tx.tx_type() == "consent.grant" {
            grant_ids.insert(hex::encode(tx.leaf_hash().0));
        }
    }
    Universe { dids, grant_ids }
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn canonical(value: &Value) -> Vec<u8> {
    serde_json_canonicalizer::to_vec(value).expect("a JSON value serializes")
}

fn to_value<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("state entries serialize")
}

/// The state as one canonical JSON value; `at` is the time licence
/// standing and break-glass windows are judged at.
pub fn dump(state: &LedgerState, universe: &Universe, at: i64) -> Value {
    let dids = &universe.dids;
    let consents = state.policy.consents();
    let grants: Vec<Value> = universe
        .grant_ids
        .iter()
        .map(|id| {
            json!({
                "id": id,
                "grant": consents.get(id).map(to_value),
                "revoked": consents.is_revoked(id),
            })
        })
        .collect();
    let mut unrevoked_by_patient = Map::new();
    let mut delegates = Map::new();
    let mut memberships = Map::new();
    let mut licences = Map::new();
    let mut identities = Map::new();
    let mut records_by_patient = Map::new();
    for did in dids {
        let mut ids: Vec<&str> = consents.grants_of(did).map(|g| g.id.as_str()).collect();
        ids.sort_unstable();
        if !ids.is_empty() {
            unrevoked_by_patient.insert(did.clone(), json!(ids));
        }
        let mut of: Vec<&str> = consents.delegates_of(did).collect();
        of.sort_unstable();
        if !of.is_empty() {
            delegates.insert(did.clone(), json!(of));
        }
        let m = state.participants.memberships(did);
        if !m.is_empty() {
            memberships.insert(did.clone(), to_value(&m));
        }
        let l: Vec<Value> = state
            .credentials
            .licences_of(did)
            .iter()
            .map(|l| {
                json!({
                    "licence": to_value(l),
                    "standing": state.credentials.standing(l, at).code(),
                })
            })
            .collect();
        if !l.is_empty() {
            licences.insert(did.clone(), json!(l));
        }
        let ids = &state.identities;
        let acting = match ids.identity_of(did) {
            Ok(identity) => json!({ "acts_for": identity }),
            Err(e) => json!({ "refused": e.code.as_str() }),
        };
        let entry = json!({
            "recovery": ids.recovery(did).map(to_value),
            "rotations": to_value(&ids.rotations(did)),
            "current_key": ids.current_key(did),
            "key": acting,
        });
        let trivial = ids.recovery(did).is_none()
            && ids.rotations(did).is_empty()
            && ids.current_key(did) == did
            && ids.identity_of(did).ok().as_deref() == Some(did.as_str());
        if !trivial {
            identities.insert(did.clone(), entry);
        }
        let r: Vec<&str> = state
            .records
            .of_patient(did)
            .map(|r| r.commitment.as_str())
            .collect();
        if !r.is_empty() {
            records_by_patient.insert(did.clone(), json!(r));
        }
    }
    // The old dump predates the holder of a record (`node`, the key that
    // signed its `record`): it is left out, as the old state had none.
    let mut records: Vec<Value> = state
        .records
        .all()
        .map(to_value)
        .map(|mut record| {
            if let Some(fields) = record.as_object_mut() {
                fields.remove("node");
            }
            record
        })
        .collect();
    records.sort_by(|a, b| a["commitment"].as_str().cmp(&b["commitment"].as_str()));
    let orgs: Vec<Value> = state
        .participants
        .orgs()
        .into_iter()
        .map(|(did, org)| json!({ "did": did, "org": to_value(org) }))
        .collect();
    let trust: Vec<Value> = state
        .credentials
        .trust_list()
        .into_iter()
        .map(to_value)
        .collect();
    let lists: Vec<Value> = state
        .credentials
        .list_ids()
        .into_iter()
        .filter_map(|id| state.credentials.list(id).map(|l| (id, l)))
        .map(|(id, l)| {
            // The state keeps only the bits registered licences point at
            // (since the status-list cost rules), so the dump names the
            // list, not a hash of all its bits; licence standings show the
            // bits that count.
            let credential: Value =
                serde_json::from_str(&l.credential).expect("a published list is JSON");
            json!({
                "id": id,
                "issuer": l.issuer,
                "purpose": l.purpose.as_str(),
                "index": l.index,
                "bits": l.entries,
                "credential_sha256": sha256(&canonical(&credential)),
            })
        })
        .collect();
    let mut windows = Vec::new();
    for requester in dids {
        for patient in dids {
            if let Some(until) = state.break_glass_until(requester, patient, at) {
                windows.push(json!({ "requester": requester, "patient": patient, "until": until }));
            }
        }
    }
    let governance = state.policy.governance();
    json!({
        "governance_key": state.participants.governance(),
        "governance_policies": {
            "version": governance.version(),
            "text_sha256": sha256(governance.text().as_bytes()),
            "policy_ids": governance.policy_ids(),
        },
        "orgs": orgs,
        "memberships": memberships,
        "records": records,
        "records_by_patient": records_by_patient,
        "grants": grants,
        "grants_total": consents.len(),
        "grants_unrevoked": consents.unrevoked_len(),
        "unrevoked_grants_by_patient": unrevoked_by_patient,
        "delegates": delegates,
        "trust_list": trust,
        "status_lists": lists,
        "licences": licences,
        "identities": identities,
        "break_glass_windows": windows,
    })
}

/// The dump as the fixture stores it: canonical JSON.
pub fn dump_text(state: &LedgerState, universe: &Universe, at: i64) -> String {
    String::from_utf8(canonical(&dump(state, universe, at))).expect("JSON is UTF-8")
}
