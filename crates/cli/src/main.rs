//! `hygeia`: a thin command line over the Hygeia crates.

mod client;
mod commands;
mod http_source;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

// The node allocates and frees many small objects per request on several
// threads at once; mimalloc does that with far less contention than the
// system allocator (measured in BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Hygeia: a health-data trust network node. Every access, consent and
/// attestation is a signed transaction in a tamper-evident log that anyone
/// entitled can verify offline.
#[derive(Parser)]
#[command(name = "hygeia", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a node with demo data on the embedded store, and print what to try.
    Demo(commands::serve::DemoArgs),
    /// Run a node.
    Serve(commands::serve::ServeArgs),
    /// Create and inspect key files.
    #[command(subcommand)]
    Key(commands::key::KeyCommand),
    /// Sign and submit transactions.
    #[command(subcommand)]
    Tx(commands::tx::TxCommand),
    /// Fetch and check an inclusion or consistency proof.
    #[command(subcommand)]
    Proof(commands::proof::ProofCommand),
    /// Verify a whole log offline: signatures, tiles, root, and that it only grew.
    Verify(commands::verify::VerifyArgs),
    /// Ask witnesses (the other custodians' nodes) to cosign a node's latest checkpoint.
    Cosign(commands::cosign::CosignArgs),
    /// Migrate a data directory made before logs began with a genesis entry.
    ///
    /// Writes a new log whose leaf 0 is a genesis entry (signed by the
    /// node's key, naming its governance key and the node as custodian, and
    /// recording the old log's size, root hash, rules and keys), followed by
    /// the old entries byte for byte; the old entries replay under the rules
    /// they were admitted under. The old log is kept in
    /// <DATA_DIR>/pre-genesis-backup/. Stop the node first. Checkpoints
    /// saved from the old log apply to the backup, not to the new log.
    Migrate(commands::verify::MigrateArgs),
    /// Patient records: upload, read (decided and logged), list, erase.
    #[command(subcommand)]
    Record(commands::records::RecordCommand),
    /// Consent: grant, revoke, list.
    #[command(subcommand)]
    Consent(commands::records::ConsentCommand),
    /// Organizations: registration, members, keys.
    #[command(subcommand)]
    Org(commands::records::OrgCommand),
    /// Governance policy sets.
    #[command(subcommand)]
    Governance(commands::records::GovernanceCommand),
    /// Verifiable credentials: issue, present, verify (SD-JWT VC, W3C VC 2.0).
    #[command(subcommand)]
    Credential(commands::credential::CredentialCommand),
    /// Clinicians' licences on the ledger: register, show.
    #[command(subcommand)]
    Licence(commands::licence::LicenceCommand),
    /// The trust list: which issuers are trusted for which credential types.
    #[command(subcommand)]
    Trust(commands::trust::TrustCommand),
    /// An issuer's status lists: publish, revoke, suspend, reinstate.
    #[command(subcommand)]
    Status(commands::status::StatusCommand),
    /// Resolve DIDs (did:key, and the did:web of registered organizations).
    #[command(subcommand)]
    Did(commands::did::DidCommand),
    /// Who accessed or tried to access a patient's data, verified offline.
    Audit(commands::records::AuditArgs),
    /// The FHIR R5 API: bearer tokens, and consent as FHIR Consent.
    #[command(subcommand)]
    Fhir(commands::fhir::FhirCommand),
    /// SMART Health Cards: export a patient's card from a node, verify a card.
    #[command(subcommand)]
    Shc(commands::shc::ShcCommand),
    Import(commands::import::ImportArgs),
    /// SMART on FHIR: register a backend service's ES384 key.
    #[command(subcommand)]
    Smart(commands::smart::SmartCommand),
    /// Guardian key recovery: split a recovery key among guardians, and
    /// move your identity to a new key when a device is lost.
    #[command(subcommand)]
    Recovery(commands::recovery::RecoveryCommand),
    /// Zero-knowledge range proofs: issue, prove ("HbA1c < 7.0 %",
    /// "at least 18") and verify without revealing the value.
    #[command(subcommand)]
    Zk(commands::zk::ZkCommand),
    /// Research eligibility: publish criteria, answer anonymously, tally.
    #[command(subcommand)]
    Research(commands::research::ResearchCommand),
    /// Connected devices: bind an attested device, send signed readings.
    #[command(subcommand)]
    Device(commands::device::DeviceCommand),
    /// Adherence rules over device readings: define, evaluate, show.
    #[command(subcommand)]
    Adherence(commands::device::AdherenceCommand),
    /// Units and balances: register, mint, transfer, balance.
    #[command(subcommand)]
    Unit(commands::economy::UnitCommand),
    /// Escrows: lock funds until a milestone, a deadline or a program's
    /// proofs; release; refund.
    #[command(subcommand)]
    Escrow(commands::economy::EscrowCommand),
    /// Care programs: publish a goal ("HbA1c < 7.0 %"), claim its reward
    /// with a zero-knowledge proof.
    #[command(subcommand)]
    Program(commands::economy::ProgramCommand),
    /// The ledger's clock: show it, or ask the node to attest its time.
    Clock(commands::economy::ClockArgs),
    /// Research-sharing programmes: a researcher pays patients per day of
    /// HRESCH consent and per counted access; patients claim.
    #[command(subcommand)]
    Sharing(commands::sharing::SharingCommand),
    /// Dataset manifests: publish one of consented records, show its status.
    #[command(subcommand)]
    Dataset(commands::dataset::DatasetCommand),
    /// Clinical trials: register a study, approve amendments, activate
    /// sites, consent, record milestones and deviations.
    #[command(subcommand)]
    Trial(commands::trial::TrialCommand),
    /// A network of several organizations' nodes: write its genesis.
    #[command(subcommand)]
    Network(commands::network::NetworkCommand),
    /// Load generators and measurements (see BENCHMARKS.md).
    #[command(subcommand)]
    Bench(commands::bench::BenchCommand),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HYGEIA_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => commands::serve::demo(args),
        Command::Serve(args) => commands::serve::serve(args),
        Command::Key(command) => commands::key::run(command),
        Command::Tx(command) => commands::tx::run(command),
        Command::Proof(command) => commands::proof::run(command),
        Command::Verify(args) => commands::verify::run(args),
        Command::Cosign(args) => commands::cosign::run(args),
        Command::Migrate(args) => commands::verify::migrate(args),
        Command::Record(command) => commands::records::run_record(command),
        Command::Consent(command) => commands::records::run_consent(command),
        Command::Org(command) => commands::records::run_org(command),
        Command::Governance(command) => commands::records::run_governance(command),
        Command::Credential(command) => commands::credential::run(command),
        Command::Licence(command) => commands::licence::run(command),
        Command::Trust(command) => commands::trust::run(command),
        Command::Status(command) => commands::status::run(command),
        Command::Did(command) => commands::did::run(command),
        Command::Audit(args) => commands::records::run_audit(args),
        Command::Fhir(command) => commands::fhir::run(command),
        Command::Shc(command) => commands::shc::run(command),
        Command::Import(args) => commands::import::run(args),
        Command::Smart(command) => commands::smart::run(command),
        Command::Recovery(command) => commands::recovery::run(command),
        Command::Zk(command) => commands::zk::run(command),
        Command::Research(command) => commands::research::run(command),
        Command::Device(command) => commands::device::run_device(command),
        Command::Adherence(command) => commands::device::run_adherence(command),
        Command::Unit(command) => commands::economy::run_unit(command),
        Command::Escrow(command) => commands::economy::run_escrow(command),
        Command::Program(command) => commands::economy::run_program(command),
        Command::Clock(args) => commands::economy::run_clock(args),
        Command::Sharing(command) => commands::sharing::run(command),
        Command::Dataset(command) => commands::dataset::run(command),
        Command::Trial(command) => commands::trial::run(command),
        Command::Bench(command) => commands::bench::run(command),
        Command::Network(command) => commands::network::run(command),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
