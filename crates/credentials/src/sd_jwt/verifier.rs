//! The verifier's side (RFC 9901 §7.1 and §7.3, SD-JWT VC §3): issuer
//! signature with a key the caller's resolver picks, disclosures, the
//! SD-JWT VC profile (`typ`, `vct`, plain-only claims), validity times,
//! and the key binding JWT.

use serde_json::{Map, Value};

use super::disclosure::Disclosure;
use super::key_binding::{self, Freshness, KeyBindingExpectation};
use super::path::{ClaimPath, PathSegment};
use super::process::process;
use super::serialization::Parts;
use super::{numeric_date, SdJwtError, NOT_DISCLOSABLE, SD_ALG, SD_ALG_KEY, TYP};
use crate::jws::{Header, UnverifiedJws, VerifyingKey};
use crate::{jwk, strict_json};

/// Finds the key an issuer signs with. Given the (not yet verified) `iss`
/// and protected header (for `kid`); `None` when the issuer is not
/// trusted or has no such key.
pub trait IssuerKeyResolver {
    fn issuer_key(&self, issuer: &str, header: &Header) -> Option<VerifyingKey>;
}

impl<F> IssuerKeyResolver for F
where
    F: Fn(&str, &Header) -> Option<VerifyingKey>,
{
    fn issuer_key(&self, issuer: &str, header: &Header) -> Option<VerifyingKey> {
        self(issuer, header)
    }
}

/// What a verification checks beyond the credential itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyOptions {
    /// The current time, in seconds since the Unix epoch.
    pub now: i64,
    /// Tolerated clock difference for `exp`, `nbf`, `iat` and the KB-JWT.
    pub clock_skew_secs: i64,
    /// `Some`: the presentation must be key-bound (`cnf` and a KB-JWT for
    /// this audience and nonce). `None`: a KB-JWT, if present, must still
    /// be valid for the holder key, but audience and nonce are not checked.
    pub key_binding: Option<KeyBindingExpectation>,
    /// How old a KB-JWT's `iat` may be.
    pub kb_max_age_secs: i64,
}

impl VerifyOptions {
    pub const DEFAULT_CLOCK_SKEW_SECS: i64 = 60;
    pub const DEFAULT_KB_MAX_AGE_SECS: i64 = 300;

    /// Defaults, no key binding required.
    pub fn new(now: i64) -> Self {
        VerifyOptions {
            now,
            clock_skew_secs: Self::DEFAULT_CLOCK_SKEW_SECS,
            key_binding: None,
            kb_max_age_secs: Self::DEFAULT_KB_MAX_AGE_SECS,
        }
    }

    /// Requires a KB-JWT for this verifier and request.
    pub fn require_key_binding(
        mut self,
        audience: impl Into<String>,
        nonce: impl Into<String>,
    ) -> Self {
        self.key_binding = Some(KeyBindingExpectation {
            audience: audience.into(),
            nonce: nonce.into(),
        });
        self
    }
}

/// A presentation that verified: only [`verify_presentation`] makes one.
#[derive(Clone, Debug)]
pub struct VerifiedSdJwt {
    claims: Map<String, Value>,
    issuer: String,
    vct: String,
    holder_key: Option<VerifyingKey>,
    key_bound: bool,
    header: Header,
}

impl VerifiedSdJwt {
    /// The disclosed claims: the payload with disclosures applied, without
    /// `_sd` and `_sd_alg` (plain claims such as `iss`, `vct`, `iat`,
    /// `exp`, `cnf` and `status` included).
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// The disclosed claims as one JSON object.
    pub fn claims_value(&self) -> Value {
        Value::Object(self.claims.clone())
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn vct(&self) -> &str {
        &self.vct
    }

    /// The holder key from `cnf.jwk`, if the credential is bound to one.
    pub fn holder_key(&self) -> Option<&VerifyingKey> {
        self.holder_key.as_ref()
    }

    /// Whether a KB-JWT verified for the audience and nonce the caller
    /// asked for.
    pub fn key_bound(&self) -> bool {
        self.key_bound
    }

    /// The raw `status` claim (e.g. a status list reference), unchecked.
    pub fn status(&self) -> Option<&Value> {
        self.claims.get("status")
    }

    pub fn subject(&self) -> Option<&str> {
        self.claims.get("sub").and_then(Value::as_str)
    }

    /// The issuer's protected JOSE header.
    pub fn header(&self) -> &Header {
        &self.header
    }
}

/// Verifies an SD-JWT VC presentation (compact or flattened JSON, with or
/// without KB-JWT).
pub fn verify_presentation(
    presentation: &str,
    resolver: &impl IssuerKeyResolver,
    options: &VerifyOptions,
) -> Result<VerifiedSdJwt, SdJwtError> {
    let parts = Parts::parse(presentation)?;
    let opened = open(&parts, resolver)?;
    check_times(&opened.claims, options)?;
    let key_bound = match (&parts.kb_jwt, &options.key_binding) {
        (None, Some(_)) => {
            return Err(if opened.holder_key.is_none() {
                SdJwtError::MissingHolderKey
            } else {
                SdJwtError::KbMissing
            })
        }
        (None, None) => false,
        (Some(kb_jwt), expected) => {
            let holder_key = opened
                .holder_key
                .as_ref()
                .ok_or(SdJwtError::MissingHolderKey)?;
            let freshness = Freshness {
                now: options.now,
                skew: options.clock_skew_secs,
                max_age: options.kb_max_age_secs,
            };
            key_binding::verify(
                kb_jwt,
                holder_key,
                &parts.sd_hash_input(),
                expected.as_ref(),
                &freshness,
            )?;
            expected.is_some()
        }
    };
    Ok(VerifiedSdJwt {
        claims: opened.claims,
        issuer: opened.issuer,
        vct: opened.vct,
        holder_key: opened.holder_key,
        key_bound,
        header: opened.header,
    })
}

/// An SD-JWT whose issuer signature, disclosures and profile checked out.
pub(crate) struct Opened {
    pub(crate) header: Header,
    pub(crate) disclosures: Vec<Disclosure>,
    pub(crate) paths: Vec<ClaimPath>,
    pub(crate) claims: Map<String, Value>,
    pub(crate) issuer: String,
    pub(crate) vct: String,
    pub(crate) holder_key: Option<VerifyingKey>,
}

pub(crate) fn open(parts: &Parts, resolver: &impl IssuerKeyResolver) -> Result<Opened, SdJwtError> {
    let jws = UnverifiedJws::parse(&parts.issuer_jwt).map_err(SdJwtError::IssuerJws)?;
    let typ = jws.header().typ();
    if typ != Some(TYP) {
        return Err(SdJwtError::WrongType(typ.unwrap_or_default().to_owned()));
    }
    let unverified = strict_json::object_from_slice(jws.payload_unverified()).ok_or(
        SdJwtError::Malformed("the payload is not a JSON object with distinct member names"),
    )?;
    let issuer = match unverified.get("iss") {
        Some(Value::String(iss)) => iss.clone(),
        _ => return Err(SdJwtError::MissingClaim("iss")),
    };
    let key = resolver
        .issuer_key(&issuer, jws.header())
        .ok_or_else(|| SdJwtError::UnknownIssuer(issuer.clone()))?;
    let (header, _) = jws
        .verify(&key)
        .map_err(SdJwtError::IssuerJws)?
        .into_parts();
    let payload = unverified;
    match payload.get(SD_ALG_KEY) {
        None => {}
        Some(Value::String(alg)) if alg == SD_ALG => {}
        Some(other) => {
            let name = other
                .as_str()
                .map_or_else(|| other.to_string(), str::to_owned);
            return Err(SdJwtError::UnsupportedHashAlgorithm(name));
        }
    }
    let disclosures = parts
        .disclosures
        .iter()
        .map(|d| Disclosure::parse(d))
        .collect::<Result<Vec<_>, _>>()?;
    let processed = process(&payload, &disclosures)?;
    for path in &processed.paths {
        if let [PathSegment::Key(name)] = path.segments() {
            if NOT_DISCLOSABLE.contains(&name.as_str()) {
                return Err(SdJwtError::ClaimNotDisclosable(name.clone()));
            }
        }
    }
    let claims = processed.claims;
    let vct = match claims.get("vct") {
        Some(Value::String(vct)) => vct.clone(),
        _ => return Err(SdJwtError::MissingClaim("vct")),
    };
    let holder_key = match claims.get("cnf") {
        None => None,
        Some(cnf) => {
            let jwk = cnf
                .get("jwk")
                .ok_or(SdJwtError::BadHolderKey(jwk::JwkError::NotAnObject))?;
            Some(jwk::from_jwk(jwk).map_err(SdJwtError::BadHolderKey)?)
        }
    };
    Ok(Opened {
        header,
        disclosures,
        paths: processed.paths,
        claims,
        issuer,
        vct,
        holder_key,
    })
}

fn check_times(claims: &Map<String, Value>, options: &VerifyOptions) -> Result<(), SdJwtError> {
    let time = |name: &'static str| match claims.get(name) {
        None => Ok(None),
        Some(value) => numeric_date(value)
            .map(Some)
            .ok_or(SdJwtError::MissingClaim(name)),
    };
    let now = options.now;
    let skew = options.clock_skew_secs;
    if let Some(exp) = time("exp")? {
        if now >= exp.saturating_add(skew) {
            return Err(SdJwtError::Expired);
        }
    }
    for name in ["nbf", "iat"] {
        if let Some(start) = time(name)? {
            if now.saturating_add(skew) < start {
                return Err(SdJwtError::NotYetValid);
            }
        }
    }
    Ok(())
}
