//! From query parameters to a [`SearchQuery`].
//!
//! Two kinds of problems, told apart because FHIR tells them apart:
//! parameters (or modifiers, sort keys, includes...) the server does not
//! support are dropped with a warning under lenient handling and refused
//! under strict handling; values that are malformed (a date that is no
//! date, an empty token, `_count=x`) are refused under either, since
//! ignoring them would silently widen the search.

use crate::date::parse_date;
use crate::outcome::Issue;
use crate::reference::is_valid_id;
use crate::types::ResourceType;

use super::extract::reference_key;
use super::params::{param, ParamDef, ParamKind};
use super::query::{
    Clause, Criterion, DateMatch, Handling, Include, Prefix, RefMatch, SearchQuery, SortKey,
    StringMode, TokenMatch, TotalMode, MAX_COUNT,
};
use super::text::{shown, split_raw, unescape};

/// Parses the query parameters of a search on `rt` (names and values
/// already percent-decoded, in request order).
///
/// `Ok((query, warnings))`: the query, and warnings about what was
/// dropped (lenient handling) or changed (`_count` above [`MAX_COUNT`]).
/// `Err(issues)`: at least one error (an unsupported parameter under
/// strict handling, or a malformed value under either), followed by any
/// warnings. Diagnostics name the parameter and its value (cut to 64
/// characters).
pub fn parse_query(
    rt: ResourceType,
    params: &[(String, String)],
    handling: Handling,
) -> Result<(SearchQuery, Vec<Issue>), Vec<Issue>> {
    let mut p = Parser {
        rt,
        handling,
        query: SearchQuery::all(rt),
        errors: Vec::new(),
        warnings: Vec::new(),
        seen: Vec::new(),
    };
    for (name, value) in params {
        p.parameter(name, value);
    }
    if p.errors.is_empty() {
        Ok((p.query, p.warnings))
    } else {
        p.errors.extend(p.warnings);
        Err(p.errors)
    }
}

struct Parser {
    rt: ResourceType,
    handling: Handling,
    query: SearchQuery,
    errors: Vec<Issue>,
    warnings: Vec<Issue>,
    /// Control parameters already given (they may appear once).
    seen: Vec<&'static str>,
}

/// The result parameters this parser knows (supported or not).
const CONTROLS: [&str; 9] = [
    "_count",
    "_offset",
    "_sort",
    "_total",
    "_summary",
    "_format",
    "_elements",
    "_include",
    "_revinclude",
];

/// `"name"="value"` for diagnostics.
fn at(name: &str, value: &str) -> String {
    format!("{}={}", shown(name), shown(value))
}

impl Parser {
    /// A malformed value: an error whatever the handling.
    fn malformed(&mut self, name: &str, value: &str, why: impl std::fmt::Display) {
        self.errors
            .push(Issue::error("value", format!("{}: {why}", at(name, value))));
    }

    /// A structural problem with the request: an error whatever the handling.
    fn invalid(&mut self, name: &str, value: &str, why: impl std::fmt::Display) {
        self.errors.push(Issue::error(
            "invalid",
            format!("{}: {why}", at(name, value)),
        ));
    }

    /// Something the server does not support: an error under strict
    /// handling, dropped with a warning under lenient.
    fn unsupported(&mut self, name: &str, value: &str, why: impl std::fmt::Display) {
        let diagnostics = format!("{}: {why}", at(name, value));
        match self.handling {
            Handling::Strict => self.errors.push(Issue::error("not-supported", diagnostics)),
            Handling::Lenient => self.warnings.push(Issue::warning(
                "not-supported",
                format!("{diagnostics}; ignored"),
            )),
        }
    }

    /// Whether a control parameter may still be given (it may appear once).
    fn first(&mut self, control: &'static str, name: &str, value: &str) -> bool {
        if self.seen.contains(&control) {
            self.invalid(name, value, "given more than once");
            return false;
        }
        self.seen.push(control);
        true
    }

    fn parameter(&mut self, name: &str, value: &str) {
        let (base, modifier) = match name.split_once(':') {
            Some((b, m)) => (b, Some(m)),
            None => (name, None),
        };
        if base.contains('.') || modifier.is_some_and(|m| m.contains('.')) {
            return self.unsupported(name, value, "chained parameters are not supported");
        }
        if let Some(control) = CONTROLS.iter().find(|c| **c == base) {
            return self.control(control, modifier, name, value);
        }
        match param(self.rt, base) {
            Some(def) => self.search_parameter(def, modifier, name, value),
            None => self.unsupported(
                name,
                value,
                format!("{} has no search parameter {base:?}", self.rt),
            ),
        }
    }

    fn control(&mut self, base: &'static str, modifier: Option<&str>, name: &str, value: &str) {
        match (base, modifier) {
            ("_include", Some(m)) => {
                return self.unsupported(name, value, format!("_include:{m} is not supported"))
            }
            ("_revinclude", _) => {
                return self.unsupported(name, value, "_revinclude is not supported")
            }
            ("_elements", _) => return self.unsupported(name, value, "_elements is not supported"),
            (_, Some(m)) => {
                return self.unsupported(name, value, format!("{base} takes no modifier {m:?}"))
            }
            _ => {}
        }
        if base != "_include" && !self.first(base, name, value) {
            return;
        }
        match base {
            "_count" => self.count(name, value),
            "_offset" => match parse_number(value) {
                Some(Some(n)) => self.query.offset = n,
                Some(None) => self.malformed(name, value, "too large"),
                None => self.malformed(name, value, "not a non-negative integer"),
            },
            "_sort" => self.sort(name, value),
            "_include" => self.include(name, value),
            "_total" => match value {
                "none" => self.query.total = Some(TotalMode::None),
                "estimate" => self.query.total = Some(TotalMode::Estimate),
                "accurate" => self.query.total = Some(TotalMode::Accurate),
                _ => self.malformed(name, value, "expected none, estimate or accurate"),
            },
            "_summary" => match value {
                "count" => self.query.summary_count = true,
                "false" => {}
                "true" | "text" | "data" => {
                    self.unsupported(name, value, "only _summary=count is supported")
                }
                _ => self.malformed(name, value, "expected true, text, data, count or false"),
            },
            "_format" => match value {
                "json" | "application/json" | "application/fhir+json" | "application/fhir json" => {
                }
                _ => self.errors.push(Issue::error(
                    "not-supported",
                    format!("{}: only JSON is served", at(name, value)),
                )),
            },
            _ => {}
        }
    }

    fn count(&mut self, name: &str, value: &str) {
        match parse_number(value) {
            None => self.malformed(name, value, "not a non-negative integer"),
            Some(Some(n)) if n <= MAX_COUNT => self.query.count = n,
            Some(_) => {
                self.query.count = MAX_COUNT;
                self.warnings.push(Issue::warning(
                    "informational",
                    format!(
                        "{}: pages hold at most {MAX_COUNT}; using {MAX_COUNT}",
                        at(name, value)
                    ),
                ));
            }
        }
    }

    fn sort(&mut self, name: &str, value: &str) {
        for item in value.split(',') {
            let (param_name, descending) = match item.strip_prefix('-') {
                Some(rest) => (rest, true),
                None => (item, false),
            };
            if param_name.is_empty() {
                return self.malformed(name, value, "empty sort key");
            }
            match param(self.rt, param_name) {
                Some(def) if def.kind != ParamKind::Reference => self.query.sort.push(SortKey {
                    param: def.name.to_owned(),
                    descending,
                }),
                Some(_) => self.unsupported(
                    name,
                    value,
                    format!("cannot sort by the reference parameter {param_name:?}"),
                ),
                None => self.unsupported(
                    name,
                    value,
                    format!(
                        "{} has no search parameter {param_name:?} to sort by",
                        self.rt
                    ),
                ),
            }
        }
    }

    fn include(&mut self, name: &str, value: &str) {
        if value == "*" || value.ends_with(":*") {
            return self.unsupported(name, value, "wildcard includes are not supported");
        }
        let mut parts = value.split(':');
        let (Some(source), Some(param_name), target, None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return self.malformed(name, value, "expected Type:parameter[:TargetType]");
        };
        if source.is_empty() || param_name.is_empty() || target == Some("") {
            return self.malformed(name, value, "expected Type:parameter[:TargetType]");
        }
        let Ok(source) = source.parse::<ResourceType>() else {
            return self.unsupported(name, value, format!("{source:?} is not served here"));
        };
        if source != self.rt {
            return self.unsupported(name, value, format!("includes must start from {}", self.rt));
        }
        let target = match target.map(str::parse::<ResourceType>) {
            None => None,
            Some(Ok(t)) => Some(t),
            Some(Err(e)) => return self.unsupported(name, value, e),
        };
        match param(source, param_name) {
            Some(def) if def.kind == ParamKind::Reference => self.query.includes.push(Include {
                source,
                param: def.name.to_owned(),
                target,
            }),
            _ => self.unsupported(
                name,
                value,
                format!("{source} has no reference parameter {param_name:?}"),
            ),
        }
    }

    fn search_parameter(
        &mut self,
        def: &'static ParamDef,
        modifier: Option<&str>,
        name: &str,
        value: &str,
    ) {
        if modifier == Some("missing") {
            return match value {
                "true" => self.push(def, Criterion::Missing(true)),
                "false" => self.push(def, Criterion::Missing(false)),
                _ => self.malformed(name, value, "expected true or false"),
            };
        }
        let raw = split_raw(value, ',');
        let parts: Vec<String> = raw.iter().map(|p| unescape(p)).collect();
        if parts.iter().any(String::is_empty) {
            return self.malformed(name, value, "empty value");
        }
        let criterion = match (def.kind, modifier) {
            (_, None) if def.name == "_id" => self.ids(&parts, false, name, value),
            (_, Some("not")) if def.name == "_id" => self.ids(&parts, true, name, value),
            (ParamKind::Token, None) => {
                self.tokens(&raw, name, value)
                    .map(|values| Criterion::Token {
                        values,
                        negate: false,
                    })
            }
            (ParamKind::Token, Some("not")) => {
                self.tokens(&raw, name, value)
                    .map(|values| Criterion::Token {
                        values,
                        negate: true,
                    })
            }
            (ParamKind::Date, None) => self.dates(&parts, name, value).map(Criterion::Date),
            (ParamKind::String, None | Some("exact") | Some("contains")) => {
                Some(Criterion::String {
                    values: parts,
                    mode: match modifier {
                        Some("exact") => StringMode::Exact,
                        Some("contains") => StringMode::Contains,
                        _ => StringMode::Prefix,
                    },
                })
            }
            (ParamKind::Reference, Some("identifier")) => {
                self.tokens(&raw, name, value).map(Criterion::RefIdentifier)
            }
            (ParamKind::Reference, None) => self
                .references(def, None, &parts, name, value)
                .map(Criterion::Reference),
            (ParamKind::Reference, Some(m)) => match m.parse::<ResourceType>() {
                Ok(t) => self
                    .references(def, Some(t), &parts, name, value)
                    .map(Criterion::Reference),
                Err(_) => {
                    return self.unsupported(
                        name,
                        value,
                        format!("modifier {m:?} is not supported on {}", def.name),
                    )
                }
            },
            (_, Some(m)) => {
                return self.unsupported(
                    name,
                    value,
                    format!("modifier {m:?} is not supported on {}", def.name),
                )
            }
        };
        if let Some(criterion) = criterion {
            self.push(def, criterion);
        }
    }

    fn push(&mut self, def: &ParamDef, criterion: Criterion) {
        self.query.clauses.push(Clause {
            param: def.name.to_owned(),
            criterion,
        });
    }

    fn ids(
        &mut self,
        parts: &[String],
        negate: bool,
        name: &str,
        value: &str,
    ) -> Option<Criterion> {
        if let Some(bad) = parts.iter().find(|id| !is_valid_id(id)) {
            self.malformed(name, value, format!("{} is not a resource id", shown(bad)));
            return None;
        }
        Some(Criterion::Id {
            ids: parts.to_vec(),
            negate,
        })
    }

    /// Tokens from the parts of an OR list as written (escapes kept, so
    /// that `\|` stays part of a system or code).
    fn tokens(&mut self, raw: &[&str], name: &str, value: &str) -> Option<Vec<TokenMatch>> {
        let mut out = Vec::with_capacity(raw.len());
        for part in raw {
            let pieces: Vec<String> = split_raw(part, '|').into_iter().map(unescape).collect();
            let token = match pieces.as_slice() {
                [code] => TokenMatch::Code(code.clone()),
                [system, code] => match (system.is_empty(), code.is_empty()) {
                    (true, true) => {
                        self.malformed(name, value, "empty token");
                        return None;
                    }
                    (true, false) => TokenMatch::NoSystem(code.clone()),
                    (false, true) => TokenMatch::System(system.clone()),
                    (false, false) => TokenMatch::SystemCode(system.clone(), code.clone()),
                },
                _ => {
                    self.malformed(name, value, "a token is [system|]code");
                    return None;
                }
            };
            out.push(token);
        }
        Some(out)
    }

    fn dates(&mut self, parts: &[String], name: &str, value: &str) -> Option<Vec<DateMatch>> {
        let mut out = Vec::with_capacity(parts.len());
        for part in parts {
            let b = part.as_bytes();
            let (prefix, text) = if b.len() >= 2 && b[0].is_ascii_alphabetic() {
                let Some(prefix) = Prefix::ALL
                    .into_iter()
                    .find(|p| part.starts_with(p.as_str()))
                else {
                    self.malformed(
                        name,
                        value,
                        "unknown prefix (eq, ne, gt, lt, ge, le, sa, eb, ap)",
                    );
                    return None;
                };
                (prefix, &part[2..])
            } else {
                (Prefix::Eq, part.as_str())
            };
            match parse_date(text) {
                Ok(range) => out.push(DateMatch {
                    prefix,
                    range,
                    text: text.to_owned(),
                }),
                Err(e) => {
                    self.malformed(name, value, e.reason);
                    return None;
                }
            }
        }
        Some(out)
    }

    /// `Type/id`, an absolute URL ending so, or a bare id: typed by the
    /// `:[Type]` modifier or the parameter's target (`patient`), or else
    /// any type.
    fn references(
        &mut self,
        def: &ParamDef,
        typed: Option<ResourceType>,
        parts: &[String],
        name: &str,
        value: &str,
    ) -> Option<Vec<RefMatch>> {
        if let (Some(t), Some(target)) = (typed, def.target) {
            if t != target {
                self.malformed(
                    name,
                    value,
                    format!("{} only references {target}", def.name),
                );
                return None;
            }
        }
        let want = typed.or(def.target);
        let mut out = Vec::with_capacity(parts.len());
        for part in parts {
            let m = if let Some((t, key)) = reference_key(part) {
                if want.is_some_and(|w| w != t) {
                    self.malformed(
                        name,
                        value,
                        format!(
                            "{} is not a reference to a {}",
                            shown(part),
                            want.map_or("", |w| w.as_str())
                        ),
                    );
                    return None;
                }
                RefMatch::Key(key)
            } else if is_valid_id(part) {
                match want {
                    Some(t) => RefMatch::Key(format!("{t}/{part}")),
                    None => RefMatch::Id(part.clone()),
                }
            } else {
                self.malformed(
                    name,
                    value,
                    format!(
                        "{} is not a reference to a resource served here",
                        shown(part)
                    ),
                );
                return None;
            };
            out.push(m);
        }
        Some(out)
    }
}

/// A non-negative decimal integer: `None` if not one, `Some(None)` if too
/// large for `usize`.
fn parse_number(value: &str) -> Option<Option<usize>> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(value.parse().ok())
}
