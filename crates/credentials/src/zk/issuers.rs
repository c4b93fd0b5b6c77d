//! Which issuers a verifier trusts, and with which keys.
//!
//! Trust is the verifier's decision, not the credential's: a credential
//! names its issuer, and only a key the verifier already holds for that name
//! can make its signature count (a `did:key` issuer is not trusted just
//! because its key can be read off its name).

use std::collections::HashMap;

use hygeia_identity::PublicKey;

/// Looks up the key a verifier trusts for an issuer identifier.
pub trait IssuerKeys {
    /// The trusted key of `issuer`, or `None` if the issuer is not trusted.
    fn issuer_key(&self, issuer: &str) -> Option<PublicKey>;
}

impl<F> IssuerKeys for F
where
    F: Fn(&str) -> Option<PublicKey>,
{
    fn issuer_key(&self, issuer: &str) -> Option<PublicKey> {
        self(issuer)
    }
}

/// A fixed list of trusted issuers and their keys.
#[derive(Debug, Clone, Default)]
pub struct TrustedIssuers {
    keys: HashMap<String, PublicKey>,
}

impl TrustedIssuers {
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts `key` for credentials naming `issuer` (replacing any earlier key).
    pub fn trust(&mut self, issuer: impl Into<String>, key: PublicKey) -> &mut Self {
        self.keys.insert(issuer.into(), key);
        self
    }

    pub fn with(mut self, issuer: impl Into<String>, key: PublicKey) -> Self {
        self.trust(issuer, key);
        self
    }
}

impl IssuerKeys for TrustedIssuers {
    fn issuer_key(&self, issuer: &str) -> Option<PublicKey> {
        self.keys.get(issuer).copied()
    }
}
