//! Point history: a user's points per semester in this realm, derived from accepted
//! scoreboards. Accepting a scoreboard records its members' points (one row per user,
//! group and semester); [`rebuild_semester`] recomputes a whole semester from the
//! accepted scoreboards. A semester total is the sum over groups, capped at the realm's
//! maximum points per semester.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::scoreboard::Scoreboard;
use super::settings;
use crate::db::RealmTx;
use crate::error::{Error, Result};
use crate::page::{Cursor, Page};
use crate::policy::{self, Grants, Permission, Target};

/// Records the points of a just-accepted scoreboard.
pub(crate) async fn record_accepted(tx: &mut RealmTx, sb: &Scoreboard) -> Result<u64> {
    let realm = tx.realm().as_str().to_string();
    Ok(sqlx::query(
        "INSERT INTO point_history (realm_id, semester_id, user_id, group_id, scoreboard_id,
                                    points)
         SELECT p.realm_id, p.semester_id, m.user_id, p.group_id, p.scoreboard_id, sum(p.points)
           FROM point_requests p
           JOIN memberships m ON m.realm_id = p.realm_id AND m.id = p.membership_id
                -- only memberships the person consented to earn points
                AND m.status NOT IN ('APPLIED', 'INVITED')
          WHERE p.realm_id = $1 AND p.scoreboard_id = $2
          GROUP BY p.realm_id, p.semester_id, m.user_id, p.group_id, p.scoreboard_id
         ON CONFLICT (realm_id, semester_id, user_id, group_id) DO UPDATE SET
             points = EXCLUDED.points, scoreboard_id = EXCLUDED.scoreboard_id,
             recorded_at = now()",
    )
    .bind(&realm)
    .bind(sb.id)
    .execute(tx.conn())
    .await?
    .rows_affected())
}

/// Recomputes a semester's point history from its accepted scoreboards (manageRealm).
/// Returns the number of (user, group) rows written.
pub async fn rebuild_semester(tx: &mut RealmTx, grants: &Grants, semester: Uuid) -> Result<u64> {
    policy::require(tx, grants, Permission::ManageRealm, Target::Realm).await?;
    let realm = tx.realm().as_str().to_string();
    sqlx::query("DELETE FROM point_history WHERE realm_id = $1 AND semester_id = $2")
        .bind(&realm)
        .bind(semester)
        .execute(tx.conn())
        .await?;
    Ok(sqlx::query(
        "INSERT INTO point_history (realm_id, semester_id, user_id, group_id, scoreboard_id,
                                    points)
         SELECT p.realm_id, p.semester_id, m.user_id, p.group_id, p.scoreboard_id, sum(p.points)
           FROM scoreboards s
           JOIN point_requests p ON p.realm_id = s.realm_id AND p.scoreboard_id = s.id
           JOIN memberships m ON m.realm_id = p.realm_id AND m.id = p.membership_id
                AND m.status NOT IN ('APPLIED', 'INVITED')
          WHERE s.realm_id = $1 AND s.semester_id = $2 AND s.status = 'ACCEPTED'
          GROUP BY p.realm_id, p.semester_id, m.user_id, p.group_id, p.scoreboard_id",
    )
    .bind(&realm)
    .bind(semester)
    .execute(tx.conn())
    .await?
    .rows_affected())
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupPoints {
    pub group_id: Uuid,
    pub group_name: String,
    pub scoreboard_id: Uuid,
    pub points: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SemesterPoints {
    pub semester_id: Uuid,
    pub semester_name: String,
    pub starts_on: chrono::NaiveDate,
    /// The semester total: the sum over groups, capped at `maxPointsPerSemester`.
    pub points: i64,
    /// The sum over groups before the cap.
    pub uncapped_points: i64,
    /// Per group; only groups whose scores the caller may see (all for the user
    /// themself), while the totals always count every group.
    pub groups: Vec<GroupPoints>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserPoints {
    pub realm_id: String,
    pub user_id: Uuid,
    pub max_points_per_semester: i32,
    /// Newest semester first.
    pub items: Vec<SemesterPoints>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PointsQuery {
    /// Only this semester: its id, or its name (e.g. `2025/26/1`; names are the same
    /// across realms, so the BFF can pass one to every realm).
    pub semester: Option<crate::text::Line<200>>,
}

#[derive(sqlx::FromRow)]
struct HistoryRow {
    semester_id: Uuid,
    semester_name: String,
    starts_on: chrono::NaiveDate,
    group_id: Uuid,
    group_name: String,
    scoreboard_id: Uuid,
    points: i32,
}

/// A user's totals per semester in this realm. Visible to the user themself and to
/// people with viewScores on a group the user has points from.
pub async fn user_points(
    tx: &mut RealmTx,
    grants: &Grants,
    user: Uuid,
    semester: Option<&str>,
) -> Result<UserPoints> {
    let realm = tx.realm().as_str().to_string();
    let all_groups = user == grants.viewer || grants.realm_wide(Permission::ViewScores);
    let mut visible: HashSet<Uuid> = HashSet::new();
    if !all_groups {
        let scored_in: Vec<Uuid> = sqlx::query_scalar(
            "SELECT DISTINCT group_id FROM point_history WHERE realm_id = $1 AND user_id = $2",
        )
        .bind(&realm)
        .bind(user)
        .fetch_all(tx.conn())
        .await?;
        for g in scored_in {
            if policy::can(tx, grants, Permission::ViewScores, Target::Group(g)).await? {
                visible.insert(g);
            }
        }
        if visible.is_empty() {
            return Err(Error::Forbidden(format!(
                "you may see the points of user {user} in realm {realm} only as that user or \
                 with viewScores on a group they have points from"
            )));
        }
    }
    let rows: Vec<HistoryRow> = sqlx::query_as(
        "SELECT h.semester_id, s.name AS semester_name, s.starts_on, h.group_id,
                g.name AS group_name, h.scoreboard_id, h.points
           FROM point_history h
           JOIN semesters s ON s.realm_id = h.realm_id AND s.id = h.semester_id
           JOIN groups g ON g.realm_id = h.realm_id AND g.id = h.group_id
          WHERE h.realm_id = $1 AND h.user_id = $2
            AND ($3::text IS NULL OR s.id::text = $3 OR s.name = $3)
          ORDER BY s.starts_on DESC, s.name, g.name_folded, g.id",
    )
    .bind(&realm)
    .bind(user)
    .bind(semester.map(str::trim))
    .fetch_all(tx.conn())
    .await?;
    let max = settings(tx).await?.max_points_per_semester;
    let mut by_semester: BTreeMap<(std::cmp::Reverse<chrono::NaiveDate>, String), SemesterPoints> =
        BTreeMap::new();
    for r in rows {
        let e = by_semester
            .entry((std::cmp::Reverse(r.starts_on), r.semester_name.clone()))
            .or_insert_with(|| SemesterPoints {
                semester_id: r.semester_id,
                semester_name: r.semester_name.clone(),
                starts_on: r.starts_on,
                points: 0,
                uncapped_points: 0,
                groups: Vec::new(),
            });
        e.uncapped_points += i64::from(r.points);
        if all_groups || visible.contains(&r.group_id) {
            e.groups.push(GroupPoints {
                group_id: r.group_id,
                group_name: r.group_name,
                scoreboard_id: r.scoreboard_id,
                points: i64::from(r.points),
            });
        }
    }
    let items = by_semester
        .into_values()
        .map(|mut s| {
            s.points = s.uncapped_points.min(i64::from(max));
            s
        })
        .collect();
    Ok(UserPoints {
        realm_id: realm,
        user_id: user,
        max_points_per_semester: max,
        items,
    })
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserTotal {
    pub user_id: Uuid,
    /// Capped at the realm's maximum points per semester.
    pub points: i64,
    pub uncapped_points: i64,
    /// Groups the points come from.
    pub groups: i64,
}

/// Every user's total in a semester (viewScores realm-wide), by user id.
pub async fn semester_totals(
    tx: &mut RealmTx,
    grants: &Grants,
    semester: Uuid,
    limit: i64,
    cursor: Option<Cursor>,
) -> Result<Page<UserTotal>> {
    policy::require(tx, grants, Permission::ViewScores, Target::Realm).await?;
    let realm = tx.realm().as_str().to_string();
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM semesters WHERE realm_id = $1 AND id = $2)",
    )
    .bind(&realm)
    .bind(semester)
    .fetch_one(tx.conn())
    .await?;
    if !exists {
        return Err(Error::not_found(format!(
            "semester {semester} in realm {realm}"
        )));
    }
    let max = i64::from(settings(tx).await?.max_points_per_semester);
    let after = cursor.map(|c| c.id);
    let rows: Vec<UserTotal> = sqlx::query_as(
        "SELECT user_id, least(sum(points), $4)::bigint AS points,
                sum(points)::bigint AS uncapped_points, count(*) AS groups
           FROM point_history
          WHERE realm_id = $1 AND semester_id = $2 AND ($3::uuid IS NULL OR user_id > $3)
          GROUP BY user_id ORDER BY user_id LIMIT $5",
    )
    .bind(&realm)
    .bind(semester)
    .bind(after)
    .bind(max)
    .bind(limit + 1)
    .fetch_all(tx.conn())
    .await?;
    Ok(Page::from_rows(rows, limit, |t| (String::new(), t.user_id)))
}
