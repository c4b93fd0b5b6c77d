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
//! replayed in memory: a log that would not replay is not migrated.

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
            entries: entries.len() as u64,
            root: old_root.clone(),
            rules: LEGACY_RULES_V1.into(),
            node,
            governance,
        }),
    };
    let modules = txs::registry();
    let genesis = network::genesis_tx(&origin, &key, &genesis, &modules)
        .map_err(|e| MigrateError::Other(format!("cannot sign the genesis entry: {e}")))?;
    let txs = replay(&origin, &genesis, &entries, &modules)?;

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
    match write_new_log(&ledger, &origin, &key, genesis, txs) {
        Ok(network_id) => Ok(Migrated {
            entries: entries.len() as u64,
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

/// The old log's entries, its network name and its root hash (hex).
fn read_old_log(ledger: &Path) -> Result<(Vec<Vec<u8>>, String, String), MigrateError> {
    let (store, origin) = LogStore::open_existing(ledger)?;
    let snapshot = store.snapshot()?;
    let root = match snapshot.checkpoint() {
        Some(checkpoint) if checkpoint.size > 0 => hex::encode(checkpoint.root.0),
        _ => return Err(MigrateError::Empty),
    };
    let mut entries = Vec::new();
    snapshot.for_each_entry(|_, entry| {
        entries.push(entry.to_vec());
        Ok(())
    })?;
    if entries
        .first()
        .is_some_and(|e| network::is_genesis_entry(e))
    {
        return Err(MigrateError::AlreadyMigrated);
    }
    Ok((entries, origin, root))
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
/// its next start; returns the old entries, parsed.
fn replay(
    origin: &str,
    genesis: &SignedTx,
    entries: &[Vec<u8>],
    modules: &hygeia_ledger::ModuleRegistry,
) -> Result<Vec<SignedTx>, MigrateError> {
    let ctx = TxContext {
        network: origin,
        modules,
    };
    let mut state = LedgerState::empty();
    state
        .apply(0, genesis)
        .map_err(|e| MigrateError::Other(format!("the genesis entry is refused: {e}")))?;
    let raws: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
    let txs = SignedTx::parse_many(&raws, &ctx).map_err(|(i, e)| MigrateError::Replay {
        index: i as u64,
        message: e.to_string(),
    })?;
    for (i, tx) in txs.iter().enumerate() {
        state
            .apply(i as u64 + 1, tx)
            .map_err(|e| MigrateError::Replay {
                index: i as u64,
                message: format!("{e} ({})", e.code.as_str()),
            })?;
    }
    Ok(txs)
}

/// Writes genesis then the old entries to a new log; returns the network id.
fn write_new_log(
    ledger: &Path,
    origin: &str,
    key: &Keypair,
    genesis: SignedTx,
    txs: Vec<SignedTx>,
) -> Result<String, MigrateError> {
    let store = std::sync::Arc::new(LogStore::open(ledger, origin)?);
    let signer = CheckpointSigner::new(origin, Keypair::from_seed(&key.as_dalek().to_bytes()))
        .map_err(|e| MigrateError::Other(e.to_string()))?;
    let mut writer = LogWriter::open(store, signer)?;
    let network_id = hex::encode(genesis.leaf_hash().0);
    let all: Vec<SignedTx> = std::iter::once(genesis).chain(txs).collect();
    let mut expected = 0u64;
    for chunk in all.chunks(1024) {
        let submissions: Vec<&[SignedTx]> = chunk.iter().map(std::slice::from_ref).collect();
        let outcome = writer.append_batch(&submissions)?;
        for result in outcome.results {
            match result {
                Ok(index) if index == expected => expected += 1,
                other => {
                    return Err(MigrateError::Other(format!(
                        "entry {expected} was not copied in place: {other:?}"
                    )))
                }
            }
        }
    }
    Ok(network_id)
}
