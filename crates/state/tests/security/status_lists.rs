//! Status lists from an attacker's side (issue 10, findings 2 and 7): a
//! stranger anchors nothing, a list costs the state about what its log
//! entry weighs, and no one can take the id a board's licences name.

use std::io::Write;

use base64::Engine;
use flate2::write::GzEncoder;
use hygeia_credentials::status_list::{StatusListEntry, StatusPurpose};
use hygeia_credentials::status_list_credential::StatusListCredential;
use hygeia_identity::Keypair;
use hygeia_state::credentials::{LicenceStanding, MAX_LIST_BYTES, MAX_STATUS_ENTRIES};
use hygeia_state::LedgerState;
use serde_json::{json, Value};

use super::fixture::*;

/// `u` + base64url(GZIP(`bits`)): an `encodedList` of any content.
fn encoded(bits: &[u8]) -> String {
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(bits).unwrap();
    let compressed = gz.finish().unwrap();
    format!(
        "u{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(compressed)
    )
}

/// A list credential of `key`'s did:key at `id` whose `encodedList` is
/// `encoded`, signed as the library signs lists.
fn list_with(key: &Keypair, id: &str, encoded_list: &str) -> Value {
    // Issue a small list, then swap in the list text and sign again.
    let template = status_list(key, &did(key), id, StatusPurpose::Revocation, &[]);
    let mut unsigned = template.clone();
    unsigned.as_object_mut().unwrap().remove("proof");
    unsigned["credentialSubject"]["encodedList"] = json!(encoded_list);
    let created = time::OffsetDateTime::from_unix_timestamp(NOW - 3600).unwrap();
    let options = hygeia_credentials::data_integrity::ProofOptions::assertion(
        key.did().verification_method(),
        created,
    );
    hygeia_credentials::data_integrity::add_proof(&unsigned, options, key).unwrap()
}

fn trust(state: &mut LedgerState, next: &mut u64, governance: &Keypair, issuer: &str, vct: &str) {
    let t = tx(
        governance,
        "trust.issuer",
        &format!("trust-{next}"),
        json!({"issuer": issuer, "credential_type": vct, "op": "add"}),
    )
    .unwrap();
    state.apply(*next, &t).unwrap();
    *next += 1;
}

fn publish(
    state: &mut LedgerState,
    next: &mut u64,
    key: &Keypair,
    credential: Value,
) -> Result<usize, String> {
    let t = tx(
        key,
        "status.list",
        &format!("list-{next}"),
        json!({ "credential": credential }),
    )
    .map_err(|e| e.to_string())?;
    let size = t.canonical_bytes().len();
    state
        .apply(*next, &t)
        .map_err(|e| format!("{}: {}", e.code.as_str(), e.message))?;
    *next += 1;
    Ok(size)
}

fn code(result: Result<usize, String>) -> String {
    let error = result.expect_err("admitted");
    error.split(':').next().unwrap_or_default().to_owned()
}

/// A stranger's list is refused before it is decoded, whatever it holds.
#[test]
fn a_strangers_list_is_refused_unread() {
    let mut victims = Victims::new();
    let (mut state, mut next) = victims.state();
    let stranger = Keypair::generate();
    let id = list_id(&did(&stranger), "bomb");
    // 16 MiB of zeros: the library's own cap, from a few KiB of text.
    let bomb = list_with(&stranger, &id, &encoded(&vec![0; 16 << 20]));
    let before = state.credentials.status_heap_bytes();
    assert_eq!(
        code(publish(&mut state, &mut next, &stranger, bomb)),
        "status.untrusted_issuer"
    );
    assert_eq!(state.credentials.status_heap_bytes(), before);
    assert!(state.credentials.list(&id).is_none());
}

/// A trusted issuer's list decoding past the cap is refused too.
#[test]
fn a_list_over_the_cap_is_refused() {
    let mut victims = Victims::new();
    let (mut state, mut next) = victims.state();
    let issuer = copy(&victims.board);
    let at_cap = list_with(
        &issuer,
        &list_id(&did(&issuer), "at-cap"),
        &encoded(&vec![0x55; MAX_LIST_BYTES]),
    );
    publish(&mut state, &mut next, &issuer, at_cap).unwrap();
    let over = list_with(
        &issuer,
        &list_id(&did(&issuer), "over"),
        &encoded(&vec![0x55; MAX_LIST_BYTES + 1]),
    );
    let refused = publish(&mut state, &mut next, &issuer, over).unwrap_err();
    assert!(
        refused.starts_with("status.invalid_credential: status-list-too-large"),
        "{refused}"
    );
}

/// Whatever a trusted issuer anchors, the state keeps about what the log
/// holds: the signed credential, and the bits licences point at, never
/// the decoded bitstring.
#[test]
fn list_memory_is_proportional_to_the_log() {
    let mut victims = Victims::new();
    let (mut state, mut next) = victims.state();
    let issuer = copy(&victims.board);
    let baseline = state.credentials.status_heap_bytes();
    let mut log_bytes = 0;
    let mut ids = Vec::new();
    // Maximal lists: each decodes to the cap, every other bit set (a
    // pattern that compresses to almost nothing and that no sparse set of
    // set bits would hold compactly).
    for n in 0..6 {
        let id = list_id(&did(&issuer), &format!("max-{n}"));
        let credential = list_with(&issuer, &id, &encoded(&vec![0x55; MAX_LIST_BYTES]));
        log_bytes += publish(&mut state, &mut next, &issuer, credential).unwrap();
        ids.push(id);
    }
    // Licences pointing at as many bits of them as a licence may name.
    for (n, holder) in (0..4u8).map(|n| (n, Keypair::from_seed(&[200 + n; 32]))) {
        let entries: Vec<StatusListEntry> = (0..MAX_STATUS_ENTRIES)
            .map(|i| {
                let id = ids[i % ids.len()].clone();
                StatusListEntry::new(id, StatusPurpose::Revocation, 1000 * usize::from(n) + i)
            })
            .collect();
        let presentation = licence_presentation(&issuer, &holder, &did(&victims.node), &entries);
        let t = tx(
            &holder,
            "licence.register",
            "licence",
            json!({ "presentation": presentation }),
        )
        .unwrap();
        log_bytes += t.canonical_bytes().len();
        state.apply(next, &t).unwrap();
        next += 1;
        let licence = &state.credentials.licences_of(&did(&holder))[0];
        // Every other bit is set: even indices are revoked.
        assert_eq!(
            state.credentials.standing(licence, NOW),
            LicenceStanding::Revoked
        );
    }
    let held = state.credentials.status_heap_bytes() - baseline;
    assert!(
        held <= 2 * log_bytes,
        "the lists hold {held} bytes for {log_bytes} bytes of log"
    );
    // What was decoded was the cap: six MiB were read, a few KiB kept.
    assert!(log_bytes < 6 * MAX_LIST_BYTES / 100, "{log_bytes}");
}

/// An attacker anchors the id a board's licence names before the board
/// does: refused; the board's own list is then anchored and the attacker
/// cannot revoke the licence, not even as a trusted issuer of its own.
#[test]
fn no_one_squats_a_boards_list() {
    let victims = Victims::new();
    let mut state = LedgerState::new(did(&victims.node), Some(did(&victims.governance)));
    let mut next = 0;
    let board = copy(&victims.board);
    let board_did = did(&board);
    trust(
        &mut state,
        &mut next,
        &victims.governance,
        &board_did,
        hygeia_credentials::credential_types::VCT_CLINICIAN_LICENCE,
    );
    // A rival issuer, trusted for another credential type.
    let rival = Keypair::generate();
    trust(
        &mut state,
        &mut next,
        &victims.governance,
        &did(&rival),
        hygeia_credentials::credential_types::VCT_LAB_RESULT,
    );
    let id = list_id(&board_did, "board-2026");
    let clinician = copy(&victims.clinician);
    let presentation = licence_presentation(
        &board,
        &clinician,
        &did(&victims.node),
        &[StatusListEntry::new(
            id.clone(),
            StatusPurpose::Revocation,
            7,
        )],
    );
    let register = tx(
        &clinician,
        "licence.register",
        "l",
        json!({ "presentation": presentation }),
    )
    .unwrap();
    state.apply(next, &register).unwrap();
    next += 1;

    // A stranger, and the rival, anchor a list under the board's id with
    // the clinician's bit set.
    let stranger = Keypair::generate();
    let squat = |key: &Keypair| status_list(key, &did(key), &id, StatusPurpose::Revocation, &[7]);
    assert_eq!(
        code(publish(&mut state, &mut next, &stranger, squat(&stranger))),
        "status.untrusted_issuer"
    );
    assert_eq!(
        code(publish(&mut state, &mut next, &rival, squat(&rival))),
        "status.id_outside_namespace"
    );
    assert!(state.credentials.list(&id).is_none());

    // The board publishes its own list; the licence counts.
    let own = status_list(&board, &board_did, &id, StatusPurpose::Revocation, &[]);
    publish(&mut state, &mut next, &board, own).unwrap();
    let standing = |state: &LedgerState| {
        state
            .credentials
            .standing(&state.credentials.licences_of(&did(&clinician))[0], NOW)
    };
    assert_eq!(standing(&state), LicenceStanding::Valid);

    // Later versions come from the board alone.
    assert_eq!(
        code(publish(&mut state, &mut next, &rival, squat(&rival))),
        "status.id_outside_namespace"
    );
    let forged = status_list(&rival, &board_did, &id, StatusPurpose::Revocation, &[7]);
    assert_eq!(
        code(publish(&mut state, &mut next, &rival, forged)),
        "status.not_issuer"
    );
    assert_eq!(standing(&state), LicenceStanding::Valid);
    assert!(state.requester(&did(&clinician), NOW).licence.is_some());

    // The board itself revokes.
    let revoked = status_list(&board, &board_did, &id, StatusPurpose::Revocation, &[7]);
    publish(&mut state, &mut next, &board, revoked).unwrap();
    assert_eq!(standing(&state), LicenceStanding::Revoked);
}

/// A licence may only name lists of its own issuer.
#[test]
fn a_licence_naming_another_issuers_list_is_refused() {
    let mut victims = Victims::new();
    let (mut state, next) = victims.state();
    let attacker = Keypair::generate();
    // A licence the attacker issues itself, whose status is the board's list.
    let presentation = licence_presentation(
        &attacker,
        &attacker,
        &did(&victims.node),
        &[StatusListEntry::new(
            victims.list.clone(),
            StatusPurpose::Revocation,
            3,
        )],
    );
    let t = tx(
        &attacker,
        "licence.register",
        "l",
        json!({ "presentation": presentation }),
    )
    .unwrap();
    let error = state.apply(next, &t).unwrap_err();
    assert_eq!(error.code.as_str(), "licence.bad_status", "{error}");
    // Nor more than the cap of entries.
    let entries: Vec<StatusListEntry> = (0..=MAX_STATUS_ENTRIES)
        .map(|i| {
            StatusListEntry::new(
                list_id(&did(&attacker), "mine"),
                StatusPurpose::Revocation,
                i,
            )
        })
        .collect();
    let presentation = licence_presentation(&attacker, &attacker, &did(&victims.node), &entries);
    let t = tx(
        &attacker,
        "licence.register",
        "m",
        json!({ "presentation": presentation }),
    )
    .unwrap();
    assert_eq!(
        state.apply(next, &t).unwrap_err().code.as_str(),
        "licence.bad_status"
    );
}

/// The id rule, case by case.
#[test]
fn list_ids_lie_in_their_issuers_namespace() {
    use hygeia_state::credentials::in_namespace;
    let key = "did:key:z6MkpTHR8VNsBxYAAWHut2Geadd9jSwuBV8xRoAnwWsdvktH";
    let web = "did:web:example.com%3A8443:orgs:board";
    let ok = [
        (
            format!("https://node.example/v1/status-lists/{key}/board-2026"),
            key,
        ),
        (
            format!("http://127.0.0.1:8080/v1/status-lists/{key}/a.b_c-1"),
            key,
        ),
        (
            format!("https://h.example/hygeia/v1/status-lists/{key}/x"),
            key,
        ),
        (
            "https://n.example/v1/status-lists/did:web:example.com%253A8443:orgs:board/2026"
                .to_string(),
            web,
        ),
    ];
    for (id, issuer) in &ok {
        assert!(in_namespace(id, issuer), "{id}");
    }
    let other = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK";
    let refused = [
        format!("https://node.example/v1/status-lists/{other}/board-2026"),
        format!("https://node.example/v1/status-lists/{key}"),
        format!("https://node.example/v1/status-lists/{key}/"),
        format!("https://node.example/v1/status-lists/{key}/a/b"),
        format!("https://node.example/v1/status-lists/{key}/.."),
        format!("https://node.example/v1/status-lists/{key}/x?y=1"),
        format!("https://node.example/v1/status-lists/{key}/x#y"),
        format!("https://node.example/v1/status-lists/{key}x/board"),
        format!("https://node.example/v2/status-lists/{key}/board"),
        format!("ftp://node.example/v1/status-lists/{key}/board"),
        format!("https:///v1/status-lists/{key}/board"),
        format!(
            "https://node.example/v1/status-lists/{key}/{}",
            "n".repeat(65)
        ),
        "https://n.example/v1/status-lists/did:web:example.com%3A8443:orgs:board/2026".to_string(),
    ];
    for id in &refused {
        let issuer = if id.contains("did:web") { web } else { key };
        assert!(!in_namespace(id, issuer), "{id}");
    }
}

/// The verified credential the CLI reads back is the one anchored.
#[test]
fn the_anchored_credential_is_served_as_signed() {
    let mut victims = Victims::new();
    let (state, _) = victims.state();
    let list = state.credentials.list(&victims.list).unwrap();
    let served: Value = serde_json::from_str(&list.credential).unwrap();
    let at = time::OffsetDateTime::from_unix_timestamp(NOW).unwrap();
    let verified = StatusListCredential::verify(
        &served,
        at,
        hygeia_credentials::data_integrity::resolve_did_key_method,
    )
    .unwrap();
    assert_eq!(verified.id(), victims.list);
}
