//! The generator proper. A patient is drawn first (age, sex, body, the
//! long-term conditions they will have and when each began, allergies),
//! then a ten-year history of visits is planned and each visit filled with
//! what such a visit produces: diagnoses, prescriptions, vaccines,
//! procedures and measurements whose values follow the patient's
//! conditions and treatment at that date.
//!
//! The caller asks for an exact number of resources. Visits are weighted
//! by how much they usually produce; the budget is shared out in that
//! proportion, a visit with less room keeps the most telling items (new
//! diagnoses and drugs before routine measurements), and one with more
//! room adds further routine measurements.

use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{json, Map, Value};

use super::calendar::{date, date_time, day_start, year_month, DAY, END, HOUR, MINUTE, YEAR};
use super::codes::{
    self, AcuteDef, Category, ChronicDef, ChronicKind, Code, Measure, MedDef, Setting, Vaccine,
    ALLERGIES, CHILDHOOD_SERIES, UCUM,
};
use super::people::LOCALES;
use super::SyntheticPatient;
use crate::DID_IDENTIFIER_SYSTEM;

/// How far back a history reaches.
const WINDOW: i64 = 10 * YEAR;
const MONTH: i64 = YEAR / 12;
/// Yearly change of an adult's body-mass index.
const BMI_DRIFT: f64 = 0.05;

/// The resource types produced, in the order they are returned: each only
/// refers to types before it (or to earlier resources of its own type).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    Patient,
    Encounter,
    Condition,
    Observation,
    MedicationRequest,
    AllergyIntolerance,
    Immunization,
    Procedure,
}

impl Rank {
    fn index(self) -> usize {
        self as usize
    }

    /// Short tag in ids, so an id says what it names.
    fn tag(self) -> &'static str {
        match self {
            Rank::Patient => "pat",
            Rank::Encounter => "enc",
            Rank::Condition => "cond",
            Rank::Observation => "obs",
            Rank::MedicationRequest => "med",
            Rank::AllergyIntolerance => "alg",
            Rank::Immunization => "imm",
            Rank::Procedure => "proc",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Absent,
    Untreated,
    Treated,
}

/// A long-term condition of this patient.
struct ChronicPlan {
    def: &'static ChronicDef,
    onset: i64,
    /// Assigned up front so that prescriptions written in the visit that
    /// records the condition can already point at it.
    id: String,
    recorded: bool,
    /// Therapy steps started so far.
    steps: usize,
    treated_since: Option<i64>,
    /// Current prescriptions: index into the output and the drug.
    meds: Vec<(usize, &'static MedDef)>,
}

struct AllergyPlan {
    def: &'static codes::AllergyDef,
    onset: i64,
    recorded: bool,
}

#[derive(Clone, Copy)]
enum Visit {
    Wellness,
    FollowUp(usize),
    Virtual(usize),
    Acute(&'static AcuteDef),
    Colonoscopy,
    LabCheck,
}

impl Visit {
    /// Roughly how many resources such a visit yields, itself included.
    fn weight(self) -> usize {
        match self {
            Visit::Wellness => 12,
            Visit::FollowUp(_) => 7,
            Visit::Virtual(_) => 2,
            Visit::Acute(def) => match def.setting {
                Setting::Office => 5,
                Setting::Emergency => 9,
                Setting::Inpatient => 15,
            },
            Visit::Colonoscopy => 3,
            Visit::LabCheck => 8,
        }
    }
}

struct Planned {
    at: i64,
    visit: Visit,
}

/// What emitting an item changes in the patient's state. Applied only to
/// items actually emitted, so that a visit cut short leaves, say, a vaccine
/// due for the next one.
enum Effect {
    None,
    Chronic(usize),
    Allergy(usize),
    StartMed(usize, &'static MedDef),
    RenewMed {
        cond: usize,
        old: usize,
        med: &'static MedDef,
    },
    Vaccine(Vaccine),
    Mammogram,
    Colonoscopy,
}

struct Item {
    rank: Rank,
    value: Value,
    effect: Effect,
}

impl Item {
    fn new(rank: Rank, value: Value) -> Item {
        Item {
            rank,
            value,
            effect: Effect::None,
        }
    }
}

enum Reason {
    None,
    Condition(String),
    Concept(Code),
}

/// The visit being filled.
struct EncCtx {
    id: String,
    start: i64,
    end: i64,
    age: f64,
    in_person: bool,
    acute: Option<&'static AcuteDef>,
    /// Which conditions were present at the start, treated or not.
    health: Vec<(ChronicKind, Status)>,
    measured: Vec<Measure>,
    /// Chronic conditions this visit records.
    recording: Vec<usize>,
    /// Height and weight, drawn once so that BMI agrees with both.
    body: Option<(f64, f64)>,
    hemoglobin: Option<f64>,
}

impl EncCtx {
    fn reference(&self) -> Value {
        json!({"reference": format!("Encounter/{}", self.id)})
    }

    fn status(&self, kind: ChronicKind) -> Status {
        self.health
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(Status::Absent, |(_, s)| *s)
    }
}

struct Gen<'r, R: Rng> {
    rng: &'r mut R,
    pid: String,
    female: bool,
    birth: i64,
    /// Where the records begin: ten years back, or birth.
    start: i64,
    adult_height: f64,
    /// Adult body-mass index at 40.
    bmi: f64,
    smoker: bool,
    chronic: Vec<ChronicPlan>,
    allergies: Vec<AllergyPlan>,
    vaccines: Vec<(Vaccine, i64)>,
    last_mammogram: Option<i64>,
    colonoscopy_done: bool,
    /// Start of the latest visit filled.
    last_start: i64,
    out: Vec<(Rank, Value)>,
    counters: [u32; 8],
}

pub(super) fn generate<R: Rng>(
    rng: &mut R,
    index: u64,
    did: &str,
    target: usize,
) -> SyntheticPatient {
    let patient_id = format!("syn-{index:06}-{:08x}", rng.gen::<u32>());
    let mut g = Gen::new(rng, patient_id.clone());
    let patient = g.patient(index, did);
    g.out.push((Rank::Patient, patient));
    g.fill(target.saturating_sub(1));
    let mut out = g.out;
    // Stable: within a type, resources stay in the order they happened.
    out.sort_by_key(|(rank, _)| *rank);
    SyntheticPatient {
        patient_id,
        resources: out.into_iter().map(|(_, v)| v).collect(),
    }
}

fn normal<R: Rng + ?Sized>(rng: &mut R, mean: f64, sd: f64) -> f64 {
    // Box-Muller; 1 - u keeps the logarithm finite.
    let u1 = 1.0 - rng.gen::<f64>();
    let u2 = rng.gen::<f64>();
    mean + sd * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Piecewise-linear interpolation in a table sorted by x.
fn interpolate(points: &[(f64, f64)], x: f64) -> f64 {
    let Some(&(x0, y0)) = points.first() else {
        return 0.0;
    };
    if x <= x0 {
        return y0;
    }
    for pair in points.windows(2) {
        let ((xa, ya), (xb, yb)) = (pair[0], pair[1]);
        if x <= xb {
            return ya + (yb - ya) * (x - xa) / (xb - xa);
        }
    }
    points.last().map_or(y0, |p| p.1)
}

fn round(value: f64, decimals: u8) -> f64 {
    let scale = 10f64.powi(i32::from(decimals));
    (value * scale).round() / scale
}

/// A JSON number with the given precision: integers stay integers.
fn number(value: f64, decimals: u8) -> Value {
    if decimals == 0 {
        json!(value.round() as i64)
    } else {
        json!(round(value, decimals))
    }
}

fn coded(system: &str, code: &str, display: &str) -> Value {
    json!({"coding": [{"system": system, "code": code, "display": display}]})
}

fn fill_pattern<R: Rng>(rng: &mut R, pattern: &str) -> String {
    pattern
        .chars()
        .map(|c| match c {
            '#' => char::from(b'0' + rng.gen_range(0..10u8)),
            '@' => char::from(b'A' + rng.gen_range(0..26u8)),
            c => c,
        })
        .collect()
}

/// Age at the end of the timeline, in years: children, young and older
/// adults and the old in roughly the proportions of a general practice.
fn sample_age<R: Rng>(rng: &mut R) -> f64 {
    let (low, high) = match rng.gen_range(0..100) {
        0..=21 => (0.0, 18.0),
        22..=56 => (18.0, 45.0),
        57..=81 => (45.0, 65.0),
        _ => (65.0, 96.0),
    };
    rng.gen_range(low..high)
}

// Median growth (age in years → cm, kg, kg/m², cm); a patient follows
// their own percentile, scaled from their adult height and build.
const HEIGHT_FEMALE: [(f64, f64); 14] = [
    (0.0, 49.5),
    (0.5, 65.7),
    (1.0, 74.0),
    (2.0, 86.4),
    (3.0, 95.1),
    (4.0, 102.7),
    (5.0, 109.4),
    (6.0, 115.5),
    (8.0, 127.0),
    (10.0, 138.6),
    (12.0, 151.2),
    (14.0, 159.8),
    (16.0, 162.5),
    (18.0, 163.0),
];
const HEIGHT_MALE: [(f64, f64); 14] = [
    (0.0, 50.0),
    (0.5, 67.6),
    (1.0, 75.7),
    (2.0, 87.8),
    (3.0, 96.1),
    (4.0, 103.3),
    (5.0, 110.0),
    (6.0, 116.0),
    (8.0, 127.3),
    (10.0, 137.8),
    (12.0, 149.1),
    (14.0, 163.2),
    (16.0, 173.0),
    (18.0, 176.0),
];
const INFANT_WEIGHT: [(f64, f64); 6] = [
    (0.0, 3.4),
    (0.25, 6.0),
    (0.5, 7.8),
    (1.0, 9.6),
    (1.5, 10.9),
    (2.0, 12.2),
];
const CHILD_BMI: [(f64, f64); 9] = [
    (2.0, 16.4),
    (4.0, 15.6),
    (6.0, 15.4),
    (8.0, 15.8),
    (10.0, 16.6),
    (12.0, 17.6),
    (14.0, 18.8),
    (16.0, 20.0),
    (18.0, 21.0),
];
const HEAD_CIRCUMFERENCE: [(f64, f64); 6] = [
    (0.0, 34.5),
    (0.25, 40.5),
    (0.5, 43.3),
    (1.0, 46.1),
    (2.0, 48.3),
    (3.0, 49.5),
];

impl<'r, R: Rng> Gen<'r, R> {
    fn new(rng: &'r mut R, pid: String) -> Self {
        let female = rng.gen_bool(0.5);
        let age = sample_age(rng);
        let born = END - ((age * YEAR as f64) as i64).max(2 * DAY);
        let birth = (day_start(born) + rng.gen_range(0..DAY)).min(END - 2 * DAY);
        let adult_height = if female {
            normal(rng, 163.0, 7.0).clamp(145.0, 185.0)
        } else {
            normal(rng, 177.0, 7.5).clamp(155.0, 202.0)
        };
        let bmi = normal(rng, 26.5, 4.5).clamp(17.5, 46.0);
        let smoker = age >= 16.0 && rng.gen_bool(0.18);
        let mut g = Gen {
            rng,
            pid,
            female,
            birth,
            start: (END - WINDOW).max(birth + HOUR),
            adult_height,
            bmi,
            smoker,
            chronic: Vec::new(),
            allergies: Vec::new(),
            vaccines: Vec::new(),
            last_mammogram: None,
            colonoscopy_done: false,
            last_start: birth,
            out: Vec::new(),
            counters: [0; 8],
        };
        g.plan_conditions();
        g.plan_allergies();
        g
    }

    // ------------------------------------------------------------ helpers

    fn age_at(&self, t: i64) -> f64 {
        (t - self.birth) as f64 / YEAR as f64
    }

    /// Adults put on weight slowly until their sixties.
    fn adult_bmi(&self, age: f64) -> f64 {
        self.bmi + (age.min(65.0) - 40.0) * BMI_DRIFT
    }

    fn n(&mut self, mean: f64, sd: f64) -> f64 {
        normal(&mut *self.rng, mean, sd)
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.gen_bool(p.clamp(0.0, 1.0))
    }

    fn next_id(&mut self, rank: Rank) -> String {
        let counter = &mut self.counters[rank.index()];
        *counter += 1;
        format!("{}-{}{}", self.pid, rank.tag(), counter)
    }

    fn subject(&self) -> Value {
        json!({"reference": format!("Patient/{}", self.pid)})
    }

    /// A moment inside the visit, `from`..=`to` minutes after it began.
    fn during(&mut self, enc: &EncCtx, from: i64, to: i64) -> i64 {
        (enc.start + self.rng.gen_range(from..=to) * MINUTE).min(enc.end)
    }

    /// An interval between visits for events happening `rate` times a year.
    fn exp_gap(&mut self, rate: f64) -> i64 {
        let u = 1.0 - self.rng.gen::<f64>();
        ((-u.ln() / rate * YEAR as f64) as i64).max(DAY)
    }

    fn allergic_to_penicillin(&self) -> bool {
        self.allergies
            .iter()
            .any(|a| a.def.code == codes::PENICILLIN_ALLERGY)
    }

    // ------------------------------------------------------------ the patient

    fn plan_conditions(&mut self) {
        use ChronicKind::*;
        let age = self.age_at(END);
        let over = |from: f64| (age - from).max(0.0);
        let obese = age >= 18.0 && self.adult_bmi(age) >= 30.0;
        let obesity_risk = if obese { 0.12 } else { 0.0 };
        let mut kinds = Vec::new();
        if obese {
            kinds.push(Obesity);
        }
        if age >= 25.0 && self.chance((0.06 + over(30.0) * 0.011).min(0.65) + obesity_risk) {
            kinds.push(Hypertension);
        }
        if age >= 25.0 && self.chance((0.05 + over(30.0) * 0.008).min(0.45)) {
            kinds.push(Hyperlipidemia);
        }
        if age >= 25.0 {
            if self.chance((0.03 + over(30.0) * 0.004).min(0.22) + obesity_risk) {
                kinds.push(Diabetes);
            } else if self.chance(0.12 + obesity_risk) {
                kinds.push(Prediabetes);
            }
        }
        let renal_risk = kinds.contains(&Diabetes) || kinds.contains(&Hypertension);
        if age >= 45.0 && self.chance(if renal_risk { 0.18 } else { 0.03 }) {
            kinds.push(ChronicKidneyDisease);
        }
        if age >= 3.0 && self.chance(0.08) {
            kinds.push(Asthma);
        }
        if age >= 45.0 && self.chance(if self.smoker { 0.28 } else { 0.03 }) {
            kinds.push(Copd);
        }
        if age >= 13.0 && self.chance(0.09) {
            kinds.push(Depression);
        }
        if age >= 45.0 && self.chance((0.05 + over(45.0) * 0.006).min(0.35)) {
            kinds.push(Osteoarthritis);
        }
        if age >= 20.0 && self.chance(if self.female { 0.07 } else { 0.02 }) {
            kinds.push(Hypothyroidism);
        }
        if age >= 60.0 && self.chance((0.03 + over(60.0) * 0.004).min(0.15)) {
            kinds.push(AtrialFibrillation);
        }
        for kind in kinds {
            let youngest = match kind {
                Obesity => 18.0,
                Hypertension | Hyperlipidemia | Diabetes | Prediabetes => 25.0,
                ChronicKidneyDisease | Copd | Osteoarthritis => 45.0,
                Asthma => 2.0,
                Depression => 12.0,
                Hypothyroidism => 18.0,
                AtrialFibrillation => 60.0,
            };
            // The square root favours later onsets: most long-term
            // problems are diagnosed late in the span they could begin in.
            // Obesity begins when the body-mass index crosses 30.
            let u: f64 = self.rng.gen();
            let onset_age = match kind {
                Obesity => (40.0 + (30.0 - self.bmi) / BMI_DRIFT)
                    .min(age)
                    .max(youngest),
                _ => youngest + (age - youngest).max(0.0) * u.sqrt(),
            };
            let onset =
                (self.birth + (onset_age * YEAR as f64) as i64).clamp(self.birth + DAY, END - DAY);
            let id = self.next_id(Rank::Condition);
            self.chronic.push(ChronicPlan {
                def: codes::chronic(kind),
                onset,
                id,
                recorded: false,
                steps: 0,
                treated_since: None,
                meds: Vec::new(),
            });
        }
    }

    fn plan_allergies(&mut self) {
        let count = match self.rng.gen_range(0..100) {
            0..=67 => 0,
            68..=92 => 1,
            _ => 2,
        };
        let age = self.age_at(END);
        let mut chosen: Vec<usize> = Vec::new();
        for _ in 0..count {
            let left: Vec<usize> = (0..ALLERGIES.len())
                .filter(|i| !chosen.contains(i))
                .collect();
            if let Ok(&i) = left.choose_weighted(&mut *self.rng, |&i| ALLERGIES[i].weight) {
                chosen.push(i);
            }
        }
        for i in chosen {
            let def = &ALLERGIES[i];
            let span = if def.childhood { age.min(10.0) } else { age };
            let onset = self.birth + (self.rng.gen::<f64>() * span * YEAR as f64) as i64;
            self.allergies.push(AllergyPlan {
                def,
                onset: onset.clamp(self.birth + DAY, END - DAY),
                recorded: false,
            });
        }
    }

    fn patient(&mut self, index: u64, did: &str) -> Value {
        let locale = LOCALES
            .choose_weighted(&mut *self.rng, |l| l.weight)
            .unwrap_or(&LOCALES[0]);
        // One patient in five carries a name from elsewhere than where
        // they live.
        let names = if self.chance(0.2) {
            LOCALES
                .choose_weighted(&mut *self.rng, |l| l.weight)
                .unwrap_or(locale)
        } else {
            locale
        };
        let pool = if self.female {
            names.female
        } else {
            names.male
        };
        let mut given: Vec<&str> = pool.choose(&mut *self.rng).into_iter().copied().collect();
        if self.chance(0.25) {
            if let Some(&second) = pool.choose(&mut *self.rng) {
                if !given.contains(&second) {
                    given.push(second);
                }
            }
        }
        let family = names
            .family
            .choose(&mut *self.rng)
            .copied()
            .unwrap_or("Doe");
        let text = if names.family_first {
            format!("{family} {}", given.join(" "))
        } else {
            format!("{} {family}", given.join(" "))
        };

        let mut address = Map::new();
        address.insert("use".into(), json!("home"));
        address.insert("type".into(), json!("physical"));
        let street = locale
            .streets
            .choose(&mut *self.rng)
            .copied()
            .unwrap_or("Main Street");
        let number = self.rng.gen_range(1..240).to_string();
        address.insert(
            "line".into(),
            json!([locale.line.replace("{n}", &number).replace("{s}", street)]),
        );
        if let Some(city) = locale.cities.choose(&mut *self.rng) {
            address.insert("city".into(), json!(city.name));
            if let Some(state) = city.state {
                address.insert("state".into(), json!(state));
            }
            address.insert(
                "postalCode".into(),
                json!(fill_pattern(&mut *self.rng, city.postal)),
            );
        }
        address.insert("country".into(), json!(locale.country));

        let adult = self.age_at(END) >= 18.0;
        let mut p = Map::new();
        p.insert("resourceType".into(), json!("Patient"));
        p.insert("id".into(), json!(self.pid));
        p.insert(
            "identifier".into(),
            json!([
                {"system": DID_IDENTIFIER_SYSTEM, "value": did},
                {
                    "use": "usual",
                    "type": {
                        "coding": [{"system": codes::IDENTIFIER_TYPE, "code": "MR", "display": "Medical record number"}],
                        "text": "Medical record number"
                    },
                    "system": codes::MRN_SYSTEM,
                    "value": format!("MRN-{index:06}{:03}", self.rng.gen_range(0..1000))
                }
            ]),
        );
        p.insert("active".into(), json!(true));
        p.insert(
            "name".into(),
            json!([{"use": "official", "text": text, "family": family, "given": given}]),
        );
        p.insert(
            "telecom".into(),
            json!([{
                "system": "phone",
                "value": format!("555-{:04}", self.rng.gen_range(0..10_000)),
                "use": if adult { "mobile" } else { "home" }
            }]),
        );
        p.insert(
            "gender".into(),
            json!(if self.female { "female" } else { "male" }),
        );
        p.insert("birthDate".into(), json!(date(self.birth)));
        p.insert("address".into(), json!([address]));
        if adult {
            let widowed = if self.age_at(END) > 60.0 { 25 } else { 2 };
            let (code, display) = match self.rng.gen_range(0..100 + widowed) {
                0..=49 => ("M", "Married"),
                50..=79 => ("S", "Never Married"),
                80..=99 => ("D", "Divorced"),
                _ => ("W", "Widowed"),
            };
            p.insert(
                "maritalStatus".into(),
                coded(codes::MARITAL_STATUS, code, display),
            );
        }
        let (language, language_name) = locale.language;
        p.insert(
            "communication".into(),
            json!([{
                "language": {
                    "coding": [{"system": "urn:ietf:bcp:47", "code": language, "display": language_name}],
                    "text": language_name
                },
                "preferred": true
            }]),
        );
        Value::Object(p)
    }

    // ------------------------------------------------------------ planning

    fn fill(&mut self, budget: usize) {
        let plan = self.plan(budget);
        let mut remaining = budget;
        let mut weight_left: usize = plan.iter().map(|p| p.visit.weight()).sum();
        for (i, planned) in plan.iter().enumerate() {
            // Each visit still to come needs room for at least itself.
            let after = plan.len() - i - 1;
            let weight = planned.visit.weight();
            let share = (remaining * weight + weight_left / 2)
                .checked_div(weight_left)
                .unwrap_or(remaining);
            remaining -= self.visit(planned, share.clamp(1, remaining - after));
            weight_left -= weight;
        }
        // Only when visits could not hold their share (a history of a few
        // days, say): lab checks until the count is reached. Each takes at
        // least itself, so this ends.
        while remaining > 0 {
            let at = self.rng.gen_range(self.start..END);
            let extra = Planned {
                at,
                visit: Visit::LabCheck,
            };
            remaining -= self.visit(&extra, remaining);
        }
    }

    /// Visits whose weights add up to about `budget`: the patient's own
    /// history thinned out at random (so it still spans the years), or
    /// filled up with more follow-ups and problems.
    fn plan(&mut self, budget: usize) -> Vec<Planned> {
        if budget == 0 {
            return Vec::new();
        }
        let natural = self.natural_visits();
        let total: usize = natural.iter().map(|p| p.visit.weight()).sum();
        let mut plan: Vec<Planned> = if total > budget {
            let mut order: Vec<usize> = (0..natural.len()).collect();
            order.shuffle(&mut *self.rng);
            let mut keep = vec![false; natural.len()];
            let mut sum = 0;
            for i in order {
                let w = natural[i].visit.weight();
                if sum + w <= budget {
                    keep[i] = true;
                    sum += w;
                }
            }
            natural
                .into_iter()
                .zip(keep)
                .filter_map(|(p, k)| k.then_some(p))
                .collect()
        } else {
            natural
        };
        let mut sum: usize = plan.iter().map(|p| p.visit.weight()).sum();
        // Shares stretch a little; beyond that, more visits.
        while plan.is_empty() || sum * 5 < budget * 4 {
            let extra = self.extra_visit();
            sum += extra.visit.weight();
            plan.push(extra);
        }
        plan.sort_by_key(|p| p.at);
        plan.truncate(budget);
        plan
    }

    fn natural_visits(&mut self) -> Vec<Planned> {
        let (start, birth) = (self.start, self.birth);
        let mut visits = Vec::new();
        // Well-child visits on the usual schedule, then yearly check-ups
        // for children and the old, less regular ones in between.
        for months in [0.1, 1.0, 2.0, 4.0, 6.0, 9.0, 12.0, 15.0, 18.0, 24.0, 30.0] {
            let at = birth + (months * MONTH as f64) as i64 + self.rng.gen_range(0..5 * DAY);
            if (start..END).contains(&at) {
                visits.push(Planned {
                    at,
                    visit: Visit::Wellness,
                });
            }
        }
        for age in 3..=110i64 {
            let at = birth + age * YEAR + self.rng.gen_range(-20 * DAY..40 * DAY);
            if at >= END {
                break;
            }
            let p = match age {
                3..=17 => 0.9,
                18..=49 => 0.55,
                50..=64 => 0.8,
                _ => 0.9,
            };
            if at >= start && self.chance(p) {
                visits.push(Planned {
                    at,
                    visit: Visit::Wellness,
                });
            }
        }
        for i in 0..self.chronic.len() {
            let rate = self.chronic[i].def.follow_ups_per_year;
            let mut at = self.chronic[i].onset.max(start);
            loop {
                at += self.exp_gap(rate);
                if at >= END {
                    break;
                }
                let visit = if self.age_at(at) >= 16.0 && self.chance(0.12) {
                    Visit::Virtual(i)
                } else {
                    Visit::FollowUp(i)
                };
                visits.push(Planned { at, visit });
            }
        }
        let mut at = start;
        loop {
            let age = self.age_at(at);
            let rate = match age {
                a if a < 5.0 => 2.0,
                a if a < 18.0 => 1.0,
                a if a < 65.0 => 0.7,
                _ => 0.9,
            };
            at += self.exp_gap(rate);
            if at >= END {
                break;
            }
            if let Some(def) = self.pick_acute(at) {
                visits.push(Planned {
                    at,
                    visit: Visit::Acute(def),
                });
            }
        }
        // Colorectal cancer screening, once between 45 and 75.
        let from = (birth + 45 * YEAR).max(start);
        let to = (birth + 75 * YEAR).min(END);
        if from < to && self.chance(0.5) {
            let at = self.rng.gen_range(from..to);
            visits.push(Planned {
                at,
                visit: Visit::Colonoscopy,
            });
        }
        visits.sort_by_key(|p| p.at);
        visits
    }

    fn extra_visit(&mut self) -> Planned {
        let at = self.rng.gen_range(self.start..END);
        let active: Vec<usize> = (0..self.chronic.len())
            .filter(|&i| self.chronic[i].onset <= at)
            .collect();
        let follow_up = if self.chance(0.6) {
            active.choose(&mut *self.rng).copied()
        } else {
            None
        };
        let visit = match follow_up {
            Some(i) => Visit::FollowUp(i),
            None if self.chance(0.5) => self.pick_acute(at).map_or(Visit::LabCheck, Visit::Acute),
            None => Visit::LabCheck,
        };
        Planned { at, visit }
    }

    fn pick_acute(&mut self, at: i64) -> Option<&'static AcuteDef> {
        let age = self.age_at(at);
        let day = at.div_euclid(DAY);
        let eligible: Vec<&'static AcuteDef> = codes::ACUTE
            .iter()
            .filter(|d| age >= d.ages.0 && age < d.ages.1 && day >= d.since_day)
            .collect();
        eligible
            .choose_weighted(&mut *self.rng, |d| d.weight)
            .ok()
            .copied()
    }

    // ------------------------------------------------------------ visits

    fn visit(&mut self, planned: &Planned, share: usize) -> usize {
        let (mut enc, encounter) = self.open(planned);
        let mut items = self.items(planned.visit, &mut enc);
        let room = share.saturating_sub(1);
        if items.len() < room {
            let need = room - items.len();
            self.pad(&mut enc, &mut items, need);
        }
        items.truncate(room);
        let start = enc.start;
        self.emit(Rank::Encounter, encounter, Effect::None, start);
        let count = items.len();
        for item in items {
            self.emit(item.rank, item.value, item.effect, start);
        }
        1 + count
    }

    fn emit(&mut self, rank: Rank, mut value: Value, effect: Effect, at: i64) {
        let index = self.out.len();
        if let Some(resource) = value.as_object_mut() {
            if !resource.get("id").is_some_and(Value::is_string) {
                resource.insert("id".into(), Value::String(self.next_id(rank)));
            }
        }
        self.out.push((rank, value));
        match effect {
            Effect::None => {}
            Effect::Chronic(i) => self.chronic[i].recorded = true,
            Effect::Allergy(i) => self.allergies[i].recorded = true,
            Effect::StartMed(i, med) => {
                let c = &mut self.chronic[i];
                c.steps += 1;
                c.meds.push((index, med));
                c.treated_since.get_or_insert(at);
            }
            Effect::RenewMed { cond, old, med } => {
                if let Some(previous) = self.out[old].1.as_object_mut() {
                    previous.insert("status".into(), json!("completed"));
                }
                let meds = &mut self.chronic[cond].meds;
                meds.retain(|(i, _)| *i != old);
                meds.push((index, med));
            }
            Effect::Vaccine(v) => self.vaccines.push((v, at)),
            Effect::Mammogram => self.last_mammogram = Some(at),
            Effect::Colonoscopy => self.colonoscopy_done = true,
        }
    }

    fn open(&mut self, planned: &Planned) -> (EncCtx, Value) {
        use codes::*;
        let age = self.age_at(planned.at);
        let (class, kind, reason, minutes) = match planned.visit {
            Visit::Wellness => (
                CLASS_AMBULATORY,
                if age < 18.0 {
                    ENC_WELL_CHILD
                } else {
                    ENC_CHECK_UP
                },
                None,
                (20, 60),
            ),
            Visit::FollowUp(c) => (
                CLASS_AMBULATORY,
                ENC_FOLLOW_UP,
                Some(self.chronic[c].def.code),
                (15, 40),
            ),
            Visit::Virtual(c) => (
                CLASS_VIRTUAL,
                ENC_FOLLOW_UP,
                Some(self.chronic[c].def.code),
                (10, 25),
            ),
            Visit::Acute(def) => match def.setting {
                Setting::Office => (CLASS_AMBULATORY, ENC_SYMPTOM, Some(def.code), (15, 40)),
                Setting::Emergency => (CLASS_EMERGENCY, ENC_EMERGENCY, Some(def.code), (120, 480)),
                Setting::Inpatient => (
                    CLASS_INPATIENT,
                    ENC_ADMISSION,
                    Some(def.code),
                    (24 * 60, 5 * 24 * 60),
                ),
            },
            Visit::Colonoscopy => (
                CLASS_AMBULATORY,
                COLONOSCOPY,
                Some(COLON_CANCER_SCREENING),
                (90, 180),
            ),
            Visit::LabCheck => (CLASS_AMBULATORY, ENC_FOLLOW_UP, None, (15, 30)),
        };
        // Office and video visits keep office hours; emergencies do not.
        let scheduled = class == CLASS_AMBULATORY || class == CLASS_VIRTUAL;
        let start = if scheduled {
            day_start(planned.at)
                + self.rng.gen_range(8..17) * HOUR
                + self.rng.gen_range(0..4) * 15 * MINUTE
        } else {
            planned.at
        };
        let duration = self.rng.gen_range(minutes.0..=minutes.1) * MINUTE;
        // Visits start in the order they are filled, so that nothing
        // (a prescription, say) predates what an earlier visit recorded,
        // even when two visits fall on the same day; and all lie between
        // birth and the end of the timeline.
        let earliest = self.birth + HOUR;
        let mut start = start.max(earliest).max(self.last_start + MINUTE);
        if start + duration > END {
            start = (END - duration).max(earliest).max(self.last_start);
        }
        let end = (start + duration).min(END.max(start));
        self.last_start = start;
        let id = self.next_id(Rank::Encounter);

        let mut e = Map::new();
        e.insert("resourceType".into(), json!("Encounter"));
        e.insert("id".into(), json!(id));
        e.insert("status".into(), json!("completed"));
        e.insert("class".into(), json!([class.concept()]));
        if class == CLASS_EMERGENCY {
            e.insert("priority".into(), PRIORITY_EMERGENCY.concept());
        }
        e.insert("type".into(), json!([kind.concept()]));
        e.insert("subject".into(), self.subject());
        e.insert(
            "actualPeriod".into(),
            json!({"start": date_time(start), "end": date_time(end)}),
        );
        if let Some(reason) = reason {
            e.insert(
                "reason".into(),
                json!([{"value": [{"concept": reason.concept()}]}]),
            );
        }
        if class == CLASS_INPATIENT {
            e.insert(
                "admission".into(),
                json!({
                    "admitSource": ADMIT_FROM_EMERGENCY.concept(),
                    "dischargeDisposition": DISCHARGE_HOME.concept()
                }),
            );
        }
        let health = self
            .chronic
            .iter()
            .filter(|c| c.onset <= start)
            .map(|c| {
                let treated = c.treated_since.is_some_and(|t| t <= start);
                let status = if treated {
                    Status::Treated
                } else {
                    Status::Untreated
                };
                (c.def.kind, status)
            })
            .collect();
        let enc = EncCtx {
            id,
            start,
            end,
            age: self.age_at(start),
            in_person: class != CLASS_VIRTUAL,
            acute: match planned.visit {
                Visit::Acute(def) => Some(def),
                _ => None,
            },
            health,
            measured: Vec::new(),
            recording: Vec::new(),
            body: None,
            hemoglobin: None,
        };
        (enc, Value::Object(e))
    }

    /// What a visit of this kind produces, most telling first.
    fn items(&mut self, visit: Visit, enc: &mut EncCtx) -> Vec<Item> {
        use Measure::*;
        let mut items = Vec::new();
        match visit {
            Visit::Wellness => {
                self.record_conditions(enc, &mut items, 1.0);
                self.manage_therapy(enc, &mut items, None);
                self.immunize(enc, &mut items, true);
                self.screen(enc, &mut items);
                self.record_allergies(enc, &mut items);
                self.measure_all(enc, &mut items, &codes::VITALS);
                self.monitor(enc, &mut items, None);
                self.screening_labs(enc, &mut items);
            }
            Visit::FollowUp(c) => {
                self.record_conditions(enc, &mut items, 1.0);
                self.manage_therapy(enc, &mut items, Some(c));
                self.condition_procedures(enc, &mut items, c);
                self.immunize(enc, &mut items, false);
                self.record_allergies(enc, &mut items);
                self.measure_all(enc, &mut items, &[BloodPressure, HeartRate, Weight]);
                self.monitor(enc, &mut items, Some(c));
            }
            Visit::Virtual(c) => {
                self.manage_therapy(enc, &mut items, Some(c));
                self.monitor(enc, &mut items, Some(c));
            }
            Visit::Acute(def) => self.acute(def, enc, &mut items),
            Visit::Colonoscopy => {
                if !self.colonoscopy_done {
                    let item = self.procedure(
                        enc,
                        codes::COLONOSCOPY,
                        Reason::Concept(codes::COLON_CANCER_SCREENING),
                        Effect::Colonoscopy,
                    );
                    items.push(item);
                }
                self.record_allergies(enc, &mut items);
                self.measure_all(
                    enc,
                    &mut items,
                    &[BloodPressure, HeartRate, OxygenSaturation],
                );
            }
            Visit::LabCheck => {
                self.measure_all(enc, &mut items, &[BloodPressure, HeartRate, Weight]);
                self.monitor(enc, &mut items, None);
            }
        }
        items
    }

    /// More routine measurements, for a visit with room to spare.
    fn pad(&mut self, enc: &mut EncCtx, items: &mut Vec<Item>, need: usize) {
        let mut pool: Vec<Measure> = codes::VITALS.to_vec();
        pool.extend(codes::BLOOD_COUNT);
        pool.extend(codes::METABOLIC_PANEL);
        if enc.age >= 10.0 {
            pool.extend(codes::LIPID_PANEL);
            pool.extend(codes::LIVER_PANEL);
        }
        if enc.age >= 18.0 {
            pool.extend([Measure::HbA1c, Measure::Tsh, Measure::Egfr]);
        }
        let mut added = 0;
        for m in pool {
            if added == need {
                break;
            }
            if let Some(item) = self.observe(enc, m) {
                items.push(item);
                added += 1;
            }
        }
    }

    fn acute(&mut self, def: &'static AcuteDef, enc: &mut EncCtx, items: &mut Vec<Item>) {
        use Measure::*;
        let id = self.next_id(Rank::Condition);
        let onset = (enc.start - self.rng.gen_range(6 * HOUR..4 * DAY)).max(self.birth + HOUR);
        let resolved = enc.start + self.rng.gen_range(def.days.0..=def.days.1) * DAY;
        let mut c = Map::new();
        c.insert("resourceType".into(), json!("Condition"));
        c.insert("id".into(), json!(id));
        c.insert(
            "clinicalStatus".into(),
            if resolved < END {
                coded(codes::CONDITION_CLINICAL, "resolved", "Resolved")
            } else {
                coded(codes::CONDITION_CLINICAL, "active", "Active")
            },
        );
        c.insert(
            "verificationStatus".into(),
            coded(codes::CONDITION_VER_STATUS, "confirmed", "Confirmed"),
        );
        c.insert(
            "category".into(),
            json!([coded(
                codes::CONDITION_CATEGORY,
                "encounter-diagnosis",
                "Encounter Diagnosis"
            )]),
        );
        c.insert("code".into(), def.code.concept());
        c.insert("subject".into(), self.subject());
        c.insert("encounter".into(), enc.reference());
        c.insert("onsetDateTime".into(), json!(date_time(onset)));
        if resolved < END {
            c.insert("abatementDateTime".into(), json!(date_time(resolved)));
        }
        c.insert("recordedDate".into(), json!(date_time(enc.start)));
        items.push(Item::new(Rank::Condition, Value::Object(c)));

        for &code in def.procedures {
            let item = self.procedure(enc, code, Reason::Condition(id.clone()), Effect::None);
            items.push(item);
        }
        let allergic = self.allergic_to_penicillin();
        for &med in def.meds {
            let med = if med.penicillin && allergic {
                codes::PENICILLIN_ALTERNATIVE
            } else {
                med
            };
            let med = if enc.age < 12.0 {
                codes::for_child(med)
            } else {
                Some(med)
            };
            if let Some(med) = med {
                let item = self.prescription(enc, med, &id, None, Effect::None);
                items.push(item);
            }
        }
        self.record_allergies(enc, items);
        let vitals: &[Measure] = match def.setting {
            Setting::Office => &[
                Temperature,
                HeartRate,
                RespiratoryRate,
                OxygenSaturation,
                BloodPressure,
                Weight,
            ],
            _ => &[
                BloodPressure,
                HeartRate,
                RespiratoryRate,
                Temperature,
                OxygenSaturation,
                Weight,
            ],
        };
        self.measure_all(enc, items, vitals);
        if def.pain {
            self.measure_all(enc, items, &[PainScore]);
        }
        self.measure_all(enc, items, def.labs);
        // Seeing a doctor for something passing is also when a
        // long-standing problem gets noticed.
        self.record_conditions(enc, items, 0.3);
    }

    // ------------------------------------------------------------ clinical content

    fn record_conditions(&mut self, enc: &mut EncCtx, items: &mut Vec<Item>, p: f64) {
        for i in 0..self.chronic.len() {
            let c = &self.chronic[i];
            if c.recorded || c.onset > enc.start || enc.recording.contains(&i) {
                continue;
            }
            if !self.chance(p) {
                continue;
            }
            let c = &self.chronic[i];
            let mut v = Map::new();
            v.insert("resourceType".into(), json!("Condition"));
            v.insert("id".into(), json!(c.id));
            v.insert(
                "clinicalStatus".into(),
                coded(codes::CONDITION_CLINICAL, "active", "Active"),
            );
            v.insert(
                "verificationStatus".into(),
                coded(codes::CONDITION_VER_STATUS, "confirmed", "Confirmed"),
            );
            v.insert(
                "category".into(),
                json!([coded(
                    codes::CONDITION_CATEGORY,
                    "problem-list-item",
                    "Problem List Item"
                )]),
            );
            v.insert("code".into(), c.def.code.concept());
            v.insert("subject".into(), self.subject());
            v.insert("encounter".into(), enc.reference());
            v.insert("onsetDateTime".into(), json!(date_time(c.onset)));
            v.insert("recordedDate".into(), json!(date_time(enc.start)));
            enc.recording.push(i);
            items.push(Item {
                rank: Rank::Condition,
                value: Value::Object(v),
                effect: Effect::Chronic(i),
            });
        }
    }

    /// Starts, steps up or renews the drugs for known conditions (all, or
    /// just `only`).
    fn manage_therapy(&mut self, enc: &EncCtx, items: &mut Vec<Item>, only: Option<usize>) {
        for i in 0..self.chronic.len() {
            if only.is_some_and(|o| o != i) {
                continue;
            }
            let c = &self.chronic[i];
            let known = c.recorded || enc.recording.contains(&i);
            if !known || c.def.therapy.is_empty() {
                continue;
            }
            let (steps, therapy, id, current) =
                (c.steps, c.def.therapy, c.id.clone(), c.meds.clone());
            // Not every diagnosis gets a drug at once (lifestyle first,
            // watchful waiting), and therapy is stepped up now and then.
            let step = if steps == 0 {
                self.chance(0.85).then_some(0)
            } else if steps < therapy.len() && self.chance(0.15) {
                Some(steps)
            } else {
                None
            };
            match step {
                Some(step) => {
                    if let Some(&med) = therapy[step].choose(&mut *self.rng) {
                        let item = self.prescription(enc, med, &id, None, Effect::StartMed(i, med));
                        items.push(item);
                    }
                }
                None => {
                    for (old, med) in current {
                        if !self.chance(0.4) {
                            continue;
                        }
                        let prior = self.out[old]
                            .1
                            .get("id")
                            .and_then(Value::as_str)
                            .map(str::to_owned);
                        let effect = Effect::RenewMed { cond: i, old, med };
                        let item = self.prescription(enc, med, &id, prior, effect);
                        items.push(item);
                    }
                }
            }
        }
    }

    fn prescription(
        &mut self,
        enc: &EncCtx,
        med: &'static MedDef,
        condition: &str,
        prior: Option<String>,
        effect: Effect,
    ) -> Item {
        let authored = (enc.end - self.rng.gen_range(1..10) * MINUTE).max(enc.start);
        let course = i64::from(med.course_days) * DAY;
        let status = if med.course_days > 0 && authored + course < END {
            "completed"
        } else {
            "active"
        };
        let mut timing = json!({
            "repeat": {"frequency": med.frequency, "period": med.period, "periodUnit": med.period_unit}
        });
        if med.course_days > 0 {
            timing["repeat"]["boundsDuration"] = json!({
                "value": med.course_days, "unit": "days", "system": UCUM, "code": "d"
            });
        }
        let mut dosage = Map::new();
        dosage.insert("sequence".into(), json!(1));
        dosage.insert("text".into(), json!(med.instructions));
        dosage.insert("timing".into(), timing);
        if med.as_needed {
            dosage.insert("asNeeded".into(), json!(true));
        }
        dosage.insert("route".into(), med.route.concept());
        let (amount, unit, ucum) = med.dose;
        dosage.insert(
            "doseAndRate".into(),
            json!([{"doseQuantity": {"value": amount, "unit": unit, "system": UCUM, "code": ucum}}]),
        );

        let mut v = Map::new();
        v.insert("resourceType".into(), json!("MedicationRequest"));
        v.insert("id".into(), Value::Null);
        if let Some(prior) = prior {
            v.insert(
                "priorPrescription".into(),
                json!({"reference": format!("MedicationRequest/{prior}")}),
            );
        }
        v.insert("status".into(), json!(status));
        v.insert("intent".into(), json!("order"));
        v.insert("medication".into(), json!({"concept": med.code.concept()}));
        v.insert("subject".into(), self.subject());
        v.insert("encounter".into(), enc.reference());
        v.insert("authoredOn".into(), json!(date_time(authored)));
        v.insert(
            "reason".into(),
            json!([{"reference": {"reference": format!("Condition/{condition}")}}]),
        );
        let (course_code, course_display) = if med.course_days > 0 {
            ("acute", "Short course (acute) therapy")
        } else {
            ("continuous", "Continuous long term therapy")
        };
        v.insert(
            "courseOfTherapyType".into(),
            coded(
                "http://terminology.hl7.org/CodeSystem/medicationrequest-course-of-therapy",
                course_code,
                course_display,
            ),
        );
        v.insert("dosageInstruction".into(), json!([dosage]));
        if med.course_days == 0 {
            v.insert(
                "dispenseRequest".into(),
                json!({
                    "numberOfRepeatsAllowed": 3,
                    "expectedSupplyDuration": {"value": 30, "unit": "days", "system": UCUM, "code": "d"}
                }),
            );
        }
        Item {
            rank: Rank::MedicationRequest,
            value: Value::Object(v),
            effect,
        }
    }

    fn condition_procedures(&mut self, enc: &EncCtx, items: &mut Vec<Item>, c: usize) {
        let plan = &self.chronic[c];
        let known = plan.recorded || enc.recording.contains(&c);
        if let (true, Some(code)) = (known, plan.def.procedure) {
            let id = plan.id.clone();
            if self.chance(0.3) {
                let item = self.procedure(enc, code, Reason::Condition(id), Effect::None);
                items.push(item);
            }
        }
        let drugs: usize = self.chronic.iter().map(|c| c.meds.len()).sum();
        if drugs >= 2 && self.chance(0.2) {
            let item = self.procedure(
                enc,
                codes::MEDICATION_RECONCILIATION,
                Reason::None,
                Effect::None,
            );
            items.push(item);
        }
    }

    fn procedure(&mut self, enc: &EncCtx, code: Code, reason: Reason, effect: Effect) -> Item {
        let mut v = Map::new();
        v.insert("resourceType".into(), json!("Procedure"));
        v.insert("id".into(), Value::Null);
        v.insert("status".into(), json!("completed"));
        v.insert("code".into(), code.concept());
        v.insert("subject".into(), self.subject());
        v.insert("encounter".into(), enc.reference());
        if code == codes::APPENDECTOMY || code == codes::COLONOSCOPY {
            let (delay, length) = if code == codes::APPENDECTOMY {
                (self.rng.gen_range(120..360), self.rng.gen_range(40..90))
            } else {
                (self.rng.gen_range(15..30), self.rng.gen_range(20..40))
            };
            let start = (enc.start + delay * MINUTE).min(enc.end);
            let end = (start + length * MINUTE).min(enc.end);
            v.insert(
                "occurrencePeriod".into(),
                json!({"start": date_time(start), "end": date_time(end)}),
            );
        } else {
            let at = self.during(enc, 5, 30);
            v.insert("occurrenceDateTime".into(), json!(date_time(at)));
        }
        match reason {
            Reason::None => {}
            Reason::Condition(id) => {
                v.insert(
                    "reason".into(),
                    json!([{"reference": {"reference": format!("Condition/{id}")}}]),
                );
            }
            Reason::Concept(concept) => {
                v.insert("reason".into(), json!([{"concept": concept.concept()}]));
            }
        }
        Item {
            rank: Rank::Procedure,
            value: Value::Object(v),
            effect,
        }
    }

    fn record_allergies(&mut self, enc: &EncCtx, items: &mut Vec<Item>) {
        if !enc.in_person {
            return;
        }
        for i in 0..self.allergies.len() {
            let (def, onset, recorded) = {
                let a = &self.allergies[i];
                (a.def, a.onset, a.recorded)
            };
            if recorded || onset > enc.start {
                continue;
            }
            let mut manifestations: Vec<Value> = def
                .manifestations
                .choose_multiple(&mut *self.rng, 2)
                .map(|m| json!({"concept": m.concept()}))
                .collect();
            if self.chance(0.5) {
                manifestations.truncate(1);
            }
            let severities = if def.criticality == "high" {
                ["moderate", "severe"]
            } else {
                ["mild", "moderate"]
            };
            let severity = severities[usize::from(self.chance(0.5))];
            let (kind, kind_display) = if def.category == "food" && self.chance(0.1) {
                ("intolerance", "Intolerance")
            } else {
                ("allergy", "Allergy")
            };
            let v = json!({
                "resourceType": "AllergyIntolerance",
                "id": null,
                "clinicalStatus": coded(codes::ALLERGY_CLINICAL, "active", "Active"),
                "verificationStatus": coded(codes::ALLERGY_VERIFICATION, "confirmed", "Confirmed"),
                "type": coded(codes::ALLERGY_TYPE, kind, kind_display),
                "category": [def.category],
                "criticality": def.criticality,
                "code": def.code.concept(),
                "patient": self.subject(),
                "encounter": enc.reference(),
                "onsetDateTime": date_time(onset),
                "recordedDate": date_time(enc.start),
                // The patient is who reports an allergy.
                "participant": [{
                    "function": coded(codes::PARTICIPANT_TYPE, "informant", "Informant"),
                    "actor": self.subject()
                }],
                "reaction": [{"manifestation": manifestations, "severity": severity}]
            });
            items.push(Item {
                rank: Rank::AllergyIntolerance,
                value: v,
                effect: Effect::Allergy(i),
            });
        }
    }

    fn screen(&mut self, enc: &mut EncCtx, items: &mut Vec<Item>) {
        let due_mammogram = self
            .last_mammogram
            .is_none_or(|t| enc.start - t > 700 * DAY);
        if self.female && (50.0..75.0).contains(&enc.age) && due_mammogram && self.chance(0.7) {
            let item = self.procedure(
                enc,
                codes::MAMMOGRAPHY,
                Reason::Concept(codes::BREAST_CANCER_SCREENING),
                Effect::Mammogram,
            );
            items.push(item);
        }
        if enc.age >= 12.0 && self.chance(0.35) {
            let item = self.procedure(enc, codes::DEPRESSION_SCREENING, Reason::None, Effect::None);
            items.push(item);
            self.measure_all(enc, items, &[Measure::Phq9]);
        }
    }

    fn immunize(&mut self, enc: &EncCtx, items: &mut Vec<Item>, wellness: bool) {
        for v in self.due_vaccines(enc, wellness) {
            let item = self.immunization(enc, v);
            items.push(item);
        }
    }

    fn doses(&self, v: Vaccine) -> (usize, Option<i64>) {
        let given: Vec<i64> = self
            .vaccines
            .iter()
            .filter(|(w, _)| *w == v)
            .map(|(_, t)| *t)
            .collect();
        (given.len(), given.last().copied())
    }

    fn due_vaccines(&mut self, enc: &EncCtx, wellness: bool) -> Vec<Vaccine> {
        let t = enc.start;
        let age = enc.age;
        let age_days = (t - self.birth) / DAY;
        // Doses due before the records begin count as given then.
        let first_day = (self.start - self.birth) / DAY - 14;
        let mut due = Vec::new();
        if wellness {
            for &(v, schedule, catch_up_until) in &CHILDHOOD_SERIES {
                if age_days > catch_up_until {
                    continue;
                }
                let (given, last) = self.doses(v);
                let before = schedule.iter().filter(|&&d| d < first_day).count();
                let spaced = last.is_none_or(|l| t - l >= 28 * DAY);
                if let Some(&next) = schedule.get(before + given) {
                    if age_days + 14 >= next && spaced {
                        due.push(v);
                    }
                }
            }
            let (td, _) = self.doses(Vaccine::Td);
            let (tdap, _) = self.doses(Vaccine::Tdap);
            if age >= 19.0 && td + tdap == 0 && self.chance(0.12) {
                due.push(if self.chance(0.5) {
                    Vaccine::Tdap
                } else {
                    Vaccine::Td
                });
            }
            let (zoster, last) = self.doses(Vaccine::Zoster);
            // Recombinant zoster vaccine: licensed late 2017, two doses.
            let zoster_era = t >= super::calendar::days_from_civil(2018, 1, 1) * DAY;
            if age >= 50.0 && zoster_era && zoster < 2 {
                let p = if zoster == 0 { 0.25 } else { 0.8 };
                if last.is_none_or(|l| t - l >= 60 * DAY) && self.chance(p) {
                    due.push(Vaccine::Zoster);
                }
            }
            let (ppsv, _) = self.doses(Vaccine::Pneumococcal23);
            if age >= 65.0 && ppsv == 0 && self.chance(0.4) {
                due.push(Vaccine::Pneumococcal23);
            }
            let (hep_b, last) = self.doses(Vaccine::HepBAdult);
            if (19.0..60.0).contains(&age) && hep_b < 3 {
                let go = match last {
                    None => self.chance(0.03),
                    Some(l) => t - l >= 28 * DAY && self.chance(0.9),
                };
                if go {
                    due.push(Vaccine::HepBAdult);
                }
            }
        }
        // Seasonal influenza, September to March, from six months of age.
        let (year, month) = year_month(t);
        let season = if month >= 9 { year } else { year - 1 };
        let in_season = month >= 9 || month <= 3;
        let vaccinated_this_season = self.vaccines.iter().any(|&(v, at)| {
            let (y, m) = year_month(at);
            v == Vaccine::Influenza && (if m >= 9 { y } else { y - 1 }) == season
        });
        if in_season && age_days >= 183 && !vaccinated_this_season {
            let p = if wellness { 0.6 } else { 0.35 };
            if self.chance(p) {
                due.push(Vaccine::Influenza);
            }
        }
        // COVID-19 mRNA vaccine: a primary series of two and one booster,
        // from 2021 until the updated vaccines of autumn 2023.
        let (covid, last) = self.doses(Vaccine::Covid19);
        let covid_era = (super::calendar::days_from_civil(2021, 1, 15) * DAY
            ..super::calendar::days_from_civil(2023, 9, 1) * DAY)
            .contains(&t);
        if covid_era && age >= 12.0 && covid < 3 {
            let ok = match (covid, last) {
                (0, _) => self.chance(0.7),
                (1, Some(l)) => t - l >= 21 * DAY && self.chance(0.9),
                (_, Some(l)) => t - l >= 150 * DAY && self.chance(0.5),
                _ => false,
            };
            if ok {
                due.push(Vaccine::Covid19);
            }
        }
        due
    }

    fn immunization(&mut self, enc: &EncCtx, v: Vaccine) -> Item {
        let def = codes::vaccine(v);
        let at = self.during(enc, 10, 25);
        let left = self.chance(0.5);
        let (site, site_display) = match (enc.age < 3.0, left) {
            (true, true) => ("LT", "left thigh"),
            (true, false) => ("RT", "right thigh"),
            (false, true) => ("LA", "left arm"),
            (false, false) => ("RA", "right arm"),
        };
        let (route, route_display) = if def.subcutaneous {
            ("SQ", "Injection, subcutaneous")
        } else {
            ("IM", "Injection, intramuscular")
        };
        let lot = format!(
            "{}{}{:04}",
            char::from(b'A' + self.rng.gen_range(0..26u8)),
            char::from(b'A' + self.rng.gen_range(0..26u8)),
            self.rng.gen_range(0..10_000)
        );
        let expires = at + self.rng.gen_range(90..400) * DAY;
        let value = json!({
            "resourceType": "Immunization",
            "id": null,
            "status": "completed",
            "vaccineCode": def.code.concept(),
            "lotNumber": lot,
            "expirationDate": date(expires),
            "patient": self.subject(),
            "encounter": enc.reference(),
            "occurrenceDateTime": date_time(at),
            "primarySource": true,
            "site": coded(codes::ACT_SITE, site, site_display),
            "route": coded(codes::ROUTE_OF_ADMINISTRATION, route, route_display),
            "doseQuantity": {"value": def.volume, "unit": "mL", "system": UCUM, "code": "mL"}
        });
        Item {
            rank: Rank::Immunization,
            value,
            effect: Effect::Vaccine(v),
        }
    }

    // ------------------------------------------------------------ measurements

    fn measure_all(&mut self, enc: &mut EncCtx, items: &mut Vec<Item>, measures: &[Measure]) {
        for &m in measures {
            if let Some(item) = self.observe(enc, m) {
                items.push(item);
            }
        }
    }

    /// What follow-ups for the known conditions measure (all, or `only`).
    fn monitor(&mut self, enc: &mut EncCtx, items: &mut Vec<Item>, only: Option<usize>) {
        let mut measures = Vec::new();
        for (i, c) in self.chronic.iter().enumerate() {
            let known = c.recorded || enc.recording.contains(&i);
            if only.is_none_or(|o| o == i) && known && c.onset <= enc.start {
                measures.extend_from_slice(c.def.monitoring);
            }
        }
        self.measure_all(enc, items, &measures);
    }

    fn screening_labs(&mut self, enc: &mut EncCtx, items: &mut Vec<Item>) {
        let age = enc.age;
        if age >= 20.0 && self.chance(0.35) {
            self.measure_all(enc, items, &codes::LIPID_PANEL);
        }
        if age >= 35.0 && self.chance(0.3) {
            self.measure_all(enc, items, &[Measure::HbA1c, Measure::Glucose]);
        }
        if age >= 18.0 && self.chance(0.25) {
            self.measure_all(enc, items, &codes::BLOOD_COUNT);
        }
        if age >= 18.0 && self.chance(0.25) {
            self.measure_all(enc, items, &codes::METABOLIC_PANEL);
        }
        // Anaemia screening around the first birthday.
        if (0.75..1.5).contains(&age) && self.chance(0.5) {
            self.measure_all(enc, items, &[Measure::Hemoglobin]);
        }
    }

    fn observe(&mut self, enc: &mut EncCtx, m: Measure) -> Option<Item> {
        use Measure::*;
        let def = codes::measure(m);
        if enc.measured.contains(&m) || (!enc.in_person && def.category != Category::Survey) {
            return None;
        }
        let applicable = match m {
            BloodPressure => enc.age >= 3.0,
            HeadCircumference => enc.age < 3.0,
            Bmi => enc.age >= 2.0,
            Phq9 => enc.age >= 12.0,
            Inr => enc.status(ChronicKind::AtrialFibrillation) == Status::Treated,
            _ => true,
        };
        if !applicable {
            return None;
        }
        enc.measured.push(m);
        let lab = def.category == Category::Laboratory;
        let effective = if lab {
            self.during(enc, 20, 45)
        } else {
            self.during(enc, 2, 15)
        };
        let mut v = Map::new();
        v.insert("resourceType".into(), json!("Observation"));
        v.insert("id".into(), Value::Null);
        v.insert("status".into(), json!("final"));
        v.insert("category".into(), json!([def.category.concept()]));
        v.insert("code".into(), def.code().concept());
        v.insert("subject".into(), self.subject());
        v.insert("encounter".into(), enc.reference());
        v.insert("effectiveDateTime".into(), json!(date_time(effective)));
        if lab {
            let issued = (effective + self.rng.gen_range(2..30) * HOUR).min(END.max(effective));
            v.insert("issued".into(), json!(date_time(issued)));
        }
        let quantity = |value: f64| {
            json!({
                "value": number(value, def.decimals),
                "unit": def.unit_display,
                "system": UCUM,
                "code": def.unit
            })
        };
        if m == BloodPressure {
            let (systolic, diastolic) = self.blood_pressure(enc);
            v.insert(
                "component".into(),
                json!([
                    {"code": codes::SYSTOLIC.concept(), "valueQuantity": quantity(systolic)},
                    {"code": codes::DIASTOLIC.concept(), "valueQuantity": quantity(diastolic)}
                ]),
            );
        } else if def.category == Category::Survey {
            let score = self.value(m, enc).round() as i64;
            v.insert("valueInteger".into(), json!(score));
        } else {
            let value = round(self.value(m, enc), def.decimals);
            v.insert("valueQuantity".into(), quantity(value));
            if lab {
                let (low, high) = self.reference_range(m, enc.age, def.low, def.high);
                let (code, display) = match (low, high) {
                    (Some(low), _) if value < low => ("L", "Low"),
                    (_, Some(high)) if value > high => ("H", "High"),
                    _ => ("N", "Normal"),
                };
                v.insert(
                    "interpretation".into(),
                    json!([coded(codes::INTERPRETATION, code, display)]),
                );
                let mut range = Map::new();
                if let Some(low) = low {
                    range.insert("low".into(), quantity(low));
                }
                if let Some(high) = high {
                    range.insert("high".into(), quantity(high));
                }
                if !range.is_empty() {
                    v.insert("referenceRange".into(), json!([range]));
                }
            }
        }
        Some(Item::new(Rank::Observation, Value::Object(v)))
    }

    fn reference_range(
        &self,
        m: Measure,
        age: f64,
        low: Option<f64>,
        high: Option<f64>,
    ) -> (Option<f64>, Option<f64>) {
        let by_group = |child: (f64, f64), female: (f64, f64), male: (f64, f64)| {
            let (l, h) = if age < 12.0 {
                child
            } else if self.female {
                female
            } else {
                male
            };
            (Some(l), Some(h))
        };
        match m {
            Measure::Hemoglobin => by_group((11.0, 14.5), (12.0, 15.5), (13.5, 17.5)),
            Measure::Hematocrit => by_group((33.0, 43.0), (36.0, 46.0), (41.0, 53.0)),
            Measure::Creatinine => by_group((0.2, 0.7), (0.5, 1.1), (0.7, 1.3)),
            _ => (low, high),
        }
    }

    fn body(&mut self, enc: &mut EncCtx) -> (f64, f64) {
        if let Some(body) = enc.body {
            return body;
        }
        let age = enc.age;
        let curve: &[(f64, f64)] = if self.female {
            &HEIGHT_FEMALE
        } else {
            &HEIGHT_MALE
        };
        let percentile = self.adult_height / interpolate(curve, 18.0);
        let height = if age >= 18.0 {
            // People shrink a little in old age.
            self.adult_height - (age - 70.0).max(0.0) * 0.1
        } else {
            interpolate(curve, age) * percentile
        } + self.n(0.0, 0.3);
        let build = (self.bmi / 25.0).clamp(0.85, 1.3);
        let weight = if age < 2.0 {
            let sex = if self.female { 0.95 } else { 1.0 };
            interpolate(&INFANT_WEIGHT, age) * sex * build.sqrt() * (1.0 + self.n(0.0, 0.03))
        } else {
            let bmi = if age >= 18.0 {
                self.adult_bmi(age)
            } else {
                interpolate(&CHILD_BMI, age) * build
            } + self.n(0.0, 0.3);
            bmi * (height / 100.0).powi(2)
        };
        let body = (round(height, 1), round(weight, 1));
        enc.body = Some(body);
        body
    }

    fn blood_pressure(&mut self, enc: &EncCtx) -> (f64, f64) {
        let age = enc.age;
        let mut systolic = match enc.status(ChronicKind::Hypertension) {
            Status::Untreated => self.n(150.0, 10.0),
            Status::Treated => self.n(132.0, 8.0),
            Status::Absent if age < 12.0 => self.n(100.0, 7.0),
            Status::Absent if age < 18.0 => self.n(110.0, 8.0),
            Status::Absent => self.n(114.0 + (age - 18.0).min(50.0) * 0.25, 9.0),
        };
        if enc
            .acute
            .is_some_and(|a| a.pain || a.setting == Setting::Emergency)
        {
            systolic += 6.0;
        }
        let systolic = systolic.clamp(80.0, 200.0);
        // Diastolic pressure rises with systolic.
        let diastolic = (systolic * 0.55 + self.n(10.0, 5.0)).clamp(45.0, systolic - 25.0);
        (systolic, diastolic)
    }

    fn hemoglobin(&mut self, enc: &mut EncCtx) -> f64 {
        if let Some(hb) = enc.hemoglobin {
            return hb;
        }
        let base = if enc.age < 12.0 {
            self.n(12.6, 0.8)
        } else if self.female {
            self.n(13.6, 0.9)
        } else {
            self.n(15.1, 1.0)
        };
        let ckd = enc.status(ChronicKind::ChronicKidneyDisease) != Status::Absent;
        let hb = (base - if ckd { 2.0 } else { 0.0 }).clamp(7.5, 18.5);
        enc.hemoglobin = Some(hb);
        hb
    }

    /// A plausible value of `m` for this patient at this visit: follows
    /// their conditions, whether treated, the acute problem if any, age
    /// and sex.
    fn value(&mut self, m: Measure, enc: &mut EncCtx) -> f64 {
        use ChronicKind as K;
        use Measure::*;
        use Status::{Absent, Treated, Untreated};
        let age = enc.age;
        let fever = enc.acute.is_some_and(|a| a.fever);
        let infection = enc.acute.is_some_and(|a| a.infection);
        let emergency = enc.acute.is_some_and(|a| a.setting != Setting::Office);
        let pneumonia = enc.acute.is_some_and(|a| a.code.code == "233604007");
        // A copy, so that measuring (which caches height and weight in the
        // visit) can go on while this is consulted.
        let health = enc.health.clone();
        let present = |k: K| health.iter().any(|(kind, _)| *kind == k);
        match m {
            BloodPressure => self.blood_pressure(enc).0,
            HeartRate => {
                let base = match age {
                    a if a < 1.0 => self.n(132.0, 12.0),
                    a if a < 3.0 => self.n(112.0, 10.0),
                    a if a < 12.0 => self.n(92.0, 10.0),
                    _ => self.n(73.0, 9.0),
                };
                let rhythm = match enc.status(K::AtrialFibrillation) {
                    Untreated => self.n(38.0, 12.0),
                    Treated => self.n(6.0, 6.0),
                    Absent => 0.0,
                };
                let stress = if fever { 15.0 } else { 0.0 } + if emergency { 8.0 } else { 0.0 };
                (base + rhythm + stress).clamp(42.0, 195.0)
            }
            RespiratoryRate => {
                let base = match age {
                    a if a < 1.0 => self.n(38.0, 5.0),
                    a if a < 3.0 => self.n(28.0, 4.0),
                    a if a < 12.0 => self.n(21.0, 3.0),
                    _ => self.n(15.0, 2.0),
                };
                let lungs =
                    if present(K::Copd) { 4.0 } else { 0.0 } + if pneumonia { 8.0 } else { 0.0 };
                (base + lungs).clamp(10.0, 64.0)
            }
            Temperature => {
                if fever {
                    self.n(38.6, 0.5).clamp(38.0, 40.3)
                } else {
                    self.n(36.8, 0.25).clamp(36.1, 37.4)
                }
            }
            OxygenSaturation => {
                let drop = if present(K::Copd) {
                    self.n(6.0, 1.5)
                } else {
                    0.0
                } + if pneumonia { self.n(5.0, 1.5) } else { 0.0 };
                (self.n(98.0, 0.8) - drop.max(0.0)).clamp(84.0, 100.0)
            }
            Height => self.body(enc).0,
            Weight => self.body(enc).1,
            Bmi => {
                let (height, weight) = self.body(enc);
                weight / (height / 100.0).powi(2)
            }
            HeadCircumference => {
                let sex = if self.female { 0.98 } else { 1.0 };
                interpolate(&HEAD_CIRCUMFERENCE, age) * sex + self.n(0.0, 0.6)
            }
            HbA1c => match (enc.status(K::Diabetes), enc.status(K::Prediabetes)) {
                (Untreated, _) => self.n(8.4, 1.0).clamp(6.5, 13.5),
                (Treated, _) => self.n(7.0, 0.6).clamp(5.8, 11.0),
                (Absent, Absent) => self.n(5.2, 0.25).clamp(4.3, 5.6),
                (Absent, _) => self.n(6.0, 0.2).clamp(5.7, 6.4),
            },
            Glucose => match (enc.status(K::Diabetes), enc.status(K::Prediabetes)) {
                (Untreated, _) => self.n(178.0, 35.0).clamp(126.0, 380.0),
                (Treated, _) => self.n(138.0, 20.0).clamp(90.0, 250.0),
                (Absent, Absent) => self.n(88.0, 7.0).clamp(65.0, 99.0),
                (Absent, _) => self.n(110.0, 6.0).clamp(100.0, 125.0),
            },
            Cholesterol => match enc.status(K::Hyperlipidemia) {
                _ if age < 18.0 => self.n(155.0, 20.0).clamp(110.0, 199.0),
                Untreated => self.n(248.0, 20.0).clamp(205.0, 330.0),
                Treated => self.n(182.0, 18.0).clamp(130.0, 240.0),
                Absent => self.n(182.0, 22.0).clamp(125.0, 239.0),
            },
            Ldl => match enc.status(K::Hyperlipidemia) {
                _ if age < 18.0 => self.n(90.0, 15.0).clamp(50.0, 129.0),
                Untreated => self.n(168.0, 18.0).clamp(131.0, 240.0),
                Treated => self.n(92.0, 15.0).clamp(55.0, 150.0),
                Absent => self.n(108.0, 20.0).clamp(50.0, 159.0),
            },
            Hdl => {
                let base = if self.female {
                    self.n(58.0, 10.0)
                } else {
                    self.n(48.0, 9.0)
                };
                (base - if present(K::Diabetes) { 4.0 } else { 0.0 }).clamp(25.0, 95.0)
            }
            Triglycerides => {
                let base = if enc.status(K::Hyperlipidemia) == Untreated {
                    self.n(215.0, 45.0).clamp(150.0, 500.0)
                } else {
                    self.n(115.0, 35.0).clamp(40.0, 300.0)
                };
                base + if present(K::Diabetes) { 30.0 } else { 0.0 }
            }
            Creatinine => {
                if age < 12.0 {
                    self.n(0.45, 0.08).clamp(0.2, 0.8)
                } else if present(K::ChronicKidneyDisease) {
                    self.n(1.9, 0.4).clamp(1.3, 4.2)
                } else if self.female {
                    self.n(0.8, 0.12).clamp(0.5, 1.2)
                } else {
                    self.n(1.0, 0.13).clamp(0.65, 1.4)
                }
            }
            Egfr => {
                if present(K::ChronicKidneyDisease) {
                    self.n(44.0, 8.0).clamp(15.0, 59.0)
                } else {
                    (self.n(100.0, 10.0) - (age - 40.0).max(0.0) * 0.6).clamp(60.0, 140.0)
                }
            }
            Potassium => {
                let renal = if present(K::ChronicKidneyDisease) {
                    0.3
                } else {
                    0.0
                };
                (self.n(4.2, 0.3) + renal).clamp(3.2, 5.8)
            }
            Sodium => self.n(140.0, 2.0).clamp(131.0, 148.0),
            Chloride => self.n(103.0, 2.5).clamp(95.0, 110.0),
            CarbonDioxide => self.n(25.0, 2.0).clamp(19.0, 31.0),
            UreaNitrogen => {
                if present(K::ChronicKidneyDisease) {
                    self.n(34.0, 8.0).clamp(20.0, 70.0)
                } else {
                    self.n(14.0, 4.0).clamp(5.0, 24.0)
                }
            }
            Calcium => self.n(9.5, 0.35).clamp(8.3, 10.6),
            Hemoglobin => self.hemoglobin(enc),
            Hematocrit => {
                let hb = self.hemoglobin(enc);
                (hb * 2.95 + self.n(0.0, 1.0)).clamp(22.0, 56.0)
            }
            Leukocytes => {
                if infection {
                    self.n(14.0, 3.0).clamp(10.5, 25.0)
                } else {
                    self.n(7.0, 1.6).clamp(3.8, 11.0)
                }
            }
            Platelets => self.n(250.0, 50.0).clamp(140.0, 450.0),
            Alt => self.n(24.0, 8.0).clamp(7.0, 70.0),
            Ast => self.n(22.0, 6.0).clamp(10.0, 55.0),
            Albumin => self.n(4.3, 0.3).clamp(3.3, 5.2),
            Bilirubin => self.n(0.7, 0.25).clamp(0.2, 1.6),
            Tsh => match enc.status(K::Hypothyroidism) {
                Untreated => self.n(9.0, 2.5).clamp(4.6, 25.0),
                Treated => self.n(2.4, 1.0).clamp(0.5, 5.5),
                Absent => self.n(1.9, 0.8).clamp(0.45, 4.2),
            },
            Inr => match enc.status(K::AtrialFibrillation) {
                Treated => self.n(2.5, 0.4).clamp(1.4, 4.2),
                _ => self.n(1.0, 0.07).clamp(0.8, 1.2),
            },
            AlbuminCreatinineRatio => {
                if present(K::ChronicKidneyDisease) {
                    self.n(120.0, 60.0).clamp(30.0, 600.0)
                } else if present(K::Diabetes) {
                    self.n(28.0, 22.0).clamp(3.0, 250.0)
                } else {
                    self.n(10.0, 5.0).clamp(2.0, 29.0)
                }
            }
            Phq9 => match enc.status(K::Depression) {
                Untreated => self.n(16.0, 3.0).clamp(10.0, 27.0),
                Treated => self.n(8.0, 3.0).clamp(1.0, 19.0),
                Absent => self.n(3.0, 2.0).clamp(0.0, 9.0),
            },
            PainScore => {
                if enc.acute.is_some_and(|a| a.pain) {
                    self.n(6.5, 1.5).clamp(3.0, 10.0)
                } else {
                    match enc.status(K::Osteoarthritis) {
                        Untreated => self.n(6.0, 1.5).clamp(3.0, 9.0),
                        Treated => self.n(4.0, 1.5).clamp(1.0, 8.0),
                        Absent => self.n(1.0, 1.0).clamp(0.0, 4.0),
                    }
                }
            }
        }
    }
}
