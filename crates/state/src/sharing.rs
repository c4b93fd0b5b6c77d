//! Research-sharing programmes: a researcher (or an organization) pays
//! patients who share their data for research, by how long their consent
//! ran and by how often their data was used, computed from the ledger.
//! Types: `sharing.publish`, `sharing.claim` (docs/sharing.md).
//!
//! A programme states a unit, `per_day` and `per_access`; escrows with
//! condition `{"kind":"sharing","program":"<id>"}` fund it. A patient (or
//! a registered delegate) claims for one of their `HRESCH` grants to the
//! programme's researcher and is paid
//!
//! ```text
//! per_day    × whole days the grant was active (once it was used), from
//!              max(not_before, start, the end of the days already paid
//!                  to this patient by this programme)
//!              to min(ledger clock, not_after, revocation time)
//! + per_access × counted accesses under the grant not yet paid
//! ```
//!
//! **Counted accesses.** When an `access` entry is applied (a permitted
//! decision with purpose `HRESCH`), the first grant it cites that is an
//! `HRESCH` grant of that patient is credited one access — but at most one
//! a day (the access's custodian-attested time, in UTC days) for each
//! (grantee, patient) pair. A researcher reading a patient's records a
//! thousand times a day counts once that day, and a patient holding many
//! grants to the same researcher counts once too: no reading pattern can
//! make a grant earn more than `per_access` a day. An access that arrives
//! with an earlier day than one already counted is not counted.
//!
//! **Days** count only once the researcher has used the grant (at least one
//! counted access): anyone can make a fresh DID and grant the researcher
//! consent, but only the researcher's reads make a grant earn. From then
//! on, every whole day of the grant in the window is paid.
//!
//! **Days** are paid once per (programme, patient), whatever the grant: the
//! programme records up to when it paid each patient's days, and a claim
//! under another grant starts from there, so overlapping grants cannot
//! pay the same day twice. Only whole days are paid; the rest of a day
//! carries over to the next claim.
//!
//! **Nothing twice.** Per (programme, grant) the state records the
//! accesses paid; per (programme, patient) the time the days were paid up
//! to. A claim pays only the increment since, and refuses with
//! `sharing.nothing_owed` when there is none.
//!
//! **A fund too small** refuses the claim (`sharing.unfunded`) and changes
//! nothing: what is owed stays owed, and the claim succeeds once the
//! researcher tops the fund up. Paying part would lose the rest, since the
//! claim records everything it paid for.

use imbl::HashMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use hygeia_ledger::{ErrorCode, TxError};
use hygeia_policy::{Grant, PurposeOfUse};

use super::accounts::{acts_for, MAX_AMOUNT};
use super::registry::{example_did, Cx, Registry, TxBody};
use super::txs::{check_code, check_did, check_hex32, Access, Verdict};
use super::{Effect, LedgerState};

pub const SHARING_PUBLISH: &str = "sharing.publish";
pub const SHARING_CLAIM: &str = "sharing.claim";

/// A day, in seconds.
pub const DAY_SECS: i64 = 86_400;

/// Registers the types of this domain.
pub(crate) fn register(r: &mut Registry) {
    r.add::<SharingPublish>();
    r.add::<SharingClaim>();
}

/// `sharing.publish`, signed by the researcher (a did:key) or by an
/// organization's admin key for the organization: a research-sharing
/// programme. Its id is the transaction's leaf hash (hex); escrows with
/// condition `{"kind":"sharing","program":"<id>"}` fund it.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SharingPublish {
    /// Who the patients' `HRESCH` grants name as grantee, and who funds
    /// the programme: a did:key, or the did:web of a registered
    /// organization whose admin key signs.
    pub researcher: String,
    /// The unit payouts are made in.
    pub unit: String,
    /// Paid per whole day a covering grant was active (may be 0).
    pub per_day: u64,
    /// Paid per counted access under the grant (may be 0; at most one
    /// access a day counts).
    pub per_access: u64,
    /// No day before this time (Unix seconds) is paid; default: the
    /// ledger's clock when the programme is published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<i64>,
}

/// `sharing.claim`, signed by the patient whose grant it is, or by one of
/// their registered delegates: pays the patient what the grant earned
/// since its last claim.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SharingClaim {
    /// The programme's id.
    pub program: String,
    /// The patient's `HRESCH` grant to the programme's researcher (its
    /// `consent.grant` leaf hash).
    pub grant: String,
}

/// A published programme.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SharingProgram {
    pub researcher: String,
    pub unit: String,
    pub per_day: u64,
    pub per_access: u64,
    /// No day before this time is paid.
    pub start: i64,
    /// Leaf index of its publication.
    pub published_at: u64,
    /// Claims paid so far.
    pub claims: u64,
    /// Total paid so far.
    pub paid: u64,
}

/// What claims under one grant were paid, per programme.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantClaims {
    /// Counted accesses paid for.
    pub accesses: u64,
    /// Whole days paid for.
    pub days: u64,
    /// Total paid.
    pub amount: u64,
    /// Claims paid.
    pub claims: u64,
}

/// What the ledger knows of an `HRESCH` grant's use.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantUsage {
    /// Counted accesses (at most one a day per grantee and patient).
    pub accesses: u64,
    /// The ledger's clock when the grant was revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<i64>,
}

/// What a claim would pay now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Owed {
    /// Days paid from this time…
    pub from: i64,
    /// …for this many whole days.
    pub days: u64,
    /// Counted accesses not yet paid.
    pub accesses: u64,
    /// `per_day × days + per_access × accesses`.
    pub amount: u128,
}

/// Programmes, what they paid, and the use of `HRESCH` grants. Persistent
/// maps (`imbl`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Sharing {
    #[serde(with = "crate::snapshot::sorted_map")]
    programs: HashMap<String, SharingProgram>,
    /// (programme, grant) → what its claims paid.
    #[serde(with = "crate::snapshot::sorted_map")]
    claims: HashMap<(String, String), GrantClaims>,
    /// (programme, patient) → the time the patient's days are paid up to.
    #[serde(with = "crate::snapshot::sorted_map")]
    days_paid: HashMap<(String, String), i64>,
    /// `HRESCH` grant id → its counted accesses and revocation time.
    #[serde(with = "crate::snapshot::sorted_map")]
    usage: HashMap<String, GrantUsage>,
    /// (grantee, patient) → the last UTC day (Unix seconds / 86,400) an
    /// access was counted.
    #[serde(with = "crate::snapshot::sorted_map")]
    counted_day: HashMap<(String, String), i64>,
}

impl Sharing {
    pub fn get(&self, id: &str) -> Option<&SharingProgram> {
        self.programs.get(id)
    }

    /// Every programme, sorted by id.
    pub fn all(&self) -> Vec<(&str, &SharingProgram)> {
        let mut all: Vec<(&str, &SharingProgram)> =
            self.programs.iter().map(|(k, v)| (k.as_str(), v)).collect();
        all.sort_by(|a, b| a.0.cmp(b.0));
        all
    }

    /// What `program`'s claims under `grant` paid.
    pub fn claims_of(&self, program: &str, grant: &str) -> GrantClaims {
        self.claims
            .get(&(program.to_owned(), grant.to_owned()))
            .cloned()
            .unwrap_or_default()
    }

    /// The ledger's record of an `HRESCH` grant's use.
    pub fn usage(&self, grant: &str) -> GrantUsage {
        self.usage.get(grant).cloned().unwrap_or_default()
    }

    /// What a claim under `grant` would pay at `clock`, by the formula in
    /// the module's documentation.
    pub fn owed(
        &self,
        program_id: &str,
        program: &SharingProgram,
        grant: &Grant,
        clock: i64,
    ) -> Owed {
        let usage = self.usage(&grant.id);
        let paid = self.claims_of(program_id, &grant.id);
        let paid_until = self
            .days_paid
            .get(&(program_id.to_owned(), grant.patient.clone()))
            .copied()
            .unwrap_or(i64::MIN);
        let from = grant.not_before.max(program.start).max(paid_until);
        let to = clock
            .min(grant.not_after)
            .min(usage.revoked_at.unwrap_or(i64::MAX));
        // Days count only once the researcher has read under the grant:
        // a grant nobody used earns nothing, so fresh DIDs granting the
        // researcher consent cannot drain the fund.
        let days = if to > from && usage.accesses > 0 {
            u64::try_from((i128::from(to) - i128::from(from)) / i128::from(DAY_SECS)).unwrap_or(0)
        } else {
            0
        };
        let accesses = usage.accesses.saturating_sub(paid.accesses);
        let amount = u128::from(program.per_day) * u128::from(days)
            + u128::from(program.per_access) * u128::from(accesses);
        Owed {
            from,
            days,
            accesses,
            amount,
        }
    }
}

/// Counts a permitted `HRESCH` access for the first `HRESCH` grant of the
/// patient it cites, at most once a day per (grantee, patient). Called by
/// the `access` rule; O(grants cited) map look-ups.
pub(crate) fn note_access(state: &mut LedgerState, access: &Access) {
    if access.decision != Verdict::Permit || access.purpose != PurposeOfUse::Research.code() {
        return;
    }
    let consents = state.policy.consents();
    let Some(grant) = access.grants.iter().find_map(|id| {
        consents
            .get(id)
            .filter(|g| g.purpose == PurposeOfUse::Research && g.patient == access.patient)
    }) else {
        return;
    };
    let (id, pair) = (
        grant.id.clone(),
        (grant.grantee.clone(), grant.patient.clone()),
    );
    let day = access.time.div_euclid(DAY_SECS);
    if state
        .sharing
        .counted_day
        .get(&pair)
        .is_some_and(|last| *last >= day)
    {
        return;
    }
    state.sharing.counted_day.insert(pair, day);
    let usage = state.sharing.usage.entry(id).or_default();
    usage.accesses = usage.accesses.saturating_add(1);
}

/// Records when an `HRESCH` grant was revoked (the ledger's clock). Called
/// by the `consent.revoke` rule after the revocation applied.
pub(crate) fn note_revoked(state: &mut LedgerState, grant: &str) {
    let research = state
        .policy
        .consents()
        .get(grant)
        .is_some_and(|g| g.purpose == PurposeOfUse::Research);
    if research {
        let clock = state.escrows.clock;
        state
            .sharing
            .usage
            .entry(grant.to_owned())
            .or_default()
            .revoked_at = Some(clock);
    }
}

fn check_rate(field: &str, value: u64) -> Result<(), String> {
    if value > MAX_AMOUNT {
        Err(format!("{field} must be at most {MAX_AMOUNT}"))
    } else {
        Ok(())
    }
}

impl TxBody for SharingPublish {
    const TYPE: &'static str = SHARING_PUBLISH;

    fn example() -> Self {
        SharingPublish {
            researcher: example_did(2),
            unit: "share-token".into(),
            per_day: 2,
            per_access: 5,
            start: Some(1_800_000_000),
        }
    }

    fn check(&self) -> Result<(), String> {
        check_did("researcher", &self.researcher)?;
        check_code("unit", &self.unit)?;
        check_rate("per_day", self.per_day)?;
        check_rate("per_access", self.per_access)?;
        if self.per_day == 0 && self.per_access == 0 {
            return Err("per_day or per_access must be positive".into());
        }
        if self.start.is_some_and(|s| s < 0) {
            return Err("start must be a Unix time".into());
        }
        Ok(())
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        if !acts_for(state, &cx.signer, &self.researcher) {
            return Err(TxError::new(
                ErrorCode::Forbidden("sharing.not_researcher"),
                format!(
                    "only {} (or its organization's admin key) publishes its programmes",
                    self.researcher
                ),
            ));
        }
        state.accounts.require_unit(&self.unit)?;
        let id = hex::encode(cx.tx.leaf_hash().0);
        let start = self.start.unwrap_or(state.escrows.clock);
        state.sharing.programs.insert(
            id,
            SharingProgram {
                researcher: self.researcher,
                unit: self.unit,
                per_day: self.per_day,
                per_access: self.per_access,
                start,
                published_at: cx.index,
                claims: 0,
                paid: 0,
            },
        );
        Ok(Effect::None)
    }
}

impl TxBody for SharingClaim {
    const TYPE: &'static str = SHARING_CLAIM;

    fn example() -> Self {
        SharingClaim {
            program: "ab".repeat(32),
            grant: "cd".repeat(32),
        }
    }

    fn check(&self) -> Result<(), String> {
        check_hex32("program", &self.program)?;
        check_hex32("grant", &self.grant)
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        let program = state.sharing.get(&self.program).cloned().ok_or_else(|| {
            TxError::new(
                ErrorCode::NotFound("sharing.unknown"),
                format!("no research-sharing programme {}", self.program),
            )
        })?;
        let consents = state.policy.consents();
        let grant = consents.get(&self.grant).cloned().ok_or_else(|| {
            TxError::new(
                ErrorCode::NotFound("sharing.unknown_grant"),
                format!("no grant {}", self.grant),
            )
        })?;
        if cx.signer != grant.patient && !consents.is_delegate(&grant.patient, &cx.signer) {
            return Err(TxError::new(
                ErrorCode::Forbidden("sharing.not_patient"),
                "a claim is signed by the grant's patient or a registered delegate",
            ));
        }
        if grant.purpose != PurposeOfUse::Research {
            return Err(TxError::new(
                ErrorCode::Invalid("sharing.wrong_purpose"),
                format!(
                    "grant {} is for {}, not HRESCH",
                    self.grant,
                    grant.purpose.code()
                ),
            ));
        }
        if grant.grantee != program.researcher {
            return Err(TxError::new(
                ErrorCode::Invalid("sharing.wrong_grantee"),
                format!(
                    "grant {} names another grantee than the programme's researcher",
                    self.grant
                ),
            ));
        }
        let clock = state.escrows.clock;
        let owed = state.sharing.owed(&self.program, &program, &grant, clock);
        if owed.amount == 0 {
            return Err(TxError::new(
                ErrorCode::Conflict("sharing.nothing_owed"),
                "nothing was earned under this grant since its last claim",
            ));
        }
        let amount = u64::try_from(owed.amount)
            .ok()
            .filter(|a| *a <= MAX_AMOUNT)
            .ok_or_else(|| {
                TxError::new(
                    ErrorCode::Invalid("sharing.too_large"),
                    format!("the payout exceeds {MAX_AMOUNT}"),
                )
            })?;
        super::escrow::draw_total(
            state,
            &self.program,
            &program.unit,
            amount,
            &grant.patient,
            cx.index,
        )?;
        let sharing = &mut state.sharing;
        let key = (self.program.clone(), self.grant.clone());
        let mut paid = sharing.claims.get(&key).cloned().unwrap_or_default();
        paid.accesses = paid.accesses.saturating_add(owed.accesses);
        paid.days = paid.days.saturating_add(owed.days);
        paid.amount = paid.amount.saturating_add(amount);
        paid.claims = paid.claims.saturating_add(1);
        sharing.claims.insert(key, paid);
        if owed.days > 0 {
            // Only whole days are paid: the rest of a day carries over.
            let days = i64::try_from(owed.days).unwrap_or(i64::MAX);
            let until = owed.from.saturating_add(days.saturating_mul(DAY_SECS));
            sharing
                .days_paid
                .insert((self.program.clone(), grant.patient.clone()), until);
        }
        if let Some(p) = sharing.programs.get_mut(&self.program) {
            p.claims = p.claims.saturating_add(1);
            p.paid = p.paid.saturating_add(amount);
        }
        Ok(Effect::None)
    }
}
