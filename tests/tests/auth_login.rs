//! Login through a real OpenID Connect provider (node `oidc-provider`, PKCE required)
//! against a real hub process: /auth/login → provider login and consent → /auth/callback
//! → hub JWT (JSON for API clients, cookie + redirect for browsers) → authenticated calls;
//! the user row gets its provider id and last_login; replayed or forged state is a 400.

use pek_tests::auth_support::{free_port, fresh_db, Browser, PekProcess, PekSpec, Scratch};
use pek_tests::oidc_support::{drive_provider, OidcProvider};
use reqwest::{Method, StatusCode};

struct Setup {
    hub: PekProcess,
    provider: OidcProvider,
    db: localpg::Database,
    _dir: Scratch,
}

async fn setup() -> Setup {
    let hub_port = free_port().unwrap();
    let hub_url = format!("http://127.0.0.1:{hub_port}");
    let provider = OidcProvider::start(&format!("{hub_url}/auth/callback"))
        .await
        .expect("OIDC provider (node oidc-provider; ./tests/run.sh installs it)");
    let dir = Scratch::new("login").unwrap();
    let secret = dir.write("client-secret", &provider.client_secret).unwrap();
    let db = fresh_db().await.unwrap();
    let hub = PekSpec::hub(&db)
        .port(hub_port)
        .env("PEK_LOGIN_ISSUER_URL", &provider.issuer)
        .env("PEK_LOGIN_CLIENT_ID", &provider.client_id)
        .env("PEK_LOGIN_CLIENT_SECRET_FILE", secret.to_str().unwrap())
        .env("PEK_LOGIN_FRONTEND_URL", "http://frontend.example")
        .start()
        .await
        .expect("hub");
    Setup {
        hub,
        provider,
        db,
        _dir: dir,
    }
}

#[tokio::test]
async fn login_through_a_real_oidc_provider_issues_a_working_hub_token() {
    let s = setup().await;
    let hub = &s.hub.url;
    let callback = format!("{hub}/auth/callback");
    let mut b = Browser::new().unwrap();

    // API client: JSON answer.
    let start = b
        .get(&format!("{hub}/auth/login?returnTo=/groups"))
        .await
        .unwrap();
    assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.body);
    let to_provider = start.location.clone().expect("redirect to the provider");
    assert!(to_provider.starts_with(&s.provider.issuer), "{to_provider}");
    let q: std::collections::HashMap<String, String> = url::Url::parse(&to_provider)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(q.contains_key("code_challenge") && q.contains_key("state") && q.contains_key("nonce"));
    let set_cookie = start.headers.get("set-cookie").unwrap().to_str().unwrap();
    assert!(
        set_cookie.contains("HttpOnly")
            && set_cookie.contains("Secure")
            && set_cookie.contains("SameSite")
    );

    let back = drive_provider(&mut b, &to_provider, "ada", &callback).await;
    let done = b
        .request(Method::GET, &back, &[("accept", "application/json")], None)
        .await
        .unwrap();
    assert_eq!(
        done.status,
        StatusCode::OK,
        "{}\n{}",
        done.body,
        s.hub.logs()
    );
    let v = done.json();
    let token = v["token"].as_str().expect("token").to_string();
    assert_eq!(v["user"]["authSchId"], "ada", "{v}");
    assert_eq!(v["user"]["firstName"], "Ada", "{v}");
    assert_eq!(v["user"]["lastName"], "Tester", "{v}");
    assert!(v["expiresAt"].is_string(), "{v}");
    let session = done
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|h| h.to_str().ok())
        .find(|c| c.starts_with("pek_session="))
        .expect("session cookie")
        .to_string();
    for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(session.contains(attr), "{session}");
    }

    // The bearer token works, and so does the cookie alone.
    let (st, me) = pek_tests::auth_support::get_with_token(&format!("{hub}/api/v1/me"), &token)
        .await
        .unwrap();
    assert_eq!(st, StatusCode::OK, "{me}");
    assert_eq!(me["id"], v["user"]["id"], "{me}");
    let me_cookie = b.get(&format!("{hub}/api/v1/me")).await.unwrap();
    assert_eq!(me_cookie.status, StatusCode::OK, "{}", me_cookie.body);

    // The user row: provider id and last_login.
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(&s.db.superuser_url)
        .await
        .unwrap();
    let (auth_id, last_login): (String, Option<String>) =
        sqlx::query_as("SELECT auth_sch_id, last_login::text FROM users WHERE id = $1::uuid")
            .bind(v["user"]["id"].as_str().unwrap())
            .fetch_one(&mut c)
            .await
            .unwrap();
    assert_eq!(auth_id, "ada");
    assert!(last_login.is_some(), "last_login not set");

    // Replaying the callback (same state and code): 400, never a token.
    let replay = b
        .request(Method::GET, &back, &[("accept", "application/json")], None)
        .await
        .unwrap();
    assert_eq!(replay.status, StatusCode::BAD_REQUEST, "{}", replay.body);
    assert!(replay.body.contains("state"), "{}", replay.body);

    // Made-up state, provider error, missing state: clear 400s.
    for (what, url) in [
        ("forged state", format!("{callback}?code=x&state=made-up")),
        (
            "provider error",
            format!("{callback}?error=access_denied&error_description=no&state=zz"),
        ),
        ("no state", format!("{callback}?code=x")),
    ] {
        let p = b.get(&url).await.unwrap();
        assert_eq!(p.status, StatusCode::BAD_REQUEST, "{what}: {}", p.body);
        assert_eq!(
            p.json()["error"]["code"],
            "bad_request",
            "{what}: {}",
            p.body
        );
    }

    // A browser: the callback redirects to the frontend with the cookie set.
    let mut browser = Browser::new().unwrap();
    let start = browser
        .get(&format!("{hub}/auth/login?returnTo=/groups/42"))
        .await
        .unwrap();
    let back = drive_provider(
        &mut browser,
        start.location.as_deref().unwrap(),
        "bela",
        &callback,
    )
    .await;
    let done = browser.get(&back).await.unwrap();
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(
        done.location.as_deref(),
        Some("http://frontend.example/groups/42")
    );
    assert!(browser.cookie(hub, "pek_session").is_some());
    // Logout clears it.
    let out = browser
        .request(Method::POST, &format!("{hub}/auth/logout"), &[], None)
        .await
        .unwrap();
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert!(browser.cookie(hub, "pek_session").is_none());
    assert_eq!(
        browser
            .get(&format!("{hub}/api/v1/me"))
            .await
            .unwrap()
            .status,
        StatusCode::UNAUTHORIZED
    );

    // A callback in another browser than the one that started the login: 400.
    let mut a = Browser::new().unwrap();
    let start = a.get(&format!("{hub}/auth/login")).await.unwrap();
    let back = drive_provider(
        &mut a,
        start.location.as_deref().unwrap(),
        "cecil",
        &callback,
    )
    .await;
    let mut other = Browser::new().unwrap();
    let p = other.get(&back).await.unwrap();
    assert_eq!(p.status, StatusCode::BAD_REQUEST, "{}", p.body);

    // No secret in the hub's logs, and the dev login is absent.
    let logs = s.hub.logs();
    assert!(
        !logs.contains(&s.provider.client_secret),
        "client secret logged"
    );
    assert!(!logs.contains(&token), "token logged");
    let dev = reqwest::Client::new()
        .post(format!("{hub}/auth/dev-login"))
        .json(&serde_json::json!({"authSchId": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(dev.status(), StatusCode::NOT_FOUND);
}
