//! `pek-bench web`: the web interface's pages over a hub and two workers. Starts `pek
//! local` (the library's, through this binary's hidden `local` subcommand, in a child
//! process: a hub and two workers, each with its own database, talking HTTP), signs in as a demo person with a session cookie, and drives the home and search
//! pages with a closed-loop load; reports latency percentiles and the bytes of each
//! page, and what a first visit downloads (the page plus its assets).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, BufReader};

#[derive(Debug, Clone, clap::Args)]
pub struct WebArgs {
    /// Measured seconds per page.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Unmeasured warm-up seconds before each page.
    #[arg(long, default_value_t = 2)]
    pub warmup: u64,
    /// Concurrent page loads in flight.
    #[arg(long, default_value_t = 4)]
    pub concurrency: u32,
    /// Markdown file whose `## Web pages` section is replaced.
    #[arg(long, default_value = "BENCHMARKS.md")]
    pub output: PathBuf,
    /// Print only; do not touch the Markdown file.
    #[arg(long)]
    pub no_write: bool,
    /// Only the pages whose name contains this (e.g. `121` for the big group's two; for
    /// profiling one page).
    #[arg(long)]
    pub only: Option<String>,
}

const HEADER: &str = "## Web pages";

struct Row {
    page: String,
    requests: usize,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// CPU time of the server side (hub, workers and their PostgreSQL) per page.
    cpu_ms: f64,
    bytes: usize,
}

/// CPU time (user + system, in clock ticks) so far of process `root` and every process
/// under it: the server side's work, whatever else the shared machine is doing.
fn tree_cpu_ticks(root: u32) -> u64 {
    let mut procs: Vec<(u32, u32, u64)> = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // After the command's closing parenthesis: state, ppid, …, utime (12th), stime.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        procs.push((pid, num(1) as u32, num(11) + num(12)));
    }
    let mut tree = vec![root];
    let mut total = 0;
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        for (pid, ppid, ticks) in &procs {
            if *pid == parent {
                total += ticks;
            }
            if *ppid == parent && !tree.contains(pid) {
                tree.push(*pid);
            }
        }
        i += 1;
    }
    total
}

/// Starts `pek local` on free ports; returns the child, the hub URL and Bob's and
/// Alice's tokens.
async fn start_local() -> anyhow::Result<(tokio::process::Child, String, String, String)> {
    let exe = std::env::current_exe().context("finding the pek-bench binary")?;
    let mut child = tokio::process::Command::new(exe)
        .args(["local", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting pek local")?;
    let stdout = child.stdout.take().context("pek local's output")?;
    let mut lines = BufReader::new(stdout).lines();
    let (mut hub, mut bob, mut alice) = (None, None, None);
    let deadline = Instant::now() + Duration::from_secs(120);
    while hub.is_none() || bob.is_none() || alice.is_none() {
        let line = tokio::time::timeout_at(deadline.into(), lines.next_line())
            .await
            .context("pek local did not come up within 120 s")??
            .context("pek local exited during start-up")?;
        if let Some(rest) = line.trim().strip_prefix("hub + BFF") {
            hub = rest.split_whitespace().next().map(String::from);
        }
        if let Some((_, t)) = line.split_once("export BOB=") {
            bob = Some(t.trim().to_string());
        }
        // Alice's hub token (the lines after it name her tokens of each worker).
        if let Some((_, t)) = line.split_once("export ALICE=") {
            alice = Some(t.trim().to_string());
        }
    }
    // Keep draining its output so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((
        child,
        hub.unwrap_or_default(),
        bob.unwrap_or_default(),
        alice.unwrap_or_default(),
    ))
}

fn percentile(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted_us.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted_us[idx.min(sorted_us.len() - 1)]) / 1000.0
}

async fn load(
    client: &reqwest::Client,
    url: &str,
    headers: &[(String, String)],
    concurrency: u32,
    duration: Duration,
) -> anyhow::Result<(Vec<u32>, usize)> {
    let deadline = Instant::now() + duration;
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, url, headers) = (client.clone(), url.to_string(), headers.to_vec());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut bytes = 0;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let mut rb = client.get(&url).header("accept-language", "hu");
                    for (k, v) in &headers {
                        rb = rb.header(k, v);
                    }
                    let r = rb.send().await?;
                    let status = r.status();
                    let body = r.bytes().await?;
                    anyhow::ensure!(status.is_success(), "{url}: HTTP {status}");
                    lat.push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
                    bytes = body.len();
                }
                Ok::<_, anyhow::Error>((lat, bytes))
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut bytes = 0;
    for t in tasks {
        let (lat, b) = t.await??;
        all.extend(lat);
        bytes = bytes.max(b);
    }
    all.sort_unstable();
    Ok((all, bytes))
}

pub async fn web(args: WebArgs) -> anyhow::Result<()> {
    // The machine is shared: the load it carried says how far the figures are the pages'.
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into());
    println!("Starting pek local (a hub and two workers)…");
    let (mut child, hub, bob, alice) = start_local().await?;
    let result = measure(&args, child.id().unwrap_or(0), &hub, &bob, &alice).await;
    if let Some(pid) = child.id() {
        // SIGTERM: pek local removes its PostgreSQL on the way out.
        unsafe {
            libc::kill(pid as i32, libc::SIGTERM);
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(20), child.wait()).await;
    let (rows, first_load) = result?;
    let section = render(&args, &load, &rows, &first_load);
    println!("\n{section}");
    if !args.no_write {
        let doc = std::fs::read_to_string(&args.output).unwrap_or_default();
        std::fs::write(
            &args.output,
            crate::common::replace_section(&doc, HEADER, &section),
        )?;
        println!("(written to {})", args.output.display());
    }
    Ok(())
}

async fn measure(
    args: &WebArgs,
    server: u32,
    hub: &str,
    bob: &str,
    alice: &str,
) -> anyhow::Result<(Vec<Row>, Vec<(String, usize)>)> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(args.concurrency as usize)
        .build()?;
    println!("Seeding a group of {BIG_GROUP} members and its scoreboard…");
    let big = seed_big_group(&client, hub, alice).await?;
    let big_group = format!("/realms/hub/groups/{}", big.group);
    let big_board = format!("/realms/hub/scoreboards/{}", big.scoreboard);
    let secret = "0123456789abcdef0123456789abcdef";
    let cookie = format!("pek_session={bob}; pek_csrf={secret}");
    let page = vec![("cookie".to_string(), cookie.clone())];
    // Alice (the hub realm's GOD) sees the big group's members and fills its scoreboard.
    let as_alice = vec![(
        "cookie".to_string(),
        format!("pek_session={alice}; pek_csrf={secret}"),
    )];
    let mut htmx = page.clone();
    htmx.push(("hx-request".into(), "true".into()));
    htmx.push((
        "x-csrf-token".into(),
        csrf_token(&client, hub, &cookie).await?,
    ));
    let pages = [
        ("Home (`/`): my groups in 3 realms", "/", &page),
        ("Search page (`/search?q=aron`)", "/search?q=aron", &page),
        (
            "Search as you type: htmx fragment (`q=k`)",
            "/search?q=k",
            &htmx,
        ),
        (
            "Group page of 121 members (`/realms/hub/groups/…`)",
            big_group.as_str(),
            &as_alice,
        ),
        (
            "Scoreboard of 121 members × 4 guidelines (`/realms/hub/scoreboards/…`)",
            big_board.as_str(),
            &as_alice,
        ),
    ];
    let mut rows = Vec::new();
    for (name, path, headers) in pages {
        if args.only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let url = format!("{hub}{path}");
        load(
            &client,
            &url,
            headers,
            args.concurrency,
            Duration::from_secs(args.warmup),
        )
        .await?;
        let start = Instant::now();
        let ticks = tree_cpu_ticks(server);
        let (lat, bytes) = load(
            &client,
            &url,
            headers,
            args.concurrency,
            Duration::from_secs(args.duration),
        )
        .await?;
        let elapsed = start.elapsed().as_secs_f64();
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let cpu_ms = (tree_cpu_ticks(server).saturating_sub(ticks)) as f64 * 1000.0
            / hz
            / lat.len().max(1) as f64;
        rows.push(Row {
            page: name.to_string(),
            requests: lat.len(),
            rps: lat.len() as f64 / elapsed,
            p50_ms: percentile(&lat, 0.50),
            p99_ms: percentile(&lat, 0.99),
            cpu_ms,
            bytes,
        });
    }
    // A first visit: the home page and its assets, as a browser asks for them (gzip
    // accepted: the bytes counted are the compressed ones on the wire; the page is read
    // a second time uncompressed to find its assets, as this client does not decode).
    let mut first = Vec::new();
    let wire = client
        .get(format!("{hub}/"))
        .header("cookie", &cookie)
        .header("accept-encoding", "gzip")
        .send()
        .await?;
    let encoding = wire
        .headers()
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .to_string();
    let wire_len = wire.bytes().await?.len();
    first.push((format!("home page (HTML, {encoding})"), wire_len));
    let home = client
        .get(format!("{hub}/"))
        .header("cookie", &cookie)
        .send()
        .await?
        .text()
        .await?;
    for asset in home
        .split(['"', '\''])
        .filter(|s| s.starts_with("/assets/"))
        .map(String::from)
        .collect::<Vec<_>>()
    {
        let r = client
            .get(format!("{hub}{asset}"))
            .header("accept-encoding", "gzip")
            .send()
            .await?;
        let encoding = r
            .headers()
            .get("content-encoding")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("identity")
            .to_string();
        let n = r.bytes().await?.len();
        first.push((format!("`{asset}` ({encoding})"), n));
    }
    Ok((rows, first))
}

/// The size of the big group the issue's figure is about (pek-next's largest circles).
const BIG_GROUP: usize = 121;

struct BigGroup {
    group: String,
    scoreboard: String,
}

/// A JSON API call as `token`; the answer's body, or an error naming the call.
async fn call(
    client: &reqwest::Client,
    hub: &str,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> anyhow::Result<serde_json::Value> {
    let mut rb = client
        .request(method.clone(), format!("{hub}{path}"))
        .bearer_auth(token);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await?;
    let status = r.status();
    let text = r.text().await?;
    anyhow::ensure!(status.is_success(), "{method} {path}: {status} {text}");
    Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
}

fn id_of(v: &serde_json::Value) -> anyhow::Result<String> {
    v["id"]
        .as_str()
        .map(String::from)
        .context("the answer has no id")
}

/// A group of [`BIG_GROUP`] people in the hub realm, each signed in once through the
/// development sign-in (so each is a real user with a profile), invited by Alice and
/// accepting; a semester in the SUBMISSION season with 4 guidelines for the group, and
/// its scoreboard with two requests per member.
async fn seed_big_group(
    client: &reqwest::Client,
    hub: &str,
    alice: &str,
) -> anyhow::Result<BigGroup> {
    use reqwest::Method;
    use serde_json::json;
    let r = "/api/v1/realms/hub";
    // The development sign-in's form: a CSRF cookie and the token bound to it.
    let page = client.get(format!("{hub}/sign-in")).send().await?;
    let csrf_cookie = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("pek_csrf="))
        .and_then(|c| c.split(';').next())
        .context("no CSRF cookie from the sign-in page")?
        .to_string();
    let body = page.text().await?;
    const FIELD: &str = r#"name="csrf" value=""#;
    let start = body
        .find(FIELD)
        .context("no development sign-in on the sign-in page")?
        + FIELD.len();
    let token = &body[start..start + body[start..].find('"').context("CSRF field")?];
    let group = id_of(
        &call(
            client,
            hub,
            alice,
            Method::POST,
            &format!("{r}/groups"),
            Some(json!({"name": "Nagy Kör", "purpose": "CIRCLE"})),
        )
        .await?,
    )?;
    // A few at a time: the pool of a small local PostgreSQL says "busy" beyond that.
    use futures::{StreamExt, TryStreamExt};
    let people: Vec<String> = futures::stream::iter(0..BIG_GROUP)
        .map(|i| {
            let (csrf_cookie, group) = (csrf_cookie.clone(), group.clone());
            async move {
                let signed_in = client
                    .post(format!("{hub}/sign-in/dev"))
                    .header("cookie", &csrf_cookie)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(format!("csrf={token}&authSchId=bench-member-{i:03}"))
                    .send()
                    .await?;
                let session = signed_in
                    .headers()
                    .get_all("set-cookie")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .find_map(|c| c.strip_prefix("pek_session="))
                    .and_then(|c| c.split(';').next())
                    .context("the development sign-in gave no session")?
                    .to_string();
                // Names as a big circle has them: a few family names many times over.
                let family = ["Kovács", "Nagy", "Szabó", "Tóth", "Horváth", "Kiss"][i % 6];
                call(
                    client,
                    hub,
                    &session,
                    Method::PUT,
                    "/api/v1/me/profile",
                    Some(
                        json!({"firstName": format!("Tag {i:03}"), "lastName": family,
                            "nickname": format!("tag{i:03}")}),
                    ),
                )
                .await?;
                let user =
                    id_of(&call(client, hub, &session, Method::GET, "/api/v1/me", None).await?)?;
                let m = id_of(
                    &call(
                        client,
                        hub,
                        alice,
                        Method::POST,
                        &format!("{r}/groups/{group}/members"),
                        Some(json!({"userId": user})),
                    )
                    .await?,
                )?;
                call(
                    client,
                    hub,
                    &session,
                    Method::POST,
                    &format!("{r}/memberships/{m}/accept"),
                    None,
                )
                .await?;
                Ok::<_, anyhow::Error>(m)
            }
        })
        .buffer_unordered(4)
        .try_collect()
        .await?;
    let semester = id_of(
        &call(
            client,
            hub,
            alice,
            Method::POST,
            &format!("{r}/semesters"),
            Some(json!({"name": "2025/26/1", "startsOn": "2025-09-01", "endsOn": "2026-01-31"})),
        )
        .await?,
    )?;
    call(
        client,
        hub,
        alice,
        Method::PUT,
        &format!("{r}/evaluation-season"),
        Some(json!({"season": "SUBMISSION", "semesterId": semester})),
    )
    .await?;
    let coll = id_of(
        &call(
            client,
            hub,
            alice,
            Method::POST,
            &format!("{r}/guideline-collections"),
            Some(json!({"groupId": group, "semesterId": semester, "name": "Irányelvek"})),
        )
        .await?,
    )?;
    let mut guidelines = Vec::new();
    for (title, category, max) in [
        ("Fejlesztés", "WORK", 30),
        ("Rendezvény", "WORK", 20),
        ("Körvezetés", "RESPONSIBILITY", 20),
        ("Mentorálás", "RESPONSIBILITY", 10),
    ] {
        guidelines.push(id_of(
            &call(
                client,
                hub,
                alice,
                Method::POST,
                &format!("{r}/guideline-collections/{coll}/guidelines"),
                Some(
                    json!({"title": title, "category": category, "maxPerMember": max,
                            "maxPerGuideline": 10000}),
                ),
            )
            .await?,
        )?);
    }
    let scoreboard = id_of(
        &call(
            client,
            hub,
            alice,
            Method::POST,
            &format!("{r}/scoreboards"),
            Some(json!({"groupId": group, "semesterId": semester})),
        )
        .await?,
    )?;
    // Two requests per member, a few at a time.
    let cells: Vec<(String, String, i64)> = people
        .iter()
        .enumerate()
        .flat_map(|(i, m)| {
            [
                (m.clone(), guidelines[i % 2].clone(), 5 + (i % 10) as i64),
                (m.clone(), guidelines[2 + i % 2].clone(), 1 + (i % 5) as i64),
            ]
        })
        .collect();
    for chunk in cells.chunks(4) {
        futures::future::try_join_all(chunk.iter().map(|(m, g, p)| {
            let path = format!("{r}/scoreboards/{scoreboard}/point-requests/{m}/{g}");
            async move {
                call(
                    client,
                    hub,
                    alice,
                    Method::PUT,
                    &path,
                    Some(json!({"points": p})),
                )
                .await
            }
        }))
        .await?;
    }
    Ok(BigGroup { group, scoreboard })
}

/// The CSRF token the hub binds to this browser's cookie and session, read from a signed-in
/// page's forms as a browser's htmx would take it.
async fn csrf_token(client: &reqwest::Client, hub: &str, cookie: &str) -> anyhow::Result<String> {
    let page = client
        .get(format!("{hub}/"))
        .header("cookie", cookie)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    const FIELD: &str = r#"name="csrf" value=""#;
    let start = page
        .find(FIELD)
        .context("the home page has no CSRF field: is the session cookie accepted?")?
        + FIELD.len();
    let len = page[start..].find('"').context("unterminated CSRF field")?;
    Ok(page[start..start + len].to_string())
}

fn render(args: &WebArgs, load: &str, rows: &[Row], first: &[(String, usize)]) -> String {
    let mut s = format!(
        "{HEADER}\n\nServer-rendered pages of the hub over a hub and two workers (`pek local`: \
         the hub and both workers on their own loopback listeners, each realm with its own \
         database, the hub reaching the workers over HTTP), signed in as Bob (groups in all three realms); \
         the big group's pages as Alice, the hub realm's GOD: a group of {BIG_GROUP} members (each a \
         person signed in once through the development sign-in, with a profile; six family names \
         shared), 4 guidelines and a scoreboard with two requests per member.\n\n\
         Command ({profile}, from the repository root; it starts and removes its own \
         PostgreSQL):\n\n```\n{command}\n```\n\n\
         Load average (1/5/15 min) when the run started: {load}\n\n\
         | Page | Requests | req/s | p50 ms | p99 ms | server CPU ms/page | bytes |\n|---|---:|---:|---:|---:|---:|---:|\n",
        profile = if cfg!(debug_assertions) {
            "debug build: the test build's binary, whose figures bound a release build's"
        } else {
            "release build"
        },
        command = if cfg!(debug_assertions) {
            format!(
                "cargo test --workspace --locked --no-run   # builds target/debug/pek-bench\n\
                 target/debug/pek-bench web --concurrency {}",
                args.concurrency
            )
        } else {
            format!(
                "cargo run --release -p pek-bench -- web --concurrency {}",
                args.concurrency
            )
        },
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.1} | {} |\n",
            r.page, r.requests, r.rps, r.p50_ms, r.p99_ms, r.cpu_ms, r.bytes
        ));
    }
    let total: usize = first.iter().map(|(_, n)| n).sum();
    s.push_str(
        "\nFirst visit (nothing cached), bytes on the wire:\n\n| What | bytes |\n|---|---:|\n",
    );
    for (what, n) in first {
        s.push_str(&format!("| {what} | {n} |\n"));
    }
    s.push_str(&format!("| **total** | **{total}** |\n"));
    let worst = rows.iter().map(|r| r.p99_ms).fold(0.0, f64::max);
    let worst_cpu = rows.iter().map(|r| r.cpu_ms).fold(0.0, f64::max);
    s.push_str(&format!(
        "\n- p99 ≤ 50 ms on loopback: {} (worst page p99 {worst:.2} ms; server CPU per page at most \
         {worst_cpu:.1} ms).\n\
         - First page load ≤ 100 KB compressed including assets: {} ({:.1} KB; pages, \
         style sheet and script gzip-compressed by the hub, htmx ahead of time; assets \
         under content-hashed names, `Cache-Control: immutable`).\n\
         - {} page loads in flight (closed loop), {} s warm-up then {} s measured per page; \
         latency is measured by the load generator on loopback, so it includes the client's \
         own time; the load generator, the hub, both workers and PostgreSQL share this \
         machine's cores.\n",
        if worst <= 50.0 { "met" } else { "**missed**" },
        if total <= 100 * 1024 {
            "met"
        } else {
            "**missed**"
        },
        total as f64 / 1024.0,
        args.concurrency,
        args.warmup,
        args.duration,
    ));
    s
}
