//! The Hygeia node: opens the data directory, runs the sequencer and serves
//! the HTTP API.

pub mod access;
pub mod api;
pub mod catch_up;
pub mod config;
pub mod custody;
pub mod disk_report;
pub mod fhir_store;
pub mod follower;
pub mod health_cards;
pub mod join;
pub mod migrate;
pub mod node;
pub mod ordering;
pub mod research;
pub mod server;
pub mod snapshots;
pub use hygeia_state as state;
pub mod timing;
pub mod views;
pub mod witness;

pub use config::NodeConfig;
pub use node::{Node, NodeError};
pub use server::{serve, ConnectionLimits};
