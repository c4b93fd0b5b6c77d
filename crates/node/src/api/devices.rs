//! Connected devices (docs/devices.md): batches of signed readings in, and
//! adherence results out.
//!
//! `POST /v1/devices/batches` takes a batch signed, reading by reading, by
//! an attested device, with the request itself signed (RFC 9421) by the
//! same device key. Everything a stranger can get refused cheaply is
//! refused before the body is parsed (the declared size, the request's
//! signature, the signing key being an attested device) or before any
//! reading's signature is checked (the batch's device being the signer, in
//! good standing, the readings' window). The signatures are then checked in
//! parallel off the async workers; the batch is encrypted into the vault
//! for the device's patient, and one `device.batch` entry commits to it.
//! A refusal at any step changes nothing (a stored blob is erased again).

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hygeia_identity::Did;
use serde_json::{json, Value};

use super::auth::authenticate;
use super::error::ApiError;
use super::records::patient_recipient;
use crate::access;
use crate::custody::RecordMeta;
use crate::node::{unix_now, Node};
use crate::state::devices::batch::{self, BatchError, ParsedBatch, MAX_BATCH_BYTES};
use crate::state::devices::{check_batch_admissible, DeviceBatch, DEVICE_BATCH};

/// How far in the future (seconds, by the node's clock) a reading may lie.
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;

/// The media type of a batch as kept in the vault.
pub const BATCH_MEDIA_TYPE: &str = "application/vnd.hygeia.device-batch+json";

fn batch_error(e: BatchError) -> ApiError {
    let status = match e {
        BatchError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        BatchError::WrongDevice { .. } => StatusCode::FORBIDDEN,
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError::new(status, e.code(), e.to_string())
}

fn too_large() -> ApiError {
    batch_error(BatchError::TooLarge)
}

/// `POST /v1/devices/batches`.
pub async fn ingest(State(node): State<Arc<Node>>, request: Request) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    if parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > MAX_BATCH_BYTES as u64)
    {
        return Err(too_large());
    }
    let who = authenticate(&node, &parts.method, &parts.uri, &parts.headers)?;
    // Only an attested device's key gets its body read and parsed: a
    // stranger's request costs one signature check and one lookup.
    if node
        .state
        .read()
        .state
        .devices
        .device(who.key.as_str())
        .is_none()
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "device.unknown",
            format!(
                "{} is not an attested device; a batch is sent by its device",
                who.key.as_str()
            ),
        ));
    }
    let bytes = axum::body::to_bytes(body, MAX_BATCH_BYTES)
        .await
        .map_err(|_| too_large())?;
    let digest: [u8; 32] = {
        use sha2::Digest;
        sha2::Sha256::digest(&bytes).into()
    };
    who.check_body(&digest).map_err(ApiError::from)?;
    let parsed = tokio::task::spawn_blocking(move || batch::parse(&bytes))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(batch_error)?;
    if parsed.device.as_str() != who.key.as_str() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "device.not_device",
            "a batch is sent by its device: sign the request with the device's key",
        ));
    }
    let salt: [u8; 32] = rand::random();
    let committed = parsed.commit(&salt);
    let now = unix_now() as i64;
    if committed.to > now + MAX_CLOCK_SKEW_SECS {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "device.reading_in_future",
            "a reading lies in the future by the node's clock",
        ));
    }
    let device = parsed.device.as_str().to_owned();
    let mut entry = DeviceBatch {
        device: device.clone(),
        root: hex::encode(committed.root),
        count: parsed.readings.len() as u32,
        from: committed.from,
        to: committed.to,
        days: committed.days.clone(),
        commitment: String::new(),
    };
    // The state's checks first: a stranger's or a revoked device's batch
    // costs no signature check.
    let patient = {
        let state = &node.state.read().state;
        let bound = state.devices.device(&device).ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "device.unknown",
                format!("no attested device {device}"),
            )
        })?;
        check_batch_admissible(state, bound, &entry).map_err(ApiError::from)?;
        bound.patient.clone()
    };
    let (parsed, verified) = tokio::task::spawn_blocking(move || {
        let verified = parsed.verify();
        (parsed, verified)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?;
    verified.map_err(batch_error)?;

    // Encrypt the batch (the readings as signed, and the salt) for the
    // patient and the node.
    let plaintext = vault_document(&parsed, &salt);
    let patient_did = Did::parse_cached(&patient).map_err(|e| ApiError::internal(e.to_string()))?;
    let patient_key = patient_recipient(&node, &patient_did).map_err(ApiError::internal)?;
    let custody = node.custody.clone();
    let size = plaintext.len() as u64;
    let stored = tokio::task::spawn_blocking(move || {
        custody.store(BATCH_MEDIA_TYPE, plaintext.as_slice(), &patient_key)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
    .map_err(|e| ApiError::storage_unavailable(format!("could not store a batch: {e}")))?;
    let commitment = stored.commitment.to_hex();
    entry.commitment = commitment.clone();
    let meta = RecordMeta {
        blob: stored.blob.to_hex(),
        salt: stored.salt.to_hex(),
        media_type: BATCH_MEDIA_TYPE.into(),
        author: device.clone(),
        // Each reading carries the device's own signature instead.
        provenance: String::new(),
        size,
    };
    let outcome = async {
        node.custody
            .save_meta(&commitment, &meta)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let body = serde_json::to_value(&entry).map_err(|e| ApiError::internal(e.to_string()))?;
        let tx = access::sign(&node, DEVICE_BATCH, body)?;
        node.sequencer
            .submit(vec![tx])
            .await
            .map_err(ApiError::from)
    }
    .await;
    let receipt = match outcome {
        Ok(receipt) => receipt,
        Err(e) => {
            // Refused after storing (a batch committed meanwhile, the
            // device revoked meanwhile): nothing of it stays.
            match node.custody.erase(&commitment) {
                Ok(Some(_)) => {}
                Ok(None) => {
                    if let Err(discard) = node.custody.discard(&stored.blob) {
                        tracing::warn!(error = %discard, "could not discard a refused batch");
                    }
                }
                Err(erase) => tracing::warn!(error = %erase, "could not erase a refused batch"),
            }
            return Err(e);
        }
    };
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "record": commitment,
            "root": entry.root,
            "count": entry.count,
            "from": entry.from,
            "to": entry.to,
            "index": receipt.first_index,
            "tree_size": receipt.checkpoint.size,
        })),
    )
        .into_response())
}

/// What the vault keeps of a batch: the device, the salt of its reading
/// commitments, and each reading as signed (the Observation in its JCS
/// form, and its JWS), so anyone who may read it can check every
/// signature and recompute the root on the ledger.
pub fn vault_document(parsed: &ParsedBatch, salt: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        parsed
            .readings
            .iter()
            .map(|r| r.canonical.len() + r.jws.len() + 32)
            .sum::<usize>()
            + 256,
    );
    out.extend_from_slice(b"{\"device\":");
    out.extend_from_slice(json!(parsed.device.as_str()).to_string().as_bytes());
    out.extend_from_slice(b",\"salt\":\"");
    out.extend_from_slice(hex::encode(salt).as_bytes());
    out.extend_from_slice(b"\",\"readings\":[");
    for (i, r) in parsed.readings.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"observation\":");
        out.extend_from_slice(&r.canonical);
        out.extend_from_slice(b",\"jws\":");
        out.extend_from_slice(json!(r.jws).to_string().as_bytes());
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    out
}

/// `GET /v1/devices/{did}`: a device's binding and standing, for its
/// patient (or a delegate) and the device itself.
pub async fn device(
    State(node): State<Arc<Node>>,
    Path(did): Path<String>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let who = authenticate(&node, &method, &uri, &headers)?;
    let committed = node.state.read();
    let state = &committed.state;
    let hidden = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "device.unknown",
            "no attested device by that DID that you may see",
        )
    };
    let entry = state.devices.device(&did).ok_or_else(hidden)?;
    let me = who.did.as_str();
    let allowed = me == entry.patient
        || me == entry.device
        || state.policy.consents().is_delegate(&entry.patient, me);
    if !allowed {
        // Answered as for an unknown device: a stranger learns nothing.
        return Err(hidden());
    }
    let standing = state.device_standing(entry, unix_now() as i64);
    Ok(Json(json!({
        "device": entry.device,
        "patient": entry.patient,
        "manufacturer": entry.issuer,
        "model": entry.model,
        "firmware_version": entry.firmware_version,
        "from": entry.from,
        "until": entry.until,
        "standing": standing.code(),
        "batches": entry.batches,
        "readings": entry.readings,
        "last_to": entry.last_to,
        "index": entry.index,
        "study": entry.study,
    })))
}

/// `GET /v1/adherence/{rule}/{subject}`: the latest evaluation of a rule
/// for a subject, for the rule's owner, the subject or a delegate.
pub async fn adherence(
    State(node): State<Arc<Node>>,
    Path((rule, subject)): Path<(String, String)>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let who = authenticate(&node, &method, &uri, &headers)?;
    let committed = node.state.read();
    let state = &committed.state;
    let hidden = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "adherence.unknown",
            "no evaluation of that rule for that subject that you may see",
        )
    };
    let entry = state.devices.rule(&rule).ok_or_else(hidden)?;
    let me = who.did.as_str();
    // The owner of a study's rule is the sponsor, possibly an
    // organization: a key acting for it reads, as it evaluates.
    let allowed = hygeia_state::accounts::acts_for(state, me, &entry.owner)
        || me == subject
        || state.policy.consents().is_delegate(&subject, me);
    if !allowed {
        return Err(hidden());
    }
    let result = state.devices.result(&rule, &subject).ok_or_else(hidden)?;
    Ok(Json(json!({
        "rule": result.rule,
        "subject": result.subject,
        "kind": entry.kind.code(),
        "start_day": entry.start_day,
        "end_day": entry.end_day,
        "min_percent": entry.min_percent,
        "days": result.days,
        "counted": result.counted,
        "disputed": result.disputed,
        "missing": result.missing,
        "met": result.met,
        "index": result.index,
    })))
}
