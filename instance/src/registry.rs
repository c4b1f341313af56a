//! The hub's view of the realm registry: an in-memory snapshot of which realms exist,
//! where their workers are and whether they are up, refreshed when the `realms` table
//! changes (NOTIFY from a trigger, so every hub replica follows) and periodically; and
//! the health checks that mark workers down or active. Of several hub replicas one
//! checks at a time (the one holding [`HEALTH_LOCK_KEY`]); the others follow the status
//! it records through the registry.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::RwLock;

use crate::db::Db;
use crate::error::Result;
use crate::realm::{self, RealmId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Active,
    Maintenance,
    Down,
}

impl Status {
    fn parse(s: &str) -> Status {
        match s {
            "maintenance" => Status::Maintenance,
            "down" => Status::Down,
            _ => Status::Active,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub id: RealmId,
    pub display_name: String,
    /// `None`: the realm's data lives in the hub's database.
    pub endpoint: Option<String>,
    pub status: Status,
}

#[derive(Clone, Default)]
pub struct Registry {
    snapshot: Arc<RwLock<Arc<HashMap<RealmId, Entry>>>>,
}

impl Registry {
    pub async fn reload(&self, db: &Db) -> Result<()> {
        let mut g = db.global().await?;
        let rows = realm::list(&mut g).await?;
        g.commit().await?;
        let map = rows
            .into_iter()
            .filter_map(|r| {
                let id = RealmId::parse(&r.id).ok()?;
                Some((
                    id.clone(),
                    Entry {
                        id,
                        display_name: r.display_name,
                        endpoint: r.endpoint,
                        status: Status::parse(&r.status),
                    },
                ))
            })
            .collect();
        *self.snapshot.write().await = Arc::new(map);
        Ok(())
    }

    pub async fn get(&self, id: &RealmId) -> Option<Entry> {
        self.snapshot.read().await.get(id).cloned()
    }

    pub async fn all(&self) -> Arc<HashMap<RealmId, Entry>> {
        self.snapshot.read().await.clone()
    }
}

/// Session-level advisory lock (`pg_try_advisory_lock`) that makes one hub replica the
/// health checker. It is held on a session of its own for as long as that replica lives,
/// and Postgres releases it when the session ends, so another replica takes over within
/// an interval. ASCII "pek-hlth".
pub const HEALTH_LOCK_KEY: i64 = 0x7065_6b2d_686c_7468;

/// The session that holds (or tries to take) the health-check lock.
#[derive(Default)]
struct HealthLease {
    session: Option<sqlx::PgConnection>,
    held: bool,
}

impl HealthLease {
    /// Whether this replica is the health checker now: checks that the session holding
    /// the lock is still alive, or tries to take the lock. Every step is bounded by
    /// `limit`; a session that fails or hangs is dropped (and with it the lock).
    async fn held(&mut self, db: &Db, limit: Duration) -> bool {
        if self.session.is_none() {
            self.held = false;
            match tokio::time::timeout(limit, db.session()).await {
                Ok(Ok(mut c)) => {
                    // The server drops the lock when this session ends; make it notice a
                    // vanished replica (a crashed node sends no FIN) in about half a
                    // minute rather than after the system's two-hour keepalive default.
                    // Best effort: ignored on Unix sockets and refused by some poolers.
                    let _ = tokio::time::timeout(limit, server_keepalive(&mut c)).await;
                    self.session = Some(c);
                }
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "no session for the health-check lock");
                    return false;
                }
                Err(_) => return false,
            }
        }
        let Some(session) = self.session.as_mut() else {
            return false;
        };
        let query = if self.held {
            // The lock lives as long as this session: a round trip proves both.
            sqlx::query_scalar::<_, bool>("SELECT true").fetch_one(&mut *session)
        } else {
            sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)")
                .bind(HEALTH_LOCK_KEY)
                .fetch_one(&mut *session)
        };
        match tokio::time::timeout(limit, query).await {
            Ok(Ok(now_held)) => {
                if now_held && !self.held {
                    tracing::info!("this replica now runs the worker health checks");
                }
                self.held = now_held;
            }
            _ => {
                if self.held {
                    tracing::warn!("lost the health-check lock's session; checks stop here");
                }
                self.session = None;
                self.held = false;
            }
        }
        self.held
    }
}

async fn server_keepalive(c: &mut sqlx::PgConnection) -> sqlx::Result<()> {
    for set in [
        "SET tcp_keepalives_idle = 10",
        "SET tcp_keepalives_interval = 5",
        "SET tcp_keepalives_count = 3",
        "SET tcp_user_timeout = 30000",
    ] {
        sqlx::query(set).execute(&mut *c).await?;
    }
    Ok(())
}

/// Probes every registered worker's `/readyz`; a worker is marked down after
/// `failures_to_down` failed probes in a row and active again after one success.
/// Realms in maintenance are left alone (an operator's decision, not a probe's). Only
/// the replica holding [`HEALTH_LOCK_KEY`] probes; the others try to take over every
/// interval.
pub async fn health_checks(
    db: Db,
    registry: Registry,
    http: reqwest::Client,
    interval: Duration,
    failures_to_down: u32,
) {
    let mut failures: HashMap<RealmId, u32> = HashMap::new();
    let mut lease = HealthLease::default();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if !lease
            .held(
                &db,
                interval.clamp(Duration::from_secs(1), Duration::from_secs(5)),
            )
            .await
        {
            failures.clear();
            continue;
        }
        let entries: Vec<Entry> = registry.all().await.values().cloned().collect();
        let probes = entries.into_iter().filter_map(|e| {
            let endpoint = e.endpoint.clone()?;
            if e.status == Status::Maintenance {
                return None;
            }
            let http = http.clone();
            Some(async move {
                let url = format!("{}/readyz", endpoint.trim_end_matches('/'));
                let ok = match http
                    .get(&url)
                    .timeout(interval.min(Duration::from_secs(5)))
                    .send()
                    .await
                {
                    Ok(r) => r.status().is_success(),
                    Err(_) => false,
                };
                (e, ok)
            })
        });
        let results = futures::future::join_all(probes).await;
        for (entry, ok) in results {
            let n = failures.entry(entry.id.clone()).or_default();
            let new_status = if ok {
                *n = 0;
                Status::Active
            } else {
                *n += 1;
                if *n >= failures_to_down {
                    Status::Down
                } else {
                    entry.status
                }
            };
            if let Err(e) = record(&db, &entry, ok, new_status).await {
                tracing::warn!(realm = %entry.id, error = %e, "recording a health check failed");
            }
            if new_status != entry.status {
                tracing::info!(realm = %entry.id, from = ?entry.status, to = ?new_status,
                    "realm worker status changed");
            }
        }
    }
}

async fn record(db: &Db, entry: &Entry, ok: bool, status: Status) -> Result<()> {
    let status_text = match status {
        Status::Active => "active",
        Status::Maintenance => "maintenance",
        Status::Down => "down",
    };
    let mut g = db.global().await?;
    // Writes only when something changes (status), or to move last_seen forward at most
    // once every 30 s, so a quiet federation does not write every tick.
    sqlx::query(
        "UPDATE realms SET status = $2,
                last_seen_at = CASE WHEN $3 THEN now() ELSE last_seen_at END
          WHERE id = $1 AND endpoint IS NOT NULL AND status <> 'maintenance'
            AND (status <> $2 OR ($3 AND (last_seen_at IS NULL
                                          OR last_seen_at < now() - interval '30 seconds')))",
    )
    .bind(entry.id.as_str())
    .bind(status_text)
    .bind(ok)
    .execute(g.conn())
    .await?;
    g.commit().await
}
