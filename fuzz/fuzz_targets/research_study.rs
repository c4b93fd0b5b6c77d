//! A research study as a researcher publishes it to a node: arbitrary bytes
//! to `hygeia_node::api::research::parse_study`. No panic; every refusal
//! has a code; accepted criteria name the researcher's verifier identifier
//! and serialize to JSON that `Criteria::parse` reads back unchanged.
#![no_main]

use hygeia_credentials::zk::Criteria;
use hygeia_node::api::research::{parse_study, study_verifier};
use libfuzzer_sys::fuzz_target;

const RESEARCHER: &str = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK";

fuzz_target!(|data: &[u8]| {
    match parse_study(data, RESEARCHER) {
        Ok(criteria) => {
            assert_eq!(
                criteria.challenge.verifier,
                study_verifier(RESEARCHER, &criteria.study_id)
            );
            let again = Criteria::parse(criteria.to_json().as_bytes())
                .expect("published criteria parse");
            assert_eq!(again, criteria);
        }
        Err(e) => assert!(!e.code.is_empty()),
    }
});
