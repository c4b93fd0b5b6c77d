//! `hygeia key`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use hygeia_identity::Keypair;

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Create a new Ed25519 key file (PKCS#8 PEM, mode 0600) and print its DID.
    New {
        /// Where to write the key; an existing file is never overwritten.
        #[arg(long, short)]
        out: PathBuf,
    },
    /// Print the did:key of a key file.
    Show {
        #[arg(long, short)]
        key: PathBuf,
    },
}

pub fn run(command: KeyCommand) -> anyhow::Result<ExitCode> {
    match command {
        KeyCommand::New { out } => {
            let key = Keypair::generate();
            key.write_key_file(&out)?;
            println!("{}", key.did());
            eprintln!(
                "wrote {} (readable only by you; keep it safe)",
                out.display()
            );
        }
        KeyCommand::Show { key } => {
            println!("{}", Keypair::read_key_file(&key)?.did());
        }
    }
    Ok(ExitCode::SUCCESS)
}
