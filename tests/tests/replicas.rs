//! Hub replicas (and worker replicas) as real `pek serve` processes sharing one database
//! on the throwaway PostgreSQL: starting together, following the registry when the
//! notification connection dies silently, one health checker at a time, re-registration
//! restoring a realm's people, and the realm-list cache never storing a fill that raced
//! an invalidation (real redis-server).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pek_tests::federation::{Federation, Instance, Options, RedisServer};
use pek_tests::proxy::FreezingProxy;
use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn replica_env(mode: &str, db: &localpg::Database) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    env.insert("PEK_MODE".to_string(), mode.to_string());
    env.insert("DATABASE_URL".into(), db.app_url.clone());
    env.insert("PEK_MIGRATION_DATABASE_URL".into(), db.owner_url.clone());
    if mode == "worker" {
        env.insert("PEK_REALM_ID".into(), "kir-dev".into());
    }
    env
}

/// Two replicas spawned at the same instant on an empty database, many times over (one
/// throwaway cluster, a fresh database per round): both must become ready every time.
/// Without a lock around migrations and grants, one of them regularly exits with
/// "tuple concurrently updated" while granting the service role its privileges.
#[tokio::test]
async fn replicas_started_together_on_an_empty_database_all_become_ready() {
    let pg = localpg::LocalPostgres::shared().expect("postgres");
    let started = Instant::now();
    let rounds = [("hub", 20), ("worker", 5)];
    for (mode, n) in rounds {
        for round in 0..n {
            let db = pg.fresh_database().await.expect("database");
            let mut a = Instance::new(&format!("{mode} a"), replica_env(mode, &db)).unwrap();
            let mut b = a.sibling(&format!("{mode} b")).unwrap();
            a.spawn().unwrap();
            b.spawn().unwrap();
            let (ra, rb) = tokio::join!(a.wait_ready(), b.wait_ready());
            if let Err(e) = ra.and(rb) {
                panic!("round {round} of two {mode}s starting together: {e:#}");
            }
        }
    }
    eprintln!(
        "25 rounds of two replicas starting together took {:?}",
        started.elapsed()
    );
}

/// A hub whose LISTEN connection goes through a proxy that freezes it (no FIN, no
/// RST: it just stops forwarding) still sees a registry change within its reload
/// period, and replaces the silent connection with a new one.
#[tokio::test]
async fn a_replica_whose_listen_connection_froze_still_follows_the_registry() {
    let pg = localpg::LocalPostgres::shared().expect("postgres");
    let proxy = FreezingProxy::start(pg.port()).await.expect("proxy");
    let fed = Federation::start(Options {
        realms: vec!["kir-dev"],
        hub_database_port: Some(proxy.port),
        hub_env: vec![("PEK_REGISTRY_RELOAD_SECS".into(), "2".into())],
        ..Options::default()
    })
    .await
    .expect("federation");
    let user = fed.person("freeze-1", "Fagy", "Feri").await.unwrap();
    let token = fed.token(user);
    let url = format!("{}/api/v1/realms/kir-dev/groups", fed.hub.url);
    let (s, body) = fed.call(Method::GET, &url, &token, None).await.unwrap();
    assert_ne!(s, 503, "kir-dev is up before the freeze: {body}");

    let deadline = Instant::now() + Duration::from_secs(10);
    while proxy.listen_connections() == 0 {
        assert!(
            Instant::now() < deadline,
            "the hub's LISTEN never went through the proxy"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        proxy.freeze_listeners() >= 1,
        "no LISTEN connection to freeze"
    );
    let listens_at_freeze = proxy.listen_connections();

    // The registry changes behind the frozen connection's back (a direct connection).
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&fed.hub_database.app_url)
        .await
        .unwrap();
    sqlx::query("UPDATE realms SET status = 'maintenance' WHERE id = 'kir-dev'")
        .execute(&mut conn)
        .await
        .unwrap();
    let changed = Instant::now();
    loop {
        let (s, body) = fed.call(Method::GET, &url, &token, None).await.unwrap();
        if s == 503 && body.to_string().contains("maintenance") {
            break;
        }
        assert!(
            changed.elapsed() < Duration::from_secs(8),
            "the hub still routes kir-dev as active {:?} after the change (reload period 2 s): {s} {body}",
            changed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("registry change seen after {:?}", changed.elapsed());

    // The silent LISTEN connection is replaced (its ping never comes back).
    let deadline = Instant::now() + Duration::from_secs(10);
    while proxy.listen_connections() <= listens_at_freeze {
        assert!(
            Instant::now() < deadline,
            "the frozen LISTEN connection was never replaced"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A stand-in worker that answers every request 200 and counts `/readyz` probes.
async fn stand_in_worker() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let probes: Arc<AtomicUsize> = Arc::default();
    let counter = probes.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut pending: Vec<u8> = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    let n = match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    pending.extend_from_slice(&buf[..n]);
                    // Requests without bodies (GET), possibly several per connection.
                    while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                        if pending.starts_with(b"GET /readyz") {
                            counter.fetch_add(1, Ordering::SeqCst);
                        }
                        pending.drain(..end + 4);
                        let body = r#"{"status":"ready"}"#;
                        let resp = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if sock.write_all(resp.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (url, probes)
}

async fn probes_in(probes: &AtomicUsize, window: Duration) -> usize {
    let before = probes.load(Ordering::SeqCst);
    tokio::time::sleep(window).await;
    probes.load(Ordering::SeqCst) - before
}

/// Probes per interval with two hubs equal those with one: one replica health-checks at
/// a time, and when it dies another takes over.
#[tokio::test]
async fn one_hub_replica_health_checks_at_a_time() {
    let (worker_url, probes) = stand_in_worker().await;
    let mut fed = Federation::start(Options {
        realms: vec![],
        hub_env: vec![("PEK_HEALTH_INTERVAL_MS".into(), "200".into())],
        ..Options::default()
    })
    .await
    .expect("federation");
    let resp = fed
        .http
        .put(format!("{}/internal/v1/realms/stand-in", fed.hub.url))
        .bearer_auth(&fed.operator_token)
        .json(&json!({"displayName": "Stand-in", "endpoint": worker_url, "version": "1"}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
    let window = Duration::from_secs(3);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let one = probes_in(&probes, window).await;

    let mut second = fed.hub.sibling("hub 2").unwrap();
    second.start().await.expect("second hub");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let two = probes_in(&probes, window).await;
    eprintln!("probes in {window:?}: one hub {one}, two hubs {two}");
    assert!(one >= 5, "the hub hardly probes: {one} in {window:?}");
    assert!(
        two <= one + one / 4 + 2,
        "two hubs probe more than one: {two} vs {one} in {window:?}"
    );

    // The checker dies: the other replica takes over.
    fed.hub.kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = probes_in(&probes, window).await;
    eprintln!("probes in {window:?} after the first hub died: {after}");
    assert!(
        after >= one / 2,
        "nobody health-checks after the first hub died: {after} vs {one}"
    );
    drop(second);
}

/// Deregistering a realm drops its rows from the federation table; registering it again
/// brings its people back without any membership change (the worker resends its member
/// list for a registration it has not filled).
#[tokio::test]
async fn re_registering_a_realm_restores_its_people_in_the_federation_table() {
    let fed = Federation::start(Options {
        realms: vec!["kir-dev"],
        ..Options::default()
    })
    .await
    .expect("federation");
    let god = fed.person("rereg-1", "Vissza", "Vera").await.unwrap();
    fed.make_god("kir-dev", god).await.unwrap();
    fed.wait_hub_knows(god, "kir-dev", Duration::from_secs(20))
        .await
        .unwrap();
    let endpoint = fed.workers[0].instance.url.clone();
    let realm_url = format!("{}/internal/v1/realms/kir-dev", fed.hub.url);

    let resp = fed
        .http
        .delete(&realm_url)
        .bearer_auth(&fed.operator_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert!(!fed.hub_knows(god, "kir-dev").await.unwrap());

    let resp = fed
        .http
        .put(&realm_url)
        .bearer_auth(&fed.operator_token)
        .json(&json!({"displayName": "kir-dev", "endpoint": endpoint, "version": "test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    let start = Instant::now();
    fed.wait_hub_knows(god, "kir-dev", Duration::from_secs(15))
        .await
        .unwrap();
    eprintln!(
        "people back in the federation table after {:?}",
        start.elapsed()
    );
}

/// A realm-list fill that raced an invalidation (read before a membership change, stored
/// after its invalidation) does not go into the shared Redis cache; one that did not
/// race does, with the configured TTL.
#[tokio::test]
async fn redis_realm_list_fill_racing_an_invalidation_stores_nothing() {
    let redis_server = RedisServer::start().await.expect("redis-server");
    let cache = pek::cache::RealmCache::redis(&redis_server.url, Duration::from_secs(30))
        .await
        .unwrap();
    let user = uuid::Uuid::new_v4();
    let realms = |ids: &[&str]| -> Vec<pek::realm::RealmId> {
        ids.iter()
            .map(|r| pek::realm::RealmId::parse(r).unwrap())
            .collect()
    };

    let fill = cache.begin_fill(user).await;
    cache.invalidate(user).await;
    cache.finish_fill(fill, &realms(&["hub", "kszk"])).await;
    assert_eq!(cache.get(user).await, None, "a stale list was stored");

    let fill = cache.begin_fill(user).await;
    cache.finish_fill(fill, &realms(&["hub"])).await;
    assert_eq!(cache.get(user).await, Some(realms(&["hub"])));
    let client = redis::Client::open(redis_server.url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("pek:user-realms:{user}"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!((1..=30).contains(&ttl), "entry TTL {ttl}");

    // Two hub replicas filling at once: only the newer fill stores.
    cache.invalidate(user).await;
    let older = cache.begin_fill(user).await;
    let newer = cache.begin_fill(user).await;
    cache.finish_fill(older, &realms(&["old"])).await;
    assert_eq!(cache.get(user).await, None);
    cache.finish_fill(newer, &realms(&["new"])).await;
    assert_eq!(cache.get(user).await, Some(realms(&["new"])));
}

/// Two hubs behind a load balancer (retrying reads on the other hub, as nginx does),
/// one killed with SIGKILL in the middle of a read load and started again, while a
/// worker reports membership changes through the same balancer: no read fails and
/// every membership change reaches the federation table.
#[tokio::test]
async fn failover_between_two_hubs_loses_no_read_and_no_membership_report() {
    let mut fed = Federation::start(Options {
        realms: vec!["kir-dev"],
        ..Options::default()
    })
    .await
    .expect("federation");
    let mut second = fed.hub.sibling("hub 2").unwrap();
    second.start().await.expect("second hub");
    let lb = pek_tests::proxy::Balancer::start(vec![fed.hub.port, second.port])
        .await
        .expect("balancer");
    {
        let worker = &mut fed.worker("kir-dev").instance;
        worker.kill();
        worker.set_env("PEK_HUB_URL", &lb.url);
        worker.start().await.expect("worker through the balancer");
    }
    let reader = fed
        .person("failover-reader", "Olvasó", "Olga")
        .await
        .unwrap();
    fed.make_god("kir-dev", reader).await.unwrap();
    fed.wait_hub_knows(reader, "kir-dev", Duration::from_secs(20))
        .await
        .unwrap();
    let mut joiners = Vec::new();
    for i in 0..20 {
        joiners.push(
            fed.person(&format!("failover-{i}"), "Tag", &format!("{i}"))
                .await
                .unwrap(),
        );
    }

    let token = fed.token(reader);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut load = Vec::new();
    for _ in 0..6 {
        let (client, token, stop, ok, failed) = (
            client.clone(),
            token.clone(),
            stop.clone(),
            ok.clone(),
            failed.clone(),
        );
        let url = format!("{}/api/v1/realms/kir-dev/groups", lb.url);
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                match client.get(&url).bearer_auth(&token).send().await {
                    Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::SeqCst),
                    Ok(r) => {
                        eprintln!("read failed: {}", r.status());
                        failed.fetch_add(1, Ordering::SeqCst)
                    }
                    Err(e) => {
                        eprintln!("read failed: {e}");
                        failed.fetch_add(1, Ordering::SeqCst)
                    }
                };
            }
        }));
    }
    // Membership changes on the worker, spread over the kill and the restart.
    let changes = {
        let workers_db = fed.workers[0].db.clone();
        let joiners = joiners.clone();
        tokio::spawn(async move {
            let realm = pek::realm::RealmId::parse("kir-dev").unwrap();
            for u in joiners {
                pek::realm::ensure_local(&workers_db, &realm, "kir-dev", Some(u))
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    fed.hub.kill();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    fed.hub.start().await.expect("restarting the first hub");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    changes.await.unwrap();
    stop.store(true, Ordering::SeqCst);
    for t in load {
        t.await.unwrap();
    }
    let (ok, failed) = (ok.load(Ordering::SeqCst), failed.load(Ordering::SeqCst));
    eprintln!(
        "reads: {ok} ok, {failed} failed, {} retried on the other hub",
        lb.retried.load(Ordering::SeqCst)
    );
    assert_eq!(failed, 0, "reads failed during the failover ({ok} ok)");
    assert!(ok > 50, "hardly any load: {ok} reads");
    let start = Instant::now();
    for u in &joiners {
        fed.wait_hub_knows(*u, "kir-dev", Duration::from_secs(30))
            .await
            .unwrap();
    }
    eprintln!(
        "all {} membership changes in the federation table {:?} after the load",
        joiners.len(),
        start.elapsed()
    );
    drop(second);
}

/// A replica that cannot start says why: the whole cause chain goes to its log, not
/// only the outermost context.
#[tokio::test]
async fn a_start_up_failure_prints_its_whole_cause_chain() {
    let pg = localpg::LocalPostgres::shared().expect("postgres");
    let db = pg.fresh_database().await.expect("database");
    let wrong = db
        .owner_url
        .replacen("pek_owner:", "pek_owner:wrong-password-", 1);
    assert_ne!(wrong, db.owner_url);
    let out = std::process::Command::new(pek_tests::pek_binary().unwrap())
        .arg("serve")
        .env_clear()
        .env("PEK_MODE", "hub")
        .env("DATABASE_URL", &db.app_url)
        .env("PEK_MIGRATION_DATABASE_URL", &wrong)
        .env("PEK_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "error")
        .output()
        .expect("running pek serve");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("migrations failed: connecting with the migration URL")
            && stderr.contains("password authentication failed"),
        "the log does not name the cause: {stderr}"
    );
}
