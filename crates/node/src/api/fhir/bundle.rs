//! Transaction and batch Bundles (`POST /fhir`).
//!
//! A transaction is all or nothing: every entry is validated, decided,
//! encrypted and signed first; if any entry fails, nothing of the Bundle is
//! kept (the vault records are discarded, no `record` transaction is
//! submitted) and the answer names the entry. Otherwise all the entries'
//! `record` transactions and access events go to the ledger in one atomic
//! submission. A batch runs each entry on its own.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use hygeia_auth::scope::Interaction;
use hygeia_auth::token::Session;
use hygeia_fhir::outcome::Issue;
use hygeia_fhir::reference::{did_of_resource, is_valid_id};
use hygeia_fhir::types::ResourceType;
use serde_json::{json, Value};

use super::write::{self, Intent, Pending, Prepared};
use super::{
    authenticate, decide, fhir_json, parse_body, require_fhir_json, FhirError, MAX_BUNDLE_ENTRIES,
};
use crate::node::Node;

/// One entry's request, understood.
struct Request {
    intent: Intent,
    /// The entry's fullUrl when it is a `urn:uuid:` other entries refer to.
    full_url: Option<String>,
}

fn entry_error(position: usize, mut error: FhirError) -> FhirError {
    let label = format!("Bundle.entry[{position}]");
    for issue in &mut error.issues {
        if !issue.diagnostics.starts_with(&label) {
            issue.diagnostics = format!("{label}: {}", issue.diagnostics);
        }
        if issue.expression.is_none() {
            issue.expression = Some(format!("Bundle.entry[{position}]"));
        }
    }
    error
}

fn invalid(position: usize, code: &'static str, message: impl Into<String>) -> FhirError {
    FhirError::new(
        StatusCode::BAD_REQUEST,
        Issue::error(code, message).at(format!("Bundle.entry[{position}].request")),
    )
}

/// Reads an entry's request: method, URL, resource.
fn understand(position: usize, entry: &Value) -> Result<Request, FhirError> {
    let request = entry.get("request").ok_or_else(|| {
        invalid(
            position,
            "required",
            format!("Bundle.entry[{position}].request is required in a transaction or batch"),
        )
    })?;
    let method = request.get("method").and_then(Value::as_str).unwrap_or("");
    let url = request.get("url").and_then(Value::as_str).unwrap_or("");
    for unsupported in ["ifNoneMatch", "ifModifiedSince", "ifNoneExist"] {
        if request.get(unsupported).is_some() {
            return Err(invalid(
                position,
                "not-supported",
                format!("conditional requests ({unsupported}) are not supported"),
            ));
        }
    }
    if url.contains('?') {
        return Err(invalid(
            position,
            "not-supported",
            "conditional requests (a URL with a query) are not supported",
        ));
    }
    let if_match = request
        .get("ifMatch")
        .and_then(Value::as_str)
        .map(|t| {
            write::parse_etag(t).ok_or_else(|| {
                invalid(
                    position,
                    "value",
                    "ifMatch must be a version ETag such as W/\"3\"",
                )
            })
        })
        .transpose()?;
    let resource = entry.get("resource").cloned();
    let full_url = entry
        .get("fullUrl")
        .and_then(Value::as_str)
        .filter(|u| u.starts_with("urn:uuid:"))
        .map(str::to_owned);
    let label = format!("Bundle.entry[{position}]");
    let mut parts = url.trim_matches('/').split('/');
    let type_name = parts.next().unwrap_or("");
    let resource_type: ResourceType =
        type_name
            .parse()
            .map_err(|e: hygeia_fhir::types::UnsupportedType| {
                invalid(position, "not-supported", e.to_string())
            })?;
    let id = parts.next();
    if parts.next().is_some() {
        return Err(invalid(
            position,
            "not-supported",
            format!("request.url {url:?}: only Type and Type/id are supported"),
        ));
    }
    if matches!(
        resource_type,
        ResourceType::Consent | ResourceType::AuditEvent | ResourceType::Provenance
    ) {
        return Err(invalid(position, "not-supported", format!("{resource_type} cannot be written in a Bundle (Consent needs the patient's signed grant: POST /fhir/Consent)")));
    }
    let need_resource = |resource: Option<Value>| {
        let resource = resource.ok_or_else(|| {
            invalid(
                position,
                "required",
                format!("Bundle.entry[{position}].resource is required for {method}"),
            )
        })?;
        if !resource.is_object() {
            return Err(invalid(
                position,
                "structure",
                "the resource must be a JSON object",
            ));
        }
        Ok(resource)
    };
    let intent = match (method, id) {
        ("POST", None) => Intent {
            interaction: Interaction::Create,
            resource_type,
            id: write::new_id(),
            resource: Some(need_resource(resource)?),
            if_match,
            label,
        },
        ("PUT", Some(id)) => {
            if !is_valid_id(id) {
                return Err(invalid(position, "value", format!("{id:?} is not a valid FHIR id")));
            }
            let resource = need_resource(resource)?;
            if resource.get("id").and_then(Value::as_str) != Some(id) {
                return Err(invalid(position, "invalid", format!("the resource's id must equal the id in request.url ({id})")));
            }
            Intent {
                interaction: Interaction::Update,
                resource_type,
                id: id.to_owned(),
                resource: Some(resource),
                if_match,
                label,
            }
        }
        ("DELETE", Some(id)) => Intent {
            interaction: Interaction::Delete,
            resource_type,
            id: id.to_owned(),
            resource: None,
            if_match,
            label,
        },
        ("GET", _) | ("HEAD", _) | ("PATCH", _) => {
            return Err(invalid(position, "not-supported", format!("{method} entries are not supported in a Bundle; read and search with GET /fhir/...")))
        }
        _ => {
            return Err(invalid(position, "invalid", format!("request {method} {url:?}: use POST Type, PUT Type/id or DELETE Type/id")))
        }
    };
    Ok(Request { intent, full_url })
}

/// Rewrites references to `urn:uuid:` fullUrls of the Bundle's POST entries
/// into the ids the server assigned.
fn rewrite_references(value: &mut Value, assigned: &HashMap<String, String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if key == "reference" {
                    if let Some(target) = child.as_str().and_then(|t| assigned.get(t)) {
                        *child = json!(target);
                        continue;
                    }
                }
                rewrite_references(child, assigned);
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| rewrite_references(v, assigned)),
        _ => {}
    }
}

fn response_entry(prepared: &Prepared, base: &str) -> Value {
    let v = &prepared.new.version;
    let status = match (v.deleted, prepared.created) {
        (true, _) => "204 No Content",
        (false, true) => "201 Created",
        (false, false) => "200 OK",
    };
    let mut response = json!({
        "status": status,
        "etag": format!("W/\"{}\"", v.version),
        "lastModified": hygeia_fhir::date::format_instant(v.last_updated),
    });
    if !v.deleted {
        response["location"] = json!(format!(
            "{base}/{}/{}/_history/{}",
            prepared.new.resource_type, prepared.new.id, v.version
        ));
    }
    json!({ "response": response })
}

/// `POST /fhir`.
pub async fn process(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, FhirError> {
    let session = authenticate(&node, &headers)?;
    require_fhir_json(&headers)?;
    let mut bundle = parse_body(&body)?;
    if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(FhirError::new(
            StatusCode::BAD_REQUEST,
            Issue::error(
                "invalid",
                "POST /fhir takes a Bundle (type transaction or batch)",
            )
            .at("resourceType"),
        ));
    }
    let kind = bundle
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let entries = match bundle.get_mut("entry").map(Value::take) {
        None => Vec::new(),
        Some(Value::Array(entries)) => entries,
        Some(_) => {
            return Err(FhirError::new(
                StatusCode::BAD_REQUEST,
                Issue::error("structure", "Bundle.entry must be an array").at("Bundle.entry"),
            ))
        }
    };
    if entries.len() > MAX_BUNDLE_ENTRIES {
        return Err(FhirError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            Issue::error(
                "too-costly",
                format!(
                    "a Bundle may have at most {MAX_BUNDLE_ENTRIES} entries; this one has {}",
                    entries.len()
                ),
            )
            .at("Bundle.entry"),
        ));
    }
    match kind.as_str() {
        "transaction" => transaction(&node, &session, &headers, entries).await,
        "batch" => batch(&node, &session, &headers, entries).await,
        other => Err(FhirError::new(
            StatusCode::BAD_REQUEST,
            Issue::error(
                "not-supported",
                format!(
                    "Bundle.type {other:?}: this server processes transaction and batch Bundles"
                ),
            )
            .at("Bundle.type"),
        )),
    }
}

async fn transaction(
    node: &Node,
    session: &Session,
    headers: &HeaderMap,
    entries: Vec<Value>,
) -> Result<Response, FhirError> {
    let purpose = decide::purpose(session)?;
    let mut requests = Vec::with_capacity(entries.len());
    for (position, entry) in entries.iter().enumerate() {
        let request = understand(position, entry)?;
        super::scopes::require(
            session,
            request.intent.interaction,
            request.intent.resource_type.as_str(),
        )
        .map_err(|e| entry_error(position, e))?;
        requests.push(request);
    }
    // fullUrl → the id the server assigned, for references between entries.
    let assigned: HashMap<String, String> = requests
        .iter()
        .filter_map(|r| {
            r.full_url.as_ref().map(|u| {
                (
                    u.clone(),
                    format!("{}/{}", r.intent.resource_type, r.intent.id),
                )
            })
        })
        .collect();
    let keys: Vec<String> = requests
        .iter()
        .map(|r| format!("{}/{}", r.intent.resource_type, r.intent.id))
        .collect();
    let _lease = write::lease(node, &keys)?;
    let now_ms = write::unix_now_ms();
    let mut pending = Pending::new();
    let mut prepared = Vec::with_capacity(requests.len());
    for (position, mut request) in requests.into_iter().enumerate() {
        if let Some(resource) = request.intent.resource.as_mut() {
            rewrite_references(resource, &assigned);
        }
        let patient_did = request
            .intent
            .resource
            .as_ref()
            .filter(|_| request.intent.resource_type == ResourceType::Patient)
            .and_then(|r| did_of_resource(r).map(str::to_owned));
        let key = format!("{}/{}", request.intent.resource_type, request.intent.id);
        match write::prepare(node, session, purpose, request.intent, &pending, now_ms) {
            Ok(p) => {
                if let Some(did) = patient_did {
                    pending.insert(key, did);
                }
                prepared.push(p);
            }
            Err(refused) => {
                write::discard(node, &prepared);
                write::log_refusals(node, session, refused.events).await?;
                let mut error = entry_error(position, refused.error);
                error.issues.push(Issue::error(
                    "processing",
                    "the transaction was not applied: no entry of it was kept",
                ));
                return Err(error);
            }
        }
    }
    if prepared.is_empty() {
        return Ok(fhir_json(
            StatusCode::OK,
            &json!({ "resourceType": "Bundle", "type": "transaction-response", "entry": [] }),
        ));
    }
    let (receipt, prepared) = write::commit(node, session, prepared, Vec::new()).await?;
    let base = super::base_url(headers);
    let entries: Vec<Value> = prepared.iter().map(|p| response_entry(p, &base)).collect();
    let mut response = fhir_json(
        StatusCode::OK,
        &json!({ "resourceType": "Bundle", "type": "transaction-response", "entry": entries }),
    );
    response.headers_mut().insert(
        "hygeia-audit-index",
        axum::http::HeaderValue::from(receipt.first_index),
    );
    Ok(response)
}

async fn batch(
    node: &Node,
    session: &Session,
    headers: &HeaderMap,
    entries: Vec<Value>,
) -> Result<Response, FhirError> {
    let purpose = decide::purpose(session)?;
    let base = super::base_url(headers);
    let mut out = Vec::with_capacity(entries.len());
    for (position, entry) in entries.iter().enumerate() {
        let result = async {
            let request = understand(position, entry)?;
            super::scopes::require(
                session,
                request.intent.interaction,
                request.intent.resource_type.as_str(),
            )?;
            let key = format!("{}/{}", request.intent.resource_type, request.intent.id);
            let _lease = write::lease(node, std::slice::from_ref(&key))?;
            let prepared = match write::prepare(
                node,
                session,
                purpose,
                request.intent,
                &Pending::new(),
                write::unix_now_ms(),
            ) {
                Ok(p) => p,
                Err(refused) => {
                    write::log_refusals(node, session, refused.events).await?;
                    return Err(refused.error);
                }
            };
            let (_, prepared) = write::commit(node, session, vec![prepared], Vec::new()).await?;
            Ok(response_entry(&prepared[0], &base))
        }
        .await;
        out.push(match result {
            Ok(entry) => entry,
            Err(error) => json!({
                "response": {
                    "status": format!("{} {}", error.status.as_u16(), error.status.canonical_reason().unwrap_or("")),
                    "outcome": error.outcome(),
                }
            }),
        });
    }
    Ok(fhir_json(
        StatusCode::OK,
        &json!({ "resourceType": "Bundle", "type": "batch-response", "entry": out }),
    ))
}
