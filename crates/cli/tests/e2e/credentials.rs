//! Licences, trust lists, status lists and did:web organizations, end to
//! end: a real node, transactions signed here, and the `hygeia` CLI for
//! the credential commands.

use crate::common;

use std::path::Path;

use common::signed::*;
use common::{client, hygeia};
use hygeia_cli::licensing::{licence as licence_claims, signing_key, Issuer};
use hygeia_credentials::credential_types::{Credential, LabResult, VCT_CLINICIAN_LICENCE};
use hygeia_credentials::jws::VerifyingKey;
use hygeia_credentials::sd_jwt::{ClaimPath, SdJwt};
use hygeia_credentials::status_list::{StatusList, StatusListEntry, StatusPurpose};
use hygeia_credentials::status_list_credential::StatusListCredential;
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

const BREAK_GLASS: &str = "?purpose=ETREAT&break_glass=unconscious%20in%20the%20ER";
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

/// The URL under which the node serves the board's list named `name`.
fn list_url(net: &Network, name: &str) -> String {
    format!(
        "{}/v1/status-lists/{}/{name}",
        net.node.url,
        did(&net.board)
    )
}

/// A status list credential of `issuer` (signed by `key`) with `set` bits.
fn status_list(
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
    let now = time::OffsetDateTime::from_unix_timestamp(now() as i64).unwrap();
    StatusListCredential {
        id: id.to_owned(),
        issuer: issuer.to_owned(),
        purpose,
        list,
        valid_from: Some(now),
        valid_until: None,
    }
    .issue(
        key,
        &hygeia_cli::licensing::verification_method(issuer, key),
        now,
    )
    .unwrap()
}

fn publish_list(net: &Network, key: &Keypair, credential: Value) {
    let (status, answer) = submit(
        &net.node,
        key,
        "status.list",
        json!({ "credential": credential }),
    );
    assert_eq!(status, 201, "{answer}");
}

/// Issues a licence from a did:key `board` with these status entries, and
/// registers it as `clinician`.
fn register_with_status(
    net: &Network,
    board: &Keypair,
    clinician: &Keypair,
    country: &str,
    status: &[StatusListEntry],
) {
    let now = now() as i64;
    let issued = Issuer::did_key(board)
        .issue(
            &licence_claims(clinician.did(), "physician", country),
            clinician.public_key(),
            now - 60,
            Some(now + 86_400),
            status,
        )
        .unwrap();
    let presentation = registration(&net.node, &issued, clinician);
    let (code, answer) = submit(
        &net.node,
        clinician,
        "licence.register",
        json!({ "presentation": presentation }),
    );
    assert_eq!(code, 201, "{answer}");
}

#[test]
fn revoked_and_suspended_licences_stop_treatment_and_break_glass() {
    let net = Network::start(&[]);
    // The network's clinician is licensed: break-glass works.
    assert_eq!(read(&net, &net.clinician, BREAK_GLASS).0, 200);

    // The board keeps a revocation and a suspension list; a new clinician's
    // licence names a bit in each.
    let board = did(&net.board);
    let revocation = list_url(&net, "board-revocation");
    let suspension = list_url(&net, "board-suspension");
    publish_list(
        &net,
        &net.board,
        status_list(
            &net.board,
            &board,
            &revocation,
            StatusPurpose::Revocation,
            &[],
        ),
    );
    publish_list(
        &net,
        &net.board,
        status_list(
            &net.board,
            &board,
            &suspension,
            StatusPurpose::Suspension,
            &[],
        ),
    );
    let doctor = new_clinician(&net, "FR");
    assert_denied_without_licence(&net, &doctor, BREAK_GLASS);
    register_with_status(
        &net,
        &net.board,
        &doctor,
        "FR",
        &[
            StatusListEntry::new(revocation.clone(), StatusPurpose::Revocation, 42),
            StatusListEntry::new(suspension.clone(), StatusPurpose::Suspension, 42),
        ],
    );
    assert_eq!(standings(&net, &doctor), ["valid"]);
    assert_eq!(read(&net, &doctor, BREAK_GLASS).0, 200);
    grant(&net, &doctor);
    assert_eq!(read(&net, &doctor, TREAT).0, 200);

    // Suspended: denied; reinstated: permitted again.
    publish_list(
        &net,
        &net.board,
        status_list(
            &net.board,
            &board,
            &suspension,
            StatusPurpose::Suspension,
            &[42],
        ),
    );
    assert_eq!(standings(&net, &doctor), ["suspended"]);
    assert_denied_without_licence(&net, &doctor, TREAT);
    assert_denied_without_licence(&net, &doctor, BREAK_GLASS);
    publish_list(
        &net,
        &net.board,
        status_list(
            &net.board,
            &board,
            &suspension,
            StatusPurpose::Suspension,
            &[],
        ),
    );
    assert_eq!(standings(&net, &doctor), ["valid"]);
    assert_eq!(read(&net, &doctor, TREAT).0, 200);

    // Another credential's bit changes nothing; the doctor's revokes.
    publish_list(
        &net,
        &net.board,
        status_list(
            &net.board,
            &board,
            &revocation,
            StatusPurpose::Revocation,
            &[41],
        ),
    );
    assert_eq!(read(&net, &doctor, TREAT).0, 200);
    publish_list(
        &net,
        &net.board,
        status_list(
            &net.board,
            &board,
            &revocation,
            StatusPurpose::Revocation,
            &[41, 42],
        ),
    );
    assert_eq!(standings(&net, &doctor), ["revoked"]);
    assert_denied_without_licence(&net, &doctor, BREAK_GLASS);
    assert_denied_without_licence(&net, &doctor, TREAT);
    // The patient's own reads need no licence; the other clinician's
    // licence is untouched.
    assert_eq!(read(&net, &net.patient, TREAT).0, 200);
    assert_eq!(read(&net, &net.clinician, BREAK_GLASS).0, 200);
    let (status, body) = {
        let r = net
            .node
            .get(&format!("/v1/status-lists/{board}/board-revocation"));
        (r.status().as_u16(), r.json::<Value>().unwrap())
    };
    assert_eq!(status, 200);
    assert_eq!(body["id"], revocation);
}

#[test]
fn a_foreign_licence_counts_while_governance_trusts_its_board() {
    let net = Network::start(&[]);
    let german = new_clinician(&net, "DE");
    let german_board = Keypair::generate();
    let (status, answer) = register_licence(&net.node, &german_board, &german, "DE", None);
    assert_eq!(status, 201, "{answer}");
    grant(&net, &german);
    assert_eq!(standings(&net, &german), ["untrusted-issuer"]);
    assert_denied_without_licence(&net, &german, TREAT);

    // Trusted, but for French licences only: still not.
    let trust = |countries: Value, op: &str| {
        let (status, answer) = submit(
            &net.node,
            &net.governance,
            "trust.issuer",
            json!({"issuer": did(&german_board), "credential_type": VCT_CLINICIAN_LICENCE, "jurisdictions": countries, "op": op}),
        );
        assert_eq!(status, 201, "{answer}");
    };
    trust(json!(["FR"]), "add");
    assert_denied_without_licence(&net, &german, TREAT);
    // Trusted for DE: cross-border care works.
    trust(json!(["DE"]), "add");
    assert_eq!(standings(&net, &german), ["valid"]);
    assert_eq!(read(&net, &german, TREAT).0, 200);
    assert_eq!(read(&net, &german, BREAK_GLASS).0, 200);
    let list: Value = net.node.get("/v1/trust-list").json().unwrap();
    assert!(list["issuers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["issuer"] == did(&german_board) && e["jurisdictions"] == json!(["DE"])));
    // Removed: denied again.
    trust(json!([]), "remove");
    assert_eq!(standings(&net, &german), ["untrusted-issuer"]);
    assert_denied_without_licence(&net, &german, TREAT);
    // Removing twice is refused.
    let (status, answer) = submit(
        &net.node,
        &net.governance,
        "trust.issuer",
        json!({"issuer": did(&german_board), "credential_type": VCT_CLINICIAN_LICENCE, "op": "remove"}),
    );
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (404, Some("trust.unknown_issuer"))
    );
}

#[test]
fn an_expired_licence_does_not_count() {
    let net = Network::start(&[]);
    let clinician = new_clinician(&net, "FR");
    let now = now() as i64;
    let issued = Issuer::did_key(&net.board)
        .issue(
            &licence_claims(clinician.did(), "physician", "FR"),
            clinician.public_key(),
            now - 400 * 86_400,
            Some(now - 35 * 86_400),
            &[],
        )
        .unwrap();
    let presentation = registration(&net.node, &issued, &clinician);
    let (status, answer) = submit(
        &net.node,
        &clinician,
        "licence.register",
        json!({ "presentation": presentation }),
    );
    assert_eq!(
        status, 201,
        "registration does not depend on the clock: {answer}"
    );
    assert_eq!(standings(&net, &clinician), ["expired"]);
    grant(&net, &clinician);
    assert_denied_without_licence(&net, &clinician, TREAT);
    assert_denied_without_licence(&net, &clinician, BREAK_GLASS);
}

/// Submits a transaction that must be refused with `code` (and, if given,
/// a message naming `detail`), and checks the log and the licences did not
/// change.
fn refused(net: &Network, key: &Keypair, tx_type: &str, body: Value, expected: (u16, &str, &str)) {
    let (status, code, detail) = expected;
    let before = net.size();
    let licences = standings(net, key).len();
    let (got, answer) = submit(&net.node, key, tx_type, body);
    assert_eq!(got, status, "{answer}");
    assert_eq!(answer["error"]["code"], code, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains(detail), "{detail} not in {message}");
    assert_eq!(net.size(), before, "a refused transaction changed the log");
    assert_eq!(standings(net, key).len(), licences);
}

fn register_body(presentation: &str) -> Value {
    json!({ "presentation": presentation })
}

/// Parses an issued credential as its holder, checking a did:key issuer.
fn held(issued: &str) -> SdJwt {
    SdJwt::parse(issued, &hygeia_cli::licensing::did_key_issuer_key).unwrap()
}

#[test]
fn bad_licence_registrations_and_status_lists_are_refused() {
    let net = Network::start(&[]);
    let clinician = new_clinician(&net, "FR");
    let other = Keypair::generate();
    let node = network_id(&net);
    let holder = did(&clinician);
    let now = now() as i64;
    let issued = licence(&net.board, &clinician, "FR", None);

    // A disclosure altered after issuance.
    let shown = held(&issued)
        .present_with_key_binding(
            &[ClaimPath::keys(&["licence_number"])],
            &node,
            &holder,
            now,
            &signing_key(&clinician),
        )
        .unwrap();
    let mut parts: Vec<String> = shown.split('~').map(str::to_owned).collect();
    use base64::Engine;
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(br#"["c2FsdHNhbHRzYWx0","licence_number","RPPS-00000000000"]"#);
    let tampered = parts.join("~");
    refused(
        &net,
        &clinician,
        "licence.register",
        register_body(&tampered),
        (422, "licence.invalid", "sd-jwt-disclosure-unreferenced"),
    );

    // Key binding for another request or another verifier.
    let wrong_nonce = held(&issued)
        .present_with_key_binding(&[], &node, "someone-else", now, &signing_key(&clinician))
        .unwrap();
    refused(
        &net,
        &clinician,
        "licence.register",
        register_body(&wrong_nonce),
        (422, "licence.invalid", "kb-jwt-wrong-nonce"),
    );
    let wrong_aud = held(&issued)
        .present_with_key_binding(
            &[],
            "did:web:another-node.example",
            &holder,
            now,
            &signing_key(&clinician),
        )
        .unwrap();
    refused(
        &net,
        &clinician,
        "licence.register",
        register_body(&wrong_aud),
        (422, "licence.invalid", "kb-jwt-wrong-audience"),
    );

    // A licence about the clinician but bound to another key: whoever holds
    // that key presents it, and the clinician's transaction is refused.
    let bound_elsewhere = Issuer::did_key(&net.board)
        .issue(
            &licence_claims(clinician.did(), "physician", "FR"),
            other.public_key(),
            now - 60,
            Some(now + 86_400),
            &[],
        )
        .unwrap();
    let shown = held(&bound_elsewhere)
        .present_with_key_binding(&[], &node, &holder, now, &signing_key(&other))
        .unwrap();
    refused(
        &net,
        &clinician,
        "licence.register",
        register_body(&shown),
        (403, "licence.not_holder", "cnf"),
    );

    // A licence bound to the clinician's key but about someone else.
    let about_other = Issuer::did_key(&net.board)
        .issue(
            &licence_claims(other.did(), "physician", "FR"),
            clinician.public_key(),
            now - 60,
            Some(now + 86_400),
            &[],
        )
        .unwrap();
    refused(
        &net,
        &clinician,
        "licence.register",
        register_body(&registration(&net.node, &about_other, &clinician)),
        (403, "licence.not_holder", "sub"),
    );

    // Another credential type: a lab result is no licence.
    let lab_result = Issuer::did_key(&net.board)
        .issue(
            &Credential::LabResult(LabResult {
                subject: clinician.did(),
                code: Some("4548-4".into()),
                value: Some(6.1),
                unit: Some("%".into()),
                effective: None,
            }),
            clinician.public_key(),
            now - 60,
            Some(now + 86_400),
            &[],
        )
        .unwrap();
    refused(
        &net,
        &clinician,
        "licence.register",
        register_body(&registration(&net.node, &lab_result, &clinician)),
        (422, "licence.wrong_type", "lab-result"),
    );

    // An organization's did:web signing with a key it does not list.
    let acme_admin = Keypair::generate();
    let (status, answer) = submit(
        &net.node,
        &net.governance,
        "org.register",
        json!({"org": ACME, "admin": did(&acme_admin), "kind": "hospital"}),
    );
    assert_eq!(status, 201, "{answer}");
    let stranger = Keypair::generate();
    let forged = Issuer {
        key: &stranger,
        did: ACME.to_owned(),
    }
    .issue(
        &licence_claims(clinician.did(), "physician", "FR"),
        clinician.public_key(),
        now - 60,
        Some(now + 86_400),
        &[],
    )
    .unwrap();
    let forged_shown = SdJwt::parse(&forged, &|_: &str, _: &_| {
        Some(VerifyingKey::from(stranger.public_key()))
    })
    .unwrap()
    .present_with_key_binding(&[], &node, &holder, now, &signing_key(&clinician))
    .unwrap();
    refused(
        &net,
        &clinician,
        "licence.register",
        register_body(&forged_shown),
        (422, "licence.invalid", "sd-jwt-unknown-issuer"),
    );

    // Not an SD-JWT at all, or not even a compact string.
    refused(
        &net,
        &clinician,
        "licence.register",
        register_body("not-an-sd-jwt"),
        (422, "licence.invalid", "sd-jwt-malformed"),
    );
    refused(
        &net,
        &clinician,
        "licence.register",
        register_body("two words"),
        (400, "schema_violation", "compact SD-JWT"),
    );
    refused(
        &net,
        &clinician,
        "licence.register",
        json!({"presentation": 7}),
        (400, "schema_violation", "licence.register"),
    );

    // A status list published by someone other than its issuer.
    let url = list_url(&net, "board-list");
    let list = status_list(
        &net.board,
        &did(&net.board),
        &url,
        StatusPurpose::Revocation,
        &[],
    );
    refused(
        &net,
        &clinician,
        "status.list",
        json!({ "credential": list.clone() }),
        (403, "status.not_issuer", "issuer"),
    );
    // A list altered after signing.
    let mut tampered = list.clone();
    tampered["credentialSubject"]["statusPurpose"] = json!("suspension");
    refused(
        &net,
        &net.board,
        "status.list",
        json!({ "credential": tampered }),
        (422, "status.invalid_credential", "vc-bad-proof"),
    );
    // Signed by a key that is not the issuer's.
    let not_boards = status_list(
        &stranger,
        &did(&net.board),
        &url,
        StatusPurpose::Revocation,
        &[],
    );
    refused(
        &net,
        &net.board,
        "status.list",
        json!({ "credential": not_boards }),
        (422, "status.invalid_credential", ""),
    );
    // A stranger's list, under its own name: not on the trust list.
    let stranger_list = status_list(
        &stranger,
        &did(&stranger),
        &format!("{}/v1/status-lists/{}/mine", net.node.url, did(&stranger)),
        StatusPurpose::Revocation,
        &[],
    );
    refused(
        &net,
        &stranger,
        "status.list",
        json!({ "credential": stranger_list }),
        (403, "status.untrusted_issuer", "trust list"),
    );
    // The board's list under an id outside its namespace.
    let outside = status_list(
        &net.board,
        &did(&net.board),
        &format!("{}/v1/status-lists/board-list", net.node.url),
        StatusPurpose::Revocation,
        &[],
    );
    refused(
        &net,
        &net.board,
        "status.list",
        json!({ "credential": outside }),
        (403, "status.id_outside_namespace", "/v1/status-lists/"),
    );
    // The trust list is governance's alone.
    refused(
        &net,
        &net.board,
        "trust.issuer",
        json!({"issuer": did(&net.board), "credential_type": VCT_CLINICIAN_LICENCE, "op": "add"}),
        (403, "trust.not_governance", "governance"),
    );
    // The genuine list and licence still go through.
    publish_list(&net, &net.board, list);
    let (status, answer) = register_licence(&net.node, &net.board, &clinician, "FR", None);
    assert_eq!(status, 201, "{answer}");
    assert_eq!(standings(&net, &clinician), ["valid"]);
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

/// The code of a JSON error answer.
fn error_code_of(response: reqwest::blocking::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().unwrap_or(Value::Null);
    (
        status,
        body["error"]["code"].as_str().unwrap_or("").to_owned(),
    )
}

#[test]
fn bad_identifiers_and_unknown_lists_get_clear_errors() {
    let net = Network::start(&[]);
    let cases = [
        ("/v1/dids/did:key:zNotBase58!", 400, "did.invalid"),
        ("/v1/dids/did:example:123", 400, "did.unsupported_method"),
        ("/v1/dids/did:web:Upper.Example", 400, "did.invalid"),
        ("/v1/dids/did:web:nobody.example", 404, "did.not_found"),
        ("/v1/dids/did:web:nobody.example/history", 404, "not_found"),
        (
            "/v1/status-lists?id=https://nobody.example/list",
            404,
            "not_found",
        ),
        ("/v1/status-lists/no-such-list", 404, "not_found"),
        (
            "/v1/status-lists/did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK/no-such-list",
            404,
            "not_found",
        ),
        // The identity point (y = 1) and an order-8 point: small order.
        (
            "/v1/dids/did:key:z6MkeXATEjyXENzBXBxgC5EHk2JE5aqd7qMGGtDpLUH1e2Sj",
            400,
            "did.invalid",
        ),
        (
            "/v1/dids/did:key:z6MksrRtMyx4CiuAvgkmwsiPXKj7ULY8yG49hjvu11gGFbhb",
            400,
            "did.invalid",
        ),
        // y = p + 3: the point of y = 3, encoded above the field's prime.
        (
            "/v1/dids/did:key:z6Mkvg2JPc7mj3oXZCpWHB9ScRB6BvScZqnrR4Ew9Gjrd75G",
            400,
            "did.invalid",
        ),
        ("/v1/licences/did:key:zNotBase58!", 400, "did.invalid"),
        ("/v1/licences/not-a-did", 400, "did.invalid"),
        (
            "/v1/licences/did:key:z6MkeXATEjyXENzBXBxgC5EHk2JE5aqd7qMGGtDpLUH1e2Sj",
            400,
            "did.invalid",
        ),
    ];
    for (path, status, code) in cases {
        let answer = error_code_of(net.node.get(path));
        assert_eq!(answer, (status, code.to_owned()), "{path}");
    }
    // A registered organization resolves; a did:key resolves offline.
    let clinic = net.node.get("/v1/dids/did:web:clinic.example");
    assert_eq!(clinic.status().as_u16(), 200);
    let resolved: Value = clinic.json().unwrap();
    assert_eq!(resolved["didDocument"]["id"], "did:web:clinic.example");
    let patient = net.node.get(&format!("/v1/dids/{}", did(&net.patient)));
    let resolved: Value = patient.json().unwrap();
    assert_eq!(
        resolved["didDocument"]["keyAgreement"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}
