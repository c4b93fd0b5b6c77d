//! An in-memory index of the current version of every resource, answering
//! [`SearchQuery`]s without looking at every resource of the type.
//!
//! Per type it keeps the entries ordered by `_lastUpdated` (the default
//! order) and inverted maps from token codes, token systems, referenced
//! keys and ids, and normalized strings to the keys holding them. A search
//! takes the clause whose postings are smallest, gathers those candidates
//! and checks every clause on them with [`matches`]; without such a clause
//! (or when it would gather a large share of the type anyway and the order
//! is by `_lastUpdated`) it walks the type in `_lastUpdated` order instead,
//! which needs no sort.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use super::eval::{cmp_sort, id_of, matches, sort_value, SortValue};
use super::extract::IndexEntry;
use super::query::{Clause, Criterion, Include, RefMatch, SearchQuery, StringMode, TokenMatch};
use super::text::normalize;
use crate::types::ResourceType;

/// The search index of a node. Keys are `"Type/id"`, and an entry's
/// `resource_type` must be the key's type.
#[derive(Debug, Default, PartialEq)]
pub struct SearchIndex {
    entries: HashMap<Arc<str>, Arc<IndexEntry>>,
    types: HashMap<ResourceType, TypeIndex>,
}

/// A posting list's name: which parameter, and which value of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Posting {
    /// A token parameter's code (any system). `:identifier` values of a
    /// reference parameter are posted under `param:identifier`.
    Code(String, String),
    /// A token parameter's system (any code).
    System(String, String),
    /// A reference parameter's referenced key.
    Ref(String, String),
    /// A reference parameter's referenced id (any type).
    RefId(String, String),
}

#[derive(Debug, Default, PartialEq)]
struct TypeIndex {
    /// Entries with `_lastUpdated`, in default order.
    by_updated: BTreeMap<(i64, Arc<str>), Arc<IndexEntry>>,
    /// Entries without; they sort after the others, by key.
    not_updated: BTreeMap<Arc<str>, Arc<IndexEntry>>,
    postings: HashMap<Posting, HashSet<Arc<str>>>,
    /// `param \x1f normalized value`: ordered, for prefix ranges.
    strings: BTreeMap<String, HashSet<Arc<str>>>,
}

impl TypeIndex {
    fn len(&self) -> usize {
        self.by_updated.len() + self.not_updated.len()
    }
}

/// Where candidates come from: a posting list, or one key.
enum Source<'a> {
    Set(&'a HashSet<Arc<str>>),
    Key(&'a Arc<str>),
}

impl Source<'_> {
    fn len(&self) -> usize {
        match self {
            Source::Set(s) => s.len(),
            Source::Key(_) => 1,
        }
    }
}

/// Separates a parameter name from a string value in `TypeIndex::strings`
/// (normalized values hold no control characters).
const SEP: char = '\u{1f}';

/// Postings are walked instead of candidates gathered when they cover more
/// than 1/`SCAN_RATIO` of the type and the order is `_lastUpdated`'s.
const SCAN_RATIO: usize = 4;

/// The postings an entry's values go to: each with its posting name.
fn postings_of(e: &IndexEntry) -> Vec<Posting> {
    let mut out = Vec::new();
    for (param, tokens) in &e.tokens {
        token_postings(param, tokens, &mut out);
    }
    for (param, tokens) in &e.reference_identifiers {
        token_postings(&format!("{param}:identifier"), tokens, &mut out);
    }
    for (param, keys) in &e.references {
        for k in keys {
            out.push(Posting::Ref(param.clone(), k.clone()));
            out.push(Posting::RefId(param.clone(), id_of(k).to_owned()));
        }
    }
    out
}

fn token_postings(param: &str, tokens: &[super::Token], out: &mut Vec<Posting>) {
    for t in tokens {
        out.push(Posting::Code(param.to_owned(), t.code.clone()));
        if let Some(s) = &t.system {
            out.push(Posting::System(param.to_owned(), s.clone()));
        }
    }
}

fn string_postings(e: &IndexEntry) -> Vec<String> {
    e.strings
        .iter()
        .flat_map(|(param, values)| {
            values
                .iter()
                .map(move |v| format!("{param}{SEP}{}", normalize(v)))
        })
        .collect()
}

impl SearchIndex {
    pub fn new() -> SearchIndex {
        SearchIndex::default()
    }

    /// Indexes (or re-indexes) the current version of the resource `key`
    /// (`"Type/id"`, of type `entry.resource_type`).
    pub fn upsert(&mut self, key: &str, entry: IndexEntry) {
        self.remove(key);
        let key: Arc<str> = Arc::from(key);
        let entry = Arc::new(entry);
        let t = self.types.entry(entry.resource_type).or_default();
        match entry.last_updated {
            Some(ts) => t.by_updated.insert((ts, key.clone()), entry.clone()),
            None => t.not_updated.insert(key.clone(), entry.clone()),
        };
        for p in postings_of(&entry) {
            t.postings.entry(p).or_default().insert(key.clone());
        }
        for s in string_postings(&entry) {
            t.strings.entry(s).or_default().insert(key.clone());
        }
        self.entries.insert(key, entry);
    }

    /// Forgets the resource `key` (deleted, or erased); nothing if absent.
    pub fn remove(&mut self, key: &str) {
        let Some((key, entry)) = self.entries.remove_entry(key) else {
            return;
        };
        let Some(t) = self.types.get_mut(&entry.resource_type) else {
            return;
        };
        match entry.last_updated {
            Some(ts) => t.by_updated.remove(&(ts, key.clone())),
            None => t.not_updated.remove(&key),
        };
        for p in postings_of(&entry) {
            if let Some(set) = t.postings.get_mut(&p) {
                set.remove(&key);
                if set.is_empty() {
                    t.postings.remove(&p);
                }
            }
        }
        for s in string_postings(&entry) {
            if let Some(set) = t.strings.get_mut(&s) {
                set.remove(&key);
                if set.is_empty() {
                    t.strings.remove(&s);
                }
            }
        }
        // Dropped when empty, so that an index equals a freshly built one.
        if t.len() == 0 {
            self.types.remove(&entry.resource_type);
        }
    }

    /// The number of resources indexed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The number of resources of one type indexed.
    pub fn len_of(&self, rt: ResourceType) -> usize {
        self.types.get(&rt).map_or(0, TypeIndex::len)
    }

    /// Every indexed key with its entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &IndexEntry)> {
        self.entries.iter().map(|(k, e)| (k.as_ref(), e.as_ref()))
    }

    /// The entry indexed under `key`.
    pub fn get(&self, key: &str) -> Option<&IndexEntry> {
        self.entries.get(key).map(|e| e.as_ref())
    }

    /// The keys of all resources matching `q` (of type `q.resource_type`),
    /// in the query's order ([`SearchQuery::compare`]), not yet paged:
    /// exactly the entries [`matches`] accepts, sorted by
    /// [`SearchQuery::compare`].
    pub fn search(&self, q: &SearchQuery) -> Vec<String> {
        let Some(t) = self.types.get(&q.resource_type) else {
            return Vec::new();
        };
        let by_updated = match q.sort.as_slice() {
            [] => Some(false),
            [k] if k.param == "_lastUpdated" => Some(k.descending),
            _ => None,
        };
        let best = q
            .clauses
            .iter()
            .filter_map(|c| self.sources(t, q.resource_type, c))
            .min_by_key(|sources| sources.iter().map(Source::len).sum::<usize>());
        match (best, by_updated) {
            (Some(sources), order)
                if order.is_none()
                    || sources.iter().map(Source::len).sum::<usize>() * SCAN_RATIO <= t.len() =>
            {
                self.from_candidates(q, &sources)
            }
            (_, Some(descending)) => walk_by_updated(t, q, descending),
            (_, None) => {
                let all = t
                    .by_updated
                    .iter()
                    .map(|((_, k), e)| (k, e))
                    .chain(t.not_updated.iter());
                sorted(q, all.filter(|(k, e)| matches(q, k, e)).collect())
            }
        }
    }

    /// Candidates from postings, checked and sorted.
    fn from_candidates(&self, q: &SearchQuery, sources: &[Source<'_>]) -> Vec<String> {
        let mut seen: HashSet<&Arc<str>> = HashSet::new();
        let mut found = Vec::new();
        let keys = sources
            .iter()
            .flat_map(|s| -> Box<dyn Iterator<Item = &Arc<str>>> {
                match s {
                    Source::Set(set) => Box::new(set.iter()),
                    Source::Key(k) => Box::new(std::iter::once(*k)),
                }
            });
        for k in keys {
            if !seen.insert(k) {
                continue;
            }
            if let Some(e) = self.entries.get(k) {
                if matches(q, k, e) {
                    found.push((k, e));
                }
            }
        }
        sorted(q, found)
    }

    /// The postings that hold every entry a clause can match, or `None` if
    /// the clause cannot be answered from postings (dates, `:not`,
    /// `:missing`, `:contains`).
    fn sources<'a>(
        &'a self,
        t: &'a TypeIndex,
        rt: ResourceType,
        c: &Clause,
    ) -> Option<Vec<Source<'a>>> {
        let p = &c.param;
        let mut out = Vec::new();
        let mut posting = |name: Posting| {
            if let Some(set) = t.postings.get(&name) {
                out.push(Source::Set(set));
            }
        };
        match &c.criterion {
            Criterion::Id { ids, negate: false } => {
                for id in ids {
                    if let Some((k, _)) = self.entries.get_key_value(format!("{rt}/{id}").as_str())
                    {
                        out.push(Source::Key(k));
                    }
                }
            }
            Criterion::Token {
                values,
                negate: false,
            } => values.iter().for_each(|v| posting(token_posting(p, v))),
            Criterion::RefIdentifier(values) => {
                let name = format!("{p}:identifier");
                values.iter().for_each(|v| posting(token_posting(&name, v)));
            }
            Criterion::Reference(values) => values.iter().for_each(|v| {
                posting(match v {
                    RefMatch::Key(k) => Posting::Ref(p.clone(), k.clone()),
                    RefMatch::Id(id) => Posting::RefId(p.clone(), id.clone()),
                })
            }),
            Criterion::String { values, mode } if *mode != StringMode::Contains => {
                for v in values {
                    let from = format!("{p}{SEP}{}", normalize(v));
                    if *mode == StringMode::Exact {
                        out.extend(t.strings.get(&from).map(Source::Set));
                    } else {
                        out.extend(
                            t.strings
                                .range(from.clone()..)
                                .take_while(|(s, _)| s.starts_with(&from))
                                .map(|(_, set)| Source::Set(set)),
                        );
                    }
                }
            }
            _ => return None,
        }
        Some(out)
    }

    /// The resources the `includes` add to a page of matches: those the
    /// listed parameters of `keys` reference, that are indexed and not in
    /// `keys` themselves, each once, in order of first mention. (Consent
    /// applies to them as to the matches.)
    pub fn included(&self, keys: &[String], includes: &[Include]) -> Vec<String> {
        let listed: HashSet<&str> = keys.iter().map(String::as_str).collect();
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for key in keys {
            let Some(e) = self.entries.get(key.as_str()) else {
                continue;
            };
            for inc in includes.iter().filter(|i| i.source == e.resource_type) {
                for r in e.references.get(&inc.param).into_iter().flatten() {
                    let wanted = inc
                        .target
                        .is_none_or(|t| r.split_once('/').is_some_and(|(ty, _)| ty == t.as_str()));
                    if wanted
                        && !listed.contains(r.as_str())
                        && self.entries.contains_key(r.as_str())
                        && seen.insert(r.as_str())
                    {
                        out.push(r.clone());
                    }
                }
            }
        }
        out
    }
}

fn token_posting(param: &str, v: &TokenMatch) -> Posting {
    match v {
        TokenMatch::Code(c) | TokenMatch::NoSystem(c) | TokenMatch::SystemCode(_, c) => {
            Posting::Code(param.to_owned(), c.clone())
        }
        TokenMatch::System(s) => Posting::System(param.to_owned(), s.clone()),
    }
}

/// All matches of a type in `_lastUpdated` order, without sorting: the
/// index is in that order already. Descending keeps ties by key ascending,
/// and entries without `_lastUpdated` come last either way.
fn walk_by_updated(t: &TypeIndex, q: &SearchQuery, descending: bool) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if descending {
        let mut run_start = 0;
        let mut run_ts = None;
        for ((ts, k), e) in t.by_updated.iter().rev() {
            if !matches(q, k, e) {
                continue;
            }
            if run_ts != Some(*ts) {
                out[run_start..].reverse();
                run_start = out.len();
                run_ts = Some(*ts);
            }
            out.push(k.to_string());
        }
        out[run_start..].reverse();
    } else {
        out.extend(
            t.by_updated
                .iter()
                .filter(|((_, k), e)| matches(q, k, e))
                .map(|((_, k), _)| k.to_string()),
        );
    }
    out.extend(
        t.not_updated
            .iter()
            .filter(|(k, e)| matches(q, k, e))
            .map(|(k, _)| k.to_string()),
    );
    out
}

/// Sorts matches into the query's order, computing each sort value once.
fn sorted(q: &SearchQuery, found: Vec<(&Arc<str>, &Arc<IndexEntry>)>) -> Vec<String> {
    let order = q.effective_sort();
    let mut decorated: Vec<(Vec<Option<SortValue>>, &Arc<str>)> = found
        .into_iter()
        .map(|(k, e)| {
            let values = order
                .iter()
                .map(|(param, descending)| sort_value(param, *descending, k, e))
                .collect();
            (values, k)
        })
        .collect();
    decorated.sort_by(|(va, ka), (vb, kb)| {
        for (i, (_, descending)) in order.iter().enumerate() {
            let o = cmp_sort(&va[i], &vb[i], *descending);
            if o != Ordering::Equal {
                return o;
            }
        }
        ka.cmp(kb)
    });
    decorated.into_iter().map(|(_, k)| k.to_string()).collect()
}
