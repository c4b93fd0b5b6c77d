//! Decisions for FHIR interactions, and the `access` events that log them.
//!
//! An interaction may decide many resources (a search, a Bundle, an
//! export). Each resource is decided on its own; the events that log them
//! are merged per patient and outcome (one event names up to
//! [`MAX_RECORDS_PER_ACCESS`] records) and submitted together, durable
//! before the answer.

use axum::http::StatusCode;
use hygeia_auth::scope::Interaction;
use hygeia_auth::token::Session;
use hygeia_fhir::outcome::Issue;
use hygeia_ledger::{Receipt, SignedTx};
use hygeia_policy::{PurposeOfUse, RecordRef};

use super::FhirError;
use crate::access::{self, Attempt, Decided};
use crate::node::Node;
use crate::state::txs::{self, Access, MAX_RECORDS_PER_ACCESS};
use crate::state::LedgerState;

/// What is decided about: one version of one resource.
pub struct Subject<'a> {
    pub patient: &'a str,
    pub resource_type: &'a str,
    pub category: &'a str,
    /// The record holding it; `None` for a resource not written yet.
    pub commitment: Option<&'a str>,
}

/// The purpose a token was issued for.
pub fn purpose(session: &Session) -> Result<PurposeOfUse, FhirError> {
    session
        .purpose
        .parse()
        .map_err(|e: hygeia_policy::UnknownPurpose| {
            FhirError::new(
                StatusCode::FORBIDDEN,
                Issue::error("security", e.to_string()),
            )
        })
}

/// Decides one interaction on one subject against the committed state:
/// the policy engine decides the read or write, and the token's scopes
/// must also reach it ([`super::scopes::within`]); outside them the
/// decision is a deny for the reason [`super::scopes::SCOPE_REASON`],
/// whatever consent would allow.
pub fn decide(
    state: &LedgerState,
    session: &Session,
    purpose: PurposeOfUse,
    interaction: Interaction,
    subject: &Subject<'_>,
    now: i64,
) -> Decided {
    let action = super::scopes::action(interaction);
    let attempt = Attempt {
        requester: &session.did,
        patient: subject.patient,
        action,
        purpose,
        record: RecordRef {
            id: subject.commitment.unwrap_or("new").to_owned(),
            resource_type: subject.resource_type.to_owned(),
            category: Some(subject.category.to_owned()),
        },
        commitment: subject.commitment,
        justification: session.break_glass.as_deref(),
        time: now,
    };
    let decided = access::decide(state, &attempt);
    if super::scopes::within(session, interaction, subject.resource_type, subject.patient) {
        decided
    } else {
        super::scopes::out_of_scope(decided)
    }
}

/// Decisions shared across the matches of one interaction (a search):
/// when nothing the decision reads can tell two records of the same
/// patient, resource type and category apart, the policy engine decides
/// once per (patient, resource type, category) and each record gets the
/// same decision, named in the `access` event that logs it. That is the
/// case when no grant of the patient names single records and the
/// governance policies name no record; otherwise every record is decided
/// on its own. The requester, purpose, interaction, time and break-glass
/// justification are those of the one interaction.
///
/// (resource type, category, where its event is among the permits; `None`
/// when denied).
type SharedDecision = (String, String, Option<usize>);

pub struct SharedDecisions {
    governance_names_records: bool,
    /// Patient → whether one of their grants names single records.
    names_records: std::collections::HashMap<String, bool>,
    /// Patient → decisions made for them.
    memo: std::collections::HashMap<String, Vec<SharedDecision>>,
    /// How many decisions the policy engine made (the rest were shared).
    pub evaluated: usize,
}

impl SharedDecisions {
    pub fn new(state: &LedgerState) -> Self {
        SharedDecisions {
            governance_names_records: state.policy.governance().names_records(),
            names_records: Default::default(),
            memo: Default::default(),
            evaluated: 0,
        }
    }

    /// [`decide`], shared where it may be: whether it permits. A permit is
    /// logged in `permits`: a shared one adds its record to the event of
    /// the decision it shares (the event [`merge`] would make of the two),
    /// any other pushes its own event. Denials leave nothing there.
    #[allow(clippy::too_many_arguments)]
    pub fn decide(
        &mut self,
        state: &LedgerState,
        session: &Session,
        purpose: PurposeOfUse,
        interaction: Interaction,
        subject: &Subject<'_>,
        now: i64,
        permits: &mut Vec<Access>,
    ) -> bool {
        let evaluate = |this: &mut Self, permits: &mut Vec<Access>| {
            this.evaluated += 1;
            let decided = decide(state, session, purpose, interaction, subject, now);
            let permit = decided.decision.is_permit();
            permit.then(|| {
                permits.push(decided.event);
                permits.len() - 1
            })
        };
        let Some(commitment) = subject.commitment else {
            return evaluate(self, permits).is_some();
        };
        let per_record = self.governance_names_records
            || match self.names_records.get(subject.patient) {
                Some(names) => *names,
                None => {
                    let names = state
                        .policy
                        .consents()
                        .grants_of(subject.patient)
                        .any(|g| !g.scope.record_ids.is_empty());
                    self.names_records.insert(subject.patient.to_owned(), names);
                    names
                }
            };
        if per_record {
            return evaluate(self, permits).is_some();
        }
        let shared = self.memo.get(subject.patient).and_then(|decided| {
            decided
                .iter()
                .find(|(t, c, _)| t == subject.resource_type && c == subject.category)
        });
        if let Some((_, _, slot)) = shared {
            let Some(slot) = *slot else {
                return false;
            };
            if let Some(event) = permits.get_mut(slot) {
                event.records.push(commitment.to_owned());
            }
            return true;
        }
        let slot = evaluate(self, permits);
        if let Some(event) = slot.and_then(|slot| permits.get_mut(slot)) {
            event.records = vec![commitment.to_owned()];
        }
        self.memo
            .entry(subject.patient.to_owned())
            .or_default()
            .push((
                subject.resource_type.to_owned(),
                subject.category.to_owned(),
                slot,
            ));
        slot.is_some()
    }
}

/// Whether two events differ only in the records they name (and their
/// time): such events are logged as one.
fn same_but_records(a: &Access, b: &Access) -> bool {
    a.patient == b.patient
        && a.action == b.action
        && a.purpose == b.purpose
        && a.decision == b.decision
        && a.break_glass == b.break_glass
        && a.justified == b.justified
        && a.governance_version == b.governance_version
        && a.reasons == b.reasons
        && a.grants == b.grants
}

/// Merges events that differ only in the records they name, keeping the
/// first one's time, and splits any naming more records than one event
/// may. The merged events come in the order of their first event.
pub fn merge(events: Vec<Access>) -> Vec<Access> {
    let mut groups: Vec<Access> = Vec::new();
    // Patient → the groups of that patient, so that a search over many
    // patients does not compare every event with every group.
    let mut by_patient: std::collections::HashMap<String, Vec<usize>> =
        std::collections::HashMap::new();
    for event in events {
        let found = by_patient
            .get(event.patient.as_str())
            .and_then(|candidates| {
                candidates
                    .iter()
                    .copied()
                    .find(|&i| same_but_records(&groups[i], &event))
            });
        match found {
            Some(i) => groups[i].records.extend(event.records),
            None => {
                by_patient
                    .entry(event.patient.clone())
                    .or_default()
                    .push(groups.len());
                groups.push(event);
            }
        }
    }
    let mut merged = Vec::with_capacity(groups.len());
    for mut event in groups {
        event.records.sort_unstable();
        event.records.dedup();
        if event.records.len() <= MAX_RECORDS_PER_ACCESS {
            merged.push(event);
            continue;
        }
        for chunk in event.records.chunks(MAX_RECORDS_PER_ACCESS) {
            let mut part = event.clone();
            part.records = chunk.to_vec();
            merged.push(part);
        }
    }
    merged
}

/// Signs `events` (merged), then submits them with `with` in one atomic
/// submission and waits until it is durable.
pub async fn log(
    node: &Node,
    session: &Session,
    events: Vec<Access>,
    with: Vec<SignedTx>,
) -> Result<Option<Receipt>, FhirError> {
    let events = merge(events);
    if events.is_empty() && with.is_empty() {
        return Ok(None);
    }
    let mut submission = Vec::with_capacity(events.len() + with.len());
    for event in &events {
        let body = serde_json::to_value(event).map_err(FhirError::internal)?;
        let tx = access::sign(node, txs::ACCESS, body).map_err(FhirError::internal)?;
        if event.break_glass {
            if let Some(text) = session.break_glass.as_deref().map(str::trim) {
                if !text.is_empty() {
                    node.custody
                        .save_note(&hex::encode(tx.leaf_hash().0), text)
                        .map_err(FhirError::internal)?;
                }
            }
        }
        submission.push(tx);
    }
    submission.extend(with);
    let receipt = node
        .sequencer
        .submit(submission)
        .await
        .map_err(submit_error)?;
    Ok(Some(receipt))
}

pub fn submit_error(e: hygeia_ledger::SubmitError) -> FhirError {
    let api = crate::api::ApiError::from(e);
    let code = if api.status == StatusCode::SERVICE_UNAVAILABLE
        || api.status == StatusCode::TOO_MANY_REQUESTS
    {
        "transient"
    } else {
        "processing"
    };
    FhirError::new(api.status, Issue::error(code, api.message))
}

/// The consent category of the subject decided for something that does
/// not exist (no policy permits anything in it).
const ABSENT_CATEGORY: &str = "absent";

/// The event that logs a request about a resource that does not exist,
/// decided with the same work as one about a resource the requester may
/// not see: a deny about no record, whose patient is the node (no patient
/// governs what does not exist).
pub fn absent_event(
    state: &LedgerState,
    node_did: &str,
    session: &Session,
    interaction: Interaction,
    resource_type: &str,
) -> Result<Access, FhirError> {
    let decided = decide(
        state,
        session,
        purpose(session)?,
        interaction,
        &Subject {
            patient: node_did,
            resource_type,
            category: ABSENT_CATEGORY,
            commitment: None,
        },
        crate::node::unix_now() as i64,
    );
    let mut event = decided.event;
    event.decision = txs::Verdict::Deny;
    event.break_glass = false;
    event.justified = false;
    event.reasons.clear();
    event.grants.clear();
    Ok(event)
}

/// Decides and logs a request about a resource that does not exist
/// ([`absent_event`]), durable before the answer. So a missing resource
/// and a denied one answer alike, after the same work, and each leaves
/// one event in the log.
pub async fn absent(
    node: &Node,
    session: &Session,
    interaction: Interaction,
    resource_type: &str,
) -> Result<(), FhirError> {
    let event = {
        let committed = node.state.read();
        absent_event(
            &committed.state,
            &node.node_did,
            session,
            interaction,
            resource_type,
        )?
    };
    log(node, session, vec![event], Vec::new()).await?;
    Ok(())
}

/// The same answer for "no such resource" and "not yours to see", so that
/// a denial never tells whether something exists (docs/fhir.md).
pub fn not_found(what: &str) -> FhirError {
    FhirError::new(
        StatusCode::NOT_FOUND,
        Issue::error(
            "not-found",
            format!(
                "{} is not known to this server, or you may not see it",
                what.chars().take(140).collect::<String>()
            ),
        ),
    )
}

/// Decides (and logs) a read of one current resource.
pub async fn may_read(
    node: &Node,
    session: &Session,
    current: &crate::fhir_store::Current,
) -> Result<bool, FhirError> {
    let decided = {
        let committed = node.state.read();
        decide(
            &committed.state,
            session,
            purpose(session)?,
            Interaction::Read,
            &Subject {
                patient: &current.latest.patient,
                resource_type: &current.resource_type,
                category: &current.latest.category,
                commitment: Some(&current.latest.commitment),
            },
            crate::node::unix_now() as i64,
        )
    };
    let permitted = decided.decision.is_permit();
    log(node, session, vec![decided.event], Vec::new()).await?;
    Ok(permitted)
}

#[cfg(test)]
mod tests {
    use hygeia_policy::governance::names_records;

    #[test]
    fn governance_naming_a_record_turns_shared_decisions_off() {
        assert!(!names_records(hygeia_policy::governance::DEFAULT_POLICIES));
        assert!(names_records(
            r#"@id("x") forbid (principal, action, resource == Hygeia::Record::"abc");"#
        ));
        assert!(names_records(
            "@id(\"x\") forbid (principal, action, resource)\n when { resource == Hygeia::Record :: \"abc\" };"
        ));
    }
}
