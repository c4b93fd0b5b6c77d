//! Finding 6 of the outside attack: with `axum::serve`'s defaults, partial
//! headers, partial bodies and silent connections stayed open forever;
//! ~20,000 idle sockets used up the file descriptors and open connections
//! got 500 "Too many open files" with a server path. Over real sockets
//! (in process): a bounded number of idle and partial connections, with
//! the limits set low.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::Net;
use crate::server::ConnectionLimits;

const LIMITS: ConnectionLimits = ConnectionLimits {
    max_connections: 4,
    overflow_connections: 3,
    header_read_timeout: Duration::from_millis(800),
    body_timeout: Duration::from_millis(800),
};

/// Reads until the server closes the connection (or `within` passes);
/// `None` if it stayed open.
async fn until_closed(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(within, read).await.ok().map(|()| got)
}

/// One request on a new connection (closed after it); status and body.
async fn request(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let answer = until_closed(&mut stream, Duration::from_secs(5))
        .await
        .expect("an answer, then the connection closed");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_partial_connections_are_bounded_and_health_still_answers() {
    let net = Net::with_config(|c| c.connections = LIMITS);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::serve(net.node.clone(), listener, async {
        let _ = stopped.await;
    }));

    // Fill the served connections: two silent, one with half a header,
    // one with a header and half of its body.
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    let mut partial_header = TcpStream::connect(addr).await.unwrap();
    partial_header
        .write_all(b"GET /v1/node HTTP/1.1\r\nHost: node\r\nX-Slow: ")
        .await
        .unwrap();
    held.push(partial_header);
    let mut partial_body = TcpStream::connect(addr).await.unwrap();
    partial_body
        .write_all(b"POST /v1/transactions HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"partial\":")
        .await
        .unwrap();
    let opened = Instant::now();
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Over the cap: health is still answered; anything else is a clear 503.
    let (status, body) = request(addr, "/v1/health").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = request(addr, "/v1/node").await;
    assert_eq!(status, 503, "{body}");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["code"], "too_many_connections", "{body}");

    // Past the overflow too, a connection is closed unanswered.
    let mut overflow = Vec::new();
    for _ in 0..LIMITS.overflow_connections {
        overflow.push(TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut refused = TcpStream::connect(addr).await.unwrap();
    let _ = refused
        .write_all(b"GET /v1/health HTTP/1.1\r\nHost: node\r\n\r\n")
        .await;
    let answer = until_closed(&mut refused, Duration::from_secs(2)).await;
    assert_eq!(
        answer.as_deref(),
        Some(&b""[..]),
        "a connection past every limit is closed cleanly"
    );

    // The header timeout closes the silent and half-sent connections; the
    // body timeout fails the stalled body.
    for mut stream in held {
        let closed = until_closed(&mut stream, Duration::from_secs(5)).await;
        assert!(
            closed.is_some(),
            "an idle or partial connection stayed open"
        );
    }
    let answer = until_closed(&mut partial_body, Duration::from_secs(5))
        .await
        .expect("a stalled body must not hold its connection");
    let text = String::from_utf8_lossy(&answer).into_owned();
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 4"),
        "a stalled body is refused: {text}"
    );
    assert!(
        opened.elapsed() < Duration::from_secs(4),
        "the timeouts took {:?}",
        opened.elapsed()
    );
    for mut stream in overflow {
        assert!(until_closed(&mut stream, Duration::from_secs(5))
            .await
            .is_some());
    }

    // With the slots free again, requests are served normally.
    let (status, body) = request(addr, "/v1/node").await;
    assert_eq!(status, 200, "{body}");
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the server stops")
        .unwrap()
        .unwrap();
}
