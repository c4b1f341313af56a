//! CSV exports for the people who run a realm (manageRealm). RFC 4180 (comma, CRLF
//! lines, quotes where needed), UTF-8, one header row; the columns are listed with each
//! export and in README. Free-text cells that a spreadsheet would run as a formula
//! (starting with `=`, `+`, `-`, `@`, tab or CR) are prefixed with `'`.

use uuid::Uuid;

use super::history;
use crate::db::RealmTx;
use crate::error::{Error, Result};
use crate::policy::{self, Grants, Permission, Target};

/// `semester,user_id,points,points_integer,points_exact,sum_of_squares,groups`
pub const POINT_HISTORY_COLUMNS: [&str; 7] = [
    "semester",
    "user_id",
    "points",
    "points_integer",
    "points_exact",
    "sum_of_squares",
    "groups",
];

/// `semester,group_id,group_name,user_id,membership_id,kind,justification,reviewed_by,reviewed_at`
pub const ENTRY_AWARD_COLUMNS: [&str; 9] = [
    "semester",
    "group_id",
    "group_name",
    "user_id",
    "membership_id",
    "kind",
    "justification",
    "reviewed_by",
    "reviewed_at",
];

/// `group_id,group_name,user_id,membership_id,status,posts,start_at`
pub const ACTIVE_MEMBER_COLUMNS: [&str; 7] = [
    "group_id",
    "group_name",
    "user_id",
    "membership_id",
    "status",
    "posts",
    "start_at",
];

fn text_cell(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

fn write(header: &[&str], rows: Vec<Vec<String>>) -> Result<String> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let io = |e: csv::Error| Error::Internal(e.into());
    w.write_record(header).map_err(io)?;
    for r in rows {
        w.write_record(&r).map_err(io)?;
    }
    let bytes = w.into_inner().map_err(|e| Error::Internal(e.into()))?;
    String::from_utf8(bytes).map_err(|e| Error::Internal(e.into()))
}

/// A semester given by id or name.
async fn semester(tx: &mut RealmTx, s: &str) -> Result<(Uuid, String)> {
    let realm = tx.realm().as_str().to_string();
    let s = s.trim();
    if s.is_empty() || s.chars().count() > 50 || s.chars().any(char::is_control) {
        return Err(Error::BadRequest(
            "semester must be a semester id or name of 1-50 characters".into(),
        ));
    }
    sqlx::query!(
        "SELECT id, name FROM semesters WHERE realm_id = $1 AND (id::text = $2 OR name = $2)",
        realm,
        s
    )
    .fetch_optional(tx.conn())
    .await?
    .map(|r| (r.id, r.name))
    .ok_or_else(|| Error::not_found(format!("semester {s:?} in realm {realm}")))
}

/// Every person's semester points (the semester and the one before, by the formula).
pub async fn point_history(tx: &mut RealmTx, grants: &Grants, sem: &str) -> Result<String> {
    policy::require(tx, grants, Permission::ManageRealm, Target::Realm).await?;
    let (id, name) = semester(tx, sem).await?;
    let rows = history::all_totals(tx, id)
        .await?
        .into_iter()
        .map(|t| {
            vec![
                text_cell(&name),
                t.user_id.to_string(),
                format!("{:.2}", t.figure.points),
                t.figure.points_integer.to_string(),
                t.figure.points_exact.to_string(),
                t.figure.sum_of_squares.to_string(),
                t.groups.to_string(),
            ]
        })
        .collect();
    write(&POINT_HISTORY_COLUMNS, rows)
}

#[derive(sqlx::FromRow)]
struct EntryRow {
    group_id: Uuid,
    group_name: String,
    user_id: Uuid,
    membership_id: Uuid,
    kind: String,
    justification: String,
    reviewed_by: Option<Uuid>,
    reviewed_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Accepted entry award requests of a semester (of its scoreboards' latest versions).
pub async fn entry_awards(tx: &mut RealmTx, grants: &Grants, sem: &str) -> Result<String> {
    policy::require(tx, grants, Permission::ManageRealm, Target::Realm).await?;
    let (id, name) = semester(tx, sem).await?;
    let realm = tx.realm().as_str().to_string();
    // Counted statuses: super::COUNTED_STATUSES.
    let rows: Vec<EntryRow> = sqlx::query_as!(
        EntryRow,
        "SELECT e.group_id, g.name AS group_name, m.user_id, e.membership_id, e.kind,
                e.justification, e.reviewed_by, e.reviewed_at
           FROM entry_award_requests e
           JOIN scoreboards s ON s.realm_id = e.realm_id AND s.id = e.scoreboard_id
           JOIN groups g ON g.realm_id = e.realm_id AND g.id = e.group_id
           JOIN memberships m ON m.realm_id = e.realm_id AND m.id = e.membership_id
          WHERE e.realm_id = $1 AND e.semester_id = $2 AND e.status = 'ACCEPTED'
            AND s.status <> 'REJECTED'
            AND m.status IN ('NEWBIE', 'ACTIVE', 'FORMER', 'ARCHIVED')
          ORDER BY g.name_folded, g.id, m.user_id",
        realm,
        id
    )
    .fetch_all(tx.conn())
    .await?;
    let rows = rows
        .into_iter()
        .map(|r| {
            vec![
                text_cell(&name),
                r.group_id.to_string(),
                text_cell(&r.group_name),
                r.user_id.to_string(),
                r.membership_id.to_string(),
                r.kind,
                text_cell(&r.justification),
                r.reviewed_by.map(|u| u.to_string()).unwrap_or_default(),
                r.reviewed_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
            ]
        })
        .collect();
    write(&ENTRY_AWARD_COLUMNS, rows)
}

#[derive(sqlx::FromRow)]
struct MemberRow {
    group_id: Uuid,
    group_name: String,
    user_id: Uuid,
    membership_id: Uuid,
    status: String,
    posts: Vec<String>,
    start_at: chrono::DateTime<chrono::Utc>,
}

/// Current members (NEWBIE or ACTIVE) of every group that is not archived.
pub async fn active_members(tx: &mut RealmTx, grants: &Grants) -> Result<String> {
    policy::require(tx, grants, Permission::ManageRealm, Target::Realm).await?;
    let realm = tx.realm().as_str().to_string();
    let rows: Vec<MemberRow> = sqlx::query_as!(
        MemberRow,
        "SELECT m.group_id, g.name AS group_name, m.user_id, m.id AS membership_id, m.status,
                m.posts, m.start_at
           FROM memberships m
           JOIN groups g ON g.realm_id = m.realm_id AND g.id = m.group_id
          WHERE m.realm_id = $1 AND m.status IN ('NEWBIE', 'ACTIVE') AND NOT g.archived
          ORDER BY g.name_folded, g.id, m.user_id",
        realm
    )
    .fetch_all(tx.conn())
    .await?;
    let rows = rows
        .into_iter()
        .map(|r| {
            vec![
                r.group_id.to_string(),
                text_cell(&r.group_name),
                r.user_id.to_string(),
                r.membership_id.to_string(),
                r.status,
                text_cell(&r.posts.join(";")),
                r.start_at.to_rfc3339(),
            ]
        })
        .collect();
    write(&ACTIVE_MEMBER_COLUMNS, rows)
}

#[cfg(test)]
mod tests {
    #[test]
    fn formula_cells_are_defused_and_quotes_escaped() {
        let out = super::write(
            &["a", "b"],
            vec![vec![super::text_cell("=SUM(A1)"), "x,\"y\"\nz".into()]],
        )
        .unwrap();
        assert_eq!(out, "a,b\r\n'=SUM(A1),\"x,\"\"y\"\"\nz\"\r\n");
    }
}
