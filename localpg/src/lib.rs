//! A throwaway PostgreSQL cluster built from the machine's own server binaries.
//!
//! Used by the test suites (each test gets its own database; a test process starts its own
//! cluster, or joins the one a runner started for all of them, see [`SHARED_CLUSTER_ENV`]),
//! by `pek local` (the newcomer's one-command federation) and by the operator's
//! provisioning tests. Nothing is mocked: this is the real server.
//!
//! `initdb` refuses to run as root, so when we are root the server runs as the
//! `postgres` system user (or `nobody`). The postmaster gets a parent-death signal, so
//! a test process that exits without dropping anything still shuts its cluster down;
//! data directories left behind by dead processes are swept at the next start.
//!
//! The cluster is private to whoever started it: its directory (Unix socket, log, data)
//! is 0700, the socket 0700, and every login — Unix socket or TCP — needs a password
//! (SCRAM), never `trust`. [`private_dir`] and [`write_private`] are the helpers the
//! harness and `pek local` use for their own secrets (signing keys, tokens).

use std::ffi::CString;
use std::io::Write as _;
use std::net::TcpListener;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rand::distributions::Alphanumeric;
use rand::Rng;

/// Login role that owns every database and runs migrations.
pub const OWNER_ROLE: &str = "pek_owner";
/// Login role the services use: not an owner, no BYPASSRLS, so row-level security applies.
pub const APP_ROLE: &str = "pek_app";

const DIR_PREFIX: &str = "pek-pg-";

/// Names a cluster file ([`LocalPostgres::publish`]) whose cluster every test process
/// started with it joins through [`LocalPostgres::shared`], instead of starting a cluster of
/// its own: the test command runs all test binaries against one server (`examples/
/// test_cluster.rs`), which saves an `initdb` and a server start per binary and lets the
/// binaries share [template databases](LocalPostgres::database_from_template).
pub const SHARED_CLUSTER_ENV: &str = "PEK_TEST_POSTGRES";

#[derive(Debug, thiserror::Error)]
pub enum LocalPgError {
    #[error(
        "PostgreSQL server binaries (initdb, postgres) not found; install them \
         (Debian: `apt-get install -y postgresql`) or set PEK_PG_BINDIR"
    )]
    BinariesNotFound,
    #[error(
        "running as root but neither a `postgres` nor a `nobody` user exists to run the server"
    )]
    NoUnprivilegedUser,
    #[error("{what} failed: {detail}")]
    Command { what: String, detail: String },
    #[error("postgres did not become ready within {0:?}; log: {1}")]
    NotReady(Duration, String),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("cluster file {path}: {detail}")]
    ClusterFile { path: String, detail: String },
    #[error("building template database {name}: {detail}")]
    Template { name: String, detail: String },
}

/// Connection strings for one database of the throwaway cluster.
#[derive(Debug, Clone)]
pub struct Database {
    pub name: String,
    /// Owner role: migrations and provisioning.
    pub owner_url: String,
    /// Service role: what `pek serve` connects with (RLS applies).
    pub app_url: String,
    /// Cluster superuser on this database (test set-up only).
    pub superuser_url: String,
}

#[derive(Debug)]
pub struct LocalPostgres {
    dir: PathBuf,
    port: u16,
    superuser_password: String,
    role_password: String,
    child: Option<Child>,
    /// False for a cluster joined through [`SHARED_CLUSTER_ENV`]: whoever started it stops
    /// it and removes its directory.
    owned: bool,
}

struct RunAs {
    uid: libc::uid_t,
    gid: libc::gid_t,
}

fn random_token(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect::<String>()
        .to_lowercase()
}

/// Finds the directory holding `initdb` and `postgres`.
pub fn find_bindir() -> Result<PathBuf, LocalPgError> {
    if let Ok(dir) = std::env::var("PEK_PG_BINDIR") {
        let dir = PathBuf::from(dir);
        if dir.join("initdb").is_file() {
            return Ok(dir);
        }
        return Err(LocalPgError::BinariesNotFound);
    }
    let mut candidates: Vec<(u32, PathBuf)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        for entry in entries.flatten() {
            let bin = entry.path().join("bin");
            if let Some(version) = entry
                .file_name()
                .to_str()
                .and_then(|v| v.parse::<u32>().ok())
            {
                if bin.join("initdb").is_file() && bin.join("postgres").is_file() {
                    candidates.push((version, bin));
                }
            }
        }
    }
    candidates.sort();
    if let Some((_, bin)) = candidates.pop() {
        return Ok(bin);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").is_file() {
            return Ok(dir);
        }
    }
    if let Ok(path) = std::env::var("PATH") {
        for p in std::env::split_paths(&path) {
            if p.join("initdb").is_file() && p.join("postgres").is_file() {
                return Ok(p);
            }
        }
    }
    Err(LocalPgError::BinariesNotFound)
}

fn run_as() -> Result<Option<RunAs>, LocalPgError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    for name in ["postgres", "nobody"] {
        let cname = CString::new(name).map_err(|_| LocalPgError::NoUnprivilegedUser)?;
        // SAFETY: getpwnam returns a pointer into static storage or null; we copy the
        // two integers out immediately and this module only calls it from one thread
        // at a time (cluster start is serialised by the callers' OnceLock / ownership).
        let pw = unsafe { libc::getpwnam(cname.as_ptr()) };
        if !pw.is_null() {
            let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
            return Ok(Some(RunAs { uid, gid }));
        }
    }
    Err(LocalPgError::NoUnprivilegedUser)
}

fn command(bin: &Path, who: &Option<RunAs>, parent_death: bool) -> Command {
    let mut cmd = Command::new(bin);
    let ids = who.as_ref().map(|w| (w.uid, w.gid));
    // SAFETY: only async-signal-safe libc calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if let Some((uid, gid)) = ids {
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(gid) != 0
                    || libc::setuid(uid) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
            }
            // Set after the uid change: changing credentials clears the death signal.
            if parent_death && libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGINT) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

fn pid_alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks for existence.
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

/// Removes data directories of clusters whose creating process is gone.
fn sweep_stale(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(DIR_PREFIX)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if pid_alive(pid) {
            continue;
        }
        // The postmaster may outlive its creator for a moment while it shuts down.
        let pm_pid = std::fs::read_to_string(entry.path().join("data/postmaster.pid"))
            .ok()
            .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<i32>().ok()));
        if pm_pid.is_some_and(pid_alive) {
            continue;
        }
        let _ = std::fs::remove_dir_all(entry.path());
    }
}

/// Where clusters live: `PEK_PG_TMPDIR` if set, else `/dev/shm` when it is a memory file
/// system with room to spare, else the temporary directory. A throwaway cluster's files are
/// never needed after it stops, and the test suites create hundreds of databases (a few MB
/// of catalog files each): on disk, creating and removing them took a minute of the test
/// command, in memory a few seconds.
fn cluster_base() -> PathBuf {
    if let Some(dir) = std::env::var_os("PEK_PG_TMPDIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    const ROOM: u64 = 4 << 30;
    let shm = Path::new("/dev/shm");
    let roomy = CString::new("/dev/shm").ok().is_some_and(|c| {
        // SAFETY: statvfs fills the zeroed struct we pass; the path is NUL-terminated.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        let ok = unsafe { libc::statvfs(c.as_ptr(), &mut st) } == 0;
        ok && (st.f_bavail as u64).saturating_mul(st.f_frsize as u64) >= ROOM
    });
    // SAFETY: access only reads the NUL-terminated path.
    let writable = CString::new("/dev/shm")
        .ok()
        .is_some_and(|c| unsafe { libc::access(c.as_ptr(), libc::W_OK) } == 0);
    if roomy && writable && shm.is_dir() {
        return shm.to_path_buf();
    }
    std::env::temp_dir()
}

/// Creates `dir` (and missing parents) and makes it 0700: only its owner may list or
/// enter it. An existing directory is tightened too.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Writes a secret to `path` as a 0600 file (created with that mode, so it is never
/// readable by others, not even for a moment; an existing file is tightened first).
pub fn write_private(path: &Path, contents: impl AsRef<[u8]>) -> std::io::Result<()> {
    if path.exists() {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents.as_ref())?;
    f.sync_all()
}

fn chown(path: &Path, w: &RunAs) -> Result<(), LocalPgError> {
    let c =
        CString::new(path.as_os_str().as_encoded_bytes()).map_err(|e| LocalPgError::Command {
            what: "chown".into(),
            detail: e.to_string(),
        })?;
    // SAFETY: valid NUL-terminated path.
    if unsafe { libc::chown(c.as_ptr(), w.uid, w.gid) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(())
}

fn free_port() -> Result<u16, LocalPgError> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn check(what: &str, out: std::process::Output) -> Result<(), LocalPgError> {
    if out.status.success() {
        Ok(())
    } else {
        Err(LocalPgError::Command {
            what: what.to_string(),
            detail: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        })
    }
}

impl LocalPostgres {
    /// Starts a new cluster in a fresh temporary directory. Blocking; takes about a
    /// second. The cluster stops and its directory is removed when this value drops.
    pub fn start() -> Result<Self, LocalPgError> {
        Self::start_inner(false)
    }

    /// Starts a new cluster that stops when the calling *thread* ends, even if it never
    /// drops this value (killed): the server gets a parent-death signal.
    pub fn start_tied_to_thread() -> Result<Self, LocalPgError> {
        Self::start_inner(true)
    }

    /// The cluster of this test process: the one named by [`SHARED_CLUSTER_ENV`] when it
    /// is set (joined, never stopped from here), otherwise [`Self::per_process`].
    pub fn shared() -> Result<&'static LocalPostgres, LocalPgError> {
        static JOINED: OnceLock<Result<LocalPostgres, String>> = OnceLock::new();
        match std::env::var_os(SHARED_CLUSTER_ENV) {
            Some(file) if !file.is_empty() => JOINED
                .get_or_init(|| Self::join(Path::new(&file)).map_err(|e| e.to_string()))
                .as_ref()
                .map_err(|e| LocalPgError::Command {
                    what: format!("joining the cluster named by {SHARED_CLUSTER_ENV}"),
                    detail: e.clone(),
                }),
            _ => Self::per_process(),
        }
    }

    /// One cluster for this process alone, started on first use and stopped when the
    /// process exits (test binaries never drop statics, so the server gets a parent-death
    /// signal instead). For tests that create cluster-wide objects (roles) or look at every
    /// database of the cluster, which a cluster shared with other processes would disturb.
    pub fn per_process() -> Result<&'static LocalPostgres, LocalPgError> {
        static SHARED: OnceLock<Result<LocalPostgres, String>> = OnceLock::new();
        let result = SHARED.get_or_init(|| {
            // The death signal fires when the *thread* that forked exits, so fork
            // from a thread that lives as long as the process.
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::Builder::new()
                .name("localpg-keeper".into())
                .spawn(move || {
                    let _ = tx.send(LocalPostgres::start_inner(true));
                    loop {
                        std::thread::park();
                    }
                })
                .map_err(|e| e.to_string())?;
            rx.recv()
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())
        });
        result.as_ref().map_err(|e| LocalPgError::Command {
            what: "starting the shared test cluster".into(),
            detail: e.clone(),
        })
    }

    fn start_inner(parent_death: bool) -> Result<Self, LocalPgError> {
        let bindir = find_bindir()?;
        let who = run_as()?;
        let base = cluster_base();
        sweep_stale(&base);
        let dir = base.join(format!(
            "{DIR_PREFIX}{}-{}",
            std::process::id(),
            random_token(8)
        ));
        // 0700 from the start: it holds the socket, the log and the password file.
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let data = dir.join("data");
        let superuser_password = random_token(24);
        let role_password = random_token(24);
        let pwfile = dir.join("pwfile");
        write_private(&pwfile, &superuser_password)?;
        if let Some(w) = &who {
            for p in [&dir, &pwfile] {
                chown(p, w)?;
            }
        }
        let mut this = LocalPostgres {
            dir: dir.clone(),
            port: 0,
            superuser_password,
            role_password,
            child: None,
            owned: true,
        };
        let out = command(&bindir.join("initdb"), &who, false)
            .args(["-D"])
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                // Password logins only, also on the Unix socket: another local user
                // must not get in just by reaching the socket.
                "--auth-local=scram-sha-256",
                "--auth-host=scram-sha-256",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .stdin(Stdio::null())
            .output()?;
        let _ = std::fs::remove_file(&pwfile);
        check("initdb", out)?;

        let log_path = dir.join("postgres.log");
        let mut last_err = String::new();
        for _attempt in 0..5 {
            let port = free_port()?;
            let log = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&log_path)?;
            if let Some(w) = &who {
                chown(&log_path, w)?;
            }
            let child = command(&bindir.join("postgres"), &who, parent_death)
                .arg("-D")
                .arg(&data)
                .args(["-p", &port.to_string()])
                .args(["-c", "listen_addresses=127.0.0.1"])
                .arg("-c")
                .arg(format!("unix_socket_directories={}", dir.display()))
                .args(["-c", "unix_socket_permissions=0700"])
                .args(["-c", "fsync=off"])
                .args(["-c", "synchronous_commit=off"])
                .args(["-c", "full_page_writes=off"])
                .args(["-c", "max_connections=300"])
                .args(["-c", "shared_buffers=128MB"])
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()?;
            this.child = Some(child);
            this.port = port;
            match this.wait_ready(&bindir, Duration::from_secs(30)) {
                Ok(()) => {
                    this.create_roles(&bindir)?;
                    return Ok(this);
                }
                Err(e) => {
                    last_err = e.to_string();
                    this.kill_child();
                }
            }
        }
        Err(LocalPgError::Command {
            what: "starting postgres".into(),
            detail: last_err,
        })
    }

    /// Writes what [`Self::shared`] needs to join this cluster to `path`, a 0600 file: it
    /// holds the passwords.
    pub fn publish(&self, path: &Path) -> Result<(), LocalPgError> {
        let contents = format!(
            "dir={}\nport={}\nsuperuser_password={}\nrole_password={}\n",
            self.dir.display(),
            self.port,
            self.superuser_password,
            self.role_password
        );
        write_private(path, contents)?;
        Ok(())
    }

    fn join(path: &Path) -> Result<Self, LocalPgError> {
        let bad = |detail: String| LocalPgError::ClusterFile {
            path: path.display().to_string(),
            detail,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .map(str::to_string)
                .ok_or_else(|| bad(format!("no {key}")))
        };
        let port = field("port")?
            .parse()
            .map_err(|e| bad(format!("port: {e}")))?;
        Ok(LocalPostgres {
            dir: PathBuf::from(field("dir")?),
            port,
            superuser_password: field("superuser_password")?,
            role_password: field("role_password")?,
            child: None,
            owned: false,
        })
    }

    fn wait_ready(&mut self, bindir: &Path, limit: Duration) -> Result<(), LocalPgError> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(LocalPgError::Command {
                        what: "postgres".into(),
                        detail: format!("exited with {status}: {}", self.log_tail()),
                    });
                }
            }
            let ok = Command::new(bindir.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(LocalPgError::NotReady(limit, self.log_tail()))
    }

    fn create_roles(&self, bindir: &Path) -> Result<(), LocalPgError> {
        let pw = &self.role_password;
        let sql = format!(
            "CREATE ROLE {OWNER_ROLE} LOGIN PASSWORD '{pw}'; \
             CREATE ROLE {APP_ROLE} LOGIN NOBYPASSRLS PASSWORD '{pw}';"
        );
        let out = Command::new(bindir.join("psql"))
            .args(["-v", "ON_ERROR_STOP=1", "-q", "-X"])
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", "-d", "postgres", "-c", &sql])
            .env("PGPASSWORD", &self.superuser_password)
            .stdin(Stdio::null())
            .output()?;
        check("creating roles", out)
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    fn kill_child(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGINT is postgres' "fast shutdown".
            // SAFETY: signalling our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Password of the cluster superuser `postgres` (TCP logins need it).
    pub fn superuser_password(&self) -> &str {
        &self.superuser_password
    }

    pub fn superuser_url(&self, database: &str) -> String {
        format!(
            "postgres://postgres:{}@127.0.0.1:{}/{}",
            self.superuser_password, self.port, database
        )
    }

    fn role_url(&self, role: &str, database: &str) -> String {
        format!(
            "postgres://{role}:{}@127.0.0.1:{}/{database}",
            self.role_password, self.port
        )
    }

    /// Creates database `name` owned by [`OWNER_ROLE`].
    pub async fn create_database(&self, name: &str) -> Result<Database, LocalPgError> {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&self.superuser_url("postgres")).await?;
        // Identifiers cannot be bound as parameters; `name` is ours, but quote it anyway.
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        sqlx::query(&format!("CREATE DATABASE {quoted} OWNER {OWNER_ROLE}"))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        Ok(self.database(name))
    }

    fn database(&self, name: &str) -> Database {
        Database {
            name: name.to_string(),
            owner_url: self.role_url(OWNER_ROLE, name),
            app_url: self.role_url(APP_ROLE, name),
            superuser_url: self.superuser_url(name),
        }
    }

    /// Creates a database with a random name (one per test).
    pub async fn fresh_database(&self) -> Result<Database, LocalPgError> {
        self.create_database(&format!("t_{}", random_token(12)))
            .await
    }

    /// Creates a database with a random name as a copy of template database `template`
    /// (letters, digits and `_`), which `build` fills the first time any process of this
    /// cluster asks for it: migrating once per cluster instead of once per test. `build`
    /// gets the template as an owner-owned database and must close its connections to it.
    ///
    /// A template is built once per cluster and never rebuilt, so its name must change
    /// whenever what `build` writes does; the test clusters live for one run of one build.
    pub async fn database_from_template<F, Fut, E>(
        &self,
        template: &str,
        build: F,
    ) -> Result<Database, LocalPgError>
    where
        F: FnOnce(Database) -> Fut,
        Fut: std::future::Future<Output = Result<(), E>>,
        E: std::fmt::Display,
    {
        use sqlx::Connection;
        let name = format!("tpl_{template}");
        let failed = |detail: String| LocalPgError::Template {
            name: name.clone(),
            detail,
        };
        if template.is_empty()
            || !template
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(failed("not a plain lower-case identifier".into()));
        }
        let mut conn = sqlx::PgConnection::connect(&self.superuser_url("postgres")).await?;
        // Whoever holds the lock builds; the others wait and find the template ready. The
        // lock is a session lock, released when this connection closes, also on an error.
        sqlx::query("SELECT pg_advisory_lock(hashtext($1))")
            .bind(&name)
            .execute(&mut conn)
            .await?;
        let ready: Option<bool> =
            sqlx::query_scalar("SELECT datistemplate FROM pg_database WHERE datname = $1")
                .bind(&name)
                .fetch_optional(&mut conn)
                .await?;
        if ready != Some(true) {
            if ready.is_some() {
                // A build that failed half-way (its process died).
                sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await?;
            }
            let db = self.create_database(&name).await?;
            if let Err(e) = build(db).await {
                let _ = sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await;
                return Err(failed(e.to_string()));
            }
            // Nobody connects to it again, so copying it never meets "being accessed by
            // other users".
            sqlx::query(&format!(
                "ALTER DATABASE {name} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"
            ))
            .execute(&mut conn)
            .await?;
        }
        conn.close().await?;
        let copy = format!("t_{}", random_token(12));
        let mut conn = sqlx::PgConnection::connect(&self.superuser_url("postgres")).await?;
        sqlx::query(&format!(
            // FILE_COPY copies the template's files as they are (a checkpoint, then
            // cp), where the default WAL_LOG writes every block through the WAL: half
            // the time and space for a small template.
            "CREATE DATABASE \"{copy}\" TEMPLATE {name} OWNER {OWNER_ROLE} STRATEGY FILE_COPY"
        ))
        .execute(&mut conn)
        .await?;
        conn.close().await?;
        Ok(self.database(&copy))
    }
}

impl Drop for LocalPostgres {
    fn drop(&mut self) {
        if self.owned {
            self.kill_child();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
