//! The one list of transaction types. Each domain module registers the
//! types it owns ([`DOMAINS`]); everything that needs the list of types
//! reads it from here: parsing and the body checks (as the ledger's
//! [`ModuleRegistry`]), dispatch in [`LedgerState::apply`], the node's
//! `transaction_types`, the body schemas of the OpenAPI document, the table
//! of docs/transaction-types.md, the fuzz targets and the property tests.
//!
//! A type is a Rust type implementing [`TxBody`]: its `type` string, its
//! stateless check beyond the schema, and its rule. Its JSON Schema is
//! derived from the Rust type (`schemars`), so the schema cannot drift
//! from what is parsed.
//!
//! ## Reactions between domains
//!
//! A rule may announce that something happened with [`Cx::emit`] (say, a
//! milestone recorded); domains subscribe with [`Registry::on`] (a payment
//! released). Reactions run inside the same [`LedgerState::apply`], after
//! the rule that emitted, in emission order, and may emit in turn. The
//! transaction is all or nothing: an error in the rule or in any reaction
//! refuses the transaction and leaves the state as it was. To that end a
//! type declares the events it may emit at registration
//! (`r.add::<T>().emits::<E>()`): a transaction of a type whose events have
//! subscribers is applied on a copy of the state, and a rule that emits an
//! event it did not declare is refused (a mistake its first test shows).
//! Types that emit nothing cost nothing.

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use hygeia_ledger::{ErrorCode, ModuleRegistry, ParsedBody, SignedTx, TxError, TxModule};
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::{Effect, LedgerState};

/// A domain: its name and the function that registers its types and
/// reactions.
pub type Domain = (&'static str, fn(&mut Registry));

/// The domains, each with the function that registers its types and
/// reactions. A new domain is one line here; a new type of an existing
/// domain is one line in its `register`.
pub const DOMAINS: &[Domain] = &[
    ("participants", crate::participants::register),
    ("consent", crate::consent::register),
    ("records", crate::records::register),
    ("credentials", crate::credentials::register),
    ("identities", crate::identities::register),
    ("network", crate::network::register),
    ("devices", crate::devices::register),
    ("accounts", crate::accounts::register),
    ("escrow", crate::escrow::register),
    ("programs", crate::programs::register),
    ("trials", crate::trials::register),
    ("datasets", crate::datasets::register),
    ("sharing", crate::sharing::register),
    ("replication", crate::replication::register),
];

/// Most events (and reactions) one transaction may set off, so that two
/// domains reacting to each other cannot loop.
pub const MAX_EVENTS_PER_TX: usize = 64;

/// Whom a type's rule sees as its signer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignedAs {
    /// The identity the signing key acts for (after key rotations); a
    /// retired key is refused before the rule runs.
    Identity,
    /// The signing key itself: a recovery key acts for no identity.
    Key,
}

/// One transaction type: the Rust type of its `body`.
pub trait TxBody:
    DeserializeOwned + Serialize + JsonSchema + Clone + Send + Sync + 'static
{
    /// The envelope's `type`.
    const TYPE: &'static str;
    /// Whom the rule sees as signer.
    const SIGNED_AS: SignedAs = SignedAs::Identity;

    /// Stateless checks beyond the schema, run when the transaction is
    /// parsed (refused with `schema_violation`). The text is shown to the
    /// client, so it says what to fix.
    fn check(&self) -> Result<(), String> {
        Ok(())
    }

    /// A body that passes [`TxBody::check`] (the state may still refuse
    /// it). Generated tests mutate it field by field, the fuzz targets and
    /// the replay property test sign it with their own keys put in for its
    /// did:keys ([`example_did`]).
    fn example() -> Self;

    /// The rule: changes `state`, or refuses with a stable code. A refusal
    /// after a change is undone only for types that emit events with
    /// subscribers, so a rule decides before it changes anything.
    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError>;
}

/// What a rule or a reaction knows of the transaction it runs for.
pub struct Cx<'a> {
    /// Leaf index of the transaction.
    pub index: u64,
    pub tx: &'a SignedTx,
    /// The signing key's DID.
    pub key: &'a str,
    /// The signer as the rule sees it ([`SignedAs`]).
    pub signer: String,
    /// The events the running rule may emit; `None` for reactions.
    declared: Option<&'a [TypeId]>,
    events: Vec<Box<dyn Any>>,
}

impl Cx<'_> {
    /// Announces `event` to the domains subscribed to its type; they react
    /// after the current rule, within the same transaction.
    pub fn emit<E: Any>(&mut self, event: E) -> Result<(), TxError> {
        if let Some(declared) = self.declared {
            if !declared.contains(&TypeId::of::<E>()) {
                return Err(TxError::new(
                    ErrorCode::Invalid("reaction.undeclared_event"),
                    format!(
                        "{} emits an event its registration does not declare",
                        self.tx.tx_type()
                    ),
                ));
            }
        }
        self.events.push(Box::new(event));
        Ok(())
    }
}

type CheckFn = fn(&Value) -> Result<(), String>;
type ParseFn = fn(&Value) -> Result<ParsedBody, String>;
type ApplyFn = fn(&mut LedgerState, &mut Cx<'_>, &SignedTx) -> Result<Effect, TxError>;
type SchemaFn = fn(&mut SchemaGenerator) -> schemars::Schema;
type ExampleFn = fn() -> Value;
type Reaction =
    Arc<dyn Fn(&mut LedgerState, &mut Cx<'_>, &dyn Any) -> Result<(), TxError> + Send + Sync>;

/// A registered type.
#[derive(Clone)]
pub struct TxType {
    pub tx_type: &'static str,
    pub domain: &'static str,
    pub signed_as: SignedAs,
    /// The Rust type's name, which names its schema.
    pub rust_name: &'static str,
    check: CheckFn,
    parse: ParseFn,
    apply: ApplyFn,
    schema: SchemaFn,
    example: ExampleFn,
    emits: Vec<TypeId>,
    /// Whether some domain reacts to what it emits: then it is applied on
    /// a copy of the state.
    copies: bool,
    /// A second body shape a log may hold from before a rule was
    /// tightened (a migrated log's legacy prefix); the state decides by
    /// the rules of the entry's leaf whether it counts.
    legacy: Option<CheckFn>,
}

impl TxType {
    /// Parses and checks a body, as [`SignedTx::parse`] does.
    pub fn check_body(&self, body: &Value) -> Result<(), String> {
        match ((self.check)(body), self.legacy) {
            (Err(_), Some(legacy)) if legacy(body).is_ok() => Ok(()),
            (result, _) => result,
        }
    }

    /// Parses and checks a body once, for [`SignedTx`] to carry to the
    /// rules. A body only the legacy shape accepts is not kept: the state
    /// reads it from the JSON, by the rules of its leaf.
    pub fn parse_body(&self, body: &Value) -> Result<Option<ParsedBody>, String> {
        match (self.parse)(body) {
            Ok(parsed) => Ok(Some(parsed)),
            Err(_) if self.legacy_accepts(body) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether `body` has the legacy shape this type also accepts at parse
    /// time ([`Registration::or_legacy`]); the state refuses it outside a
    /// migrated log's legacy prefix.
    pub fn legacy_accepts(&self, body: &Value) -> bool {
        self.legacy.is_some_and(|legacy| legacy(body).is_ok())
    }

    /// [`TxBody::example`], as JSON.
    pub fn example(&self) -> Value {
        (self.example)()
    }

    /// The events this type declares it may emit.
    pub fn emits(&self) -> &[TypeId] {
        &self.emits
    }
}

fn parse<T: TxBody>(body: &Value) -> Result<T, String> {
    crate::txs::parse_body(T::TYPE, body)
}

fn check<T: TxBody>(body: &Value) -> Result<(), String> {
    parse::<T>(body)?.check()
}

fn parse_checked<T: TxBody>(body: &Value) -> Result<ParsedBody, String> {
    let body = parse::<T>(body)?;
    body.check()?;
    Ok(Arc::new(body))
}

fn apply<T: TxBody>(
    state: &mut LedgerState,
    cx: &mut Cx<'_>,
    tx: &SignedTx,
) -> Result<Effect, TxError> {
    // The body parsed and checked when the transaction was (`parse_checked`,
    // through this registry's modules) is used as it is.
    if let Some(body) = tx.parsed_body().and_then(|b| b.downcast_ref::<T>()) {
        return body.clone().apply(state, cx);
    }
    // A transaction parsed against other modules carries no body of this
    // type: parse and check it here, so nothing unchecked reaches a rule.
    let schema = |e| TxError::new(ErrorCode::SchemaViolation, e);
    let body = parse::<T>(tx.body()).map_err(schema)?;
    body.check().map_err(schema)?;
    body.apply(state, cx)
}

fn schema<T: TxBody>(generator: &mut SchemaGenerator) -> schemars::Schema {
    generator.subschema_for::<T>()
}

fn example<T: TxBody>() -> Value {
    // Bodies are structs of strings, numbers, sets and maps: they always
    // serialize.
    serde_json::to_value(T::example()).unwrap_or(Value::Null)
}

/// The did:key of the example key `n` (seed `[n; 32]`), for examples.
pub fn example_did(n: u8) -> String {
    hygeia_identity::Keypair::from_seed(&[n; 32])
        .did()
        .to_string()
}

/// The registration of one type, to declare what it emits.
pub struct Registration<'a> {
    entry: &'a mut TxType,
}

impl Registration<'_> {
    /// Declares that the type's rule may emit events of type `E`.
    /// Accepts, at parse time, the body shape `legacy` checks too: an
    /// older shape a migrated log holds, which the state admits only at the
    /// leaves its legacy rules cover.
    pub fn or_legacy(self, legacy: CheckFn) -> Self {
        self.entry.legacy = Some(legacy);
        self
    }

    pub fn emits<E: Any>(self) -> Self {
        self.entry.emits.push(TypeId::of::<E>());
        self
    }
}

/// Every transaction type, by `type`, and the reactions to events.
#[derive(Clone, Default)]
pub struct Registry {
    types: BTreeMap<&'static str, TxType>,
    reactions: HashMap<TypeId, Vec<Reaction>>,
    domain: &'static str,
}

impl Registry {
    /// The registry of [`DOMAINS`], built once.
    pub fn global() -> &'static Registry {
        static REGISTRY: OnceLock<Registry> = OnceLock::new();
        REGISTRY.get_or_init(|| Registry::with_domains(DOMAINS))
    }

    /// A registry of these domains (tests add their own to [`DOMAINS`]).
    pub fn with_domains(domains: &[Domain]) -> Registry {
        let mut registry = Registry::default();
        for (name, register) in domains {
            registry.domain = name;
            register(&mut registry);
        }
        registry.seal();
        registry
    }

    /// Registers `T` for the current domain. Registering a `type` twice
    /// is a programming error, caught by every test that builds the
    /// registry.
    pub fn add<T: TxBody>(&mut self) -> Registration<'_> {
        assert!(
            !self.types.contains_key(T::TYPE),
            "transaction type {} is registered twice",
            T::TYPE
        );
        let entry = self.types.entry(T::TYPE).or_insert(TxType {
            tx_type: T::TYPE,
            domain: self.domain,
            signed_as: T::SIGNED_AS,
            rust_name: short_name(std::any::type_name::<T>()),
            check: check::<T>,
            parse: parse_checked::<T>,
            apply: apply::<T>,
            schema: schema::<T>,
            example: example::<T>,
            emits: Vec::new(),
            copies: false,
            legacy: None,
        });
        Registration { entry }
    }

    /// Subscribes the current domain to events of type `E`.
    pub fn on<E: Any>(
        &mut self,
        reaction: fn(&mut LedgerState, &mut Cx<'_>, &E) -> Result<(), TxError>,
    ) {
        let erased: Reaction = Arc::new(move |state, cx, event| match event.downcast_ref::<E>() {
            Some(event) => reaction(state, cx, event),
            None => Ok(()),
        });
        self.reactions
            .entry(TypeId::of::<E>())
            .or_default()
            .push(erased);
    }

    fn seal(&mut self) {
        let subscribed: HashSet<TypeId> = self.reactions.keys().copied().collect();
        for entry in self.types.values_mut() {
            entry.copies = entry.emits.iter().any(|e| subscribed.contains(e));
        }
    }

    /// The state's types, sorted by `type`.
    pub fn types(&self) -> impl Iterator<Item = &TxType> {
        self.types.values()
    }

    pub fn get(&self, tx_type: &str) -> Option<&TxType> {
        self.types.get(tx_type)
    }

    /// The ledger's view: these types next to its own (`attest`).
    pub fn modules(&self) -> ModuleRegistry {
        let mut modules = ModuleRegistry::with_builtins();
        for entry in self.types.values() {
            modules.register(Arc::new(Module(entry.clone())));
        }
        modules
    }

    /// Applies one transaction of a state type: its rule, then the
    /// reactions to what it emitted, all or nothing.
    pub fn apply(
        &self,
        state: &mut LedgerState,
        index: u64,
        tx: &SignedTx,
    ) -> Result<Effect, TxError> {
        let key = tx.signer().as_str();
        let Some(entry) = self.types.get(tx.tx_type()) else {
            // A retired key is refused first, whatever it signed.
            state.identities.identity_of(key)?;
            return Err(TxError::new(
                ErrorCode::UnknownType,
                format!("no state rule for transaction type {:?}", tx.tx_type()),
            ));
        };
        let signer = match entry.signed_as {
            SignedAs::Key => key.to_owned(),
            SignedAs::Identity => state.identities.identity_of(key)?,
        };
        let mut cx = Cx {
            index,
            tx,
            key,
            signer,
            declared: Some(&entry.emits),
            events: Vec::new(),
        };
        if !entry.copies {
            let effect = (entry.apply)(state, &mut cx, tx)?;
            // Events without subscribers go nowhere.
            return Ok(effect);
        }
        let backup = state.clone();
        let result = (entry.apply)(state, &mut cx, tx).and_then(|effect| {
            self.react(state, &mut cx)?;
            Ok(effect)
        });
        if result.is_err() {
            *state = backup;
        }
        result
    }

    /// Runs the reactions to the events in `cx`, and to theirs.
    fn react(&self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<(), TxError> {
        let mut queue = std::mem::take(&mut cx.events);
        cx.declared = None;
        let mut handled = 0;
        while !queue.is_empty() {
            let event = queue.remove(0);
            handled += 1;
            if handled > MAX_EVENTS_PER_TX {
                return Err(TxError::new(
                    ErrorCode::Invalid("reaction.too_many_events"),
                    format!("one transaction may set off at most {MAX_EVENTS_PER_TX} events"),
                ));
            }
            let id = (*event).type_id();
            for reaction in self.reactions.get(&id).into_iter().flatten() {
                reaction(state, cx, event.as_ref())?;
                queue.append(&mut cx.events);
            }
        }
        Ok(())
    }

    /// The body schemas: every named schema (as OpenAPI
    /// `components/schemas` entries) and, by `type`, a reference to its
    /// body's schema.
    pub fn body_schemas(&self) -> (Map<String, Value>, Map<String, Value>) {
        let mut generator = SchemaSettings::draft2020_12()
            .with(|s| {
                s.definitions_path = "/components/schemas/".into();
                s.meta_schema = None;
            })
            .for_deserialize()
            .into_generator();
        let mut by_type = Map::new();
        for entry in self.types.values() {
            let schema = (entry.schema)(&mut generator);
            by_type.insert(entry.tx_type.to_owned(), schema.to_value());
        }
        (generator.take_definitions(true), by_type)
    }

    /// docs/transaction-types.md, generated: one row per type.
    pub fn markdown(&self) -> String {
        let (definitions, _) = self.body_schemas();
        let mut out = String::from(
            "# Transaction types\n\n\
             Generated from the registry (`crates/state/src/registry.rs`) by\n\
             `HYGEIA_BLESS=1 cargo test -p hygeia-state --test registry`; a test\n\
             fails when this file is stale. Each body's JSON Schema is in the\n\
             OpenAPI document (`components/schemas`, by the Rust type's name,\n\
             and `components/x-transaction-bodies` by type). docs/records.md\n\
             explains the types with examples; docs/adding-a-transaction-type.md\n\
             how to add one.\n\n\
             | type | domain | signed as | body (Rust type) | fields (required in bold) | what it does |\n\
             |---|---|---|---|---|---|\n\
             | `attest` | ledger | key | `hygeia_ledger::attest` | **label**, **subject** | An attestation of a hash; changes no state (docs/transactions.md). |\n",
        );
        for entry in self.types.values() {
            let schema = definitions.get(entry.rust_name);
            let description = schema
                .and_then(|s| s.get("description"))
                .and_then(Value::as_str)
                .map(|d| d.split("\n\n").next().unwrap_or(d).replace('\n', " "))
                .unwrap_or_default();
            let required: Vec<&str> = schema
                .and_then(|s| s.get("required"))
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let fields: Vec<String> = schema
                .and_then(|s| s.get("properties"))
                .and_then(Value::as_object)
                .map(|p| {
                    p.keys()
                        .map(|k| {
                            if required.contains(&k.as_str()) {
                                format!("**{k}**")
                            } else {
                                k.clone()
                            }
                        })
                        .collect()
                })
                .unwrap_or_default();
            let signed_as = match entry.signed_as {
                SignedAs::Identity => "identity",
                SignedAs::Key => "key",
            };
            out.push_str(&format!(
                "| `{}` | {} | {} | `{}` | {} | {} |\n",
                entry.tx_type,
                entry.domain,
                signed_as,
                entry.rust_name,
                fields.join(", "),
                description.replace('|', "\\|"),
            ));
        }
        out
    }
}

/// `a::b::Name` → `Name`.
fn short_name(path: &'static str) -> &'static str {
    path.rsplit("::").next().unwrap_or(path)
}

/// A registered type as the ledger sees it: its body check.
struct Module(TxType);

impl TxModule for Module {
    fn tx_type(&self) -> &'static str {
        self.0.tx_type
    }

    fn check_body(&self, body: &Value) -> Result<(), String> {
        self.0.check_body(body)
    }

    fn parse_body(&self, body: &Value) -> Result<Option<ParsedBody>, String> {
        self.0.parse_body(body)
    }
}
