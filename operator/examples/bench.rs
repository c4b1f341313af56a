//! Benchmark: N Realms reconciled against a mocked Kubernetes API (the in-memory API server,
//! run in a child process behind HTTP so its memory is not counted) and a real Postgres (a
//! throwaway cluster): time to converge (every Realm Ready), operator peak RSS, and the API
//! writes of a steady-state pass (must be zero).
//!
//!   cargo run --release -p pek-operator --example bench -- 1000
//!
//! The hub is the in-process RecordingHub (its calls are counted too).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::IntoResponse;
use futures::StreamExt;
use kube::api::ListParams;
use kube::{Api, Client};
use pek_crds::Realm;
use pek_operator::config::Config;
use pek_operator::metrics::Metrics;
use pek_operator::reconcile::{reconcile, Context};
use pek_operator::testing::{FakeApi, RecordingHub};
use serde_json::json;

const NS: &str = "bench";
/// Reconciles in flight at once (the operator's default `PEK_CONCURRENCY`).
const CONCURRENCY: usize = pek_operator::config::DEFAULT_CONCURRENCY as usize;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if args.get(1).map(String::as_str) == Some("serve-fake-api") {
        let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
        let admin = args.get(3).cloned().unwrap_or_default();
        return rt.block_on(serve_fake_api(n, admin));
    }
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1000);
    rt.block_on(bench(n))
}

async fn fake_handler(
    State(fake): State<FakeApi>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    if uri.path() == "/_counts" {
        let (reads, writes) = fake.counts();
        return (
            axum::http::StatusCode::OK,
            json!({"reads": reads, "writes": writes}).to_string(),
        );
    }
    let ct = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let (code, value) = fake.serve(&method, uri.path(), ct, &body);
    (code, value.to_string())
}

async fn serve_fake_api(n: usize, admin_uri: String) -> anyhow::Result<()> {
    let fake = FakeApi::new();
    fake.stop_logging();
    fake.auto_available();
    let b64 = |s: &str| serde_json::to_value(k8s_openapi::ByteString(s.as_bytes().to_vec()));
    fake.insert(
        &format!("/api/v1/namespaces/{NS}/secrets"),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "pg-admin", "namespace": NS},
               "data": {"uri": b64(&admin_uri)?}}),
    );
    for i in 0..n {
        let id = format!("bench-{i:04}");
        fake.insert(
            &format!("/apis/pek.sch.bme.hu/v1alpha1/namespaces/{NS}/realms"),
            json!({"apiVersion": "pek.sch.bme.hu/v1alpha1", "kind": "Realm",
                   "metadata": {"name": id, "namespace": NS},
                   "spec": {"realmId": id, "database": {"adminSecretRef": {"name": "pg-admin"},
                            "deletionPolicy": "Delete"}}}),
        );
    }
    let app = axum::Router::new().fallback(fake_handler).with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?.port());
    std::io::stdout().flush()?;
    axum::serve(listener, app).await?;
    Ok(())
}

async fn counts(port: u16) -> anyhow::Result<(u64, u64)> {
    let v: serde_json::Value = reqwest::get(format!("http://127.0.0.1:{port}/_counts"))
        .await?
        .json()
        .await?;
    Ok((
        v["reads"].as_u64().unwrap_or(0),
        v["writes"].as_u64().unwrap_or(0),
    ))
}

fn ready(r: &Realm) -> bool {
    r.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

async fn pass(realms: &Api<Realm>, ctx: &Arc<Context>) -> anyhow::Result<(usize, usize)> {
    let list = realms.list(&ListParams::default()).await?;
    let total = list.items.len();
    let ready_before = list.items.iter().filter(|r| ready(r)).count();
    let errors = futures::stream::iter(list.items)
        .map(|r| reconcile(Arc::new(r), ctx.clone()))
        .buffer_unordered(CONCURRENCY)
        .filter(|r| futures::future::ready(r.is_err()))
        .count()
        .await;
    if errors > 0 {
        eprintln!("  {errors} reconciles failed in this pass");
    }
    Ok((total, ready_before))
}

async fn bench(n: usize) -> anyhow::Result<()> {
    let pg = localpg::LocalPostgres::start()?;
    let admin = pg.superuser_url("postgres");
    let mut child = Command::new(std::env::current_exe()?)
        .args(["serve-fake-api", &n.to_string(), &admin])
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(
        child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?,
    )
    .read_line(&mut line)?;
    let port: u16 = line.trim().parse()?;

    let rss_start = peak_rss_kib().unwrap_or(0);
    let config = kube::Config::new(format!("http://127.0.0.1:{port}").parse()?);
    let client = Client::try_from(config)?;
    let hub = Arc::new(RecordingHub::default());
    let ctx = Arc::new(Context::new(
        client.clone(),
        Config::for_tests(),
        hub.clone(),
        Metrics::default(),
    ));
    let realms: Api<Realm> = Api::namespaced(client, NS);

    println!(
        "{n} Realms, mocked API on 127.0.0.1:{port}, real Postgres on port {}",
        pg.port()
    );
    let start = Instant::now();
    let mut passes = 0;
    let mut converged = Duration::ZERO;
    loop {
        let (total, ready_before) = pass(&realms, &ctx).await?;
        passes += 1;
        if ready_before == total {
            break;
        }
        converged = start.elapsed();
        println!(
            "  pass {passes}: {ready_before}/{total} Ready before it, {:.1} s",
            start.elapsed().as_secs_f64()
        );
        if passes > 10 {
            anyhow::bail!("did not converge in 10 passes");
        }
    }
    // The last pass found everything Ready already: convergence is the end of the one before.
    let (reads0, writes0) = counts(port).await?;
    let hub_calls0 = hub.calls().len();

    let steady = Instant::now();
    pass(&realms, &ctx).await?;
    let steady_time = steady.elapsed();
    let (reads1, writes1) = counts(port).await?;
    let hub_calls1 = hub.calls().len();
    let peak = peak_rss_kib().unwrap_or(0);

    println!(
        "converged: {n} Realms Ready in {:.1} s ({} reconcile passes)",
        converged.as_secs_f64(),
        passes - 1
    );
    println!(
        "API calls to converge: {reads0} reads, {writes0} writes; hub registrations: {hub_calls0}"
    );
    println!(
        "steady-state pass: {:.2} s, {} reads, {} writes, {} hub calls",
        steady_time.as_secs_f64(),
        reads1 - reads0,
        writes1 - writes0,
        hub_calls1 - hub_calls0
    );
    println!(
        "operator peak RSS: {:.1} MiB (at start {:.1} MiB)",
        peak as f64 / 1024.0,
        rss_start as f64 / 1024.0
    );
    let _ = child.kill();
    let _ = child.wait();
    if writes1 != writes0 {
        anyhow::bail!("steady state wrote to the API");
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(())
}

/// Peak resident set size of this process in KiB (`VmHWM`), when the kernel reports it.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}
