//! Community evaluation through the HTTP API, on a real PostgreSQL: limits, the state
//! machine, the permission matrix, realm isolation, seasons (every season × action),
//! versioning after a rejection, the point formula end to end, and CSV exports.

mod common;

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::Connection;
use uuid::Uuid;

use common::{hub, id, TestApp};

const R: &str = "alpha";

/// A realm with a current semester in its SUBMISSION season, and people:
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
        World::on(hub().await).await
    }

    async fn on(app: TestApp) -> World {
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
        w.open_season().await;
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

    async fn open_season(&self) {
        let (s, b) = self.settings(json!({"maxPointsPerSemester": 50})).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let (s, b) = self
            .season_body(json!({"season": "SUBMISSION", "semesterId": self.semester}))
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }

    async fn season_body(&self, body: Value) -> (StatusCode, Value) {
        self.app
            .call(
                Method::PUT,
                &format!("/api/v1/realms/{R}/evaluation-season"),
                Some(&self.god_t()),
                Some(body),
            )
            .await
    }

    /// Changes the season as a realm manager would (refused when work would be lost).
    async fn season(&self, season: &str) -> (StatusCode, Value) {
        self.season_body(json!({ "season": season })).await
    }

    /// Changes the season even if scoreboards are stranded (test set-up).
    async fn force_season(&self, season: &str) {
        let (s, b) = self
            .season_body(json!({ "season": season, "force": true }))
            .await;
        assert_eq!(s, StatusCode::OK, "{season}: {b}");
    }

    async fn user_points(&self, user: Uuid) -> Value {
        let (s, p) = self
            .app
            .get(
                &format!("/api/v1/realms/{R}/users/{user}/points"),
                &self.t(user),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{p}");
        p
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
    // The realm maximum must be positive; the period of old is gone (the season is it).
    let (s, _) = w.settings(json!({"maxPointsPerSemester": 0})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, b) = w
        .settings(json!({"periodStartsAt": "2000-01-01T00:00:00Z",
                         "periodEndsAt": "2100-01-01T00:00:00Z"}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
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
        if *status != "NOT_SUBMITTED" {
            assert_eq!(w.act(w.god, &sb, "submit").await.0, StatusCode::OK);
        }
        boards.push((status.to_string(), sb, m, gl));
    }
    // Evaluation happens in the JUDGING season.
    w.force_season("JUDGING").await;
    for (status, sb, _, _) in &boards {
        let action = match status.as_str() {
            "ACCEPTED" => "accept",
            "REJECTED" => "reject",
            _ => continue,
        };
        assert_eq!(w.act(w.god, sb, action).await.0, StatusCode::OK);
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
    w.force_season("SUBMISSION").await;
    let g = id(&w.app.group(R, &t, "sm-reason", None).await);
    let (_, sb) = w.scoreboard(&g, w.god).await;
    let sb = id(&sb);
    w.act(w.god, &sb, "submit").await;
    w.force_season("JUDGING").await;
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
    // Evaluators judge in the JUDGING season, not while groups still submit.
    let (s, b) = w.act(w.evaluator, &v1, "reject").await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert!(msg(&b).contains("only in the JUDGING season"), "{b}");
    let (s, b) = w.season("JUDGING").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["season"], "JUDGING");
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

    // A fresh v1 for the same group and semester is refused (in SUBMISSION by the one
    // live version rule; in JUDGING no board can be started); a new version is the way.
    let (s, b) = w.scoreboard(&w.group, w.leader).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert!(msg(&b).contains("only in the SUBMISSION season"), "{b}");
    w.force_season("SUBMISSION").await;
    let (s, b) = w.scoreboard(&w.group, w.leader).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert!(msg(&b).contains("new version"), "{b}");
    w.force_season("JUDGING").await;
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
    // Accepting writes no history yet: closing the season does.
    assert_eq!(w.user_points(w.members[0]).await["items"], json!([]));
    // The KDO request awaits its own review, so closing now would lose it.
    let (s, b) = w.season("OFF").await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert!(
        msg(&b).contains("entry award requests not yet reviewed"),
        "{b}"
    );
    assert!(msg(&b).contains("force"), "{b}");
    let (s, e) = w
        .app
        .post(
            &format!("/api/v1/realms/{R}/scoreboards/{v2}/entry-award-requests/{m0}/accept"),
            &w.t(w.evaluator),
            Value::Null,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{e}");
    assert_eq!(e["status"], "ACCEPTED");
    let (s, b) = w.season("OFF").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["historyRows"], 2, "{b}");
    assert!(b["historyComputedAt"].is_string(), "{b}");

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
    assert_eq!(p["items"][0]["points"].as_f64(), Some(20.0), "{p}");
    assert_eq!(p["items"][0]["pointsInteger"], 20, "{p}");
    assert_eq!(p["items"][0]["semesterName"], "2025/26/1");
    assert_eq!(p["items"][0]["groups"][0]["scoreboardId"], v2.as_str());
    let (_, p1) = w
        .app
        .get(
            &format!("/api/v1/realms/{R}/users/{}/points", w.members[1]),
            &w.t(w.members[1]),
        )
        .await;
    assert_eq!(p1["items"][0]["points"].as_f64(), Some(20.0), "{p1}");
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
    // A second group in the same semester: the figure is √(20² + 30²) = 36.05 (the
    // root of the sum of squares, truncated), not the sum 50.
    w.force_season("SUBMISSION").await;
    let g2 = id(&w.app.group(R, &t, "Második", None).await);
    let m2 = w.member(&g2, w.members[0], &[]).await;
    let gl2 = w.guideline(&g2, "Munka", 40, 40).await;
    let (_, sb2) = w.scoreboard(&g2, w.god).await;
    let sb2 = id(&sb2);
    w.points(w.god, &sb2, &m2, &gl2, 40).await;
    w.act(w.god, &sb2, "submit").await;
    w.force_season("JUDGING").await;
    w.act(w.god, &sb2, "accept").await;
    let (s, b) = w.season("OFF").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let p = w.user_points(w.members[0]).await;
    // WORK 40 counts as 30 on that board.
    let groups: Vec<i64> = p["items"][0]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["points"].as_i64().unwrap())
        .collect();
    assert_eq!(groups.iter().sum::<i64>(), 50, "{p}");
    assert_eq!(p["items"][0]["points"].as_f64(), Some(36.05), "{p}");
    assert_eq!(p["items"][0]["pointsInteger"], 36, "{p}");
    assert_eq!(p["items"][0]["sumOfSquares"], 1300, "{p}");
    assert_eq!(p["maxPointsPerSemester"], 50);
    // Someone who may see the scores of the second group only sees that group, and a
    // figure over that group alone: √(30²) = 30, which says nothing about the first.
    let viewer = w.members[1];
    w.policy("Második pontjai", Some(&g2), &["viewScores"], viewer)
        .await;
    let (s, seen) = w
        .app
        .get(
            &format!("/api/v1/realms/{R}/users/{}/points", w.members[0]),
            &w.t(viewer),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{seen}");
    assert_eq!(
        seen["items"][0]["groups"].as_array().unwrap().len(),
        1,
        "{seen}"
    );
    assert_eq!(
        seen["items"][0]["groups"][0]["groupId"],
        g2.as_str(),
        "{seen}"
    );
    assert_eq!(seen["items"][0]["points"].as_f64(), Some(30.0), "{seen}");
    assert_eq!(seen["items"][0]["sumOfSquares"], 900, "{seen}");
    let (s, tot) = w
        .app
        .get(
            &format!("/api/v1/realms/{R}/semesters/{}/points", w.semester),
            &w.t(w.evaluator),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{tot}");
    let mut totals: Vec<f64> = tot["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["points"].as_f64().unwrap())
        .collect();
    totals.sort_by(f64::total_cmp);
    assert_eq!(totals, vec![20.0, 36.05]);
    // A page at a time (each page reads only its own users' rows): the same users and
    // figures, in the same order, and no page repeats or skips one.
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!(
                "/api/v1/realms/{R}/semesters/{}/points?limit=1&cursor={c}",
                w.semester
            ),
            None => format!("/api/v1/realms/{R}/semesters/{}/points?limit=1", w.semester),
        };
        let (s, page) = w.app.get(&url, &w.t(w.evaluator)).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
        paged.push(page["items"][0].clone());
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(Value::Array(paged), tot["items"]);

    // Through the hub's BFF: the person's points across all their realms (here the
    // hub-hosted realm, reached through the local backend).
    let (s, mine) = w.app.get("/api/v1/me/points", &w.t(w.members[0])).await;
    assert_eq!(s, StatusCode::OK, "{mine}");
    assert_eq!(mine["partial"], false, "{mine}");
    assert_eq!(mine["totals"]["2025/26/1"].as_f64(), Some(36.05), "{mine}");
    assert_eq!(mine["semesters"][0]["pointsInteger"], 36, "{mine}");
    assert_eq!(
        mine["semesters"][0]["groups"].as_array().unwrap().len(),
        2,
        "{mine}"
    );
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
    w.force_season("JUDGING").await;
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
    // Seasons: manageRealm only.
    for (name, who) in roles {
        if name == "god" {
            continue;
        }
        let (s, b) = w
            .app
            .call(
                Method::PUT,
                &format!("/api/v1/realms/{R}/evaluation-season"),
                Some(&w.t(who)),
                Some(json!({"season": "OFF"})),
            )
            .await;
        assert_eq!(status(s), 403, "{name} season: {b}");
    }
    let (s, b) = w.season("OFF").await;
    assert_eq!(s, StatusCode::OK, "{b}");

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
            assert_eq!(b["items"][0]["points"].as_f64(), Some(5.0), "{name}: {b}");
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

/// A group with one member and one WORK guideline (10 per member, 100 in all), and
/// optionally a scoreboard with 5 points for the member: (group, membership,
/// guideline, scoreboard).
async fn fixture(w: &World, name: &str, board: bool) -> (String, String, String, String) {
    let t = w.god_t();
    let g = id(&w.app.group(R, &t, name, None).await);
    let m = w.member(&g, w.members[0], &[]).await;
    let gl = w.guideline(&g, "Munka", 10, 100).await;
    let mut sb = String::new();
    if board {
        let (s, b) = w.scoreboard(&g, w.god).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        sb = id(&b);
        assert_eq!(w.points(w.god, &sb, &m, &gl, 5).await.0, StatusCode::OK);
    }
    (g, m, gl, sb)
}

/// Every season × action: what the season allows succeeds, everything else is a 409
/// naming the season and changes nothing; discussion is open in every season.
#[tokio::test]
async fn every_season_and_action() {
    // The body's future is large in debug builds: keep it off the test thread's stack.
    Box::pin(season_matrix()).await
}

async fn season_matrix() {
    let w = World::new().await;
    let t = w.god_t();
    // Set-up in SUBMISSION, then JUDGING for the rejections and new versions.
    let mut fxs = Vec::new();
    for season in ["OFF", "SUBMISSION", "JUDGING"] {
        let fresh = id(&w.app.group(R, &t, &format!("{season} fresh"), None).await);
        let draft = fixture(&w, &format!("{season} draft"), true).await;
        let sub = fixture(&w, &format!("{season} sub"), true).await;
        let sub2 = fixture(&w, &format!("{season} sub2"), true).await;
        let rej = fixture(&w, &format!("{season} rej"), true).await;
        let v2 = fixture(&w, &format!("{season} v2"), true).await;
        for (_, m, _, sb) in [&sub, &sub2] {
            assert_eq!(w.entry(w.god, sb, m, "KB").await.0, StatusCode::OK);
        }
        for sb in [&sub.3, &sub2.3, &rej.3, &v2.3] {
            assert_eq!(w.act(w.god, sb, "submit").await.0, StatusCode::OK);
        }
        fxs.push((
            season,
            Fx {
                fresh,
                draft,
                sub,
                sub2,
                rej: rej.3,
                v2,
            },
        ));
    }
    w.force_season("JUDGING").await;
    for (_, fx) in &mut fxs {
        for sb in [&fx.rej, &fx.v2.3] {
            assert_eq!(w.act(w.god, sb, "reject").await.0, StatusCode::OK);
        }
        let (s, b) = w.act(w.god, &fx.v2.3, "versions").await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        fx.v2.3 = id(&b);
    }

    let allowed: [(&str, &[&str]); 3] = [
        ("OFF", &["comment", "cell comment"]),
        (
            "SUBMISSION",
            &[
                "create collection",
                "add guideline",
                "create scoreboard",
                "fill",
                "submit",
                "new version",
                "fill resubmission",
                "resubmit",
                "comment",
                "cell comment",
            ],
        ),
        (
            "JUDGING",
            &[
                "new version",
                "fill resubmission",
                "resubmit",
                "accept entry award",
                "reject entry award",
                "accept",
                "reject",
                "comment",
                "cell comment",
            ],
        ),
    ];
    for (season, fx) in &fxs {
        w.force_season(season).await;
        let ok: &[&str] = allowed.iter().find(|a| a.0 == *season).unwrap().1;
        let coll = collection_of_group(&w, &fx.draft.0).await;
        let (dm, dgl, dsb) = (&fx.draft.1, &fx.draft.2, &fx.draft.3);
        let mut results = Vec::new();
        for action in [
            "create collection",
            "add guideline",
            "create scoreboard",
            "fill",
            "submit",
            "new version",
            "fill resubmission",
            "resubmit",
            "accept entry award",
            "reject entry award",
            "accept",
            "reject",
            "comment",
            "cell comment",
        ] {
            let before = snapshot(&w.app).await;
            let (s, b) = Box::pin(run_action(&w, fx, &coll, action)).await;
            if ok.contains(&action) {
                assert!(s.is_success(), "{season} {action}: {s} {b}");
            } else {
                assert_eq!(s, StatusCode::CONFLICT, "{season} {action}: {b}");
                assert!(
                    msg(&b).contains(&format!("in its {season} season")),
                    "{season} {action}: {b}"
                );
                if action != "comment" && action != "cell comment" {
                    assert!(
                        snapshot(&w.app).await == before,
                        "{season} {action} changed data"
                    );
                }
            }
            results.push((action, s));
        }
        // The cell's thread is there in every season.
        let (s, cells) = w
            .app
            .get(
                &format!("/api/v1/realms/{R}/scoreboards/{dsb}/point-requests/{dm}/{dgl}/comments"),
                &t,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{cells}");
        assert_eq!(cells[0]["body"], "miért 5?", "{cells}");
        assert_eq!(results.len(), 14);
    }
}

/// One action of the season matrix on its season's fixtures.
async fn run_action(w: &World, fx: &Fx, coll: &str, action: &str) -> (StatusCode, Value) {
    let t = w.god_t();
    let (dm, dgl, dsb) = (&fx.draft.1, &fx.draft.2, &fx.draft.3);
    let (vm, vgl, vsb) = (&fx.v2.1, &fx.v2.2, &fx.v2.3);
    match action {
        "create collection" => {
            w.app
                .post(
                    &format!("/api/v1/realms/{R}/guideline-collections"),
                    &t,
                    json!({"groupId": fx.fresh, "semesterId": w.semester, "name": "Új"}),
                )
                .await
        }
        "add guideline" => {
            w.app
                .post(
                    &format!("/api/v1/realms/{R}/guideline-collections/{coll}/guidelines"),
                    &t,
                    json!({"title": "Felelősség", "category": "RESPONSIBILITY",
                           "maxPerMember": 5, "maxPerGuideline": 5}),
                )
                .await
        }
        "create scoreboard" => w.scoreboard(&fx.fresh, w.god).await,
        "fill" => w.points(w.god, dsb, dm, dgl, 6).await,
        "submit" => w.act(w.god, dsb, "submit").await,
        "new version" => w.act(w.god, &fx.rej, "versions").await,
        "fill resubmission" => w.points(w.god, vsb, vm, vgl, 7).await,
        "resubmit" => w.act(w.god, vsb, "submit").await,
        "accept entry award" => {
            w.app
                .post(
                    &format!(
                        "/api/v1/realms/{R}/scoreboards/{}/entry-award-requests/{}/accept",
                        fx.sub.3, fx.sub.1
                    ),
                    &t,
                    Value::Null,
                )
                .await
        }
        "reject entry award" => {
            w.app
                .post(
                    &format!(
                        "/api/v1/realms/{R}/scoreboards/{}/entry-award-requests/{}/reject",
                        fx.sub2.3, fx.sub2.1
                    ),
                    &t,
                    json!({"reason": "nem elég"}),
                )
                .await
        }
        "accept" => w.act(w.god, &fx.sub.3, "accept").await,
        "reject" => w.act(w.god, &fx.sub2.3, "reject").await,
        "comment" => {
            w.app
                .post(
                    &format!("/api/v1/realms/{R}/scoreboards/{dsb}/comments"),
                    &t,
                    json!({"body": "kérdés"}),
                )
                .await
        }
        "cell comment" => {
            w.app
                .post(
                    &format!(
                        "/api/v1/realms/{R}/scoreboards/{dsb}/point-requests/{dm}/{dgl}/comments"
                    ),
                    &t,
                    json!({"body": "miért 5?"}),
                )
                .await
        }
        other => unreachable!("{other}"),
    }
}

struct Fx {
    fresh: String,
    draft: (String, String, String, String),
    sub: (String, String, String, String),
    sub2: (String, String, String, String),
    rej: String,
    v2: (String, String, String, String),
}

async fn collection_of_group(w: &World, group: &str) -> String {
    let (s, cols) = w
        .app
        .get(
            &format!("/api/v1/realms/{R}/groups/{group}/guideline-collections"),
            &w.god_t(),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{cols}");
    id(&cols[0])
}

/// A change of season that would strand work is refused with a message naming it; the
/// semester can change only while OFF; leaving JUDGING computes the history, again and
/// again with the same result; points of the previous semester count.
#[tokio::test]
async fn season_changes_guard_work_and_closing_computes_the_formula() {
    let w = World::new().await;
    let (g, m, gl, sb) = fixture(&w, "Lángész", true).await;
    let coll = collection_of_group(&w, &g).await;
    let (s, resp) = w
        .app
        .post(
            &format!("/api/v1/realms/{R}/guideline-collections/{coll}/guidelines"),
            &w.god_t(),
            json!({"title": "Felelősség", "category": "RESPONSIBILITY", "maxPerMember": 20,
                   "maxPerGuideline": 100}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{resp}");
    let resp = id(&resp);
    // WORK 10 (the guideline's maximum) + RESPONSIBILITY 15 → 25.
    assert_eq!(w.points(w.god, &sb, &m, &gl, 10).await.0, StatusCode::OK);
    assert_eq!(w.points(w.god, &sb, &m, &resp, 15).await.0, StatusCode::OK);
    // A member with WORK 2 only: 0 points.
    let m1 = w.member(&g, w.members[1], &[]).await;
    assert_eq!(w.points(w.god, &sb, &m1, &gl, 2).await.0, StatusCode::OK);
    // A draft with requests cannot be judged: refused, naming the group.
    let (s, b) = w.season("JUDGING").await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert!(
        msg(&b).contains("\"Lángész\" (a draft not yet submitted)"),
        "{b}"
    );
    assert!(msg(&b).contains("from SUBMISSION to JUDGING"), "{b}");
    // The scoreboard shows its maxima and every member's points by the formula.
    let (_, d) = w
        .app
        .get(&format!("/api/v1/realms/{R}/scoreboards/{sb}"), &w.god_t())
        .await;
    assert_eq!(d["limits"]["workPerMember"], 30, "{d}");
    assert_eq!(d["limits"]["responsibilityPerMember"], 20, "{d}");
    assert_eq!(d["limits"]["totalPerMember"], 50, "{d}");
    assert_eq!(d["limits"]["maxPointsPerSemester"], 50, "{d}");
    assert_eq!(d["readOnly"], false, "{d}");
    let maxima: Vec<(Value, Value)> = d["guidelines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["maxPerMember"].clone(), g["maxPerGuideline"].clone()))
        .collect();
    assert_eq!(
        maxima,
        vec![(json!(10), json!(100)), (json!(20), json!(100))]
    );
    let mut scores: Vec<(i64, i64, i64)> = d["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["work"].as_i64().unwrap(),
                x["responsibility"].as_i64().unwrap(),
                x["points"].as_i64().unwrap(),
            )
        })
        .collect();
    scores.sort();
    assert_eq!(scores, vec![(2, 0, 0), (10, 15, 25)]);
    assert_eq!(w.act(w.god, &sb, "submit").await.0, StatusCode::OK);
    let (s, b) = w.season("JUDGING").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // Another semester only from OFF; unknown semesters are refused.
    let (s, sem2) = w
        .app
        .post(
            &format!("/api/v1/realms/{R}/semesters"),
            &w.god_t(),
            json!({"name": "2025/26/2", "startsOn": "2026-02-01", "endsOn": "2026-06-30"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{sem2}");
    let sem2 = id(&sem2);
    let (s, b) = w
        .season_body(json!({"season": "SUBMISSION", "semesterId": sem2}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert!(msg(&b).contains("set the season to OFF"), "{b}");
    let (s, b) = w
        .season_body(json!({"season": "OFF", "semesterId": Uuid::new_v4()}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let (s, b) = w.season_body(json!({"season": "WINTER"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    // A submission nobody judged: closing is refused.
    let (s, b) = w.season("OFF").await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert!(msg(&b).contains("a submission not yet judged"), "{b}");
    assert_eq!(w.act(w.evaluator, &sb, "accept").await.0, StatusCode::OK);
    let (s, b) = w.season("OFF").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["season"], "OFF");
    assert_eq!(b["historyRows"], 2, "{b}");
    let first = w.user_points(w.members[0]).await;
    assert_eq!(first["items"][0]["points"].as_f64(), Some(25.0), "{first}");
    assert_eq!(first["items"][0]["groups"][0]["points"], 25, "{first}");
    // WORK 2 → 0 points: recorded, and the figure is 0.
    let zero = w.user_points(w.members[1]).await;
    assert_eq!(zero["items"][0]["points"].as_f64(), Some(0.0), "{zero}");
    // Re-run: OFF → JUDGING → OFF gives the same history.
    let history = || async {
        let mut rows = w.app.snapshot("point_history").await;
        // recorded_at differs per run; the rest must not.
        rows.iter_mut().for_each(|r| {
            *r = r
                .split(',')
                .filter(|c| !c.contains(':'))
                .collect::<Vec<_>>()
                .join(",")
        });
        rows
    };
    let before = history().await;
    for _ in 0..2 {
        assert_eq!(w.season("JUDGING").await.0, StatusCode::OK);
        let (s, b) = w.season("OFF").await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(b["historyRows"], 2, "{b}");
    }
    assert_eq!(history().await, before);
    assert_eq!(w.user_points(w.members[0]).await, first);
    // OFF → OFF changes nothing and computes nothing.
    let (s, b) = w.season("OFF").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["historyRows"], Value::Null, "{b}");

    // The next semester: the previous one is read-only, its points still count.
    let (s, b) = w
        .season_body(json!({"season": "SUBMISSION", "semesterId": sem2}))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = w.points(w.god, &sb, &m, &gl, 1).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    let (s, old) = w
        .app
        .get(
            &format!(
                "/api/v1/realms/{R}/scoreboards?groupId={g}&semesterId={}",
                w.semester
            ),
            &w.god_t(),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{old}");
    assert_eq!(old["items"][0]["id"], sb.as_str(), "{old}");
    let (_, d) = w
        .app
        .get(&format!("/api/v1/realms/{R}/scoreboards/{sb}"), &w.god_t())
        .await;
    assert_eq!(d["readOnly"], true, "{d}");
    // Copy the guidelines of the semester before in one call.
    let (s, c) = w
        .app
        .post(
            &format!("/api/v1/realms/{R}/guideline-collections/copy"),
            &w.god_t(),
            json!({"groupId": g, "semesterId": sem2}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    assert_eq!(c["semesterId"], sem2.as_str());
    let copied: Vec<(Value, Value, Value)> = c["guidelines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["title"].clone(),
                x["maxPerMember"].clone(),
                x["category"].clone(),
            )
        })
        .collect();
    assert_eq!(
        copied,
        vec![
            (json!("Munka"), json!(10), json!("WORK")),
            (json!("Felelősség"), json!(20), json!("RESPONSIBILITY"))
        ]
    );
    let (s, b) = w
        .app
        .post(
            &format!("/api/v1/realms/{R}/guideline-collections/copy"),
            &w.god_t(),
            json!({"groupId": g, "semesterId": sem2}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    let (s, b) = w
        .app
        .post(
            &format!("/api/v1/realms/{R}/guideline-collections/copy"),
            &w.god_t(),
            json!({"groupId": g, "semesterId": w.semester}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}"); // not the semester being evaluated
    let gl2 = c["guidelines"][0]["id"].as_str().unwrap().to_string();
    let sem1 = w.semester.clone();
    let w2 = World {
        semester: sem2.clone(),
        memberships: Vec::new(),
        ..w
    };
    let (s, sb2) = w2.scoreboard(&g, w2.god).await;
    assert_eq!(s, StatusCode::CREATED, "{sb2}");
    let sb2 = id(&sb2);
    // 10 WORK this semester; the group's total is 25 + 10 = 35.
    assert_eq!(
        w2.points(w2.god, &sb2, &m, &gl2, 10).await.0,
        StatusCode::OK
    );
    w2.act(w2.god, &sb2, "submit").await;
    assert_eq!(w2.season("JUDGING").await.0, StatusCode::OK);
    w2.act(w2.god, &sb2, "accept").await;
    let (s, b) = w2.season("OFF").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let p = w2.user_points(w2.members[0]).await;
    assert_eq!(p["items"][0]["semesterName"], "2025/26/2", "{p}");
    assert_eq!(p["items"][0]["previousSemesterName"], "2025/26/1", "{p}");
    assert_eq!(p["items"][0]["points"].as_f64(), Some(35.0), "{p}");
    assert_eq!(p["items"][0]["groups"][0]["semesterPoints"], 10, "{p}");
    assert_eq!(
        p["items"][0]["groups"][0]["previousSemesterPoints"], 25,
        "{p}"
    );
    assert_eq!(p["items"][1]["points"].as_f64(), Some(25.0), "{p}");

    // Exports (manageRealm): CSV with the documented columns.
    let export = |path: String, who: Uuid| {
        let w2 = &w2;
        async move {
            let (s, b) = w2.app.get(&path, &w2.t(who)).await;
            (s, b)
        }
    };
    let parse = |b: &Value| -> (Vec<String>, Vec<Vec<String>>) {
        let text = b.as_str().expect("CSV text");
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let header = r.headers().unwrap().iter().map(String::from).collect();
        let rows = r
            .records()
            .map(|x| x.unwrap().iter().map(String::from).collect())
            .collect();
        (header, rows)
    };
    let (s, b) = export(
        format!("/api/v1/realms/{R}/exports/point-history.csv?semester=2025%2F26%2F2"),
        w2.god,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (header, rows) = parse(&b);
    assert_eq!(
        header,
        [
            "semester",
            "user_id",
            "points",
            "points_integer",
            "points_exact",
            "sum_of_squares",
            "groups"
        ]
    );
    let mine = rows
        .iter()
        .find(|r| r[1] == w2.members[0].to_string())
        .expect("my row");
    assert_eq!(mine[0], "2025/26/2");
    assert_eq!(&mine[2..], ["35.00", "35", "35", "1225", "1"]);
    // The paged totals count the semester before too, a page at a time: every row of
    // the export, with the same figure.
    let mut paged = Vec::new();
    let mut cursor = String::new();
    loop {
        let (s, page) = w2
            .app
            .get(
                &format!(
                    "/api/v1/realms/{R}/semesters/{sem2}/points?limit=1{}",
                    if cursor.is_empty() {
                        String::new()
                    } else {
                        format!("&cursor={cursor}")
                    }
                ),
                &w2.t(w2.god),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{page}");
        for u in page["items"].as_array().unwrap() {
            paged.push((
                u["userId"].as_str().unwrap().to_string(),
                u["sumOfSquares"].as_i64().unwrap(),
            ));
        }
        match page["nextCursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    let mut exported: Vec<(String, i64)> = rows
        .iter()
        .map(|r| (r[1].clone(), r[5].parse().unwrap()))
        .collect();
    exported.sort();
    assert_eq!(paged, exported);
    assert!(
        paged.contains(&(w2.members[0].to_string(), 1225)),
        "{paged:?}"
    );
    let (s, b) = export(
        format!("/api/v1/realms/{R}/exports/entry-awards.csv?semester={sem1}"),
        w2.god,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (header, _) = parse(&b);
    assert_eq!(
        header,
        [
            "semester",
            "group_id",
            "group_name",
            "user_id",
            "membership_id",
            "kind",
            "justification",
            "reviewed_by",
            "reviewed_at"
        ]
    );
    let (s, b) = export(
        format!("/api/v1/realms/{R}/exports/active-members.csv"),
        w2.god,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (header, rows) = parse(&b);
    assert_eq!(
        header,
        [
            "group_id",
            "group_name",
            "user_id",
            "membership_id",
            "status",
            "posts",
            "start_at"
        ]
    );
    assert!(
        rows.iter()
            .any(|r| r[1] == "Lángész" && r[2] == w2.members[0].to_string() && r[4] == "ACTIVE"),
        "{rows:?}"
    );
    assert!(rows.iter().any(|r| r[5] == "leader"), "{rows:?}");
    for (path, who) in [
        (
            format!("/api/v1/realms/{R}/exports/active-members.csv"),
            w2.evaluator,
        ),
        (
            format!("/api/v1/realms/{R}/exports/point-history.csv?semester={sem1}"),
            w2.leader,
        ),
    ] {
        let (s, b) = export(path.clone(), who).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}: {b}");
    }
    let (s, _) = export(
        format!("/api/v1/realms/{R}/exports/point-history.csv?semester=1999"),
        w2.god,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, b) = export(
        format!("/api/v1/realms/{R}/exports/entry-awards.csv?semester=%00x"),
        w2.god,
    )
    .await;
    // A bad query value is a 400, like every query and path parameter.
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
}

/// Entry award requests are reviewed on their own; the accepted ones are exported.
#[tokio::test]
async fn entry_awards_are_reviewed_apart_from_points() {
    let w = World::new().await;
    // The group where `leader` has editScores but not evaluateScores.
    w.guideline(&w.group, "Munka", 10, 100).await;
    let (s, sb) = w.scoreboard(&w.group, w.leader).await;
    assert_eq!(s, StatusCode::CREATED, "{sb}");
    let sb = id(&sb);
    let m = w.memberships[0].clone();
    assert_eq!(w.entry(w.god, &sb, &m, "KDO").await.0, StatusCode::OK);
    assert_eq!(w.act(w.god, &sb, "submit").await.0, StatusCode::OK);
    w.force_season("JUDGING").await;
    let url = |action: &str| {
        format!("/api/v1/realms/{R}/scoreboards/{sb}/entry-award-requests/{m}/{action}")
    };
    // Only evaluateScores; a rejection needs a clean reason.
    let (s, b) = w
        .app
        .post(&url("accept"), &w.t(w.leader), Value::Null)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    for bad in [json!({"reason": " "}), json!({"reason": "a\u{0}b"})] {
        let (s, b) = w.app.post(&url("reject"), &w.t(w.evaluator), bad).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    }
    // Rejecting the award does not reject the points, and vice versa.
    let (s, e) = w
        .app
        .post(
            &url("reject"),
            &w.t(w.evaluator),
            json!({"reason": "nem indokolt"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{e}");
    assert_eq!(e["status"], "REJECTED");
    assert_eq!(e["rejectionReason"], "nem indokolt");
    let (s, b) = w
        .app
        .post(&url("accept"), &w.t(w.evaluator), Value::Null)
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert!(msg(&b).contains("already REJECTED"), "{b}");
    assert_eq!(w.act(w.evaluator, &sb, "accept").await.0, StatusCode::OK);
    let (_, d) = w
        .app
        .get(&format!("/api/v1/realms/{R}/scoreboards/{sb}"), &w.god_t())
        .await;
    assert_eq!(d["status"], "ACCEPTED");
    assert_eq!(d["entryAwardRequests"][0]["status"], "REJECTED");
    // A reviewed request is no stranded work; closing goes through.
    let (s, b) = w.season("OFF").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, csv_text) = w
        .app
        .get(
            &format!(
                "/api/v1/realms/{R}/exports/entry-awards.csv?semester={}",
                w.semester
            ),
            &w.god_t(),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    // Header only: the one request was rejected.
    assert_eq!(csv_text.as_str().unwrap().lines().count(), 1, "{csv_text}");
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
    w.force_season("JUDGING").await;
    w.act(w.god, &sb, "accept").await;
    w.force_season("OFF").await;

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
    let (s, b) = w
        .app
        .call(
            Method::PUT,
            "/api/v1/realms/beta/evaluation-season",
            Some(&t),
            Some(json!({"season": "SUBMISSION", "semesterId": id(&sem_b)})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // Alpha's semester is not beta's.
    let (s, b) = w
        .app
        .call(
            Method::PUT,
            "/api/v1/realms/beta/evaluation-season",
            Some(&t),
            Some(json!({"season": "OFF", "semesterId": w.semester})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");

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
    w.force_season("SUBMISSION").await;
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
    assert_eq!(pa["items"][0]["points"].as_f64(), Some(7.0), "{pa}");
    assert_eq!(pb["items"], json!([]));
    assert_eq!(pb["realmId"], "beta");

    // Layer 3: unfiltered reads of the service role see only the transaction's realm.
    let mut c = sqlx::PgConnection::connect(&w.app.database.app_url)
        .await
        .unwrap();
    // Every realm-scoped table, from the catalog.
    for table in common::realm_tables(&w.app.database.owner_url).await {
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
        "/api/v1/realms/{realm}/evaluation-season",
        "/api/v1/realms/{realm}/guideline-collections/copy",
        "/api/v1/realms/{realm}/exports/point-history.csv",
        "/api/v1/realms/{realm}/exports/entry-awards.csv",
        "/api/v1/realms/{realm}/exports/active-members.csv",
        "/api/v1/realms/{realm}/scoreboards/{id}/entry-award-requests/{membership}/accept",
        "/api/v1/realms/{realm}/scoreboards/{id}/point-requests/{membership}/{guideline}/comments",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
}

/// A hub whose directory accepts one service token.
async fn hub_with_directory(service_token: &str) -> TestApp {
    let pg = localpg::LocalPostgres::shared().expect("start postgres");
    let database = pg.fresh_database().await.expect("fresh database");
    let signer = pek::auth::Signer::generate("pek-hub", "pek").expect("key");
    let dir = std::env::temp_dir().join(format!("pek-test-dir-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("key.pem");
    std::fs::write(&key, signer.public_pem()).unwrap();
    let tokens = dir.join("directory-tokens");
    std::fs::write(&tokens, format!("authsch {service_token}\n")).unwrap();
    let mut args = common::args(&database, pek::config::Mode::Hub, None, key);
    args.directory_token_file = Some(tokens);
    let (_state, router) = pek::app::build(&args).await.expect("build app");
    let db = pek::db::Db::connect(&database.app_url, 5)
        .await
        .expect("connect");
    TestApp {
        router,
        db,
        signer,
        database,
        audience: "pek".to_string(),
    }
}

/// The directory reads realms the hub hosts directly: profile basics, current
/// memberships with posts, accepted entry awards — with a service token only.
#[tokio::test]
async fn directory_answers_services_for_hosted_realms() {
    let token = format!("svc-{}", Uuid::new_v4().simple());
    let w = World::on(hub_with_directory(&token).await).await;
    w.guideline(&w.group, "Munka", 10, 100).await;
    let (_, sb) = w.scoreboard(&w.group, w.leader).await;
    let sb = id(&sb);
    let m0 = w.memberships[0].clone();
    assert_eq!(w.entry(w.leader, &sb, &m0, "KB").await.0, StatusCode::OK);
    assert_eq!(w.act(w.leader, &sb, "submit").await.0, StatusCode::OK);
    w.force_season("JUDGING").await;
    let (s, b) = w
        .app
        .post(
            &format!("/api/v1/realms/{R}/scoreboards/{sb}/entry-award-requests/{m0}/accept"),
            &w.t(w.evaluator),
            Value::Null,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let get = |path: String, bearer: Option<String>| {
        let app = &w.app;
        async move {
            let (s, b) = app.call(Method::GET, &path, bearer.as_deref(), None).await;
            (s, b)
        }
    };
    let svc = Some(token.clone());
    // `lead` is the leader's AuthSCH id.
    let (s, u) = get("/internal/v1/directory/users/lead".into(), svc.clone()).await;
    assert_eq!(s, StatusCode::OK, "{u}");
    assert_eq!(u["id"], w.leader.to_string());
    assert_eq!(u["profile"]["firstName"], "Lea", "{u}");
    assert_eq!(u["realms"], json!([R]), "{u}");
    let (s, ms) = get(
        "/internal/v1/directory/users/lead/memberships".into(),
        svc.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{ms}");
    assert_eq!(ms["items"][0]["realmId"], R, "{ms}");
    assert_eq!(ms["items"][0]["posts"], json!(["leader"]), "{ms}");
    assert_eq!(ms["partial"], false);
    let member = w.members[0];
    let (s, en) = get(
        format!("/internal/v1/directory/entrants/{member}?semester=2025%2F26%2F1"),
        svc.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{en}");
    assert_eq!(en["items"][0]["kind"], "KB", "{en}");
    assert_eq!(en["items"][0]["groupName"], "Kör", "{en}");
    for bearer in [None, Some(w.t(member)), Some(format!("{token}x"))] {
        let (s, b) = get(
            format!("/internal/v1/directory/users/{member}/memberships"),
            bearer.clone(),
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{bearer:?}: {b}");
    }
    // The realm part is not for services either.
    let (s, _) = get(
        format!("/internal/v1/realms/{R}/directory/users/{member}/memberships"),
        svc.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Someone merged into the leader (as a hub administrator's merge leaves them) is
    // answered as the leader, by their old id and by their old AuthSCH id alike.
    let old_self = w.app.person("lead-old", "Lea", "Régi", "9").await;
    let mut su = sqlx::PgConnection::connect(&w.app.database.superuser_url)
        .await
        .expect("su");
    sqlx::query("UPDATE users SET merged_into = $2, merged_at = now() WHERE id = $1")
        .bind(old_self)
        .bind(w.leader)
        .execute(&mut su)
        .await
        .expect("merged");
    for old in [old_self.to_string(), "lead-old".to_string()] {
        let (s, u) = get(format!("/internal/v1/directory/users/{old}"), svc.clone()).await;
        assert_eq!(s, StatusCode::OK, "{u}");
        assert_eq!(u["id"], w.leader.to_string(), "{old}: {u}");
        assert_eq!(u["authSchId"], "lead", "{old}: {u}");
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
        assert!(
            msg(&b).contains("only memberships the person accepted"),
            "{b}"
        );
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

/// Constraint violations of the evaluation tables answer with the client's mistake (status
/// and message), mapped where the query is made.
#[tokio::test]
async fn evaluation_constraint_violations_are_the_clients_mistakes() {
    let w = World::new().await;
    let t = w.god_t();
    w.guideline(&w.group, "Munka", 10, 100).await;
    // A second collection for the same group and semester.
    let (s, b) = w
        .app
        .post(
            &format!("/api/v1/realms/{R}/guideline-collections"),
            &t,
            json!({"groupId": w.group, "semesterId": w.semester, "name": "Még egy"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert_eq!(
        msg(&b),
        "this group already has a guideline collection for this semester"
    );
    // A second guideline with the same title in the collection.
    let (_, list) = w
        .app
        .get(
            &format!(
                "/api/v1/realms/{R}/groups/{}/guideline-collections?semesterId={}",
                w.group, w.semester
            ),
            &t,
        )
        .await;
    let collection = id(&list[0]);
    let (s, b) = w
        .app
        .post(
            &format!("/api/v1/realms/{R}/guideline-collections/{collection}/guidelines"),
            &t,
            json!({"title": "Munka", "category": "WORK", "maxPerMember": 5, "maxPerGuideline": 5}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert_eq!(
        msg(&b),
        "this collection already has a guideline with this title"
    );
    // A second live scoreboard for the group and semester.
    let (s, b) = w.scoreboard(&w.group, w.god).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = w.scoreboard(&w.group, w.god).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert_eq!(
        msg(&b),
        "this group already has a scoreboard for this semester; after a rejection, create a \
         new version of the rejected one"
    );
}
