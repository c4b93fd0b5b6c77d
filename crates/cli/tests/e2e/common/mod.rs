//! Starts real `hygeia` processes for end-to-end tests.
#![allow(dead_code)]

pub mod signed;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use hygeia_identity::Keypair;
use hygeia_ledger::TxBuilder;
use serde_json::json;

pub const NETWORK: &str = "test.example/log";

pub fn hygeia_bin() -> &'static str {
    env!("CARGO_BIN_EXE_hygeia")
}

/// A node running as a child process.
pub struct NodeProcess {
    child: Child,
    pub url: String,
    pub data_dir: PathBuf,
}

impl NodeProcess {
    pub fn start(data_dir: &Path) -> NodeProcess {
        Self::start_with(data_dir, &[])
    }

    pub fn start_with(data_dir: &Path, extra: &[&str]) -> NodeProcess {
        Self::start_listening(data_dir, "127.0.0.1:0", extra)
    }

    /// Like [`NodeProcess::start_with`], with HTTP on `listen`.
    pub fn start_listening(data_dir: &Path, listen: &str, extra: &[&str]) -> NodeProcess {
        let mut child = Command::new(hygeia_bin())
            .args([
                "serve",
                "--listen",
                listen,
                "--network",
                NETWORK,
                "--data-dir",
            ])
            .arg(data_dir)
            .args(extra)
            .env("HYGEIA_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start hygeia serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let (found, url) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("listening on ") {
                    let _ = found.send(url.to_string());
                }
            }
        });
        let url = url
            .recv_timeout(Duration::from_secs(60))
            .expect("the node printed its URL within 60 s");
        NodeProcess {
            child,
            url,
            data_dir: data_dir.to_path_buf(),
        }
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn get(&self, path: &str) -> reqwest::blocking::Response {
        client()
            .get(format!("{}{path}", self.url))
            .send()
            .expect("GET")
    }

    pub fn post_json(&self, path: &str, body: Vec<u8>) -> reqwest::blocking::Response {
        client()
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .expect("POST")
    }

    pub fn tree_size(&self) -> u64 {
        let info: serde_json::Value = self.get("/v1/health").json().expect("health JSON");
        info["tree_size"].as_u64().expect("tree_size")
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// Runs the CLI to completion.
pub fn hygeia(args: &[&str]) -> Output {
    Command::new(hygeia_bin())
        .args(args)
        .env("HYGEIA_LOG", "warn")
        .output()
        .expect("run hygeia")
}

/// A signed attest transaction for the test network.
pub fn attest(key: &Keypair, nonce: &str) -> Vec<u8> {
    TxBuilder {
        network: NETWORK,
        tx_type: "attest",
        nonce: nonce.to_string(),
        body: json!({"label": "test.event", "subject": format!("sha256:{}", "ab".repeat(32))}),
    }
    .sign(key)
}

/// A JSON array of transactions, as the batch endpoint takes.
pub fn batch_body(txs: &[Vec<u8>]) -> Vec<u8> {
    let mut body = b"[".to_vec();
    for (i, tx) in txs.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(tx);
    }
    body.push(b']');
    body
}
