//! The in-cluster client of `tests/checks/k8s-node.sh`: runs as a pod on the real node, so
//! every request it makes goes where a user's would, through a Service found by its DNS name
//! (the node's service proxy picks a ready endpoint for each new connection).
//!
//! ```text
//! node_client call [--as USER_UUID] [--operator] [--method M] [--data JSON] URL
//!     one request; prints {"status": …, "body": …} on stdout; exit 0 whatever the status
//! node_client idle
//!     does nothing until stopped (a pod to `kubectl exec` calls in)
//! node_client load --listen ADDR [--as USER_UUID] [--concurrency N] URL...
//!     requests the URLs in a loop until stopped; GET ADDR/stats reports and resets the
//!     counters of the window since the last report
//! ```
//!
//! `--as` signs a hub token for that user with the hub's own key (the chart's JWT Secret,
//! mounted at `$PEK_JWT_KEY_FILE`), so no token ever leaves the pod; `--operator` sends the
//! operator's token (`$PEK_OPERATOR_TOKEN_FILE`) for the hub's admin API.
//!
//! Every load request opens a new connection, so each is load-balanced by the Service anew:
//! what is measured is whether the set of ready endpoints is always able to answer (readiness,
//! shutdown, rolling-update settings), not how long one kept-alive connection survives. A
//! request counts as failed on a connection error, a timeout or any status other than 200;
//! an answer with `"partial": true` is counted apart.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use uuid::Uuid;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("node_client: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

struct Opts {
    as_user: Option<Uuid>,
    operator: bool,
    method: reqwest::Method,
    data: Option<Value>,
    listen: Option<String>,
    concurrency: usize,
    urls: Vec<String>,
}

fn parse(mut args: impl Iterator<Item = String>) -> anyhow::Result<Opts> {
    let mut o = Opts {
        as_user: None,
        operator: false,
        method: reqwest::Method::GET,
        data: None,
        listen: None,
        concurrency: 4,
        urls: Vec::new(),
    };
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match a.as_str() {
            "--as" => o.as_user = Some(value("--as")?.parse().context("--as: a user uuid")?),
            "--operator" => o.operator = true,
            "--method" => o.method = value("--method")?.parse().context("--method")?,
            "--data" => o.data = Some(serde_json::from_str(&value("--data")?).context("--data")?),
            "--listen" => o.listen = Some(value("--listen")?),
            "--concurrency" => o.concurrency = value("--concurrency")?.parse()?,
            u if u.starts_with("http://") => o.urls.push(u.to_string()),
            other => bail!("unexpected argument {other:?}"),
        }
    }
    Ok(o)
}

fn env_path(name: &str) -> anyhow::Result<PathBuf> {
    std::env::var_os(name)
        .map(PathBuf::from)
        .with_context(|| format!("{name} is not set"))
}

/// The Authorization header value, if the options ask for one.
fn bearer(o: &Opts) -> anyhow::Result<Option<String>> {
    if o.operator {
        let path = env_path("PEK_OPERATOR_TOKEN_FILE")?;
        let token = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        return Ok(Some(format!("Bearer {}", token.trim())));
    }
    let Some(user) = o.as_user else {
        return Ok(None);
    };
    let keys = pek::auth::KeyRing::from_pem_file(&env_path("PEK_JWT_KEY_FILE")?, "pek-hub", "pek")?;
    // Long enough for a whole load run; the pod and its key go with the test.
    let token = keys.signer().issue(user, 3600)?;
    Ok(Some(format!("Bearer {token}")))
}

async fn run() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let cmd = args.next().unwrap_or_default();
    let o = parse(args)?;
    match cmd.as_str() {
        "call" => call(&o).await,
        "load" => load(o).await,
        // The pod `kubectl exec` runs one-shot calls in: it only has to stay up.
        "idle" => loop {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        },
        _ => bail!("usage: node_client call|load|idle [options] URL..."),
    }
}

async fn call(o: &Opts) -> anyhow::Result<()> {
    let [url] = o.urls.as_slice() else {
        bail!("call takes one URL");
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()?;
    let mut rb = http.request(o.method.clone(), url);
    if let Some(auth) = bearer(o)? {
        rb = rb.header(reqwest::header::AUTHORIZATION, auth);
    }
    if let Some(d) = &o.data {
        rb = rb.json(d);
    }
    let (status, body) = match rb.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap_or_default();
            let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
            (status, body)
        }
        // No status: the connection failed; the check decides what that means.
        Err(e) => (0, Value::String(format!("{e:#}"))),
    };
    println!("{}", json!({ "status": status, "body": body }));
    Ok(())
}

#[derive(Default)]
struct Counters {
    ok: AtomicU64,
    failed: AtomicU64,
    partial: AtomicU64,
    samples: Mutex<Vec<String>>,
}

impl Counters {
    fn fail(&self, started: Instant, what: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        self.note(started, what);
    }

    fn note(&self, started: Instant, what: String) {
        if let Ok(mut s) = self.samples.lock() {
            if s.len() < 20 {
                s.push(format!("+{:.1}s {what}", started.elapsed().as_secs_f64()));
            }
        }
    }

    /// The window since the last report, and a fresh window.
    fn take(&self, since: &Mutex<Instant>) -> Value {
        let secs = since
            .lock()
            .map(|mut s| {
                let d = s.elapsed();
                *s = Instant::now();
                d.as_secs_f64()
            })
            .unwrap_or(0.0);
        let samples = self
            .samples
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default();
        json!({
            "seconds": (secs * 10.0).round() / 10.0,
            "ok": self.ok.swap(0, Ordering::Relaxed),
            "failed": self.failed.swap(0, Ordering::Relaxed),
            "partial": self.partial.swap(0, Ordering::Relaxed),
            "samples": samples,
        })
    }
}

async fn load(o: Opts) -> anyhow::Result<()> {
    anyhow::ensure!(!o.urls.is_empty(), "load needs at least one URL");
    let listen = o.listen.clone().context("load needs --listen")?;
    let auth = bearer(&o)?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(0)
        .build()?;
    let counters = Arc::new(Counters::default());
    let started = Instant::now();
    for i in 0..o.concurrency.max(1) {
        let (http, counters, auth, urls) =
            (http.clone(), counters.clone(), auth.clone(), o.urls.clone());
        tokio::spawn(async move {
            let mut n = i;
            loop {
                let url = &urls[n % urls.len()];
                n += 1;
                let mut rb = http.get(url);
                if let Some(a) = &auth {
                    rb = rb.header(reqwest::header::AUTHORIZATION, a);
                }
                match rb.send().await {
                    Ok(resp) if resp.status().as_u16() == 200 => match resp.json::<Value>().await {
                        Ok(v) => {
                            if v["partial"] == json!(true) {
                                counters.partial.fetch_add(1, Ordering::Relaxed);
                                counters
                                    .note(started, format!("partial {url}: {}", v["unavailable"]));
                            } else {
                                counters.ok.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(e) => counters.fail(started, format!("{url}: body: {e}")),
                    },
                    Ok(resp) => {
                        let status = resp.status();
                        let body = resp.text().await.unwrap_or_default();
                        let body: String = body.chars().take(200).collect();
                        counters.fail(started, format!("{url}: {status} {body}"));
                    }
                    Err(e) => counters.fail(started, format!("{url}: {e:#}")),
                }
                // A steady loop, not a flood: the point is coverage of every moment.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
    }
    let since = Arc::new(Mutex::new(Instant::now()));
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    eprintln!(
        "node_client: load on {} URL(s), stats on {listen}",
        o.urls.len()
    );
    loop {
        let (mut conn, _) = listener.accept().await?;
        let (counters, since) = (counters.clone(), since.clone());
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let n = conn.read(&mut buf).await.unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]);
            let (status, body) = if req.starts_with("GET /stats ") {
                ("200 OK", counters.take(&since).to_string())
            } else {
                ("404 Not Found", "{}".to_string())
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(resp.as_bytes()).await;
        });
    }
}
