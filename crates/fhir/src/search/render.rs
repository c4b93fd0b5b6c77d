//! A query written back as a query string, for a Bundle's `self` and paging
//! links.

use super::query::{Clause, Criterion, Prefix, RefMatch, SearchQuery, StringMode, TokenMatch};
use super::text::{escape, percent_encode};

impl SearchQuery {
    /// The canonical query string of the query as parsed (without `?`):
    /// search parameters sorted by name (repeated ones in the order given),
    /// then `_sort`, `_count` (always), `_offset` (when not 0), `_include`,
    /// `_total` and `_summary=count` when given. Parameters dropped under
    /// lenient handling are not in it, nor is `_format`. Names and values
    /// are percent-encoded; [`super::parse_query`] of its decoded pairs
    /// gives back an equal query.
    pub fn to_query_string(&self) -> String {
        let mut pairs: Vec<(String, String)> = Vec::new();
        let mut clauses: Vec<&Clause> = self.clauses.iter().collect();
        clauses.sort_by(|a, b| a.param.cmp(&b.param));
        for c in clauses {
            pairs.push(clause_pair(c));
        }
        if !self.sort.is_empty() {
            let keys: Vec<String> = self
                .sort
                .iter()
                .map(|k| format!("{}{}", if k.descending { "-" } else { "" }, k.param))
                .collect();
            pairs.push(("_sort".into(), keys.join(",")));
        }
        pairs.push(("_count".into(), self.count.to_string()));
        if self.offset > 0 {
            pairs.push(("_offset".into(), self.offset.to_string()));
        }
        for i in &self.includes {
            let mut v = format!("{}:{}", i.source, i.param);
            if let Some(t) = i.target {
                v.push(':');
                v.push_str(t.as_str());
            }
            pairs.push(("_include".into(), v));
        }
        if let Some(total) = self.total {
            pairs.push(("_total".into(), total.as_str().into()));
        }
        if self.summary_count {
            pairs.push(("_summary".into(), "count".into()));
        }
        pairs
            .iter()
            .map(|(n, v)| format!("{}={}", percent_encode(n), percent_encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

fn token_text(t: &TokenMatch) -> String {
    match t {
        TokenMatch::Code(c) => escape(c),
        TokenMatch::SystemCode(s, c) => format!("{}|{}", escape(s), escape(c)),
        TokenMatch::NoSystem(c) => format!("|{}", escape(c)),
        TokenMatch::System(s) => format!("{}|", escape(s)),
    }
}

fn join<T>(values: &[T], f: impl Fn(&T) -> String) -> String {
    values.iter().map(f).collect::<Vec<_>>().join(",")
}

/// The name (with modifier) and value of one clause.
fn clause_pair(c: &Clause) -> (String, String) {
    let name = &c.param;
    match &c.criterion {
        Criterion::Id { ids, negate } => (
            format!("{name}{}", if *negate { ":not" } else { "" }),
            join(ids, |i| escape(i)),
        ),
        Criterion::Token { values, negate } => (
            format!("{name}{}", if *negate { ":not" } else { "" }),
            join(values, token_text),
        ),
        Criterion::Date(values) => (
            name.clone(),
            join(values, |d| {
                let prefix = if d.prefix == Prefix::Eq {
                    ""
                } else {
                    d.prefix.as_str()
                };
                format!("{prefix}{}", escape(&d.text))
            }),
        ),
        Criterion::Reference(values) => (
            name.clone(),
            join(values, |r| match r {
                RefMatch::Key(k) | RefMatch::Id(k) => escape(k),
            }),
        ),
        Criterion::RefIdentifier(values) => {
            (format!("{name}:identifier"), join(values, token_text))
        }
        Criterion::String { values, mode } => {
            let modifier = match mode {
                StringMode::Prefix => "",
                StringMode::Exact => ":exact",
                StringMode::Contains => ":contains",
            };
            (format!("{name}{modifier}"), join(values, |v| escape(v)))
        }
        Criterion::Missing(m) => (format!("{name}:missing"), m.to_string()),
    }
}
