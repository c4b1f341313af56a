//! The BFF's cache of "which realms is this user in": in-process by default, in Redis
//! when `PEK_REDIS_URL` is set (shared by hub replicas). Entries expire after a TTL and
//! are dropped when the federation table changes for the user (a trigger NOTIFYs every
//! hub replica). A fill (a database read put into the cache) stores only if no
//! invalidation came while it read, so a list read just before a membership change never
//! goes back into the cache after that change's invalidation. Redis trouble never fails
//! a request: the BFF reads the database instead.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use crate::realm::RealmId;

/// A realm list being read from the database. It may be stored only if the user's list
/// was not invalidated since the read began (see [`RealmCache::begin_fill`]).
pub struct Fill {
    user: Uuid,
    token: u64,
}

#[derive(Clone)]
pub enum RealmCache {
    Memory {
        entries: moka::sync::Cache<Uuid, Arc<Vec<RealmId>>>,
        /// Fills in progress, by user: dropped by an invalidation, so a fill that raced
        /// one does not store what it read.
        fills: Arc<std::sync::Mutex<HashMap<Uuid, u64>>>,
    },
    Redis {
        conn: redis::aio::ConnectionManager,
        ttl: Duration,
    },
}

fn key(user: Uuid) -> String {
    format!("pek:user-realms:{user}")
}

/// Redis key marking a fill in progress (its value: the fill's token).
fn fill_key(user: Uuid) -> String {
    format!("pek:user-realms-fill:{user}")
}

/// How long a fill marker lives in Redis: longer than any database read; a fill that
/// outlives it just does not store.
const FILL_MARKER_SECS: u64 = 60;

/// Stores the list only if the fill marker still holds this fill's token (no
/// invalidation, and no newer fill, since the fill began). Atomic in Redis.
const STORE_IF_CURRENT: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
    redis.call('DEL', KEYS[1]) \
    redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3]) \
    return 1 end return 0";

/// Cap on fills in progress tracked in-process (fills whose read failed never finish);
/// past it the map is cleared, which only makes those fills not store.
const MAX_FILLS: usize = 100_000;

impl RealmCache {
    pub fn memory(ttl: Duration) -> Self {
        RealmCache::Memory {
            entries: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(ttl)
                .build(),
            fills: Arc::default(),
        }
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
            RealmCache::Memory { .. } => "in-process",
            RealmCache::Redis { .. } => "redis",
        }
    }

    pub async fn get(&self, user: Uuid) -> Option<Vec<RealmId>> {
        match self {
            RealmCache::Memory { entries, .. } => entries.get(&user).map(|v| v.as_ref().clone()),
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

    /// Call before reading a user's realm list from the database; pass the result to
    /// [`RealmCache::finish_fill`] with what was read. An invalidation in between (a
    /// membership change committed while the read ran) makes the fill store nothing, so
    /// a stale list never goes back into the cache for a whole TTL.
    pub async fn begin_fill(&self, user: Uuid) -> Fill {
        let token: u64 = rand::random();
        match self {
            RealmCache::Memory { fills, .. } => {
                let mut fills = fills.lock().unwrap_or_else(|p| p.into_inner());
                if fills.len() >= MAX_FILLS {
                    fills.clear();
                }
                fills.insert(user, token);
            }
            RealmCache::Redis { conn, .. } => {
                let mut conn = conn.clone();
                let r: redis::RedisResult<()> = redis::cmd("SET")
                    .arg(fill_key(user))
                    .arg(token)
                    .arg("EX")
                    .arg(FILL_MARKER_SECS)
                    .query_async(&mut conn)
                    .await;
                if let Err(e) = r {
                    tracing::warn!(error = %e, "Redis SET failed; the list is not cached");
                }
            }
        }
        Fill { user, token }
    }

    /// Stores the list read for `fill`, unless the user's list was invalidated (or a
    /// newer fill began) since [`RealmCache::begin_fill`].
    pub async fn finish_fill(&self, fill: Fill, realms: &[RealmId]) {
        match self {
            RealmCache::Memory { entries, fills } => {
                // The check and the insert happen under the lock `invalidate` takes too.
                let mut fills = fills.lock().unwrap_or_else(|p| p.into_inner());
                if fills.get(&fill.user) == Some(&fill.token) {
                    fills.remove(&fill.user);
                    entries.insert(fill.user, Arc::new(realms.to_vec()));
                }
            }
            RealmCache::Redis { conn, ttl } => {
                let mut conn = conn.clone();
                let Ok(value) = serde_json::to_string(realms) else {
                    return;
                };
                let r: redis::RedisResult<i64> = redis::cmd("EVAL")
                    .arg(STORE_IF_CURRENT)
                    .arg(2)
                    .arg(fill_key(fill.user))
                    .arg(key(fill.user))
                    .arg(fill.token)
                    .arg(value)
                    .arg(ttl.as_secs().max(1))
                    .query_async(&mut conn)
                    .await;
                if let Err(e) = r {
                    tracing::warn!(error = %e, "Redis EVAL failed; the list is not cached");
                }
            }
        }
    }

    pub async fn invalidate(&self, user: Uuid) {
        match self {
            RealmCache::Memory { entries, fills } => {
                let mut fills = fills.lock().unwrap_or_else(|p| p.into_inner());
                fills.remove(&user);
                entries.invalidate(&user);
            }
            RealmCache::Redis { conn, .. } => {
                let mut conn = conn.clone();
                let r: redis::RedisResult<()> = redis::cmd("DEL")
                    .arg(key(user))
                    .arg(fill_key(user))
                    .query_async(&mut conn)
                    .await;
                if let Err(e) = r {
                    tracing::warn!(error = %e, "Redis DEL failed; the entry expires with its TTL");
                }
            }
        }
    }

    /// Drops every in-process entry (after a gap in change notifications, when any of
    /// them may be stale). Redis entries are shared: the other replicas' invalidations
    /// reach them, and each expires within its TTL anyway.
    pub fn invalidate_all(&self) {
        if let RealmCache::Memory { entries, fills } = self {
            let mut fills = fills.lock().unwrap_or_else(|p| p.into_inner());
            fills.clear();
            entries.invalidate_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn realms(ids: &[&str]) -> Vec<RealmId> {
        ids.iter().map(|r| RealmId::parse(r).unwrap()).collect()
    }

    #[tokio::test]
    async fn a_fill_that_raced_an_invalidation_stores_nothing() {
        let cache = RealmCache::memory(Duration::from_secs(60));
        let user = Uuid::new_v4();
        // The fill read the old list; the membership change committed and invalidated
        // before the fill stored.
        let fill = cache.begin_fill(user).await;
        cache.invalidate(user).await;
        cache.finish_fill(fill, &realms(&["hub", "kszk"])).await;
        assert_eq!(cache.get(user).await, None);

        // Without a race the list is stored.
        let fill = cache.begin_fill(user).await;
        cache.finish_fill(fill, &realms(&["hub"])).await;
        assert_eq!(cache.get(user).await, Some(realms(&["hub"])));

        // Of two overlapping fills only the newer one stores.
        cache.invalidate(user).await;
        let older = cache.begin_fill(user).await;
        let newer = cache.begin_fill(user).await;
        cache.finish_fill(older, &realms(&["old"])).await;
        assert_eq!(cache.get(user).await, None);
        cache.finish_fill(newer, &realms(&["new"])).await;
        assert_eq!(cache.get(user).await, Some(realms(&["new"])));
    }
}
