//! Merging two people: a hub administrator merges person B (`from`) into person A
//! (`into`), e.g. one person who signed in through two providers before linking them, or
//! a pek-next person who had no AuthSCH id.
//!
//! The hub's part runs in one transaction ([`start`]): B's identities move to A (B's
//! AuthSCH id only when A has none: a person has one; otherwise it stays on B's record
//! and still signs in to A, as every lookup follows `users.merged_into`), B's usernames
//! move, B is marked merged into A (B's profile stays as history), the merge is recorded
//! (who, when) with one progress row per registered realm, and B's sessions end.
//!
//! Each realm's part (memberships, roles, points and every row naming B) is the realm's
//! own function `pek_merge_person` (realm migration `…_person_merge_realm.sql`, which
//! also says what happens to rows both people hold), reached in-process for realms the
//! hub serves and through the realm's internal API (`POST /internal/v1/realms/{realm}/
//! people/merge`, with the realm's token) for workers. It is idempotent, so [`drive`]
//! simply asks every realm not yet done — at the request, on a retry of the same request,
//! and in the hub's periodic pass ([`resume_periodically`]) — until all are.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::bff::{BackendRequest, Outcome};
use crate::db::{Db, GlobalTx, RealmTx};
use crate::error::{Error, Result};
use crate::http::AppState;
use crate::realm::RealmId;

/// What the hub asks a realm to do.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RealmMergeRequest {
    /// The person merged away (B).
    pub from: Uuid,
    /// The person who stays (A).
    pub into: Uuid,
}

/// What a realm moved from B to A (zeros when a retry finds nothing left).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Moved {
    /// B's memberships that became A's.
    pub memberships: i64,
    /// B's memberships joined into A's membership of the same group.
    pub memberships_joined: i64,
    /// Role (policy) assignments moved or joined.
    pub roles: i64,
    /// Point requests, entry awards and point history rows moved.
    pub points: i64,
    /// Rows naming B as their actor (creator, reviewer, author, owner…).
    pub other: i64,
}

/// Realm side: moves B's rows in this realm to A (idempotent).
pub async fn merge_in_realm(tx: &mut RealmTx, from: Uuid, into: Uuid) -> Result<Moved> {
    if from == into {
        return Err(Error::invalid("a person cannot be merged into themselves"));
    }
    let realm = tx.realm().to_string();
    let moved: serde_json::Value = sqlx::query_scalar!(
        r#"SELECT pek_merge_person($1, $2, $3) AS "moved!""#,
        realm,
        from,
        into
    )
    .fetch_one(tx.conn())
    .await?;
    serde_json::from_value(moved).map_err(|e| Error::Internal(e.into()))
}

/// One realm's part of a merge.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RealmProgress {
    pub realm: String,
    /// When the realm finished its part; absent while it is pending.
    pub done_at: Option<DateTime<Utc>>,
    pub attempts: i32,
    /// Why the last attempt failed (the realm was down, …), while pending.
    pub last_error: Option<String>,
    pub moved: Option<Moved>,
}

/// A merge of person `from` into person `into`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MergeView {
    pub id: Uuid,
    /// The person merged away (B); their profile is kept as history.
    pub from: Uuid,
    /// B's name when the merge is read (from B's kept profile).
    pub from_name: Option<String>,
    /// The person who stays (A).
    pub into: Uuid,
    /// The hub administrator who merged them.
    pub actor: Option<Uuid>,
    pub started_at: DateTime<Utc>,
    /// When every realm had done its part; absent while some realm is pending.
    pub completed_at: Option<DateTime<Utc>>,
    pub realms: Vec<RealmProgress>,
}

/// Hub: begins merging `from` into `into` by hub administrator `actor` — or, for a merge
/// of the same two people that is still pending, resumes it (a retry). Refused: merging
/// a person into themselves (422), an unknown person (404), a person already merged away
/// (409 `already_merged`), a target that was itself merged away (409 `target_merged`), a
/// person into whom a merge is still pending in some realm (409 `merge_pending`).
/// Returns the merge's id.
pub async fn start(s: &AppState, actor: Uuid, from: Uuid, into: Uuid) -> Result<Uuid> {
    if from == into {
        return Err(Error::invalid("a person cannot be merged into themselves"));
    }
    let mut g = s.db.global().await?;
    // Both rows locked in one order, so two merges of the same people cannot deadlock.
    let rows = sqlx::query!(
        "SELECT id, merged_into FROM users WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        &[from, into][..]
    )
    .fetch_all(g.conn())
    .await?;
    let merged_into = |id: Uuid| rows.iter().find(|r| r.id == id).map(|r| r.merged_into);
    let (Some(from_merged), Some(into_merged)) = (merged_into(from), merged_into(into)) else {
        let missing = if merged_into(from).is_none() {
            from
        } else {
            into
        };
        return Err(Error::not_found(format!("user {missing}")));
    };
    if let Some(earlier) = from_merged {
        let open = sqlx::query_scalar!(
            "SELECT id FROM person_merges
              WHERE source = $1 AND target = $2 AND completed_at IS NULL",
            from,
            into
        )
        .fetch_optional(g.conn())
        .await?;
        g.commit().await?;
        return match open {
            Some(id) => Ok(id),
            None => Err(Error::conflict_because(
                "already_merged",
                format!("user {from} was already merged into user {earlier}"),
            )),
        };
    }
    if let Some(later) = into_merged {
        return Err(Error::conflict_because(
            "target_merged",
            format!("user {into} was merged into user {later}; merge into that person instead"),
        ));
    }
    // B's rows must have arrived at B everywhere before they move on: a realm still
    // finishing an earlier merge into B would otherwise leave them at B, merged away.
    let pending_into_from = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM person_merges
                           WHERE target = $1 AND completed_at IS NULL) AS "pending!""#,
        from
    )
    .fetch_one(g.conn())
    .await?;
    if pending_into_from {
        return Err(Error::conflict_because(
            "merge_pending",
            format!(
                "a merge into user {from} is still pending in some realm; merge them once it \
                 has finished"
            ),
        ));
    }
    move_identities(&mut g, actor, from, into).await?;
    sqlx::query!(
        "UPDATE usernames SET user_id = $2 WHERE user_id = $1",
        from,
        into
    )
    .execute(g.conn())
    .await?;
    // People merged into B earlier now lead to A directly (one step, never a chain).
    sqlx::query!(
        "UPDATE users SET merged_into = $2 WHERE merged_into = $1",
        from,
        into
    )
    .execute(g.conn())
    .await?;
    sqlx::query!(
        "UPDATE users SET merged_into = $2, merged_at = now() WHERE id = $1",
        from,
        into
    )
    .execute(g.conn())
    .await?;
    let id: Uuid = sqlx::query_scalar!(
        "INSERT INTO person_merges (source, target, actor) VALUES ($1, $2, $3) RETURNING id",
        from,
        into,
        actor
    )
    .fetch_one(g.conn())
    .await?;
    // Every registered realm (served by the hub or by a worker) may hold rows of B, not
    // only those of the federation table (which lists consented presence only).
    sqlx::query!(
        "INSERT INTO person_merge_realms (merge_id, realm_id) SELECT $1, id FROM realms",
        id
    )
    .execute(g.conn())
    .await?;
    g.commit().await?;
    if let Some(sessions) = &s.sessions {
        sessions.revoke_all(from, actor).await?;
    }
    tracing::info!(admin = %actor, from = %from, into = %into, merge = %id, "people merged");
    Ok(id)
}

/// B's identities become A's, each recorded on A's page as a `merge` by the admin.
async fn move_identities(g: &mut GlobalTx, actor: Uuid, from: Uuid, into: Uuid) -> Result<()> {
    let moved = sqlx::query!(
        "UPDATE user_identities SET user_id = $2 WHERE user_id = $1
         RETURNING issuer, subject, provider",
        from,
        into
    )
    .fetch_all(g.conn())
    .await?;
    for i in moved {
        record_merge_event(g, into, actor, &i.issuer, &i.subject, &i.provider).await?;
    }
    let authsch = sqlx::query!(
        r#"SELECT (SELECT auth_sch_id FROM users WHERE id = $1) AS "from_id",
                  (SELECT auth_sch_id FROM users WHERE id = $2) AS "into_id""#,
        from,
        into
    )
    .fetch_one(g.conn())
    .await?;
    if let (Some(subject), None) = (authsch.from_id, authsch.into_id) {
        // A person holds one AuthSCH id (users.auth_sch_id); A had none, so B's moves. A
        // pek-next placeholder is no sign-in and stays on B's record.
        if !subject.starts_with(crate::pek_next::PLACEHOLDER_PREFIX) {
            sqlx::query!("UPDATE users SET auth_sch_id = NULL WHERE id = $1", from)
                .execute(g.conn())
                .await?;
            sqlx::query!(
                "UPDATE users SET auth_sch_id = $2 WHERE id = $1",
                into,
                subject
            )
            .execute(g.conn())
            .await?;
            record_merge_event(
                g,
                into,
                actor,
                crate::identity::AUTHSCH_ISSUER,
                &subject,
                crate::auth::DEFAULT_PROVIDER,
            )
            .await?;
        }
    }
    Ok(())
}

async fn record_merge_event(
    g: &mut GlobalTx,
    user: Uuid,
    actor: Uuid,
    issuer: &str,
    subject: &str,
    provider: &str,
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO identity_events (user_id, actor, action, issuer, subject, provider)
         VALUES ($1, $2, 'merge', $3, $4, $5)",
        user,
        actor,
        issuer,
        subject,
        provider
    )
    .execute(g.conn())
    .await?;
    Ok(())
}

/// Asks every realm whose part of merge `id` is pending to do it, records each answer,
/// and marks the merge complete once none is pending. A realm that cannot be reached
/// stays pending (with the reason) for the next retry or pass.
///
/// One drive of a merge at a time: the request that made it, the periodic pass and other
/// hub replicas take the merge's row lock for the whole drive, so a second one waits and
/// then finds only what is still pending. Without it two drives ran a realm's part twice
/// and the second (which found nothing left to move) could record that nothing moved.
pub async fn drive(s: &AppState, id: Uuid) -> Result<()> {
    let mut g = s.db.global().await?;
    let merge = sqlx::query!(
        "SELECT source, target FROM person_merges WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(g.conn())
    .await?
    .ok_or_else(|| Error::not_found(format!("merge {id}")))?;
    let pending: Vec<String> = sqlx::query_scalar!(
        "SELECT realm_id FROM person_merge_realms
          WHERE merge_id = $1 AND done_at IS NULL ORDER BY realm_id",
        id
    )
    .fetch_all(g.conn())
    .await?;
    let (from, into) = (merge.source, merge.target);
    let calls = pending.iter().map(|realm| async move {
        let outcome = match RealmId::parse(realm) {
            Ok(r) => in_realm(s, &r, from, into).await,
            Err(e) => Err(e.to_string()),
        };
        (realm.clone(), outcome)
    });
    for (realm, outcome) in futures::future::join_all(calls).await {
        match outcome {
            Ok(moved) => {
                let moved = moved.map(|m| serde_json::to_value(m).unwrap_or_default());
                sqlx::query!(
                    "UPDATE person_merge_realms
                        SET done_at = now(), attempts = attempts + 1, last_error = NULL,
                            moved = $3
                      WHERE merge_id = $1 AND realm_id = $2 AND done_at IS NULL",
                    id,
                    realm,
                    moved
                )
                .execute(g.conn())
                .await?;
            }
            Err(why) => {
                tracing::warn!(merge = %id, realm = %realm, reason = %why,
                    "a realm's part of a merge is pending");
                let why: String = why.chars().take(500).collect();
                sqlx::query!(
                    "UPDATE person_merge_realms SET attempts = attempts + 1, last_error = $3
                      WHERE merge_id = $1 AND realm_id = $2 AND done_at IS NULL",
                    id,
                    realm,
                    why
                )
                .execute(g.conn())
                .await?;
            }
        }
    }
    sqlx::query!(
        "UPDATE person_merges SET completed_at = now()
          WHERE id = $1 AND completed_at IS NULL
            AND NOT EXISTS (SELECT 1 FROM person_merge_realms
                             WHERE merge_id = $1 AND done_at IS NULL)",
        id
    )
    .execute(g.conn())
    .await?;
    g.commit().await
}

/// One realm's part: `Ok(Some(moved))` done, `Ok(None)` nothing to do there any more (the
/// realm was deregistered: it is out of the federation with whatever it holds), `Err` the
/// reason it is still pending.
async fn in_realm(
    s: &AppState,
    realm: &RealmId,
    from: Uuid,
    into: Uuid,
) -> std::result::Result<Option<Moved>, String> {
    if s.serves(realm).await {
        let mut tx = s.db.realm(realm).await.map_err(|e| e.to_string())?;
        let moved = merge_in_realm(&mut tx, from, into)
            .await
            .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
        return Ok(Some(moved));
    }
    let (Some(bff), Some(secret)) = (&s.bff, &s.federation_secret) else {
        return Err("no federation secret to ask workers with".into());
    };
    let backend = match bff.backend(realm).await {
        Ok(b) => b,
        Err(Error::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let body = serde_json::to_vec(&RealmMergeRequest { from, into }).map_err(|e| e.to_string())?;
    let req = BackendRequest {
        service_bearer: Some(crate::federation::realm_token(secret, realm)),
        ..BackendRequest::json(
            axum::http::Method::POST,
            format!("/internal/v1/realms/{realm}/people/merge"),
            None,
            body,
        )
    };
    // The realm's part is idempotent, so the BFF's retries are safe here.
    match bff.call(&backend, req).await {
        Outcome::Answered(r) if r.status.is_success() => serde_json::from_slice(&r.body)
            .map(Some)
            .map_err(|e| format!("unreadable answer: {e}")),
        Outcome::Answered(r) => Err(format!(
            "answered {}: {}",
            r.status,
            String::from_utf8_lossy(&r.body)
                .chars()
                .take(300)
                .collect::<String>()
        )),
        Outcome::Forbidden => Ok(None),
        Outcome::Unavailable(why) => Err(why.to_string()),
    }
}

/// The merges into `user` (newest first), with each realm's progress.
pub async fn merges_into(db: &Db, user: Uuid) -> Result<Vec<MergeView>> {
    let mut g = db.global().await?;
    let merges = sqlx::query!(
        r#"SELECT m.id, m.source, m.target, m.actor, m.started_at, m.completed_at,
                  NULLIF(btrim(concat_ws(' ', p.last_name, p.first_name)), '') AS "from_name"
             FROM person_merges m LEFT JOIN profiles p ON p.user_id = m.source
            WHERE m.target = $1 ORDER BY m.started_at DESC, m.id LIMIT 100"#,
        user
    )
    .fetch_all(g.conn())
    .await?;
    let ids: Vec<Uuid> = merges.iter().map(|m| m.id).collect();
    let realms = sqlx::query!(
        "SELECT merge_id, realm_id, done_at, attempts, last_error, moved
           FROM person_merge_realms WHERE merge_id = ANY($1) ORDER BY realm_id",
        &ids
    )
    .fetch_all(g.conn())
    .await?;
    g.commit().await?;
    Ok(merges
        .into_iter()
        .map(|m| MergeView {
            id: m.id,
            from: m.source,
            from_name: m.from_name,
            into: m.target,
            actor: m.actor,
            started_at: m.started_at,
            completed_at: m.completed_at,
            realms: realms
                .iter()
                .filter(|r| r.merge_id == m.id)
                .map(|r| RealmProgress {
                    realm: r.realm_id.clone(),
                    done_at: r.done_at,
                    attempts: r.attempts,
                    last_error: r.last_error.clone(),
                    moved: r.moved.clone().and_then(|v| serde_json::from_value(v).ok()),
                })
                .collect(),
        })
        .collect())
}

/// One merge, by id.
pub async fn view(db: &Db, id: Uuid) -> Result<MergeView> {
    let mut g = db.global().await?;
    let target = sqlx::query_scalar!("SELECT target FROM person_merges WHERE id = $1", id)
        .fetch_optional(g.conn())
        .await?
        .ok_or_else(|| Error::not_found(format!("merge {id}")))?;
    g.commit().await?;
    merges_into(db, target)
        .await?
        .into_iter()
        .find(|m| m.id == id)
        .ok_or_else(|| Error::not_found(format!("merge {id}")))
}

/// Hub: finishes pending merges every `period` (realms that were down when the merge
/// was made do their part once they are back).
pub async fn resume_periodically(state: AppState, period: Duration) {
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        if let Err(e) = resume_open(&state).await {
            tracing::warn!(error = %e, "resuming pending merges failed");
        }
    }
}

async fn resume_open(s: &AppState) -> Result<()> {
    let mut g = s.db.global().await?;
    let open: Vec<Uuid> = sqlx::query_scalar!(
        "SELECT id FROM person_merges WHERE completed_at IS NULL ORDER BY started_at LIMIT 100"
    )
    .fetch_all(g.conn())
    .await?;
    g.commit().await?;
    for id in open {
        drive(s, id).await?;
    }
    Ok(())
}
