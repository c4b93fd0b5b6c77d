//! The terminology the generator draws from: a few dozen real SNOMED CT,
//! LOINC, RxNorm and CVX codes with their display strings, and the
//! clinical facts attached to them (which drug treats what, what a
//! follow-up measures, reference ranges). Embedded so that generating
//! data never needs a terminology server or a download.

use serde_json::{json, Value};

pub(super) const SNOMED: &str = "http://snomed.info/sct";
pub(super) const LOINC: &str = "http://loinc.org";
pub(super) const UCUM: &str = "http://unitsofmeasure.org";
pub(super) const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";
pub(super) const CVX: &str = "http://hl7.org/fhir/sid/cvx";
pub(super) const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
pub(super) const ACT_PRIORITY: &str = "http://terminology.hl7.org/CodeSystem/v3-ActPriority";
pub(super) const ACT_SITE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActSite";
pub(super) const ROUTE_OF_ADMINISTRATION: &str =
    "http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration";
pub(super) const OBSERVATION_CATEGORY: &str =
    "http://terminology.hl7.org/CodeSystem/observation-category";
pub(super) const INTERPRETATION: &str =
    "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation";
pub(super) const CONDITION_CLINICAL: &str =
    "http://terminology.hl7.org/CodeSystem/condition-clinical";
pub(super) const CONDITION_VER_STATUS: &str =
    "http://terminology.hl7.org/CodeSystem/condition-ver-status";
pub(super) const CONDITION_CATEGORY: &str =
    "http://terminology.hl7.org/CodeSystem/condition-category";
pub(super) const ALLERGY_CLINICAL: &str =
    "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical";
pub(super) const ALLERGY_VERIFICATION: &str =
    "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification";
pub(super) const ALLERGY_TYPE: &str = "http://hl7.org/fhir/allergy-intolerance-type";
pub(super) const PARTICIPANT_TYPE: &str =
    "http://terminology.hl7.org/CodeSystem/provenance-participant-type";
pub(super) const IDENTIFIER_TYPE: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";
pub(super) const MARITAL_STATUS: &str = "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus";
pub(super) const ADMIT_SOURCE: &str = "http://terminology.hl7.org/CodeSystem/admit-source";
pub(super) const DISCHARGE_DISPOSITION: &str =
    "http://terminology.hl7.org/CodeSystem/discharge-disposition";
/// The example organization OID HL7 reserves for documentation, so that
/// synthetic record numbers can never collide with a real assigner.
pub(super) const MRN_SYSTEM: &str = "urn:oid:2.16.840.1.113883.19.5";

/// One coded concept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Code {
    pub system: &'static str,
    pub code: &'static str,
    pub display: &'static str,
}

impl Code {
    pub fn coding(&self) -> Value {
        json!({"system": self.system, "code": self.code, "display": self.display})
    }

    /// A CodeableConcept holding just this coding.
    pub fn concept(&self) -> Value {
        json!({"coding": [self.coding()], "text": self.display})
    }
}

const fn sct(code: &'static str, display: &'static str) -> Code {
    Code {
        system: SNOMED,
        code,
        display,
    }
}

const fn rx(code: &'static str, display: &'static str) -> Code {
    Code {
        system: RXNORM,
        code,
        display,
    }
}

const fn cvx(code: &'static str, display: &'static str) -> Code {
    Code {
        system: CVX,
        code,
        display,
    }
}

pub(super) const fn act(code: &'static str, display: &'static str) -> Code {
    Code {
        system: ACT_CODE,
        code,
        display,
    }
}

// ---------------------------------------------------------------- encounters

pub(super) const CLASS_AMBULATORY: Code = act("AMB", "ambulatory");
pub(super) const CLASS_EMERGENCY: Code = act("EMER", "emergency");
pub(super) const CLASS_INPATIENT: Code = act("IMP", "inpatient encounter");
pub(super) const CLASS_VIRTUAL: Code = act("VR", "virtual");

pub(super) const ENC_CHECK_UP: Code = sct("185349003", "Encounter for check up");
pub(super) const ENC_WELL_CHILD: Code = sct("410620009", "Well child visit");
pub(super) const ENC_FOLLOW_UP: Code = sct("390906007", "Follow-up encounter");
pub(super) const ENC_SYMPTOM: Code = sct("185345009", "Encounter for symptom");
pub(super) const ENC_EMERGENCY: Code = sct("50849002", "Emergency room admission");
pub(super) const ENC_ADMISSION: Code = sct("32485007", "Hospital admission");

pub(super) const PRIORITY_EMERGENCY: Code = Code {
    system: ACT_PRIORITY,
    code: "EM",
    display: "emergency",
};
pub(super) const ADMIT_FROM_EMERGENCY: Code = Code {
    system: ADMIT_SOURCE,
    code: "emd",
    display: "From accident/emergency department",
};
pub(super) const DISCHARGE_HOME: Code = Code {
    system: DISCHARGE_DISPOSITION,
    code: "home",
    display: "Home",
};

// ---------------------------------------------------------------- routes

pub(super) const ROUTE_ORAL: Code = sct("26643006", "Oral route");
pub(super) const ROUTE_RESPIRATORY: Code = sct("447694001", "Respiratory tract route");
pub(super) const ROUTE_SUBCUTANEOUS: Code = sct("34206005", "Subcutaneous route");

// ---------------------------------------------------------------- medications

/// A prescribable drug with the instructions it is usually ordered with.
#[derive(Debug)]
pub(super) struct MedDef {
    pub code: Code,
    pub instructions: &'static str,
    /// Administrations per `period` `period_unit` (FHIR Timing.repeat).
    pub frequency: u32,
    pub period: u32,
    pub period_unit: &'static str,
    pub as_needed: bool,
    pub route: Code,
    /// Amount per administration: value, human unit, UCUM code.
    pub dose: (u32, &'static str, &'static str),
    /// Length of a course in days; 0 for long-term therapy.
    pub course_days: u32,
    /// Penicillin-class, so not given to patients allergic to penicillin.
    pub penicillin: bool,
}

const fn daily(code: Code, instructions: &'static str) -> MedDef {
    MedDef {
        code,
        instructions,
        frequency: 1,
        period: 1,
        period_unit: "d",
        as_needed: false,
        route: ROUTE_ORAL,
        dose: (1, "tablet", "{tbl}"),
        course_days: 0,
        penicillin: false,
    }
}

pub(super) const METFORMIN: MedDef = daily(
    rx(
        "860975",
        "24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet",
    ),
    "Take 1 tablet by mouth once daily with the evening meal",
);
pub(super) const INSULIN: MedDef = MedDef {
    frequency: 2,
    route: ROUTE_SUBCUTANEOUS,
    dose: (10, "IU", "[iU]"),
    ..daily(
        rx(
            "106892",
            "insulin isophane, human 70 UNT/ML / insulin, regular, human 30 UNT/ML Injectable Suspension [Humulin]",
        ),
        "Inject 10 units under the skin twice daily, 30 minutes before breakfast and dinner",
    )
};
pub(super) const LISINOPRIL: MedDef = daily(
    rx("314076", "lisinopril 10 MG Oral Tablet"),
    "Take 1 tablet by mouth once daily",
);
pub(super) const AMLODIPINE: MedDef = daily(
    rx("197361", "amlodipine 5 MG Oral Tablet"),
    "Take 1 tablet by mouth once daily",
);
pub(super) const HYDROCHLOROTHIAZIDE: MedDef = daily(
    rx("310798", "hydrochlorothiazide 25 MG Oral Tablet"),
    "Take 1 tablet by mouth every morning",
);
pub(super) const ATORVASTATIN: MedDef = daily(
    rx("617312", "atorvastatin 10 MG Oral Tablet [Lipitor]"),
    "Take 1 tablet by mouth once daily",
);
pub(super) const SIMVASTATIN: MedDef = daily(
    rx("314231", "simvastatin 10 MG Oral Tablet"),
    "Take 1 tablet by mouth once daily in the evening",
);
pub(super) const ALBUTEROL: MedDef = MedDef {
    period: 4,
    period_unit: "h",
    as_needed: true,
    route: ROUTE_RESPIRATORY,
    dose: (2, "puff", "{puff}"),
    ..daily(
        rx(
            "745679",
            "200 ACTUAT albuterol 0.09 MG/ACTUAT Metered Dose Inhaler",
        ),
        "Inhale 2 puffs every 4 to 6 hours as needed for wheezing or shortness of breath",
    )
};
pub(super) const FLUTICASONE: MedDef = MedDef {
    frequency: 2,
    route: ROUTE_RESPIRATORY,
    dose: (2, "puff", "{puff}"),
    ..daily(
        rx(
            "895994",
            "120 ACTUAT fluticasone propionate 0.044 MG/ACTUAT Metered Dose Inhaler",
        ),
        "Inhale 2 puffs twice daily; rinse mouth after use",
    )
};
pub(super) const SERTRALINE: MedDef = daily(
    rx("312940", "sertraline 25 MG Oral Tablet"),
    "Take 1 tablet by mouth once daily",
);
pub(super) const NAPROXEN: MedDef = MedDef {
    period: 12,
    period_unit: "h",
    as_needed: true,
    ..daily(
        rx("849574", "naproxen sodium 220 MG Oral Tablet"),
        "Take 1 tablet by mouth every 12 hours as needed for joint pain, with food",
    )
};
pub(super) const ACETAMINOPHEN: MedDef = MedDef {
    period: 6,
    period_unit: "h",
    as_needed: true,
    dose: (2, "tablet", "{tbl}"),
    course_days: 7,
    ..daily(
        rx("313782", "acetaminophen 325 MG Oral Tablet"),
        "Take 2 tablets by mouth every 6 hours as needed for pain or fever; no more than 10 tablets a day",
    )
};
pub(super) const IBUPROFEN: MedDef = MedDef {
    period: 6,
    period_unit: "h",
    as_needed: true,
    dose: (2, "tablet", "{tbl}"),
    course_days: 10,
    ..daily(
        rx("310965", "ibuprofen 200 MG Oral Tablet"),
        "Take 2 tablets by mouth every 6 to 8 hours as needed for pain, with food",
    )
};
pub(super) const LEVOTHYROXINE: MedDef = daily(
    rx("966222", "levothyroxine sodium 0.05 MG Oral Tablet"),
    "Take 1 tablet by mouth every morning on an empty stomach",
);
pub(super) const WARFARIN: MedDef = daily(
    rx("855332", "warfarin sodium 5 MG Oral Tablet"),
    "Take 1 tablet by mouth once daily in the evening, or as directed by the anticoagulation clinic",
);
pub(super) const PENICILLIN_V: MedDef = MedDef {
    frequency: 4,
    course_days: 10,
    penicillin: true,
    ..daily(
        rx("834060", "penicillin V potassium 250 MG Oral Tablet"),
        "Take 1 tablet by mouth four times daily for 10 days",
    )
};
pub(super) const AMOXICILLIN: MedDef = MedDef {
    frequency: 3,
    dose: (2, "capsule", "{capsule}"),
    course_days: 7,
    penicillin: true,
    ..daily(
        rx("308182", "amoxicillin 250 MG Oral Capsule"),
        "Take 2 capsules by mouth three times daily for 7 days",
    )
};
pub(super) const AMOXICILLIN_CLAVULANATE: MedDef = MedDef {
    frequency: 3,
    course_days: 10,
    penicillin: true,
    ..daily(
        rx(
            "562251",
            "amoxicillin 250 MG / clavulanate 125 MG Oral Tablet",
        ),
        "Take 1 tablet by mouth every 8 hours for 10 days",
    )
};
pub(super) const AZITHROMYCIN: MedDef = MedDef {
    course_days: 5,
    ..daily(
        rx("308460", "azithromycin 250 MG Oral Tablet"),
        "Take 2 tablets by mouth on day 1, then 1 tablet once daily on days 2 to 5",
    )
};
pub(super) const CIPROFLOXACIN: MedDef = MedDef {
    frequency: 2,
    course_days: 3,
    ..daily(
        rx("309309", "ciprofloxacin 500 MG Oral Tablet"),
        "Take 1 tablet by mouth every 12 hours for 3 days",
    )
};
pub(super) const OXYCODONE_ACETAMINOPHEN: MedDef = MedDef {
    period: 6,
    period_unit: "h",
    as_needed: true,
    course_days: 5,
    ..daily(
        rx(
            "1049221",
            "acetaminophen 325 MG / oxycodone hydrochloride 5 MG Oral Tablet",
        ),
        "Take 1 tablet by mouth every 6 hours as needed for severe pain; do not drive",
    )
};

/// What replaces a penicillin-class antibiotic for a patient allergic to
/// penicillin.
pub(super) const PENICILLIN_ALTERNATIVE: &MedDef = &AZITHROMYCIN;

pub(super) const AMOXICILLIN_SUSPENSION: MedDef = MedDef {
    frequency: 2,
    dose: (5, "mL", "mL"),
    course_days: 10,
    penicillin: true,
    ..daily(
        rx("239191", "amoxicillin 50 MG/ML Oral Suspension"),
        "Give 5 mL by mouth twice daily for 10 days; shake well",
    )
};
pub(super) const AZITHROMYCIN_SUSPENSION: MedDef = MedDef {
    dose: (5, "mL", "mL"),
    course_days: 5,
    ..daily(
        rx("308459", "azithromycin 20 MG/ML Oral Suspension"),
        "Give 5 mL by mouth on day 1, then 2.5 mL once daily on days 2 to 5",
    )
};

/// What a child under 12 is prescribed instead: antibiotics as oral
/// suspensions, and no prescription for pain and fever relievers (given
/// over the counter in children's doses) or opioids.
pub(super) fn for_child(med: &'static MedDef) -> Option<&'static MedDef> {
    let code = med.code.code;
    if [AZITHROMYCIN.code.code, AZITHROMYCIN_SUSPENSION.code.code].contains(&code) {
        Some(&AZITHROMYCIN_SUSPENSION)
    } else if med.penicillin {
        Some(&AMOXICILLIN_SUSPENSION)
    } else if med.route == ROUTE_ORAL {
        None
    } else {
        Some(med)
    }
}

// ---------------------------------------------------------------- procedures

pub(super) const COLONOSCOPY: Code = sct("73761001", "Colonoscopy");
pub(super) const APPENDECTOMY: Code = sct("80146002", "Appendectomy");
pub(super) const MAMMOGRAPHY: Code = sct("71651007", "Mammography");
pub(super) const DEPRESSION_SCREENING: Code = sct("171207006", "Depression screening");
pub(super) const THROAT_CULTURE: Code = sct("117015009", "Throat culture");
pub(super) const IMMOBILIZATION: Code = sct("274474001", "Bone immobilization");
pub(super) const CHEST_X_RAY: Code = sct("399208008", "Plain chest X-ray");
pub(super) const ELECTROCARDIOGRAM: Code = sct("29303009", "Electrocardiographic procedure");
pub(super) const SPIROMETRY: Code = sct("23426006", "Measurement of respiratory function");
pub(super) const MEDICATION_RECONCILIATION: Code = sct("430193006", "Medication reconciliation");

pub(super) const COLON_CANCER_SCREENING: Code =
    sct("275978004", "Screening for malignant neoplasm of colon");
pub(super) const BREAST_CANCER_SCREENING: Code =
    sct("268547008", "Screening for malignant neoplasm of breast");

// ---------------------------------------------------------------- observations

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Category {
    VitalSigns,
    Laboratory,
    Survey,
}

impl Category {
    pub fn concept(self) -> Value {
        let (code, display) = match self {
            Category::VitalSigns => ("vital-signs", "Vital Signs"),
            Category::Laboratory => ("laboratory", "Laboratory"),
            Category::Survey => ("survey", "Survey"),
        };
        json!({"coding": [{"system": OBSERVATION_CATEGORY, "code": code, "display": display}]})
    }
}

/// Everything the generator can measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Measure {
    BloodPressure,
    HeartRate,
    RespiratoryRate,
    Temperature,
    OxygenSaturation,
    Weight,
    Height,
    Bmi,
    HeadCircumference,
    HbA1c,
    Glucose,
    Cholesterol,
    Ldl,
    Hdl,
    Triglycerides,
    Creatinine,
    Egfr,
    Potassium,
    Sodium,
    Chloride,
    CarbonDioxide,
    UreaNitrogen,
    Calcium,
    Hemoglobin,
    Hematocrit,
    Leukocytes,
    Platelets,
    Alt,
    Ast,
    Albumin,
    Bilirubin,
    Tsh,
    Inr,
    AlbuminCreatinineRatio,
    Phq9,
    PainScore,
}

/// How a measure is coded and reported.
pub(super) struct MeasureDef {
    pub loinc: &'static str,
    pub display: &'static str,
    pub category: Category,
    /// UCUM code and the unit as printed.
    pub unit: &'static str,
    pub unit_display: &'static str,
    pub decimals: u8,
    /// Adult reference range; the generator adjusts a few by sex and age.
    pub low: Option<f64>,
    pub high: Option<f64>,
}

impl MeasureDef {
    pub fn code(&self) -> Code {
        Code {
            system: LOINC,
            code: self.loinc,
            display: self.display,
        }
    }
}

pub(super) const SYSTOLIC: Code = Code {
    system: LOINC,
    code: "8480-6",
    display: "Systolic blood pressure",
};
pub(super) const DIASTOLIC: Code = Code {
    system: LOINC,
    code: "8462-4",
    display: "Diastolic blood pressure",
};

#[allow(clippy::too_many_arguments)]
const fn m(
    loinc: &'static str,
    display: &'static str,
    category: Category,
    unit: &'static str,
    unit_display: &'static str,
    decimals: u8,
    low: Option<f64>,
    high: Option<f64>,
) -> MeasureDef {
    MeasureDef {
        loinc,
        display,
        category,
        unit,
        unit_display,
        decimals,
        low,
        high,
    }
}

#[rustfmt::skip]
pub(super) fn measure(measure: Measure) -> MeasureDef {
    use Category::{Laboratory as Lab, Survey, VitalSigns as Vital};
    use Measure::*;
    match measure {
        BloodPressure => m("85354-9", "Blood pressure panel with all children optional", Vital, "mm[Hg]", "mmHg", 0, None, None),
        HeartRate => m("8867-4", "Heart rate", Vital, "/min", "beats/minute", 0, None, None),
        RespiratoryRate => m("9279-1", "Respiratory rate", Vital, "/min", "breaths/minute", 0, None, None),
        Temperature => m("8310-5", "Body temperature", Vital, "Cel", "°C", 1, None, None),
        OxygenSaturation => m("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", Vital, "%", "%", 0, None, None),
        Weight => m("29463-7", "Body weight", Vital, "kg", "kg", 1, None, None),
        Height => m("8302-2", "Body height", Vital, "cm", "cm", 1, None, None),
        Bmi => m("39156-5", "Body mass index (BMI) [Ratio]", Vital, "kg/m2", "kg/m2", 1, None, None),
        HeadCircumference => m("9843-4", "Head Occipital-frontal circumference", Vital, "cm", "cm", 1, None, None),
        HbA1c => m("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", Lab, "%", "%", 1, Some(4.0), Some(5.6)),
        Glucose => m("2339-0", "Glucose [Mass/volume] in Blood", Lab, "mg/dL", "mg/dL", 0, Some(70.0), Some(99.0)),
        Cholesterol => m("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", Lab, "mg/dL", "mg/dL", 0, None, Some(200.0)),
        Ldl => m("18262-6", "Cholesterol in LDL [Mass/volume] in Serum or Plasma by Direct assay", Lab, "mg/dL", "mg/dL", 0, None, Some(130.0)),
        Hdl => m("2085-9", "Cholesterol in HDL [Mass/volume] in Serum or Plasma", Lab, "mg/dL", "mg/dL", 0, Some(40.0), None),
        Triglycerides => m("2571-8", "Triglyceride [Mass/volume] in Serum or Plasma", Lab, "mg/dL", "mg/dL", 0, None, Some(150.0)),
        Creatinine => m("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", Lab, "mg/dL", "mg/dL", 2, Some(0.7), Some(1.3)),
        Egfr => m("33914-3", "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum or Plasma by Creatinine-based formula (MDRD)", Lab, "mL/min/{1.73_m2}", "mL/min/1.73m2", 0, Some(60.0), None),
        Potassium => m("2823-3", "Potassium [Moles/volume] in Serum or Plasma", Lab, "mmol/L", "mmol/L", 1, Some(3.5), Some(5.1)),
        Sodium => m("2951-2", "Sodium [Moles/volume] in Serum or Plasma", Lab, "mmol/L", "mmol/L", 0, Some(136.0), Some(145.0)),
        Chloride => m("2075-0", "Chloride [Moles/volume] in Serum or Plasma", Lab, "mmol/L", "mmol/L", 0, Some(98.0), Some(107.0)),
        CarbonDioxide => m("2028-9", "Carbon dioxide, total [Moles/volume] in Serum or Plasma", Lab, "mmol/L", "mmol/L", 0, Some(22.0), Some(29.0)),
        UreaNitrogen => m("3094-0", "Urea nitrogen [Mass/volume] in Serum or Plasma", Lab, "mg/dL", "mg/dL", 0, Some(7.0), Some(20.0)),
        Calcium => m("17861-6", "Calcium [Mass/volume] in Serum or Plasma", Lab, "mg/dL", "mg/dL", 1, Some(8.6), Some(10.3)),
        Hemoglobin => m("718-7", "Hemoglobin [Mass/volume] in Blood", Lab, "g/dL", "g/dL", 1, Some(13.5), Some(17.5)),
        Hematocrit => m("4544-3", "Hematocrit [Volume Fraction] of Blood by Automated count", Lab, "%", "%", 1, Some(41.0), Some(53.0)),
        Leukocytes => m("6690-2", "Leukocytes [#/volume] in Blood by Automated count", Lab, "10*3/uL", "10*3/uL", 1, Some(4.5), Some(11.0)),
        Platelets => m("777-3", "Platelets [#/volume] in Blood by Automated count", Lab, "10*3/uL", "10*3/uL", 0, Some(150.0), Some(400.0)),
        Alt => m("1742-6", "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma", Lab, "U/L", "U/L", 0, Some(7.0), Some(56.0)),
        Ast => m("1920-8", "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma", Lab, "U/L", "U/L", 0, Some(10.0), Some(40.0)),
        Albumin => m("1751-7", "Albumin [Mass/volume] in Serum or Plasma", Lab, "g/dL", "g/dL", 1, Some(3.5), Some(5.0)),
        Bilirubin => m("1975-2", "Bilirubin.total [Mass/volume] in Serum or Plasma", Lab, "mg/dL", "mg/dL", 1, Some(0.1), Some(1.2)),
        Tsh => m("3016-3", "Thyrotropin [Units/volume] in Serum or Plasma", Lab, "m[IU]/L", "mIU/L", 2, Some(0.4), Some(4.0)),
        Inr => m("6301-6", "INR in Platelet poor plasma by Coagulation assay", Lab, "{INR}", "INR", 1, Some(0.8), Some(1.2)),
        AlbuminCreatinineRatio => m("14959-1", "Microalbumin/Creatinine [Mass Ratio] in Urine", Lab, "mg/g", "mg/g", 0, None, Some(30.0)),
        Phq9 => m("44261-6", "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]", Survey, "{score}", "score", 0, None, None),
        PainScore => m("72514-3", "Pain severity - 0-10 verbal numeric rating [Score] - Reported", Survey, "{score}", "score", 0, None, None),
    }
}

/// What a full set of vital signs measures, most telling first (a visit
/// that must stay small keeps the head of the list).
pub(super) const VITALS: [Measure; 9] = [
    Measure::BloodPressure,
    Measure::HeartRate,
    Measure::Weight,
    Measure::Height,
    Measure::Bmi,
    Measure::RespiratoryRate,
    Measure::Temperature,
    Measure::OxygenSaturation,
    Measure::HeadCircumference,
];

pub(super) const BLOOD_COUNT: [Measure; 4] = [
    Measure::Hemoglobin,
    Measure::Hematocrit,
    Measure::Leukocytes,
    Measure::Platelets,
];

pub(super) const METABOLIC_PANEL: [Measure; 8] = [
    Measure::Glucose,
    Measure::UreaNitrogen,
    Measure::Creatinine,
    Measure::Sodium,
    Measure::Potassium,
    Measure::Chloride,
    Measure::CarbonDioxide,
    Measure::Calcium,
];

pub(super) const LIPID_PANEL: [Measure; 4] = [
    Measure::Cholesterol,
    Measure::Ldl,
    Measure::Hdl,
    Measure::Triglycerides,
];

pub(super) const LIVER_PANEL: [Measure; 4] = [
    Measure::Alt,
    Measure::Ast,
    Measure::Albumin,
    Measure::Bilirubin,
];

// ---------------------------------------------------------------- chronic conditions

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ChronicKind {
    Obesity,
    Hypertension,
    Hyperlipidemia,
    Diabetes,
    Prediabetes,
    ChronicKidneyDisease,
    Asthma,
    Copd,
    Depression,
    Osteoarthritis,
    Hypothyroidism,
    AtrialFibrillation,
}

/// A long-term condition: how it is coded, followed up and treated.
pub(super) struct ChronicDef {
    pub kind: ChronicKind,
    pub code: Code,
    /// Scheduled follow-up visits per year once diagnosed.
    pub follow_ups_per_year: f64,
    /// Therapy steps in the order they are added; each step is one drug
    /// out of interchangeable alternatives.
    pub therapy: &'static [&'static [&'static MedDef]],
    /// What a follow-up for this condition measures.
    pub monitoring: &'static [Measure],
    /// A procedure sometimes done at a follow-up.
    pub procedure: Option<Code>,
}

pub(super) static CHRONIC: [ChronicDef; 12] = [
    ChronicDef {
        kind: ChronicKind::Obesity,
        code: sct("414916001", "Obesity"),
        follow_ups_per_year: 0.5,
        therapy: &[],
        monitoring: &[Measure::Weight, Measure::Bmi],
        procedure: None,
    },
    ChronicDef {
        kind: ChronicKind::Hypertension,
        code: sct("59621000", "Essential hypertension"),
        follow_ups_per_year: 2.0,
        therapy: &[&[&LISINOPRIL, &HYDROCHLOROTHIAZIDE], &[&AMLODIPINE]],
        monitoring: &[
            Measure::BloodPressure,
            Measure::Creatinine,
            Measure::Potassium,
        ],
        procedure: None,
    },
    ChronicDef {
        kind: ChronicKind::Hyperlipidemia,
        code: sct("55822004", "Hyperlipidemia"),
        follow_ups_per_year: 1.0,
        therapy: &[&[&ATORVASTATIN, &SIMVASTATIN]],
        monitoring: &LIPID_PANEL,
        procedure: None,
    },
    ChronicDef {
        kind: ChronicKind::Diabetes,
        code: sct("44054006", "Type 2 diabetes mellitus"),
        follow_ups_per_year: 3.0,
        therapy: &[&[&METFORMIN], &[&INSULIN]],
        monitoring: &[
            Measure::HbA1c,
            Measure::Glucose,
            Measure::Creatinine,
            Measure::AlbuminCreatinineRatio,
        ],
        procedure: None,
    },
    ChronicDef {
        kind: ChronicKind::Prediabetes,
        code: sct("15777000", "Prediabetes"),
        follow_ups_per_year: 1.0,
        therapy: &[],
        monitoring: &[Measure::HbA1c, Measure::Glucose],
        procedure: None,
    },
    ChronicDef {
        kind: ChronicKind::ChronicKidneyDisease,
        code: sct("709044004", "Chronic kidney disease"),
        follow_ups_per_year: 2.0,
        therapy: &[],
        monitoring: &[
            Measure::Creatinine,
            Measure::Egfr,
            Measure::Potassium,
            Measure::Hemoglobin,
        ],
        procedure: None,
    },
    ChronicDef {
        kind: ChronicKind::Asthma,
        code: sct("195967001", "Asthma"),
        follow_ups_per_year: 1.0,
        therapy: &[&[&ALBUTEROL], &[&FLUTICASONE]],
        monitoring: &[Measure::RespiratoryRate, Measure::OxygenSaturation],
        procedure: Some(SPIROMETRY),
    },
    ChronicDef {
        kind: ChronicKind::Copd,
        code: sct("13645005", "Chronic obstructive lung disease"),
        follow_ups_per_year: 2.0,
        therapy: &[&[&ALBUTEROL], &[&FLUTICASONE]],
        monitoring: &[Measure::OxygenSaturation, Measure::RespiratoryRate],
        procedure: Some(SPIROMETRY),
    },
    ChronicDef {
        kind: ChronicKind::Depression,
        code: sct("35489007", "Depressive disorder"),
        follow_ups_per_year: 3.0,
        therapy: &[&[&SERTRALINE]],
        monitoring: &[Measure::Phq9],
        procedure: None,
    },
    ChronicDef {
        kind: ChronicKind::Osteoarthritis,
        code: sct("396275006", "Osteoarthritis"),
        follow_ups_per_year: 1.0,
        therapy: &[&[&NAPROXEN, &ACETAMINOPHEN_LONG_TERM]],
        monitoring: &[Measure::PainScore],
        procedure: None,
    },
    ChronicDef {
        kind: ChronicKind::Hypothyroidism,
        code: sct("40930008", "Hypothyroidism"),
        follow_ups_per_year: 1.0,
        therapy: &[&[&LEVOTHYROXINE]],
        monitoring: &[Measure::Tsh],
        procedure: None,
    },
    ChronicDef {
        kind: ChronicKind::AtrialFibrillation,
        code: sct("49436004", "Atrial fibrillation"),
        follow_ups_per_year: 2.0,
        therapy: &[&[&WARFARIN]],
        monitoring: &[Measure::HeartRate, Measure::Inr],
        procedure: Some(ELECTROCARDIOGRAM),
    },
];

/// Acetaminophen as a standing order for joint pain rather than a short
/// course for a fever.
const ACETAMINOPHEN_LONG_TERM: MedDef = MedDef {
    course_days: 0,
    instructions: "Take 2 tablets by mouth every 6 hours as needed for joint pain; no more than 10 tablets a day",
    ..ACETAMINOPHEN
};

pub(super) fn chronic(kind: ChronicKind) -> &'static ChronicDef {
    CHRONIC
        .iter()
        .find(|d| d.kind == kind)
        .unwrap_or(&CHRONIC[0])
}

// ---------------------------------------------------------------- acute problems

/// Where an acute problem is seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Setting {
    Office,
    Emergency,
    Inpatient,
}

/// A self-limiting problem: one visit, a diagnosis, perhaps a drug and a
/// procedure.
pub(super) struct AcuteDef {
    pub code: Code,
    pub setting: Setting,
    /// Ages (years) at which it is seen.
    pub ages: (f64, f64),
    /// Relative frequency among the problems possible at that age.
    pub weight: u32,
    /// Days until it resolves.
    pub days: (i64, i64),
    pub fever: bool,
    pub infection: bool,
    pub pain: bool,
    pub meds: &'static [&'static MedDef],
    pub procedures: &'static [Code],
    pub labs: &'static [Measure],
    /// Not seen before this day (days since 1970-01-01), e.g. COVID-19.
    pub since_day: i64,
}

const OFFICE: AcuteDef = AcuteDef {
    code: sct("195662009", "Acute viral pharyngitis"),
    setting: Setting::Office,
    ages: (0.0, 120.0),
    weight: 10,
    days: (4, 8),
    fever: true,
    infection: false,
    pain: false,
    meds: &[&ACETAMINOPHEN],
    procedures: &[],
    labs: &[],
    since_day: 0,
};

pub(super) static ACUTE: [AcuteDef; 14] = [
    OFFICE,
    AcuteDef {
        code: sct("43878008", "Streptococcal sore throat"),
        ages: (3.0, 60.0),
        weight: 5,
        days: (7, 10),
        infection: true,
        meds: &[&PENICILLIN_V],
        procedures: &[THROAT_CULTURE],
        ..OFFICE
    },
    AcuteDef {
        code: sct("65363002", "Otitis media"),
        ages: (0.5, 12.0),
        weight: 10,
        days: (5, 10),
        infection: true,
        meds: &[&AMOXICILLIN],
        ..OFFICE
    },
    AcuteDef {
        code: sct("444814009", "Viral sinusitis"),
        ages: (2.0, 120.0),
        weight: 8,
        days: (7, 14),
        fever: false,
        meds: &[],
        ..OFFICE
    },
    AcuteDef {
        code: sct("75498004", "Acute bacterial sinusitis"),
        ages: (5.0, 120.0),
        weight: 3,
        days: (10, 14),
        fever: false,
        infection: true,
        meds: &[&AMOXICILLIN_CLAVULANATE],
        ..OFFICE
    },
    AcuteDef {
        code: sct("10509002", "Acute bronchitis"),
        ages: (1.0, 120.0),
        weight: 7,
        days: (10, 21),
        ..OFFICE
    },
    AcuteDef {
        code: sct("68566005", "Urinary tract infectious disease"),
        ages: (16.0, 120.0),
        weight: 5,
        days: (3, 7),
        fever: false,
        infection: true,
        meds: &[&CIPROFLOXACIN],
        ..OFFICE
    },
    AcuteDef {
        code: sct("44465007", "Sprain of ankle"),
        ages: (6.0, 80.0),
        weight: 4,
        days: (14, 42),
        fever: false,
        pain: true,
        meds: &[&IBUPROFEN],
        procedures: &[IMMOBILIZATION],
        ..OFFICE
    },
    AcuteDef {
        code: sct(
            "840539006",
            "Disease caused by severe acute respiratory syndrome coronavirus 2",
        ),
        weight: 6,
        days: (7, 14),
        // 2020-03-01: no COVID-19 diagnoses before the pandemic.
        since_day: 18_322,
        ..OFFICE
    },
    AcuteDef {
        code: sct("29857009", "Chest pain"),
        setting: Setting::Emergency,
        ages: (30.0, 120.0),
        weight: 2,
        days: (1, 2),
        fever: false,
        meds: &[],
        procedures: &[ELECTROCARDIOGRAM, CHEST_X_RAY],
        labs: &[
            Measure::Hemoglobin,
            Measure::Leukocytes,
            Measure::Potassium,
            Measure::Creatinine,
            Measure::Glucose,
        ],
        ..OFFICE
    },
    AcuteDef {
        code: sct("233604007", "Pneumonia"),
        setting: Setting::Emergency,
        ages: (0.5, 65.0),
        weight: 2,
        days: (10, 21),
        infection: true,
        meds: &[&AZITHROMYCIN],
        procedures: &[CHEST_X_RAY],
        labs: &[Measure::Leukocytes, Measure::Hemoglobin],
        ..OFFICE
    },
    AcuteDef {
        code: sct("233604007", "Pneumonia"),
        setting: Setting::Inpatient,
        ages: (65.0, 120.0),
        weight: 2,
        days: (14, 28),
        infection: true,
        meds: &[&AMOXICILLIN_CLAVULANATE],
        procedures: &[CHEST_X_RAY],
        labs: &[
            Measure::Leukocytes,
            Measure::Hemoglobin,
            Measure::Sodium,
            Measure::Potassium,
            Measure::Creatinine,
            Measure::UreaNitrogen,
            Measure::Glucose,
        ],
        ..OFFICE
    },
    AcuteDef {
        code: sct("74400008", "Appendicitis"),
        setting: Setting::Inpatient,
        ages: (5.0, 60.0),
        weight: 1,
        days: (14, 21),
        infection: true,
        pain: true,
        meds: &[&OXYCODONE_ACETAMINOPHEN],
        procedures: &[APPENDECTOMY],
        labs: &[Measure::Leukocytes, Measure::Hemoglobin],
        ..OFFICE
    },
    AcuteDef {
        code: sct("44465007", "Sprain of ankle"),
        setting: Setting::Emergency,
        ages: (12.0, 80.0),
        weight: 1,
        days: (14, 42),
        fever: false,
        pain: true,
        meds: &[&IBUPROFEN],
        procedures: &[IMMOBILIZATION],
        ..OFFICE
    },
];

// ---------------------------------------------------------------- allergies

pub(super) struct AllergyDef {
    pub code: Code,
    pub category: &'static str,
    pub criticality: &'static str,
    pub manifestations: &'static [Code],
    pub weight: u32,
    /// Usually starts in childhood.
    pub childhood: bool,
}

const HIVES: Code = sct("247472004", "Wheal");
const RASH: Code = sct("271807003", "Eruption of skin");
const ANAPHYLAXIS: Code = sct("39579001", "Anaphylaxis");
const ANGIOEDEMA: Code = sct("41291007", "Angioedema");
const ITCHING: Code = sct("418290006", "Itching");
const NAUSEA: Code = sct("422587007", "Nausea");
const SNEEZING: Code = sct("76067001", "Sneezing");
const COUGH: Code = sct("49727002", "Cough");

pub(super) const PENICILLIN_ALLERGY: Code = sct("91936005", "Allergy to penicillin");

pub(super) static ALLERGIES: [AllergyDef; 9] = [
    AllergyDef {
        code: PENICILLIN_ALLERGY,
        category: "medication",
        criticality: "high",
        manifestations: &[HIVES, RASH, ANAPHYLAXIS],
        weight: 10,
        childhood: false,
    },
    AllergyDef {
        code: sct("91935009", "Allergy to peanut"),
        category: "food",
        criticality: "high",
        manifestations: &[ANAPHYLAXIS, HIVES, ANGIOEDEMA],
        weight: 5,
        childhood: true,
    },
    AllergyDef {
        code: sct("300916003", "Latex allergy"),
        category: "environment",
        criticality: "low",
        manifestations: &[RASH, ITCHING],
        weight: 3,
        childhood: false,
    },
    AllergyDef {
        code: sct("300913006", "Shellfish allergy"),
        category: "food",
        criticality: "high",
        manifestations: &[HIVES, ANGIOEDEMA, NAUSEA],
        weight: 4,
        childhood: false,
    },
    AllergyDef {
        code: sct("91930004", "Allergy to eggs"),
        category: "food",
        criticality: "low",
        manifestations: &[RASH, NAUSEA],
        weight: 3,
        childhood: true,
    },
    AllergyDef {
        code: sct("232350006", "House dust mite allergy"),
        category: "environment",
        criticality: "low",
        manifestations: &[SNEEZING, COUGH],
        weight: 6,
        childhood: true,
    },
    AllergyDef {
        code: sct("232347008", "Dander (animal) allergy"),
        category: "environment",
        criticality: "low",
        manifestations: &[SNEEZING, ITCHING],
        weight: 5,
        childhood: false,
    },
    AllergyDef {
        code: sct("418689008", "Allergy to grass pollen"),
        category: "environment",
        criticality: "low",
        manifestations: &[SNEEZING, COUGH],
        weight: 6,
        childhood: true,
    },
    AllergyDef {
        code: sct("424213003", "Allergy to bee venom"),
        category: "environment",
        criticality: "high",
        manifestations: &[ANAPHYLAXIS, HIVES],
        weight: 2,
        childhood: false,
    },
];

// ---------------------------------------------------------------- vaccines

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Vaccine {
    HepBPediatric,
    DTaP,
    Polio,
    Pneumococcal13,
    Mmr,
    Varicella,
    Hpv,
    Tdap,
    Td,
    Influenza,
    Covid19,
    Zoster,
    Pneumococcal23,
    HepBAdult,
}

pub(super) struct VaccineDef {
    pub code: Code,
    /// Injected under the skin rather than into the muscle.
    pub subcutaneous: bool,
    /// Dose volume in mL.
    pub volume: f64,
}

pub(super) fn vaccine(v: Vaccine) -> VaccineDef {
    let (code, subcutaneous, volume) = match v {
        Vaccine::HepBPediatric => (cvx("08", "Hep B, adolescent or pediatric"), false, 0.5),
        Vaccine::DTaP => (cvx("20", "DTaP"), false, 0.5),
        Vaccine::Polio => (cvx("10", "IPV"), false, 0.5),
        Vaccine::Pneumococcal13 => (cvx("133", "Pneumococcal conjugate PCV 13"), false, 0.5),
        Vaccine::Mmr => (cvx("03", "MMR"), true, 0.5),
        Vaccine::Varicella => (cvx("21", "varicella"), true, 0.5),
        Vaccine::Hpv => (cvx("165", "HPV9"), false, 0.5),
        Vaccine::Tdap => (cvx("115", "Tdap"), false, 0.5),
        Vaccine::Td => (cvx("113", "Td (adult) preservative free"), false, 0.5),
        Vaccine::Influenza => (
            cvx("140", "Influenza, seasonal, injectable, preservative free"),
            false,
            0.5,
        ),
        Vaccine::Covid19 => (
            cvx("208", "COVID-19, mRNA, LNP-S, PF, 30 mcg/0.3 mL dose"),
            false,
            0.3,
        ),
        Vaccine::Zoster => (cvx("187", "zoster vaccine recombinant"), false, 0.5),
        Vaccine::Pneumococcal23 => (
            cvx("33", "pneumococcal polysaccharide vaccine, 23 valent"),
            false,
            0.5,
        ),
        Vaccine::HepBAdult => (cvx("43", "Hep B, adult"), false, 1.0),
    };
    VaccineDef {
        code,
        subcutaneous,
        volume,
    }
}

/// The childhood series: the age in days at which each dose is due, and
/// the age after which a missed dose is no longer caught up.
pub(super) static CHILDHOOD_SERIES: [(Vaccine, &[i64], i64); 8] = [
    (Vaccine::HepBPediatric, &[0, 45, 180], 19 * 365),
    (Vaccine::DTaP, &[61, 122, 183, 456, 1461], 7 * 365),
    (Vaccine::Polio, &[61, 122, 183, 1461], 18 * 365),
    (Vaccine::Pneumococcal13, &[61, 122, 183, 365], 5 * 365),
    (Vaccine::Mmr, &[365, 1461], 19 * 365),
    (Vaccine::Varicella, &[365, 1461], 19 * 365),
    (Vaccine::Hpv, &[4018, 4200], 27 * 365),
    (Vaccine::Tdap, &[4018], 19 * 365),
];
