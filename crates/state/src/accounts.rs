//! Accounts: balances per DID in named units. Types: `unit.register`,
//! `unit.mint`, `unit.transfer`.
//!
//! A unit (a program's incentive token, a settlement unit such as
//! EUR-cents) is registered by the governance key together with the one
//! issuer allowed to mint it. Balances are `u64` in the unit's smallest
//! denomination and every change is checked arithmetic: the supply of a
//! unit is what its issuer minted, it never wraps, and the sum of the
//! balances and the amounts locked in escrows ([`crate::escrow`]) always
//! equals it. A transfer moves the signer's own funds (or, for an
//! organization, funds of the did:web its admin key acts for); a double
//! spend is a transfer beyond the balance, refused like any overdraft, and
//! a replayed transaction is refused by the ledger's nonce check before it
//! reaches the state.

use imbl::HashMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use hygeia_ledger::{ErrorCode, TxError};

use super::registry::{example_did, Cx, Registry, TxBody};
use super::txs::{check_code, check_did};
use super::{Effect, LedgerState};

/// The largest amount and the largest supply of a unit: 2^53 − 1, the
/// largest integer every JSON implementation reads exactly (transactions
/// are RFC 8785 JSON, whose numbers are IEEE 754 doubles).
pub const MAX_AMOUNT: u64 = (1 << 53) - 1;

pub const UNIT_REGISTER: &str = "unit.register";
pub const UNIT_MINT: &str = "unit.mint";
pub const UNIT_TRANSFER: &str = "unit.transfer";

/// Registers the types of this domain.
pub(crate) fn register(r: &mut Registry) {
    r.add::<UnitRegister>();
    r.add::<UnitMint>();
    r.add::<UnitTransfer>();
}

/// `unit.register`, signed by the governance key: a new unit and the one
/// issuer that may mint it.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnitRegister {
    /// The unit's code (`[a-z0-9._-]`, e.g. `eur-cents`, `gluco-token`).
    pub unit: String,
    /// The DID that mints it (a did:web organization mints with its admin
    /// key).
    pub issuer: String,
}

/// `unit.mint`, signed by the unit's issuer: creates `amount` of `unit`
/// in the balance of `to`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnitMint {
    pub unit: String,
    pub to: String,
    /// Positive, in the unit's smallest denomination.
    pub amount: u64,
}

/// `unit.transfer`, signed by the holder: moves `amount` of `unit` from
/// `from` (default: the signer; a did:web organization whose admin key
/// signs) to `to`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnitTransfer {
    pub unit: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    pub to: String,
    /// Positive, in the unit's smallest denomination.
    pub amount: u64,
}

/// A registered unit.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Unit {
    pub issuer: String,
    /// Everything minted so far: the sum of all balances and all amounts
    /// locked in escrows.
    pub supply: u64,
    /// Leaf index of its registration.
    pub registered_at: u64,
}

/// Units and balances. Persistent maps (`imbl`): a clone is O(1).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Accounts {
    #[serde(with = "crate::snapshot::sorted_map")]
    units: HashMap<String, Unit>,
    /// (unit, holder) → balance; a zero balance is not kept.
    #[serde(with = "crate::snapshot::sorted_map")]
    balances: HashMap<(String, String), u64>,
}

impl Accounts {
    pub fn unit(&self, unit: &str) -> Option<&Unit> {
        self.units.get(unit)
    }

    /// The units, sorted by code.
    pub fn units(&self) -> Vec<(&str, &Unit)> {
        let mut units: Vec<(&str, &Unit)> =
            self.units.iter().map(|(k, v)| (k.as_str(), v)).collect();
        units.sort_by(|a, b| a.0.cmp(b.0));
        units
    }

    pub fn balance(&self, unit: &str, holder: &str) -> u64 {
        self.balances
            .get(&(unit.to_owned(), holder.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// The balances of `holder`, by unit, sorted; zero balances left out.
    pub fn balances_of(&self, holder: &str) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = self
            .balances
            .iter()
            .filter(|((_, h), _)| h == holder)
            .map(|((u, _), amount)| (u.clone(), *amount))
            .collect();
        out.sort();
        out
    }

    /// Every balance of `unit`, summed (for the conservation tests).
    pub fn total_balances(&self, unit: &str) -> u128 {
        self.balances
            .iter()
            .filter(|((u, _), _)| u == unit)
            .map(|(_, amount)| u128::from(*amount))
            .sum()
    }

    /// The unit, or `unit.unknown`.
    pub fn require_unit(&self, unit: &str) -> Result<&Unit, TxError> {
        self.units.get(unit).ok_or_else(|| {
            TxError::new(
                ErrorCode::NotFound("unit.unknown"),
                format!("no unit {unit:?} is registered"),
            )
        })
    }

    /// Takes `amount` out of `holder`'s balance, or refuses with
    /// `unit.insufficient_funds` and changes nothing.
    pub fn debit(&mut self, unit: &str, holder: &str, amount: u64) -> Result<(), TxError> {
        let key = (unit.to_owned(), holder.to_owned());
        let balance = self.balances.get(&key).copied().unwrap_or(0);
        let Some(left) = balance.checked_sub(amount) else {
            return Err(TxError::new(
                ErrorCode::Invalid("unit.insufficient_funds"),
                format!("the balance of {holder} in {unit} is below {amount}"),
            ));
        };
        if left == 0 {
            self.balances.remove(&key);
        } else {
            self.balances.insert(key, left);
        }
        Ok(())
    }

    /// Whether `amount` can be credited to `holder` without overflow.
    pub fn can_credit(&self, unit: &str, holder: &str, amount: u64) -> bool {
        self.balance(unit, holder).checked_add(amount).is_some()
    }

    /// Adds `amount` to `holder`'s balance, or refuses with
    /// `unit.overflow` and changes nothing. Funds credited come from a
    /// debit or an escrow of the same unit, whose supply is a `u64`, so
    /// this never refuses in a consistent state; it is checked anyway.
    pub fn credit(&mut self, unit: &str, holder: &str, amount: u64) -> Result<(), TxError> {
        let key = (unit.to_owned(), holder.to_owned());
        let balance = self.balances.get(&key).copied().unwrap_or(0);
        let sum = balance.checked_add(amount).ok_or_else(overflow)?;
        if sum > 0 {
            self.balances.insert(key, sum);
        }
        Ok(())
    }
}

fn overflow() -> TxError {
    TxError::new(
        ErrorCode::Invalid("unit.overflow"),
        format!("a unit's supply is at most {MAX_AMOUNT}"),
    )
}

/// Whether the key signing as `signer` acts for `party`: it is the party,
/// or `party` is a registered organization whose admin key signs.
pub fn acts_for(state: &LedgerState, signer: &str, party: &str) -> bool {
    signer == party
        || state
            .participants
            .org(party)
            .is_some_and(|org| org.admin == signer)
}

/// An amount: 1 to [`MAX_AMOUNT`].
pub fn check_amount(field: &str, amount: u64) -> Result<(), String> {
    if amount == 0 || amount > MAX_AMOUNT {
        Err(format!("{field} must be from 1 to {MAX_AMOUNT}"))
    } else {
        Ok(())
    }
}

impl TxBody for UnitRegister {
    const TYPE: &'static str = UNIT_REGISTER;

    fn example() -> Self {
        UnitRegister {
            unit: "gluco-token".into(),
            issuer: example_did(2),
        }
    }

    fn check(&self) -> Result<(), String> {
        check_code("unit", &self.unit)?;
        check_did("issuer", &self.issuer)
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        if !state.participants.is_governance(&cx.signer) {
            return Err(TxError::new(
                ErrorCode::Forbidden("unit.not_governance"),
                "only the network's governance key registers units",
            ));
        }
        if state.accounts.units.contains_key(&self.unit) {
            return Err(TxError::new(
                ErrorCode::Conflict("unit.exists"),
                format!("unit {:?} is already registered", self.unit),
            ));
        }
        state.accounts.units.insert(
            self.unit,
            Unit {
                issuer: self.issuer,
                supply: 0,
                registered_at: cx.index,
            },
        );
        Ok(Effect::None)
    }
}

impl TxBody for UnitMint {
    const TYPE: &'static str = UNIT_MINT;

    fn example() -> Self {
        UnitMint {
            unit: "gluco-token".into(),
            to: example_did(4),
            amount: 1_000,
        }
    }

    fn check(&self) -> Result<(), String> {
        check_code("unit", &self.unit)?;
        check_did("to", &self.to)?;
        check_amount("amount", self.amount)
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        let unit = state.accounts.require_unit(&self.unit)?;
        if !acts_for(state, &cx.signer, &unit.issuer) {
            return Err(TxError::new(
                ErrorCode::Forbidden("unit.not_issuer"),
                format!("only {} mints {}", unit.issuer, self.unit),
            ));
        }
        let supply = unit
            .supply
            .checked_add(self.amount)
            .filter(|s| *s <= MAX_AMOUNT)
            .ok_or_else(overflow)?;
        // The supply bounds every balance, so this credit cannot overflow.
        state.accounts.credit(&self.unit, &self.to, self.amount)?;
        if let Some(unit) = state.accounts.units.get_mut(&self.unit) {
            unit.supply = supply;
        }
        Ok(Effect::None)
    }
}

impl TxBody for UnitTransfer {
    const TYPE: &'static str = UNIT_TRANSFER;

    fn example() -> Self {
        UnitTransfer {
            unit: "gluco-token".into(),
            from: None,
            to: example_did(3),
            amount: 10,
        }
    }

    fn check(&self) -> Result<(), String> {
        check_code("unit", &self.unit)?;
        if let Some(from) = &self.from {
            check_did("from", from)?;
        }
        check_did("to", &self.to)?;
        check_amount("amount", self.amount)?;
        if self.from.as_deref() == Some(self.to.as_str()) {
            return Err("from and to must differ".into());
        }
        Ok(())
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        state.accounts.require_unit(&self.unit)?;
        let from = self.from.clone().unwrap_or_else(|| cx.signer.clone());
        if !acts_for(state, &cx.signer, &from) {
            return Err(TxError::new(
                ErrorCode::Forbidden("unit.not_holder"),
                format!("only the holder of {from}'s balance transfers from it"),
            ));
        }
        if from == self.to {
            return Err(TxError::new(
                ErrorCode::Invalid("unit.self_transfer"),
                "a transfer to oneself changes nothing",
            ));
        }
        if !state.accounts.can_credit(&self.unit, &self.to, self.amount) {
            return Err(overflow());
        }
        state.accounts.debit(&self.unit, &from, self.amount)?;
        state.accounts.credit(&self.unit, &self.to, self.amount)?;
        Ok(Effect::None)
    }
}
