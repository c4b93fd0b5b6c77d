//! Client assertions (RFC 7523 §2.2, as SMART Backend Services uses them):
//! a short-lived JWT, signed by the participant's did:key, that the client
//! exchanges for an access token.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hygeia_identity::{Did, Keypair};
use rand::rngs::OsRng;
use rand::RngCore;
use serde::Deserialize;
use serde_json::Value;

use super::error::TokenError;
use super::jti::JtiCache;
use super::jws::{self, present};

/// Clock skew tolerated on `exp`, `iat` and `nbf`, in seconds.
pub const ASSERTION_CLOCK_SKEW_SECS: i64 = 60;

/// How far after now an assertion's `exp` may be (plus the skew): a
/// client assertion is for one exchange, made just before it.
pub const MAX_ASSERTION_LIFETIME_SECS: i64 = 300;

/// Longest accepted `jti`, in characters.
pub const MAX_JTI_CHARS: usize = 128;

/// The claims the verifier looks at; others are ignored (RFC 7519 §4).
/// As in the header, a claim given twice is refused.
#[derive(Debug, Deserialize)]
pub(crate) struct Claims {
    #[serde(default, deserialize_with = "present")]
    pub(crate) iss: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub(crate) sub: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub(crate) aud: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub(crate) exp: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub(crate) iat: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub(crate) nbf: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub(crate) jti: Option<Value>,
}

/// A client assertion for `audience` (the token endpoint URL), made by
/// `key` at `now` and expiring `lifetime_secs` later, with a random `jti`.
///
/// `iss` and `sub` are the key's did:key. For the CLI and tests; a client
/// in another language builds the same JWT with any JOSE library.
pub fn client_assertion(key: &Keypair, audience: &str, now: i64, lifetime_secs: i64) -> String {
    let did = key.did();
    let claims = serde_json::json!({
        "iss": did.as_str(),
        "sub": did.as_str(),
        "aud": audience,
        "iat": now,
        "exp": now.saturating_add(lifetime_secs),
        "jti": random_jti(),
    });
    jws::sign(key, &claims.to_string())
}

/// 128 random bits, base64url (22 characters).
fn random_jti() -> String {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Verifies a client assertion for the token endpoint at `now` (Unix
/// seconds) and gives the authenticated participant. `audiences` are the
/// names of the token endpoint an `aud` may use (a node gives its DID, and
/// its token endpoint URL when that URL is configured rather than taken
/// from the request); at least one.
///
/// Checks, in order (the first failure is the answer): size and JWS
/// structure; header (`alg` exactly `EdDSA`, no `crit`, `typ` `JWT` if
/// present, `kid` if present naming the issuer's key); claims present and
/// typed; `iss` an Ed25519 did:key and `sub` equal to it; `aud`; `exp`,
/// `iat`, `nbf`; `jti`; the signature, with the issuer's key and strict
/// Ed25519; and last, that this (iss, jti) has not been used. Only an
/// assertion that passed everything else spends its jti, so a forged copy
/// cannot burn a legitimate client's jti.
pub fn verify_client_assertion(
    jwt: &str,
    audiences: &[&str],
    now: i64,
    seen: &JtiCache,
) -> Result<Did, TokenError> {
    let jws = jws::parse(jwt)?;
    let claims: Claims = jws::json_object(&jws.payload, "the payload")?;

    let did = issuer(&claims)?;
    check_kid(jws.header.kid.as_ref(), &did)?;
    check_audience(claims.aud.as_ref(), audiences)?;
    let exp = check_times(&claims, now)?;
    let jti = jti(&claims)?;

    did.public_key()
        .verify(jws.signing_input.as_bytes(), &jws.signature)
        .map_err(|_| TokenError::BadSignature {
            iss: did.as_str().to_string(),
        })?;

    seen.insert(
        did.as_str(),
        jti,
        exp.saturating_add(ASSERTION_CLOCK_SKEW_SECS),
        now,
    )?;
    Ok(did)
}

/// `iss` is the participant's did:key and `sub` the same (RFC 7523 §3:
/// for client authentication, the subject is the client itself).
fn issuer(claims: &Claims) -> Result<Did, TokenError> {
    let iss = match &claims.iss {
        None => return Err(TokenError::claims("iss is required: your did:key")),
        Some(Value::String(iss)) => iss,
        Some(other) => {
            return Err(TokenError::claims(format!(
                "iss must be a string, not {other}"
            )))
        }
    };
    let did = Did::parse_cached(iss)
        .map_err(|e| TokenError::issuer(format!("iss must be an Ed25519 did:key: {e}")))?;
    match &claims.sub {
        None => Err(TokenError::claims(
            "sub is required: the same did:key as iss",
        )),
        Some(Value::String(sub)) if sub == iss => Ok(did),
        Some(other) => Err(TokenError::issuer(format!(
            "sub must equal iss ({iss}), not {other}"
        ))),
    }
}

/// A `kid` is not needed (the key is in `iss`), but many JOSE libraries
/// always send one: it must then name the issuer's key, as the DID or its
/// verification method (`did:key:z…#z…`).
fn check_kid(kid: Option<&Value>, did: &Did) -> Result<(), TokenError> {
    match kid {
        None => Ok(()),
        Some(Value::String(kid)) if kid == did.as_str() || *kid == did.verification_method() => {
            Ok(())
        }
        Some(other) => Err(TokenError::header(format!(
            "kid, when present, must be iss or its verification method {}, not {other}",
            did.verification_method()
        ))),
    }
}

/// `aud` names the token endpoint (one of `expected`), or is an array
/// containing such a name (RFC 7519 §4.1.3), compared exactly.
pub(crate) fn check_audience(aud: Option<&Value>, expected: &[&str]) -> Result<(), TokenError> {
    let names = || {
        expected
            .iter()
            .map(|e| format!("{e:?}"))
            .collect::<Vec<_>>()
            .join(" or ")
    };
    let ok = match aud {
        None => {
            return Err(TokenError::claims(format!(
                "aud is required: {} (this token endpoint)",
                names()
            )))
        }
        Some(Value::String(aud)) => expected.contains(&aud.as_str()),
        Some(Value::Array(auds)) => {
            if !auds.iter().all(Value::is_string) {
                return Err(TokenError::claims(
                    "aud must be a string or an array of strings",
                ));
            }
            auds.iter()
                .any(|a| a.as_str().is_some_and(|a| expected.contains(&a)))
        }
        Some(other) => {
            return Err(TokenError::claims(format!(
                "aud must be a string or an array of strings, not {other}"
            )))
        }
    };
    if ok {
        Ok(())
    } else {
        Err(TokenError::WrongAudience { expected: names() })
    }
}

/// `exp` is required, not past and not too far ahead; `iat` and `nbf`, if
/// given, are not in the future. Each with [`ASSERTION_CLOCK_SKEW_SECS`].
/// Gives `exp`.
pub(crate) fn check_times(claims: &Claims, now: i64) -> Result<i64, TokenError> {
    let skew = ASSERTION_CLOCK_SKEW_SECS;
    let exp = numeric_date("exp", claims.exp.as_ref())?.ok_or_else(|| {
        TokenError::claims(format!(
            "exp is required: the expiry in Unix seconds, at most {MAX_ASSERTION_LIFETIME_SECS} s \
             from now"
        ))
    })?;
    if exp.saturating_add(skew) < now {
        return Err(TokenError::Expired { exp, now, skew });
    }
    let latest = now
        .saturating_add(MAX_ASSERTION_LIFETIME_SECS)
        .saturating_add(skew);
    if exp > latest {
        return Err(TokenError::LifetimeTooLong {
            exp,
            now,
            max: MAX_ASSERTION_LIFETIME_SECS,
            skew,
        });
    }
    for (claim, value) in [("iat", &claims.iat), ("nbf", &claims.nbf)] {
        if let Some(value) = numeric_date(claim, value.as_ref())? {
            if value > now.saturating_add(skew) {
                return Err(TokenError::NotYetValid {
                    claim,
                    value,
                    now,
                    skew,
                });
            }
        }
    }
    Ok(exp)
}

/// A NumericDate claim (RFC 7519 §2), accepted as whole Unix seconds.
fn numeric_date(claim: &str, value: Option<&Value>) -> Result<Option<i64>, TokenError> {
    match value {
        None => Ok(None),
        Some(v) => v.as_i64().map(Some).ok_or_else(|| {
            TokenError::claims(format!(
                "{claim} must be an integer number of Unix seconds, not {v}"
            ))
        }),
    }
}

/// `jti` is required: 1 to [`MAX_JTI_CHARS`] characters.
pub(crate) fn jti(claims: &Claims) -> Result<&str, TokenError> {
    match &claims.jti {
        None => Err(TokenError::claims(
            "jti is required: a new unique string for every client assertion",
        )),
        Some(Value::String(jti)) if (1..=MAX_JTI_CHARS).contains(&jti.chars().count()) => Ok(jti),
        Some(Value::String(_)) => Err(TokenError::claims(format!(
            "jti must be 1 to {MAX_JTI_CHARS} characters"
        ))),
        Some(other) => Err(TokenError::claims(format!(
            "jti must be a string, not {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUD: &str = "https://node.example/auth/token";
    const NOW: i64 = 1_767_225_600;

    #[test]
    fn made_here_verifies_here() {
        let key = Keypair::from_seed(&[3; 32]);
        let jwt = client_assertion(&key, AUD, NOW, 120);
        let did = verify_client_assertion(&jwt, &[AUD], NOW, &JtiCache::default()).unwrap();
        assert_eq!(did, key.did());
    }

    #[test]
    fn random_jtis_differ() {
        let (a, b) = (random_jti(), random_jti());
        assert_eq!(a.len(), 22);
        assert_ne!(a, b);
    }

    #[test]
    fn time_bounds_are_inclusive_of_the_skew() {
        let claims = |exp: i64, iat: Option<i64>| Claims {
            iss: None,
            sub: None,
            aud: None,
            exp: Some(exp.into()),
            iat: iat.map(Value::from),
            nbf: None,
            jti: None,
        };
        let skew = ASSERTION_CLOCK_SKEW_SECS;
        let max = MAX_ASSERTION_LIFETIME_SECS;
        assert!(check_times(&claims(NOW - skew, None), NOW).is_ok());
        assert!(check_times(&claims(NOW - skew - 1, None), NOW).is_err());
        assert!(check_times(&claims(NOW + max + skew, None), NOW).is_ok());
        assert!(check_times(&claims(NOW + max + skew + 1, None), NOW).is_err());
        assert!(check_times(&claims(NOW + 60, Some(NOW + skew)), NOW).is_ok());
        assert!(check_times(&claims(NOW + 60, Some(NOW + skew + 1)), NOW).is_err());
        assert!(check_times(&claims(i64::MAX, None), i64::MAX).is_ok());
    }

    #[test]
    fn numeric_dates_are_integers() {
        assert_eq!(numeric_date("exp", Some(&Value::from(5))), Ok(Some(5)));
        assert!(numeric_date("exp", Some(&Value::from(5.5))).is_err());
        assert!(numeric_date("exp", Some(&Value::from("5"))).is_err());
        assert!(numeric_date("exp", Some(&Value::Null)).is_err());
    }

    #[test]
    fn kid_must_name_the_issuer() {
        let did = Keypair::from_seed(&[3; 32]).did();
        let other = Keypair::from_seed(&[4; 32]).did();
        assert!(check_kid(None, &did).is_ok());
        assert!(check_kid(Some(&did.as_str().into()), &did).is_ok());
        assert!(check_kid(Some(&did.verification_method().into()), &did).is_ok());
        assert!(check_kid(Some(&other.as_str().into()), &did).is_err());
        assert!(check_kid(Some(&Value::from(1)), &did).is_err());
    }

    #[test]
    fn audience_forms() {
        let did = "did:key:z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw";
        assert!(check_audience(Some(&AUD.into()), &[did, AUD]).is_ok());
        assert!(check_audience(Some(&did.into()), &[did, AUD]).is_ok());
        assert!(check_audience(Some(&serde_json::json!(["x", did])), &[did, AUD]).is_ok());
        assert!(matches!(
            check_audience(Some(&AUD.into()), &[did]),
            Err(TokenError::WrongAudience { .. })
        ));
        let aud = &[AUD][..];
        assert!(check_audience(Some(&aud[0].into()), aud).is_ok());
        assert!(check_audience(Some(&serde_json::json!(["x", aud[0]])), aud).is_ok());
        assert!(matches!(
            check_audience(Some(&serde_json::json!(["x"])), aud),
            Err(TokenError::WrongAudience { .. })
        ));
        assert!(matches!(
            check_audience(Some(&format!("{}/", aud[0]).into()), aud),
            Err(TokenError::WrongAudience { .. })
        ));
        assert!(matches!(
            check_audience(Some(&serde_json::json!([AUD, 1])), aud),
            Err(TokenError::Claims(_))
        ));
        assert!(matches!(
            check_audience(None, aud),
            Err(TokenError::Claims(_))
        ));
    }
}
