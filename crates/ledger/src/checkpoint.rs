//! Checkpoints: C2SP `tlog-checkpoint` bodies in C2SP `signed-note`s, signed
//! by the node's Ed25519 key under the log's origin as key name.

use hygeia_identity::{Keypair, PublicKey};
use signed_note::{Note, StandardVerifier, VerifierList};
use tlog_tiles::Checkpoint;

use crate::merkle::Hash;

/// Signs checkpoints for one log.
pub struct CheckpointSigner {
    origin: String,
    key_id: u32,
    key: Keypair,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("the origin {0:?} is not a valid signed-note key name (no spaces or '+')")]
    BadOrigin(String),
    #[error("malformed checkpoint: {0}")]
    Malformed(String),
    #[error("checkpoint signature does not verify with the expected key: {0}")]
    BadSignature(String),
    #[error("checkpoint is for log {found:?}, expected {expected:?}")]
    WrongOrigin { expected: String, found: String },
    #[error("malformed verifier key: {0}")]
    BadVerifierKey(String),
}

impl CheckpointSigner {
    pub fn new(origin: &str, key: Keypair) -> Result<Self, CheckpointError> {
        if !signed_note::is_key_name_valid(origin) || origin.contains('\n') {
            return Err(CheckpointError::BadOrigin(origin.to_string()));
        }
        let key_id = signed_note::key_id(origin, &alg_public_key(&key.public_key()));
        Ok(CheckpointSigner {
            origin: origin.to_string(),
            key_id,
            key,
        })
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The verifier key in signed-note form, `<name>+<id>+<base64 key>`:
    /// what a verifier or witness must be configured with.
    pub fn verifier_key(&self) -> String {
        signed_note::new_ed25519_verifier_key(&self.origin, self.key.public_key().as_dalek())
    }

    pub fn sign(&self, size: u64, root: Hash) -> SignedCheckpoint {
        let body = Checkpoint::new(&self.origin, size, root, "")
            .expect("origin was checked at construction")
            .to_bytes();
        let mut note = Note::new(&body, &[]).expect("a checkpoint body is a valid note text");
        note.add_sigs(&[self])
            .expect("signing with an in-memory key cannot fail");
        SignedCheckpoint {
            size,
            root,
            note: note.to_bytes(),
        }
    }
}

impl signed_note::Signer for CheckpointSigner {
    fn name(&self) -> &str {
        &self.origin
    }

    fn key_id(&self) -> u32 {
        self.key_id
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, ed25519_dalek::SignatureError> {
        Ok(self.key.sign(msg).to_bytes().to_vec())
    }
}

/// A checkpoint with its signed-note text.
#[derive(Debug, Clone, PartialEq)]
pub struct SignedCheckpoint {
    pub size: u64,
    pub root: Hash,
    /// The whole signed note, as served at `/checkpoint`.
    pub note: Vec<u8>,
}

/// Checks checkpoints against a pinned verifier key.
pub struct CheckpointVerifier {
    origin: String,
    verifiers: VerifierList,
}

impl CheckpointVerifier {
    /// From a signed-note verifier key (`<name>+<id>+<base64>`).
    pub fn new(vkey: &str) -> Result<Self, CheckpointError> {
        let verifier = StandardVerifier::new(vkey.trim())
            .map_err(|e| CheckpointError::BadVerifierKey(e.to_string()))?;
        let origin = signed_note::Verifier::name(&verifier).to_string();
        Ok(CheckpointVerifier {
            origin,
            verifiers: VerifierList::new(vec![Box::new(verifier)]),
        })
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Verifies the note's signature and parses the checkpoint inside it.
    pub fn verify(&self, note: &[u8]) -> Result<SignedCheckpoint, CheckpointError> {
        let parsed =
            Note::from_bytes(note).map_err(|e| CheckpointError::Malformed(e.to_string()))?;
        parsed
            .verify(&self.verifiers)
            .map_err(|e| CheckpointError::BadSignature(e.to_string()))?;
        let checkpoint = Checkpoint::from_bytes(parsed.text())
            .map_err(|e| CheckpointError::Malformed(e.to_string()))?;
        if checkpoint.origin() != self.origin {
            return Err(CheckpointError::WrongOrigin {
                expected: self.origin.clone(),
                found: checkpoint.origin().to_string(),
            });
        }
        Ok(SignedCheckpoint {
            size: checkpoint.size(),
            root: *checkpoint.hash(),
            note: note.to_vec(),
        })
    }
}

/// Parses a checkpoint without checking its signature (to read a size
/// before the key is known; never to trust it).
pub fn parse_unverified(note: &[u8]) -> Result<(String, u64, Hash), CheckpointError> {
    let parsed = Note::from_bytes(note).map_err(|e| CheckpointError::Malformed(e.to_string()))?;
    let checkpoint = Checkpoint::from_bytes(parsed.text())
        .map_err(|e| CheckpointError::Malformed(e.to_string()))?;
    Ok((
        checkpoint.origin().to_string(),
        checkpoint.size(),
        *checkpoint.hash(),
    ))
}

/// The public key as signed-note encodes it: algorithm byte 0x01, then the key.
fn alg_public_key(key: &PublicKey) -> Vec<u8> {
    let mut out = vec![0x01];
    out.extend_from_slice(&key.to_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/vectors");

    fn read(path: &str) -> Vec<u8> {
        std::fs::read(format!("{VECTORS}/{path}")).unwrap()
    }

    #[test]
    fn signs_and_verifies_a_checkpoint() {
        let signer = CheckpointSigner::new("example.org/log", Keypair::generate()).unwrap();
        let root = crate::merkle::leaf_hash(b"x");
        let cp = signer.sign(42, root);
        let text = String::from_utf8(cp.note.clone()).unwrap();
        assert!(text.starts_with("example.org/log\n42\n"), "{text}");
        assert!(text.contains("\n\n\u{2014} example.org/log "));
        let verifier = CheckpointVerifier::new(&signer.verifier_key()).unwrap();
        let back = verifier.verify(&cp.note).unwrap();
        assert_eq!((back.size, back.root), (42, root));
    }

    #[test]
    fn refuses_a_checkpoint_by_another_key_or_altered() {
        let signer = CheckpointSigner::new("example.org/log", Keypair::generate()).unwrap();
        let impostor = CheckpointSigner::new("example.org/log", Keypair::generate()).unwrap();
        let verifier = CheckpointVerifier::new(&signer.verifier_key()).unwrap();
        let root = crate::merkle::leaf_hash(b"x");
        assert!(verifier.verify(&impostor.sign(1, root).note).is_err());
        let altered = String::from_utf8(signer.sign(42, root).note)
            .unwrap()
            .replacen("\n42\n", "\n43\n", 1);
        assert!(verifier.verify(altered.as_bytes()).is_err());
    }

    #[test]
    fn refuses_bad_origins() {
        assert!(CheckpointSigner::new("has space", Keypair::generate()).is_err());
        assert!(CheckpointSigner::new("a+b", Keypair::generate()).is_err());
        assert!(CheckpointSigner::new("", Keypair::generate()).is_err());
    }

    /// The C2SP signed-note example verifies with its published key, and the
    /// C2SP checkpoint example parses.
    #[test]
    fn c2sp_examples() {
        let vkey = String::from_utf8(read("c2sp/signed-note-example.vkey.txt")).unwrap();
        let verifier = StandardVerifier::new(vkey.trim()).unwrap();
        let note = Note::from_bytes(&read("c2sp/signed-note-example.txt")).unwrap();
        note.verify(&VerifierList::new(vec![Box::new(verifier)]))
            .unwrap();

        let (origin, size, _) =
            parse_unverified(&read("c2sp/tlog-checkpoint-example.txt")).unwrap();
        assert_eq!(size, 20852163);
        assert!(!origin.is_empty());
    }

    /// Go's sumdb/note known-answer test, run through our own signer: the
    /// same key gives the same key id, verifier key and signed note.
    #[test]
    fn golang_note_signing_kat() {
        use base64::Engine;
        let v: serde_json::Value =
            serde_json::from_slice(&read("golang-sumdb-note/peterneumann-note.json")).unwrap();
        let skey = v["signer_key"].as_str().unwrap();
        let seed = base64::engine::general_purpose::STANDARD
            .decode(skey.splitn(5, '+').nth(4).unwrap())
            .unwrap();
        assert_eq!(seed[0], 0x01, "algorithm byte: Ed25519");
        let key = Keypair::from_seed(seed[1..].try_into().unwrap());
        let signer = CheckpointSigner::new(v["key_name"].as_str().unwrap(), key).unwrap();
        assert_eq!(
            format!("{:08x}", signed_note::Signer::key_id(&signer)),
            v["key_id_hex"].as_str().unwrap()
        );
        assert_eq!(signer.verifier_key(), v["verifier_key"].as_str().unwrap());
        let mut note = Note::new(v["text"].as_str().unwrap().as_bytes(), &[]).unwrap();
        note.add_sigs(&[&signer]).unwrap();
        assert_eq!(
            String::from_utf8(note.to_bytes()).unwrap(),
            v["signed_note"].as_str().unwrap()
        );
    }
}
