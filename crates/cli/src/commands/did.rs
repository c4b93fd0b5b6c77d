//! `hygeia did resolve`, and the resolution every credential command
//! shares: a did:key is read offline from the DID itself; an
//! organization's did:web is fetched from a node, which serves it from the
//! ledger (`GET /v1/dids/{did}`), and checked to belong to that DID.

use std::cell::RefCell;
use std::collections::HashMap;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use hygeia_cli::licensing::{did_key_issuer_key, document_issuer_key};
use hygeia_credentials::jws::{Header, VerifyingKey};
use hygeia_identity::{DidDocument, DidWeb, PublicKey, Relationship};
use serde_json::Value;

use crate::client::json_or_refusal;

#[derive(Subcommand)]
pub enum DidCommand {
    /// Resolve a DID through a node
    ///
    /// A did:key (computed), or the did:web
    /// of an organization registered on the node's network, with its
    /// current keys and metadata (the ledger index of its last key change).
    Resolve {
        /// The node to ask.
        #[arg(long)]
        node: String,
        /// The DID, e.g. did:web:hospital.example:orgs:acme.
        did: String,
    },
}

pub fn run(command: DidCommand) -> anyhow::Result<ExitCode> {
    match command {
        DidCommand::Resolve { node, did } => {
            let answer = get_json(&node, &format!("/v1/dids/{}", url_component(&did)))?;
            println!("{}", serde_json::to_string_pretty(&answer)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// An unsigned `GET {node}{path}`: the JSON of a success, or the node's
/// refusal (with its code) as an error.
pub fn get_json(node: &str, path: &str) -> anyhow::Result<Value> {
    let url = format!("{}{path}", node.trim_end_matches('/'));
    let response = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()?
        .get(&url)
        .send()
        .with_context(|| format!("cannot reach {url}"))?;
    json_or_refusal(response).with_context(|| format!("GET {url}"))
}

/// A DID or URL as one path segment or query value: `%` and anything
/// outside the unreserved characters and `:` escaped.
pub fn url_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~:".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Fetches the DID document of an organization's did:web from a node and
/// checks that it is that DID's document (its id, and every method under
/// it).
pub fn fetch_did_web(node: &str, did: &str) -> anyhow::Result<DidDocument> {
    let did_web: DidWeb = did
        .parse()
        .map_err(|e: hygeia_identity::DidWebError| anyhow::anyhow!("{did}: {e}"))?;
    let answer = get_json(node, &format!("/v1/dids/{}", url_component(did)))?;
    let document: DidDocument = serde_json::from_value(answer["didDocument"].clone())
        .with_context(|| format!("the node's document for {did} is not a DID document"))?;
    did_web
        .check_document(&document)
        .map_err(|e| anyhow::anyhow!("the node's document for {did}: {e}"))?;
    Ok(document)
}

/// Finds issuers' keys: did:key offline, did:web through a node (when one
/// is given). Documents are fetched once per DID; the last failure to
/// fetch is kept to explain an unknown issuer.
pub struct Resolver {
    node: Option<String>,
    documents: RefCell<HashMap<String, Option<DidDocument>>>,
    pub failure: RefCell<Option<String>>,
}

impl Resolver {
    pub fn new(node: Option<&str>) -> Self {
        Resolver {
            node: node.map(str::to_owned),
            documents: RefCell::new(HashMap::new()),
            failure: RefCell::new(None),
        }
    }

    fn document(&self, did: &str) -> Option<DidDocument> {
        if let Some(known) = self.documents.borrow().get(did) {
            return known.clone();
        }
        let fetched = match &self.node {
            None => {
                self.failure.replace(Some(format!(
                    "{did} is resolved through a node: pass --node"
                )));
                None
            }
            Some(node) => match fetch_did_web(node, did) {
                Ok(document) => Some(document),
                Err(e) => {
                    self.failure.replace(Some(format!("{e:#}")));
                    None
                }
            },
        };
        self.documents
            .borrow_mut()
            .insert(did.to_owned(), fetched.clone());
        fetched
    }

    /// The key that signs an SD-JWT (or JWS) of `issuer` with `header`.
    pub fn issuer_key(&self, issuer: &str, header: &Header) -> Option<VerifyingKey> {
        if issuer.starts_with("did:key:") {
            return did_key_issuer_key(issuer, header);
        }
        if !issuer.starts_with("did:web:") {
            self.failure
                .replace(Some(format!("{issuer} is neither a did:key nor a did:web")));
            return None;
        }
        let document = self.document(issuer)?;
        let key = document_issuer_key(&document, issuer, header);
        if key.is_none() {
            self.failure.replace(Some(format!(
                "{issuer} lists no assertion key {} now",
                header.kid().unwrap_or("(no kid)")
            )));
        }
        key
    }

    /// The key of a Data Integrity verification method (`did:…#…`),
    /// authorized for `assertionMethod`.
    pub fn method_key(&self, method: &str) -> Option<PublicKey> {
        if method.starts_with("did:key:") {
            return hygeia_credentials::data_integrity::resolve_did_key_method(method);
        }
        let (did, _) = method.split_once('#')?;
        if !did.starts_with("did:web:") {
            return None;
        }
        let document = self.document(did)?;
        let key = document
            .ed25519_key(method, Relationship::AssertionMethod)
            .ok();
        if key.is_none() {
            self.failure
                .replace(Some(format!("{did} lists no assertion key {method} now")));
        }
        key
    }
}

#[cfg(test)]
mod tests {
    use super::url_component;

    #[test]
    fn dids_stay_readable_in_paths() {
        assert_eq!(
            url_component("did:web:hospital.example:orgs:acme"),
            "did:web:hospital.example:orgs:acme"
        );
        assert_eq!(
            url_component("did:web:host%3A8443"),
            "did:web:host%253A8443"
        );
        assert_eq!(url_component("a/b?c"), "a%2Fb%3Fc");
    }
}
