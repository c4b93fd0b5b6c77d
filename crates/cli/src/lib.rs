//! What the `hygeia` command shares with its tests and with tools built on
//! top of it: issuing a clinician licence and building the presentation
//! that registers it on a node. The commands themselves live in the
//! binary (`src/main.rs`).

pub mod licensing;
