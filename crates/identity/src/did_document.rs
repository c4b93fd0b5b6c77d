//! DID documents (W3C DID Core 1.0, JSON representation): the verification
//! methods a DID controls and what each may be used for.
//!
//! Keys are read from `Multikey` (`publicKeyMultibase`), the 2020 suites
//! (`Ed25519VerificationKey2020`, `X25519KeyAgreementKey2020`), the 2018/2019
//! suites (`publicKeyBase58`) and `JsonWebKey2020` (`publicKeyJwk`), because
//! published documents and the did:key test vectors use all of them.

use base64::Engine;
use serde::{Deserialize, Deserializer, Serialize};

use crate::keys::PublicKey;
use crate::multicodec;

/// The DID Core 1.0 JSON-LD context, first in every document built here.
pub const DID_CONTEXT_V1: &str = "https://www.w3.org/ns/did/v1";
/// The context defining `Multikey` and `publicKeyMultibase`.
pub const MULTIKEY_CONTEXT_V1: &str = "https://w3id.org/security/multikey/v1";

/// A DID document.
///
/// Unknown members are ignored when reading; `@context` may be one string
/// or a list of strings (embedded context objects are refused).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DidDocument {
    #[serde(
        rename = "@context",
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "one_or_many"
    )]
    pub context: Vec<String>,
    pub id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verification_method: Vec<VerificationMethod>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assertion_method: Vec<MethodReference>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authentication: Vec<MethodReference>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capability_invocation: Vec<MethodReference>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capability_delegation: Vec<MethodReference>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_agreement: Vec<MethodReference>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service: Vec<Service>,
}

/// One verification method: a public key, its id (a DID URL) and its
/// controller. Exactly one of the three key members should be present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerificationMethod {
    pub id: String,
    #[serde(rename = "type")]
    pub method_type: MethodType,
    pub controller: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_multibase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_base58: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_jwk: Option<PublicJwk>,
}

/// The `type` of a verification method.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum MethodType {
    Multikey,
    Ed25519VerificationKey2020,
    X25519KeyAgreementKey2020,
    Ed25519VerificationKey2018,
    X25519KeyAgreementKey2019,
    JsonWebKey2020,
    /// Any other type; kept so a document round-trips, never used for keys.
    Other(String),
}

impl MethodType {
    pub fn as_str(&self) -> &str {
        match self {
            MethodType::Multikey => "Multikey",
            MethodType::Ed25519VerificationKey2020 => "Ed25519VerificationKey2020",
            MethodType::X25519KeyAgreementKey2020 => "X25519KeyAgreementKey2020",
            MethodType::Ed25519VerificationKey2018 => "Ed25519VerificationKey2018",
            MethodType::X25519KeyAgreementKey2019 => "X25519KeyAgreementKey2019",
            MethodType::JsonWebKey2020 => "JsonWebKey2020",
            MethodType::Other(other) => other,
        }
    }
}

impl From<String> for MethodType {
    fn from(text: String) -> Self {
        match text.as_str() {
            "Multikey" => MethodType::Multikey,
            "Ed25519VerificationKey2020" => MethodType::Ed25519VerificationKey2020,
            "X25519KeyAgreementKey2020" => MethodType::X25519KeyAgreementKey2020,
            "Ed25519VerificationKey2018" => MethodType::Ed25519VerificationKey2018,
            "X25519KeyAgreementKey2019" => MethodType::X25519KeyAgreementKey2019,
            "JsonWebKey2020" => MethodType::JsonWebKey2020,
            _ => MethodType::Other(text),
        }
    }
}

impl From<MethodType> for String {
    fn from(method_type: MethodType) -> Self {
        method_type.as_str().to_string()
    }
}

/// The public members of a JSON Web Key (RFC 7517); private members are
/// never read or written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicJwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
}

/// An entry of a verification relationship: a reference to a method of
/// `verificationMethod`, or a method embedded in place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MethodReference {
    Reference(String),
    Embedded(VerificationMethod),
}

impl MethodReference {
    fn id(&self) -> &str {
        match self {
            MethodReference::Reference(id) => id,
            MethodReference::Embedded(method) => &method.id,
        }
    }
}

/// A `service` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    pub id: String,
    #[serde(rename = "type")]
    pub service_type: String,
    /// A URL, a map or a list of either (DID Core §5.4).
    pub service_endpoint: serde_json::Value,
}

/// The verification relationships of DID Core §5.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Relationship {
    Authentication,
    AssertionMethod,
    KeyAgreement,
    CapabilityInvocation,
    CapabilityDelegation,
}

impl Relationship {
    /// The property name in a DID document (and the `proofPurpose` of a
    /// Data Integrity proof).
    pub fn as_str(self) -> &'static str {
        match self {
            Relationship::Authentication => "authentication",
            Relationship::AssertionMethod => "assertionMethod",
            Relationship::KeyAgreement => "keyAgreement",
            Relationship::CapabilityInvocation => "capabilityInvocation",
            Relationship::CapabilityDelegation => "capabilityDelegation",
        }
    }
}

/// A verification method could not be found, used, or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DidDocumentError {
    #[error("the DID document has no verification method {id}")]
    UnknownMethod { id: String },
    #[error("the verification method {id} is not listed under {relationship} in the DID document")]
    NotAuthorized {
        id: String,
        relationship: &'static str,
    },
    #[error("the verification method {id} ({method_type}) does not hold a key of the kind needed")]
    UnsupportedKey { id: String, method_type: String },
    #[error("the verification method {id} holds a malformed public key")]
    BadKey { id: String },
}

impl DidDocumentError {
    /// A stable code naming the failure, for APIs and logs.
    pub fn code(&self) -> &'static str {
        match self {
            DidDocumentError::UnknownMethod { .. } => "did-doc-unknown-method",
            DidDocumentError::NotAuthorized { .. } => "did-doc-method-not-authorized",
            DidDocumentError::UnsupportedKey { .. } => "did-doc-unsupported-key",
            DidDocumentError::BadKey { .. } => "did-doc-bad-key",
        }
    }
}

impl DidDocument {
    /// A method id as an absolute DID URL: `#key-1` is relative to the
    /// document's `id`.
    pub fn absolute_id(&self, id: &str) -> String {
        if id.starts_with('#') {
            format!("{}{}", self.id, id)
        } else {
            id.to_string()
        }
    }

    pub fn relationship(&self, relationship: Relationship) -> &[MethodReference] {
        match relationship {
            Relationship::Authentication => &self.authentication,
            Relationship::AssertionMethod => &self.assertion_method,
            Relationship::KeyAgreement => &self.key_agreement,
            Relationship::CapabilityInvocation => &self.capability_invocation,
            Relationship::CapabilityDelegation => &self.capability_delegation,
        }
    }

    /// The method with this id, listed in `verificationMethod` or embedded
    /// in a relationship.
    pub fn method(&self, id: &str) -> Option<&VerificationMethod> {
        let wanted = self.absolute_id(id);
        let embedded = [
            &self.authentication,
            &self.assertion_method,
            &self.key_agreement,
            &self.capability_invocation,
            &self.capability_delegation,
        ]
        .into_iter()
        .flatten()
        .filter_map(|entry| match entry {
            MethodReference::Embedded(method) => Some(method),
            MethodReference::Reference(_) => None,
        });
        self.verification_method
            .iter()
            .chain(embedded)
            .find(|method| self.absolute_id(&method.id) == wanted)
    }

    /// The method `id`, provided the document authorizes it for
    /// `relationship` (a key listed only under `keyAgreement` must not sign
    /// credentials, for instance).
    pub fn authorized_method(
        &self,
        id: &str,
        relationship: Relationship,
    ) -> Result<&VerificationMethod, DidDocumentError> {
        let wanted = self.absolute_id(id);
        let entry = self
            .relationship(relationship)
            .iter()
            .find(|entry| self.absolute_id(entry.id()) == wanted);
        match entry {
            Some(MethodReference::Embedded(method)) => Ok(method),
            Some(MethodReference::Reference(_)) => self
                .verification_method
                .iter()
                .find(|method| self.absolute_id(&method.id) == wanted)
                .ok_or(DidDocumentError::UnknownMethod { id: wanted }),
            None if self.method(id).is_some() => Err(DidDocumentError::NotAuthorized {
                id: wanted,
                relationship: relationship.as_str(),
            }),
            None => Err(DidDocumentError::UnknownMethod { id: wanted }),
        }
    }

    /// The Ed25519 key of method `id`, authorized for `relationship`.
    pub fn ed25519_key(
        &self,
        id: &str,
        relationship: Relationship,
    ) -> Result<PublicKey, DidDocumentError> {
        self.authorized_method(id, relationship)?
            .ed25519_public_key()
    }

    /// The X25519 key of method `id`, authorized for `keyAgreement`.
    pub fn x25519_key(&self, id: &str) -> Result<[u8; 32], DidDocumentError> {
        self.authorized_method(id, Relationship::KeyAgreement)?
            .x25519_public_key()
    }
}

/// Which curve a key is read for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Curve {
    Ed25519,
    X25519,
}

impl VerificationMethod {
    /// The Ed25519 public key this method holds (a point on the curve).
    pub fn ed25519_public_key(&self) -> Result<PublicKey, DidDocumentError> {
        let bytes = self.key_bytes(Curve::Ed25519)?;
        PublicKey::from_bytes(&bytes).map_err(|_| self.bad_key())
    }

    /// The X25519 public key this method holds.
    pub fn x25519_public_key(&self) -> Result<[u8; 32], DidDocumentError> {
        self.key_bytes(Curve::X25519)
    }

    fn key_bytes(&self, curve: Curve) -> Result<[u8; 32], DidDocumentError> {
        let present = [
            self.public_key_multibase.is_some(),
            self.public_key_base58.is_some(),
            self.public_key_jwk.is_some(),
        ];
        // Two key members in one method leave it unclear which is meant.
        if present.iter().filter(|p| **p).count() != 1 {
            return Err(self.bad_key());
        }
        let (codec, crv) = match curve {
            Curve::Ed25519 => (multicodec::ED25519_PUB, "Ed25519"),
            Curve::X25519 => (multicodec::X25519_PUB, "X25519"),
        };
        use MethodType as T;
        let type_fits = matches!(
            (&self.method_type, curve),
            (T::Multikey | T::JsonWebKey2020, _)
                | (
                    T::Ed25519VerificationKey2020 | T::Ed25519VerificationKey2018,
                    Curve::Ed25519
                )
                | (
                    T::X25519KeyAgreementKey2020 | T::X25519KeyAgreementKey2019,
                    Curve::X25519
                )
        );
        if !type_fits {
            return Err(self.unsupported());
        }
        match (
            &self.method_type,
            &self.public_key_multibase,
            &self.public_key_base58,
            &self.public_key_jwk,
        ) {
            (
                T::Multikey | T::Ed25519VerificationKey2020 | T::X25519KeyAgreementKey2020,
                Some(multibase),
                _,
                _,
            ) => match multicodec::decode_key(multibase) {
                Some((found, key)) if found == codec => Ok(key),
                Some(_) => Err(self.unsupported()),
                None => Err(self.bad_key()),
            },
            (T::Ed25519VerificationKey2018 | T::X25519KeyAgreementKey2019, _, Some(base58), _) => {
                // Guards the quadratic base58 decoder; 32 bytes take 44 digits.
                if base58.len() > 64 {
                    return Err(self.bad_key());
                }
                let bytes = bs58::decode(base58)
                    .into_vec()
                    .map_err(|_| self.bad_key())?;
                bytes.try_into().map_err(|_| self.bad_key())
            }
            (T::JsonWebKey2020, _, _, Some(jwk)) => {
                if jwk.kty != "OKP" || jwk.crv != crv || jwk.y.is_some() {
                    return Err(self.unsupported());
                }
                let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(&jwk.x)
                    .map_err(|_| self.bad_key())?;
                bytes.try_into().map_err(|_| self.bad_key())
            }
            _ => Err(self.unsupported()),
        }
    }

    fn bad_key(&self) -> DidDocumentError {
        DidDocumentError::BadKey {
            id: self.id.clone(),
        }
    }

    fn unsupported(&self) -> DidDocumentError {
        DidDocumentError::UnsupportedKey {
            id: self.id.clone(),
            method_type: self.method_type.as_str().to_string(),
        }
    }
}

fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Keypair;

    fn multikey(id: &str, key: &PublicKey) -> VerificationMethod {
        VerificationMethod {
            id: id.to_string(),
            method_type: MethodType::Multikey,
            controller: "did:web:example.com".to_string(),
            public_key_multibase: Some(multicodec::encode_key(
                multicodec::ED25519_PUB,
                &key.to_bytes(),
            )),
            public_key_base58: None,
            public_key_jwk: None,
        }
    }

    fn document(key: &PublicKey) -> DidDocument {
        DidDocument {
            context: vec![DID_CONTEXT_V1.to_string()],
            id: "did:web:example.com".to_string(),
            verification_method: vec![multikey("did:web:example.com#key-1", key)],
            assertion_method: vec![MethodReference::Reference("#key-1".to_string())],
            authentication: vec![],
            capability_invocation: vec![],
            capability_delegation: vec![],
            key_agreement: vec![],
            service: vec![],
        }
    }

    #[test]
    fn finds_authorized_keys_by_absolute_or_relative_id() {
        let key = Keypair::from_seed(&[1; 32]).public_key();
        let doc = document(&key);
        let rel = Relationship::AssertionMethod;
        assert_eq!(doc.ed25519_key("#key-1", rel), Ok(key));
        assert_eq!(doc.ed25519_key("did:web:example.com#key-1", rel), Ok(key));
        let err = doc.ed25519_key("#key-1", Relationship::Authentication);
        assert_eq!(err.unwrap_err().code(), "did-doc-method-not-authorized");
        let err = doc.ed25519_key("#key-2", rel).unwrap_err();
        assert_eq!(err.code(), "did-doc-unknown-method");
        // A reference to a method the document does not list.
        let mut dangling = doc.clone();
        dangling.verification_method.clear();
        let err = dangling.ed25519_key("#key-1", rel).unwrap_err();
        assert_eq!(err.code(), "did-doc-unknown-method");
    }

    #[test]
    fn embedded_methods_are_found() {
        let key = Keypair::from_seed(&[2; 32]).public_key();
        let mut doc = document(&key);
        let method = doc.verification_method.remove(0);
        doc.authentication = vec![MethodReference::Embedded(method)];
        doc.assertion_method.clear();
        assert_eq!(
            doc.ed25519_key("#key-1", Relationship::Authentication),
            Ok(key)
        );
        assert!(doc.method("did:web:example.com#key-1").is_some());
    }

    #[test]
    fn refuses_wrong_curve_ambiguous_and_malformed_keys() {
        let key = Keypair::from_seed(&[3; 32]).public_key();
        let method = multikey("did:web:example.com#key-1", &key);
        assert_eq!(
            method.x25519_public_key().unwrap_err().code(),
            "did-doc-unsupported-key"
        );

        let mut two = method.clone();
        two.public_key_base58 = Some("abc".into());
        assert_eq!(
            two.ed25519_public_key().unwrap_err().code(),
            "did-doc-bad-key"
        );

        let mut none = method.clone();
        none.public_key_multibase = None;
        assert_eq!(
            none.ed25519_public_key().unwrap_err().code(),
            "did-doc-bad-key"
        );

        let mut garbled = method.clone();
        garbled.public_key_multibase = Some("z6Mk0OIl".into());
        assert_eq!(
            garbled.ed25519_public_key().unwrap_err().code(),
            "did-doc-bad-key"
        );

        let mut other = method.clone();
        other.method_type = MethodType::Other("EcdsaSecp256k1VerificationKey2019".into());
        assert_eq!(
            other.ed25519_public_key().unwrap_err().code(),
            "did-doc-unsupported-key"
        );

        let mut x_type = method.clone();
        x_type.method_type = MethodType::X25519KeyAgreementKey2020;
        assert_eq!(
            x_type.ed25519_public_key().unwrap_err().code(),
            "did-doc-unsupported-key"
        );

        let jwk = VerificationMethod {
            public_key_multibase: None,
            method_type: MethodType::JsonWebKey2020,
            public_key_jwk: Some(PublicJwk {
                kty: "EC".into(),
                crv: "P-256".into(),
                x: "AA".into(),
                y: Some("AA".into()),
            }),
            ..method.clone()
        };
        assert_eq!(
            jwk.ed25519_public_key().unwrap_err().code(),
            "did-doc-unsupported-key"
        );
    }

    #[test]
    fn reads_context_as_one_or_many_and_ignores_unknown_members() {
        let doc: DidDocument = serde_json::from_value(serde_json::json!({
            "@context": DID_CONTEXT_V1,
            "id": "did:web:example.com",
            "alsoKnownAs": ["https://example.com"],
        }))
        .unwrap();
        assert_eq!(doc.context, vec![DID_CONTEXT_V1.to_string()]);
        let refused = serde_json::from_value::<DidDocument>(serde_json::json!({
            "@context": [DID_CONTEXT_V1, {"@vocab": "https://example.com#"}],
            "id": "did:web:example.com",
        }));
        assert!(refused.is_err());
    }

    #[test]
    fn method_types_round_trip_as_text() {
        for name in [
            "Multikey",
            "Ed25519VerificationKey2020",
            "X25519KeyAgreementKey2020",
            "Ed25519VerificationKey2018",
            "X25519KeyAgreementKey2019",
            "JsonWebKey2020",
            "SomethingElse",
        ] {
            let parsed = MethodType::from(name.to_string());
            assert_eq!(parsed.as_str(), name);
            assert_eq!(String::from(parsed), name);
        }
    }
}
