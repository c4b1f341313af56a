//! A real OpenID Connect provider for the login tests: node `oidc-provider` from
//! `tests/oidc` (installed by `tests/run.sh` with `npm ci`), started on loopback.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use crate::auth_support::{free_port, Browser, Page};
use crate::workspace_root;
use reqwest::{Method, StatusCode};

pub struct OidcProvider {
    child: Child,
    /// The issuer URL (discovery at `{issuer}/.well-known/openid-configuration`).
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    log: PathBuf,
}

impl OidcProvider {
    /// Starts the provider with one client whose redirect URI is `redirect_uri`.
    /// Fails with a clear message when node or the npm packages are missing.
    pub async fn start(redirect_uri: &str) -> anyhow::Result<Self> {
        let dir = workspace_root().join("tests").join("oidc");
        let node = std::env::var("NODE").unwrap_or_else(|_| "node".into());
        let version = Command::new(&node).arg("--version").output();
        if !matches!(&version, Ok(o) if o.status.success()) {
            bail!(
                "node is not installed (needed for the OIDC provider of the login tests); \
                 ./tests/run.sh installs it (Debian: apt-get install nodejs npm)"
            );
        }
        if !dir.join("node_modules").join("oidc-provider").is_dir() {
            bail!(
                "the OIDC provider's npm packages are missing: run `npm ci` in {} \
                 (./tests/run.sh does)",
                dir.display()
            );
        }
        let port = free_port()?;
        let issuer = format!("http://127.0.0.1:{port}");
        let client_id = "pek-hub-test".to_string();
        let client_secret = format!("oidc-secret-{}", uuid::Uuid::new_v4().simple());
        let log = std::env::temp_dir().join(format!(
            "pek-oidc-{port}-{}.log",
            uuid::Uuid::new_v4().simple()
        ));
        let f = std::fs::File::create(&log)?;
        let child = Command::new(&node)
            .arg("provider.mjs")
            .current_dir(&dir)
            .env("PORT", port.to_string())
            .env("REDIRECT_URI", redirect_uri)
            .env("CLIENT_ID", &client_id)
            .env("CLIENT_SECRET", &client_secret)
            .stdin(Stdio::null())
            .stdout(f.try_clone()?)
            .stderr(f)
            .spawn()
            .context("starting node provider.mjs")?;
        let mut p = OidcProvider {
            child,
            issuer,
            client_id,
            client_secret,
            log,
        };
        // Node's start-up alone took over 30 s when the test command loaded both cores.
        let deadline = Instant::now() + Duration::from_secs(90);
        let discovery = format!("{}/.well-known/openid-configuration", p.issuer);
        loop {
            if let Some(status) = p.child.try_wait()? {
                bail!("the OIDC provider exited: {status}\n{}", p.logs());
            }
            if let Ok(r) = reqwest::get(&discovery).await {
                if r.status().is_success() {
                    return Ok(p);
                }
            }
            if Instant::now() > deadline {
                bail!("the OIDC provider did not answer within 90 s\n{}", p.logs());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The value of `name="…" value="…"` / `action="…"` in the provider's HTML.
pub fn attr_after(html: &str, marker: &str, attr: &str) -> Option<String> {
    let at = html.find(marker)?;
    let rest = &html[at..];
    let start = rest.find(&format!("{attr}=\""))? + attr.len() + 2;
    let end = rest[start..].find('"')?;
    Some(rest[start..start + end].replace("&amp;", "&"))
}

/// Follows redirects and fills in the provider's login and consent forms until the
/// browser is sent to `stop_prefix` (the hub's callback), whose URL is returned.
pub async fn drive_provider(
    b: &mut Browser,
    first: &str,
    login: &str,
    stop_prefix: &str,
) -> String {
    let mut url = first.to_string();
    for _ in 0..20 {
        if url.starts_with(stop_prefix) {
            return url;
        }
        let page: Page = b.get(&url).await.expect("provider page");
        if let Some(next) = page.location.clone() {
            url = next;
            continue;
        }
        assert_eq!(page.status, StatusCode::OK, "{}: {}", page.url, page.body);
        let action = attr_after(&page.body, "<form", "action").expect("a form");
        let action = url::Url::parse(&page.url)
            .unwrap()
            .join(&action)
            .unwrap()
            .to_string();
        let prompt = attr_after(&page.body, "name=\"prompt\"", "value").expect("prompt");
        let mut form = vec![("prompt".to_string(), prompt.clone())];
        if prompt == "login" {
            form.push(("login".into(), login.into()));
            form.push(("password".into(), "any password".into()));
        }
        let posted = b
            .request(Method::POST, &action, &[], Some(&form))
            .await
            .expect("submit");
        url = posted
            .location
            .unwrap_or_else(|| panic!("no redirect after {prompt}: {}", posted.body));
    }
    panic!("the provider never redirected back to {stop_prefix}");
}

/// Signs in at `hub` through the provider as `login` (any password) and returns the hub
/// token the callback gives API clients.
pub async fn login(hub: &str, login: &str) -> anyhow::Result<String> {
    let mut b = Browser::new()?;
    let start = b.get(&format!("{hub}/auth/login")).await?;
    let to_provider = start
        .location
        .clone()
        .with_context(|| format!("no redirect from /auth/login: {}", start.body))?;
    let back = drive_provider(&mut b, &to_provider, login, &format!("{hub}/auth/callback")).await;
    let done = b
        .request(Method::GET, &back, &[("accept", "application/json")], None)
        .await?;
    if done.status != StatusCode::OK {
        bail!("callback answered {}: {}", done.status, done.body);
    }
    done.json()["token"]
        .as_str()
        .map(String::from)
        .context("no token in the callback's answer")
}
