//! `pek-bench fan-out` and `pek-bench forward`: the BFF's overhead.
//!
//! * fan-out: a hub whose caller is in 8 realms, each served by a stand-in worker that
//!   answers the group search after a fixed delay `d`; 200 clients search through the
//!   hub. Target: p99 ≤ d + 5 ms.
//! * forward: a single-realm call (GET one group; a group search page) to a real worker
//!   (`pek` in worker mode, its own database), directly, through nginx as a plain
//!   keep-alive reverse proxy (what a user would put in front of a worker instead), and
//!   through the hub (with its per-realm tokens), in rounds that rotate the three.
//!   Targets: the hub's p50 within 1.05× of nginx's, its CPU per request no more than
//!   nginx's.
//!
//! Hub, workers and the load generator share this machine; the load generator runs on
//! its own thread and runtime, like an external client.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::Path as AxPath;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::common::{phase, write_section, Phase};
use pek::auth::Signer;
use pek::config::{DbArgs, Mode, ServeArgs};
use pek::db::{self, Db};
use pek::realm::{self, RealmId, Registration};

#[derive(Debug, Clone, clap::Args)]
pub struct FanOutArgs {
    /// Stand-in workers (realms the caller is in).
    #[arg(long, default_value_t = 8)]
    pub workers: u32,
    /// Fixed answer delay of every worker, in milliseconds.
    #[arg(long, default_value_t = 20)]
    pub delay_ms: u64,
    /// Concurrent clients (closed loop: one request at a time each).
    #[arg(long, default_value_t = 200)]
    pub clients: u32,
    /// Measured seconds.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Unmeasured warm-up seconds.
    #[arg(long, default_value_t = 3)]
    pub warmup: u64,
    /// Who the clients are: `one` person (identical searches in flight together then
    /// share one call per realm) or `each` client a person of their own (nothing is
    /// shared: every request asks every realm).
    #[arg(long, value_enum, default_value = "each")]
    pub callers: Callers,
    /// Offered load in requests/s, spread evenly over the clients (each sends on its own
    /// schedule, never more than one at a time); comma-separated for several phases.
    /// 0 = closed loop (every client sends again as soon as it has its answer).
    #[arg(long, value_delimiter = ',', default_value = "250,500,1000,0")]
    pub rate: Vec<u32>,
    /// Markdown file to update.
    #[arg(long, default_value = "BENCHMARKS.md")]
    pub output: PathBuf,
    /// Print only; do not touch the Markdown file.
    #[arg(long)]
    pub no_write: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ForwardArgs {
    /// Concurrent clients; comma-separated for several rounds.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    pub clients: Vec<u32>,
    /// Measured seconds per phase.
    #[arg(long, default_value_t = 3)]
    pub duration: u64,
    /// Unmeasured warm-up seconds per phase.
    #[arg(long, default_value_t = 1)]
    pub warmup: u64,
    /// Rounds per case: each measures the direct call, the call through nginx and the
    /// call through the hub once, in rotating order; the verdict is on the median of the
    /// rounds' ratios.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
    /// CPU layouts to measure: `shared` (every process may run on every core), `split`
    /// (the hub alone on the last core, worker, its database and the clients on the
    /// others — the hub as its own deployment) and `apart` (hub on the last core, the
    /// clients on the one before, worker and its database on the rest — each side on
    /// its own, as separate machines would be; needs 3 or more CPUs). Comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "shared,split,apart")]
    pub layout: Vec<Layout>,
    /// Who the clients are: `each` client a person of their own (the hop alone: the hub
    /// shares nothing between them) or `one` person for all (identical GETs in flight
    /// together then share one call to the worker).
    #[arg(long, value_enum, default_value = "each")]
    pub callers: Callers,
    /// Calls to measure: `one` (GET one group: the cheapest realm call, so the hub's
    /// share is largest) and `search` (a page of 20 of 1,000 groups by name prefix, as
    /// the group search box asks). Comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "one,search")]
    pub call: Vec<Call>,
    #[arg(long, default_value = "BENCHMARKS.md")]
    pub output: PathBuf,
    #[arg(long)]
    pub no_write: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Callers {
    One,
    Each,
}

impl Callers {
    /// How many people `clients` clients are.
    fn people(self, clients: u32) -> usize {
        match self {
            Callers::One => 1,
            Callers::Each => clients.max(1) as usize,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Callers::One => "one person for all clients",
            Callers::Each => "each client a person of their own",
        }
    }

    fn arg(self) -> &'static str {
        match self {
            Callers::One => "one",
            Callers::Each => "each",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Layout {
    Shared,
    Split,
    Apart,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Call {
    One,
    Search,
}

impl Call {
    fn describe(self) -> &'static str {
        match self {
            Call::One => "GET one group",
            Call::Search => "group search, a page of 20 of 1,000",
        }
    }
}

impl Layout {
    fn min_cpus(self) -> usize {
        match self {
            Layout::Shared => 1,
            Layout::Split => 2,
            Layout::Apart => 3,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Layout::Shared => "shared cores",
            Layout::Split => "hub on its own core",
            Layout::Apart => "hub, clients and worker on cores of their own",
        }
    }
}

/// Pins threads and processes to CPUs for one [`Layout`]. Hub threads are told apart by
/// their name, Postgres processes by their postmaster.
struct Pinning {
    cpus: usize,
    hub_postmaster: i32,
    /// None when the workers have no database (the fan-out's stand-ins).
    worker_postmaster: Option<i32>,
    /// nginx's master process (its workers are its children): it stands where the hub
    /// stands, so it gets the hub's CPUs and counts on the hub's side.
    nginx_master: Option<i32>,
}

impl Pinning {
    /// Pins hub, worker and both databases; returns the CPUs the load generator is to
    /// run on (it starts a thread per phase, so pins itself).
    fn apply(&self, layout: Layout) -> anyhow::Result<Vec<usize>> {
        let (hub, rest, load) = cpu_sets(layout, self.cpus)?;
        for (tid, name) in own_threads()? {
            let cpus = if name.starts_with(HUB_THREAD) {
                &hub
            } else {
                &rest
            };
            set_affinity(tid, cpus)?;
        }
        // New backends inherit the postmaster's mask; existing ones are set one by one.
        for pid in postgres_processes(self.hub_postmaster)?
            .into_iter()
            .chain(children_of(self.nginx_master)?)
        {
            set_affinity(pid, &hub)?;
        }
        for pid in children_of(self.worker_postmaster)? {
            set_affinity(pid, &rest)?;
        }
        Ok(load)
    }
}

/// CPUs of (hub and its database, worker and its database, load generator).
fn cpu_sets(layout: Layout, cpus: usize) -> anyhow::Result<(Vec<usize>, Vec<usize>, Vec<usize>)> {
    anyhow::ensure!(
        cpus >= layout.min_cpus(),
        "the {layout:?} layout needs {} or more CPUs",
        layout.min_cpus()
    );
    let all: Vec<usize> = (0..cpus).collect();
    Ok(match layout {
        Layout::Shared => (all.clone(), all.clone(), all),
        Layout::Split => {
            let rest: Vec<usize> = (0..cpus - 1).collect();
            (vec![cpus - 1], rest.clone(), rest)
        }
        Layout::Apart => (vec![cpus - 1], (0..cpus - 2).collect(), vec![cpus - 2]),
    })
}

const HUB_THREAD: &str = "bench-hub";
const LOAD_THREAD: &str = "bench-load";

/// CPU time the kernel has counted for each side, in nanoseconds.
#[derive(Clone, Copy)]
struct Cpu {
    hub: u64,
    worker: u64,
}

impl Pinning {
    /// Hub side: hub threads and the hub's database; worker side: every other thread of
    /// this process but the load generator's, and the worker's database.
    fn cpu(&self) -> anyhow::Result<Cpu> {
        let mut cpu = Cpu { hub: 0, worker: 0 };
        for (tid, name) in own_threads()? {
            let ns = on_cpu_ns(&format!("/proc/self/task/{tid}/schedstat"));
            if name.starts_with(HUB_THREAD) {
                cpu.hub += ns;
            } else if !name.starts_with(LOAD_THREAD) {
                cpu.worker += ns;
            }
        }
        for pid in postgres_processes(self.hub_postmaster)?
            .into_iter()
            .chain(children_of(self.nginx_master)?)
        {
            cpu.hub += on_cpu_ns(&format!("/proc/{pid}/schedstat"));
        }
        for pid in children_of(self.worker_postmaster)? {
            cpu.worker += on_cpu_ns(&format!("/proc/{pid}/schedstat"));
        }
        Ok(cpu)
    }
}

/// First field of a `schedstat` file: time spent on the CPU (0 if the task is gone).
fn on_cpu_ns(path: &str) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

fn set_affinity(pid: i32, cpus: &[usize]) -> anyhow::Result<()> {
    // SAFETY: cpu_set_t is plain data; sched_setaffinity reads `size` bytes of it.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        libc::sched_setaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        // A thread or backend that exited in the meantime needs no pinning.
        if e.raw_os_error() != Some(libc::ESRCH) {
            return Err(anyhow::anyhow!("pinning {pid} to CPUs {cpus:?}: {e}"));
        }
    }
    Ok(())
}

fn own_threads() -> anyhow::Result<Vec<(i32, String)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc/self/task")? {
        let entry = entry?;
        let Ok(tid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let name = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        out.push((tid, name.trim().to_string()));
    }
    Ok(out)
}

/// Mean time for one thread to wake another and be woken back (a byte each way through
/// two pipes), with the threads pinned to CPUs `a` and `b`: what each hop between
/// processes costs before any work is done. Across cores it includes waking an idle CPU.
fn wakeup_round_trip_us(a: usize, b: usize, trips: u32) -> anyhow::Result<f64> {
    use std::io::{Read, Write};
    let (mut there_rx, mut there_tx) = std::io::pipe()?;
    let (mut back_rx, mut back_tx) = std::io::pipe()?;
    let echo = std::thread::spawn(move || -> anyhow::Result<()> {
        set_affinity(0, &[b])?;
        let mut byte = [0u8];
        for _ in 0..trips {
            there_rx.read_exact(&mut byte)?;
            back_tx.write_all(&byte)?;
        }
        Ok(())
    });
    let timed = (|| -> anyhow::Result<Duration> {
        set_affinity(0, &[a])?;
        let mut byte = [0u8];
        let start = Instant::now();
        for _ in 0..trips {
            there_tx.write_all(&byte)?;
            back_rx.read_exact(&mut byte)?;
        }
        Ok(start.elapsed())
    })();
    // Unpinned again: the caller may run anywhere afterwards.
    let all: Vec<usize> =
        (0..std::thread::available_parallelism().map_or(1, usize::from)).collect();
    set_affinity(0, &all)?;
    drop(there_tx);
    echo.join()
        .map_err(|_| anyhow::anyhow!("wake-up echo thread panicked"))??;
    Ok(timed?.as_secs_f64() * 1e6 / f64::from(trips))
}

/// [`postgres_processes`] of a process that may not be there.
fn children_of(process: Option<i32>) -> anyhow::Result<Vec<i32>> {
    process.map_or(Ok(Vec::new()), postgres_processes)
}

/// A process and its children (a postmaster and its backends, nginx and its workers).
fn postgres_processes(postmaster: i32) -> anyhow::Result<Vec<i32>> {
    let mut out = vec![postmaster];
    for entry in std::fs::read_dir("/proc")? {
        let entry = entry?;
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`; comm may contain spaces, so split after the last ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<i32>().ok());
        if ppid == Some(postmaster) {
            out.push(pid);
        }
    }
    Ok(out)
}

fn postmaster_pid(pg: &localpg::LocalPostgres) -> anyhow::Result<i32> {
    let file = pg.data_dir().join("postmaster.pid");
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    text.lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .with_context(|| format!("no pid in {}", file.display()))
}

/// What one load phase measured: every latency in µs, the measured time, and with a
/// probe the CPU each side used meanwhile.
#[derive(Default)]
struct Sample {
    lat: Vec<u32>,
    elapsed: Duration,
    cpu: Option<Cpu>,
}

impl Sample {
    fn phase(&self, label: &str) -> Phase {
        phase(label, self.lat.clone(), self.elapsed)
    }

    /// The phases of several rounds as one.
    fn pooled(samples: &[Sample]) -> Sample {
        let mut all = Sample::default();
        for s in samples {
            all.lat.extend_from_slice(&s.lat);
            all.elapsed += s.elapsed;
            all.cpu = match (all.cpu, s.cpu) {
                (None, c) => c,
                (Some(a), Some(b)) => Some(Cpu {
                    hub: a.hub + b.hub,
                    worker: a.worker + b.worker,
                }),
                (Some(_), None) => None,
            };
        }
        all
    }

    /// Worker's and hub's CPU per answered request, in µs.
    fn cpu_per_request(&self) -> (f64, f64) {
        let n = self.lat.len().max(1) as f64;
        self.cpu
            .map(|c| (c.worker as f64 / n / 1e3, c.hub as f64 / n / 1e3))
            .unwrap_or((f64::NAN, f64::NAN))
    }
}

/// Closed-loop (or, with `rate`, open-loop) load on `url` from its own thread and runtime.
struct Load {
    url: String,
    /// One per person; client `i` sends `tokens[i % len]`.
    tokens: Vec<String>,
    clients: u32,
    rate: u32,
    warmup: Duration,
    duration: Duration,
    check: fn(&[u8]) -> Result<(), String>,
    /// CPUs the load generator runs on; empty: wherever its parent thread may.
    cpus: Vec<usize>,
}

impl Load {
    /// Runs the phase; with `probe`, also the CPU each side used while it was measured.
    async fn run(self, probe: Option<&Pinning>) -> anyhow::Result<Sample> {
        // Awaited, not joined: a blocked runtime thread would be taken from the servers.
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (measuring_tx, measuring) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name(LOAD_THREAD.into())
            .spawn(move || {
                let _ = tx.send(self.on_this_thread(measuring_tx));
            })?;
        let before = match probe {
            Some(p) if measuring.await.is_ok() => Some(p.cpu()?),
            _ => None,
        };
        let (lat, elapsed) = rx
            .await
            .map_err(|_| anyhow::anyhow!("load generator thread panicked"))??;
        let cpu = match (probe, before) {
            (Some(p), Some(b)) => {
                let a = p.cpu()?;
                Some(Cpu {
                    hub: a.hub.saturating_sub(b.hub),
                    worker: a.worker.saturating_sub(b.worker),
                })
            }
            _ => None,
        };
        Ok(Sample { lat, elapsed, cpu })
    }

    /// Runs the phase on the calling thread; `measuring` fires when warm-up ends.
    fn on_this_thread(
        self,
        measuring: tokio::sync::oneshot::Sender<()>,
    ) -> anyhow::Result<(Vec<u32>, Duration)> {
        let Load {
            url,
            tokens,
            clients,
            rate,
            warmup,
            duration,
            check,
            cpus,
        } = self;
        if !cpus.is_empty() {
            set_affinity(0, &cpus)?;
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(clients as usize)
                .timeout(Duration::from_secs(30))
                .build()?;
            anyhow::ensure!(!tokens.is_empty(), "no caller's token");
            let run = |d: Duration| {
                let (client, url, tokens) = (client.clone(), url.clone(), tokens.clone());
                async move {
                    let deadline = Instant::now() + d;
                    let tasks: Vec<_> = (0..clients)
                        .map(|i| {
                            let token = tokens[i as usize % tokens.len()].clone();
                            let (client, url) = (client.clone(), url.clone());
                            tokio::spawn(async move {
                                let mut lat = Vec::new();
                                let mut ticker = (rate > 0).then(|| {
                                    let period = Duration::from_secs_f64(
                                        f64::from(clients) / f64::from(rate),
                                    );
                                    // Spread the clients' first sends over one period.
                                    let offset = period.mul_f64(rand::random::<f64>());
                                    let mut t = tokio::time::interval_at(
                                        tokio::time::Instant::now() + offset,
                                        period,
                                    );
                                    t.set_missed_tick_behavior(
                                        tokio::time::MissedTickBehavior::Delay,
                                    );
                                    t
                                });
                                while Instant::now() < deadline {
                                    if let Some(t) = ticker.as_mut() {
                                        t.tick().await;
                                    }
                                    let t = Instant::now();
                                    let r = client.get(&url).bearer_auth(&token).send().await;
                                    let body = match r {
                                        Ok(r) if r.status().is_success() => {
                                            r.bytes().await.map_err(|e| e.to_string())?
                                        }
                                        Ok(r) => return Err(format!("HTTP {}", r.status())),
                                        Err(e) => return Err(e.to_string()),
                                    };
                                    check(&body)?;
                                    lat.push(
                                        u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX),
                                    );
                                }
                                Ok::<_, String>(lat)
                            })
                        })
                        .collect();
                    let mut all = Vec::new();
                    for t in tasks {
                        all.extend(t.await?.map_err(|e| anyhow::anyhow!("{url}: {e}"))?);
                    }
                    anyhow::Ok(all)
                }
            };
            run(warmup).await?;
            let _ = measuring.send(());
            let start = Instant::now();
            let lat = run(duration).await?;
            Ok((lat, start.elapsed()))
        })
    }
}

fn not_partial(body: &[u8]) -> Result<(), String> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    if v["partial"] == serde_json::Value::Bool(false) {
        Ok(())
    } else {
        Err(format!(
            "partial answer: {}",
            String::from_utf8_lossy(body)
                .chars()
                .take(300)
                .collect::<String>()
        ))
    }
}

fn any_ok(_: &[u8]) -> Result<(), String> {
    Ok(())
}

pub(crate) async fn serve_on_loopback(router: axum::Router) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(url)
}

/// A stand-in worker: answers a realm's group search with three groups after `delay`.
pub(crate) fn stand_in_worker(delay: Duration) -> axum::Router {
    use axum::routing::get;
    axum::Router::new()
        .route(
            "/api/v1/realms/{realm}/groups",
            get(move |AxPath(realm): AxPath<String>| async move {
                tokio::time::sleep(delay).await;
                let items: Vec<_> = (0..3)
                    .map(|i| {
                        serde_json::json!({
                            "id": Uuid::new_v4(), "realmId": realm, "parentId": null,
                            "name": format!("{realm} group {i}"), "purpose": "CIRCLE",
                            "description": "", "archived": false,
                            "createdBy": Uuid::nil(), "ownerId": Uuid::nil(),
                            "createdAt": "2026-11-23T00:00:00Z", "updatedAt": "2026-11-23T00:00:00Z",
                        })
                    })
                    .collect();
                axum::Json(serde_json::json!({ "items": items }))
            }),
        )
        .route("/readyz", get(|| async { "ok" }))
}

/// The runtime a hub runs on, apart from the rest of the benchmark, as its own process
/// would: its threads are named [`HUB_THREAD`], so its CPU can be told apart (and pinned).
/// Shut down without waiting when dropped (a runtime must not be dropped inside another).
struct HubRuntime(Option<tokio::runtime::Runtime>);

impl HubRuntime {
    /// A hub ([`hub_with`]) started on a runtime of its own.
    async fn start(
        people: usize,
        workers: Vec<(RealmId, String)>,
        signer: std::sync::Arc<Signer>,
        keyfile: PathBuf,
    ) -> anyhow::Result<(Self, Hub)> {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let rt = HubRuntime(Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(cpus)
                .thread_name(HUB_THREAD)
                .enable_all()
                .build()?,
        ));
        let handle = rt.0.as_ref().context("hub runtime")?.handle().clone();
        // Started from a thread outside both runtimes: everything it spawns lands on the
        // hub's runtime.
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name(HUB_THREAD.into())
            .spawn(move || {
                let _ = tx.send(handle.block_on(hub_with(people, &workers, &signer, keyfile)));
            })?;
        let hub = rx.await.context("starting the hub")??;
        Ok((rt, hub))
    }
}

impl Drop for HubRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

struct Hub {
    url: String,
    /// The callers' hub tokens, one per person, in the order of `users`.
    tokens: Vec<String>,
    users: Vec<Uuid>,
    _pg: localpg::LocalPostgres,
    _state: pek::http::AppState,
}

/// A hub on its own throwaway Postgres with `people` callers, each in every given
/// worker realm.
async fn hub_with(
    people: usize,
    workers: &[(RealmId, String)],
    signer: &Signer,
    keyfile: PathBuf,
) -> anyhow::Result<Hub> {
    let pg = tokio::task::spawn_blocking(localpg::LocalPostgres::start).await??;
    let dbs = pg.create_database("pek_bench_hub").await?;
    db::migrate(&dbs.owner_url, Mode::Hub, Some(localpg::APP_ROLE))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let hub_db = Db::connect(&dbs.app_url, 5).await?;
    let mut g = hub_db.global().await?;
    let mut users = Vec::with_capacity(people);
    for i in 0..people.max(1) {
        users.push(pek::profile::upsert_user(&mut g, &format!("bench-user-{i}")).await?);
    }
    for (realm, endpoint) in workers {
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
    g.commit().await?;
    // The federation table as workers' reports would leave it.
    let mut owner = PgConnection::connect(&dbs.owner_url).await?;
    for (realm, _) in workers {
        sqlx::query(
            "INSERT INTO realm_members (user_id, realm_id) SELECT u, $2 FROM unnest($1::uuid[]) u",
        )
        .bind(&users)
        .bind(realm.as_str())
        .execute(&mut owner)
        .await?;
    }
    owner.close().await?;

    // The hub signs with the bench's key, which the workers trust: the tokens it mints
    // for a realm when it forwards a call verify there.
    let private = keyfile.with_extension("private.pem");
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&private)
            .with_context(|| format!("writing {}", private.display()))?;
        f.write_all(signer.private_pem().as_bytes())?;
    }
    let serve = ServeArgs {
        listen: "127.0.0.1:0".parse()?,
        no_migrate: true,
        jwt_public_key_file: Some(keyfile),
        jwt_private_key_file: Some(private),
        ..ServeArgs::defaults(DbArgs {
            database_url: dbs.app_url.clone(),
            migration_database_url: Some(dbs.owner_url.clone()),
            mode: Mode::Hub,
        })
    };
    let (state, router) = pek::app::build(&serve).await?;
    let url = serve_on_loopback(router).await?;
    Ok(Hub {
        url,
        tokens: users
            .iter()
            .map(|u| signer.issue(*u, 3600))
            .collect::<Result<_, _>>()?,
        users,
        _pg: pg,
        _state: state,
    })
}

fn row(p: &Phase) -> String {
    format!(
        "| {} | {} | {:.0} | {:.2} | {:.2} |",
        p.name, p.requests, p.rps, p.p50_ms, p.p99_ms
    )
}

pub async fn fan_out(args: FanOutArgs) -> anyhow::Result<()> {
    let delay = Duration::from_millis(args.delay_ms);
    let mut workers = Vec::new();
    for i in 0..args.workers {
        let realm = RealmId::parse(&format!("bench-{i}"))?;
        workers.push((realm, serve_on_loopback(stand_in_worker(delay)).await?));
    }
    let signer = Signer::generate("pek-hub", "pek")?;
    let keyfile = std::env::temp_dir().join(format!("pek-bench-jwt-{}.pem", std::process::id()));
    std::fs::write(&keyfile, signer.public_pem())?;
    let signer = std::sync::Arc::new(signer);
    let (hub_rt, hub) = HubRuntime::start(
        args.callers.people(args.clients),
        workers.clone(),
        signer.clone(),
        keyfile,
    )
    .await?;
    // CPU per request of the hub (its threads and its database) and of everything else
    // but the load generator (the stand-ins).
    let probe = Pinning {
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
        hub_postmaster: postmaster_pid(&hub._pg)?,
        worker_postmaster: None,
        nginx_master: None,
    };
    println!(
        "fan-out: {} stand-in workers answering after {} ms, {} clients ({}), {} s",
        args.workers,
        args.delay_ms,
        args.clients,
        args.callers.describe(),
        args.duration
    );
    let (w, d) = (
        Duration::from_secs(args.warmup),
        Duration::from_secs(args.duration),
    );
    let load = |url: String, rate: u32, check: fn(&[u8]) -> Result<(), String>| Load {
        url,
        tokens: hub.tokens.clone(),
        clients: args.clients,
        rate,
        warmup: w,
        duration: d,
        check,
        cpus: Vec::new(),
    };
    let direct = load(
        format!("{}/api/v1/realms/bench-0/groups?q=b", workers[0].1),
        0,
        any_ok,
    )
    .run(Some(&probe))
    .await?;
    let mut phases = vec![(
        direct.phase("one stand-in worker, directly, closed loop"),
        direct.cpu_per_request(),
    )];
    for &rate in &args.rate {
        let label = if rate == 0 {
            format!("hub fan-out to {}, closed loop", args.workers)
        } else {
            format!("hub fan-out to {}, offered {rate} req/s", args.workers)
        };
        let url = format!("{}/api/v1/groups?q=b", hub.url);
        let sample = load(url, rate, not_partial).run(Some(&probe)).await?;
        phases.push((sample.phase(&label), sample.cpu_per_request()));
    }
    drop(hub_rt);
    let rows: Vec<String> = phases
        .iter()
        .map(|(p, (rest, hub))| {
            format!(
                "{} {:.1} | {hub:.0} | {rest:.0} |",
                row(p),
                p.p99_ms - args.delay_ms as f64
            )
        })
        .collect();
    let table = format!(
        "| phase | requests | req/s | p50 ms | p99 ms | p99 − d ms | hub CPU µs/req | stand-ins CPU µs/req |\n|---|---|---|---|---|---|---|---|\n{}",
        rows.join("\n")
    );
    let best = phases[1..]
        .iter()
        .map(|(p, _)| p)
        .filter(|p| p.p99_ms - args.delay_ms as f64 <= 5.0)
        .map(|p| p.rps)
        .fold(0.0, f64::max);
    let verdict = if best > 0.0 {
        format!("met up to {best:.0} req/s")
    } else {
        "missed at every rate".to_string()
    };
    println!("{table}\ntarget p99 ≤ d + 5 ms: {verdict}");
    if !args.no_write {
        let rates: Vec<String> = args.rate.iter().map(u32::to_string).collect();
        let cmd = format!(
            "cargo run --release -p pek-bench -- fan-out --workers {} --delay-ms {} --clients {} --callers {} --duration {} --rate {}",
            args.workers, args.delay_ms, args.clients, args.callers.arg(), args.duration, rates.join(",")
        );
        let section = format!(
            "## BFF fan-out\n\n`{cmd}`\n\nA hub (real `pek` hub on a throwaway \
             PostgreSQL) whose callers are in {w} realms each, every realm served by a stand-in \
             worker that answers the group search after d = {d} ms; {c} concurrent clients \
             ({callers}) search \
             `/api/v1/groups` through the hub, every answer checked to be complete \
             (`partial: false`). Offered load: each client sends on its own schedule (rate ÷ \
             clients per second), or closed loop. Hub, stand-ins and load generator share \
             the machine's 2 cores; every hub request costs {w} outbound HTTP calls, unless \
             it shares them with an identical request of the same person in flight.\n\n\
             {table}\n\nTarget p99 ≤ d + 5 ms: **{verdict}**.\n",
            w = args.workers,
            d = args.delay_ms,
            c = args.clients,
            callers = args.callers.describe(),
        );
        write_section(&args.output, "## BFF fan-out", &section)?;
        println!("updated {}", args.output.display());
    }
    Ok(())
}

pub async fn forward(args: ForwardArgs) -> anyhow::Result<()> {
    // A real worker with its own database, one group to read.
    let pg = tokio::task::spawn_blocking(localpg::LocalPostgres::start).await??;
    let wdb = pg.create_database("pek_bench_worker").await?;
    let signer = Signer::generate("pek-hub", "pek")?;
    let keyfile = pg.data_dir().with_file_name("bench-worker-jwt.pem");
    std::fs::write(&keyfile, signer.public_pem())?;
    let realm = RealmId::parse("bench-w")?;
    let serve = ServeArgs {
        listen: "127.0.0.1:0".parse()?,
        realm_id: Some(realm.to_string()),
        jwt_public_key_file: Some(keyfile.clone()),
        ..ServeArgs::defaults(DbArgs {
            database_url: wdb.app_url.clone(),
            migration_database_url: Some(wdb.owner_url.clone()),
            mode: Mode::Worker,
        })
    };
    let (wstate, wrouter) = pek::app::build(&serve).await?;
    let worker_url = serve_on_loopback(wrouter).await?;

    // The hub runs on a runtime of its own, as its own process would, so the split
    // layout can give it a core of its own.
    let signer = std::sync::Arc::new(signer);
    // As many people as the most clients of a case.
    let people = args
        .callers
        .people(args.clients.iter().copied().max().unwrap_or(1));
    let (hub_rt, hub) = HubRuntime::start(
        people,
        vec![(realm.clone(), worker_url.clone())],
        signer.clone(),
        keyfile,
    )
    .await?;
    let nginx = Nginx::start(&worker_url)?;
    let result = forward_rounds(
        &args,
        &pg,
        &wstate,
        &worker_url,
        &realm,
        &signer,
        &hub,
        &nginx,
    )
    .await;
    drop(nginx);
    drop(hub_rt);
    drop(hub);
    result
}

/// nginx as a plain keep-alive reverse proxy in front of the worker, on loopback, with a
/// generated configuration in a directory of its own: the single hop a user would put
/// in front of a worker instead of the hub. Debian's `nginx-light`, installed when
/// missing. Stopped (and the directory removed) on drop.
struct Nginx {
    child: std::process::Child,
    url: String,
    dir: PathBuf,
}

impl Nginx {
    fn binary() -> Option<PathBuf> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
            .map(|d| d.join("nginx"))
            .find(|p| p.is_file())
    }

    fn start(upstream_url: &str) -> anyhow::Result<Self> {
        let bin = match Self::binary() {
            Some(b) => b,
            None => {
                println!("nginx is missing: installing Debian's nginx-light");
                let ok = std::process::Command::new("apt-get")
                    .args(["install", "-y", "-q", "nginx-light"])
                    .env("DEBIAN_FRONTEND", "noninteractive")
                    .status()
                    .is_ok_and(|s| s.success());
                Self::binary().filter(|_| ok).context(
                    "nginx not found and `apt-get install nginx-light` failed: install Debian's \
                     nginx-light (the bench compares the hub with it)",
                )?
            }
        };
        let upstream = upstream_url
            .strip_prefix("http://")
            .context("the worker's URL is not http://")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let dir = std::env::temp_dir().join(format!(
            "pek-bench-nginx-{}-{}",
            std::process::id(),
            Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir)?;
        // Readable by nginx's unprivileged workers (it holds nothing secret).
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        let d = dir.display();
        // What a user would write: keep-alive to the client and to the upstream, no
        // access log (the hub keeps none either), everything else nginx's defaults.
        let conf = format!(
            "worker_processes auto;\n\
             pid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n\
             \x20 access_log off;\n\
             \x20 client_body_temp_path {d}/body;\n\
             \x20 proxy_temp_path {d}/proxy;\n\
             \x20 fastcgi_temp_path {d}/fastcgi;\n\
             \x20 uwsgi_temp_path {d}/uwsgi;\n\
             \x20 scgi_temp_path {d}/scgi;\n\
             \x20 upstream worker {{ server {upstream}; keepalive 256; }}\n\
             \x20 server {{\n\
             \x20   listen 127.0.0.1:{port};\n\
             \x20   location / {{\n\
             \x20     proxy_pass http://worker;\n\
             \x20     proxy_http_version 1.1;\n\
             \x20     proxy_set_header Connection \"\";\n\
             \x20     proxy_set_header Host $host;\n\
             \x20   }}\n\
             \x20 }}\n\
             }}\n"
        );
        let conf_file = dir.join("nginx.conf");
        std::fs::write(&conf_file, conf)?;
        let child = std::process::Command::new(&bin)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf_file)
            .arg("-e")
            .arg(dir.join("error.log"))
            .args(["-g", "daemon off;"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut nginx = Nginx {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = nginx.child.try_wait()? {
                let log = std::fs::read_to_string(nginx.dir.join("error.log")).unwrap_or_default();
                anyhow::bail!("nginx exited at start ({status}): {log}");
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "nginx did not listen on port {port} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(nginx)
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers too (SIGKILL would orphan them).
        // SAFETY: signalling our own child process.
        unsafe {
            libc::kill(self.pid(), libc::SIGTERM);
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The three ways to the worker the forwarding benchmark compares.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    Direct,
    Nginx,
    Hub,
}

impl Route {
    fn describe(self) -> &'static str {
        match self {
            Route::Direct => "directly",
            Route::Nginx => "through nginx",
            Route::Hub => "through the hub",
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn forward_rounds(
    args: &ForwardArgs,
    worker_pg: &localpg::LocalPostgres,
    wstate: &pek::http::AppState,
    worker_url: &str,
    realm: &RealmId,
    signer: &Signer,
    hub: &Hub,
    nginx: &Nginx,
) -> anyhow::Result<()> {
    let load_avg = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into());
    // The hub's callers, each made GOD in the worker's realm, with one group.
    for user in &hub.users {
        realm::ensure_local(&wstate.db, realm, "bench", Some(*user)).await?;
    }
    // A worker accepts only tokens of its realm's audience (what the hub mints when it
    // forwards); the hub only hub tokens.
    let audience = pek::auth::realm_audience(signer.audience(), realm.as_str());
    let tokens = hub
        .users
        .iter()
        .map(|u| signer.issue_to(*u, &audience, 3600, None))
        .collect::<Result<Vec<_>, _>>()?;
    let token = tokens[0].clone();
    let groups = if args.call.contains(&Call::Search) {
        1000
    } else {
        1
    };
    let group = create_groups(worker_url, realm, &token, groups).await?;
    let path_of = |call: Call| match call {
        Call::One => format!("/api/v1/realms/{realm}/groups/{group}"),
        Call::Search => format!("/api/v1/realms/{realm}/groups?q=bench%20group%200&limit=20"),
    };
    let pinning = Pinning {
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
        hub_postmaster: postmaster_pid(&hub._pg)?,
        worker_postmaster: Some(postmaster_pid(worker_pg)?),
        nginx_master: Some(nginx.pid()),
    };
    let (w, d) = (
        Duration::from_secs(args.warmup),
        Duration::from_secs(args.duration),
    );
    let wakeups = if pinning.cpus >= 2 {
        let last = pinning.cpus - 1;
        let (same, across) = tokio::task::spawn_blocking(move || {
            anyhow::Ok((
                wakeup_round_trip_us(0, 0, 20_000)?,
                wakeup_round_trip_us(0, last, 20_000)?,
            ))
        })
        .await??;
        format!(
            "Thread wake-up round trip on this machine (two threads, a byte each way through \
             pipes): {same:.1} µs on one core, {across:.1} µs between core 0 and core {last}."
        )
    } else {
        String::new()
    };
    println!("{wakeups}");
    let mut tables = Vec::new();
    let mut verdicts = Vec::new();
    for &layout in &args.layout {
        if pinning.cpus < layout.min_cpus() {
            let why = format!(
                "- {}: skipped (needs {} or more CPUs; this machine has {})",
                layout.describe(),
                layout.min_cpus(),
                pinning.cpus
            );
            verdicts.push(why);
            continue;
        }
        let load_cpus = pinning.apply(layout)?;
        for &call in &args.call {
            let path = path_of(call);
            let mut rows = Vec::new();
            for &n in &args.clients {
                let load = |url: &str, tokens: &[String]| Load {
                    url: url.to_string(),
                    tokens: tokens.to_vec(),
                    clients: n,
                    rate: 0,
                    warmup: w,
                    duration: d,
                    check: any_ok,
                    cpus: load_cpus.clone(),
                };
                // The three phases of a round run in rotating order (D N H, N H D, H D N,
                // …) so that a slow spell of the machine falls on all of them; each round
                // gives one set of ratios.
                let routes = [Route::Direct, Route::Nginx, Route::Hub];
                let mut samples: [Vec<Sample>; 3] = Default::default();
                for round in 0..args.rounds as usize {
                    for k in 0..3 {
                        let i = (round + k) % 3;
                        let (url, tokens) = match routes[i] {
                            Route::Direct => (format!("{worker_url}{path}"), &tokens),
                            Route::Nginx => (format!("{}{path}", nginx.url), &tokens),
                            Route::Hub => (format!("{}{path}", hub.url), &hub.tokens),
                        };
                        samples[i].push(load(&url, tokens).run(Some(&pinning)).await?);
                    }
                }
                let p50 = |i: usize, r: usize| samples[i][r].phase("").p50_ms;
                let ratios = |num: usize, den: usize| {
                    let mut v: Vec<f64> = (0..args.rounds as usize)
                        .map(|r| p50(num, r) / p50(den, r))
                        .collect();
                    v.sort_by(f64::total_cmp);
                    v
                };
                let (nginx_direct, hub_direct, hub_nginx) =
                    (ratios(1, 0), ratios(2, 0), ratios(2, 1));
                let ratio = median(&hub_nginx);
                let pooled: Vec<Sample> = samples.iter().map(|s| Sample::pooled(s)).collect();
                let phases: Vec<Phase> = routes
                    .iter()
                    .zip(&pooled)
                    .map(|(r, s)| s.phase(&format!("{n} clients: {}", r.describe())))
                    .collect();
                let cpu: Vec<(f64, f64)> = pooled.iter().map(Sample::cpu_per_request).collect();
                for (p, c) in phases.iter().zip(&cpu) {
                    rows.push(format!("{} {:.0} | {:.0} |", row(p), c.0, c.1));
                }
                let verdict = if ratio <= 1.05 { "met" } else { "missed" };
                let cpu_verdict = if cpu[2].1 <= cpu[1].1 {
                    "met"
                } else {
                    "missed"
                };
                let spread = hub_nginx
                    .iter()
                    .map(|r| format!("{r:.2}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                verdicts.push(format!(
                    "- {}, {}, {n} clients: p50 ÷ directly: nginx {:.2}×, hub {:.2}×; \
                     **hub ÷ nginx = {ratio:.2}×**, median of {} rounds ({spread}) (target \
                     ≤ 1.05×: **{verdict}**); requests/s nginx ÷ hub = {:.2}×; the proxy's \
                     CPU per request: hub {:.0} µs, nginx {:.0} µs (target hub ≤ nginx: \
                     **{cpu_verdict}**)",
                    layout.describe(),
                    call.describe(),
                    median(&nginx_direct),
                    median(&hub_direct),
                    hub_nginx.len(),
                    phases[1].rps / phases[2].rps,
                    cpu[2].1,
                    cpu[1].1,
                ));
            }
            tables.push(format!(
                "{}, {}:\n\n| phase | requests | req/s | p50 ms | p99 ms | worker CPU µs/req \
                 | proxy (hub or nginx) CPU µs/req |\n|---|---|---|---|---|---|---|\n{}",
                capitalized(layout.describe()),
                call.describe(),
                rows.join("\n")
            ));
        }
    }
    pinning.apply(Layout::Shared)?;
    let tables = tables.join("\n\n");
    let verdicts = verdicts.join("\n");
    println!("{tables}\n\n{verdicts}");
    if !args.no_write {
        let clients: Vec<String> = args.clients.iter().map(u32::to_string).collect();
        let names = |v: Vec<Option<clap::builder::PossibleValue>>| {
            v.iter()
                .flatten()
                .map(|p| p.get_name().to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        let layouts = names(
            args.layout
                .iter()
                .map(clap::ValueEnum::to_possible_value)
                .collect(),
        );
        let calls = names(
            args.call
                .iter()
                .map(clap::ValueEnum::to_possible_value)
                .collect(),
        );
        let cmd = format!(
            "cargo run --release -p pek-bench -- forward --clients {} --callers {} --duration {} --warmup {} --rounds {} --layout {} --call {}",
            clients.join(","),
            args.callers.arg(),
            args.duration,
            args.warmup,
            args.rounds,
            layouts,
            calls
        );
        let section = format!(
            "## BFF single-realm call\n\n`{cmd}`\n\nA realm served by a real \
             worker (`pek` in worker mode, own database); closed-loop clients ({callers}) \
             call it \
             directly, through nginx as a plain keep-alive reverse proxy (Debian's \
             `nginx-light`, `worker_processes auto`, upstream keep-alive, no access log: \
             the hop a user would put in front of a worker instead) and through the hub \
             (token check, registry lookup, a per-realm token minted and cached for the \
             worker, forwarding over loopback HTTP). Targets: the hub's p50 within 1.05× of \
             nginx's, and its CPU per request no more than nginx's. Machine load (1/5/15-min load average) when the run started: \
             {load_avg} — the machine is shared with other builds and tests, so absolute \
             figures are noisy; the rotating rounds are there so the noise hits all three \
             routes alike. Two calls: *GET one group* — the cheapest realm call, so the \
             hub's share is as large as it gets — and *group search* — a page of 20 of \
             1,000 groups by name prefix, what the search box asks. Each case runs in \
             rounds of one phase per route, in rotating order, so a slow spell of the \
             machine hits every route; the tables pool the rounds, the ratio \
             is the median of the rounds' ratios (all of them in brackets). The hub runs \
             on a runtime of its own with its \
             own database. *Shared cores*: every process may run on every core, so under \
             load the hub's work is taken from the worker. *Hub on its own core*: the hub \
             (and its database) — or nginx, in its phases — pinned to the last core; worker, worker database and \
             clients to the others — the hub as a deployment of its own (with 2 CPUs the \
             direct call then never leaves one core, the forwarded one crosses cores \
             twice each way). *Hub, clients and worker on cores of their own* (3 or more \
             CPUs): hub on the last core, clients on the one before, worker and its \
             database on the rest — as separate machines would be. CPU per request \
             is the kernel's on-CPU time of each side's threads and database processes \
             during the measured phase, divided by the requests answered. {wakeups}\n\n\
             {tables}\n\n{verdicts}\n",
            callers = args.callers.describe(),
        );
        write_section(&args.output, "## BFF single-realm call", &section)?;
        println!("updated {}", args.output.display());
    }
    Ok(())
}

/// `count` groups named "Bench group 0000"…; the id of the first.
pub(crate) async fn create_groups(
    worker_url: &str,
    realm: &RealmId,
    token: &str,
    count: usize,
) -> anyhow::Result<String> {
    let client = reqwest::Client::new();
    let mut first = None;
    for i in 0..count {
        let resp = client
            .post(format!("{worker_url}/api/v1/realms/{realm}/groups"))
            .bearer_auth(token)
            .json(&serde_json::json!({ "name": format!("Bench group {i:04}") }))
            .send()
            .await?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await?;
        anyhow::ensure!(status.is_success(), "creating a group: {status} {body}");
        if first.is_none() {
            first = body["id"].as_str().map(str::to_string);
        }
    }
    first.context("no group created")
}

/// Median of sorted values.
fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_give_each_side_its_cpus() {
        assert_eq!(
            cpu_sets(Layout::Shared, 2).unwrap(),
            (vec![0, 1], vec![0, 1], vec![0, 1])
        );
        assert_eq!(
            cpu_sets(Layout::Split, 2).unwrap(),
            (vec![1], vec![0], vec![0])
        );
        assert_eq!(
            cpu_sets(Layout::Apart, 3).unwrap(),
            (vec![2], vec![0], vec![1])
        );
        assert_eq!(
            cpu_sets(Layout::Apart, 8).unwrap(),
            (vec![7], vec![0, 1, 2, 3, 4, 5], vec![6])
        );
        assert!(cpu_sets(Layout::Split, 1).is_err());
        assert!(cpu_sets(Layout::Apart, 2).is_err());
    }
}
