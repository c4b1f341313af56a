//! Multi-process federation tests (DESIGN §8): a hub and two workers as real `pek serve`
//! processes on loopback, each with its own database on the throwaway PostgreSQL.

use std::time::{Duration, Instant};

use pek_tests::federation::{Federation, Options};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

fn names(body: &Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = body["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|g| {
                    (
                        g["realmId"].as_str().unwrap_or("").to_string(),
                        g["name"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Creates a root group in `realm` through the hub (forwarded to the worker).
async fn group(fed: &Federation, token: &str, realm: &str, name: &str) -> Uuid {
    let (s, body) = fed
        .call(
            Method::POST,
            &format!("{}/api/v1/realms/{realm}/groups", fed.hub.url),
            token,
            Some(json!({ "name": name })),
        )
        .await
        .expect("create group");
    assert_eq!(s, 201, "creating {name} in {realm}: {body}");
    body["id"].as_str().expect("id").parse().expect("uuid")
}

async fn search(fed: &Federation, token: &str, q: &str) -> (u16, Value, Duration) {
    let start = Instant::now();
    let (s, body) = fed
        .call(
            Method::GET,
            &format!("{}/api/v1/groups?q={q}", fed.hub.url),
            token,
            None,
        )
        .await
        .expect("search");
    (s, body, start.elapsed())
}

#[tokio::test]
async fn cross_realm_search_merges_and_degrades_to_partial_when_a_worker_dies() {
    let mut fed = Federation::start(Options {
        bff_deadline_ms: 1500,
        ..Options::default()
    })
    .await
    .expect("federation");
    let god = fed.person("god-1", "Gode", "Ferenc").await.unwrap();
    fed.make_god("kir-dev", god).await.unwrap();
    fed.make_god("kszk", god).await.unwrap();
    fed.wait_hub_knows(god, "kir-dev", Duration::from_secs(20))
        .await
        .unwrap();
    fed.wait_hub_knows(god, "kszk", Duration::from_secs(20))
        .await
        .unwrap();
    let token = fed.token(god);
    group(&fed, &token, "kir-dev", "Schönherz Kir-Dev").await;
    group(&fed, &token, "kszk", "Schönherz KSZK").await;
    group(&fed, &token, "kszk", "Other").await;

    // Accent-insensitive prefix, merged from both workers.
    let (s, body, _) = search(&fed, &token, "schon").await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        names(&body),
        vec![
            ("kir-dev".into(), "Schönherz Kir-Dev".into()),
            ("kszk".into(), "Schönherz KSZK".into()),
        ],
        "{body}"
    );
    assert_eq!(body["partial"], false);
    assert_eq!(body["unavailable"], json!([]));

    // One worker dies: the answer is partial, names the realm, and comes within the
    // deadline (1.5 s) plus slack — never a 5xx.
    fed.worker("kszk").instance.kill();
    let (s, body, took) = search(&fed, &token, "schon").await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["partial"], true, "{body}");
    assert_eq!(body["unavailable"], json!(["kszk"]), "{body}");
    // Why it is missing, in words a client can act on (the detail stays in the log).
    assert_eq!(
        body["leftOut"],
        json!([{"realm": "kszk", "reason": "unreachable"}]),
        "{body}"
    );
    assert_eq!(
        names(&body),
        vec![("kir-dev".into(), "Schönherz Kir-Dev".into())]
    );
    assert!(took < Duration::from_millis(2500), "took {took:?}");
    // A single-realm call to the dead realm: 503 with a message, not a hang.
    let (s, body) = fed
        .call(
            Method::GET,
            &format!("{}/api/v1/realms/kszk/groups", fed.hub.url),
            &token,
            None,
        )
        .await
        .unwrap();
    assert_eq!(s, 503, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("realm kszk is unavailable"));

    // Back up: full results again (once the health checks have seen it, if they had
    // marked it down meanwhile: a down realm is answered as unavailable at once).
    fed.worker("kszk").instance.start().await.expect("restart");
    let deadline = Instant::now() + Duration::from_secs(15);
    let body = loop {
        let (s, body, _) = search(&fed, &token, "schon").await;
        assert_eq!(s, 200);
        if body["partial"] == false || Instant::now() > deadline {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(body["partial"], false, "{body}");
    assert_eq!(names(&body).len(), 2, "{body}");

    // The health checks mark a dead worker down and a live one active again.
    fed.worker("kir-dev").instance.kill();
    let deadline = Instant::now() + Duration::from_secs(15);
    while fed.registry_status("kir-dev").await.unwrap() != "down" {
        assert!(Instant::now() < deadline, "kir-dev never marked down");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    fed.worker("kir-dev").instance.start().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while fed.registry_status("kir-dev").await.unwrap() != "active" {
        assert!(
            Instant::now() < deadline,
            "kir-dev never marked active again"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn editing_a_worker_group_through_the_bff_needs_permission() {
    // The hub speaks HTTP/2 to the worker here (the other tests: HTTP/1.1). With prior
    // knowledge there is no fallback: a worker that did not serve HTTP/2 would fail
    // every call below.
    let fed = Federation::start(Options {
        realms: vec!["kir-dev"],
        hub_env: vec![("PEK_BFF_WORKER_HTTP2".into(), "true".into())],
        ..Options::default()
    })
    .await
    .expect("federation");
    let god = fed.person("god-2", "Gode", "Ilona").await.unwrap();
    let member = fed.person("member-2", "Tag", "Tamás").await.unwrap();
    let stranger = fed.person("stranger-2", "Idegen", "Ida").await.unwrap();
    fed.make_god("kir-dev", god).await.unwrap();
    let token = fed.token(god);
    let g = group(&fed, &token, "kir-dev", "Kir-Dev").await;
    fed.join(&fed.hub.url, "kir-dev", g, &token, member, true)
        .await
        .unwrap();
    let url = format!("{}/api/v1/realms/kir-dev/groups/{g}", fed.hub.url);
    let patch = json!({ "description": "edited through the BFF" });

    // A member sees the group but may not edit it: 403 from the worker, passed on.
    let (s, body) = fed
        .call(Method::PATCH, &url, &fed.token(member), Some(patch.clone()))
        .await
        .unwrap();
    assert_eq!(s, 403, "{body}");
    assert!(body["error"]["message"].as_str().is_some(), "{body}");
    // Someone outside the realm does not even see it.
    let (s, _) = fed
        .call(
            Method::PATCH,
            &url,
            &fed.token(stranger),
            Some(patch.clone()),
        )
        .await
        .unwrap();
    assert!(s == 403 || s == 404, "{s}");
    // GOD may.
    let (s, body) = fed
        .call(Method::PATCH, &url, &token, Some(patch))
        .await
        .unwrap();
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["description"], "edited through the BFF");
    // Without a token the hub refuses before the worker is asked.
    let resp = fed.http.get(&url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    // The hub recorded the access in the federation table.
    fed.wait_hub_knows(member, "kir-dev", Duration::from_secs(20))
        .await
        .unwrap();
}

#[tokio::test]
async fn membership_added_while_the_hub_is_down_reaches_the_federation_table() {
    let mut fed = Federation::start(Options {
        realms: vec!["kszk"],
        ..Options::default()
    })
    .await
    .expect("federation");
    let god = fed.person("god-3", "Gode", "Géza").await.unwrap();
    let newbie = fed.person("newbie-3", "Új", "Ubul").await.unwrap();
    fed.make_god("kszk", god).await.unwrap();
    fed.wait_hub_knows(god, "kszk", Duration::from_secs(20))
        .await
        .unwrap();
    let token = fed.token(god);
    let g = group(&fed, &token, "kszk", "KSZK").await;

    // Invited while the hub is up (the worker checks with the hub that the person
    // exists); a pending invitation is not reported.
    let (s, invitation) = fed
        .call(
            Method::POST,
            &format!("{}/api/v1/realms/kszk/groups/{g}/members", fed.hub.url),
            &token,
            Some(json!({ "userId": newbie })),
        )
        .await
        .unwrap();
    assert_eq!(s, 201, "{invitation}");
    let invitation = invitation["id"].as_str().unwrap().to_string();

    fed.hub.kill();
    let worker_url = fed.worker("kszk").instance.url.clone();
    // Accepted directly at the worker (the hub is down) with a token for its realm; the
    // worker verifies it itself.
    let (s, body) = fed
        .call(
            Method::POST,
            &format!("{worker_url}/api/v1/realms/kszk/memberships/{invitation}/accept"),
            &fed.realm_token(newbie, "kszk"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(s, 200, "{body}");
    // The change waits in the worker's outbox while the hub is away.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let waiting = pek::federation::outbox_len(&fed.worker("kszk").db, &"kszk".parse().unwrap())
        .await
        .unwrap();
    assert!(waiting >= 1, "outbox has {waiting} rows");
    assert!(!fed.hub_knows(newbie, "kszk").await.unwrap());

    fed.hub.start().await.expect("hub restart");
    // Delivery backs off while the hub is down; it must still arrive.
    fed.wait_hub_knows(newbie, "kszk", Duration::from_secs(30))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = pek::federation::outbox_len(&fed.worker("kszk").db, &"kszk".parse().unwrap())
            .await
            .unwrap();
        if left == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "outbox not drained: {left}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Leaving (archived membership) is reported too, and the hub's search follows.
    let membership: Value = fed
        .call(
            Method::GET,
            &format!("{worker_url}/api/v1/realms/kszk/groups/{g}/members"),
            &fed.realm_token(god, "kszk"),
            None,
        )
        .await
        .unwrap()
        .1;
    let mid = membership["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["userId"] == json!(newbie))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, body) = fed
        .call(
            Method::DELETE,
            &format!("{}/api/v1/realms/kszk/memberships/{mid}", fed.hub.url),
            &token,
            None,
        )
        .await
        .unwrap();
    assert!(s == 204 || s == 200, "{s} {body}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while fed.hub_knows(newbie, "kszk").await.unwrap() {
        assert!(Instant::now() < deadline, "leaving never reached the hub");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn user_search_asks_the_shared_realms_for_full_profiles() {
    let fed = Federation::start(Options::default())
        .await
        .expect("federation");
    let god = fed.person("god-4", "Gode", "Gábor").await.unwrap();
    let viewer = fed.person("viewer-4", "Néző", "Nóra").await.unwrap();
    let target = fed.person("target-4", "Áron", "Kiss").await.unwrap();
    fed.make_god("kir-dev", god).await.unwrap();
    fed.make_god("kszk", god).await.unwrap();
    let token = fed.token(god);
    let g = group(&fed, &token, "kszk", "KSZK").await;
    for u in [viewer, target] {
        fed.join(&fed.hub.url, "kszk", g, &token, u, true)
            .await
            .unwrap();
    }
    fed.wait_hub_knows(target, "kszk", Duration::from_secs(20))
        .await
        .unwrap();
    fed.wait_hub_knows(viewer, "kszk", Duration::from_secs(20))
        .await
        .unwrap();
    let find = |body: &Value| {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["id"] == json!(target))
            .map(|u| u["scope"].as_str().unwrap().to_string())
    };
    // The viewer shares kszk with the target: basic profile.
    let url = format!("{}/api/v1/users?q=aron", fed.hub.url);
    let (s, body) = fed
        .call(Method::GET, &url, &fed.token(viewer), None)
        .await
        .unwrap();
    assert_eq!(s, 200, "{body}");
    assert_eq!(find(&body).as_deref(), Some("basic"), "{body}");
    // GOD of kszk (on the worker) sees the full profile.
    let (s, body) = fed.call(Method::GET, &url, &token, None).await.unwrap();
    assert_eq!(s, 200, "{body}");
    assert_eq!(find(&body).as_deref(), Some("full"), "{body}");
    assert_eq!(body["partial"], false);
    // A person sharing no realm is not found.
    let loner = fed.person("loner-4", "Magányos", "Miklós").await.unwrap();
    let (s, _) = fed
        .call(
            Method::GET,
            &format!("{}/api/v1/users/{target}", fed.hub.url),
            &fed.token(loner),
            None,
        )
        .await
        .unwrap();
    assert_eq!(s, 404);
}

/// The caller's realm list is cached (TTL long enough not to matter here) and a
/// membership change on a worker invalidates it, in-process and in Redis.
async fn realm_list_cache_follows_membership_changes(
    redis: Option<&pek_tests::federation::RedisServer>,
) {
    let fed = Federation::start(Options {
        redis_url: redis.map(|r| r.url.clone()),
        realm_cache_ttl_secs: 3600,
        ..Options::default()
    })
    .await
    .expect("federation");
    let god = fed.person("god-5", "Gode", "Gréta").await.unwrap();
    let joiner = fed.person("joiner-5", "Csatlakozó", "Csaba").await.unwrap();
    fed.make_god("kir-dev", god).await.unwrap();
    fed.make_god("kszk", god).await.unwrap();
    let token = fed.token(god);
    let a = group(&fed, &token, "kir-dev", "Alpha").await;
    let b = group(&fed, &token, "kszk", "Beta").await;
    let add = |realm: &'static str, g: Uuid| {
        let token = token.clone();
        let fed = &fed;
        async move {
            fed.join(&fed.hub.url, realm, g, &token, joiner, true)
                .await
                .unwrap();
        }
    };
    add("kir-dev", a).await;
    fed.wait_hub_knows(joiner, "kir-dev", Duration::from_secs(20))
        .await
        .unwrap();
    let jt = fed.token(joiner);
    let (_, body, _) = search(&fed, &jt, "").await;
    assert_eq!(
        names(&body),
        vec![("kir-dev".into(), "Alpha".into())],
        "{body}"
    );

    let key = format!("pek:user-realms:{joiner}");
    if let Some(r) = redis {
        let client = redis::Client::open(r.url.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        // A report of the same join still on its way (the outbox reports the invitation,
        // the acceptance and the activation apart) invalidates the entry the search just
        // filled, and rightly so; the next search fills it again.
        let deadline = Instant::now() + Duration::from_secs(10);
        let cached = loop {
            let cached: Option<String> = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .unwrap();
            if cached.is_some() || Instant::now() > deadline {
                break cached;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            search(&fed, &jt, "").await;
        };
        assert_eq!(
            cached.as_deref(),
            Some(r#"["kir-dev"]"#),
            "the hub caches in Redis"
        );
    }

    add("kszk", b).await;
    fed.wait_hub_knows(joiner, "kszk", Duration::from_secs(20))
        .await
        .unwrap();
    // The NOTIFY from the federation table reaches the hub's listener shortly after.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body, _) = search(&fed, &jt, "").await;
        if names(&body).len() == 2 {
            assert_eq!(
                names(&body),
                vec![
                    ("kir-dev".into(), "Alpha".into()),
                    ("kszk".into(), "Beta".into())
                ]
            );
            break;
        }
        assert!(Instant::now() < deadline, "cache never invalidated: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn in_process_realm_cache_is_invalidated_by_membership_changes() {
    realm_list_cache_follows_membership_changes(None).await;
}

#[tokio::test]
async fn redis_realm_cache_is_invalidated_by_membership_changes() {
    let redis = pek_tests::federation::RedisServer::start()
        .await
        .expect("redis-server (./tests/run.sh installs it)");
    realm_list_cache_follows_membership_changes(Some(&redis)).await;
}

/// Seeds 000/002: a person signs in through a real OIDC provider (npm `oidc-provider`),
/// gets a hub token, and a group search across the hub realm and two workers (which
/// verify the hub's token through its JWKS) returns the merged result.
#[tokio::test]
async fn login_through_the_provider_then_search_across_hub_and_two_workers() {
    use pek_tests::oidc_support::{login, OidcProvider};
    let hub_port = pek_tests::auth_support::free_port().unwrap();
    let provider = OidcProvider::start(&format!("http://127.0.0.1:{hub_port}/auth/callback"))
        .await
        .expect("OIDC provider (node oidc-provider; ./tests/run.sh installs it)");
    let dir = pek_tests::auth_support::Scratch::new("fed-login").unwrap();
    let secret = dir.write("client-secret", &provider.client_secret).unwrap();
    let fed = Federation::start(Options {
        hub_port: Some(hub_port),
        hub_env: vec![
            ("PEK_LOGIN_ISSUER_URL".into(), provider.issuer.clone()),
            ("PEK_LOGIN_CLIENT_ID".into(), provider.client_id.clone()),
            (
                "PEK_LOGIN_CLIENT_SECRET_FILE".into(),
                secret.display().to_string(),
            ),
        ],
        ..Options::default()
    })
    .await
    .expect("federation");

    let token = login(&fed.hub.url, "grace").await.expect("login");
    let (s, me) = fed
        .call(
            Method::GET,
            &format!("{}/api/v1/me", fed.hub.url),
            &token,
            None,
        )
        .await
        .unwrap();
    assert_eq!(s, 200, "{me}");
    let user: Uuid = me["id"].as_str().unwrap().parse().unwrap();
    // Grace runs the hub realm and both worker realms.
    pek::realm::ensure_local(&fed.hub_db, &pek::realm::RealmId::hub(), "Hub", Some(user))
        .await
        .unwrap();
    fed.make_god("kir-dev", user).await.unwrap();
    fed.make_god("kszk", user).await.unwrap();
    fed.wait_hub_knows(user, "kir-dev", Duration::from_secs(20))
        .await
        .unwrap();
    fed.wait_hub_knows(user, "kszk", Duration::from_secs(20))
        .await
        .unwrap();
    // The login token is the hub's own (signed with its key, not the test's): the
    // workers accept it through the hub's JWKS.
    for realm in ["hub", "kir-dev", "kszk"] {
        group(&fed, &token, realm, &format!("Közös {realm}")).await;
    }
    let (s, body, _) = search(&fed, &token, "kozos").await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        names(&body),
        vec![
            ("hub".into(), "Közös hub".into()),
            ("kir-dev".into(), "Közös kir-dev".into()),
            ("kszk".into(), "Közös kszk".into()),
        ],
        "{body}"
    );
    assert_eq!(body["partial"], false);
}

/// A worker: refuses a membership for a user id the hub does not know (it asks the hub,
/// with its realm token), does not report pending invitations to the federation table,
/// and makes the administrators named in PEK_REALM_ADMINS — people who never logged in —
/// GODs of its realm, working at their first login.
#[tokio::test]
async fn a_worker_checks_users_with_the_hub_and_names_its_configured_admins() {
    let fed = Federation::start(Options {
        realms: vec!["kir-dev"],
        worker_env: vec![(
            "PEK_REALM_ADMINS".into(),
            "admin-first-login, admin-other".into(),
        )],
        ..Options::default()
    })
    .await
    .expect("federation");
    let realm: pek::realm::RealmId = "kir-dev".parse().unwrap();
    let worker_url = fed.workers[0].instance.url.clone();

    // The worker asked the hub for user rows of the two admins and granted them GOD.
    let deadline = Instant::now() + Duration::from_secs(20);
    let admins: Vec<Uuid> = loop {
        let mut tx = fed.workers[0].db.realm(&realm).await.unwrap();
        let rows = pek::policy::list_assignments(&mut tx, None).await.unwrap();
        tx.commit().await.unwrap();
        let configured: Vec<Uuid> = rows
            .iter()
            .filter(|a| a.from_config)
            .map(|a| a.user_id)
            .collect();
        if configured.len() == 2 {
            break configured;
        }
        assert!(Instant::now() < deadline, "admins never granted: {rows:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // First login of the admin: the hub's user row is the one the worker granted.
    let admin = {
        let mut g = fed.hub_db.global().await.unwrap();
        let id = pek::profile::upsert_user(&mut g, "admin-first-login")
            .await
            .unwrap();
        g.commit().await.unwrap();
        id
    };
    assert!(admins.contains(&admin), "{admin} not in {admins:?}");
    fed.wait_hub_knows(admin, "kir-dev", Duration::from_secs(20))
        .await
        .unwrap();
    let token = fed.token(admin);
    let g = group(&fed, &token, "kir-dev", "Admin's group").await;

    // An id the hub does not know is refused, through the hub and at the worker.
    let ghost = Uuid::new_v4();
    // Directly at the worker with a token for its realm (a hub token is refused there).
    let worker_token = fed.realm_token(admin, "kir-dev");
    for (base, token) in [(&fed.hub.url, &token), (&worker_url, &worker_token)] {
        let (s, body) = fed
            .call(
                Method::POST,
                &format!("{base}/api/v1/realms/kir-dev/groups/{g}/members"),
                token,
                Some(json!({ "userId": ghost })),
            )
            .await
            .unwrap();
        assert_eq!(s, 422, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("does not exist"),
            "{body}"
        );
    }
    // The worker's user check is its own realm's token: a wrong one gets nothing.
    let resp = fed
        .http
        .get(format!(
            "{}/internal/v1/realms/kir-dev/users/{admin}",
            fed.hub.url
        ))
        .bearer_auth("not-the-realm-token")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);

    // A real person is invited; the invitation is not reported to the hub.
    let invitee = fed.person("invitee-7", "Meg", "Hívott").await.unwrap();
    let (s, m) = fed
        .call(
            Method::POST,
            &format!("{}/api/v1/realms/kir-dev/groups/{g}/members", fed.hub.url),
            &token,
            Some(json!({ "userId": invitee })),
        )
        .await
        .unwrap();
    assert_eq!(s, 201, "{m}");
    assert_eq!(m["status"], "INVITED");
    let deadline = Instant::now() + Duration::from_secs(10);
    while pek::federation::outbox_len(&fed.workers[0].db, &realm)
        .await
        .unwrap()
        > 0
    {
        assert!(Instant::now() < deadline, "outbox not drained");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!fed.hub_knows(invitee, "kir-dev").await.unwrap());
    // Accepted, it is.
    let (s, b) = fed
        .call(
            Method::POST,
            &format!(
                "{}/api/v1/realms/kir-dev/memberships/{}/accept",
                fed.hub.url,
                m["id"].as_str().unwrap()
            ),
            &fed.token(invitee),
            None,
        )
        .await
        .unwrap();
    assert_eq!(s, 200, "{b}");
    fed.wait_hub_knows(invitee, "kir-dev", Duration::from_secs(20))
        .await
        .unwrap();
}

/// Reads one HTTP/1.1 request: its head (request line and headers) and its body. Just
/// enough HTTP for the hub's calls to the stand-in realms below.
async fn read_request(conn: &mut tokio::net::TcpStream) -> Option<(String, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let (head, body_start) = loop {
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break (String::from_utf8_lossy(&buf[..i]).to_string(), i + 4);
        }
    };
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < body_start + len {
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some((head, buf[body_start..].to_vec()))
}

/// A realm that claims more than it was asked: answers `profile-access` with every id it
/// was asked about plus `extra`, and hangs up on `…/groups` without an answer. Speaks just
/// enough HTTP/1.1 for the hub (one request per connection); `/readyz` is 200 so the health
/// checks keep it active.
async fn overclaiming_realm(extra: Uuid) -> String {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let Some((head, body)) = read_request(&mut conn).await else {
                    return;
                };
                let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                if path.ends_with("/groups") {
                    return;
                }
                let (status, body) = if path == "/readyz" {
                    ("200 OK", json!({"status": "ready"}))
                } else if path.ends_with("/profile-access") {
                    let asked: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let mut all = asked["users"].as_array().cloned().unwrap_or_default();
                    all.push(json!(extra));
                    ("200 OK", json!({"viewFull": all, "edit": []}))
                } else {
                    (
                        "404 Not Found",
                        json!({"error": {"code": "not_found", "message": "no"}}),
                    )
                };
                let body = body.to_string();
                let resp = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(resp.as_bytes()).await;
            });
        }
    });
    url
}

/// The hub takes from a realm's profile-access answer only the people it asked that
/// realm about: a realm cannot grant a full view of someone who is not its own.
#[tokio::test]
async fn the_hub_uses_a_realms_profile_answer_only_for_the_ids_it_asked() {
    let fed = Federation::start(Options {
        realms: vec!["kir-dev"],
        ..Options::default()
    })
    .await
    .expect("federation");
    let god = fed.person("god-8", "Gode", "Gusztáv").await.unwrap();
    let viewer = fed.person("viewer-8", "Néző", "Nándor").await.unwrap();
    let target = fed.person("target-8", "Áron", "Célpont").await.unwrap();
    let evil_member = fed.person("evil-8", "Áron", "Gonosz").await.unwrap();
    fed.make_god("kir-dev", god).await.unwrap();
    let token = fed.token(god);
    let g = group(&fed, &token, "kir-dev", "Kir-Dev").await;
    for u in [viewer, target] {
        fed.join(&fed.hub.url, "kir-dev", g, &token, u, false)
            .await
            .unwrap();
        fed.wait_hub_knows(u, "kir-dev", Duration::from_secs(20))
            .await
            .unwrap();
    }
    // A realm "evil" with the viewer and another person in it, which says the viewer may
    // see everyone in full — the target included, whom it was never asked about.
    let evil = overclaiming_realm(target).await;
    let resp = fed
        .http
        .put(format!("{}/internal/v1/realms/evil", fed.hub.url))
        .bearer_auth(&fed.operator_token)
        .json(&json!({"displayName": "Evil", "endpoint": evil, "version": "test"}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
    let mut g = fed.hub_db.global().await.unwrap();
    let events: Vec<Value> = [viewer, evil_member]
        .iter()
        .enumerate()
        .map(|(i, u)| {
            json!({"seq": i + 1, "userId": u, "member": true,
                   "occurredAt": "2026-01-01T00:00:00Z"})
        })
        .collect();
    let report: pek::federation::MembershipReport =
        serde_json::from_value(json!({ "events": events })).unwrap();
    pek::federation::apply_report(&mut g, &"evil".parse().unwrap(), &report)
        .await
        .unwrap();
    g.commit().await.unwrap();
    fed.wait_hub_knows(viewer, "evil", Duration::from_secs(20))
        .await
        .unwrap();

    let url = format!("{}/api/v1/users?q=aron", fed.hub.url);
    let deadline = Instant::now() + Duration::from_secs(20);
    let body = loop {
        let (s, body) = fed
            .call(Method::GET, &url, &fed.token(viewer), None)
            .await
            .unwrap();
        assert_eq!(s, 200, "{body}");
        // Wait until the hub's cached realm list includes evil (both people listed).
        if body["items"].as_array().unwrap().len() == 2 {
            break body;
        }
        assert!(Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let scope_of = |u: Uuid| {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == json!(u))
            .map(|i| i["scope"].as_str().unwrap().to_string())
    };
    assert_eq!(scope_of(evil_member).as_deref(), Some("full"), "{body}");
    assert_eq!(scope_of(target).as_deref(), Some("basic"), "{body}");
    assert!(body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == json!(target))
        .unwrap()["profile"]
        .get("cellPhone")
        .is_none());

    // A realm that hangs up without answering: a 503 that says so, without the worker's
    // address (the network inside the cluster is not the caller's business).
    let (s, body) = fed
        .call(
            Method::GET,
            &format!("{}/api/v1/realms/evil/groups", fed.hub.url),
            &fed.token(viewer),
            None,
        )
        .await
        .unwrap();
    assert_eq!(s, 503, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("realm evil is unavailable"), "{body}");
    assert_eq!(body["error"]["reason"], "unreachable", "{body}");
    let address = evil.trim_start_matches("http://");
    assert!(
        !message.contains(address),
        "the worker's address leaked: {body}"
    );
}

/// A stand-in realm that holds every group search until released, then answers it with
/// one group named for the person the hub asked for (the `sub` of the realm token the hub
/// minted), and counts the searches it was asked. `/readyz` is 200.
struct HeldRealm {
    url: String,
    asked: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    release: tokio::sync::watch::Sender<bool>,
}

impl HeldRealm {
    async fn start(realm: &'static str) -> HeldRealm {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let asked = std::sync::Arc::new(AtomicUsize::new(0));
        let (release, held) = tokio::sync::watch::channel(false);
        let counter = asked.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                let (asked, mut held) = (counter.clone(), held.clone());
                tokio::spawn(async move {
                    let Some((head, _)) = read_request(&mut conn).await else {
                        return;
                    };
                    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                    let body = if path == "/readyz" {
                        json!({"status": "ready"})
                    } else {
                        asked.fetch_add(1, Ordering::SeqCst);
                        let _ = held.wait_for(|released| *released).await;
                        let sub = caller_of(&head).unwrap_or_else(|| "nobody".into());
                        let name = format!("{realm} for {sub}");
                        json!({"items": [{
                            "id": Uuid::new_v4(), "realmId": realm, "name": name,
                            "sortKey": name, "archived": false,
                        }], "nextCursor": null})
                    };
                    let body = body.to_string();
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = conn.write_all(resp.as_bytes()).await;
                });
            }
        });
        HeldRealm {
            url,
            asked,
            release,
        }
    }

    fn asked(&self) -> usize {
        self.asked.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The `sub` of the bearer token in a request head (read, not verified: a stand-in).
fn caller_of(head: &str) -> Option<String> {
    use base64::Engine;
    let value = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("authorization").then(|| v.trim())
    })?;
    let token = value.strip_prefix("Bearer ")?;
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.split('.').nth(1)?)
        .ok()?;
    let claims: Value = serde_json::from_slice(&claims).ok()?;
    claims["sub"].as_str().map(String::from)
}

/// The hub's `pek_bff_coalesced_total` (requests that joined a realm call in flight).
async fn coalesced(http: &reqwest::Client, metrics: &str) -> u64 {
    let Ok(resp) = http.get(format!("{metrics}/metrics")).send().await else {
        return 0;
    };
    resp.text()
        .await
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("pek_bff_coalesced_total"))
        .and_then(|l| l.split_whitespace().last()?.parse().ok())
        .unwrap_or(0)
}

/// Identical searches in flight together reach each realm once per caller (request
/// coalescing, keyed by the caller): 100 of one person's are one call per realm; 50 of
/// one person's and 50 of another's, identical to the byte, are two, and nobody receives
/// an answer made for the other. The realms hold their answers until every request has
/// joined a call (the hub's metric says so), so the sharing does not depend on timing.
#[tokio::test]
async fn identical_concurrent_searches_share_one_realm_call_per_caller_only() {
    let metrics_port = pek_tests::free_port().unwrap();
    let metrics = format!("http://127.0.0.1:{metrics_port}");
    let fed = Federation::start(Options {
        realms: vec![],
        // The realms hold their answers on purpose: no deadline may cut that short.
        bff_deadline_ms: 30_000,
        hub_env: vec![(
            "PEK_METRICS_LISTEN".into(),
            format!("127.0.0.1:{metrics_port}"),
        )],
        ..Options::default()
    })
    .await
    .expect("federation");
    let ann = fed.person("coalesce-ann", "Anna", "Első").await.unwrap();
    let ben = fed
        .person("coalesce-ben", "Bence", "Második")
        .await
        .unwrap();
    let realms = [
        ("held-a", HeldRealm::start("held-a").await),
        ("held-b", HeldRealm::start("held-b").await),
    ];
    for (i, (realm, held)) in realms.iter().enumerate() {
        let resp = fed
            .http
            .put(format!("{}/internal/v1/realms/{realm}", fed.hub.url))
            .bearer_auth(&fed.operator_token)
            .json(&json!({"displayName": realm, "endpoint": held.url, "version": "test"}))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
        let events: Vec<Value> = [ann, ben]
            .iter()
            .enumerate()
            .map(|(j, u)| {
                json!({"seq": i * 2 + j + 1, "userId": u, "member": true,
                       "occurredAt": "2026-01-01T00:00:00Z"})
            })
            .collect();
        let report: pek::federation::MembershipReport =
            serde_json::from_value(json!({ "events": events })).unwrap();
        let mut g = fed.hub_db.global().await.unwrap();
        pek::federation::apply_report(&mut g, &realm.parse().unwrap(), &report)
            .await
            .unwrap();
        g.commit().await.unwrap();
    }
    let url = format!("{}/api/v1/groups?q=held", fed.hub.url);
    let ask = |token: String| {
        let (http, url) = (fed.http.clone(), url.clone());
        tokio::spawn(async move {
            let resp = http.get(&url).bearer_auth(&token).send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap())
        })
    };
    // Sends `tokens` at once; releases the realms once `joiners` requests joined a call in
    // flight (or when a realm was asked more often than `calls` times, or after 20 s, so a
    // broken sharing fails below instead of hanging); returns each answer with its caller.
    let burst = |tokens: Vec<(Uuid, String)>, joiners: u64, calls: usize| {
        let (realms, ask, http, metrics) = (&realms, &ask, fed.http.clone(), metrics.clone());
        async move {
            let before = coalesced(&http, &metrics).await;
            let asked_before: Vec<usize> = realms.iter().map(|(_, h)| h.asked()).collect();
            for (_, h) in realms {
                h.release.send_replace(false);
            }
            let pending: Vec<_> = tokens.into_iter().map(|(who, t)| (who, ask(t))).collect();
            let deadline = Instant::now() + Duration::from_secs(20);
            while coalesced(&http, &metrics).await.saturating_sub(before) < joiners
                && realms
                    .iter()
                    .zip(&asked_before)
                    .all(|((_, h), b)| h.asked() - b <= calls)
                && Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            for (_, h) in realms {
                h.release.send_replace(true);
            }
            let mut answers = Vec::new();
            for (who, p) in pending {
                answers.push((who, p.await.unwrap()));
            }
            let asked: Vec<usize> = realms
                .iter()
                .zip(&asked_before)
                .map(|((_, h), b)| h.asked() - b)
                .collect();
            (answers, asked)
        }
    };
    let own_names = |who: Uuid| vec![format!("held-a for {who}"), format!("held-b for {who}")];
    let names_in = |body: &Value| -> Vec<String> {
        let mut n: Vec<String> = body["items"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|g| g["name"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        n.sort();
        n
    };

    // One person, 100 identical searches at once from one session (a call is shared only
    // between requests of one session: its token decides which realms the hub may ask for
    // that person at all): each realm asked once.
    let ann_session = fed.token(ann);
    let tokens = (0..100).map(|_| (ann, ann_session.clone())).collect();
    let (answers, asked) = burst(tokens, 2 * 99, 1).await;
    assert_eq!(
        asked,
        vec![1, 1],
        "each realm asked once for 100 identical searches"
    );
    for (who, (status, body)) in &answers {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(body["partial"], false, "{body}");
        assert_eq!(names_in(body), own_names(*who), "{body}");
    }

    // Two people, 50 identical searches each, interleaved: each realm asked once per
    // person, and every answer is the asker's own.
    let ben_session = fed.token(ben);
    let tokens = (0..100)
        .map(|i| {
            if i % 2 == 0 {
                (ann, ann_session.clone())
            } else {
                (ben, ben_session.clone())
            }
        })
        .collect();
    let (answers, asked) = burst(tokens, 2 * (49 + 49), 2).await;
    for (who, (status, body)) in &answers {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(
            names_in(body),
            own_names(*who),
            "{who} received an answer made for someone else: {body}"
        );
    }
    assert_eq!(asked, vec![2, 2], "each realm asked once per person");
}
