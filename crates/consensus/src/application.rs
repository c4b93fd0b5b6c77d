//! The application simplex orders: it proposes blocks of pending
//! submissions, checks proposed blocks against the state machine before
//! voting for them, and appends finalized blocks to the local log.
//!
//! One actor task owns everything; consensus talks to it through
//! [`Mailbox`] (the engine's `Automaton`, `CertifiableAutomaton` and
//! `Relay`) and [`Reporter`]. Block bytes travel on a p2p channel of their
//! own: the proposer sends each block to every validator, and a node that
//! sees a finalization of a block it lacks asks its peers for it and its
//! ancestors, a batch at a time, one peer at a time, and keeps only blocks
//! that hash to the digest it expects (the finalized one, then each
//! block's parent). A node far behind stages them on disk
//! ([`crate::chain::Staging`]) until they reach its last appended block.
//! A block that a proposal, a notarization or a block to build on needs
//! and that is still missing after a moment (lost in a restart, or never
//! received) is asked for the same way and kept in memory.
//!
//! Before this node hands the engine a proposal or votes for a block, the
//! block is synced to [`crate::chain::Unfinalized`]: if every validator
//! restarts while a block is notarized and not finalized, those that voted
//! for it read it back at start (and execute it again before any vote, as
//! any block).
//!
//! Every block is executed on the state after its parent (the state of a
//! log is a deterministic replay of it, and cloning a
//! [`hygeia_state::LedgerState`] is O(1)): a block with a transaction the
//! rules refuse, a replayed transaction, a bad signature or an undecodable
//! entry is invalid, and an honest node votes against it (consensus then
//! nullifies the view).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use commonware_actor::Feedback;
use commonware_consensus::simplex::scheme::ed25519::Scheme;
use commonware_consensus::simplex::types::{Activity, Attributable, Context};
use commonware_consensus::simplex::Plan;
use commonware_consensus::types::Round;
use commonware_consensus::{Automaton, CertifiableAutomaton, Relay, Viewable};
use commonware_cryptography::ed25519::PublicKey;
use commonware_cryptography::sha256::Digest;
use commonware_macros::select_loop;
use commonware_p2p::{Blocker, Receiver, Recipients, Sender};
use commonware_runtime::{spawn_cell, Clock, ContextCell, Handle, Spawner};
use commonware_utils::channel::{mpsc, oneshot};
use hygeia_ledger::cosignature::{CosignatureVerifier, CosignedNote, Cosigner};
use hygeia_ledger::merkle::leaf_hash;
use hygeia_ledger::store::LogWriter;
use hygeia_ledger::tx::TxContext;
use hygeia_ledger::{
    ErrorCode, ModuleRegistry, Receipt, SignedTx, StateMachine, SubmitError, TxError,
};
use hygeia_state::LedgerState;

use commonware_codec::{Decode, Encode};
use commonware_consensus::simplex::types::Finalization;
use commonware_parallel::Sequential;
use rand_core::CryptoRng;

use crate::block::{Block, MAX_BLOCK_BYTES, MAX_SUBMISSION_TXS};
use crate::chain::{Chain, EpochEnds, Staging, StoredBlock, Unfinalized};
use crate::wire::{
    self, MAX_ANCESTORS, TAG_ANCESTORS_REQUEST, TAG_BLOCK, TAG_COSIGNATURE, TAG_SUBMISSION,
};

/// Most submissions received from peers waiting to be ordered, shared out
/// equally between the peers (each holds its own share, so one peer
/// cannot fill it for the others): past its share, a peer's submissions
/// are dropped (their submitter's own node still holds them).
#[cfg(not(test))]
pub(crate) const MAX_REMOTE_PENDING: usize = 65_536;
/// Small in the simulation, so a test can fill a share.
#[cfg(test)]
pub(crate) const MAX_REMOTE_PENDING: usize = 48;
/// Most transactions kept parsed and verified for the blocks that hold
/// them (see [`Actor::parse_submission`]): past it, a transaction is
/// verified again when a block holds it.
const MAX_VERIFIED: usize = 1 << 18;
/// Cosigned checkpoints kept per peer (the newest).
const COSIGNED_KEPT: usize = 16;

/// The newest checkpoints each peer cosigned, verified.
pub type Cosigned = Arc<Mutex<HashMap<PublicKey, VecDeque<CosignedNote>>>>;

/// How often the actor wakes without a message: to act on [`Setup::idle`]
/// when its wait is over, and to ask again for missing finalized blocks.
const TICK: Duration = Duration::from_millis(100);
/// How long a request for a missing block waits before it is sent again
/// (to the next peer).
const REQUEST_RETRY: Duration = Duration::from_secs(1);
/// Most blocks above the finalized height kept in memory: more are
/// dropped (a peer cannot fill memory with made-up blocks). Blocks
/// fetched to catch up are staged on disk instead, so this bounds no
/// catch-up.
const MAX_UNFINALIZED_BLOCKS: usize = 4096;
/// Most staged blocks appended per turn of the actor, so that a long
/// catch-up does not keep it from its messages.
const STAGED_PER_TURN: usize = 1024;
/// How long a node sees no progress (no block appended, no finalization
/// of its epoch) before it asks its peers whether its epoch has ended.
const STALL: Duration = Duration::from_secs(3);
/// How long a block that a pending proposal, verification or
/// certification needs may be missing before it is asked of a peer. The
/// proposer sends each block to every validator, so a block missing for a
/// moment is on its way; one missing longer was lost (this node restarted
/// and had not voted for it, or was cut off as it was sent) and nobody
/// sends it again unasked.
const FETCH_AFTER: Duration = Duration::from_millis(250);
/// Most distinct missing blocks asked for at a time to check proposals and
/// notarizations (each asked of one peer, the next peer in turn a
/// [`REQUEST_RETRY`] later while it is still missing).
const MAX_FETCHES: usize = 16;
/// Most heights above the last appended block that this node fetches
/// blocks from to check a proposal or a notarization: a block further
/// ahead means this node is behind on finalized blocks, which it fetches
/// to disk by catching up (keeping thousands in memory would crowd out the
/// proposals it must vote on).
const MAX_FETCH_DEPTH: u64 = 64;
/// Finalization certificates of the current epoch kept until the epoch
/// ends (the newest): the last block of an epoch is the last one its
/// engine finalizes, so its certificate is always among them.
const CERTIFICATES_KEPT: usize = 16;
/// How many of the digests this node asked its peers for are remembered:
/// an answer must start with one of them.
const ASKED_KEPT: usize = 256;

/// A replay key (signer, nonce) of a transaction.
type ReplayKey = [u8; 32];

/// The state after a block: what the next block is checked against.
#[derive(Clone)]
struct Post {
    state: LedgerState,
    replay: imbl::HashSet<ReplayKey>,
    /// Log size after the block.
    size: u64,
    height: u64,
    /// The block's submissions, parsed and checked.
    txs: Arc<Vec<Vec<SignedTx>>>,
}

/// What the actor reports to tests, metrics and logs.
#[derive(Debug, Default, Clone)]
pub struct Observations {
    /// Finalized blocks appended to the local log: (view, digest,
    /// height), the newest few thousand.
    pub appended: Vec<(u64, Digest, u64)>,
    /// Digests of blocks this node refused to vote for.
    pub refused: Vec<Digest>,
    /// Why each of `refused` was refused, in the same order.
    pub refused_why: Vec<String>,
    /// Faults consensus proved: (kind, view, offender).
    pub faults: Vec<(&'static str, u64, PublicKey)>,
    /// Messages on the block channel that did not decode, per sender.
    pub garbage: HashMap<PublicKey, u64>,
    /// Submissions a peer passed on that were dropped because that peer's
    /// share of the pending pool was full, per peer.
    pub dropped: HashMap<PublicKey, u64>,
    /// Set when a finalized block could not be executed or written: the
    /// node stops appending (its log would diverge) and says so.
    pub halted: Option<String>,
    /// Set when more than `f` peers cosigned a checkpoint of the size this
    /// node reached with another root: this node's own log is not the
    /// network's (altered behind its back), so it stops appending, voting
    /// and proposing.
    pub diverged: Option<String>,
    /// Peers (at most `f` of them) that cosigned a checkpoint of a size
    /// this node reached with another root, and that size.
    pub diverging_peers: HashMap<PublicKey, u64>,
    /// Finalized blocks fetched from peers in batches of ancestors and
    /// staged to catch up.
    pub fetched: u64,
    /// The epoch of the last appended block's state.
    pub epoch: u64,
    /// This node is not a validator of `epoch`: it no longer votes.
    pub retired: bool,
    /// Catch-ups (runs of fetched blocks down to the last appended one)
    /// finished and appended.
    pub caught_up: u64,
    /// Ends of epochs learned from a peer (their certificates verified)
    /// while this node was behind.
    pub epoch_ends_learned: u64,
    /// Blocks fetched from peers because a proposal, a notarization or a
    /// block to build on needed them and this node lacked them (lost in a
    /// restart, or never received).
    pub fetched_to_check: u64,
    /// The newest notarization this node certified (after which it votes
    /// to finalize it): (view, digest).
    pub certified: Option<(u64, Digest)>,
    /// Blocks read back at start from the unfinalized-blocks file (above
    /// the last appended block).
    pub read_back: u64,
    /// Blocks written to the unfinalized-blocks file (each synced before
    /// this node proposed or voted for it).
    pub persisted: u64,
}

/// Shared view of a node's [`Observations`].
pub type Observed = Arc<Mutex<Observations>>;

pub(crate) enum Message {
    Propose {
        context: Context<Digest, PublicKey>,
        response: oneshot::Sender<Digest>,
    },
    Verify {
        context: Context<Digest, PublicKey>,
        payload: Digest,
        response: oneshot::Sender<bool>,
    },
    Certify {
        round: Round,
        payload: Digest,
        response: oneshot::Sender<bool>,
    },
    Broadcast {
        payload: Digest,
        recipients: Recipients<PublicKey>,
    },
    Finalized {
        epoch: u64,
        view: u64,
        payload: Digest,
        /// The finalization certificate, encoded.
        certificate: Vec<u8>,
    },
    Submit {
        txs: Vec<SignedTx>,
        reply: oneshot::Sender<Result<Receipt, SubmitError>>,
        permit: Permit,
    },
}

/// The transactions of a local submission, counted among the pending ones
/// from the moment it is accepted until it is answered or dropped.
pub(crate) struct Permit {
    queued: Arc<AtomicUsize>,
    n: usize,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.queued.fetch_sub(self.n, Ordering::AcqRel);
    }
}

/// The engine's handle on the application.
#[derive(Clone)]
pub struct Mailbox {
    sender: mpsc::UnboundedSender<Message>,
    /// Transactions of local submissions not answered yet.
    queued: Arc<AtomicUsize>,
    /// Most of them before new submissions are refused as overloaded.
    max_pending_txs: usize,
}

impl Mailbox {
    fn send(&self, message: Message) -> bool {
        self.sender.send(message).is_ok()
    }

    /// Queues a submission; the answer comes once it is finalized and
    /// durable in the local log, or refused. Past `max_pending_txs`
    /// transactions waiting, it is refused at once as overloaded (as the
    /// single-node sequencer does), so clients cannot fill memory; a
    /// submission larger than the limit is taken when nothing waits.
    pub(crate) fn submit(
        &self,
        txs: Vec<SignedTx>,
    ) -> oneshot::Receiver<Result<Receipt, SubmitError>> {
        let (reply, answer) = oneshot::channel();
        let n = txs.len();
        let before = self.queued.fetch_add(n, Ordering::AcqRel);
        let permit = Permit {
            queued: self.queued.clone(),
            n,
        };
        if before + n > self.max_pending_txs && before > 0 {
            drop(permit);
            let _ = reply.send(Err(SubmitError::Overloaded { queued: before }));
            return answer;
        }
        self.send(Message::Submit { txs, reply, permit });
        answer
    }
}

impl Automaton for Mailbox {
    type Context = Context<Digest, PublicKey>;
    type Digest = Digest;

    async fn propose(&mut self, context: Self::Context) -> oneshot::Receiver<Digest> {
        let (response, receiver) = oneshot::channel();
        self.send(Message::Propose { context, response });
        receiver
    }

    async fn verify(&mut self, context: Self::Context, payload: Digest) -> oneshot::Receiver<bool> {
        let (response, receiver) = oneshot::channel();
        self.send(Message::Verify {
            context,
            payload,
            response,
        });
        receiver
    }
}

impl CertifiableAutomaton for Mailbox {
    async fn certify(&mut self, round: Round, payload: Digest) -> oneshot::Receiver<bool> {
        let (response, receiver) = oneshot::channel();
        self.send(Message::Certify {
            round,
            payload,
            response,
        });
        receiver
    }
}

impl Relay for Mailbox {
    type Digest = Digest;
    type PublicKey = PublicKey;
    type Plan = Plan<PublicKey>;

    fn broadcast(&mut self, payload: Digest, plan: Plan<PublicKey>) -> Feedback {
        let recipients = match plan {
            Plan::Prepare { .. } | Plan::Propose { .. } => Recipients::All,
            Plan::Forward { recipients, .. } => recipients,
        };
        if self.send(Message::Broadcast {
            payload,
            recipients,
        }) {
            Feedback::Ok
        } else {
            Feedback::Closed
        }
    }
}

/// Receives consensus activity: finalizations go to the application,
/// proven faults are logged and recorded.
#[derive(Clone)]
pub struct Reporter {
    mailbox: Mailbox,
    validators: Arc<Vec<PublicKey>>,
    observed: Observed,
}

impl Reporter {
    /// The reporter of an engine among `validators` (its signers' indices
    /// are positions in that set).
    pub(crate) fn for_validators(&self, validators: Arc<Vec<PublicKey>>) -> Reporter {
        Reporter {
            mailbox: self.mailbox.clone(),
            validators,
            observed: self.observed.clone(),
        }
    }
}

/// The state moved to a new epoch after a finalized block: the engine of
/// the old epoch stops and one for `epoch` starts from that block.
#[derive(Debug, Clone)]
pub struct EpochChange {
    pub epoch: u64,
    /// The last block of the old epoch: the new engine's genesis.
    pub floor: Digest,
    /// The new validator set, sorted (the engine's participant order).
    pub validators: Vec<PublicKey>,
    /// Each validator's p2p address, as the governance transaction named it.
    pub addresses: Vec<(PublicKey, std::net::SocketAddr)>,
}

impl commonware_consensus::Reporter for Reporter {
    type Activity = Activity<Scheme, Digest>;

    fn report(&mut self, activity: Self::Activity) -> Feedback {
        let fault = match &activity {
            Activity::Finalization(finalization) => {
                let sent = self.mailbox.send(Message::Finalized {
                    epoch: finalization.proposal.round.epoch().get(),
                    view: finalization.proposal.round.view().get(),
                    payload: finalization.proposal.payload,
                    certificate: finalization.encode().to_vec(),
                });
                return if sent { Feedback::Ok } else { Feedback::Closed };
            }
            Activity::Certification(notarization) => {
                if let Ok(mut observed) = self.observed.lock() {
                    let view = notarization.proposal.round.view().get();
                    if observed.certified.is_none_or(|(v, _)| view >= v) {
                        observed.certified = Some((view, notarization.proposal.payload));
                    }
                }
                None
            }
            Activity::ConflictingNotarize(f) => {
                Some(("conflicting_notarize", f.view(), f.signer()))
            }
            Activity::ConflictingFinalize(f) => {
                Some(("conflicting_finalize", f.view(), f.signer()))
            }
            Activity::NullifyFinalize(f) => Some(("nullify_finalize", f.view(), f.signer())),
            _ => None,
        };
        if let Some((kind, view, signer)) = fault {
            let index = signer.get() as usize;
            if let Some(offender) = self.validators.get(index) {
                tracing::warn!(kind, view = view.get(), %offender, "consensus fault proven");
                if let Ok(mut observed) = self.observed.lock() {
                    observed.faults.push((kind, view.get(), offender.clone()));
                }
            }
        }
        Feedback::Ok
    }
}

/// How a node behaves as proposer. Anything but `Honest` exists to test
/// that the others withstand it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proposing {
    /// Blocks hold only submissions the rules admit.
    Honest,
    /// Blocks hold every pending submission, checked or not (a byzantine
    /// proposer).
    Unchecked,
    /// Blocks hold every pending submission with the first character of
    /// each transaction's signature changed: bytes no other node has seen,
    /// for the same signers and nonces as transactions they verified (a
    /// byzantine proposer counting on a node to trust what it saw).
    Forging,
    /// Proposes honestly, but answers every request for ancestors with
    /// other blocks than those asked for (each asked-for block with its
    /// view changed): a peer lying to a node that catches up.
    MisleadingCatchUp,
    /// Proposes honestly, but answers every request for the end of an
    /// epoch it finished with a forged end: another block's digest, with
    /// the real certificate's payload changed to it (so its signatures no
    /// longer match): a peer trying to lead a node behind off the chain.
    ForgingEpochEnd,
}

impl Proposing {
    /// Whether this node's blocks hold only submissions the rules admit.
    fn checks_blocks(self) -> bool {
        matches!(
            self,
            Proposing::Honest | Proposing::MisleadingCatchUp | Proposing::ForgingEpochEnd
        )
    }
}

/// What a leader with nothing to order does, after waiting up to the
/// duration for a submission (a submission that arrives meanwhile is
/// proposed at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// Proposes an empty block: an idle network finalizes empty blocks,
    /// one a wait (plus a round trip). Tests that need many blocks use it.
    ProposeEmpty(Duration),
    /// Proposes nothing: the view is nullified at the leader timeout
    /// (commonware's engine treats the dropped proposal as a timeout), so
    /// an idle network finalizes no block, but one empty block after
    /// [`MAX_IDLE_VIEWS`] views without one. Give it the leader timeout:
    /// the leader then takes a submission the whole view long.
    ProposeNothing(Duration),
}

/// Most views since the parent's before a leader with nothing to order
/// proposes an empty block anyway ([`Idle::ProposeNothing`]): the engine
/// keeps every view since the last finalized one in memory and in its
/// vote journal (commonware prunes below the finalized view only), and a
/// proposal after a gap needs a nullification for every view in it, so an
/// empty block every ten minutes or so (at one view a leader timeout of
/// 1 s) bounds both, at 144 blocks a day instead of one every idle wait.
#[cfg(not(test))]
pub(crate) const MAX_IDLE_VIEWS: u64 = 600;
/// Small in the simulation, so a test sees it.
#[cfg(test)]
pub(crate) const MAX_IDLE_VIEWS: u64 = 25;

/// What the actor needs.
pub(crate) struct Setup<B> {
    pub validators: Arc<Vec<PublicKey>>,
    /// This node's consensus key.
    pub me: PublicKey,
    pub network: String,
    pub modules: &'static ModuleRegistry,
    pub writer: LogWriter,
    pub commit: Box<dyn StateMachine>,
    pub state: LedgerState,
    pub replay: imbl::HashSet<ReplayKey>,
    pub genesis: Digest,
    pub max_block_txs: usize,
    pub proposing: Proposing,
    pub blocker: B,
    pub observed: Observed,
    /// The latest durable checkpoint, for readers.
    pub latest: Arc<std::sync::RwLock<Arc<hygeia_ledger::SignedCheckpoint>>>,
    /// What a leader with nothing to order does.
    pub idle: Idle,
    /// The finalized chain on disk.
    pub chain: Chain,
    /// Where blocks fetched to catch up wait (empty at start).
    pub staging: Staging,
    /// Height of `genesis` (the last block whose entries are in the log).
    pub tip_height: u64,
    /// Finalized blocks in the chain file whose entries are not in the
    /// log yet (a crash came between the two writes), oldest first.
    pub unapplied: Vec<(Digest, Block)>,
    /// The blocks this node proposed or voted for that may not be
    /// finalized yet, on disk.
    pub unfinalized: Unfinalized,
    /// What `unfinalized` held at start.
    pub proposed_or_voted: Vec<StoredBlock>,
    /// Cosigns each checkpoint this node reaches, for the others (`None`:
    /// no cosignatures).
    pub cosigner: Option<Cosigner>,
    /// The checkpoints the peers cosigned.
    pub cosigned: Cosigned,
    /// Most transactions of local submissions waiting to be ordered.
    pub max_pending_txs: usize,
    /// The epoch of the state after `genesis` (the one the engine runs).
    pub epoch: u64,
    /// Told of each epoch change, after the block that made it is durable.
    pub epochs: mpsc::UnboundedSender<EpochChange>,
    /// The ends of the epochs this node finished, kept for its peers.
    pub ends: EpochEnds,
}

struct Pending {
    txs: Vec<SignedTx>,
    key: ReplayKey,
    /// The peer that passed it on while no client of this node submitted
    /// it (counted in that peer's share).
    from: Option<PublicKey>,
    /// `None` for a submission a peer passed on: its own node answers it.
    reply: Option<oneshot::Sender<Result<Receipt, SubmitError>>>,
    /// Counts a local submission among the pending ones until it leaves.
    permit: Option<Permit>,
}

impl Pending {
    fn answer(self, result: Result<Receipt, SubmitError>) {
        if let Some(reply) = self.reply {
            let _ = reply.send(result);
        }
    }
}

pub(crate) struct Actor<E: Spawner, B> {
    context: ContextCell<E>,
    setup: Setup<B>,
    inbox: mpsc::UnboundedReceiver<Message>,
    /// Blocks known by digest, with their encoding.
    blocks: HashMap<Digest, (Arc<Block>, Bytes)>,
    /// States after executed blocks (the last finalized one included).
    posts: HashMap<Digest, Post>,
    invalid: HashSet<Digest>,
    last_final: Digest,
    /// Finalized digests not yet appended, in the order reported.
    to_finalize: VecDeque<Digest>,
    verifying: Vec<(Context<Digest, PublicKey>, Digest, oneshot::Sender<bool>)>,
    certifying: Vec<(Round, Digest, oneshot::Sender<bool>)>,
    proposing: Vec<(
        Context<Digest, PublicKey>,
        oneshot::Sender<Digest>,
        SystemTime,
    )>,
    requested: HashSet<Digest>,
    /// When missing blocks were last asked for.
    last_request: SystemTime,
    /// Digests of the blocks appended so far.
    done: HashSet<Digest>,
    mempool: VecDeque<Pending>,
    /// Replay keys of the submissions in `mempool`.
    pending_keys: HashSet<ReplayKey>,
    /// How many of `mempool` came from each peer.
    remote_pending: HashMap<PublicKey, usize>,
    /// Most of `mempool` from one peer: its share of
    /// [`MAX_REMOTE_PENDING`].
    peer_share: usize,
    /// The transactions of `mempool`, parsed and verified, by leaf hash
    /// (SHA-256 of their exact bytes): a block holding the same bytes
    /// reuses them instead of verifying them again.
    verified: HashMap<[u8; 32], SignedTx>,
    /// Each validator's cosignature verifier (its did:key is the name).
    verifiers: HashMap<PublicKey, CosignatureVerifier>,
    /// Messages to send to every peer at the next turn.
    outbox: Vec<Bytes>,
    /// This node's newest cosignature message, sent again every second (a
    /// peer whose connection was down when it was first sent gets it).
    last_cosignature: Option<Bytes>,
    /// Finalized blocks in the chain file not in the log yet (a crash came
    /// between the two writes): finalized, but still to append.
    unapplied: HashSet<Digest>,
    /// The text (origin, size, root) of this node's newest checkpoints,
    /// by size, to compare with the peers' cosigned ones.
    own_notes: VecDeque<(u64, Vec<u8>)>,
    /// Peers whose cosigned checkpoint differs from ours, by size.
    disagreeing: HashMap<u64, HashSet<PublicKey>>,
    /// More than `f` peers disagree with this node's log.
    diverged: bool,
    /// The catch-up in progress, if any.
    catch_up: Option<CatchUp>,
    /// The newest digests asked for in requests for ancestors.
    asked: VecDeque<Digest>,
    /// Turns of the peers asked for ancestors.
    next_peer: usize,
    /// Peers that sent garbage: asked for ancestors only if every peer did.
    distrusted: HashSet<PublicKey>,
    /// The epoch of the last appended block's state: blocks of another
    /// epoch get no vote and finalizations of another are ignored.
    epoch: u64,
    /// This node is not in the current epoch's validator set: it orders
    /// nothing more (it still serves blocks and ancestors to its peers).
    retired: bool,
    /// The newest finalization certificates the engine of the current
    /// epoch reported (digest, encoded certificate).
    certificates: VecDeque<(Digest, Vec<u8>)>,
    /// When this node last appended a block or learned a finalization of
    /// its epoch.
    last_progress: SystemTime,
    /// The epoch whose end this node last asked a peer for, and when.
    end_asked: Option<(u64, SystemTime)>,
    /// The verified end of the current epoch this node catches up to.
    end_target: Option<wire::EpochEnd>,
    /// Blocks a pending proposal, verification or certification needs and
    /// this node lacks, each with when it was first found missing.
    missing: HashMap<Digest, SystemTime>,
    /// Those of `missing` asked of a peer: an answer with ancestors that
    /// starts with one of them is kept in `blocks`.
    fetching: HashSet<Digest>,
}

/// A run of finalized blocks missing between a finalized block this node
/// knows and its last appended block, fetched newest first into
/// [`Setup::staging`].
struct CatchUp {
    /// The newest missing block (the first staged).
    head: Digest,
    /// The next block to fetch: the parent of the oldest staged one.
    want: Digest,
    /// Its height, when known (from its child's): how many blocks are
    /// still missing.
    want_height: Option<u64>,
    /// The staged blocks reach the last appended block: they are appended,
    /// oldest first.
    complete: bool,
}

/// How many appended blocks [`Observations::appended`] keeps (the newest).
const APPENDED_KEPT: usize = 8192;

/// How many of this node's newest checkpoints are compared with the
/// peers' cosignatures (a peer sends its newest every second).
const OWN_NOTES_KEPT: usize = 64;

/// The size line of a checkpoint's text (origin, size, root).
fn note_size(text: &[u8]) -> Option<u64> {
    std::str::from_utf8(text).ok()?.lines().nth(1)?.parse().ok()
}

impl<E: Spawner + Clock + CryptoRng, B: Blocker<PublicKey = PublicKey>> Actor<E, B> {
    pub(crate) fn new(context: E, mut setup: Setup<B>) -> (Self, Mailbox, Reporter) {
        let (sender, inbox) = mpsc::unbounded_channel();
        let mailbox = Mailbox {
            sender,
            queued: Arc::new(AtomicUsize::new(0)),
            max_pending_txs: setup.max_pending_txs,
        };
        let reporter = Reporter {
            mailbox: mailbox.clone(),
            validators: setup.validators.clone(),
            observed: setup.observed.clone(),
        };
        let genesis = Post {
            state: setup.state.clone(),
            replay: setup.replay.clone(),
            size: setup.writer.checkpoint().size,
            height: setup.tip_height,
            txs: Arc::new(Vec::new()),
        };
        let mut posts = HashMap::new();
        posts.insert(setup.genesis, genesis);
        let last_final = setup.genesis;
        // Finalized blocks a crash kept out of the log are appended first.
        let mut blocks = HashMap::new();
        let mut to_finalize = VecDeque::new();
        let mut unapplied = HashSet::new();
        for (digest, block) in std::mem::take(&mut setup.unapplied) {
            unapplied.insert(digest);
            let mut message = vec![TAG_BLOCK];
            message.extend_from_slice(&block.encode());
            blocks.insert(digest, (Arc::new(block), Bytes::from(message)));
            to_finalize.push_back(digest);
        }
        // Blocks this node proposed or voted for before it stopped: held
        // as if a peer had sent them (executed before any vote on them).
        let mut read_back = 0u64;
        for (digest, block, encoded) in std::mem::take(&mut setup.proposed_or_voted) {
            let digest = Digest(digest);
            if block.height <= setup.tip_height
                || blocks.contains_key(&digest)
                || blocks.len() >= MAX_UNFINALIZED_BLOCKS
            {
                continue;
            }
            let mut message = Vec::with_capacity(encoded.len() + 1);
            message.push(TAG_BLOCK);
            message.extend_from_slice(&encoded);
            blocks.insert(digest, (Arc::new(block), Bytes::from(message)));
            read_back += 1;
        }
        if read_back > 0 {
            tracing::info!(
                blocks = read_back,
                "read back the unfinalized blocks this node proposed or voted for"
            );
            if let Ok(mut observed) = setup.observed.lock() {
                observed.read_back += read_back;
            }
        }
        let now = context.current();
        let verifiers = setup
            .validators
            .iter()
            .filter_map(|key| Some((key.clone(), verifier_of(key)?)))
            .collect();
        let peer_share = MAX_REMOTE_PENDING / setup.validators.len().saturating_sub(1).max(1);
        let epoch = setup.epoch;
        let retired = !setup.validators.contains(&setup.me);
        (
            Actor {
                context: ContextCell::new(context),
                setup,
                inbox,
                blocks,
                posts,
                invalid: HashSet::new(),
                last_final,
                to_finalize,
                verifying: Vec::new(),
                certifying: Vec::new(),
                proposing: Vec::new(),
                requested: HashSet::new(),
                last_request: now,
                done: HashSet::new(),
                mempool: VecDeque::new(),
                pending_keys: HashSet::new(),
                remote_pending: HashMap::new(),
                peer_share,
                verified: HashMap::new(),
                verifiers,
                outbox: Vec::new(),
                last_cosignature: None,
                unapplied,
                own_notes: VecDeque::new(),
                disagreeing: HashMap::new(),
                diverged: false,
                catch_up: None,
                asked: VecDeque::new(),
                next_peer: 0,
                distrusted: HashSet::new(),
                epoch,
                retired,
                certificates: VecDeque::new(),
                // A node whose epoch ended while it was down makes no
                // progress from its start: it asks after STALL. (Not at
                // once: every node of a healthy network would ask too.)
                last_progress: now,
                end_asked: None,
                end_target: None,
                missing: HashMap::new(),
                fetching: HashSet::new(),
            },
            mailbox,
            reporter,
        )
    }

    pub(crate) fn start(
        mut self,
        network: (
            impl Sender<PublicKey = PublicKey>,
            impl Receiver<PublicKey = PublicKey>,
        ),
    ) -> Handle<()> {
        spawn_cell!(self.context, self.run(network))
    }

    async fn run(
        mut self,
        (mut sender, mut receiver): (
            impl Sender<PublicKey = PublicKey>,
            impl Receiver<PublicKey = PublicKey>,
        ),
    ) {
        // The checkpoint this node stopped at is cosigned again at start:
        // after every node of the network restarted, none would otherwise
        // send a cosignature before the next block with entries.
        let latest = self.setup.latest.read().map(|latest| latest.clone()).ok();
        if let Some(latest) = latest.filter(|latest| latest.size > 0) {
            self.cosign(&latest);
        }
        select_loop! {
            self.context,
            on_stopped => {
                tracing::debug!("consensus application stopping");
            },
            Some(message) = self.inbox.recv() else break => {
                self.handle(message, &mut sender);
                self.drive(&mut sender);
            },
            Ok((peer, bytes)) = receiver.recv() else break => {
                self.on_network(peer, bytes.as_ref(), &mut sender);
                self.drive(&mut sender);
            },
            _ = self.context.as_present().sleep(TICK) => {
                self.drive(&mut sender);
            },
        }
    }

    fn handle(&mut self, message: Message, sender: &mut impl Sender<PublicKey = PublicKey>) {
        match message {
            Message::Propose { context, response } => {
                let now = self.context.as_present().current();
                self.proposing.push((context, response, now));
            }
            Message::Verify {
                context,
                payload,
                response,
            } => self.verifying.push((context, payload, response)),
            Message::Certify {
                round,
                payload,
                response,
            } => self.certifying.push((round, payload, response)),
            Message::Broadcast {
                payload,
                recipients,
            } => {
                if let Some((_, bytes)) = self.blocks.get(&payload) {
                    send_block(sender, recipients, bytes);
                }
            }
            Message::Finalized {
                epoch,
                view,
                payload,
                certificate,
            } => {
                // An engine of an earlier epoch may still report before it
                // stops: its certificates count for nothing now.
                if epoch != self.epoch {
                    tracing::debug!(
                        epoch,
                        view,
                        ?payload,
                        "finalization of another epoch ignored"
                    );
                    return;
                }
                tracing::debug!(view, ?payload, "finalized");
                self.last_progress = self.context.as_present().current();
                self.certificates.push_back((payload, certificate));
                while self.certificates.len() > CERTIFICATES_KEPT {
                    self.certificates.pop_front();
                }
                self.to_finalize.push_back(payload);
            }
            Message::Submit { txs, reply, permit } => {
                if self.retired {
                    drop(permit);
                    let _ = reply.send(Err(SubmitError::ShuttingDown));
                    return;
                }
                let Some(first) = txs.first() else {
                    let _ = reply.send(Err(SubmitError::Rejected(TxError::new(
                        ErrorCode::Invalid("submission.empty"),
                        "a submission holds at least one transaction",
                    ))));
                    return;
                };
                // Ordered already, in a block this node appended: a replay,
                // answered now (it used to wait for the next block, and an
                // idle network finalizes none).
                let ordered = self
                    .posts
                    .get(&self.last_final)
                    .is_some_and(|post| txs.iter().any(|t| post.replay.contains(&t.replay_key())));
                if ordered {
                    drop(permit);
                    let _ = reply.send(Err(SubmitError::Rejected(TxError::new(
                        ErrorCode::Replay,
                        "this nonce was already used by the signer",
                    ))));
                    return;
                }
                let key = first.replay_key();
                if self.pending_keys.contains(&key) {
                    let Some(pending) = self.mempool.iter_mut().find(|p| p.key == key) else {
                        return;
                    };
                    // Only the same bytes take over a pending submission. The
                    // signer's other transaction under this nonce, or a second
                    // client of this node sending the same one, is a replay:
                    // answering it with the pending one's receipt would
                    // acknowledge bytes that are not its own, or leave the
                    // first client without an answer.
                    if pending.reply.is_some() || !same_transactions(&pending.txs, &txs) {
                        drop(permit);
                        let _ = reply.send(Err(SubmitError::Rejected(TxError::new(
                            ErrorCode::Replay,
                            "a transaction with this signer and nonce is already pending",
                        ))));
                        return;
                    }
                    // A peer passed it on already: this node answers it.
                    let from = pending.from.take();
                    pending.reply = Some(reply);
                    pending.permit = Some(permit);
                    if let Some(peer) = from {
                        self.release(&peer);
                    }
                    return;
                }
                self.gossip(&txs, sender);
                self.pending_keys.insert(key);
                self.remember(&txs);
                self.mempool.push_back(Pending {
                    txs,
                    key,
                    from: None,
                    reply: Some(reply),
                    permit: Some(permit),
                });
            }
        }
    }

    fn on_network(
        &mut self,
        peer: PublicKey,
        bytes: &[u8],
        sender: &mut impl Sender<PublicKey = PublicKey>,
    ) {
        // Every message of the block channel goes through one decoder
        // (crate::wire, fuzzed); anything it refuses is garbage.
        let message = match wire::decode(bytes) {
            Ok(message) => message,
            Err(e) => return self.garbage(peer, &e.to_string()),
        };
        match message {
            wire::Message::Block(block) => {
                let digest = Digest(Block::digest(bytes.get(1..).unwrap_or_default()));
                let above_final = self
                    .posts
                    .get(&self.last_final)
                    .is_none_or(|post| block.height > post.height);
                if above_final
                    && self.blocks.len() < MAX_UNFINALIZED_BLOCKS
                    && !self.blocks.contains_key(&digest)
                {
                    self.blocks
                        .insert(digest, (Arc::new(block), Bytes::copy_from_slice(bytes)));
                }
            }
            wire::Message::Request(d) => {
                if let Some((_, bytes)) = self.blocks.get(&Digest(d)) {
                    send_block(sender, Recipients::One(peer), bytes);
                } else if let Some(encoded) = self.setup.chain.read(&d) {
                    let mut message = Vec::with_capacity(encoded.len() + 1);
                    message.push(TAG_BLOCK);
                    message.extend_from_slice(&encoded);
                    send_block(sender, Recipients::One(peer), &Bytes::from(message));
                }
            }
            wire::Message::Submission(submission) => self.on_submission(peer, submission),
            wire::Message::Cosignature(note) => self.on_cosignature(peer, note),
            wire::Message::AncestorsRequest { digest, count } => {
                self.answer_ancestors(peer, digest, count, sender)
            }
            wire::Message::Ancestors(blocks) => self.on_ancestors(peer, blocks),
            wire::Message::EpochEndRequest { epoch } => self.answer_epoch_end(peer, epoch, sender),
            wire::Message::EpochEnd(end) => self.on_epoch_end(peer, end),
            wire::Message::EpochNotEnded { epoch } => {
                tracing::debug!(%peer, epoch, "a peer has not finished this epoch either");
            }
        }
    }

    /// Answers a request for the end of `epoch`: the stored end, or "not
    /// yet" if this node has not finished that epoch (or did not keep its
    /// end).
    fn answer_epoch_end(
        &mut self,
        peer: PublicKey,
        epoch: u64,
        sender: &mut impl Sender<PublicKey = PublicKey>,
    ) {
        let message = match self.setup.ends.get(epoch) {
            Some(end) => {
                let mut end = end.clone();
                if self.setup.proposing == Proposing::ForgingEpochEnd {
                    forge_epoch_end(&mut end);
                }
                wire::Message::EpochEnd(end)
            }
            None => wire::Message::EpochNotEnded { epoch },
        };
        let _ = sender.send(
            Recipients::One(peer),
            Bytes::from(wire::encode(&message)),
            false,
        );
    }

    /// When this node has seen no progress for [`STALL`], asks the next
    /// peer in turn (one a [`REQUEST_RETRY`]) whether its epoch has ended:
    /// the peers may all have moved to the next epoch while it was down,
    /// and no engine of its epoch is left to tell it.
    fn ask_epoch_end(&mut self, sender: &mut impl Sender<PublicKey = PublicKey>) {
        if self.diverged || self.catch_up.is_some() || self.end_target.is_some() {
            return;
        }
        let now = self.context.as_present().current();
        if now.duration_since(self.last_progress).unwrap_or_default() < STALL {
            return;
        }
        let epoch = self.epoch;
        if self.end_asked.is_some_and(|(asked, at)| {
            asked == epoch && now.duration_since(at).unwrap_or_default() < REQUEST_RETRY
        }) {
            return;
        }
        let Some(peer) = self.next_peer() else {
            return;
        };
        self.end_asked = Some((epoch, now));
        tracing::debug!(%peer, epoch, "no progress: asking whether this epoch has ended");
        let request = wire::encode(&wire::Message::EpochEndRequest { epoch });
        let _ = sender.send(Recipients::One(peer), Bytes::from(request), false);
    }

    /// A peer's end of an epoch. It counts only as the answer to this
    /// node's request for the end of its current epoch (a late answer, to
    /// an epoch this node has left, is dropped), and only if its
    /// certificate is a finalization of that epoch, of that block, by a
    /// quorum of that epoch's validators (the set this node's own log
    /// names): anything else is garbage, and the peer is blocked. A
    /// verified end is taken as a finalization the engine reported: the
    /// block and its ancestors are fetched, executed and appended, and
    /// the last of them moves this node to the next epoch.
    fn on_epoch_end(&mut self, peer: PublicKey, end: wire::EpochEnd) {
        let asked = self
            .end_asked
            .is_some_and(|(epoch, _)| epoch == self.epoch && end.epoch == epoch);
        if !asked || self.end_target.is_some() || self.diverged {
            return;
        }
        let validators = self.setup.validators.clone();
        let network = self.setup.network.clone();
        if let Err(why) = verify_epoch_end(
            self.context.as_present_mut(),
            &network,
            self.epoch,
            &validators,
            &end,
        ) {
            return self.garbage(peer, why);
        }
        let digest = Digest(end.digest);
        if self.appended(&digest) || self.to_finalize.contains(&digest) {
            return;
        }
        tracing::info!(
            %peer,
            epoch = end.epoch,
            height = end.height,
            ?digest,
            "this node's epoch ended while it was behind: catching up to its last block"
        );
        if let Ok(mut observed) = self.setup.observed.lock() {
            observed.epoch_ends_learned += 1;
        }
        self.to_finalize.push_back(digest);
        self.end_target = Some(end);
    }

    /// The next peer to ask, in turn, among the current epoch's validators
    /// (peers that sent garbage only if every peer did).
    fn next_peer(&mut self) -> Option<PublicKey> {
        let peers: Vec<&PublicKey> = self
            .setup
            .validators
            .iter()
            .filter(|p| **p != self.setup.me)
            .collect();
        let trusted: Vec<&PublicKey> = peers
            .iter()
            .copied()
            .filter(|p| !self.distrusted.contains(*p))
            .collect();
        let candidates = if trusted.is_empty() { peers } else { trusted };
        if candidates.is_empty() {
            return None;
        }
        let peer = candidates[self.next_peer % candidates.len()].clone();
        self.next_peer = self.next_peer.wrapping_add(1);
        Some(peer)
    }

    /// Answers a request for the block `digest` and its ancestors with as
    /// many as this node has (in memory or in its finalized chain), up to
    /// `count` and the size of one message.
    fn answer_ancestors(
        &mut self,
        peer: PublicKey,
        digest: [u8; 32],
        count: u32,
        sender: &mut impl Sender<PublicKey = PublicKey>,
    ) {
        let mut encodings: Vec<Vec<u8>> = Vec::new();
        let mut bytes = 0usize;
        let mut cursor = digest;
        while encodings.len() < count as usize && bytes < wire::MAX_ANCESTORS_MESSAGE_BYTES {
            let encoded = match self.blocks.get(&Digest(cursor)) {
                Some((_, message)) => message[1..].to_vec(),
                None => match self.setup.chain.read(&cursor) {
                    Some(encoded) => encoded,
                    None => break,
                },
            };
            // A block's encoding starts with its parent's digest.
            let Some(parent) = encoded.first_chunk::<32>().copied() else {
                break;
            };
            bytes += encoded.len() + 4;
            encodings.push(encoded);
            cursor = parent;
        }
        if self.setup.proposing == Proposing::MisleadingCatchUp {
            for encoded in &mut encodings {
                if let Ok(mut block) = Block::decode(encoded) {
                    block.view = block.view.wrapping_add(1);
                    *encoded = block.encode();
                }
            }
        }
        if let Some(message) = wire::encode_ancestors(encodings.iter().map(Vec::as_slice)) {
            let _ = sender.send(Recipients::One(peer), Bytes::from(message), false);
        }
    }

    /// A peer's answer with ancestors. It must be an answer to a request
    /// of this node: its first block hashes to a digest asked for and each
    /// next one to the parent of the one before, or it is garbage. The
    /// blocks from the one this catch-up wants next are staged (those
    /// before it were staged from an earlier answer).
    fn on_ancestors(&mut self, peer: PublicKey, blocks: Vec<Vec<u8>>) {
        let mut expected: Option<[u8; 32]> = None;
        let mut checked = Vec::with_capacity(blocks.len());
        for encoded in blocks {
            let digest = Block::digest(&encoded);
            match expected {
                None if !self.asked.contains(&Digest(digest)) => {
                    return self.garbage(peer, "ancestors of a block this node did not ask for");
                }
                Some(parent) if parent != digest => {
                    return self.garbage(peer, "ancestors that do not link");
                }
                _ => {}
            }
            let block = match Block::decode(&encoded) {
                Ok(block) => block,
                Err(e) => return self.garbage(peer, &e.to_string()),
            };
            expected = Some(block.parent);
            checked.push((Digest(digest), block, encoded));
        }
        let last_height = self.posts.get(&self.last_final).map(|post| post.height);
        if let (Some((first, ..)), Some(last)) = (checked.first(), last_height) {
            if self.fetching.contains(first) {
                self.keep_fetched(&checked, last);
            }
        }
        let Some(catch_up) = self.catch_up.as_mut() else {
            return; // caught up already
        };
        if catch_up.complete {
            return;
        }
        let Some(from) = checked.iter().position(|(d, ..)| *d == catch_up.want) else {
            return; // an answer to an earlier request
        };
        let mut failure = None;
        let mut staged = 0u64;
        for (_, block, encoded) in checked.drain(from..) {
            if last_height.is_some_and(|h| block.height <= h) {
                failure = Some("finalized chain does not reach the last appended block".into());
                break;
            }
            if let Err(e) = self.setup.staging.push(&encoded) {
                failure = Some(format!("cannot catch up: {e}"));
                break;
            }
            staged += 1;
            catch_up.want = Digest(block.parent);
            catch_up.want_height = Some(block.height.saturating_sub(1));
            if catch_up.want == self.last_final {
                catch_up.complete = true;
                break;
            }
        }
        tracing::debug!(%peer, staged, bytes = self.setup.staging.bytes(), "staged fetched blocks");
        if let Ok(mut observed) = self.setup.observed.lock() {
            observed.fetched += staged;
        }
        if let Some(why) = failure {
            self.abandon_catch_up();
            self.halt(why);
        }
    }

    /// Asks the next peer (in turn, skipping peers that sent garbage) for
    /// `digest` and its ancestors down to the last appended block (the
    /// block alone if its `height` is not known), unless asked for it
    /// already since the last retry.
    fn request_ancestors(
        &mut self,
        digest: Digest,
        height: Option<u64>,
        sender: &mut impl Sender<PublicKey = PublicKey>,
    ) {
        let last_height = self.posts.get(&self.last_final).map(|post| post.height);
        // How far behind is not known without the block's height: the
        // block alone first (a node one block behind is sent one block),
        // then its ancestors down to the last appended block.
        let count = match (height, last_height) {
            (Some(h), Some(last)) => h.saturating_sub(last).clamp(1, MAX_ANCESTORS as u64) as u32,
            _ => 1,
        };
        self.ask_ancestors(digest, count, sender);
    }

    /// Asks the next peer in turn for `digest` and up to `count - 1` of its
    /// ancestors, unless asked for it already since the last retry.
    fn ask_ancestors(
        &mut self,
        digest: Digest,
        count: u32,
        sender: &mut impl Sender<PublicKey = PublicKey>,
    ) {
        if !self.requested.insert(digest) {
            return;
        }
        let Some(peer) = self.next_peer() else {
            return;
        };
        if !self.asked.contains(&digest) {
            self.asked.push_back(digest);
            while self.asked.len() > ASKED_KEPT {
                self.asked.pop_front();
            }
        }
        let mut request = vec![TAG_ANCESTORS_REQUEST];
        request.extend_from_slice(digest.as_ref());
        request.extend_from_slice(&count.to_be_bytes());
        tracing::debug!(%peer, ?digest, count, "asking for missing blocks");
        let _ = sender.send(Recipients::One(peer), Bytes::from(request), false);
    }

    /// The nearest block this node lacks on the way from `digest` back to
    /// a block it has executed (the block a check of `digest`, or a
    /// proposal on it, waits for), with the height of its child when
    /// known; `None` if nothing is missing, or if what is missing is not
    /// this node's to fetch for a check: a block at or below the last
    /// appended one (another branch of the finalized chain), or one more
    /// than [`MAX_FETCH_DEPTH`] above it (catch-up's work).
    fn nearest_missing(&self, digest: Digest) -> Option<(Digest, Option<u64>)> {
        let last = self.posts.get(&self.last_final)?.height;
        let mut cursor = digest;
        let mut child_height = None;
        loop {
            if self.posts.contains_key(&cursor)
                || self.invalid.contains(&cursor)
                || self.setup.chain.contains(&cursor.0)
            {
                return None;
            }
            match self.blocks.get(&cursor) {
                Some((block, _)) => {
                    // A block there is reached from a child above it: the
                    // walk ends within MAX_FETCH_DEPTH steps.
                    if block.height <= last + 1 || block.height > last + MAX_FETCH_DEPTH + 1 {
                        return None;
                    }
                    child_height = Some(block.height);
                    cursor = Digest(block.parent);
                }
                None => return Some((cursor, child_height)),
            }
        }
    }

    /// Asks the peers for the blocks that pending proposals, verifications
    /// and certifications wait for and that have been missing for
    /// [`FETCH_AFTER`]: at most [`MAX_FETCHES`] at a time, each of the next
    /// peer in turn, and of the peer after it a [`REQUEST_RETRY`] later
    /// while it is still missing. A missing block whose child is here is
    /// asked for with its ancestors down to the last appended block.
    fn fetch_missing(&mut self, sender: &mut impl Sender<PublicKey = PublicKey>) {
        if self.retired || self.diverged {
            self.missing.clear();
            self.fetching.clear();
            return;
        }
        let epoch = self.epoch;
        let needs: Vec<Digest> = self
            .proposing
            .iter()
            .filter(|(context, ..)| context.round.epoch().get() == epoch)
            .map(|(context, ..)| context.parent.1)
            .chain(
                self.verifying
                    .iter()
                    .filter(|(context, ..)| context.round.epoch().get() == epoch)
                    .map(|(_, payload, _)| *payload),
            )
            .chain(
                self.certifying
                    .iter()
                    .filter(|(round, ..)| round.epoch().get() == epoch)
                    .map(|(_, payload, _)| *payload),
            )
            .collect();
        // In the order the engine asked, so a run repeats exactly.
        let mut wanted: Vec<(Digest, Option<u64>)> = Vec::new();
        for digest in needs {
            if let Some(missing) = self.nearest_missing(digest) {
                if !wanted.iter().any(|(d, _)| *d == missing.0) {
                    wanted.push(missing);
                }
            }
        }
        self.missing
            .retain(|digest, _| wanted.iter().any(|(d, _)| d == digest));
        self.fetching
            .retain(|digest| wanted.iter().any(|(d, _)| d == digest));
        let Some(last) = self.posts.get(&self.last_final).map(|post| post.height) else {
            return;
        };
        let now = self.context.as_present().current();
        for (digest, child_height) in wanted {
            let since = *self.missing.entry(digest).or_insert(now);
            if now.duration_since(since).unwrap_or_default() < FETCH_AFTER {
                continue;
            }
            if !self.fetching.contains(&digest) && self.fetching.len() >= MAX_FETCHES {
                continue;
            }
            self.fetching.insert(digest);
            let count =
                child_height.map_or(1, |h| h.saturating_sub(last + 1).clamp(1, MAX_FETCH_DEPTH));
            self.ask_ancestors(digest, count as u32, sender);
        }
    }

    /// Keeps the blocks of an answer to a request of
    /// [`Actor::fetch_missing`] (already checked: the first is a block
    /// asked for, each next one its parent) whose heights are within
    /// [`MAX_FETCH_DEPTH`] above the last appended block (`last`), to check
    /// what extends them.
    fn keep_fetched(&mut self, checked: &[(Digest, Block, Vec<u8>)], last: u64) {
        let mut kept = 0u64;
        for (digest, block, encoded) in checked {
            if block.height <= last || block.height > last + MAX_FETCH_DEPTH + 1 {
                continue;
            }
            if self.blocks.len() >= MAX_UNFINALIZED_BLOCKS {
                break;
            }
            self.fetching.remove(digest);
            self.missing.remove(digest);
            if self.blocks.contains_key(digest) {
                continue;
            }
            let mut message = Vec::with_capacity(encoded.len() + 1);
            message.push(TAG_BLOCK);
            message.extend_from_slice(encoded);
            self.blocks
                .insert(*digest, (Arc::new(block.clone()), Bytes::from(message)));
            kept += 1;
        }
        tracing::debug!(kept, "kept fetched blocks to check what extends them");
        if let Ok(mut observed) = self.setup.observed.lock() {
            observed.fetched_to_check += kept;
        }
    }

    /// Appends staged blocks, oldest first, up to [`STAGED_PER_TURN`]:
    /// `Ok(true)` once every one is appended.
    fn append_staged(&mut self) -> Result<bool, String> {
        for _ in 0..STAGED_PER_TURN {
            let encoded = match self.setup.staging.pop() {
                Ok(Some(encoded)) => encoded,
                Ok(None) => return Ok(true),
                Err(e) => return Err(format!("cannot catch up: {e}")),
            };
            let block = Block::decode(&encoded)
                .map_err(|e| format!("cannot catch up: a staged block: {e}"))?;
            let digest = Digest(Block::digest(&encoded));
            self.append_block(digest, Arc::new(block), &encoded)?;
        }
        Ok(self.setup.staging.bytes() == 0)
    }

    /// Forgets the catch-up in progress (finished or not) and empties the
    /// staging file.
    fn abandon_catch_up(&mut self) {
        self.catch_up = None;
        if let Err(e) = self.setup.staging.reset() {
            tracing::warn!(error = %e, "the catch-up staging file could not be emptied");
        }
    }

    /// Passes a client's submission on to the other validators.
    fn gossip(&self, txs: &[SignedTx], sender: &mut impl Sender<PublicKey = PublicKey>) {
        let envelope = wire::envelope(txs.iter().map(|t| t.canonical_bytes().to_vec()).collect());
        if txs.len() > MAX_SUBMISSION_TXS {
            return; // too large to pass on: ordered when this node leads
        }
        let encoded = envelope.encode();
        if encoded.len() > MAX_BLOCK_BYTES {
            return;
        }
        let mut message = Vec::with_capacity(encoded.len() + 1);
        message.push(TAG_SUBMISSION);
        message.extend_from_slice(&encoded);
        let _ = sender.send(Recipients::All, Bytes::from(message), false);
    }

    /// A submission a peer passed on: checked (it must parse and its
    /// signatures verify, as its node checked them) and held until ordered.
    fn on_submission(&mut self, peer: PublicKey, submission: Vec<Vec<u8>>) {
        let txs = match self.parse_submission(&submission) {
            Ok(txs) => txs,
            Err(e) => return self.garbage(peer, &e.message),
        };
        let Some(key) = txs.first().map(SignedTx::replay_key) else {
            return;
        };
        let ordered = self
            .posts
            .get(&self.last_final)
            .is_some_and(|post| post.replay.contains(&key));
        if ordered || self.pending_keys.contains(&key) {
            return;
        }
        let held = self.remote_pending.get(&peer).copied().unwrap_or(0);
        if held >= self.peer_share {
            tracing::debug!(%peer, held, "a peer's share of passed-on submissions is full");
            if let Ok(mut observed) = self.setup.observed.lock() {
                *observed.dropped.entry(peer).or_default() += 1;
            }
            return;
        }
        *self.remote_pending.entry(peer.clone()).or_default() += 1;
        self.pending_keys.insert(key);
        self.remember(&txs);
        self.mempool.push_back(Pending {
            txs,
            key,
            from: Some(peer),
            reply: None,
            permit: None,
        });
    }

    /// A peer's cosignature of a checkpoint: kept if it is one line by
    /// that peer's key and verifies; anything else is garbage.
    fn on_cosignature(&mut self, peer: PublicKey, note: CosignedNote) {
        // Only validators of some tracked epoch connect at all. One that
        // is not of this node's epoch is not lying: a node removed at the
        // last change resends its newest cosignature every second until it
        // learns of the change, and a node catching up from an earlier
        // epoch hears the current validators (some not of its epoch). Its
        // note is dropped; blocking it would cut the removed node off
        // from the end of its epoch, and the joiner from a validator.
        let Some(verifier) = self.verifiers.get(&peer) else {
            tracing::debug!(%peer, "a cosignature from a key that is not a validator of this epoch: dropped");
            return;
        };
        match note.signatures.as_slice() {
            [sig] if verifier.verify(&note.text, sig).is_ok() => {}
            _ => return self.garbage(peer, "a cosignature that does not verify"),
        }
        self.compare(&peer, &note.text);
        if let Ok(mut cosigned) = self.setup.cosigned.lock() {
            let kept = cosigned.entry(peer).or_default();
            if kept.back().is_some_and(|last| last.text == note.text) {
                kept.pop_back(); // the same checkpoint, sent again
            }
            kept.push_back(note);
            while kept.len() > COSIGNED_KEPT {
                kept.pop_front();
            }
        }
    }

    /// Compares a peer's cosigned checkpoint text with this node's own
    /// checkpoint of the same size, if it has one. Every honest node's
    /// checkpoint of a size has the same text, so a difference means the
    /// peer's log or this node's differs from the network's: with more
    /// than `f` peers against it, this node's is (at least one of them is
    /// honest).
    fn compare(&mut self, peer: &PublicKey, text: &[u8]) {
        let Some(size) = note_size(text) else {
            return;
        };
        let Some((_, own)) = self.own_notes.iter().find(|(s, _)| *s == size) else {
            return;
        };
        if own == text {
            return;
        }
        let faulty = self.setup.validators.len().saturating_sub(1) / 3;
        let against = self.disagreeing.entry(size).or_default();
        against.insert(peer.clone());
        let against = against.len();
        if against > faulty {
            self.diverge(format!(
                "this node's log differs from the network's: {against} peers cosigned another root at size {size}"
            ));
        } else {
            tracing::warn!(
                ?peer,
                size,
                "a peer cosigned another root than this node's at the same size"
            );
            if let Ok(mut observed) = self.setup.observed.lock() {
                observed.diverging_peers.insert(peer.clone(), size);
            }
        }
    }

    /// This node's log is not the network's: it appends, votes for and
    /// proposes nothing more, and says so.
    fn diverge(&mut self, why: String) {
        if self.diverged {
            return;
        }
        self.diverged = true;
        tracing::error!(
            why,
            "this node's stored log was changed behind its back; it stops voting"
        );
        if let Ok(mut observed) = self.setup.observed.lock() {
            observed.diverged.get_or_insert(why.clone());
        }
        self.halt(why);
    }

    /// Cosigns a checkpoint this node reached, for the others, and
    /// compares it with the peers' cosignatures of the same size.
    fn cosign(&mut self, checkpoint: &hygeia_ledger::SignedCheckpoint) {
        let Ok(mut note) = CosignedNote::parse(&checkpoint.note) else {
            return;
        };
        if let Some(size) = note_size(&note.text) {
            self.own_notes.push_back((size, note.text.clone()));
            while self.own_notes.len() > OWN_NOTES_KEPT {
                self.own_notes.pop_front();
            }
            // Disagreements about sizes no longer compared are forgotten.
            let oldest = self.own_notes.front().map_or(size, |(s, _)| *s);
            self.disagreeing.retain(|s, _| *s >= oldest);
            let theirs: Vec<(PublicKey, Vec<u8>)> = self
                .setup
                .cosigned
                .lock()
                .map(|cosigned| {
                    cosigned
                        .iter()
                        .flat_map(|(peer, notes)| {
                            notes.iter().map(move |n| (peer.clone(), n.text.clone()))
                        })
                        .filter(|(_, text)| note_size(text) == Some(size))
                        .collect()
                })
                .unwrap_or_default();
            for (peer, text) in theirs {
                self.compare(&peer, &text);
            }
        }
        let Some(cosigner) = &self.setup.cosigner else {
            return;
        };
        let now = self
            .context
            .as_present()
            .current()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let Ok(sig) = cosigner.cosign(&note.text, now) else {
            return;
        };
        note.signatures = vec![sig];
        let mut message = vec![TAG_COSIGNATURE];
        message.extend_from_slice(&note.to_bytes());
        let message = Bytes::from(message);
        self.last_cosignature = Some(message.clone());
        self.outbox.push(message);
    }

    /// Asks again for the missing blocks asked for a while ago (the peer
    /// asked may have been down, or the answer lost).
    fn retry_requests(&mut self) {
        let now = self.context.as_present().current();
        if now.duration_since(self.last_request).unwrap_or_default() >= REQUEST_RETRY {
            self.requested.clear();
            self.last_request = now;
            if let Some(message) = &self.last_cosignature {
                self.outbox.push(message.clone());
            }
        }
    }

    /// A peer sent bytes that are not a message of this protocol: it is
    /// recorded and the peer is blocked (disconnected).
    fn garbage(&mut self, peer: PublicKey, why: &str) {
        tracing::warn!(%peer, why, "undecodable message on the block channel");
        // Whatever it was asked for is asked of another peer at once.
        if self.distrusted.insert(peer.clone()) {
            if let Some(catch_up) = &self.catch_up {
                self.requested.remove(&catch_up.want);
            }
            for digest in &self.fetching {
                self.requested.remove(digest);
            }
        }
        if let Ok(mut observed) = self.setup.observed.lock() {
            *observed.garbage.entry(peer.clone()).or_default() += 1;
        }
        let _ = self.setup.blocker.block(peer);
    }

    /// Answers every request that can now be answered.
    fn drive(&mut self, sender: &mut impl Sender<PublicKey = PublicKey>) {
        // Due once a second whatever arrives: the tick above fires only
        // after 100 ms without any message, which a busy node rarely has
        // (its cosignature would then be sent again only by chance).
        self.retry_requests();
        // Checked on every turn, not only on a quiet tick: a node behind
        // may hear its peers' blocks (of an epoch it has not reached)
        // more often than a tick.
        self.ask_epoch_end(sender);
        self.finalize(sender);
        for message in std::mem::take(&mut self.outbox) {
            let _ = sender.send(Recipients::All, message, false);
        }
        let now = self.context.as_present().current();
        for (context, response, since) in std::mem::take(&mut self.proposing) {
            if response.is_closed() || self.diverged {
                continue;
            }
            let parent = context.parent.1;
            if !self.posts.contains_key(&parent) && self.blocks.contains_key(&parent) {
                // A parent here but never executed (read back at start, or
                // fetched): checked as a vote on it would check it.
                let _ = self.check(&parent, context.round.epoch().get(), None);
            }
            match self.posts.get(&parent).cloned() {
                // A block belongs to the epoch of the state it extends: on
                // the last block of an epoch, that epoch's engine proposes
                // nothing more.
                Some(parent) if parent.state.network.epoch() != context.round.epoch().get() => {
                    drop(response)
                }
                Some(parent) => {
                    // With nothing to order, wait for a submission rather
                    // than finalize empty blocks as fast as the network
                    // allows; then, unless empty blocks are wanted, propose
                    // nothing (the view is nullified) until the views
                    // without a block would grow past MAX_IDLE_VIEWS.
                    let idle = !self.mempool.iter().any(|p| !parent.replay.contains(&p.key));
                    if idle {
                        let waited = now.duration_since(since).unwrap_or_default();
                        let gap = context
                            .round
                            .view()
                            .get()
                            .saturating_sub(context.parent.0.get());
                        let (wait, propose_empty) = match self.setup.idle {
                            Idle::ProposeEmpty(wait) => (wait, true),
                            // At once: proposed at the end of a wait as
                            // long as the leader timeout, it could miss the
                            // view, and so could every next leader's.
                            Idle::ProposeNothing(_) if gap > MAX_IDLE_VIEWS => {
                                (Duration::ZERO, true)
                            }
                            Idle::ProposeNothing(wait) => (wait, false),
                        };
                        if waited < wait {
                            self.proposing.push((context, response, since));
                            continue;
                        }
                        if !propose_empty {
                            drop(response);
                            continue;
                        }
                    }
                    let digest = self.build(&context, &parent);
                    // Durable before the engine sends it: the proposer's
                    // own notarize vote comes with its proposal.
                    if self.persist(digest) {
                        let _ = response.send(digest);
                    }
                }
                None if self.invalid.contains(&context.parent.1) => drop(response),
                None => self.proposing.push((context, response, since)),
            }
        }
        for (context, payload, response) in std::mem::take(&mut self.verifying) {
            if response.is_closed() {
                continue;
            }
            let expected = (context.parent.1, context.round.view().get());
            match self.check(&payload, context.round.epoch().get(), Some(expected)) {
                // No vote for a block this node could not make durable.
                Some(true) if !self.persist(payload) => {}
                Some(valid) => {
                    let _ = response.send(valid);
                }
                None => self.verifying.push((context, payload, response)),
            }
        }
        for (round, payload, response) in std::mem::take(&mut self.certifying) {
            if response.is_closed() {
                continue;
            }
            match self.check(&payload, round.epoch().get(), None) {
                Some(valid) => {
                    let view = self.blocks.get(&payload).map(|(b, _)| b.view);
                    let valid = valid && view == Some(round.view().get());
                    // A certification leads to a finalize vote: durable
                    // first (a no-op for a block this node voted for).
                    if valid && !self.persist(payload) {
                        continue;
                    }
                    let _ = response.send(valid);
                }
                None => self.certifying.push((round, payload, response)),
            }
        }
        self.fetch_missing(sender);
    }

    /// Makes the block `digest` durable in the unfinalized-blocks file
    /// (synced; once per block) before this node proposes or votes for
    /// it: whether it is (or is finalized already). On an I/O error the
    /// node does not vote: a vote for a block it could lose in a restart
    /// could leave the network without it.
    fn persist(&mut self, digest: Digest) -> bool {
        if self.setup.unfinalized.contains(&digest.0) || self.setup.chain.contains(&digest.0) {
            return true;
        }
        let Some((block, message)) = self.blocks.get(&digest) else {
            return false;
        };
        match self
            .setup
            .unfinalized
            .append(digest.0, block.height, &message[1..])
        {
            Ok(_) => {
                if let Ok(mut observed) = self.setup.observed.lock() {
                    observed.persisted += 1;
                }
                true
            }
            Err(e) => {
                tracing::error!(error = %e, ?digest, "a block could not be made durable: no vote for it");
                false
            }
        }
    }

    /// Whether the block `payload` is valid on its parent, if that can be
    /// known yet (its bytes and its parent's state are here).
    fn check(
        &mut self,
        payload: &Digest,
        epoch: u64,
        expected: Option<(Digest, u64)>,
    ) -> Option<bool> {
        if self.diverged {
            return Some(self.refuse(*payload, "this node's log differs from its peers'"));
        }
        if epoch != self.epoch {
            // Not an engine of this node's epoch (one being stopped): no
            // vote, and nothing remembered against the block.
            return Some(false);
        }
        if expected.is_none() && self.setup.chain.contains(&payload.0) {
            return Some(true); // finalized here already
        }
        let (block, _) = self.blocks.get(payload)?.clone();
        if let Some((parent, view)) = expected {
            if block.parent != parent.0 || block.view != view {
                return Some(self.refuse(*payload, "block does not match its consensus context"));
            }
        }
        // A block extends a state of its own epoch: after the block that
        // changes the validator set, the old set proposes nothing that
        // counts (a byzantine leader proposing across the boundary).
        if let Some(parent) = self.posts.get(&Digest(block.parent)) {
            if parent.state.network.epoch() != epoch {
                return Some(self.refuse(*payload, "block extends a state of another epoch"));
            }
        }
        if self.posts.contains_key(payload) {
            return Some(true);
        }
        if !self.posts.contains_key(&Digest(block.parent)) {
            // A parent here but not executed yet (fetched, or never voted
            // on): its ancestors are checked first, oldest first, as the
            // engine would have had it verify them.
            self.check_ancestors(Digest(block.parent), epoch)?;
        }
        if self.invalid.contains(payload) || self.invalid.contains(&Digest(block.parent)) {
            return Some(self.refuse(*payload, "invalid block or parent"));
        }
        let parent = self.posts.get(&Digest(block.parent))?.clone();
        if block.height != parent.height + 1 {
            return Some(self.refuse(*payload, "wrong height"));
        }
        match self.execute(&parent, &block) {
            Ok(post) => {
                self.posts.insert(*payload, post);
                Some(true)
            }
            Err(e) => Some(self.refuse(*payload, &e.message)),
        }
    }

    /// Checks `digest` and its ancestors that are here but not executed,
    /// oldest first, down to an executed block (at most
    /// [`MAX_FETCH_DEPTH`] of them): `None` while one of them or the block
    /// they extend is missing.
    fn check_ancestors(&mut self, digest: Digest, epoch: u64) -> Option<()> {
        let mut unchecked = Vec::new();
        let mut cursor = digest;
        while !self.posts.contains_key(&cursor) && !self.invalid.contains(&cursor) {
            if unchecked.len() as u64 > MAX_FETCH_DEPTH {
                return None;
            }
            let (block, _) = self.blocks.get(&cursor)?;
            unchecked.push(cursor);
            cursor = Digest(block.parent);
        }
        for ancestor in unchecked.into_iter().rev() {
            if !self.check(&ancestor, epoch, None)? {
                break; // its descendants are refused with it
            }
        }
        Some(())
    }

    fn refuse(&mut self, payload: Digest, why: &str) -> bool {
        tracing::warn!(?payload, why, "refusing a proposed block");
        if self.invalid.insert(payload) {
            if let Ok(mut observed) = self.setup.observed.lock() {
                observed.refused.push(payload);
                observed.refused_why.push(why.to_string());
            }
        }
        false
    }

    fn tx_context(&self) -> TxContext<'_> {
        TxContext {
            network: &self.setup.network,
            modules: self.setup.modules,
        }
    }

    /// Parses and verifies a submission's transactions, as
    /// [`SignedTx::parse`] would. A transaction whose exact bytes this node
    /// already verified (a pending submission of its clients or one a peer
    /// passed on) is taken from [`Actor::verified`]: it is looked up by
    /// the SHA-256 of its bytes and the bytes are compared too, so only the
    /// very bytes that were verified are reused; anything else (bytes
    /// never seen, or differing in a single bit from ones seen) is parsed
    /// and its signature verified here.
    fn parse_submission(&self, raws: &[Vec<u8>]) -> Result<Vec<SignedTx>, TxError> {
        let known: Option<Vec<SignedTx>> = raws
            .iter()
            .map(|raw| {
                self.verified
                    .get(&leaf_hash(raw).0)
                    .filter(|tx| tx.canonical_bytes() == raw.as_slice())
                    .cloned()
            })
            .collect();
        if let Some(txs) = known {
            return Ok(txs);
        }
        let raws: Vec<&[u8]> = raws.iter().map(Vec::as_slice).collect();
        SignedTx::parse_many(&raws, &self.tx_context()).map_err(|(_, e)| e)
    }

    /// Keeps a new pending submission's transactions for the blocks that
    /// will hold them (up to [`MAX_VERIFIED`]).
    fn remember(&mut self, txs: &[SignedTx]) {
        for tx in txs {
            if self.verified.len() >= MAX_VERIFIED {
                return;
            }
            self.verified.insert(tx.leaf_hash().0, tx.clone());
        }
    }

    /// Runs `block` on the state after its parent: every transaction
    /// parses and verifies, none is a replay, the rules admit every one.
    fn execute(&self, parent: &Post, block: &Block) -> Result<Post, TxError> {
        let mut post = Post {
            state: parent.state.clone(),
            replay: parent.replay.clone(),
            size: parent.size,
            height: block.height,
            txs: Arc::new(Vec::new()),
        };
        let mut all = Vec::with_capacity(block.submissions.len());
        for submission in &block.submissions {
            let txs = self.parse_submission(submission)?;
            admit(&mut post, &txs)?;
            all.push(txs);
        }
        post.txs = Arc::new(all);
        Ok(post)
    }

    /// Builds this node's proposal on `parent` from the pending submissions.
    fn build(&mut self, context: &Context<Digest, PublicKey>, parent: &Post) -> Digest {
        let mut post = parent.clone();
        let mut submissions = Vec::new();
        let mut count = 0;
        let mut bytes = 64;
        let mut refused = Vec::new();
        let mut parsed = Vec::new();
        for (i, pending) in self.mempool.iter().enumerate() {
            if parent.replay.contains(&pending.key) {
                continue; // already in a block on this branch
            }
            let size: usize = pending
                .txs
                .iter()
                .map(|t| t.canonical_bytes().len() + 4)
                .sum();
            if count + pending.txs.len() > self.setup.max_block_txs
                || bytes + size + 4 > MAX_BLOCK_BYTES
            {
                break;
            }
            if self.setup.proposing.checks_blocks() {
                if let Err(e) = admit(&mut post, &pending.txs) {
                    refused.push((i, e));
                    continue;
                }
            }
            count += pending.txs.len();
            bytes += size + 4;
            parsed.push(pending.txs.clone());
            let forging = self.setup.proposing == Proposing::Forging;
            submissions.push(
                pending
                    .txs
                    .iter()
                    .map(|t| {
                        let mut raw = t.canonical_bytes().to_vec();
                        if forging {
                            forge(&mut raw);
                        }
                        raw
                    })
                    .collect::<Vec<_>>(),
            );
        }
        for (i, e) in refused.into_iter().rev() {
            if let Some(pending) = self.mempool.remove(i) {
                self.forget(&pending);
                pending.answer(Err(SubmitError::Rejected(e)));
            }
        }
        let block = Block {
            parent: context.parent.1 .0,
            height: parent.height + 1,
            view: context.round.view().get(),
            submissions,
        };
        let encoded = block.encode();
        let digest = Digest(Block::digest(&encoded));
        let mut message = Vec::with_capacity(encoded.len() + 1);
        message.push(TAG_BLOCK);
        message.extend_from_slice(&encoded);
        post.height = block.height;
        post.txs = Arc::new(parsed);
        if self.setup.proposing.checks_blocks() {
            self.posts.insert(digest, post);
        }
        self.blocks
            .insert(digest, (Arc::new(block), Bytes::from(message)));
        digest
    }

    /// Appends every finalized block whose ancestry is here, oldest first.
    fn finalize(&mut self, sender: &mut impl Sender<PublicKey = PublicKey>) {
        if self.diverged {
            // Appending the network's blocks on top of a log that is not
            // the network's would only spread the difference.
            self.to_finalize.clear();
            return;
        }
        'targets: while let Some(target) = self.to_finalize.front().copied() {
            if target == self.last_final || self.done.contains(&target) || self.appended(&target) {
                self.to_finalize.pop_front();
                continue;
            }
            // Walk back to the last appended block.
            let mut chain = Vec::new();
            let mut cursor = target;
            let mut missing = None;
            while cursor != self.last_final {
                if self.appended(&cursor) {
                    // An ancestor of the last appended block: nothing new.
                    self.to_finalize.pop_front();
                    continue 'targets;
                }
                if let Some(catch_up) = self.catch_up.as_ref().filter(|c| c.head == cursor) {
                    if !catch_up.complete {
                        let (want, height) = (catch_up.want, catch_up.want_height);
                        self.request_ancestors(want, height, sender);
                        return;
                    }
                    match self.append_staged() {
                        Ok(true) => {
                            self.abandon_catch_up(); // done: the file is emptied
                            if let Ok(mut observed) = self.setup.observed.lock() {
                                observed.caught_up += 1;
                            }
                            // The last appended block is now `cursor`.
                            continue;
                        }
                        Ok(false) => return, // more at the next turn
                        Err(e) => {
                            self.abandon_catch_up();
                            self.halt(e);
                            return;
                        }
                    }
                }
                match self.blocks.get(&cursor) {
                    Some((block, _)) => {
                        chain.push(cursor);
                        cursor = Digest(block.parent);
                    }
                    None => {
                        missing = Some(cursor);
                        break;
                    }
                }
            }
            if let Some(missing) = missing {
                // A new run of missing blocks (a catch-up that started
                // from another block is over: its target was appended).
                if self.catch_up.is_some() {
                    self.abandon_catch_up();
                }
                // The height of an epoch's last block learned from a peer
                // is a hint only (it is not signed): it sizes the request,
                // and the blocks fetched are checked by their digests.
                let height = chain
                    .last()
                    .and_then(|child| self.blocks.get(child))
                    .map(|(block, _)| block.height.saturating_sub(1))
                    .or_else(|| {
                        self.end_target
                            .as_ref()
                            .filter(|end| end.digest == missing.0)
                            .map(|end| end.height)
                    });
                self.catch_up = Some(CatchUp {
                    head: missing,
                    want: missing,
                    want_height: height,
                    complete: false,
                });
                self.request_ancestors(missing, height, sender);
                return;
            }
            for digest in chain.into_iter().rev() {
                if let Err(e) = self.append(digest) {
                    self.halt(e);
                    return;
                }
            }
            self.to_finalize.pop_front();
        }
    }

    /// Whether the finalized block `digest` is in the log already.
    fn appended(&self, digest: &Digest) -> bool {
        self.setup.chain.contains(&digest.0) && !self.unapplied.contains(digest)
    }

    fn halt(&mut self, why: String) {
        tracing::error!(why, "this node stops appending finalized blocks");
        self.to_finalize.clear();
        if let Ok(mut observed) = self.setup.observed.lock() {
            observed.halted.get_or_insert(why);
        }
    }

    /// Writes the finalized block `digest` (whose parent is the last
    /// appended block) to the log, durably, then answers its submitters.
    fn append(&mut self, digest: Digest) -> Result<(), String> {
        let (block, message) = self.blocks[&digest].clone();
        self.append_block(digest, block, &message[1..])
    }

    /// Appends `block` (whose encoding is `encoded` and digest `digest`),
    /// as [`Actor::append`].
    fn append_block(
        &mut self,
        digest: Digest,
        block: Arc<Block>,
        encoded: &[u8],
    ) -> Result<(), String> {
        if block.parent != self.last_final.0 {
            return Err("finalized block does not extend the log".into());
        }
        let post = match self.posts.get(&digest) {
            Some(post) => post.clone(),
            None => {
                let parent = &self.posts[&self.last_final];
                let post = self
                    .execute(parent, &block)
                    .map_err(|e| format!("a finalized block is invalid here: {e}"))?;
                self.posts.insert(digest, post.clone());
                post
            }
        };
        // The chain first (synced when the block has entries), then the log.
        self.setup
            .chain
            .append(digest.0, encoded, !post.txs.is_empty())
            .map_err(|e| e.to_string())?;
        if post.txs.is_empty() {
            // An empty block adds nothing to the log: no write.
            self.advance(digest, block.view, &post, HashMap::new());
            return Ok(());
        }
        let submissions: Vec<&[SignedTx]> = post.txs.iter().map(Vec::as_slice).collect();
        let outcome = self
            .setup
            .writer
            .append_batch_with(&submissions, self.setup.commit.as_mut())
            .map_err(|e| format!("the log could not be written: {e}"))?;
        if outcome.results.iter().any(Result::is_err) || outcome.checkpoint.size != post.size {
            return Err("the local log refused part of a finalized block".into());
        }
        let checkpoint = Arc::new(outcome.checkpoint);
        if let Ok(mut latest) = self.setup.latest.write() {
            *latest = checkpoint.clone();
        }
        self.cosign(&checkpoint);
        let mut answered: HashMap<ReplayKey, Receipt> = HashMap::new();
        for (txs, result) in post.txs.iter().zip(&outcome.results) {
            if let (Some(first), Ok(index)) = (txs.first(), result) {
                answered.insert(
                    first.replay_key(),
                    Receipt {
                        first_index: *index,
                        leaf_hashes: txs.iter().map(SignedTx::leaf_hash).collect(),
                        checkpoint: checkpoint.clone(),
                    },
                );
            }
        }
        self.advance(digest, block.view, &post, answered);
        Ok(())
    }

    /// `digest` (after which the state is `post`) is the new last appended
    /// block: answer the submitters whose submissions it holds (`answered`)
    /// or made replays, and forget every block at or below it but itself.
    fn advance(
        &mut self,
        digest: Digest,
        view: u64,
        post: &Post,
        mut answered: HashMap<ReplayKey, Receipt>,
    ) {
        let height = post.height;
        for pending in std::mem::take(&mut self.mempool) {
            if let Some(receipt) = answered.remove(&pending.key) {
                self.forget(&pending);
                // The block holds the signer's other transaction under this
                // nonce: this submission was not ordered, and never will be.
                let own = pending.txs.len() == receipt.leaf_hashes.len()
                    && pending
                        .txs
                        .iter()
                        .zip(&receipt.leaf_hashes)
                        .all(|(tx, hash)| tx.leaf_hash() == *hash);
                pending.answer(if own {
                    Ok(receipt)
                } else {
                    Err(SubmitError::Rejected(TxError::new(
                        ErrorCode::Replay,
                        "this nonce was already used by the signer",
                    )))
                });
            } else if pending
                .txs
                .iter()
                .any(|t| post.replay.contains(&t.replay_key()))
            {
                self.forget(&pending);
                pending.answer(Err(SubmitError::Rejected(TxError::new(
                    ErrorCode::Replay,
                    "this nonce was already used by the signer",
                ))));
            } else {
                self.mempool.push_back(pending);
            }
        }
        self.blocks
            .retain(|d, (b, _)| b.height > height || *d == digest);
        // Blocks at or below `height` are in the chain file now (or lost
        // their branch): dropped from the unfinalized ones once they pile up.
        if let Err(e) = self.setup.unfinalized.prune(height) {
            tracing::warn!(error = %e, "the unfinalized blocks could not be pruned");
        }
        self.posts.retain(|d, p| p.height > height || *d == digest);
        self.invalid.clear();
        self.requested.remove(&digest);
        self.unapplied.remove(&digest);
        self.last_final = digest;
        self.done.insert(digest);
        self.last_progress = self.context.as_present().current();
        if post.state.network.epoch() != self.epoch {
            self.change_epoch(digest, height, &post.state);
        }
        if let Ok(mut observed) = self.setup.observed.lock() {
            observed.appended.push((view, digest, height));
            // A node runs for months: keep the newest blocks only.
            if observed.appended.len() > APPENDED_KEPT {
                observed.appended.drain(..APPENDED_KEPT / 2);
            }
        }
    }
}

impl<E: Spawner, B> Actor<E, B> {
    /// The last appended block (`floor`) moved the state to a new epoch:
    /// this node now votes, cosigns and asks for blocks among the new set,
    /// and the engine of the new epoch is started from `floor`.
    fn change_epoch(&mut self, floor: Digest, height: u64, state: &LedgerState) {
        self.keep_epoch_end(floor, height);
        let epoch = state.network.epoch();
        let validators = match crate::validators(state) {
            Ok(validators) => validators,
            Err(e) => {
                // The rules admitted only Ed25519 did:keys: unreachable.
                tracing::error!(error = %e, epoch, "the new validator set is unusable");
                self.retired = true;
                return;
            }
        };
        let validators: Vec<PublicKey> =
            commonware_utils::ordered::Set::from_iter_dedup(validators)
                .iter()
                .cloned()
                .collect();
        let addresses = state
            .network
            .validators()
            .iter()
            .filter_map(|v| {
                let key = crate::net::peer_key(&v.key)?;
                Some((key, v.address.parse().ok()?))
            })
            .collect();
        tracing::info!(
            epoch,
            ?floor,
            validators = validators.len(),
            "the validator set changes"
        );
        self.epoch = epoch;
        self.retired = !validators.contains(&self.setup.me);
        self.verifiers = validators
            .iter()
            .filter_map(|key| Some((key.clone(), verifier_of(key)?)))
            .collect();
        self.peer_share = MAX_REMOTE_PENDING / validators.len().saturating_sub(1).max(1);
        self.setup.validators = Arc::new(validators.clone());
        self.distrusted.clear();
        if let Ok(mut observed) = self.setup.observed.lock() {
            observed.epoch = epoch;
            observed.retired = self.retired;
        }
        if self.retired {
            tracing::warn!(
                epoch,
                "this node is not a validator of the new epoch: it stops voting"
            );
            for pending in std::mem::take(&mut self.mempool) {
                self.forget(&pending);
                pending.answer(Err(SubmitError::ShuttingDown));
            }
        }
        let _ = self.setup.epochs.send(EpochChange {
            epoch,
            floor,
            validators,
            addresses,
        });
    }

    /// Keeps the end of the epoch that `floor` (at `height`) ends, with its
    /// finalization certificate, durably, before the next epoch starts:
    /// the certificate the engine reported, or the one a peer sent and
    /// this node verified.
    fn keep_epoch_end(&mut self, floor: Digest, height: u64) {
        let epoch = self.epoch;
        let learned = self
            .end_target
            .take()
            .filter(|end| end.digest == floor.0)
            .map(|end| end.certificate);
        let reported = || {
            self.certificates
                .iter()
                .rev()
                .find(|(digest, _)| *digest == floor)
                .map(|(_, certificate)| certificate.clone())
        };
        let certificate = learned.or_else(reported);
        self.certificates.clear();
        self.end_asked = None;
        let Some(certificate) = certificate else {
            // A block appended at start after a crash, its finalization
            // never reported again: peers cannot learn this epoch's end
            // from this node.
            tracing::warn!(
                epoch,
                ?floor,
                "the certificate of this epoch's last block is not here: its end is not kept"
            );
            return;
        };
        let end = wire::EpochEnd {
            epoch,
            height,
            digest: floor.0,
            certificate,
        };
        if let Err(e) = self.setup.ends.put(end) {
            tracing::error!(epoch, error = %e, "the end of this epoch could not be kept");
        }
    }

    /// A pending submission leaves the mempool.
    fn forget(&mut self, pending: &Pending) {
        self.pending_keys.remove(&pending.key);
        for tx in &pending.txs {
            self.verified.remove(&tx.leaf_hash().0);
        }
        if let Some(peer) = &pending.from {
            self.release(peer);
        }
    }

    /// One submission `peer` passed on left its share.
    fn release(&mut self, peer: &PublicKey) {
        if let Some(held) = self.remote_pending.get_mut(peer) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                self.remote_pending.remove(peer);
            }
        }
    }
}

/// The cosignature verifier of a validator (its did:key is the name).
fn verifier_of(key: &PublicKey) -> Option<CosignatureVerifier> {
    let bytes: [u8; 32] = key.as_ref().try_into().ok()?;
    let public = hygeia_identity::PublicKey::from_bytes(&bytes).ok()?;
    let did = hygeia_identity::Did::from_public_key(public).to_string();
    CosignatureVerifier::for_did(&did).ok()
}

/// Checks `end` as the end of `epoch`, whose validators are `validators`:
/// its certificate decodes (bounded by the set's size), is a finalization
/// of a proposal of that epoch whose payload is the end's block, and
/// carries the signatures of a quorum of that set (commonware's
/// verification: one signature per signer, signers named by their
/// position in the set).
pub(crate) fn verify_epoch_end(
    rng: &mut impl CryptoRng,
    network: &str,
    epoch: u64,
    validators: &[PublicKey],
    end: &wire::EpochEnd,
) -> Result<(), &'static str> {
    if end.epoch != epoch {
        return Err("the end of another epoch than the one asked for");
    }
    let finalization =
        Finalization::<Scheme, Digest>::decode_cfg(end.certificate.clone(), &validators.len())
            .map_err(|_| "an epoch's end whose certificate does not decode")?;
    if finalization.proposal.round.epoch().get() != epoch {
        return Err("an epoch's end certified in another epoch");
    }
    if finalization.proposal.payload.0 != end.digest {
        return Err("an epoch's end whose certificate finalizes another block");
    }
    let participants = commonware_utils::ordered::Set::from_iter_dedup(validators.iter().cloned());
    let verifier = Scheme::verifier(&crate::orderer::namespace(network), participants);
    if !finalization.verify(rng, &verifier, &Sequential) {
        return Err("an epoch's end whose certificate is not a quorum of the epoch's validators");
    }
    Ok(())
}

/// A byzantine peer's forgery of an epoch's end (for tests): the block is
/// another, and the certificate's payload is changed to it, its
/// signatures kept (so they sign what the certificate no longer says).
fn forge_epoch_end(end: &mut wire::EpochEnd) {
    end.digest[0] ^= 0xff;
    let Ok(mut finalization) =
        Finalization::<Scheme, Digest>::decode_cfg(end.certificate.clone(), &64usize)
    else {
        return;
    };
    finalization.proposal.payload = Digest(end.digest);
    end.certificate = finalization.encode().to_vec();
}

/// Whether two submissions hold the same transactions, byte for byte.
fn same_transactions(a: &[SignedTx], b: &[SignedTx]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.canonical_bytes() == y.canonical_bytes())
}

/// Admits one submission (all or nothing) on `post`.
fn admit(post: &mut Post, txs: &[SignedTx]) -> Result<(), TxError> {
    let mut state = post.state.clone();
    let mut replay = post.replay.clone();
    for (i, tx) in txs.iter().enumerate() {
        if replay.insert(tx.replay_key()).is_some() {
            return Err(TxError::new(
                ErrorCode::Replay,
                "this nonce was already used by the signer",
            ));
        }
        state.apply(post.size + i as u64, tx)?;
    }
    post.state = state;
    post.replay = replay;
    post.size += txs.len() as u64;
    Ok(())
}

/// Changes the first character of a transaction's signature (a byzantine
/// proposer's forgery, for tests): the bytes stay a well-formed,
/// canonical transaction whose signature no longer verifies.
pub(crate) fn forge(raw: &mut [u8]) {
    const SIG: &[u8] = b",\"sig\":\"";
    if let Some(at) = raw.windows(SIG.len()).rposition(|w| w == SIG) {
        if let Some(c) = raw.get_mut(at + SIG.len()) {
            *c = if *c == b'A' { b'B' } else { b'A' };
        }
    }
}

fn send_block(
    sender: &mut impl Sender<PublicKey = PublicKey>,
    recipients: Recipients<PublicKey>,
    bytes: &Bytes,
) {
    let _ = sender.send(recipients, bytes.clone(), false);
}

#[cfg(test)]
mod tests {
    use commonware_consensus::simplex::types::{Finalize, Proposal};
    use commonware_consensus::types::{Epoch, Round, View};
    use commonware_cryptography::certificate::Signers;
    use commonware_cryptography::Signer as _;
    use commonware_utils::iter::NonEmpty;
    use commonware_utils::rng::test_rng;
    use hygeia_identity::Keypair;

    use super::*;

    const NETWORK: &str = "epoch-end.example";

    fn keypairs(seeds: std::ops::Range<u8>) -> Vec<Keypair> {
        seeds.map(|i| Keypair::from_seed(&[i; 32])).collect()
    }

    /// The validator set of `keys`, in the engine's order.
    fn set(keys: &[Keypair]) -> Vec<PublicKey> {
        commonware_utils::ordered::Set::from_iter_dedup(
            keys.iter().map(|k| crate::consensus_key(k).public_key()),
        )
        .iter()
        .cloned()
        .collect()
    }

    /// A finalization of `payload` in `epoch`, signed by `signers` among
    /// `validators` (the set `keys` are members of).
    fn finalization(
        keys: &[Keypair],
        validators: &[PublicKey],
        signers: &[usize],
        epoch: u64,
        payload: [u8; 32],
    ) -> Finalization<Scheme, Digest> {
        let proposal = Proposal::new(
            Round::new(Epoch::new(epoch), View::new(9)),
            View::new(8),
            Digest(payload),
        );
        let mut votes = signers.iter().map(|i| {
            let scheme = crate::scheme(NETWORK, validators, &keys[*i]).expect("a validator");
            Finalize::sign(&scheme, proposal.clone()).expect("a signer")
        });
        let first = votes.next().expect("a signer");
        let scheme = crate::scheme(NETWORK, validators, &keys[signers[0]]).expect("a validator");
        Finalization::from_owned_finalizes(&scheme, NonEmpty::new(first, votes), &Sequential)
            .expect("a quorum")
    }

    fn end(
        epoch: u64,
        payload: [u8; 32],
        certificate: &Finalization<Scheme, Digest>,
    ) -> wire::EpochEnd {
        wire::EpochEnd {
            epoch,
            height: 40,
            digest: payload,
            certificate: certificate.encode().to_vec(),
        }
    }

    #[test]
    fn an_epoch_end_counts_only_with_a_quorum_of_that_epochs_validators() {
        let mut rng = test_rng();
        let keys = keypairs(1..5);
        let validators = set(&keys);
        let block = [7; 32];
        let good = finalization(&keys, &validators, &[0, 1, 2], 3, block);
        assert_eq!(
            verify_epoch_end(&mut rng, NETWORK, 3, &validators, &end(3, block, &good)),
            Ok(())
        );

        // Asked for another epoch, or certified in another.
        assert!(
            verify_epoch_end(&mut rng, NETWORK, 4, &validators, &end(3, block, &good)).is_err()
        );
        let other_epoch = finalization(&keys, &validators, &[0, 1, 2], 2, block);
        assert!(verify_epoch_end(
            &mut rng,
            NETWORK,
            3,
            &validators,
            &end(3, block, &other_epoch)
        )
        .is_err());
        // Another block than the certificate's.
        assert!(
            verify_epoch_end(&mut rng, NETWORK, 3, &validators, &end(3, [8; 32], &good)).is_err()
        );
        // Another network's signatures.
        assert!(verify_epoch_end(
            &mut rng,
            "other.example",
            3,
            &validators,
            &end(3, block, &good)
        )
        .is_err());
        // Signed by another set of the same size.
        let strangers = keypairs(11..15);
        let stranger_set = set(&strangers);
        let forged = finalization(&strangers, &stranger_set, &[0, 1, 2, 3], 3, block);
        assert!(
            verify_epoch_end(&mut rng, NETWORK, 3, &validators, &end(3, block, &forged)).is_err()
        );
        // Two signatures of four: below the quorum of three.
        let mut short = good.clone();
        let kept: Vec<_> = short.certificate.signers.iter().take(2).collect();
        short.certificate.signers = Signers::new(4, kept).unwrap();
        short.certificate.signatures.truncate(2);
        assert!(
            verify_epoch_end(&mut rng, NETWORK, 3, &validators, &end(3, block, &short)).is_err()
        );
        // A quorum of a set of five, checked against the set of four.
        let five = keypairs(1..6);
        let five_set = set(&five);
        let larger = finalization(&five, &five_set, &[0, 1, 2, 3], 3, block);
        assert!(
            verify_epoch_end(&mut rng, NETWORK, 3, &validators, &end(3, block, &larger)).is_err()
        );
        // Bytes that are no certificate, or one with bytes after it.
        let mut garbage = end(3, block, &good);
        garbage.certificate = vec![0xff; 100];
        assert!(verify_epoch_end(&mut rng, NETWORK, 3, &validators, &garbage).is_err());
        let mut trailing = end(3, block, &good);
        trailing.certificate.push(0);
        assert!(verify_epoch_end(&mut rng, NETWORK, 3, &validators, &trailing).is_err());
        // The test forger's end: its payload moved, signatures kept.
        let mut forged = end(3, block, &good);
        forge_epoch_end(&mut forged);
        assert_ne!(forged.digest, block);
        assert!(verify_epoch_end(&mut rng, NETWORK, 3, &validators, &forged).is_err());
    }
}
