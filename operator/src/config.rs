//! Operator configuration (flags with environment fallbacks; see README "Configuration").

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::federation::FederationSecret;

/// Reconciles run at once by default. Most of a reconcile is waiting for the API server, so
/// more of them than database steps run at once: the load on the Postgres server is bounded
/// apart from this (four database steps at once per server, see `db::POOL_SIZE`).
pub const DEFAULT_CONCURRENCY: u16 = 16;

/// Field manager of every server-side apply the operator makes.
pub(crate) const FIELD_MANAGER: &str = "pek-operator";

/// What the reconciler needs to know about its surroundings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Hub base URL the operator registers realms with.
    pub hub_url: String,
    /// Hub URL the workers use (defaults to `hub_url`).
    pub worker_hub_url: Option<String>,
    /// Default worker image (the chart passes its own image).
    pub worker_image: String,
    /// `imagePullPolicy` of the worker container (unset: Kubernetes' default).
    pub worker_image_pull_policy: Option<String>,
    /// Namespace of the hub pods (NetworkPolicy ingress source).
    pub hub_namespace: String,
    /// Labels of the hub pods (NetworkPolicy ingress source).
    pub hub_pod_labels: BTreeMap<String, String>,
    /// Re-check interval of a healthy Realm.
    pub resync: Duration,
    /// Secret shared with the hub that the workers' realm tokens are derived from. Without it
    /// no `<name>-hub-token` Secret is written and workers cannot report membership changes.
    pub federation_secret: Option<FederationSecret>,
    /// Where the dump before every DROP goes. None: a confirmed `deletionPolicy: Delete`
    /// deletion waits (nothing is dropped without a dump) unless `drop_without_dump`.
    pub dumps: Option<crate::dump::Dumps>,
    /// Drop without a dump when no dump place is configured (an explicit opt-out).
    pub drop_without_dump: bool,
    /// Where the scheduled backups of `spec.backup` go; None: no backup CronJobs.
    pub backups: Option<Backups>,
}

/// What a Realm's backup CronJob needs from the operator's surroundings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backups {
    /// The PersistentVolumeClaim (in the Realm's namespace) the backups are written to: the
    /// operator's dump place, so that `spec.database.restoreFrom` can name them.
    pub claim: String,
    /// The image the backup pods run (`pek-operator backup`; it needs pg_dump).
    pub image: String,
    /// The pg_dump program in that image.
    pub pg_dump: String,
}

impl Config {
    pub(crate) fn worker_hub_url(&self) -> &str {
        self.worker_hub_url.as_deref().unwrap_or(&self.hub_url)
    }
}

/// `pek-operator run` flags.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Hub base URL for the admin API (registration).
    #[arg(long, env = "PEK_HUB_URL")]
    pub hub_url: String,
    /// File holding the operator's bearer token for the hub admin API.
    #[arg(long, env = "PEK_HUB_TOKEN_FILE")]
    pub hub_token_file: PathBuf,
    /// File with the secret shared with the hub (trimmed, at least 16 characters) from which
    /// the workers' realm tokens are derived. Unset: workers get no hub token.
    #[arg(long, env = "PEK_FEDERATION_SECRET_FILE")]
    pub federation_secret_file: Option<PathBuf>,
    /// Hub URL the workers are given (PEK_HUB_URL of the workers); defaults to --hub-url.
    #[arg(long, env = "PEK_WORKER_HUB_URL")]
    pub worker_hub_url: Option<String>,
    /// Default worker image for Realms that do not set spec.worker.image.
    #[arg(long, env = "PEK_WORKER_IMAGE")]
    pub worker_image: String,
    /// imagePullPolicy of worker containers.
    #[arg(long, env = "PEK_WORKER_IMAGE_PULL_POLICY")]
    pub worker_image_pull_policy: Option<String>,
    /// Namespace of the hub pods; defaults to the operator's own namespace.
    #[arg(long, env = "PEK_HUB_NAMESPACE")]
    pub hub_namespace: Option<String>,
    /// Labels selecting the hub pods, `k=v,k2=v2` (NetworkPolicy ingress source).
    #[arg(
        long,
        env = "PEK_HUB_POD_LABELS",
        default_value = "app.kubernetes.io/name=pek-hub"
    )]
    pub hub_pod_labels: String,
    /// Only watch Realms in this namespace (default: all namespaces).
    #[arg(long, env = "PEK_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// Namespace of the operator itself (leader-election Lease); set from the downward API.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub pod_namespace: String,
    /// Identity in the leader election (the pod name).
    #[arg(long, env = "POD_NAME")]
    pub pod_name: Option<String>,
    /// Name of the leader-election Lease.
    #[arg(long, env = "PEK_LEASE_NAME", default_value = "pek-operator-leader")]
    pub lease_name: String,
    /// Address of /metrics, /healthz, /readyz.
    #[arg(long, env = "PEK_OPERATOR_LISTEN", default_value = "0.0.0.0:8081")]
    pub listen: String,
    /// Seconds between re-checks of a healthy Realm.
    #[arg(long, env = "PEK_RESYNC_SECONDS", default_value_t = 300)]
    pub resync_seconds: u64,
    /// Reconciles run at once.
    #[arg(long, env = "PEK_CONCURRENCY", default_value_t = DEFAULT_CONCURRENCY)]
    pub concurrency: u16,
    /// Log format: json or text.
    #[arg(long, env = "PEK_LOG_FORMAT", default_value = "json")]
    pub log_format: String,
    /// Directory for the dump (`pg_dump` custom format) written before every DROP of a realm's
    /// database (the chart mounts operator.dumps.persistentVolumeClaim there). Unset: databases
    /// are not dropped (the deletion waits) unless --drop-without-dump.
    #[arg(long, env = "PEK_DUMP_DIR")]
    pub dump_dir: Option<PathBuf>,
    /// The pg_dump program (as new as the Postgres server).
    #[arg(long, env = "PEK_PG_DUMP", default_value = "pg_dump")]
    pub pg_dump: PathBuf,
    /// The pg_restore program (restores `spec.database.restoreFrom`; as new as pg_dump).
    #[arg(long, env = "PEK_PG_RESTORE", default_value = "pg_restore")]
    pub pg_restore: PathBuf,
    /// Dumps older than this many days are removed after a new one is written; 0 keeps all.
    #[arg(long, env = "PEK_DUMP_RETENTION_DAYS", default_value_t = 30)]
    pub dump_retention_days: u64,
    /// Without --dump-dir, drop databases without a dump (each time with a Warning Event).
    #[arg(long, env = "PEK_DROP_WITHOUT_DUMP", default_value_t = false)]
    pub drop_without_dump: bool,
    /// PersistentVolumeClaim (in each Realm's namespace) that the backup CronJobs of
    /// `spec.backup` write to: the claim mounted at --dump-dir (chart:
    /// operator.dumps.persistentVolumeClaim). Unset: Realms get no backup CronJob.
    #[arg(long, env = "PEK_BACKUP_CLAIM")]
    pub backup_claim: Option<String>,
    /// Image of the backup pods (`pek-operator backup`, with pg_dump); default: the worker image.
    #[arg(long, env = "PEK_BACKUP_IMAGE")]
    pub backup_image: Option<String>,
}

/// Parses `k=v,k2=v2`.
pub(crate) fn parse_labels(s: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("label {part:?} is not key=value"))?;
        out.insert(k.trim().to_string(), v.trim().to_string());
    }
    if out.is_empty() {
        return Err("at least one hub pod label is needed".into());
    }
    Ok(out)
}

impl RunArgs {
    pub fn config(&self) -> Result<Config, String> {
        Ok(Config {
            hub_url: self.hub_url.trim_end_matches('/').to_string(),
            worker_hub_url: self.worker_hub_url.clone(),
            worker_image: self.worker_image.clone(),
            worker_image_pull_policy: self.worker_image_pull_policy.clone(),
            hub_namespace: self
                .hub_namespace
                .clone()
                .unwrap_or_else(|| self.pod_namespace.clone()),
            hub_pod_labels: parse_labels(&self.hub_pod_labels)?,
            resync: Duration::from_secs(self.resync_seconds.max(10)),
            federation_secret: self
                .federation_secret_file
                .as_deref()
                .map(FederationSecret::from_file)
                .transpose()?,
            dumps: self.dump_dir.clone().map(|dir| crate::dump::Dumps {
                dir,
                pg_dump: self.pg_dump.clone(),
                pg_restore: self.pg_restore.clone(),
                retention: (self.dump_retention_days > 0)
                    .then(|| Duration::from_secs(self.dump_retention_days * 86_400)),
            }),
            drop_without_dump: self.drop_without_dump,
            backups: self.backup_claim.clone().map(|claim| Backups {
                claim,
                image: self
                    .backup_image
                    .clone()
                    .unwrap_or_else(|| self.worker_image.clone()),
                pg_dump: self.pg_dump.to_string_lossy().into_owned(),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TEST_FEDERATION_SECRET;

    #[test]
    fn labels_parse() {
        let l = parse_labels("a=b, c = d").expect("parses");
        assert_eq!(l.get("a").map(String::as_str), Some("b"));
        assert_eq!(l.get("c").map(String::as_str), Some("d"));
        assert!(parse_labels("nope").is_err());
        assert!(parse_labels("").is_err());
    }

    fn args(extra: &[&str]) -> RunArgs {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            run: RunArgs,
        }
        let mut argv = vec![
            "pek-operator",
            "--hub-url",
            "http://hub:8080/",
            "--hub-token-file",
            "/t",
            "--worker-image",
            "pek:1",
        ];
        argv.extend_from_slice(extra);
        <Cli as clap::Parser>::try_parse_from(argv)
            .expect("flags parse")
            .run
    }

    #[test]
    fn federation_secret_is_read_from_its_file() {
        let dir = std::env::temp_dir().join(format!("pek-op-fed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let good = dir.join("secret");
        std::fs::write(&good, format!("{TEST_FEDERATION_SECRET}\n")).expect("write");
        let short = dir.join("short");
        std::fs::write(&short, "tooshort\n").expect("write");

        let none = args(&[]).config().expect("config");
        assert!(none.federation_secret.is_none());
        assert_eq!(none.hub_url, "http://hub:8080");

        let good_path = good.to_string_lossy().into_owned();
        let c = args(&["--federation-secret-file", &good_path])
            .config()
            .expect("config");
        assert_eq!(
            c.federation_secret,
            Config::for_tests().federation_secret,
            "trimmed like the hub does"
        );
        assert!(
            !format!("{c:?}").contains(TEST_FEDERATION_SECRET),
            "never shown"
        );

        let short_path = short.to_string_lossy().into_owned();
        let err = args(&["--federation-secret-file", &short_path])
            .config()
            .expect_err("too short");
        assert!(
            err.contains("at least 16") && err.contains(&short_path),
            "{err}"
        );
        assert!(!err.contains("tooshort"), "{err}");
        let missing = dir.join("missing").to_string_lossy().into_owned();
        let err = args(&["--federation-secret-file", &missing])
            .config()
            .expect_err("unreadable");
        assert!(err.contains("cannot read"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}

/// `pek-operator backup` flags: one scheduled backup (what a Realm's backup CronJob runs).
#[derive(Debug, Clone, Args)]
pub struct BackupArgs {
    /// The realm database's URL, as its owner role (from the `<name>-db` Secret).
    #[arg(long, env = "PEK_BACKUP_DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// The realm whose rows are dumped (row-level security is keyed on it).
    #[arg(long)]
    pub realm_id: String,
    /// Directory of the dump files (the mounted dump place).
    #[arg(long)]
    pub dir: PathBuf,
    /// File-name stem: files are `<stem>-<UTC time>.dump`.
    #[arg(long)]
    pub stem: String,
    /// This stem's backups older than this many days are removed after a new one (never the
    /// newest); 0 keeps all.
    #[arg(long, default_value_t = 30)]
    pub retention_days: u64,
    /// The pg_dump program.
    #[arg(long, env = "PEK_PG_DUMP", default_value = "pg_dump")]
    pub pg_dump: PathBuf,
}

impl BackupArgs {
    /// Runs one backup; the file written.
    pub async fn run(&self) -> Result<crate::dump::DumpFile, crate::Error> {
        let dumps = crate::dump::Dumps {
            dir: self.dir.clone(),
            pg_dump: self.pg_dump.clone(),
            pg_restore: "pg_restore".into(),
            retention: (self.retention_days > 0)
                .then(|| Duration::from_secs(self.retention_days * 86_400)),
        };
        dumps
            .backup(&self.database_url, &self.realm_id, &self.stem)
            .await
    }
}
