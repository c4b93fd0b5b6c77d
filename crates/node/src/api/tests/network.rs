//! The one-line network over the router: `Net::network()` builds the cast
//! of `hygeia_state::testing` (governance, an organization, a licensed
//! clinician, a patient) through `POST /v1/transactions`.

use hygeia_identity::Keypair;
use serde_json::json;

use super::{did, Net, CLINIC};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_line_builds_a_network_with_a_licensed_clinician() {
    let (net, cast) = Net::network().await;
    assert_eq!(net.size(), 4, "four set-up transactions");
    let licences = net
        .get(&format!("/v1/licences/{}", did(&cast.clinician)))
        .await;
    assert_eq!(licences.status, 200, "{}", licences.text());
    assert_eq!(licences.json()["licences"][0]["standing"], "valid");
    let patient = net
        .get(&format!("/v1/licences/{}", did(&cast.patient)))
        .await;
    assert_eq!(patient.json()["licences"], json!([]));
    // The organization is the governance key's: a stranger cannot
    // register another, and the log does not grow.
    let stranger = Keypair::generate();
    let refused = net
        .submit(
            &stranger,
            "org.register",
            json!({"org": "did:web:other.example", "admin": did(&stranger), "kind": "clinic"}),
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert_eq!(refused.code(), "org.not_governance");
    assert_eq!(net.size(), 4);
    // The admin of the cast's organization manages its members.
    net.submit_ok(
        &cast.admin,
        "org.member",
        json!({"org": CLINIC, "member": did(&stranger), "roles": ["nurse"], "jurisdiction": "FR", "status": "active"}),
    )
    .await;
}
