//! Hub tokens across real processes: a hub (`pek serve`, PEK_MODE=hub) signing with the
//! key file the Helm chart mounts, a worker verifying through the hub's JWKS. Forged
//! tokens are 401 on both; the worker keeps its cached keys while the hub is down and
//! picks up a rotated key on the first unknown `kid`.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use pek::auth::{now_secs, Claims, Signer};
use pek_tests::auth_support::{fresh_db, get_with_token, PekProcess, PekSpec, Scratch};
use reqwest::StatusCode;
use uuid::Uuid;

const ISS: &str = "pek-hub";
const AUD: &str = "pek";

fn claims(iss: &str, aud: &str, exp: u64) -> Claims {
    Claims {
        sub: Uuid::new_v4(),
        iss: iss.into(),
        aud: aud.into(),
        exp,
        iat: now_secs(),
        nbf: None,
        name: None,
        sid: None,
        idp: None,
    }
}

/// The audience of the test workers' realm (`kir-dev`).
fn worker_aud() -> String {
    pek::auth::realm_audience(AUD, "kir-dev")
}

/// A token for the `kir-dev` worker, as the hub mints it when it forwards.
fn worker_token(key: &Signer) -> String {
    key.issue_to(Uuid::new_v4(), &worker_aud(), 300, None)
        .unwrap()
}

fn groups(p: &PekProcess, realm: &str) -> String {
    format!("{}/api/v1/realms/{realm}/groups", p.url)
}

async fn status(url: &str, token: &str) -> (StatusCode, serde_json::Value) {
    get_with_token(url, token).await.expect("request")
}

/// Every kind of forgery the issue lists, against the hub's signing key `key`, for a
/// verifier that expects audience `aud`.
fn forgeries(key: &Signer, aud: &str) -> Vec<(&'static str, String)> {
    let now = now_secs();
    let good = claims(ISS, aud, now + 300);
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&good).unwrap());
    let none_header = URL_SAFE_NO_PAD.encode(format!(
        r#"{{"alg":"none","typ":"JWT","kid":"{}"}}"#,
        key.kid()
    ));
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some(key.kid().to_string());
    let hs256 = jsonwebtoken::encode(
        &hs,
        &good,
        &EncodingKey::from_secret(key.public_pem().as_bytes()),
    )
    .unwrap();
    let stranger = Signer::generate(ISS, AUD).unwrap();
    // Wrong key, but claiming the hub key's kid.
    let mut wrong_header = Header::new(Algorithm::EdDSA);
    wrong_header.kid = Some(key.kid().to_string());
    let wrong_key = jsonwebtoken::encode(
        &wrong_header,
        &good,
        &EncodingKey::from_ed_pem(stranger.private_pem().as_bytes()).unwrap(),
    )
    .unwrap();
    vec![
        ("alg none", format!("{none_header}.{body}.")),
        ("HS256 keyed with the public key", hs256),
        ("unknown kid", stranger.sign(&good).unwrap()),
        ("wrong key under the hub's kid", wrong_key),
        ("expired", key.sign(&claims(ISS, aud, now - 3600)).unwrap()),
        ("not valid yet", {
            let mut c = claims(ISS, aud, now + 600);
            c.nbf = Some(now + 300);
            key.sign(&c).unwrap()
        }),
        (
            "wrong audience",
            key.sign(&claims(ISS, "other", now + 300)).unwrap(),
        ),
        (
            "wrong issuer",
            key.sign(&claims("evil", aud, now + 300)).unwrap(),
        ),
    ]
}

#[tokio::test]
async fn forged_tokens_are_refused_by_hub_and_worker() {
    let dir = Scratch::new("auth-forge").unwrap();
    // What Helm's genPrivateKey "rsa" makes: PEM "RSA PRIVATE KEY" (PKCS#1).
    let key = Signer::generate_rsa(2048, ISS, AUD).unwrap();
    assert!(key.private_pem().contains("BEGIN RSA PRIVATE KEY"));
    let key_file = dir.write("private.pem", &key.private_pem()).unwrap();
    let hub = PekSpec::hub(&fresh_db().await.unwrap())
        .env("PEK_JWT_PRIVATE_KEY_FILE", key_file.to_str().unwrap())
        .start()
        .await
        .expect("hub");
    let worker = PekSpec::worker(&fresh_db().await.unwrap(), "kir-dev", &hub.url)
        .env("PEK_JWKS_MIN_REFETCH_SECONDS", "1")
        .start()
        .await
        .expect("worker");

    // The JWKS: the public key only, named and typed.
    let jwks: serde_json::Value = reqwest::get(format!("{}/.well-known/jwks.json", hub.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let k = &jwks["keys"][0];
    assert_eq!(
        (&k["kty"], &k["alg"], &k["use"], &k["kid"]),
        (
            &"RSA".into(),
            &"RS256".into(),
            &"sig".into(),
            &key.kid().into()
        ),
        "{jwks}"
    );
    assert!(k["n"].is_string() && k["e"] == "AQAB", "{jwks}");
    assert!(
        k.get("d").is_none() && k.get("p").is_none(),
        "private parts published: {jwks}"
    );

    let valid = key.issue(Uuid::new_v4(), 300).unwrap();
    let valid_at_worker = worker_token(&key);
    for (who, url, valid, aud) in [
        ("hub", groups(&hub, "hub"), &valid, AUD.to_string()),
        (
            "worker",
            groups(&worker, "kir-dev"),
            &valid_at_worker,
            worker_aud(),
        ),
    ] {
        let (s, b) = status(&url, valid).await;
        assert_eq!(s, StatusCode::OK, "{who} refused a valid token: {b}");
        for (what, token) in forgeries(&key, &aud) {
            let (s, b) = status(&url, &token).await;
            assert_eq!(
                s,
                StatusCode::UNAUTHORIZED,
                "{who} accepted a token with {what}: {b}"
            );
            assert_eq!(b["error"]["code"], "unauthorized", "{who}, {what}: {b}");
        }
    }
    // Only the first unknown kid made the worker refetch (bounded); it never 500s.
    assert!(
        !worker.logs().contains("internal error"),
        "{}",
        worker.logs()
    );
    // No token or private key in the logs.
    for p in [&hub, &worker] {
        let logs = p.logs();
        assert!(!logs.contains(&valid), "a token was logged");
        assert!(!logs.contains(&valid_at_worker), "a token was logged");
        assert!(!logs.contains("PRIVATE KEY"), "a private key was logged");
    }
}

#[tokio::test]
async fn worker_keeps_cached_keys_while_the_hub_is_down_and_starts_without_it() {
    let dir = Scratch::new("auth-down").unwrap();
    let key = Signer::generate(ISS, AUD).unwrap();
    let key_file = dir.write("private.pem", &key.private_pem()).unwrap();
    let hub_port = pek_tests::auth_support::free_port().unwrap();
    let hub_url = format!("http://127.0.0.1:{hub_port}");

    // The worker starts while the hub is not there yet: it serves, but cannot verify.
    let worker = PekSpec::worker(&fresh_db().await.unwrap(), "kir-dev", &hub_url)
        .env("PEK_JWKS_MIN_REFETCH_SECONDS", "1")
        .start()
        .await
        .expect("a worker starts without its hub");
    let url = groups(&worker, "kir-dev");
    let token = worker_token(&key);
    let (s, b) = status(&url, &token).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
    let msg = b["error"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("signing keys") && msg.contains(&hub_url),
        "{b}"
    );

    // The hub comes up: the keys arrive (background retry or the next unknown kid).
    let hub_db = fresh_db().await.unwrap();
    let mut hub = PekSpec::hub(&hub_db)
        .env("PEK_JWT_PRIVATE_KEY_FILE", key_file.to_str().unwrap())
        .port(hub_port)
        .start()
        .await
        .expect("hub");
    let mut ok = false;
    for _ in 0..40 {
        if status(&url, &token).await.0 == StatusCode::OK {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(ok, "the worker never got the hub's keys\n{}", worker.logs());

    // The hub goes away: cached keys keep working; unknown kids are still 401, not 5xx.
    hub.kill();
    for _ in 0..3 {
        let fresh = worker_token(&key);
        let (s, b) = status(&url, &fresh).await;
        assert_eq!(
            s,
            StatusCode::OK,
            "cached keys refused with the hub down: {b}"
        );
        let stranger = Signer::generate(ISS, AUD).unwrap();
        let (s, b) = status(&url, &worker_token(&stranger)).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .unwrap()
        .kid
        .unwrap_or_default()
}

#[tokio::test]
async fn rotation_keeps_old_tokens_and_workers_learn_the_new_key() {
    let dir = Scratch::new("auth-rotate").unwrap();
    let old = Signer::generate(ISS, AUD).unwrap();
    let new = Signer::generate_rsa(2048, ISS, AUD).unwrap();
    let old_file = dir.write("old.pem", &old.private_pem()).unwrap();
    let rotated_file = dir
        .write(
            "rotated.pem",
            &format!("{}{}", new.private_pem(), old.private_pem()),
        )
        .unwrap();
    let hub_db = fresh_db().await.unwrap();
    let mut hub = PekSpec::hub(&hub_db)
        .env("PEK_JWT_PRIVATE_KEY_FILE", old_file.to_str().unwrap())
        .env("PEK_DEV_LOGIN", "true")
        .start()
        .await
        .expect("hub");
    let port = hub.port;
    let worker = PekSpec::worker(&fresh_db().await.unwrap(), "kir-dev", &hub.url)
        .env("PEK_JWKS_MIN_REFETCH_SECONDS", "1")
        .env("PEK_JWKS_REFRESH_SECONDS", "3600")
        .start()
        .await
        .expect("worker");
    let wurl = groups(&worker, "kir-dev");

    let dev_login = |hub_url: String| async move {
        let r = reqwest::Client::new()
            .post(format!("{hub_url}/auth/dev-login"))
            .json(&serde_json::json!({"authSchId": "rotation-user", "firstName": "Rot"}))
            .send()
            .await
            .expect("dev login");
        assert_eq!(r.status(), StatusCode::OK);
        let v: serde_json::Value = r.json().await.unwrap();
        v["token"].as_str().expect("token").to_string()
    };
    let old_token = dev_login(hub.url.clone()).await;
    assert_eq!(kid_of(&old_token), old.kid());
    // What the hub sends the worker is signed with the same key, for the worker's realm.
    let old_worker_token = worker_token(&old);
    let mut ok = false;
    for _ in 0..40 {
        if status(&wurl, &old_worker_token).await.0 == StatusCode::OK {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        ok,
        "worker never accepted the hub's token\n{}",
        worker.logs()
    );

    // Rotate: restart the hub with [new, old]; the worker's periodic refresh is an hour
    // away, so only the unknown-kid refetch can teach it the new key.
    hub.kill();
    let hub = PekSpec::hub(&hub_db)
        .env("PEK_JWT_PRIVATE_KEY_FILE", rotated_file.to_str().unwrap())
        .env("PEK_DEV_LOGIN", "true")
        .port(port)
        .start()
        .await
        .expect("rotated hub");
    tokio::time::sleep(Duration::from_millis(1100)).await; // past the refetch bound
    let new_token = dev_login(hub.url.clone()).await;
    assert_eq!(kid_of(&new_token), new.kid(), "the first key signs");
    let jwks: serde_json::Value = reqwest::get(format!("{}/.well-known/jwks.json", hub.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["kid"].as_str())
        .collect();
    assert_eq!(kids, vec![new.kid(), old.kid()], "both keys published");

    let me = format!("{}/api/v1/me", hub.url);
    let new_worker_token = worker_token(&new);
    for (what, t, wt) in [
        ("old", &old_token, &old_worker_token),
        ("new", &new_token, &new_worker_token),
    ] {
        let (s, b) = status(&me, t).await;
        assert_eq!(s, StatusCode::OK, "hub refused the {what} token: {b}");
        let (s, b) = status(&wurl, wt).await;
        assert_eq!(
            s,
            StatusCode::OK,
            "worker refused the {what} token: {b}\n{}",
            worker.logs()
        );
    }
}
