//! A holder's answer to `GET /v1/replicas/{id}` as the receiving node's
//! follower reads it: arbitrary bytes, then the copy they carry. A copy
//! that comes out of it carries exactly the digest the answer claims.
#![no_main]

use hygeia_node::custody::replica::ReplicaAnswer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(answer) = ReplicaAnswer::parse(data) else {
        return;
    };
    let claimed = answer.sha256.clone();
    if let Ok(replica) = answer.into_replica() {
        assert_eq!(replica.digest(), claimed);
    }
});
