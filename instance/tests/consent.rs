//! Consent everywhere: no route makes a person part of a realm without them — not a
//! membership, a policy assignment, a statement, a group owner move or a status change —
//! and no realm role writes a person's global profile. On a real PostgreSQL, through the
//! HTTP API.

mod common;

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use common::{hub, id, TestApp};

/// Hub GOD `god` (a hub administrator), a hub "campus" group everyone but the stranger
/// joins (so they share the hub realm), and a hub-hosted realm `rx` with group `G`, whose
/// leader is `leader` (holding the "Group leaders" policy on G) and whose realm GOD is
/// `rgod` (not a hub administrator).
struct World {
    app: TestApp,
    god: Uuid,
    rgod: Uuid,
    leader: Uuid,
    member: Uuid,
    g: String,
    leaders_policy: String,
    god_policy: String,
}

async fn status(
    app: &TestApp,
    m: Method,
    uri: &str,
    who: Uuid,
    body: Option<Value>,
) -> (StatusCode, Value) {
    app.call(m, uri, Some(&app.token(who)), body).await
}

/// A body-less POST (accept, decline, …) as `who`.
async fn post_as(app: &TestApp, who: Uuid, uri: &str) -> (StatusCode, Value) {
    status(app, Method::POST, uri, who, None).await
}

impl World {
    async fn new() -> World {
        let app = hub().await;
        let god = app.person("god", "God", "Mode", "+36-1").await;
        app.bootstrap_god(god).await;
        app.realm("rx", god).await;
        let t = app.token(god);
        let campus = id(&app.group("hub", &t, "campus", None).await);
        let g = id(&app.group("rx", &t, "G", None).await);
        let rgod = app.person("rgod", "Realm", "God", "+36-2").await;
        let leader = app.person("leader", "Lea", "Der", "+36-3").await;
        let member = app.person("member", "Mem", "Ber", "+36-4").await;
        for u in [rgod, leader, member] {
            app.join("hub", &campus, &t, u, &[], "NEWBIE").await;
        }
        app.join("rx", &g, &t, leader, &["leader"], "ACTIVE").await;
        app.join("rx", &g, &t, member, &[], "ACTIVE").await;
        // rx's GOD policy, offered to rgod (not in rx yet), accepted by rgod.
        let (_, assignments) = app.get("/api/v1/realms/rx/assignments", &t).await;
        let god_policy = assignments[0]["policyId"]
            .as_str()
            .expect("god policy")
            .to_string();
        let (s, a) = app
            .post(
                "/api/v1/realms/rx/assignments",
                &t,
                json!({"userId": rgod, "policyId": god_policy}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{a}");
        assert!(
            a["acceptedAt"].is_null(),
            "an offer to someone outside rx: {a}"
        );
        let (s, a) = status(
            &app,
            Method::POST,
            &format!("/api/v1/realms/rx/me/policy-offers/{god_policy}/accept"),
            rgod,
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{a}");
        // "Group leaders": edit members of G and see their full profiles.
        let (_, p) = app
            .post(
                "/api/v1/realms/rx/policies",
                &t,
                json!({"name": "Group leaders"}),
            )
            .await;
        let leaders_policy = id(&p);
        let (s, b) = app
            .post(
                &format!("/api/v1/realms/rx/policies/{leaders_policy}/statements"),
                &t,
                json!({"groupId": g, "permissions": ["viewMembers", "editMembers", "viewFullProfile"]}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        let (s, a) = app
            .post(
                "/api/v1/realms/rx/assignments",
                &t,
                json!({"userId": leader, "policyId": leaders_policy}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{a}");
        assert!(
            !a["acceptedAt"].is_null(),
            "the leader is in rx: given at once: {a}"
        );
        World {
            app,
            god,
            rgod,
            leader,
            member,
            g,
            leaders_policy,
            god_policy,
        }
    }

    /// Is `user` in rx's federation table (a person of the realm)?
    async fn in_rx(&self, user: Uuid) -> bool {
        self.app
            .snapshot("realm_members")
            .await
            .iter()
            .any(|r| r.contains(&user.to_string()) && r.contains("\"realm_id\":\"rx\""))
    }

    /// How `viewer` sees `target`: Some(scope) or None (404).
    async fn sees(&self, viewer: Uuid, target: Uuid) -> Option<String> {
        let (s, v) = self
            .app
            .get(&format!("/api/v1/users/{target}"), &self.app.token(viewer))
            .await;
        if s == StatusCode::NOT_FOUND {
            return None;
        }
        assert_eq!(s, StatusCode::OK, "{v}");
        Some(v["scope"].as_str().unwrap_or_default().to_string())
    }
}

#[tokio::test]
async fn a_policy_assignment_is_an_offer_until_the_person_accepts_it() {
    let w = World::new().await;
    let app = &w.app;
    // A stranger: a hub user in no realm the realm GOD or the leader shares with them.
    let stranger = app.person("stranger", "Stran", "Ger", "+36-99").await;
    let rt = app.token(w.rgod);
    // (a) the realm GOD offers an empty policy.
    let (_, empty) = app
        .post("/api/v1/realms/rx/policies", &rt, json!({"name": "empty"}))
        .await;
    let (s, a) = app
        .post(
            "/api/v1/realms/rx/assignments",
            &rt,
            json!({"userId": stranger, "policyId": id(&empty)}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    assert!(a["acceptedAt"].is_null(), "{a}");
    // (c) the leader offers the policy he holds.
    let (s, a) = app
        .post(
            "/api/v1/realms/rx/assignments",
            &app.token(w.leader),
            json!({"userId": stranger, "policyId": w.leaders_policy}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    assert!(a["acceptedAt"].is_null(), "{a}");
    // Nothing granted, nothing exposed.
    assert!(!w.in_rx(stranger).await);
    assert_eq!(
        w.sees(w.rgod, stranger).await,
        None,
        "realm GOD must not see a stranger"
    );
    assert_eq!(w.sees(w.member, stranger).await, None);
    let (_, found) = app.get("/api/v1/users?q=stran", &app.token(w.member)).await;
    assert_eq!(found["items"].as_array().map(Vec::len), Some(0), "{found}");
    let before = app.snapshot("profiles").await;
    let (s, _) = status(
        app,
        Method::PUT,
        &format!("/api/v1/users/{stranger}/profile"),
        w.rgod,
        Some(json!({"firstName": "Owned"})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(app.snapshot("profiles").await, before);
    // The offer grants nothing: the stranger cannot edit G's members.
    let (s, _) = status(
        app,
        Method::GET,
        &format!("/api/v1/realms/rx/groups/{}/members", w.g),
        stranger,
        None,
    )
    .await;
    assert!(
        matches!(s, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
        "{s}"
    );
    // The stranger sees both offers, across realms.
    let (s, offers) = status(app, Method::GET, "/api/v1/me/policy-offers", stranger, None).await;
    assert_eq!(s, StatusCode::OK, "{offers}");
    let names: Vec<&str> = offers["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|o| o["policyName"].as_str())
        .collect();
    assert_eq!(names.len(), 2, "{offers}");
    assert!(
        names.contains(&"empty") && names.contains(&"Group leaders"),
        "{offers}"
    );
    // Declined: gone, still outside.
    let (s, _) = post_as(
        app,
        stranger,
        &format!("/api/v1/realms/rx/me/policy-offers/{}/decline", id(&empty)),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(!w.in_rx(stranger).await);
    // Someone else cannot accept it for them.
    let (s, _) = post_as(
        app,
        w.rgod,
        &format!(
            "/api/v1/realms/rx/me/policy-offers/{}/accept",
            w.leaders_policy
        ),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(!w.in_rx(stranger).await);
    // Accepted: now a person of rx; the GOD sees the full profile, the leader's rights
    // apply — and still no realm role writes the profile.
    let (s, a) = post_as(
        app,
        stranger,
        &format!(
            "/api/v1/realms/rx/me/policy-offers/{}/accept",
            w.leaders_policy
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{a}");
    assert!(w.in_rx(stranger).await);
    assert_eq!(w.sees(w.rgod, stranger).await.as_deref(), Some("full"));
    let (s, _) = status(
        app,
        Method::PUT,
        &format!("/api/v1/users/{stranger}/profile"),
        w.rgod,
        Some(json!({"firstName": "Owned"})),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "a realm GOD never writes a global profile"
    );
    assert_eq!(app.snapshot("profiles").await, before);
    let (s, offers) = status(app, Method::GET, "/api/v1/me/policy-offers", stranger, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        offers["items"].as_array().map(Vec::len),
        Some(0),
        "{offers}"
    );
}

#[tokio::test]
async fn only_the_person_and_hub_administrators_write_a_profile_and_admins_are_audited() {
    let w = World::new().await;
    let app = &w.app;
    let before = app.snapshot("profiles").await;
    // The member is a consented person of rx; rx's GOD and the leader (with a
    // viewFullProfile statement on G) see them in full but write nothing.
    assert_eq!(w.sees(w.rgod, w.member).await.as_deref(), Some("full"));
    for who in [w.rgod, w.leader] {
        let (s, b) = status(
            app,
            Method::PUT,
            &format!("/api/v1/users/{}/profile", w.member),
            who,
            Some(json!({"firstName": "Rewritten", "cellPhone": "+36-666"})),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    }
    assert_eq!(app.snapshot("profiles").await, before);
    assert!(app.snapshot("profile_audit").await.is_empty());
    // A statement naming editProfile no longer exists.
    let (s, _) = app
        .post(
            &format!("/api/v1/realms/rx/policies/{}/statements", w.leaders_policy),
            &app.token(w.god),
            json!({"groupId": w.g, "permissions": ["editProfile"]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    // The person writes their own without an audit record…
    let (s, _) = status(
        app,
        Method::PUT,
        &format!("/api/v1/users/{}/profile", w.member),
        w.member,
        Some(json!({"firstName": "Mem", "lastName": "Ber", "cellPhone": "+36-4"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(app.snapshot("profile_audit").await.is_empty());
    // …a hub administrator may, recorded with who and which fields (no values).
    let (s, v) = status(
        app,
        Method::PUT,
        &format!("/api/v1/users/{}/profile", w.member),
        w.god,
        Some(json!({"firstName": "Mem", "lastName": "Ber", "cellPhone": "+36-5"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let audit = app.snapshot("profile_audit").await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert!(audit[0].contains(&w.god.to_string()), "{audit:?}");
    assert!(audit[0].contains("\"fields\":[\"cellPhone\"]"), "{audit:?}");
    assert!(
        !audit[0].contains("+36-5"),
        "no values in the audit: {audit:?}"
    );
}

#[tokio::test]
async fn no_route_makes_a_stranger_part_of_a_realm_whoever_tries() {
    let w = World::new().await;
    let app = &w.app;
    let gt = app.token(w.god);
    let stranger = app.person("stranger", "Stran", "Ger", "+36-99").await;
    // More actors: an applicant, an invitee, a former member, another stranger.
    let applicant = app.person("applicant", "App", "Licant", "+36-5").await;
    let invitee = app.person("invitee", "In", "Vitee", "+36-6").await;
    let former = app.person("former", "For", "Mer", "+36-7").await;
    let other = app.person("other", "Oth", "Er", "+36-8").await;
    let (s, _) = post_as(
        app,
        applicant,
        &format!("/api/v1/realms/rx/groups/{}/applications", w.g),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = app
        .post(
            &format!("/api/v1/realms/rx/groups/{}/members", w.g),
            &gt,
            json!({"userId": invitee}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    app.join("rx", &w.g, &gt, former, &[], "FORMER").await;
    // The stranger's own archived membership from long ago (they consented back then).
    let archived = app.join("rx", &w.g, &gt, stranger, &[], "ARCHIVED").await;
    assert!(
        !w.in_rx(stranger).await,
        "archived: not a person of the realm"
    );
    let (_, sp) = app
        .post("/api/v1/realms/rx/policies", &gt, json!({"name": "spy"}))
        .await;
    let spy = id(&sp);
    let child = id(&app.group("rx", &gt, "child", Some(&w.g)).await);

    let actors = [
        ("leader", w.leader),
        ("realm GOD", w.rgod),
        ("hub GOD", w.god),
        ("member", w.member),
        ("applicant", applicant),
        ("invitee", invitee),
        ("former member", former),
        ("stranger", other),
    ];
    for (name, actor) in actors {
        let t = app.token(actor);
        let tries: Vec<(Method, String, Option<Value>)> = vec![
            (
                Method::POST,
                "/api/v1/realms/rx/assignments".to_string(),
                Some(json!({"userId": stranger, "policyId": w.leaders_policy})),
            ),
            (
                Method::POST,
                "/api/v1/realms/rx/assignments".to_string(),
                Some(json!({"userId": stranger, "policyId": w.god_policy})),
            ),
            (
                Method::POST,
                "/api/v1/realms/rx/assignments".to_string(),
                Some(json!({"userId": stranger, "policyId": spy})),
            ),
            (
                Method::POST,
                format!("/api/v1/realms/rx/policies/{spy}/statements"),
                Some(json!({"userId": stranger, "permissions": ["viewFullProfile"]})),
            ),
            (
                Method::PUT,
                format!("/api/v1/realms/rx/groups/{child}/owner"),
                Some(json!({"userId": stranger})),
            ),
            (
                Method::PATCH,
                format!("/api/v1/realms/rx/memberships/{}", id(&archived)),
                Some(json!({"status": "FORMER"})),
            ),
            (
                Method::PATCH,
                format!("/api/v1/realms/rx/memberships/{}", id(&archived)),
                Some(json!({"status": "ACTIVE"})),
            ),
            (
                Method::POST,
                format!("/api/v1/realms/rx/memberships/{}/accept", id(&archived)),
                None,
            ),
            (
                Method::POST,
                format!("/api/v1/realms/rx/groups/{}/members", w.g),
                Some(json!({"userId": stranger})),
            ),
        ];
        for (m, uri, body) in tries {
            let (s, b) = app.call(m.clone(), &uri, Some(&t), body).await;
            assert!(
                s.is_success() || s.is_client_error(),
                "{name}: {m} {uri} answered {s}: {b}"
            );
            assert!(
                !w.in_rx(stranger).await,
                "{name}: {m} {uri} ({s}) made the stranger part of rx: {b}"
            );
            assert_eq!(
                w.sees(w.rgod, stranger).await,
                None,
                "{name}: {m} {uri}: the realm GOD sees the stranger"
            );
        }
    }
    // The owner move names what is wrong.
    let (s, b) = app
        .call(
            Method::PUT,
            &format!("/api/v1/realms/rx/groups/{child}/owner"),
            Some(&gt),
            Some(json!({"userId": stranger})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    // What waits for the stranger shows on their own list: the invitation and the offer
    // to bring the archived membership back, in a realm they are not in.
    let (s, mine) = status(app, Method::GET, "/api/v1/me/groups", stranger, None).await;
    assert_eq!(s, StatusCode::OK, "{mine}");
    let items = mine["items"].as_array().expect("items");
    assert!(
        items
            .iter()
            .any(|m| m["status"] == "INVITED" && m["realmId"] == "rx"),
        "{mine}"
    );
    assert!(
        items
            .iter()
            .any(|m| m["status"] == "ARCHIVED" && !m["reopenOfferedAt"].is_null()),
        "{mine}"
    );
    // The stranger's decision: bringing the archived membership back makes them a former
    // member, so a person of rx.
    let (s, m) = post_as(
        app,
        stranger,
        &format!("/api/v1/realms/rx/memberships/{}/accept", id(&archived)),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{m}");
    assert_eq!(m["status"], "FORMER");
    assert!(w.in_rx(stranger).await);
}

#[tokio::test]
async fn declining_a_reopen_offer_keeps_the_membership_archived() {
    let w = World::new().await;
    let app = &w.app;
    let gt = app.token(w.god);
    let p = app.person("old", "Old", "Timer", "+36-9").await;
    let m = app.join("rx", &w.g, &gt, p, &[], "ARCHIVED").await;
    let (s, b) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/realms/rx/memberships/{}", id(&m)),
            Some(&gt),
            Some(json!({"status": "FORMER"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["status"], "ARCHIVED");
    assert!(!b["reopenOfferedAt"].is_null(), "{b}");
    assert!(!w.in_rx(p).await);
    let (s, _) = post_as(
        app,
        p,
        &format!("/api/v1/realms/rx/memberships/{}/decline", id(&m)),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, b) = status(
        app,
        Method::GET,
        &format!("/api/v1/realms/rx/memberships/{}", id(&m)),
        p,
        None,
    )
    .await;
    assert_eq!(b["status"], "ARCHIVED");
    assert!(b["reopenOfferedAt"].is_null(), "{b}");
    assert!(!w.in_rx(p).await);
    let (s, _) = post_as(
        app,
        p,
        &format!("/api/v1/realms/rx/memberships/{}/accept", id(&m)),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "nothing left to accept");
}

#[tokio::test]
async fn unknown_people_are_refused_and_the_last_god_stays() {
    let w = World::new().await;
    let app = &w.app;
    let gt = app.token(w.god);
    let nobody = Uuid::new_v4();
    let (s, b) = app
        .post(
            "/api/v1/realms/rx/assignments",
            &gt,
            json!({"userId": nobody, "policyId": w.leaders_policy}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let (s, b) = app
        .call(
            Method::PUT,
            &format!("/api/v1/realms/rx/groups/{}/owner", w.g),
            Some(&gt),
            Some(json!({"userId": nobody})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("does not exist"),
        "{b}"
    );
    // rx has two GODs (god, who created it, and rgod): one may go, the last may not.
    let (s, b) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/realms/rx/assignments/{}/{}", w.rgod, w.god_policy),
            Some(&gt),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    let (s, b) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/realms/rx/assignments/{}/{}", w.god, w.god_policy),
            Some(&gt),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    // An empty administrators list does not leave a realm without a GOD either.
    let mut tx = app
        .db
        .realm(&pek::realm::RealmId::parse("rx").expect("id"))
        .await
        .expect("tx");
    pek::policy::reconcile_config_gods(&mut tx, &[w.god])
        .await
        .expect("configured");
    pek::policy::reconcile_config_gods(&mut tx, &[])
        .await
        .expect("emptied");
    tx.commit().await.expect("commit");
    let (s, a) = app.get("/api/v1/realms/rx/assignments", &gt).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        a.as_array()
            .expect("list")
            .iter()
            .any(|x| x["policyId"] == w.god_policy.as_str() && !x["acceptedAt"].is_null()),
        "{a}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn patch_racing_delete_never_answers_500() {
    let w = World::new().await;
    let app = &w.app;
    let gt = app.token(w.god);
    let (s, b) = app
        .post(
            &format!("/api/v1/realms/rx/groups/{}/posts", w.g),
            &gt,
            json!({"name": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for i in 0..40 {
        let p = app.person(&format!("racer{i}"), "Ra", "Cer", "+36-0").await;
        let m = app.join("rx", &w.g, &gt, p, &[], "ACTIVE").await;
        let uri = format!("/api/v1/realms/rx/memberships/{}", id(&m));
        let body = if i % 2 == 0 {
            json!({"posts": ["x"]})
        } else {
            json!({"status": "FORMER"})
        };
        let (a, b) = tokio::join!(
            app.call(Method::PATCH, &uri, Some(&gt), Some(body)),
            app.call(Method::DELETE, &uri, Some(&gt), None)
        );
        for (s, v) in [a, b] {
            assert!(s != StatusCode::INTERNAL_SERVER_ERROR, "{uri}: {v}");
            *statuses.entry(s.as_u16()).or_default() += 1;
        }
    }
    eprintln!("statuses: {statuses:?}");
}
