//! The replication follower: a node of a multi-organization network pulls,
//! by itself, the records its organization is entitled to from the nodes
//! that hold them (docs/network.md, "Replication to entitled nodes").
//!
//! It watches the committed state, not the network: after each durable
//! batch or appended block it reads the new log entries (a cursor, so a
//! large state is never rescanned for a new block), and looks again at the
//! records of the patients they concern (`record`, `consent.grant`). An
//! entry that can change who is entitled to everything (`network.node`,
//! `org.register`, `org.member`, `identity.rotate`) makes it look at every
//! record once, as it does at start and every [`FollowerLimits::rescan`]
//! (a grant whose `not_before` has passed since). A record is wanted when
//! [`entitled`] holds with this node as the receiver and its holder as the
//! sender (the rule the holder applies), it is not erased, and this node's
//! vault does not hold it.
//!
//! A wanted record is pulled from its holder's `api` URL in the peers file
//! with a request signed (RFC 9421) by this node's key, read up to a size
//! limit, checked and kept by [`Custody::store_replica`]. At most
//! [`FollowerLimits::in_flight`] pulls run at once. A failure (the holder
//! unreachable, a bad answer) is retried with exponential backoff; a
//! refusal (404: the holder's state does not entitle this node, perhaps not
//! yet) waits longer. Right before each pull the rule is asked again of this
//! node's state, so after a revocation or an erasure nothing more is pulled.
//! Each look also destroys, as an erasure does, the copies it concerns that
//! this node is no longer entitled to ([`destroy_unentitled`]; `consent.revoke`
//! makes it look at that patient's). The cursor and the records still
//! wanted are kept in [`FOLLOWER_FILE`], so a restart resumes from the
//! cursor instead of looking at every record.
//! Everything is logged with `tracing`, target `hygeia::replication`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use hygeia_identity::Keypair;
use hygeia_state::records::RecordEntry;
use hygeia_state::replication::entitled;
use hygeia_state::LedgerState;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::Deserialize;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::custody::replica::{author_key, ReplicaAnswer};
use crate::custody::Custody;
use crate::node::{unix_now, Node};

/// How much the follower does at once, and how long it waits.
#[derive(Debug, Clone)]
pub struct FollowerLimits {
    /// Pulls running at once.
    pub in_flight: usize,
    /// Largest answer read from a holder, in bytes.
    pub max_body_bytes: u64,
    /// First wait after a failed pull; doubled at each failure.
    pub retry: Duration,
    /// First wait after a refusal (404); doubled at each refusal.
    pub refused: Duration,
    /// Longest wait between two attempts at one record.
    pub max_wait: Duration,
    /// Every record is looked at again this often.
    pub rescan: Duration,
    /// Longest a pull may take, connection to last byte.
    pub timeout: Duration,
}

impl FollowerLimits {
    /// Limits for a node that takes records up to `max_record_bytes`.
    pub fn for_records_up_to(max_record_bytes: u64) -> FollowerLimits {
        FollowerLimits {
            in_flight: 4,
            // Base64 of the ciphertext (the plaintext, a header and 16
            // bytes per 64 KiB chunk), plus the metadata.
            max_body_bytes: max_record_bytes
                .saturating_add(max_record_bytes / 1024)
                .saturating_add(64 << 10)
                .saturating_mul(4)
                / 3
                + (64 << 10),
            retry: Duration::from_secs(1),
            refused: Duration::from_secs(5),
            max_wait: Duration::from_secs(300),
            rescan: Duration::from_secs(600),
            timeout: Duration::from_secs(120),
        }
    }
}

/// Starts the follower of a node ordering with peers; `None` for a node
/// alone (nothing to pull from). Aborting the handle stops it.
pub fn spawn(node: Arc<Node>) -> Option<tokio::task::JoinHandle<()>> {
    let peers = node.config.peers.as_ref()?;
    let holders: HashMap<String, String> = peers
        .peers
        .iter()
        .filter(|peer| peer.did != node.node_did)
        .filter_map(|peer| {
            let api = peer.api.as_deref()?.trim_end_matches('/').to_owned();
            Some((peer.did.clone(), api))
        })
        .collect();
    if holders.is_empty() {
        tracing::warn!(target: "hygeia::replication", "the peers file names no other node's api URL: this node pulls only from nodes the validator set names one for");
    }
    let http = match reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .build()
    {
        Ok(http) => http,
        Err(e) => {
            tracing::error!(target: "hygeia::replication", error = %e, "no HTTP client: this node pulls no record");
            return None;
        }
    };
    let follower = match Follower::new(node, holders, http) {
        Ok(follower) => follower,
        Err(e) => {
            tracing::error!(target: "hygeia::replication", error = %e, "cannot open the follower's cursor: this node pulls no record");
            return None;
        }
    };
    Some(tokio::spawn(follower.run()))
}

/// The follower's file in the data directory: its cursor and the records
/// it wants and has not yet pulled.
pub const FOLLOWER_FILE: &str = "replication.redb";

/// `cursor` → the log size whose entries were looked at.
const CURSOR: TableDefinition<&str, u64> = TableDefinition::new("cursor");
/// commitment → holder, for each record wanted and not yet kept.
const WANTED: TableDefinition<&str, &str> = TableDefinition::new("wanted");

#[derive(Debug, thiserror::Error)]
#[error("{FOLLOWER_FILE}: {0}")]
pub struct FollowerStoreError(String);

fn store_err(e: impl std::fmt::Display) -> FollowerStoreError {
    FollowerStoreError(e.to_string())
}

/// What the follower keeps across restarts, in one redb file: every change
/// is one transaction, durable when it commits, so after a crash the file
/// holds a cursor together with every record the entries before it made
/// wanted (never a cursor past entries whose wanted records were lost).
pub struct FollowerStore {
    db: redb::Database,
}

/// What the follower found at start.
#[derive(Debug, Default, PartialEq)]
pub struct Saved {
    /// `None` at the first start.
    pub cursor: Option<u64>,
    /// (commitment, holder).
    pub wanted: Vec<(String, String)>,
}

impl FollowerStore {
    /// Opens the file, or starts a new one if it cannot be read: it holds
    /// only what saves work (a cursor, and records the log names anyway),
    /// so a damaged file is set aside as `replication.redb.damaged` and the
    /// follower looks at every record again, rather than pulling nothing.
    pub fn open(path: &std::path::Path) -> Result<FollowerStore, FollowerStoreError> {
        match Self::open_file(path) {
            Ok(store) => Ok(store),
            Err(FollowerStoreError(why)) if path.exists() => {
                let aside = path.with_extension("redb.damaged");
                tracing::error!(target: "hygeia::replication", error = %why, aside = %aside.display(), "the follower's file cannot be read: set aside; every record is looked at again");
                std::fs::rename(path, &aside).map_err(store_err)?;
                Self::open_file(path)
            }
            Err(e) => Err(e),
        }
    }

    fn open_file(path: &std::path::Path) -> Result<FollowerStore, FollowerStoreError> {
        let db = redb::Database::create(path).map_err(store_err)?;
        let txn = db.begin_write().map_err(store_err)?;
        txn.open_table(CURSOR).map_err(store_err)?;
        txn.open_table(WANTED).map_err(store_err)?;
        txn.commit().map_err(store_err)?;
        Ok(FollowerStore { db })
    }

    pub fn load(&self) -> Result<Saved, FollowerStoreError> {
        let txn = self.db.begin_read().map_err(store_err)?;
        let cursor = txn
            .open_table(CURSOR)
            .map_err(store_err)?
            .get("cursor")
            .map_err(store_err)?
            .map(|v| v.value());
        let table = txn.open_table(WANTED).map_err(store_err)?;
        let mut wanted = Vec::new();
        for row in table.iter().map_err(store_err)? {
            let (record, holder) = row.map_err(store_err)?;
            wanted.push((record.value().to_owned(), holder.value().to_owned()));
        }
        Ok(Saved { cursor, wanted })
    }

    /// In one transaction: the records no longer wanted, the newly wanted
    /// ones, then the cursor.
    pub fn save(&self, cursor: u64, unsaved: &Unsaved) -> Result<(), FollowerStoreError> {
        let txn = self.db.begin_write().map_err(store_err)?;
        {
            let mut wanted = txn.open_table(WANTED).map_err(store_err)?;
            for record in &unsaved.forgotten {
                wanted.remove(record.as_str()).map_err(store_err)?;
            }
            for (record, holder) in &unsaved.wanted {
                wanted
                    .insert(record.as_str(), holder.as_str())
                    .map_err(store_err)?;
            }
            txn.open_table(CURSOR)
                .map_err(store_err)?
                .insert("cursor", cursor)
                .map_err(store_err)?;
        }
        txn.commit().map_err(store_err)
    }
}

/// Changes to the wanted records not yet in the file.
#[derive(Debug, Default)]
pub struct Unsaved {
    pub wanted: Vec<(String, String)>,
    pub forgotten: Vec<String>,
    /// The cursor moved.
    pub moved: bool,
}

impl Unsaved {
    fn is_empty(&self) -> bool {
        self.wanted.is_empty() && self.forgotten.is_empty() && !self.moved
    }
}

/// A record waiting to be pulled.
struct Wanted {
    holder: String,
    due: Instant,
    /// Failed attempts and refusals so far.
    attempts: u32,
    /// Pulled now (in `running`).
    running: bool,
}

impl Wanted {
    /// Wanted from `holder`, due now.
    fn new(holder: String) -> Wanted {
        Wanted {
            holder,
            due: Instant::now(),
            attempts: 0,
            running: false,
        }
    }
}

/// Where `holder`'s HTTP API answers: the peers file's URL (`holders`), or
/// else the one the current validator set names for it (a node that
/// joined after the genesis is in no founder's peers file).
fn api_of(holders: &HashMap<String, String>, node: &Node, holder: &str) -> Option<String> {
    if let Some(api) = holders.get(holder) {
        return Some(api.clone());
    }
    let committed = node.state.read();
    let named = committed
        .state
        .network
        .validators()
        .iter()
        .find(|v| v.key == holder)?
        .api
        .as_deref()?;
    Some(named.trim_end_matches('/').to_owned())
}

struct Follower {
    node: Arc<Node>,
    puller: Arc<Puller>,
    /// Node key → its HTTP API.
    holders: HashMap<String, String>,
    limits: FollowerLimits,
    /// The log size whose entries were looked at.
    cursor: u64,
    store: Arc<FollowerStore>,
    unsaved: Unsaved,
    wanted: BTreeMap<String, Wanted>,
    running: JoinSet<(String, Pulled)>,
}

/// What the log entries since the cursor concern.
#[derive(Default)]
struct Touched {
    patients: BTreeSet<String>,
    /// Revoked grants (`consent.revoke`): their patients' copies are looked
    /// at again.
    revoked: BTreeSet<String>,
    everything: bool,
}

impl Follower {
    fn new(
        node: Arc<Node>,
        holders: HashMap<String, String>,
        http: reqwest::Client,
    ) -> Result<Follower, FollowerStoreError> {
        let limits = FollowerLimits::for_records_up_to(node.config.max_record_bytes);
        let store = FollowerStore::open(&node.config.data_dir.join(FOLLOWER_FILE))?;
        Ok(Follower {
            puller: Arc::new(Puller {
                http,
                key: Keypair::from_seed(&node.key.as_dalek().to_bytes()),
                me: node.node_did.clone(),
                custody: node.custody.clone(),
                fhir: node.fhir.clone(),
                to: node.custody.custodial_public().to_hex(),
                limits: limits.clone(),
            }),
            holders,
            limits,
            cursor: 0,
            store: Arc::new(store),
            unsaved: Unsaved::default(),
            wanted: BTreeMap::new(),
            running: JoinSet::new(),
            node,
        })
    }

    async fn run(mut self) {
        let mut progress = self.node.committed_size.clone();
        progress.borrow_and_update();
        let first_start = !self.restore().await;
        // At the first start every record is looked at (and the copies
        // received before copies were noted as such are noted); after, the
        // entries since the saved cursor are read and the full look waits
        // for its period.
        let mut next_rescan = if first_start {
            Instant::now()
        } else {
            Instant::now() + self.limits.rescan
        };
        let mut note_copies = first_start;
        loop {
            let covered = *progress.borrow_and_update();
            let mut touched = Touched::default();
            if covered > self.cursor {
                touched = self.read_entries(covered).await;
            }
            if Instant::now() >= next_rescan {
                touched.everything = true;
            }
            if touched.everything {
                next_rescan = Instant::now() + self.limits.rescan;
            }
            if touched.everything || !touched.patients.is_empty() || !touched.revoked.is_empty() {
                self.look_at(&touched, std::mem::take(&mut note_copies))
                    .await;
            }
            self.start_due();
            self.save().await;
            let next_due = self
                .wanted
                .values()
                .filter(|w| !w.running)
                .map(|w| w.due)
                .min()
                .unwrap_or(next_rescan)
                .min(next_rescan);
            tokio::select! {
                changed = progress.changed() => {
                    if changed.is_err() {
                        // The sequencer stopped: the node is shutting down.
                        return;
                    }
                }
                Some(done) = self.running.join_next(), if !self.running.is_empty() => {
                    match done {
                        Ok((record, pulled)) => self.finished(record, pulled),
                        Err(e) => tracing::error!(target: "hygeia::replication", error = %e, "a pull stopped"),
                    }
                }
                () = tokio::time::sleep_until(next_due) => {}
            }
        }
    }

    /// Reads the log entries from the cursor to `covered` (all applied to
    /// the committed state) and says whose records they concern.
    async fn read_entries(&mut self, covered: u64) -> Touched {
        let store = self.node.store.clone();
        let from = self.cursor;
        let read = tokio::task::spawn_blocking(move || {
            let mut touched = Touched::default();
            let view = store.snapshot()?;
            view.for_each_entry_from(from, |index, entry| {
                if index < covered && hygeia_state::may_change_state(entry) {
                    classify(entry, &mut touched);
                }
                Ok(())
            })?;
            Ok::<_, hygeia_ledger::StoreError>(touched)
        })
        .await;
        match read {
            Ok(Ok(touched)) => {
                self.cursor = covered;
                self.unsaved.moved = true;
                touched
            }
            Ok(Err(e)) => {
                tracing::error!(target: "hygeia::replication", error = %e, "cannot read the log's new entries; looking at every record");
                self.cursor = covered;
                self.unsaved.moved = true;
                Touched {
                    everything: true,
                    ..Touched::default()
                }
            }
            Err(e) => {
                tracing::error!(target: "hygeia::replication", error = %e, "reading the log's new entries stopped");
                Touched::default()
            }
        }
    }

    /// Reads the saved cursor and wanted records; false at the first start
    /// (nothing saved, or a cursor past the log: another log than the one
    /// it was saved for).
    async fn restore(&mut self) -> bool {
        // Without a saved cursor the full look covers the log so far.
        let size = *self.node.committed_size.borrow();
        self.cursor = size;
        self.unsaved.moved = true;
        let store = self.store.clone();
        let custody = self.node.custody.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            let saved = store.load()?;
            // A record kept before it could be forgotten in the file.
            let (held, wanted): (Vec<_>, Vec<_>) = saved
                .wanted
                .into_iter()
                .partition(|(record, _)| matches!(custody.meta(record), Ok(Some(_))));
            Ok::<_, FollowerStoreError>((saved.cursor, wanted, held))
        })
        .await;
        let (cursor, wanted, held) = match loaded {
            Ok(Ok(loaded)) => loaded,
            Ok(Err(e)) => {
                tracing::error!(target: "hygeia::replication", error = %e, "cannot read the follower's cursor; looking at every record");
                return false;
            }
            Err(e) => {
                tracing::error!(target: "hygeia::replication", error = %e, "reading the follower's cursor stopped; looking at every record");
                return false;
            }
        };
        self.unsaved
            .forgotten
            .extend(held.into_iter().map(|(record, _)| record));
        for (record, holder) in wanted {
            self.wanted.insert(record, Wanted::new(holder));
        }
        match cursor {
            Some(cursor) if cursor <= size => {
                self.cursor = cursor;
                tracing::info!(target: "hygeia::replication", cursor, wanted = self.wanted.len(), "follower resumes from its saved cursor");
                true
            }
            _ => false,
        }
    }

    /// Writes the cursor and the changes to the wanted records, in one
    /// transaction; on failure they are written with the next change.
    async fn save(&mut self) {
        if self.unsaved.is_empty() {
            return;
        }
        let unsaved = std::mem::take(&mut self.unsaved);
        let store = self.store.clone();
        let cursor = self.cursor;
        let saved = tokio::task::spawn_blocking(move || {
            let result = store.save(cursor, &unsaved);
            (result, unsaved)
        })
        .await;
        match saved {
            Ok((Ok(()), _)) => {}
            Ok((Err(e), unsaved)) => {
                tracing::error!(target: "hygeia::replication", error = %e, "cannot save the follower's cursor; retried with the next change");
                self.unsaved = unsaved;
            }
            Err(e) => {
                tracing::error!(target: "hygeia::replication", error = %e, "saving the follower's cursor stopped");
                self.unsaved.moved = true;
            }
        }
    }

    /// Adds the records of `touched` this node is entitled to and does not
    /// hold to the wanted ones, and destroys the copies of `touched` this
    /// node holds and is no longer entitled to ([`destroy_unentitled`]).
    async fn look_at(&mut self, touched: &Touched, note_copies: bool) {
        let me = self.node.node_did.clone();
        // An O(1) copy: the scan does not hold the readers' lock.
        let state = self.node.state.read().state.clone();
        let custody = self.node.custody.clone();
        let everything = touched.everything;
        let mut patients = touched.patients.clone();
        let consents = state.policy.consents();
        patients.extend(
            touched
                .revoked
                .iter()
                .filter_map(|grant| consents.get(grant).map(|g| g.patient.clone())),
        );
        let fhir = self.node.fhir.clone();
        let found = tokio::task::spawn_blocking(move || {
            let now = decision_time(&state);
            if note_copies {
                note_received_copies(&state, &me, &custody);
            }
            let copies = if everything {
                Copies::All
            } else {
                Copies::OfPatients(&patients)
            };
            let destroyed = destroy_unentitled(&state, &me, &custody, copies, now);
            for (record, code) in &destroyed {
                tracing::info!(target: "hygeia::replication", record = %record, code, "no longer entitled: the copy held here is destroyed");
            }
            let destroyed: Vec<String> = destroyed.into_iter().map(|(record, _)| record).collect();
            forget_in_fhir(&fhir.store, &custody, &state, &destroyed);
            let candidates: Vec<(String, String)> = if everything {
                wanted_records(&state, &me, state.records.all(), now)
            } else {
                patients
                    .iter()
                    .flat_map(|patient| {
                        wanted_records(&state, &me, state.records.of_patient(patient), now)
                    })
                    .collect()
            };
            candidates
                .into_iter()
                .filter(|(record, _)| !matches!(custody.meta(record), Ok(Some(_))))
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        for (record, holder) in found {
            if self.wanted.contains_key(&record) {
                continue;
            }
            self.unsaved.wanted.push((record.clone(), holder.clone()));
            self.wanted.insert(record, Wanted::new(holder));
        }
    }

    /// A record no longer wanted (kept, erased, or no longer entitled).
    fn forget(&mut self, record: &str) {
        self.wanted.remove(record);
        self.unsaved.forgotten.push(record.to_owned());
    }

    /// Starts the due pulls, up to the in-flight limit, after asking the
    /// rule again.
    fn start_due(&mut self) {
        let now = Instant::now();
        let running = self.wanted.values().filter(|w| w.running).count();
        let room = self.limits.in_flight.saturating_sub(running);
        if room == 0 {
            return;
        }
        let due: Vec<String> = self
            .wanted
            .iter()
            .filter(|(_, w)| !w.running && w.due <= now)
            .map(|(record, _)| record.clone())
            .collect();
        let mut started = 0;
        for record in due {
            if started == room {
                break;
            }
            let Some(wanted) = self.wanted.get_mut(&record) else {
                continue;
            };
            let entry = {
                let committed = self.node.state.read();
                let state = &committed.state;
                match entitled(
                    state,
                    &record,
                    &wanted.holder,
                    &self.node.node_did,
                    decision_time(state),
                ) {
                    Ok(()) => state.records.get(&record).cloned(),
                    Err(refused) => {
                        tracing::info!(target: "hygeia::replication", record = %record, code = refused.code.as_str(), "no longer entitled: not pulled");
                        None
                    }
                }
            };
            let Some(entry) = entry else {
                self.forget(&record);
                continue;
            };
            let Some(api) = api_of(&self.holders, &self.node, &wanted.holder) else {
                tracing::warn!(target: "hygeia::replication", record = %record, holder = %wanted.holder, "neither the peers file nor the validator set gives an api URL for the record's holder");
                wanted.attempts += 1;
                wanted.due = now + self.limits.max_wait;
                continue;
            };
            wanted.running = true;
            started += 1;
            let puller = self.puller.clone();
            let state = self.node.state.clone();
            self.running.spawn(async move {
                let pulled = puller.pull(&api, &entry, &state).await;
                (entry.commitment, pulled)
            });
        }
    }

    fn finished(&mut self, record: String, pulled: Pulled) {
        let Some(wanted) = self.wanted.get_mut(&record) else {
            return;
        };
        wanted.running = false;
        let first_wait = match pulled {
            Pulled::Stored { index } => {
                tracing::info!(target: "hygeia::replication", record = %record, holder = %wanted.holder, index, "replica received and kept");
                self.forget(&record);
                return;
            }
            Pulled::Gone => {
                self.forget(&record);
                return;
            }
            Pulled::Refused => {
                tracing::info!(target: "hygeia::replication", record = %record, holder = %wanted.holder, attempts = wanted.attempts + 1, "the holder refused the pull (404); retried later");
                self.limits.refused
            }
            Pulled::Failed(reason) => {
                tracing::warn!(target: "hygeia::replication", record = %record, holder = %wanted.holder, attempts = wanted.attempts + 1, error = %reason, "pull failed; retried later");
                self.limits.retry
            }
        };
        let wait = first_wait
            .saturating_mul(1u32 << wanted.attempts.min(16))
            .min(self.limits.max_wait);
        wanted.attempts = wanted.attempts.saturating_add(1);
        wanted.due = Instant::now() + wait;
    }
}

/// Notes what a log entry concerns: the patient of a record or a grant;
/// everything for an entry that can change whose node is entitled.
fn classify(entry: &[u8], touched: &mut Touched) {
    #[derive(Deserialize)]
    struct Head {
        #[serde(rename = "type")]
        tx_type: String,
        #[serde(default)]
        body: serde_json::Value,
    }
    let Ok(head) = serde_json::from_slice::<Head>(entry) else {
        return;
    };
    match head.tx_type.as_str() {
        "record" | "consent.grant" => {
            if let Some(patient) = head.body["patient"].as_str() {
                touched.patients.insert(patient.to_owned());
            }
        }
        "consent.revoke" => {
            if let Some(grant) = head.body["grant"].as_str() {
                touched.revoked.insert(grant.to_owned());
            }
        }
        "network.node" | "org.register" | "org.member" | "identity.rotate" => {
            touched.everything = true;
        }
        _ => {}
    }
}

/// The records of `records` this node (`me`) is entitled to receive from
/// their holder now: (commitment, holder).
fn wanted_records<'a>(
    state: &LedgerState,
    me: &str,
    records: impl Iterator<Item = &'a RecordEntry>,
    now: i64,
) -> Vec<(String, String)> {
    if state.replication.org_of(me).is_none() {
        return Vec::new();
    }
    records
        .filter(|r| r.erased_at.is_none())
        .filter_map(|r| {
            let holder = r.node.as_deref().filter(|holder| *holder != me)?;
            entitled(state, &r.commitment, holder, me, now).ok()?;
            Some((r.commitment.clone(), holder.to_owned()))
        })
        .collect()
}

/// The time the follower decides at: its clock or the ledger's, whichever
/// is later (as the holder decides, `crate::api::replicas`).
fn decision_time(state: &LedgerState) -> i64 {
    (unix_now() as i64).max(state.escrows.clock)
}

/// Which copies [`destroy_unentitled`] looks at.
pub enum Copies<'a> {
    /// Every copy this node holds.
    All,
    /// The copies of these patients' records.
    OfPatients(&'a BTreeSet<String>),
}

/// Takes destroyed copies out of the FHIR store (they are no longer held
/// here, so nothing of them may be searched or read through it).
fn forget_in_fhir(
    store: &crate::fhir_store::FhirStore,
    custody: &Custody,
    state: &LedgerState,
    destroyed: &[String],
) {
    if destroyed.is_empty() {
        return;
    }
    if let Err(e) = crate::fhir_store::forget_destroyed(store, custody, &state.records, destroyed) {
        tracing::error!(target: "hygeia::replication", error = %e, "destroyed copies could not be taken out of the FHIR store");
    }
}

/// Destroys, through the erasure path ([`Custody::erase`]: every wrapped
/// key, the ciphertext, the metadata), each copy among `copies` that this
/// node (`me`) holds of another node's record and is no longer entitled to
/// receive at `now` (a revoked or expired grant, a membership ended, this
/// node no longer its organization's, the record erased): what a node could
/// not be sent now, it does not keep. The records this node holds itself
/// are never looked at. Returns (commitment, refusal code) of each copy
/// destroyed.
pub fn destroy_unentitled(
    state: &LedgerState,
    me: &str,
    custody: &Custody,
    copies: Copies<'_>,
    now: i64,
) -> Vec<(String, &'static str)> {
    let records: Vec<&RecordEntry> = match copies {
        Copies::All => match custody.replicas() {
            Ok(copies) => copies
                .iter()
                .filter_map(|(record, _)| state.records.get(record))
                .collect(),
            Err(e) => {
                tracing::error!(target: "hygeia::replication", error = %e, "cannot list the copies held here");
                Vec::new()
            }
        },
        // Only what the vault notes as a copy: a record of this node's
        // under a key it has since rotated away from is its own, not one.
        Copies::OfPatients(patients) => patients
            .iter()
            .flat_map(|patient| state.records.of_patient(patient))
            .filter(|record| matches!(custody.is_replica(&record.commitment), Ok(true)))
            .collect(),
    };
    let mut destroyed = Vec::new();
    for record in records {
        let Some(holder) = record.node.as_deref().filter(|holder| *holder != me) else {
            continue;
        };
        let Err(refused) = entitled(state, &record.commitment, holder, me, now) else {
            continue;
        };
        match custody.erase(&record.commitment) {
            Ok(Some(_)) => destroyed.push((record.commitment.clone(), refused.code.as_str())),
            Ok(None) => {}
            Err(e) => {
                tracing::error!(target: "hygeia::replication", record = %record.commitment, error = %e, "a copy no longer entitled could not be destroyed; retried at the next look");
            }
        }
    }
    destroyed
}

/// Notes as copies the records of other nodes this node's vault holds and
/// the ledger says were sent to it (`record.replicate`), received before
/// copies were noted as such, so that [`destroy_unentitled`] finds them.
fn note_received_copies(state: &LedgerState, me: &str, custody: &Custody) {
    let noted: BTreeSet<String> = match custody.replicas() {
        Ok(copies) => copies.into_iter().map(|(record, _)| record).collect(),
        Err(e) => {
            tracing::error!(target: "hygeia::replication", error = %e, "cannot list the copies held here");
            return;
        }
    };
    for record in state.records.all() {
        let Some(holder) = record.node.as_deref().filter(|holder| *holder != me) else {
            continue;
        };
        let sent_here = state
            .replication
            .replicas_of(&record.commitment)
            .any(|to| to == me);
        if !sent_here
            || noted.contains(&record.commitment)
            || !matches!(custody.meta(&record.commitment), Ok(Some(_)))
        {
            continue;
        }
        if let Err(e) = custody.note_replica(&record.commitment, holder) {
            tracing::error!(target: "hygeia::replication", record = %record.commitment, error = %e, "cannot note a copy held here");
        }
    }
}

/// How one pull ended.
enum Pulled {
    /// Kept; the `record.replicate` event is at `index`.
    Stored {
        index: u64,
    },
    /// The record was erased while it was pulled: dropped.
    Gone,
    /// The holder answered 404.
    Refused,
    Failed(String),
}

/// What a pull needs, without the node itself (a pull running at shutdown
/// does not keep the node open).
struct Puller {
    http: reqwest::Client,
    key: Keypair,
    /// This node's key.
    me: String,
    custody: Arc<Custody>,
    /// Where a kept copy of a FHIR resource is indexed.
    fhir: Arc<crate::fhir_store::FhirService>,
    /// This node's custodial X25519 key, hex.
    to: String,
    limits: FollowerLimits,
}

impl Puller {
    async fn pull(
        &self,
        api: &str,
        entry: &RecordEntry,
        state: &hygeia_state::writer::SharedState,
    ) -> Pulled {
        match tokio::time::timeout(self.limits.timeout, self.fetch(api, entry)).await {
            Err(_) => Pulled::Failed(format!(
                "no whole answer within {} s",
                self.limits.timeout.as_secs()
            )),
            Ok(Err(pulled)) => pulled,
            Ok(Ok(answer)) => self.keep(entry, answer, state).await,
        }
    }

    /// Asks the holder for the record; its answer, read within the limit.
    async fn fetch(&self, api: &str, entry: &RecordEntry) -> Result<ReplicaAnswer, Pulled> {
        let path = format!("/v1/replicas/{}?to={}", entry.commitment, self.to);
        let signed = hygeia_auth::sign_request(
            &self.key,
            &reqwest::Method::GET,
            &path,
            None,
            unix_now(),
            &hygeia_auth::random_nonce(),
        )
        .map_err(|e| Pulled::Failed(format!("cannot sign the request: {e}")))?;
        let mut response = self
            .http
            .get(format!("{api}{path}"))
            .header("signature-input", signed.signature_input)
            .header("signature", signed.signature)
            .send()
            .await
            .map_err(|e| Pulled::Failed(format!("{api}: {e}")))?;
        match response.status().as_u16() {
            200 => {}
            404 => return Err(Pulled::Refused),
            status => return Err(Pulled::Failed(format!("{api} answered {status}"))),
        }
        let limit = self.limits.max_body_bytes;
        if response.content_length().is_some_and(|n| n > limit) {
            return Err(Pulled::Failed(format!(
                "the answer is larger than {limit} bytes"
            )));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| Pulled::Failed(format!("{api}: {e}")))?
        {
            if body.len() as u64 + chunk.len() as u64 > limit {
                return Err(Pulled::Failed(format!(
                    "the answer is larger than {limit} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        let answer = ReplicaAnswer::parse(&body).map_err(|e| Pulled::Failed(e.to_string()))?;
        if answer.record != entry.commitment {
            return Err(Pulled::Failed("the answer is about another record".into()));
        }
        Ok(answer)
    }

    /// Checks and keeps a copy; drops it again if the record was erased
    /// meanwhile (the erasure ran before there was anything to erase).
    async fn keep(
        &self,
        entry: &RecordEntry,
        answer: ReplicaAnswer,
        state: &hygeia_state::writer::SharedState,
    ) -> Pulled {
        let index = answer.index;
        let custody = self.custody.clone();
        let record = entry.clone();
        let author_key = author_key(&state.read().state.identities, entry);
        let stored = tokio::task::spawn_blocking(move || {
            let replica = answer.into_replica()?;
            custody.store_replica(&record, &author_key, &replica)
        })
        .await;
        match stored {
            Err(e) => return Pulled::Failed(e.to_string()),
            Ok(Err(refused)) => {
                tracing::warn!(target: "hygeia::replication", record = %entry.commitment, error = %refused, "the holder's copy was refused");
                return Pulled::Failed(refused.to_string());
            }
            Ok(Ok(())) => {}
        }
        // Erased, revoked or expired while it was pulled: the erasure or
        // the look that followed ran before there was anything to destroy.
        let still = {
            let committed = state.read();
            let holder = entry.node.as_deref().unwrap_or_default();
            entitled(
                &committed.state,
                &entry.commitment,
                holder,
                &self.me,
                decision_time(&committed.state),
            )
        };
        if let Err(refused) = still {
            match self.custody.erase(&entry.commitment) {
                Ok(_) => {
                    tracing::info!(target: "hygeia::replication", record = %entry.commitment, code = refused.code.as_str(), "no longer entitled once received: the copy is destroyed")
                }
                Err(e) => {
                    tracing::error!(target: "hygeia::replication", record = %entry.commitment, error = %e, "a copy no longer entitled once received could not be destroyed; retried at the next look")
                }
            }
            return Pulled::Gone;
        }
        // A copy of a FHIR resource is searched and read through this
        // node's FHIR API too, as soon as it is kept.
        let (custody, fhir, commitment) = (
            self.custody.clone(),
            self.fhir.clone(),
            entry.commitment.clone(),
        );
        let committed = state.read().state.clone();
        let indexed = tokio::task::spawn_blocking(move || {
            crate::fhir_store::index_received(
                &fhir.store,
                &custody,
                &committed.records,
                &commitment,
            )
        })
        .await;
        match indexed {
            Ok(Ok(true)) => {
                tracing::debug!(target: "hygeia::replication", record = %entry.commitment, "the copy is indexed for FHIR")
            }
            Ok(Ok(false)) => {}
            Ok(Err(e)) => {
                tracing::error!(target: "hygeia::replication", record = %entry.commitment, error = %e, "the copy could not be indexed for FHIR; indexed at the next start")
            }
            Err(e) => {
                tracing::error!(target: "hygeia::replication", record = %entry.commitment, error = %e, "the copy could not be indexed for FHIR; indexed at the next start")
            }
        }
        Pulled::Stored { index }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_say_whose_records_to_look_at() {
        let mut touched = Touched::default();
        classify(
            br#"{"body":{"patient":"did:key:zP","commitment":"ab"},"type":"record","v":1}"#,
            &mut touched,
        );
        classify(
            br#"{"body":{"patient":"did:key:zQ"},"type":"consent.grant","v":1}"#,
            &mut touched,
        );
        classify(
            br#"{"body":{"record":"ab"},"type":"record.erase","v":1}"#,
            &mut touched,
        );
        classify(
            br#"{"body":{"grant":"77"},"type":"consent.revoke","v":1}"#,
            &mut touched,
        );
        classify(b"not json", &mut touched);
        assert_eq!(
            touched.patients.iter().collect::<Vec<_>>(),
            ["did:key:zP", "did:key:zQ"]
        );
        assert_eq!(touched.revoked.iter().collect::<Vec<_>>(), ["77"]);
        assert!(!touched.everything);
        classify(
            br#"{"body":{"org":"did:web:b.example","node":"did:key:zN"},"type":"network.node","v":1}"#,
            &mut touched,
        );
        assert!(touched.everything);
    }

    /// A holder in no peers file is pulled from at the URL the validator
    /// set names for it; a peers file's URL comes first.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_holder_the_peers_file_does_not_name_is_found_in_the_validator_set() {
        use crate::api::tests::did;
        let (net, _cast) = crate::api::tests::Net::network().await;
        let joiner = Keypair::generate();
        let (me, joiner_did) = (net.node.node_did.clone(), did(&joiner).to_string());
        assert_eq!(api_of(&HashMap::new(), &net.node, &joiner_did), None);
        net.submit_ok(
            &net.governance,
            "network.custodian",
            serde_json::json!({"op": "add", "key": joiner_did}),
        )
        .await;
        net.submit_ok(
            &net.governance,
            "network.validators",
            serde_json::json!({"epoch": 1, "validators": [
                {"key": me, "address": "127.0.0.1:7201"},
                {"key": joiner_did, "address": "127.0.0.1:7205", "api": "http://127.0.0.1:7215/"},
            ]}),
        )
        .await;
        assert_eq!(
            api_of(&HashMap::new(), &net.node, &joiner_did).as_deref(),
            Some("http://127.0.0.1:7215")
        );
        // Named without a URL, or not named at all: none.
        assert_eq!(api_of(&HashMap::new(), &net.node, &me), None);
        assert_eq!(
            api_of(&HashMap::new(), &net.node, "did:key:z6Mkother"),
            None
        );
        let peers_file = HashMap::from([(joiner_did.clone(), "http://10.0.0.5:7215".to_owned())]);
        assert_eq!(
            api_of(&peers_file, &net.node, &joiner_did).as_deref(),
            Some("http://10.0.0.5:7215")
        );
    }

    fn follower(net: &crate::api::tests::Net) -> Follower {
        Follower::new(net.node.clone(), HashMap::new(), reqwest::Client::new()).unwrap()
    }

    /// The cursor and the wanted records are in `replication.redb`: a
    /// follower started again resumes from the cursor (no look at every
    /// record) with the records it still wanted, and forgets one its vault
    /// now holds.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_cursor_and_the_wanted_records_survive_a_restart() {
        let (net, _cast) = crate::api::tests::Net::network().await;
        let mut first = follower(&net);
        assert!(!first.restore().await, "nothing saved: a first start");
        let covered = *net.node.committed_size.borrow();
        assert!(covered > 1);
        assert_eq!(
            first.cursor, covered,
            "the first full look covers the log so far"
        );
        let wanted = "ab".repeat(32);
        let kept = "cd".repeat(32);
        for record in [&wanted, &kept] {
            first
                .unsaved
                .wanted
                .push((record.clone(), "did:key:zHolder".into()));
        }
        first.save().await;
        assert!(first.unsaved.is_empty());
        drop(first);
        // Meanwhile the vault came to hold one of them.
        net.node
            .custody
            .save_meta(
                &kept,
                &crate::custody::RecordMeta {
                    blob: "ef".repeat(32),
                    salt: "01".repeat(16),
                    media_type: "application/fhir+json".into(),
                    author: "did:key:zAuthor".into(),
                    provenance: String::new(),
                    size: 1,
                },
            )
            .unwrap();

        let mut second = follower(&net);
        assert!(second.restore().await, "resumed from the saved cursor");
        assert_eq!(second.cursor, covered);
        assert_eq!(second.wanted.keys().collect::<Vec<_>>(), [&wanted]);
        assert_eq!(second.wanted[&wanted].holder, "did:key:zHolder");
        assert_eq!(second.unsaved.forgotten, std::slice::from_ref(&kept));
        second.save().await;
        drop(second);
        let saved = FollowerStore::open(&net.node.config.data_dir.join(FOLLOWER_FILE))
            .unwrap()
            .load()
            .unwrap();
        assert_eq!(
            saved,
            Saved {
                cursor: Some(covered),
                wanted: vec![(wanted, "did:key:zHolder".into())],
            }
        );
    }

    /// A cursor past the log (a data directory whose log was replaced) is
    /// not trusted: every record is looked at again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cursor_past_the_log_is_a_first_start() {
        let net = crate::api::tests::Net::start();
        let size = *net.node.committed_size.borrow();
        FollowerStore::open(&net.node.config.data_dir.join(FOLLOWER_FILE))
            .unwrap()
            .save(
                size + 100,
                &Unsaved {
                    moved: true,
                    ..Unsaved::default()
                },
            )
            .unwrap();
        let mut follower = follower(&net);
        assert!(!follower.restore().await);
        assert_eq!(follower.cursor, size);
    }

    /// A damaged `replication.redb` does not stop replication: it is set
    /// aside and the follower starts as at a first start.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_damaged_follower_file_is_set_aside_and_every_record_looked_at() {
        let net = crate::api::tests::Net::start();
        let path = net.node.config.data_dir.join(FOLLOWER_FILE);
        std::fs::write(&path, vec![0x5a; 8192]).unwrap();
        let mut follower = follower(&net);
        assert!(!follower.restore().await, "a first start");
        assert_eq!(follower.cursor, *net.node.committed_size.borrow());
        assert_eq!(
            std::fs::read(path.with_extension("redb.damaged")).unwrap(),
            vec![0x5a; 8192],
            "the damaged file is kept aside, as it was"
        );
        follower.save().await;
        drop(follower);
        let saved = FollowerStore::open(&path).unwrap().load().unwrap();
        assert_eq!(saved.cursor, Some(*net.node.committed_size.borrow()));
    }

    #[test]
    fn the_body_limit_holds_a_record_of_the_largest_size() {
        let limits = FollowerLimits::for_records_up_to(1 << 20);
        // Base64 of a 1 MiB ciphertext with its tags is about 1.4 MB.
        assert!(limits.max_body_bytes > (1 << 20) * 4 / 3 + (1 << 20) / 1024 * 4 / 3);
        assert!(limits.max_body_bytes < 2 << 20);
    }
}
