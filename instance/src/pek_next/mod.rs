//! `pek import pek-next`: brings the data of a running PéK (pek-next, Rails on
//! PostgreSQL) into one realm of this hub — people and profiles into the hub, groups,
//! memberships, semesters, the evaluation and the point history into the realm — and
//! proves the semester points are the same afterwards (`check`).
//!
//! **Safe to run on real data.** The source is read in one `REPEATABLE READ READ ONLY`
//! transaction (one snapshot; nothing can be written through it) and streamed into
//! temporary tables with COPY (`stage`), so the importer's memory stays flat; the mapping
//! is set-based SQL in the target database (`people`, `groups`, `evaluations`).
//!
//! **One transaction.** Everything is written in a single transaction of the target
//! database, committed only after the points check passed: an interrupted or failed run
//! leaves nothing behind, and nobody ever sees a half-imported realm (whose points would
//! be wrong: the semester figure depends on every table at once). A resumable per-batch
//! commit would expose exactly that state in between, for no gain at this size (the whole
//! synthetic dataset imports in well under a minute); a failed run is simply run again.
//! `--dry-run` does everything, prints the reconciliation and the check, and rolls back.
//!
//! **Idempotent.** Rows are keyed by their pek-next ids (`users.legacy_id`,
//! `groups.legacy_id`, `import_keys` for the rest); a repeated run updates only what
//! changed in pek-next (rows written: 0 when nothing did), adds what is new, and removes
//! point requests, entry awards and comments pek-next no longer has.

mod check;
mod evaluations;
mod groups;
mod people;
mod progress;
mod report;
mod stage;

use std::path::PathBuf;
use std::str::FromStr;

use anyhow::Context;
use sqlx::postgres::PgConnectOptions;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::db::Db;
use crate::realm::RealmId;

pub use people::PLACEHOLDER_PREFIX;
pub use progress::Progress;
pub use report::Tally;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// pek-next's PostgreSQL database (read only, in one snapshot), e.g.
    /// postgres://reader:…@pek-next-db/pek_next
    #[arg(long, env = "PEK_IMPORT_SOURCE")]
    pub source: String,
    /// The realm to import into (hosted by the hub; made if it does not exist yet).
    #[arg(long)]
    pub realm: String,
    /// The realm's display name, when the import makes it.
    #[arg(long, default_value = "Schönherz (PéK)")]
    pub realm_name: String,
    /// The hub's database (its service role: row-level security applies).
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    /// Do everything, print the reconciliation and the points check, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Write every source row not carried, or carried changed, with its reason (CSV).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Import into a realm that already has data of another origin (groups or
    /// memberships made here, or an import from another pek-next database).
    #[arg(long)]
    pub force: bool,
    /// Commit even when the points check finds differences (they are still listed and
    /// the exit status is still non-zero).
    #[arg(long)]
    pub allow_differences: bool,
}

/// What a run did.
#[derive(Debug)]
pub struct Summary {
    pub tallies: Vec<Tally>,
    pub history_rows: u64,
    pub compared: u64,
    pub semesters_compared: u64,
    pub not_computed: Vec<String>,
    pub differences: Vec<check::Difference>,
    pub report_rows: u64,
    pub committed: bool,
    pub seconds: f64,
}

/// The import's own statements run with these (see `evaluations::FUNCTIONS`).
pub struct Ctx;

impl Ctx {
    /// One statement; rows affected.
    async fn exec(&self, conn: &mut PgConnection, sql: &str) -> anyhow::Result<u64> {
        Ok(sqlx::raw_sql(sql).execute(conn).await?.rows_affected())
    }

    /// Several statements.
    async fn script(&self, conn: &mut PgConnection, sql: &str) -> anyhow::Result<()> {
        sqlx::raw_sql(sql).execute(conn).await?;
        Ok(())
    }
}

/// The source named without its password (what `imports.source` records).
fn source_identity(url: &str) -> anyhow::Result<String> {
    let o = PgConnectOptions::from_str(url).context("--source is not a PostgreSQL URL")?;
    Ok(format!(
        "postgres://{}@{}:{}/{}",
        o.get_username(),
        o.get_host(),
        o.get_port(),
        o.get_database().unwrap_or("")
    ))
}

pub async fn run(args: &Args, progress: &Progress) -> anyhow::Result<Summary> {
    let started = std::time::Instant::now();
    let realm = RealmId::parse(&args.realm).map_err(|e| anyhow::anyhow!("--realm: {e}"))?;
    let source_id = source_identity(&args.source)?;
    let db = Db::connect(&args.database_url, 2).await?;
    {
        let mut g = db.global().await?;
        let hosted: Option<(Option<String>,)> =
            sqlx::query_as("SELECT endpoint FROM realms WHERE id = $1")
                .bind(realm.as_str())
                .fetch_optional(g.conn())
                .await?;
        g.commit().await?;
        match hosted {
            Some((Some(endpoint),)) => anyhow::bail!(
                "realm {realm} is served by a worker ({endpoint}): import into a realm the hub \
                 hosts (pek-next is one organisation with one semester figure; see the README)"
            ),
            Some((None,)) => {}
            None => {
                crate::realm::ensure_local(&db, &realm, &args.realm_name, None).await?;
                progress.line(&format!("import: made realm {realm}"));
            }
        }
    }
    let mut tx = db.realm(&realm).await?;
    // One import per realm at a time.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('pek-import:' || $1))")
        .bind(realm.as_str())
        .execute(tx.conn())
        .await?;
    let actor = import_actor(tx.conn()).await?;
    sqlx::query("SELECT set_config('pek.import_actor', $1, true)")
        .bind(actor.to_string())
        .execute(tx.conn())
        .await?;
    refuse_other_origin(tx.conn(), realm.as_str(), &source_id, args.force).await?;

    let mut source = stage::Source::open(&args.source).await?;
    Ctx.script(tx.conn(), evaluations::FUNCTIONS).await?;
    report::create_table(tx.conn()).await?;
    stage::stage_all(&mut source, tx.conn(), progress).await?;
    source.close().await;

    let mut tallies = Vec::new();
    let step = progress.phase("people", 0);
    tallies.extend(people::import(tx.conn(), &Ctx).await?);
    step.finish(0);
    let step = progress.phase("semesters, season", 0);
    let semesters = evaluations::semesters(tx.conn(), &Ctx).await?;
    step.finish(0);
    let step = progress.phase("groups, memberships", 0);
    tallies.extend(groups::import(tx.conn(), &Ctx).await?);
    tallies.extend(semesters);
    step.finish(0);
    let step = progress.phase("evaluation", 0);
    tallies.extend(evaluations::import(tx.conn(), &Ctx).await?);
    step.finish(0);
    let step = progress.phase("point history", 0);
    let history_rows = check::recompute_history(&mut tx).await?;
    step.finish(history_rows);
    let step = progress.phase("points check", 0);
    let outcome = check::run(&mut tx).await?;
    step.finish(outcome.compared);
    for d in &outcome.differences {
        sqlx::query("INSERT INTO pn_report VALUES ('point_histories', $1, 'different', $2)")
            .bind(format!("{}:{}", d.pn_user_id, d.semester))
            .bind(format!(
                "points check: pek-next {} , computed here {}",
                d.pek_next, d.computed
            ))
            .execute(tx.conn())
            .await?;
    }
    let report_rows = match &args.report {
        Some(path) => report::write(tx.conn(), path).await?,
        None => 0,
    };
    let summary_json = serde_json::json!({
        "tallies": tallies,
        "historyRows": history_rows,
        "compared": outcome.compared,
        "differences": outcome.differences.len(),
    });
    sqlx::query(
        "INSERT INTO imports (realm_id, source, summary) VALUES ($1, $2, $3)
         ON CONFLICT (realm_id) DO UPDATE SET source = EXCLUDED.source, last_at = now(),
             runs = imports.runs + 1, summary = EXCLUDED.summary",
    )
    .bind(realm.as_str())
    .bind(&source_id)
    .bind(summary_json)
    .execute(tx.conn())
    .await?;
    let commit = !args.dry_run && (outcome.differences.is_empty() || args.allow_differences);
    if commit {
        tx.commit().await?;
    }
    // Otherwise dropping the transaction rolls it back.
    Ok(Summary {
        tallies,
        history_rows,
        compared: outcome.compared,
        semesters_compared: outcome.semesters,
        not_computed: outcome.not_computed,
        differences: outcome.differences,
        report_rows,
        committed: commit,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The hub user the import acts as where pek-next names nobody (a group without a
/// leader, a system message): a placeholder identity nobody can sign in as.
async fn import_actor(conn: &mut PgConnection) -> anyhow::Result<Uuid> {
    let (id,): (Uuid,) = sqlx::query_as(
        "INSERT INTO users (auth_sch_id) VALUES ('legacy-pek:import')
         ON CONFLICT (auth_sch_id) DO UPDATE SET auth_sch_id = EXCLUDED.auth_sch_id
         RETURNING id",
    )
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO profiles (user_id, first_name, last_name, search_folded)
         VALUES ($1, 'PéK', 'import', 'pek import') ON CONFLICT (user_id) DO NOTHING",
    )
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(id)
}

async fn refuse_other_origin(
    conn: &mut PgConnection,
    realm: &str,
    source: &str,
    force: bool,
) -> anyhow::Result<()> {
    let (previous, native_groups, native_memberships): (Option<String>, bool, bool) =
        sqlx::query_as(
            "SELECT (SELECT source FROM imports WHERE realm_id = $1),
                    EXISTS (SELECT 1 FROM groups WHERE realm_id = $1 AND legacy_id IS NULL),
                    EXISTS (SELECT 1 FROM memberships m WHERE m.realm_id = $1
                              AND NOT EXISTS (SELECT 1 FROM import_keys k
                                               WHERE k.realm_id = m.realm_id AND k.id = m.id))",
        )
        .bind(realm)
        .fetch_one(&mut *conn)
        .await?;
    let mut why = Vec::new();
    if let Some(p) = previous.filter(|p| p != source) {
        why.push(format!("it was imported from another database ({p})"));
    }
    if native_groups {
        why.push("it has groups made here".to_string());
    }
    if native_memberships {
        why.push("it has memberships made here".to_string());
    }
    if !why.is_empty() && !force {
        anyhow::bail!(
            "realm {realm} already has data of another origin: {}. Import into a new realm, \
             or pass --force to merge into it",
            why.join("; ")
        );
    }
    Ok(())
}

/// The run's outcome as the command prints it.
pub fn render(s: &Summary, dry_run: bool) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "\nReconciliation (pek-next → this realm)");
    out.push_str(&report::table(&s.tallies));
    let _ = writeln!(out, "point history rows computed: {}", s.history_rows);
    let _ = writeln!(
        out,
        "\nPoints check: {} person-semesters in {} semesters compared, {} differ{}",
        s.compared,
        s.semesters_compared,
        s.differences.len(),
        if s.not_computed.is_empty() {
            String::new()
        } else {
            format!(
                " (not computed by pek-next, so not compared: {})",
                s.not_computed.join(", ")
            )
        }
    );
    for d in s.differences.iter().take(100) {
        let _ = writeln!(
            out,
            "  user {} semester {}: pek-next {}, computed here {}",
            d.pn_user_id, d.semester, d.pek_next, d.computed
        );
    }
    if s.differences.len() > 100 {
        let _ = writeln!(out, "  … {} more in the report", s.differences.len() - 100);
    }
    if s.report_rows > 0 {
        let _ = writeln!(out, "report: {} rows", s.report_rows);
    }
    let _ = writeln!(
        out,
        "{} in {:.1} s",
        if s.committed {
            "committed"
        } else if dry_run {
            "dry run: rolled back"
        } else {
            "NOT committed (the points check found differences; --allow-differences commits anyway)"
        },
        s.seconds
    );
    out
}
