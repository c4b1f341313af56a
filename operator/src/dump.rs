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

/// The realm-schema migrations this version knows (the worker's own set): a dump that applied
/// others comes from a newer PéK.
pub fn known_migrations() -> Vec<i64> {
    sqlx::migrate!("../migrations/realm")
        .iter()
        .map(|m| m.version)
        .collect()
}

/// Where dumps go and how they are made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dumps {
    /// Directory of the dump files (the mounted volume).
    pub dir: PathBuf,
    /// The `pg_dump` program (a path, or a name looked up on PATH).
    pub pg_dump: PathBuf,
    /// The `pg_restore` program (a path, or a name looked up on PATH): reads and restores the
    /// dumps a Realm's `spec.database.restoreFrom` names.
    pub pg_restore: PathBuf,
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

/// The last [`STDERR_TAIL`] bytes of a tool's error output (on a character boundary).
fn stderr_tail(stderr: &[u8]) -> String {
    let stderr = String::from_utf8_lossy(stderr);
    let stderr = stderr.trim();
    let mut start = stderr.len().saturating_sub(STDERR_TAIL);
    while !stderr.is_char_boundary(start) {
        start += 1;
    }
    stderr[start..].to_string()
}

/// The application name of a restore's database session (a restore left behind by a killed
/// operator is found by it and ended before the next attempt).
pub const RESTORE_APPLICATION_NAME: &str = "pek-operator-restore";

/// What a dump holds, as far as a restore must know before it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    /// The realm ids of the dump's `realms` table (`hub` included: every realm database has it).
    pub realm_ids: Vec<String>,
    /// The realm-schema migrations applied in the dumped database (version, success).
    pub migrations: Vec<(i64, bool)>,
}

impl Archive {
    /// Parses the COPY blocks `pg_restore --data-only --table=realms --table=_sqlx_migrations
    /// --file=-` prints (text COPY format: one row a line, tab-separated, `\.` ends a block).
    pub fn parse(sql: &str) -> Result<Archive, String> {
        let mut realm_ids = Vec::new();
        let mut migrations = Vec::new();
        let (mut saw_realms, mut saw_migrations) = (false, false);
        let mut block: Option<&str> = None;
        for line in sql.lines() {
            match block {
                None => {
                    if let Some(rest) = line.strip_prefix("COPY ") {
                        let table = rest.split_whitespace().next().unwrap_or_default();
                        let table = table.rsplit('.').next().unwrap_or_default();
                        block = match table {
                            "realms" => {
                                saw_realms = true;
                                Some("realms")
                            }
                            "_sqlx_migrations" => {
                                saw_migrations = true;
                                Some("_sqlx_migrations")
                            }
                            _ => Some("other"),
                        };
                    }
                }
                Some(_) if line == "\\." => block = None,
                Some("realms") => {
                    let id = line.split('\t').next().unwrap_or_default();
                    realm_ids.push(id.to_string());
                }
                Some("_sqlx_migrations") => {
                    let mut cols = line.split('\t');
                    let version = cols
                        .next()
                        .and_then(|v| v.parse::<i64>().ok())
                        .ok_or_else(|| format!("unreadable migration row {line:?}"))?;
                    let success = cols.nth(2) == Some("t");
                    migrations.push((version, success));
                }
                Some(_) => {}
            }
        }
        if !saw_realms || !saw_migrations {
            return Err(
                "it holds no PéK realm database (no realms or _sqlx_migrations \
                        table data)"
                    .into(),
            );
        }
        Ok(Archive {
            realm_ids,
            migrations,
        })
    }

    /// Whether this dump may be restored into realm `realm_id` by an operator that knows the
    /// realm-schema migrations `known`: its rows must be of that realm (they keep their
    /// `realm_id`, which row-level security and every key include), and every migration it
    /// applied must be one this version has (a dump of a newer schema would leave the worker
    /// with tables it does not know). Older dumps are fine: the worker applies the rest.
    pub fn check(&self, realm_id: &str, known: &[i64]) -> Result<(), String> {
        let others: Vec<&str> = self
            .realm_ids
            .iter()
            .map(String::as_str)
            .filter(|id| *id != "hub" && *id != realm_id)
            .collect();
        if !others.is_empty() {
            return Err(format!(
                "it is a dump of realm {}, not {realm_id}: its rows keep their realm id, so it \
                 restores only into a Realm with that realmId",
                others.join(", ")
            ));
        }
        if let Some((v, _)) = self.migrations.iter().find(|(_, ok)| !ok) {
            return Err(format!("its migration {v} had failed"));
        }
        let unknown: Vec<String> = self
            .migrations
            .iter()
            .filter(|(v, _)| !known.contains(v))
            .map(|(v, _)| v.to_string())
            .collect();
        if !unknown.is_empty() {
            return Err(format!(
                "it has migrations this operator does not know ({}): it comes from a newer PéK; \
                 restore it with an operator of that version",
                unknown.join(", ")
            ));
        }
        Ok(())
    }
}

impl Dumps {
    /// Dumps `database` of the server `target` names (as its admin) to
    /// `<dir>/<stem>-<UTC time>.dump`.
    pub async fn dump(
        &self,
        target: &AdminTarget,
        database: &str,
        stem: &str,
    ) -> Result<DumpFile, Error> {
        let (url, password) = target.dump_connection(database);
        self.write(&url, password.as_deref(), None, database, stem)
            .await
    }

    /// A scheduled backup (`pek-operator backup`): dumps the database `url` names as its role —
    /// the realm's owner, which the forced row-level security binds — with row-level security
    /// on and `pek.realm_id` set to `realm_id`, so it reads exactly the realm's rows without a
    /// role that bypasses RLS. Afterwards only this stem's backups older than the retention are
    /// removed (the one just written always stays).
    pub async fn backup(&self, url: &str, realm_id: &str, stem: &str) -> Result<DumpFile, Error> {
        let (url, password) = crate::db::split_password(url)
            .map_err(|e| Error::Dump(format!("backup: the database URL: {e}")))?;
        let database = url.rsplit('/').next().unwrap_or_default().to_string();
        let database = database.split('?').next().unwrap_or_default().to_string();
        self.write(&url, password.as_deref(), Some(realm_id), &database, stem)
            .await
    }

    /// Runs pg_dump into `<dir>/<stem>-<UTC time>.dump` (`realm`: as a role under RLS, scoped
    /// to that realm; see [`Self::backup`]).
    async fn write(
        &self,
        url: &str,
        password: Option<&str>,
        realm: Option<&str>,
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
        let mut cmd = tokio::process::Command::new(&self.pg_dump);
        cmd.arg("--format=custom")
            .arg("--no-password")
            .arg("--file")
            .arg(&partial)
            .arg("--dbname")
            .arg(url)
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
        if let Some(realm) = realm {
            // pg_dump's default, row_security off, makes a role under RLS fail instead of
            // reading a filtered table; on, with the realm set, it reads the realm's rows.
            cmd.arg("--enable-row-security")
                .env("PGOPTIONS", format!("-c pek.realm_id={realm}"));
        }
        let out = cmd.output().await.map_err(|e| {
            failed(format!(
                "cannot run {}: {e} (the operator's image needs pg_dump, see PEK_PG_DUMP)",
                self.pg_dump.display()
            ))
        })?;
        if !out.status.success() {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(failed(format!(
                "pg_dump exited with {}: {}",
                out.status,
                stderr_tail(&out.stderr)
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
        // A backup prunes only its own Realm's backups; the dump before a DROP prunes the
        // whole place with the operator's retention.
        let only = realm.map(|_| format!("{stem}-"));
        self.prune(&file.path, only.as_deref()).await;
        Ok(file)
    }

    /// The dump `file` (a `spec.database.restoreFrom.dumpFile`) in the dump place; a name that
    /// could leave it is refused whatever the API server accepted.
    pub fn restore_path(&self, file: &str) -> Result<PathBuf, Error> {
        if !pek_crds::RestoreSource::is_valid_file_name(file) {
            return Err(Error::Restore(format!(
                "spec.database.restoreFrom.dumpFile {file:?} is not a dump file name (a plain \
                 name ending in .dump, no directories)"
            )));
        }
        Ok(self.dir.join(file))
    }

    /// Reads what a restore must know of the dump at `path` (see [`Archive`]): a missing,
    /// unreadable or foreign file is an error that says so, before anything is restored.
    pub async fn inspect(&self, path: &Path) -> Result<Archive, Error> {
        let failed = |what: String| {
            Error::Restore(format!("cannot restore from {}: {what}", path.display()))
        };
        match tokio::fs::metadata(path).await {
            Ok(m) if m.is_file() => {}
            Ok(_) => return Err(failed("not a file".into())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(failed(format!(
                    "no such dump in the operator's dump place {} (spec.database.restoreFrom.\
                     dumpFile names a file there)",
                    self.dir.display()
                )))
            }
            Err(e) => return Err(failed(e.to_string())),
        }
        let out = tokio::process::Command::new(&self.pg_restore)
            .arg("--data-only")
            .arg("--table=realms")
            .arg("--table=_sqlx_migrations")
            .arg("--file=-")
            .arg(path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| {
                failed(format!(
                    "cannot run {}: {e} (the operator's image needs pg_restore, see \
                     PEK_PG_RESTORE)",
                    self.pg_restore.display()
                ))
            })?;
        if !out.status.success() {
            return Err(failed(format!(
                "not a readable pg_dump custom-format archive: pg_restore exited with {}: {}",
                out.status,
                stderr_tail(&out.stderr)
            )));
        }
        Archive::parse(&String::from_utf8_lossy(&out.stdout)).map_err(failed)
    }

    /// Restores the dump at `path` into the (empty) database `url` names, as that URL's role
    /// (the realm's owner), in one transaction: a restore that fails or is cut off leaves the
    /// database as empty as it was.
    ///
    /// Why this way: the realm tables FORCE row-level security, which binds their owner too, so
    /// loading rows as the owner into an already migrated schema (a data-only restore) is
    /// refused (`row_security = off`, which pg_restore sets, errors instead of filtering). A
    /// full restore into an empty database does not meet RLS at all: pg_dump puts every
    /// table's `ENABLE ROW LEVEL SECURITY` and its policies in the post-data section, after the
    /// data (FORCE alone, in the table's definition, enforces nothing while RLS is not
    /// enabled). So schema and data are restored together, by the owner role — no role that
    /// bypasses RLS writes a row, and the objects are the owner's as after a migration.
    /// `--no-owner` and `--no-privileges`: the dumped database's role names may differ from
    /// this realm's (another `spec.database.name`); the worker grants its login role the
    /// privileges it needs at every start, as after its migrations.
    pub async fn restore(
        &self,
        path: &Path,
        url: &str,
        password: Option<&str>,
    ) -> Result<(), Error> {
        let mut cmd = tokio::process::Command::new(&self.pg_restore);
        cmd.arg("--single-transaction")
            .arg("--exit-on-error")
            .arg("--no-owner")
            .arg("--no-privileges")
            .arg("--no-password")
            .arg("--dbname")
            .arg(url)
            .arg(path)
            .env("PGAPPNAME", RESTORE_APPLICATION_NAME)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // Through the environment, never the command line.
        if let Some(p) = password {
            cmd.env("PGPASSWORD", p);
        }
        let out = cmd.output().await.map_err(|e| {
            Error::Restore(format!(
                "cannot run {}: {e} (the operator's image needs pg_restore, see PEK_PG_RESTORE)",
                self.pg_restore.display()
            ))
        })?;
        if !out.status.success() {
            return Err(Error::Restore(format!(
                "restoring {} failed, nothing was restored: pg_restore exited with {}: {}",
                path.display(),
                out.status,
                stderr_tail(&out.stderr)
            )));
        }
        info!(dump = %path.display(), "database restored");
        Ok(())
    }

    /// Removes `*.dump` files older than the retention (never `keep`, the one just written;
    /// with `only`, just the files whose name starts with it).
    async fn prune(&self, keep: &Path, only: Option<&str>) {
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
            let name = entry.file_name();
            if only.is_some_and(|p| !name.to_string_lossy().starts_with(p)) {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What `pg_restore --data-only --table=realms --table=_sqlx_migrations --file=-` prints
    /// for a dump of realm kszk (abridged).
    const KSZK: &str = "--\n-- PostgreSQL database dump\n--\nSET row_security = off;\n\n\
COPY public._sqlx_migrations (version, description, installed_on, success, checksum, execution_time) FROM stdin;\n\
20261123000001\trealm core\t2026-12-07 10:00:00+00\tt\t\\\\x00\t12\n\
20261123200001\tevaluation\t2026-12-07 10:00:00+00\tt\t\\\\x00\t8\n\
\\.\n\n\
COPY public.realms (id, display_name, created_at) FROM stdin;\n\
hub\tHub\t2026-12-07 10:00:00+00\n\
kszk\tKSZK\t2026-12-07 10:00:00+00\n\
\\.\n";

    #[test]
    fn a_dump_restores_only_into_its_own_realm_and_schema() {
        let archive = Archive::parse(KSZK).expect("parses");
        assert_eq!(archive.realm_ids, ["hub", "kszk"]);
        assert_eq!(
            archive.migrations,
            [(20261123000001, true), (20261123200001, true)]
        );
        let known = known_migrations();
        assert!(known.len() > 2, "{known:?}");
        assert_eq!(archive.check("kszk", &known), Ok(()));
        let other = archive.check("kir-dev", &known).expect_err("another realm");
        assert!(other.contains("realm kszk, not kir-dev"), "{other}");
        let newer = archive
            .check("kszk", &[20261123000001])
            .expect_err("a newer schema");
        assert!(newer.contains("20261123200001"), "{newer}");
        let failed = Archive {
            migrations: vec![(20261123000001, false)],
            ..archive.clone()
        };
        assert!(failed.check("kszk", &known).is_err());
        assert!(Archive::parse("SET row_security = off;\n").is_err());
    }

    #[tokio::test]
    async fn a_missing_or_foreign_file_is_refused_before_anything_is_restored() {
        let dir = std::env::temp_dir().join(format!("pek-op-restore-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let dumps = Dumps {
            dir: dir.clone(),
            pg_dump: "pg_dump".into(),
            pg_restore: "pg_restore".into(),
            retention: None,
        };
        assert!(dumps.restore_path("../etc/passwd.dump").is_err());
        let missing = dumps.restore_path("gone.dump").expect("a name");
        let err = dumps.inspect(&missing).await.expect_err("missing");
        assert_eq!(err.reason(), pek_crds::condition::Reason::RestoreFailed);
        assert!(err.message().contains("no such dump"), "{}", err.message());
        std::fs::remove_dir_all(&dir).ok();
    }
}
