//! The application state that transactions change.
//!
//! The ledger orders and stores transactions; what they mean is up to the
//! layers above. A [`StateMachine`] sees every submission of a batch in log
//! order, before anything of the batch is written: it may refuse a
//! submission (a grant by someone who is not the patient, say), and it
//! stages the effects of the ones it admits. The staged effects become
//! visible only once the batch is durable ([`StateMachine::commit`]), so no
//! reader ever acts on state that a crash could take back; if the batch
//! cannot be written they are dropped ([`StateMachine::abort`]).
//!
//! Because admission happens in log order on the single writer, replaying
//! the log from the start through the same machine yields the same state
//! (invariant 2 of the design).

use crate::error::TxError;
use crate::tx::SignedTx;

/// State changed by transactions. Driven by the sequencer's writer thread.
pub trait StateMachine: Send + 'static {
    /// Checks one submission against the state as of everything admitted so
    /// far (committed, plus earlier submissions of this batch) and stages its
    /// effects. `first_index` is the leaf index its first transaction will
    /// get. A refused submission must leave no staged effect: submissions
    /// are all or nothing.
    fn admit(&mut self, first_index: u64, submission: &[SignedTx]) -> Result<(), TxError>;

    /// Everything admitted since the last commit or abort is durable.
    fn commit(&mut self);

    /// Everything admitted since the last commit or abort was not written.
    fn abort(&mut self);
}

/// No application state: every well-formed submission is admitted.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoState;

impl StateMachine for NoState {
    fn admit(&mut self, _first_index: u64, _submission: &[SignedTx]) -> Result<(), TxError> {
        Ok(())
    }

    fn commit(&mut self) {}

    fn abort(&mut self) {}
}
