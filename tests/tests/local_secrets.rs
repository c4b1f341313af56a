//! `pek local` keeps its signing key and tokens private: a 0700 directory of its own
//! with 0600 files, removed when it stops; its PostgreSQL takes password logins only.
//! It runs with two sign-in providers (AuthSCH-like and "Beta ID"): a demo person signs in
//! through the first, links the second from their session and then signs in with it.

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
    let mut hub = None;
    let mut out = String::new();
    while dir.is_none() && Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                out.push_str(&line);
                out.push('\n');
                if let Some(rest) = line.trim().strip_prefix("secrets") {
                    dir = rest.split_whitespace().next().map(PathBuf::from);
                }
                if let Some(rest) = line.trim().strip_prefix("hub + BFF") {
                    hub = rest.split_whitespace().next().map(String::from);
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
        let hub = hub
            .clone()
            .unwrap_or_else(|| panic!("no hub line in:\n{out}"));
        tokio::runtime::Runtime::new()
            .expect("runtime")
            .block_on(sign_in_and_link(&hub));
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

/// Through `pek local`'s own providers: their sign-in page, their code for the hub's
/// callback. Returns the callback's JSON answer.
async fn through_provider(
    b: &mut pek_tests::auth_support::Browser,
    authorize: &str,
    login: &str,
) -> serde_json::Value {
    use reqwest::{Method, StatusCode};
    let page = b.get(authorize).await.expect("provider page");
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let u = url::Url::parse(authorize).expect("authorize URL");
    let mut form: Vec<(String, String)> = u
        .query_pairs()
        .filter(|(k, _)| ["redirect_uri", "state", "code_challenge"].contains(&k.as_ref()))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    form.push(("login".into(), login.into()));
    let action = u.join("/authorize").expect("form action").to_string();
    let back = b
        .request(Method::POST, &action, &[], Some(&form))
        .await
        .expect("provider sign-in");
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.body);
    let done = b
        .request(
            Method::GET,
            back.location.as_deref().expect("back to the hub"),
            &[("accept", "application/json")],
            None,
        )
        .await
        .expect("callback");
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    done.json()
}

async fn sign_in_and_link(hub: &str) {
    use pek_tests::auth_support::Browser;
    use reqwest::StatusCode;
    // Alice through the AuthSCH-like provider (the default one).
    let mut b = Browser::new().unwrap();
    let start = b.get(&format!("{hub}/auth/login")).await.unwrap();
    assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.body);
    let signed_in =
        through_provider(&mut b, start.location.as_deref().unwrap(), "demo-alice").await;
    let alice = signed_in["user"]["id"].as_str().unwrap().to_string();
    let token = signed_in["token"].as_str().unwrap().to_string();
    assert_eq!(signed_in["user"]["firstName"], "Alice", "{signed_in}");
    // Linking Beta ID from that session.
    let resp = reqwest::Client::new()
        .post(format!("{hub}/api/v1/me/identities"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"provider": "beta"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|c| c.to_str().ok())
        .find_map(|c| c.strip_prefix("pek_login="))
        .and_then(|c| c.split(';').next())
        .map(String::from)
        .expect("pek_login cookie");
    let v: serde_json::Value = resp.json().await.unwrap();
    b.set_cookie(hub, "pek_login", &cookie);
    through_provider(
        &mut b,
        v["authorizationUrl"].as_str().unwrap(),
        "alice@beta",
    )
    .await;
    // Next time Beta ID signs Alice in.
    let mut b2 = Browser::new().unwrap();
    let start = b2
        .get(&format!("{hub}/auth/login?provider=beta"))
        .await
        .unwrap();
    assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.body);
    let via_beta =
        through_provider(&mut b2, start.location.as_deref().unwrap(), "alice@beta").await;
    assert_eq!(via_beta["user"]["id"], alice.as_str(), "{via_beta}");
    assert_eq!(via_beta["user"]["provider"], "beta", "{via_beta}");
}
