//! The web interface in a real browser: Debian's Chromium driven through chromedriver
//! (WebDriver, the fantoccini client) against a real hub and two workers, each a `pek
//! serve` process with its own database. Signs in with the development sign-in, reads
//! the home page (groups of every realm), searches ("aron" finds Áron, with only the
//! fields the viewer may see), edits a profile, switches the language, kills a worker
//! (the home page says which realm did not answer) — and runs axe-core on every page
//! and saves screenshots at 390 px and 1280 px under `target/web-screenshots/`.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (Debian `chromium`,
//! `chromium-driver`; `./tests/run.sh` installs them) and axe-core from npm
//! (`tests/browser`, installed by `./tests/run.sh`). Without them the test says so
//! loudly and skips; set `PEK_REQUIRE_BROWSER=1` (CI) to make that a failure.

use std::time::{Duration, Instant};

use fantoccini::Locator;
use pek::demo;
use pek_tests::browser::{axe_source, browser_ready, start_browser, Browser};
use pek_tests::federation::{Federation, Options};
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn a_person_uses_the_web_interface_in_chromium() {
    if !browser_ready() {
        return;
    }
    let mut fed = Federation::start(Options {
        hub_env: vec![("PEK_DEV_LOGIN".into(), "true".into())],
        ..Options::default()
    })
    .await
    .expect("federation");
    let (people, cili) = pek_tests::web_support::seed(&fed).await;
    let driver = start_browser().await.expect("chromium via chromedriver");
    let client = driver.client.clone().expect("client");
    let b = Browser {
        c: &client,
        hub: fed.hub.url.clone(),
        axe: axe_source().expect("axe-core"),
    };

    // Signed out: every page leads to the sign-in page, which lists the demo people.
    b.open("/").await;
    b.wait_path("/sign-in").await;
    let text = b.text().await;
    assert!(text.contains("Fejlesztői bejelentkezés"), "{text}");
    assert!(
        text.contains("Szabó Áron") && text.contains("Nagy Bob"),
        "{text}"
    );
    b.check_page("sign-in").await;

    // Bob signs in; the session cookie is HttpOnly, Secure, SameSite=Lax — and works on
    // plain http://127.0.0.1, which Chromium treats as a secure context.
    b.sign_in_as("Nagy Bob").await;
    let cookies = client.get_all_cookies().await.expect("cookies");
    let session = cookies
        .iter()
        .find(|c| c.name() == "pek_session")
        .expect("session cookie");
    assert_eq!(session.http_only(), Some(true));
    assert_eq!(session.secure(), Some(true));
    assert_eq!(
        session.same_site().map(|s| s.to_string()).as_deref(),
        Some("Lax")
    );

    // Home: Bob's groups of all three realms, grouped by realm, with status and posts.
    let home = b.text().await;
    for want in [
        "Szia, Nagy Bob!",
        "Simonyi Károly Szakkollégium",
        "Kir-Dev Web",
        "KSZK Üzemeltetés",
        "Hub (hub)",
        "kir-dev (kir-dev)",
        "kszk (kszk)",
        "Aktív",
        "Körvezető",
    ] {
        assert!(home.contains(want), "home lacks {want:?}:\n{home}");
    }
    // The leader's post by its name on screen, never the API's English one.
    assert!(!home.contains("leader"), "{home}");
    assert!(!home.contains("Nem minden szervezet válaszolt"), "{home}");
    b.check_page("home").await;

    // Search as you type (htmx): "aron" finds Áron; Bob leads Áron's group, so he sees
    // the full profile.
    b.open("/search").await;
    let input = client.find(Locator::Css("#q")).await.expect("search box");
    input.send_keys("aron").await.expect("typing");
    let results = b.wait_text("#results", "Szabó Áron").await;
    assert!(results.contains("+36 1 333 3333"), "{results}");
    assert_eq!(b.path().await, "/search");
    b.check_page("search").await;

    // The group page (read-only): description, sub-groups, members as the API allows.
    b.open("/").await;
    client
        .find(Locator::LinkText("KSZK Üzemeltetés"))
        .await
        .expect("group link")
        .click()
        .await
        .expect("click");
    let group = b.wait_text("main", "Tagok").await;
    assert!(group.contains("Szabó Áron"), "{group}");
    assert!(group.contains("Projekt"), "{group}");
    // The parent group is in the directory: Bob sees it (not its members) and its link.
    assert!(group.contains("Szülő kör"), "{group}");
    assert!(group.contains("Schönherz Számítástechnikai Kör"), "{group}");
    b.check_page("group").await;

    // Bob's view of Áron: full profile and his groups in the realms they share.
    b.open(&format!("/people/{}", people.aron)).await;
    let aron = b.text().await;
    assert!(
        aron.contains("+36 1 333 3333") && aron.contains("Kir-Dev Web"),
        "{aron}"
    );
    assert!(!aron.contains("Adatlapom szerkesztése"), "{aron}");
    b.check_page("person").await;
    b.sign_out().await;

    // Cecília shares only kszk with Áron, without viewFullProfile there: the search
    // shows his names and nickname, never his phone or room.
    b.sign_in_as("Tóth Cecília").await;
    b.open("/search?q=aron").await;
    let results = b.wait_text("#results", "Szabó Áron").await;
    assert!(results.contains("ari"), "{results}");
    for hidden in ["+36 1 333 3333", "1019", "Schönherz", "ari@sch.bme.hu"] {
        assert!(
            !results.contains(hidden),
            "Cecília sees {hidden:?}: {results}"
        );
    }
    b.open(&format!("/people/{}", people.aron)).await;
    let aron = b.text().await;
    assert!(!aron.contains("+36 1 333 3333"), "{aron}");
    assert!(aron.contains("Az alap adatlapot látod"), "{aron}");
    // Someone she shares no realm with does not exist for her.
    b.open(&format!("/people/{}", Uuid::new_v4())).await;
    assert!(b.text().await.contains("Nincs ilyen oldal"));

    // Her own page edits her profile (the 404 page keeps the menu).
    client
        .find(Locator::LinkText("Adatlapom"))
        .await
        .expect("my page link")
        .click()
        .await
        .expect("click");
    b.wait_path(&format!("/people/{cili}")).await;
    b.check_page("my-profile").await;
    let nick = client
        .find(Locator::Css("#f-nickname"))
        .await
        .expect("nickname");
    nick.clear().await.expect("clear");
    nick.send_keys("Cili").await.expect("type");
    client
        .find(Locator::Css("#f-dormitory"))
        .await
        .expect("dormitory")
        .select_by_value("KARMAN")
        .await
        .expect("select");
    client
        .find(Locator::Css("#f-acc-name-0"))
        .await
        .expect("account")
        .send_keys("cili@sch.bme.hu")
        .await
        .expect("type");
    client
        .find(Locator::Css("form.profile button[type=submit]"))
        .await
        .expect("save")
        .click()
        .await
        .expect("click");
    let saved = b.wait_text("main", "Elmentve").await;
    assert!(
        saved.contains("Cili") && saved.contains("Kármán"),
        "{saved}"
    );
    assert!(saved.contains("cili@sch.bme.hu"), "{saved}");
    let (s, me) = fed
        .call(
            reqwest::Method::GET,
            &format!("{}/api/v1/me", fed.hub.url),
            &fed.token(cili),
            None,
        )
        .await
        .expect("me");
    assert_eq!(s, 200);
    assert_eq!(me["profile"]["nickname"], "Cili");
    assert_eq!(me["profile"]["dormitory"], "KARMAN");

    // English on request.
    client
        .find(Locator::LinkText("English"))
        .await
        .expect("language switch")
        .click()
        .await
        .expect("click");
    b.wait_text("main", "My groups").await;
    client
        .find(Locator::LinkText("Magyar"))
        .await
        .expect("language switch")
        .click()
        .await
        .expect("click");
    b.wait_text("main", "Köreim").await;
    b.sign_out().await;

    // A worker dies: the home page still shows the rest, and says which realm is missing.
    b.sign_in_as("Nagy Bob").await;
    fed.worker("kszk").instance.kill();
    b.open("/").await;
    let home = b.text().await;
    assert!(home.contains("Nem minden szervezet válaszolt"), "{home}");
    assert!(home.contains("kszk"), "{home}");
    assert!(
        home.contains("Kir-Dev Web") && home.contains("Simonyi Károly"),
        "{home}"
    );
    assert!(!home.contains("KSZK Üzemeltetés"), "{home}");
    b.check_page("home-partial").await;

    client.clone().close().await.expect("closing the browser");
    drop(driver);
}

/// The hub's API calls so far by "METHOD route" (its request counter; the pages' own
/// in-process calls count too).
async fn api_calls(metrics_port: u16) -> std::collections::HashMap<String, u64> {
    let text = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    let label = |line: &str, name: &str| {
        line.split(&format!("{name}=\""))
            .nth(1)
            .and_then(|r| r.split('"').next())
            .map(String::from)
    };
    let mut out = std::collections::HashMap::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with("pek_http_requests_total{"))
    {
        let (Some(method), Some(route)) = (label(line, "method"), label(line, "route")) else {
            continue;
        };
        let n: u64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        *out.entry(format!("{method} {route}")).or_default() += n;
    }
    out
}

/// A group's memberships as `token`'s holder gets them from the JSON API.
async fn members_of(fed: &Federation, group: &str, token: &str) -> Vec<serde_json::Value> {
    let url = format!(
        "{}/api/v1/realms/kszk/groups/{group}/members?limit=200",
        fed.hub.url
    );
    let (s, v) = fed
        .call(reqwest::Method::GET, &url, token, None)
        .await
        .expect("members");
    assert_eq!(s, 200, "{v}");
    v["items"].as_array().cloned().unwrap_or_default()
}

/// The group page's membership lifecycle in two browser sessions (two WebDriver
/// sessions, two cookie jars): Cecília applies, withdraws and applies again; Bob, the
/// group's leader, sees her application and accepts it; her page shows her as a newbie;
/// a forged leader action of hers (valid CSRF token) shows the API's refusal; Bob
/// changes her status and posts (a transition the API does not allow shows its 409),
/// edits the group, invites Alice, who accepts; Cecília leaves.
#[tokio::test]
async fn group_membership_actions_in_two_browser_sessions() {
    if !browser_ready() {
        return;
    }
    let metrics_port = pek_tests::free_port().expect("port");
    let fed = Federation::start(Options {
        hub_env: vec![
            ("PEK_DEV_LOGIN".into(), "true".into()),
            (
                "PEK_METRICS_LISTEN".into(),
                format!("127.0.0.1:{metrics_port}"),
            ),
        ],
        ..Options::default()
    })
    .await
    .expect("federation");
    let (people, _cili) = pek_tests::web_support::seed(&fed).await;
    let hub = fed.hub.url.clone();
    let bob_token = fed.token(people.bob);
    let (s, found) = fed
        .call(
            reqwest::Method::GET,
            &format!("{hub}/api/v1/groups?q=KSZK%20%C3%9Cz"),
            &bob_token,
            None,
        )
        .await
        .expect("group search");
    assert_eq!(s, 200, "{found}");
    let group = found["items"]
        .as_array()
        .and_then(|a| a.iter().find(|g| g["realmId"] == "kszk"))
        .and_then(|g| g["id"].as_str())
        .expect("KSZK Üzemeltetés")
        .to_string();
    let page = format!("/realms/kszk/groups/{group}");
    let bob_membership = members_of(&fed, &group, &bob_token)
        .await
        .into_iter()
        .find(|m| m["userId"] == people.bob.to_string())
        .and_then(|m| m["id"].as_str().map(String::from))
        .expect("Bob's membership");

    let axe = axe_source().expect("axe-core");
    let (cili_driver, bob_driver) = (
        start_browser().await.expect("Cecília's browser"),
        start_browser().await.expect("Bob's browser"),
    );
    let (cc, bc) = (
        cili_driver.client.clone().expect("client"),
        bob_driver.client.clone().expect("client"),
    );
    let a = Browser {
        c: &cc,
        hub: hub.clone(),
        axe: axe.clone(),
    };
    let b = Browser {
        c: &bc,
        hub: hub.clone(),
        axe,
    };

    // Cecília is not in the group: she may apply, and sees no leader controls.
    a.sign_in_as("Tóth Cecília").await;
    a.open(&page).await;
    let text = a.wait_text("main", "Tagságom").await;
    assert!(text.contains("Nem vagy tagja ennek a körnek"), "{text}");
    for leader_only in [
        "Jelentkezések",
        "Meghívások",
        "Meghívás a körbe",
        "A kör szerkesztése",
        "Új státusz",
    ] {
        assert!(
            !text.contains(leader_only),
            "Cecília sees {leader_only:?}: {text}"
        );
    }
    a.check_page("group-not-member").await;
    a.press(None, "Jelentkezem a körbe").await;
    a.wait_text("main", "Jelentkezésedet elküldtük").await;
    a.press(None, "Jelentkezés visszavonása").await;
    a.wait_text("main", "Visszavontad a jelentkezésedet").await;
    a.press(None, "Jelentkezem a körbe").await;
    let text = a.wait_text("main", "Jelentkezésedet elküldtük").await;
    assert!(text.contains("egy körvezető bírálja el"), "{text}");
    a.check_page("group-applied").await;

    // Bob, in his own browser session, sees the application and accepts it. The page
    // gets the names of all three people (Áron, Bob, Cecília) in one API call, not one
    // call per person.
    b.sign_in_as("Nagy Bob").await;
    let calls = || api_calls(metrics_port);
    let before = calls().await;
    b.open(&page).await;
    b.wait_text("#application-list", "Tóth Cecília").await;
    let after = calls().await;
    let made = |route: &str| {
        after.get(route).copied().unwrap_or(0) - before.get(route).copied().unwrap_or(0)
    };
    assert_eq!(made("GET /api/v1/users/{id}"), 0, "{after:?}");
    assert_eq!(made("POST /api/v1/users/lookup"), 1, "{after:?}");
    b.check_page("group-leader").await;
    let application = b.item("#application-list", "Tóth Cecília").await;
    b.press(Some(&application), "Felvétel").await;
    b.wait_text("main", "Elfogadva").await;
    let member = b.item("#member-list", "Tóth Cecília").await;
    let text = member.text().await.expect("text");
    assert!(text.contains("Újonc"), "{text}");
    let cili_membership = member
        .attr("data-membership")
        .await
        .expect("attr")
        .expect("membership id");
    let left = bc
        .find_all(Locator::Css("#application-list > li"))
        .await
        .expect("applications");
    assert!(left.is_empty(), "the application is gone");

    // Cecília's page now shows her as a member (newbie), and so does her home page.
    a.open(&page).await;
    let status = a.wait_text("#my-status", "Újonc").await;
    assert_eq!(status, "Újonc");
    let text = a.text().await;
    assert!(
        text.contains("Kilépés a körből") && !text.contains("Új státusz"),
        "{text}"
    );
    a.open("/").await;
    let home = a.wait_text("main", "KSZK Üzemeltetés").await;
    assert!(home.contains("Újonc"), "{home}");

    // A member who is not a leader forges a leader's form (with a valid CSRF token):
    // the API refuses, and the page says so.
    a.open(&page).await;
    a.wait_text("main", "Tagságom").await;
    a.forge_post(
        &format!("/realms/kszk/memberships/{bob_membership}/status"),
        json!({"group": group, "status": "FORMER"}),
    )
    .await;
    let refused = a.wait_text("main", "Nem sikerült").await;
    assert!(refused.contains("Ehhez nincs jogosultságod"), "{refused}");
    assert!(!refused.contains("Tagság módosítva"), "{refused}");
    a.check_page("group-refused").await;
    let bob_now = members_of(&fed, &group, &bob_token)
        .await
        .into_iter()
        .find(|m| m["id"] == bob_membership.as_str())
        .expect("Bob's membership");
    assert_eq!(bob_now["status"], "ACTIVE", "{bob_now}");

    // Bob makes her active and gives her a post.
    b.open(&page).await;
    let member = b.item("#member-list", "Tóth Cecília").await;
    member
        .find(Locator::Css("select[name=status]"))
        .await
        .expect("status select")
        .select_by_value("ACTIVE")
        .await
        .expect("select");
    b.press(Some(&member), "Státusz módosítása").await;
    b.wait_text("main", "Tagság módosítva").await;
    b.wait_text(
        &format!("li[data-membership='{cili_membership}'] .status"),
        "Aktív",
    )
    .await;
    // Posts are given from the group's own names: Bob names two (its "Posztok"
    // section), then ticks them for her.
    for name in ["gazdaságis", "pr"] {
        bc.find(Locator::Css("#new-post"))
            .await
            .expect("the new post's field")
            .send_keys(name)
            .await
            .expect("type");
        b.press(None, "Poszt hozzáadása").await;
        b.wait_text("#post-list", name).await;
    }
    let member = b.item("#member-list", "Tóth Cecília").await;
    for name in ["gazdaságis", "pr"] {
        member
            .find(Locator::Css(&format!("input[name=post][value='{name}']")))
            .await
            .expect("the post's checkbox")
            .click()
            .await
            .expect("tick");
    }
    b.press(Some(&member), "Posztok mentése").await;
    b.wait_text(
        &format!("li[data-membership='{cili_membership}']"),
        "gazdaságis, pr",
    )
    .await;
    // A change the API does not allow (ACTIVE → NEWBIE), sent through htmx: its 409
    // message is shown, nothing changes.
    bc.execute(
        "const s = document.querySelector('#st-' + arguments[0]);
         const o = document.createElement('option');
         o.value = 'NEWBIE'; o.text = 'NEWBIE'; s.appendChild(o); s.value = 'NEWBIE';
         return true;",
        vec![json!(cili_membership)],
    )
    .await
    .expect("forging the select");
    let member = b.item("#member-list", "Tóth Cecília").await;
    b.press(Some(&member), "Státusz módosítása").await;
    let conflict = b.wait_text("#action-error", "Ez most nem lehetséges").await;
    // In the page's language only: the API's English words stay out of it.
    assert!(!conflict.contains("cannot go"), "{conflict}");
    let cili_now = members_of(&fed, &group, &bob_token)
        .await
        .into_iter()
        .find(|m| m["id"] == cili_membership.as_str())
        .expect("Cecília's membership");
    assert_eq!(cili_now["status"], "ACTIVE");
    assert_eq!(cili_now["posts"], json!(["gazdaságis", "pr"]));

    // Bob edits the group.
    b.open(&page).await;
    let desc = bc
        .find(Locator::Css("#g-description"))
        .await
        .expect("description");
    desc.clear().await.expect("clear");
    desc.send_keys("Szerverek és hálózat.").await.expect("type");
    b.press(None, "Mentés").await;
    let saved = b.wait_text("main", "A kör adatai elmentve").await;
    assert!(saved.contains("Szerverek és hálózat."), "{saved}");
    // The longest description the API takes (10,000 characters, here one unbroken
    // word) goes through the form too, and wraps on a phone.
    let edit = format!("{page}/edit");
    let long = "x".repeat(10_000);
    b.forge_post(
        &edit,
        json!({"name": "KSZK Üzemeltetés", "purpose": "PROJECT", "description": long}),
    )
    .await;
    b.wait_text("main", "A kör adatai elmentve").await;
    b.check_page("group-long-description").await;
    b.forge_post(
        &edit,
        json!({"name": "KSZK Üzemeltetés", "purpose": "PROJECT",
               "description": "Szerverek és hálózat."}),
    )
    .await;
    b.wait_text("main", "A kör adatai elmentve").await;

    // He invites Alice (found by search) and cancels; invites her again.
    let find = bc.find(Locator::Css("#find")).await.expect("find");
    find.send_keys("Alice").await.expect("type");
    b.press(None, "Keresés").await;
    let result = b.item("#invite-results", "Kovács Alice").await;
    b.press(Some(&result), "Meghívom").await;
    b.wait_text("main", "Meghívó elküldve").await;
    let invitation = b.item("#invitation-list", "Kovács Alice").await;
    b.press(Some(&invitation), "Meghívás visszavonása").await;
    b.wait_text("main", "A meghívást visszavontad").await;
    bc.find(Locator::Css("#find"))
        .await
        .expect("find")
        .send_keys("Alice")
        .await
        .expect("type");
    b.press(None, "Keresés").await;
    let result = b.item("#invite-results", "Kovács Alice").await;
    b.press(Some(&result), "Meghívom").await;
    b.wait_text("#invitation-list", "Kovács Alice").await;
    b.check_page("group-leader-invited").await;

    // Cecília leaves, with a plain form submission as without JavaScript (no htmx): a
    // POST, then a redirect back to the page, which says what happened. She is now a
    // former member ("öregtag").
    a.open(&page).await;
    a.wait_text("main", "Kilépés a körből").await;
    cc.execute(
        "document.querySelector(\"form[action$='/leave']\").submit(); return true;",
        vec![],
    )
    .await
    .expect("submitting the form");
    a.wait_text("main", "Kiléptél a körből").await;
    let url = cc.current_url().await.expect("url");
    assert_eq!(url.path(), page);
    assert_eq!(url.query(), Some("done=left"));
    a.wait_text("#my-status", "Öregtag").await;
    a.sign_out().await;

    // Alice sees the invitation on the group page and accepts it.
    a.sign_in_as("Kovács Alice").await;
    a.open(&page).await;
    a.wait_text("main", "Meghívtak ebbe a körbe").await;
    a.check_page("group-invited").await;
    a.press(None, "Elfogadom a meghívást").await;
    a.wait_text("main", "Elfogadva").await;
    a.wait_text("#my-status", "Újonc").await;

    // In English too.
    a.open(&format!("/lang?to=en&back={}", page.replace('/', "%2F")))
        .await;
    a.wait_text("main", "My membership").await;

    cc.clone().close().await.expect("closing the browser");
    bc.clone().close().await.expect("closing the browser");
    drop((cili_driver, bob_driver));
}

#[tokio::test]
async fn pages_refuse_forms_and_htmx_requests_without_the_csrf_token() {
    let fed = Federation::start(Options {
        realms: vec![],
        hub_env: vec![("PEK_DEV_LOGIN".into(), "true".into())],
        ..Options::default()
    })
    .await
    .expect("federation");
    let people = demo::seed_people(&fed.hub_db).await.expect("people");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let hub = &fed.hub.url;
    // A page sets the CSRF cookie and embeds the token bound to it.
    let r = http
        .get(format!("{hub}/sign-in"))
        .send()
        .await
        .expect("get");
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap_or("")
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("pek_csrf="))
        .expect("csrf cookie")
        .split(';')
        .next()
        .unwrap_or("")
        .to_string();
    let page = r.text().await.expect("body");
    let token = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("token in the form")
        .to_string();
    let sign_in = |csrf: Option<&str>, cookie: Option<&str>| {
        let mut rb = http
            .post(format!("{hub}/sign-in/dev"))
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some(c) = cookie {
            rb = rb.header("cookie", c.to_string());
        }
        let body = match csrf {
            Some(t) => format!("csrf={t}&authSchId=demo-bob"),
            None => "authSchId=demo-bob".to_string(),
        };
        rb.body(body).send()
    };
    assert_eq!(
        sign_in(None, Some(&cookie)).await.expect("post").status(),
        403
    );
    assert_eq!(
        sign_in(Some("0000"), Some(&cookie))
            .await
            .expect("post")
            .status(),
        403
    );
    assert_eq!(
        sign_in(Some(&token), None).await.expect("post").status(),
        403
    );
    let ok = sign_in(Some(&token), Some(&cookie)).await.expect("post");
    assert_eq!(ok.status(), 303);
    let session = ok
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("pek_session="))
        .expect("session cookie")
        .to_string();
    assert!(
        session.contains("HttpOnly")
            && session.contains("Secure")
            && session.contains("SameSite=Lax"),
        "{session}"
    );
    let session = session.split(';').next().unwrap_or("").to_string();
    // An htmx request must carry the header token (bound to the session too).
    let search = |token: Option<String>| {
        let mut rb = http
            .get(format!("{hub}/search?q=bob"))
            .header("hx-request", "true")
            .header("cookie", format!("{cookie}; {session}"));
        if let Some(t) = token {
            rb = rb.header("x-csrf-token", t);
        }
        rb.send()
    };
    assert_eq!(search(None).await.expect("htmx").status(), 403);
    assert_eq!(
        search(Some(token.clone())).await.expect("htmx").status(),
        403
    );
    let home = http
        .get(format!("{hub}/search"))
        .header("cookie", format!("{cookie}; {session}"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("body");
    let signed_in_token = home
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("token")
        .to_string();
    let r = search(Some(signed_in_token)).await.expect("htmx");
    assert_eq!(r.status(), 200);
    let fragment = r.text().await.expect("body");
    assert!(fragment.starts_with("<div id=\"results\""), "{fragment}");
    assert!(
        fragment.contains("Nagy Bob") || fragment.contains("Nincs ilyen"),
        "{fragment}"
    );
    let _ = people;
}

#[tokio::test]
async fn signs_in_through_the_login_provider_in_chromium() {
    if !browser_ready() {
        return;
    }
    use pek_tests::oidc_support::OidcProvider;
    let hub_port = pek_tests::free_port().expect("port");
    let provider = OidcProvider::start(&format!("http://127.0.0.1:{hub_port}/auth/callback"))
        .await
        .expect("OIDC provider (node oidc-provider; ./tests/run.sh installs it)");
    let dir = pek_tests::auth_support::Scratch::new("web-oidc").expect("scratch");
    let secret = dir
        .write("client-secret", &provider.client_secret)
        .expect("secret");
    let fed = Federation::start(Options {
        realms: vec!["kir-dev"],
        hub_port: Some(hub_port),
        hub_env: vec![
            ("PEK_LOGIN_ISSUER_URL".into(), provider.issuer.clone()),
            ("PEK_LOGIN_CLIENT_ID".into(), provider.client_id.clone()),
            (
                "PEK_LOGIN_CLIENT_SECRET_FILE".into(),
                secret.display().to_string(),
            ),
        ],
        ..Options::default()
    })
    .await
    .expect("federation");
    let driver = start_browser().await.expect("chromium via chromedriver");
    let client = driver.client.clone().expect("client");
    let b = Browser {
        c: &client,
        hub: fed.hub.url.clone(),
        axe: axe_source().expect("axe-core"),
    };
    b.open("/sign-in").await;
    let page = b.text().await;
    // No development sign-in on this hub: only the provider.
    assert!(!page.contains("Fejlesztői bejelentkezés"), "{page}");
    client
        .find(Locator::LinkText("Bejelentkezés AuthSCH-val"))
        .await
        .expect("provider button")
        .click()
        .await
        .expect("click");
    // The provider's own login and consent pages (any login name, any password).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let url = client.current_url().await.expect("url");
        if url.as_str().starts_with(&fed.hub.url) && url.path() == "/" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never came back to the hub: {url}"
        );
        if let Ok(login) = client.find(Locator::Css("input[name=login]")).await {
            login.send_keys("grace").await.expect("login name");
            client
                .find(Locator::Css("input[name=password]"))
                .await
                .expect("password")
                .send_keys("any password")
                .await
                .expect("password");
        }
        if let Ok(button) = client.find(Locator::Css("button[type=submit]")).await {
            let _ = button.click().await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let home = b.wait_text("main", "Szia").await;
    assert!(home.contains("Tester Grace"), "{home}");
    b.sign_out().await;
    b.open("/").await;
    b.wait_path("/sign-in").await;
    client.clone().close().await.expect("closing the browser");
    drop(driver);
}

/// What waits for a person's answer reaches them on their home page, also from a realm
/// they are not in yet: an invitation and a role offer, answered there with pages only.
#[tokio::test]
async fn invitations_and_role_offers_wait_on_the_home_page() {
    if !browser_ready() {
        return;
    }
    let fed = Federation::start(Options {
        hub_env: vec![("PEK_DEV_LOGIN".into(), "true".into())],
        ..Options::default()
    })
    .await
    .expect("federation");
    let (people, _) = pek_tests::web_support::seed(&fed).await;
    let david = fed
        .person("web-david", "Dávid", "Kiss")
        .await
        .expect("Dávid");
    let hub = fed.hub.url.clone();
    let at = fed.token(people.alice);
    let get = |path: &str, token: &str| {
        let (url, token) = (format!("{hub}{path}"), token.to_string());
        let fed = &fed;
        async move {
            fed.call(reqwest::Method::GET, &url, &token, None)
                .await
                .expect("GET")
        }
    };
    let post = |path: &str, body: serde_json::Value| {
        let (url, at) = (format!("{hub}{path}"), at.clone());
        let fed = &fed;
        async move {
            fed.call(reqwest::Method::POST, &url, &at, Some(body))
                .await
                .expect("POST")
        }
    };
    // Alice (kir-dev's administrator) invites Dávid to Kir-Dev Web and offers him a role.
    let (_, found) = get("/api/v1/groups?q=Kir-Dev%20Web", &at).await;
    let group = found["items"]
        .as_array()
        .and_then(|a| a.iter().find(|g| g["realmId"] == "kir-dev"))
        .and_then(|g| g["id"].as_str())
        .expect("Kir-Dev Web")
        .to_string();
    let (s, b) = post(
        &format!("/api/v1/realms/kir-dev/groups/{group}/members"),
        json!({ "userId": david }),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let (s, p) = post(
        "/api/v1/realms/kir-dev/policies",
        json!({"name": "Mentorok"}),
    )
    .await;
    assert_eq!(s, 201, "{p}");
    let (s, a) = post(
        "/api/v1/realms/kir-dev/assignments",
        json!({"userId": david, "policyId": p["id"]}),
    )
    .await;
    assert_eq!(s, 201, "{a}");
    assert!(a["acceptedAt"].is_null(), "an offer: {a}");
    // The worker reports both to the hub through its outbox.
    let dt = fed.token(david);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, offers) = get("/api/v1/me/policy-offers", &dt).await;
        if offers["items"].as_array().is_some_and(|i| !i.is_empty()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the offer never reached the hub: {offers}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Neither makes Dávid part of kir-dev: its administrator cannot see him.
    let (s, b) = get(&format!("/api/v1/users/{david}"), &at).await;
    assert_eq!(s, 404, "{b}");

    let driver = start_browser().await.expect("browser");
    let c = driver.client.clone().expect("client");
    let b = Browser {
        c: &c,
        hub: hub.clone(),
        axe: axe_source().expect("axe-core"),
    };
    b.sign_in_as("Kiss Dávid").await;
    let text = b.wait_text("#waiting", "Döntésedre vár").await;
    assert!(text.contains("Kir-Dev Web"), "{text}");
    assert!(text.contains("Mentorok"), "{text}");
    b.check_page("home-waiting").await;
    let role = b.item("#waiting ul", "Mentorok").await;
    b.press(Some(&role), "Nem kérem").await;
    b.wait_text("main", "A szerepet nem fogadtad el").await;
    let text = b.text().await;
    assert!(!text.contains("Mentorok"), "{text}");
    let invitation = b.item("#waiting ul", "Kir-Dev Web").await;
    b.press(Some(&invitation), "Elfogadom a meghívást").await;
    b.wait_text("main", "Elfogadva").await;
    let (_, mine) = get("/api/v1/me/groups", &dt).await;
    assert!(
        mine["items"].as_array().is_some_and(|i| i
            .iter()
            .any(|m| m["groupId"] == group.as_str() && m["status"] == "NEWBIE")),
        "{mine}"
    );
    let (_, offers) = get("/api/v1/me/policy-offers", &dt).await;
    assert_eq!(
        offers["items"].as_array().map(Vec::len),
        Some(0),
        "{offers}"
    );
    // Having joined, he is a person of kir-dev: its administrator sees him.
    fed.wait_hub_knows(david, "kir-dev", Duration::from_secs(20))
        .await
        .expect("federation table");
    let (s, b) = get(&format!("/api/v1/users/{david}"), &at).await;
    assert_eq!(s, 200, "{b}");
}
