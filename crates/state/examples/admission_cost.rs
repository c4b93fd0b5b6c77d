//! Admission cost of a record upload as the node submits it (an `access`
//! event and the `record` it logs, in one all-or-nothing submission),
//! against a state that already holds N grants and N records.
//!
//! ```sh
//! cargo run --release -p hygeia-state --example admission_cost
//! cargo run --release -p hygeia-state --example admission_cost -- --sizes 10000,1000000 --uploads 200
//! ```
//!
//! For each size it fills a state directly (N grants and N records over
//! N / 10 patients, no log), then times, one submission at a time:
//! `admit` of an accepted upload, `commit` of it (the reader state catches
//! up), and `admit` of a refused upload (its `record` repeats a known
//! commitment, so the submission is refused at its second transaction and
//! the writer goes back) followed by `abort`. Every submission is signed
//! before the clock starts. Prints medians and p99s, and the ratio of the
//! largest size's median to the smallest's.

use std::time::{Duration, Instant};

use hygeia_identity::Keypair;
use hygeia_ledger::tx::TxContext;
use hygeia_ledger::{SignedTx, StateMachine, TxBuilder};
use hygeia_policy::{Action, ConsentEvent, Grant, PurposeOfUse, Scope};
use hygeia_state::records::RecordEntry;
use hygeia_state::txs::{registry, Access, RecordBody, Verdict, ACCESS, RECORD};
use hygeia_state::writer::{Committed, SharedState, StateWriter};
use hygeia_state::LedgerState;

const NETWORK: &str = "bench.example/admission";
const GRANTEES: usize = 1_000;
const T0: i64 = 1_735_689_600;

struct Options {
    sizes: Vec<usize>,
    uploads: usize,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        sizes: vec![10_000, 1_000_000],
        uploads: 200,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--sizes" => {
                o.sizes = value
                    .split(',')
                    .map(|s| s.trim().parse().map_err(|_| format!("--sizes: {s:?}")))
                    .collect::<Result<_, _>>()?
            }
            "--uploads" => {
                o.uploads = value
                    .parse::<usize>()
                    .map_err(|_| format!("--uploads: {value:?}"))?
                    .max(1)
            }
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(o)
}

fn patient(i: usize) -> String {
    format!("did:key:zPatient{i:08}")
}

fn grantee(i: usize) -> String {
    format!("did:key:zClinician{i:05}")
}

fn commitment(i: usize) -> String {
    format!("{i:064x}")
}

/// A state holding `n` grants and `n` records over `n / 10` patients.
fn filled(node: &str, n: usize) -> LedgerState {
    let mut state = LedgerState::new(node.to_owned(), None);
    let patients = (n / 10).max(1);
    for i in 0..n {
        let p = patient(i % patients);
        // Replay would have noted every DID the log names.
        state.identities.note_known(&p);
        state.identities.note_known(&grantee(i % GRANTEES));
        let grant = Grant {
            id: format!("{:064x}", i + (1 << 40)),
            patient: p.clone(),
            grantee: grantee(i % GRANTEES),
            scope: Scope::categories(["lab"]),
            actions: [Action::Read].into_iter().collect(),
            purpose: PurposeOfUse::Treatment,
            not_before: T0,
            not_after: T0 + 365 * 86_400,
            jurisdictions: Default::default(),
        };
        state
            .policy
            .apply(&ConsentEvent::Grant {
                author: p.clone(),
                grant,
            })
            .expect("a generated grant is valid");
        state
            .records
            .insert(RecordEntry {
                commitment: commitment(i),
                patient: p.clone(),
                author: p,
                category: "lab".into(),
                resource_type: "Observation".into(),
                index: i as u64,
                erased_at: None,
                node: None,
            })
            .expect("a generated record is valid");
    }
    state
}

/// The node's submission for one upload: the `access` event, then the
/// `record` it logs.
fn upload(
    node: &Keypair,
    uploaders: &[String],
    ctx: &TxContext<'_>,
    nonce: usize,
    record: usize,
) -> Vec<SignedTx> {
    // A record body names a real did:key.
    let p = uploaders[record % uploaders.len()].clone();
    let access = Access {
        requester: p.clone(),
        patient: p.clone(),
        action: Action::Write,
        purpose: "TREAT".into(),
        records: vec![commitment(record)],
        decision: Verdict::Permit,
        break_glass: false,
        justified: false,
        reasons: vec!["patient-own-records".into()],
        grants: Vec::new(),
        governance_version: 1,
        time: T0 + 1_000,
    };
    let record = RecordBody {
        patient: p.clone(),
        author: p,
        category: "lab".into(),
        resource_type: "Observation".into(),
        commitment: commitment(record),
    };
    let sign = |tx_type: &str, i: usize, body: serde_json::Value| {
        let raw = TxBuilder {
            network: NETWORK,
            tx_type,
            nonce: format!("u{nonce}-{i}"),
            body,
        }
        .sign(node);
        SignedTx::parse(&raw, ctx).expect("a generated transaction parses")
    };
    vec![
        sign(ACCESS, 0, serde_json::to_value(access).expect("serializes")),
        sign(RECORD, 1, serde_json::to_value(record).expect("serializes")),
    ]
}

struct Times(Vec<Duration>);

impl Times {
    fn quantile(&mut self, q: f64) -> Duration {
        self.0.sort();
        let i = ((self.0.len() as f64 - 1.0) * q).round() as usize;
        self.0[i]
    }
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn main() {
    let o = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let modules = registry();
    let ctx = TxContext {
        network: NETWORK,
        modules: &modules,
    };
    let node = Keypair::from_seed(&[1; 32]);
    let node_did = node.did().to_string();
    let uploaders: Vec<String> = (2..99u8)
        .map(|i| Keypair::from_seed(&[i; 32]).did().to_string())
        .collect();
    println!("| grants and records | uploads | admit p50 | admit p99 | admit mean | commit p50 | refused admit + abort p50 | fill s |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut medians = Vec::new();
    for &n in &o.sizes {
        let t = Instant::now();
        let state = filled(&node_did, n);
        let fill = t.elapsed();
        let accepted: Vec<Vec<SignedTx>> = (0..o.uploads)
            .map(|i| upload(&node, &uploaders, &ctx, i, n + i))
            .collect();
        // Each refused upload repeats a commitment the state already holds.
        let refused: Vec<Vec<SignedTx>> = (0..o.uploads)
            .map(|i| upload(&node, &uploaders, &ctx, o.uploads + i, i % n.max(1)))
            .collect();
        let shared = SharedState::new(Committed::new(state));
        let mut writer = StateWriter::new(shared.clone(), Box::new(|_| {}));
        let (mut admit, mut commit, mut refuse) = (Vec::new(), Vec::new(), Vec::new());
        let mut index = n as u64;
        // A profiler attaches here, once the state is filled and the
        // uploads are signed (`perf record -p <pid>`).
        eprintln!("measuring {n} (pid {})", std::process::id());
        for (good, bad) in accepted.iter().zip(&refused) {
            let t = Instant::now();
            writer.admit(index, good).expect("an upload is admitted");
            admit.push(t.elapsed());
            let t = Instant::now();
            writer.commit();
            commit.push(t.elapsed());
            index += 2;

            let t = Instant::now();
            let refusal = writer.admit(index, bad);
            writer.abort();
            refuse.push(t.elapsed());
            assert!(refusal.is_err(), "a repeated record is refused");
        }
        let recorded = shared.read().state.records.len();
        assert_eq!(recorded, n + o.uploads, "readers see every upload");
        // The mean counts the rare costly admissions that a median hides:
        // an index folding its recent keys into its base (`layered.rs`),
        // and, on a loaded machine, the process waiting for a core.
        let mean = admit.iter().sum::<Duration>() / admit.len() as u32;
        let (mut admit, mut commit, mut refuse) = (Times(admit), Times(commit), Times(refuse));
        let median = admit.quantile(0.5);
        medians.push(median);
        println!(
            "| {n} | {} | {} | {} | {} | {} | {} | {:.1} |",
            o.uploads,
            us(median),
            us(admit.quantile(0.99)),
            us(mean),
            us(commit.quantile(0.5)),
            us(refuse.quantile(0.5)),
            fill.as_secs_f64(),
        );
    }
    if let (Some(first), Some(last)) = (medians.first(), medians.last()) {
        println!(
            "\nratio of admit medians, largest / smallest size: {:.2}",
            last.as_secs_f64() / first.as_secs_f64()
        );
    }
}
