//! Realm isolation, three layers deep (DESIGN §3), against a real PostgreSQL.

mod common;

use axum::http::{Method, StatusCode};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use sqlx::Connection;
use uuid::Uuid;

use common::{hub, id};
use pek::config::Mode;

/// Layer 3 everywhere: every table with a `realm_id` column has row-level security
/// enabled and forced, with a policy keyed on the transaction's realm — read from the
/// catalog, so a new realm-scoped table without it fails here. A worker's database (the
/// realm schema) has no exception; the hub's only the federation tables, which are global.
#[tokio::test]
async fn every_realm_table_has_forced_row_level_security() {
    for (mode, realm) in [(Mode::Worker, Some("kir-dev")), (Mode::Hub, None)] {
        let app = common::app(mode, realm).await;
        let tables = common::realm_id_tables(&app.database.owner_url).await;
        assert!(tables.len() >= 17, "{mode:?}: {tables:?}");
        for (table, enabled, forced, policies) in &tables {
            if common::GLOBAL_TABLES_WITH_REALM_ID.contains(&table.as_str()) {
                assert_eq!(mode, Mode::Hub, "{table} is a hub table");
                continue;
            }
            assert!(
                *enabled && *forced && *policies > 0,
                "{mode:?}: {table}: row-level security enabled {enabled}, forced {forced}, \
                 realm policies {policies}"
            );
        }
        let realm_tables = common::realm_tables(&app.database.owner_url).await;
        for t in [
            "groups",
            "memberships",
            "point_history",
            "federation_outbox",
        ] {
            assert!(realm_tables.iter().any(|r| r == t), "{mode:?}: {t} missing");
        }
    }
}

/// Layer 3: an unfiltered SELECT over the service role's connection sees only the
/// transaction's realm, none without one, and cannot write into another realm.
#[tokio::test]
async fn rls_confines_unfiltered_queries_of_the_service_role() {
    let app = hub().await;
    let god = app.person("god", "God", "Mode", "1").await;
    app.bootstrap_god(god).await;
    app.realm("alpha", god).await;
    app.realm("beta", god).await;
    let t = app.token(god);
    for (realm, n) in [("alpha", 3), ("beta", 5)] {
        for i in 0..n {
            app.group(realm, &t, &format!("g{i}"), None).await;
        }
    }

    let mut c = sqlx::PgConnection::connect(&app.database.app_url)
        .await
        .unwrap();
    let (role, bypass): (String, bool) = sqlx::query_as(
        "SELECT rolname::text, rolbypassrls FROM pg_roles WHERE rolname = current_user",
    )
    .fetch_one(&mut c)
    .await
    .unwrap();
    assert_eq!(role, "pek_app");
    assert!(!bypass);

    // No realm set: nothing.
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM groups")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(n, 0);

    let mut tx = c.begin().await.unwrap();
    sqlx::query("SELECT set_config('pek.realm_id', 'alpha', true)")
        .execute(&mut *tx)
        .await
        .unwrap();
    let realms: Vec<String> = sqlx::query_scalar("SELECT realm_id FROM groups") // deliberately unfiltered
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(realms.len(), 3);
    assert!(realms.iter().all(|r| r == "alpha"));
    // Writing a beta row from an alpha transaction is refused by WITH CHECK.
    let err = sqlx::query(
        "INSERT INTO groups (realm_id, name, name_folded, created_by, owner_id)
         VALUES ('beta', 'sneaky', 'sneaky', gen_random_uuid(), gen_random_uuid())",
    )
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert!(err.to_string().contains("row-level security"), "{err}");
    tx.rollback().await.unwrap();

    // Updates and deletes without a filter touch only the current realm.
    let mut tx = c.begin().await.unwrap();
    sqlx::query("SELECT set_config('pek.realm_id', 'alpha', true)")
        .execute(&mut *tx)
        .await
        .unwrap();
    let n = sqlx::query("DELETE FROM groups")
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(n, 3);
    tx.commit().await.unwrap();
    let beta = app.snapshot("groups").await;
    assert_eq!(beta.len(), 5, "beta's groups untouched");
}

/// Layer 2: the database itself refuses a parent from another realm.
#[tokio::test]
async fn composite_keys_refuse_cross_realm_parents_even_for_the_owner() {
    let app = hub().await;
    let god = app.person("god", "God", "Mode", "1").await;
    app.bootstrap_god(god).await;
    app.realm("alpha", god).await;
    app.realm("beta", god).await;
    let t = app.token(god);
    let parent = app.group("alpha", &t, "parent", None).await;

    let mut c = sqlx::PgConnection::connect(&app.database.owner_url)
        .await
        .unwrap();
    let mut tx = c.begin().await.unwrap();
    sqlx::query("SELECT set_config('pek.realm_id', 'beta', true)")
        .execute(&mut *tx)
        .await
        .unwrap();
    let err = sqlx::query(
        "INSERT INTO groups (realm_id, parent_id, name, name_folded, created_by, owner_id)
         VALUES ('beta', $1, 'child', 'child', gen_random_uuid(), gen_random_uuid())",
    )
    .bind(uuid::Uuid::parse_str(&id(&parent)).unwrap())
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("groups_realm_id_parent_id_fkey"),
        "{err}"
    );

    // And through the API: 422, nothing written.
    let before = app.snapshot("groups").await;
    let (s, b) = app
        .post(
            "/api/v1/realms/beta/groups",
            &t,
            json!({"name": "child", "parentId": id(&parent)}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(b["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not found in realm beta"));
    assert_eq!(app.snapshot("groups").await, before);
}

/// Seed 001: same name in two realms; each realm lists only its own.
#[tokio::test]
async fn same_group_name_in_two_realms_and_each_lists_only_its_own() {
    let app = hub().await;
    let god = app.person("god", "God", "Mode", "1").await;
    app.bootstrap_god(god).await;
    app.realm("worker-acme", god).await;
    let t = app.token(god);
    app.group("hub", &t, "engineering", None).await;
    app.group("worker-acme", &t, "engineering", None).await;
    let (s, b) = app.get("/api/v1/realms/hub/groups", &t).await;
    assert_eq!(s, StatusCode::OK);
    let items = b["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["realmId"], "hub");
    let (_, again) = app
        .post(
            "/api/v1/realms/hub/groups",
            &t,
            json!({"name": "engineering"}),
        )
        .await;
    assert_eq!(again["error"]["code"], "conflict");
}

/// Random data in several realms; a caller who is GOD everywhere (so permissions never
/// stop it), and realm A's own leader, applicant, invitee and former member, use realm
/// A's routes with realm B's ids: nothing of B is returned, changed or deleted.
#[tokio::test]
async fn randomized_cross_realm_guessing_never_reaches_another_realm() {
    let app = hub().await;
    let god = app.person("god", "God", "Mode", "1").await;
    app.bootstrap_god(god).await;
    let t = app.token(god);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let realms = ["r-one", "r-two", "r-three", "r-four"];
    let mut people = Vec::new();
    for i in 0..6 {
        people.push(
            app.person(&format!("p{i}"), &format!("P{i}"), "Q", "0")
                .await,
        );
    }
    // Per realm: groups (some nested), memberships, policies with statements, semesters, flags.
    let mut ids: Vec<(String, &str, String)> = Vec::new(); // (realm, kind, id)
    let mut actors: Vec<(&str, &str, String)> = Vec::new(); // (realm, role, token)
    for realm in realms {
        app.realm(realm, god).await;
        let mut groups: Vec<String> = Vec::new();
        for i in 0..rng.gen_range(3..7) {
            let parent = if !groups.is_empty() && rng.gen_bool(0.5) {
                groups.choose(&mut rng).cloned()
            } else {
                None
            };
            let g = app
                .group(realm, &t, &format!("{realm}-g{i}"), parent.as_deref())
                .await;
            groups.push(id(&g));
            ids.push((realm.to_string(), "group", id(&g)));
        }
        // One person of each kind, in random groups: a leader, an applicant (pending,
        // asked themselves), an invitee (pending, asked by the GOD) and a former member.
        let chosen: Vec<Uuid> = people[1..].choose_multiple(&mut rng, 4).copied().collect();
        for (role, p) in ["leader", "applicant", "invitee", "former"]
            .into_iter()
            .zip(chosen)
        {
            let g = groups.choose(&mut rng).unwrap();
            let m = match role {
                "leader" => app.join(realm, g, &t, p, &["leader"], "ACTIVE").await,
                "former" => app.join(realm, g, &t, p, &[], "FORMER").await,
                "invitee" => {
                    let (s, m) = app
                        .post(
                            &format!("/api/v1/realms/{realm}/groups/{g}/members"),
                            &t,
                            json!({"userId": p}),
                        )
                        .await;
                    assert_eq!(s, StatusCode::CREATED, "{m}");
                    m
                }
                _ => {
                    let (s, m) = app
                        .post(
                            &format!("/api/v1/realms/{realm}/groups/{g}/applications"),
                            &app.token(p),
                            Value::Null,
                        )
                        .await;
                    assert_eq!(s, StatusCode::CREATED, "{m}");
                    m
                }
            };
            ids.push((realm.to_string(), "membership", id(&m)));
            actors.push((realm, role, app.token(p)));
        }
        let (s, pol) = app
            .post(
                &format!("/api/v1/realms/{realm}/policies"),
                &t,
                json!({"name": "staff"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{pol}");
        let (s, st) = app
            .post(
                &format!("/api/v1/realms/{realm}/policies/{}/statements", id(&pol)),
                &t,
                json!({"groupId": groups[0], "permissions": ["viewMembers"]}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{st}");
        ids.push((realm.to_string(), "policy", id(&pol)));
        ids.push((
            realm.to_string(),
            format!("statement:{}", id(&pol)).leak(),
            id(&st),
        ));
        let (s, _) = app
            .post(
                &format!("/api/v1/realms/{realm}/assignments"),
                &t,
                json!({"userId": people[0], "policyId": id(&pol)}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        let (s, sem) = app
            .post(
                &format!("/api/v1/realms/{realm}/semesters"),
                &t,
                json!({"name": "2025/26/1", "startsOn": "2025-09-01", "endsOn": "2026-01-31", "current": true}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{sem}");
        ids.push((realm.to_string(), "semester", id(&sem)));
        let (s, _) = app
            .call(
                Method::PUT,
                &format!("/api/v1/realms/{realm}/feature-flags/{realm}-flag"),
                Some(&t),
                Some(json!({"enabled": true})),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
    }

    let tables = common::realm_tables(&app.database.owner_url).await;
    let mut before = Vec::new();
    for tbl in &tables {
        before.push(app.snapshot(tbl).await);
    }

    for a in realms {
        // Lists in A contain only A's rows.
        for path in [
            "groups?limit=200",
            "policies",
            "semesters",
            "feature-flags",
            "assignments",
        ] {
            let (s, b) = app.get(&format!("/api/v1/realms/{a}/{path}"), &t).await;
            assert_eq!(s, StatusCode::OK, "{path}: {b}");
            let items = b.get("items").cloned().unwrap_or(b.clone());
            for item in items.as_array().unwrap() {
                if let Some(r) = item.get("realmId") {
                    assert_eq!(r, a, "{path} leaked {item}");
                }
                if let Some(k) = item.get("key") {
                    assert!(k.as_str().unwrap().starts_with(a), "{path} leaked {item}");
                }
            }
        }
        // Every id of every other realm, through A's routes.
        for (realm, kind, other) in ids.iter().filter(|(r, _, _)| r != a) {
            let attempts: Vec<(Method, String, Option<Value>)> = match *kind {
                "group" => vec![
                    (Method::GET, format!("groups/{other}"), None),
                    (
                        Method::PATCH,
                        format!("groups/{other}"),
                        Some(json!({"name": "pwned"})),
                    ),
                    (
                        Method::PUT,
                        format!("groups/{other}/owner"),
                        Some(json!({"userId": god})),
                    ),
                    (Method::GET, format!("groups/{other}/members"), None),
                    (
                        Method::POST,
                        format!("groups/{other}/members"),
                        Some(json!({"userId": god})),
                    ),
                    (Method::POST, format!("groups/{other}/applications"), None),
                    (
                        Method::POST,
                        "groups".into(),
                        Some(json!({"name": format!("x-{other}"), "parentId": other})),
                    ),
                ],
                "membership" => vec![
                    (Method::GET, format!("memberships/{other}"), None),
                    (
                        Method::PATCH,
                        format!("memberships/{other}"),
                        Some(json!({"status": "ARCHIVED"})),
                    ),
                    (Method::DELETE, format!("memberships/{other}"), None),
                    (Method::POST, format!("memberships/{other}/accept"), None),
                    (Method::POST, format!("memberships/{other}/reject"), None),
                    (Method::POST, format!("memberships/{other}/withdraw"), None),
                    (Method::POST, format!("memberships/{other}/decline"), None),
                    (Method::POST, format!("memberships/{other}/leave"), None),
                ],
                "policy" => vec![
                    (Method::GET, format!("policies/{other}"), None),
                    (
                        Method::POST,
                        format!("policies/{other}/statements"),
                        Some(json!({"permissions": ["viewGroup"]})),
                    ),
                    (
                        Method::POST,
                        "assignments".into(),
                        Some(json!({"userId": god, "policyId": other})),
                    ),
                    (
                        Method::DELETE,
                        format!("assignments/{}/{other}", people[0]),
                        None,
                    ),
                    (
                        Method::POST,
                        "policies".into(),
                        Some(json!({"name": format!("child-{other}"), "parentId": other})),
                    ),
                ],
                "semester" => vec![(
                    Method::PUT,
                    "semesters/current".into(),
                    Some(json!({"semesterId": other})),
                )],
                k if k.starts_with("statement:") => {
                    let pol = &k["statement:".len()..];
                    vec![(
                        Method::DELETE,
                        format!("policies/{pol}/statements/{other}"),
                        None,
                    )]
                }
                _ => vec![],
            };
            for (m, path, body) in attempts {
                // The GOD, and one of A's own people picked at random.
                let own: Vec<&(&str, &str, String)> =
                    actors.iter().filter(|(r, _, _)| *r == a).collect();
                let (_, role, actor) = own.choose(&mut rng).expect("actors");
                for (who, token) in [("GOD", &t), (*role, actor)] {
                    let (s, b) = app
                        .call(
                            m.clone(),
                            &format!("/api/v1/realms/{a}/{path}"),
                            Some(token),
                            body.clone(),
                        )
                        .await;
                    // A's own people may also be refused outright (403) for lacking
                    // the right in A; what matters is that B's rows are never reached.
                    assert!(
                        s == StatusCode::NOT_FOUND
                            || s == StatusCode::UNPROCESSABLE_ENTITY
                            || (who != "GOD" && s == StatusCode::FORBIDDEN),
                        "{who}: {m} {a}/{path} with {realm}'s {kind} id answered {s}: {b}"
                    );
                    assert!(
                        !b.to_string().contains(&format!("\"realmId\":\"{realm}\"")),
                        "leak to {who}: {b}"
                    );
                }
            }
        }
    }
    for (tbl, rows) in tables.iter().zip(before) {
        assert_eq!(app.snapshot(tbl).await, rows, "{tbl} changed");
    }
}
