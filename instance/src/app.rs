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
            .map_err(|e| anyhow::anyhow!("migrations failed: {e}"))?;
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
            .map_err(|e| anyhow::anyhow!("creating realm {r}: {e}"))?;
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
    let mut state = AppState::new(db, args.db.mode, verifier, worker_realm, tokens)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    state
        .verifier
        .spawn_refresh(Duration::from_secs(args.jwks_refresh_seconds.max(1)));
    if let Some(keys) = keys {
        state.login = Some(std::sync::Arc::new(crate::login::Login::new(
            args,
            keys.clone(),
        )?));
        state.keys = Some(keys);
    }
    crate::http::ops_metrics_init();
    let router = http::router(state.clone(), args.max_body_bytes);
    Ok((state, router))
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
fn verifier(args: &ServeArgs, keys: Option<&KeyRing>) -> anyhow::Result<Verifier> {
    let mut verifier = match &args.jwt_public_key_file {
        Some(path) => Verifier::from_pem_file(path, &args.jwt_issuer, &args.jwt_audience)?,
        None => Verifier::without_keys(&args.jwt_issuer, &args.jwt_audience),
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
