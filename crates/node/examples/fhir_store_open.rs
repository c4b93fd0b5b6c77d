//! Time and memory of opening a FHIR store: `FhirStore::open` on a copy of
//! a node's `fhir.redb`, with the process's resident set before and after.
//!
//! `cargo run --release -p hygeia-node --example fhir_store_open <fhir.redb>`
//!
//! Open a copy: opening writes to the file (a store written before is
//! rewritten in the current row format, and the legacy table dropped).

use std::time::Instant;

use hygeia_node::fhir_store::FhirStore;

// The allocator of the `hygeia` binary, so that the resident set is the
// node's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A field of /proc/self/status, in kB.
fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: fhir_store_open <path to a copy of fhir.redb>")?;
    let before = status_kb("VmRSS:");
    let started = Instant::now();
    let store = FhirStore::open(std::path::Path::new(&path))?;
    let elapsed = started.elapsed();
    let after = status_kb("VmRSS:");
    let peak = status_kb("VmHWM:");
    let resources = store.len();
    println!(
        "resources {resources}  open {:.2} s  VmRSS before {:.1} MB, after {:.1} MB (+{:.1} MB, {:.0} B a resource)  VmHWM {:.1} MB",
        elapsed.as_secs_f64(),
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        (after - before) as f64 / 1024.0,
        (after - before) as f64 * 1024.0 / resources.max(1) as f64,
        peak as f64 / 1024.0,
    );
    Ok(())
}
