//! Verifiably sourced datasets: a researcher publishes the manifest of a
//! dataset assembled from consented records, and anyone can check it
//! against the ledger (docs/datasets.md). Type: `dataset.publish`.
//!
//! The manifest lists its members as (record commitment, grant id) pairs,
//! sorted by commitment, at most [`MAX_DATASET_MEMBERS`] of them, with the
//! RFC 9162 Merkle root over them ([`members_root`]), their count and the
//! SHA-256 of the pseudonymisation method. The members travel in the body
//! because admission must check each one: the record exists and is not
//! erased, and the grant is an unrevoked, active `HRESCH` grant with
//! `read` to the researcher (or an organization they are an active member
//! of) whose scope covers the record. Nothing else reaches the ledger: no
//! patient DID, no value, no name.
//!
//! A dataset's status is recomputed from the state ([`Datasets::status`]):
//! a member whose record was erased, or whose grant was revoked or is no
//! longer active by the ledger's clock, is flagged.
//!
//! Time is the ledger's clock ([`crate::escrow`]): the latest
//! custodian-attested time.

use std::sync::Arc;

use imbl::{HashMap, HashSet};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use hygeia_ledger::merkle::{leaf_hash, RootBuilder};
use hygeia_ledger::{ErrorCode, TxError};
use hygeia_policy::{Action, Grant, PurposeOfUse};

use super::records::RecordEntry;
use super::registry::{Cx, Registry, TxBody};
use super::txs::{check_hex32, MemberStatus};
use super::{Effect, LedgerState};

pub const DATASET_PUBLISH: &str = "dataset.publish";

/// Most members one manifest lists: 256 pairs of two 64-digit ids keep a
/// body near 38 KiB, under the 64 KiB a transaction may take. A larger
/// dataset is published as several manifests.
pub const MAX_DATASET_MEMBERS: usize = 256;

/// Registers the types of this domain.
pub(crate) fn register(r: &mut Registry) {
    r.add::<DatasetPublish>();
}

/// One member of a dataset: a record's commitment and the grant that
/// covers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DatasetMember {
    /// The record's commitment (64 lowercase hex digits).
    pub record: String,
    /// The id of the `HRESCH` grant covering it (64 lowercase hex digits).
    pub grant: String,
}

/// `dataset.publish`, signed by the researcher: the manifest of a dataset
/// of consented records (commitments, grant ids, a root, a count and a
/// hash; never PHI). Its id is the transaction's leaf hash (hex).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DatasetPublish {
    /// RFC 9162 Merkle root (hex) over the members in order, each leaf the
    /// 32 bytes of the record commitment then the 32 bytes of the grant id.
    pub root: String,
    /// How many members (1 to 256); equals the length of `members`.
    pub count: u32,
    /// SHA-256 (hex) of the pseudonymisation method's document.
    pub pseudonymisation: String,
    /// The members, sorted by record commitment, each record once.
    pub members: Vec<DatasetMember>,
}

/// The RFC 9162 Merkle root (hex) over `members`: leaf `i` is
/// `SHA-256(0x00 ‖ record ‖ grant)` with both ids as their 32 bytes.
/// `None` if an id is not 64 hex digits.
pub fn members_root(members: &[DatasetMember]) -> Option<String> {
    let mut builder = RootBuilder::new();
    for member in members {
        let mut leaf = [0u8; 64];
        hex::decode_to_slice(&member.record, &mut leaf[..32]).ok()?;
        hex::decode_to_slice(&member.grant, &mut leaf[32..]).ok()?;
        builder.push(leaf_hash(&leaf));
    }
    Some(hex::encode(builder.root().0))
}

/// A published manifest.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Dataset {
    /// The identity that signed it.
    pub researcher: String,
    pub root: String,
    pub count: u32,
    pub pseudonymisation: String,
    /// Shared: a copy of the state does not copy the list.
    pub members: Arc<Vec<DatasetMember>>,
    /// Leaf index of its `dataset.publish`.
    pub published_at: u64,
    /// The ledger's clock when it was admitted.
    pub clock: i64,
}

/// Why a member is flagged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// The record was erased since publication.
    RecordErased,
    /// The grant was revoked.
    GrantRevoked,
    /// The grant is not active by the ledger's clock (expired).
    GrantExpired,
}

/// A flagged member, by its position in the manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flagged {
    pub index: usize,
    pub record: String,
    pub grant: String,
    pub reasons: Vec<Flag>,
}

/// Manifests by id, and the roots already published. Persistent maps.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Datasets {
    #[serde(with = "crate::snapshot::sorted_map")]
    datasets: HashMap<String, Dataset>,
    #[serde(with = "crate::snapshot::sorted_set")]
    roots: HashSet<String>,
}

impl Datasets {
    pub fn get(&self, id: &str) -> Option<&Dataset> {
        self.datasets.get(id)
    }

    pub fn len(&self) -> usize {
        self.datasets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.datasets.is_empty()
    }

    /// The members of dataset `id` flagged now: record erased, grant
    /// revoked or no longer active by the ledger's clock. Empty means the
    /// manifest is `valid`. `None` for an unknown dataset.
    pub fn status(&self, state: &LedgerState, id: &str) -> Option<Vec<Flagged>> {
        let dataset = self.datasets.get(id)?;
        let consents = state.policy.consents();
        let clock = state.escrows.clock;
        let mut flagged = Vec::new();
        for (index, member) in dataset.members.iter().enumerate() {
            let mut reasons = Vec::new();
            if state
                .records
                .get(&member.record)
                .is_none_or(|r| r.erased_at.is_some())
            {
                reasons.push(Flag::RecordErased);
            }
            if consents.is_revoked(&member.grant) {
                reasons.push(Flag::GrantRevoked);
            } else if consents
                .get(&member.grant)
                .is_none_or(|g| !g.is_active_at(clock))
            {
                reasons.push(Flag::GrantExpired);
            }
            if !reasons.is_empty() {
                flagged.push(Flagged {
                    index,
                    record: member.record.clone(),
                    grant: member.grant.clone(),
                    reasons,
                });
            }
        }
        Some(flagged)
    }
}

/// Whether a grant's scope covers a record of its patient (each non-empty
/// set must match).
fn covers(grant: &Grant, record: &RecordEntry) -> bool {
    let scope = &grant.scope;
    record.patient == grant.patient
        && (scope.categories.is_empty() || scope.categories.contains(&record.category))
        && (scope.resource_types.is_empty() || scope.resource_types.contains(&record.resource_type))
        && (scope.record_ids.is_empty() || scope.record_ids.contains(&record.commitment))
}

/// Whether `researcher` is the grantee or an active member of it.
fn is_grantee(state: &LedgerState, researcher: &str, grantee: &str) -> bool {
    researcher == grantee
        || state
            .participants
            .memberships(researcher)
            .iter()
            .any(|m| m.org == grantee && m.status == MemberStatus::Active)
}

fn refuse(code: ErrorCode, index: usize, why: &str) -> TxError {
    TxError::new(code, format!("members[{index}]: {why}"))
}

/// Checks one member, grant first: a signer learns nothing about a record
/// unless a grant to them names its patient.
fn check_member(
    state: &LedgerState,
    researcher: &str,
    index: usize,
    member: &DatasetMember,
) -> Result<(), TxError> {
    let consents = state.policy.consents();
    let grant = consents.get(&member.grant).ok_or_else(|| {
        refuse(
            ErrorCode::NotFound("dataset.unknown_grant"),
            index,
            "no such grant",
        )
    })?;
    if !is_grantee(state, researcher, &grant.grantee) {
        return Err(refuse(
            ErrorCode::Forbidden("dataset.not_grantee"),
            index,
            "the grant is not to the signer or an organization they are an active member of",
        ));
    }
    if consents.is_revoked(&member.grant) {
        return Err(refuse(
            ErrorCode::Forbidden("dataset.grant_revoked"),
            index,
            "the grant is revoked",
        ));
    }
    if grant.purpose != PurposeOfUse::Research || !grant.actions.contains(&Action::Read) {
        return Err(refuse(
            ErrorCode::Forbidden("dataset.not_research"),
            index,
            "the grant is not for reading with purpose HRESCH",
        ));
    }
    if !grant.is_active_at(state.escrows.clock) {
        return Err(refuse(
            ErrorCode::Forbidden("dataset.grant_inactive"),
            index,
            "the grant is not active by the ledger's clock",
        ));
    }
    let record = state
        .records
        .get(&member.record)
        .filter(|record| covers(grant, record))
        .ok_or_else(|| {
            refuse(
                ErrorCode::Forbidden("dataset.not_covered"),
                index,
                "the grant covers no record with this commitment",
            )
        })?;
    if record.erased_at.is_some() {
        return Err(refuse(
            ErrorCode::Conflict("dataset.record_erased"),
            index,
            "the record is erased",
        ));
    }
    Ok(())
}

impl TxBody for DatasetPublish {
    const TYPE: &'static str = DATASET_PUBLISH;

    fn example() -> Self {
        let members = vec![DatasetMember {
            record: "ab".repeat(32),
            grant: "cd".repeat(32),
        }];
        DatasetPublish {
            root: members_root(&members).unwrap_or_default(),
            count: 1,
            pseudonymisation: "ef".repeat(32),
            members,
        }
    }

    fn check(&self) -> Result<(), String> {
        check_hex32("root", &self.root)?;
        check_hex32("pseudonymisation", &self.pseudonymisation)?;
        if self.members.is_empty() || self.members.len() > MAX_DATASET_MEMBERS {
            return Err(format!("members: 1 to {MAX_DATASET_MEMBERS}"));
        }
        if usize::try_from(self.count).ok() != Some(self.members.len()) {
            return Err("count must equal the number of members".into());
        }
        for member in &self.members {
            check_hex32("members[].record", &member.record)?;
            check_hex32("members[].grant", &member.grant)?;
        }
        if !self.members.windows(2).all(|w| w[0].record < w[1].record) {
            return Err("members must be sorted by record, each record once".into());
        }
        if members_root(&self.members).as_deref() != Some(self.root.as_str()) {
            return Err("root is not the Merkle root of the members".into());
        }
        Ok(())
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        for (index, member) in self.members.iter().enumerate() {
            check_member(state, &cx.signer, index, member)?;
        }
        if state.datasets.roots.contains(&self.root) {
            return Err(TxError::new(
                ErrorCode::Conflict("dataset.duplicate"),
                "a manifest with this root is already published",
            ));
        }
        let id = hex::encode(cx.tx.leaf_hash().0);
        state.datasets.roots.insert(self.root.clone());
        state.datasets.datasets.insert(
            id,
            Dataset {
                researcher: cx.signer.clone(),
                root: self.root,
                count: self.count,
                pseudonymisation: self.pseudonymisation,
                members: Arc::new(self.members),
                published_at: cx.index,
                clock: state.escrows.clock,
            },
        );
        Ok(Effect::None)
    }
}

#[cfg(test)]
mod tests;
