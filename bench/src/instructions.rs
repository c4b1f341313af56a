//! `pek-bench hub-instructions`: what the hub spends on one request, in instructions
//! counted by callgrind. On a shared, loaded machine wall-clock and CPU-time figures move
//! with whatever else runs; the number of instructions the hub executes for a request
//! does not, so this is the figure to compare builds by (before and after a change).
//!
//! The hub runs as its own `pek serve` process under `valgrind --tool=callgrind` (the
//! binary given, best an optimised build); a real worker (`pek` in worker mode, in this
//! process, its own database) answers the forwarded calls, and stand-in workers (an
//! empty page at once) the fan-outs. Each case: warm-up requests (token caches,
//! connection pools), the counters zeroed, `--requests` requests one after another over
//! one keep-alive connection, the counters dumped; the figure is the dump's total
//! divided by the requests. The hub's own background work (health checks, registry
//! reloads) is pushed out of the window by long intervals.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::{Connection, PgConnection};

use crate::common::{write_section, BenchHub};
use pek::config::{DbArgs, Mode, ServeArgs};
use pek::realm::{self, RealmId, Registration};

#[derive(Debug, Clone, clap::Args)]
pub struct HubInstructionsArgs {
    /// The hub builds to count, `label=path` (or a path), comma-separated, e.g.
    /// `before=/tmp/pek-before,after=target/profiling/pek`. Each runs every case.
    #[arg(long, value_delimiter = ',', required = true)]
    pub pek: Vec<String>,
    /// Extra environment of one build's hub, `label:KEY=VALUE` (repeatable), e.g.
    /// `h2:PEK_BFF_WORKER_HTTP2=true` to count the same binary with another setting.
    #[arg(long)]
    pub hub_env: Vec<String>,
    /// Requests counted per case.
    #[arg(long, default_value_t = 200)]
    pub requests: u32,
    /// Uncounted requests before each case.
    #[arg(long, default_value_t = 20)]
    pub warmup: u32,
    /// Fan-out widths to count (realms the caller is in), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    pub widths: Vec<u32>,
    /// Identical requests sent at once in the concurrent fan-out case (0: skip it).
    #[arg(long, default_value_t = 10)]
    pub concurrent: u32,
    #[arg(long, default_value = "BENCHMARKS.md")]
    pub output: PathBuf,
    #[arg(long)]
    pub no_write: bool,
}

/// One case: what is asked, of whom, how many at once.
struct Case {
    label: String,
    path: String,
    token: String,
    /// Requests in flight together (identical ones).
    at_once: u32,
    /// The answer must be a complete merge (`partial: false`).
    complete: bool,
}

pub async fn hub_instructions(args: HubInstructionsArgs) -> anyhow::Result<()> {
    let builds: Vec<(String, PathBuf)> = args
        .pek
        .iter()
        .map(|spec| match spec.split_once('=') {
            Some((l, p)) => (l.to_string(), PathBuf::from(p)),
            None => (spec.clone(), PathBuf::from(spec)),
        })
        .collect();
    for (_, p) in &builds {
        anyhow::ensure!(p.is_file(), "{} is not a file", p.display());
    }
    let mut hub_env: Vec<(String, String, String)> = Vec::new();
    for spec in &args.hub_env {
        let parsed = spec
            .split_once(':')
            .and_then(|(l, kv)| kv.split_once('=').map(|(k, v)| (l, k, v)));
        let Some((label, key, value)) = parsed else {
            anyhow::bail!("--hub-env {spec}: expected label:KEY=VALUE");
        };
        anyhow::ensure!(
            builds.iter().any(|(l, _)| l == label),
            "--hub-env {spec}: no build is labelled {label}"
        );
        hub_env.push((label.into(), key.into(), value.into()));
    }
    anyhow::ensure!(
        Command::new("valgrind")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
        "valgrind is missing (Debian: apt-get install valgrind)"
    );
    let load_avg = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into());

    let base = BenchHub::start().await?;
    let signer = &base.signer;

    // A real worker for the forwarded calls, its realm administered by `god`.
    let wdb = base.pg.create_database("pek_bench_worker").await?;
    let forward_realm = RealmId::parse("bench-w")?;
    let serve = ServeArgs {
        listen: "127.0.0.1:0".parse()?,
        realm_id: Some(forward_realm.to_string()),
        jwt_public_key_file: Some(base.keyfile.clone()),
        ..ServeArgs::defaults(DbArgs {
            database_url: wdb.app_url.clone(),
            migration_database_url: Some(wdb.owner_url.clone()),
            mode: Mode::Worker,
        })
    };
    let (wstate, wrouter) = pek::app::build(&serve).await?;
    let worker_url = crate::federation::serve_on_loopback(wrouter).await?;
    realm::ensure_local(&wstate.db, &forward_realm, "bench", Some(base.god)).await?;
    let realm_token = signer.issue_to(
        base.god,
        &pek::auth::realm_audience(signer.audience(), forward_realm.as_str()),
        3600,
        None,
    )?;
    let group =
        crate::federation::create_groups(&worker_url, &forward_realm, &realm_token, 30).await?;

    // Stand-in workers for the fan-outs, and one caller per width.
    let widest = args.widths.iter().copied().max().unwrap_or(0);
    let mut realms = vec![(forward_realm.clone(), worker_url.clone())];
    for i in 0..widest {
        let realm = RealmId::parse(&format!("fan-{i:02}"))?;
        let url = crate::federation::serve_on_loopback(crate::federation::stand_in_worker(
            Duration::ZERO,
        ))
        .await?;
        realms.push((realm, url));
    }
    let mut g = base.db.global().await?;
    for (realm, endpoint) in &realms {
        realm::register(
            &mut g,
            realm,
            &Registration {
                display_name: realm.to_string().try_into()?,
                endpoint: endpoint.clone().try_into()?,
                version: None,
                owner_uid: None,
                providers: None,
            },
        )
        .await?;
    }
    let mut callers = Vec::new();
    for &w in &args.widths {
        callers.push((
            w,
            pek::profile::upsert_user(&mut g, &format!("fan-{w}")).await?,
        ));
    }
    g.commit().await?;
    // The federation table as the workers' reports would leave it.
    let mut owner = PgConnection::connect(&base.dbs.owner_url).await?;
    let mut members = vec![(base.god, forward_realm.clone())];
    for (w, user) in &callers {
        for (realm, _) in realms.iter().skip(1).take(*w as usize) {
            members.push((*user, realm.clone()));
        }
    }
    for (user, realm) in &members {
        sqlx::query("INSERT INTO realm_members (user_id, realm_id) VALUES ($1, $2)")
            .bind(user)
            .bind(realm.as_str())
            .execute(&mut owner)
            .await?;
    }
    owner.close().await?;

    let god_token = signer.issue(base.god, 3600)?;
    let mut cases = vec![
        Case {
            label: "forward: GET one group".into(),
            path: format!("/api/v1/realms/{forward_realm}/groups/{group}"),
            token: god_token.clone(),
            at_once: 1,
            complete: false,
        },
        Case {
            label: "forward: group search, a page of 20".into(),
            path: format!("/api/v1/realms/{forward_realm}/groups?q=bench%20group&limit=20"),
            token: god_token.clone(),
            at_once: 1,
            complete: false,
        },
    ];
    for (w, user) in &callers {
        cases.push(Case {
            label: format!("fan-out: group search, caller in {w} realm(s)"),
            path: "/api/v1/groups?q=b".into(),
            token: signer.issue(*user, 3600)?,
            at_once: 1,
            complete: true,
        });
    }
    if args.concurrent > 1 {
        if let Some((w, user)) = callers.iter().find(|(w, _)| *w == 8).or(callers.last()) {
            cases.push(Case {
                label: format!(
                    "fan-out to {w}: {} identical requests at once (per request)",
                    args.concurrent
                ),
                path: "/api/v1/groups?q=b".into(),
                token: signer.issue(*user, 3600)?,
                at_once: args.concurrent,
                complete: true,
            });
        }
    }

    let private = base.workdir.join("jwt-private.pem");
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&private)?;
        f.write_all(signer.private_pem().as_bytes())?;
    }

    // figures[case][build]
    let mut figures: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    for (label, bin) in &builds {
        let out_dir = base.workdir.join(format!("callgrind-{label}"));
        std::fs::create_dir_all(&out_dir)?;
        let env: Vec<(&str, &str)> = hub_env
            .iter()
            .filter(|(l, ..)| l == label)
            .map(|(_, k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut hub = ProfiledHub::start(bin, &out_dir, &base, &private, &env).await?;
        println!(
            "hub {label} ({}) under callgrind at {}",
            bin.display(),
            hub.url
        );
        for (i, case) in cases.iter().enumerate() {
            let per_request = hub.count(case, args.warmup, args.requests).await?;
            println!(
                "  {:<62} {:>10.0} instructions/request",
                case.label, per_request
            );
            figures[i].push(per_request);
        }
        hub.stop();
    }

    let mut header = "| case |".to_string();
    let mut rule = "|---|".to_string();
    for (label, _) in &builds {
        header.push_str(&format!(" {label} |"));
        rule.push_str("---|");
    }
    if builds.len() == 2 {
        header.push_str(" change |");
        rule.push_str("---|");
    }
    let mut rows = Vec::new();
    for (case, f) in cases.iter().zip(&figures) {
        let mut row = format!("| {} |", case.label);
        for v in f {
            row.push_str(&format!(" {} |", thousands(*v)));
        }
        if let [a, b] = f[..] {
            row.push_str(&format!(" {:+.0} % |", (b / a - 1.0) * 100.0));
        }
        rows.push(row);
    }
    let table = format!("{header}\n{rule}\n{}", rows.join("\n"));
    println!("\n{table}");
    if !args.no_write {
        let widths: Vec<String> = args.widths.iter().map(u32::to_string).collect();
        let section = format!(
            "## BFF: hub instructions per request\n\n\
             `target/debug/pek-bench hub-instructions --pek {pek} --requests {n} --warmup \
             {warm} --widths {widths} --concurrent {conc}` (the `pek` binaries compared: \
             `label=path`; see *BFF: reading the figures* for which builds they were)\n\n\
             Instructions the hub process executes per request (user space only: the \
             kernel's socket work is not in them), counted by callgrind \
             (`valgrind --tool=callgrind`, counters zeroed after {warm} warm-up requests and \
             dumped after {n} counted ones, sent one after another over one keep-alive \
             connection; the identical-requests case sends its batches at once). A count, \
             not a time: repeatable on a loaded machine (load average {load_avg} when this \
             ran), unlike the timings above, which need a quiet machine. Forwarded calls go \
             to a real worker; fan-outs to stand-in workers that answer a page of three \
             groups at once, so the figures are the hub's own work per request.\n\n{table}\n",
            pek = args.pek.join(","),
            n = args.requests,
            warm = args.warmup,
            widths = widths.join(","),
            conc = args.concurrent,
        );
        write_section(
            &args.output,
            "## BFF: hub instructions per request",
            &section,
        )?;
        println!("updated {}", args.output.display());
    }
    Ok(())
}

fn thousands(v: f64) -> String {
    let s = format!("{:.0}", v);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A `pek serve` hub under callgrind.
struct ProfiledHub {
    child: Child,
    url: String,
    out_dir: PathBuf,
    http: reqwest::Client,
}

impl ProfiledHub {
    async fn start(
        bin: &Path,
        out_dir: &Path,
        base: &BenchHub,
        private: &Path,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new("valgrind")
            .arg("--tool=callgrind")
            .arg(format!(
                "--callgrind-out-file={}/callgrind.out",
                out_dir.display()
            ))
            .arg(bin)
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            // The production log filter (RUST_LOG unset): its per-request span counts.
            .env("PEK_MODE", "hub")
            .env("DATABASE_URL", &base.dbs.app_url)
            .env("PEK_NO_MIGRATE", "true")
            .env("PEK_LISTEN", format!("127.0.0.1:{port}"))
            // As deployed (the chart sets it): the Prometheus recorder counts every request.
            .env("PEK_METRICS_LISTEN", format!("127.0.0.1:{metrics_port}"))
            .env("PEK_JWT_PUBLIC_KEY_FILE", &base.keyfile)
            .env("PEK_JWT_PRIVATE_KEY_FILE", private)
            // Under callgrind everything is ~50× slower: no deadline may trip, and the
            // background work stays out of the counted window.
            .env("PEK_BFF_DEADLINE_MS", "120000")
            .env("PEK_HEALTH_INTERVAL_MS", "3600000")
            .env("PEK_REGISTRY_RELOAD_SECS", "3600")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting valgrind")?;
        let mut hub = ProfiledHub {
            child,
            url: format!("http://127.0.0.1:{port}"),
            out_dir: out_dir.to_path_buf(),
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .timeout(Duration::from_secs(300))
                .build()?,
        };
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            if let Some(status) = hub.child.try_wait()? {
                anyhow::bail!("the hub under callgrind exited at start: {status}");
            }
            if let Ok(r) = hub.http.get(format!("{}/readyz", hub.url)).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            anyhow::ensure!(Instant::now() < deadline, "the hub was not ready in 300 s");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Ok(hub)
    }

    async fn batch(&self, case: &Case) -> anyhow::Result<()> {
        let calls = (0..case.at_once).map(|_| async {
            let resp = self
                .http
                .get(format!("{}{}", self.url, case.path))
                .bearer_auth(&case.token)
                .send()
                .await?;
            let status = resp.status();
            let body: serde_json::Value = resp.json().await?;
            anyhow::ensure!(status.is_success(), "{}: {status} {body}", case.path);
            anyhow::ensure!(
                !case.complete || body["partial"] == false,
                "{}: partial answer {body}",
                case.path
            );
            Ok(())
        });
        for r in futures::future::join_all(calls).await {
            r?;
        }
        Ok(())
    }

    fn control(&self, flag: &str) -> anyhow::Result<()> {
        let out = Command::new("callgrind_control")
            .arg(flag)
            .arg(self.child.id().to_string())
            .stdout(Stdio::null())
            .output()
            .context("running callgrind_control")?;
        anyhow::ensure!(
            out.status.success(),
            "callgrind_control {flag}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }

    /// Instructions per request of `case`.
    async fn count(&mut self, case: &Case, warmup: u32, requests: u32) -> anyhow::Result<f64> {
        let batches = requests.div_ceil(case.at_once).max(1);
        for _ in 0..warmup.div_ceil(case.at_once).max(1) {
            self.batch(case).await?;
        }
        let before: Vec<PathBuf> = dumps(&self.out_dir)?;
        self.control("-z")?;
        for _ in 0..batches {
            self.batch(case).await?;
        }
        self.control("-d")?;
        let dump = dumps(&self.out_dir)?
            .into_iter()
            .find(|p| !before.contains(p))
            .context("callgrind wrote no dump")?;
        let text = std::fs::read_to_string(&dump)?;
        let total: u64 = text
            .lines()
            .find_map(|l| {
                l.strip_prefix("totals:")
                    .or_else(|| l.strip_prefix("summary:"))
            })
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("no totals in {}", dump.display()))?;
        Ok(total as f64 / f64::from(batches * case.at_once))
    }

    fn stop(&mut self) {
        // SIGTERM: valgrind writes its final dump and the hub shuts down.
        // SAFETY: signalling our own child process.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

impl Drop for ProfiledHub {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The callgrind dumps in `dir`.
fn dumps(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("callgrind.out"))
        })
        .collect();
    v.sort();
    Ok(v)
}
