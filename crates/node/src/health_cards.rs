//! The node as a SMART Health Card issuer: its P-256 signing key, kept in
//! `<data-dir>/shc-issuer.key`, and the issuer URL (`iss`) its cards name.
//!
//! The key is made at the first start of a data directory and never
//! replaced by the node: a card stays verifiable only while its `kid` is in
//! the key set served at `<iss>/.well-known/jwks.json`.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hygeia_credentials::shc::{IssuerKey, Jwks};
use serde_json::Value;
use zeroize::{Zeroize, Zeroizing};

use crate::config::{NodeConfig, SHC_ISSUER_KEY_FILE};

/// Why the issuer key or URL cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum IssuerError {
    #[error("cannot use the health-card issuer key {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the health-card issuer key {path} is readable by others (mode {mode:o}); it must be 0600"
    )]
    TooOpen { path: String, mode: u32 },
    #[error("the health-card issuer key {path} is damaged: {reason}")]
    Malformed { path: String, reason: String },
    #[error("{0}")]
    PublicUrl(String),
}

impl IssuerError {
    pub fn code(&self) -> &'static str {
        match self {
            IssuerError::Io { .. } => "issuer-key-io",
            IssuerError::TooOpen { .. } => "issuer-key-too-open",
            IssuerError::Malformed { .. } => "issuer-key-malformed",
            IssuerError::PublicUrl(_) => "invalid-public-url",
        }
    }
}

/// The node's health-card issuer: what it signs with and the `iss` it
/// writes.
pub struct HealthCardIssuer {
    key: IssuerKey,
    iss: String,
}

impl HealthCardIssuer {
    /// Loads the issuer key from `data_dir` (creating it at the first
    /// start) and settles the issuer URL from `config`.
    pub fn open(data_dir: &Path, config: &NodeConfig) -> Result<HealthCardIssuer, IssuerError> {
        let iss = issuer_url(config)?;
        let key = load_or_create_key(&data_dir.join(SHC_ISSUER_KEY_FILE))?;
        Ok(HealthCardIssuer { key, iss })
    }

    pub fn iss(&self) -> &str {
        &self.iss
    }

    pub fn key(&self) -> &IssuerKey {
        &self.key
    }

    /// The public key set served at `/.well-known/jwks.json`.
    pub fn jwks(&self) -> Jwks {
        self.key.jwks()
    }
}

/// The `iss` of this node's cards: `public_url`, or `https://<network>`.
/// It must be an `https` URL without a trailing `/`, query or fragment, so
/// that `<iss>/.well-known/jwks.json` names the key set.
pub fn issuer_url(config: &NodeConfig) -> Result<String, IssuerError> {
    let (url, origin) = match &config.public_url {
        Some(url) => (url.clone(), "--public-url"),
        None => (format!("https://{}", config.network), "the network name"),
    };
    let host = url.strip_prefix("https://").unwrap_or_default();
    let well_formed = !host.is_empty()
        && !host.starts_with('/')
        && !url.ends_with('/')
        && !url.contains(['?', '#'])
        && url.bytes().all(|b| b.is_ascii_graphic());
    if well_formed {
        Ok(url)
    } else {
        Err(IssuerError::PublicUrl(format!(
            "the health-card issuer URL {url:?} (from {origin}) must be an https URL without a trailing '/', query or fragment; give one with --public-url"
        )))
    }
}

fn load_or_create_key(path: &Path) -> Result<IssuerKey, IssuerError> {
    if path.exists() {
        return read_key(path);
    }
    let key = IssuerKey::generate();
    write_key(path, &key)?;
    tracing::info!(path = %path.display(), kid = %key.kid(), "created the health-card issuer key");
    Ok(key)
}

/// The key as a private JWK (RFC 7517): its public members and `d`.
fn private_jwk(key: &IssuerKey) -> Zeroizing<String> {
    let mut jwk = key.public_jwk().to_json();
    let secret = key.secret_bytes();
    let d = Zeroizing::new(URL_SAFE_NO_PAD.encode(secret.as_slice()));
    jwk["d"] = Value::String(d.to_string());
    let text = Zeroizing::new(jwk.to_string());
    if let Some(Value::String(d)) = jwk.get_mut("d") {
        d.zeroize();
    }
    text
}

/// Writes the key beside its final name, syncs it, then renames it in, so
/// a crash never leaves a half-written key that the next start would
/// refuse.
fn write_key(path: &Path, key: &IssuerKey) -> Result<(), IssuerError> {
    let io = |source| IssuerError::Io {
        path: path.display().to_string(),
        source,
    };
    let tmp = temporary_path(path);
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(io)?;
    file.write_all(private_jwk(key).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io)?;
    drop(file);
    fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent() {
        // The rename is durable once the directory is.
        if let Ok(dir) = fs::File::open(dir) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

fn read_key(path: &Path) -> Result<IssuerKey, IssuerError> {
    use hygeia_identity::KeyFileError;
    let display = path.display().to_string();
    let text = hygeia_identity::key_file::read_private_text(path).map_err(|e| match e {
        KeyFileError::TooOpen { path, mode } => IssuerError::TooOpen { path, mode },
        KeyFileError::Io { path, source } => IssuerError::Io { path, source },
        other => IssuerError::Malformed {
            path: display.clone(),
            reason: other.to_string(),
        },
    })?;
    let malformed = |reason: String| IssuerError::Malformed {
        path: display.clone(),
        reason,
    };
    let value: Value =
        serde_json::from_str(&text).map_err(|e| malformed(format!("not JSON ({e})")))?;
    IssuerKey::from_private_jwk(&value).map_err(|e| malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(network: &str, public_url: Option<&str>) -> NodeConfig {
        let mut config = NodeConfig::new(
            PathBuf::from("unused"),
            "127.0.0.1:0".parse().unwrap(),
            network.to_owned(),
        );
        config.public_url = public_url.map(str::to_owned);
        config
    }

    #[test]
    fn the_key_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let config = config("hygeia.example/demo", None);
        let first = HealthCardIssuer::open(dir.path(), &config).unwrap();
        let path = dir.path().join(SHC_ISSUER_KEY_FILE);
        let written = fs::read(&path).unwrap();
        let second = HealthCardIssuer::open(dir.path(), &config).unwrap();
        assert_eq!(first.key().kid(), second.key().kid());
        assert_eq!(
            *first.key().secret_bytes(),
            *second.key().secret_bytes(),
            "the second start must load the same key"
        );
        assert_eq!(
            fs::read(&path).unwrap(),
            written,
            "the file is not rewritten"
        );
        assert!(!temporary_path(&path).exists());
        // Another data directory gets another key.
        let other = tempfile::tempdir().unwrap();
        let third = HealthCardIssuer::open(other.path(), &config).unwrap();
        assert_ne!(first.key().kid(), third.key().kid());
    }

    #[test]
    fn the_key_file_is_a_private_jwk_matching_the_published_key() {
        let dir = tempfile::tempdir().unwrap();
        let issuer = HealthCardIssuer::open(dir.path(), &config("a.example/n", None)).unwrap();
        let value: Value =
            serde_json::from_slice(&fs::read(dir.path().join(SHC_ISSUER_KEY_FILE)).unwrap())
                .unwrap();
        assert_eq!(value["kty"], "EC");
        assert_eq!(value["crv"], "P-256");
        assert_eq!(value["kid"], issuer.key().kid());
        assert!(value["d"].as_str().is_some_and(|d| d.len() == 43));
        let published = issuer.jwks().to_json();
        assert!(published["keys"][0].get("d").is_none());
        assert_eq!(published["keys"][0]["kid"], issuer.key().kid());
    }

    #[cfg(unix)]
    #[test]
    fn the_key_file_is_private_and_an_open_one_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let config = config("a.example/n", None);
        HealthCardIssuer::open(dir.path(), &config).unwrap();
        let path = dir.path().join(SHC_ISSUER_KEY_FILE);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = HealthCardIssuer::open(dir.path(), &config)
            .err()
            .expect("an open key file is refused");
        assert_eq!(err.code(), "issuer-key-too-open");
    }

    #[cfg(unix)]
    #[test]
    fn a_damaged_key_file_is_refused_not_replaced() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SHC_ISSUER_KEY_FILE);
        let config = config("a.example/n", None);
        for damaged in [
            &b"not json"[..],
            b"{}",
            br#"{"kty":"EC","crv":"P-256","d":"AAAA"}"#,
        ] {
            fs::write(&path, damaged).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
            let err = HealthCardIssuer::open(dir.path(), &config)
                .err()
                .expect("a damaged key is refused");
            assert_eq!(err.code(), "issuer-key-malformed");
            assert_eq!(fs::read(&path).unwrap(), damaged, "never overwritten");
        }
        // A key whose public half does not match its secret.
        let a = IssuerKey::generate();
        let b = IssuerKey::generate();
        let mut jwk: Value = serde_json::from_str(&private_jwk(&a)).unwrap();
        jwk["x"] = b.public_jwk().to_json()["x"].clone();
        jwk.as_object_mut().unwrap().remove("kid");
        fs::write(&path, jwk.to_string()).unwrap();
        let err = HealthCardIssuer::open(dir.path(), &config)
            .err()
            .expect("a mismatched key is refused");
        assert_eq!(err.code(), "issuer-key-malformed");
    }

    #[test]
    fn issuer_urls() {
        assert_eq!(
            issuer_url(&config("hygeia.example/demo", None)).unwrap(),
            "https://hygeia.example/demo"
        );
        assert_eq!(
            issuer_url(&config(
                "x.example/n",
                Some("https://cards.example.org/shc")
            ))
            .unwrap(),
            "https://cards.example.org/shc"
        );
        for bad in [
            "http://cards.example.org",
            "https://cards.example.org/",
            "https://",
            "https://cards.example.org?x",
            "cards.example.org",
        ] {
            let err = issuer_url(&config("x.example/n", Some(bad))).unwrap_err();
            assert_eq!(err.code(), "invalid-public-url", "{bad}");
        }
        let err = issuer_url(&config("x.example/n/", None)).unwrap_err();
        assert_eq!(err.code(), "invalid-public-url");
    }
}
