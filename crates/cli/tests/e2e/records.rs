//! The patient-controlled records scenario, end to end: a real node, the
//! `hygeia` CLI for every step, HTTP underneath.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{hygeia, NodeProcess};
use hygeia_identity::Keypair;
use serde_json::Value;

struct Person {
    key: PathBuf,
    did: String,
}

fn person(dir: &Path, name: &str) -> Person {
    let key = Keypair::generate();
    let path = dir.join(format!("{name}.key"));
    key.write_key_file(&path).unwrap();
    Person {
        key: path,
        did: key.did().to_string(),
    }
}

fn run(args: &[&str]) -> Output {
    hygeia(args)
}

fn ok_json(output: Output) -> Value {
    assert!(
        output.status.success(),
        "hygeia failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

fn refused(output: Output, code: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "expected a refusal with {code}");
    assert!(stderr.contains(code), "expected {code} in: {stderr}");
}

fn key(p: &Person) -> &str {
    p.key.to_str().unwrap()
}

#[test]
fn patient_controlled_records_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let governance = person(dir.path(), "governance");
    let clinic_admin = person(dir.path(), "clinic-admin");
    let clinician = person(dir.path(), "clinician");
    let patient = person(dir.path(), "patient");
    let data = dir.path().join("node");
    let node = NodeProcess::start_with(&data, &["--governance", &governance.did]);
    let url = node.url.as_str();

    // The network registers a clinic; the clinic registers its clinician.
    ok_json(run(&[
        "org",
        "register",
        "--key",
        key(&governance),
        "--node",
        url,
        "--org",
        "did:web:clinic.example",
        "--admin",
        &clinic_admin.did,
        "--kind",
        "clinic",
    ]));
    ok_json(run(&[
        "org",
        "member",
        "--key",
        key(&clinic_admin),
        "--node",
        url,
        "--org",
        "did:web:clinic.example",
        "--member",
        &clinician.did,
        "--role",
        "clinician",
        "--jurisdiction",
        "FR",
    ]));
    // A licensing board the network trusts licenses the clinician: reads for
    // treatment need a licence.
    let board = person(dir.path(), "board");
    ok_json(run(&[
        "trust",
        "add",
        "--key",
        key(&governance),
        "--node",
        url,
        "--issuer",
        &board.did,
        "--type",
        "licence",
        "--jurisdiction",
        "FR",
    ]));
    let licence = dir.path().join("licence.sd-jwt");
    let issued = run(&[
        "credential",
        "issue",
        "licence",
        "--key",
        key(&board),
        "--holder",
        &clinician.did,
        "--profession",
        "physician",
        "--jurisdiction",
        "FR",
        "--out",
        licence.to_str().unwrap(),
    ]);
    assert!(issued.status.success(), "{issued:?}");
    ok_json(run(&[
        "licence",
        "register",
        "--key",
        key(&clinician),
        "--node",
        url,
        licence.to_str().unwrap(),
    ]));

    // The patient uploads two records.
    let lab_file = dir.path().join("hba1c.json");
    let lab_content = br#"{"resourceType":"Observation","code":{"text":"HbA1c"},"valueQuantity":{"value":6.4,"unit":"%"}}"#;
    std::fs::write(&lab_file, lab_content).unwrap();
    let notes_file = dir.path().join("notes.json");
    std::fs::write(
        &notes_file,
        br#"{"resourceType":"Observation","note":[{"text":"synthetic session note"}]}"#,
    )
    .unwrap();
    let lab = ok_json(run(&[
        "record",
        "put",
        "--key",
        key(&patient),
        "--node",
        url,
        "--category",
        "lab",
        "--type",
        "Observation",
        lab_file.to_str().unwrap(),
    ]));
    let lab_id = lab["record"].as_str().unwrap().to_owned();
    let notes = ok_json(run(&[
        "record",
        "put",
        "--key",
        key(&patient),
        "--node",
        url,
        "--category",
        "mental-health",
        "--type",
        "Observation",
        notes_file.to_str().unwrap(),
    ]));
    let notes_id = notes["record"].as_str().unwrap().to_owned();

    // No consent: the clinician is denied.
    let read = |who: &Person, record: &str, extra: &[&str]| {
        let out = dir.path().join("out.bin");
        let _ = std::fs::remove_file(&out);
        let mut args = vec![
            "record",
            "get",
            "--key",
            key(who),
            "--node",
            url,
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        args.push(record);
        let output = run(&args);
        let content = std::fs::read(&out).ok();
        (output, content)
    };
    let (output, _) = read(&clinician, &lab_id, &[]);
    refused(output, "access_denied");

    // The patient grants a 30-day TREAT read on lab results.
    let grant = ok_json(run(&[
        "consent",
        "grant",
        "--key",
        key(&patient),
        "--node",
        url,
        "--to",
        &clinician.did,
        "--categories",
        "lab",
        "--purpose",
        "TREAT",
        "--days",
        "30",
    ]));
    let grant_id = grant["grant"].as_str().unwrap().to_owned();

    // Lab results: permitted. Mental-health notes: denied.
    let (output, content) = read(&clinician, &lab_id, &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(content.as_deref(), Some(&lab_content[..]));
    let (output, _) = read(&clinician, &notes_id, &[]);
    refused(output, "access_denied");

    // The patient revokes; the next read is denied.
    ok_json(run(&[
        "consent",
        "revoke",
        "--key",
        key(&patient),
        "--node",
        url,
        &grant_id,
    ]));
    let (output, _) = read(&clinician, &lab_id, &[]);
    refused(output, "access_denied");

    // Break-glass: permitted and flagged.
    let (output, content) = read(
        &clinician,
        &lab_id,
        &[
            "--purpose",
            "ETREAT",
            "--break-glass",
            "patient unconscious in the ER, HbA1c needed",
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("break-glass"));
    assert_eq!(content.as_deref(), Some(&lab_content[..]));

    // The patient lists every decision; each is verified offline (checkpoint
    // signature, inclusion proof, node signature) by the CLI.
    let info: Value = node.get("/v1/node").json().unwrap();
    let vkey = info["checkpoint_verifier_key"].as_str().unwrap();
    let feed = ok_json(run(&[
        "audit",
        "--key",
        key(&patient),
        "--node",
        url,
        "--verifier-key",
        vkey,
        "--json",
    ]));
    let events = feed["events"].as_array().unwrap();
    // 2 uploads, deny, permit, deny, deny, break-glass permit.
    assert_eq!(events.len(), 7, "{feed:#}");
    assert_eq!(events[0]["break_glass"], true, "break-glass comes first");
    assert_eq!(events[0]["event"]["requester"], clinician.did.as_str());
    assert_eq!(
        events[0]["justification"],
        "patient unconscious in the ER, HbA1c needed"
    );
    let decisions: Vec<&str> = events[1..]
        .iter()
        .map(|e| e["event"]["decision"].as_str().unwrap())
        .collect();
    assert_eq!(
        decisions,
        ["deny", "deny", "permit", "deny", "permit", "permit"]
    );
    // No PHI: the justification is not in any ledger entry.
    for event in events {
        assert!(!event["entry"].as_str().unwrap().contains("unconscious"));
    }
    // The human-readable listing also verifies.
    let listing = run(&[
        "audit",
        "--key",
        key(&patient),
        "--node",
        url,
        "--verifier-key",
        vkey,
    ]);
    assert!(listing.status.success());
    assert!(String::from_utf8_lossy(&listing.stdout).contains("BREAK-GLASS"));

    // The patient erases the notes: 410, and the whole ledger still verifies.
    ok_json(run(&[
        "record",
        "erase",
        "--key",
        key(&patient),
        "--node",
        url,
        &notes_id,
    ]));
    let (output, _) = read(&patient, &notes_id, &[]);
    refused(output, "record_erased");
    let (output, content) = read(&patient, &lab_id, &[]);
    assert!(output.status.success());
    assert_eq!(content.as_deref(), Some(&lab_content[..]));
    let verify = run(&["verify", url, "--key", vkey]);
    assert!(
        verify.status.success(),
        "{} {}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );

    // The state is a replay of the log: after a restart, the same answers.
    drop(node);
    let node = NodeProcess::start(&data);
    let url = node.url.as_str();
    let out = dir.path().join("after.bin");
    refused(
        run(&[
            "record",
            "get",
            "--key",
            key(&patient),
            "--node",
            url,
            "--out",
            out.to_str().unwrap(),
            &notes_id,
        ]),
        "record_erased",
    );
    refused(
        run(&[
            "record",
            "get",
            "--key",
            key(&clinician),
            "--node",
            url,
            "--out",
            out.to_str().unwrap(),
            &lab_id,
        ]),
        "access_denied",
    );
    // The break-glass window survives the restart (it is ledger state).
    let output = run(&[
        "record",
        "get",
        "--key",
        key(&clinician),
        "--node",
        url,
        "--out",
        out.to_str().unwrap(),
        "--purpose",
        "ETREAT",
        &lab_id,
    ]);
    assert!(
        output.status.success(),
        "{:?} {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_demo_seeds_a_network_whose_banner_commands_work() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let mut child = std::process::Command::new(common::hygeia_bin())
        .args(["demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("HYGEIA_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = Vec::new();
    let mut url = None;
    for line in lines.by_ref().map_while(Result::ok) {
        if let Some(u) = line.strip_prefix("listening on ") {
            url = Some(u.to_owned());
            break;
        }
        banner.push(line);
    }
    // Keep draining, so the node never writes to a closed pipe.
    std::thread::spawn(move || for _ in lines {});
    let url = url.expect("the demo printed its URL");
    // The web apps' URLs and how to sign in, and dashboards with figures
    // from the demo data from the start (docs/apps.md).
    assert!(
        banner
            .iter()
            .any(|l| l.contains("/app/#/wallet") && l.contains("patient.key")),
        "{banner:#?}"
    );
    let kpis: Value = common::client()
        .get(format!("{url}/v1/app/kpis"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let figure = |id: &str| {
        kpis["figures"]
            .as_array()
            .and_then(|f| f.iter().find(|f| f["id"] == id))
            .and_then(|f| f["value"].as_f64())
            .unwrap_or_else(|| panic!("no {id} figure: {kpis}"))
    };
    assert!(figure("time-to-consent") >= 0.0);
    assert!(figure("repeat-tests-avoided") >= 1.0);
    assert!(figure("decisions") >= 3.0);
    let record_of = |category: &str| {
        banner
            .iter()
            .find(|l| l.split_whitespace().nth(1) == Some(category))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("no {category} record in the banner: {banner:#?}"))
            .to_owned()
    };
    let lab = record_of("lab");
    let keys = data.join("demo-keys");
    let key = |name: &str| {
        keys.join(format!("{name}.key"))
            .to_str()
            .unwrap()
            .to_owned()
    };
    let out = dir.path().join("out.json");
    let get = |who: &str, extra: &[&str], record: &str| {
        let mut args = vec![
            "record".to_owned(),
            "get".into(),
            "--node".into(),
            url.clone(),
            "--key".into(),
            key(who),
            "--out".into(),
            out.to_str().unwrap().into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(record.to_owned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&args)
    };
    refused(get("clinician", &[], &lab), "access_denied");
    let output = get("patient", &[], &lab);
    assert!(output.status.success());
    let resource: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(resource["resourceType"], "Observation");
    assert_eq!(resource["code"]["coding"][0]["code"], "4548-4");
    let clinician = Keypair::read_key_file(&keys.join("clinician.key"))
        .unwrap()
        .did()
        .to_string();
    ok_json(run(&[
        "consent",
        "grant",
        "--node",
        &url,
        "--key",
        &key("patient"),
        "--to",
        &clinician,
        "--categories",
        "lab",
        "--purpose",
        "TREAT",
        "--days",
        "30",
    ]));
    assert!(get("clinician", &[], &lab).status.success());
    refused(
        get("clinician", &[], &record_of("mental-health")),
        "access_denied",
    );
    // The research dataset: the banner's status command shows it flagged,
    // with the one member whose consent was revoked after publication.
    let status = banner
        .iter()
        .find(|l| l.trim_start().starts_with("hygeia dataset status"))
        .unwrap_or_else(|| panic!("no dataset command in the banner: {banner:#?}"));
    let args: Vec<&str> = status
        .split('#')
        .next()
        .unwrap()
        .split_whitespace()
        .skip(1)
        .collect();
    let dataset = ok_json(run(&args));
    assert_eq!(dataset["status"], "flagged", "{dataset}");
    assert_eq!(dataset["count"], 3, "{dataset}");
    assert_eq!(
        dataset["flagged"].as_array().map(Vec::len),
        Some(1),
        "{dataset}"
    );
    assert_eq!(
        dataset["flagged"][0]["reasons"],
        serde_json::json!(["grant_revoked"])
    );
    // The care program: patient-2 was paid; the banner's claim command
    // pays the demo patient once, a second claim is refused, and no proof
    // of a 7.4 % result can be made.
    let programs: Value = common::client()
        .get(format!("{url}/v1/programs"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(programs["programs"][0]["claims"], 1, "{programs}");
    let claim = banner
        .iter()
        .find(|l| l.trim_start().starts_with("hygeia program claim"))
        .unwrap_or_else(|| panic!("no claim command in the banner: {banner:#?}"));
    let args: Vec<&str> = claim.split_whitespace().skip(1).collect();
    ok_json(run(&args));
    refused(run(&args), "program.already_claimed");
    let high: Vec<String> = args
        .iter()
        .map(|a| a.replace("hba1c-patient.", "hba1c-patient-high."))
        .collect();
    let high: Vec<&str> = high.iter().map(String::as_str).collect();
    let output = run(&high);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("zk-value-out-of-range"));
    // The research-sharing programme: patient-2 was paid for the days of
    // their HRESCH grant and the researcher's read; the banner's command
    // shows it.
    let show = banner
        .iter()
        .find(|l| l.trim_start().starts_with("hygeia sharing show"))
        .unwrap_or_else(|| panic!("no sharing command in the banner: {banner:#?}"));
    let args: Vec<&str> = show.split_whitespace().skip(1).collect();
    let sharing = ok_json(run(&args));
    assert_eq!(sharing["claims"], 1, "{sharing}");
    let paid = sharing["paid"].as_u64().unwrap_or(0);
    // Six or seven days at 2, one read at 5.
    assert!(paid == 17 || paid == 19, "{sharing}");
    assert_eq!(sharing["fund"], 1_000 - paid, "{sharing}");
    // The oncology trial: one study after an approved amendment, five
    // subjects at different milestones, the clinic paid per milestone.
    let studies = ok_json(run(&["trial", "list", "--node", &url]));
    let study = &studies["studies"][0];
    assert_eq!(study["state"], "recruiting", "{studies}");
    assert_eq!(study["current_version"], "2.0");
    assert_eq!(
        (study["subjects"].as_u64(), study["enrolled"].as_u64()),
        (Some(5), Some(3))
    );
    let id = study["id"].as_str().unwrap();
    let shown = ok_json(run(&["trial", "show", "--node", &url, id]));
    let mut states: Vec<(String, bool)> = shown["subject_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["state"].as_str().unwrap().to_owned(),
                s["consent_current"].as_bool().unwrap(),
            )
        })
        .collect();
    states.sort();
    let expected = [
        ("eligible", false),
        ("ineligible", false),
        ("on-study", false),
        ("on-study", true),
        ("withdrawn", false),
    ];
    assert_eq!(states, expected.map(|(s, c)| (s.to_owned(), c)), "{shown}");
    // One endpoint assessment, of the re-consented subject on study.
    let endpoints: Vec<&Value> = shown["subject_list"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["endpoints"].as_array().unwrap().iter())
        .collect();
    assert_eq!(endpoints.len(), 1, "{shown}");
    assert_eq!(endpoints[0]["endpoint"], "primary");
    let clinic = ok_json(run(&[
        "unit",
        "balance",
        "--node",
        &url,
        "did:web:clinic.example",
    ]));
    assert_eq!(clinic["balances"]["eur-cents"], 330_000, "{clinic}");
    // The re-consented subject's wearable met the sponsor's rule: the
    // stipend escrowed to its study key was released to it.
    let reconsented = shown["subject_list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["consent_current"] == true)
        .unwrap();
    let stipend = ok_json(run(&[
        "unit",
        "balance",
        "--node",
        &url,
        reconsented["subject"].as_str().unwrap(),
    ]));
    assert_eq!(stipend["balances"]["eur-cents"], 10_000, "{stipend}");
    let verify = run(&["verify", &url]);
    assert!(verify.status.success());
    let _ = child.kill();
    let _ = child.wait();
}

/// A node that broke the rules — here, a log written behind the state
/// machine's back with a grant signed by someone who is not the patient —
/// is caught by `hygeia verify`, which replays the state.
#[test]
fn verify_replays_the_state_and_names_an_entry_the_rules_refuse() {
    use hygeia_ledger::store::LogWriter;
    use hygeia_ledger::tx::TxContext;
    use hygeia_ledger::{CheckpointSigner, LogStore, SignedTx, TxBuilder};

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    drop(NodeProcess::start(&data));
    let (store, origin) = LogStore::open_existing(&data.join("ledger.redb")).unwrap();
    let node_key = Keypair::read_key_file(&data.join("node.key")).unwrap();
    let mut writer = LogWriter::open(
        std::sync::Arc::new(store),
        CheckpointSigner::new(&origin, node_key).unwrap(),
    )
    .unwrap();
    let patient = Keypair::generate();
    let stranger = Keypair::generate();
    let modules = hygeia_state::txs::registry();
    let ctx = TxContext {
        network: &origin,
        modules: &modules,
    };
    let grant = |signer: &Keypair, nonce: &str| {
        let raw = TxBuilder {
            network: &origin,
            tx_type: "consent.grant",
            nonce: nonce.into(),
            body: serde_json::json!({"patient": patient.did().to_string(), "grantee": stranger.did().to_string(),
                "scope": {"categories": ["lab"]}, "actions": ["read"], "purpose": "TREAT", "not_before": 0, "not_after": 10}),
        }
        .sign(signer);
        SignedTx::parse(&raw, &ctx).unwrap()
    };
    let good = grant(&patient, "a");
    let bad = grant(&stranger, "b");
    writer.append_batch(&[&[good, bad]]).unwrap();
    drop(writer);

    let output = run(&["verify", data.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{stdout}");
    // Leaf 0 is the genesis entry, leaf 1 the good grant.
    assert!(stdout.contains("entry 2"), "{stdout}");
    assert!(
        stdout.contains("consent.grantee_widening")
            || stdout.contains("consent.not_patient_or_delegate"),
        "{stdout}"
    );
}

/// A record of several 64 KiB chunks, above the size the node decrypts in
/// one piece: it streams in and streams out, byte for byte.
#[test]
fn a_large_record_streams_in_and_out() {
    let dir = tempfile::tempdir().unwrap();
    let patient = person(dir.path(), "patient");
    let node = NodeProcess::start(&dir.path().join("node"));
    let url = node.url.as_str();
    let file = dir.path().join("study.dcm");
    let content: Vec<u8> = (0..3 * 1024 * 1024 + 12_345u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(&file, &content).unwrap();
    let put = ok_json(run(&[
        "record",
        "put",
        "--key",
        key(&patient),
        "--node",
        url,
        "--category",
        "imaging",
        "--type",
        "ImagingStudy",
        "--media-type",
        "application/dicom",
        file.to_str().unwrap(),
    ]));
    assert_eq!(put["size"], content.len());
    let out = dir.path().join("back.dcm");
    let output = run(&[
        "record",
        "get",
        "--key",
        key(&patient),
        "--node",
        url,
        "--out",
        out.to_str().unwrap(),
        put["record"].as_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        std::fs::read(&out).unwrap() == content,
        "the record came back different"
    );
}

/// The README's "diabetes incentive in five minutes" runs as written: its
/// commands, after the set-up the records walkthrough before it makes
/// (keys, a node with a governance key, the clinic), print what its
/// comments say. Needs bash and jq, like the walkthrough.
#[test]
fn the_readme_diabetes_walkthrough_runs_as_written() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let section = readme
        .split("## The diabetes incentive in five minutes")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("the README has the section");
    let script: String = section
        .split("```sh\n")
        .nth(1)
        .and_then(|block| block.split("\n```").next())
        .expect("the section has a sh block")
        .to_owned();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The node may take longer than the walkthrough's second to start
    // under a loaded test run: wait for it instead.
    let script = script
        .replace("127.0.0.1:7100", &format!("127.0.0.1:{port}"))
        .replace(
            "sleep 1;",
            &format!("for i in $(seq 100); do curl -sf http://127.0.0.1:{port}/v1/health >/dev/null && break; sleep 0.2; done;"),
        );
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = Path::new(common::hygeia_bin()).parent().unwrap();
    let setup = format!(
        "set -e\nGOV=$(hygeia key new --out governance.key)\nADMIN=$(hygeia key new --out clinic-admin.key)\n\
         hygeia key new --out patient.key >/dev/null\n\
         hygeia serve --data-dir ./node --listen 127.0.0.1:{port} --governance \"$GOV\" > setup.log 2>&1 &\n\
         for i in $(seq 100); do curl -sf http://127.0.0.1:{port}/v1/health >/dev/null && break; sleep 0.2; done\n\
         hygeia org register --node http://127.0.0.1:{port} --key governance.key --org did:web:clinic.example --admin \"$ADMIN\" --kind clinic >/dev/null\n\
         kill %1; wait\nset +e\n"
    );
    let output = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("{setup}{script}\nwait\n"))
        .current_dir(dir.path())
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin_dir.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("HYGEIA_LOG", "warn")
        .output()
        .expect("bash runs");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let expected: Vec<&str> = script
        .lines()
        .filter_map(|l| l.strip_prefix("# "))
        .filter(|l| l.starts_with('{') || l.starts_with("error:"))
        .collect();
    assert_eq!(expected.len(), 4, "{expected:?}");
    for line in expected {
        assert!(
            printed.contains(line),
            "the README says {line:?}; the commands printed:\n{printed}"
        );
    }
}
