//! The node's state machine, `hygeia_state::LedgerState::apply`, fed
//! sequences of signed transactions of every type, from a few fixed keys
//! (a governance key, the node, two patients, an organization admin and a
//! clinician) over a few fixed organizations, records and codes.
//!
//! The types come from the registry (`REGISTRY.types()`), so a new type is
//! fuzzed without editing this file.
//!
//! The input is read with `arbitrary::Unstructured` as up to [`MAX_OPS`]
//! operations: a signer, a type, a nonce and the choices that make up the
//! body. Each transaction is signed with `TxBuilder`, parsed with
//! `SignedTx::parse` (skipped when refused; both cached across inputs, as
//! they cost most of the time) and applied at the next leaf
//! index. Must hold: no panic; a refused transaction changes nothing that
//! can be observed; an accepted one does what its type says; and replaying
//! the accepted transactions on a new state gives the same effects and the
//! same state (the node's start-up replay, invariant 2).
#![no_main]

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::LazyLock;

use hygeia_identity::Keypair;
use hygeia_ledger::tx::TxContext;
use hygeia_ledger::{ModuleRegistry, SignedTx, TxBuilder};
use hygeia_state::registry::Registry;
use hygeia_state::network;
use hygeia_state::txs::*;
use hygeia_state::{Effect, LedgerState};
use hygeia_policy::{ConsentState, Requester};
use libfuzzer_sys::arbitrary::{Result as ArbResult, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

const NETWORK: &str = "fuzz.example/log";
const MAX_OPS: usize = 24;

const GOVERNANCE: usize = 0;
const NODE: usize = 1;

/// Governance, node, patient A, patient B, organization admin, clinician.
static KEYS: LazyLock<Vec<Keypair>> = LazyLock::new(|| {
    (20u8..26)
        .map(|seed| Keypair::from_seed(&[seed; 32]))
        .collect()
});
static KEY_DIDS: LazyLock<Vec<String>> =
    LazyLock::new(|| KEYS.iter().map(|k| k.did().as_str().to_owned()).collect());
const ORGS: [&str; 2] = ["did:web:clinic.example", "did:web:lab.example"];
static COMMITMENTS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ["aa", "bb", "c0", "0d"]
        .iter()
        .map(|b| b.repeat(32))
        .collect()
});
const CATEGORIES: [&str; 3] = ["lab", "mental-health", "imaging"];
const RESOURCE_TYPES: [&str; 2] = ["Observation", "Condition"];
const PURPOSES: [&str; 9] = [
    "TREAT", "ETREAT", "HPAYMT", "HOPERAT", "HRESCH", "PUBHLTH", "PATRQT", "COVERAGE", "HMARKT",
];
const COUNTRIES: [&str; 2] = ["FR", "DE"];
const KINDS: [&str; 3] = ["clinic", "lab", "hospital"];
const ROLES: [&str; 8] = [
    "clinician",
    "nurse",
    "lab-technician",
    "pharmacist",
    "researcher",
    "payer-agent",
    "device",
    "admin",
];
/// Every type the node accepts, from the registry: types with a
/// vocabulary of their own in [`body`], the others from their registered
/// example with this target's keys and commitments put in.
static TYPES: LazyLock<Vec<&'static str>> = LazyLock::new(|| REGISTRY.types());
/// Policy sets to install: small valid ones (Cedar validation of the
/// default set costs tens of milliseconds here), and ones refused for a
/// missing or repeated `@id`, for being a template and for bad syntax.
const POLICIES: [&str; 6] = [
    r#"@id("fuzz.own-records")
permit (principal, action, resource) when { principal == resource.patient };
@id("fuzz.break-glass")
@break_glass("true")
permit (principal, action == Hygeia::Action::"read", resource)
when { context.purpose == "ETREAT" };
@id("fuzz.grant")
permit (principal, action, resource)
when { context has grant && context.grant.patient == resource.patient };"#,
    r#"@id("fuzz.permit-all") permit (principal, action, resource);"#,
    "permit (principal, action, resource);",
    r#"@id("a") permit (principal, action, resource); @id("a") forbid (principal, action, resource);"#,
    r#"@id("t") permit (principal == ?principal, action, resource);"#,
    r#"@id("x") permit ("#,
];

static REGISTRY: LazyLock<ModuleRegistry> = LazyLock::new(registry);

fn pick<'a, T: ?Sized>(u: &mut Unstructured<'_>, items: &'a [&'a T]) -> ArbResult<&'a T> {
    Ok(items[u.choose_index(items.len())?])
}

fn pick_string<'a>(u: &mut Unstructured<'_>, items: &'a [String]) -> ArbResult<&'a str> {
    Ok(&items[u.choose_index(items.len())?])
}

/// A DID that may be a key or an organization.
fn any_did(u: &mut Unstructured<'_>) -> ArbResult<String> {
    let i = u.choose_index(KEY_DIDS.len() + ORGS.len())?;
    Ok(match KEY_DIDS.get(i) {
        Some(did) => did.clone(),
        None => ORGS[i - KEY_DIDS.len()].to_owned(),
    })
}

/// The members of `items` picked by the bits of one byte.
fn subset(u: &mut Unstructured<'_>, items: &[&str]) -> ArbResult<Vec<String>> {
    let bits: u8 = u.arbitrary()?;
    Ok(items
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, s)| (*s).to_owned())
        .collect())
}

/// A body for `tx_type` from the fixed vocabulary above.
fn body(u: &mut Unstructured<'_>, tx_type: &str, grants: &[String]) -> ArbResult<Value> {
    let commitments: Vec<&str> = COMMITMENTS.iter().map(String::as_str).collect();
    Ok(match tx_type {
        hygeia_ledger::attest::TX_TYPE => json!({
            "label": pick(u, &CATEGORIES)?,
            "subject": format!("sha256:{}", pick(u, &commitments)?),
        }),
        ORG_REGISTER => json!({
            "org": pick(u, &ORGS)?,
            "admin": pick_string(u, &KEY_DIDS)?,
            "kind": pick(u, &KINDS)?,
        }),
        ORG_MEMBER => {
            let mut b = json!({
                "org": pick(u, &ORGS)?,
                "member": pick_string(u, &KEY_DIDS)?,
                "roles": subset(u, &ROLES)?,
                "status": pick(u, &["active", "suspended", "removed"])?,
            });
            if u.arbitrary()? {
                b["jurisdiction"] = pick(u, &COUNTRIES)?.into();
            }
            b
        }
        network::GENESIS => json!({
            "governance": [pick_string(u, &KEY_DIDS)?],
            "custodians": [pick_string(u, &KEY_DIDS)?],
        }),
        network::NETWORK_CUSTODIAN => {
            let op = pick(u, &["add", "remove", "rotate"])?;
            let mut b = json!({"op": op, "key": pick_string(u, &KEY_DIDS)?});
            if op == "rotate" {
                b["new_key"] = pick_string(u, &KEY_DIDS)?.into();
            }
            b
        }
        GOVERNANCE_POLICY => json!({
            "version": u.int_in_range(0..=3u64)?,
            "policies": pick(u, &POLICIES)?,
        }),
        RECORD => json!({
            "patient": pick_string(u, &KEY_DIDS)?,
            "author": pick_string(u, &KEY_DIDS)?,
            "category": pick(u, &CATEGORIES)?,
            "resource_type": pick(u, &RESOURCE_TYPES)?,
            "commitment": pick(u, &commitments)?,
        }),
        RECORD_ERASE => json!({ "record": pick(u, &commitments)? }),
        CONSENT_GRANT => {
            let not_before = i64::from(u.int_in_range(0..=3u8)?) * 100;
            let not_after = i64::from(u.int_in_range(0..=3u8)?) * 100;
            let mut scope = json!({});
            let which: u8 = u.arbitrary()?;
            if which & 1 != 0 {
                scope["categories"] = subset(u, &CATEGORIES)?.into();
            }
            if which & 2 != 0 {
                scope["resource_types"] = subset(u, &RESOURCE_TYPES)?.into();
            }
            if which & 4 != 0 {
                scope["record_ids"] = subset(u, &commitments)?.into();
            }
            let mut b = json!({
                "patient": pick_string(u, &KEY_DIDS)?,
                "grantee": any_did(u)?,
                "scope": scope,
                "actions": subset(u, &["read", "write"])?,
                "purpose": pick(u, &PURPOSES)?,
                "not_before": not_before,
                "not_after": not_after,
            });
            let jurisdictions = subset(u, &COUNTRIES)?;
            if !jurisdictions.is_empty() {
                b["jurisdictions"] = jurisdictions.into();
            }
            b
        }
        CONSENT_REVOKE => {
            let unknown = "ee".repeat(32);
            let i = u.choose_index(grants.len() + 1)?;
            json!({ "grant": grants.get(i).unwrap_or(&unknown) })
        }
        CONSENT_DELEGATE => json!({
            "patient": pick_string(u, &KEY_DIDS)?,
            "delegate": pick_string(u, &KEY_DIDS)?,
            "op": pick(u, &["add", "remove"])?,
        }),
        ACCESS => json!({
            "requester": any_did(u)?,
            "patient": pick_string(u, &KEY_DIDS)?,
            "action": pick(u, &["read", "write"])?,
            "purpose": pick(u, &PURPOSES)?,
            "records": subset(u, &commitments)?,
            "decision": pick(u, &["permit", "deny"])?,
            "break_glass": u.arbitrary::<bool>()?,
            "justified": u.arbitrary::<bool>()?,
            "reasons": subset(u, &["hygeia.consent", "hygeia.break-glass"])?,
            "grants": grants.iter().take(usize::from(u.int_in_range(0..=2u8)?)).collect::<Vec<_>>(),
            "governance_version": u.int_in_range(0..=3u64)?,
            "time": i64::from(u.int_in_range(0..=7u8)?) * 1000,
        }),
        other => {
            let mut body = Registry::global()
                .get(other)
                .map(|entry| entry.example())
                .unwrap_or(Value::Null);
            vary(u, &mut body)?;
            body
        }
    })
}

/// Puts the fuzzer's keys in for every did:key and its commitments in for
/// every 64-hex-digit string of an example body.
fn vary(u: &mut Unstructured<'_>, value: &mut Value) -> ArbResult<()> {
    match value {
        Value::String(text) if text.starts_with("did:key:") => {
            *text = pick_string(u, &KEY_DIDS)?.to_owned();
        }
        Value::String(text) if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) => {
            *text = pick_string(u, &COMMITMENTS)?.to_owned();
        }
        Value::Array(items) => {
            for item in items {
                vary(u, item)?;
            }
        }
        Value::Object(members) => {
            for member in members.values_mut() {
                vary(u, member)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Everything about the state that the node's API can observe, for the
/// fixed vocabulary of the fuzzer.
#[derive(Debug, PartialEq)]
struct Snapshot {
    records: usize,
    erased: usize,
    record_entries: Vec<String>,
    by_patient: Vec<Vec<String>>,
    consents: ConsentState,
    governance: (u64, String),
    orgs: Vec<String>,
    memberships: Vec<String>,
    requesters: Vec<Requester>,
    break_glass: Vec<Option<i64>>,
    custodians: Vec<String>,
}

impl Snapshot {
    fn of(state: &LedgerState) -> Snapshot {
        let all_dids: Vec<String> = KEY_DIDS
            .iter()
            .cloned()
            .chain(ORGS.iter().map(|s| (*s).to_owned()))
            .collect();
        Snapshot {
            records: state.records.len(),
            erased: state.records.erased().count(),
            record_entries: COMMITMENTS
                .iter()
                .map(|c| to_json(&state.records.get(c)))
                .collect(),
            by_patient: KEY_DIDS
                .iter()
                .map(|p| {
                    state
                        .records
                        .of_patient(p)
                        .map(|r| r.commitment.clone())
                        .collect()
                })
                .collect(),
            consents: state.policy.consents().clone(),
            governance: (
                state.policy.governance().version(),
                state.policy.governance().text().to_owned(),
            ),
            orgs: ORGS
                .iter()
                .map(|o| to_json(&state.participants.org(o)))
                .collect(),
            memberships: KEY_DIDS
                .iter()
                .map(|d| to_json(&state.participants.memberships(d)))
                .collect(),
            requesters: KEY_DIDS
                .iter()
                .map(|d| state.participants.requester(d))
                .collect(),
            break_glass: all_dids
                .iter()
                .flat_map(|r| {
                    KEY_DIDS
                        .iter()
                        .map(move |p| state.break_glass_until(r, p, i64::MIN))
                })
                .collect(),
            custodians: state.network.custodians().map(str::to_owned).collect(),
        }
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("state serializes")
}

thread_local! {
    /// Signed and parsed transactions by (signer, type, nonce, body):
    /// signing and checking the signature would otherwise take most of the
    /// time, and the fuzzer's inputs repeat most of their operations.
    static SIGNED: RefCell<HashMap<(usize, &'static str, String, String), Option<SignedTx>>> =
        RefCell::new(HashMap::new());
}
const MAX_CACHED: usize = 20_000;

/// The transaction signed with `TxBuilder` and parsed with `SignedTx::parse`;
/// `None` if the parser refuses it.
fn signed(
    signer: usize,
    tx_type: &'static str,
    nonce: String,
    body: Value,
    ctx: &TxContext<'_>,
) -> Option<SignedTx> {
    let key = (signer, tx_type, nonce, body.to_string());
    if let Some(hit) = SIGNED.with(|c| c.borrow().get(&key).cloned()) {
        return hit;
    }
    let raw = TxBuilder {
        network: NETWORK,
        tx_type,
        nonce: key.2.clone(),
        body,
    }
    .sign(&KEYS[signer]);
    let tx = SignedTx::parse(&raw, ctx).ok();
    SIGNED.with(|c| {
        let mut cache = c.borrow_mut();
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(key, tx.clone());
    });
    tx
}

fn new_state() -> LedgerState {
    LedgerState::new(KEY_DIDS[NODE].clone(), Some(KEY_DIDS[GOVERNANCE].clone()))
}

fn run(u: &mut Unstructured<'_>) -> ArbResult<()> {
    let ctx = TxContext {
        network: NETWORK,
        modules: &REGISTRY,
    };
    let mut state = new_state();
    let mut accepted: Vec<(SignedTx, Effect)> = Vec::new();
    let mut grants: Vec<String> = Vec::new();

    for _ in 0..MAX_OPS {
        if u.is_empty() {
            break;
        }
        let signer = u.choose_index(KEYS.len())?;
        let tx_type: &'static str = TYPES[u.choose_index(TYPES.len())?];
        let nonce = format!("n{}", u.int_in_range(0..=3u8)?);
        let body = body(u, tx_type, &grants)?;
        let Some(tx) = signed(signer, tx_type, nonce, body, &ctx) else {
            continue;
        };

        let index = accepted.len() as u64;
        let before = Snapshot::of(&state);
        match state.apply(index, &tx) {
            Err(e) => {
                let after = Snapshot::of(&state);
                assert_eq!(
                    before, after,
                    "{tx_type} refused ({e:?}) but changed the state"
                );
            }
            Ok(effect) => {
                let after = Snapshot::of(&state);
                let body = tx.body();
                match tx_type {
                    RECORD => {
                        assert_eq!(after.records, before.records + 1);
                        assert_eq!(effect, Effect::None);
                    }
                    RECORD_ERASE => {
                        assert_eq!(after.erased, before.erased + 1);
                        assert_eq!(
                            effect,
                            Effect::Erased {
                                commitment: body["record"].as_str().unwrap().to_owned()
                            }
                        );
                    }
                    CONSENT_GRANT => {
                        assert_eq!(after.consents.len(), before.consents.len() + 1);
                        grants.push(
                            tx.leaf_hash()
                                .0
                                .iter()
                                .map(|b| format!("{b:02x}"))
                                .collect(),
                        );
                    }
                    CONSENT_REVOKE => {
                        assert!(after.consents.is_revoked(body["grant"].as_str().unwrap()));
                        assert_eq!(
                            after.consents.unrevoked_len() + 1,
                            before.consents.unrevoked_len()
                        );
                    }
                    ACCESS => {
                        assert!(matches!(
                            &effect,
                            Effect::Accessed { patient, .. } if patient == body["patient"].as_str().unwrap()
                        ));
                        assert_eq!(after.records, before.records);
                        assert_eq!(after.consents, before.consents);
                    }
                    hygeia_ledger::attest::TX_TYPE => assert_eq!(before, after),
                    _ => assert_eq!(effect, Effect::None),
                }
                accepted.push((tx, effect));
            }
        }
    }

    // The start-up path: replaying what was accepted gives the same.
    let mut replayed = new_state();
    for (index, (tx, effect)) in accepted.iter().enumerate() {
        match replayed.apply(index as u64, tx) {
            Ok(again) => assert_eq!(&again, effect, "replay of {index} differs"),
            Err(e) => panic!("replay refuses transaction {index}, accepted before: {e:?}"),
        }
    }
    assert_eq!(Snapshot::of(&replayed), Snapshot::of(&state));
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
