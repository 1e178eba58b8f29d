//! The HTTP listener: Prometheus metrics and a liveness probe. Webhooks and the console mount
//! their routes on the same router.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

/// The gateway's routes with the Falco webhook mounted.
pub fn router_with_falco_webhook(webhook: crate::falco_webhook::FalcoWebhook) -> Router {
    router().merge(webhook.routes())
}

/// The gateway's own routes.
pub fn router() -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
}

async fn metrics() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        palisade_core::telemetry::render_metrics(),
    )
}

async fn healthz() -> &'static str {
    "ok\n"
}
