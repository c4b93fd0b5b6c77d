//! Device: the FHIR R5 view of an attested device on the ledger
//! (docs/devices.md, docs/fhir.md).
//!
//! A device bound by `device.attest` is read as `Device/<id>`, its id the
//! method-specific identifier of its did:key (`z6Mk…`,
//! [`device_fhir_id`]), the id its readings' Observations reference
//! (`device.reference`). The resource carries the DID as identifier, the
//! attestation's issuer as `manufacturer`, the attested model as
//! `modelNumber` and name, the firmware as `version`, and `status`
//! `active` while the device is in good standing and its binding has not
//! ended (`inactive` once its manufacturer is no longer trusted, its
//! attestation revoked, suspended, expired or of unknown status). Never a
//! serial number or UDI: the attestation never disclosed them.
//!
//! As `GET /v1/devices/{did}`: only the bound patient, their delegates and
//! the device itself see it; anyone else gets the same 404 as for an
//! unknown id. R5's Device has no patient; `Device?patient=` (a Hygeia
//! search parameter, in the CapabilityStatement) lists the attested
//! devices bound to a patient that the requester may see.

use hygeia_auth::scope::Interaction;
use hygeia_auth::token::Session;
use hygeia_state::devices::batch::{device_fhir_id, device_of_fhir_id};
use hygeia_state::devices::{DeviceEntry, DeviceStanding};
use hygeia_state::LedgerState;
use serde_json::{json, Value};

use super::{decide, scopes, FhirError};
use crate::node::{unix_now, Node};

/// The system of DIDs as identifiers (RFC 3986 URIs).
const DID_SYSTEM: &str = "urn:ietf:rfc:3986";
/// ISO/IEEE 11073-10101: the firmware revision (as in the R5 device
/// examples, `Device-RocheGlucoseMonitor`).
const MDC_SYSTEM: &str = "urn:iso:std:iso:11073:10101";
const MDC_FIRMWARE: &str = "531976";

/// An attested device as a FHIR R5 Device, as the ledger says at `now`.
pub fn device_resource(state: &LedgerState, entry: &DeviceEntry, now: i64) -> Value {
    let standing = state.device_standing(entry, now);
    let active = standing == DeviceStanding::Valid && now < entry.until;
    let mut resource = json!({
        "resourceType": "Device",
        "identifier": [{"system": DID_SYSTEM, "value": entry.device}],
        "status": if active { "active" } else { "inactive" },
        "manufacturer": entry.issuer,
        "name": [{"value": entry.model, "type": "user-friendly-name"}],
        "modelNumber": entry.model,
        "version": [{
            "type": {"coding": [{"system": MDC_SYSTEM, "code": MDC_FIRMWARE}], "text": "MDC_ID_PROD_SPEC_FW: Firmware revision"},
            "value": entry.firmware_version,
        }],
    });
    if let Some(id) = device_fhir_id(&entry.device) {
        resource["id"] = json!(id);
    }
    resource
}

/// Whether `id` has the shape of an attested device's id: such ids are
/// the ledger's (docs/fhir.md), never read from the FHIR store.
pub fn is_device_id(id: &str) -> bool {
    device_of_fhir_id(id).is_some()
}

/// Whether the requester may see `entry`: its patient, a delegate of the
/// patient, or the device itself, within the token's scopes.
fn may_see(
    state: &LedgerState,
    session: &Session,
    interaction: Interaction,
    entry: &DeviceEntry,
) -> bool {
    let me = session.did.as_str();
    let party = me == entry.patient
        || me == entry.device
        || state.policy.consents().is_delegate(&entry.patient, me);
    party && scopes::within(session, interaction, "Device", &entry.patient)
}

/// `GET /fhir/Device/{id}` for an attested device: anyone who may not see
/// it gets the 404 of an unknown id.
pub fn read_device(node: &Node, session: &Session, id: &str) -> Result<Value, FhirError> {
    let committed = node.state.read();
    let state = &committed.state;
    device_of_fhir_id(id)
        .and_then(|did| state.devices.device(&did))
        .filter(|entry| may_see(state, session, Interaction::Read, entry))
        .map(|entry| device_resource(state, entry, unix_now() as i64))
        .ok_or_else(|| decide::not_found(&format!("Device/{id}")))
}

/// `GET /fhir/Device?patient=…`: the attested devices bound to the patient
/// (a DID or `Patient/<id>`) that the requester may see, in binding
/// order; none for anyone else.
pub fn search_devices(node: &Node, session: &Session, patient: &str) -> Vec<Value> {
    let patient_did = if patient.starts_with("did:") {
        Some(patient.to_owned())
    } else {
        super::views::patient_did(node, patient)
    };
    let Some(patient_did) = patient_did else {
        return Vec::new();
    };
    let committed = node.state.read();
    let state = &committed.state;
    let now = unix_now() as i64;
    state
        .devices
        .of_patient(&patient_did)
        .filter(|entry| may_see(state, session, Interaction::Search, entry))
        .map(|entry| device_resource(state, entry, now))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the R5 example does, ours does (the firmware's code), and the
    /// view passes the validator the FHIR API uses.
    #[test]
    fn the_view_follows_the_r5_example_and_validates() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/vectors/fhir-r5-workflows"
        );
        let example: Value = serde_json::from_str(
            &std::fs::read_to_string(format!("{dir}/Device-RocheGlucoseMonitor.json")).unwrap(),
        )
        .unwrap();
        hygeia_fhir::validate::validate(&example, None).unwrap();
        assert_eq!(
            example["version"][0]["type"]["coding"][0]["system"],
            MDC_SYSTEM
        );
        assert_eq!(
            example["version"][0]["type"]["coding"][0]["code"],
            MDC_FIRMWARE
        );
        assert_eq!(example["name"][0]["type"], "user-friendly-name");

        let device = hygeia_identity::Keypair::generate().did().to_string();
        let entry = DeviceEntry {
            device: device.clone(),
            patient: "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK".into(),
            issuer: "did:web:maker.example".into(),
            model: "GlucoWatch 3".into(),
            firmware_version: "2.1.0".into(),
            not_before: None,
            not_after: None,
            status: Vec::new(),
            from: 0,
            until: i64::MAX,
            index: 5,
            last_to: None,
            batches: 0,
            readings: 0,
            days: Default::default(),
            study: None,
        };
        // No trust list entry for its manufacturer: not in good standing.
        let state = LedgerState::empty();
        let resource = device_resource(&state, &entry, 1_800_000_000);
        hygeia_fhir::validate::validate(&resource, Some(hygeia_fhir::types::ResourceType::Device))
            .unwrap();
        assert_eq!(resource["status"], "inactive");
        assert_eq!(resource["identifier"][0]["value"], device);
        assert_eq!(resource["manufacturer"], "did:web:maker.example");
        assert_eq!(resource["modelNumber"], "GlucoWatch 3");
        assert_eq!(resource["version"][0]["value"], "2.1.0");
        let id = resource["id"].as_str().unwrap();
        assert!(is_device_id(id));
        assert_eq!(format!("did:key:{id}"), device);
        assert!(resource.get("serialNumber").is_none() && resource.get("udiCarrier").is_none());
    }
}
