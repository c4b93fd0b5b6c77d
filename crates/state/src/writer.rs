//! The state as the sequencer's writer sees it, and as readers see it.
//!
//! The writer admits submissions into its own working copy, so a batch is
//! checked against everything before it, including earlier submissions of
//! the same batch. Readers (the HTTP handlers) see [`Committed`], which
//! changes only after a batch is durable: the same transactions are then
//! applied to it, in the same order, which gives the same result because
//! [`LedgerState::apply`] is deterministic. No reader ever decides on a
//! grant that a crash could take back.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard};

use hygeia_ledger::{SignedTx, StateMachine, TxError};

use super::{Effect, LedgerState};

/// What readers see: the state as of the last durable batch, and the
/// indexes that only reads need.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Committed {
    pub state: LedgerState,
    /// patient → leaf indexes of the access events about them, oldest first.
    #[serde(with = "crate::snapshot::sorted_map")]
    pub accesses: HashMap<String, Vec<AccessRef>>,
}

#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct AccessRef {
    pub index: u64,
    pub break_glass: bool,
}

impl Committed {
    pub fn new(state: LedgerState) -> Self {
        Committed {
            state,
            accesses: HashMap::new(),
        }
    }

    /// Applies a durable transaction; returns what the node must act on.
    pub fn apply(&mut self, index: u64, tx: &SignedTx) -> Result<Effect, TxError> {
        let effect = self.state.apply(index, tx)?;
        if let Effect::Accessed {
            patient,
            break_glass,
        } = &effect
        {
            self.accesses
                .entry(patient.clone())
                .or_default()
                .push(AccessRef {
                    index,
                    break_glass: *break_glass,
                });
        }
        Ok(effect)
    }
}

/// The shared, committed state.
#[derive(Debug, Clone)]
pub struct SharedState(Arc<RwLock<Committed>>);

impl SharedState {
    pub fn new(committed: Committed) -> Self {
        SharedState(Arc::new(RwLock::new(committed)))
    }

    pub fn read(&self) -> RwLockReadGuard<'_, Committed> {
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Committed> {
        self.0.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// Called with each erased record's commitment once its erasure is durable.
pub type OnErased = Box<dyn Fn(&str) + Send>;

/// The [`StateMachine`] the node's sequencer runs.
pub struct StateWriter {
    working: LedgerState,
    staged: Vec<(u64, SignedTx)>,
    shared: SharedState,
    on_erased: OnErased,
}

impl StateWriter {
    pub fn new(shared: SharedState, on_erased: OnErased) -> Self {
        let working = shared.read().state.clone();
        StateWriter {
            working,
            staged: Vec::new(),
            shared,
            on_erased,
        }
    }
}

impl StateMachine for StateWriter {
    fn admit(&mut self, first_index: u64, submission: &[SignedTx]) -> Result<(), TxError> {
        if submission
            .iter()
            .all(|tx| tx.tx_type() == hygeia_ledger::attest::TX_TYPE)
        {
            return Ok(());
        }
        // One transaction is applied whole or not at all by `apply`; a
        // longer submission needs a copy to go back to.
        let backup = (submission.len() > 1).then(|| self.working.clone());
        for (offset, tx) in submission.iter().enumerate() {
            let index = first_index + offset as u64;
            if let Err(e) = self.working.apply(index, tx) {
                if let Some(backup) = backup {
                    self.working = backup;
                }
                self.staged.truncate(self.staged.len() - offset);
                return Err(e.at(offset));
            }
            self.staged.push((index, tx.clone()));
        }
        Ok(())
    }

    fn commit(&mut self) {
        if self.staged.is_empty() {
            return;
        }
        let mut erased = Vec::new();
        {
            let mut committed = self.shared.write();
            for (index, tx) in self.staged.drain(..) {
                match committed.apply(index, &tx) {
                    Ok(Effect::Erased { commitment }) => erased.push(commitment),
                    Ok(_) => {}
                    Err(e) => tracing::error!(
                        index,
                        error = %e,
                        "a transaction admitted by the writer was refused by the committed state"
                    ),
                }
            }
        }
        for commitment in erased {
            (self.on_erased)(&commitment);
        }
    }

    fn abort(&mut self) {
        self.staged.clear();
        self.working = self.shared.read().state.clone();
    }
}
