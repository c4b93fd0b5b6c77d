//! Credentials as a node takes them (docs/records.md, "Licences, trust
//! lists and status lists"): SD-JWT VCs bound (`cnf`) to their holder's
//! key, signed by an issuer's did:key or by a current key of an
//! organization's did:web, and the presentation `licence.register`
//! carries.

use hygeia_credentials::credential_types::{
    ClinicianLicence, Credential, CredentialError, Issuance,
};
use hygeia_credentials::jws::{Header, SigningKey, VerifyingKey};
use hygeia_credentials::sd_jwt::{IssuerKeyResolver, SdJwt, SdJwtError};
use hygeia_credentials::status_list::StatusListEntry;
use hygeia_identity::{Did, DidDocument, Keypair, PublicKey, Relationship};
use serde_json::Value;

/// A second handle on `key`, for APIs that take keys by value (the seed
/// copy is wiped when dropped).
pub fn copy_key(key: &Keypair) -> Keypair {
    let seed = zeroize::Zeroizing::new(key.as_dalek().to_bytes());
    Keypair::from_seed(&seed)
}

/// `key` as a JWS signing key.
pub fn signing_key(key: &Keypair) -> SigningKey {
    SigningKey::from(copy_key(key))
}

/// The verification method (also the JOSE `kid`) under which `key` signs
/// for `issuer`: a did:key's own method, or for an organization's did:web
/// the fragment naming the key by its did:key multibase, as the node's
/// did:web documents do.
pub fn verification_method(issuer: &str, key: &Keypair) -> String {
    let did = key.did();
    if issuer == did.as_str() {
        did.verification_method()
    } else {
        let multibase = did.as_str().trim_start_matches("did:key:");
        format!("{issuer}#{multibase}")
    }
}

/// The `status` claim for these entries: one entry as an object, several
/// as a list, none as no claim.
pub fn status_claim(entries: &[StatusListEntry]) -> Option<Value> {
    match entries {
        [] => None,
        [one] => Some(one.to_json()),
        many => Some(Value::Array(
            many.iter().map(StatusListEntry::to_json).collect(),
        )),
    }
}

/// Who signs a credential: a key, and the DID it signs for (its own
/// did:key, or an organization whose current key it is).
pub struct Issuer<'a> {
    pub key: &'a Keypair,
    pub did: String,
}

impl<'a> Issuer<'a> {
    /// An issuer signing under its own did:key.
    pub fn did_key(key: &'a Keypair) -> Self {
        Issuer {
            key,
            did: key.did().to_string(),
        }
    }

    /// Issues `credential` as an SD-JWT VC bound to `holder`, valid from
    /// `issued_at` until `expires_at`, with `status` entries if revocable.
    pub fn issue(
        &self,
        credential: &Credential,
        holder: PublicKey,
        issued_at: i64,
        expires_at: Option<i64>,
        status: &[StatusListEntry],
    ) -> Result<String, CredentialError> {
        let issuance = Issuance {
            issuer: self.did.clone(),
            issued_at,
            expires_at,
            holder_key: VerifyingKey::from(holder),
            status: status_claim(status),
            key_id: Some(verification_method(&self.did, self.key)),
        };
        credential.issue(&issuance, &signing_key(self.key))
    }
}

/// A clinician licence for `holder`: `profession` in `jurisdiction`.
pub fn licence(holder: Did, profession: &str, jurisdiction: &str) -> Credential {
    Credential::ClinicianLicence(ClinicianLicence {
        subject: holder,
        licence_number: None,
        profession: profession.to_owned(),
        specialty: None,
        jurisdiction: jurisdiction.to_owned(),
    })
}

/// The key of a did:key issuer, read from the DID itself. A `kid`, if
/// given, must be the DID's own verification method.
pub fn did_key_issuer_key(issuer: &str, header: &Header) -> Option<VerifyingKey> {
    let did = Did::parse_cached(issuer).ok()?;
    match header.kid() {
        Some(kid) if kid != did.verification_method() => None,
        _ => Some(VerifyingKey::from(*did.public_key())),
    }
}

/// The key of an issuer whose DID document is `document`: the `kid` must
/// name a method of that document authorized for `assertionMethod`.
pub fn document_issuer_key(
    document: &DidDocument,
    issuer: &str,
    header: &Header,
) -> Option<VerifyingKey> {
    if document.id != issuer {
        return None;
    }
    let kid = header.kid()?;
    document
        .ed25519_key(kid, Relationship::AssertionMethod)
        .ok()
        .map(VerifyingKey::from)
}

/// The presentation `licence.register` takes: the issued licence with
/// nothing extra disclosed and a key-binding JWT signed by `holder`,
/// addressed to the node (`aud` = its DID) with the holder's DID as the
/// nonce, so it registers for that holder on that node only. The issuer's
/// signature is checked first with `resolver`.
pub fn registration(
    issued: &str,
    holder: &Keypair,
    node_did: &str,
    now: i64,
    resolver: &impl IssuerKeyResolver,
) -> Result<String, SdJwtError> {
    let held = SdJwt::parse(issued, resolver)?;
    held.present_with_key_binding(
        &[],
        node_did,
        holder.did().as_str(),
        now,
        &signing_key(holder),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use hygeia_credentials::credential_types::VCT_CLINICIAN_LICENCE;
    use hygeia_credentials::sd_jwt::{verify_presentation, VerifyOptions};

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn a_registration_verifies_as_the_node_checks_it() {
        let board = Keypair::from_seed(&[7; 32]);
        let clinician = Keypair::from_seed(&[8; 32]);
        let issued = Issuer::did_key(&board)
            .issue(
                &licence(clinician.did(), "physician", "FR"),
                clinician.public_key(),
                NOW - 60,
                Some(NOW + 86_400),
                &[],
            )
            .unwrap();
        let node = "did:key:z6MkNode";
        let shown = registration(&issued, &clinician, node, NOW, &did_key_issuer_key).unwrap();
        let options =
            VerifyOptions::new(NOW).require_key_binding(node, clinician.did().to_string());
        let verified = verify_presentation(&shown, &did_key_issuer_key, &options).unwrap();
        assert_eq!(verified.vct(), VCT_CLINICIAN_LICENCE);
        assert_eq!(verified.subject(), Some(clinician.did().as_str()));
        // Someone else's key cannot present it.
        let thief = Keypair::from_seed(&[9; 32]);
        let err = registration(&issued, &thief, node, NOW, &did_key_issuer_key).unwrap_err();
        assert_eq!(err.code(), "kb-jwt-holder-key-mismatch");
    }

    #[test]
    fn a_did_key_issuer_signs_only_under_its_own_method() {
        let board = Keypair::from_seed(&[7; 32]);
        let other = Keypair::from_seed(&[6; 32]);
        let issued = Issuer {
            key: &other,
            did: board.did().to_string(),
        }
        .issue(
            &licence(other.did(), "nurse", "DE"),
            other.public_key(),
            NOW,
            None,
            &[],
        )
        .unwrap();
        let err = SdJwt::parse(&issued, &did_key_issuer_key).unwrap_err();
        assert_eq!(err.code(), "sd-jwt-unknown-issuer");
    }

    #[test]
    fn did_web_keys_are_named_by_their_multibase() {
        let key = Keypair::from_seed(&[5; 32]);
        let method = verification_method("did:web:hospital.example:orgs:acme", &key);
        let multibase = key.did().to_string().replace("did:key:", "");
        assert_eq!(
            method,
            format!("did:web:hospital.example:orgs:acme#{multibase}")
        );
        assert_eq!(
            verification_method(key.did().as_str(), &key),
            key.did().verification_method()
        );
    }
}
