//! Seasons: a realm's evaluation is OFF, in SUBMISSION or in JUDGING, always of one
//! semester, and changed by `manageRealm`.
//!
//! | action                                   | OFF | SUBMISSION | JUDGING |
//! |------------------------------------------|-----|------------|---------|
//! | edit guidelines (collections, copy)      |  –  |     ✓      |    –    |
//! | start a scoreboard                       |  –  |     ✓      |    –    |
//! | fill / submit a first version            |  –  |     ✓      |    –    |
//! | new version of a rejected scoreboard     |  –  |     ✓      |    ✓    |
//! | fill / submit a later version            |  –  |     ✓      |    ✓    |
//! | accept / reject a scoreboard             |  –  |     –      |    ✓    |
//! | accept / reject an entry award request   |  –  |     –      |    ✓    |
//!
//! Discussion (scoreboard and cell comments) is not a change of scores and is open in
//! every season. Leaving JUDGING for OFF computes the semester's point history; a
//! change that would strand work (drafts, submissions awaiting judgement) is refused
//! unless the caller passes `force`.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{history, settings, Settings};
use crate::db::RealmTx;
use crate::error::{Error, Result};
use crate::policy::{self, Grants, Permission, Target};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Season {
    Off,
    Submission,
    Judging,
}

impl Season {
    pub const ALL: [Season; 3] = [Season::Off, Season::Submission, Season::Judging];

    pub fn as_str(self) -> &'static str {
        match self {
            Season::Off => "OFF",
            Season::Submission => "SUBMISSION",
            Season::Judging => "JUDGING",
        }
    }
}

impl TryFrom<String> for Season {
    type Error = String;
    fn try_from(s: String) -> std::result::Result<Self, String> {
        Season::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| format!("unknown season {s:?}"))
    }
}

/// Read from the `season` text column (`season AS "season: Season"` in a checked query).
impl sqlx::Type<sqlx::Postgres> for Season {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <String as sqlx::Type<sqlx::Postgres>>::type_info()
    }

    fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
        <String as sqlx::Type<sqlx::Postgres>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, sqlx::Postgres> for Season {
    fn decode(
        value: sqlx::postgres::PgValueRef<'r>,
    ) -> std::result::Result<Self, sqlx::error::BoxDynError> {
        let s = <String as sqlx::Decode<sqlx::Postgres>>::decode(value)?;
        Ok(Season::try_from(s)?)
    }
}

/// What a season may allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    EditGuidelines,
    CreateScoreboard,
    /// Change the requests of a first version.
    Fill,
    /// Submit a first version.
    Submit,
    /// Start a new version of a rejected scoreboard.
    NewVersion,
    /// Change the requests of a later version (a resubmission in progress).
    FillResubmission,
    Resubmit,
    Evaluate,
    ReviewEntryAward,
}

impl Act {
    /// Every act, for the test that checks each season against its table.
    #[cfg(test)]
    const ALL: [Act; 9] = [
        Act::EditGuidelines,
        Act::CreateScoreboard,
        Act::Fill,
        Act::Submit,
        Act::NewVersion,
        Act::FillResubmission,
        Act::Resubmit,
        Act::Evaluate,
        Act::ReviewEntryAward,
    ];

    fn what(self) -> &'static str {
        match self {
            Act::EditGuidelines => "guidelines can be changed",
            Act::CreateScoreboard => "scoreboards can be started",
            Act::Fill => "scoreboards can be filled",
            Act::Submit => "scoreboards can be submitted",
            Act::NewVersion => "rejected scoreboards can get a new version",
            Act::FillResubmission => "new versions of rejected scoreboards can be filled",
            Act::Resubmit => "new versions of rejected scoreboards can be submitted",
            Act::Evaluate => "scoreboards can be accepted or rejected",
            Act::ReviewEntryAward => "entry award requests can be accepted or rejected",
        }
    }

    /// The edit / submit of a scoreboard, which differs for resubmissions.
    pub fn edit(version: i32) -> Act {
        if version > 1 {
            Act::FillResubmission
        } else {
            Act::Fill
        }
    }

    pub fn submit(version: i32) -> Act {
        if version > 1 {
            Act::Resubmit
        } else {
            Act::Submit
        }
    }
}

/// The season matrix (see the module documentation).
fn permitted(season: Season, act: Act) -> bool {
    use Act::*;
    match season {
        Season::Off => false,
        Season::Submission => matches!(
            act,
            EditGuidelines
                | CreateScoreboard
                | Fill
                | Submit
                | NewVersion
                | FillResubmission
                | Resubmit
        ),
        Season::Judging => matches!(
            act,
            NewVersion | FillResubmission | Resubmit | Evaluate | ReviewEntryAward
        ),
    }
}

/// Ok if `season` allows `act`, or why not (naming the seasons that do).
pub fn allows(season: Season, act: Act) -> std::result::Result<(), String> {
    if permitted(season, act) {
        return Ok(());
    }
    let when: Vec<&str> = Season::ALL
        .into_iter()
        .filter(|s| permitted(*s, act))
        .map(Season::as_str)
        .collect();
    Err(format!(
        "{} only in the {} season",
        act.what(),
        when.join(" or ")
    ))
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeasonInput {
    pub season: Season,
    /// The semester to evaluate: needed to leave OFF the first time; may be changed
    /// only while the season is OFF (defaults to the one the realm last evaluated).
    pub semester_id: Option<Uuid>,
    /// Change even though scoreboards would be stranded (drafts that can no longer be
    /// submitted, submissions that were never judged).
    pub force: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeasonChange {
    #[serde(flatten)]
    pub settings: Settings,
    /// Leaving JUDGING for OFF: the point history rows (member, group) computed for the
    /// semester.
    pub history_rows: Option<u64>,
}

#[derive(sqlx::FromRow)]
struct Stranded {
    group_name: String,
    version: i32,
    status: String,
}

/// Changes the realm's season (manageRealm). See the module documentation.
pub async fn change(tx: &mut RealmTx, grants: &Grants, input: SeasonInput) -> Result<SeasonChange> {
    policy::require(tx, grants, Permission::ManageRealm, Target::Realm).await?;
    let realm = tx.realm().as_str().to_string();
    // One season change at a time: lock the realm's settings row (created if absent).
    sqlx::query!(
        "INSERT INTO evaluation_settings (realm_id, updated_by) VALUES ($1, $2)
         ON CONFLICT (realm_id) DO NOTHING",
        realm,
        grants.viewer
    )
    .execute(tx.conn())
    .await?;
    sqlx::query!(
        "SELECT 1 AS locked FROM evaluation_settings WHERE realm_id = $1 FOR UPDATE",
        realm
    )
    .fetch_optional(tx.conn())
    .await?;
    let cur = settings(tx).await?;
    let to = input.season;
    if let Some(sem) = input.semester_id {
        let exists: bool = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM semesters WHERE realm_id = $1 AND id = $2) AS "exists!""#,
            realm,
            sem
        )
        .fetch_one(tx.conn())
        .await?;
        if !exists {
            return Err(Error::Unprocessable(format!(
                "semester {sem} not found in realm {realm}"
            )));
        }
        if cur.season != Season::Off && cur.semester_id != Some(sem) {
            return Err(Error::Conflict(format!(
                "realm {realm} is in its {} season of semester {}; set the season to OFF \
                 before evaluating another semester",
                cur.season.as_str(),
                cur.semester_id.map(|s| s.to_string()).unwrap_or_default()
            )));
        }
    }
    let semester = input.semester_id.or(cur.semester_id);
    let Some(semester) = semester else {
        if to == Season::Off {
            return Ok(SeasonChange {
                settings: cur,
                history_rows: None,
            });
        }
        return Err(Error::invalid(format!(
            "give semesterId: realm {realm} has not evaluated any semester yet"
        )));
    };
    if to == cur.season && Some(semester) == cur.semester_id {
        return Ok(SeasonChange {
            settings: cur,
            history_rows: None,
        });
    }
    if !input.force.unwrap_or(false) && cur.season != to {
        refuse_if_stranded(tx, cur.season, to, semester).await?;
    }
    let updated: Settings = sqlx::query_as!(
        Settings,
        r#"UPDATE evaluation_settings SET season = $2, semester_id = $3,
             season_changed_at = now(), updated_by = $4, updated_at = now()
          WHERE realm_id = $1
          RETURNING realm_id, season AS "season: Season", semester_id, season_changed_at,
                   history_computed_at, max_points_per_semester, updated_by, updated_at"#,
        realm,
        to.as_str(),
        semester,
        grants.viewer
    )
    .fetch_one(tx.conn())
    .await?;
    if cur.season == Season::Judging && to == Season::Off {
        let rows = history::compute_semester(tx, semester).await?;
        let settings: Settings = sqlx::query_as!(
            Settings,
            r#"UPDATE evaluation_settings SET history_computed_at = now()
              WHERE realm_id = $1
              RETURNING realm_id, season AS "season: Season", semester_id, season_changed_at,
                   history_computed_at, max_points_per_semester, updated_by, updated_at"#,
            realm
        )
        .fetch_one(tx.conn())
        .await?;
        return Ok(SeasonChange {
            settings,
            history_rows: Some(rows),
        });
    }
    Ok(SeasonChange {
        settings: updated,
        history_rows: None,
    })
}

/// Work the change from `from` to `to` would strand: drafts with requests that can no
/// longer be submitted, and (going OFF) submissions nobody judged, entry award requests
/// nobody reviewed, and resubmissions in progress.
async fn refuse_if_stranded(
    tx: &mut RealmTx,
    from: Season,
    to: Season,
    semester: Uuid,
) -> Result<()> {
    let (drafts_v1, drafts_later, unjudged) = match (from, to) {
        (Season::Submission, Season::Judging) => (true, false, false),
        (Season::Submission | Season::Judging, Season::Off) => (true, true, true),
        _ => return Ok(()),
    };
    let realm = tx.realm().as_str().to_string();
    let stranded: Vec<Stranded> = sqlx::query_as!(
        Stranded,
        "SELECT g.name AS group_name, s.version, s.status
           FROM scoreboards s
           JOIN groups g ON g.realm_id = s.realm_id AND g.id = s.group_id
          WHERE s.realm_id = $1 AND s.semester_id = $2
            AND (   (s.status = 'NOT_SUBMITTED' AND s.version = 1 AND $3
                     AND (EXISTS (SELECT 1 FROM point_requests p
                                   WHERE p.realm_id = s.realm_id AND p.scoreboard_id = s.id)
                          OR EXISTS (SELECT 1 FROM entry_award_requests e
                                      WHERE e.realm_id = s.realm_id AND e.scoreboard_id = s.id)))
                 OR (s.status = 'NOT_SUBMITTED' AND s.version > 1 AND $4)
                 OR (s.status = 'NOT_YET_EVALUATED' AND $5)
                 OR ($5 AND s.status IN ('NOT_YET_EVALUATED', 'ACCEPTED')
                     AND EXISTS (SELECT 1 FROM entry_award_requests e
                                  WHERE e.realm_id = s.realm_id AND e.scoreboard_id = s.id
                                    AND e.status = 'PENDING')))
          ORDER BY g.name_folded, g.id, s.version",
        realm,
        semester,
        drafts_v1,
        drafts_later,
        unjudged
    )
    .fetch_all(tx.conn())
    .await?;
    if stranded.is_empty() {
        return Ok(());
    }
    let shown: Vec<String> = stranded
        .iter()
        .take(5)
        .map(|s| {
            let what = match s.status.as_str() {
                "NOT_SUBMITTED" if s.version > 1 => "a resubmission not yet submitted",
                "NOT_SUBMITTED" => "a draft not yet submitted",
                "NOT_YET_EVALUATED" => "a submission not yet judged",
                _ => "entry award requests not yet reviewed",
            };
            format!("{:?} ({what})", s.group_name)
        })
        .collect();
    let more = stranded.len().saturating_sub(shown.len());
    Err(Error::Conflict(format!(
        "changing the season from {} to {} would lose work on {} scoreboard(s): {}{}; \
         finish them first, or pass \"force\": true to change anyway",
        from.as_str(),
        to.as_str(),
        stranded.len(),
        shown.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_season_and_action() {
        use Act::*;
        let allowed: &[(Season, &[Act])] = &[
            (Season::Off, &[]),
            (
                Season::Submission,
                &[
                    EditGuidelines,
                    CreateScoreboard,
                    Fill,
                    Submit,
                    NewVersion,
                    FillResubmission,
                    Resubmit,
                ],
            ),
            (
                Season::Judging,
                &[
                    NewVersion,
                    FillResubmission,
                    Resubmit,
                    Evaluate,
                    ReviewEntryAward,
                ],
            ),
        ];
        for (season, acts) in allowed {
            for act in Act::ALL {
                match allows(*season, act) {
                    Ok(()) => assert!(acts.contains(&act), "{season:?} must refuse {act:?}"),
                    Err(why) => {
                        assert!(!acts.contains(&act), "{season:?} must allow {act:?}: {why}");
                        assert!(why.contains("only in the"), "{why}");
                    }
                }
            }
        }
        assert_eq!(
            allows(Season::Off, Evaluate).unwrap_err(),
            "scoreboards can be accepted or rejected only in the JUDGING season"
        );
        assert_eq!(Season::try_from("JUDGING".to_string()), Ok(Season::Judging));
        assert!(Season::try_from("judging".to_string()).is_err());
    }
}
