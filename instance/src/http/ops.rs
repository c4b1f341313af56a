//! Health and readiness on every instance's API listener; Prometheus metrics on a
//! listener of their own (`PEK_METRICS_LISTEN`), so they never reach the public path.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

/// The metrics listener's router: `/metrics` only.
pub fn metrics_router(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(metrics_text))
        .with_state(state)
}

/// The process-wide Prometheus recorder (installed once; tests build many apps).
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

#[derive(Serialize, utoipa::ToSchema)]
struct Health {
    status: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = Health)))]
async fn healthz() -> axum::Json<Health> {
    axum::Json(Health { status: "ok" })
}

#[derive(Serialize, utoipa::ToSchema)]
struct Ready {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// Readiness: database reachable and every migration applied.
#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses((status = 200, body = Ready), (status = 503, body = Ready)))]
async fn readyz(State(s): State<AppState>) -> (StatusCode, axum::Json<Ready>) {
    match s.db.ready(s.mode).await {
        Ok(()) => (
            StatusCode::OK,
            axum::Json(Ready {
                status: "ready",
                reason: None,
            }),
        ),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(Ready {
                status: "not ready",
                reason: Some(reason),
            }),
        ),
    }
}

/// Prometheus metrics.
async fn metrics_text(State(s): State<AppState>) -> impl IntoResponse {
    metrics::gauge!("pek_db_pool_connections").set(s.db.pool_size() as f64);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics_handle().render(),
    )
}
