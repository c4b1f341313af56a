//! Wiring: configuration → migrated database → state → router.

use anyhow::Context;
use axum::Router;

use std::time::Duration;

use crate::auth::{KeyRing, Verifier};
use crate::config::{Mode, ServeArgs};
use crate::db::{self, Db};
use crate::http::{self, AppState};
use crate::realm::{self, RealmId};

/// Reads accepted operator tokens: one per line, blank lines and `#` comments ignored.
pub fn read_tokens(path: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading operator token file {}", path.display()))?;
    let tokens: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    anyhow::ensure!(
        tokens.iter().all(|t| t.len() >= 16),
        "operator tokens must be at least 16 characters"
    );
    Ok(tokens)
}

pub async fn build(args: &ServeArgs) -> anyhow::Result<(AppState, Router)> {
    let worker_realm = match args.db.mode {
        Mode::Worker => Some(
            RealmId::parse(
                args.realm_id
                    .as_deref()
                    .context("worker mode needs PEK_REALM_ID")?,
            )
            .map_err(|e| anyhow::anyhow!("PEK_REALM_ID: {e}"))?,
        ),
        Mode::Hub => None,
    };
    if let Some(r) = &worker_realm {
        anyhow::ensure!(!r.is_hub(), "a worker cannot serve the hub realm");
    }
    if !args.no_migrate {
        let owner = args
            .db
            .migration_database_url
            .as_deref()
            .unwrap_or(&args.db.database_url);
        let service_role = db::url_role(&args.db.database_url).map_err(anyhow::Error::msg)?;
        db::migrate(owner, args.db.mode, Some(&service_role))
            .await
            .context("migrations failed")?;
    }
    let db = Db::connect(&args.db.database_url, args.db_max_connections).await?;
    db.check_service_role().await?;
    if let Some(r) = &worker_realm {
        let name = args
            .realm_display_name
            .clone()
            .unwrap_or_else(|| r.to_string());
        realm::ensure_local(&db, r, &name, None)
            .await
            .map_err(chain)
            .with_context(|| format!("creating realm {r}"))?;
    }
    let keys = match args.db.mode {
        Mode::Hub => Some(std::sync::Arc::new(signing_keys(args)?)),
        Mode::Worker => None,
    };
    let verifier = verifier(args, keys.as_deref())?;
    let tokens = match &args.operator_token_file {
        Some(p) => read_tokens(p)?,
        None => Vec::new(),
    };
    let mut state = crate::http::AppShared::new(
        db.clone(),
        args.db.mode,
        verifier,
        worker_realm.clone(),
        tokens,
    )
    .await
    .map_err(chain)?;
    state.max_body_bytes = args.max_body_bytes;
    state.public_origin = args
        .public_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(crate::http::origin_of)
        .transpose()?
        .flatten();
    state.directory = match (
        args.db.mode,
        &args.directory_token_file,
        &args.hub_token_file,
    ) {
        (Mode::Hub, Some(p), _) => Some(std::sync::Arc::new(
            crate::service_directory::DirectoryAuth::hub(
                crate::service_directory::read_service_tokens(p)?,
            ),
        )),
        (Mode::Worker, _, Some(p)) => Some(std::sync::Arc::new(
            crate::service_directory::DirectoryAuth::worker(crate::federation::read_secret(
                p,
                "hub token",
            )?),
        )),
        _ => None,
    };
    state
        .verifier
        .spawn_refresh(Duration::from_secs(args.jwks_refresh_seconds.max(1)));
    if let Some(keys) = keys {
        let login = crate::login::Login::new(args, keys.clone())?;
        state.users = std::sync::Arc::new(crate::directory::Users::Hub(
            state.db.clone(),
            login.naming(),
        ));
        state.login = Some(std::sync::Arc::new(login));
        state.keys = Some(keys);
    }
    let mut http = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(2))
        .pool_max_idle_per_host(512)
        .tcp_nodelay(true)
        // A worker's redirect is its answer, passed back to the caller, not followed.
        .redirect(reqwest::redirect::Policy::none());
    if args.bff_worker_http2 && args.db.mode == Mode::Hub {
        http = http.http2_prior_knowledge();
    }
    let http = http.build().context("building the HTTP client")?;
    let admins = crate::directory::admin_ids(&args.realm_admins)?;
    match args.db.mode {
        Mode::Hub => {
            start_hub(&mut state, args, http).await?;
            crate::directory::apply_admins(&db, &state.users, &RealmId::hub(), &admins)
                .await
                .map_err(|e| anyhow::anyhow!("realm administrators of the hub realm: {e}"))?;
        }
        Mode::Worker => {
            if let Some(realm) = worker_realm {
                if let (Some(hub), Some(path)) = (&args.hub_url, &args.hub_token_file) {
                    let token = crate::federation::read_secret(path, "hub token")?;
                    state.users = std::sync::Arc::new(crate::directory::Users::Worker(Some(
                        crate::directory::HubUsers::new(
                            hub.clone(),
                            realm.clone(),
                            token,
                            http.clone(),
                        ),
                    )));
                }
                if matches!(*state.users, crate::directory::Users::Worker(None))
                    && !admins.is_empty()
                {
                    // Serve anyway (the realm works, it just has no administrator yet):
                    // a crash loop would help nobody.
                    tracing::error!(
                        "PEK_REALM_ADMINS is set but PEK_HUB_URL or PEK_HUB_TOKEN_FILE is not: \
                         administrators are people the hub knows, so none were appointed"
                    );
                } else {
                    // In the background: the hub may start after this worker.
                    tokio::spawn(crate::directory::apply_admins_until_done(
                        db.clone(),
                        state.users.clone(),
                        realm.clone(),
                        admins,
                    ));
                }
                start_worker(&db, realm, args, http)?;
            }
        }
    }
    let state = AppState::from(state);
    if state.mode == Mode::Hub {
        spawn_hub_tasks(&state, args);
    }
    crate::http::ops_metrics_init();
    Ok((state.clone(), site(state, args.max_body_bytes)))
}

/// The whole site: the API, and on the hub the web pages beside it. The pages call the
/// finished router itself in-process (`web::api`), so they see exactly what the API
/// answers; the API knows nothing of the pages.
fn site(state: AppState, max_body_bytes: usize) -> Router {
    let pages = crate::web::api::ApiHandle::default();
    let page_routes = match state.mode {
        Mode::Hub => crate::web::routes(state.clone(), pages.clone()),
        Mode::Worker => Router::new(),
    };
    // Error answers a browser would show as raw JSON become HTML pages (outermost, so a
    // 413 of the body limit is a page too).
    let app = http::router(state, max_body_bytes, page_routes)
        .layer(axum::middleware::from_fn(crate::web::browser_errors));
    pages.set(app.clone());
    app
}

/// A crate error as an `anyhow` error that keeps its cause chain, so start-up failures
/// print the real cause (`{:#}` in `main`), not only the outermost context.
fn chain(e: crate::error::Error) -> anyhow::Error {
    match e {
        crate::error::Error::Internal(inner) => inner,
        other => anyhow::Error::new(other),
    }
}

/// The hub's signing keys: `PEK_JWT_PRIVATE_KEY_FILE`, or a key that dies with the
/// process (development; loudly warned about).
fn signing_keys(args: &ServeArgs) -> anyhow::Result<KeyRing> {
    match &args.jwt_private_key_file {
        Some(path) => {
            let ring = KeyRing::from_pem_file(path, &args.jwt_issuer, &args.jwt_audience)?;
            tracing::info!(
                signing_kid = ring.signer().kid(),
                published = ?ring.kids(),
                "hub token signing keys loaded"
            );
            Ok(ring)
        }
        None => {
            let ring = KeyRing::ephemeral(&args.jwt_issuer, &args.jwt_audience)?;
            tracing::warn!(
                kid = ring.signer().kid(),
                "NO PEK_JWT_PRIVATE_KEY_FILE: the hub signs tokens with a throwaway key made at \
                 start-up. Every token dies with this process and replicas do not accept each \
                 other's tokens. Fine for development and tests; in production mount a key \
                 (the Helm chart does)."
            );
            Ok(ring)
        }
    }
}

/// Token verification keys: `PEK_JWT_PUBLIC_KEY_FILE` (static), the hub's own signing
/// keys, and on a worker with `PEK_HUB_URL` the hub's JWKS.
/// The hub accepts tokens of its own audience only; a worker only its realm's
/// ([`crate::auth::realm_audience`]), which the hub mints when it forwards a call.
fn verifier(args: &ServeArgs, keys: Option<&KeyRing>) -> anyhow::Result<Verifier> {
    let audience = match (args.db.mode, &args.realm_id) {
        (Mode::Worker, Some(realm)) => crate::auth::realm_audience(&args.jwt_audience, realm),
        _ => args.jwt_audience.clone(),
    };
    let mut verifier = match &args.jwt_public_key_file {
        Some(path) => Verifier::from_pem_file(path, &args.jwt_issuer, &audience)?,
        None => Verifier::without_keys(&args.jwt_issuer, &audience),
    };
    if let Some(ring) = keys {
        verifier.add_signing_keys(ring)?;
    }
    if let (Mode::Worker, Some(hub)) = (args.db.mode, &args.hub_url) {
        let url = format!("{}/.well-known/jwks.json", hub.trim_end_matches('/'));
        tracing::info!(%url, "verifying tokens with the hub's JWKS");
        verifier = verifier.with_jwks(&url, Duration::from_secs(args.jwks_min_refetch_seconds))?;
    } else if !verifier.has_keys() {
        tracing::warn!(
            "no PEK_HUB_URL or PEK_JWT_PUBLIC_KEY_FILE: every request that needs a signed-in caller gets 401"
        );
    }
    Ok(verifier)
}

/// `pek serve`.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let (state, router) = build(&args).await?;
    if let Some(addr) = args.metrics_listen {
        let metrics = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the metrics listener {addr}"))?;
        tracing::info!(listen = %metrics.local_addr()?, "serving /metrics");
        let router = http::metrics_router(state.clone());
        tokio::spawn(async move {
            if let Err(e) = http::serve(metrics, router).await {
                tracing::error!(error = %e, "the metrics listener failed");
            }
        });
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(
        mode = ?state.mode,
        listen = %listener.local_addr()?,
        realms = ?state.served_realms().await.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
        "serving"
    );
    http::serve(listener, router).await?;
    Ok(())
}

/// Hub: the BFF with its registry and realm-list cache, health checks, and the listener
/// that keeps caches in step with the database across hub replicas.
async fn start_hub(
    state: &mut crate::http::AppShared,
    args: &ServeArgs,
    http: reqwest::Client,
) -> anyhow::Result<()> {
    use std::time::Duration;
    let ttl = Duration::from_secs(args.realm_cache_ttl_secs.max(1));
    let cache = match &args.redis_url {
        Some(url) => crate::cache::RealmCache::redis(url, ttl).await?,
        None => crate::cache::RealmCache::memory(ttl),
    };
    tracing::info!(cache = cache.kind(), "realm-list cache");
    let registry = crate::registry::Registry::default();
    let bff = std::sync::Arc::new(crate::bff::Bff::new(
        state.db.clone(),
        registry.clone(),
        cache,
        crate::bff::BffConfig {
            deadline: Duration::from_millis(args.bff_deadline_ms.max(1)),
            retries: args.bff_retries,
        },
        crate::bff::client::worker_client(args.bff_worker_http2),
        crate::auth::RealmTokens::new(
            state
                .keys
                .clone()
                .context("the hub needs its signing keys before the BFF")?,
            &args.jwt_audience,
            args.realm_token_ttl_seconds,
            state
                .login
                .as_ref()
                .map(|l| l.global_providers())
                .unwrap_or_else(|| vec![crate::auth::DEFAULT_PROVIDER.to_string()]),
            state
                .login
                .as_ref()
                .map(|l| {
                    l.providers()
                        .into_iter()
                        .map(|p| (p.id, p.display_name))
                        .collect()
                })
                .unwrap_or_default(),
            state.verifier.clone(),
        ),
    ));
    state.bff = Some(bff.clone());
    state.reload_local_realms().await.map_err(chain)?;
    if let Some(path) = &args.federation_secret_file {
        let secret = crate::federation::read_secret(path, "federation secret")?;
        state.federation_secret = Some(std::sync::Arc::new(secret.into_bytes()));
    } else {
        tracing::warn!(
            "no PEK_FEDERATION_SECRET_FILE: workers' membership reports are refused, so the \
             federation table only follows realms hosted by the hub"
        );
    }
    tokio::spawn(crate::registry::health_checks(
        state.db.clone(),
        registry,
        http,
        Duration::from_millis(args.health_interval_ms.max(100)),
        2,
    ));
    Ok(())
}

/// Hub: the background work that needs the finished state (registry reloads, merges
/// left unfinished, the notification listener).
fn spawn_hub_tasks(state: &AppState, args: &ServeArgs) {
    let reload = Duration::from_secs(args.registry_reload_secs.max(1));
    tokio::spawn(reload_periodically(state.clone(), reload));
    tokio::spawn(crate::person_merge::resume_periodically(
        state.clone(),
        Duration::from_secs(args.merge_retry_secs.max(1)),
    ));
    tokio::spawn(listen(state.clone(), reload));
}

/// Reloads the registry every `period` whatever the notifications say, so a replica
/// whose notification connection went silent still follows registry changes within a
/// period.
async fn reload_periodically(state: AppState, period: Duration) {
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        if let Err(e) = state.reload_local_realms().await {
            tracing::warn!(error = %e, "periodic reload of the realm registry failed");
        }
    }
}

/// Channel of the notification connection's own liveness check.
const PING_CHANNEL: &str = "pek_listener_ping";

/// Follows NOTIFYs: a user's realm list changed → drop it from the cache; the registry
/// changed → reload it. Every `period` a ping is sent through the pool and must come
/// back on the LISTEN connection before the next one, or that connection is replaced:
/// a connection can die without an error ever arriving (a database failover, an idle
/// timeout or a frozen proxy on the path), and TCP keepalive cannot see a path whose
/// middlebox still answers. After any gap every cached list is dropped and the registry
/// reloaded.
async fn listen(state: AppState, period: Duration) {
    let Some(bff) = state.bff.clone() else { return };
    let nonce = uuid::Uuid::new_v4().to_string();
    let mut backoff = Duration::from_millis(200);
    loop {
        let mut listener = match state.db.listener().await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "LISTEN connection failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        if let Err(e) = listener
            .listen_all(["pek_realm_members", "pek_realms", PING_CHANNEL])
            .await
        {
            tracing::warn!(error = %e, "LISTEN failed; retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(30));
            continue;
        }
        backoff = Duration::from_millis(200);
        bff.cache.invalidate_all();
        if let Err(e) = state.reload_local_realms().await {
            tracing::warn!(error = %e, "reloading the realm registry failed");
        }
        // Receiving runs in a task of its own and hands notifications over a channel,
        // so the liveness check below never cancels a half-read message.
        let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
        let receiver = tokio::spawn(async move {
            loop {
                let n = listener.try_recv().await;
                let stop = n.is_err();
                if tx.send(n).await.is_err() || stop {
                    break;
                }
            }
        });
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        let mut awaiting_ping = false;
        loop {
            tokio::select! {
                n = rx.recv() => match n {
                    Some(Ok(Some(n))) if n.channel() == "pek_realm_members" => {
                        if let Ok(user) = n.payload().parse() {
                            bff.cache.invalidate(user).await;
                        }
                    }
                    Some(Ok(Some(n))) if n.channel() == PING_CHANNEL => {
                        if n.payload() == nonce {
                            awaiting_ping = false;
                        }
                    }
                    Some(Ok(Some(_))) => {
                        if let Err(e) = state.reload_local_realms().await {
                            tracing::warn!(error = %e, "reloading the realm registry failed");
                        }
                    }
                    // The connection was lost and sqlx opened a new one: whatever was
                    // notified in between is gone.
                    Some(Ok(None)) => {
                        tracing::warn!("LISTEN connection was re-established; reloading");
                        bff.cache.invalidate_all();
                        if let Err(e) = state.reload_local_realms().await {
                            tracing::warn!(error = %e, "reloading the realm registry failed");
                        }
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "LISTEN connection lost; reconnecting");
                        break;
                    }
                    None => break,
                },
                _ = ticker.tick() => {
                    if awaiting_ping {
                        tracing::warn!(period_secs = period.as_secs(),
                            "LISTEN connection silent (its liveness ping never came back); \
                             replacing it");
                        break;
                    }
                    match state.db.notify(PING_CHANNEL, &nonce).await {
                        Ok(()) => awaiting_ping = true,
                        Err(e) => tracing::debug!(error = %e, "liveness ping not sent"),
                    }
                }
            }
        }
        receiver.abort();
    }
}

/// Worker: delivers the membership outbox to the hub when both are configured.
fn start_worker(
    db: &Db,
    realm: RealmId,
    args: &ServeArgs,
    http: reqwest::Client,
) -> anyhow::Result<()> {
    match (&args.hub_url, &args.hub_token_file) {
        (Some(hub), Some(path)) => {
            let token = crate::federation::read_secret(path, "hub token")?;
            tokio::spawn(
                crate::federation::Delivery {
                    db: db.clone(),
                    realm,
                    hub_url: hub.clone(),
                    token,
                    interval: std::time::Duration::from_millis(args.outbox_interval_ms.max(10)),
                    sync_interval: std::time::Duration::from_secs(args.hub_sync_secs.max(1)),
                    http,
                }
                .run(),
            );
        }
        _ => tracing::warn!(
            "PEK_HUB_URL or PEK_HUB_TOKEN_FILE not set: membership changes wait in the outbox \
             until they are"
        ),
    }
    Ok(())
}
