//! The holder's side: keep an issued SD-JWT, see everything in it, and
//! present only chosen claims, with a key binding JWT for one verifier.

use serde_json::{Map, Value};

use super::disclosure::Disclosure;
use super::key_binding;
use super::path::ClaimPath;
use super::serialization::Parts;
use super::verifier::{open, IssuerKeyResolver};
use super::SdJwtError;
use crate::jws::{SigningKey, VerifyingKey};

/// An issued SD-JWT VC as its holder keeps it: issuer signature checked,
/// every disclosure present and placed.
#[derive(Clone, Debug)]
pub struct SdJwt {
    parts: Parts,
    disclosures: Vec<Disclosure>,
    paths: Vec<ClaimPath>,
    claims: Map<String, Value>,
    issuer: String,
    vct: String,
    holder_key: Option<VerifyingKey>,
}

impl SdJwt {
    /// Reads an issued SD-JWT (compact or flattened JSON, without KB-JWT)
    /// and checks the issuer's signature and the disclosures. Validity
    /// times are not checked here: a holder keeps expired credentials too.
    pub fn parse(issued: &str, resolver: &impl IssuerKeyResolver) -> Result<Self, SdJwtError> {
        let parts = Parts::parse(issued)?;
        if parts.kb_jwt.is_some() {
            return Err(SdJwtError::Malformed(
                "an issued SD-JWT carries no key binding token",
            ));
        }
        let opened = open(&parts, resolver)?;
        Ok(SdJwt {
            parts,
            disclosures: opened.disclosures,
            paths: opened.paths,
            claims: opened.claims,
            issuer: opened.issuer,
            vct: opened.vct,
            holder_key: opened.holder_key,
        })
    }

    /// Every claim, all disclosures applied.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// The paths of the selectively disclosable claims, in issuance order.
    pub fn disclosable_paths(&self) -> &[ClaimPath] {
        &self.paths
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn vct(&self) -> &str {
        &self.vct
    }

    pub fn holder_key(&self) -> Option<&VerifyingKey> {
        self.holder_key.as_ref()
    }

    /// The issued form, every disclosure included.
    pub fn to_issued_string(&self) -> String {
        self.parts.to_compact()
    }

    /// The SD-JWT with the disclosures needed to show the claims at
    /// `selection`: a selected claim, everything beneath it, and the
    /// disclosable claims that contain it. Nothing else is revealed.
    pub fn present(&self, selection: &[ClaimPath]) -> String {
        self.selected_parts(selection).to_compact()
    }

    /// Like [`SdJwt::present`], followed by a KB-JWT signed with the
    /// holder key over `audience`, `nonce`, `issued_at` and the hash of the
    /// presented SD-JWT.
    pub fn present_with_key_binding(
        &self,
        selection: &[ClaimPath],
        audience: &str,
        nonce: &str,
        issued_at: i64,
        holder_key: &SigningKey,
    ) -> Result<String, SdJwtError> {
        let bound = self
            .holder_key
            .as_ref()
            .ok_or(SdJwtError::MissingHolderKey)?;
        if &holder_key.verifying_key() != bound {
            return Err(SdJwtError::KbHolderKeyMismatch);
        }
        let mut parts = self.selected_parts(selection);
        parts.kb_jwt = Some(key_binding::create(
            &parts.sd_hash_input(),
            audience,
            nonce,
            issued_at,
            holder_key,
        ));
        Ok(parts.to_compact())
    }

    fn selected_parts(&self, selection: &[ClaimPath]) -> Parts {
        let disclosures = self
            .disclosures
            .iter()
            .zip(&self.paths)
            .filter(|(_, path)| selection.iter().any(|s| s.on_same_branch(path)))
            .map(|(d, _)| d.encoded.clone())
            .collect();
        Parts {
            issuer_jwt: self.parts.issuer_jwt.clone(),
            disclosures,
            kb_jwt: None,
        }
    }
}
