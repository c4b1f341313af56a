//! A PéK year in the browser, with pages only, against a real hub and two workers (one
//! federation and one Chromium for the whole binary): a freshman finds a group in the
//! directory, applies, and is accepted by its leader; people and groups are found as
//! Hungarians write them; the session slides while the person is active and, when it
//! does end, an htmx action says so and the sign-in brings the person back to the page.
//! axe-core runs on every new page at 390 px and 1280 px, in Hungarian and English.
//!
//! Needs Chromium, chromedriver and axe-core like `web.rs` (skips loudly without them;
//! `PEK_REQUIRE_BROWSER=1` makes that a failure).

use std::time::{Duration, Instant};

use fantoccini::Locator;
use pek_tests::browser::{axe_source, browser_ready, start_browser, Browser};
use pek_tests::federation::{Federation, Options};

/// The hub's token lifetime in the journeys: long, so no step can outlast it however
/// loaded the machine is (a token is renewed only after half its life, so a step of
/// more than half of it — a page and an axe check at load average 20 — ended a session).
const JOURNEY_SECS: u64 = 900;
/// The token lifetime of the session part (the hub restarted with it): how long a browser
/// may stay idle there. Short, so the test can outwait it; its steps are single page loads.
const IDLE_SECS: u64 = 30;

#[tokio::test]
async fn a_pek_year_in_the_browser() {
    if !browser_ready() {
        return;
    }
    let mut fed = Federation::start(Options {
        hub_env: vec![
            ("PEK_DEV_LOGIN".into(), "true".into()),
            ("PEK_JWT_TTL_SECONDS".into(), JOURNEY_SECS.to_string()),
        ],
        ..Options::default()
    })
    .await
    .expect("federation");
    let (people, _) = pek_tests::web_support::seed(&fed).await;
    // Another Szabó Áron, without a nickname, in Áron's group: lists tell them apart.
    let other_aron = fed
        .person("web-aron-2", "Áron", "Szabó")
        .await
        .expect("the other Áron");
    pek_tests::web_support::join_group(&fed, &people, "kir-dev", "Kir-Dev Web", other_aron).await;
    let frida = fed
        .person("web-frida", "Frida", "Friss")
        .await
        .expect("Frida");
    let driver = start_browser().await.expect("chromium via chromedriver");
    let client = driver.client.clone().expect("client");
    let b = Browser {
        c: &client,
        hub: fed.hub.url.clone(),
        axe: axe_source().expect("axe-core"),
    };

    // --- A first visit: small, compressed, and cached for good --------------------------
    // Nothing is cached in the fresh browser: the page and its assets as they came over
    // the wire (compressed), the assets under content-hashed names kept for a year.
    b.open("/sign-in").await;
    let first = client
        .execute_async(
            "const done = arguments[0];
             const nav = performance.getEntriesByType('navigation')[0];
             const res = performance.getEntriesByType('resource')
               .filter(r => r.name.includes('/assets/'));
             const css = res.find(r => r.name.endsWith('.css'));
             fetch(css.name).then(r => done({
               total: nav.transferSize + res.reduce((n, r) => n + r.transferSize, 0),
               pageCompressed: nav.encodedBodySize < nav.decodedBodySize,
               cssCompressed: css.encodedBodySize < css.decodedBodySize,
               assets: res.length,
               cache: r.headers.get('cache-control')}));",
            vec![],
        )
        .await
        .expect("the first visit's sizes");
    eprintln!("first visit (sign-in page and its assets): {first}");
    assert!(
        first["total"].as_u64().unwrap_or(u64::MAX) <= 100 * 1024,
        "{first}"
    );
    // The stylesheet and the two scripts; the favicon too when Chromium has fetched it by
    // then (it does not wait for it to call the page loaded).
    assert!(
        (3..=4).contains(&first["assets"].as_u64().unwrap_or(0)),
        "{first}"
    );
    assert_eq!(first["pageCompressed"], true, "{first}");
    assert_eq!(first["cssCompressed"], true, "{first}");
    assert_eq!(
        first["cache"], "public, max-age=31536000, immutable",
        "{first}"
    );

    // --- A freshman finds a group, applies, is accepted ------------------------------
    // Frida is in no realm yet; the directory shows every realm's groups.
    b.sign_in_as("Friss Frida").await;
    client
        .find(Locator::LinkText("Körök"))
        .await
        .expect("the directory in the menu")
        .click()
        .await
        .expect("click");
    b.wait_path("/groups").await;
    let all = b.wait_text("#directory", "Kir-Dev Web").await;
    for want in ["KSZK Üzemeltetés", "Schönherz Kollégium", "Nagy Bob"] {
        assert!(all.contains(want), "the directory lacks {want:?}: {all}");
    }
    b.check_page("directory").await;
    // One language per page: no English word on a Hungarian one.
    assert!(!all.to_lowercase().contains("realm"), "{all}");
    // Search as you type: any word of the name.
    let input = client.find(Locator::Css("#dq")).await.expect("search box");
    input.send_keys("web").await.expect("typing");
    wait_gone(&b, "#directory", "KSZK Üzemeltetés").await;
    let found = b.wait_text("#directory", "Kir-Dev Web").await;
    assert!(
        found.contains("Nagy Bob") && found.contains("kir-dev"),
        "{found}"
    );
    let card = b.item("#directory-list", "Kir-Dev Web").await;
    b.press(Some(&card), "Jelentkezem a körbe").await;
    b.wait_text("main", "Jelentkezésedet elküldtük.").await;
    let kir_dev_web = b.path().await;
    assert!(
        kir_dev_web.starts_with("/realms/kir-dev/groups/"),
        "{kir_dev_web}"
    );
    b.wait_text("main", "Jelentkeztél ebbe a körbe").await;
    // The application waits on her home page, where she could withdraw it.
    b.open("/").await;
    let waiting = b.wait_text("#waiting", "Kir-Dev Web").await;
    assert!(waiting.contains("Jelentkezés visszavonása"), "{waiting}");
    // She withdraws it from there (and lands on the group's page), then applies again.
    let pending = b.item("#waiting ul", "Kir-Dev Web").await;
    b.press(Some(&pending), "Jelentkezés visszavonása").await;
    b.wait_text("main", "Visszavontad a jelentkezésedet").await;
    assert_eq!(b.path().await, kir_dev_web);
    b.press(None, "Jelentkezem a körbe").await;
    b.wait_text("main", "Jelentkezésedet elküldtük.").await;
    b.open("/").await;
    b.wait_text("#waiting", "Kir-Dev Web").await;
    // The directory now shows her application instead of the button.
    b.open("/groups?q=kir%20web").await;
    let card = b.item("#directory-list", "Kir-Dev Web").await;
    let text = card.text().await.expect("text");
    assert!(text.contains("Jelentkezett"), "{text}");
    b.sign_out().await;

    // Bob, who leads Kir-Dev Web, accepts her on the group page.
    b.sign_in_as("Nagy Bob").await;
    b.open(&kir_dev_web).await;
    let application = b.item("#application-list", "Friss Frida").await;
    b.press(Some(&application), "Felvétel").await;
    b.wait_text("main", "Elfogadva").await;
    // Posts by the group's own names; the leader's post is "Körvezető" on screen, and
    // its only holder cannot leave before handing it over.
    let members = b.wait_text("#member-list", "Körvezető").await;
    assert!(!members.contains("leader"), "{members}");
    b.wait_text("#only-leader", "egyetlen körvezetője").await;
    // Her name shows once the hub's federation table has her new membership (it follows
    // the worker's reports, a moment behind).
    let deadline = Instant::now() + Duration::from_secs(20);
    while !b.text().await.contains("Friss Frida") {
        assert!(Instant::now() < deadline, "Frida's name never showed");
        tokio::time::sleep(Duration::from_millis(500)).await;
        b.open(&kir_dev_web).await;
    }
    let page = b.text().await.to_lowercase();
    assert!(
        !page.contains("realm") && !page.contains("leader"),
        "{page}"
    );
    // Forged anyway (with a valid CSRF token): the API refuses it, and the page says why
    // by the refusal's reason, in Hungarian.
    let bob_item = b.item("#member-list", "Nagy Bob").await;
    let bob_membership = bob_item
        .attr("data-membership")
        .await
        .expect("attribute")
        .expect("Bob's membership");
    let group_id = kir_dev_web
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    b.forge_post(
        &format!("/realms/kir-dev/memberships/{bob_membership}/leave"),
        serde_json::json!({ "group": group_id }),
    )
    .await;
    let refused = b.wait_text("#action-error", "egyetlen körvezetője").await;
    assert!(!refused.contains("only leader"), "{refused}");
    b.open(&kir_dev_web).await;
    // People of the same name are told apart: Áron by his nickname.
    let members = b.wait_text("#member-list", "Szabó Áron (ari)").await;
    assert_eq!(members.matches("Szabó Áron").count(), 2, "{members}");
    // The group names its posts first; a name it has is refused, said in Hungarian.
    for done in ["Poszt hozzáadva", "már van ilyen nevű posztja"] {
        client
            .find(Locator::Css("#new-post"))
            .await
            .expect("the new post's field")
            .send_keys("fejlesztő")
            .await
            .expect("typing");
        b.press(None, "Poszt hozzáadása").await;
        b.wait_text("main", done).await;
    }
    let refused = b
        .wait_text("#action-error", "már van ilyen nevű posztja")
        .await;
    assert!(!refused.contains("already"), "{refused}");
    b.wait_text("#post-list", "fejlesztő").await;
    let frida_item = b.item("#member-list", "Friss Frida").await;
    frida_item
        .find(Locator::Css("input[name=post][value='fejlesztő']"))
        .await
        .expect("the post's checkbox")
        .click()
        .await
        .expect("ticking");
    // Feedback after an htmx action: while the request is in flight its form shows it
    // (htmx-request, the button disabled with its spinner); afterwards the button keeps
    // the focus and its place on the screen (the notice that appears above does not push
    // it away), and the result is said in the page's live region as well as shown.
    let button = frida_item
        .find(Locator::Css("form.posts button"))
        .await
        .expect("the posts button");
    let button_id = button.attr("id").await.expect("id").expect("an id");
    let top_before = client
        .execute(
            "const b = document.getElementById(arguments[0]);
             b.scrollIntoView({block: 'center'});
             window.pekBusy = null;
             document.addEventListener('htmx:beforeSend', e => {
               const f = e.detail.elt, i = f.querySelector('.htmx-indicator');
               window.pekBusy = f.classList.contains('htmx-request')
                 && f.querySelector('button').disabled
                 && getComputedStyle(i).display !== 'none';
             }, {once: true});
             return b.getBoundingClientRect().top;",
            vec![serde_json::json!(button_id)],
        )
        .await
        .expect("the button's place");
    b.press(Some(&frida_item), "Posztok mentése").await;
    b.wait_text("main", "Tagság módosítva").await;
    b.wait_text("#announce", "Tagság módosítva").await;
    let deadline = Instant::now() + pek_tests::browser::WAIT;
    let after = loop {
        let got = client
            .execute(
                "const b = document.getElementById(arguments[0]);
                 return {focused: document.activeElement === b,
                         top: b.getBoundingClientRect().top, busy: window.pekBusy};",
                vec![serde_json::json!(button_id)],
            )
            .await
            .expect("the button after the swap");
        if got["focused"] == true || Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(after["focused"], true, "focus left the button: {after}");
    assert_eq!(
        after["busy"], true,
        "no sign of the request in flight: {after}"
    );
    let moved = after["top"].as_f64().unwrap_or(0.0) - top_before.as_f64().unwrap_or(0.0);
    assert!(moved.abs() <= 2.0, "the button moved by {moved} px");
    let frida_item = b.item("#member-list", "Friss Frida").await;
    let facts = frida_item
        .find(Locator::Css("dl.facts"))
        .await
        .expect("her facts")
        .text()
        .await
        .expect("text");
    assert!(
        facts.contains("fejlesztő") && !facts.contains("Körvezető"),
        "{facts}"
    );
    b.check_page("group-posts").await;
    let frida_membership = frida_item
        .attr("data-membership")
        .await
        .expect("attribute")
        .expect("her membership");
    // A rename follows her; a post she holds is not deleted, and the page says why.
    let post = b.item("#post-list", "fejlesztő").await;
    let field = post
        .find(Locator::Css("input[name=name]"))
        .await
        .expect("the name field");
    field.clear().await.expect("clearing");
    field.send_keys("webfejlesztő").await.expect("typing");
    b.press(Some(&post), "Átnevezés").await;
    b.wait_text("main", "Poszt átnevezve").await;
    b.wait_text(
        &format!("li[data-membership='{frida_membership}'] dl.facts"),
        "webfejlesztő",
    )
    .await;
    let post = b.item("#post-list", "webfejlesztő").await;
    b.press(Some(&post), "Törlés").await;
    b.wait_text("#action-error", "tagok viselik").await;
    b.sign_out().await;

    b.sign_in_as("Friss Frida").await;
    let home = b.wait_text("main", "Kir-Dev Web").await;
    assert!(home.contains("Újonc"), "{home}");
    assert!(!home.contains("Döntésedre vár"), "{home}");

    // --- Search as Hungarians write names ----------------------------------------------
    fed.wait_hub_knows(frida, "kir-dev", Duration::from_secs(20))
        .await
        .expect("federation table");
    // Frida now shares kir-dev with Áron: his name in any order, with or without accents.
    for q in ["Szabó Áron", "aron szabo", "áron"] {
        b.open(&format!("/search?q={}", urlencode(q))).await;
        b.wait_text("#results", "Szabó Áron").await;
    }
    // Both Árons, told apart (the one without a nickname by the start of his id).
    let found = b.wait_text("#people-list", "Szabó Áron (ari)").await;
    assert_eq!(found.matches("Szabó Áron").count(), 2, "{found}");
    // Groups by any word of the name, in every realm.
    b.open("/search?q=%C3%BCzem").await;
    b.wait_text("#results", "KSZK Üzemeltetés").await;
    b.check_page("search-groups").await;

    // --- English --------------------------------------------------------------------------
    b.open("/groups").await;
    client
        .find(Locator::LinkText("English"))
        .await
        .expect("language switch")
        .click()
        .await
        .expect("click");
    b.wait_text("h1", "Groups").await;
    let text = b.text().await;
    assert!(
        text.contains("Apply to join") || text.contains("Your membership"),
        "{text}"
    );
    b.check_page("directory-en").await;
    client
        .find(Locator::LinkText("Magyar"))
        .await
        .expect("language switch")
        .click()
        .await
        .expect("click");
    b.wait_text("h1", "Körök").await;

    // --- Errors are pages in the page's language, never JSON -----------------------------
    b.open("/nincs-ilyen").await;
    let text = b.wait_text("main", "Nincs ilyen oldal").await;
    assert!(!text.contains('{'), "{text}");
    b.check_page("error-404").await;
    // A form's address opened as a link (GET on a POST-only address): 405.
    b.open("/sign-out").await;
    b.wait_text("main", "Ezt a címet így nem lehet megnyitni")
        .await;
    // An API address opened in the browser, like an export link: no raw JSON either.
    b.open("/api/v1/realms/kir-dev/nincs-ilyen").await;
    b.wait_text("main", "Nincs ilyen oldal").await;
    let got = client
        .execute_async(
            "const done = arguments[0];
             Promise.all([
               fetch('/favicon.ico').then(r => r.status + ' ' + r.headers.get('content-type')),
               fetch('/sign-in/dev', {method: 'POST',
                   headers: {'Accept': 'text/html',
                             'Content-Type': 'application/x-www-form-urlencoded'},
                   body: 'x=' + 'a'.repeat(200000)})
                 .then(r => r.status + ' ' + r.headers.get('content-type')),
             ]).then(done);",
            vec![],
        )
        .await
        .expect("fetching");
    assert_eq!(
        got,
        serde_json::json!(["200 image/svg+xml", "413 text/html; charset=utf-8"])
    );
    b.open("/").await;
    b.sign_out().await;

    // --- An administrator runs the semester ---------------------------------------------
    // Alice (kir-dev's GOD) finds the realm's page from a group page.
    b.sign_in_as("Kovács Alice").await;
    b.open(&kir_dev_web).await;
    client
        .find(Locator::LinkText("Félévek, értékelési időszak"))
        .await
        .expect("the realm's page")
        .click()
        .await
        .expect("click");
    b.wait_path("/realms/kir-dev/admin").await;
    b.wait_text("#season-now", "Nyugalmi időszak").await;
    b.check_page("realm-admin").await;
    client
        .find(Locator::Css("#sem-name"))
        .await
        .expect("semester name")
        .send_keys("2026/27/1")
        .await
        .expect("typing");
    client
        .execute(
            "document.querySelector('#sem-start').value = '2026-09-01';
             document.querySelector('#sem-end').value = '2027-01-31';
             document.querySelector('#sem-current').checked = true;",
            vec![],
        )
        .await
        .expect("dates");
    b.press(None, "Félév létrehozása").await;
    b.wait_text("main", "A félév elkészült.").await;
    let semesters = b.wait_text("#semester-list", "2026/27/1").await;
    assert!(semesters.contains("aktuális"), "{semesters}");
    // The scoring season, in PéK's words.
    click_css(&b, "#season-SUBMISSION").await;
    b.press(None, "Időszak váltása").await;
    b.wait_text("#season-now", "Pontozási időszak").await;
    // The exports are downloads (the API's own CSV, as an attachment).
    let link = client
        .find(Locator::Css("#exports a"))
        .await
        .expect("export link");
    let href = link.attr("href").await.expect("href").expect("href");
    let got = client
        .execute_async(
            "const [href, done] = arguments;
             fetch(href).then(r => done(r.status + ' ' + r.headers.get('content-disposition')));",
            vec![serde_json::json!(href)],
        )
        .await
        .expect("download");
    let got = got.as_str().unwrap_or("").to_string();
    assert!(got.starts_with("200 attachment"), "{got}");
    // A sub-group, from the group's page.
    b.open(&kir_dev_web).await;
    client
        .find(Locator::Css("#sg-name"))
        .await
        .expect("sub-group name")
        .send_keys("Kir-Dev Mobil")
        .await
        .expect("typing");
    b.press(None, "Alkör létrehozása").await;
    b.wait_text("main", "Az alkör elkészült.").await;
    b.wait_text("main", "Kir-Dev Mobil").await;
    // Archiving a group is asked twice, and can be undone.
    client
        .find(Locator::LinkText("Kir-Dev Mobil"))
        .await
        .expect("the sub-group")
        .click()
        .await
        .expect("click");
    b.wait_text("h1", "Kir-Dev Mobil").await;
    click_css(&b, "#archive details.confirm summary").await;
    b.wait_text("#archive", "Később visszaállítható").await;
    b.press(None, "Igen, archiválom").await;
    b.wait_text("main", "A kört archiváltuk.").await;
    b.wait_text("h1", "archivált").await;
    b.press(None, "Archiválás visszavonása").await;
    b.wait_text("main", "A kör újra működik.").await;
    b.sign_out().await;

    // Bob starts Kir-Dev Web's scoreboard, asks for an entry award for Áron with its
    // justification, and submits.
    b.sign_in_as("Nagy Bob").await;
    // First the semester's guidelines (irányelvek): the scoreboard's columns.
    b.open(&format!("{kir_dev_web}/guidelines")).await;
    b.wait_text("#season-now", "Pontozási időszak").await;
    b.press(None, "Irányelvek indítása").await;
    b.wait_text("main", "Az irányelvek elindultak.").await;
    client
        .find(Locator::Css("form.guideline input[name=title]"))
        .await
        .expect("title")
        .send_keys("Fejlesztés")
        .await
        .expect("typing");
    for (name, value) in [("maxPerMember", "30"), ("maxPerGuideline", "100")] {
        client
            .find(Locator::Css(&format!("form.guideline input[name={name}]")))
            .await
            .expect(name)
            .send_keys(value)
            .await
            .expect("typing");
    }
    b.press(None, "Irányelv hozzáadása").await;
    b.wait_text("main", "Az irányelv elkészült.").await;
    let guidelines = b.wait_text("#guideline-list", "Fejlesztés").await;
    assert!(
        guidelines.contains("30") && guidelines.contains("100"),
        "{guidelines}"
    );
    b.check_page("guidelines").await;
    // Edited in place: the form opens with the guideline's values.
    click_css(&b, "#guideline-list details.edit summary").await;
    let max = client
        .find(Locator::Css(
            "#guideline-list form.guideline-edit input[name=maxPerGuideline]",
        ))
        .await
        .expect("maximum");
    assert_eq!(
        max.prop("value").await.expect("value").as_deref(),
        Some("100")
    );
    max.clear().await.expect("clear");
    max.send_keys("120").await.expect("typing");
    b.press(None, "Irányelv mentése").await;
    b.wait_text("main", "Az irányelvet módosítottuk.").await;
    b.wait_text("#guideline-list", "120").await;
    // The same page in English.
    client
        .find(Locator::LinkText("English"))
        .await
        .expect("language switch")
        .click()
        .await
        .expect("click");
    b.wait_text("h1", "Guidelines").await;
    b.wait_text("#season-now", "Scoring season").await;
    b.check_page("guidelines-en").await;
    b.open("/nincs-ilyen").await;
    b.wait_text("main", "No such page").await;
    b.open(&format!("{kir_dev_web}/guidelines")).await;
    client
        .find(Locator::LinkText("Magyar"))
        .await
        .expect("language switch")
        .click()
        .await
        .expect("click");
    b.wait_text("h1", "Irányelvek").await;
    b.open(&format!("{kir_dev_web}/scoreboard")).await;
    click_css(&b, "main form button[type=submit]").await;
    let board = b.wait_text("main", "Beküldés elbírálásra").await;
    assert!(board.contains("Fejlesztés"), "{board}");
    let scoreboard = b.path().await;
    assert!(
        scoreboard.starts_with("/realms/kir-dev/scoreboards/"),
        "{scoreboard}"
    );
    b.check_page("scoreboard-entry-awards").await;
    // On a phone the table scrolls inside its region and the names stay in view.
    client.set_window_size(390, 844).await.expect("window size");
    let sticky = client
        .execute(
            "const wrap = document.querySelector('.table-wrap');
             const name = wrap.querySelector('tbody th[scope=row]');
             wrap.style.maxWidth = '12rem';
             wrap.scrollLeft = wrap.scrollWidth;
             const shift = name.getBoundingClientRect().left - wrap.getBoundingClientRect().left;
             const r = {scrolled: wrap.scrollLeft > 0, shift,
                        position: getComputedStyle(name).position,
                        wrap: [wrap.clientWidth, wrap.scrollWidth, getComputedStyle(wrap).overflowX]};
             wrap.style.maxWidth = '';
             return r;",
            vec![],
        )
        .await
        .expect("the scoreboard's region");
    assert_eq!(sticky["scrolled"], true, "{sticky}");
    assert_eq!(sticky["position"], "sticky", "{sticky}");
    assert!(
        sticky["shift"].as_f64().unwrap_or(99.0).abs() <= 2.0,
        "{sticky}"
    );
    client
        .set_window_size(1280, 900)
        .await
        .expect("window size");
    let aron = b.item("#entry-list", "Szabó Áron (ari)").await;
    aron.find(Locator::Css("select"))
        .await
        .expect("kind")
        .select_by_value("KB")
        .await
        .expect("select");
    aron.find(Locator::Css("textarea"))
        .await
        .expect("justification")
        .send_keys("Egész félévben vitte a honlapot.")
        .await
        .expect("typing");
    b.press(Some(&aron), "Belépő mentése").await;
    let entry = b.wait_text("#entry-list", "vitte a honlapot").await;
    assert!(
        entry.contains("KB") && entry.contains("elbírálásra vár"),
        "{entry}"
    );
    // Submitting is asked twice.
    click_css(&b, "#submit-confirm summary").await;
    b.wait_text("#submit-confirm", "Beküldöd a pontozást?")
        .await;
    click_css(&b, "#submit-scoreboard").await;
    b.wait_text("#sb-status", "elbírálásra vár").await;
    b.sign_out().await;

    // Alice opens the judging season and accepts the entry award on its own. Her
    // judge's queue is there only in the judging season.
    b.sign_in_as("Kovács Alice").await;
    b.open("/evaluation").await;
    let page = b.wait_text("main", "Közösségi pontjaim").await;
    assert!(!page.contains("Elbírálandó pontozások"), "{page}");
    b.open("/realms/kir-dev/admin").await;
    click_css(&b, "#season-JUDGING").await;
    b.press(None, "Időszak váltása").await;
    b.wait_text("#season-now", "Bírálási időszak").await;
    b.open("/evaluation").await;
    let queue = b.wait_text("main", "Elbírálandó pontozások").await;
    assert!(queue.contains("Kir-Dev Web"), "{queue}");
    b.open(&scoreboard).await;
    let aron = b.item("#entry-list", "Szabó Áron (ari)").await;
    b.press(Some(&aron), "Belépő elfogadása").await;
    b.wait_text("#entry-list", "elfogadva").await;
    // Closing the season with the scoreboard itself unjudged would leave work
    // unfinished: the page asks first.
    b.open("/realms/kir-dev/admin").await;
    click_css(&b, "#season-OFF").await;
    b.press(None, "Időszak váltása").await;
    let refused = b
        .wait_text("#action-error", "Ez a váltás munkát hagyna félbe")
        .await;
    assert!(refused.contains("Kir-Dev Web"), "{refused}");
    b.wait_text("#season-now", "Bírálási időszak").await;
    b.check_page("realm-admin-confirm").await;
    b.press(None, "Mégis váltok").await;
    b.wait_text("main", "A félév pontjait kiszámoltuk.").await;
    b.wait_text("#season-now", "Nyugalmi időszak").await;
    // In English too.
    client
        .find(Locator::LinkText("English"))
        .await
        .expect("language switch")
        .click()
        .await
        .expect("click");
    b.wait_text("#season-now", "Quiet season").await;
    b.check_page("realm-admin-en").await;
    client
        .find(Locator::LinkText("Magyar"))
        .await
        .expect("language switch")
        .click()
        .await
        .expect("click");
    b.wait_text("#season-now", "Nyugalmi időszak").await;
    // The next semester, scored at once.
    client
        .find(Locator::Css("#sem-name"))
        .await
        .expect("semester name")
        .send_keys("2026/27/2")
        .await
        .expect("typing");
    client
        .execute(
            "document.querySelector('#sem-start').value = '2027-02-01';
             document.querySelector('#sem-end').value = '2027-06-30';
             document.querySelector('#sem-current').checked = true;",
            vec![],
        )
        .await
        .expect("dates");
    b.press(None, "Félév létrehozása").await;
    b.wait_text("main", "A félév elkészült.").await;
    click_css(&b, "#season-SUBMISSION").await;
    b.press(None, "Időszak váltása").await;
    let now = b.wait_text("#season-now", "Pontozási időszak").await;
    assert!(now.contains("2026/27/2"), "{now}");
    b.sign_out().await;

    // Bob copies last semester's guidelines, and removes one after saying yes twice.
    b.sign_in_as("Nagy Bob").await;
    b.open(&format!("{kir_dev_web}/guidelines")).await;
    b.wait_text("main", "még nincsenek irányelvei").await;
    b.press(None, "Másolás az előző félévből").await;
    b.wait_text("main", "Az előző félév irányelveit átmásoltuk.")
        .await;
    let copied = b.wait_text("#guideline-list", "Fejlesztés").await;
    assert!(copied.contains("120"), "{copied}");
    click_css(&b, "#guideline-list details.confirm summary").await;
    b.wait_text("#guideline-list", "A törlés végleges").await;
    b.check_page("guidelines-remove-confirm").await;
    b.press(None, "Igen, törlöm").await;
    b.wait_text("main", "Az irányelvet töröltük.").await;
    b.wait_text("main", "Még nincs irányelv.").await;
    b.sign_out().await;

    // The hub again with short-lived tokens (same keys and database: nothing else changes).
    fed.hub.kill();
    fed.hub
        .set_env("PEK_JWT_TTL_SECONDS", &IDLE_SECS.to_string());
    fed.hub.start().await.expect("hub restart");
    b.sign_in_as("Friss Frida").await;

    // --- The session slides while she is active ----------------------------------------
    // Requests for longer than a token lives, each well within it: still signed in.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(IDLE_SECS + 4) {
        b.open(&kir_dev_web).await;
        assert_eq!(b.path().await, kir_dev_web, "signed out while active");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    b.wait_text("#my-status", "Újonc").await;

    // --- It ends when she is idle: the htmx action says so, and comes back -------------
    tokio::time::sleep(Duration::from_secs(IDLE_SECS + 2)).await;
    // Leaving is asked twice.
    click_css(&b, "#mine-title ~ details.confirm summary").await;
    b.press(None, "Igen, kilépek").await;
    let notice = b.wait_text("#session-notice", "A munkamenet lejárt").await;
    assert!(notice.contains("nem mentettük"), "{notice}");
    // Nothing else on the page changed (she is still shown as a member).
    assert_eq!(b.path().await, kir_dev_web);
    b.wait_text("#my-status", "Újonc").await;
    b.check_page("session-ended").await;
    client
        .find(Locator::LinkText("Bejelentkezés újra"))
        .await
        .expect("sign-in link")
        .click()
        .await
        .expect("click");
    b.wait_path("/sign-in").await;
    b.wait_text("main", "A munkamenet lejárt").await;
    let buttons = client
        .find_all(Locator::Css("ul.people button"))
        .await
        .expect("sign-in buttons");
    let mut signed_in = false;
    for button in buttons {
        if button
            .text()
            .await
            .unwrap_or_default()
            .contains("Friss Frida")
        {
            button.click().await.expect("click");
            signed_in = true;
            break;
        }
    }
    assert!(signed_in, "no sign-in button for Frida");
    // Back on the page she was on, signed in, her membership unchanged.
    b.wait_path(&kir_dev_web).await;
    b.wait_text("#my-status", "Újonc").await;
}

async fn click_css(b: &Browser<'_>, css: &str) {
    b.c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .expect("click");
}

/// Waits until the element `css` no longer contains `gone`.
async fn wait_gone(b: &Browser<'_>, css: &str, gone: &str) {
    let deadline = Instant::now() + pek_tests::browser::WAIT;
    loop {
        let text = match b.c.find(Locator::Css(css)).await {
            Ok(el) => el.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if !text.contains(gone) {
            return;
        }
        assert!(Instant::now() < deadline, "{css} still shows {gone:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
