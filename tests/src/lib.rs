//! Cross-crate integration and end-to-end tests live in this package.
//!
//! Helpers shared by them: finding and starting a real `pek` hub process.

pub mod browser;
pub mod federation;
pub mod proxy;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

/// The workspace root (parent of this package).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The `pek` binary: `$PEK_BIN`, else `<target dir>/debug/pek`, built with
/// `cargo build --bin pek` when it is missing.
pub fn pek_binary() -> anyhow::Result<PathBuf> {
    if let Ok(bin) = std::env::var("PEK_BIN") {
        let p = PathBuf::from(bin);
        if p.is_file() {
            return Ok(p);
        }
        bail!("PEK_BIN={} is not a file", p.display());
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join("target"));
    let bin = target.join("debug").join("pek");
    if !bin.is_file() {
        eprintln!("building the pek binary ({} is missing)", bin.display());
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--bin", "pek"])
            .current_dir(workspace_root())
            .status()
            .context("running cargo build --bin pek")?;
        if !status.success() || !bin.is_file() {
            bail!("could not build the pek binary (cargo build --bin pek failed); set PEK_BIN");
        }
    }
    Ok(bin)
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A running `pek serve` hub process, killed on drop.
pub struct HubProcess {
    child: Child,
    pub url: String,
    pub token: String,
    _dir: auth_support::Scratch,
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl HubProcess {
    /// Starts a hub on a fresh database of the throwaway Postgres and waits for /healthz.
    pub async fn start() -> anyhow::Result<Self> {
        let pg = localpg::LocalPostgres::shared()?;
        let db = pek::db::migrated_copy(pg, pek::config::Mode::Hub).await?;
        let bin = pek_binary()?;
        let port = free_port()?;
        let dir = auth_support::Scratch::new("hub-test")?;
        let token = format!("op-token-{port}-{}", std::process::id());
        let token_file = dir.write("operator-tokens", &format!("some-other-token\n{token}\n"))?;
        let url = format!("http://127.0.0.1:{port}");
        let child = Command::new(&bin)
            .arg("serve")
            .env("PEK_MODE", "hub")
            .env("DATABASE_URL", &db.app_url)
            .env("PEK_MIGRATION_DATABASE_URL", &db.owner_url)
            .env("PEK_LISTEN", format!("127.0.0.1:{port}"))
            .env("PEK_PUBLIC_URL", &url)
            .env("PEK_OPERATOR_TOKEN_FILE", &token_file)
            .env("PEK_LOG_FORMAT", "json")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut hub = HubProcess {
            child,
            url,
            token,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = hub.child.try_wait()? {
                bail!("the hub exited during start-up: {status}");
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(hub);
            }
            if Instant::now() > deadline {
                bail!("the hub did not listen on port {port} within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

pub mod auth_support;
pub mod oidc_support;
pub mod web_support;
