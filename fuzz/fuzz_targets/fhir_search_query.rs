//! A FHIR search as a client sends it: arbitrary query text, decoded like
//! the node decodes it, parsed for a type under both handlings; a parsed
//! query written back as a query string parses to the same query, its
//! clauses (which all must hold, so their order means nothing) in the
//! canonical order `to_query_string` writes them: by parameter name.
#![no_main]

use hygeia_fhir::search::{parse_query, Handling};
use hygeia_fhir::types::ResourceType;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, query)) = data.split_first() else {
        return;
    };
    let resource_type = ResourceType::ALL[selector as usize % ResourceType::ALL.len()];
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query)
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect();
    for handling in [Handling::Strict, Handling::Lenient] {
        if let Ok((parsed, _)) = parse_query(resource_type, &pairs, handling) {
            let text = parsed.to_query_string();
            let again: Vec<(String, String)> = form_urlencoded::parse(text.as_bytes())
                .map(|(n, v)| (n.into_owned(), v.into_owned()))
                .collect();
            let (reparsed, _) = parse_query(resource_type, &again, Handling::Strict)
                .expect("a canonical query string parses");
            let mut canonical = parsed;
            canonical.clauses.sort_by(|a, b| a.param.cmp(&b.param));
            assert_eq!(reparsed, canonical);
        }
    }
});
