//! Point history: a member's points per group and semester in this realm, by the real
//! PéK's formula (see [`super::points`]), from accepted latest-version scoreboards and
//! consented memberships only. Leaving the JUDGING season for OFF computes a semester
//! ([`compute_semester`]; idempotent, so it can be re-run). A person's semester points
//! are computed when read: `min(sqrt(Σ g²), maxPointsPerSemester)` over their groups'
//! totals `g` of the semester and the one before it.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::guideline::Category;
use super::points::{self, Requested, SemesterFigure};
use super::{previous_semester, settings};
use crate::db::RealmTx;
use crate::error::{Error, Result};
use crate::page::{Cursor, Page};
use crate::policy::{self, Grants, Permission, Target};

#[derive(sqlx::FromRow)]
struct RequestRow {
    scoreboard_id: Uuid,
    group_id: Uuid,
    user_id: Uuid,
    category: String,
    points: i32,
    max_per_member: i32,
}

/// Computes a semester's point history from scratch: every consented member of every
/// accepted, latest-version scoreboard of the semester gets their member points.
/// Returns the number of (member, group) rows written.
pub async fn compute_semester(tx: &mut RealmTx, semester: Uuid) -> Result<u64> {
    let realm = tx.realm().as_str().to_string();
    sqlx::query!(
        "DELETE FROM point_history WHERE realm_id = $1 AND semester_id = $2",
        realm,
        semester
    )
    .execute(tx.conn())
    .await?;
    // Counted statuses: COUNTED_STATUSES.
    let rows: Vec<RequestRow> = sqlx::query_as!(
        RequestRow,
        "SELECT s.id AS scoreboard_id, s.group_id, m.user_id, g.category, p.points,
                g.max_per_member
           FROM scoreboards s
           JOIN point_requests p ON p.realm_id = s.realm_id AND p.scoreboard_id = s.id
           JOIN guidelines g ON g.realm_id = p.realm_id AND g.id = p.guideline_id
           JOIN memberships m ON m.realm_id = p.realm_id AND m.id = p.membership_id
          WHERE s.realm_id = $1 AND s.semester_id = $2 AND s.status = 'ACCEPTED'
            AND NOT EXISTS (SELECT 1 FROM scoreboards n
                             WHERE n.realm_id = s.realm_id AND n.previous_id = s.id)
            AND m.status IN ('NEWBIE', 'ACTIVE', 'FORMER', 'ARCHIVED')",
        realm,
        semester
    )
    .fetch_all(tx.conn())
    .await?;
    let mut members: HashMap<(Uuid, Uuid, Uuid), Vec<Requested>> = HashMap::new();
    for r in rows {
        members
            .entry((r.scoreboard_id, r.group_id, r.user_id))
            .or_default()
            .push(Requested {
                category: if r.category == "RESPONSIBILITY" {
                    Category::Responsibility
                } else {
                    Category::Work
                },
                points: i64::from(r.points),
                max_per_member: i64::from(r.max_per_member),
            });
    }
    let n = members.len();
    let (mut sbs, mut groups, mut users, mut pts) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for ((sb, group, user), requests) in members {
        sbs.push(sb);
        groups.push(group);
        users.push(user);
        // 0..=50 by construction.
        pts.push(points::member_points(requests).points as i32);
    }
    Ok(sqlx::query!(
        "INSERT INTO point_history (realm_id, semester_id, user_id, group_id, scoreboard_id,
                                    points)
         SELECT $1, $2, u, g, s, p
           FROM unnest($3::uuid[], $4::uuid[], $5::uuid[], $6::int[]) AS t(u, g, s, p)",
        realm,
        semester,
        &users,
        &groups,
        &sbs,
        &pts
    )
    .execute(tx.conn())
    .await?
    .rows_affected())
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupPoints {
    pub group_id: Uuid,
    pub group_name: String,
    /// The group's total `g` for the semester figure: this semester's member points
    /// plus the previous semester's.
    pub points: i64,
    /// Member points from this semester's accepted scoreboard.
    pub semester_points: i64,
    /// Member points from the previous semester's accepted scoreboard.
    pub previous_semester_points: i64,
    /// This semester's accepted scoreboard, if the group has one with the user.
    pub scoreboard_id: Option<Uuid>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SemesterPoints {
    pub semester_id: Uuid,
    pub semester_name: String,
    pub starts_on: chrono::NaiveDate,
    /// The semester before it in this realm, whose points count too.
    pub previous_semester_name: Option<String>,
    /// `min(sqrt(Σ g²), maxPointsPerSemester)` (`points` truncated to two decimals,
    /// `pointsInteger` to an integer, `pointsExact` unrounded, `sumOfSquares` = Σ g²).
    #[serde(flatten)]
    pub figure: SemesterFigure,
    /// Per group; only groups whose scores the caller may see (all for the user
    /// themself), while the figure always counts every group.
    pub groups: Vec<GroupPoints>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserPoints {
    pub realm_id: String,
    pub user_id: Uuid,
    pub max_points_per_semester: i32,
    /// Newest semester first: every semester whose figure has points from it or the
    /// semester before.
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
struct SemesterRow {
    id: Uuid,
    name: String,
    starts_on: chrono::NaiveDate,
}

#[derive(sqlx::FromRow)]
struct HistoryRow {
    semester_id: Uuid,
    group_id: Uuid,
    group_name: String,
    scoreboard_id: Uuid,
    points: i32,
}

/// The realm's semesters, oldest first (the order "the semester before" follows).
async fn semesters_in_order(tx: &mut RealmTx) -> Result<Vec<SemesterRow>> {
    let realm = tx.realm().as_str().to_string();
    Ok(sqlx::query_as!(
        SemesterRow,
        "SELECT id, name, starts_on FROM semesters WHERE realm_id = $1 ORDER BY starts_on, name",
        realm
    )
    .fetch_all(tx.conn())
    .await?)
}

/// A user's semester points in this realm. Visible to the user themself and to people
/// with viewScores on a group the user has points from.
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
        let scored_in: Vec<Uuid> = sqlx::query_scalar!(
            "SELECT DISTINCT group_id FROM point_history WHERE realm_id = $1 AND user_id = $2",
            realm,
            user
        )
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
    let rows: Vec<HistoryRow> = sqlx::query_as!(
        HistoryRow,
        "SELECT h.semester_id, h.group_id, g.name AS group_name, h.scoreboard_id, h.points
           FROM point_history h
           JOIN groups g ON g.realm_id = h.realm_id AND g.id = h.group_id
          WHERE h.realm_id = $1 AND h.user_id = $2
          ORDER BY g.name_folded, g.id",
        realm,
        user
    )
    .fetch_all(tx.conn())
    .await?;
    let mut by_semester: HashMap<Uuid, Vec<HistoryRow>> = HashMap::new();
    for r in rows {
        by_semester.entry(r.semester_id).or_default().push(r);
    }
    let cap = i64::from(settings(tx).await?.max_points_per_semester);
    let semesters = semesters_in_order(tx).await?;
    let wanted = semester.map(str::trim);
    let mut items = Vec::new();
    for (i, sem) in semesters.iter().enumerate() {
        if let Some(w) = wanted {
            if sem.name != w && sem.id.to_string() != w {
                continue;
            }
        }
        let prev = i.checked_sub(1).map(|p| &semesters[p]);
        let mut groups: BTreeMap<(usize, Uuid), GroupPoints> = BTreeMap::new();
        let mut order: HashMap<Uuid, usize> = HashMap::new();
        let this = by_semester.get(&sem.id).into_iter().flatten();
        let before = prev
            .and_then(|p| by_semester.get(&p.id))
            .into_iter()
            .flatten();
        for (r, current) in this.map(|r| (r, true)).chain(before.map(|r| (r, false))) {
            let next = order.len();
            let k = *order.entry(r.group_id).or_insert(next);
            let e = groups
                .entry((k, r.group_id))
                .or_insert_with(|| GroupPoints {
                    group_id: r.group_id,
                    group_name: r.group_name.clone(),
                    points: 0,
                    semester_points: 0,
                    previous_semester_points: 0,
                    scoreboard_id: None,
                });
            let p = i64::from(r.points);
            e.points += p;
            if current {
                e.semester_points += p;
                e.scoreboard_id = Some(r.scoreboard_id);
            } else {
                e.previous_semester_points += p;
            }
        }
        // Someone who may see only some of the person's groups gets the figure over those
        // groups: one over all of them would tell a leader about points from groups
        // whose scores they may not see.
        let groups: Vec<GroupPoints> = groups
            .into_values()
            .filter(|g| all_groups || visible.contains(&g.group_id))
            .collect();
        if groups.is_empty() {
            continue;
        }
        let figure = points::semester_points(groups.iter().map(|g| g.points), cap);
        items.push(SemesterPoints {
            semester_id: sem.id,
            semester_name: sem.name.clone(),
            starts_on: sem.starts_on,
            previous_semester_name: prev.map(|p| p.name.clone()),
            figure,
            groups,
        });
    }
    items.reverse();
    Ok(UserPoints {
        realm_id: realm,
        user_id: user,
        max_points_per_semester: cap as i32,
        items,
    })
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserTotal {
    pub user_id: Uuid,
    /// The semester figure (see `SemesterPoints`).
    #[serde(flatten)]
    pub figure: SemesterFigure,
    /// Groups the points come from (this semester and the one before).
    pub groups: i64,
}

struct TotalRow {
    user_id: Uuid,
    sum_of_squares: i64,
    groups: i64,
}

/// Every user's semester figure (viewScores realm-wide), by user id.
pub async fn semester_totals(
    tx: &mut RealmTx,
    grants: &Grants,
    semester: Uuid,
    limit: i64,
    cursor: Option<Cursor>,
) -> Result<Page<UserTotal>> {
    policy::require(tx, grants, Permission::ViewScores, Target::Realm).await?;
    let realm = tx.realm().as_str().to_string();
    let exists: bool = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM semesters WHERE realm_id = $1 AND id = $2) AS "exists!""#,
        realm,
        semester
    )
    .fetch_one(tx.conn())
    .await?;
    if !exists {
        return Err(Error::not_found(format!(
            "semester {semester} in realm {realm}"
        )));
    }
    let cap = i64::from(settings(tx).await?.max_points_per_semester);
    let window = window(tx, semester).await?;
    let after = cursor.map(|c| c.id);
    let rows = totals_page(tx, &window, after, limit + 1).await?;
    let rows = rows
        .into_iter()
        .map(|r| UserTotal {
            user_id: r.user_id,
            figure: points::from_sum_of_squares(r.sum_of_squares, cap),
            groups: r.groups,
        })
        .collect();
    Ok(Page::from_rows(rows, limit, |t| (String::new(), t.user_id)))
}

/// The semesters whose points count for `semester`: itself and the one before.
pub(crate) async fn window(tx: &mut RealmTx, semester: Uuid) -> Result<Vec<Uuid>> {
    let mut w = vec![semester];
    w.extend(previous_semester(tx, semester).await?);
    Ok(w)
}

/// Σ g² per user over the window, by user id: a page of `limit` users after `after`.
///
/// One statement per page, and it reads only the page's rows: the page's users are
/// found in index order in each semester of the window (stopping at the limit), and
/// their rows are then read as the index range `(after, last user of the page]`. Joining the
/// page to the table instead let the planner hash-join it against a scan of the whole
/// window (every page read every row of both semesters: listing everyone was
/// quadratic). The first page starts after the nil id (no user has it), so
/// `user_id > $3` is always an index condition.
///
/// The page must come from the index in its order: right after a season closes, the
/// table has just been rewritten and its statistics (which only autovacuum can refresh:
/// the service role may not ANALYZE) still say it is empty, so the planner would take
/// a bitmap scan of every row after the cursor and sort them — every page costing the
/// whole rest of the semester again. Bitmap and sequential scans are therefore off for
/// this one statement (restored right after).
async fn totals_page(
    tx: &mut RealmTx,
    window: &[Uuid],
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<TotalRow>> {
    let realm = tx.realm().as_str().to_string();
    // One semester per branch, by equality: an index scan on (…, semester_id, user_id)
    // is then in user order too (with `= ANY` it is not, and would need a sort of every
    // row after the cursor). No previous semester: the nil id, which matches nothing.
    let this = window.first().copied().unwrap_or(Uuid::nil());
    let previous = window.get(1).copied().unwrap_or(Uuid::nil());
    let before = sqlx::query!(
        r#"SELECT current_setting('enable_bitmapscan') AS "bitmap!",
                  current_setting('enable_seqscan') AS "seq!""#
    )
    .fetch_one(tx.conn())
    .await?;
    sqlx::query!(
        r#"SELECT set_config('enable_bitmapscan', 'off', true) AS "b!",
                  set_config('enable_seqscan', 'off', true) AS "s!""#
    )
    .fetch_one(tx.conn())
    .await?;
    let rows = sqlx::query_as!(
        TotalRow,
        r#"WITH page AS (
             SELECT user_id FROM (
                 (SELECT DISTINCT user_id FROM point_history
                   WHERE realm_id = $1 AND semester_id = $2 AND user_id > $3
                   ORDER BY user_id LIMIT $4)
                 UNION
                 (SELECT DISTINCT user_id FROM point_history
                   WHERE realm_id = $1 AND semester_id = $5 AND user_id > $3
                   ORDER BY user_id LIMIT $4)) u
              ORDER BY user_id LIMIT $4)
         SELECT user_id AS "user_id!", sum(g * g)::bigint AS "sum_of_squares!",
                count(*) AS "groups!"
           FROM (SELECT h.user_id, h.group_id, sum(h.points)::bigint AS g
                   FROM point_history h
                  WHERE h.realm_id = $1 AND h.semester_id IN ($2, $5) AND h.user_id > $3
                    AND h.user_id <= (SELECT user_id FROM page ORDER BY user_id DESC LIMIT 1)
                  GROUP BY h.user_id, h.group_id) t
          GROUP BY user_id ORDER BY user_id"#,
        realm,
        this,
        after.unwrap_or(Uuid::nil()),
        limit,
        previous,
    )
    .fetch_all(tx.conn())
    .await?;
    sqlx::query!(
        r#"SELECT set_config('enable_bitmapscan', $1, true) AS "b!",
                  set_config('enable_seqscan', $2, true) AS "s!""#,
        before.bitmap,
        before.seq,
    )
    .fetch_one(tx.conn())
    .await?;
    Ok(rows)
}

/// Σ g² for every user over the window, by user id: one pass over the window's rows.
async fn totals_all(tx: &mut RealmTx, window: &[Uuid]) -> Result<Vec<TotalRow>> {
    let realm = tx.realm().as_str().to_string();
    Ok(sqlx::query_as!(
        TotalRow,
        r#"SELECT user_id AS "user_id!", sum(g * g)::bigint AS "sum_of_squares!",
                  count(*) AS "groups!"
             FROM (SELECT user_id, group_id, sum(points)::bigint AS g
                     FROM point_history
                    WHERE realm_id = $1 AND semester_id = ANY($2)
                    GROUP BY user_id, group_id) t
            GROUP BY user_id ORDER BY user_id"#,
        realm,
        window,
    )
    .fetch_all(tx.conn())
    .await?)
}

/// Every user's semester figure, for the export.
pub(crate) async fn all_totals(tx: &mut RealmTx, semester: Uuid) -> Result<Vec<UserTotal>> {
    let cap = i64::from(settings(tx).await?.max_points_per_semester);
    let window = window(tx, semester).await?;
    Ok(totals_all(tx, &window)
        .await?
        .into_iter()
        .map(|r| UserTotal {
            user_id: r.user_id,
            figure: points::from_sum_of_squares(r.sum_of_squares, cap),
            groups: r.groups,
        })
        .collect())
}
