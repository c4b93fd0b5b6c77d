//! Transaction bodies of the patient-records types (`org.*`, `governance.policy`,
//! `record`, `record.erase`, `consent.*`, `access`) and `attest`, as a client
//! sends them: the input, read as JSON, goes to every type's `check_body`
//! in `hygeia_state::txs::registry()`, and, wrapped in a transaction
//! of each type, through `UnverifiedTx::parse`; the input is also parsed as
//! a whole transaction. Nothing may panic, and the parser must refuse a
//! well-formed envelope exactly when the type's schema refuses its body
//! (in canonical form), with the schema's message.
#![no_main]

use std::sync::LazyLock;

use hygeia_identity::Keypair;
use hygeia_ledger::tx::{TxContext, UnverifiedTx};
use hygeia_ledger::{ErrorCode, ModuleRegistry, SignedTx, MAX_TX_BYTES, TX_VERSION};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

const NETWORK: &str = "fuzz.example/log";

static REGISTRY: LazyLock<ModuleRegistry> = LazyLock::new(hygeia_state::txs::registry);
static TYPES: LazyLock<Vec<&'static str>> = LazyLock::new(|| REGISTRY.types());
/// The signer of the wrapping transactions (signatures are not checked).
static SIGNER: LazyLock<String> =
    LazyLock::new(|| Keypair::from_seed(&[7u8; 32]).did().as_str().to_owned());

/// A well-formed signature (64 zero bytes); `UnverifiedTx` does not check it.
static DUMMY_SIG: LazyLock<String> = LazyLock::new(|| "A".repeat(86));

fuzz_target!(|data: &[u8]| {
    let ctx = TxContext {
        network: NETWORK,
        modules: &REGISTRY,
    };

    // The input as a whole transaction.
    if let Ok(tx) = SignedTx::parse(data, &ctx) {
        assert_eq!(tx.canonical_bytes(), data);
    }

    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    // The body as the parser sees it inside a canonical transaction: keys
    // sorted (serde_json keeps insertion order here, as `cedar-policy`
    // turns on its `preserve_order`, so an error may name another field)
    // and numbers in their shortest form (`1e2` is `100`, an integer).
    // `TxBuilder::sign` expects every JSON value to canonicalize.
    let canonical_body: Value = serde_json::from_slice(
        &serde_json_canonicalizer::to_vec(&body)
            .unwrap_or_else(|e| panic!("a JSON body does not canonicalize: {e}")),
    )
    .expect("canonical JSON parses");
    for &tx_type in TYPES.iter() {
        let module = REGISTRY.get(tx_type).expect("a listed type is registered");
        let _ = module.check_body(&body);
        let checked = module.check_body(&canonical_body);
        // The body a transaction carries to its rule is parsed by
        // `parse_body`: it must accept exactly what `check_body` accepts.
        assert_eq!(
            module.parse_body(&canonical_body).is_ok(),
            checked.is_ok(),
            "{tx_type}: parse_body and check_body disagree"
        );

        let mut envelope = Map::new();
        envelope.insert("body".into(), body.clone());
        envelope.insert("network".into(), NETWORK.into());
        envelope.insert("nonce".into(), "fuzz-1".into());
        envelope.insert("sig".into(), DUMMY_SIG.as_str().into());
        envelope.insert("signer".into(), SIGNER.as_str().into());
        envelope.insert("type".into(), tx_type.into());
        envelope.insert("v".into(), TX_VERSION.into());
        let raw = serde_json_canonicalizer::to_vec(&Value::Object(envelope))
            .expect("the body canonicalized");
        if raw.len() > MAX_TX_BYTES {
            continue;
        }
        match UnverifiedTx::parse(&raw, &ctx) {
            Ok(_) => assert!(
                checked.is_ok(),
                "{tx_type}: parse accepts a body check_body refuses: {checked:?}"
            ),
            Err(e) => {
                assert_eq!(
                    e.code,
                    ErrorCode::SchemaViolation,
                    "{tx_type}: a canonical envelope is refused for something else than its body: {e:?}"
                );
                assert_eq!(checked, Err(e.message), "{tx_type}");
            }
        }
    }
});
