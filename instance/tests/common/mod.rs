//! Test harness: a hub (or worker) app on its own fresh database in the per-process
//! throwaway PostgreSQL cluster, called in-process through the real router.
#![allow(dead_code)]

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use uuid::Uuid;

use localpg::LocalPostgres;
use pek::auth::Signer;
use pek::config::{DbArgs, Mode, ServeArgs};
use pek::db::Db;
use pek::profile::{self, ProfileInput};

pub struct TestApp {
    pub router: Router,
    pub db: Db,
    pub signer: Signer,
    pub database: localpg::Database,
    /// The audience this instance accepts: the hub's, or a worker's realm's.
    pub audience: String,
}

pub fn args(
    database: &localpg::Database,
    mode: Mode,
    realm: Option<&str>,
    key: std::path::PathBuf,
) -> ServeArgs {
    ServeArgs {
        realm_id: realm.map(String::from),
        listen: "127.0.0.1:0".parse().expect("addr"),
        jwt_public_key_file: Some(key),
        db_max_connections: 5,
        ..ServeArgs::defaults(DbArgs {
            database_url: database.app_url.clone(),
            migration_database_url: Some(database.owner_url.clone()),
            mode,
        })
    }
}

pub async fn app(mode: Mode, realm: Option<&str>) -> TestApp {
    let pg = LocalPostgres::shared().expect("start postgres");
    let database = pek::db::migrated_copy(pg, mode)
        .await
        .expect("fresh database");
    let signer = Signer::generate("pek-hub", "pek").expect("key");
    let key = std::env::temp_dir().join(format!("pek-test-{}.pem", Uuid::new_v4()));
    std::fs::write(&key, signer.public_pem()).expect("write key");
    let (_state, router) = pek::app::build(&args(&database, mode, realm, key))
        .await
        .expect("build app");
    let db = Db::connect(&database.app_url, 5).await.expect("connect");
    let audience = match realm {
        Some(r) if mode == Mode::Worker => pek::auth::realm_audience("pek", r),
        _ => "pek".to_string(),
    };
    TestApp {
        router,
        db,
        signer,
        database,
        audience,
    }
}

pub async fn hub() -> TestApp {
    app(Mode::Hub, None).await
}

impl TestApp {
    /// A user with a profile (hub only).
    pub async fn person(&self, sub: &str, first: &str, last: &str, phone: &str) -> Uuid {
        let mut g = self.db.global().await.expect("tx");
        let id = profile::upsert_user(&mut g, sub).await.expect("user");
        profile::put_profile(
            &mut g,
            id,
            &ProfileInput {
                first_name: Some(first.parse().expect("valid text")),
                last_name: Some(last.parse().expect("valid text")),
                nickname: Some(sub.parse().expect("valid text")),
                cell_phone: Some(phone.parse().expect("valid text")),
                ..Default::default()
            },
        )
        .await
        .expect("profile");
        g.commit().await.expect("commit");
        id
    }

    pub fn token(&self, user: Uuid) -> String {
        self.signer
            .issue_to(user, &self.audience, 600, None)
            .expect("token")
    }

    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let raw = body.map(|b| b.to_string());
        self.call_raw(method, uri, token, raw.as_deref()).await
    }

    pub async fn call_raw(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .expect("request");
        let resp = self.router.clone().oneshot(req).await.expect("response");
        let status = resp.status();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, value)
    }

    pub async fn get(&self, uri: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, uri, Some(token), None).await
    }

    pub async fn post(&self, uri: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, uri, Some(token), Some(body)).await
    }

    /// Creates a realm hosted by the hub with `god` as its GOD.
    pub async fn realm(&self, id: &str, god: Uuid) {
        let (s, b) = self
            .post(
                "/api/v1/realms",
                &self.token(god),
                serde_json::json!({"id": id, "displayName": id}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }

    /// `by` assigns `policy` to `user` in `realm`; when that is an offer (the user is not
    /// yet a person of the realm), the user accepts it. Returns the assignment.
    pub async fn assign(&self, realm: &str, by: &str, user: Uuid, policy: &str) -> Value {
        let (s, a) = self
            .post(
                &format!("/api/v1/realms/{realm}/assignments"),
                by,
                serde_json::json!({"userId": user, "policyId": policy}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "assigning {policy} to {user}: {a}");
        if !a["acceptedAt"].is_null() {
            return a;
        }
        let (s, a) = self
            .call(
                Method::POST,
                &format!("/api/v1/realms/{realm}/me/policy-offers/{policy}/accept"),
                Some(&self.token(user)),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "accepting {policy}: {a}");
        a
    }

    /// Makes `god` the hub realm's GOD (bootstrap, as an operator would).
    pub async fn bootstrap_god(&self, god: Uuid) {
        let hub = pek::realm::RealmId::hub();
        pek::realm::ensure_local(&self.db, &hub, "Hub", Some(god))
            .await
            .expect("god");
    }

    pub async fn group(&self, realm: &str, token: &str, name: &str, parent: Option<&str>) -> Value {
        let (s, b) = self
            .post(
                &format!("/api/v1/realms/{realm}/groups"),
                token,
                serde_json::json!({"name": name, "parentId": parent}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        b
    }

    /// `user` joins `group` with consent: invited by the holder of `inviter` (editMembers),
    /// the invitation accepted by `user`, then moved to `status` (NEWBIE, ACTIVE, FORMER
    /// or ARCHIVED). Returns the membership.
    pub async fn join(
        &self,
        realm: &str,
        group: &str,
        inviter: &str,
        user: Uuid,
        posts: &[&str],
        status: &str,
    ) -> Value {
        let (s, m) = self
            .post(
                &format!("/api/v1/realms/{realm}/groups/{group}/members"),
                inviter,
                serde_json::json!({"userId": user, "posts": posts}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "inviting {user}: {m}");
        assert_eq!(m["status"], "INVITED", "{m}");
        let mid = id(&m);
        let (s, m) = self
            .post(
                &format!("/api/v1/realms/{realm}/memberships/{mid}/accept"),
                &self.token(user),
                Value::Null,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "accepting: {m}");
        let path: &[&str] = match status {
            "NEWBIE" => &[],
            "ACTIVE" => &["ACTIVE"],
            "FORMER" => &["ACTIVE", "FORMER"],
            "ARCHIVED" => &["ACTIVE", "FORMER", "ARCHIVED"],
            other => panic!("join: unexpected status {other}"),
        };
        let mut m = m;
        for step in path {
            let (s, b) = self
                .call(
                    Method::PATCH,
                    &format!("/api/v1/realms/{realm}/memberships/{mid}"),
                    Some(inviter),
                    Some(serde_json::json!({"status": step})),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "to {step}: {b}");
            m = b;
        }
        m
    }

    /// Rows of a table as the superuser sees them (bypasses RLS), for before/after checks.
    pub async fn snapshot(&self, table: &str) -> Vec<String> {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&self.database.superuser_url)
            .await
            .expect("su");
        let rows: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT row_to_json(t)::text FROM {table} t ORDER BY 1"
        ))
        .fetch_all(&mut c)
        .await
        .expect("snapshot");
        rows
    }
}

/// Hub tables that name a realm but are global by design: the federation table (which
/// person is in which realm, DESIGN §5) and the hub's record of applied worker reports.
pub const GLOBAL_TABLES_WITH_REALM_ID: [&str; 4] = [
    "realm_members",
    "realm_pending",
    "federation_applied",
    // The hub's record of each realm's part of a merge of two people.
    "person_merge_realms",
];

/// Row-level security of every table with a `realm_id` column, from the catalog:
/// (table, RLS enabled, RLS forced, policies keyed on the transaction's realm).
pub async fn realm_id_tables(url: &str) -> Vec<(String, bool, bool, i64)> {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(url).await.expect("connect");
    sqlx::query_as(
        "SELECT c.relname::text, c.relrowsecurity, c.relforcerowsecurity,
                count(p.oid) FILTER (
                    WHERE pg_get_expr(p.polqual, p.polrelid) LIKE '%pek.realm_id%'
                      AND pg_get_expr(p.polwithcheck, p.polrelid) LIKE '%pek.realm_id%')
           FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
           JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'realm_id'
                              AND NOT a.attisdropped
           LEFT JOIN pg_policy p ON p.polrelid = c.oid
          WHERE c.relkind IN ('r', 'p')
          GROUP BY c.relname, c.relrowsecurity, c.relforcerowsecurity
          ORDER BY c.relname",
    )
    .fetch_all(&mut c)
    .await
    .expect("catalog")
}

/// The realm-scoped tables (every table with a `realm_id` column but the global ones).
pub async fn realm_tables(url: &str) -> Vec<String> {
    realm_id_tables(url)
        .await
        .into_iter()
        .map(|(t, ..)| t)
        .filter(|t| !GLOBAL_TABLES_WITH_REALM_ID.contains(&t.as_str()))
        .collect()
}

pub fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}
