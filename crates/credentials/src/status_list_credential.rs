//! Bitstring Status List credentials: the VC 2.0 credential an issuer
//! publishes at a URL, holding one [`StatusList`] for one purpose, and the
//! check of a credential's status entry against it.

use hygeia_identity::{Keypair, PublicKey};
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::status_list::{
    StatusList, StatusListEntry, StatusListError, StatusPurpose, MAX_DECODED_BYTES,
};
use crate::vc::{verify_credential, Credential, VcError};

/// The type of a status list credential.
pub const STATUS_LIST_CREDENTIAL: &str = "BitstringStatusListCredential";
/// The type of its subject.
pub const STATUS_LIST: &str = "BitstringStatusList";

/// A status list credential to issue.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusListCredential {
    /// The URL the credential is published at; entries name it in
    /// `statusListCredential`.
    pub id: String,
    pub issuer: String,
    pub purpose: StatusPurpose,
    pub list: StatusList,
    pub valid_from: Option<OffsetDateTime>,
    /// When verifiers should fetch a fresh list.
    pub valid_until: Option<OffsetDateTime>,
}

impl StatusListCredential {
    fn credential(&self) -> Credential {
        Credential {
            extra_contexts: vec![],
            id: Some(self.id.clone()),
            types: vec![STATUS_LIST_CREDENTIAL.to_string()],
            issuer: self.issuer.clone(),
            valid_from: self.valid_from,
            valid_until: self.valid_until,
            subject: json!({
                "id": format!("{}#list", self.id),
                "type": STATUS_LIST,
                "statusPurpose": self.purpose.as_str(),
                "encodedList": self.list.encode(),
            }),
            status: vec![],
        }
    }

    /// The unsecured credential JSON.
    pub fn to_json(&self) -> Result<Value, StatusListError> {
        Ok(self.credential().to_json()?)
    }

    /// The credential secured with an `eddsa-jcs-2022` assertion proof.
    pub fn issue(
        &self,
        key: &Keypair,
        verification_method: &str,
        created: OffsetDateTime,
    ) -> Result<Value, StatusListError> {
        Ok(self.credential().issue(key, verification_method, created)?)
    }

    /// Verifies a status list credential at `now` (proof, issuer, validity
    /// window: see [`verify_credential`]) and decodes its list.
    pub fn verify(
        credential: &Value,
        now: OffsetDateTime,
        resolve: impl Fn(&str) -> Option<PublicKey>,
    ) -> Result<VerifiedStatusList, StatusListError> {
        Self::verify_limited(credential, now, resolve, MAX_DECODED_BYTES)
    }

    /// [`StatusListCredential::verify`], refusing lists that decode to more
    /// than `max_decoded_bytes` (see [`StatusList::decode_limited`]).
    pub fn verify_limited(
        credential: &Value,
        now: OffsetDateTime,
        resolve: impl Fn(&str) -> Option<PublicKey>,
        max_decoded_bytes: usize,
    ) -> Result<VerifiedStatusList, StatusListError> {
        let verified = verify_credential(credential, now, resolve)?;
        if !verified.has_type(STATUS_LIST_CREDENTIAL) {
            return Err(VcError::WrongType(STATUS_LIST_CREDENTIAL).into());
        }
        let id = verified
            .id()
            .ok_or_else(|| VcError::malformed("a status list credential needs an id"))?
            .to_string();
        let subject = verified.subject();
        if subject.get("type").and_then(Value::as_str) != Some(STATUS_LIST) {
            return Err(VcError::BadSubject(format!("the subject is not a {STATUS_LIST}")).into());
        }
        let purpose = match subject.get("statusPurpose") {
            Some(Value::String(purpose)) => StatusPurpose::parse(purpose)?,
            _ => return Err(VcError::BadSubject("statusPurpose must be a string".into()).into()),
        };
        if let Some(size) = subject.get("statusSize") {
            if size.as_u64() != Some(1) {
                return Err(StatusListError::UnsupportedSize);
            }
        }
        let encoded = subject
            .get("encodedList")
            .and_then(Value::as_str)
            .ok_or_else(|| VcError::BadSubject("encodedList is missing".into()))?;
        let list = StatusList::decode_limited(encoded, max_decoded_bytes)?;
        Ok(VerifiedStatusList {
            id,
            issuer: verified.issuer().to_string(),
            purpose,
            list,
            valid_until: verified.valid_until(),
        })
    }
}

/// A decoded status list from a credential that verified; only
/// [`StatusListCredential::verify`] makes one. Cheap to keep and reuse
/// until [`VerifiedStatusList::valid_until`].
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedStatusList {
    id: String,
    issuer: String,
    purpose: StatusPurpose,
    list: StatusList,
    valid_until: Option<OffsetDateTime>,
}

impl VerifiedStatusList {
    /// The URL of the list credential.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn purpose(&self) -> StatusPurpose {
        self.purpose
    }

    pub fn list(&self) -> &StatusList {
        &self.list
    }

    /// The decoded list, without a copy.
    pub fn into_list(self) -> StatusList {
        self.list
    }

    pub fn valid_until(&self) -> Option<OffsetDateTime> {
        self.valid_until
    }
}

/// The status of a credential according to one of its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialStatus {
    Valid,
    Revoked,
    Suspended,
}

/// Reads the bit `entry` points to in `list`: the entry must name this
/// list (`statusListCredential` = the list credential's `id`) and its
/// purpose, and its index must lie inside the list.
///
/// This does not compare issuers; use [`check_issued_by`] when checking a
/// credential, so that a list published by someone else cannot vouch for
/// it.
pub fn check(
    entry: &StatusListEntry,
    list: &VerifiedStatusList,
) -> Result<CredentialStatus, StatusListError> {
    if entry.list_credential != list.id {
        return Err(StatusListError::ListUrlMismatch {
            entry: entry.list_credential.clone(),
            list: list.id.clone(),
        });
    }
    if entry.purpose != list.purpose {
        return Err(StatusListError::PurposeMismatch {
            entry: entry.purpose.as_str(),
            list: list.purpose.as_str(),
        });
    }
    if !list.list.get(entry.index)? {
        return Ok(CredentialStatus::Valid);
    }
    Ok(match entry.purpose {
        StatusPurpose::Revocation => CredentialStatus::Revoked,
        StatusPurpose::Suspension => CredentialStatus::Suspended,
    })
}

/// [`check`], after making sure the list was issued by the credential's
/// own issuer.
pub fn check_issued_by(
    entry: &StatusListEntry,
    credential_issuer: &str,
    list: &VerifiedStatusList,
) -> Result<CredentialStatus, StatusListError> {
    if list.issuer != credential_issuer {
        return Err(StatusListError::IssuerMismatch {
            list: list.issuer.clone(),
            credential: credential_issuer.to_string(),
        });
    }
    check(entry, list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data_integrity::resolve_did_key_method;
    use time::macros::datetime;

    const URL: &str = "https://issuer.example/status/1";
    const NOW: OffsetDateTime = datetime!(2025-06-01 00:00 UTC);

    fn key() -> Keypair {
        Keypair::from_seed(&[41; 32])
    }

    fn issued(purpose: StatusPurpose, set: &[usize]) -> Value {
        let mut list = StatusList::new(0).unwrap();
        for index in set {
            list.set(*index, true).unwrap();
        }
        let credential = StatusListCredential {
            id: URL.into(),
            issuer: key().did().to_string(),
            purpose,
            list,
            valid_from: Some(datetime!(2025-05-01 00:00 UTC)),
            valid_until: Some(datetime!(2025-07-01 00:00 UTC)),
        };
        credential
            .issue(
                &key(),
                &key().did().verification_method(),
                datetime!(2025-05-01 00:00 UTC),
            )
            .unwrap()
    }

    fn verified(purpose: StatusPurpose, set: &[usize]) -> VerifiedStatusList {
        StatusListCredential::verify(&issued(purpose, set), NOW, resolve_did_key_method).unwrap()
    }

    #[test]
    fn issues_the_spec_shape() {
        let vc = issued(StatusPurpose::Revocation, &[]);
        assert_eq!(
            vc["type"],
            json!(["VerifiableCredential", "BitstringStatusListCredential"])
        );
        assert_eq!(vc["id"], URL);
        let subject = &vc["credentialSubject"];
        assert_eq!(subject["id"], format!("{URL}#list"));
        assert_eq!(subject["type"], "BitstringStatusList");
        assert_eq!(subject["statusPurpose"], "revocation");
        assert!(subject["encodedList"]
            .as_str()
            .unwrap()
            .starts_with("uH4sI"));
    }

    #[test]
    fn revoked_and_suspended_bits_are_reported() {
        let revocations = verified(StatusPurpose::Revocation, &[5]);
        assert_eq!(revocations.issuer(), key().did().as_str());
        let entry = |index| StatusListEntry::new(URL, StatusPurpose::Revocation, index);
        assert_eq!(
            check(&entry(5), &revocations),
            Ok(CredentialStatus::Revoked)
        );
        assert_eq!(check(&entry(6), &revocations), Ok(CredentialStatus::Valid));
        let suspensions = verified(StatusPurpose::Suspension, &[5]);
        let entry = StatusListEntry::new(URL, StatusPurpose::Suspension, 5);
        assert_eq!(check(&entry, &suspensions), Ok(CredentialStatus::Suspended));
        assert_eq!(
            check_issued_by(&entry, key().did().as_str(), &suspensions),
            Ok(CredentialStatus::Suspended)
        );
    }

    #[test]
    fn refuses_mismatched_entries_with_codes() {
        let list = verified(StatusPurpose::Revocation, &[5]);
        let code = |entry: &StatusListEntry| check(entry, &list).unwrap_err().code();
        let other_url = StatusListEntry::new(
            "https://issuer.example/status/2",
            StatusPurpose::Revocation,
            5,
        );
        assert_eq!(code(&other_url), "status-list-url-mismatch");
        let suspension = StatusListEntry::new(URL, StatusPurpose::Suspension, 5);
        assert_eq!(code(&suspension), "status-purpose-mismatch");
        let beyond = StatusListEntry::new(URL, StatusPurpose::Revocation, list.list().len());
        assert_eq!(code(&beyond), "status-index-out-of-range");
        let entry = StatusListEntry::new(URL, StatusPurpose::Revocation, 5);
        let err = check_issued_by(&entry, "did:web:other.example", &list).unwrap_err();
        assert_eq!(err.code(), "status-issuer-mismatch");
    }

    #[test]
    fn refuses_bad_list_credentials_with_codes() {
        let vc = issued(StatusPurpose::Revocation, &[]);
        let verify = |vc: &Value, now| {
            StatusListCredential::verify(vc, now, resolve_did_key_method)
                .unwrap_err()
                .code()
        };
        assert_eq!(verify(&vc, datetime!(2025-08-01 00:00 UTC)), "vc-expired");
        let mut tampered = vc.clone();
        tampered["credentialSubject"]["statusPurpose"] = json!("suspension");
        assert_eq!(verify(&tampered, NOW), "vc-bad-proof");

        let resign = |edit: &dyn Fn(&mut Value)| {
            let mut unsigned = vc.clone();
            unsigned.as_object_mut().unwrap().remove("proof");
            edit(&mut unsigned);
            let options = crate::data_integrity::ProofOptions::assertion(
                key().did().verification_method(),
                NOW,
            );
            let vc = crate::data_integrity::add_proof(&unsigned, options, &key()).unwrap();
            verify(&vc, NOW)
        };
        assert_eq!(
            resign(&|vc| vc["type"] = json!(["VerifiableCredential"])),
            "vc-wrong-type"
        );
        assert_eq!(
            resign(&|vc| drop(vc.as_object_mut().unwrap().remove("id"))),
            "vc-malformed"
        );
        assert_eq!(
            resign(&|vc| vc["credentialSubject"]["type"] = json!("StatusList2021")),
            "vc-bad-subject"
        );
        assert_eq!(
            resign(&|vc| vc["credentialSubject"]["statusPurpose"] = json!(["revocation"])),
            "vc-bad-subject"
        );
        assert_eq!(
            resign(&|vc| vc["credentialSubject"]["statusPurpose"] = json!("refresh")),
            "status-unsupported-purpose"
        );
        assert_eq!(
            resign(&|vc| vc["credentialSubject"]["statusSize"] = json!(2)),
            "status-unsupported-size"
        );
        assert_eq!(
            resign(&|vc| drop(
                vc["credentialSubject"]
                    .as_object_mut()
                    .unwrap()
                    .remove("encodedList")
            )),
            "vc-bad-subject"
        );
        assert_eq!(
            resign(&|vc| vc["credentialSubject"]["encodedList"] = json!("uAAAA")),
            "status-list-malformed"
        );
    }
}
