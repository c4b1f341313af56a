//! The HTTP API (axum). Handlers are thin: extract, call the domain module, commit,
//! answer. A realm route extracts a [`RealmScope`] (the signed-in caller inside a realm
//! this instance serves: the realm transaction and the caller's grants; see `scope.rs`
//! for the handler shape), and the domain function it calls makes the permission check.
//! Every `/internal/…` route lives in `internal/`, behind the extractor of its credential.
//! Routes have one shape everywhere (DESIGN §5), so the hub's BFF can forward realm calls
//! to workers without translating.

pub mod apidoc;
pub(crate) mod auth_api;
pub(crate) mod bff_api;
mod evaluation_api;
mod extract;
pub(crate) mod groups_of_api;
mod guard;
pub(crate) mod hub_api;
pub(crate) mod identities_api;
mod internal;
mod merge_api;
mod ops;
pub(crate) mod realm_api;
mod scope;
mod session_api;
mod strict_json;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use tokio::sync::RwLock;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub(crate) use auth_api::end_session;
pub use extract::{
    bearer, cookie, presented_token, Caller, Json, LocalRealm, Path, Query, SESSION_COOKIE,
};
pub use guard::origin_of;
pub(crate) use identities_api::link_redirect;
pub use scope::RealmScope;

use crate::auth::Verifier;
use crate::config::Mode;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::realm::RealmId;

/// What every handler and middleware may need. Each extractor and middleware that takes
/// it clones it for every request (several per request), so it is one `Arc`: a clone is
/// one atomic increment instead of one per shared service and a copy of the public
/// origin. Built as [`AppShared`] and frozen into this once start-up is done.
#[derive(Clone)]
pub struct AppState(Arc<AppShared>);

impl std::ops::Deref for AppState {
    type Target = AppShared;

    fn deref(&self) -> &AppShared {
        &self.0
    }
}

impl From<AppShared> for AppState {
    fn from(shared: AppShared) -> Self {
        AppState(Arc::new(shared))
    }
}

/// The parts of [`AppState`], mutable while the instance starts.
pub struct AppShared {
    pub db: Db,
    pub mode: Mode,
    pub verifier: Arc<Verifier>,
    local_realms: Arc<RwLock<HashSet<RealmId>>>,
    operator_tokens: Arc<Vec<String>>,
    /// Hub: the BFF (registry, backends, realm-list cache). None on workers.
    pub bff: Option<Arc<crate::bff::Bff>>,
    /// Hub: the secret realm tokens are derived from (membership reports).
    pub federation_secret: Option<Arc<Vec<u8>>>,
    pub max_body_bytes: usize,
    /// Hub: the token signing keys (published as JWKS).
    pub keys: Option<Arc<crate::auth::KeyRing>>,
    /// Hub: login (OAuth2/OIDC, development login).
    pub login: Option<Arc<crate::login::Login>>,
    /// Which people exist (hub: its database; worker: asked of the hub).
    pub users: Arc<crate::directory::Users>,
    /// Who may read the directory: services (hub), the hub (worker).
    pub directory: Option<Arc<crate::service_directory::DirectoryAuth>>,
    /// Hub: the server-side sessions that login tokens name. None on workers.
    pub sessions: Option<Arc<crate::session::Sessions>>,
    /// `PEK_PUBLIC_URL`'s origin (`https://host[:port]`), when configured: the origin
    /// browsers' cookie-authenticated API calls may come from (besides the request's
    /// own `Host`).
    pub public_origin: Option<String>,
}

impl AppShared {
    /// How names map to identities (`authsch:<id>`, `<provider>:<subject>`): the hub's
    /// sign-in providers.
    pub(crate) fn naming(&self) -> crate::identity::Naming {
        self.login.as_ref().map(|l| l.naming()).unwrap_or_default()
    }

    pub async fn new(
        db: Db,
        mode: Mode,
        verifier: Verifier,
        worker_realm: Option<RealmId>,
        operator_tokens: Vec<String>,
    ) -> Result<Self> {
        let state = AppShared {
            db: db.clone(),
            mode,
            verifier: Arc::new(verifier),
            local_realms: Arc::new(RwLock::new(HashSet::new())),
            operator_tokens: Arc::new(operator_tokens),
            bff: None,
            federation_secret: None,
            max_body_bytes: 64 * 1024,
            keys: None,
            login: None,
            users: Arc::new(match mode {
                Mode::Hub => crate::directory::Users::Hub(db.clone(), Default::default()),
                Mode::Worker => crate::directory::Users::Worker(None),
            }),
            directory: None,
            sessions: match mode {
                Mode::Hub => Some(Arc::new(crate::session::Sessions::new(db.clone()))),
                Mode::Worker => None,
            },
            public_origin: None,
        };
        match (mode, worker_realm) {
            (Mode::Worker, Some(r)) => {
                state.local_realms.write().await.insert(r);
            }
            (Mode::Worker, None) => {
                return Err(Error::BadRequest("worker mode needs PEK_REALM_ID".into()))
            }
            (Mode::Hub, _) => state.reload_local_realms().await?,
        }
        Ok(state)
    }

    pub async fn reload_local_realms(&self) -> Result<()> {
        if self.mode != Mode::Hub {
            return Ok(());
        }
        let mut g = self.db.global().await?;
        let ids = crate::realm::local_ids(&mut g).await?;
        g.commit().await?;
        *self.local_realms.write().await = ids.into_iter().collect();
        if let Some(bff) = &self.bff {
            bff.registry.reload(&self.db).await?;
        }
        Ok(())
    }

    pub async fn serves(&self, realm: &RealmId) -> bool {
        self.local_realms.read().await.contains(realm)
    }

    pub async fn served_realms(&self) -> Vec<RealmId> {
        let mut v: Vec<_> = self.local_realms.read().await.iter().cloned().collect();
        v.sort();
        v
    }

    /// Constant-time comparison against every accepted operator token.
    pub fn operator_token_ok(&self, presented: &str) -> bool {
        use subtle::ConstantTimeEq;
        let mut ok = 0u8;
        for t in self.operator_tokens.iter() {
            ok |= t.as_bytes().ct_eq(presented.as_bytes()).unwrap_u8();
        }
        ok == 1
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "PéK instance API",
        description = "Hub and worker API of the PéK realm federation."
    ),
    components(schemas(crate::error::ErrorBody))
)]
struct ApiDoc;

fn api_router(mode: Mode) -> OpenApiRouter<AppState> {
    let router = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(realm_api::routes())
        .merge(evaluation_api::routes())
        .merge(groups_of_api::realm_routes())
        .merge(internal::realm_routes())
        .merge(ops::routes());
    match mode {
        Mode::Hub => router
            .merge(hub_api::routes())
            .merge(bff_api::routes())
            .merge(groups_of_api::bff_routes())
            .merge(internal::hub_routes())
            .merge(auth_api::routes())
            .merge(session_api::routes())
            .merge(identities_api::routes())
            .merge(merge_api::routes()),
        Mode::Worker => router,
    }
}

/// The OpenAPI document of a mode's API.
pub fn openapi(mode: Mode) -> utoipa::openapi::OpenApi {
    let mut doc = api_router(mode).split_for_parts().1;
    apidoc::complete(&mut doc);
    doc
}

/// The instance's router: the API and, beside it, `pages` (routes served by the same
/// stack of layers — `app.rs` mounts the hub's web pages here; this module knows nothing
/// of them).
pub fn router(state: AppState, max_body_bytes: usize, pages: Router<AppState>) -> Router {
    let (router, mut openapi) = api_router(state.mode).split_for_parts();
    apidoc::complete(&mut openapi);
    let openapi = Arc::new(openapi);
    let router = match &state.login {
        Some(l) if l.dev_login_enabled() => router.merge(auth_api::dev_login_routes()),
        _ => router,
    };
    if let Some(bff) = &state.bff {
        // Local backends run fan-out requests through the handlers themselves.
        bff.set_local_router(
            router
                .clone()
                .fallback(|| async { Error::NotFound("no such route".into()) })
                .method_not_allowed_fallback(method_not_allowed)
                .with_state(state.clone()),
        );
    }
    router
        .merge(pages)
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let doc = openapi.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .fallback(|| async { Error::NotFound("no such route".into()) })
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            bff_api::forward,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::api_guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            max_body_bytes,
            buffer_body,
        ))
        .layer(axum::middleware::from_fn(record_metrics))
        .layer(axum::extract::DefaultBodyLimit::max(max_body_bytes))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
            }),
        )
        .layer(SetRequestIdLayer::x_request_id(RandomRequestId))
        .with_state(state)
}

/// A request without an `x-request-id` gets a random UUID (v4) from the thread's own
/// generator: tower-http's `MakeRequestUuid` asks the kernel for every one (a `getrandom`
/// system call per request, which a reverse proxy does not pay).
#[derive(Clone, Copy)]
struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
        let mut buf = uuid::Uuid::encode_buffer();
        let text = id.hyphenated().encode_lower(&mut buf);
        axum::http::HeaderValue::from_str(text)
            .ok()
            .map(RequestId::new)
    }
}

/// How long a client may take to send its whole request body.
const BODY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// Reads the whole request body before any handler runs. Handlers open their realm
/// transaction (a pool connection) in their first extractor, before axum reads the body;
/// without this, a client trickling its body in would hold a database connection for as
/// long as it liked, and a handful of such clients would starve the pool. Here the body
/// must arrive whole within [`BODY_DEADLINE`] (408 otherwise) and within the body limit
/// (413), while nothing is held but the socket.
async fn buffer_body(
    axum::extract::State(max_body_bytes): axum::extract::State<usize>,
    req: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (parts, body) = req.into_parts();
    let bytes =
        match tokio::time::timeout(BODY_DEADLINE, axum::body::to_bytes(body, max_body_bytes)).await
        {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(_)) => {
                return Error::PayloadTooLarge(format!(
                    "request body too large (at most {max_body_bytes} bytes)"
                ))
                .into_response()
            }
            Err(_) => {
                return Error::RequestTimeout(format!(
                    "the request body did not arrive within {} s",
                    BODY_DEADLINE.as_secs()
                ))
                .into_response()
            }
        };
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

/// 405 in the one error shape (axum keeps the `Allow` header).
async fn method_not_allowed(method: axum::http::Method) -> Error {
    Error::MethodNotAllowed(format!("{method} is not allowed on this route"))
}

async fn record_metrics(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let start = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!("pek_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!("pek_http_request_duration_seconds", "method" => method, "route" => route)
        .record(start.elapsed().as_secs_f64());
    resp
}

/// Serves until ctrl-c / SIGTERM.
pub async fn serve(listener: tokio::net::TcpListener, app: Router) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
    tokio::time::sleep(Duration::from_millis(10)).await;
}

/// The router of the metrics listener (`PEK_METRICS_LISTEN`): `/metrics` only.
pub fn metrics_router(state: AppState) -> Router {
    ops::metrics_router(state)
}

/// Installs the Prometheus recorder (idempotent).
pub fn ops_metrics_init() {
    let _ = ops::metrics_handle();
}
