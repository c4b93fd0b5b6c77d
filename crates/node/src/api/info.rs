//! Node information, health and the OpenAPI document.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use super::OPENAPI;
use crate::node::Node;

/// `GET /v1/node`: what a client needs to talk to and verify this node.
pub async fn node_info(State(node): State<Arc<Node>>) -> Json<Value> {
    let checkpoint = node.sequencer.latest_checkpoint();
    let (network_id, custodians, epoch, validators, founders) = {
        let committed = node.state.read();
        let network = &committed.state.network;
        // Epoch 0's set is the genesis custodians, whose addresses are in
        // each node's peers file, not in the log; a later epoch's set was
        // named with its addresses by governance.
        let validators: Vec<Value> = if network.epoch() > 0 {
            network
                .validators()
                .iter()
                .map(|v| json!({"key": v.key, "address": v.address}))
                .collect()
        } else {
            network
                .validator_keys()
                .into_iter()
                .map(|key| json!({"key": key}))
                .collect()
        };
        (
            network.id().map(str::to_owned),
            network.custodians().map(str::to_owned).collect::<Vec<_>>(),
            network.epoch(),
            validators,
            network
                .founders()
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>(),
        )
    };
    // Epoch 0's nodes with their addresses, from this node's peers file:
    // what a joining organization's node dials first (`hygeia network
    // join`; the genesis names their keys, not their addresses).
    let peers: Option<Vec<Value>> = node.config.peers.as_ref().map(|file| {
        file.peers
            .iter()
            .filter(|peer| founders.contains(&peer.did))
            .map(|peer| json!({"did": peer.did, "p2p": peer.p2p, "api": peer.api}))
            .collect()
    });
    Json(json!({
        "network": node.config.network,
        "network_id": network_id,
        "custodians": custodians,
        "epoch": epoch,
        "validators": validators,
        "peers": peers,
        "node_did": node.node_did,
        "checkpoint_verifier_key": node.verifier_key,
        "cosigner_key": node.witness.verifier_key(),
        "witnessed_logs": node.witness.outside_logs().collect::<Vec<_>>(),
        "governance": node.config.governance,
        "tree_size": checkpoint.size,
        "transaction_types": node.modules.types(),
        "transaction_version": hygeia_ledger::TX_VERSION,
        "limits": {
            "max_transaction_bytes": hygeia_ledger::MAX_TX_BYTES,
            "max_batch_transactions": node.config.max_batch_txs,
            "max_batch_body_bytes": node.config.max_batch_body_bytes,
            "max_record_bytes": node.config.max_record_bytes,
        },
        "health_cards": {
            "issuer": node.health_cards.iss(),
            "jwks": "/.well-known/jwks.json",
        },
        "auth": {
            "scheme": "RFC 9421 HTTP Message Signatures, Ed25519, keyid = did:key (docs/auth.md)",
            "window_seconds": node.config.auth_window.as_secs(),
        },
    }))
}

/// `GET /v1/health`.
pub async fn health(State(node): State<Arc<Node>>) -> Json<Value> {
    let tree_size = node.sequencer.latest_checkpoint().size;
    // A network node that stopped appending still answers reads, but an
    // operator's health check must see it.
    if let crate::ordering::Ordering::Bft(bft) = &node.sequencer {
        if let Some(why) = bft.stopped() {
            return Json(json!({"status": "stopped", "tree_size": tree_size, "why": why}));
        }
    }
    Json(json!({"status": "ok", "tree_size": tree_size}))
}

/// `GET /openapi.json`.
pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

/// `GET /.well-known/jwks.json`: the public key set of the node's SMART
/// Health Card issuer, which verifiers fetch from `<iss>/.well-known/jwks.json`.
/// Public, so cacheable by anyone and readable from any origin (the spec
/// asks for CORS: browser-based verifiers fetch it).
pub async fn jwks(State(node): State<Arc<Node>>) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        Json(node.health_cards.jwks().to_json()),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    /// The two submission routes and what their descriptions say, before
    /// the generated list of types.
    const SUBMISSION_ROUTES: [(&str, &str); 2] = [
        (
            "/v1/transactions",
            "The body is one transaction in RFC 8785 canonical form. Answers after the batch holding it is durable.",
        ),
        (
            "/v1/transactions/batch",
            "A JSON array of canonical transactions, accepted or refused as a whole; a refusal names the position of the bad transaction.",
        ),
    ];

    /// A submission route's description: its own words, then the types the
    /// node accepts by domain, generated from the registry, so that no list
    /// of types is kept by hand.
    fn submission_description(intro: &str) -> String {
        let mut domains: Vec<(&str, Vec<&str>)> = Vec::new();
        for entry in crate::state::registry::Registry::global().types() {
            match domains.iter_mut().find(|(d, _)| *d == entry.domain) {
                Some((_, types)) => types.push(entry.tx_type),
                None => domains.push((entry.domain, vec![entry.tx_type])),
            }
        }
        let listed: Vec<String> = domains
            .iter()
            .map(|(domain, types)| format!("{domain}: {}", types.join(", ")))
            .collect();
        format!(
            "{intro} The node accepts attest and, by domain (generated from the registry): {}. \
             How each type is signed and what it does: docs/transaction-types.md; its body's JSON Schema: \
             components/x-transaction-bodies. genesis is leaf 0 only; record, access and device.batch are \
             signed by a key of the custodian set only (custodian_only). The state refuses a transaction \
             it does not allow with a stable code (403 not entitled, 404 unknown, 409 conflict, 422 invalid \
             content) and no change.",
            listed.join("; ")
        )
    }

    /// The descriptions of the two submission routes name every type the
    /// node accepts, in a list generated from the registry.
    #[test]
    fn openapi_names_every_transaction_type() {
        let doc: Value = serde_json::from_str(super::OPENAPI).unwrap();
        for (path, intro) in SUBMISSION_ROUTES {
            let description = doc["paths"][path]["post"]["description"].as_str().unwrap();
            let words: Vec<&str> = description
                .split(|c: char| c.is_whitespace() || c == ',' || c == ';' || c == ':')
                .map(|word| word.trim_end_matches('.'))
                .collect();
            let missing: Vec<&str> = crate::state::txs::registry()
                .types()
                .into_iter()
                .filter(|t| !words.contains(t))
                .collect();
            assert!(missing.is_empty(), "POST {path} does not name {missing:?}");
            assert_eq!(
                description,
                submission_description(intro),
                "POST {path}'s description is stale: run HYGEIA_BLESS=1 cargo test -p hygeia-node --lib openapi_body_schemas"
            );
        }
    }

    /// The body schemas in `components` are those the registry derives
    /// from the Rust types: every named schema, and by type a reference
    /// to its body's (`x-transaction-bodies`); and the submission routes'
    /// lists of types. `HYGEIA_BLESS=1` writes them into openapi.json.
    #[test]
    fn openapi_body_schemas_are_generated_from_the_registry() {
        let (definitions, by_type) = crate::state::registry::Registry::global().body_schemas();
        let mut doc: Value = serde_json::from_str(super::OPENAPI).unwrap();
        let stale_routes = SUBMISSION_ROUTES.iter().any(|(path, intro)| {
            doc["paths"][path]["post"]["description"].as_str()
                != Some(submission_description(intro).as_str())
        });
        let components = &mut doc["components"];
        let stale = stale_routes
            || definitions
                .iter()
                .any(|(name, schema)| components["schemas"].get(name) != Some(schema))
            || components.get("x-transaction-bodies") != Some(&Value::Object(by_type.clone()));
        if stale && std::env::var_os("HYGEIA_BLESS").is_some() {
            for (path, intro) in SUBMISSION_ROUTES {
                doc["paths"][path]["post"]["description"] =
                    Value::String(submission_description(intro));
            }
            let components = &mut doc["components"];
            let schemas = components["schemas"].as_object_mut().unwrap();
            for (name, schema) in definitions {
                schemas.insert(name, schema);
            }
            components["x-transaction-bodies"] = Value::Object(by_type);
            let mut text = serde_json::to_string_pretty(&doc).unwrap();
            text.push('\n');
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/api/openapi.json");
            std::fs::write(path, text).unwrap();
            return;
        }
        assert!(
            !stale,
            "openapi.json's transaction body schemas are stale: run HYGEIA_BLESS=1 cargo test -p hygeia-node --lib openapi_body_schemas"
        );
    }
}
