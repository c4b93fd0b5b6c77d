//! The worked examples of docs/transactions.md and docs/log.md, rebuilt from
//! fixed keys on every run. Each constant below is quoted verbatim in the
//! documents (checked here too), so the documents cannot drift from the code.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hygeia_identity::{Keypair, Signature};
use hygeia_ledger::checkpoint::CheckpointVerifier;
use hygeia_ledger::merkle::{leaf_hash, node_hash, Hash};
use hygeia_ledger::proof::verify_inclusion;
use hygeia_ledger::store::LogWriter;
use hygeia_ledger::tiles::TilePath;
use hygeia_ledger::tx::{replay_key, TxContext};
use hygeia_ledger::verify::{verify_log, StoreSource, VerifyOptions};
use hygeia_ledger::{
    CheckpointSigner, ErrorCode, LogStore, ModuleRegistry, SignedTx, TxBuilder, SIGNING_DOMAIN,
};
use serde_json::json;
use sha2::{Digest, Sha256};

// Inputs.
const SIGNER_SEED: [u8; 32] = [1u8; 32];
const NODE_SEED: [u8; 32] = [2u8; 32];
const NETWORK: &str = "hygeia.example/demo";
const NONCE: &str = "2026-11-21T10:00:00Z-0001";
const LABEL: &str = "lab.result";
const RECORD: &[u8] = b"example record";

// The transaction, step by step.
const SIGNER_PUBLIC_KEY_HEX: &str =
    "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c";
const SIGNER_DID: &str = "did:key:z6Mkon3Necd6NkkyfoGoHxid2znGc59LU3K7mubaRcFbLfLX";
const SUBJECT: &str = "sha256:02ef3e911871d5bab06ad996c97d4402cc8280024326d81b9353eaac88a969ac";
const UNSIGNED_JCS: &str = r#"{"body":{"label":"lab.result","subject":"sha256:02ef3e911871d5bab06ad996c97d4402cc8280024326d81b9353eaac88a969ac"},"network":"hygeia.example/demo","nonce":"2026-11-21T10:00:00Z-0001","signer":"did:key:z6Mkon3Necd6NkkyfoGoHxid2znGc59LU3K7mubaRcFbLfLX","type":"attest","v":1}"#;
const SIGNING_INPUT_HEX: &str = "6879676569612e74782e7631007b22626f6479223a7b226c6162656c223a226c61622e726573756c74222c227375626a656374223a227368613235363a30326566336539313138373164356261623036616439393663393764343430326363383238303032343332366438316239333533656161633838613936396163227d2c226e6574776f726b223a226879676569612e6578616d706c652f64656d6f222c226e6f6e6365223a22323032362d31312d32315431303a30303a30305a2d30303031222c227369676e6572223a226469643a6b65793a7a364d6b6f6e334e656364364e6b6b79666f476f48786964327a6e476335394c55334b376d756261526346624c664c58222c2274797065223a22617474657374222c2276223a317d";
const SIG_HEX: &str = "09cc3a9ab9400343e98a72a3705a7bb645d854aa452e9f88742dbe18aa74b186503b720870eb0d4f5bc9f581dcbdadeb4cd3f83b0c5a7c820a22c77e62005f06";
const SIG: &str =
    "Ccw6mrlAA0PpinKjcFp7tkXYVKpFLp-IdC2-GKp0sYZQO3IIcOsNT1vJ9YHcva3rTNP4OwxafIIKIsd-YgBfBg";
const TX: &str = r#"{"body":{"label":"lab.result","subject":"sha256:02ef3e911871d5bab06ad996c97d4402cc8280024326d81b9353eaac88a969ac"},"network":"hygeia.example/demo","nonce":"2026-11-21T10:00:00Z-0001","sig":"Ccw6mrlAA0PpinKjcFp7tkXYVKpFLp-IdC2-GKp0sYZQO3IIcOsNT1vJ9YHcva3rTNP4OwxafIIKIsd-YgBfBg","signer":"did:key:z6Mkon3Necd6NkkyfoGoHxid2znGc59LU3K7mubaRcFbLfLX","type":"attest","v":1}"#;
const TX_LEN: usize = 368;
const LEAF_HASH_HEX: &str = "be783be21d2572637b92031a66bfd966a9c73a2ab8e7708d07b56566b12c80de";
const REPLAY_KEY_HEX: &str = "a678a7c7b6924c3dbb0444b3b3f3cf45e27686d469af7a66b0654921604e9117";

// A log of two transactions: the one above, then the same signer's nonce
// ...-0002 over SHA-256("another record").
const NONCE_2: &str = "2026-11-21T10:00:00Z-0002";
const RECORD_2: &[u8] = b"another record";
const LEAF_HASH_2_HEX: &str = "4572f6bb9b0af23c793d6452fc2e1aa179c70a2cc42ac18e6f4e2835f8dda1b4";
const ROOT_2_HEX: &str = "0bacd3254deccde0cf7eadf769f5fe7ed83653faeb0c2101cc6b638c5fff03b6";
const NODE_PUBLIC_KEY_HEX: &str =
    "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394";
const VERIFIER_KEY: &str =
    "hygeia.example/demo+ef4137de+AYE5dw6ofRdfVqNUZsNMfszLjYqRtO43ol32D1uPybOU";
const CHECKPOINT_2: &str = "hygeia.example/demo
2
C6zTJU3szeDPfq33afX+ftg2U/rrDCEBzGtjjF//A7Y=

\u{2014} hygeia.example/demo 70E33jnfZtCdfQ+agb2ufyvChkxnA20/k0fgjlpfB0SNHRT/7Yn191Ke7K7QK3uiSZPh3j77K2HxU2IhmKc/e9qVEAY=
";

const DOCS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs");

fn doc(name: &str) -> String {
    std::fs::read_to_string(format!("{DOCS}/{name}"))
        .unwrap_or_else(|e| panic!("{DOCS}/{name}: {e}"))
}

fn attest(key: &Keypair, nonce: &str, record: &[u8]) -> Vec<u8> {
    TxBuilder {
        network: NETWORK,
        tx_type: "attest",
        nonce: nonce.into(),
        body: json!({"label": LABEL, "subject": format!("sha256:{}", hex::encode(Sha256::digest(record)))}),
    }
    .sign(key)
}

fn parse(raw: &[u8]) -> Result<SignedTx, ErrorCode> {
    let modules = ModuleRegistry::with_builtins();
    SignedTx::parse(
        raw,
        &TxContext {
            network: NETWORK,
            modules: &modules,
        },
    )
    .map_err(|e| e.code)
}

fn hash(hex_text: &str) -> Hash {
    Hash(hex::decode(hex_text).unwrap().try_into().unwrap())
}

#[test]
fn the_worked_transaction_is_what_the_code_builds() {
    let key = Keypair::from_seed(&SIGNER_SEED);
    assert_eq!(
        hex::encode(key.public_key().to_bytes()),
        SIGNER_PUBLIC_KEY_HEX
    );
    assert_eq!(key.did().as_str(), SIGNER_DID);
    assert_eq!(
        format!("sha256:{}", hex::encode(Sha256::digest(RECORD))),
        SUBJECT
    );

    let raw = attest(&key, NONCE, RECORD);
    assert_eq!(std::str::from_utf8(&raw).unwrap(), TX);
    assert_eq!(raw.len(), TX_LEN);

    // The signing input: the domain, one NUL byte, the JCS form without sig.
    assert_eq!(SIGNING_DOMAIN, b"hygeia.tx.v1\0");
    let mut unsigned: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&raw).unwrap();
    assert_eq!(unsigned.remove("sig"), Some(json!(SIG)));
    assert_eq!(
        serde_json_canonicalizer::to_string(&unsigned).unwrap(),
        UNSIGNED_JCS
    );
    let signing_input = [SIGNING_DOMAIN, UNSIGNED_JCS.as_bytes()].concat();
    assert_eq!(hex::encode(&signing_input), SIGNING_INPUT_HEX);
    assert_eq!(
        std::str::from_utf8(&signing_input).unwrap(),
        format!("hygeia.tx.v1\u{0}{UNSIGNED_JCS}")
    );

    // The signature: deterministic Ed25519 (RFC 8032), unpadded base64url.
    let sig = URL_SAFE_NO_PAD.decode(SIG).unwrap();
    assert_eq!(hex::encode(&sig), SIG_HEX);
    assert_eq!(key.sign(&signing_input).to_bytes().to_vec(), sig);
    key.public_key()
        .verify(&signing_input, &Signature::from_slice(&sig).unwrap())
        .unwrap();

    // Leaf hash (= transaction id) and replay key.
    let leaf = Sha256::digest([&[0u8][..], TX.as_bytes()].concat());
    assert_eq!(hex::encode(leaf), LEAF_HASH_HEX);
    assert_eq!(leaf_hash(TX.as_bytes()), hash(LEAF_HASH_HEX));
    assert_eq!(hex::encode(replay_key(SIGNER_DID, NONCE)), REPLAY_KEY_HEX);

    // The node accepts it, with the same identifiers.
    let tx = parse(TX.as_bytes()).unwrap();
    assert_eq!(tx.canonical_bytes(), TX.as_bytes());
    assert_eq!(hex::encode(tx.leaf_hash().0), LEAF_HASH_HEX);
    assert_eq!(hex::encode(tx.replay_key()), REPLAY_KEY_HEX);
    assert_eq!(tx.signer().as_str(), SIGNER_DID);
}

#[test]
fn the_example_file_holds_the_exact_transaction() {
    let bytes = std::fs::read(format!("{DOCS}/examples/example-tx.json")).unwrap();
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
    assert_eq!(bytes, TX.as_bytes());
}

/// The counter-examples of docs/transactions.md: same data, other bytes.
#[test]
fn non_canonical_counter_examples_are_refused() {
    let pretty =
        serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(TX).unwrap())
            .unwrap();
    let cases = [
        pretty,
        TX.replace("\"v\":1}", "\"v\":1.0}"),
        TX.replace("hygeia.example/demo", "hygeia.example\\/demo"),
        TX.replace("{\"body\":{\"label\":\"lab.result\",", "{\"body\":{")
            .replace("ac\"},", "ac\",\"label\":\"lab.result\"},"),
        format!("{TX}\n"),
    ];
    for case in &cases {
        assert_ne!(case, TX);
        assert_eq!(
            parse(case.as_bytes()).unwrap_err(),
            ErrorCode::NonCanonical,
            "{case}"
        );
    }
    // One changed character of the label: still canonical, no longer signed.
    assert_eq!(
        parse(TX.replace("lab.result", "lab.resulT").as_bytes()).unwrap_err(),
        ErrorCode::SchemaViolation
    );
    assert_eq!(
        parse(TX.replace("lab.result", "lab.results").as_bytes()).unwrap_err(),
        ErrorCode::BadSignature
    );
}

#[test]
fn the_worked_log_is_what_the_code_writes() {
    let key = Keypair::from_seed(&SIGNER_SEED);
    let txs = [
        parse(&attest(&key, NONCE, RECORD)).unwrap(),
        parse(&attest(&key, NONCE_2, RECORD_2)).unwrap(),
    ];
    assert_eq!(hex::encode(txs[1].leaf_hash().0), LEAF_HASH_2_HEX);

    let node_key = Keypair::from_seed(&NODE_SEED);
    assert_eq!(
        hex::encode(node_key.public_key().to_bytes()),
        NODE_PUBLIC_KEY_HEX
    );
    let signer = CheckpointSigner::new(NETWORK, node_key).unwrap();
    assert_eq!(signer.verifier_key(), VERIFIER_KEY);

    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LogStore::open(&dir.path().join("log.redb"), NETWORK).unwrap());
    let mut writer = LogWriter::open(store.clone(), signer).unwrap();
    let outcome = writer.append_batch(&[&txs]).unwrap();
    assert_eq!(outcome.results[0].as_ref().unwrap(), &0);

    // Root = SHA-256(0x01 || leaf 0 || leaf 1), in a signed checkpoint.
    let (leaf0, leaf1) = (hash(LEAF_HASH_HEX), hash(LEAF_HASH_2_HEX));
    assert_eq!(node_hash(leaf0, leaf1), hash(ROOT_2_HEX));
    assert_eq!(outcome.checkpoint.root, hash(ROOT_2_HEX));
    assert_eq!(
        std::str::from_utf8(&outcome.checkpoint.note).unwrap(),
        CHECKPOINT_2
    );
    let verified = CheckpointVerifier::new(VERIFIER_KEY)
        .unwrap()
        .verify(CHECKPOINT_2.as_bytes())
        .unwrap();
    assert_eq!((verified.size, verified.root), (2, hash(ROOT_2_HEX)));

    // The tiles, as stored and served.
    let snapshot = store.snapshot().unwrap();
    let tile = |path: &str| snapshot.tile(&TilePath::parse(path).unwrap()).unwrap();
    let bundle = tile("tile/entries/000.p/2").unwrap();
    let second = txs[1].canonical_bytes();
    let expected_bundle = [
        &(TX_LEN as u16).to_be_bytes()[..],
        TX.as_bytes(),
        &(second.len() as u16).to_be_bytes()[..],
        second,
    ]
    .concat();
    assert_eq!(bundle, expected_bundle);
    assert_eq!(bundle.len(), 740);
    assert_eq!(&bundle[..2], &[0x01, 0x70]);
    assert_eq!(
        tile("tile/entries/000.p/1").unwrap(),
        expected_bundle[..2 + TX_LEN].to_vec()
    );
    assert_eq!(tile("tile/0/000.p/2").unwrap(), [leaf0.0, leaf1.0].concat());
    assert!(tile("tile/0/000").is_none());
    assert!(tile("tile/1/000.p/1").is_none());

    // Inclusion of leaf 0 in the tree of size 2: the proof is [leaf 1].
    let proof = snapshot.inclusion_proof(0, 2).unwrap();
    assert_eq!(proof, vec![leaf1]);
    verify_inclusion(leaf0, 0, 2, &proof, hash(ROOT_2_HEX)).unwrap();
    assert_eq!(snapshot.index_of(&leaf1).unwrap(), Some(1));

    // The whole-log check that `hygeia verify` runs.
    let verifier = CheckpointVerifier::new(VERIFIER_KEY).unwrap();
    let modules = ModuleRegistry::with_builtins();
    let options = VerifyOptions {
        verifier: &verifier,
        modules: &modules,
        since: None,
        parallel_bundles: 4,
        replay: None,
    };
    let report = verify_log(
        &StoreSource {
            snapshot: &snapshot,
        },
        &options,
        &|_| {},
    )
    .unwrap();
    assert_eq!(report.entries, 2);
}

#[test]
fn the_documents_quote_these_values() {
    let transactions = doc("transactions.md");
    for value in [
        SIGNER_PUBLIC_KEY_HEX,
        SIGNER_DID,
        SUBJECT,
        NONCE,
        UNSIGNED_JCS,
        SIGNING_INPUT_HEX,
        SIG_HEX,
        SIG,
        TX,
        LEAF_HASH_HEX,
        REPLAY_KEY_HEX,
    ] {
        assert!(
            transactions.contains(value),
            "docs/transactions.md must quote {value}"
        );
    }
    let log = doc("log.md");
    for value in [
        LEAF_HASH_HEX,
        LEAF_HASH_2_HEX,
        ROOT_2_HEX,
        NODE_PUBLIC_KEY_HEX,
        VERIFIER_KEY,
        CHECKPOINT_2,
    ] {
        assert!(log.contains(value), "docs/log.md must quote {value}");
    }
}
