//! An idle network: leaders with nothing to order propose nothing
//! ([`Idle::ProposeNothing`], as the node runs), so no block is finalized
//! or stored until there is something to order.

use super::*;
use crate::application::MAX_IDLE_VIEWS;

/// Starts the nodes of this thread as the node process does: a leader
/// with nothing to order waits its whole view for a submission.
fn propose_nothing() {
    IDLE.set(Idle::ProposeNothing(Timeouts::default().leader));
}

/// Simulated time a submission took to be finalized and acknowledged.
async fn acknowledged_after(context: &Context, node: &Node, tx: SignedTx) -> Duration {
    let start = context.current();
    node.bft().submit(vec![tx]).await.expect("ordered");
    context.current().duration_since(start).unwrap_or_default()
}

fn assert_no_fault(nodes: &[Node]) {
    for node in nodes {
        let seen = node.bft().observed();
        assert!(seen.halted.is_none(), "{:?}", seen.halted);
        assert!(seen.faults.is_empty(), "{:?}", seen.faults);
    }
}

/// Four validators left idle for 20 s (about 20 views, each nullified at
/// the leader timeout) finalize no block; a submission then, at any point
/// of a view, is finalized and acknowledged well within the leader
/// timeout, since it is passed on to every validator and the leader of
/// the moment proposes it at once.
#[test]
fn an_idle_network_finalizes_no_block_until_a_submission_comes() {
    propose_nothing();
    runner(41).start(|context| async move {
        let keys = keys(4);
        let (nodes, _oracle, _dirs) =
            start_nodes(&context, &keys, link(), |_| Proposing::Honest).await;
        context.sleep(Duration::from_secs(20)).await;
        for (i, node) in nodes.iter().enumerate() {
            assert_eq!(
                node.bft().observed().appended.len(),
                0,
                "node {i} appended blocks on an idle network"
            );
            assert_eq!(size(node), 1, "node {i}");
        }
        // Submissions at different points of an idle view, to each node in
        // turn, each after the network has been idle again for a while.
        let mut slowest = Duration::ZERO;
        for k in 0..8 {
            context
                .sleep(Duration::from_millis(2_000 + 130 * k as u64))
                .await;
            let took = acknowledged_after(&context, &nodes[k % 4], register(&keys, k)).await;
            slowest = slowest.max(took);
        }
        eprintln!("slowest acknowledgement after idle: {slowest:?}");
        assert!(
            slowest < Duration::from_millis(500),
            "a submission after idle took {slowest:?}"
        );
        assert!(all_reach(&context, &nodes, 9, 5).await);
        // Only blocks with a transaction: eight, one each.
        for node in &nodes {
            assert_eq!(height(node), 8, "no empty block in between");
        }
        // A replay, at a node that appended the original, is refused at
        // once: no block comes to answer it on an idle network.
        let start = context.current();
        match nodes[3].bft().submit(vec![register(&keys, 0)]).await {
            Err(hygeia_ledger::SubmitError::Rejected(e)) => assert_eq!(e.code.as_str(), "replay"),
            other => panic!("replay not refused: {other:?}"),
        }
        let took = context.current().duration_since(start).unwrap_or_default();
        assert!(
            took < Duration::from_millis(100),
            "the replay took {took:?}"
        );
        assert_identical(&nodes.iter().collect::<Vec<_>>());
        assert_no_fault(&nodes);
    });
}

/// Idle for many more views than [`MAX_IDLE_VIEWS`], the network
/// finalizes an empty block about once every `MAX_IDLE_VIEWS` views (so
/// the engine can prune the views it keeps), and no more.
#[test]
fn a_long_idle_network_finalizes_an_empty_block_only_past_max_idle_views() {
    propose_nothing();
    runner(42).start(|context| async move {
        let keys = keys(4);
        let (nodes, _oracle, _dirs) =
            start_nodes(&context, &keys, link(), |_| Proposing::Honest).await;
        let idle = Duration::from_secs(2 * MAX_IDLE_VIEWS + 20);
        context.sleep(idle).await;
        let at_most = idle.as_secs() / MAX_IDLE_VIEWS;
        for (i, node) in nodes.iter().enumerate() {
            let blocks = node.bft().observed().appended.len() as u64;
            eprintln!("node {i}: {blocks} empty blocks in {idle:?} of idle");
            assert!(
                (1..=at_most).contains(&blocks),
                "node {i} appended {blocks} empty blocks in {idle:?} of idle"
            );
            assert_eq!(size(node), 1, "node {i}: empty blocks write no entry");
        }
        let took = acknowledged_after(&context, &nodes[1], register(&keys, 1)).await;
        assert!(took < Duration::from_millis(500), "took {took:?}");
        assert_no_fault(&nodes);
    });
}

/// The block holding a `network.validators` ends the epoch on an idle
/// network too: every node moves to epoch 1, nothing more is finalized
/// while idle, and the three validators of epoch 1 then finalize a
/// submission (the removed node 3 appends nothing more).
#[test]
fn an_epoch_change_takes_effect_on_a_network_that_proposes_nothing_when_idle() {
    propose_nothing();
    runner(43).start(|context| async move {
        let keys = keys(4);
        let (nodes, _oracle, _dirs) =
            start_nodes(&context, &keys, link(), |_| Proposing::Honest).await;
        let change = nodes[1]
            .bft()
            .submit(vec![validators_change(&keys, 1, &[0, 1, 2])])
            .await
            .expect("the change is ordered");
        let boundary = change.checkpoint.size;
        assert!(
            wait_for(&context, Duration::from_secs(10), || nodes
                .iter()
                .all(|n| n.bft().observed().epoch == 1 && size(n) >= boundary))
            .await,
            "every node appends the change and moves to epoch 1"
        );
        let heights: Vec<u64> = nodes.iter().map(height).collect();
        context.sleep(Duration::from_secs(10)).await;
        assert_eq!(
            nodes.iter().map(height).collect::<Vec<_>>(),
            heights,
            "nothing finalized while idle in epoch 1"
        );
        let took = acknowledged_after(&context, &nodes[2], register(&keys, 2)).await;
        assert!(took < Duration::from_millis(500), "took {took:?}");
        assert!(all_reach(&context, &nodes[..3], boundary + 1, 10).await);
        assert_identical(&nodes[..3].iter().collect::<Vec<_>>());
        assert_eq!(
            size(&nodes[3]),
            boundary,
            "the removed node appends nothing"
        );
        assert!(nodes[3].bft().observed().retired);
        assert_no_fault(&nodes);
    });
}

/// A node stopped while the others finalize, and started again on a
/// network that is idle by then, catches up without waiting for a new
/// block: having seen no progress for a while it asks a peer, which
/// answers with its newest finalized block of the epoch.
#[test]
fn a_node_restarted_on_an_idle_network_catches_up_without_a_new_block() {
    propose_nothing();
    runner(44).start(|context| async move {
        let keys = keys(4);
        let (mut nodes, oracle, dirs) =
            start_nodes(&context, &keys, link(), |_| Proposing::Honest).await;
        nodes[0]
            .bft()
            .submit(vec![register(&keys, 0)])
            .await
            .expect("ordered");
        let node = take(&mut nodes, 3);
        stop(&context, node).await;
        for k in 1..4 {
            nodes[k - 1]
                .bft()
                .submit(vec![register(&keys, k)])
                .await
                .expect("three finalize");
        }
        let tip = height(&nodes[0]);
        context.sleep(Duration::from_secs(20)).await;
        nodes[3] = start_node(
            &context,
            &oracle,
            &keys,
            3,
            dirs[3].path(),
            Proposing::Honest,
        )
        .await;
        assert!(
            wait_for(&context, Duration::from_secs(15), || size(&nodes[3]) == 5).await,
            "the restarted node has {} entries of 5",
            size(&nodes[3])
        );
        assert_eq!(height(&nodes[0]), tip, "no new block was needed");
        assert_identical(&nodes.iter().collect::<Vec<_>>());
        assert_no_fault(&nodes);
    });
}
