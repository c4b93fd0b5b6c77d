//! Issuing a card: claims → minified JSON → raw DEFLATE → ES256 JWS.

use serde_json::{json, Value};

use super::deflate::deflate_raw;
use super::error::ShcError;
use super::file::file_json;
use super::jwk::IssuerKey;
use super::{jws, qr, FHIR_VERSION, HEALTH_CARD_TYPE, MAX_JWS_LEN, MAX_PAYLOAD_LEN};

/// An issued card: its JWS and the forms it is handed out in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthCard {
    jws: String,
}

impl HealthCard {
    /// The compact JWS.
    pub fn jws(&self) -> &str {
        &self.jws
    }

    pub fn into_jws(self) -> String {
        self.jws
    }

    /// The QR texts (`shc:/...`): one when the JWS fits a single version 22
    /// QR code (at most 1195 characters), otherwise numbered parts.
    pub fn to_qr_numeric(&self) -> Vec<String> {
        // The JWS is base64url and dots, all in the encodable range.
        qr::encode_checked(&self.jws)
    }

    pub fn fits_single_qr(&self) -> bool {
        self.jws.len() <= qr::SINGLE_QR_MAX_JWS_LEN
    }

    /// The `.smart-health-card` file: `{"verifiableCredential":[jws]}`
    /// (media type `application/smart-health-card`).
    pub fn to_file_json(&self) -> String {
        file_json(&[self.jws.as_str()])
    }
}

/// Signs a card for `bundle` (a FHIR Bundle, e.g. from
/// [`bundle_from_resources`](super::bundle_from_resources)) issued by
/// `iss` (an `https` URL without trailing `/`, whose
/// `/.well-known/jwks.json` publishes `key`), valid from `nbf` (seconds
/// since the epoch).
///
/// `types` are added after `https://smarthealth.cards#health-card`, which
/// is always first; repeats are dropped.
pub fn issue(
    bundle: &Value,
    types: &[&str],
    iss: &str,
    nbf: i64,
    key: &IssuerKey,
) -> Result<HealthCard, ShcError> {
    check_issuer_url(iss)?;
    if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(ShcError::InvalidIssuance(
            "the card's content must be a FHIR Bundle".into(),
        ));
    }
    let mut all_types = vec![HEALTH_CARD_TYPE];
    for kind in types {
        if kind.is_empty() {
            return Err(ShcError::InvalidIssuance(
                "a credential type cannot be empty".into(),
            ));
        }
        if !all_types.contains(kind) {
            all_types.push(kind);
        }
    }
    let claims = json!({
        "iss": iss,
        "nbf": nbf,
        "vc": {
            "type": all_types,
            "credentialSubject": {
                "fhirVersion": FHIR_VERSION,
                "fhirBundle": bundle,
            },
        },
    });
    // `Value`'s `Display` writes JSON without any whitespace.
    let payload = claims.to_string();
    if payload.len() > MAX_PAYLOAD_LEN {
        return Err(ShcError::TooLarge(format!(
            "the card's contents are {} bytes; verifiers accept at most {MAX_PAYLOAD_LEN}",
            payload.len()
        )));
    }
    let compressed = deflate_raw(payload.as_bytes())?;
    let header = json!({ "alg": "ES256", "zip": "DEF", "kid": key.kid() });
    let jws = jws::sign(&header, &compressed, key.signing_key());
    if jws.len() > MAX_JWS_LEN {
        return Err(ShcError::TooLarge(format!(
            "the card is {} characters; verifiers accept at most {MAX_JWS_LEN}",
            jws.len()
        )));
    }
    Ok(HealthCard { jws })
}

/// `https://`, a host, and no trailing `/` (the spec's rule, so that
/// `<iss>/.well-known/jwks.json` is the key set's address).
fn check_issuer_url(iss: &str) -> Result<(), ShcError> {
    let host = iss.strip_prefix("https://").unwrap_or_default();
    let well_formed = !host.is_empty()
        && !host.starts_with('/')
        && !iss.ends_with('/')
        && !iss.contains(['?', '#'])
        && iss.bytes().all(|b| b.is_ascii_graphic());
    if well_formed {
        Ok(())
    } else {
        Err(ShcError::InvalidIssuance(format!(
            "iss {iss:?} must be an https URL without a trailing '/', query or fragment"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shc::{bundle_from_resources, decode_qr, parse_file, verify, Jwks};

    const ISS: &str = "https://issuer.example.org/shc";

    fn key() -> IssuerKey {
        IssuerKey::from_secret_bytes(&[5; 32]).unwrap()
    }

    fn bundle() -> Value {
        bundle_from_resources(vec![
            json!({"resourceType": "Patient", "birthDate": "2000-01-01"}),
        ])
    }

    #[test]
    fn header_types_and_forms() {
        let card = issue(
            &bundle(),
            &["https://smarthealth.cards#immunization", HEALTH_CARD_TYPE],
            ISS,
            1_700_000_000,
            &key(),
        )
        .unwrap();
        let verified = verify(card.jws(), &|_| Some(key().jwks()), 1_700_000_000).unwrap();
        assert_eq!(
            verified.types(),
            [HEALTH_CARD_TYPE, "https://smarthealth.cards#immunization"]
        );
        assert_eq!(verified.kid(), key().kid());
        assert_eq!(verified.nbf(), 1_700_000_000.0);
        assert_eq!(verified.fhir_version(), FHIR_VERSION);

        let parsed = jws::UnverifiedJws::parse(card.jws()).unwrap();
        assert_eq!(parsed.header_str("alg"), Some("ES256"));
        assert_eq!(parsed.header_str("zip"), Some("DEF"));
        assert_eq!(parsed.header_str("kid"), Some(key().kid()));

        assert!(card.fits_single_qr());
        let qr = card.to_qr_numeric();
        assert_eq!(qr.len(), 1);
        assert_eq!(decode_qr(&[&qr[0]]).unwrap(), card.jws());
        assert_eq!(
            parse_file(card.to_file_json().as_bytes()).unwrap(),
            [card.jws()]
        );
    }

    #[test]
    fn a_large_card_is_split_for_qr() {
        // Incompressible text so the JWS outgrows one QR code.
        let mut state = 0x2545_f491_u32;
        let noise: String = (0..3000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                char::from(b'a' + (state % 26) as u8)
            })
            .collect();
        let bundle =
            bundle_from_resources(vec![json!({"resourceType": "Patient", "gender": noise})]);
        let card = issue(&bundle, &[], ISS, 1, &key()).unwrap();
        assert!(!card.fits_single_qr());
        let parts = card.to_qr_numeric();
        assert!(parts.len() >= 2);
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        assert_eq!(decode_qr(&refs).unwrap(), card.jws());
    }

    #[test]
    fn bad_issuance_inputs_are_refused() {
        for iss in [
            "http://issuer.example.org",
            "https://issuer.example.org/",
            "https://",
            "https:///x",
            "https://issuer.example.org/a b",
            "https://issuer.example.org?x=1",
            "issuer.example.org",
        ] {
            let err = issue(&bundle(), &[], iss, 1, &key()).unwrap_err();
            assert_eq!(err.code(), "shc-invalid-issuance", "{iss}");
        }
        let err = issue(&json!({"resourceType": "Patient"}), &[], ISS, 1, &key()).unwrap_err();
        assert_eq!(err.code(), "shc-invalid-issuance");
        let err = issue(&bundle(), &[""], ISS, 1, &key()).unwrap_err();
        assert_eq!(err.code(), "shc-invalid-issuance");
    }

    #[test]
    fn a_card_too_large_to_verify_is_not_issued() {
        let big = "x".repeat(MAX_PAYLOAD_LEN);
        let bundle = json!({"resourceType": "Bundle", "type": "collection", "id": big});
        let err = issue(&bundle, &[], ISS, 1, &key()).unwrap_err();
        assert_eq!(err.code(), "shc-too-large");
    }

    #[test]
    fn the_published_key_set_verifies_the_card() {
        let card = issue(&bundle(), &[], ISS, 1, &key()).unwrap();
        let published = Jwks::from_value(&key().jwks().to_json()).unwrap();
        verify(
            card.jws(),
            &|iss| (iss == ISS).then(|| published.clone()),
            2,
        )
        .unwrap();
    }
}
