//! Who is who: organizations registered by the governance key, and their
//! members' roles, registered by each organization's admin key. Types:
//! `org.register`, `org.member`, `org.keys`.

use std::collections::BTreeSet;
use std::sync::Arc;

use imbl::HashMap;

use hygeia_ledger::{ErrorCode, TxError};
use hygeia_policy::Requester;
use serde::{Deserialize, Serialize};

use super::registry::{example_did, Cx, Registry, TxBody};
use super::txs::{
    check_country, check_did, check_did_key, MemberStatus, OrgKeys, OrgKind, OrgMember,
    OrgRegister, Role, MAX_ORG_KEYS, ORG_KEYS, ORG_MEMBER, ORG_REGISTER,
};
use super::{Effect, LedgerState};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Org {
    pub admin: String,
    /// Keys besides the admin key that sign credentials for it.
    pub assertion: Vec<String>,
    pub kind: OrgKind,
    /// Leaf index of the registration.
    pub registered_at: u64,
    /// Leaf indices of its `org.keys` rotations, oldest first.
    pub key_changes: Vec<u64>,
}

impl Org {
    /// Whether `key` speaks for the organization now.
    pub fn has_key(&self, key: &str) -> bool {
        self.admin == key || self.assertion.iter().any(|k| k == key)
    }

    /// The current keys, the admin key first.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.admin.as_str()).chain(self.assertion.iter().map(String::as_str))
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Membership {
    pub org: String,
    pub roles: BTreeSet<Role>,
    pub jurisdiction: Option<String>,
    pub status: MemberStatus,
}

/// Persistent maps (`imbl`): a clone is O(1) and shares every entry until
/// one side changes it (see `writer.rs`). A member's memberships sit behind
/// an `Arc`, so copying a node copies pointers.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Participants {
    governance: Option<String>,
    #[serde(with = "crate::snapshot::sorted_map")]
    orgs: HashMap<String, Org>,
    /// member → their memberships, one per organization.
    #[serde(with = "crate::snapshot::sorted_map")]
    members: HashMap<String, Arc<Vec<Membership>>>,
}

impl Participants {
    pub fn new(governance: Option<String>) -> Self {
        Participants {
            governance,
            ..Self::default()
        }
    }

    pub fn governance(&self) -> Option<&str> {
        self.governance.as_deref()
    }

    pub fn is_governance(&self, did: &str) -> bool {
        self.governance.as_deref() == Some(did)
    }

    pub fn org(&self, did: &str) -> Option<&Org> {
        self.orgs.get(did)
    }

    pub fn memberships(&self, did: &str) -> &[Membership] {
        self.members.get(did).map_or(&[], |m| m.as_slice())
    }

    pub fn register_org(
        &mut self,
        signer: &str,
        index: u64,
        body: &OrgRegister,
    ) -> Result<(), TxError> {
        if !self.is_governance(signer) {
            return Err(TxError::new(
                ErrorCode::Forbidden("org.not_governance"),
                "only the network's governance key registers organizations",
            ));
        }
        if self.orgs.contains_key(&body.org) {
            return Err(TxError::new(
                ErrorCode::Conflict("org.exists"),
                format!("organization {} is already registered", body.org),
            ));
        }
        self.orgs.insert(
            body.org.clone(),
            Org {
                admin: body.admin.clone(),
                assertion: Vec::new(),
                kind: body.kind,
                registered_at: index,
                key_changes: Vec::new(),
            },
        );
        Ok(())
    }

    /// `org.keys`: the admin key (or the governance key, when the admin
    /// key is lost) replaces the organization's keys.
    pub fn rotate_org_keys(
        &mut self,
        signer: &str,
        index: u64,
        body: &OrgKeys,
    ) -> Result<(), TxError> {
        let governance = self.is_governance(signer);
        let org = self.orgs.get_mut(&body.org).ok_or_else(|| {
            TxError::new(
                ErrorCode::NotFound("org.unknown"),
                format!("organization {} is not registered", body.org),
            )
        })?;
        if org.admin != signer && !governance {
            return Err(TxError::new(
                ErrorCode::Forbidden("org.not_admin"),
                format!(
                    "only the admin key of {} (or the governance key) rotates its keys",
                    body.org
                ),
            ));
        }
        org.admin = body.admin.clone();
        org.assertion = body.assertion.clone();
        org.key_changes.push(index);
        Ok(())
    }

    /// Registered organizations, sorted by DID.
    pub fn orgs(&self) -> Vec<(&str, &Org)> {
        let mut orgs: Vec<(&str, &Org)> = self.orgs.iter().map(|(k, v)| (k.as_str(), v)).collect();
        orgs.sort_by(|a, b| a.0.cmp(b.0));
        orgs
    }

    pub fn set_member(&mut self, signer: &str, body: &OrgMember) -> Result<(), TxError> {
        let org = self.orgs.get(&body.org).ok_or_else(|| {
            TxError::new(
                ErrorCode::NotFound("org.unknown"),
                format!("organization {} is not registered", body.org),
            )
        })?;
        if org.admin != signer {
            return Err(TxError::new(
                ErrorCode::Forbidden("org.not_admin"),
                format!("only the admin key of {} manages its members", body.org),
            ));
        }
        let memberships = Arc::make_mut(self.members.entry(body.member.clone()).or_default());
        memberships.retain(|m| m.org != body.org);
        if body.status != MemberStatus::Removed {
            memberships.push(Membership {
                org: body.org.clone(),
                roles: body.roles.clone(),
                jurisdiction: body.jurisdiction.clone(),
                status: body.status,
            });
            // In organization order, so which membership's jurisdiction
            // counts does not depend on the order of updates.
            memberships.sort_by(|a, b| a.org.cmp(&b.org));
        }
        if memberships.is_empty() {
            self.members.remove(&body.member);
        }
        Ok(())
    }

    /// The requester as the policy engine sees it: the roles of every
    /// membership, its organizations, suspended if any membership is.
    pub fn requester(&self, did: &str) -> Requester {
        let mut requester = Requester {
            did: did.to_owned(),
            ..Requester::default()
        };
        for membership in self.memberships(did) {
            requester.organizations.insert(membership.org.clone());
            requester
                .roles
                .extend(membership.roles.iter().map(|r| r.as_str().to_owned()));
            if membership.status == MemberStatus::Suspended {
                requester.suspended = true;
            }
            if requester.jurisdiction.is_none() {
                requester.jurisdiction = membership.jurisdiction.clone();
            }
        }
        requester
    }
}

/// Registers the types of this domain.
pub(crate) fn register(r: &mut Registry) {
    r.add::<OrgRegister>();
    r.add::<OrgMember>();
    r.add::<OrgKeys>();
}

impl TxBody for OrgRegister {
    const TYPE: &'static str = ORG_REGISTER;

    fn example() -> Self {
        OrgRegister {
            org: "did:web:clinic.example".into(),
            admin: example_did(1),
            kind: OrgKind::Clinic,
        }
    }

    fn check(&self) -> Result<(), String> {
        check_did("org", &self.org)?;
        check_did_key("admin", &self.admin)
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        state
            .participants
            .register_org(&cx.signer, cx.index, &self)?;
        Ok(Effect::None)
    }
}

impl TxBody for OrgMember {
    const TYPE: &'static str = ORG_MEMBER;

    fn example() -> Self {
        OrgMember {
            org: "did:web:clinic.example".into(),
            member: example_did(2),
            roles: [Role::Clinician].into(),
            jurisdiction: Some("FR".into()),
            status: MemberStatus::Active,
        }
    }

    fn check(&self) -> Result<(), String> {
        check_did("org", &self.org)?;
        check_did_key("member", &self.member)?;
        if let Some(country) = &self.jurisdiction {
            check_country("jurisdiction", country)?;
        }
        Ok(())
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        state.participants.set_member(&cx.signer, &self)?;
        Ok(Effect::None)
    }
}

impl TxBody for OrgKeys {
    const TYPE: &'static str = ORG_KEYS;

    fn example() -> Self {
        OrgKeys {
            org: "did:web:clinic.example".into(),
            admin: example_did(1),
            assertion: vec![example_did(3)],
        }
    }

    fn check(&self) -> Result<(), String> {
        check_did("org", &self.org)?;
        check_did_key("admin", &self.admin)?;
        if self.assertion.len() > MAX_ORG_KEYS {
            return Err(format!(
                "org.keys body: at most {MAX_ORG_KEYS} assertion keys"
            ));
        }
        for key in &self.assertion {
            check_did_key("assertion[]", key)?;
        }
        Ok(())
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        state
            .participants
            .rotate_org_keys(&cx.signer, cx.index, &self)?;
        Ok(Effect::None)
    }
}
