//! Access decisions, and the `access` events that log them.
//!
//! Every decision the node makes about a patient's data — permit, deny or
//! break-glass — becomes an `access` transaction signed by the node, and
//! the answer waits until that transaction is durable (invariant 5). The
//! break-glass justification is kept off the ledger, with the node, keyed
//! by the event's leaf hash; the ledger says only that there was one.

use hygeia_ledger::tx::TxBuilder;
use hygeia_ledger::{Receipt, SignedTx, SubmitError, TxError};
use hygeia_policy::{AccessRequest, Action, Decision, PurposeOfUse, RecordRef};

use crate::node::Node;
use crate::state::records::RecordEntry;
use crate::state::txs::{self, Access, Verdict};
use crate::state::LedgerState;

/// Most characters of a break-glass justification.
pub const MAX_JUSTIFICATION_CHARS: usize = 1000;

/// A request to act on a patient's records, as the node understood it.
pub struct Attempt<'a> {
    pub requester: &'a str,
    pub patient: &'a str,
    pub action: Action,
    pub purpose: PurposeOfUse,
    /// The record, or for an upload its category and type.
    pub record: RecordRef,
    /// The record's commitment, when it exists.
    pub commitment: Option<&'a str>,
    /// A break-glass justification, as written.
    pub justification: Option<&'a str>,
    pub time: i64,
}

/// A decision and the `access` event that logs it.
#[derive(Clone)]
pub struct Decided {
    pub decision: Decision,
    pub event: Access,
}

/// Decides an attempt against the committed state. An open break-glass
/// window (see [`crate::state::BREAK_GLASS_WINDOW_SECS`]) stands in for a
/// justification on emergency reads.
pub fn decide(state: &LedgerState, attempt: &Attempt<'_>) -> Decided {
    let requester = state.requester(attempt.requester, attempt.time);
    let justification = attempt
        .justification
        .map(str::trim)
        .filter(|j| !j.is_empty());
    let window_open = attempt.purpose == PurposeOfUse::EmergencyTreatment
        && state
            .break_glass_until(attempt.requester, attempt.patient, attempt.time)
            .is_some();
    let effective = match (justification, window_open) {
        (Some(j), _) => Some(j.to_owned()),
        (None, true) => Some("open break-glass window".to_owned()),
        (None, false) => None,
    };
    let request = AccessRequest {
        requester,
        patient: attempt.patient.to_owned(),
        action: attempt.action,
        purpose: attempt.purpose,
        record: attempt.record.clone(),
        time: attempt.time,
        break_glass_justification: effective,
    };
    let decision = state.policy.decide(&request);
    if !decision.errors.is_empty() {
        tracing::warn!(errors = ?decision.errors, "policy evaluation errors; denied");
    }
    let event = Access {
        requester: attempt.requester.to_owned(),
        patient: attempt.patient.to_owned(),
        action: attempt.action,
        purpose: attempt.purpose.code().to_owned(),
        records: attempt.commitment.map(str::to_owned).into_iter().collect(),
        decision: if decision.is_permit() {
            Verdict::Permit
        } else {
            Verdict::Deny
        },
        break_glass: decision.break_glass,
        justified: decision.break_glass && justification.is_some(),
        reasons: decision.reasons.clone(),
        grants: decision.grants.clone(),
        governance_version: decision.governance_version,
        time: attempt.time,
    };
    Decided { decision, event }
}

/// Signs an `access` event (and any other node transaction) as the node.
pub fn sign(node: &Node, tx_type: &str, body: serde_json::Value) -> Result<SignedTx, TxError> {
    let ctx = hygeia_ledger::tx::TxContext {
        network: &node.config.network,
        modules: &node.modules,
    };
    // Checked like anyone's transaction (bar the signature just made), so a
    // node bug cannot put a malformed event on the ledger.
    TxBuilder {
        network: &node.config.network,
        tx_type,
        nonce: hygeia_auth::random_nonce(),
        body,
    }
    .sign_checked(&node.key, &ctx)
}

/// Logs an access event (plus `with`, in the same atomic submission) and
/// waits until it is durable. A justification is saved before the event.
pub async fn log(
    node: &Node,
    event: &Access,
    justification: Option<&str>,
    with: Vec<SignedTx>,
) -> Result<Receipt, LogError> {
    let body = serde_json::to_value(event).map_err(|e| LogError::Internal(e.to_string()))?;
    let access = sign(node, txs::ACCESS, body).map_err(LogError::Refused)?;
    if let Some(text) = justification.map(str::trim).filter(|j| !j.is_empty()) {
        if event.break_glass {
            node.custody
                .save_note(&hex::encode(access.leaf_hash().0), text)
                .map_err(|e| LogError::Internal(e.to_string()))?;
        }
    }
    let mut submission = vec![access];
    submission.extend(with);
    node.sequencer
        .submit(submission)
        .await
        .map_err(LogError::Submit)
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{0}")]
    Refused(TxError),
    #[error(transparent)]
    Submit(SubmitError),
    #[error("{0}")]
    Internal(String),
}

/// The policy engine's view of a stored record.
pub fn record_ref(record: &RecordEntry) -> RecordRef {
    RecordRef {
        id: record.commitment.clone(),
        resource_type: record.resource_type.clone(),
        category: Some(record.category.clone()),
    }
}
