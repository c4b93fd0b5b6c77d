//! `eddsa-jcs-2022` against the W3C vc-di-eddsa test vectors
//! (../shared/vectors/vc-di-eddsa, README section 3): every intermediate
//! value of the pipeline, the exact `proofValue` from the published key
//! pair, verification of the published credential, and refusal of
//! tampered copies.

use hygeia_credentials::data_integrity::{
    add_proof, resolve_did_key_method, verify_proof, ProofOptions, ProofPurpose,
};
use hygeia_credentials::vc::verify_credential;
use hygeia_identity::{Keypair, PublicKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

fn read(name: &str) -> String {
    let path = format!(
        "{}/../../../shared/vectors/vc-di-eddsa/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn json(name: &str) -> Value {
    serde_json::from_str(&read(name)).expect("vector JSON")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn jcs(value: &Value) -> String {
    serde_json_canonicalizer::to_string(value).unwrap()
}

/// The published key pair: multibase Multikey forms, `ed25519-pub`
/// (0xed01) and `ed25519-priv` (0x1300, varint 0x80 0x26) prefixes.
fn key_pair() -> Keypair {
    let pair = json("keyPair.json");
    let decode = |name: &str, prefix: &[u8]| -> Vec<u8> {
        let text = pair[name].as_str().unwrap();
        let bytes = bs58::decode(text.strip_prefix('z').unwrap())
            .into_vec()
            .unwrap();
        bytes.strip_prefix(prefix).unwrap().to_vec()
    };
    let seed: [u8; 32] = decode("privateKeyMultibase", &[0x80, 0x26])
        .try_into()
        .unwrap();
    let public: [u8; 32] = decode("publicKeyMultibase", &[0xed, 0x01])
        .try_into()
        .unwrap();
    let key = Keypair::from_seed(&seed);
    assert_eq!(key.public_key().to_bytes(), public);
    key
}

fn options() -> ProofOptions {
    let config = json("eddsa-jcs-2022/proofConfigJCS.json");
    let created = config["created"].as_str().unwrap();
    ProofOptions {
        verification_method: config["verificationMethod"].as_str().unwrap().to_string(),
        proof_purpose: ProofPurpose::parse(config["proofPurpose"].as_str().unwrap()).unwrap(),
        created: OffsetDateTime::parse(created, &Rfc3339).unwrap(),
        challenge: None,
        domain: None,
    }
}

/// The vectors' issuer is a URL, not the did:key that signs, so only the
/// proof layer (not `verify_credential`'s issuer binding) accepts them.
fn resolve(vm: &str) -> Option<PublicKey> {
    resolve_did_key_method(vm)
}

#[test]
fn every_intermediate_value_matches() {
    let unsigned = json("unsigned.json");
    let config = json("eddsa-jcs-2022/proofConfigJCS.json");

    let canonical_config = jcs(&config);
    assert_eq!(canonical_config, read("eddsa-jcs-2022/proofCanonJCS.txt"));
    let config_hash = Sha256::digest(canonical_config.as_bytes());
    assert_eq!(
        hex(&config_hash),
        read("eddsa-jcs-2022/proofHashJCS.txt").trim()
    );

    let canonical_document = jcs(&unsigned);
    assert_eq!(canonical_document, read("eddsa-jcs-2022/canonDocJCS.txt"));
    let document_hash = Sha256::digest(canonical_document.as_bytes());
    assert_eq!(
        hex(&document_hash),
        read("eddsa-jcs-2022/docHashJCS.txt").trim()
    );

    let combined = [config_hash.as_slice(), document_hash.as_slice()].concat();
    assert_eq!(
        hex(&combined),
        read("eddsa-jcs-2022/combinedHashJCS.txt").trim()
    );

    let signature = key_pair().sign(&combined).to_bytes();
    assert_eq!(hex(&signature), read("eddsa-jcs-2022/sigHexJCS.txt").trim());
    let multibase = format!("z{}", bs58::encode(signature).into_string());
    assert_eq!(multibase, read("eddsa-jcs-2022/sigBTC58JCS.txt").trim());
}

#[test]
fn add_proof_reproduces_the_signed_credential() {
    let secured = add_proof(&json("unsigned.json"), options(), &key_pair()).unwrap();
    let expected = json("eddsa-jcs-2022/signedJCS.json");
    assert_eq!(secured, expected);
    assert_eq!(
        secured["proof"]["proofValue"],
        read("eddsa-jcs-2022/sigBTC58JCS.txt").trim()
    );
}

#[test]
fn the_signed_credential_verifies() {
    let signed = json("eddsa-jcs-2022/signedJCS.json");
    let verified = verify_proof(&signed, resolve).unwrap();
    assert_eq!(verified.document(), &json("unsigned.json"));
    assert_eq!(verified.proof_purpose(), "assertionMethod");
    assert_eq!(verified.created(), Some("2023-02-24T23:36:38Z"));
    assert_eq!(verified.public_key(), key_pair().public_key());

    // As a VC its issuer (a URL) is not the signer's DID: refused as such.
    let now = OffsetDateTime::parse("2024-01-01T00:00:00Z", &Rfc3339).unwrap();
    let err = verify_credential(&signed, now, resolve).unwrap_err();
    assert_eq!(err.code(), "vc-issuer-mismatch");
}

type Tamper = Box<dyn Fn(&mut Value)>;

#[test]
fn tampered_copies_are_refused() {
    let signed = json("eddsa-jcs-2022/signedJCS.json");
    let cases: Vec<(&str, Tamper, &str)> = vec![
        (
            "subject",
            Box::new(|d| d["credentialSubject"]["alumniOf"] = json!("Another School")),
            "di-bad-signature",
        ),
        (
            "issuer",
            Box::new(|d| d["issuer"] = json!("https://vc.example/issuers/9999")),
            "di-bad-signature",
        ),
        (
            "validFrom",
            Box::new(|d| d["validFrom"] = json!("2023-01-01T00:00:01Z")),
            "di-bad-signature",
        ),
        (
            "new member",
            Box::new(|d| d["validUntil"] = json!("2030-01-01T00:00:00Z")),
            "di-bad-signature",
        ),
        (
            "removed member",
            Box::new(|d| drop(d.as_object_mut().unwrap().remove("description"))),
            "di-bad-signature",
        ),
        (
            "type order",
            Box::new(|d| d["type"] = json!(["AlumniCredential", "VerifiableCredential"])),
            "di-bad-signature",
        ),
        (
            "created",
            Box::new(|d| d["proof"]["created"] = json!("2023-02-24T23:36:39Z")),
            "di-bad-signature",
        ),
        (
            "purpose",
            Box::new(|d| d["proof"]["proofPurpose"] = json!("authentication")),
            "di-bad-signature",
        ),
        (
            "challenge",
            Box::new(|d| d["proof"]["challenge"] = json!("abc")),
            "di-bad-signature",
        ),
        (
            "proof context",
            Box::new(|d| d["proof"]["@context"] = json!(["https://www.w3.org/ns/credentials/v2"])),
            "di-bad-signature",
        ),
        (
            "document context",
            Box::new(|d| d["@context"][1] = json!("https://example.com/other")),
            "di-context-mismatch",
        ),
        (
            "signature digit",
            Box::new(|d| {
                let value = d["proof"]["proofValue"].as_str().unwrap();
                let flipped = if value.ends_with('X') { "Y" } else { "X" };
                d["proof"]["proofValue"] = json!(format!("{}{flipped}", &value[..value.len() - 1]));
            }),
            "di-bad-signature",
        ),
        (
            "other key",
            Box::new(|d| {
                let other = Keypair::from_seed(&[1; 32]).did().verification_method();
                d["proof"]["verificationMethod"] = json!(other);
            }),
            "di-bad-signature",
        ),
        (
            "cryptosuite",
            Box::new(|d| d["proof"]["cryptosuite"] = json!("eddsa-rdfc-2022")),
            "di-unsupported-cryptosuite",
        ),
        (
            "unknown method",
            Box::new(|d| {
                d["proof"]["verificationMethod"] = json!("https://vc.example/issuers/5678#key-1")
            }),
            "di-unknown-verification-method",
        ),
    ];
    for (name, tamper, code) in cases {
        let mut copy = signed.clone();
        tamper(&mut copy);
        let err = verify_proof(&copy, resolve).unwrap_err();
        assert_eq!(err.code(), code, "{name}: {err}");
    }
}

#[test]
fn contexts_appended_after_signing_are_allowed_but_not_returned() {
    let mut signed = json("eddsa-jcs-2022/signedJCS.json");
    signed["@context"]
        .as_array_mut()
        .unwrap()
        .push(json!("https://example.com/appended/v1"));
    let verified = verify_proof(&signed, resolve).unwrap();
    assert_eq!(verified.document(), &json("unsigned.json"));
}
