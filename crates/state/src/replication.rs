//! Which node is an organization's, and which nodes hold a copy of which
//! record. Types: `network.node` and `record.replicate`.
//!
//! Each organization's node holds the records of its own patients: the
//! node whose key signed a `record` is its holder ([`RecordEntry::node`]).
//! `network.node`, signed by the governance key, binds an organization to
//! its node's key (a custodian), so every node replaying the log knows
//! which node serves which organization's members.
//!
//! `record.replicate` is the hash-only trace of one transfer: the holder
//! sent a record's ciphertext and its data key, re-wrapped for the
//! receiving node, because an active grant of the record's patient covers
//! that record for the receiving node's organization or one of its active
//! members. It names the record's commitment, the two node keys and the
//! SHA-256 of the bytes sent; no PHI. It is signed by the sending node,
//! and its rule is the entitlement check the sending node applies before it
//! sends anything (docs/network.md, "Replication to entitled nodes").

use hygeia_ledger::{ErrorCode, TxError};
use hygeia_policy::{Action, Grant};
use imbl::{OrdMap, OrdSet};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::records::RecordEntry;
use super::registry::{example_did, Cx, Registry, SignedAs, TxBody};
use super::txs::MemberStatus;
use super::txs::{check_did, check_did_key, check_hex32};
use super::{Effect, LedgerState};

pub const NETWORK_NODE: &str = "network.node";
pub const RECORD_REPLICATE: &str = "record.replicate";

/// `network.node`, signed by the governance key: `node` (a key of the
/// custodian set) is the node of organization `org` (registered with
/// `org.register`). Binding an organization again replaces its node (a
/// node key rotated); a node serves one organization.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkNode {
    /// The organization's DID.
    pub org: String,
    /// Its node's key (did:key).
    pub node: String,
}

/// `record.replicate`, signed by the sending node (`from`): the record's
/// ciphertext and its data key, re-wrapped for `to`'s custodial key, were
/// sent to `to`. Hash-only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordReplicate {
    /// The record's commitment.
    pub record: String,
    /// The sending node: the record's holder.
    pub from: String,
    /// The receiving node: the node of an entitled organization.
    pub to: String,
    /// SHA-256 (hex) of the transfer's bytes (the response body).
    pub sha256: String,
    /// Decision time, Unix seconds: the grant must be active then.
    pub time: i64,
}

/// Organizations' nodes and the copies they were sent. Persistent maps:
/// a clone is O(1). Serialized in key order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replication {
    /// organization → its node's key.
    node_of_org: OrdMap<String, String>,
    /// node key → its organization.
    org_of_node: OrdMap<String, String>,
    /// record commitment → the nodes it was replicated to.
    replicas: OrdMap<String, OrdSet<String>>,
}

impl Replication {
    pub fn is_empty(&self) -> bool {
        self.node_of_org.is_empty() && self.replicas.is_empty()
    }

    /// The node key bound to `org`.
    pub fn node_of(&self, org: &str) -> Option<&str> {
        self.node_of_org.get(org).map(String::as_str)
    }

    /// The organization `node` serves.
    pub fn org_of(&self, node: &str) -> Option<&str> {
        self.org_of_node.get(node).map(String::as_str)
    }

    /// Every (organization, node) binding, by organization.
    pub fn bindings(&self) -> impl Iterator<Item = (&str, &str)> {
        self.node_of_org
            .iter()
            .map(|(org, node)| (org.as_str(), node.as_str()))
    }

    /// The nodes `record` was replicated to.
    pub fn replicas_of(&self, record: &str) -> impl Iterator<Item = &str> {
        self.replicas
            .get(record)
            .into_iter()
            .flatten()
            .map(String::as_str)
    }
}

/// Registers the types of this domain.
pub(crate) fn register(r: &mut Registry) {
    r.add::<NetworkNode>();
    r.add::<RecordReplicate>();
}

impl TxBody for NetworkNode {
    const TYPE: &'static str = NETWORK_NODE;

    fn example() -> Self {
        NetworkNode {
            org: "did:web:hospital.example".into(),
            node: example_did(2),
        }
    }

    fn check(&self) -> Result<(), String> {
        check_did("org", &self.org)?;
        check_did_key("node", &self.node)
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        if !state.participants.is_governance(&cx.signer) {
            return Err(TxError::new(
                ErrorCode::Forbidden("network.not_governance"),
                "only the network's governance key binds an organization to its node",
            ));
        }
        if state.participants.org(&self.org).is_none() {
            return Err(TxError::new(
                ErrorCode::NotFound("org.unknown"),
                format!("organization {} is not registered", self.org),
            ));
        }
        if !state.network.is_custodian(&self.node) {
            return Err(TxError::new(
                ErrorCode::Invalid("network.node_not_custodian"),
                format!("{} is not a key of the custodian set", self.node),
            ));
        }
        let replication = &mut state.replication;
        if let Some(other) = replication.org_of(&self.node) {
            if other != self.org {
                return Err(TxError::new(
                    ErrorCode::Conflict("network.node_bound"),
                    format!("{} is already the node of {other}", self.node),
                ));
            }
        }
        if let Some(old) = replication
            .node_of_org
            .insert(self.org.clone(), self.node.clone())
        {
            replication.org_of_node.remove(&old);
        }
        replication.org_of_node.insert(self.node, self.org);
        Ok(Effect::None)
    }
}

impl TxBody for RecordReplicate {
    const TYPE: &'static str = RECORD_REPLICATE;
    /// Signed by the sending node's key, as `record` is.
    const SIGNED_AS: SignedAs = SignedAs::Key;

    fn example() -> Self {
        RecordReplicate {
            record: "ab".repeat(32),
            from: example_did(2),
            to: example_did(3),
            sha256: "cd".repeat(32),
            time: 1_800_000_000,
        }
    }

    fn check(&self) -> Result<(), String> {
        check_hex32("record", &self.record)?;
        check_did_key("from", &self.from)?;
        check_did_key("to", &self.to)?;
        check_hex32("sha256", &self.sha256)
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        state.require_custodian(cx.index, cx.key, &cx.signer, RECORD_REPLICATE)?;
        if cx.key != self.from {
            return Err(TxError::new(
                ErrorCode::Forbidden("replicate.not_sender"),
                "record.replicate is signed by the sending node (from)",
            ));
        }
        if self.from == self.to {
            return Err(TxError::new(
                ErrorCode::Invalid("replicate.to_self"),
                "a node does not send a record to itself",
            ));
        }
        // The sender names the decision time; it may not predate the
        // ledger's clock, or a node could log a transfer under a grant
        // that had expired by the time it was sent.
        if self.time < state.escrows.clock {
            return Err(TxError::new(
                ErrorCode::Invalid("replicate.time_before_clock"),
                format!(
                    "the decision time {} is before the ledger's clock ({})",
                    self.time, state.escrows.clock
                ),
            ));
        }
        entitled(state, &self.record, &self.from, &self.to, self.time)?;
        let replicas = state.replication.replicas.entry(self.record).or_default();
        replicas.insert(self.to);
        Ok(Effect::None)
    }
}

/// Whether node `from` may send record `record` to node `to` at `time`:
/// `from` holds it, it is not erased, `to` is the node of an organization,
/// and an active, unrevoked grant of the record's patient covers the
/// record for reading by that organization or one of its active members.
/// The sending node asks this of its own state before it sends anything,
/// and the `record.replicate` rule asks it again.
pub fn entitled(
    state: &LedgerState,
    record: &str,
    from: &str,
    to: &str,
    time: i64,
) -> Result<(), TxError> {
    let entry = state.records.get(record).ok_or_else(|| {
        TxError::new(
            ErrorCode::NotFound("record.unknown"),
            format!("no record {record} on the ledger"),
        )
    })?;
    if entry.erased_at.is_some() {
        return Err(TxError::new(
            ErrorCode::Conflict("record.already_erased"),
            format!("record {record} is erased"),
        ));
    }
    if entry.node.as_deref() != Some(from) {
        return Err(TxError::new(
            ErrorCode::Forbidden("replicate.not_holder"),
            format!("{from} is not the node that holds record {record}"),
        ));
    }
    let org = state.replication.org_of(to).ok_or_else(|| {
        TxError::new(
            ErrorCode::NotFound("replicate.node_unbound"),
            format!("{to} is not the node of any organization"),
        )
    })?;
    let covered = state
        .policy
        .consents()
        .grants_of(&entry.patient)
        .any(|grant| grant_reaches(state, grant, entry, org, time));
    if covered {
        Ok(())
    } else {
        Err(TxError::new(
            ErrorCode::Forbidden("replicate.not_entitled"),
            format!("no active grant covers record {record} for {org}"),
        ))
    }
}

/// Whether `grant` (unrevoked) lets organization `org`, or an active member
/// of it, read `record` at `time`.
fn grant_reaches(
    state: &LedgerState,
    grant: &Grant,
    record: &RecordEntry,
    org: &str,
    time: i64,
) -> bool {
    let scope = &grant.scope;
    let covers = grant.patient == record.patient
        && (scope.categories.is_empty() || scope.categories.contains(&record.category))
        && (scope.resource_types.is_empty()
            || scope.resource_types.contains(&record.resource_type))
        && (scope.record_ids.is_empty() || scope.record_ids.contains(&record.commitment));
    let reaches = grant.grantee == org
        || state
            .participants
            .memberships(&grant.grantee)
            .iter()
            .any(|m| m.org == org && m.status == MemberStatus::Active);
    covers && reaches && grant.actions.contains(&Action::Read) && grant.is_active_at(time)
}
