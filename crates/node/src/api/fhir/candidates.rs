//! What a search looks at: the resources of the patients whose records the
//! requester could be permitted to read, and nothing else (docs/fhir.md,
//! "Search never matches what you may not see").
//!
//! A search decided after matching told its requester whether a resource
//! it may not see matched (the decision was logged, the answer carried an
//! audit index, and it took a commit longer). So the candidates are chosen
//! first, from facts about the requester alone — its own identity, the
//! consent grants made to it or its organizations, the directory — and the
//! query is matched against those candidates only. Each match is then
//! decided by the policy engine as before; what it denies is left out
//! without a trace the requester can see.

use std::collections::BTreeSet;

use hygeia_auth::token::Session;
use hygeia_fhir::search::{Criterion, RefMatch, SearchQuery};
use hygeia_policy::{Action, PurposeOfUse};

use crate::fhir_store::{Current, FhirStore};
use crate::state::LedgerState;

/// Above this many candidates a search uses the node-wide index and keeps
/// the candidates' matches (its work then depends on other patients'
/// index values too, by microseconds; docs/fhir.md).
pub const SCAN_LIMIT: usize = 50_000;

/// Whose resources a requester may be permitted to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readable {
    /// Possibly anyone's: a break-glass requester, or governance policies
    /// other than the defaults (which may permit without consent).
    Anyone,
    /// Only these patients' (the node's DID stands for the directory).
    Patients(BTreeSet<String>),
}

/// Whether the policies may permit `session` to read anyone's records
/// without consent: a licensed clinician acting for emergency treatment
/// (the `break-glass-emergency-read` policy), or governance policies other
/// than the defaults (version 0), which may permit anything.
fn reads_anyone(
    state: &LedgerState,
    requester: &hygeia_policy::Requester,
    purpose: PurposeOfUse,
) -> bool {
    state.policy.governance().version() != 0
        || (purpose == PurposeOfUse::EmergencyTreatment
            && requester.roles.contains("clinician")
            && requester.licence.is_some())
}

/// Whether `grant` lets its grantee read for `purpose` at `now`.
fn grant_reads(grant: &hygeia_policy::Grant, purpose: PurposeOfUse, now: i64) -> bool {
    grant.is_active_at(now)
        && grant.actions.contains(&Action::Read)
        && grant.purpose.covered().contains(&purpose)
}

/// The patients whose resources `session` may be permitted to read for
/// `purpose` at `now`, under the committed state. A superset of what the
/// policy engine permits: every candidate is still decided.
///
/// With the default governance policies (version 0) a read is permitted
/// only by a grant (`consent-grant`), to the patient themself
/// (`patient-own-records`), for a directory resource (`directory-read`),
/// or by break-glass (a licensed clinician, `ETREAT`). Installed policies
/// may permit more, so any other version reads as [`Readable::Anyone`].
/// `among`, when given, limits the answer to those patients (a search's
/// compartment), and spares looking at every grant.
pub fn readable(
    state: &LedgerState,
    session: &Session,
    purpose: PurposeOfUse,
    now: i64,
    among: Option<&BTreeSet<String>>,
) -> Readable {
    let requester = state.requester(&session.did, now);
    if reads_anyone(state, &requester, purpose) {
        return Readable::Anyone;
    }
    let consents = state.policy.consents();
    let grantees: Vec<&str> = std::iter::once(session.did.as_str())
        .chain(requester.organizations.iter().map(String::as_str))
        .collect();
    let own = |patient: &str| patient == session.did || state.network.is_custodian(patient);
    if let Some(among) = among {
        let patients = among
            .iter()
            .filter(|patient| {
                own(patient)
                    || grantees.iter().any(|grantee| {
                        consents
                            .grants_between(patient, grantee)
                            .any(|g| grant_reads(g, purpose, now))
                    })
            })
            .cloned()
            .collect();
        return Readable::Patients(patients);
    }
    let mut patients: BTreeSet<String> = std::iter::once(session.did.clone())
        .chain(state.network.custodians().map(str::to_owned))
        .collect();
    for grantee in grantees {
        for grant in consents.grants_to(grantee) {
            if grant_reads(grant, purpose, now) {
                patients.insert(grant.patient.clone());
            }
        }
    }
    Readable::Patients(patients)
}

/// The patients a query's compartment clauses name: a search on
/// `patient=Patient/<id>` (or `subject=`) can match only that patient's
/// resources. `None` when the query has no such clause.
pub fn compartment(store: &FhirStore, query: &SearchQuery) -> Option<BTreeSet<String>> {
    let element = query.resource_type.patient_element()?;
    let mut narrowed: Option<BTreeSet<String>> = None;
    for clause in &query.clauses {
        let Criterion::Reference(values) = &clause.criterion else {
            continue;
        };
        let compartment = hygeia_fhir::search::param(query.resource_type, &clause.param)
            .is_some_and(|p| p.paths == [element]);
        if !compartment {
            continue;
        }
        let mut dids = BTreeSet::new();
        for value in values {
            let key = match value {
                RefMatch::Key(key) if key.starts_with("Patient/") => key.clone(),
                RefMatch::Id(id) => format!("Patient/{id}"),
                // Another type: no Patient's resources match it.
                RefMatch::Key(_) => continue,
            };
            if let Some(current) = store.current(&key) {
                dids.insert(current.latest.patient);
            }
        }
        narrowed = Some(match narrowed {
            Some(before) => before.intersection(&dids).cloned().collect(),
            None => dids,
        });
    }
    narrowed
}

/// The candidates a query can match among `patients`.
fn narrow(store: &FhirStore, query: &SearchQuery, patients: &BTreeSet<String>) -> BTreeSet<String> {
    match compartment(store, query) {
        Some(named) => named.intersection(patients).cloned().collect(),
        None => patients.clone(),
    }
}

/// The resources a search finds among what `readable` allows, in the
/// query's order, not yet decided.
pub fn search(store: &FhirStore, query: &SearchQuery, readable: &Readable) -> Vec<Current> {
    let patients = match readable {
        Readable::Anyone => return store.search(query),
        Readable::Patients(patients) => narrow(store, query, patients),
    };
    if patients.is_empty() {
        return Vec::new();
    }
    if store.count_within(query.resource_type, &patients) > SCAN_LIMIT {
        return store
            .search(query)
            .into_iter()
            .filter(|c| patients.contains(&c.latest.patient))
            .collect();
    }
    store.search_within(query, &patients)
}

/// Whether an `_include`d or exported resource is a candidate.
pub fn allows(readable: &Readable, current: &Current) -> bool {
    match readable {
        Readable::Anyone => true,
        Readable::Patients(patients) => patients.contains(&current.latest.patient),
    }
}
