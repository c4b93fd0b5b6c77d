//! Byzantine-fault-tolerant ordering of Hygeia's log between organizations,
//! on commonware's `simplex` consensus.
//!
//! Each organization runs one node; the validators are the custodian set
//! named by the log's genesis entry (the organizations' node keys, Ed25519,
//! so the same key signs transactions, checkpoints and consensus votes).
//! With `n = 3f + 1` validators, `2f + 1` votes finalize a block and up to
//! `f` of them may misbehave.
//!
//! What is ordered are blocks of client submissions ([`block::Block`]).
//! Before voting for a block a node executes it on the state after its
//! parent ([`application`]): a block holding anything the rules refuse gets
//! no vote. Every node appends each finalized block, in order, to its own
//! log through the ledger's single writer, so all honest logs hold the same
//! entries and have the same roots at every size.
//!
//! [`start`] starts one node's consensus engine and application on any
//! commonware runtime (tokio in production, the deterministic runtime in
//! tests) and p2p network (`authenticated::lookup` between organizations,
//! the simulated network in tests), and returns a [`BftOrderer`], which
//! implements the same [`hygeia_ledger::Orderer`] trait as the embedded
//! single-node [`hygeia_ledger::Sequencer`].

//!
//! The block codec ([`block`]) and the block channel's message codec
//! ([`wire`]) need none of the engine: without the default `engine`
//! feature the crate is those codecs alone (the fuzz targets link it so).

#[cfg(feature = "engine")]
pub mod application;
pub mod block;
#[cfg(feature = "engine")]
pub mod chain;
#[cfg(feature = "engine")]
pub mod net;
#[cfg(feature = "engine")]
mod orderer;
pub mod wire;

#[cfg(feature = "engine")]
pub use orderer::*;

#[cfg(all(test, feature = "engine"))]
mod tests;
