//! `did:web` identifiers (W3C CCG did:web method) for organizations:
//! `did:web:<host>[%3A<port>](:<segment>)*`, whose DID document is served at
//! `https://<host>[:<port>]/<segments…>/did.json`, or at
//! `/.well-known/did.json` when there are no segments.
//!
//! Parsing is strict so that one document has exactly one DID text: hosts
//! must be lowercase (DNS ignores case, so `Example.com` would be a second
//! name for the same document), the port colon is written `%3A`, the default
//! port 443 is left out, and path segments are plain
//! (`[A-Za-z0-9._-]`, no percent-escapes, no leading dot), which also rules
//! out path traversal and aliases of `/.well-known/`.

use std::fmt;
use std::str::FromStr;

use crate::did_document::{
    DidDocument, MethodReference, MethodType, Service, VerificationMethod, DID_CONTEXT_V1,
    MULTIKEY_CONTEXT_V1,
};
use crate::keys::PublicKey;
use crate::multicodec::{self, ED25519_PUB};

const PREFIX: &str = "did:web:";
const PORT_SEPARATOR: &str = "%3A";
const DOCUMENT_NAME: &str = "did.json";
const WELL_KNOWN: &str = "/.well-known";
/// Longest DID accepted; real organization DIDs are a few dozen characters.
const MAX_DID_LEN: usize = 512;
const MAX_HOST_LEN: usize = 253;
const MAX_LABEL_LEN: usize = 63;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DidWebError {
    #[error("not a did:web identifier (it must start with \"did:web:\")")]
    NotDidWeb,
    #[error("the did:web identifier is too long")]
    TooLong,
    #[error("the host of the did:web identifier is not a valid domain name: {0}")]
    BadHost(&'static str),
    #[error("the host of a did:web identifier must be lowercase")]
    UppercaseHost,
    #[error("a did:web identifier must name a domain, not an IP address")]
    IpAddress,
    #[error("the port of the did:web identifier is not valid: {0}")]
    BadPort(&'static str),
    #[error("the did:web identifier has an empty path segment")]
    EmptySegment,
    #[error("a path segment of the did:web identifier may only hold letters, digits, '.', '-' and '_', and may not start with '.'")]
    BadSegment,
    #[error("a path segment of the did:web identifier is '.' or '..'")]
    PathTraversal,
    #[error("not the location of a did:web document (it must end in /did.json)")]
    NotDocumentPath,
    #[error("a did:web document needs at least one key")]
    NoKeys,
    #[error("the fragment '{0}' is not a valid verification method or service id")]
    BadFragment(String),
    #[error("the id '{0}' appears twice in the DID document")]
    DuplicateId(String),
    #[error("the DID document does not belong to this did:web identifier: {0}")]
    DocumentMismatch(String),
}

impl DidWebError {
    /// A stable code naming the failure, for APIs and logs.
    pub fn code(&self) -> &'static str {
        match self {
            DidWebError::NotDidWeb => "not-did-web",
            DidWebError::TooLong => "did-too-long",
            DidWebError::BadHost(_) => "did-web-bad-host",
            DidWebError::UppercaseHost => "did-web-uppercase-host",
            DidWebError::IpAddress => "did-web-ip-address",
            DidWebError::BadPort(_) => "did-web-bad-port",
            DidWebError::EmptySegment => "did-web-empty-segment",
            DidWebError::BadSegment => "did-web-bad-segment",
            DidWebError::PathTraversal => "did-web-path-traversal",
            DidWebError::NotDocumentPath => "did-web-not-document-path",
            DidWebError::NoKeys => "did-web-no-keys",
            DidWebError::BadFragment(_) => "did-web-bad-fragment",
            DidWebError::DuplicateId(_) => "did-web-duplicate-id",
            DidWebError::DocumentMismatch(_) => "did-web-document-mismatch",
        }
    }
}

/// A parsed, canonical `did:web` identifier.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DidWeb {
    text: String,
    host: String,
    port: Option<u16>,
    path: Vec<String>,
}

impl DidWeb {
    /// Builds the DID of a document at `https://host[:port]/path…/did.json`.
    pub fn new(host: &str, port: Option<u16>, path: &[&str]) -> Result<Self, DidWebError> {
        check_host(host)?;
        if port == Some(443) {
            return Err(DidWebError::BadPort("443 is the default and is left out"));
        }
        if port == Some(0) {
            return Err(DidWebError::BadPort("port 0"));
        }
        for segment in path {
            check_segment(segment)?;
        }
        let mut text = format!("{PREFIX}{host}");
        if let Some(port) = port {
            text.push_str(&format!("{PORT_SEPARATOR}{port}"));
        }
        for segment in path {
            text.push(':');
            text.push_str(segment);
        }
        if text.len() > MAX_DID_LEN {
            return Err(DidWebError::TooLong);
        }
        Ok(DidWeb {
            text,
            host: host.to_string(),
            port,
            path: path.iter().map(|s| s.to_string()).collect(),
        })
    }

    /// The DID served at `document_path` (`/.well-known/did.json` or
    /// `/a/b/did.json`) on `host[:port]`, as a server answering requests
    /// for documents would name it. The host is compared case-insensitively,
    /// as HTTP does.
    pub fn from_document_location(
        host: &str,
        port: Option<u16>,
        document_path: &str,
    ) -> Result<Self, DidWebError> {
        let host = host.to_ascii_lowercase();
        let port = port.filter(|p| *p != 443);
        let dir = document_path
            .strip_suffix(DOCUMENT_NAME)
            .and_then(|rest| rest.strip_suffix('/'))
            .ok_or(DidWebError::NotDocumentPath)?;
        if dir == WELL_KNOWN {
            return DidWeb::new(&host, port, &[]);
        }
        let segments = dir.strip_prefix('/').ok_or(DidWebError::NotDocumentPath)?;
        if segments.is_empty() {
            return Err(DidWebError::NotDocumentPath);
        }
        let segments: Vec<&str> = segments.split('/').collect();
        DidWeb::new(&host, port, &segments)
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> Option<u16> {
        self.port
    }

    pub fn path_segments(&self) -> &[String] {
        &self.path
    }

    /// The HTTP path of the DID document: `/.well-known/did.json`, or
    /// `/orgs/acme/did.json` for `did:web:example.com:orgs:acme`.
    pub fn document_path(&self) -> String {
        if self.path.is_empty() {
            format!("{WELL_KNOWN}/{DOCUMENT_NAME}")
        } else {
            format!("/{}/{DOCUMENT_NAME}", self.path.join("/"))
        }
    }

    /// The HTTPS URL of the DID document.
    pub fn document_url(&self) -> String {
        match self.port {
            Some(port) => format!("https://{}:{port}{}", self.host, self.document_path()),
            None => format!("https://{}{}", self.host, self.document_path()),
        }
    }

    /// A builder for this DID's document.
    pub fn document_builder(&self) -> DidWebDocumentBuilder {
        DidWebDocumentBuilder {
            did: self.clone(),
            keys: Vec::new(),
            services: Vec::new(),
        }
    }

    /// This DID's document listing `keys` as `#key-1`, `#key-2`… for
    /// assertion and authentication.
    pub fn document(&self, keys: &[PublicKey]) -> Result<DidDocument, DidWebError> {
        keys.iter()
            .fold(self.document_builder(), |b, key| b.key(*key))
            .build()
    }

    /// Checks that a fetched document belongs to this DID: its `id` is the
    /// DID, and every method, reference and service id is an absolute DID
    /// URL under it (the did:web method requires absolute URLs, which keeps
    /// one domain from smuggling in another's keys).
    pub fn check_document(&self, document: &DidDocument) -> Result<(), DidWebError> {
        if document.id != self.text {
            return Err(DidWebError::DocumentMismatch(format!(
                "its id is {}",
                document.id
            )));
        }
        let own = format!("{}#", self.text);
        let relationships = [
            &document.authentication,
            &document.assertion_method,
            &document.key_agreement,
            &document.capability_invocation,
            &document.capability_delegation,
        ];
        let methods = document.verification_method.iter().chain(
            relationships
                .iter()
                .copied()
                .flatten()
                .filter_map(|entry| match entry {
                    MethodReference::Embedded(method) => Some(method),
                    MethodReference::Reference(_) => None,
                }),
        );
        let mut ids: Vec<&str> = Vec::new();
        for method in methods {
            if method.controller != self.text {
                return Err(DidWebError::DocumentMismatch(format!(
                    "{} is controlled by {}",
                    method.id, method.controller
                )));
            }
            ids.push(&method.id);
        }
        for entry in relationships.into_iter().flatten() {
            if let MethodReference::Reference(id) = entry {
                ids.push(id);
            }
        }
        ids.extend(document.service.iter().map(|s| s.id.as_str()));
        match ids.into_iter().find(|id| !id.starts_with(&own)) {
            Some(id) => Err(DidWebError::DocumentMismatch(format!(
                "{id} is not an absolute DID URL under {}",
                self.text
            ))),
            None => Ok(()),
        }
    }
}

impl FromStr for DidWeb {
    type Err = DidWebError;

    fn from_str(s: &str) -> Result<Self, DidWebError> {
        if s.len() > MAX_DID_LEN {
            return Err(DidWebError::TooLong);
        }
        let rest = s.strip_prefix(PREFIX).ok_or(DidWebError::NotDidWeb)?;
        let mut parts = rest.split(':');
        let authority = parts.next().unwrap_or_default();
        let (host, port) = match authority.split_once('%') {
            None => (authority, None),
            Some((host, encoded_port)) => {
                let digits = encoded_port
                    .strip_prefix("3A")
                    .ok_or(DidWebError::BadPort("the port colon must be written %3A"))?;
                (host, Some(parse_port(digits)?))
            }
        };
        let path: Vec<&str> = parts.collect();
        let did = DidWeb::new(host, port, &path)?;
        // `new` builds the canonical text; anything else was not canonical.
        if did.text != s {
            return Err(DidWebError::BadPort("the port is not written canonically"));
        }
        Ok(did)
    }
}

impl fmt::Display for DidWeb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for DidWeb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DidWeb({})", self.text)
    }
}

fn parse_port(digits: &str) -> Result<u16, DidWebError> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DidWebError::BadPort("not a decimal number"));
    }
    if digits.starts_with('0') {
        return Err(DidWebError::BadPort("leading zero"));
    }
    digits
        .parse()
        .map_err(|_| DidWebError::BadPort("larger than 65535"))
}

fn check_host(host: &str) -> Result<(), DidWebError> {
    if host.is_empty() {
        return Err(DidWebError::BadHost("empty"));
    }
    if host.len() > MAX_HOST_LEN {
        return Err(DidWebError::BadHost("longer than 253 characters"));
    }
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(DidWebError::UppercaseHost);
    }
    let labels: Vec<&str> = host.split('.').collect();
    for label in &labels {
        if label.is_empty() {
            return Err(DidWebError::BadHost("empty label"));
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(DidWebError::BadHost("a label is longer than 63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(DidWebError::BadHost(
                "only letters, digits, '-' and '.' are allowed (use punycode)",
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(DidWebError::BadHost("a label starts or ends with '-'"));
        }
    }
    // An all-digit last label is never a top-level domain; it is how IPv4
    // addresses (and their shorthand forms) look.
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(DidWebError::IpAddress);
    }
    if labels.len() < 2 && host != "localhost" {
        return Err(DidWebError::BadHost("not a fully qualified domain name"));
    }
    Ok(())
}

fn check_segment(segment: &str) -> Result<(), DidWebError> {
    match segment {
        "" => Err(DidWebError::EmptySegment),
        "." | ".." => Err(DidWebError::PathTraversal),
        _ if segment.starts_with('.') || !segment.bytes().all(is_id_char) => {
            Err(DidWebError::BadSegment)
        }
        _ => Ok(()),
    }
}

fn is_id_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')
}

/// Builds a did:web DID document: Ed25519 keys as `Multikey` methods,
/// listed for `assertionMethod` and `authentication`, and services.
#[derive(Debug, Clone)]
pub struct DidWebDocumentBuilder {
    did: DidWeb,
    keys: Vec<(String, PublicKey)>,
    services: Vec<(String, String, serde_json::Value)>,
}

impl DidWebDocumentBuilder {
    /// Adds a key with the next `key-N` fragment (N counts keys from 1).
    pub fn key(self, key: PublicKey) -> Self {
        let fragment = format!("key-{}", self.keys.len() + 1);
        self.key_with_id(&fragment, key)
    }

    /// Adds a key with the caller's fragment (without the `#`).
    pub fn key_with_id(mut self, fragment: &str, key: PublicKey) -> Self {
        self.keys.push((fragment.to_string(), key));
        self
    }

    /// Adds a service (`fragment` without the `#`).
    pub fn service(
        mut self,
        fragment: &str,
        service_type: &str,
        endpoint: serde_json::Value,
    ) -> Self {
        self.services
            .push((fragment.to_string(), service_type.to_string(), endpoint));
        self
    }

    pub fn build(self) -> Result<DidDocument, DidWebError> {
        if self.keys.is_empty() {
            return Err(DidWebError::NoKeys);
        }
        let did = self.did.as_str();
        let mut seen: Vec<&str> = Vec::new();
        let fragments = self
            .keys
            .iter()
            .map(|(f, _)| f)
            .chain(self.services.iter().map(|(f, _, _)| f));
        for fragment in fragments {
            if fragment.is_empty() || !fragment.bytes().all(is_id_char) {
                return Err(DidWebError::BadFragment(fragment.clone()));
            }
            if seen.contains(&fragment.as_str()) {
                return Err(DidWebError::DuplicateId(format!("{did}#{fragment}")));
            }
            seen.push(fragment);
        }
        let methods: Vec<VerificationMethod> = self
            .keys
            .iter()
            .map(|(fragment, key)| VerificationMethod {
                id: format!("{did}#{fragment}"),
                method_type: MethodType::Multikey,
                controller: did.to_string(),
                public_key_multibase: Some(multicodec::encode_key(ED25519_PUB, &key.to_bytes())),
                public_key_base58: None,
                public_key_jwk: None,
            })
            .collect();
        let references: Vec<MethodReference> = methods
            .iter()
            .map(|m| MethodReference::Reference(m.id.clone()))
            .collect();
        let service = self
            .services
            .into_iter()
            .map(|(fragment, service_type, endpoint)| Service {
                id: format!("{did}#{fragment}"),
                service_type,
                service_endpoint: endpoint,
            })
            .collect();
        Ok(DidDocument {
            context: vec![DID_CONTEXT_V1.to_string(), MULTIKEY_CONTEXT_V1.to_string()],
            id: did.to_string(),
            verification_method: methods,
            assertion_method: references.clone(),
            authentication: references,
            capability_invocation: vec![],
            capability_delegation: vec![],
            key_agreement: vec![],
            service,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::did_document::Relationship;
    use crate::keys::Keypair;

    #[test]
    fn maps_dids_to_document_urls() {
        let cases = [
            (
                "did:web:example.com",
                "https://example.com/.well-known/did.json",
            ),
            (
                "did:web:example.com%3A8443:orgs:acme",
                "https://example.com:8443/orgs/acme/did.json",
            ),
            (
                "did:web:w3c-ccg.github.io:user:alice",
                "https://w3c-ccg.github.io/user/alice/did.json",
            ),
            (
                "did:web:localhost%3A3000",
                "https://localhost:3000/.well-known/did.json",
            ),
            (
                "did:web:xn--bcher-kva.example",
                "https://xn--bcher-kva.example/.well-known/did.json",
            ),
        ];
        for (text, url) in cases {
            let did: DidWeb = text.parse().unwrap();
            assert_eq!(did.document_url(), url);
            assert_eq!(did.to_string(), text);
        }
        let did: DidWeb = "did:web:example.com%3A8443:orgs:acme".parse().unwrap();
        assert_eq!(did.host(), "example.com");
        assert_eq!(did.port(), Some(8443));
        assert_eq!(did.path_segments(), ["orgs", "acme"]);
        assert_eq!(did.document_path(), "/orgs/acme/did.json");
        let plain: DidWeb = "did:web:example.com".parse().unwrap();
        assert_eq!(plain.document_path(), "/.well-known/did.json");
    }

    #[test]
    fn refuses_bad_dids_with_codes() {
        let long_label = format!("did:web:{}.example", "a".repeat(64));
        let long = format!("did:web:example.com:{}", "a".repeat(600));
        let cases: Vec<(&str, &str)> = vec![
            ("did:key:z6Mk", "not-did-web"),
            ("did:WEB:example.com", "not-did-web"),
            ("did:web:", "did-web-bad-host"),
            ("did:web:Example.com", "did-web-uppercase-host"),
            ("did:web:EXAMPLE.COM", "did-web-uppercase-host"),
            ("did:web:192.168.0.1", "did-web-ip-address"),
            ("did:web:127.1", "did-web-ip-address"),
            ("did:web:[::1]", "did-web-bad-host"),
            ("did:web:example", "did-web-bad-host"),
            ("did:web:example..com", "did-web-bad-host"),
            ("did:web:example.com.", "did-web-bad-host"),
            ("did:web:-example.com", "did-web-bad-host"),
            ("did:web:exa_mple.com", "did-web-bad-host"),
            ("did:web:ex%41mple.com", "did-web-bad-port"),
            (&long_label, "did-web-bad-host"),
            ("did:web:example.com%3a8443", "did-web-bad-port"),
            ("did:web:example.com%3A", "did-web-bad-port"),
            ("did:web:example.com%3A0", "did-web-bad-port"),
            ("did:web:example.com%3A08443", "did-web-bad-port"),
            ("did:web:example.com%3A65536", "did-web-bad-port"),
            ("did:web:example.com%3A443", "did-web-bad-port"),
            ("did:web:example.com%3A+80", "did-web-bad-port"),
            ("did:web:example.com:", "did-web-empty-segment"),
            ("did:web:example.com::acme", "did-web-empty-segment"),
            ("did:web:example.com:..", "did-web-path-traversal"),
            ("did:web:example.com:orgs:.", "did-web-path-traversal"),
            ("did:web:example.com:.well-known", "did-web-bad-segment"),
            ("did:web:example.com:a%2Fb", "did-web-bad-segment"),
            ("did:web:example.com:a%2E%2E", "did-web-bad-segment"),
            ("did:web:example.com:a/b", "did-web-bad-segment"),
            ("did:web:example.com:a b", "did-web-bad-segment"),
            ("did:web:example.com#key-1", "did-web-bad-host"),
            ("did:web:example.com:acme#key-1", "did-web-bad-segment"),
            ("did:web:example.com:acme?x=1", "did-web-bad-segment"),
            (&long, "did-too-long"),
        ];
        for (text, code) in cases {
            let err = text.parse::<DidWeb>().unwrap_err();
            assert_eq!(err.code(), code, "{text}: {err}");
        }
        // Case matters in paths (they are URL paths), not in hosts.
        assert!("did:web:example.com:Orgs:ACME".parse::<DidWeb>().is_ok());
    }

    #[test]
    fn servers_map_document_locations_back_to_dids() {
        let did = DidWeb::from_document_location("Example.COM", Some(8443), "/orgs/acme/did.json")
            .unwrap();
        assert_eq!(did.as_str(), "did:web:example.com%3A8443:orgs:acme");
        let did = DidWeb::from_document_location("example.com", Some(443), "/.well-known/did.json")
            .unwrap();
        assert_eq!(did.as_str(), "did:web:example.com");
        for path in [
            "/did.json",
            "did.json",
            "/orgs/acme/other.json",
            "/orgs/../did.json",
            "//did.json",
            "/orgs//acme/did.json",
            "/.well-known/x/did.json",
        ] {
            assert!(
                DidWeb::from_document_location("example.com", None, path).is_err(),
                "{path}"
            );
        }
        for text in [
            "did:web:example.com",
            "did:web:example.com%3A8443:orgs:acme",
        ] {
            let did: DidWeb = text.parse().unwrap();
            let back = DidWeb::from_document_location(did.host(), did.port(), &did.document_path());
            assert_eq!(back, Ok(did));
        }
    }

    #[test]
    fn builds_documents_whose_keys_verify() {
        let did: DidWeb = "did:web:clinic.example".parse().unwrap();
        let a = Keypair::from_seed(&[1; 32]).public_key();
        let b = Keypair::from_seed(&[2; 32]).public_key();
        let doc = did.document(&[a, b]).unwrap();
        assert_eq!(
            doc.verification_method[1].id,
            "did:web:clinic.example#key-2"
        );
        for rel in [Relationship::AssertionMethod, Relationship::Authentication] {
            assert_eq!(doc.ed25519_key("#key-1", rel), Ok(a));
            assert_eq!(doc.ed25519_key("did:web:clinic.example#key-2", rel), Ok(b));
        }
        assert!(doc.key_agreement.is_empty());
        assert_eq!(did.check_document(&doc), Ok(()));

        let doc = did
            .document_builder()
            .key_with_id("2025-06", a)
            .service(
                "status",
                "BitstringStatusList",
                serde_json::json!("https://clinic.example/status/1"),
            )
            .build()
            .unwrap();
        assert_eq!(
            doc.verification_method[0].id,
            "did:web:clinic.example#2025-06"
        );
        assert_eq!(doc.service[0].id, "did:web:clinic.example#status");
        let json = serde_json::to_value(&doc).unwrap();
        assert_eq!(
            json["service"][0]["serviceEndpoint"],
            "https://clinic.example/status/1"
        );
        assert_eq!(json["verificationMethod"][0]["type"], "Multikey");
        assert_eq!(did.check_document(&doc), Ok(()));
    }

    #[test]
    fn refuses_bad_document_requests() {
        let did: DidWeb = "did:web:clinic.example".parse().unwrap();
        let key = Keypair::from_seed(&[1; 32]).public_key();
        assert_eq!(did.document(&[]).unwrap_err().code(), "did-web-no-keys");
        let dup = did
            .document_builder()
            .key(key)
            .key_with_id("key-1", key)
            .build();
        assert_eq!(dup.unwrap_err().code(), "did-web-duplicate-id");
        let dup = did
            .document_builder()
            .key(key)
            .service("key-1", "X", serde_json::json!("https://x.example"))
            .build();
        assert_eq!(dup.unwrap_err().code(), "did-web-duplicate-id");
        for fragment in ["", "#a", "a b", "a/b"] {
            let bad = did.document_builder().key_with_id(fragment, key).build();
            assert_eq!(
                bad.unwrap_err().code(),
                "did-web-bad-fragment",
                "{fragment}"
            );
        }
    }

    #[test]
    fn refuses_documents_of_other_dids() {
        let did: DidWeb = "did:web:clinic.example".parse().unwrap();
        let other: DidWeb = "did:web:evil.example".parse().unwrap();
        let key = Keypair::from_seed(&[1; 32]).public_key();
        let doc = other.document(&[key]).unwrap();
        assert_eq!(
            did.check_document(&doc).unwrap_err().code(),
            "did-web-document-mismatch"
        );

        let mut relative = did.document(&[key]).unwrap();
        relative.assertion_method = vec![MethodReference::Reference("#key-1".into())];
        assert_eq!(
            did.check_document(&relative).unwrap_err().code(),
            "did-web-document-mismatch"
        );
        // A key of another domain listed in this document.
        let mut smuggled = did.document(&[key]).unwrap();
        smuggled.verification_method[0].id = "did:web:evil.example#key-1".into();
        assert_eq!(
            did.check_document(&smuggled).unwrap_err().code(),
            "did-web-document-mismatch"
        );
        let mut controlled = did.document(&[key]).unwrap();
        controlled.verification_method[0].controller = "did:web:evil.example".into();
        assert_eq!(
            did.check_document(&controlled).unwrap_err().code(),
            "did-web-document-mismatch"
        );
    }

    proptest::proptest! {
        #[test]
        fn built_dids_parse_back(
            host in "[a-z0-9]{1,10}(\\.[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?)?\\.[a-z]{2,6}",
            port in proptest::option::of(1u16..),
            path in proptest::collection::vec("[A-Za-z0-9_-][A-Za-z0-9._-]{0,8}", 0..4),
        ) {
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            if let Ok(did) = DidWeb::new(&host, port, &path) {
                let parsed: DidWeb = did.as_str().parse().unwrap();
                proptest::prop_assert_eq!(&parsed, &did);
                let back = DidWeb::from_document_location(did.host(), did.port(), &did.document_path());
                proptest::prop_assert_eq!(back, Ok(did));
            } else {
                proptest::prop_assert_eq!(port, Some(443));
            }
        }

        #[test]
        fn arbitrary_text_never_panics(text in "did:web:[a-zA-Z0-9.%:_/-]{0,40}") {
            if let Ok(did) = text.parse::<DidWeb>() {
                proptest::prop_assert_eq!(did.as_str(), text.as_str());
                proptest::prop_assert!(did.document_url().starts_with("https://"));
            }
        }
    }
}
