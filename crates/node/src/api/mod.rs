//! The HTTP API: the C2SP tlog-tiles endpoints, transaction submission,
//! proofs, node information and the OpenAPI document.

mod app;
mod app_data;
mod audit;
mod auth;
mod catch_up;
pub use catch_up::CHAIN_PAGE;
mod credentials;
mod datasets;
mod devices;
mod economy;
pub(crate) mod error;
pub mod fhir;
mod info;
mod log;
mod proofs;
pub mod records;
mod replicas;
pub mod research;
mod smart;
mod submit;
#[cfg(test)]
pub(crate) mod tests;
mod token;
mod trials;
mod witness;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

pub use error::ApiError;
pub(crate) use info::health;

use crate::node::Node;

/// The OpenAPI 3.1 document served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Largest single-transaction request body: one transaction at the size
/// limit. Anything larger is refused before it is read whole.
const MAX_SINGLE_BODY: usize = hygeia_ledger::MAX_TX_BYTES;

pub fn router(node: Arc<Node>) -> Router {
    let batch_limit = node.config.max_batch_body_bytes;
    Router::new()
        .route("/checkpoint", get(witness::checkpoint))
        .route(
            "/add-checkpoint",
            post(witness::add_checkpoint).layer(DefaultBodyLimit::max(
                hygeia_ledger::cosignature::MAX_ADD_CHECKPOINT,
            )),
        )
        .route(
            "/v1/checkpoint/cosignatures",
            post(witness::collect).layer(DefaultBodyLimit::max(
                hygeia_ledger::cosignature::MAX_COSIGNED_NOTE,
            )),
        )
        .route("/tile/{*path}", get(log::tile))
        .route(
            "/v1/transactions",
            post(submit::one).layer(DefaultBodyLimit::max(MAX_SINGLE_BODY)),
        )
        .route(
            "/v1/transactions/batch",
            post(submit::batch).layer(DefaultBodyLimit::max(batch_limit)),
        )
        .route("/v1/transactions/{hash}", get(log::transaction))
        .route("/v1/proofs/inclusion", get(proofs::inclusion))
        .route("/v1/proofs/consistency", get(proofs::consistency))
        .route(
            "/v1/records",
            post(records::upload)
                .get(records::list)
                .layer(DefaultBodyLimit::disable()),
        )
        .route("/v1/records/{id}", get(records::read))
        .route("/v1/replicas/{id}", get(replicas::replica))
        .route("/v1/consents", get(records::consents))
        .route("/v1/audit", get(audit::feed))
        .route("/v1/dids/{did}", get(credentials::resolve))
        .route("/v1/dids/{did}/history", get(credentials::history))
        .route("/orgs/{name}/did.json", get(credentials::did_web_document))
        .route("/v1/trust-list", get(credentials::trust_list))
        .route("/v1/status-lists", get(credentials::status_list))
        .route(
            "/v1/status-lists/{issuer}/{name}",
            get(credentials::status_list_by_name),
        )
        .route("/v1/licences/{did}", get(credentials::licences))
        .route(
            "/v1/devices/batches",
            post(devices::ingest).layer(DefaultBodyLimit::disable()),
        )
        .route("/v1/devices/{did}", get(devices::device))
        .route("/v1/adherence/{rule}/{subject}", get(devices::adherence))
        .route(
            "/v1/research/studies",
            post(research::create).layer(DefaultBodyLimit::max(research::MAX_RESEARCH_BODY)),
        )
        .route(
            "/v1/research/studies/{id}",
            get(research::criteria).delete(research::delete),
        )
        .route(
            "/v1/research/studies/{id}/responses",
            post(research::answer).layer(DefaultBodyLimit::max(research::MAX_RESEARCH_BODY)),
        )
        .route("/v1/research/studies/{id}/tally", get(research::tally))
        .route("/v1/research/answers", get(research::mine))
        .route("/v1/units", get(economy::units))
        .route("/v1/accounts/{did}", get(economy::account))
        .route("/v1/escrows/{id}", get(economy::escrow))
        .route("/v1/programs", get(economy::programs))
        .route("/v1/programs/{id}", get(economy::program))
        .route("/v1/sharing/{id}", get(economy::sharing))
        .route("/v1/clock", get(economy::clock).post(economy::tick))
        .route("/v1/studies", get(trials::studies))
        .route("/v1/studies/{id}", get(trials::study))
        .route("/v1/studies/{id}/subjects/{did}", get(trials::subject))
        .route("/v1/datasets/{id}", get(datasets::dataset))
        .route("/v1/node", get(info::node_info))
        .route("/v1/network/snapshots", get(catch_up::snapshots))
        .route("/v1/network/snapshots/{size}", get(catch_up::snapshot))
        .route("/v1/network/chain", get(catch_up::chain))
        .route("/v1/health", get(info::health))
        .route("/openapi.json", get(info::openapi))
        .route("/.well-known/jwks.json", get(info::jwks))
        .route("/authorize", get(smart::authorize))
        .route("/v1/smart/requests/{id}", get(smart::request))
        .route("/v1/smart/requests/{id}/{decision}", post(smart::decide))
        .merge(
            Router::new()
                .route(
                    "/auth/token",
                    post(token::issue)
                        .layer(DefaultBodyLimit::max(hygeia_auth::token::MAX_FORM_LEN)),
                )
                .route(
                    "/.well-known/smart-configuration",
                    get(smart::configuration),
                )
                .route(
                    "/fhir/.well-known/smart-configuration",
                    get(smart::configuration),
                )
                .merge(fhir::routes()),
        )
        .merge(app_routes())
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::middleware::from_fn(error::json_errors))
        .layer(axum::middleware::from_fn(error::no_store_by_default))
        .layer(axum::middleware::from_fn(cors))
        .with_state(node)
}

/// Cross-origin access for SMART apps in a browser on another origin: the
/// discovery document, the token endpoint and the FHIR API (docs/smart.md).
/// They are authenticated by bearer tokens only (no cookie, no ambient
/// credential), so any origin may call them; `/authorize` and the consent
/// page are navigations, and the signed-request API is for this node's own
/// pages and the CLI: they get no CORS headers.
async fn cors(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{header, HeaderValue, Method, StatusCode};
    use axum::response::IntoResponse;
    let path = request.uri().path();
    let shared = path == "/auth/token"
        || path == "/.well-known/smart-configuration"
        || path == "/fhir"
        || path.starts_with("/fhir/")
        || path.starts_with("/fhir-export/");
    if !shared || !request.headers().contains_key(header::ORIGIN) {
        return next.run(request).await;
    }
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if preflight {
        let mut response = StatusCode::NO_CONTENT.into_response();
        let h = response.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, PUT, DELETE"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type, accept, if-match, prefer"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        response
    } else {
        next.run(request).await
    };
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("location, etag, content-location, www-authenticate"),
    );
    response
}

/// The web apps at `/app/` and the endpoints they read (docs/apps.md).
fn app_routes() -> Router<Arc<Node>> {
    let view = Arc::new(app_data::ViewCache::default());
    Router::new()
        .route("/", get(app::to_app))
        .route("/app", get(app::to_app))
        .route("/app/", get(app::index))
        .route("/app/{*path}", get(app::file))
        .route("/v1/app/whoami", get(app_data::whoami))
        .route("/v1/app/directory", get(app_data::directory))
        .route("/v1/app/access", get(app_data::my_access))
        .route("/v1/app/kpis", get(app_data::kpis))
        .route("/v1/app/ledger", get(app_data::ledger))
        .route("/v1/app/records/{id}", get(app_data::record))
        .route("/v1/app/records/{id}/provenance", get(app_data::provenance))
        .layer(axum::Extension(view))
}
