//! The federation table (which user is in which realm) and how it is kept up to date.
//!
//! Realms stored in the hub's own database update it by trigger in the same transaction
//! (hub migration). A worker's changes travel through a transactional outbox: a trigger
//! writes the user's new in-realm state into `federation_outbox` in the transaction that
//! changed it, and [`deliver_outbox`] sends the rows to the hub in order, deleting them
//! only after the hub acknowledged them. The hub applies a report with [`apply_report`]:
//! state-based and guarded by the sequence number, so duplicates and late retries are
//! harmless. Hub downtime only delays delivery.
//!
//! A worker proves which realm it speaks for with a realm token derived from a secret
//! the hub and the operator share: `HMAC-SHA256(secret, realm id)`. The hub needs no
//! per-realm state to check it, and a token for one realm is useless for another.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::db::{Db, GlobalTx};
use crate::error::{Error, Result};
use crate::realm::RealmId;

/// The bearer token a worker of `realm` presents to the hub.
pub fn realm_token(secret: &[u8], realm: &RealmId) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let tag = ring::hmac::sign(&key, format!("pek-realm:{realm}").as_bytes());
    URL_SAFE_NO_PAD.encode(tag.as_ref())
}

/// Constant-time check of a presented realm token.
pub fn realm_token_ok(secret: &[u8], realm: &RealmId, presented: &str) -> bool {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    match URL_SAFE_NO_PAD.decode(presented.trim()) {
        Ok(tag) => ring::hmac::verify(&key, format!("pek-realm:{realm}").as_bytes(), &tag).is_ok(),
        Err(_) => false,
    }
}

/// Reads a secret or token file (trimmed; must not be trivially short).
pub fn read_secret(path: &std::path::Path, what: &str) -> anyhow::Result<String> {
    use anyhow::Context;
    let s = std::fs::read_to_string(path)
        .with_context(|| format!("reading {what} file {}", path.display()))?;
    let s = s.trim().to_string();
    anyhow::ensure!(
        s.len() >= 16,
        "{what} in {} must be at least 16 characters",
        path.display()
    );
    Ok(s)
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MembershipEvent {
    /// Outbox sequence number (increasing per realm).
    pub seq: i64,
    pub user_id: Uuid,
    /// Whether the user is a person of the realm after the change (consented presence).
    pub member: bool,
    /// Whether something in the realm waits for the user's own decision (an invitation,
    /// a role offer, their application): the hub lists such realms to the user only.
    #[serde(default)]
    pub pending: bool,
    #[serde(deserialize_with = "crate::text::date::timestamp")]
    pub occurred_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MembershipReport {
    pub events: Vec<MembershipEvent>,
}

/// Largest report a worker sends (and the hub accepts).
pub const MAX_REPORT: usize = 500;

/// Hub: applies a worker's report. Returns the users whose realm list changed.
pub async fn apply_report(
    g: &mut GlobalTx,
    realm: &RealmId,
    report: &MembershipReport,
) -> Result<Vec<Uuid>> {
    if report.events.len() > MAX_REPORT {
        return Err(Error::PayloadTooLarge(format!(
            "at most {MAX_REPORT} events per report"
        )));
    }
    let registered: Option<Option<String>> = sqlx::query_scalar!(
        "SELECT endpoint FROM realms WHERE id = $1 FOR SHARE",
        realm.as_str()
    )
    .fetch_optional(g.conn())
    .await?;
    match registered {
        Some(Some(_)) => {}
        Some(None) => {
            return Err(Error::Conflict(format!(
                "realm {realm} is hosted by the hub; it has no worker to report"
            )))
        }
        None => {
            return Err(Error::NotFound(format!(
                "realm {realm} is not registered with the hub (yet)"
            )))
        }
    }
    let mut events = report.events.clone();
    events.sort_by_key(|e| e.seq);
    let mut changed = Vec::new();
    for e in &events {
        // Newer than what we applied for this user? (Duplicates and stale retries: no.)
        let newer: Option<i64> = sqlx::query_scalar!(
            "INSERT INTO federation_applied (realm_id, user_id, seq) VALUES ($1, $2, $3)
             ON CONFLICT (realm_id, user_id) DO UPDATE SET seq = EXCLUDED.seq
                 WHERE federation_applied.seq < EXCLUDED.seq
             RETURNING seq",
            realm.as_str(),
            e.user_id,
            e.seq
        )
        .fetch_optional(g.conn())
        .await?;
        if newer.is_none() {
            continue;
        }
        let rows = if e.member {
            // A user the hub does not know cannot be in its federation table; the report
            // is still acknowledged so delivery does not stall on it.
            sqlx::query!(
                "INSERT INTO realm_members (user_id, realm_id, joined_at)
                 SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM users WHERE id = $1)
                 ON CONFLICT DO NOTHING",
                e.user_id,
                realm.as_str(),
                e.occurred_at
            )
            .execute(g.conn())
            .await?
            .rows_affected()
        } else {
            sqlx::query!(
                "DELETE FROM realm_members WHERE user_id = $1 AND realm_id = $2",
                e.user_id,
                realm.as_str()
            )
            .execute(g.conn())
            .await?
            .rows_affected()
        };
        let pending_rows = if e.pending {
            sqlx::query!(
                "INSERT INTO realm_pending (user_id, realm_id, since)
                 SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM users WHERE id = $1)
                 ON CONFLICT DO NOTHING",
                e.user_id,
                realm.as_str(),
                e.occurred_at
            )
            .execute(g.conn())
            .await?
            .rows_affected()
        } else {
            sqlx::query!(
                "DELETE FROM realm_pending WHERE user_id = $1 AND realm_id = $2",
                e.user_id,
                realm.as_str()
            )
            .execute(g.conn())
            .await?
            .rows_affected()
        };
        if rows + pending_rows > 0 {
            changed.push(e.user_id);
        }
    }
    Ok(changed)
}

/// When a worker realm was registered with the hub: a worker that sees a registration it
/// has not filled yet resends its whole member list (see [`Delivery`]).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationInfo {
    pub registered_at: chrono::DateTime<chrono::Utc>,
}

/// Hub: the registration of a worker realm.
pub async fn registration(g: &mut GlobalTx, realm: &RealmId) -> Result<RegistrationInfo> {
    let row = sqlx::query!(
        "SELECT endpoint, registered_at FROM realms WHERE id = $1",
        realm.as_str()
    )
    .fetch_optional(g.conn())
    .await?
    .map(|r| (r.endpoint, r.registered_at));
    match row {
        Some((Some(_), registered_at)) => Ok(RegistrationInfo { registered_at }),
        Some((None, _)) => Err(Error::Conflict(format!(
            "realm {realm} is hosted by the hub; it has no worker"
        ))),
        None => Err(Error::NotFound(format!(
            "realm {realm} is not registered with the hub (yet)"
        ))),
    }
}

/// Hub: the realms (served locally or by a registered worker) that `user` is in.
pub async fn user_realms(db: &Db, user: Uuid) -> Result<Vec<RealmId>> {
    let mut g = db.global().await?;
    let ids: Vec<String> = sqlx::query_scalar!(
        "SELECT realm_id FROM realm_members WHERE user_id = $1 ORDER BY 1",
        user
    )
    .fetch_all(g.conn())
    .await?;
    g.commit().await?;
    ids.iter().map(|s| RealmId::parse(s)).collect()
}

/// Hub: the realms where something waits for `user`'s own decision (an invitation, a
/// role offer, an offer to bring back an archived membership, their own application),
/// whether or not they are in the realm. For the user's own lists only.
pub async fn pending_realms(db: &Db, user: Uuid) -> Result<Vec<RealmId>> {
    let mut g = db.global().await?;
    let ids: Vec<String> = sqlx::query_scalar!(
        "SELECT realm_id FROM realm_pending WHERE user_id = $1 ORDER BY 1",
        user
    )
    .fetch_all(g.conn())
    .await?;
    g.commit().await?;
    ids.iter().map(|s| RealmId::parse(s)).collect()
}

/// Hub: records that `user` used `realm` (at most once a minute per pair, so the BFF's
/// hot path does not turn every read into a write).
pub async fn touch(db: &Db, user: Uuid, realm: &RealmId) -> Result<()> {
    let mut g = db.global().await?;
    sqlx::query!(
        "UPDATE realm_members SET last_access_at = now()
          WHERE user_id = $1 AND realm_id = $2
            AND (last_access_at IS NULL OR last_access_at < now() - interval '1 minute')",
        user,
        realm.as_str()
    )
    .execute(g.conn())
    .await?;
    g.commit().await
}

// --- worker side: delivering the outbox ---------------------------------------------

pub struct Delivery {
    pub db: Db,
    pub realm: RealmId,
    pub hub_url: String,
    pub token: String,
    pub interval: Duration,
    /// How often the hub is asked whether the realm's registration changed.
    pub sync_interval: Duration,
    pub http: reqwest::Client,
}

enum Sent {
    Nothing,
    Delivered(usize),
}

impl Delivery {
    /// One pass: sends up to [`MAX_REPORT`] rows in order and deletes them once the hub
    /// acknowledged. The transaction holds an advisory lock, so replicas of a worker
    /// never deliver concurrently (order is kept), and rolls back if anything fails.
    async fn once(&self) -> anyhow::Result<Sent> {
        let mut tx = self.db.realm(&self.realm).await?;
        let locked: bool = sqlx::query_scalar!(
            r#"SELECT pg_try_advisory_xact_lock(hashtext('pek-outbox')) AS "locked!""#
        )
        .fetch_one(tx.conn())
        .await?;
        if !locked {
            return Ok(Sent::Nothing);
        }
        let rows: Vec<(i64, Uuid, bool, bool, chrono::DateTime<chrono::Utc>)> = sqlx::query!(
            "SELECT seq, user_id, member, pending, occurred_at FROM federation_outbox
              WHERE realm_id = $1 ORDER BY seq LIMIT $2",
            self.realm.as_str(),
            MAX_REPORT as i64
        )
        .fetch_all(tx.conn())
        .await?
        .into_iter()
        .map(|r| (r.seq, r.user_id, r.member, r.pending, r.occurred_at))
        .collect();
        let Some(last) = rows.last().map(|r| r.0) else {
            return Ok(Sent::Nothing);
        };
        let report = MembershipReport {
            events: rows
                .iter()
                .map(
                    |(seq, user_id, member, pending, occurred_at)| MembershipEvent {
                        seq: *seq,
                        user_id: *user_id,
                        member: *member,
                        pending: *pending,
                        occurred_at: *occurred_at,
                    },
                )
                .collect(),
        };
        let url = format!(
            "{}/internal/v1/realms/{}/members",
            self.hub_url.trim_end_matches('/'),
            self.realm
        );
        let resp = self
            .http
            .post(&url)
            .bearer_auth(&self.token)
            .json(&report)
            // A hub that took the connection and never answers must not stop delivery:
            // the rows stay (the transaction rolls back) and the next pass sends them.
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("hub not reachable at {url}: {e}"))?;
        if !resp.status().is_success() {
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            anyhow::bail!(
                "hub refused the membership report ({status}): {}",
                body.chars().take(300).collect::<String>()
            );
        }
        sqlx::query!(
            "DELETE FROM federation_outbox WHERE realm_id = $1 AND seq <= $2",
            self.realm.as_str(),
            last
        )
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        Ok(Sent::Delivered(rows.len()))
    }

    /// Asks the hub when this realm was registered. A registration this process has not
    /// filled yet (the first one it sees, or a new one after the realm was deregistered,
    /// which dropped the realm's rows from the federation table) gets the realm's whole
    /// member list: every person with a membership or a policy here is queued in the
    /// outbox with their current state, and delivered like any other change. Returns the
    /// registration now filled (`None` while the realm is not registered).
    async fn sync(
        &self,
        filled: Option<chrono::DateTime<chrono::Utc>>,
    ) -> anyhow::Result<Option<chrono::DateTime<chrono::Utc>>> {
        let url = format!(
            "{}/internal/v1/realms/{}/registration",
            self.hub_url.trim_end_matches('/'),
            self.realm
        );
        let resp = self
            .http
            .get(&url)
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("hub not reachable at {url}: {e}"))?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            anyhow::bail!("hub answered {} to {url}", resp.status());
        }
        let info: RegistrationInfo = resp.json().await?;
        if filled == Some(info.registered_at) {
            return Ok(filled);
        }
        let queued = queue_member_list(&self.db, &self.realm).await?;
        tracing::info!(people = queued, registered_at = %info.registered_at,
            "new hub registration: the realm's member list is queued for the hub");
        Ok(Some(info.registered_at))
    }

    /// Runs forever: delivers whenever there is something; while the hub is down or
    /// refuses, waits a tenth of the time it has been failing (from the idle interval up
    /// to a minute), so a short outage is over for the members within moments of its end
    /// and a long one is not hammered. Counting failures instead would reach the minute
    /// after a dozen quick refusals.
    pub async fn run(self) {
        let max = Duration::from_secs(60);
        let mut failing_since: Option<tokio::time::Instant> = None;
        let mut filled = None;
        let mut next_sync = tokio::time::Instant::now();
        loop {
            if tokio::time::Instant::now() >= next_sync {
                match self.sync(filled).await {
                    Ok(f) => filled = f,
                    Err(e) => tracing::debug!(error = %e, "registration check failed; will retry"),
                }
                next_sync = tokio::time::Instant::now() + self.sync_interval;
            }
            match self.once().await {
                Ok(Sent::Delivered(n)) => {
                    tracing::debug!(events = n, "membership changes delivered to the hub");
                    metrics::counter!("pek_outbox_delivered_total").increment(n as u64);
                    failing_since = None;
                    continue; // there may be more
                }
                Ok(Sent::Nothing) => {
                    failing_since = None;
                    tokio::time::sleep(self.interval).await;
                }
                Err(e) => {
                    metrics::counter!("pek_outbox_failures_total").increment(1);
                    let since = *failing_since.get_or_insert_with(tokio::time::Instant::now);
                    let backoff = (since.elapsed() / 10).clamp(self.interval, max);
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64,
                        "membership report not delivered; will retry");
                    let jitter = rand::random::<u64>() % (backoff.as_millis() as u64 / 4 + 1);
                    tokio::time::sleep(backoff + Duration::from_millis(jitter)).await;
                }
            }
        }
    }
}

/// Worker: queues every person with a membership or a policy in `realm` in the outbox with
/// their current state (what a new hub registration needs: the hub has nothing for the
/// realm yet). Returns how many people were queued.
pub async fn queue_member_list(db: &Db, realm: &RealmId) -> Result<u64> {
    let mut tx = db.realm(realm).await?;
    // The list is read after every change already in the outbox has committed, and no
    // change reaches the outbox until it is queued: a membership changing meanwhile
    // gets a later seq than the state read here, so the hub ends with the newer one.
    // (Read from an older snapshot and queued after it, a stale "not a member" could
    // overwrite a membership the hub already had, until its next change.)
    sqlx::Executor::execute(
        tx.conn(),
        "LOCK TABLE federation_outbox IN SHARE ROW EXCLUSIVE MODE",
    )
    .await?;
    // pek_outbox_member decides each person's state, exactly as the outbox triggers do.
    let queued = sqlx::query!(
        "SELECT pek_outbox_member(u, $1)
           FROM (SELECT user_id AS u FROM memberships
                  WHERE realm_id = $1 AND user_id IS NOT NULL
                 UNION
                 SELECT user_id FROM policy_assignments WHERE realm_id = $1) people",
        realm.as_str()
    )
    .execute(tx.conn())
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(queued)
}

/// Rows waiting in a worker's outbox (for /metrics and tests).
pub async fn outbox_len(db: &Db, realm: &RealmId) -> Result<i64> {
    let mut tx = db.realm(realm).await?;
    let n = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM federation_outbox WHERE realm_id = $1"#,
        realm.as_str()
    )
    .fetch_one(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realm_tokens_are_bound_to_their_realm() {
        let secret = b"0123456789abcdef0123";
        let a = RealmId::parse("kir-dev").unwrap();
        let b = RealmId::parse("kszk").unwrap();
        let t = realm_token(secret, &a);
        assert!(realm_token_ok(secret, &a, &t));
        assert!(!realm_token_ok(secret, &b, &t));
        assert!(!realm_token_ok(b"another-secret-value", &a, &t));
        assert!(!realm_token_ok(secret, &a, "not base64 !"));
    }
}
