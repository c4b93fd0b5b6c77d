//! `GET /v1/studies` a page at a time: the cursor walks every study once,
//! in the order of their ids, and a bad cursor or limit is refused with
//! its code.

use hygeia_identity::Keypair;
use serde_json::json;

use super::{did, Net};

#[tokio::test]
async fn studies_are_listed_a_page_at_a_time() {
    let (net, _cast) = Net::network().await;
    let sponsor = Keypair::generate();
    let committee = Keypair::generate();
    let mut ids = Vec::new();
    for n in 0..5u8 {
        let registered = net
            .submit_ok(
                &sponsor,
                "study.register",
                json!({"protocol": hex::encode([n + 1; 32]), "version": "1.0", "committee": did(&committee)}),
            )
            .await;
        ids.push(registered.json()["leaf_hash"].as_str().unwrap().to_owned());
    }
    ids.sort();

    // Unpaged: the first page of 20 holds all five, and no next.
    let all = net.get("/v1/studies").await;
    assert_eq!(all.status, 200, "{}", all.text());
    assert_eq!(all.json()["studies"].as_array().unwrap().len(), 5);
    assert_eq!(all.json()["next"], json!(null));

    // Pages of two: 2, 2, 1, each next the last id of its page.
    let mut seen = Vec::new();
    let mut path = "/v1/studies?limit=2".to_owned();
    let mut pages = 0;
    loop {
        let page = net.get(&path).await;
        assert_eq!(page.status, 200, "{}", page.text());
        let body = page.json();
        let listed: Vec<String> = body["studies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect();
        assert!(listed.len() <= 2);
        seen.extend(listed.clone());
        pages += 1;
        match body["next"].as_str() {
            Some(next) => {
                assert_eq!(Some(next), listed.last().map(String::as_str));
                path = format!("/v1/studies?limit=2&after={next}");
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ids, "every study once, in id order");

    // A cursor that names no study still places the page: the ids after it.
    let after_first = net
        .get(&format!("/v1/studies?after={}", ids[0]))
        .await
        .json();
    assert_eq!(after_first["studies"].as_array().unwrap().len(), 4);
    let none_after = net
        .get(&format!("/v1/studies?after={}", "f".repeat(64)))
        .await;
    assert_eq!(none_after.status, 200);
    assert_eq!(none_after.json()["studies"], json!([]));
    // A limit of 0 is read as 1 (as the ledger explorer does).
    let one = net.get("/v1/studies?limit=0").await.json();
    assert_eq!(one["studies"].as_array().unwrap().len(), 1);
    assert_eq!(one["next"], json!(ids[0]));

    // Bad cursors, limits and parameters: 400 invalid_parameter.
    for bad in [
        "/v1/studies?after=xyz",
        "/v1/studies?after=",
        &format!("/v1/studies?after={}", ids[0].to_uppercase()),
        &format!("/v1/studies?after={}0", ids[0]),
        "/v1/studies?after=%FF%FE",
        "/v1/studies?limit=-1",
        "/v1/studies?limit=many",
        "/v1/studies?offset=2",
    ] {
        let answer = net.get(bad).await;
        assert_eq!(
            (answer.status, answer.code()),
            (400, "invalid_parameter".to_owned()),
            "{bad}: {}",
            answer.text()
        );
    }
}
