//! The BFF: routes a caller's request to the realms that own the data and merges the
//! answers (DESIGN §5).
//!
//! Every realm is reached through a [`RealmBackend`]: [`LocalBackend`] runs the request
//! through this process's own router (the hub realm, realms hosted by the hub, the
//! single-instance MVP — no network), [`RemoteBackend`] sends it to the realm's worker
//! over HTTP. Both speak the same routes, so the code that builds requests and reads
//! answers is the same for both. Fan-out calls run concurrently, each with a deadline and
//! bounded retries; a realm that does not answer in time is reported in `unavailable`
//! and the answer is `partial`, never an error. A 403 from a realm means "nothing there
//! for you". Those merge rules live in one place, [`merge`]; fan-outs merge each answer as
//! it arrives ([`Bff::fan_out_merged`]).
//!
//! Per call, the hub does as little as a reverse proxy: the realm's backend (its parsed
//! endpoint, the shared connection pool, the realm-token cache) is made once per
//! registration, not per request; identical GETs of one caller in flight together share
//! one call ([`coalesce`]); and a realm's deadline counts the realm's time, not the hub's
//! own queueing ([`budget`]).

pub mod budget;
pub mod client;
pub mod coalesce;
pub mod left_out;
pub mod merge;
pub mod people;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::Router;
use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt};
use futures::stream::{FuturesUnordered, StreamExt};
use serde::Serialize;
use uuid::Uuid;

use crate::auth::{ProviderNotAccepted, RealmTokens, TokenRefusal, PROVIDER_NOT_ACCEPTED};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::realm::RealmId;
use crate::registry::{Registry, Status};

use self::left_out::{Failure, Reason};

/// Who a request to a realm is made for: the signed-in user and the hub token they
/// presented. The hub token is used only in-process ([`LocalBackend`]); a worker gets a
/// short-lived token of its own realm's audience instead ([`RemoteBackend`]), so a worker
/// never sees a token that would open the hub or another realm.
#[derive(Debug, Clone)]
pub struct CallerAuth {
    pub user: Uuid,
    pub hub_token: Arc<str>,
    /// The hub token's claims once verified: shared by the request's calls (its clones),
    /// so a request that asks 32 realms verifies the token once, not 32 times.
    verified: Arc<tokio::sync::OnceCell<crate::auth::Claims>>,
}

impl CallerAuth {
    pub fn new(user: Uuid, hub_token: impl Into<Arc<str>>) -> Self {
        CallerAuth {
            user,
            hub_token: hub_token.into(),
            verified: Arc::default(),
        }
    }
}

/// A request to one realm, in the shape of the public realm routes.
#[derive(Debug, Clone)]
pub struct BackendRequest {
    pub method: Method,
    /// `/api/v1/realms/{realm}/…?…`
    pub path_and_query: String,
    /// The caller, if signed in.
    pub caller: Option<CallerAuth>,
    /// A service-to-service call made by the hub itself (no person behind it): this
    /// bearer credential (e.g. the realm's federation token) is sent as it is.
    pub service_bearer: Option<String>,
    pub request_id: Option<HeaderValue>,
    pub body: Option<Bytes>,
    /// The body's media type, passed on as given (never relabelled: the realm applies
    /// the same Content-Type rule as to a direct call).
    pub content_type: Option<HeaderValue>,
}

impl BackendRequest {
    pub fn get(path_and_query: String, caller: Option<CallerAuth>) -> Self {
        BackendRequest {
            method: Method::GET,
            path_and_query,
            caller,
            service_bearer: None,
            request_id: None,
            body: None,
            content_type: None,
        }
    }

    /// A request with a JSON body built by the hub itself.
    pub fn json(
        method: Method,
        path_and_query: String,
        caller: Option<CallerAuth>,
        body: Vec<u8>,
    ) -> Self {
        BackendRequest {
            method,
            body: Some(body.into()),
            content_type: Some(HeaderValue::from_static("application/json")),
            ..BackendRequest::get(path_and_query, caller)
        }
    }
}

#[derive(Debug, Clone)]
pub struct BackendResponse {
    pub status: StatusCode,
    pub content_type: Option<HeaderValue>,
    /// A download's name (the CSV exports), passed on by forwarding.
    pub content_disposition: Option<HeaderValue>,
    pub body: Bytes,
}

/// One realm's API, wherever it runs.
pub trait RealmBackend: Send + Sync {
    fn realm(&self) -> &RealmId;
    /// Err: the realm could not be reached (connection, timeout, protocol), and why.
    /// Borrows the request, so a retry sends it again without a copy.
    fn call<'a>(
        &'a self,
        req: &'a BackendRequest,
    ) -> BoxFuture<'a, std::result::Result<BackendResponse, Failure>>;
}

/// A realm served by this process: the request goes through the in-process router.
pub struct LocalBackend {
    realm: RealmId,
    router: Router,
}

impl RealmBackend for LocalBackend {
    fn realm(&self) -> &RealmId {
        &self.realm
    }

    fn call<'a>(
        &'a self,
        req: &'a BackendRequest,
    ) -> BoxFuture<'a, std::result::Result<BackendResponse, Failure>> {
        Box::pin(async move {
            use tower::ServiceExt;
            let mut builder = axum::http::Request::builder()
                .method(req.method.clone())
                .uri(req.path_and_query.as_str());
            if let Some(c) = &req.caller {
                builder = builder.header(header::AUTHORIZATION, format!("Bearer {}", c.hub_token));
            } else if let Some(t) = &req.service_bearer {
                builder = builder.header(header::AUTHORIZATION, format!("Bearer {t}"));
            }
            if let Some(id) = &req.request_id {
                builder = builder.header("x-request-id", id);
            }
            if let Some(ct) = &req.content_type {
                builder = builder.header(header::CONTENT_TYPE, ct);
            }
            let body = req.body.clone().map(Body::from).unwrap_or_else(Body::empty);
            let failing = |e: &dyn std::fmt::Display| Failure::new(Reason::Failing, e.to_string());
            let request = builder.body(body).map_err(|e| failing(&e))?;
            let resp = self
                .router
                .clone()
                .oneshot(request)
                .await
                .map_err(|e| failing(&e))?;
            let status = resp.status();
            let content_type = resp.headers().get(header::CONTENT_TYPE).cloned();
            let content_disposition = resp.headers().get(header::CONTENT_DISPOSITION).cloned();
            let body = axum::body::to_bytes(resp.into_body(), 16 * 1024 * 1024)
                .await
                .map_err(|e| failing(&e))?;
            Ok(BackendResponse {
                status,
                content_type,
                content_disposition,
                body,
            })
        })
    }
}

/// A realm served by a worker: the request goes over HTTP to its endpoint, with a token
/// minted for that realm (never the caller's hub token).
pub struct RemoteBackend {
    realm: RealmId,
    /// The registered endpoint, parsed once: a request's path follows it.
    origin: client::Origin,
    http: client::WorkerClient,
    tokens: Arc<RealmTokens>,
    /// The sign-in providers the realm accepts (`None`: every global one).
    providers: Option<Vec<String>>,
}

impl RealmBackend for RemoteBackend {
    fn realm(&self) -> &RealmId {
        &self.realm
    }

    fn call<'a>(
        &'a self,
        req: &'a BackendRequest,
    ) -> BoxFuture<'a, std::result::Result<BackendResponse, Failure>> {
        Box::pin(async move {
            let failing = |e: String| Failure::new(Reason::Failing, e);
            let uri = self
                .origin
                .uri(&req.path_and_query)
                .map_err(|e| failing(format!("the realm's URL: {e}")))?;
            let mut rb = axum::http::Request::builder()
                .method(req.method.clone())
                .uri(uri);
            if let Some(c) = &req.caller {
                let minted = c
                    .verified
                    .get_or_try_init(|| self.tokens.verify(&c.hub_token))
                    .await
                    .and_then(|claims| {
                        self.tokens
                            .mint(claims, self.realm.as_str(), self.providers.as_deref())
                    });
                let token = match minted {
                    Ok(t) => t,
                    // The hub answers for the realm, as the realm would for a caller it
                    // refuses: every path (forwarder, fan-out, pages) sees the same 403.
                    Err(TokenRefusal::Provider(p)) => {
                        return Ok(provider_not_accepted(&self.realm, &p))
                    }
                    Err(TokenRefusal::Internal(e)) => {
                        tracing::error!(realm = %self.realm, error = %e, "minting a realm token");
                        return Err(failing("the hub could not mint a realm token".into()));
                    }
                };
                rb = rb.header(header::AUTHORIZATION, format!("Bearer {token}"));
            } else if let Some(t) = &req.service_bearer {
                rb = rb.header(header::AUTHORIZATION, format!("Bearer {t}"));
            }
            if let Some(id) = &req.request_id {
                rb = rb.header("x-request-id", id);
            }
            if let Some(ct) = &req.content_type {
                rb = rb.header(header::CONTENT_TYPE, ct);
            }
            let body = http_body_util::Full::new(req.body.clone().unwrap_or_default());
            let request = rb.body(body).map_err(|e| failing(e.to_string()))?;
            // Reasons reach callers (a forwarded call's 503): never with the worker's URL.
            let resp = self.http.request(request).await.map_err(|e| {
                if e.is_connect() {
                    // Refused, or not accepted within the connect timeout.
                    Failure::new(Reason::Unreachable, "could not connect")
                } else {
                    Failure::new(Reason::Unreachable, format!("request failed: {e}"))
                }
            })?;
            let status = resp.status();
            let content_type = resp.headers().get(header::CONTENT_TYPE).cloned();
            let content_disposition = resp.headers().get(header::CONTENT_DISPOSITION).cloned();
            let body = http_body_util::BodyExt::collect(resp.into_body())
                .await
                .map_err(|e| Failure::new(Reason::Unreachable, format!("reading the answer: {e}")))?
                .to_bytes();
            Ok(BackendResponse {
                status,
                content_type,
                content_disposition,
                body,
            })
        })
    }
}

/// The hub's 403 for a realm that does not accept the provider the caller's session
/// signed in with: `reason` [`PROVIDER_NOT_ACCEPTED`], and the providers it does accept
/// (`providers`), so a client can say "sign in with X to see this".
fn provider_not_accepted(realm: &RealmId, p: &ProviderNotAccepted) -> BackendResponse {
    let body = serde_json::json!({
        "error": {
            "code": "forbidden",
            "reason": PROVIDER_NOT_ACCEPTED,
            "message": format!(
                "realm {realm} does not accept sign-ins through {}: sign in with {} to see it",
                p.provider,
                p.names.join(" or ")
            ),
            "providers": p.providers,
            "providerNames": p.names,
        }
    });
    BackendResponse {
        status: StatusCode::FORBIDDEN,
        content_type: Some(HeaderValue::from_static("application/json")),
        content_disposition: None,
        body: Bytes::from(body.to_string()),
    }
}

/// The providers (ids, display names) a hub 403 of [`provider_not_accepted`] names;
/// `None` for any other answer.
pub fn sign_in_required(r: &BackendResponse) -> Option<(Vec<String>, Vec<String>)> {
    if r.status != StatusCode::FORBIDDEN {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
    let e = v.get("error")?;
    if e.get("reason")?.as_str()? != PROVIDER_NOT_ACCEPTED {
        return None;
    }
    let list = |k: &str| -> Option<Vec<String>> {
        Some(
            e.get(k)?
                .as_array()?
                .iter()
                .filter_map(|p| p.as_str().map(String::from))
                .collect(),
        )
    };
    Some((list("providers")?, list("providerNames")?))
}

/// What one realm said in a fan-out (cloned for every request that shared the call).
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Any answer but 502/503/504 (a 403 means "nothing there for this caller").
    Answered(BackendResponse),
    /// The realm is not (or no longer) registered.
    Forbidden,
    Unavailable(Failure),
}

#[derive(Clone, Debug)]
pub struct BffConfig {
    /// Per-realm deadline of a call (all attempts together).
    pub deadline: Duration,
    /// Extra attempts after a failed one (connection errors and 502/503/504).
    pub retries: u32,
}

impl Default for BffConfig {
    fn default() -> Self {
        BffConfig {
            deadline: Duration::from_millis(2000),
            retries: 1,
        }
    }
}

pub struct Bff {
    pub db: Db,
    pub registry: Registry,
    pub cache: crate::cache::RealmCache,
    pub config: BffConfig,
    http: client::WorkerClient,
    tokens: Arc<RealmTokens>,
    local: OnceLock<Router>,
    /// (user, realm) pairs whose last access was recorded within the last minute, so the
    /// hot path writes at most once a minute per pair.
    touched: moka::sync::Cache<(Uuid, RealmId), ()>,
    /// Each realm's backend with the registration it was made from: made again when the
    /// registration changes what the backend holds (a new endpoint, to or from the hub, or
    /// another list of accepted sign-in providers — a realm that narrows it must not keep
    /// getting tokens for the providers it dropped).
    backends: RwLock<HashMap<RealmId, MadeBackend>>,
    /// Identical GETs of one caller in flight together.
    coalescer: coalesce::Coalescer,
}

/// A realm's backend and the endpoint (`None`: served by the hub) and accepted providers
/// it was made for.
type MadeBackend = (Option<String>, Option<Vec<String>>, Arc<dyn RealmBackend>);

/// `{items, partial, unavailable, leftOut}`: a merged fan-out answer.
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Federated<T> {
    pub items: Vec<T>,
    #[serde(flatten)]
    pub coverage: Coverage,
    /// True when a realm had more matches than the limit (narrow the query).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// Which realms an answer merged from several covers. Every such answer has these
/// fields (flattened into it), whatever else it holds.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Coverage {
    /// True when some realm did not answer: the answer may be incomplete.
    pub partial: bool,
    /// The realms that did not answer, sorted.
    pub unavailable: Vec<RealmId>,
    /// The same realms, each with why it was left out.
    #[serde(default)]
    pub left_out: Vec<left_out::LeftOut>,
    /// Realms that have nothing for this session because they accept only sessions of
    /// other sign-in providers: "sign in with X to see this" (not a failure).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sign_in_required: Vec<SignInRequired>,
}

impl Coverage {
    /// The coverage of an answer that left out `left_out` (in any order, a realm maybe
    /// more than once: the first reason counts).
    pub fn new(
        mut left_out: Vec<left_out::LeftOut>,
        sign_in_required: Vec<SignInRequired>,
    ) -> Self {
        left_out.sort_by(|a, b| a.realm.cmp(&b.realm));
        left_out.dedup_by(|later, first| later.realm == first.realm);
        Coverage {
            partial: !left_out.is_empty(),
            unavailable: left_out.iter().map(|l| l.realm.clone()).collect(),
            left_out,
            sign_in_required,
        }
    }

    /// Adds what another fan-out for the same answer left out.
    pub fn add(&mut self, other: Coverage) {
        let mut left_out = std::mem::take(&mut self.left_out);
        left_out.extend(other.left_out);
        let mut sign_in = std::mem::take(&mut self.sign_in_required);
        sign_in.extend(other.sign_in_required);
        *self = Coverage::new(left_out, sign_in);
    }
}

/// A realm a fan-out left out because the caller's session signed in with a provider
/// the realm does not accept.
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignInRequired {
    pub realm: RealmId,
    /// The sign-in providers (ids, for `/auth/login?provider=…`) whose sessions see
    /// this realm.
    pub providers: Vec<String>,
    /// Their display names, in the same order.
    pub provider_names: Vec<String>,
}

impl Bff {
    pub fn new(
        db: Db,
        registry: Registry,
        cache: crate::cache::RealmCache,
        config: BffConfig,
        http: client::WorkerClient,
        tokens: RealmTokens,
    ) -> Self {
        Bff {
            db,
            registry,
            cache,
            config,
            http,
            tokens: Arc::new(tokens),
            local: OnceLock::new(),
            touched: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(60))
                .build(),
            backends: RwLock::new(HashMap::new()),
            coalescer: coalesce::Coalescer::default(),
        }
    }

    /// The router that local backends run requests through (set once the router is
    /// built, since the router itself holds the BFF).
    pub fn set_local_router(&self, router: Router) {
        let _ = self.local.set(router);
    }

    /// The backend of a registered realm; 404 when unknown, 503 in maintenance, and 503
    /// at once while the health checks have it `down` (they keep probing it in the
    /// background and mark it active again on the first good answer), so a dead realm
    /// does not cost every call the full deadline.
    pub async fn backend(&self, realm: &RealmId) -> Result<Arc<dyn RealmBackend>> {
        let entry = self
            .registry
            .get(realm)
            .await
            .ok_or_else(|| Error::not_found(format!("realm {realm}")))?;
        self.backend_of(&entry).map_err(|f| {
            let message = f.detail.clone();
            f.into_error(message)
        })
    }

    /// The backend of a registered realm, or why it cannot be asked now; `None` when the
    /// realm is not registered.
    pub async fn reach(
        &self,
        realm: &RealmId,
    ) -> Option<std::result::Result<Arc<dyn RealmBackend>, Failure>> {
        let entry = self.registry.get(realm).await?;
        Some(self.backend_of(&entry))
    }

    /// The backend of a realm served by a worker; `None` when the realm is not
    /// registered or is served by the hub itself (its own handlers answer).
    pub async fn remote_backend(&self, realm: &RealmId) -> Option<Result<Arc<dyn RealmBackend>>> {
        let entry = self.registry.get(realm).await?;
        entry.endpoint.as_ref()?;
        Some(self.backend_of(&entry).map_err(|f| {
            let message = f.detail.clone();
            f.into_error(message)
        }))
    }

    /// The backend of a registered realm, or why the realm cannot be asked now (its
    /// detail is the 503's message of a forwarded call).
    fn backend_of(
        &self,
        entry: &crate::registry::Entry,
    ) -> std::result::Result<Arc<dyn RealmBackend>, Failure> {
        let realm = &entry.id;
        match entry.status {
            _ if entry.endpoint.is_none() => {}
            Status::Maintenance => {
                return Err(Failure::new(
                    Reason::Maintenance,
                    format!("realm {realm} is in maintenance; try again later"),
                ))
            }
            Status::Down => {
                return Err(Failure::new(
                    Reason::Down,
                    format!(
                        "realm {realm} is down (its worker fails the health checks); try \
                         again later"
                    ),
                ))
            }
            Status::Active => {}
        }
        if let Ok(map) = self.backends.read() {
            if let Some((endpoint, providers, b)) = map.get(realm) {
                if *endpoint == entry.endpoint && *providers == entry.providers {
                    return Ok(b.clone());
                }
            }
        }
        let backend: Arc<dyn RealmBackend> = match &entry.endpoint {
            None => {
                let router =
                    self.local.get().cloned().ok_or_else(|| {
                        Failure::new(Reason::Failing, "the hub is still starting")
                    })?;
                Arc::new(LocalBackend {
                    realm: realm.clone(),
                    router,
                })
            }
            Some(endpoint) => Arc::new(RemoteBackend {
                realm: realm.clone(),
                origin: client::Origin::parse(endpoint).ok_or_else(|| {
                    Failure::new(
                        Reason::Failing,
                        format!("realm {realm} has no usable endpoint (not an http(s) URL)"),
                    )
                })?,
                http: self.http.clone(),
                tokens: self.tokens.clone(),
                providers: entry.providers.clone(),
            }),
        };
        if let Ok(mut map) = self.backends.write() {
            map.insert(
                realm.clone(),
                (
                    entry.endpoint.clone(),
                    entry.providers.clone(),
                    backend.clone(),
                ),
            );
        }
        Ok(backend)
    }

    /// A call that may have had its effect even when no answer came (a forwarded POST,
    /// PATCH…): sent once within the same deadline, never retried, and whatever the realm
    /// answers (a 503 included) is its answer.
    pub async fn call_once(&self, backend: &Arc<dyn RealmBackend>, req: BackendRequest) -> Outcome {
        let once = async {
            match backend.call(&req).await {
                Ok(r) => Outcome::Answered(r),
                Err(e) => Outcome::Unavailable(e),
            }
        };
        budget::within(self.config.deadline, once)
            .await
            .unwrap_or_else(|spent| {
                Outcome::Unavailable(Failure::new(Reason::Timeout, spent.to_string()))
            })
    }

    /// One call with the deadline and bounded retries. Identical GETs of the same caller
    /// in flight together share one call ([`coalesce`]).
    pub async fn call(&self, backend: &Arc<dyn RealmBackend>, req: BackendRequest) -> Outcome {
        let Some(key) = coalesce::Key::of(backend.realm(), &req) else {
            return self.attempts(backend.clone(), req).await;
        };
        let (call, started) = self
            .coalescer
            .join(key, || self.attempts(backend.clone(), req).boxed());
        if !started {
            metrics::counter!("pek_bff_coalesced_total").increment(1);
        }
        call.await
    }

    /// The attempts of a call (the first and the retries) within its budget; owns what
    /// it needs, so that requests joining it can share it.
    fn attempts(
        &self,
        backend: Arc<dyn RealmBackend>,
        req: BackendRequest,
    ) -> impl std::future::Future<Output = Outcome> + Send + 'static {
        let retries = self.config.retries;
        let deadline = self.config.deadline;
        async move {
            let attempts = async {
                let mut last = Failure::new(Reason::Failing, "no attempt");
                for attempt in 0..=retries {
                    if attempt > 0 {
                        tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
                    }
                    match backend.call(&req).await {
                        Ok(r)
                            if matches!(
                                r.status,
                                StatusCode::BAD_GATEWAY
                                    | StatusCode::SERVICE_UNAVAILABLE
                                    | StatusCode::GATEWAY_TIMEOUT
                            ) =>
                        {
                            last = Failure::new(Reason::Failing, format!("answered {}", r.status));
                        }
                        Ok(r) => return Outcome::Answered(r),
                        Err(e) => last = e,
                    }
                }
                Outcome::Unavailable(last)
            };
            budget::within(deadline, attempts)
                .await
                .unwrap_or_else(|spent| {
                    Outcome::Unavailable(Failure::new(Reason::Timeout, spent.to_string()))
                })
        }
    }

    /// One realm of a fan-out: its backend and the call.
    async fn ask(&self, realm: &RealmId, req: BackendRequest) -> (RealmId, Outcome) {
        let outcome = match self.reach(realm).await {
            None => Outcome::Forbidden,
            Some(Ok(b)) => self.call(&b, req).await,
            Some(Err(f)) => Outcome::Unavailable(f),
        };
        if let Outcome::Unavailable(why) = &outcome {
            metrics::counter!("pek_bff_realm_unavailable_total", "realm" => realm.to_string(),
                "reason" => why.reason.as_str())
            .increment(1);
            tracing::warn!(realm = %realm, reason = why.reason.as_str(), detail = %why,
                "realm unavailable in fan-out");
        }
        (realm.clone(), outcome)
    }

    /// Calls every realm concurrently (`make` builds each realm's request) and merges by
    /// the rules of [`merge`], reading each answer as it arrives rather than once the
    /// slowest realm is in: the reading overlaps the wait, and a caller's error (a 400 or
    /// 422 under `rules.caller_errors_fail`) is the answer at once.
    pub async fn fan_out_merged<T, F>(
        &self,
        realms: &[RealmId],
        make: F,
        rules: merge::Rules,
        mut read: impl FnMut(&RealmId, &BackendResponse) -> std::result::Result<(T, bool), String>,
    ) -> Result<merge::Merged<T>>
    where
        F: Fn(&RealmId) -> BackendRequest,
    {
        let mut calls: FuturesUnordered<_> = realms
            .iter()
            .map(|realm| self.ask(realm, make(realm)))
            .collect();
        let mut contributions = Vec::with_capacity(realms.len());
        while let Some((realm, outcome)) = calls.next().await {
            let c = merge::contribution(&realm, outcome, rules, &mut read)?;
            contributions.push((realm, c));
        }
        Ok(merge::combine(contributions))
    }

    /// The realms `user` is in (cached; invalidated by membership changes).
    pub async fn caller_realms(&self, user: Uuid) -> Result<Vec<RealmId>> {
        if let Some(hit) = self.cache.get(user).await {
            return Ok(hit);
        }
        let fill = self.cache.begin_fill(user).await;
        let realms = crate::federation::user_realms(&self.db, user).await?;
        self.cache.finish_fill(fill, &realms).await;
        Ok(realms)
    }

    /// Fire-and-forget `last_access_at` update.
    pub fn touch(&self, user: Uuid, realm: &RealmId) {
        let key = (user, realm.clone());
        if self.touched.contains_key(&key) {
            return;
        }
        self.touched.insert(key, ());
        let db = self.db.clone();
        let realm = realm.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::federation::touch(&db, user, &realm).await {
                tracing::debug!(error = %e, "recording last access failed");
            }
        });
    }
}

/// One item of a realm's page as the realm wrote it, with what orders it in a merge.
/// The hub passes items on without building them into a tree of values and writing
/// them out again: of a fan-out's own work, that was the largest part after the calls.
#[derive(Debug)]
pub struct PageItem {
    pub raw: Box<serde_json::value::RawValue>,
    sort_key: String,
    id: String,
}

/// What orders an item: its `sortKey` and `id` (absent: empty), the rest left unread.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ItemKey {
    #[serde(default)]
    sort_key: Option<String>,
    #[serde(default)]
    id: Option<String>,
}

impl PageItem {
    fn read(raw: &serde_json::value::RawValue) -> std::result::Result<Self, String> {
        let key: ItemKey = serde_json::from_str(raw.get())
            .map_err(|e| format!("invalid item in the answer: {e}"))?;
        Ok(PageItem {
            raw: raw.to_owned(),
            sort_key: key.sort_key.unwrap_or_default(),
            id: key.id.unwrap_or_default(),
        })
    }
}

/// Parses a realm's JSON page answer: its `items` and whether it had more.
pub fn page_items(body: &[u8]) -> std::result::Result<(Vec<PageItem>, bool), String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Page<'a> {
        #[serde(borrow)]
        items: Option<Vec<&'a serde_json::value::RawValue>>,
        /// `null` reads as absent: the last page.
        #[serde(default, borrow)]
        next_cursor: Option<&'a serde_json::value::RawValue>,
    }
    let page: Page<'_> =
        serde_json::from_slice(body).map_err(|e| format!("invalid JSON answer: {e}"))?;
    let more = page.next_cursor.is_some();
    let items = page.items.ok_or("answer has no items")?;
    let items = items
        .into_iter()
        .map(PageItem::read)
        .collect::<std::result::Result<_, _>>()?;
    Ok((items, more))
}

/// Where a paged cross-realm search stands in each realm: the opaque cursor of the
/// JSON API and the pages. A realm absent from the map starts from its beginning; `None`
/// means the realm has nothing more; `Some(c)` continues after the realm's cursor `c`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, Serialize)]
pub struct MergedCursor(pub std::collections::BTreeMap<RealmId, Option<String>>);

impl MergedCursor {
    pub fn decode(s: &str) -> Result<Self> {
        use base64::Engine;
        let bad = || Error::BadRequest("invalid cursor".into());
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| bad())?;
        serde_json::from_slice(&raw).map_err(|_| bad())
    }

    pub fn encode(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&self.0).unwrap_or_default())
    }

    /// Where the realm's next page starts.
    pub fn position(&self, realm: &RealmId) -> Position<'_> {
        match self.0.get(realm) {
            None => Position::Start,
            Some(None) => Position::Done,
            Some(Some(c)) => Position::After(c.as_str()),
        }
    }
}

/// A realm's place in a merged search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position<'a> {
    Start,
    /// After the realm's own cursor.
    After(&'a str),
    /// The realm has nothing more.
    Done,
}

/// One realm's page in a merged search: its items (in the realm's order) and whether
/// it has more after them.
pub struct RealmPage {
    pub realm: RealmId,
    pub items: Vec<PageItem>,
    pub more: bool,
}

/// Merges realms' next group pages (each asked for `limit` items after its position in
/// `from`) into one page of at most `limit`, ordered like a single realm orders groups
/// (the name's Hungarian sort key `sortKey`, then realm and id). Returns the page and the cursor of the next page
/// (`None` when every realm that answered is exhausted). Realms that did not answer keep
/// their position, so a later page asks them again.
pub fn merge_group_pages(
    from: &MergedCursor,
    pages: Vec<RealmPage>,
    limit: usize,
) -> (Vec<Box<serde_json::value::RawValue>>, Option<MergedCursor>) {
    // Each realm's page length and whether it has more, for the cursor; the items
    // themselves move into the merge.
    let sizes: Vec<(RealmId, usize, bool)> = pages
        .iter()
        .map(|p| (p.realm.clone(), p.items.len(), p.more))
        .collect();
    // (sort key, realm, id) orders the merge; the realm and the item's index in its
    // realm's page say how far into each realm the page went.
    type Key = (String, RealmId, String);
    let mut all: Vec<(Key, usize, Box<serde_json::value::RawValue>)> =
        Vec::with_capacity(sizes.iter().map(|s| s.1).sum());
    for p in pages {
        for (i, item) in p.items.into_iter().enumerate() {
            let key = (item.sort_key, p.realm.clone(), item.id);
            all.push((key, i, item.raw));
        }
    }
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all.truncate(limit);
    let mut next = from.clone();
    let mut taken: std::collections::BTreeMap<RealmId, (usize, String, String)> =
        Default::default();
    for ((name, realm, id), i, _) in &all {
        // Items come in merged order, so the last one seen per realm is its furthest.
        taken.insert(realm.clone(), (i + 1, name.clone(), id.clone()));
    }
    let mut any_left = false;
    for (realm, len, more) in sizes {
        let (n, name, id) = taken
            .get(&realm)
            .cloned()
            .unwrap_or((0, String::new(), String::new()));
        if n == len && !more {
            next.0.insert(realm, None);
            continue;
        }
        any_left = true;
        if n > 0 {
            if let Ok(id) = uuid::Uuid::parse_str(&id) {
                next.0
                    .insert(realm, Some(crate::page::encode_cursor(&name, id)));
            }
        }
    }
    let items = all.into_iter().map(|(.., v)| v).collect();
    (items, any_left.then_some(next))
}

#[cfg(test)]
mod page_items_tests {
    use super::page_items;

    #[test]
    fn items_pass_through_as_written_and_a_null_cursor_is_the_last_page() {
        let body = br#"{"items":[{"id":"b","sortKey":"k\u00e1","name":"K\u00e1r","n":[1,2]},{"name":"no key"}],"nextCursor":null}"#;
        let (items, more) = page_items(body).expect("page");
        assert!(!more);
        assert_eq!(
            items[0].raw.get(),
            r#"{"id":"b","sortKey":"k\u00e1","name":"K\u00e1r","n":[1,2]}"#
        );
        assert_eq!(
            (items[0].sort_key.as_str(), items[0].id.as_str()),
            ("ká", "b")
        );
        assert_eq!((items[1].sort_key.as_str(), items[1].id.as_str()), ("", ""));
        let (_, more) = page_items(br#"{"items":[],"nextCursor":"abc"}"#).expect("page");
        assert!(more);
        let (_, more) = page_items(br#"{"items":[]}"#).expect("page");
        assert!(!more);
    }

    #[test]
    fn an_answer_without_items_or_with_a_bad_item_is_refused() {
        for body in [
            &br#"{"nextCursor":null}"#[..],
            br#"{"items":null}"#,
            br#"{"items":{}}"#,
            br#"{"items":[{"sortKey":1}]}"#,
            b"not json",
        ] {
            assert!(
                page_items(body).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}

#[cfg(test)]
mod merged_cursor_tests {
    use super::*;

    fn group(name: &str, n: u128) -> serde_json::Value {
        serde_json::json!({
            "name": name,
            "sortKey": crate::text::fold(name),
            "id": uuid::Uuid::from_u128(n).to_string(),
        })
    }

    /// A realm's page after a cursor: what the realm's own keyset paging answers.
    fn realm_page(
        realm: &RealmId,
        all: &[serde_json::Value],
        from: &MergedCursor,
        limit: usize,
    ) -> Option<RealmPage> {
        let start = match from.position(realm) {
            Position::Done => return None,
            Position::Start => 0,
            Position::After(c) => {
                let c = crate::page::PageParams {
                    limit: None,
                    cursor: Some(c.parse().unwrap()),
                }
                .cursor()
                .unwrap()
                .unwrap();
                all.iter()
                    .position(|v| {
                        (
                            v["sortKey"].as_str().unwrap().to_string(),
                            v["id"].as_str().unwrap().to_string(),
                        ) > (c.key.clone(), c.id.to_string())
                    })
                    .unwrap_or(all.len())
            }
        };
        let items: Vec<_> = all[start..]
            .iter()
            .take(limit)
            .map(|v| {
                let raw = serde_json::value::to_raw_value(v).unwrap();
                PageItem::read(&raw).unwrap()
            })
            .collect();
        Some(RealmPage {
            realm: realm.clone(),
            more: start + items.len() < all.len(),
            items,
        })
    }

    #[test]
    fn next_pages_walk_every_realm_in_order_without_gaps_or_repeats() {
        let a = RealmId::parse("alpha").unwrap();
        let b = RealmId::parse("beta").unwrap();
        let in_a: Vec<_> = ["Ádám", "Bence", "Csaba", "Dénes", "Elek"]
            .iter()
            .enumerate()
            .map(|(i, n)| group(n, i as u128 + 1))
            .collect();
        let in_b: Vec<_> = ["Anna", "Bea", "Zita"]
            .iter()
            .enumerate()
            .map(|(i, n)| group(n, i as u128 + 100))
            .collect();
        let mut cursor = MergedCursor::default();
        let mut seen = Vec::new();
        let mut pages = 0;
        loop {
            let asked: Vec<_> = [(&a, &in_a), (&b, &in_b)]
                .into_iter()
                .filter_map(|(r, all)| realm_page(r, all, &cursor, 2))
                .collect();
            let (items, next) = merge_group_pages(&cursor, asked, 2);
            pages += 1;
            seen.extend(items.iter().map(|raw| {
                let v: serde_json::Value = serde_json::from_str(raw.get()).unwrap();
                v["name"].as_str().unwrap().to_string()
            }));
            match next {
                Some(n) => cursor = MergedCursor::decode(&n.encode()).unwrap(),
                None => break,
            }
            assert!(pages < 10, "paging does not end");
        }
        assert_eq!(
            seen,
            ["Ádám", "Anna", "Bea", "Bence", "Csaba", "Dénes", "Elek", "Zita"]
        );
        assert_eq!(pages, 4);
    }

    #[test]
    fn garbage_cursors_are_bad_requests() {
        assert!(matches!(
            MergedCursor::decode("%%%"),
            Err(Error::BadRequest(_))
        ));
        assert!(matches!(MergedCursor::decode("e30"), Ok(c) if c == MergedCursor::default()));
    }
}
