//! Issuer-signed Pedersen commitments to one integer attribute.
//!
//! An issuer (a lab, a registry) commits to a value `v` as
//! `C = v·B + r·B_blinding` with the Bulletproofs Pedersen generators and a
//! fresh random `r`, and signs the commitment together with what it is
//! about (attribute name, LOINC code, issuer, validity, holder). The holder
//! receives the credential and the opening `(v, r)`; the opening is the
//! holder's secret and is what a range proof proves knowledge of.
//!
//! Wire form (JSON, binary fields unpadded base64url):
//!
//! ```json
//! {"type":"hygeia-committed-attribute-v1","issuer":"did:web:lab.example",
//!  "attribute":"hba1c-percent-x10","loinc":"4548-4","commitment":"…",
//!  "iat":1700000000,"exp":1731536000,"holder":"did:key:z6Mk…","signature":"…"}
//! ```
//!
//! The signature is Ed25519 over [`CREDENTIAL_SIGNING_DOMAIN`] followed by
//! the RFC 8785 (JCS) bytes of that object without `signature`.

use std::sync::OnceLock;

use bulletproofs::PedersenGens;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use hygeia_identity::{Did, Keypair, Signature};
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use super::encoding;
use super::error::ZkError;
use super::issuers::IssuerKeys;

/// The `type` of a committed-attribute credential.
pub const CREDENTIAL_TYPE: &str = "hygeia-committed-attribute-v1";
/// Prefix of the bytes the issuer signs, so a credential signature can never
/// be taken for a transaction or any other signed object.
pub const CREDENTIAL_SIGNING_DOMAIN: &[u8] = b"hygeia.zk.credential.v1\x00";
/// Longest accepted serialized credential.
pub const MAX_CREDENTIAL_BYTES: usize = 4096;

const MAX_ISSUER_LEN: usize = 256;
const MAX_ATTRIBUTE_LEN: usize = 64;
/// Times must survive JCS, whose numbers are IEEE doubles.
const MAX_TIME: u64 = (1 << 53) - 1;

/// The Pedersen generators every commitment and proof uses: `B` is the
/// Ristretto base point, `B_blinding` is hashed from it (bulletproofs'
/// `PedersenGens::default`), so nobody knows their discrete-log relation.
pub(crate) fn pedersen_gens() -> &'static PedersenGens {
    static GENS: OnceLock<PedersenGens> = OnceLock::new();
    GENS.get_or_init(PedersenGens::default)
}

/// What an issuer states about one attribute of one subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeClaims {
    /// The issuer's DID (`did:web:` for organizations, or `did:key:`).
    pub issuer: String,
    /// Lowercase name of the attribute and its fixed-point unit, e.g.
    /// `hba1c-percent-x10` or `birth-date-days-since-1900`.
    pub attribute: String,
    /// The LOINC code of the observation, when there is one (`4548-4`).
    pub loinc: Option<String>,
    /// The committed value; it is not written into the credential.
    pub value: u64,
    /// Issued at, in seconds since the Unix epoch.
    pub issued_at: u64,
    /// Expires at (exclusive), in seconds since the Unix epoch.
    pub expires_at: u64,
    /// The holder's did:key; `None` for the eligibility form, which must not
    /// tell a researcher who the patient is.
    pub holder: Option<Did>,
}

/// The holder's secret: the committed value and its blinding factor.
///
/// Wiped on drop; `Debug` shows neither.
pub struct Opening {
    value: u64,
    blinding: Scalar,
}

impl Opening {
    pub fn value(&self) -> u64 {
        self.value
    }

    pub(crate) fn blinding(&self) -> &Scalar {
        &self.blinding
    }

    /// Whether this opening opens `credential`'s commitment.
    pub fn matches(&self, credential: &CommittedAttributeCredential) -> bool {
        pedersen_gens().commit(Scalar::from(self.value), self.blinding) == credential.point
    }

    /// `{"value":70,"blinding":"…"}`, for the holder's wallet only.
    pub fn to_json(&self) -> Zeroizing<String> {
        let blinding = Zeroizing::new(encoding::encode(self.blinding.as_bytes()));
        Zeroizing::new(format!(
            "{{\"value\":{},\"blinding\":\"{}\"}}",
            self.value,
            blinding.as_str()
        ))
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, ZkError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Wire {
            value: u64,
            blinding: String,
        }
        if bytes.len() > 256 {
            return Err(ZkError::malformed("the opening is too long"));
        }
        let mut wire: Wire = serde_json::from_slice(bytes)
            .map_err(|e| ZkError::malformed(format!("opening: {e}")))?;
        let mut raw = encoding::decode_array::<32>(&wire.blinding, "the blinding factor");
        wire.blinding.zeroize();
        let blinding = raw
            .as_ref()
            .ok()
            .and_then(|b| Scalar::from_canonical_bytes(*b).into());
        if let Ok(raw) = raw.as_mut() {
            raw.zeroize();
        }
        let blinding = blinding
            .ok_or_else(|| ZkError::malformed("the blinding factor is not a canonical scalar"))?;
        Ok(Opening {
            value: wire.value,
            blinding,
        })
    }
}

impl Drop for Opening {
    fn drop(&mut self) {
        self.value.zeroize();
        self.blinding.zeroize();
    }
}

impl std::fmt::Debug for Opening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opening").finish_non_exhaustive()
    }
}

/// An issuer-signed commitment to one attribute (see the module docs).
///
/// Parsing checks structure (a canonical, non-identity Ristretto point, a
/// 64-byte signature, well-formed names and times) but not trust: that is
/// [`CommittedAttributeCredential::check`], which every verification calls.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CommittedAttributeCredential {
    issuer: String,
    attribute: String,
    loinc: Option<String>,
    commitment: CompressedRistretto,
    point: RistrettoPoint,
    issued_at: u64,
    expires_at: u64,
    holder: Option<Did>,
    signature: Signature,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    issuer: &'a str,
    attribute: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    loinc: Option<&'a str>,
    commitment: String,
    iat: u64,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    holder: Option<&'a str>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CredentialWire {
    #[serde(rename = "type")]
    kind: String,
    issuer: String,
    attribute: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    loinc: Option<String>,
    commitment: String,
    iat: u64,
    exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    holder: Option<String>,
    signature: String,
}

impl CommittedAttributeCredential {
    /// Commits to `claims.value` with a fresh blinding factor and signs.
    /// Returns the credential and the opening to hand to the holder.
    pub fn issue(
        issuer_key: &Keypair,
        claims: &AttributeClaims,
    ) -> Result<(Self, Opening), ZkError> {
        check_issuer(&claims.issuer).map_err(ZkError::InvalidClaims)?;
        check_attribute(&claims.attribute).map_err(ZkError::InvalidClaims)?;
        if let Some(loinc) = &claims.loinc {
            check_loinc(loinc).map_err(ZkError::InvalidClaims)?;
        }
        check_times(claims.issued_at, claims.expires_at).map_err(ZkError::InvalidClaims)?;
        if claims.issuer.starts_with("did:key:") && claims.issuer != issuer_key.did().as_str() {
            return Err(ZkError::InvalidClaims(
                "a did:key issuer must be the signing key's own DID".into(),
            ));
        }
        let blinding = Scalar::random(&mut OsRng);
        let point = pedersen_gens().commit(Scalar::from(claims.value), blinding);
        let opening = Opening {
            value: claims.value,
            blinding,
        };
        let mut credential = CommittedAttributeCredential {
            issuer: claims.issuer.clone(),
            attribute: claims.attribute.clone(),
            loinc: claims.loinc.clone(),
            commitment: point.compress(),
            point,
            issued_at: claims.issued_at,
            expires_at: claims.expires_at,
            holder: claims.holder.clone(),
            signature: Signature::from_bytes(&[0; 64]),
        };
        credential.signature = issuer_key.sign(&credential.signing_bytes());
        Ok((credential, opening))
    }

    /// `count` credentials for the same claims, each with its own commitment
    /// (and so unlinkable to the others by the commitment), to be used once
    /// each.
    pub fn issue_batch(
        issuer_key: &Keypair,
        claims: &AttributeClaims,
        count: usize,
    ) -> Result<Vec<(Self, Opening)>, ZkError> {
        (0..count)
            .map(|_| Self::issue(issuer_key, claims))
            .collect()
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn attribute(&self) -> &str {
        &self.attribute
    }

    pub fn loinc(&self) -> Option<&str> {
        self.loinc.as_deref()
    }

    /// The signed commitment, as it is shown to every verifier.
    pub fn commitment(&self) -> &CompressedRistretto {
        &self.commitment
    }

    pub(crate) fn commitment_point(&self) -> &RistrettoPoint {
        &self.point
    }

    pub fn issued_at(&self) -> u64 {
        self.issued_at
    }

    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    pub fn holder(&self) -> Option<&Did> {
        self.holder.as_ref()
    }

    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// [`CREDENTIAL_SIGNING_DOMAIN`] followed by the JCS bytes of the
    /// credential without its signature: what the issuer signs.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let body = Body {
            kind: CREDENTIAL_TYPE,
            issuer: &self.issuer,
            attribute: &self.attribute,
            loinc: self.loinc.as_deref(),
            commitment: encoding::encode(self.commitment.as_bytes()),
            iat: self.issued_at,
            exp: self.expires_at,
            holder: self.holder.as_ref().map(Did::as_str),
        };
        let mut bytes = CREDENTIAL_SIGNING_DOMAIN.to_vec();
        // Strings, and integers below 2^53 (checked on the way in), always
        // canonicalize.
        match serde_json_canonicalizer::to_vec(&body) {
            Ok(canonical) => bytes.extend_from_slice(&canonical),
            Err(_) => unreachable!("a credential body always canonicalizes"),
        }
        bytes
    }

    /// SHA-256 of [`Self::signing_bytes`]: what a proof's transcript binds,
    /// so the issuer, attribute and commitment are all fixed by it.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.signing_bytes()).into()
    }

    /// Checks that the issuer is trusted, its signature verifies and the
    /// credential is valid at `now` (seconds since the Unix epoch).
    pub fn check(&self, issuers: &impl IssuerKeys, now: u64) -> Result<(), ZkError> {
        let key = issuers
            .issuer_key(&self.issuer)
            .ok_or_else(|| ZkError::UntrustedIssuer(self.issuer.clone()))?;
        key.verify(&self.signing_bytes(), &self.signature)
            .map_err(|_| ZkError::BadIssuerSignature)?;
        if now < self.issued_at {
            return Err(ZkError::NotYetValid);
        }
        if now >= self.expires_at {
            return Err(ZkError::Expired);
        }
        Ok(())
    }

    pub fn to_json(&self) -> String {
        match serde_json::to_string(&self.to_wire()) {
            Ok(json) => json,
            Err(_) => unreachable!("a credential always serializes"),
        }
    }

    /// Parses the JSON form strictly (see the type's docs); does not check
    /// the signature.
    pub fn parse(bytes: &[u8]) -> Result<Self, ZkError> {
        if bytes.len() > MAX_CREDENTIAL_BYTES {
            return Err(ZkError::malformed("the credential is too long"));
        }
        let wire: CredentialWire = serde_json::from_slice(bytes)
            .map_err(|e| ZkError::malformed(format!("credential: {e}")))?;
        Self::from_wire(wire)
    }

    pub(crate) fn to_wire(&self) -> CredentialWire {
        CredentialWire {
            kind: CREDENTIAL_TYPE.to_string(),
            issuer: self.issuer.clone(),
            attribute: self.attribute.clone(),
            loinc: self.loinc.clone(),
            commitment: encoding::encode(self.commitment.as_bytes()),
            iat: self.issued_at,
            exp: self.expires_at,
            holder: self.holder.as_ref().map(|d| d.as_str().to_string()),
            signature: encoding::encode(&self.signature.to_bytes()),
        }
    }

    pub(crate) fn from_wire(wire: CredentialWire) -> Result<Self, ZkError> {
        if wire.kind != CREDENTIAL_TYPE {
            return Err(ZkError::malformed(format!(
                "the credential type must be {CREDENTIAL_TYPE}"
            )));
        }
        check_issuer(&wire.issuer).map_err(ZkError::Malformed)?;
        check_attribute(&wire.attribute).map_err(ZkError::Malformed)?;
        if let Some(loinc) = &wire.loinc {
            check_loinc(loinc).map_err(ZkError::Malformed)?;
        }
        check_times(wire.iat, wire.exp).map_err(ZkError::Malformed)?;
        let holder = wire
            .holder
            .as_deref()
            .map(str::parse::<Did>)
            .transpose()
            .map_err(|e| ZkError::malformed(format!("holder: {e}")))?;
        let commitment = CompressedRistretto(encoding::decode_array::<32>(
            &wire.commitment,
            "the commitment",
        )?);
        let point = commitment
            .decompress()
            .ok_or_else(|| ZkError::malformed("the commitment is not a Ristretto point"))?;
        if point.is_identity() {
            return Err(ZkError::malformed("the commitment is the identity"));
        }
        let signature = Signature::from_bytes(&encoding::decode_array::<64>(
            &wire.signature,
            "the signature",
        )?);
        Ok(CommittedAttributeCredential {
            issuer: wire.issuer,
            attribute: wire.attribute,
            loinc: wire.loinc,
            commitment,
            point,
            issued_at: wire.iat,
            expires_at: wire.exp,
            holder,
            signature,
        })
    }
}

fn check_issuer(issuer: &str) -> Result<(), String> {
    let ok = issuer.len() <= MAX_ISSUER_LEN
        && issuer.starts_with("did:")
        && issuer.len() > 4
        && issuer.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err("the issuer must be a DID of at most 256 visible ASCII characters".into())
    }
}

pub(crate) fn check_attribute(attribute: &str) -> Result<(), String> {
    let ok = (1..=MAX_ATTRIBUTE_LEN).contains(&attribute.len())
        && attribute.starts_with(|c: char| c.is_ascii_lowercase())
        && attribute
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err("the attribute name must be 1 to 64 of a-z, 0-9 and '-', starting with a letter".into())
    }
}

/// LOINC codes are 1 to 7 digits, a hyphen and a check digit (`4548-4`).
pub(crate) fn check_loinc(code: &str) -> Result<(), String> {
    let ok = match code.split_once('-') {
        Some((number, check)) => {
            (1..=7).contains(&number.len())
                && number.bytes().all(|b| b.is_ascii_digit())
                && check.len() == 1
                && check.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{code:?} is not a LOINC code (digits, '-', check digit)"
        ))
    }
}

fn check_times(issued_at: u64, expires_at: u64) -> Result<(), String> {
    if issued_at >= expires_at {
        return Err("the credential must expire after it is issued".into());
    }
    if expires_at > MAX_TIME {
        return Err("times must be below 2^53 seconds".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zk::issuers::TrustedIssuers;

    const LAB: &str = "did:web:lab.example";

    fn claims(value: u64, holder: Option<Did>) -> AttributeClaims {
        AttributeClaims {
            issuer: LAB.into(),
            attribute: "hba1c-percent-x10".into(),
            loinc: Some("4548-4".into()),
            value,
            issued_at: 1_700_000_000,
            expires_at: 1_800_000_000,
            holder,
        }
    }

    #[test]
    fn issued_credentials_round_trip_and_verify() {
        let lab = Keypair::from_seed(&[1; 32]);
        let holder = Keypair::from_seed(&[2; 32]).did();
        let (credential, opening) =
            CommittedAttributeCredential::issue(&lab, &claims(64, Some(holder.clone()))).unwrap();
        assert!(opening.matches(&credential));
        assert_eq!(opening.value(), 64);
        let parsed = CommittedAttributeCredential::parse(credential.to_json().as_bytes()).unwrap();
        assert_eq!(parsed, credential);
        assert_eq!(parsed.holder(), Some(&holder));
        let issuers = TrustedIssuers::new().with(LAB, lab.public_key());
        parsed.check(&issuers, 1_750_000_000).unwrap();
        assert_eq!(
            parsed.check(&issuers, 1_800_000_000).unwrap_err().code(),
            "zk-expired"
        );
        assert_eq!(
            parsed.check(&issuers, 1_600_000_000).unwrap_err().code(),
            "zk-not-yet-valid"
        );
        let other = TrustedIssuers::new().with(LAB, Keypair::from_seed(&[9; 32]).public_key());
        assert_eq!(
            parsed.check(&other, 1_750_000_000).unwrap_err().code(),
            "zk-bad-issuer-signature"
        );
        assert_eq!(
            parsed
                .check(&TrustedIssuers::new(), 1_750_000_000)
                .unwrap_err()
                .code(),
            "zk-untrusted-issuer"
        );
    }

    #[test]
    fn the_signed_bytes_are_domain_separated_jcs() {
        let lab = Keypair::from_seed(&[1; 32]);
        let (credential, _) = CommittedAttributeCredential::issue(&lab, &claims(64, None)).unwrap();
        let bytes = credential.signing_bytes();
        let json = bytes.strip_prefix(CREDENTIAL_SIGNING_DOMAIN).unwrap();
        let value: serde_json::Value = serde_json::from_slice(json).unwrap();
        assert_eq!(serde_json_canonicalizer::to_vec(&value).unwrap(), json);
        assert!(value.get("signature").is_none());
        assert!(value.get("holder").is_none());
        assert_eq!(value["type"], CREDENTIAL_TYPE);
        assert!(lab
            .public_key()
            .verify(&bytes, credential.signature())
            .is_ok());
    }

    #[test]
    fn each_issuance_commits_afresh() {
        let lab = Keypair::from_seed(&[1; 32]);
        let batch = CommittedAttributeCredential::issue_batch(&lab, &claims(64, None), 3).unwrap();
        assert_ne!(batch[0].0.commitment(), batch[1].0.commitment());
        assert_ne!(batch[1].0.commitment(), batch[2].0.commitment());
        assert!(!batch[0].1.matches(&batch[1].0));
    }

    #[test]
    fn openings_round_trip_and_hide_in_debug() {
        let lab = Keypair::from_seed(&[1; 32]);
        let (credential, opening) =
            CommittedAttributeCredential::issue(&lab, &claims(64, None)).unwrap();
        let parsed = Opening::parse(opening.to_json().as_bytes()).unwrap();
        assert!(parsed.matches(&credential));
        assert_eq!(format!("{parsed:?}"), "Opening { .. }");
        let bad = br#"{"value":64,"blinding":"__________________________________________8"}"#;
        assert_eq!(Opening::parse(bad).unwrap_err().code(), "zk-malformed");
    }

    #[test]
    fn bad_claims_are_refused_at_issuance() {
        let lab = Keypair::from_seed(&[1; 32]);
        let mut c = claims(1, None);
        c.attribute = "HbA1c".into();
        assert_eq!(
            CommittedAttributeCredential::issue(&lab, &c)
                .unwrap_err()
                .code(),
            "zk-invalid-claims"
        );
        let mut c = claims(1, None);
        c.loinc = Some("4548".into());
        assert!(CommittedAttributeCredential::issue(&lab, &c).is_err());
        let mut c = claims(1, None);
        c.expires_at = c.issued_at;
        assert!(CommittedAttributeCredential::issue(&lab, &c).is_err());
        let mut c = claims(1, None);
        c.issuer = Keypair::from_seed(&[5; 32]).did().to_string();
        assert!(CommittedAttributeCredential::issue(&lab, &c).is_err());
        c.issuer = lab.did().to_string();
        assert!(CommittedAttributeCredential::issue(&lab, &c).is_ok());
    }

    #[test]
    fn points_that_do_not_decompress_are_malformed() {
        let lab = Keypair::from_seed(&[1; 32]);
        let (credential, _) = CommittedAttributeCredential::issue(&lab, &claims(64, None)).unwrap();
        let good = encoding::encode(credential.commitment().as_bytes());
        // Not canonical field elements / not on the curve / the identity.
        for bad in [[0xffu8; 32], [0x01; 32], [0; 32]] {
            let json = credential.to_json().replace(&good, &encoding::encode(&bad));
            let err = CommittedAttributeCredential::parse(json.as_bytes()).unwrap_err();
            assert_eq!(err.code(), "zk-malformed", "{bad:?}");
        }
    }

    #[test]
    fn structural_errors_are_malformed() {
        let lab = Keypair::from_seed(&[1; 32]);
        let (credential, _) = CommittedAttributeCredential::issue(&lab, &claims(64, None)).unwrap();
        let json = credential.to_json();
        for bad in [
            json.replace(CREDENTIAL_TYPE, "other"),
            json.replace("\"iat\"", "\"issued\""),
            json.replacen('{', "{\"extra\":1,", 1),
            json.replace("4548-4", "LOINC"),
            "[]".to_string(),
            format!("{json} trailing"),
        ] {
            let err = CommittedAttributeCredential::parse(bad.as_bytes()).unwrap_err();
            assert_eq!(err.code(), "zk-malformed", "{bad}");
        }
    }
}
