//! The state as the sequencer's writer sees it, and as readers see it.
//!
//! The writer admits submissions into its own working copy, so a batch is
//! checked against everything before it, including earlier submissions of
//! the same batch. Readers (the HTTP handlers) see [`Committed`], which
//! changes only after a batch is durable: the working copy, which is then
//! exactly the committed state with the batch's admitted transactions
//! applied in log order, becomes the readers' state. No reader ever
//! decides on a grant that a crash could take back, and the rules run once
//! per transaction.
//!
//! Copies are cheap whatever the size of the state: every large collection
//! of [`LedgerState`] is a persistent map (`imbl`) or sits behind an `Arc`,
//! so a clone copies a few pointers and a change copies only the O(log n)
//! nodes on its path. The writer takes a copy before a submission of more
//! than one transaction (its undo point) and hands one to the readers at
//! commit; both cost O(1), and a refused submission restores the copy,
//! which holds nothing the submission did not touch.

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
        self.index_effect(index, &effect);
        Ok(effect)
    }

    /// Updates the read indexes for a transaction at `index` whose effect
    /// on the state is already in [`Committed::state`].
    fn index_effect(&mut self, index: u64, effect: &Effect) {
        if let Effect::Accessed {
            patient,
            break_glass,
        } = effect
        {
            self.accesses
                .entry(patient.clone())
                .or_default()
                .push(AccessRef {
                    index,
                    break_glass: *break_glass,
                });
        }
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
    /// The committed state plus every submission admitted since the last
    /// commit or abort.
    working: LedgerState,
    /// Leaf index and effect of each transaction admitted since the last
    /// commit or abort, in log order.
    staged: Vec<(u64, Effect)>,
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
        // longer submission needs a copy to go back to. The copy is O(1)
        // (persistent collections, see the module's doc): it shares every
        // node with the working state, and the submission's changes copy
        // only the nodes they touch, so going back drops those and restores
        // nothing else.
        let backup = (submission.len() > 1).then(|| self.working.clone());
        for (offset, tx) in submission.iter().enumerate() {
            let index = first_index + offset as u64;
            match self.working.apply(index, tx) {
                Ok(effect) => self.staged.push((index, effect)),
                Err(e) => {
                    if let Some(backup) = backup {
                        self.working = backup;
                    }
                    self.staged.truncate(self.staged.len() - offset);
                    return Err(e.at(offset));
                }
            }
        }
        Ok(())
    }

    fn commit(&mut self) {
        if self.staged.is_empty() {
            return;
        }
        // The working state is the committed one with exactly the staged
        // transactions applied, in log order: it becomes the readers' state
        // as it is (an O(1) copy), and the rules are not run again.
        let mut erased = Vec::new();
        let previous = {
            let mut committed = self.shared.write();
            let previous = std::mem::replace(&mut committed.state, self.working.clone());
            for (index, effect) in self.staged.drain(..) {
                committed.index_effect(index, &effect);
                if let Effect::Erased { commitment } = effect {
                    erased.push(commitment);
                }
            }
            previous
        };
        // Freeing the nodes only the old state held happens outside the lock.
        drop(previous);
        for commitment in erased {
            (self.on_erased)(&commitment);
        }
    }

    fn abort(&mut self) {
        self.staged.clear();
        // An O(1) copy: the admitted changes are dropped, nothing is rebuilt.
        self.working = self.shared.read().state.clone();
    }
}
