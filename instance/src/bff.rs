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
//! for you". Those merge rules live in one place, [`merge`].

pub mod merge;
pub mod people;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::Router;
use bytes::Bytes;
use futures::future::BoxFuture;
use serde::Serialize;
use uuid::Uuid;

use crate::auth::{ProviderNotAccepted, RealmTokens, TokenRefusal, PROVIDER_NOT_ACCEPTED};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::realm::RealmId;
use crate::registry::{Registry, Status};

/// Who a request to a realm is made for: the signed-in user and the hub token they
/// presented. The hub token is used only in-process ([`LocalBackend`]); a worker gets a
/// short-lived token of its own realm's audience instead ([`RemoteBackend`]), so a worker
/// never sees a token that would open the hub or another realm.
#[derive(Debug, Clone)]
pub struct CallerAuth {
    pub user: Uuid,
    pub hub_token: String,
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
    /// Err: the realm could not be reached (connection, timeout, protocol) — the
    /// message says why.
    fn call(
        &self,
        req: BackendRequest,
    ) -> BoxFuture<'_, std::result::Result<BackendResponse, String>>;
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

    fn call(
        &self,
        req: BackendRequest,
    ) -> BoxFuture<'_, std::result::Result<BackendResponse, String>> {
        Box::pin(async move {
            use tower::ServiceExt;
            let mut builder = axum::http::Request::builder()
                .method(req.method)
                .uri(req.path_and_query);
            if let Some(c) = &req.caller {
                builder = builder.header(header::AUTHORIZATION, format!("Bearer {}", c.hub_token));
            } else if let Some(t) = &req.service_bearer {
                builder = builder.header(header::AUTHORIZATION, format!("Bearer {t}"));
            }
            if let Some(id) = req.request_id {
                builder = builder.header("x-request-id", id);
            }
            if let Some(ct) = req.content_type {
                builder = builder.header(header::CONTENT_TYPE, ct);
            }
            let body = req.body.map(Body::from).unwrap_or_else(Body::empty);
            let request = builder.body(body).map_err(|e| e.to_string())?;
            let resp = self
                .router
                .clone()
                .oneshot(request)
                .await
                .map_err(|e| e.to_string())?;
            let status = resp.status();
            let content_type = resp.headers().get(header::CONTENT_TYPE).cloned();
            let content_disposition = resp.headers().get(header::CONTENT_DISPOSITION).cloned();
            let body = axum::body::to_bytes(resp.into_body(), 16 * 1024 * 1024)
                .await
                .map_err(|e| e.to_string())?;
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
    endpoint: String,
    http: reqwest::Client,
    tokens: Arc<RealmTokens>,
    /// The sign-in providers the realm accepts (`None`: every global one).
    providers: Option<Vec<String>>,
}

impl RealmBackend for RemoteBackend {
    fn realm(&self) -> &RealmId {
        &self.realm
    }

    fn call(
        &self,
        req: BackendRequest,
    ) -> BoxFuture<'_, std::result::Result<BackendResponse, String>> {
        Box::pin(async move {
            let url = format!(
                "{}{}",
                self.endpoint.trim_end_matches('/'),
                req.path_and_query
            );
            let method = reqwest::Method::from_bytes(req.method.as_str().as_bytes())
                .map_err(|e| e.to_string())?;
            let mut rb = self.http.request(method, &url);
            if let Some(c) = &req.caller {
                let token = match self
                    .tokens
                    .token(&c.hub_token, self.realm.as_str(), self.providers.as_deref())
                    .await
                {
                    Ok(t) => t,
                    // The hub answers for the realm, as the realm would for a caller it
                    // refuses: every path (forwarder, fan-out, pages) sees the same 403.
                    Err(TokenRefusal::Provider(p)) => {
                        return Ok(provider_not_accepted(&self.realm, &p))
                    }
                    Err(TokenRefusal::Internal(e)) => {
                        return Err(format!("minting the realm token: {e}"))
                    }
                };
                rb = rb.bearer_auth(&*token);
            } else if let Some(t) = &req.service_bearer {
                rb = rb.bearer_auth(t);
            }
            if let Some(id) = &req.request_id {
                rb = rb.header("x-request-id", id.as_bytes());
            }
            if let Some(ct) = &req.content_type {
                rb = rb.header(reqwest::header::CONTENT_TYPE, ct.as_bytes());
            }
            if let Some(b) = req.body {
                rb = rb.body(b);
            }
            let resp = rb.send().await.map_err(|e| {
                if e.is_connect() {
                    "connection refused".to_string()
                } else if e.is_timeout() {
                    "timed out".to_string()
                } else {
                    format!("request failed: {e}")
                }
            })?;
            let status = StatusCode::from_u16(resp.status().as_u16()).map_err(|e| e.to_string())?;
            let content_type = resp
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok());
            let content_disposition = resp
                .headers()
                .get(reqwest::header::CONTENT_DISPOSITION)
                .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok());
            let body = resp
                .bytes()
                .await
                .map_err(|e| format!("reading the answer: {e}"))?;
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

/// What one realm said in a fan-out.
#[derive(Debug)]
pub enum Outcome {
    /// Any answer but 502/503/504 (a 403 means "nothing there for this caller").
    Answered(BackendResponse),
    /// The realm is not (or no longer) registered.
    Forbidden,
    Unavailable(String),
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
    http: reqwest::Client,
    tokens: Arc<RealmTokens>,
    local: OnceLock<Router>,
    /// (user, realm) pairs whose last access was recorded within the last minute, so the
    /// hot path writes at most once a minute per pair.
    touched: moka::sync::Cache<(Uuid, RealmId), ()>,
}

/// `{items, partial, unavailable}`: a merged fan-out answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Federated<T> {
    pub items: Vec<T>,
    /// True when some realm did not answer; `unavailable` says which.
    pub partial: bool,
    pub unavailable: Vec<RealmId>,
    /// Realms that have nothing for this session because they accept only sessions of
    /// other sign-in providers: "sign in with X to see this" (not a failure).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sign_in_required: Vec<SignInRequired>,
    /// True when a realm had more matches than the limit (narrow the query).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// A realm a fan-out left out because the caller's session signed in with a provider
/// the realm does not accept.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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
        http: reqwest::Client,
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
        match entry.endpoint {
            None => {
                let router = self
                    .local
                    .get()
                    .cloned()
                    .ok_or_else(|| Error::Unavailable("the hub is still starting".into()))?;
                Ok(Arc::new(LocalBackend {
                    realm: realm.clone(),
                    router,
                }))
            }
            Some(_) if entry.status == Status::Maintenance => Err(Error::Unavailable(format!(
                "realm {realm} is in maintenance; try again later"
            ))),
            Some(_) if entry.status == Status::Down => Err(Error::Unavailable(format!(
                "realm {realm} is down (its worker fails the health checks); try again later"
            ))),
            Some(endpoint) => Ok(Arc::new(RemoteBackend {
                realm: realm.clone(),
                endpoint,
                http: self.http.clone(),
                tokens: self.tokens.clone(),
                providers: entry.providers,
            })),
        }
    }

    /// Runs a call's attempts within the per-realm deadline.
    async fn within_deadline(
        &self,
        attempts: impl std::future::Future<Output = Outcome>,
    ) -> Outcome {
        match tokio::time::timeout(self.config.deadline, attempts).await {
            Ok(o) => o,
            Err(_) => Outcome::Unavailable(format!(
                "no answer within {} ms",
                self.config.deadline.as_millis()
            )),
        }
    }

    /// A call that may have had its effect even when no answer came (a forwarded POST,
    /// PATCH…): sent once within the same deadline, never retried, and whatever the realm
    /// answers (a 503 included) is its answer.
    pub async fn call_once(&self, backend: &dyn RealmBackend, req: BackendRequest) -> Outcome {
        self.within_deadline(async {
            match backend.call(req).await {
                Ok(r) => Outcome::Answered(r),
                Err(e) => Outcome::Unavailable(e),
            }
        })
        .await
    }

    /// One call with the deadline and bounded retries.
    pub async fn call(&self, backend: &dyn RealmBackend, req: BackendRequest) -> Outcome {
        let attempts = async {
            let mut last = String::new();
            for attempt in 0..=self.config.retries {
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
                }
                match backend.call(req.clone()).await {
                    Ok(r)
                        if matches!(
                            r.status,
                            StatusCode::BAD_GATEWAY
                                | StatusCode::SERVICE_UNAVAILABLE
                                | StatusCode::GATEWAY_TIMEOUT
                        ) =>
                    {
                        last = format!("answered {}", r.status);
                    }
                    Ok(r) => return Outcome::Answered(r),
                    Err(e) => last = e,
                }
            }
            Outcome::Unavailable(last)
        };
        self.within_deadline(attempts).await
    }

    /// Calls every realm concurrently; `make` builds each realm's request.
    pub async fn fan_out<F>(&self, realms: &[RealmId], make: F) -> Vec<(RealmId, Outcome)>
    where
        F: Fn(&RealmId) -> BackendRequest,
    {
        let calls = realms.iter().map(|realm| {
            let req = make(realm);
            async move {
                let outcome = match self.backend(realm).await {
                    Ok(b) => self.call(b.as_ref(), req).await,
                    Err(Error::NotFound(_)) => Outcome::Forbidden,
                    Err(e) => Outcome::Unavailable(e.to_string()),
                };
                if let Outcome::Unavailable(why) = &outcome {
                    metrics::counter!("pek_bff_realm_unavailable_total", "realm" => realm.to_string())
                        .increment(1);
                    tracing::warn!(realm = %realm, reason = %why, "realm unavailable in fan-out");
                }
                (realm.clone(), outcome)
            }
        });
        futures::future::join_all(calls).await
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

/// Parses a realm's JSON page answer: its `items` and whether it had more.
pub fn page_items(body: &[u8]) -> std::result::Result<(Vec<serde_json::Value>, bool), String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("invalid JSON answer: {e}"))?;
    let items = v
        .get("items")
        .and_then(|i| i.as_array())
        .cloned()
        .ok_or_else(|| "answer has no items".to_string())?;
    let more = v.get("nextCursor").is_some_and(|c| !c.is_null());
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
    pub items: Vec<serde_json::Value>,
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
) -> (Vec<serde_json::Value>, Option<MergedCursor>) {
    let text = |v: &serde_json::Value, k: &str| {
        v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string()
    };
    // (sort key, realm, id) orders the merge; the realm and the item's index in its
    // realm's page say how far into each realm the page went.
    let mut all: Vec<((String, RealmId, String), usize, serde_json::Value)> = Vec::new();
    for p in &pages {
        for (i, v) in p.items.iter().enumerate() {
            let key = (text(v, "sortKey"), p.realm.clone(), text(v, "id"));
            all.push((key, i, v.clone()));
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
    for p in &pages {
        let (n, name, id) =
            taken
                .get(&p.realm)
                .cloned()
                .unwrap_or((0, String::new(), String::new()));
        if n == p.items.len() && !p.more {
            next.0.insert(p.realm.clone(), None);
            continue;
        }
        any_left = true;
        if n > 0 {
            if let Ok(id) = uuid::Uuid::parse_str(&id) {
                next.0
                    .insert(p.realm.clone(), Some(crate::page::encode_cursor(&name, id)));
            }
        }
    }
    let items = all.into_iter().map(|(.., v)| v).collect();
    (items, any_left.then_some(next))
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
        let items: Vec<_> = all[start..].iter().take(limit).cloned().collect();
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
            seen.extend(
                items
                    .iter()
                    .map(|v| v["name"].as_str().unwrap().to_string()),
            );
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
