//! The network a log defines: its genesis entry and its custodian set.
//!
//! Leaf 0 of every log is a `genesis` transaction. It names the
//! governance key and the custodian set (the node keys allowed to sign
//! `record` and `access`), and is signed by the founding node, whose key
//! must be in that set. Its leaf hash is the network's identity
//! ([`Network::id`]): a verifier may pin it, and a licence's key binding is
//! addressed to it. Every rule that once asked "is this *my* node?" asks
//! the replayed custodian set instead, so every node and every verifier
//! replaying the same log reach the same state (docs/ledger.md, "Genesis").
//!
//! The custodian set changes only by `network.custodian`, signed by the
//! governance key: a key is added, removed, or rotated to a new one.
//!
//! The validator set (the keys that order the log when it is ordered by
//! the BFT network) is numbered by epoch. Epoch 0's is the genesis
//! custodian set. `network.validators`, signed by the governance key,
//! names the set of the next epoch (each a custodian's key and its p2p
//! address); the epoch changes after the block that holds it, so every node
//! applying the same blocks switches at the same block (docs/network.md,
//! "Membership changes at an epoch").
//!
//! A log made before genesis existed is migrated (`hygeia migrate`): the
//! new log's genesis records the legacy prefix ([`Legacy`]), whose entries
//! follow it unchanged and replay under the rules they were admitted under
//! ([`Rules::V1`]).

use std::collections::BTreeSet;

use hygeia_ledger::{ErrorCode, TxError};
use serde::{Deserialize, Serialize};

use super::registry::{example_did, Cx, Registry, SignedAs, TxBody};
use super::txs::{check_did_key, check_hex32, parse_body};
use super::{Effect, LedgerState};

pub const GENESIS: &str = "genesis";
pub const NETWORK_CUSTODIAN: &str = "network.custodian";
pub const NETWORK_VALIDATORS: &str = "network.validators";

/// Most keys in the custodian set.
pub const MAX_CUSTODIANS: usize = 64;
/// Most governance keys a genesis names (one today; the list leaves room).
pub const MAX_GOVERNANCE_KEYS: usize = 1;
/// The one set of legacy rules there is: those of the log before genesis.
pub const LEGACY_RULES_V1: &str = "v1";

/// `genesis`, leaf 0 of every log, signed by the founding node (a member
/// of `custodians`). The envelope's `network` names the network; the
/// entry's leaf hash identifies it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// The governance key(s), did:key: at most [`MAX_GOVERNANCE_KEYS`];
    /// none makes a network where no organization can be registered.
    pub governance: Vec<String>,
    /// The node keys (did:key) allowed to sign `record` and `access`.
    pub custodians: Vec<String>,
    /// Present only in a migrated log: the entries that follow genesis
    /// were admitted before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legacy: Option<Legacy>,
}

/// The legacy prefix a migration copied behind the genesis entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Legacy {
    /// How many entries the old log had: leaves 1 to `entries` of the
    /// new log are the old leaves 0 to `entries - 1`, byte for byte.
    pub entries: u64,
    /// The old log's RFC 9162 root hash at that size (64 hex digits), so
    /// the copy can be checked against the old log and its checkpoints.
    pub root: String,
    /// The rules they were admitted under: `v1`.
    pub rules: String,
    /// The old node's DID: the custodian, and licences' audience, then.
    pub node: String,
    /// The governance key the old network was created with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub governance: Option<String>,
}

/// `network.custodian`, signed by the governance key: changes the
/// custodian set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkCustodian {
    pub op: CustodianOp,
    /// The key added, removed, or rotated away from.
    pub key: String,
    /// For `rotate` only: the key that replaces `key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_key: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CustodianOp {
    Add,
    Remove,
    Rotate,
}

/// The stateless check of a `genesis` body.
pub fn check_genesis(body: &serde_json::Value) -> Result<(), String> {
    parse_body::<Genesis>(GENESIS, body)?.check()
}

/// The stateless check of a `network.custodian` body.
pub fn check_custodian(body: &serde_json::Value) -> Result<(), String> {
    parse_body::<NetworkCustodian>(NETWORK_CUSTODIAN, body)?.check()
}

fn check_genesis_body(b: &Genesis) -> Result<(), String> {
    if b.governance.len() > MAX_GOVERNANCE_KEYS {
        return Err(format!(
            "genesis body: at most {MAX_GOVERNANCE_KEYS} governance key"
        ));
    }
    for key in &b.governance {
        check_did_key("governance[]", key)?;
    }
    if b.custodians.is_empty() || b.custodians.len() > MAX_CUSTODIANS {
        return Err(format!(
            "genesis body: 1 to {MAX_CUSTODIANS} custodians, not {}",
            b.custodians.len()
        ));
    }
    for key in &b.custodians {
        check_did_key("custodians[]", key)?;
    }
    if b.custodians.iter().collect::<BTreeSet<_>>().len() != b.custodians.len() {
        return Err("genesis body: a custodian is listed twice".into());
    }
    if let Some(legacy) = &b.legacy {
        if legacy.rules != LEGACY_RULES_V1 {
            return Err(format!(
                "genesis body: legacy rules {:?} are unknown (known: {LEGACY_RULES_V1:?})",
                legacy.rules
            ));
        }
        check_hex32("legacy.root", &legacy.root)?;
        check_did_key("legacy.node", &legacy.node)?;
        if let Some(governance) = &legacy.governance {
            check_did_key("legacy.governance", governance)?;
        }
    }
    Ok(())
}

fn check_custodian_body(b: &NetworkCustodian) -> Result<(), String> {
    check_did_key("key", &b.key)?;
    match (b.op, &b.new_key) {
        (CustodianOp::Rotate, Some(new_key)) => check_did_key("new_key", new_key),
        (CustodianOp::Rotate, None) => Err("network.custodian body: rotate needs new_key".into()),
        (_, Some(_)) => Err("network.custodian body: only rotate has a new_key".into()),
        (_, None) => Ok(()),
    }
}

/// `network.validators`, signed by the governance key: the validator set
/// of epoch `epoch`, which must be the epoch after the current one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkValidators {
    /// The epoch this set orders: exactly one past the current epoch, so a
    /// change prepared for one epoch cannot be applied in another.
    pub epoch: u64,
    /// 1 to [`MAX_CUSTODIANS`] validators, each key and address once.
    pub validators: Vec<Validator>,
}

/// One member of a validator set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Validator {
    /// The node key (did:key), a key of the custodian set.
    pub key: String,
    /// Where its peers dial it: `ip:port`.
    pub address: String,
    /// Where the other organizations' nodes pull the records it holds
    /// (its HTTP API, `http://` or `https://`), so that a node which joined
    /// after the genesis is found by the founders' replication followers
    /// too (docs/network.md, "Which node is an organization's").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<String>,
}

/// The most a validator's `api` URL may hold.
pub const MAX_API_URL: usize = 255;

/// The stateless check of a `network.validators` body.
pub fn check_validators(body: &serde_json::Value) -> Result<(), String> {
    parse_body::<NetworkValidators>(NETWORK_VALIDATORS, body)?.check()
}

fn check_validators_body(b: &NetworkValidators) -> Result<(), String> {
    for validator in &b.validators {
        check_did_key("validators[].key", &validator.key)?;
        validator
            .address
            .parse::<std::net::SocketAddr>()
            .map_err(|_| {
                format!(
                    "validators[].address must be ip:port, not {:?}",
                    validator.address
                )
            })?;
        if let Some(api) = &validator.api {
            check_api_url(api)?;
        }
    }
    Ok(())
}

/// An HTTP API's base URL: `http://` or `https://`, a host, at most
/// [`MAX_API_URL`] visible ASCII characters, no query or fragment.
fn check_api_url(api: &str) -> Result<(), String> {
    let rest = api
        .strip_prefix("http://")
        .or_else(|| api.strip_prefix("https://"));
    let ok = rest.is_some_and(|rest| {
        !rest.is_empty()
            && !rest.starts_with('/')
            && !rest.contains(['?', '#', '@'])
            && api.len() <= MAX_API_URL
            && api.bytes().all(|b| b.is_ascii_graphic())
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "validators[].api must be an http:// or https:// base URL of at most {MAX_API_URL} characters, not {api:?}"
        ))
    }
}

/// Which rules an entry is judged by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rules {
    /// Today's.
    Current,
    /// Those of the log before genesis (docs/ledger.md, "Migration"):
    /// `identity.rotate` without the new key's proof, status list ids and
    /// licence status entries outside the issuer's namespace, the old node
    /// as custodian and as licences' audience.
    V1,
}

/// What the genesis entry and the governance transactions after it say.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// The genesis entry's leaf hash (hex); `None` before genesis.
    id: Option<String>,
    custodians: BTreeSet<String>,
    legacy: Option<Legacy>,
    /// The genesis custodian set: the validators of epoch 0. (Empty in a
    /// state snapshot written before epochs existed: then the custodian
    /// set, which was the validator set then.)
    #[serde(default)]
    founders: Vec<String>,
    /// The current epoch: how many `network.validators` were applied.
    #[serde(default)]
    epoch: u64,
    /// The validator set of the current epoch, from its
    /// `network.validators` (empty in epoch 0).
    #[serde(default)]
    validators: Vec<Validator>,
    /// The leaf index of the `network.validators` that started the
    /// current epoch (0 in epoch 0).
    #[serde(default)]
    epoch_leaf: u64,
}

impl Network {
    /// The network's identity: the hex leaf hash of its genesis entry.
    /// `None` until genesis is applied.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    pub fn has_genesis(&self) -> bool {
        self.id.is_some()
    }

    /// The custodian set, sorted.
    pub fn custodians(&self) -> impl Iterator<Item = &str> {
        self.custodians.iter().map(String::as_str)
    }

    pub fn is_custodian(&self, key: &str) -> bool {
        self.custodians.contains(key)
    }

    pub fn legacy(&self) -> Option<&Legacy> {
        self.legacy.as_ref()
    }

    /// The current epoch: 0 from genesis, one more after each
    /// `network.validators`.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The leaf index of the `network.validators` that started the current
    /// epoch; 0 in epoch 0.
    pub fn epoch_leaf(&self) -> u64 {
        self.epoch_leaf
    }

    /// The node keys of the current epoch's validator set, in the order
    /// they were named (epoch 0: the genesis custodian set).
    pub fn validator_keys(&self) -> Vec<&str> {
        if self.epoch > 0 {
            self.validators.iter().map(|v| v.key.as_str()).collect()
        } else {
            self.founders()
        }
    }

    /// The genesis custodian set: the validators of epoch 0, in the order
    /// the genesis named them.
    pub fn founders(&self) -> Vec<&str> {
        if self.founders.is_empty() {
            self.custodians().collect()
        } else {
            self.founders.iter().map(String::as_str).collect()
        }
    }

    /// The current epoch's validators with their p2p addresses; empty in
    /// epoch 0 (the genesis names no addresses: the peers file does).
    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    /// Checks and applies a `network.validators`, already checked to be
    /// signed by the governance key, at leaf `index`. Refused, it changes
    /// nothing.
    pub fn change_validators(
        &mut self,
        index: u64,
        body: &NetworkValidators,
    ) -> Result<(), TxError> {
        let next = self.epoch.checked_add(1).ok_or_else(|| {
            TxError::new(
                ErrorCode::Conflict("network.epoch_mismatch"),
                "the epoch counter is exhausted",
            )
        })?;
        if body.epoch != next {
            return Err(TxError::new(
                ErrorCode::Conflict("network.epoch_mismatch"),
                format!(
                    "the current epoch is {}: a new validator set is for epoch {next}, not {}",
                    self.epoch, body.epoch
                ),
            ));
        }
        if body.validators.is_empty() {
            return Err(TxError::new(
                ErrorCode::Invalid("network.validators_empty"),
                "a validator set names at least one validator",
            ));
        }
        if body.validators.len() > MAX_CUSTODIANS {
            return Err(TxError::new(
                ErrorCode::Invalid("network.too_many_validators"),
                format!("a validator set names at most {MAX_CUSTODIANS} validators"),
            ));
        }
        let mut keys = BTreeSet::new();
        let mut addresses = BTreeSet::new();
        for validator in &body.validators {
            let address = validator.address.parse::<std::net::SocketAddr>().ok();
            if !keys.insert(validator.key.as_str()) || !addresses.insert(address) {
                return Err(TxError::new(
                    ErrorCode::Invalid("network.validator_duplicate"),
                    format!(
                        "{} or its address {} is named twice",
                        validator.key, validator.address
                    ),
                ));
            }
            if !self.custodians.contains(&validator.key) {
                return Err(TxError::new(
                    ErrorCode::Invalid("network.validator_not_custodian"),
                    format!("{} is not a key of the custodian set", validator.key),
                ));
            }
        }
        self.epoch = next;
        self.validators = body.validators.clone();
        self.epoch_leaf = index;
        Ok(())
    }

    /// The rules leaf `index` is judged by.
    pub fn rules_at(&self, index: u64) -> Rules {
        match &self.legacy {
            Some(legacy) if index >= 1 && index <= legacy.entries => Rules::V1,
            _ => Rules::Current,
        }
    }

    /// The state after a genesis with id `id`.
    pub fn founded(id: String, genesis: &Genesis) -> Network {
        Network {
            id: Some(id),
            custodians: genesis.custodians.iter().cloned().collect(),
            legacy: genesis.legacy.clone(),
            founders: genesis.custodians.clone(),
            epoch: 0,
            validators: Vec::new(),
            epoch_leaf: 0,
        }
    }

    /// Checks a `genesis` at leaf `index`, signed by `key`, against a
    /// state that has seen nothing (`has_genesis` false).
    pub fn check_genesis(&self, index: u64, key: &str, genesis: &Genesis) -> Result<(), TxError> {
        if self.has_genesis() {
            return Err(TxError::new(
                ErrorCode::Conflict("genesis.exists"),
                "this log already has its genesis entry, at leaf 0",
            ));
        }
        if index != 0 {
            return Err(TxError::new(
                ErrorCode::Conflict("genesis.not_first"),
                format!("a genesis entry is leaf 0 of a log, not leaf {index}"),
            ));
        }
        if !genesis.custodians.iter().any(|c| c == key) {
            return Err(TxError::new(
                ErrorCode::Forbidden("genesis.not_custodian"),
                "the genesis entry is signed by a founding node, whose key is in its custodian set",
            ));
        }
        Ok(())
    }

    /// Applies a `network.custodian`, already checked to be signed by the
    /// governance key.
    pub fn change_custodians(&mut self, body: &NetworkCustodian) -> Result<(), TxError> {
        let unknown = || {
            TxError::new(
                ErrorCode::NotFound("network.custodian_unknown"),
                format!("{} is not in the custodian set", body.key),
            )
        };
        let exists = |key: &str| {
            TxError::new(
                ErrorCode::Conflict("network.custodian_exists"),
                format!("{key} is already in the custodian set"),
            )
        };
        match body.op {
            CustodianOp::Add => {
                if self.custodians.len() >= MAX_CUSTODIANS {
                    return Err(TxError::new(
                        ErrorCode::Invalid("network.too_many_custodians"),
                        format!("a network has at most {MAX_CUSTODIANS} custodians"),
                    ));
                }
                if !self.custodians.insert(body.key.clone()) {
                    return Err(exists(&body.key));
                }
            }
            CustodianOp::Remove => {
                if !self.custodians.contains(&body.key) {
                    return Err(unknown());
                }
                if self.custodians.len() == 1 {
                    return Err(TxError::new(
                        ErrorCode::Conflict("network.last_custodian"),
                        "the last custodian cannot be removed; rotate its key instead",
                    ));
                }
                self.custodians.remove(&body.key);
            }
            CustodianOp::Rotate => {
                let new_key = body.new_key.as_deref().unwrap_or_default();
                if !self.custodians.contains(&body.key) {
                    return Err(unknown());
                }
                if self.custodians.contains(new_key) {
                    return Err(exists(new_key));
                }
                self.custodians.remove(&body.key);
                self.custodians.insert(new_key.to_owned());
            }
        }
        Ok(())
    }
}

/// Registers the types of this domain.
pub(crate) fn register(r: &mut Registry) {
    r.add::<Genesis>();
    r.add::<NetworkCustodian>();
    r.add::<NetworkValidators>();
}

impl TxBody for Genesis {
    const TYPE: &'static str = GENESIS;
    /// Signed by the founding node's key, before any identity exists.
    const SIGNED_AS: SignedAs = SignedAs::Key;

    fn example() -> Self {
        Genesis {
            governance: vec![example_did(1)],
            custodians: vec![example_did(2)],
            legacy: None,
        }
    }

    fn check(&self) -> Result<(), String> {
        check_genesis_body(self)
    }

    /// [`LedgerState::apply`] takes every genesis (and everything before
    /// one) aside before the registry dispatches; a genesis that reaches
    /// here comes after leaf 0.
    fn apply(self, _state: &mut LedgerState, _cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        Err(TxError::new(
            ErrorCode::Conflict("genesis.exists"),
            "this log already has its genesis entry, at leaf 0",
        ))
    }
}

impl TxBody for NetworkCustodian {
    const TYPE: &'static str = NETWORK_CUSTODIAN;

    fn example() -> Self {
        NetworkCustodian {
            op: CustodianOp::Rotate,
            key: example_did(2),
            new_key: Some(example_did(3)),
        }
    }

    fn check(&self) -> Result<(), String> {
        check_custodian_body(self)
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        if !state.participants.is_governance(&cx.signer) {
            return Err(not_governance());
        }
        state.network.change_custodians(&self)?;
        Ok(Effect::None)
    }
}

impl TxBody for NetworkValidators {
    const TYPE: &'static str = NETWORK_VALIDATORS;

    fn example() -> Self {
        NetworkValidators {
            epoch: 1,
            validators: vec![
                Validator {
                    key: example_did(2),
                    address: "192.0.2.1:9101".into(),
                    api: Some("https://node.org2.example".into()),
                },
                Validator {
                    key: example_did(3),
                    address: "192.0.2.2:9101".into(),
                    api: None,
                },
            ],
        }
    }

    fn check(&self) -> Result<(), String> {
        check_validators_body(self)
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        if !state.participants.is_governance(&cx.signer) {
            return Err(TxError::new(
                ErrorCode::Forbidden("network.not_governance"),
                "only the network's governance key changes the validator set",
            ));
        }
        state.network.change_validators(cx.index, &self)?;
        Ok(Effect::None)
    }
}

/// The genesis entry a founding node signs with `key` for `network`.
pub fn genesis_tx(
    network: &str,
    key: &hygeia_identity::Keypair,
    genesis: &Genesis,
    modules: &hygeia_ledger::ModuleRegistry,
) -> Result<hygeia_ledger::SignedTx, TxError> {
    let body = serde_json::to_value(genesis)
        .map_err(|e| TxError::new(ErrorCode::SchemaViolation, e.to_string()))?;
    hygeia_ledger::tx::TxBuilder {
        network,
        tx_type: GENESIS,
        nonce: "genesis".into(),
        body,
    }
    .sign_checked(key, &hygeia_ledger::tx::TxContext { network, modules })
}

/// Whether a stored entry is a genesis entry, read from its `type` alone
/// (to tell a log made before genesis existed from a damaged one).
pub fn is_genesis_entry(entry: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(entry)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(|t| t == GENESIS))
        .unwrap_or(false)
}

/// Refusal of anything but a genesis at leaf 0.
pub fn no_genesis(index: u64) -> TxError {
    TxError::new(
        ErrorCode::Invalid("genesis.missing"),
        format!(
            "leaf {index} comes before any genesis entry: a log starts with its genesis (a data directory made before genesis existed is migrated with `hygeia migrate`)"
        ),
    )
}

/// Refusal of a `network.custodian` not signed by the governance key.
pub fn not_governance() -> TxError {
    TxError::new(
        ErrorCode::Forbidden("network.not_governance"),
        "only the network's governance key changes the custodian set",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> String {
        hygeia_identity::Keypair::from_seed(&[seed; 32])
            .did()
            .to_string()
    }

    fn founded(custodians: &[u8]) -> Network {
        Network::founded(
            "00".repeat(32),
            &Genesis {
                governance: vec![key(9)],
                custodians: custodians.iter().map(|s| key(*s)).collect(),
                legacy: None,
            },
        )
    }

    fn change(op: CustodianOp, k: u8, new_key: Option<u8>) -> NetworkCustodian {
        NetworkCustodian {
            op,
            key: key(k),
            new_key: new_key.map(key),
        }
    }

    #[test]
    fn custodians_are_added_removed_and_rotated() {
        let mut network = founded(&[1]);
        network
            .change_custodians(&change(CustodianOp::Add, 2, None))
            .unwrap();
        assert!(network.is_custodian(&key(2)));
        network
            .change_custodians(&change(CustodianOp::Rotate, 1, Some(3)))
            .unwrap();
        assert!(!network.is_custodian(&key(1)) && network.is_custodian(&key(3)));
        network
            .change_custodians(&change(CustodianOp::Remove, 2, None))
            .unwrap();
        assert_eq!(network.custodians().collect::<Vec<_>>(), vec![key(3)]);
    }

    #[test]
    fn bad_custodian_changes_are_refused_and_change_nothing() {
        let mut network = founded(&[1, 2]);
        let before = network.clone();
        let cases = [
            (
                change(CustodianOp::Add, 1, None),
                "network.custodian_exists",
            ),
            (
                change(CustodianOp::Remove, 5, None),
                "network.custodian_unknown",
            ),
            (
                change(CustodianOp::Rotate, 5, Some(6)),
                "network.custodian_unknown",
            ),
            (
                change(CustodianOp::Rotate, 1, Some(2)),
                "network.custodian_exists",
            ),
        ];
        for (body, code) in cases {
            let e = network.change_custodians(&body).unwrap_err();
            assert_eq!(e.code.as_str(), code);
            assert_eq!(network, before);
        }
        let mut alone = founded(&[1]);
        let e = alone
            .change_custodians(&change(CustodianOp::Remove, 1, None))
            .unwrap_err();
        assert_eq!(e.code.as_str(), "network.last_custodian");
    }

    #[test]
    fn legacy_rules_cover_exactly_the_copied_prefix() {
        let mut network = founded(&[1]);
        assert_eq!(network.rules_at(1), Rules::Current);
        network.legacy = Some(Legacy {
            entries: 3,
            root: "00".repeat(32),
            rules: LEGACY_RULES_V1.into(),
            node: key(1),
            governance: None,
        });
        let rules: Vec<Rules> = (0..5).map(|i| network.rules_at(i)).collect();
        use Rules::*;
        assert_eq!(rules, [Current, V1, V1, V1, Current]);
    }

    #[test]
    fn malformed_bodies_fail_their_check() {
        let good = serde_json::json!({"governance": [key(9)], "custodians": [key(1)]});
        check_genesis(&good).unwrap();
        let bad = [
            serde_json::json!({"governance": [], "custodians": []}),
            serde_json::json!({"governance": [key(8), key(9)], "custodians": [key(1)]}),
            serde_json::json!({"governance": [], "custodians": [key(1), key(1)]}),
            serde_json::json!({"governance": ["did:web:x.example"], "custodians": [key(1)]}),
            serde_json::json!({"governance": [], "custodians": [key(1)], "extra": 1}),
            serde_json::json!({"governance": [], "custodians": [key(1)],
                "legacy": {"entries": 1, "root": "00", "rules": "v1", "node": key(1)}}),
            serde_json::json!({"governance": [], "custodians": [key(1)],
                "legacy": {"entries": 1, "root": "00".repeat(32), "rules": "v0", "node": key(1)}}),
            serde_json::json!("genesis"),
        ];
        for body in bad {
            assert!(check_genesis(&body).is_err(), "{body}");
        }
        for body in [
            serde_json::json!({"op": "rotate", "key": key(1)}),
            serde_json::json!({"op": "add", "key": key(1), "new_key": key(2)}),
            serde_json::json!({"op": "add", "key": "did:web:x.example"}),
            serde_json::json!({"op": "replace", "key": key(1)}),
        ] {
            assert!(check_custodian(&body).is_err(), "{body}");
        }
    }
}
