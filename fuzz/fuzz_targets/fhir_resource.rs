//! A FHIR resource as a client sends it, or as another node's copy holds
//! it: arbitrary bytes read as JSON and validated, with and without the
//! type a URL would name, and a valid one's search index extracted.
#![no_main]

use hygeia_fhir::types::ResourceType;
use hygeia_fhir::validate::validate;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let found = validate(&value, None);
    if let Err(issues) = &found {
        // A refusal always says why, and never at length.
        assert!(!issues.is_empty() && issues.len() <= 101);
    }
    // Naming the type it has changes nothing; naming another adds an issue.
    if let Ok(resource_type) = found {
        assert_eq!(validate(&value, Some(resource_type)), Ok(resource_type));
        // What a node indexes for search from a valid resource, as it does
        // for copies another node sent (whose bytes that node chose).
        let _ = hygeia_fhir::search::extract(resource_type, &value);
        let other = if resource_type == ResourceType::Patient {
            ResourceType::Observation
        } else {
            ResourceType::Patient
        };
        assert!(validate(&value, Some(other)).is_err());
    }
});
