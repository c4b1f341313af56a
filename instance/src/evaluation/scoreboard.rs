//! Scoreboards: one live version per group and semester, with a state machine
//!
//! ```text
//! NOT_SUBMITTED --submit--> NOT_YET_EVALUATED --accept--> ACCEPTED
//!                                             --reject--> REJECTED --new version--> (v+1) NOT_SUBMITTED
//! ```
//!
//! Only NOT_SUBMITTED is editable. Every transition locks the row (`FOR UPDATE`), so
//! concurrent submits, evaluations and edits serialize on it.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::guideline::{self, Guideline};
use super::points::{self, MemberPoints};
use super::season::Act;
use super::{as_reference, mapped, may_view_scores, request, require_season, Settings};
use crate::db::RealmTx;
use crate::error::{Error, Result};
use crate::group;
use crate::page::{Cursor, Page};
use crate::policy::{self, Grants, Permission, Target};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    NotSubmitted,
    NotYetEvaluated,
    Accepted,
    Rejected,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::NotSubmitted => "NOT_SUBMITTED",
            Status::NotYetEvaluated => "NOT_YET_EVALUATED",
            Status::Accepted => "ACCEPTED",
            Status::Rejected => "REJECTED",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        [
            Status::NotSubmitted,
            Status::NotYetEvaluated,
            Status::Accepted,
            Status::Rejected,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// What can be done to a scoreboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Edit,
    Submit,
    Accept,
    Reject,
    NewVersion,
}

impl Action {
    fn verb(self) -> &'static str {
        match self {
            Action::Edit => "change",
            Action::Submit => "submit",
            Action::Accept => "accept",
            Action::Reject => "reject",
            Action::NewVersion => "create a new version of",
        }
    }
}

/// The state machine: the status after `action` from `from`, or why not.
pub fn transition(from: Status, action: Action) -> std::result::Result<Status, String> {
    use Action::*;
    use Status::*;
    match (from, action) {
        (NotSubmitted, Edit) => Ok(NotSubmitted),
        (NotSubmitted, Submit) => Ok(NotYetEvaluated),
        (NotYetEvaluated, Accept) => Ok(Accepted),
        (NotYetEvaluated, Reject) => Ok(Rejected),
        (Rejected, NewVersion) => Ok(NotSubmitted),
        (from, action) => {
            let why = match from {
                NotSubmitted => "it has not been submitted yet",
                NotYetEvaluated => "it is submitted and read-only while it awaits evaluation",
                Accepted => "it has been accepted and is final",
                Rejected => {
                    "it was rejected and is kept as history; create a new version to resubmit"
                }
            };
            Err(format!(
                "cannot {} a scoreboard that is {}: {why}",
                action.verb(),
                from.as_str()
            ))
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Scoreboard {
    pub id: Uuid,
    pub realm_id: String,
    pub group_id: Uuid,
    pub semester_id: Uuid,
    /// 1 for the first version; +1 for each resubmission after a rejection.
    pub version: i32,
    /// The rejected version this one replaces.
    pub previous_id: Option<Uuid>,
    /// NOT_SUBMITTED, NOT_YET_EVALUATED, ACCEPTED or REJECTED.
    pub status: String,
    pub rejection_reason: Option<String>,
    pub created_by: Uuid,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub submitted_by: Option<Uuid>,
    pub submitted_at: Option<chrono::DateTime<chrono::Utc>>,
    pub evaluated_by: Option<Uuid>,
    pub evaluated_at: Option<chrono::DateTime<chrono::Utc>>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl Scoreboard {
    pub fn status(&self) -> Status {
        Status::parse(&self.status).unwrap_or(Status::Accepted)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScoreboardDetail {
    #[serde(flatten)]
    pub scoreboard: Scoreboard,
    /// Whether the realm's season and semester let anyone change it now.
    pub read_only: bool,
    pub point_requests: Vec<request::PointRequest>,
    pub entry_award_requests: Vec<request::EntryAwardRequest>,
    /// The group's guidelines for the semester, each with its maxima.
    pub guidelines: Vec<Guideline>,
    /// The caps every member's points are computed with.
    pub limits: Limits,
    /// Each member with requests on this scoreboard and their points by the formula.
    pub members: Vec<MemberScore>,
}

/// The maxima a scoreboard is filled against.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    /// WORK points count up to this per member (30).
    pub work_per_member: i64,
    /// RESPONSIBILITY points count up to this per member (20).
    pub responsibility_per_member: i64,
    /// A member's points on one scoreboard (50).
    pub total_per_member: i64,
    /// The realm's cap on a person's semester points.
    pub max_points_per_semester: i32,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberScore {
    /// The person's membership the requests were made on (the latest, when a person who
    /// left and came back has requests on both).
    pub membership_id: Uuid,
    /// Every membership of the person in the group that has requests here: one person is
    /// one row, and the rules apply to all their requests together, as the point history
    /// counts them.
    pub membership_ids: Vec<Uuid>,
    pub user_id: Uuid,
    #[serde(flatten)]
    pub score: MemberPoints,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewScoreboard {
    pub group_id: Uuid,
    pub semester_id: Uuid,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Comment {
    pub id: Uuid,
    pub scoreboard_id: Uuid,
    pub author_id: Uuid,
    pub body: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

async fn fetch(tx: &mut RealmTx, id: Uuid, lock: bool) -> Result<Scoreboard> {
    let realm = tx.realm().as_str().to_string();
    let row = if lock {
        sqlx::query_as!(
            Scoreboard,
            "SELECT id, realm_id, group_id, semester_id, version, previous_id, status,
                   rejection_reason, created_by, created_at, submitted_by, submitted_at,
                   evaluated_by, evaluated_at, updated_at
               FROM scoreboards WHERE realm_id = $1 AND id = $2 FOR UPDATE",
            realm,
            id
        )
        .fetch_optional(tx.conn())
        .await?
    } else {
        sqlx::query_as!(
            Scoreboard,
            "SELECT id, realm_id, group_id, semester_id, version, previous_id, status,
                   rejection_reason, created_by, created_at, submitted_by, submitted_at,
                   evaluated_by, evaluated_at, updated_at
               FROM scoreboards WHERE realm_id = $1 AND id = $2",
            realm,
            id
        )
        .fetch_optional(tx.conn())
        .await?
    };
    row.ok_or_else(|| Error::not_found(format!("scoreboard {id} in realm {realm}")))
}

/// A scoreboard the viewer may see (404 otherwise).
pub async fn get_visible(tx: &mut RealmTx, grants: &Grants, id: Uuid) -> Result<Scoreboard> {
    let sb = fetch(tx, id, false).await?;
    if !may_view_scores(tx, grants, sb.group_id).await? {
        return Err(Error::not_found(format!(
            "scoreboard {id} in realm {}",
            tx.realm()
        )));
    }
    Ok(sb)
}

pub async fn detail(tx: &mut RealmTx, grants: &Grants, id: Uuid) -> Result<ScoreboardDetail> {
    let scoreboard = get_visible(tx, grants, id).await?;
    let point_requests = request::points_of(tx, id).await?;
    let entry_award_requests = request::entries_of(tx, id).await?;
    let guidelines =
        guideline::of_group_semester(tx, scoreboard.group_id, scoreboard.semester_id).await?;
    let settings = super::settings(tx).await?;
    let read_only = settings.semester_id != Some(scoreboard.semester_id)
        || settings.season == super::Season::Off
        || !matches!(scoreboard.status(), Status::NotSubmitted);
    let by_id: std::collections::HashMap<Uuid, &Guideline> =
        guidelines.iter().map(|g| (g.id, g)).collect();
    let mut per_member: std::collections::BTreeMap<Uuid, (Vec<Uuid>, Vec<points::Requested>)> =
        Default::default();
    for p in &point_requests {
        if let Some(g) = by_id.get(&p.guideline_id) {
            let (ids, requests) = per_member.entry(p.user_id).or_default();
            if !ids.contains(&p.membership_id) {
                ids.push(p.membership_id);
            }
            requests.push(points::Requested {
                category: g.category(),
                points: i64::from(p.points),
                max_per_member: i64::from(g.max_per_member),
            });
        }
    }
    let started = membership_starts(tx, &per_member).await?;
    let members = per_member
        .into_iter()
        .map(|(user_id, (mut ids, r))| {
            ids.sort_by_key(|id| (started.get(id).copied(), *id));
            MemberScore {
                membership_id: ids.last().copied().unwrap_or_default(),
                membership_ids: ids,
                user_id,
                score: points::member_points(r),
            }
        })
        .collect();
    Ok(ScoreboardDetail {
        scoreboard,
        read_only,
        point_requests,
        entry_award_requests,
        guidelines,
        limits: Limits {
            work_per_member: points::WORK_CAP,
            responsibility_per_member: points::RESPONSIBILITY_CAP,
            total_per_member: points::MEMBER_CAP,
            max_points_per_semester: settings.max_points_per_semester,
        },
        members,
    })
}

/// When each of these memberships started, to name a person's latest one.
async fn membership_starts(
    tx: &mut RealmTx,
    per_member: &std::collections::BTreeMap<Uuid, (Vec<Uuid>, Vec<points::Requested>)>,
) -> Result<std::collections::HashMap<Uuid, chrono::DateTime<chrono::Utc>>> {
    let ids: Vec<Uuid> = per_member
        .values()
        .filter(|(ids, _)| ids.len() > 1)
        .flat_map(|(ids, _)| ids.iter().copied())
        .collect();
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let realm = tx.realm().as_str().to_string();
    Ok(sqlx::query!(
        "SELECT id, start_at FROM memberships WHERE realm_id = $1 AND id = ANY($2)",
        realm,
        &ids
    )
    .fetch_all(tx.conn())
    .await?
    .into_iter()
    .map(|r| (r.id, r.start_at))
    .collect())
}

/// Locks a visible scoreboard for `action`: permission (403), state (409), season and
/// semester (409).
pub(crate) async fn lock_for(
    tx: &mut RealmTx,
    grants: &Grants,
    id: Uuid,
    action: Action,
) -> Result<(Scoreboard, Status, Settings)> {
    get_visible(tx, grants, id).await?;
    let sb = fetch(tx, id, true).await?;
    let needed = match action {
        Action::Accept | Action::Reject => Permission::EvaluateScores,
        Action::Edit | Action::Submit | Action::NewVersion => Permission::EditScores,
    };
    policy::require(tx, grants, needed, Target::Group(sb.group_id)).await?;
    let next = transition(sb.status(), action).map_err(Error::Conflict)?;
    let act = match action {
        Action::Edit => Act::edit(sb.version),
        Action::Submit => Act::submit(sb.version),
        Action::Accept | Action::Reject => Act::Evaluate,
        Action::NewVersion => Act::NewVersion,
    };
    let settings = require_season(tx, sb.semester_id, act).await?;
    Ok((sb, next, settings))
}

pub async fn create(tx: &mut RealmTx, grants: &Grants, new: NewScoreboard) -> Result<Scoreboard> {
    let g = as_reference(group::get(tx, new.group_id).await)?;
    policy::require(tx, grants, Permission::EditScores, Target::Group(g.id)).await?;
    let realm = tx.realm().as_str().to_string();
    super::require_semester(tx, new.semester_id).await?;
    require_season(tx, new.semester_id, Act::CreateScoreboard).await?;
    mapped(
        sqlx::query_as!(
            Scoreboard,
            "INSERT INTO scoreboards (realm_id, group_id, semester_id, created_by)
             VALUES ($1, $2, $3, $4)
             RETURNING id, realm_id, group_id, semester_id, version, previous_id, status,
                   rejection_reason, created_by, created_at, submitted_by, submitted_at,
                   evaluated_by, evaluated_at, updated_at",
            realm,
            g.id,
            new.semester_id,
            grants.viewer
        )
        .fetch_one(tx.conn())
        .await,
    )
}

pub async fn submit(tx: &mut RealmTx, grants: &Grants, id: Uuid) -> Result<Scoreboard> {
    let (_, next, _) = lock_for(tx, grants, id, Action::Submit).await?;
    set_status(tx, id, next, grants.viewer, None).await
}

pub async fn accept(tx: &mut RealmTx, grants: &Grants, id: Uuid) -> Result<Scoreboard> {
    // The point history follows when the season leaves JUDGING.
    let (_, next, _) = lock_for(tx, grants, id, Action::Accept).await?;
    set_status(tx, id, next, grants.viewer, None).await
}

pub async fn reject(
    tx: &mut RealmTx,
    grants: &Grants,
    id: Uuid,
    reason: &str,
) -> Result<Scoreboard> {
    let (_, next, _) = lock_for(tx, grants, id, Action::Reject).await?;
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 5000 {
        return Err(Error::invalid(
            "a rejection needs a reason of 1-5000 characters",
        ));
    }
    set_status(tx, id, next, grants.viewer, Some(reason)).await
}

async fn set_status(
    tx: &mut RealmTx,
    id: Uuid,
    to: Status,
    by: Uuid,
    reason: Option<&str>,
) -> Result<Scoreboard> {
    let realm = tx.realm().as_str().to_string();
    let submitting = to == Status::NotYetEvaluated;
    mapped(
        sqlx::query_as!(
            Scoreboard,
            "UPDATE scoreboards SET
             status = $3,
             submitted_by = CASE WHEN $4 THEN $5 ELSE submitted_by END,
             submitted_at = CASE WHEN $4 THEN now() ELSE submitted_at END,
             evaluated_by = CASE WHEN $4 THEN evaluated_by ELSE $5 END,
             evaluated_at = CASE WHEN $4 THEN evaluated_at ELSE now() END,
             rejection_reason = $6,
             updated_at = now()
          WHERE realm_id = $1 AND id = $2
          RETURNING id, realm_id, group_id, semester_id, version, previous_id, status,
                   rejection_reason, created_by, created_at, submitted_by, submitted_at,
                   evaluated_by, evaluated_at, updated_at",
            realm,
            id,
            to.as_str(),
            submitting,
            by,
            reason
        )
        .fetch_one(tx.conn())
        .await,
    )
}

/// After a rejection: a new NOT_SUBMITTED version linked to the rejected one, starting
/// from a copy of its requests.
pub async fn new_version(tx: &mut RealmTx, grants: &Grants, id: Uuid) -> Result<Scoreboard> {
    let (prev, _, _) = lock_for(tx, grants, id, Action::NewVersion).await?;
    let realm = tx.realm().as_str().to_string();
    let sb: Scoreboard = mapped(
        sqlx::query_as!(
            Scoreboard,
            "INSERT INTO scoreboards (realm_id, group_id, semester_id, version, previous_id,
                                      created_by)
             VALUES ($1, $2, $3, $4, $5, $6)
             RETURNING id, realm_id, group_id, semester_id, version, previous_id, status,
                   rejection_reason, created_by, created_at, submitted_by, submitted_at,
                   evaluated_by, evaluated_at, updated_at",
            realm,
            prev.group_id,
            prev.semester_id,
            prev.version + 1,
            prev.id,
            grants.viewer
        )
        .fetch_one(tx.conn())
        .await,
    )?;
    request::copy_requests(tx, prev.id, sb.id, grants.viewer).await?;
    Ok(sb)
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScoreboardQuery {
    pub group_id: Option<Uuid>,
    pub semester_id: Option<Uuid>,
    /// NOT_SUBMITTED, NOT_YET_EVALUATED, ACCEPTED or REJECTED.
    pub status: Option<Status>,
    pub limit: Option<u32>,
    pub cursor: Option<crate::page::CursorText>,
}

/// Scoreboards the viewer may see, oldest first.
pub async fn list(
    tx: &mut RealmTx,
    grants: &Grants,
    q: &ScoreboardQuery,
    limit: i64,
    cursor: Option<Cursor>,
) -> Result<Page<Scoreboard>> {
    let realm = tx.realm().as_str().to_string();
    let perms = [
        Permission::ViewScores,
        Permission::EditScores,
        Permission::EvaluateScores,
    ];
    let see_all = perms.iter().any(|p| grants.realm_wide(*p));
    let granted: Vec<Uuid> = perms.iter().flat_map(|p| grants.groups_with(*p)).collect();
    let (after_key, after_id) = match cursor {
        Some(c) => (Some(c.key), Some(c.id)),
        None => (None, None),
    };
    let rows: Vec<Scoreboard> = sqlx::query_as!(
        Scoreboard,
        "SELECT id, realm_id, group_id, semester_id, version, previous_id, status,
                   rejection_reason, created_by, created_at, submitted_by, submitted_at,
                   evaluated_by, evaluated_at, updated_at
           FROM scoreboards s
          WHERE s.realm_id = $1
            AND ($2::uuid IS NULL OR s.group_id = $2)
            AND ($3::uuid IS NULL OR s.semester_id = $3)
            AND ($4::text IS NULL OR s.status = $4)
            AND ($5::text IS NULL OR (s.created_at, s.id) > ($5::timestamptz, $6::uuid))
            AND ($7 OR s.group_id = ANY($9)
                 OR EXISTS (SELECT 1 FROM groups g
                             WHERE g.realm_id = s.realm_id AND g.id = s.group_id
                               AND g.owner_id = $8)
                 OR EXISTS (SELECT 1 FROM memberships m
                             WHERE m.realm_id = s.realm_id AND m.group_id = s.group_id
                               AND m.user_id = $8 AND m.status IN ('NEWBIE', 'ACTIVE')
                               AND 'leader' = ANY(m.posts)))
          ORDER BY s.created_at, s.id
          LIMIT $10",
        realm,
        q.group_id,
        q.semester_id,
        q.status.map(|s| s.as_str()),
        after_key,
        after_id,
        see_all,
        grants.viewer,
        &granted,
        limit + 1
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(Page::from_rows(rows, limit, |s| {
        (s.created_at.to_rfc3339(), s.id)
    }))
}

// --- discussion -------------------------------------------------------------------

pub async fn comments(tx: &mut RealmTx, grants: &Grants, id: Uuid) -> Result<Vec<Comment>> {
    get_visible(tx, grants, id).await?;
    let realm = tx.realm().as_str().to_string();
    Ok(sqlx::query_as!(
        Comment,
        "SELECT id, scoreboard_id, author_id, body, created_at FROM scoreboard_comments
          WHERE realm_id = $1 AND scoreboard_id = $2 ORDER BY created_at, id",
        realm,
        id
    )
    .fetch_all(tx.conn())
    .await?)
}

/// Those who fill or evaluate a scoreboard discuss it, in any status.
pub async fn add_comment(
    tx: &mut RealmTx,
    grants: &Grants,
    id: Uuid,
    body: &str,
) -> Result<Comment> {
    let sb = get_visible(tx, grants, id).await?;
    let target = Target::Group(sb.group_id);
    if !policy::can(tx, grants, Permission::EditScores, target).await?
        && !policy::can(tx, grants, Permission::EvaluateScores, target).await?
    {
        return Err(Error::Forbidden(format!(
            "you need editScores or evaluateScores on group {} to discuss its scoreboard",
            sb.group_id
        )));
    }
    let body = body.trim();
    if body.is_empty() || body.chars().count() > 5000 {
        return Err(Error::invalid("a comment must be 1-5000 characters"));
    }
    let realm = tx.realm().as_str().to_string();
    mapped(
        sqlx::query_as!(
            Comment,
            "INSERT INTO scoreboard_comments (realm_id, scoreboard_id, author_id, body)
             VALUES ($1, $2, $3, $4)
             RETURNING id, scoreboard_id, author_id, body, created_at",
            realm,
            id,
            grants.viewer,
            body
        )
        .fetch_one(tx.conn())
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_five_legal_transitions_exist() {
        use Action::*;
        use Status::*;
        let statuses = [NotSubmitted, NotYetEvaluated, Accepted, Rejected];
        let actions = [Edit, Submit, Accept, Reject, NewVersion];
        let legal = [
            (NotSubmitted, Edit, NotSubmitted),
            (NotSubmitted, Submit, NotYetEvaluated),
            (NotYetEvaluated, Accept, Accepted),
            (NotYetEvaluated, Reject, Rejected),
            (Rejected, NewVersion, NotSubmitted),
        ];
        for s in statuses {
            for a in actions {
                let expected = legal
                    .iter()
                    .find(|(f, x, _)| *f == s && *x == a)
                    .map(|l| l.2);
                match (transition(s, a), expected) {
                    (Ok(to), Some(e)) => assert_eq!(to, e),
                    (Err(msg), None) => assert!(msg.contains(s.as_str()), "{msg}"),
                    (got, e) => panic!("{s:?} {a:?}: got {got:?}, expected {e:?}"),
                }
            }
        }
    }
}
