//! SMART App Launch scopes (v2, with v1 accepted): what an access token
//! lets a client do, on top of — never instead of — what consent allows.
//!
//! A token's `scope` is a space-separated list (RFC 6749 §3.3). This module
//! reads it into [`Scopes`], writes it back in canonical v2 form, and
//! answers whether an interaction on a resource type is within it
//! ([`Scopes::reach`]). It knows nothing of FHIR resources or of consent:
//! the FHIR layer asks it, then asks the policy engine.
//!
//! Resource scopes (SMART App Launch 2.x, "Scopes for requesting FHIR
//! resources"): `<context>/<type>.<permissions>[?<param>=<value>&…]`
//!
//! - context: `patient` (the patient in context only), `user` (what the
//!   user may reach), `system` (what the client may reach);
//! - type: a FHIR resource type name, or `*` for every type;
//! - permissions (v2): some of `c` create, `r` read (read, vread,
//!   instance history), `u` update (also update-as-create), `d` delete,
//!   `s` search, each once and in that order (`cruds`, `rs`, `cud`);
//! - v1 permissions are accepted and mapped: `read` → `rs`, `write` →
//!   `cud`, `*` → `cruds`;
//! - an optional query (v2 "finer-grained" scopes, e.g.
//!   `patient/Observation.rs?category=laboratory`) narrows the scope to
//!   resources matching it; it is parsed and kept ([`ResourceScope::query`]),
//!   and a server that cannot enforce it must refuse it.
//!
//! Other scopes are understood and kept as what they are: `openid`,
//! `fhirUser`, `profile`, `launch`, `launch/patient`, `launch/encounter`,
//! `offline_access`, `online_access`. Anything else is refused
//! ([`ScopeError`]).

use std::fmt;
use std::str::FromStr;

/// Longest scope string accepted (the token request's limit).
pub const MAX_SCOPE_LEN: usize = 1024;

/// Most scopes in one string.
pub const MAX_SCOPES: usize = 64;

/// Whose data a resource scope reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Context {
    /// The patient in context only.
    Patient,
    /// Whatever the user may reach.
    User,
    /// Whatever the client may reach (backend services).
    System,
}

impl Context {
    pub fn as_str(self) -> &'static str {
        match self {
            Context::Patient => "patient",
            Context::User => "user",
            Context::System => "system",
        }
    }
}

/// A FHIR interaction, as scopes group them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Interaction {
    /// `c`: create (POST).
    Create,
    /// `r`: read, vread, instance history.
    Read,
    /// `u`: update (PUT), including update-as-create.
    Update,
    /// `d`: delete.
    Delete,
    /// `s`: search (and type history).
    Search,
}

impl Interaction {
    pub const ALL: [Interaction; 5] = [
        Interaction::Create,
        Interaction::Read,
        Interaction::Update,
        Interaction::Delete,
        Interaction::Search,
    ];

    /// The permission letter.
    pub fn letter(self) -> char {
        match self {
            Interaction::Create => 'c',
            Interaction::Read => 'r',
            Interaction::Update => 'u',
            Interaction::Delete => 'd',
            Interaction::Search => 's',
        }
    }

    /// What it is called in messages.
    pub fn name(self) -> &'static str {
        match self {
            Interaction::Create => "create",
            Interaction::Read => "read",
            Interaction::Update => "update",
            Interaction::Delete => "delete",
            Interaction::Search => "search",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Interaction::Create => 1,
            Interaction::Read => 2,
            Interaction::Update => 4,
            Interaction::Delete => 8,
            Interaction::Search => 16,
        }
    }
}

/// A set of interactions (the permissions of one resource scope).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Permissions(u8);

impl Permissions {
    pub const ALL: Permissions = Permissions(31);

    pub fn contains(self, interaction: Interaction) -> bool {
        self.0 & interaction.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Reads v2 letters (`cruds`, in that order, each once) or a v1 word.
    fn parse(text: &str) -> Option<Permissions> {
        match text {
            "read" => return Some(Permissions(2 | 16)),
            "write" => return Some(Permissions(1 | 4 | 8)),
            "*" => return Some(Permissions::ALL),
            _ => {}
        }
        let mut bits = 0u8;
        let mut last = 0u8;
        for c in text.chars() {
            let interaction = Interaction::ALL.into_iter().find(|i| i.letter() == c)?;
            let bit = interaction.bit();
            if bit <= last {
                return None;
            }
            last = bit;
            bits |= bit;
        }
        (bits != 0).then_some(Permissions(bits))
    }
}

impl fmt::Display for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for interaction in Interaction::ALL {
            if self.contains(interaction) {
                write!(f, "{}", interaction.letter())?;
            }
        }
        Ok(())
    }
}

/// `<context>/<type>.<permissions>[?query]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ResourceScope {
    pub context: Context,
    /// The resource type; `None` for `*`.
    pub resource_type: Option<String>,
    pub permissions: Permissions,
    /// A v2 query narrowing the scope (`category=laboratory`), as sent
    /// (without the `?`); `None` when there is none.
    pub query: Option<String>,
}

impl ResourceScope {
    /// Whether this scope covers `interaction` on `resource_type`.
    pub fn covers(&self, interaction: Interaction, resource_type: &str) -> bool {
        self.permissions.contains(interaction)
            && self
                .resource_type
                .as_deref()
                .is_none_or(|t| t == resource_type)
    }
}

impl fmt::Display for ResourceScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}.{}",
            self.context.as_str(),
            self.resource_type.as_deref().unwrap_or("*"),
            self.permissions
        )?;
        if let Some(query) = &self.query {
            write!(f, "?{query}")?;
        }
        Ok(())
    }
}

/// One scope.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    Resource(ResourceScope),
    /// `openid`: an OpenID Connect id token.
    OpenId,
    /// `fhirUser`: the user's FHIR resource in the id token.
    FhirUser,
    /// `profile` (SMART v1's name for `fhirUser`).
    Profile,
    /// `launch`: the EHR launch context.
    Launch,
    /// `launch/patient`: ask for a patient to be chosen at launch.
    LaunchPatient,
    /// `launch/encounter`: ask for an encounter to be chosen at launch.
    LaunchEncounter,
    /// `offline_access`: a refresh token usable after the user leaves.
    OfflineAccess,
    /// `online_access`: a refresh token while the user is online.
    OnlineAccess,
}

impl Scope {
    pub fn as_resource(&self) -> Option<&ResourceScope> {
        match self {
            Scope::Resource(r) => Some(r),
            _ => None,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = match self {
            Scope::Resource(r) => return r.fmt(f),
            Scope::OpenId => "openid",
            Scope::FhirUser => "fhirUser",
            Scope::Profile => "profile",
            Scope::Launch => "launch",
            Scope::LaunchPatient => "launch/patient",
            Scope::LaunchEncounter => "launch/encounter",
            Scope::OfflineAccess => "offline_access",
            Scope::OnlineAccess => "online_access",
        };
        f.write_str(word)
    }
}

/// Why a scope string was refused (the token endpoint's `invalid_scope`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("scope must be at most {MAX_SCOPE_LEN} characters and {MAX_SCOPES} scopes, separated by single spaces")]
    Syntax,
    #[error("{0:?} is not a scope this server knows (SMART scopes such as patient/Observation.rs, user/*.cruds, system/Patient.read, or openid, fhirUser, launch, launch/patient, offline_access)")]
    Unknown(String),
    #[error("{0:?}: permissions must be some of c, r, u, d, s in that order (or read, write, * in SMART v1)")]
    Permissions(String),
    #[error("{0:?}: the resource type must be a FHIR type name or *")]
    ResourceType(String),
    #[error("{0:?}: the query must be param=value pairs joined by &")]
    Query(String),
}

impl FromStr for Scope {
    type Err = ScopeError;

    fn from_str(text: &str) -> Result<Scope, ScopeError> {
        let fixed = match text {
            "openid" => Some(Scope::OpenId),
            "fhirUser" => Some(Scope::FhirUser),
            "profile" => Some(Scope::Profile),
            "launch" => Some(Scope::Launch),
            "launch/patient" => Some(Scope::LaunchPatient),
            "launch/encounter" => Some(Scope::LaunchEncounter),
            "offline_access" => Some(Scope::OfflineAccess),
            "online_access" => Some(Scope::OnlineAccess),
            _ => None,
        };
        if let Some(scope) = fixed {
            return Ok(scope);
        }
        let unknown = || ScopeError::Unknown(clip(text));
        let (context, rest) = text.split_once('/').ok_or_else(unknown)?;
        let context = match context {
            "patient" => Context::Patient,
            "user" => Context::User,
            "system" => Context::System,
            _ => return Err(unknown()),
        };
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, Some(query)),
            None => (rest, None),
        };
        let (resource_type, permissions) = rest.split_once('.').ok_or_else(unknown)?;
        let resource_type = match resource_type {
            "*" => None,
            name if is_type_name(name) => Some(name.to_owned()),
            _ => return Err(ScopeError::ResourceType(clip(text))),
        };
        let permissions =
            Permissions::parse(permissions).ok_or_else(|| ScopeError::Permissions(clip(text)))?;
        let query = match query {
            None => None,
            Some(query) if is_query(query) => Some(query.to_owned()),
            Some(_) => return Err(ScopeError::Query(clip(text))),
        };
        Ok(Scope::Resource(ResourceScope {
            context,
            resource_type,
            permissions,
            query,
        }))
    }
}

fn clip(text: &str) -> String {
    text.chars().take(80).collect()
}

/// A FHIR resource type name: a capital letter, then letters (at most 64).
fn is_type_name(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_uppercase())
        && name.chars().all(|c| c.is_ascii_alphabetic())
}

/// `param=value(&param=value)*`, each side non-empty.
fn is_query(query: &str) -> bool {
    query.split('&').all(|pair| {
        pair.split_once('=')
            .is_some_and(|(name, value)| !name.is_empty() && !value.is_empty())
    })
}

/// Where the scopes let an interaction on a type reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Any patient's resources (consent still decides which): a `user/`
    /// or `system/` scope covers it.
    Anyone,
    /// Only the patient in context's resources: only `patient/` scopes
    /// cover it.
    PatientInContext,
}

/// A token's scopes, in the order given, without duplicates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    /// Reads a scope string (RFC 6749 §3.3: scopes separated by single
    /// spaces).
    pub fn parse(text: &str) -> Result<Scopes, ScopeError> {
        if text.len() > MAX_SCOPE_LEN || text.is_empty() {
            return Err(ScopeError::Syntax);
        }
        let tokens: Vec<&str> = text.split(' ').collect();
        if tokens.len() > MAX_SCOPES || tokens.iter().any(|t| t.is_empty()) {
            return Err(ScopeError::Syntax);
        }
        let mut scopes = Vec::new();
        for token in tokens {
            let scope: Scope = token.parse()?;
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        Ok(Scopes(scopes))
    }

    pub fn from_scopes(scopes: impl IntoIterator<Item = Scope>) -> Scopes {
        let mut out = Vec::new();
        for scope in scopes {
            if !out.contains(&scope) {
                out.push(scope);
            }
        }
        Scopes(out)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The resource scopes.
    pub fn resources(&self) -> impl Iterator<Item = &ResourceScope> {
        self.0.iter().filter_map(Scope::as_resource)
    }

    /// Whether `scope` is among these.
    pub fn contains(&self, scope: &Scope) -> bool {
        self.0.contains(scope)
    }

    /// Where these scopes let `interaction` on `resource_type` reach:
    /// anyone's resources if a `user/` or `system/` scope covers it, only
    /// the patient in context's if only `patient/` scopes do, `None` if
    /// none does. Scopes with a query are not counted (see
    /// [`ResourceScope::query`]).
    pub fn reach(&self, interaction: Interaction, resource_type: &str) -> Option<Reach> {
        let covering = self
            .resources()
            .filter(|r| r.query.is_none() && r.covers(interaction, resource_type));
        let mut reach = None;
        for scope in covering {
            match scope.context {
                Context::User | Context::System => return Some(Reach::Anyone),
                Context::Patient => reach = Some(Reach::PatientInContext),
            }
        }
        reach
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, scope) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            scope.fmt(f)?;
        }
        Ok(())
    }
}

impl FromStr for Scopes {
    type Err = ScopeError;

    fn from_str(text: &str) -> Result<Scopes, ScopeError> {
        Scopes::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(text: &str) -> Scopes {
        Scopes::parse(text).unwrap()
    }

    #[test]
    fn v2_resource_scopes() {
        let s = scopes("patient/Observation.rs user/*.cruds system/Patient.r");
        assert_eq!(
            s.to_string(),
            "patient/Observation.rs user/*.cruds system/Patient.r"
        );
        let first = s.resources().next().unwrap();
        assert_eq!(first.context, Context::Patient);
        assert_eq!(first.resource_type.as_deref(), Some("Observation"));
        assert!(first.permissions.contains(Interaction::Read));
        assert!(first.permissions.contains(Interaction::Search));
        assert!(!first.permissions.contains(Interaction::Create));
    }

    #[test]
    fn v1_permissions_map_to_v2() {
        assert_eq!(
            scopes("patient/Observation.read").to_string(),
            "patient/Observation.rs"
        );
        assert_eq!(scopes("user/*.write").to_string(), "user/*.cud");
        assert_eq!(scopes("system/*.*").to_string(), "system/*.cruds");
    }

    #[test]
    fn reach_follows_the_context() {
        let s = scopes("system/Patient.r patient/Observation.rs");
        assert_eq!(s.reach(Interaction::Read, "Patient"), Some(Reach::Anyone));
        assert_eq!(s.reach(Interaction::Search, "Patient"), None);
        assert_eq!(
            s.reach(Interaction::Read, "Observation"),
            Some(Reach::PatientInContext)
        );
        assert_eq!(s.reach(Interaction::Create, "Observation"), None);
        assert_eq!(s.reach(Interaction::Delete, "Observation"), None);
        let all = scopes("user/*.cruds");
        for interaction in Interaction::ALL {
            assert_eq!(all.reach(interaction, "Condition"), Some(Reach::Anyone));
        }
        // A scope narrowed by a query is kept but reaches nothing here.
        let narrowed = scopes("patient/Observation.rs?category=laboratory");
        assert_eq!(
            narrowed.to_string(),
            "patient/Observation.rs?category=laboratory"
        );
        assert_eq!(narrowed.reach(Interaction::Read, "Observation"), None);
    }

    #[test]
    fn other_scopes_are_understood() {
        let s = scopes("openid fhirUser profile launch launch/patient launch/encounter offline_access online_access");
        assert_eq!(s.iter().count(), 8);
        assert!(s.contains(&Scope::OfflineAccess));
        assert_eq!(s.resources().count(), 0);
        assert_eq!(
            s.to_string(),
            "openid fhirUser profile launch launch/patient launch/encounter offline_access online_access"
        );
    }

    #[test]
    fn duplicates_collapse() {
        assert_eq!(scopes("user/*.rs user/*.read").to_string(), "user/*.rs");
    }

    #[test]
    fn refusals() {
        let refused = |text: &str| Scopes::parse(text).unwrap_err();
        assert_eq!(refused(""), ScopeError::Syntax);
        assert_eq!(refused("a  b"), ScopeError::Syntax);
        assert_eq!(refused(" user/*.rs"), ScopeError::Syntax);
        assert!(matches!(refused("admin"), ScopeError::Unknown(_)));
        assert!(matches!(
            refused("group/Patient.rs"),
            ScopeError::Unknown(_)
        ));
        assert!(matches!(refused("user/Patient"), ScopeError::Unknown(_)));
        for bad in [
            "user/Patient.sr",
            "user/Patient.rr",
            "user/Patient.x",
            "user/Patient.",
            "user/Patient.readwrite",
        ] {
            assert!(matches!(refused(bad), ScopeError::Permissions(_)), "{bad}");
        }
        for bad in [
            "user/patient.rs",
            "user/Obs3rvation.rs",
            "user/.rs",
            "user/**.rs",
        ] {
            assert!(matches!(refused(bad), ScopeError::ResourceType(_)), "{bad}");
        }
        for bad in [
            "user/Observation.rs?",
            "user/Observation.rs?category",
            "user/Observation.rs?=x",
            "user/Observation.rs?a=1&",
        ] {
            assert!(matches!(refused(bad), ScopeError::Query(_)), "{bad}");
        }
        let many = vec!["user/*.rs"; MAX_SCOPES + 1].join(" ");
        assert_eq!(refused(&many), ScopeError::Syntax);
        assert_eq!(refused(&"x".repeat(MAX_SCOPE_LEN + 1)), ScopeError::Syntax);
    }

    #[test]
    fn every_parsed_scope_prints_to_what_parses_back_to_it() {
        for text in [
            "patient/*.c",
            "user/Encounter.ud",
            "system/*.s",
            "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
            "launch/patient openid",
        ] {
            let parsed = scopes(text);
            assert_eq!(Scopes::parse(&parsed.to_string()).unwrap(), parsed);
        }
    }
}
