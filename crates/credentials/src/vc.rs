//! W3C Verifiable Credentials Data Model 2.0, secured with Data Integrity
//! `eddsa-jcs-2022`: building the JSON of a credential, and verifying one
//! (proof, issuer, validity window).

use hygeia_identity::{Keypair, PublicKey};
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::data_integrity::{
    self, add_proof, parse_date_time, DataIntegrityError, ProofOptions, ProofPurpose,
    VerifiedDocument,
};

/// The base context every VC 2.0 credential starts with.
pub const CREDENTIALS_V2_CONTEXT: &str = "https://www.w3.org/ns/credentials/v2";
/// The type every credential has.
pub const VERIFIABLE_CREDENTIAL: &str = "VerifiableCredential";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VcError {
    #[error("the credential is malformed: {0}")]
    Malformed(String),
    #[error("the credential's proof does not verify: {0}")]
    BadProof(DataIntegrityError),
    #[error("the credential is secured with an unsupported proof: {0}")]
    UnsupportedCryptosuite(DataIntegrityError),
    #[error("the credential was signed with a key of {signer}, not of its issuer {issuer}")]
    IssuerMismatch { issuer: String, signer: String },
    #[error("the credential's proof was made for {0}, not as an assertion")]
    WrongProofPurpose(String),
    #[error("the credential is not a {0}")]
    WrongType(&'static str),
    #[error("the credential is not valid before {0}")]
    NotYetValid(String),
    #[error("the credential expired at {0}")]
    Expired(String),
    #[error("the credential's proof expired at {0}")]
    ProofExpired(String),
    #[error("the credential subject is not valid: {0}")]
    BadSubject(String),
}

impl VcError {
    /// A stable code naming the failure, for APIs and logs.
    pub fn code(&self) -> &'static str {
        match self {
            VcError::Malformed(_) => "vc-malformed",
            VcError::BadProof(_) => "vc-bad-proof",
            VcError::UnsupportedCryptosuite(_) => "vc-unsupported-cryptosuite",
            VcError::IssuerMismatch { .. } => "vc-issuer-mismatch",
            VcError::WrongProofPurpose(_) => "vc-wrong-proof-purpose",
            VcError::WrongType(_) => "vc-wrong-type",
            VcError::NotYetValid(_) => "vc-not-yet-valid",
            VcError::Expired(_) => "vc-expired",
            VcError::ProofExpired(_) => "vc-proof-expired",
            VcError::BadSubject(_) => "vc-bad-subject",
        }
    }

    pub(crate) fn malformed(reason: impl Into<String>) -> Self {
        VcError::Malformed(reason.into())
    }
}

impl From<DataIntegrityError> for VcError {
    fn from(error: DataIntegrityError) -> Self {
        match error {
            DataIntegrityError::UnsupportedCryptosuite(_)
            | DataIntegrityError::UnsupportedProofType(_)
            | DataIntegrityError::ProofSetUnsupported => VcError::UnsupportedCryptosuite(error),
            other => VcError::BadProof(other),
        }
    }
}

/// A VC 2.0 credential to issue.
#[derive(Debug, Clone, PartialEq)]
pub struct Credential {
    /// Contexts after the VC 2.0 base context.
    pub extra_contexts: Vec<String>,
    pub id: Option<String>,
    /// Types after `VerifiableCredential`.
    pub types: Vec<String>,
    /// The issuer's DID (or URL); the proof's verification method must
    /// belong to it.
    pub issuer: String,
    pub valid_from: Option<OffsetDateTime>,
    pub valid_until: Option<OffsetDateTime>,
    pub subject: Value,
    /// `credentialStatus` entries (written as an object when there is one).
    pub status: Vec<Value>,
}

impl Credential {
    /// The unsecured credential JSON.
    pub fn to_json(&self) -> Result<Value, VcError> {
        let mut vc = Map::new();
        let contexts: Vec<Value> = std::iter::once(CREDENTIALS_V2_CONTEXT.to_string())
            .chain(self.extra_contexts.iter().cloned())
            .map(Value::String)
            .collect();
        vc.insert("@context".into(), Value::Array(contexts));
        if let Some(id) = &self.id {
            vc.insert("id".into(), id.clone().into());
        }
        let types: Vec<Value> = std::iter::once(VERIFIABLE_CREDENTIAL.to_string())
            .chain(self.types.iter().cloned())
            .map(Value::String)
            .collect();
        vc.insert("type".into(), Value::Array(types));
        vc.insert("issuer".into(), self.issuer.clone().into());
        if let Some(from) = self.valid_from {
            vc.insert("validFrom".into(), format_date_time(from)?.into());
        }
        if let Some(until) = self.valid_until {
            vc.insert("validUntil".into(), format_date_time(until)?.into());
        }
        vc.insert("credentialSubject".into(), self.subject.clone());
        match self.status.as_slice() {
            [] => {}
            [one] => {
                vc.insert("credentialStatus".into(), one.clone());
            }
            many => {
                vc.insert("credentialStatus".into(), Value::Array(many.to_vec()));
            }
        }
        Ok(Value::Object(vc))
    }

    /// The credential secured with an `assertionMethod` proof by `key`.
    pub fn issue(
        &self,
        key: &Keypair,
        verification_method: &str,
        created: OffsetDateTime,
    ) -> Result<Value, VcError> {
        let options = ProofOptions::assertion(verification_method, created);
        Ok(add_proof(&self.to_json()?, options, key)?)
    }
}

/// A credential whose proof verified, whose signer belongs to its issuer,
/// and which was valid at the time given; only [`verify_credential`]
/// makes one.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedCredential {
    verified: VerifiedDocument,
    issuer: String,
    types: Vec<String>,
    valid_from: Option<OffsetDateTime>,
    valid_until: Option<OffsetDateTime>,
}

impl VerifiedCredential {
    /// The credential as signed (without its proof).
    pub fn document(&self) -> &Value {
        self.verified.document()
    }

    /// The proof that verified.
    pub fn proof(&self) -> &VerifiedDocument {
        &self.verified
    }

    pub fn id(&self) -> Option<&str> {
        self.document().get("id").and_then(Value::as_str)
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn types(&self) -> &[String] {
        &self.types
    }

    pub fn has_type(&self, wanted: &str) -> bool {
        self.types.iter().any(|t| t == wanted)
    }

    pub fn valid_from(&self) -> Option<OffsetDateTime> {
        self.valid_from
    }

    pub fn valid_until(&self) -> Option<OffsetDateTime> {
        self.valid_until
    }

    /// `credentialSubject`: an object, or a list of them.
    pub fn subject(&self) -> &Value {
        &self.document()["credentialSubject"]
    }

    /// `credentialStatus`, if any: an object, or a list of them.
    pub fn status(&self) -> Option<&Value> {
        self.document().get("credentialStatus")
    }
}

/// Verifies a VC 2.0 credential secured with `eddsa-jcs-2022`:
///
/// 1. the proof verifies with the key `resolve` gives for its
///    verification method, and its purpose is `assertionMethod`;
/// 2. the verification method belongs to the issuer (its DID is the
///    issuer's id), so nobody can sign in another issuer's name;
/// 3. the credential is well formed (base context first,
///    `VerifiableCredential` type, issuer, subject, dates);
/// 4. `now` lies in `[validFrom, validUntil]` and before the proof's
///    `expires`, if given.
///
/// Status (revocation) is not checked here: see `status_list`.
pub fn verify_credential(
    credential: &Value,
    now: OffsetDateTime,
    resolve: impl Fn(&str) -> Option<PublicKey>,
) -> Result<VerifiedCredential, VcError> {
    let verified = data_integrity::verify_proof(credential, resolve)?;
    let purpose = verified.proof_purpose();
    if purpose != ProofPurpose::AssertionMethod.as_str() {
        return Err(VcError::WrongProofPurpose(purpose.to_string()));
    }
    let document = verified.document();

    let first_context = match document.get("@context") {
        Some(Value::Array(contexts)) => contexts.first(),
        _ => None,
    };
    if first_context.and_then(Value::as_str) != Some(CREDENTIALS_V2_CONTEXT) {
        return Err(VcError::malformed(format!(
            "@context must be a list starting with {CREDENTIALS_V2_CONTEXT}"
        )));
    }
    let types = read_types(document.get("type"))?;
    if !types.iter().any(|t| t == VERIFIABLE_CREDENTIAL) {
        return Err(VcError::WrongType(VERIFIABLE_CREDENTIAL));
    }
    let issuer = read_issuer(document.get("issuer"))?;
    if verified.controller() != issuer {
        return Err(VcError::IssuerMismatch {
            issuer,
            signer: verified.controller().to_string(),
        });
    }
    match document.get("credentialSubject") {
        Some(Value::Object(_)) => {}
        Some(Value::Array(subjects))
            if !subjects.is_empty() && subjects.iter().all(Value::is_object) => {}
        _ => {
            return Err(VcError::malformed(
                "credentialSubject must be an object or a list of objects",
            ))
        }
    }
    if let Some(id) = document.get("id") {
        if id.as_str().is_none_or(str::is_empty) {
            return Err(VcError::malformed("id must be a URL"));
        }
    }

    let valid_from = read_date(document, "validFrom")?;
    let valid_until = read_date(document, "validUntil")?;
    if let (Some(from), Some(until)) = (valid_from, valid_until) {
        if from > until {
            return Err(VcError::malformed("validFrom is after validUntil"));
        }
    }
    if let Some(from) = valid_from {
        if now < from {
            return Err(VcError::NotYetValid(format_date_time(from)?));
        }
    }
    if let Some(until) = valid_until {
        if now > until {
            return Err(VcError::Expired(format_date_time(until)?));
        }
    }
    // `verify_proof` has checked that `expires`, if present, is a date.
    if let Some(expires) = verified.expires().and_then(parse_date_time) {
        if now >= expires {
            return Err(VcError::ProofExpired(format_date_time(expires)?));
        }
    }

    Ok(VerifiedCredential {
        verified,
        issuer,
        types,
        valid_from,
        valid_until,
    })
}

fn read_types(value: Option<&Value>) -> Result<Vec<String>, VcError> {
    let bad = || VcError::malformed("type must be a string or a list of strings");
    match value {
        Some(Value::String(one)) => Ok(vec![one.clone()]),
        Some(Value::Array(many)) => many
            .iter()
            .map(|t| t.as_str().map(str::to_string).ok_or_else(bad))
            .collect(),
        _ => Err(bad()),
    }
}

/// `issuer` is a URL, or an object whose `id` is one.
fn read_issuer(value: Option<&Value>) -> Result<String, VcError> {
    let id = match value {
        Some(Value::String(id)) => Some(id),
        Some(Value::Object(issuer)) => issuer.get("id").and_then(|id| match id {
            Value::String(id) => Some(id),
            _ => None,
        }),
        _ => None,
    };
    match id {
        Some(id) if !id.is_empty() => Ok(id.clone()),
        _ => Err(VcError::malformed(
            "issuer must be a URL or an object with an id",
        )),
    }
}

fn read_date(document: &Value, name: &str) -> Result<Option<OffsetDateTime>, VcError> {
    match document.get(name) {
        None => Ok(None),
        Some(value) => value
            .as_str()
            .and_then(parse_date_time)
            .map(Some)
            .ok_or_else(|| {
                VcError::malformed(format!("{name} is not an XML Schema dateTimeStamp"))
            }),
    }
}

pub(crate) fn format_date_time(at: OffsetDateTime) -> Result<String, VcError> {
    at.format(&Rfc3339)
        .map_err(|_| VcError::malformed("a date cannot be written as RFC 3339"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data_integrity::resolve_did_key_method;
    use serde_json::json;
    use time::macros::datetime;

    fn key() -> Keypair {
        Keypair::from_seed(&[21; 32])
    }

    fn credential() -> Credential {
        Credential {
            extra_contexts: vec![],
            id: Some("urn:uuid:0b6a2f8e-1c1d-4a8e-9a55-0d3f1c5e7a01".into()),
            types: vec!["ExampleCredential".into()],
            issuer: key().did().to_string(),
            valid_from: Some(datetime!(2025-01-01 00:00 UTC)),
            valid_until: Some(datetime!(2026-01-01 00:00 UTC)),
            subject: json!({"id": "did:example:subject"}),
            status: vec![],
        }
    }

    fn issue(credential: &Credential, key: &Keypair) -> Value {
        credential
            .issue(
                key,
                &key.did().verification_method(),
                datetime!(2025-01-01 00:00 UTC),
            )
            .unwrap()
    }

    const NOW: OffsetDateTime = datetime!(2025-06-01 00:00 UTC);

    #[test]
    fn issues_and_verifies() {
        let vc = issue(&credential(), &key());
        assert_eq!(vc["validFrom"], "2025-01-01T00:00:00Z");
        let verified = verify_credential(&vc, NOW, resolve_did_key_method).unwrap();
        assert_eq!(verified.issuer(), key().did().as_str());
        assert!(verified.has_type("ExampleCredential"));
        assert_eq!(verified.subject()["id"], "did:example:subject");
        assert_eq!(
            verified.id(),
            Some("urn:uuid:0b6a2f8e-1c1d-4a8e-9a55-0d3f1c5e7a01")
        );
    }

    #[test]
    fn the_validity_window_is_enforced() {
        let vc = issue(&credential(), &key());
        let at = |now| verify_credential(&vc, now, resolve_did_key_method).map(|_| ());
        assert_eq!(at(datetime!(2025-01-01 00:00 UTC)), Ok(()));
        assert_eq!(at(datetime!(2026-01-01 00:00 UTC)), Ok(()));
        assert_eq!(
            at(datetime!(2024-12-31 23:59:59 UTC)).unwrap_err().code(),
            "vc-not-yet-valid"
        );
        assert_eq!(
            at(datetime!(2026-01-01 00:00:01 UTC)).unwrap_err().code(),
            "vc-expired"
        );
    }

    #[test]
    fn refuses_bad_credentials_with_codes() {
        let signed = |edit: &dyn Fn(&mut Credential), key: &Keypair| {
            let mut c = credential();
            edit(&mut c);
            let vc = issue(&c, key);
            verify_credential(&vc, NOW, resolve_did_key_method)
                .unwrap_err()
                .code()
        };
        let other = Keypair::from_seed(&[22; 32]);
        assert_eq!(signed(&|_| {}, &other), "vc-issuer-mismatch");
        // `VerifiableCredential` alone is enough.
        assert_eq!(verify_ok(&|c| c.types = vec![]), "vc-ok");
        assert_eq!(signed(&|c| c.subject = json!("x"), &key()), "vc-malformed");
        assert_eq!(signed(&|c| c.subject = json!([]), &key()), "vc-malformed");
        assert_eq!(
            signed(&|c| c.issuer = String::new(), &key()),
            "vc-malformed"
        );
        assert_eq!(
            signed(
                &|c| c.valid_until = Some(datetime!(2024-01-01 00:00 UTC)),
                &key()
            ),
            "vc-malformed"
        );

        let raw = |edit: &dyn Fn(&mut Value)| {
            let mut vc = credential().to_json().unwrap();
            edit(&mut vc);
            let vc = add_proof(
                &vc,
                ProofOptions::assertion(key().did().verification_method(), NOW),
                &key(),
            )
            .unwrap();
            verify_credential(&vc, NOW, resolve_did_key_method)
                .unwrap_err()
                .code()
        };
        assert_eq!(
            raw(&|vc| vc["@context"] = json!(CREDENTIALS_V2_CONTEXT)),
            "vc-malformed"
        );
        assert_eq!(
            raw(&|vc| vc["@context"] = json!(["https://www.w3.org/2018/credentials/v1"])),
            "vc-malformed"
        );
        assert_eq!(
            raw(&|vc| vc["type"] = json!(["ExampleCredential"])),
            "vc-wrong-type"
        );
        assert_eq!(raw(&|vc| vc["type"] = json!([1])), "vc-malformed");
        assert_eq!(
            raw(&|vc| vc["issuer"] = json!({"name": "x"})),
            "vc-malformed"
        );
        assert_eq!(
            raw(&|vc| vc["validFrom"] = json!("2025-01-01")),
            "vc-malformed"
        );
        assert_eq!(raw(&|vc| vc["id"] = json!(5)), "vc-malformed");

        let mut vc = issue(&credential(), &key());
        vc["proof"]["cryptosuite"] = json!("ecdsa-jcs-2019");
        let err = verify_credential(&vc, NOW, resolve_did_key_method).unwrap_err();
        assert_eq!(err.code(), "vc-unsupported-cryptosuite");
        let mut vc = issue(&credential(), &key());
        vc["credentialSubject"]["id"] = json!("did:example:other");
        let err = verify_credential(&vc, NOW, resolve_did_key_method).unwrap_err();
        assert_eq!(err.code(), "vc-bad-proof");
    }

    fn verify_ok(edit: &dyn Fn(&mut Credential)) -> String {
        let mut c = credential();
        edit(&mut c);
        let vc = issue(&c, &key());
        match verify_credential(&vc, NOW, resolve_did_key_method) {
            Ok(_) => "vc-ok".into(),
            Err(e) => e.code().into(),
        }
    }

    #[test]
    fn an_issuer_object_and_a_proof_expiry_are_honoured() {
        let mut vc = credential().to_json().unwrap();
        vc["issuer"] = json!({"id": key().did().as_str(), "name": "Board"});
        let mut options = ProofOptions::assertion(key().did().verification_method(), NOW);
        options.proof_purpose = ProofPurpose::Authentication;
        let auth = add_proof(&vc, options, &key()).unwrap();
        let err = verify_credential(&auth, NOW, resolve_did_key_method).unwrap_err();
        assert_eq!(err.code(), "vc-wrong-proof-purpose");

        let secured = add_proof(
            &vc,
            ProofOptions::assertion(key().did().verification_method(), NOW),
            &key(),
        )
        .unwrap();
        let verified = verify_credential(&secured, NOW, resolve_did_key_method).unwrap();
        assert_eq!(verified.issuer(), key().did().as_str());

        // A proof with an `expires` (signed over, as every proof member is).
        let expiring = sign_with_expiry(&vc, "2025-03-01T00:00:00Z");
        let err = verify_credential(&expiring, NOW, resolve_did_key_method).unwrap_err();
        assert_eq!(err.code(), "vc-proof-expired");
    }

    /// Signs with an `expires` member in the proof, which `ProofOptions`
    /// does not offer: built by hand with the same steps as `add_proof`.
    fn sign_with_expiry(unsecured: &Value, expires: &str) -> Value {
        use sha2::{Digest, Sha256};
        let mut proof = json!({
            "type": "DataIntegrityProof",
            "cryptosuite": "eddsa-jcs-2022",
            "created": "2025-01-01T00:00:00Z",
            "expires": expires,
            "verificationMethod": key().did().verification_method(),
            "proofPurpose": "assertionMethod",
            "@context": unsecured["@context"].clone(),
        });
        let mut signed = Sha256::digest(serde_json_canonicalizer::to_vec(&proof).unwrap()).to_vec();
        signed.extend_from_slice(&Sha256::digest(
            serde_json_canonicalizer::to_vec(unsecured).unwrap(),
        ));
        let signature = key().sign(&signed);
        proof["proofValue"] = json!(format!(
            "z{}",
            bs58::encode(signature.to_bytes()).into_string()
        ));
        let mut secured = unsecured.clone();
        secured["proof"] = proof;
        secured
    }

    #[test]
    fn one_status_entry_is_an_object_several_a_list() {
        let mut c = credential();
        c.status = vec![json!({"type": "A"})];
        assert!(c.to_json().unwrap()["credentialStatus"].is_object());
        c.status.push(json!({"type": "B"}));
        assert!(c.to_json().unwrap()["credentialStatus"].is_array());
    }
}
