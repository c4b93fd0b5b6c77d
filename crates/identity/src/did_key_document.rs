//! Resolving a `did:key` to its DID document (W3C CCG did:key method).
//!
//! [`Did`] means "an Ed25519 signer"; an X25519 did:key names a
//! key-agreement key that can never sign, so resolution has a type of its
//! own, [`DidKey`], covering both. An Ed25519 did:key's document also
//! carries the X25519 key derived from it (RFC 7748 §4.1 birational map),
//! as the did:key method and its test vectors do.

use std::fmt;
use std::str::FromStr;

use base64::Engine;

use crate::did_document::{
    DidDocument, MethodReference, MethodType, PublicJwk, VerificationMethod, DID_CONTEXT_V1,
    MULTIKEY_CONTEXT_V1,
};
use crate::did_key::{Did, DidError, PREFIX};
use crate::multicodec::{self, BASE58BTC, ED25519_PUB, X25519_PUB};

/// Longest did:key accepted for resolution: long enough to read an RSA-4096
/// did:key and refuse it by its key type, short enough to bound base58
/// decoding (quadratic in the length).
const MAX_RESOLVE_LEN: usize = 2048;

/// A did:key of a supported key type.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum DidKey {
    /// An Ed25519 signing key (which also yields an X25519 agreement key).
    Ed25519(Did),
    /// An X25519 key-agreement key: never a signer.
    X25519(X25519DidKey),
}

/// A parsed `did:key` naming an X25519 public key (multicodec 0xec).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct X25519DidKey {
    text: String,
    key: [u8; 32],
}

impl X25519DidKey {
    pub fn from_public_key(key: [u8; 32]) -> Self {
        let text = format!("{PREFIX}{}", multicodec::encode_key(X25519_PUB, &key));
        X25519DidKey { text, key }
    }

    pub fn public_key(&self) -> &[u8; 32] {
        &self.key
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for X25519DidKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "X25519DidKey({})", self.text)
    }
}

/// How verification methods are written in a resolved document.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum KeyFormat {
    /// `Multikey` with `publicKeyMultibase` (the current did:key method).
    #[default]
    Multikey,
    /// `Ed25519VerificationKey2020` / `X25519KeyAgreementKey2020` with
    /// `publicKeyMultibase`.
    Suite2020,
    /// `Ed25519VerificationKey2018` / `X25519KeyAgreementKey2019` with
    /// `publicKeyBase58` (the W3C CCG test vectors).
    Suite2018,
    /// `JsonWebKey2020` with `publicKeyJwk`.
    JsonWebKey2020,
}

impl KeyFormat {
    fn contexts(self, has_signing_key: bool) -> Vec<String> {
        let mut contexts = vec![DID_CONTEXT_V1];
        match self {
            KeyFormat::Multikey => contexts.push(MULTIKEY_CONTEXT_V1),
            KeyFormat::Suite2020 => {
                if has_signing_key {
                    contexts.push("https://w3id.org/security/suites/ed25519-2020/v1");
                }
                contexts.push("https://w3id.org/security/suites/x25519-2020/v1");
            }
            KeyFormat::Suite2018 => {
                if has_signing_key {
                    contexts.push("https://w3id.org/security/suites/ed25519-2018/v1");
                }
                contexts.push("https://w3id.org/security/suites/x25519-2019/v1");
            }
            KeyFormat::JsonWebKey2020 => {
                contexts.push("https://w3id.org/security/suites/jws-2020/v1")
            }
        }
        contexts.into_iter().map(str::to_string).collect()
    }

    fn method(self, did: &str, codec: u64, key: &[u8; 32]) -> VerificationMethod {
        let multikey = multicodec::encode_key(codec, key);
        let signing = codec == ED25519_PUB;
        let mut method = VerificationMethod {
            id: format!("{did}#{multikey}"),
            method_type: MethodType::Multikey,
            controller: did.to_string(),
            public_key_multibase: None,
            public_key_base58: None,
            public_key_jwk: None,
        };
        match self {
            KeyFormat::Multikey => method.public_key_multibase = Some(multikey),
            KeyFormat::Suite2020 => {
                method.method_type = if signing {
                    MethodType::Ed25519VerificationKey2020
                } else {
                    MethodType::X25519KeyAgreementKey2020
                };
                method.public_key_multibase = Some(multikey);
            }
            KeyFormat::Suite2018 => {
                method.method_type = if signing {
                    MethodType::Ed25519VerificationKey2018
                } else {
                    MethodType::X25519KeyAgreementKey2019
                };
                method.public_key_base58 = Some(bs58::encode(key).into_string());
            }
            KeyFormat::JsonWebKey2020 => {
                method.method_type = MethodType::JsonWebKey2020;
                method.public_key_jwk = Some(PublicJwk {
                    kty: "OKP".to_string(),
                    crv: if signing { "Ed25519" } else { "X25519" }.to_string(),
                    x: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key),
                    y: None,
                });
            }
        }
        method
    }
}

impl DidKey {
    pub fn as_str(&self) -> &str {
        match self {
            DidKey::Ed25519(did) => did.as_str(),
            DidKey::X25519(did) => did.as_str(),
        }
    }

    /// The signer, if this did:key is one.
    pub fn as_signer(&self) -> Option<&Did> {
        match self {
            DidKey::Ed25519(did) => Some(did),
            DidKey::X25519(_) => None,
        }
    }

    /// The X25519 key-agreement key: the key itself, or the one derived
    /// from an Ed25519 key.
    pub fn x25519_public_key(&self) -> [u8; 32] {
        match self {
            DidKey::Ed25519(did) => did.public_key().to_x25519(),
            DidKey::X25519(did) => *did.public_key(),
        }
    }

    /// The DID document, verification methods written as `format` says.
    ///
    /// An Ed25519 key is listed for authentication, assertion and both
    /// capability relationships, its derived X25519 key for key agreement;
    /// an X25519 key for key agreement only.
    pub fn document(&self, format: KeyFormat) -> DidDocument {
        let did = self.as_str();
        let agreement = format.method(did, X25519_PUB, &self.x25519_public_key());
        let key_agreement = vec![MethodReference::Reference(agreement.id.clone())];
        let mut document = DidDocument {
            context: format.contexts(self.as_signer().is_some()),
            id: did.to_string(),
            verification_method: vec![],
            assertion_method: vec![],
            authentication: vec![],
            capability_invocation: vec![],
            capability_delegation: vec![],
            key_agreement,
            service: vec![],
        };
        if let Some(signer) = self.as_signer() {
            let signing = format.method(did, ED25519_PUB, &signer.public_key().to_bytes());
            let reference = || vec![MethodReference::Reference(signing.id.clone())];
            document.assertion_method = reference();
            document.authentication = reference();
            document.capability_invocation = reference();
            document.capability_delegation = reference();
            document.verification_method.push(signing);
        }
        document.verification_method.push(agreement);
        document
    }
}

impl FromStr for DidKey {
    type Err = DidError;

    fn from_str(s: &str) -> Result<Self, DidError> {
        if s.len() > MAX_RESOLVE_LEN {
            return Err(DidError::TooLong);
        }
        let encoded = s
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.strip_prefix(BASE58BTC))
            .ok_or(DidError::NotDidKey)?;
        let bytes = bs58::decode(encoded)
            .into_vec()
            .map_err(|_| DidError::BadBase58)?;
        let (codec, key) = multicodec::split_codec(&bytes).ok_or(DidError::UnsupportedKeyType)?;
        match codec {
            ED25519_PUB => s.parse().map(DidKey::Ed25519),
            X25519_PUB => {
                let key: [u8; 32] = key.try_into().map_err(|_| DidError::BadKeyLength)?;
                check_x25519(&key)?;
                let did = X25519DidKey::from_public_key(key);
                if did.text != s {
                    return Err(DidError::NonCanonical);
                }
                Ok(DidKey::X25519(did))
            }
            other => Err(DidError::UnsupportedKeyCodec { codec: other }),
        }
    }
}

/// An X25519 public key must be a canonical u-coordinate (below
/// p = 2^255 - 19, so the top bit is clear) of a point whose order is not
/// small: agreement with a small-order key gives an all-zero secret.
fn check_x25519(key: &[u8; 32]) -> Result<(), DidError> {
    use curve25519_dalek::montgomery::MontgomeryPoint;
    use curve25519_dalek::scalar::Scalar;
    // p, little-endian: ed ff … ff 7f.
    let mut p = [0xff; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    let below_p = key.iter().rev().cmp(p.iter().rev()) == std::cmp::Ordering::Less;
    if !below_p {
        return Err(DidError::NonCanonical);
    }
    // [8]P is the identity (u = 0 on the ladder) exactly for the points
    // of the curve's and its twist's small-order subgroups.
    let eight = Scalar::from(8u8);
    if (MontgomeryPoint(*key) * eight).to_bytes() == [0; 32] {
        return Err(DidError::SmallOrder);
    }
    Ok(())
}

impl fmt::Display for DidKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Resolves an Ed25519 or X25519 did:key to its DID document, with
/// `Multikey` verification methods. Other key types (secp256k1, P-256,
/// BLS12-381, RSA…) are refused with `unsupported-key-type`.
pub fn resolve_did_key(did: &str) -> Result<DidDocument, DidError> {
    resolve_did_key_as(did, KeyFormat::Multikey)
}

/// Like [`resolve_did_key`], writing verification methods as `format` says.
pub fn resolve_did_key_as(did: &str, format: KeyFormat) -> Result<DidDocument, DidError> {
    Ok(did.parse::<DidKey>()?.document(format))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::did_document::Relationship;
    use crate::keys::Keypair;

    #[test]
    fn ed25519_document_lists_the_signer_and_its_agreement_key() {
        let key = Keypair::from_seed(&[4; 32]);
        let did = key.did();
        let doc = resolve_did_key(did.as_str()).unwrap();
        assert_eq!(doc.id, did.as_str());
        assert_eq!(doc.context, [DID_CONTEXT_V1, MULTIKEY_CONTEXT_V1]);
        let vm = did.verification_method();
        for relationship in [
            Relationship::AssertionMethod,
            Relationship::Authentication,
            Relationship::CapabilityInvocation,
            Relationship::CapabilityDelegation,
        ] {
            assert_eq!(doc.ed25519_key(&vm, relationship), Ok(key.public_key()));
        }
        let agreement = doc.key_agreement[0].clone();
        let MethodReference::Reference(agreement) = agreement else {
            panic!("reference expected")
        };
        assert_eq!(doc.x25519_key(&agreement), Ok(key.public_key().to_x25519()));
        // The agreement key is not a signer.
        assert!(doc
            .ed25519_key(&agreement, Relationship::AssertionMethod)
            .is_err());
    }

    #[test]
    fn every_format_reads_back_the_same_keys() {
        let key = Keypair::from_seed(&[5; 32]);
        let did = key.did();
        for format in [
            KeyFormat::Multikey,
            KeyFormat::Suite2020,
            KeyFormat::Suite2018,
            KeyFormat::JsonWebKey2020,
        ] {
            let doc = resolve_did_key_as(did.as_str(), format).unwrap();
            let vm = did.verification_method();
            assert_eq!(
                doc.ed25519_key(&vm, Relationship::AssertionMethod),
                Ok(key.public_key()),
                "{format:?}"
            );
            let json = serde_json::to_value(&doc).unwrap();
            let back: DidDocument = serde_json::from_value(json).unwrap();
            assert_eq!(back, doc);
        }
    }

    #[test]
    fn x25519_did_keys_resolve_for_key_agreement_only() {
        let key = [7u8; 32];
        let did = X25519DidKey::from_public_key(key);
        assert!(did.as_str().starts_with("did:key:z6LS"));
        let parsed: DidKey = did.as_str().parse().unwrap();
        assert_eq!(parsed.as_signer(), None);
        let doc = parsed.document(KeyFormat::Multikey);
        assert!(doc.assertion_method.is_empty() && doc.authentication.is_empty());
        let vm = format!("{}#{}", did.as_str(), &did.as_str()[PREFIX.len()..]);
        assert_eq!(doc.x25519_key(&vm), Ok(key));
        // The X25519 key is still not a `Did`.
        assert_eq!(
            did.as_str().parse::<Did>(),
            Err(DidError::UnsupportedKeyType)
        );
    }

    #[test]
    fn refuses_malformed_did_keys_with_codes() {
        let cases = [
            ("did:web:example.com", "not-did-key"),
            ("did:key:0OIl", "not-did-key"),
            ("did:key:z0OIl", "did-key-bad-base58"),
            ("did:key:z", "unsupported-key-type"),
        ];
        for (text, code) in cases {
            assert_eq!(text.parse::<DidKey>().unwrap_err().code(), code, "{text}");
        }
        let long = format!("did:key:z{}", "2".repeat(MAX_RESOLVE_LEN));
        assert_eq!(long.parse::<DidKey>().unwrap_err().code(), "did-too-long");
        // An X25519 key of 31 bytes.
        let mut short = vec![0xec, 0x01];
        short.extend_from_slice(&[1; 31]);
        let text = format!("did:key:z{}", bs58::encode(short).into_string());
        assert_eq!(
            text.parse::<DidKey>().unwrap_err().code(),
            "did-key-bad-length"
        );
        // X25519: small-order u-coordinates (0, 1, p - 1, the two points
        // of order 8) and encodings of u at or above p.
        let hex32 = |text: &str| -> [u8; 32] {
            let mut out = [0u8; 32];
            for (i, byte) in out.iter_mut().enumerate() {
                *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap();
            }
            out
        };
        let small_order = [
            "0000000000000000000000000000000000000000000000000000000000000000",
            "0100000000000000000000000000000000000000000000000000000000000000",
            "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
            "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        ];
        for hex in small_order {
            let did = X25519DidKey::from_public_key(hex32(hex));
            let err = did.as_str().parse::<DidKey>().unwrap_err();
            assert_eq!(err.code(), "did-key-small-order", "{hex}");
        }
        let non_canonical = [
            "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            "0900000000000000000000000000000000000000000000000000000000000080",
            "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        ];
        for hex in non_canonical {
            let did = X25519DidKey::from_public_key(hex32(hex));
            let err = did.as_str().parse::<DidKey>().unwrap_err();
            assert_eq!(err.code(), "did-key-non-canonical", "{hex}");
        }
        // Ed25519 ones are refused the same way when resolving.
        let mut identity = vec![0xed, 0x01, 1];
        identity.extend_from_slice(&[0; 31]);
        let text = format!("did:key:z{}", bs58::encode(identity).into_string());
        assert_eq!(
            resolve_did_key(&text).unwrap_err().code(),
            "did-key-small-order"
        );
        // A leading zero digit on an X25519 did:key.
        let did = X25519DidKey::from_public_key([8; 32]);
        let padded = did.as_str().replacen("did:key:z", "did:key:z1", 1);
        assert!(padded.parse::<DidKey>().is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_key_resolves_to_a_document_naming_it(seed in proptest::array::uniform32(proptest::num::u8::ANY)) {
            let key = Keypair::from_seed(&seed);
            let doc = resolve_did_key(key.did().as_str()).unwrap();
            let vm = key.did().verification_method();
            proptest::prop_assert_eq!(doc.ed25519_key(&vm, Relationship::AssertionMethod), Ok(key.public_key()));
            // An X25519 key pair's public key, as key agreement makes one.
            let secret = x25519_dalek::StaticSecret::from(seed);
            let x = X25519DidKey::from_public_key(x25519_dalek::PublicKey::from(&secret).to_bytes());
            let parsed: DidKey = x.as_str().parse().unwrap();
            proptest::prop_assert_eq!(parsed, DidKey::X25519(x));
        }
    }
}
