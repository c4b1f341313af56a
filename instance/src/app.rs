//! Wiring: configuration → migrated database → state → router.

use anyhow::Context;
use axum::Router;

use crate::auth::Verifier;
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
    let verifier = match &args.jwt_public_key_file {
        Some(path) => Verifier::from_pem_file(path, &args.jwt_issuer, &args.jwt_audience)?,
        None => {
            tracing::warn!(
                "no PEK_JWT_PUBLIC_KEY_FILE: every request that needs a signed-in caller gets 401"
            );
            Verifier::without_keys(&args.jwt_issuer, &args.jwt_audience)
        }
    };
    let tokens = match &args.operator_token_file {
        Some(p) => read_tokens(p)?,
        None => Vec::new(),
    };
    let state = AppState::new(db, args.db.mode, verifier, worker_realm, tokens)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    crate::http::ops_metrics_init();
    let router = http::router(state.clone(), args.max_body_bytes);
    Ok((state, router))
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
