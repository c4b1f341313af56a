//! Community evaluation (issue 5) through the HTTP API, on a real PostgreSQL: limits,
//! the state machine, the permission matrix, realm isolation, the period rule and
//! versioning after a rejection.

mod common;

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::Connection;
use uuid::Uuid;

use common::{hub, id, TestApp};

const R: &str = "alpha";

/// A realm with a current semester, an open evaluation period, and people:
/// `god`, `evaluator` (viewScores + evaluateScores realm-wide by policy), `viewer`
/// (viewScores on the main group by policy), `leader` (the `leader` post: editScores and
/// viewScores on the group), `members` (plain members) and `outsider` (in the realm via
/// another group only).
struct World {
    app: TestApp,
    god: Uuid,
    evaluator: Uuid,
    viewer: Uuid,
    leader: Uuid,
    outsider: Uuid,
    members: Vec<Uuid>,
    semester: String,
    group: String,
    /// Membership ids of `members` in `group`, same order.
    memberships: Vec<String>,
}

impl World {
    async fn new() -> World {
        let app = hub().await;
        let god = app.person("god", "God", "Mode", "1").await;
        let evaluator = app.person("eval", "Eva", "Luator", "2").await;
        let viewer = app.person("view", "Vic", "Ewer", "3").await;
        let leader = app.person("lead", "Lea", "Der", "4").await;
        let outsider = app.person("out", "Otto", "Sider", "5").await;
        let mut members = Vec::new();
        for i in 0..3 {
            members.push(app.person(&format!("m{i}"), "Mem", "Ber", "6").await);
        }
        app.bootstrap_god(god).await;
        app.realm(R, god).await;
        let t = app.token(god);
        let (s, sem) = app
            .post(
                &format!("/api/v1/realms/{R}/semesters"),
                &t,
                json!({"name": "2025/26/1", "startsOn": "2025-09-01", "endsOn": "2026-01-31", "current": true}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{sem}");
        let group = id(&app.group(R, &t, "Kör", None).await);
        let other = id(&app.group(R, &t, "Másik kör", None).await);
        let w = World {
            app,
            god,
            evaluator,
            viewer,
            leader,
            outsider,
            members: members.clone(),
            semester: id(&sem),
            group: group.clone(),
            memberships: Vec::new(),
        };
        let mut memberships = Vec::new();
        for m in &members {
            memberships.push(w.member(&group, *m, &[]).await);
        }
        w.member(&group, leader, &["leader"]).await;
        w.member(&other, outsider, &[]).await;
        w.member(&other, viewer, &[]).await;
        w.member(&other, evaluator, &[]).await;
        w.policy(
            "evaluators",
            None,
            &["viewScores", "evaluateScores"],
            evaluator,
        )
        .await;
        w.policy("viewers", Some(&group), &["viewScores"], viewer)
            .await;
        w.open_period().await;
        World { memberships, ..w }
    }

    fn t(&self, who: Uuid) -> String {
        self.app.token(who)
    }

    fn god_t(&self) -> String {
        self.t(self.god)
    }

    async fn member(&self, group: &str, user: Uuid, posts: &[&str]) -> String {
        id(&self
            .app
            .join(R, group, &self.god_t(), user, posts, "ACTIVE")
            .await)
    }

    async fn policy(&self, name: &str, group: Option<&str>, perms: &[&str], to: Uuid) {
        let t = self.god_t();
        let (s, p) = self
            .app
            .post(
                &format!("/api/v1/realms/{R}/policies"),
                &t,
                json!({"name": name}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{p}");
        let (s, b) = self
            .app
            .post(
                &format!("/api/v1/realms/{R}/policies/{}/statements", id(&p)),
                &t,
                json!({"groupId": group, "permissions": perms}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        let (s, b) = self
            .app
            .post(
                &format!("/api/v1/realms/{R}/assignments"),
                &t,
                json!({"userId": to, "policyId": id(&p)}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }

    async fn settings(&self, body: Value) -> (StatusCode, Value) {
        self.app
            .call(
                Method::PUT,
                &format!("/api/v1/realms/{R}/evaluation-settings"),
                Some(&self.god_t()),
                Some(body),
            )
            .await
    }

    async fn open_period(&self) {
        let (s, b) = self
            .settings(json!({
                "periodStartsAt": "2000-01-01T00:00:00Z",
                "periodEndsAt": "2100-01-01T00:00:00Z",
                "maxPointsPerSemester": 50
            }))
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }

    /// A collection for `group` with one guideline; returns the guideline id.
    async fn guideline(&self, group: &str, title: &str, per_member: i32, total: i32) -> String {
        let t = self.god_t();
        let (s, list) = self
            .app
            .get(
                &format!(
                    "/api/v1/realms/{R}/groups/{group}/guideline-collections?semesterId={}",
                    self.semester
                ),
                &t,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{list}");
        let collection = match list.as_array().and_then(|a| a.first()) {
            Some(c) => id(c),
            None => {
                let (s, c) = self
                    .app
                    .post(
                        &format!("/api/v1/realms/{R}/guideline-collections"),
                        &t,
                        json!({"groupId": group, "semesterId": self.semester, "name": "Irányelvek"}),
                    )
                    .await;
                assert_eq!(s, StatusCode::CREATED, "{c}");
                id(&c)
            }
        };
        let (s, g) = self
            .app
            .post(
                &format!("/api/v1/realms/{R}/guideline-collections/{collection}/guidelines"),
                &t,
                json!({"title": title, "category": "WORK", "maxPerMember": per_member,
                       "maxPerGuideline": total}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{g}");
        id(&g)
    }

    async fn scoreboard(&self, group: &str, who: Uuid) -> (StatusCode, Value) {
        self.app
            .post(
                &format!("/api/v1/realms/{R}/scoreboards"),
                &self.t(who),
                json!({"groupId": group, "semesterId": self.semester}),
            )
            .await
    }

    async fn points(
        &self,
        who: Uuid,
        sb: &str,
        membership: &str,
        guideline: &str,
        points: i64,
    ) -> (StatusCode, Value) {
        self.app
            .call(
                Method::PUT,
                &format!(
                    "/api/v1/realms/{R}/scoreboards/{sb}/point-requests/{membership}/{guideline}"
                ),
                Some(&self.t(who)),
                Some(json!({"points": points})),
            )
            .await
    }

    async fn entry(
        &self,
        who: Uuid,
        sb: &str,
        membership: &str,
        kind: &str,
    ) -> (StatusCode, Value) {
        self.app
            .call(
                Method::PUT,
                &format!("/api/v1/realms/{R}/scoreboards/{sb}/entry-award-requests/{membership}"),
                Some(&self.t(who)),
                Some(json!({"kind": kind, "justification": "sokat dolgozott"})),
            )
            .await
    }

    async fn act(&self, who: Uuid, sb: &str, action: &str) -> (StatusCode, Value) {
        let body = (action == "reject").then(|| json!({"reason": "túl sok pont"}));
        self.app
            .call(
                Method::POST,
                &format!("/api/v1/realms/{R}/scoreboards/{sb}/{action}"),
                Some(&self.t(who)),
                Some(body.unwrap_or(Value::Null)),
            )
            .await
    }
}

fn msg(b: &Value) -> String {
    b["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn point_requests_stay_within_guideline_and_semester_limits() {
    let w = World::new().await;
    let t = w.god_t();
    // Guideline limits are validated.
    let (_, list) = w
        .app
        .post(
            &format!("/api/v1/realms/{R}/guideline-collections"),
            &t,
            json!({"groupId": w.group, "semesterId": w.semester, "name": "Irányelvek"}),
        )
        .await;
    let coll = id(&list);
    for bad in [
        json!({"title": "x", "category": "WORK", "maxPerMember": 0, "maxPerGuideline": 5}),
        json!({"title": "x", "category": "WORK", "maxPerMember": 10, "maxPerGuideline": 5}),
        json!({"title": " ", "category": "WORK", "maxPerMember": 1, "maxPerGuideline": 5}),
        json!({"title": "x", "category": "FUN", "maxPerMember": 1, "maxPerGuideline": 5}),
    ] {
        let (s, b) = w
            .app
            .post(
                &format!("/api/v1/realms/{R}/guideline-collections/{coll}/guidelines"),
                &t,
                bad.clone(),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {b}");
    }
    let (s, b) = w
        .app
        .post(
            &format!("/api/v1/realms/{R}/guideline-collections"),
            &t,
            json!({"groupId": w.group, "semesterId": w.semester, "name": "again"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");

    let work = w.guideline(&w.group, "Munka", 30, 40).await;
    let resp = w.guideline(&w.group, "Felelősség", 40, 100).await;
    let (s, sb) = w.scoreboard(&w.group, w.leader).await;
    assert_eq!(s, StatusCode::CREATED, "{sb}");
    let sb = id(&sb);
    let [m0, m1, m2] = [&w.memberships[0], &w.memberships[1], &w.memberships[2]];

    let before = w.app.snapshot("point_requests").await;
    // Per member.
    for (p, what) in [
        (31, "maximum per member"),
        (0, "between 1"),
        (-3, "between 1"),
    ] {
        let (s, b) = w.points(w.leader, &sb, m0, &work, p).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
        assert!(msg(&b).contains(what), "{b}");
    }
    assert_eq!(w.app.snapshot("point_requests").await, before);
    // Per guideline (all members together): 30 + 10 fits 40, one more does not.
    assert_eq!(
        w.points(w.leader, &sb, m0, &work, 30).await.0,
        StatusCode::OK
    );
    assert_eq!(
        w.points(w.leader, &sb, m1, &work, 10).await.0,
        StatusCode::OK
    );
    let (s, b) = w.points(w.leader, &sb, m2, &work, 1).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(
        msg(&b).contains("at most 40 points") && msg(&b).contains("at most 0 remain"),
        "{b}"
    );
    // Replacing one's own request counts only the others: 30 → 25 then m1 may go to 15.
    let (s, b) = w.points(w.leader, &sb, m0, &work, 25).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["points"], 25);
    assert_eq!(
        w.points(w.leader, &sb, m1, &work, 15).await.0,
        StatusCode::OK
    );
    // Realm maximum per semester (50): m0 has 25 under "Munka", so 25 more at most.
    let (s, b) = w.points(w.leader, &sb, m0, &resp, 26).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(msg(&b).contains("at most 50 points per semester"), "{b}");
    assert_eq!(
        w.points(w.leader, &sb, m0, &resp, 25).await.0,
        StatusCode::OK
    );

    // A membership of another group, a guideline of another group, unknown ids.
    let other_group = id(&w.app.group(R, &t, "Harmadik", None).await);
    let foreign_m = w.member(&other_group, w.members[0], &[]).await;
    let foreign_g = w.guideline(&other_group, "Idegen", 5, 5).await;
    let before = w.app.snapshot("point_requests").await;
    let (s, b) = w.points(w.leader, &sb, &foreign_m, &work, 1).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(msg(&b).contains("is not in group"), "{b}");
    let (s, b) = w.points(w.leader, &sb, m2, &foreign_g, 1).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(msg(&b).contains("guideline collection"), "{b}");
    let (s, b) = w
        .points(w.leader, &sb, &Uuid::new_v4().to_string(), &work, 1)
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let (s, b) = w
        .points(w.leader, &sb, m2, &Uuid::new_v4().to_string(), 1)
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let (s, b) = w
        .app
        .call_raw(
            Method::PUT,
            &format!("/api/v1/realms/{R}/scoreboards/{sb}/point-requests/{m2}/{work}"),
            Some(&w.t(w.leader)),
            Some(r#"{"points": "many"}"#),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let (s, b) = w.points(w.leader, &sb, "not-a-uuid", &work, 1).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(w.app.snapshot("point_requests").await, before);

    // Entry awards: one per membership on the scoreboard, justification required.
    assert_eq!(w.entry(w.leader, &sb, m0, "KDO").await.0, StatusCode::OK);
    let (s, b) = w.entry(w.leader, &sb, m0, "AB").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["kind"], "AB");
    let (s, b) = w.entry(w.leader, &sb, m1, "XY").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let (s, b) = w
        .app
        .call(
            Method::PUT,
            &format!("/api/v1/realms/{R}/scoreboards/{sb}/entry-award-requests/{m1}"),
            Some(&w.t(w.leader)),
            Some(json!({"kind": "KB", "justification": "  "})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(msg(&b).contains("justification"), "{b}");
    let (_, detail) = w
        .app
        .get(&format!("/api/v1/realms/{R}/scoreboards/{sb}"), &t)
        .await;
    assert_eq!(detail["pointRequests"].as_array().unwrap().len(), 3);
    assert_eq!(detail["entryAwardRequests"].as_array().unwrap().len(), 1);

    // Referenced rows cannot be deleted from under the requests.
    let (s, b) = w
        .app
        .call(
            Method::DELETE,
            &format!("/api/v1/realms/{R}/memberships/{m0}"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert!(msg(&b).contains("FORMER or ARCHIVED"), "{b}");
    let (s, b) = w
        .app
        .call(
            Method::DELETE,
            &format!("/api/v1/realms/{R}/guidelines/{work}"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    // The realm maximum must be positive.
    let (s, _) = w
        .settings(json!({"periodStartsAt": "2000-01-01T00:00:00Z",
                         "periodEndsAt": "2100-01-01T00:00:00Z", "maxPointsPerSemester": 0}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
}

/// Every (status, action) pair: the legal ones succeed, every other is a 409 naming the
/// status, and nothing changes.
#[tokio::test]
async fn the_state_machine_refuses_every_illegal_transition() {
    let w = World::new().await;
    let t = w.god_t();
    let statuses = ["NOT_SUBMITTED", "NOT_YET_EVALUATED", "ACCEPTED", "REJECTED"];
    let mut boards = Vec::new();
    for (i, status) in statuses.iter().enumerate() {
        let g = id(&w.app.group(R, &t, &format!("sm-{i}"), None).await);
        let m = w.member(&g, w.members[0], &[]).await;
        let gl = w.guideline(&g, "Munka", 10, 10).await;
        let (s, sb) = w.scoreboard(&g, w.god).await;
        assert_eq!(s, StatusCode::CREATED, "{sb}");
        let sb = id(&sb);
        assert_eq!(w.points(w.god, &sb, &m, &gl, 5).await.0, StatusCode::OK);
        match *status {
            "NOT_SUBMITTED" => {}
            "NOT_YET_EVALUATED" => assert_eq!(w.act(w.god, &sb, "submit").await.0, StatusCode::OK),
            other => {
                assert_eq!(w.act(w.god, &sb, "submit").await.0, StatusCode::OK);
                let action = if other == "ACCEPTED" {
                    "accept"
                } else {
                    "reject"
                };
                assert_eq!(w.act(w.god, &sb, action).await.0, StatusCode::OK);
            }
        }
        boards.push((status.to_string(), sb, m, gl));
    }
    let legal = [
        ("NOT_SUBMITTED", "submit"),
        ("NOT_SUBMITTED", "edit"),
        ("NOT_YET_EVALUATED", "accept"),
        ("NOT_YET_EVALUATED", "reject"),
        ("REJECTED", "versions"),
    ];
    for (status, sb, m, gl) in &boards {
        for action in ["submit", "accept", "reject", "versions", "edit"] {
            if legal.contains(&(status.as_str(), action)) {
                continue;
            }
            let before = snapshot(&w.app).await;
            let results = if action == "edit" {
                let mut r = vec![
                    w.points(w.god, sb, m, gl, 6).await,
                    w.entry(w.god, sb, m, "KB").await,
                    w.app
                        .call(
                            Method::DELETE,
                            &format!("/api/v1/realms/{R}/scoreboards/{sb}/point-requests/{m}/{gl}"),
                            Some(&t),
                            None,
                        )
                        .await,
                ];
                // Guidelines are read-only while the board is submitted or accepted (a
                // rejected board is history; the group may revise its guidelines).
                if status != "REJECTED" {
                    let coll = collection_of(&w, gl).await;
                    r.push(
                        w.app
                            .post(
                                &format!(
                                    "/api/v1/realms/{R}/guideline-collections/{coll}/guidelines"
                                ),
                                &t,
                                json!({"title": "Új", "category": "RESPONSIBILITY",
                                       "maxPerMember": 1, "maxPerGuideline": 1}),
                            )
                            .await,
                    );
                }
                r
            } else {
                vec![w.act(w.god, sb, action).await]
            };
            for (s, b) in results {
                assert_eq!(s, StatusCode::CONFLICT, "{status} {action}: {b}");
                assert!(msg(&b).contains(status.as_str()), "{status} {action}: {b}");
            }
            assert!(
                snapshot(&w.app).await == before,
                "{status} {action} changed data"
            );
        }
    }
    // A rejection needs a reason.
    let g = id(&w.app.group(R, &t, "sm-reason", None).await);
    let (_, sb) = w.scoreboard(&g, w.god).await;
    let sb = id(&sb);
    w.act(w.god, &sb, "submit").await;
    for reason in [json!({"reason": "  "}), json!({})] {
        let (s, b) = w
            .app
            .post(
                &format!("/api/v1/realms/{R}/scoreboards/{sb}/reject"),
                &t,
                reason,
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    }
    let (_, b) = w
        .app
        .get(&format!("/api/v1/realms/{R}/scoreboards/{sb}"), &t)
        .await;
    assert_eq!(b["status"], "NOT_YET_EVALUATED");
}

async fn snapshot(app: &TestApp) -> [Vec<String>; 5] {
    [
        app.snapshot("scoreboards").await,
        app.snapshot("point_requests").await,
        app.snapshot("entry_award_requests").await,
        app.snapshot("point_history").await,
        app.snapshot("guidelines").await,
    ]
}

async fn collection_of(w: &World, guideline: &str) -> String {
    let (_, sbs) = w
        .app
        .get(
            &format!("/api/v1/realms/{R}/scoreboards?limit=200"),
            &w.god_t(),
        )
        .await;
    for sb in sbs["items"].as_array().unwrap() {
        let g = sb["groupId"].as_str().unwrap();
        let (_, cols) = w
            .app
            .get(
                &format!("/api/v1/realms/{R}/groups/{g}/guideline-collections"),
                &w.god_t(),
            )
            .await;
        for c in cols.as_array().unwrap() {
            if c["guidelines"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["id"] == guideline)
            {
                return id(c);
            }
        }
    }
    panic!("no collection holds guideline {guideline}");
}

#[tokio::test]
async fn rejection_then_a_new_linked_version_then_acceptance_records_history() {
    let w = World::new().await;
    let t = w.god_t();
    let work = w.guideline(&w.group, "Munka", 30, 90).await;
    let (_, v1) = w.scoreboard(&w.group, w.leader).await;
    let v1 = id(&v1);
    assert_eq!(v1.len(), 36);
    let [m0, m1] = [&w.memberships[0], &w.memberships[1]];
    w.points(w.leader, &v1, m0, &work, 30).await;
    w.points(w.leader, &v1, m1, &work, 20).await;
    w.entry(w.leader, &v1, m0, "KDO").await;
    assert_eq!(w.act(w.leader, &v1, "submit").await.0, StatusCode::OK);
    let (s, b) = w.act(w.evaluator, &v1, "reject").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["status"], "REJECTED");
    assert_eq!(b["rejectionReason"], "túl sok pont");
    assert_eq!(b["evaluatedBy"], w.evaluator.to_string());
    // Discussion on the rejected version.
    let (s, c) = w
        .app
        .post(
            &format!("/api/v1/realms/{R}/scoreboards/{v1}/comments"),
            &w.t(w.leader),
            json!({"body": "Miért sok?"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    w.app
        .post(
            &format!("/api/v1/realms/{R}/scoreboards/{v1}/comments"),
            &w.t(w.evaluator),
            json!({"body": "30 helyett 20."}),
        )
        .await;
    let (_, thread) = w
        .app
        .get(&format!("/api/v1/realms/{R}/scoreboards/{v1}/comments"), &t)
        .await;
    let bodies: Vec<_> = thread
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["body"].clone())
        .collect();
    assert_eq!(bodies, vec![json!("Miért sok?"), json!("30 helyett 20.")]);

    // A fresh v1 for the same group and semester is refused; a new version is the way.
    let (s, b) = w.scoreboard(&w.group, w.leader).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert!(msg(&b).contains("new version"), "{b}");
    let (s, v2) = w
        .app
        .post(
            &format!("/api/v1/realms/{R}/scoreboards/{v1}/versions"),
            &w.t(w.leader),
            Value::Null,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v2}");
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["previousId"], v1.as_str());
    assert_eq!(v2["status"], "NOT_SUBMITTED");
    let v2 = id(&v2);
    // Requests were copied; the rejected version keeps its own.
    let (_, d2) = w
        .app
        .get(&format!("/api/v1/realms/{R}/scoreboards/{v2}"), &t)
        .await;
    assert_eq!(d2["pointRequests"].as_array().unwrap().len(), 2);
    assert_eq!(d2["entryAwardRequests"][0]["kind"], "KDO");
    // Only one successor per rejected version.
    let (s, b) = w
        .app
        .post(
            &format!("/api/v1/realms/{R}/scoreboards/{v1}/versions"),
            &w.t(w.leader),
            Value::Null,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    // Edit v2, submit, accept.
    assert_eq!(
        w.points(w.leader, &v2, m0, &work, 20).await.0,
        StatusCode::OK
    );
    let (_, d1) = w
        .app
        .get(&format!("/api/v1/realms/{R}/scoreboards/{v1}"), &t)
        .await;
    assert!(d1["pointRequests"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["points"] == 30));
    assert_eq!(w.act(w.leader, &v2, "submit").await.0, StatusCode::OK);
    let (s, b) = w.act(w.evaluator, &v2, "accept").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["status"], "ACCEPTED");

    // Versions are listed per group; the history follows the accepted version only.
    let (_, list) = w
        .app
        .get(
            &format!("/api/v1/realms/{R}/scoreboards?groupId={}", w.group),
            &t,
        )
        .await;
    let versions: Vec<_> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["version"].clone(), s["status"].clone()))
        .collect();
    assert_eq!(
        versions,
        vec![(json!(1), json!("REJECTED")), (json!(2), json!("ACCEPTED"))]
    );
    let (s, p) = w
        .app
        .get(
            &format!("/api/v1/realms/{R}/users/{}/points", w.members[0]),
            &w.t(w.members[0]),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["items"][0]["points"], 20);
    assert_eq!(p["items"][0]["semesterName"], "2025/26/1");
    assert_eq!(p["items"][0]["groups"][0]["scoreboardId"], v2.as_str());
    let (_, p1) = w
        .app
        .get(
            &format!("/api/v1/realms/{R}/users/{}/points", w.members[1]),
            &w.t(w.members[1]),
        )
        .await;
    assert_eq!(p1["items"][0]["points"], 20);
    // Filter by semester name and by id; an unknown semester is empty, not an error.
    for q in ["2025/26/1".to_string(), w.semester.clone()] {
        let (s, p) = w
            .app
            .get(
                &format!(
                    "/api/v1/realms/{R}/users/{}/points?semester={}",
                    w.members[0],
                    q.replace('/', "%2F")
                ),
                &w.t(w.members[0]),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(p["items"].as_array().unwrap().len(), 1, "{q}: {p}");
    }
    let (_, p) = w
        .app
        .get(
            &format!(
                "/api/v1/realms/{R}/users/{}/points?semester=1999",
                w.members[0]
            ),
            &w.t(w.members[0]),
        )
        .await;
    assert_eq!(p["items"], json!([]));
    // Semester totals for the realm; a second group's points add up to the cap (50).
    let g2 = id(&w.app.group(R, &t, "Második", None).await);
    let m2 = w.member(&g2, w.members[0], &[]).await;
    let gl2 = w.guideline(&g2, "Munka", 40, 40).await;
    let (_, sb2) = w.scoreboard(&g2, w.god).await;
    let sb2 = id(&sb2);
    w.points(w.god, &sb2, &m2, &gl2, 40).await;
    w.act(w.god, &sb2, "submit").await;
    w.act(w.god, &sb2, "accept").await;
    let (_, p) = w
        .app
        .get(
            &format!("/api/v1/realms/{R}/users/{}/points", w.members[0]),
            &w.t(w.members[0]),
        )
        .await;
    assert_eq!(p["items"][0]["uncappedPoints"], 60);
    assert_eq!(p["items"][0]["points"], 50);
    assert_eq!(p["maxPointsPerSemester"], 50);
    let (s, tot) = w
        .app
        .get(
            &format!("/api/v1/realms/{R}/semesters/{}/points", w.semester),
            &w.t(w.evaluator),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{tot}");
    let mut totals: Vec<i64> = tot["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["points"].as_i64().unwrap())
        .collect();
    totals.sort();
    assert_eq!(totals, vec![20, 50]);

    // Through the hub's BFF: the person's points across all their realms (here the
    // hub-hosted realm, reached through the local backend).
    let (s, mine) = w.app.get("/api/v1/me/points", &w.t(w.members[0])).await;
    assert_eq!(s, StatusCode::OK, "{mine}");
    assert_eq!(mine["partial"], false, "{mine}");
    assert_eq!(mine["totals"]["2025/26/1"], 50, "{mine}");
    assert_eq!(mine["items"][0]["realmId"], R, "{mine}");
    let (_, none) = w
        .app
        .get("/api/v1/me/points?semester=1999", &w.t(w.members[0]))
        .await;
    assert_eq!(none["totals"], json!({}), "{none}");
    let (_, outsider) = w.app.get("/api/v1/me/points", &w.t(w.outsider)).await;
    assert_eq!(outsider["items"], json!([]), "{outsider}");
}

/// Who may do what: (role, action) → expected status.
#[tokio::test]
async fn permission_matrix() {
    let w = World::new().await;
    let work = w.guideline(&w.group, "Munka", 10, 100).await;
    let m0 = w.memberships[0].clone();
    let member = w.members[0];
    let roles = [
        ("god", w.god),
        ("leader", w.leader),
        ("evaluator", w.evaluator),
        ("viewer", w.viewer),
        ("member", member),
        ("outsider", w.outsider),
    ];
    let status = |s: StatusCode| s.as_u16();

    // Create: editScores (god, leader). Others 403.
    for (name, who) in roles {
        let (s, b) = w.scoreboard(&w.group, who).await;
        let expected = if matches!(name, "god" | "leader") {
            201
        } else {
            403
        };
        assert_eq!(status(s), expected, "{name} create: {b}");
        if s == StatusCode::CREATED {
            // Leave exactly one live board: the leader's (the god's is removed below).
            if name == "god" {
                let mut c = sqlx::PgConnection::connect(&w.app.database.superuser_url)
                    .await
                    .unwrap();
                sqlx::query("DELETE FROM scoreboards WHERE id = $1")
                    .bind(Uuid::parse_str(&id(&b)).unwrap())
                    .execute(&mut c)
                    .await
                    .unwrap();
            }
        }
    }
    let (_, list) = w
        .app
        .get(
            &format!("/api/v1/realms/{R}/scoreboards?groupId={}", w.group),
            &w.god_t(),
        )
        .await;
    let sb = id(&list["items"][0]);

    // Reading the board: anyone with view/edit/evaluate scores; others see no board.
    for (name, who) in roles {
        let (s, _) = w
            .app
            .get(&format!("/api/v1/realms/{R}/scoreboards/{sb}"), &w.t(who))
            .await;
        let expected = if matches!(name, "member" | "outsider") {
            404
        } else {
            200
        };
        assert_eq!(status(s), expected, "{name} read");
        let (_, l) = w
            .app
            .get(&format!("/api/v1/realms/{R}/scoreboards"), &w.t(who))
            .await;
        let n = l["items"].as_array().unwrap().len();
        assert_eq!(n, if expected == 200 { 1 } else { 0 }, "{name} list");
    }
    // Filling: editScores.
    for (name, who) in roles {
        let (s, b) = w.points(who, &sb, &m0, &work, 5).await;
        let expected = match name {
            "god" | "leader" => 200,
            "evaluator" | "viewer" => 403,
            _ => 404,
        };
        assert_eq!(status(s), expected, "{name} fill: {b}");
    }
    // Discussion: edit or evaluate.
    for (name, who) in roles {
        let (s, b) = w
            .app
            .post(
                &format!("/api/v1/realms/{R}/scoreboards/{sb}/comments"),
                &w.t(who),
                json!({"body": "hi"}),
            )
            .await;
        let expected = match name {
            "god" | "leader" | "evaluator" => 201,
            "viewer" => 403,
            _ => 404,
        };
        assert_eq!(status(s), expected, "{name} comment: {b}");
    }
    // Submitting: editScores (the evaluator may not submit).
    for (name, who) in [("evaluator", w.evaluator), ("viewer", w.viewer)] {
        assert_eq!(
            status(w.act(who, &sb, "submit").await.0),
            403,
            "{name} submit"
        );
    }
    assert_eq!(w.act(w.leader, &sb, "submit").await.0, StatusCode::OK);
    // Evaluating: evaluateScores (the leader may not evaluate its own group's board).
    for (name, who) in roles {
        if matches!(name, "god" | "evaluator") {
            continue;
        }
        for action in ["accept", "reject"] {
            let (s, b) = w.act(who, &sb, action).await;
            let expected = if matches!(name, "member" | "outsider") {
                404
            } else {
                403
            };
            assert_eq!(status(s), expected, "{name} {action}: {b}");
        }
    }
    assert_eq!(w.act(w.evaluator, &sb, "accept").await.0, StatusCode::OK);

    // Point history of a member: the member, GOD, and viewScores holders on the group.
    for (name, who) in roles {
        let (s, b) = w
            .app
            .get(
                &format!("/api/v1/realms/{R}/users/{member}/points"),
                &w.t(who),
            )
            .await;
        let expected = if name == "outsider" { 403 } else { 200 };
        assert_eq!(status(s), expected, "{name} history: {b}");
        if s == StatusCode::OK {
            assert_eq!(b["items"][0]["points"], 5, "{name}");
        }
    }
    // Someone with no points: only themselves (empty) and realm-wide viewers.
    let (s, b) = w
        .app
        .get(
            &format!("/api/v1/realms/{R}/users/{}/points", w.outsider),
            &w.t(w.outsider),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["items"], json!([]));
    let (s, _) = w
        .app
        .get(
            &format!("/api/v1/realms/{R}/users/{}/points", w.outsider),
            &w.t(w.leader),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Semester totals: realm-wide viewScores only.
    for (name, who) in roles {
        let (s, _) = w
            .app
            .get(
                &format!("/api/v1/realms/{R}/semesters/{}/points", w.semester),
                &w.t(who),
            )
            .await;
        let expected = if matches!(name, "god" | "evaluator") {
            200
        } else {
            403
        };
        assert_eq!(status(s), expected, "{name} totals");
    }
    // Settings: manageRealm to change, any realm member to read.
    for (name, who) in roles {
        let (s, _) = w
            .app
            .call(
                Method::PUT,
                &format!("/api/v1/realms/{R}/evaluation-settings"),
                Some(&w.t(who)),
                Some(json!({"maxPointsPerSemester": 10})),
            )
            .await;
        assert_eq!(
            status(s),
            if name == "god" { 200 } else { 403 },
            "{name} settings"
        );
        let (s, _) = w
            .app
            .get(
                &format!("/api/v1/realms/{R}/evaluation-settings"),
                &w.t(who),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{name} read settings");
    }
    let stranger = w.app.person("stranger", "S", "T", "9").await;
    let (s, _) = w
        .app
        .get(
            &format!("/api/v1/realms/{R}/evaluation-settings"),
            &w.t(stranger),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Guidelines: editScores to add.
    let (_, cols) = w
        .app
        .get(
            &format!(
                "/api/v1/realms/{R}/groups/{}/guideline-collections",
                w.group
            ),
            &w.god_t(),
        )
        .await;
    let coll = id(&cols[0]);
    let (s, b) = w
        .app
        .post(
            &format!("/api/v1/realms/{R}/guideline-collections/{coll}/guidelines"),
            &w.t(w.viewer),
            json!({"title": "v", "category": "WORK", "maxPerMember": 1, "maxPerGuideline": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
}

#[tokio::test]
async fn changes_outside_the_evaluation_period_are_refused() {
    let w = World::new().await;
    let work = w.guideline(&w.group, "Munka", 10, 100).await;
    let (_, sb) = w.scoreboard(&w.group, w.leader).await;
    let sb = id(&sb);
    let m0 = w.memberships[0].clone();
    assert_eq!(
        w.points(w.leader, &sb, &m0, &work, 5).await.0,
        StatusCode::OK
    );
    let g2 = id(&w.app.group(R, &w.god_t(), "Second", None).await);

    let periods = [
        (json!({}), "no evaluation period"),
        (
            json!({"periodStartsAt": "2099-01-01T00:00:00Z", "periodEndsAt": "2100-01-01T00:00:00Z"}),
            "starts at 2099-01-01",
        ),
        (
            json!({"periodStartsAt": "2000-01-01T00:00:00Z", "periodEndsAt": "2001-01-01T00:00:00Z"}),
            "ended at 2001-01-01",
        ),
    ];
    for (period, expected) in periods {
        let (s, b) = w.settings(period.clone()).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let before = (
            w.app.snapshot("scoreboards").await,
            w.app.snapshot("point_requests").await,
            w.app.snapshot("entry_award_requests").await,
        );
        let attempts = vec![
            w.points(w.leader, &sb, &m0, &work, 6).await,
            w.entry(w.leader, &sb, &m0, "KB").await,
            w.act(w.leader, &sb, "submit").await,
            w.scoreboard(&g2, w.god).await,
            w.app
                .call(
                    Method::DELETE,
                    &format!("/api/v1/realms/{R}/scoreboards/{sb}/point-requests/{m0}/{work}"),
                    Some(&w.t(w.leader)),
                    None,
                )
                .await,
        ];
        for (s, b) in attempts {
            assert_eq!(s, StatusCode::CONFLICT, "{period}: {b}");
            assert!(msg(&b).contains(expected), "{period}: {b}");
        }
        assert_eq!(
            before,
            (
                w.app.snapshot("scoreboards").await,
                w.app.snapshot("point_requests").await,
                w.app.snapshot("entry_award_requests").await,
            )
        );
        // Reading and discussing stay possible.
        let (s, _) = w
            .app
            .get(
                &format!("/api/v1/realms/{R}/scoreboards/{sb}"),
                &w.t(w.leader),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let (s, _) = w
            .app
            .post(
                &format!("/api/v1/realms/{R}/scoreboards/{sb}/comments"),
                &w.t(w.leader),
                json!({"body": "later"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
    }
    // Evaluation is a change too: submit inside the period, then close it.
    w.open_period().await;
    assert_eq!(w.act(w.leader, &sb, "submit").await.0, StatusCode::OK);
    w.settings(
        json!({"periodStartsAt": "2000-01-01T00:00:00Z", "periodEndsAt": "2001-01-01T00:00:00Z"}),
    )
    .await;
    for action in ["accept", "reject"] {
        let (s, b) = w.act(w.evaluator, &sb, action).await;
        assert_eq!(s, StatusCode::CONFLICT, "{b}");
        assert!(msg(&b).contains("ended at"), "{b}");
    }
    // Invalid periods are refused.
    for bad in [
        json!({"periodStartsAt": "2001-01-01T00:00:00Z", "periodEndsAt": "2000-01-01T00:00:00Z"}),
        json!({"periodStartsAt": "2001-01-01T00:00:00Z"}),
        json!({"maxPointsPerSemester": 10001}),
        json!({"periodStartsAt": "yesterday", "periodEndsAt": "2000-01-01T00:00:00Z"}),
    ] {
        let (s, b) = w.settings(bad.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {b}");
    }
}

#[tokio::test]
async fn evaluation_data_is_isolated_across_realms() {
    let w = World::new().await;
    let t = w.god_t();
    let work = w.guideline(&w.group, "Munka", 10, 100).await;
    let (_, sb) = w.scoreboard(&w.group, w.god).await;
    let sb = id(&sb);
    let m0 = w.memberships[0].clone();
    w.points(w.god, &sb, &m0, &work, 7).await;
    w.act(w.god, &sb, "submit").await;
    w.act(w.god, &sb, "accept").await;

    // Realm beta, same GOD, its own group, semester, period and scoreboard.
    w.app.realm("beta", w.god).await;
    let (_, sem_b) = w
        .app
        .post(
            "/api/v1/realms/beta/semesters",
            &t,
            json!({"name": "2025/26/1", "startsOn": "2025-09-01", "endsOn": "2026-01-31"}),
        )
        .await;
    let g_b = id(&w.app.group("beta", &t, "Kör", None).await);
    let m_b = id(&w
        .app
        .join("beta", &g_b, &t, w.members[0], &[], "NEWBIE")
        .await);
    w.app
        .call(
            Method::PUT,
            "/api/v1/realms/beta/evaluation-settings",
            Some(&t),
            Some(json!({"periodStartsAt": "2000-01-01T00:00:00Z", "periodEndsAt": "2100-01-01T00:00:00Z"})),
        )
        .await;

    // Alpha's ids through beta's routes: not found, and nothing written in beta.
    let before = w.app.snapshot("scoreboards").await;
    for uri in [
        format!("/api/v1/realms/beta/scoreboards/{sb}"),
        format!("/api/v1/realms/beta/scoreboards/{sb}/comments"),
    ] {
        let (s, b) = w.app.get(&uri, &t).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{uri}: {b}");
    }
    for action in ["submit", "accept", "versions"] {
        let (s, b) = w
            .app
            .post(
                &format!("/api/v1/realms/beta/scoreboards/{sb}/{action}"),
                &t,
                Value::Null,
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{action}: {b}");
    }
    // A beta scoreboard over alpha's group or semester: refused.
    let (s, b) = w
        .app
        .post(
            "/api/v1/realms/beta/scoreboards",
            &t,
            json!({"groupId": w.group, "semesterId": id(&sem_b)}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let (s, b) = w
        .app
        .post(
            "/api/v1/realms/beta/scoreboards",
            &t,
            json!({"groupId": g_b, "semesterId": w.semester}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(msg(&b).contains("semester not found"), "{b}");
    assert_eq!(w.app.snapshot("scoreboards").await, before);
    // Beta's membership on alpha's board (which is final anyway; use a fresh one).
    let g2 = id(&w.app.group(R, &t, "Alpha two", None).await);
    let gl2 = w.guideline(&g2, "Munka", 5, 5).await;
    let (_, sb2) = w.scoreboard(&g2, w.god).await;
    let (s, b) = w.points(w.god, &id(&sb2), &m_b, &gl2, 1).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(msg(&b).contains("not found"), "{b}");

    // The history of the same person differs per realm.
    let (_, pa) = w
        .app
        .get(
            &format!("/api/v1/realms/{R}/users/{}/points", w.members[0]),
            &w.t(w.members[0]),
        )
        .await;
    let (_, pb) = w
        .app
        .get(
            &format!("/api/v1/realms/beta/users/{}/points", w.members[0]),
            &w.t(w.members[0]),
        )
        .await;
    assert_eq!(pa["items"][0]["points"], 7);
    assert_eq!(pb["items"], json!([]));
    assert_eq!(pb["realmId"], "beta");

    // Layer 3: unfiltered reads of the service role see only the transaction's realm.
    let mut c = sqlx::PgConnection::connect(&w.app.database.app_url)
        .await
        .unwrap();
    for table in [
        "evaluation_settings",
        "guideline_collections",
        "guidelines",
        "scoreboards",
        "scoreboard_comments",
        "point_requests",
        "entry_award_requests",
        "point_history",
    ] {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&mut c)
            .await
            .unwrap();
        assert_eq!(n, 0, "{table} without a realm");
        let mut tx = c.begin().await.unwrap();
        sqlx::query("SELECT set_config('pek.realm_id', 'beta', true)")
            .execute(&mut *tx)
            .await
            .unwrap();
        let realms: Vec<String> = sqlx::query_scalar(&format!("SELECT realm_id FROM {table}"))
            .fetch_all(&mut *tx)
            .await
            .unwrap();
        assert!(realms.iter().all(|r| r == "beta"), "{table}: {realms:?}");
        tx.rollback().await.unwrap();
    }
    // Layer 2: even the owner cannot file a beta request against alpha's board or a
    // membership of another group.
    let mut o = sqlx::PgConnection::connect(&w.app.database.owner_url)
        .await
        .unwrap();
    let ids = |membership: &str| {
        [&id(&sb2), &g2, &w.semester, membership, &gl2].map(|s| Uuid::parse_str(s).unwrap())
    };
    let err = owner_inserts_point_request(&mut o, "beta", ids(&m_b)).await;
    assert!(err.contains("foreign key"), "{err}");
    // a member of the *other* alpha group
    let err = owner_inserts_point_request(&mut o, "alpha", ids(&m0)).await;
    assert!(err.contains("point_requests_membership_fkey"), "{err}");
}

/// As the table owner (past RLS), in `realm`: a point request for (scoreboard, group,
/// semester, membership, guideline) that must be refused; the error, rolled back.
async fn owner_inserts_point_request(
    owner: &mut sqlx::PgConnection,
    realm: &str,
    [scoreboard, group, semester, membership, guideline]: [Uuid; 5],
) -> String {
    let mut tx = owner.begin().await.unwrap();
    sqlx::query("SELECT set_config('pek.realm_id', $1, true)")
        .bind(realm)
        .execute(&mut *tx)
        .await
        .unwrap();
    let err = sqlx::query(
        "INSERT INTO point_requests (realm_id, scoreboard_id, group_id, semester_id, membership_id,
                                     guideline_id, points, updated_by)
         VALUES ($1, $2, $3, $4, $5, $6, 1, gen_random_uuid())",
    )
    .bind(realm)
    .bind(scoreboard)
    .bind(group)
    .bind(semester)
    .bind(membership)
    .bind(guideline)
    .execute(&mut *tx)
    .await
    .unwrap_err();
    tx.rollback().await.unwrap();
    err.to_string()
}

#[tokio::test]
async fn openapi_documents_the_evaluation_routes() {
    let doc = serde_json::to_value(pek::http::openapi(pek::config::Mode::Worker)).unwrap();
    for path in [
        "/api/v1/realms/{realm}/scoreboards/{id}/submit",
        "/api/v1/realms/{realm}/scoreboards/{id}/point-requests/{membership}/{guideline}",
        "/api/v1/realms/{realm}/users/{id}/points",
        "/api/v1/realms/{realm}/evaluation-settings",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
}

/// Points count only memberships the person consented to: an application or an
/// invitation gets no point or entry award requests until it is accepted.
#[tokio::test]
async fn pending_memberships_get_no_points() {
    let w = World::new().await;
    let t = w.god_t();
    let applicant = w.app.person("appl", "App", "Licant", "7").await;
    let invitee = w.app.person("inv", "In", "Vitee", "8").await;
    let (s, applied) = w
        .app
        .post(
            &format!("/api/v1/realms/{R}/groups/{}/applications", w.group),
            &w.t(applicant),
            Value::Null,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{applied}");
    let (s, invited) = w
        .app
        .post(
            &format!("/api/v1/realms/{R}/groups/{}/members", w.group),
            &t,
            json!({"userId": invitee}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{invited}");
    let work = w.guideline(&w.group, "Munka", 30, 90).await;
    let (s, sb) = w.scoreboard(&w.group, w.leader).await;
    assert_eq!(s, StatusCode::CREATED, "{sb}");
    let sb = id(&sb);
    let before = w.app.snapshot("point_requests").await;
    for m in [id(&applied), id(&invited)] {
        let (s, b) = w.points(w.leader, &sb, &m, &work, 10).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
        assert!(msg(&b).contains("not yet accepted"), "{b}");
        let (s, b) = w.entry(w.leader, &sb, &m, "KDO").await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    }
    assert_eq!(w.app.snapshot("point_requests").await, before);
    assert!(w.app.snapshot("entry_award_requests").await.is_empty());
    // Accepted, the same membership gets points.
    let (s, b) = w
        .app
        .post(
            &format!("/api/v1/realms/{R}/memberships/{}/accept", id(&applied)),
            &w.t(w.leader),
            Value::Null,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = w.points(w.leader, &sb, &id(&applied), &work, 10).await;
    assert_eq!(s, StatusCode::OK, "{b}");
}
