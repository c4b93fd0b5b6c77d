//! The Hygeia node: opens the data directory, runs the sequencer and serves
//! the HTTP API.

pub mod api;
pub mod config;
pub mod node;

pub use config::NodeConfig;
pub use node::{serve, Node, NodeError};
