//! RFC 9530 `Content-Digest` with `sha-256`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sfv::{BareItem, Dictionary, ListEntry, Parser};
use sha2::{Digest, Sha256};

use crate::error::AuthError;

/// The `Content-Digest` algorithm key this scheme uses (RFC 9530 section 5).
const SHA_256: &str = "sha-256";

/// The `Content-Digest` header value for a body with this SHA-256:
/// `sha-256=:<base64>:`.
pub fn content_digest_header(sha256: &[u8; 32]) -> String {
    format!("{SHA_256}=:{}:", STANDARD.encode(sha256))
}

/// SHA-256 of a body read in pieces, for a caller that streams it.
#[derive(Clone, Default)]
pub struct BodyDigest(Sha256);

impl BodyDigest {
    pub fn new() -> Self {
        BodyDigest(Sha256::new())
    }

    pub fn update(&mut self, chunk: &[u8]) {
        self.0.update(chunk);
    }

    pub fn finish(self) -> [u8; 32] {
        self.0.finalize().into()
    }
}

impl std::fmt::Debug for BodyDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyDigest").finish_non_exhaustive()
    }
}

/// SHA-256 of the empty body.
pub(crate) fn empty_body_sha256() -> [u8; 32] {
    Sha256::digest([]).into()
}

/// The `sha-256` member of a `Content-Digest` field value. Other
/// algorithms may be listed too; they are ignored.
pub(crate) fn parse_content_digest(value: &str) -> Result<[u8; 32], AuthError> {
    let fix = "send Content-Digest: sha-256=:<base64 of the body's SHA-256>: (RFC 9530)";
    let dictionary: Dictionary = Parser::new(value)
        .parse()
        .map_err(|e| AuthError::digest(format!("Content-Digest does not parse ({e}); {fix}")))?;
    let Some(entry) = dictionary.get(SHA_256) else {
        return Err(AuthError::digest(format!(
            "Content-Digest has no sha-256 digest; {fix}"
        )));
    };
    match entry {
        ListEntry::Item(item) => match &item.bare_item {
            BareItem::ByteSequence(bytes) => <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
                AuthError::digest(format!("the sha-256 digest is not 32 bytes; {fix}"))
            }),
            _ => Err(AuthError::digest(format!(
                "the sha-256 digest is not a byte sequence; {fix}"
            ))),
        },
        ListEntry::InnerList(_) => Err(AuthError::digest(format!(
            "the sha-256 digest is not a byte sequence; {fix}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9530 Appendix B.1: `{"hello": "world"}` with `sha-256`.
    #[test]
    fn rfc9530_example() {
        let mut digest = BodyDigest::new();
        digest.update(b"{\"hello\": ");
        digest.update(b"\"world\"}");
        let sha = digest.finish();
        let header = content_digest_header(&sha);
        assert_eq!(
            header,
            "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
        );
        assert_eq!(parse_content_digest(&header), Ok(sha));
    }

    #[test]
    fn other_algorithms_are_ignored_and_sha256_is_required() {
        let sha = empty_body_sha256();
        let both = format!("sha-512=:AAAA:, {}", content_digest_header(&sha));
        assert_eq!(parse_content_digest(&both), Ok(sha));
        for bad in [
            "sha-512=:AAAA:",
            "sha-256=:AAAA:",
            "sha-256=abc",
            "sha-256=(:AAAA:)",
            "not a dictionary ((",
            "",
        ] {
            let error = parse_content_digest(bad).unwrap_err();
            assert_eq!(error.code(), "digest_mismatch", "{bad}");
        }
    }
}
