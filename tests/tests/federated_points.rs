//! The point formula end to end across realms: a hub and two workers as real `pek serve`
//! processes, scoreboards accepted in both realms over two semesters, and the hub's
//! `/api/v1/me/points` combining every group of every realm with the same formula —
//! then a worker dies and the answer becomes partial, naming it. The same federation
//! serves the directory services read (`/internal/v1/directory/…`).

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
    // Invited, accepted by the member, made ACTIVE: points need the person's consent.
    let membership = id(&fed
        .join(
            &fed.hub.url,
            name,
            group.parse().expect("group id"),
            god,
            member,
            true,
        )
        .await
        .expect("join"));
    Realm {
        name,
        semesters,
        group,
        membership,
    }
}

/// One whole season in `realm` for `semester`: SUBMISSION, a guideline, the member's
/// WORK points, submit, JUDGING, accept, OFF (which computes the point history).
async fn season(
    fed: &Federation,
    god: &str,
    r: &Realm,
    semester: &str,
    work: i64,
    entry_award: Option<&str>,
) {
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
    if let Some(kind) = entry_award {
        ok(
            fed,
            god,
            Method::PUT,
            &format!(
                "/api/v1/realms/{name}/scoreboards/{sb}/entry-award-requests/{}",
                r.membership
            ),
            json!({"kind": kind, "justification": "kiemelkedő munka"}),
        )
        .await;
    }
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
    if entry_award.is_some() {
        ok(
            fed,
            god,
            Method::POST,
            &format!(
                "/api/v1/realms/{name}/scoreboards/{sb}/entry-award-requests/{}/accept",
                r.membership
            ),
            Value::Null,
        )
        .await;
    }
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
    // The directory's service tokens, as a mounted Secret would hold them.
    let dir = std::env::temp_dir().join(format!("pek-directory-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let service_token = format!("svc-{}", Uuid::new_v4().simple());
    let tokens = dir.join("directory-tokens");
    std::fs::write(&tokens, format!("# services\nauthsch {service_token}\n")).unwrap();
    let mut fed = Federation::start(Options {
        hub_env: vec![(
            "PEK_DIRECTORY_TOKEN_FILE".into(),
            tokens.display().to_string(),
        )],
        ..Options::default()
    })
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
    season(&fed, &t, &a, "2025/26/1", 20, None).await;
    season(&fed, &t, &a, "2025/26/2", 20, None).await;
    season(&fed, &t, &b, "2025/26/2", 30, Some("KDO")).await;

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

    // The directory: with the service token, by AuthSCH id or user id, across realms.
    let (http, hub_url) = (fed.http.clone(), fed.hub.url.clone());
    let dir_get = |path: String, token: Option<String>| {
        let http = http.clone();
        let url = format!("{hub_url}{path}");
        async move {
            let mut rb = http.get(url);
            if let Some(t) = token {
                rb = rb.bearer_auth(t);
            }
            let r = rb.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let svc = Some(service_token.clone());
    let (s, u) = dir_get(
        "/internal/v1/directory/users/points-member".into(),
        svc.clone(),
    )
    .await;
    assert_eq!(s, 200, "{u}");
    assert_eq!(u["id"], member.to_string(), "{u}");
    assert_eq!(u["profile"]["firstName"], "Tag", "{u}");
    assert_eq!(u["realms"], json!(["kir-dev", "kszk"]), "{u}");
    let (s, ms) = dir_get(
        format!("/internal/v1/directory/users/{member}/memberships"),
        svc.clone(),
    )
    .await;
    assert_eq!(s, 200, "{ms}");
    assert_eq!(ms["partial"], false, "{ms}");
    let mut realms: Vec<&str> = ms["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["realmId"].as_str().unwrap())
        .collect();
    realms.sort();
    assert_eq!(realms, ["kir-dev", "kszk"], "{ms}");
    assert_eq!(ms["items"][0]["status"], "ACTIVE", "{ms}");
    let (s, en) = dir_get(
        "/internal/v1/directory/entrants/points-member?semester=2025%2F26%2F2".into(),
        svc.clone(),
    )
    .await;
    assert_eq!(s, 200, "{en}");
    assert_eq!(en["items"].as_array().unwrap().len(), 1, "{en}");
    assert_eq!(en["items"][0]["kind"], "KDO", "{en}");
    assert_eq!(en["items"][0]["realmId"], "kszk", "{en}");
    let (s, en) = dir_get(
        "/internal/v1/directory/entrants/points-member?semester=2025%2F26%2F1".into(),
        svc.clone(),
    )
    .await;
    assert_eq!(s, 200, "{en}");
    assert_eq!(en["items"], json!([]), "{en}");
    let (s, _) = dir_get("/internal/v1/directory/users/nobody".into(), svc.clone()).await;
    assert_eq!(s, 404);
    // Without a service token, with a wrong one, or with a person's token: 401.
    for token in [
        None,
        Some("svc-wrong-but-long-enough".to_string()),
        Some(me.clone()),
    ] {
        for path in [
            "/internal/v1/directory/users/points-member".to_string(),
            format!("/internal/v1/directory/users/{member}/memberships"),
            "/internal/v1/directory/entrants/points-member?semester=2025%2F26%2F2".to_string(),
        ] {
            let (s, b) = dir_get(path.clone(), token.clone()).await;
            assert_eq!(s, 401, "{path} with {token:?}: {b}");
        }
    }
    // A worker's part answers the hub only (its realm token), not services or people.
    let worker_url = format!(
        "{}/internal/v1/realms/kszk/directory/users/{member}/memberships",
        fed.worker("kszk").instance.url
    );
    for token in [None, Some(service_token.clone()), Some(me.clone())] {
        let mut rb = fed.http.get(&worker_url);
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        assert_eq!(rb.send().await.unwrap().status().as_u16(), 401);
    }

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
    let (s, ms) = dir_get(
        format!("/internal/v1/directory/users/{member}/memberships"),
        svc,
    )
    .await;
    assert_eq!(s, 200, "{ms}");
    assert_eq!(ms["partial"], true, "{ms}");
    assert_eq!(ms["unavailable"], json!(["kszk"]), "{ms}");
    std::fs::remove_dir_all(&dir).ok();
}

/// `GET /api/v1/users/{id}/points` of the person's groups in `body`: (realm, points) of
/// the semester `name`, sorted.
fn groups_of(body: &Value, name: &str) -> Vec<(String, i64)> {
    let mut groups: Vec<(String, i64)> = semester(body, name)["groups"]
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
    groups
}

#[tokio::test]
async fn another_persons_points_show_only_what_the_viewer_may_see_in_each_realm() {
    let mut fed = Federation::start(Options::default())
        .await
        .expect("federation");
    let god = fed.person("pp-god", "Gode", "Pál").await.unwrap();
    let member = fed.person("pp-member", "Tag", "Teréz").await.unwrap();
    let leader = fed.person("pp-leader", "Vezető", "Vera").await.unwrap();
    let bystander = fed.person("pp-bystander", "Kör", "Kornél").await.unwrap();
    let stranger = fed.person("pp-stranger", "Idegen", "Iván").await.unwrap();
    fed.make_god("kir-dev", god).await.unwrap();
    fed.make_god("kszk", god).await.unwrap();
    let t = fed.token(god);
    let a = realm(&fed, &t, "kir-dev", member).await;
    let b = realm(&fed, &t, "kszk", member).await;
    // A second kszk group: the member is in it, `leader` leads it, `bystander` is a
    // plain member (who may see the group and its members, not their scores).
    let b2_group = id(&ok(
        &fed,
        &t,
        Method::POST,
        "/api/v1/realms/kszk/groups",
        json!({"name": "kszk második kör"}),
    )
    .await);
    let b2_id: Uuid = b2_group.parse().unwrap();
    let b2_membership = id(&fed
        .join(&fed.hub.url, "kszk", b2_id, &t, member, true)
        .await
        .unwrap());
    let lm = id(&fed
        .join(&fed.hub.url, "kszk", b2_id, &t, leader, true)
        .await
        .unwrap());
    ok(
        &fed,
        &t,
        Method::PATCH,
        &format!("/api/v1/realms/kszk/memberships/{lm}"),
        json!({"posts": ["leader"]}),
    )
    .await;
    fed.join(&fed.hub.url, "kszk", b2_id, &t, bystander, true)
        .await
        .unwrap();
    for (u, r) in [
        (member, "kir-dev"),
        (member, "kszk"),
        (leader, "kszk"),
        (bystander, "kszk"),
    ] {
        fed.wait_hub_knows(u, r, Duration::from_secs(20))
            .await
            .unwrap();
    }
    let b2 = Realm {
        name: "kszk",
        semesters: b.semesters.clone(),
        group: b2_group.clone(),
        membership: b2_membership,
    };
    // kszk's second group in the first semester (10), its first group in the second (30);
    // kir-dev 20 in the second.
    season(&fed, &t, &b2, "2025/26/1", 10, None).await;
    season(&fed, &t, &b, "2025/26/2", 30, None).await;
    season(&fed, &t, &a, "2025/26/2", 20, None).await;

    let path = format!("/api/v1/users/{member}/points");
    // The person themself: every group, the same figure as /me/points:
    // √(20² + 30² + 10²) = √1400 = 37.41.
    let own = ok(&fed, &fed.token(member), Method::GET, &path, Value::Null).await;
    assert_eq!(own["userId"], member.to_string(), "{own}");
    assert_eq!(semester(&own, "2025/26/2")["points"].as_f64(), Some(37.41));
    let mine = ok(
        &fed,
        &fed.token(member),
        Method::GET,
        "/api/v1/me/points",
        Value::Null,
    )
    .await;
    assert_eq!(own["totals"], mine["totals"], "{own} {mine}");
    // The realms' GOD (viewScores realm-wide in both): the same figure and groups.
    let by_god = ok(&fed, &t, Method::GET, &path, Value::Null).await;
    assert_eq!(by_god["partial"], false, "{by_god}");
    assert_eq!(
        semester(&by_god, "2025/26/2")["points"].as_f64(),
        Some(37.41),
        "{by_god}"
    );
    assert_eq!(
        groups_of(&by_god, "2025/26/2"),
        vec![
            ("kir-dev".to_string(), 20),
            ("kszk".to_string(), 10),
            ("kszk".to_string(), 30)
        ]
    );
    // The second group's leader: only that group (viewScores on it), in the one realm
    // they share — 10 from the semester before, not the member's 37.41.
    let by_leader = ok(&fed, &fed.token(leader), Method::GET, &path, Value::Null).await;
    assert_eq!(by_leader["partial"], false, "{by_leader}");
    assert_eq!(
        groups_of(&by_leader, "2025/26/2"),
        vec![("kszk".to_string(), 10)],
        "{by_leader}"
    );
    assert_eq!(
        semester(&by_leader, "2025/26/2")["groups"][0]["groupId"],
        b2_group.as_str()
    );
    assert_eq!(by_leader["totals"]["2025/26/2"].as_f64(), Some(10.0));
    let text = by_leader.to_string();
    for hidden in [&b.group, &a.group, "37.41", "kir-dev"] {
        assert!(
            !text.contains(hidden),
            "{hidden} leaked to the leader: {text}"
        );
    }
    // One semester by name.
    let one = ok(
        &fed,
        &fed.token(leader),
        Method::GET,
        &format!("{path}?semester=2025%2F26%2F1"),
        Value::Null,
    )
    .await;
    assert_eq!(one["semesters"].as_array().unwrap().len(), 1, "{one}");
    // A plain member of the same group shares a realm but may not see scores: 403, and
    // nothing about the points in the answer.
    let (s, body) = fed
        .call(
            Method::GET,
            &format!("{}{path}", fed.hub.url),
            &fed.token(bystander),
            None,
        )
        .await
        .unwrap();
    assert_eq!(s, 403, "{body}");
    assert!(body.get("semesters").is_none(), "{body}");
    assert!(!body.to_string().contains("2025/26"), "{body}");
    // Someone who shares no realm with the person: 404, as their profile is.
    let (s, body) = fed
        .call(
            Method::GET,
            &format!("{}{path}", fed.hub.url),
            &fed.token(stranger),
            None,
        )
        .await
        .unwrap();
    assert_eq!(s, 404, "{body}");
    assert!(body.get("semesters").is_none(), "{body}");
    // A malformed id is a 400.
    let (s, _) = fed
        .call(
            Method::GET,
            &format!("{}/api/v1/users/not-a-uuid/points", fed.hub.url),
            &t,
            None,
        )
        .await
        .unwrap();
    assert_eq!(s, 400);

    // kir-dev down: the GOD's answer is partial, names it, and combines the rest:
    // √(30² + 10²) = 31.62.
    fed.worker("kir-dev").instance.kill();
    let partial = ok(&fed, &t, Method::GET, &path, Value::Null).await;
    assert_eq!(partial["partial"], true, "{partial}");
    assert_eq!(partial["unavailable"], json!(["kir-dev"]), "{partial}");
    assert_eq!(
        semester(&partial, "2025/26/2")["points"].as_f64(),
        Some(31.62),
        "{partial}"
    );
    // kszk down too: nobody can say whether the leader may see anything → 503, not 403.
    fed.worker("kszk").instance.kill();
    let (s, body) = fed
        .call(
            Method::GET,
            &format!("{}{path}", fed.hub.url),
            &fed.token(leader),
            None,
        )
        .await
        .unwrap();
    assert_eq!(s, 503, "{body}");
}
