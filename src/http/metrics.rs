//! `/metrics`: the process's metrics in the Prometheus text format.

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

pub async fn metrics() -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::telemetry::recorder().render(),
    )
}
