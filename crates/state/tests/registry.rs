//! What follows from the registry of transaction types: bad bodies for
//! every type it knows are refused when the transaction is parsed, with
//! `schema_violation`, before any rule of the state sees it; and the table
//! of types in the docs is the one it generates. The list of types
//! comes from the registry, so a new type is covered without editing this
//! file.

use hygeia_identity::Keypair;
use hygeia_ledger::tx::TxContext;
use hygeia_ledger::{SignedTx, TxBuilder};
use hygeia_state::registry::{example_did, Registry, TxType, DOMAINS};
use hygeia_state::txs::registry;
use hygeia_state::LedgerState;
use serde_json::{json, Value};

const NETWORK: &str = "bad-input.hygeia.test";

fn parse(tx_type: &str, body: Value) -> Result<SignedTx, hygeia_ledger::TxError> {
    let modules = registry();
    let ctx = TxContext {
        network: NETWORK,
        modules: &modules,
    };
    let raw = TxBuilder {
        network: NETWORK,
        tx_type,
        nonce: "n1".into(),
        body,
    }
    .sign(&Keypair::from_seed(&[7; 32]));
    SignedTx::parse(&raw, &ctx)
}

#[test]
fn a_body_that_fails_its_schema_is_refused_for_every_type() {
    let types = registry().types();
    assert!(types.len() >= 16, "the registry lists {types:?}");
    let bad_bodies = [
        json!(null),
        json!([]),
        json!("text"),
        json!(17),
        json!({}),
        json!({"unexpected_field": "did:key:z6Mkunexpected"}),
    ];
    for tx_type in types {
        for body in &bad_bodies {
            let error = parse(tx_type, body.clone())
                .err()
                .unwrap_or_else(|| panic!("{tx_type} accepted the body {body}"));
            assert_eq!(
                error.code.as_str(),
                "schema_violation",
                "{tx_type} with body {body}: {error}"
            );
        }
    }
}

#[test]
fn an_unregistered_type_is_refused() {
    let error = parse("payment.release", json!({})).unwrap_err();
    assert_eq!(error.code.as_str(), "unknown_type");
}

/// docs/records.md explains what goes on the ledger by pointing to the
/// generated table of types, not by a list of its own.
#[test]
fn the_ledger_section_of_the_docs_points_to_the_generated_table() {
    let docs = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/records.md"
    ))
    .unwrap();
    let section = docs
        .split("## What exactly goes on the ledger")
        .nth(1)
        .unwrap();
    assert!(section.contains("(transaction-types.md)"));
    // No table of types is kept there by hand any more: it would drift.
    assert!(
        !section.lines().any(|l| l.starts_with("| type")),
        "docs/records.md keeps a table of types by hand; point to docs/transaction-types.md"
    );
}

/// The registry's own table of types, docs/transaction-types.md, is what
/// the registry generates. `HYGEIA_BLESS=1` rewrites it.
#[test]
fn the_generated_table_of_types_is_current() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/transaction-types.md"
    );
    let generated = Registry::global().markdown();
    if std::env::var_os("HYGEIA_BLESS").is_some() {
        std::fs::write(path, &generated).unwrap();
    }
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "docs/transaction-types.md is stale: run HYGEIA_BLESS=1 cargo test -p hygeia-state --test registry"
    );
    for tx_type in registry().types() {
        assert!(generated.contains(&format!("| `{tx_type}` |")), "{tx_type}");
    }
}

/// Bodies that break the schema of `tx_type`, derived from its example
/// and its JSON Schema: each required field missing, each field of the
/// wrong JSON type, and an unknown field.
fn schema_breakers(entry: &TxType) -> Vec<(String, Value)> {
    let example = entry.example();
    let object = example.as_object().expect("bodies are objects").clone();
    let mut bad = Vec::new();
    let (definitions, _) = Registry::global().body_schemas();
    let schema = &definitions[entry.rust_name];
    for field in schema["required"].as_array().into_iter().flatten() {
        let field = field.as_str().unwrap();
        let mut body = object.clone();
        body.remove(field);
        bad.push((format!("without {field}"), Value::Object(body)));
    }
    for (field, value) in &object {
        let wrong = match value {
            Value::String(_) => json!(17),
            Value::Object(_) => json!(["not", "an", "object"]),
            _ => json!({"not": "this"}),
        };
        let mut body = object.clone();
        body.insert(field.clone(), wrong.clone());
        bad.push((format!("{field} = {wrong}"), Value::Object(body)));
    }
    let mut body = object.clone();
    body.insert("unexpected_field".into(), json!("did:key:z6Mkunexpected"));
    bad.push(("an unknown field".into(), Value::Object(body)));
    bad
}

/// A module that lets any body of one type through the parser, so the
/// state's own check can be tested on bodies the node never admits.
struct AnyBody(&'static str);

impl hygeia_ledger::TxModule for AnyBody {
    fn tx_type(&self) -> &'static str {
        self.0
    }

    fn check_body(&self, _: &Value) -> Result<(), String> {
        Ok(())
    }
}

/// For every type the registry knows (generated from it): its example
/// passes the parser's check; every body that breaks its schema is
/// refused with `schema_violation` both when parsed and, should one ever
/// reach the state, by `LedgerState::apply`, which then changes nothing.
#[test]
fn every_type_refuses_bodies_that_break_its_schema_and_changes_nothing() {
    let signer = Keypair::from_seed(&[7; 32]);
    let mut checked = 0;
    for entry in Registry::global().types() {
        parse(entry.tx_type, entry.example())
            .unwrap_or_else(|e| panic!("{}'s example is refused: {e}", entry.tx_type));
        let mut lenient = hygeia_ledger::ModuleRegistry::with_builtins();
        lenient.register(std::sync::Arc::new(AnyBody(entry.tx_type)));
        let ctx = TxContext {
            network: NETWORK,
            modules: &lenient,
        };
        for (what, body) in schema_breakers(entry) {
            // A migrated log's legacy prefix may hold an older shape (an
            // `identity.rotate` without proof): the parser lets it through
            // and the state below refuses it outside that prefix.
            if !entry.legacy_accepts(&body) {
                let error = parse(entry.tx_type, body.clone())
                    .err()
                    .unwrap_or_else(|| panic!("{} accepted a body {what}", entry.tx_type));
                assert_eq!(
                    error.code.as_str(),
                    "schema_violation",
                    "{} {what}",
                    entry.tx_type
                );
            }

            let raw = TxBuilder {
                network: NETWORK,
                tx_type: entry.tx_type,
                nonce: "n1".into(),
                body,
            }
            .sign(&signer);
            let tx = SignedTx::parse(&raw, &ctx).unwrap();
            let mut state = LedgerState::new(example_did(1), Some(signer.did().to_string()));
            let before = format!("{state:?}");
            let error = state.apply(0, &tx).unwrap_err();
            assert_eq!(
                error.code.as_str(),
                "schema_violation",
                "{} {what}",
                entry.tx_type
            );
            assert_eq!(format!("{state:?}"), before, "{} {what}", entry.tx_type);
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} bad bodies");
}

/// Every type's schema is an object schema that refuses unknown fields,
/// as its parser does.
#[test]
fn every_body_schema_is_a_closed_object() {
    let (definitions, by_type) = Registry::global().body_schemas();
    for entry in Registry::global().types() {
        let reference = by_type[entry.tx_type]["$ref"].as_str().unwrap();
        assert_eq!(
            reference,
            format!("#/components/schemas/{}", entry.rust_name)
        );
        let schema = &definitions[entry.rust_name];
        assert_eq!(schema["type"], "object", "{}", entry.tx_type);
        assert_eq!(schema["additionalProperties"], false, "{}", entry.tx_type);
    }
}

/// A domain added the way docs/adding-a-transaction-type.md says, and
/// nothing else: its body type, its rule, its registration line. Here it
/// lives in a test, with a second domain reacting to it.
mod milestones {
    use hygeia_ledger::{ErrorCode, TxError};
    use hygeia_state::records::RecordEntry;
    use hygeia_state::registry::{example_did, Cx, Registry, TxBody};
    use hygeia_state::{Effect, LedgerState};
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};

    /// `test.milestone`, signed by the node: a milestone of a study
    /// reached, recorded as a record of the patient.
    #[derive(Clone, Serialize, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct Milestone {
        pub patient: String,
        pub commitment: String,
    }

    /// What the milestones domain announces.
    pub struct MilestoneRecorded {
        pub commitment: String,
    }

    pub fn register(r: &mut Registry) {
        r.add::<Milestone>().emits::<MilestoneRecorded>();
    }

    impl TxBody for Milestone {
        const TYPE: &'static str = "test.milestone";

        fn example() -> Self {
            Milestone {
                patient: example_did(4),
                commitment: "ab".repeat(32),
            }
        }

        fn check(&self) -> Result<(), String> {
            hygeia_state::txs::check_did_key("patient", &self.patient)?;
            hygeia_state::txs::check_hex32("commitment", &self.commitment)
        }

        fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
            if state.records.contains(&self.commitment) {
                return Err(TxError::new(
                    ErrorCode::Conflict("record.exists"),
                    "already recorded",
                ));
            }
            state.records.insert(RecordEntry {
                commitment: self.commitment.clone(),
                patient: self.patient,
                author: cx.signer.clone(),
                category: "milestone".into(),
                resource_type: "Task".into(),
                index: cx.index,
                erased_at: None,
                node: None,
            })?;
            // Emitted after the change: the registry undoes it if a
            // reaction refuses.
            cx.emit(MilestoneRecorded {
                commitment: self.commitment,
            })?;
            Ok(Effect::None)
        }
    }

    /// The payments domain: releases a payment (here: registers the payee
    /// organization) when a milestone is recorded. The payee of every
    /// milestone is the same, so the second payment conflicts.
    pub fn register_payments(r: &mut Registry) {
        r.on::<MilestoneRecorded>(release_payment);
    }

    pub const PAYEE: &str = "did:web:payee.example";

    fn release_payment(
        state: &mut LedgerState,
        cx: &mut Cx<'_>,
        event: &MilestoneRecorded,
    ) -> Result<(), TxError> {
        assert_eq!(event.commitment.len(), 64);
        let body = hygeia_state::txs::OrgRegister {
            org: PAYEE.into(),
            admin: example_did(1),
            kind: hygeia_state::txs::OrgKind::Payer,
        };
        state.participants.register_org(&cx.signer, cx.index, &body)
    }

    /// A type that emits an event it did not declare.
    #[derive(Clone, Serialize, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct Sloppy {
        pub n: u8,
    }

    impl TxBody for Sloppy {
        const TYPE: &'static str = "test.sloppy";

        fn example() -> Self {
            Sloppy { n: 1 }
        }

        fn apply(self, _: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
            cx.emit(MilestoneRecorded {
                commitment: "00".repeat(32),
            })?;
            Ok(Effect::None)
        }
    }

    /// Events that set each other off without end.
    pub struct Echo;

    #[derive(Clone, Serialize, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct Shout {
        pub n: u8,
    }

    impl TxBody for Shout {
        const TYPE: &'static str = "test.shout";

        fn example() -> Self {
            Shout { n: 1 }
        }

        fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
            state.records.insert(RecordEntry {
                commitment: "ee".repeat(32),
                patient: cx.signer.clone(),
                author: cx.signer.clone(),
                category: "echo".into(),
                resource_type: "Task".into(),
                index: cx.index,
                erased_at: None,
                node: None,
            })?;
            cx.emit(Echo)?;
            Ok(Effect::None)
        }
    }

    /// How many times a `test.counted` body was read from JSON.
    pub static COUNTED_PARSES: std::sync::atomic::AtomicUsize =
        std::sync::atomic::AtomicUsize::new(0);

    fn counted_n<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
        COUNTED_PARSES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        u8::deserialize(d)
    }

    /// `test.counted`: a body that counts how often it is parsed; at most
    /// 9 passes its check.
    #[derive(Clone, Serialize, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct Counted {
        #[serde(deserialize_with = "counted_n")]
        pub n: u8,
    }

    impl TxBody for Counted {
        const TYPE: &'static str = "test.counted";

        fn example() -> Self {
            Counted { n: 1 }
        }

        fn check(&self) -> Result<(), String> {
            if self.n <= 9 {
                Ok(())
            } else {
                Err("n must be at most 9".into())
            }
        }

        fn apply(self, _: &mut LedgerState, _: &mut Cx<'_>) -> Result<Effect, TxError> {
            Ok(Effect::None)
        }
    }

    pub fn register_others(r: &mut Registry) {
        r.add::<Counted>();
        r.add::<Sloppy>();
        r.add::<Shout>().emits::<Echo>();
        r.on::<Echo>(|_, cx, _| cx.emit(Echo));
    }
}

fn test_registry() -> Registry {
    let mut domains = DOMAINS.to_vec();
    domains.push(("milestones", milestones::register));
    domains.push(("payments", milestones::register_payments));
    domains.push(("others", milestones::register_others));
    Registry::with_domains(&domains)
}

fn signed_with(registry: &Registry, key: &Keypair, tx_type: &str, body: Value) -> SignedTx {
    let modules = registry.modules();
    let ctx = TxContext {
        network: NETWORK,
        modules: &modules,
    };
    let raw = TxBuilder {
        network: NETWORK,
        tx_type,
        nonce: hex::encode(rand_nonce(&body)),
        body,
    }
    .sign(key);
    SignedTx::parse(&raw, &ctx).unwrap()
}

fn rand_nonce(body: &Value) -> [u8; 8] {
    let text = body.to_string();
    let mut nonce = [0u8; 8];
    for (i, b) in text.bytes().enumerate() {
        nonce[i % 8] = nonce[i % 8].wrapping_mul(31).wrapping_add(b);
    }
    nonce
}

/// A new type takes its module and one registration line: the parser,
/// the dispatch, the list of types, the schemas and the table of the docs
/// all know it, and its bad bodies are refused like every other type's.
#[test]
fn a_type_added_by_one_registration_is_known_everywhere() {
    let registry = test_registry();
    let modules = registry.modules();
    assert!(modules.types().contains(&"test.milestone"));
    let entry = registry.get("test.milestone").unwrap();
    assert_eq!(entry.domain, "milestones");
    let (definitions, by_type) = registry.body_schemas();
    assert_eq!(
        by_type["test.milestone"]["$ref"],
        "#/components/schemas/Milestone"
    );
    assert_eq!(definitions["Milestone"]["additionalProperties"], false);
    assert!(registry
        .markdown()
        .contains("| `test.milestone` | milestones | identity | `Milestone` |"));
    let ctx = TxContext {
        network: NETWORK,
        modules: &modules,
    };
    let raw = TxBuilder {
        network: NETWORK,
        tx_type: "test.milestone",
        nonce: "n1".into(),
        body: json!({"patient": "not a did", "commitment": "ab".repeat(32)}),
    }
    .sign(&Keypair::from_seed(&[7; 32]));
    let error = SignedTx::parse(&raw, &ctx).unwrap_err();
    assert_eq!(error.code.as_str(), "schema_violation");
    // The standard registry does not know it.
    assert!(Registry::global().get("test.milestone").is_none());
}

/// A reaction runs inside the transaction that set it off: when it
/// succeeds both changes are there; when it refuses, the transaction is
/// refused with the reaction's code and nothing of either change stays.
#[test]
fn a_reaction_is_part_of_the_same_all_or_nothing_transaction() {
    let registry = test_registry();
    let governance = Keypair::from_seed(&[2; 32]);
    let mut state = LedgerState::new(example_did(1), Some(governance.did().to_string()));
    let first = signed_with(
        &registry,
        &governance,
        "test.milestone",
        json!({"patient": example_did(4), "commitment": "01".repeat(32)}),
    );
    state.apply_with(&registry, 0, &first).unwrap();
    assert!(state.records.contains(&"01".repeat(32)));
    assert!(state.participants.org(milestones::PAYEE).is_some());

    // The second payment conflicts: the milestone is not recorded either.
    let second = signed_with(
        &registry,
        &governance,
        "test.milestone",
        json!({"patient": example_did(4), "commitment": "02".repeat(32)}),
    );
    let before = format!("{state:?}");
    let error = state.apply_with(&registry, 1, &second).unwrap_err();
    assert_eq!(error.code.as_str(), "org.exists");
    assert!(!state.records.contains(&"02".repeat(32)));
    assert_eq!(format!("{state:?}"), before);

    // A signer the reaction refuses (not governance): same.
    let stranger = Keypair::from_seed(&[99; 32]);
    let mut fresh = LedgerState::new(example_did(1), Some(governance.did().to_string()));
    let before = format!("{fresh:?}");
    let third = signed_with(
        &registry,
        &stranger,
        "test.milestone",
        json!({"patient": example_did(4), "commitment": "03".repeat(32)}),
    );
    let error = fresh.apply_with(&registry, 0, &third).unwrap_err();
    assert_eq!(error.code.as_str(), "org.not_governance");
    assert_eq!(format!("{fresh:?}"), before);
}

/// A body is parsed once, when its transaction is: the rule receives the
/// parsed value. A transaction parsed against modules that keep no parsed
/// body (here the ledger's lenient stand-in) is parsed and checked by the
/// state, so an unchecked body never reaches a rule.
#[test]
fn a_body_is_parsed_once_from_the_wire_to_its_rule() {
    use std::sync::atomic::Ordering::SeqCst;
    let registry = test_registry();
    let key = Keypair::from_seed(&[2; 32]);
    let mut state = LedgerState::new(example_did(1), Some(key.did().to_string()));
    let before = milestones::COUNTED_PARSES.load(SeqCst);
    let tx = signed_with(&registry, &key, "test.counted", json!({"n": 3}));
    assert_eq!(milestones::COUNTED_PARSES.load(SeqCst), before + 1);
    state.apply_with(&registry, 0, &tx).unwrap();
    assert_eq!(
        milestones::COUNTED_PARSES.load(SeqCst),
        before + 1,
        "the rule got the body parsed at admission"
    );

    /// Accepts any body of `test.counted`, and keeps no parsed one.
    struct Lenient;
    impl hygeia_ledger::TxModule for Lenient {
        fn tx_type(&self) -> &'static str {
            "test.counted"
        }
        fn check_body(&self, _: &Value) -> Result<(), String> {
            Ok(())
        }
    }
    let mut lenient = hygeia_ledger::ModuleRegistry::default();
    lenient.register(std::sync::Arc::new(Lenient));
    let ctx = TxContext {
        network: NETWORK,
        modules: &lenient,
    };
    let sign = |n: u8, nonce: &str| {
        let raw = TxBuilder {
            network: NETWORK,
            tx_type: "test.counted",
            nonce: nonce.into(),
            body: json!({ "n": n }),
        }
        .sign(&key);
        SignedTx::parse(&raw, &ctx).unwrap()
    };
    state.apply_with(&registry, 1, &sign(4, "l1")).unwrap();
    let error = state.apply_with(&registry, 2, &sign(10, "l2")).unwrap_err();
    assert_eq!(error.code.as_str(), "schema_violation");
}

/// An event the type did not declare is refused, and reactions that set
/// each other off stop at the bound, undoing everything.
#[test]
fn undeclared_events_and_endless_reactions_are_refused() {
    let registry = test_registry();
    let key = Keypair::from_seed(&[2; 32]);
    let mut state = LedgerState::new(example_did(1), Some(key.did().to_string()));
    let before = format!("{state:?}");
    let sloppy = signed_with(&registry, &key, "test.sloppy", json!({"n": 1}));
    let error = state.apply_with(&registry, 0, &sloppy).unwrap_err();
    assert_eq!(error.code.as_str(), "reaction.undeclared_event");
    let shout = signed_with(&registry, &key, "test.shout", json!({"n": 1}));
    let error = state.apply_with(&registry, 0, &shout).unwrap_err();
    assert_eq!(error.code.as_str(), "reaction.too_many_events");
    assert!(!state.records.contains(&"ee".repeat(32)));
    assert_eq!(format!("{state:?}"), before);
}
