//! Create, update and delete: each write decided, stored in the vault as a
//! new record, anchored by a `record` transaction and logged, all in one
//! atomic submission. Bundles (bundle.rs) prepare many writes and commit
//! them together.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hygeia_auth::scope::Interaction;
use hygeia_auth::token::Session;
use hygeia_fhir::outcome::Issue;
use hygeia_fhir::reference::{did_of_resource, is_valid_id, parse_local};
use hygeia_fhir::search::IndexEntry;
use hygeia_fhir::types::{consent_category, Holding, ResourceType};
use hygeia_fhir::FHIR_JSON;
use hygeia_identity::Did;
use hygeia_ledger::{Receipt, SignedTx};
use hygeia_policy::PurposeOfUse;
use hygeia_vault::BlobId;
use serde_json::{json, Value};

use super::decide::{self, Subject};
use super::{authenticate, fhir_bytes, fhir_json, parse_body, require_fhir_json, FhirError};
use crate::access;
use crate::custody::RecordMeta;
use crate::fhir_store::{NewVersion, Version, WriteLease};
use crate::node::{unix_now, Node};
use crate::state::txs::{self, Access, RecordBody};

/// What a write asks for, before it is decided.
pub struct Intent {
    /// Create (POST), update (PUT) or delete, as the token's scopes see it.
    pub interaction: Interaction,
    pub resource_type: ResourceType,
    pub id: String,
    /// `None` deletes.
    pub resource: Option<Value>,
    /// `If-Match`: the version the client last saw.
    pub if_match: Option<u64>,
    /// Where the request came from in a Bundle (for error texts).
    pub label: String,
}

/// A write decided, encrypted into the vault and signed, not yet durable.
pub struct Prepared {
    pub new: NewVersion,
    pub blob: BlobId,
    pub meta: RecordMeta,
    pub record_tx: SignedTx,
    pub event: Access,
    /// The stored JSON (for `Prefer: return=representation`).
    pub body: Vec<u8>,
    pub created: bool,
    /// Keeps the patient's group key until this write settles (held, not
    /// read: dropped with the write).
    #[allow(dead_code)]
    pub in_flight: crate::custody::InFlight,
}

/// Why a write did not get prepared: the error, and the decisions to log
/// (a refusal is a decision too; a write about something that does not
/// exist logs its absence, so that both cost the same and look the same).
pub struct Refused {
    pub error: FhirError,
    pub events: Vec<Access>,
}

impl From<FhirError> for Refused {
    fn from(error: FhirError) -> Self {
        Refused {
            error,
            events: Vec::new(),
        }
    }
}

/// What the writes of one request (a transaction Bundle) share: the
/// Patients written earlier in it, and the decisions on new content.
#[derive(Default)]
pub struct Pending {
    /// Patients (by key) written earlier in the same Bundle, with their DIDs.
    patients: HashMap<String, String>,
    /// Decisions on writing new content, by (interaction, patient, type,
    /// category). Such a decision names no record (the content is not
    /// stored yet), so every input the policy engine reads is the same for
    /// two entries with the same key (the requester, purpose and time are
    /// the request's): it is made once per Bundle, as if the Bundle were
    /// decided against one committed state. Lives as long as the request.
    content_decisions: Mutex<HashMap<ContentKey, access::Decided>>,
}

type ContentKey = (Interaction, String, String, String);

impl Pending {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, key: String, did: String) {
        self.patients.insert(key, did);
    }

    fn get(&self, key: &str) -> Option<&String> {
        self.patients.get(key)
    }

    /// [`decide::decide`] on new content, shared within the request.
    fn decide_content(
        &self,
        decide_now: impl FnOnce() -> access::Decided,
        key: ContentKey,
    ) -> access::Decided {
        let mut memo = self
            .content_decisions
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(decided) = memo.get(&key) {
            return decided.clone();
        }
        let decided = decide_now();
        memo.insert(key, decided.clone());
        decided
    }
}

fn unprocessable(issue: Issue) -> FhirError {
    FhirError::new(StatusCode::UNPROCESSABLE_ENTITY, issue)
}

/// The DID whose consent governs a resource; `None` when its compartment
/// reference names a Patient this node does not hold (which is answered
/// like a write the requester may not make: see [`prepare`]).
fn governing_patient(
    node: &Node,
    resource_type: ResourceType,
    resource: &Value,
    pending: &Pending,
) -> Result<Option<String>, FhirError> {
    match resource_type.holding() {
        Holding::Directory => return Ok(Some(node.node_did.clone())),
        Holding::LedgerView => {
            return Err(FhirError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                Issue::error(
                    "not-supported",
                    format!(
                    "{resource_type} resources are views of the ledger and cannot be written here"
                ),
                ),
            ))
        }
        Holding::PatientData => {}
    }
    if resource_type == ResourceType::Patient {
        let did = did_of_resource(resource).ok_or_else(|| {
            unprocessable(
                Issue::error(
                    "required",
                    format!(
                        "a Patient must name the patient's DID in an identifier with system {} (whose consent governs the record; docs/fhir.md)",
                        hygeia_fhir::DID_IDENTIFIER_SYSTEM
                    ),
                )
                .at("Patient.identifier"),
            )
        })?;
        Did::parse_cached(did).map_err(|e| {
            unprocessable(
                Issue::error("value", format!("the patient's DID is not a did:key: {e}"))
                    .at("Patient.identifier"),
            )
        })?;
        return Ok(Some(did.to_owned()));
    }
    let element = resource_type
        .patient_element()
        .ok_or_else(|| FhirError::internal(format!("{resource_type} has no patient element")))?;
    let path = format!("{resource_type}.{element}");
    let reference = resource
        .get(element)
        .and_then(|r| r.get("reference"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            unprocessable(
                Issue::error(
                    "required",
                    format!(
                        "{path} must reference the Patient (Patient/<id>) the resource is about"
                    ),
                )
                .at(path.clone()),
            )
        })?;
    let target = parse_local(reference, None)
        .filter(|r| r.resource_type == ResourceType::Patient && r.version.is_none())
        .ok_or_else(|| {
            unprocessable(
                Issue::error(
                    "invalid",
                    format!(
                        "{path} must be a literal reference to a Patient on this server (Patient/<id>), not {:?}",
                        reference.chars().take(100).collect::<String>()
                    ),
                )
                .at(path.clone()),
            )
        })?;
    let key = target.key();
    if let Some(did) = pending.get(&key) {
        return Ok(Some(did.clone()));
    }
    Ok(node
        .fhir
        .store
        .current(&key)
        .filter(|c| !c.latest.deleted)
        .map(|c| c.latest.patient))
}

/// The answer to a write the requester may not make, the same whether the
/// resource exists or not: a delete, or a write conditioned on a version
/// (`If-Match`), answers like one of a missing resource (404); any other
/// write like a create the requester may not make (403). Nothing in it
/// depends on what exists (docs/fhir.md, "Writes").
fn refusal(label: &str, key: &str, deleting: bool, conditional: bool) -> FhirError {
    if deleting || conditional {
        return decide::not_found(key);
    }
    FhirError::new(
        StatusCode::FORBIDDEN,
        Issue::error(
            "forbidden",
            format!(
                "{label}: you may not make this write (no consent for this purpose, the Patient it names is not on this server, or its id is held by a resource you may not write); the attempt is logged"
            ),
        ),
    )
}

/// A fresh server-assigned id.
pub fn new_id() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Decides, encrypts and signs one write. Nothing is durable yet; on
/// failure nothing is left in the vault.
pub fn prepare(
    node: &Node,
    session: &Session,
    purpose: PurposeOfUse,
    intent: Intent,
    pending: &Pending,
    now_ms: i64,
) -> Result<Prepared, Refused> {
    let Intent {
        interaction,
        resource_type,
        id,
        resource,
        if_match,
        label,
    } = intent;
    let key = format!("{resource_type}/{id}");
    let deleting = resource.is_none();

    // What the request says by itself: checked before anything stored is
    // looked at, so these answers depend on the request alone.
    let mut content = match resource {
        Some(resource) => {
            hygeia_fhir::validate::validate(&resource, Some(resource_type))
                .map_err(|issues| FhirError::many(StatusCode::UNPROCESSABLE_ENTITY, issues))?;
            Some(resource)
        }
        None => None,
    };
    let target = match &content {
        Some(resource) => Some(governing_patient(node, resource_type, resource, pending)?),
        None => None,
    };

    // Decide first: the write on what exists (its latest version, deleted
    // or not), and the write of the new content for its patient. Nothing
    // about the existing resource is answered before both permit.
    let current = node.fhir.store.current(&key);
    let new_category = content
        .as_ref()
        .map(|resource| consent_category(resource_type, resource));
    let (on_existing, on_content, absent) = {
        let committed = node.state.read();
        let decide_on = |subject: &Subject| {
            decide::decide(
                &committed.state,
                session,
                purpose,
                interaction,
                subject,
                now_ms / 1000,
            )
        };
        let on_existing = current.as_ref().map(|c| {
            decide_on(&Subject {
                patient: &c.latest.patient,
                resource_type: resource_type.as_str(),
                category: &c.latest.category,
                commitment: Some(&c.latest.commitment),
            })
        });
        let on_content = match (&target, &new_category) {
            (Some(Some(patient)), Some(category)) => Some(pending.decide_content(
                || {
                    decide_on(&Subject {
                        patient,
                        resource_type: resource_type.as_str(),
                        category,
                        commitment: None,
                    })
                },
                (
                    interaction,
                    patient.clone(),
                    resource_type.as_str().to_owned(),
                    category.clone(),
                ),
            )),
            _ => None,
        };
        let nothing_there = match &content {
            Some(_) => matches!(target, Some(None)),
            None => current.as_ref().is_none_or(|c| c.latest.deleted),
        };
        let absent = if nothing_there || (if_match.is_some() && current.is_none()) {
            Some(decide::absent_event(
                &committed.state,
                &node.node_did,
                session,
                interaction,
                resource_type.as_str(),
            )?)
        } else {
            None
        };
        (on_existing, on_content, absent)
    };
    let denials: Vec<Access> = on_existing
        .iter()
        .chain(on_content.iter())
        .filter(|d| !d.decision.is_permit())
        .map(|d| d.event.clone())
        .collect();
    if !denials.is_empty() || matches!(target, Some(None)) {
        let events = if denials.is_empty() {
            absent.into_iter().collect()
        } else {
            denials
        };
        return Err(Refused {
            error: refusal(&label, &key, deleting, if_match.is_some()),
            events,
        });
    }
    // Permitted so far: the precise answers are the requester's to have.
    if let Some(absent) = absent {
        return Err(Refused {
            error: decide::not_found(&key),
            events: vec![absent],
        });
    }
    if let (Some(expected), Some(current)) = (if_match, current.as_ref()) {
        if current.latest.version != expected {
            return Err(FhirError::new(
                StatusCode::PRECONDITION_FAILED,
                Issue::error(
                    "conflict",
                    format!(
                        "{label}: If-Match names version {expected}, but the current version is {}",
                        current.latest.version
                    ),
                ),
            )
            .into());
        }
    }
    let version = current.as_ref().map_or(1, |c| c.latest.version + 1);
    let (patient, category, content, index, deleted) = match content.take() {
        Some(mut resource) => {
            let Some(Some(patient)) = target else {
                return Err(FhirError::internal("a write without its patient").into());
            };
            if let Some(live) = current.as_ref().filter(|c| !c.latest.deleted) {
                if live.latest.patient != patient {
                    return Err(unprocessable(Issue::error(
                        "business-rule",
                        format!(
                            "{label}: a resource cannot move to another patient; create a new one"
                        ),
                    ))
                    .into());
                }
            }
            let category = new_category.unwrap_or_default();
            resource["id"] = json!(id);
            let meta = resource
                .as_object_mut()
                .map(|o| o.entry("meta").or_insert_with(|| json!({})));
            if let Some(meta) = meta.and_then(Value::as_object_mut) {
                meta.insert("versionId".into(), json!(version.to_string()));
                meta.insert(
                    "lastUpdated".into(),
                    json!(hygeia_fhir::date::format_instant(now_ms)),
                );
            }
            let index = hygeia_fhir::search::extract(resource_type, &resource);
            (patient, category, resource, index, false)
        }
        None => {
            let Some(live) = current.as_ref() else {
                return Err(FhirError::internal("a delete of nothing").into());
            };
            let tombstone = json!({
                "resourceType": resource_type.as_str(),
                "id": id,
                "meta": {
                    "versionId": version.to_string(),
                    "lastUpdated": hygeia_fhir::date::format_instant(now_ms),
                    "tag": [{
                        "system": crate::fhir_store::TOMBSTONE_TAG.0,
                        "code": crate::fhir_store::TOMBSTONE_TAG.1,
                    }],
                },
            });
            (
                live.latest.patient.clone(),
                live.latest.category.clone(),
                tombstone,
                IndexEntry::new(resource_type),
                true,
            )
        }
    };
    // The event logged with the write: the decision on what existed (an
    // update or delete), or on the new content (a create).
    let Some(decided) = on_existing.or(on_content) else {
        return Err(FhirError::internal("a write without a decision").into());
    };

    let body = serde_json::to_vec(&content).map_err(FhirError::internal)?;
    let patient_key = Did::parse_cached(&patient)
        .map_err(FhirError::internal)
        .and_then(|did| {
            crate::api::records::patient_recipient(node, &did).map_err(FhirError::internal)
        })?;
    let stored = node
        .custody
        .store_deferred(FHIR_JSON, body.as_slice(), &patient_key)
        .map_err(FhirError::from)?;
    let commitment = stored.commitment.to_hex();
    let record_body = RecordBody {
        patient: patient.clone(),
        author: session.did.clone(),
        category: category.clone(),
        resource_type: resource_type.as_str().to_owned(),
        commitment: commitment.clone(),
    };
    let signed = serde_json::to_value(&record_body)
        .map_err(FhirError::internal)
        .and_then(|b| access::sign(node, txs::RECORD, b).map_err(FhirError::internal));
    let record_tx = match signed {
        Ok(tx) => tx,
        Err(e) => {
            let _ = node.custody.discard(&stored.blob);
            return Err(e.into());
        }
    };
    let mut event = decided.event;
    event.records = vec![commitment.clone()];
    Ok(Prepared {
        new: NewVersion {
            resource_type,
            id,
            version: Version {
                version,
                commitment,
                last_updated: now_ms,
                deleted,
                patient,
                category,
                author: session.did.clone(),
            },
            index,
        },
        blob: stored.blob,
        meta: RecordMeta {
            blob: stored.blob.to_hex(),
            salt: stored.salt.to_hex(),
            media_type: FHIR_JSON.to_owned(),
            author: session.did.clone(),
            provenance: String::new(),
            size: body.len() as u64,
        },
        record_tx,
        event,
        body,
        created: current.is_none(),
        in_flight: stored.in_flight,
    })
}

/// Throws away what [`prepare`] wrote for writes that will not commit.
pub fn discard(node: &Node, prepared: &[Prepared]) {
    for p in prepared {
        if let Err(e) = node.custody.discard(&p.blob) {
            tracing::warn!(error = %e, "could not discard a refused FHIR write");
        }
    }
}

/// Makes prepared writes durable together: their records' metadata, then
/// one submission (their access events and `record` transactions), then
/// the FHIR store. All or nothing.
pub async fn commit(
    node: &Node,
    session: &Session,
    prepared: Vec<Prepared>,
    extra_events: Vec<Access>,
) -> Result<(Receipt, Vec<Prepared>), FhirError> {
    // The versions' vault writes (ciphertexts appended to a segment,
    // wrapped keys and any new group key in the slot file) were not
    // flushed: one `fdatasync` of each makes them all durable before
    // anything durable (metadata, the `record` transactions) refers to
    // them, so an acknowledged version survives a crash.
    if let Err(e) = node.custody.sync() {
        discard(node, &prepared);
        return Err(FhirError::internal(e));
    }
    // The metadata of all of them in one transaction.
    let metas: Vec<(&str, &RecordMeta)> = prepared
        .iter()
        .map(|p| (p.new.version.commitment.as_str(), &p.meta))
        .collect();
    if let Err(e) = node.custody.save_metas(&metas) {
        discard(node, &prepared);
        return Err(FhirError::internal(e));
    }
    let mut events: Vec<Access> = prepared.iter().map(|p| p.event.clone()).collect();
    events.extend(extra_events);
    let records: Vec<SignedTx> = prepared.iter().map(|p| p.record_tx.clone()).collect();
    let receipt = match decide::log(node, session, events, records).await {
        Ok(Some(receipt)) => receipt,
        Ok(None) => return Err(FhirError::internal("nothing to commit")),
        Err(e) => {
            for p in &prepared {
                let _ = node.custody.erase(&p.new.version.commitment);
            }
            discard(node, &prepared);
            return Err(e);
        }
    };
    let versions: Vec<NewVersion> = prepared.iter().map(|p| p.new.clone()).collect();
    node.fhir.store.record(&versions)?;
    Ok((receipt, prepared))
}

/// Logs the decisions of a refused write (they are decisions too), durable
/// before the refusal is answered.
pub async fn log_refusals(
    node: &Node,
    session: &Session,
    events: Vec<Access>,
) -> Result<(), FhirError> {
    decide::log(node, session, events, Vec::new()).await?;
    Ok(())
}

/// Reserves the resource for this write, or says it is busy.
pub fn lease<'a>(node: &'a Node, keys: &[String]) -> Result<WriteLease<'a>, FhirError> {
    node.fhir.store.lease(keys).ok_or_else(|| {
        FhirError::new(
            StatusCode::CONFLICT,
            Issue::error(
                "conflict",
                "another write to this resource is in progress (or a Bundle names it twice); retry",
            ),
        )
    })
}

/// `If-Match: W/"3"` → 3.
pub fn if_match(headers: &HeaderMap) -> Result<Option<u64>, FhirError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    parse_etag(value.to_str().unwrap_or(""))
        .map(Some)
        .ok_or_else(|| {
            FhirError::bad_request("value", "If-Match must be a version ETag such as W/\"3\"")
        })
}

pub fn parse_etag(text: &str) -> Option<u64> {
    let text = text.trim();
    let text = text.strip_prefix("W/").unwrap_or(text);
    text.strip_prefix('"')?.strip_suffix('"')?.parse().ok()
}

/// `Prefer: return=minimal|representation|OperationOutcome`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Return {
    Minimal,
    Representation,
    Outcome,
}

pub fn prefer_return(headers: &HeaderMap) -> Return {
    for value in headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
    {
        for part in value.split([',', ';']) {
            match part.trim() {
                "return=minimal" => return Return::Minimal,
                "return=OperationOutcome" => return Return::Outcome,
                "return=representation" => return Return::Representation,
                _ => {}
            }
        }
    }
    Return::Representation
}

/// The answer to a single write.
pub fn written(
    headers: &HeaderMap,
    receipt: &Receipt,
    prepared: &Prepared,
    base: &str,
) -> Response {
    let version = &prepared.new.version;
    let status = if version.deleted {
        StatusCode::OK
    } else if prepared.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut response = match (version.deleted, prefer_return(headers)) {
        (true, _) => fhir_json(
            status,
            &hygeia_fhir::outcome::operation_outcome(&[Issue {
                severity: hygeia_fhir::outcome::Severity::Information,
                code: "informational",
                diagnostics: format!(
                    "deleted {}/{} (version {}); the earlier versions stay readable in its history",
                    prepared.new.resource_type, prepared.new.id, version.version
                ),
                expression: None,
            }]),
        ),
        (false, Return::Minimal) => (status, ()).into_response(),
        (false, Return::Outcome) => fhir_json(
            status,
            &hygeia_fhir::outcome::operation_outcome(&[Issue {
                severity: hygeia_fhir::outcome::Severity::Information,
                code: "informational",
                diagnostics: "written".into(),
                expression: None,
            }]),
        ),
        (false, Return::Representation) => fhir_bytes(status, prepared.body.clone()),
    };
    let h = response.headers_mut();
    let location = format!(
        "{base}/{}/{}/_history/{}",
        prepared.new.resource_type, prepared.new.id, version.version
    );
    if let Ok(v) = HeaderValue::from_str(&location) {
        if !version.deleted {
            h.insert(header::LOCATION, v.clone());
            h.insert(header::CONTENT_LOCATION, v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(&format!("W/\"{}\"", version.version)) {
        h.insert(header::ETAG, v);
    }
    h.insert("hygeia-audit-index", HeaderValue::from(receipt.first_index));
    response
}

fn parse_type(name: &str) -> Result<ResourceType, FhirError> {
    name.parse::<ResourceType>().map_err(|e| {
        FhirError::new(
            StatusCode::NOT_FOUND,
            Issue::error("not-supported", e.to_string()),
        )
    })
}

/// `POST /fhir/{type}`.
pub async fn create(
    State(node): State<Arc<Node>>,
    Path(resource_type): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, FhirError> {
    let session = authenticate(&node, &headers)?;
    let resource_type = parse_type(&resource_type)?;
    super::scopes::require(&session, Interaction::Create, resource_type.as_str())?;
    require_fhir_json(&headers)?;
    let resource = parse_body(&body)?;
    if resource_type == ResourceType::Consent {
        return super::consent::create(&node, &session, &headers, resource).await;
    }
    let id = new_id();
    write_one(
        &node,
        &session,
        &headers,
        resource_type.as_str().to_owned(),
        Intent {
            interaction: Interaction::Create,
            resource_type,
            id,
            resource: Some(resource),
            if_match: None,
            label: resource_type.as_str().to_owned(),
        },
    )
    .await
}

/// `PUT /fhir/{type}/{id}`: update, or create with the client's id.
pub async fn update(
    State(node): State<Arc<Node>>,
    Path((resource_type, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, FhirError> {
    let session = authenticate(&node, &headers)?;
    let resource_type = parse_type(&resource_type)?;
    super::scopes::require(&session, Interaction::Update, resource_type.as_str())?;
    require_fhir_json(&headers)?;
    if !is_valid_id(&id) {
        return Err(FhirError::bad_request(
            "value",
            "the id in the URL is not a valid FHIR id ([A-Za-z0-9-.]{1,64})",
        ));
    }
    let resource = parse_body(&body)?;
    if resource.get("id").and_then(Value::as_str) != Some(id.as_str()) {
        return Err(FhirError::bad_request(
            "invalid",
            format!("the resource's id must equal the id in the URL ({id})"),
        ));
    }
    if resource_type == ResourceType::Consent {
        return Err(FhirError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            Issue::error("not-supported", "a Consent is a ledger grant and cannot be updated; revoke it (DELETE) and create a new one"),
        ));
    }
    let if_match = if_match(&headers)?;
    let key = format!("{resource_type}/{id}");
    write_one(
        &node,
        &session,
        &headers,
        key.clone(),
        Intent {
            interaction: Interaction::Update,
            resource_type,
            id,
            resource: Some(resource),
            if_match,
            label: key,
        },
    )
    .await
}

/// `DELETE /fhir/{type}/{id}`.
pub async fn delete(
    State(node): State<Arc<Node>>,
    Path((resource_type, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    let session = authenticate(&node, &headers)?;
    let resource_type = parse_type(&resource_type)?;
    super::scopes::require(&session, Interaction::Delete, resource_type.as_str())?;
    if resource_type == ResourceType::Consent {
        return super::consent::revoke(&node, &session, &headers, &id).await;
    }
    let if_match = if_match(&headers)?;
    let key = format!("{resource_type}/{id}");
    write_one(
        &node,
        &session,
        &headers,
        key.clone(),
        Intent {
            interaction: Interaction::Delete,
            resource_type,
            id,
            resource: None,
            if_match,
            label: key,
        },
    )
    .await
}

async fn write_one(
    node: &Node,
    session: &Session,
    headers: &HeaderMap,
    key: String,
    intent: Intent,
) -> Result<Response, FhirError> {
    let purpose = decide::purpose(session)?;
    let _lease = lease(node, std::slice::from_ref(&key))?;
    let now_ms = unix_now_ms();
    let prepared = match prepare(node, session, purpose, intent, &Pending::new(), now_ms) {
        Ok(p) => p,
        Err(refused) => {
            log_refusals(node, session, refused.events).await?;
            return Err(refused.error);
        }
    };
    let (receipt, prepared) = commit(node, session, vec![prepared], Vec::new()).await?;
    Ok(written(
        headers,
        &receipt,
        &prepared[0],
        &super::base_url(headers),
    ))
}

pub fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_else(|_| unix_now() as i64 * 1000)
}
