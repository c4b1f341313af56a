//! `pek-bench point-history`: a semester's point history for one realm with
//! `groups × members`, on a throwaway PostgreSQL. It measures, and asserts nothing about
//! timings:
//!
//! - A: accepting every submitted scoreboard through the domain code (JUDGING season);
//! - B: closing the season (JUDGING → OFF), which computes every member's points by the
//!   formula into `point_history`; repeated after re-opening JUDGING (not timed);
//! - C: reading every user's semester total (`GET …/semesters/{id}/points`, all pages,
//!   through the domain function);
//! - D: `GET /api/v1/realms/{realm}/users/{id}/points` over HTTP for random users.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use pek::config::{DbArgs, Mode, ServeArgs};
use pek::db::Db;
use pek::policy::Grants;
use pek::realm::{self, RealmId};

#[derive(Debug, Clone, clap::Args)]
pub struct PointHistoryArgs {
    /// Groups in the realm (one scoreboard each).
    #[arg(long, default_value_t = 500)]
    pub groups: u32,
    /// Members per group.
    #[arg(long, default_value_t = 50)]
    pub members: u32,
    /// Distinct people the memberships are drawn from (people are in several groups).
    #[arg(long, default_value_t = 10_000)]
    pub people: u32,
    /// Guidelines per group; each member gets points under all but one of them.
    #[arg(long, default_value_t = 4)]
    pub guidelines: u32,
    /// Full recomputations of the semester (phase B) and full reads (phase C).
    #[arg(long, default_value_t = 5)]
    pub repeats: u32,
    /// Sequential HTTP requests in phase D.
    #[arg(long, default_value_t = 1000)]
    pub requests: u32,
    /// Markdown file whose `## Point history` section is replaced.
    #[arg(long, default_value = "BENCHMARKS.md")]
    pub output: PathBuf,
    /// Print only; do not touch the Markdown file.
    #[arg(long)]
    pub no_write: bool,
}

const HEADER: &str = "## Point history";
const REALM: &str = "bench-eval";

struct Stats {
    name: String,
    n: usize,
    total: Duration,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

fn stats(name: &str, mut d: Vec<Duration>) -> Stats {
    d.sort_unstable();
    let ms = |x: Duration| x.as_secs_f64() * 1000.0;
    let at = |p: f64| {
        if d.is_empty() {
            0.0
        } else {
            ms(d[((d.len() - 1) as f64 * p).round() as usize])
        }
    };
    Stats {
        name: name.to_string(),
        n: d.len(),
        total: d.iter().sum(),
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        max_ms: d.last().map_or(0.0, |x| ms(*x)),
    }
}

struct Loaded {
    semester: Uuid,
    scoreboards: Vec<Uuid>,
    users: Vec<Uuid>,
    requests: i64,
    history_rows: i64,
    points_sum: i64,
}

/// Loads the realm as the superuser (the rows are what the API would write): a
/// semester, groups with members, a guideline collection per group, a submitted
/// scoreboard per group with point requests, some entry award requests.
async fn load(superuser_url: &str, args: &PointHistoryArgs, god: Uuid) -> anyhow::Result<Loaded> {
    let mut c = PgConnection::connect(superuser_url).await?;
    let mut rng = StdRng::seed_from_u64(5);
    let r = REALM;
    let semester: Uuid = sqlx::query_scalar(
        "INSERT INTO semesters (realm_id, name, starts_on, ends_on, is_current)
         VALUES ($1, '2025/26/1', '2025-09-01', '2026-01-31', true) RETURNING id",
    )
    .bind(r)
    .fetch_one(&mut c)
    .await?;
    sqlx::query(
        "INSERT INTO evaluation_settings (realm_id, season, semester_id,
                                          max_points_per_semester, updated_by)
         VALUES ($1, 'JUDGING', $2, 100, $3)",
    )
    .bind(r)
    .bind(semester)
    .bind(god)
    .execute(&mut c)
    .await?;
    let people: Vec<Uuid> = (0..args.people).map(|_| Uuid::new_v4()).collect();
    // Hub mode: memberships feed the federation table, which references users.
    sqlx::query(
        "INSERT INTO users (id, auth_sch_id) SELECT u, 'bench-' || u::text FROM unnest($1::uuid[]) AS t(u)",
    )
    .bind(&people)
    .execute(&mut c)
    .await?;
    let groups: Vec<Uuid> = (0..args.groups).map(|_| Uuid::new_v4()).collect();
    let names: Vec<String> = (0..args.groups).map(|i| format!("group {i:04}")).collect();
    sqlx::query(
        "INSERT INTO groups (realm_id, id, name, name_folded, purpose, created_by, owner_id)
         SELECT $1, g, n, lower(n), 'CIRCLE', $2, $2 FROM unnest($3::uuid[], $4::text[]) AS t(g, n)",
    )
    .bind(r)
    .bind(god)
    .bind(&groups)
    .bind(&names)
    .execute(&mut c)
    .await?;
    let (mut m_ids, mut m_groups, mut m_users) = (Vec::new(), Vec::new(), Vec::new());
    for g in &groups {
        for u in people.choose_multiple(&mut rng, args.members as usize) {
            m_ids.push(Uuid::new_v4());
            m_groups.push(*g);
            m_users.push(*u);
        }
    }
    sqlx::query(
        "INSERT INTO memberships (realm_id, id, group_id, user_id, status)
         SELECT $1, i, g, u, 'ACTIVE' FROM unnest($2::uuid[], $3::uuid[], $4::uuid[]) AS t(i, g, u)",
    )
    .bind(r)
    .bind(&m_ids)
    .bind(&m_groups)
    .bind(&m_users)
    .execute(&mut c)
    .await?;
    let collections: Vec<Uuid> = groups.iter().map(|_| Uuid::new_v4()).collect();
    sqlx::query(
        "INSERT INTO guideline_collections (realm_id, id, group_id, semester_id, name, created_by)
         SELECT $1, i, g, $2, 'Irányelvek', $3 FROM unnest($4::uuid[], $5::uuid[]) AS t(i, g)",
    )
    .bind(r)
    .bind(semester)
    .bind(god)
    .bind(&collections)
    .bind(&groups)
    .execute(&mut c)
    .await?;
    let (mut gl_ids, mut gl_coll, mut gl_group, mut gl_title) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (coll, g) in collections.iter().zip(&groups) {
        for k in 0..args.guidelines {
            gl_ids.push(Uuid::new_v4());
            gl_coll.push(*coll);
            gl_group.push(*g);
            gl_title.push(format!("Irányelv {k}"));
        }
    }
    sqlx::query(
        "INSERT INTO guidelines (realm_id, id, collection_id, group_id, semester_id, title,
                                 category, max_per_member, max_per_guideline, created_by)
         SELECT $1, i, c, g, $2, t, 'WORK', 20, 10000, $3
           FROM unnest($4::uuid[], $5::uuid[], $6::uuid[], $7::text[]) AS x(i, c, g, t)",
    )
    .bind(r)
    .bind(semester)
    .bind(god)
    .bind(&gl_ids)
    .bind(&gl_coll)
    .bind(&gl_group)
    .bind(&gl_title)
    .execute(&mut c)
    .await?;
    let scoreboards: Vec<Uuid> = groups.iter().map(|_| Uuid::new_v4()).collect();
    sqlx::query(
        "INSERT INTO scoreboards (realm_id, id, group_id, semester_id, status, created_by,
                                  submitted_by, submitted_at)
         SELECT $1, i, g, $2, 'NOT_YET_EVALUATED', $3, $3, now()
           FROM unnest($4::uuid[], $5::uuid[]) AS t(i, g)",
    )
    .bind(r)
    .bind(semester)
    .bind(god)
    .bind(&scoreboards)
    .bind(&groups)
    .execute(&mut c)
    .await?;
    let per = args.guidelines as usize;
    let members = args.members as usize;
    let (mut p_sb, mut p_group, mut p_m, mut p_gl, mut p_pts) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut e_sb, mut e_group, mut e_m) = (Vec::new(), Vec::new(), Vec::new());
    // What the formula must give: every member's points (all guidelines are WORK with
    // a per-member maximum of 20, above any single request).
    let (mut history_rows, mut points_sum) = (0i64, 0i64);
    for (gi, (sb, g)) in scoreboards.iter().zip(&groups).enumerate() {
        for mi in 0..members {
            let m = m_ids[gi * members + mi];
            let first = p_pts.len();
            let skip = rng.gen_range(0..per.max(1));
            for k in 0..per {
                if k == skip && per > 1 {
                    continue;
                }
                p_sb.push(*sb);
                p_group.push(*g);
                p_m.push(m);
                p_gl.push(gl_ids[gi * per + k]);
                p_pts.push(rng.gen_range(1..=10i32));
            }
            if p_pts.len() > first {
                history_rows += 1;
                points_sum += pek::scoring::member_points(p_pts[first..].iter().map(|p| {
                    pek::scoring::Requested {
                        category: pek::scoring::Category::Work,
                        points: i64::from(*p),
                        max_per_member: 20,
                    }
                }))
                .points;
            }
            if rng.gen_bool(0.1) {
                e_sb.push(*sb);
                e_group.push(*g);
                e_m.push(m);
            }
        }
    }
    sqlx::query(
        "INSERT INTO point_requests (realm_id, scoreboard_id, group_id, semester_id,
                                     membership_id, guideline_id, points, updated_by)
         SELECT $1, s, g, $2, m, gl, p, $3
           FROM unnest($4::uuid[], $5::uuid[], $6::uuid[], $7::uuid[], $8::int[])
                AS t(s, g, m, gl, p)",
    )
    .bind(r)
    .bind(semester)
    .bind(god)
    .bind(&p_sb)
    .bind(&p_group)
    .bind(&p_m)
    .bind(&p_gl)
    .bind(&p_pts)
    .execute(&mut c)
    .await?;
    sqlx::query(
        "INSERT INTO entry_award_requests (realm_id, scoreboard_id, group_id, semester_id,
                                           membership_id, kind, justification, updated_by,
                                           status, reviewed_by, reviewed_at)
         SELECT $1, s, g, $2, m, 'AB', 'aktív munka', $3, 'ACCEPTED', $3, now()
           FROM unnest($4::uuid[], $5::uuid[], $6::uuid[]) AS t(s, g, m)",
    )
    .bind(r)
    .bind(semester)
    .bind(god)
    .bind(&e_sb)
    .bind(&e_group)
    .bind(&e_m)
    .execute(&mut c)
    .await?;
    sqlx::raw_sql("ANALYZE").execute(&mut c).await?;
    c.close().await?;
    let mut users: Vec<Uuid> = m_users;
    users.sort_unstable();
    users.dedup();
    Ok(Loaded {
        semester,
        scoreboards,
        users,
        requests: p_pts.len() as i64,
        history_rows,
        points_sum,
    })
}

async fn history_fingerprint(superuser_url: &str, realm: &RealmId) -> anyhow::Result<(i64, i64)> {
    let mut c = PgConnection::connect(superuser_url).await?;
    let fp: (i64, i64) = sqlx::query_as(
        "SELECT count(*), COALESCE(sum(points), 0)::bigint FROM point_history WHERE realm_id = $1",
    )
    .bind(realm.as_str())
    .fetch_one(&mut c)
    .await?;
    c.close().await?;
    Ok(fp)
}

pub async fn point_history(args: PointHistoryArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.groups >= 1 && args.members >= 1,
        "--groups and --members must be ≥ 1"
    );
    anyhow::ensure!(
        args.people >= args.members,
        "--people must be at least --members"
    );
    anyhow::ensure!(args.guidelines >= 1, "--guidelines must be ≥ 1");
    anyhow::ensure!(
        args.repeats >= 1 && args.requests >= 1,
        "--repeats and --requests must be ≥ 1"
    );

    let crate::common::BenchHub {
        pg,
        dbs,
        signer,
        keyfile,
        db,
        god,
        ..
    } = crate::common::BenchHub::start().await?;
    let realm = RealmId::parse(REALM)?;
    realm::ensure_local(&db, &realm, "Bench evaluation realm", Some(god)).await?;
    eprintln!(
        "loading {} groups × {} members ({} people, {} guidelines per group)…",
        args.groups, args.members, args.people, args.guidelines
    );
    let t = Instant::now();
    let loaded = load(&dbs.superuser_url, &args, god).await?;
    eprintln!(
        "loaded {} point requests for {} people in {:.1} s",
        loaded.requests,
        loaded.users.len(),
        t.elapsed().as_secs_f64()
    );

    // A: accept every scoreboard, one transaction each, as the realm's GOD.
    eprintln!(
        "phase A: accepting {} scoreboards…",
        loaded.scoreboards.len()
    );
    let mut accept = Vec::with_capacity(loaded.scoreboards.len());
    for sb in &loaded.scoreboards {
        let t = Instant::now();
        let mut tx = db.realm(&realm).await?;
        let grants = Grants::load(&mut tx, god).await?;
        pek::scoring::accept(&mut tx, &grants, *sb)
            .await
            .map_err(|e| anyhow::anyhow!("accepting {sb}: {e}"))?;
        tx.commit().await?;
        accept.push(t.elapsed());
    }
    let after_accept = history_fingerprint(&dbs.superuser_url, &realm).await?;
    anyhow::ensure!(
        after_accept == (0, 0),
        "accepting must not write the history (closing the season does): {after_accept:?}"
    );

    // B: close the season (JUDGING → OFF computes the history); re-open JUDGING between
    // runs (not timed), so every run recomputes from scratch.
    eprintln!("phase B: closing the season {}×…", args.repeats);
    let season = |to: pek::scoring::Season| pek::scoring::SeasonInput {
        season: to,
        semester_id: None,
        force: None,
    };
    let mut rebuild = Vec::new();
    for i in 0..args.repeats {
        if i > 0 {
            let mut tx = db.realm(&realm).await?;
            let grants = Grants::load(&mut tx, god).await?;
            pek::scoring::change_season(&mut tx, &grants, season(pek::scoring::Season::Judging))
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            tx.commit().await?;
        }
        let t = Instant::now();
        let mut tx = db.realm(&realm).await?;
        let grants = Grants::load(&mut tx, god).await?;
        let closed =
            pek::scoring::change_season(&mut tx, &grants, season(pek::scoring::Season::Off))
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        tx.commit().await?;
        rebuild.push(t.elapsed());
        anyhow::ensure!(
            closed.history_rows == Some(loaded.history_rows as u64),
            "closing wrote {:?} rows, expected {}",
            closed.history_rows,
            loaded.history_rows
        );
    }
    let after_rebuild = history_fingerprint(&dbs.superuser_url, &realm).await?;
    anyhow::ensure!(
        after_rebuild == (loaded.history_rows, loaded.points_sum),
        "history after closing: {after_rebuild:?}, expected ({}, {})",
        loaded.history_rows,
        loaded.points_sum
    );

    // C: every user's total, all pages of 200.
    eprintln!("phase C: reading all semester totals {}×…", args.repeats);
    let mut totals = Vec::new();
    let mut users_seen = 0;
    for _ in 0..args.repeats {
        let t = Instant::now();
        let mut tx = db.realm(&realm).await?;
        let grants = Grants::load(&mut tx, god).await?;
        let mut cursor = None;
        users_seen = 0;
        loop {
            let page =
                pek::scoring::semester_totals(&mut tx, &grants, loaded.semester, 200, cursor)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            users_seen += page.items.len();
            match page.next_cursor {
                Some(c) => {
                    cursor =
                        Some(pek::scoring::decode_cursor(&c).map_err(|e| anyhow::anyhow!("{e}"))?)
                }
                None => break,
            }
        }
        tx.commit().await?;
        totals.push(t.elapsed());
    }
    anyhow::ensure!(
        users_seen == loaded.users.len(),
        "totals listed {users_seen} users, expected {}",
        loaded.users.len()
    );

    // D: one user's history over HTTP, as that user.
    let serve = ServeArgs {
        listen: "127.0.0.1:0".parse()?,
        no_migrate: true,
        jwt_public_key_file: Some(keyfile),
        db_max_connections: 4,
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
    let client = reqwest::Client::new();
    let mut rng = StdRng::seed_from_u64(7);
    eprintln!("phase D: {} sequential HTTP requests…", args.requests);
    let mut http = Vec::new();
    for i in 0..args.requests {
        let user = *loaded.users.choose(&mut rng).context("no users")?;
        let token = signer.issue(user, 600)?;
        let url = format!("{base}/api/v1/realms/{REALM}/users/{user}/points");
        let t = Instant::now();
        let resp = client.get(&url).bearer_auth(&token).send().await?;
        anyhow::ensure!(resp.status().is_success(), "{url}: HTTP {}", resp.status());
        let body: serde_json::Value = resp.json().await?;
        let elapsed = t.elapsed();
        anyhow::ensure!(
            body["items"].as_array().is_some_and(|a| a.len() == 1),
            "{url}: {body}"
        );
        if i >= 20 {
            http.push(elapsed); // the first 20 warm up connections and caches
        }
    }
    server.abort();

    let rows = [
        stats("A: accept one scoreboard", accept),
        stats(
            "B: close the season (JUDGING → OFF: the whole semester's history)",
            rebuild,
        ),
        stats(
            "C: read every user's semester figure (pages of 200)",
            totals,
        ),
        stats("D: GET /users/{id}/points over HTTP", http),
    ];
    let table = format!(
        "| Phase | Runs | Total s | p50 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|---:|\n{}",
        rows.iter()
            .map(|s| format!(
                "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2} |\n",
                s.name,
                s.n,
                s.total.as_secs_f64(),
                s.p50_ms,
                s.p99_ms,
                s.max_ms
            ))
            .collect::<String>()
    );
    println!("\n{table}");
    if !args.no_write {
        let section = format!(
            "{HEADER}\n\n\
             One realm with {groups} groups × {members} members ({memberships} memberships drawn \
             from {people} people, so most people are in several groups), {guidelines} guidelines \
             per group, one submitted scoreboard per group with {requests} point requests \
             ({history} user × group history rows), on this {cores}-core machine.\n\n\
             Command (release build, from the repository root; it starts and removes its own \
             PostgreSQL):\n\n```\n{cmd}\n```\n\n{table}\n\
             How it is measured:\n\n\
             - The data is loaded by the superuser; every measured step runs as the service \
             role with row-level security forced, through the same domain code as the API.\n\
             - A: `scoreboard::accept` for every scoreboard, one transaction each (grants, \
             row lock, state and season checks, status update); total = the whole semester \
             accepted one by one. Accepting writes no history.\n\
             - B: `season::change` from JUDGING to OFF, one transaction: the stranded-work \
             check, then the semester's point history from scratch (every request of the \
             accepted latest versions with consented memberships read once, member points \
             by the formula in Rust, one `INSERT … SELECT FROM unnest(…)`). Between runs \
             the season is set back to JUDGING (not timed). The run checks the history \
             holds one row per (user, group) and the sum of the member points the formula \
             gives for the generated requests.\n\
             - C: `history::semester_totals`, every page (each user's `min(sqrt(Σ g²), cap)` \
             over this and the previous semester), {users} users.\n\
             - D: sequential requests (one in flight) for random users, as that user, over \
             loopback HTTP with a fresh JWT each; the first 20 are not counted.\n",
            groups = args.groups,
            members = args.members,
            memberships = u64::from(args.groups) * u64::from(args.members),
            people = args.people,
            guidelines = args.guidelines,
            requests = loaded.requests,
            history = loaded.history_rows,
            users = loaded.users.len(),
            cores = std::thread::available_parallelism().map_or(0, |n| n.get()),
            cmd = command_line(&args),
        );
        crate::common::write_section(&args.output, HEADER, &section)?;
        eprintln!("wrote {}", args.output.display());
    }
    drop(pg);
    Ok(())
}

fn command_line(args: &PointHistoryArgs) -> String {
    let mut s = String::from("cargo run --release -p pek-bench -- point-history");
    for (flag, value, default) in [
        ("--groups", args.groups, 500),
        ("--members", args.members, 50),
        ("--people", args.people, 10_000),
        ("--guidelines", args.guidelines, 4),
        ("--repeats", args.repeats, 5),
        ("--requests", args.requests, 1000),
    ] {
        if value != default {
            s.push_str(&format!(" {flag} {value}"));
        }
    }
    s
}

/// `pek-bench federated-points`: the hub's `/api/v1/me/points` for one person who has
/// points in every one of `realms` workers.
#[derive(Debug, Clone, clap::Args)]
pub struct FederatedPointsArgs {
    /// Worker realms (each a real in-process worker with its own database).
    #[arg(long, default_value_t = 8)]
    pub realms: u32,
    /// The person's groups per realm (each with points in both semesters).
    #[arg(long, default_value_t = 3)]
    pub groups: u32,
    /// Other groups per realm, each with `--members` other people in its history.
    #[arg(long, default_value_t = 500)]
    pub other_groups: u32,
    #[arg(long, default_value_t = 50)]
    pub members: u32,
    /// Sequential requests measured (after 20 unmeasured).
    #[arg(long, default_value_t = 1000)]
    pub requests: u32,
    /// Concurrent clients of the second phase (closed loop, same number of requests).
    #[arg(long, default_value_t = 8)]
    pub clients: u32,
    /// Markdown file whose `## Federated semester points` section is replaced.
    #[arg(long, default_value = "BENCHMARKS.md")]
    pub output: PathBuf,
    /// Print only; do not touch the Markdown file.
    #[arg(long)]
    pub no_write: bool,
}

const FED_HEADER: &str = "## Federated semester points";

async fn serve_loopback(router: axum::Router) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(url)
}

/// One worker realm's history: the person's groups and `other` groups of other people,
/// accepted in two semesters. Returns the person's per-group totals `g`.
async fn load_worker(
    superuser_url: &str,
    realm: &str,
    person: Uuid,
    args: &FederatedPointsArgs,
    rng: &mut StdRng,
) -> anyhow::Result<Vec<i64>> {
    let mut c = PgConnection::connect(superuser_url).await?;
    let mut sems = Vec::new();
    for (name, starts, ends) in [
        ("2025/26/1", "2025-09-01", "2026-01-31"),
        ("2025/26/2", "2026-02-01", "2026-06-30"),
    ] {
        let id: Uuid = sqlx::query_scalar(
            "INSERT INTO semesters (realm_id, name, starts_on, ends_on)
             VALUES ($1, $2, $3::date, $4::date) RETURNING id",
        )
        .bind(realm)
        .bind(name)
        .bind(starts)
        .bind(ends)
        .fetch_one(&mut c)
        .await?;
        sems.push(id);
    }
    let n = (args.groups + args.other_groups) as usize;
    let groups: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
    let names: Vec<String> = (0..n).map(|i| format!("{realm} group {i:04}")).collect();
    sqlx::query(
        "INSERT INTO groups (realm_id, id, name, name_folded, purpose, created_by, owner_id)
         SELECT $1, g, n, lower(n), 'CIRCLE', $2, $2 FROM unnest($3::uuid[], $4::text[]) AS t(g, n)",
    )
    .bind(realm)
    .bind(person)
    .bind(&groups)
    .bind(&names)
    .execute(&mut c)
    .await?;
    let (mut h_sem, mut h_user, mut h_group, mut h_sb, mut h_pts) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut mine = Vec::new();
    for sem in &sems {
        let boards: Vec<Uuid> = groups.iter().map(|_| Uuid::new_v4()).collect();
        sqlx::query(
            "INSERT INTO scoreboards (realm_id, id, group_id, semester_id, status, created_by,
                                      submitted_by, submitted_at, evaluated_by, evaluated_at)
             SELECT $1, i, g, $2, 'ACCEPTED', $3, $3, now(), $3, now()
               FROM unnest($4::uuid[], $5::uuid[]) AS t(i, g)",
        )
        .bind(realm)
        .bind(sem)
        .bind(person)
        .bind(&boards)
        .bind(&groups)
        .execute(&mut c)
        .await?;
        for (gi, (g, sb)) in groups.iter().zip(&boards).enumerate() {
            let people: Vec<Uuid> = if gi < args.groups as usize {
                vec![person]
            } else {
                (0..args.members).map(|_| Uuid::new_v4()).collect()
            };
            for u in people {
                // Member points as the formula leaves them (0 or 5–50); the person's
                // lower, so their figure stays under the cap and checks the sum.
                let p = if u == person {
                    rng.gen_range(5..=12i32)
                } else {
                    rng.gen_range(5..=50i32)
                };
                if u == person {
                    if mine.len() <= gi {
                        mine.resize(gi + 1, 0i64);
                    }
                    mine[gi] += i64::from(p);
                }
                h_sem.push(*sem);
                h_user.push(u);
                h_group.push(*g);
                h_sb.push(*sb);
                h_pts.push(p);
            }
        }
    }
    sqlx::query(
        "INSERT INTO point_history (realm_id, semester_id, user_id, group_id, scoreboard_id, points)
         SELECT $1, s, u, g, b, p
           FROM unnest($2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::int[]) AS t(s, u, g, b, p)",
    )
    .bind(realm)
    .bind(&h_sem)
    .bind(&h_user)
    .bind(&h_group)
    .bind(&h_sb)
    .bind(&h_pts)
    .execute(&mut c)
    .await?;
    sqlx::raw_sql("ANALYZE").execute(&mut c).await?;
    c.close().await?;
    Ok(mine)
}

pub async fn federated_points(args: FederatedPointsArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.realms >= 1 && args.groups >= 1 && args.requests >= 1 && args.clients >= 1,
        "--realms, --groups, --requests and --clients must be ≥ 1"
    );
    eprintln!("starting a throwaway PostgreSQL…");
    let pg = tokio::task::spawn_blocking(localpg::LocalPostgres::start)
        .await?
        .context("starting PostgreSQL")?;
    let signer = pek::auth::Signer::generate("pek-hub", "pek")?;
    let keyfile = pg.data_dir().with_file_name("bench-fed-points-jwt.pem");
    std::fs::write(&keyfile, signer.public_pem())?;
    let person = Uuid::new_v4();
    let mut rng = StdRng::seed_from_u64(15);
    let mut workers = Vec::new();
    let mut expected_groups = Vec::new();
    let mut states = Vec::new();
    for i in 0..args.realms {
        let realm = RealmId::parse(&format!("bench-{i}"))?;
        let wdb = pg.create_database(&format!("pek_bench_w{i}")).await?;
        let serve = ServeArgs {
            listen: "127.0.0.1:0".parse()?,
            realm_id: Some(realm.to_string()),
            jwt_public_key_file: Some(keyfile.clone()),
            db_max_connections: 4,
            ..ServeArgs::defaults(DbArgs {
                database_url: wdb.app_url.clone(),
                migration_database_url: Some(wdb.owner_url.clone()),
                mode: Mode::Worker,
            })
        };
        let (state, router) = pek::app::build(&serve).await?;
        states.push(state);
        let url = serve_loopback(router).await?;
        eprintln!("worker {realm} at {url}: loading…");
        expected_groups.extend(
            load_worker(&wdb.superuser_url, realm.as_str(), person, &args, &mut rng).await?,
        );
        workers.push((realm, url));
    }
    // The hub: the person, the registry and the federation table as the workers'
    // reports would leave them.
    let hdb = pg.create_database("pek_bench_fed_hub").await?;
    pek::db::migrate(&hdb.owner_url, Mode::Hub, Some(localpg::APP_ROLE))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    {
        let mut c = PgConnection::connect(&hdb.superuser_url).await?;
        sqlx::query("INSERT INTO users (id, auth_sch_id) VALUES ($1, 'bench-person')")
            .bind(person)
            .execute(&mut c)
            .await?;
        c.close().await?;
        let hub_db = Db::connect(&hdb.app_url, 2).await?;
        let mut g = hub_db.global().await?;
        for (realm, endpoint) in &workers {
            realm::register(
                &mut g,
                realm,
                &realm::Registration {
                    display_name: realm.as_str().parse()?,
                    endpoint: endpoint.parse()?,
                    version: None,
                    owner_uid: None,
                    providers: None,
                },
            )
            .await?;
        }
        g.commit().await?;
        let mut owner = PgConnection::connect(&hdb.owner_url).await?;
        for (realm, _) in &workers {
            sqlx::query("INSERT INTO realm_members (user_id, realm_id) VALUES ($1, $2)")
                .bind(person)
                .bind(realm.as_str())
                .execute(&mut owner)
                .await?;
        }
        owner.close().await?;
    }
    // The hub signs with the bench's key, which the workers trust: the per-realm tokens it
    // mints when it asks a worker verify there (with a key of its own they would be 401s).
    let private = keyfile.with_extension("private.pem");
    localpg::write_private(&private, signer.private_pem())
        .with_context(|| format!("writing {}", private.display()))?;
    let serve = ServeArgs {
        listen: "127.0.0.1:0".parse()?,
        no_migrate: true,
        jwt_public_key_file: Some(keyfile),
        jwt_private_key_file: Some(private),
        ..ServeArgs::defaults(DbArgs {
            database_url: hdb.app_url.clone(),
            migration_database_url: Some(hdb.owner_url.clone()),
            mode: Mode::Hub,
        })
    };
    let (hub_state, hub_router) = pek::app::build(&serve).await?;
    let hub = serve_loopback(hub_router).await?;
    let expected = pek::scoring::semester_points(expected_groups.iter().copied(), 100);
    let token = signer.issue(person, 3600)?;
    let url = format!("{hub}/api/v1/me/points");
    let client = reqwest::Client::new();
    let one = |client: reqwest::Client, url: String, token: String| async move {
        let t = Instant::now();
        let resp = client.get(&url).bearer_auth(&token).send().await?;
        anyhow::ensure!(resp.status().is_success(), "{url}: HTTP {}", resp.status());
        let body: serde_json::Value = resp.json().await?;
        let elapsed = t.elapsed();
        anyhow::ensure!(body["partial"] == false, "partial answer: {body}");
        anyhow::Ok((elapsed, body))
    };
    let (_, body) = one(client.clone(), url.clone(), token.clone()).await?;
    let got = body["totals"]["2025/26/2"].as_f64();
    anyhow::ensure!(
        got == Some(expected.points),
        "the hub's figure {got:?} differs from the formula's {}",
        expected.points
    );
    eprintln!(
        "the person's 2025/26/2 figure: {} over {} groups in {} realms",
        expected.points,
        expected_groups.len(),
        args.realms
    );
    for _ in 0..20 {
        one(client.clone(), url.clone(), token.clone()).await?;
    }
    eprintln!("phase A: {} sequential requests…", args.requests);
    let mut seq = Vec::with_capacity(args.requests as usize);
    for _ in 0..args.requests {
        seq.push(one(client.clone(), url.clone(), token.clone()).await?.0);
    }
    eprintln!(
        "phase B: {} requests from {} concurrent clients…",
        args.requests, args.clients
    );
    let per = args.requests.div_ceil(args.clients);
    let started = Instant::now();
    let tasks: Vec<_> = (0..args.clients)
        .map(|_| {
            let (client, url, token) = (client.clone(), url.clone(), token.clone());
            tokio::spawn(async move {
                let mut d = Vec::with_capacity(per as usize);
                for _ in 0..per {
                    d.push(one(client.clone(), url.clone(), token.clone()).await?.0);
                }
                anyhow::Ok(d)
            })
        })
        .collect();
    let mut conc = Vec::new();
    for t in tasks {
        conc.extend(t.await??);
    }
    let wall = started.elapsed();
    let rows = [
        stats("A: one client, sequential", seq),
        stats(&format!("B: {} concurrent clients", args.clients), conc),
    ];
    let table = format!(
        "| Phase | Requests | Total s | p50 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|---:|\n{}",
        rows.iter()
            .map(|s| format!(
                "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2} |\n",
                s.name,
                s.n,
                s.total.as_secs_f64(),
                s.p50_ms,
                s.p99_ms,
                s.max_ms
            ))
            .collect::<String>()
    );
    let rate = rows[1].n as f64 / wall.as_secs_f64();
    println!("\n{table}\nB: {rate:.0} req/s");
    if !args.no_write {
        let mut cmd = String::from("cargo run --release -p pek-bench -- federated-points");
        for (flag, value, default) in [
            ("--realms", args.realms, 8),
            ("--groups", args.groups, 3),
            ("--other-groups", args.other_groups, 500),
            ("--members", args.members, 50),
            ("--requests", args.requests, 1000),
            ("--clients", args.clients, 8),
        ] {
            if value != default {
                cmd.push_str(&format!(" {flag} {value}"));
            }
        }
        let section = format!(
            "{FED_HEADER}\n\n\
             `GET /api/v1/me/points` on the hub for one person with points in {realms} realms \
             ({groups} groups each, both semesters), every realm a real worker (in-process, \
             loopback HTTP) with its own database holding {other} other groups × {members} \
             other people's history in two semesters; hub, workers and the load generator on \
             this {cores}-core machine and one PostgreSQL. Every answer is checked to be \
             complete (`partial: false`); the first also to carry the formula's figure \
             ({figure} over {n} groups). The hub asks every realm concurrently, each realm \
             reads the person's history and computes its per-group totals, and the hub \
             combines them.\n\n\
             Command (release build, from the repository root; it starts and removes its own \
             PostgreSQL):\n\n```\n{cmd}\n```\n\n{table}\nPhase B: {rate:.0} req/s.\n",
            realms = args.realms,
            groups = args.groups,
            other = args.other_groups,
            members = args.members,
            cores = std::thread::available_parallelism().map_or(0, |n| n.get()),
            figure = expected.points,
            n = expected_groups.len(),
        );
        crate::common::write_section(&args.output, FED_HEADER, &section)?;
        eprintln!("wrote {}", args.output.display());
    }
    drop(hub_state);
    drop(states);
    drop(pg);
    Ok(())
}
