//! W3C Data Integrity proofs with the `eddsa-jcs-2022` cryptosuite
//! (Data Integrity EdDSA Cryptosuites v1.0, §3.3): the document and the
//! proof configuration are canonicalized with JCS (RFC 8785), each hashed
//! with SHA-256, and `SHA-256(config) ‖ SHA-256(document)` is signed with
//! Ed25519; the signature travels as a multibase base58btc `proofValue`.
//!
//! Only single proofs are handled (no proof sets or chains).

use hygeia_identity::{Did, Keypair, PublicKey, Relationship, Signature};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The proof `type` of every Data Integrity proof.
pub const PROOF_TYPE: &str = "DataIntegrityProof";
/// The one cryptosuite implemented here.
pub const CRYPTOSUITE: &str = "eddsa-jcs-2022";
/// Multibase prefix of base58btc, the encoding of `proofValue`.
const BASE58BTC: char = 'z';
/// A `proofValue` holds 64 bytes, at most 88 base58 digits; anything much
/// longer is refused before the (quadratic) decoder sees it.
const MAX_PROOF_VALUE_LEN: usize = 100;

/// Why a proof was made: the verification relationship the key must have
/// in its controller's DID document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProofPurpose {
    AssertionMethod,
    Authentication,
    CapabilityInvocation,
    CapabilityDelegation,
}

impl ProofPurpose {
    pub fn as_str(self) -> &'static str {
        self.relationship().as_str()
    }

    /// The DID document relationship that must list the signing key.
    pub fn relationship(self) -> Relationship {
        match self {
            ProofPurpose::AssertionMethod => Relationship::AssertionMethod,
            ProofPurpose::Authentication => Relationship::Authentication,
            ProofPurpose::CapabilityInvocation => Relationship::CapabilityInvocation,
            ProofPurpose::CapabilityDelegation => Relationship::CapabilityDelegation,
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            ProofPurpose::AssertionMethod,
            ProofPurpose::Authentication,
            ProofPurpose::CapabilityInvocation,
            ProofPurpose::CapabilityDelegation,
        ]
        .into_iter()
        .find(|p| p.as_str() == text)
    }
}

/// The options of a new proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofOptions {
    /// DID URL of the signing key, e.g. `did:key:z6Mk…#z6Mk…`.
    pub verification_method: String,
    pub proof_purpose: ProofPurpose,
    /// Written as RFC 3339 / XML Schema `dateTimeStamp` (whole seconds
    /// print without a fraction).
    pub created: OffsetDateTime,
    /// Set by a verifier to stop replays of an authentication proof.
    pub challenge: Option<String>,
    /// The security domain the proof is meant for.
    pub domain: Option<String>,
}

impl ProofOptions {
    /// Options for an `assertionMethod` proof (what issuers make).
    pub fn assertion(verification_method: impl Into<String>, created: OffsetDateTime) -> Self {
        ProofOptions {
            verification_method: verification_method.into(),
            proof_purpose: ProofPurpose::AssertionMethod,
            created,
            challenge: None,
            domain: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataIntegrityError {
    #[error("the document is not a JSON object")]
    NotAnObject,
    #[error("the document already carries a proof")]
    AlreadySecured,
    #[error("the document carries no proof")]
    MissingProof,
    #[error("the document carries a set of proofs; only single proofs are supported")]
    ProofSetUnsupported,
    #[error("the proof is malformed: {0}")]
    MalformedProof(&'static str),
    #[error("the proof type {0:?} is not supported (only DataIntegrityProof)")]
    UnsupportedProofType(String),
    #[error("the cryptosuite {0:?} is not supported (only eddsa-jcs-2022)")]
    UnsupportedCryptosuite(String),
    #[error("the proofValue is not a base58btc multibase Ed25519 signature")]
    MalformedProofValue,
    #[error("the proof's @context is not the start of the document's @context")]
    ContextMismatch,
    #[error("the verification method {0} could not be resolved to an Ed25519 key")]
    UnknownVerificationMethod(String),
    #[error("the signature does not verify: the document or its proof was changed, or signed by another key")]
    BadSignature,
    #[error("the signing key is not the key named by the verification method {0}")]
    KeyMismatch(String),
    #[error("the document cannot be canonicalized with JCS")]
    Canonicalization,
}

impl DataIntegrityError {
    /// A stable code naming the failure, for APIs and logs.
    pub fn code(&self) -> &'static str {
        match self {
            DataIntegrityError::NotAnObject => "di-malformed-document",
            DataIntegrityError::AlreadySecured => "di-already-secured",
            DataIntegrityError::MissingProof => "di-missing-proof",
            DataIntegrityError::ProofSetUnsupported => "di-proof-set-unsupported",
            DataIntegrityError::MalformedProof(_) => "di-malformed-proof",
            DataIntegrityError::UnsupportedProofType(_) => "di-unsupported-proof-type",
            DataIntegrityError::UnsupportedCryptosuite(_) => "di-unsupported-cryptosuite",
            DataIntegrityError::MalformedProofValue => "di-malformed-proof-value",
            DataIntegrityError::ContextMismatch => "di-context-mismatch",
            DataIntegrityError::UnknownVerificationMethod(_) => "di-unknown-verification-method",
            DataIntegrityError::BadSignature => "di-bad-signature",
            DataIntegrityError::KeyMismatch(_) => "di-key-mismatch",
            DataIntegrityError::Canonicalization => "di-canonicalization",
        }
    }
}

/// A document whose `eddsa-jcs-2022` proof verified; only
/// [`verify_proof`] makes one.
///
/// The document is the one that was signed: without `proof`, and with the
/// proof's `@context` if the proof has one (contexts appended after
/// signing are not part of it).
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedDocument {
    document: Value,
    proof: Map<String, Value>,
    key: PublicKey,
}

impl VerifiedDocument {
    pub fn document(&self) -> &Value {
        &self.document
    }

    pub fn into_document(self) -> Value {
        self.document
    }

    /// The proof's options (everything but `proofValue`).
    pub fn proof(&self) -> &Map<String, Value> {
        &self.proof
    }

    pub fn verification_method(&self) -> &str {
        self.proof_str("verificationMethod").unwrap_or_default()
    }

    /// The DID that controls the verification method: its DID URL without
    /// the fragment.
    pub fn controller(&self) -> &str {
        let vm = self.verification_method();
        vm.split_once('#').map_or(vm, |(did, _)| did)
    }

    /// The `proofPurpose`, as written (it may name a purpose this crate
    /// has no variant for).
    pub fn proof_purpose(&self) -> &str {
        self.proof_str("proofPurpose").unwrap_or_default()
    }

    pub fn created(&self) -> Option<&str> {
        self.proof_str("created")
    }

    pub fn expires(&self) -> Option<&str> {
        self.proof_str("expires")
    }

    pub fn challenge(&self) -> Option<&str> {
        self.proof_str("challenge")
    }

    pub fn domain(&self) -> Option<&str> {
        self.proof_str("domain")
    }

    /// The key the signature verified with.
    pub fn public_key(&self) -> PublicKey {
        self.key
    }

    fn proof_str(&self, name: &str) -> Option<&str> {
        self.proof.get(name).and_then(Value::as_str)
    }
}

/// Secures `unsecured` with an `eddsa-jcs-2022` proof made with `key`
/// (VC-DI-EdDSA §3.3.1), returning the document with its `proof`.
///
/// The proof carries the document's `@context`, as the specification's
/// create-proof algorithm and its test vectors do.
pub fn add_proof(
    unsecured: &Value,
    options: ProofOptions,
    key: &Keypair,
) -> Result<Value, DataIntegrityError> {
    let document = unsecured
        .as_object()
        .ok_or(DataIntegrityError::NotAnObject)?;
    if document.contains_key("proof") {
        return Err(DataIntegrityError::AlreadySecured);
    }
    // A did:key names its own key; signing with another would only make a
    // proof nobody can verify.
    if let Some(named) = did_key_method_key(&options.verification_method) {
        if named != key.public_key() {
            return Err(DataIntegrityError::KeyMismatch(options.verification_method));
        }
    }
    let created = options
        .created
        .format(&Rfc3339)
        .map_err(|_| DataIntegrityError::MalformedProof("created cannot be written as RFC 3339"))?;
    let mut proof = Map::new();
    proof.insert("type".into(), PROOF_TYPE.into());
    proof.insert("cryptosuite".into(), CRYPTOSUITE.into());
    proof.insert("created".into(), created.into());
    proof.insert(
        "verificationMethod".into(),
        options.verification_method.into(),
    );
    proof.insert("proofPurpose".into(), options.proof_purpose.as_str().into());
    if let Some(challenge) = options.challenge {
        proof.insert("challenge".into(), challenge.into());
    }
    if let Some(domain) = options.domain {
        proof.insert("domain".into(), domain.into());
    }
    if let Some(context) = document.get("@context") {
        proof.insert("@context".into(), context.clone());
    }
    let signed = hash_data(&proof, unsecured)?;
    let signature = key.sign(&signed);
    let proof_value = format!(
        "{BASE58BTC}{}",
        bs58::encode(signature.to_bytes()).into_string()
    );
    proof.insert("proofValue".into(), proof_value.into());
    let mut secured = document.clone();
    secured.insert("proof".into(), Value::Object(proof));
    Ok(Value::Object(secured))
}

/// Verifies the `eddsa-jcs-2022` proof of `secured` (VC-DI-EdDSA §3.3.2).
///
/// `resolve` maps the proof's `verificationMethod` to the Ed25519 key it
/// names, or `None` when the caller does not know or trust it; it is the
/// caller's policy which keys may speak for which issuer (see
/// [`resolve_did_key_method`] for did:key issuers). The proof purpose,
/// challenge and domain are returned, not checked: check them, or use
/// [`verify_proof_for`].
pub fn verify_proof(
    secured: &Value,
    resolve: impl Fn(&str) -> Option<PublicKey>,
) -> Result<VerifiedDocument, DataIntegrityError> {
    let document = secured.as_object().ok_or(DataIntegrityError::NotAnObject)?;
    let proof = match document.get("proof") {
        None => return Err(DataIntegrityError::MissingProof),
        Some(Value::Object(proof)) => proof,
        Some(Value::Array(_)) => return Err(DataIntegrityError::ProofSetUnsupported),
        Some(_) => return Err(DataIntegrityError::MalformedProof("proof is not an object")),
    };
    check_proof_shape(proof)?;
    let signature = decode_proof_value(proof.get("proofValue"))?;

    let mut unsecured = document.clone();
    unsecured.remove("proof");
    let mut options = proof.clone();
    options.remove("proofValue");
    if let Some(proof_context) = options.get("@context") {
        if !context_starts_with(unsecured.get("@context"), proof_context) {
            return Err(DataIntegrityError::ContextMismatch);
        }
        unsecured.insert("@context".into(), proof_context.clone());
    }
    let unsecured = Value::Object(unsecured);
    // The proof configuration takes the (possibly replaced) @context of
    // the document (§3.3.5 step 4).
    let mut config = options.clone();
    if let Some(context) = unsecured.get("@context") {
        config.insert("@context".into(), context.clone());
    }
    let signed = hash_data(&config, &unsecured)?;

    let method = options
        .get("verificationMethod")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let key = resolve(method)
        .ok_or_else(|| DataIntegrityError::UnknownVerificationMethod(method.to_string()))?;
    key.verify(&signed, &signature)
        .map_err(|_| DataIntegrityError::BadSignature)?;
    Ok(VerifiedDocument {
        document: unsecured,
        proof: options,
        key,
    })
}

/// What a verifier expects of a proof besides a good signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpectedProof<'a> {
    pub purpose: ProofPurpose,
    /// The challenge the verifier issued, if it issued one.
    pub challenge: Option<&'a str>,
    /// The verifier's domain, if proofs must be bound to one.
    pub domain: Option<&'a str>,
}

/// [`verify_proof`], then checks the purpose, challenge and domain.
/// A proof with a challenge or domain the verifier did not ask for is
/// refused too: it was made for someone else.
pub fn verify_proof_for(
    secured: &Value,
    expected: &ExpectedProof<'_>,
    resolve: impl Fn(&str) -> Option<PublicKey>,
) -> Result<VerifiedDocument, DataIntegrityError> {
    let verified = verify_proof(secured, resolve)?;
    if verified.proof_purpose() != expected.purpose.as_str() {
        return Err(DataIntegrityError::MalformedProof(
            "proofPurpose is not the one expected",
        ));
    }
    if verified.challenge() != expected.challenge {
        return Err(DataIntegrityError::MalformedProof(
            "challenge is not the one expected",
        ));
    }
    if verified.domain() != expected.domain {
        return Err(DataIntegrityError::MalformedProof(
            "domain is not the one expected",
        ));
    }
    Ok(verified)
}

/// Resolves a did:key verification method (`did:key:z6Mk…#z6Mk…`) to its
/// Ed25519 key: the fragment must repeat the key, as the did:key method
/// defines. Anything else gives `None`.
pub fn resolve_did_key_method(verification_method: &str) -> Option<PublicKey> {
    did_key_method_key(verification_method)
}

fn did_key_method_key(verification_method: &str) -> Option<PublicKey> {
    let (did, _) = verification_method.split_once('#')?;
    let did = Did::parse_cached(did).ok()?;
    (did.verification_method() == verification_method).then(|| *did.public_key())
}

fn check_proof_shape(proof: &Map<String, Value>) -> Result<(), DataIntegrityError> {
    let text = |name: &str| proof.get(name).and_then(Value::as_str);
    match proof.get("type") {
        Some(Value::String(t)) if t == PROOF_TYPE => {}
        Some(Value::String(t)) => return Err(DataIntegrityError::UnsupportedProofType(t.clone())),
        _ => return Err(DataIntegrityError::MalformedProof("type is missing")),
    }
    match proof.get("cryptosuite") {
        Some(Value::String(c)) if c == CRYPTOSUITE => {}
        Some(Value::String(c)) => {
            return Err(DataIntegrityError::UnsupportedCryptosuite(c.clone()))
        }
        _ => return Err(DataIntegrityError::MalformedProof("cryptosuite is missing")),
    }
    if text("verificationMethod").is_none_or(str::is_empty) {
        return Err(DataIntegrityError::MalformedProof(
            "verificationMethod is missing",
        ));
    }
    if text("proofPurpose").is_none_or(str::is_empty) {
        return Err(DataIntegrityError::MalformedProof(
            "proofPurpose is missing",
        ));
    }
    for name in ["created", "expires"] {
        if let Some(value) = proof.get(name) {
            let valid = value.as_str().is_some_and(|t| parse_date_time(t).is_some());
            if !valid {
                return Err(DataIntegrityError::MalformedProof(
                    "created or expires is not an XML Schema dateTimeStamp",
                ));
            }
        }
    }
    for name in ["challenge", "domain"] {
        if proof.get(name).is_some_and(|v| !v.is_string()) {
            return Err(DataIntegrityError::MalformedProof(
                "challenge or domain is not a string",
            ));
        }
    }
    Ok(())
}

fn decode_proof_value(value: Option<&Value>) -> Result<Signature, DataIntegrityError> {
    let text = match value {
        Some(Value::String(text)) => text,
        _ => return Err(DataIntegrityError::MalformedProof("proofValue is missing")),
    };
    if text.len() > MAX_PROOF_VALUE_LEN {
        return Err(DataIntegrityError::MalformedProofValue);
    }
    let encoded = text
        .strip_prefix(BASE58BTC)
        .ok_or(DataIntegrityError::MalformedProofValue)?;
    let bytes = bs58::decode(encoded)
        .into_vec()
        .map_err(|_| DataIntegrityError::MalformedProofValue)?;
    Signature::from_slice(&bytes).map_err(|_| DataIntegrityError::MalformedProofValue)
}

/// Whether the document's `@context` begins with every value of the
/// proof's, in order (§3.3.2 step 4.1). A single string counts as a list
/// of one.
fn context_starts_with(document: Option<&Value>, proof: &Value) -> bool {
    fn as_list(value: &Value) -> &[Value] {
        match value {
            Value::Array(items) => items,
            single => std::slice::from_ref(single),
        }
    }
    let Some(document) = document else {
        return false;
    };
    let (document, proof) = (as_list(document), as_list(proof));
    !proof.is_empty() && document.len() >= proof.len() && document[..proof.len()] == *proof
}

/// `SHA-256(JCS(proofConfig)) ‖ SHA-256(JCS(document))`, the bytes signed
/// (§3.3.4 hashing).
fn hash_data(config: &Map<String, Value>, document: &Value) -> Result<Vec<u8>, DataIntegrityError> {
    let canonical_config = serde_json_canonicalizer::to_vec(config)
        .map_err(|_| DataIntegrityError::Canonicalization)?;
    let canonical_document = serde_json_canonicalizer::to_vec(document)
        .map_err(|_| DataIntegrityError::Canonicalization)?;
    let mut signed = Vec::with_capacity(64);
    signed.extend_from_slice(&Sha256::digest(canonical_config));
    signed.extend_from_slice(&Sha256::digest(canonical_document));
    Ok(signed)
}

/// Parses an XML Schema `dateTimeStamp` as VC 2.0 and Data Integrity use
/// it (RFC 3339 with a time zone; years 0000–9999).
pub fn parse_date_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    fn key() -> Keypair {
        Keypair::from_seed(&[11; 32])
    }

    fn unsecured() -> Value {
        json!({
            "@context": ["https://www.w3.org/ns/credentials/v2"],
            "type": ["VerifiableCredential"],
            "issuer": key().did().as_str(),
            "credentialSubject": {"id": "did:example:1", "n": 1.5},
        })
    }

    fn secured() -> Value {
        let options = ProofOptions::assertion(
            key().did().verification_method(),
            datetime!(2025-01-02 03:04:05 UTC),
        );
        add_proof(&unsecured(), options, &key()).unwrap()
    }

    #[test]
    fn round_trips_and_reports_the_proof() {
        let verified = verify_proof(&secured(), resolve_did_key_method).unwrap();
        assert_eq!(verified.document(), &unsecured());
        assert_eq!(verified.proof_purpose(), "assertionMethod");
        assert_eq!(verified.created(), Some("2025-01-02T03:04:05Z"));
        assert_eq!(verified.controller(), key().did().as_str());
        assert_eq!(verified.public_key(), key().public_key());
        assert_eq!(verified.challenge(), None);
    }

    #[test]
    fn challenge_and_domain_are_bound() {
        let mut options = ProofOptions::assertion(
            key().did().verification_method(),
            datetime!(2025-01-02 03:04:05 UTC),
        );
        options.proof_purpose = ProofPurpose::Authentication;
        options.challenge = Some("nonce-1".into());
        options.domain = Some("verifier.example".into());
        let secured = add_proof(&unsecured(), options, &key()).unwrap();
        let expected = ExpectedProof {
            purpose: ProofPurpose::Authentication,
            challenge: Some("nonce-1"),
            domain: Some("verifier.example"),
        };
        assert!(verify_proof_for(&secured, &expected, resolve_did_key_method).is_ok());
        for wrong in [
            ExpectedProof {
                challenge: Some("nonce-2"),
                ..expected
            },
            ExpectedProof {
                challenge: None,
                ..expected
            },
            ExpectedProof {
                domain: Some("other.example"),
                ..expected
            },
            ExpectedProof {
                purpose: ProofPurpose::AssertionMethod,
                ..expected
            },
        ] {
            let err = verify_proof_for(&secured, &wrong, resolve_did_key_method).unwrap_err();
            assert_eq!(err.code(), "di-malformed-proof");
        }
        let mut replayed = secured.clone();
        replayed["proof"]["challenge"] = json!("nonce-2");
        let err = verify_proof(&replayed, resolve_did_key_method).unwrap_err();
        assert_eq!(err.code(), "di-bad-signature");
    }

    #[test]
    fn refuses_to_sign_what_it_cannot() {
        let options = || {
            ProofOptions::assertion(
                key().did().verification_method(),
                datetime!(2025-01-02 03:04:05 UTC),
            )
        };
        let err = add_proof(&json!([1]), options(), &key()).unwrap_err();
        assert_eq!(err.code(), "di-malformed-document");
        let err = add_proof(&secured(), options(), &key()).unwrap_err();
        assert_eq!(err.code(), "di-already-secured");
        let other = Keypair::from_seed(&[12; 32]);
        let err = add_proof(&unsecured(), options(), &other).unwrap_err();
        assert_eq!(err.code(), "di-key-mismatch");
    }

    #[test]
    fn refuses_bad_proofs_with_codes() {
        let with = |edit: &dyn Fn(&mut Value)| {
            let mut doc = secured();
            edit(&mut doc);
            verify_proof(&doc, resolve_did_key_method)
                .unwrap_err()
                .code()
        };
        assert_eq!(with(&|d| *d = json!("x")), "di-malformed-document");
        assert_eq!(
            with(&|d| drop(d.as_object_mut().unwrap().remove("proof"))),
            "di-missing-proof"
        );
        assert_eq!(
            with(&|d| d["proof"] = json!([d["proof"].clone()])),
            "di-proof-set-unsupported"
        );
        assert_eq!(with(&|d| d["proof"] = json!("x")), "di-malformed-proof");
        assert_eq!(
            with(&|d| d["proof"]["type"] = json!("Ed25519Signature2020")),
            "di-unsupported-proof-type"
        );
        assert_eq!(
            with(&|d| drop(d["proof"].as_object_mut().unwrap().remove("type"))),
            "di-malformed-proof"
        );
        assert_eq!(
            with(&|d| d["proof"]["cryptosuite"] = json!("eddsa-rdfc-2022")),
            "di-unsupported-cryptosuite"
        );
        assert_eq!(
            with(&|d| d["proof"]["cryptosuite"] = json!(1)),
            "di-malformed-proof"
        );
        assert_eq!(
            with(&|d| d["proof"]["verificationMethod"] = json!("")),
            "di-malformed-proof"
        );
        assert_eq!(
            with(&|d| drop(d["proof"].as_object_mut().unwrap().remove("proofPurpose"))),
            "di-malformed-proof"
        );
        assert_eq!(
            with(&|d| d["proof"]["created"] = json!("yesterday")),
            "di-malformed-proof"
        );
        assert_eq!(
            with(&|d| d["proof"]["created"] = json!("2025-01-02T03:04:05")),
            "di-malformed-proof"
        );
        assert_eq!(
            with(&|d| d["proof"]["expires"] = json!(5)),
            "di-malformed-proof"
        );
        assert_eq!(
            with(&|d| d["proof"]["challenge"] = json!(5)),
            "di-malformed-proof"
        );
        assert_eq!(
            with(&|d| drop(d["proof"].as_object_mut().unwrap().remove("proofValue"))),
            "di-malformed-proof"
        );
        assert_eq!(
            with(&|d| d["proof"]["proofValue"] = json!("u1234")),
            "di-malformed-proof-value"
        );
        assert_eq!(
            with(&|d| d["proof"]["proofValue"] = json!("z0OIl")),
            "di-malformed-proof-value"
        );
        assert_eq!(
            with(&|d| d["proof"]["proofValue"] = json!("z2222")),
            "di-malformed-proof-value"
        );
        assert_eq!(
            with(&|d| d["proof"]["proofValue"] = json!(format!("z{}", "2".repeat(200)))),
            "di-malformed-proof-value"
        );
        assert_eq!(
            with(&|d| d["@context"] = json!(["https://example.com/other"])),
            "di-context-mismatch"
        );
        assert_eq!(
            with(&|d| drop(d.as_object_mut().unwrap().remove("@context"))),
            "di-context-mismatch"
        );
        assert_eq!(
            with(&|d| d["proof"]["verificationMethod"] = json!("did:example:1#k")),
            "di-unknown-verification-method"
        );
        assert_eq!(
            with(&|d| d["issuer"] = json!("did:example:2")),
            "di-bad-signature"
        );
        assert_eq!(
            with(&|d| d["credentialSubject"]["n"] = json!(1.25)),
            "di-bad-signature"
        );
        assert_eq!(
            with(&|d| d["proof"]["created"] = json!("2025-01-02T03:04:06Z")),
            "di-bad-signature"
        );
        assert_eq!(
            with(&|d| d["proof"]["extra"] = json!("x")),
            "di-bad-signature"
        );
    }

    #[test]
    fn contexts_added_after_signing_are_not_part_of_the_document() {
        let mut doc = secured();
        doc["@context"]
            .as_array_mut()
            .unwrap()
            .push(json!("https://example.com/added"));
        let verified = verify_proof(&doc, resolve_did_key_method).unwrap();
        assert_eq!(verified.document(), &unsecured());
    }

    #[test]
    fn a_proof_without_context_still_covers_the_documents() {
        // Proofs made before the proof carried `@context` (the specification
        // calls that step optional for backward compatibility): the proof
        // configuration still takes the document's `@context`.
        let mut secured = secured();
        let proof = secured["proof"].as_object_mut().unwrap();
        proof.remove("@context");
        proof.remove("proofValue");
        let proof = proof.clone();
        let mut config = proof.clone();
        config.insert("@context".into(), unsecured()["@context"].clone());
        let signature = key().sign(&hash_data(&config, &unsecured()).unwrap());
        secured["proof"]["proofValue"] = json!(format!(
            "z{}",
            bs58::encode(signature.to_bytes()).into_string()
        ));
        let verified = verify_proof(&secured, resolve_did_key_method).unwrap();
        assert_eq!(verified.document(), &unsecured());
        // Signed without the context in the configuration: refused.
        let bare = key().sign(&hash_data(&proof, &unsecured()).unwrap());
        secured["proof"]["proofValue"] =
            json!(format!("z{}", bs58::encode(bare.to_bytes()).into_string()));
        let err = verify_proof(&secured, resolve_did_key_method).unwrap_err();
        assert_eq!(err.code(), "di-bad-signature");
    }

    #[test]
    fn did_key_methods_must_repeat_the_key() {
        let did = key().did();
        assert_eq!(
            resolve_did_key_method(&did.verification_method()),
            Some(key().public_key())
        );
        assert_eq!(resolve_did_key_method(did.as_str()), None);
        assert_eq!(resolve_did_key_method(&format!("{did}#key-1")), None);
        assert_eq!(resolve_did_key_method("did:web:example.com#key-1"), None);
    }

    #[test]
    fn purposes_parse_back() {
        for purpose in [
            ProofPurpose::AssertionMethod,
            ProofPurpose::Authentication,
            ProofPurpose::CapabilityInvocation,
            ProofPurpose::CapabilityDelegation,
        ] {
            assert_eq!(ProofPurpose::parse(purpose.as_str()), Some(purpose));
        }
        assert_eq!(ProofPurpose::parse("keyAgreement"), None);
    }
}
