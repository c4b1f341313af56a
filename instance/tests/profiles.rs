//! Identity and profiles (seed 003), on a real PostgreSQL.

mod common;

use axum::http::{Method, StatusCode};
use serde_json::json;

use common::{hub, id};

#[tokio::test]
async fn one_profile_seen_from_two_realms_basic_without_permission_full_with_it() {
    let app = hub().await;
    let god = app.person("god", "God", "Mode", "1").await;
    let alice = app.person("alice", "Alice", "Kovács", "123456").await;
    let bob = app.person("bob", "Bob", "Nagy", "654321").await;
    app.bootstrap_god(god).await;
    app.realm("worker-acme", god).await;
    let t = app.token(god);
    for realm in ["hub", "worker-acme"] {
        let g = app.group(realm, &t, "team", None).await;
        for u in [alice, bob] {
            app.join(realm, &id(&g), &t, u, &[], "NEWBIE").await;
        }
    }
    let bt = app.token(bob);
    let (s, v) = app.get(&format!("/api/v1/users/{alice}"), &bt).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["scope"], "basic");
    assert_eq!(v["profile"]["firstName"], "Alice");
    assert!(v["profile"].get("cellPhone").is_none(), "{v}");
    assert!(v["profile"].get("externalAccounts").is_none());

    // Bob gets viewFullProfile on Alice in worker-acme only.
    let (_, p) = app
        .post(
            "/api/v1/realms/worker-acme/policies",
            &t,
            json!({"name": "hr"}),
        )
        .await;
    app.post(
        &format!("/api/v1/realms/worker-acme/policies/{}/statements", id(&p)),
        &t,
        json!({"userId": alice, "permissions": ["viewFullProfile"]}),
    )
    .await;
    app.post(
        "/api/v1/realms/worker-acme/assignments",
        &t,
        json!({"userId": bob, "policyId": id(&p)}),
    )
    .await;
    let (_, v2) = app.get(&format!("/api/v1/users/{alice}"), &bt).await;
    assert_eq!(v2["scope"], "full");
    assert_eq!(v2["profile"]["cellPhone"], "123456");
    assert_eq!(v2["id"], v["id"]);
    assert_eq!(v2["profile"]["firstName"], v["profile"]["firstName"]);
    // The grant names Alice only.
    let (_, v3) = app.get(&format!("/api/v1/users/{god}"), &bt).await;
    assert_eq!(v3["scope"], "basic");
}

#[tokio::test]
async fn no_shared_realm_means_not_found_and_a_missing_profile_is_normal() {
    let app = hub().await;
    let god = app.person("god", "God", "Mode", "1").await;
    let loner = app.person("loner", "Lone", "Wolf", "1").await;
    app.bootstrap_god(god).await;
    let t = app.token(god);
    let (s, _) = app.get(&format!("/api/v1/users/{loner}"), &t).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, b) = app.get("/api/v1/users?q=lone", &t).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["items"].as_array().unwrap().len(), 0);
    let bare = {
        let mut g = app.db.global().await.unwrap();
        let id = pek::profile::upsert_user(&mut g, "bare").await.unwrap();
        g.commit().await.unwrap();
        id
    };
    let (s, me) = app.get("/api/v1/me", &app.token(bare)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["scope"], "full");
    assert!(me["profile"].is_null());
    let g = app.group("hub", &t, "g", None).await;
    app.join("hub", &id(&g), &t, bare, &[], "NEWBIE").await;
    let (s, v) = app.get(&format!("/api/v1/users/{bare}"), &t).await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["profile"].is_null());
}

#[tokio::test]
async fn user_search_is_case_and_accent_insensitive_and_scoped_per_result() {
    let app = hub().await;
    let god = app.person("god", "God", "Mode", "1").await;
    let aron = app.person("aron", "Áron", "Szabó", "111").await;
    let ildiko = app.person("ildi", "Ildikó", "Árvai", "222").await;
    let viewer = app.person("viewer", "Vera", "Néző", "333").await;
    app.bootstrap_god(god).await;
    let t = app.token(god);
    let g = app.group("hub", &t, "g", None).await;
    for u in [aron, ildiko, viewer] {
        app.join("hub", &id(&g), &t, u, &[], "NEWBIE").await;
    }
    let vt = app.token(viewer);
    let (s, b) = app.get("/api/v1/users?q=aron", &vt).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let items = b["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{b}");
    assert_eq!(items[0]["profile"]["firstName"], "Áron");
    assert_eq!(items[0]["scope"], "basic");
    let (_, b) = app.get("/api/v1/users?q=%C3%81R", &vt).await; // "ÁR": Áron and Árvai
    assert_eq!(b["items"].as_array().unwrap().len(), 2, "{b}");
    let (_, b) = app.get("/api/v1/users?q=ildi", &t).await;
    assert_eq!(b["items"][0]["scope"], "full");
    assert_eq!(b["items"][0]["profile"]["cellPhone"], "222");
    let (_, p1) = app.get("/api/v1/users?q=ar&limit=1", &vt).await;
    assert_eq!(p1["items"].as_array().unwrap().len(), 1);
    let cursor = p1["nextCursor"].as_str().unwrap().to_string();
    let (_, p2) = app
        .get(&format!("/api/v1/users?q=ar&limit=1&cursor={cursor}"), &vt)
        .await;
    assert_eq!(p2["items"].as_array().unwrap().len(), 1);
    assert_ne!(p1["items"][0]["id"], p2["items"][0]["id"]);
    let (s, _) = app.get("/api/v1/users?q=a", &vt).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn profile_edits_need_self_or_edit_profile() {
    let app = hub().await;
    let god = app.person("god", "God", "Mode", "1").await;
    let alice = app.person("alice", "Alice", "K", "1").await;
    let bob = app.person("bob", "Bob", "N", "2").await;
    app.bootstrap_god(god).await;
    let t = app.token(god);
    let g = app.group("hub", &t, "g", None).await;
    for u in [alice, bob] {
        app.join("hub", &id(&g), &t, u, &[], "NEWBIE").await;
    }
    let body = json!({"firstName": "Alíz", "externalAccounts": [{"protocol": "HIMZO", "accountName": "aliz"}]});
    let (s, v) = app
        .call(
            Method::PUT,
            "/api/v1/me/profile",
            Some(&app.token(alice)),
            Some(body),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["profile"]["externalAccounts"][0]["protocol"], "HIMZO");
    let links = app.snapshot("external_account_links").await;
    assert!(
        links[0].contains("\"protocol\":\"Hímzek\""),
        "stored as in PéK: {links:?}"
    );
    let before = app.snapshot("profiles").await;
    let (s, _) = app
        .call(
            Method::PUT,
            &format!("/api/v1/users/{alice}/profile"),
            Some(&app.token(bob)),
            Some(json!({"firstName": "Hacked"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app
        .call(
            Method::PUT,
            "/api/v1/me/profile",
            Some(&app.token(alice)),
            Some(json!({"dormitory": "MARS"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.snapshot("profiles").await, before);
    let (s, v) = app
        .call(
            Method::PUT,
            &format!("/api/v1/users/{alice}/profile"),
            Some(&t),
            Some(json!({"firstName": "Alice"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(
        app.snapshot("external_account_links").await.is_empty(),
        "replaced as a whole"
    );
}

#[tokio::test]
async fn many_people_in_one_call_each_as_the_single_read_shows_them() {
    let app = hub().await;
    let god = app.person("god", "God", "Mode", "1").await;
    let alice = app.person("alice", "Alice", "Kovács", "123456").await;
    let bob = app.person("bob", "Bob", "Nagy", "654321").await;
    let carol = app.person("carol", "Carol", "Szabó", "777777").await;
    let loner = app.person("loner", "Lone", "Wolf", "888888").await;
    app.bootstrap_god(god).await;
    app.realm("worker-acme", god).await;
    let t = app.token(god);
    let g = app.group("worker-acme", &t, "team", None).await;
    for u in [alice, bob, carol] {
        app.join("worker-acme", &id(&g), &t, u, &[], "NEWBIE").await;
    }
    // Bob may see Alice's full profile (not Carol's).
    let (_, p) = app
        .post(
            "/api/v1/realms/worker-acme/policies",
            &t,
            json!({"name": "hr"}),
        )
        .await;
    app.post(
        &format!("/api/v1/realms/worker-acme/policies/{}/statements", id(&p)),
        &t,
        json!({"userId": alice, "permissions": ["viewFullProfile"]}),
    )
    .await;
    app.post(
        "/api/v1/realms/worker-acme/assignments",
        &t,
        json!({"userId": bob, "policyId": id(&p)}),
    )
    .await;

    let bt = app.token(bob);
    let (s, list) = app
        .post(
            "/api/v1/users/lookup",
            &bt,
            json!({"ids": [alice, loner, carol, bob, alice]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let items = list["items"].as_array().expect("items");
    // Loner shares no realm with Bob: left out, as GET /users/{id} answers 404. Each
    // person once, in the order asked.
    let ids: Vec<&str> = items.iter().filter_map(|u| u["id"].as_str()).collect();
    let want = [alice.to_string(), carol.to_string(), bob.to_string()];
    assert_eq!(ids, want.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(items[0]["scope"], "full");
    assert_eq!(items[0]["profile"]["cellPhone"], "123456");
    assert_eq!(items[1]["scope"], "basic");
    assert!(items[1]["profile"].get("cellPhone").is_none(), "{list}");
    assert_eq!(items[2]["scope"], "full", "one's own profile");
    assert_eq!(list["partial"], false);
    // The same as the single reads, person by person.
    for item in items {
        let (s, one) = app
            .get(
                &format!("/api/v1/users/{}", item["id"].as_str().unwrap_or("")),
                &bt,
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(&one, item);
    }
    let (s, _) = app.get(&format!("/api/v1/users/{loner}"), &bt).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Bounded, and a list of ids only.
    let many: Vec<String> = (0..201).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let (s, b) = app
        .post("/api/v1/users/lookup", &bt, json!({"ids": many}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let (s, _) = app
        .post("/api/v1/users/lookup", &bt, json!({"ids": ["not-a-uuid"]}))
        .await;
    assert!(s.is_client_error(), "{s}");
    let (s, b) = app
        .post("/api/v1/users/lookup", &bt, json!({"ids": []}))
        .await;
    assert_eq!(
        (s, b["items"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(0))
    );
    let (s, _) = app
        .call(
            Method::POST,
            "/api/v1/users/lookup",
            None,
            Some(json!({"ids": [alice]})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}
