//! `did:key` identifiers for Ed25519 keys, per the W3C CCG did:key method:
//! `did:key:` + multibase base58btc (`z`) of the multicodec `ed25519-pub`
//! prefix (varint 0xed, i.e. bytes `0xed 0x01`) followed by the 32-byte key.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{OnceLock, RwLock};

use crate::keys::PublicKey;

pub(crate) const PREFIX: &str = "did:key:";
const MULTIBASE_BASE58BTC: char = 'z';
const MULTICODEC_ED25519_PUB: [u8; 2] = [0xed, 0x01];
/// Longest accepted DID text; an Ed25519 did:key is 56 characters.
const MAX_DID_LEN: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DidError {
    #[error("not a did:key identifier (it must start with \"did:key:z\")")]
    NotDidKey,
    #[error("the did:key is too long")]
    TooLong,
    #[error("the did:key is not valid base58btc")]
    BadBase58,
    #[error("the did:key does not hold an Ed25519 public key (multicodec 0xed01)")]
    UnsupportedKeyType,
    #[error("the did:key holds a key of the wrong length")]
    BadKeyLength,
    #[error("the did:key holds a point that is not on the Ed25519 curve")]
    BadPoint,
    #[error("the did:key is not in its canonical encoding")]
    NonCanonical,
    #[error("the did:key holds a small-order point, which no key pair has")]
    SmallOrder,
    #[error(
        "the did:key holds a {} key (multicodec {codec:#x}); only Ed25519 keys, and X25519 keys for key agreement, are supported",
        crate::multicodec::key_codec_name(*codec)
    )]
    UnsupportedKeyCodec { codec: u64 },
}

impl DidError {
    /// A stable code naming the failure, for APIs and logs.
    pub fn code(&self) -> &'static str {
        match self {
            DidError::NotDidKey => "not-did-key",
            DidError::TooLong => "did-too-long",
            DidError::BadBase58 => "did-key-bad-base58",
            DidError::UnsupportedKeyType | DidError::UnsupportedKeyCodec { .. } => {
                "unsupported-key-type"
            }
            DidError::BadKeyLength => "did-key-bad-length",
            DidError::BadPoint => "did-key-bad-point",
            DidError::NonCanonical => "did-key-non-canonical",
            DidError::SmallOrder => "did-key-small-order",
        }
    }
}

/// A parsed `did:key` naming an Ed25519 public key.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Did {
    text: String,
    key: PublicKey,
}

impl Did {
    pub fn from_public_key(key: PublicKey) -> Self {
        let mut bytes = Vec::with_capacity(34);
        bytes.extend_from_slice(&MULTICODEC_ED25519_PUB);
        bytes.extend_from_slice(&key.to_bytes());
        let text = format!(
            "{PREFIX}{MULTIBASE_BASE58BTC}{}",
            bs58::encode(bytes).into_string()
        );
        Did { text, key }
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.key
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The DID URL of the key's verification method (`did:key:z…#z…`).
    pub fn verification_method(&self) -> String {
        let fragment = &self.text[PREFIX.len()..];
        format!("{}#{}", self.text, fragment)
    }
}

impl Did {
    /// Parses like [`FromStr`], remembering recent results: decoding a key
    /// means decompressing a curve point, which costs about as much as
    /// hashing a kilobyte, and the same signers come back again and again.
    pub fn parse_cached(s: &str) -> Result<Did, DidError> {
        static CACHE: OnceLock<RwLock<HashMap<String, Did>>> = OnceLock::new();
        const CAPACITY: usize = 65_536;
        let cache = CACHE.get_or_init(Default::default);
        if let Some(did) = cache.read().ok().and_then(|c| c.get(s).cloned()) {
            return Ok(did);
        }
        let did: Did = s.parse()?;
        if let Ok(mut c) = cache.write() {
            // Bounded: when full, start over rather than track recency.
            if c.len() >= CAPACITY {
                c.clear();
            }
            c.insert(s.to_string(), did.clone());
        }
        Ok(did)
    }
}

impl FromStr for Did {
    type Err = DidError;

    fn from_str(s: &str) -> Result<Self, DidError> {
        if s.len() > MAX_DID_LEN {
            return Err(DidError::TooLong);
        }
        let encoded = s
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.strip_prefix(MULTIBASE_BASE58BTC))
            .ok_or(DidError::NotDidKey)?;
        let bytes = bs58::decode(encoded)
            .into_vec()
            .map_err(|_| DidError::BadBase58)?;
        let key_bytes = bytes
            .strip_prefix(&MULTICODEC_ED25519_PUB)
            .ok_or(DidError::UnsupportedKeyType)?;
        let key_bytes: &[u8; 32] = key_bytes.try_into().map_err(|_| DidError::BadKeyLength)?;
        let key = PublicKey::from_bytes(key_bytes).map_err(|_| DidError::BadPoint)?;
        // A point's encoding is canonical when it is the one compressing
        // the point gives (y below p, no sign bit on x = 0); small-order
        // points (the identity and the torsion points) are no one's key,
        // and every signature "verifies" under some of them.
        if key.as_dalek().is_weak() {
            return Err(DidError::SmallOrder);
        }
        if key.as_dalek().to_edwards().compress().to_bytes() != *key_bytes {
            return Err(DidError::NonCanonical);
        }
        let did = Did::from_public_key(key);
        // base58 has one encoding per byte string, but leading-zero digits
        // could still sneak in; a DID must compare equal as text.
        if did.text != s {
            return Err(DidError::NonCanonical);
        }
        Ok(did)
    }
}

impl fmt::Display for Did {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Did {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Did({})", self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Keypair;

    const VECTORS: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/vectors/did-key/ed25519-x25519.json"
    );

    fn hex32(s: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
            out[i] = u8::from_str_radix(std::str::from_utf8(chunk).unwrap(), 16).unwrap();
        }
        out
    }

    fn base64url(s: &str) -> Vec<u8> {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .unwrap()
    }

    /// The W3C CCG did:key vectors: seed -> key -> DID, and DID -> key.
    #[test]
    fn w3c_ccg_ed25519_vectors() {
        let text = std::fs::read_to_string(VECTORS).expect("shared vectors present");
        let vectors: serde_json::Value = serde_json::from_str(&text).unwrap();
        let vectors = vectors.as_object().unwrap();
        assert!(vectors.len() >= 5);
        for (did_text, vector) in vectors {
            let seed = hex32(vector["seed"].as_str().unwrap());
            let key = Keypair::from_seed(&seed);
            assert_eq!(key.did().as_str(), did_text, "seed -> did:key");

            let parsed: Did = did_text.parse().unwrap();
            // Most vectors give the key in base58, one as a JWK (`x`).
            let pair = &vector["verificationKeyPair"];
            let expected_pk = match pair["publicKeyBase58"].as_str() {
                Some(b58) => bs58::decode(b58).into_vec().unwrap(),
                None => base64url(pair["publicKeyJwk"]["x"].as_str().unwrap()),
            };
            assert_eq!(parsed.public_key().to_bytes().to_vec(), expected_pk);
            assert_eq!(
                parsed.verification_method(),
                vector["didDocument"]["verificationMethod"][0]["id"]
                    .as_str()
                    .unwrap()
            );
        }
    }

    #[test]
    fn refuses_other_methods_and_key_types() {
        assert_eq!(
            "did:web:example.com".parse::<Did>(),
            Err(DidError::NotDidKey)
        );
        // An X25519 did:key from the same vector set.
        let x25519 = "did:key:z6LShs9GGnqk85isEBzzshkuVWrVKsRp24GnDuHk8QWkARMW";
        assert_eq!(x25519.parse::<Did>(), Err(DidError::UnsupportedKeyType));
        assert_eq!("did:key:z0OIl".parse::<Did>(), Err(DidError::BadBase58));
        assert_eq!(
            "did:key:z".parse::<Did>(),
            Err(DidError::UnsupportedKeyType)
        );
        let long = format!("did:key:z{}", "1".repeat(200));
        assert_eq!(long.parse::<Did>(), Err(DidError::TooLong));
    }

    #[test]
    fn every_refusal_has_a_stable_code() {
        let encode = |bytes: &[u8]| format!("did:key:z{}", bs58::encode(bytes).into_string());
        // A y coordinate with no point on the curve.
        let off_curve = (0u8..=255)
            .map(|b| [b; 32])
            .find(|bytes| PublicKey::from_bytes(bytes).is_err())
            .expect("some byte pattern is off the curve");
        let mut bad_point = MULTICODEC_ED25519_PUB.to_vec();
        bad_point.extend_from_slice(&off_curve);
        let mut short = MULTICODEC_ED25519_PUB.to_vec();
        short.extend_from_slice(&[1; 31]);
        let cases = [
            ("did:web:example.com".to_string(), "not-did-key"),
            (format!("did:key:z{}", "1".repeat(200)), "did-too-long"),
            ("did:key:z0OIl".to_string(), "did-key-bad-base58"),
            ("did:key:z".to_string(), "unsupported-key-type"),
            (encode(&short), "did-key-bad-length"),
            (encode(&bad_point), "did-key-bad-point"),
        ];
        for (text, code) in cases {
            let err = text.parse::<Did>().unwrap_err();
            assert_eq!(err.code(), code, "{text}");
            assert!(!err.to_string().is_empty());
        }
        let codec = DidError::UnsupportedKeyCodec { codec: 0xe7 };
        assert_eq!(codec.code(), "unsupported-key-type");
        assert!(codec.to_string().contains("secp256k1"));
    }

    /// The encoding of a y coordinate `p + k` (the same field element as
    /// `k`), with the sign bit of x as given.
    fn y_above_p(k: u8, x_sign: bool) -> [u8; 32] {
        // p = 2^255 - 19, little-endian: ed ff .. ff 7f.
        let mut bytes = [0xff; 32];
        bytes[0] = 0xed + k;
        bytes[31] = 0x7f | if x_sign { 0x80 } else { 0 };
        bytes
    }

    fn did_of(bytes: &[u8; 32]) -> String {
        let mut encoded = MULTICODEC_ED25519_PUB.to_vec();
        encoded.extend_from_slice(bytes);
        format!("did:key:z{}", bs58::encode(encoded).into_string())
    }

    #[test]
    fn small_order_points_are_refused() {
        // The eight points of order dividing 8 (the identity among them),
        // from the curve library's table.
        for point in curve25519_dalek::constants::EIGHT_TORSION {
            let text = did_of(&point.compress().to_bytes());
            let err = text.parse::<Did>().unwrap_err();
            assert_eq!(err, DidError::SmallOrder, "{text}");
            assert_eq!(err.code(), "did-key-small-order");
            assert!(Did::parse_cached(&text).is_err());
        }
    }

    #[test]
    fn non_canonical_encodings_are_refused() {
        let mut refused = 0;
        for k in 0..19u8 {
            for x_sign in [false, true] {
                let bytes = y_above_p(k, x_sign);
                let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&bytes) else {
                    continue;
                };
                let text = did_of(&bytes);
                let expected = if key.is_weak() {
                    DidError::SmallOrder
                } else {
                    DidError::NonCanonical
                };
                assert_eq!(text.parse::<Did>().unwrap_err(), expected, "{text}");
                refused += usize::from(expected == DidError::NonCanonical);
            }
        }
        assert!(refused > 0, "some y >= p is a point of large order");
        // x = 0 with the sign bit set: -0, a second encoding of the
        // identity and of the point of order 2.
        let mut minus_zero = [0u8; 32];
        minus_zero[0] = 1;
        minus_zero[31] = 0x80;
        assert!(did_of(&minus_zero).parse::<Did>().is_err());
        // Real keys are canonical and of large order.
        for seed in 0..=255u8 {
            let did = Keypair::from_seed(&[seed; 32]).did();
            assert_eq!(did.as_str().parse::<Did>().unwrap(), did);
        }
        assert_eq!(DidError::NonCanonical.code(), "did-key-non-canonical");
    }

    #[test]
    fn cached_parsing_agrees_with_parsing() {
        let did = Keypair::generate().did();
        assert_eq!(Did::parse_cached(did.as_str()).unwrap(), did);
        assert_eq!(Did::parse_cached(did.as_str()).unwrap(), did);
        assert!(Did::parse_cached("did:key:zBad").is_err());
        assert!(Did::parse_cached("did:key:zBad").is_err());
    }

    #[test]
    fn leading_zero_digits_are_not_canonical() {
        let did = Keypair::generate().did();
        let padded = did.as_str().replacen("did:key:z", "did:key:z1", 1);
        assert!(padded.parse::<Did>().is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_key_round_trips(seed in proptest::array::uniform32(proptest::num::u8::ANY)) {
            let did = Keypair::from_seed(&seed).did();
            let parsed: Did = did.as_str().parse().unwrap();
            proptest::prop_assert_eq!(parsed, did);
        }

        #[test]
        fn arbitrary_text_never_panics(text in "did:key:z[1-9A-HJ-NP-Za-km-z]{0,80}") {
            let _ = text.parse::<Did>();
        }
    }
}
