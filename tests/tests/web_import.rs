//! What `pek import pek-next` brought in, in a real browser against a real hub process:
//! a synthetic pek-next database (our test DDL, gen.sql scaled down) is imported into
//! realm `sch`; a group's imported leader signs in and sees a member's page, the group's
//! page (its members with pek-next's states) and an accepted scoreboard of an imported
//! semester with its guidelines and points. Every page is checked with axe-core and for
//! sideways scrolling, with screenshots.

use sqlx::Connection;

use pek_tests::browser::{axe_source, browser_ready, start_browser, Browser};
use pek_tests::federation::{Federation, Options};

const SCHEMA: &str = include_str!("../fixtures/pek-next/schema.sql");
const GEN: &str = include_str!("../fixtures/pek-next/gen.sql");

fn scaled_gen(users: u32, groups: u32, eval_groups: u32) -> String {
    let body: String = GEN
        .lines()
        .filter(|l| !l.starts_with("\\set "))
        .map(|l| format!("{l}\n"))
        .collect();
    body.replace(":n_users", &users.to_string())
        .replace(":n_groups", &groups.to_string())
        .replace(":n_eval_groups", &eval_groups.to_string())
}

#[tokio::test]
async fn imported_people_groups_and_scoreboards_show_in_the_browser() {
    if !browser_ready() {
        return;
    }
    let fed = Federation::start(Options {
        realms: vec![],
        hub_env: vec![("PEK_DEV_LOGIN".into(), "true".into())],
        ..Options::default()
    })
    .await
    .expect("hub");
    let pg = localpg::LocalPostgres::shared().expect("postgres");
    let src = pg.fresh_database().await.expect("source database");
    let mut c = sqlx::PgConnection::connect(&src.owner_url)
        .await
        .expect("connect");
    sqlx::raw_sql(SCHEMA).execute(&mut c).await.expect("schema");
    sqlx::raw_sql(&scaled_gen(600, 40, 6))
        .execute(&mut c)
        .await
        .expect("gen.sql");
    let summary = pek::pek_next::run(
        &pek::pek_next::Args {
            source: src.owner_url.clone(),
            realm: "sch".into(),
            realm_name: "Schönherz".into(),
            database_url: fed.hub_database.app_url.clone(),
            dry_run: false,
            report: None,
            force: false,
            allow_differences: false,
        },
        &pek::pek_next::Progress::plain(),
    )
    .await
    .expect("import");
    assert!(summary.committed && summary.differences.is_empty());

    // An evaluating group with an accepted scoreboard of 2019/20 autumn, its leader (an
    // AuthSCH user) and another of its active members.
    let mut hub = sqlx::PgConnection::connect(&fed.hub_database.superuser_url)
        .await
        .expect("hub db");
    let (group, group_name, scoreboard, leader_auth, member, member_name): (
        uuid::Uuid,
        String,
        uuid::Uuid,
        String,
        uuid::Uuid,
        String,
    ) = sqlx::query_as(
        "SELECT g.id, g.name, s.id, lu.auth_sch_id, mu.id, p.last_name || ' ' || p.first_name
           FROM scoreboards s
           JOIN semesters sem ON sem.realm_id = s.realm_id AND sem.id = s.semester_id
           JOIN groups g ON g.realm_id = s.realm_id AND g.id = s.group_id
           JOIN memberships l ON l.realm_id = g.realm_id AND l.group_id = g.id
                             AND 'leader' = ANY (l.posts) AND l.status = 'ACTIVE'
           JOIN users lu ON lu.id = l.user_id AND lu.auth_sch_id NOT LIKE 'legacy-pek:%'
           JOIN memberships m ON m.realm_id = g.realm_id AND m.group_id = g.id
                             AND m.status = 'ACTIVE' AND m.user_id <> l.user_id
           JOIN users mu ON mu.id = m.user_id
           JOIN profiles p ON p.user_id = mu.id
          WHERE s.realm_id = 'sch' AND sem.name = '2019/20/1' AND s.status = 'ACCEPTED'
            AND EXISTS (SELECT 1 FROM point_requests r WHERE r.realm_id = s.realm_id
                                                        AND r.scoreboard_id = s.id)
          ORDER BY g.name, mu.id LIMIT 1",
    )
    .fetch_one(&mut hub)
    .await
    .expect("an evaluating group with a leader and a member");

    let driver = start_browser().await.expect("chromium via chromedriver");
    let client = driver.client.clone().expect("client");
    let b = Browser {
        c: &client,
        hub: fed.hub.url.clone(),
        axe: axe_source().expect("axe-core"),
    };
    b.open("/sign-in").await;
    b.forge_post(
        "/sign-in/dev",
        serde_json::json!({ "authSchId": leader_auth }),
    )
    .await;
    b.wait_path("/").await;

    // A member's page, reached by the old pek-next link of the person.
    let (member_legacy,): (i64,) = sqlx::query_as("SELECT legacy_id FROM users WHERE id = $1")
        .bind(member)
        .fetch_one(&mut hub)
        .await
        .expect("legacy id");
    b.open(&format!("/profiles/{member_legacy}")).await;
    b.wait_path(&format!("/people/{member}")).await;
    b.wait_text("main", &member_name).await;
    b.check_page("import-person").await;

    // The group's page, by its old korok link.
    let (group_legacy,): (i64,) =
        sqlx::query_as("SELECT legacy_id FROM groups WHERE realm_id = 'sch' AND id = $1")
            .bind(group)
            .fetch_one(&mut hub)
            .await
            .expect("legacy id");
    b.open(&format!("/korok/showgroup/id/{group_legacy}")).await;
    b.wait_path(&format!("/realms/sch/groups/{group}")).await;
    let page = b.wait_text("main", &group_name).await;
    assert!(page.contains(&member_name), "{page}");
    b.check_page("import-group").await;

    // The accepted scoreboard of 2019/20 autumn: its guidelines and points.
    b.open(&format!("/realms/sch/scoreboards/{scoreboard}"))
        .await;
    let board = b.wait_text("main", "2019/20/1").await;
    assert!(board.contains("Elv 1"), "{board}");
    b.check_page("import-scoreboard").await;
}
