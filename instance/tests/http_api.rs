//! Bad input, auth, the admin API and the ops endpoints: each the right status with a
//! clear message, and nothing half-written.

mod common;

use axum::http::{Method, StatusCode};
use serde_json::json;

use common::{hub, id};
use pek::config::Mode;

#[tokio::test]
async fn bad_input_gets_the_right_4xx_and_writes_nothing() {
    let app = hub().await;
    let god = app.person("god", "God", "Mode", "1").await;
    app.bootstrap_god(god).await;
    let t = app.token(god);
    app.group("hub", &t, "existing", None).await;
    let before = app.snapshot("groups").await;
    let url = "/api/v1/realms/hub/groups";
    let cases: Vec<(&str, Option<String>, StatusCode, &str)> = vec![
        (
            url,
            Some("{\"name\": ".into()),
            StatusCode::BAD_REQUEST,
            "not valid JSON",
        ),
        (
            url,
            Some(json!({"name": 42}).to_string()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid type",
        ),
        (
            url,
            Some(json!({"name": "x", "extra": true}).to_string()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown field",
        ),
        (
            url,
            Some(json!({"name": "x", "purpose": "PICNIC"}).to_string()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown variant",
        ),
        (
            url,
            Some(json!({"name": "   "}).to_string()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "1-200",
        ),
        (
            url,
            Some(json!({"name": "existing"}).to_string()),
            StatusCode::CONFLICT,
            "already exists",
        ),
        (
            url,
            Some(json!({"name": "y", "parentId": "not-a-uuid"}).to_string()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "UUID",
        ),
        (
            url,
            Some(json!({"name": "y", "parentId": uuid::Uuid::new_v4()}).to_string()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "not found",
        ),
        (
            url,
            Some(json!({"name": "z".repeat(100_000)}).to_string()),
            StatusCode::PAYLOAD_TOO_LARGE,
            "too large",
        ),
        (
            "/api/v1/realms/no-such-realm/groups",
            Some(json!({"name": "q"}).to_string()),
            StatusCode::NOT_FOUND,
            "not served",
        ),
        (
            "/api/v1/realms/BAD_ID/groups",
            Some(json!({"name": "q"}).to_string()),
            StatusCode::BAD_REQUEST,
            "invalid realm id",
        ),
    ];
    for (uri, body, want, msg) in cases {
        let (s, b) = app
            .call_raw(Method::POST, uri, Some(&t), body.as_deref())
            .await;
        assert_eq!(s, want, "{uri} {body:?}: {b}");
        let m = b["error"]["message"].as_str().unwrap_or_default();
        assert!(m.contains(msg), "{uri}: expected {msg:?} in {m:?}");
        assert!(b["error"]["code"].is_string());
    }
    for (uri, want) in [
        (
            "/api/v1/realms/hub/groups/not-a-uuid",
            StatusCode::BAD_REQUEST,
        ),
        ("/api/v1/realms/hub/groups?limit=0", StatusCode::BAD_REQUEST),
        (
            "/api/v1/realms/hub/groups?limit=abc",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/realms/hub/groups?cursor=%%%",
            StatusCode::BAD_REQUEST,
        ),
        ("/api/v1/realms/hub/groups?bogus=1", StatusCode::BAD_REQUEST),
        ("/api/v1/nothing-here", StatusCode::NOT_FOUND),
    ] {
        let (s, b) = app.get(uri, &t).await;
        assert_eq!(s, want, "{uri}: {b}");
    }
    assert_eq!(app.snapshot("groups").await, before, "nothing half-written");
}

#[tokio::test]
async fn tokens_are_required_and_forgeries_refused() {
    let app = hub().await;
    let god = app.person("god", "God", "Mode", "1").await;
    app.bootstrap_god(god).await;
    let (s, b) = app
        .call(Method::GET, "/api/v1/realms/hub/groups", None, None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(b["error"]["message"]
        .as_str()
        .unwrap()
        .contains("missing bearer token"));
    let other = pek::auth::Signer::generate("pek-hub", "pek").unwrap();
    for bad in [
        other.issue(god, 60).unwrap(),
        "garbage".into(),
        app.signer.issue(god, 60).unwrap() + "x",
    ] {
        let (s, _) = app.get("/api/v1/realms/hub/groups", &bad).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let (s, _) = app.get("/api/v1/realms/hub/groups", &app.token(god)).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn list_endpoints_paginate_with_bounded_pages() {
    let app = hub().await;
    let god = app.person("god", "God", "Mode", "1").await;
    app.bootstrap_god(god).await;
    let t = app.token(god);
    for i in 0..7 {
        app.group("hub", &t, &format!("Ág {i}"), None).await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let uri = match &cursor {
            Some(c) => format!("/api/v1/realms/hub/groups?q=ag&limit=3&cursor={c}"),
            None => "/api/v1/realms/hub/groups?q=ag&limit=3".into(),
        };
        let (s, b) = app.get(&uri, &t).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        for g in b["items"].as_array().unwrap() {
            seen.push(g["name"].as_str().unwrap().to_string());
        }
        match b["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, (0..7).map(|i| format!("Ág {i}")).collect::<Vec<_>>());
    let (s, _) = app.get("/api/v1/realms/hub/groups?limit=201", &t).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn worker_serves_only_its_own_realm() {
    let w = common::app(Mode::Worker, Some("kir-dev")).await;
    let user = uuid::Uuid::new_v4();
    // Bootstrap a GOD directly (the worker has no users table; ids come from hub tokens).
    let realm = pek::realm::RealmId::parse("kir-dev").unwrap();
    pek::realm::ensure_local(&w.db, &realm, "Kir-Dev", Some(user))
        .await
        .unwrap();
    let t = w.token(user);
    let g = w.group("kir-dev", &t, "web", None).await;
    assert_eq!(g["realmId"], "kir-dev");
    let (s, _) = w.get("/api/v1/realms/hub/groups", &t).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = w.get("/api/v1/users?q=abc", &t).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "no hub routes on a worker");
    let (s, r) = w.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(s, StatusCode::OK, "{r}");
}

#[tokio::test]
async fn wrong_methods_get_405_in_the_one_error_shape() {
    let app = hub().await;
    let user = app.person("m405", "Metó", "Dus", "+36 1").await;
    let t = app.token(user);
    for (method, uri) in [
        (Method::DELETE, "/api/v1/groups"),
        (Method::PUT, "/api/v1/realms/hub/groups"),
        (Method::POST, "/healthz"),
    ] {
        let req = axum::http::Request::builder()
            .method(method.clone())
            .uri(uri)
            .header("authorization", format!("Bearer {t}"))
            .body(axum::body::Body::empty())
            .unwrap();
        let resp = tower::ServiceExt::oneshot(app.router.clone(), req)
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {uri}"
        );
        assert!(resp.headers().contains_key("allow"), "{method} {uri}");
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).expect("a JSON error body");
        assert_eq!(v["error"]["code"], "method_not_allowed", "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains(method.as_str()),
            "{v}"
        );
    }
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let app = hub().await;
    let user = app.person("bearer", "Bea", "Rer", "+36 1").await;
    let t = app.token(user);
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let req = axum::http::Request::builder()
            .uri("/api/v1/me")
            .header("authorization", format!("{scheme} {t}"))
            .body(axum::body::Body::empty())
            .unwrap();
        let resp = tower::ServiceExt::oneshot(app.router.clone(), req)
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{scheme}");
    }
    let req = axum::http::Request::builder()
        .uri("/api/v1/me")
        .header("authorization", format!("Basic {t}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = tower::ServiceExt::oneshot(app.router.clone(), req)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn ops_endpoints_and_openapi() {
    let app = hub().await;
    let (s, _) = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, r) = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!((s, r["status"].as_str()), (StatusCode::OK, Some("ready")));
    let (s, doc) = app.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::OK);
    for path in [
        "/api/v1/realms/{realm}/groups",
        "/api/v1/users",
        "/internal/v1/realms/{realm}",
        "/readyz",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from OpenAPI"
        );
    }
    // Metrics have a listener of their own (PEK_METRICS_LISTEN), never the API's.
    let (s, m) = app.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{m}");
    assert!(doc["paths"].get("/metrics").is_none());
    // Readiness fails when migrations are missing.
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(&app.database.owner_url)
        .await
        .unwrap();
    sqlx::query(
        "DELETE FROM _sqlx_migrations WHERE version = (SELECT max(version) FROM _sqlx_migrations)",
    )
    .execute(&mut c)
    .await
    .unwrap();
    let (s, r) = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{r}");
    assert!(r["reason"].as_str().unwrap().contains("not applied"));
}

#[tokio::test]
async fn admin_api_registers_idempotently_behind_the_operator_token() {
    let pg = localpg::LocalPostgres::shared().unwrap();
    let database = pg.fresh_database().await.unwrap();
    let dir = std::env::temp_dir();
    let key = dir.join(format!("pek-test-{}.pem", uuid::Uuid::new_v4()));
    let signer = pek::auth::Signer::generate("pek-hub", "pek").unwrap();
    std::fs::write(&key, signer.public_pem()).unwrap();
    let tokens = dir.join(format!("pek-tokens-{}", uuid::Uuid::new_v4()));
    std::fs::write(&tokens, "# operator\nop-token-0123456789abcdef\n").unwrap();
    let mut args = common::args(&database, Mode::Hub, None, key);
    args.operator_token_file = Some(tokens);
    let (_, router) = pek::app::build(&args).await.unwrap();
    let db = pek::db::Db::connect(&database.app_url, 2).await.unwrap();
    let app = common::TestApp {
        router,
        db,
        signer,
        database,
        audience: "pek".into(),
    };
    let op = "op-token-0123456789abcdef";
    let body = json!({"displayName": "Kir-Dev", "endpoint": "http://kir-dev.pek.svc:8080", "version": "0.1.0"});
    let (s, _) = app
        .call(
            Method::PUT,
            "/internal/v1/realms/kir-dev",
            Some("wrong-token-0123456789"),
            Some(body.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = app
        .call(
            Method::PUT,
            "/internal/v1/realms/kir-dev",
            None,
            Some(body.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, r) = app
        .call(
            Method::PUT,
            "/internal/v1/realms/kir-dev",
            Some(op),
            Some(body.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let (s, _) = app
        .call(
            Method::PUT,
            "/internal/v1/realms/kir-dev",
            Some(op),
            Some(body),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app
        .call(
            Method::PUT,
            "/internal/v1/realms/hub",
            Some(op),
            Some(json!({"displayName": "x", "endpoint": "http://x"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = app
        .call(
            Method::PUT,
            "/internal/v1/realms/bad",
            Some(op),
            Some(json!({"displayName": "x", "endpoint": "ftp://x"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, list) = app
        .call(Method::GET, "/internal/v1/realms", Some(op), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let kd = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "kir-dev")
        .unwrap()
        .clone();
    assert_eq!(kd["endpoint"], "http://kir-dev.pek.svc:8080");
    assert_eq!(kd["status"], "active");
    // A registered worker realm is not served locally by the hub: the call goes to the
    // worker, which does not exist here, so the answer says the realm is unavailable.
    let god = app.person("god", "G", "M", "1").await;
    app.bootstrap_god(god).await;
    let (s, body) = app
        .get("/api/v1/realms/kir-dev/groups", &app.token(god))
        .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("realm kir-dev is unavailable"),
        "{body}"
    );
    for _ in 0..2 {
        let (s, _) = app
            .call(
                Method::DELETE,
                "/internal/v1/realms/kir-dev",
                Some(op),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
    }
    let (_, list) = app
        .call(Method::GET, "/internal/v1/realms", Some(op), None)
        .await;
    assert!(list["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["id"] != "kir-dev"));
    let _ = id(&json!({"id": "x"}));
}
