//! The BFF answers the web pages are built on, over a real hub and two workers: group
//! search pages through every realm with one opaque cursor, and people's groups across
//! the realms (mine everywhere; someone else's only where I may see the members).

use pek::group::{self, NewGroup};
use pek::policy::Grants;
use pek_tests::federation::{Federation, Options};
use reqwest::Method;
use uuid::Uuid;

#[tokio::test]
async fn group_search_pages_through_every_realm_with_one_cursor() {
    let fed = Federation::start(Options::default())
        .await
        .expect("federation");
    let (people, _) = pek_tests::web_support::seed(&fed).await;
    // More groups than a page in each realm, with names that interleave across realms.
    for (i, w) in fed.workers.iter().enumerate() {
        let mut tx = w.db.realm(&w.realm).await.expect("tx");
        let grants = Grants::load(&mut tx, people.alice).await.expect("grants");
        for n in 0..5 {
            group::create(
                &mut tx,
                &grants,
                NewGroup {
                    name: format!("Csoport {n}{i}").parse().expect("name"),
                    parent_id: None,
                    purpose: None,
                    description: None,
                },
            )
            .await
            .expect("group");
        }
        tx.commit().await.expect("commit");
    }
    let token = fed.token(people.alice);
    let get = |path: String| {
        let token = token.clone();
        let url = format!("{}{path}", fed.hub.url);
        let fed = &fed;
        async move {
            fed.call(Method::GET, &url, &token, None)
                .await
                .expect("call")
        }
    };
    let (s, all) = get("/api/v1/groups?limit=200".into()).await;
    assert_eq!(s, 200, "{all}");
    let all: Vec<String> = all["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|g| g["id"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(all.len(), 2 + 7 + 7, "hub 2, each worker 2 + 5");

    let mut paged = Vec::new();
    let mut realms_per_page = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..20 {
        let path = match &cursor {
            None => "/api/v1/groups?limit=3".to_string(),
            Some(c) => format!("/api/v1/groups?limit=3&cursor={c}"),
        };
        let (s, page) = get(path).await;
        assert_eq!(s, 200, "{page}");
        let items = page["items"].as_array().expect("items").clone();
        assert!(items.len() <= 3);
        let mut realms: Vec<String> = items
            .iter()
            .map(|g| g["realmId"].as_str().unwrap_or("").to_string())
            .collect();
        realms.dedup();
        realms_per_page.push(realms);
        paged.extend(
            items
                .iter()
                .map(|g| g["id"].as_str().unwrap_or("").to_string()),
        );
        match page["nextCursor"].as_str() {
            Some(c) => {
                assert_eq!(page["truncated"], true);
                cursor = Some(c.to_string());
            }
            None => {
                cursor = None;
                break;
            }
        }
    }
    assert!(cursor.is_none(), "paging did not end");
    // Every group exactly once, in the order of the single big page.
    assert_eq!(paged, all);
    assert!(
        realms_per_page.iter().any(|r| r.len() > 1),
        "pages merge realms: {realms_per_page:?}"
    );

    let (s, bad) = get("/api/v1/groups?cursor=not-a-cursor".into()).await;
    assert_eq!(s, 400, "{bad}");
}

#[tokio::test]
async fn groups_of_people_across_realms_show_only_what_the_caller_may_see() {
    let mut fed = Federation::start(Options::default())
        .await
        .expect("federation");
    let (people, cili) = pek_tests::web_support::seed(&fed).await;
    let hub = fed.hub.url.clone();

    // Realm names for the caller: their own realms and the hub's, not the whole federation
    // (Cecília is in kszk only; kir-dev is none of her business).
    let (s, realms) = fed
        .call(
            Method::GET,
            &format!("{hub}/api/v1/federation/realms"),
            &fed.token(cili),
            None,
        )
        .await
        .expect("federation/realms");
    assert_eq!(s, 200, "{realms}");
    let ids: Vec<&str> = realms["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(ids, ["hub", "kszk"], "{realms}");

    // Mine: every realm I am in, grouped by realm, with status and posts.
    let (s, mine) = fed
        .call(
            Method::GET,
            &format!("{hub}/api/v1/me/groups"),
            &fed.token(people.bob),
            None,
        )
        .await
        .expect("me/groups");
    assert_eq!(s, 200, "{mine}");
    let rows: Vec<(String, String, String)> = mine["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|m| {
            (
                m["realmId"].as_str().unwrap_or("").to_string(),
                m["groupName"].as_str().unwrap_or("").to_string(),
                m["posts"][0].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("hub", "Simonyi Károly Szakkollégium", "leader"),
            ("kir-dev", "Kir-Dev Web", "leader"),
            ("kszk", "KSZK Üzemeltetés", "leader"),
        ]
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    );
    assert_eq!(mine["partial"], false);

    // Someone else's: Alice (GOD) sees Áron's groups in both workers.
    let aron_groups = format!("{hub}/api/v1/users/{}/groups", people.aron);
    let (s, seen) = fed
        .call(Method::GET, &aron_groups, &fed.token(people.alice), None)
        .await
        .expect("users/groups");
    assert_eq!(s, 200, "{seen}");
    assert_eq!(seen["items"].as_array().map(Vec::len), Some(2), "{seen}");

    // Cecília shares kszk with Áron but may not see his group's members: nothing.
    let (s, seen) = fed
        .call(Method::GET, &aron_groups, &fed.token(cili), None)
        .await
        .expect("users/groups");
    assert_eq!(s, 200, "{seen}");
    assert_eq!(seen["items"], serde_json::json!([]), "{seen}");

    // A stranger who shares no realm: the person does not exist for them.
    let stranger = fed
        .person("web-stranger", "Idegen", "Ember")
        .await
        .expect("person");
    let (s, _) = fed
        .call(Method::GET, &aron_groups, &fed.token(stranger), None)
        .await
        .expect("users/groups");
    assert_eq!(s, 404);
    let (s, _) = fed
        .call(
            Method::GET,
            &format!("{hub}/api/v1/users/{}/groups", Uuid::new_v4()),
            &fed.token(people.alice),
            None,
        )
        .await
        .expect("users/groups");
    assert_eq!(s, 404);

    // A realm that does not answer is named; the rest still comes.
    fed.worker("kszk").instance.kill();
    let (s, mine) = fed
        .call(
            Method::GET,
            &format!("{hub}/api/v1/me/groups"),
            &fed.token(people.bob),
            None,
        )
        .await
        .expect("me/groups");
    assert_eq!(s, 200, "{mine}");
    assert_eq!(mine["partial"], true);
    assert_eq!(mine["unavailable"], serde_json::json!(["kszk"]));
    assert_eq!(mine["items"].as_array().map(Vec::len), Some(2), "{mine}");
}
