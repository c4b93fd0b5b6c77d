//! RFC 9421 Appendix B.2.6, "Signing a Request Using ed25519", with the
//! key test-key-ed25519 of Appendix B.1.4.
//!
//! The example covers components this scheme does not require or support
//! (`date`, `@authority`, `content-type`, `content-length`) and has no
//! nonce, so it is checked at the signature-base level: httpsig must build
//! the RFC's base byte for byte from the components and the RFC's
//! `Signature-Input`, and hygeia-identity's strict Ed25519 must accept the
//! RFC's signature over it.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use httpsig::prelude::message_component::{HttpMessageComponent, HttpMessageComponentId};
use httpsig::prelude::{HttpSignatureBase, HttpSignatureHeaders};
use hygeia_identity::{Keypair, PublicKey, Signature};

/// RFC 9421 Appendix B.1.4: test-key-ed25519, PKCS#8 private key (PEM body).
const TEST_KEY_ED25519_PRIVATE: &str =
    "MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF";
/// RFC 9421 Appendix B.1.4: test-key-ed25519, SubjectPublicKeyInfo (PEM body).
const TEST_KEY_ED25519_PUBLIC: &str =
    "MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=";

/// RFC 9421 Appendix B.2.6: the signature base (RFC 8792 line wrapping undone).
const SIGNATURE_BASE: &str = "\"date\": Tue, 20 Apr 2021 02:07:55 GMT\n\
\"@method\": POST\n\
\"@path\": /foo\n\
\"@authority\": example.com\n\
\"content-type\": application/json\n\
\"content-length\": 18\n\
\"@signature-params\": (\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" \"content-length\");created=1618884473;keyid=\"test-key-ed25519\"";

/// RFC 9421 Appendix B.2.6: the header fields added under the label sig-b26.
const SIGNATURE_INPUT: &str = "sig-b26=(\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" \"content-length\");created=1618884473;keyid=\"test-key-ed25519\"";
const SIGNATURE: &str = "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:";
const SIGNATURE_VALUE: &str =
    "wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==";

/// The last 32 bytes of a DER key structure: the raw Ed25519 seed or key.
fn last_32(der_base64: &str) -> [u8; 32] {
    let der = STANDARD.decode(der_base64).unwrap();
    der[der.len() - 32..].try_into().unwrap()
}

fn test_key() -> (Keypair, PublicKey) {
    // PKCS#8 v1: 16 bytes of structure, then the 32-byte seed.
    let private = STANDARD.decode(TEST_KEY_ED25519_PRIVATE).unwrap();
    assert_eq!(private.len(), 48);
    assert_eq!(
        &private[..16],
        &[
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20
        ]
    );
    // SPKI: 12 bytes of structure, then the 32-byte public key.
    let public = STANDARD.decode(TEST_KEY_ED25519_PUBLIC).unwrap();
    assert_eq!(public.len(), 44);
    assert_eq!(
        &public[..12],
        &[0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]
    );
    let key = Keypair::from_seed(&last_32(TEST_KEY_ED25519_PRIVATE));
    let public = PublicKey::from_bytes(&last_32(TEST_KEY_ED25519_PUBLIC)).unwrap();
    assert_eq!(key.public_key(), public);
    (key, public)
}

#[test]
fn rfc9421_b_2_6_signature_verifies_with_strict_ed25519() {
    let (key, public) = test_key();
    let signature = Signature::from_slice(&STANDARD.decode(SIGNATURE_VALUE).unwrap()).unwrap();
    assert!(public.verify(SIGNATURE_BASE.as_bytes(), &signature).is_ok());
    // Ed25519 is deterministic: signing the base gives the RFC's value.
    assert_eq!(key.sign(SIGNATURE_BASE.as_bytes()), signature);
    // One changed byte of the base and it no longer verifies.
    let tampered = SIGNATURE_BASE.replace("POST", "PUT");
    assert!(public.verify(tampered.as_bytes(), &signature).is_err());
}

#[test]
fn rfc9421_b_2_6_signature_base_is_built_byte_for_byte() {
    // The test-request of RFC 9421 Appendix B.2, as component values.
    let components: Vec<HttpMessageComponent> = [
        ("date", "Tue, 20 Apr 2021 02:07:55 GMT"),
        ("@method", "POST"),
        ("@path", "/foo"),
        ("@authority", "example.com"),
        ("content-type", "application/json"),
        ("content-length", "18"),
    ]
    .iter()
    .map(|(name, value)| {
        let id = HttpMessageComponentId::try_from(*name).unwrap();
        HttpMessageComponent::try_from((&id, [value.to_string()].as_slice())).unwrap()
    })
    .collect();

    let parsed = HttpSignatureHeaders::try_parse(SIGNATURE, SIGNATURE_INPUT).unwrap();
    assert_eq!(parsed.len(), 1);
    let headers = &parsed["sig-b26"];
    let base = HttpSignatureBase::try_new(&components, headers.signature_params()).unwrap();
    assert_eq!(base.to_string(), SIGNATURE_BASE);
    assert_eq!(headers.signature_input_header_value(), SIGNATURE_INPUT);
    assert_eq!(headers.signature_header_value(), SIGNATURE);

    let (_, public) = test_key();
    let signature = Signature::from_slice(&STANDARD.decode(SIGNATURE_VALUE).unwrap()).unwrap();
    assert!(public.verify(&base.as_bytes(), &signature).is_ok());
}
