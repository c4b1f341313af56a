use localpg::LocalPostgres;
use sqlx::Connection;

#[tokio::test]
async fn throwaway_cluster_gives_each_test_its_own_database() {
    let pg = LocalPostgres::shared().expect("start postgres");
    let a = pg.fresh_database().await.expect("db a");
    let b = pg.fresh_database().await.expect("db b");
    assert_ne!(a.name, b.name);
    let mut conn = sqlx::PgConnection::connect(&a.app_url)
        .await
        .expect("connect as app");
    let (user, bypass): (String, bool) = sqlx::query_as(
        "SELECT current_user::text, rolbypassrls FROM pg_roles WHERE rolname = current_user",
    )
    .fetch_one(&mut conn)
    .await
    .expect("query");
    assert_eq!(user, "pek_app");
    assert!(!bypass);
}

fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(p)
        .expect("stat")
        .permissions()
        .mode()
        & 0o777
}

/// The throwaway cluster is private to the user who started it: its directory (socket,
/// log, data) is 0700, the socket itself 0700, and every login needs the password — on
/// TCP and on the Unix socket alike (no `trust`).
#[tokio::test]
async fn throwaway_cluster_is_private_and_needs_the_password() {
    let pg = LocalPostgres::shared().expect("start postgres");
    let dir = pg.data_dir().parent().expect("cluster dir").to_path_buf();
    assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    let socket = dir.join(format!(".s.PGSQL.{}", pg.port()));
    assert!(socket.exists(), "{}", socket.display());
    assert_eq!(mode(&socket), 0o700, "{}", socket.display());
    for entry in std::fs::read_dir(&dir).expect("list") {
        let path = entry.expect("entry").path();
        if path != socket && !path.ends_with(format!(".s.PGSQL.{}.lock", pg.port())) {
            assert_eq!(
                mode(&path) & 0o077,
                0,
                "{} is readable by others",
                path.display()
            );
        }
    }
    assert!(
        !dir.join("pwfile").exists(),
        "the password file is removed after initdb"
    );

    let db = pg.fresh_database().await.expect("db");
    use sqlx::postgres::PgConnectOptions;
    for user in ["postgres", localpg::OWNER_ROLE, localpg::APP_ROLE] {
        let tcp = PgConnectOptions::new()
            .host("127.0.0.1")
            .port(pg.port())
            .username(user)
            .database(&db.name);
        assert!(
            sqlx::PgConnection::connect_with(&tcp).await.is_err(),
            "{user} logged in over TCP without a password"
        );
        assert!(
            sqlx::PgConnection::connect_with(&tcp.clone().password("wrong"))
                .await
                .is_err(),
            "{user} logged in over TCP with a wrong password"
        );
        let unix = PgConnectOptions::new()
            .socket(&dir)
            .port(pg.port())
            .username(user)
            .database(&db.name);
        assert!(
            sqlx::PgConnection::connect_with(&unix).await.is_err(),
            "{user} logged in over the Unix socket without a password"
        );
    }
    // The real credentials work on both.
    sqlx::PgConnection::connect(&db.app_url)
        .await
        .expect("app role over TCP");
    let unix = PgConnectOptions::new()
        .socket(&dir)
        .port(pg.port())
        .username("postgres")
        .password(pg.superuser_password())
        .database(&db.name);
    sqlx::PgConnection::connect_with(&unix)
        .await
        .expect("superuser over the socket with its password");
}

/// Secrets the harness and `pek local` write: 0600 files in 0700 directories, also
/// when the file or directory already existed with looser modes.
#[test]
fn secrets_are_written_private() {
    use std::os::unix::fs::PermissionsExt;
    let base = std::env::temp_dir().join(format!("pek-secret-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let dir = base.join("nested/dir");
    localpg::private_dir(&dir).expect("private dir");
    assert_eq!(mode(&dir), 0o700);
    let file = dir.join("key.pem");
    std::fs::write(&file, "old").expect("write");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    localpg::write_private(&file, "secret").expect("write private");
    assert_eq!(mode(&file), 0o600);
    assert_eq!(std::fs::read_to_string(&file).expect("read"), "secret");
    let fresh = dir.join("token");
    localpg::write_private(&fresh, "t").expect("write private");
    assert_eq!(mode(&fresh), 0o600);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    localpg::private_dir(&dir).expect("private dir again");
    assert_eq!(mode(&dir), 0o700, "an existing directory is tightened");
    std::fs::remove_dir_all(&base).expect("cleanup");
}

/// A template database is built once per cluster, by whichever caller comes first, while
/// the others wait; every caller gets its own copy. A failed build leaves no template
/// behind, so the next caller builds it again.
#[tokio::test]
async fn template_databases_are_built_once_and_copied() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let pg = LocalPostgres::shared().expect("start postgres");
    let name = format!("probe_{}", std::process::id());
    let builds = AtomicUsize::new(0);
    let build = |db: localpg::Database| {
        builds.fetch_add(1, Ordering::SeqCst);
        async move {
            let mut conn = sqlx::PgConnection::connect(&db.owner_url).await?;
            sqlx::raw_sql("CREATE TABLE built (n int); INSERT INTO built VALUES (42)")
                .execute(&mut conn)
                .await?;
            conn.close().await
        }
    };
    // Side by side: the lock that makes one of them the builder is what is tested.
    let (a, b, c, d) = tokio::join!(
        pg.database_from_template(&name, build),
        pg.database_from_template(&name, build),
        pg.database_from_template(&name, build),
        pg.database_from_template(&name, build),
    );
    assert_eq!(builds.load(Ordering::SeqCst), 1, "built more than once");
    let mut names = std::collections::BTreeSet::new();
    for copy in [a, b, c, d] {
        let copy = copy.expect("copy");
        let mut conn = sqlx::PgConnection::connect(&copy.owner_url)
            .await
            .expect("connect to the copy");
        let (owner, n): (String, i32) = sqlx::query_as(
            "SELECT pg_get_userbyid(datdba)::text, (SELECT n FROM built) \
             FROM pg_database WHERE datname = current_database()",
        )
        .fetch_one(&mut conn)
        .await
        .expect("the copy has the template's table");
        assert_eq!((owner.as_str(), n), (localpg::OWNER_ROLE, 42));
        names.insert(copy.name);
    }
    assert_eq!(names.len(), 4, "every caller gets its own database");

    let broken = format!("broken_{}", std::process::id());
    let err = pg
        .database_from_template(&broken, |_| async { Err("no schema today") })
        .await
        .expect_err("a failed build is an error");
    assert!(err.to_string().contains("no schema today"), "{err}");
    let again = pg
        .database_from_template(&broken, |_| async { Ok::<(), String>(()) })
        .await;
    assert!(again.is_ok(), "rebuilt after a failure: {again:?}");

    for bad in ["Upper", "semi;colon", ""] {
        assert!(
            pg.database_from_template(bad, |_| async { Ok::<(), String>(()) })
                .await
                .is_err(),
            "{bad:?} accepted as a template name"
        );
    }
}
