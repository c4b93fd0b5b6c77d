pub mod bench;
pub mod bench_devices;
pub mod bench_economy;
pub mod bench_fhir;
pub mod cosign;
pub mod credential;
pub mod dataset;
pub mod demo_datasets;
pub mod demo_economy;
pub mod demo_fhir;
pub mod demo_records;
pub mod demo_sharing;
pub mod demo_trials;
pub mod device;
pub mod did;
pub mod economy;
pub mod fhir;
pub mod import;
pub mod key;
pub mod licence;
pub mod network;
mod private_file;
pub mod proof;
pub mod records;
pub mod recovery;
pub mod research;
pub mod serve;
pub mod sharing;
pub mod shc;
pub mod smart;
pub mod status;
pub mod trial;
pub mod trust;
pub mod tx;
pub mod verify;
pub mod zk;

/// The network name used when none is given.
pub const DEFAULT_NETWORK: &str = "hygeia.example/demo";

/// Fetches `GET {node}/v1/node`.
pub fn node_info(node: &str) -> anyhow::Result<serde_json::Value> {
    use anyhow::Context;
    let url = format!("{}/v1/node", node.trim_end_matches('/'));
    let response = reqwest::blocking::get(&url).with_context(|| format!("cannot reach {url}"))?;
    anyhow::ensure!(
        response.status().is_success(),
        "{url} answered {}",
        response.status()
    );
    response
        .json()
        .with_context(|| format!("{url} did not answer JSON"))
}

/// The `network` a node expects.
pub fn node_network(info: &serde_json::Value) -> anyhow::Result<String> {
    info["network"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("the node did not say its network name"))
}
