//! A hub and two workers as real processes, attacked the way an outsider and a curious
//! worker would: a token a worker sees must open nothing else, forwarded paths must be
//! canonical, a realm the health checks marked down must not cost every call the
//! deadline, the forwarder must not relabel bodies, and `/metrics` stays off the API
//! listener.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use pek_tests::auth_support::{fresh_db, PekSpec};
use pek_tests::federation::{Federation, Options};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A stand-in "worker" that answers every request with an empty page and remembers the
/// `Authorization` header of each: what a compromised worker would collect.
struct Collector {
    url: String,
    seen: Arc<Mutex<Vec<String>>>,
}

async fn collector() -> Collector {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).to_string();
                let is_api = head.starts_with("GET /api/");
                if let Some(auth) = head.lines().find_map(|l| l.strip_prefix("authorization: ")) {
                    if is_api {
                        log.lock().unwrap().push(auth.trim().to_string());
                    }
                }
                let body = r#"{"items":[]}"#;
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    Collector { url, seen }
}

/// A request with the path exactly as given (HTTP clients resolve `..` before sending,
/// which is what an attacker's raw client does not do). Returns status and body.
async fn raw_get(base: &str, path: &str, token: &str) -> (u16, String) {
    let addr = base.trim_start_matches("http://");
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\nconnection: close\r\n\r\n"
    );
    sock.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    sock.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn register(fed: &Federation, realm: &str, endpoint: &str) {
    let r = fed
        .http
        .put(format!("{}/internal/v1/realms/{realm}", fed.hub.url))
        .bearer_auth(&fed.operator_token)
        .json(&json!({"displayName": realm, "endpoint": endpoint, "version": "test"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
}

async fn group(fed: &Federation, token: &str, realm: &str, name: &str) {
    let (s, body) = fed
        .call(
            Method::POST,
            &format!("{}/api/v1/realms/{realm}/groups", fed.hub.url),
            token,
            Some(json!({ "name": name })),
        )
        .await
        .unwrap();
    assert_eq!(s, 201, "creating {name} in {realm}: {body}");
}

#[tokio::test]
async fn a_token_a_worker_sees_opens_no_other_realm_and_not_the_hub() {
    let fed = Federation::start(Options::default())
        .await
        .expect("federation");
    let god = fed.person("tok-god", "Gode", "Tamás").await.unwrap();
    fed.make_god("kir-dev", god).await.unwrap();
    fed.make_god("kszk", god).await.unwrap();
    for realm in ["kir-dev", "kszk"] {
        fed.wait_hub_knows(god, realm, Duration::from_secs(20))
            .await
            .unwrap();
    }
    let hub_token = fed.token(god);
    let evil = collector().await;
    register(&fed, "evil", &evil.url).await;

    // The hub forwards to "evil" with a token of its own making, twice the same one.
    for _ in 0..2 {
        let (s, body) = fed
            .call(
                Method::GET,
                &format!("{}/api/v1/realms/evil/groups", fed.hub.url),
                &hub_token,
                None,
            )
            .await
            .unwrap();
        assert_eq!(s, 200, "{body}");
    }
    let seen = evil.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    let captured = seen[0]
        .strip_prefix("Bearer ")
        .expect("a bearer token")
        .to_string();
    assert_eq!(
        seen[0], seen[1],
        "the realm token is reused, not signed per call"
    );
    assert_ne!(
        captured, hub_token,
        "the caller's hub token reached a worker"
    );
    let c = claims_of(&captured);
    assert_eq!(c["aud"], "pek:realm:evil", "{c}");
    assert_eq!(c["sub"], json!(god), "{c}");
    let (iat, exp, nbf) = (
        c["iat"].as_u64().unwrap(),
        c["exp"].as_u64().unwrap(),
        c["nbf"].as_u64().expect("nbf"),
    );
    assert!(exp - iat <= 120 && nbf <= pek::auth::now_secs(), "{c}");

    // "evil" replays what it got: refused by the hub and by every other worker.
    let kir_dev = fed.workers[0].instance.url.clone();
    let kszk = fed.workers[1].instance.url.clone();
    for (where_, url) in [
        ("hub /me", format!("{}/api/v1/me", fed.hub.url)),
        (
            "hub forwarding",
            format!("{}/api/v1/realms/kszk/groups", fed.hub.url),
        ),
        ("hub search", format!("{}/api/v1/groups?q=a", fed.hub.url)),
        ("kir-dev", format!("{kir_dev}/api/v1/realms/kir-dev/groups")),
        ("kszk", format!("{kszk}/api/v1/realms/kszk/groups")),
    ] {
        let (s, body) = fed.call(Method::GET, &url, &captured, None).await.unwrap();
        assert_eq!(s, 401, "{where_} accepted the token evil collected: {body}");
    }
    // Nor does a hub token open a worker, or one worker's token another.
    let kszk_token = fed.realm_token(god, "kszk");
    for (what, url, token) in [
        (
            "a hub token at kszk",
            format!("{kszk}/api/v1/realms/kszk/groups"),
            &hub_token,
        ),
        (
            "kszk's token at kir-dev",
            format!("{kir_dev}/api/v1/realms/kir-dev/groups"),
            &kszk_token,
        ),
        (
            "kszk's token at the hub",
            format!("{}/api/v1/me", fed.hub.url),
            &kszk_token,
        ),
    ] {
        let (s, body) = fed.call(Method::GET, &url, token, None).await.unwrap();
        assert_eq!(s, 401, "{what} was accepted: {body}");
    }
    let (s, body) = fed
        .call(
            Method::GET,
            &format!("{kszk}/api/v1/realms/kszk/groups"),
            &kszk_token,
            None,
        )
        .await
        .unwrap();
    assert_eq!(s, 200, "kszk refused its own token: {body}");

    // Forwarding and fan-out still work with the hub token.
    group(&fed, &hub_token, "kir-dev", "Tokenes Kir-Dev").await;
    group(&fed, &hub_token, "kszk", "Tokenes KSZK").await;
    let (s, body) = fed
        .call(
            Method::GET,
            &format!("{}/api/v1/groups?q=tokenes", fed.hub.url),
            &hub_token,
            None,
        )
        .await
        .unwrap();
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["partial"], false, "{body}");
    assert_eq!(body["items"].as_array().unwrap().len(), 2, "{body}");

    // The scheme name is case-insensitive.
    for scheme in ["bearer", "BEARER"] {
        let r = fed
            .http
            .get(format!("{}/api/v1/realms/kszk/groups", fed.hub.url))
            .header("authorization", format!("{scheme} {hub_token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{scheme}: {}", r.text().await.unwrap());
    }

    // Only `/api/v1/realms/{realm}/…` is forwarded: the bare realm path is not.
    let before = evil.seen.lock().unwrap().len();
    let (s, _) = fed
        .call(
            Method::GET,
            &format!("{}/api/v1/realms/evil", fed.hub.url),
            &hub_token,
            None,
        )
        .await
        .unwrap();
    assert_eq!(s, 404);
    assert_eq!(evil.seen.lock().unwrap().len(), before, "forwarded");
}

#[tokio::test]
async fn the_hub_forwards_only_canonical_realm_paths_and_keeps_the_content_type() {
    let fed = Federation::start(Options::default())
        .await
        .expect("federation");
    let god = fed.person("path-god", "Gode", "Pál").await.unwrap();
    fed.make_god("kszk", god).await.unwrap();
    fed.wait_hub_knows(god, "kszk", Duration::from_secs(20))
        .await
        .unwrap();
    let token = fed.token(god);
    let (s, body) = raw_get(&fed.hub.url, "/api/v1/realms/kszk/groups", &token).await;
    assert_eq!(s, 200, "{body}");
    let kszk = fed.workers[1].instance.url.clone();
    let wtoken = fed.realm_token(god, "kszk");
    for path in [
        "/api/v1/realms/kszk/../../../../metrics",
        "/api/v1/realms/kszk/../../../../openapi.json",
        "/api/v1/realms/kszk/groups/..",
        "/api/v1/realms/kszk/./groups",
        "/api/v1/realms/kszk//groups",
        "/api/v1/realms/kszk/groups/",
        "/api/v1/realms/kszk/%2e%2e/%2e%2e/%2E%2E/%2e%2e/metrics",
        "/api/v1/realms/kszk/.%2e/.%2E/.%2e/.%2e/metrics",
        "/api/v1/realms/kszk/groups%2f..%2f..%2f..%2f..%2fmetrics",
        "/api/v1/realms/kszk/groups%5c..%5c..%5cmetrics",
    ] {
        for (who, base, t) in [("hub", &fed.hub.url, &token), ("worker", &kszk, &wtoken)] {
            let (s, body) = raw_get(base, path, t).await;
            assert_eq!(s, 400, "{who} {path}: {body}");
            let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            assert_eq!(v["error"]["code"], "bad_request", "{who} {path}: {body}");
        }
    }

    // One Content-Type rule: a JSON body labelled as something else (or not at all) is
    // a 415, the same through the hub as directly (the forwarder passes the label on,
    // never relabels).
    for (who, url, t) in [
        (
            "hub",
            format!("{}/api/v1/realms/kszk/groups", fed.hub.url),
            &token,
        ),
        (
            "worker",
            format!("{kszk}/api/v1/realms/kszk/groups"),
            &wtoken,
        ),
    ] {
        for ct in [Some("text/plain"), None] {
            let mut rb = fed
                .http
                .post(&url)
                .bearer_auth(t)
                .body(r#"{"name": "Relabelled"}"#);
            if let Some(ct) = ct {
                rb = rb.header("content-type", ct);
            }
            let r = rb.send().await.unwrap();
            let status = r.status().as_u16();
            let v: Value = r.json().await.unwrap();
            assert_eq!(status, 415, "{who}, content-type {ct:?}: {v}");
            assert!(
                v["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("Content-Type"),
                "{v}"
            );
        }
    }
}

#[tokio::test]
async fn a_realm_marked_down_is_unavailable_at_once() {
    let mut fed = Federation::start(Options {
        bff_deadline_ms: 3000,
        ..Options::default()
    })
    .await
    .expect("federation");
    let god = fed.person("down-god", "Gode", "Dénes").await.unwrap();
    fed.make_god("kir-dev", god).await.unwrap();
    fed.make_god("kszk", god).await.unwrap();
    for realm in ["kir-dev", "kszk"] {
        fed.wait_hub_knows(god, realm, Duration::from_secs(20))
            .await
            .unwrap();
    }
    let token = fed.token(god);
    let search = format!("{}/api/v1/groups?q=x", fed.hub.url);
    let (s, body) = fed.call(Method::GET, &search, &token, None).await.unwrap();
    assert_eq!((s, &body["partial"]), (200, &json!(false)), "{body}");

    // kszk hangs: it accepts connections but never answers. The health checks mark it
    // down; from then on calls do not wait for it.
    fed.worker("kszk").instance.signal("STOP").unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while fed.registry_status("kszk").await.unwrap() != "down" {
        assert!(Instant::now() < deadline, "kszk never marked down");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The registry follows the table by NOTIFY; give it a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..3 {
        let start = Instant::now();
        let (s, body) = fed.call(Method::GET, &search, &token, None).await.unwrap();
        let took = start.elapsed();
        assert_eq!(s, 200, "{body}");
        assert_eq!(body["unavailable"], json!(["kszk"]), "{body}");
        assert_eq!(
            body["leftOut"],
            json!([{"realm": "kszk", "reason": "down"}]),
            "{body}"
        );
        assert!(
            took < Duration::from_millis(1500),
            "a down realm cost {took:?} (deadline 3 s; half of it is the bound)"
        );
        let start = Instant::now();
        let (s, body) = fed
            .call(
                Method::GET,
                &format!("{}/api/v1/realms/kszk/groups", fed.hub.url),
                &token,
                None,
            )
            .await
            .unwrap();
        let took = start.elapsed();
        assert_eq!(s, 503, "{body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains("down"),
            "{body}"
        );
        assert_eq!(
            (&body["error"]["code"], &body["error"]["reason"]),
            (&json!("unavailable"), &json!("down")),
            "{body}"
        );
        assert!(took < Duration::from_millis(1500), "took {took:?}");
    }

    // Thawed: the background probes mark it active and it answers again.
    fed.worker("kszk").instance.signal("CONT").unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (s, body) = fed.call(Method::GET, &search, &token, None).await.unwrap();
        assert_eq!(s, 200, "{body}");
        if body["partial"] == false {
            break;
        }
        assert!(Instant::now() < deadline, "kszk never came back: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn metrics_are_served_on_their_own_listener_only() {
    let port = pek_tests::free_port().unwrap();
    let hub = PekSpec::hub(&fresh_db().await.unwrap())
        .env("PEK_METRICS_LISTEN", format!("127.0.0.1:{port}"))
        .start()
        .await
        .expect("hub");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let ready = loop {
        match http.get(format!("{}/readyz", hub.url)).send().await {
            Ok(r) if r.status().is_success() => break true,
            _ if Instant::now() > deadline => break false,
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    assert!(ready, "hub not ready");
    let r = http
        .get(format!("{}/metrics", hub.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "/metrics on the API listener");
    let r = http
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.contains("pek_http_requests_total"), "{text}");
    let r = http
        .get(format!("http://127.0.0.1:{port}/api/v1/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "the metrics listener serves only /metrics");
    let doc: Value = http
        .get(format!("{}/openapi.json", hub.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        doc["paths"].get("/metrics").is_none(),
        "/metrics documented"
    );
}
