//! A clinician's licence as a VC 2.0 credential: a licensing board (the
//! issuer) attests that the holder of a did:key is licensed to practise a
//! profession in a jurisdiction.

use hygeia_identity::{Did, Keypair, PublicKey};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::status_list::StatusListEntry;
use crate::vc::{verify_credential, Credential, VcError, VerifiedCredential};

/// The credential type.
pub const CLINICIAN_LICENCE_CREDENTIAL: &str = "ClinicianLicenceCredential";
/// The context naming the licence terms. Proofs here are `eddsa-jcs-2022`
/// (JSON, not JSON-LD, canonicalization), so nothing dereferences it; it is
/// a placeholder until a published context exists.
pub const CLINICIAN_LICENCE_CONTEXT: &str = "https://hygeia.example/ns/clinician-licence/v1";

/// What a licence attests about its subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClinicianLicence {
    /// The clinician's signing identity.
    pub subject: Did,
    pub licence_number: String,
    /// e.g. "physician", "nurse", "pharmacist".
    pub profession: String,
    pub specialty: Option<String>,
    /// Where the licence applies, e.g. "FR" or "US-CA".
    pub jurisdiction: String,
}

/// A licence credential to issue.
#[derive(Debug, Clone, PartialEq)]
pub struct ClinicianLicenceCredential {
    /// Usually `urn:uuid:…`.
    pub id: Option<String>,
    /// The licensing board's DID.
    pub issuer: String,
    pub valid_from: OffsetDateTime,
    pub valid_until: OffsetDateTime,
    pub licence: ClinicianLicence,
    /// Where the licence's revocation (or suspension) bit lives.
    pub status: Vec<StatusListEntry>,
}

impl ClinicianLicenceCredential {
    fn credential(&self) -> Credential {
        let licence = &self.licence;
        let mut subject = Map::new();
        subject.insert("id".into(), licence.subject.as_str().into());
        subject.insert(
            "licenceNumber".into(),
            licence.licence_number.clone().into(),
        );
        subject.insert("profession".into(), licence.profession.clone().into());
        if let Some(specialty) = &licence.specialty {
            subject.insert("specialty".into(), specialty.clone().into());
        }
        subject.insert("jurisdiction".into(), licence.jurisdiction.clone().into());
        Credential {
            extra_contexts: vec![CLINICIAN_LICENCE_CONTEXT.to_string()],
            id: self.id.clone(),
            types: vec![CLINICIAN_LICENCE_CREDENTIAL.to_string()],
            issuer: self.issuer.clone(),
            valid_from: Some(self.valid_from),
            valid_until: Some(self.valid_until),
            subject: Value::Object(subject),
            status: self.status.iter().map(StatusListEntry::to_json).collect(),
        }
    }

    /// The unsecured credential JSON.
    pub fn to_json(&self) -> Result<Value, VcError> {
        self.credential().to_json()
    }

    /// The credential secured with an `eddsa-jcs-2022` assertion proof.
    pub fn issue(
        &self,
        key: &Keypair,
        verification_method: &str,
        created: OffsetDateTime,
    ) -> Result<Value, VcError> {
        self.credential().issue(key, verification_method, created)
    }
}

/// A licence credential that verified at a given time.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedLicence {
    credential: VerifiedCredential,
    licence: ClinicianLicence,
    status: Vec<StatusListEntry>,
}

impl VerifiedLicence {
    pub fn licence(&self) -> &ClinicianLicence {
        &self.licence
    }

    pub fn credential(&self) -> &VerifiedCredential {
        &self.credential
    }

    pub fn issuer(&self) -> &str {
        self.credential.issuer()
    }

    /// Status entries to check against the issuer's status lists.
    pub fn status(&self) -> &[StatusListEntry] {
        &self.status
    }
}

/// Verifies a licence credential at `now` ([`verify_credential`]), then
/// reads its subject. Whether the issuer is a licensing board the caller
/// trusts, and whether the licence is revoked, are the caller's checks
/// (its `resolve` decides which keys speak for which issuer; the status
/// entries are returned).
pub fn verify_clinician_licence(
    credential: &Value,
    now: OffsetDateTime,
    resolve: impl Fn(&str) -> Option<PublicKey>,
) -> Result<VerifiedLicence, VcError> {
    let credential = verify_credential(credential, now, resolve)?;
    if !credential.has_type(CLINICIAN_LICENCE_CREDENTIAL) {
        return Err(VcError::WrongType(CLINICIAN_LICENCE_CREDENTIAL));
    }
    let licence = read_licence(credential.subject())?;
    let status = match credential.status() {
        None => Vec::new(),
        Some(status) => StatusListEntry::all_from_json(status)
            .map_err(|e| VcError::malformed(format!("credentialStatus: {e}")))?,
    };
    Ok(VerifiedLicence {
        credential,
        licence,
        status,
    })
}

fn read_licence(subject: &Value) -> Result<ClinicianLicence, VcError> {
    let subject = subject
        .as_object()
        .ok_or_else(|| VcError::BadSubject("a licence has exactly one subject".into()))?;
    let text = |name: &str| match subject.get(name) {
        Some(Value::String(text)) if !text.trim().is_empty() => Ok(text.clone()),
        _ => Err(VcError::BadSubject(format!("{name} is missing or empty"))),
    };
    let id = text("id")?;
    let did = Did::parse_cached(&id)
        .map_err(|e| VcError::BadSubject(format!("id is not an Ed25519 did:key: {e}")))?;
    let specialty = match subject.get("specialty") {
        None => None,
        Some(_) => Some(text("specialty")?),
    };
    Ok(ClinicianLicence {
        subject: did,
        licence_number: text("licenceNumber")?,
        profession: text("profession")?,
        specialty,
        jurisdiction: text("jurisdiction")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data_integrity::resolve_did_key_method;
    use crate::status_list::StatusPurpose;
    use time::macros::datetime;

    use serde_json::json;

    const NOW: OffsetDateTime = datetime!(2025-06-01 00:00 UTC);

    fn example_subject(subject: &Did) -> Value {
        json!({
            "id": subject.as_str(),
            "licenceNumber": "10003456789",
            "profession": "physician",
            "specialty": "cardiology",
            "jurisdiction": "FR",
        })
    }

    fn board() -> Keypair {
        Keypair::from_seed(&[31; 32])
    }

    fn clinician() -> Did {
        Keypair::from_seed(&[32; 32]).did()
    }

    fn licence() -> ClinicianLicenceCredential {
        ClinicianLicenceCredential {
            id: Some("urn:uuid:6f0d3d53-43a4-4c9e-9d4e-3c5a2b1f0e01".into()),
            issuer: board().did().to_string(),
            valid_from: datetime!(2025-01-01 00:00 UTC),
            valid_until: datetime!(2030-01-01 00:00 UTC),
            licence: ClinicianLicence {
                subject: clinician(),
                licence_number: "10003456789".into(),
                profession: "physician".into(),
                specialty: Some("cardiology".into()),
                jurisdiction: "FR".into(),
            },
            status: vec![StatusListEntry::new(
                "https://board.example/status/1",
                StatusPurpose::Revocation,
                94_567,
            )],
        }
    }

    fn issue(credential: &ClinicianLicenceCredential) -> Value {
        let key = board();
        credential
            .issue(
                &key,
                &key.did().verification_method(),
                datetime!(2025-01-01 00:00 UTC),
            )
            .unwrap()
    }

    #[test]
    fn issues_the_vc_2_0_shape() {
        let vc = issue(&licence());
        assert_eq!(
            vc["@context"],
            json!([
                "https://www.w3.org/ns/credentials/v2",
                CLINICIAN_LICENCE_CONTEXT
            ])
        );
        assert_eq!(
            vc["type"],
            json!(["VerifiableCredential", "ClinicianLicenceCredential"])
        );
        assert_eq!(vc["credentialSubject"], example_subject(&clinician()));
        assert_eq!(vc["validUntil"], "2030-01-01T00:00:00Z");
        assert_eq!(vc["credentialStatus"]["statusListIndex"], "94567");
        assert_eq!(vc["proof"]["cryptosuite"], "eddsa-jcs-2022");
    }

    #[test]
    fn verifies_and_returns_the_typed_licence() {
        let verified =
            verify_clinician_licence(&issue(&licence()), NOW, resolve_did_key_method).unwrap();
        assert_eq!(verified.licence(), &licence().licence);
        assert_eq!(verified.issuer(), board().did().as_str());
        assert_eq!(verified.status(), licence().status.as_slice());

        let mut no_specialty = licence();
        no_specialty.licence.specialty = None;
        no_specialty.status.clear();
        let verified =
            verify_clinician_licence(&issue(&no_specialty), NOW, resolve_did_key_method).unwrap();
        assert_eq!(verified.licence().specialty, None);
        assert!(verified.status().is_empty());
    }

    #[test]
    fn refuses_bad_licences_with_codes() {
        let check = |vc: &Value, now| {
            verify_clinician_licence(vc, now, resolve_did_key_method)
                .unwrap_err()
                .code()
        };
        let vc = issue(&licence());
        assert_eq!(check(&vc, datetime!(2031-01-01 00:00 UTC)), "vc-expired");
        assert_eq!(
            check(&vc, datetime!(2024-01-01 00:00 UTC)),
            "vc-not-yet-valid"
        );
        let mut tampered = vc.clone();
        tampered["credentialSubject"]["specialty"] = json!("surgery");
        assert_eq!(check(&tampered, NOW), "vc-bad-proof");
        let mut suite = vc.clone();
        suite["proof"]["cryptosuite"] = json!("eddsa-rdfc-2022");
        assert_eq!(check(&suite, NOW), "vc-unsupported-cryptosuite");

        let resign = |edit: &dyn Fn(&mut Value)| {
            let mut unsigned = licence().to_json().unwrap();
            edit(&mut unsigned);
            let key = board();
            let options = crate::data_integrity::ProofOptions::assertion(
                key.did().verification_method(),
                NOW,
            );
            let vc = crate::data_integrity::add_proof(&unsigned, options, &key).unwrap();
            check(&vc, NOW)
        };
        assert_eq!(
            resign(&|vc| vc["type"] = json!(["VerifiableCredential"])),
            "vc-wrong-type"
        );
        assert_eq!(
            resign(&|vc| vc["credentialSubject"]["id"] = json!("did:web:clinic.example")),
            "vc-bad-subject"
        );
        assert_eq!(
            resign(&|vc| vc["credentialSubject"]["profession"] = json!("")),
            "vc-bad-subject"
        );
        assert_eq!(
            resign(&|vc| vc["credentialSubject"]["specialty"] = json!(3)),
            "vc-bad-subject"
        );
        assert_eq!(
            resign(&|vc| drop(
                vc["credentialSubject"]
                    .as_object_mut()
                    .unwrap()
                    .remove("licenceNumber")
            )),
            "vc-bad-subject"
        );
        assert_eq!(
            resign(&|vc| vc["credentialSubject"] =
                json!([vc["credentialSubject"].clone(), {"id": "x"}])),
            "vc-bad-subject"
        );
        assert_eq!(
            resign(&|vc| vc["credentialStatus"]["statusListIndex"] = json!(5)),
            "vc-malformed"
        );
    }
}
