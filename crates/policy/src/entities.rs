//! The Cedar side of the data: entity uids and entities for requesters,
//! records and grants, shaped as `policies/hygeia.cedarschema` declares.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use cedar_policy::{Entity, EntityId, EntityTypeName, EntityUid, RestrictedExpression};

use crate::engine::{AccessRequest, Requester};
use crate::grant::{Action, Grant};

/// The Cedar names requests are built from, parsed once.
pub(crate) struct Names {
    agent: EntityTypeName,
    record: EntityTypeName,
    grant: EntityTypeName,
    read: EntityUid,
    write: EntityUid,
}

pub(crate) fn names() -> &'static Names {
    static NAMES: OnceLock<Names> = OnceLock::new();
    NAMES.get_or_init(|| {
        // Constants of this crate's schema, exercised by every test.
        let ty = |name: &str| name.parse::<EntityTypeName>().expect("a valid type name");
        let action =
            |id: &str| EntityUid::from_type_name_and_id(ty("Hygeia::Action"), EntityId::new(id));
        Names {
            agent: ty("Hygeia::Agent"),
            record: ty("Hygeia::Record"),
            grant: ty("Hygeia::Grant"),
            read: action(Action::Read.as_str()),
            write: action(Action::Write.as_str()),
        }
    })
}

impl Names {
    pub(crate) fn agent(&self, did: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(self.agent.clone(), EntityId::new(did))
    }

    pub(crate) fn record(&self, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(self.record.clone(), EntityId::new(id))
    }

    pub(crate) fn grant(&self, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(self.grant.clone(), EntityId::new(id))
    }

    pub(crate) fn action(&self, action: Action) -> EntityUid {
        match action {
            Action::Read => self.read.clone(),
            Action::Write => self.write.clone(),
        }
    }
}

fn string(s: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(s.to_owned())
}

fn string_set<'a>(items: impl IntoIterator<Item = &'a str>) -> RestrictedExpression {
    RestrictedExpression::new_set(items.into_iter().map(string))
}

/// The requester as a `Hygeia::Agent`, its organizations as parents.
pub(crate) fn principal_entity(requester: &Requester) -> Result<Entity, String> {
    let names = names();
    let mut attrs = HashMap::with_capacity(3);
    attrs.insert(
        "roles".to_owned(),
        string_set(requester.roles.iter().map(String::as_str)),
    );
    attrs.insert(
        "suspended".to_owned(),
        RestrictedExpression::new_bool(requester.suspended),
    );
    if let Some(j) = &requester.jurisdiction {
        attrs.insert("jurisdiction".to_owned(), string(j));
    }
    attrs.insert(
        "licensed".to_owned(),
        RestrictedExpression::new_bool(requester.licence.is_some()),
    );
    if let Some(licence) = &requester.licence {
        attrs.insert(
            "licenceJurisdiction".to_owned(),
            string(&licence.jurisdiction),
        );
        attrs.insert("profession".to_owned(), string(&licence.profession));
    }
    let parents: HashSet<EntityUid> = requester
        .organizations
        .iter()
        .filter(|org| **org != requester.did)
        .map(|org| names.agent(org))
        .collect();
    Entity::new(names.agent(&requester.did), attrs, parents).map_err(|e| e.to_string())
}

/// The record asked for as a `Hygeia::Record`.
pub(crate) fn record_entity(request: &AccessRequest) -> Result<Entity, String> {
    let names = names();
    let mut attrs = HashMap::with_capacity(3);
    attrs.insert(
        "patient".to_owned(),
        RestrictedExpression::new_entity_uid(names.agent(&request.patient)),
    );
    attrs.insert(
        "resourceType".to_owned(),
        string(&request.record.resource_type),
    );
    if let Some(c) = &request.record.category {
        attrs.insert("category".to_owned(), string(c));
    }
    Entity::new(names.record(&request.record.id), attrs, HashSet::new()).map_err(|e| e.to_string())
}

/// A grant as a `Hygeia::Grant`. Built once, when the grant is applied.
pub(crate) fn grant_entity(grant: &Grant) -> Result<Entity, String> {
    let names = names();
    let scope = &grant.scope;
    let attrs: HashMap<String, RestrictedExpression> = [
        (
            "patient",
            RestrictedExpression::new_entity_uid(names.agent(&grant.patient)),
        ),
        (
            "grantee",
            RestrictedExpression::new_entity_uid(names.agent(&grant.grantee)),
        ),
        (
            "actions",
            string_set(grant.actions.iter().map(|a| a.as_str())),
        ),
        (
            "purposes",
            string_set(grant.purpose.covered().iter().map(|p| p.code())),
        ),
        (
            "categories",
            string_set(scope.categories.iter().map(String::as_str)),
        ),
        (
            "resourceTypes",
            string_set(scope.resource_types.iter().map(String::as_str)),
        ),
        (
            "records",
            RestrictedExpression::new_set(
                scope
                    .record_ids
                    .iter()
                    .map(|id| RestrictedExpression::new_entity_uid(names.record(id))),
            ),
        ),
        (
            "notBefore",
            RestrictedExpression::new_long(grant.not_before),
        ),
        ("notAfter", RestrictedExpression::new_long(grant.not_after)),
        (
            "jurisdictions",
            string_set(grant.jurisdictions.iter().map(String::as_str)),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Entity::new(names.grant(&grant.id), attrs, HashSet::new()).map_err(|e| e.to_string())
}
