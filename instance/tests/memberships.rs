//! Memberships need the person's consent, and realms have administrators from
//! configuration; on a real PostgreSQL, through the HTTP API.

mod common;

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use common::{hub, id, TestApp};

/// Profile fields only a full profile may carry.
const FULL_ONLY: [&str; 6] = [
    "cellPhone",
    "room",
    "dormitory",
    "gender",
    "studentStatus",
    "externalAccounts",
];

fn msg(b: &Value) -> String {
    b["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// How `viewer` sees `target` through the hub: `Some("full" | "basic")`, or None (404).
/// A basic answer must not carry any full-profile field.
async fn scope(app: &TestApp, viewer: Uuid, target: Uuid) -> Option<String> {
    let (s, v) = app
        .get(&format!("/api/v1/users/{target}"), &app.token(viewer))
        .await;
    if s == StatusCode::NOT_FOUND {
        return None;
    }
    assert_eq!(s, StatusCode::OK, "{v}");
    let scope = v["scope"].as_str().expect("scope").to_string();
    if scope != "full" {
        for f in FULL_ONLY {
            assert!(v["profile"].get(f).is_none(), "basic view carries {f}: {v}");
        }
    }
    Some(scope)
}

/// The hub GOD `god`, a hub "campus" group everyone joins (so everybody shares the hub
/// realm and sees at least basic profiles), and a hub-hosted realm `rx` with group `G`.
struct Setup {
    app: TestApp,
    god: Uuid,
    campus: String,
    g: String,
}

impl Setup {
    async fn new() -> Setup {
        let app = hub().await;
        let god = app.person("god", "God", "Mode", "1").await;
        app.bootstrap_god(god).await;
        app.realm("rx", god).await;
        let t = app.token(god);
        let campus = id(&app.group("hub", &t, "campus", None).await);
        let g = id(&app.group("rx", &t, "G", None).await);
        Setup {
            app,
            god,
            campus,
            g,
        }
    }

    fn t(&self) -> String {
        self.app.token(self.god)
    }

    /// A person with a full profile, in campus (consented NEWBIE).
    async fn person(&self, sub: &str) -> Uuid {
        let u = self
            .app
            .person(sub, sub, "Person", &format!("+36-{sub}"))
            .await;
        self.app
            .join("hub", &self.campus, &self.t(), u, &[], "NEWBIE")
            .await;
        u
    }

    /// A policy in `rx` with one statement, assigned to `to` (who accepts it when it is
    /// an offer, i.e. when they are not yet a person of `rx`).
    async fn policy(&self, name: &str, statement: Value, to: Uuid) -> String {
        let t = self.t();
        let (s, p) = self
            .app
            .post("/api/v1/realms/rx/policies", &t, json!({ "name": name }))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{p}");
        let (s, b) = self
            .app
            .post(
                &format!("/api/v1/realms/rx/policies/{}/statements", id(&p)),
                &t,
                statement,
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        let (s, b) = self
            .app
            .post(
                "/api/v1/realms/rx/assignments",
                &t,
                json!({"userId": to, "policyId": id(&p)}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        if b["acceptedAt"].is_null() {
            let (s, b) = self
                .app
                .call(
                    Method::POST,
                    &format!("/api/v1/realms/rx/me/policy-offers/{}/accept", id(&p)),
                    Some(&self.app.token(to)),
                    None,
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{b}");
        }
        id(&p)
    }

    async fn invite(&self, by: &str, group: &str, user: Uuid) -> (StatusCode, Value) {
        self.app
            .post(
                &format!("/api/v1/realms/rx/groups/{group}/members"),
                by,
                json!({ "userId": user }),
            )
            .await
    }

    async fn act(&self, who: Uuid, membership: &str, action: &str) -> (StatusCode, Value) {
        self.app
            .call(
                Method::POST,
                &format!("/api/v1/realms/rx/memberships/{membership}/{action}"),
                Some(&self.app.token(who)),
                None,
            )
            .await
    }

    async fn patch(&self, by: &str, membership: &str, body: Value) -> (StatusCode, Value) {
        self.app
            .call(
                Method::PATCH,
                &format!("/api/v1/realms/rx/memberships/{membership}"),
                Some(by),
                Some(body),
            )
            .await
    }

    /// In `r`, as `viewer`: the targets whose full profile the realm allows.
    async fn realm_full(&self, viewer: Uuid, targets: &[Uuid]) -> BTreeSet<Uuid> {
        let (s, b) = self
            .app
            .post(
                "/api/v1/realms/rx/profile-access",
                &self.app.token(viewer),
                json!({ "users": targets }),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let from_access: BTreeSet<Uuid> = b["viewFull"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().parse().unwrap())
            .collect();
        // The single check answers the same.
        for t in targets {
            let (s, b) = self
                .app
                .get(
                    &format!("/api/v1/realms/rx/permissions?action=viewFullProfile&userId={t}"),
                    &self.app.token(viewer),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{b}");
            assert_eq!(
                b["allowed"].as_bool().unwrap(),
                from_access.contains(t),
                "permissions and profile-access disagree on {t}"
            );
        }
        from_access
    }
}

#[tokio::test]
async fn a_leader_can_no_longer_add_a_stranger_and_read_their_full_profile() {
    let w = Setup::new().await;
    let leader = w.person("leader").await;
    let victim = w.person("victim").await;
    // The leader may see the full profiles of the group's members and edit its members.
    w.policy(
        "leaders",
        json!({"groupId": w.g, "permissions": ["viewFullProfile", "editMembers"]}),
        leader,
    )
    .await;
    w.app
        .join("rx", &w.g, &w.t(), leader, &["leader"], "ACTIVE")
        .await;
    let lt = w.app.token(leader);

    // Adding someone is only an invitation now; a status cannot be forced on them.
    let (s, b) = w
        .app
        .post(
            &format!("/api/v1/realms/rx/groups/{}/members", w.g),
            &lt,
            json!({"userId": victim, "status": "ACTIVE"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let (s, m) = w.invite(&lt, &w.g, victim).await;
    assert_eq!(s, StatusCode::CREATED, "{m}");
    assert_eq!(m["status"], "INVITED");
    let mid = id(&m);
    assert_eq!(
        scope(&w.app, leader, victim).await.as_deref(),
        Some("basic")
    );
    assert!(w.realm_full(leader, &[victim]).await.is_empty());
    // A pending invitee is not in the realm at all.
    let (s, _) = w
        .app
        .get("/api/v1/realms/rx/semesters", &w.app.token(victim))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // With the person's consent the statement covers them...
    let (s, b) = w.act(victim, &mid, "accept").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["status"], "NEWBIE");
    assert_eq!(scope(&w.app, leader, victim).await.as_deref(), Some("full"));
    // ... while they are a current member: not once they have left.
    let (s, b) = w.act(victim, &mid, "leave").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["status"], "FORMER");
    assert!(b["until"].is_string(), "{b}");
    assert_eq!(
        scope(&w.app, leader, victim).await.as_deref(),
        Some("basic")
    );
    // And the leader cannot make them current again without them.
    let (s, b) = w.patch(&lt, &mid, json!({"status": "ACTIVE"})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert_eq!(
        scope(&w.app, leader, victim).await.as_deref(),
        Some("basic")
    );
}

/// Every viewer × every target × every membership state: a full-profile field only with
/// viewFullProfile that rests on the person's consent.
#[tokio::test]
async fn profile_matrix_shows_full_profiles_only_with_consent() {
    let w = Setup::new().await;
    let t = w.t();
    let h = id(&w.app.group("rx", &t, "H", None).await);
    // Viewers.
    let rgod = w.person("rgod").await; // GOD of r (not of the hub realm)
    let leader = w.person("lead").await; // viewFullProfile on G's members by policy
    let comember = w.person("comember").await; // ACTIVE in G, no statement
    let outsider = w.person("outsider").await; // in r through another group
    let stranger = w.person("stranger").await; // not in r
    let (_, pols) = w.app.get("/api/v1/realms/rx/policies", &t).await;
    let god_policy = pols
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["isGod"] == true)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, b) = w
        .app
        .post(
            "/api/v1/realms/rx/assignments",
            &t,
            json!({"userId": rgod, "policyId": god_policy}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    // rgod is not in rx yet: the GOD role is an offer they take on.
    let (s, b) = w
        .app
        .call(
            Method::POST,
            &format!("/api/v1/realms/rx/me/policy-offers/{god_policy}/accept"),
            Some(&w.app.token(rgod)),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    w.policy(
        "leaders",
        json!({"groupId": w.g, "permissions": ["viewFullProfile"]}),
        leader,
    )
    .await;
    w.app
        .join("rx", &w.g, &t, leader, &["leader"], "ACTIVE")
        .await;
    w.app.join("rx", &w.g, &t, comember, &[], "ACTIVE").await;
    w.app.join("rx", &h, &t, outsider, &[], "ACTIVE").await;

    // Targets, one per state of their membership in G.
    let mut targets: Vec<(&str, Uuid)> = Vec::new();
    for state in [
        "APPLIED", "INVITED", "NEWBIE", "ACTIVE", "FORMER", "ARCHIVED", "none",
    ] {
        let u = w.person(&format!("t-{}", state.to_lowercase())).await;
        match state {
            "APPLIED" => {
                let (s, b) = w
                    .app
                    .post(
                        &format!("/api/v1/realms/rx/groups/{}/applications", w.g),
                        &w.app.token(u),
                        Value::Null,
                    )
                    .await;
                assert_eq!(s, StatusCode::CREATED, "{b}");
                assert_eq!(b["status"], "APPLIED");
            }
            "INVITED" => {
                let (s, b) = w.invite(&t, &w.g, u).await;
                assert_eq!(s, StatusCode::CREATED, "{b}");
            }
            "none" => {}
            s => {
                w.app.join("rx", &w.g, &t, u, &[], s).await;
            }
        }
        targets.push((state, u));
    }
    let all: Vec<Uuid> = targets.iter().map(|(_, u)| *u).collect();
    let full_for = |states: &[&str]| -> BTreeSet<Uuid> {
        targets
            .iter()
            .filter(|(s, _)| states.contains(s))
            .map(|(_, u)| *u)
            .collect()
    };
    // GOD: the realm's people (consented, not archived); the leader's group statement:
    // current members only; nobody else.
    let expected = [
        ("GOD of r", rgod, full_for(&["NEWBIE", "ACTIVE", "FORMER"])),
        ("leader", leader, full_for(&["NEWBIE", "ACTIVE"])),
        ("co-member", comember, BTreeSet::new()),
        ("outsider", outsider, BTreeSet::new()),
        ("stranger", stranger, BTreeSet::new()),
    ];
    for (who, viewer, full) in &expected {
        assert_eq!(
            &w.realm_full(*viewer, &all).await,
            full,
            "{who}: realm r's answer"
        );
        for (state, target) in &targets {
            let want = if full.contains(target) {
                "full"
            } else {
                "basic"
            };
            assert_eq!(
                scope(&w.app, *viewer, *target).await.as_deref(),
                Some(want),
                "{who} viewing the {state} member"
            );
        }
    }
}

#[tokio::test]
async fn the_membership_lifecycle_allows_only_its_transitions() {
    let w = Setup::new().await;
    let t = w.t();
    let leader = w.person("leader").await;
    let ann = w.person("ann").await;
    let other = w.person("other").await;
    let leader_membership = id(&w
        .app
        .join("rx", &w.g, &t, leader, &["leader"], "ACTIVE")
        .await);
    let lt = w.app.token(leader);
    let at = w.app.token(ann);
    let apply = |who: String| {
        let app = &w.app;
        let g = w.g.clone();
        async move {
            app.post(
                &format!("/api/v1/realms/rx/groups/{g}/applications"),
                &who,
                Value::Null,
            )
            .await
        }
    };

    // Apply, apply again (409), withdraw (only the person), apply again.
    let (s, m) = apply(at.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{m}");
    assert_eq!(
        (m["status"].as_str(), m["userId"].as_str()),
        (Some("APPLIED"), Some(ann.to_string().as_str()))
    );
    let mid = id(&m);
    let (s, b) = apply(at.clone()).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert!(msg(&b).contains("already applied"), "{b}");
    let (s, b) = w.act(leader, &mid, "withdraw").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    let (s, b) = w.act(ann, &mid, "decline").await;
    assert_eq!(
        s,
        StatusCode::CONFLICT,
        "an application is not an invitation: {b}"
    );
    let (s, b) = w.act(ann, &mid, "withdraw").await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    let (s, _) = w
        .app
        .get(&format!("/api/v1/realms/rx/memberships/{mid}"), &at)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, m) = apply(at.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{m}");
    let mid = id(&m);

    // Nobody accepts their own application; a pending membership is not patched.
    let (s, b) = w.act(ann, &mid, "accept").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    let (s, b) = w.patch(&lt, &mid, json!({"status": "ACTIVE"})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    let (s, b) = w.act(ann, &mid, "leave").await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    // The leader accepts (→ NEWBIE); twice is a conflict.
    let (s, b) = w.act(leader, &mid, "accept").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["status"], "NEWBIE");
    let (s, b) = w.act(leader, &mid, "accept").await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    let (s, b) = w.act(leader, &mid, "reject").await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");

    // NEWBIE → ACTIVE; no skipping, no way back to NEWBIE or to pending.
    let steps = |list: &'static [(&'static str, StatusCode)]| {
        let (w, lt, mid) = (&w, lt.clone(), mid.clone());
        async move {
            for (to, want) in list {
                let (s, b) = w.patch(&lt, &mid, json!({ "status": to })).await;
                assert_eq!(s, *want, "→ {to}: {b}");
                if s == StatusCode::OK {
                    assert_eq!(b["status"], *to);
                    let closed = matches!(*to, "FORMER" | "ARCHIVED");
                    assert_eq!(b["until"].is_string(), closed, "until after → {to}: {b}");
                }
            }
        }
    };
    steps(&[
        ("ARCHIVED", StatusCode::CONFLICT),
        ("APPLIED", StatusCode::UNPROCESSABLE_ENTITY),
        ("INVITED", StatusCode::UNPROCESSABLE_ENTITY),
        ("ACTIVE", StatusCode::OK),
        ("NEWBIE", StatusCode::CONFLICT),
        ("ARCHIVED", StatusCode::CONFLICT),
    ])
    .await;
    // The member may not change their own status; posts change without a status.
    let (s, b) = w.patch(&at, &mid, json!({"status": "FORMER"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    let (s, b) = w
        .app
        .post(
            &format!("/api/v1/realms/rx/groups/{}/posts", w.g),
            &lt,
            json!({"name": "gazdaságis"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = w.patch(&lt, &mid, json!({"posts": ["gazdaságis"]})).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["posts"], json!(["gazdaságis"]));
    assert_eq!(b["status"], "ACTIVE");
    // Leaving: only the person, only from a current membership.
    let (s, b) = w.act(leader, &mid, "leave").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    // The group's only leader does not leave it leaderless: the post is handed over first.
    let (s, b) = w.act(leader, &leader_membership, "leave").await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert!(msg(&b).contains("only leader"), "{b}");
    let (s, b) = w.act(ann, &mid, "leave").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["status"], "FORMER");
    let (s, b) = w.act(ann, &mid, "leave").await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    // FORMER → ARCHIVED; nobody but the person brings them back to a current status,
    // and ARCHIVED → FORMER is only offered to the person.
    steps(&[
        ("ACTIVE", StatusCode::CONFLICT),
        ("NEWBIE", StatusCode::CONFLICT),
        ("ARCHIVED", StatusCode::OK),
        ("ACTIVE", StatusCode::CONFLICT),
    ])
    .await;
    let (s, b) = w.patch(&lt, &mid, json!({"status": "FORMER"})).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["status"], "ARCHIVED", "an offer, not a change: {b}");
    assert!(b["reopenOfferedAt"].is_string(), "{b}");
    let (s, b) = w.act(leader, &mid, "accept").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    let (s, b) = w.act(ann, &mid, "accept").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["status"], "FORMER");
    assert!(b["reopenOfferedAt"].is_null(), "{b}");
    steps(&[("ACTIVE", StatusCode::CONFLICT)]).await;
    // Coming back is a new application: a new membership beside the old one.
    let (s, m) = apply(at.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{m}");
    assert_ne!(id(&m), mid);
    let (s, b) = w.act(leader, &id(&m), "accept").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, mine) = w.app.get("/api/v1/realms/rx/me/memberships", &at).await;
    let statuses: BTreeSet<&str> = mine
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, BTreeSet::from(["FORMER", "NEWBIE"]), "{mine}");

    // Invitations: only the invitee accepts or declines; a second one is a conflict;
    // the leader may cancel one (DELETE); an unknown user cannot be invited.
    let (s, m) = w.invite(&lt, &w.g, other).await;
    assert_eq!(s, StatusCode::CREATED, "{m}");
    let inv = id(&m);
    let (s, b) = w.invite(&lt, &w.g, other).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    let (s, b) = w.act(leader, &inv, "accept").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    let (s, b) = w.act(leader, &inv, "decline").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    let (s, b) = w.act(other, &inv, "withdraw").await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    let (s, b) = w.act(other, &inv, "decline").await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    let (s, m) = w.invite(&lt, &w.g, other).await;
    assert_eq!(s, StatusCode::CREATED, "{m}");
    let (s, b) = w
        .app
        .call(
            Method::DELETE,
            &format!("/api/v1/realms/rx/memberships/{}", id(&m)),
            Some(&lt),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    let before = w.app.snapshot("memberships").await;
    let (s, b) = w.invite(&lt, &w.g, Uuid::new_v4()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(msg(&b).contains("does not exist"), "{b}");
    // Someone without editMembers cannot invite, accept or reject.
    let (s, m) = apply(w.app.token(other)).await;
    assert_eq!(s, StatusCode::CREATED, "{m}");
    let (s, b) = w.invite(&at, &w.g, leader).await;
    assert!(
        s == StatusCode::FORBIDDEN || s == StatusCode::NOT_FOUND,
        "{s} {b}"
    );
    let (s, b) = w.act(ann, &id(&m), "reject").await;
    assert!(
        s == StatusCode::FORBIDDEN || s == StatusCode::NOT_FOUND,
        "{s} {b}"
    );
    let (s, b) = w.act(leader, &id(&m), "reject").await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    assert_eq!(w.app.snapshot("memberships").await, before);

    // An archived group takes no applications or invitations.
    let (s, _) = w
        .app
        .call(
            Method::PATCH,
            &format!("/api/v1/realms/rx/groups/{}", w.g),
            Some(&t),
            Some(json!({"archived": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = apply(w.app.token(other)).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert!(msg(&b).contains("archived"), "{b}");
    let (s, b) = w.invite(&lt, &w.g, other).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
}

#[tokio::test]
async fn pending_memberships_are_seen_only_by_the_person_and_view_members_holders() {
    let w = Setup::new().await;
    let t = w.t();
    let leader = w.person("leader").await;
    let applicant = w.person("applicant").await;
    let outsider = w.person("outsider").await;
    let h = id(&w.app.group("rx", &t, "H", None).await);
    w.app
        .join("rx", &w.g, &t, leader, &["leader"], "ACTIVE")
        .await;
    w.app.join("rx", &h, &t, outsider, &[], "ACTIVE").await;
    let pt = w.app.token(applicant);
    let (s, m) = w
        .app
        .post(
            &format!("/api/v1/realms/rx/groups/{}/applications", w.g),
            &pt,
            Value::Null,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{m}");
    let mid = id(&m);
    let members_url = format!("/api/v1/realms/rx/groups/{}/members", w.g);
    let ids_in = |b: &Value| -> Vec<String> {
        b["items"]
            .as_array()
            .map(|a| a.iter().map(id).collect())
            .unwrap_or_default()
    };

    // The person: their application, their memberships, the group itself — not its
    // member list, and nothing realm-wide (they are not in the realm yet).
    let (s, b) = w
        .app
        .get(&format!("/api/v1/realms/rx/memberships/{mid}"), &pt)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = w.app.get("/api/v1/realms/rx/me/memberships", &pt).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b.as_array().unwrap().len(), 1, "{b}");
    assert_eq!(b[0]["status"], "APPLIED");
    let (s, _) = w
        .app
        .get(&format!("/api/v1/realms/rx/groups/{}", w.g), &pt)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = w.app.get(&members_url, &pt).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = w.app.get("/api/v1/realms/rx/semesters", &pt).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // The group's viewMembers holders (the leader, the GOD) see it.
    for viewer in [&w.app.token(leader), &t] {
        let (s, b) = w.app.get(&members_url, viewer).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert!(ids_in(&b).contains(&mid), "{b}");
    }
    // Others in the realm do not.
    let ot = w.app.token(outsider);
    let (s, _) = w
        .app
        .get(&format!("/api/v1/realms/rx/memberships/{mid}"), &ot)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = w.app.get(&members_url, &ot).await;
    assert!(
        s == StatusCode::FORBIDDEN || s == StatusCode::NOT_FOUND,
        "{s}"
    );
    // The federation table does not have the applicant in r until accepted.
    let in_r = |rows: Vec<String>| {
        rows.iter()
            .any(|r| r.contains(&applicant.to_string()) && r.contains("\"realm_id\":\"rx\""))
    };
    assert!(!in_r(w.app.snapshot("realm_members").await));
    let (s, b) = w.act(leader, &mid, "accept").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(in_r(w.app.snapshot("realm_members").await));
    let (s, _) = w.app.get("/api/v1/realms/rx/semesters", &pt).await;
    assert_eq!(s, StatusCode::OK);
}

async fn app_with_admins(database: &localpg::Database, admins: &[&str]) -> TestApp {
    let signer = pek::auth::Signer::generate("pek-hub", "pek").expect("key");
    let key = std::env::temp_dir().join(format!("pek-test-{}.pem", Uuid::new_v4()));
    std::fs::write(&key, signer.public_pem()).expect("write key");
    let args = pek::config::ServeArgs {
        realm_admins: admins.iter().map(|a| a.to_string()).collect(),
        ..common::args(database, pek::config::Mode::Hub, None, key)
    };
    let (_state, router) = pek::app::build(&args).await.expect("build app");
    let db = pek::db::Db::connect(&database.app_url, 5)
        .await
        .expect("connect");
    TestApp {
        router,
        db,
        signer,
        database: database.clone(),
        audience: "pek".to_string(),
    }
}

/// (user, fromConfig) of the hub realm's GOD grants.
async fn hub_gods(app: &TestApp) -> BTreeSet<(Uuid, bool)> {
    let mut tx = app.db.realm(&pek::realm::RealmId::hub()).await.unwrap();
    let god = pek::policy::god_policy(&mut tx).await.unwrap();
    let out = pek::policy::list_assignments(&mut tx, None)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.policy_id == god)
        .map(|a| (a.user_id, a.from_config))
        .collect();
    tx.commit().await.unwrap();
    out
}

#[tokio::test]
async fn configured_admins_hold_god_and_lose_only_what_the_configuration_gave() {
    let pg = localpg::LocalPostgres::shared().expect("postgres");
    let database = pg.fresh_database().await.expect("database");
    // "boss" has never logged in; blanks are ignored.
    let app = app_with_admins(&database, &["boss", " ", "deputy"]).await;
    let (boss, deputy) = {
        let mut g = app.db.global().await.unwrap();
        let boss = pek::profile::ensure_user(&mut g, "boss").await.unwrap();
        let deputy = pek::profile::ensure_user(&mut g, "deputy").await.unwrap();
        g.commit().await.unwrap();
        (boss, deputy)
    };
    assert!(
        app.snapshot("users")
            .await
            .iter()
            .any(|u| u.contains("\"auth_sch_id\":\"boss\"") && u.contains("\"last_login\":null")),
        "a user row for the never-logged-in admin"
    );
    assert_eq!(
        hub_gods(&app).await,
        BTreeSet::from([(boss, true), (deputy, true)])
    );
    // At first login the same user comes back, and is GOD of the hub realm.
    let first_login = {
        let mut g = app.db.global().await.unwrap();
        let id = pek::profile::upsert_user(&mut g, "boss").await.unwrap();
        g.commit().await.unwrap();
        id
    };
    assert_eq!(first_login, boss);
    let bt = app.token(boss);
    let (s, b) = app
        .post(
            "/api/v1/realms",
            &bt,
            json!({"id": "made-by-boss", "displayName": "Boss's"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    // Boss hands GOD to a helper by hand, and re-grants deputy's by hand (it becomes a
    // hand grant). A configured grant cannot be revoked through the API.
    let helper = app.person("helper", "Help", "Er", "1").await;
    let god_policy = {
        let mut tx = app.db.realm(&pek::realm::RealmId::hub()).await.unwrap();
        let p = pek::policy::god_policy(&mut tx).await.unwrap();
        tx.commit().await.unwrap();
        p
    };
    for u in [helper, deputy] {
        let (s, b) = app
            .post(
                "/api/v1/realms/hub/assignments",
                &bt,
                json!({"userId": u, "policyId": god_policy}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    // The helper was in no hub group: the grant is an offer until they take it on.
    let (s, b) = app
        .call(
            Method::POST,
            &format!("/api/v1/realms/hub/me/policy-offers/{god_policy}/accept"),
            Some(&app.token(helper)),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = app
        .post(
            "/api/v1/realms/hub/assignments",
            &bt,
            json!({"userId": helper, "policyId": god_policy}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    let (s, b) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/realms/hub/assignments/{boss}/{god_policy}"),
            Some(&app.token(helper)),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert!(msg(&b).contains("PEK_REALM_ADMINS"), "{b}");
    assert_eq!(
        hub_gods(&app).await,
        BTreeSet::from([(boss, true), (deputy, false), (helper, false)])
    );

    // Restart with an empty list: exactly boss's configured grant goes.
    let app = app_with_admins(&database, &[]).await;
    assert_eq!(
        hub_gods(&app).await,
        BTreeSet::from([(deputy, false), (helper, false)])
    );
    let (s, _) = app
        .post(
            "/api/v1/realms",
            &app.token(boss),
            json!({"id": "boss-again", "displayName": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Listed again (and idempotent over two starts).
    app_with_admins(&database, &["boss"]).await;
    let app = app_with_admins(&database, &["boss"]).await;
    assert_eq!(
        hub_gods(&app).await,
        BTreeSet::from([(boss, true), (deputy, false), (helper, false)])
    );
}

/// An invitation of `user` into kir-dev's group `g`, written straight into the database
/// (a worker without a hub refuses invitations through its API).
async fn invited_by_sql(su: &mut sqlx::PgConnection, g: &str, user: Uuid) {
    sqlx::query(
        "INSERT INTO memberships (realm_id, group_id, user_id, status)
         VALUES ('kir-dev', $1, $2, 'INVITED')",
    )
    .bind(Uuid::parse_str(g).unwrap())
    .bind(user)
    .execute(su)
    .await
    .unwrap();
}

/// A worker's outbox rows for `user`: (member, pending), in order.
async fn outbox(su: &mut sqlx::PgConnection, user: Uuid) -> Vec<(bool, bool)> {
    sqlx::query_as("SELECT member, pending FROM federation_outbox WHERE user_id = $1 ORDER BY seq")
        .bind(user)
        .fetch_all(su)
        .await
        .unwrap()
}

/// A worker's outbox reports consented memberships only: an invitation or application
/// writes nothing; its acceptance reports the person as in the realm. And a worker that
/// cannot ask the hub refuses invitations instead of taking any user id.
#[tokio::test]
async fn a_workers_outbox_reports_pending_memberships_as_pending_never_as_members() {
    use sqlx::Connection;
    let app = common::app(pek::config::Mode::Worker, Some("kir-dev")).await;
    let god = Uuid::new_v4();
    pek::realm::ensure_local(&app.db, &"kir-dev".parse().unwrap(), "Kir-Dev", Some(god))
        .await
        .unwrap();
    let t = app.token(god);
    let g = id(&app.group("kir-dev", &t, "Kör", None).await);
    let (s, b) = app
        .post(
            &format!("/api/v1/realms/kir-dev/groups/{g}/members"),
            &t,
            json!({"userId": Uuid::new_v4()}),
        )
        .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{b}");
    assert!(msg(&b).contains("PEK_HUB_URL"), "{b}");

    let mut su = sqlx::PgConnection::connect(&app.database.superuser_url)
        .await
        .unwrap();
    let (invitee, applicant) = (Uuid::new_v4(), Uuid::new_v4());
    let (s, m) = app
        .post(
            &format!("/api/v1/realms/kir-dev/groups/{g}/applications"),
            &app.token(applicant),
            Value::Null,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{m}");
    let applied = id(&m);
    invited_by_sql(&mut su, &g, invitee).await;
    assert_eq!(outbox(&mut su, invitee).await, vec![(false, true)]);
    assert_eq!(outbox(&mut su, applicant).await, vec![(false, true)]);
    // Withdrawn: still nothing to report.
    let (s, b) = app
        .call(
            Method::POST,
            &format!("/api/v1/realms/kir-dev/memberships/{applied}/withdraw"),
            Some(&app.token(applicant)),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    assert_eq!(
        outbox(&mut su, applicant).await,
        vec![(false, true), (false, false)]
    );
    // Accepted: reported as in the realm.
    let (_, mine) = app
        .get("/api/v1/realms/kir-dev/me/memberships", &app.token(invitee))
        .await;
    let (s, b) = app
        .call(
            Method::POST,
            &format!("/api/v1/realms/kir-dev/memberships/{}/accept", id(&mine[0])),
            Some(&app.token(invitee)),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        outbox(&mut su, invitee).await,
        vec![(false, true), (true, false)]
    );
}

/// The whole member list a worker queues when it first sees a hub registration is read
/// after every change already in the outbox has committed. Read from an older snapshot
/// and queued after such a change, the stale state would win on the hub (it keeps the
/// newest seq): here, an invitation accepted at that moment would reach the hub as still
/// pending, and the person would be missing from the federation table.
#[tokio::test]
async fn the_member_list_queued_for_a_new_registration_never_overtakes_a_change_in_flight() {
    use sqlx::Connection;
    let app = common::app(pek::config::Mode::Worker, Some("kir-dev")).await;
    let realm: pek::realm::RealmId = "kir-dev".parse().unwrap();
    let god = Uuid::new_v4();
    pek::realm::ensure_local(&app.db, &realm, "Kir-Dev", Some(god))
        .await
        .unwrap();
    let g = id(&app.group("kir-dev", &app.token(god), "Kör", None).await);
    let invitee = Uuid::new_v4();
    let mut su = sqlx::PgConnection::connect(&app.database.superuser_url)
        .await
        .unwrap();
    invited_by_sql(&mut su, &g, invitee).await;

    // The acceptance is written (its outbox row has a seq) but not committed yet.
    let mut accepting = sqlx::PgConnection::connect(&app.database.superuser_url)
        .await
        .unwrap();
    let mut tx = accepting.begin().await.unwrap();
    sqlx::query("UPDATE memberships SET status = 'ACTIVE' WHERE user_id = $1")
        .bind(invitee)
        .execute(&mut *tx)
        .await
        .unwrap();
    let queue = tokio::spawn({
        let (db, realm) = (app.db.clone(), realm.clone());
        async move { pek::federation::queue_member_list(&db, &realm).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !queue.is_finished(),
        "the member list was read while a change in the outbox was not committed"
    );
    tx.commit().await.unwrap();
    let queued = queue.await.unwrap().expect("member list queued");
    assert_eq!(queued, 2, "the god and the invitee");
    // The newest state of the invitee, the one the hub keeps, is the accepted one.
    assert_eq!(
        outbox(&mut su, invitee).await,
        vec![(false, true), (true, false), (true, false)]
    );
}

/// A group's post names: managed by whoever manages its members (the group's leader
/// here), unique in the group, the leader's post built in; a rename follows the members
/// who hold the post, deleting a held post is refused, and another realm's group cannot
/// be reached through this realm.
#[tokio::test]
async fn post_names_are_managed_per_group_by_whoever_manages_its_members() {
    let w = Setup::new().await;
    let t = w.t();
    let leader = w.person("leader").await;
    let ann = w.person("ann").await;
    w.app
        .join("rx", &w.g, &t, leader, &["leader"], "ACTIVE")
        .await;
    let ann_membership = id(&w.app.join("rx", &w.g, &t, ann, &[], "ACTIVE").await);
    let (lt, at) = (w.app.token(leader), w.app.token(ann));
    let posts = format!("/api/v1/realms/rx/groups/{}/posts", w.g);
    let reason = |b: &Value| b["error"]["reason"].as_str().unwrap_or("").to_string();

    // Everyone who sees the group sees its posts: the built-in leader post first.
    let (s, b) = w.app.get(&posts, &at).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["items"], json!([{ "name": "leader", "builtin": true }]));

    // A member without editMembers may not add one; the leader may.
    let (s, b) = w.app.post(&posts, &at, json!({ "name": "pr" })).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    let (s, b) = w.app.post(&posts, &lt, json!({ "name": " pr " })).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b, json!({ "name": "pr", "builtin": false }));
    for name in ["pr", "leader"] {
        let (s, b) = w.app.post(&posts, &lt, json!({ "name": name })).await;
        assert_eq!(s, StatusCode::CONFLICT, "{name}: {b}");
        assert_eq!(reason(&b), "duplicate_post", "{b}");
    }
    for bad in [
        json!({ "name": "  " }),
        json!({ "name": "x".repeat(51) }),
        json!({}),
    ] {
        let (s, b) = w.app.post(&posts, &lt, bad.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {b}");
    }
    let (s, b) = w
        .app
        .post(&posts, &lt, json!({ "name": "gazdaságis" }))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (_, b) = w.app.get(&posts, &at).await;
    let names: Vec<&str> = b["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["leader", "gazdaságis", "pr"]);

    // A member holds only the group's posts: one it lacks is refused, whatever the path
    // (the rule is the database's), and nothing of the change is kept.
    let (s, b) = w
        .patch(&lt, &ann_membership, json!({ "posts": ["pr", "főnök"] }))
        .await;
    assert_eq!(
        (s, reason(&b)),
        (StatusCode::UNPROCESSABLE_ENTITY, "unknown_post".into()),
        "{b}"
    );
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("főnök"),
        "{b}"
    );
    let newcomer = w.person("newcomer").await;
    let (s, b) = w
        .app
        .post(
            &format!("/api/v1/realms/rx/groups/{}/members", w.g),
            &lt,
            json!({ "userId": newcomer, "posts": ["titkár"] }),
        )
        .await;
    assert_eq!(
        (s, reason(&b)),
        (StatusCode::UNPROCESSABLE_ENTITY, "unknown_post".into()),
        "{b}"
    );

    // Ann gets "pr"; renaming it renames hers; a taken name or the leader's is refused.
    let (s, b) = w
        .patch(&lt, &ann_membership, json!({ "posts": ["pr"] }))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let rename = |from: &str, to: &str, by: &str| {
        let (app, path, to, by) = (
            &w.app,
            format!("{posts}/{from}"),
            to.to_string(),
            by.to_string(),
        );
        async move {
            app.call(Method::PATCH, &path, Some(&by), Some(json!({ "name": to })))
                .await
        }
    };
    let (s, b) = rename("pr", "sajtós", &at).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    let (s, b) = rename("pr", "gazdaságis", &lt).await;
    assert_eq!(
        (s, reason(&b)),
        (StatusCode::CONFLICT, "duplicate_post".into()),
        "{b}"
    );
    let (s, b) = rename("leader", "főnök", &lt).await;
    assert_eq!(
        (s, reason(&b)),
        (StatusCode::CONFLICT, "builtin_post".into()),
        "{b}"
    );
    let (s, b) = rename("nincs", "más", &lt).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    let (s, b) = rename("pr", "sajtós", &lt).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, m) = w
        .app
        .get(
            &format!("/api/v1/realms/rx/memberships/{ann_membership}"),
            &at,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{m}");
    assert_eq!(m["posts"], json!(["sajtós"]));

    // A held post is not deleted (the reason says why); once taken from Ann, it is.
    // (Names in a path are percent-encoded: "sajtós".)
    let delete = |name: &str, by: &str| {
        let (app, path, by) = (&w.app, format!("{posts}/{name}"), by.to_string());
        async move { app.call(Method::DELETE, &path, Some(&by), None).await }
    };
    let (s, b) = delete("sajt%C3%B3s", &at).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    let (s, b) = delete("sajt%C3%B3s", &lt).await;
    assert_eq!(
        (s, reason(&b)),
        (StatusCode::CONFLICT, "post_held".into()),
        "{b}"
    );
    let (s, b) = delete("leader", &lt).await;
    assert_eq!(
        (s, reason(&b)),
        (StatusCode::CONFLICT, "builtin_post".into()),
        "{b}"
    );
    let (s, b) = w.patch(&lt, &ann_membership, json!({ "posts": [] })).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = delete("sajt%C3%B3s", &lt).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    let (_, b) = w.app.get(&posts, &lt).await;
    assert_eq!(b["items"].as_array().unwrap().len(), 2, "{b}");

    // Isolation: the hub realm's group is not reached through rx, and rx's leader
    // cannot touch the hub group's posts where it lives; the hub group's list is its own.
    let campus_posts = format!("/api/v1/realms/rx/groups/{}/posts", w.campus);
    let (s, b) = w.app.get(&campus_posts, &t).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    let (s, b) = w.app.post(&campus_posts, &t, json!({ "name": "x" })).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    let hub_posts = format!("/api/v1/realms/hub/groups/{}/posts", w.campus);
    let (s, b) = w.app.post(&hub_posts, &lt, json!({ "name": "x" })).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    let (s, b) = w.app.get(&hub_posts, &t).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["items"].as_array().unwrap().len(), 1, "{b}");
    let (s, b) = w
        .app
        .get(&format!("/api/v1/realms/hub/groups/{}/posts", w.g), &t)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
}

#[tokio::test]
async fn openapi_documents_the_membership_lifecycle() {
    let doc = serde_json::to_value(pek::http::openapi(pek::config::Mode::Worker)).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v1/realms/{realm}/groups/{id}/members", "post"),
        ("/api/v1/realms/{realm}/groups/{id}/applications", "post"),
        ("/api/v1/realms/{realm}/me/memberships", "get"),
        ("/api/v1/realms/{realm}/memberships/{id}/accept", "post"),
        ("/api/v1/realms/{realm}/memberships/{id}/reject", "post"),
        ("/api/v1/realms/{realm}/memberships/{id}/withdraw", "post"),
        ("/api/v1/realms/{realm}/memberships/{id}/decline", "post"),
        ("/api/v1/realms/{realm}/memberships/{id}/leave", "post"),
        ("/api/v1/realms/{realm}/groups/{id}/posts", "get"),
        ("/api/v1/realms/{realm}/groups/{id}/posts", "post"),
        ("/api/v1/realms/{realm}/groups/{id}/posts/{name}", "patch"),
        ("/api/v1/realms/{realm}/groups/{id}/posts/{name}", "delete"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
    let status = &doc["components"]["schemas"]["Status"]["enum"];
    assert!(
        status.as_array().unwrap().contains(&json!("APPLIED")),
        "{status}"
    );
    let hub = serde_json::to_value(pek::http::openapi(pek::config::Mode::Hub)).unwrap();
    for path in [
        "/internal/v1/realms/{realm}/users",
        "/internal/v1/realms/{realm}/users/{id}",
    ] {
        assert!(
            hub["paths"].get(path).is_some(),
            "{path} missing on the hub"
        );
    }
}
