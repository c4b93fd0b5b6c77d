//! Range predicates over a committed attribute: "min ≤ v < max" proved
//! with a Bulletproof against the issuer-signed commitment, without
//! revealing `v`.
//!
//! From the signed commitment `C = v·B + r·B_blinding` both sides derive
//! `C − min·B` (opening `v − min`, `r`) and `(max−1)·B − C` (opening
//! `max−1−v`, `−r`). Proving both lie in `[0, 2^n)` (one aggregated proof)
//! proves `min ≤ v ≤ max−1`. A one-sided range uses one of the two. The
//! Merlin transcript first absorbs the credential digest (issuer, attribute
//! and commitment), the range, the verifier's identifier and nonce, so a
//! proof means nothing for any other credential, statement or verifier.

use std::sync::OnceLock;

use bulletproofs::{BulletproofGens, RangeProof};
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use hygeia_identity::{Did, Keypair, Signature};
use merlin::Transcript;
use rand::rngs::OsRng;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::commitment::{
    check_attribute, check_loinc, pedersen_gens, CommittedAttributeCredential, CredentialWire,
    Opening,
};
use super::encoding;
use super::error::ZkError;
use super::issuers::IssuerKeys;
use super::nonce::NonceBook;

/// The `type` of a range presentation.
pub const PRESENTATION_TYPE: &str = "hygeia-range-presentation-v1";
/// Longest accepted serialized presentation.
pub const MAX_PRESENTATION_BYTES: usize = 8192;
/// Merlin transcript label of every range proof.
pub const TRANSCRIPT_LABEL: &[u8] = b"hygeia.zk.range.v1";
/// Prefix of what a holder signs to bind a presentation to its key.
pub const HOLDER_SIGNING_DOMAIN: &[u8] = b"hygeia.zk.holder.v1\x00";

const MAX_VERIFIER_LEN: usize = 256;

/// Generators for up to 64-bit proofs aggregated over two commitments.
fn bulletproof_gens() -> &'static BulletproofGens {
    static GENS: OnceLock<BulletproofGens> = OnceLock::new();
    GENS.get_or_init(|| BulletproofGens::new(64, 2))
}

/// A range of u64 values, closed below and open above; either side may be
/// absent (then it is `0` or beyond `u64::MAX`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(try_from = "RangeWire", into = "RangeWire")]
pub struct Range {
    min_inclusive: Option<u64>,
    max_exclusive: Option<u64>,
}

#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RangeWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_inclusive: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_exclusive: Option<u64>,
}

impl TryFrom<RangeWire> for Range {
    type Error = ZkError;

    fn try_from(wire: RangeWire) -> Result<Self, ZkError> {
        match (wire.min_inclusive, wire.max_exclusive) {
            (Some(min), Some(max)) => Range::between(min, max),
            (Some(min), None) => Ok(Range::at_least(min)),
            (None, Some(max)) => Range::below(max),
            (None, None) => Err(ZkError::InvalidPredicate(
                "a range needs at least one bound",
            )),
        }
    }
}

impl From<Range> for RangeWire {
    fn from(range: Range) -> Self {
        RangeWire {
            min_inclusive: range.min_inclusive,
            max_exclusive: range.max_exclusive,
        }
    }
}

impl Range {
    /// `min_inclusive ≤ v < max_exclusive`.
    pub fn between(min_inclusive: u64, max_exclusive: u64) -> Result<Range, ZkError> {
        if min_inclusive >= max_exclusive {
            return Err(ZkError::InvalidPredicate("the range is empty"));
        }
        Ok(Range {
            min_inclusive: Some(min_inclusive),
            max_exclusive: Some(max_exclusive),
        })
    }

    /// `v ≥ min_inclusive`.
    pub fn at_least(min_inclusive: u64) -> Range {
        Range {
            min_inclusive: Some(min_inclusive),
            max_exclusive: None,
        }
    }

    /// `v < max_exclusive`.
    pub fn below(max_exclusive: u64) -> Result<Range, ZkError> {
        if max_exclusive == 0 {
            return Err(ZkError::InvalidPredicate("the range is empty"));
        }
        Ok(Range {
            min_inclusive: None,
            max_exclusive: Some(max_exclusive),
        })
    }

    pub fn min_inclusive(&self) -> Option<u64> {
        self.min_inclusive
    }

    pub fn max_exclusive(&self) -> Option<u64> {
        self.max_exclusive
    }

    pub fn contains(&self, value: u64) -> bool {
        self.min_inclusive.is_none_or(|min| value >= min)
            && self.max_exclusive.is_none_or(|max| value < max)
    }

    fn lowest(&self) -> u64 {
        self.min_inclusive.unwrap_or(0)
    }

    fn highest(&self) -> u64 {
        self.max_exclusive.map_or(u64::MAX, |max| max - 1)
    }

    /// Bits per proved value: the smallest size Bulletproofs supports (8,
    /// 16, 32 or 64) that holds every derived value of an in-range `v`,
    /// i.e. `highest − lowest < 2^n`. A public function of the range, so the
    /// proof's size and cost say nothing about `v`.
    pub fn proof_bits(&self) -> usize {
        let span = self.highest() - self.lowest();
        [8, 16, 32]
            .into_iter()
            .find(|bits| span < 1u64 << bits)
            .unwrap_or(64)
    }

    fn sides(&self) -> usize {
        usize::from(self.min_inclusive.is_some()) + usize::from(self.max_exclusive.is_some())
    }

    /// Length in bytes of this range's proof: `(2·log2(n·m) + 9) · 32`.
    pub fn proof_len(&self) -> usize {
        let bits = self.proof_bits() * self.sides();
        (2 * bits.trailing_zeros() as usize + 9) * 32
    }

    /// The commitments the proof is about, derived from `C`.
    fn derived_commitments(&self, commitment: &RistrettoPoint) -> Vec<CompressedRistretto> {
        let mut out = Vec::with_capacity(2);
        // B is the Ristretto base point (checked in a test), so its
        // precomputed table applies.
        if let Some(min) = self.min_inclusive {
            out.push((commitment - RistrettoPoint::mul_base(&Scalar::from(min))).compress());
        }
        if let Some(max) = self.max_exclusive {
            out.push((RistrettoPoint::mul_base(&Scalar::from(max - 1)) - commitment).compress());
        }
        out
    }

    /// The openings of [`Self::derived_commitments`] for an in-range value.
    fn derived_openings(&self, value: u64, blinding: &Scalar) -> (Vec<u64>, Vec<Scalar>) {
        let mut values = Vec::with_capacity(2);
        let mut blindings = Vec::with_capacity(2);
        if let Some(min) = self.min_inclusive {
            values.push(value - min);
            blindings.push(*blinding);
        }
        if let Some(max) = self.max_exclusive {
            values.push(max - 1 - value);
            blindings.push(-blinding);
        }
        (values, blindings)
    }

    fn encode(&self) -> [u8; 17] {
        let mut out = [0u8; 17];
        out[0] =
            u8::from(self.min_inclusive.is_some()) | (u8::from(self.max_exclusive.is_some()) << 1);
        out[1..9].copy_from_slice(&self.min_inclusive.unwrap_or(0).to_le_bytes());
        out[9..].copy_from_slice(&self.max_exclusive.unwrap_or(0).to_le_bytes());
        out
    }
}

impl std::fmt::Display for Range {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.min_inclusive, self.max_exclusive) {
            (Some(min), Some(max)) => write!(f, "{min} ≤ v < {max}"),
            (Some(min), None) => write!(f, "v ≥ {min}"),
            (None, Some(max)) => write!(f, "v < {max}"),
            (None, None) => write!(f, "any v"),
        }
    }
}

/// What a verifier asks to be proved: a range of a named attribute
/// (and, optionally, of a given LOINC code).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    pub attribute: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loinc: Option<String>,
    pub range: Range,
}

impl Requirement {
    pub fn new(attribute: &str, loinc: Option<&str>, range: Range) -> Result<Self, ZkError> {
        check_attribute(attribute).map_err(ZkError::InvalidClaims)?;
        if let Some(loinc) = loinc {
            check_loinc(loinc).map_err(ZkError::InvalidClaims)?;
        }
        Ok(Requirement {
            attribute: attribute.to_string(),
            loinc: loinc.map(str::to_string),
            range,
        })
    }
}

/// A verifier's challenge: its identifier (the audience) and a fresh nonce.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(try_from = "ChallengeWire", into = "ChallengeWire")]
pub struct Challenge {
    pub verifier: String,
    pub nonce: [u8; 32],
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChallengeWire {
    verifier: String,
    nonce: String,
}

impl TryFrom<ChallengeWire> for Challenge {
    type Error = ZkError;

    fn try_from(wire: ChallengeWire) -> Result<Self, ZkError> {
        check_verifier(&wire.verifier)?;
        Ok(Challenge {
            verifier: wire.verifier,
            nonce: encoding::decode_array(&wire.nonce, "the nonce")?,
        })
    }
}

impl From<Challenge> for ChallengeWire {
    fn from(challenge: Challenge) -> Self {
        ChallengeWire {
            nonce: encoding::encode(&challenge.nonce),
            verifier: challenge.verifier,
        }
    }
}

impl Challenge {
    /// A challenge with a fresh random nonce. A verifier that must refuse
    /// replays issues challenges from a [`NonceBook`] instead.
    pub fn random(verifier: impl Into<String>) -> Self {
        let mut nonce = [0u8; 32];
        OsRng.fill_bytes(&mut nonce);
        Challenge {
            verifier: verifier.into(),
            nonce,
        }
    }
}

fn check_verifier(verifier: &str) -> Result<(), ZkError> {
    if verifier.is_empty()
        || verifier.len() > MAX_VERIFIER_LEN
        || verifier.chars().any(char::is_control)
    {
        return Err(ZkError::malformed(
            "the verifier identifier must be 1 to 256 bytes without control characters",
        ));
    }
    Ok(())
}

/// A proof that a credential's committed value lies in a range, made for
/// one verifier's challenge.
///
/// Wire form: `{"type":"hygeia-range-presentation-v1","credential":{…},
/// "range":{"min_inclusive":57,"max_exclusive":65},
/// "challenge":{"verifier":"…","nonce":"…"},"proof":"…",
/// "holder_signature":"…"}` (the last only when the credential names a
/// holder).
#[derive(Clone, Debug)]
pub struct RangePresentation {
    credential: CommittedAttributeCredential,
    range: Range,
    challenge: Challenge,
    proof: RangeProof,
    holder_signature: Option<Signature>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PresentationWire {
    #[serde(rename = "type")]
    kind: String,
    credential: CredentialWire,
    range: Range,
    challenge: Challenge,
    proof: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    holder_signature: Option<String>,
}

impl RangePresentation {
    pub fn credential(&self) -> &CommittedAttributeCredential {
        &self.credential
    }

    pub fn range(&self) -> &Range {
        &self.range
    }

    pub fn challenge(&self) -> &Challenge {
        &self.challenge
    }

    /// The Bulletproof's encoding (`RangeProof::to_bytes`).
    pub fn proof_bytes(&self) -> Vec<u8> {
        self.proof.to_bytes()
    }

    pub fn to_json(&self) -> String {
        match serde_json::to_string(&self.to_wire()) {
            Ok(json) => json,
            Err(_) => unreachable!("a presentation always serializes"),
        }
    }

    /// Parses the JSON form strictly; verifies nothing (see [`verify`]).
    pub fn parse(bytes: &[u8]) -> Result<Self, ZkError> {
        if bytes.len() > MAX_PRESENTATION_BYTES {
            return Err(ZkError::malformed("the presentation is too long"));
        }
        let wire: PresentationWire = serde_json::from_slice(bytes)
            .map_err(|e| ZkError::malformed(format!("presentation: {e}")))?;
        Self::from_wire(wire)
    }

    pub(crate) fn to_wire(&self) -> PresentationWire {
        PresentationWire {
            kind: PRESENTATION_TYPE.to_string(),
            credential: self.credential.to_wire(),
            range: self.range,
            challenge: self.challenge.clone(),
            proof: encoding::encode(&self.proof.to_bytes()),
            holder_signature: self
                .holder_signature
                .map(|s| encoding::encode(&s.to_bytes())),
        }
    }

    pub(crate) fn from_wire(wire: PresentationWire) -> Result<Self, ZkError> {
        if wire.kind != PRESENTATION_TYPE {
            return Err(ZkError::malformed(format!(
                "the presentation type must be {PRESENTATION_TYPE}"
            )));
        }
        let credential = CommittedAttributeCredential::from_wire(wire.credential)?;
        let proof_bytes = encoding::decode(&wire.proof, "the proof", wire.range.proof_len())?;
        if proof_bytes.len() != wire.range.proof_len() {
            return Err(ZkError::malformed(format!(
                "a proof for this range is {} bytes",
                wire.range.proof_len()
            )));
        }
        let proof = RangeProof::from_bytes(&proof_bytes)
            .map_err(|_| ZkError::malformed("the proof is not a Bulletproof encoding"))?;
        let holder_signature = match (&wire.holder_signature, credential.holder()) {
            (Some(text), Some(_)) => Some(Signature::from_bytes(&encoding::decode_array::<64>(
                text,
                "the holder signature",
            )?)),
            (None, _) => None,
            (Some(_), None) => {
                return Err(ZkError::malformed(
                    "a holder signature on a credential that names no holder",
                ))
            }
        };
        Ok(RangePresentation {
            credential,
            range: wire.range,
            challenge: wire.challenge,
            proof,
            holder_signature,
        })
    }
}

/// What a verifier learns from a valid presentation: who issued the
/// credential, about which attribute (and holder, if the credential names
/// one), and that the value lies in the range — never the value.
///
/// Obtainable only from [`verify`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifiedPredicate {
    issuer: String,
    attribute: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    loinc: Option<String>,
    range: Range,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "did_text")]
    holder: Option<Did>,
    verifier: String,
    credential_expires_at: u64,
}

fn did_text<S: serde::Serializer>(did: &Option<Did>, s: S) -> Result<S::Ok, S::Error> {
    match did {
        Some(did) => s.serialize_str(did.as_str()),
        None => s.serialize_none(),
    }
}

impl VerifiedPredicate {
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn attribute(&self) -> &str {
        &self.attribute
    }

    pub fn loinc(&self) -> Option<&str> {
        self.loinc.as_deref()
    }

    pub fn range(&self) -> &Range {
        &self.range
    }

    pub fn holder(&self) -> Option<&Did> {
        self.holder.as_ref()
    }

    pub fn verifier(&self) -> &str {
        &self.verifier
    }

    pub fn credential_expires_at(&self) -> u64 {
        self.credential_expires_at
    }
}

/// Proves that the value committed in `credential` lies in `range`, for the
/// verifier that sent `challenge`.
///
/// `holder_key` must be the key of the credential's holder DID when it
/// names one (it signs the presentation), and `None` when it does not.
/// A false statement is refused (`zk-value-out-of-range`), never proved.
pub fn prove(
    credential: &CommittedAttributeCredential,
    opening: &Opening,
    range: Range,
    challenge: &Challenge,
    holder_key: Option<&Keypair>,
) -> Result<RangePresentation, ZkError> {
    prove_in_context(credential, opening, range, challenge, holder_key, &[])
}

/// [`prove`] with extra bytes bound into the transcript (the eligibility
/// answer binds the study and the enrolment token this way).
pub(crate) fn prove_in_context(
    credential: &CommittedAttributeCredential,
    opening: &Opening,
    range: Range,
    challenge: &Challenge,
    holder_key: Option<&Keypair>,
    context: &[u8],
) -> Result<RangePresentation, ZkError> {
    check_verifier(&challenge.verifier)?;
    if !opening.matches(credential) {
        return Err(ZkError::OpeningMismatch);
    }
    match (credential.holder(), holder_key) {
        (Some(holder), Some(key)) if key.did() == *holder => {}
        (Some(_), None) => return Err(ZkError::HolderKeyRequired),
        (None, None) => {}
        _ => return Err(ZkError::HolderKeyMismatch),
    }
    if !range.contains(opening.value()) {
        return Err(ZkError::ValueOutOfRange);
    }
    let digest = credential.digest();
    let (values, blindings) = range.derived_openings(opening.value(), opening.blinding());
    let mut transcript = transcript(&digest, &range, challenge, context);
    let (proof, commitments) = RangeProof::prove_multiple(
        bulletproof_gens(),
        pedersen_gens(),
        &mut transcript,
        &values,
        &blindings,
        range.proof_bits(),
    )
    .map_err(|_| ZkError::ProvingFailed)?;
    // What the verifier will derive from the signed commitment must be what
    // was proved; anything else is a bug, not a proof to hand out.
    if commitments != range.derived_commitments(credential.commitment_point()) {
        return Err(ZkError::ProvingFailed);
    }
    let holder_signature = holder_key.map(|key| {
        key.sign(&holder_message(
            &digest,
            &range,
            challenge,
            context,
            &proof.to_bytes(),
        ))
    });
    Ok(RangePresentation {
        credential: credential.clone(),
        range,
        challenge: challenge.clone(),
        proof,
        holder_signature,
    })
}

/// Verifies a presentation made for `challenge` against what the verifier
/// asked for (`expected`), at `now` (seconds since the Unix epoch).
///
/// Checks, in order: the challenge (verifier and nonce), the attribute and
/// LOINC code, the range, the issuer's trust, signature and validity, the
/// holder's signature when the credential names a holder, then the proof.
/// It does not check that the nonce is fresh: use [`verify_fresh`] or a
/// [`NonceBook`] for that.
pub fn verify(
    presentation: &RangePresentation,
    issuers: &impl IssuerKeys,
    expected: &Requirement,
    challenge: &Challenge,
    now: u64,
) -> Result<VerifiedPredicate, ZkError> {
    verify_in_context(presentation, issuers, expected, challenge, now, &[])
}

/// Consumes the presentation's nonce from `nonces` (refusing unknown,
/// reused and expired ones), then [`verify`]s it against that challenge.
pub fn verify_fresh(
    presentation: &RangePresentation,
    issuers: &impl IssuerKeys,
    expected: &Requirement,
    nonces: &mut NonceBook,
    now: u64,
) -> Result<VerifiedPredicate, ZkError> {
    nonces.consume(presentation.challenge(), now)?;
    verify(
        presentation,
        issuers,
        expected,
        presentation.challenge(),
        now,
    )
}

pub(crate) fn verify_in_context(
    presentation: &RangePresentation,
    issuers: &impl IssuerKeys,
    expected: &Requirement,
    challenge: &Challenge,
    now: u64,
    context: &[u8],
) -> Result<VerifiedPredicate, ZkError> {
    let credential = &presentation.credential;
    if presentation.challenge != *challenge {
        return Err(ZkError::WrongChallenge);
    }
    if credential.attribute() != expected.attribute {
        return Err(ZkError::WrongAttribute);
    }
    if expected.loinc.is_some() && credential.loinc() != expected.loinc.as_deref() {
        return Err(ZkError::WrongAttribute);
    }
    if presentation.range != expected.range {
        return Err(ZkError::WrongPredicate);
    }
    credential.check(issuers, now)?;
    let digest = credential.digest();
    if let Some(holder) = credential.holder() {
        let signature = presentation
            .holder_signature
            .as_ref()
            .ok_or(ZkError::HolderKeyRequired)?;
        let message = holder_message(
            &digest,
            &presentation.range,
            challenge,
            context,
            &presentation.proof.to_bytes(),
        );
        holder
            .public_key()
            .verify(&message, signature)
            .map_err(|_| ZkError::BadHolderSignature)?;
    }
    let range = presentation.range;
    let commitments = range.derived_commitments(credential.commitment_point());
    let mut transcript = transcript(&digest, &range, challenge, context);
    presentation
        .proof
        .verify_multiple(
            bulletproof_gens(),
            pedersen_gens(),
            &mut transcript,
            &commitments,
            range.proof_bits(),
        )
        .map_err(|_| ZkError::ProofInvalid)?;
    Ok(VerifiedPredicate {
        issuer: credential.issuer().to_string(),
        attribute: credential.attribute().to_string(),
        loinc: credential.loinc().map(str::to_string),
        range,
        holder: credential.holder().cloned(),
        verifier: challenge.verifier.clone(),
        credential_expires_at: credential.expires_at(),
    })
}

/// The transcript every proof starts from. Merlin frames each message with
/// its label and length, so the fields cannot run into each other.
fn transcript(
    credential_digest: &[u8; 32],
    range: &Range,
    challenge: &Challenge,
    context: &[u8],
) -> Transcript {
    let mut transcript = Transcript::new(TRANSCRIPT_LABEL);
    transcript.append_message(b"credential", credential_digest);
    transcript.append_message(b"range", &range.encode());
    transcript.append_message(b"verifier", challenge.verifier.as_bytes());
    transcript.append_message(b"nonce", &challenge.nonce);
    transcript.append_message(b"context", context);
    transcript
}

/// What the holder signs: the domain, then a hash of the statement and the
/// proof, each part length-prefixed.
fn holder_message(
    credential_digest: &[u8; 32],
    range: &Range,
    challenge: &Challenge,
    context: &[u8],
    proof: &[u8],
) -> Vec<u8> {
    let mut hash = Sha256::new();
    for part in [
        credential_digest.as_slice(),
        range.encode().as_slice(),
        challenge.verifier.as_bytes(),
        challenge.nonce.as_slice(),
        context,
        proof,
    ] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    let mut message = HOLDER_SIGNING_DOMAIN.to_vec();
    message.extend_from_slice(&hash.finalize());
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zk::commitment::AttributeClaims;
    use crate::zk::issuers::TrustedIssuers;
    use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;

    const LAB: &str = "did:web:lab.example";
    const NOW: u64 = 1_750_000_000;

    fn issue(value: u64, holder: Option<Did>) -> (CommittedAttributeCredential, Opening) {
        let claims = AttributeClaims {
            issuer: LAB.into(),
            attribute: "hba1c-percent-x10".into(),
            loinc: Some("4548-4".into()),
            value,
            issued_at: 1_700_000_000,
            expires_at: 1_800_000_000,
            holder,
        };
        CommittedAttributeCredential::issue(&Keypair::from_seed(&[1; 32]), &claims).unwrap()
    }

    fn issuers() -> TrustedIssuers {
        TrustedIssuers::new().with(LAB, Keypair::from_seed(&[1; 32]).public_key())
    }

    fn requirement(range: Range) -> Requirement {
        Requirement::new("hba1c-percent-x10", Some("4548-4"), range).unwrap()
    }

    #[test]
    fn the_value_generator_is_the_base_point() {
        assert_eq!(pedersen_gens().B, RISTRETTO_BASEPOINT_POINT);
    }

    #[test]
    fn bits_and_lengths_follow_the_range() {
        let cases = [
            (Range::between(57, 65).unwrap(), 8, 544),
            (Range::between(0, 256).unwrap(), 8, 544),
            (Range::between(0, 257).unwrap(), 16, 608),
            (Range::below(70).unwrap(), 8, 480),
            (Range::below(256).unwrap(), 8, 480),
            (Range::below(257).unwrap(), 16, 544),
            (Range::below(45_000).unwrap(), 16, 544),
            (Range::between(0, 1 << 20).unwrap(), 32, 672),
            (Range::between(0, 1 << 32).unwrap(), 32, 672),
            (Range::below(1 << 32).unwrap(), 32, 608),
            (Range::between(0, (1 << 32) + 1).unwrap(), 64, 736),
            (Range::at_least(10), 64, 672),
            (Range::at_least(u64::MAX - 255), 8, 480),
        ];
        for (range, bits, len) in cases {
            assert_eq!(
                (range.proof_bits(), range.proof_len()),
                (bits, len),
                "{range}"
            );
        }
    }

    #[test]
    fn empty_ranges_are_refused() {
        assert_eq!(
            Range::between(5, 5).unwrap_err().code(),
            "zk-invalid-predicate"
        );
        assert_eq!(Range::below(0).unwrap_err().code(), "zk-invalid-predicate");
        assert!(serde_json::from_str::<Range>("{}").is_err());
        assert!(serde_json::from_str::<Range>(r#"{"min_inclusive":9,"max_exclusive":3}"#).is_err());
        let range: Range = serde_json::from_str(r#"{"max_exclusive":70}"#).unwrap();
        assert_eq!(range, Range::below(70).unwrap());
    }

    #[test]
    fn edges_of_each_range_kind() {
        let cases: [(Range, &[u64], &[u64]); 9] = [
            (Range::between(57, 65).unwrap(), &[57, 64], &[56, 65]),
            (Range::between(0, 256).unwrap(), &[0, 255], &[256]),
            (
                Range::between(1000, 1000 + 65_536).unwrap(),
                &[1000, 66_535],
                &[999, 66_536],
            ),
            (
                Range::between(7, 7 + (1 << 32)).unwrap(),
                &[7, 6 + (1 << 32)],
                &[6, 7 + (1 << 32)],
            ),
            (Range::below(70).unwrap(), &[0, 69], &[70, u64::MAX]),
            (
                Range::below(u64::MAX).unwrap(),
                &[0, u64::MAX - 1],
                &[u64::MAX],
            ),
            (Range::at_least(18), &[18, u64::MAX], &[0, 17]),
            (Range::at_least(0), &[0, u64::MAX], &[]),
            (
                Range::at_least(u64::MAX - 255),
                &[u64::MAX - 255, u64::MAX],
                &[u64::MAX - 256],
            ),
        ];
        let challenge = Challenge::random("did:web:care.example");
        for (range, inside, outside) in cases {
            for &value in inside {
                let (credential, opening) = issue(value, None);
                let presentation = prove(&credential, &opening, range, &challenge, None).unwrap();
                assert_eq!(presentation.proof_bytes().len(), range.proof_len());
                verify(
                    &presentation,
                    &issuers(),
                    &requirement(range),
                    &challenge,
                    NOW,
                )
                .unwrap_or_else(|e| panic!("{range} {value}: {e}"));
            }
            for &value in outside {
                let (credential, opening) = issue(value, None);
                let result = prove(&credential, &opening, range, &challenge, None);
                assert_eq!(
                    result.unwrap_err().code(),
                    "zk-value-out-of-range",
                    "{range} {value}"
                );
            }
        }
    }

    /// A prover that skips the range check and wraps around: what a
    /// cheating holder could hand to Bulletproofs. Verification must fail.
    #[test]
    fn a_proof_of_a_false_statement_does_not_verify() {
        let (credential, opening) = issue(80, None);
        let range = Range::below(70).unwrap();
        let challenge = Challenge::random("did:web:care.example");
        let digest = credential.digest();
        // 69 - 80 wraps to 2^64 - 11, whose low 8 bits are 245; the bit
        // vectors commit to low bits only. 5 is simply another value.
        let bits = range.proof_bits();
        for value in [69u64.wrapping_sub(80), 245, 5] {
            let mut transcript = transcript(&digest, &range, &challenge, &[]);
            let (proof, _) = RangeProof::prove_multiple(
                bulletproof_gens(),
                pedersen_gens(),
                &mut transcript,
                &[value],
                &[-opening.blinding()],
                bits,
            )
            .unwrap();
            let presentation = RangePresentation {
                credential: credential.clone(),
                range,
                challenge: challenge.clone(),
                proof,
                holder_signature: None,
            };
            let err = verify(
                &presentation,
                &issuers(),
                &requirement(range),
                &challenge,
                NOW,
            )
            .unwrap_err();
            assert_eq!(err.code(), "zk-proof-invalid");
        }
    }

    #[test]
    fn holder_bound_credentials_need_the_holder_key() {
        let holder = Keypair::from_seed(&[2; 32]);
        let (credential, opening) = issue(64, Some(holder.did()));
        let range = Range::below(70).unwrap();
        let challenge = Challenge::random("did:web:care.example");
        assert_eq!(
            prove(&credential, &opening, range, &challenge, None)
                .unwrap_err()
                .code(),
            "zk-holder-key-required"
        );
        let stranger = Keypair::from_seed(&[3; 32]);
        assert_eq!(
            prove(&credential, &opening, range, &challenge, Some(&stranger))
                .unwrap_err()
                .code(),
            "zk-holder-key-mismatch"
        );
        let presentation = prove(&credential, &opening, range, &challenge, Some(&holder)).unwrap();
        let verified = verify(
            &presentation,
            &issuers(),
            &requirement(range),
            &challenge,
            NOW,
        )
        .unwrap();
        assert_eq!(verified.holder(), Some(&holder.did()));

        let mut unsigned = presentation.clone();
        unsigned.holder_signature = None;
        assert_eq!(
            verify(&unsigned, &issuers(), &requirement(range), &challenge, NOW)
                .unwrap_err()
                .code(),
            "zk-holder-key-required"
        );
        let mut forged = presentation.clone();
        forged.holder_signature = Some(stranger.sign(b"anything"));
        assert_eq!(
            verify(&forged, &issuers(), &requirement(range), &challenge, NOW)
                .unwrap_err()
                .code(),
            "zk-bad-holder-signature"
        );

        let (unbound, unbound_opening) = issue(64, None);
        assert_eq!(
            prove(&unbound, &unbound_opening, range, &challenge, Some(&holder))
                .unwrap_err()
                .code(),
            "zk-holder-key-mismatch"
        );
    }

    #[test]
    fn a_context_is_bound() {
        let (credential, opening) = issue(64, None);
        let range = Range::below(70).unwrap();
        let challenge = Challenge::random("did:web:care.example");
        let presentation =
            prove_in_context(&credential, &opening, range, &challenge, None, b"study a").unwrap();
        let req = requirement(range);
        verify_in_context(&presentation, &issuers(), &req, &challenge, NOW, b"study a").unwrap();
        assert_eq!(
            verify_in_context(&presentation, &issuers(), &req, &challenge, NOW, b"study b")
                .unwrap_err()
                .code(),
            "zk-proof-invalid"
        );
    }

    #[test]
    fn a_mismatched_opening_is_refused() {
        let (credential, _) = issue(64, None);
        let (_, other_opening) = issue(64, None);
        let challenge = Challenge::random("did:web:care.example");
        assert_eq!(
            prove(
                &credential,
                &other_opening,
                Range::below(70).unwrap(),
                &challenge,
                None
            )
            .unwrap_err()
            .code(),
            "zk-opening-mismatch"
        );
    }
}
