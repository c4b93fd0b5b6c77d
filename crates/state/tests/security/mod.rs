//! The state machine from an attacker's side: what a key the attacker
//! holds can do to everyone else's standing (docs/recovery.md,
//! docs/credentials.md).

mod attacker;
pub mod fixture;
mod identity;
mod policy;
mod status_lists;
