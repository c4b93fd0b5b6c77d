//! Files that hold secrets (guardian shares, openings, patient secrets):
//! created new, readable only by their owner, flushed to disk.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

/// Writes `text` to a new file, mode 0600. Never overwrites: an existing
/// file may be the only copy of an earlier secret.
pub fn write_new(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).with_context(|| {
        if path.exists() {
            format!("{} already exists; it is never overwritten", path.display())
        } else {
            format!("cannot create {}", path.display())
        }
    })?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Reads a file of at most `limit` bytes, naming it in errors.
pub fn read_limited(path: &Path, limit: u64) -> anyhow::Result<Vec<u8>> {
    let length = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    anyhow::ensure!(
        length <= limit,
        "{} is {length} bytes; at most {limit} are expected",
        path.display()
    );
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_overwrites_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        write_new(&path, "one").unwrap();
        let err = write_new(&path, "two").unwrap_err();
        assert!(format!("{err:#}").contains("never overwritten"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(read_limited(&path, 2).is_err());
        assert_eq!(read_limited(&path, 3).unwrap(), b"one");
    }
}
