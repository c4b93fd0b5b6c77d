//! A small network in one line, for tests (cargo feature `testing`; never
//! in a production build).
//!
//! [`Network::new`] is a [`LedgerState`] holding a governance key, an
//! organization (`did:web:clinic.example`) with its admin, a clinician who
//! is an active member of it and holds a licence from a board on the trust
//! list, and a patient. Tests then sign and apply transactions as any of
//! them ([`Network::submit`]). The same cast and set-up steps
//! ([`Cast::setup`]) drive the node's in-process HTTP harness, so both
//! harnesses start from one definition of "a small network".

use hygeia_credentials::credential_types::{
    ClinicianLicence, Credential, Issuance, VCT_CLINICIAN_LICENCE,
};
use hygeia_credentials::jws::{SigningKey, VerifyingKey};
use hygeia_credentials::sd_jwt::SdJwt;
use hygeia_identity::Keypair;
use hygeia_ledger::tx::TxContext;
use hygeia_ledger::{ModuleRegistry, SignedTx, TxBuilder, TxError};
use serde_json::{json, Value};

use crate::{Effect, LedgerState};

/// The network name of [`Network`].
pub const NETWORK: &str = "test.example/network";
/// The organization of the cast.
pub const CLINIC: &str = "did:web:clinic.example";
/// The clinician's jurisdiction (and the board's).
pub const JURISDICTION: &str = "FR";

/// `key`'s DID as text.
pub fn did(key: &Keypair) -> String {
    key.did().to_string()
}

/// A second handle on the same key.
pub fn copy(key: &Keypair) -> Keypair {
    Keypair::from_seed(&key.as_dalek().to_bytes())
}

/// The current Unix time in seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The keys of the cast.
pub struct Cast {
    /// Registers organizations and keeps the trust list.
    pub governance: Keypair,
    /// The organization's admin (manages its members).
    pub admin: Keypair,
    /// The licensing board, trusted for clinician licences in `FR`.
    pub board: Keypair,
    /// An active `clinician` member of [`CLINIC`] with a licence.
    pub clinician: Keypair,
    /// A patient (known to no one yet: no record, no grant).
    pub patient: Keypair,
}

/// One transaction of the set-up: who signs it, its type and body.
pub struct Step<'a> {
    pub signer: &'a Keypair,
    pub tx_type: &'static str,
    pub body: Value,
}

impl Default for Cast {
    fn default() -> Self {
        Self::new()
    }
}

impl Cast {
    /// Fresh keys for everyone.
    pub fn new() -> Cast {
        Cast {
            governance: Keypair::generate(),
            admin: Keypair::generate(),
            board: Keypair::generate(),
            clinician: Keypair::generate(),
            patient: Keypair::generate(),
        }
    }

    /// The transactions that make the network, in order: the organization,
    /// the clinician's membership, the board on the trust list, the
    /// clinician's licence (its key binding addressed to `audience`, the
    /// node's DID, and made at `now`).
    pub fn setup(&self, audience: &str, now: i64) -> Vec<Step<'_>> {
        vec![
            Step {
                signer: &self.governance,
                tx_type: "org.register",
                body: json!({"org": CLINIC, "admin": did(&self.admin), "kind": "clinic"}),
            },
            Step {
                signer: &self.admin,
                tx_type: "org.member",
                body: json!({"org": CLINIC, "member": did(&self.clinician), "roles": ["clinician"], "jurisdiction": JURISDICTION, "status": "active"}),
            },
            Step {
                signer: &self.governance,
                tx_type: "trust.issuer",
                body: json!({"issuer": did(&self.board), "credential_type": VCT_CLINICIAN_LICENCE, "jurisdictions": [JURISDICTION], "op": "add"}),
            },
            Step {
                signer: &self.clinician,
                tx_type: "licence.register",
                body: json!({"presentation": licence_presentation(&self.board, &self.clinician, audience, now)}),
            },
        ]
    }
}

/// A clinician licence from `board` about `holder` (bound to its key,
/// valid from a day before `now` for a year, no status list), presented by
/// `holder` to `audience` at `now`.
pub fn licence_presentation(board: &Keypair, holder: &Keypair, audience: &str, now: i64) -> String {
    let issuance = Issuance {
        issuer: did(board),
        issued_at: now - 86_400,
        expires_at: Some(now + 86_400 * 365),
        holder_key: VerifyingKey::from(holder.public_key()),
        status: None,
        key_id: Some(board.did().verification_method()),
    };
    let issued = Credential::ClinicianLicence(ClinicianLicence {
        subject: holder.did(),
        licence_number: None,
        profession: "physician".into(),
        specialty: None,
        jurisdiction: JURISDICTION.into(),
    })
    .issue(&issuance, &SigningKey::from(copy(board)))
    .expect("a licence issues");
    let board_key = VerifyingKey::from(board.public_key());
    SdJwt::parse(&issued, &|_: &str, _: &_| Some(board_key.clone()))
        .expect("the licence just issued parses")
        .present_with_key_binding(
            &[],
            audience,
            holder.did().as_str(),
            now - 60,
            &SigningKey::from(copy(holder)),
        )
        .expect("a presentation is made")
}

/// A device attestation from `manufacturer` about `device` (bound to its
/// key, valid from a day before `now` for a year, with `status` as its
/// status claim), presented by the device to `audience` with `patient` as
/// the key binding's nonce, disclosing nothing.
pub fn device_presentation(
    manufacturer: &Keypair,
    device: &Keypair,
    audience: &str,
    patient: &str,
    now: i64,
    status: Option<Value>,
) -> String {
    use hygeia_credentials::credential_types::DeviceAttestation;
    let issuance = Issuance {
        issuer: did(manufacturer),
        issued_at: now - 86_400,
        expires_at: Some(now + 86_400 * 365),
        holder_key: VerifyingKey::from(device.public_key()),
        status,
        key_id: Some(manufacturer.did().verification_method()),
    };
    let issued = Credential::DeviceAttestation(DeviceAttestation {
        subject: device.did(),
        model: "GlucoMeter 3".into(),
        firmware_version: "2.1.0".into(),
        serial_number: Some("SN-0042".into()),
        udi: None,
    })
    .issue(&issuance, &SigningKey::from(copy(manufacturer)))
    .expect("an attestation issues");
    let key = VerifyingKey::from(manufacturer.public_key());
    SdJwt::parse(&issued, &|_: &str, _: &_| Some(key.clone()))
        .expect("the attestation just issued parses")
        .present_with_key_binding(
            &[],
            audience,
            patient,
            now - 60,
            &SigningKey::from(copy(device)),
        )
        .expect("a presentation is made")
}

/// A trial-site accreditation from `accreditor` about `site` for
/// `study` (bound to `site_key`, valid from a day before `now` for a year,
/// with `status` as its status claim), presented by the site to
/// `audience` with the study as the key binding's nonce, disclosing
/// nothing.
pub fn site_presentation(
    accreditor: &Keypair,
    site: &str,
    site_key: &Keypair,
    study: &str,
    audience: &str,
    now: i64,
    status: Option<Value>,
) -> String {
    use hygeia_credentials::credential_types::TrialSiteAccreditation;
    let issuance = Issuance {
        issuer: did(accreditor),
        issued_at: now - 86_400,
        expires_at: Some(now + 86_400 * 365),
        holder_key: VerifyingKey::from(site_key.public_key()),
        status,
        key_id: Some(accreditor.did().verification_method()),
    };
    let issued = Credential::TrialSiteAccreditation(TrialSiteAccreditation {
        site: site.to_owned(),
        study_id: study.to_owned(),
        scope: vec!["enrolment".into(), "oncology".into()],
    })
    .issue(&issuance, &SigningKey::from(copy(accreditor)))
    .expect("an accreditation issues");
    let key = VerifyingKey::from(accreditor.public_key());
    SdJwt::parse(&issued, &|_: &str, _: &_| Some(key.clone()))
        .expect("the accreditation just issued parses")
        .present_with_key_binding(
            &[],
            audience,
            study,
            now - 60,
            &SigningKey::from(copy(site_key)),
        )
        .expect("a presentation is made")
}

/// The transaction types the state knows.
pub fn modules() -> &'static ModuleRegistry {
    static MODULES: std::sync::OnceLock<ModuleRegistry> = std::sync::OnceLock::new();
    MODULES.get_or_init(crate::txs::registry)
}

/// The cast's network as the state sees it: a [`LedgerState`] that applied
/// the set-up, and the next leaf index.
pub struct Network {
    pub cast: Cast,
    /// The node whose DID signs `record` and `access`.
    pub node: Keypair,
    pub state: LedgerState,
    /// The leaf index the next applied transaction gets.
    pub next: u64,
    /// The time the licence was presented at; decisions are judged at it.
    pub now: i64,
    nonce: u64,
}

impl Default for Network {
    fn default() -> Self {
        Self::new()
    }
}

impl Network {
    /// A governance key, an organization, a licensed clinician and a
    /// patient, set up at the current time.
    pub fn new() -> Network {
        Network::at(unix_now())
    }

    /// The same, set up at `now` (Unix seconds).
    pub fn at(now: i64) -> Network {
        let cast = Cast::new();
        let node = Keypair::generate();
        let state = LedgerState::new(did(&node), Some(did(&cast.governance)));
        let mut network = Network {
            cast,
            node,
            state,
            next: 0,
            now,
            nonce: 0,
        };
        let audience = did(&network.node);
        let setup: Vec<(Keypair, &'static str, Value)> = network
            .cast
            .setup(&audience, now)
            .into_iter()
            .map(|step| (copy(step.signer), step.tx_type, step.body))
            .collect();
        for (signer, tx_type, body) in setup {
            if let Err(e) = network.submit(&signer, tx_type, body) {
                panic!("set-up transaction {tx_type}: {e}");
            }
        }
        network
    }

    /// Signs and parses a transaction (schema and signature checked),
    /// with a fresh nonce.
    pub fn sign(&mut self, key: &Keypair, tx_type: &str, body: Value) -> Result<SignedTx, TxError> {
        self.nonce += 1;
        let raw = TxBuilder {
            network: NETWORK,
            tx_type,
            nonce: format!("n{}", self.nonce),
            body,
        }
        .sign(key);
        SignedTx::parse(
            &raw,
            &TxContext {
                network: NETWORK,
                modules: modules(),
            },
        )
    }

    /// Signs a transaction and applies it at the next index; a refused
    /// one changes nothing and takes no index.
    pub fn submit(&mut self, key: &Keypair, tx_type: &str, body: Value) -> Result<Effect, TxError> {
        let tx = self.sign(key, tx_type, body)?;
        let effect = self.state.apply(self.next, &tx)?;
        self.next += 1;
        Ok(effect)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::LicenceStanding;

    #[test]
    fn one_line_makes_the_cast() {
        let net = Network::new();
        let state = &net.state;
        let cast = &net.cast;
        assert_eq!(net.next, 4);
        assert!(state.participants.org(CLINIC).is_some());
        let clinician = state.participants.requester(&did(&cast.clinician));
        assert!(clinician.roles.contains("clinician"));
        let licences = state.credentials.licences_of(&did(&cast.clinician));
        assert_eq!(licences.len(), 1);
        assert_eq!(
            state.credentials.standing(&licences[0], net.now),
            LicenceStanding::Valid
        );
        assert!(state
            .participants
            .memberships(&did(&cast.patient))
            .is_empty());
    }

    #[test]
    fn a_refused_transaction_takes_no_index() {
        let mut net = Network::new();
        let stranger = Keypair::generate();
        let err = net
            .submit(
                &stranger,
                "org.register",
                json!({"org": "did:web:evil.example", "admin": did(&stranger), "kind": "clinic"}),
            )
            .unwrap_err();
        assert_eq!(err.code.as_str(), "org.not_governance");
        assert_eq!(net.next, 4);
    }
}
