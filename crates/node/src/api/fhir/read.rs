//! Read, vread, history and search: every resource decided for the token's
//! requester and purpose, every decision logged before the answer, nothing
//! about a denied resource in the answer (docs/fhir.md, "What a denial
//! looks like").

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use hygeia_auth::scope::{Interaction, Reach};
use hygeia_auth::token::Session;
use hygeia_fhir::outcome::Issue;
use hygeia_fhir::search::{parse_query, Handling, SearchQuery, TotalMode};
use hygeia_fhir::types::ResourceType;
use hygeia_policy::PurposeOfUse;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::candidates;
use super::decide::{self, Subject};
use super::scopes;
use super::{authenticate, fhir_bytes, fhir_json, handling, FhirError};
use crate::fhir_store::{Current, Version};
use crate::node::{unix_now, Node};
use crate::state::txs::Access;

/// Searches with at most this many matches are decided whole, so their
/// Bundle carries an exact total of what the requester may see. Larger
/// ones are decided only as far as the page needs (no total), unless
/// `_total=accurate` asks.
const DECIDE_ALL_UP_TO: usize = 1000;

fn parse_type(name: &str) -> Result<ResourceType, FhirError> {
    name.parse::<ResourceType>().map_err(|e| {
        FhirError::new(
            StatusCode::NOT_FOUND,
            Issue::error("not-supported", e.to_string()),
        )
    })
}

/// The plaintext of a stored version.
pub fn open_version(node: &Node, commitment: &str) -> Result<Vec<u8>, FhirError> {
    open_located(node, node.custody.locations([commitment])?.pop().flatten())
}

/// The plaintext of a stored version whose location was read (`None`:
/// the version was erased).
fn open_located(
    node: &Node,
    location: Option<crate::custody::RecordLocation>,
) -> Result<Vec<u8>, FhirError> {
    let location = location.ok_or_else(|| {
        FhirError::new(
            StatusCode::GONE,
            Issue::error("deleted", "this version was erased: its keys are destroyed"),
        )
    })?;
    let mut out = Vec::with_capacity(location.size as usize);
    node.custody.open_at(&location, &mut out)?;
    Ok(out)
}

fn decide_version(
    node: &Node,
    session: &Session,
    purpose: PurposeOfUse,
    resource_type: &str,
    version: &Version,
    now: i64,
) -> crate::access::Decided {
    let committed = node.state.read();
    decide::decide(
        &committed.state,
        session,
        purpose,
        Interaction::Read,
        &Subject {
            patient: &version.patient,
            resource_type,
            category: &version.category,
            commitment: Some(&version.commitment),
        },
        now,
    )
}

fn with_version_headers(mut response: Response, version: &Version) -> Response {
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("W/\"{}\"", version.version)) {
        h.insert(header::ETAG, v);
    }
    if let Ok(t) = time::OffsetDateTime::from_unix_timestamp(version.last_updated / 1000) {
        if let Ok(text) = t.format(&time::format_description::well_known::Rfc2822) {
            if let Ok(v) = HeaderValue::from_str(&text.replace("+0000", "GMT")) {
                h.insert(header::LAST_MODIFIED, v);
            }
        }
    }
    response
}

/// Reads one version after deciding and logging; `None` when denied or
/// missing (answered alike, after the same work: [`decide::absent`]).
async fn read_version(
    node: &Node,
    session: &Session,
    key: &str,
    version: Option<Version>,
) -> Result<(Version, Vec<u8>), FhirError> {
    let resource_type = key.split('/').next().unwrap_or_default();
    let Some(version) = version else {
        decide::absent(node, session, Interaction::Read, resource_type).await?;
        return Err(decide::not_found(key));
    };
    let purpose = decide::purpose(session)?;
    let decided = decide_version(
        node,
        session,
        purpose,
        resource_type,
        &version,
        unix_now() as i64,
    );
    let permitted = decided.decision.is_permit();
    let receipt = decide::log(node, session, vec![decided.event], Vec::new()).await?;
    if !permitted {
        return Err(decide::not_found(key));
    }
    if version.deleted {
        let mut e = FhirError::new(
            StatusCode::GONE,
            Issue::error(
                "deleted",
                format!("{key} was deleted (version {})", version.version),
            ),
        );
        e.issues[0].expression = None;
        return Err(e);
    }
    let _ = receipt;
    let body = open_version(node, &version.commitment)?;
    Ok((version, body))
}

/// `GET /fhir/{type}/{id}`.
pub async fn read(
    State(node): State<Arc<Node>>,
    Path((resource_type, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    let session = authenticate(&node, &headers)?;
    let resource_type = parse_type(&resource_type)?;
    scopes::require(&session, Interaction::Read, resource_type.as_str())?;
    let base = super::base_url(&headers);
    match resource_type {
        ResourceType::Consent => {
            return Ok(fhir_json(
                StatusCode::OK,
                &super::consent::read(&node, &session, &id, &base)?,
            ))
        }
        ResourceType::AuditEvent => {
            return Ok(fhir_json(
                StatusCode::OK,
                &super::views::read_audit_event(&node, &session, &id, &base)?,
            ))
        }
        ResourceType::Provenance => {
            return Ok(fhir_json(
                StatusCode::OK,
                &super::views::read_provenance(&node, &session, &id, &base).await?,
            ))
        }
        // A study or subject on the ledger (docs/trials.md); other ids
        // are resources written through FHIR.
        ResourceType::ResearchStudy => {
            if let Some(study) = super::trials::read_study(&node, &id) {
                return Ok(fhir_json(StatusCode::OK, &study));
            }
        }
        // An attested device on the ledger (docs/devices.md).
        ResourceType::Device if super::devices::is_device_id(&id) => {
            return Ok(fhir_json(
                StatusCode::OK,
                &super::devices::read_device(&node, &session, &id)?,
            ))
        }
        ResourceType::ResearchSubject if super::trials::is_subject_id(&id) => {
            return Ok(fhir_json(
                StatusCode::OK,
                &super::trials::read_subject(&node, &session, &id)?,
            ))
        }
        _ => {}
    }
    let key = format!("{resource_type}/{id}");
    let current = node.fhir.store.current(&key).map(|c| c.latest);
    let (version, body) = read_version(&node, &session, &key, current).await?;
    Ok(with_version_headers(
        fhir_bytes(StatusCode::OK, body),
        &version,
    ))
}

/// `GET /fhir/{type}/{id}/_history/{vid}`.
pub async fn vread(
    State(node): State<Arc<Node>>,
    Path((resource_type, id, version)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    let session = authenticate(&node, &headers)?;
    let resource_type = parse_type(&resource_type)?;
    scopes::require(&session, Interaction::Read, resource_type.as_str())?;
    let key = format!("{resource_type}/{id}");
    let wanted = match version.parse::<u64>() {
        Ok(v) => node.fhir.store.version(&key, v)?,
        Err(_) => None,
    };
    let (version, body) = read_version(
        &node,
        &session,
        &format!("{key}/_history/{version}"),
        wanted,
    )
    .await?;
    Ok(with_version_headers(
        fhir_bytes(StatusCode::OK, body),
        &version,
    ))
}

/// `GET /fhir/{type}/{id}/{operation}`: `_history` or `$export`.
pub async fn instance_operation(
    State(node): State<Arc<Node>>,
    Path((resource_type, id, operation)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    match operation.as_str() {
        "_history" => history(node, resource_type, id, headers).await,
        "$export" => super::export::kick_off(node, resource_type, id, query, headers).await,
        other => Err(FhirError::not_supported(format!(
            "{:?} is not an operation this server supports on an instance (supported: _history, $export on Patient and Group)",
            other.chars().take(40).collect::<String>()
        ))),
    }
}

async fn history(
    node: Arc<Node>,
    resource_type: String,
    id: String,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    let session = authenticate(&node, &headers)?;
    let resource_type = parse_type(&resource_type)?;
    scopes::require(&session, Interaction::Read, resource_type.as_str())?;
    let key = format!("{resource_type}/{id}");
    let versions = node.fhir.store.versions(&key)?;
    if versions.is_empty() {
        decide::absent(&node, &session, Interaction::Read, resource_type.as_str()).await?;
        return Err(decide::not_found(&key));
    }
    let purpose = decide::purpose(&session)?;
    let now = unix_now() as i64;
    let mut events = Vec::with_capacity(versions.len());
    let mut permitted = Vec::new();
    for version in versions {
        let decided = decide_version(
            &node,
            &session,
            purpose,
            resource_type.as_str(),
            &version,
            now,
        );
        if decided.decision.is_permit() {
            permitted.push(version);
        }
        events.push(decided.event);
    }
    decide::log(&node, &session, events, Vec::new()).await?;
    if permitted.is_empty() {
        return Err(decide::not_found(&key));
    }
    let base = super::base_url(&headers);
    let mut entries = Vec::with_capacity(permitted.len());
    for version in &permitted {
        let url = format!("{base}/{key}/_history/{}", version.version);
        let (method, status) = match (version.deleted, version.version) {
            (true, _) => ("DELETE", "204 No Content"),
            (false, 1) => ("POST", "201 Created"),
            (false, _) => ("PUT", "200 OK"),
        };
        let mut entry = json!({
            "fullUrl": format!("{base}/{key}"),
            "request": { "method": method, "url": if method == "POST" { resource_type.as_str().to_owned() } else { key.clone() } },
            "response": {
                "status": status,
                "etag": format!("W/\"{}\"", version.version),
                "lastModified": hygeia_fhir::date::format_instant(version.last_updated),
            },
        });
        if !version.deleted {
            let body = open_version(&node, &version.commitment)?;
            entry["resource"] = serde_json::from_slice(&body).map_err(FhirError::internal)?;
        }
        let _ = url;
        entries.push(entry);
    }
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "history",
        "total": entries.len(),
        "link": [{ "relation": "self", "url": format!("{base}/{key}/_history") }],
        "entry": entries,
    });
    Ok(fhir_json(StatusCode::OK, &bundle))
}

/// `GET /fhir`: system-wide search is not offered.
pub async fn system_search() -> FhirError {
    FhirError::not_supported(
        "system-wide search is not supported; search one resource type (GET /fhir/{type}?...)",
    )
}

/// Query pairs, percent-decoded.
fn pairs(raw: Option<&str>) -> Result<Vec<(String, String)>, FhirError> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    serde_urlencoded_pairs(raw)
}

fn serde_urlencoded_pairs(raw: &str) -> Result<Vec<(String, String)>, FhirError> {
    Ok(form_urlencoded::parse(raw.as_bytes())
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect())
}

/// `GET /fhir/{type}?...`.
pub async fn search(
    State(node): State<Arc<Node>>,
    Path(resource_type): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    let params = pairs(query.as_deref())?;
    run_search(node, resource_type, params, headers).await
}

/// `POST /fhir/{type}/_search` with a form body.
pub async fn search_form(
    State(node): State<Arc<Node>>,
    Path(resource_type): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, FhirError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return Err(FhirError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Issue::error(
                "not-supported",
                "POST _search takes application/x-www-form-urlencoded",
            ),
        ));
    }
    let mut params = pairs(query.as_deref())?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| FhirError::bad_request("value", "the form body is not UTF-8"))?;
    params.extend(serde_urlencoded_pairs(text)?);
    run_search(node, resource_type, params, headers).await
}

/// A searchset Bundle. Its entries hold each resource's JSON as stored,
/// so a page is written out without parsing and re-serializing every
/// resource (in profiles of the search benchmark that round trip was a
/// quarter of the node's time).
#[derive(serde::Serialize)]
struct Searchset {
    #[serde(rename = "resourceType")]
    resource_type: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<usize>,
    link: Vec<Value>,
    entry: Vec<Entry>,
}

#[derive(serde::Serialize)]
struct Entry {
    #[serde(rename = "fullUrl", skip_serializing_if = "Option::is_none")]
    full_url: Option<String>,
    resource: Box<RawValue>,
    search: SearchMode,
}

#[derive(serde::Serialize)]
struct SearchMode {
    mode: &'static str,
}

impl Entry {
    /// An entry for a stored resource: its bytes, checked to be one JSON
    /// value, copied as they are.
    fn stored(full_url: String, body: Vec<u8>, mode: &'static str) -> Result<Entry, FhirError> {
        let text = String::from_utf8(body).map_err(FhirError::internal)?;
        Ok(Entry {
            full_url: Some(full_url),
            resource: RawValue::from_string(text).map_err(FhirError::internal)?,
            search: SearchMode { mode },
        })
    }

    fn value(
        full_url: Option<String>,
        resource: &Value,
        mode: &'static str,
    ) -> Result<Entry, FhirError> {
        Ok(Entry {
            full_url,
            resource: serde_json::value::to_raw_value(resource).map_err(FhirError::internal)?,
            search: SearchMode { mode },
        })
    }
}

fn searchset(
    total: Option<usize>,
    links: Vec<Value>,
    mut entries: Vec<Entry>,
    warnings: &[Issue],
) -> Result<Response, FhirError> {
    if !warnings.is_empty() {
        let outcome = hygeia_fhir::outcome::operation_outcome(warnings);
        entries.push(Entry::value(None, &outcome, "outcome")?);
    }
    let bundle = Searchset {
        resource_type: "Bundle",
        kind: "searchset",
        total,
        link: links,
        entry: entries,
    };
    let body = serde_json::to_vec(&bundle).map_err(FhirError::internal)?;
    Ok(fhir_bytes(StatusCode::OK, body))
}

/// The few parameters the ledger views take.
fn view_params(
    params: &[(String, String)],
    allowed: &[&str],
    handling: Handling,
) -> Result<Vec<Issue>, FhirError> {
    let mut warnings = Vec::new();
    for (name, value) in params {
        if allowed.contains(&name.as_str()) || name == "_format" {
            continue;
        }
        let issue = Issue::error(
            "not-supported",
            format!(
                "search parameter {:?} (value {:?}) is not supported here; supported: {}",
                name.chars().take(64).collect::<String>(),
                value.chars().take(64).collect::<String>(),
                allowed.join(", ")
            ),
        );
        match handling {
            Handling::Strict => return Err(FhirError::many(StatusCode::BAD_REQUEST, vec![issue])),
            Handling::Lenient => warnings.push(Issue {
                severity: hygeia_fhir::outcome::Severity::Warning,
                ..issue
            }),
        }
    }
    Ok(warnings)
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn count_param(
    params: &[(String, String)],
    name: &str,
    default: usize,
) -> Result<usize, FhirError> {
    match param(params, name) {
        None => Ok(default),
        Some(v) => v.parse::<usize>().map_err(|_| {
            FhirError::bad_request(
                "value",
                format!(
                    "{name} must be a non-negative integer, not {:?}",
                    v.chars().take(32).collect::<String>()
                ),
            )
        }),
    }
}

async fn view_search(
    node: &Node,
    session: &Session,
    resource_type: ResourceType,
    params: &[(String, String)],
    headers: &HeaderMap,
) -> Result<Response, FhirError> {
    let base = super::base_url(headers);
    let handling = handling(headers);
    let self_link = |query: String| json!([{ "relation": "self", "url": format!("{base}/{resource_type}?{query}") }]);
    let (resources, total, warnings) = match resource_type {
        ResourceType::Consent => {
            let warnings = view_params(params, &["patient", "_count"], handling)?;
            let all = super::consent::search(node, session, param(params, "patient"), &base)?;
            let total = all.len();
            (all, total, warnings)
        }
        // The attested devices bound to a patient (docs/devices.md).
        ResourceType::Device => {
            let warnings = view_params(params, &["patient"], handling)?;
            let patient = param(params, "patient").unwrap_or_default();
            let all = super::devices::search_devices(node, session, patient);
            let total = all.len();
            (all, total, warnings)
        }
        ResourceType::AuditEvent => {
            let warnings = view_params(params, &["patient", "_count", "_offset"], handling)?;
            let count = count_param(params, "_count", 50)?.min(1000);
            let offset = count_param(params, "_offset", 0)?;
            let (events, total) = super::views::search_audit_events(
                node,
                session,
                param(params, "patient"),
                count,
                offset,
                &base,
            )?;
            (events, total, warnings)
        }
        _ => {
            let warnings = view_params(params, &["target"], handling)?;
            let target = param(params, "target").ok_or_else(|| {
                FhirError::bad_request("required", "Provenance search needs target=<Type>/<id>")
            })?;
            let all = super::views::search_provenance(node, session, target, &base).await?;
            let total = all.len();
            (all, total, warnings)
        }
    };
    let query: String = params
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let entries = resources
        .iter()
        .map(|r| {
            let id = r["id"].as_str().unwrap_or_default();
            Entry::value(Some(format!("{base}/{resource_type}/{id}")), r, "match")
        })
        .collect::<Result<Vec<_>, _>>()?;
    searchset(
        Some(total),
        self_link(query).as_array().cloned().unwrap_or_default(),
        entries,
        &warnings,
    )
}

/// Decided matches of a search.
struct Decided {
    permitted: Vec<Current>,
    /// Every match was decided, so `permitted.len()` is the total.
    complete: bool,
    /// The permits, to log: what the search discloses (a shared decision's
    /// records already in one event).
    events: Vec<Access>,
}

/// Decides matches in order until `needed` are permitted (all of them if
/// `decide_all`). What is denied is left out and leaves no event: a denial
/// logged for a resource the requester did not name would tell it that
/// something matched (docs/fhir.md, "Search never matches what you may
/// not see"). The node's own log counts them.
fn decide_matches(
    node: &Node,
    session: &Session,
    purpose: PurposeOfUse,
    interaction: Interaction,
    matches: Vec<Current>,
    needed: usize,
    decide_all: bool,
) -> Decided {
    let now = unix_now() as i64;
    let committed = node.state.read();
    let total = matches.len();
    let mut permitted = Vec::with_capacity(total.min(needed));
    let mut events = Vec::new();
    let mut decided = 0;
    let mut withheld = 0usize;
    let mut shared = decide::SharedDecisions::new(&committed.state);
    for current in matches {
        if !decide_all && permitted.len() >= needed {
            break;
        }
        decided += 1;
        let permit = shared.decide(
            &committed.state,
            session,
            purpose,
            interaction,
            &Subject {
                patient: &current.latest.patient,
                resource_type: &current.resource_type,
                category: &current.latest.category,
                commitment: Some(&current.latest.commitment),
            },
            now,
            &mut events,
        );
        if permit {
            permitted.push(current);
        } else {
            withheld += 1;
        }
    }
    if withheld > 0 {
        tracing::info!(
            target: "hygeia::access",
            requester = %session.did,
            withheld,
            "search matches withheld from their requester (denied, not logged on the ledger)"
        );
    }
    Decided {
        permitted,
        complete: decided == total,
        events,
    }
}

async fn run_search(
    node: Arc<Node>,
    resource_type: String,
    params: Vec<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    let session = authenticate(&node, &headers)?;
    let resource_type = parse_type(&resource_type)?;
    let reach = scopes::require(&session, Interaction::Search, resource_type.as_str())?;
    if matches!(
        resource_type,
        ResourceType::Consent | ResourceType::AuditEvent | ResourceType::Provenance
    ) || (resource_type == ResourceType::Device && param(&params, "patient").is_some())
    {
        return view_search(&node, &session, resource_type, &params, &headers).await;
    }
    let (query, warnings) = parse_query(resource_type, &params, handling(&headers))
        .map_err(|issues| FhirError::many(StatusCode::BAD_REQUEST, issues))?;
    let purpose = decide::purpose(&session)?;
    let readable = match reach {
        Reach::Anyone => {
            let named = candidates::compartment(&node.fhir.store, &query);
            let committed = node.state.read();
            candidates::readable(
                &committed.state,
                &session,
                purpose,
                unix_now() as i64,
                named.as_ref(),
            )
        }
        Reach::PatientInContext => {
            candidates::Readable::Patients([scopes::patient_in_context(&session).to_owned()].into())
        }
    };
    let matches = candidates::search(&node.fhir.store, &query, &readable);
    let decide_all = query.total == Some(TotalMode::Accurate)
        || query.count_only()
        || matches.len() <= DECIDE_ALL_UP_TO;
    let needed = query.offset.saturating_add(query.count).saturating_add(1);
    let decided = decide_matches(
        &node,
        &session,
        purpose,
        Interaction::Search,
        matches,
        needed,
        decide_all,
    );
    let page: Vec<Current> = if query.count_only() {
        Vec::new()
    } else {
        decided
            .permitted
            .iter()
            .skip(query.offset)
            .take(query.count)
            .cloned()
            .collect()
    };
    let has_next =
        decided.permitted.len() > query.offset.saturating_add(page.len()) && !query.count_only();
    let mut events = decided.events;
    let mut included = Vec::new();
    if !query.includes.is_empty() && !page.is_empty() {
        let keys: Vec<String> = page.iter().map(Current::key).collect();
        let included_candidates: Vec<Current> = node
            .fhir
            .store
            .included(&keys, &query.includes)
            .into_iter()
            .filter(|c| candidates::allows(&readable, c))
            .collect();
        let inc = decide_matches(
            &node,
            &session,
            purpose,
            Interaction::Read,
            included_candidates,
            usize::MAX,
            true,
        );
        events.extend(inc.events);
        included = inc.permitted;
    }
    let receipt = decide::log(&node, &session, events, Vec::new()).await?;
    let base = super::base_url(&headers);
    let mut entries = Vec::with_capacity(page.len() + included.len());
    let locations = node.custody.locations(
        page.iter()
            .chain(included.iter())
            .map(|c| c.latest.commitment.as_str()),
    )?;
    for ((current, mode), location) in page
        .iter()
        .map(|c| (c, "match"))
        .chain(included.iter().map(|c| (c, "include")))
        .zip(locations)
    {
        let body = open_located(&node, location)?;
        entries.push(Entry::stored(
            format!("{base}/{}", current.key()),
            body,
            mode,
        )?);
    }
    let total = (decided.complete && query.total != Some(TotalMode::None))
        .then_some(decided.permitted.len());
    let link = |offset: usize| {
        let mut q: SearchQuery = query.clone();
        q.offset = offset;
        format!("{base}/{resource_type}?{}", q.to_query_string())
    };
    let mut links = vec![json!({ "relation": "self", "url": link(query.offset) })];
    if !query.count_only() {
        links.push(json!({ "relation": "first", "url": link(0) }));
        if has_next {
            links.push(json!({ "relation": "next", "url": link(query.offset + query.count) }));
        }
        if query.offset > 0 {
            links.push(json!({ "relation": "previous", "url": link(query.offset.saturating_sub(query.count)) }));
        }
    }
    let mut response = searchset(total, links, entries, &warnings)?;
    if let Some(receipt) = receipt {
        response
            .headers_mut()
            .insert("hygeia-audit-index", HeaderValue::from(receipt.first_index));
    }
    Ok(response)
}
