//! A `$health-cards-issue` request body as a client sends it: arbitrary
//! bytes read as JSON, then as the operation's Parameters.
#![no_main]

use hygeia_node::api::fhir::parse_health_cards_request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    match parse_health_cards_request(&body) {
        Ok(request) => {
            let kinds = request.kinds();
            assert!(!kinds.is_empty());
            for (i, kind) in request.required.iter().enumerate() {
                assert!(!request.required[..i].contains(kind), "kinds are distinct");
            }
            if let Some(since) = &request.since {
                assert!(hygeia_fhir::date::parse_date(since).is_ok());
            }
        }
        Err(e) => {
            assert_eq!(e.status.as_u16(), 400);
            assert_eq!(e.issues.len(), 1);
            assert!(e.issues[0].expression.is_some());
        }
    }
});
