//! `POST /fhir/Patient/{id}/$health-cards-issue`: SMART Health Cards
//! (<https://spec.smarthealth.cards>) of a patient's immunizations and lab
//! results, signed by the node's issuer key (`/.well-known/jwks.json`).
//!
//! A card is an export: the Patient and every resource that could go on the
//! card are decided like reads for the token's requester and purpose, and
//! every decision is logged (durably, in one submission) before the card is
//! signed. Denied resources are left out and leave no trace in the answer;
//! a Patient the requester may not read answers 404, as a read would.

mod content;
mod covid19;
pub mod request;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use hygeia_auth::scope::Interaction;
use hygeia_auth::token::Session;
use hygeia_credentials::shc::{self, ShcError};
use hygeia_fhir::outcome::Issue;
use hygeia_fhir::search::{parse_query, Handling};
use serde_json::{json, Value};

use super::decide::{self, Subject};
use super::{authenticate, fhir_json, parse_body, require_fhir_json, FhirError};
use crate::fhir_store::Current;
use crate::node::{unix_now, Node};
use crate::state::txs::Access;
use request::{IssueRequest, Kind};

/// The operation's name in URLs.
pub const OPERATION: &str = "$health-cards-issue";
/// Its definition, for the CapabilityStatement.
pub const DEFINITION: &str =
    "http://hl7.org/fhir/uv/smart-health-cards-and-links/OperationDefinition/patient-i-health-cards-issue";
/// Most resources of one kind a card may be made of. A QR code holds a
/// few; a file many, but a card is not a bulk export (`$export` is).
const MAX_PER_KIND: usize = 200;

const LABORATORY_CATEGORY: &str =
    "http://terminology.hl7.org/CodeSystem/observation-category|laboratory";

/// `POST /fhir/{type}/{id}/{operation}`.
pub async fn instance_operation(
    State(node): State<Arc<Node>>,
    Path((resource_type, id, operation)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, FhirError> {
    if operation != OPERATION {
        return Err(FhirError::not_supported(format!(
            "POST {:?} is not an operation this server supports on an instance (supported: {OPERATION} on Patient)",
            operation.chars().take(40).collect::<String>()
        )));
    }
    let session = authenticate(&node, &headers)?;
    if resource_type != "Patient" {
        return Err(FhirError::not_supported(format!(
            "{OPERATION} is offered on Patient/{{id}}, not on {:?}",
            resource_type.chars().take(40).collect::<String>()
        )));
    }
    super::scopes::require(&session, Interaction::Read, "Patient")?;
    require_fhir_json(&headers)?;
    let request = request::parse_request(&parse_body(&body)?)?;
    let base = super::base_url(&headers);
    issue_cards(&node, &session, &id, &request, &base).await
}

/// A resource decided readable, with its stored content.
struct OnCard {
    current: Current,
    content: Value,
}

async fn issue_cards(
    node: &Node,
    session: &Session,
    patient_id: &str,
    request: &IssueRequest,
    base: &str,
) -> Result<Response, FhirError> {
    let purpose = decide::purpose(session)?;
    let key = format!("Patient/{patient_id}");
    let Some(patient) = node.fhir.store.current(&key).filter(|c| !c.latest.deleted) else {
        decide::absent(node, session, Interaction::Read, "Patient").await?;
        return Err(decide::not_found(&key));
    };
    let queries = request
        .kinds()
        .into_iter()
        .map(|kind| Ok((kind, query(kind, patient_id, request)?)))
        .collect::<Result<Vec<_>, FhirError>>()?;

    // Decide the Patient first; only then look at its resources. What the
    // requester may not read of them is left out without an event, as in a
    // search (docs/fhir.md, "Search never matches what you may not see").
    let now = unix_now() as i64;
    let mut events: Vec<Access> = Vec::new();
    let (patient_permitted, permitted) = {
        let committed = node.state.read();
        let decide_one = |current: &Current| {
            decide::decide(
                &committed.state,
                session,
                purpose,
                Interaction::Read,
                &subject(current),
                now,
            )
        };
        let on_patient = decide_one(&patient);
        let patient_permitted = on_patient.decision.is_permit();
        events.push(on_patient.event);
        let mut permitted: Vec<(Kind, Vec<Current>)> = Vec::new();
        if patient_permitted {
            for (kind, query) in &queries {
                let mut found = Vec::new();
                for current in node.fhir.store.search(query) {
                    let decided = decide_one(&current);
                    if decided.decision.is_permit() {
                        events.push(decided.event);
                        found.push(current);
                    }
                }
                permitted.push((*kind, found));
            }
        }
        (patient_permitted, permitted)
    };
    let receipt = decide::log(node, session, events, Vec::new()).await?;
    if !patient_permitted {
        return Err(decide::not_found(&key));
    }
    // Counted after the decisions, so that only what the requester may
    // read shows in the answer.
    if let Some((kind, _)) = permitted.iter().find(|(_, p)| p.len() > MAX_PER_KIND) {
        return Err(FhirError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            Issue::error(
                "too-costly",
                format!(
                    "more than {MAX_PER_KIND} {} resources would go on one card; narrow it with _since (or use $export)",
                    kind.resource_type()
                ),
            ),
        ));
    }

    let Some(patient_content) = open(node, &patient)? else {
        // Erased: its keys are gone, and with them the card's subject.
        return Err(decide::not_found(&key));
    };
    let mut kinds_on_card: Vec<Kind> = Vec::new();
    let mut entries: Vec<(Kind, OnCard)> = Vec::new();
    for (kind, found) in permitted {
        for current in found {
            if let Some(content) = open(node, &current)? {
                entries.push((kind, OnCard { current, content }));
            }
        }
        if entries.iter().any(|(k, _)| *k == kind) {
            kinds_on_card.push(kind);
        }
    }
    let complete = if request.required.is_empty() {
        !kinds_on_card.is_empty()
    } else {
        request.required.iter().all(|k| kinds_on_card.contains(k))
    };
    let mut parameters = Vec::new();
    if complete {
        let card = sign_card(
            node,
            request,
            patient_id,
            &patient_content,
            &entries,
            &kinds_on_card,
            now,
        )?;
        parameters.push(json!({ "name": "verifiableCredential", "valueString": card.jws() }));
        let hosted = std::iter::once(&patient).chain(entries.iter().map(|(_, e)| &e.current));
        for (index, current) in hosted.enumerate() {
            parameters.push(json!({
                "name": "resourceLink",
                "part": [
                    { "name": "vcIndex", "valueInteger": 0 },
                    { "name": "bundledResource", "valueUri": format!("resource:{index}") },
                    { "name": "hostedResource", "valueUri": format!("{base}/{}", current.key()) },
                ],
            }));
        }
    }
    let mut answer = json!({ "resourceType": "Parameters" });
    if !parameters.is_empty() {
        answer["parameter"] = Value::Array(parameters);
    }
    let mut response = fhir_json(StatusCode::OK, &answer);
    if let Some(receipt) = receipt {
        response
            .headers_mut()
            .insert("hygeia-audit-index", HeaderValue::from(receipt.first_index));
    }
    Ok(response)
}

/// The search for one kind's candidates, sorted by clinical date.
fn query(
    kind: Kind,
    patient_id: &str,
    request: &IssueRequest,
) -> Result<hygeia_fhir::search::SearchQuery, FhirError> {
    let mut params = vec![
        ("patient".to_owned(), format!("Patient/{patient_id}")),
        ("_sort".to_owned(), "date".to_owned()),
    ];
    match kind {
        Kind::Immunization => {
            if request.covid19 {
                params.push((
                    "vaccine-code".into(),
                    covid19::any_of(covid19::CVX_SYSTEM, covid19::VACCINE_CODES),
                ));
            }
        }
        Kind::Laboratory => {
            params.push(("category".into(), LABORATORY_CATEGORY.into()));
            if request.covid19 {
                params.push((
                    "code".into(),
                    covid19::any_of(covid19::LOINC_SYSTEM, covid19::LAB_TEST_CODES),
                ));
            }
        }
    }
    if let Some(since) = &request.since {
        params.push(("_lastUpdated".into(), format!("ge{since}")));
    }
    parse_query(kind.resource_type(), &params, Handling::Strict)
        .map(|(query, _)| query)
        .map_err(|issues| FhirError::many(StatusCode::BAD_REQUEST, issues))
}

fn subject(current: &Current) -> Subject<'_> {
    Subject {
        patient: &current.latest.patient,
        resource_type: &current.resource_type,
        category: &current.latest.category,
        commitment: Some(&current.latest.commitment),
    }
}

/// A version's content, or `None` when it was erased (its keys destroyed).
fn open(node: &Node, current: &Current) -> Result<Option<Value>, FhirError> {
    let Some(meta) = node.custody.meta(&current.latest.commitment)? else {
        return Ok(None);
    };
    let mut bytes = Vec::with_capacity(meta.size as usize);
    node.custody.open_record(&meta, &mut bytes)?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(FhirError::internal)
}

fn sign_card(
    node: &Node,
    request: &IssueRequest,
    patient_id: &str,
    patient: &Value,
    entries: &[(Kind, OnCard)],
    kinds: &[Kind],
    now: i64,
) -> Result<shc::HealthCard, FhirError> {
    let mut resources = vec![content::patient(patient, patient_id)];
    resources.extend(
        entries
            .iter()
            .map(|(kind, e)| content::entry(*kind, &e.content, &e.current.id, patient_id)),
    );
    let bundle = shc::bundle_from_resources(resources);
    let mut types: Vec<&str> = kinds.iter().map(|k| k.type_uri()).collect();
    if request.covid19 {
        types.push(request::COVID19_TYPE);
    }
    let issuer = &node.health_cards;
    shc::issue(&bundle, &types, issuer.iss(), now, issuer.key()).map_err(|e| match e {
        ShcError::TooLarge(_) => FhirError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            Issue::error("too-costly", format!("{e}; narrow the card with _since")),
        ),
        other => FhirError::internal(format!("{} ({})", other, other.code())),
    })
}
