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
