//! An in-memory index of the current version of every resource, answering
//! [`SearchQuery`]s without looking at every resource of the type.
//!
//! Per type it keeps all entries, and inverted lists from token codes,
//! token systems, referenced keys and ids, and normalized strings to the
//! entries holding them. Every list is kept in the default order
//! (`_lastUpdated`, then key) and holds the entries themselves, so that the
//! common searches (one selective clause, default order) walk one list in
//! order and check the other clauses with [`super::matches`]: no lookups,
//! no sort.
//! A search starts from the clause whose lists are shortest; without one
//! (dates, `:not`, `:missing`, `:contains` only) it walks the whole type.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;
use std::sync::Arc;

use super::eval::{clauses_match, cmp_sort, id_of, sort_value, SortValue};
use super::extract::IndexEntry;
use super::query::{
    Clause, Criterion, Include, Prefix, RefMatch, SearchQuery, StringMode, TokenMatch,
    APPROXIMATELY_MS,
};
use super::text::normalize;
use crate::types::ResourceType;

/// The search index of a node. Keys are `"Type/id"`, and an entry's
/// `resource_type` must be the key's type.
#[derive(Debug, Default, PartialEq)]
pub struct SearchIndex {
    entries: HashMap<Arc<str>, Arc<IndexEntry>>,
    types: HashMap<ResourceType, TypeIndex>,
}

/// A list's name: which parameter, and which value of it.
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

/// Where an entry sits in the default order: by `_lastUpdated`, entries
/// without one after all others, then by key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Place {
    missing: bool,
    last_updated: i64,
    key: Arc<str>,
}

impl Place {
    fn of(key: &Arc<str>, e: &IndexEntry) -> Place {
        Place {
            missing: e.last_updated.is_none(),
            last_updated: e.last_updated.unwrap_or(0),
            key: key.clone(),
        }
    }
}

/// Entries in the default order.
type List = BTreeMap<Place, Arc<IndexEntry>>;

/// A matching entry: its key and values.
type Hit<'a> = (&'a Arc<str>, &'a Arc<IndexEntry>);

#[derive(Debug, Default, PartialEq)]
struct TypeIndex {
    all: List,
    /// The same entries by key, for sorts other than the default one.
    by_key: BTreeMap<Arc<str>, Arc<IndexEntry>>,
    postings: HashMap<Posting, List>,
    /// `param \x1f normalized value`: ordered, for prefix ranges.
    strings: BTreeMap<String, List>,
}

/// Where candidates come from: a list, or one entry.
enum Source<'a> {
    List(&'a List),
    One(Hit<'a>),
}

impl<'a> Source<'a> {
    fn len(&self) -> usize {
        match self {
            Source::List(l) => l.len(),
            Source::One(_) => 1,
        }
    }

    fn hits(&self) -> Box<dyn Iterator<Item = Hit<'a>> + 'a> {
        match *self {
            Source::List(l) => Box::new(l.iter().map(|(p, e)| (&p.key, e))),
            Source::One(hit) => Box::new(std::iter::once(hit)),
        }
    }
}

/// The candidates for one clause.
struct Sources<'a> {
    from: Vec<Source<'a>>,
    /// Every entry in `from` satisfies the clause.
    exact: bool,
}

impl Sources<'_> {
    fn len(&self) -> usize {
        self.from.iter().map(Source::len).sum()
    }
}

/// Separates a parameter name from a string value in `TypeIndex::strings`
/// (normalized values hold no control characters).
const SEP: char = '\u{1f}';

/// With several candidate lists, the whole type is walked instead of
/// gathering and sorting them when they hold more than 1/`SCAN_RATIO` of
/// it and the order is `_lastUpdated`'s.
const SCAN_RATIO: usize = 4;

/// The lists an entry's values go to (a value twice is harmless: lists
/// are sets).
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
            out.push(Posting::Ref(param.to_owned(), k.clone()));
            out.push(Posting::RefId(param.to_owned(), id_of(k).to_owned()));
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
    /// An empty index.
    pub fn new() -> SearchIndex {
        SearchIndex::default()
    }

    /// Indexes (or re-indexes) the current version of the resource `key`
    /// (`"Type/id"`, of type `entry.resource_type`).
    pub fn upsert(&mut self, key: &str, entry: IndexEntry) {
        self.upsert_shared(Arc::from(key), entry);
    }

    /// [`SearchIndex::upsert`] keeping the caller's allocation of the key
    /// (a node holding a million keys keeps each once).
    pub fn upsert_shared(&mut self, key: Arc<str>, entry: IndexEntry) {
        self.remove(&key);
        let entry = Arc::new(entry);
        let place = Place::of(&key, &entry);
        let t = self.types.entry(entry.resource_type).or_default();
        t.all.insert(place.clone(), entry.clone());
        t.by_key.insert(key.clone(), entry.clone());
        for p in postings_of(&entry) {
            t.postings
                .entry(p)
                .or_default()
                .insert(place.clone(), entry.clone());
        }
        for s in string_postings(&entry) {
            t.strings
                .entry(s)
                .or_default()
                .insert(place.clone(), entry.clone());
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
        let place = Place::of(&key, &entry);
        t.all.remove(&place);
        t.by_key.remove(&key);
        // Lists are dropped when empty, so that an index equals a freshly
        // built one.
        for p in postings_of(&entry) {
            if let Some(list) = t.postings.get_mut(&p) {
                list.remove(&place);
                if list.is_empty() {
                    t.postings.remove(&p);
                }
            }
        }
        for s in string_postings(&entry) {
            if let Some(list) = t.strings.get_mut(&s) {
                list.remove(&place);
                if list.is_empty() {
                    t.strings.remove(&s);
                }
            }
        }
        if t.all.is_empty() {
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
        self.types.get(&rt).map_or(0, |t| t.all.len())
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
    /// in the query's order, not yet paged: exactly the entries [`super::matches`]
    /// accepts, sorted by [`SearchQuery::compare`].
    pub fn search(&self, q: &SearchQuery) -> Vec<String> {
        let Some(t) = self.types.get(&q.resource_type) else {
            return Vec::new();
        };
        // Some(descending) when the order is the lists' own.
        let default_order = match q.sort.as_slice() {
            [] => Some(false),
            [k] if k.param == "_lastUpdated" => Some(k.descending),
            _ => None,
        };
        let best = q
            .clauses
            .iter()
            .enumerate()
            .filter_map(|(i, c)| self.sources(t, q.resource_type, c).map(|s| (i, s)))
            .min_by_key(|(_, s)| s.len());
        let Some((i, sources)) = best else {
            // Nothing to start from: the whole type, or the part of it
            // `_lastUpdated` clauses allow.
            let all: Box<dyn DoubleEndedIterator<Item = (&Place, &Arc<IndexEntry>)>> =
                match last_updated_window(q) {
                    Some((lo, hi)) => Box::new(t.all.range(window_bounds(lo, hi))),
                    None => Box::new(t.all.iter()),
                };
            return match (default_order, last_updated_window(q)) {
                (Some(descending), _) => walk(all, q, None, descending),
                (None, Some(_)) => sorted(
                    q,
                    all.filter(|(p, e)| clauses_match(q, None, &p.key, e))
                        .map(|(p, e)| (&p.key, e))
                        .collect(),
                    false,
                ),
                (None, None) => sorted(
                    q,
                    t.by_key
                        .iter()
                        .filter(|(k, e)| clauses_match(q, None, k, e))
                        .collect(),
                    true,
                ),
            };
        };
        // Entries from the lists of an exact source hold clause i already.
        let skip = sources.exact.then_some(i);
        let Some(descending) = default_order else {
            return sorted(q, gather(q, skip, &sources.from), sources.from.len() > 1);
        };
        match sources.from.as_slice() {
            [] => Vec::new(),
            [Source::List(list)] => walk(list.iter(), q, skip, descending),
            _ if sources.len() * SCAN_RATIO > t.all.len() => {
                walk(t.all.iter(), q, None, descending)
            }
            _ => {
                let mut hits = gather(q, skip, &sources.from);
                hits.sort_by_cached_key(|(k, e)| {
                    let ts = i128::from(e.last_updated.unwrap_or(0));
                    let ts = if descending { -ts } else { ts };
                    (e.last_updated.is_none(), ts, Arc::clone(k))
                });
                hits.into_iter().map(|(k, _)| k.to_string()).collect()
            }
        }
    }

    /// The lists that hold every entry a clause can match, or `None` if
    /// the clause cannot be answered from lists (dates, `:not`,
    /// `:missing`, `:contains`).
    fn sources<'a>(
        &'a self,
        t: &'a TypeIndex,
        rt: ResourceType,
        c: &Clause,
    ) -> Option<Sources<'a>> {
        let p = &c.param;
        let mut from = Vec::new();
        let mut list = |name: Posting| {
            if let Some(l) = t.postings.get(&name) {
                from.push(Source::List(l));
            }
        };
        // Whether the lists hold exactly the entries that match: a code or
        // a system alone do; `system|code` and `|code` need checking.
        let exact_tokens = |values: &[TokenMatch]| {
            values
                .iter()
                .all(|v| matches!(v, TokenMatch::Code(_) | TokenMatch::System(_)))
        };
        let exact = match &c.criterion {
            Criterion::Id { ids, negate: false } => {
                for id in ids {
                    let key = format!("{rt}/{id}");
                    if let Some(hit) = self.entries.get_key_value(key.as_str()) {
                        // Lists hold one type; a lone entry is checked.
                        if hit.1.resource_type == rt {
                            from.push(Source::One(hit));
                        }
                    }
                }
                true
            }
            Criterion::Token {
                values,
                negate: false,
            } => {
                values.iter().for_each(|v| list(token_posting(p, v)));
                exact_tokens(values)
            }
            Criterion::RefIdentifier(values) => {
                let name = format!("{p}:identifier");
                values.iter().for_each(|v| list(token_posting(&name, v)));
                exact_tokens(values)
            }
            Criterion::Reference(values) => {
                values.iter().for_each(|v| {
                    list(match v {
                        RefMatch::Key(k) => Posting::Ref(p.clone(), k.clone()),
                        RefMatch::Id(id) => Posting::RefId(p.clone(), id.clone()),
                    })
                });
                true
            }
            Criterion::String { values, mode } if *mode != StringMode::Contains => {
                for v in values {
                    let start = format!("{p}{SEP}{}", normalize(v));
                    if *mode == StringMode::Exact {
                        from.extend(t.strings.get(&start).map(Source::List));
                    } else {
                        from.extend(
                            t.strings
                                .range(start.clone()..)
                                .take_while(|(s, _)| s.starts_with(&start))
                                .map(|(_, l)| Source::List(l)),
                        );
                    }
                }
                // Prefix lists match exactly; `:exact` compares unnormalized.
                *mode == StringMode::Prefix
            }
            _ => return None,
        };
        Some(Sources { from, exact })
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

/// The matches among candidates from several sources, each once (and
/// then in key order).
fn gather<'a>(q: &SearchQuery, skip: Option<usize>, sources: &[Source<'a>]) -> Vec<Hit<'a>> {
    let mut hits: Vec<Hit<'a>> = sources
        .iter()
        .flat_map(Source::hits)
        .filter(|(k, e)| clauses_match(q, skip, k, e))
        .collect();
    if sources.len() > 1 {
        hits.sort_unstable_by(|a, b| a.0.cmp(b.0));
        hits.dedup_by(|a, b| a.0 == b.0);
    }
    hits
}

/// The instants `_lastUpdated` may hold for the query to match, as
/// `[lo, hi)` (`hi == i64::MAX`: no upper bound), if its clauses bound it.
/// A superset: the clauses are still checked on what it lets through.
fn last_updated_window(q: &SearchQuery) -> Option<(i64, i64)> {
    let mut window: Option<(i64, i64)> = None;
    for c in q.clauses.iter().filter(|c| c.param == "_lastUpdated") {
        let Criterion::Date(values) = &c.criterion else {
            continue;
        };
        // For an instant t (the range [t, t+1)), each prefix's matches as
        // one interval of t; the values of a clause are ORed: their hull.
        let mut hull: Option<(i64, i64)> = None;
        for v in values {
            let (s, e) = (v.range.start, v.range.end);
            let w = match v.prefix {
                Prefix::Eq => (s, e),
                Prefix::Ne => (i64::MIN, i64::MAX),
                Prefix::Gt | Prefix::Sa => (e, i64::MAX),
                Prefix::Lt | Prefix::Eb => (i64::MIN, s),
                Prefix::Ge => (s, i64::MAX),
                Prefix::Le => (i64::MIN, e),
                Prefix::Ap => (
                    s.saturating_sub(APPROXIMATELY_MS),
                    e.saturating_add(APPROXIMATELY_MS),
                ),
            };
            hull = Some(hull.map_or(w, |(lo, hi)| (lo.min(w.0), hi.max(w.1))));
        }
        let hull = hull?;
        // Clauses are ANDed: the intersection.
        window = Some(window.map_or(hull, |(lo, hi)| (lo.max(hull.0), hi.min(hull.1))));
    }
    window.map(|(lo, hi)| (lo, hi.max(lo)))
}

/// The places of entries whose `_lastUpdated` lies in `[lo, hi)` (no
/// upper bound when `hi == i64::MAX`; never those without one).
fn window_bounds(lo: i64, hi: i64) -> (Bound<Place>, Bound<Place>) {
    let place = |missing, last_updated| Place {
        missing,
        last_updated,
        key: Arc::from(""),
    };
    let upper = if hi == i64::MAX {
        place(true, i64::MIN)
    } else {
        place(false, hi)
    };
    (Bound::Included(place(false, lo)), Bound::Excluded(upper))
}

/// The matches among entries given in the default order, kept in that
/// order (or its reverse for descending, with ties still by key ascending
/// and entries without `_lastUpdated` still last): no sort needed.
fn walk<'a>(
    items: impl DoubleEndedIterator<Item = (&'a Place, &'a Arc<IndexEntry>)>,
    q: &SearchQuery,
    skip: Option<usize>,
    descending: bool,
) -> Vec<String> {
    let hits = items.filter(|(p, e)| clauses_match(q, skip, &p.key, e));
    if !descending {
        return hits.map(|(p, _)| p.key.to_string()).collect();
    }
    let mut out: Vec<String> = Vec::new();
    let mut missing: Vec<String> = Vec::new();
    let mut run_start = 0;
    let mut run_ts = None;
    for (p, _) in hits.rev() {
        if p.missing {
            missing.push(p.key.to_string());
            continue;
        }
        if run_ts != Some(p.last_updated) {
            out[run_start..].reverse();
            run_start = out.len();
            run_ts = Some(p.last_updated);
        }
        out.push(p.key.to_string());
    }
    out[run_start..].reverse();
    missing.reverse();
    out.extend(missing);
    out
}

/// Sorts matches into the query's order, computing each sort value once.
/// Matches already in key order (`by_key`) are sorted stably on their
/// sort values alone, which leaves ties in key order without comparing
/// keys.
fn sorted(q: &SearchQuery, mut hits: Vec<Hit<'_>>, by_key: bool) -> Vec<String> {
    if !by_key {
        hits.sort_unstable_by(|a, b| a.0.cmp(b.0));
    }
    let order = q.effective_sort();
    let width = order.len();
    let values: Vec<Option<SortValue>> = hits
        .iter()
        .flat_map(|(k, e)| {
            order
                .iter()
                .map(move |(param, descending)| sort_value(param, *descending, k, e))
        })
        .collect();
    let mut rows: Vec<usize> = (0..hits.len()).collect();
    rows.sort_by(|&a, &b| {
        for (i, (_, descending)) in order.iter().enumerate() {
            let o = cmp_sort(&values[a * width + i], &values[b * width + i], *descending);
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
    rows.into_iter().map(|r| hits[r].0.to_string()).collect()
}
