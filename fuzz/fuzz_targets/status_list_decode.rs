//! Bitstring Status List `encodedList` text (fetched from an issuer's
//! status list credential): decoding never inflates past the cap (16 MiB,
//! or the node's 1 MiB with `decode_limited`), and a decoded list encodes
//! to text that decodes to the same list.
#![no_main]

use hygeia_credentials::status_list::{StatusList, MAX_DECODED_BYTES, MIN_ENTRIES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The node's cap: a list under it decodes the same either way, and
    // none over it is accepted.
    let limited = StatusList::decode_limited(text, 1 << 20);
    if let Ok(small) = &limited {
        assert!(small.len() <= 8 << 20);
        assert_eq!(StatusList::decode(text).as_ref(), Ok(small));
    }
    let Ok(list) = StatusList::decode(text) else {
        assert!(limited.is_err());
        return;
    };
    if list.len() <= 8 << 20 {
        assert_eq!(limited.as_ref(), Ok(&list));
    } else {
        assert_eq!(limited.map(|_| ()).unwrap_err().code(), "status-list-too-large");
    }
    assert!(list.len() >= MIN_ENTRIES);
    assert!(list.len() <= MAX_DECODED_BYTES * 8);
    assert!(list.get(list.len() - 1).is_ok());
    assert!(list.get(list.len()).is_err());
    let again = StatusList::decode(&list.encode());
    assert_eq!(again.as_ref(), Ok(&list));
});
