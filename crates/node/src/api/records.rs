//! Records: upload (`POST /v1/records`), read (`GET /v1/records/{id}`) and
//! a patient's list (`GET /v1/records?patient=`). Every request is signed
//! (docs/auth.md); every decision is logged before it is answered.

use std::io::Read;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use futures_util::TryStreamExt;
use hygeia_identity::{Did, Signature};
use hygeia_policy::{Action, PurposeOfUse, RecordRef};
use hygeia_vault::RecipientPublicKey;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_util::io::{ReaderStream, StreamReader, SyncIoBridge};

use super::auth::authenticate;
use super::error::ApiError;
use crate::access::{self, Attempt, LogError};
use crate::custody::RecordMeta;
use crate::node::{unix_now, Node};
use crate::state::txs::{self, RecordBody};

pub const PATIENT_HEADER: &str = "hygeia-patient";
pub const CATEGORY_HEADER: &str = "hygeia-category";
pub const RESOURCE_TYPE_HEADER: &str = "hygeia-resource-type";
pub const PROVENANCE_HEADER: &str = "hygeia-provenance";

/// The category of FHIR directory resources (Practitioner, Organization...),
/// which governance lets every participant read: never a patient's record.
pub const DIRECTORY_CATEGORY: &str = "directory";

/// Domain separation of the author's provenance signature.
pub const PROVENANCE_DOMAIN: &[u8] = b"hygeia.record.v1\x00";

/// Records up to this size are decrypted on the request's own task.
const INLINE_READ_BYTES: u64 = 64 << 10;
/// Records up to this size are decrypted in one piece; larger ones stream.
const WHOLE_READ_BYTES: u64 = 1 << 20;

/// The bytes an author signs to vouch for a record: the domain, then the
/// RFC 8785 form of `{category, content_sha256, media_type, patient,
/// resource_type}`.
pub fn provenance_message(
    patient: &str,
    category: &str,
    resource_type: &str,
    media_type: &str,
    content_sha256: &[u8; 32],
) -> Vec<u8> {
    let statement = json!({
        "category": category,
        "content_sha256": hex::encode(content_sha256),
        "media_type": media_type,
        "patient": patient,
        "resource_type": resource_type,
    });
    let mut message = PROVENANCE_DOMAIN.to_vec();
    message.extend_from_slice(
        &serde_json_canonicalizer::to_vec(&statement).expect("a JSON value always serializes"),
    );
    message
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    headers
        .get(name)
        .map(|v| {
            v.to_str().map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_header",
                    format!("{name} must be visible ASCII"),
                )
            })
        })
        .transpose()
}

fn required_header<'a>(
    headers: &'a HeaderMap,
    name: &str,
    what: &str,
) -> Result<&'a str, ApiError> {
    header_str(headers, name)?.ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "missing_header",
            format!("{name} is required: {what}"),
        )
    })
}

fn invalid(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_header", message)
}

/// The purpose the requester states (the `purpose` query parameter; TREAT
/// when absent).
fn parse_purpose(code: Option<&str>) -> Result<PurposeOfUse, ApiError> {
    match code {
        None => Ok(PurposeOfUse::Treatment),
        Some(code) => code
            .trim()
            .parse()
            .map_err(|e: hygeia_policy::UnknownPurpose| {
                ApiError::new(StatusCode::BAD_REQUEST, "unknown_purpose", e.to_string())
            }),
    }
}

/// How a read is asked for. Both are query parameters so that the request
/// signature (which covers `@query`) covers them.
#[derive(Deserialize)]
pub struct ReadQuery {
    purpose: Option<String>,
    /// A break-glass justification (any language, URL-encoded).
    break_glass: Option<String>,
}

fn justification(query: &ReadQuery) -> Result<Option<String>, ApiError> {
    let Some(text) = &query.break_glass else {
        return Ok(None);
    };
    if text.chars().count() > access::MAX_JUSTIFICATION_CHARS {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            format!(
                "a break-glass justification is at most {} characters",
                access::MAX_JUSTIFICATION_CHARS
            ),
        ));
    }
    Ok(Some(text.clone()))
}

/// A query string that does not parse, as a JSON error.
pub fn query_error(e: QueryRejection) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_parameter", e.body_text())
}

fn log_error(e: LogError) -> ApiError {
    match e {
        LogError::Refused(tx) => ApiError::from(tx),
        LogError::Submit(submit) => ApiError::from(submit),
        LogError::Internal(message) => ApiError::internal(message),
    }
}

fn denied(receipt: &hygeia_ledger::Receipt, decided: &access::Decided, hint: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "access_denied",
        format!(
            "access denied{hint}; this attempt is logged at index {}",
            receipt.first_index
        ),
    )
    .with_detail("audit_index", json!(receipt.first_index))
    .with_detail("reasons", json!(decided.decision.reasons))
}

/// `GET /v1/records/{id}`: decide, log the decision durably, then decrypt.
pub async fn read(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
    query: Result<Query<ReadQuery>, QueryRejection>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let who = authenticate(&node, &method, &uri, &headers)?;
    let Query(query) = query.map_err(query_error)?;
    let purpose = parse_purpose(query.purpose.as_deref())?;
    let justification = justification(&query)?;
    if txs::check_hex32("record id", &id).is_err() {
        return Err(record_not_found(&id));
    }
    // A record another organization's node holds, and of which this node
    // has received no copy (docs/network.md, "Replication to entitled
    // nodes"): nothing could be read here, so nothing is decided or logged;
    // the holder's node serves it. Answered to anyone who signs, stranger
    // included: the id and the holder's key are in the public log (the
    // `record` entry and its signer), and so is whether this node was sent
    // a copy (`record.replicate`).
    let holder = {
        let committed = node.state.read();
        let record = committed
            .state
            .records
            .get(&id)
            .ok_or_else(|| record_not_found(&id))?;
        if let Some(at) = record.erased_at {
            return Err(record_erased(&id, at));
        }
        record.node.clone()
    };
    if let Some(holder) = holder.filter(|holder| *holder != node.node_did) {
        let held = node
            .custody
            .meta(&id)
            .map_err(|e| ApiError::internal(e.to_string()))?
            .is_some();
        if !held {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "record_not_held",
                format!(
                    "record {id} is held by the node {holder}, and this node holds no copy of it"
                ),
            )
            .with_detail("holder", json!(holder)));
        }
    }
    let now = unix_now() as i64;
    let decided = {
        let committed = node.state.read();
        let state = &committed.state;
        let record = state
            .records
            .get(&id)
            .ok_or_else(|| record_not_found(&id))?;
        // Erased since the look above.
        if let Some(at) = record.erased_at {
            return Err(record_erased(&id, at));
        }
        let attempt = Attempt {
            requester: who.did.as_str(),
            patient: &record.patient,
            action: Action::Read,
            purpose,
            record: access::record_ref(record),
            commitment: Some(&record.commitment),
            justification: justification.as_deref(),
            time: now,
        };
        access::decide(state, &attempt)
    };
    let receipt = access::log(&node, &decided.event, justification.as_deref(), Vec::new())
        .await
        .map_err(log_error)?;
    if !decided.decision.is_permit() {
        let hint = match (&justification, purpose) {
            (Some(j), _) if j.trim().is_empty() => " (break-glass needs a written justification)",
            (Some(_), _) => " (break-glass is for registered clinicians, purpose ETREAT)",
            _ => "",
        };
        return Err(denied(&receipt, &decided, hint));
    }
    let meta = node
        .custody
        .meta(&id)
        .map_err(|e| ApiError::internal(e.to_string()))?
        .ok_or_else(|| {
            // Erased between the decision and now: what is erased is gone.
            let erased = node
                .state
                .read()
                .state
                .records
                .get(&id)
                .is_some_and(|r| r.erased_at.is_some());
            if erased {
                ApiError::new(
                    StatusCode::GONE,
                    "record_erased",
                    format!("record {id} was erased; its keys are destroyed"),
                )
            } else {
                ApiError::internal(format!(
                    "record {id} is on the ledger but not in this node's vault"
                ))
            }
        })?;
    let mut response = if meta.size <= INLINE_READ_BYTES {
        // A small record is one page-cached file read and a few AEAD
        // chunks: cheaper done here than handed to the blocking pool.
        let mut out = Vec::with_capacity(meta.size as usize);
        node.custody
            .open_record(&meta, &mut out)
            .map_err(|e| vault_read_error(&id, e))?;
        Response::new(Body::from(out))
    } else if meta.size <= WHOLE_READ_BYTES {
        let custody = node.custody.clone();
        let meta_for_read = meta.clone();
        let plaintext = tokio::task::spawn_blocking(move || {
            let mut out = Vec::with_capacity(meta_for_read.size as usize);
            custody.open_record(&meta_for_read, &mut out).map(|_| out)
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| vault_read_error(&id, e))?;
        Response::new(Body::from(plaintext))
    } else {
        let (reader, writer) = tokio::io::duplex(256 << 10);
        let custody = node.custody.clone();
        let meta_for_read = meta.clone();
        let mut bridge = SyncIoBridge::new(writer);
        tokio::task::spawn_blocking(move || {
            // A failure mid-way ends the body early: the client sees a
            // truncated response, never unauthenticated plaintext.
            if let Err(e) = custody.open_record(&meta_for_read, &mut bridge) {
                tracing::error!(error = %e, "streaming a record failed");
            }
        });
        Response::new(Body::from_stream(ReaderStream::new(reader)))
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&meta.media_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert("hygeia-audit-index", HeaderValue::from(receipt.first_index));
    headers.insert(
        "hygeia-decision",
        HeaderValue::from_static(if decided.decision.break_glass {
            "permit; break-glass"
        } else {
            "permit"
        }),
    );
    Ok(response)
}

fn record_erased(id: &str, at: u64) -> ApiError {
    ApiError::new(
        StatusCode::GONE,
        "record_erased",
        format!("record {id} was erased (ledger index {at}); its keys are destroyed"),
    )
}

fn record_not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "record_not_found",
        format!(
            "no record {:?} on this node",
            id.chars().take(80).collect::<String>()
        ),
    )
}

fn vault_read_error(id: &str, e: crate::custody::CustodyError) -> ApiError {
    use crate::custody::CustodyError;
    match e {
        CustodyError::Vault(hygeia_vault::Error::NoKey) => ApiError::new(
            StatusCode::GONE,
            "record_erased",
            format!("record {id}: no key is left to decrypt it"),
        ),
        other => {
            tracing::error!(record = id, error = %other, "cannot read a record");
            ApiError::internal(format!("cannot read record {id}: {other}"))
        }
    }
}

/// Reads the request body, hashing it and enforcing the size limit.
struct Metered<R> {
    inner: R,
    digest: hygeia_auth::BodyDigest,
    read: u64,
    limit: u64,
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.limit {
            return Err(std::io::Error::other("record over the size limit"));
        }
        self.digest.update(&buf[..n]);
        Ok(n)
    }
}

/// `POST /v1/records`: an author uploads a record for a patient.
pub async fn upload(State(node): State<Arc<Node>>, request: Request) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    let who = authenticate(&node, &parts.method, &parts.uri, headers)?;
    let limit = node.config.max_record_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "record_too_large",
            format!("a record may be at most {limit} bytes on this node"),
        )
    };
    if let Some(length) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if length > limit {
            return Err(too_large());
        }
    }
    let patient = required_header(headers, PATIENT_HEADER, "the patient's did:key")?.to_owned();
    let category =
        required_header(headers, CATEGORY_HEADER, "a category code such as lab")?.to_owned();
    let resource_type = required_header(
        headers,
        RESOURCE_TYPE_HEADER,
        "a FHIR resource type such as Observation",
    )?
    .to_owned();
    let media_type = required_header(
        headers,
        header::CONTENT_TYPE.as_str(),
        "the record's media type",
    )?
    .to_owned();
    let provenance = required_header(
        headers,
        PROVENANCE_HEADER,
        "the author's signature over the record (docs/records.md)",
    )?
    .to_owned();
    let upload_query: Query<ReadQuery> = Query::try_from_uri(&parts.uri).map_err(query_error)?;
    let purpose = parse_purpose(upload_query.purpose.as_deref())?;
    let patient_did = Did::parse_cached(&patient).map_err(|e| {
        invalid(format!(
            "{PATIENT_HEADER} must be the patient's did:key: {e}"
        ))
    })?;
    txs::check_code("category", &category).map_err(invalid)?;
    if category == DIRECTORY_CATEGORY {
        return Err(invalid(format!(
            "the category {DIRECTORY_CATEGORY:?} is reserved for FHIR directory resources"
        )));
    }
    txs::check_resource_type(&resource_type).map_err(invalid)?;
    let provenance_sig = URL_SAFE_NO_PAD
        .decode(provenance.trim())
        .ok()
        .and_then(|b| Signature::from_slice(&b).ok())
        .ok_or_else(|| {
            invalid(format!(
                "{PROVENANCE_HEADER} must be a base64url Ed25519 signature"
            ))
        })?;

    let now = unix_now() as i64;
    let decided = {
        let committed = node.state.read();
        let attempt = Attempt {
            requester: who.did.as_str(),
            patient: &patient,
            action: Action::Write,
            purpose,
            record: RecordRef {
                id: "new".into(),
                resource_type: resource_type.clone(),
                category: Some(category.clone()),
            },
            commitment: None,
            justification: None,
            time: now,
        };
        access::decide(&committed.state, &attempt)
    };
    if !decided.decision.is_permit() {
        let receipt = access::log(&node, &decided.event, None, Vec::new())
            .await
            .map_err(log_error)?;
        return Err(denied(&receipt, &decided, ""));
    }

    // Stream the body into the vault: encrypted as it arrives, never whole
    // in memory.
    let patient_key = patient_recipient(&node, &patient_did).map_err(ApiError::internal)?;
    let stream = body
        .into_data_stream()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::ConnectionAborted, e.to_string()));
    let bridge = SyncIoBridge::new(StreamReader::new(stream));
    let custody = node.custody.clone();
    let media = media_type.clone();
    let stored = tokio::task::spawn_blocking(move || {
        let mut metered = Metered {
            inner: bridge,
            digest: hygeia_auth::BodyDigest::new(),
            read: 0,
            limit,
        };
        let result = custody.store(&media, &mut metered, &patient_key);
        let over = metered.read > metered.limit;
        (result, over, metered.digest.finish(), metered.read)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?;
    let (result, over_limit, sha256, size) = stored;
    // From here on a failure must not leave a permit unlogged.
    let failure = match result {
        Err(_) if over_limit => Err(too_large()),
        Err(crate::custody::CustodyError::Vault(hygeia_vault::Error::MediaType)) => Err(invalid(
            "Content-Type must be 1 to 255 printable ASCII characters".into(),
        )),
        // The file system failing (no space, no file handles): the node's
        // trouble, told to the client without naming files.
        Err(crate::custody::CustodyError::Vault(hygeia_vault::Error::Io(e)))
            if e.kind() != std::io::ErrorKind::ConnectionAborted =>
        {
            Err(ApiError::storage_unavailable(format!(
                "could not store a record: {e}"
            )))
        }
        Err(e) => Err(ApiError::bad_request(format!(
            "could not store the record: {e}"
        ))),
        Ok(stored) => {
            let checks = who.check_body(&sha256).map_err(ApiError::from).and_then(|()| {
                let message = provenance_message(&patient, &category, &resource_type, &media_type, &sha256);
                // The key that signed the request signs the record too; the
                // record names the identity it acts for as its author.
                who.key.public_key().verify(&message, &provenance_sig).map_err(|_| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "bad_provenance",
                        format!("{PROVENANCE_HEADER} is not the requester's signature over this record (docs/records.md)"),
                    )
                })
            });
            match checks {
                Ok(()) => Ok(stored),
                Err(e) => {
                    if let Err(discard) = node.custody.discard(&stored.blob) {
                        tracing::warn!(error = %discard, "could not discard a refused upload");
                    }
                    Err(e)
                }
            }
        }
    };
    let stored = match failure {
        Ok(stored) => stored,
        Err(e) => {
            access::log(&node, &decided.event, None, Vec::new())
                .await
                .map_err(log_error)?;
            return Err(e);
        }
    };
    let commitment = stored.commitment.to_hex();
    let meta = RecordMeta {
        blob: stored.blob.to_hex(),
        salt: stored.salt.to_hex(),
        media_type: media_type.clone(),
        author: who.did.as_str().to_owned(),
        provenance: URL_SAFE_NO_PAD.encode(provenance_sig.to_bytes()),
        size,
    };
    node.custody
        .save_meta(&commitment, &meta)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let record_body = RecordBody {
        patient: patient.clone(),
        author: who.did.as_str().to_owned(),
        category,
        resource_type,
        commitment: commitment.clone(),
    };
    let record_tx = access::sign(
        &node,
        txs::RECORD,
        serde_json::to_value(&record_body).map_err(|e| ApiError::internal(e.to_string()))?,
    )?;
    let mut event = decided.event.clone();
    event.records = vec![commitment.clone()];
    let receipt = access::log(&node, &event, None, vec![record_tx])
        .await
        .map_err(log_error)?;
    if media_type == hygeia_fhir::FHIR_JSON {
        index_for_fhir(&node, &commitment).await;
    }
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "record": commitment,
            "index": receipt.first_index + 1,
            "audit_index": receipt.first_index,
            "size": size,
            "tree_size": receipt.checkpoint.size,
        })),
    )
        .into_response())
}

/// Makes a record uploaded with the FHIR media type readable and
/// searchable through the FHIR API at once, as the start-up repair would
/// make it at the next start, under the same rule (it must be a valid
/// resource of its type, and may not take the place of another patient's
/// or another node's resource: `fhir_store::from_vault`). A record that is
/// not indexed is still served by `GET /v1/records/{id}`.
async fn index_for_fhir(node: &Arc<Node>, commitment: &str) {
    let (custody, fhir, commitment) = (
        node.custody.clone(),
        node.fhir.clone(),
        commitment.to_owned(),
    );
    let committed = node.state.read().state.clone();
    let indexed = tokio::task::spawn_blocking(move || {
        crate::fhir_store::index_received(&fhir.store, &custody, &committed.records, &commitment)
    })
    .await;
    match indexed {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::error!(error = %e, "an uploaded FHIR record could not be indexed; indexed at the next start")
        }
        Err(e) => {
            tracing::error!(error = %e, "an uploaded FHIR record could not be indexed; indexed at the next start")
        }
    }
}

/// Whom a new record's data key is wrapped for besides the node: the key
/// that acts for the patient now (after a recovery, the rotated-in key,
/// since the lost one may be in someone else's hands).
pub fn patient_recipient(node: &Node, patient: &Did) -> Result<RecipientPublicKey, String> {
    let current = {
        let committed = node.state.read();
        let key = committed.state.identities.current_key(patient.as_str());
        if key == patient.as_str() {
            patient.clone()
        } else {
            Did::parse_cached(key).map_err(|e| e.to_string())?
        }
    };
    RecipientPublicKey::from_bytes(&current.public_key().to_x25519()).map_err(|e| e.to_string())
}

#[derive(Deserialize)]
pub struct PatientQuery {
    patient: String,
}

/// Only the patient or a registered delegate lists a patient's records,
/// grants and access log.
pub fn require_patient_or_delegate(node: &Node, who: &Did, patient: &str) -> Result<(), ApiError> {
    let committed = node.state.read();
    let consents = committed.state.policy.consents();
    if who.as_str() == patient || consents.is_delegate(patient, who.as_str()) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_patient",
            "only the patient or a registered delegate may list this",
        ))
    }
}

/// `GET /v1/records?patient=`: the patient's records (metadata only).
pub async fn list(
    State(node): State<Arc<Node>>,
    query: Result<Query<PatientQuery>, QueryRejection>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let who = authenticate(&node, &method, &uri, &headers)?;
    let Query(query) = query.map_err(query_error)?;
    require_patient_or_delegate(&node, &who.did, &query.patient)?;
    let mut records: Vec<Value> = {
        let committed = node.state.read();
        let state = &committed.state;
        state
            .records
            .of_patient(&query.patient)
            .map(|r| {
                let mut value = serde_json::to_value(r).unwrap_or(Value::Null);
                // The nodes of other organizations it was sent to
                // (docs/network.md, "Replication to entitled nodes").
                let replicas: Vec<&str> = state.replication.replicas_of(&r.commitment).collect();
                value["replicas"] = json!(replicas);
                value
            })
            .collect()
    };
    let custody = node.custody.clone();
    let records = tokio::task::spawn_blocking(move || {
        for value in &mut records {
            let commitment = value["commitment"].as_str().unwrap_or_default();
            let held = custody.meta(commitment)?.is_some();
            value["held_here"] = json!(held);
        }
        Ok::<_, crate::custody::CustodyError>(records)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
    .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(
        json!({ "patient": query.patient, "records": records }),
    ))
}

/// `GET /v1/consents?patient=`: the patient's unrevoked grants.
pub async fn consents(
    State(node): State<Arc<Node>>,
    query: Result<Query<PatientQuery>, QueryRejection>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let who = authenticate(&node, &method, &uri, &headers)?;
    let Query(query) = query.map_err(query_error)?;
    require_patient_or_delegate(&node, &who.did, &query.patient)?;
    let committed = node.state.read();
    let consents = committed.state.policy.consents();
    let now = unix_now() as i64;
    let mut grants: Vec<&hygeia_policy::Grant> = consents.grants_of(&query.patient).collect();
    grants.sort_by(|a, b| (a.not_before, &a.id).cmp(&(b.not_before, &b.id)));
    let grants: Vec<Value> = grants
        .into_iter()
        .map(|g| {
            let mut value = serde_json::to_value(g).unwrap_or(Value::Null);
            value["active"] = json!(g.is_active_at(now));
            value
        })
        .collect();
    Ok(Json(json!({ "patient": query.patient, "grants": grants })))
}
