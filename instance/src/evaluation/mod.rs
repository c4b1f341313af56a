//! Community evaluation: guideline collections per group and semester,
//! versioned scoreboards with a discussion thread, point and entry award requests, and
//! the point history derived from accepted scoreboards.
//!
//! Workflow: people with `editScores` on a group fill its scoreboard and submit it;
//! people with `evaluateScores` accept or reject it (with a reason). A submitted
//! scoreboard is read-only; after a rejection, a new version (linked to the rejected
//! one) is created and submitted again. Every change to scores happens in the season
//! that allows it (see [`season`]), on the semester the realm is evaluating; points
//! follow the real PéK's formula (see [`points`]).

pub mod export;
pub mod guideline;
pub mod history;
pub mod points;
pub mod request;
pub mod scoreboard;
pub mod season;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::db::RealmTx;
use crate::error::{Error, Result, ResultExt};
use crate::policy::{self, Grants, Permission, Target};

/// Used while a realm has not stored its own maximum.
pub const DEFAULT_MAX_POINTS_PER_SEMESTER: i32 = 100;
pub const MAX_MAX_POINTS_PER_SEMESTER: i32 = 10_000;

/// Membership statuses that count for points: the ones the person consented to.
/// Anything else (an application or invitation still pending) never counts, so every
/// query that turns memberships into points filters with [`COUNTED_STATUSES_SQL`]
/// (spelled out in each query, as compile-checked queries are literals; a test below
/// finds it in every one of them).
pub const COUNTED_STATUSES: [&str; 4] = ["NEWBIE", "ACTIVE", "FORMER", "ARCHIVED"];
/// [`COUNTED_STATUSES`] as an SQL list, for `m.status IN ('NEWBIE', …)`; the test below
/// checks every points query spells exactly this.
#[cfg(test)]
pub const COUNTED_STATUSES_SQL: &str = "('NEWBIE', 'ACTIVE', 'FORMER', 'ARCHIVED')";

pub use season::Season;

/// The realm's evaluation settings: its season, the semester it evaluates, and the cap
/// on a person's semester points.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    pub realm_id: String,
    /// OFF (nothing editable), SUBMISSION (groups fill and submit scoreboards) or
    /// JUDGING (evaluators accept or reject; rejected ones may be resubmitted).
    #[sqlx(try_from = "String")]
    pub season: Season,
    /// The semester being (or last) evaluated; required unless the season is OFF.
    pub semester_id: Option<Uuid>,
    pub season_changed_at: Option<DateTime<Utc>>,
    /// When leaving JUDGING last computed the point history of `semesterId`.
    pub history_computed_at: Option<DateTime<Utc>>,
    /// The cap on a person's semester points (`min(sqrt(Σ g²), cap)`).
    pub max_points_per_semester: i32,
    pub updated_by: Option<Uuid>,
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettingsInput {
    /// 1–10000 (default 100). The season is changed with `PUT …/evaluation-season`.
    pub max_points_per_semester: Option<i32>,
}

pub async fn settings(tx: &mut RealmTx) -> Result<Settings> {
    let realm = tx.realm().as_str().to_string();
    let row: Option<Settings> = sqlx::query_as!(
        Settings,
        r#"SELECT realm_id, season AS "season: Season", semester_id, season_changed_at,
                   history_computed_at, max_points_per_semester, updated_by, updated_at
             FROM evaluation_settings WHERE realm_id = $1"#,
        realm
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(row.unwrap_or(Settings {
        realm_id: realm,
        season: Season::Off,
        semester_id: None,
        season_changed_at: None,
        history_computed_at: None,
        max_points_per_semester: DEFAULT_MAX_POINTS_PER_SEMESTER,
        updated_by: None,
        updated_at: None,
    }))
}

/// The realm's evaluation settings as a caller reads them (anyone in the realm).
pub async fn view_settings(tx: &mut RealmTx, grants: &Grants) -> Result<Settings> {
    policy::require_in_realm(tx, grants).await?;
    settings(tx).await
}

/// The caller's judging queue in one realm (pek-next's "elbírálandó pontozások").
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JudgingQueue {
    /// The realm is in the judging season and the caller judges there
    /// (evaluateScores in the realm): the queue is theirs to show, even when empty.
    pub judging: bool,
    /// The submitted scoreboards the caller may accept or reject now, oldest first.
    pub items: Vec<ToJudge>,
}

/// A submitted scoreboard waiting for the caller's judgement.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToJudge {
    #[serde(flatten)]
    pub scoreboard: scoreboard::Scoreboard,
    /// The group's name (empty when the caller may not see the group).
    pub group_name: String,
}

/// How many submitted scoreboards one realm's queue holds at most.
const JUDGING_QUEUE: i64 = 100;

/// The caller's judging queue: outside the judging season nothing (accepting would be
/// refused anyway); in it, whether the caller judges in the realm and the submitted
/// scoreboards they may evaluate, with their groups' names.
pub async fn judging_queue(tx: &mut RealmTx, grants: &Grants) -> Result<JudgingQueue> {
    policy::require_in_realm(tx, grants).await?;
    let mut queue = JudgingQueue {
        judging: false,
        items: Vec::new(),
    };
    if settings(tx).await?.season != Season::Judging {
        return Ok(queue);
    }
    queue.judging = policy::can(tx, grants, Permission::EvaluateScores, Target::Realm).await?;
    let q = scoreboard::ScoreboardQuery {
        group_id: None,
        semester_id: None,
        status: Some(scoreboard::Status::NotYetEvaluated),
        limit: None,
        cursor: None,
    };
    let submitted = scoreboard::list(tx, grants, &q, JUDGING_QUEUE, None).await?;
    for sb in submitted.items {
        let target = Target::Group(sb.group_id);
        if !policy::can(tx, grants, Permission::EvaluateScores, target).await? {
            continue;
        }
        let group_name = match crate::group::get_visible(tx, grants, sb.group_id).await {
            Ok(g) => g.name,
            Err(Error::NotFound(_)) => String::new(),
            Err(e) => return Err(e),
        };
        queue.items.push(ToJudge {
            scoreboard: sb,
            group_name,
        });
    }
    Ok(queue)
}

/// The cap of federated figures (a person's points across the realms): the hub realm's
/// maximum points per semester.
pub async fn federation_cap(db: &crate::db::Db) -> Result<i32> {
    let mut tx = db.realm(&crate::realm::RealmId::hub()).await?;
    let cap = settings(&mut tx).await?.max_points_per_semester;
    tx.commit().await?;
    Ok(cap)
}

/// Sets the realm's maximum points per semester (manageRealm).
pub async fn put_settings(
    tx: &mut RealmTx,
    grants: &Grants,
    input: SettingsInput,
) -> Result<Settings> {
    policy::require(tx, grants, Permission::ManageRealm, Target::Realm).await?;
    let max = input
        .max_points_per_semester
        .unwrap_or(DEFAULT_MAX_POINTS_PER_SEMESTER);
    if !(1..=MAX_MAX_POINTS_PER_SEMESTER).contains(&max) {
        return Err(Error::invalid(format!(
            "maxPointsPerSemester must be between 1 and {MAX_MAX_POINTS_PER_SEMESTER}, got {max}"
        )));
    }
    let realm = tx.realm().as_str().to_string();
    Ok(sqlx::query_as!(
        Settings,
        r#"INSERT INTO evaluation_settings (realm_id, max_points_per_semester, updated_by)
         VALUES ($1, $2, $3)
         ON CONFLICT (realm_id) DO UPDATE SET
             max_points_per_semester = EXCLUDED.max_points_per_semester,
             updated_by = EXCLUDED.updated_by,
             updated_at = now()
         RETURNING realm_id, season AS "season: Season", semester_id, season_changed_at,
                   history_computed_at, max_points_per_semester, updated_by, updated_at"#,
        realm,
        max,
        grants.viewer
    )
    .fetch_one(tx.conn())
    .await?)
}

/// Refuses `action` on the scores of `semester` unless the realm's season allows it and
/// the realm is evaluating that semester (earlier semesters are read-only). Returns the
/// settings for the caller's limit checks.
pub async fn require_season(
    tx: &mut RealmTx,
    semester: Uuid,
    action: season::Act,
) -> Result<Settings> {
    let s = settings(tx).await?;
    let realm = tx.realm().as_str().to_string();
    season::allows(s.season, action).map_err(|why| {
        Error::conflict_because(
            "season_closed",
            format!(
                "realm {realm} is in its {} season: {why}",
                s.season.as_str()
            ),
        )
    })?;
    if s.semester_id != Some(semester) {
        let evaluating = s
            .semester_id
            .map(|id| id.to_string())
            .unwrap_or_else(|| "none".into());
        return Err(Error::conflict_because(
            "season_closed",
            format!(
                "the scores of semester {semester} are read-only: realm {realm} is evaluating \
                 semester {evaluating}"
            ),
        ));
    }
    Ok(s)
}

/// A semester named in a request body must exist (422 otherwise).
pub async fn require_semester(tx: &mut RealmTx, semester: Uuid) -> Result<()> {
    let realm = tx.realm().as_str().to_string();
    let exists: bool = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM semesters WHERE realm_id = $1 AND id = $2) AS "exists!""#,
        realm,
        semester
    )
    .fetch_one(tx.conn())
    .await?;
    if exists {
        Ok(())
    } else {
        Err(Error::Unprocessable(format!(
            "semester not found in realm {realm}: {semester}"
        )))
    }
}

/// The semester before `semester` in this realm (by start date), if any.
pub async fn previous_semester(tx: &mut RealmTx, semester: Uuid) -> Result<Option<Uuid>> {
    let realm = tx.realm().as_str().to_string();
    Ok(sqlx::query_scalar!(
        "SELECT p.id FROM semesters s
           JOIN semesters p ON p.realm_id = s.realm_id AND (p.starts_on, p.name) < (s.starts_on, s.name)
          WHERE s.realm_id = $1 AND s.id = $2
          ORDER BY p.starts_on DESC, p.name DESC LIMIT 1",
        realm,
        semester
    )
    .fetch_optional(tx.conn())
    .await?)
}

/// May see a group's guidelines and scoreboards: viewScores, editScores or
/// evaluateScores on it.
pub async fn may_view_scores(tx: &mut RealmTx, grants: &Grants, group: Uuid) -> Result<bool> {
    for p in [
        Permission::ViewScores,
        Permission::EditScores,
        Permission::EvaluateScores,
    ] {
        if policy::can(tx, grants, p, Target::Group(group)).await? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A free-text field of a request: trimmed, `min..=max` characters, and no control
/// characters other than line breaks and tabs (NUL included), so what is stored is what
/// people can read.
pub(crate) fn text_field(what: &str, s: &str, min: usize, max: usize) -> Result<String> {
    let t = s.trim();
    let n = t.chars().count();
    if n < min || n > max {
        return Err(Error::invalid(format!(
            "{what} must be {min}-{max} characters"
        )));
    }
    if t.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(Error::invalid(format!(
            "{what} must not contain control characters"
        )));
    }
    Ok(t.to_string())
}

/// A missing object named in a request body is the body's fault: 422, not 404.
pub(crate) fn as_reference<T>(r: Result<T>) -> Result<T> {
    r.map_err(|e| match e {
        Error::NotFound(m) => Error::Unprocessable(m),
        other => other,
    })
}

/// The evaluation tables' constraint violations as the client's mistakes, applied to
/// every write of this module (`mapped(query.await)?`); anything else passes through.
pub(crate) fn mapped<T>(r: std::result::Result<T, sqlx::Error>) -> Result<T> {
    let conflict =
        |m: &'static str| move |_: &dyn sqlx::error::DatabaseError| Error::Conflict(m.into());
    let invalid = |m: &'static str| move |_: &dyn sqlx::error::DatabaseError| Error::invalid(m);
    const SCOREBOARD_EXISTS: &str = "this group already has a scoreboard for this semester; \
                                     after a rejection, create a new version of the rejected one";
    // Raised when a referenced row is deleted (the inserts are checked beforehand with
    // clearer messages).
    const MEMBERSHIP_HAS_REQUESTS: &str = "this membership has point or entry award requests; \
                                           set its status to FORMER or ARCHIVED instead of \
                                           deleting it";
    r.on_constraint(
        "guideline_collections_one_per_group_semester",
        conflict("this group already has a guideline collection for this semester"),
    )
    .on_constraint(
        "guideline_collections_group_fkey",
        invalid("group not found in this realm"),
    )
    .on_constraint(
        "scoreboards_group_fkey",
        invalid("group not found in this realm"),
    )
    .on_constraint(
        "guideline_collections_semester_fkey",
        invalid("semester not found in this realm"),
    )
    .on_constraint(
        "scoreboards_semester_fkey",
        invalid("semester not found in this realm"),
    )
    .on_constraint(
        "guidelines_title_key",
        conflict("this collection already has a guideline with this title"),
    )
    .on_constraint(
        "guidelines_collection_fkey",
        invalid("guideline collection not found"),
    )
    .on_constraint("scoreboards_one_live", conflict(SCOREBOARD_EXISTS))
    .on_constraint("scoreboards_version_key", conflict(SCOREBOARD_EXISTS))
    .on_constraint(
        "scoreboards_one_successor",
        conflict("this scoreboard already has a newer version"),
    )
    .on_constraint(
        "point_requests_membership_fkey",
        conflict(MEMBERSHIP_HAS_REQUESTS),
    )
    .on_constraint(
        "entry_award_requests_membership_fkey",
        conflict(MEMBERSHIP_HAS_REQUESTS),
    )
    .on_constraint(
        "point_requests_guideline_fkey",
        conflict("this guideline has point requests; remove them first"),
    )
}

#[cfg(test)]
mod tests {
    /// Every query that turns memberships into points spells out the counted statuses.
    #[test]
    fn point_queries_filter_counted_statuses() {
        let filter = format!("m.status IN {}", super::COUNTED_STATUSES_SQL);
        for (file, src, queries) in [
            ("history.rs", include_str!("history.rs"), 1),
            ("export.rs", include_str!("export.rs"), 1),
            (
                "service_directory.rs",
                include_str!("../service_directory.rs"),
                1,
            ),
        ] {
            assert_eq!(src.matches(&filter).count(), queries, "{file}");
        }
        assert_eq!(
            super::COUNTED_STATUSES_SQL,
            format!("('{}')", super::COUNTED_STATUSES.join("', '"))
        );
    }
}
