//! Verifying a card: JWS → issuer's key → signature → claims → validity
//! period.

use serde_json::{Map, Value};

use super::deflate::inflate_raw;
use super::error::ShcError;
use super::jwk::Jwks;
use super::jws::UnverifiedJws;
use super::{CLOCK_SKEW_SECS, HEALTH_CARD_TYPE, MAX_JWS_LEN, MAX_PAYLOAD_LEN};

/// A card whose signature verified with a key of a trusted issuer and
/// whose validity period includes the time it was checked at. Only
/// [`verify`] makes one.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifiedHealthCard {
    iss: String,
    kid: String,
    nbf: f64,
    exp: Option<f64>,
    types: Vec<String>,
    fhir_version: String,
    fhir_bundle: Value,
    rid: Option<String>,
}

impl VerifiedHealthCard {
    /// The issuer URL (`iss`), as trusted by the caller.
    pub fn iss(&self) -> &str {
        &self.iss
    }

    /// The `kid` of the issuer key that signed the card.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Issuance time (`nbf`), seconds since the epoch. JWT NumericDates
    /// may be fractional, and real cards use fractions.
    pub fn nbf(&self) -> f64 {
        self.nbf
    }

    /// Expiry (`exp`), if the issuer set one.
    pub fn exp(&self) -> Option<f64> {
        self.exp
    }

    /// `vc.type`, starting with or containing
    /// `https://smarthealth.cards#health-card`.
    pub fn types(&self) -> &[String] {
        &self.types
    }

    pub fn has_type(&self, kind: &str) -> bool {
        self.types.iter().any(|t| t == kind)
    }

    /// `vc.credentialSubject.fhirVersion`.
    pub fn fhir_version(&self) -> &str {
        &self.fhir_version
    }

    /// `vc.credentialSubject.fhirBundle`.
    pub fn fhir_bundle(&self) -> &Value {
        &self.fhir_bundle
    }

    pub fn into_fhir_bundle(self) -> Value {
        self.fhir_bundle
    }

    /// `vc.rid`, the revocation identifier, for checking the issuer's
    /// revocation list (`<iss>/.well-known/crl/<kid>.json`).
    pub fn rid(&self) -> Option<&str> {
        self.rid.as_deref()
    }
}

/// Verifies a card's JWS at time `now` (seconds since the epoch).
///
/// `trusted_issuers` answers the key set of an issuer the caller trusts
/// (fetched from `<iss>/.well-known/jwks.json` and cached, or configured),
/// or `None` for any other issuer. The payload has to be decompressed
/// before the signature can be checked (it names the issuer), so it is
/// decompressed into at most [`MAX_PAYLOAD_LEN`] bytes.
///
/// `nbf` and `exp` are allowed [`CLOCK_SKEW_SECS`] of clock difference.
/// Revocation (`rid`) is left to the caller.
pub fn verify(
    jws: &str,
    trusted_issuers: &impl Fn(&str) -> Option<Jwks>,
    now: i64,
) -> Result<VerifiedHealthCard, ShcError> {
    if jws.len() > MAX_JWS_LEN {
        return Err(ShcError::TooLarge(format!(
            "a card holds at most {MAX_JWS_LEN} characters"
        )));
    }
    let parsed = UnverifiedJws::parse(jws)?;
    let kid = check_header(&parsed)?;
    let payload = inflate_raw(parsed.payload(), MAX_PAYLOAD_LEN)?;
    let claims = match serde_json::from_slice::<Value>(&payload) {
        Ok(Value::Object(claims)) => claims,
        _ => return Err(malformed("the contents are not a JSON object")),
    };
    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed("\"iss\" (the issuer) is missing"))?;
    let jwks = trusted_issuers(iss).ok_or_else(|| ShcError::UnknownIssuer(iss.to_owned()))?;
    let key = jwks.get(kid).ok_or_else(|| ShcError::UnknownKey {
        iss: iss.to_owned(),
        kid: kid.to_owned(),
    })?;
    parsed.verify(key.verifying_key())?;

    let card = read_claims(&claims, iss, kid)?;
    if card.nbf > (now.saturating_add(CLOCK_SKEW_SECS)) as f64 {
        return Err(ShcError::NotYetValid { nbf: card.nbf, now });
    }
    if let Some(exp) = card.exp {
        if exp < (now.saturating_sub(CLOCK_SKEW_SECS)) as f64 {
            return Err(ShcError::Expired { exp, now });
        }
    }
    Ok(card)
}

/// `alg: ES256`, `zip: DEF`, a `kid`, and no `crit` (no extension a
/// health card could require is understood here). Returns the `kid`.
fn check_header<'j>(jws: &'j UnverifiedJws<'_>) -> Result<&'j str, ShcError> {
    if jws.header_str("alg") != Some("ES256") {
        return Err(ShcError::UnsupportedHeader(
            "the signature algorithm (alg) must be ES256".into(),
        ));
    }
    if jws.header_str("zip") != Some("DEF") {
        return Err(ShcError::UnsupportedHeader(
            "the contents must be DEFLATE-compressed (zip: DEF)".into(),
        ));
    }
    if jws.has_header("crit") {
        return Err(ShcError::UnsupportedHeader(
            "critical header extensions (crit) are not supported".into(),
        ));
    }
    match jws.header_str("kid") {
        Some(kid) if !kid.is_empty() => Ok(kid),
        _ => Err(ShcError::UnsupportedHeader(
            "the header does not name the signing key (kid)".into(),
        )),
    }
}

fn read_claims(
    claims: &Map<String, Value>,
    iss: &str,
    kid: &str,
) -> Result<VerifiedHealthCard, ShcError> {
    let nbf = numeric_date(claims, "nbf")?
        .ok_or_else(|| malformed("\"nbf\" (the issuance time) is missing"))?;
    let exp = numeric_date(claims, "exp")?;
    let vc = claims
        .get("vc")
        .and_then(Value::as_object)
        .ok_or_else(|| malformed("\"vc\" (the credential) is missing"))?;
    let types: Vec<String> = vc
        .get("type")
        .and_then(Value::as_array)
        .and_then(|types| {
            types
                .iter()
                .map(|t| t.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
        })
        .ok_or_else(|| malformed("\"vc.type\" must be a list of strings"))?;
    if !types.iter().any(|t| t == HEALTH_CARD_TYPE) {
        return Err(malformed(&format!(
            "\"vc.type\" does not include {HEALTH_CARD_TYPE}"
        )));
    }
    let subject = vc
        .get("credentialSubject")
        .and_then(Value::as_object)
        .ok_or_else(|| malformed("\"vc.credentialSubject\" is missing"))?;
    let fhir_version = subject
        .get("fhirVersion")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed("\"fhirVersion\" is missing"))?;
    let fhir_bundle = subject
        .get("fhirBundle")
        .filter(|bundle| bundle.get("resourceType").and_then(Value::as_str) == Some("Bundle"))
        .ok_or_else(|| malformed("\"fhirBundle\" is not a FHIR Bundle"))?;
    let rid = match vc.get("rid") {
        None => None,
        Some(Value::String(rid)) => Some(rid.clone()),
        Some(_) => return Err(malformed("\"vc.rid\" must be a string")),
    };
    Ok(VerifiedHealthCard {
        iss: iss.to_owned(),
        kid: kid.to_owned(),
        nbf,
        exp,
        types,
        fhir_version: fhir_version.to_owned(),
        fhir_bundle: fhir_bundle.clone(),
        rid,
    })
}

/// A JWT NumericDate: a JSON number of seconds, possibly fractional.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>, ShcError> {
    match claims.get(name) {
        None => Ok(None),
        Some(value) => value
            .as_f64()
            .filter(|t| t.is_finite())
            .map(Some)
            .ok_or_else(|| malformed(&format!("\"{name}\" must be a number of seconds"))),
    }
}

fn malformed(reason: &str) -> ShcError {
    ShcError::MalformedPayload(reason.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shc::deflate::deflate_raw;
    use crate::shc::jws::sign;
    use crate::shc::IssuerKey;
    use serde_json::json;

    const ISS: &str = "https://issuer.example.org";
    const NOW: i64 = 1_700_000_000;

    fn key() -> IssuerKey {
        IssuerKey::from_secret_bytes(&[3; 32]).unwrap()
    }

    fn trusted(iss: &str) -> Option<Jwks> {
        (iss == ISS).then(|| key().jwks())
    }

    fn claims() -> Value {
        json!({
            "iss": ISS,
            "nbf": NOW - 10,
            "vc": {
                "type": [HEALTH_CARD_TYPE],
                "credentialSubject": {
                    "fhirVersion": "4.0.1",
                    "fhirBundle": {"resourceType": "Bundle", "type": "collection", "entry": []}
                }
            }
        })
    }

    fn default_header() -> Value {
        json!({"alg": "ES256", "zip": "DEF", "kid": key().kid()})
    }

    /// Signs raw payload bytes (compressed as given) under `header`.
    fn signed_bytes(header: &Value, payload: &[u8]) -> String {
        sign(header, &deflate_raw(payload).unwrap(), key().signing_key())
    }

    fn signed(claims: &Value) -> String {
        signed_bytes(&default_header(), claims.to_string().as_bytes())
    }

    fn code(jws: &str) -> &'static str {
        match verify(jws, &trusted, NOW) {
            Ok(_) => "ok",
            Err(e) => e.code(),
        }
    }

    #[test]
    fn a_well_formed_card_verifies() {
        let card = verify(&signed(&claims()), &trusted, NOW).unwrap();
        assert_eq!(card.iss(), ISS);
        assert_eq!(card.nbf(), (NOW - 10) as f64);
        assert_eq!(card.exp(), None);
        assert_eq!(card.rid(), None);
        assert!(card.has_type(HEALTH_CARD_TYPE));
        assert_eq!(card.fhir_bundle()["type"], "collection");
    }

    #[test]
    fn header_rules() {
        let payload = claims().to_string();
        let cases = [
            (
                json!({"alg": "ES384", "zip": "DEF", "kid": key().kid()}),
                "shc-unsupported-header",
            ),
            (
                json!({"alg": "none", "zip": "DEF", "kid": key().kid()}),
                "shc-unsupported-header",
            ),
            (
                json!({"alg": "ES256", "kid": key().kid()}),
                "shc-unsupported-header",
            ),
            (
                json!({"alg": "ES256", "zip": "GZIP", "kid": key().kid()}),
                "shc-unsupported-header",
            ),
            (
                json!({"alg": "ES256", "zip": "DEF"}),
                "shc-unsupported-header",
            ),
            (
                json!({"alg": "ES256", "zip": "DEF", "kid": ""}),
                "shc-unsupported-header",
            ),
            (
                json!({"alg": "ES256", "zip": "DEF", "kid": key().kid(), "crit": ["b64"]}),
                "shc-unsupported-header",
            ),
            (
                json!({"alg": "ES256", "zip": "DEF", "kid": "someone-else"}),
                "shc-unknown-key",
            ),
            (
                json!({"alg": "ES256", "zip": "DEF", "kid": key().kid(), "typ": "JWT"}),
                "ok",
            ),
        ];
        for (header, expected) in cases {
            assert_eq!(
                code(&signed_bytes(&header, payload.as_bytes())),
                expected,
                "{header}"
            );
        }
    }

    #[test]
    fn an_uncompressed_payload_fails_to_inflate() {
        let jws = sign(
            &default_header(),
            claims().to_string().as_bytes(),
            key().signing_key(),
        );
        assert_eq!(code(&jws), "shc-inflate-failed");
    }

    #[test]
    fn a_decompression_bomb_is_too_large() {
        let mut bomb = b"{\"iss\":\"".to_vec();
        bomb.resize(MAX_PAYLOAD_LEN + 1, b'a');
        let jws = signed_bytes(&default_header(), &bomb);
        assert!(jws.len() < 8 * 1024);
        assert_eq!(code(&jws), "shc-too-large");
        let long = "a".repeat(MAX_JWS_LEN + 1);
        assert_eq!(code(&long), "shc-too-large");
    }

    #[test]
    fn malformed_payloads() {
        let broken: Vec<Vec<u8>> = vec![
            b"{\"iss\":".to_vec(),
            b"[]".to_vec(),
            b"\xff\xfe".to_vec(),
            json!({"nbf": 1}).to_string().into_bytes(),
            json!({"iss": 7}).to_string().into_bytes(),
        ];
        for payload in broken {
            assert_eq!(
                code(&signed_bytes(&default_header(), &payload)),
                "shc-malformed-payload",
                "{}",
                String::from_utf8_lossy(&payload)
            );
        }
        let edits: Vec<fn(&mut Value)> = vec![
            |c| {
                c.as_object_mut().unwrap().remove("nbf");
            },
            |c| c["nbf"] = json!("yesterday"),
            |c| c["exp"] = json!(null),
            |c| {
                c.as_object_mut().unwrap().remove("vc");
            },
            |c| c["vc"]["type"] = json!(["https://smarthealth.cards#covid19"]),
            |c| c["vc"]["type"] = json!([HEALTH_CARD_TYPE, 3]),
            |c| c["vc"]["type"] = json!(HEALTH_CARD_TYPE),
            |c| {
                c["vc"].as_object_mut().unwrap().remove("credentialSubject");
            },
            |c| {
                c["vc"]["credentialSubject"]
                    .as_object_mut()
                    .unwrap()
                    .remove("fhirVersion");
            },
            |c| c["vc"]["credentialSubject"]["fhirBundle"] = json!({"resourceType": "Patient"}),
            |c| c["vc"]["credentialSubject"]["fhirBundle"] = json!("Bundle"),
            |c| c["vc"]["rid"] = json!(12),
        ];
        for edit in edits {
            let mut c = claims();
            edit(&mut c);
            assert_eq!(code(&signed(&c)), "shc-malformed-payload", "{c}");
        }
    }

    #[test]
    fn issuer_and_key_lookup() {
        let mut c = claims();
        c["iss"] = json!("https://untrusted.example.org");
        assert_eq!(code(&signed(&c)), "shc-unknown-issuer");
        let other = IssuerKey::from_secret_bytes(&[4; 32]).unwrap();
        let jws = signed(&claims());
        let err = verify(&jws, &|_| Some(other.jwks()), NOW).unwrap_err();
        assert_eq!(err.code(), "shc-unknown-key");
    }

    #[test]
    fn a_signature_by_another_key_with_the_same_kid_is_bad() {
        let other = IssuerKey::from_secret_bytes(&[4; 32]).unwrap();
        let payload = deflate_raw(claims().to_string().as_bytes()).unwrap();
        let jws = sign(&default_header(), &payload, other.signing_key());
        assert_eq!(code(&jws), "shc-bad-signature");
    }

    #[test]
    fn a_tampered_payload_is_a_bad_signature() {
        let jws = signed(&claims());
        let mut forged_claims = claims();
        forged_claims["vc"]["credentialSubject"]["fhirBundle"]["type"] = json!("document");
        let forged = signed(&forged_claims);
        let (head, _) = jws.rsplit_once('.').unwrap();
        let (_, forged_rest) = forged.split_once('.').unwrap();
        let (forged_payload, _) = forged_rest.split_once('.').unwrap();
        let (header, _) = head.split_once('.').unwrap();
        let original_signature = jws.rsplit('.').next().unwrap();
        let spliced = format!("{header}.{forged_payload}.{original_signature}");
        assert_eq!(code(&spliced), "shc-bad-signature");
    }

    #[test]
    fn validity_period() {
        let mut c = claims();
        c["nbf"] = json!(NOW + CLOCK_SKEW_SECS + 1);
        assert_eq!(code(&signed(&c)), "shc-not-yet-valid");
        c["nbf"] = json!(NOW + CLOCK_SKEW_SECS);
        assert_eq!(code(&signed(&c)), "ok");
        c["nbf"] = json!((NOW + CLOCK_SKEW_SECS) as f64 + 0.5);
        assert_eq!(code(&signed(&c)), "shc-not-yet-valid");

        let mut c = claims();
        c["exp"] = json!(NOW - CLOCK_SKEW_SECS - 1);
        assert_eq!(code(&signed(&c)), "shc-expired");
        c["exp"] = json!(NOW - CLOCK_SKEW_SECS);
        assert_eq!(code(&signed(&c)), "ok");
        c["exp"] = json!(NOW + 3600);
        let card = verify(&signed(&c), &trusted, NOW).unwrap();
        assert_eq!(card.exp(), Some((NOW + 3600) as f64));
    }

    #[test]
    fn rid_and_extra_types_are_read() {
        let mut c = claims();
        c["vc"]["rid"] = json!("MKyCxh7p6uQ");
        c["vc"]["type"] = json!(["https://smarthealth.cards#immunization", HEALTH_CARD_TYPE]);
        let card = verify(&signed(&c), &trusted, NOW).unwrap();
        assert_eq!(card.rid(), Some("MKyCxh7p6uQ"));
        assert_eq!(card.types().len(), 2);
    }

    /// The published examples' payloads decompress to exactly the minified
    /// JSON bytes the spec shows (`*-c-jws-payload-minified.json`).
    #[test]
    fn published_payloads_inflate_to_the_minified_json() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/vectors/smart-health-cards"
        );
        for example in ["00", "02", "03"] {
            let read =
                |suffix: &str| std::fs::read(format!("{dir}/example-{example}-{suffix}")).unwrap();
            let jws = String::from_utf8(read("d-jws.txt")).unwrap();
            let parsed = UnverifiedJws::parse(jws.trim()).unwrap();
            let inflated = inflate_raw(parsed.payload(), MAX_PAYLOAD_LEN).unwrap();
            let minified = read("c-jws-payload-minified.json");
            assert_eq!(inflated, minified.trim_ascii(), "example {example}");
        }
    }
}
