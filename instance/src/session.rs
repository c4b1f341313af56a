//! Server-side sessions (hub only). Signing in creates a row in `sessions` and the login
//! token names it (`sid`); the hub accepts a token with a session id only while that
//! session is not revoked, so signing out (and a hub administrator) can end a session
//! before its token expires.
//!
//! Whether a session is live is remembered in-process for [`CHECK_TTL`], so a client's
//! calls cost no database round-trip each. A revocation through this process drops the
//! remembered answer at once; another hub replica notices within [`CHECK_TTL`].
//!
//! Tokens without a session id are not sessions: the per-realm tokens the hub forwards to
//! workers (short-lived, and refused by the hub itself) and tokens minted directly with
//! the signing key outside the login (tests, `pek local`'s printed tokens).

use std::time::Duration;

use uuid::Uuid;

use crate::db::{Db, GlobalTx};
use crate::error::{Error, Result};

/// How long a replica trusts its last look at a session.
pub const CHECK_TTL: Duration = Duration::from_secs(5);

/// Sessions ended longer ago than this are deleted when their person signs in again.
const KEEP_ENDED_DAYS: i32 = 7;

/// The hub's session check, with its short memory.
pub struct Sessions {
    db: Db,
    /// Session id → (its person, live).
    seen: moka::sync::Cache<Uuid, (Uuid, bool)>,
}

impl Sessions {
    pub fn new(db: Db) -> Sessions {
        Sessions {
            db,
            seen: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(CHECK_TTL)
                .build(),
        }
    }

    /// Ok when session `sid` of `user` exists and is not revoked. Expiry is the token's
    /// own (`exp`, with its clock-skew leeway); the session's `expires_at` only says when
    /// the row may go.
    pub async fn check(&self, sid: Uuid, user: Uuid) -> Result<()> {
        let (owner, live) = match self.seen.get(&sid) {
            Some(v) => v,
            None => {
                let mut g = self.db.global().await?;
                let row = sqlx::query!(
                    r#"SELECT user_id, (revoked_at IS NULL) AS "live!"
                         FROM sessions WHERE id = $1"#,
                    sid
                )
                .fetch_optional(g.conn())
                .await?;
                g.commit().await?;
                let v = row
                    .map(|r| (r.user_id, r.live))
                    .unwrap_or((Uuid::nil(), false));
                self.seen.insert(sid, v);
                v
            }
        };
        if owner == user && live {
            Ok(())
        } else {
            Err(Error::Unauthorized(
                "invalid token: the session was signed out or has ended; sign in again".into(),
            ))
        }
    }

    /// Revokes one session of `user` (sign-out). False when it was not live.
    pub async fn revoke(&self, sid: Uuid, user: Uuid, by: Uuid) -> Result<bool> {
        let mut g = self.db.global().await?;
        let n = sqlx::query!(
            "UPDATE sessions SET revoked_at = now(), revoked_by = $3
              WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
            sid,
            user,
            by
        )
        .execute(g.conn())
        .await?
        .rows_affected();
        g.commit().await?;
        self.seen.invalidate(&sid);
        Ok(n > 0)
    }

    /// Revokes every live session of `user`; how many there were.
    pub async fn revoke_all(&self, user: Uuid, by: Uuid) -> Result<u64> {
        let mut g = self.db.global().await?;
        let ids = sqlx::query_scalar!(
            "UPDATE sessions SET revoked_at = now(), revoked_by = $2
              WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now()
          RETURNING id",
            user,
            by
        )
        .fetch_all(g.conn())
        .await?;
        g.commit().await?;
        for id in &ids {
            self.seen.invalidate(id);
        }
        Ok(ids.len() as u64)
    }
}

/// Seconds until the absolute end of session `sid` of `user`; `None` when it is revoked,
/// over, or not theirs.
pub async fn time_left(db: &Db, sid: Uuid, user: Uuid) -> Result<Option<u64>> {
    let mut g = db.global().await?;
    let left: Option<f64> = sqlx::query_scalar!(
        r#"SELECT EXTRACT(EPOCH FROM expires_at - now())::float8 AS "left!"
             FROM sessions
            WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL AND expires_at > now()"#,
        sid,
        user
    )
    .fetch_optional(g.conn())
    .await?;
    g.commit().await?;
    Ok(left.map(|l| l.max(0.0) as u64))
}

/// Starts a session of `user`, signed in through `provider`, lasting at most `ttl_secs` in all, however often its token
/// is renewed (inside the sign-in's transaction), and
/// forgets the person's sessions that ended long ago.
pub async fn create(g: &mut GlobalTx, user: Uuid, ttl_secs: u64, provider: &str) -> Result<Uuid> {
    let id = Uuid::new_v4();
    let ttl = i64::try_from(ttl_secs).unwrap_or(i64::MAX / 2);
    sqlx::query!(
        "INSERT INTO sessions (id, user_id, expires_at, provider)
         VALUES ($1, $2, now() + make_interval(secs => $3::bigint::double precision), $4)",
        id,
        user,
        ttl,
        provider
    )
    .execute(g.conn())
    .await?;
    sqlx::query!(
        "DELETE FROM sessions
          WHERE user_id = $1
            AND LEAST(COALESCE(revoked_at, expires_at), expires_at)
                < now() - make_interval(days => $2)",
        user,
        KEEP_ENDED_DAYS
    )
    .execute(g.conn())
    .await?;
    Ok(id)
}
