//! Runs a command with one throwaway cluster that every test process it starts joins:
//!
//! ```text
//! cargo run -p pek-localpg --example test_cluster -- cargo test --workspace
//! ```
//!
//! The cluster's connection file (0600, in a 0700 directory of our own) is named by
//! `PEK_TEST_POSTGRES` in the command's environment, so `LocalPostgres::shared()` in each
//! test binary joins this server instead of running `initdb` and starting one of its own,
//! and template databases built by one binary serve the others. The cluster lives exactly
//! as long as the command (it also stops if this program is killed); the exit status is the
//! command's.

use std::process::{Command, ExitCode};

use localpg::{LocalPostgres, SHARED_CLUSTER_ENV};

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("test_cluster: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let command: Vec<String> = std::env::args().skip(1).skip_while(|a| a == "--").collect();
    if command.is_empty() {
        return Err("usage: test_cluster [--] COMMAND [ARG]...".into());
    }
    let pg = LocalPostgres::start_tied_to_thread()?;
    let dir = std::env::temp_dir().join(format!("pek-test-cluster-{}", std::process::id()));
    localpg::private_dir(&dir)?;
    let file = dir.join("cluster");
    pg.publish(&file)?;
    let status = Command::new(&command[0])
        .args(&command[1..])
        .env(SHARED_CLUSTER_ENV, &file)
        .status()
        .map_err(|e| format!("running {:?}: {e}", command[0]));
    drop(pg);
    let _ = std::fs::remove_dir_all(&dir);
    let status = status?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(c) => ExitCode::from(u8::try_from(c).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}
