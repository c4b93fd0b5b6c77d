//! FHIR R5 search: which parameters each type has ([`params`]), the values
//! a resource holds for them ([`extract`] → [`IndexEntry`]), search requests
//! ([`parse_query`] → [`SearchQuery`], and back with
//! [`SearchQuery::to_query_string`]), their meaning for one entry
//! ([`matches`], [`SearchQuery::compare`]) and an in-memory index that
//! answers them without looking at every resource ([`SearchIndex`]).
//!
//! Pure library: the node stores resources and their entries, keeps one
//! [`SearchIndex`] of current versions, asks it for the matching keys in
//! order, and filters by consent and pages itself.

mod eval;
mod extract;
mod index;
mod param_map;
mod params;
mod parse;
mod query;
mod render;
mod text;

#[cfg(test)]
mod tests;

pub use eval::matches;
pub use extract::{extract, IndexEntry, Token};
pub use index::SearchIndex;
pub use param_map::ParamMap;
pub use params::{param, params, ParamDef, ParamKind};
pub use parse::parse_query;
pub use query::{
    Clause, Criterion, DateMatch, Handling, Include, Prefix, RefMatch, SearchQuery, SortKey,
    StringMode, TokenMatch, TotalMode, APPROXIMATELY_MS, DEFAULT_COUNT, MAX_COUNT,
};
pub use text::normalize;
