//! Care programs: an organization publishes a goal as a range predicate
//! over an issuer-signed attribute ("HbA1c < 7.0 %"), funds it with
//! escrows, and pays a reward to each patient who proves the goal with a
//! zero-knowledge range proof (docs/zk.md), at most once per credential
//! and once per patient and period. Types: `program.publish`,
//! `program.claim`.
//!
//! The proof is verified by the state machine itself, so every node and
//! every auditor replaying the log reaches the same decision. It is bound
//! to the program's challenge ([`challenge`]: the verifier
//! `hygeia:program:<id>` and a nonce derived from the program id), to the
//! credential and to the range; the credential must name its holder, who
//! signs both the presentation and the claim, so a presentation copied off
//! the ledger pays no one else. Nothing about the value reaches the
//! ledger: the credential carries a Pedersen commitment (hiding), the
//! proof says only that the value lies in the program's range.
//!
//! Time (the credential's validity, the claim's period) is the ledger's
//! clock ([`crate::escrow`]): the latest custodian-attested time.

use imbl::{HashMap, HashSet};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use hygeia_credentials::zk::{self, Challenge, Range, RangePresentation, Requirement};
use hygeia_identity::{Did, PublicKey};
use hygeia_ledger::{ErrorCode, TxError};

use super::accounts::{acts_for, check_amount};
use super::registry::{Cx, Registry, TxBody};
use super::txs::{check_code, check_did, check_hex32};
use super::{Effect, LedgerState};

pub const PROGRAM_PUBLISH: &str = "program.publish";
pub const PROGRAM_CLAIM: &str = "program.claim";

/// Most issuers a program accepts.
pub const MAX_PROGRAM_ISSUERS: usize = 16;
/// Shortest period: a day.
pub const MIN_PERIOD_SECS: u64 = 86_400;

/// Registers the types of this domain.
pub(crate) fn register(r: &mut Registry) {
    r.add::<ProgramPublish>();
    r.add::<ProgramClaim>();
}

/// A range of fixed-point values, closed below and open above; at least
/// one side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GoalRange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_inclusive: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_exclusive: Option<u64>,
}

impl GoalRange {
    pub fn to_range(self) -> Result<Range, String> {
        let range = match (self.min_inclusive, self.max_exclusive) {
            (Some(min), Some(max)) => Range::between(min, max),
            (Some(min), None) => Ok(Range::at_least(min)),
            (None, Some(max)) => Range::below(max),
            (None, None) => return Err("range needs min_inclusive or max_exclusive".into()),
        };
        range.map_err(|e| format!("range: {e}"))
    }
}

/// `program.publish`, signed by the organization's admin key (or a did:key
/// for itself): a care program's goal, reward and period. Its id is the
/// transaction's leaf hash (hex); escrows with condition
/// `{"kind":"proof","program":"<id>"}` fund it.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProgramPublish {
    /// The organization running the program (pays, from its escrows).
    pub org: String,
    /// The unit rewards are paid in.
    pub unit: String,
    /// Paid per accepted claim (positive).
    pub reward: u64,
    /// The attribute the goal is about, e.g. `hba1c-percent-x10`.
    pub attribute: String,
    /// The attribute's LOINC code, e.g. `4548-4`, if it must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loinc: Option<String>,
    /// The goal, in the attribute's fixed-point unit (HbA1c < 7.0 %:
    /// `{"max_exclusive": 70}`).
    pub range: GoalRange,
    /// Issuers whose credentials count: did:key, or the did:web of a
    /// registered organization (its admin key signs).
    pub issuers: Vec<String>,
    /// When the first period starts (Unix seconds).
    pub start: i64,
    /// Length of a period: a patient is paid at most once per period.
    pub period_secs: u64,
}

/// `program.claim`, signed by the patient the credential names as holder:
/// a zero-knowledge proof that their attribute meets the program's goal.
/// Pays the program's reward from its escrows, once per credential and
/// once per patient and period.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProgramClaim {
    /// The program's id.
    pub program: String,
    /// The range presentation (`hygeia-range-presentation-v1`, JSON text),
    /// made for the program's challenge.
    pub presentation: String,
}

/// A published program.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Program {
    pub org: String,
    pub unit: String,
    pub reward: u64,
    pub attribute: String,
    pub loinc: Option<String>,
    pub range: GoalRange,
    pub issuers: Vec<String>,
    pub start: i64,
    pub period_secs: u64,
    /// Leaf index of its publication.
    pub published_at: u64,
    /// Claims paid so far.
    pub claims: u64,
}

impl Program {
    /// The period `time` falls in, if the program has started.
    pub fn period_at(&self, time: i64) -> Option<u64> {
        let since = u64::try_from(time.checked_sub(self.start)?).ok()?;
        since.checked_div(self.period_secs)
    }
}

/// The challenge a program's claims answer: verifier
/// `hygeia:program:<id>`, nonce SHA-256 of `hygeia.program.v1\0` and the id.
pub fn challenge(program: &str) -> Challenge {
    let mut hash = Sha256::new();
    hash.update(b"hygeia.program.v1\0");
    hash.update(program.as_bytes());
    Challenge {
        verifier: format!("hygeia:program:{program}"),
        nonce: hash.finalize().into(),
    }
}

/// Programs and what they paid. Persistent maps (`imbl`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Programs {
    #[serde(with = "crate::snapshot::sorted_map")]
    programs: HashMap<String, Program>,
    /// (program, SHA-256 of the signed credential, hex): credentials paid.
    #[serde(with = "crate::snapshot::sorted_set")]
    credentials: HashSet<(String, String)>,
    /// (program, holder, period): patients paid in a period.
    #[serde(with = "crate::snapshot::sorted_set")]
    periods: HashSet<(String, String, u64)>,
}

impl Programs {
    pub fn get(&self, id: &str) -> Option<&Program> {
        self.programs.get(id)
    }

    /// Every program, sorted by id.
    pub fn all(&self) -> Vec<(&str, &Program)> {
        let mut all: Vec<(&str, &Program)> =
            self.programs.iter().map(|(k, v)| (k.as_str(), v)).collect();
        all.sort_by(|a, b| a.0.cmp(b.0));
        all
    }

    /// Whether the credential with this digest (hex) was paid by `program`.
    pub fn credential_paid(&self, program: &str, digest: &str) -> bool {
        self.credentials
            .contains(&(program.to_owned(), digest.to_owned()))
    }
}

/// How far behind real time the ledger's clock may be when a claim is
/// checked: a credential issued up to this long after the last tick is
/// already valid.
pub const CLOCK_LAG_SECS: u64 = 300;

/// The key `issuer` signs credentials with now: a did:key's own, or a
/// registered organization's admin key.
fn issuer_key(state: &LedgerState, issuer: &str) -> Option<PublicKey> {
    let key = if issuer.starts_with("did:key:") {
        issuer
    } else {
        state.participants.org(issuer)?.admin.as_str()
    };
    Did::parse_cached(key).ok().map(|did| *did.public_key())
}

impl TxBody for ProgramPublish {
    const TYPE: &'static str = PROGRAM_PUBLISH;

    fn example() -> Self {
        ProgramPublish {
            org: "did:web:care.example".into(),
            unit: "gluco-token".into(),
            reward: 50,
            attribute: zk::hba1c::HBA1C_ATTRIBUTE.into(),
            loinc: Some(zk::hba1c::HBA1C_LOINC.into()),
            range: GoalRange {
                min_inclusive: None,
                max_exclusive: Some(70),
            },
            issuers: vec![super::registry::example_did(5)],
            start: 1_800_000_000,
            period_secs: 90 * 86_400,
        }
    }

    fn check(&self) -> Result<(), String> {
        check_did("org", &self.org)?;
        check_code("unit", &self.unit)?;
        check_amount("reward", self.reward)?;
        let range = self.range.to_range()?;
        Requirement::new(&self.attribute, self.loinc.as_deref(), range)
            .map_err(|e| format!("attribute or loinc: {e}"))?;
        if self.issuers.is_empty() || self.issuers.len() > MAX_PROGRAM_ISSUERS {
            return Err(format!("issuers: 1 to {MAX_PROGRAM_ISSUERS} DIDs"));
        }
        for issuer in &self.issuers {
            check_did("issuers[]", issuer)?;
        }
        if self.start < 0 {
            return Err("start must be a Unix time".into());
        }
        if self.period_secs < MIN_PERIOD_SECS {
            return Err(format!("period_secs must be at least {MIN_PERIOD_SECS}"));
        }
        Ok(())
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        if !acts_for(state, &cx.signer, &self.org) {
            return Err(TxError::new(
                ErrorCode::Forbidden("program.not_org"),
                format!("only {}'s admin key publishes its programs", self.org),
            ));
        }
        state.accounts.require_unit(&self.unit)?;
        let id = hex::encode(cx.tx.leaf_hash().0);
        state.programs.programs.insert(
            id,
            Program {
                org: self.org,
                unit: self.unit,
                reward: self.reward,
                attribute: self.attribute,
                loinc: self.loinc,
                range: self.range,
                issuers: self.issuers,
                start: self.start,
                period_secs: self.period_secs,
                published_at: cx.index,
                claims: 0,
            },
        );
        Ok(Effect::None)
    }
}

fn refused(code: &'static str, text: impl Into<String>) -> TxError {
    TxError::new(ErrorCode::Invalid(code), text)
}

impl TxBody for ProgramClaim {
    const TYPE: &'static str = PROGRAM_CLAIM;

    fn example() -> Self {
        ProgramClaim {
            program: "ab".repeat(32),
            presentation: "{}".into(),
        }
    }

    fn check(&self) -> Result<(), String> {
        check_hex32("program", &self.program)?;
        if self.presentation.len() > zk::range::MAX_PRESENTATION_BYTES {
            return Err(format!(
                "presentation: at most {} bytes",
                zk::range::MAX_PRESENTATION_BYTES
            ));
        }
        Ok(())
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        let program = state.programs.get(&self.program).cloned().ok_or_else(|| {
            TxError::new(
                ErrorCode::NotFound("program.unknown"),
                format!("no care program {}", self.program),
            )
        })?;
        let presentation = RangePresentation::parse(self.presentation.as_bytes())
            .map_err(|e| refused("program.bad_presentation", format!("{}: {e}", e.code())))?;
        let holder = presentation
            .credential()
            .holder()
            .map(|d| d.to_string())
            .ok_or_else(|| {
                refused(
                    "program.holder_required",
                    "a program pays only a credential that names its holder",
                )
            })?;
        if holder != cx.signer {
            return Err(TxError::new(
                ErrorCode::Forbidden("program.not_holder"),
                "a claim is signed by the patient its credential names",
            ));
        }
        let now = state.escrows.clock;
        let Some(period) = program.period_at(now) else {
            return Err(TxError::new(
                ErrorCode::Conflict("program.not_started"),
                format!(
                    "program {} has not started by the ledger's clock",
                    self.program
                ),
            ));
        };
        let accepted = |issuer: &str| {
            if program.issuers.iter().any(|i| i == issuer) {
                issuer_key(state, issuer)
            } else {
                None
            }
        };
        let range = program
            .range
            .to_range()
            .map_err(|e| refused("program.bad_goal", e))?;
        let requirement = Requirement::new(&program.attribute, program.loinc.as_deref(), range)
            .map_err(|e| refused("program.bad_goal", e.to_string()))?;
        // The ledger's clock trails real time by up to the time between two
        // ticks (a node ticks at most once a minute on request): a
        // credential issued since the last tick is valid, and one expiring
        // within that lag already counts as expired (the safe side).
        let clock = u64::try_from(now)
            .unwrap_or(0)
            .saturating_add(CLOCK_LAG_SECS);
        zk::verify(
            &presentation,
            &accepted,
            &requirement,
            &challenge(&self.program),
            clock,
        )
        .map_err(|e| refused("program.proof_refused", format!("{}: {e}", e.code())))?;
        let digest = hex::encode(presentation.credential().digest());
        let by_credential = (self.program.clone(), digest);
        let by_period = (self.program.clone(), holder.clone(), period);
        if state.programs.credentials.contains(&by_credential)
            || state.programs.periods.contains(&by_period)
        {
            return Err(TxError::new(
                ErrorCode::Conflict("program.already_claimed"),
                "this credential, or this patient in this period, was paid already",
            ));
        }
        super::escrow::draw(
            state,
            &self.program,
            &program.unit,
            program.reward,
            &holder,
            cx.index,
        )?;
        state.programs.credentials.insert(by_credential);
        state.programs.periods.insert(by_period);
        if let Some(p) = state.programs.programs.get_mut(&self.program) {
            p.claims = p.claims.saturating_add(1);
        }
        Ok(Effect::None)
    }
}
