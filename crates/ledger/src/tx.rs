//! The transaction envelope.
//!
//! A transaction is one JSON object, in its RFC 8785 (JCS) canonical form:
//!
//! ```json
//! {"body":{…},"network":"…","nonce":"…","sig":"…","signer":"did:key:z6Mk…","type":"attest","v":1}
//! ```
//!
//! `sig` is the unpadded base64url Ed25519 signature, by the key that
//! `signer` names, over [`SIGNING_DOMAIN`] followed by the JCS bytes of the
//! same object without its `sig` member. The log entry is the exact canonical
//! bytes, so anyone can re-check it with a JCS library and Ed25519.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hygeia_identity::{Did, Keypair, PublicKey, Signature};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::{ErrorCode, TxError};
use crate::merkle::{leaf_hash, Hash};
use crate::module::{ModuleRegistry, ParsedBody};

/// The envelope version this node writes and accepts.
pub const TX_VERSION: u64 = 1;
/// The largest transaction, in canonical bytes: a tlog-tiles entry carries a
/// 16-bit length, so 64 KiB − 1.
pub const MAX_TX_BYTES: usize = 65_535;
/// Prefix of every signed message, so a transaction signature can never be
/// mistaken for a signature in another protocol (or another version).
pub const SIGNING_DOMAIN: &[u8] = b"hygeia.tx.v1\x00";
/// The longest nonce.
pub const MAX_NONCE_LEN: usize = 64;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    v: Value,
    #[serde(rename = "type")]
    tx_type: String,
    network: String,
    signer: String,
    nonce: String,
    body: Value,
    sig: String,
}

/// A transaction whose canonical form, schema, signature and network have
/// been checked. Replay is checked by the sequencer against the log.
#[derive(Clone, Debug)]
pub struct SignedTx {
    canonical: Vec<u8>,
    leaf_hash: Hash,
    signer: Did,
    nonce: String,
    tx_type: String,
    body: Value,
    /// The body as its module parsed it, when the module keeps one.
    parsed: Option<ParsedBody>,
}

impl SignedTx {
    /// The log entry: the exact canonical JSON bytes.
    pub fn canonical_bytes(&self) -> &[u8] {
        &self.canonical
    }

    /// RFC 9162 leaf hash, `SHA-256(0x00 || entry)`. This is also the
    /// transaction's identifier.
    pub fn leaf_hash(&self) -> Hash {
        self.leaf_hash
    }

    pub fn signer(&self) -> &Did {
        &self.signer
    }

    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    pub fn tx_type(&self) -> &str {
        &self.tx_type
    }

    pub fn body(&self) -> &Value {
        &self.body
    }

    /// The body as its module parsed and checked it at admission, if the
    /// module keeps one ([`TxModule::parse_body`](crate::TxModule::parse_body)).
    pub fn parsed_body(&self) -> Option<&(dyn std::any::Any + Send + Sync)> {
        self.parsed.as_deref()
    }

    /// The key under which the replay guard remembers (signer, nonce).
    pub fn replay_key(&self) -> [u8; 32] {
        replay_key(self.signer.as_str(), &self.nonce)
    }

    /// Checks one transaction completely, signature included.
    pub fn parse(raw: &[u8], ctx: &TxContext<'_>) -> Result<SignedTx, TxError> {
        let unverified = UnverifiedTx::parse(raw, ctx)?;
        unverified
            .public_key()
            .verify(&unverified.signing_bytes, &unverified.signature)
            .map_err(|_| bad_signature())?;
        Ok(unverified.tx)
    }

    /// Checks many transactions, signatures in parallel. On failure,
    /// returns the position of the first bad transaction.
    pub fn parse_many(
        raws: &[&[u8]],
        ctx: &TxContext<'_>,
    ) -> Result<Vec<SignedTx>, (usize, TxError)> {
        let parsed = raws
            .iter()
            .enumerate()
            .map(|(i, raw)| UnverifiedTx::parse(raw, ctx).map_err(|e| (i, e)))
            .collect::<Result<Vec<_>, _>>()?;
        verify_all(parsed)
    }
}

/// What a transaction is checked against: the network it must name and the
/// types the node accepts.
pub struct TxContext<'a> {
    pub network: &'a str,
    pub modules: &'a ModuleRegistry,
}

/// A transaction that passed every check but the signature.
pub struct UnverifiedTx {
    tx: SignedTx,
    signing_bytes: Vec<u8>,
    signature: Signature,
}

impl UnverifiedTx {
    pub fn parse(raw: &[u8], ctx: &TxContext<'_>) -> Result<UnverifiedTx, TxError> {
        if raw.len() > MAX_TX_BYTES {
            return Err(TxError::new(
                ErrorCode::TxTooLarge,
                format!(
                    "transaction is {} bytes; the limit is {MAX_TX_BYTES} bytes of canonical JSON",
                    raw.len()
                ),
            ));
        }
        let value: Value = serde_json::from_slice(raw).map_err(|e| {
            TxError::new(
                ErrorCode::MalformedJson,
                format!("transaction is not valid JSON: {e}"),
            )
        })?;
        let canonical = canonicalize(&value)?;
        if canonical != raw {
            return Err(TxError::new(
                ErrorCode::NonCanonical,
                "transaction is not in RFC 8785 (JCS) canonical form: sort members by key, \
                 drop insignificant whitespace, use the shortest escapes and number forms, \
                 and do not repeat keys",
            ));
        }
        let envelope = Envelope::deserialize(&value).map_err(|e| {
            schema(format!(
                "transaction envelope: {e}; expected an object with exactly body, network, nonce, sig, signer, type, v"
            ))
        })?;
        let Value::Object(mut object) = value else {
            return Err(schema("a transaction must be a JSON object"));
        };
        if envelope.v.as_u64() != Some(TX_VERSION) {
            return Err(TxError::new(
                ErrorCode::UnsupportedVersion,
                format!(
                    "transaction version {} is not supported; this node accepts v = {TX_VERSION}",
                    envelope.v
                ),
            ));
        }
        let module = ctx.modules.get(&envelope.tx_type).ok_or_else(|| {
            TxError::new(
                ErrorCode::UnknownType,
                format!(
                    "unknown transaction type {:?}; this node accepts {}",
                    truncate(&envelope.tx_type, 64),
                    ctx.modules.types().join(", ")
                ),
            )
        })?;
        if envelope.network != ctx.network {
            return Err(TxError::new(
                ErrorCode::WrongNetwork,
                format!(
                    "transaction is for network {:?}, this node is {:?}",
                    truncate(&envelope.network, 128),
                    ctx.network
                ),
            ));
        }
        check_nonce(&envelope.nonce)?;
        let signer = Did::parse_cached(&envelope.signer).map_err(|e| {
            TxError::new(
                ErrorCode::BadSigner,
                format!("signer is not a usable did:key: {e}"),
            )
        })?;
        let parsed = module.parse_body(&envelope.body).map_err(schema)?;
        let signature = decode_signature(&envelope.sig)?;

        let signing_bytes = match unsigned_form(&canonical, &envelope.sig) {
            Some(signing_bytes) => signing_bytes,
            None => {
                object.remove("sig");
                let mut signing_bytes = SIGNING_DOMAIN.to_vec();
                signing_bytes.extend_from_slice(&canonicalize(&Value::Object(object))?);
                signing_bytes
            }
        };

        Ok(UnverifiedTx {
            tx: SignedTx {
                leaf_hash: leaf_hash(&canonical),
                canonical,
                signer,
                nonce: envelope.nonce,
                tx_type: envelope.tx_type,
                body: envelope.body,
                parsed,
            },
            signing_bytes,
            signature,
        })
    }

    fn public_key(&self) -> &PublicKey {
        self.tx.signer.public_key()
    }
}

impl UnverifiedTx {
    /// Only for the crate's verification paths, after the signature checked.
    pub(crate) fn into_verified(self) -> SignedTx {
        self.tx
    }

    /// The transaction, its signature unchecked: only for an entry of a
    /// log whose root at a size covering it is vouched for otherwise (a
    /// node catching up from a state snapshot that enough validators
    /// signed checks the root its entries make, not each signature, which
    /// every one of those validators checked before it was ordered).
    pub fn into_vouched_for(self) -> SignedTx {
        self.tx
    }
}

/// Checks each signature strictly (RFC 8032, cofactorless, canonical `S`,
/// no small-order keys or `R`), in parallel; `true` where it verifies.
///
/// Ed25519 batch verification would be about four times cheaper, but it can
/// accept a signature whose `R` carries a small torsion component, which
/// every strict verifier (OpenSSL, Python's `cryptography`, Go) refuses: a
/// signer could then put an entry in the log that independent verifiers
/// reject. The log must only hold what any standard Ed25519 library accepts.
pub fn signature_checks(items: &[&UnverifiedTx]) -> Vec<bool> {
    use rayon::prelude::*;
    let check = |p: &&UnverifiedTx| {
        p.public_key()
            .verify(&p.signing_bytes, &p.signature)
            .is_ok()
    };
    if items.len() < 8 {
        items.iter().map(check).collect()
    } else {
        items.par_iter().map(check).collect()
    }
}

/// Verifies the signatures of parsed transactions and names the first bad one.
pub fn verify_all(parsed: Vec<UnverifiedTx>) -> Result<Vec<SignedTx>, (usize, TxError)> {
    let refs: Vec<&UnverifiedTx> = parsed.iter().collect();
    if let Some(bad) = signature_checks(&refs).iter().position(|ok| !ok) {
        return Err((bad, bad_signature()));
    }
    Ok(parsed
        .into_iter()
        .map(UnverifiedTx::into_verified)
        .collect())
}

/// Builds and signs transactions.
pub struct TxBuilder<'a> {
    pub network: &'a str,
    pub tx_type: &'a str,
    pub nonce: String,
    pub body: Value,
}

impl TxBuilder<'_> {
    /// Signs and returns the canonical bytes of the transaction.
    pub fn sign(self, key: &Keypair) -> Vec<u8> {
        self.sign_parts(key).0
    }

    /// The canonical bytes, and the body. The canonical form without `sig`
    /// is computed once: it is what is signed, and `sig` is then spliced in
    /// where RFC 8785's key order puts it — between `nonce` and `signer`,
    /// the last `,"signer":` of the text, since every key after `body` is a
    /// top-level one and a quote inside a string is always escaped.
    fn sign_parts(self, key: &Keypair) -> (Vec<u8>, Value) {
        let signer = key.did();
        let mut object = Map::new();
        object.insert("v".into(), Value::from(TX_VERSION));
        object.insert("type".into(), Value::from(self.tx_type));
        object.insert("network".into(), Value::from(self.network));
        object.insert("signer".into(), Value::from(signer.as_str()));
        object.insert("nonce".into(), Value::from(self.nonce));
        object.insert("body".into(), self.body);
        let unsigned =
            serde_json_canonicalizer::to_vec(&object).expect("a JSON value always serializes");
        let mut message = Vec::with_capacity(SIGNING_DOMAIN.len() + unsigned.len());
        message.extend_from_slice(SIGNING_DOMAIN);
        message.extend_from_slice(&unsigned);
        let sig = URL_SAFE_NO_PAD.encode(key.sign(&message).to_bytes());
        const SIGNER_KEY: &[u8] = b",\"signer\":";
        let at = unsigned
            .windows(SIGNER_KEY.len())
            .rposition(|w| w == SIGNER_KEY)
            .expect("the envelope has a signer");
        let mut canonical = Vec::with_capacity(unsigned.len() + sig.len() + 9);
        canonical.extend_from_slice(&unsigned[..at]);
        canonical.extend_from_slice(b",\"sig\":\"");
        canonical.extend_from_slice(sig.as_bytes());
        canonical.push(b'"');
        canonical.extend_from_slice(&unsigned[at..]);
        let body = object.remove("body").unwrap_or(Value::Null);
        (canonical, body)
    }

    /// Signs, then checks the transaction as a submission is checked —
    /// size, network, type, nonce, body — except the signature, which was
    /// just made with `key`, and the canonical form, which this builder
    /// produces. For a node's own transactions: no parse, no second
    /// canonicalization, no verification.
    pub fn sign_checked(self, key: &Keypair, ctx: &TxContext<'_>) -> Result<SignedTx, TxError> {
        let module = ctx.modules.get(self.tx_type).ok_or_else(|| {
            TxError::new(
                ErrorCode::UnknownType,
                format!("unknown transaction type {:?}", self.tx_type),
            )
        })?;
        if self.network != ctx.network {
            return Err(TxError::new(
                ErrorCode::WrongNetwork,
                format!(
                    "transaction is for network {:?}, not {:?}",
                    self.network, ctx.network
                ),
            ));
        }
        check_nonce(&self.nonce)?;
        let parsed = module.parse_body(&self.body).map_err(schema)?;
        let tx_type = self.tx_type.to_owned();
        let nonce = self.nonce.clone();
        let (canonical, body) = self.sign_parts(key);
        if canonical.len() > MAX_TX_BYTES {
            return Err(TxError::new(
                ErrorCode::TxTooLarge,
                format!(
                    "transaction is {} bytes; the limit is {MAX_TX_BYTES}",
                    canonical.len()
                ),
            ));
        }
        Ok(SignedTx {
            leaf_hash: leaf_hash(&canonical),
            canonical,
            signer: key.did(),
            nonce,
            tx_type,
            body,
            parsed,
        })
    }
}

/// The signed message of a transaction, from its canonical bytes: the
/// [`SIGNING_DOMAIN`] and the JCS form of the envelope without `sig`,
/// without canonicalizing a second time. Only for bytes already checked to
/// be the JCS form of an envelope with exactly the members body, network,
/// nonce, sig, signer, type, v. RFC 8785 orders them so (`sig` sorts before
/// `signer`, after `nonce`), and dropping one member in the middle of an
/// object drops exactly `,"sig":"…"` from its text; `sig` is base64url, so
/// its JSON string needs no escape. The member is found before the last
/// `,"signer":` of the text: outside strings every `"` delimits one, so the
/// pattern is always an object key, and no object comes after the
/// envelope's own `signer` (only `type`, a string, and `v`, a number).
/// `None` when the text is not so (the caller canonicalizes instead).
fn unsigned_form(canonical: &[u8], sig: &str) -> Option<Vec<u8>> {
    const SIGNER_KEY: &[u8] = b",\"signer\":";
    const SIG_KEY: &[u8] = b",\"sig\":\"";
    let end = canonical
        .windows(SIGNER_KEY.len())
        .rposition(|w| w == SIGNER_KEY)?;
    let start = end.checked_sub(SIG_KEY.len() + sig.len() + 1)?;
    let member = &canonical[start..end];
    let ok = member.starts_with(SIG_KEY)
        && &member[SIG_KEY.len()..member.len() - 1] == sig.as_bytes()
        && member.ends_with(b"\"")
        && sig
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        return None;
    }
    let mut out = Vec::with_capacity(SIGNING_DOMAIN.len() + canonical.len() - member.len());
    out.extend_from_slice(SIGNING_DOMAIN);
    out.extend_from_slice(&canonical[..start]);
    out.extend_from_slice(&canonical[end..]);
    Some(out)
}

/// The replay key of an entry of a durable log, read from its envelope
/// alone: its signature, schema and body were checked when it was
/// admitted, and the log's integrity is the store's (its Merkle tree).
/// For rebuilding a replay guard without paying a signature check per
/// entry; never for a submission.
pub fn logged_replay_key(raw: &[u8]) -> Result<[u8; 32], TxError> {
    #[derive(Deserialize)]
    struct Keyed<'a> {
        #[serde(borrow)]
        signer: std::borrow::Cow<'a, str>,
        #[serde(borrow)]
        nonce: std::borrow::Cow<'a, str>,
    }
    let keyed: Keyed<'_> =
        serde_json::from_slice(raw).map_err(|e| schema(format!("transaction envelope: {e}")))?;
    let signer = Did::parse_cached(&keyed.signer).map_err(|e| {
        TxError::new(
            ErrorCode::BadSigner,
            format!("signer is not a usable did:key: {e}"),
        )
    })?;
    Ok(replay_key(signer.as_str(), &keyed.nonce))
}

/// `SHA-256(signer || 0x00 || nonce)`: the replay guard's key.
pub fn replay_key(signer: &str, nonce: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(signer.as_bytes());
    hasher.update([0u8]);
    hasher.update(nonce.as_bytes());
    hasher.finalize().into()
}

fn canonicalize(value: &Value) -> Result<Vec<u8>, TxError> {
    serde_json_canonicalizer::to_vec(value).map_err(|e| {
        TxError::new(
            ErrorCode::NonCanonical,
            format!("transaction cannot be canonicalized: {e}"),
        )
    })
}

fn check_nonce(nonce: &str) -> Result<(), TxError> {
    let ok = !nonce.is_empty()
        && nonce.len() <= MAX_NONCE_LEN
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(schema(format!(
            "nonce must be 1 to {MAX_NONCE_LEN} characters from [A-Za-z0-9._:-]"
        )))
    }
}

fn decode_signature(sig: &str) -> Result<Signature, TxError> {
    let bytes = URL_SAFE_NO_PAD.decode(sig).map_err(|_| {
        TxError::new(
            ErrorCode::BadSignature,
            "sig must be an unpadded base64url Ed25519 signature (86 characters)",
        )
    })?;
    // Re-encoding must give back the same text: no alternative encodings.
    if URL_SAFE_NO_PAD.encode(&bytes) != sig {
        return Err(TxError::new(
            ErrorCode::NonCanonical,
            "sig is not canonical base64url",
        ));
    }
    Signature::from_slice(&bytes).map_err(|_| {
        TxError::new(
            ErrorCode::BadSignature,
            "sig must decode to exactly 64 bytes",
        )
    })
}

pub(crate) fn bad_signature() -> TxError {
    TxError::new(
        ErrorCode::BadSignature,
        "signature does not verify with the signer's key (was it signed by another key, or changed after signing?)",
    )
}

fn schema(message: impl Into<String>) -> TxError {
    TxError::new(ErrorCode::SchemaViolation, message)
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NET: &str = "test.example/log";

    fn ctx(modules: &ModuleRegistry) -> TxContext<'_> {
        TxContext {
            network: NET,
            modules,
        }
    }

    fn attest(key: &Keypair, nonce: &str) -> Vec<u8> {
        TxBuilder {
            network: NET,
            tx_type: "attest",
            nonce: nonce.into(),
            body: json!({"label": "lab.result", "subject": format!("sha256:{}", "0f".repeat(32))}),
        }
        .sign(key)
    }

    /// The signed message taken from the canonical bytes is the JCS form
    /// of the envelope without `sig`, computed the long way, also when the
    /// body holds `sig` and `signer` keys and strings that look like them.
    #[test]
    fn the_unsigned_form_is_the_canonical_envelope_without_sig() {
        let key = Keypair::from_seed(&[7; 32]);
        let bodies = [
            json!({"label": "lab.result", "subject": format!("sha256:{}", "0f".repeat(32))}),
            json!({"sig": "x", "signer": {"sig": ",\"signer\":", "signer": [1, {"a": ",\"sig\":\""}]}}),
            json!({"label": ",\"sig\":\"AAAA\",\"signer\":", "z": "\u{2028}\\\""}),
        ];
        for body in bodies {
            let raw = TxBuilder {
                network: NET,
                tx_type: "attest",
                nonce: "n-1".into(),
                body,
            }
            .sign(&key);
            let mut object: Map<String, Value> = serde_json::from_slice(&raw).unwrap();
            let sig = object.remove("sig").unwrap();
            let mut want = SIGNING_DOMAIN.to_vec();
            want.extend_from_slice(&canonicalize(&Value::Object(object)).unwrap());
            let got = unsigned_form(&raw, sig.as_str().unwrap()).expect("found");
            assert_eq!(got, want);
        }
        // Text where the member is not where it must be gives none.
        assert_eq!(unsigned_form(b"{\"signer\":1}", "AA"), None);
        assert_eq!(unsigned_form(b",\"sig\":\"AB\",\"signer\":", "AA"), None);
        assert_eq!(unsigned_form(b",\"sig\":\"A\"\",\"signer\":", "A\""), None);
    }

    fn code(raw: &[u8]) -> ErrorCode {
        let modules = ModuleRegistry::with_builtins();
        SignedTx::parse(raw, &ctx(&modules)).unwrap_err().code
    }

    /// The key read from a logged entry's envelope is the key of the
    /// verified transaction; an entry without a usable signer or nonce
    /// has none.
    #[test]
    fn a_logged_entrys_replay_key_is_its_transactions() {
        let modules = ModuleRegistry::with_builtins();
        for nonce in ["n-1", "0123456789abcdef"] {
            let raw = attest(&Keypair::generate(), nonce);
            let tx = SignedTx::parse(&raw, &ctx(&modules)).unwrap();
            assert_eq!(logged_replay_key(&raw).unwrap(), tx.replay_key());
        }
        assert!(logged_replay_key(b"{\"nonce\":\"n\"}").is_err());
        assert!(logged_replay_key(b"{\"nonce\":\"n\",\"signer\":\"did:key:nope\"}").is_err());
        assert!(logged_replay_key(b"not json").is_err());
    }

    fn mutate(raw: &[u8], f: impl FnOnce(&mut Map<String, Value>)) -> Vec<u8> {
        let mut value: Map<String, Value> = serde_json::from_slice(raw).unwrap();
        f(&mut value);
        serde_json_canonicalizer::to_vec(&value).unwrap()
    }

    #[test]
    fn a_signed_transaction_parses() {
        let modules = ModuleRegistry::with_builtins();
        let key = Keypair::generate();
        let raw = attest(&key, "n-1");
        let tx = SignedTx::parse(&raw, &ctx(&modules)).unwrap();
        assert_eq!(tx.signer(), &key.did());
        assert_eq!(tx.canonical_bytes(), raw.as_slice());
        assert_eq!(tx.leaf_hash(), leaf_hash(&raw));
    }

    #[test]
    fn refuses_each_kind_of_bad_transaction() {
        let key = Keypair::generate();
        let raw = attest(&key, "n-1");
        assert_eq!(code(b"{not json"), ErrorCode::MalformedJson);
        assert_eq!(code(b"[]"), ErrorCode::SchemaViolation);
        let spaced = String::from_utf8(raw.clone())
            .unwrap()
            .replacen(':', ": ", 1);
        assert_eq!(code(spaced.as_bytes()), ErrorCode::NonCanonical);
        let duplicated = String::from_utf8(raw.clone()).unwrap().replacen(
            "{\"body\"",
            "{\"body\":1,\"body\"",
            1,
        );
        assert_eq!(code(duplicated.as_bytes()), ErrorCode::NonCanonical);
        assert_eq!(
            code(&mutate(&raw, |m| {
                m.insert("v".into(), json!(2));
            })),
            ErrorCode::UnsupportedVersion
        );
        assert_eq!(
            code(&mutate(&raw, |m| {
                m.insert("type".into(), json!("mint"));
            })),
            ErrorCode::UnknownType
        );
        assert_eq!(
            code(&mutate(&raw, |m| {
                m.insert("network".into(), json!("other"));
            })),
            ErrorCode::WrongNetwork
        );
        assert_eq!(
            code(&mutate(&raw, |m| {
                m.insert("signer".into(), json!("did:web:x"));
            })),
            ErrorCode::BadSigner
        );
        assert_eq!(
            code(&mutate(&raw, |m| {
                m.insert("extra".into(), json!(1));
            })),
            ErrorCode::SchemaViolation
        );
        assert_eq!(
            code(&mutate(&raw, |m| {
                m.insert("nonce".into(), json!(""));
            })),
            ErrorCode::SchemaViolation
        );
        assert_eq!(
            code(&mutate(&raw, |m| {
                m.insert("body".into(), json!({"label": "x"}));
            })),
            ErrorCode::SchemaViolation
        );
        // Signed by another key than the one named.
        let other = Keypair::generate();
        let by_other = mutate(&attest(&other, "n-1"), |m| {
            m.insert("signer".into(), json!(key.did().as_str()));
        });
        assert_eq!(code(&by_other), ErrorCode::BadSignature);
        // Changed after signing.
        assert_eq!(
            code(&mutate(&raw, |m| {
                m.insert("nonce".into(), json!("n-2"));
            })),
            ErrorCode::BadSignature
        );
        assert_eq!(
            code(&mutate(&raw, |m| {
                m.insert("sig".into(), json!("AAAA"));
            })),
            ErrorCode::BadSignature
        );
        let big = TxBuilder {
            network: NET,
            tx_type: "attest",
            nonce: "n".into(),
            body: json!({"label": "x", "subject": "y", "pad": "z".repeat(MAX_TX_BYTES)}),
        }
        .sign(&key);
        assert_eq!(code(&big), ErrorCode::TxTooLarge);
    }

    #[test]
    fn batch_names_the_first_bad_transaction() {
        let modules = ModuleRegistry::with_builtins();
        let key = Keypair::generate();
        let good: Vec<Vec<u8>> = (0..5).map(|i| attest(&key, &format!("n{i}"))).collect();
        let mut raws: Vec<&[u8]> = good.iter().map(|r| r.as_slice()).collect();
        assert_eq!(
            SignedTx::parse_many(&raws, &ctx(&modules)).unwrap().len(),
            5
        );
        let forged = mutate(&good[3], |m| {
            m.insert("nonce".into(), json!("zz"));
        });
        raws[3] = &forged;
        let (i, e) = SignedTx::parse_many(&raws, &ctx(&modules)).unwrap_err();
        assert_eq!((i, e.code), (3, ErrorCode::BadSignature));
    }

    proptest::proptest! {
        /// Any change to any byte of a signed transaction is refused.
        #[test]
        fn any_byte_flip_is_refused(pos in 0usize..400, bit in 0u8..8) {
            let modules = ModuleRegistry::with_builtins();
            let key = Keypair::from_seed(&[7u8; 32]);
            let mut raw = attest(&key, "nonce-1");
            let pos = pos % raw.len();
            raw[pos] ^= 1 << bit;
            proptest::prop_assert!(SignedTx::parse(&raw, &ctx(&modules)).is_err());
        }

        /// The spliced signature gives exactly RFC 8785's form, whatever the
        /// body holds (nested `signer` keys, quotes, escapes), and the node's
        /// unparsed path agrees with parsing.
        #[test]
        fn signing_yields_the_canonical_form(
            label in "[a-z0-9]{1,8}",
            text in proptest::string::string_regex(r#"[ -~\\"]{0,40}|,\"signer\":\"x"#).unwrap(),
            nonce in "[a-z0-9]{1,12}",
        ) {
            struct AnyBody;
            impl crate::module::TxModule for AnyBody {
                fn tx_type(&self) -> &'static str { "any" }
                fn check_body(&self, _: &Value) -> Result<(), String> { Ok(()) }
            }
            let mut modules = ModuleRegistry::with_builtins();
            modules.register(std::sync::Arc::new(AnyBody));
            let key = Keypair::from_seed(&[9u8; 32]);
            let body = json!({"signer": text, "nested": {"signer": label, "sig": text}, "z": [text]});
            let builder = || TxBuilder { network: NET, tx_type: "any", nonce: nonce.clone(), body: body.clone() };
            let raw = builder().sign(&key);
            let value: Value = serde_json::from_slice(&raw).unwrap();
            proptest::prop_assert_eq!(&serde_json_canonicalizer::to_vec(&value).unwrap(), &raw);
            let parsed = SignedTx::parse(&raw, &ctx(&modules)).unwrap();
            let direct = builder().sign_checked(&key, &ctx(&modules)).unwrap();
            proptest::prop_assert_eq!(parsed.canonical_bytes(), direct.canonical_bytes());
            proptest::prop_assert_eq!(parsed.leaf_hash(), direct.leaf_hash());
            proptest::prop_assert_eq!(parsed.body(), direct.body());
            proptest::prop_assert_eq!(parsed.signer(), direct.signer());
        }

        #[test]
        fn arbitrary_bytes_never_panic(raw in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let modules = ModuleRegistry::with_builtins();
            let _ = SignedTx::parse(&raw, &ctx(&modules));
        }
    }
}
