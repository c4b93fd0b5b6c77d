//! The FHIR API with independent clients: a standard FHIR client library
//! and a SMART Backend Services client in Python, driving a real node over
//! HTTP (they need a socket). The FHIR behaviour itself is tested through
//! the router in crates/node (`api::tests::fhir`).

use crate::common;

use common::signed::{did, login, Network};
use serde_json::{json, Value};

/// A standard FHIR client library (fhirpy, installed by scripts/test)
/// drives a create/search/update scenario against the node.
#[test]
fn a_standard_fhir_client_works() {
    let have_fhirpy = std::process::Command::new("python3")
        .args(["-c", "import fhirpy"])
        .status()
        .is_ok_and(|s| s.success());
    if !have_fhirpy {
        assert!(
            std::env::var_os("CI").is_none(),
            "fhirpy is missing; scripts/test installs it"
        );
        eprintln!("skipping: python3 with fhirpy is not installed (scripts/test installs it)");
        return;
    }
    let net = Network::start(&[]);
    let token = login(&net, &net.patient, "TREAT");
    let script = format!(
        "{}/../../docs/examples/fhir_client.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let output = std::process::Command::new("python3")
        .arg(&script)
        .env("HYGEIA_FHIR_URL", format!("{}/fhir", net.node.url))
        .env("HYGEIA_TOKEN", &token)
        .env("HYGEIA_PATIENT_DID", did(&net.patient))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "fhirpy scenario failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// SMART Backend Services with an independent client: a Python service
/// using only PyJWT and cryptography (docs/examples/smart_backend_client.py)
/// makes a P-384 key, is registered by `hygeia smart bind-client` with the
/// patient's key, signs an ES384 assertion, gets a token and creates and
/// searches the patient's resources; a forged assertion is refused.
#[test]
fn an_independent_es384_backend_client_gets_a_token_and_reads() {
    let have_pyjwt = std::process::Command::new("python3")
        .args(["-c", "import jwt, cryptography"])
        .status()
        .is_ok_and(|s| s.success());
    if !have_pyjwt {
        assert!(
            std::env::var_os("CI").is_none(),
            "PyJWT is missing; scripts/test installs it"
        );
        eprintln!("skipping: python3 with PyJWT is not installed (scripts/test installs it)");
        return;
    }
    let script = format!(
        "{}/../../docs/examples/smart_backend_client.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let work = tempfile::tempdir().unwrap();
    let pem = work.path().join("service.pem");
    let keygen = std::process::Command::new("python3")
        .arg(&script)
        .arg("keygen")
        .arg(&pem)
        .output()
        .unwrap();
    assert!(
        keygen.status.success(),
        "{}",
        String::from_utf8_lossy(&keygen.stderr)
    );
    let jwk_file = work.path().join("service.jwk.json");
    std::fs::write(&jwk_file, &keygen.stdout).unwrap();

    let net = Network::start_prepared(&[], |data_dir, patient| {
        // The patient's key, as a key file, signs the registration.
        let key_file = work.path().join("patient.key");
        patient.write_key_file(&key_file).unwrap();
        let bound = common::hygeia(&[
            "smart",
            "bind-client",
            "--key",
            key_file.to_str().unwrap(),
            "--client-id",
            "phr-sync",
            "--name",
            "Personal health record sync",
            "--jwk",
            jwk_file.to_str().unwrap(),
        ]);
        assert!(
            bound.status.success(),
            "{}",
            String::from_utf8_lossy(&bound.stderr)
        );
        let entry: Value = serde_json::from_slice(&bound.stdout).unwrap();
        std::fs::write(
            data_dir.join("smart-clients.json"),
            json!({ "backend_clients": [entry] }).to_string(),
        )
        .unwrap();
    });
    let output = std::process::Command::new("python3")
        .arg(&script)
        .arg("run")
        .env("HYGEIA_URL", &net.node.url)
        .env("HYGEIA_CLIENT_ID", "phr-sync")
        .env("HYGEIA_KEY", &pem)
        .env("HYGEIA_PATIENT_DID", did(&net.patient))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "backend client failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
