//! The sequencer: one thread that turns queued submissions into durable
//! batches.
//!
//! Submissions wait in a queue; the sequencer takes everything queued (up to
//! `max_batch_txs`, waiting at most `max_wait` for more), appends it in one
//! redb write transaction, and only after that transaction is on disk
//! answers each submitter with its leaf indexes and the signed checkpoint
//! that includes them. While one batch is being made durable, the next one
//! fills up: group commit.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::checkpoint::SignedCheckpoint;
use crate::error::TxError;
use crate::merkle::Hash;
use crate::store::LogWriter;
use crate::tx::SignedTx;

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

struct Job {
    txs: Vec<SignedTx>,
    reply: oneshot::Sender<Result<Receipt, SubmitError>>,
}

/// Handle to the sequencer thread. Dropping it lets the thread finish the
/// queued work and stop.
pub struct Sequencer {
    queue: Option<mpsc::Sender<Job>>,
    queued: Arc<AtomicUsize>,
    latest: Arc<RwLock<Arc<SignedCheckpoint>>>,
    config: BatchConfig,
    thread: Option<JoinHandle<()>>,
}

impl Sequencer {
    pub fn start(writer: LogWriter, config: BatchConfig) -> Sequencer {
        let (queue, jobs) = mpsc::channel::<Job>();
        let queued = Arc::new(AtomicUsize::new(0));
        let latest = Arc::new(RwLock::new(Arc::new(writer.checkpoint().clone())));
        let thread = {
            let queued = queued.clone();
            let latest = latest.clone();
            std::thread::Builder::new()
                .name("hygeia-sequencer".into())
                .spawn(move || run(writer, jobs, queued, latest, config))
                .expect("spawning the sequencer thread")
        };
        Sequencer {
            queue: Some(queue),
            queued,
            latest,
            config,
            thread: Some(thread),
        }
    }

    /// The latest durable signed checkpoint.
    pub fn latest_checkpoint(&self) -> Arc<SignedCheckpoint> {
        self.latest.read().map(|c| c.clone()).unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Queues a submission and waits until it is durable (or refused).
    /// A submission is all or nothing.
    pub async fn submit(&self, txs: Vec<SignedTx>) -> Result<Receipt, SubmitError> {
        let n = txs.len();
        let before = self.queued.fetch_add(n, Ordering::AcqRel);
        if before + n > self.config.max_queued_txs && before > 0 {
            self.queued.fetch_sub(n, Ordering::AcqRel);
            return Err(SubmitError::Overloaded { queued: before });
        }
        let (reply, answer) = oneshot::channel();
        let sent = self
            .queue
            .as_ref()
            .map(|q| q.send(Job { txs, reply }).is_ok())
            .unwrap_or(false);
        if !sent {
            self.queued.fetch_sub(n, Ordering::AcqRel);
            return Err(SubmitError::ShuttingDown);
        }
        answer.await.unwrap_or(Err(SubmitError::ShuttingDown))
    }
}

impl Drop for Sequencer {
    fn drop(&mut self) {
        self.queue.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(
    mut writer: LogWriter,
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
                        match jobs.recv_timeout(left) {
                            Ok(job) => Some(job),
                            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => None,
                        }
                    }
                }
            };
            let Some(job) = next else { break };
            batch_txs += job.txs.len();
            batch.push(job);
        }
        commit(&mut writer, batch, &latest);
        queued.fetch_sub(batch_txs, Ordering::AcqRel);
    }
}

fn commit(writer: &mut LogWriter, batch: Vec<Job>, latest: &RwLock<Arc<SignedCheckpoint>>) {
    let submissions: Vec<&[SignedTx]> = batch.iter().map(|job| job.txs.as_slice()).collect();
    let started = Instant::now();
    match writer.append_batch(&submissions) {
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
