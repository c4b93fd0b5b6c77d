//! Views derived from the log for the web apps: a directory of
//! organizations and their members, consent grants by grantee, records by
//! patient, entries by type, and the dashboards' figures. A view follows
//! the committed log (entry bundles read from a store snapshot) and is
//! never on the sequencer's path: it reads what is already durable, catching
//! up when asked. Everything here is computed from public log entries, so
//! nothing it serves is more than the log already shows its readers.

pub mod kpis;

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// An organization, from its `org.register`.
#[derive(Clone, Debug, Serialize)]
pub struct OrgView {
    pub did: String,
    pub kind: String,
    pub index: u64,
}

/// A membership, from the latest `org.member` for (member, org).
#[derive(Clone, Debug, Serialize)]
pub struct MemberView {
    pub org: String,
    pub roles: Vec<String>,
    pub jurisdiction: Option<String>,
    pub status: String,
    pub index: u64,
}

/// A consent grant and what became of it.
#[derive(Clone, Debug, Serialize)]
pub struct GrantView {
    pub id: String,
    pub patient: String,
    pub grantee: String,
    pub scope: Value,
    pub actions: Vec<String>,
    pub purpose: String,
    pub not_before: i64,
    pub not_after: i64,
    pub jurisdictions: Vec<String>,
    pub index: u64,
    /// Leaf index of the `consent.revoke`, if revoked.
    pub revoked_at: Option<u64>,
}

/// A record's ledger metadata (never its content).
#[derive(Clone, Debug, Serialize)]
pub struct RecordView {
    pub commitment: String,
    pub patient: String,
    pub author: String,
    pub category: String,
    pub resource_type: String,
    pub index: u64,
    pub erased_at: Option<u64>,
    /// Decision time of the upload's `access` event (Unix seconds).
    pub uploaded_at: Option<i64>,
}

/// One decision, as the dashboards need it (not kept: folded into
/// [`kpis::Tally`] as it is read).
#[derive(Clone, Debug)]
pub struct AccessView {
    pub requester: String,
    pub patient: String,
    pub action: String,
    pub records: Vec<String>,
    pub permit: bool,
    pub break_glass: bool,
    pub justified: bool,
    pub grants: Vec<String>,
    pub time: i64,
}

/// How many recent uploads a `record` entry is matched against. An upload
/// submits its access event and its record together; FHIR Bundles submit
/// up to 1,000 pairs in one go.
const RECENT_WRITES: usize = 2048;

/// Everything the apps derive from the log, up to `size` entries. Its
/// memory grows with organizations, members, grants and records (not with
/// access events, which are counted as they are read).
#[derive(Default, Debug)]
pub struct LedgerView {
    pub size: u64,
    /// Leaf indexes of the entries of each transaction type, in log order.
    pub by_type: BTreeMap<String, Vec<u64>>,
    pub orgs: BTreeMap<String, OrgView>,
    /// Memberships by member DID.
    pub members: BTreeMap<String, Vec<MemberView>>,
    /// Identities that registered a licence, with the entry's index.
    pub licence_holders: BTreeMap<String, u64>,
    pub grants: BTreeMap<String, GrantView>,
    pub records: BTreeMap<String, RecordView>,
    /// The dashboards' running counts.
    pub tally: kpis::Tally,
    /// The last few permitted uploads (record, decision time): a `record`
    /// entry follows its upload's `access` event closely.
    recent_writes: VecDeque<(String, i64)>,
    /// identity.rotate: new key → identity, so a rotated-in signer counts
    /// as the identity it acts for.
    rotated: BTreeMap<String, String>,
}

fn text(value: &Value, key: &str) -> String {
    value[key].as_str().unwrap_or_default().to_owned()
}

fn texts(value: &Value, key: &str) -> Vec<String> {
    value[key]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

impl LedgerView {
    /// The identity a signing key acts for (itself unless rotated in).
    fn identity(&self, signer: &str) -> String {
        self.rotated
            .get(signer)
            .cloned()
            .unwrap_or_else(|| signer.to_owned())
    }

    /// Adds the log entry at `index` (the next one). Entries in the log were
    /// all accepted by the state, so each is taken as it says; an entry that
    /// does not parse is counted under its type (or `?`) and otherwise
    /// skipped.
    pub fn apply(&mut self, index: u64, entry: &[u8]) {
        debug_assert_eq!(index, self.size);
        self.size = index + 1;
        let tx: Value = serde_json::from_slice(entry).unwrap_or(Value::Null);
        let tx_type = tx["type"].as_str().unwrap_or("?").to_owned();
        self.by_type.entry(tx_type.clone()).or_default().push(index);
        let body = &tx["body"];
        let signer = self.identity(tx["signer"].as_str().unwrap_or_default());
        match tx_type.as_str() {
            "org.register" => {
                let did = text(body, "org");
                self.orgs.insert(
                    did.clone(),
                    OrgView {
                        did,
                        kind: text(body, "kind"),
                        index,
                    },
                );
            }
            "org.member" => {
                let member = text(body, "member");
                let org = text(body, "org");
                let list = self.members.entry(member.clone()).or_default();
                list.retain(|m| m.org != org);
                let status = text(body, "status");
                if status != "removed" {
                    list.push(MemberView {
                        org,
                        roles: texts(body, "roles"),
                        jurisdiction: body["jurisdiction"].as_str().map(str::to_owned),
                        status,
                        index,
                    });
                }
                if list.is_empty() {
                    self.members.remove(&member);
                }
            }
            "licence.register" => {
                self.licence_holders.insert(signer, index);
            }
            "consent.grant" => {
                let id = hex::encode(
                    Sha256::new()
                        .chain_update([0u8])
                        .chain_update(entry)
                        .finalize(),
                );
                self.grants.insert(
                    id.clone(),
                    GrantView {
                        id,
                        patient: text(body, "patient"),
                        grantee: text(body, "grantee"),
                        scope: body["scope"].clone(),
                        actions: texts(body, "actions"),
                        purpose: text(body, "purpose"),
                        not_before: body["not_before"].as_i64().unwrap_or_default(),
                        not_after: body["not_after"].as_i64().unwrap_or_default(),
                        jurisdictions: texts(body, "jurisdictions"),
                        index,
                        revoked_at: None,
                    },
                );
            }
            "consent.revoke" => {
                if let Some(grant) = self
                    .grants
                    .get_mut(body["grant"].as_str().unwrap_or_default())
                {
                    grant.revoked_at = Some(index);
                }
            }
            "record" => {
                let commitment = text(body, "commitment");
                // The upload's access event comes just before its record.
                let uploaded_at = self
                    .recent_writes
                    .iter()
                    .rev()
                    .find(|(c, _)| *c == commitment)
                    .map(|(_, t)| *t);
                self.records.insert(
                    commitment.clone(),
                    RecordView {
                        commitment,
                        patient: text(body, "patient"),
                        author: text(body, "author"),
                        category: text(body, "category"),
                        resource_type: text(body, "resource_type"),
                        index,
                        erased_at: None,
                        uploaded_at,
                    },
                );
            }
            "record.erase" => {
                if let Some(record) = self
                    .records
                    .get_mut(body["record"].as_str().unwrap_or_default())
                {
                    record.erased_at = Some(index);
                }
            }
            "access" => {
                let access = AccessView {
                    requester: text(body, "requester"),
                    patient: text(body, "patient"),
                    action: text(body, "action"),
                    records: texts(body, "records"),
                    permit: body["decision"] == "permit",
                    break_glass: body["break_glass"].as_bool().unwrap_or(false),
                    justified: body["justified"].as_bool().unwrap_or(false),
                    grants: texts(body, "grants"),
                    time: body["time"].as_i64().unwrap_or_default(),
                };
                if access.action == "write" && access.permit {
                    for record in &access.records {
                        self.recent_writes.push_back((record.clone(), access.time));
                    }
                    while self.recent_writes.len() > RECENT_WRITES {
                        self.recent_writes.pop_front();
                    }
                }
                self.tally.access(&access, &self.records);
            }
            "identity.rotate" => {
                let subject = text(body, "subject");
                let identity = self.identity(&subject);
                self.rotated.insert(text(body, "new_key"), identity);
            }
            _ => {}
        }
    }

    /// The organizations `did` is an active member of.
    pub fn active_orgs(&self, did: &str) -> Vec<String> {
        self.members
            .get(did)
            .map(|list| {
                list.iter()
                    .filter(|m| m.status == "active")
                    .map(|m| m.org.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Grants naming `did`, or an organization it is an active member of.
    pub fn grants_to(&self, did: &str) -> Vec<&GrantView> {
        let orgs = self.active_orgs(did);
        self.grants
            .values()
            .filter(|g| g.grantee == did || orgs.contains(&g.grantee))
            .collect()
    }

    pub fn records_of<'a>(&'a self, patient: &'a str) -> impl Iterator<Item = &'a RecordView> + 'a {
        self.records.values().filter(move |r| r.patient == patient)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub fn entry(tx_type: &str, signer: &str, body: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({"type": tx_type, "signer": signer, "body": body, "v": 1}))
            .unwrap()
    }

    pub fn access(requester: &str, patient: &str, decision: &str, time: i64) -> Value {
        json!({"requester": requester, "patient": patient, "action": "read", "purpose": "TREAT",
               "records": ["r1"], "decision": decision, "break_glass": false, "justified": false,
               "reasons": [], "grants": [], "governance_version": 0, "time": time})
    }

    pub fn view(entries: &[Vec<u8>]) -> LedgerView {
        let mut view = LedgerView::default();
        for (i, e) in entries.iter().enumerate() {
            view.apply(i as u64, e);
        }
        view
    }

    #[test]
    fn follows_memberships_grants_and_records() {
        let entries = vec![
            entry(
                "org.register",
                "gov",
                json!({"org": "did:web:c", "admin": "a", "kind": "clinic"}),
            ),
            entry(
                "org.member",
                "a",
                json!({"org": "did:web:c", "member": "doc", "roles": ["clinician"], "jurisdiction": "FR", "status": "active"}),
            ),
            entry(
                "consent.grant",
                "pat",
                json!({"patient": "pat", "grantee": "did:web:c", "scope": {"categories": ["lab"]}, "actions": ["read"], "purpose": "TREAT", "not_before": 0, "not_after": 10}),
            ),
            entry("attest", "x", json!({})),
            b"not json".to_vec(),
        ];
        let mut view = view(&entries);
        assert_eq!(view.size, 5);
        assert_eq!(view.by_type["attest"], vec![3]);
        assert_eq!(view.by_type["?"], vec![4]);
        assert_eq!(view.active_orgs("doc"), vec!["did:web:c".to_string()]);
        let grants = view.grants_to("doc");
        assert_eq!(grants.len(), 1);
        let id = grants[0].id.clone();
        assert_eq!(
            id,
            hex::encode(Sha256::digest([&[0u8][..], &entries[2]].concat()))
        );
        view.apply(5, &entry("consent.revoke", "pat", json!({"grant": id})));
        assert_eq!(view.grants[&id].revoked_at, Some(5));
        // A removed member no longer sees the organization's grants.
        view.apply(
            6,
            &entry(
                "org.member",
                "a",
                json!({"org": "did:web:c", "member": "doc", "roles": [], "status": "removed"}),
            ),
        );
        assert!(view.grants_to("doc").is_empty());
        assert!(view.members.is_empty());
    }

    #[test]
    fn a_record_takes_its_upload_time_and_erasure() {
        let mut upload = access("pat", "pat", "permit", 1000);
        upload["action"] = json!("write");
        upload["records"] = json!(["c1"]);
        let mut view = view(&[
            entry("access", "node", upload),
            entry(
                "record",
                "node",
                json!({"commitment": "c1", "patient": "pat", "author": "pat", "category": "lab", "resource_type": "Observation"}),
            ),
            entry("record.erase", "pat", json!({"record": "c1"})),
        ]);
        let record = &view.records["c1"];
        assert_eq!(record.uploaded_at, Some(1000));
        assert_eq!(record.erased_at, Some(2));
        assert_eq!(view.records_of("pat").count(), 1);
        assert_eq!(view.records_of("other").count(), 0);
        view.apply(
            3,
            &entry(
                "identity.rotate",
                "recovery",
                json!({"subject": "pat", "new_key": "k2"}),
            ),
        );
        view.apply(4, &entry("licence.register", "k2", json!({})));
        assert!(view.licence_holders.contains_key("pat"));
    }
}
