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
}

const HEADER: &str = "## Web pages";

struct Row {
    page: String,
    requests: usize,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    bytes: usize,
}

/// Starts `pek local` on free ports; returns the child, the hub URL and Bob's token.
async fn start_local() -> anyhow::Result<(tokio::process::Child, String, String)> {
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
    let (mut hub, mut bob) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(120);
    while hub.is_none() || bob.is_none() {
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
    }
    // Keep draining its output so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, hub.unwrap_or_default(), bob.unwrap_or_default()))
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
    println!("Starting pek local (a hub and two workers)…");
    let (mut child, hub, bob) = start_local().await?;
    let result = measure(&args, &hub, &bob).await;
    if let Some(pid) = child.id() {
        // SIGTERM: pek local removes its PostgreSQL on the way out.
        unsafe {
            libc::kill(pid as i32, libc::SIGTERM);
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(20), child.wait()).await;
    let (rows, first_load) = result?;
    let section = render(&args, &rows, &first_load);
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
    hub: &str,
    bob: &str,
) -> anyhow::Result<(Vec<Row>, Vec<(String, usize)>)> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(args.concurrency as usize)
        .build()?;
    let secret = "0123456789abcdef0123456789abcdef";
    let cookie = format!("pek_session={bob}; pek_csrf={secret}");
    let page = vec![("cookie".to_string(), cookie.clone())];
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
    ];
    let mut rows = Vec::new();
    for (name, path, headers) in pages {
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
        let (lat, bytes) = load(
            &client,
            &url,
            headers,
            args.concurrency,
            Duration::from_secs(args.duration),
        )
        .await?;
        let elapsed = start.elapsed().as_secs_f64();
        rows.push(Row {
            page: name.to_string(),
            requests: lat.len(),
            rps: lat.len() as f64 / elapsed,
            p50_ms: percentile(&lat, 0.50),
            p99_ms: percentile(&lat, 0.99),
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

fn render(args: &WebArgs, rows: &[Row], first: &[(String, usize)]) -> String {
    let mut s = format!(
        "{HEADER}\n\nServer-rendered pages of the hub over a hub and two workers (`pek local`: \
         the hub and both workers on their own loopback listeners, each realm with its own \
         database, the hub reaching the workers over HTTP), signed in as Bob (groups in all three realms).\n\n\
         Command (release build, from the repository root; it starts and removes its own \
         PostgreSQL):\n\n```\ncargo run --release -p pek-bench -- web\n```\n\n\
         | Page | Requests | req/s | p50 ms | p99 ms | bytes |\n|---|---:|---:|---:|---:|---:|\n"
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {:.0} | {:.2} | {:.2} | {} |\n",
            r.page, r.requests, r.rps, r.p50_ms, r.p99_ms, r.bytes
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
    s.push_str(&format!(
        "\n- p99 ≤ 50 ms on loopback: {} (worst page p99 {worst:.2} ms).\n\
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
