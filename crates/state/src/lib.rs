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

pub mod credentials;
pub mod identities;
pub mod network;
pub mod participants;
pub mod records;
pub mod txs;
pub mod writer;

use std::collections::HashMap;

use hygeia_ledger::{ErrorCode, SignedTx, TxError};
use hygeia_policy::{ConsentError, ConsentEvent, GovernanceError, PolicyEngine};

use credentials::{Credentials, TrustEntry};
use identities::Identities;
use network::{Network, Rules};
use participants::Participants;
use records::{RecordEntry, Records};
use txs::*;

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

#[derive(Clone, Debug)]
pub struct LedgerState {
    /// The genesis entry and the custodian set: who signs `record` and
    /// `access`, and the audience of licences. Never "this node".
    pub network: Network,
    pub participants: Participants,
    pub records: Records,
    pub policy: PolicyEngine,
    pub credentials: Credentials,
    pub identities: Identities,
    /// (requester, patient) → end of the open break-glass window.
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
        if !self.network.has_genesis() || tx.tx_type() == network::GENESIS {
            return self.apply_genesis(index, tx);
        }
        if tx.tx_type() == hygeia_ledger::attest::TX_TYPE {
            // Only a retired key's attestation is refused, as before.
            self.identities.identity_of(tx.signer().as_str())?;
            return Ok(Effect::None);
        }
        let effect = self.apply_rule(index, tx)?;
        self.identities.note_known(tx.signer().as_str());
        let identity = self.identities.identity_of(tx.signer().as_str());
        if let Ok(identity) = identity {
            self.identities.note_known(&identity);
        }
        note_body_dids(&mut self.identities, tx.body());
        Ok(effect)
    }

    fn apply_rule(&mut self, index: u64, tx: &SignedTx) -> Result<Effect, TxError> {
        let key = tx.signer().as_str();
        let body = tx.body();
        let schema = |e: String| TxError::new(ErrorCode::SchemaViolation, e);
        let rules = self.network.rules_at(index);
        if tx.tx_type() == IDENTITY_ROTATE {
            // Signed by a recovery key, which acts for no identity.
            if rules == Rules::V1 {
                let b: IdentityRotateV1 = parse_body(IDENTITY_ROTATE, body).map_err(schema)?;
                self.identities.rotate_v1(key, index, &b)?;
                return Ok(Effect::None);
            }
            let b: IdentityRotate = parse_body(IDENTITY_ROTATE, body).map_err(schema)?;
            self.identities.rotate(key, index, &b)?;
            return Ok(Effect::None);
        }
        // After a recovery, a new key signs for the identity; a retired key
        // signs for no one.
        let identity = self.identities.identity_of(key)?;
        let signer = identity.as_str();
        match tx.tx_type() {
            network::NETWORK_CUSTODIAN => {
                let b: network::NetworkCustodian =
                    parse_body(network::NETWORK_CUSTODIAN, body).map_err(schema)?;
                if !self.participants.is_governance(signer) {
                    return Err(network::not_governance());
                }
                self.network.change_custodians(&b)?;
                Ok(Effect::None)
            }
            ORG_KEYS => {
                let b: OrgKeys = parse_body(ORG_KEYS, body).map_err(schema)?;
                self.participants.rotate_org_keys(signer, index, &b)?;
                Ok(Effect::None)
            }
            TRUST_ISSUER => {
                let b: TrustIssuer = parse_body(TRUST_ISSUER, body).map_err(schema)?;
                if !self.participants.is_governance(signer) {
                    return Err(TxError::new(
                        ErrorCode::Forbidden("trust.not_governance"),
                        "only the network's governance key changes the trust list",
                    ));
                }
                match b.op {
                    TrustOp::Add => self.credentials.trust(TrustEntry {
                        issuer: b.issuer,
                        credential_type: b.credential_type,
                        jurisdictions: b.jurisdictions,
                        index,
                    }),
                    TrustOp::Remove => self.credentials.distrust(&b.issuer, &b.credential_type)?,
                }
                Ok(Effect::None)
            }
            STATUS_LIST => {
                let b: StatusListPublish = parse_body(STATUS_LIST, body).map_err(schema)?;
                let (id, list, decoded) = credentials::verify_status_list(
                    &self.participants,
                    &self.credentials,
                    signer,
                    index,
                    &b.credential,
                    rules == Rules::Current,
                )?;
                self.credentials.publish_list(id, list, &decoded)?;
                Ok(Effect::None)
            }
            LICENCE_REGISTER => {
                let b: LicenceRegister = parse_body(LICENCE_REGISTER, body).map_err(schema)?;
                let audience = self.licence_audience(rules);
                let licence = credentials::verify_licence(
                    &self.participants,
                    audience,
                    signer,
                    key,
                    index,
                    &b.presentation,
                    rules == Rules::Current,
                )?;
                self.identities.note_known(&licence.issuer);
                self.credentials.register_licence(licence);
                Ok(Effect::None)
            }
            IDENTITY_RECOVERY => {
                let b: IdentityRecovery = parse_body(IDENTITY_RECOVERY, body).map_err(schema)?;
                self.identities.register_recovery(signer, index, &b);
                Ok(Effect::None)
            }
            ORG_REGISTER => {
                let b: OrgRegister = parse_body(ORG_REGISTER, body).map_err(schema)?;
                self.participants.register_org(signer, index, &b)?;
                Ok(Effect::None)
            }
            ORG_MEMBER => {
                let b: OrgMember = parse_body(ORG_MEMBER, body).map_err(schema)?;
                self.participants.set_member(signer, &b)?;
                Ok(Effect::None)
            }
            GOVERNANCE_POLICY => {
                let b: GovernancePolicy = parse_body(GOVERNANCE_POLICY, body).map_err(schema)?;
                if !self.participants.is_governance(signer) {
                    return Err(TxError::new(
                        ErrorCode::Forbidden("governance.not_governance"),
                        "only the network's governance key installs governance policies",
                    ));
                }
                self.policy
                    .install_governance(b.version, &b.policies)
                    .map_err(governance_error)?;
                Ok(Effect::None)
            }
            RECORD => {
                let b: RecordBody = parse_body(RECORD, body).map_err(schema)?;
                self.require_custodian(rules, key, signer, RECORD)?;
                if self.records.contains(&b.commitment) {
                    return Err(TxError::new(
                        ErrorCode::Conflict("record.exists"),
                        format!("record {} is already on the ledger", b.commitment),
                    ));
                }
                self.records.insert(RecordEntry {
                    commitment: b.commitment,
                    patient: b.patient,
                    author: b.author,
                    category: b.category,
                    resource_type: b.resource_type,
                    index,
                    erased_at: None,
                });
                Ok(Effect::None)
            }
            RECORD_ERASE => {
                let b: RecordErase = parse_body(RECORD_ERASE, body).map_err(schema)?;
                let record = self.records.get(&b.record).ok_or_else(|| {
                    TxError::new(
                        ErrorCode::NotFound("record.unknown"),
                        format!("no record {} on the ledger", b.record),
                    )
                })?;
                if record.erased_at.is_some() {
                    return Err(TxError::new(
                        ErrorCode::Conflict("record.already_erased"),
                        format!("record {} is already erased", b.record),
                    ));
                }
                let consents = self.policy.consents();
                let allowed = signer == record.patient
                    || consents.is_delegate(&record.patient, signer)
                    || self.participants.is_governance(signer);
                if !allowed {
                    return Err(TxError::new(
                        ErrorCode::Forbidden("record.erase_not_allowed"),
                        "only the patient, a registered delegate or the governance key erases a record",
                    ));
                }
                self.records.mark_erased(&b.record, index);
                Ok(Effect::Erased {
                    commitment: b.record,
                })
            }
            CONSENT_GRANT => {
                let b: ConsentGrant = parse_body(CONSENT_GRANT, body).map_err(schema)?;
                let grant = b
                    .to_grant(hex::encode(tx.leaf_hash().0))
                    .map_err(|e| TxError::new(ErrorCode::Invalid("consent.unknown_purpose"), e))?;
                self.consent(ConsentEvent::Grant {
                    author: signer.to_owned(),
                    grant,
                })
            }
            CONSENT_REVOKE => {
                let b: ConsentRevoke = parse_body(CONSENT_REVOKE, body).map_err(schema)?;
                self.consent(ConsentEvent::Revoke {
                    author: signer.to_owned(),
                    grant_id: b.grant,
                })
            }
            CONSENT_DELEGATE => {
                let b: ConsentDelegate = parse_body(CONSENT_DELEGATE, body).map_err(schema)?;
                let (author, patient, delegate) = (signer.to_owned(), b.patient, b.delegate);
                self.consent(match b.op {
                    DelegateOp::Add => ConsentEvent::RegisterDelegate {
                        author,
                        patient,
                        delegate,
                    },
                    DelegateOp::Remove => ConsentEvent::RemoveDelegate {
                        author,
                        patient,
                        delegate,
                    },
                })
            }
            ACCESS => {
                let b: Access = parse_body(ACCESS, body).map_err(schema)?;
                self.require_custodian(rules, key, signer, ACCESS)?;
                if b.break_glass && b.justified && b.decision == Verdict::Permit {
                    self.break_glass.insert(
                        (b.requester.clone(), b.patient.clone()),
                        b.time.saturating_add(BREAK_GLASS_WINDOW_SECS),
                    );
                }
                Ok(Effect::Accessed {
                    patient: b.patient,
                    break_glass: b.break_glass,
                })
            }
            other => Err(TxError::new(
                ErrorCode::UnknownType,
                format!("no state rule for transaction type {other:?}"),
            )),
        }
    }

    /// `record` and `access` are signed by a key of the custodian set
    /// (under the legacy rules: by the old node, as the identity it acts
    /// for).
    fn require_custodian(
        &self,
        rules: Rules,
        key: &str,
        signer: &str,
        tx_type: &str,
    ) -> Result<(), TxError> {
        let allowed = match (rules, self.network.legacy()) {
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
    fn licence_audience(&self, rules: Rules) -> &str {
        match (rules, self.network.legacy()) {
            (Rules::V1, Some(legacy)) => &legacy.node,
            _ => self.network.id().unwrap_or_default(),
        }
    }

    /// Leaf 0 must be a genesis, and no other leaf may be one.
    fn apply_genesis(&mut self, index: u64, tx: &SignedTx) -> Result<Effect, TxError> {
        if tx.tx_type() != network::GENESIS {
            return Err(network::no_genesis(index));
        }
        let genesis: network::Genesis = parse_body(network::GENESIS, tx.body())
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

    fn consent(&mut self, event: ConsentEvent) -> Result<Effect, TxError> {
        self.policy.apply(&event).map_err(consent_error)?;
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

fn consent_error(e: ConsentError) -> TxError {
    let code = e.code();
    let kind = match e {
        ConsentError::NotPatientOrDelegate { .. }
        | ConsentError::GranteeWidening { .. }
        | ConsentError::ForeignGrant { .. }
        | ConsentError::DelegateChangeUnauthorized { .. } => ErrorCode::Forbidden(code),
        ConsentError::UnknownGrant { .. } | ConsentError::UnknownDelegate { .. } => {
            ErrorCode::NotFound(code)
        }
        ConsentError::DuplicateGrant { .. }
        | ConsentError::AlreadyRevoked { .. }
        | ConsentError::DuplicateDelegate { .. } => ErrorCode::Conflict(code),
        _ => ErrorCode::Invalid(code),
    };
    TxError::new(kind, e.to_string())
}

fn governance_error(e: GovernanceError) -> TxError {
    let code = e.code();
    let kind = match e {
        GovernanceError::StaleVersion { .. } => ErrorCode::Conflict(code),
        _ => ErrorCode::Invalid(code),
    };
    TxError::new(kind, e.to_string())
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
