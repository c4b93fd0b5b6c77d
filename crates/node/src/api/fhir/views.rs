//! AuditEvent and Provenance: FHIR views of ledger entries, each naming its
//! ledger index and a link to its inclusion proof, so anyone entitled can
//! check offline that the event is in the log (docs/fhir.md).

use hygeia_auth::scope::Interaction;
use hygeia_auth::token::Session;
use hygeia_fhir::audit::{audit_event, provenance, AccessView, Signer, VersionView};
use hygeia_fhir::consent::LedgerLink;
use hygeia_fhir::reference::{did_of_reference, parse_local};
use hygeia_fhir::types::ResourceType;
use hygeia_policy::Action;
use serde_json::{json, Value};

use super::decide::{self, Subject};
use super::FhirError;
use crate::node::Node;
use crate::state::txs::{self, Access, RecordBody, Verdict};

fn proof_url(base: &str, index: u64) -> String {
    format!(
        "{}/v1/proofs/inclusion?index={index}",
        base.trim_end_matches("/fhir")
    )
}

/// A log entry as JSON.
fn entry(node: &Node, index: u64) -> Result<Option<Value>, FhirError> {
    let snapshot = node.store.snapshot().map_err(FhirError::internal)?;
    if index >= snapshot.size() {
        return Ok(None);
    }
    let Some(bytes) = snapshot.entry(index).map_err(FhirError::internal)? else {
        return Ok(None);
    };
    Ok(serde_json::from_slice(&bytes).ok())
}

fn interaction(event: &Access) -> &'static str {
    match (event.action, event.records.len()) {
        (Action::Write, _) => "update",
        (Action::Read, 1) => "read",
        (Action::Read, _) => "search-type",
    }
}

fn access_view(node: &Node, index: u64, event: &Access, base: &str) -> AccessView {
    AccessView {
        index,
        proof_url: proof_url(base, index),
        requester: event.requester.clone(),
        patient: event.patient.clone(),
        action: event.action,
        interaction: interaction(event).to_owned(),
        purpose: event.purpose.clone(),
        permitted: event.decision == Verdict::Permit,
        break_glass: event.break_glass,
        justified: event.justified,
        reasons: event.reasons.clone(),
        grants: event.grants.clone(),
        records: event.records.clone(),
        node: node.node_did.clone(),
        time: event.time,
    }
}

/// Whether the requester may read a patient's audit trail.
fn may_audit(node: &Node, session: &Session, patient: &str) -> bool {
    let committed = node.state.read();
    patient == session.did
        || committed
            .state
            .policy
            .consents()
            .is_delegate(patient, &session.did)
}

/// `GET /fhir/AuditEvent/{index}`: the patient, a delegate or the
/// requester the event names.
pub fn read_audit_event(
    node: &Node,
    session: &Session,
    id: &str,
    base: &str,
) -> Result<Value, FhirError> {
    let missing = || decide::not_found(&format!("AuditEvent/{id}"));
    let index: u64 = id.parse().map_err(|_| missing())?;
    let tx = entry(node, index)?.ok_or_else(missing)?;
    if tx["type"] != txs::ACCESS || tx["signer"] != json!(node.node_did) {
        return Err(missing());
    }
    let event: Access = serde_json::from_value(tx["body"].clone()).map_err(|_| missing())?;
    let patient_side = may_audit(node, session, &event.patient);
    let in_scope = super::scopes::within(session, Interaction::Read, "AuditEvent", &event.patient)
        || super::scopes::within(session, Interaction::Read, "AuditEvent", &event.requester);
    if !(patient_side || event.requester == session.did) || !in_scope {
        return Err(missing());
    }
    let mut resource = audit_event(id, &access_view(node, index, &event, base));
    if !patient_side && event.decision == Verdict::Deny {
        withhold_subject(&mut resource);
    }
    Ok(resource)
}

/// A requester reading its own denied access sees that it was denied, not
/// whose records they were: the patient and the records would confirm
/// what the denial withheld.
fn withhold_subject(event: &mut Value) {
    if let Some(event) = event.as_object_mut() {
        event.remove("patient");
        event.remove("entity");
    }
}

/// `GET /fhir/AuditEvent?patient=`: a patient's trail, newest first,
/// break-glass first (for the patient and their delegates only).
pub fn search_audit_events(
    node: &Node,
    session: &Session,
    patient: Option<&str>,
    count: usize,
    offset: usize,
    base: &str,
) -> Result<(Vec<Value>, usize), FhirError> {
    let patient = match patient {
        Some(p) if p.starts_with("did:") => p.to_owned(),
        Some(p) => patient_did(node, p).unwrap_or_default(),
        None => session.did.clone(),
    };
    if !may_audit(node, session, &patient)
        || !super::scopes::within(session, Interaction::Search, "AuditEvent", &patient)
    {
        return Ok((Vec::new(), 0));
    }
    let chosen: (Vec<u64>, usize) = {
        let committed = node.state.read();
        let all = committed
            .accesses
            .get(&patient)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let flagged = all.iter().rev().filter(|a| a.break_glass);
        let others = all.iter().rev().filter(|a| !a.break_glass);
        (
            flagged
                .chain(others)
                .skip(offset)
                .take(count)
                .map(|a| a.index)
                .collect(),
            all.len(),
        )
    };
    let mut events = Vec::with_capacity(chosen.0.len());
    for index in chosen.0 {
        if let Some(tx) = entry(node, index)? {
            if let Ok(event) = serde_json::from_value::<Access>(tx["body"].clone()) {
                events.push(audit_event(
                    &index.to_string(),
                    &access_view(node, index, &event, base),
                ));
            }
        }
    }
    Ok((events, chosen.1))
}

/// A `Patient/<id>` (or bare id) reference's DID.
pub fn patient_did(node: &Node, text: &str) -> Option<String> {
    let reference = if text.contains('/') {
        text.to_owned()
    } else {
        format!("Patient/{text}")
    };
    if let Some(did) = did_of_reference(&json!({ "reference": reference })) {
        return Some(did.to_owned());
    }
    let target = parse_local(&reference, None)?;
    (target.resource_type == ResourceType::Patient)
        .then(|| node.fhir.store.current(&target.key()))
        .flatten()
        .map(|c| c.latest.patient)
}

/// Provenance of one version the requester may read.
fn provenance_of(
    node: &Node,
    key: &str,
    version: &crate::fhir_store::Version,
    base: &str,
) -> Result<Option<Value>, FhirError> {
    let index = {
        let committed = node.state.read();
        committed
            .state
            .records
            .get(&version.commitment)
            .map(|r| r.index)
    };
    let Some(index) = index else {
        return Ok(None);
    };
    let tx = entry(node, index)?.unwrap_or(Value::Null);
    let record: Option<RecordBody> = serde_json::from_value(tx["body"].clone()).ok();
    let signature = tx["sig"].as_str().unwrap_or_default().to_owned();
    let activity = if version.deleted {
        "delete"
    } else if version.version == 1 {
        "create"
    } else {
        "update"
    };
    let view = VersionView {
        target: format!("{key}/_history/{}", version.version),
        recorded: version.last_updated / 1000,
        author: record
            .map(|r| r.author)
            .unwrap_or_else(|| version.author.clone()),
        node: node.node_did.clone(),
        signature,
        // FHIR clients do not sign; the node's signature over the record
        // transaction is what vouches for the version.
        signer: Signer::Custodian,
        commitment: version.commitment.clone(),
        ledger: LedgerLink {
            index,
            proof_url: proof_url(base, index),
        },
        activity: activity.to_owned(),
    };
    Ok(Some(provenance(&version.commitment, &view)))
}

/// Decides reads of `versions` of `key` (one logged submission), or, when
/// there are none, logs the absence with the same work; the Provenances
/// of those permitted.
async fn provenances(
    node: &Node,
    session: &Session,
    key: &str,
    versions: Vec<crate::fhir_store::Version>,
    base: &str,
) -> Result<Vec<Value>, FhirError> {
    let (resource_type, _) = key.split_once('/').unwrap_or((key, ""));
    if versions.is_empty() {
        decide::absent(node, session, Interaction::Read, resource_type).await?;
        return Ok(Vec::new());
    }
    let purpose = decide::purpose(session)?;
    let now = crate::node::unix_now() as i64;
    let mut events = Vec::with_capacity(versions.len());
    let mut permitted = Vec::new();
    {
        let committed = node.state.read();
        for version in versions {
            let decided = decide::decide(
                &committed.state,
                session,
                purpose,
                Interaction::Read,
                &Subject {
                    patient: &version.patient,
                    resource_type,
                    category: &version.category,
                    commitment: Some(&version.commitment),
                },
                now,
            );
            if decided.decision.is_permit() {
                permitted.push(version);
            }
            events.push(decided.event);
        }
    }
    decide::log(node, session, events, Vec::new()).await?;
    let mut out = Vec::with_capacity(permitted.len());
    for version in &permitted {
        if let Some(p) = provenance_of(node, key, version, base)? {
            out.push(p);
        }
    }
    Ok(out)
}

/// `GET /fhir/Provenance/{record id}`.
pub async fn read_provenance(
    node: &Node,
    session: &Session,
    id: &str,
    base: &str,
) -> Result<Value, FhirError> {
    let missing = || decide::not_found(&format!("Provenance/{id}"));
    let located = match node.fhir.store.locate(id)? {
        Some((key, version)) => node
            .fhir
            .store
            .version(&key, version)?
            .map(|version| (key, version)),
        None => None,
    };
    let found = match located {
        Some((key, version)) => provenances(node, session, &key, vec![version], base).await?,
        None => provenances(node, session, "Provenance", Vec::new(), base).await?,
    };
    found.into_iter().next().ok_or_else(missing)
}

/// `GET /fhir/Provenance?target=Type/id`: one per version the requester
/// may read. A target that does not exist costs the same work as one the
/// requester may not read (one decision, one logged event).
pub async fn search_provenance(
    node: &Node,
    session: &Session,
    target: &str,
    base: &str,
) -> Result<Vec<Value>, FhirError> {
    let Some(target) = parse_local(target, Some(base)) else {
        return Ok(Vec::new());
    };
    let key = target.key();
    let versions: Vec<_> = node
        .fhir
        .store
        .versions(&key)?
        .into_iter()
        .filter(|v| target.version.is_none_or(|wanted| wanted == v.version))
        .collect();
    provenances(node, session, &key, versions, base).await
}
