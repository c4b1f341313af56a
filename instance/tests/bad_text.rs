//! Bad text is the client's mistake: a NUL byte, a control character, an over-long value
//! or a year PostgreSQL cannot store, in any kind of text input (names, descriptions,
//! comments, posts, profile fields, `q=`, cursors, path segments), is a 400/422 naming
//! the field — never a 500, and through the BFF fan-out never "every realm unavailable".
//! Real PostgreSQL, through the real router, on the hub and on a worker.

mod common;

use axum::http::{Method, StatusCode};
use base64::Engine;
use serde_json::{json, Value};
use uuid::Uuid;

use common::{hub, id, TestApp};
use pek::config::Mode;

const NUL: &str = "a\u{0}b";

/// The answer must be a 400 or 422 in our error shape whose message names `field`.
#[track_caller]
fn refused(what: &str, field: &str, (status, body): (StatusCode, Value)) {
    assert!(
        status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY,
        "{what}: expected 400/422, got {status}: {body}"
    );
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(field),
        "{what}: the message should name `{field}`: {body}"
    );
}

/// A cursor that decodes fine but carries a NUL in its key.
fn nul_cursor() -> String {
    let raw = serde_json::to_vec(&("a\u{0}", Uuid::new_v4())).unwrap();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

async fn json_call(
    app: &TestApp,
    method: Method,
    uri: &str,
    t: &str,
    body: Value,
) -> (StatusCode, Value) {
    app.call(method, uri, Some(t), Some(body)).await
}

/// Every realm-scoped text input, the same on the hub and on a worker. `god` holds the
/// realm's GOD policy.
async fn realm_inputs_refuse_bad_text(app: &TestApp, realm: &str, god: Uuid) {
    let t = app.token(god);
    let base = format!("/api/v1/realms/{realm}");
    let group = id(&app.group(realm, &t, "Kör", None).await);
    let (s, sem) = json_call(app, Method::POST, &format!("{base}/semesters"), &t,
        json!({"name": "2025/26/1", "startsOn": "2025-09-01", "endsOn": "2026-01-31", "current": true})).await;
    assert_eq!(s, StatusCode::CREATED, "{sem}");
    let semester = id(&sem);

    // Names and descriptions.
    let groups = format!("{base}/groups");
    refused(
        "group name",
        "name",
        json_call(app, Method::POST, &groups, &t, json!({"name": NUL})).await,
    );
    refused(
        "group name bell",
        "name",
        json_call(app, Method::POST, &groups, &t, json!({"name": "a\u{7}"})).await,
    );
    refused(
        "group name newline",
        "name",
        json_call(app, Method::POST, &groups, &t, json!({"name": "a\nb"})).await,
    );
    refused(
        "group name too long",
        "name",
        json_call(
            app,
            Method::POST,
            &groups,
            &t,
            json!({"name": "x".repeat(201)}),
        )
        .await,
    );
    refused(
        "group description",
        "description",
        json_call(
            app,
            Method::POST,
            &groups,
            &t,
            json!({"name": "ok", "description": NUL}),
        )
        .await,
    );
    let g = format!("{groups}/{group}");
    refused(
        "group rename",
        "name",
        json_call(app, Method::PATCH, &g, &t, json!({"name": NUL})).await,
    );
    refused(
        "group description patch",
        "description",
        json_call(app, Method::PATCH, &g, &t, json!({"description": NUL})).await,
    );
    // Free text keeps newlines and tabs.
    let (s, b) = json_call(
        app,
        Method::PATCH,
        &g,
        &t,
        json!({"description": "line 1\nline\t2\r\n"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    refused(
        "semester name",
        "name",
        json_call(
            app,
            Method::POST,
            &format!("{base}/semesters"),
            &t,
            json!({"name": NUL, "startsOn": "2026-02-01", "endsOn": "2026-06-30"}),
        )
        .await,
    );
    refused(
        "policy name",
        "name",
        json_call(
            app,
            Method::POST,
            &format!("{base}/policies"),
            &t,
            json!({"name": NUL}),
        )
        .await,
    );

    // Years PostgreSQL cannot store or we do not accept.
    for (from, to) in [
        ("0000-01-01", "2026-01-01"),
        ("2026-01-01", "10000-01-01"),
        ("-0001-01-01", "2026-01-01"),
    ] {
        let field = if from.starts_with("2026") {
            "endsOn"
        } else {
            "startsOn"
        };
        refused(
            "semester year",
            field,
            json_call(
                app,
                Method::POST,
                &format!("{base}/semesters"),
                &t,
                json!({"name": format!("y{from}"), "startsOn": from, "endsOn": to}),
            )
            .await,
        );
    }

    // Posts and membership dates.
    let members = format!("{groups}/{group}/members");
    refused(
        "post",
        "posts",
        json_call(
            app,
            Method::POST,
            &members,
            &t,
            json!({"userId": god, "posts": [NUL]}),
        )
        .await,
    );
    refused(
        "membership start year",
        "startAt",
        json_call(
            app,
            Method::POST,
            &members,
            &t,
            json!({"userId": god, "startAt": "+20000-01-01T00:00:00Z"}),
        )
        .await,
    );
    // A consented membership to patch: the GOD applies and accepts the application
    // (an invitation would make a worker ask the hub, which this test has not).
    let (s, m) = app
        .call(
            Method::POST,
            &format!("{groups}/{group}/applications"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{m}");
    let membership = id(&m);
    let mpath = format!("{base}/memberships/{membership}");
    let (s, m) = app
        .call(Method::POST, &format!("{mpath}/accept"), Some(&t), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{m}");
    refused(
        "post patch",
        "posts",
        json_call(
            app,
            Method::PATCH,
            &mpath,
            &t,
            json!({"posts": ["ok", NUL]}),
        )
        .await,
    );
    refused(
        "until year",
        "until",
        json_call(
            app,
            Method::PATCH,
            &mpath,
            &t,
            json!({"until": "0000-01-01T00:00:00Z"}),
        )
        .await,
    );

    let (s, b) = json_call(
        app,
        Method::PUT,
        &format!("{base}/evaluation-season"),
        &t,
        json!({"season": "SUBMISSION", "semesterId": semester}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");

    // Evaluation texts: collections, guidelines, comments, rejections, justifications.
    let collections = format!("{base}/guideline-collections");
    refused(
        "collection name",
        "name",
        json_call(
            app,
            Method::POST,
            &collections,
            &t,
            json!({"groupId": group, "semesterId": semester, "name": NUL}),
        )
        .await,
    );
    refused(
        "collection description",
        "description",
        json_call(
            app,
            Method::POST,
            &collections,
            &t,
            json!({"groupId": group, "semesterId": semester, "name": "ok", "description": NUL}),
        )
        .await,
    );
    let (s, c) = json_call(
        app,
        Method::POST,
        &collections,
        &t,
        json!({"groupId": group, "semesterId": semester, "name": "Pontozási elvek"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let guidelines = format!("{collections}/{}/guidelines", id(&c));
    refused(
        "guideline title",
        "title",
        json_call(
            app,
            Method::POST,
            &guidelines,
            &t,
            json!({"title": NUL, "category": "WORK", "maxPerMember": 10, "maxPerGuideline": 100}),
        )
        .await,
    );
    refused("guideline description", "description", json_call(app, Method::POST, &guidelines, &t,
        json!({"title": "ok", "description": NUL, "category": "WORK", "maxPerMember": 10, "maxPerGuideline": 100})).await);
    let (s, sb) = json_call(
        app,
        Method::POST,
        &format!("{base}/scoreboards"),
        &t,
        json!({"groupId": group, "semesterId": semester}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{sb}");
    let scoreboard = format!("{base}/scoreboards/{}", id(&sb));
    refused(
        "comment",
        "body",
        json_call(
            app,
            Method::POST,
            &format!("{scoreboard}/comments"),
            &t,
            json!({"body": NUL}),
        )
        .await,
    );
    refused(
        "rejection",
        "reason",
        json_call(
            app,
            Method::POST,
            &format!("{scoreboard}/reject"),
            &t,
            json!({"reason": NUL}),
        )
        .await,
    );
    refused(
        "justification",
        "justification",
        json_call(
            app,
            Method::PUT,
            &format!("{scoreboard}/entry-award-requests/{membership}"),
            &t,
            json!({"kind": "KDO", "justification": NUL}),
        )
        .await,
    );

    // Query strings, cursors and text path segments.
    refused("q", "q", app.get(&format!("{groups}?q=a%00b"), &t).await);
    refused(
        "q control",
        "q",
        app.get(&format!("{groups}?q=a%1Bb"), &t).await,
    );
    refused(
        "cursor",
        "cursor",
        app.get(&format!("{groups}?cursor=a%00b"), &t).await,
    );
    refused(
        "decoded cursor",
        "cursor",
        app.get(&format!("{groups}?cursor={}", nul_cursor()), &t)
            .await,
    );
    refused(
        "member cursor",
        "cursor",
        app.get(&format!("{members}?cursor={}", nul_cursor()), &t)
            .await,
    );
    refused(
        "scoreboard cursor",
        "cursor",
        app.get(&format!("{base}/scoreboards?cursor=a%00"), &t)
            .await,
    );
    refused(
        "points cursor",
        "cursor",
        app.get(
            &format!("{base}/semesters/{semester}/points?cursor={}", nul_cursor()),
            &t,
        )
        .await,
    );
    refused(
        "semester filter",
        "semester",
        app.get(&format!("{base}/users/{god}/points?semester=a%00"), &t)
            .await,
    );
    refused(
        "flag key",
        "key",
        app.call(
            Method::PUT,
            &format!("{base}/feature-flags/a%00b"),
            Some(&t),
            Some(json!({"enabled": true})),
        )
        .await,
    );
}

#[tokio::test]
async fn hub_refuses_bad_text_with_a_4xx_naming_the_field() {
    let app = hub().await;
    let god = app.person("god", "God", "Mode", "1").await;
    let other = app.person("other", "Ot", "Her", "2").await;
    app.bootstrap_god(god).await;
    let t = app.token(god);

    // Realm-scoped inputs, in a realm the hub hosts.
    app.realm("alpha", god).await;
    realm_inputs_refuse_bad_text(&app, "alpha", god).await;

    // Profiles.
    for field in ["firstName", "lastName", "nickname", "cellPhone", "room"] {
        refused(
            "own profile",
            field,
            app.call(
                Method::PUT,
                "/api/v1/me/profile",
                Some(&t),
                Some(json!({ field: NUL })),
            )
            .await,
        );
        refused(
            "someone's profile",
            field,
            app.call(
                Method::PUT,
                &format!("/api/v1/users/{other}/profile"),
                Some(&t),
                Some(json!({ field: NUL })),
            )
            .await,
        );
    }
    refused(
        "profile control char",
        "nickname",
        app.call(
            Method::PUT,
            "/api/v1/me/profile",
            Some(&t),
            Some(json!({"nickname": "\u{1b}[31m"})),
        )
        .await,
    );
    refused(
        "external account",
        "accountName",
        app.call(
            Method::PUT,
            "/api/v1/me/profile",
            Some(&t),
            Some(json!({"externalAccounts": [{"protocol": "GMAIL", "accountName": NUL}]})),
        )
        .await,
    );
    refused(
        "realm display name",
        "displayName",
        json_call(
            &app,
            Method::POST,
            "/api/v1/realms",
            &t,
            json!({"id": "beta", "displayName": NUL}),
        )
        .await,
    );

    // Cross-realm search: the hub refuses the query itself instead of fanning it out and
    // reporting every realm unavailable.
    refused("bff q", "q", app.get("/api/v1/groups?q=a%00b", &t).await);
    refused("users q", "q", app.get("/api/v1/users?q=a%00b", &t).await);
    refused(
        "users cursor",
        "cursor",
        app.get(&format!("/api/v1/users?q=ab&cursor={}", nul_cursor()), &t)
            .await,
    );
    refused(
        "users cursor raw",
        "cursor",
        app.get("/api/v1/users?q=ab&cursor=%00", &t).await,
    );
    refused(
        "my points",
        "semester",
        app.get("/api/v1/me/points?semester=a%00", &t).await,
    );
    let (s, b) = app.get("/api/v1/groups?q=K%C3%B6r", &t).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["unavailable"], json!([]), "{b}");
}

#[tokio::test]
async fn hub_refuses_bad_text_from_the_operator() {
    let pg = localpg::LocalPostgres::shared().unwrap();
    let database = pg.fresh_database().await.unwrap();
    let dir = std::env::temp_dir();
    let key = dir.join(format!("pek-test-{}.pem", Uuid::new_v4()));
    let signer = pek::auth::Signer::generate("pek-hub", "pek").unwrap();
    std::fs::write(&key, signer.public_pem()).unwrap();
    let tokens = dir.join(format!("pek-tokens-{}", Uuid::new_v4()));
    std::fs::write(&tokens, "op-token-0123456789abcdef\n").unwrap();
    let mut args = common::args(&database, Mode::Hub, None, key);
    args.operator_token_file = Some(tokens);
    let (_, router) = pek::app::build(&args).await.unwrap();
    let db = pek::db::Db::connect(&database.app_url, 2).await.unwrap();
    let app = TestApp {
        router,
        db,
        signer,
        database,
        audience: "pek".to_string(),
    };
    let op = Some("op-token-0123456789abcdef");
    let uri = "/internal/v1/realms/kir-dev";
    refused(
        "registry display name",
        "displayName",
        app.call(
            Method::PUT,
            uri,
            op,
            Some(json!({"displayName": NUL, "endpoint": "http://kir-dev:8080"})),
        )
        .await,
    );
    refused(
        "registry endpoint",
        "endpoint",
        app.call(
            Method::PUT,
            uri,
            op,
            Some(json!({"displayName": "Kir-Dev", "endpoint": "http://kir\u{0}-dev:8080"})),
        )
        .await,
    );
    refused("registry version", "version", app.call(Method::PUT, uri, op,
        Some(json!({"displayName": "Kir-Dev", "endpoint": "http://kir-dev:8080", "version": NUL}))).await);
}

#[tokio::test]
async fn worker_refuses_bad_text_with_a_4xx_naming_the_field() {
    let w = common::app(Mode::Worker, Some("kszk")).await;
    let god = Uuid::new_v4();
    let realm = pek::realm::RealmId::parse("kszk").unwrap();
    pek::realm::ensure_local(&w.db, &realm, "KSZK", Some(god))
        .await
        .unwrap();
    realm_inputs_refuse_bad_text(&w, "kszk", god).await;
}

#[test]
fn database_text_errors_are_client_errors() {
    // The backstop: whatever text still reaches PostgreSQL and is refused there as data
    // (SQLSTATE class 22) is the client's input, not a server fault.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let pg = localpg::LocalPostgres::shared().unwrap();
        let database = pg.fresh_database().await.unwrap();
        let mut c = sqlx::PgConnection::connect(&database.app_url)
            .await
            .unwrap();
        for (sql, bind) in [
            ("SELECT $1::text", "a\u{0}b"),
            ("SELECT $1::text::date", "10000-99-99"),
            ("SELECT $1::text::timestamptz", "294277-01-01 00:00:00"),
            ("SELECT $1::text::int", "9999999999999"),
            ("SELECT $1::text::uuid", "not-a-uuid"),
        ] {
            let err = sqlx::query(sql)
                .bind(bind)
                .execute(&mut c)
                .await
                .expect_err(sql);
            let err = pek::error::Error::from(err);
            assert_eq!(err.status(), StatusCode::BAD_REQUEST, "{sql}: {err}");
        }
    });
}
