//! `hygeia migrate`: a data directory made before logs began with a
//! genesis entry gets a new log that does (docs/ledger.md, "Migration").
//!
//! A log is append-only and Merkle-hashed, so nothing can be put in front
//! of its leaf 0. The migration writes a new log instead: leaf 0 is a
//! genesis entry signed by the node's key, naming the old governance key
//! and the node as custodian, and recording the legacy prefix (how many
//! entries, their old root hash, the rules they were admitted under, the
//! old node and governance keys); leaves 1 to n are the old entries,
//! byte for byte, so every signature still verifies and every consent
//! grant keeps its id (a leaf hash). The old log is kept, untouched, in
//! `pre-genesis-backup/`. Before anything is written, the new log is
//! replayed: a log that would not replay is not migrated.
//!
//! The old log is read twice, a chunk of entries at a time (to replay it,
//! then to copy it from the backup), so a migration holds the state and
//! one chunk in memory, never the whole log.

use std::path::{Path, PathBuf};

use hygeia_identity::Keypair;
use hygeia_ledger::index::index_path;
use hygeia_ledger::store::LogWriter;
use hygeia_ledger::tx::TxContext;
use hygeia_ledger::{CheckpointSigner, LogStore, SignedTx, StoreError};

use crate::config::{LEDGER_FILE, NETWORK_FILE, NODE_KEY_FILE};
use crate::state::network::{self, Genesis, Legacy, LEGACY_RULES_V1};
use crate::state::{txs, LedgerState};

/// Where the old log is kept, inside the data directory.
pub const BACKUP_DIR: &str = "pre-genesis-backup";

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("{0} holds no {LEDGER_FILE}: is it a node's data directory?")]
    NoLog(String),
    #[error("the log is empty: a node writes the genesis entry itself at its next start")]
    Empty,
    #[error("the log already starts with a genesis entry: nothing to migrate")]
    AlreadyMigrated,
    #[error("{0} exists already: move it away first (it may hold an earlier migration's backup)")]
    BackupExists(String),
    #[error("old entry {index} does not replay under the rules it was admitted under: {message}; nothing was changed")]
    Replay { index: u64, message: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Key(#[from] hygeia_identity::KeyFileError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Other(String),
}

/// What a migration did.
#[derive(Debug)]
pub struct Migrated {
    /// Entries copied behind the genesis entry.
    pub entries: u64,
    /// The new network id: the genesis entry's leaf hash (hex).
    pub network_id: String,
    /// The old log's root hash at its size (hex).
    pub old_root: String,
    pub backup: PathBuf,
}

/// Migrates the data directory `dir` (see the module's documentation).
/// The node must not be running (the log's file is locked while it is).
pub fn migrate(dir: &Path) -> Result<Migrated, MigrateError> {
    let ledger = dir.join(LEDGER_FILE);
    if !ledger.exists() {
        return Err(MigrateError::NoLog(dir.display().to_string()));
    }
    let backup = dir.join(BACKUP_DIR);
    if backup.exists() {
        return Err(MigrateError::BackupExists(backup.display().to_string()));
    }
    let (entries, origin, old_root) = read_old_log(&ledger)?;
    let key = Keypair::read_key_file(&dir.join(NODE_KEY_FILE))?;
    let governance = read_governance(dir)?;
    let node = key.did().to_string();
    let genesis = Genesis {
        governance: governance.iter().cloned().collect(),
        custodians: vec![node.clone()],
        legacy: Some(Legacy {
            entries,
            root: old_root.clone(),
            rules: LEGACY_RULES_V1.into(),
            node,
            governance,
        }),
    };
    let modules = txs::registry();
    let ctx = TxContext {
        network: &origin,
        modules: &modules,
    };
    let genesis = network::genesis_tx(&origin, &key, &genesis, &modules)
        .map_err(|e| MigrateError::Other(format!("cannot sign the genesis entry: {e}")))?;
    replay(&ledger, &ctx, &genesis)?;

    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| MigrateError::Io { path, source }
    };
    std::fs::create_dir(&backup).map_err(io(&backup))?;
    let moved = [ledger.clone(), index_path(&ledger)];
    for file in moved.iter().filter(|f| f.exists()) {
        let to = backup.join(file.file_name().unwrap_or_default());
        std::fs::rename(file, &to).map_err(io(file))?;
    }
    let old_ledger = backup.join(LEDGER_FILE);
    match write_new_log(&ledger, &old_ledger, &ctx, &key, genesis) {
        Ok(network_id) => Ok(Migrated {
            entries,
            network_id,
            old_root,
            backup,
        }),
        Err(e) => {
            // Put the old log back where it was.
            for file in &moved {
                let _ = std::fs::remove_file(file);
                let from = backup.join(file.file_name().unwrap_or_default());
                if from.exists() {
                    let _ = std::fs::rename(&from, file);
                }
            }
            let _ = std::fs::remove_dir(&backup);
            Err(e)
        }
    }
}

/// Entries read, parsed and written at a time.
const CHUNK: usize = 4_096;

/// Calls `visit` with the entries of the log at `ledger`, in order,
/// [`CHUNK`] at a time, with the leaf index of each chunk's first entry.
fn for_each_chunk(
    ledger: &Path,
    mut visit: impl FnMut(u64, &[Vec<u8>]) -> Result<(), MigrateError>,
) -> Result<(), MigrateError> {
    let (store, _) = LogStore::open_existing(ledger)?;
    let snapshot = store.snapshot()?;
    let mut chunk: Vec<Vec<u8>> = Vec::with_capacity(CHUNK);
    let mut first = 0;
    let mut stopped = None;
    let walked = snapshot.for_each_entry(|index, entry| {
        if chunk.is_empty() {
            first = index;
        }
        chunk.push(entry.to_vec());
        if chunk.len() == CHUNK {
            if let Err(e) = visit(first, &chunk) {
                stopped = Some(e);
                return Err(StoreError::Corrupt("the migration stopped".into()));
            }
            chunk.clear();
        }
        Ok(())
    });
    if let Some(e) = stopped {
        return Err(e);
    }
    walked?;
    if !chunk.is_empty() {
        visit(first, &chunk)?;
    }
    Ok(())
}

/// Parses a chunk of old entries (signatures included); errors name the
/// old entry's index.
fn parse_chunk(
    ctx: &TxContext<'_>,
    first: u64,
    chunk: &[Vec<u8>],
) -> Result<Vec<SignedTx>, MigrateError> {
    let raws: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
    SignedTx::parse_many(&raws, ctx).map_err(|(i, e)| MigrateError::Replay {
        index: first + i as u64,
        message: e.to_string(),
    })
}

/// The old log's size, its network name and its root hash (hex).
fn read_old_log(ledger: &Path) -> Result<(u64, String, String), MigrateError> {
    let (store, origin) = LogStore::open_existing(ledger)?;
    let snapshot = store.snapshot()?;
    match snapshot.checkpoint() {
        Some(checkpoint) if checkpoint.size > 0 => {
            Ok((checkpoint.size, origin, hex::encode(checkpoint.root.0)))
        }
        _ => Err(MigrateError::Empty),
    }
}

fn read_governance(dir: &Path) -> Result<Option<String>, MigrateError> {
    let path = dir.join(NETWORK_FILE);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let file: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| MigrateError::Other(format!("{} is damaged: {e}", path.display())))?;
    Ok(file["governance"].as_str().map(str::to_owned))
}

/// Replays genesis and the old entries behind it, as the node will at
/// its next start.
fn replay(ledger: &Path, ctx: &TxContext<'_>, genesis: &SignedTx) -> Result<(), MigrateError> {
    let mut state = LedgerState::empty();
    state
        .apply(0, genesis)
        .map_err(|e| MigrateError::Other(format!("the genesis entry is refused: {e}")))?;
    for_each_chunk(ledger, |first, chunk| {
        if first == 0 && chunk.first().is_some_and(|e| network::is_genesis_entry(e)) {
            return Err(MigrateError::AlreadyMigrated);
        }
        for (i, tx) in parse_chunk(ctx, first, chunk)?.iter().enumerate() {
            let index = first + i as u64;
            state
                .apply(index + 1, tx)
                .map_err(|e| MigrateError::Replay {
                    index,
                    message: format!("{e} ({})", e.code.as_str()),
                })?;
        }
        Ok(())
    })
}

/// Writes genesis then the entries of the old log (at `old_ledger`) to a
/// new log; returns the network id.
fn write_new_log(
    ledger: &Path,
    old_ledger: &Path,
    ctx: &TxContext<'_>,
    key: &Keypair,
    genesis: SignedTx,
) -> Result<String, MigrateError> {
    let store = std::sync::Arc::new(LogStore::open(ledger, ctx.network)?);
    let signer = CheckpointSigner::new(ctx.network, Keypair::from_seed(&key.as_dalek().to_bytes()))
        .map_err(|e| MigrateError::Other(e.to_string()))?;
    let mut writer = LogWriter::open(store, signer)?;
    let network_id = hex::encode(genesis.leaf_hash().0);
    let mut expected = 0u64;
    let mut append = |txs: &[SignedTx]| -> Result<(), MigrateError> {
        let submissions: Vec<&[SignedTx]> = txs.iter().map(std::slice::from_ref).collect();
        for result in writer.append_batch(&submissions)?.results {
            match result {
                Ok(index) if index == expected => expected += 1,
                other => {
                    return Err(MigrateError::Other(format!(
                        "entry {expected} was not copied in place: {other:?}"
                    )))
                }
            }
        }
        Ok(())
    };
    append(std::slice::from_ref(&genesis))?;
    for_each_chunk(old_ledger, |first, chunk| {
        append(&parse_chunk(ctx, first, chunk)?)
    })?;
    Ok(network_id)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use hygeia_ledger::{ModuleRegistry, TxBuilder};

    use super::*;

    /// A pre-genesis log of `n` attestations, as nodes wrote before
    /// genesis existed; returns its entries.
    fn old_log(dir: &Path, n: usize) -> Vec<Vec<u8>> {
        const ORIGIN: &str = "old.hygeia.test";
        let node = Keypair::generate();
        node.write_key_file(&dir.join(NODE_KEY_FILE)).unwrap();
        let store = Arc::new(LogStore::open(&dir.join(LEDGER_FILE), ORIGIN).unwrap());
        let signer = CheckpointSigner::new(ORIGIN, node).unwrap();
        let mut writer = LogWriter::open(store, signer).unwrap();
        let modules = ModuleRegistry::with_builtins();
        let ctx = TxContext {
            network: ORIGIN,
            modules: &modules,
        };
        let author = Keypair::generate();
        let raws: Vec<Vec<u8>> = (0..n)
            .map(|i| {
                TxBuilder {
                    network: ORIGIN,
                    tx_type: "attest",
                    nonce: format!("old-{i}"),
                    body: serde_json::json!({"label": "lab.result", "subject": format!("sha256:{i:064x}")}),
                }
                .sign(&author)
            })
            .collect();
        for chunk in raws.chunks(1_000) {
            let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
            let txs = SignedTx::parse_many(&refs, &ctx).unwrap();
            let submissions: Vec<&[SignedTx]> = txs.iter().map(std::slice::from_ref).collect();
            writer.append_batch(&submissions).unwrap();
        }
        raws
    }

    /// The log is read a chunk at a time: a log of two chunks and a bit is
    /// copied whole, in order, byte for byte behind the genesis entry.
    #[test]
    fn a_log_longer_than_a_chunk_is_copied_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let n = 2 * CHUNK + 3;
        let old = old_log(dir.path(), n);
        let done = migrate(dir.path()).unwrap();
        assert_eq!(done.entries, n as u64);

        let (store, _) = LogStore::open_existing(&dir.path().join(LEDGER_FILE)).unwrap();
        let mut copied = Vec::new();
        store
            .snapshot()
            .unwrap()
            .for_each_entry(|_, entry| {
                copied.push(entry.to_vec());
                Ok(())
            })
            .unwrap();
        assert_eq!(copied.len(), n + 1);
        assert!(network::is_genesis_entry(&copied[0]));
        assert!(copied[1..] == old[..], "the old entries follow in order");

        // A second run finds the backup and changes nothing.
        assert!(matches!(
            migrate(dir.path()),
            Err(MigrateError::BackupExists(_))
        ));
    }
}
