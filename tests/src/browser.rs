//! Driving Debian's Chromium through chromedriver (WebDriver, the fantoccini client) for
//! the web interface's tests: starting the browser, signing in with the development
//! sign-in, waiting for pages, and checking a page at 390 px and 1280 px (no sideways
//! scrolling, axe-core with no serious or critical violation; screenshots under
//! `target/web-screenshots/` with `PEK_SCREENSHOTS=1`).
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (Debian `chromium`,
//! `chromium-driver`) and axe-core from npm (`tests/browser`); `./tests/run.sh`
//! installs them. [`browser_ready`] skips loudly without them (a failure with
//! `PEK_REQUIRE_BROWSER=1`).

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

pub struct Driver {
    child: Child,
    _profile: crate::auth_support::Scratch,
    pub client: Option<Client>,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // chromedriver's browser processes are its children, not ours: a failed test
        // (no session close) would leave them running. They share chromedriver's
        // process group, so the whole group goes.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn axe_source() -> Option<String> {
    let p = crate::workspace_root().join("tests/browser/node_modules/axe-core/axe.min.js");
    std::fs::read_to_string(p).ok()
}

/// Whether the browser test can run here; a loud skip message when not.
pub fn browser_ready() -> bool {
    let missing: Vec<&str> = [
        (CHROMIUM, "Debian chromium"),
        (CHROMEDRIVER, "Debian chromium-driver"),
    ]
    .iter()
    .filter(|(p, _)| !std::path::Path::new(p).exists())
    .map(|(_, what)| *what)
    .chain(
        axe_source()
            .is_none()
            .then_some("axe-core (npm ci in tests/browser)"),
    )
    .collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "SKIPPED: the browser test needs {} — run ./tests/run.sh, which installs them",
        missing.join(", ")
    );
    if std::env::var("PEK_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
        panic!("{msg}");
    }
    eprintln!("\n!!!!!!!!!! {msg} !!!!!!!!!!\n");
    false
}

pub async fn start_browser() -> anyhow::Result<Driver> {
    let port = crate::free_port()?;
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        // Its own process group, which Drop kills with every browser process in it.
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let profile = crate::auth_support::Scratch::new("chromium-profile")?;
    let mut driver = Driver {
        child,
        _profile: profile,
        client: None,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        anyhow::ensure!(Instant::now() < deadline, "chromedriver did not listen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut caps = serde_json::Map::new();
    // axe-core on a long page (an imported scoreboard) outlasts WebDriver's default 30 s
    // script timeout when the two cores are busy with other tests; a slow machine is not
    // an accessibility violation.
    caps.insert("timeouts".into(), json!({"script": 120_000}));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            // Hungarian first, as a Hungarian student's browser asks.
            "prefs": {"intl.accept_languages": "hu-HU,hu,en"},
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                "--lang=hu-HU", "--hide-scrollbars", "--force-device-scale-factor=1",
                format!("--user-data-dir={}", driver._profile.0.display()),
            ],
        }),
    );
    let client = ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await?;
    driver.client = Some(client);
    Ok(driver)
}

/// Screenshots are for a person looking at the pages (`PEK_SCREENSHOTS=1`); in the test
/// command no one does, and each is a PNG encoding of the whole window on cores the other
/// tests are waiting for.
fn screenshots_wanted() -> bool {
    std::env::var("PEK_SCREENSHOTS").is_ok_and(|v| v == "1")
}

pub fn artifacts() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| crate::workspace_root().join("target"));
    let dir = target.join("web-screenshots");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// How long a step may take before the test gives up on it. Generous: it is spent only
/// when a step fails, while a page on two cores shared with the rest of the test command
/// (the first page of a fresh Chromium, a fan-out to every realm) can take over 10 s.
pub const WAIT: Duration = Duration::from_secs(30);

pub struct Browser<'a> {
    pub c: &'a Client,
    pub hub: String,
    pub axe: String,
}

impl Browser<'_> {
    pub async fn open(&self, path: &str) {
        self.c
            .goto(&format!("{}{path}", self.hub))
            .await
            .unwrap_or_else(|e| panic!("opening {path}: {e}"));
    }

    pub async fn text(&self) -> String {
        self.c
            .find(Locator::Css("body"))
            .await
            .expect("body")
            .text()
            .await
            .expect("text")
    }

    pub async fn path(&self) -> String {
        self.c.current_url().await.expect("url").path().to_string()
    }

    /// Screenshots at phone and desktop width, and axe-core on the page: no serious or
    /// critical violations.
    pub async fn check_page(&self, name: &str) {
        for (w, h) in [(390u32, 844u32), (1280, 900)] {
            self.c.set_window_size(w, h).await.expect("window size");
            // The document must fit a phone's width: no sideways scrolling.
            let overflow = self
                .c
                .execute(
                    "return document.documentElement.scrollWidth - window.innerWidth;",
                    vec![],
                )
                .await
                .expect("scrollWidth");
            assert!(
                overflow.as_i64().unwrap_or(0) <= 0,
                "{name} at {w} px is wider than the window by {overflow} px"
            );
            if screenshots_wanted() {
                let png = self.c.screenshot().await.expect("screenshot");
                std::fs::write(artifacts().join(format!("{name}-{w}.png")), png).expect("save png");
            }
        }
        self.c
            .execute(&format!("{}\nreturn true;", self.axe), vec![])
            .await
            .expect("loading axe-core");
        let result = self
            .c
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, {resultTypes: ['violations']})
                   .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact,
                        help: v.help, nodes: v.nodes.map(n => n.target.join(' '))}))))
                   .catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e)}]));",
                vec![],
            )
            .await
            .expect("running axe-core");
        let serious: Vec<_> = result
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
            .collect();
        assert!(
            serious.is_empty(),
            "{name}: serious accessibility violations: {}",
            serde_json::to_string_pretty(&serious).unwrap_or_default()
        );
    }

    pub async fn sign_in_as(&self, name: &str) {
        self.open("/sign-in").await;
        let buttons = self
            .c
            .find_all(Locator::Css("ul.people button"))
            .await
            .expect("dev sign-in buttons");
        for b in buttons {
            if b.text().await.unwrap_or_default().contains(name) {
                b.click().await.expect("click");
                self.wait_path("/").await;
                return;
            }
        }
        panic!("no sign-in button for {name}");
    }

    pub async fn sign_out(&self) {
        self.c
            .find(Locator::Css("header form[action='/sign-out'] button"))
            .await
            .expect("sign-out button")
            .click()
            .await
            .expect("click");
        self.wait_path("/sign-in").await;
    }

    pub async fn wait_path(&self, path: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            if self.path().await == path {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "expected to arrive at {path}, at {}",
                self.path().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_text(&self, css: &str, want: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(el) = self.c.find(Locator::Css(css)).await {
                let t = el.text().await.unwrap_or_default();
                if t.contains(want) {
                    return t;
                }
                assert!(
                    Instant::now() < deadline,
                    "{css} never showed {want:?}; it shows {t:?}"
                );
            }
            assert!(Instant::now() < deadline, "{css} never appeared");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The item of list `list` (CSS of its `ul`) that names `who`.
    pub async fn item(&self, list: &str, who: &str) -> fantoccini::elements::Element {
        let deadline = Instant::now() + WAIT;
        loop {
            for li in self
                .c
                .find_all(Locator::Css(&format!("{list} > li")))
                .await
                .unwrap_or_default()
            {
                if li.text().await.unwrap_or_default().contains(who) {
                    return li;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{list} never listed {who}: {}",
                self.text().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks the button labelled `label` inside `scope` (the page when None).
    pub async fn press(&self, scope: Option<&fantoccini::elements::Element>, label: &str) {
        let buttons = match scope {
            Some(el) => el.find_all(Locator::Css("button")).await,
            None => self.c.find_all(Locator::Css("main button")).await,
        }
        .expect("buttons");
        for b in buttons {
            if b.text().await.unwrap_or_default().trim() == label {
                b.click().await.expect("click");
                return;
            }
        }
        panic!("no {label:?} button: {}", self.text().await);
    }

    /// Submits a form the page does not offer, as a forger would: a POST to `action`
    /// with this page's valid CSRF token and `fields`, without htmx.
    pub async fn forge_post(&self, action: &str, fields: serde_json::Value) {
        self.c
            .execute(
                "const [action, fields] = arguments;
                 const f = document.createElement('form');
                 f.method = 'post'; f.action = action;
                 const all = Object.assign(
                     {csrf: document.querySelector('input[name=csrf]').value}, fields);
                 for (const [k, v] of Object.entries(all)) {
                     const i = document.createElement('input');
                     i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i);
                 }
                 document.body.appendChild(f); f.submit(); return true;",
                vec![json!(action), fields],
            )
            .await
            .expect("forged form");
    }
}
