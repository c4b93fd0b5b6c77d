//! Interoperability with the SD-JWT reference implementation
//! (`sd-jwt` on PyPI, openwallet-foundation-labs/sd-jwt-python), driven
//! through docs/examples/sd_jwt_interop.py, both ways:
//! Hygeia issues and presents, Python verifies; Python issues and
//! presents (EdDSA issuer and holder), Hygeia verifies. Claims must agree.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use hygeia_credentials::credential_types::{ClinicianLicence, Credential, Issuance};
use hygeia_credentials::jws::{Header, SigningKey, VerifyingKey};
use hygeia_credentials::sd_jwt::{verify_presentation, ClaimPath, SdJwt, VerifyOptions};
use hygeia_identity::Keypair;
use serde_json::{json, Value};

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../docs/examples/sd_jwt_interop.py"
);

/// `false` (after saying so loudly) when there is no python3 at all; a
/// missing `sd-jwt` package is a failure.
fn python_ready() -> bool {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("!!!!! SKIPPED: python3 is not installed, so SD-JWT interoperability was NOT checked !!!!!");
        return false;
    }
    let import = Command::new("python3")
        .args(["-c", "import sd_jwt, jwcrypto"])
        .output()
        .unwrap();
    assert!(
        import.status.success(),
        "the Python package sd-jwt is missing: run scripts/test (it installs it)\n{}",
        String::from_utf8_lossy(&import.stderr)
    );
    true
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn python_verify(
    presentation: &str,
    issuer_jwk: &Value,
    aud: &str,
    nonce: &str,
) -> Result<Value, String> {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), presentation).unwrap();
    let out = Command::new("python3")
        .arg(SCRIPT)
        .args(["verify", "--presentation"])
        .arg(file.path())
        .args([
            "--issuer-jwk",
            &issuer_jwk.to_string(),
            "--aud",
            aud,
            "--nonce",
            nonce,
        ])
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&out.stdout).unwrap())
}

#[test]
fn python_verifies_what_hygeia_issues() {
    if !python_ready() {
        return;
    }
    let board = SigningKey::Ed25519(Keypair::generate());
    let clinician = Keypair::generate();
    let credential = Credential::ClinicianLicence(ClinicianLicence {
        subject: clinician.did(),
        licence_number: Some("DE-ÄK-4711".into()),
        profession: "physician".into(),
        specialty: Some("Kardiologie".into()),
        jurisdiction: "DE".into(),
    });
    let issued_at = now();
    let issuance = Issuance {
        issuer: "did:web:board.example".into(),
        issued_at,
        expires_at: Some(issued_at + 3600),
        holder_key: VerifyingKey::Ed25519(clinician.public_key()),
        status: Some(json!({"status_list": {"idx": 3, "uri": "https://board.example/status/1"}})),
        key_id: Some("board-1".into()),
    };
    let issued = credential.issue(&issuance, &board).unwrap();
    let board_key = board.verifying_key();
    let resolver = |_: &str, _: &Header| Some(board_key.clone());
    let held = SdJwt::parse(&issued, &resolver).unwrap();
    let (aud, nonce) = ("did:web:clinic.example", "n-0451");
    let holder = SigningKey::Ed25519(clinician);
    let presentation = held
        .present_with_key_binding(
            &[ClaimPath::keys(&["specialty"])],
            aud,
            nonce,
            now(),
            &holder,
        )
        .unwrap();

    let ours = verify_presentation(
        &presentation,
        &resolver,
        &VerifyOptions::new(now()).require_key_binding(aud, nonce),
    )
    .unwrap();
    let theirs = python_verify(&presentation, &board_key.to_jwk(), aud, nonce)
        .unwrap_or_else(|e| panic!("Python refused: {e}"));
    assert_eq!(theirs, ours.claims_value());
    assert_eq!(theirs["specialty"], "Kardiologie");
    assert!(theirs.get("licence_number").is_none());

    // The Python verifier refuses a wrong nonce, and a changed disclosure.
    assert!(python_verify(&presentation, &board_key.to_jwk(), aud, "other").is_err());
    let mut parts: Vec<String> = presentation.split('~').map(str::to_owned).collect();
    let replacement = if &parts[1][1..2] == "y" { "z" } else { "y" };
    parts[1].replace_range(1..2, replacement);
    assert!(python_verify(&parts.join("~"), &board_key.to_jwk(), aud, nonce).is_err());
}

#[test]
fn hygeia_verifies_what_python_issues() {
    if !python_ready() {
        return;
    }
    let out = Command::new("python3")
        .arg(SCRIPT)
        .arg("issue")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let issued: Value = serde_json::from_slice(&out.stdout).unwrap();
    let presentation = issued["presentation"].as_str().unwrap();
    let issuer_key = VerifyingKey::from_jwk(&issued["issuer_jwk"]).unwrap();
    assert!(
        matches!(issuer_key, VerifyingKey::Ed25519(_)),
        "the Python side signs with EdDSA"
    );
    let resolver =
        |iss: &str, _: &Header| (iss == "did:web:board.example").then(|| issuer_key.clone());
    let (aud, nonce) = (
        issued["aud"].as_str().unwrap(),
        issued["nonce"].as_str().unwrap(),
    );

    let options = VerifyOptions::new(now()).require_key_binding(aud, nonce);
    let verified = verify_presentation(presentation, &resolver, &options)
        .unwrap_or_else(|e| panic!("{}: {e}", e.code()));
    assert!(verified.key_bound());
    assert_eq!(verified.claims_value(), issued["verified_claims"]);
    assert_eq!(verified.claims()["languages"], json!(["en", "de"]));
    assert_eq!(
        verified.claims()["practice"],
        json!({"city": "Lyon", "country": "FR"})
    );
    let Credential::ClinicianLicence(licence) = Credential::from_verified(&verified).unwrap()
    else {
        panic!("not a licence");
    };
    assert_eq!(licence.specialty.as_deref(), Some("nephrologie"));
    assert_eq!(licence.licence_number, None);

    let wrong = VerifyOptions::new(now()).require_key_binding(aud, "other-nonce");
    assert_eq!(
        verify_presentation(presentation, &resolver, &wrong)
            .unwrap_err()
            .code(),
        "kb-jwt-wrong-nonce"
    );
}
