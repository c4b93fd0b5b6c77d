//! `GET /v1/replicas/{id}`: a record held by this node (organization A's)
//! goes to the node of organization B, whose clinician the patient granted,
//! and to no one else; B keeps the copy in its own vault (a real second
//! [`Custody`]) and decrypts it; revocation stops further transfers and
//! erasure leaves B's copy unreadable.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hygeia_identity::Keypair;
use hygeia_vault::WrappedKey;
use serde_json::json;

use super::{did, now, observation, signature_headers, Net, CLINIC};
use crate::custody::replica::{author_key, Replica, ReplicaAnswer, ReplicaError};
use crate::custody::{Custody, RecordMeta};
use crate::follower::{destroy_unentitled, Copies};

const ORG_A: &str = "did:web:a.example";

fn replica_of(answer: &serde_json::Value) -> Replica {
    let text = |name: &str| answer[name].as_str().unwrap().to_owned();
    Replica {
        meta: serde_json::from_value::<RecordMeta>(answer["meta"].clone()).unwrap(),
        ciphertext: base64::engine::general_purpose::STANDARD
            .decode(text("ciphertext"))
            .unwrap(),
        wrapped: WrappedKey::from_bytes(&hex::decode(text("wrapped_key")).unwrap()).unwrap(),
    }
}

/// The patient grants the clinic's clinician reading their lab records
/// for treatment, for a day; the grant's leaf hash.
async fn grant_labs_to_clinician(net: &Net, cast: &super::Cast) -> String {
    let now = now();
    net.submit_ok(
        &cast.patient,
        "consent.grant",
        json!({"patient": did(&cast.patient), "grantee": did(&cast.clinician),
               "scope": {"categories": ["lab"]}, "actions": ["read"], "purpose": "TREAT",
               "not_before": now - 60, "not_after": now + 86_400}),
    )
    .await
    .json()["leaf_hash"]
        .as_str()
        .expect("the grant's leaf hash")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_goes_to_the_node_of_an_entitled_organization_only() {
    let (net, cast) = Net::network().await;
    let node_b = Keypair::generate();
    let node_c = Keypair::generate();
    let dir = tempfile::tempdir().unwrap();
    let custody_b = Custody::open(dir.path()).unwrap();
    let to_b = custody_b.custodial_public().to_hex();
    // A is this node's organization; the clinician's (CLINIC) node is B;
    // C is a custodian of no organization.
    net.submit_ok(
        &net.governance,
        "org.register",
        json!({"org": ORG_A, "admin": did(&Keypair::generate()), "kind": "hospital"}),
    )
    .await;
    for key in [&node_b, &node_c] {
        net.submit_ok(
            &net.governance,
            "network.custodian",
            json!({"op": "add", "key": did(key)}),
        )
        .await;
    }
    let node_a = net.node.node_did.clone();
    for (org, node) in [(ORG_A, node_a.clone()), (CLINIC, did(&node_b))] {
        net.submit_ok(
            &net.governance,
            "network.node",
            json!({"org": org, "node": node}),
        )
        .await;
    }
    let content = br#"{"resourceType":"Observation","id":"r"}"#;
    let uploaded = net
        .upload(&cast.patient, &did(&cast.patient), "lab", content)
        .await;
    assert_eq!(uploaded.status, 201, "{}", uploaded.text());
    let record = uploaded.json()["record"].as_str().unwrap().to_owned();
    let path = |id: &str| format!("/v1/replicas/{id}?to={to_b}");

    // Before any grant, and for anyone but B once granted: the 404 of a
    // made-up id, and the log does not grow.
    let made_up = net.signed_get(&node_b, &path(&"ab".repeat(32))).await;
    assert_eq!(
        (made_up.status, made_up.code()),
        (404, "record_not_found".into())
    );
    let size = net.size();
    let before = net.signed_get(&node_b, &path(&record)).await;
    assert_eq!(
        (before.status, before.code()),
        (404, "record_not_found".into())
    );
    let grant = grant_labs_to_clinician(&net, &cast).await;
    let size = size + 1;
    for stranger in [
        Keypair::generate(),
        node_c,
        hygeia_state::testing::copy(&cast.clinician),
    ] {
        let answer = net.signed_get(&stranger, &path(&record)).await;
        assert_eq!(
            (answer.status, answer.code()),
            (404, "record_not_found".into())
        );
    }
    assert_eq!(net.size(), size, "a refusal adds nothing to the log");
    // Unsigned: refused before anything is looked up.
    assert_eq!(net.get(&path(&record)).await.status, 401);

    // B: the ciphertext, with the data key sealed to B's custodial key;
    // the transfer is on the ledger, hash-only.
    let answer = net.signed_get(&node_b, &path(&record)).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let answer = answer.json();
    assert_eq!(net.size(), size + 1);
    let index = answer["index"].as_u64().unwrap();
    let replica = replica_of(&answer);
    assert_eq!(answer["sha256"], replica.digest());
    let replicas: Vec<String> = net
        .node
        .state
        .read()
        .state
        .replication
        .replicas_of(&record)
        .map(str::to_owned)
        .collect();
    assert_eq!(replicas, [did(&node_b)]);
    assert_eq!(index, size);
    // The patient's listing says where it went, and that this node holds it.
    let listing = net
        .signed_get(
            &cast.patient,
            &format!("/v1/records?patient={}", did(&cast.patient)),
        )
        .await;
    assert_eq!(listing.status, 200, "{}", listing.text());
    let listing = listing.json();
    let listed = listing["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["commitment"] == record.as_str())
        .unwrap();
    assert_eq!(listed["replicas"], json!([did(&node_b)]));
    assert_eq!(listed["held_here"], true);
    assert_eq!(listed["node"], node_a.as_str());

    // B keeps it and reads it with its own key; a copy that is not the
    // record's, not sealed to B, whose key is not the record's, or that
    // does not match the ledger, is not kept.
    let entry = net
        .node
        .state
        .read()
        .state
        .records
        .get(&record)
        .cloned()
        .unwrap();
    let author = author_key(&net.node.state.read().state.identities, &entry);
    assert_eq!(author, did(&cast.patient), "the patient uploaded it");
    let mut forged = replica.clone();
    forged.ciphertext[0] ^= 1;
    assert!(matches!(
        custody_b.store_replica(&entry, &author, &forged),
        Err(ReplicaError::Address)
    ));
    let other = tempfile::tempdir().unwrap();
    let custody_other = Custody::open(other.path()).unwrap();
    assert!(matches!(
        custody_other.store_replica(&entry, &author, &replica),
        Err(ReplicaError::Key)
    ));
    let blob = hygeia_vault::BlobId::from_hex(&replica.meta.blob).unwrap();
    let mut wrong_key = replica.clone();
    wrong_key.wrapped = hygeia_vault::wrap(
        &hygeia_vault::DataKey::generate().unwrap(),
        &blob,
        custody_b.custodial_public(),
    )
    .unwrap();
    assert!(matches!(
        custody_b.store_replica(&entry, &author, &wrong_key),
        Err(ReplicaError::Decrypt)
    ));
    let mut other_author = replica.clone();
    other_author.meta.author = did(&Keypair::generate());
    assert!(matches!(
        custody_b.store_replica(&entry, &author, &other_author),
        Err(ReplicaError::Ledger("author"))
    ));
    let mut other_size = replica.clone();
    other_size.meta.size += 1;
    assert!(matches!(
        custody_b.store_replica(&entry, &author, &other_size),
        Err(ReplicaError::Ledger("size"))
    ));
    // The provenance signature: one bit changed, another key's signature
    // over the same statement, the author's signature relabelled with
    // another media type, and one that is not a signature at all.
    let mut tampered_signature = replica.clone();
    let mut signature = URL_SAFE_NO_PAD
        .decode(&tampered_signature.meta.provenance)
        .unwrap();
    signature[10] ^= 1;
    tampered_signature.meta.provenance = URL_SAFE_NO_PAD.encode(&signature);
    let mut other_signer = replica.clone();
    other_signer.meta.provenance = super::provenance(
        &Keypair::generate(),
        &did(&cast.patient),
        "lab",
        "Observation",
        &replica.meta.media_type,
        content,
    );
    let mut relabelled = replica.clone();
    relabelled.meta.media_type = "text/plain".into();
    let mut not_a_signature = replica.clone();
    not_a_signature.meta.provenance = "not base64url!".into();
    for copy in [
        tampered_signature,
        other_signer,
        relabelled,
        not_a_signature,
    ] {
        assert!(
            matches!(
                custody_b.store_replica(&entry, &author, &copy),
                Err(ReplicaError::Provenance)
            ),
            "{:?}",
            copy.meta
        );
    }
    // The genuine signature verifies against the key that acted for the
    // author, and no other.
    assert!(matches!(
        custody_b.store_replica(&entry, &did(&Keypair::generate()), &replica),
        Err(ReplicaError::Provenance)
    ));
    assert!(
        custody_b.meta(&record).unwrap().is_none(),
        "nothing refused is kept"
    );
    // The answer as the follower reads it: the same copy; one whose digest
    // is not the digest of what it carries is refused.
    let bytes = serde_json::to_vec(&answer).unwrap();
    let parsed = ReplicaAnswer::parse(&bytes)
        .unwrap()
        .into_replica()
        .unwrap();
    assert_eq!(parsed.digest(), replica.digest());
    let mut tampered = answer.clone();
    tampered["sha256"] = json!("00".repeat(32));
    let tampered = serde_json::to_vec(&tampered).unwrap();
    assert!(matches!(
        ReplicaAnswer::parse(&tampered).unwrap().into_replica(),
        Err(ReplicaError::Malformed(_))
    ));
    assert!(matches!(
        ReplicaAnswer::parse(b"{\"record\": 1}"),
        Err(ReplicaError::Malformed(_))
    ));
    // Strict: a field it does not know, at the top or in `meta`, and the
    // flat form of before (the metadata beside the ciphertext) are refused.
    let mut extra = answer.clone();
    extra["note"] = json!("x");
    let mut extra_meta = answer.clone();
    extra_meta["meta"]["note"] = json!("x");
    let mut flat = answer.clone();
    let meta_fields = flat["meta"].as_object().unwrap().clone();
    flat.as_object_mut().unwrap().remove("meta");
    flat.as_object_mut().unwrap().extend(meta_fields);
    for refused in [extra, extra_meta, flat] {
        assert!(
            matches!(
                ReplicaAnswer::parse(&serde_json::to_vec(&refused).unwrap()),
                Err(ReplicaError::Malformed(_))
            ),
            "{refused}"
        );
    }
    custody_b.store_replica(&entry, &author, &parsed).unwrap();
    let meta = custody_b.meta(&record).unwrap().unwrap();
    let mut plain = Vec::new();
    custody_b.open_record(&meta, &mut plain).unwrap();
    assert_eq!(plain, content);

    // While the grant stands, B's follower keeps its copy, and the holder's
    // own records are never its to destroy.
    let patients = std::collections::BTreeSet::from([did(&cast.patient)]);
    let look = |custody: &Custody, me: &str, copies: Copies<'_>| {
        let state = net.node.state.read().state.clone();
        destroy_unentitled(&state, me, custody, copies, super::now())
    };
    assert_eq!(
        custody_b.replicas().unwrap(),
        [(record.clone(), node_a.clone())]
    );
    assert!(look(&custody_b, &did(&node_b), Copies::All).is_empty());
    assert!(look(&custody_b, &did(&node_b), Copies::OfPatients(&patients)).is_empty());
    assert!(custody_b.meta(&record).unwrap().is_some());

    // Revoked: no further transfer.
    net.submit_ok(&cast.patient, "consent.revoke", json!({"grant": grant}))
        .await;
    let size = net.size();
    let answer = net.signed_get(&node_b, &path(&record)).await;
    assert_eq!(
        (answer.status, answer.code()),
        (404, "record_not_found".into())
    );
    assert_eq!(net.size(), size);

    // And B no longer keeps what it could not be sent now: its copy goes
    // the way an erasure takes (every wrapped key, the ciphertext, the
    // metadata), so B's vault no longer knows the record nor decrypts it.
    // The holder is not touched: it still serves its patient.
    assert!(look(
        net.node.custody.as_ref(),
        &node_a,
        Copies::OfPatients(&patients)
    )
    .is_empty());
    assert_eq!(
        look(&custody_b, &did(&node_b), Copies::OfPatients(&patients)),
        [(record.clone(), "replicate.not_entitled")]
    );
    assert!(custody_b.meta(&record).unwrap().is_none());
    assert!(custody_b.replicas().unwrap().is_empty());
    assert!(custody_b.open_record(&meta, std::io::sink()).is_err());
    assert!(look(&custody_b, &did(&node_b), Copies::All).is_empty());
    let served = net
        .signed_get(&cast.patient, &format!("/v1/records/{record}"))
        .await;
    assert_eq!(served.status, 200, "{}", served.text());
    assert_eq!(served.body.as_ref(), content);

    // Erased on the ledger: a copy kept again (as one received before the
    // revocation would have been) is destroyed as any record B holds, and
    // nothing of it decrypts any more.
    custody_b.store_replica(&entry, &author, &parsed).unwrap();
    net.submit_ok(&cast.patient, "record.erase", json!({"record": record}))
        .await;
    custody_b.erase(&record).unwrap();
    assert!(custody_b.meta(&record).unwrap().is_none());
    assert!(custody_b.replicas().unwrap().is_empty());
    assert!(custody_b.open_record(&meta, std::io::sink()).is_err());
}

/// A copy of a FHIR resource is indexed for FHIR where it is kept, so the
/// receiving node searches and reads it through its FHIR API; a copy
/// carrying the id of a resource of another patient (or another node)
/// does not take that resource's place, on arrival or at a restart's
/// repair; and a destroyed copy leaves the FHIR store with the vault.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_received_fhir_copy_is_indexed_without_taking_another_resource_s_place() {
    use crate::fhir_store::{
        forget_destroyed, index_received, repair, FhirStore, NewVersion, Version,
    };
    use hygeia_fhir::search::IndexEntry;
    use hygeia_fhir::types::ResourceType;

    let (net, cast) = Net::network().await;
    let node_b = Keypair::generate();
    let dir = tempfile::tempdir().unwrap();
    let custody_b = Custody::open(dir.path()).unwrap();
    let fhir_b = FhirStore::open(&dir.path().join("fhir.redb")).unwrap();
    let to_b = custody_b.custodial_public().to_hex();
    net.submit_ok(
        &net.governance,
        "org.register",
        json!({"org": ORG_A, "admin": did(&Keypair::generate()), "kind": "hospital"}),
    )
    .await;
    net.submit_ok(
        &net.governance,
        "network.custodian",
        json!({"op": "add", "key": did(&node_b)}),
    )
    .await;
    for (org, node) in [(ORG_A, net.node.node_did.clone()), (CLINIC, did(&node_b))] {
        net.submit_ok(
            &net.governance,
            "network.node",
            json!({"org": org, "node": node}),
        )
        .await;
    }
    let grant = grant_labs_to_clinician(&net, &cast).await;
    // B already indexes an Observation "s" of another patient.
    let theirs = "ee".repeat(32);
    fhir_b
        .record(&[NewVersion {
            resource_type: ResourceType::Observation,
            id: "s".into(),
            version: Version {
                version: 1,
                commitment: theirs.clone(),
                last_updated: 0,
                deleted: false,
                patient: did(&Keypair::generate()),
                category: "lab".into(),
                author: did(&Keypair::generate()),
            },
            index: IndexEntry::new(ResourceType::Observation),
        }])
        .unwrap();
    // The patient's two HbA1c results at A, "r" and "s", at version 9;
    // B is sent and keeps both.
    let mut received = Vec::new();
    for id in ["r", "s"] {
        let content = format!(
            r#"{{"resourceType":"Observation","id":"{id}","meta":{{"versionId":"9"}},"status":"final","code":{{"coding":[{{"system":"http://loinc.org","code":"4548-4"}}]}},"subject":{{"reference":"Patient/p"}}}}"#
        );
        let uploaded = net
            .upload(
                &cast.patient,
                &did(&cast.patient),
                "lab",
                content.as_bytes(),
            )
            .await;
        assert_eq!(uploaded.status, 201, "{}", uploaded.text());
        let record = uploaded.json()["record"].as_str().unwrap().to_owned();
        let answer = net
            .signed_get(&node_b, &format!("/v1/replicas/{record}?to={to_b}"))
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        let state = net.node.state.read().state.clone();
        let entry = state.records.get(&record).cloned().unwrap();
        let author = author_key(&state.identities, &entry);
        custody_b
            .store_replica(&entry, &author, &replica_of(&answer.json()))
            .unwrap();
        received.push(record);
    }
    let state = net.node.state.read().state.clone();
    assert!(index_received(&fhir_b, &custody_b, &state.records, &received[0]).unwrap());
    let r = fhir_b.current("Observation/r").expect("indexed on arrival");
    assert_eq!(
        (
            r.latest.version,
            r.latest.commitment.as_str(),
            r.latest.patient.as_str()
        ),
        (9, received[0].as_str(), did(&cast.patient).as_str())
    );
    let (query, _) = hygeia_fhir::search::parse_query(
        ResourceType::Observation,
        &[("code".into(), "http://loinc.org|4548-4".into())],
        hygeia_fhir::search::Handling::Strict,
    )
    .unwrap();
    let found: Vec<String> = fhir_b.search(&query).iter().map(|c| c.key()).collect();
    assert_eq!(found, ["Observation/r"]);
    // "s" would become the current version of the other patient's
    // resource: not indexed, now or by the repair a start runs.
    assert!(!index_received(&fhir_b, &custody_b, &state.records, &received[1]).unwrap());
    assert_eq!(repair(&fhir_b, &custody_b, &state.records).unwrap(), 0);
    let s = fhir_b.current("Observation/s").unwrap();
    assert_eq!(
        s.latest.commitment, theirs,
        "the other patient's stays current"
    );
    assert_eq!(fhir_b.versions("Observation/s").unwrap().len(), 1);
    assert!(!fhir_b.knows(&received[1]));
    assert!(
        custody_b.meta(&received[1]).unwrap().is_some(),
        "still held"
    );

    // Revoked: B's copies are destroyed, and "r" leaves B's FHIR store.
    net.submit_ok(&cast.patient, "consent.revoke", json!({"grant": grant}))
        .await;
    let state = net.node.state.read().state.clone();
    let destroyed: Vec<String> =
        destroy_unentitled(&state, &did(&node_b), &custody_b, Copies::All, super::now())
            .into_iter()
            .map(|(record, _)| record)
            .collect();
    assert_eq!(destroyed.len(), 2);
    assert_eq!(
        forget_destroyed(&fhir_b, &custody_b, &state.records, &destroyed).unwrap(),
        1
    );
    assert!(fhir_b.current("Observation/r").is_none());
    assert!(!fhir_b.knows(&received[0]));
    assert!(fhir_b.search(&query).is_empty());
    assert!(fhir_b.of_patient(&did(&cast.patient)).is_empty());
    assert_eq!(
        fhir_b.current("Observation/s").unwrap().latest.commitment,
        theirs
    );
    // What B's store holds survives a reopen as it is.
    drop(fhir_b);
    let fhir_b = FhirStore::open(&dir.path().join("fhir.redb")).unwrap();
    assert!(fhir_b.current("Observation/r").is_none());
    assert!(!fhir_b.knows(&received[0]));
    assert_eq!(fhir_b.len(), 1);
}

/// A record uploaded through `/v1/records` with the FHIR media type whose
/// body is not a FHIR resource with an id is left out of the repair a
/// start runs, instead of stopping the start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_that_is_not_a_fhir_resource_does_not_stop_the_repair() {
    let (net, cast) = Net::network().await;
    for content in [&b"not json"[..], br#"{"resourceType":"Observation"}"#] {
        let uploaded = net
            .upload(&cast.patient, &did(&cast.patient), "lab", content)
            .await;
        assert_eq!(uploaded.status, 201, "{}", uploaded.text());
    }
    let state = net.node.state.read().state.clone();
    let repaired =
        crate::fhir_store::repair(&net.node.fhir.store, &net.node.custody, &state.records);
    assert_eq!(repaired.unwrap(), 0);
    assert!(net.node.fhir.store.is_empty());
}

/// A stranger (a fresh key, no role anywhere) asks this node for a record
/// another node holds: `404 record_not_held` names the holder, and that is
/// no more than the public log, which the stranger reads unsigned, already
/// shows (the `record` entry with its commitment, signed by the holder).
/// Nothing is decided or logged, and a made-up id gets `record_not_found`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_learns_from_record_not_held_only_what_the_public_log_shows() {
    let (net, cast) = Net::network().await;
    let holder = Keypair::generate();
    net.submit_ok(
        &net.governance,
        "network.custodian",
        json!({"op": "add", "key": did(&holder)}),
    )
    .await;
    let record = "5e".repeat(32);
    let logged = net
        .submit_ok(
            &holder,
            "record",
            json!({"patient": did(&cast.patient), "author": did(&cast.clinician),
                   "category": "lab", "resource_type": "Observation", "commitment": record}),
        )
        .await
        .json();
    let leaf_hash = logged["leaf_hash"].as_str().unwrap().to_owned();

    // What anyone reads in the log, without signing anything.
    let entry = net.get(&format!("/v1/transactions/{leaf_hash}")).await;
    assert_eq!(entry.status, 200, "{}", entry.text());
    let entry = entry.json();
    assert_eq!(entry["transaction"]["body"]["commitment"], record.as_str());
    assert_eq!(entry["transaction"]["signer"], did(&holder).as_str());

    let stranger = Keypair::generate();
    let size = net.size();
    let answer = net
        .signed_get(&stranger, &format!("/v1/records/{record}"))
        .await;
    assert_eq!(
        (answer.status, answer.code()),
        (404, "record_not_held".into()),
        "{}",
        answer.text()
    );
    let error = &answer.json()["error"];
    assert_eq!(error["holder"], entry["transaction"]["signer"]);
    let mut told: Vec<&str> = error
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    told.sort_unstable();
    assert_eq!(told, ["code", "holder", "message"], "{error}");
    assert!(!answer.text().contains(&did(&cast.patient)));
    assert_eq!(net.size(), size, "nothing is decided or logged");

    let made_up = net
        .signed_get(&stranger, &format!("/v1/records/{}", "ab".repeat(32)))
        .await;
    assert_eq!(
        (made_up.status, made_up.code()),
        (404, "record_not_found".into())
    );
    // Unsigned: refused before anything is looked up.
    assert_eq!(net.get(&format!("/v1/records/{record}")).await.status, 401);
    assert_eq!(net.size(), size);
}

/// What one replicated record costs on the wire: the follower's signed
/// request and the holder's answer, for a 4 KiB record, counted as HTTP/1.1
/// bytes (request line, headers, blank line, body). The router answers in
/// process, so the headers a server adds itself (`date`, `content-length`)
/// and the ones a client adds (`host`, `accept`) are counted at their usual
/// length.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bytes_of_one_replicated_4_kib_record() {
    use axum::body::Body;
    use axum::http::{Method, Request};

    let (net, cast) = Net::network().await;
    let node_b = Keypair::generate();
    let dir = tempfile::tempdir().unwrap();
    let custody_b = Custody::open(dir.path()).unwrap();
    net.submit_ok(
        &net.governance,
        "network.custodian",
        json!({"op": "add", "key": did(&node_b)}),
    )
    .await;
    net.submit_ok(
        &net.governance,
        "network.node",
        json!({"org": CLINIC, "node": did(&node_b)}),
    )
    .await;
    grant_labs_to_clinician(&net, &cast).await;
    let mut content = br#"{"resourceType":"Observation","id":"r","note":""#.to_vec();
    content.resize(4096 - 3, b'x');
    content.extend_from_slice(br#""}"#);
    content.push(b'\n');
    assert_eq!(content.len(), 4096);
    let uploaded = net
        .upload(&cast.patient, &did(&cast.patient), "lab", &content)
        .await;
    assert_eq!(uploaded.status, 201, "{}", uploaded.text());
    let record = uploaded.json()["record"].as_str().unwrap().to_owned();

    // The request exactly as the follower signs it.
    let path = format!(
        "/v1/replicas/{record}?to={}",
        custody_b.custodial_public().to_hex()
    );
    let headers = signature_headers(&node_b, &Method::GET, &path, None);
    let mut request = Request::get(&path);
    let mut request_bytes = format!("GET {path} HTTP/1.1\r\n").len();
    for (name, value) in &headers {
        request = request.header(*name, value);
        request_bytes += name.len() + 2 + value.len() + 2;
    }
    request_bytes += "host: 10.0.0.12:18080\r\naccept: */*\r\n\r\n".len();
    let answer = net.send(request.body(Body::empty()).unwrap()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());

    let mut answer_bytes = "HTTP/1.1 200 OK\r\n".len() + answer.body.len() + 2;
    for (name, value) in &answer.headers {
        answer_bytes += name.as_str().len() + 2 + value.len() + 2;
    }
    if !answer.headers.contains_key("date") {
        answer_bytes += "date: Mon, 07 Dec 2026 09:00:00 GMT\r\n".len();
    }
    if !answer.headers.contains_key("content-length") {
        answer_bytes += format!("content-length: {}\r\n", answer.body.len()).len();
    }
    // What it carries: the ciphertext in base64 and the key sealed to B.
    let parsed = ReplicaAnswer::parse(&answer.body)
        .unwrap()
        .into_replica()
        .unwrap();
    let ciphertext = parsed.ciphertext.len();
    let base64 = ciphertext.div_ceil(3) * 4;
    let metadata = answer.body.len() - base64;
    eprintln!(
        "one replicated 4096-byte record: request {request_bytes} B, answer {answer_bytes} B \
         (body {} B: ciphertext {ciphertext} B as {base64} B of base64, {metadata} B of \
         metadata, wrapped key and framing), total {} B, {:.2}x the plaintext",
        answer.body.len(),
        request_bytes + answer_bytes,
        (request_bytes + answer_bytes) as f64 / 4096.0
    );
    // The ciphertext is the record plus a small header and tag, the answer
    // its base64 plus under 1 KiB; the request is a signed GET.
    assert!(ciphertext > 4096 && ciphertext < 4096 + 128, "{ciphertext}");
    assert!(metadata < 1024, "{metadata}");
    assert!(request_bytes < 1024, "{request_bytes}");
    custody_b
        .store_replica(
            &net.node
                .state
                .read()
                .state
                .records
                .get(&record)
                .cloned()
                .unwrap(),
            &did(&cast.patient),
            &parsed,
        )
        .unwrap();
}

/// A FHIR resource uploaded through `/v1/records` with the FHIR media type
/// is read and searched through the FHIR API at once (it used to be
/// indexed only by the repair of the next start), under the repair's rule:
/// another patient's upload under the same id does not take its place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fhir_resource_uploaded_as_a_record_is_indexed_at_once_and_only_for_its_patient() {
    let (net, cast) = Net::network().await;
    let store = &net.node.fhir.store;
    let mut resource = observation("p", "4548-4", 6.1);
    resource["id"] = json!("up-1");
    resource["meta"] = json!({"versionId": "1"});
    let first = net
        .upload(
            &cast.patient,
            &did(&cast.patient),
            "lab",
            resource.to_string().as_bytes(),
        )
        .await;
    assert_eq!(first.status, 201, "{}", first.text());
    let first = first.json()["record"].as_str().unwrap().to_owned();
    let current = store.current("Observation/up-1").expect("indexed at once");
    assert_eq!(current.latest.commitment, first);
    assert_eq!(current.latest.patient, did(&cast.patient).as_str());

    // Someone else, as their own patient, under the same id and a higher
    // version: kept as their record, not indexed in the resource's place.
    let other = Keypair::generate();
    resource["meta"] = json!({"versionId": "2"});
    let theirs = net
        .upload(&other, &did(&other), "lab", resource.to_string().as_bytes())
        .await;
    assert_eq!(theirs.status, 201, "{}", theirs.text());
    let theirs = theirs.json()["record"].as_str().unwrap().to_owned();
    assert_eq!(
        store.current("Observation/up-1").unwrap().latest.commitment,
        first
    );
    assert!(!store.knows(&theirs));

    // The patient's own next version becomes the current one.
    resource["meta"] = json!({"versionId": "3"});
    let next = net
        .upload(
            &cast.patient,
            &did(&cast.patient),
            "lab",
            resource.to_string().as_bytes(),
        )
        .await;
    assert_eq!(next.status, 201, "{}", next.text());
    let next = next.json()["record"].as_str().unwrap().to_owned();
    let current = store.current("Observation/up-1").unwrap();
    assert_eq!(
        (current.latest.commitment, current.latest.version),
        (next, 3)
    );
    // A body that is not a valid resource is a record, not a FHIR resource.
    let invalid = net
        .upload(
            &cast.patient,
            &did(&cast.patient),
            "lab",
            br#"{"resourceType":"Observation","id":"up-2"}"#,
        )
        .await;
    assert_eq!(invalid.status, 201, "{}", invalid.text());
    assert!(store.current("Observation/up-2").is_none());
}
