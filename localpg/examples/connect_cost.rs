//! What one new PostgreSQL connection costs the client: wall time and this process's CPU
//! time for N password (SCRAM) logins to a throwaway cluster, in whatever profile it is
//! built with (the test suites' debug build is the one that matters):
//!
//! ```text
//! cargo run -p pek-localpg --example connect_cost -- 100
//! ```

use std::time::Instant;

use localpg::LocalPostgres;
use sqlx::Connection;

/// User + system CPU seconds of this process so far (Linux `/proc/self/stat`).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11).unwrap_or(0.0) + ticks(12).unwrap_or(0.0)) / hz.max(1.0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u32 = match std::env::args().nth(1) {
        Some(a) => a.parse().map_err(|e| format!("count {a:?}: {e}"))?,
        None => 100,
    };
    let pg = LocalPostgres::start()?;
    let db = pg.fresh_database().await?;
    let (t0, c0) = (Instant::now(), cpu_seconds());
    for _ in 0..n {
        sqlx::PgConnection::connect(&db.app_url)
            .await?
            .close()
            .await?;
    }
    let (wall, cpu) = (t0.elapsed(), cpu_seconds() - c0);
    println!(
        "{n} connections: {:.1} ms wall, {:.2} ms client CPU each",
        wall.as_secs_f64() * 1000.0 / f64::from(n),
        cpu * 1000.0 / f64::from(n)
    );
    Ok(())
}
