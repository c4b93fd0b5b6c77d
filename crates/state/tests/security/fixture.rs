//! A small network as the state sees it, built from signed transactions:
//! a governance key, the node, an organization with its admin, a
//! clinician licensed by a trusted board (whose licence names a bit of the
//! board's status list), and a patient with records, a grant, a delegate
//! and a recovery registration.

use hygeia_credentials::credential_types::{
    ClinicianLicence, Credential, Issuance, VCT_CLINICIAN_LICENCE,
};
use hygeia_credentials::jws::{SigningKey, VerifyingKey};
use hygeia_credentials::sd_jwt::SdJwt;
use hygeia_credentials::status_list::{StatusList, StatusListEntry, StatusPurpose};
use hygeia_credentials::status_list_credential::StatusListCredential;
use hygeia_identity::Keypair;
use hygeia_ledger::tx::TxContext;
use hygeia_ledger::{ModuleRegistry, SignedTx, TxBuilder, TxError};
use hygeia_state::txs::registry;
use hygeia_state::LedgerState;
use serde_json::{json, Value};

pub const NETWORK: &str = "test.example/security";
pub const CLINIC: &str = "did:web:clinic.example";
/// Where the test node serves status lists.
pub const NODE_URL: &str = "https://node.example";
/// A decision time inside every validity window of the fixture.
pub const NOW: i64 = 1_800_000_000;

pub fn did(key: &Keypair) -> String {
    key.did().to_string()
}

pub fn copy(key: &Keypair) -> Keypair {
    Keypair::from_seed(&key.as_dalek().to_bytes())
}

/// An `identity.rotate` body moving `subject` to `new_key`, whose
/// acceptance is signed by `signer` (the new key itself, when the one
/// building it holds that key).
///
/// The signed bytes are written out here as docs/recovery.md gives them
/// (the domain, then the JCS of `{"new_key","subject"}`), not taken from
/// the node's code.
pub fn rotate_body(subject: &str, new_key: &str, signer: &Keypair) -> Value {
    use base64::Engine;
    let mut message = b"hygeia.identity.rotate.v1\x00".to_vec();
    message.extend(format!(r#"{{"new_key":"{new_key}","subject":"{subject}"}}"#).bytes());
    let proof =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signer.sign(&message).to_bytes());
    json!({"subject": subject, "new_key": new_key, "proof": proof})
}

pub fn commitment(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

/// Signs and parses one transaction (schema and signature checked).
pub fn tx(key: &Keypair, tx_type: &str, nonce: &str, body: Value) -> Result<SignedTx, TxError> {
    let modules: &ModuleRegistry = modules();
    let ctx = TxContext {
        network: NETWORK,
        modules,
    };
    let raw = TxBuilder {
        network: NETWORK,
        tx_type,
        nonce: nonce.to_owned(),
        body,
    }
    .sign(key);
    SignedTx::parse(&raw, &ctx)
}

pub fn modules() -> &'static ModuleRegistry {
    static MODULES: std::sync::OnceLock<ModuleRegistry> = std::sync::OnceLock::new();
    MODULES.get_or_init(registry)
}

/// The id under which `issuer` publishes its list `name`.
pub fn list_id(issuer: &str, name: &str) -> String {
    format!(
        "{NODE_URL}/v1/status-lists/{}/{name}",
        issuer.replace('%', "%25")
    )
}

/// A Bitstring Status List credential of `issuer`, signed by `key`.
pub fn status_list(
    key: &Keypair,
    issuer: &str,
    id: &str,
    purpose: StatusPurpose,
    set: &[usize],
) -> Value {
    let mut list = StatusList::new(0).unwrap();
    for index in set {
        list.set(*index, true).unwrap();
    }
    let created = time::OffsetDateTime::from_unix_timestamp(NOW - 3600).unwrap();
    let method = if issuer == did(key) {
        key.did().verification_method()
    } else {
        format!("{issuer}#{}", did(key).trim_start_matches("did:key:"))
    };
    StatusListCredential {
        id: id.to_owned(),
        issuer: issuer.to_owned(),
        purpose,
        list,
        valid_from: Some(created),
        valid_until: None,
    }
    .issue(key, &method, created)
    .unwrap()
}

/// A clinician licence from the did:key `board` about `holder` (bound to
/// its key), presented for registration on the node `node`.
pub fn licence_presentation(
    board: &Keypair,
    holder: &Keypair,
    node: &str,
    status: &[StatusListEntry],
) -> String {
    licence_about(board, &holder.did(), holder, node, status)
}

/// A licence from `board` about `subject`, bound to `holder`'s key and
/// presented by it for registration on `node`.
pub fn licence_about(
    board: &Keypair,
    subject: &hygeia_identity::Did,
    holder: &Keypair,
    node: &str,
    status: &[StatusListEntry],
) -> String {
    let status = match status {
        [] => None,
        [one] => Some(one.to_json()),
        many => Some(Value::Array(many.iter().map(|e| e.to_json()).collect())),
    };
    let issuance = Issuance {
        issuer: did(board),
        issued_at: NOW - 86_400,
        expires_at: Some(NOW + 86_400 * 365),
        holder_key: VerifyingKey::from(holder.public_key()),
        status,
        key_id: Some(board.did().verification_method()),
    };
    let issued = Credential::ClinicianLicence(ClinicianLicence {
        subject: subject.clone(),
        licence_number: None,
        profession: "physician".into(),
        specialty: None,
        jurisdiction: "FR".into(),
    })
    .issue(&issuance, &SigningKey::from(copy(board)))
    .unwrap();
    let board_key = VerifyingKey::from(board.public_key());
    SdJwt::parse(&issued, &|_: &str, _: &_| Some(board_key.clone()))
        .unwrap()
        .present_with_key_binding(
            &[],
            node,
            subject.as_str(),
            NOW - 60,
            &SigningKey::from(copy(holder)),
        )
        .unwrap()
}

/// Everyone whose standing an attacker must not change.
pub struct Victims {
    pub node: Keypair,
    pub governance: Keypair,
    pub admin: Keypair,
    pub clinician: Keypair,
    pub patient: Keypair,
    pub recovery: Keypair,
    pub guardian: Keypair,
    pub board: Keypair,
    /// The patient's grant to the clinician.
    pub grant: String,
    /// The clinic's deadline escrow for the patient.
    pub escrow: String,
    /// The board's revocation list, and the clinician's bit in it.
    pub list: String,
    pub bit: usize,
}

impl Victims {
    pub fn new() -> Victims {
        let seed = |n: u8| Keypair::from_seed(&[n; 32]);
        let board = seed(8);
        Victims {
            list: list_id(&did(&board), "board-2026"),
            node: seed(1),
            governance: seed(2),
            admin: seed(3),
            clinician: seed(4),
            patient: seed(5),
            recovery: seed(6),
            guardian: seed(7),
            board,
            grant: String::new(),
            escrow: String::new(),
            bit: 7,
        }
    }

    /// The victims' DIDs, as bodies may name them.
    pub fn dids(&self) -> Vec<String> {
        [
            &self.node,
            &self.governance,
            &self.admin,
            &self.clinician,
            &self.patient,
            &self.recovery,
            &self.guardian,
            &self.board,
        ]
        .into_iter()
        .map(did)
        .collect()
    }

    /// The transactions that set the network up, in log order.
    pub fn setup(&mut self) -> Vec<SignedTx> {
        let v = &*self;
        let mut txs = vec![
            tx(
                &v.governance,
                "org.register",
                "s1",
                json!({"org": CLINIC, "admin": did(&v.admin), "kind": "clinic"}),
            ),
            tx(
                &v.admin,
                "org.member",
                "s2",
                json!({"org": CLINIC, "member": did(&v.clinician), "roles": ["clinician"], "jurisdiction": "FR", "status": "active"}),
            ),
            tx(
                &v.governance,
                "trust.issuer",
                "s3",
                json!({"issuer": did(&v.board), "credential_type": VCT_CLINICIAN_LICENCE, "jurisdictions": ["FR"], "op": "add"}),
            ),
            tx(
                &v.board,
                "status.list",
                "s4",
                json!({"credential": status_list(&v.board, &did(&v.board), &v.list, StatusPurpose::Revocation, &[])}),
            ),
            tx(
                &v.clinician,
                "licence.register",
                "s5",
                json!({"presentation": licence_presentation(&v.board, &v.clinician, &did(&v.node), &[StatusListEntry::new(v.list.clone(), StatusPurpose::Revocation, v.bit)])}),
            ),
            tx(
                &v.node,
                "record",
                "s6",
                json!({"patient": did(&v.patient), "author": did(&v.clinician), "category": "lab", "resource_type": "Observation", "commitment": commitment(1)}),
            ),
            tx(
                &v.node,
                "record",
                "s7",
                json!({"patient": did(&v.patient), "author": did(&v.patient), "category": "note", "resource_type": "Observation", "commitment": commitment(2)}),
            ),
            tx(
                &v.patient,
                "consent.grant",
                "s8",
                json!({"patient": did(&v.patient), "grantee": did(&v.clinician), "scope": {"categories": ["lab"]}, "actions": ["read"], "purpose": "TREAT", "not_before": 0, "not_after": NOW * 2}),
            ),
            tx(
                &v.patient,
                "consent.delegate",
                "s9",
                json!({"patient": did(&v.patient), "delegate": did(&v.guardian), "op": "add"}),
            ),
            tx(
                &v.patient,
                "identity.recovery",
                "s10",
                json!({"recovery_key": did(&v.recovery), "threshold": 2, "guardians": [did(&v.guardian), did(&v.admin)], "split": "ab".repeat(32)}),
            ),
            tx(
                &v.node,
                "access",
                "s11",
                json!({"requester": did(&v.clinician), "patient": did(&v.patient), "action": "read", "purpose": "TREAT", "records": [commitment(1)], "decision": "permit", "break_glass": false, "justified": false, "reasons": ["consent-grant"], "grants": [], "governance_version": 0, "time": NOW}),
            ),
            tx(&v.node, "clock.tick", "s12", json!({"time": NOW})),
            tx(
                &v.governance,
                "unit.register",
                "s13",
                json!({"unit": "gluco-token", "issuer": CLINIC}),
            ),
            tx(
                &v.admin,
                "unit.mint",
                "s14",
                json!({"unit": "gluco-token", "to": CLINIC, "amount": 1000}),
            ),
            tx(
                &v.admin,
                "unit.mint",
                "s15",
                json!({"unit": "gluco-token", "to": did(&v.patient), "amount": 100}),
            ),
            tx(
                &v.admin,
                "escrow.open",
                "s16",
                json!({"unit": "gluco-token", "amount": 50, "funder": CLINIC, "beneficiary": did(&v.patient),
                       "condition": {"kind": "deadline", "at": NOW + 86_400}, "refund_after": NOW + 2 * 86_400}),
            ),
        ]
        .into_iter()
        .map(|t| t.expect("the fixture's transactions are well formed"))
        .collect::<Vec<_>>();
        self.grant = hex::encode(txs[7].leaf_hash().0);
        self.escrow = hex::encode(txs[15].leaf_hash().0);
        txs.shrink_to_fit();
        txs
    }

    /// A fresh state holding the set-up network, and the next leaf index.
    pub fn state(&mut self) -> (LedgerState, u64) {
        let mut state = LedgerState::new(did(&self.node), Some(did(&self.governance)));
        let setup = self.setup();
        for (index, tx) in setup.iter().enumerate() {
            if let Err(e) = state.apply(index as u64, tx) {
                panic!("fixture transaction {index} ({}): {e}", tx.tx_type());
            }
        }
        (state, setup.len() as u64)
    }

    /// Everything about the victims that readers and decisions see.
    pub fn standing(&self, state: &LedgerState) -> Vec<String> {
        let mut seen = vec![format!(
            "network {:?} custodians {:?} nodes {:?} epoch {} validators {:?}",
            state.network.id(),
            state.network.custodians().collect::<Vec<_>>(),
            state.replication.bindings().collect::<Vec<_>>(),
            state.network.epoch(),
            state.network.validator_keys()
        )];
        let consents = state.policy.consents();
        for key in [
            &self.node,
            &self.governance,
            &self.admin,
            &self.clinician,
            &self.patient,
            &self.recovery,
            &self.guardian,
            &self.board,
        ] {
            let d = did(key);
            let ids = &state.identities;
            seen.push(format!(
                "{d}: acts for {:?}, current key {}, rotations {:?}, recovery {:?}",
                ids.identity_of(&d).map_err(|e| e.code.as_str().to_owned()),
                ids.current_key(&d),
                ids.rotations(&d),
                ids.recovery(&d),
            ));
            seen.push(format!(
                "{d}: memberships {:?}, requester {:?}",
                state.participants.memberships(&d),
                state.requester(&d, NOW),
            ));
            let licences: Vec<String> = state
                .credentials
                .licences_of(&d)
                .iter()
                .map(|l| format!("{l:?} {:?}", state.credentials.standing(l, NOW)))
                .collect();
            seen.push(format!("{d}: licences {licences:?}"));
            let mut grants: Vec<String> = consents
                .grants_of(&d)
                .map(|g| format!("{g:?} revoked={}", consents.is_revoked(&g.id)))
                .collect();
            grants.sort();
            let mut delegates: Vec<&str> = consents.delegates_of(&d).collect();
            delegates.sort();
            seen.push(format!("{d}: grants {grants:?}, delegates {delegates:?}"));
            let mut records: Vec<String> = state
                .records
                .of_patient(&d)
                .map(|r| format!("{r:?}"))
                .collect();
            records.sort();
            seen.push(format!("{d}: records {records:?}"));
        }
        seen.push(format!("clinic: {:?}", state.participants.org(CLINIC)));
        for d in self.dids().iter().map(String::as_str).chain([CLINIC]) {
            seen.push(format!("{d}: funds {:?}", state.accounts.balances_of(d)));
        }
        seen.push(format!(
            "escrows {:?} units {:?} clock {}",
            state.escrows.all(),
            state.accounts.units(),
            state.escrows.clock
        ));
        seen.push(format!(
            "governance: {:?} version {}",
            state.participants.governance(),
            state.policy.governance().version()
        ));
        seen.push(format!("trust list: {:?}", state.credentials.trust_list()));
        seen.push(format!(
            "board's list: {:?}",
            state
                .credentials
                .list(&self.list)
                .map(|l| (l.issuer.clone(), l.index))
        ));
        seen
    }

    /// Transactions each victim can still sign and have admitted, as the
    /// victim: the node records and logs, the patient grants and revokes,
    /// governance registers, the admin manages members.
    pub fn still_act(&self, state: &LedgerState, next: u64) -> Result<(), String> {
        let mut state = state.clone();
        let probes = [
            tx(
                &self.node,
                "record",
                "probe-1",
                json!({"patient": did(&self.patient), "author": did(&self.clinician), "category": "lab", "resource_type": "Observation", "commitment": commitment(0xee)}),
            ),
            tx(
                &self.patient,
                "consent.grant",
                "probe-2",
                json!({"patient": did(&self.patient), "grantee": did(&self.admin), "scope": {"categories": ["lab"]}, "actions": ["read"], "purpose": "TREAT", "not_before": 0, "not_after": NOW * 2}),
            ),
            tx(
                &self.patient,
                "consent.revoke",
                "probe-3",
                json!({"grant": self.grant}),
            ),
            tx(
                &self.governance,
                "org.register",
                "probe-4",
                json!({"org": "did:web:probe.example", "admin": did(&self.admin), "kind": "lab"}),
            ),
            tx(
                &self.admin,
                "org.member",
                "probe-5",
                json!({"org": CLINIC, "member": did(&self.guardian), "roles": ["nurse"], "status": "active"}),
            ),
        ];
        for (i, probe) in probes.into_iter().enumerate() {
            let probe = probe.map_err(|e| e.to_string())?;
            state
                .apply(next + i as u64, &probe)
                .map_err(|e| format!("{} by its victim: {e}", probe.tx_type()))?;
        }
        if state
            .requester(&did(&self.clinician), NOW)
            .licence
            .is_none()
        {
            return Err("the clinician's licence no longer counts".into());
        }
        Ok(())
    }
}
