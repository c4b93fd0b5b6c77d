//! Two transactions of one signer under one nonce: only the one ordered
//! is acknowledged, and only to whoever submitted its bytes.

use super::*;

/// A registration by governance under `nonce`, of organization `org`.
fn register_as(keys: &Keys, nonce: &str, org: usize) -> SignedTx {
    let admin = Keypair::from_seed(&[(org % 200) as u8 + 20; 32]);
    sign(
        &keys.governance,
        "org.register",
        nonce,
        json!({"org": format!("did:web:org{org}.example"), "admin": did(&admin), "kind": "clinic"}),
    )
}

/// The signer sends two different transactions under one nonce to two
/// nodes at once (and the first again, to a third node, while it is
/// pending). Exactly one of the two is ordered; its submitters get its
/// receipt, with its own leaf hash; the other is answered `replay`, never
/// with the receipt of bytes it did not send.
#[test]
fn of_two_transactions_under_one_nonce_only_the_ordered_one_is_acknowledged() {
    for seed in 0..4 {
        runner(60 + seed).start(|context| async move {
            let keys = keys(4);
            let (nodes, _oracle, _dirs) =
                start_nodes(&context, &keys, link(), |_| Proposing::Honest).await;
            let first = register_as(&keys, "twice", 1);
            let second = register_as(&keys, "twice", 2);
            assert_ne!(first.leaf_hash(), second.leaf_hash());
            let mut answers = Vec::new();
            for (node, tx) in [(0, &first), (1, &second), (2, &first), (3, &second)] {
                let orderer = nodes[node].bft().clone();
                let tx = tx.clone();
                answers.push((
                    tx.leaf_hash(),
                    context
                        .child("client")
                        .spawn(move |_| async move { orderer.submit(vec![tx]).await }),
                ));
            }
            let mut ordered = Vec::new();
            for (sent, answer) in answers {
                match answer.await.expect("the client task ran") {
                    Ok(receipt) => {
                        assert_eq!(
                            receipt.leaf_hashes,
                            vec![sent],
                            "seed {seed}: a receipt for bytes this client did not send"
                        );
                        ordered.push(sent);
                    }
                    Err(hygeia_ledger::SubmitError::Rejected(e)) => {
                        assert_eq!(e.code.as_str(), "replay", "seed {seed}")
                    }
                    Err(other) => panic!("seed {seed}: {other:?}"),
                }
            }
            assert!(!ordered.is_empty(), "seed {seed}: neither was ordered");
            ordered.dedup();
            assert_eq!(ordered.len(), 1, "seed {seed}: both were acknowledged");
            assert!(
                wait_for(&context, Duration::from_secs(10), || nodes
                    .iter()
                    .all(|n| size(n) == 2))
                .await,
                "seed {seed}: one entry after the genesis on every node"
            );
            assert_identical(&nodes.iter().collect::<Vec<_>>());
            let entry = entries(&nodes[0]).pop().expect("an entry");
            let acknowledged = if first.leaf_hash() == ordered[0] {
                &first
            } else {
                &second
            };
            assert_eq!(
                entry,
                acknowledged.canonical_bytes(),
                "seed {seed}: the log holds the acknowledged bytes"
            );
        });
    }
}
