//! Runs a command against a fresh, migrated database of a throwaway cluster:
//!
//! ```text
//! cargo run -p pek-localpg --example migrated_db -- \
//!     --migrations migrations/realm --migrations migrations/hub -- cargo sqlx prepare --workspace --check
//! ```
//!
//! The cluster lives exactly as long as the command, which gets the database's owner URL
//! as `DATABASE_URL`; the exit status is the command's. The migration sets are applied in
//! the order given, each ignoring the other's rows in sqlx's bookkeeping table, as the hub
//! does at start-up (`pek migrate`, realm set then hub set). They are read at run time,
//! so this program never needs the compile-time query data it is used to check.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use localpg::LocalPostgres;
use sqlx::migrate::Migrator;
use sqlx::Connection;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("migrated_db: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut sets = Vec::new();
    let mut command = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--migrations" => sets.push(PathBuf::from(
                args.next().ok_or("--migrations needs a directory")?,
            )),
            "--" => {
                command.extend(args.by_ref());
            }
            other => return Err(format!("unexpected argument {other:?}").into()),
        }
    }
    if command.is_empty() {
        return Err("usage: migrated_db [--migrations DIR]... -- COMMAND [ARG]...".into());
    }
    let pg = LocalPostgres::start()?;
    let db = pg.create_database("pek_sqlx").await?;
    let mut conn = sqlx::PgConnection::connect(&db.owner_url).await?;
    for dir in &sets {
        let mut m = Migrator::new(dir.as_path()).await?;
        m.set_ignore_missing(true);
        m.run(&mut conn).await?;
    }
    conn.close().await?;
    let status = Command::new(&command[0])
        .args(&command[1..])
        .env("DATABASE_URL", &db.owner_url)
        .env_remove("SQLX_OFFLINE")
        .status()
        .map_err(|e| format!("running {:?}: {e}", command[0]))?;
    drop(pg);
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(c) => ExitCode::from(u8::try_from(c).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}
