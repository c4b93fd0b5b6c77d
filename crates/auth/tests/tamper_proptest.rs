//! Any change to the method, path, query or content digest of a signed
//! request is refused, and does not spend the request's nonce.

mod common;

use common::*;
use http::Method;
use hygeia_auth::content_digest_header;
use proptest::prelude::*;

const METHODS: [&str; 6] = ["GET", "POST", "PUT", "DELETE", "PATCH", "get"];

#[derive(Debug, Clone)]
enum Change {
    Method(usize),
    Path(String),
    Query(Option<String>),
    Digest(Vec<u8>),
}

fn path() -> impl Strategy<Value = String> {
    prop::collection::vec("[A-Za-z0-9%._~-]{1,12}", 1..4).prop_map(|s| format!("/{}", s.join("/")))
}

fn query() -> impl Strategy<Value = Option<String>> {
    prop::option::of("[A-Za-z0-9=&%+._-]{1,20}")
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        (0..METHODS.len()).prop_map(Change::Method),
        path().prop_map(Change::Path),
        query().prop_map(Change::Query),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(Change::Digest),
    ]
}

proptest! {
    #[test]
    fn any_change_is_refused(
        method in 0..METHODS.len(),
        path in path(),
        query in query(),
        body in prop::option::of(prop::collection::vec(any::<u8>(), 0..64)),
        change in change(),
    ) {
        let method = Method::from_bytes(METHODS[method].as_bytes()).unwrap();
        let target = match &query {
            Some(q) => format!("{path}?{q}"),
            None => path.clone(),
        };
        let original = Request::signed(method.clone(), &target, body.as_deref(), &key(1), NOW, &nonce(1));

        let mut changed = original.clone();
        match change {
            Change::Method(m) => {
                prop_assume!(METHODS[m] != method.as_str());
                changed.method = Method::from_bytes(METHODS[m].as_bytes()).unwrap();
            }
            Change::Path(p) => {
                prop_assume!(p != path);
                changed.path = p;
            }
            Change::Query(q) => {
                prop_assume!(q != query);
                changed.query = q;
            }
            Change::Digest(other) => {
                // Only a request with a body has a content digest.
                prop_assume!(body.as_ref().is_some_and(|b| *b != other));
                changed.set("content-digest", &content_digest_header(&sha256(&other)));
            }
        }

        let verifier = verifier();
        prop_assert_eq!(changed.code(&verifier, NOW), "auth_bad_signature");
        // The refused copy did not spend the nonce.
        prop_assert_eq!(original.code(&verifier, NOW), "ok");
    }
}
