//! A state snapshot file as a node reads it from its data directory
//! (`hygeia_state::snapshot`): split into its lines, its signature checked
//! against a node DID, its size and root checked against a log, its state
//! digest checked and decoded. It must never panic; whatever decodes
//! encodes canonically (decode, encode, decode gives the same bytes).
#![no_main]

use hygeia_state::snapshot::{self, Unverified};
use libfuzzer_sys::fuzz_target;

const NODE: &str = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK";

fuzz_target!(|data: &[u8]| {
    let Ok(parsed) = Unverified::parse(data) else {
        return;
    };
    let _ = parsed.check_signature(&parsed.header.network.clone(), NODE);
    let root = parsed.header.root.clone();
    let _ = parsed.check_log(parsed.header.size, |_| Some(root));
    let _ = parsed.check_log(0, |_| None);
    if let Err(e) = parsed.decode() {
        assert!(e.code().starts_with("snapshot."));
    }
    // The state part alone, whatever its digest: decoding never panics,
    // and a decoded state re-encodes to a fixed point.
    let state = data
        .iter()
        .position(|b| *b == b'{')
        .map_or(data, |at| &data[at..]);
    if let Ok(committed) = snapshot::decode(state) {
        let bytes = snapshot::encode(&committed);
        let again = snapshot::decode(&bytes).expect("an encoded state decodes");
        assert_eq!(snapshot::encode(&again), bytes);
    }
});
