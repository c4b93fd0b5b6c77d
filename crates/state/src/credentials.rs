//! Credentials as governance state: which issuers are trusted for which
//! credential type (the trust list), the status lists issuers publish, and
//! the licences participants registered. Types: `trust.issuer`,
//! `status.list`, `licence.register`.
//!
//! Everything here is replayed from the log. A licence is checked when it
//! is registered (issuer signature, key binding to the registering key) and
//! again at every decision (trusted issuer, validity window, revocation and
//! suspension bits of the latest anchored status list), so revoking a
//! licence or removing its issuer from the trust list takes effect on the
//! next decision.
//!
//! What one `status.list` can cost is bounded: only issuers on the trust
//! list publish lists, a list decodes to at most [`MAX_LIST_BYTES`], and
//! the state keeps a list as its signed credential (the bytes of its log
//! entry, for serving) plus only the bits registered licences point at,
//! never the decoded bitstring. A list's id lies in its issuer's namespace
//! ([`list_path`]), so no one can take an id another issuer's credentials
//! name.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use imbl::{HashMap, OrdMap, OrdSet};

use hygeia_credentials::status_list::{StatusList, StatusPurpose};
use hygeia_ledger::{ErrorCode, TxError};
use hygeia_policy::Licence;
use serde::{Deserialize, Serialize};

use super::participants::Participants;
use super::registry::{Cx, Registry, TxBody};
use super::txs::{
    check_country, check_credential_type, check_did, LicenceRegister, StatusListPublish,
    TrustIssuer, TrustOp, LICENCE_REGISTER, STATUS_LIST, TRUST_ISSUER,
};
use super::{Effect, LedgerState};

/// The largest decoded status list anchored: 1 MiB, 8,388,608 entries
/// (64 times the specification's 131,072-entry minimum).
pub const MAX_LIST_BYTES: usize = 1 << 20;

/// Most status entries one licence names.
pub const MAX_STATUS_ENTRIES: usize = 8;

/// The longest list name in an id (see [`list_path`]).
pub const MAX_LIST_NAME_LEN: usize = 64;

/// The path under which `issuer`'s list `name` lives: its id is any
/// `http(s)` origin (where the list is served) followed by
/// `/v1/status-lists/<issuer>/<name>`, the issuer's DID written as one
/// path segment (`%` as `%25`; a DID has no other character a path
/// segment must escape).
pub fn list_path(issuer: &str, name: &str) -> String {
    format!("/v1/status-lists/{}/{name}", issuer.replace('%', "%25"))
}

/// Whether a list name is 1 to 64 characters of `[A-Za-z0-9._-]`.
pub fn is_list_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_LIST_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && name != "."
        && name != ".."
}

/// Whether the list id `id` lies in `issuer`'s namespace: an `https://`
/// or `http://` URL, with a host, no query or fragment, whose path ends in
/// [`list_path`]`(issuer, name)` for a valid name. The issuer must be one
/// path segment (a DID is), so no id lies in two issuers' namespaces.
pub fn in_namespace(id: &str, issuer: &str) -> bool {
    let one_segment = !issuer.is_empty()
        && issuer
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"/?#".contains(&b));
    if !one_segment || !id.bytes().all(|b| b.is_ascii_graphic()) || id.contains(['?', '#']) {
        return false;
    }
    let Some(rest) = id
        .strip_prefix("https://")
        .or_else(|| id.strip_prefix("http://"))
    else {
        return false;
    };
    let Some((authority, _)) = rest.split_once('/') else {
        return false;
    };
    let Some((before, name)) = id.rsplit_once('/') else {
        return false;
    };
    let issuer_path = list_path(issuer, "");
    !authority.is_empty()
        && is_list_name(name)
        && before.ends_with(issuer_path.strip_suffix('/').unwrap_or(&issuer_path))
}

/// A trust-list entry: `issuer` is trusted for credentials of one type.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrustEntry {
    pub issuer: String,
    pub credential_type: String,
    /// Countries whose licences the issuer is trusted for; empty: any.
    pub jurisdictions: BTreeSet<String>,
    /// Leaf index of the `trust.issuer` transaction that added it.
    pub index: u64,
}

/// The latest version of a status list an issuer published.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PublishedList {
    pub issuer: String,
    #[serde(with = "purpose_code")]
    pub purpose: StatusPurpose,
    /// The signed status list credential, as published (its JSON text).
    #[serde(with = "crate::snapshot::arc_str")]
    pub credential: Arc<str>,
    /// How many entries the list has.
    pub entries: u64,
    /// The bits registered licences point at (index → set), read from
    /// the list when it or the licence was anchored.
    bits: OrdMap<u64, bool>,
    /// Leaf index of the `status.list` transaction that anchored it.
    pub index: u64,
}

impl PublishedList {
    /// Bit `index`, if it lies in the list and a registered licence
    /// points at it (only those are kept).
    pub fn bit(&self, index: u64) -> Option<bool> {
        self.bits.get(&index).copied()
    }

    /// Heap bytes this entry holds, for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        // A B-tree entry: key, value and about as much again in node
        // overhead.
        self.issuer.len() + self.credential.len() + self.bits.len() * 2 * (8 + 1)
    }
}

/// Where a credential's status lives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusRef {
    pub list: String,
    pub index: u64,
    #[serde(with = "purpose_code")]
    pub purpose: StatusPurpose,
}

/// A status purpose as its code (`revocation`, `suspension`).
mod purpose_code {
    use hygeia_credentials::status_list::StatusPurpose;
    use serde::Deserialize;

    pub fn serialize<S: serde::Serializer>(
        purpose: &StatusPurpose,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(purpose.as_str())
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<StatusPurpose, D::Error> {
        let text = String::deserialize(d)?;
        StatusPurpose::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A licence a participant registered, as verified at registration.
#[derive(Clone, Debug, Serialize, Deserialize)]
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
    /// Its status list was never published, is another issuer's, has
    /// another purpose, or is shorter than its index: fail closed.
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

/// Persistent collections (`imbl`): a clone is O(1) and shares every entry
/// until one side changes it, which copies only that entry's path (see
/// `writer.rs`). Lists and a holder's licences sit behind an `Arc`, so
/// copying a node copies pointers; a list's referenced indices and read
/// bits are persistent too, so a new licence costs O(log n) on a list with
/// many, not a copy of them.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Credentials {
    /// (issuer, credential type) → entry.
    #[serde(with = "crate::snapshot::sorted_map")]
    trust: HashMap<(String, String), TrustEntry>,
    /// Status list credential id (its URL) → latest version.
    #[serde(with = "crate::snapshot::sorted_map")]
    lists: HashMap<String, Arc<PublishedList>>,
    /// Status list id → the indices registered licences point at.
    #[serde(with = "crate::snapshot::sorted_map")]
    referenced: HashMap<String, OrdSet<u64>>,
    /// Holder DID → licences, in registration order.
    #[serde(with = "crate::snapshot::sorted_map")]
    licences: HashMap<String, Arc<Vec<LicenceEntry>>>,
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

    /// Whether the trust list names `issuer` for any credential type.
    pub fn is_trusted_issuer(&self, issuer: &str) -> bool {
        self.trust.keys().any(|(i, _)| i == issuer)
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

    /// Records a new version of a status list, given its decoded bits
    /// (read here for the indices licences point at, then dropped). The
    /// first issuer to publish under an id owns it (an id lies in its
    /// issuer's namespace, so no one else can take it); only that issuer
    /// publishes later versions, of the same purpose.
    pub fn publish_list(
        &mut self,
        id: String,
        mut list: PublishedList,
        decoded: &StatusList,
    ) -> Result<(), TxError> {
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
        list.bits = read_bits(decoded, self.referenced.get(&id).into_iter().flatten());
        self.lists.insert(id, Arc::new(list));
        Ok(())
    }

    pub fn list(&self, id: &str) -> Option<&PublishedList> {
        self.lists.get(id).map(|list| &**list)
    }

    /// Status list ids, sorted.
    pub fn list_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.lists.keys().map(String::as_str).collect();
        ids.sort_unstable();
        ids
    }

    /// Adds a licence, and reads the bits its status entries point at
    /// from the lists already anchored (each list decoded at most once).
    pub fn register_licence(&mut self, entry: LicenceEntry) {
        self.reference_status(&entry.status);
        Arc::make_mut(self.licences.entry(entry.holder.clone()).or_default()).push(entry);
    }

    /// Notes the status entries a registered credential (a licence, a
    /// device attestation) points at, and reads their bits from the lists
    /// already anchored (each list decoded at most once); later versions of
    /// those lists keep them.
    pub fn reference_status(&mut self, status: &[StatusRef]) {
        let mut wanted: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
        for status in status {
            let fresh = self
                .referenced
                .entry(status.list.clone())
                .or_default()
                .insert(status.index)
                .is_none();
            if fresh {
                wanted.entry(&status.list).or_default().push(status.index);
            }
        }
        for (id, indices) in wanted {
            let Some(list) = self.lists.get_mut(id) else {
                continue;
            };
            // The list verified when it was anchored; reading it again
            // cannot fail unless the state was built some other way.
            if let Some(decoded) = decode_anchored(&list.credential) {
                Arc::make_mut(list)
                    .bits
                    .extend(read_bits(&decoded, &indices));
            }
        }
    }

    /// Heap bytes the status lists and their references hold: what a
    /// `status.list` or `licence.register` can make the state keep.
    pub fn status_heap_bytes(&self) -> usize {
        let lists: usize = self
            .lists
            .iter()
            .map(|(id, l)| id.len() + std::mem::size_of::<PublishedList>() + l.heap_bytes())
            .sum();
        let references: usize = self
            .referenced
            .iter()
            .map(|(id, indices)| id.len() + indices.len() * 2 * 8)
            .sum();
        lists + references
    }

    pub fn licences_of(&self, holder: &str) -> &[LicenceEntry] {
        self.licences.get(holder).map_or(&[], |l| l.as_slice())
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
        self.status_standing(&licence.issuer, &licence.status)
    }

    /// What the status lists say of a credential of `issuer` with these
    /// status entries: `Valid`, `Revoked`, `Suspended` or, when a list is
    /// missing, another issuer's, of another purpose or too short,
    /// `StatusUnknown` (fail closed).
    pub fn status_standing(&self, issuer: &str, status: &[StatusRef]) -> LicenceStanding {
        for status in status {
            // Only the credential's own issuer's list of the entry's
            // purpose vouches for it.
            let Some(list) = self
                .lists
                .get(&status.list)
                .filter(|l| l.issuer == issuer && l.purpose == status.purpose)
            else {
                return LicenceStanding::StatusUnknown;
            };
            match list.bit(status.index) {
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

/// The key that verifies an issuer's SD-JWT signature: the method its JWS
/// header's `kid` names or, without a `kid`, a did:key issuer's own
/// method, resolved by [`issuer_method_key`] (a did:web issuer must name
/// one of its organization's keys).
pub fn issuer_header_key(
    participants: &Participants,
    issuer: &str,
    header: &hygeia_credentials::jws::Header,
) -> Option<hygeia_credentials::jws::VerifyingKey> {
    let method = match header.kid() {
        Some(kid) => kid.to_owned(),
        None if issuer.starts_with("did:key:") => hygeia_identity::Did::parse_cached(issuer)
            .ok()?
            .verification_method(),
        None => return None,
    };
    issuer_method_key(participants, issuer, &method)
        .map(hygeia_credentials::jws::VerifyingKey::from)
}

/// Whether `signer` speaks for `issuer`: it is the issuer's did:key, or one
/// of the current keys of the issuer's organization.
pub fn speaks_for(participants: &Participants, signer: &str, issuer: &str) -> bool {
    signer == issuer || participants.org(issuer).is_some_and(|o| o.has_key(signer))
}

/// Reads the bits at `indices` that lie in `decoded`.
fn read_bits<'a>(
    decoded: &StatusList,
    indices: impl IntoIterator<Item = &'a u64>,
) -> OrdMap<u64, bool> {
    indices
        .into_iter()
        .filter_map(|&index| {
            let bit = usize::try_from(index)
                .ok()
                .and_then(|i| decoded.get(i).ok())?;
            Some((index, bit))
        })
        .collect()
}

/// The bits of an anchored list credential, decoded again.
fn decode_anchored(credential: &str) -> Option<StatusList> {
    let value: serde_json::Value = serde_json::from_str(credential).ok()?;
    let encoded = value["credentialSubject"]["encodedList"].as_str()?;
    StatusList::decode_limited(encoded, MAX_LIST_BYTES).ok()
}

/// Checks a `status.list` credential and returns its id, the entry to
/// keep and its decoded bits (to read, then drop). Refused, in this order
/// and before anything is decoded or its signature checked: an issuer the
/// trust list does not name (`status.untrusted_issuer`), a signer that
/// does not speak for the issuer (`status.not_issuer`), an id outside the
/// issuer's namespace (`status.id_outside_namespace`, unless `namespaced`
/// is false: a migrated log's legacy prefix); then a credential
/// that does not verify or a list over [`MAX_LIST_BYTES`]
/// (`status.invalid_credential`, with the library's code in the message).
///
/// Replay must give the same answer whenever it runs, so the validity
/// window is checked at the credential's own `validFrom` (the signature,
/// the issuer and the list are what anchoring vouches for); a verifier
/// reading the list applies its own clock.
pub fn verify_status_list(
    participants: &Participants,
    credentials: &Credentials,
    signer: &str,
    index: u64,
    credential: &serde_json::Value,
    namespaced: bool,
) -> Result<(String, PublishedList, StatusList), TxError> {
    use hygeia_credentials::status_list_credential::StatusListCredential;
    let invalid =
        |code: &'static str, message: String| TxError::new(ErrorCode::Invalid(code), message);
    let issuer = match &credential["issuer"] {
        serde_json::Value::String(s) => s.clone(),
        other => other["id"].as_str().unwrap_or_default().to_owned(),
    };
    if !credentials.is_trusted_issuer(&issuer) {
        return Err(TxError::new(
            ErrorCode::Forbidden("status.untrusted_issuer"),
            format!("{issuer:?} is on no trust list: only trusted issuers anchor status lists"),
        ));
    }
    if !speaks_for(participants, signer, &issuer) {
        return Err(TxError::new(
            ErrorCode::Forbidden("status.not_issuer"),
            format!("a status list of {issuer:?} is published by that issuer's own key"),
        ));
    }
    let claimed_id = credential["id"].as_str().unwrap_or_default();
    if namespaced && !in_namespace(claimed_id, &issuer) {
        return Err(TxError::new(
            ErrorCode::Forbidden("status.id_outside_namespace"),
            format!(
                "a list of {issuer} has an id ending in {}, not {claimed_id:?}",
                list_path(&issuer, "<name>")
            ),
        ));
    }
    let at = credential["validFrom"]
        .as_str()
        .and_then(hygeia_credentials::data_integrity::parse_date_time)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let verified = StatusListCredential::verify_limited(
        credential,
        at,
        |method| issuer_method_key(participants, &issuer, method),
        MAX_LIST_BYTES,
    )
    .map_err(|e| invalid("status.invalid_credential", format!("{}: {e}", e.code())))?;
    let id = verified.id().to_owned();
    let text = serde_json::to_string(credential)
        .map_err(|e| invalid("status.invalid_credential", e.to_string()))?;
    let purpose = verified.purpose();
    let decoded = verified.into_list();
    Ok((
        id,
        PublishedList {
            issuer,
            purpose,
            credential: Arc::from(text),
            entries: decoded.len() as u64,
            bits: OrdMap::new(),
            index,
        },
        decoded,
    ))
}

/// Checks a `licence.register` presentation: an SD-JWT VC clinician
/// licence signed by a key of its issuer, about the registering identity
/// (`sub`), bound to the key that signed the transaction (`cnf`), with a
/// key-binding JWT addressed to `audience` (the network's id, see
/// [`crate::network::Network::id`]) whose nonce is the registering
/// identity. `namespaced` is false only for a migrated log's legacy prefix,
/// admitted before status entries had to lie in their issuer's namespace. Trust, validity window and status are checked at
/// every decision instead (see [`Credentials::standing`]), so the time
/// checks here are off and replay gives the same answer whenever it runs.
pub fn verify_licence(
    participants: &Participants,
    audience: &str,
    identity: &str,
    key: &str,
    index: u64,
    presentation: &str,
    namespaced: bool,
) -> Result<LicenceEntry, TxError> {
    use hygeia_credentials::credential_types::VCT_CLINICIAN_LICENCE;
    use hygeia_credentials::jws::VerifyingKey;
    use hygeia_credentials::sd_jwt::{verify_presentation, VerifyOptions};
    let invalid =
        |code: &'static str, message: String| TxError::new(ErrorCode::Invalid(code), message);
    let resolver = |issuer: &str, header: &hygeia_credentials::jws::Header| {
        issuer_header_key(participants, issuer, header)
    };
    let mut options = VerifyOptions::new(0).require_key_binding(audience, identity);
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
    let status = status_refs(&verified, "licence.bad_status", namespaced)?;
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

/// The status entries of a verified SD-JWT VC (`status`, one entry or a
/// list), at most [`MAX_STATUS_ENTRIES`], each in its issuer's namespace
/// unless `namespaced` is false; refused with `code`.
pub fn status_refs(
    verified: &hygeia_credentials::sd_jwt::VerifiedSdJwt,
    code: &'static str,
    namespaced: bool,
) -> Result<Vec<StatusRef>, TxError> {
    let invalid = |message: String| TxError::new(ErrorCode::Invalid(code), message);
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
                        .map_err(|e| invalid(e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?
        }
    };
    if status.len() > MAX_STATUS_ENTRIES {
        return Err(invalid(format!(
            "a credential names at most {MAX_STATUS_ENTRIES} status entries"
        )));
    }
    if let Some(foreign) = status
        .iter()
        .find(|s| namespaced && !in_namespace(&s.list, verified.issuer()))
    {
        return Err(invalid(format!(
            "status list {} is not in the namespace of the credential's issuer ({})",
            foreign.list,
            list_path(verified.issuer(), "<name>")
        )));
    }
    Ok(status)
}

/// Registers the types of this domain.
pub(crate) fn register(r: &mut Registry) {
    r.add::<TrustIssuer>();
    r.add::<StatusListPublish>();
    r.add::<LicenceRegister>();
}

impl TxBody for TrustIssuer {
    const TYPE: &'static str = TRUST_ISSUER;

    fn example() -> Self {
        TrustIssuer {
            issuer: "did:web:board.example".into(),
            credential_type: "https://hygeia.example/credentials/clinician-licence".into(),
            jurisdictions: ["FR".to_owned()].into(),
            op: TrustOp::Add,
        }
    }

    fn check(&self) -> Result<(), String> {
        check_did("issuer", &self.issuer)?;
        check_credential_type(&self.credential_type)?;
        for country in &self.jurisdictions {
            check_country("jurisdictions", country)?;
        }
        Ok(())
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        if !state.participants.is_governance(&cx.signer) {
            return Err(TxError::new(
                ErrorCode::Forbidden("trust.not_governance"),
                "only the network's governance key changes the trust list",
            ));
        }
        match self.op {
            TrustOp::Add => state.credentials.trust(TrustEntry {
                issuer: self.issuer,
                credential_type: self.credential_type,
                jurisdictions: self.jurisdictions,
                index: cx.index,
            }),
            TrustOp::Remove => state
                .credentials
                .distrust(&self.issuer, &self.credential_type)?,
        }
        Ok(Effect::None)
    }
}

impl TxBody for StatusListPublish {
    const TYPE: &'static str = STATUS_LIST;

    fn example() -> Self {
        StatusListPublish {
            credential: serde_json::json!({"type": ["VerifiableCredential", "BitstringStatusListCredential"]}),
        }
    }

    fn check(&self) -> Result<(), String> {
        if !self.credential.is_object() {
            return Err("status.list body: credential must be a JSON object".into());
        }
        Ok(())
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        let (id, list, decoded) = verify_status_list(
            &state.participants,
            &state.credentials,
            &cx.signer,
            cx.index,
            &self.credential,
            state.network.rules_at(cx.index) == crate::network::Rules::Current,
        )?;
        state.credentials.publish_list(id, list, &decoded)?;
        Ok(Effect::None)
    }
}

impl TxBody for LicenceRegister {
    const TYPE: &'static str = LICENCE_REGISTER;

    fn example() -> Self {
        LicenceRegister {
            presentation: "eyJhbGciOiJFUzI1NiJ9.e30.c2ln~".into(),
        }
    }

    fn check(&self) -> Result<(), String> {
        if self.presentation.is_empty() || self.presentation.contains(char::is_whitespace) {
            return Err("licence.register body: presentation must be a compact SD-JWT".into());
        }
        Ok(())
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        let licence = verify_licence(
            &state.participants,
            state.licence_audience(cx.index),
            &cx.signer,
            cx.key,
            cx.index,
            &self.presentation,
            state.network.rules_at(cx.index) == crate::network::Rules::Current,
        )?;
        state.identities.note_known(&licence.issuer);
        state.credentials.register_licence(licence);
        Ok(Effect::None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hygeia_credentials::credential_types::VCT_CLINICIAN_LICENCE;

    const BOARD: &str = "did:key:z6MkpTHR8VNsBxYAAWHut2Geadd9jSwuBV8xRoAnwWsdvktH";
    const RIVAL: &str = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK";
    const LIST: &str = "https://node.example/v1/status-lists/x/board-2026";

    fn licence(purpose: StatusPurpose) -> LicenceEntry {
        LicenceEntry {
            holder: "did:key:holder".into(),
            issuer: BOARD.into(),
            jurisdiction: "FR".into(),
            profession: "physician".into(),
            not_before: None,
            not_after: None,
            status: vec![StatusRef {
                list: LIST.into(),
                index: 7,
                purpose,
            }],
            index: 1,
        }
    }

    fn list(issuer: &str, purpose: StatusPurpose) -> PublishedList {
        PublishedList {
            issuer: issuer.into(),
            purpose,
            credential: Arc::from("{}"),
            entries: 0,
            bits: OrdMap::new(),
            index: 2,
        }
    }

    fn all_set() -> StatusList {
        let mut bits = StatusList::new(0).unwrap();
        for i in 0..64 {
            bits.set(i, true).unwrap();
        }
        bits
    }

    #[test]
    fn an_issuer_is_one_path_segment() {
        let id = "https://h.example/v1/status-lists/y/v1/status-lists/x/name";
        assert!(in_namespace(id, "x"));
        for not_one in ["y/v1/status-lists/x", "", "x?", "x#y", "a b"] {
            assert!(!in_namespace(id, not_one), "{not_one:?}");
        }
        assert!(!in_namespace("https://h.example/v1/status-lists/name", ""));
    }

    proptest::proptest! {
        /// No id lies in two issuers' namespaces, and one that lies in an
        /// issuer's ends in its path.
        #[test]
        fn namespaces_never_overlap(
            origin in "https?://[a-z0-9.:]{0,12}",
            segments in proptest::collection::vec("[a-zA-Z0-9:%./_-]{0,12}", 0..5),
            a in "[a-z0-9:%/._-]{0,10}",
            b in "[a-z0-9:%/._-]{0,10}",
        ) {
            let id = format!("{origin}/{}", segments.join("/"));
            if in_namespace(&id, &a) {
                let name = id.rsplit_once('/').unwrap().1;
                proptest::prop_assert!(id.ends_with(&list_path(&a, name)));
                proptest::prop_assert!(a == b || !in_namespace(&id, &b), "{id} in {a} and {b}");
            }
            // And built ids lie in their issuer's namespace only.
            let built = format!("{origin}{}", list_path(&a, "list-1"));
            if in_namespace(&built, &a) {
                proptest::prop_assert!(a == b || !in_namespace(&built, &b));
            }
        }
    }

    /// The decision reads a licence's status only from its own issuer's
    /// list of the entry's purpose, whatever else sits under the id.
    #[test]
    fn only_the_licence_issuers_list_decides() {
        let mut credentials = Credentials::default();
        credentials.trust(TrustEntry {
            issuer: BOARD.into(),
            credential_type: VCT_CLINICIAN_LICENCE.into(),
            jurisdictions: BTreeSet::new(),
            index: 0,
        });
        credentials.register_licence(licence(StatusPurpose::Revocation));
        let entry = credentials.licences_of("did:key:holder")[0].clone();
        assert_eq!(
            credentials.standing(&entry, 0),
            LicenceStanding::StatusUnknown
        );

        // Another issuer's list under the id: the bit it sets counts for
        // nothing, and the licence stays unknown (fail closed).
        credentials
            .publish_list(
                LIST.into(),
                list(RIVAL, StatusPurpose::Revocation),
                &all_set(),
            )
            .unwrap();
        assert_eq!(
            credentials.standing(&entry, 0),
            LicenceStanding::StatusUnknown
        );
        assert_eq!(credentials.list(LIST).unwrap().bit(7), Some(true));

        // The issuer's own list, of another purpose: unknown too.
        let mut credentials = Credentials::default();
        credentials.trust(TrustEntry {
            issuer: BOARD.into(),
            credential_type: VCT_CLINICIAN_LICENCE.into(),
            jurisdictions: BTreeSet::new(),
            index: 0,
        });
        credentials.register_licence(licence(StatusPurpose::Revocation));
        credentials
            .publish_list(
                LIST.into(),
                list(BOARD, StatusPurpose::Suspension),
                &all_set(),
            )
            .unwrap();
        assert_eq!(
            credentials.standing(&entry, 0),
            LicenceStanding::StatusUnknown
        );

        // The issuer's revocation list decides.
        let mut credentials = Credentials::default();
        credentials.trust(TrustEntry {
            issuer: BOARD.into(),
            credential_type: VCT_CLINICIAN_LICENCE.into(),
            jurisdictions: BTreeSet::new(),
            index: 0,
        });
        credentials.register_licence(licence(StatusPurpose::Revocation));
        credentials
            .publish_list(
                LIST.into(),
                list(BOARD, StatusPurpose::Revocation),
                &all_set(),
            )
            .unwrap();
        assert_eq!(credentials.standing(&entry, 0), LicenceStanding::Revoked);
        credentials
            .publish_list(
                LIST.into(),
                list(BOARD, StatusPurpose::Revocation),
                &StatusList::new(0).unwrap(),
            )
            .unwrap();
        assert_eq!(credentials.standing(&entry, 0), LicenceStanding::Valid);
        // Only the bits licences point at are kept.
        assert_eq!(credentials.list(LIST).unwrap().bit(8), None);
    }
}
