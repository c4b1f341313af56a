//! Provisioning against a real Postgres (throwaway cluster): idempotent, converges after a crash
//! between any two steps, never replaces a working password, Delete drops, Retain keeps.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use localpg::LocalPostgres;
use pek_operator::db::{AdminTarget, Change, DbCredentials, Owner, Provisioner, RealmDbNames};
use sqlx::{Connection, PgConnection};

fn pg() -> &'static LocalPostgres {
    LocalPostgres::per_process().expect("throwaway Postgres")
}

fn target() -> AdminTarget {
    let secret = Secret {
        data: Some(BTreeMap::from([(
            "uri".to_string(),
            ByteString(pg().superuser_url("postgres").into_bytes()),
        )])),
        ..Default::default()
    };
    AdminTarget::from_secret(&secret).expect("admin target")
}

async fn admin() -> PgConnection {
    PgConnection::connect(&pg().superuser_url("postgres"))
        .await
        .expect("admin connection")
}

async fn exists(kind: &str, name: &str) -> bool {
    let sql = match kind {
        "db" => "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
        _ => "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)",
    };
    sqlx::query_scalar(sql)
        .bind(name)
        .fetch_one(&mut admin().await)
        .await
        .expect("query")
}

/// The Realm the provisioning is done for (recorded on the database and roles).
fn me() -> Owner {
    owner("uid-me")
}

fn owner(uid: &str) -> Owner {
    Owner {
        uid: uid.into(),
        namespace: "realms".into(),
        name: format!("realm-{uid}"),
    }
}

fn creds(id: &str) -> DbCredentials {
    DbCredentials::generate(&target(), RealmDbNames::for_realm(id, None))
}

#[tokio::test]
async fn provisioning_is_idempotent_and_gives_the_two_role_scheme() {
    let c = creds("pv-idem");
    let p = Provisioner::default();
    let first = p.ensure(&c, &me(), &[]).await.expect("first run");
    assert_eq!(
        first,
        [
            Change::RoleCreated("pek_pv_idem_owner".into()),
            Change::RoleCreated("pek_pv_idem_app".into()),
            Change::DatabaseCreated("pek_pv_idem".into()),
            Change::ConnectRestricted("pek_pv_idem".into()),
        ]
    );
    assert!(
        p.ensure(&c, &me(), &[])
            .await
            .expect("second run")
            .is_empty(),
        "second run changes nothing"
    );
    // A fresh operator process (no cached password checks) changes nothing either.
    assert!(Provisioner::default()
        .ensure(&c, &me(), &[])
        .await
        .expect("third run")
        .is_empty());

    // Owner owns the database and can create tables; the app role connects without owning,
    // cannot bypass RLS, and is not a superuser.
    let mut owner = PgConnection::connect(&c.owner_url())
        .await
        .expect("owner logs in");
    sqlx::query("CREATE TABLE t (id int)")
        .execute(&mut owner)
        .await
        .expect("owner creates");
    let mut app = PgConnection::connect(&c.app_url())
        .await
        .expect("app logs in");
    let (dbowner, bypass, sup): (String, bool, bool) = sqlx::query_as(
        "SELECT pg_get_userbyid(d.datdba)::text, r.rolbypassrls, r.rolsuper FROM pg_database d, pg_roles r \
         WHERE d.datname = current_database() AND r.rolname = current_user",
    )
    .fetch_one(&mut app)
    .await
    .expect("query");
    assert_eq!(
        (dbowner.as_str(), bypass, sup),
        ("pek_pv_idem_owner", false, false)
    );
    // Another realm's app role may not even connect.
    let other = creds("pv-idem-other");
    p.ensure(&other, &me(), &[]).await.expect("other realm");
    let intruder = c.target.url_for(
        &other.names.app_role,
        &other.app_password,
        &c.names.database,
    );
    let err = PgConnection::connect(&intruder)
        .await
        .expect_err("cross-realm connect refused");
    assert!(err.to_string().contains("permission denied"), "{err}");
}

#[tokio::test]
async fn converges_after_a_crash_between_roles_and_database() {
    let c = creds("pv-crash");
    // The interrupted run got as far as the owner role.
    let mut a = admin().await;
    let stmt = format!(
        "CREATE ROLE pek_pv_crash_owner LOGIN PASSWORD '{}'",
        c.owner_password
    );
    sqlx::raw_sql(&stmt)
        .execute(&mut a)
        .await
        .expect("partial run");
    let changes = Provisioner::default()
        .ensure(&c, &me(), &[])
        .await
        .expect("next run");
    assert_eq!(
        changes,
        [
            Change::RoleCreated("pek_pv_crash_app".into()),
            Change::DatabaseCreated("pek_pv_crash".into()),
            Change::ConnectRestricted("pek_pv_crash".into()),
        ]
    );
    PgConnection::connect(&c.app_url())
        .await
        .expect("app logs in");

    // Crash after CREATE DATABASE but before the CONNECT restriction.
    let d = creds("pv-crash2");
    sqlx::raw_sql(&format!(
        "CREATE ROLE pek_pv_crash2_owner LOGIN PASSWORD '{}'",
        d.owner_password
    ))
    .execute(&mut a)
    .await
    .expect("role");
    sqlx::raw_sql(&format!(
        "CREATE ROLE pek_pv_crash2_app LOGIN PASSWORD '{}'",
        d.app_password
    ))
    .execute(&mut a)
    .await
    .expect("role");
    sqlx::raw_sql("CREATE DATABASE pek_pv_crash2 OWNER pek_pv_crash2_owner")
        .execute(&mut a)
        .await
        .expect("db");
    let changes = Provisioner::default()
        .ensure(&d, &me(), &[])
        .await
        .expect("next run");
    assert_eq!(changes, [Change::ConnectRestricted("pek_pv_crash2".into())]);
    PgConnection::connect(&d.app_url())
        .await
        .expect("app logs in");
}

#[tokio::test]
async fn a_working_password_is_kept_and_a_lost_one_is_reset() {
    let c = creds("pv-pass");
    Provisioner::default()
        .ensure(&c, &me(), &[])
        .await
        .expect("provision");
    // Same stored credentials: nothing is touched.
    assert!(Provisioner::default()
        .ensure(&c, &me(), &[])
        .await
        .expect("again")
        .is_empty());
    PgConnection::connect(&c.app_url())
        .await
        .expect("old password still works");

    // The Secret was lost (Retain, then the Realm re-created): new passwords replace the
    // unknown ones so the worker can log in; the data stays.
    let mut owner = PgConnection::connect(&c.owner_url()).await.expect("owner");
    sqlx::query("CREATE TABLE kept (v text)")
        .execute(&mut owner)
        .await
        .expect("table");
    sqlx::query("INSERT INTO kept VALUES ('data')")
        .execute(&mut owner)
        .await
        .expect("row");
    let fresh = DbCredentials::generate(&target(), c.names.clone());
    let changes = Provisioner::default()
        .ensure(&fresh, &me(), &[])
        .await
        .expect("re-provision");
    assert_eq!(
        changes,
        [
            Change::PasswordReset("pek_pv_pass_owner".into()),
            Change::PasswordReset("pek_pv_pass_app".into())
        ]
    );
    let mut owner = PgConnection::connect(&fresh.owner_url())
        .await
        .expect("new owner password");
    let v: String = sqlx::query_scalar("SELECT v FROM kept")
        .fetch_one(&mut owner)
        .await
        .expect("data kept");
    assert_eq!(v, "data");
    assert!(
        PgConnection::connect(&c.app_url()).await.is_err(),
        "old password no longer works"
    );
}

#[tokio::test]
async fn delete_drops_and_retain_keeps() {
    let keep = creds("pv-retain");
    let drop = creds("pv-drop");
    let p = Provisioner::default();
    p.ensure(&keep, &me(), &[]).await.expect("provision");
    p.ensure(&drop, &me(), &[]).await.expect("provision");
    let _session = PgConnection::connect(&drop.app_url())
        .await
        .expect("open session");

    // Retain is "do nothing": only the Delete realm is dropped.
    let changes = p
        .drop_all(&target(), &drop.names, &me())
        .await
        .expect("drop");
    assert_eq!(
        changes,
        [
            Change::DatabaseDropped("pek_pv_drop".into()),
            Change::RoleDropped("pek_pv_drop_app".into()),
            Change::RoleDropped("pek_pv_drop_owner".into()),
        ]
    );
    assert!(!exists("db", "pek_pv_drop").await);
    assert!(!exists("role", "pek_pv_drop_app").await);
    assert!(!exists("role", "pek_pv_drop_owner").await);
    assert!(
        p.drop_all(&target(), &drop.names, &me())
            .await
            .expect("again")
            .is_empty(),
        "dropping twice is fine"
    );
    assert!(exists("db", "pek_pv_retain").await);
    assert!(exists("role", "pek_pv_retain_app").await);
    PgConnection::connect(&keep.app_url())
        .await
        .expect("retained realm still works");
}

async fn comment(kind: &str, name: &str) -> Option<String> {
    let sql = match kind {
        "db" => "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
        _ => "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = $1",
    };
    sqlx::query_scalar(sql)
        .bind(name)
        .fetch_one(&mut admin().await)
        .await
        .expect("query")
}

#[tokio::test]
async fn ownership_is_recorded_and_another_realm_is_refused() {
    let first = creds("pv-owned");
    let p = Provisioner::default();
    p.ensure(&first, &owner("uid-a"), &[])
        .await
        .expect("first Realm");
    let recorded = Owner::parse(&comment("db", "pek_pv_owned").await.expect("comment"));
    assert_eq!(recorded, Some(owner("uid-a")));
    for role in ["pek_pv_owned_owner", "pek_pv_owned_app"] {
        assert_eq!(
            comment("role", role)
                .await
                .as_deref()
                .and_then(Owner::parse),
            Some(owner("uid-a")),
            "{role}"
        );
    }
    // A second Realm with the same database name (new passwords in its own Secret) is refused
    // and changes nothing: the first Realm's passwords still work.
    let second = creds("pv-owned");
    let err = p
        .ensure(&second, &owner("uid-b"), &[])
        .await
        .expect_err("refused");
    assert!(matches!(err, pek_operator::Error::Conflict(_)), "{err}");
    assert!(err.to_string().contains("realms/realm-uid-a"), "{err}");
    PgConnection::connect(&first.app_url())
        .await
        .expect("the owner's app password still works");
    PgConnection::connect(&first.owner_url())
        .await
        .expect("the owner's owner password still works");
    // Nor may it drop what the first Realm owns.
    let err = p
        .drop_all(&target(), &second.names, &owner("uid-b"))
        .await
        .expect_err("not dropped");
    assert!(matches!(err, pek_operator::Error::Conflict(_)), "{err}");
    assert!(exists("db", "pek_pv_owned").await);
    assert_eq!(
        p.other_owners(&target(), &second.names, &owner("uid-b"))
            .await
            .expect("owners"),
        [owner("uid-a")]
    );
    // Once the first Realm is gone (deleted with Retain), a new one takes the database over.
    let changes = p
        .ensure(&second, &owner("uid-b"), &["uid-a".to_string()])
        .await
        .expect("take-over");
    assert!(
        changes
            .iter()
            .all(|c| matches!(c, Change::PasswordReset(_))),
        "{changes:?}"
    );
    assert_eq!(
        comment("db", "pek_pv_owned")
            .await
            .as_deref()
            .and_then(Owner::parse),
        Some(owner("uid-b"))
    );
    PgConnection::connect(&second.app_url())
        .await
        .expect("the new owner's password works");
    p.drop_all(&target(), &second.names, &owner("uid-b"))
        .await
        .expect("the owner drops it");
    assert!(!exists("db", "pek_pv_owned").await);
}

/// More database steps at once than the pool has connections queue for a connection instead
/// of failing: twelve provisionings share one connection whose acquire timeout (200 ms) is far
/// shorter than the queue, and all succeed.
#[tokio::test]
async fn many_reconciles_sharing_a_tiny_pool_queue_instead_of_failing() {
    let p = Provisioner::new(
        1,
        std::time::Duration::from_millis(200),
        pek_operator::metrics::Metrics::default(),
    );
    let all: Vec<DbCredentials> = (0..12).map(|i| creds(&format!("pv-queue-{i}"))).collect();
    let owner = me();
    let results = futures::future::join_all(all.iter().map(|c| p.ensure(c, &owner, &[]))).await;
    for (c, r) in all.iter().zip(&results) {
        assert!(
            r.is_ok(),
            "{} failed instead of waiting its turn: {r:?}",
            c.names.database
        );
    }
    for c in &all {
        p.drop_all(&target(), &c.names, &me()).await.expect("drop");
    }
}

/// Production admin credentials are usually a role with CREATEDB and CREATEROLE, not a
/// superuser. With one: provisioning (roles, database, CONNECT restriction, the ownership
/// comments), a second run, a password reset, refusing a second Realm, and dropping the
/// database while the worker is connected.
#[tokio::test]
async fn a_createdb_createrole_admin_that_is_not_a_superuser_provisions_and_drops() {
    let mut su = admin().await;
    for stmt in [
        "DROP ROLE IF EXISTS pv_limited_admin",
        "CREATE ROLE pv_limited_admin LOGIN CREATEDB CREATEROLE NOSUPERUSER PASSWORD 'limited-admin-pw'",
    ] {
        sqlx::query(stmt).execute(&mut su).await.expect(stmt);
    }
    let url = {
        let mut u = url::Url::parse(&pg().superuser_url("postgres")).expect("url");
        u.set_username("pv_limited_admin").expect("user");
        u.set_password(Some("limited-admin-pw")).expect("password");
        u.to_string()
    };
    let limited = AdminTarget::from_secret(&Secret {
        data: Some(BTreeMap::from([(
            "uri".to_string(),
            ByteString(url.into_bytes()),
        )])),
        ..Default::default()
    })
    .expect("admin target");
    let names = RealmDbNames::for_realm("pv-limited", None);
    let first = DbCredentials::generate(&limited, names.clone());
    let p = Provisioner::default();
    let changes = p
        .ensure(&first, &owner("uid-a"), &[])
        .await
        .expect("provisioned by a non-superuser admin");
    assert!(
        changes.contains(&Change::DatabaseCreated("pek_pv_limited".into())),
        "{changes:?}"
    );
    assert_eq!(
        comment("db", "pek_pv_limited")
            .await
            .as_deref()
            .and_then(Owner::parse),
        Some(owner("uid-a"))
    );
    for role in ["pek_pv_limited_owner", "pek_pv_limited_app"] {
        assert_eq!(
            comment("role", role)
                .await
                .as_deref()
                .and_then(Owner::parse),
            Some(owner("uid-a")),
            "{role}"
        );
    }
    let mut worker = PgConnection::connect(&first.app_url())
        .await
        .expect("the app role logs in");
    PgConnection::connect(&first.owner_url())
        .await
        .expect("the owner role logs in");
    assert!(p
        .ensure(&first, &owner("uid-a"), &[])
        .await
        .expect("second run")
        .is_empty());
    // A lost password is put back (a fresh Provisioner has verified nothing yet).
    let lost = DbCredentials::generate(&limited, names.clone());
    let changes = Provisioner::default()
        .ensure(&lost, &owner("uid-a"), &[])
        .await
        .expect("password reset");
    assert_eq!(changes.len(), 2, "{changes:?}");
    // A second Realm is refused.
    let err = p
        .ensure(&first, &owner("uid-b"), &[])
        .await
        .expect_err("refused");
    assert!(matches!(err, pek_operator::Error::Conflict(_)), "{err}");
    // Dropped by its owner, although the worker is still connected.
    sqlx::query("SELECT 1")
        .execute(&mut worker)
        .await
        .expect("worker connected");
    let changes = p
        .drop_all(&limited, &names, &owner("uid-a"))
        .await
        .expect("dropped by a non-superuser admin");
    assert_eq!(changes.len(), 3, "{changes:?}");
    assert!(!exists("db", "pek_pv_limited").await);
    assert!(!exists("role", "pek_pv_limited_app").await);
    sqlx::query("DROP ROLE pv_limited_admin")
        .execute(&mut su)
        .await
        .expect("drop the admin role");
}

/// A scheduled backup runs as the realm's owner, which the forced row-level security binds:
/// with RLS on and `pek.realm_id` set it dumps exactly the realm's rows (no role that bypasses
/// RLS). A restore runs as the (other) realm's owner into its empty database, in one
/// transaction, and never over tables; a backup prunes only its own stem's old files.
#[tokio::test]
async fn backups_as_the_owner_restore_as_the_owner_exactly_the_realm() {
    let src = creds("pv-bk");
    let p = Provisioner::default();
    p.ensure(&src, &me(), &[]).await.expect("source database");
    let mut owner = PgConnection::connect(&src.owner_url())
        .await
        .expect("owner connection");
    sqlx::raw_sql(
        "CREATE TABLE realms (id text PRIMARY KEY);
         CREATE TABLE _sqlx_migrations (version bigint PRIMARY KEY, description text NOT NULL,
             installed_on timestamptz NOT NULL DEFAULT now(), success boolean NOT NULL,
             checksum bytea NOT NULL, execution_time bigint NOT NULL);
         CREATE TABLE groups (realm_id text NOT NULL REFERENCES realms (id), name text NOT NULL);
         ALTER TABLE groups ENABLE ROW LEVEL SECURITY;
         ALTER TABLE groups FORCE ROW LEVEL SECURITY;
         CREATE POLICY realm_isolation ON groups
             USING (realm_id = current_setting('pek.realm_id', true))
             WITH CHECK (realm_id = current_setting('pek.realm_id', true));
         INSERT INTO realms VALUES ('hub'), ('pv-bk');
         INSERT INTO _sqlx_migrations VALUES (20261123000001, 'realm core', now(), true, '\\x00', 1);
         SELECT set_config('pek.realm_id', 'pv-bk', false);
         INSERT INTO groups VALUES ('pv-bk', 'Kör'), ('pv-bk', 'Projekt');
         SELECT set_config('pek.realm_id', 'hub', false);
         INSERT INTO groups VALUES ('hub', 'Hub group');",
    )
    .execute(&mut owner)
    .await
    .expect("a realm schema with forced RLS");
    let _ = owner.close().await;

    let bindir = localpg::find_bindir().expect("Postgres binaries");
    let dir = std::env::temp_dir().join(format!("pek-op-backup-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let old = |name: &str| {
        let path = dir.join(name);
        std::fs::write(&path, b"old").expect("write");
        let f = std::fs::File::options()
            .write(true)
            .open(&path)
            .expect("open");
        f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(40 * 86400))
            .expect("mtime");
        path
    };
    let old_backup = old("ns_r_pek_pv_bk-backup-20200101T000000Z.dump");
    let other_realm = old("ns_other_pek_other-backup-20200101T000000Z.dump");
    let dumps = pek_operator::dump::Dumps {
        dir: dir.clone(),
        pg_dump: bindir.join("pg_dump"),
        pg_restore: bindir.join("pg_restore"),
        retention: Some(std::time::Duration::from_secs(30 * 86400)),
    };
    let file = dumps
        .backup(&src.owner_url(), "pv-bk", "ns_r_pek_pv_bk-backup")
        .await
        .expect("a backup as the owner");
    assert!(file.path.is_file());
    assert!(!old_backup.exists(), "this Realm's old backup is pruned");
    assert!(other_realm.exists(), "another Realm's backups are not");

    let archive = dumps.inspect(&file.path).await.expect("readable");
    let known = pek_operator::dump::known_migrations();
    assert_eq!(archive.check("pv-bk", &known), Ok(()));
    assert!(archive.check("kszk", &known).is_err());

    // Restored into another database (other role names) as its owner.
    let dst = creds("pv-rs");
    p.ensure(&dst, &me(), &[]).await.expect("target database");
    assert!(!p.database_has_tables(&dst).await.expect("empty"));
    assert!(p.restore(&dst, &dumps, &file.path).await.expect("restored"));
    let mut su = PgConnection::connect(&pg().superuser_url("pek_pv_rs"))
        .await
        .expect("superuser");
    let groups: Vec<(String, String)> =
        sqlx::query_as("SELECT realm_id, name FROM groups ORDER BY name")
            .fetch_all(&mut su)
            .await
            .expect("groups");
    assert_eq!(
        groups,
        [
            ("pv-bk".to_string(), "Kör".to_string()),
            ("pv-bk".to_string(), "Projekt".to_string())
        ],
        "exactly the realm's rows, not the hub's"
    );
    let (owner_role, forced): (String, bool) = sqlx::query_as(
        "SELECT pg_get_userbyid(relowner)::text, relforcerowsecurity FROM pg_class \
         WHERE relname = 'groups'",
    )
    .fetch_one(&mut su)
    .await
    .expect("catalog");
    assert_eq!(owner_role, "pek_pv_rs_owner");
    assert!(forced, "row-level security is forced again");
    let _ = su.close().await;
    // Never over tables.
    assert!(!p.restore(&dst, &dumps, &file.path).await.expect("checked"));
    // A broken archive restores nothing.
    let broken = dir.join("broken.dump");
    std::fs::write(&broken, b"PGDMP not really").expect("write");
    assert!(dumps.inspect(&broken).await.is_err());
    let empty = creds("pv-rs2");
    p.ensure(&empty, &me(), &[])
        .await
        .expect("another database");
    assert!(p.restore(&empty, &dumps, &broken).await.is_err());
    assert!(!p.database_has_tables(&empty).await.expect("still empty"));
    std::fs::remove_dir_all(&dir).ok();
}
