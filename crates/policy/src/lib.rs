//! Hygeia's consent and governance decision engine, on Cedar.
//!
//! - [`purpose`]: the HL7 v3 purpose-of-use codes grants and requests carry.
//! - [`grant`]: consent grants and their validation.
//! - [`state`]: [`ConsentState`], grants and revocations applied
//!   deterministically, with stable refusal codes.
//! - [`governance`]: the Cedar schema, the default policies and versioned
//!   governance policy sets.
//! - [`bounds`]: how deep and long a governance policy may be, checked
//!   before Cedar parses it.
//! - [`engine`]: [`PolicyEngine::decide`], permit or deny and the policies
//!   that decided.
//!
//! DIDs are plain strings here; this crate knows nothing of the ledger,
//! signatures or HTTP. The node turns ledger transactions into
//! [`ConsentEvent`]s and governance installs, and access attempts into
//! [`AccessRequest`]s.
//!
//! ```
//! use hygeia_policy::{
//!     AccessRequest, Action, ConsentEvent, Grant, PolicyEngine, PurposeOfUse, RecordRef,
//!     Licence, Requester, Scope,
//! };
//!
//! let patient = "did:key:z6MkPatient";
//! let clinician = "did:key:z6MkClinician";
//! let mut engine = PolicyEngine::new(); // default governance policies, no consent
//! engine.apply(&ConsentEvent::Grant {
//!     author: patient.into(),
//!     grant: Grant {
//!         id: "grant-1".into(),
//!         patient: patient.into(),
//!         grantee: clinician.into(),
//!         scope: Scope::categories(["lab"]),
//!         actions: [Action::Read].into(),
//!         purpose: "TREAT".parse()?,
//!         not_before: 1_735_689_600,
//!         not_after: 1_738_368_000,
//!         jurisdictions: ["FR".to_owned()].into(),
//!     },
//! })?;
//! let request = AccessRequest {
//!     requester: Requester {
//!         did: clinician.into(),
//!         roles: ["clinician".to_owned()].into(),
//!         jurisdiction: Some("FR".into()),
//!         // Treatment needs a licence the node verified (and a trusted issuer).
//!         licence: Some(Licence { jurisdiction: "FR".into(), profession: "physician".into() }),
//!         ..Requester::default()
//!     },
//!     patient: patient.into(),
//!     action: Action::Read,
//!     purpose: PurposeOfUse::Treatment,
//!     record: RecordRef {
//!         id: "obs-1".into(),
//!         resource_type: "Observation".into(),
//!         category: Some("lab".into()),
//!     },
//!     time: 1_736_000_000,
//!     break_glass_justification: None,
//! };
//! let decision = engine.decide(&request);
//! assert!(decision.is_permit() && !decision.break_glass);
//! assert_eq!(decision.reasons, ["consent-grant"]);
//! assert_eq!(decision.grants, ["grant-1"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod bounds;
pub mod engine;
mod entities;
pub mod error;
pub mod governance;
pub mod grant;
pub mod jurisdiction;
mod prefilter;
pub mod purpose;
pub mod state;

pub use engine::{AccessRequest, Decision, Effect, Licence, PolicyEngine, RecordRef, Requester};
pub use error::{ConsentError, GovernanceError};
pub use governance::GovernancePolicies;
pub use grant::{is_did, Action, Grant, Scope};
pub use jurisdiction::is_country_code;
pub use purpose::{PurposeOfUse, UnknownPurpose, PURPOSE_OF_USE_SYSTEM};
pub use state::{ConsentEvent, ConsentState};
