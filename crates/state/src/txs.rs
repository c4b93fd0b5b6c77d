//! The transaction types of patient-controlled records, and the schema of
//! each one's `body`. What each type means for the state is in the sibling
//! modules; docs/records.md lists them with examples.
//!
//! Bodies carry DIDs, codes, counts, times and commitments only: never a
//! name, a value or free text (invariant 1). Where a person writes free text
//! (a break-glass justification), the ledger records only that there was one.

use hygeia_ledger::ModuleRegistry;
use hygeia_policy::{is_country_code, is_did, Action, PurposeOfUse, Scope};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;

pub const ORG_REGISTER: &str = "org.register";
pub const ORG_MEMBER: &str = "org.member";
pub const GOVERNANCE_POLICY: &str = "governance.policy";
pub const RECORD: &str = "record";
pub const RECORD_ERASE: &str = "record.erase";
pub const CONSENT_GRANT: &str = "consent.grant";
pub const CONSENT_REVOKE: &str = "consent.revoke";
pub const CONSENT_DELEGATE: &str = "consent.delegate";
pub const ACCESS: &str = "access";
pub const ORG_KEYS: &str = "org.keys";
pub const TRUST_ISSUER: &str = "trust.issuer";
pub const STATUS_LIST: &str = "status.list";
pub const LICENCE_REGISTER: &str = "licence.register";
pub const IDENTITY_RECOVERY: &str = "identity.recovery";
pub const IDENTITY_ROTATE: &str = "identity.rotate";

/// Longest code (category, role, refusal, policy id).
pub const MAX_CODE_LEN: usize = 64;
/// Most record commitments one access event names.
pub const MAX_RECORDS_PER_ACCESS: usize = 256;

/// `org.register`, signed by the governance key: an organization joins the
/// network, administered by `admin`'s key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgRegister {
    /// The organization's DID (usually `did:web`).
    pub org: String,
    /// The `did:key` whose signature speaks for the organization.
    pub admin: String,
    pub kind: OrgKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OrgKind {
    Clinic,
    Hospital,
    Lab,
    Payer,
    Research,
    Pharmacy,
    Manufacturer,
    Regulator,
}

/// `org.member`, signed by the organization's admin: adds or updates a
/// member's roles, or suspends or removes the member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgMember {
    pub org: String,
    pub member: String,
    pub roles: BTreeSet<Role>,
    /// ISO 3166-1 alpha-2 country the member acts from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<String>,
    pub status: MemberStatus,
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Clinician,
    Nurse,
    LabTechnician,
    Pharmacist,
    Researcher,
    PayerAgent,
    Device,
    Admin,
}

impl Role {
    /// The role as governance policies see it (`principal.roles`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Clinician => "clinician",
            Role::Nurse => "nurse",
            Role::LabTechnician => "lab-technician",
            Role::Pharmacist => "pharmacist",
            Role::Researcher => "researcher",
            Role::PayerAgent => "payer-agent",
            Role::Device => "device",
            Role::Admin => "admin",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MemberStatus {
    Active,
    Suspended,
    Removed,
}

/// `governance.policy`, signed by the governance key: installs a Cedar
/// policy set. Versions only go up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GovernancePolicy {
    pub version: u64,
    /// Cedar policies, validated against the schema before they apply.
    pub policies: String,
}

/// `record`, signed by the node that holds the record: a record exists.
/// Only a salted commitment to the ciphertext's address reaches the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordBody {
    pub patient: String,
    /// Who wrote the record; their signature over it is kept with it.
    pub author: String,
    /// A category code, e.g. `lab`, `mental-health`.
    pub category: String,
    /// A FHIR resource type, e.g. `Observation`.
    pub resource_type: String,
    /// 64 lowercase hex digits; also the record's id.
    pub commitment: String,
}

/// `record.erase`, signed by the patient, a delegate or the governance key:
/// every copy of the record's data key is destroyed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordErase {
    pub record: String,
}

/// `consent.grant`, signed by the patient or a registered delegate. The
/// grant's id is the hex leaf hash of the transaction that carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentGrant {
    pub patient: String,
    pub grantee: String,
    pub scope: Scope,
    pub actions: BTreeSet<Action>,
    /// An HL7 v3 PurposeOfUse code, e.g. `TREAT`.
    pub purpose: String,
    /// Validity `[not_before, not_after)`, Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub jurisdictions: BTreeSet<String>,
}

impl ConsentGrant {
    /// The grant as the policy engine knows it.
    pub fn to_grant(&self, id: String) -> Result<hygeia_policy::Grant, String> {
        let purpose: PurposeOfUse = self
            .purpose
            .parse()
            .map_err(|e: hygeia_policy::UnknownPurpose| e.to_string())?;
        Ok(hygeia_policy::Grant {
            id,
            patient: self.patient.clone(),
            grantee: self.grantee.clone(),
            scope: self.scope.clone(),
            actions: self.actions.clone(),
            purpose,
            not_before: self.not_before,
            not_after: self.not_after,
            jurisdictions: self.jurisdictions.clone(),
        })
    }
}

/// `consent.revoke`, signed by the grant's patient or a delegate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentRevoke {
    /// The grant's id (the hex leaf hash of its `consent.grant`).
    pub grant: String,
}

/// `consent.delegate`, signed by the patient or the governance key: adds or
/// removes someone (a guardian) who may grant and revoke for the patient.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentDelegate {
    pub patient: String,
    pub delegate: String,
    pub op: DelegateOp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DelegateOp {
    Add,
    Remove,
}

/// `access`, signed by the node that decided: one access decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Access {
    pub requester: String,
    pub patient: String,
    pub action: Action,
    /// The purpose the requester stated.
    pub purpose: String,
    /// Commitments of the records concerned (none for a refused upload).
    pub records: Vec<String>,
    pub decision: Verdict,
    /// Decided by a break-glass policy: shown first to the patient.
    pub break_glass: bool,
    /// Whether the requester wrote a justification (kept off the ledger).
    pub justified: bool,
    /// The policies that decided (Cedar `@id`s).
    pub reasons: Vec<String>,
    /// The grants that permitted, by id.
    pub grants: Vec<String>,
    pub governance_version: u64,
    /// Decision time, Unix seconds.
    pub time: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Permit,
    Deny,
}

/// `org.keys`, signed by the organization's current admin key, or by the
/// governance key when that key is lost: replaces the keys that speak for
/// the organization. Its did:web document lists the current ones; the
/// `org.register` and `org.keys` entries are its history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgKeys {
    pub org: String,
    /// The new admin key.
    pub admin: String,
    /// Keys that sign credentials for the organization (assertionMethod);
    /// the admin key always may.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assertion: Vec<String>,
}

/// Most assertion keys one organization lists.
pub const MAX_ORG_KEYS: usize = 16;

/// `trust.issuer`, signed by the governance key: puts an issuer on the
/// trust list for one credential type (by its `vct`), or takes it off.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrustIssuer {
    pub issuer: String,
    pub credential_type: String,
    /// For licences: the countries whose licences the issuer is trusted
    /// to attest; empty means any.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub jurisdictions: BTreeSet<String>,
    pub op: TrustOp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TrustOp {
    Add,
    Remove,
}

/// `status.list`, signed by the issuer (or one of its organization's
/// keys): anchors a new version of a Bitstring Status List credential,
/// which the node then serves. The credential names no one: bits only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusListPublish {
    pub credential: Value,
}

/// `licence.register`, signed by the licensed person: their licence, an
/// SD-JWT VC presented with key binding to this node. It names a
/// professional, not a patient.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LicenceRegister {
    pub presentation: String,
}

/// `identity.recovery`, signed by the patient: registers the key that may
/// rotate the patient's identity after a k-of-n guardian recovery. Only
/// the recovery key's DID and the split's public id reach the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentityRecovery {
    pub recovery_key: String,
    pub threshold: u8,
    pub guardians: Vec<String>,
    /// The guardian split's id (64 hex digits), so guardians can check
    /// that their share belongs to the registered split.
    pub split: String,
}

/// `identity.rotate`, signed by the identity's registered recovery key
/// (or its current key): from now on `new_key` acts for `subject`, and the
/// key it replaces acts for no one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentityRotate {
    pub subject: String,
    pub new_key: String,
    /// The new key's acceptance: its Ed25519 signature (unpadded
    /// base64url) over [`IdentityRotate::proof_message`], so that no one
    /// can point an identity at a key they do not hold.
    pub proof: String,
}

/// `identity.rotate` as the rules before genesis admitted it (no proof),
/// accepted only in a migrated log's legacy prefix
/// ([`crate::network::Rules::V1`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityRotateV1 {
    pub subject: String,
    pub new_key: String,
}

/// What a new key signs to accept acting for an identity: this domain,
/// then the JCS (RFC 8785) bytes of `{"new_key": …, "subject": …}`.
pub const ROTATE_PROOF_DOMAIN: &[u8] = b"hygeia.identity.rotate.v1\x00";

impl IdentityRotate {
    /// The bytes `new_key` signs to accept acting for `subject`.
    pub fn proof_message(subject: &str, new_key: &str) -> Vec<u8> {
        let mut message = ROTATE_PROOF_DOMAIN.to_vec();
        let accept = serde_json::json!({"new_key": new_key, "subject": subject});
        // A map of two strings always canonicalizes.
        message.extend(serde_json_canonicalizer::to_vec(&accept).unwrap_or_default());
        message
    }

    /// A rotation of `subject` to `new_key`, with the new key's acceptance.
    pub fn accepted_by(subject: &str, new_key: &hygeia_identity::Keypair) -> IdentityRotate {
        use base64::Engine;
        let new_did = new_key.did().to_string();
        let signature = new_key.sign(&Self::proof_message(subject, &new_did));
        IdentityRotate {
            subject: subject.to_owned(),
            new_key: new_did,
            proof: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature.to_bytes()),
        }
    }

    /// Checks that `new_key` signed its acceptance of `subject`.
    pub fn verify_proof(&self) -> Result<(), String> {
        use base64::Engine;
        let refused = || {
            format!(
                "proof is not {}'s signature accepting {}",
                self.new_key, self.subject
            )
        };
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&self.proof)
            .map_err(|_| refused())?;
        let signature = hygeia_identity::Signature::from_slice(&bytes).map_err(|_| refused())?;
        let key = hygeia_identity::Did::parse_cached(&self.new_key).map_err(|_| refused())?;
        key.public_key()
            .verify(
                &Self::proof_message(&self.subject, &self.new_key),
                &signature,
            )
            .map_err(|_| refused())
    }
}

/// Parses a body of type `T`, naming the type in the error.
pub fn parse_body<T: DeserializeOwned>(tx_type: &str, body: &Value) -> Result<T, String> {
    T::deserialize(body).map_err(|e| format!("{tx_type} body: {e}"))
}

pub fn check_did(field: &str, did: &str) -> Result<(), String> {
    if is_did(did) {
        Ok(())
    } else {
        Err(format!("{field} must be a DID, not {did:?}"))
    }
}

/// `did:key` only: keys that sign must be resolvable without a registry.
pub fn check_did_key(field: &str, did: &str) -> Result<(), String> {
    hygeia_identity::Did::parse_cached(did)
        .map(|_| ())
        .map_err(|e| format!("{field} must be an Ed25519 did:key: {e}"))
}

/// A code: 1 to 64 characters from `[a-z0-9._-]`, starting with a letter or
/// digit — never free text.
pub fn check_code(field: &str, code: &str) -> Result<(), String> {
    hygeia_ledger::attest::check_label(code)
        .map_err(|_| format!("{field} must be a code of 1 to {MAX_CODE_LEN} characters from [a-z0-9._-], not {code:?}"))
}

/// A FHIR resource type name: an upper-case letter then letters.
pub fn check_resource_type(resource_type: &str) -> Result<(), String> {
    let mut bytes = resource_type.bytes();
    let valid = bytes.next().is_some_and(|b| b.is_ascii_uppercase())
        && bytes.all(|b| b.is_ascii_alphabetic())
        && resource_type.len() <= MAX_CODE_LEN;
    if valid {
        Ok(())
    } else {
        Err(format!(
            "resource_type must be a FHIR resource type name such as \"Observation\", not {resource_type:?}"
        ))
    }
}

/// 64 lowercase hex digits.
pub fn check_hex32(field: &str, value: &str) -> Result<(), String> {
    if value.len() == 64
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(format!("{field} must be 64 lowercase hex digits"))
    }
}

pub(crate) fn check_country(field: &str, code: &str) -> Result<(), String> {
    if is_country_code(code) {
        Ok(())
    } else {
        Err(format!(
            "{field} must be an ISO 3166-1 alpha-2 country code such as \"FR\", not {code:?}"
        ))
    }
}

/// A credential type: an `https` URL (an SD-JWT VC `vct`).
pub(crate) fn check_credential_type(vct: &str) -> Result<(), String> {
    let ok = vct.starts_with("https://")
        && vct.len() <= 256
        && vct.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "credential_type must be an https URL (a vct), not {vct:?}"
        ))
    }
}

pub(crate) fn check_purpose(code: &str) -> Result<(), String> {
    code.parse::<PurposeOfUse>()
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Every transaction type a node accepts: the ledger's and those of the
/// domains in [`crate::registry::Registry`].
pub fn registry() -> ModuleRegistry {
    crate::registry::Registry::global().modules()
}
