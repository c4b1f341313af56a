//! A whole federation as real processes on loopback: a hub and workers, each a `pek
//! serve` process with its own database on the throwaway PostgreSQL. Processes can be
//! killed and restarted (same port, same database) to test failures.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use pek::auth::Signer;
use pek::config::Mode;
use pek::db::Db;
use pek::realm::RealmId;
use uuid::Uuid;

use crate::auth_support::Scratch;
use crate::{free_port, pek_binary};

/// One `pek serve` process that can be stopped and started again with the same settings.
pub struct Instance {
    pub name: String,
    pub url: String,
    pub port: u16,
    env: BTreeMap<String, String>,
    child: Option<Child>,
}

impl Instance {
    pub fn new(name: &str, env: BTreeMap<String, String>) -> anyhow::Result<Self> {
        Self::with_port(name, env, free_port()?)
    }

    /// Another process with this one's settings on a port of its own (a second replica).
    pub fn sibling(&self, name: &str) -> anyhow::Result<Self> {
        Self::new(name, self.env.clone())
    }

    fn with_port(name: &str, env: BTreeMap<String, String>, port: u16) -> anyhow::Result<Self> {
        let mut env = env;
        env.insert("PEK_LISTEN".into(), format!("127.0.0.1:{port}"));
        Ok(Instance {
            name: name.into(),
            url: format!("http://127.0.0.1:{port}"),
            port,
            env,
            child: None,
        })
    }

    /// Starts the process and waits until `/readyz` answers 200.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        if self.child.is_some() {
            return Ok(());
        }
        self.spawn()?;
        self.wait_ready().await
    }

    /// Starts the process without waiting for it (see [`Instance::wait_ready`]).
    pub fn spawn(&mut self) -> anyhow::Result<()> {
        let bin = pek_binary()?;
        let mut cmd = Command::new(&bin);
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env(
                "RUST_LOG",
                std::env::var("PEK_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        self.child = Some(
            cmd.spawn()
                .with_context(|| format!("starting {} ({})", self.name, bin.display()))?,
        );
        Ok(())
    }

    /// Waits until the started process's `/readyz` answers 200 (error if it exits).
    pub async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(c) = self.child.as_mut() {
                if let Some(status) = c.try_wait()? {
                    self.child = None;
                    bail!("{} exited during start-up: {status}", self.name);
                }
            }
            if let Ok(r) = client.get(format!("{}/readyz", self.url)).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "{} was not ready on port {} within 60 s",
                    self.name,
                    self.port
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills the process (SIGKILL: no goodbye, like a crash).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends a signal to the process (`STOP` freezes it: it keeps its port and accepts
    /// connections but never answers, like a hung worker; `CONT` thaws it).
    pub fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let child = self.child.as_ref().context("the process is not running")?;
        // The shell's own `kill` (procps' /usr/bin/kill may be missing on a fresh machine).
        let status = Command::new("sh")
            .args([
                "-c",
                "kill -s \"$0\" \"$1\"",
                signal,
                &child.id().to_string(),
            ])
            .status()
            .context("running kill")?;
        anyhow::ensure!(status.success(), "kill -s {signal} failed");
        Ok(())
    }

    pub fn set_env(&mut self, k: &str, v: &str) {
        self.env.insert(k.into(), v.into());
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A throwaway `redis-server` on loopback (Debian's `redis-server`; the test command
/// installs it), killed on drop.
pub struct RedisServer {
    child: Child,
    pub url: String,
    _dir: Scratch,
}

impl RedisServer {
    pub async fn start() -> anyhow::Result<Self> {
        let port = free_port()?;
        let dir = Scratch::new("redis")?;
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "no", "--dir"])
            .arg(&dir.0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context(
                "starting redis-server (install Debian's redis-server; ./tests/run.sh does)",
            )?;
        let server = RedisServer {
            child,
            url: format!("redis://127.0.0.1:{port}/"),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("redis-server did not listen on port {port} within 20 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(server)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Worker {
    pub realm: RealmId,
    pub instance: Instance,
    /// Service connection to the worker's database.
    pub db: Db,
}

/// Hub + workers, a signing key whose public half every instance trusts, and helpers to
/// make people and tokens.
pub struct Federation {
    pub hub: Instance,
    pub hub_db: Db,
    /// The hub's database (connection strings).
    pub hub_database: localpg::Database,
    pub workers: Vec<Worker>,
    pub signer: Signer,
    pub operator_token: String,
    pub dir: PathBuf,
    pub http: reqwest::Client,
    _tmp: Scratch,
}

pub struct Options {
    pub realms: Vec<&'static str>,
    pub bff_deadline_ms: u64,
    pub redis_url: Option<String>,
    pub realm_cache_ttl_secs: u64,
    /// The hub's port (e.g. when a login provider must know its redirect URI first).
    pub hub_port: Option<u16>,
    /// Extra environment of the hub.
    pub hub_env: Vec<(String, String)>,
    /// The hub's service connection (DATABASE_URL) goes to this port on loopback
    /// instead of the cluster's (a proxy in front of it).
    pub hub_database_port: Option<u16>,
    /// Extra environment of every worker.
    pub worker_env: Vec<(String, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            realms: vec!["kir-dev", "kszk"],
            // Above the production default (2 s): the suites run beside each other on
            // shared cores, and a forward that is merely slow there is not the failure
            // they look for. Tests of the deadline itself set their own.
            bff_deadline_ms: 3000,
            redis_url: None,
            realm_cache_ttl_secs: 60,
            hub_port: None,
            hub_env: Vec::new(),
            hub_database_port: None,
            worker_env: Vec::new(),
        }
    }
}

impl Federation {
    pub async fn start(opts: Options) -> anyhow::Result<Self> {
        let pg = localpg::LocalPostgres::shared()?;
        let tmp = Scratch::new("fed")?;
        let dir = tmp.0.clone();
        let signer = Signer::generate("pek-hub", "pek")?;
        let key_file = dir.join("hub-public.pem");
        localpg::write_private(&key_file, signer.public_pem())?;
        // The hub signs with the same key (what it mints for workers verifies with the
        // key file, and through its JWKS).
        let private_file = dir.join("hub-private.pem");
        localpg::write_private(&private_file, signer.private_pem())?;
        let secret = format!("federation-secret-{}", Uuid::new_v4().simple());
        let secret_file = dir.join("federation-secret");
        localpg::write_private(&secret_file, &secret)?;
        let operator_token = format!("operator-token-{}", Uuid::new_v4().simple());
        let op_file = dir.join("operator-tokens");
        localpg::write_private(&op_file, &operator_token)?;

        let hub_pg = pek::db::migrated_copy(pg, Mode::Hub).await?;
        let mut env = BTreeMap::new();
        env.insert("PEK_MODE".to_string(), "hub".to_string());
        let hub_url = match opts.hub_database_port {
            Some(p) => hub_pg
                .app_url
                .replace(&format!(":{}/", pg.port()), &format!(":{p}/")),
            None => hub_pg.app_url.clone(),
        };
        env.insert("DATABASE_URL".into(), hub_url);
        env.insert(
            "PEK_MIGRATION_DATABASE_URL".into(),
            hub_pg.owner_url.clone(),
        );
        env.insert(
            "PEK_JWT_PUBLIC_KEY_FILE".into(),
            key_file.display().to_string(),
        );
        env.insert(
            "PEK_JWT_PRIVATE_KEY_FILE".into(),
            private_file.display().to_string(),
        );
        env.insert(
            "PEK_FEDERATION_SECRET_FILE".into(),
            secret_file.display().to_string(),
        );
        env.insert(
            "PEK_OPERATOR_TOKEN_FILE".into(),
            op_file.display().to_string(),
        );
        env.insert(
            "PEK_BFF_DEADLINE_MS".into(),
            opts.bff_deadline_ms.to_string(),
        );
        env.insert("PEK_HEALTH_INTERVAL_MS".into(), "500".into());
        env.insert(
            "PEK_REALM_CACHE_TTL_SECS".into(),
            opts.realm_cache_ttl_secs.to_string(),
        );
        if let Some(r) = &opts.redis_url {
            env.insert("PEK_REDIS_URL".into(), r.clone());
        }
        env.insert(
            "PEK_PUBLIC_URL".into(),
            format!("http://127.0.0.1:{}", opts.hub_port.unwrap_or(0)),
        );
        env.extend(opts.hub_env.iter().cloned());
        let mut hub = match opts.hub_port {
            Some(p) => Instance::with_port("hub", env, p)?,
            None => Instance::new("hub", env)?,
        };
        hub.env.insert("PEK_PUBLIC_URL".into(), hub.url.clone());
        hub.start().await?;
        let hub_db = Db::connect(&hub_pg.app_url, 5).await?;

        let http = reqwest::Client::new();
        let mut workers = Vec::new();
        for realm in opts.realms {
            let realm = RealmId::parse(realm).map_err(|e| anyhow::anyhow!("{e}"))?;
            let wdb = pek::db::migrated_copy(pg, Mode::Worker).await?;
            let token_file = dir.join(format!("hub-token-{realm}"));
            localpg::write_private(
                &token_file,
                pek::federation::realm_token(secret.as_bytes(), &realm),
            )?;
            let mut env = BTreeMap::new();
            env.insert("PEK_MODE".to_string(), "worker".to_string());
            env.insert("PEK_REALM_ID".into(), realm.to_string());
            env.insert("DATABASE_URL".into(), wdb.app_url.clone());
            env.insert("PEK_MIGRATION_DATABASE_URL".into(), wdb.owner_url.clone());
            env.insert(
                "PEK_JWT_PUBLIC_KEY_FILE".into(),
                key_file.display().to_string(),
            );
            env.insert("PEK_HUB_URL".into(), hub.url.clone());
            env.insert(
                "PEK_HUB_TOKEN_FILE".into(),
                token_file.display().to_string(),
            );
            env.insert("PEK_OUTBOX_INTERVAL_MS".into(), "100".into());
            env.insert("PEK_HUB_SYNC_SECS".into(), "1".into());
            env.extend(opts.worker_env.iter().cloned());
            let mut instance = Instance::new(&format!("worker {realm}"), env)?;
            instance.start().await?;
            let resp = http
                .put(format!("{}/internal/v1/realms/{realm}", hub.url))
                .bearer_auth(&operator_token)
                .json(&serde_json::json!({
                    "displayName": realm.to_string(),
                    "endpoint": instance.url,
                    "version": "test",
                }))
                .send()
                .await?;
            if !resp.status().is_success() {
                bail!("registering {realm}: {}", resp.text().await?);
            }
            let db = Db::connect(&wdb.app_url, 3).await?;
            workers.push(Worker {
                realm,
                instance,
                db,
            });
        }
        Ok(Federation {
            hub,
            hub_db,
            hub_database: hub_pg,
            workers,
            signer,
            operator_token,
            dir,
            http,
            _tmp: tmp,
        })
    }

    pub fn worker(&mut self, realm: &str) -> &mut Worker {
        self.workers
            .iter_mut()
            .find(|w| w.realm.as_str() == realm)
            .expect("no such worker")
    }

    /// A hub user with a profile.
    pub async fn person(&self, sub: &str, first: &str, last: &str) -> anyhow::Result<Uuid> {
        let mut g = self
            .hub_db
            .global()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let id = pek::profile::upsert_user(&mut g, sub)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let input: pek::profile::ProfileInput = serde_json::from_value(serde_json::json!({
            "firstName": first, "lastName": last,
        }))?;
        pek::profile::put_profile(&mut g, id, &input)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        g.commit().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(id)
    }

    /// Makes `user` a GOD of a worker's realm (in the worker's database; the outbox
    /// tells the hub).
    pub async fn make_god(&self, realm: &str, user: Uuid) -> anyhow::Result<()> {
        let w = self
            .workers
            .iter()
            .find(|w| w.realm.as_str() == realm)
            .context("no such worker")?;
        pek::realm::ensure_local(&w.db, &w.realm, realm, Some(user))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// A hub token (what login issues): good at the hub only.
    pub fn token(&self, user: Uuid) -> String {
        self.signer.issue(user, 600).expect("signing a token")
    }

    /// A token for calling `realm`'s worker directly (what the hub mints when it
    /// forwards): good at that worker only.
    pub fn realm_token(&self, user: Uuid, realm: &str) -> String {
        self.signer
            .issue_to(user, &pek::auth::realm_audience("pek", realm), 600, None)
            .expect("signing a token")
    }

    /// Calls `url` (absolute) with a bearer token; returns status and JSON body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<(u16, serde_json::Value)> {
        let mut rb = self.http.request(method, url).bearer_auth(token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        let json = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
        };
        Ok((status, json))
    }

    /// `user` joins `group` of `realm` with consent: invited by the holder of `inviter`
    /// through `base` (the hub's or a worker's URL), the invitation accepted by `user`
    /// there, then made ACTIVE when `active`. Returns the membership.
    pub async fn join(
        &self,
        base: &str,
        realm: &str,
        group: Uuid,
        inviter: &str,
        user: Uuid,
        active: bool,
    ) -> anyhow::Result<serde_json::Value> {
        let api = format!("{base}/api/v1/realms/{realm}");
        let (s, m) = self
            .call(
                reqwest::Method::POST,
                &format!("{api}/groups/{group}/members"),
                inviter,
                Some(serde_json::json!({ "userId": user })),
            )
            .await?;
        anyhow::ensure!(s == 201, "inviting {user}: {s} {m}");
        let mid = m["id"].as_str().context("membership id")?.to_string();
        let (s, mut m) = self
            .call(
                reqwest::Method::POST,
                &format!("{api}/memberships/{mid}/accept"),
                &self.token(user),
                None,
            )
            .await?;
        anyhow::ensure!(s == 200, "accepting: {s} {m}");
        if active {
            let (s, b) = self
                .call(
                    reqwest::Method::PATCH,
                    &format!("{api}/memberships/{mid}"),
                    inviter,
                    Some(serde_json::json!({ "status": "ACTIVE" })),
                )
                .await?;
            anyhow::ensure!(s == 200, "to ACTIVE: {s} {b}");
            m = b;
        }
        Ok(m)
    }

    /// Whether the hub's federation table has `user` in `realm`.
    /// The registry status (`active`, `down`, `maintenance`) the hub's admin API reports
    /// for `realm`.
    pub async fn registry_status(&self, realm: &str) -> anyhow::Result<String> {
        let v: serde_json::Value = self
            .http
            .get(format!("{}/internal/v1/realms", self.hub.url))
            .bearer_auth(&self.operator_token)
            .send()
            .await?
            .json()
            .await?;
        v["items"]
            .as_array()
            .and_then(|items| items.iter().find(|r| r["id"] == realm))
            .and_then(|r| r["status"].as_str())
            .map(str::to_string)
            .with_context(|| format!("realm {realm} not in the registry: {v}"))
    }

    pub async fn hub_knows(&self, user: Uuid, realm: &str) -> anyhow::Result<bool> {
        let realms = pek::federation::user_realms(&self.hub_db, user)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(realms.iter().any(|r| r.as_str() == realm))
    }

    /// What the hub holds about `user` in `realm`, for a failed wait: whether it knows
    /// the user at all (a report about an unknown user is acknowledged and dropped) and
    /// the newest seq it applied (an older one arriving later is ignored).
    async fn hub_side(&self, user: Uuid, realm: &str) -> String {
        let read = async {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&self.hub_database.superuser_url).await?;
            let known: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)")
                    .bind(user)
                    .fetch_one(&mut c)
                    .await?;
            let applied: Option<i64> = sqlx::query_scalar(
                "SELECT seq FROM federation_applied WHERE realm_id = $1 AND user_id = $2",
            )
            .bind(realm)
            .bind(user)
            .fetch_optional(&mut c)
            .await?;
            let pending: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM realm_pending WHERE realm_id = $1 AND user_id = $2)",
            )
            .bind(realm)
            .bind(user)
            .fetch_one(&mut c)
            .await?;
            anyhow::Ok(format!(
                "the hub {} this user, last applied seq {}, pending there: {pending}",
                if known { "knows" } else { "does not know" },
                applied.map_or("none".to_string(), |s| s.to_string()),
            ))
        };
        read.await
            .unwrap_or_else(|e| format!("the hub's side unreadable: {e}"))
    }

    /// Waits until the hub's federation table has `user` in `realm`.
    pub async fn wait_hub_knows(
        &self,
        user: Uuid,
        realm: &str,
        within: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        while !self.hub_knows(user, realm).await? {
            if Instant::now() > deadline {
                // What the worker still holds says which side lost it: rows waiting in
                // its outbox (delivery stuck) or none (the hub took them and dropped it).
                let waiting = match self.workers.iter().find(|w| w.realm.as_str() == realm) {
                    Some(w) => match pek::federation::outbox_len(&w.db, &w.realm).await {
                        Ok(n) => format!("{n} row(s) waiting in {realm}'s outbox"),
                        Err(e) => format!("{realm}'s outbox unreadable: {e}"),
                    },
                    None => format!("{realm} is not a worker of this federation"),
                };
                let hub = self.hub_side(user, realm).await;
                bail!(
                    "the hub did not learn that {user} is in {realm} within {within:?}; \
                     {waiting}; {hub}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }
}
