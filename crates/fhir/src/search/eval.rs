//! What a query means for one entry: whether it matches, and where it
//! sorts. These are the reference semantics; [`super::SearchIndex`] only
//! finds the same answer faster.

use std::cmp::Ordering;

use super::extract::IndexEntry;
use super::query::{Clause, Criterion, RefMatch, SearchQuery, StringMode};
use super::text::normalize;
use crate::date::DateRange;

/// Whether the entry indexed under `key` (`"Type/id"`) matches every
/// clause of `q` (and is of the searched type).
pub fn matches(q: &SearchQuery, key: &str, entry: &IndexEntry) -> bool {
    entry.resource_type == q.resource_type && clauses_match(q, None, key, entry)
}

/// Whether the entry matches every clause but the `skip`th (the index
/// knows the type, and may know one clause holds already).
pub(crate) fn clauses_match(
    q: &SearchQuery,
    skip: Option<usize>,
    key: &str,
    entry: &IndexEntry,
) -> bool {
    q.clauses
        .iter()
        .enumerate()
        .all(|(i, c)| Some(i) == skip || clause_matches(c, key, entry))
}

/// The id part of a key.
pub(crate) fn id_of(key: &str) -> &str {
    key.split_once('/').map_or(key, |(_, id)| id)
}

pub(crate) fn clause_matches(c: &Clause, key: &str, e: &IndexEntry) -> bool {
    let name = c.param.as_str();
    match &c.criterion {
        Criterion::Id { ids, negate } => {
            let id = id_of(key);
            ids.iter().any(|i| i == id) != *negate
        }
        Criterion::Token { values, negate } => {
            let held = e.tokens.get(name).map(Vec::as_slice).unwrap_or_default();
            values.iter().any(|v| held.iter().any(|t| v.test(t))) != *negate
        }
        Criterion::Date(values) => {
            let last_updated;
            let held: &[DateRange] = if name == "_lastUpdated" {
                last_updated = e.last_updated.map(DateRange::point);
                last_updated.as_slice()
            } else {
                e.dates.get(name).map(Vec::as_slice).unwrap_or_default()
            };
            values
                .iter()
                .any(|v| held.iter().any(|r| v.prefix.test(&v.range, r)))
        }
        Criterion::Reference(values) => {
            let held = e
                .references
                .get(name)
                .map(Vec::as_slice)
                .unwrap_or_default();
            values.iter().any(|v| match v {
                RefMatch::Key(k) => held.iter().any(|h| h == k),
                RefMatch::Id(id) => held.iter().any(|h| id_of(h) == id),
            })
        }
        Criterion::RefIdentifier(values) => {
            let held = e
                .reference_identifiers
                .get(name)
                .map(Vec::as_slice)
                .unwrap_or_default();
            values.iter().any(|v| held.iter().any(|t| v.test(t)))
        }
        Criterion::String { values, mode } => {
            let held = e.strings.get(name).map(Vec::as_slice).unwrap_or_default();
            match mode {
                StringMode::Exact => values.iter().any(|v| held.iter().any(|h| h == v)),
                StringMode::Prefix | StringMode::Contains => {
                    let held: Vec<String> = held.iter().map(|h| normalize(h)).collect();
                    values.iter().any(|v| {
                        let v = normalize(v);
                        held.iter().any(|h| match mode {
                            StringMode::Prefix => h.starts_with(&v),
                            _ => h.contains(&v),
                        })
                    })
                }
            }
        }
        Criterion::Missing(missing) => e.has_values(name) != *missing,
    }
}

/// Where an entry sorts for one sort key. Several values: the lowest
/// (dates: earliest start) for ascending, the highest (dates: latest end)
/// for descending, as FHIR asks. Tokens sort by code, strings normalized.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum SortValue {
    Int(i64),
    Text(String),
}

pub(crate) fn sort_value(
    param: &str,
    descending: bool,
    key: &str,
    e: &IndexEntry,
) -> Option<SortValue> {
    fn pick<T: Ord, I: Iterator<Item = T>>(it: I, descending: bool) -> Option<T> {
        if descending {
            it.max()
        } else {
            it.min()
        }
    }
    match param {
        "_id" => Some(SortValue::Text(id_of(key).to_owned())),
        "_lastUpdated" => e.last_updated.map(SortValue::Int),
        _ => {
            if let Some(ranges) = e.dates.get(param) {
                let bounds = ranges
                    .iter()
                    .map(|r| if descending { r.end } else { r.start });
                pick(bounds, descending).map(SortValue::Int)
            } else if let Some(tokens) = e.tokens.get(param) {
                pick(tokens.iter().map(|t| &t.code), descending).map(|c| SortValue::Text(c.clone()))
            } else if let Some(strings) = e.strings.get(param) {
                pick(strings.iter().map(|s| normalize(s)), descending).map(SortValue::Text)
            } else {
                None
            }
        }
    }
}

/// Orders two sort values of one key: entries without a value come last
/// whatever the direction.
pub(crate) fn cmp_sort(a: &Option<SortValue>, b: &Option<SortValue>, descending: bool) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) if descending => b.cmp(a),
        (Some(a), Some(b)) => a.cmp(b),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

impl SearchQuery {
    /// The order of the query's results: its sort keys (default
    /// `_lastUpdated` ascending), entries without a value for a key after
    /// those with one, and finally the keys (`"Type/id"`) ascending.
    pub fn compare(&self, a: (&str, &IndexEntry), b: (&str, &IndexEntry)) -> Ordering {
        for (param, descending) in self.effective_sort() {
            let va = sort_value(param, descending, a.0, a.1);
            let vb = sort_value(param, descending, b.0, b.1);
            let o = cmp_sort(&va, &vb, descending);
            if o != Ordering::Equal {
                return o;
            }
        }
        a.0.cmp(b.0)
    }
}
