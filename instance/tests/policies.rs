//! Policies and permissions (DESIGN §4) through the HTTP API, on a real PostgreSQL.

mod common;

use axum::http::{Method, StatusCode};
use serde_json::json;

use common::{hub, id};

#[tokio::test]
async fn escalation_on_child_group_stays_in_its_realm_and_excludes_edit_rights() {
    let app = hub().await;
    let god = app.person("god", "God", "Mode", "1").await;
    let manager = app.person("mgr", "Manny", "Ger", "2").await;
    app.bootstrap_god(god).await;
    app.realm("worker-acme", god).await;
    let t = app.token(god);
    let hub_parent = app.group("hub", &t, "hub-parent", None).await;
    let acme_parent = app.group("worker-acme", &t, "worker-parent", None).await;
    // A "managers" policy in each realm that manages the realm's parent group.
    let mut policies = Vec::new();
    for (realm, parent) in [("hub", &hub_parent), ("worker-acme", &acme_parent)] {
        let (_, p) = app
            .post(
                &format!("/api/v1/realms/{realm}/policies"),
                &t,
                json!({"name": "managers"}),
            )
            .await;
        let (s, _) = app
            .post(
                &format!("/api/v1/realms/{realm}/policies/{}/statements", id(&p)),
                &t,
                json!({"groupId": id(parent), "permissions": ["editGroup", "editMembers", "viewGroup"]}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        app.assign(realm, &t, manager, &id(&p)).await;
        policies.push(id(&p));
    }
    // The manager creates a child under the hub parent.
    let mt = app.token(manager);
    let child = app
        .group("hub", &mt, "hub-child", Some(&id(&hub_parent)))
        .await;

    let (_, hub_policy) = app
        .get(&format!("/api/v1/realms/hub/policies/{}", policies[0]), &t)
        .await;
    let esc: Vec<_> = hub_policy["statements"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["escalation"] == true)
        .collect();
    assert_eq!(esc.len(), 1, "{hub_policy}");
    assert_eq!(esc[0]["groupId"], id(&child));
    let perms: Vec<&str> = esc[0]["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(perms, vec!["viewMembers", "viewGroup", "moveGroupOwner"]);

    let (_, acme_policy) = app
        .get(
            &format!("/api/v1/realms/worker-acme/policies/{}", policies[1]),
            &t,
        )
        .await;
    assert!(
        acme_policy["statements"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["escalation"] == false),
        "{acme_policy}"
    );
    // The child's creator owns it: full rights there.
    let check = |action: &str, g: &str| {
        format!("/api/v1/realms/hub/permissions?action={action}&groupId={g}")
    };
    let (_, a) = app.get(&check("evaluateScores", &id(&child)), &mt).await;
    assert_eq!(a["allowed"], true);
    // Nobody else got edit rights on the child through escalation.
    let other = app.person("other", "O", "T", "3").await;
    let (_, p) = app
        .post(
            "/api/v1/realms/hub/policies",
            &t,
            json!({"name": "viewers"}),
        )
        .await;
    app.post(
        &format!("/api/v1/realms/hub/policies/{}/statements", id(&p)),
        &t,
        json!({"groupId": id(&hub_parent), "permissions": ["editMembers"]}),
    )
    .await;
    app.assign("hub", &t, other, &id(&p)).await;
    let ot = app.token(other);
    // Created before "viewers" managed the parent: no escalation for them on `child`.
    let (_, a) = app.get(&check("moveGroupOwner", &id(&child)), &ot).await;
    assert_eq!(a["allowed"], false);
    // A child created now escalates to them too, but never edit rights.
    let child2 = app
        .group("hub", &mt, "hub-child-2", Some(&id(&hub_parent)))
        .await;
    let (_, a) = app.get(&check("moveGroupOwner", &id(&child2)), &ot).await;
    assert_eq!(a["allowed"], true);
    let (_, a) = app.get(&check("editMembers", &id(&child2)), &ot).await;
    assert_eq!(a["allowed"], false);
    let (_, a) = app.get(&check("editScores", &id(&child2)), &ot).await;
    assert_eq!(a["allowed"], false);
}

#[tokio::test]
async fn god_is_god_in_its_own_realm_only() {
    let app = hub().await;
    let god = app.person("god", "God", "Mode", "1").await;
    let local = app.person("local", "Lo", "Cal", "2").await;
    app.bootstrap_god(god).await;
    app.realm("alpha", god).await;
    app.realm("beta", god).await;
    let t = app.token(god);
    let (_, pols) = app.get("/api/v1/realms/alpha/policies", &t).await;
    let alpha_god = pols
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["isGod"] == true)
        .unwrap()
        .clone();
    app.assign("alpha", &t, local, &id(&alpha_god)).await;
    let lt = app.token(local);
    let beta_group = app.group("beta", &t, "b", None).await;
    let (s, _) = app
        .post("/api/v1/realms/alpha/groups", &lt, json!({"name": "fine"}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, b) = app
        .post("/api/v1/realms/beta/groups", &lt, json!({"name": "nope"}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert!(b["error"]["message"]
        .as_str()
        .unwrap()
        .contains("manageRealm"));
    // Beta's group is in the directory, so alpha's GOD sees it as everyone does (and
    // nothing more); once beta takes it out of the directory, not even that.
    let beta_path = format!("/api/v1/realms/beta/groups/{}", id(&beta_group));
    let (s, _) = app.get(&beta_path, &lt).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app.get(&format!("{beta_path}/members"), &lt).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, b) = app
        .call(
            Method::PATCH,
            &beta_path,
            Some(&t),
            Some(json!({"listed": false})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, _) = app.get(&beta_path, &lt).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Revoking the last GOD is refused.
    let (s, _) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/realms/beta/assignments/{god}/{}", {
                let (_, p) = app.get("/api/v1/realms/beta/policies", &t).await;
                id(p.as_array()
                    .unwrap()
                    .iter()
                    .find(|p| p["isGod"] == true)
                    .unwrap())
            }),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
}

#[tokio::test]
async fn child_policy_holds_only_a_subset_and_assigning_needs_the_right_to_issue() {
    let app = hub().await;
    let god = app.person("god", "God", "Mode", "1").await;
    let lead = app.person("lead", "Le", "Ad", "2").await;
    let rookie = app.person("rookie", "Ro", "Ok", "3").await;
    app.bootstrap_god(god).await;
    let t = app.token(god);
    let g = app.group("hub", &t, "circle", None).await;
    let (_, parent) = app
        .post("/api/v1/realms/hub/policies", &t, json!({"name": "leads"}))
        .await;
    app.post(
        &format!("/api/v1/realms/hub/policies/{}/statements", id(&parent)),
        &t,
        json!({"groupId": id(&g), "permissions": ["viewMembers", "editMembers"]}),
    )
    .await;
    let (s, child) = app
        .post(
            "/api/v1/realms/hub/policies",
            &t,
            json!({"name": "helpers", "parentId": id(&parent)}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    // Subset: fine. More than the parent: 422. Broader scope than the parent: 422.
    let stmts = format!("/api/v1/realms/hub/policies/{}/statements", id(&child));
    let (s, _) = app
        .post(
            &stmts,
            &t,
            json!({"groupId": id(&g), "permissions": ["viewMembers"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, b) = app
        .post(
            &stmts,
            &t,
            json!({"groupId": id(&g), "permissions": ["editScores"]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(b["error"]["message"]
        .as_str()
        .unwrap()
        .contains("editScores"));
    let (s, _) = app
        .post(&stmts, &t, json!({"permissions": ["viewMembers"]}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let before = app.snapshot("statements").await;

    // Issuing: lead holds "leads", so may issue "helpers" (below it) but not GOD or an unrelated policy.
    app.assign("hub", &t, lead, &id(&parent)).await;
    let lt = app.token(lead);
    let (s, b) = app
        .post(
            "/api/v1/realms/hub/assignments",
            &lt,
            json!({"userId": rookie, "policyId": id(&child)}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (_, other) = app
        .post(
            "/api/v1/realms/hub/policies",
            &t,
            json!({"name": "treasurers"}),
        )
        .await;
    let (s, _) = app
        .post(
            "/api/v1/realms/hub/assignments",
            &lt,
            json!({"userId": rookie, "policyId": id(&other)}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let rt = app.token(rookie);
    let (s, _) = app
        .post(
            "/api/v1/realms/hub/assignments",
            &rt,
            json!({"userId": god, "policyId": id(&parent)}),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "a helper cannot issue the policy above its own"
    );
    // A lead cannot widen their own policy.
    let (s, _) = app
        .post(
            &format!("/api/v1/realms/hub/policies/{}/statements", id(&parent)),
            &lt,
            json!({"permissions": ["manageRealm"]}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(app.snapshot("statements").await, before);
    // A child policy relying on a parent statement keeps it from being removed.
    let (_, p) = app
        .get(&format!("/api/v1/realms/hub/policies/{}", id(&parent)), &t)
        .await;
    let sid = p["statements"][0]["id"].as_str().unwrap().to_string();
    let (s, _) = app
        .call(
            Method::DELETE,
            &format!(
                "/api/v1/realms/hub/policies/{}/statements/{sid}",
                id(&parent)
            ),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
}

#[tokio::test]
async fn groups_tree_rules_owner_members_and_archived_parents() {
    let app = hub().await;
    let god = app.person("god", "God", "Mode", "1").await;
    let maker = app.person("maker", "Ma", "Ker", "2").await;
    let member = app.person("member", "Mem", "Ber", "3").await;
    let stranger = app.person("stranger", "Str", "Anger", "4").await;
    app.bootstrap_god(god).await;
    let t = app.token(god);
    let root = app.group("hub", &t, "root", None).await;
    // Root groups need manageRealm.
    let (s, _) = app
        .post(
            "/api/v1/realms/hub/groups",
            &app.token(maker),
            json!({"name": "mine"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Ownership goes only to a person of the realm: not yet to maker.
    let (s, b) = app
        .call(
            Method::PUT,
            &format!("/api/v1/realms/hub/groups/{}/owner", id(&root)),
            Some(&t),
            Some(json!({"userId": maker})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    // Once maker is in the realm (a member of another group), the GOD hands root's
    // ownership to maker, who then creates and fully controls a child.
    let lobby = app.group("hub", &t, "lobby", None).await;
    app.join("hub", &id(&lobby), &t, maker, &[], "NEWBIE").await;
    let (s, b) = app
        .call(
            Method::PUT,
            &format!("/api/v1/realms/hub/groups/{}/owner", id(&root)),
            Some(&t),
            Some(json!({"userId": maker})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let mt = app.token(maker);
    let child = app.group("hub", &mt, "child", Some(&id(&root))).await;
    let m = app
        .join("hub", &id(&child), &mt, member, &[], "ACTIVE")
        .await;
    let (s, dup) = app
        .post(
            &format!("/api/v1/realms/hub/groups/{}/members", id(&child)),
            &mt,
            json!({"userId": member}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{dup}");
    // Members see their group and its members; strangers see a listed group (the
    // directory) but not its members, and an unlisted one not at all.
    let (s, _) = app
        .get(
            &format!("/api/v1/realms/hub/groups/{}/members", id(&child)),
            &app.token(member),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let child_path = format!("/api/v1/realms/hub/groups/{}", id(&child));
    let (s, _) = app.get(&child_path, &app.token(stranger)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app
        .get(&format!("{child_path}/members"), &app.token(stranger))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, b) = app
        .call(
            Method::PATCH,
            &child_path,
            Some(&mt),
            Some(json!({"listed": false})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, _) = app.get(&child_path, &app.token(stranger)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/realms/hub/groups/{}", id(&child)),
            Some(&app.token(member)),
            Some(json!({"name": "mine now"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Leaving closes the membership.
    let (s, m2) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/realms/hub/memberships/{}", id(&m)),
            Some(&mt),
            Some(json!({"status": "FORMER"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(m2["until"].is_string());
    // No child under an archived parent.
    let (s, _) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/realms/hub/groups/{}", id(&child)),
            Some(&mt),
            Some(json!({"archived": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let before = app.snapshot("groups").await;
    let (s, b) = app
        .post(
            "/api/v1/realms/hub/groups",
            &mt,
            json!({"name": "late", "parentId": id(&child)}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(b["error"]["message"].as_str().unwrap().contains("archived"));
    assert_eq!(app.snapshot("groups").await, before);
}

#[tokio::test]
async fn semesters_have_one_current_and_feature_flags_are_per_realm() {
    let app = hub().await;
    let god = app.person("god", "God", "Mode", "1").await;
    app.bootstrap_god(god).await;
    let t = app.token(god);
    let (_, a) = app.post("/api/v1/realms/hub/semesters", &t, json!({"name": "2025/26/1", "startsOn": "2025-09-01", "endsOn": "2026-01-31", "current": true})).await;
    let (_, b) = app
        .post(
            "/api/v1/realms/hub/semesters",
            &t,
            json!({"name": "2025/26/2", "startsOn": "2026-02-01", "endsOn": "2026-06-30"}),
        )
        .await;
    let (s, _) = app
        .call(
            Method::PUT,
            "/api/v1/realms/hub/semesters/current",
            Some(&t),
            Some(json!({"semesterId": id(&b)})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, cur) = app.get("/api/v1/realms/hub/semesters/current", &t).await;
    assert_eq!(cur["id"], id(&b));
    let (_, all) = app.get("/api/v1/realms/hub/semesters", &t).await;
    assert_eq!(
        all.as_array()
            .unwrap()
            .iter()
            .filter(|s| s["isCurrent"] == true)
            .count(),
        1
    );
    assert_ne!(id(&a), id(&b));
    let (s, b) = app
        .post(
            "/api/v1/realms/hub/semesters",
            &t,
            json!({"name": "bad", "startsOn": "2026-02-01", "endsOn": "2026-01-01"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let (s, _) = app
        .call(
            Method::PUT,
            "/api/v1/realms/hub/feature-flags/Bad%20Key",
            Some(&t),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, f) = app
        .call(
            Method::PUT,
            "/api/v1/realms/hub/feature-flags/scoring",
            Some(&t),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(f["enabled"], false);
    // Someone outside the realm cannot read its settings.
    let out = app.person("out", "O", "Ut", "9").await;
    let (s, _) = app
        .get("/api/v1/realms/hub/feature-flags", &app.token(out))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

/// The group directory (`/api/v1/directory`): listed groups of every realm for every
/// signed-in person, in Hungarian alphabetical order, found by any word of the name in
/// any order; a realm or a group may stay out, and a group may take no applications.
#[tokio::test]
async fn the_directory_lists_every_realms_listed_groups_in_hungarian_order() {
    let app = hub().await;
    let god = app.person("god", "God", "Mode", "1").await;
    let leader = app.person("lead", "Áron", "Szabó", "2").await;
    let freshman = app.person("fresh", "Csilla", "Kovács", "3").await;
    app.bootstrap_god(god).await;
    app.realm("alpha", god).await;
    app.realm("beta", god).await;
    let t = app.token(god);
    // Names whose Hungarian order differs from a byte or accent-folded order: "Cs" is a
    // letter after "C" ("Cukor" < "Csoki"), "Ö" after "O" ("Ozmózis" < "Öböl").
    let mut made = std::collections::HashMap::new();
    for (realm, name) in [
        ("alpha", "Csoki Kör"),
        ("beta", "Cukor Kör"),
        ("alpha", "Öböl"),
        ("beta", "Ozmózis"),
        ("alpha", "Kir-Dev Web"),
        ("beta", "Zárt Kör"),
        ("beta", "Titkos Kör"),
    ] {
        made.insert(name, app.group(realm, &t, name, None).await);
    }
    let web = id(&made["Kir-Dev Web"]);
    app.join("alpha", &web, &t, leader, &["leader"], "ACTIVE")
        .await;
    for (name, patch) in [
        ("Zárt Kör", json!({"usersCanApply": false})),
        ("Titkos Kör", json!({"listed": false})),
    ] {
        let (s, b) = app
            .call(
                Method::PATCH,
                &format!("/api/v1/realms/beta/groups/{}", id(&made[name])),
                Some(&t),
                Some(patch),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    let ft = app.token(freshman);
    let names = |v: &serde_json::Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["name"].as_str().unwrap().to_string())
            .collect()
    };
    let (s, all) = app.get("/api/v1/directory", &ft).await;
    assert_eq!(s, StatusCode::OK, "{all}");
    assert_eq!(
        names(&all),
        [
            "Cukor Kör",
            "Csoki Kör",
            "Kir-Dev Web",
            "Ozmózis",
            "Öböl",
            "Zárt Kör"
        ]
    );
    // Paging by two walks the same list.
    let mut paged = Vec::new();
    let mut cursor = String::new();
    loop {
        let (s, p) = app
            .get(&format!("/api/v1/directory?limit=2{cursor}"), &ft)
            .await;
        assert_eq!(s, StatusCode::OK, "{p}");
        paged.extend(names(&p));
        match p["nextCursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(paged, names(&all));
    // Any word, any order, accents or not; the leader by name, the member count.
    for q in ["web", "WEB%20kir", "dev"] {
        let (_, found) = app.get(&format!("/api/v1/directory?q={q}"), &ft).await;
        assert_eq!(names(&found), ["Kir-Dev Web"], "{q}");
        let g = &found["items"][0];
        assert_eq!(g["memberCount"], 1);
        assert_eq!(g["realmId"], "alpha");
        assert_eq!(g["leaders"][0]["profile"]["lastName"], "Szabó");
        assert!(g["leaders"][0]["profile"].get("cellPhone").is_none(), "{g}");
    }
    let (_, found) = app.get("/api/v1/directory?q=%C3%B6b", &ft).await;
    assert_eq!(names(&found), ["Öböl"]);
    let (_, found) = app.get("/api/v1/directory?q=eb", &ft).await;
    assert_eq!(names(&found), Vec::<String>::new(), "a word's start only");
    // The freshman applies to a listed group; not to a closed or an unlisted one.
    let apply = |realm: &str, g: &serde_json::Value| {
        format!("/api/v1/realms/{realm}/groups/{}/applications", id(g))
    };
    let (s, b) = app
        .post(&apply("alpha", &made["Kir-Dev Web"]), &ft, json!(null))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = app
        .post(&apply("beta", &made["Zárt Kör"]), &ft, json!(null))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    let (s, b) = app
        .post(&apply("beta", &made["Titkos Kör"]), &ft, json!(null))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    // A realm leaves the directory as a whole.
    let (s, b) = app
        .call(
            Method::PUT,
            "/api/v1/realms/beta/feature-flags/directory.unlisted",
            Some(&t),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, all) = app.get("/api/v1/directory", &ft).await;
    assert_eq!(names(&all), ["Csoki Kör", "Kir-Dev Web", "Öböl"]);
    let (s, _) = app
        .get(
            &format!("/api/v1/realms/beta/groups/{}", id(&made["Ozmózis"])),
            &ft,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
