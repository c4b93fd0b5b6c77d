//! Literal references (`Patient/123`, `Patient/123/_history/2`) and
//! logical references to a DID (`{"identifier": {"system":
//! "urn:ietf:rfc:3986", "value": "did:key:..."}}`).

use serde_json::Value;

use crate::types::ResourceType;
use crate::DID_IDENTIFIER_SYSTEM;

/// A FHIR logical id: 1 to 64 of `[A-Za-z0-9-.]`.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// A reference to a resource on this server.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LocalRef {
    pub resource_type: ResourceType,
    pub id: String,
    pub version: Option<u64>,
}

impl LocalRef {
    /// `Type/id` (without the version): the key resources are indexed by.
    pub fn key(&self) -> String {
        format!("{}/{}", self.resource_type, self.id)
    }
}

/// Parses `Type/id` or `Type/id/_history/vid`, also after this server's
/// base URL (`base` ends without a slash, e.g. `http://host/fhir`).
pub fn parse_local(reference: &str, base: Option<&str>) -> Option<LocalRef> {
    let relative = match base {
        Some(base) => reference
            .strip_prefix(base)
            .and_then(|r| r.strip_prefix('/'))
            .unwrap_or(reference),
        None => reference,
    };
    let mut parts = relative.split('/');
    let resource_type = parts.next()?.parse().ok()?;
    let id = parts.next()?;
    if !is_valid_id(id) {
        return None;
    }
    let version = match (parts.next(), parts.next()) {
        (None, None) => None,
        (Some("_history"), Some(v)) => Some(v.parse().ok()?),
        _ => return None,
    };
    if parts.next().is_some() {
        return None;
    }
    Some(LocalRef {
        resource_type,
        id: id.to_owned(),
        version,
    })
}

/// The DID a Reference names through its identifier, if it does.
pub fn did_of_reference(reference: &Value) -> Option<&str> {
    did_of_identifier(reference.get("identifier")?)
}

/// The DID an Identifier holds (system `urn:ietf:rfc:3986`, value `did:`).
pub fn did_of_identifier(identifier: &Value) -> Option<&str> {
    if identifier.get("system")?.as_str()? != DID_IDENTIFIER_SYSTEM {
        return None;
    }
    identifier
        .get("value")?
        .as_str()
        .filter(|v| v.starts_with("did:"))
}

/// The first DID among a resource's identifiers (Patient, Practitioner,
/// Organization name their participant this way).
pub fn did_of_resource(resource: &Value) -> Option<&str> {
    resource
        .get("identifier")?
        .as_array()?
        .iter()
        .find_map(did_of_identifier)
}

/// A Reference that names a DID.
pub fn did_reference(did: &str) -> Value {
    serde_json::json!({ "identifier": { "system": DID_IDENTIFIER_SYSTEM, "value": did } })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn local_references() {
        let r = parse_local("Patient/abc-1", None).unwrap();
        assert_eq!(r.resource_type, ResourceType::Patient);
        assert_eq!(r.key(), "Patient/abc-1");
        assert_eq!(r.version, None);
        let r = parse_local(
            "http://h/fhir/Observation/x/_history/3",
            Some("http://h/fhir"),
        )
        .unwrap();
        assert_eq!(r.version, Some(3));
        for bad in [
            "Patient",
            "Patient/",
            "Patient/a b",
            "Nope/1",
            "Patient/1/_history",
            "Patient/1/_history/x",
            "Patient/1/extra",
            "Patient/1/_history/2/more",
        ] {
            assert_eq!(parse_local(bad, None), None, "{bad}");
        }
    }

    #[test]
    fn dids_through_identifiers() {
        let r = did_reference("did:key:z6Mk");
        assert_eq!(did_of_reference(&r), Some("did:key:z6Mk"));
        let p = json!({"identifier": [{"system": "urn:oid:1", "value": "x"}, {"system": DID_IDENTIFIER_SYSTEM, "value": "did:key:z6Mk"}]});
        assert_eq!(did_of_resource(&p), Some("did:key:z6Mk"));
        let not_did =
            json!({"identifier": {"system": DID_IDENTIFIER_SYSTEM, "value": "urn:uuid:1"}});
        assert_eq!(did_of_reference(&not_did), None);
    }
}
