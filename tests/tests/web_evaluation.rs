//! The community evaluation pages in a real browser, against a real hub and two workers
//! (each a `pek serve` process with its own database), seeded as `pek local` seeds them:
//! Bob leads Kir-Dev Web (Áron is a member) and fills its scoreboard — the member's total
//! follows the PéK formula as he types (WORK 2 → 0, + RESPONSIBILITY 1 → 5), a value
//! over the guideline's maximum shows the API's refusal, the season's refusal is shown
//! too — and submits it; Alice, the realm's GOD, accepts it in another browser; after the
//! season closes Áron sees his semester points, and Bob sees them on his page. Every
//! page is checked with axe-core and for sideways scrolling at 390 px, with screenshots.

use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use pek_tests::browser::{axe_source, browser_ready, start_browser, Browser};
use pek_tests::federation::{Federation, Options};
use reqwest::Method;
use serde_json::{json, Value};

async fn api(fed: &Federation, token: &str, method: Method, path: &str, body: Value) -> Value {
    let body = (!body.is_null()).then_some(body);
    let (s, b) = fed
        .call(method, &format!("{}{path}", fed.hub.url), token, body)
        .await
        .expect("call");
    assert!((200..300).contains(&s), "{path}: {s} {b}");
    b
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

/// Replaces an input's text as a person does (select all, type) and leaves it with Tab:
/// one `change` event, the one htmx listens to. (WebDriver's clear would fire one of
/// its own, saving an empty cell first.)
async fn type_into(c: &Client, css: &str, text: &str) {
    let el = c.find(Locator::Css(css)).await.expect(css);
    // Ctrl+A, release the modifier, the text, Tab.
    el.send_keys(&format!("\u{E009}a\u{E000}{text}\u{E004}"))
        .await
        .expect("type");
}

/// The text of the first element matching `xpath`, once it contains `want`.
async fn wait_xpath(c: &Client, xpath: &str, want: &str) -> String {
    let deadline = Instant::now() + pek_tests::browser::WAIT;
    loop {
        let t = match c.find(Locator::XPath(xpath)).await {
            Ok(el) => el.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if t.contains(want) {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "{xpath} never showed {want:?}; it shows {t:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn click(c: &Client, locator: Locator<'_>) {
    c.find(locator)
        .await
        .expect("element to click")
        .click()
        .await
        .expect("click");
}

#[tokio::test]
async fn a_leader_fills_a_scoreboard_a_judge_accepts_it_and_the_member_sees_the_points() {
    if !browser_ready() {
        return;
    }
    let fed = Federation::start(Options {
        hub_env: vec![("PEK_DEV_LOGIN".into(), "true".into())],
        ..Options::default()
    })
    .await
    .expect("federation");
    let (people, _cili) = pek_tests::web_support::seed(&fed).await;
    // Alice (the realm's GOD) prepares kir-dev's evaluation through the API: a semester,
    // and Kir-Dev Web's guidelines for it.
    let god = fed.token(people.alice);
    let r = "/api/v1/realms/kir-dev";
    let semester = id(&api(
        &fed,
        &god,
        Method::POST,
        &format!("{r}/semesters"),
        json!({"name": "2025/26/1", "startsOn": "2025-09-01", "endsOn": "2026-01-31"}),
    )
    .await);
    let groups = api(
        &fed,
        &god,
        Method::GET,
        &format!("{r}/groups?q=Kir-Dev%20Web"),
        Value::Null,
    )
    .await;
    let group = groups["items"][0]["id"]
        .as_str()
        .expect("group")
        .to_string();
    // Guidelines are made in the SUBMISSION season.
    api(
        &fed,
        &god,
        Method::PUT,
        &format!("{r}/evaluation-season"),
        json!({"season": "SUBMISSION", "semesterId": semester}),
    )
    .await;
    let coll = id(&api(
        &fed,
        &god,
        Method::POST,
        &format!("{r}/guideline-collections"),
        json!({"groupId": group, "semesterId": semester, "name": "Irányelvek"}),
    )
    .await);
    for (title, category, max) in [
        ("Fejlesztés", "WORK", 30),
        ("Körvezetés", "RESPONSIBILITY", 20),
    ] {
        api(
            &fed,
            &god,
            Method::POST,
            &format!("{r}/guideline-collections/{coll}/guidelines"),
            json!({"title": title, "category": category, "maxPerMember": max,
                   "maxPerGuideline": 100}),
        )
        .await;
    }
    // Back to OFF: the realm evaluates the semester, but nothing is editable.
    api(
        &fed,
        &god,
        Method::PUT,
        &format!("{r}/evaluation-season"),
        json!({"season": "OFF"}),
    )
    .await;

    let driver = start_browser().await.expect("chromium via chromedriver");
    let client = driver.client.clone().expect("client");
    let b = Browser {
        c: &client,
        hub: fed.hub.url.clone(),
        axe: axe_source().expect("axe-core"),
    };

    // Bob leads Kir-Dev Web: the evaluation page links its scoreboard.
    b.sign_in_as("Nagy Bob").await;
    click(&client, Locator::LinkText("Értékelés")).await;
    b.wait_path("/evaluation").await;
    let page = b.wait_text("main", "Köreim pontozása").await;
    assert!(
        page.contains("Még nincs elfogadott közösségi pontod"),
        "{page}"
    );
    b.check_page("evaluation-leader").await;
    b.open(&format!("/realms/kir-dev/groups/{group}/scoreboard"))
        .await;
    // Outside SUBMISSION the API refuses to start one, and the page says why.
    click(&client, Locator::Css("main form button[type=submit]")).await;
    let refused = b.wait_text("#refused", "A PéK nem fogadta el").await;
    assert!(
        refused.contains("Az értékelési időszak ezt most nem engedi")
            && !refused.contains("SUBMISSION"),
        "{refused}"
    );
    api(
        &fed,
        &god,
        Method::PUT,
        &format!("{r}/evaluation-season"),
        json!({"season": "SUBMISSION"}),
    )
    .await;
    b.open(&format!("/realms/kir-dev/groups/{group}/scoreboard"))
        .await;
    click(&client, Locator::Css("main form button[type=submit]")).await;
    let board = b.wait_text("main", "Beküldés elbírálásra").await;
    assert!(
        board.contains("Szabó Áron") && board.contains("Fejlesztés"),
        "{board}"
    );

    // Áron's row: WORK 2 → 0 (1–2 points count nothing), then RESPONSIBILITY 1 → 5, each
    // saved as it changes and the total recomputed by the API.
    let aron_row = "//tr[th[contains(., 'Szabó Áron')]]";
    let cell = |n: usize| format!("{aron_row}/td[{n}]//input[@type='number']");
    let aron_work = client
        .find(Locator::XPath(&cell(1)))
        .await
        .expect("Áron's WORK cell")
        .attr("name")
        .await
        .expect("name")
        .expect("input name");
    let aron_resp = client
        .find(Locator::XPath(&cell(2)))
        .await
        .expect("Áron's RESPONSIBILITY cell")
        .attr("name")
        .await
        .expect("name")
        .expect("input name");
    let total = format!("{aron_row}//output");
    type_into(&client, &format!("input[name='{aron_work}']"), "2").await;
    b.wait_text("#cells-status", "Elmentve").await;
    let t = wait_xpath(&client, &total, "Munka 2").await;
    assert!(t.starts_with('0'), "WORK 2 alone counts 0: {t}");
    type_into(&client, &format!("input[name='{aron_resp}']"), "1").await;
    let t = wait_xpath(&client, &total, "Felelősség 1").await;
    assert!(t.starts_with('5'), "WORK 2 + RESP 1 → 5: {t}");
    // Over the guideline's maximum: the API's message, and the total stays.
    type_into(&client, &format!("input[name='{aron_work}']"), "31").await;
    let msg = b.wait_text("#cells-status", "A PéK nem fogadta el").await;
    assert!(
        msg.contains("Ennyi pontot az irányelv nem enged")
            && msg.contains("31")
            && !msg.contains("between"),
        "{msg}"
    );
    assert!(wait_xpath(&client, &total, "Munka 2")
        .await
        .starts_with('5'));
    type_into(&client, &format!("input[name='{aron_work}']"), "2").await;
    b.wait_text("#cells-status", "Elmentve").await;
    // Without htmx: the form's button saves everything and the page recomputes.
    let bob_row = "//tr[th[contains(., 'Nagy Bob')]]";
    client
        .find(Locator::XPath(&format!(
            "{bob_row}/td[1]//input[@type='number']"
        )))
        .await
        .expect("Bob's WORK cell")
        .send_keys("12")
        .await
        .expect("type");
    click(&client, Locator::Css("form#cells > button[type=submit]")).await;
    b.wait_text("main", "Elmentve.").await;
    let bob_total = wait_xpath(&client, &format!("{bob_row}//output"), "Munka 12").await;
    assert!(bob_total.starts_with("12"), "{bob_total}");
    assert!(wait_xpath(&client, &total, "Munka 2")
        .await
        .starts_with('5'));
    b.check_page("scoreboard-leader").await;
    // A comment on Áron's WORK cell.
    click(
        &client,
        Locator::XPath(&format!(
            "{aron_row}/td[1]//a[contains(@class,'cell-comments')]"
        )),
    )
    .await;
    b.wait_text("main", "Megjegyzések a cellához").await;
    type_into(&client, "#comment-body", "Két estét dolgozott a felvételin").await;
    click(&client, Locator::Css("form.comment button[type=submit]")).await;
    b.wait_text("main", "Két estét dolgozott a felvételin")
        .await;
    b.check_page("scoreboard-cell").await;
    click(&client, Locator::LinkText("Vissza a pontozáshoz")).await;
    b.wait_text("main", "Beküldés elbírálásra").await;
    // Submit.
    // Submitting is asked twice.
    click(&client, Locator::Css("#submit-confirm summary")).await;
    click(&client, Locator::Css("#submit-scoreboard")).await;
    b.wait_text("main", "Beküldve elbírálásra").await;
    b.wait_text("#sb-status", "elbírálásra vár").await;
    assert!(client
        .find(Locator::Css("input[type=number]"))
        .await
        .is_err());

    // Judging: Alice, in her own browser, accepts it from her list.
    api(
        &fed,
        &god,
        Method::PUT,
        &format!("{r}/evaluation-season"),
        json!({"season": "JUDGING"}),
    )
    .await;
    let judge_driver = start_browser().await.expect("a second chromium");
    let judge_client = judge_driver.client.clone().expect("client");
    let j = Browser {
        c: &judge_client,
        hub: fed.hub.url.clone(),
        axe: axe_source().expect("axe-core"),
    };
    j.sign_in_as("Kovács Alice").await;
    j.open("/evaluation").await;
    let list = j.wait_text("main", "Elbírálandó pontozások").await;
    assert!(list.contains("Kir-Dev Web"), "{list}");
    j.check_page("evaluation-judge").await;
    click(
        &judge_client,
        Locator::Css("li.judge form[action$='/accept'] button"),
    )
    .await;
    let done = j.wait_text("main", "Elfogadva.").await;
    assert!(done.contains("Nincs elbírálásra váró pontozás"), "{done}");
    let sb = api(
        &fed,
        &god,
        Method::GET,
        &format!("{r}/scoreboards?groupId={group}"),
        Value::Null,
    )
    .await;
    assert_eq!(sb["items"][0]["status"], "ACCEPTED", "{sb}");

    // The season closes (the point history is computed); Áron sees his points.
    api(
        &fed,
        &god,
        Method::PUT,
        &format!("{r}/evaluation-season"),
        json!({"season": "OFF"}),
    )
    .await;
    b.sign_out().await;
    b.sign_in_as("Szabó Áron").await;
    b.open("/evaluation").await;
    let mine = b.wait_text("main", "Közösségi pontjaim").await;
    assert!(mine.contains("2025/26/1: 5,00"), "{mine}");
    assert!(mine.contains("Kir-Dev Web"), "{mine}");
    b.check_page("evaluation-member").await;
    // Bob leads Áron's group (viewScores on it): Áron's page shows him the points from
    // that group. Cecília shares only kszk with Áron and has no rights there: his page
    // has no points section for her at all.
    b.sign_out().await;
    b.sign_in_as("Nagy Bob").await;
    b.open(&format!("/people/{}", people.aron)).await;
    let page = b.wait_text("main", "Közösségi pontok").await;
    assert!(page.contains("2025/26/1: 5,00"), "{page}");
    b.check_page("person-points").await;
    b.sign_out().await;
    b.sign_in_as("Tóth Cecília").await;
    b.open(&format!("/people/{}", people.aron)).await;
    let page = b.wait_text("main", "Szabó Áron").await;
    assert!(!page.contains("Közösségi pontok"), "{page}");

    judge_client.close().await.expect("closing");
    client.close().await.expect("closing");
    drop(judge_driver);
    drop(driver);
}

/// A big group's scoreboard saved without JavaScript (every cell and the value it
/// showed) fits the hub's request limit (`PEK_MAX_BODY_BYTES`, 64 KiB by default): cells
/// are named by row and column, not by two UUIDs each (which made a 100 × 10 form
/// ~170 KiB, refused with 413).
#[tokio::test]
async fn a_big_groups_scoreboard_form_fits_the_request_limit() {
    let fed = Federation::start(Options {
        realms: vec![],
        hub_env: vec![("PEK_DEV_LOGIN".into(), "true".into())],
        ..Options::default()
    })
    .await
    .expect("federation");
    pek::demo::seed_people(&fed.hub_db).await.expect("people");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let hub = &fed.hub.url;
    let token_in = |page: &str| {
        page.split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .expect("csrf token in the page")
            .to_string()
    };
    let r = http
        .get(format!("{hub}/sign-in"))
        .send()
        .await
        .expect("get");
    let csrf_cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("pek_csrf="))
        .and_then(|c| c.split(';').next())
        .expect("csrf cookie")
        .to_string();
    let token = token_in(&r.text().await.expect("body"));
    let signed_in = http
        .post(format!("{hub}/sign-in/dev"))
        .header("cookie", &csrf_cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={token}&authSchId=demo-bob"))
        .send()
        .await
        .expect("sign in");
    let session = signed_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("pek_session="))
        .and_then(|c| c.split(';').next())
        .expect("session cookie")
        .to_string();
    let cookies = format!("{csrf_cookie}; {session}");
    let page = http
        .get(format!("{hub}/evaluation"))
        .header("cookie", &cookies)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("body");
    let token = token_in(&page);
    // The form the scoreboard page has for 100 members × 10 guidelines, every cell
    // filled in (as a browser encodes it).
    let mut body = format!("csrf={token}");
    for _ in 0..100 {
        body.push_str(&format!("&m={}", uuid::Uuid::new_v4()));
    }
    for _ in 0..10 {
        body.push_str(&format!("&g={}", uuid::Uuid::new_v4()));
    }
    for i in 0..100 {
        for j in 0..10 {
            body.push_str(&format!("&p%3A{i}%3A{j}=12&o%3A{i}%3A{j}=10"));
        }
    }
    assert!(body.len() < 48 * 1024, "{}", body.len());
    let r = http
        .post(format!(
            "{hub}/realms/hub/scoreboards/{}/cells",
            uuid::Uuid::new_v4()
        ))
        .header("cookie", &cookies)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("post");
    // Past the CSRF check, the API answers: no such scoreboard.
    assert_eq!(r.status(), 404);
}
