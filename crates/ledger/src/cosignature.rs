//! C2SP `tlog-cosignature` (`cosignature/v1`, Ed25519): a cosigner's
//! timestamped statement that a checkpoint is the largest consistent tree
//! head it has observed for the log, and the checking of a quorum of them.
//!
//! - The signed message is `cosignature/v1\ntime <t>\n` followed by the
//!   checkpoint's note text (body with its final newline, no signature
//!   lines).
//! - The note signature line is `— <name> base64(key ID || u64 t || sig)`,
//!   with key ID = `SHA-256(<name> || "\n" || 0x04 || public key)[:4]`.
//! - The verifier key is `<name>+<hex key ID>+base64(0x04 || public key)`.
//!
//! A Hygeia node cosigns under its node DID (`did:key:…`) as cosigner name,
//! so anyone holding the log can compute every custodian's expected name
//! and key ID from the custodian set alone.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hygeia_identity::{Keypair, PublicKey};
use signed_note::{Note, Signature};
use tlog_tiles::Checkpoint;

use crate::merkle::Hash;

/// The signed-note signature type of Ed25519 `cosignature/v1`.
pub const ALG_COSIGNATURE_V1: u8 = 0x04;
/// The domain-separating header line of the signed message.
pub const HEADER: &str = "cosignature/v1";
/// Largest cosigned note accepted: a checkpoint body, the log's signature
/// and the cosignatures of the largest custodian set, with room to spare.
pub const MAX_COSIGNED_NOTE: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CosignatureError {
    #[error("malformed cosigned note: {0}")]
    Malformed(String),
    #[error("the cosigner name {0:?} is not a valid signed-note key name")]
    BadName(String),
    #[error("malformed cosigner key: {0}")]
    BadKey(String),
    #[error("the cosignature of {name} does not verify over this checkpoint")]
    Invalid { name: String },
    #[error("{valid} valid cosignatures from the cosigner set, {needed} needed")]
    QuorumNotMet { valid: usize, needed: usize },
}

impl CosignatureError {
    /// A stable code for the error, for clients and the CLI.
    pub fn code(&self) -> &'static str {
        match self {
            CosignatureError::Malformed(_) => "cosignature.malformed",
            CosignatureError::BadName(_) => "cosignature.bad_name",
            CosignatureError::BadKey(_) => "cosignature.bad_key",
            CosignatureError::Invalid { .. } => "cosignature.invalid",
            CosignatureError::QuorumNotMet { .. } => "cosignature.quorum_not_met",
        }
    }
}

/// The message a `cosignature/v1` signature covers.
pub fn signed_message(note_text: &[u8], timestamp: u64) -> Vec<u8> {
    let mut msg = format!("{HEADER}\ntime {timestamp}\n").into_bytes();
    msg.extend_from_slice(note_text);
    msg
}

/// The key ID of an Ed25519 cosigner.
pub fn key_id(name: &str, key: &PublicKey) -> u32 {
    let mut material = vec![ALG_COSIGNATURE_V1];
    material.extend_from_slice(&key.to_bytes());
    signed_note::key_id(name, &material)
}

fn check_name(name: &str) -> Result<(), CosignatureError> {
    if signed_note::is_key_name_valid(name) && !name.contains('\n') {
        Ok(())
    } else {
        Err(CosignatureError::BadName(name.chars().take(80).collect()))
    }
}

/// Makes `cosignature/v1` signatures with one Ed25519 key under one name.
pub struct Cosigner {
    name: String,
    key_id: u32,
    key: Keypair,
}

impl Cosigner {
    pub fn new(name: &str, key: Keypair) -> Result<Self, CosignatureError> {
        check_name(name)?;
        Ok(Cosigner {
            name: name.to_owned(),
            key_id: key_id(name, &key.public_key()),
            key,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn verifier(&self) -> CosignatureVerifier {
        CosignatureVerifier {
            name: self.name.clone(),
            key_id: self.key_id,
            key: self.key.public_key(),
        }
    }

    /// Cosigns a checkpoint's note text (without signature lines) at
    /// `timestamp` (POSIX seconds, below 2^63).
    pub fn cosign(&self, note_text: &[u8], timestamp: u64) -> Result<Signature, CosignatureError> {
        if timestamp >= 1 << 63 {
            return Err(CosignatureError::Malformed(
                "a cosignature timestamp is below 2^63".into(),
            ));
        }
        let sig = self.key.sign(&signed_message(note_text, timestamp));
        let mut bytes = timestamp.to_be_bytes().to_vec();
        bytes.extend_from_slice(&sig.to_bytes());
        Signature::new(self.name.clone(), self.key_id, bytes)
            .map_err(|_| CosignatureError::BadName(self.name.clone()))
    }
}

/// Checks `cosignature/v1` signatures of one cosigner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosignatureVerifier {
    name: String,
    key_id: u32,
    key: PublicKey,
}

impl CosignatureVerifier {
    pub fn new(name: &str, key: PublicKey) -> Result<Self, CosignatureError> {
        check_name(name)?;
        Ok(CosignatureVerifier {
            name: name.to_owned(),
            key_id: key_id(name, &key),
            key,
        })
    }

    /// A node's verifier: its DID is the cosigner name.
    pub fn for_did(did: &str) -> Result<Self, CosignatureError> {
        let parsed: hygeia_identity::Did = did
            .parse()
            .map_err(|e: hygeia_identity::DidError| CosignatureError::BadKey(e.to_string()))?;
        CosignatureVerifier::new(did, *parsed.public_key())
    }

    /// From a verifier key `<name>+<hex key ID>+base64(0x04 || key)`.
    pub fn from_vkey(vkey: &str) -> Result<Self, CosignatureError> {
        let bad = |why: &str| CosignatureError::BadKey(why.to_owned());
        let mut parts = vkey.trim().splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("a verifier key is <name>+<key id>+<base64 key>"));
        };
        let id = u32::from_str_radix(id, 16)
            .ok()
            .filter(|_| id.len() == 8)
            .ok_or_else(|| bad("the key id is 8 hex digits"))?;
        let key = STANDARD
            .decode(key)
            .map_err(|_| bad("the key is not base64"))?;
        let (alg, key) = key.split_first().ok_or_else(|| bad("empty key"))?;
        if *alg != ALG_COSIGNATURE_V1 {
            return Err(bad("not an Ed25519 cosignature/v1 key (type 0x04)"));
        }
        let key: [u8; 32] = key.try_into().map_err(|_| bad("the key is 32 bytes"))?;
        let key = PublicKey::from_bytes(&key).map_err(|_| bad("not an Ed25519 public key"))?;
        let verifier = CosignatureVerifier::new(name, key)?;
        if verifier.key_id != id {
            return Err(bad("the key id does not match the name and key"));
        }
        Ok(verifier)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// `<name>+<hex key ID>+base64(0x04 || key)`.
    pub fn vkey(&self) -> String {
        let mut material = vec![ALG_COSIGNATURE_V1];
        material.extend_from_slice(&self.key.to_bytes());
        format!(
            "{}+{:08x}+{}",
            self.name,
            self.key_id,
            STANDARD.encode(material)
        )
    }

    /// Whether a signature line is this cosigner's (by name and key ID).
    pub fn matches(&self, sig: &Signature) -> bool {
        sig.name() == self.name && sig.id() == self.key_id
    }

    /// Checks one of this cosigner's signatures over `note_text`; returns
    /// its timestamp.
    pub fn verify(&self, note_text: &[u8], sig: &Signature) -> Result<u64, CosignatureError> {
        let invalid = || CosignatureError::Invalid {
            name: self.name.clone(),
        };
        if !self.matches(sig) {
            return Err(invalid());
        }
        let bytes = sig.signature();
        if bytes.len() != 8 + 64 {
            return Err(invalid());
        }
        let (ts, raw) = bytes.split_at(8);
        let timestamp = u64::from_be_bytes(ts.try_into().map_err(|_| invalid())?);
        if timestamp >= 1 << 63 {
            return Err(invalid());
        }
        let sig = hygeia_identity::Signature::from_slice(raw).map_err(|_| invalid())?;
        self.key
            .verify(&signed_message(note_text, timestamp), &sig)
            .map_err(|_| invalid())?;
        Ok(timestamp)
    }
}

impl signed_note::Verifier for CosignatureVerifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        self.key_id
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        match Signature::new(self.name.clone(), self.key_id, sig.to_vec()) {
            Ok(sig) => CosignatureVerifier::verify(self, msg, &sig).is_ok(),
            Err(_) => false,
        }
    }
}

/// A checkpoint note with all its signature lines (the log's and the
/// cosigners'), parsed but not yet trusted.
#[derive(Debug, Clone, PartialEq)]
pub struct CosignedNote {
    /// The note text: the checkpoint body with its final newline.
    pub text: Vec<u8>,
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    pub signatures: Vec<Signature>,
}

/// What a quorum check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quorum {
    /// The cosigners whose signatures verified, with their timestamps.
    pub valid: Vec<(String, u64)>,
    /// Signature lines from no key of the set (the log's own signature
    /// among them): ignored, as the spec requires.
    pub ignored: usize,
}

impl CosignedNote {
    /// Parses a signed note holding a C2SP checkpoint.
    pub fn parse(bytes: &[u8]) -> Result<Self, CosignatureError> {
        let malformed = |why: String| CosignatureError::Malformed(why);
        if bytes.len() > MAX_COSIGNED_NOTE {
            return Err(malformed(format!(
                "a cosigned note is at most {MAX_COSIGNED_NOTE} bytes"
            )));
        }
        // The signed-note parser checks the layout, UTF-8, control
        // characters and the signature count; it keeps the lines private,
        // so they are read again from the part it accepted.
        let note = Note::from_bytes(bytes).map_err(|e| malformed(e.to_string()))?;
        let text = note.text().to_vec();
        let block = &bytes[text.len() + 1..];
        let signatures = block
            .split(|b| *b == b'\n')
            .filter(|line| !line.is_empty())
            .map(|line| Signature::from_bytes(line).map_err(|e| malformed(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let checkpoint = Checkpoint::from_bytes(&text).map_err(|e| malformed(e.to_string()))?;
        Ok(CosignedNote {
            origin: checkpoint.origin().to_owned(),
            size: checkpoint.size(),
            root: *checkpoint.hash(),
            text,
            signatures,
        })
    }

    /// The note with its signature lines, in order.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.text.clone();
        out.push(b'\n');
        for sig in &self.signatures {
            out.extend_from_slice(&sig.to_bytes());
        }
        out
    }

    /// Adds a signature line, replacing one by the same key.
    pub fn add(&mut self, sig: Signature) {
        self.signatures
            .retain(|s| !(s.name() == sig.name() && s.id() == sig.id()));
        self.signatures.push(sig);
    }

    /// Checks that at least `quorum` distinct cosigners of `set` signed
    /// this checkpoint. A line that names a cosigner of the set and does
    /// not verify is an error (`cosignature.invalid`), not merely ignored:
    /// a note carrying it was altered or made up. Lines from keys outside
    /// the set are ignored.
    pub fn check_quorum(
        &self,
        set: &[CosignatureVerifier],
        quorum: usize,
    ) -> Result<Quorum, CosignatureError> {
        let mut valid: Vec<(String, u64)> = Vec::new();
        let mut ignored = 0;
        for sig in &self.signatures {
            match set.iter().find(|v| v.matches(sig)) {
                Some(verifier) => {
                    let timestamp = verifier.verify(&self.text, sig)?;
                    if !valid.iter().any(|(name, _)| name == verifier.name()) {
                        valid.push((verifier.name().to_owned(), timestamp));
                    }
                }
                None => ignored += 1,
            }
        }
        if valid.len() < quorum {
            return Err(CosignatureError::QuorumNotMet {
                valid: valid.len(),
                needed: quorum,
            });
        }
        Ok(Quorum { valid, ignored })
    }
}

/// Most consistency proof lines in an `add-checkpoint` request (C2SP
/// tlog-witness).
pub const MAX_PROOF_LINES: usize = 63;
/// Largest `add-checkpoint` request body: the old size line, the proof
/// lines and a cosigned note at its limit.
pub const MAX_ADD_CHECKPOINT: usize = 32 + MAX_PROOF_LINES * 45 + MAX_COSIGNED_NOTE;

/// A C2SP tlog-witness `add-checkpoint` request body: `old <size>\n`, up to
/// 63 base64 consistency proof lines, an empty line, then the checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct AddCheckpoint {
    pub old: u64,
    pub proof: Vec<Hash>,
    pub checkpoint: CosignedNote,
    /// The checkpoint note as sent, signature lines included.
    pub note: Vec<u8>,
}

impl AddCheckpoint {
    pub fn parse(body: &[u8]) -> Result<Self, CosignatureError> {
        let malformed = |why: &str| CosignatureError::Malformed(why.to_owned());
        if body.len() > MAX_ADD_CHECKPOINT {
            return Err(malformed("the request body is too large"));
        }
        let (first, mut rest) = split_line(body).ok_or_else(|| malformed("no old size line"))?;
        let old = first
            .strip_prefix(b"old ")
            .and_then(|n| std::str::from_utf8(n).ok())
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .filter(|n| *n == "0" || !n.starts_with('0'))
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| {
                malformed("the first line is `old <size>` in decimal without leading zeros")
            })?;
        let mut proof = Vec::new();
        loop {
            let (line, after) =
                split_line(rest).ok_or_else(|| malformed("no empty line before the checkpoint"))?;
            rest = after;
            if line.is_empty() {
                break;
            }
            if proof.len() == MAX_PROOF_LINES {
                return Err(malformed("at most 63 consistency proof lines"));
            }
            let hash: [u8; 32] = STANDARD
                .decode(line)
                .ok()
                .and_then(|h| h.try_into().ok())
                .ok_or_else(|| malformed("a proof line is one base64 SHA-256 hash"))?;
            proof.push(Hash(hash));
        }
        let checkpoint = CosignedNote::parse(rest)?;
        Ok(AddCheckpoint {
            old,
            proof,
            checkpoint,
            note: rest.to_vec(),
        })
    }

    /// The request body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("old {}\n", self.old).into_bytes();
        for hash in &self.proof {
            out.extend_from_slice(STANDARD.encode(hash.0).as_bytes());
            out.push(b'\n');
        }
        out.push(b'\n');
        out.extend_from_slice(&self.note);
        out
    }
}

/// The line before the first newline, and what follows it.
fn split_line(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = bytes.iter().position(|b| *b == b'\n')?;
    Some((&bytes[..at], &bytes[at + 1..]))
}

/// Parses signature lines (an `add-checkpoint` answer): each
/// `— <name> <base64>\n`.
pub fn parse_signature_lines(bytes: &[u8]) -> Result<Vec<Signature>, CosignatureError> {
    if bytes.len() > MAX_COSIGNED_NOTE || !bytes.ends_with(b"\n") {
        return Err(CosignatureError::Malformed(
            "signature lines end with a newline and fit the note limit".into(),
        ));
    }
    bytes[..bytes.len() - 1]
        .split(|b| *b == b'\n')
        .map(|line| {
            Signature::from_bytes(line).map_err(|e| CosignatureError::Malformed(e.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::CheckpointSigner;

    const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/vectors");

    fn read(path: &str) -> Vec<u8> {
        std::fs::read(format!("{VECTORS}/{path}")).unwrap()
    }

    /// A known-answer test computed independently with Python's
    /// `cryptography` (OpenSSL's Ed25519), from the C2SP spec's formulas:
    /// seed 00 01 … 1f, name `witness.example/kat`, time 1679315147 (the
    /// spec's example time), over the C2SP tlog-checkpoint example body.
    const KAT_LINE: &str = "\u{2014} witness.example/kat 4k01ywAAAABkGFDLBuRDazBLVac2NE+Y+IjbjQOcXLfF9CSDZVUIoS83rE1nFZsVE8YiWV6Ngr7lV8H6bdoBQGP/l73euDMQ9k+bBQ==\n";
    const KAT_VKEY: &str =
        "witness.example/kat+e24d35cb+BAOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4";

    fn kat_cosigner() -> Cosigner {
        let seed: [u8; 32] = std::array::from_fn(|i| i as u8);
        Cosigner::new("witness.example/kat", Keypair::from_seed(&seed)).unwrap()
    }

    #[test]
    fn known_answer_from_an_independent_implementation() {
        let example = CosignedNote::parse(&read("c2sp/tlog-checkpoint-example.txt")).unwrap();
        let cosigner = kat_cosigner();
        assert_eq!(cosigner.verifier().vkey(), KAT_VKEY);
        let line = cosigner.cosign(&example.text, 1679315147).unwrap();
        assert_eq!(String::from_utf8(line.to_bytes()).unwrap(), KAT_LINE);
        let verifier = CosignatureVerifier::from_vkey(KAT_VKEY).unwrap();
        assert_eq!(verifier.verify(&example.text, &line), Ok(1679315147));
    }

    /// A published witness key (remora.n621.de, in transparency-dev's
    /// tests): its key ID is the spec's hash of name, 0x04 and key.
    #[test]
    fn published_witness_key_id() {
        let vkey = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2";
        let verifier = CosignatureVerifier::from_vkey(vkey).unwrap();
        assert_eq!(verifier.key_id(), 0xda77ade7);
        assert_eq!(verifier.vkey(), vkey);
        // A note-signing (0x01) key or a wrong key id is not a cosigner key.
        assert!(CosignatureVerifier::from_vkey(
            "remora.n621.de+da77ade8+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
        )
        .is_err());
        let signed_note_key = String::from_utf8(read("c2sp/signed-note-example.vkey.txt")).unwrap();
        assert!(CosignatureVerifier::from_vkey(&signed_note_key).is_err());
    }

    /// The C2SP cosignature example parses: the log's line and a witness
    /// line whose timestamp is the spec's example time.
    #[test]
    fn c2sp_cosignature_example_parses() {
        let bytes = read("c2sp/tlog-cosignature-example.txt");
        let note = CosignedNote::parse(&bytes).unwrap();
        assert_eq!(note.size, 20852163);
        assert_eq!(note.origin, "example.com/behind-the-sofa");
        assert_eq!(note.signatures.len(), 2);
        let witness = &note.signatures[1];
        assert_eq!(witness.name(), "witness.example.com/w1");
        let ts = u64::from_be_bytes(witness.signature()[..8].try_into().unwrap());
        assert_eq!(ts, 1679315147);
        assert_eq!(note.to_bytes(), bytes);
    }

    fn cosigned(n: usize) -> (CosignedNote, Vec<Cosigner>) {
        let log = CheckpointSigner::new("example.org/log", Keypair::generate()).unwrap();
        let cp = log.sign(7, crate::merkle::leaf_hash(b"x"));
        let mut note = CosignedNote::parse(&cp.note).unwrap();
        let cosigners: Vec<Cosigner> = (0..n)
            .map(|_| {
                let key = Keypair::generate();
                Cosigner::new(key.did().as_str(), key).unwrap()
            })
            .collect();
        for (i, c) in cosigners.iter().enumerate() {
            note.add(c.cosign(&note.text, 1_700_000_000 + i as u64).unwrap());
        }
        (note, cosigners)
    }

    #[test]
    fn a_quorum_of_the_set_passes_and_the_log_still_verifies() {
        let (note, cosigners) = cosigned(3);
        let set: Vec<_> = cosigners.iter().map(Cosigner::verifier).collect();
        let quorum = note.check_quorum(&set, 3).unwrap();
        assert_eq!(quorum.valid.len(), 3);
        assert_eq!(quorum.ignored, 1, "the log's own line is not a cosignature");
        // Round trip, and the did:key verifier is the same as the cosigner's.
        let again = CosignedNote::parse(&note.to_bytes()).unwrap();
        assert_eq!(again, note);
        let did = cosigners[0].name();
        assert_eq!(CosignatureVerifier::for_did(did).unwrap(), set[0]);
        // signed_note's own verifier accepts the cosignatures through ours.
        let list = signed_note::VerifierList::new(
            set.iter()
                .map(|v| Box::new(v.clone()) as Box<dyn signed_note::Verifier>)
                .collect(),
        );
        let (verified, unverified) = Note::from_bytes(&note.to_bytes())
            .unwrap()
            .verify(&list)
            .unwrap();
        assert_eq!((verified.len(), unverified.len()), (3, 1));
    }

    #[test]
    fn too_few_cosignatures_is_quorum_not_met() {
        let (note, cosigners) = cosigned(2);
        let set: Vec<_> = cosigners.iter().map(Cosigner::verifier).collect();
        let err = note.check_quorum(&set, 3).unwrap_err();
        assert_eq!(
            err,
            CosignatureError::QuorumNotMet {
                valid: 2,
                needed: 3
            }
        );
        assert_eq!(err.code(), "cosignature.quorum_not_met");
    }

    #[test]
    fn a_tampered_cosignature_is_invalid() {
        let (mut note, cosigners) = cosigned(3);
        let set: Vec<_> = cosigners.iter().map(Cosigner::verifier).collect();
        // Change the timestamp of the second cosignature.
        let sig = &note.signatures[2];
        let mut bytes = sig.signature().to_vec();
        bytes[7] ^= 1;
        note.signatures[2] = Signature::new(sig.name().to_owned(), sig.id(), bytes).unwrap();
        let err = note.check_quorum(&set, 2).unwrap_err();
        assert_eq!(err.code(), "cosignature.invalid");
        // Or the checkpoint under valid cosignatures.
        let (mut note, _) = cosigned(1);
        let set = vec![CosignatureVerifier::for_did(note.signatures[1].name()).unwrap()];
        note.text = String::from_utf8(note.text)
            .unwrap()
            .replacen("\n7\n", "\n8\n", 1)
            .into_bytes();
        assert_eq!(
            note.check_quorum(&set, 1).unwrap_err().code(),
            "cosignature.invalid"
        );
    }

    #[test]
    fn cosignatures_outside_the_set_do_not_count() {
        let (note, cosigners) = cosigned(3);
        let set: Vec<_> = cosigners[..2].iter().map(Cosigner::verifier).collect();
        let err = note.check_quorum(&set, 3).unwrap_err();
        assert_eq!(
            err,
            CosignatureError::QuorumNotMet {
                valid: 2,
                needed: 3
            }
        );
        // The same key under another name is another cosigner.
        let key = Keypair::generate();
        let renamed = Cosigner::new(
            "other.example/w",
            Keypair::from_seed(&key.as_dalek().to_bytes()),
        )
        .unwrap();
        let mut note = note;
        note.add(renamed.cosign(&note.text, 1).unwrap());
        let set = vec![CosignatureVerifier::for_did(key.did().as_str()).unwrap()];
        assert_eq!(
            note.check_quorum(&set, 1).unwrap_err(),
            CosignatureError::QuorumNotMet {
                valid: 0,
                needed: 1
            }
        );
    }

    #[test]
    fn duplicate_lines_count_once() {
        let (mut note, cosigners) = cosigned(1);
        let line = note.signatures[1].clone();
        note.signatures.push(line);
        let set = vec![cosigners[0].verifier()];
        assert_eq!(
            note.check_quorum(&set, 2).unwrap_err(),
            CosignatureError::QuorumNotMet {
                valid: 1,
                needed: 2
            }
        );
    }

    #[test]
    fn malformed_notes_are_refused() {
        for bad in [
            &b""[..],
            b"no blank line\n",
            b"example.org/log\n7\nnot base64\n\n\xe2\x80\x94 a AAAA\n",
            b"example.org/log\nseven\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n",
        ] {
            assert!(CosignedNote::parse(bad).is_err(), "{bad:?}");
        }
        assert!(CosignedNote::parse(&vec![b'a'; MAX_COSIGNED_NOTE + 1]).is_err());
        assert!(Cosigner::new("has space", Keypair::generate()).is_err());
        assert!(kat_cosigner().cosign(b"x\n", 1 << 63).is_err());
    }

    #[test]
    fn add_checkpoint_requests_round_trip_and_malformed_ones_are_refused() {
        let example = read("c2sp/tlog-checkpoint-example.txt");
        let mut body = b"old 20852014\n".to_vec();
        for line in [
            "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=",
            "jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=",
            "5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=",
            "/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=",
        ] {
            body.extend_from_slice(line.as_bytes());
            body.push(b'\n');
        }
        body.push(b'\n');
        body.extend_from_slice(&example);
        // The spec's example request.
        let request = AddCheckpoint::parse(&body).unwrap();
        assert_eq!((request.old, request.proof.len()), (20852014, 4));
        assert_eq!(request.checkpoint.size, 20852163);
        assert_eq!(request.to_bytes(), body);
        let with_note = |head: &str| {
            let mut b = head.as_bytes().to_vec();
            b.extend_from_slice(&example);
            b
        };
        assert_eq!(
            AddCheckpoint::parse(&with_note("old 0\n\n")).unwrap().old,
            0
        );
        for head in [
            "old 01\n\n",
            "old -1\n\n",
            "old\n\n",
            "old 1 \n\n",
            "new 1\n\n",
            "old 18446744073709551616\n\n",
            "old 1\nnot base64!\n\n",
            "old 1\nAAAA\n\n",
            "old 1\n",
        ] {
            assert!(AddCheckpoint::parse(&with_note(head)).is_err(), "{head:?}");
        }
        let many = format!(
            "old 1\n{}\n",
            "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n".repeat(64)
        );
        assert!(AddCheckpoint::parse(&with_note(&many)).is_err());
        assert!(AddCheckpoint::parse(b"old 1").is_err());
        assert!(AddCheckpoint::parse(&vec![b'\n'; MAX_ADD_CHECKPOINT + 1]).is_err());
        // Signature lines, as an answer carries them.
        let lines = parse_signature_lines(KAT_LINE.as_bytes()).unwrap();
        assert_eq!(lines[0].name(), "witness.example/kat");
        assert!(parse_signature_lines(b"\xe2\x80\x94 a b\n").is_err());
        assert!(parse_signature_lines(b"").is_err());
    }
}
