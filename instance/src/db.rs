//! Database access. Isolation layer 1 lives here: realm-scoped tables are reached only
//! through a [`RealmTx`], a transaction that carries its realm and has already set the
//! per-transaction `pek.realm_id` that the row-level-security policies key on. There is
//! no public way to get a bare connection, so an unscoped query cannot be written
//! outside this crate, and one written inside it still sees only the current realm.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool, Postgres, Transaction};

use crate::config::Mode;
use crate::error::{Error, Result};
use crate::realm_id::RealmId;

fn realm_migrator() -> Migrator {
    let mut m = sqlx::migrate!("../migrations/realm");
    // Hub and realm migrations share sqlx's bookkeeping table; each set ignores the
    // other's rows.
    m.set_ignore_missing(true);
    m
}

fn hub_migrator() -> Migrator {
    let mut m = sqlx::migrate!("../migrations/hub");
    m.set_ignore_missing(true);
    m
}

fn migrators(mode: Mode) -> Vec<Migrator> {
    match mode {
        Mode::Hub => vec![realm_migrator(), hub_migrator()],
        Mode::Worker => vec![realm_migrator()],
    }
}

/// Advisory-lock key (`pg_advisory_lock`) held around migrations and grants, so any
/// number of replicas can start at once on one database: the first migrates and grants,
/// the others wait and then find nothing left to do. ASCII "pek-migr".
pub const MIGRATION_LOCK_KEY: i64 = 0x7065_6b2d_6d69_6772;

/// Runs the schema migrations for `mode` as the owner role, then grants the service
/// role the table privileges it needs (and no more: it owns nothing, so row-level
/// security applies to it). Running it again is harmless, and so is running it from
/// several processes at once: both steps run under [`MIGRATION_LOCK_KEY`] (sqlx's own
/// migration lock does not cover the grants, and concurrent GRANTs on one table fail
/// with "tuple concurrently updated").
pub async fn migrate(
    owner_url: &str,
    mode: Mode,
    service_role: Option<&str>,
) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect(owner_url)
        .await
        .context("connecting with the migration URL")?;
    sqlx::query!("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        .fetch_one(&mut conn)
        .await
        .context("taking the migration lock")?;
    let result = migrate_locked(&mut conn, mode, service_role).await;
    // Closing the session releases the lock as well; unlocking first just hands it
    // over to a waiting replica without waiting for the close.
    let _ = sqlx::query!("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
        .fetch_one(&mut conn)
        .await;
    conn.close().await.ok();
    result
}

/// A new database of a throwaway cluster with `mode`'s schema and grants in it, copied from
/// a template the cluster builds once with [`migrate`]: what the test suites use instead of
/// migrating an empty database per test (a `pek serve` on it finds nothing left to do).
pub async fn migrated_copy(
    pg: &localpg::LocalPostgres,
    mode: Mode,
) -> anyhow::Result<localpg::Database> {
    let template = match mode {
        Mode::Hub => "pek_hub",
        Mode::Worker => "pek_worker",
    };
    let db = pg
        .database_from_template(template, |db| async move {
            migrate(&db.owner_url, mode, Some(localpg::APP_ROLE)).await
        })
        .await?;
    Ok(db)
}

async fn migrate_locked(
    conn: &mut PgConnection,
    mode: Mode,
    service_role: Option<&str>,
) -> anyhow::Result<()> {
    for m in migrators(mode) {
        m.run(&mut *conn).await.context("running migrations")?;
    }
    if let Some(role) = service_role {
        let owner: String = sqlx::query_scalar!(r#"SELECT current_user::text AS "user!""#)
            .fetch_one(&mut *conn)
            .await
            .context("reading the migration role")?;
        if owner != role {
            let role = quote_ident(role);
            let grants = format!(
                "GRANT USAGE ON SCHEMA public TO {role};
                 GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role};
                 REVOKE INSERT, UPDATE, DELETE ON _sqlx_migrations FROM {role};
                 GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role};"
            );
            // Role names are identifiers, which cannot be bound: dynamic by nature.
            sqlx::raw_sql(&grants)
                .execute(&mut *conn)
                .await
                .context("granting table privileges to the service role")?;
        }
    }
    Ok(())
}

pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The login role named in a connection URL.
pub fn url_role(url: &str) -> Result<String> {
    let opts = PgConnectOptions::from_str(url)
        .map_err(|e| Error::BadRequest(format!("invalid database URL: {e}")))?;
    Ok(opts.get_username().to_string())
}

#[derive(Clone)]
pub struct Db {
    pool: PgPool,
}

impl Db {
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Db> {
        let opts = PgConnectOptions::from_str(url).context("invalid DATABASE_URL")?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(opts)
            .await
            .context("connecting to the database (DATABASE_URL)")?;
        Ok(Db { pool })
    }

    /// Refuses a service role that would bypass row-level security.
    pub async fn check_service_role(&self) -> anyhow::Result<()> {
        let r = sqlx::query!(
            r#"SELECT rolname::text AS "role!", rolsuper AS "superuser!", rolbypassrls AS "bypass!"
                 FROM pg_roles WHERE rolname = current_user"#
        )
        .fetch_one(&self.pool)
        .await?;
        let (role, superuser, bypass) = (r.role, r.superuser, r.bypass);
        if superuser || bypass {
            anyhow::bail!(
                "the service role {role:?} is a superuser or has BYPASSRLS, so row-level \
                 security would not isolate realms; connect DATABASE_URL as an ordinary role \
                 (run migrations with PEK_MIGRATION_DATABASE_URL as the owner)"
            );
        }
        let owns: bool = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = 'public'
                               AND tablename = 'groups' AND tableowner = current_user) AS "owns!""#
        )
        .fetch_one(&self.pool)
        .await?;
        if owns {
            tracing::warn!(
                role,
                "the service role owns the tables; row-level security is forced so realms stay \
                 isolated, but use a separate owner role for migrations in production"
            );
        }
        Ok(())
    }

    /// Opens a transaction scoped to `realm`.
    pub async fn realm(&self, realm: &RealmId) -> Result<RealmTx> {
        let mut tx = self.pool.begin().await?;
        sqlx::query!(
            "SELECT set_config('pek.realm_id', $1, true)",
            realm.as_str()
        )
        .fetch_one(&mut *tx)
        .await?;
        Ok(RealmTx {
            tx,
            realm: realm.clone(),
        })
    }

    /// Opens a transaction for global (hub) tables: users, profiles, the realm registry
    /// and the federation table. Realm-scoped tables read as empty through it.
    pub async fn global(&self) -> Result<GlobalTx> {
        Ok(GlobalTx {
            tx: self.pool.begin().await?,
        })
    }

    /// Database reachable and every migration of `mode` applied.
    pub async fn ready(&self, mode: Mode) -> std::result::Result<(), String> {
        // Dynamic: sqlx's own bookkeeping table is made by the migrator at run time, not
        // by our migrations, so the schema the queries are checked against lacks it.
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                .fetch_all(&self.pool)
                .await
                .map_err(|e| format!("database not reachable or not migrated: {e}"))?;
        for m in migrators(mode) {
            for mig in m.iter() {
                if !applied.contains(&mig.version) {
                    return Err(format!("migration {} not applied", mig.version));
                }
            }
        }
        Ok(())
    }

    /// A LISTEN connection (hub: cache and registry invalidation), on a connection of
    /// its own outside the pool: a listener whose connection went silent is dropped
    /// without taking one of the pool's connections with it.
    pub async fn listener(&self) -> Result<sqlx::postgres::PgListener> {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with((*self.pool.connect_options()).clone());
        Ok(sqlx::postgres::PgListener::connect_with(&pool).await?)
    }

    /// Sends a notification on `channel` (through the pool).
    pub(crate) async fn notify(&self, channel: &str, payload: &str) -> Result<()> {
        sqlx::query!("SELECT pg_notify($1, $2)", channel, payload)
            .fetch_one(&self.pool)
            .await?;
        Ok(())
    }

    pub fn pool_size(&self) -> u32 {
        self.pool.size()
    }
}

/// A transaction whose every statement is confined to one realm (by RLS, and by the
/// `realm_id` that every query in this crate also binds explicitly).
pub struct RealmTx {
    tx: Transaction<'static, Postgres>,
    realm: RealmId,
}

impl RealmTx {
    pub fn realm(&self) -> &RealmId {
        &self.realm
    }

    pub(crate) fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

pub struct GlobalTx {
    tx: Transaction<'static, Postgres>,
}

impl GlobalTx {
    pub(crate) fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}
