//! What the benchmarks share: the hub they start from, latency summaries, and writing
//! their sections into BENCHMARKS.md.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use pek::auth::Signer;
use pek::config::Mode;
use pek::db::{self, Db};
use uuid::Uuid;

/// What every hub benchmark starts from: a throwaway PostgreSQL with a migrated hub
/// database, a signing key whose public half is in `keyfile`, and a user `god`.
pub(crate) struct BenchHub {
    pub(crate) pg: localpg::LocalPostgres,
    pub(crate) dbs: localpg::Database,
    pub(crate) workdir: PathBuf,
    pub(crate) signer: Signer,
    pub(crate) keyfile: PathBuf,
    pub(crate) db: Db,
    pub(crate) god: Uuid,
}

impl BenchHub {
    pub(crate) async fn start() -> anyhow::Result<Self> {
        eprintln!("starting a throwaway PostgreSQL…");
        let pg = tokio::task::spawn_blocking(localpg::LocalPostgres::start)
            .await?
            .context("starting PostgreSQL (is the `postgresql` package installed?)")?;
        let dbs = pg.create_database("pek_bench").await?;
        db::migrate(&dbs.owner_url, Mode::Hub, Some(localpg::APP_ROLE))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let workdir = pg.data_dir().with_file_name("bench");
        std::fs::create_dir_all(&workdir)?;

        let signer = Signer::generate("pek-hub", "pek")?;
        let keyfile = workdir.join("jwt-public.pem");
        std::fs::write(&keyfile, signer.public_pem())?;

        let db = Db::connect(&dbs.app_url, 4).await?;
        let god = {
            let mut g = db.global().await?;
            let id = pek::profile::upsert_user(&mut g, "bench-god").await?;
            g.commit().await?;
            id
        };
        Ok(BenchHub {
            pg,
            dbs,
            workdir,
            signer,
            keyfile,
            db,
            god,
        })
    }
}

pub(crate) struct Phase {
    pub(crate) name: String,
    pub(crate) requests: u64,
    pub(crate) rps: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
}

fn percentile(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted_us.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted_us[idx.min(sorted_us.len() - 1)]) / 1000.0
}

pub(crate) fn phase(name: &str, mut lat_us: Vec<u32>, elapsed: Duration) -> Phase {
    lat_us.sort_unstable();
    Phase {
        name: name.to_string(),
        requests: lat_us.len() as u64,
        rps: lat_us.len() as f64 / elapsed.as_secs_f64(),
        p50_ms: percentile(&lat_us, 0.50),
        p99_ms: percentile(&lat_us, 0.99),
    }
}

/// Replaces the section starting with `header` (up to the next `## ` heading) or appends
/// it; other sections are kept as they are.
pub(crate) fn replace_section(doc: &str, header: &str, section: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    let mut replaced = false;
    for line in doc.lines() {
        if line.trim_end() == header {
            skipping = true;
            replaced = true;
            out.push_str(section.trim_end());
            out.push_str("\n\n");
            continue;
        }
        if skipping && line.starts_with("## ") {
            skipping = false;
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !replaced {
        if !out.ends_with("\n\n") {
            out.push('\n');
        }
        out.push_str(section.trim_end());
        out.push('\n');
    }
    out.trim_end().to_string() + "\n"
}

pub(crate) fn write_section(path: &Path, header: &str, section: &str) -> anyhow::Result<()> {
    let doc = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "# Benchmarks\n".to_string(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    std::fs::write(path, replace_section(&doc, header, section))
        .with_context(|| format!("writing {}", path.display()))
}
