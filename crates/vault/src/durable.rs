//! File-system steps that make "acknowledged" mean "durable": data is
//! written to a temporary file, flushed to disk, atomically renamed into
//! place, and the directory entry itself is flushed.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use tempfile::NamedTempFile;

/// When a write becomes durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Durability {
    /// Flushed (file and directory) before the write returns.
    #[default]
    Immediate,
    /// Left to the page cache; the caller makes a batch of writes durable at
    /// once with [`sync_filesystem`] before acknowledging any of them (a
    /// group commit: one flush instead of several per record).
    Deferred,
}

/// Flushes everything written to the file system holding `path` (Linux
/// `syncfs`): the group commit of [`Durability::Deferred`] writes.
pub fn sync_filesystem(path: &Path) -> io::Result<()> {
    let dir = File::open(path)?;
    #[cfg(target_os = "linux")]
    rustix::fs::syncfs(&dir)?;
    #[cfg(not(target_os = "linux"))]
    dir.sync_all()?;
    Ok(())
}

/// Flushes a directory's entries (a rename or an unlink in it) to disk.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Creates `dir` and any missing parents, flushing each new entry.
/// Creates `<root>/tmp` durably and removes the files a crash left in it
/// (temporary files never renamed into place, so never acknowledged).
pub(crate) fn empty_tmp_dir(root: &Path) -> io::Result<std::path::PathBuf> {
    let tmp = root.join("tmp");
    create_dir_all(&tmp)?;
    for entry in std::fs::read_dir(&tmp)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(tmp)
}

pub(crate) fn create_dir_all(dir: &Path) -> io::Result<()> {
    create_dir_all_with(dir, Durability::Immediate)
}

pub(crate) fn create_dir_all_with(dir: &Path, durability: Durability) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dir_all_with(parent, durability)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        // Another writer created it in the meantime.
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(err) => return Err(err),
    }
    match (dir.parent(), durability) {
        (Some(parent), Durability::Immediate) => sync_dir(parent),
        _ => Ok(()),
    }
}

/// Makes a temporary file's content durable and renames it to `dest`
/// (replacing any file there), then flushes `dest`'s directory.
pub(crate) fn persist(tmp: NamedTempFile, dest: &Path, durability: Durability) -> io::Result<()> {
    if durability == Durability::Immediate {
        tmp.as_file().sync_all()?;
    }
    let dir = dest
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no parent directory"))?;
    create_dir_all_with(dir, durability)?;
    tmp.persist(dest).map_err(|err| err.error)?;
    match durability {
        Durability::Immediate => sync_dir(dir),
        Durability::Deferred => Ok(()),
    }
}

/// Writes `bytes` to `dest` atomically and durably, staging in `tmp_dir`
/// (which must be on the same file system).
pub(crate) fn write_file(
    tmp_dir: &Path,
    dest: &Path,
    bytes: &[u8],
    durability: Durability,
) -> io::Result<()> {
    let mut tmp = NamedTempFile::new_in(tmp_dir)?;
    tmp.write_all(bytes)?;
    persist(tmp, dest, durability)
}

/// Overwrites a file's bytes in place with zeros, flushes them, then unlinks
/// the file and flushes its directory. Returns whether the file existed.
///
/// This removes the bytes from the file system's view of the file. It cannot
/// guarantee that no physical copy survives: SSD wear levelling, copy-on-write
/// and journaling file systems (btrfs, ZFS, APFS, data=journal ext4),
/// snapshots and backups may keep old blocks. See the `keyring` module for what
/// the design relies on instead.
pub(crate) fn shred_file(path: &Path) -> io::Result<bool> {
    let mut file = match OpenOptions::new().write(true).open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(err) => return Err(err),
    };
    let len = file.metadata()?.len();
    let zeros = [0u8; 4096];
    let mut left = len;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        file.write_all(&zeros[..n])?;
        left -= n as u64;
    }
    file.sync_all()?;
    drop(file);
    fs::remove_file(path)?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shred_overwrites_in_place_before_unlinking() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret");
        fs::write(&path, [0xAB; 10_000]).expect("write");
        // A second name for the same inode sees what happened to its bytes.
        let witness = dir.path().join("witness");
        fs::hard_link(&path, &witness).expect("hard link");

        assert!(shred_file(&path).expect("shred"));
        assert!(!path.exists());
        assert_eq!(fs::read(&witness).expect("read"), vec![0u8; 10_000]);
        assert!(!shred_file(&path).expect("second shred"));
    }

    #[test]
    fn write_file_replaces_atomically() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("a/b/c");
        write_file(dir.path(), &dest, b"one", Durability::Immediate).expect("write");
        write_file(dir.path(), &dest, b"two", Durability::Deferred).expect("rewrite");
        sync_filesystem(dir.path()).expect("syncfs");
        assert_eq!(fs::read(&dest).expect("read"), b"two");
        // Only the destination remains: no stray temporary files.
        assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 1);
    }
}
