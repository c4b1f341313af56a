//! The hub's view of the realm registry: an in-memory snapshot of which realms exist,
//! where their workers are and whether they are up, refreshed when the `realms` table
//! changes (NOTIFY from a trigger, so every hub replica follows) and periodically; and
//! the health checks that mark workers down or active. Of several hub replicas one
//! checks at a time (the one holding the [`HEALTH_LEASE`]); the others follow the status
//! it records through the registry.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

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
    /// The sign-in providers the realm accepts; `None`: every global one.
    pub providers: Option<Vec<String>>,
}

/// The snapshot is read on every BFF call and replaced whole on a change: readers take
/// the current map (an `Arc`) and never hold the lock across an await.
#[derive(Clone, Default)]
pub struct Registry {
    snapshot: Arc<std::sync::RwLock<Snapshot>>,
}

type Snapshot = Arc<HashMap<RealmId, Arc<Entry>>>;

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
                    Arc::new(Entry {
                        id,
                        display_name: r.display_name,
                        endpoint: r.endpoint,
                        status: Status::parse(&r.status),
                        providers: r.providers,
                    }),
                ))
            })
            .collect();
        let map = Arc::new(map);
        match self.snapshot.write() {
            Ok(mut s) => *s = map,
            Err(poisoned) => *poisoned.into_inner() = map,
        }
        Ok(())
    }

    fn current(&self) -> Snapshot {
        match self.snapshot.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub async fn get(&self, id: &RealmId) -> Option<Arc<Entry>> {
        self.current().get(id).cloned()
    }

    pub async fn all(&self) -> Snapshot {
        self.current()
    }
}

/// Name of the lease (table `hub_leases`) whose holder runs the health checks.
pub const HEALTH_LEASE: &str = "health-checks";

/// Takes or renews the lease `name` for `holder` until `ttl` from now (database clock).
/// True while `holder` holds it: a lease that is free, expired or already its own.
/// Works through any connection pooler (no session state), and a replica that cannot
/// reach the database stops holding it once it expires.
async fn lease(db: &Db, name: &str, holder: uuid::Uuid, ttl: Duration) -> Result<bool> {
    let mut g = db.global().await?;
    let held: Option<uuid::Uuid> = sqlx::query_scalar!(
        "INSERT INTO hub_leases (name, holder, expires_at)
         VALUES ($1, $2, now() + $3 * interval '1 millisecond')
         ON CONFLICT (name) DO UPDATE
             SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
           WHERE hub_leases.holder = EXCLUDED.holder OR hub_leases.expires_at < now()
         RETURNING holder",
        name,
        holder,
        ttl.as_millis() as f64
    )
    .fetch_optional(g.conn())
    .await?;
    g.commit().await?;
    Ok(held.is_some())
}

/// Probes every registered worker's `/readyz`; a worker is marked down after
/// `failures_to_down` failed probes in a row and active again after one success.
/// Realms in maintenance are left alone (an operator's decision, not a probe's). Only
/// the replica holding the [`HEALTH_LEASE`] probes; it renews the lease every interval
/// for three intervals (at least two seconds), and when it stops another replica takes
/// over once the lease has expired.
pub async fn health_checks(
    db: Db,
    registry: Registry,
    http: reqwest::Client,
    interval: Duration,
    failures_to_down: u32,
) {
    let mut failures: HashMap<RealmId, u32> = HashMap::new();
    let me = uuid::Uuid::new_v4();
    let ttl = (interval * 3).max(Duration::from_secs(2));
    let mut holding = false;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let held = match lease(&db, HEALTH_LEASE, me, ttl).await {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e, "health-check lease not renewed");
                false
            }
        };
        if held != holding {
            tracing::info!(
                checking = held,
                "this replica {} the worker health checks",
                if held { "now runs" } else { "no longer runs" }
            );
            holding = held;
        }
        if !held {
            failures.clear();
            continue;
        }
        let entries: Vec<Arc<Entry>> = registry.all().await.values().cloned().collect();
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
                    // A worker that answers slowly (a loaded node, a long GC) is
                    // alive: only one that cannot answer within seconds is down,
                    // however short the interval.
                    .timeout(interval.clamp(Duration::from_secs(2), Duration::from_secs(5)))
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
    sqlx::query!(
        "UPDATE realms SET status = $2,
                last_seen_at = CASE WHEN $3 THEN now() ELSE last_seen_at END
          WHERE id = $1 AND endpoint IS NOT NULL AND status <> 'maintenance'
            AND (status <> $2 OR ($3 AND (last_seen_at IS NULL
                                          OR last_seen_at < now() - interval '30 seconds')))",
        entry.id.as_str(),
        status_text,
        ok
    )
    .execute(g.conn())
    .await?;
    g.commit().await
}
