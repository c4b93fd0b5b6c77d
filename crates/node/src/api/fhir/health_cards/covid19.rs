//! What `https://smarthealth.cards#covid19` narrows a card to: COVID-19
//! vaccines by CVX code, and qualitative COVID-19 lab tests by LOINC code,
//! from the SMART Health Cards value sets
//! `http://hl7.org/fhir/uv/smart-health-cards-and-links/ValueSet/immunization-covid-cvx`
//! and `.../ValueSet/lab-qualitative-test-covid` (version 1.0.0).

pub const CVX_SYSTEM: &str = "http://hl7.org/fhir/sid/cvx";
pub const LOINC_SYSTEM: &str = "http://loinc.org";

pub const VACCINE_CODES: &[&str] = &[
    "207", "208", "210", "211", "212", "217", "218", "219", "221", "225", "226", "227", "228",
    "229", "230", "300", "301", "302", "501", "502", "503", "504", "505", "506", "507", "508",
    "509", "510", "511", "512", "513", "514", "515", "516", "517", "518", "519", "520",
];

pub const LAB_TEST_CODES: &[&str] = &[
    "94307-6", "94308-4", "94309-2", "94310-0", "94314-2", "94315-9", "94316-7", "94500-6",
    "94502-2", "94507-1", "94508-9", "94532-9", "94533-7", "94534-5", "94547-7", "94558-4",
    "94559-2", "94562-6", "94563-4", "94564-2", "94565-9", "94639-2", "94640-0", "94641-8",
    "94647-5", "94660-8", "94661-6", "94756-4", "94757-2", "94758-0", "94759-8", "94760-6",
    "94761-4", "94762-2", "94763-0", "94765-5", "94766-3", "94767-1", "94768-9", "94822-4",
    "94845-5", "95125-1", "95209-3", "95406-5", "95409-9", "95411-5", "95416-4", "95423-0",
    "95424-8", "95425-5", "95542-7", "95608-6", "95609-4", "95823-1", "95824-9", "95825-6",
    "95970-0", "95971-8", "96091-4", "96119-3", "96120-1", "96121-9", "96122-7", "96123-5",
    "96448-6", "96603-6", "96752-1", "96763-8", "96765-3", "96797-6", "96829-7", "96957-6",
    "96958-4", "96986-5", "97097-0", "97098-8", "98069-8", "98131-6", "98132-4", "98493-0",
    "98494-8", "99596-9", "99597-7", "99772-6",
];

/// A token search value matching any of `codes` in `system`
/// (`system|a,system|b,...`).
pub fn any_of(system: &str, codes: &[&str]) -> String {
    codes
        .iter()
        .map(|code| format!("{system}|{code}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_lists_are_sorted_and_distinct() {
        for list in [VACCINE_CODES, LAB_TEST_CODES] {
            let mut sorted = list.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted, list);
        }
        assert_eq!(
            any_of(CVX_SYSTEM, &["207", "208"]),
            "http://hl7.org/fhir/sid/cvx|207,http://hl7.org/fhir/sid/cvx|208"
        );
    }
}
