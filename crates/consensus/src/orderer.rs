//! The engine side: starting a node's consensus and application.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use commonware_codec::DecodeExt;
use commonware_consensus::simplex::elector::RoundRobin;
use commonware_consensus::simplex::scheme::ed25519::Scheme;
use commonware_consensus::simplex::{Config as EngineConfig, Engine, Floor, ForwardPolicy};
use commonware_consensus::simplex::{SkipBudget, SkipPolicy};
use commonware_consensus::types::{Epoch, ViewDelta};
use commonware_cryptography::ed25519::{PrivateKey, PublicKey};
use commonware_cryptography::sha256::Digest;
use commonware_cryptography::Sha256;
use commonware_p2p::utils::mux::Muxer;
use commonware_p2p::{Blocker, Receiver, Sender};
use commonware_parallel::Sequential;
use commonware_runtime::buffer::paged::CacheRef;
use commonware_runtime::{Clock, Handle, Metrics, Spawner, Storage};
use commonware_utils::ordered::Set;
use commonware_utils::{NZDuration, NZUsize, NZU16};
use hygeia_identity::{Did, Keypair};
use hygeia_ledger::order::SubmitFuture;
use hygeia_ledger::store::LogWriter;
use hygeia_ledger::tx::TxContext;
use hygeia_ledger::{
    LogStore, ModuleRegistry, Orderer, SignedCheckpoint, SignedTx, StateMachine, StoreError,
    SubmitError, TxError,
};
use hygeia_state::LedgerState;
use rand_core::CryptoRng;

pub use crate::application::{Cosigned, Idle, Observations, Observed, Proposing};

use crate::application::{Actor, Mailbox, Setup};
use crate::block;

/// Domain of consensus signatures: votes of one network never count in
/// another.
const NAMESPACE_PREFIX: &[u8] = b"hygeia.consensus.v1\x00";

/// The file, next to the finalized chain, where blocks fetched to catch up
/// wait until they reach the last appended block ([`crate::chain::Staging`]).
pub const STAGING_FILE: &str = "catchup.blocks";

/// The file, next to the finalized chain, of the blocks this node proposed
/// or voted for that may not be finalized yet ([`crate::chain::Unfinalized`]).
pub const UNFINALIZED_FILE: &str = "unfinalized.blocks";

/// The consensus timers.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// How long a view waits for its leader's proposal.
    pub leader: Duration,
    /// How long a view waits for a notarization to certify.
    pub certification: Duration,
    /// How often a node that voted to skip a view says so again.
    pub retry: Duration,
    /// After how long an inactive leader is skipped at once.
    pub skip: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            leader: Duration::from_secs(1),
            certification: Duration::from_secs(2),
            retry: Duration::from_secs(1),
            skip: Duration::from_secs(5),
        }
    }
}

/// One node's part of the network.
pub struct Config<B> {
    /// The node key (a custodian key of the genesis).
    pub key: Keypair,
    /// The network name transactions are signed for.
    pub network: String,
    pub modules: &'static ModuleRegistry,
    /// The local log and its single writer.
    pub store: Arc<LogStore>,
    pub writer: LogWriter,
    /// Told of every finalized block as it becomes durable (the node's
    /// state writer; [`hygeia_ledger::NoState`] for none).
    pub commit: Box<dyn StateMachine>,
    /// Disconnects peers that send what the protocol forbids.
    pub blocker: B,
    /// Storage partition of the engine's vote journal.
    pub partition: String,
    pub timeouts: Timeouts,
    /// Most transactions in one block.
    pub max_block_txs: usize,
    pub proposing: Proposing,
    /// The file of this node's finalized blocks ([`crate::chain`]).
    pub chain: std::path::PathBuf,
    /// What a leader with nothing to order does (the node:
    /// [`Idle::ProposeNothing`] for the leader timeout).
    pub idle: Idle,
    /// Cosigns (C2SP `cosignature/v1`) each checkpoint this node reaches
    /// and sends it to the others; `None` sends none.
    pub cosigner: Option<hygeia_ledger::cosignature::Cosigner>,
    /// Most transactions of this node's clients' submissions waiting to be
    /// ordered: past it, a submission is refused as
    /// [`SubmitError::Overloaded`] (the node answers 503 `overloaded`).
    pub max_pending_txs: usize,
    /// The state of exactly `store`'s log, if the caller replayed it
    /// already (the node does, at start): then the log is not replayed
    /// again, only scanned for its replay keys. `None`: replayed here.
    pub replayed: Option<LedgerState>,
    /// Told of each new epoch's validators and their p2p addresses, so
    /// the p2p layer dials and accepts them; `None` for a network that
    /// needs no telling (the simulated one in tests).
    pub peer_sets: Option<PeerSetUpdate>,
    /// Start even if this key is not a validator of the log's current
    /// epoch: the node then votes for nothing and follows the network,
    /// catching up from its peers epoch by epoch, until an epoch names it
    /// (an organization that joins in a later epoch, its log at genesis).
    pub follow: bool,
}

/// See [`Config::peer_sets`]: the epoch and its validators' addresses.
pub type PeerSetUpdate = Box<dyn FnMut(u64, Vec<(PublicKey, std::net::SocketAddr)>) + Send>;

/// Why a node cannot join.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the log has no genesis entry: consensus needs its custodian set")]
    NoGenesis,
    #[error("custodian {0} is not an Ed25519 did:key")]
    BadCustodian(String),
    #[error("this node's key is not in the validator set of the log's current epoch")]
    NotAValidator,
    #[error("the log could not be read: {0}")]
    Store(#[from] StoreError),
    #[error("entry {0} of the log does not replay: {1}")]
    Replay(u64, TxError),
    #[error(transparent)]
    Chain(#[from] crate::chain::ChainError),
    #[error("the log holds {log} entries but its finalized blocks account for {chain}: the log was changed outside consensus")]
    Inconsistent { log: u64, chain: u64 },
}

/// The validators of the state's current epoch, as consensus keys: the
/// genesis custodian set in epoch 0, then the set the last
/// `network.validators` named.
pub fn validators(state: &LedgerState) -> Result<Vec<PublicKey>, StartError> {
    if !state.network.has_genesis() {
        return Err(StartError::NoGenesis);
    }
    state
        .network
        .validator_keys()
        .into_iter()
        .map(|text| {
            let did = Did::parse_cached(text).map_err(|_| StartError::BadCustodian(text.into()))?;
            PublicKey::decode(did.public_key().to_bytes().to_vec())
                .map_err(|_| StartError::BadCustodian(text.into()))
        })
        .collect()
}

/// The consensus key of a node key (the same Ed25519 key).
pub fn consensus_key(key: &Keypair) -> PrivateKey {
    // A 32-byte seed always decodes.
    PrivateKey::decode(key.as_dalek().to_bytes().to_vec()).expect("an Ed25519 seed is 32 bytes")
}

/// The signing scheme of `key` among `validators` on `network`, or
/// `None` if `key` is not one of them.
pub fn scheme(network: &str, validators: &[PublicKey], key: &Keypair) -> Option<Scheme> {
    let participants = Set::from_iter_dedup(validators.iter().cloned());
    Scheme::signer(&namespace(network), participants, consensus_key(key))
}

pub(crate) fn namespace(network: &str) -> Vec<u8> {
    let mut namespace = NAMESPACE_PREFIX.to_vec();
    namespace.extend_from_slice(network.as_bytes());
    namespace
}

/// Replays the log: the state it leads to and the replay keys it used.
pub fn replay(
    store: &LogStore,
    ctx: &TxContext<'_>,
) -> Result<(LedgerState, imbl::HashSet<[u8; 32]>), StartError> {
    let snapshot = store.snapshot()?;
    let mut state = LedgerState::empty();
    let mut keys = imbl::HashSet::new();
    let mut failure = None;
    snapshot.for_each_entry(|index, entry| {
        if failure.is_some() {
            return Ok(());
        }
        match SignedTx::parse(entry, ctx).and_then(|tx| {
            keys.insert(tx.replay_key());
            state.apply(index, &tx).map(|_| ())
        }) {
            Ok(()) => {}
            Err(e) => failure = Some((index, e)),
        }
        Ok(())
    })?;
    match failure {
        Some((index, e)) => Err(StartError::Replay(index, e)),
        None => Ok((state, keys)),
    }
}

/// The replay keys of every entry of the log, read from the envelopes
/// alone (their signatures were checked when they were admitted): the
/// guard against a transaction ordered twice, rebuilt without a second
/// replay of the state.
pub fn replay_keys(store: &LogStore) -> Result<imbl::HashSet<[u8; 32]>, StartError> {
    let snapshot = store.snapshot()?;
    let mut keys = imbl::HashSet::new();
    let mut failure = None;
    snapshot.for_each_entry(|index, entry| {
        if failure.is_none() {
            match hygeia_ledger::tx::logged_replay_key(entry) {
                Ok(key) => {
                    keys.insert(key);
                }
                Err(e) => failure = Some((index, e)),
            }
        }
        Ok(())
    })?;
    match failure {
        Some((index, e)) => Err(StartError::Replay(index, e)),
        None => Ok(keys),
    }
}

/// The state of the log and its replay keys: the caller's state if it
/// replayed the log already, else a replay here.
fn state_and_keys(
    cfg_state: Option<LedgerState>,
    store: &LogStore,
    ctx: &TxContext<'_>,
) -> Result<(LedgerState, imbl::HashSet<[u8; 32]>), StartError> {
    match cfg_state {
        Some(state) => Ok((state, replay_keys(store)?)),
        None => replay(store, ctx),
    }
}

/// A running node's ordering handle.
#[derive(Clone)]
pub struct BftOrderer {
    mailbox: Mailbox,
    latest: Arc<std::sync::RwLock<Arc<SignedCheckpoint>>>,
    observed: Observed,
    cosigned: Cosigned,
}

impl BftOrderer {
    /// The peers' verified cosignatures of the checkpoint whose note text
    /// (body, no signature lines) is `text`: one note per peer that
    /// cosigned it.
    pub fn peer_cosignatures(&self, text: &[u8]) -> Vec<hygeia_ledger::cosignature::CosignedNote> {
        let Ok(cosigned) = self.cosigned.lock() else {
            return Vec::new();
        };
        cosigned
            .values()
            .filter_map(|notes| notes.iter().rev().find(|n| n.text == text).cloned())
            .collect()
    }

    /// Why this node stopped appending finalized blocks, if it did: its
    /// log differs from the network's, or a finalized block could not be
    /// executed or written here. Cheap: for health checks.
    pub fn stopped(&self) -> Option<String> {
        let observed = self.observed.lock().unwrap_or_else(|p| p.into_inner());
        observed
            .diverged
            .clone()
            .or_else(|| observed.halted.clone())
    }

    /// What this node saw: appended blocks, refused blocks, proven faults.
    pub fn observed(&self) -> Observations {
        self.observed
            .lock()
            .map(|o| o.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }
}

impl Orderer for BftOrderer {
    fn submit(&self, txs: Vec<SignedTx>) -> SubmitFuture<'_> {
        let answer = self.mailbox.submit(txs);
        Box::pin(async move { answer.await.unwrap_or(Err(SubmitError::ShuttingDown)) })
    }

    fn latest_checkpoint(&self) -> Arc<SignedCheckpoint> {
        self.latest
            .read()
            .map(|c| c.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }
}

/// The p2p channels a node uses: votes, certificates, certificate
/// fetches (the engine's three) and blocks (the application's).
pub struct Channels<S, R> {
    pub votes: (S, R),
    pub certificates: (S, R),
    pub resolver: (S, R),
    pub blocks: (S, R),
}

/// Starts one node: its consensus engine and application, on `context`.
pub fn start<E, B, S, R>(
    context: E,
    cfg: Config<B>,
    channels: Channels<S, R>,
) -> Result<(BftOrderer, Handle<()>, Handle<()>), StartError>
where
    E: Clock + CryptoRng + Spawner + Storage + Metrics,
    B: Blocker<PublicKey = PublicKey>,
    S: Sender<PublicKey = PublicKey>,
    R: Receiver<PublicKey = PublicKey>,
{
    let ctx = TxContext {
        network: &cfg.network,
        modules: cfg.modules,
    };
    let (state, replay_keys) = state_and_keys(cfg.replayed, &cfg.store, &ctx)?;
    let validators = validators(&state)?;
    let participants = Set::from_iter_dedup(validators.iter().cloned());
    let validators: Arc<Vec<PublicKey>> = Arc::new(participants.iter().cloned().collect());
    let me = commonware_cryptography::Signer::public_key(&consensus_key(&cfg.key));
    let validating =
        validators.contains(&me) && scheme(&cfg.network, &validators, &cfg.key).is_some();
    if !validating && !cfg.follow {
        return Err(StartError::NotAValidator);
    }
    let checkpoint = cfg.writer.checkpoint().clone();
    // The chain starts from the genesis entry alone (leaf 0), whatever
    // was appended since: a restarted node agrees with the others.
    let first = cfg.store.snapshot()?.leaf_hash_at(0)?;
    let genesis = Digest(block::genesis_digest(1, &first.0));
    let (chain, stored) = crate::chain::Chain::open(&cfg.chain, genesis.0)?;
    // Blocks a catch-up had fetched before a restart are fetched again.
    let staging = crate::chain::Staging::open(
        &cfg.chain.with_file_name(STAGING_FILE),
        crate::chain::MAX_STAGED_BYTES,
    )?;
    // Blocks this node proposed or voted for before it stopped: the next
    // proposals may extend them, and every other node may have lost them.
    let (unfinalized, proposed_or_voted) =
        crate::chain::Unfinalized::open(&cfg.chain.with_file_name(UNFINALIZED_FILE))?;
    // The blocks whose entries are in the log, and those a crash kept out.
    let mut applied = 1u64;
    let mut tip = (genesis, 0u64);
    let mut unapplied = Vec::new();
    // The engine of epoch e > 0 starts from the last block of epoch e - 1:
    // the block whose entries hold the `network.validators` that began e.
    let epoch = state.network.epoch();
    let epoch_leaf = state.network.epoch_leaf();
    let mut floor = (epoch == 0).then_some(genesis);
    let mut counted = 1u64;
    for (digest, block) in stored {
        let count = block.tx_count() as u64;
        counted += count;
        if floor.is_none() && counted > epoch_leaf {
            floor = Some(Digest(digest));
        }
        if unapplied.is_empty() && applied + count <= checkpoint.size {
            applied += count;
            tip = (Digest(digest), block.height);
        } else {
            unapplied.push((Digest(digest), block));
        }
    }
    if applied != checkpoint.size {
        return Err(StartError::Inconsistent {
            log: checkpoint.size,
            chain: applied,
        });
    }
    if !unapplied.is_empty() {
        tracing::warn!(
            blocks = unapplied.len(),
            "finalized blocks missing from the log after a crash; appending them"
        );
    }
    let ends = crate::chain::EpochEnds::open(
        cfg.chain.parent().unwrap_or(std::path::Path::new(".")),
        epoch,
    )?;
    let floor = floor.ok_or(StartError::Inconsistent {
        log: epoch_leaf + 1,
        chain: counted,
    })?;
    let (genesis_digest, tip_height) = tip;
    let latest = Arc::new(std::sync::RwLock::new(Arc::new(checkpoint)));
    let observed: Observed = Arc::new(Mutex::new(Observations {
        epoch,
        retired: !validating,
        ..Observations::default()
    }));
    let (epochs, mut epoch_changes) = commonware_utils::channel::mpsc::unbounded_channel();
    let cosigned: Cosigned = Arc::default();
    let (actor, mailbox, reporter) = Actor::new(
        context.child("application"),
        Setup {
            validators: validators.clone(),
            me,
            network: cfg.network.clone(),
            modules: cfg.modules,
            writer: cfg.writer,
            commit: cfg.commit,
            state,
            replay: replay_keys,
            genesis: genesis_digest,
            max_block_txs: cfg.max_block_txs,
            proposing: cfg.proposing,
            blocker: cfg.blocker.clone(),
            observed: observed.clone(),
            latest: latest.clone(),
            idle: cfg.idle,
            chain,
            staging,
            tip_height,
            unapplied,
            unfinalized,
            proposed_or_voted,
            cosigner: cfg.cosigner,
            cosigned: cosigned.clone(),
            max_pending_txs: cfg.max_pending_txs,
            epoch,
            epochs,
            ends,
        },
    );
    let app = actor.start(channels.blocks);
    let parts = EngineParts {
        key: cfg.key,
        network: cfg.network,
        blocker: cfg.blocker,
        mailbox: mailbox.clone(),
        reporter,
        partition: cfg.partition,
        timeouts: cfg.timeouts,
    };
    let mut peer_sets = cfg.peer_sets;
    let votes = channels.votes;
    let certificates = channels.certificates;
    let resolver = channels.resolver;
    // One engine per epoch, each on its own subchannel of the engine's
    // three p2p channels (the epoch is the subchannel), so messages of one
    // epoch's engine never reach another's; the engine of a finished
    // epoch is stopped (with its tasks) before the next starts.
    let initial = (epoch, floor, validators.as_ref().clone());
    let engines = context.child("epochs").spawn(move |context| async move {
        let (votes, mut votes_mux) = Muxer::new(context.child("votes"), votes.0, votes.1);
        let (certificates, mut certificates_mux) = Muxer::new(
            context.child("certificates"),
            certificates.0,
            certificates.1,
        );
        let (resolver, mut resolver_mux) =
            Muxer::new(context.child("resolver"), resolver.0, resolver.1);
        let _muxers = (votes.start(), certificates.start(), resolver.start());
        let mut running: Option<Handle<()>> = None;
        let mut next = Some(initial);
        while let Some((epoch, floor, validators)) = next.take() {
            if let Some(engine) = running.take() {
                engine.abort();
            }
            running = match parts.scheme(&validators) {
                None => {
                    tracing::warn!(epoch, "not a validator of this epoch: no engine runs");
                    None
                }
                Some(scheme) => {
                    let registered = (
                        votes_mux.register(epoch).await,
                        certificates_mux.register(epoch).await,
                        resolver_mux.register(epoch).await,
                    );
                    match registered {
                        (Ok(v), Ok(c), Ok(r)) => Some(parts.engine(
                            context.child("engine").with_attribute("epoch", epoch),
                            scheme,
                            epoch,
                            floor,
                            validators,
                            (v, c, r),
                        )),
                        _ => {
                            tracing::error!(epoch, "the engine's channels are closed");
                            None
                        }
                    }
                }
            };
            let Some(change) = epoch_changes.recv().await else {
                break;
            };
            if let Some(update) = peer_sets.as_mut() {
                update(change.epoch, change.addresses.clone());
            }
            next = Some((change.epoch, change.floor, change.validators));
        }
        if let Some(engine) = running {
            let _ = engine.await;
        }
    });
    Ok((
        BftOrderer {
            mailbox,
            latest,
            observed,
            cosigned,
        },
        app,
        engines,
    ))
}

/// What every epoch's engine is made of.
struct EngineParts<B> {
    key: Keypair,
    network: String,
    blocker: B,
    mailbox: Mailbox,
    reporter: crate::application::Reporter,
    partition: String,
    timeouts: Timeouts,
}

impl<B: Blocker<PublicKey = PublicKey>> EngineParts<B> {
    /// This node's signing scheme among `validators`, if it is one.
    fn scheme(&self, validators: &[PublicKey]) -> Option<Scheme> {
        scheme(&self.network, validators, &self.key)
    }

    /// Starts the engine of `epoch` from `floor` (the last block of the
    /// epoch before; the chain's genesis for epoch 0).
    fn engine<E, S, R>(
        &self,
        context: E,
        scheme: Scheme,
        epoch: u64,
        floor: Digest,
        validators: Vec<PublicKey>,
        (votes, certificates, resolver): ((S, R), (S, R), (S, R)),
    ) -> Handle<()>
    where
        E: Clock + CryptoRng + Spawner + Storage + Metrics,
        S: Sender<PublicKey = PublicKey>,
        R: Receiver<PublicKey = PublicKey>,
    {
        // Epoch 0 keeps the journal partition a node had before epochs.
        let partition = if epoch == 0 {
            self.partition.clone()
        } else {
            format!("{}-epoch-{epoch}", self.partition)
        };
        let engine = Engine::new(
            context,
            EngineConfig {
                scheme,
                elector: RoundRobin::<Sha256>::default(),
                blocker: self.blocker.clone(),
                automaton: self.mailbox.clone(),
                relay: self.mailbox.clone(),
                reporter: self.reporter.for_validators(Arc::new(validators)),
                strategy: Sequential,
                partition,
                mailbox_size: NZUsize!(1024),
                epoch: Epoch::new(epoch),
                floor: Floor::Genesis(floor),
                leader_timeout: self.timeouts.leader,
                certification_timeout: self.timeouts.certification,
                timeout_retry: self.timeouts.retry,
                fetch_timeout: NZDuration!(Duration::from_secs(1)),
                fetch_retry_delay: Duration::from_millis(100),
                view_retention: ViewDelta::new(16),
                skip: SkipPolicy::Enabled {
                    timeout: self.timeouts.skip,
                    budget: SkipBudget::Participants,
                },
                replay_buffer: NZUsize!(1024 * 1024),
                write_buffer: NZUsize!(1024 * 1024),
                page_cache: CacheRef::new(NZU16!(4096), NZUsize!(64)),
                forward: ForwardPolicy::Disabled,
                track_historical_votes: false,
            },
        );
        engine.start(votes, certificates, resolver)
    }
}
