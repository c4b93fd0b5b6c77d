//! Key files: PKCS#8 PEM (RFC 8410), readable by OpenSSL and most toolkits,
//! written with permissions 0600 and refused when others can read them.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::SigningKey;

use crate::keys::Keypair;

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} already exists; refusing to overwrite a key (move it away first)")]
    Exists { path: String },
    #[error("{path} is readable by other users (mode {mode:o}); run `chmod 600 {path}`")]
    TooOpen { path: String, mode: u32 },
    #[error("{path} is not a PKCS#8 PEM Ed25519 private key")]
    Malformed { path: String },
}

impl Keypair {
    /// Writes the key as PKCS#8 PEM to a new file, mode 0600. Never
    /// overwrites an existing file.
    pub fn write_key_file(&self, path: &Path) -> Result<(), KeyFileError> {
        let display = path.display().to_string();
        let pem = self
            .as_dalek()
            .to_pkcs8_pem(Default::default())
            .map_err(|_| KeyFileError::Malformed {
                path: display.clone(),
            })?;
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                KeyFileError::Exists {
                    path: display.clone(),
                }
            } else {
                KeyFileError::Io {
                    path: display.clone(),
                    source,
                }
            }
        })?;
        file.write_all(pem.as_bytes())
            .and_then(|_| file.sync_all())
            .map_err(|source| KeyFileError::Io {
                path: display,
                source,
            })
    }

    /// Reads a key file written by [`Keypair::write_key_file`] (or by
    /// `openssl genpkey -algorithm ed25519`).
    pub fn read_key_file(path: &Path) -> Result<Self, KeyFileError> {
        let pem = read_private_text(path)?;
        let key = SigningKey::from_pkcs8_pem(&pem).map_err(|_| KeyFileError::Malformed {
            path: path.display().to_string(),
        })?;
        Ok(Keypair::from_dalek(key))
    }
}

/// Reads a secret-bearing text file, refusing it (`TooOpen`) when its
/// group or others may read it. Any key file of the project goes through
/// here, whatever its format. The text is wiped when dropped.
pub fn read_private_text(path: &Path) -> Result<zeroize::Zeroizing<String>, KeyFileError> {
    let display = path.display().to_string();
    let metadata = fs::metadata(path).map_err(|source| KeyFileError::Io {
        path: display.clone(),
        source,
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyFileError::TooOpen {
                path: display,
                mode,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = metadata;
    fs::read_to_string(path)
        .map(zeroize::Zeroizing::new)
        .map_err(|source| KeyFileError::Io {
            path: display,
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_key_reads_back_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("me.key");
        let key = Keypair::generate();
        key.write_key_file(&path).unwrap();
        let back = Keypair::read_key_file(&path).unwrap();
        assert_eq!(back.did(), key.did());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("-----BEGIN PRIVATE KEY-----"));
    }

    #[test]
    fn never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("me.key");
        Keypair::generate().write_key_file(&path).unwrap();
        let err = Keypair::generate().write_key_file(&path).unwrap_err();
        assert!(matches!(err, KeyFileError::Exists { .. }));
    }

    #[cfg(unix)]
    #[test]
    fn refuses_a_world_readable_key() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("me.key");
        Keypair::generate().write_key_file(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = Keypair::read_key_file(&path).unwrap_err();
        assert!(matches!(err, KeyFileError::TooOpen { .. }), "{err}");
    }

    #[test]
    fn refuses_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("me.key");
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        options
            .open(&path)
            .unwrap()
            .write_all(b"not a key")
            .unwrap();
        let err = Keypair::read_key_file(&path).unwrap_err();
        assert!(matches!(err, KeyFileError::Malformed { .. }));
    }
}
