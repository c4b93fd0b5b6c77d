//! What a node of the network hands a joining node (`hygeia network
//! join`): the `peers` of its `GET /v1/node` (JSON, the first line) and
//! the entry at leaf 0 of its log (the rest), both arbitrary. Checked
//! against the entry's own leaf hash as the network id (so the checks
//! after the hash run) and against another id (always refused). A
//! handover that is accepted names each founder once, in the genesis's
//! order, at addresses of their own.
#![no_main]

use hygeia_node::join::{check_handover, JoinError};
use hygeia_node::ordering::Peer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (peers, genesis) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&data[..0], data),
    };
    let peers: Vec<Peer> = serde_json::from_slice(peers).unwrap_or_default();
    let id: String = hygeia_ledger::merkle::leaf_hash(genesis)
        .0
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let other = if id.starts_with('0') { "1" } else { "0" }.repeat(64);
    assert!(matches!(
        check_handover(&other, genesis, &peers),
        Err(JoinError::GenesisMismatch { .. })
    ));
    if let Ok(handover) = check_handover(&id, genesis, &peers) {
        let named: Vec<&str> = handover.peers.iter().map(|p| p.did.as_str()).collect();
        assert_eq!(named, handover.founders);
        let mut addresses: Vec<_> = handover.peers.iter().map(|p| p.p2p).collect();
        addresses.sort();
        addresses.dedup();
        assert_eq!(addresses.len(), handover.peers.len());
    }
});
