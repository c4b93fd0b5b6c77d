//! The node as a C2SP tlog-witness and as a cosigner of its own log.
//!
//! - Every node cosigns (`cosignature/v1`, under its node DID) the
//!   checkpoints of its network's log; `GET /checkpoint` serves the latest
//!   checkpoint with this node's cosignature and the custodians'
//!   cosignatures collected for it (`POST /v1/checkpoint/cosignatures`).
//! - `POST /add-checkpoint` witnesses the logs this node is configured for:
//!   its own network (any custodian's key may sign its checkpoints) and the
//!   outside logs listed in `witness-logs.txt`. The latest cosigned size
//!   and root per origin are kept in `witness.redb` and written (fsync)
//!   before a cosignature is answered; the check of the old size and the
//!   update are one write transaction, so two requests cannot roll the
//!   witness back.
//! - For its own network the witness also counts its own log as observed:
//!   a checkpoint must be consistent with the node's own log, so even a
//!   custodian's key cannot make this node cosign a fork of what it holds.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use hygeia_identity::Keypair;
use hygeia_ledger::cosignature::{
    AddCheckpoint, CosignatureError, CosignatureVerifier, CosignedNote, Cosigner,
};
use hygeia_ledger::Hash;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use signed_note::{Note, NoteError, StandardVerifier, VerifierList};

/// The witness state file in the data directory.
pub const WITNESS_FILE: &str = "witness.redb";
/// Outside logs this node witnesses: one signed-note verifier key
/// (`<origin>+<key id>+<base64>`) a line; `#` starts a comment.
pub const WITNESS_LOGS_FILE: &str = "witness-logs.txt";
/// Most outside logs (and keys) one node witnesses.
pub const MAX_WITNESSED_KEYS: usize = 1000;

/// Latest cosigned (size, root) per origin: 8 bytes big-endian, 32 bytes.
const LATEST: TableDefinition<&str, &[u8]> = TableDefinition::new("latest");
/// The largest checkpoint of the node's own log with the custodians'
/// cosignatures collected for it (a cosigned note).
const COLLECTED: TableDefinition<&str, &[u8]> = TableDefinition::new("collected");

#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    #[error("{0}")]
    Malformed(CosignatureError),
    #[error("this witness does not witness the log {0:?}")]
    UnknownOrigin(String),
    #[error("no signature on the checkpoint verifies with a key this witness trusts for {0:?}")]
    UnknownKey(String),
    #[error("the old size {old} is larger than the checkpoint size {size}")]
    OldTooLarge { old: u64, size: u64 },
    /// The old size is not the latest cosigned size (which is given).
    #[error("the latest checkpoint cosigned for this log has size {0}")]
    Conflict(u64),
    /// Same size as the latest cosigned checkpoint, another root: a fork.
    #[error("a checkpoint of size {0} with another root hash was already cosigned or is in this node's log")]
    Fork(u64),
    #[error("the consistency proof does not show the checkpoint extends the latest cosigned one")]
    BadProof,
    #[error("{0}")]
    BadCosignature(CosignatureError),
    #[error("witness storage: {0}")]
    Storage(String),
}

impl WitnessError {
    pub fn code(&self) -> &'static str {
        match self {
            WitnessError::Malformed(_) => "witness.malformed",
            WitnessError::UnknownOrigin(_) => "witness.unknown_origin",
            WitnessError::UnknownKey(_) => "witness.unknown_key",
            WitnessError::OldTooLarge { .. } => "witness.old_size_too_large",
            WitnessError::Conflict(_) => "witness.old_size_mismatch",
            WitnessError::Fork(_) => "witness.root_mismatch",
            WitnessError::BadProof => "witness.bad_proof",
            WitnessError::BadCosignature(e) => e.code(),
            WitnessError::Storage(_) => "storage_unavailable",
        }
    }
}

fn storage(e: impl std::fmt::Display) -> WitnessError {
    WitnessError::Storage(e.to_string())
}

/// What the witness needs to know of the node's own log: its origin, its
/// latest checkpoint, its custodian set, and its roots.
pub struct OwnLog<'a> {
    pub origin: &'a str,
    pub size: u64,
    pub root: Hash,
    pub custodians: Vec<String>,
    /// The root of the own log at a size it has reached.
    pub root_at: &'a dyn Fn(u64) -> Option<Hash>,
}

pub struct Witness {
    db: redb::Database,
    cosigner: Cosigner,
    /// Outside logs: origin → verifier keys.
    outside: BTreeMap<String, Vec<String>>,
    /// The last own checkpoint served with this node's cosignature:
    /// (the log's note, the cosigned note).
    served: Mutex<Option<(Vec<u8>, Vec<u8>)>>,
}

impl Witness {
    /// Opens `witness.redb` in `dir` and reads `witness-logs.txt`.
    pub fn open(dir: &Path, network: &str, key: &Keypair) -> Result<Witness, String> {
        let outside = read_logs_file(&dir.join(WITNESS_LOGS_FILE), network)?;
        let path = dir.join(WITNESS_FILE);
        let db = redb::Database::create(&path)
            .map_err(|e| format!("{} cannot be opened: {e}", path.display()))?;
        let txn = db.begin_write().map_err(|e| e.to_string())?;
        txn.open_table(LATEST).map_err(|e| e.to_string())?;
        txn.open_table(COLLECTED).map_err(|e| e.to_string())?;
        txn.commit().map_err(|e| e.to_string())?;
        let cosigner = Cosigner::new(
            key.did().as_str(),
            Keypair::from_seed(&key.as_dalek().to_bytes()),
        )
        .map_err(|e| e.to_string())?;
        Ok(Witness {
            db,
            cosigner,
            outside,
            served: Mutex::new(None),
        })
    }

    /// This node's cosigner verifier key (`<did>+<id>+base64(0x04 || key)`).
    pub fn verifier_key(&self) -> String {
        self.cosigner.verifier().vkey()
    }

    /// The outside logs witnessed, by origin.
    pub fn outside_logs(&self) -> impl Iterator<Item = &str> {
        self.outside.keys().map(String::as_str)
    }

    fn latest(&self, origin: &str) -> Result<Option<(u64, Hash)>, WitnessError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(LATEST).map_err(storage)?;
        let value = table.get(origin).map_err(storage)?;
        Ok(value.and_then(|v| decode_latest(v.value())))
    }

    /// `POST /add-checkpoint`: checks the request and, if it passes,
    /// records the checkpoint durably and answers this node's cosignature
    /// line.
    pub fn add_checkpoint(
        &self,
        body: &[u8],
        own: &OwnLog,
        now: u64,
    ) -> Result<Vec<u8>, WitnessError> {
        let request = AddCheckpoint::parse(body).map_err(WitnessError::Malformed)?;
        let cp = &request.checkpoint;
        let own_origin = cp.origin == own.origin;
        let keys: Vec<String> = if own_origin {
            own.custodians
                .iter()
                .filter_map(|did| did.parse::<hygeia_identity::Did>().ok())
                .map(|did| {
                    signed_note::new_ed25519_verifier_key(own.origin, did.public_key().as_dalek())
                })
                .collect()
        } else {
            self.outside
                .get(&cp.origin)
                .cloned()
                .ok_or_else(|| WitnessError::UnknownOrigin(shorten(&cp.origin)))?
        };
        verify_log_signature(&request.note, &keys)
            .map_err(|_| WitnessError::UnknownKey(shorten(&cp.origin)))?;
        if request.old > cp.size {
            return Err(WitnessError::OldTooLarge {
                old: request.old,
                size: cp.size,
            });
        }
        // One write transaction: the check of the old size and the update
        // are atomic (redb serializes write transactions).
        let txn = self.db.begin_write().map_err(storage)?;
        let write = {
            let mut table = txn.open_table(LATEST).map_err(storage)?;
            let stored = table
                .get(cp.origin.as_str())
                .map_err(storage)?
                .and_then(|v| decode_latest(v.value()));
            let mut latest = stored.unwrap_or((0, hygeia_ledger::merkle::empty_root()));
            if own_origin && own.size >= latest.0 {
                latest = (own.size, own.root);
            }
            if request.old != latest.0 {
                return Err(WitnessError::Conflict(latest.0));
            }
            if cp.size == latest.0 {
                if cp.root != latest.1 || (latest.0 == 0 && !request.proof.is_empty()) {
                    tracing::warn!(origin = %cp.origin, size = cp.size, "a validly signed checkpoint has another root than the one cosigned: possible fork");
                    return Err(WitnessError::Fork(cp.size));
                }
                if !request.proof.is_empty() {
                    return Err(WitnessError::BadProof);
                }
            } else if request.old == 0 {
                if !request.proof.is_empty() {
                    return Err(WitnessError::BadProof);
                }
            } else if hygeia_ledger::proof::verify_consistency(
                latest.0,
                latest.1,
                cp.size,
                cp.root,
                &request.proof,
            )
            .is_err()
            {
                tracing::warn!(origin = %cp.origin, old = latest.0, size = cp.size, "a validly signed checkpoint came with a consistency proof that does not verify: possible fork");
                return Err(WitnessError::BadProof);
            }
            // For the own network, a size the own log has reached must
            // have the own log's root there.
            if own_origin && cp.size <= own.size && (own.root_at)(cp.size) != Some(cp.root) {
                return Err(WitnessError::Fork(cp.size));
            }
            // The same checkpoint again needs no write (and no fsync a
            // stranger could make the node do at will by replaying it).
            if stored == Some((cp.size, cp.root)) {
                None
            } else {
                table
                    .insert(
                        cp.origin.as_str(),
                        encode_latest(cp.size, cp.root).as_slice(),
                    )
                    .map_err(storage)?;
                Some(())
            }
        };
        match write {
            Some(()) => txn.commit().map_err(storage)?,
            None => txn.abort().map_err(storage)?,
        }
        let line = self
            .cosigner
            .cosign(&cp.text, now)
            .map_err(WitnessError::Malformed)?;
        tracing::info!(origin = %cp.origin, size = cp.size, "cosigned a checkpoint");
        Ok(line.to_bytes())
    }

    /// The node's latest checkpoint with its own cosignature and those
    /// collected for it.
    pub fn serve(&self, note: &[u8], own: &OwnLog, now: u64) -> Result<Vec<u8>, WitnessError> {
        let mut served = self.served.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((log_note, cosigned)) = served.as_ref() {
            if log_note == note {
                // Collected cosignatures may have arrived since.
                return self.with_collected(cosigned);
            }
        }
        let mut cosigned = CosignedNote::parse(note).map_err(WitnessError::Malformed)?;
        // Cosign only the largest tree this witness has observed.
        let ahead = self
            .latest(own.origin)?
            .is_some_and(|(size, _)| size > cosigned.size);
        if !ahead {
            cosigned.add(
                self.cosigner
                    .cosign(&cosigned.text, now)
                    .map_err(WitnessError::Malformed)?,
            );
        }
        let bytes = cosigned.to_bytes();
        *served = Some((note.to_vec(), bytes.clone()));
        self.with_collected(&bytes)
    }

    fn with_collected(&self, cosigned: &[u8]) -> Result<Vec<u8>, WitnessError> {
        let Some(collected) = self.collected()? else {
            return Ok(cosigned.to_vec());
        };
        let mut note = CosignedNote::parse(cosigned).map_err(WitnessError::Malformed)?;
        if collected.text != note.text {
            return Ok(cosigned.to_vec());
        }
        for sig in collected.signatures {
            if !note
                .signatures
                .iter()
                .any(|s| s.name() == sig.name() && s.id() == sig.id())
            {
                note.signatures.push(sig);
            }
        }
        Ok(note.to_bytes())
    }

    /// The largest own checkpoint with the cosignatures collected for it.
    pub fn collected(&self) -> Result<Option<CosignedNote>, WitnessError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(COLLECTED).map_err(storage)?;
        let value = table.get("own").map_err(storage)?;
        Ok(value.and_then(|v| CosignedNote::parse(v.value()).ok()))
    }

    /// `POST /v1/checkpoint/cosignatures`: a checkpoint of this node's log
    /// with custodians' cosignatures (what peers answered at their
    /// `add-checkpoint`). Keeps the valid custodian cosignatures; a line
    /// by a custodian that does not verify refuses the whole note; lines
    /// by other keys are ignored. Returns the size and how many
    /// cosignatures are now held for it.
    pub fn collect(&self, body: &[u8], own: &OwnLog) -> Result<(u64, usize), WitnessError> {
        let note = CosignedNote::parse(body).map_err(WitnessError::Malformed)?;
        if note.origin != own.origin {
            return Err(WitnessError::UnknownOrigin(shorten(&note.origin)));
        }
        if note.size == 0 || note.size > own.size || (own.root_at)(note.size) != Some(note.root) {
            return Err(WitnessError::Fork(note.size));
        }
        let set: Vec<CosignatureVerifier> = own
            .custodians
            .iter()
            .filter_map(|did| CosignatureVerifier::for_did(did).ok())
            .collect();
        note.check_quorum(&set, 0)
            .map_err(WitnessError::BadCosignature)?;
        let txn = self.db.begin_write().map_err(storage)?;
        let held;
        {
            let mut table = txn.open_table(COLLECTED).map_err(storage)?;
            let stored = table
                .get("own")
                .map_err(storage)?
                .and_then(|v| CosignedNote::parse(v.value()).ok());
            // Keep only the custodians' lines, on the note of the log's
            // signature as given.
            let mut keep = CosignedNote {
                signatures: Vec::new(),
                ..note.clone()
            };
            match stored {
                Some(stored) if stored.size > note.size => {
                    return Err(WitnessError::Conflict(stored.size))
                }
                Some(stored) if stored.text == note.text => {
                    keep.signatures = stored.signatures;
                }
                _ => {}
            }
            for sig in note.signatures {
                if set.iter().any(|v| v.matches(&sig)) {
                    keep.add(sig);
                }
            }
            held = keep.signatures.len();
            table
                .insert("own", keep.to_bytes().as_slice())
                .map_err(storage)?;
        }
        txn.commit().map_err(storage)?;
        Ok((note.size, held))
    }
}

impl crate::node::Node {
    /// Runs `f` with the node's own log as the witness sees it: its latest
    /// checkpoint, custodian set and roots. Blocking (the witness writes
    /// with fsync).
    pub fn with_own_log<R>(
        &self,
        f: impl FnOnce(&OwnLog) -> Result<R, WitnessError>,
    ) -> Result<R, WitnessError> {
        let checkpoint = self.sequencer.latest_checkpoint();
        let snapshot = self.store.snapshot().map_err(storage)?;
        let custodians = self
            .state
            .read()
            .state
            .network
            .custodians()
            .map(str::to_owned)
            .collect();
        let root_at = |size: u64| {
            (size <= checkpoint.size)
                .then(|| snapshot.root_at(size).ok())
                .flatten()
        };
        let own = OwnLog {
            origin: &self.config.network,
            size: checkpoint.size,
            root: checkpoint.root,
            custodians,
            root_at: &root_at,
        };
        f(&own)
    }

    /// The latest checkpoint with this node's cosignature and those
    /// collected for it (what `GET /checkpoint` serves).
    pub fn cosigned_checkpoint(&self) -> Result<Vec<u8>, WitnessError> {
        let note = self.sequencer.latest_checkpoint().note.clone();
        let served =
            self.with_own_log(|own| self.witness.serve(&note, own, crate::node::unix_now()))?;
        // On a network of organizations, the other nodes' cosignatures of
        // this same checkpoint, made when they appended it.
        let crate::ordering::Ordering::Bft(bft) = &self.sequencer else {
            return Ok(served);
        };
        let Ok(mut cosigned) = hygeia_ledger::cosignature::CosignedNote::parse(&served) else {
            return Ok(served);
        };
        for peer in bft.peer_cosignatures(&cosigned.text) {
            for sig in peer.signatures {
                cosigned.add(sig);
            }
        }
        Ok(cosigned.to_bytes())
    }
}

/// Reads the collected cosigned checkpoint of a node's data directory (for
/// `hygeia verify` on a data directory), without opening it for writing.
pub fn read_collected(dir: &Path) -> Result<Option<CosignedNote>, String> {
    let path = dir.join(WITNESS_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let db = redb::ReadOnlyDatabase::open(&path)
        .map_err(|e| format!("{} cannot be opened: {e}", path.display()))?;
    let txn = db.begin_read().map_err(|e| e.to_string())?;
    let table = match txn.open_table(COLLECTED) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let value = table.get("own").map_err(|e| e.to_string())?;
    Ok(value.and_then(|v| CosignedNote::parse(v.value()).ok()))
}

/// Whether one of the note's signatures verifies with one of `keys`
/// (signed-note verifier keys); signatures by other keys are ignored.
fn verify_log_signature(note: &[u8], keys: &[String]) -> Result<(), NoteError> {
    let verifiers: Vec<Box<dyn signed_note::Verifier>> = keys
        .iter()
        .filter_map(|k| StandardVerifier::new(k).ok())
        .map(|v| Box::new(v) as Box<dyn signed_note::Verifier>)
        .collect();
    Note::from_bytes(note)?.verify(&VerifierList::new(verifiers))?;
    Ok(())
}

fn encode_latest(size: u64, root: Hash) -> Vec<u8> {
    let mut out = size.to_be_bytes().to_vec();
    out.extend_from_slice(&root.0);
    out
}

fn decode_latest(bytes: &[u8]) -> Option<(u64, Hash)> {
    let size = u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
    let root: [u8; 32] = bytes.get(8..40)?.try_into().ok()?;
    Some((size, Hash(root)))
}

fn shorten(text: &str) -> String {
    text.chars().take(100).collect()
}

/// Reads `witness-logs.txt`: verifier keys of outside logs by origin.
fn read_logs_file(path: &Path, network: &str) -> Result<BTreeMap<String, Vec<String>>, String> {
    let mut logs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(logs),
        Err(e) => return Err(format!("{} cannot be read: {e}", path.display())),
    };
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let verifier = StandardVerifier::new(line).map_err(|e| {
            format!(
                "{} line {}: not a signed-note verifier key ({e})",
                path.display(),
                n + 1
            )
        })?;
        let origin = signed_note::Verifier::name(&verifier).to_owned();
        if origin == network {
            return Err(format!(
                "{} line {}: {origin} is this node's own network, whose keys come from its genesis",
                path.display(),
                n + 1
            ));
        }
        logs.entry(origin).or_default().push(line.to_owned());
        if logs.values().map(Vec::len).sum::<usize>() > MAX_WITNESSED_KEYS {
            return Err(format!(
                "{}: at most {MAX_WITNESSED_KEYS} keys",
                path.display()
            ));
        }
    }
    Ok(logs)
}
