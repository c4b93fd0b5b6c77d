//! Licences, trust lists, status lists and DIDs through the router:
//! transactions signed here, decisions read back. (Moved here from the
//! CLI's end-to-end tests, which started a node process for each; the
//! credential commands and organizations' did:web are still tested there.)

use base64::Engine;
use hygeia_credentials::credential_types::{
    ClinicianLicence, Credential, Issuance, LabResult, VCT_CLINICIAN_LICENCE,
};
use hygeia_credentials::jws::{Header, SigningKey, VerifyingKey};
use hygeia_credentials::sd_jwt::{ClaimPath, SdJwt};
use hygeia_credentials::status_list::{StatusList, StatusListEntry, StatusPurpose};
use hygeia_credentials::status_list_credential::StatusListCredential;
use hygeia_identity::{Did, Keypair, PublicKey};
use hygeia_state::testing::copy;
use serde_json::{json, Value};

use super::clinic::Clinic;
use super::{did, now, Answer, CLINIC};

const REASON: &str = "forbid-treatment-without-licence";
const ACME: &str = "did:web:hospital.example:orgs:acme";
const BREAK_GLASS: &str = "?purpose=ETREAT&break_glass=unconscious%20in%20the%20ER";
const TREAT: &str = "?purpose=TREAT";
/// Where status lists are served; only the path is checked.
const BASE: &str = "http://localhost";

// ------------------------------------------------------------ issuing

/// The key of a did:key issuer, read from the DID itself; a `kid`, if
/// given, must be the DID's own verification method.
fn did_key_issuer(issuer: &str, header: &Header) -> Option<VerifyingKey> {
    let did = Did::parse_cached(issuer).ok()?;
    match header.kid() {
        Some(kid) if kid != did.verification_method() => None,
        _ => Some(VerifyingKey::from(*did.public_key())),
    }
}

/// The verification method under which `key` signs for `issuer`: its own
/// did:key's, or an organization's did:web's fragment naming the key.
fn method(issuer: &str, key: &Keypair) -> String {
    let own = key.did();
    if issuer == own.as_str() {
        own.verification_method()
    } else {
        format!("{issuer}#{}", own.as_str().trim_start_matches("did:key:"))
    }
}

/// `credential` signed by `key` for `issuer`, bound to `holder`, valid
/// from `issued_at` until `expires_at`, with these status entries.
fn issue(
    key: &Keypair,
    issuer: &str,
    credential: &Credential,
    holder: PublicKey,
    (issued_at, expires_at): (i64, i64),
    status: &[StatusListEntry],
) -> String {
    let status = match status {
        [] => None,
        [one] => Some(one.to_json()),
        many => Some(Value::Array(
            many.iter().map(StatusListEntry::to_json).collect(),
        )),
    };
    let issuance = Issuance {
        issuer: issuer.to_owned(),
        issued_at,
        expires_at: Some(expires_at),
        holder_key: VerifyingKey::from(holder),
        status,
        key_id: Some(method(issuer, key)),
    };
    credential
        .issue(&issuance, &SigningKey::from(copy(key)))
        .unwrap()
}

/// A physician's licence about `subject` in `country`.
fn licence_claims(subject: Did, country: &str) -> Credential {
    Credential::ClinicianLicence(ClinicianLicence {
        subject,
        licence_number: Some("RPPS-10101010101".to_owned()),
        profession: "physician".to_owned(),
        specialty: Some("cardiology".to_owned()),
        jurisdiction: country.to_owned(),
    })
}

/// A licence from the did:key `board` for `clinician` in `country`, valid
/// for a day, bound to the clinician's key, with these status entries.
fn licence(
    board: &Keypair,
    clinician: &Keypair,
    country: &str,
    status: &[StatusListEntry],
) -> String {
    let now = now();
    issue(
        board,
        &did(board),
        &licence_claims(clinician.did(), country),
        clinician.public_key(),
        (now - 60, now + 86_400),
        status,
    )
}

/// Parses an issued credential as its holder, checking a did:key issuer.
fn held(issued: &str) -> SdJwt {
    SdJwt::parse(issued, &did_key_issuer).unwrap()
}

/// The presentation `licence.register` takes, as `hygeia licence register`
/// builds it: nothing extra disclosed, a key binding addressed to the
/// network with the holder's DID as nonce.
fn registration(net: &Clinic, issued: &str, holder: &Keypair) -> String {
    held(issued)
        .present_with_key_binding(
            &[],
            &network_id(net),
            holder.did().as_str(),
            now(),
            &SigningKey::from(copy(holder)),
        )
        .unwrap()
}

fn register_body(presentation: &str) -> Value {
    json!({ "presentation": presentation })
}

/// Registers `issued` as `clinician`'s licence; the raw answer.
async fn register(net: &Clinic, clinician: &Keypair, issued: &str) -> Answer {
    let body = register_body(&registration(net, issued, clinician));
    net.net.submit(clinician, "licence.register", body).await
}

/// The audience of a licence's key binding: the network's id.
fn network_id(net: &Clinic) -> String {
    let committed = net.net.node.state.read();
    committed.state.network.id().unwrap().to_owned()
}

/// The URL of the board's status list named `name`.
fn list_url(net: &Clinic, name: &str) -> String {
    format!("{BASE}/v1/status-lists/{}/{name}", did(&net.board))
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
    let now = time::OffsetDateTime::from_unix_timestamp(now()).unwrap();
    StatusListCredential {
        id: id.to_owned(),
        issuer: issuer.to_owned(),
        purpose,
        list,
        valid_from: Some(now),
        valid_until: None,
    }
    .issue(key, &method(issuer, key), now)
    .unwrap()
}

async fn publish_list(net: &Clinic, key: &Keypair, credential: Value) {
    net.net
        .submit_ok(key, "status.list", json!({ "credential": credential }))
        .await;
}

// ------------------------------------------------------------ reading

/// Reads the network's record as `key` with `query`: (status, reasons).
async fn read(net: &Clinic, key: &Keypair, query: &str) -> (u16, Vec<String>) {
    let path = format!("/v1/records/{}{query}", net.record);
    let answer = net.net.signed_get(key, &path).await;
    if answer.status == 200 {
        return (200, Vec::new());
    }
    let reasons = answer.json()["error"]["reasons"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_str().map(str::to_owned))
        .collect();
    (answer.status, reasons)
}

async fn assert_denied_without_licence(net: &Clinic, key: &Keypair, query: &str) {
    let (status, reasons) = read(net, key, query).await;
    assert_eq!(status, 403, "{query}: {reasons:?}");
    assert!(reasons.iter().any(|r| r == REASON), "{query}: {reasons:?}");
}

/// A new clinician of the clinic, acting from `country`.
async fn new_clinician(net: &Clinic, country: &str) -> Keypair {
    let clinician = Keypair::generate();
    net.net
        .submit_ok(
            &net.clinic_admin,
            "org.member",
            json!({"org": CLINIC, "member": did(&clinician), "roles": ["clinician"], "jurisdiction": country, "status": "active"}),
        )
        .await;
    clinician
}

/// The standings of `holder`'s registered licences, in order.
async fn standings(net: &Clinic, holder: &Keypair) -> Vec<String> {
    let answer = net
        .net
        .get(&format!("/v1/licences/{}", did(holder)))
        .await
        .json();
    answer["licences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["standing"].as_str().unwrap().to_owned())
        .collect()
}

// ------------------------------------------------------------ tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_and_suspended_licences_stop_treatment_and_break_glass() {
    let net = Clinic::start().await;
    // The network's clinician is licensed: break-glass works.
    assert_eq!(read(&net, &net.clinician, BREAK_GLASS).await.0, 200);

    // The board keeps a revocation and a suspension list; a new clinician's
    // licence names a bit in each.
    let board = did(&net.board);
    let revocation = list_url(&net, "board-revocation");
    let suspension = list_url(&net, "board-suspension");
    let list = |id: &str, purpose, set: &[usize]| status_list(&net.board, &board, id, purpose, set);
    let publish =
        |id: &str, purpose, set: &[usize]| publish_list(&net, &net.board, list(id, purpose, set));
    publish(&revocation, StatusPurpose::Revocation, &[]).await;
    publish(&suspension, StatusPurpose::Suspension, &[]).await;
    let doctor = new_clinician(&net, "FR").await;
    assert_denied_without_licence(&net, &doctor, BREAK_GLASS).await;
    let issued = licence(
        &net.board,
        &doctor,
        "FR",
        &[
            StatusListEntry::new(revocation.clone(), StatusPurpose::Revocation, 42),
            StatusListEntry::new(suspension.clone(), StatusPurpose::Suspension, 42),
        ],
    );
    let answer = register(&net, &doctor, &issued).await;
    assert_eq!(answer.status, 201, "{}", answer.text());
    assert_eq!(standings(&net, &doctor).await, ["valid"]);
    assert_eq!(read(&net, &doctor, BREAK_GLASS).await.0, 200);
    net.grant_to(&doctor).await;
    assert_eq!(read(&net, &doctor, TREAT).await.0, 200);

    // Suspended: denied; reinstated: permitted again.
    publish(&suspension, StatusPurpose::Suspension, &[42]).await;
    assert_eq!(standings(&net, &doctor).await, ["suspended"]);
    assert_denied_without_licence(&net, &doctor, TREAT).await;
    assert_denied_without_licence(&net, &doctor, BREAK_GLASS).await;
    publish(&suspension, StatusPurpose::Suspension, &[]).await;
    assert_eq!(standings(&net, &doctor).await, ["valid"]);
    assert_eq!(read(&net, &doctor, TREAT).await.0, 200);

    // Another credential's bit changes nothing; the doctor's revokes.
    publish(&revocation, StatusPurpose::Revocation, &[41]).await;
    assert_eq!(read(&net, &doctor, TREAT).await.0, 200);
    publish(&revocation, StatusPurpose::Revocation, &[41, 42]).await;
    assert_eq!(standings(&net, &doctor).await, ["revoked"]);
    assert_denied_without_licence(&net, &doctor, BREAK_GLASS).await;
    assert_denied_without_licence(&net, &doctor, TREAT).await;
    // The patient's own reads need no licence; the other clinician's
    // licence is untouched.
    assert_eq!(read(&net, &net.patient, TREAT).await.0, 200);
    assert_eq!(read(&net, &net.clinician, BREAK_GLASS).await.0, 200);
    let served = net
        .net
        .get(&format!("/v1/status-lists/{board}/board-revocation"))
        .await;
    assert_eq!(served.status, 200);
    assert_eq!(served.json()["id"], revocation);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_licence_counts_while_governance_trusts_its_board() {
    let net = Clinic::start().await;
    let german = new_clinician(&net, "DE").await;
    let german_board = Keypair::generate();
    let answer = register(&net, &german, &licence(&german_board, &german, "DE", &[])).await;
    assert_eq!(answer.status, 201, "{}", answer.text());
    net.grant_to(&german).await;
    assert_eq!(standings(&net, &german).await, ["untrusted-issuer"]);
    assert_denied_without_licence(&net, &german, TREAT).await;

    // Trusted, but for French licences only: still not.
    let trust = |countries: Value, op: &'static str| {
        let body = json!({"issuer": did(&german_board), "credential_type": VCT_CLINICIAN_LICENCE, "jurisdictions": countries, "op": op});
        let net = &net;
        async move {
            net.net
                .submit_ok(&net.governance, "trust.issuer", body)
                .await;
        }
    };
    trust(json!(["FR"]), "add").await;
    assert_denied_without_licence(&net, &german, TREAT).await;
    // Trusted for DE: cross-border care works.
    trust(json!(["DE"]), "add").await;
    assert_eq!(standings(&net, &german).await, ["valid"]);
    assert_eq!(read(&net, &german, TREAT).await.0, 200);
    assert_eq!(read(&net, &german, BREAK_GLASS).await.0, 200);
    let list = net.net.get("/v1/trust-list").await.json();
    assert!(list["issuers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["issuer"] == did(&german_board) && e["jurisdictions"] == json!(["DE"])));
    // Removed: denied again.
    trust(json!([]), "remove").await;
    assert_eq!(standings(&net, &german).await, ["untrusted-issuer"]);
    assert_denied_without_licence(&net, &german, TREAT).await;
    // Removing twice is refused.
    let answer = net
        .net
        .submit(
            &net.governance,
            "trust.issuer",
            json!({"issuer": did(&german_board), "credential_type": VCT_CLINICIAN_LICENCE, "op": "remove"}),
        )
        .await;
    assert_eq!(answer.refusal(), (404, "trust.unknown_issuer".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_licence_does_not_count() {
    let net = Clinic::start().await;
    let clinician = new_clinician(&net, "FR").await;
    let now = now();
    let issued = issue(
        &net.board,
        &did(&net.board),
        &licence_claims(clinician.did(), "FR"),
        clinician.public_key(),
        (now - 400 * 86_400, now - 35 * 86_400),
        &[],
    );
    let answer = register(&net, &clinician, &issued).await;
    assert_eq!(
        answer.status,
        201,
        "registration does not depend on the clock: {}",
        answer.text()
    );
    assert_eq!(standings(&net, &clinician).await, ["expired"]);
    net.grant_to(&clinician).await;
    assert_denied_without_licence(&net, &clinician, TREAT).await;
    assert_denied_without_licence(&net, &clinician, BREAK_GLASS).await;
}

/// Submits a transaction that must be refused with `code` (and, if given,
/// a message naming `detail`), and checks the log and the licences did not
/// change.
async fn refused(
    net: &Clinic,
    key: &Keypair,
    tx_type: &str,
    body: Value,
    expected: (u16, &str, &str),
) {
    let (status, code, detail) = expected;
    let before = net.size();
    let licences = standings(net, key).await.len();
    let answer = net.net.submit(key, tx_type, body).await;
    assert_eq!(
        answer.refusal(),
        (status, code.to_owned()),
        "{}",
        answer.text()
    );
    let message = answer.json()["error"]["message"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(message.contains(detail), "{detail} not in {message}");
    assert_eq!(net.size(), before, "a refused transaction changed the log");
    assert_eq!(standings(net, key).await.len(), licences);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_licence_registrations_and_status_lists_are_refused() {
    let net = Clinic::start().await;
    let clinician = new_clinician(&net, "FR").await;
    let other = Keypair::generate();
    let node = network_id(&net);
    let holder = did(&clinician);
    let now = now();
    let day = (now - 60, now + 86_400);
    let signing = |key: &Keypair| SigningKey::from(copy(key));
    let issued = licence(&net.board, &clinician, "FR", &[]);
    let register_refused = |presentation: String, expected: (u16, &'static str, &'static str)| {
        let (net, clinician) = (&net, &clinician);
        async move {
            let body = register_body(&presentation);
            refused(net, clinician, "licence.register", body, expected).await
        }
    };

    // A disclosure altered after issuance.
    let shown = held(&issued)
        .present_with_key_binding(
            &[ClaimPath::keys(&["licence_number"])],
            &node,
            &holder,
            now,
            &signing(&clinician),
        )
        .unwrap();
    let mut parts: Vec<String> = shown.split('~').map(str::to_owned).collect();
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(br#"["c2FsdHNhbHRzYWx0","licence_number","RPPS-00000000000"]"#);
    let tampered = parts.join("~");
    let unreferenced = (422, "licence.invalid", "sd-jwt-disclosure-unreferenced");
    register_refused(tampered, unreferenced).await;

    // Key binding for another request or another verifier.
    let wrong_nonce = held(&issued)
        .present_with_key_binding(&[], &node, "someone-else", now, &signing(&clinician))
        .unwrap();
    register_refused(wrong_nonce, (422, "licence.invalid", "kb-jwt-wrong-nonce")).await;
    let wrong_aud = held(&issued)
        .present_with_key_binding(
            &[],
            "did:web:another-node.example",
            &holder,
            now,
            &signing(&clinician),
        )
        .unwrap();
    register_refused(wrong_aud, (422, "licence.invalid", "kb-jwt-wrong-audience")).await;

    // A licence about the clinician but bound to another key: whoever holds
    // that key presents it, and the clinician's transaction is refused.
    let board = did(&net.board);
    let bound_elsewhere = issue(
        &net.board,
        &board,
        &licence_claims(clinician.did(), "FR"),
        other.public_key(),
        day,
        &[],
    );
    let shown = held(&bound_elsewhere)
        .present_with_key_binding(&[], &node, &holder, now, &signing(&other))
        .unwrap();
    register_refused(shown, (403, "licence.not_holder", "cnf")).await;

    // A licence bound to the clinician's key but about someone else.
    let about_other = issue(
        &net.board,
        &board,
        &licence_claims(other.did(), "FR"),
        clinician.public_key(),
        day,
        &[],
    );
    let shown = registration(&net, &about_other, &clinician);
    register_refused(shown, (403, "licence.not_holder", "sub")).await;

    // Another credential type: a lab result is no licence.
    let lab_result = issue(
        &net.board,
        &board,
        &Credential::LabResult(LabResult {
            subject: clinician.did(),
            code: Some("4548-4".into()),
            value: Some(6.1),
            unit: Some("%".into()),
            effective: None,
        }),
        clinician.public_key(),
        day,
        &[],
    );
    let shown = registration(&net, &lab_result, &clinician);
    register_refused(shown, (422, "licence.wrong_type", "lab-result")).await;

    // An organization's did:web signing with a key it does not list.
    let acme_admin = Keypair::generate();
    net.net
        .submit_ok(
            &net.governance,
            "org.register",
            json!({"org": ACME, "admin": did(&acme_admin), "kind": "hospital"}),
        )
        .await;
    let stranger = Keypair::generate();
    let forged = issue(
        &stranger,
        ACME,
        &licence_claims(clinician.did(), "FR"),
        clinician.public_key(),
        day,
        &[],
    );
    let forged_shown = SdJwt::parse(&forged, &|_: &str, _: &_| {
        Some(VerifyingKey::from(stranger.public_key()))
    })
    .unwrap()
    .present_with_key_binding(&[], &node, &holder, now, &signing(&clinician))
    .unwrap();
    let unknown_issuer = (422, "licence.invalid", "sd-jwt-unknown-issuer");
    register_refused(forged_shown, unknown_issuer).await;

    // Not an SD-JWT at all, or not even a compact string.
    let malformed = (422, "licence.invalid", "sd-jwt-malformed");
    register_refused("not-an-sd-jwt".into(), malformed).await;
    let not_compact = (400, "schema_violation", "compact SD-JWT");
    register_refused("two words".into(), not_compact).await;
    refused(
        &net,
        &clinician,
        "licence.register",
        json!({"presentation": 7}),
        (400, "schema_violation", "licence.register"),
    )
    .await;

    // A status list published by someone other than its issuer.
    let url = list_url(&net, "board-list");
    let list = status_list(&net.board, &board, &url, StatusPurpose::Revocation, &[]);
    refused(
        &net,
        &clinician,
        "status.list",
        json!({ "credential": list.clone() }),
        (403, "status.not_issuer", "issuer"),
    )
    .await;
    // A list altered after signing.
    let mut tampered = list.clone();
    tampered["credentialSubject"]["statusPurpose"] = json!("suspension");
    refused(
        &net,
        &net.board,
        "status.list",
        json!({ "credential": tampered }),
        (422, "status.invalid_credential", "vc-bad-proof"),
    )
    .await;
    // Signed by a key that is not the issuer's.
    let not_boards = status_list(&stranger, &board, &url, StatusPurpose::Revocation, &[]);
    refused(
        &net,
        &net.board,
        "status.list",
        json!({ "credential": not_boards }),
        (422, "status.invalid_credential", ""),
    )
    .await;
    // A stranger's list, under its own name: not on the trust list.
    let stranger_list = status_list(
        &stranger,
        &did(&stranger),
        &format!("{BASE}/v1/status-lists/{}/mine", did(&stranger)),
        StatusPurpose::Revocation,
        &[],
    );
    refused(
        &net,
        &stranger,
        "status.list",
        json!({ "credential": stranger_list }),
        (403, "status.untrusted_issuer", "trust list"),
    )
    .await;
    // The board's list under an id outside its namespace.
    let outside = status_list(
        &net.board,
        &board,
        &format!("{BASE}/v1/status-lists/board-list"),
        StatusPurpose::Revocation,
        &[],
    );
    refused(
        &net,
        &net.board,
        "status.list",
        json!({ "credential": outside }),
        (403, "status.id_outside_namespace", "/v1/status-lists/"),
    )
    .await;
    // The trust list is governance's alone.
    refused(
        &net,
        &net.board,
        "trust.issuer",
        json!({"issuer": board, "credential_type": VCT_CLINICIAN_LICENCE, "op": "add"}),
        (403, "trust.not_governance", "governance"),
    )
    .await;
    // The genuine list and licence still go through.
    publish_list(&net, &net.board, list).await;
    let answer = register(&net, &clinician, &issued).await;
    assert_eq!(answer.status, 201, "{}", answer.text());
    assert_eq!(standings(&net, &clinician).await, ["valid"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_identifiers_and_unknown_lists_get_clear_errors() {
    let net = Clinic::start().await;
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
        let answer = net.net.get(path).await.refusal();
        assert_eq!(answer, (status, code.to_owned()), "{path}");
    }
    // A registered organization resolves; a did:key resolves offline.
    let clinic = net.net.get("/v1/dids/did:web:clinic.example").await;
    assert_eq!(clinic.status, 200);
    let resolved = clinic.json();
    assert_eq!(resolved["didDocument"]["id"], "did:web:clinic.example");
    let resolved = net
        .net
        .get(&format!("/v1/dids/{}", did(&net.patient)))
        .await
        .json();
    assert_eq!(
        resolved["didDocument"]["keyAgreement"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}
