//! Accounts, escrows and care programs (docs/economy.md): what the ledger
//! says about them, read from the replayed state, and the ledger's clock.
//!
//! Every change is a signed transaction the user submits to
//! `POST /v1/transactions` (`unit.*`, `escrow.*`, `program.*`); these
//! routes only read, except `POST /v1/clock`, which makes the node attest
//! its time (`clock.tick`) at most once per [`MIN_TICK_SECS`]. Everything
//! served here can be recomputed by anyone who replays the public log, so
//! serving it tells a stranger nothing the log does not.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use hygeia_state::escrow::CLOCK_TICK;
use hygeia_state::programs::{challenge, Program};

use super::error::ApiError;
use crate::node::Node;

/// Least time between two ticks the node signs on request: what a stranger
/// calling `POST /v1/clock` in a loop can add to the log (one entry a
/// minute).
pub const MIN_TICK_SECS: i64 = 60;

/// `GET /v1/units`: the units, their issuers and supplies, and the
/// ledger's clock.
pub async fn units(State(node): State<Arc<Node>>) -> Json<Value> {
    let committed = node.state.read();
    let state = &committed.state;
    let units: Vec<Value> = state
        .accounts
        .units()
        .into_iter()
        .map(|(code, unit)| {
            json!({"unit": code, "issuer": unit.issuer, "supply": unit.supply,
                   "registered_at": unit.registered_at})
        })
        .collect();
    Json(json!({"units": units, "clock": state.escrows.clock}))
}

/// `GET /v1/accounts/{did}`: a DID's balances, by unit, and the escrows it
/// funds or benefits from.
pub async fn account(State(node): State<Arc<Node>>, Path(did): Path<String>) -> Json<Value> {
    let committed = node.state.read();
    let state = &committed.state;
    let balances: serde_json::Map<String, Value> = state
        .accounts
        .balances_of(&did)
        .into_iter()
        .map(|(unit, amount)| (unit, json!(amount)))
        .collect();
    let escrows: Vec<Value> = state
        .escrows
        .all()
        .into_iter()
        .filter(|(_, e)| e.funder == did || e.beneficiary.as_deref() == Some(did.as_str()))
        .map(|(id, e)| escrow_json(id, e))
        .collect();
    Json(json!({"did": did, "balances": balances, "escrows": escrows}))
}

fn escrow_json(id: &str, e: &hygeia_state::escrow::Escrow) -> Value {
    json!({
        "id": id, "funder": e.funder, "unit": e.unit, "amount": e.amount, "locked": e.locked,
        "beneficiary": e.beneficiary, "condition": e.condition, "refund_after": e.refund_after,
        "status": e.status, "opened_at": e.opened_at, "ended_at": e.ended_at,
    })
}

/// `GET /v1/escrows/{id}`.
pub async fn escrow(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let committed = node.state.read();
    let escrow = committed
        .state
        .escrows
        .get(&id)
        .ok_or_else(|| ApiError::not_found(format!("no escrow {id}")))?;
    Ok(Json(escrow_json(&id, escrow)))
}

fn program_json(node: &Node, id: &str, p: &Program, fund: u64, clock: i64) -> Value {
    json!({
        "id": id, "org": p.org, "unit": p.unit, "reward": p.reward,
        "requirement": {"attribute": p.attribute, "loinc": p.loinc, "range": p.range},
        "issuers": p.issuers, "start": p.start, "period_secs": p.period_secs,
        "period": p.period_at(clock), "published_at": p.published_at,
        "claims": p.claims, "fund": fund, "challenge": challenge(id),
        "network": node.config.network,
    })
}

/// `GET /v1/programs`: every care program.
pub async fn programs(State(node): State<Arc<Node>>) -> Json<Value> {
    let committed = node.state.read();
    let state = &committed.state;
    let clock = state.escrows.clock;
    let all: Vec<Value> = state
        .programs
        .all()
        .into_iter()
        .map(|(id, p)| program_json(&node, id, p, state.escrows.program_balance(id), clock))
        .collect();
    Json(json!({"programs": all, "clock": clock}))
}

/// `GET /v1/programs/{id}`: a program, its challenge (what a claim's proof
/// answers) and what its escrows still hold.
pub async fn program(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let committed = node.state.read();
    let state = &committed.state;
    let p = state
        .programs
        .get(&id)
        .ok_or_else(|| ApiError::not_found(format!("no care program {id}")))?;
    Ok(Json(program_json(
        &node,
        &id,
        p,
        state.escrows.program_balance(&id),
        state.escrows.clock,
    )))
}

/// `GET /v1/clock`: the ledger's clock.
pub async fn clock(State(node): State<Arc<Node>>) -> Json<Value> {
    let clock = node.state.read().state.escrows.clock;
    Json(json!({"clock": clock}))
}

/// `POST /v1/clock`: the node attests its current time on the ledger
/// (`clock.tick`, signed by its custodian key) when the ledger's clock is
/// at least [`MIN_TICK_SECS`] behind it; otherwise nothing is written.
/// `201` with the new clock and the entry's index, or `200` with the clock
/// as it is.
pub async fn tick(State(node): State<Arc<Node>>) -> Result<(StatusCode, Json<Value>), ApiError> {
    let now = i64::try_from(crate::node::unix_now()).unwrap_or(i64::MAX);
    let clock = node.state.read().state.escrows.clock;
    if now < clock.saturating_add(MIN_TICK_SECS) {
        return Ok((
            StatusCode::OK,
            Json(json!({"clock": clock, "ticked": false})),
        ));
    }
    let tx = crate::access::sign(&node, CLOCK_TICK, json!({"time": now}))?;
    match node.sequencer.submit(vec![tx]).await {
        Ok(receipt) => Ok((
            StatusCode::CREATED,
            Json(json!({"clock": now, "ticked": true, "index": receipt.first_index})),
        )),
        // Another request ticked first.
        Err(hygeia_ledger::SubmitError::Rejected(e)) if e.code.as_str() == "clock.not_later" => {
            let clock = node.state.read().state.escrows.clock;
            Ok((
                StatusCode::OK,
                Json(json!({"clock": clock, "ticked": false})),
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// The payout formula of research-sharing programmes, as served.
pub const SHARING_FORMULA: &str = "per_day x whole days the grant was active (once it has a counted access) from max(not_before, start, days already paid to the patient) to min(ledger clock, not_after, revocation) + per_access x counted accesses not yet paid (at most one a day per researcher and patient)";

/// `GET /v1/sharing/{id}`: a research-sharing programme, what its escrows
/// still hold, its claims and what it paid (docs/sharing.md). With
/// `?grant=<id>` (an HRESCH grant to the programme's researcher): what
/// claims under that grant were paid and what a claim would pay now. No
/// patient DID is served; everything here follows from the public log.
pub async fn sharing(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
    query: Result<Query<std::collections::HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(super::records::query_error)?;
    let committed = node.state.read();
    let state = &committed.state;
    let p = state
        .sharing
        .get(&id)
        .ok_or_else(|| ApiError::not_found(format!("no research-sharing programme {id}")))?;
    let clock = state.escrows.clock;
    let mut out = json!({
        "id": id, "researcher": p.researcher, "unit": p.unit, "per_day": p.per_day,
        "per_access": p.per_access, "start": p.start, "published_at": p.published_at,
        "claims": p.claims, "paid": p.paid, "fund": state.escrows.program_balance(&id),
        "clock": clock, "formula": SHARING_FORMULA,
    });
    if let Some(grant_id) = query.get("grant") {
        let grant = state
            .policy
            .consents()
            .get(grant_id)
            .filter(|g| {
                g.purpose == hygeia_policy::PurposeOfUse::Research && g.grantee == p.researcher
            })
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "no HRESCH grant {grant_id} to this programme's researcher"
                ))
            })?;
        let paid = state.sharing.claims_of(&id, grant_id);
        let usage = state.sharing.usage(grant_id);
        let owed = state.sharing.owed(&id, p, grant, clock);
        out["grant"] = json!({
            "id": grant_id, "not_before": grant.not_before, "not_after": grant.not_after,
            "revoked_at": usage.revoked_at, "counted_accesses": usage.accesses,
            "paid": {"days": paid.days, "accesses": paid.accesses, "amount": paid.amount,
                     "claims": paid.claims},
            "owed": {"from": owed.from, "days": owed.days, "accesses": owed.accesses,
                     "amount": u64::try_from(owed.amount).unwrap_or(u64::MAX)},
        });
    }
    Ok(Json(out))
}
