//! Bad input over HTTP, through the router: every kind of refused
//! submission and malformed request gets the documented status and a JSON
//! error with a stable code and a message, appends nothing to the log, and
//! leaves the node serving. (Moved here from the CLI's end-to-end tests,
//! which started a node process for each; the tests stay synchronous, each
//! request driven to its answer on the probe's own runtime.)

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{header, Method, Request};
use hygeia_identity::Keypair;
use hygeia_ledger::merkle::leaf_hash;
use hygeia_ledger::tiles::split_entries;
use hygeia_ledger::TxBuilder;
use serde_json::{json, Map, Value};

use super::{Answer, Net, NETWORK};

/// A signed attest transaction for the test network.
fn attest(key: &Keypair, nonce: &str) -> Vec<u8> {
    TxBuilder {
        network: NETWORK,
        tx_type: "attest",
        nonce: nonce.to_string(),
        body: json!({"label": "test.event", "subject": format!("sha256:{}", "ab".repeat(32))}),
    }
    .sign(key)
}

/// A JSON array of transactions, as the batch endpoint takes.
fn batch_body(txs: &[Vec<u8>]) -> Vec<u8> {
    let mut body = b"[".to_vec();
    for (i, tx) in txs.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(tx);
    }
    body.push(b']');
    body
}

/// A node under test, and the tree size it must have.
struct Probe {
    net: Net,
    // Dropped after the node, which may hold tasks on it.
    runtime: tokio::runtime::Runtime,
    key: Keypair,
    size: u64,
    nonces: u64,
}

impl Probe {
    fn start() -> Probe {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let net = runtime.block_on(async { Net::start() });
        let mut probe = Probe {
            net,
            runtime,
            key: Keypair::generate(),
            size: 0,
            nonces: 0,
        };
        probe.size = probe.tree_size();
        assert_eq!(probe.size, 1, "a new node's log holds its genesis entry");
        probe
    }

    /// The tree size `/v1/health` reports.
    fn tree_size(&self) -> u64 {
        let info = self.get("/v1/health").json();
        info["tree_size"].as_u64().expect("tree_size")
    }

    /// A valid transaction that was never submitted.
    fn fresh(&mut self) -> Vec<u8> {
        self.nonces += 1;
        attest(&self.key, &format!("bad-input-{}", self.nonces))
    }

    fn fresh_many(&mut self, n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|_| self.fresh()).collect()
    }

    fn post(&self, path: &str, body: Vec<u8>) -> Answer {
        self.send(Method::POST, path, Some("application/json"), body)
    }

    fn send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Answer {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_LENGTH, body.len());
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        let request = request.body(Body::from(body)).expect("request");
        self.runtime.block_on(self.net.send(request))
    }

    fn get(&self, path: &str) -> Answer {
        self.runtime.block_on(self.net.get(path))
    }

    /// Appends valid transactions in one batch.
    fn append(&mut self, txs: &[Vec<u8>]) {
        let r = self.post("/v1/transactions/batch", batch_body(txs));
        let receipt = r.json();
        assert_eq!(r.status, 201, "a valid batch is accepted: {receipt}");
        assert_eq!(
            receipt["first_index"].as_u64(),
            Some(self.size),
            "{receipt}"
        );
        assert_eq!(
            receipt["count"].as_u64(),
            Some(txs.len() as u64),
            "{receipt}"
        );
        self.size += txs.len() as u64;
        assert_eq!(receipt["tree_size"].as_u64(), Some(self.size), "{receipt}");
    }

    /// The log has exactly the expected size, and the node answers reads.
    fn unchanged(&self, what: &str) {
        assert_eq!(self.tree_size(), self.size, "{what}: the tree size changed");
        let r = self.get("/checkpoint");
        assert_eq!(r.status, 200, "{what}: /checkpoint after the refusal");
        let note = r.text();
        assert_eq!(
            note.lines().nth(1),
            Some(self.size.to_string().as_str()),
            "{what}: the checkpoint's size line:\n{note}"
        );
    }

    /// A valid transaction is still accepted, at the next index.
    fn alive(&mut self, what: &str) {
        let tx = self.fresh();
        let r = self.post("/v1/transactions", tx.clone());
        let receipt = r.json();
        assert_eq!(
            r.status, 201,
            "{what}: a valid transaction afterwards: {receipt}"
        );
        assert_eq!(
            receipt["index"].as_u64(),
            Some(self.size),
            "{what}: {receipt}"
        );
        assert_eq!(
            receipt["leaf_hash"].as_str(),
            Some(hex::encode(leaf_hash(&tx).0).as_str())
        );
        self.size += 1;
        assert_eq!(self.tree_size(), self.size, "{what}");
    }

    /// Checks a refusal, that nothing was appended, and that the node still
    /// reads and writes. Returns the `error` object.
    fn refused(&mut self, what: &str, r: Answer, status: u16, code: &str) -> Map<String, Value> {
        let error = error_of(what, r, status, code);
        assert!(
            !error.contains_key("position"),
            "{what}: no transaction of a batch is to blame: {error:?}"
        );
        self.unchanged(what);
        self.alive(what);
        error
    }

    /// Checks a refused read: the error, that nothing was appended, and that
    /// the node still answers reads. (Each test ends with a write.)
    fn refused_read(&self, what: &str, r: Answer, status: u16, code: &str) {
        let error = error_of(what, r, status, code);
        assert!(!error.contains_key("position"), "{what}: {error:?}");
        self.unchanged(what);
    }

    /// Like [`Probe::refused`] for a batch, and the error names `position`.
    fn refused_at(&mut self, what: &str, r: Answer, status: u16, code: &str, position: u64) {
        let error = error_of(what, r, status, code);
        assert_eq!(
            error.get("position").and_then(Value::as_u64),
            Some(position),
            "{what}: position in {error:?}"
        );
        self.unchanged(what);
        self.alive(what);
    }

    /// Whether a transaction is in the log.
    fn logged(&self, tx: &[u8]) -> bool {
        let r = self.get(&format!(
            "/v1/transactions/{}",
            hex::encode(leaf_hash(tx).0)
        ));
        match r.status {
            200 => true,
            404 => false,
            other => panic!("transaction lookup answered {other}"),
        }
    }
}

/// Checks the status and the `{"error": {"code", "message", "position"?}}`
/// shape of an error answer, and returns the `error` object.
fn error_of(what: &str, r: Answer, status: u16, code: &str) -> Map<String, Value> {
    let got = r.status;
    let content_type = r
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = r.text();
    let shown: String = text.chars().take(500).collect();
    assert_eq!(got, status, "{what}: HTTP status (body: {shown})");
    assert!(
        content_type.starts_with("application/json"),
        "{what}: an error is JSON, not {content_type:?}: {shown}"
    );
    let value: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{what}: the error is not JSON ({e}): {shown}"));
    let error = value
        .get("error")
        .and_then(Value::as_object)
        .unwrap_or_else(|| panic!("{what}: no error object in {shown}"))
        .clone();
    assert_eq!(
        error.get("code").and_then(Value::as_str),
        Some(code),
        "{what}: error code in {shown}"
    );
    let message = error.get("message").and_then(Value::as_str).unwrap_or("");
    assert!(
        !message.trim().is_empty(),
        "{what}: empty error message in {shown}"
    );
    for member in error.keys() {
        assert!(
            ["code", "message", "position"].contains(&member.as_str()),
            "{what}: unexpected member {member:?} in {shown}"
        );
    }
    error
}

/// Re-serializes a transaction after changing members, in RFC 8785 form;
/// this is checked on the unchanged object first.
fn mutate(raw: &[u8], change: impl FnOnce(&mut Map<String, Value>)) -> Vec<u8> {
    let mut object: Map<String, Value> =
        serde_json::from_slice(raw).expect("a transaction is a JSON object");
    let again = serde_json_canonicalizer::to_vec(&object).expect("serialize");
    assert_eq!(
        again, raw,
        "the canonical form of a valid transaction is reproduced"
    );
    change(&mut object);
    serde_json_canonicalizer::to_vec(&object).expect("serialize")
}

fn text(raw: &[u8]) -> String {
    String::from_utf8(raw.to_vec()).expect("UTF-8")
}

/// Replaces the first occurrence of `from`, which must be present.
fn edit(raw: &[u8], from: &str, to: &str) -> Vec<u8> {
    let text = text(raw);
    assert!(text.contains(from), "{from:?} is not in {text}");
    text.replacen(from, to, 1).into_bytes()
}

#[test]
fn malformed_json_is_refused() {
    let mut p = Probe::start();
    let valid = p.fresh();
    let truncated = valid[..valid.len() - 1].to_vec();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("not JSON at all", b"{not json".to_vec()),
        ("an empty body", Vec::new()),
        ("a truncated transaction", truncated.clone()),
        (
            "invalid UTF-8 in a string",
            edit(&valid, "test.event", "test.\u{1}vent")
                .into_iter()
                .map(|b| if b == 1 { 0xff } else { b })
                .collect(),
        ),
        (
            "two transactions in a row",
            [valid.clone(), valid.clone()].concat(),
        ),
    ];
    for (what, body) in cases {
        let what = format!("single: {what}");
        let r = p.post("/v1/transactions", body);
        p.refused(&what, r, 400, "malformed_json");
    }

    let batches: Vec<(&str, Vec<u8>)> = vec![
        ("not JSON at all", b"[{not json".to_vec()),
        ("an empty body", Vec::new()),
        (
            "an unterminated array",
            [b"[".to_vec(), valid.clone()].concat(),
        ),
        ("an object instead of an array", valid.clone()),
        ("a string instead of an array", b"\"tx\"".to_vec()),
        (
            "a truncated transaction inside",
            batch_body(&[valid.clone(), truncated]),
        ),
        (
            "a trailing comma",
            [b"[".to_vec(), valid.clone(), b",]".to_vec()].concat(),
        ),
    ];
    for (what, body) in batches {
        let what = format!("batch: {what}");
        let r = p.post("/v1/transactions/batch", body);
        p.refused(&what, r, 400, "malformed_json");
    }
    assert!(
        !p.logged(&valid),
        "nothing of the malformed submissions was logged"
    );
}

#[test]
fn non_canonical_encodings_are_refused() {
    let mut p = Probe::start();
    let valid = p.fresh();
    let s = text(&valid);
    assert!(
        s.starts_with("{\"body\":") && s.ends_with(",\"v\":1}"),
        "{s}"
    );
    let v_first = format!("{{\"v\":1,{}}}", &s[1..s.len() - ",\"v\":1}".len()]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "a trailing newline",
            [valid.clone(), b"\n".to_vec()].concat(),
        ),
        ("a leading space", [b" ".to_vec(), valid.clone()].concat()),
        ("a space after a colon", edit(&valid, "\"v\":1", "\"v\": 1")),
        ("a space after a comma", edit(&valid, ",\"v\"", ", \"v\"")),
        (
            "a newline inside",
            edit(&valid, ",\"network\"", ",\n\"network\""),
        ),
        ("members out of order", v_first.into_bytes()),
        (
            "a duplicated key",
            edit(&valid, "{\"body\"", "{\"body\":1,\"body\""),
        ),
        ("v written as 1.0", edit(&valid, "\"v\":1}", "\"v\":1.0}")),
        ("v written as 1e0", edit(&valid, "\"v\":1}", "\"v\":1e0}")),
        (
            "a non-minimal escape in the label",
            edit(&valid, "\"test.event\"", "\"\\u0074est.event\""),
        ),
        (
            "an escaped slash",
            edit(&valid, NETWORK, &NETWORK.replace('/', "\\/")),
        ),
    ];
    for (what, body) in &cases {
        assert_ne!(body, &valid);
        let r = p.post("/v1/transactions", body.clone());
        p.refused(&format!("single: {what}"), r, 400, "non_canonical");
    }
    // The same inside a batch: named by position, nothing of the batch kept.
    // (Whitespace around an element belongs to the array, not to the
    // transaction, so the first two cases do not apply there.)
    for (what, body) in cases.into_iter().skip(2) {
        let good = p.fresh_many(3);
        let mut txs = good.clone();
        txs.insert(2, body);
        let r = p.post("/v1/transactions/batch", batch_body(&txs));
        p.refused_at(&format!("batch: {what}"), r, 400, "non_canonical", 2);
        assert!(
            good.iter().all(|tx| !p.logged(tx)),
            "batch: {what}: part of the batch was logged"
        );
    }
    // The untouched original was never consumed by the refusals.
    assert!(!p.logged(&valid));
    p.append(&[valid]);
}

#[test]
fn bad_envelopes_and_signatures_are_refused() {
    let mut p = Probe::start();
    let other = Keypair::generate();
    let valid = p.fresh();
    let built = |network: &str, tx_type: &str, nonce: &str, key: &Keypair| {
        TxBuilder {
            network,
            tx_type,
            nonce: nonce.to_string(),
            body: json!({"label": "test.event", "subject": format!("sha256:{}", "ab".repeat(32))}),
        }
        .sign(key)
    };
    let key = Keypair::from_seed(&[9u8; 32]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "unknown type, signed",
            built(NETWORK, "mint", "n-1", &key),
            "unknown_type",
        ),
        (
            "unknown type, changed",
            mutate(&valid, |m| {
                m.insert("type".into(), json!("mint"));
            }),
            "unknown_type",
        ),
        (
            "version 2",
            mutate(&valid, |m| {
                m.insert("v".into(), json!(2));
            }),
            "unsupported_version",
        ),
        (
            "version 0",
            mutate(&valid, |m| {
                m.insert("v".into(), json!(0));
            }),
            "unsupported_version",
        ),
        (
            "another network, signed",
            built("other.example/log", "attest", "n-2", &key),
            "wrong_network",
        ),
        (
            "another network, changed",
            mutate(&valid, |m| {
                m.insert("network".into(), json!("other.example/log"));
            }),
            "wrong_network",
        ),
        (
            "nonce changed after signing",
            mutate(&valid, |m| {
                m.insert("nonce".into(), json!("changed-nonce"));
            }),
            "bad_signature",
        ),
        (
            "body changed after signing",
            mutate(&valid, |m| {
                m["body"]["label"] = json!("test.other");
            }),
            "bad_signature",
        ),
        (
            "signed by another key than the signer",
            mutate(&attest(&other, "by-other"), |m| {
                m.insert("signer".into(), json!(key.did().as_str()));
            }),
            "bad_signature",
        ),
        (
            "a signature of the wrong length",
            mutate(&valid, |m| {
                m.insert("sig".into(), json!("AAAA"));
            }),
            "bad_signature",
        ),
    ];
    for (what, body, code) in &cases {
        let r = p.post("/v1/transactions", body.clone());
        p.refused(&format!("single: {what}"), r, 400, code);
    }
    for (what, body, code) in cases {
        let good = p.fresh_many(4);
        let mut txs = good.clone();
        txs.insert(1, body);
        let r = p.post("/v1/transactions/batch", batch_body(&txs));
        p.refused_at(&format!("batch: {what}"), r, 400, code, 1);
        assert!(
            good.iter().all(|tx| !p.logged(tx)),
            "batch: {what}: part of the batch was logged"
        );
    }
    assert!(!p.logged(&valid));
    p.append(&[valid]);
}

#[test]
fn replays_are_refused_and_leave_nothing_behind() {
    let mut p = Probe::start();

    // The same transaction twice.
    let tx = p.fresh();
    p.append(std::slice::from_ref(&tx));
    let r = p.post("/v1/transactions", tx.clone());
    p.refused("the same transaction again", r, 409, "replay");

    // A batch holding an already-logged transaction in the middle.
    let logged = p.fresh_many(3);
    p.append(&logged);
    let new = p.fresh_many(4);
    let txs = vec![
        new[0].clone(),
        new[1].clone(),
        logged[1].clone(),
        new[2].clone(),
        new[3].clone(),
    ];
    let r = p.post("/v1/transactions/batch", batch_body(&txs));
    p.refused_at("a batch holding a logged transaction", r, 409, "replay", 2);
    assert!(
        new.iter().all(|t| !p.logged(t)),
        "part of a refused batch was logged"
    );
    // Its new transactions were not consumed: they are accepted afterwards.
    p.append(&new);

    // A batch whose transaction was logged as a single submission, first.
    let single = p.fresh();
    p.append(std::slice::from_ref(&single));
    let more = p.fresh_many(2);
    let r = p.post(
        "/v1/transactions/batch",
        batch_body(&[single.clone(), more[0].clone(), more[1].clone()]),
    );
    p.refused_at(
        "a batch starting with a logged transaction",
        r,
        409,
        "replay",
        0,
    );
    assert!(more.iter().all(|t| !p.logged(t)));

    // A batch holding the same new transaction twice.
    let dup = p.fresh();
    let r = p.post(
        "/v1/transactions/batch",
        batch_body(&[more[0].clone(), dup.clone(), more[1].clone(), dup.clone()]),
    );
    p.refused_at("a batch with one transaction twice", r, 409, "replay", 3);
    assert!(!p.logged(&dup) && more.iter().all(|t| !p.logged(t)));

    // The same nonce signed twice with different content is a replay too.
    let twin = TxBuilder {
        network: NETWORK,
        tx_type: "attest",
        nonce: "twin".to_string(),
        body: json!({"label": "test.other", "subject": format!("sha256:{}", "cd".repeat(32))}),
    }
    .sign(&p.key);
    let first = attest(&p.key, "twin");
    assert_ne!(first, twin);
    let r = p.post(
        "/v1/transactions/batch",
        batch_body(&[first.clone(), twin.clone()]),
    );
    p.refused_at("a batch reusing a nonce", r, 409, "replay", 1);
    p.append(std::slice::from_ref(&first));
    let r = p.post("/v1/transactions", twin);
    p.refused("a logged nonce with other content", r, 409, "replay");

    // A large batch (verified off the async workers) with one logged entry.
    let mut big = p.fresh_many(40);
    big[33] = logged[0].clone();
    let r = p.post("/v1/transactions/batch", batch_body(&big));
    p.refused_at(
        "a large batch holding a logged transaction",
        r,
        409,
        "replay",
        33,
    );
    assert!(!p.logged(&big[0]));

    // The refused duplicates can still go in once.
    p.append(&[dup, more[0].clone(), more[1].clone()]);
}

#[test]
fn one_bad_transaction_refuses_the_whole_batch() {
    let mut p = Probe::start();
    let foreign = attest(&Keypair::generate(), "x");
    let wrong_network = TxBuilder {
        network: "other.example/log",
        tx_type: "attest",
        nonce: "wn".to_string(),
        body: json!({"label": "test.event", "subject": format!("sha256:{}", "ab".repeat(32))}),
    }
    .sign(&p.key);
    let forged = mutate(&foreign, |m| {
        m.insert("nonce".into(), json!("y"));
    });
    // (what, size of the batch, position of the bad one, the bad one, code)
    let cases: Vec<(&str, usize, usize, Vec<u8>, &str)> = vec![
        ("bad signature", 5, 2, forged.clone(), "bad_signature"),
        (
            "bad signature, large batch",
            40,
            27,
            forged.clone(),
            "bad_signature",
        ),
        ("bad signature, last", 20, 19, forged, "bad_signature"),
        (
            "wrong network",
            5,
            3,
            wrong_network.clone(),
            "wrong_network",
        ),
        (
            "wrong network, large batch",
            30,
            16,
            wrong_network,
            "wrong_network",
        ),
        ("not an object", 3, 1, b"1".to_vec(), "schema_violation"),
        ("an empty object", 3, 1, b"{}".to_vec(), "schema_violation"),
        (
            "an extra member",
            4,
            2,
            mutate(&foreign, |m| {
                m.insert("extra".into(), json!(1));
            }),
            "schema_violation",
        ),
        (
            "a bad signer",
            4,
            1,
            mutate(&foreign, |m| {
                m.insert("signer".into(), json!("did:web:example.org"));
            }),
            "bad_signer",
        ),
    ];
    for (what, n, position, bad, code) in cases {
        let good = p.fresh_many(n - 1);
        let mut txs = good.clone();
        txs.insert(position, bad);
        let r = p.post("/v1/transactions/batch", batch_body(&txs));
        p.refused_at(what, r, 400, code, position as u64);
        assert!(
            good.iter().all(|t| !p.logged(t)),
            "{what}: part of the batch was logged"
        );
        // Nothing of it was consumed: the good ones alone go in.
        p.append(&good);
    }
}

#[test]
fn oversized_requests_are_refused() {
    let mut p = Probe::start();
    let info: Value = p.get("/v1/node").json();
    assert_eq!(
        info["limits"]["max_transaction_bytes"],
        json!(65_535),
        "{info}"
    );
    assert_eq!(
        info["limits"]["max_batch_transactions"],
        json!(10_000),
        "{info}"
    );
    assert_eq!(
        info["limits"]["max_batch_body_bytes"],
        json!(32 << 20),
        "{info}"
    );

    // A signed transaction over 65 535 bytes, alone and in a batch.
    let big = TxBuilder {
        network: NETWORK,
        tx_type: "attest",
        nonce: "big".to_string(),
        body: json!({"label": "test.event", "subject": "x".repeat(70_000)}),
    }
    .sign(&p.key);
    assert!(big.len() > 65_535);
    let r = p.post("/v1/transactions", big.clone());
    p.refused("a transaction over 65535 bytes", r, 413, "tx_too_large");
    let r = p.post("/v1/transactions", vec![b' '; 65_536]);
    p.refused("a single body of 65536 bytes", r, 413, "tx_too_large");
    let good = p.fresh_many(3);
    let r = p.post(
        "/v1/transactions/batch",
        batch_body(&[good[0].clone(), big, good[1].clone(), good[2].clone()]),
    );
    p.refused_at(
        "a batch holding a transaction over 65535 bytes",
        r,
        413,
        "tx_too_large",
        1,
    );
    assert!(good.iter().all(|t| !p.logged(t)));

    // A batch body over 32 MiB: one 33 MiB string.
    let mut body = Vec::with_capacity((33 << 20) + 4);
    body.extend_from_slice(b"[\"");
    body.resize((33 << 20) + 2, b'a');
    body.extend_from_slice(b"\"]");
    let r = p.post("/v1/transactions/batch", body);
    p.refused("a batch body over 32 MiB", r, 413, "body_too_large");

    // More than 10 000 transactions: counted before any is checked.
    let mut many = vec![b"{}".to_vec(); 10_001];
    let r = p.post("/v1/transactions/batch", batch_body(&many));
    p.refused("10001 empty objects", r, 413, "body_too_large");
    let tx = p.fresh();
    many.iter_mut().for_each(|t| t.clone_from(&tx));
    let r = p.post("/v1/transactions/batch", batch_body(&many));
    p.refused(
        "10001 copies of a valid transaction",
        r,
        413,
        "body_too_large",
    );
    assert!(!p.logged(&tx));
    p.append(&[tx]);
}

#[test]
fn wrong_content_type_and_empty_batch_are_refused() {
    let mut p = Probe::start();
    for path in ["/v1/transactions", "/v1/transactions/batch"] {
        for content_type in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/jsonx",
            "multipart/form-data",
        ] {
            let tx = p.fresh();
            let body = if path.ends_with("batch") {
                batch_body(std::slice::from_ref(&tx))
            } else {
                tx.clone()
            };
            let r = p.send(Method::POST, path, Some(content_type), body);
            p.refused(
                &format!("{path} as {content_type}"),
                r,
                415,
                "unsupported_media_type",
            );
            assert!(!p.logged(&tx));
        }
    }
    // JSON with parameters, or with no content type at all, is accepted.
    let tx = p.fresh();
    let r = p.send(
        Method::POST,
        "/v1/transactions",
        Some("application/json; charset=utf-8"),
        tx,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    p.size += 1;
    let tx = p.fresh();
    let r = p.send(
        Method::POST,
        "/v1/transactions/batch",
        None,
        batch_body(&[tx]),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    p.size += 1;
    p.unchanged("accepted with other content-type spellings");

    for (what, body) in [
        ("[]", b"[]".to_vec()),
        ("[ ] with spaces", b" [ ] ".to_vec()),
    ] {
        let r = p.post("/v1/transactions/batch", body);
        p.refused(&format!("an empty batch {what}"), r, 400, "bad_request");
    }
}

#[test]
fn bad_proof_requests_are_refused() {
    let mut p = Probe::start();
    // On a new log (its genesis entry only) nothing else can be proved.
    for path in [
        "/v1/proofs/inclusion?index=1",
        "/v1/proofs/inclusion?index=0&size=2",
        "/v1/proofs/consistency?from=0",
        "/v1/proofs/consistency?from=2",
        "/v1/proofs/consistency?from=0&to=0",
    ] {
        p.refused_read(
            &format!("new log: {path}"),
            p.get(path),
            400,
            "out_of_range",
        );
    }
    p.alive("after the requests on the new log");

    let txs = p.fresh_many(298);
    p.append(&txs);
    let s = p.size;
    assert_eq!(s, 300);
    let logged = hex::encode(leaf_hash(&txs[5]).0); // leaf 7 (after genesis and the liveness check)
    let unknown = hex::encode(leaf_hash(b"never submitted").0);
    let upper = logged.to_uppercase();

    // Valid requests, as a control.
    for path in [
        format!("/v1/proofs/inclusion?index=0&size={s}"),
        format!("/v1/proofs/inclusion?index={}", s - 1),
        format!("/v1/proofs/inclusion?hash={logged}"),
        format!("/v1/proofs/inclusion?hash={logged}&size=8"),
        "/v1/proofs/consistency?from=1&to=1".to_string(),
        format!("/v1/proofs/consistency?from=7&to={s}"),
        format!("/v1/proofs/consistency?from={s}"),
        format!("/v1/transactions/{logged}"),
    ] {
        let r = p.get(&path);
        assert_eq!(r.status, 200, "{path}: {:?}", r.text());
    }

    let inclusion = "/v1/proofs/inclusion";
    let consistency = "/v1/proofs/consistency";
    let cases: Vec<(String, u16, &str)> = vec![
        // Inclusion: out of range.
        (format!("{inclusion}?index={s}"), 400, "out_of_range"),
        (
            format!("{inclusion}?index={}", s + 1000),
            400,
            "out_of_range",
        ),
        (
            format!("{inclusion}?index={}", u64::MAX),
            400,
            "out_of_range",
        ),
        (format!("{inclusion}?index=10&size=10"), 400, "out_of_range"),
        (format!("{inclusion}?index=0&size=0"), 400, "out_of_range"),
        (
            format!("{inclusion}?index=0&size={}", s + 1),
            400,
            "out_of_range",
        ),
        (
            format!("{inclusion}?index=0&size={}", u64::MAX),
            400,
            "out_of_range",
        ),
        (
            format!("{inclusion}?hash={logged}&size=7"),
            400,
            "out_of_range",
        ),
        (
            format!("{inclusion}?hash={logged}&size={}", s + 1),
            400,
            "out_of_range",
        ),
        // Inclusion: malformed.
        (format!("{inclusion}?index=abc"), 400, "bad_request"),
        (format!("{inclusion}?index=-1"), 400, "bad_request"),
        (format!("{inclusion}?index="), 400, "bad_request"),
        (format!("{inclusion}?index=1.0"), 400, "bad_request"),
        (format!("{inclusion}?index=%FF"), 400, "bad_request"),
        (
            format!("{inclusion}?index=18446744073709551616"),
            400,
            "bad_request",
        ),
        (format!("{inclusion}?index=0&size=1.5"), 400, "bad_request"),
        (format!("{inclusion}?hash={unknown}"), 404, "not_found"),
        (
            format!("{inclusion}?hash={}", &logged[..62]),
            400,
            "bad_request",
        ),
        (format!("{inclusion}?hash={logged}00"), 400, "bad_request"),
        (format!("{inclusion}?hash={upper}"), 400, "bad_request"),
        (
            format!("{inclusion}?hash={}", "zz".repeat(32)),
            400,
            "bad_request",
        ),
        (format!("{inclusion}?hash="), 400, "bad_request"),
        (
            format!("{inclusion}?index=0&hash={logged}"),
            400,
            "bad_request",
        ),
        (inclusion.to_string(), 400, "bad_request"),
        (format!("{inclusion}?size=3"), 400, "bad_request"),
        (format!("{inclusion}?index=0&leaf=1"), 400, "bad_request"),
        (format!("{inclusion}?from=1"), 400, "bad_request"),
        // Consistency.
        (format!("{consistency}?from=0&to={s}"), 400, "out_of_range"),
        (format!("{consistency}?from=0"), 400, "out_of_range"),
        (format!("{consistency}?from=9&to=8"), 400, "out_of_range"),
        (format!("{consistency}?from={}", s + 1), 400, "out_of_range"),
        (
            format!("{consistency}?from=1&to={}", s + 1),
            400,
            "out_of_range",
        ),
        (
            format!("{consistency}?from=1&to={}", u64::MAX),
            400,
            "out_of_range",
        ),
        (format!("{consistency}?to=3"), 400, "bad_request"),
        (consistency.to_string(), 400, "bad_request"),
        (format!("{consistency}?from=one"), 400, "bad_request"),
        (format!("{consistency}?from=1&to=-2"), 400, "bad_request"),
        (format!("{consistency}?from=1&too=2"), 400, "bad_request"),
        (format!("{consistency}?from=1&index=2"), 400, "bad_request"),
        // A transaction by its leaf hash.
        (format!("/v1/transactions/{unknown}"), 404, "not_found"),
        (
            format!("/v1/transactions/{}", &logged[..10]),
            400,
            "bad_request",
        ),
        (format!("/v1/transactions/{upper}"), 400, "bad_request"),
        (
            format!("/v1/transactions/{}", "g".repeat(64)),
            400,
            "bad_request",
        ),
        (format!("/v1/transactions/{logged}0"), 400, "bad_request"),
    ];
    for (path, status, code) in cases {
        p.refused_read(&path, p.get(&path), status, code);
    }
    p.alive("after the bad proof requests");
}

#[test]
fn missing_and_malformed_tiles_are_not_found() {
    let mut p = Probe::start();
    // After the genesis entry at leaf 0: leaves 1 to 299.
    let txs = p.fresh_many(299);
    p.append(&txs);

    // Control: the tiles that exist, with the right lengths and content.
    let tile = |path: &str| {
        let r = p.get(path);
        assert_eq!(r.status, 200, "{path}");
        r.body.to_vec()
    };
    let full = tile("/tile/0/000");
    assert_eq!(full.len(), 8192, "a full level-0 tile is 256 hashes");
    assert_eq!(
        &full[32..64],
        &leaf_hash(&txs[0]).0,
        "the tile's second hash is the first leaf after genesis"
    );
    let partial = tile("/tile/0/001.p/44");
    assert_eq!(partial.len(), 44 * 32);
    assert_eq!(&partial[43 * 32..], &leaf_hash(&txs[298]).0);
    let prefix = tile("/tile/0/000.p/10");
    assert_eq!(
        prefix,
        full[..320],
        "a partial tile is a prefix of the full one"
    );
    assert_eq!(tile("/tile/1/000.p/1").len(), 32);
    let bundle = tile("/tile/entries/000");
    let entries = split_entries(&bundle).expect("entry bundle");
    assert_eq!(entries.len(), 256);
    assert_eq!(entries[5], txs[4].as_slice());
    let bundle = tile("/tile/entries/001.p/44");
    let entries = split_entries(&bundle).expect("entry bundle");
    assert_eq!(entries.len(), 44);
    assert_eq!(entries[43], txs[298].as_slice());

    for path in [
        // Beyond the tree.
        "/tile/0/999",
        "/tile/entries/x001/000",
        "/tile/0/001",
        "/tile/entries/001",
        "/tile/0/001.p/45",
        "/tile/entries/001.p/45",
        "/tile/0/002.p/1",
        "/tile/1/000.p/2",
        "/tile/1/000",
        "/tile/2/000.p/1",
        "/tile/7/000",
        "/tile/0/x018/x446/x744/x073/x709/x551/615",
        "/tile/entries/x018/x446/x744/x073/x709/x551/615.p/1",
        // Not tile paths, or not in their canonical spelling.
        "/tile/0/1",
        "/tile/0/0001",
        "/tile/0/00",
        "/tile/00/000",
        "/tile/0/x000/001",
        "/tile/0/001/002",
        "/tile/entries/000.p/0",
        "/tile/0/000.p/256",
        "/tile/0/000.p/010",
        "/tile/0/001.p/-1",
        "/tile/0/001.p/",
        "/tile/0/001.p",
        "/tile/8/000",
        "/tile/9/000",
        "/tile/-1/000",
        "/tile/data/000",
        "/tile/entries/abc",
        "/tile/0/x099/x999/x999/x999/x999/x999/x999/999",
        "/tile/0/",
        "/tile/0",
        "/tile/",
        "/tile",
        "/tile/0/000/",
    ] {
        p.refused_read(path, p.get(path), 404, "not_found");
    }
    p.alive("after the bad tile requests");
}

#[test]
fn unknown_endpoints_and_wrong_methods_answer_json() {
    let mut p = Probe::start();
    for path in [
        "/nope",
        "/v1",
        "/v1/transaction",
        "/v1/transactions/",
        "/v2/node",
        "/checkpoint/",
        "/v1/proofs",
        "/openapi.yaml",
        "/V1/HEALTH",
    ] {
        p.refused_read(&format!("GET {path}"), p.get(path), 404, "not_found");
    }
    let zero = "0".repeat(64);
    let wrong: Vec<(Method, String, &str)> = vec![
        (Method::GET, "/v1/transactions".into(), "POST"),
        (Method::GET, "/v1/transactions/batch".into(), "POST"),
        (Method::PUT, "/v1/transactions".into(), "POST"),
        (Method::DELETE, "/v1/transactions/batch".into(), "POST"),
        (Method::DELETE, "/checkpoint".into(), "GET"),
        (Method::POST, "/checkpoint".into(), "GET"),
        (Method::POST, "/v1/health".into(), "GET"),
        (Method::POST, "/v1/node".into(), "GET"),
        (Method::POST, "/openapi.json".into(), "GET"),
        (Method::POST, "/v1/proofs/inclusion".into(), "GET"),
        (Method::PATCH, "/v1/proofs/consistency".into(), "GET"),
        (Method::DELETE, "/tile/0/000".into(), "GET"),
        (Method::POST, "/tile/0/000".into(), "GET"),
        (Method::DELETE, format!("/v1/transactions/{zero}"), "GET"),
        (Method::POST, format!("/v1/transactions/{zero}"), "GET"),
    ];
    for (method, path, allowed) in wrong {
        // A valid transaction as the body: it must not be logged.
        let tx = p.fresh();
        let r = p.send(method.clone(), &path, Some("application/json"), tx.clone());
        let allow = r
            .headers
            .get("allow")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        assert!(
            allow.contains(allowed),
            "{method} {path}: Allow is {allow:?}"
        );
        p.refused(&format!("{method} {path}"), r, 405, "method_not_allowed");
        assert!(!p.logged(&tx), "{method} {path} logged its body");
    }
}

/// Percent-encoded bytes that are not UTF-8 in a path parameter.
#[test]
fn paths_that_are_not_utf8_get_json_errors() {
    let mut p = Probe::start();
    let txs = p.fresh_many(3);
    p.append(&txs);
    for (path, status, code) in [
        ("/v1/transactions/%FF%FE", 400, "bad_request"),
        ("/v1/transactions/%C3", 400, "bad_request"),
        ("/tile/0/%FF", 404, "not_found"),
        ("/tile/entries/%80", 404, "not_found"),
    ] {
        p.refused_read(path, p.get(path), status, code);
    }
    p.alive("after paths that are not UTF-8");
}

/// What a node catching up from a state snapshot reads here: on a node
/// ordering alone, no snapshot and no chain yet; a bad size or offset, or a
/// size with no snapshot, is refused with its code.
#[test]
fn the_catch_up_reads_answer_and_refuse_with_codes() {
    let mut p = Probe::start();
    let heads = p.get("/v1/network/snapshots");
    assert_eq!(heads.status, 200);
    assert_eq!(heads.json(), serde_json::json!({"snapshots": []}));
    let chain = p.get("/v1/network/chain?offset=0");
    assert_eq!(chain.status, 200);
    assert!(chain.body.is_empty());
    assert_eq!(chain.headers["hygeia-chain-length"], "0");
    for (path, status, code) in [
        ("/v1/network/snapshots/7", 404, "snapshot_not_found"),
        ("/v1/network/snapshots/seven", 400, "bad_request"),
        ("/v1/network/snapshots/-1", 400, "bad_request"),
        ("/v1/network/chain", 400, "bad_request"),
        ("/v1/network/chain?offset=-3", 400, "bad_request"),
        ("/v1/network/chain?offset=0&more=1", 400, "bad_request"),
    ] {
        p.refused_read(path, p.get(path), status, code);
    }
    p.alive("after the catch-up reads");
}

#[test]
fn openapi_lists_every_route() {
    let p = Probe::start();
    let r = p.get("/openapi.json");
    assert_eq!(r.status, 200);
    let content_type = r
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let doc: Value = serde_json::from_slice(&r.body).expect("the OpenAPI document is JSON");
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "OpenAPI 3.x"
    );
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let paths = doc["paths"].as_object().expect("paths object");
    let documented: BTreeSet<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            let item = item.as_object().expect("path item object");
            item.keys()
                .filter(|k| {
                    ["get", "put", "post", "delete", "patch", "head", "options"]
                        .contains(&k.as_str())
                })
                .map(|method| (path.clone(), method.clone()))
                .collect::<Vec<_>>()
        })
        .collect();

    // The routes the router defines, read from its source.
    let source = [include_str!("../mod.rs"), include_str!("../fhir/mod.rs")].concat();
    let mut routed = BTreeSet::new();
    for call in source.split(".route(").skip(1) {
        let start = call.find('"').expect("route path") + 1;
        let end = start + call[start..].find('"').expect("end of route path");
        let path = call[start..end].replace("{*", "{");
        // Every method routed here: `get(..)`, or `post(..).get(..)`.
        let mut methods = 0;
        for m in ["get(", "post(", "put(", "delete(", "patch("] {
            for (at, _) in call.match_indices(m) {
                let standalone = call[..at]
                    .chars()
                    .last()
                    .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
                if standalone {
                    routed.insert((path.clone(), m.trim_end_matches('(').to_string()));
                    methods += 1;
                }
            }
        }
        assert!(methods > 0, "no method for route {path}");
    }
    for expected in [
        ("/checkpoint", "get"),
        ("/tile/{path}", "get"),
        ("/v1/transactions", "post"),
        ("/v1/transactions/batch", "post"),
        ("/v1/transactions/{hash}", "get"),
        ("/v1/proofs/inclusion", "get"),
        ("/v1/proofs/consistency", "get"),
        ("/v1/node", "get"),
        ("/v1/health", "get"),
        ("/openapi.json", "get"),
        ("/v1/records", "post"),
        ("/v1/records", "get"),
        ("/v1/records/{id}", "get"),
        ("/v1/consents", "get"),
        ("/v1/audit", "get"),
    ] {
        assert!(
            routed.contains(&(expected.0.to_string(), expected.1.to_string())),
            "{expected:?} not found in the router source: {routed:?}"
        );
    }
    let missing: Vec<_> = routed.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes missing from /openapi.json: {missing:?}"
    );
    let phantom: Vec<_> = documented.difference(&routed).collect();
    assert!(
        phantom.is_empty(),
        "/openapi.json documents routes the router lacks: {phantom:?}"
    );
    for (path, method) in &documented {
        let operation = &paths[path][method];
        assert!(
            operation["responses"].is_object(),
            "{method} {path} documents its responses"
        );
    }
}

/// `/` leads to the web apps, served with a policy that lets the page load
/// nothing but its own files and talk to nothing but this node; the apps'
/// read endpoints refuse what they do not know and change nothing.
#[test]
fn the_web_apps_are_served_under_a_strict_policy() {
    let mut p = Probe::start();
    let tx = p.fresh();
    p.append(&[tx]);
    let r = p.get("/");
    assert!((300..400).contains(&r.status), "/ redirects: {}", r.status);
    assert_eq!(
        r.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok()),
        Some("/app/"),
        "/ redirects to the apps"
    );
    let r = p.get("/app/");
    assert_eq!(r.status, 200);
    let header = |r: &Answer, name: &str| {
        r.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let csp = header(&r, "content-security-policy");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert_eq!(header(&r, "x-content-type-options"), "nosniff");
    let html = r.text();
    assert!(html.contains("<title>Hygeia</title>"));
    let files: Vec<&str> = html.split('"').filter(|s| s.starts_with("./")).collect();
    assert_eq!(files.len(), 2, "one script and one stylesheet: {html}");
    for file in files {
        let r = p.get(&format!("/app/{}", &file[2..]));
        assert_eq!(r.status, 200, "{file}");
        assert_eq!(
            header(&r, "cache-control"),
            "public, max-age=31536000, immutable"
        );
    }
    p.refused_read("GET /app/nope.js", p.get("/app/nope.js"), 404, "not_found");
    p.refused_read(
        "GET /v1/app/kpis?x=1",
        p.get("/v1/app/kpis?x=1"),
        400,
        "invalid_parameter",
    );
    p.refused_read(
        "GET /v1/app/ledger?limit=abc",
        p.get("/v1/app/ledger?limit=abc"),
        400,
        "invalid_parameter",
    );
    p.refused_read(
        "GET /v1/app/access unsigned",
        p.get("/v1/app/access"),
        401,
        "auth_missing",
    );
    p.refused_read(
        "GET /v1/app/records/{id}/provenance unsigned",
        p.get(&format!("/v1/app/records/{}/provenance", "0".repeat(64))),
        401,
        "auth_missing",
    );
    let page: Value = p.get("/v1/app/ledger?limit=1").json();
    assert_eq!(page["entries"].as_array().map(Vec::len), Some(1));
    let figures: Value = p.get("/v1/app/kpis").json();
    assert!(figures["figures"].is_array());
}
