//! `pek import pek-next` end to end: pek-next's schema (our test DDL of the tables the
//! importer reads) filled by the synthetic generator (`tests/fixtures/pek-next/gen.sql`,
//! scaled down) plus hand-made edge rows, imported into a hub realm; the points check
//! finds no difference, a second import changes nothing, the report names the rows not
//! carried, and the imported people, groups and points answer through the API.

mod common;

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use sqlx::Connection;
use tower::ServiceExt;
use uuid::Uuid;

use pek::pek_next::{self, Args, Progress};

const SCHEMA: &str = include_str!("../../tests/fixtures/pek-next/schema.sql");
const GEN: &str = include_str!("../../tests/fixtures/pek-next/gen.sql");

/// gen.sql with its scale knobs (`\set` lines, a psql feature) replaced by values.
fn scaled_gen(users: u32, groups: u32, eval_groups: u32) -> String {
    let mut sql = String::new();
    for line in GEN.lines() {
        if line.starts_with("\\set ") {
            continue;
        }
        sql.push_str(line);
        sql.push('\n');
    }
    sql.replace(":n_users", &users.to_string())
        .replace(":n_groups", &groups.to_string())
        .replace(":n_eval_groups", &eval_groups.to_string())
}

/// Rows the generator does not make: the thread and cell comments, and one of each
/// constraint the real data has and the synthetic data lacks.
const EDGES: &str = r#"
-- a message to the judges of an evaluated group and semester, a system message, an empty
-- one, and one to a group and semester without an evaluation
INSERT INTO evaluation_messages (id, group_id, semester, sender_user_id, message, sent_at, from_system)
SELECT 900001, group_id, semester, NULL, 'Kérjük, pontosítsátok a pontokat.', timestamp '2020-12-01', false
  FROM evaluations WHERE semester = '202020211' ORDER BY id LIMIT 1;
INSERT INTO evaluation_messages (id, group_id, semester, sender_user_id, message, sent_at, from_system)
SELECT 900002, group_id, semester, NULL, 'Az értékelést elfogadták.', timestamp '2020-12-02', true
  FROM evaluations WHERE semester = '202020211' ORDER BY id LIMIT 1;
INSERT INTO evaluation_messages (id, group_id, semester, message, sent_at)
VALUES (900003, 1, '202020211', '   ', timestamp '2020-12-03'),
       (900004, 1, '199019911', 'Régi üzenet', timestamp '1990-12-03');
-- a comment on a point detail
INSERT INTO point_detail_comments (id, point_detail_id, user_id, comment, closing, created_at)
SELECT 900001, d.id, r.user_id, 'Ez a munka megérte.', false, timestamp '2021-01-10'
  FROM point_details d JOIN point_requests r ON r.id = d.point_request_id
 WHERE d.point > 0 ORDER BY d.id LIMIT 1;
-- an IM account of a protocol the project does not know
INSERT INTO im_accounts (id, protocol, name, user_id) VALUES (900001, 'icq', '12345', 1);
-- an evaluation with a semester string that is not one
INSERT INTO evaluations (id, group_id, semester, justification, point_request_status,
                         entry_request_status, idx_in_semester)
VALUES (900001, 1, '2019', 'Rossz szemeszter', 'ELFOGADVA', 'NINCS', 0);
-- constraint 8: points of a person with no membership in the group (a deleted one),
-- given on an accepted, latest evaluation of 2021/22 autumn
INSERT INTO point_requests (id, evaluation_id, user_id, point)
SELECT 900001, e.id, u.id, 0
  FROM evaluations e, users u
 WHERE e.semester = '202120221' AND e.point_request_status = 'ELFOGADVA' AND e.next_version IS NULL
   AND NOT EXISTS (SELECT 1 FROM memberships m WHERE m.group_id = e.group_id AND m.user_id = u.id)
   AND NOT EXISTS (SELECT 1 FROM point_requests r WHERE r.user_id = u.id)
 ORDER BY e.id, u.id LIMIT 1;
INSERT INTO point_details (id, principle_id, point_request_id, point)
SELECT 900001, p.id, r.id, 12 FROM point_requests r JOIN principles p ON p.evaluation_id = r.evaluation_id
 WHERE r.id = 900001 AND p.type = 'WORK' ORDER BY p.id LIMIT 1;
UPDATE point_requests SET point = 12 WHERE id = 900001;
INSERT INTO point_histories (user_id, semester, point)
SELECT user_id, '202120221', 12 FROM point_requests WHERE id = 900001
ON CONFLICT (user_id, semester) DO NOTHING;
INSERT INTO point_histories (user_id, semester, point)
SELECT user_id, '202120222', 12 FROM point_requests WHERE id = 900001
ON CONFLICT (user_id, semester) DO NOTHING;
-- a ÁB entry request whose justification was lost
INSERT INTO entry_requests (id, evaluation_id, user_id, entry_type, justification, finalized, recommendations)
SELECT 900001, r.evaluation_id, r.user_id, 'AB', '', true, '{"16": "AB"}'
  FROM point_requests r WHERE r.point > 0
   AND NOT EXISTS (SELECT 1 FROM entry_requests e WHERE e.evaluation_id = r.evaluation_id AND e.user_id = r.user_id)
 ORDER BY r.id LIMIT 1;
"#;

async fn source(pg: &localpg::LocalPostgres) -> localpg::Database {
    let db = pg.fresh_database().await.expect("source database");
    let mut c = sqlx::PgConnection::connect(&db.owner_url)
        .await
        .expect("connect");
    sqlx::raw_sql(SCHEMA)
        .execute(&mut c)
        .await
        .expect("pek-next schema");
    sqlx::raw_sql(&scaled_gen(2000, 100, 20))
        .execute(&mut c)
        .await
        .expect("gen.sql");
    sqlx::raw_sql(EDGES)
        .execute(&mut c)
        .await
        .expect("edge rows");
    db
}

/// Every row of the tables an import writes, as the superuser sees them, minus the
/// columns a re-run legitimately rewrites (when the history was recomputed, the import's
/// own bookkeeping).
async fn state(url: &str) -> BTreeMap<String, Vec<String>> {
    let mut c = sqlx::PgConnection::connect(url).await.expect("su");
    let mut out = BTreeMap::new();
    for (table, drop) in [
        ("users", ""),
        ("profiles", ""),
        ("usernames", ""),
        ("external_account_links", ""),
        ("groups", ""),
        ("memberships", ""),
        ("group_posts", " - 'created_at'"),
        ("semesters", ""),
        ("evaluation_settings", " - 'season_changed_at'"),
        ("guideline_collections", ""),
        ("guidelines", ""),
        ("scoreboards", ""),
        ("scoreboard_comments", ""),
        ("point_requests", ""),
        ("point_request_comments", ""),
        ("entry_award_requests", ""),
        ("point_history", " - 'recorded_at'"),
        ("import_keys", ""),
        ("realm_members", ""),
    ] {
        let rows: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT (to_jsonb(t){drop})::text FROM {table} t ORDER BY 1"
        ))
        .fetch_all(&mut c)
        .await
        .expect("snapshot");
        out.insert(table.to_string(), rows);
    }
    out
}

fn args(source: &str, hub: &str, report: Option<std::path::PathBuf>) -> Args {
    Args {
        source: source.to_string(),
        realm: "sch".into(),
        realm_name: "Schönherz".into(),
        database_url: hub.to_string(),
        dry_run: false,
        report,
        force: false,
        allow_differences: false,
    }
}

const SERVICE_TOKEN: &str = "directory-service-token-for-the-import-test";

/// A hub whose directory accepts one service token.
async fn hub_with_directory() -> common::TestApp {
    let pg = localpg::LocalPostgres::shared().expect("start postgres");
    let database = pg.fresh_database().await.expect("fresh database");
    let signer = pek::auth::Signer::generate("pek-hub", "pek").expect("key");
    let dir = std::env::temp_dir().join(format!("pek-test-import-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let key = dir.join("key.pem");
    std::fs::write(&key, signer.public_pem()).expect("key file");
    let tokens = dir.join("directory-tokens");
    std::fs::write(&tokens, format!("authsch {SERVICE_TOKEN}\n")).expect("tokens");
    let mut args = common::args(&database, pek::config::Mode::Hub, None, key);
    args.directory_token_file = Some(tokens);
    let (_state, router) = pek::app::build(&args).await.expect("build app");
    let db = pek::db::Db::connect(&database.app_url, 5)
        .await
        .expect("connect");
    common::TestApp {
        router,
        db,
        signer,
        database,
        audience: "pek".to_string(),
    }
}

/// The directory as a service calls it.
async fn directory(hub: &common::TestApp, id: &str) -> (StatusCode, serde_json::Value) {
    let res = hub
        .router
        .clone()
        .oneshot(
            Request::get(format!("/internal/v1/directory/users/{id}"))
                .header("authorization", format!("Bearer {SERVICE_TOKEN}"))
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("call");
    let status = res.status();
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test]
async fn pek_next_imports_with_the_same_points_and_again_changes_nothing() {
    let pg = localpg::LocalPostgres::shared().expect("postgres");
    let hub = hub_with_directory().await;
    let src = source(pg).await;
    // Someone who signed in here before the import: merged with their pek-next self.
    let (merged_auth,): (String,) = {
        let mut c = sqlx::PgConnection::connect(&src.owner_url)
            .await
            .expect("connect");
        sqlx::query_as(
            "SELECT auth_sch_id FROM users WHERE auth_sch_id IS NOT NULL ORDER BY id LIMIT 1",
        )
        .fetch_one(&mut c)
        .await
        .expect("a user with an AuthSCH id")
    };
    let early = hub
        .person(&merged_auth, "Korai", "Belépő", "+36301111111")
        .await;
    let progress = Progress::plain();

    // A dry run writes nothing.
    let before = state(&hub.database.superuser_url).await;
    let mut dry = args(&src.owner_url, &hub.database.app_url, None);
    dry.dry_run = true;
    let s = pek_next::run(&dry, &progress).await.expect("dry run");
    assert!(!s.committed);
    assert!(
        s.differences.is_empty(),
        "{:?}",
        &s.differences[..s.differences.len().min(5)]
    );
    assert_eq!(
        before,
        state(&hub.database.superuser_url).await,
        "a dry run wrote"
    );

    let report = std::env::temp_dir().join(format!("pek-import-{}.csv", uuid::Uuid::new_v4()));
    let first = pek_next::run(
        &args(&src.owner_url, &hub.database.app_url, Some(report.clone())),
        &progress,
    )
    .await
    .expect("import");
    eprintln!("{}", pek_next::render(&first, false));
    assert!(first.committed);
    assert!(
        first.differences.is_empty(),
        "points differ: {:?}",
        first.differences
    );
    assert!(
        first.compared > 1000,
        "the check compared {} figures",
        first.compared
    );
    let users = first
        .tallies
        .iter()
        .find(|t| t.mapping.starts_with("users"))
        .expect("users");
    assert_eq!(users.read, 2000);
    assert_eq!(users.merged, 1, "the person who signed in early is merged");
    // A group's post types are its post names, and every post a member holds is one.
    let posts = first
        .tallies
        .iter()
        .find(|t| t.mapping.starts_with("post types"))
        .expect("post types");
    assert!(
        posts.read > 0 && posts.inserted >= posts.read,
        "{} post types, {} names",
        posts.read,
        posts.inserted
    );
    let mut su = sqlx::PgConnection::connect(&hub.database.superuser_url)
        .await
        .expect("su");
    let (held, unlisted): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE p <> 'leader' AND NOT EXISTS
                   (SELECT 1 FROM group_posts g WHERE g.realm_id = m.realm_id
                       AND g.group_id = m.group_id AND g.name = p))
           FROM memberships m, unnest(m.posts) AS p",
    )
    .fetch_one(&mut su)
    .await
    .expect("posts held");
    assert!(held > 0, "the import gave nobody a post");
    assert_eq!(unlisted, 0, "posts held that are not their group's");

    // The report names the rows not carried, with their reasons.
    let text = std::fs::read_to_string(&report).expect("report");
    for needle in [
        "im_accounts,900001,rejected,unknown protocol or empty name: icq",
        "evaluations,900001,rejected,semester is not a pek-next semester: 2019",
        "evaluation_messages,900003,rejected,empty message",
        "evaluation_messages,900004,rejected,no evaluation of that group and semester",
        "entry_requests,900001,changed,KB/ÁB without a justification",
        "points of a person with no membership in the group",
        "duplicate name: Kör 96 carried as Kör 96 (97)",
        "rejected without a reason: a placeholder reason was given",
        "pending application with earlier points",
        "screen name is not a valid username: Ügyes Júzer 50 carried as ugyes-juzer-50",
        "no AuthSCH id: kept as legacy-pek:",
        ",skipped,zero points: nothing to carry",
    ] {
        assert!(text.contains(needle), "the report lacks {needle:?}");
    }
    let _ = std::fs::remove_file(&report);

    // A second import changes nothing.
    let after_first = state(&hub.database.superuser_url).await;
    let second = pek_next::run(
        &args(&src.owner_url, &hub.database.app_url, None),
        &progress,
    )
    .await
    .expect("second import");
    assert!(second.differences.is_empty());
    for t in &second.tallies {
        assert_eq!(
            (t.inserted, t.updated),
            (0, 0),
            "second run wrote {}",
            t.mapping
        );
    }
    let after_second = state(&hub.database.superuser_url).await;
    for (table, rows) in &after_first {
        assert!(
            rows == &after_second[table],
            "the second import changed {table}"
        );
    }

    // The person who signed in early is the imported person.
    let mut su = sqlx::PgConnection::connect(&hub.database.superuser_url)
        .await
        .expect("su");
    let (legacy,): (Option<i64>,) = sqlx::query_as("SELECT legacy_id FROM users WHERE id = $1")
        .bind(early)
        .fetch_one(&mut su)
        .await
        .expect("merged user");
    assert!(legacy.is_some());

    // pek-next's pending applicants are applications here, not members.
    let (applied, newbie_members): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'APPLIED'), count(*) FILTER (WHERE status = 'NEWBIE')
           FROM memberships WHERE realm_id = 'sch'",
    )
    .fetch_one(&mut su)
    .await
    .expect("statuses");
    assert!(applied > 0);
    assert_eq!(newbie_members, 0, "gen.sql gives no one the újonc post");

    // The directory finds people by Neptun code and by pek-next id, as pek-next's
    // /services/sync/{neptun} did.
    let (neptun, pn_id, user): (String, i64, Uuid) = sqlx::query_as(
        "SELECT p.neptun, u.legacy_id, u.id FROM users u JOIN profiles p ON p.user_id = u.id
          WHERE p.neptun IS NOT NULL AND u.legacy_id IS NOT NULL ORDER BY u.legacy_id LIMIT 1",
    )
    .fetch_one(&mut su)
    .await
    .expect("a person with a Neptun code");
    for id in [neptun.clone(), neptun.to_lowercase(), pn_id.to_string()] {
        let (status, body) = directory(&hub, &id).await;
        assert_eq!(status, StatusCode::OK, "{id}: {body}");
        assert_eq!(body["id"], serde_json::json!(user), "{id}");
    }
    assert_eq!(directory(&hub, "ZZZZZZ").await.0, StatusCode::NOT_FOUND);

    // Per-field privacy: a person who hid their e-mail in pek-next sees it on their own
    // profile (and that it is hidden); a GOD of the realm, who sees full profiles, does not.
    let (private,): (Uuid,) = sqlx::query_as(
        "SELECT user_id FROM profiles WHERE 'email' = ANY (hidden_fields) AND email IS NOT NULL
          ORDER BY user_id LIMIT 1",
    )
    .fetch_one(&mut su)
    .await
    .expect("a person who hides their e-mail");
    let (s, me) = hub.get("/api/v1/me", &hub.token(private)).await;
    assert_eq!(s, StatusCode::OK, "{me}");
    assert!(me["profile"]["email"].is_string(), "{me}");
    assert!(
        me["profile"]["hiddenFields"]
            .as_array()
            .is_some_and(|h| h.contains(&serde_json::json!("email"))),
        "{me}"
    );
    let god = hub
        .person("import-god", "Isten", "Admin", "+36301234567")
        .await;
    pek::realm::ensure_local(
        &hub.db,
        &"sch".parse().expect("realm"),
        "Schönherz",
        Some(god),
    )
    .await
    .expect("GOD of sch");
    let (s, seen) = hub
        .get(&format!("/api/v1/users/{private}"), &hub.token(god))
        .await;
    assert_eq!(s, StatusCode::OK, "{seen}");
    assert_eq!(seen["scope"], "full", "{seen}");
    assert!(
        seen["profile"]["email"].is_null(),
        "a hidden e-mail shown: {seen}"
    );
    assert!(seen["profile"].get("hiddenFields").is_none(), "{seen}");

    // A group that took no applications in pek-next takes none here.
    let (closed,): (Uuid,) = sqlx::query_as(
        "SELECT id FROM groups WHERE realm_id = 'sch' AND NOT users_can_apply
            AND NOT archived ORDER BY legacy_id LIMIT 1",
    )
    .fetch_one(&mut su)
    .await
    .expect("a group closed to applications");
    let (s, body) = hub
        .post(
            &format!("/api/v1/realms/sch/groups/{closed}/applications"),
            &hub.token(god),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");

    // Nobody signs in as a placeholder identity: every sign-in goes through upsert_user.
    let mut g = hub.db.global().await.expect("tx");
    let refused = pek::profile::upsert_user(&mut g, "legacy-pek:1").await;
    assert!(refused.is_err(), "a placeholder identity signed in");

    // Importing into a realm with data made here is refused without --force.
    hub.bootstrap_god(god).await;
    hub.realm("kszk", god).await;
    let token = hub.token(god);
    let (status, _) = hub
        .post(
            "/api/v1/realms/kszk/groups",
            &token,
            serde_json::json!({"name": "Saját kör"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let mut other = args(&src.owner_url, &hub.database.app_url, None);
    other.realm = "kszk".into();
    let err = pek_next::run(&other, &progress).await.expect_err("refused");
    assert!(
        err.to_string()
            .contains("already has data of another origin"),
        "{err}"
    );
}
