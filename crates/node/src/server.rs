//! The HTTP server: connections accepted, bounded and timed out, each
//! served by hyper's HTTP/1.1 connection driver (docs/records.md,
//! "Connection limits").
//!
//! - At most [`ConnectionLimits::max_connections`] connections are served
//!   at once. Past that, up to [`ConnectionLimits::overflow_connections`]
//!   more get one answer each and are closed: `GET /v1/health` as usual
//!   (so monitors keep seeing the node), anything else `503` with the JSON
//!   error `too_many_connections` and `Retry-After`. Past both, a new
//!   connection is closed at once, before it costs more than its socket.
//! - A connection must send a request's whole header within
//!   [`ConnectionLimits::header_read_timeout`]; the same limit closes a
//!   kept-alive connection that sends nothing (hyper's header-read timer
//!   starts whenever the connection waits for a request).
//! - A request body that stalls for [`ConnectionLimits::body_timeout`]
//!   between two chunks fails (tower-http's `RequestBodyTimeout`).
//! - File descriptors running out (`accept` failing) slows the accept loop
//!   down instead of spinning it.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::sync::Semaphore;
use tower::ServiceBuilder;
use tower_http::timeout::RequestBodyTimeoutLayer;

use crate::api::ApiError;
use crate::node::Node;

/// The address a request's connection came from, for limits per source.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub std::net::IpAddr);

/// How many connections the server takes, and how long it waits for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Connections past `max_connections` answered once (health, or 503)
    /// and closed; past these, connections are closed unanswered.
    pub overflow_connections: usize,
    /// Longest wait for a request's header, and longest idle time of a
    /// kept-alive connection.
    pub header_read_timeout: Duration,
    /// Longest wait for the next chunk of a request body.
    pub body_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            overflow_connections: 64,
            header_read_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
        }
    }
}

/// Connections served at once by default: well under the usual 1,024
/// file descriptors a process may hold, which the node also needs for its
/// files.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

/// Overflow connections get this long to send their one request.
const OVERFLOW_HEADER_TIMEOUT: Duration = Duration::from_secs(2);

/// Pause after `accept` fails for want of file descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// What an overflow connection is answered: health as usual, everything
/// else 503.
fn overflow_router(node: Arc<Node>) -> Router {
    Router::new()
        .route("/v1/health", get(crate::api::health))
        .fallback(too_many_connections)
        .with_state(node)
}

async fn too_many_connections() -> Response {
    let mut response = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "too_many_connections",
        "the node is serving as many connections as it takes; retry shortly",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Serves the HTTP API on `listener` until `shutdown` resolves, within
/// `node.config.connections`; then waits for the open connections to
/// finish.
pub async fn serve(
    node: Arc<Node>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = node.config.connections.clone();
    let app = crate::api::router(node.clone());
    let overflow_app = overflow_router(node);
    let served = Arc::new(Semaphore::new(limits.max_connections));
    let overflow = Arc::new(Semaphore::new(limits.overflow_connections));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a connection failed; slowing down");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let (router, permit, header_timeout, keep_alive) =
            if let Ok(permit) = served.clone().try_acquire_owned() {
                (app.clone(), permit, limits.header_read_timeout, true)
            } else if let Ok(permit) = overflow.clone().try_acquire_owned() {
                (overflow_app.clone(), permit, OVERFLOW_HEADER_TIMEOUT, false)
            } else {
                drop(stream);
                continue;
            };
        let service = ServiceBuilder::new()
            .layer(RequestBodyTimeoutLayer::new(limits.body_timeout))
            .map_request(move |request: Request<_>| {
                let mut request = request.map(Body::new);
                request.extensions_mut().insert(PeerAddr(peer.ip()));
                request
            })
            .service(router);
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .keep_alive(keep_alive);
        let connection =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Errors that concern one connection, not the listener.
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}
