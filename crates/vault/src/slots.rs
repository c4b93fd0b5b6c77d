//! Wrapped keys in fixed-size slots of one file, erased in place.
//!
//! A [`SlotKeyRing`] keeps every wrapped key in `<root>/keys.slots`, one
//! per [`SLOT_LEN`]-byte slot:
//!
//! ```text
//! used (1, = 1) | record (32) | holder (32) | key length (1) | key (112, zero padded) | check (8) | zeros (6)
//! ```
//!
//! where `check` is the first 8 bytes of SHA-256 over everything before
//! it. A free slot is all zeros. Which slot holds which key is kept in
//! memory, rebuilt from the file at [`open`](SlotKeyRing::open), where a
//! slot that is neither free nor intact (a write torn by a crash, never
//! acknowledged) is zeroed.
//!
//! Erasure overwrites the slot with zeros in place and flushes the file
//! (`fdatasync`) before it returns, the same promise as the shredding of
//! a key file by [`crate::FsKeyRing`] (see the [`crate::keyring`] module
//! for what that does not cover: copy-on-write and journaling file
//! systems, SSD remapping, snapshots). A freed slot is reused by the next
//! key stored. The file is never rewritten elsewhere, so no older copy of
//! a slot is left behind by this code; that is why the keys are not kept
//! in a database such as redb, whose copy-on-write pages can keep an
//! erased value readable in a freed page.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::blob::BlobId;
use crate::durable::{self, Durability};
use crate::error::{Error, Result};
use crate::keyring::KeyRing;
use crate::wrap::{RecipientPublicKey, WrappedKey};

/// Bytes of a slot.
pub const SLOT_LEN: usize = 192;
/// The longest wrapped key a slot holds.
pub const MAX_KEY_LEN: usize = 112;
/// The key file under the root.
pub const KEY_FILE: &str = "keys.slots";

const KEY_AT: usize = 66;
const CHECK_AT: usize = KEY_AT + MAX_KEY_LEN;

type Name = ([u8; 32], [u8; 32]);

struct State {
    file: Arc<File>,
    /// (record, holder) → slot number.
    index: BTreeMap<Name, u64>,
    /// Zeroed slots, reused before the file grows.
    free: Vec<u64>,
    /// Slots in the file.
    slots: u64,
}

/// Wrapped keys in fixed slots of one file. Clones share the file.
#[derive(Clone)]
pub struct SlotKeyRing {
    path: PathBuf,
    state: Arc<Mutex<State>>,
    durability: Durability,
}

impl std::fmt::Debug for SlotKeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotKeyRing")
            .field("path", &self.path)
            .field("durability", &self.durability)
            .finish()
    }
}

fn check(bytes: &[u8]) -> [u8; 8] {
    let digest = Sha256::digest(bytes);
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

fn encode(record: &BlobId, holder: &RecipientPublicKey, key: &[u8]) -> Result<[u8; SLOT_LEN]> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(Error::Format("wrapped key (too long for a slot)"));
    }
    let mut slot = [0u8; SLOT_LEN];
    slot[0] = 1;
    slot[1..33].copy_from_slice(record.as_bytes());
    slot[33..65].copy_from_slice(holder.as_bytes());
    slot[65] = key.len() as u8;
    slot[KEY_AT..KEY_AT + key.len()].copy_from_slice(key);
    let sum = check(&slot[..CHECK_AT]);
    slot[CHECK_AT..CHECK_AT + 8].copy_from_slice(&sum);
    Ok(slot)
}

/// The name and key of an intact used slot.
fn decode(slot: &[u8; SLOT_LEN]) -> Option<(Name, &[u8])> {
    let len = slot[65] as usize;
    if slot[0] != 1
        || len == 0
        || len > MAX_KEY_LEN
        || slot[CHECK_AT..CHECK_AT + 8] != check(&slot[..CHECK_AT])
        || slot[CHECK_AT + 8..].iter().any(|b| *b != 0)
    {
        return None;
    }
    let record: [u8; 32] = slot[1..33].try_into().ok()?;
    let holder: [u8; 32] = slot[33..65].try_into().ok()?;
    Some(((record, holder), &slot[KEY_AT..KEY_AT + len]))
}

fn name(record: &BlobId, holder: &RecipientPublicKey) -> Name {
    (*record.as_bytes(), *holder.as_bytes())
}

impl SlotKeyRing {
    /// Opens (creating if needed) the key file under `root`. Keep `root`
    /// apart from the ciphertexts (another directory, ideally another
    /// volume).
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref();
        durable::create_dir_all(root)?;
        let path = root.join(KEY_FILE);
        let existed = path.exists();
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)?;
        if !existed {
            file.sync_all()?;
            durable::sync_dir(root)?;
        }
        let size = file.metadata()?.len();
        let slots = size / SLOT_LEN as u64;
        let mut index = BTreeMap::new();
        let mut free = Vec::new();
        let mut zeroed = false;
        let mut reader = io::BufReader::with_capacity(1 << 20, &file);
        let mut slot = [0u8; SLOT_LEN];
        let mut torn = Vec::new();
        for n in 0..slots {
            reader.read_exact(&mut slot)?;
            if slot.iter().all(|b| *b == 0) {
                free.push(n);
                continue;
            }
            match decode(&slot) {
                Some((name, _)) if !index.contains_key(&name) => {
                    index.insert(name, n);
                }
                // Torn, or a second copy (kept: the first).
                _ => torn.push(n),
            }
        }
        drop(reader);
        for n in torn {
            file.write_all_at(&[0u8; SLOT_LEN], n * SLOT_LEN as u64)?;
            free.push(n);
            zeroed = true;
        }
        if size % SLOT_LEN as u64 != 0 {
            // A slot appended in part: never acknowledged.
            file.set_len(slots * SLOT_LEN as u64)?;
            zeroed = true;
        }
        if zeroed {
            file.sync_all()?;
        }
        // Lowest slots first.
        free.sort_unstable_by(|a, b| b.cmp(a));
        Ok(SlotKeyRing {
            path,
            state: Arc::new(Mutex::new(State {
                file: Arc::new(file),
                index,
                free,
                slots,
            })),
            durability: Durability::Immediate,
        })
    }

    /// The same key ring, storing with [`Durability::Deferred`]: a key is
    /// durable only after [`SlotKeyRing::sync`]. Erasure is always flushed
    /// before it returns.
    pub fn deferred(mut self) -> Self {
        self.durability = Durability::Deferred;
        self
    }

    /// The key file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes every key stored so far (one `fdatasync`).
    pub fn sync(&self) -> Result<()> {
        let file = self.lock().file.clone();
        file.sync_data()?;
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Like [`KeyRing::put`] for a key in any encoding up to
    /// [`MAX_KEY_LEN`] bytes (a [`crate::group::GroupWrappedKey`]); read it
    /// with [`KeyRing::get_bytes`].
    pub fn put_bytes(
        &self,
        record: &BlobId,
        holder: &RecipientPublicKey,
        bytes: &[u8],
    ) -> Result<bool> {
        let slot = encode(record, holder, bytes)?;
        let mut state = self.lock();
        let name = name(record, holder);
        if state.index.contains_key(&name) {
            return Ok(false);
        }
        let n = match state.free.pop() {
            Some(n) => n,
            None => state.slots,
        };
        if let Err(err) = state.file.write_all_at(&slot, n * SLOT_LEN as u64) {
            // Whatever part was written is not a valid slot: zeroed (or
            // cut) at the next start at the latest.
            if n < state.slots {
                state.free.push(n);
            }
            return Err(err.into());
        }
        if n == state.slots {
            state.slots += 1;
        }
        state.index.insert(name, n);
        if self.durability == Durability::Immediate {
            // Flushed without holding the lock (reads go on meanwhile).
            let file = state.file.clone();
            drop(state);
            file.sync_data()?;
        }
        Ok(true)
    }

    /// Zeroes the given slots and flushes them (called with the lock held).
    fn shred(state: &mut State, slots: &[u64]) -> Result<()> {
        for &n in slots {
            state
                .file
                .write_all_at(&[0u8; SLOT_LEN], n * SLOT_LEN as u64)?;
        }
        if !slots.is_empty() {
            state.file.sync_data()?;
        }
        state.free.extend_from_slice(slots);
        Ok(())
    }

    /// Every (record, holder) with a key, in order (for a migration or a
    /// check).
    pub fn names(&self) -> Vec<(BlobId, RecipientPublicKey)> {
        self.lock()
            .index
            .keys()
            .map(|(r, h)| (BlobId::from_bytes(*r), RecipientPublicKey::from_array(*h)))
            .collect()
    }
}

impl KeyRing for SlotKeyRing {
    fn put(&self, record: &BlobId, holder: &RecipientPublicKey, key: &WrappedKey) -> Result<bool> {
        self.put_bytes(record, holder, &key.to_bytes())
    }

    fn get(&self, record: &BlobId, holder: &RecipientPublicKey) -> Result<Option<WrappedKey>> {
        self.get_bytes(record, holder)?
            .map(|bytes| WrappedKey::from_bytes(&bytes))
            .transpose()
    }

    fn get_bytes(&self, record: &BlobId, holder: &RecipientPublicKey) -> Result<Option<Vec<u8>>> {
        let state = self.lock();
        let Some(&n) = state.index.get(&name(record, holder)) else {
            return Ok(None);
        };
        let mut slot = [0u8; SLOT_LEN];
        state.file.read_exact_at(&mut slot, n * SLOT_LEN as u64)?;
        match decode(&slot) {
            Some((found, key)) if found == name(record, holder) => Ok(Some(key.to_vec())),
            _ => Err(Error::Format("key slot (damaged)")),
        }
    }

    fn holders(&self, record: &BlobId) -> Result<Vec<RecipientPublicKey>> {
        let state = self.lock();
        let start = (*record.as_bytes(), [0u8; 32]);
        let end = (*record.as_bytes(), [0xffu8; 32]);
        Ok(state
            .index
            .range(start..=end)
            .map(|((_, h), _)| RecipientPublicKey::from_array(*h))
            .collect())
    }

    fn revoke(&self, record: &BlobId, holder: &RecipientPublicKey) -> Result<bool> {
        let mut state = self.lock();
        let Some(n) = state.index.remove(&name(record, holder)) else {
            return Ok(false);
        };
        Self::shred(&mut state, &[n])?;
        Ok(true)
    }

    fn erase(&self, record: &BlobId) -> Result<usize> {
        let mut state = self.lock();
        let start = (*record.as_bytes(), [0u8; 32]);
        let end = (*record.as_bytes(), [0xffu8; 32]);
        let names: Vec<(Name, u64)> = state
            .index
            .range(start..=end)
            .map(|(k, v)| (*k, *v))
            .collect();
        for (name, _) in &names {
            state.index.remove(name);
        }
        let slots: Vec<u64> = names.iter().map(|(_, n)| *n).collect();
        Self::shred(&mut state, &slots)?;
        Ok(slots.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::GROUP_WRAPPED_KEY_LEN;
    use crate::stream::DataKey;
    use crate::wrap::{unwrap, wrap, RecipientKey};

    #[test]
    fn put_get_holders_revoke_erase_and_reuse() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ring = SlotKeyRing::open(dir.path()).expect("open");
        let record = BlobId::of(b"record");
        let key = DataKey::generate().expect("rng");
        let alice = RecipientKey::generate().expect("rng");
        let bob = RecipientKey::generate().expect("rng");
        assert_eq!(ring.holders(&record).expect("holders"), vec![]);
        let mut stored = Vec::new();
        for holder in [&alice, &bob] {
            let wrapped = wrap(&key, &record, holder.public_key()).expect("wrap");
            assert!(ring
                .put(&record, holder.public_key(), &wrapped)
                .expect("put"));
            stored.push(wrapped.to_bytes());
        }
        let again = wrap(&key, &record, alice.public_key()).expect("wrap");
        assert!(!ring.put(&record, alice.public_key(), &again).expect("put"));
        let group_copy = [2u8; GROUP_WRAPPED_KEY_LEN];
        let other = BlobId::of(b"other");
        assert!(ring
            .put_bytes(&other, alice.public_key(), &group_copy)
            .expect("put bytes"));
        assert_eq!(
            ring.get_bytes(&other, alice.public_key()).expect("get"),
            Some(group_copy.to_vec())
        );
        let mut expected = vec![*alice.public_key(), *bob.public_key()];
        expected.sort();
        assert_eq!(ring.holders(&record).expect("holders"), expected);
        let wrapped = ring
            .get(&record, bob.public_key())
            .expect("get")
            .expect("some");
        assert_eq!(unwrap(&wrapped, &record, &bob).expect("unwrap"), key);

        assert!(ring.revoke(&record, bob.public_key()).expect("revoke"));
        assert!(!ring.revoke(&record, bob.public_key()).expect("again"));
        assert_eq!(ring.get(&record, bob.public_key()).expect("get"), None);
        assert_eq!(ring.erase(&record).expect("erase"), 1);
        assert_eq!(ring.erase(&record).expect("erase again"), 0);
        assert_eq!(ring.holders(&record).expect("holders"), vec![]);

        // The erased keys' bytes are gone from the file; the other key is
        // there, also after a restart; freed slots are reused.
        let bytes = std::fs::read(ring.path()).expect("read");
        assert_eq!(bytes.len(), 3 * SLOT_LEN);
        for key in &stored {
            assert!(!bytes.windows(key.len()).any(|w| w == key.as_slice()));
        }
        drop(ring);
        let ring = SlotKeyRing::open(dir.path()).expect("reopen");
        assert_eq!(
            ring.get_bytes(&other, alice.public_key()).expect("get"),
            Some(group_copy.to_vec())
        );
        assert_eq!(ring.get(&record, alice.public_key()).expect("get"), None);
        for holder in [&alice, &bob] {
            let wrapped = wrap(&key, &record, holder.public_key()).expect("wrap");
            ring.put(&record, holder.public_key(), &wrapped)
                .expect("put");
        }
        assert_eq!(
            std::fs::metadata(ring.path()).expect("stat").len(),
            3 * SLOT_LEN as u64
        );
        assert!(ring.put_bytes(&record, bob.public_key(), &[]).is_err());
        assert!(ring
            .put_bytes(&other, bob.public_key(), &[1u8; MAX_KEY_LEN + 1])
            .is_err());
    }

    /// A slot torn by a crash (a store never acknowledged) reads as free
    /// after a restart and is zeroed; the keys around it stay.
    #[test]
    fn a_torn_slot_is_zeroed_at_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ring = SlotKeyRing::open(dir.path()).expect("open");
        let holder = RecipientKey::generate().expect("rng");
        let records: Vec<BlobId> = (0..3u8).map(|i| BlobId::of(&[i])).collect();
        for record in &records {
            ring.put_bytes(record, holder.public_key(), &[9u8; 81])
                .expect("put");
        }
        let path = ring.path().to_owned();
        drop(ring);
        let mut bytes = std::fs::read(&path).expect("read");
        bytes[SLOT_LEN + 70] ^= 1;
        bytes.extend_from_slice(&[1u8; 50]);
        std::fs::write(&path, &bytes).expect("tear");
        let ring = SlotKeyRing::open(dir.path()).expect("reopen");
        assert!(ring
            .get_bytes(&records[0], holder.public_key())
            .expect("get")
            .is_some());
        assert!(ring
            .get_bytes(&records[1], holder.public_key())
            .expect("get")
            .is_none());
        assert!(ring
            .get_bytes(&records[2], holder.public_key())
            .expect("get")
            .is_some());
        let bytes = std::fs::read(&path).expect("read");
        assert_eq!(bytes.len(), 3 * SLOT_LEN);
        assert!(bytes[SLOT_LEN..2 * SLOT_LEN].iter().all(|b| *b == 0));
    }
}
