//! A parsed search request: what it asks for, in which order, and how much.

use crate::date::DateRange;
use crate::types::ResourceType;

/// The page size when `_count` is not given.
pub const DEFAULT_COUNT: usize = 20;
/// The largest page size; a larger `_count` is lowered to it (with a
/// warning).
pub const MAX_COUNT: usize = 1000;

/// What to do with parameters the server does not support, from the
/// `Prefer: handling=` header (FHIR search, "Handling errors").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Handling {
    /// Refuse the search.
    Strict,
    /// Ignore them and say so with warnings (the default).
    #[default]
    Lenient,
}

impl Handling {
    /// The handling a `Prefer` header value asks for (`handling=strict`
    /// among comma- or semicolon-separated preferences); lenient otherwise.
    pub fn from_prefer(header: &str) -> Handling {
        let strict = header
            .split([',', ';'])
            .filter_map(|p| p.split_once('='))
            .any(|(k, v)| {
                k.trim().eq_ignore_ascii_case("handling")
                    && v.trim().trim_matches('"').eq_ignore_ascii_case("strict")
            });
        if strict {
            Handling::Strict
        } else {
            Handling::Lenient
        }
    }
}

/// `_total`: how hard the server should try to count all matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TotalMode {
    None,
    Estimate,
    Accurate,
}

impl TotalMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TotalMode::None => "none",
            TotalMode::Estimate => "estimate",
            TotalMode::Accurate => "accurate",
        }
    }
}

/// A date comparison prefix. With S the searched range and R a range the
/// resource holds (FHIR R5 search, "Prefixes"):
///
/// | prefix | R matches when |
/// |---|---|
/// | `eq` | R lies within S |
/// | `ne` | R does not lie within S |
/// | `gt` | R ends after S ends |
/// | `lt` | R starts before S starts |
/// | `ge` | `gt` or `eq` |
/// | `le` | `lt` or `eq` |
/// | `sa` | R starts at or after the end of S |
/// | `eb` | R ends at or before the start of S |
/// | `ap` | R overlaps S widened by one day on each side |
///
/// `ap` is widened by a fixed day, not by 10 % of the distance to now,
/// so that a query means the same whenever it is evaluated (and so that
/// the index and [`super::matches`] agree without sharing a clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prefix {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Sa,
    Eb,
    Ap,
}

/// How far `ap` widens the searched range on each side.
pub const APPROXIMATELY_MS: i64 = 86_400_000;

impl Prefix {
    pub const ALL: [Prefix; 9] = [
        Prefix::Eq,
        Prefix::Ne,
        Prefix::Gt,
        Prefix::Lt,
        Prefix::Ge,
        Prefix::Le,
        Prefix::Sa,
        Prefix::Eb,
        Prefix::Ap,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Prefix::Eq => "eq",
            Prefix::Ne => "ne",
            Prefix::Gt => "gt",
            Prefix::Lt => "lt",
            Prefix::Ge => "ge",
            Prefix::Le => "le",
            Prefix::Sa => "sa",
            Prefix::Eb => "eb",
            Prefix::Ap => "ap",
        }
    }

    /// Whether a resource range `r` matches the searched range `s`.
    pub fn test(self, s: &DateRange, r: &DateRange) -> bool {
        match self {
            Prefix::Eq => s.contains(r),
            Prefix::Ne => !s.contains(r),
            Prefix::Gt => r.end > s.end,
            Prefix::Lt => r.start < s.start,
            Prefix::Ge => r.end > s.end || s.contains(r),
            Prefix::Le => r.start < s.start || s.contains(r),
            Prefix::Sa => r.start >= s.end,
            Prefix::Eb => r.end <= s.start,
            Prefix::Ap => DateRange {
                start: s.start.saturating_sub(APPROXIMATELY_MS),
                end: s.end.saturating_add(APPROXIMATELY_MS),
            }
            .overlaps(r),
        }
    }
}

/// One searched date: prefix, the range its text denotes, and the text as
/// given (for links).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DateMatch {
    pub prefix: Prefix,
    pub range: DateRange,
    pub text: String,
}

/// One searched token.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TokenMatch {
    /// `code`: that code in any system, or with none.
    Code(String),
    /// `system|code`.
    SystemCode(String, String),
    /// `|code`: that code with no system.
    NoSystem(String),
    /// `system|`: any code of the system.
    System(String),
}

impl TokenMatch {
    pub fn test(&self, t: &super::Token) -> bool {
        match self {
            TokenMatch::Code(c) => t.code == *c,
            TokenMatch::SystemCode(s, c) => t.code == *c && t.system.as_deref() == Some(s),
            TokenMatch::NoSystem(c) => t.code == *c && t.system.is_none(),
            TokenMatch::System(s) => t.system.as_deref() == Some(s),
        }
    }
}

/// One searched reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RefMatch {
    /// `Type/id`.
    Key(String),
    /// A bare id, on a parameter that may reference several types: any
    /// type with that id.
    Id(String),
}

/// How a string parameter compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StringMode {
    /// The default: a value starts with the searched text, ignoring case
    /// and accents ([`super::normalize`]).
    Prefix,
    /// `:exact`: equal, case and accents included.
    Exact,
    /// `:contains`: contains the searched text, ignoring case and accents.
    Contains,
}

/// What one clause asks of one parameter; the values are ORed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Criterion {
    /// `_id` (`:not` when `negate`).
    Id { ids: Vec<String>, negate: bool },
    /// A token parameter. With `negate` (`:not`), resources holding none
    /// of the values match, including those with no value at all.
    Token {
        values: Vec<TokenMatch>,
        negate: bool,
    },
    /// A date parameter (or `_lastUpdated`): some value matches some date.
    Date(Vec<DateMatch>),
    /// A reference parameter.
    Reference(Vec<RefMatch>),
    /// `:identifier` on a reference parameter: the identifier of a logical
    /// reference.
    RefIdentifier(Vec<TokenMatch>),
    /// A string parameter.
    String {
        values: Vec<String>,
        mode: StringMode,
    },
    /// `:missing=true` (resources with no value) or `:missing=false`.
    Missing(bool),
}

/// One parameter of the query. Clauses are ANDed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clause {
    /// The parameter's name, without modifier (`code`, `_id`).
    pub param: String,
    pub criterion: Criterion,
}

/// One `_sort` key. Every order ends with the key (`Type/id`) ascending,
/// so that it is total.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SortKey {
    /// `_id`, `_lastUpdated`, or a date, token or string parameter.
    pub param: String,
    pub descending: bool,
}

/// One `_include`: add the resources `param` of the matches references.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Include {
    /// The searched type (`Observation` in `Observation:patient`).
    pub source: ResourceType,
    /// A reference parameter of the source type.
    pub param: String,
    /// Only references to this type (`Observation:subject:Patient`).
    pub target: Option<ResourceType>,
}

/// A parsed search request, made by [`super::parse_query`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchQuery {
    pub resource_type: ResourceType,
    /// ANDed; each clause ORs its values.
    pub clauses: Vec<Clause>,
    /// `_sort`; empty means `_lastUpdated` ascending. Ties are always
    /// broken by key ascending.
    pub sort: Vec<SortKey>,
    /// `_count`: page size, 0 to [`MAX_COUNT`]; 0 asks for the total only.
    pub count: usize,
    /// `_offset`: matches to skip before the page.
    pub offset: usize,
    pub includes: Vec<Include>,
    /// `_total`, if given.
    pub total: Option<TotalMode>,
    /// `_summary=count`: the total only, no resources.
    pub summary_count: bool,
}

impl SearchQuery {
    /// A query for all resources of a type, in the default order.
    pub fn all(resource_type: ResourceType) -> SearchQuery {
        SearchQuery {
            resource_type,
            clauses: Vec::new(),
            sort: Vec::new(),
            count: DEFAULT_COUNT,
            offset: 0,
            includes: Vec::new(),
            total: None,
            summary_count: false,
        }
    }

    /// Whether only the number of matches is asked for (`_summary=count`
    /// or `_count=0`).
    pub fn count_only(&self) -> bool {
        self.summary_count || self.count == 0
    }

    /// The sort keys in effect: `_sort`, or `_lastUpdated` ascending.
    pub(crate) fn effective_sort(&self) -> Vec<(&str, bool)> {
        if self.sort.is_empty() {
            vec![("_lastUpdated", false)]
        } else {
            self.sort
                .iter()
                .map(|k| (k.param.as_str(), k.descending))
                .collect()
        }
    }
}
