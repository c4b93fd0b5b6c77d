//! `GET /fhir/metadata`: a CapabilityStatement that says exactly what this
//! server does — built from the same tables the handlers use, so it cannot
//! drift from them.

use axum::http::StatusCode;
use axum::response::Response;
use hygeia_fhir::search::{params, ParamKind};
use hygeia_fhir::types::{Holding, ResourceType};
use serde_json::{json, Value};

use super::fhir_json;

fn kind(kind: &ParamKind) -> &'static str {
    match kind {
        ParamKind::Token => "token",
        ParamKind::Date => "date",
        ParamKind::Reference => "reference",
        ParamKind::String => "string",
    }
}

fn resource(resource_type: ResourceType) -> Value {
    let mut search: Vec<Value> = vec![
        json!({ "name": "_count", "type": "number" }),
        json!({ "name": "_offset", "type": "number" }),
    ];
    let interactions: Vec<&str> = match resource_type.holding() {
        Holding::LedgerView if resource_type == ResourceType::Consent => {
            search.push(json!({ "name": "patient", "type": "reference" }));
            vec!["read", "search-type", "create", "delete"]
        }
        Holding::LedgerView => {
            search.push(json!({
                "name": if resource_type == ResourceType::Provenance { "target" } else { "patient" },
                "type": "reference"
            }));
            vec!["read", "search-type"]
        }
        _ => {
            for p in params(resource_type) {
                search.push(json!({ "name": p.name, "type": kind(&p.kind) }));
            }
            if resource_type == ResourceType::Device {
                search.push(json!({
                    "name": "patient",
                    "type": "reference",
                    "documentation": "Hygeia: the attested devices on the ledger bound to this patient (a DID or Patient/<id>) that the requester may see (the patient, a delegate, the device); alone, not combined with the other parameters",
                }));
            }
            search.push(json!({ "name": "_sort", "type": "special" }));
            search.push(json!({ "name": "_total", "type": "special" }));
            vec![
                "read",
                "vread",
                "update",
                "delete",
                "history-instance",
                "create",
                "search-type",
            ]
        }
    };
    let mut entry = json!({
        "type": resource_type.as_str(),
        "interaction": interactions.iter().map(|c| json!({ "code": c })).collect::<Vec<_>>(),
        "versioning": "versioned-update",
        "readHistory": true,
        "updateCreate": resource_type.holding() != Holding::LedgerView,
        "conditionalCreate": false,
        "conditionalUpdate": false,
        "conditionalDelete": "not-supported",
        "searchParam": search,
    });
    if resource_type.holding() != Holding::LedgerView {
        let includes: Vec<String> = params(resource_type)
            .iter()
            .filter(|p| matches!(p.kind, ParamKind::Reference))
            .map(|p| format!("{resource_type}:{}", p.name))
            .collect();
        entry["searchInclude"] = json!(includes);
    }
    let mut operations = Vec::new();
    if matches!(resource_type, ResourceType::Patient | ResourceType::Group) {
        operations.push(json!({ "name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export" }));
    }
    if resource_type == ResourceType::Patient {
        operations.push(json!({
            "name": super::health_cards::OPERATION.trim_start_matches('$'),
            "definition": super::health_cards::DEFINITION,
            "documentation": "SMART Health Cards of the patient's immunizations and lab results, signed by this node's issuer key (/.well-known/jwks.json); every resource decided and logged like a read",
        }));
    }
    if !operations.is_empty() {
        entry["operation"] = Value::Array(operations);
    }
    entry
}

pub async fn capability_statement() -> Response {
    let statement = json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-21",
        "publisher": "Hygeia",
        "kind": "instance",
        "software": { "name": "Hygeia", "version": env!("CARGO_PKG_VERSION") },
        "implementation": { "description": "Hygeia node: consent enforced on every read, every access an AuditEvent backed by a ledger proof" },
        "fhirVersion": hygeia_fhir::FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "security": {
                "cors": false,
                "service": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "SMART-on-FHIR" }] }],
                "description": "Bearer tokens from POST /auth/token: SMART App Launch (authorization code with PKCE S256, .well-known/smart-configuration; docs/smart.md) or an RFC 7523 client assertion signed with the participant's did:key (docs/fhir.md). SMART scopes are enforced on top of consent: every access is decided by the patient's consent and logged on the ledger.",
            },
            "resource": ResourceType::ALL.iter().map(|t| resource(*t)).collect::<Vec<_>>(),
            "interaction": [{ "code": "transaction" }, { "code": "batch" }],
        }],
    });
    fhir_json(StatusCode::OK, &statement)
}
