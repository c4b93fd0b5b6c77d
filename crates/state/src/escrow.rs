//! Escrows: funds of one unit locked by their funder until a release
//! condition is met, with a refund path back to the funder after a
//! deadline; and the ledger's clock. Types: `escrow.open`,
//! `escrow.release`, `escrow.refund`, `clock.tick`.
//!
//! ## Conditions
//!
//! An escrow's `condition` is one of (JSON, tagged by `kind`):
//!
//! - `{"kind":"milestone","id":"<code>"}`: released to the beneficiary, in
//!   the same transaction, when any domain's rule emits
//!   [`MilestoneReached`] with that `id` (through the registry's reactions:
//!   a domain declares `r.add::<T>().emits::<MilestoneReached>()` and its
//!   rule calls `cx.emit(MilestoneReached { id })`). Whoever can make a
//!   rule emit an id releases every escrow waiting on it, so a domain that
//!   emits must only emit ids in a namespace it controls (for example
//!   `<trial id>/<participant pseudonym>/<rule>`), and a funder chooses an
//!   id whose emitter it trusts.
//! - `{"kind":"deadline","at":<unix seconds>}`: released to the
//!   beneficiary by an `escrow.release` signed by the funder or the
//!   beneficiary once the ledger's clock has reached `at`.
//! - `{"kind":"proof","program":"<program id>"}`: a care program's fund
//!   ([`crate::programs`]): each accepted proof of the program's goal draws
//!   the program's reward from it, once per credential and period.
//! - `{"kind":"sharing","program":"<programme id>"}`: a research-sharing
//!   programme's fund ([`crate::sharing`]): each accepted claim draws what
//!   the patient's grant earned, from one or more of these escrows.
//!
//! Every escrow has a `refund_after` time: from then on (by the ledger's
//! clock) its funder may take back what is still locked with
//! `escrow.refund`. An escrow ends once, released or refunded; a release
//! before the condition, by anyone else, or of an ended escrow is refused.
//!
//! ## Time
//!
//! Rules never read a wall clock. The ledger's clock is the latest time a
//! custodian (a node key of the network) attested with `clock.tick`, the
//! way `access` entries carry a custodian-attested time; it only moves
//! forward. A node ticks before it submits what depends on time.

use imbl::{HashMap, OrdSet};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use hygeia_ledger::{ErrorCode, TxError};

use super::accounts::{acts_for, check_amount};
use super::registry::{example_did, Cx, Registry, TxBody};
use super::txs::{check_code, check_did, check_hex32};
use super::{Effect, LedgerState};

pub const ESCROW_OPEN: &str = "escrow.open";
pub const ESCROW_RELEASE: &str = "escrow.release";
pub const ESCROW_REFUND: &str = "escrow.refund";
pub const CLOCK_TICK: &str = "clock.tick";

/// Most escrows waiting on one milestone id at once: what one milestone
/// event can cost to release.
pub const MAX_ESCROWS_PER_MILESTONE: usize = 256;

/// Registers the types of this domain and its reaction to milestones.
pub(crate) fn register(r: &mut Registry) {
    r.add::<EscrowOpen>();
    r.add::<EscrowRelease>();
    r.add::<EscrowRefund>();
    r.add::<ClockTick>();
    r.on::<MilestoneReached>(release_on_milestone);
}

/// The event that releases escrows whose condition is
/// `{"kind":"milestone","id":…}` with this `id`. Public so that other
/// domains emit it: register the emitting type with
/// `r.add::<T>().emits::<MilestoneReached>()` and call
/// `cx.emit(MilestoneReached { id })` in its rule, after its own change.
/// Every locked escrow waiting on `id` is released to its beneficiary in
/// the same transaction; an id no escrow waits on releases nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MilestoneReached {
    /// A code (`[a-z0-9._-]`, 1 to 64 characters, or `/`-separated codes up
    /// to 200 characters), in a namespace the emitting domain controls.
    pub id: String,
}

/// When an escrow's funds go to its beneficiary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// When a domain emits [`MilestoneReached`] with this id.
    Milestone { id: String },
    /// When the ledger's clock reaches `at` (Unix seconds).
    Deadline { at: i64 },
    /// Drawn by accepted proofs of the care program `program`.
    Proof { program: String },
    /// Drawn by accepted claims of the research-sharing programme
    /// `program`.
    Sharing { program: String },
}

/// Longest milestone id.
pub const MAX_MILESTONE_ID_LEN: usize = 200;

/// Whether `id` is a milestone id: `/`-separated codes.
pub fn check_milestone_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_MILESTONE_ID_LEN {
        return Err(format!(
            "a milestone id is 1 to {MAX_MILESTONE_ID_LEN} characters"
        ));
    }
    for part in id.split('/') {
        check_code("condition.id", part)?;
    }
    Ok(())
}

impl Condition {
    fn check(&self) -> Result<(), String> {
        match self {
            Condition::Milestone { id } => check_milestone_id(id),
            Condition::Deadline { at } => {
                if *at < 0 {
                    Err("condition.at must be a Unix time".into())
                } else {
                    Ok(())
                }
            }
            Condition::Proof { program } | Condition::Sharing { program } => {
                check_hex32("condition.program", program)
            }
        }
    }
}

/// `escrow.open`, signed by the funder: locks `amount` of `unit` from the
/// funder's balance until `condition` releases it to `beneficiary`, or
/// the funder takes it back after `refund_after`. The escrow's id is the
/// transaction's leaf hash (hex).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EscrowOpen {
    pub unit: String,
    /// Positive, in the unit's smallest denomination.
    pub amount: u64,
    /// Whose funds (default: the signer; a did:web organization whose
    /// admin key signs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub funder: Option<String>,
    /// Who receives the funds; absent for a `proof` condition (the
    /// provers are paid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beneficiary: Option<String>,
    pub condition: Condition,
    /// From this time (Unix seconds, by the ledger's clock) the funder may
    /// take back what is still locked.
    pub refund_after: i64,
}

/// `escrow.release`, signed by the funder or the beneficiary of a
/// `deadline` escrow whose time has come: pays the beneficiary.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EscrowRelease {
    /// The escrow's id (its `escrow.open` leaf hash).
    pub escrow: String,
}

/// `escrow.refund`, signed by the funder after `refund_after`: returns
/// what is still locked.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EscrowRefund {
    pub escrow: String,
}

/// `clock.tick`, signed by a custodian key: the ledger's clock moves
/// forward to `time` (Unix seconds).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClockTick {
    pub time: i64,
}

/// Where an escrow stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscrowStatus {
    Locked,
    Released,
    Refunded,
}

/// An escrow.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Escrow {
    pub funder: String,
    pub unit: String,
    /// What it locked when opened.
    pub amount: u64,
    /// What is still locked.
    pub locked: u64,
    pub beneficiary: Option<String>,
    pub condition: Condition,
    pub refund_after: i64,
    pub status: EscrowStatus,
    /// Leaf index of its `escrow.open`.
    pub opened_at: u64,
    /// Leaf index of the transaction that ended it.
    pub ended_at: Option<u64>,
}

/// Escrows and the ledger's clock. Persistent maps (`imbl`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Escrows {
    /// Latest custodian-attested time (Unix seconds); 0 before any tick.
    pub clock: i64,
    #[serde(with = "crate::snapshot::sorted_map")]
    escrows: HashMap<String, Escrow>,
    /// milestone id → the locked escrows waiting on it.
    #[serde(with = "crate::snapshot::sorted_map")]
    milestones: HashMap<String, OrdSet<String>>,
    /// program (care or research-sharing) id → its locked escrows.
    #[serde(with = "crate::snapshot::sorted_map")]
    funds: HashMap<String, OrdSet<String>>,
}

impl Escrows {
    pub fn get(&self, id: &str) -> Option<&Escrow> {
        self.escrows.get(id)
    }

    /// Every escrow, sorted by id.
    pub fn all(&self) -> Vec<(&str, &Escrow)> {
        let mut all: Vec<(&str, &Escrow)> =
            self.escrows.iter().map(|(k, v)| (k.as_str(), v)).collect();
        all.sort_by(|a, b| a.0.cmp(b.0));
        all
    }

    /// What the escrows of `unit` still lock, summed.
    pub fn total_locked(&self, unit: &str) -> u128 {
        self.escrows
            .values()
            .filter(|e| e.unit == unit)
            .map(|e| u128::from(e.locked))
            .sum()
    }

    /// The locked escrows funding `program`, sorted by id.
    pub fn funds_of(&self, program: &str) -> Vec<&str> {
        self.funds
            .get(program)
            .map(|ids| ids.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// What `program`'s escrows still lock.
    pub fn program_balance(&self, program: &str) -> u64 {
        self.funds_of(program)
            .iter()
            .filter_map(|id| self.escrows.get(*id))
            .fold(0u64, |sum, e| sum.saturating_add(e.locked))
    }

    fn require(&self, id: &str) -> Result<&Escrow, TxError> {
        self.escrows.get(id).ok_or_else(|| {
            TxError::new(
                ErrorCode::NotFound("escrow.unknown"),
                format!("no escrow {id}"),
            )
        })
    }

    /// Ends escrow `id`: marks it, and drops it from the indices.
    fn end(&mut self, id: &str, status: EscrowStatus, index: u64) {
        let Some(escrow) = self.escrows.get_mut(id) else {
            return;
        };
        escrow.locked = 0;
        escrow.status = status;
        escrow.ended_at = Some(index);
        let condition = escrow.condition.clone();
        match condition {
            Condition::Milestone { id: milestone } => {
                if let Some(waiting) = self.milestones.get_mut(&milestone) {
                    waiting.remove(id);
                    if waiting.is_empty() {
                        self.milestones.remove(&milestone);
                    }
                }
            }
            Condition::Proof { program } | Condition::Sharing { program } => {
                if let Some(funds) = self.funds.get_mut(&program) {
                    funds.remove(id);
                    if funds.is_empty() {
                        self.funds.remove(&program);
                    }
                }
            }
            Condition::Deadline { .. } => {}
        }
    }
}

fn settled(id: &str, escrow: &Escrow) -> TxError {
    TxError::new(
        ErrorCode::Conflict("escrow.settled"),
        format!("escrow {id} is already {:?}", escrow.status).to_lowercase(),
    )
}

/// Pays the beneficiary everything still locked in escrow `id`, and ends
/// it (released). Refuses an ended escrow.
fn release(state: &mut LedgerState, id: &str, index: u64) -> Result<(), TxError> {
    let escrow = state.escrows.require(id)?;
    if escrow.status != EscrowStatus::Locked {
        return Err(settled(id, escrow));
    }
    let (unit, locked) = (escrow.unit.clone(), escrow.locked);
    let Some(beneficiary) = escrow.beneficiary.clone() else {
        return Err(TxError::new(
            ErrorCode::Invalid("escrow.no_beneficiary"),
            format!("escrow {id} has no beneficiary"),
        ));
    };
    state.accounts.credit(&unit, &beneficiary, locked)?;
    state.escrows.end(id, EscrowStatus::Released, index);
    Ok(())
}

/// Draws `amount` from `program`'s escrows (the first one, by id, that
/// still locks enough) and pays it to `to`; an escrow drawn empty is
/// released. Refuses with `program.unfunded` when none locks enough.
pub(crate) fn draw(
    state: &mut LedgerState,
    program: &str,
    unit: &str,
    amount: u64,
    to: &str,
    index: u64,
) -> Result<String, TxError> {
    let found = state.escrows.funds_of(program).into_iter().find(|id| {
        state.escrows.escrows.get(*id).is_some_and(|e| {
            e.status == EscrowStatus::Locked && e.unit == unit && e.locked >= amount
        })
    });
    let Some(id) = found.map(str::to_owned) else {
        return Err(TxError::new(
            ErrorCode::Conflict("program.unfunded"),
            format!("no escrow of program {program} locks {amount} {unit}"),
        ));
    };
    state.accounts.credit(unit, to, amount)?;
    let emptied = match state.escrows.escrows.get_mut(&id) {
        Some(escrow) => {
            escrow.locked -= amount;
            escrow.locked == 0
        }
        None => false,
    };
    if emptied {
        state.escrows.end(&id, EscrowStatus::Released, index);
    }
    Ok(id)
}

/// Draws `amount` from `program`'s escrows of `unit`, in id order, as
/// many as it takes, and pays it to `to`; escrows drawn empty are
/// released. All or nothing: refuses with `sharing.unfunded`, and changes
/// nothing, when they lock less than `amount` together.
pub(crate) fn draw_total(
    state: &mut LedgerState,
    program: &str,
    unit: &str,
    amount: u64,
    to: &str,
    index: u64,
) -> Result<(), TxError> {
    let sources: Vec<(String, u64)> = state
        .escrows
        .funds_of(program)
        .into_iter()
        .filter_map(|id| {
            let e = state.escrows.escrows.get(id)?;
            (e.status == EscrowStatus::Locked && e.unit == unit && e.locked > 0)
                .then(|| (id.to_owned(), e.locked))
        })
        .collect();
    let available = sources
        .iter()
        .fold(0u64, |sum, (_, locked)| sum.saturating_add(*locked));
    if available < amount {
        return Err(TxError::new(
            ErrorCode::Conflict("sharing.unfunded"),
            format!("programme {program} holds {available} {unit}; {amount} is owed"),
        ));
    }
    state.accounts.credit(unit, to, amount)?;
    let mut rest = amount;
    for (id, locked) in sources {
        if rest == 0 {
            break;
        }
        let take = rest.min(locked);
        rest -= take;
        if let Some(escrow) = state.escrows.escrows.get_mut(&id) {
            escrow.locked -= take;
        }
        if take == locked {
            state.escrows.end(&id, EscrowStatus::Released, index);
        }
    }
    Ok(())
}

/// The reaction to [`MilestoneReached`]: every escrow waiting on the id is
/// released.
fn release_on_milestone(
    state: &mut LedgerState,
    cx: &mut Cx<'_>,
    event: &MilestoneReached,
) -> Result<(), TxError> {
    let waiting: Vec<String> = state
        .escrows
        .milestones
        .get(&event.id)
        .map(|ids| ids.iter().cloned().collect())
        .unwrap_or_default();
    for id in waiting {
        release(state, &id, cx.index)?;
    }
    Ok(())
}

impl TxBody for EscrowOpen {
    const TYPE: &'static str = ESCROW_OPEN;

    fn example() -> Self {
        EscrowOpen {
            unit: "gluco-token".into(),
            amount: 100,
            funder: None,
            beneficiary: Some(example_did(4)),
            condition: Condition::Milestone {
                id: "trial-1/visit-2".into(),
            },
            refund_after: 1_900_000_000,
        }
    }

    fn check(&self) -> Result<(), String> {
        check_code("unit", &self.unit)?;
        check_amount("amount", self.amount)?;
        if let Some(funder) = &self.funder {
            check_did("funder", funder)?;
        }
        self.condition.check()?;
        match (&self.condition, &self.beneficiary) {
            (Condition::Proof { .. }, Some(_)) => {
                return Err("a proof escrow pays its provers: no beneficiary".into())
            }
            (Condition::Sharing { .. }, Some(_)) => {
                return Err("a sharing escrow pays its claimants: no beneficiary".into())
            }
            (Condition::Proof { .. } | Condition::Sharing { .. }, None) => {}
            (_, None) => return Err("beneficiary is required for this condition".into()),
            (_, Some(beneficiary)) => check_did("beneficiary", beneficiary)?,
        }
        if let Condition::Deadline { at } = self.condition {
            if self.refund_after <= at {
                return Err("refund_after must come after the release deadline".into());
            }
        }
        Ok(())
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        state.accounts.require_unit(&self.unit)?;
        let funder = self.funder.clone().unwrap_or_else(|| cx.signer.clone());
        if !acts_for(state, &cx.signer, &funder) {
            return Err(TxError::new(
                ErrorCode::Forbidden("escrow.not_funder"),
                format!("only the holder of {funder}'s balance locks it"),
            ));
        }
        if self.refund_after <= state.escrows.clock {
            return Err(TxError::new(
                ErrorCode::Invalid("escrow.refund_in_past"),
                "refund_after is already past by the ledger's clock",
            ));
        }
        match &self.condition {
            Condition::Milestone { id } => {
                let waiting = state.escrows.milestones.get(id).map_or(0, OrdSet::len);
                if waiting >= MAX_ESCROWS_PER_MILESTONE {
                    return Err(TxError::new(
                        ErrorCode::Conflict("escrow.milestone_full"),
                        format!("{MAX_ESCROWS_PER_MILESTONE} escrows already wait on {id}"),
                    ));
                }
            }
            Condition::Proof { program } => {
                let p = state.programs.get(program).ok_or_else(|| {
                    TxError::new(
                        ErrorCode::NotFound("program.unknown"),
                        format!("no care program {program}"),
                    )
                })?;
                check_program_funder(&p.org, &p.unit, &funder, &self.unit, "organization")?;
            }
            Condition::Sharing { program } => {
                let p = state.sharing.get(program).ok_or_else(|| {
                    TxError::new(
                        ErrorCode::NotFound("sharing.unknown"),
                        format!("no research-sharing programme {program}"),
                    )
                })?;
                check_program_funder(&p.researcher, &p.unit, &funder, &self.unit, "researcher")?;
            }
            Condition::Deadline { .. } => {}
        }
        state.accounts.debit(&self.unit, &funder, self.amount)?;
        let id = hex::encode(cx.tx.leaf_hash().0);
        match &self.condition {
            Condition::Milestone { id: milestone } => {
                state
                    .escrows
                    .milestones
                    .entry(milestone.clone())
                    .or_default()
                    .insert(id.clone());
            }
            Condition::Proof { program } | Condition::Sharing { program } => {
                state
                    .escrows
                    .funds
                    .entry(program.clone())
                    .or_default()
                    .insert(id.clone());
            }
            Condition::Deadline { .. } => {}
        }
        state.escrows.escrows.insert(
            id,
            Escrow {
                funder,
                unit: self.unit,
                amount: self.amount,
                locked: self.amount,
                beneficiary: self.beneficiary,
                condition: self.condition,
                refund_after: self.refund_after,
                status: EscrowStatus::Locked,
                opened_at: cx.index,
                ended_at: None,
            },
        );
        Ok(Effect::None)
    }
}

impl TxBody for EscrowRelease {
    const TYPE: &'static str = ESCROW_RELEASE;

    fn example() -> Self {
        EscrowRelease {
            escrow: "ab".repeat(32),
        }
    }

    fn check(&self) -> Result<(), String> {
        check_hex32("escrow", &self.escrow)
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        let escrow = state.escrows.require(&self.escrow)?;
        let party = acts_for(state, &cx.signer, &escrow.funder)
            || escrow
                .beneficiary
                .as_deref()
                .is_some_and(|b| acts_for(state, &cx.signer, b));
        if !party {
            return Err(TxError::new(
                ErrorCode::Forbidden("escrow.not_party"),
                "only the funder or the beneficiary releases an escrow",
            ));
        }
        if escrow.status != EscrowStatus::Locked {
            return Err(settled(&self.escrow, escrow));
        }
        match escrow.condition {
            Condition::Deadline { at } if state.escrows.clock >= at => {}
            Condition::Deadline { at } => {
                return Err(TxError::new(
                    ErrorCode::Conflict("escrow.condition_unmet"),
                    format!(
                        "escrow {} is released at {at}; the ledger's clock is at {}",
                        self.escrow, state.escrows.clock
                    ),
                ))
            }
            _ => {
                return Err(TxError::new(
                    ErrorCode::Conflict("escrow.condition_unmet"),
                    format!(
                        "escrow {} is released by its milestone or by proofs, not by hand",
                        self.escrow
                    ),
                ))
            }
        }
        release(state, &self.escrow, cx.index)?;
        Ok(Effect::None)
    }
}

impl TxBody for EscrowRefund {
    const TYPE: &'static str = ESCROW_REFUND;

    fn example() -> Self {
        EscrowRefund {
            escrow: "ab".repeat(32),
        }
    }

    fn check(&self) -> Result<(), String> {
        check_hex32("escrow", &self.escrow)
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        let escrow = state.escrows.require(&self.escrow)?;
        if !acts_for(state, &cx.signer, &escrow.funder) {
            return Err(TxError::new(
                ErrorCode::Forbidden("escrow.not_funder"),
                "only the funder takes an escrow back",
            ));
        }
        if escrow.status != EscrowStatus::Locked {
            return Err(settled(&self.escrow, escrow));
        }
        if state.escrows.clock < escrow.refund_after {
            return Err(TxError::new(
                ErrorCode::Conflict("escrow.refund_too_early"),
                format!(
                    "escrow {} can be taken back from {}; the ledger's clock is at {}",
                    self.escrow, escrow.refund_after, state.escrows.clock
                ),
            ));
        }
        let (unit, funder, locked) = (escrow.unit.clone(), escrow.funder.clone(), escrow.locked);
        state.accounts.credit(&unit, &funder, locked)?;
        state
            .escrows
            .end(&self.escrow, EscrowStatus::Refunded, cx.index);
        Ok(Effect::None)
    }
}

impl TxBody for ClockTick {
    const TYPE: &'static str = CLOCK_TICK;

    fn example() -> Self {
        ClockTick {
            time: 1_800_000_000,
        }
    }

    fn check(&self) -> Result<(), String> {
        if self.time <= 0 {
            return Err("time must be a positive Unix time".into());
        }
        Ok(())
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        state.require_custodian(cx.index, cx.key, &cx.signer, CLOCK_TICK)?;
        if self.time <= state.escrows.clock {
            return Err(TxError::new(
                ErrorCode::Conflict("clock.not_later"),
                format!("the ledger's clock is already at {}", state.escrows.clock),
            ));
        }
        state.escrows.clock = self.time;
        Ok(Effect::None)
    }
}

/// A programme (a care program or a research-sharing one) is funded only
/// by its `owner` (named `role` in the refusal), in its own unit.
fn check_program_funder(
    owner: &str,
    program_unit: &str,
    funder: &str,
    unit: &str,
    role: &str,
) -> Result<(), TxError> {
    if owner != funder {
        return Err(TxError::new(
            ErrorCode::Forbidden("escrow.not_program_owner"),
            format!("only the programme's {role} funds it"),
        ));
    }
    if program_unit != unit {
        return Err(TxError::new(
            ErrorCode::Invalid("escrow.wrong_unit"),
            format!("the programme pays in {program_unit}"),
        ));
    }
    Ok(())
}
