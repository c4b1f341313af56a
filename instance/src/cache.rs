//! The BFF's cache of "which realms is this user in": in-process by default, in Redis
//! when `PEK_REDIS_URL` is set (shared by hub replicas). Entries expire after a TTL and
//! are dropped when the federation table changes for the user (a trigger NOTIFYs every
//! hub replica). Redis trouble never fails a request: the BFF reads the database instead.

use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use crate::realm::RealmId;

#[derive(Clone)]
pub enum RealmCache {
    Memory(moka::future::Cache<Uuid, Arc<Vec<RealmId>>>),
    Redis {
        conn: redis::aio::ConnectionManager,
        ttl: Duration,
    },
}

fn key(user: Uuid) -> String {
    format!("pek:user-realms:{user}")
}

impl RealmCache {
    pub fn memory(ttl: Duration) -> Self {
        RealmCache::Memory(
            moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(ttl)
                .build(),
        )
    }

    pub async fn redis(url: &str, ttl: Duration) -> anyhow::Result<Self> {
        use anyhow::Context;
        let client = redis::Client::open(url).context("invalid PEK_REDIS_URL")?;
        let conn = tokio::time::timeout(Duration::from_secs(10), client.get_connection_manager())
            .await
            .context("connecting to Redis (PEK_REDIS_URL) timed out")?
            .context("connecting to Redis (PEK_REDIS_URL)")?;
        Ok(RealmCache::Redis { conn, ttl })
    }

    pub fn kind(&self) -> &'static str {
        match self {
            RealmCache::Memory(_) => "in-process",
            RealmCache::Redis { .. } => "redis",
        }
    }

    pub async fn get(&self, user: Uuid) -> Option<Vec<RealmId>> {
        match self {
            RealmCache::Memory(c) => c.get(&user).await.map(|v| v.as_ref().clone()),
            RealmCache::Redis { conn, .. } => {
                let mut conn = conn.clone();
                let raw: Option<String> = match redis::cmd("GET")
                    .arg(key(user))
                    .query_async(&mut conn)
                    .await
                {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::warn!(error = %e, "Redis GET failed; reading the database");
                        return None;
                    }
                };
                raw.and_then(|s| serde_json::from_str(&s).ok())
            }
        }
    }

    pub async fn put(&self, user: Uuid, realms: &[RealmId]) {
        match self {
            RealmCache::Memory(c) => c.insert(user, Arc::new(realms.to_vec())).await,
            RealmCache::Redis { conn, ttl } => {
                let mut conn = conn.clone();
                let Ok(value) = serde_json::to_string(realms) else {
                    return;
                };
                let r: redis::RedisResult<()> = redis::cmd("SET")
                    .arg(key(user))
                    .arg(value)
                    .arg("EX")
                    .arg(ttl.as_secs().max(1))
                    .query_async(&mut conn)
                    .await;
                if let Err(e) = r {
                    tracing::warn!(error = %e, "Redis SET failed");
                }
            }
        }
    }

    pub async fn invalidate(&self, user: Uuid) {
        match self {
            RealmCache::Memory(c) => c.invalidate(&user).await,
            RealmCache::Redis { conn, .. } => {
                let mut conn = conn.clone();
                let r: redis::RedisResult<()> = redis::cmd("DEL")
                    .arg(key(user))
                    .query_async(&mut conn)
                    .await;
                if let Err(e) = r {
                    tracing::warn!(error = %e, "Redis DEL failed; the entry expires with its TTL");
                }
            }
        }
    }
}
