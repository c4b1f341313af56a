//! What an import did: the reconciliation (per mapping row: read, inserted, updated,
//! merged, rejected) and the report of every source row not carried, or carried changed,
//! with its reason. The report rows are gathered in the transaction (`pn_report`) by the
//! same set-based statements that map the rows, then streamed to the report file.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use futures::StreamExt;
use serde::Serialize;
use sqlx::PgConnection;

/// One line of the reconciliation table.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Tally {
    pub mapping: String,
    pub read: i64,
    pub inserted: i64,
    pub updated: i64,
    /// Matched to a row that already existed (a person who signed in before the import).
    pub merged: i64,
    /// Source rows not carried (each one is in the report).
    pub rejected: i64,
    /// Carried changed (each one is in the report).
    pub changed: i64,
}

pub async fn create_table(conn: &mut PgConnection) -> anyhow::Result<()> {
    sqlx::raw_sql(
        "CREATE TEMP TABLE pn_report (tbl text NOT NULL, legacy_id text NOT NULL,
                                      outcome text NOT NULL, reason text NOT NULL)
             ON COMMIT DROP",
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Rejected and changed counts of one pek-next table, from the report.
pub async fn counts(conn: &mut PgConnection, table: &str) -> anyhow::Result<(i64, i64)> {
    let (rejected, changed): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE outcome = 'rejected'),
                count(*) FILTER (WHERE outcome = 'changed')
           FROM pn_report WHERE tbl = $1",
    )
    .bind(table)
    .fetch_one(conn)
    .await?;
    Ok((rejected, changed))
}

/// Writes the report (CSV: table, legacy_id, outcome, reason), streamed from the database.
pub async fn write(conn: &mut PgConnection, path: &Path) -> anyhow::Result<u64> {
    let file = std::fs::File::create(path)
        .with_context(|| format!("creating the report {}", path.display()))?;
    let mut w = csv::Writer::from_writer(std::io::BufWriter::new(file));
    w.write_record(["table", "legacy_id", "outcome", "reason"])?;
    let mut n = 0u64;
    let mut rows = sqlx::query_as::<_, (String, String, String, String)>(
        "SELECT tbl, legacy_id, outcome, reason FROM pn_report
          ORDER BY tbl, outcome, length(legacy_id), legacy_id, reason",
    )
    .fetch(conn);
    while let Some(r) = rows.next().await {
        let (t, id, outcome, reason) = r?;
        w.write_record([t, id, outcome, reason])?;
        n += 1;
    }
    w.flush()?;
    Ok(n)
}

/// The reconciliation as a text table.
pub fn table(tallies: &[Tally]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<60} {:>8} {:>8} {:>8} {:>7} {:>8} {:>8}",
        "mapping", "read", "inserted", "updated", "merged", "rejected", "changed"
    );
    for t in tallies {
        let _ = writeln!(
            s,
            "{:<60} {:>8} {:>8} {:>8} {:>7} {:>8} {:>8}",
            t.mapping, t.read, t.inserted, t.updated, t.merged, t.rejected, t.changed
        );
    }
    s
}
