//! Research eligibility: a researcher counts the patients who meet a
//! criterion ("5.7 % ≤ HbA1c < 6.5 %, from an accepted lab") without
//! learning who they are or their values.
//!
//! The researcher publishes [`Criteria`] (study, requirement, accepted
//! issuers, its identifier and one study-wide nonce). A patient answers with
//! an [`EligibilityResponse`]: a range presentation of an *eligibility form*
//! credential — one that names no holder, so no DID reaches the researcher —
//! and an [`EnrolmentToken`], a pseudonym `HMAC-SHA256(patient secret,
//! "hygeia-enrolment-v1" ‖ study id)`: the same for every answer of that
//! patient to that study, unrelated across studies, and saying nothing
//! about the patient. The proof's transcript binds the study id and the
//! token, so a token cannot be moved onto someone else's proof.
//!
//! A [`Tally`] verifies each answer and counts distinct tokens and distinct
//! credentials; a replayed answer repeats both and is refused.

use std::collections::{BTreeSet, HashSet};

use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::commitment::{CommittedAttributeCredential, Opening};
use super::encoding;
use super::error::ZkError;
use super::issuers::IssuerKeys;
use super::range::{
    prove_in_context, verify_in_context, Challenge, PresentationWire, RangePresentation,
    Requirement,
};

/// Label mixed into every enrolment token.
pub const ENROLMENT_TOKEN_LABEL: &[u8] = b"hygeia-enrolment-v1";
/// Longest accepted serialized response or criteria.
pub const MAX_ELIGIBILITY_BYTES: usize = 16384;

const CONTEXT_LABEL: &[u8] = b"hygeia.zk.eligibility.v1\x00";
const MAX_STUDY_ID_LEN: usize = 128;
const MAX_ACCEPTED_ISSUERS: usize = 64;

/// What a study asks of its candidates.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Criteria {
    pub study_id: String,
    pub requirement: Requirement,
    pub accepted_issuers: Vec<String>,
    /// The researcher's identifier and the study-wide nonce.
    pub challenge: Challenge,
}

impl Criteria {
    /// Criteria with a fresh nonce.
    pub fn new(
        study_id: &str,
        requirement: Requirement,
        accepted_issuers: Vec<String>,
        verifier: &str,
    ) -> Result<Self, ZkError> {
        let criteria = Criteria {
            study_id: study_id.to_string(),
            requirement,
            accepted_issuers,
            challenge: Challenge::random(verifier),
        };
        criteria.check().map_err(ZkError::InvalidClaims)?;
        Ok(criteria)
    }

    pub fn to_json(&self) -> String {
        match serde_json::to_string(self) {
            Ok(json) => json,
            Err(_) => unreachable!("criteria always serialize"),
        }
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, ZkError> {
        if bytes.len() > MAX_ELIGIBILITY_BYTES {
            return Err(ZkError::malformed("the criteria are too long"));
        }
        let criteria: Criteria = serde_json::from_slice(bytes)
            .map_err(|e| ZkError::malformed(format!("criteria: {e}")))?;
        criteria.check().map_err(ZkError::Malformed)?;
        Ok(criteria)
    }

    fn check(&self) -> Result<(), String> {
        check_study_id(&self.study_id)?;
        if self.accepted_issuers.is_empty() || self.accepted_issuers.len() > MAX_ACCEPTED_ISSUERS {
            return Err("a study accepts 1 to 64 issuers".into());
        }
        super::commitment::check_attribute(&self.requirement.attribute)?;
        if let Some(loinc) = &self.requirement.loinc {
            super::commitment::check_loinc(loinc)?;
        }
        Ok(())
    }

    fn accepts(&self, issuer: &str) -> bool {
        self.accepted_issuers
            .iter()
            .any(|accepted| accepted == issuer)
    }
}

fn check_study_id(study_id: &str) -> Result<(), String> {
    if study_id.is_empty()
        || study_id.len() > MAX_STUDY_ID_LEN
        || !study_id.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err("the study id must be 1 to 128 visible ASCII characters".into());
    }
    Ok(())
}

/// The patient's secret from which enrolment tokens are derived. It never
/// leaves the wallet. Wiped on drop; `Debug` does not show it.
pub struct PatientSecret(Zeroizing<[u8; 32]>);

impl PatientSecret {
    pub fn generate() -> Self {
        let mut secret = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(secret.as_mut());
        PatientSecret(secret)
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        PatientSecret(Zeroizing::new(bytes))
    }

    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        self.0.clone()
    }
}

impl std::fmt::Debug for PatientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PatientSecret(..)")
    }
}

/// A per-study pseudonym: stable for one patient and study, unlinkable
/// across studies without the patient's secret.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EnrolmentToken([u8; 32]);

impl EnrolmentToken {
    pub fn derive(secret: &PatientSecret, study_id: &str) -> Self {
        // HMAC is a PRF keyed by the secret: outputs for different studies
        // are independent, and none reveals the key.
        let mut mac = match Hmac::<Sha256>::new_from_slice(secret.0.as_ref()) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        };
        mac.update(ENROLMENT_TOKEN_LABEL);
        mac.update(study_id.as_bytes());
        EnrolmentToken(mac.finalize().into_bytes().into())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl TryFrom<String> for EnrolmentToken {
    type Error = ZkError;

    fn try_from(text: String) -> Result<Self, ZkError> {
        encoding::decode_array(&text, "the enrolment token").map(EnrolmentToken)
    }
}

impl From<EnrolmentToken> for String {
    fn from(token: EnrolmentToken) -> String {
        encoding::encode(&token.0)
    }
}

impl std::fmt::Display for EnrolmentToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&encoding::encode(&self.0))
    }
}

impl std::fmt::Debug for EnrolmentToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EnrolmentToken({self})")
    }
}

/// A patient's answer to a study's criteria.
#[derive(Clone, Debug)]
pub struct EligibilityResponse {
    study_id: String,
    presentation: RangePresentation,
    enrolment_token: EnrolmentToken,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResponseWire {
    study_id: String,
    presentation: PresentationWire,
    enrolment_token: EnrolmentToken,
}

impl EligibilityResponse {
    pub fn study_id(&self) -> &str {
        &self.study_id
    }

    pub fn presentation(&self) -> &RangePresentation {
        &self.presentation
    }

    pub fn enrolment_token(&self) -> &EnrolmentToken {
        &self.enrolment_token
    }

    pub fn to_json(&self) -> String {
        let wire = ResponseWire {
            study_id: self.study_id.clone(),
            presentation: self.presentation.to_wire(),
            enrolment_token: self.enrolment_token,
        };
        match serde_json::to_string(&wire) {
            Ok(json) => json,
            Err(_) => unreachable!("a response always serializes"),
        }
    }

    /// Parses strictly; verifies nothing (see [`Tally::add`]).
    pub fn parse(bytes: &[u8]) -> Result<Self, ZkError> {
        if bytes.len() > MAX_ELIGIBILITY_BYTES {
            return Err(ZkError::malformed("the response is too long"));
        }
        let wire: ResponseWire = serde_json::from_slice(bytes)
            .map_err(|e| ZkError::malformed(format!("response: {e}")))?;
        check_study_id(&wire.study_id).map_err(ZkError::Malformed)?;
        Ok(EligibilityResponse {
            study_id: wire.study_id,
            presentation: RangePresentation::from_wire(wire.presentation)?,
            enrolment_token: wire.enrolment_token,
        })
    }
}

/// The patient's side: answers `criteria` with an eligibility-form
/// credential. Refuses a credential that names its holder, one from an
/// issuer the study does not accept, one about another attribute, and a
/// value outside the range.
pub fn respond(
    criteria: &Criteria,
    credential: &CommittedAttributeCredential,
    opening: &Opening,
    secret: &PatientSecret,
) -> Result<EligibilityResponse, ZkError> {
    if credential.holder().is_some() {
        return Err(ZkError::EligibilityHolderPresent);
    }
    if !criteria.accepts(credential.issuer()) {
        return Err(ZkError::EligibilityIssuerNotAccepted(
            credential.issuer().to_string(),
        ));
    }
    let requirement = &criteria.requirement;
    if credential.attribute() != requirement.attribute
        || (requirement.loinc.is_some() && credential.loinc() != requirement.loinc.as_deref())
    {
        return Err(ZkError::WrongAttribute);
    }
    let token = EnrolmentToken::derive(secret, &criteria.study_id);
    let presentation = prove_in_context(
        credential,
        opening,
        requirement.range,
        &criteria.challenge,
        None,
        &context(&criteria.study_id, &token),
    )?;
    Ok(EligibilityResponse {
        study_id: criteria.study_id.clone(),
        presentation,
        enrolment_token: token,
    })
}

/// What binds an answer to its study and token inside the proof.
fn context(study_id: &str, token: &EnrolmentToken) -> Vec<u8> {
    let mut out = CONTEXT_LABEL.to_vec();
    out.extend_from_slice(&(study_id.len() as u64).to_be_bytes());
    out.extend_from_slice(study_id.as_bytes());
    out.extend_from_slice(&token.0);
    out
}

/// The researcher's count of qualifying, distinct answers.
#[derive(Debug)]
pub struct Tally<K: IssuerKeys> {
    criteria: Criteria,
    issuers: K,
    tokens: BTreeSet<EnrolmentToken>,
    commitments: HashSet<[u8; 32]>,
}

/// The outcome of a tally: how many qualify and their enrolment tokens
/// (sorted), nothing else — no DID, no value, no commitment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TallyResult {
    pub study_id: String,
    pub qualifying: usize,
    pub tokens: Vec<EnrolmentToken>,
}

impl<K: IssuerKeys> Tally<K> {
    /// A tally for `criteria`; `issuers` holds the keys of (at least) the
    /// accepted issuers. An issuer must be both accepted by the criteria and
    /// known to `issuers` to count.
    pub fn new(criteria: Criteria, issuers: K) -> Self {
        Tally {
            criteria,
            issuers,
            tokens: BTreeSet::new(),
            commitments: HashSet::new(),
        }
    }

    pub fn criteria(&self) -> &Criteria {
        &self.criteria
    }

    /// Verifies `response` at `now` and counts it, or says why not.
    pub fn add(&mut self, response: &EligibilityResponse, now: u64) -> Result<(), ZkError> {
        self.check(response, now)?;
        self.count_checked(
            response.enrolment_token,
            response.presentation.credential().commitment().to_bytes(),
        )
    }

    /// Whether [`Tally::add`] would count `response` at `now`, counting
    /// nothing: a caller that must make the answer durable first checks,
    /// writes, then counts it with [`Tally::count_checked`].
    pub fn check(&self, response: &EligibilityResponse, now: u64) -> Result<(), ZkError> {
        let criteria = &self.criteria;
        if response.study_id != criteria.study_id {
            return Err(ZkError::EligibilityWrongStudy);
        }
        let credential = response.presentation.credential();
        if credential.holder().is_some() {
            return Err(ZkError::EligibilityHolderPresent);
        }
        if !criteria.accepts(credential.issuer()) {
            return Err(ZkError::EligibilityIssuerNotAccepted(
                credential.issuer().to_string(),
            ));
        }
        verify_in_context(
            &response.presentation,
            &self.issuers,
            &criteria.requirement,
            &criteria.challenge,
            now,
            &context(&criteria.study_id, &response.enrolment_token),
        )?;
        if self.tokens.contains(&response.enrolment_token) {
            return Err(ZkError::EligibilityDuplicateToken);
        }
        let commitment = credential.commitment().to_bytes();
        if self.commitments.contains(&commitment) {
            return Err(ZkError::EligibilityDuplicateCredential);
        }
        Ok(())
    }

    /// Counts an answer already verified by [`Tally::check`] (now, or
    /// before a restart: its enrolment token and its credential's
    /// commitment are all a tally keeps). Verifies no proof; refuses a
    /// token or a commitment already counted.
    pub fn count_checked(
        &mut self,
        token: EnrolmentToken,
        commitment: [u8; 32],
    ) -> Result<(), ZkError> {
        if self.tokens.contains(&token) {
            return Err(ZkError::EligibilityDuplicateToken);
        }
        if self.commitments.contains(&commitment) {
            return Err(ZkError::EligibilityDuplicateCredential);
        }
        self.tokens.insert(token);
        self.commitments.insert(commitment);
        Ok(())
    }

    pub fn result(&self) -> TallyResult {
        TallyResult {
            study_id: self.criteria.study_id.clone(),
            qualifying: self.tokens.len(),
            tokens: self.tokens.iter().copied().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_stable_per_study_and_differ_across_studies_and_patients() {
        let alice = PatientSecret::from_bytes([1; 32]);
        let bob = PatientSecret::from_bytes([2; 32]);
        let a1 = EnrolmentToken::derive(&alice, "study-1");
        assert_eq!(a1, EnrolmentToken::derive(&alice, "study-1"));
        assert_ne!(a1, EnrolmentToken::derive(&alice, "study-2"));
        assert_ne!(a1, EnrolmentToken::derive(&bob, "study-1"));
        let text = String::from(a1);
        assert_eq!(EnrolmentToken::try_from(text).unwrap(), a1);
        assert_eq!(format!("{:?}", alice), "PatientSecret(..)");
    }

    /// HMAC-SHA256 (RFC 4231 test case 2) through the same construction,
    /// so the token is the standard PRF and not something of our own.
    #[test]
    fn the_token_is_hmac_sha256() {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        let expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        let got: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(got, expected);
        let secret = PatientSecret::from_bytes([0x0b; 32]);
        let mut mac = Hmac::<Sha256>::new_from_slice(&[0x0b; 32]).unwrap();
        mac.update(b"hygeia-enrolment-v1study-1");
        let direct: [u8; 32] = mac.finalize().into_bytes().into();
        assert_eq!(
            EnrolmentToken::derive(&secret, "study-1").as_bytes(),
            &direct
        );
    }

    #[test]
    fn criteria_are_checked() {
        let requirement = crate::zk::hba1c::hba1c_between(57, 65).unwrap();
        let ok = Criteria::new(
            "prediabetes-2025",
            requirement.clone(),
            vec!["did:web:lab.example".into()],
            "did:web:research.example",
        )
        .unwrap();
        assert_eq!(Criteria::parse(ok.to_json().as_bytes()).unwrap(), ok);
        let err = Criteria::new(
            "has space",
            requirement.clone(),
            vec!["did:web:l".into()],
            "r",
        );
        assert_eq!(err.unwrap_err().code(), "zk-invalid-claims");
        let err = Criteria::new("s", requirement, vec![], "r");
        assert_eq!(err.unwrap_err().code(), "zk-invalid-claims");
        let bad = ok.to_json().replace("prediabetes-2025", "");
        assert_eq!(
            Criteria::parse(bad.as_bytes()).unwrap_err().code(),
            "zk-malformed"
        );
    }
}
