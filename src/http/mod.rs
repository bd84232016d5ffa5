//! The axum router: the dashboard at `/`, `/graphql` (POST queries and mutations, GET
//! queries or GraphiQL, and subscriptions over WebSocket), GraphiQL's files under
//! `/graphiql/`, `/graphql/stream` (Server-Sent Events),
//! `/healthz` and `/readyz`, `/metrics`, with the body-size limit, CORS and request tracing.

mod auth;
mod dashboard;
mod graphiql;
mod graphql;
mod health;
pub mod listen;
mod metrics;
mod quota;
mod response;
mod sse;
mod ws;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tokio_util::sync::CancellationToken;
use tower_http::cors::CorsLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

use crate::auth::Keys;
use crate::graphql::ApiSchema;
use crate::store::Store;
pub use quota::Quota;

/// A deadline far enough away to mean "never" (and within the timer's range).
const NEVER: Duration = Duration::from_secs(365 * 86_400);

#[derive(Clone)]
pub struct AppState {
    pub schema: ApiSchema,
    pub store: Store,
    pub keys: Arc<Keys>,
    /// `--insecure-no-auth`: every request is an admin.
    pub insecure_no_auth: bool,
    /// `--ws-init-timeout`.
    pub ws_init_timeout: Duration,
    /// `--ws-ping-interval`, also the SSE keep-alive.
    pub ws_ping_interval: Duration,
    /// `--max-websockets`: a permit per open WebSocket.
    pub websockets: Arc<tokio::sync::Semaphore>,
    /// `--max-operations-per-connection`.
    pub max_operations_per_connection: usize,
    /// The largest WebSocket message (`--max-body-bytes`, as for a request body).
    pub max_message_bytes: usize,
    /// `--max-subscriptions-per-principal`.
    pub quota: Quota,
    /// Cancelled when the server stops: WebSockets close with 1001 and SSE streams
    /// end, so that no connection keeps a stopping server alive.
    pub shutdown: CancellationToken,
}

pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/", get(dashboard::page))
        .route(
            "/graphql",
            get(graphql::get_handler).post(graphql::post_handler),
        )
        .route("/graphiql/{file}", get(graphiql::asset))
        .route(
            "/graphql/stream",
            get(sse::stream_handler).post(sse::stream_handler),
        )
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        .layer(RequestBodyLimitLayer::new(max_body_bytes))
        .layer(CorsLayer::permissive())
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
