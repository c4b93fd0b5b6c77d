//! Bitstring Status List `encodedList` text (fetched from an issuer's
//! status list credential): decoding never inflates past the cap, and a
//! decoded list encodes to text that decodes to the same list.
#![no_main]

use hygeia_credentials::status_list::{StatusList, MAX_DECODED_BYTES, MIN_ENTRIES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(list) = StatusList::decode(text) else {
        return;
    };
    assert!(list.len() >= MIN_ENTRIES);
    assert!(list.len() <= MAX_DECODED_BYTES * 8);
    assert!(list.get(list.len() - 1).is_ok());
    assert!(list.get(list.len()).is_err());
    let again = StatusList::decode(&list.encode());
    assert_eq!(again.as_ref(), Ok(&list));
});
