//! Credentials as governance state: which issuers are trusted for which
//! credential type (the trust list), the status lists issuers publish, and
//! the licences participants registered.
//!
//! Everything here is replayed from the log. A licence is checked when it
//! is registered (issuer signature, key binding to the registering key) and
//! again at every decision (trusted issuer, validity window, revocation and
//! suspension bits of the latest anchored status list), so revoking a
//! licence or removing its issuer from the trust list takes effect on the
//! next decision.

use std::collections::{BTreeSet, HashMap};

use hygeia_credentials::status_list::{StatusList, StatusPurpose};
use hygeia_ledger::{ErrorCode, TxError};
use hygeia_policy::Licence;
use serde::Serialize;

use super::participants::Participants;

/// A trust-list entry: `issuer` is trusted for credentials of one type.
#[derive(Clone, Debug, Serialize)]
pub struct TrustEntry {
    pub issuer: String,
    pub credential_type: String,
    /// Countries whose licences the issuer is trusted for; empty: any.
    pub jurisdictions: BTreeSet<String>,
    /// Leaf index of the `trust.issuer` transaction that added it.
    pub index: u64,
}

/// The latest version of a status list an issuer published.
#[derive(Clone, Debug)]
pub struct PublishedList {
    pub issuer: String,
    pub purpose: StatusPurpose,
    /// The signed status list credential, served as published.
    pub credential: serde_json::Value,
    pub bits: StatusList,
    /// Leaf index of the `status.list` transaction that anchored it.
    pub index: u64,
}

/// Where a credential's status lives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatusRef {
    pub list: String,
    pub index: u64,
    #[serde(serialize_with = "purpose_code")]
    pub purpose: StatusPurpose,
}

fn purpose_code<S: serde::Serializer>(purpose: &StatusPurpose, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(purpose.as_str())
}

/// A licence a participant registered, as verified at registration.
#[derive(Clone, Debug, Serialize)]
pub struct LicenceEntry {
    pub holder: String,
    pub issuer: String,
    pub jurisdiction: String,
    pub profession: String,
    pub not_before: Option<i64>,
    pub not_after: Option<i64>,
    pub status: Vec<StatusRef>,
    /// Leaf index of the `licence.register` transaction.
    pub index: u64,
}

/// Why a registered licence does not count now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "code")]
pub enum LicenceStanding {
    Valid,
    UntrustedIssuer,
    NotYetValid,
    Expired,
    Revoked,
    Suspended,
    /// Its status list was never published: fail closed.
    StatusUnknown,
}

impl LicenceStanding {
    pub fn code(&self) -> &'static str {
        match self {
            LicenceStanding::Valid => "valid",
            LicenceStanding::UntrustedIssuer => "untrusted-issuer",
            LicenceStanding::NotYetValid => "not-yet-valid",
            LicenceStanding::Expired => "expired",
            LicenceStanding::Revoked => "revoked",
            LicenceStanding::Suspended => "suspended",
            LicenceStanding::StatusUnknown => "status-unknown",
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Credentials {
    /// (issuer, credential type) → entry.
    trust: HashMap<(String, String), TrustEntry>,
    /// Status list credential id (its URL) → latest version.
    lists: HashMap<String, PublishedList>,
    /// Holder DID → licences, in registration order.
    licences: HashMap<String, Vec<LicenceEntry>>,
}

impl Credentials {
    pub fn trust(&mut self, entry: TrustEntry) {
        self.trust
            .insert((entry.issuer.clone(), entry.credential_type.clone()), entry);
    }

    pub fn distrust(&mut self, issuer: &str, credential_type: &str) -> Result<(), TxError> {
        self.trust
            .remove(&(issuer.to_owned(), credential_type.to_owned()))
            .map(|_| ())
            .ok_or_else(|| {
                TxError::new(
                    ErrorCode::NotFound("trust.unknown_issuer"),
                    format!("{issuer} is not on the trust list for {credential_type}"),
                )
            })
    }

    pub fn trusted(&self, issuer: &str, credential_type: &str) -> Option<&TrustEntry> {
        self.trust
            .get(&(issuer.to_owned(), credential_type.to_owned()))
    }

    /// The trust list, sorted by issuer then type.
    pub fn trust_list(&self) -> Vec<&TrustEntry> {
        let mut entries: Vec<&TrustEntry> = self.trust.values().collect();
        entries.sort_by(|a, b| {
            (a.issuer.as_str(), a.credential_type.as_str())
                .cmp(&(b.issuer.as_str(), b.credential_type.as_str()))
        });
        entries
    }

    /// Records a new version of a status list. The first issuer to publish
    /// under an id owns it; only that issuer publishes later versions.
    pub fn publish_list(&mut self, id: String, list: PublishedList) -> Result<(), TxError> {
        if let Some(previous) = self.lists.get(&id) {
            if previous.issuer != list.issuer {
                return Err(TxError::new(
                    ErrorCode::Forbidden("status.list_owned"),
                    format!("status list {id} belongs to {}", previous.issuer),
                ));
            }
            if previous.purpose != list.purpose {
                return Err(TxError::new(
                    ErrorCode::Invalid("status.purpose_changed"),
                    format!("status list {id} is a {:?} list", previous.purpose),
                ));
            }
        }
        self.lists.insert(id, list);
        Ok(())
    }

    pub fn list(&self, id: &str) -> Option<&PublishedList> {
        self.lists.get(id)
    }

    /// Status list ids, sorted.
    pub fn list_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.lists.keys().map(String::as_str).collect();
        ids.sort_unstable();
        ids
    }

    pub fn register_licence(&mut self, entry: LicenceEntry) {
        self.licences
            .entry(entry.holder.clone())
            .or_default()
            .push(entry);
    }

    pub fn licences_of(&self, holder: &str) -> &[LicenceEntry] {
        self.licences.get(holder).map_or(&[], Vec::as_slice)
    }

    /// Whether `licence` counts at `time`, and if not, why.
    pub fn standing(&self, licence: &LicenceEntry, time: i64) -> LicenceStanding {
        let trusted = self
            .trusted(
                &licence.issuer,
                hygeia_credentials::credential_types::VCT_CLINICIAN_LICENCE,
            )
            .is_some_and(|t| {
                t.jurisdictions.is_empty() || t.jurisdictions.contains(&licence.jurisdiction)
            });
        if !trusted {
            return LicenceStanding::UntrustedIssuer;
        }
        if licence.not_before.is_some_and(|nbf| time < nbf) {
            return LicenceStanding::NotYetValid;
        }
        if licence.not_after.is_some_and(|exp| time >= exp) {
            return LicenceStanding::Expired;
        }
        for status in &licence.status {
            let Some(list) = self.lists.get(&status.list) else {
                return LicenceStanding::StatusUnknown;
            };
            let bit = usize::try_from(status.index)
                .ok()
                .and_then(|i| list.bits.get(i).ok());
            match bit {
                Some(false) => {}
                Some(true) => {
                    return match status.purpose {
                        StatusPurpose::Revocation => LicenceStanding::Revoked,
                        StatusPurpose::Suspension => LicenceStanding::Suspended,
                    }
                }
                None => return LicenceStanding::StatusUnknown,
            }
        }
        LicenceStanding::Valid
    }

    /// The first of `holder`'s licences that counts at `time`, as the
    /// policy engine sees it.
    pub fn licence_at(&self, holder: &str, time: i64) -> Option<Licence> {
        self.licences_of(holder)
            .iter()
            .find(|l| self.standing(l, time) == LicenceStanding::Valid)
            .map(|l| Licence {
                jurisdiction: l.jurisdiction.clone(),
                profession: l.profession.clone(),
            })
    }
}

/// The public key behind a verification method of `issuer`: a did:key's
/// own method, or for an organization's did:web a `#<did:key multibase>`
/// fragment naming one of its current keys (as its served document does).
pub fn issuer_method_key(
    participants: &Participants,
    issuer: &str,
    method: &str,
) -> Option<hygeia_identity::PublicKey> {
    let (controller, fragment) = method.split_once('#')?;
    if controller != issuer {
        return None;
    }
    if issuer.starts_with("did:key:") {
        return hygeia_credentials::data_integrity::resolve_did_key_method(method);
    }
    let key = format!("did:key:{fragment}");
    let org = participants.org(issuer)?;
    if !org.has_key(&key) {
        return None;
    }
    hygeia_identity::Did::parse_cached(&key)
        .ok()
        .map(|d| *d.public_key())
}

/// Whether `signer` speaks for `issuer`: it is the issuer's did:key, or one
/// of the current keys of the issuer's organization.
pub fn speaks_for(participants: &Participants, signer: &str, issuer: &str) -> bool {
    signer == issuer || participants.org(issuer).is_some_and(|o| o.has_key(signer))
}

/// Checks a `status.list` credential: signed (eddsa-jcs-2022) by a key of
/// its issuer, published by its issuer, a decodable Bitstring Status List.
///
/// Replay must give the same answer whenever it runs, so the validity
/// window is checked at the credential's own `validFrom` (the signature,
/// the issuer and the list are what anchoring vouches for); a verifier
/// reading the list applies its own clock.
pub fn verify_status_list(
    participants: &Participants,
    signer: &str,
    index: u64,
    credential: serde_json::Value,
) -> Result<(String, PublishedList), TxError> {
    use hygeia_credentials::status_list_credential::StatusListCredential;
    let invalid =
        |code: &'static str, message: String| TxError::new(ErrorCode::Invalid(code), message);
    let issuer = match &credential["issuer"] {
        serde_json::Value::String(s) => s.clone(),
        other => other["id"].as_str().unwrap_or_default().to_owned(),
    };
    if !speaks_for(participants, signer, &issuer) {
        return Err(TxError::new(
            ErrorCode::Forbidden("status.not_issuer"),
            format!("a status list of {issuer:?} is published by that issuer's own key"),
        ));
    }
    let at = credential["validFrom"]
        .as_str()
        .and_then(hygeia_credentials::data_integrity::parse_date_time)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let verified = StatusListCredential::verify(&credential, at, |method| {
        issuer_method_key(participants, &issuer, method)
    })
    .map_err(|e| invalid("status.invalid_credential", format!("{}: {e}", e.code())))?;
    let id = verified.id().to_owned();
    Ok((
        id,
        PublishedList {
            issuer,
            purpose: verified.purpose(),
            bits: verified.list().clone(),
            credential,
            index,
        },
    ))
}

/// Checks a `licence.register` presentation: an SD-JWT VC clinician
/// licence signed by a key of its issuer, about the registering identity
/// (`sub`), bound to the key that signed the transaction (`cnf`), with a
/// key-binding JWT addressed to this node (`aud`) whose nonce is the
/// registering identity. Trust, validity window and status are checked at
/// every decision instead (see [`Credentials::standing`]), so the time
/// checks here are off and replay gives the same answer whenever it runs.
pub fn verify_licence(
    participants: &Participants,
    node: &str,
    identity: &str,
    key: &str,
    index: u64,
    presentation: &str,
) -> Result<LicenceEntry, TxError> {
    use hygeia_credentials::credential_types::VCT_CLINICIAN_LICENCE;
    use hygeia_credentials::jws::VerifyingKey;
    use hygeia_credentials::sd_jwt::{verify_presentation, VerifyOptions};
    let invalid =
        |code: &'static str, message: String| TxError::new(ErrorCode::Invalid(code), message);
    let resolver = |issuer: &str, header: &hygeia_credentials::jws::Header| {
        let method = match header.kid() {
            Some(kid) => kid.to_owned(),
            None if issuer.starts_with("did:key:") => {
                let did = hygeia_identity::Did::parse_cached(issuer).ok()?;
                did.verification_method()
            }
            None => return None,
        };
        issuer_method_key(participants, issuer, &method).map(VerifyingKey::from)
    };
    let mut options = VerifyOptions::new(0).require_key_binding(node, identity);
    options.clock_skew_secs = i64::MAX;
    options.kb_max_age_secs = i64::MAX;
    let verified = verify_presentation(presentation, &resolver, &options)
        .map_err(|e| invalid("licence.invalid", format!("{}: {}", e.code(), e.reason())))?;
    if verified.vct() != VCT_CLINICIAN_LICENCE {
        return Err(invalid(
            "licence.wrong_type",
            format!(
                "a licence has vct {VCT_CLINICIAN_LICENCE}, not {}",
                verified.vct()
            ),
        ));
    }
    if verified.subject() != Some(identity) {
        return Err(TxError::new(
            ErrorCode::Forbidden("licence.not_holder"),
            "the licence's subject (sub) is not the identity registering it",
        ));
    }
    let signing_key = hygeia_identity::Did::parse_cached(key)
        .map_err(|e| invalid("licence.bad_signer", e.to_string()))?;
    if verified.holder_key() != Some(&VerifyingKey::from(*signing_key.public_key())) {
        return Err(TxError::new(
            ErrorCode::Forbidden("licence.not_holder"),
            "the licence is bound (cnf) to another key than the one registering it",
        ));
    }
    let claims = verified.claims();
    let text = |name: &str| claims.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    let jurisdiction = text("jurisdiction").ok_or_else(|| {
        invalid(
            "licence.incomplete",
            "the licence names no jurisdiction".into(),
        )
    })?;
    let profession = text("profession").ok_or_else(|| {
        invalid(
            "licence.incomplete",
            "the licence names no profession".into(),
        )
    })?;
    let status = match verified.status() {
        None => Vec::new(),
        Some(value) => {
            let entries = match value {
                serde_json::Value::Array(items) => items.clone(),
                other => vec![other.clone()],
            };
            entries
                .iter()
                .map(|entry| {
                    hygeia_credentials::status_list::StatusListEntry::from_json(entry)
                        .map(|e| StatusRef {
                            list: e.list_credential,
                            index: e.index as u64,
                            purpose: e.purpose,
                        })
                        .map_err(|e| invalid("licence.bad_status", e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?
        }
    };
    let time = |name: &str| claims.get(name).and_then(|v| v.as_i64());
    Ok(LicenceEntry {
        holder: identity.to_owned(),
        issuer: verified.issuer().to_owned(),
        jurisdiction,
        profession,
        not_before: time("nbf"),
        not_after: time("exp"),
        status,
        index,
    })
}
