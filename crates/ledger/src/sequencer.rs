//! The sequencer: one thread that turns queued submissions into durable
//! batches.
//!
//! Submissions wait in a queue; the sequencer takes everything queued (up to
//! `max_batch_txs`, waiting at most `max_wait` for more), appends it in one
//! redb write transaction, and only after that transaction is on disk
//! answers each submitter with its leaf indexes and the signed checkpoint
//! that includes them. While one batch is being made durable, the next one
//! fills up: group commit.
//!
//! Signatures of transactions submitted unverified are checked by a second
//! stage ahead of the writer, on every core, for everything queued at once:
//! the writer never waits for signature checks, and one-transaction requests
//! are verified as efficiently as large submissions.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, TryRecvError};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::checkpoint::SignedCheckpoint;
use crate::error::TxError;
use crate::merkle::Hash;
use crate::state::{NoState, StateMachine};
use crate::store::LogWriter;
use crate::tx::{signature_checks, SignedTx, UnverifiedTx};

/// Most signatures the verifier stage takes on at once.
const MAX_VERIFY_BATCH: usize = 1024;

/// How batches are formed.
#[derive(Debug, Clone, Copy)]
pub struct BatchConfig {
    /// Most transactions in one batch (one durable write).
    pub max_batch_txs: usize,
    /// How long the sequencer waits for more submissions once it has one.
    /// Zero means "take what is queued": while a batch is being written the
    /// queue fills by itself, which is what makes batches under load.
    pub max_wait: Duration,
    /// Most transactions waiting in the queue before new submissions are
    /// refused as overloaded.
    pub max_queued_txs: usize,
}

impl Default for BatchConfig {
    /// Chosen by measurement (see BENCHMARKS.md).
    fn default() -> Self {
        BatchConfig {
            max_batch_txs: 8192,
            max_wait: Duration::ZERO,
            max_queued_txs: 262_144,
        }
    }
}

/// The acknowledgement of a durable submission.
#[derive(Debug, Clone)]
pub struct Receipt {
    /// Leaf index of the submission's first transaction; the others follow.
    pub first_index: u64,
    pub leaf_hashes: Vec<Hash>,
    /// A signed checkpoint whose tree includes every one of these leaves.
    pub checkpoint: Arc<SignedCheckpoint>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum SubmitError {
    #[error(transparent)]
    Rejected(TxError),
    #[error("the node is overloaded: {queued} transactions are waiting; retry shortly")]
    Overloaded { queued: usize },
    #[error("the log could not be written: {0}")]
    Storage(String),
    #[error("the node is shutting down")]
    ShuttingDown,
}

type Reply = oneshot::Sender<Result<Receipt, SubmitError>>;

struct Job {
    txs: Vec<SignedTx>,
    reply: Reply,
}

struct UnverifiedJob {
    txs: Vec<UnverifiedTx>,
    reply: Reply,
}

/// Handle to the sequencer thread. Dropping it lets the thread finish the
/// queued work and stop.
pub struct Sequencer {
    queue: Option<mpsc::Sender<Job>>,
    verify_queue: Option<mpsc::Sender<UnverifiedJob>>,
    queued: Arc<AtomicUsize>,
    latest: Arc<RwLock<Arc<SignedCheckpoint>>>,
    config: BatchConfig,
    threads: Vec<JoinHandle<()>>,
}

impl Sequencer {
    pub fn start(writer: LogWriter, config: BatchConfig) -> Sequencer {
        Self::start_with_state(writer, config, Box::new(NoState))
    }

    /// Starts a sequencer whose batches are admitted by `state` (see
    /// [`StateMachine`]) before they are written.
    pub fn start_with_state(
        writer: LogWriter,
        config: BatchConfig,
        state: Box<dyn StateMachine>,
    ) -> Sequencer {
        let (queue, jobs) = mpsc::channel::<Job>();
        let (verify_queue, unverified) = mpsc::channel::<UnverifiedJob>();
        let queued = Arc::new(AtomicUsize::new(0));
        let latest = Arc::new(RwLock::new(Arc::new(writer.checkpoint().clone())));
        let writer_thread = {
            let queued = queued.clone();
            let latest = latest.clone();
            std::thread::Builder::new()
                .name("hygeia-sequencer".into())
                .spawn(move || run(writer, state, jobs, queued, latest, config))
                .expect("spawning the sequencer thread")
        };
        let verifier_thread = {
            let queued = queued.clone();
            let verified = queue.clone();
            std::thread::Builder::new()
                .name("hygeia-verifier".into())
                .spawn(move || run_verifier(unverified, verified, queued))
                .expect("spawning the verifier thread")
        };
        Sequencer {
            queue: Some(queue),
            verify_queue: Some(verify_queue),
            queued,
            latest,
            config,
            threads: vec![verifier_thread, writer_thread],
        }
    }

    /// The latest durable signed checkpoint.
    pub fn latest_checkpoint(&self) -> Arc<SignedCheckpoint> {
        self.latest
            .read()
            .map(|c| c.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Queues verified transactions and waits until they are durable (or
    /// refused). A submission is all or nothing.
    pub async fn submit(&self, txs: Vec<SignedTx>) -> Result<Receipt, SubmitError> {
        let n = txs.len();
        self.reserve(n)?;
        let (reply, answer) = oneshot::channel();
        let sent = self
            .queue
            .as_ref()
            .is_some_and(|q| q.send(Job { txs, reply }).is_ok());
        self.wait(n, sent, answer).await
    }

    /// Like [`Sequencer::submit`] for transactions whose signatures are not
    /// checked yet: they are checked together with everything else queued,
    /// on every core, and a submission with a bad signature is refused
    /// whole, naming it.
    pub async fn submit_unverified(&self, txs: Vec<UnverifiedTx>) -> Result<Receipt, SubmitError> {
        let n = txs.len();
        self.reserve(n)?;
        let (reply, answer) = oneshot::channel();
        let sent = self
            .verify_queue
            .as_ref()
            .is_some_and(|q| q.send(UnverifiedJob { txs, reply }).is_ok());
        self.wait(n, sent, answer).await
    }

    fn reserve(&self, n: usize) -> Result<(), SubmitError> {
        let before = self.queued.fetch_add(n, Ordering::AcqRel);
        if before + n > self.config.max_queued_txs && before > 0 {
            self.queued.fetch_sub(n, Ordering::AcqRel);
            return Err(SubmitError::Overloaded { queued: before });
        }
        Ok(())
    }

    async fn wait(
        &self,
        n: usize,
        sent: bool,
        answer: oneshot::Receiver<Result<Receipt, SubmitError>>,
    ) -> Result<Receipt, SubmitError> {
        if !sent {
            self.queued.fetch_sub(n, Ordering::AcqRel);
            return Err(SubmitError::ShuttingDown);
        }
        answer.await.unwrap_or(Err(SubmitError::ShuttingDown))
    }
}

impl Drop for Sequencer {
    fn drop(&mut self) {
        // The verifier holds its own sender to the writer: closing the
        // verifier's queue ends it, which in turn lets the writer finish.
        self.verify_queue.take();
        self.queue.take();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn run_verifier(
    unverified: mpsc::Receiver<UnverifiedJob>,
    verified: mpsc::Sender<Job>,
    queued: Arc<AtomicUsize>,
) {
    while let Ok(first) = unverified.recv() {
        let mut count = first.txs.len();
        let mut jobs = vec![first];
        while count < MAX_VERIFY_BATCH {
            match unverified.try_recv() {
                Ok(job) => {
                    count += job.txs.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let all: Vec<&UnverifiedTx> = jobs.iter().flat_map(|job| job.txs.iter()).collect();
        let checks = signature_checks(&all);
        drop(all);
        let mut offset = 0;
        for job in jobs {
            let n = job.txs.len();
            let bad = checks[offset..offset + n].iter().position(|ok| !ok);
            offset += n;
            match bad {
                None => {
                    let txs = job
                        .txs
                        .into_iter()
                        .map(UnverifiedTx::into_verified)
                        .collect();
                    if let Err(mpsc::SendError(job)) = verified.send(Job {
                        txs,
                        reply: job.reply,
                    }) {
                        queued.fetch_sub(n, Ordering::AcqRel);
                        let _ = job.reply.send(Err(SubmitError::ShuttingDown));
                    }
                }
                Some(position) => {
                    queued.fetch_sub(n, Ordering::AcqRel);
                    let error = crate::tx::bad_signature().at(position);
                    let _ = job.reply.send(Err(SubmitError::Rejected(error)));
                }
            }
        }
    }
}

fn run(
    mut writer: LogWriter,
    mut state: Box<dyn StateMachine>,
    jobs: mpsc::Receiver<Job>,
    queued: Arc<AtomicUsize>,
    latest: Arc<RwLock<Arc<SignedCheckpoint>>>,
    config: BatchConfig,
) {
    while let Ok(first) = jobs.recv() {
        let mut batch_txs = first.txs.len();
        let mut batch = vec![first];
        let deadline = Instant::now() + config.max_wait;
        while batch_txs < config.max_batch_txs {
            let next = match jobs.try_recv() {
                Ok(job) => Some(job),
                Err(TryRecvError::Disconnected) => None,
                Err(TryRecvError::Empty) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        None
                    } else {
                        jobs.recv_timeout(left).ok()
                    }
                }
            };
            let Some(job) = next else { break };
            batch_txs += job.txs.len();
            batch.push(job);
        }
        commit(&mut writer, state.as_mut(), batch, &latest);
        queued.fetch_sub(batch_txs, Ordering::AcqRel);
    }
}

fn commit(
    writer: &mut LogWriter,
    state: &mut dyn StateMachine,
    batch: Vec<Job>,
    latest: &RwLock<Arc<SignedCheckpoint>>,
) {
    let submissions: Vec<&[SignedTx]> = batch.iter().map(|job| job.txs.as_slice()).collect();
    let started = Instant::now();
    match writer.append_batch_with(&submissions, state) {
        Ok(outcome) => {
            let checkpoint = Arc::new(outcome.checkpoint);
            if let Ok(mut slot) = latest.write() {
                *slot = checkpoint.clone();
            }
            tracing::debug!(
                txs = submissions.iter().map(|s| s.len()).sum::<usize>(),
                size = checkpoint.size,
                micros = started.elapsed().as_micros() as u64,
                "batch committed"
            );
            for (job, result) in batch.into_iter().zip(outcome.results) {
                let answer = result
                    .map(|first_index| Receipt {
                        first_index,
                        leaf_hashes: job.txs.iter().map(|tx| tx.leaf_hash()).collect(),
                        checkpoint: checkpoint.clone(),
                    })
                    .map_err(SubmitError::Rejected);
                let _ = job.reply.send(answer);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "batch could not be written; nothing of it was acknowledged");
            for job in batch {
                let _ = job.reply.send(Err(SubmitError::Storage(e.to_string())));
            }
        }
    }
}
