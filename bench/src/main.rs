//! `pek-bench`: performance benchmarks of the PéK federation, kept out of the `pek`
//! library and binary (they turn row-level security off, load synthetic data and pin
//! threads, none of which belongs in the production image). Not tests: they measure and
//! report, they assert nothing about timings. Every subcommand starts its own throwaway
//! PostgreSQL (`pek-localpg`). Their SQL (bulk loading as the superuser, RLS switched off
//! and on, `ANALYZE`) is checked at run time, not against `.sqlx/` like the production
//! queries: it is not production code (the smoke tests at the end run the federated-points and
//! point-history subcommands end to end at toy sizes).
//!
//! `pek-bench group-search` loads realms × groups into a throwaway PostgreSQL, serves the
//! hub in-process on loopback and drives `GET /api/v1/realms/{realm}/groups?q=<prefix>`
//! with a bounded closed-loop load generator, (A) with row-level security as deployed,
//! (B) with RLS disabled on the realm tables, and (C) runs the same SQL through pgbench
//! as the ceiling. It prints a Markdown table and writes it into `BENCHMARKS.md`.

/// The allocator of the `pek` binary, since the benchmarks run its servers in-process.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod common;
mod evaluation;
mod federation;
mod instructions;
mod pek_next;
mod web;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use pek::config::{DbArgs, Mode, ServeArgs};
use pek::fold;
use pek::realm::{self, RealmId};

use common::{phase, write_section, BenchHub, Phase};

#[derive(clap::Parser)]
#[command(
    name = "pek-bench",
    version,
    about = "Performance benchmarks of the PéK federation (each starts its own throwaway PostgreSQL)"
)]
struct Cli {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Debug, Clone, clap::Subcommand)]
enum BenchCommand {
    /// Group search by name prefix: HTTP with RLS on / off, and pgbench as the ceiling.
    GroupSearch(GroupSearchArgs),
    /// BFF fan-out to stand-in workers with a fixed answer delay.
    FanOut(federation::FanOutArgs),
    /// A single-realm call through the hub vs directly to a real worker.
    Forward(federation::ForwardArgs),
    /// Instructions the hub executes per forwarded or fanned-out request (callgrind).
    HubInstructions(instructions::HubInstructionsArgs),
    /// A semester's point history for a realm of groups × members.
    PointHistory(evaluation::PointHistoryArgs),
    /// The web interface's home and search pages over a hub and two workers.
    Web(web::WebArgs),
    /// The hub's federated semester points for one person across worker realms.
    FederatedPoints(evaluation::FederatedPointsArgs),
    /// `pek import pek-next` on gen.sql's default synthetic dataset, with the points check.
    PekNext(pek_next::PekNextArgs),
    /// `pek local` in this binary, for `web`, which runs the federation in a child process.
    #[command(hide = true)]
    Local(pek::demo::LocalArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct GroupSearchArgs {
    /// Number of realms to create.
    #[arg(long, default_value_t = 100)]
    pub realms: u32,
    /// Groups loaded into each realm.
    #[arg(long, default_value_t = 10_000)]
    pub groups_per_realm: u32,
    /// Measured seconds per phase.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Unmeasured warm-up seconds before each phase.
    #[arg(long, default_value_t = 2)]
    pub warmup: u64,
    /// Concurrent requests in flight (HTTP workers; pgbench clients).
    #[arg(long, default_value_t = 32)]
    pub concurrency: u32,
    /// Database connections of the server's pool.
    #[arg(long, default_value_t = 20)]
    pub db_connections: u32,
    /// Page size asked for (`limit`).
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// Markdown file whose `## Group search` section is replaced.
    #[arg(long, default_value = "BENCHMARKS.md")]
    pub output: PathBuf,
    /// Print only; do not touch the Markdown file.
    #[arg(long)]
    pub no_write: bool,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = <Cli as clap::Parser>::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    match run(cli.command).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::GroupSearch(args) => group_search(args).await,
        BenchCommand::FanOut(args) => federation::fan_out(args).await,
        BenchCommand::Forward(args) => federation::forward(args).await,
        BenchCommand::HubInstructions(args) => instructions::hub_instructions(args).await,
        BenchCommand::PointHistory(args) => evaluation::point_history(args).await,
        BenchCommand::Web(args) => web::web(args).await,
        BenchCommand::FederatedPoints(args) => evaluation::federated_points(args).await,
        BenchCommand::PekNext(args) => pek_next::pek_next(args).await,
        BenchCommand::Local(args) => pek::demo::run_local(args).await,
    }
}

/// Tables carrying the `realm_isolation` policy (see the realm migration).
const RLS_TABLES: [&str; 7] = [
    "groups",
    "memberships",
    "semesters",
    "feature_flags",
    "policies",
    "statements",
    "policy_assignments",
];

const FIRST_WORDS: [&str; 40] = [
    "Állatbarát",
    "Asztalitenisz",
    "Barkács",
    "Bélyeggyűjtő",
    "Csillagász",
    "Dráma",
    "Egyetemi",
    "Építész",
    "Fotó",
    "Film",
    "Gólya",
    "Gépész",
    "Hegymászó",
    "Informatikus",
    "Jóga",
    "Kémia",
    "Kórus",
    "Kosárlabda",
    "Lovas",
    "Matematika",
    "Mérnök",
    "Néptánc",
    "Öregdiák",
    "Őszi",
    "Programozó",
    "Rádió",
    "Robotika",
    "Sakk",
    "Simonyi",
    "Schönherz",
    "Szakkollégium",
    "Szabadidő",
    "Színjátszó",
    "Tánc",
    "Teke",
    "Úszó",
    "Üzleti",
    "Vitorlás",
    "Zenekar",
    "Zöld",
];

const SECOND_WORDS: [&str; 40] = [
    "Kör",
    "Klub",
    "Csoport",
    "Műhely",
    "Egyesület",
    "Szakosztály",
    "Projekt",
    "Bizottság",
    "Reszort",
    "Csapat",
    "Labor",
    "Stúdió",
    "Társaság",
    "Iroda",
    "Tanács",
    "Kollégium",
    "Szekció",
    "Kabinet",
    "Akadémia",
    "Fórum",
    "Alapítvány",
    "Közösség",
    "Liga",
    "Együttes",
    "Hálózat",
    "Központ",
    "Tábor",
    "Szövetség",
    "Kezdeményezés",
    "Rendezvény",
    "Szerkesztőség",
    "Mentorkör",
    "Gárda",
    "Brigád",
    "Tagozat",
    "Kuratórium",
    "Szakcsoport",
    "Műhelykör",
    "Baráti kör",
    "Önképzőkör",
];

fn realm_name(i: u32) -> String {
    format!("bench-{i}")
}

/// The `n` distinct group names of a realm: "<first> <second>[ <k>]", shuffled per realm.
fn group_names(n: u32, seed: u64) -> Vec<String> {
    let combos = FIRST_WORDS.len() * SECOND_WORDS.len();
    let mut names: Vec<String> = (0..n as usize)
        .map(|i| {
            let c = i % combos;
            let k = i / combos;
            let base = format!(
                "{} {}",
                FIRST_WORDS[c / SECOND_WORDS.len()],
                SECOND_WORDS[c % SECOND_WORDS.len()]
            );
            if k == 0 {
                base
            } else {
                format!("{base} {}", k + 1)
            }
        })
        .collect();
    names.shuffle(&mut StdRng::seed_from_u64(seed));
    names
}

/// 2–3 letter folded prefixes taken from loaded names (so they are as frequent as the
/// names they come from).
fn prefixes(names: &[String], count: usize, rng: &mut StdRng) -> Vec<String> {
    let mut set = BTreeSet::new();
    let mut tries = 0;
    while set.len() < count && tries < count * 100 {
        tries += 1;
        let Some(name) = names.choose(rng) else {
            break;
        };
        let len = rng.gen_range(2..=3);
        let p: String = fold(name).chars().take(len).collect();
        if p.chars().count() == len && p.chars().all(|c| c.is_ascii_lowercase()) {
            set.insert(p);
        }
    }
    set.into_iter().collect()
}

struct LoadSpec {
    base: String,
    token: String,
    realms: Vec<String>,
    prefixes: Vec<String>,
    concurrency: u32,
    limit: u32,
    warmup: Duration,
    duration: Duration,
}

/// Closed-loop load: `concurrency` workers each send one request at a time until the
/// deadline. Runs on its own single-threaded runtime on its own OS thread, so it competes
/// with the server for the CPU like an external client would, but not for its executor.
fn http_load(spec: Arc<LoadSpec>, label: &str) -> anyhow::Result<Phase> {
    let label = label.to_string();
    let handle = std::thread::Builder::new()
        .name("bench-load".into())
        .spawn(move || -> anyhow::Result<Phase> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let client = reqwest::Client::builder()
                    .pool_max_idle_per_host(spec.concurrency as usize)
                    .timeout(Duration::from_secs(30))
                    .build()?;
                // Warm-up (connections, plan caches, buffer cache), not recorded.
                run_workers(&client, &spec, spec.warmup).await?;
                let start = Instant::now();
                let lat = run_workers(&client, &spec, spec.duration).await?;
                let elapsed = start.elapsed();
                Ok(phase(&label, lat, elapsed))
            })
        })?;
    handle
        .join()
        .map_err(|_| anyhow::anyhow!("load generator thread panicked"))?
}

async fn run_workers(
    client: &reqwest::Client,
    spec: &Arc<LoadSpec>,
    duration: Duration,
) -> anyhow::Result<Vec<u32>> {
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::new();
    for w in 0..spec.concurrency {
        let client = client.clone();
        let spec = spec.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(u64::from(w) * 7919 + 1);
            let mut lat = Vec::with_capacity(4096);
            let mut failures = 0u64;
            let mut first_failure = None;
            while Instant::now() < deadline {
                let realm = spec.realms.choose(&mut rng).map(String::as_str);
                let prefix = spec.prefixes.choose(&mut rng).map(String::as_str);
                let (Some(realm), Some(prefix)) = (realm, prefix) else {
                    break;
                };
                let url = format!(
                    "{}/api/v1/realms/{realm}/groups?q={prefix}&limit={}",
                    spec.base, spec.limit
                );
                let t = Instant::now();
                let res = client.get(&url).bearer_auth(&spec.token).send().await;
                let ok = match res {
                    Ok(r) => {
                        let status = r.status();
                        let body = r.bytes().await;
                        match (status.is_success(), body) {
                            (true, Ok(_)) => Ok(()),
                            (_, b) => Err(format!(
                                "{url}: HTTP {status}: {}",
                                b.map(|b| String::from_utf8_lossy(&b).chars().take(200).collect())
                                    .unwrap_or_else(|e: reqwest::Error| e.to_string())
                            )),
                        }
                    }
                    Err(e) => Err(format!("{url}: {e}")),
                };
                let us = u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX);
                match ok {
                    Ok(()) => lat.push(us),
                    Err(e) => {
                        failures += 1;
                        first_failure.get_or_insert(e);
                    }
                }
            }
            (lat, failures, first_failure)
        }));
    }
    let mut all = Vec::new();
    let mut failures = 0;
    let mut first = None;
    for t in tasks {
        let (lat, f, e) = t.await?;
        all.extend(lat);
        failures += f;
        if first.is_none() {
            first = e;
        }
    }
    if failures > 0 {
        anyhow::bail!(
            "{failures} requests failed; first: {}",
            first.unwrap_or_default()
        );
    }
    Ok(all)
}

async fn set_rls(superuser_url: &str, on: bool) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect(superuser_url).await?;
    let mut sql = String::new();
    for t in RLS_TABLES {
        if on {
            sql.push_str(&format!(
                "ALTER TABLE {t} ENABLE ROW LEVEL SECURITY; ALTER TABLE {t} FORCE ROW LEVEL SECURITY;"
            ));
        } else {
            sql.push_str(&format!(
                "ALTER TABLE {t} NO FORCE ROW LEVEL SECURITY; ALTER TABLE {t} DISABLE ROW LEVEL SECURITY;"
            ));
        }
    }
    sqlx::raw_sql(&sql).execute(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

/// The SQL one `GET …/groups?q=<prefix>` runs for a GOD caller (`Db::realm`,
/// `Grants::load`, `group::search` with no parent, archived excluded, no cursor), as a
/// pgbench script. The realm is a pgbench variable; the prefix is a literal (pgbench
/// variables are numbers), so there is one script per prefix.
fn pgbench_script(realms: u32, god: Uuid, prefix: &str, limit: u32) -> String {
    let realm = "('bench-' || :r::text)";
    format!(
        "\\set r random(1, {realms})\n\
         BEGIN;\n\
         SELECT set_config('pek.realm_id', {realm}, true);\n\
         SELECT p.is_god, s.group_id, s.user_id, s.permissions FROM policy_assignments a \
         JOIN policies p ON p.realm_id = a.realm_id AND p.id = a.policy_id \
         LEFT JOIN statements s ON s.realm_id = a.realm_id AND s.policy_id = a.policy_id \
         WHERE a.realm_id = {realm} AND a.user_id = '{god}';\n\
         SELECT id, realm_id, parent_id, name, purpose, description, archived, created_by, \
         owner_id, created_at, updated_at, name_folded FROM groups g \
         WHERE g.realm_id = {realm} \
         AND ('{prefix}%'::text IS NULL OR (g.name_folded LIKE '{prefix}%' \
         AND g.name_folded ~>=~ '{prefix}' AND g.name_folded ~<~ ('{prefix}' || chr(1114111)))) \
         AND (NULL::uuid IS NULL OR g.parent_id = NULL::uuid) \
         AND (false OR NOT g.archived) \
         AND (NULL::text IS NULL OR (g.name_folded, g.id) > (NULL::text, NULL::uuid)) \
         AND (true OR g.owner_id = '{god}' OR g.id = ANY('{{}}'::uuid[]) \
         OR EXISTS (SELECT 1 FROM memberships m WHERE m.realm_id = g.realm_id AND m.group_id = g.id \
         AND m.user_id = '{god}' AND m.status IN ('NEWBIE', 'ACTIVE'))) \
         ORDER BY g.name_folded, g.id LIMIT {};\n\
         COMMIT;\n",
        limit + 1
    )
}

fn pgbench(
    workdir: &Path,
    app_url: &str,
    args: &GroupSearchArgs,
    god: Uuid,
    prefixes: &[String],
    duration: u64,
    log: bool,
) -> anyhow::Result<Option<Phase>> {
    let bin = localpg::find_bindir()
        .map(|d| d.join("pgbench"))
        .ok()
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("pgbench"));
    std::fs::create_dir_all(workdir)?;
    for e in std::fs::read_dir(workdir)? {
        let p = e?.path();
        if p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("pgbench_log"))
        {
            std::fs::remove_file(p)?;
        }
    }
    let mut cmd = Command::new(&bin);
    cmd.current_dir(workdir)
        .args(["-n", "-M", "prepared", "-j", "2"])
        .args(["-c", &args.concurrency.to_string()])
        .args(["-T", &duration.to_string()]);
    // pgbench takes at most 128 scripts.
    for (i, p) in prefixes.iter().take(128).enumerate() {
        let path = workdir.join(format!("search-{i}.sql"));
        std::fs::write(&path, pgbench_script(args.realms, god, p, args.limit))?;
        cmd.arg("-f").arg(format!("{}@1", path.display()));
    }
    if log {
        cmd.args(["-l", "--log-prefix=pgbench_log"]);
    }
    let out = cmd
        .arg(app_url)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        anyhow::bail!(
            "pgbench failed ({}): {}{}",
            out.status,
            stdout.lines().take(20).collect::<Vec<_>>().join("\n"),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    if !log {
        return Ok(None);
    }
    let failed = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("number of failed transactions: "))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    anyhow::ensure!(failed == 0, "pgbench: {failed} failed transactions");
    let tps = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("tps = "))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .context("no `tps = ` line in pgbench output")?;
    // Per-transaction log: "client tx_no latency_us script_no epoch epoch_us".
    let mut lat = Vec::new();
    for e in std::fs::read_dir(workdir)? {
        let p = e?.path();
        if p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("pgbench_log"))
        {
            for line in std::fs::read_to_string(&p)?.lines() {
                if let Some(us) = line
                    .split_whitespace()
                    .nth(2)
                    .and_then(|v| v.parse::<u32>().ok())
                {
                    lat.push(us);
                }
            }
        }
    }
    let mut p = phase("C: pgbench, same SQL (RLS on)", lat, Duration::from_secs(1));
    p.rps = tps;
    Ok(Some(p))
}

async fn load_groups(
    superuser_url: &str,
    realms: &[String],
    per_realm: u32,
    god: Uuid,
) -> anyhow::Result<u64> {
    let mut conn = PgConnection::connect(superuser_url).await?;
    for (i, realm) in realms.iter().enumerate() {
        let names = group_names(per_realm, i as u64);
        let folded: Vec<String> = names.iter().map(|n| fold(n)).collect();
        let purposes = ["CIRCLE", "PROJECT", "COMMITTEE", "EVENT", "RESORT"];
        let purpose: Vec<&str> = (0..names.len())
            .map(|k| purposes[k % purposes.len()])
            .collect();
        // The superuser bypasses RLS; the rows are exactly what group::create writes.
        sqlx::query(
            "INSERT INTO groups (realm_id, name, name_folded, purpose, created_by, owner_id)
             SELECT $1, n, f, p, $2, $2 FROM unnest($3::text[], $4::text[], $5::text[]) AS t(n, f, p)",
        )
        .bind(realm)
        .bind(god)
        .bind(&names)
        .bind(&folded)
        .bind(&purpose)
        .execute(&mut conn)
        .await
        .with_context(|| format!("loading groups of {realm}"))?;
    }
    sqlx::raw_sql("ANALYZE").execute(&mut conn).await?;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM groups")
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    Ok(n as u64)
}

/// Matching-row counts per prefix in one realm: (min, median, max).
async fn prefix_selectivity(
    superuser_url: &str,
    realm: &str,
    prefixes: &[String],
) -> anyhow::Result<(i64, i64, i64)> {
    let mut conn = PgConnection::connect(superuser_url).await?;
    let mut counts = Vec::new();
    for p in prefixes {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM groups WHERE realm_id = $1 AND name_folded LIKE $2",
        )
        .bind(realm)
        .bind(format!("{p}%"))
        .fetch_one(&mut conn)
        .await?;
        counts.push(n);
    }
    conn.close().await?;
    counts.sort_unstable();
    Ok((
        counts.first().copied().unwrap_or(0),
        counts.get(counts.len() / 2).copied().unwrap_or(0),
        counts.last().copied().unwrap_or(0),
    ))
}

/// Prints the plan of the search query as the handler runs it (service role, RLS on,
/// inside a transaction scoped to the realm as `Db::realm` opens it).
async fn explain(
    app_url: &str,
    realm: &str,
    god: Uuid,
    prefix: &str,
    limit: u32,
) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect(app_url).await?;
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT set_config('pek.realm_id', $1, true)")
        .bind(realm)
        .execute(&mut *tx)
        .await?;
    let sql = pgbench_script(1, god, prefix, limit);
    let search = sql
        .lines()
        .find(|l| l.contains("FROM groups g"))
        .unwrap_or_default()
        .replace("('bench-' || :r::text)", &format!("'{realm}'"));
    let rows: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN (ANALYZE, BUFFERS) {search}"))
        .fetch_all(&mut *tx)
        .await?;
    eprintln!("{}", rows.join("\n"));
    tx.commit().await?;
    conn.close().await?;
    Ok(())
}

async fn group_search(args: GroupSearchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.realms >= 1, "--realms must be at least 1");
    anyhow::ensure!(
        args.groups_per_realm >= 1,
        "--groups-per-realm must be at least 1"
    );
    anyhow::ensure!(
        args.concurrency >= 1 && args.db_connections >= 1,
        "--concurrency and --db-connections must be at least 1"
    );
    anyhow::ensure!(
        (1..=pek::MAX_LIMIT).contains(&args.limit),
        "--limit must be 1-{}",
        pek::MAX_LIMIT
    );
    anyhow::ensure!(args.duration >= 1, "--duration must be at least 1 second");

    let BenchHub {
        pg,
        dbs,
        workdir,
        signer,
        keyfile,
        db,
        god,
    } = BenchHub::start().await?;
    let realms: Vec<String> = (1..=args.realms).map(realm_name).collect();
    let t = Instant::now();
    for (i, r) in realms.iter().enumerate() {
        let id = RealmId::parse(r)?;
        realm::ensure_local(&db, &id, &format!("Bench realm {}", i + 1), Some(god)).await?;
    }
    eprintln!(
        "loading {} realms × {} groups…",
        args.realms, args.groups_per_realm
    );
    let loaded = load_groups(&dbs.superuser_url, &realms, args.groups_per_realm, god).await?;
    let expected = u64::from(args.realms) * u64::from(args.groups_per_realm);
    anyhow::ensure!(
        loaded == expected,
        "loaded {loaded} groups, expected {expected}"
    );
    let load_secs = t.elapsed().as_secs_f64();
    eprintln!("loaded {loaded} groups in {load_secs:.1} s");

    let mut rng = StdRng::seed_from_u64(42);
    let prefixes = prefixes(&group_names(args.groups_per_realm, 0), 64, &mut rng);
    anyhow::ensure!(!prefixes.is_empty(), "no usable prefixes");
    let (sel_min, sel_med, sel_max) =
        prefix_selectivity(&dbs.superuser_url, &realms[0], &prefixes).await?;

    if std::env::var_os("PEK_BENCH_EXPLAIN").is_some() {
        explain(&dbs.app_url, &realms[0], god, &prefixes[0], args.limit).await?;
    }

    let serve = ServeArgs {
        listen: "127.0.0.1:0".parse()?,
        no_migrate: true,
        jwt_public_key_file: Some(keyfile),
        db_max_connections: args.db_connections,
        ..ServeArgs::defaults(DbArgs {
            database_url: dbs.app_url.clone(),
            migration_database_url: Some(dbs.owner_url.clone()),
            mode: Mode::Hub,
        })
    };
    let (_state, router) = pek::app::build(&serve).await?;
    let listener = tokio::net::TcpListener::bind(serve.listen).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let token = signer.issue(god, 3600)?;

    // Same answers with RLS on and off, and a non-empty answer at all.
    let probe = format!(
        "{base}/api/v1/realms/{}/groups?q={}&limit={}",
        realms[0], prefixes[0], args.limit
    );
    let client = reqwest::Client::new();
    let fetch = |c: reqwest::Client, url: String, tok: String| async move {
        let r = c.get(&url).bearer_auth(&tok).send().await?;
        anyhow::ensure!(r.status().is_success(), "{url}: HTTP {}", r.status());
        Ok::<serde_json::Value, anyhow::Error>(r.json().await?)
    };
    let with_rls = fetch(client.clone(), probe.clone(), token.clone()).await?;
    let items = with_rls
        .get("items")
        .and_then(|v| v.as_array())
        .map_or(0, Vec::len);
    anyhow::ensure!(items > 0, "probe search returned no groups: {with_rls}");

    let spec = Arc::new(LoadSpec {
        base: base.clone(),
        token: token.clone(),
        realms: realms.clone(),
        prefixes: prefixes.clone(),
        concurrency: args.concurrency,
        limit: args.limit,
        warmup: Duration::from_secs(args.warmup),
        duration: Duration::from_secs(args.duration),
    });

    eprintln!(
        "phase A: HTTP, RLS on ({} s, {} concurrent)…",
        args.duration, args.concurrency
    );
    let s = spec.clone();
    let a = tokio::task::spawn_blocking(move || http_load(s, "A: HTTP API, RLS on")).await??;

    eprintln!("phase B: HTTP, RLS off…");
    set_rls(&dbs.superuser_url, false).await?;
    let b = async {
        let without = fetch(client.clone(), probe.clone(), token.clone()).await?;
        anyhow::ensure!(without == with_rls, "RLS off changed the answer of {probe}");
        let s = spec.clone();
        tokio::task::spawn_blocking(move || http_load(s, "B: HTTP API, RLS off")).await?
    }
    .await;
    set_rls(&dbs.superuser_url, true).await?;
    let b = b?;
    let again = fetch(client.clone(), probe.clone(), token.clone()).await?;
    anyhow::ensure!(again == with_rls, "RLS restore changed the answer");
    server.abort();

    eprintln!("phase C: pgbench…");
    let c = {
        let url = dbs.app_url.clone();
        let wd = workdir.clone();
        let a2 = args.clone();
        let px = prefixes.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<Phase> {
            pgbench(&wd, &url, &a2, god, &px, a2.warmup.max(1), false)?;
            pgbench(&wd, &url, &a2, god, &px, a2.duration, true)?
                .context("pgbench produced no figures")
        })
        .await??
    };

    let rls_cost = (1.0 - a.rps / b.rps) * 100.0;
    let http_vs_pgbench = a.rps / c.rps * 100.0;
    let table = format!(
        "| Phase | Requests | req/s | p50 ms | p99 ms |\n|---|---:|---:|---:|---:|\n{}",
        [&a, &b, &c]
            .iter()
            .map(|p| format!(
                "| {} | {} | {:.0} | {:.2} | {:.2} |\n",
                p.name, p.requests, p.rps, p.p50_ms, p.p99_ms
            ))
            .collect::<String>()
    );
    let verdict = |ok: bool| if ok { "met" } else { "**missed**" };
    let ratios = format!(
        "- RLS cost: {rls_cost:.1}% of throughput (A vs B; target ≤ 10%: {}).\n\
         - HTTP path: {http_vs_pgbench:.0}% of the pgbench ceiling (A vs C; target ≥ 50%: {}).\n",
        verdict(rls_cost <= 10.0),
        verdict(http_vs_pgbench >= 50.0)
    );
    println!("\n{table}\n{ratios}");

    if !args.no_write {
        let cmd = command_line(&args);
        let section = format!(
            "## Group search\n\n\
             Group search by name prefix in one realm (`GET /api/v1/realms/{{realm}}/groups?q=<prefix>&limit={limit}`, \
             as a realm GOD), {realms} realms × {per} groups loaded ({loaded} rows), on this {cores}-core machine.\n\n\
             Command (release build, from the repository root; it starts and removes its own PostgreSQL):\n\n\
             ```\n{cmd}\n```\n\n\
             {table}\n{ratios}\n\
             How it is measured:\n\n\
             - Each phase: {warm} s warm-up, then {dur} s measured; {conc} requests in flight \
             (closed loop), random realm and a random 2–3 letter prefix out of {np} taken from the \
             loaded names (matching {sel_min}–{sel_max} rows per realm, median {sel_med}); the \
             server's pool has {dbc} connections. Every request must answer 200 or the run fails.\n\
             - A: as deployed (service role, `FORCE ROW LEVEL SECURITY`). B: RLS disabled on the \
             realm tables by the superuser (the queries filter on `realm_id` themselves, so the \
             answers are identical; the run checks that), then restored.\n\
             - C: pgbench (`-M prepared -c {conc} -j 2`) as the service role with RLS on, running \
             per transaction what the handler runs: `BEGIN`, `set_config('pek.realm_id')`, the \
             grants query, the search query, `COMMIT`. The prefix is a literal in the script \
             (pgbench variables are numbers); the realm is a variable.\n\
             - The load generator (one thread), the server (tokio, 2 workers), PostgreSQL and \
             pgbench all share the same {cores} cores, so every figure includes the client's own \
             CPU; absolute numbers are for comparison between the phases, not capacity planning.\n",
            limit = args.limit,
            realms = args.realms,
            per = args.groups_per_realm,
            cores = std::thread::available_parallelism().map_or(0, |n| n.get()),
            warm = args.warmup,
            dur = args.duration,
            conc = args.concurrency,
            np = prefixes.len(),
            dbc = args.db_connections,
        );
        write_section(&args.output, "## Group search", &section)?;
        eprintln!("wrote {}", args.output.display());
    }
    drop(pg);
    Ok(())
}

fn command_line(args: &GroupSearchArgs) -> String {
    let mut s = String::from("cargo run --release -p pek-bench -- group-search");
    if args.realms != 100 {
        s.push_str(&format!(" --realms {}", args.realms));
    }
    if args.groups_per_realm != 10_000 {
        s.push_str(&format!(" --groups-per-realm {}", args.groups_per_realm));
    }
    if args.duration != 10 {
        s.push_str(&format!(" --duration {}", args.duration));
    }
    if args.warmup != 2 {
        s.push_str(&format!(" --warmup {}", args.warmup));
    }
    if args.concurrency != 32 {
        s.push_str(&format!(" --concurrency {}", args.concurrency));
    }
    if args.db_connections != 20 {
        s.push_str(&format!(" --db-connections {}", args.db_connections));
    }
    if args.limit != 20 {
        s.push_str(&format!(" --limit {}", args.limit));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::replace_section;

    #[test]
    fn section_is_replaced_and_others_kept() {
        let doc = "# Benchmarks\n\n## Operator\n\nx\n\n## Group search\n\nold\n\n## Later\n\ny\n";
        let out = replace_section(doc, "## Group search", "## Group search\n\nnew\n");
        assert!(out.contains("## Operator\n\nx\n"));
        assert!(out.contains("new") && !out.contains("old"));
        assert!(out.contains("## Later\n\ny\n"));
        let fresh = replace_section("# Benchmarks\n", "## G", "## G\n\nz\n");
        assert_eq!(fresh, "# Benchmarks\n\n## G\n\nz\n");
    }

    /// Runs a benchmark's command line end to end at a toy size, printing only.
    async fn run_toy(args: &[&str]) {
        let cli = <Cli as clap::Parser>::try_parse_from(
            ["pek-bench"].iter().chain(args).chain(&["--no-write"]),
        )
        .expect("valid command line");
        if let Err(e) = run(cli.command).await {
            panic!("{args:?}: {e:#}");
        }
    }

    // Benchmarks are not run by the other tests, so one that stopped working (as
    // federated-points did when the hub started sending workers per-realm tokens signed
    // with a key they did not trust) would otherwise go unnoticed until the next
    // measurement.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn federated_points_runs() {
        run_toy(&[
            "federated-points",
            "--realms",
            "2",
            "--groups",
            "2",
            "--other-groups",
            "3",
            "--members",
            "2",
            "--requests",
            "5",
            "--clients",
            "2",
        ])
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn point_history_runs() {
        run_toy(&[
            "point-history",
            "--groups",
            "4",
            "--members",
            "3",
            "--people",
            "8",
            "--guidelines",
            "2",
            "--repeats",
            "1",
            "--requests",
            "25",
        ])
        .await;
    }

    #[test]
    fn names_are_unique_and_prefixes_match_them() {
        let names = group_names(10_000, 3);
        let set: BTreeSet<_> = names.iter().collect();
        assert_eq!(set.len(), 10_000);
        let ps = prefixes(&names, 64, &mut StdRng::seed_from_u64(1));
        assert!(ps.len() >= 32);
        for p in &ps {
            assert!(names.iter().any(|n| fold(n).starts_with(p.as_str())));
        }
    }
}
