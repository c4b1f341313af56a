//! Benchmark on a real Kubernetes API server (the shared control plane): the `pek-operator`
//! binary provisions N Realms (DatabaseReady + Registered) against a real Postgres (throwaway
//! cluster) and a counting in-process hub, next to the floor: the same provisioning SQL sent
//! straight to Postgres (the operator's own `Provisioner`, as many at once as the operator's
//! concurrency). Then one resync period of steady state: API requests (from the API server's
//! own `apiserver_request_total`, watches excluded) and hub calls. Peak RSS of the operator.
//!
//!   ../shared/k8s/control-plane.sh up /tmp/pek-bench
//!   cargo build --release -p pek-operator --bin pek-operator --example bench_k8s
//!   KUBECONFIG=/tmp/pek-bench/kubeconfig target/release/examples/bench_k8s 200
//!   ../shared/k8s/control-plane.sh down /tmp/pek-bench

use std::collections::{BTreeMap, HashMap};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::routing::{get, put};
use axum::Router;
use futures::{stream, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use pek_crds::Realm;
use pek_operator::db::{AdminTarget, DbCredentials, Owner, Provisioner, RealmDbNames};
use serde_json::{json, Value};

/// Seconds between resyncs of the operator under test (the steady-state window); the operator's
/// default is 300 s. `PEK_BENCH_RESYNC` sets another: one shorter than the provisioning makes
/// the early Realms' resyncs part of the measured time.
fn resync() -> u64 {
    std::env::var("PEK_BENCH_RESYNC")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}

#[derive(Default)]
struct HubCounts {
    put: AtomicU64,
    delete: AtomicU64,
    list: AtomicU64,
    registry: Mutex<BTreeMap<String, Value>>,
}

fn hub_router(counts: Arc<HubCounts>) -> Router {
    async fn put_realm(
        State(c): State<Arc<HubCounts>>,
        Path(id): Path<String>,
        body: axum::body::Bytes,
    ) -> (axum::http::StatusCode, String) {
        c.put.fetch_add(1, Ordering::Relaxed);
        let mut entry: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        entry["id"] = json!(id);
        let created = c
            .registry
            .lock()
            .map(|mut r| r.insert(id, entry.clone()).is_none())
            .unwrap_or(false);
        let code = if created { 201 } else { 200 };
        (
            axum::http::StatusCode::from_u16(code).unwrap_or_default(),
            entry.to_string(),
        )
    }
    async fn delete_realm(State(c): State<Arc<HubCounts>>, Path(id): Path<String>) -> &'static str {
        c.delete.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut r) = c.registry.lock() {
            r.remove(&id);
        }
        ""
    }
    async fn list(State(c): State<Arc<HubCounts>>) -> String {
        c.list.fetch_add(1, Ordering::Relaxed);
        let items: Vec<Value> = c
            .registry
            .lock()
            .map(|r| r.values().cloned().collect())
            .unwrap_or_default();
        json!({ "items": items }).to_string()
    }
    Router::new()
        .route("/internal/v1/realms", get(list))
        .route(
            "/internal/v1/realms/{id}",
            put(put_realm).delete(delete_realm),
        )
        .with_state(counts)
}

/// `apiserver_request_total` summed by verb for the kinds the operator touches (no watches).
async fn request_counts(client: &Client) -> anyhow::Result<HashMap<String, u64>> {
    let req = http::Request::get("/metrics").body(Vec::new())?;
    let text = client.request_text(req).await?;
    let kinds = [
        "realms",
        "secrets",
        "serviceaccounts",
        "services",
        "deployments",
        "networkpolicies",
        "poddisruptionbudgets",
        "events",
        "leases",
    ];
    let mut out = HashMap::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
    {
        let label = |name: &str| line.split(&format!("{name}=\"")).nth(1)?.split('"').next();
        let (Some(verb), Some(resource)) = (label("verb"), label("resource")) else {
            continue;
        };
        if verb == "WATCH" || !kinds.contains(&resource) {
            continue;
        }
        let n: f64 = line
            .rsplit(' ')
            .next()
            .unwrap_or("0")
            .parse()
            .unwrap_or(0.0);
        *out.entry(format!("{verb} {resource}")).or_insert(0) += n as u64;
    }
    Ok(out)
}

fn delta(before: &HashMap<String, u64>, after: &HashMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter_map(|(k, v)| {
            let d = v.saturating_sub(*before.get(k).unwrap_or(&0));
            (d > 0).then(|| (k.clone(), d))
        })
        .collect()
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// CPU seconds (user + system, plus reaped children) of a process, from /proc/<pid>/stat.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime..cstime are fields 14..17.
    let ticks: u64 = f
        .get(11..15)?
        .iter()
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    Some(ticks as f64 / 100.0)
}

/// Children of `parent` (e.g. a postmaster's backends).
fn children(parent: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(')')?
                        .1
                        .split_whitespace()
                        .nth(1)?
                        .parse::<u32>()
                        .ok()
                })
                == Some(parent)
        })
        .collect()
}

/// The processes whose CPU time the benchmark reports: the operator, the control plane (pid
/// files beside the kubeconfig of `control-plane.sh`) and Postgres (postmaster + backends).
struct Cpu {
    named: Vec<(String, Vec<u32>, bool)>,
}

impl Cpu {
    fn sample(&self) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for (name, pids, with_children) in &self.named {
            let mut total = 0.0;
            for pid in pids {
                total += cpu_seconds(*pid).unwrap_or(0.0);
                if *with_children {
                    total += children(*pid)
                        .into_iter()
                        .filter_map(cpu_seconds)
                        .sum::<f64>();
                }
            }
            out.insert(name.clone(), total);
        }
        out
    }
}

impl Cpu {
    /// Waits until the control plane is idle (under 10 % of a core for two 2-second windows in
    /// a row): after a namespace of thousands of objects is gone, the garbage collector and the
    /// controllers go on for a while, and that work would be measured with the next phase.
    async fn wait_until_quiet(&self) {
        let control_plane = |s: &BTreeMap<String, f64>| -> f64 {
            ["kube-apiserver", "etcd", "kube-controller-manager"]
                .iter()
                .filter_map(|k| s.get(*k))
                .sum()
        };
        let start = Instant::now();
        let mut quiet = 0;
        let mut last = control_plane(&self.sample());
        while quiet < 2 && start.elapsed() < Duration::from_secs(600) {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let now = control_plane(&self.sample());
            quiet = if now - last < 0.2 { quiet + 1 } else { 0 };
            last = now;
        }
        if start.elapsed() > Duration::from_secs(5) {
            eprintln!(
                "waited {:.0} s for the control plane to go idle",
                start.elapsed().as_secs_f64()
            );
        }
    }
}

fn cpu_delta(a: &BTreeMap<String, f64>, b: &BTreeMap<String, f64>) -> String {
    b.iter()
        .map(|(k, v)| format!("{k} {:.1} s", v - a.get(k).unwrap_or(&0.0)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// `pek_operator_phase_duration_seconds` sums and counts, and the reconcile count, from the
/// operator's own /metrics.
async fn operator_phases(addr: &str) -> String {
    let Ok(text) = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .and_then(|r| r.error_for_status())
    else {
        return "(operator metrics unavailable)".into();
    };
    let Ok(text) = text.text().await else {
        return "(operator metrics unreadable)".into();
    };
    let mut phases: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let value = |l: &str| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
        if line.starts_with("pek_operator_reconciles_total ") {
            out.push(format!("reconciles {}", value(line).unwrap_or(0.0)));
        }
        for (suffix, sum) in [("_sum{", true), ("_count{", false)] {
            let prefix = format!("pek_operator_phase_duration_seconds{suffix}phase=\"");
            if let Some(rest) = line.strip_prefix(&prefix) {
                let name = rest.split('"').next().unwrap_or_default().to_string();
                let e = phases.entry(name).or_default();
                if sum {
                    e.0 = value(line).unwrap_or(0.0);
                } else {
                    e.1 = value(line).unwrap_or(0.0);
                }
            }
        }
    }
    for (name, (sum, count)) in phases {
        out.push(format!("{name} {sum:.1} s / {count}"));
    }
    out.join(", ")
}

/// An earlier run's namespace is deleted when it ends, and the API server, etcd and the
/// controller manager go on deleting its thousands of objects and Events for a minute or more:
/// waits until no `bench-*` namespace is terminating, or the next measurement includes that.
async fn wait_for_deleted_namespaces(client: &Client) -> anyhow::Result<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let waited = Instant::now();
    loop {
        let left = namespaces
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|n| {
                kube::ResourceExt::name_any(*n).starts_with("bench-")
                    && n.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating")
            })
            .count();
        if left == 0 {
            break;
        }
        anyhow::ensure!(
            waited.elapsed() < Duration::from_secs(600),
            "{left} namespace(s) bench-* still terminating after 10 minutes"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    if waited.elapsed() > Duration::from_secs(2) {
        eprintln!(
            "waited {:.0} s for namespaces of earlier runs to be deleted",
            waited.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Deletes a namespace of Realms that no operator serves: their finalizers are released.
async fn delete_namespace(client: &Client, ns: &str) -> anyhow::Result<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let _ = namespaces.delete(ns, &Default::default()).await;
    let realms: Api<Realm> = Api::namespaced(client.clone(), ns);
    if let Ok(list) = realms.list(&ListParams::default()).await {
        for r in list {
            let _ = realms
                .patch(
                    &kube::ResourceExt::name_any(&r),
                    &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {"finalizers": null}})),
                )
                .await;
        }
    }
    Ok(())
}

/// The API writes the operator makes for one new Realm, made straight: the Realm itself (as
/// the benchmark creates it), its finalizer, the five objects by server-side apply (the
/// `<name>-db` Secret, ServiceAccount, Service, Deployment, NetworkPolicy, built by the
/// operator's own `desired` functions), ten Events and one status write.
async fn kubernetes_writes(
    client: &Client,
    ns: &str,
    i: usize,
    target: &AdminTarget,
    config: &pek_operator::config::Config,
) -> anyhow::Result<()> {
    use k8s_openapi::api::events::v1::Event;
    use pek_operator::reconcile::desired;
    let realms: Api<Realm> = Api::namespaced(client.clone(), ns);
    let name = format!("r{i}");
    let realm: Realm = serde_json::from_value(json!({
        "apiVersion": "pek.sch.bme.hu/v1alpha1", "kind": "Realm",
        "metadata": {"name": name},
        "spec": {"realmId": format!("kfloor-{i}"), "worker": {"replicas": 0},
                 "database": {"adminSecretRef": {"name": "pg-admin"}}}
    }))?;
    let realm = realms.create(&PostParams::default(), &realm).await?;
    realms
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": [pek_crds::FINALIZER]}})),
        )
        .await?;
    let apply = PatchParams::apply("pek-operator").force();
    let creds = DbCredentials::generate(target, desired::db_names(&realm));
    let secret = desired::db_secret(&realm, &creds)?;
    Api::<Secret>::namespaced(client.clone(), ns)
        .patch(
            &kube::ResourceExt::name_any(&secret),
            &apply,
            &Patch::Apply(&secret),
        )
        .await?;
    let sa = desired::service_account(&realm)?;
    Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(client.clone(), ns)
        .patch(
            &kube::ResourceExt::name_any(&sa),
            &apply,
            &Patch::Apply(&sa),
        )
        .await?;
    let service = desired::service(&realm)?;
    Api::<k8s_openapi::api::core::v1::Service>::namespaced(client.clone(), ns)
        .patch(
            &kube::ResourceExt::name_any(&service),
            &apply,
            &Patch::Apply(&service),
        )
        .await?;
    let deployment = desired::deployment(&realm, config, "0")?;
    Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(client.clone(), ns)
        .patch(
            &kube::ResourceExt::name_any(&deployment),
            &apply,
            &Patch::Apply(&deployment),
        )
        .await?;
    let policy = desired::network_policy(&realm, config)?;
    Api::<k8s_openapi::api::networking::v1::NetworkPolicy>::namespaced(client.clone(), ns)
        .patch(
            &kube::ResourceExt::name_any(&policy),
            &apply,
            &Patch::Apply(&policy),
        )
        .await?;
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    for k in 0..10 {
        let now = k8s_openapi::jiff::Timestamp::now();
        let event: Event = serde_json::from_value(json!({
            "metadata": {"name": format!("{name}.{k}.{:x}", now.as_nanosecond())},
            "eventTime": now.to_string(),
            "type": "Normal", "reason": "Created", "action": "Apply",
            "note": "the same size of note as the operator's",
            "regarding": kube::Resource::object_ref(&realm, &()),
            "reportingController": "pek-operator", "reportingInstance": "bench"
        }))?;
        events.create(&PostParams::default(), &event).await?;
    }
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let condition = |t: &str, s: &str, r: &str| json!({"type": t, "status": s, "reason": r, "message": r, "lastTransitionTime": now});
    realms
        .patch_status(
            &name,
            &apply,
            &Patch::Apply(json!({
                "apiVersion": "pek.sch.bme.hu/v1alpha1", "kind": "Realm",
                "status": {"observedGeneration": 1, "conditions": [
                    condition("DatabaseReady", "True", "Provisioned"),
                    condition("WorkloadReady", "False", "ScaledToZero"),
                    condition("Registered", "True", "Registered"),
                    condition("Ready", "False", "ScaledToZero"),
                ]}
            })),
        )
        .await?;
    Ok(())
}

/// The floor's database work: what the operator's database step does for `n` Realms (roles,
/// database, CONNECT restriction, ownership comments), by the operator's own `Provisioner`,
/// 8 requests at once on its 4 slots, as databases `<prefix>-<i>`.
async fn sql_floor(target: &AdminTarget, prefix: &str, n: usize) -> anyhow::Result<()> {
    let p = Provisioner::default();
    let results: Vec<_> = stream::iter(0..n)
        .map(|i| {
            let id = format!("{prefix}-{i}");
            let creds = DbCredentials::generate(target, RealmDbNames::for_realm(&id, None));
            let p = &p;
            async move { p.ensure(&creds, &floor_owner(&id), &[]).await }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    for r in results {
        r?;
    }
    Ok(())
}

/// Drops what [`sql_floor`] made (each database is a ~7.5 MB copy of the template: they go
/// before the next ones are made, so a large N needs less disk).
async fn drop_floor(target: &AdminTarget, prefix: &str, n: usize) -> anyhow::Result<()> {
    let p = Provisioner::default();
    let dropped: Vec<_> = stream::iter(0..n)
        .map(|i| {
            let id = format!("{prefix}-{i}");
            let p = &p;
            async move {
                let names = RealmDbNames::for_realm(&id, None);
                p.drop_all(target, &names, &floor_owner(&id)).await
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    for d in dropped {
        d?;
    }
    Ok(())
}

fn floor_owner(id: &str) -> Owner {
    Owner {
        uid: id.to_string(),
        namespace: "floor".into(),
        name: id.to_string(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let operator_bin: PathBuf = std::env::current_exe()?
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("pek-operator"))
        .ok_or_else(|| anyhow::anyhow!("no target dir"))?;
    anyhow::ensure!(
        operator_bin.is_file(),
        "{} missing: cargo build --release -p pek-operator --bin pek-operator",
        operator_bin.display()
    );
    let client = Client::try_default().await?;
    wait_for_deleted_namespaces(&client).await?;
    let pg = localpg::LocalPostgres::per_process()?;
    let admin_uri = pg.superuser_url("postgres");
    let postmaster: u32 = std::fs::read_to_string(pg.data_dir().join("postmaster.pid"))?
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no postmaster.pid"))?;
    let k8s_dir = std::env::var("KUBECONFIG")
        .ok()
        .and_then(|k| PathBuf::from(k).parent().map(PathBuf::from));
    let pid_of = |name: &str| -> Vec<u32> {
        k8s_dir
            .as_ref()
            .and_then(|d| std::fs::read_to_string(d.join(format!("{name}.pid"))).ok())
            .and_then(|s| s.trim().parse().ok())
            .into_iter()
            .collect()
    };
    let mut cpu = Cpu {
        named: vec![
            ("postgres".into(), vec![postmaster], true),
            ("kube-apiserver".into(), pid_of("kube-apiserver"), false),
            ("etcd".into(), pid_of("etcd"), false),
            (
                "kube-controller-manager".into(),
                pid_of("kube-controller-manager"),
                false,
            ),
        ],
    };
    cpu.wait_until_quiet().await;
    let load_start = loadavg();
    let floor_cpu0 = cpu.sample();

    // The floor: the same provisioning, straight to Postgres, with as many database steps at
    // once as the operator (the Provisioner's slots: POOL_SIZE).
    let target = AdminTarget::from_secret(&Secret {
        data: Some(BTreeMap::from([(
            "uri".to_string(),
            k8s_openapi::ByteString(admin_uri.clone().into_bytes()),
        )])),
        ..Default::default()
    })?;
    let floor = {
        let start = Instant::now();
        sql_floor(&target, "floor", n).await?;
        start.elapsed()
    };
    let floor_cpu = cpu_delta(&floor_cpu0, &cpu.sample());
    drop_floor(&target, "floor", n).await?;

    // The CRD, a namespace with the admin Secret, the counting hub.
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.patch(
        "realms.pek.sch.bme.hu",
        &PatchParams::apply("bench").force(),
        &Patch::Apply(pek_crds::crd()),
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The combined floor (PEK_BENCH_K8S_FLOOR=1): the same SQL and the same API writes as the
    // operator's, both at once, without the operator: what this machine needs for the work
    // itself when Postgres and the control plane share its cores.
    let combined_floor = if std::env::var("PEK_BENCH_K8S_FLOOR").is_ok_and(|v| v == "1") {
        let fns = format!("bench-{}-floor", std::process::id());
        let namespaces: Api<Namespace> = Api::all(client.clone());
        namespaces
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": fns}}))?,
            )
            .await?;
        let config = pek_operator::config::Config::for_tests();
        let cpu0 = cpu.sample();
        let start = Instant::now();
        let sql = sql_floor(&target, "kfloor", n);
        let api = stream::iter(0..n)
            .map(|i| kubernetes_writes(&client, &fns, i, &target, &config))
            .buffer_unordered(16)
            .collect::<Vec<_>>();
        let (sql, api) = tokio::join!(
            async {
                let r = sql.await;
                (r, start.elapsed())
            },
            async {
                let r = api.await;
                (r, start.elapsed())
            }
        );
        let both = start.elapsed();
        let both_cpu = cpu_delta(&cpu0, &cpu.sample());
        sql.0?;
        for r in api.0 {
            r?;
        }
        drop_floor(&target, "kfloor", n).await?;
        delete_namespace(&client, &fns).await?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        wait_for_deleted_namespaces(&client).await?;
        cpu.wait_until_quiet().await;
        Some((both, sql.1, api.1, both_cpu))
    } else {
        None
    };
    let ns = format!("bench-{}", std::process::id());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}}))?,
        )
        .await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "pg-admin"}, "stringData": {"uri": admin_uri}}),
            )?,
        )
        .await?;
    let counts = Arc::new(HubCounts::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hub_url = format!("http://{}", listener.local_addr()?);
    let app = hub_router(counts.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = std::env::temp_dir().join(format!("pek-bench-k8s-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("token"), "bench-token\n")?;

    let metrics_addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.to_string()
    };
    // `PEK_BENCH_WRAP="heaptrack -o /tmp/op"` runs the operator under a profiler (its figures
    // are then the profiler's).
    let wrap: Vec<String> = std::env::var("PEK_BENCH_WRAP")
        .map(|w| w.split_whitespace().map(String::from).collect())
        .unwrap_or_default();
    let mut command = match wrap.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(&operator_bin);
            c
        }
        None => Command::new(&operator_bin),
    };
    let mut operator = command
        .arg("run")
        .env("PEK_HUB_URL", &hub_url)
        .env("PEK_HUB_TOKEN_FILE", dir.join("token"))
        .env("PEK_WORKER_IMAGE", "ghcr.io/schonherz/pek:bench")
        .env("PEK_WATCH_NAMESPACE", &ns)
        .env("POD_NAMESPACE", &ns)
        .env("PEK_OPERATOR_LISTEN", &metrics_addr)
        .env("PEK_RESYNC_SECONDS", resync().to_string())
        .env("PEK_LOG_FORMAT", "json")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        // Its own process group, so that a wrapper's child (the operator under a profiler) is
        // stopped with it.
        .process_group(0)
        .spawn()?;

    cpu.named
        .push(("pek-operator".into(), vec![operator.id()], false));
    let realms: Api<Realm> = Api::namespaced(client.clone(), &ns);
    let cpu0 = cpu.sample();
    let requests0 = request_counts(&client).await?;
    let start = Instant::now();
    let created: Vec<_> = stream::iter(0..n)
        .map(|i| {
            let realms = realms.clone();
            async move {
                let r: Realm = serde_json::from_value(json!({
                    "apiVersion": "pek.sch.bme.hu/v1alpha1", "kind": "Realm",
                    "metadata": {"name": format!("r{i}")},
                    "spec": {"realmId": format!("bench-{i}"), "worker": {"replicas": 0},
                             "database": {"adminSecretRef": {"name": "pg-admin"}}}
                }))?;
                realms.create(&PostParams::default(), &r).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for c in created {
        c?;
    }
    let done = |r: &Realm| {
        let ok = |t: &str| {
            r.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == t && c.status == "True")
            })
        };
        ok("DatabaseReady") && ok("Registered")
    };
    // Watched, not polled: listing 1,000 Realms every few hundred milliseconds would cost the
    // API server (sharing the cores with everything measured) more CPU than the operator's
    // own requests, and the benchmark would measure its own polling.
    {
        use kube::runtime::watcher;
        let mut done_names = std::collections::HashSet::new();
        let mut events = std::pin::pin!(watcher(realms.clone(), watcher::Config::default()));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(900);
        while done_names.len() < n {
            let event = tokio::time::timeout_at(deadline, events.next())
                .await
                .map_err(|_| anyhow::anyhow!("not all Realms provisioned within 15 minutes"))?
                .ok_or_else(|| anyhow::anyhow!("the Realm watch ended"))??;
            match event {
                watcher::Event::Apply(r) | watcher::Event::InitApply(r) => {
                    let name = kube::ResourceExt::name_any(&r);
                    if done(&r) {
                        done_names.insert(name);
                    } else {
                        done_names.remove(&name);
                    }
                }
                watcher::Event::Delete(r) => {
                    done_names.remove(&kube::ResourceExt::name_any(&r));
                }
                watcher::Event::Init => done_names.clear(),
                watcher::Event::InitDone => {}
            }
        }
    }
    let provisioned = start.elapsed();
    let run_cpu = cpu_delta(&cpu0, &cpu.sample());
    let provisioning_requests = delta(&requests0, &request_counts(&client).await?);
    let load_end = loadavg();
    let phases = operator_phases(&metrics_addr).await;
    let puts = counts.put.load(Ordering::Relaxed);

    // Steady state: settle, then one resync period (plus margin) of counting.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before = request_counts(&client).await?;
    let (p0, l0) = (
        counts.put.load(Ordering::Relaxed),
        counts.list.load(Ordering::Relaxed),
    );
    tokio::time::sleep(Duration::from_secs(resync() + 5)).await;
    let after = request_counts(&client).await?;
    let steady = delta(&before, &after);
    let rss = peak_rss_kib(operator.id());

    println!(
        "Realms: {n} (operator concurrency {}, resync {} s, worker replicas 0)",
        pek_operator::config::DEFAULT_CONCURRENCY,
        resync()
    );
    println!(
        "SQL floor (Provisioner straight to Postgres, {} database steps at once like the \
         operator): {:.1} s",
        pek_operator::db::POOL_SIZE,
        floor.as_secs_f64()
    );
    println!(
        "operator: all DatabaseReady + Registered after {:.1} s ({:.2}x the floor)",
        provisioned.as_secs_f64(),
        provisioned.as_secs_f64() / floor.as_secs_f64()
    );
    if let Some((both, sql, api, both_cpu)) = &combined_floor {
        println!(
            "combined floor (the same SQL and the same API writes at once, no operator): {:.1} s \
             (SQL done after {:.1} s, API writes after {:.1} s); operator {:.2}x the combined \
             floor; CPU: {both_cpu}",
            both.as_secs_f64(),
            sql.as_secs_f64(),
            api.as_secs_f64(),
            provisioned.as_secs_f64() / both.as_secs_f64()
        );
    }
    println!("hub registrations while provisioning: {puts} (one per Realm is ideal)");
    println!("API requests while provisioning (all clients, watches excluded): {provisioning_requests:?}");
    println!("CPU during the floor: {floor_cpu}");
    println!("CPU while the operator provisioned: {run_cpu}");
    println!("operator phases while provisioning (sum / count): {phases}");
    println!("load average (1/5/15 min) at the start: {load_start}; when all were provisioned: {load_end}");
    println!(
        "operator peak RSS: {:.1} MiB",
        rss.unwrap_or(0) as f64 / 1024.0
    );
    println!(
        "one resync ({} s) of steady state: hub PUTs {}, hub listings {}",
        resync() + 5,
        counts.put.load(Ordering::Relaxed) - p0,
        counts.list.load(Ordering::Relaxed) - l0
    );
    println!("API requests in that window (all clients, watches excluded): {steady:?}");

    // SIGTERM to the group: the operator (and a profiler around it) ends cleanly; an operator
    // left running would put the finalizers back on the Realms released below.
    let _ = Command::new("kill")
        .args(["-TERM", "--", &format!("-{}", operator.id())])
        .status();
    let _ = operator.wait();
    delete_namespace(&client, &ns).await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
