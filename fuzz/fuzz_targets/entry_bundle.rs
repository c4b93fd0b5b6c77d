//! Entry bundles (`tile/entries/…`) as fetched from another node: split
//! into entries, and re-encoding the entries gives back the same bytes.
#![no_main]

use hygeia_ledger::tiles::{push_entry, split_entries, BundleError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match split_entries(data) {
        Ok(entries) => {
            let mut again = Vec::with_capacity(data.len());
            for entry in &entries {
                push_entry(&mut again, entry);
            }
            assert_eq!(again, data);
        }
        Err(BundleError::Truncated(n)) => {
            // The `n` entries before the cut are whole: they re-encode to a
            // proper prefix of the input that splits into exactly `n`.
            let mut prefix = Vec::new();
            let mut rest = data;
            for _ in 0..n {
                let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                push_entry(&mut prefix, &rest[2..2 + len]);
                rest = &rest[2 + len..];
            }
            assert!(prefix.len() < data.len());
            assert_eq!(prefix, data[..prefix.len()]);
            assert_eq!(split_entries(&prefix).map(|e| e.len()), Ok(n));
        }
        Err(e @ BundleError::WrongCount { .. }) => panic!("split_entries never counts: {e}"),
    }
});
