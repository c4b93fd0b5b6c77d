//! Ordering behind one trait: the embedded [`Sequencer`] (one node orders
//! its own log) and a Byzantine-fault-tolerant orderer shared by several
//! organizations (`hygeia-consensus`) both take verified submissions and
//! answer once they are durable in the local log, so the layers above do
//! not need to know which one runs.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::checkpoint::SignedCheckpoint;
use crate::sequencer::{Receipt, SubmitError};
use crate::tx::SignedTx;

/// The future a submission resolves to.
pub type SubmitFuture<'a> = Pin<Box<dyn Future<Output = Result<Receipt, SubmitError>> + Send + 'a>>;

/// Something that orders submissions into the local log.
pub trait Orderer: Send + Sync {
    /// Orders one submission (all or nothing) and answers only once it is
    /// durable in the local log, with its leaf indexes and a checkpoint
    /// that includes them; or refuses it, changing nothing.
    fn submit(&self, txs: Vec<SignedTx>) -> SubmitFuture<'_>;

    /// The latest durable signed checkpoint of the local log.
    fn latest_checkpoint(&self) -> Arc<SignedCheckpoint>;
}

impl Orderer for crate::sequencer::Sequencer {
    fn submit(&self, txs: Vec<SignedTx>) -> SubmitFuture<'_> {
        Box::pin(crate::sequencer::Sequencer::submit(self, txs))
    }

    fn latest_checkpoint(&self) -> Arc<SignedCheckpoint> {
        crate::sequencer::Sequencer::latest_checkpoint(self)
    }
}
