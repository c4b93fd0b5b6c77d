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
//! Everything is logged with `tracing`, target `hygeia::replication`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use hygeia_identity::Keypair;
use hygeia_state::records::RecordEntry;
use hygeia_state::replication::entitled;
use hygeia_state::LedgerState;
use serde::Deserialize;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::custody::replica::ReplicaAnswer;
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
        tracing::warn!(target: "hygeia::replication", "the peers file names no other node's api URL: this node pulls no record");
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
    let limits = FollowerLimits::for_records_up_to(node.config.max_record_bytes);
    let cursor = *node.committed_size.borrow();
    let follower = Follower {
        puller: Arc::new(Puller {
            http,
            key: Keypair::from_seed(&node.key.as_dalek().to_bytes()),
            custody: node.custody.clone(),
            to: node.custody.custodial_public().to_hex(),
            limits: limits.clone(),
        }),
        holders,
        limits,
        cursor,
        wanted: BTreeMap::new(),
        running: JoinSet::new(),
        node,
    };
    Some(tokio::spawn(follower.run()))
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

struct Follower {
    node: Arc<Node>,
    puller: Arc<Puller>,
    /// Node key → its HTTP API.
    holders: HashMap<String, String>,
    limits: FollowerLimits,
    /// The log size whose entries were looked at.
    cursor: u64,
    wanted: BTreeMap<String, Wanted>,
    running: JoinSet<(String, Pulled)>,
}

/// What the log entries since the cursor concern.
#[derive(Default)]
struct Touched {
    patients: BTreeSet<String>,
    everything: bool,
}

impl Follower {
    async fn run(mut self) {
        let mut progress = self.node.committed_size.clone();
        progress.borrow_and_update();
        let mut next_rescan = Instant::now();
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
            if touched.everything || !touched.patients.is_empty() {
                self.look_at(&touched).await;
            }
            self.start_due();
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
                touched
            }
            Ok(Err(e)) => {
                tracing::error!(target: "hygeia::replication", error = %e, "cannot read the log's new entries; looking at every record");
                self.cursor = covered;
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

    /// Adds the records of `touched` this node is entitled to and does not
    /// hold to the wanted ones.
    async fn look_at(&mut self, touched: &Touched) {
        let me = self.node.node_did.clone();
        // An O(1) copy: the scan does not hold the readers' lock.
        let state = self.node.state.read().state.clone();
        let custody = self.node.custody.clone();
        let everything = touched.everything;
        let patients = touched.patients.clone();
        let found = tokio::task::spawn_blocking(move || {
            let now = unix_now() as i64;
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
            self.wanted.entry(record).or_insert_with(|| Wanted {
                holder,
                due: Instant::now(),
                attempts: 0,
                running: false,
            });
        }
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
                    unix_now() as i64,
                ) {
                    Ok(()) => state.records.get(&record).cloned(),
                    Err(refused) => {
                        tracing::info!(target: "hygeia::replication", record = %record, code = refused.code.as_str(), "no longer entitled: not pulled");
                        None
                    }
                }
            };
            let Some(entry) = entry else {
                self.wanted.remove(&record);
                continue;
            };
            let Some(api) = self.holders.get(&wanted.holder).cloned() else {
                tracing::warn!(target: "hygeia::replication", record = %record, holder = %wanted.holder, "the peers file gives no api URL for the record's holder");
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
                self.wanted.remove(&record);
                return;
            }
            Pulled::Gone => {
                self.wanted.remove(&record);
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
    custody: Arc<Custody>,
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
        let stored = tokio::task::spawn_blocking(move || {
            let replica = answer.into_replica()?;
            custody.store_replica(&record, &replica)
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
        let erased = state
            .read()
            .state
            .records
            .get(&entry.commitment)
            .is_none_or(|r| r.erased_at.is_some());
        if erased {
            if let Err(e) = self.custody.erase(&entry.commitment) {
                tracing::error!(target: "hygeia::replication", record = %entry.commitment, error = %e, "a copy received as its record was erased could not be destroyed; it will be at the next start");
            }
            return Pulled::Gone;
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
        classify(b"not json", &mut touched);
        assert_eq!(
            touched.patients.iter().collect::<Vec<_>>(),
            ["did:key:zP", "did:key:zQ"]
        );
        assert!(!touched.everything);
        classify(
            br#"{"body":{"org":"did:web:b.example","node":"did:key:zN"},"type":"network.node","v":1}"#,
            &mut touched,
        );
        assert!(touched.everything);
    }

    #[test]
    fn the_body_limit_holds_a_record_of_the_largest_size() {
        let limits = FollowerLimits::for_records_up_to(1 << 20);
        // Base64 of a 1 MiB ciphertext with its tags is about 1.4 MB.
        assert!(limits.max_body_bytes > (1 << 20) * 4 / 3 + (1 << 20) / 1024 * 4 / 3);
        assert!(limits.max_body_bytes < 2 << 20);
    }
}
