//! The point formula end to end across realms: a hub and two workers as real `pek serve`
//! processes, scoreboards accepted in both realms over two semesters, and the hub's
//! `/api/v1/me/points` combining every group of every realm with the same formula —
//! then a worker dies and the answer becomes partial, naming it.

use std::time::Duration;

use pek_tests::federation::{Federation, Options};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

/// Calls the hub, asserting a success; returns the body.
async fn ok(fed: &Federation, token: &str, method: Method, path: &str, body: Value) -> Value {
    let body = (!body.is_null()).then_some(body);
    let (s, b) = fed
        .call(method, &format!("{}{path}", fed.hub.url), token, body)
        .await
        .expect("call");
    assert!((200..300).contains(&s), "{path}: {s} {b}");
    b
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

struct Realm {
    name: &'static str,
    /// Semester name → id.
    semesters: Vec<(String, String)>,
    group: String,
    membership: String,
}

/// A realm with two semesters, one group and `member` in it.
async fn realm(fed: &Federation, god: &str, name: &'static str, member: Uuid) -> Realm {
    let mut semesters = Vec::new();
    for (sem, starts, ends) in [
        ("2025/26/1", "2025-09-01", "2026-01-31"),
        ("2025/26/2", "2026-02-01", "2026-06-30"),
    ] {
        let s = ok(
            fed,
            god,
            Method::POST,
            &format!("/api/v1/realms/{name}/semesters"),
            json!({"name": sem, "startsOn": starts, "endsOn": ends}),
        )
        .await;
        semesters.push((sem.to_string(), id(&s)));
    }
    let group = id(&ok(
        fed,
        god,
        Method::POST,
        &format!("/api/v1/realms/{name}/groups"),
        json!({"name": format!("{name} kör")}),
    )
    .await);
    let membership = id(&ok(
        fed,
        god,
        Method::POST,
        &format!("/api/v1/realms/{name}/groups/{group}/members"),
        json!({"userId": member, "status": "ACTIVE"}),
    )
    .await);
    Realm {
        name,
        semesters,
        group,
        membership,
    }
}

/// One whole season in `realm` for `semester`: SUBMISSION, a guideline, the member's
/// WORK points, submit, JUDGING, accept, OFF (which computes the point history).
async fn season(fed: &Federation, god: &str, r: &Realm, semester: &str, work: i64) {
    let name = r.name;
    let sem = &r
        .semesters
        .iter()
        .find(|s| s.0 == semester)
        .expect("semester")
        .1;
    ok(
        fed,
        god,
        Method::PUT,
        &format!("/api/v1/realms/{name}/evaluation-season"),
        json!({"season": "SUBMISSION", "semesterId": sem}),
    )
    .await;
    let coll = id(&ok(
        fed,
        god,
        Method::POST,
        &format!("/api/v1/realms/{name}/guideline-collections"),
        json!({"groupId": r.group, "semesterId": sem, "name": "Irányelvek"}),
    )
    .await);
    let gl = id(&ok(
        fed,
        god,
        Method::POST,
        &format!("/api/v1/realms/{name}/guideline-collections/{coll}/guidelines"),
        json!({"title": "Munka", "category": "WORK", "maxPerMember": 30, "maxPerGuideline": 300}),
    )
    .await);
    let sb = id(&ok(
        fed,
        god,
        Method::POST,
        &format!("/api/v1/realms/{name}/scoreboards"),
        json!({"groupId": r.group, "semesterId": sem}),
    )
    .await);
    ok(
        fed,
        god,
        Method::PUT,
        &format!(
            "/api/v1/realms/{name}/scoreboards/{sb}/point-requests/{}/{gl}",
            r.membership
        ),
        json!({ "points": work }),
    )
    .await;
    ok(
        fed,
        god,
        Method::POST,
        &format!("/api/v1/realms/{name}/scoreboards/{sb}/submit"),
        Value::Null,
    )
    .await;
    ok(
        fed,
        god,
        Method::PUT,
        &format!("/api/v1/realms/{name}/evaluation-season"),
        json!({"season": "JUDGING"}),
    )
    .await;
    ok(
        fed,
        god,
        Method::POST,
        &format!("/api/v1/realms/{name}/scoreboards/{sb}/accept"),
        Value::Null,
    )
    .await;
    let closed = ok(
        fed,
        god,
        Method::PUT,
        &format!("/api/v1/realms/{name}/evaluation-season"),
        json!({"season": "OFF"}),
    )
    .await;
    assert_eq!(closed["historyRows"], 1, "{closed}");
}

fn semester<'a>(body: &'a Value, name: &str) -> &'a Value {
    body["semesters"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["semesterName"] == name))
        .unwrap_or_else(|| panic!("no {name} in {body}"))
}

#[tokio::test]
async fn the_hub_combines_every_group_of_every_realm_with_the_formula() {
    let mut fed = Federation::start(Options::default())
        .await
        .expect("federation");
    let god = fed.person("points-god", "Gode", "Pál").await.unwrap();
    let member = fed.person("points-member", "Tag", "Teréz").await.unwrap();
    fed.make_god("kir-dev", god).await.unwrap();
    fed.make_god("kszk", god).await.unwrap();
    let t = fed.token(god);
    let a = realm(&fed, &t, "kir-dev", member).await;
    let b = realm(&fed, &t, "kszk", member).await;
    for r in ["kir-dev", "kszk"] {
        fed.wait_hub_knows(member, r, Duration::from_secs(20))
            .await
            .unwrap();
    }
    // kir-dev: 20 in each semester in the same group → that group's total is 40 for
    // 2025/26/2. kszk: 30 in 2025/26/2.
    season(&fed, &t, &a, "2025/26/1", 20).await;
    season(&fed, &t, &a, "2025/26/2", 20).await;
    season(&fed, &t, &b, "2025/26/2", 30).await;

    let me = fed.token(member);
    let body = ok(&fed, &me, Method::GET, "/api/v1/me/points", Value::Null).await;
    assert_eq!(body["partial"], false, "{body}");
    // √(40² + 30²) = 50.00 — not 40 + 30 = 70 (the sum of the realms' figures).
    let s2 = semester(&body, "2025/26/2");
    assert_eq!(s2["points"].as_f64(), Some(50.0), "{body}");
    assert_eq!(s2["pointsInteger"], 50, "{body}");
    assert_eq!(s2["sumOfSquares"], 2500, "{body}");
    let mut groups: Vec<(String, i64)> = s2["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["realmId"].as_str().unwrap().to_string(),
                g["points"].as_i64().unwrap(),
            )
        })
        .collect();
    groups.sort();
    assert_eq!(
        groups,
        vec![("kir-dev".to_string(), 40), ("kszk".to_string(), 30)]
    );
    assert_eq!(body["totals"]["2025/26/2"].as_f64(), Some(50.0), "{body}");
    // The first semester: only kir-dev's 20.
    assert_eq!(
        semester(&body, "2025/26/1")["points"].as_f64(),
        Some(20.0),
        "{body}"
    );
    // Newest first; the realms' own answers are there too.
    assert_eq!(body["semesters"][0]["semesterName"], "2025/26/2");
    assert_eq!(body["items"].as_array().unwrap().len(), 2, "{body}");
    assert_eq!(body["maxPointsPerSemester"], 100);
    // One semester by name.
    let one = ok(
        &fed,
        &me,
        Method::GET,
        "/api/v1/me/points?semester=2025%2F26%2F1",
        Value::Null,
    )
    .await;
    assert_eq!(one["semesters"].as_array().unwrap().len(), 1, "{one}");

    // A realm that does not answer: partial, named, and the figure from the others.
    fed.worker("kszk").instance.kill();
    let body = ok(&fed, &me, Method::GET, "/api/v1/me/points", Value::Null).await;
    assert_eq!(body["partial"], true, "{body}");
    assert_eq!(body["unavailable"], json!(["kszk"]), "{body}");
    assert_eq!(
        semester(&body, "2025/26/2")["points"].as_f64(),
        Some(40.0),
        "{body}"
    );
}
