//! The end-to-end tests of the `hygeia` command: real node processes and
//! the CLI itself, driven over HTTP and the command line.
//!
//! One test binary with one module per area: each binary links the whole
//! node, so one binary instead of nine saves most of the link time of the
//! test build. Run one area with `cargo test -p hygeia-cli --test e2e
//! records::` (a module path filter).

mod common;

mod bad_input;
mod crash;
mod credentials;
mod credentials_shc;
mod fhir;
mod fhir_cli;
mod identity;
mod network;
mod readme;
mod records;
