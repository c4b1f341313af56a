//! `pek local` keeps its signing key and tokens private: a 0700 directory of its own
//! with 0600 files, removed when it stops; its PostgreSQL takes password logins only.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).expect("stat").permissions().mode() & 0o777
}

#[test]
fn pek_local_writes_its_secrets_private() {
    let bin = pek_tests::pek_binary().expect("pek binary");
    let mut child = Command::new(&bin)
        .args(["local", "--listen", "127.0.0.1:0", "--token-ttl", "60"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start pek local");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut dir = None;
    let mut out = String::new();
    while dir.is_none() && Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                out.push_str(&line);
                out.push('\n');
                if let Some(rest) = line.trim().strip_prefix("secrets") {
                    dir = rest.split_whitespace().next().map(PathBuf::from);
                }
            }
            Err(_) => {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("pek local exited early ({status}):\n{out}");
                }
            }
        }
    }
    let result = std::panic::catch_unwind(|| {
        let dir = dir
            .clone()
            .unwrap_or_else(|| panic!("no secrets line in:\n{out}"));
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
        let mut files = 0;
        for entry in std::fs::read_dir(&dir).expect("list") {
            let path = entry.expect("entry").path();
            assert_eq!(mode(&path), 0o600, "{}", path.display());
            files += 1;
        }
        for name in ["jwt-private.pem", "federation-secret", "operator-tokens"] {
            assert!(dir.join(name).is_file(), "{name} missing");
        }
        assert!(
            files >= 5,
            "key, secret, operator token and two worker tokens"
        );
    });
    // Stop it the way a user does (Ctrl-C / SIGTERM): everything is removed.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let stop = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > stop {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.wait();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
    if let Some(dir) = dir {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}
