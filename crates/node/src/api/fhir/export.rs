//! Bulk export (FHIR Bulk Data Access): `GET /fhir/Patient/{id}/$export`
//! and `GET /fhir/Group/{id}/$export` with `Prefer: respond-async` start a
//! job; `GET /fhir-export/{job}` polls it (202 with `X-Progress`, then 200
//! with the manifest); the NDJSON files are at `/fhir-export/{job}/{file}`.
//! Every resource is decided like a read and every decision logged; only
//! the requester who started a job sees it.
//!
//! The output is kept in memory, never written to disk in the clear, and
//! dropped an hour after the job ends (or on DELETE).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hygeia_auth::scope::Interaction;
use hygeia_auth::token::Session;
use hygeia_fhir::outcome::Issue;
use hygeia_fhir::reference::parse_local;
use hygeia_fhir::types::ResourceType;
use serde_json::{json, Value};

use super::candidates;
use super::decide::{self, Subject};

use super::read::open_version;
use super::{authenticate, FhirError};
use crate::fhir_store::Current;
use crate::node::{unix_now, Node};

/// Jobs are forgotten this long after they finish.
const KEEP_SECS: u64 = 600;
/// Most bytes of output one job may hold.
const MAX_OUTPUT_BYTES: usize = 256 << 20;
/// Most jobs running or kept at once, node-wide.
pub const MAX_JOBS: usize = 64;
/// Most jobs one requester holds, running or kept (DELETE frees one).
pub const MAX_JOBS_PER_REQUESTER: usize = 4;

#[derive(Clone)]
enum Phase {
    Running {
        done: usize,
        of: usize,
    },
    Done {
        files: BTreeMap<String, Vec<u8>>,
        counts: BTreeMap<String, usize>,
    },
    Failed(String),
}

struct Job {
    owner: String,
    request: String,
    started: u64,
    finished: Option<u64>,
    phase: Phase,
}

#[derive(Default)]
pub struct ExportJobs {
    jobs: Mutex<HashMap<String, Job>>,
}

impl ExportJobs {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Job>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn prune(jobs: &mut HashMap<String, Job>, now: u64) {
        jobs.retain(|_, j| j.finished.is_none_or(|f| now < f + KEEP_SECS));
    }

    /// Makes room for a job of `owner`, or says why there is none. Each
    /// requester holds at most [`MAX_JOBS_PER_REQUESTER`] jobs, running or
    /// kept; when the node holds [`MAX_JOBS`], the oldest finished job of
    /// whoever holds the most goes (its output can be asked for again),
    /// and only when every held job is still running is the request
    /// refused. So no requester, and no handful of them, keeps everyone
    /// else from exporting for long.
    fn admit(jobs: &mut HashMap<String, Job>, owner: &str, now: u64) -> Result<(), FhirError> {
        Self::prune(jobs, now);
        let busy = |message: String| {
            FhirError::new(
                StatusCode::TOO_MANY_REQUESTS,
                Issue::error("too-costly", message),
            )
        };
        let mine = jobs.values().filter(|j| j.owner == owner).count();
        if mine >= MAX_JOBS_PER_REQUESTER {
            return Err(busy(format!(
                "you hold {mine} export jobs, the most one requester may; DELETE one you have fetched (or wait {KEEP_SECS} s after it finished)"
            )));
        }
        if jobs.len() < MAX_JOBS {
            return Ok(());
        }
        let mut held: HashMap<&str, usize> = HashMap::new();
        for job in jobs.values() {
            *held.entry(job.owner.as_str()).or_default() += 1;
        }
        let evict = jobs
            .iter()
            .filter_map(|(id, j)| j.finished.map(|f| (held[j.owner.as_str()], f, id)))
            .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
            .map(|(_, _, id)| id.clone());
        match evict {
            Some(id) => {
                jobs.remove(&id);
                Ok(())
            }
            None => Err(busy(
                "the node is running as many export jobs as it takes; retry shortly".to_owned(),
            )),
        }
    }

    /// How many jobs are held, running or kept.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn set(&self, id: &str, phase: Phase) {
        if let Some(job) = self.lock().get_mut(id) {
            if !matches!(phase, Phase::Running { .. }) {
                job.finished = Some(unix_now());
            }
            job.phase = phase;
        }
    }
}

/// `_type=Observation,Condition`: which types to export (all when absent).
fn wanted_types(query: Option<&str>) -> Result<Option<Vec<ResourceType>>, FhirError> {
    let Some(query) = query else {
        return Ok(None);
    };
    let mut types = None;
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match name.as_ref() {
            "_type" => {
                let mut list = Vec::new();
                for t in value.split(',').filter(|t| !t.is_empty()) {
                    list.push(t.parse::<ResourceType>().map_err(|e| {
                        FhirError::bad_request("not-supported", format!("_type: {e}"))
                    })?);
                }
                types = Some(list);
            }
            "_outputFormat" => {
                if !matches!(
                    value.as_ref(),
                    "application/fhir+ndjson" | "application/ndjson" | "ndjson"
                ) {
                    return Err(FhirError::bad_request(
                        "not-supported",
                        "_outputFormat: only application/fhir+ndjson",
                    ));
                }
            }
            other => {
                return Err(FhirError::bad_request(
                    "not-supported",
                    format!(
                        "$export parameter {:?} is not supported (supported: _type, _outputFormat)",
                        other.chars().take(40).collect::<String>()
                    ),
                ))
            }
        }
    }
    Ok(types)
}

/// Kick-off.
pub async fn kick_off(
    node: Arc<Node>,
    resource_type: String,
    id: String,
    query: Option<String>,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    let session = authenticate(&node, &headers)?;
    let async_asked = headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split([',', ';']).any(|p| p.trim() == "respond-async"));
    if !async_asked {
        return Err(FhirError::bad_request(
            "required",
            "$export runs asynchronously: send Prefer: respond-async",
        ));
    }
    let types = wanted_types(query.as_deref())?;
    let resource_type: ResourceType =
        resource_type
            .parse()
            .map_err(|e: hygeia_fhir::types::UnsupportedType| {
                FhirError::not_supported(e.to_string())
            })?;
    super::scopes::require(&session, Interaction::Read, resource_type.as_str())?;
    let patients: Vec<String> = match resource_type {
        ResourceType::Patient => {
            let key = format!("Patient/{id}");
            match node.fhir.store.current(&key).filter(|c| !c.latest.deleted) {
                Some(c) if decide::may_read(&node, &session, &c).await? => vec![c.latest.patient],
                Some(_) => return Err(decide::not_found(&key)),
                None => {
                    decide::absent(&node, &session, Interaction::Read, "Patient").await?;
                    return Err(decide::not_found(&key));
                }
            }
        }
        ResourceType::Group => group_members(&node, &session, &id).await?,
        other => {
            return Err(FhirError::not_supported(format!(
                "$export is offered on Patient/{{id}} and Group/{{id}}, not on {other}"
            )))
        }
    };
    let job_id = super::write::new_id();
    {
        let mut jobs = node.fhir.exports.lock();
        let now = unix_now();
        ExportJobs::admit(&mut jobs, &session.did, now)?;
        jobs.insert(
            job_id.clone(),
            Job {
                owner: session.did.clone(),
                request: format!("{}/{resource_type}/{id}/$export", super::base_url(&headers)),
                started: now,
                finished: None,
                phase: Phase::Running { done: 0, of: 0 },
            },
        );
    }
    let base = super::base_url(&headers);
    let status_url = format!("{}/fhir-export/{job_id}", base.trim_end_matches("/fhir"));
    tokio::spawn(run(node.clone(), session, job_id, patients, types));
    let mut response = (StatusCode::ACCEPTED, ()).into_response();
    if let Ok(v) = HeaderValue::from_str(&status_url) {
        response.headers_mut().insert(header::CONTENT_LOCATION, v);
    }
    Ok(response)
}

/// The patients a Group lists (the Group itself read under consent).
async fn group_members(node: &Node, session: &Session, id: &str) -> Result<Vec<String>, FhirError> {
    let key = format!("Group/{id}");
    let Some(current) = node.fhir.store.current(&key).filter(|c| !c.latest.deleted) else {
        decide::absent(node, session, Interaction::Read, "Group").await?;
        return Err(decide::not_found(&key));
    };
    if !decide::may_read(node, session, &current).await? {
        return Err(decide::not_found(&key));
    }
    let group: Value = serde_json::from_slice(&open_version(node, &current.latest.commitment)?)
        .map_err(FhirError::internal)?;
    let mut patients = Vec::new();
    for member in group
        .get("member")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(reference) = member.pointer("/entity/reference").and_then(Value::as_str) else {
            continue;
        };
        let Some(target) = parse_local(reference, None) else {
            continue;
        };
        if target.resource_type != ResourceType::Patient {
            continue;
        }
        if let Some(c) = node
            .fhir
            .store
            .current(&target.key())
            .filter(|c| !c.latest.deleted)
        {
            if !patients.contains(&c.latest.patient) {
                patients.push(c.latest.patient);
            }
        }
    }
    Ok(patients)
}

async fn run(
    node: Arc<Node>,
    session: Session,
    job_id: String,
    patients: Vec<String>,
    types: Option<Vec<ResourceType>>,
) {
    let outcome = export(&node, &session, &job_id, &patients, types.as_deref()).await;
    node.fhir.exports.set(
        &job_id,
        match outcome {
            Ok((files, counts)) => Phase::Done { files, counts },
            Err(e) => Phase::Failed(
                e.issues
                    .first()
                    .map(|i| i.diagnostics.clone())
                    .unwrap_or_else(|| "export failed".into()),
            ),
        },
    );
}

type Files = (BTreeMap<String, Vec<u8>>, BTreeMap<String, usize>);

/// What an export will hold: the resources of `patients` (of `types`)
/// the requester may read, each decided, with the permits to log. Only
/// patients the requester could be permitted to read are looked at
/// ([`candidates::readable`]), and a resource it may not read leaves no
/// trace (like a search match): so neither the job's progress nor its
/// events count what the requester may not see.
pub(crate) fn plan(
    node: &Node,
    session: &Session,
    patients: &[String],
    types: Option<&[ResourceType]>,
) -> Result<(Vec<Current>, Vec<crate::state::txs::Access>), FhirError> {
    let purpose = decide::purpose(session)?;
    let now = unix_now() as i64;
    let committed = node.state.read();
    let readable = candidates::readable(&committed.state, session, purpose, now);
    let mut permitted = Vec::new();
    let mut events = Vec::new();
    let mut withheld = 0usize;
    for patient in patients {
        let candidate = match &readable {
            candidates::Readable::Anyone => true,
            candidates::Readable::Patients(p) => p.contains(patient),
        };
        if !candidate {
            continue;
        }
        for current in node.fhir.store.of_patient(patient) {
            let wanted = types.is_none_or(|t| {
                current
                    .resource_type
                    .parse::<ResourceType>()
                    .is_ok_and(|rt| t.contains(&rt))
            });
            if !wanted {
                continue;
            }
            let d = decide::decide(
                &committed.state,
                session,
                purpose,
                Interaction::Read,
                &Subject {
                    patient: &current.latest.patient,
                    resource_type: &current.resource_type,
                    category: &current.latest.category,
                    commitment: Some(&current.latest.commitment),
                },
                now,
            );
            if d.decision.is_permit() {
                permitted.push(current);
                events.push(d.event);
            } else {
                withheld += 1;
            }
        }
    }
    if withheld > 0 {
        tracing::info!(
            target: "hygeia::access",
            requester = %session.did,
            withheld,
            "export left out resources its requester may not read (denied, not logged on the ledger)"
        );
    }
    Ok((permitted, events))
}

async fn export(
    node: &Node,
    session: &Session,
    job_id: &str,
    patients: &[String],
    types: Option<&[ResourceType]>,
) -> Result<Files, FhirError> {
    let (resources, events) = plan(node, session, patients, types)?;
    let total = resources.len();
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut bytes = 0usize;
    let mut events = events.into_iter();
    for (n, chunk) in resources.chunks(200).enumerate() {
        if !node.fhir.exports.lock().contains_key(job_id) {
            return Err(FhirError::internal("cancelled"));
        }
        let logged: Vec<_> = events.by_ref().take(chunk.len()).collect();
        decide::log(node, session, logged, Vec::new()).await?;
        for current in chunk {
            let body = open_version(node, &current.latest.commitment)?;
            bytes += body.len() + 1;
            if bytes > MAX_OUTPUT_BYTES {
                return Err(FhirError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    Issue::error("too-costly", format!("the export is larger than {MAX_OUTPUT_BYTES} bytes; narrow it with _type")),
                ));
            }
            let file = files.entry(current.resource_type.clone()).or_default();
            file.extend_from_slice(&body);
            file.push(b'\n');
            *counts.entry(current.resource_type.clone()).or_default() += 1;
        }
        node.fhir.exports.set(
            job_id,
            Phase::Running {
                done: ((n + 1) * 200).min(total),
                of: total,
            },
        );
    }
    Ok((files, counts))
}

fn job_not_found(job: &str) -> FhirError {
    decide::not_found(&format!("export job {job}"))
}

/// `GET /fhir-export/{job}`.
pub async fn status(
    State(node): State<Arc<Node>>,
    Path(job): Path<String>,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    let session = authenticate(&node, &headers)?;
    let base = super::base_url(&headers);
    let root = base.trim_end_matches("/fhir").to_owned();
    let jobs = node.fhir.exports.lock();
    let entry = jobs
        .get(&job)
        .filter(|j| j.owner == session.did)
        .ok_or_else(|| job_not_found(&job))?;
    match &entry.phase {
        Phase::Running { done, of } => {
            let mut response = (StatusCode::ACCEPTED, ()).into_response();
            let progress = if *of == 0 {
                "starting".to_owned()
            } else {
                format!("{done} of {of} resources exported")
            };
            if let Ok(v) = HeaderValue::from_str(&progress) {
                response.headers_mut().insert("x-progress", v);
            }
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            Ok(response)
        }
        Phase::Failed(message) => Err(FhirError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            Issue::error("exception", format!("the export failed: {message}")),
        )),
        Phase::Done { counts, .. } => {
            let output: Vec<Value> = counts
                .iter()
                .map(|(t, n)| json!({ "type": t, "url": format!("{root}/fhir-export/{job}/{t}.ndjson"), "count": n }))
                .collect();
            let time = hygeia_fhir::date::format_instant(entry.started as i64 * 1000);
            let mut response = (
                StatusCode::OK,
                axum::Json(json!({
                    "transactionTime": time,
                    "request": entry.request,
                    "requiresAccessToken": true,
                    "output": output,
                    "error": [],
                })),
            )
                .into_response();
            response
                .headers_mut()
                .insert(header::EXPIRES, HeaderValue::from_static("3600"));
            Ok(response)
        }
    }
}

/// `GET /fhir-export/{job}/{Type}.ndjson`.
pub async fn output(
    State(node): State<Arc<Node>>,
    Path((job, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    let session = authenticate(&node, &headers)?;
    let jobs = node.fhir.exports.lock();
    let entry = jobs
        .get(&job)
        .filter(|j| j.owner == session.did)
        .ok_or_else(|| job_not_found(&job))?;
    let Phase::Done { files, .. } = &entry.phase else {
        return Err(job_not_found(&job));
    };
    let name = file.strip_suffix(".ndjson").unwrap_or("");
    let body = files
        .get(name)
        .cloned()
        .ok_or_else(|| job_not_found(&job))?;
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/fhir+ndjson"),
    );
    Ok(response)
}

/// `DELETE /fhir-export/{job}`: cancels or forgets a job.
pub async fn cancel(
    State(node): State<Arc<Node>>,
    Path(job): Path<String>,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    let session = authenticate(&node, &headers)?;
    let mut jobs = node.fhir.exports.lock();
    match jobs.get(&job) {
        Some(j) if j.owner == session.did => {
            jobs.remove(&job);
            Ok((StatusCode::ACCEPTED, ()).into_response())
        }
        _ => Err(job_not_found(&job)),
    }
}
