//! Consent as state: the grants, revocations and delegates that a sequence of
//! ledger events produces.
//!
//! [`ConsentState::apply`] is deterministic: the same events in the same
//! order give the same state and the same refusals, on every node. An event
//! is applied whole or not at all.

use std::collections::BTreeSet;
use std::sync::Arc;

use cedar_policy::Entity;
use imbl::HashMap;
use serde::{Deserialize, Serialize};

use crate::entities::grant_entity;
use crate::error::ConsentError;
use crate::grant::{check_did, Grant};

/// An event that changes consent state, with the DID that signed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ConsentEvent {
    /// A new grant. The author must be the patient or a registered delegate.
    Grant {
        /// Who signed the event.
        author: String,
        /// The grant.
        grant: Grant,
    },
    /// Revocation of a grant by id. The author must be the grant's patient or
    /// one of that patient's delegates.
    Revoke {
        /// Who signed the event.
        author: String,
        /// The grant revoked.
        grant_id: String,
    },
    /// Registration of a delegate (e.g. a guardian) who may grant and revoke
    /// on the patient's behalf. The author must be the patient or a
    /// registrar.
    RegisterDelegate {
        /// Who signed the event.
        author: String,
        /// The patient.
        patient: String,
        /// The delegate.
        delegate: String,
    },
    /// Removal of a delegate. The author must be the patient or a registrar.
    /// Grants the delegate made stay in force until revoked.
    RemoveDelegate {
        /// Who signed the event.
        author: String,
        /// The patient.
        patient: String,
        /// The delegate.
        delegate: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct GrantRecord {
    grant: Grant,
    /// The grant as a Cedar entity, built once.
    entity: Entity,
    revoked: bool,
}

/// The consent state: every grant ever made (revoked ones are kept so their
/// ids cannot be reused), an index of the unrevoked ones by patient and
/// grantee, and each patient's delegates.
///
/// The maps are persistent (`imbl`): cloning the state is O(1) and the
/// clone shares every entry with the original until one of them changes it,
/// which then copies only the O(log n) nodes on that entry's path. The
/// ledger's writer relies on this to admit a submission on a copy of the
/// state whatever its size. A grant's record sits behind an `Arc` so that
/// copying a node copies pointers, not grants and their Cedar entities.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConsentState {
    registrars: BTreeSet<String>,
    grants: HashMap<String, Arc<GrantRecord>>,
    /// patient → grantee → ids of unrevoked grants, in the order granted.
    index: HashMap<String, HashMap<String, Vec<String>>>,
    delegates: HashMap<String, BTreeSet<String>>,
    unrevoked: usize,
}

impl ConsentState {
    /// An empty state with no registrars: only patients register delegates.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty state in which `registrars` (e.g. the governance key's DID,
    /// registering a minor's guardian) may also register and remove
    /// delegates.
    pub fn with_registrars<I: IntoIterator<Item = S>, S: Into<String>>(registrars: I) -> Self {
        ConsentState {
            registrars: registrars.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// Replays `events` from an empty state with the same registrars,
    /// returning the state and each event's outcome.
    pub fn replay<'a, I>(&self, events: I) -> (ConsentState, Vec<Result<(), ConsentError>>)
    where
        I: IntoIterator<Item = &'a ConsentEvent>,
    {
        let mut state = ConsentState {
            registrars: self.registrars.clone(),
            ..Self::default()
        };
        let outcomes = events.into_iter().map(|e| state.apply(e)).collect();
        (state, outcomes)
    }

    /// Applies one event, or refuses it and leaves the state unchanged.
    pub fn apply(&mut self, event: &ConsentEvent) -> Result<(), ConsentError> {
        match event {
            ConsentEvent::Grant { author, grant } => self.grant(author, grant),
            ConsentEvent::Revoke { author, grant_id } => self.revoke(author, grant_id),
            ConsentEvent::RegisterDelegate {
                author,
                patient,
                delegate,
            } => self.register_delegate(author, patient, delegate),
            ConsentEvent::RemoveDelegate {
                author,
                patient,
                delegate,
            } => self.remove_delegate(author, patient, delegate),
        }
    }

    fn grant(&mut self, author: &str, grant: &Grant) -> Result<(), ConsentError> {
        grant.validate()?;
        if !self.may_act_for(author, &grant.patient) {
            let is_grantee = author == grant.grantee
                || self
                    .index
                    .get(&grant.patient)
                    .is_some_and(|by_grantee| by_grantee.contains_key(author));
            return Err(if is_grantee {
                ConsentError::GranteeWidening {
                    author: author.to_owned(),
                    patient: grant.patient.clone(),
                }
            } else {
                ConsentError::NotPatientOrDelegate {
                    author: author.to_owned(),
                    patient: grant.patient.clone(),
                }
            });
        }
        if self.grants.contains_key(&grant.id) {
            return Err(ConsentError::DuplicateGrant {
                grant_id: grant.id.clone(),
            });
        }
        let entity = grant_entity(grant).map_err(|message| ConsentError::Cedar { message })?;
        self.index
            .entry(grant.patient.clone())
            .or_default()
            .entry(grant.grantee.clone())
            .or_default()
            .push(grant.id.clone());
        self.grants.insert(
            grant.id.clone(),
            Arc::new(GrantRecord {
                grant: grant.clone(),
                entity,
                revoked: false,
            }),
        );
        self.unrevoked += 1;
        Ok(())
    }

    fn revoke(&mut self, author: &str, grant_id: &str) -> Result<(), ConsentError> {
        let Some(record) = self.grants.get(grant_id) else {
            return Err(ConsentError::UnknownGrant {
                grant_id: grant_id.to_owned(),
            });
        };
        if !self.may_act_for(author, &record.grant.patient) {
            return Err(ConsentError::ForeignGrant {
                grant_id: grant_id.to_owned(),
                author: author.to_owned(),
            });
        }
        if record.revoked {
            return Err(ConsentError::AlreadyRevoked {
                grant_id: grant_id.to_owned(),
            });
        }
        let (patient, grantee) = (record.grant.patient.clone(), record.grant.grantee.clone());
        if let Some(by_grantee) = self.index.get_mut(&patient) {
            if let Some(ids) = by_grantee.get_mut(&grantee) {
                ids.retain(|id| id != grant_id);
                if ids.is_empty() {
                    by_grantee.remove(&grantee);
                }
            }
            if by_grantee.is_empty() {
                self.index.remove(&patient);
            }
        }
        if let Some(record) = self.grants.get_mut(grant_id) {
            Arc::make_mut(record).revoked = true;
        }
        self.unrevoked -= 1;
        Ok(())
    }

    fn register_delegate(
        &mut self,
        author: &str,
        patient: &str,
        delegate: &str,
    ) -> Result<(), ConsentError> {
        self.check_delegate_change(author, patient, delegate)?;
        if patient == delegate {
            return Err(ConsentError::SelfDelegate {
                patient: patient.to_owned(),
            });
        }
        if self.is_delegate(patient, delegate) {
            return Err(ConsentError::DuplicateDelegate {
                patient: patient.to_owned(),
                delegate: delegate.to_owned(),
            });
        }
        self.delegates
            .entry(patient.to_owned())
            .or_default()
            .insert(delegate.to_owned());
        Ok(())
    }

    fn remove_delegate(
        &mut self,
        author: &str,
        patient: &str,
        delegate: &str,
    ) -> Result<(), ConsentError> {
        self.check_delegate_change(author, patient, delegate)?;
        let removed = self
            .delegates
            .get_mut(patient)
            .is_some_and(|set| set.remove(delegate));
        if !removed {
            return Err(ConsentError::UnknownDelegate {
                patient: patient.to_owned(),
                delegate: delegate.to_owned(),
            });
        }
        if self.delegates.get(patient).is_some_and(BTreeSet::is_empty) {
            self.delegates.remove(patient);
        }
        Ok(())
    }

    fn check_delegate_change(
        &self,
        author: &str,
        patient: &str,
        delegate: &str,
    ) -> Result<(), ConsentError> {
        check_did("patient", patient)?;
        check_did("delegate", delegate)?;
        if author == patient || self.registrars.contains(author) {
            Ok(())
        } else {
            Err(ConsentError::DelegateChangeUnauthorized {
                author: author.to_owned(),
                patient: patient.to_owned(),
            })
        }
    }

    fn may_act_for(&self, author: &str, patient: &str) -> bool {
        author == patient || self.is_delegate(patient, author)
    }

    /// Whether `delegate` is a registered delegate of `patient`.
    pub fn is_delegate(&self, patient: &str, delegate: &str) -> bool {
        self.delegates
            .get(patient)
            .is_some_and(|set| set.contains(delegate))
    }

    /// The patient's registered delegates.
    pub fn delegates_of(&self, patient: &str) -> impl Iterator<Item = &str> {
        self.delegates
            .get(patient)
            .into_iter()
            .flatten()
            .map(String::as_str)
    }

    /// A grant by id, revoked or not.
    pub fn get(&self, grant_id: &str) -> Option<&Grant> {
        self.grants.get(grant_id).map(|r| &r.grant)
    }

    /// Whether the grant exists and is revoked.
    pub fn is_revoked(&self, grant_id: &str) -> bool {
        self.grants.get(grant_id).is_some_and(|r| r.revoked)
    }

    /// The unrevoked grants from `patient` to exactly `grantee` (not to its
    /// organizations), in the order granted. Expired grants are included:
    /// the decision time decides.
    pub fn grants_between<'a>(
        &'a self,
        patient: &str,
        grantee: &str,
    ) -> impl Iterator<Item = &'a Grant> + 'a {
        self.index
            .get(patient)
            .and_then(|by_grantee| by_grantee.get(grantee))
            .into_iter()
            .flatten()
            .filter_map(|id| self.grants.get(id).map(|r| &r.grant))
    }

    /// Like [`Self::grants_between`], with each grant's Cedar entity.
    pub(crate) fn candidates<'a>(
        &'a self,
        patient: &str,
        grantee: &str,
    ) -> impl Iterator<Item = (&'a Grant, &'a Entity)> + 'a {
        self.index
            .get(patient)
            .and_then(|by_grantee| by_grantee.get(grantee))
            .into_iter()
            .flatten()
            .filter_map(|id| self.grants.get(id).map(|r| (&r.grant, &r.entity)))
    }

    /// The unrevoked grants of `patient`, in no particular order.
    pub fn grants_of<'a>(&'a self, patient: &str) -> impl Iterator<Item = &'a Grant> + 'a {
        self.index
            .get(patient)
            .into_iter()
            .flat_map(|by_grantee| by_grantee.values())
            .flatten()
            .filter_map(|id| self.grants.get(id).map(|r| &r.grant))
    }

    /// The unrevoked grants to exactly `grantee`, in no particular order.
    /// A scan over every patient: for listings, not for decisions.
    pub fn grants_to<'a>(&'a self, grantee: &'a str) -> impl Iterator<Item = &'a Grant> + 'a {
        self.index
            .values()
            .filter_map(move |by_grantee| by_grantee.get(grantee))
            .flatten()
            .filter_map(|id| self.grants.get(id).map(|r| &r.grant))
    }

    /// The number of unrevoked grants (expired ones included).
    pub fn unrevoked_len(&self) -> usize {
        self.unrevoked
    }

    /// The number of grants ever made, revoked ones included.
    pub fn len(&self) -> usize {
        self.grants.len()
    }

    /// Whether no grant was ever made.
    pub fn is_empty(&self) -> bool {
        self.grants.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grant::{Action, Scope};
    use crate::purpose::PurposeOfUse;

    const PATIENT: &str = "did:key:zPatient";
    const OTHER_PATIENT: &str = "did:key:zOtherPatient";
    const GUARDIAN: &str = "did:key:zGuardian";
    const CLINICIAN: &str = "did:key:zClinician";
    const REGISTRAR: &str = "did:web:governance.example";

    fn grant(id: &str, patient: &str, grantee: &str) -> Grant {
        Grant {
            id: id.into(),
            patient: patient.into(),
            grantee: grantee.into(),
            scope: Scope::categories(["lab"]),
            actions: [Action::Read].into(),
            purpose: PurposeOfUse::Treatment,
            not_before: 0,
            not_after: 1000,
            jurisdictions: BTreeSet::new(),
        }
    }

    fn grant_event(author: &str, g: Grant) -> ConsentEvent {
        ConsentEvent::Grant {
            author: author.into(),
            grant: g,
        }
    }

    fn revoke_event(author: &str, id: &str) -> ConsentEvent {
        ConsentEvent::Revoke {
            author: author.into(),
            grant_id: id.into(),
        }
    }

    #[test]
    fn patient_grants_and_revokes() {
        let mut s = ConsentState::new();
        s.apply(&grant_event(PATIENT, grant("g1", PATIENT, CLINICIAN)))
            .unwrap();
        assert_eq!(s.grants_between(PATIENT, CLINICIAN).count(), 1);
        assert_eq!(s.unrevoked_len(), 1);
        s.apply(&revoke_event(PATIENT, "g1")).unwrap();
        assert_eq!(s.grants_between(PATIENT, CLINICIAN).count(), 0);
        assert!(s.is_revoked("g1"));
        assert_eq!(s.unrevoked_len(), 0);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn grant_by_non_patient_is_refused() {
        let mut s = ConsentState::new();
        let err = s
            .apply(&grant_event(OTHER_PATIENT, grant("g1", PATIENT, CLINICIAN)))
            .unwrap_err();
        assert_eq!(err.code(), "consent.not_patient_or_delegate");
        assert!(s.is_empty());
    }

    #[test]
    fn grantee_cannot_widen_its_own_grant() {
        let mut s = ConsentState::new();
        s.apply(&grant_event(PATIENT, grant("g1", PATIENT, CLINICIAN)))
            .unwrap();
        // The grantee grants itself a wider scope.
        let mut wider = grant("g2", PATIENT, CLINICIAN);
        wider.scope = Scope::categories(["lab", "mental-health"]);
        let err = s.apply(&grant_event(CLINICIAN, wider)).unwrap_err();
        assert_eq!(err.code(), "consent.grantee_widening");
        // Or passes access on to someone else.
        let err = s
            .apply(&grant_event(CLINICIAN, grant("g3", PATIENT, OTHER_PATIENT)))
            .unwrap_err();
        assert_eq!(err.code(), "consent.grantee_widening");
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn registered_delegate_may_grant_and_revoke() {
        let mut s = ConsentState::new();
        let err = s
            .apply(&grant_event(GUARDIAN, grant("g1", PATIENT, CLINICIAN)))
            .unwrap_err();
        assert_eq!(err.code(), "consent.not_patient_or_delegate");
        s.apply(&ConsentEvent::RegisterDelegate {
            author: PATIENT.into(),
            patient: PATIENT.into(),
            delegate: GUARDIAN.into(),
        })
        .unwrap();
        s.apply(&grant_event(GUARDIAN, grant("g1", PATIENT, CLINICIAN)))
            .unwrap();
        s.apply(&revoke_event(GUARDIAN, "g1")).unwrap();
        // A delegate of one patient is nobody for another.
        let err = s
            .apply(&grant_event(
                GUARDIAN,
                grant("g2", OTHER_PATIENT, CLINICIAN),
            ))
            .unwrap_err();
        assert_eq!(err.code(), "consent.not_patient_or_delegate");
    }

    #[test]
    fn delegate_changes_need_patient_or_registrar() {
        let mut s = ConsentState::with_registrars([REGISTRAR]);
        let register = |author: &str| ConsentEvent::RegisterDelegate {
            author: author.into(),
            patient: PATIENT.into(),
            delegate: GUARDIAN.into(),
        };
        assert_eq!(
            s.apply(&register(GUARDIAN)).unwrap_err().code(),
            "consent.delegate_change_unauthorized"
        );
        s.apply(&register(REGISTRAR)).unwrap();
        assert_eq!(
            s.apply(&register(PATIENT)).unwrap_err().code(),
            "consent.duplicate_delegate"
        );
        assert_eq!(s.delegates_of(PATIENT).collect::<Vec<_>>(), vec![GUARDIAN]);
        let remove = ConsentEvent::RemoveDelegate {
            author: PATIENT.into(),
            patient: PATIENT.into(),
            delegate: GUARDIAN.into(),
        };
        s.apply(&remove).unwrap();
        assert_eq!(
            s.apply(&remove).unwrap_err().code(),
            "consent.unknown_delegate"
        );
        let myself = ConsentEvent::RegisterDelegate {
            author: PATIENT.into(),
            patient: PATIENT.into(),
            delegate: PATIENT.into(),
        };
        assert_eq!(
            s.apply(&myself).unwrap_err().code(),
            "consent.self_delegate"
        );
    }

    #[test]
    fn revoke_refusals() {
        let mut s = ConsentState::new();
        s.apply(&grant_event(PATIENT, grant("g1", PATIENT, CLINICIAN)))
            .unwrap();
        assert_eq!(
            s.apply(&revoke_event(PATIENT, "nope")).unwrap_err().code(),
            "consent.unknown_grant"
        );
        // Another patient's revocation, and the grantee's own.
        for author in [OTHER_PATIENT, CLINICIAN] {
            assert_eq!(
                s.apply(&revoke_event(author, "g1")).unwrap_err().code(),
                "consent.foreign_grant"
            );
        }
        assert_eq!(s.grants_between(PATIENT, CLINICIAN).count(), 1);
        s.apply(&revoke_event(PATIENT, "g1")).unwrap();
        assert_eq!(
            s.apply(&revoke_event(PATIENT, "g1")).unwrap_err().code(),
            "consent.already_revoked"
        );
    }

    #[test]
    fn grant_ids_are_never_reused() {
        let mut s = ConsentState::new();
        s.apply(&grant_event(PATIENT, grant("g1", PATIENT, CLINICIAN)))
            .unwrap();
        s.apply(&revoke_event(PATIENT, "g1")).unwrap();
        let err = s
            .apply(&grant_event(PATIENT, grant("g1", PATIENT, CLINICIAN)))
            .unwrap_err();
        assert_eq!(err.code(), "consent.duplicate_grant");
        assert_eq!(
            err.to_string(),
            "grant \"g1\" already exists",
            "messages name the grant"
        );
    }

    #[test]
    fn invalid_grant_is_refused_before_authorization() {
        let mut s = ConsentState::new();
        let mut g = grant("g1", PATIENT, CLINICIAN);
        g.not_after = -5;
        let err = s.apply(&grant_event(PATIENT, g)).unwrap_err();
        assert_eq!(err.code(), "consent.invalid_period");
    }

    #[test]
    fn events_round_trip_through_json() {
        let events = vec![
            grant_event(PATIENT, grant("g1", PATIENT, CLINICIAN)),
            revoke_event(PATIENT, "g1"),
        ];
        let json = serde_json::to_string(&events).unwrap();
        let back: Vec<ConsentEvent> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, events);
    }
}

/// The consent state as a snapshot stores it: every map in key order, so
/// one state has one encoding, and no Cedar entity (each grant's entity is
/// rebuilt from the grant when the snapshot is loaded).
#[derive(Serialize, Deserialize)]
struct ConsentSnapshot {
    registrars: BTreeSet<String>,
    /// (grant, revoked), by grant id.
    grants: Vec<(Grant, bool)>,
    index: std::collections::BTreeMap<String, std::collections::BTreeMap<String, Vec<String>>>,
    delegates: std::collections::BTreeMap<String, BTreeSet<String>>,
    unrevoked: usize,
}

impl Serialize for ConsentState {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut grants: Vec<&GrantRecord> = self.grants.values().map(|r| r.as_ref()).collect();
        grants.sort_unstable_by(|a, b| a.grant.id.cmp(&b.grant.id));
        // Borrowed, so a snapshot copies nothing but the output.
        #[derive(Serialize)]
        struct Borrowed<'a> {
            registrars: &'a BTreeSet<String>,
            grants: Vec<(&'a Grant, bool)>,
            index: std::collections::BTreeMap<
                &'a str,
                std::collections::BTreeMap<&'a str, &'a Vec<String>>,
            >,
            delegates: std::collections::BTreeMap<&'a str, &'a BTreeSet<String>>,
            unrevoked: usize,
        }
        Borrowed {
            registrars: &self.registrars,
            grants: grants.iter().map(|r| (&r.grant, r.revoked)).collect(),
            index: self
                .index
                .iter()
                .map(|(patient, by_grantee)| {
                    (
                        patient.as_str(),
                        by_grantee
                            .iter()
                            .map(|(g, ids)| (g.as_str(), ids))
                            .collect(),
                    )
                })
                .collect(),
            delegates: self
                .delegates
                .iter()
                .map(|(p, d)| (p.as_str(), d))
                .collect(),
            unrevoked: self.unrevoked,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ConsentState {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let snapshot = ConsentSnapshot::deserialize(deserializer)?;
        let mut grants = HashMap::new();
        for (grant, revoked) in snapshot.grants {
            let entity = grant_entity(&grant).map_err(serde::de::Error::custom)?;
            let id = grant.id.clone();
            let record = GrantRecord {
                grant,
                entity,
                revoked,
            };
            if grants.insert(id, Arc::new(record)).is_some() {
                return Err(serde::de::Error::custom("a grant id appears twice"));
            }
        }
        Ok(ConsentState {
            registrars: snapshot.registrars,
            grants,
            index: snapshot
                .index
                .into_iter()
                .map(|(patient, by_grantee)| (patient, by_grantee.into_iter().collect()))
                .collect(),
            delegates: snapshot.delegates.into_iter().collect(),
            unrevoked: snapshot.unrevoked,
        })
    }
}
