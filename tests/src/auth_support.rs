//! Helpers for the auth tests: `pek serve` processes (hub or worker) with chosen
//! environment, their logs, key files, and a cookie-keeping HTTP client.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use localpg::Database;

use crate::pek_binary;

/// A fresh database on the shared throwaway PostgreSQL.
pub async fn fresh_db() -> anyhow::Result<Database> {
    Ok(localpg::LocalPostgres::shared()?.fresh_database().await?)
}

pub use crate::free_port;

/// A directory removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "pek-{tag}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        // Keys and tokens go here: 0700, and every file written 0600.
        localpg::private_dir(&dir)?;
        Ok(Scratch(dir))
    }

    /// Writes a file readable by its owner only (0600).
    pub fn write(&self, name: &str, content: &str) -> anyhow::Result<PathBuf> {
        let p = self.0.join(name);
        localpg::write_private(&p, content)?;
        Ok(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What to start: `pek serve` in a mode, on a database, with extra environment.
pub struct PekSpec {
    mode: &'static str,
    db: Database,
    env: BTreeMap<String, String>,
    port: Option<u16>,
}

impl PekSpec {
    pub fn hub(db: &Database) -> Self {
        PekSpec {
            mode: "hub",
            db: db.clone(),
            env: BTreeMap::new(),
            port: None,
        }
    }

    /// A worker for `realm` that verifies tokens through `hub_url`'s JWKS.
    pub fn worker(db: &Database, realm: &str, hub_url: &str) -> Self {
        PekSpec {
            mode: "worker",
            db: db.clone(),
            env: BTreeMap::new(),
            port: None,
        }
        .env("PEK_REALM_ID", realm)
        .env("PEK_HUB_URL", hub_url)
    }

    pub fn env(mut self, key: &str, value: impl AsRef<str>) -> Self {
        self.env.insert(key.into(), value.as_ref().into());
        self
    }

    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Starts the process and waits until it listens (30 s at most).
    pub async fn start(self) -> anyhow::Result<PekProcess> {
        let bin = pek_binary()?;
        let port = match self.port {
            Some(p) => p,
            None => free_port()?,
        };
        let log = std::env::temp_dir().join(format!(
            "pek-{}-{port}-{}.log",
            self.mode,
            uuid::Uuid::new_v4().simple()
        ));
        let log_file = std::fs::File::create(&log)?;
        let url = format!("http://127.0.0.1:{port}");
        let mut cmd = Command::new(&bin);
        cmd.arg("serve")
            .env("PEK_MODE", self.mode)
            .env("DATABASE_URL", &self.db.app_url)
            .env("PEK_MIGRATION_DATABASE_URL", &self.db.owner_url)
            .env("PEK_LISTEN", format!("127.0.0.1:{port}"))
            .env("PEK_PUBLIC_URL", &url)
            .env("RUST_LOG", "info,sqlx=warn,pek=debug")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut p = PekProcess {
            child,
            url,
            port,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = p.child.try_wait()? {
                bail!(
                    "pek serve ({}) exited during start-up: {status}\n{}",
                    self.mode,
                    p.logs()
                );
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(p);
            }
            if Instant::now() > deadline {
                bail!(
                    "pek serve did not listen on port {port} within 30 s\n{}",
                    p.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A running `pek serve`, killed on drop. Its output goes to a log file.
pub struct PekProcess {
    child: Child,
    pub url: String,
    pub port: u16,
    log: PathBuf,
}

impl PekProcess {
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Kills the process and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PekProcess {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// An HTTP client that follows nothing by itself and keeps cookies per host, like a
/// browser would (including `Secure` cookies on loopback, as browsers do for localhost).
pub struct Browser {
    pub http: reqwest::Client,
    jar: BTreeMap<String, BTreeMap<String, String>>,
}

pub struct Page {
    pub status: reqwest::StatusCode,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
    pub url: String,
}

impl Page {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

impl Browser {
    pub fn new() -> anyhow::Result<Self> {
        Ok(Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(20))
                .build()?,
            jar: BTreeMap::new(),
        })
    }

    fn host_key(url: &url::Url) -> String {
        format!(
            "{}:{}",
            url.host_str().unwrap_or(""),
            url.port_or_known_default().unwrap_or(0)
        )
    }

    pub fn cookie(&self, url: &str, name: &str) -> Option<String> {
        let u = url::Url::parse(url).ok()?;
        self.jar.get(&Self::host_key(&u))?.get(name).cloned()
    }

    /// Sets a cookie for `url`'s host, as another browser's cookie copied into this one.
    pub fn set_cookie(&mut self, url: &str, name: &str, value: &str) {
        if let Ok(u) = url::Url::parse(url) {
            self.jar
                .entry(Self::host_key(&u))
                .or_default()
                .insert(name.to_string(), value.to_string());
        }
    }

    /// One request; stores `Set-Cookie`s; relative `Location`s are made absolute.
    pub async fn request(
        &mut self,
        method: reqwest::Method,
        url: &str,
        headers: &[(&str, &str)],
        form: Option<&[(String, String)]>,
    ) -> anyhow::Result<Page> {
        let u = url::Url::parse(url)?;
        let key = Self::host_key(&u);
        let mut req = self.http.request(method, url);
        if let Some(c) = self.jar.get(&key).filter(|c| !c.is_empty()) {
            let v: Vec<String> = c.iter().map(|(k, v)| format!("{k}={v}")).collect();
            req = req.header("cookie", v.join("; "));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(f) = form {
            req = req.form(f);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("requesting {url}"))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        for sc in headers.get_all("set-cookie") {
            let Ok(sc) = sc.to_str() else { continue };
            let first = sc.split(';').next().unwrap_or("");
            if let Some((k, v)) = first.split_once('=') {
                let max_age_zero = sc
                    .split(';')
                    .any(|a| a.trim().eq_ignore_ascii_case("max-age=0"));
                let jar = self.jar.entry(key.clone()).or_default();
                if v.is_empty() || max_age_zero {
                    jar.remove(k.trim());
                } else {
                    jar.insert(k.trim().to_string(), v.to_string());
                }
            }
        }
        let location = headers
            .get("location")
            .and_then(|l| l.to_str().ok())
            .and_then(|l| u.join(l).ok())
            .map(|l| l.to_string());
        let body = resp.text().await.unwrap_or_default();
        Ok(Page {
            status,
            location,
            headers,
            body,
            url: url.to_string(),
        })
    }

    pub async fn get(&mut self, url: &str) -> anyhow::Result<Page> {
        self.request(reqwest::Method::GET, url, &[], None).await
    }
}

/// GET with a bearer token; status and JSON body.
pub async fn get_with_token(
    url: &str,
    token: &str,
) -> anyhow::Result<(reqwest::StatusCode, serde_json::Value)> {
    let resp = reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = resp.status();
    let body = resp.json().await.unwrap_or(serde_json::Value::Null);
    Ok((status, body))
}
