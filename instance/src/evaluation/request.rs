//! Point requests (per scoreboard, membership and guideline, within the guideline's
//! limits and the realm's maximum per semester) and entry award requests (KDO / KB / AB
//! with a justification, one per membership on a scoreboard, so one per membership and
//! semester on the live version).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::scoreboard::{self, Action, Scoreboard, Status};
use super::season::Act;
use super::{as_reference, guideline, mapped, require_season, text_field, COUNTED_STATUSES};
use crate::db::RealmTx;
use crate::error::{Error, Result};
use crate::membership::{self, Membership};
use crate::policy::{self, Grants, Permission, Target};

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PointRequest {
    pub scoreboard_id: Uuid,
    pub membership_id: Uuid,
    pub user_id: Uuid,
    pub guideline_id: Uuid,
    pub points: i32,
    pub updated_by: Uuid,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum EntryKind {
    Kdo,
    Kb,
    Ab,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Kdo => "KDO",
            EntryKind::Kb => "KB",
            EntryKind::Ab => "AB",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntryAwardRequest {
    pub scoreboard_id: Uuid,
    pub membership_id: Uuid,
    pub user_id: Uuid,
    /// KDO, KB or AB.
    pub kind: String,
    pub justification: String,
    pub updated_by: Uuid,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// PENDING, ACCEPTED or REJECTED: reviewed on its own, apart from the points.
    pub status: String,
    pub rejection_reason: Option<String>,
    pub reviewed_by: Option<Uuid>,
    pub reviewed_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CellComment {
    pub id: Uuid,
    pub scoreboard_id: Uuid,
    pub membership_id: Uuid,
    pub guideline_id: Uuid,
    pub author_id: Uuid,
    pub body: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PointsInput {
    pub points: i32,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EntryInput {
    pub kind: EntryKind,
    /// Required (1-5000 characters) for KB and AB; a DO (KDO) award needs none, as in
    /// pek-next.
    #[serde(default)]
    pub justification: crate::text::Prose<10_000>,
}

pub async fn points_of(tx: &mut RealmTx, scoreboard: Uuid) -> Result<Vec<PointRequest>> {
    let realm = tx.realm().as_str().to_string();
    Ok(sqlx::query_as!(
        PointRequest,
        "SELECT p.scoreboard_id, p.membership_id, m.user_id, p.guideline_id, p.points,
                p.updated_by, p.updated_at
           FROM point_requests p
           JOIN memberships m ON m.realm_id = p.realm_id AND m.id = p.membership_id
          WHERE p.realm_id = $1 AND p.scoreboard_id = $2
          ORDER BY m.user_id, p.guideline_id",
        realm,
        scoreboard
    )
    .fetch_all(tx.conn())
    .await?)
}

pub async fn entries_of(tx: &mut RealmTx, scoreboard: Uuid) -> Result<Vec<EntryAwardRequest>> {
    let realm = tx.realm().as_str().to_string();
    Ok(sqlx::query_as!(
        EntryAwardRequest,
        "SELECT e.scoreboard_id, e.membership_id, m.user_id, e.kind, e.justification,
                e.updated_by, e.updated_at, e.status, e.rejection_reason, e.reviewed_by,
                e.reviewed_at
           FROM entry_award_requests e
           JOIN memberships m ON m.realm_id = e.realm_id AND m.id = e.membership_id
          WHERE e.realm_id = $1 AND e.scoreboard_id = $2
          ORDER BY m.user_id",
        realm,
        scoreboard
    )
    .fetch_all(tx.conn())
    .await?)
}

/// The membership, which must be in the scoreboard's group, consented to and not
/// archived.
async fn member_of(tx: &mut RealmTx, sb: &Scoreboard, membership_id: Uuid) -> Result<Membership> {
    let m = as_reference(membership::get(tx, membership_id).await)?;
    if m.group_id != sb.group_id {
        return Err(Error::invalid(format!(
            "membership {membership_id} is not in group {} of this scoreboard",
            sb.group_id
        )));
    }
    if !COUNTED_STATUSES.contains(&m.status.as_str()) {
        return Err(Error::invalid(format!(
            "membership {membership_id} is {}: only memberships the person accepted get \
             requests",
            m.status
        )));
    }
    if m.status == "ARCHIVED" {
        return Err(Error::invalid(format!(
            "membership {membership_id} is archived; archived memberships get no requests"
        )));
    }
    Ok(m)
}

/// Sets (creates or replaces) the points requested for a member under a guideline.
pub async fn put_points(
    tx: &mut RealmTx,
    grants: &Grants,
    scoreboard_id: Uuid,
    membership_id: Uuid,
    guideline_id: Uuid,
    points: i32,
) -> Result<PointRequest> {
    let (sb, _, settings) = scoreboard::lock_for(tx, grants, scoreboard_id, Action::Edit).await?;
    let m = member_of(tx, &sb, membership_id).await?;
    let g = as_reference(guideline::get(tx, guideline_id).await)?;
    if g.group_id != sb.group_id || g.semester_id != sb.semester_id {
        return Err(Error::invalid(format!(
            "guideline {guideline_id} is not in the guideline collection of this scoreboard's \
             group and semester"
        )));
    }
    if points < 1 || points > g.max_per_member {
        return Err(Error::invalid(format!(
            "points must be between 1 and {} (the maximum per member of guideline {:?}); got {points}",
            g.max_per_member, g.title
        )));
    }
    let realm = tx.realm().as_str().to_string();
    // One person is one row: a person who left the group and came back keeps all their
    // requests on this scoreboard under one of their memberships.
    let other: Option<Uuid> = sqlx::query_scalar!(
        "SELECT p.membership_id FROM point_requests p
           JOIN memberships m ON m.realm_id = p.realm_id AND m.id = p.membership_id
          WHERE p.realm_id = $1 AND p.scoreboard_id = $2 AND m.user_id = $3
            AND p.membership_id <> $4
          LIMIT 1",
        realm,
        sb.id,
        m.user_id,
        membership_id
    )
    .fetch_optional(tx.conn())
    .await?;
    if let Some(other) = other {
        return Err(Error::Conflict(format!(
            "this person already has requests on this scoreboard under their membership \
             {other}; one person is one row, so put the points there"
        )));
    }
    // The scoreboard row is locked, so these sums cannot change under us.
    let (others_on_guideline, member_elsewhere): (i64, i64) = sqlx::query!(
        r#"SELECT COALESCE(sum(points) FILTER (WHERE guideline_id = $3 AND membership_id <> $4), 0)
                    AS "others!",
                  COALESCE(sum(points) FILTER (WHERE membership_id = $4 AND guideline_id <> $3), 0)
                    AS "elsewhere!"
           FROM point_requests WHERE realm_id = $1 AND scoreboard_id = $2"#,
        realm,
        sb.id,
        guideline_id,
        membership_id
    )
    .fetch_one(tx.conn())
    .await
    .map(|r| (r.others, r.elsewhere))?;
    if others_on_guideline + i64::from(points) > i64::from(g.max_per_guideline) {
        return Err(Error::invalid(format!(
            "guideline {:?} allows at most {} points on a scoreboard in total; {} are already \
             requested for other members, so at most {} remain",
            g.title,
            g.max_per_guideline,
            others_on_guideline,
            (i64::from(g.max_per_guideline) - others_on_guideline).max(0)
        )));
    }
    let max = i64::from(settings.max_points_per_semester);
    if member_elsewhere + i64::from(points) > max {
        return Err(Error::invalid(format!(
            "a member may be given at most {max} points per semester (realm setting); this \
             member already has {member_elsewhere} under other guidelines, so at most {} remain",
            (max - member_elsewhere).max(0)
        )));
    }
    mapped(
        sqlx::query!(
            "INSERT INTO point_requests (realm_id, scoreboard_id, group_id, semester_id,
                                     membership_id, guideline_id, points, updated_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (realm_id, scoreboard_id, membership_id, guideline_id) DO UPDATE SET
             points = EXCLUDED.points, updated_by = EXCLUDED.updated_by, updated_at = now()",
            realm,
            sb.id,
            sb.group_id,
            sb.semester_id,
            membership_id,
            guideline_id,
            points,
            grants.viewer
        )
        .execute(tx.conn())
        .await,
    )?;
    touch(tx, sb.id).await?;
    points_of(tx, sb.id)
        .await?
        .into_iter()
        .find(|p| p.membership_id == m.id && p.guideline_id == guideline_id)
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("point request vanished")))
}

pub async fn delete_points(
    tx: &mut RealmTx,
    grants: &Grants,
    scoreboard_id: Uuid,
    membership_id: Uuid,
    guideline_id: Uuid,
) -> Result<()> {
    let (sb, _, _) = scoreboard::lock_for(tx, grants, scoreboard_id, Action::Edit).await?;
    let realm = tx.realm().as_str().to_string();
    let n = mapped(
        sqlx::query!(
            "DELETE FROM point_requests
          WHERE realm_id = $1 AND scoreboard_id = $2 AND membership_id = $3 AND guideline_id = $4",
            realm,
            sb.id,
            membership_id,
            guideline_id
        )
        .execute(tx.conn())
        .await,
    )?
    .rows_affected();
    if n == 0 {
        return Err(Error::not_found("point request"));
    }
    touch(tx, sb.id).await
}

pub async fn put_entry(
    tx: &mut RealmTx,
    grants: &Grants,
    scoreboard_id: Uuid,
    membership_id: Uuid,
    input: EntryInput,
) -> Result<EntryAwardRequest> {
    let (sb, _, _) = scoreboard::lock_for(tx, grants, scoreboard_id, Action::Edit).await?;
    member_of(tx, &sb, membership_id).await?;
    let justification = text_field(
        "an entry award justification",
        &input.justification,
        usize::from(input.kind != EntryKind::Kdo),
        5000,
    )?;
    let justification = justification.as_str();
    let realm = tx.realm().as_str().to_string();
    mapped(
        sqlx::query!(
            "INSERT INTO entry_award_requests (realm_id, scoreboard_id, group_id, semester_id,
                                           membership_id, kind, justification, updated_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (realm_id, scoreboard_id, membership_id) DO UPDATE SET
             kind = EXCLUDED.kind, justification = EXCLUDED.justification,
             updated_by = EXCLUDED.updated_by, updated_at = now(),
             status = 'PENDING', rejection_reason = NULL, reviewed_by = NULL,
             reviewed_at = NULL",
            realm,
            sb.id,
            sb.group_id,
            sb.semester_id,
            membership_id,
            input.kind.as_str(),
            justification,
            grants.viewer
        )
        .execute(tx.conn())
        .await,
    )?;
    touch(tx, sb.id).await?;
    entries_of(tx, sb.id)
        .await?
        .into_iter()
        .find(|e| e.membership_id == membership_id)
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("entry award request vanished")))
}

pub async fn delete_entry(
    tx: &mut RealmTx,
    grants: &Grants,
    scoreboard_id: Uuid,
    membership_id: Uuid,
) -> Result<()> {
    let (sb, _, _) = scoreboard::lock_for(tx, grants, scoreboard_id, Action::Edit).await?;
    let realm = tx.realm().as_str().to_string();
    let n = mapped(
        sqlx::query!(
            "DELETE FROM entry_award_requests
          WHERE realm_id = $1 AND scoreboard_id = $2 AND membership_id = $3",
            realm,
            sb.id,
            membership_id
        )
        .execute(tx.conn())
        .await,
    )?
    .rows_affected();
    if n == 0 {
        return Err(Error::not_found("entry award request"));
    }
    touch(tx, sb.id).await
}

async fn touch(tx: &mut RealmTx, scoreboard: Uuid) -> Result<()> {
    let realm = tx.realm().as_str().to_string();
    mapped(
        sqlx::query!(
            "UPDATE scoreboards SET updated_at = now() WHERE realm_id = $1 AND id = $2",
            realm,
            scoreboard
        )
        .execute(tx.conn())
        .await,
    )?;
    Ok(())
}

/// A new version starts from its rejected predecessor's requests (entry award requests
/// keep their review). Archived memberships are left behind (they may get no new
/// requests).
pub(crate) async fn copy_requests(tx: &mut RealmTx, from: Uuid, to: Uuid, by: Uuid) -> Result<()> {
    let realm = tx.realm().as_str().to_string();
    mapped(
        sqlx::query!(
            "INSERT INTO point_requests (realm_id, scoreboard_id, group_id, semester_id,
                                     membership_id, guideline_id, points, updated_by)
         SELECT p.realm_id, $3, p.group_id, p.semester_id, p.membership_id, p.guideline_id,
                p.points, $4
           FROM point_requests p
           JOIN memberships m ON m.realm_id = p.realm_id AND m.id = p.membership_id
          WHERE p.realm_id = $1 AND p.scoreboard_id = $2 AND m.status <> 'ARCHIVED'",
            realm,
            from,
            to,
            by
        )
        .execute(tx.conn())
        .await,
    )?;
    mapped(
        sqlx::query!(
            "INSERT INTO entry_award_requests (realm_id, scoreboard_id, group_id, semester_id,
                                           membership_id, kind, justification, updated_by,
                                           status, rejection_reason, reviewed_by, reviewed_at)
         SELECT e.realm_id, $3, e.group_id, e.semester_id, e.membership_id, e.kind,
                e.justification, $4, e.status, e.rejection_reason, e.reviewed_by,
                e.reviewed_at
           FROM entry_award_requests e
           JOIN memberships m ON m.realm_id = e.realm_id AND m.id = e.membership_id
          WHERE e.realm_id = $1 AND e.scoreboard_id = $2 AND m.status <> 'ARCHIVED'",
            realm,
            from,
            to,
            by
        )
        .execute(tx.conn())
        .await,
    )?;
    Ok(())
}

/// Accepts or rejects (with a reason) an entry award request, apart from the scoreboard's
/// points: evaluateScores on the group, in the JUDGING season, once the scoreboard is
/// submitted. A decision is final until the request is changed on a new version.
pub async fn review_entry(
    tx: &mut RealmTx,
    grants: &Grants,
    scoreboard_id: Uuid,
    membership_id: Uuid,
    reject_reason: Option<&str>,
) -> Result<EntryAwardRequest> {
    let sb = scoreboard::get_visible(tx, grants, scoreboard_id).await?;
    policy::require(
        tx,
        grants,
        Permission::EvaluateScores,
        Target::Group(sb.group_id),
    )
    .await?;
    require_season(tx, sb.semester_id, Act::ReviewEntryAward).await?;
    if !matches!(sb.status(), Status::NotYetEvaluated | Status::Accepted) {
        return Err(Error::Conflict(format!(
            "entry award requests are reviewed once their scoreboard is submitted; this one \
             is {}",
            sb.status
        )));
    }
    let reason = reject_reason
        .map(|r| text_field("a rejection reason", r, 1, 5000))
        .transpose()?;
    let realm = tx.realm().as_str().to_string();
    let status: Option<String> = sqlx::query_scalar!(
        "SELECT status FROM entry_award_requests
          WHERE realm_id = $1 AND scoreboard_id = $2 AND membership_id = $3 FOR UPDATE",
        realm,
        sb.id,
        membership_id
    )
    .fetch_optional(tx.conn())
    .await?;
    match status.as_deref() {
        None => return Err(Error::not_found("entry award request")),
        Some("PENDING") => {}
        Some(other) => {
            return Err(Error::Conflict(format!(
                "this entry award request is already {other}"
            )))
        }
    }
    mapped(
        sqlx::query!(
            "UPDATE entry_award_requests SET status = $4, rejection_reason = $5, reviewed_by = $6,
                reviewed_at = now()
          WHERE realm_id = $1 AND scoreboard_id = $2 AND membership_id = $3",
            realm,
            sb.id,
            membership_id,
            if reason.is_some() {
                "REJECTED"
            } else {
                "ACCEPTED"
            },
            reason.as_deref(),
            grants.viewer
        )
        .execute(tx.conn())
        .await,
    )?;
    entries_of(tx, sb.id)
        .await?
        .into_iter()
        .find(|e| e.membership_id == membership_id)
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("entry award request vanished")))
}

/// Comments on one cell (a member under a guideline) of a scoreboard.
pub async fn cell_comments(
    tx: &mut RealmTx,
    grants: &Grants,
    scoreboard_id: Uuid,
    membership_id: Uuid,
    guideline_id: Uuid,
) -> Result<Vec<CellComment>> {
    scoreboard::get_visible(tx, grants, scoreboard_id).await?;
    let realm = tx.realm().as_str().to_string();
    Ok(sqlx::query_as!(
        CellComment,
        "SELECT id, scoreboard_id, membership_id, guideline_id, author_id, body, created_at
           FROM point_request_comments
          WHERE realm_id = $1 AND scoreboard_id = $2 AND membership_id = $3
            AND guideline_id = $4
          ORDER BY created_at, id",
        realm,
        scoreboard_id,
        membership_id,
        guideline_id
    )
    .fetch_all(tx.conn())
    .await?)
}

/// Those who fill or evaluate a scoreboard discuss its cells, in any status and season.
pub async fn add_cell_comment(
    tx: &mut RealmTx,
    grants: &Grants,
    scoreboard_id: Uuid,
    membership_id: Uuid,
    guideline_id: Uuid,
    body: &str,
) -> Result<CellComment> {
    let sb = scoreboard::get_visible(tx, grants, scoreboard_id).await?;
    let target = Target::Group(sb.group_id);
    if !policy::can(tx, grants, Permission::EditScores, target).await?
        && !policy::can(tx, grants, Permission::EvaluateScores, target).await?
    {
        return Err(Error::Forbidden(format!(
            "you need editScores or evaluateScores on group {} to discuss its scoreboard",
            sb.group_id
        )));
    }
    let m = as_reference(membership::get(tx, membership_id).await)?;
    if m.group_id != sb.group_id {
        return Err(Error::invalid(format!(
            "membership {membership_id} is not in group {} of this scoreboard",
            sb.group_id
        )));
    }
    let g = as_reference(guideline::get(tx, guideline_id).await)?;
    if g.group_id != sb.group_id || g.semester_id != sb.semester_id {
        return Err(Error::invalid(format!(
            "guideline {guideline_id} is not in the guideline collection of this scoreboard's \
             group and semester"
        )));
    }
    let body = text_field("a comment", body, 1, 5000)?;
    let realm = tx.realm().as_str().to_string();
    mapped(
        sqlx::query_as!(
            CellComment,
            "INSERT INTO point_request_comments (realm_id, scoreboard_id, group_id, semester_id,
                                             membership_id, guideline_id, author_id, body)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         RETURNING id, scoreboard_id, membership_id, guideline_id, author_id, body, created_at",
            realm,
            sb.id,
            sb.group_id,
            sb.semester_id,
            membership_id,
            guideline_id,
            grants.viewer,
            body
        )
        .fetch_one(tx.conn())
        .await,
    )
}
