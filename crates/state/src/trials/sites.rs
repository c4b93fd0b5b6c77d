//! Trial sites. Type: `site.activate`.
//!
//! The sponsor activates a site for its study with the site's trial-site
//! accreditation (an SD-JWT VC of type
//! [`VCT_TRIAL_SITE_ACCREDITATION`], `sub` the site's DID, `study_id` the
//! study's id), presented by the site: its key-binding JWT, signed by the
//! site's key (a did:key site's own, or a did:web organization's admin
//! key), is addressed to the network and names the study as its nonce, so
//! both the sponsor and the site agreed. The accreditor must be on the
//! trust list for that type. The accreditation's validity window and its
//! status lists (revocation, suspension) are checked again at every
//! decision that needs the site ([`LedgerState::site_standing`]): a
//! revoked or suspended accreditation stops consent and milestones at
//! once.

use hygeia_credentials::credential_types::VCT_TRIAL_SITE_ACCREDITATION;
use hygeia_ledger::TxError;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::super::credentials::{issuer_header_key, status_refs, LicenceStanding, StatusRef};
use super::super::programs::CLOCK_LAG_SECS;
use super::super::registry::{example_did, Cx, Registry, TxBody};
use super::super::txs::{check_did, check_hex32};
use super::super::{Effect, LedgerState};
use super::study::require_sponsor;
use super::{conflict, forbidden, invalid};

pub const SITE_ACTIVATE: &str = "site.activate";

/// Most sites one study activates.
pub const MAX_SITES: usize = 256;

pub(crate) fn register(r: &mut Registry) {
    r.add::<SiteActivate>();
}

/// An active site of a study, as its accreditation was verified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteEntry {
    /// The accreditor (the credential's issuer).
    pub issuer: String,
    pub not_before: Option<i64>,
    pub not_after: Option<i64>,
    pub status: Vec<StatusRef>,
    /// Leaf index of the `site.activate`.
    pub activated_at: u64,
}

/// The sponsor activates `site` for `study` with the site's accreditation
/// presentation (compact SD-JWT with key binding).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SiteActivate {
    pub study: String,
    pub site: String,
    pub presentation: String,
}

impl LedgerState {
    /// Whether `site`'s accreditation counts by the ledger's clock: its
    /// accreditor trusted, within its validity window (a credential issued
    /// up to [`CLOCK_LAG_SECS`] after the last tick is valid), neither
    /// revoked nor suspended by its status lists.
    pub fn site_standing(&self, site: &SiteEntry) -> LicenceStanding {
        let now = self.escrows.clock;
        if self
            .credentials
            .trusted(&site.issuer, VCT_TRIAL_SITE_ACCREDITATION)
            .is_none()
        {
            return LicenceStanding::UntrustedIssuer;
        }
        let lag = i64::try_from(CLOCK_LAG_SECS).unwrap_or(0);
        if site
            .not_before
            .is_some_and(|nbf| now.saturating_add(lag) < nbf)
        {
            return LicenceStanding::NotYetValid;
        }
        if site.not_after.is_some_and(|exp| now >= exp) {
            return LicenceStanding::Expired;
        }
        self.credentials.status_standing(&site.issuer, &site.status)
    }

    /// The site's standing as a refusal: `trial.site_<standing>`.
    pub(crate) fn require_site_standing(&self, site: &SiteEntry) -> Result<(), TxError> {
        let code = match self.site_standing(site) {
            LicenceStanding::Valid => return Ok(()),
            LicenceStanding::UntrustedIssuer => "trial.site_untrusted",
            LicenceStanding::NotYetValid => "trial.site_not_yet_valid",
            LicenceStanding::Expired => "trial.site_expired",
            LicenceStanding::Revoked => "trial.site_revoked",
            LicenceStanding::Suspended => "trial.site_suspended",
            LicenceStanding::StatusUnknown => "trial.site_status_unknown",
        };
        Err(forbidden(
            code,
            "the site's trial-site accreditation does not count now",
        ))
    }
}

/// The did:key that signs for `site`: its own, or the organization's admin.
fn site_key(state: &LedgerState, site: &str) -> Option<String> {
    if site.starts_with("did:key:") {
        Some(site.to_owned())
    } else {
        state.participants.org(site).map(|o| o.admin.clone())
    }
}

impl TxBody for SiteActivate {
    const TYPE: &'static str = SITE_ACTIVATE;

    fn example() -> Self {
        SiteActivate {
            study: "cd".repeat(32),
            site: example_did(6),
            presentation: "eyJhbGciOiJFZERTQSJ9.e30.c2ln~".into(),
        }
    }

    fn check(&self) -> Result<(), String> {
        check_hex32("study", &self.study)?;
        check_did("site", &self.site)?;
        if self.presentation.is_empty() || self.presentation.contains(char::is_whitespace) {
            return Err("site.activate body: presentation must be a compact SD-JWT".into());
        }
        Ok(())
    }

    fn apply(self, state: &mut LedgerState, cx: &mut Cx<'_>) -> Result<Effect, TxError> {
        use hygeia_credentials::credential_types::Credential;
        use hygeia_credentials::jws::VerifyingKey;
        use hygeia_credentials::sd_jwt::{verify_presentation, VerifyOptions};
        let study = state.trials.require_study(&self.study)?;
        require_sponsor(state, study, &cx.signer)?;
        if study.state.is_final() {
            return Err(conflict(
                "trial.study_ended",
                format!("the study is {}", study.state.code()),
            ));
        }
        if study.sites.contains_key(&self.site) {
            return Err(conflict(
                "trial.site_exists",
                format!("{} is already a site of the study", self.site),
            ));
        }
        if study.sites.len() >= MAX_SITES {
            return Err(conflict(
                "trial.too_many_sites",
                format!("a study has at most {MAX_SITES} sites"),
            ));
        }
        if self.site == study.sponsor || self.site == study.committee {
            return Err(invalid(
                "trial.site_is_party",
                "a site is neither the sponsor nor the committee",
            ));
        }
        let participants = &state.participants;
        let resolver = |issuer: &str, header: &hygeia_credentials::jws::Header| {
            issuer_header_key(participants, issuer, header)
        };
        let audience = state.network.id().unwrap_or_default().to_owned();
        let mut options = VerifyOptions::new(0).require_key_binding(&audience, &self.study);
        // Validity is checked at each decision, by the ledger's clock, so
        // replay gives the same answer whenever it runs.
        options.clock_skew_secs = i64::MAX;
        options.kb_max_age_secs = i64::MAX;
        let verified =
            verify_presentation(&self.presentation, &resolver, &options).map_err(|e| {
                invalid(
                    "trial.site_invalid_accreditation",
                    format!("{}: {}", e.code(), e.reason()),
                )
            })?;
        if verified.vct() != VCT_TRIAL_SITE_ACCREDITATION {
            return Err(invalid(
                "trial.site_wrong_type",
                format!(
                    "a site accreditation has vct {VCT_TRIAL_SITE_ACCREDITATION}, not {}",
                    verified.vct()
                ),
            ));
        }
        if state
            .credentials
            .trusted(verified.issuer(), VCT_TRIAL_SITE_ACCREDITATION)
            .is_none()
        {
            return Err(forbidden(
                "trial.site_untrusted",
                format!(
                    "{} is not on the trust list for trial-site accreditations",
                    verified.issuer()
                ),
            ));
        }
        let Ok(Credential::TrialSiteAccreditation(accreditation)) =
            Credential::from_verified(&verified)
        else {
            return Err(invalid(
                "trial.site_invalid_accreditation",
                "the claims are not a trial-site accreditation",
            ));
        };
        if accreditation.site != self.site {
            return Err(forbidden(
                "trial.site_not_subject",
                "the accreditation is about another site",
            ));
        }
        if accreditation.study_id != self.study {
            return Err(forbidden(
                "trial.site_wrong_study",
                "the accreditation is for another study",
            ));
        }
        let bound = site_key(state, &self.site)
            .and_then(|k| hygeia_identity::Did::parse_cached(&k).ok())
            .is_some_and(|did| {
                verified.holder_key() == Some(&VerifyingKey::from(*did.public_key()))
            });
        if !bound {
            return Err(forbidden(
                "trial.site_not_holder",
                "the accreditation is bound (cnf) to another key than the site's",
            ));
        }
        let status = status_refs(&verified, "trial.site_bad_status", true)?;
        let claims = verified.claims();
        let time = |name: &str| claims.get(name).and_then(|v| v.as_i64());
        let entry = SiteEntry {
            issuer: verified.issuer().to_owned(),
            not_before: time("nbf").or(time("iat")),
            not_after: time("exp"),
            status,
            activated_at: cx.index,
        };
        state.identities.note_known(&entry.issuer);
        state.credentials.reference_status(&entry.status);
        let mut study = study.clone();
        study.sites.insert(self.site.clone(), entry);
        state.trials.put_study(self.study, study);
        Ok(Effect::None)
    }
}
