//! A client of a node's API that signs its requests (RFC 9421, docs/auth.md)
//! and its transactions with the user's key file.

use std::io::Read;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use hygeia_identity::Keypair;
use hygeia_ledger::TxBuilder;
use reqwest::blocking::{Body, Client as Http, RequestBuilder, Response};
use reqwest::Method;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Uploads at least this large show a progress bar.
const PROGRESS_BYTES: u64 = 8 << 20;

pub struct Client {
    base: String,
    http: Http,
    pub key: Keypair,
    network: Option<String>,
}

/// What an upload says about its record.
pub struct RecordUpload<'a> {
    pub patient: &'a str,
    pub category: &'a str,
    pub resource_type: &'a str,
    pub media_type: &'a str,
    /// An HL7 purpose-of-use code (letters only, so no URL encoding).
    pub purpose: &'a str,
}

/// A refusal by the node, with its stable code.
#[derive(Debug, thiserror::Error)]
#[error("{status}: {code}: {message}")]
pub struct Refused {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub body: Value,
}

impl Client {
    pub fn new(node: &str, key_file: &Path) -> anyhow::Result<Client> {
        let key = Keypair::read_key_file(key_file)
            .with_context(|| format!("cannot use key file {}", key_file.display()))?;
        Ok(Client::with_key(node, key))
    }

    pub fn with_key(node: &str, key: Keypair) -> Client {
        Client {
            base: node.trim_end_matches('/').to_owned(),
            http: Http::builder()
                .timeout(None)
                .build()
                .unwrap_or_else(|_| Http::new()),
            key,
            network: None,
        }
    }

    pub fn did(&self) -> String {
        self.key.did().to_string()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request signed for `path_and_query`, with a body digest if given.
    fn signed(
        &self,
        method: Method,
        path_and_query: &str,
        body_sha256: Option<[u8; 32]>,
    ) -> anyhow::Result<RequestBuilder> {
        let created = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let headers = hygeia_auth::sign_request(
            &self.key,
            &method,
            path_and_query,
            body_sha256,
            created,
            &hygeia_auth::random_nonce(),
        )?;
        let mut request = self
            .http
            .request(method, self.url(path_and_query))
            .header("signature-input", headers.signature_input)
            .header("signature", headers.signature);
        if let Some(digest) = headers.content_digest {
            request = request.header("content-digest", digest);
        }
        Ok(request)
    }

    /// A signed GET; extra headers are added after signing (they are not
    /// covered, by design of the scheme's required set).
    pub fn get(&self, path_and_query: &str, extra: &[(&str, String)]) -> anyhow::Result<Response> {
        let mut request = self.signed(Method::GET, path_and_query, None)?;
        for (name, value) in extra {
            request = request.header(*name, value);
        }
        request
            .send()
            .with_context(|| format!("cannot reach {}", self.base))
    }

    pub fn get_json(&self, path_and_query: &str) -> anyhow::Result<Value> {
        json_or_refusal(self.get(path_and_query, &[])?)
    }

    /// A signed POST of a JSON body (covered by its `Content-Digest`).
    pub fn post_json(&self, path: &str, body: Vec<u8>) -> anyhow::Result<Response> {
        let sha256: [u8; 32] = Sha256::digest(&body).into();
        self.signed(Method::POST, path, Some(sha256))?
            .header("content-type", "application/json")
            .body(body)
            .send()
            .with_context(|| format!("cannot reach {}", self.base))
    }

    /// A signed POST of a file, streamed, with its digest computed first.
    pub fn post_file(
        &self,
        path: &str,
        file: &Path,
        extra: &[(&str, String)],
    ) -> anyhow::Result<Response> {
        let sha256 = sha256_file(file)?;
        let length = std::fs::metadata(file)?.len();
        let handle =
            std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
        // Large uploads show progress on a terminal (hidden otherwise).
        let body = if length >= PROGRESS_BYTES {
            let bar = indicatif::ProgressBar::new(length).with_style(
                indicatif::ProgressStyle::with_template(
                    "uploading [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})",
                )
                .expect("static template")
                .progress_chars("=> "),
            );
            Body::sized(bar.wrap_read(handle), length)
        } else {
            Body::sized(handle, length)
        };
        let mut request = self
            .signed(Method::POST, path, Some(sha256))?
            .header("content-length", length)
            .body(body);
        for (name, value) in extra {
            request = request.header(*name, value);
        }
        request
            .send()
            .with_context(|| format!("cannot reach {}", self.base))
    }

    /// Uploads a record file as its author: signs the provenance statement
    /// over the file's SHA-256 and the metadata it binds, then streams the
    /// file (docs/records.md). Returns the node's answer.
    pub fn upload_record(&self, record: &RecordUpload<'_>, file: &Path) -> anyhow::Result<Value> {
        use base64::Engine;
        use hygeia_node::api::records::{
            provenance_message, CATEGORY_HEADER, PATIENT_HEADER, PROVENANCE_HEADER,
            RESOURCE_TYPE_HEADER,
        };
        let digest = sha256_file(file)?;
        let message = provenance_message(
            record.patient,
            record.category,
            record.resource_type,
            record.media_type,
            &digest,
        );
        let provenance = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(self.key.sign(&message).to_bytes());
        let response = self.post_file(
            &format!("/v1/records?purpose={}", record.purpose),
            file,
            &[
                (PATIENT_HEADER, record.patient.to_owned()),
                (CATEGORY_HEADER, record.category.to_owned()),
                (RESOURCE_TYPE_HEADER, record.resource_type.to_owned()),
                (PROVENANCE_HEADER, provenance),
                ("content-type", record.media_type.to_owned()),
            ],
        )?;
        json_or_refusal(response)
    }

    pub fn network(&mut self) -> anyhow::Result<String> {
        if let Some(network) = &self.network {
            return Ok(network.clone());
        }
        let info = crate::commands::node_info(&self.base)?;
        let network = crate::commands::node_network(&info)?;
        self.network = Some(network.clone());
        Ok(network)
    }

    /// Signs a transaction with the user's key and submits it.
    pub fn submit(&mut self, tx_type: &str, body: Value) -> anyhow::Result<Value> {
        let network = self.network()?;
        let raw = TxBuilder {
            network: &network,
            tx_type,
            nonce: crate::commands::tx::fresh_nonce(),
            body,
        }
        .sign(&self.key);
        let leaf_hash = hex::encode(hygeia_ledger::merkle::leaf_hash(&raw).0);
        let response = self
            .http
            .post(self.url("/v1/transactions"))
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .with_context(|| format!("cannot reach {}", self.base))?;
        let mut answer = json_or_refusal(response)?;
        answer["leaf_hash"] = Value::from(leaf_hash);
        Ok(answer)
    }
}

/// The JSON of a success, or the node's refusal as an error.
pub fn json_or_refusal(response: Response) -> anyhow::Result<Value> {
    let status = response.status();
    let body: Value = response.json().unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(body);
    }
    let error = &body["error"];
    if error.is_null() {
        bail!("the node answered {status}");
    }
    Err(Refused {
        status: status.as_u16(),
        code: error["code"].as_str().unwrap_or("?").to_owned(),
        message: error["message"].as_str().unwrap_or("").to_owned(),
        body,
    }
    .into())
}

pub fn sha256_file(path: &Path) -> anyhow::Result<[u8; 32]> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().into())
}
