//! The replicated state machine: the state a node, the verifier and the
//! fuzz targets get by replaying the log (invariant 2). It knows nothing of
//! HTTP, the vault or the async runtime, so everything that replays the log
//! links it alone. The node re-exports it as `hygeia_node::state`.
//!
//! [`LedgerState::apply`] is the one place where a transaction changes the
//! state; it refuses, with a stable code and no change, anything the state
//! does not allow. The sequencer admits each submission through it before
//! the batch is written ([`writer::StateWriter`]), and the node replays the
//! whole log through it at start-up, so both paths give the same state.

pub mod accounts;
pub mod consent;
pub mod credentials;
pub mod datasets;
pub mod devices;
pub mod escrow;
pub mod identities;
pub mod layered;
pub mod network;
pub mod participants;
pub mod programs;
pub mod records;
pub mod registry;
pub mod replication;
pub mod sharing;
pub mod snapshot;
#[cfg(feature = "testing")]
pub mod testing;
pub mod trials;
pub mod txs;
pub mod writer;

use hygeia_ledger::{ErrorCode, SignedTx, TxError};
use hygeia_policy::PolicyEngine;
use imbl::HashMap;

use credentials::Credentials;
use identities::Identities;
use network::{Network, Rules};
use participants::Participants;
use records::Records;
use registry::Registry;

/// How long a break-glass access stays open: within it, the clinician's
/// further emergency reads of the same patient need no new justification
/// (each is still audited and flagged).
pub const BREAK_GLASS_WINDOW_SECS: i64 = 3600;

/// What applying a transaction did that the node must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    None,
    /// A record was erased: destroy its keys.
    Erased {
        commitment: String,
    },
    /// An access decision about this patient was logged.
    Accessed {
        patient: String,
        break_glass: bool,
    },
}

/// Cloning it is O(1) whatever its size: every collection in it is a
/// persistent map or shares its contents through an `Arc` (see
/// [`writer`]), which the sequencer's writer relies on.
///
/// Every field is part of a snapshot ([`snapshot`]): a field whose type
/// cannot be serialized does not compile, and every hash map or set is
/// written in key order (`snapshot::sorted_map`, `snapshot::sorted_set`)
/// so that one state has one encoding and one digest.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct LedgerState {
    /// The genesis entry and the custodian set: who signs `record` and
    /// `access`, and the audience of licences. Never "this node".
    pub network: Network,
    pub participants: Participants,
    pub records: Records,
    pub policy: PolicyEngine,
    pub credentials: Credentials,
    pub identities: Identities,
    /// Attested devices, their batches' days, adherence rules and results.
    #[serde(default)]
    pub devices: devices::Devices,
    /// Units and balances.
    #[serde(default)]
    pub accounts: accounts::Accounts,
    /// Escrows and the ledger's clock.
    #[serde(default)]
    pub escrows: escrow::Escrows,
    /// Care programs and the claims they paid.
    #[serde(default)]
    pub programs: programs::Programs,
    /// Clinical trials: studies, sites, consents and subjects.
    #[serde(default)]
    pub trials: trials::Trials,
    /// Published dataset manifests.
    #[serde(default)]
    pub datasets: datasets::Datasets,
    #[serde(default)]
    pub sharing: sharing::Sharing,
    /// Organizations' nodes and the records replicated to them.
    #[serde(default, skip_serializing_if = "replication::Replication::is_empty")]
    pub replication: replication::Replication,
    /// (requester, patient) → end of the open break-glass window.
    #[serde(with = "snapshot::sorted_map")]
    break_glass: HashMap<(String, String), i64>,
}

impl LedgerState {
    /// A state that has applied nothing, not even a genesis: it refuses
    /// every entry but a genesis at leaf 0. Replay starts here.
    pub fn empty() -> Self {
        Self::founded(None, None)
    }

    /// The state a log gets from a genesis naming `node` as its only
    /// custodian and `governance` as its governance key, for tests and
    /// tools: its network id is `node` itself, so a licence's key binding
    /// addressed to `node` verifies. Nodes and verifiers start from
    /// [`LedgerState::empty`] and take their rules from the log.
    pub fn new(node: String, governance: Option<String>) -> Self {
        let genesis = network::Genesis {
            governance: governance.into_iter().collect(),
            custodians: vec![node.clone()],
            legacy: None,
        };
        let mut state = Self::founded(None, genesis.governance.first().cloned());
        state.network = Network::founded(node, &genesis);
        for key in genesis.custodians.iter().chain(&genesis.governance) {
            state.identities.note_known(key);
        }
        state
    }

    fn founded(network: Option<Network>, governance: Option<String>) -> Self {
        let registrars: Vec<String> = governance.iter().cloned().collect();
        LedgerState {
            network: network.unwrap_or_default(),
            participants: Participants::new(governance),
            records: Records::default(),
            policy: PolicyEngine::with_state(
                hygeia_policy::GovernancePolicies::default_policies(),
                hygeia_policy::ConsentState::with_registrars(registrars),
            ),
            break_glass: HashMap::new(),
            credentials: Credentials::default(),
            identities: Identities::default(),
            devices: devices::Devices::default(),
            accounts: Default::default(),
            escrows: Default::default(),
            programs: Default::default(),
            trials: Default::default(),
            datasets: Default::default(),
            sharing: Default::default(),
            replication: Default::default(),
        }
    }

    /// The requester as the policy engine sees it at `time`: roles from
    /// memberships, and a licence if one counts now.
    pub fn requester(&self, did: &str, time: i64) -> hygeia_policy::Requester {
        let mut requester = self.participants.requester(did);
        requester.licence = self.credentials.licence_at(did, time);
        requester
    }

    /// End of the break-glass window `requester` holds on `patient`, if one
    /// is open at `time`.
    pub fn break_glass_until(&self, requester: &str, patient: &str, time: i64) -> Option<i64> {
        self.break_glass
            .get(&(requester.to_owned(), patient.to_owned()))
            .copied()
            .filter(|until| time < *until)
    }

    /// Applies one transaction at leaf `index`, or refuses it and changes
    /// nothing. Body schemas were checked when the transaction was parsed.
    ///
    /// Every did:key an admitted transaction involves (its signer, the
    /// identity it acts for, every did:key its body names) is remembered as
    /// known, so that no rotation can make it another identity's key.
    /// `attest` entries change nothing: replay skips them unread
    /// ([`may_change_state`]), so they name no one either.
    pub fn apply(&mut self, index: u64, tx: &SignedTx) -> Result<Effect, TxError> {
        self.apply_with(Registry::global(), index, tx)
    }

    /// [`LedgerState::apply`] with the types and reactions of `registry`
    /// (tests add domains of their own).
    pub fn apply_with(
        &mut self,
        registry: &Registry,
        index: u64,
        tx: &SignedTx,
    ) -> Result<Effect, TxError> {
        if !self.network.has_genesis() || tx.tx_type() == network::GENESIS {
            return self.apply_genesis(index, tx);
        }
        if tx.tx_type() == txs::IDENTITY_ROTATE && self.network.rules_at(index) == Rules::V1 {
            return self.apply_rotate_v1(index, tx);
        }
        if tx.tx_type() == hygeia_ledger::attest::TX_TYPE {
            // Only a retired key's attestation is refused, as before.
            self.identities.identity_of(tx.signer().as_str())?;
            return Ok(Effect::None);
        }
        let effect = registry.apply(self, index, tx)?;
        self.identities.note_known(tx.signer().as_str());
        let identity = self.identities.identity_of(tx.signer().as_str());
        if let Ok(identity) = identity {
            self.identities.note_known(&identity);
        }
        note_body_dids(&mut self.identities, tx.body());
        Ok(effect)
    }

    /// `record` and `access` are signed by a key of the custodian set
    /// (under the legacy rules: by the old node, as the identity it acts
    /// for).
    pub(crate) fn require_custodian(
        &self,
        index: u64,
        key: &str,
        signer: &str,
        tx_type: &str,
    ) -> Result<(), TxError> {
        let allowed = match (self.network.rules_at(index), self.network.legacy()) {
            (Rules::V1, Some(legacy)) => signer == legacy.node,
            _ => self.network.is_custodian(key),
        };
        if allowed {
            Ok(())
        } else {
            Err(TxError::new(
                ErrorCode::Forbidden("custodian_only"),
                format!(
                    "{tx_type} transactions are signed by a key of the network's custodian set"
                ),
            ))
        }
    }

    /// Whom a licence's key binding is addressed to: the network (its id);
    /// under the legacy rules, the old node.
    pub(crate) fn licence_audience(&self, index: u64) -> &str {
        match (self.network.rules_at(index), self.network.legacy()) {
            (Rules::V1, Some(legacy)) => &legacy.node,
            _ => self.network.id().unwrap_or_default(),
        }
    }

    /// Leaf 0 must be a genesis, and no other leaf may be one.
    fn apply_genesis(&mut self, index: u64, tx: &SignedTx) -> Result<Effect, TxError> {
        if tx.tx_type() != network::GENESIS {
            return Err(network::no_genesis(index));
        }
        let genesis: network::Genesis = txs::parse_body(network::GENESIS, tx.body())
            .map_err(|e| TxError::new(ErrorCode::SchemaViolation, e))?;
        self.network
            .check_genesis(index, tx.signer().as_str(), &genesis)?;
        let governance = genesis.governance.first().cloned();
        let id = hex::encode(tx.leaf_hash().0);
        *self = Self::founded(Some(Network::founded(id, &genesis)), governance);
        self.identities.note_known(tx.signer().as_str());
        note_body_dids(&mut self.identities, tx.body());
        Ok(Effect::None)
    }

    /// `identity.rotate` in a migrated log's legacy prefix: the body has no
    /// proof, and the rules of before genesis apply
    /// ([`identities::Identities::rotate_v1`]).
    fn apply_rotate_v1(&mut self, index: u64, tx: &SignedTx) -> Result<Effect, TxError> {
        let body: txs::IdentityRotateV1 = txs::parse_body(txs::IDENTITY_ROTATE, tx.body())
            .map_err(|e| TxError::new(ErrorCode::SchemaViolation, e))?;
        self.identities
            .rotate_v1(tx.signer().as_str(), index, &body)?;
        self.identities.note_known(tx.signer().as_str());
        note_body_dids(&mut self.identities, tx.body());
        Ok(Effect::None)
    }
}

/// Remembers every did:key (or DID URL of one) a body names, at any depth.
/// Bodies are at most 64 KiB, so this walk is as cheap as their parsing.
fn note_body_dids(identities: &mut Identities, body: &serde_json::Value) {
    match body {
        serde_json::Value::String(text) if text.starts_with("did:key:") => {
            identities.note_known(text)
        }
        serde_json::Value::Array(items) => {
            for item in items {
                note_body_dids(identities, item);
            }
        }
        serde_json::Value::Object(members) => {
            for value in members.values() {
                note_body_dids(identities, value);
            }
        }
        _ => {}
    }
}

/// Whether a stored entry can change the state. `attest` entries cannot,
/// and at start-up they are skipped without parsing: the envelope's keys
/// are sorted (RFC 8785), so a top-level `"type":"attest"` is followed by
/// `"v"` and the end of the object, and quotes inside strings are escaped.
pub fn may_change_state(entry: &[u8]) -> bool {
    const ATTEST_TAIL: &[u8] = b",\"type\":\"attest\",\"v\":";
    let tail_start = entry.len().saturating_sub(ATTEST_TAIL.len() + 8);
    !entry[tail_start..]
        .windows(ATTEST_TAIL.len())
        .any(|w| w == ATTEST_TAIL)
}
