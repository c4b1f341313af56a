//! The logical dump written before every DROP of a realm's database.
//!
//! It runs **inside the operator** (`pg_dump --format=custom` as a child process), not as a
//! Kubernetes Job: the dump and the DROP are one step of the finalizer, under the advisory lock
//! the operator holds on the database name while it drops it, so no other reconcile or second
//! operator can provision or drop that database between the two; the operator sees pg_dump's
//! exit status and the finished file itself (no Job to create, poll, read the outcome of and
//! clean up, no Job RBAC), and a failed dump simply means no DROP. The cost: the operator's
//! image carries `pg_dump` and its pod mounts the dump volume (chart:
//! `operator.dumps.persistentVolumeClaim`).
//!
//! A dump is first written as a hidden `.partial` file and renamed only after pg_dump succeeded
//! and the file is on disk, so a `*.dump` file is always complete. Dumps older than the
//! retention are removed after each new one.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use k8s_openapi::jiff::Timestamp;
use tracing::{info, warn};

use crate::db::AdminTarget;
use crate::Error;

/// Where dumps go and how they are made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dumps {
    /// Directory of the dump files (the mounted volume).
    pub dir: PathBuf,
    /// The `pg_dump` program (a path, or a name looked up on PATH).
    pub pg_dump: PathBuf,
    /// Dumps older than this are removed after a new one is written; None keeps every dump.
    pub retention: Option<Duration>,
}

/// A finished dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpFile {
    pub path: PathBuf,
    pub bytes: u64,
}

impl fmt::Display for DumpFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} bytes)", self.path.display(), self.bytes)
    }
}

/// At most this much of pg_dump's error output goes into a message.
const STDERR_TAIL: usize = 600;

impl Dumps {
    /// Dumps `database` of the server `target` names (as its admin) to
    /// `<dir>/<stem>-<UTC time>.dump`.
    pub async fn dump(
        &self,
        target: &AdminTarget,
        database: &str,
        stem: &str,
    ) -> Result<DumpFile, Error> {
        let failed = |what: String| Error::Dump(format!("dump of database {database}: {what}"));
        tokio::fs::create_dir_all(&self.dir).await.map_err(|e| {
            failed(format!(
                "cannot create the dump directory {}: {e}",
                self.dir.display()
            ))
        })?;
        let name = format!(
            "{stem}-{}.dump",
            Timestamp::now().strftime("%Y%m%dT%H%M%SZ")
        );
        let path = self.dir.join(&name);
        let partial = self.dir.join(format!(".{name}.partial"));
        let (url, password) = target.dump_connection(database);
        let mut cmd = tokio::process::Command::new(&self.pg_dump);
        cmd.arg("--format=custom")
            .arg("--no-password")
            .arg("--file")
            .arg(&partial)
            .arg("--dbname")
            .arg(&url)
            .env("PGAPPNAME", "pek-operator-dump")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // An operator that shuts down mid-dump leaves no pg_dump behind.
            .kill_on_drop(true);
        // The password goes through the environment, never the command line (which every
        // process in the pod could read).
        if let Some(p) = password {
            cmd.env("PGPASSWORD", p);
        }
        let out = cmd.output().await.map_err(|e| {
            failed(format!(
                "cannot run {}: {e} (the operator's image needs pg_dump, see PEK_PG_DUMP)",
                self.pg_dump.display()
            ))
        })?;
        if !out.status.success() {
            let _ = tokio::fs::remove_file(&partial).await;
            let stderr = String::from_utf8_lossy(&out.stderr);
            let stderr = stderr.trim();
            let mut start = stderr.len().saturating_sub(STDERR_TAIL);
            while !stderr.is_char_boundary(start) {
                start += 1;
            }
            return Err(failed(format!(
                "pg_dump exited with {}: {}",
                out.status,
                &stderr[start..]
            )));
        }
        let synced = async {
            tokio::fs::File::open(&partial).await?.sync_all().await?;
            tokio::fs::rename(&partial, &path).await?;
            tokio::fs::metadata(&path).await
        }
        .await;
        let bytes = match synced {
            Ok(m) => m.len(),
            Err(e) => {
                let _ = tokio::fs::remove_file(&partial).await;
                return Err(failed(format!("cannot finish {}: {e}", path.display())));
            }
        };
        let file = DumpFile { path, bytes };
        info!(database, dump = %file, "database dumped");
        self.prune(&file.path).await;
        Ok(file)
    }

    /// Removes `*.dump` files older than the retention (never `keep`, the one just written).
    async fn prune(&self, keep: &Path) {
        let Some(retention) = self.retention else {
            return;
        };
        let Ok(mut entries) = tokio::fs::read_dir(&self.dir).await else {
            return;
        };
        let now = SystemTime::now();
        while let Ok(Some(entry)) = entries.next_entry().await {
            let path = entry.path();
            if path == keep || path.extension().is_none_or(|e| e != "dump") {
                continue;
            }
            let old = entry
                .metadata()
                .await
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age > retention);
            if old {
                match tokio::fs::remove_file(&path).await {
                    Ok(()) => {
                        info!(dump = %path.display(), "removed a dump older than the retention")
                    }
                    Err(e) => {
                        warn!(dump = %path.display(), error = %e, "could not remove an old dump")
                    }
                }
            }
        }
    }
}
