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

// ---------------------------------------------------------------------------------------
// Identity brokering: two real OIDC providers (node `oidc-provider` started twice: other
// issuer, other signing key). `authsch` is the default provider (PEK_LOGIN_*, may sign up
// people, owns no profile field); `beta` comes from the provider registry, signs up nobody
// and owns the first name. The worker realm `kir-dev` accepts only `beta` sessions.

use pek_tests::auth_support::Page;

struct Brokered {
    hub: PekProcess,
    worker: PekProcess,
    a: OidcProvider,
    b: OidcProvider,
    db: localpg::Database,
    worker_db: localpg::Database,
    /// The worker's hub token file (the realm token the hub derives from its federation
    /// secret): the worker reports to the hub with it, and the hub's internal calls to
    /// the worker (a merge's part) carry it.
    worker_token_file: std::path::PathBuf,
    _dir: Scratch,
}

const OPERATOR_TOKEN: &str = "operator-token-for-the-identity-tests";

async fn brokered() -> Brokered {
    let hub_port = free_port().unwrap();
    let hub_url = format!("http://127.0.0.1:{hub_port}");
    let callback = format!("{hub_url}/auth/callback");
    let (a, b) = tokio::join!(
        OidcProvider::start(&callback),
        OidcProvider::start(&callback)
    );
    let (a, b) = (a.expect("OIDC provider A"), b.expect("OIDC provider B"));
    assert_ne!(a.issuer, b.issuer);
    let dir = Scratch::new("brokering").unwrap();
    let secret_a = dir.write("secret-a", &a.client_secret).unwrap();
    let secret_b = dir.write("secret-b", &b.client_secret).unwrap();
    let operator = dir.write("operator", OPERATOR_TOKEN).unwrap();
    let federation_secret = format!("federation-secret-{}", uuid::Uuid::new_v4().simple());
    let secret_file = dir.write("federation-secret", &federation_secret).unwrap();
    let kir_dev = pek::realm::RealmId::parse("kir-dev").unwrap();
    let worker_token_file = dir
        .write(
            "hub-token-kir-dev",
            &pek::federation::realm_token(federation_secret.as_bytes(), &kir_dev),
        )
        .unwrap();
    let registry = serde_json::json!([{
        "id": "beta",
        "displayName": "Beta ID",
        "issuer": b.issuer,
        "clientId": b.client_id,
        "clientSecretFile": secret_b,
        "createPeople": false,
        "ownedFields": ["firstName"],
    }]);
    let (db, worker_db) = (fresh_db().await.unwrap(), fresh_db().await.unwrap());
    let hub = PekSpec::hub(&db)
        .port(hub_port)
        .env("PEK_LOGIN_ISSUER_URL", &a.issuer)
        .env("PEK_LOGIN_CLIENT_ID", &a.client_id)
        .env("PEK_LOGIN_CLIENT_SECRET_FILE", secret_a.to_str().unwrap())
        .env("PEK_LOGIN_PROVIDERS", registry.to_string())
        .env("PEK_OPERATOR_TOKEN_FILE", operator.to_str().unwrap())
        .env("PEK_FEDERATION_SECRET_FILE", secret_file.to_str().unwrap())
        // `root` is a hub administrator (merges people).
        .env("PEK_REALM_ADMINS", "authsch:root")
        .env("PEK_HEALTH_INTERVAL_MS", "300")
        .env("PEK_MERGE_RETRY_SECS", "1")
        .start()
        .await
        .expect("hub");
    let worker = start_worker(&worker_db, &hub.url, &worker_token_file, None).await;
    // The Realm's `spec.providers: [beta]`, as the operator registers it.
    let reg = reqwest::Client::new()
        .put(format!("{}/internal/v1/realms/kir-dev", hub.url))
        .bearer_auth(OPERATOR_TOKEN)
        .json(&serde_json::json!({
            "displayName": "KIR-Dev", "endpoint": worker.url, "providers": ["beta"]
        }))
        .send()
        .await
        .unwrap();
    assert!(reg.status().is_success(), "{}", reg.text().await.unwrap());
    Brokered {
        hub,
        worker,
        a,
        b,
        db,
        worker_db,
        worker_token_file,
        _dir: dir,
    }
}

async fn start_worker(
    db: &localpg::Database,
    hub: &str,
    token_file: &std::path::Path,
    port: Option<u16>,
) -> PekProcess {
    let mut spec = PekSpec::worker(db, "kir-dev", hub)
        .env("PEK_HUB_TOKEN_FILE", token_file.to_str().unwrap())
        .env("PEK_OUTBOX_INTERVAL_MS", "100");
    if let Some(p) = port {
        spec = spec.port(p);
    }
    spec.start().await.expect("worker")
}

impl Brokered {
    /// Signs a fresh browser in through `provider` (`None`: the default) as `login`: the
    /// browser (with its session cookie, if any) and the callback's JSON answer.
    async fn sign_in(&self, provider: Option<&str>, login: &str) -> (Browser, Page) {
        let mut b = Browser::new().unwrap();
        let hub = &self.hub.url;
        let url = match provider {
            Some(p) => format!("{hub}/auth/login?provider={p}"),
            None => format!("{hub}/auth/login"),
        };
        let start = b.get(&url).await.unwrap();
        assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.body);
        let to = start.location.clone().unwrap();
        let expected = if provider == Some("beta") {
            &self.b.issuer
        } else {
            &self.a.issuer
        };
        assert!(to.starts_with(expected.as_str()), "{to}");
        let back = drive_provider(&mut b, &to, login, &format!("{hub}/auth/callback")).await;
        let done = b
            .request(Method::GET, &back, &[("accept", "application/json")], None)
            .await
            .unwrap();
        (b, done)
    }

    /// Starts linking `beta` from the session of `token` and drives provider B as `login`
    /// in `b`: the callback URL and the `pek_login` cookie binding it (the callback is
    /// not followed).
    async fn start_link(&self, b: &mut Browser, token: &str, login: &str) -> (String, String) {
        let hub = &self.hub.url;
        let resp = reqwest::Client::new()
            .post(format!("{hub}/api/v1/me/identities"))
            .bearer_auth(token)
            .json(&serde_json::json!({"provider": "beta", "returnTo": "/"}))
            .send()
            .await
            .unwrap();
        let cookie = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|c| c.to_str().ok())
            .find_map(|c| c.strip_prefix("pek_login="))
            .and_then(|c| c.split(';').next())
            .map(String::from);
        let status = resp.status();
        let v: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{v}");
        let cookie = cookie.expect("pek_login cookie");
        let url = v["authorizationUrl"].as_str().unwrap().to_string();
        assert!(url.starts_with(&self.b.issuer), "{url}");
        b.set_cookie(hub, "pek_login", &cookie);
        let back = drive_provider(b, &url, login, &format!("{hub}/auth/callback")).await;
        (back, cookie)
    }

    async fn identities(&self, token: &str) -> serde_json::Value {
        let (st, v) = pek_tests::auth_support::get_with_token(
            &format!("{}/api/v1/me/identities", self.hub.url),
            token,
        )
        .await
        .unwrap();
        assert_eq!(st, StatusCode::OK, "{v}");
        v
    }

    async fn names(&self, user: &str) -> (Option<String>, Option<String>) {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&self.db.superuser_url)
            .await
            .unwrap();
        sqlx::query_as("SELECT first_name, last_name FROM profiles WHERE user_id = $1::uuid")
            .bind(user)
            .fetch_one(&mut c)
            .await
            .unwrap()
    }
}

fn token_of(p: &Page) -> String {
    p.json()["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {}", p.body))
        .to_string()
}

#[tokio::test]
async fn identities_are_per_issuer_never_by_email_and_linked_only_from_their_own_session() {
    let s = brokered().await;
    let hub = s.hub.url.clone();

    // P signs up through AuthSCH (provider A) as `ada`.
    let (mut bp, done) = s.sign_in(None, "ada").await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let p = done.json()["user"]["id"].as_str().unwrap().to_string();
    let tp = token_of(&done);
    assert_eq!(done.json()["user"]["provider"], "authsch");
    // P's profile has their e-mail (so linking by e-mail would have something to match).
    let email = reqwest::Client::new()
        .put(format!("{hub}/api/v1/me/profile"))
        .bearer_auth(&tp)
        .json(&serde_json::json!({"firstName": "Ada", "email": "ada@example.org"}))
        .send()
        .await
        .unwrap();
    assert!(
        email.status().is_success(),
        "{}",
        email.text().await.unwrap()
    );

    // Provider B's `ada` (same `sub`, same e-mail) is not P: B signs up nobody, so it is
    // refused and told to link from the profile page.
    let (_, other) = s.sign_in(Some("beta"), "ada").await;
    assert_eq!(other.status, StatusCode::FORBIDDEN, "{}", other.body);
    assert_eq!(other.json()["error"]["reason"], "identity_not_linked");
    assert!(other.json().get("token").is_none());

    // A first login with P's e-mail under another `sub` is a new person, never P.
    let (mut bq, q_done) = s.sign_in(None, "zed=ada").await;
    assert_eq!(q_done.status, StatusCode::OK, "{}", q_done.body);
    assert_eq!(q_done.json()["user"]["email"], "ada@example.org");
    let q = q_done.json()["user"]["id"].as_str().unwrap().to_string();
    assert_ne!(
        q, p,
        "a first login was linked to an existing person by e-mail"
    );
    let tq = token_of(&q_done);

    // A link proof replayed into another session of P (another browser) links nothing.
    let (mut bp2, p2) = s.sign_in(None, "ada").await;
    assert_eq!(p2.json()["user"]["id"], p.as_str());
    let (back, cookie) = s.start_link(&mut bp, &tp, "ada").await;
    bp2.set_cookie(&hub, "pek_login", &cookie);
    let replay = bp2
        .request(Method::GET, &back, &[("accept", "application/json")], None)
        .await
        .unwrap();
    assert_eq!(replay.status, StatusCode::BAD_REQUEST, "{}", replay.body);
    // ...nor into another person's session with P's state.
    let (back, cookie) = s.start_link(&mut bp, &tp, "ada").await;
    bq.set_cookie(&hub, "pek_login", &cookie);
    let stolen = bq
        .request(Method::GET, &back, &[("accept", "application/json")], None)
        .await
        .unwrap();
    assert_eq!(stolen.status, StatusCode::BAD_REQUEST, "{}", stolen.body);
    assert_eq!(
        s.identities(&tq).await["identities"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        s.identities(&tp).await["identities"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // From P's own session it links, and is recorded.
    let (back, _) = s.start_link(&mut bp, &tp, "ada").await;
    let linked = bp
        .request(Method::GET, &back, &[("accept", "application/json")], None)
        .await
        .unwrap();
    assert_eq!(linked.status, StatusCode::OK, "{}", linked.body);
    let mine = s.identities(&tp).await;
    let ids = mine["identities"].as_array().unwrap();
    assert_eq!(ids.len(), 2, "{mine}");
    assert_eq!(
        (&ids[1]["provider"], &ids[1]["issuer"]),
        (&"beta".into(), &s.b.issuer.clone().into())
    );
    assert_eq!(mine["events"][0]["action"], "link", "{mine}");
    assert_eq!(mine["events"][0]["actor"], p.as_str(), "{mine}");

    // Now B's `ada` signs in as P; Q cannot take that identity.
    let (_, via_b) = s.sign_in(Some("beta"), "ada").await;
    assert_eq!(via_b.status, StatusCode::OK, "{}", via_b.body);
    assert_eq!(via_b.json()["user"]["id"], p.as_str());
    assert_eq!(via_b.json()["user"]["provider"], "beta");
    let (back, _) = s.start_link(&mut bq, &tq, "ada").await;
    let taken = bq
        .request(Method::GET, &back, &[("accept", "application/json")], None)
        .await
        .unwrap();
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.body);

    // Profile fields: B owns the first name (refreshed at each B sign-in); the last name
    // is the person's; AuthSCH here owns nothing.
    let edit = reqwest::Client::new()
        .put(format!("{hub}/api/v1/me/profile"))
        .bearer_auth(&tp)
        .json(&serde_json::json!({"firstName": "Edited", "lastName": "Changed"}))
        .send()
        .await
        .unwrap();
    assert!(edit.status().is_success(), "{}", edit.text().await.unwrap());
    let (_, again) = s.sign_in(None, "ada").await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(
        s.names(&p).await,
        (Some("Edited".into()), Some("Changed".into())),
        "a provider that owns nothing overwrote the profile"
    );
    let (_, again) = s.sign_in(Some("beta"), "ada").await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(
        s.names(&p).await,
        (Some("Ada".into()), Some("Changed".into())),
        "B's owned first name is refreshed, the last name is left alone"
    );

    // Unlink: any but the last, recorded.
    let del = |key: &str| {
        reqwest::Client::new()
            .delete(format!("{hub}/api/v1/me/identities/{key}"))
            .bearer_auth(&tp)
            .send()
    };
    assert_eq!(
        del("authsch").await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    let mine = s.identities(&tp).await;
    let last = mine["identities"][0]["key"].as_str().unwrap().to_string();
    assert_eq!(mine["identities"].as_array().unwrap().len(), 1, "{mine}");
    let refused = del(&last).await.unwrap();
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["reason"], "last_identity", "{body}");
    let mine = s.identities(&tp).await;
    assert_eq!(mine["identities"].as_array().unwrap().len(), 1);
    assert_eq!(mine["events"][0]["action"], "unlink", "{mine}");
    // The AuthSCH `ada` no longer reaches P: it signs up a new person.
    let (_, fresh) = s.sign_in(None, "ada").await;
    assert_ne!(fresh.json()["user"]["id"], p.as_str(), "{}", fresh.body);
}

#[tokio::test]
async fn a_realm_requiring_provider_b_refuses_provider_a_sessions_on_every_path() {
    let s = brokered().await;
    let hub = s.hub.url.clone();
    let (mut bp, done) = s.sign_in(None, "bea").await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let p = done.json()["user"]["id"].as_str().unwrap().to_string();
    let ta = token_of(&done);
    let (back, _) = s.start_link(&mut bp, &ta, "bea").await;
    let linked = bp
        .request(Method::GET, &back, &[("accept", "application/json")], None)
        .await
        .unwrap();
    assert_eq!(linked.status, StatusCode::OK, "{}", linked.body);
    let (_, via_b) = s.sign_in(Some("beta"), "bea").await;
    assert_eq!(via_b.json()["user"]["id"], p.as_str());
    let tb = token_of(&via_b);
    // P is in kir-dev (as a worker's membership report would record it).
    {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&s.db.superuser_url)
            .await
            .unwrap();
        sqlx::query("INSERT INTO realm_members (user_id, realm_id) VALUES ($1::uuid, 'kir-dev')")
            .bind(&p)
            .execute(&mut c)
            .await
            .unwrap();
    }
    let groups = format!("{hub}/api/v1/realms/kir-dev/groups");
    let get = pek_tests::auth_support::get_with_token;

    // The B session goes through (and its realm token is minted and kept for reuse)...
    let (st, v) = get(&groups, &tb).await.unwrap();
    assert_eq!(st, StatusCode::OK, "{v}");
    // ...the same person's A session does not: through the forwarder,
    let (st, v) = get(&groups, &ta).await.unwrap();
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v["error"]["reason"], "provider_not_accepted", "{v}");
    assert_eq!(v["error"]["providers"], serde_json::json!(["beta"]), "{v}");
    // with the existing session cookie,
    let by_cookie = bp.get(&groups).await.unwrap();
    assert_eq!(
        by_cookie.status,
        StatusCode::FORBIDDEN,
        "{}",
        by_cookie.body
    );
    // through the fan-out: "sign in with Beta ID to see this", not a failure,
    let (st, v) = get(&format!("{hub}/api/v1/groups?q=a"), &ta).await.unwrap();
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["partial"], false, "{v}");
    assert_eq!(v["unavailable"], serde_json::json!([]), "{v}");
    assert_eq!(
        v["signInRequired"],
        serde_json::json!([{"realm": "kir-dev", "providers": ["beta"], "providerNames": ["Beta ID"]}]),
        "{v}"
    );
    let (_, v) = get(&format!("{hub}/api/v1/groups?q=a"), &tb).await.unwrap();
    assert!(v.get("signInRequired").is_none(), "{v}");
    // and on the pages, as the same notice with a way in.
    let home = bp.get(&format!("{hub}/")).await.unwrap();
    assert_eq!(home.status, StatusCode::OK, "{}", home.body);
    assert!(
        home.body.contains("sign-in-required") && home.body.contains("/auth/login?provider=beta"),
        "{}",
        home.body
    );
    // The hub's own realm still serves the A session.
    let (st, v) = get(&format!("{hub}/api/v1/realms/hub/groups"), &ta)
        .await
        .unwrap();
    assert_eq!(st, StatusCode::OK, "{v}");

    // The fan-outs that build their own answer list kir-dev the same way rather than
    // leaving it out: the group directory, people search and lookup (Quinn shares kir-dev
    // with P), P's points and Quinn's.
    let quinn = one(
        &s.db,
        "WITH u AS (INSERT INTO users (auth_sch_id) VALUES ('quinn') RETURNING id),
              p AS (INSERT INTO profiles (user_id, first_name, search_folded)
                    SELECT id, 'Quinn', 'quinn' FROM u),
              m AS (INSERT INTO realm_members (user_id, realm_id) SELECT id, 'kir-dev' FROM u)
         SELECT id::text FROM u",
    )
    .await
    .unwrap();
    let expected = serde_json::json!([
        {"realm": "kir-dev", "providers": ["beta"], "providerNames": ["Beta ID"]}
    ]);
    let lookup = |token: &str| {
        reqwest::Client::new()
            .post(format!("{hub}/api/v1/users/lookup"))
            .bearer_auth(token)
            .json(&serde_json::json!({ "ids": [quinn] }))
            .send()
    };
    for path in [
        "/api/v1/directory".to_string(),
        "/api/v1/users?q=quinn".to_string(),
        "/api/v1/me/points".to_string(),
        format!("/api/v1/users/{quinn}/points"),
    ] {
        let (st, v) = get(&format!("{hub}{path}"), &ta).await.unwrap();
        assert_eq!(st, StatusCode::OK, "{path}: {v}");
        assert_eq!(v["signInRequired"], expected, "{path}: {v}");
        assert_eq!(v["partial"], false, "{path}: {v}");
        let (_, v) = get(&format!("{hub}{path}"), &tb).await.unwrap();
        assert!(v.get("signInRequired").is_none(), "{path}: {v}");
    }
    let v: serde_json::Value = lookup(&ta).await.unwrap().json().await.unwrap();
    assert_eq!(v["signInRequired"], expected, "{v}");
    assert_eq!(v["items"][0]["id"], quinn.as_str(), "{v}");
    let v: serde_json::Value = lookup(&tb).await.unwrap().json().await.unwrap();
    assert!(v.get("signInRequired").is_none(), "{v}");
    // The directory page says it too.
    let page = bp.get(&format!("{hub}/groups")).await.unwrap();
    assert!(
        page.body.contains("sign-in-required") && page.body.contains("/auth/login?provider=beta"),
        "{}",
        page.body
    );
}

// ---------------------------------------------------------------------------------------
// Merging two people: a hub administrator merges B into A. B's memberships, roles, points
// and identities move to A in every realm — the hub's own at once, the worker's once it is
// back from being down (the hub's periodic pass finishes it) — B stays as history, and B's
// identities sign in to A.

/// Runs `sql` (several statements, no parameters) on a database as its superuser.
async fn sql(db: &localpg::Database, sql: &str) {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(&db.superuser_url)
        .await
        .unwrap();
    sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
}

/// One row of `query` (a single text column) on a database as its superuser.
async fn one(db: &localpg::Database, query: impl AsRef<str>) -> Option<String> {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(&db.superuser_url)
        .await
        .unwrap();
    sqlx::query_scalar(query.as_ref())
        .fetch_optional(&mut c)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_merge_moves_everything_to_one_person_in_every_realm_and_resumes_a_realm_that_was_down() {
    let mut s = brokered().await;
    let hub = s.hub.url.clone();
    let http = reqwest::Client::new();
    let (_, root) = s.sign_in(None, "root").await;
    let tr = token_of(&root);
    let (mut ba, a_done) = s.sign_in(None, "amy").await;
    let a = a_done.json()["user"]["id"].as_str().unwrap().to_string();
    let ta = token_of(&a_done);
    let (mut bb, b_done) = s.sign_in(None, "bob").await;
    let b = b_done.json()["user"]["id"].as_str().unwrap().to_string();
    let tb = token_of(&b_done);
    // B also signs in through provider B (linked from B's own session).
    let (back, _) = s.start_link(&mut bb, &tb, "bob").await;
    let linked = bb
        .request(Method::GET, &back, &[("accept", "application/json")], None)
        .await
        .unwrap();
    assert_eq!(linked.status, StatusCode::OK, "{}", linked.body);

    // B's and A's rows in the worker realm: both members of one group (B active and its
    // leader, A a newbie), B's past membership of another, a role each (only B accepted
    // it), point requests of both for the same guideline, B's entry award, point history
    // of both for the same group and semester. In the hub realm: B's membership.
    let (g1, g2, ma, mb, mb2) = (
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
    );
    let (pol, sem, col, gl, sb, h1) = (
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
    );
    sql(
        &s.worker_db,
        &format!(
            "INSERT INTO groups (realm_id, id, name, name_folded, created_by, owner_id) VALUES
               ('kir-dev', '{g1}', 'Merge One', 'merge one', '{b}', '{b}'),
               ('kir-dev', '{g2}', 'Merge Two', 'merge two', '{a}', '{a}');
             INSERT INTO group_posts (realm_id, group_id, name) VALUES ('kir-dev', '{g1}', 'scribe');
             INSERT INTO memberships (realm_id, id, group_id, user_id, status, posts) VALUES
               ('kir-dev', '{ma}', '{g1}', '{a}', 'NEWBIE', '{{scribe}}'),
               ('kir-dev', '{mb}', '{g1}', '{b}', 'ACTIVE', '{{leader}}'),
               ('kir-dev', '{mb2}', '{g2}', '{b}', 'FORMER', '{{}}');
             INSERT INTO policies (realm_id, id, name) VALUES ('kir-dev', '{pol}', 'Merge role');
             INSERT INTO policy_assignments (realm_id, user_id, policy_id, accepted_at) VALUES
               ('kir-dev', '{a}', '{pol}', NULL), ('kir-dev', '{b}', '{pol}', now());
             INSERT INTO semesters (realm_id, id, name, starts_on, ends_on)
               VALUES ('kir-dev', '{sem}', '2026/27/1', '2026-09-01', '2027-01-31');
             INSERT INTO guideline_collections (realm_id, id, group_id, semester_id, name, created_by)
               VALUES ('kir-dev', '{col}', '{g1}', '{sem}', 'Work', '{b}');
             INSERT INTO guidelines (realm_id, id, collection_id, group_id, semester_id, title,
                                     category, max_per_member, max_per_guideline, created_by)
               VALUES ('kir-dev', '{gl}', '{col}', '{g1}', '{sem}', 'Coding', 'WORK', 10, 50, '{b}');
             INSERT INTO scoreboards (realm_id, id, group_id, semester_id, created_by)
               VALUES ('kir-dev', '{sb}', '{g1}', '{sem}', '{b}');
             INSERT INTO point_requests (realm_id, scoreboard_id, group_id, semester_id,
                                         membership_id, guideline_id, points, updated_by) VALUES
               ('kir-dev', '{sb}', '{g1}', '{sem}', '{ma}', '{gl}', 5, '{a}'),
               ('kir-dev', '{sb}', '{g1}', '{sem}', '{mb}', '{gl}', 8, '{b}');
             INSERT INTO entry_award_requests (realm_id, scoreboard_id, group_id, semester_id,
                                               membership_id, kind, justification, updated_by)
               VALUES ('kir-dev', '{sb}', '{g1}', '{sem}', '{mb}', 'KB', 'ran the camp', '{b}');
             INSERT INTO point_history (realm_id, semester_id, user_id, group_id, scoreboard_id, points)
               VALUES ('kir-dev', '{sem}', '{a}', '{g1}', '{sb}', 10),
                      ('kir-dev', '{sem}', '{b}', '{g1}', '{sb}', 20);"
        ),
    )
    .await;
    sql(
        &s.db,
        &format!(
            "INSERT INTO groups (realm_id, id, name, name_folded, created_by, owner_id)
               VALUES ('hub', '{h1}', 'Merge Hub', 'merge hub', '{b}', '{b}');
             INSERT INTO memberships (realm_id, group_id, user_id, status)
               VALUES ('hub', '{h1}', '{b}', 'ACTIVE');"
        ),
    )
    .await;

    let merge = |token: &str, into: &str, from: &str| {
        http.post(format!("{hub}/api/v1/users/{into}/merges"))
            .bearer_auth(token)
            .json(&serde_json::json!({ "from": from }))
            .send()
    };
    let answer = |r: reqwest::Response| async move {
        let st = r.status();
        (st, r.json::<serde_json::Value>().await.unwrap())
    };
    // Refusals: not a hub administrator; a person into themselves; unknown people.
    let (st, v) = answer(merge(&ta, &a, &b).await.unwrap()).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    let (st, v) = answer(merge(&tr, &a, &a).await.unwrap()).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let nobody = uuid::Uuid::new_v4().to_string();
    let (st, v) = answer(merge(&tr, &a, &nobody).await.unwrap()).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    let (st, v) = answer(merge(&tr, &nobody, &b).await.unwrap()).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");

    // The worker is down: the hub realm's part is done, the worker's waits.
    let worker_port = s.worker.port;
    s.worker.kill();
    let (st, v) = answer(merge(&tr, &a, &b).await.unwrap()).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    assert_eq!(
        (v["from"].as_str(), v["into"].as_str()),
        (Some(b.as_str()), Some(a.as_str()))
    );
    let realm = |v: &serde_json::Value, id: &str| {
        v["realms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["realm"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no {id} in {v}"))
    };
    assert!(realm(&v, "hub")["doneAt"].is_string(), "{v}");
    assert_eq!(realm(&v, "hub")["moved"]["memberships"], 1, "{v}");
    assert!(realm(&v, "kir-dev")["doneAt"].is_null(), "{v}");
    assert!(realm(&v, "kir-dev")["lastError"].is_string(), "{v}");
    assert!(v["completedAt"].is_null(), "{v}");
    // A cannot be merged on while B's rows are still on their way to A.
    let root_id = root.json()["user"]["id"].as_str().unwrap().to_string();
    let (st, v) = answer(merge(&tr, &root_id, &a).await.unwrap()).await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["reason"], "merge_pending", "{v}");
    assert_eq!(
        one(
            &s.db,
            &format!("SELECT user_id::text FROM memberships WHERE group_id = '{h1}'")
        )
        .await
        .as_deref(),
        Some(a.as_str())
    );

    // B's identities sign in to A — the AuthSCH one (A has their own, so it stays on B's
    // record and leads to A) and provider B's (moved to A) — and B's sessions are over.
    let (_, via_b) = s.sign_in(None, "bob").await;
    assert_eq!(via_b.status, StatusCode::OK, "{}", via_b.body);
    assert_eq!(via_b.json()["user"]["id"], a.as_str(), "{}", via_b.body);
    let (_, via_beta) = s.sign_in(Some("beta"), "bob").await;
    assert_eq!(
        via_beta.json()["user"]["id"],
        a.as_str(),
        "{}",
        via_beta.body
    );
    let (st, _) = pek_tests::auth_support::get_with_token(&format!("{hub}/api/v1/me"), &tb)
        .await
        .unwrap();
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // B is kept as history, marked merged into A.
    assert_eq!(
        one(
            &s.db,
            &format!("SELECT merged_into::text FROM users WHERE id = '{b}'")
        )
        .await
        .as_deref(),
        Some(a.as_str())
    );

    // The worker is back: the hub's next pass finishes its part.
    s.worker = start_worker(&s.worker_db, &hub, &s.worker_token_file, Some(worker_port)).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let merges = loop {
        let (st, v) =
            pek_tests::auth_support::get_with_token(&format!("{hub}/api/v1/users/{a}/merges"), &tr)
                .await
                .unwrap();
        assert_eq!(st, StatusCode::OK, "{v}");
        if v[0]["completedAt"].is_string() {
            break v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the merge never finished: {v}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(
        realm(&merges[0], "kir-dev")["moved"]["membershipsJoined"],
        1,
        "{merges}"
    );
    let w = |q: String| one(&s.worker_db, q);
    // Both in the same group: A's membership stays, active, with both posts; B's is gone.
    assert_eq!(
        w(format!(
            "SELECT status || ' ' || array_to_string(posts, ',') FROM memberships WHERE id = '{ma}'"
        ))
        .await
        .as_deref(),
        Some("ACTIVE leader,scribe")
    );
    assert_eq!(
        w(format!(
            "SELECT id::text FROM memberships WHERE id = '{mb}'"
        ))
        .await,
        None
    );
    assert_eq!(
        w(format!(
            "SELECT user_id::text FROM memberships WHERE id = '{mb2}'"
        ))
        .await
        .as_deref(),
        Some(a.as_str())
    );
    // Points: the larger request stays, B's entry award moved, the larger history figure.
    assert_eq!(
        w(
            "SELECT string_agg(membership_id::text || ':' || points, ',') FROM point_requests"
                .into()
        )
        .await
        .as_deref(),
        Some(format!("{ma}:8").as_str())
    );
    assert_eq!(
        w("SELECT membership_id::text FROM entry_award_requests".into())
            .await
            .as_deref(),
        Some(ma.to_string().as_str())
    );
    assert_eq!(
        w("SELECT string_agg(user_id::text || ':' || points, ',') FROM point_history".into())
            .await
            .as_deref(),
        Some(format!("{a}:20").as_str())
    );
    // One role, A's, accepted (B accepted it); the group B created is A's.
    assert_eq!(
        w(format!(
            "SELECT string_agg(user_id::text || ':' || (accepted_at IS NOT NULL), ',')
               FROM policy_assignments WHERE policy_id = '{pol}'"
        ))
        .await
        .as_deref(),
        Some(format!("{a}:true").as_str())
    );
    assert_eq!(
        w(format!(
            "SELECT owner_id::text FROM groups WHERE id = '{g1}'"
        ))
        .await
        .as_deref(),
        Some(a.as_str())
    );
    assert_eq!(
        w(format!(
            "SELECT count(*)::text FROM memberships WHERE user_id = '{b}'"
        ))
        .await
        .as_deref(),
        Some("0")
    );

    // Merging B again is refused; the record is on A's page (who, when, which identity).
    let (st, v) = answer(merge(&tr, &a, &b).await.unwrap()).await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["reason"], "already_merged", "{v}");
    let mine = s.identities(&ta).await;
    assert_eq!(mine["merges"][0]["from"], b.as_str(), "{mine}");
    assert_eq!(
        mine["merges"][0]["actor"],
        root.json()["user"]["id"],
        "{mine}"
    );
    assert!(
        mine["identities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["provider"] == "beta" && i["subject"] == "bob"),
        "{mine}"
    );
    // B's AuthSCH id stayed on B's record (A has their own), yet signs in as A: A's
    // identities list it, and A may unlink it like any other.
    let b_authsch = mine["identities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["issuer"] == "authsch" && i["subject"] == "bob")
        .unwrap_or_else(|| panic!("B's AuthSCH id is not among A's identities: {mine}"))
        .clone();
    assert_eq!(b_authsch["key"], format!("authsch:{b}"), "{mine}");
    assert!(
        mine["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "merge" && e["subject"] == "bob"),
        "{mine}"
    );
    let page = ba.get(&format!("{hub}/people/{a}")).await.unwrap();
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("class=\"merges\"") && page.body.contains(&b),
        "{}",
        page.body
    );
    // A unlinks B's AuthSCH id: it no longer leads to A (nor is it listed).
    let unlinked = reqwest::Client::new()
        .delete(format!(
            "{hub}/api/v1/me/identities/{}",
            b_authsch["key"].as_str().unwrap()
        ))
        .bearer_auth(&ta)
        .send()
        .await
        .unwrap();
    assert_eq!(unlinked.status(), StatusCode::NO_CONTENT);
    let mine = s.identities(&ta).await;
    assert!(
        !mine["identities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["issuer"] == "authsch" && i["subject"] == "bob"),
        "{mine}"
    );
    assert_eq!(
        one(
            &s.db,
            &format!("SELECT coalesce(auth_sch_id, '-') FROM users WHERE id = '{b}'")
        )
        .await
        .as_deref(),
        Some("-")
    );
}

/// The provider's own pages in the browser: its login form (any password), then its
/// consent form, until it sends the browser back to the hub.
async fn provider_pages(c: &fantoccini::Client, hub: &str, login: &str) {
    use fantoccini::Locator;
    let deadline = std::time::Instant::now() + pek_tests::browser::WAIT;
    let mut done_login = false;
    let mut left_hub = false;
    loop {
        let url = c.current_url().await.expect("url").to_string();
        // First away from the hub (the click that sends the browser on may not have
        // navigated yet), then back to it.
        let at_hub = url.starts_with(hub);
        if !left_hub {
            if at_hub {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the browser never went to the provider (at {url})"
                );
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
            left_hub = true;
        } else if at_hub {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the provider never sent the browser back to the hub (at {url})"
        );
        if !done_login {
            if let Ok(field) = c.find(Locator::Css("input[name=login]")).await {
                field.send_keys(login).await.expect("login name");
                c.find(Locator::Css("input[name=password]"))
                    .await
                    .expect("password field")
                    .send_keys("any password")
                    .await
                    .expect("password");
                c.find(Locator::Css("button[type=submit]"))
                    .await
                    .expect("sign-in button")
                    .click()
                    .await
                    .expect("submit");
                done_login = true;
                continue;
            }
        } else if c
            .find(Locator::Css("input[name=prompt][value=consent]"))
            .await
            .is_ok()
        {
            if let Ok(button) = c.find(Locator::Css("button[type=submit]")).await {
                let _ = button.click().await;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Pages only: a person signs in through provider A on the sign-in page, opens her own
/// page, links provider B with its button (B's login and consent), and is back on her page
/// with both ways to sign in and the link in her record.
#[tokio::test]
async fn a_person_links_a_second_provider_from_her_page_in_the_browser() {
    use pek_tests::browser as web;
    if !web::browser_ready() {
        return;
    }
    let env = brokered().await;
    let driver = web::start_browser()
        .await
        .expect("chromium via chromedriver");
    let client = driver.client.clone().expect("client");
    let b = web::Browser {
        c: &client,
        hub: env.hub.url.clone(),
        axe: web::axe_source().expect("axe-core"),
    };
    b.open("/sign-in").await;
    client
        .find(fantoccini::Locator::LinkText("Bejelentkezés AuthSCH-val"))
        .await
        .expect("provider A on the sign-in page")
        .click()
        .await
        .expect("click");
    provider_pages(&client, &env.hub.url, "lilla").await;
    b.wait_path("/").await;
    client
        .find(fantoccini::Locator::LinkText("Adatlapom"))
        .await
        .expect("a link to her page")
        .click()
        .await
        .expect("click");
    let before = b.wait_text("main", "Bejelentkezési módok").await;
    assert!(before.contains("AuthSCH"), "{before}");
    let own_page = b.path().await;
    assert!(own_page.starts_with("/people/"), "{own_page}");

    b.press(None, "Hozzákapcsolás: Beta ID").await;
    provider_pages(&client, &env.hub.url, "lilla-beta").await;
    b.wait_path(&own_page).await;
    let after = b.wait_text("main", "hozzákapcsolva").await;
    assert!(after.contains("Beta ID"), "{after}");
    let buttons = client
        .find_all(fantoccini::Locator::Css("main button"))
        .await
        .expect("buttons");
    for button in buttons {
        let text = button.text().await.unwrap_or_default();
        assert!(!text.contains("Hozzákapcsolás"), "still offered: {text}");
    }
    b.check_page("identities-linked").await;
}
