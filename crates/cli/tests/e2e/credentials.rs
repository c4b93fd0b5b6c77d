//! Organizations' did:web and the credential commands, end to end: a real
//! node and the `hygeia` CLI. (Licences, trust lists and status lists over
//! HTTP are tested through the router in crates/node:
//! `api::tests::credentials`.)

use crate::common;

use std::path::Path;

use common::signed::*;
use common::{client, hygeia};
use hygeia_cli::licensing::{licence as licence_claims, signing_key, Issuer};
use hygeia_credentials::credential_types::VCT_CLINICIAN_LICENCE;
use hygeia_credentials::jws::VerifyingKey;
use hygeia_credentials::sd_jwt::SdJwt;
use hygeia_identity::Keypair;
use serde_json::{json, Value};

const REASON: &str = "forbid-treatment-without-licence";
const ACME: &str = "did:web:hospital.example:orgs:acme";

/// Reads the network's record as `key` with `query`: (status, reasons).
fn read(net: &Network, key: &Keypair, query: &str) -> (u16, Vec<String>) {
    let response = signed_get(
        &net.node,
        key,
        &format!("/v1/records/{}{query}", net.record),
    );
    let status = response.status().as_u16();
    if status == 200 {
        return (status, Vec::new());
    }
    let body: Value = response.json().unwrap_or(Value::Null);
    let reasons = body["error"]["reasons"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_str().map(str::to_owned))
        .collect();
    (status, reasons)
}

const TREAT: &str = "?purpose=TREAT";

fn assert_denied_without_licence(net: &Network, key: &Keypair, query: &str) {
    let (status, reasons) = read(net, key, query);
    assert_eq!(status, 403, "{query}: {reasons:?}");
    assert!(reasons.iter().any(|r| r == REASON), "{query}: {reasons:?}");
}

/// A new clinician of the clinic, acting from `country`.
fn new_clinician(net: &Network, country: &str) -> Keypair {
    let clinician = Keypair::generate();
    let (status, answer) = submit(
        &net.node,
        &net.clinic_admin,
        "org.member",
        json!({"org": "did:web:clinic.example", "member": did(&clinician), "roles": ["clinician"], "jurisdiction": country, "status": "active"}),
    );
    assert_eq!(status, 201, "{answer}");
    clinician
}

fn grant(net: &Network, grantee: &Keypair) {
    let (status, answer) = submit(
        &net.node,
        &net.patient,
        "consent.grant",
        net.grant_body(grantee),
    );
    assert_eq!(status, 201, "{answer}");
}

/// The standings of `holder`'s registered licences, in order.
fn standings(net: &Network, holder: &Keypair) -> Vec<String> {
    let answer: Value = net
        .node
        .get(&format!("/v1/licences/{}", did(holder)))
        .json()
        .unwrap();
    answer["licences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["standing"].as_str().unwrap().to_owned())
        .collect()
}

/// The audience of a licence's key binding: the network's id.
fn network_id(net: &Network) -> String {
    net.node.get("/v1/node").json::<Value>().unwrap()["network_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// GET with a chosen Host header.
fn get_with_host(net: &Network, path: &str, host: &str) -> (u16, Value) {
    let response = client()
        .get(format!("{}{path}", net.node.url))
        .header("host", host)
        .send()
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

fn method_ids(document: &Value) -> Vec<String> {
    document["verificationMethod"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

fn write_key(dir: &Path, name: &str, key: &Keypair) -> String {
    let path = dir.join(format!("{name}.key"));
    key.write_key_file(&path).unwrap();
    path.to_str().unwrap().to_owned()
}

fn run_ok(args: &[&str]) -> String {
    let output = hygeia(args);
    assert!(
        output.status.success(),
        "hygeia {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Runs a command that must fail, with `code` in its output.
fn run_refused(args: &[&str], code: &str) {
    let output = hygeia(args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !output.status.success(),
        "hygeia {args:?} succeeded: {text}"
    );
    assert!(text.contains(code), "{code} not in: {text}");
}

#[test]
fn an_organization_did_web_follows_its_key_rotations() {
    let net = Network::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let old_admin = Keypair::generate();
    let new_admin = Keypair::generate();
    let (status, answer) = submit(
        &net.node,
        &net.governance,
        "org.register",
        json!({"org": ACME, "admin": did(&old_admin), "kind": "hospital"}),
    );
    assert_eq!(status, 201, "{answer}");
    let multibase = |key: &Keypair| did(key).replace("did:key:", "");
    let old_method = format!("{ACME}#{}", multibase(&old_admin));
    let new_method = format!("{ACME}#{}", multibase(&new_admin));

    // did:web by Host, and the resolver endpoint, show the admin key.
    let (status, document) = get_with_host(&net, "/orgs/acme/did.json", "hospital.example");
    assert_eq!(status, 200, "{document}");
    assert_eq!(document["id"], ACME);
    assert_eq!(method_ids(&document), std::slice::from_ref(&old_method));
    let (status, _) = get_with_host(&net, "/orgs/acme/did.json", "elsewhere.example");
    assert_eq!(status, 404);
    let resolved: Value = net.node.get(&format!("/v1/dids/{ACME}")).json().unwrap();
    assert_eq!(
        method_ids(&resolved["didDocument"]),
        std::slice::from_ref(&old_method)
    );
    let via_cli: Value =
        serde_json::from_str(&run_ok(&["did", "resolve", "--node", &net.node.url, ACME])).unwrap();
    assert_eq!(via_cli["didDocument"], resolved["didDocument"]);

    // The organization licenses a clinician while its key is current.
    let clinician = new_clinician(&net, "FR");
    trust_licence_issuer(&net.node, &net.governance, ACME, &["FR"]);
    let now = now() as i64;
    let issued = Issuer {
        key: &old_admin,
        did: ACME.to_owned(),
    }
    .issue(
        &licence_claims(clinician.did(), "nurse", "FR"),
        clinician.public_key(),
        now - 60,
        Some(now + 86_400),
        &[],
    )
    .unwrap();
    let licence_file = dir.path().join("acme-licence.sd-jwt");
    std::fs::write(&licence_file, &issued).unwrap();
    let clinician_key = write_key(dir.path(), "clinician", &clinician);
    let register = [
        "licence",
        "register",
        "--key",
        clinician_key.as_str(),
        "--node",
        net.node.url.as_str(),
        licence_file.to_str().unwrap(),
    ];
    run_ok(&register);
    assert_eq!(standings(&net, &clinician), ["valid"]);

    // The admin rotates to a new key, with the CLI.
    let old_admin_key = write_key(dir.path(), "old-admin", &old_admin);
    let new_did = did(&new_admin);
    run_ok(&[
        "org",
        "keys",
        "--key",
        &old_admin_key,
        "--node",
        &net.node.url,
        "--org",
        ACME,
        "--admin",
        &new_did,
    ]);
    let (_, document) = get_with_host(&net, "/orgs/acme/did.json", "hospital.example");
    assert_eq!(method_ids(&document), [new_method]);
    assert!(!document.to_string().contains(&multibase(&old_admin)));
    // The old key no longer speaks for the organization.
    run_refused(
        &[
            "org",
            "keys",
            "--key",
            &old_admin_key,
            "--node",
            &net.node.url,
            "--org",
            ACME,
            "--admin",
            &new_did,
        ],
        "org.not_admin",
    );

    // Its history: registration and rotation, each provably in the log.
    let history: Value = net
        .node
        .get(&format!("/v1/dids/{ACME}/history"))
        .json()
        .unwrap();
    let entries = history["entries"].as_array().unwrap();
    let kinds: Vec<&str> = entries
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["org.register", "org.keys"]);
    for entry in entries {
        let link = entry["inclusion_proof"].as_str().unwrap();
        assert_eq!(net.node.get(link).status().as_u16(), 200, "{link}");
    }

    // A licence signed with the rotated-away key no longer registers.
    run_refused(&register, "sd-jwt-unknown-issuer");
    let (status, answer) = submit(
        &net.node,
        &clinician,
        "licence.register",
        json!({ "presentation": SdJwt::parse(&issued, &|_: &str, _: &_| Some(VerifyingKey::from(old_admin.public_key()))).unwrap().present_with_key_binding(&[], &network_id(&net), &did(&clinician), now, &signing_key(&clinician)).unwrap() }),
    );
    assert_eq!(status, 422, "{answer}");
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains("sd-jwt-unknown-issuer"));
    assert_eq!(standings(&net, &clinician), ["valid"]);
}

#[test]
fn the_credential_commands_work_against_a_node() {
    let net = Network::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let url = net.node.url.clone();
    let board_key = write_key(dir.path(), "board", &net.board);
    let governance_key = write_key(dir.path(), "governance", &net.governance);
    let clinician = new_clinician(&net, "FR");
    let clinician_key = write_key(dir.path(), "clinician", &clinician);
    let clinician_did = did(&clinician);

    // Issue, present with key binding, verify offline.
    let licence_file = path("licence.sd-jwt");
    run_ok(&[
        "credential",
        "issue",
        "licence",
        "--key",
        &board_key,
        "--holder",
        &clinician_did,
        "--profession",
        "physician",
        "--specialty",
        "cardiology",
        "--licence-number",
        "RPPS-10101010101",
        "--jurisdiction",
        "FR",
        "--out",
        &licence_file,
    ]);
    let presentation = run_ok(&[
        "credential",
        "present",
        "--key",
        &clinician_key,
        "--disclose",
        "specialty",
        "--aud",
        "did:web:verifier.example",
        "--nonce",
        "n-1",
        &licence_file,
    ]);
    let presentation_file = path("presentation.sd-jwt");
    std::fs::write(&presentation_file, presentation.trim()).unwrap();
    let verdict: Value = serde_json::from_str(&run_ok(&[
        "credential",
        "verify",
        "--aud",
        "did:web:verifier.example",
        "--nonce",
        "n-1",
        &presentation_file,
    ]))
    .unwrap();
    assert_eq!(verdict["valid"], true);
    assert_eq!(verdict["key_bound"], true);
    assert_eq!(verdict["issuer"], did(&net.board));
    assert_eq!(verdict["vct"], VCT_CLINICIAN_LICENCE);
    assert_eq!(verdict["claims"]["specialty"], "cardiology");
    assert!(verdict["claims"].get("licence_number").is_none());
    assert_eq!(verdict["status"], "unchecked");
    // The same presentation for another request, or altered, is refused.
    run_refused(
        &[
            "credential",
            "verify",
            "--aud",
            "did:web:verifier.example",
            "--nonce",
            "n-2",
            &presentation_file,
        ],
        "refused: kb-jwt-wrong-nonce",
    );
    let mut tampered = presentation.trim().to_owned();
    let signature_end = tampered.find('~').unwrap();
    let flip = if &tampered[signature_end - 2..signature_end - 1] == "A" {
        "B"
    } else {
        "A"
    };
    tampered.replace_range(signature_end - 2..signature_end - 1, flip);
    let tampered_file = path("tampered.sd-jwt");
    std::fs::write(&tampered_file, &tampered).unwrap();
    run_refused(
        &["credential", "verify", &tampered_file],
        "refused: sd-jwt-bad-signature",
    );

    // With the node: the board is trusted for FR, the licence has no status.
    let verdict: Value = serde_json::from_str(&run_ok(&[
        "credential",
        "verify",
        "--node",
        &url,
        &licence_file,
    ]))
    .unwrap();
    assert_eq!(
        (verdict["trusted"].clone(), verdict["status"].clone()),
        (json!(true), json!("none"))
    );

    // An untrusted board's licence; then governance trusts it, with the CLI.
    let other_board = Keypair::generate();
    let other_board_key = write_key(dir.path(), "other-board", &other_board);
    let german_file = path("german.sd-jwt");
    run_ok(&[
        "credential",
        "issue",
        "licence",
        "--key",
        &other_board_key,
        "--holder",
        &clinician_did,
        "--profession",
        "physician",
        "--jurisdiction",
        "DE",
        "--out",
        &german_file,
    ]);
    run_refused(
        &["credential", "verify", "--node", &url, &german_file],
        "refused: untrusted-issuer",
    );
    run_ok(&[
        "trust",
        "add",
        "--key",
        &governance_key,
        "--node",
        &url,
        "--issuer",
        &did(&other_board),
        "--type",
        "licence",
        "--jurisdiction",
        "DE,AT",
    ]);
    let list: Value = serde_json::from_str(&run_ok(&["trust", "list", "--node", &url])).unwrap();
    assert!(list["issuers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["issuer"] == did(&other_board) && e["jurisdictions"] == json!(["AT", "DE"])));
    run_ok(&["credential", "verify", "--node", &url, &german_file]);
    run_refused(
        &[
            "trust",
            "add",
            "--key",
            &board_key,
            "--node",
            &url,
            "--issuer",
            &did(&other_board),
            "--type",
            "lab-result",
        ],
        "trust.not_governance",
    );

    // A revocable licence: the board publishes a list, issues with a bit in
    // it, the clinician registers it, the board revokes it.
    let published: Value = serde_json::from_str(&run_ok(&[
        "status",
        "publish",
        "--key",
        &board_key,
        "--node",
        &url,
        "--name",
        "cli-revocation",
    ]))
    .unwrap();
    let list_id = format!("{url}/v1/status-lists/{}/cli-revocation", did(&net.board));
    assert_eq!(published["list"], list_id);
    run_refused(
        &[
            "status",
            "publish",
            "--key",
            &board_key,
            "--node",
            &url,
            "--name",
            "cli-revocation",
        ],
        "already serves",
    );
    let revocable = path("revocable.sd-jwt");
    run_ok(&[
        "credential",
        "issue",
        "licence",
        "--key",
        &board_key,
        "--holder",
        &clinician_did,
        "--profession",
        "physician",
        "--jurisdiction",
        "FR",
        "--status-list",
        &list_id,
        "--status-index",
        "7",
        "--status-purpose",
        "revocation",
        "--out",
        &revocable,
    ]);
    let verdict: Value = serde_json::from_str(&run_ok(&[
        "credential",
        "verify",
        "--node",
        &url,
        &revocable,
    ]))
    .unwrap();
    assert_eq!(verdict["status"], "valid");
    let answer: Value = serde_json::from_str(&run_ok(&[
        "licence",
        "register",
        "--key",
        &clinician_key,
        "--node",
        &url,
        &revocable,
    ]))
    .unwrap();
    assert!(
        answer["index"].is_u64() || answer["leaf_hash"].is_string(),
        "{answer}"
    );
    let shown: Value = serde_json::from_str(&run_ok(&[
        "licence",
        "show",
        "--node",
        &url,
        &clinician_did,
    ]))
    .unwrap();
    assert_eq!(shown["licences"][0]["standing"], "valid");
    grant(&net, &clinician);
    assert_eq!(read(&net, &clinician, TREAT).0, 200);
    run_refused(
        &[
            "status",
            "set",
            "--key",
            &board_key,
            "--node",
            &url,
            "--name",
            "cli-revocation",
            "--index",
            "7",
            "--suspended",
        ],
        "suspension list",
    );
    run_ok(&[
        "status",
        "set",
        "--key",
        &board_key,
        "--node",
        &url,
        "--name",
        "cli-revocation",
        "--index",
        "7",
        "--revoked",
    ]);
    run_refused(
        &["credential", "verify", "--node", &url, &revocable],
        "refused: revoked",
    );
    let shown: Value = serde_json::from_str(&run_ok(&[
        "licence",
        "show",
        "--node",
        &url,
        "--key",
        &clinician_key,
    ]))
    .unwrap();
    assert_eq!(shown["licences"][0]["standing"], "revoked");
    assert_denied_without_licence(&net, &clinician, TREAT);
    // Only the list's issuer changes it.
    run_refused(
        &[
            "status",
            "set",
            "--key",
            &other_board_key,
            "--node",
            &url,
            "--issuer",
            &did(&net.board),
            "--name",
            "cli-revocation",
            "--index",
            "8",
            "--revoked",
        ],
        "status.not_issuer",
    );

    // A W3C VC 2.0 licence: issue, verify, tamper.
    let vc_file = path("licence.vc.json");
    run_ok(&[
        "credential",
        "issue",
        "licence",
        "--format",
        "vc",
        "--key",
        &board_key,
        "--holder",
        &clinician_did,
        "--profession",
        "physician",
        "--licence-number",
        "RPPS-10101010101",
        "--jurisdiction",
        "FR",
        "--out",
        &vc_file,
    ]);
    let verdict: Value =
        serde_json::from_str(&run_ok(&["credential", "verify", "--node", &url, &vc_file])).unwrap();
    assert_eq!(verdict["format"], "vc");
    assert_eq!(verdict["trusted"], true);
    assert_eq!(verdict["claims"]["licenceNumber"], "RPPS-10101010101");
    let mut vc: Value = serde_json::from_str(&std::fs::read_to_string(&vc_file).unwrap()).unwrap();
    vc["credentialSubject"]["jurisdiction"] = json!("DE");
    std::fs::write(&vc_file, vc.to_string()).unwrap();
    run_refused(&["credential", "verify", &vc_file], "refused: vc-bad-proof");
    // A VC cannot be a lab result.
    run_refused(
        &[
            "credential",
            "issue",
            "lab-result",
            "--format",
            "vc",
            "--key",
            &board_key,
            "--holder",
            &clinician_did,
        ],
        "licences only",
    );
    // The other types issue and verify offline.
    let device = path("device.sd-jwt");
    run_ok(&[
        "credential",
        "issue",
        "device",
        "--key",
        &board_key,
        "--holder",
        &clinician_did,
        "--model",
        "GlucoMeter 3",
        "--firmware",
        "2.1.0",
        "--serial",
        "SN-1",
        "--out",
        &device,
    ]);
    let verdict: Value = serde_json::from_str(&run_ok(&["credential", "verify", &device])).unwrap();
    assert_eq!(verdict["claims"]["model"], "GlucoMeter 3");
    assert!(
        verdict["claims"].get("serial_number").is_some(),
        "issued form shows all"
    );
}
