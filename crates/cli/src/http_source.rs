//! A log source over HTTP: the node's C2SP tlog-tiles endpoints (or any
//! static host serving the same layout).

use hygeia_ledger::tiles::TilePath;
use hygeia_ledger::verify::LogSource;

pub struct HttpSource {
    base: String,
    client: reqwest::blocking::Client,
}

impl HttpSource {
    pub fn new(base: &str) -> anyhow::Result<Self> {
        Ok(HttpSource {
            base: base.trim_end_matches('/').to_string(),
            client: reqwest::blocking::Client::builder()
                .timeout(std::time::Duration::from_secs(60))
                .build()?,
        })
    }

    fn get(&self, path: &str) -> Result<Vec<u8>, String> {
        let url = format!("{}/{path}", self.base);
        let response = self
            .client
            .get(&url)
            .send()
            .map_err(|e| format!("{url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("{url}: HTTP {}", response.status()));
        }
        response
            .bytes()
            .map(|b| b.to_vec())
            .map_err(|e| format!("{url}: {e}"))
    }
}

impl LogSource for HttpSource {
    fn checkpoint(&self) -> Result<Vec<u8>, String> {
        self.get("checkpoint")
    }

    fn tile(&self, path: &TilePath) -> Result<Vec<u8>, String> {
        self.get(&path.to_string())
    }
}
