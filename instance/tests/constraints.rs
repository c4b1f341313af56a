//! Constraint violations are the client's mistakes: each is mapped where its query is
//! made, to the status and message a client can act on (never a 500).

mod common;

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use common::{hub, id};

fn message(b: &Value) -> &str {
    b["error"]["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn duplicates_and_dangling_references_are_4xx_with_their_message() {
    let app = hub().await;
    let god = app.person("god", "God", "Mode", "1").await;
    app.bootstrap_god(god).await;
    let t = app.token(god);
    let groups = "/api/v1/realms/hub/groups";

    let first = app.group("hub", &t, "Kör", None).await;
    let (s, b) = app.post(groups, &t, json!({"name": "Kör"})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert_eq!(
        message(&b),
        "a group with this name already exists in this realm"
    );
    let other = app.group("hub", &t, "Másik", None).await;
    let (s, b) = app
        .call(
            Method::PATCH,
            &format!("{groups}/{}", id(&other)),
            Some(&t),
            Some(json!({"name": "Kör"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert_eq!(
        message(&b),
        "a group with this name already exists in this realm"
    );
    assert_eq!(
        id(&first),
        id(&app.get(&format!("{groups}/{}", id(&first)), &t).await.1)
    );

    let semesters = "/api/v1/realms/hub/semesters";
    let sem = json!({"name": "2025/26/1", "startsOn": "2025-09-01", "endsOn": "2026-01-31"});
    assert_eq!(
        app.post(semesters, &t, sem.clone()).await.0,
        StatusCode::CREATED
    );
    let (s, b) = app.post(semesters, &t, sem).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert_eq!(
        message(&b),
        "a semester with this name already exists in this realm"
    );

    let policies = "/api/v1/realms/hub/policies";
    assert_eq!(
        app.post(policies, &t, json!({"name": "leads"})).await.0,
        StatusCode::CREATED
    );
    let (s, b) = app.post(policies, &t, json!({"name": "leads"})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert_eq!(
        message(&b),
        "a policy with this name already exists in this realm"
    );

    let account = json!({"protocol": "GMAIL", "accountName": "god@example.com"});
    let (s, b) = app
        .call(
            Method::PUT,
            "/api/v1/me/profile",
            Some(&t),
            Some(json!({"externalAccounts": [account.clone(), account]})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert_eq!(message(&b), "this external account is listed twice");
}
