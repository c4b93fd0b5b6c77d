//! The web apps' follower view (`hygeia_node::views`) reads every log
//! entry: whatever bytes an entry holds, following it and computing the
//! dashboards' figures must never panic. The input is split into entries
//! on newlines, so one run follows a short log.
#![no_main]

use hygeia_node::views::{kpis, LedgerView};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut view = LedgerView::default();
    for (index, entry) in data.split(|&b| b == b'\n').enumerate() {
        view.apply(index as u64, entry);
    }
    let figures = kpis::all(&view, 1_800_000_000);
    for figure in figures {
        assert!(figure.bars.iter().all(|b| b.value >= 0.0), "{figure:?}");
    }
    let _ = view.grants_to("did:key:z6Mk");
});
