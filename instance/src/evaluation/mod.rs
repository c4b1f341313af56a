//! Community evaluation (issue 5): guideline collections per group and semester,
//! versioned scoreboards with a discussion thread, point and entry award requests, and
//! the point history derived from accepted scoreboards.
//!
//! Workflow: people with `editScores` on a group fill its scoreboard and submit it;
//! people with `evaluateScores` accept or reject it (with a reason). A submitted
//! scoreboard is read-only; after a rejection, a new version (linked to the rejected
//! one) is created and submitted again. Every change to scores happens inside the
//! realm's evaluation period, and no member may be requested more than the realm's
//! maximum points per semester.

pub mod bench;
pub mod guideline;
pub mod history;
pub mod points;
pub mod request;
pub mod scoreboard;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::db::RealmTx;
use crate::error::{Error, Result};
use crate::policy::{self, Grants, Permission, Target};

/// Used while a realm has not stored its own maximum.
pub const DEFAULT_MAX_POINTS_PER_SEMESTER: i32 = 100;
pub const MAX_MAX_POINTS_PER_SEMESTER: i32 = 10_000;

/// The realm's evaluation settings.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    pub realm_id: String,
    /// Scores may be changed from this instant…
    pub period_starts_at: Option<DateTime<Utc>>,
    /// …until this one. Without a period, no scores can be changed.
    pub period_ends_at: Option<DateTime<Utc>>,
    /// The most points one member may be given in a semester.
    pub max_points_per_semester: i32,
    pub updated_by: Option<Uuid>,
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettingsInput {
    /// Give both ends of the period, or neither (no period: scores are frozen).
    pub period_starts_at: Option<DateTime<Utc>>,
    pub period_ends_at: Option<DateTime<Utc>>,
    /// 1–10000 (default 100).
    pub max_points_per_semester: Option<i32>,
}

const SETTINGS_COLS: &str =
    "realm_id, period_starts_at, period_ends_at, max_points_per_semester, updated_by, updated_at";

pub async fn settings(tx: &mut RealmTx) -> Result<Settings> {
    let realm = tx.realm().as_str().to_string();
    let row: Option<Settings> = sqlx::query_as(&format!(
        "SELECT {SETTINGS_COLS} FROM evaluation_settings WHERE realm_id = $1"
    ))
    .bind(&realm)
    .fetch_optional(tx.conn())
    .await?;
    Ok(row.unwrap_or(Settings {
        realm_id: realm,
        period_starts_at: None,
        period_ends_at: None,
        max_points_per_semester: DEFAULT_MAX_POINTS_PER_SEMESTER,
        updated_by: None,
        updated_at: None,
    }))
}

/// Sets the realm's evaluation period and maximum (manageRealm).
pub async fn put_settings(
    tx: &mut RealmTx,
    grants: &Grants,
    input: SettingsInput,
) -> Result<Settings> {
    policy::require(tx, grants, Permission::ManageRealm, Target::Realm).await?;
    match (input.period_starts_at, input.period_ends_at) {
        (Some(s), Some(e)) if e <= s => {
            return Err(Error::invalid(
                "the evaluation period must end after it starts",
            ))
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(Error::invalid(
                "give both periodStartsAt and periodEndsAt, or neither",
            ))
        }
        _ => {}
    }
    let max = input
        .max_points_per_semester
        .unwrap_or(DEFAULT_MAX_POINTS_PER_SEMESTER);
    if !(1..=MAX_MAX_POINTS_PER_SEMESTER).contains(&max) {
        return Err(Error::invalid(format!(
            "maxPointsPerSemester must be between 1 and {MAX_MAX_POINTS_PER_SEMESTER}, got {max}"
        )));
    }
    let realm = tx.realm().as_str().to_string();
    Ok(sqlx::query_as(&format!(
        "INSERT INTO evaluation_settings
             (realm_id, period_starts_at, period_ends_at, max_points_per_semester, updated_by)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (realm_id) DO UPDATE SET
             period_starts_at = EXCLUDED.period_starts_at,
             period_ends_at = EXCLUDED.period_ends_at,
             max_points_per_semester = EXCLUDED.max_points_per_semester,
             updated_by = EXCLUDED.updated_by,
             updated_at = now()
         RETURNING {SETTINGS_COLS}"
    ))
    .bind(&realm)
    .bind(input.period_starts_at)
    .bind(input.period_ends_at)
    .bind(max)
    .bind(grants.viewer)
    .fetch_one(tx.conn())
    .await?)
}

/// Refuses a change to scores outside the realm's evaluation period (by the database's
/// clock, the same one every transaction sees). Returns the settings for the caller's
/// limit checks.
pub async fn require_open_period(tx: &mut RealmTx) -> Result<Settings> {
    let s = settings(tx).await?;
    let realm = tx.realm().as_str().to_string();
    let (Some(start), Some(end)) = (s.period_starts_at, s.period_ends_at) else {
        return Err(Error::Conflict(format!(
            "realm {realm} has no evaluation period set, so scores cannot be changed; \
             a realm manager sets it with PUT /api/v1/realms/{realm}/evaluation-settings"
        )));
    };
    let now: DateTime<Utc> = sqlx::query_scalar("SELECT now()")
        .fetch_one(tx.conn())
        .await?;
    if now < start {
        return Err(Error::Conflict(format!(
            "the evaluation period of realm {realm} starts at {}; scores cannot be changed before then",
            start.to_rfc3339()
        )));
    }
    if now >= end {
        return Err(Error::Conflict(format!(
            "the evaluation period of realm {realm} ended at {}; scores can no longer be changed",
            end.to_rfc3339()
        )));
    }
    Ok(s)
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

/// A missing object named in a request body is the body's fault: 422, not 404.
pub(crate) fn as_reference<T>(r: Result<T>) -> Result<T> {
    r.map_err(|e| match e {
        Error::NotFound(m) => Error::Unprocessable(m),
        other => other,
    })
}

/// Messages for this module's constraints (see `error.rs`): `(message, is_conflict)`.
pub(crate) fn constraint_message(constraint: &str) -> Option<(&'static str, bool)> {
    Some(match constraint {
        "guideline_collections_one_per_group_semester" => (
            "this group already has a guideline collection for this semester",
            true,
        ),
        "guideline_collections_group_fkey" | "scoreboards_group_fkey" => {
            ("group not found in this realm", false)
        }
        "guideline_collections_semester_fkey" | "scoreboards_semester_fkey" => {
            ("semester not found in this realm", false)
        }
        "guidelines_title_key" => (
            "this collection already has a guideline with this title",
            true,
        ),
        "guidelines_collection_fkey" => ("guideline collection not found", false),
        "scoreboards_one_live" | "scoreboards_version_key" => (
            "this group already has a scoreboard for this semester; after a rejection, \
             create a new version of the rejected one",
            true,
        ),
        "scoreboards_one_successor" => ("this scoreboard already has a newer version", true),
        // Raised when a referenced row is deleted (the inserts are checked beforehand
        // with clearer messages).
        "point_requests_membership_fkey" | "entry_award_requests_membership_fkey" => (
            "this membership has point or entry award requests; set its status to FORMER \
             or ARCHIVED instead of deleting it",
            true,
        ),
        "point_requests_guideline_fkey" => {
            ("this guideline has point requests; remove them first", true)
        }
        _ => return None,
    })
}
