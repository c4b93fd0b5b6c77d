//! FHIR Consent ⇄ ledger consent grants.
//!
//! A grant is the patient's signed `consent.grant` transaction; the node
//! never signs one. So creating a Consent takes two things: the Consent
//! resource (the body) and the patient's (or a delegate's) signed
//! transaction carrying exactly the grant the Consent maps to, sent in the
//! standard `X-Provenance` header as a Provenance whose `signature.data` is
//! that transaction (base64). Revoking (DELETE) works the same way with a
//! signed `consent.revoke`. `hygeia fhir consent` builds both. Every grant
//! reads back as a Consent whose id is the grant id.

use std::cell::RefCell;

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine;
use hygeia_auth::scope::Interaction;
use hygeia_auth::token::Session;
use hygeia_fhir::consent::{consent_to_terms, terms_to_consent, GrantTerms, LedgerLink, Resolver};
use hygeia_fhir::outcome::Issue;
use hygeia_fhir::reference::{did_of_reference, did_of_resource, parse_local};
use hygeia_fhir::types::ResourceType;
use hygeia_ledger::tx::{SignedTx, TxContext};
use hygeia_policy::Grant;
use serde_json::Value;

use super::{decide, fhir_json, FhirError};
use crate::fhir_store::Current;
use crate::node::{unix_now, Node};
use crate::state::txs::{self, Access, ConsentGrant, ConsentRevoke};

/// Resolves Consent references against this node's resources, as far as
/// the requester may read them: each local reference is a read, decided
/// (and its event kept, to be logged before the answer), and one the
/// requester may not read resolves to nothing, exactly like one to a
/// resource that does not exist (docs/fhir.md, "Consent as FHIR Consent").
pub struct NodeResolver<'a> {
    node: &'a Node,
    session: &'a Session,
    events: RefCell<Vec<Access>>,
}

impl<'a> NodeResolver<'a> {
    pub fn new(node: &'a Node, session: &'a Session) -> Self {
        NodeResolver {
            node,
            session,
            events: RefCell::new(Vec::new()),
        }
    }

    /// The decisions made while resolving.
    pub fn into_events(self) -> Vec<Access> {
        self.events.into_inner()
    }

    /// The current version a local reference names, if the requester may
    /// read it.
    fn readable(&self, reference: &Value) -> Option<Current> {
        let text = reference.get("reference")?.as_str()?;
        let target = parse_local(text, None)?;
        let purpose = decide::purpose(self.session).ok()?;
        let current = self
            .node
            .fhir
            .store
            .current(&target.key())
            .filter(|c| !c.latest.deleted);
        let committed = self.node.state.read();
        let Some(current) = current else {
            if let Ok(event) = decide::absent_event(
                &committed.state,
                &self.node.node_did,
                self.session,
                Interaction::Read,
                target.resource_type.as_str(),
            ) {
                self.events.borrow_mut().push(event);
            }
            return None;
        };
        let decided = decide::decide(
            &committed.state,
            self.session,
            purpose,
            Interaction::Read,
            &decide::Subject {
                patient: &current.latest.patient,
                resource_type: &current.resource_type,
                category: &current.latest.category,
                commitment: Some(&current.latest.commitment),
            },
            unix_now() as i64,
        );
        let permitted = decided.decision.is_permit();
        self.events.borrow_mut().push(decided.event);
        permitted.then_some(current)
    }
}

impl Resolver for NodeResolver<'_> {
    fn did(&self, reference: &Value) -> Option<String> {
        let by_identifier = did_of_reference(reference).map(str::to_owned);
        if reference.get("reference").is_none() {
            return by_identifier;
        }
        let current = self.readable(reference)?;
        match current.resource_type.parse::<ResourceType>().ok()? {
            // A Patient's DID is the patient whose consent governs it.
            ResourceType::Patient => Some(current.latest.patient),
            ResourceType::Practitioner | ResourceType::Organization => {
                let meta = self.node.custody.meta(&current.latest.commitment).ok()??;
                let mut bytes = Vec::new();
                self.node.custody.open_record(&meta, &mut bytes).ok()?;
                let resource: Value = serde_json::from_slice(&bytes).ok()?;
                did_of_resource(&resource).map(str::to_owned)
            }
            _ => None,
        }
    }

    fn record(&self, reference: &Value) -> Option<String> {
        self.readable(reference).map(|c| c.latest.commitment)
    }
}

fn unprocessable(code: &'static str, message: impl Into<String>) -> FhirError {
    FhirError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        Issue::error(code, message),
    )
}

/// The signed transaction carried by `X-Provenance`.
fn signed_transaction(node: &Node, headers: &HeaderMap, what: &str) -> Result<SignedTx, FhirError> {
    let missing = || {
        FhirError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            Issue::error(
                "required",
                format!("{what} needs the patient's signed transaction: send it in the X-Provenance header as a Provenance whose signature[0].data is the base64 {what} transaction (docs/fhir.md; `hygeia fhir consent` does this)"),
            ),
        )
    };
    let text = headers
        .get("x-provenance")
        .ok_or_else(missing)?
        .to_str()
        .map_err(|_| FhirError::bad_request("structure", "X-Provenance must be ASCII JSON"))?;
    let provenance: Value = serde_json::from_str(text).map_err(|e| {
        FhirError::bad_request("structure", format!("X-Provenance is not JSON: {e}"))
    })?;
    if provenance.get("resourceType").and_then(Value::as_str) != Some("Provenance") {
        return Err(FhirError::bad_request(
            "invalid",
            "X-Provenance must hold a Provenance resource",
        ));
    }
    let data = provenance
        .pointer("/signature/0/data")
        .and_then(Value::as_str)
        .ok_or_else(missing)?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| {
            FhirError::bad_request(
                "structure",
                format!("X-Provenance signature.data is not base64: {e}"),
            )
        })?;
    let ctx = TxContext {
        network: &node.config.network,
        modules: &node.modules,
    };
    SignedTx::parse(&raw, &ctx).map_err(|e| {
        unprocessable(
            "security",
            format!("the signed transaction in X-Provenance is refused: {e}"),
        )
    })
}

fn ledger_link(node: &Node, index: u64, base: &str) -> LedgerLink {
    let _ = node;
    LedgerLink {
        index,
        proof_url: format!(
            "{}/v1/proofs/inclusion?index={index}",
            base.trim_end_matches("/fhir")
        ),
    }
}

/// The grant as FHIR terms.
fn terms_of(grant: &Grant) -> GrantTerms {
    GrantTerms {
        patient: grant.patient.clone(),
        grantee: grant.grantee.clone(),
        scope: grant.scope.clone(),
        actions: grant.actions.clone(),
        purpose: grant.purpose,
        not_before: grant.not_before,
        not_after: grant.not_after,
        jurisdictions: grant.jurisdictions.clone(),
    }
}

/// `POST /fhir/Consent`.
pub async fn create(
    node: &Node,
    session: &Session,
    headers: &HeaderMap,
    consent: Value,
) -> Result<Response, FhirError> {
    hygeia_fhir::validate::validate(&consent, Some(ResourceType::Consent))
        .map_err(|issues| FhirError::many(StatusCode::UNPROCESSABLE_ENTITY, issues))?;
    let tx = signed_transaction(node, headers, "consent.grant")?;
    if tx.tx_type() != txs::CONSENT_GRANT {
        return Err(unprocessable(
            "invalid",
            format!(
                "X-Provenance carries a {} transaction; creating a Consent needs a consent.grant",
                tx.tx_type()
            ),
        ));
    }
    // The transaction is signed by a key; it must act for the same identity
    // as the token's (after a recovery, the rotated-in key).
    let signer_identity = crate::api::auth::acting_identity(&node.state.read().state, tx.signer())
        .map_err(|e| FhirError::from_api(&e))?;
    if signer_identity.as_str() != session.did {
        return Err(unprocessable(
            "security",
            "the consent.grant must be signed by the requester (the patient or a registered delegate)",
        ));
    }
    let body: ConsentGrant = serde_json::from_value(tx.body().clone())
        .map_err(|e| unprocessable("invalid", format!("consent.grant body: {e}")))?;
    // Resolving local references reads them: each read is decided, and the
    // decisions are logged whatever the outcome.
    let resolver = NodeResolver::new(node, session);
    let terms = consent_to_terms(&consent, &resolver);
    decide::log(node, session, resolver.into_events(), Vec::new()).await?;
    let terms =
        terms.map_err(|issues| FhirError::many(StatusCode::UNPROCESSABLE_ENTITY, issues))?;
    let expected = ConsentGrant {
        patient: terms.patient.clone(),
        grantee: terms.grantee.clone(),
        scope: terms.scope.clone(),
        actions: terms.actions.clone(),
        purpose: terms.purpose.code().to_owned(),
        not_before: terms.not_before,
        not_after: terms.not_after,
        jurisdictions: terms.jurisdictions.clone(),
    };
    if body != expected {
        // Name the members that differ, not their values: the expected
        // ones come from resolving references.
        let (signed, described) = (
            serde_json::to_value(&body).unwrap_or_default(),
            serde_json::to_value(&expected).unwrap_or_default(),
        );
        let differing: Vec<&str> = [
            "patient",
            "grantee",
            "scope",
            "actions",
            "purpose",
            "not_before",
            "not_after",
            "jurisdictions",
        ]
        .into_iter()
        .filter(|member| signed.get(member) != described.get(member))
        .collect();
        return Err(unprocessable(
            "invalid",
            format!(
                "the signed consent.grant does not carry exactly the grant this Consent describes (it differs in: {})",
                differing.join(", ")
            ),
        ));
    }
    let grant_id = hex::encode(tx.leaf_hash().0);
    let receipt = node
        .sequencer
        .submit(vec![tx])
        .await
        .map_err(decide::submit_error)?;
    let base = super::base_url(headers);
    let created = terms_to_consent(
        &grant_id,
        &terms,
        true,
        &ledger_link(node, receipt.first_index, &base),
    );
    let mut response = fhir_json(StatusCode::CREATED, &created);
    if let Ok(v) = format!("{base}/Consent/{grant_id}").parse() {
        response
            .headers_mut()
            .insert(axum::http::header::LOCATION, v);
    }
    Ok(response)
}

/// `DELETE /fhir/Consent/{id}`: revokes the grant.
pub async fn revoke(
    node: &Node,
    session: &Session,
    headers: &HeaderMap,
    grant_id: &str,
) -> Result<Response, FhirError> {
    if !visible(node, session, grant_id) {
        return Err(decide::not_found(&format!("Consent/{grant_id}")));
    }
    let tx = signed_transaction(node, headers, "consent.revoke")?;
    let body: ConsentRevoke = (tx.tx_type() == txs::CONSENT_REVOKE)
        .then(|| serde_json::from_value(tx.body().clone()).ok())
        .flatten()
        .ok_or_else(|| {
            unprocessable(
                "invalid",
                "X-Provenance must carry a consent.revoke transaction",
            )
        })?;
    if body.grant != grant_id {
        return Err(unprocessable(
            "invalid",
            "the signed consent.revoke names another grant than the URL",
        ));
    }
    node.sequencer
        .submit(vec![tx])
        .await
        .map_err(decide::submit_error)?;
    Ok(fhir_json(
        StatusCode::OK,
        &hygeia_fhir::outcome::operation_outcome(&[Issue {
            severity: hygeia_fhir::outcome::Severity::Information,
            code: "informational",
            diagnostics: format!("grant {grant_id} is revoked"),
            expression: None,
        }]),
    ))
}

/// Who may see a grant: its patient, the patient's delegates, its grantee.
fn visible(node: &Node, session: &Session, grant_id: &str) -> bool {
    let committed = node.state.read();
    let consents = committed.state.policy.consents();
    consents.get(grant_id).is_some_and(|g| {
        g.patient == session.did
            || g.grantee == session.did
            || consents.is_delegate(&g.patient, &session.did)
    })
}

/// One grant as a Consent, if the requester may see it.
pub fn read(
    node: &Node,
    session: &Session,
    grant_id: &str,
    base: &str,
) -> Result<Value, FhirError> {
    let found = {
        let committed = node.state.read();
        let consents = committed.state.policy.consents();
        consents
            .get(grant_id)
            .filter(|g| {
                (g.patient == session.did
                    || g.grantee == session.did
                    || consents.is_delegate(&g.patient, &session.did))
                    && super::scopes::within(session, Interaction::Read, "Consent", &g.patient)
            })
            .map(|g| {
                (
                    terms_of(g),
                    g.is_active_at(unix_now() as i64) && !consents.is_revoked(grant_id),
                )
            })
    };
    let (terms, active) = found.ok_or_else(|| decide::not_found(&format!("Consent/{grant_id}")))?;
    let index = grant_index(node, grant_id).unwrap_or_default();
    Ok(terms_to_consent(
        grant_id,
        &terms,
        active,
        &ledger_link(node, index, base),
    ))
}

fn grant_index(node: &Node, grant_id: &str) -> Option<u64> {
    let hash = hex::decode(grant_id).ok()?;
    let hash: [u8; 32] = hash.try_into().ok()?;
    node.store
        .snapshot()
        .ok()?
        .index_of(&hygeia_ledger::merkle::Hash(hash))
        .ok()?
}

/// The grants a requester may see, for `GET /fhir/Consent` (optionally of
/// one patient, by reference or DID).
pub fn search(
    node: &Node,
    session: &Session,
    patient: Option<&str>,
    base: &str,
) -> Result<Vec<Value>, FhirError> {
    let patient_did = match patient {
        None => None,
        Some(text) if text.starts_with("did:") => Some(text.to_owned()),
        // Only grants the requester may see are listed, so the DID is
        // looked up without a read.
        Some(text) => {
            Some(super::views::patient_did(node, text).unwrap_or_else(|| "did:unknown".to_owned()))
        }
    };
    let now = unix_now() as i64;
    let chosen: Vec<(String, GrantTerms, bool)> = {
        let committed = node.state.read();
        let consents = committed.state.policy.consents();
        let mine = |g: &&Grant| {
            (g.patient == session.did
                || g.grantee == session.did
                || consents.is_delegate(&g.patient, &session.did))
                && super::scopes::within(session, Interaction::Search, "Consent", &g.patient)
        };
        let mut grants: Vec<&Grant> = match &patient_did {
            Some(did) => consents.grants_of(did).filter(mine).collect(),
            None => {
                let mut all: Vec<&Grant> = consents.grants_of(&session.did).collect();
                all.extend(
                    consents
                        .grants_to(&session.did)
                        .filter(|g| g.patient != session.did),
                );
                all
            }
        };
        grants.sort_by(|a, b| (a.not_before, &a.id).cmp(&(b.not_before, &b.id)));
        grants
            .into_iter()
            .map(|g| {
                (
                    g.id.clone(),
                    terms_of(g),
                    g.is_active_at(now) && !consents.is_revoked(&g.id),
                )
            })
            .collect()
    };
    Ok(chosen
        .into_iter()
        .map(|(id, terms, active)| {
            let index = grant_index(node, &id).unwrap_or_default();
            terms_to_consent(&id, &terms, active, &ledger_link(node, index, base))
        })
        .collect())
}
