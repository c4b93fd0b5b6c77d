//! The dashboards' figures, computed from the log (docs/apps.md lists what
//! each one counts). Each figure is one function in [`FIGURES`]; a later
//! workflow (claims, trials, cold chain) adds its own function there and
//! its view in web/src/pages/dashboard.tsx. A function answers `None`
//! when the log holds nothing it can count yet, and the dashboard then
//! does not show it.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use super::{AccessView, LedgerView, RecordView};

/// How recent a lab result must be for a read of it to count as a
/// repeated test avoided.
pub const RECENT_RESULT_SECS: i64 = 90 * 86_400;

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Bar {
    pub label: String,
    pub value: f64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Figure {
    /// Stable id: the web view for it is chosen by this.
    pub id: &'static str,
    pub title: &'static str,
    /// The headline number (`None` when only the chart means something).
    pub value: Option<f64>,
    /// `seconds`, `count` or `percent`.
    pub unit: &'static str,
    /// What the number is, in a sentence.
    pub summary: String,
    /// How it is computed from the log.
    pub method: &'static str,
    pub chart_title: &'static str,
    pub bars: Vec<Bar>,
}

/// Running counts over the access events, updated as the view reads them
/// (so the view does not keep the events themselves).
#[derive(Default, Debug)]
pub struct Tally {
    permits: u64,
    denials: u64,
    break_glass: u64,
    justified: u64,
    break_glass_days: BTreeMap<String, f64>,
    /// (requester, patient) → time of the first denied read not yet followed
    /// by a consented one.
    first_denial: HashMap<(String, String), i64>,
    consented: HashSet<(String, String)>,
    waits: Vec<i64>,
    /// (reader, record) pairs already counted as a repeat test avoided.
    recent_reads: HashSet<(String, String)>,
    recent_read_days: BTreeMap<String, f64>,
}

impl Tally {
    /// Counts one access event; `records` is the view's records so far.
    pub fn access(&mut self, a: &AccessView, records: &BTreeMap<String, RecordView>) {
        match (a.permit, a.break_glass) {
            (true, true) => {
                self.break_glass += 1;
                *self.break_glass_days.entry(day(a.time)).or_default() += 1.0;
            }
            (true, false) => self.permits += 1,
            (false, _) => self.denials += 1,
        }
        if a.justified {
            self.justified += 1;
        }
        if a.action != "read" || a.requester == a.patient {
            return;
        }
        // Time to obtain consent.
        let pair = (a.requester.clone(), a.patient.clone());
        if !self.consented.contains(&pair) {
            if !a.permit && !a.break_glass {
                self.first_denial.entry(pair).or_insert(a.time);
            } else if a.permit && !a.grants.is_empty() {
                if let Some(denied) = self.first_denial.remove(&pair) {
                    self.waits.push(a.time.saturating_sub(denied).max(0));
                    self.consented.insert(pair);
                }
            }
        }
        // Repeat lab tests avoided.
        if !a.permit {
            return;
        }
        for id in &a.records {
            let Some(uploaded) = records
                .get(id)
                .and_then(|r| (r.category == "lab").then_some(r.uploaded_at).flatten())
            else {
                continue;
            };
            let age = a.time.saturating_sub(uploaded);
            if (0..RECENT_RESULT_SECS).contains(&age)
                && self.recent_reads.insert((a.requester.clone(), id.clone()))
            {
                *self.recent_read_days.entry(day(a.time)).or_default() += 1.0;
            }
        }
    }

    fn decisions(&self) -> u64 {
        self.permits + self.denials + self.break_glass
    }
}

type FigureFn = fn(&LedgerView, i64) -> Option<Figure>;

/// Every figure the dashboards know, in display order.
pub const FIGURES: &[FigureFn] = &[
    time_to_consent,
    repeat_tests_avoided,
    decisions,
    break_glass,
    consents,
    erasures,
];

pub fn all(view: &LedgerView, now: i64) -> Vec<Figure> {
    FIGURES.iter().filter_map(|f| f(view, now)).collect()
}

fn median(values: &mut [i64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2] as f64
    } else {
        (values[n / 2 - 1] as f64 + values[n / 2] as f64) / 2.0
    })
}

fn day(time: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(time)
        .map(|t| t.date().to_string())
        .unwrap_or_else(|_| "?".into())
}

fn bars(days: &BTreeMap<String, f64>) -> Vec<Bar> {
    days.iter()
        .map(|(label, value)| Bar {
            label: label.clone(),
            value: *value,
        })
        .collect()
}

/// From a requester's first denied read of a patient's data to their first
/// read permitted by a grant of that patient.
fn time_to_consent(view: &LedgerView, _now: i64) -> Option<Figure> {
    let mut waits = view.tally.waits.clone();
    let buckets: [(&str, i64); 5] = [
        ("under a minute", 60),
        ("under an hour", 3600),
        ("under a day", 86_400),
        ("under a week", 7 * 86_400),
        ("a week or more", i64::MAX),
    ];
    let mut bars: Vec<Bar> = buckets
        .iter()
        .map(|(label, _)| Bar {
            label: (*label).into(),
            value: 0.0,
        })
        .collect();
    for w in &waits {
        if let Some(i) = buckets.iter().position(|(_, limit)| w < limit) {
            bars[i].value += 1.0;
        }
    }
    let count = waits.len();
    let value = median(&mut waits)?;
    Some(Figure {
        id: "time-to-consent",
        title: "Time to obtain consent",
        value: Some(value),
        unit: "seconds",
        summary: format!("median over {count} requester–patient pairs"),
        method: "for each requester and patient: from the requester's first denied read to the first read that a grant of that patient permitted",
        chart_title: "How long requesters waited for consent",
        bars,
    })
}

/// Permitted reads, by someone other than the patient, of a lab result
/// uploaded less than 90 days before: a test that did not need repeating.
fn repeat_tests_avoided(view: &LedgerView, _now: i64) -> Option<Figure> {
    let t = &view.tally;
    if t.decisions() == 0 {
        return None;
    }
    Some(Figure {
        id: "repeat-tests-avoided",
        title: "Repeat lab tests avoided",
        value: Some(t.recent_reads.len() as f64),
        unit: "count",
        summary: "recent lab results a care team could read instead of ordering the test again".into(),
        method: "distinct (reader, lab record) pairs where someone other than the patient was permitted to read a lab result uploaded less than 90 days before",
        chart_title: "Recent results read, by day (UTC)",
        bars: bars(&t.recent_read_days),
    })
}

fn decisions(view: &LedgerView, _now: i64) -> Option<Figure> {
    let t = &view.tally;
    if t.decisions() == 0 {
        return None;
    }
    Some(Figure {
        id: "decisions",
        title: "Access decisions",
        value: Some(t.decisions() as f64),
        unit: "count",
        summary: format!(
            "{} permitted, {} denied, {} emergency (break-glass)",
            t.permits, t.denials, t.break_glass
        ),
        method: "every access event on the log: each upload and read is decided and logged",
        chart_title: "Decisions by outcome",
        bars: vec![
            Bar {
                label: "permitted".into(),
                value: t.permits as f64,
            },
            Bar {
                label: "denied".into(),
                value: t.denials as f64,
            },
            Bar {
                label: "break-glass".into(),
                value: t.break_glass as f64,
            },
        ],
    })
}

fn break_glass(view: &LedgerView, _now: i64) -> Option<Figure> {
    let t = &view.tally;
    if t.decisions() == 0 {
        return None;
    }
    Some(Figure {
        id: "break-glass",
        title: "Emergency access (break-glass)",
        value: Some(t.break_glass as f64),
        unit: "count",
        summary: format!(
            "{} with a written justification, the rest within the hour it opened",
            t.justified
        ),
        method: "access events flagged break_glass: permitted only by the emergency policy, shown first to the patient",
        chart_title: "Break-glass reads by day (UTC)",
        bars: bars(&t.break_glass_days),
    })
}

fn consents(view: &LedgerView, now: i64) -> Option<Figure> {
    if view.grants.is_empty() {
        return None;
    }
    let revoked = view
        .grants
        .values()
        .filter(|g| g.revoked_at.is_some())
        .count();
    let active = view
        .grants
        .values()
        .filter(|g| g.revoked_at.is_none() && g.not_before <= now && now < g.not_after)
        .count();
    let expired = view
        .grants
        .values()
        .filter(|g| g.revoked_at.is_none() && now >= g.not_after)
        .count();
    let pending = view.grants.len() - revoked - active - expired;
    Some(Figure {
        id: "consents",
        title: "Consent grants",
        value: Some(active as f64),
        unit: "count",
        summary: format!("active now, of {} granted", view.grants.len()),
        method: "consent.grant entries, less those a consent.revoke withdrew; active means now is within the grant's period",
        chart_title: "Grants by state",
        bars: vec![
            Bar {
                label: "active".into(),
                value: active as f64,
            },
            Bar {
                label: "not yet started".into(),
                value: pending as f64,
            },
            Bar {
                label: "expired".into(),
                value: expired as f64,
            },
            Bar {
                label: "revoked".into(),
                value: revoked as f64,
            },
        ],
    })
}

fn erasures(view: &LedgerView, _now: i64) -> Option<Figure> {
    if view.records.is_empty() {
        return None;
    }
    let mut categories: BTreeMap<&str, f64> = BTreeMap::new();
    for r in view.records.values() {
        *categories.entry(r.category.as_str()).or_default() += 1.0;
    }
    let erased = view
        .records
        .values()
        .filter(|r| r.erased_at.is_some())
        .count();
    Some(Figure {
        id: "records",
        title: "Records anchored",
        value: Some(view.records.len() as f64),
        unit: "count",
        summary: format!("{erased} erased (keys destroyed, the log still verifies)"),
        method: "record entries (one per record version), by the category their author gave; record.erase entries",
        chart_title: "Records by category",
        bars: categories
            .into_iter()
            .map(|(label, value)| Bar {
                label: label.into(),
                value,
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{access, entry, view};
    use super::*;
    use serde_json::json;

    fn figure<'a>(figures: &'a [Figure], id: &str) -> &'a Figure {
        figures.iter().find(|f| f.id == id).unwrap()
    }

    #[test]
    fn an_empty_log_shows_nothing() {
        assert!(all(&LedgerView::default(), 0).is_empty());
    }

    #[test]
    fn time_to_consent_runs_from_first_denial_to_first_consented_read() {
        let mut permit = access("doc", "pat", "permit", 1_000 + 90);
        permit["grants"] = json!(["g1"]);
        let mut own = access("pat", "pat", "permit", 1_010);
        own["grants"] = json!(["g0"]);
        let entries = vec![
            entry("access", "node", access("doc", "pat", "deny", 1_000)),
            entry("access", "node", access("doc", "pat", "deny", 1_050)),
            entry("access", "node", own),
            entry("access", "node", permit.clone()),
            // A later denial and permit of the same pair do not count again.
            entry("access", "node", access("doc", "pat", "deny", 5_000)),
            entry("access", "node", {
                let mut p = permit.clone();
                p["time"] = json!(9_000);
                p
            }),
            // Another pair, never granted: no figure for it.
            entry("access", "node", access("nurse", "pat", "deny", 1_000)),
        ];
        let figures = all(&view(&entries), 10_000);
        let f = figure(&figures, "time-to-consent");
        assert_eq!(f.value, Some(90.0));
        assert_eq!(f.bars[1].value, 1.0, "90 s is under an hour");
        let d = figure(&figures, "decisions");
        assert_eq!(d.value, Some(7.0));
        assert_eq!(d.bars[1].value, 4.0);
    }

    #[test]
    fn a_recent_lab_result_read_by_the_care_team_counts_once() {
        let day = 86_400;
        let mut upload = access("lab", "pat", "permit", 10 * day);
        upload["action"] = json!("write");
        upload["records"] = json!(["c1"]);
        let mut old_upload = upload.clone();
        old_upload["records"] = json!(["c2"]);
        old_upload["time"] = json!(0);
        let read = |record: &str, time: i64, who: &str| {
            let mut a = access(who, "pat", "permit", time);
            a["records"] = json!([record]);
            entry("access", "node", a)
        };
        let record = |c: &str, category: &str| {
            entry(
                "record",
                "node",
                json!({"commitment": c, "patient": "pat", "author": "lab", "category": category, "resource_type": "Observation"}),
            )
        };
        let entries = vec![
            entry("access", "node", old_upload),
            record("c2", "lab"),
            entry("access", "node", upload),
            record("c1", "lab"),
            read("c1", 20 * day, "doc"),
            read("c1", 21 * day, "doc"),
            read("c1", 21 * day, "pat"),
            read("c2", 200 * day, "doc"),
        ];
        let figures = all(&view(&entries), 300 * day);
        let f = figure(&figures, "repeat-tests-avoided");
        assert_eq!(f.value, Some(1.0));
        assert_eq!(f.bars.len(), 1);
        assert_eq!(f.bars[0].label, "1970-01-21");
        assert_eq!(figure(&figures, "records").value, Some(2.0));
    }

    #[test]
    fn grants_by_state() {
        let grant = |nb: i64, na: i64| {
            entry(
                "consent.grant",
                "pat",
                json!({"patient": "pat", "grantee": "doc", "scope": {}, "actions": ["read"], "purpose": "TREAT", "not_before": nb, "not_after": na}),
            )
        };
        let mut v = view(&[grant(0, 100), grant(0, 10), grant(200, 300)]);
        let id = v
            .grants
            .values()
            .find(|g| g.not_after == 100)
            .unwrap()
            .id
            .clone();
        v.apply(3, &entry("consent.revoke", "pat", json!({"grant": id})));
        let figures = all(&v, 50);
        let f = figure(&figures, "consents");
        assert_eq!(f.value, Some(0.0));
        let values: Vec<f64> = f.bars.iter().map(|b| b.value).collect();
        assert_eq!(values, vec![0.0, 1.0, 1.0, 1.0]);
    }
}
